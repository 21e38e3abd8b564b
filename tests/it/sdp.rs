//! Pipeline semantics as Spark Declarative Pipelines define them, case by case: statements
//! and graph rules Spark's own SDP test suites check (`SqlPipelineSuite` and friends).

use std::path::Path;

use lakeflow::prelude::*;
use lakeflow::project::Project;

use crate::sql_pipelines::project;
use crate::support::{delta_rows, sorted_lines};

const SPEC: &str =
    "name: sdp\nstorage: out\nlibraries:\n  - glob:\n      include: transformations/**\n";

fn pipeline(root: &Path) -> Pipeline {
    Project::find(root)
        .unwrap()
        .pipeline()
        .progress(ProgressMode::Off)
}

async fn table(root: &Path, name: &str) -> Vec<String> {
    sorted_lines(&delta_rows(&root.join("out").join(name)).await)
}

/// Backticked names with `-`, `CLUSTER BY`, a query without `AS`, and a flow named like its
/// table (flows and datasets are separate namespaces in Spark) all run.
#[tokio::test]
async fn spark_syntax_for_names_clustering_and_flows_runs() {
    let sql = "
CREATE MATERIALIZED VIEW `hyphen-mv` CLUSTER BY (id) AS SELECT 1 AS id, 'a' AS v;
CREATE MATERIALIZED VIEW reads_it SELECT id, v FROM `hyphen-mv`;
CREATE STREAMING TABLE b;
CREATE FLOW b AS INSERT INTO b BY NAME SELECT id FROM STREAM(`hyphen-mv`);
";
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("transformations/a.sql", sql)]);
    let report = pipeline(&root).run().await.unwrap();
    assert!(report.succeeded(), "{report}");
    assert_eq!(table(&root, "reads_it").await[1..], ["| 1  | a |"]);
    assert_eq!(table(&root, "b").await[1..], ["| 1  |"]);
    let hyphen = crate::support::open_delta(&root.join("out/hyphen-mv")).await;
    let properties = hyphen
        .snapshot()
        .unwrap()
        .metadata()
        .configuration()
        .clone();
    assert_eq!(
        properties.get("clusteringColumns").map(String::as_str),
        Some("[\"id\"]"),
        "{properties:?}"
    );
}

/// A pipeline with only temporary views (or nothing) would do nothing: an error, as Spark's
/// `RUN_EMPTY_PIPELINE`; `PARTITIONED BY (year(d))` says what to write instead.
#[tokio::test]
async fn an_empty_pipeline_and_an_expression_partition_are_errors() {
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "transformations/a.sql",
            "CREATE TEMPORARY VIEW v AS SELECT 1 AS x;",
        ),
    ]);
    let e = pipeline(&root).dry_run().await.unwrap_err().to_string();
    assert!(e.contains("RUN_EMPTY_PIPELINE"), "{e}");

    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "transformations/a.sql",
            "CREATE MATERIALIZED VIEW m PARTITIONED BY (year(d)) AS SELECT DATE'2024-01-02' AS d;",
        ),
    ]);
    let e = match Project::find(&root) {
        Ok(_) => panic!("an expression partition loads"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("PARTITIONED BY takes column names"), "{e}");
    assert!(e.contains("a.sql:1"), "{e}");

    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "transformations/a.sql",
            "CREATE MATERIALIZED VIEW m CLUSTER BY (a) PARTITIONED BY (b) AS SELECT 1 AS a, 2 AS b;",
        ),
    ]);
    let e = match Project::find(&root) {
        Ok(_) => panic!("clustering and partitioning together load"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("SPECIFY_CLUSTER_BY_WITH_PARTITIONED_BY_IS_NOT_ALLOWED"),
        "{e}"
    );
}

