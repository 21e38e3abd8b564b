//! Runs that write Delta tables: contents read back with deltalake itself, metadata, atomic
//! replacement, temporary views never stored.

use lakeflow::FlowStatus;
use lakeflow::prelude::*;

use crate::support::{delta_count, delta_rows, open_delta, sorted_lines};

fn orders_pipeline() -> Pipeline {
    Pipeline::builder()
        .materialized_view("orders", || {
            sql("SELECT * FROM (VALUES (1, 'FR', 10.0), (2, 'DE', 20.5), (3, 'FR', 5.0), (4, 'US', -1.0))
                 AS t(id, country, amount)")
        })
        .temporary_view("valid_orders", || {
            Ok(read("orders")?.filter(col("amount").gt(lit(0.0)))?)
        })
        .dataset(
            Dataset::materialized_view("revenue", || {
                sql("SELECT country, sum(amount) AS revenue, count(*) AS orders
                     FROM valid_orders GROUP BY country")
            })
            .comment("Revenue per country")
            .partition_cols(["country"])
            .table_property("delta.appendOnly", "false")
            .table_property("quality", "gold"),
        )
}

#[tokio::test]
async fn tables_land_in_delta_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let report = orders_pipeline()
        .storage(dir.path().to_str().unwrap())
        .run()
        .await
        .unwrap();

    assert!(report.succeeded(), "{report}");
    assert_eq!(report.dataset("orders").unwrap().rows_written, Some(4));
    assert_eq!(report.dataset("revenue").unwrap().rows_written, Some(2));
    assert!(
        report.dataset("valid_orders").is_none(),
        "views are not flows"
    );

    let revenue = delta_rows(&dir.path().join("revenue")).await;
    assert_eq!(
        sorted_lines(&revenue),
        [
            "| country | revenue | orders |",
            "| DE      | 20.5    | 1      |",
            "| FR      | 15.0    | 2      |",
        ]
    );
    assert_eq!(delta_count(&dir.path().join("orders")).await, 4);
    assert!(
        !dir.path().join("valid_orders").exists(),
        "a temporary view is never stored"
    );
    // Each run draws the graph with its statuses beside the event log.
    let page = std::fs::read_to_string(dir.path().join("_lakeflow/graph.html")).unwrap();
    for expected in ["orders", "revenue", "valid_orders", "COMPLETED"] {
        assert!(page.contains(expected), "{expected} not on the page");
    }
}

#[tokio::test]
async fn table_options_are_stored_in_delta_metadata() {
    let dir = tempfile::tempdir().unwrap();
    orders_pipeline()
        .storage(dir.path().to_str().unwrap())
        .run()
        .await
        .unwrap();

    let table = open_delta(&dir.path().join("revenue")).await;
    let snapshot = table.snapshot().unwrap();
    let metadata = snapshot.metadata();
    assert_eq!(metadata.partition_columns(), &["country".to_string()]);
    assert_eq!(metadata.description(), Some("Revenue per country"));
    assert_eq!(
        metadata
            .configuration()
            .get("delta.appendOnly")
            .map(String::as_str),
        Some("false")
    );
    assert_eq!(
        metadata.configuration().get("quality").map(String::as_str),
        Some("gold"),
        "a property of the user's own is kept too"
    );
    // Partitioned on disk as Delta does it.
    assert!(dir.path().join("revenue/country=FR").is_dir());
}

#[tokio::test]
async fn each_run_replaces_the_table_in_one_commit() {
    let dir = tempfile::tempdir().unwrap();
    let first = orders_pipeline()
        .storage(dir.path().to_str().unwrap())
        .run()
        .await
        .unwrap();
    // The same definition over the same inputs is up to date: not recomputed.
    let same = orders_pipeline()
        .storage(dir.path().to_str().unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!(same.dataset("orders").unwrap().status, FlowStatus::UpToDate);
    assert_eq!(
        same.dataset("revenue").unwrap().status,
        FlowStatus::UpToDate
    );
    assert!(same.to_string().contains("2 up to date"), "{same}");
    // A changed definition is recomputed and replaces the table.
    let second = Pipeline::builder()
        .materialized_view("orders", || {
            sql("SELECT 1 AS id, 'FR' AS country, 2.0 AS amount")
        })
        .storage(dir.path().to_str().unwrap())
        .refresh(["orders"])
        .run()
        .await
        .unwrap();

    assert_eq!(first.dataset("orders").unwrap().version, Some(0));
    assert_eq!(second.dataset("orders").unwrap().version, Some(1));
    let table = open_delta(&dir.path().join("orders")).await;
    assert_eq!(table.version(), Some(1));
    // Replaced, not appended.
    assert_eq!(delta_count(&dir.path().join("orders")).await, 1);
}

#[tokio::test]
async fn an_empty_result_is_an_empty_table() {
    let dir = tempfile::tempdir().unwrap();
    let report = Pipeline::builder()
        .materialized_view("nothing", || sql("SELECT 1 AS id WHERE false"))
        .storage(dir.path().to_str().unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!(report.dataset("nothing").unwrap().rows_written, Some(0));
    assert_eq!(delta_count(&dir.path().join("nothing")).await, 0);
}

#[tokio::test]
async fn report_prints_a_table() {
    let dir = tempfile::tempdir().unwrap();
    let report = orders_pipeline()
        .storage(dir.path().to_str().unwrap())
        .run()
        .await
        .unwrap();
    let text = report.to_string();
    assert!(text.starts_with("run COMPLETED in "), "{text}");
    assert!(text.contains("2 completed, 0 failed, 0 skipped"), "{text}");
    let orders_line = text
        .lines()
        .find(|l| l.trim_start().starts_with("orders "))
        .unwrap();
    assert!(orders_line.contains("materialized view"), "{orders_line}");
    assert!(orders_line.contains("COMPLETED"), "{orders_line}");
    assert!(orders_line.contains(" 4 "), "{orders_line}");
}
