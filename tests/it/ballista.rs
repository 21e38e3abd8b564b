//! The same pipelines on a Ballista cluster: a scheduler and two executors, each a separate
//! `lakeflow cluster ..` process on loopback ports, run the SQL medallion and AUTO CDC
//! projects; every table equals an in-process run's, and the executors' logs show the tasks
//! they ran.

use std::path::Path;
use std::sync::Arc;

use lakeflow::BallistaEngine;
use lakeflow::ballista::cluster::LocalCluster;

fn start(dir: &Path) -> LocalCluster {
    LocalCluster::start(Path::new(env!("CARGO_BIN_EXE_lakeflow")), 2, dir).unwrap()
}

/// Runs the SQL project at `root` on the cluster at `url`, or in-process without one.
async fn run_project(
    root: std::path::PathBuf,
    url: Option<String>,
) -> Result<lakeflow::RunReport, String> {
    let pipeline = lakeflow::project::Project::find(&root)
        .unwrap()
        .pipeline()
        .progress(lakeflow::ProgressMode::Off);
    let pipeline = match url {
        Some(url) => pipeline.cluster(url),
        None => pipeline,
    };
    pipeline.run().await.map_err(|e| e.to_string())
}

/// How many times the executors' logs say `text`, once they say it `at_least` times or
/// after five seconds (an executor logs a task as it ends; the line reaches its file a moment
/// later).
async fn logged(cluster: &LocalCluster, text: &str, at_least: usize) -> usize {
    let mut count = cluster.logged(text);
    for _ in 0..50 {
        if count >= at_least {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        count = cluster.logged(text);
    }
    count
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_on_a_cluster_give_the_tables_of_an_in_process_run() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let engine = Arc::new(BallistaEngine::remote(cluster.url()));
    let compared = crate::engines::same_tables_as_in_process(engine).await;
    assert!(compared >= 10, "{compared} tables compared");
    assert!(cluster.tasks_finished() > 0, "the executors ran no task");
    // The flows wrote their tables there too.
    let written = logged(&cluster, "for the coordinator to commit", 10).await;
    assert!(written >= 10, "the executors wrote tables {written} times");
    // AUTO CDC's second batches were merged there: the targets' and states' files rewritten.
    for table in [
        "customers`",
        "customers_history`",
        "_lakeflow/cdc/customers_cdc_v",
    ] {
        let merged = logged(&cluster, &format!("of `{table}"), 1).await;
        assert!(merged >= 1, "the executors did not merge into `{table}`");
    }
}

/// AUTO CDC's merges on the executors (a copy-on-write rewrite of the files that may hold a
/// batch's keys, committed in their place): random change histories of both types, three
/// batches each, equal the model as they do in-process; an expired tombstone is dropped by
/// the rewrite.
#[test]
fn auto_cdc_merged_on_the_cluster_equals_the_model() {
    // One standalone cluster per runtime: its processes' tasks live in the runtime that
    // started it.
    let checked =
        crate::cdc::histories_equal_the_model(60, 1, Some(Arc::new(BallistaEngine::standalone())));
    assert!(checked >= 60, "{checked} histories checked");
    tokio::runtime::Runtime::new()
        .unwrap()
        .block_on(crate::cdc::tombstones_expire(Some(Arc::new(
            BallistaEngine::standalone(),
        ))));
}

/// The crash test on the cluster: the coordinator is killed with SIGKILL at its failpoints
/// while its flows run on the cluster, and every run after a crash ends with each row once,
/// as in-process.
#[test]
fn a_coordinator_killed_at_any_moment_on_the_cluster_reruns_to_an_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let kills = crate::crash::kill_and_rerun(
        &[
            "stream_plan",
            "mid_write",
            "after_commit",
            "after_checkpoint:2",
            "flow_done:2",
            "cdc_between_merges",
        ],
        Some(&cluster.url()),
    );
    assert!(
        kills >= 8,
        "most failpoints were reached twice; only {kills} kills"
    );
    assert!(cluster.tasks_finished() > 0, "the executors ran no task");
}

/// `BallistaEngine::standalone()`: a scheduler and an executor inside the process give the
/// same tables too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_cluster_gives_the_tables_of_an_in_process_run() {
    let compared =
        crate::engines::same_tables_as_in_process(Arc::new(BallistaEngine::standalone())).await;
    assert!(compared >= 10, "{compared} tables compared");
}

