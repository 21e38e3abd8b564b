//! SQL pipeline projects: Spark's `spark-pipelines init` project, a medallion pipeline
//! written only in SQL, every legacy Delta Live Tables form, AUTO CDC flows (type 1 and 2,
//! and the legacy `APPLY CHANGES INTO`), and the errors a SQL file can have — each run
//! through `lakeflow::project` and compared with expected tables.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use lakeflow::prelude::*;
use lakeflow::project::Project;

use crate::support::{delta_rows, sorted_lines};

/// Copies `tests/fixtures/<name>` into a new temporary directory; returns it and the copy.
pub fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let target = tmp.path().join(name);
    copy_dir(&source, &target);
    (tmp, target)
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

/// A project in a temporary directory with these files (paths relative to its root).
pub fn project(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    for (path, text) in files {
        let path = tmp.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let root = tmp.path().to_path_buf();
    (tmp, root)
}

/// The error a dry run of the project at `root` reports, as text.
pub async fn dry_run_error(root: &Path) -> String {
    Project::find(root)
        .unwrap()
        .pipeline()
        .dry_run()
        .await
        .unwrap_err()
        .to_string()
}

/// Runs the project at `root` without progress output, on the in-process engine or `engine`.
pub async fn run_on(root: &Path, engine: Option<Arc<dyn lakeflow::Engine>>) -> lakeflow::RunReport {
    let pipeline = Project::find(root)
        .unwrap()
        .pipeline()
        .progress(ProgressMode::Off);
    match engine {
        Some(engine) => pipeline.engine(engine),
        None => pipeline,
    }
    .run()
    .await
    .unwrap()
}

/// Runs the project at `root` without progress output.
pub async fn run(root: &Path) -> lakeflow::RunReport {
    run_on(root, None).await
}

async fn table(storage: &Path, name: &str) -> Vec<String> {
    sorted_lines(&delta_rows(&storage.join(name)).await)
}

#[tokio::test]
async fn the_spark_init_project_runs_as_generated() {
    let (_tmp, root) = fixture("spark_init");
    let project = Project::find(&root.join("transformations")).unwrap();
    assert_eq!(project.spec().name, "spark_init");
    assert_eq!(project.files().len(), 2);
    run(&root).await;
    let storage = root.join("pipeline-storage");
    assert_eq!(
        table(&storage, "example_sql_materialized_view").await,
        ["| id |", "| 0  |", "| 2  |", "| 4  |", "| 6  |", "| 8  |"]
    );
    assert_eq!(
        table(&storage, "example_python_materialized_view")
            .await
            .len(),
        11
    );
}

#[tokio::test]
async fn a_medallion_pipeline_in_sql_runs_and_then_reads_only_new_files() {
    let (_tmp, root) = fixture("medallion_sql");
    let report = run(&root).await;
    assert!(report.succeeded());
    let silver = report.dataset("orders_silver").unwrap();
    assert_eq!(silver.kind, lakeflow::DatasetKind::StreamingTable);
    assert_eq!(silver.dropped_rows, Some(2));
    let storage = root.join("lakeflow-data");
    assert_eq!(
        table(&storage, "orders_silver").await,
        [
            "| order_id | customer_id | amount | country |",
            "| 1        | 10          | 25.0   | FR      |",
            "| 2        | 11          | 150.0  | DE      |",
        ]
    );
    assert_eq!(
        table(&storage, "revenue_by_country").await,
        [
            "| country | orders | revenue |",
            "| DE      | 1      | 150.0   |",
            "| FR      | 1      | 25.0    |",
        ]
    );
    assert_eq!(
        table(&storage, "big_order_count").await,
        ["| big_orders |", "| 1          |"]
    );
    assert_eq!(
        table(&storage, "order_ids").await,
        [
            "| order_id | source  |",
            "| -1       | archive |",
            "| -2       | archive |",
            "| 1        | landing |",
            "| 2        | landing |",
            "| 3        | landing |",
            "| 4        | landing |",
        ]
    );
    assert!(
        !storage.join("big_orders").exists(),
        "a temporary view is not stored"
    );

    std::fs::write(
        root.join("data/landing/orders-0002.csv"),
        "order_id,customer_id,amount\n5,12,30.0\n6,10,200.0\n",
    )
    .unwrap();
    let report = run(&root).await;
    assert_eq!(
        report.dataset("orders_bronze").unwrap().rows_written,
        Some(2),
        "only the new file is read"
    );
    assert_eq!(
        table(&storage, "revenue_by_country").await,
        [
            "| country | orders | revenue |",
            "| DE      | 1      | 150.0   |",
            "| FR      | 3      | 255.0   |",
        ]
    );
    assert_eq!(
        table(&storage, "big_order_count").await,
        ["| big_orders |", "| 2          |"]
    );
    assert_eq!(
        table(&storage, "order_ids").await.len(),
        9,
        "the header, six rows before, two new; the backfill ran once"
    );
}

const ORDERS: &str = "order_id,amount\n1,10.0\n2,-3.0\n3,7.5\n";

#[tokio::test]
async fn every_legacy_delta_live_tables_form_runs() {
    let (_tmp, root) = project(&[
        (
            "lakeflow.yml",
            "name: legacy\nlibraries:\n  - glob:\n      include: dlt/*.sql\nconfiguration:\n  landing: landing\n",
        ),
        ("landing/orders-1.csv", ORDERS),
        (
            "dlt/pipeline.sql",
            "CREATE STREAMING LIVE TABLE raw_orders
COMMENT 'cloud_files, as DLT pipelines wrote it'
AS SELECT * FROM cloud_files('${landing}', 'csv', map('cloudFiles.inferColumnTypes', 'true'));

CREATE OR REFRESH STREAMING LIVE TABLE clean_orders (
  CONSTRAINT positive EXPECT (amount > 0) ON VIOLATION DROP ROW
)
AS SELECT order_id, amount FROM STREAM(LIVE.raw_orders);

CREATE INCREMENTAL LIVE TABLE order_ids
AS SELECT order_id FROM STREAM(LIVE.clean_orders);

CREATE LIVE TABLE total
AS SELECT sum(amount) AS total FROM LIVE.clean_orders;

CREATE TEMPORARY LIVE VIEW doubled
AS SELECT order_id, amount * 2 AS doubled FROM LIVE.clean_orders;

CREATE OR REFRESH LIVE TABLE doubled_total
AS SELECT sum(d.doubled) AS total FROM LIVE.doubled d;
",
        ),
    ]);
    let report = run(&root).await;
    assert_eq!(
        report.dataset("raw_orders").unwrap().kind,
        lakeflow::DatasetKind::StreamingTable
    );
    assert_eq!(
        report.dataset("total").unwrap().kind,
        lakeflow::DatasetKind::MaterializedView
    );
    let storage = root.join("lakeflow-data");
    assert_eq!(table(&storage, "raw_orders").await.len(), 4);
    assert_eq!(
        table(&storage, "clean_orders").await,
        [
            "| order_id | amount |",
            "| 1        | 10.0   |",
            "| 3        | 7.5    |"
        ]
    );
    assert_eq!(
        table(&storage, "order_ids").await,
        ["| order_id |", "| 1        |", "| 3        |"]
    );
    assert_eq!(table(&storage, "total").await, ["| total |", "| 17.5  |"]);
    assert_eq!(
        table(&storage, "doubled_total").await,
        ["| total |", "| 35.0  |"]
    );

    // STREAM(LIVE.x) reads only what is new.
    std::fs::write(
        root.join("landing/orders-2.csv"),
        "order_id,amount\n4,1.0\n",
    )
    .unwrap();
    let report = run(&root).await;
    assert_eq!(report.dataset("order_ids").unwrap().rows_written, Some(1));
    assert_eq!(table(&storage, "total").await, ["| total |", "| 18.5  |"]);
}

#[tokio::test]
async fn streaming_tables_without_a_query_take_flows_and_declared_columns_cast() {
    let (_tmp, root) = project(&[
        (
            "lakeflow.yml",
            "name: flows\nstorage: out\nlibraries:\n  - glob:\n      include: sql/**\n",
        ),
        ("in/a/1.json", "{\"id\": 1, \"v\": \"x\"}\n"),
        ("in/b/1.json", "{\"id\": 2, \"v\": \"y\"}\n{\"id\": 3, \"v\": \"z\"}\n"),
        (
            "sql/flows.sql",
            "CREATE STREAMING TABLE events (id INT NOT NULL, v STRING);
CREATE FLOW from_a AS INSERT INTO events BY NAME SELECT * EXCEPT (_rescued_data) FROM STREAM read_files('in/a', format => 'json');
CREATE FLOW from_b AS INSERT INTO events BY NAME SELECT * EXCEPT (_rescued_data) FROM STREAM read_files('in/b', format => 'json');
CREATE MATERIALIZED VIEW typed (id SMALLINT, label STRING COMMENT 'the v column')
AS SELECT id, v AS label FROM events;
",
        ),
    ]);
    run(&root).await;
    let storage = root.join("out");
    assert_eq!(
        table(&storage, "events").await,
        ["| id | v |", "| 1  | x |", "| 2  | y |", "| 3  | z |"]
    );
    let rows = delta_rows(&storage.join("typed")).await;
    let schema = rows[0].schema();
    assert_eq!(
        schema.field(0).data_type(),
        &lakeflow::datafusion::arrow::datatypes::DataType::Int16
    );
    assert_eq!(schema.field(1).name(), "label");
}

#[tokio::test]
async fn mistakes_name_the_file_line_and_column() {
    let spec = "name: bad\nlibraries:\n  - glob:\n      include: sql/**\n";
    let (_tmp, root) = project(&[
        ("lakeflow.yml", spec),
        (
            "sql/a.sql",
            "CREATE MATERIALIZED VIEW a AS SELECT 1 AS x;\n\nCREATE MATERIALIZED VIEW b\n  PARTITIONED (x) AS SELECT 1 AS x;\n",
        ),
    ]);
    let err = Project::find(&root).unwrap_err().to_string();
    assert!(
        err.starts_with("sql/a.sql:4:15: expected BY, found `(`"),
        "{err}"
    );

    // A glob that matches nothing names its line in the spec.
    let (_tmp, root) = project(&[(
        "lakeflow.yml",
        "name: bad\nlibraries:\n  - glob:\n      include: nothing/**\n",
    )]);
    let err = Project::find(&root).unwrap_err().to_string();
    assert!(
        err.contains("lakeflow.yml:4:16: `nothing/**` matches no file"),
        "{err}"
    );

    // What only planning finds names the definition's place in its file.
    let (_tmp, root) = project(&[
        ("lakeflow.yml", spec),
        (
            "sql/a.sql",
            "-- first\nCREATE MATERIALIZED VIEW a AS SELECT 1 AS x;\n  CREATE MATERIALIZED VIEW b AS SELECT y FROM a;\nCREATE MATERIALIZED VIEW c AS SELECT * FROM STREAM(nope);\n",
        ),
    ]);
    let err = dry_run_error(&root).await;
    assert!(
        err.contains("dataset `b` (sql/a.sql:3:3) has an invalid query"),
        "{err}"
    );
    assert!(err.contains("`c` (sql/a.sql:4:1) reads `nope`"), "{err}");

    // A duplicate across files names both places.
    let (_tmp, root) = project(&[
        ("lakeflow.yml", spec),
        ("sql/a.sql", "CREATE MATERIALIZED VIEW a AS SELECT 1 AS x"),
        ("sql/b.sql", "\nCREATE MATERIALIZED VIEW A AS SELECT 2 AS x"),
    ]);
    let err = dry_run_error(&root).await;
    assert!(
        err.contains("at sql/a.sql:1:1 and at sql/b.sql:2:1"),
        "{err}"
    );
}

#[tokio::test]
async fn a_rust_pipeline_takes_the_sql_files_and_configuration_of_a_spec() {
    let (_tmp, root) = project(&[
        (
            "lakeflow.yml",
            "name: mixed\nlibraries:\n  - glob:\n      include: sql/*.sql\nconfiguration:\n  mixed_test_factor: \"3\"\n",
        ),
        (
            "sql/tripled.sql",
            "CREATE MATERIALIZED VIEW tripled AS SELECT n * ${mixed_test_factor} AS n FROM numbers",
        ),
    ]);
    let rust = Pipeline::builder().materialized_view("numbers", || {
        let factor = lakeflow::project::conf("mixed_test_factor").unwrap_or_default();
        sql(&format!("SELECT CAST({factor} AS BIGINT) AS n"))
    });
    let project = Project::find(&root).unwrap();
    project
        .add_to(rust)
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    assert_eq!(
        table(&root.join("lakeflow-data"), "tripled").await,
        ["| n |", "| 9 |"]
    );
}

#[tokio::test]
async fn auto_cdc_flows_in_sql_apply_a_change_feed_as_scd_type_1_and_2_across_runs() {
    let (_tmp, root) = fixture("cdc_sql");
    let report = run(&root).await;
    assert!(report.succeeded());
    assert_eq!(
        report.dataset("customers_cdc").unwrap().kind,
        lakeflow::DatasetKind::AppendFlow
    );
    let storage = root.join("lakeflow-data");
    assert_eq!(
        table(&storage, "customers").await,
        [
            "| customer_id | name | city   | email           |",
            "| 1           | Ann  | Lyon   | ann@example.com |",
            "| 2           | Bob  | Berlin | bob@example.com |",
            "| 3           | Cid  | Rome   | cid@example.com |",
        ]
    );
    assert_eq!(
        table(&storage, "customers_history").await,
        [
            "| customer_id | name | city   | email           | __START_AT | __END_AT |",
            "| 1           | Ann  | Lyon   | ann@example.com | 4          |          |",
            "| 1           | Ann  | Paris  | ann@example.com | 1          | 4        |",
            "| 2           | Bob  | Berlin | bob@example.com | 2          |          |",
            "| 3           | Cid  | Rome   | cid@example.com | 3          |          |",
        ]
    );

    // The next export: an email change (not tracked), a delete, a change after the last one,
    // a new customer, and a change older than one already applied.
    std::fs::write(
        root.join("data/changes/changes-0002.csv"),
        "customer_id,name,city,email,operation,sequence_num
2,Bob,Berlin,bob@new.example.com,UPDATE,6
3,,,,DELETE,7
1,Ann,Nice,ann@example.com,UPDATE,5
4,Dee,Oslo,dee@example.com,INSERT,8
1,Ann,Nantes,ann@example.com,UPDATE,3
",
    )
    .unwrap();
    let report = run(&root).await;
    assert_eq!(
        report.dataset("customer_changes").unwrap().rows_written,
        Some(5),
        "only the new file is read"
    );
    // Type 1: the highest sequence wins whatever the arrival order; Cid is deleted.
    assert_eq!(
        table(&storage, "customers").await,
        [
            "| customer_id | name | city   | email               |",
            "| 1           | Ann  | Nice   | ann@example.com     |",
            "| 2           | Bob  | Berlin | bob@new.example.com |",
            "| 4           | Dee  | Oslo   | dee@example.com     |",
        ]
    );
    // Type 2: the late change lands at its place in Ann's history, Bob's email is updated in
    // place (not tracked), and Cid's version is closed by the delete.
    assert_eq!(
        table(&storage, "customers_history").await,
        [
            "| customer_id | name | city   | email               | __START_AT | __END_AT |",
            "| 1           | Ann  | Lyon   | ann@example.com     | 4          | 5        |",
            "| 1           | Ann  | Nantes | ann@example.com     | 3          | 4        |",
            "| 1           | Ann  | Nice   | ann@example.com     | 5          |          |",
            "| 1           | Ann  | Paris  | ann@example.com     | 1          | 3        |",
            "| 2           | Bob  | Berlin | bob@new.example.com | 2          |          |",
            "| 3           | Cid  | Rome   | cid@example.com     | 3          | 7        |",
            "| 4           | Dee  | Oslo   | dee@example.com     | 8          |          |",
        ]
    );
}

#[tokio::test]
async fn the_legacy_apply_changes_into_and_a_streaming_table_with_its_cdc_flow_run() {
    let (_tmp, root) = project(&[
        (
            "lakeflow.yml",
            "name: legacy_cdc\ncatalog: main\nschema: shop\nlibraries:\n  - glob:\n      include: dlt/*.sql\n",
        ),
        (
            "landing/changes-1.csv",
            "id,name,amount,op,seq\n1,a,10.0,U,1\n2,b,20.0,U,2\n1,,15.0,U,3\n2,,,D,4\n3,c,30.0,U,5\n",
        ),
        (
            "dlt/cdc.sql",
            "CREATE STREAMING LIVE TABLE changes
AS SELECT * FROM cloud_files('landing', 'csv');

CREATE OR REFRESH STREAMING TABLE main.shop.balances (id BIGINT, name STRING, amount DOUBLE);

APPLY CHANGES INTO LIVE.balances
FROM STREAM(LIVE.changes)
KEYS (id)
IGNORE NULL UPDATES
APPLY AS DELETE WHEN op = \"D\"
SEQUENCE BY seq
COLUMNS * EXCEPT (op, seq, _rescued_data);

CREATE OR REFRESH STREAMING TABLE names
FLOW AUTO CDC FROM STREAM(changes) KEYS (id) APPLY AS DELETE WHEN op = 'D' SEQUENCE BY seq
COLUMNS (id, name);
",
        ),
    ]);
    let report = run(&root).await;
    assert!(report.succeeded());
    assert!(report.dataset("balances_cdc").is_some(), "{report}");
    assert!(report.dataset("names_cdc").is_some(), "{report}");
    // Bob deleted; Ann's NULL name kept; the columns as declared.
    assert_eq!(
        table(&root.join("lakeflow-data"), "balances").await,
        [
            "| id | name | amount |",
            "| 1  | a    | 15.0   |",
            "| 3  | c    | 30.0   |",
        ]
    );
    // Without IGNORE NULL UPDATES, a NULL is a value like any other.
    assert_eq!(
        table(&root.join("lakeflow-data"), "names").await,
        ["| id | name |", "| 1  |      |", "| 3  | c    |"]
    );
}

#[tokio::test]
async fn auto_cdc_mistakes_name_the_file_line_and_column() {
    let spec = "name: bad\nlibraries:\n  - glob:\n      include: sql/**\n";
    let (_tmp, root) = project(&[
        ("lakeflow.yml", spec),
        (
            "sql/cdc.sql",
            "CREATE STREAMING TABLE changes AS SELECT * FROM STREAM read_files('in', format => 'csv');\nCREATE STREAMING TABLE t;\nCREATE FLOW f AS AUTO CDC INTO t\n  FROM STREAM(changes)\n  KEYS (id)\n  SEQUENCE BY seq\n  STORED AS SCD TYPE 3;\n",
        ),
    ]);
    let err = Project::find(&root).unwrap_err().to_string();
    assert!(
        err.starts_with("sql/cdc.sql:7:22: expected 1 or 2 after SCD TYPE"),
        "{err}"
    );

    // What only planning finds (a key the feed does not have) names the flow.
    let (_tmp, root) = project(&[
        ("lakeflow.yml", spec),
        ("in/1.csv", "id,v,seq\n1,x,1\n"),
        (
            "sql/cdc.sql",
            "CREATE STREAMING TABLE changes AS SELECT * FROM STREAM read_files('in', format => 'csv');\nCREATE STREAMING TABLE t;\n\n  CREATE FLOW f AS AUTO CDC INTO t FROM STREAM(changes) KEYS (nope) SEQUENCE BY seq;\n",
        ),
    ]);
    let err = dry_run_error(&root).await;
    assert!(
        err.contains("dataset `f`: key `nope` is not a column of its source `changes`"),
        "{err}"
    );
}