/// A temporary view whose query reads a stream is a streaming view: read with `STREAM(v)`
/// (also by an append flow) its stream reads become the reader's, each row once; read whole
/// it is Spark's `INCOMPATIBLE_STREAMING_VIEW_READ`; a batch view read as a stream is an
/// error too.
#[tokio::test]
async fn a_streaming_view_is_read_as_a_stream_and_only_so() {
    let sql = "
CREATE STREAMING TABLE src AS SELECT * FROM STREAM read_files('data', format => 'csv', header => true);
CREATE TEMPORARY VIEW doubled AS SELECT id, id * 2 AS twice FROM STREAM(src);
CREATE STREAMING TABLE out AS SELECT * FROM STREAM(doubled);
CREATE STREAMING TABLE also;
CREATE FLOW into_also AS INSERT INTO also BY NAME SELECT twice FROM STREAM doubled;
";
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        ("transformations/a.sql", sql),
        ("data/1.csv", "id\n1\n2\n"),
    ]);
    pipeline(&root).run().await.unwrap();
    std::fs::write(root.join("data/2.csv"), "id\n3\n").unwrap();
    pipeline(&root).run().await.unwrap();
    assert_eq!(
        table(&root, "out").await[1..],
        ["| 1  | 2     |", "| 2  | 4     |", "| 3  | 6     |"]
    );
    assert_eq!(table(&root, "also").await.len(), 1 + 3);

    for (query, class) in [
        ("SELECT * FROM doubled", "INCOMPATIBLE_STREAMING_VIEW_READ"),
        (
            "SELECT * FROM STREAM(plain)",
            "INCOMPATIBLE_BATCH_VIEW_READ",
        ),
    ] {
        let sql = format!(
            "CREATE STREAMING TABLE src AS SELECT * FROM STREAM read_files('data', format => 'csv', header => true);
CREATE TEMPORARY VIEW doubled AS SELECT id FROM STREAM(src);
CREATE TEMPORARY VIEW plain AS SELECT 1 AS id;
CREATE MATERIALIZED VIEW reader AS {query};"
        );
        let (_tmp, root) = project(&[
            ("lakeflow.yml", SPEC),
            ("transformations/a.sql", &sql),
            ("data/1.csv", "id\n1\n"),
        ]);
        let e = pipeline(&root).dry_run().await.unwrap_err().to_string();
        assert!(e.contains(class), "{e}");
    }
}

/// `catalog.other_db.mv` is another schema's table, not the pipeline's `mv`: an error naming
/// it (it used to read the pipeline's own `mv` silently); `catalog.own_db.mv` is the
/// pipeline's.
#[tokio::test]
async fn another_schemas_table_is_never_the_pipelines_own() {
    let spec = "name: sdp\nstorage: out\ncatalog: spark_catalog\nschema: db\nlibraries:\n  - glob:\n      include: transformations/**\n";
    let (_tmp, root) = project(&[
        ("lakeflow.yml", spec),
        (
            "transformations/a.sql",
            "CREATE MATERIALIZED VIEW mv AS SELECT 1 AS x;
CREATE MATERIALIZED VIEW own AS SELECT * FROM spark_catalog.db.mv;
CREATE MATERIALIZED VIEW other AS SELECT * FROM spark_catalog.other_db.mv;",
        ),
    ]);
    let e = pipeline(&root).dry_run().await.unwrap_err().to_string();
    assert!(e.contains("other_db.mv"), "{e}");
    assert!(!e.contains("`own`"), "the own schema's name resolves: {e}");
}

