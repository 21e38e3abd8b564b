//! Append flows: several flows into one streaming table, each with its own checkpoint; `once`
//! flows; full refresh of a table several flows write; and the definition errors.

use std::path::Path;

use lakeflow::prelude::*;

use crate::support::{delta_count, delta_rows, sorted_lines};

/// Lands a CSV file of `rows` orders starting at id `first` in `dir`.
fn land(dir: &Path, file: &str, first: u64, rows: u64) {
    std::fs::create_dir_all(dir).unwrap();
    let mut text = String::from("order_id,amount\n");
    for id in first..first + rows {
        text.push_str(&format!("{id},{}\n", id * 10));
    }
    std::fs::write(dir.join(file), text).unwrap();
}

/// `orders` written by two live flows (EU and US landing directories) and a backfill once.
fn regions(root: &Path) -> Pipeline {
    let eu = root.join("eu").display().to_string();
    let us = root.join("us").display().to_string();
    Pipeline::builder()
        .dataset(Dataset::create_streaming_table("orders").comment("Orders of every region"))
        .append_flow("orders", "eu_orders", move || {
            read_stream_files(eu.as_str(), csv())
        })
        .append_flow("orders", "us_orders", move || {
            read_stream_files(us.as_str(), csv())
        })
        .dataset(
            Dataset::append_flow("orders", "orders_backfill", || {
                sql("SELECT CAST(-1 AS BIGINT) AS order_id")
            })
            .once(),
        )
        .materialized_view("order_count", || sql("SELECT count(*) AS n FROM orders"))
        .storage(root.join("store").to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// The rows of the table at `dir`, each as `a,b,..`, sorted.
async fn rows(dir: &Path) -> Vec<String> {
    let lines = sorted_lines(&delta_rows(dir).await);
    let mut rows: Vec<String> = lines
        .iter()
        .skip(1) // the header
        .map(|line| {
            line.trim_matches('|')
                .split('|')
                .map(str::trim)
                .collect::<Vec<_>>()
                .join(",")
        })
        .collect();
    rows.sort();
    rows
}

async fn order_ids(root: &Path) -> Vec<String> {
    rows(&root.join("store/orders")).await
}

#[tokio::test]
async fn flows_into_one_table_each_append_their_new_rows_once() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    land(&root.join("eu"), "a.csv", 0, 5);
    land(&root.join("us"), "a.csv", 100, 3);
    let first = regions(root).run().await.unwrap();
    assert_eq!(first.dataset("eu_orders").unwrap().rows_written, Some(5));
    assert_eq!(first.dataset("us_orders").unwrap().rows_written, Some(3));
    assert_eq!(
        first.dataset("orders_backfill").unwrap().rows_written,
        Some(1)
    );
    assert_eq!(
        first.dataset("orders").unwrap().rows_written,
        Some(9),
        "the table's row sums its flows: {first}"
    );
    assert_eq!(
        first.dataset("eu_orders").unwrap().kind,
        DatasetKind::AppendFlow
    );
    assert_eq!(delta_count(&root.join("store/orders")).await, 9);
    assert_eq!(
        delta_count(&root.join("store/order_count")).await,
        1,
        "readers of the table run after every flow into it"
    );

    // New files in one region only: only its flow reads anything; the backfill stays done.
    land(&root.join("eu"), "b.csv", 5, 2);
    let second = regions(root).run().await.unwrap();
    assert_eq!(second.dataset("eu_orders").unwrap().rows_written, Some(2));
    assert_eq!(second.dataset("us_orders").unwrap().rows_written, Some(0));
    assert_eq!(
        second.dataset("orders_backfill").unwrap().rows_written,
        Some(0),
        "a once flow runs once"
    );
    let mut expected: Vec<String> = (0..7)
        .chain(100..103)
        .map(|id| format!("{id},{}", id * 10))
        .collect();
    expected.push("-1,".to_string());
    expected.sort();
    assert_eq!(order_ids(root).await, expected);
    // Each flow has its own checkpoint.
    for flow in ["eu_orders", "us_orders", "orders_backfill"] {
        assert!(
            root.join(format!("store/_lakeflow/checkpoints/{flow}/current.json"))
                .exists()
                || root
                    .join(format!("store/_lakeflow/checkpoints/{flow}/v1/latest.json"))
                    .exists(),
            "{flow} has a checkpoint"
        );
    }
}

#[tokio::test]
async fn a_full_refresh_of_a_shared_table_recomputes_every_flow_once() {
    let root = tempfile::tempdir().unwrap();
    let root = root.path();
    land(&root.join("eu"), "a.csv", 0, 5);
    land(&root.join("us"), "a.csv", 100, 3);
    regions(root).run().await.unwrap();
    land(&root.join("us"), "b.csv", 103, 1);
    regions(root).run().await.unwrap();
    let before = order_ids(root).await;
    assert_eq!(before.len(), 10);

    let refreshed = regions(root).full_refresh(["orders"]).run().await.unwrap();
    assert_eq!(
        refreshed.dataset("eu_orders").unwrap().rows_written,
        Some(5)
    );
    assert_eq!(
        refreshed.dataset("us_orders").unwrap().rows_written,
        Some(4)
    );
    assert_eq!(
        refreshed.dataset("orders_backfill").unwrap().rows_written,
        Some(1),
        "a once flow runs again after a full refresh"
    );
    assert_eq!(order_ids(root).await, before, "every row once, none twice");

    // After the refresh, runs are incremental again.
    land(&root.join("eu"), "c.csv", 5, 1);
    let next = regions(root).run().await.unwrap();
    assert_eq!(next.dataset("eu_orders").unwrap().rows_written, Some(1));
    assert_eq!(
        next.dataset("orders_backfill").unwrap().rows_written,
        Some(0)
    );
    assert_eq!(order_ids(root).await.len(), 11);

    // A protected table is not reset.
    let protected = regions(root)
        .dataset(
            Dataset::create_streaming_table("other")
                .table_property("pipelines.reset.allowed", "false"),
        )
        .dataset(Dataset::append_flow("other", "other_once", || sql("SELECT 1 AS x")).once());
    protected.run().await.unwrap();
    let again = regions(root)
        .dataset(
            Dataset::create_streaming_table("other")
                .table_property("pipelines.reset.allowed", "false"),
        )
        .dataset(Dataset::append_flow("other", "other_once", || sql("SELECT 1 AS x")).once())
        .full_refresh_all()
        .run()
        .await
        .unwrap();
    assert_eq!(again.dataset("other_once").unwrap().rows_written, Some(0));
    assert_eq!(delta_count(&root.join("store/other")).await, 1);
}

#[tokio::test]
async fn a_flow_fills_missing_columns_with_null_and_casts_to_the_table() {
    let root = tempfile::tempdir().unwrap();
    let schema = std::sync::Arc::new(lakeflow::datafusion::arrow::datatypes::Schema::new(vec![
        lakeflow::datafusion::arrow::datatypes::Field::new(
            "id",
            lakeflow::datafusion::arrow::datatypes::DataType::Int64,
            true,
        ),
        lakeflow::datafusion::arrow::datatypes::Field::new(
            "note",
            lakeflow::datafusion::arrow::datatypes::DataType::Utf8,
            true,
        ),
    ]));
    let report = Pipeline::builder()
        .dataset(Dataset::create_streaming_table("events").schema(schema))
        .dataset(
            Dataset::append_flow("events", "ids", || sql("SELECT CAST(7 AS INT) AS id")).once(),
        )
        .storage(root.path().to_str().unwrap())
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    assert_eq!(report.dataset("ids").unwrap().rows_written, Some(1));
    let batches = delta_rows(&root.path().join("events")).await;
    assert_eq!(
        batches[0].schema().field(0).data_type(),
        &lakeflow::datafusion::arrow::datatypes::DataType::Int64
    );
    assert_eq!(rows(&root.path().join("events")).await, ["7,"]);
}

async fn dry_run_error(pipeline: Pipeline) -> String {
    pipeline
        .storage(IN.with(|d| d.path().join("store")).to_str().unwrap())
        .dry_run()
        .await
        .unwrap_err()
        .to_string()
}

thread_local! {
    /// A landing directory with one file, for the stream sources of the error cases.
    static IN: tempfile::TempDir = {
        let dir = tempfile::tempdir().unwrap();
        land(&dir.path().join("in"), "a.csv", 0, 1);
        dir
    };
}

fn landing() -> String {
    IN.with(|d| d.path().join("in").display().to_string())
}

#[tokio::test]
async fn flow_definition_errors_name_the_flow_and_the_fix() {
    let source = || sql("SELECT 1 AS id");
    let base = || {
        Pipeline::builder()
            .streaming_table("events", || read_stream_files(landing().as_str(), csv()))
            .materialized_view("numbers", source)
    };

    let error = dry_run_error(base().append_flow("evnts", "f", || read_stream("numbers"))).await;
    assert!(
        error.contains("`f`")
            && error.contains("its target `evnts` is not a dataset")
            && error.contains("did you mean `events`"),
        "{error}"
    );

    let error = dry_run_error(base().append_flow("numbers", "f", || read_stream("events"))).await;
    assert!(
        error.contains("its target `numbers` is a materialized view"),
        "{error}"
    );

    let error = dry_run_error(Pipeline::builder().create_streaming_table("t").append_flow(
        "t",
        "f",
        || sql("SELECT 1 AS id"),
    ))
    .await;
    assert!(
        error.contains("`f`") && error.contains("reads no stream") && error.contains("once = true"),
        "{error}"
    );

    let error = dry_run_error(
        Pipeline::builder()
            .create_streaming_table("t")
            .append_flow("t", "live", || read_stream_files(landing().as_str(), csv()))
            .dataset(Dataset::append_flow("t", "f", || read_stream("t")).once()),
    )
    .await;
    assert!(
        error.contains("cycle"),
        "a flow reading its own target: {error}"
    );

    let error = dry_run_error(
        Pipeline::builder()
            .create_streaming_table("t")
            .dataset(Dataset::append_flow("t", "a", || sql("SELECT 1 AS id")).once())
            .dataset(Dataset::append_flow("t", "b", || sql("SELECT 'x' AS id")).once()),
    )
    .await;
    assert!(
        error.contains("flows `a` and `b` give column `id` different types"),
        "{error}"
    );

    let error = dry_run_error(
        Pipeline::builder()
            .create_streaming_table("t")
            .dataset(Dataset::append_flow("t", "a", || sql("SELECT 1 AS id")).once())
            .materialized_view("r", || read("a")),
    )
    .await;
    assert!(
        error.contains("`a` is an append flow into `t`, not a dataset; read `t`"),
        "{error}"
    );

    let error = dry_run_error(Pipeline::builder().create_streaming_table("t")).await;
    assert!(error.contains("no append flow writes into it"), "{error}");

    let error = dry_run_error(
        base().dataset(Dataset::append_flow("events", "f", || read_stream("numbers")).once()),
    )
    .await;
    assert!(
        error.contains("a `once` flow reads its inputs whole"),
        "{error}"
    );

    let error = dry_run_error(
        Pipeline::builder()
            .materialized_view("m", source)
            .dataset(Dataset::streaming_table("s", || read("m")))
            .append_flow("s", "f", || read_stream_files(landing().as_str(), csv())),
    )
    .await;
    assert!(
        error.contains("its query reads no stream, so each run would replace what they appended"),
        "{error}"
    );
}

#[tokio::test]
async fn refresh_selects_tables_not_flows() {
    let root = tempfile::tempdir().unwrap();
    land(&root.path().join("eu"), "a.csv", 0, 1);
    land(&root.path().join("us"), "a.csv", 9, 1);
    let error = regions(root.path())
        .refresh(["eu_orders"])
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("is an append flow") && error.contains("name its target `orders`"),
        "{error}"
    );
    let report = regions(root.path())
        .refresh(["orders"])
        .run()
        .await
        .unwrap();
    assert_eq!(report.dataset("eu_orders").unwrap().rows_written, Some(1));
    assert_eq!(
        report.dataset("order_count").unwrap().status,
        lakeflow::FlowStatus::Excluded
    );
}
