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
}
