//! The `lakeflow` binary, driven as a person would: init, run, land data, run, events; the
//! graph formats; and the exit codes scripts rely on. Plus the same commands over a Rust
//! pipeline through `lakeflow::cli::Cli`.

use std::path::Path;
use std::process::{Command, Output};

use lakeflow::cli::{Cli, exit};
use lakeflow::prelude::*;

use crate::sql_pipelines::fixture;
use crate::support::{delta_rows, sorted_lines};

fn lakeflow(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lakeflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the lakeflow binary runs")
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn code(output: &Output) -> u8 {
    output.status.code().expect("exited") as u8
}

#[tokio::test]
async fn init_run_land_data_run_events() {
    let tmp = tempfile::tempdir().unwrap();
    let out = lakeflow(tmp.path(), &["init", "--name", "shop"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), exit::OK, "{stderr}");
    assert!(stdout.contains("cd shop"), "{stdout}");
    let shop = tmp.path().join("shop");
    for file in ["lakeflow.yml", "README.md", "transformations/orders.sql"] {
        assert!(shop.join(file).is_file(), "{file} is generated");
    }

    let out = lakeflow(&shop, &["run", "--progress", "lines"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), exit::OK, "{stdout}\n{stderr}");
    assert!(stdout.contains("run COMPLETED"), "{stdout}");
    assert!(
        stderr.contains("Flow 'orders_bronze' is COMPLETED."),
        "{stderr}"
    );
    let storage = shop.join("lakeflow-data");
    assert_eq!(
        sorted_lines(&delta_rows(&storage.join("revenue_by_customer")).await),
        [
            "| customer | orders | revenue |",
            "| alice    | 1      | 20.5    |",
            "| bob      | 1      | 13.0    |",
        ]
    );
    assert_eq!(
        sorted_lines(&delta_rows(&storage.join("example_even_numbers")).await).len(),
        6
    );

    std::fs::write(
        shop.join("data/landing/orders-0002.csv"),
        "order_id,customer,amount\n4,carol,7.25\n5,alice,1.5\n",
    )
    .unwrap();
    // From a subdirectory: the spec is found in a parent.
    let out = lakeflow(&shop.join("transformations"), &["run", "--progress", "off"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), exit::OK, "{stdout}\n{stderr}");
    assert_eq!(
        sorted_lines(&delta_rows(&storage.join("revenue_by_customer")).await),
        [
            "| customer | orders | revenue |",
            "| alice    | 2      | 22.0    |",
            "| bob      | 1      | 13.0    |",
            "| carol    | 1      | 7.25    |",
        ]
    );

    let out = lakeflow(&shop, &["events"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), exit::OK, "{stderr}");
    assert!(stdout.contains("flow_progress"), "{stdout}");
    assert!(stdout.contains("orders_silver"), "{stdout}");
    assert!(
        stdout.contains("Flow 'orders_bronze' is COMPLETED."),
        "{stdout}"
    );

    let out = lakeflow(
        &shop,
        &[
            "events",
            "--sql",
            "SELECT count(DISTINCT origin.run_id) AS runs FROM event_log",
        ],
    );
    let (stdout, _) = text(&out);
    assert!(stdout.contains("| 2    |"), "{stdout}");

    // Databricks' documented data quality query, as written: the last run's rule counts.
    let out = lakeflow(
        &shop,
        &[
            "events",
            "--sql",
            r#"CREATE OR REPLACE TEMP VIEW latest_update AS
SELECT origin.update_id AS id FROM event_log_raw
WHERE event_type = 'create_update' ORDER BY timestamp DESC LIMIT 1;

SELECT row_expectations.dataset as dataset, row_expectations.name as expectation,
  SUM(row_expectations.passed_records) as passing_records,
  SUM(row_expectations.failed_records) as failing_records
FROM (SELECT explode(from_json(details:flow_progress:data_quality:expectations,
        "array<struct<name: string, dataset: string, passed_records: int, failed_records: int>>"
      )) row_expectations
      FROM event_log_raw, latest_update
      WHERE event_type = 'flow_progress' AND origin.update_id = latest_update.id)
GROUP BY row_expectations.dataset, row_expectations.name"#,
        ],
    );
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), exit::OK, "{stderr}");
    let cells: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.contains("valid_amount"))
        .map(|l| {
            l.split('|')
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .collect()
        })
        .collect();
    assert_eq!(
        cells,
        [["orders_silver", "valid_amount", "2", "0"]],
        "{stdout}"
    );

    let out = lakeflow(
        &shop,
        &[
            "run",
            "--full-refresh",
            "orders_bronze,orders_silver",
            "--progress",
            "off",
        ],
    );
    assert_eq!(code(&out), exit::OK, "{:?}", text(&out));
    assert_eq!(
        sorted_lines(&delta_rows(&storage.join("orders_bronze")).await).len(),
        6,
        "a full refresh reads every file again: header and five rows"
    );

    let out = lakeflow(&shop, &["dry-run"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), exit::OK, "{stderr}");
    assert!(
        stdout.contains("Dry run succeeded: 5 definitions are valid."),
        "{stdout}"
    );
    // The schema each dataset will have, file sources' as inferred.
    assert!(
        stdout.contains("columns: ") && stdout.contains("_rescued_data STRING"),
        "{stdout}"
    );
    assert!(
        stdout.contains("transformations/orders.sql:2:1"),
        "{stdout}"
    );
}