/// A streaming table that aggregates a stream (Spark: stateful streaming, the complete
/// result) holds the aggregate over every row so far, run after run.
#[tokio::test]
async fn a_streaming_aggregation_holds_the_complete_result() {
    let sql = "
CREATE STREAMING TABLE src AS SELECT * FROM STREAM read_files('data', format => 'csv', header => true);
CREATE STREAMING TABLE counts AS SELECT g, count(*) AS n, sum(id) AS total FROM STREAM(src) GROUP BY g;
CREATE STREAMING TABLE kinds AS SELECT DISTINCT g FROM STREAM(src);
";
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        ("transformations/a.sql", sql),
        ("data/1.csv", "id,g\n1,a\n2,b\n3,a\n"),
    ]);
    pipeline(&root).run().await.unwrap();
    std::fs::write(root.join("data/2.csv"), "id,g\n4,a\n5,c\n").unwrap();
    pipeline(&root).run().await.unwrap();
    pipeline(&root).run().await.unwrap();
    assert_eq!(
        table(&root, "counts").await[1..],
        [
            "| a | 3 | 8     |",
            "| b | 1 | 2     |",
            "| c | 1 | 5     |"
        ]
    );
    assert_eq!(table(&root, "kinds").await.len(), 1 + 3);
}

/// A watermark needs a time window to close, and a delay lakeflow can read: each mistake is
/// an error at its place.
#[tokio::test]
async fn a_watermark_without_a_window_or_with_a_bad_delay_is_an_error() {
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "transformations/a.sql",
            "CREATE STREAMING TABLE w AS SELECT * FROM STREAM(src) WATERMARK ts DELAY OF INTERVAL 1 fortnight;",
        ),
    ]);
    let e = match Project::find(&root) {
        Ok(_) => panic!("a bad delay loads"),
        Err(e) => e.to_string(),
    };
    assert!(e.contains("is not a delay"), "{e}");
    assert!(e.contains("a.sql:1:"), "{e}");
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "transformations/a.sql",
            "CREATE MATERIALIZED VIEW src AS SELECT current_timestamp() AS ts, 1 AS n;
CREATE STREAMING TABLE w AS SELECT ts, count(*) AS c FROM STREAM(src) WATERMARK ts DELAY OF INTERVAL 1 MINUTE GROUP BY ts;",
        ),
    ]);
    let e = pipeline(&root).dry_run().await.unwrap_err().to_string();
    assert!(e.contains("`w`") && e.contains("no time window"), "{e}");
    // Windows of a file stream would see only each run's new files.
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        ("landing/a.csv", "t\n2026-01-01 00:00:00\n"),
        (
            "transformations/a.sql",
            "CREATE STREAMING TABLE w AS SELECT window.start AS s, count(*) AS c
FROM STREAM read_files('landing', format => 'csv', schema => 't TIMESTAMP') WATERMARK t DELAY OF INTERVAL 1 MINUTE
GROUP BY window(t, '1 minute');",
        ),
    ]);
    let e = pipeline(&root).dry_run().await.unwrap_err().to_string();
    assert!(e.contains("streaming table first"), "{e}");
}

/// `col INT NOT NULL` in a column list is enforced: a NULL there fails the flow and nothing
/// is written; `PRIMARY KEY` is informational.
#[tokio::test]
async fn not_null_columns_are_enforced() {
    let sql =
        "CREATE MATERIALIZED VIEW m (id INT NOT NULL, name STRING, CONSTRAINT pk PRIMARY KEY (id))
AS SELECT * FROM VALUES (1, 'a'), (NULL, 'b') AS t(id, name);";
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("transformations/a.sql", sql)]);
    let e = pipeline(&root).run().await.unwrap_err().to_string();
    assert!(e.contains("id NOT NULL"), "{e}");
    assert!(
        !root.join("out/m/_delta_log").exists(),
        "nothing was written"
    );
}

/// `CREATE VIEW` (a view Spark persists) counts as a dataset, so a pipeline of such views
/// runs; it may not read a stream (`STREAMING_RELATION_FOR_PERSISTED_VIEW`), a temporary
/// view may.
#[tokio::test]
async fn persisted_views_count_and_do_not_read_streams() {
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        ("transformations/a.sql", "CREATE VIEW v AS SELECT 1 AS x;"),
    ]);
    assert!(pipeline(&root).run().await.unwrap().succeeded());
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "transformations/a.sql",
            "CREATE STREAMING TABLE s AS SELECT * FROM STREAM read_files('data', format => 'csv', header => true);