/// A flow calling a SQL function of the pipeline's own (`CREATE FUNCTION .. RETURN expr`) runs
/// on the cluster, which gets the function by its definition with the plan; one calling a
/// function written in Rust, which a remote cluster cannot have, runs in the coordinator
/// instead of failing there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_of_the_pipelines_own_run_on_the_cluster_or_beside_it() {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    use lakeflow::datafusion;
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let spec = "name: f\nstorage: out\nlibraries:\n  - glob:\n      include: sql/**\n";
    let (_tmp, root) = crate::sql_pipelines::project(&[
        ("lakeflow.yml", spec),
        (
            "sql/a.sql",
            "CREATE MATERIALIZED VIEW numbers AS SELECT id FROM range(3);\n",
        ),
    ]);
    // A function of Rust's: the coordinator's alone.
    let nine = create_udf(
        "nine",
        vec![],
        DataType::Int64,
        Volatility::Immutable,
        Arc::new(|_: &[ColumnarValue]| {
            Ok(ColumnarValue::Scalar(
                datafusion::common::ScalarValue::Int64(Some(9)),
            ))
        }),
    );
    let run = || async {
        let report = lakeflow::project::Project::find(&root)
            .unwrap()
            .pipeline()
            .udf(nine.clone())
            .progress(lakeflow::ProgressMode::Off)
            .cluster(cluster.url())
            .run()
            .await
            .unwrap();
        assert!(report.succeeded(), "{report}");
    };
    let rows = |name: &'static str| {
        let root = root.clone();
        async move {
            crate::support::sorted_lines(
                &crate::support::delta_rows(&root.join("out").join(name)).await,
            )
        }
    };
    run().await;
    let before = cluster.tasks_finished();
    std::fs::write(
        root.join("sql/b.sql"),
        "CREATE FUNCTION twice(x INT) RETURNS INT RETURN x * 2;\n\
         CREATE MATERIALIZED VIEW doubled AS SELECT twice(CAST(id AS INT)) AS d FROM numbers;\n",
    )
    .unwrap();
    run().await;
    assert_eq!(rows("doubled").await, ["| d |", "| 0 |", "| 2 |", "| 4 |"]);
    let shipped = logged(&cluster, "Finished task", before + 1).await;
    assert!(
        shipped > before,
        "`doubled` ran on the executors ({before} -> {shipped} tasks)"
    );

    std::fs::write(
        root.join("sql/c.sql"),
        "CREATE MATERIALIZED VIEW nines AS SELECT id + nine() AS n FROM numbers;\n",
    )
    .unwrap();
    run().await;
    assert_eq!(
        rows("nines").await,
        ["| n  |", "| 10 |", "| 11 |", "| 9  |"]
    );
}

/// Flows that read pipeline tables write them on the executors: each task checks its rows
/// with the flow's rules and writes Parquet files into the table's directory, and the
/// coordinator commits the files. The counts of every rule are the in-process run's, a drop
/// rule's rows are not written, and a `Fail` rule stops the flow with nothing committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_executors_write_the_tables_and_check_their_rules() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let spec = "name: w\nstorage: out\nlibraries:\n  - glob:\n      include: sql/**\n";
    let sql = "CREATE MATERIALIZED VIEW numbers AS SELECT id FROM range(10);\n\
        CREATE MATERIALIZED VIEW checked (\n\
          CONSTRAINT positive EXPECT (n > 0) ON VIOLATION DROP ROW,\n\
          CONSTRAINT small EXPECT (n < 8)\n\
        ) AS SELECT id - 1 AS n, id % 2 = 0 AS even FROM numbers;\n";
    let projects: Vec<_> = (0..2)
        .map(|_| crate::sql_pipelines::project(&[("lakeflow.yml", spec), ("sql/a.sql", sql)]))
        .collect();
    let run = |root: std::path::PathBuf, on_cluster: bool| {
        run_project(root, on_cluster.then(|| cluster.url()))
    };
    let rows = |root: std::path::PathBuf, name: &'static str| async move {
        crate::support::sorted_lines(
            &crate::support::delta_rows(&root.join("out").join(name)).await,
        )
    };
    let (cluster_root, local_root) = (projects[0].1.clone(), projects[1].1.clone());
    let on_cluster = run(cluster_root.clone(), true).await.unwrap();
    let in_process = run(local_root.clone(), false).await.unwrap();
    assert!(on_cluster.succeeded(), "{on_cluster}");
    let (got, want) = (
        on_cluster.dataset("checked").unwrap(),
        in_process.dataset("checked").unwrap(),
    );
    assert_eq!(got.expectations, want.expectations);
    assert_eq!(
        (got.rows_written, got.dropped_rows),
        (Some(8), Some(2)),
        "{on_cluster}"
    );
    assert_eq!(
        rows(cluster_root.clone(), "checked").await,
        rows(local_root.clone(), "checked").await
    );
    // The executors wrote `checked`'s files.
    assert!(
        logged(&cluster, "rows of `checked`", 1).await > 0,
        "no executor wrote `checked`"
    );

    // A `Fail` rule a row violates: the flow fails naming it, and the table keeps its rows.
    std::fs::write(
        cluster_root.join("sql/a.sql"),
        sql.replace(
            "CONSTRAINT small EXPECT (n < 8)",
            "CONSTRAINT small EXPECT (n < 8) ON VIOLATION FAIL UPDATE",
        ),
    )
    .unwrap();
    let before = rows(cluster_root.clone(), "checked").await;
    let failed = run(cluster_root.clone(), true)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        failed.contains("checked  materialized view  FAILED")
            && failed.contains("expectation `small` of dataset `checked` failed")
            && failed.contains("n=8"),
        "{failed}"
    );
    assert_eq!(rows(cluster_root, "checked").await, before);
}