#[test]
fn graph_prints_dot_mermaid_and_json() {
    let (_tmp, root) = fixture("medallion_sql");
    let out = lakeflow(&root, &["graph"]);
    let (dot, stderr) = text(&out);
    assert_eq!(code(&out), exit::OK, "{stderr}");
    assert!(dot.starts_with("digraph \"medallion_sql\" {"), "{dot}");
    assert!(
        dot.contains("\"orders_silver\" [label=\"orders_silver\\nstreaming table\\nexpect known_customer (drop)\\nexpect positive_amount (drop)\", style=bold];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"orders_bronze\" -> \"orders_silver\" [style=dashed, label=\"stream\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"order_ids_landing\" -> \"order_ids\" [arrowhead=empty, label=\"append\"];"),
        "{dot}"
    );
    assert!(
        dot.contains("\"big_orders\" [label=\"big_orders\\ntemporary view\", style=dashed];"),
        "{dot}"
    );

    let out = lakeflow(&root, &["graph", "--format", "mermaid"]);
    let (mermaid, _) = text(&out);
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("[[\"orders_silver<br/>streaming table<br/>expect known_customer (drop)<br/>expect positive_amount (drop)\"]]"), "{mermaid}");
    assert!(
        mermaid.contains("(\"big_orders<br/>temporary view\")"),
        "{mermaid}"
    );
    assert!(mermaid.contains("-. stream .->"), "{mermaid}");
    assert!(mermaid.contains("== append ==>"), "{mermaid}");

    let out = lakeflow(&root, &["graph", "--format", "json"]);
    let (json, _) = text(&out);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let datasets = value["datasets"].as_array().unwrap();
    let silver = datasets
        .iter()
        .find(|d| d["name"] == "orders_silver")
        .unwrap();
    assert_eq!(silver["kind"], "streaming table");
    assert_eq!(silver["location"], "transformations/02_silver.sql:4:1");
    assert_eq!(
        silver["expectations"][0]["rule"]["sql"],
        "customer_id IS NOT NULL"
    );
    let flow = datasets
        .iter()
        .find(|d| d["name"] == "order_ids_archive")
        .unwrap();
    assert_eq!(flow["target"], "order_ids");
    assert!(
        value["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["from"] == "customers" && e["to"] == "orders_silver" && e["kind"] == "read")
    );
}