CREATE VIEW v AS SELECT * FROM STREAM(s);",
        ),
        ("data/1.csv", "id\n1\n"),
    ]);
    let e = pipeline(&root).dry_run().await.unwrap_err().to_string();
    assert!(e.contains("STREAMING_RELATION_FOR_PERSISTED_VIEW"), "{e}");
}

/// Datasets in several schemas of one pipeline, as Databricks' default publishing mode
/// writes them: `db2.mv2`, and after `USE SCHEMA db3` plain names in `db3`. A dataset of the
/// pipeline's own schema is stored at `<storage>/<name>`, one of schema `s` at
/// `<storage>/s/<name>`; each is a Delta table an independent reader opens; the graph names
/// them with their schema.
#[tokio::test]
async fn datasets_of_several_schemas_are_stored_per_schema() {
    let spec = "name: sdp\nstorage: out\ncatalog: spark_catalog\nschema: db\nlibraries:\n  - glob:\n      include: transformations/**\n";
    let (_tmp, root) = project(&[
        ("lakeflow.yml", spec),
        (
            "transformations/a.sql",
            "CREATE MATERIALIZED VIEW mv1 AS SELECT 1 AS x;
CREATE MATERIALIZED VIEW db2.mv2 AS SELECT x + 1 AS x FROM mv1;
USE SCHEMA db3;
CREATE MATERIALIZED VIEW mv3 AS SELECT x * 10 AS x FROM db2.mv2;
CREATE TEMPORARY VIEW tv AS SELECT x FROM mv3;
CREATE MATERIALIZED VIEW mv4 AS SELECT x + 1 AS x FROM tv;
USE SCHEMA db;
CREATE MATERIALIZED VIEW back AS SELECT x FROM spark_catalog.db3.mv4 UNION ALL SELECT x FROM db.mv1;",
        ),
    ]);
    let report = pipeline(&root).run().await.unwrap();
    assert!(report.succeeded(), "{report}");
    let names: Vec<&str> = report.datasets.iter().map(|d| d.name.as_str()).collect();
    for name in ["mv1", "db2.mv2", "db3.mv3", "db3.mv4", "back"] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    assert_eq!(table(&root, "mv1").await[1..], ["| 1 |"]);
    assert_eq!(table(&root, "db2/mv2").await[1..], ["| 2 |"]);
    assert_eq!(table(&root, "db3/mv3").await[1..], ["| 20 |"]);
    assert_eq!(table(&root, "back").await[1..], ["| 1  |", "| 21 |"]);
    let rows =
        crate::servers::python_rows(&root.join("out/db3/mv4").display().to_string(), &[], &[]);
    assert_eq!(rows, ["[\"x\"]", "[\"21\"]"]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_lakeflow"))
        .args(["graph", "--format", "mermaid"])
        .current_dir(&root)
        .output()
        .unwrap();
    let graph = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{graph}");
    assert!(
        graph.contains("db3.mv4") && graph.contains("db2.mv2"),
        "{graph}"
    );
}

/// Events landed as CSV (`id,t` with `t` in seconds), and per `window` and id their count,
/// appended as the watermark (the latest event time minus 10 seconds) closes each window.
fn windowed_counts(window: &str) -> String {
    format!(
        "
CREATE STREAMING TABLE events AS
SELECT id, timestamp_seconds(t) AS eventTime FROM STREAM read_files('landing', format => 'csv', schema => 'id STRING, t BIGINT');
CREATE STREAMING TABLE counts AS
SELECT CAST(window.start AS LONG) AS wStart, CAST(window.end AS LONG) AS wEnd, id, count(*) AS cnt
FROM STREAM events WATERMARK eventTime DELAY OF INTERVAL 10 seconds
GROUP BY {window}, id;
"
    )
}

/// `STREAM t WATERMARK ts DELAY OF INTERVAL ..` with `GROUP BY window(ts, ..)`: each window is
/// appended once, in the run whose watermark (the latest `ts` minus the delay) passes its end,
/// and a row that arrives for a window already appended is dropped, as in Spark's append
/// output mode.
#[tokio::test]
async fn a_watermark_appends_each_window_once_it_closes() {
    let sql = windowed_counts("window(eventTime, '5 seconds')");
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("transformations/a.sql", &sql)]);
    let land = |n: usize, rows: &str| {
        std::fs::create_dir_all(root.join("landing")).unwrap();
        std::fs::write(
            root.join(format!("landing/{n}.csv")),
            format!("id,t\n{rows}"),
        )
        .unwrap();
    };
    // Watermark 3 - 10: nothing closes.
    let written = |report: lakeflow::RunReport| report.dataset("counts").unwrap().rows_written;
    land(1, "a,1\nb,2\na,3\n");
    assert_eq!(
        written(pipeline(&root).run().await.unwrap()),
        Some(0),
        "no window yet"
    );
    // Watermark 20 - 10 = 10: [0, 5) closes.
    land(2, "a,20\n");
    assert_eq!(written(pipeline(&root).run().await.unwrap()), Some(2));
    // A late row for [0, 5) (dropped) and one at 27: watermark 17, nothing new closes.
    land(3, "b,4\nc,27\n");
    assert_eq!(written(pipeline(&root).run().await.unwrap()), Some(0));
    // Watermark 30: [20, 25) and [25, 30) close.
    land(4, "a,40\n");
    assert_eq!(written(pipeline(&root).run().await.unwrap()), Some(2));
    assert_eq!(
        table(&root, "counts").await[1..],
        [
            "| 0      | 5    | a  | 2   |",
            "| 0      | 5    | b  | 1   |",
            "| 20     | 25   | a  | 1   |",
            "| 25     | 30   | c  | 1   |",
        ]
    );
    // Nothing new: nothing appended again.
    assert_eq!(
        written(pipeline(&root).run().await.unwrap()).unwrap_or(0),
        0
    );
    assert_eq!(table(&root, "counts").await.len(), 5);
}