/// Landing files are read on the executors too: a streaming table over `read_files` is
/// decoded, checked and written there. A new file with a new column stops the flow as
/// in-process (the held schema gains the column), and the next run reads it: the table is an
/// in-process run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn landing_files_are_read_on_the_executors_and_evolve_the_schema_as_in_process() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let spec = "name: l\nstorage: out\nlibraries:\n  - glob:\n      include: sql/**\n";
    let sql = "CREATE OR REFRESH STREAMING TABLE landed AS \
        SELECT * FROM STREAM read_files('landing', format => 'csv', header => true, \
        inferColumnTypes => true);\n";
    let projects: Vec<_> = (0..2)
        .map(|_| {
            crate::sql_pipelines::project(&[
                ("lakeflow.yml", spec),
                ("sql/a.sql", sql),
                ("landing/a.csv", "id,name\n1,a\n2,b\n"),
            ])
        })
        .collect();
    let run = |root: std::path::PathBuf, on_cluster: bool| {
        run_project(root, on_cluster.then(|| cluster.url()))
    };
    let rows = |root: std::path::PathBuf| async move {
        crate::support::sorted_lines(&crate::support::delta_rows(&root.join("out/landed")).await)
    };
    let (ours, reference) = (projects[0].1.clone(), projects[1].1.clone());
    for root in [&ours, &reference] {
        run(root.clone(), root == &ours).await.unwrap();
    }
    assert!(
        logged(&cluster, "rows of `landed`", 1).await > 0,
        "no executor read and wrote `landed`"
    );

    for root in [&ours, &reference] {
        std::fs::write(root.join("landing/b.csv"), "id,name,extra\n3,c,x\n").unwrap();
        let stopped = run(root.clone(), root == &ours).await.unwrap_err();
        assert!(
            stopped.contains("has new columns `extra`") && stopped.contains("held schema gained"),
            "{stopped}"
        );
        run(root.clone(), root == &ours).await.unwrap();
    }
    let got = rows(ours).await;
    assert!(got.len() == 4 && got[0].contains("extra"), "{got:?}");
    assert_eq!(got, rows(reference).await);
}