#[test]
fn exit_codes_tell_scripts_what_happened() {
    let tmp = tempfile::tempdir().unwrap();
    let out = lakeflow(tmp.path(), &["walk"]);
    assert_eq!(code(&out), exit::USAGE);
    assert!(text(&out).1.contains("unknown command `walk`"));
    let out = lakeflow(tmp.path(), &["run", "--format", "dot"]);
    assert_eq!(code(&out), exit::USAGE);

    let out = lakeflow(tmp.path(), &["run"]);
    assert_eq!(code(&out), exit::INVALID);
    assert!(
        text(&out).1.contains("no pipeline spec file"),
        "{:?}",
        text(&out)
    );

    let dir = tmp.path();
    std::fs::write(
        dir.join("lakeflow.yml"),
        "name: codes\nlibraries:\n  - glob:\n      include: sql/**\n",
    )
    .unwrap();
    std::fs::create_dir_all(dir.join("sql")).unwrap();
    std::fs::write(
        dir.join("sql/a.sql"),
        "CREATE MATERIALIZED VIEW a AS SELECT 1 AS x;\nCREATE VIEW AS SELECT 2",
    )
    .unwrap();
    let out = lakeflow(dir, &["dry-run"]);
    assert_eq!(code(&out), exit::INVALID);
    assert!(
        text(&out).1.contains("sql/a.sql:2:13: expected a name"),
        "{:?}",
        text(&out)
    );

    std::fs::write(
        dir.join("sql/a.sql"),
        "CREATE MATERIALIZED VIEW a (CONSTRAINT small EXPECT (x < 2) ON VIOLATION FAIL UPDATE)\nAS SELECT 5 AS x",
    )
    .unwrap();
    let out = lakeflow(dir, &["run", "--progress", "off"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(code(&out), exit::RUN_FAILED, "{stdout}\n{stderr}");
    assert!(stdout.contains("FAILED"), "{stdout}");
    assert!(stderr.contains("the run failed: a failed"), "{stderr}");

    let out = lakeflow(dir, &["init", "--name", "sql"]);
    assert_eq!(code(&out), exit::USAGE, "sql/ exists already");
}

#[tokio::test]
async fn a_rust_pipeline_gets_the_same_commands() {
    let tmp = tempfile::tempdir().unwrap();
    let storage = tmp.path().join("data").display().to_string();
    let pipeline = || {
        Pipeline::builder()
            .materialized_view("numbers", || sql("SELECT 1 AS n UNION ALL SELECT 2"))
            .materialized_view("total", || sql("SELECT sum(n) AS total FROM numbers"))
    };
    let args = |list: &[&str]| -> Vec<String> {
        list.iter()
            .map(|s| s.to_string())
            .chain(["--storage".to_string(), storage.clone()])
            .collect()
    };
    assert_eq!(
        Cli::new(pipeline()).run(&args(&["dry-run"])).await,
        exit::OK
    );
    assert_eq!(
        Cli::new(pipeline())
            .run(&args(&["run", "--progress", "off"]))
            .await,
        exit::OK
    );
    assert_eq!(
        sorted_lines(&delta_rows(&tmp.path().join("data/total")).await),
        ["| total |", "| 3     |"]
    );
    assert_eq!(
        Cli::new(pipeline())
            .run(&args(&["run", "--refresh", "total", "--progress", "off"]))
            .await,
        exit::OK
    );
    assert_eq!(
        Cli::new(pipeline())
            .run(&args(&[
                "events",
                "--sql",
                "SELECT count(*) FROM event_log"
            ]))
            .await,
        exit::OK
    );
    assert_eq!(
        Cli::new(pipeline())
            .run(&args(&["graph", "--format", "mermaid"]))
            .await,
        exit::OK
    );
    let broken = Pipeline::builder().materialized_view("x", || sql("SELECT * FROM missing"));
    assert_eq!(
        Cli::new(broken).run(&args(&["dry-run"])).await,
        exit::INVALID
    );
    assert_eq!(
        Cli::new(pipeline())
            .run(&args(&["init", "--name", "x"]))
            .await,
        exit::USAGE
    );
}

/// Another run holding the storage: `lakeflow run` exits with code 5 and names it; nothing is
/// written. (The holder here is a lease left by a run on another machine.)
#[test]
fn a_run_meeting_another_exits_with_code_5() {
    let tmp = tempfile::tempdir().unwrap();
    let out = lakeflow(tmp.path(), &["init", "--name", "shop"]);
    assert_eq!(code(&out), exit::OK);
    let shop = tmp.path().join("shop");
    crate::concurrent::forge_lease(&shop.join("lakeflow-data"), "elsewhere", 7, 600_000);
    let out = lakeflow(&shop, &["run", "--progress", "off"]);
    let (_, stderr) = text(&out);
    assert_eq!(code(&out), exit::BUSY, "{stderr}");
    assert!(stderr.contains("host elsewhere (pid 7)"), "{stderr}");
    assert!(!shop.join("lakeflow-data/orders_bronze").exists());
}