/// Tables outside the pipeline, named as a catalog would name them (`samples.tpch.orders`,
/// `db_ext.tbl`), are read where the spec's `tables:` maps them: a Delta table (read whole or
/// as a stream of its appends) or files of a format. A name nobody maps says where to map it.
#[tokio::test]
async fn tables_outside_the_pipeline_are_read_where_the_spec_maps_them() {
    let spec = "name: sdp\nstorage: out\nlibraries:\n  - glob:\n      include: transformations/**\ntables:\n  samples.tpch.orders: existing/orders\n  db_ext.tbl: existing/orders\n  ref.countries:\n    path: countries.csv\n    format: csv\n";
    let files = "
CREATE MATERIALIZED VIEW a AS SELECT o.id, c.name FROM samples.tpch.orders o JOIN ref.countries c ON o.id = c.id;
CREATE STREAMING TABLE b AS SELECT * FROM STREAM(db_ext.tbl);
";
    let (_tmp, root) = project(&[
        ("lakeflow.yml", spec),
        ("transformations/a.sql", files),
        ("countries.csv", "id,name\n1,Chad\n2,Peru\n"),
    ]);
    // The existing table: a plain Delta table another pipeline wrote.
    let write_orders = |upto: i64| {
        let storage = root.join("existing").display().to_string();
        async move {
            let report = Pipeline::builder()
                .storage(storage)
                .progress(ProgressMode::Off)
                .materialized_view("orders", move || {
                    sql(&format!("SELECT id FROM range(1, {upto})"))
                })
                .run()
                .await
                .unwrap();
            assert!(report.succeeded(), "{report}");
        }
    };
    write_orders(3).await;
    let report = pipeline(&root).run().await.unwrap();
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        table(&root, "a").await[1..],
        ["| 1  | Chad |", "| 2  | Peru |"]
    );
    assert_eq!(table(&root, "b").await[1..], ["| 1  |", "| 2  |"]);

    let (_tmp2, other) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "transformations/a.sql",
            "CREATE MATERIALIZED VIEW a AS SELECT * FROM samples.tpch.lineitem;",
        ),
    ]);
    let e = pipeline(&other).dry_run().await.unwrap_err().to_string();
    assert!(
        e.contains("samples.tpch.lineitem") && e.contains("`tables:`"),
        "{e}"
    );
}