/// Uniqueness rules and quarantine tables are checked and written on the executors too: a
/// uniqueness rule becomes a row number per key in the plan (and, for an append, a join with
/// the keys the table holds), and each task writes the rows drop rules removed into the
/// quarantine table's files. Over two runs of a streaming table (the second brings a key the
/// table holds), the counts and every table equal an in-process run's; a failing uniqueness
/// rule names its row.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uniqueness_rules_and_quarantine_are_checked_on_the_executors() {
    use lakeflow::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let pipeline = |root: &Path, unique: ExpectAction| {
        let landing = root.join("landing").display().to_string();
        Pipeline::builder()
            .dataset(
                Dataset::streaming_table("orders", move || {
                    read_stream_files(landing.as_str(), csv())
                })
                .expect_unique("pk", ["id"], unique)
                .expect_or_drop("positive", "amount > 0")
                .quarantine(),
            )
            .dataset(
                Dataset::materialized_view("by_amount", || read("orders")).expect_unique(
                    "one_per_amount",
                    ["amount"],
                    ExpectAction::Warn,
                ),
            )
            .storage(root.join("out").to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    let roots = [dir.path().join("cluster"), dir.path().join("local")];
    let inputs = [
        ("a.csv", "id,amount\n1,10.0\n2,20.0\n2,20.0\n3,-1.0\n4,\n"),
        ("b.csv", "id,amount\n2,20.0\n5,10.0\n5,10.0\n6,-6.0\n"),
    ];
    let rows = |root: &Path, name: &str| {
        let table = root.join("out").join(name);
        async move { crate::support::sorted_lines(&crate::support::delta_rows(&table).await) }
    };
    for (file, csv) in inputs {
        let mut reports = Vec::new();
        for (i, root) in roots.iter().enumerate() {
            std::fs::create_dir_all(root.join("landing")).unwrap();
            std::fs::write(root.join("landing").join(file), csv).unwrap();
            let run = pipeline(root, ExpectAction::Drop);
            let run = if i == 0 {
                run.cluster(cluster.url())
            } else {
                run
            };
            reports.push(run.run().await.unwrap());
        }
        let [on_cluster, in_process] = &reports[..] else {
            unreachable!()
        };
        for name in ["orders", "by_amount"] {
            let (got, want) = (
                on_cluster.dataset(name).unwrap(),
                in_process.dataset(name).unwrap(),
            );
            assert_eq!(got.expectations, want.expectations, "{name}: {on_cluster}");
            assert_eq!(
                (got.rows_written, got.dropped_rows),
                (want.rows_written, want.dropped_rows),
                "{name}: {on_cluster}"
            );
        }
        for name in ["orders", "orders_quarantine", "by_amount"] {
            assert_eq!(
                rows(&roots[0], name).await,
                rows(&roots[1], name).await,
                "{file}: {name}"
            );
        }
    }
    // The second run dropped the stored key 2 and the second 5: the checks saw the table.
    assert_eq!(
        rows(&roots[0], "orders").await,
        [
            "| id | amount |",
            "| 1  | 10.0   |",
            "| 2  | 20.0   |",
            "| 5  | 10.0   |"
        ]
    );
    let quarantined = rows(&roots[0], "orders_quarantine").await;
    assert!(
        quarantined
            .iter()
            .any(|row| row.starts_with("| 2 ") && row.contains("[pk]")),
        "{quarantined:?}"
    );
    assert!(logged(&cluster, "rows of `orders`", 2).await >= 2);
    assert!(logged(&cluster, "quarantined rows of `orders_quarantine`", 2).await >= 2);

    // A failing uniqueness rule stops the flow on the executors, naming a row of the key.
    std::fs::write(
        roots[0].join("landing").join("c.csv"),
        "id,amount\n7,1.0\n7,1.0\n",
    )
    .unwrap();
    let failed = pipeline(&roots[0], ExpectAction::Fail)
        .cluster(cluster.url())
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        failed.contains("expectation `pk` of dataset `orders` failed")
            && failed.contains("`UNIQUE (id)`")
            && failed.contains("id=7"),
        "{failed}"
    );
}

/// A batch with quarantined rows, written on the executors, killed before its commits or
/// between its quarantine table's commit and its table's, and run again on the cluster or
/// in-process: every row is once in one of the two tables.
#[test]
fn a_quarantined_batch_killed_on_the_cluster_lands_once_when_run_again_anywhere() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let url = cluster.url();
    let kills = crate::crash::quarantined_batches_land_once(
        &["mid_write", "quarantine_committed"],
        Some(&url),
        Some(&url),
    );
    assert_eq!(kills, 4, "every failpoint was reached in both runs");
    let kills =
        crate::crash::quarantined_batches_land_once(&["quarantine_committed"], Some(&url), None);
    assert_eq!(kills, 2);
    assert!(
        cluster.logged("quarantined rows of `bronze_quarantine`") > 0,
        "the executors wrote the quarantine table"
    );
}

/// A landing-file batch read with DROPMALFORMED is read and written on the executors too:
/// their tasks tell the coordinator what the mode left out, which the run reports as an
/// in-process run does, and the table is the in-process run's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_dropmalformed_leaves_out_on_the_executors_is_reported() {
    use lakeflow::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let landing = dir.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    std::fs::write(landing.join("a.csv"), "id,name\n1,x\nabc,z\nxyz,w\n2,y\n").unwrap();
    let pipeline = |storage: &Path| {
        let landing = landing.display().to_string();
        Pipeline::builder()
            .streaming_table("bronze", move || {
                read_stream_files_with(
                    landing.as_str(),
                    FileOptions::csv()
                        .schema("id INT, name STRING")
                        .option("mode", "dropmalformed"),
                )
            })
            .storage(storage.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    let (on_cluster, in_process) = (dir.path().join("cluster"), dir.path().join("local"));
    let run = pipeline(&on_cluster).cluster(cluster.url());
    run.run().await.unwrap();
    pipeline(&in_process).run().await.unwrap();
    let rows = |root: &Path| {
        let table = root.join("bronze");
        async move { crate::support::sorted_lines(&crate::support::delta_rows(&table).await) }
    };
    assert_eq!(rows(&on_cluster).await, rows(&in_process).await);
    assert_eq!(rows(&on_cluster).await.len(), 1 + 2);
    let text = crate::support::warnings(&run).await;
    assert!(
        text.contains("left out 2 malformed records") && text.contains("a.csv"),
        "{text}"
    );
    assert!(
        logged(&cluster, "rows of `bronze`", 1).await > 0,
        "the executors wrote `bronze`"
    );
}

/// Flows into a Delta sink and a Parquet sink write the sinks' files on the executors: the
/// coordinator commits the Delta sink's with the batch's writer and number, and each task
/// writes its part of the Parquet sink's batch. Over two runs, each sink holds every row once,
/// as an in-process run's sinks do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sinks_are_written_on_the_executors() {
    use lakeflow::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let pipeline = |root: &Path| {
        let landing = root.join("landing").display().to_string();
        let sink = root.join("sink_orders").display().to_string();
        let files = root.join("sink_files").display().to_string();
        Pipeline::builder()
            .streaming_table("orders", move || read_stream_files(landing.as_str(), csv()))
            .create_sink("out", "delta", [("path", sink)])
            .append_flow("out", "to_out", || {
                Ok(read_stream("orders")?.filter(col("status").eq(lit("ok")))?)
            })
            .create_sink("files", "parquet", [("path", files)])
            .append_flow("files", "to_files", || read_stream("orders"))
            .storage(root.join("store").to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    let roots = [dir.path().join("cluster"), dir.path().join("local")];
    for (n, first, count) in [(0, 0, 20), (1, 20, 10)] {
        for (i, root) in roots.iter().enumerate() {
            crate::streaming::land(&root.join("landing"), n, first, count);
            let run = pipeline(root);
            let run = if i == 0 {
                run.cluster(cluster.url())
            } else {
                run
            };
            let report = run.run().await.unwrap();
            assert!(report.succeeded(), "{report}");
        }
        let rows = |root: &Path| {
            let table = root.join("sink_orders");
            async move { crate::support::sorted_lines(&crate::support::delta_rows(&table).await) }
        };
        assert_eq!(rows(&roots[0]).await, rows(&roots[1]).await);
        let files = |root: &Path| {
            let dir = root.join("sink_files").display().to_string();
            async move {
                let ctx = lakeflow::datafusion::prelude::SessionContext::new();
                let batches = ctx
                    .read_parquet(dir, Default::default())
                    .await
                    .unwrap()
                    .collect()
                    .await
                    .unwrap();
                crate::support::sorted_lines(&batches)
            }
        };
        assert_eq!(files(&roots[0]).await, files(&roots[1]).await);
        assert_eq!(
            files(&roots[0]).await.len(),
            1 + first as usize + count as usize
        );
    }
    // 30 orders, every fifth a test order.
    assert_eq!(
        crate::support::delta_count(&roots[0].join("sink_orders")).await,
        24
    );
    assert!(
        logged(&cluster, "rows of `sink_orders`", 2).await >= 2,
        "the executors wrote the Delta sink's files"
    );
    assert!(
        logged(&cluster, "of sink ", 2).await >= 2,
        "the executors wrote the Parquet sink's parts"
    );
}