/// A sliding window (`window(ts, '10 seconds', '5 seconds')`) holds a row in every window
/// that covers it; each window is appended once its end passes the watermark.
#[tokio::test]
async fn a_watermark_appends_each_sliding_window_once_it_closes() {
    let sql = windowed_counts("window(eventTime, '10 seconds', '5 seconds')");
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("transformations/a.sql", &sql)]);
    let written = |report: lakeflow::RunReport| report.dataset("counts").unwrap().rows_written;
    std::fs::create_dir_all(root.join("landing")).unwrap();
    let mut appended = Vec::new();
    // Each run's rows, and what it appends: watermarks -7, 10 ([-5, 5) and [0, 10) close),
    // 17 (the late row at 4 belongs to windows already appended), 30.
    for (n, rows) in ["a,1\nb,2\na,3\n", "a,20\n", "b,4\nc,27\n", "a,40\n"]
        .iter()
        .enumerate()
    {
        std::fs::write(
            root.join(format!("landing/{n}.csv")),
            format!("id,t\n{rows}"),
        )
        .unwrap();
        appended.push(written(pipeline(&root).run().await.unwrap()).unwrap_or(0));
    }
    assert_eq!(appended, [0, 4, 0, 3]);
    assert_eq!(
        table(&root, "counts").await[1..],
        [
            "| -5     | 5    | a  | 2   |",
            "| -5     | 5    | b  | 1   |",
            "| 0      | 10   | a  | 2   |",
            "| 0      | 10   | b  | 1   |",
            "| 15     | 25   | a  | 1   |",
            "| 20     | 30   | a  | 1   |",
            "| 20     | 30   | c  | 1   |",
        ]
    );
}

/// A sliding window is a grouping: over a join it asks for a subquery, and outside GROUP BY it
/// is an error rather than one of a row's windows.
#[tokio::test]
async fn a_sliding_window_outside_a_grouping_of_one_relation_is_explained() {
    let cases = [
        (
            "CREATE MATERIALIZED VIEW a AS SELECT 1 AS k, TIMESTAMP '2024-01-01 10:00:00' AS ts;
CREATE MATERIALIZED VIEW b AS SELECT 1 AS k;
CREATE MATERIALIZED VIEW w AS SELECT window.start AS s, count(*) AS n FROM a JOIN b ON a.k = b.k GROUP BY window(a.ts, '2 hours', '1 hour');",
            "group a subquery of the join",
        ),
        (
            "CREATE MATERIALIZED VIEW w AS SELECT window(TIMESTAMP '2024-01-01 10:00:00', '2 hours', '1 hour') AS w;",
            "in GROUP BY window(..) only",
        ),
    ];
    for (sql, says) in cases {
        let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("transformations/a.sql", sql)]);
        let e = match pipeline(&root).run().await {
            Ok(report) => report.to_string(),
            Err(e) => e.to_string(),
        };
        assert!(e.contains(says), "{e}");
    }
}

/// A schema is a directory of the storage, as a dataset of the home schema is: a dataset
/// named like another dataset's schema would share its directory (and a vacuum of one would
/// delete the other), so it is an error naming both.
#[tokio::test]
async fn a_schema_named_like_a_dataset_is_an_error() {
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        (
            "transformations/a.sql",
            "CREATE MATERIALIZED VIEW sales AS SELECT 1 AS x;
CREATE MATERIALIZED VIEW sales.daily AS SELECT x FROM sales;",
        ),
    ]);
    let e = pipeline(&root).dry_run().await.unwrap_err().to_string();
    assert!(e.contains("`sales.daily`") && e.contains("`sales`"), "{e}");
    assert!(e.contains("directory"), "{e}");
}

/// A stored table's partition columns are fixed, as in Spark (`CANNOT_UPDATE_PARTITION_COLUMNS`):
/// a definition that changes them fails that table's flow and leaves the table as it was; a
/// full refresh re-creates it with the new ones.
#[tokio::test]
async fn changing_partition_columns_needs_a_full_refresh() {
    let sql = |by: &str| {
        format!(
            "CREATE MATERIALIZED VIEW m PARTITIONED BY ({by}) AS SELECT 1 AS x, 2 AS y;\n\
             CREATE STREAMING TABLE s PARTITIONED BY ({by}) AS SELECT * FROM STREAM(m);\n"
        )
    };
    let (_tmp, root) = project(&[("lakeflow.yml", SPEC), ("transformations/a.sql", &sql("x"))]);
    let report = pipeline(&root).run().await.unwrap();
    assert!(report.succeeded(), "{report}");
    let partitions = |name: &'static str| {
        let root = root.clone();
        async move {
            crate::support::open_delta(&root.join("out").join(name))
                .await
                .snapshot()
                .unwrap()
                .metadata()
                .partition_columns()
                .to_vec()
        }
    };
    assert_eq!(partitions("m").await, ["x"]);

    std::fs::write(root.join("transformations/a.sql"), sql("y")).unwrap();
    let e = pipeline(&root).run().await.unwrap_err().to_string();
    assert!(
        e.contains("m        materialized view  FAILED")
            && e.contains("partitioned by `x` but the definition asks for `y`")
            && e.contains("CANNOT_UPDATE_PARTITION_COLUMNS"),
        "{e}"
    );
    assert_eq!(partitions("m").await, ["x"]);

    let report = pipeline(&root)
        .full_refresh(["m", "s"])
        .run()
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    assert_eq!(partitions("m").await, ["y"]);
    assert_eq!(partitions("s").await, ["y"]);
    assert_eq!(table(&root, "s").await[1..], ["| 1 | 2 |"]);
}

/// A streaming table keeps its columns' types: a definition whose query now gives a column a
/// type the stored one cannot hold without loss (`5` into a BOOLEAN column) fails its flow
/// (`CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE`) and appends nothing, until a full refresh
/// re-creates the table with the new type.
#[tokio::test]
async fn a_streaming_column_that_changes_type_needs_a_full_refresh() {
    let sql = |ty: &str| {
        format!(
            "CREATE STREAMING TABLE t AS SELECT CAST(x AS {ty}) AS x FROM STREAM read_files('landing', format => 'csv', schema => 'x STRING');\n"
        )
    };
    let (_tmp, root) = project(&[
        ("lakeflow.yml", SPEC),
        ("transformations/a.sql", &sql("BOOLEAN")),
        ("landing/1.csv", "x\ntrue\n"),
    ]);
    let report = pipeline(&root).run().await.unwrap();
    assert!(report.succeeded(), "{report}");
    std::fs::write(root.join("landing/2.csv"), "x\n5\n").unwrap();
    std::fs::write(root.join("transformations/a.sql"), sql("INT")).unwrap();
    let e = pipeline(&root).run().await.unwrap_err().to_string();
    assert!(
        e.contains("column `x` is stored as boolean but the query now gives integer")
            && e.contains("CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE"),
        "{e}"
    );
    assert_eq!(table(&root, "t").await[1..], ["| true |"]);
    let report = pipeline(&root).full_refresh(["t"]).run().await.unwrap();
    assert!(report.succeeded(), "{report}");
    // CAST('true' AS INT) is NULL (non-ANSI), as in Spark.
    assert_eq!(table(&root, "t").await[1..], ["|   |", "| 5 |"]);
}
