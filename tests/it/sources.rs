//! External batch sources: Parquet, CSV, JSON and Delta paths, and registered external tables
//! that `sql(...)` resolves by name.

use std::path::Path;
use std::sync::Arc;

use lakeflow::datafusion::dataframe::DataFrameWriteOptions;
use lakeflow::datafusion::prelude::SessionContext;
use lakeflow::prelude::*;
use lakeflow::{Error, MemoryStorage};

async fn write_files(dir: &Path) {
    let ctx = SessionContext::new();
    let df = ctx
        .sql("SELECT * FROM (VALUES (1, 'ann'), (2, 'bob'), (3, 'cy')) AS t(id, name)")
        .await
        .unwrap();
    let path = |name: &str| dir.join(name).display().to_string();
    df.clone()
        .write_parquet(&path("people.parquet"), DataFrameWriteOptions::new(), None)
        .await
        .unwrap();
    df.clone()
        .write_csv(&path("people.csv"), DataFrameWriteOptions::new(), None)
        .await
        .unwrap();
    df.write_json(&path("people.json"), DataFrameWriteOptions::new(), None)
        .await
        .unwrap();
}

#[tokio::test]
async fn parquet_csv_and_json_paths_are_read() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path()).await;
    let base = dir.path().display().to_string();
    let (p, c, j) = (
        format!("{base}/people.parquet"),
        format!("{base}/people.csv"),
        format!("{base}/people.json"),
    );
    let storage = Arc::new(MemoryStorage::new());
    let report = Pipeline::builder()
        .materialized_view("from_parquet", move || read_parquet(p.as_str()))
        .materialized_view("from_csv", move || read_csv(c.as_str()))
        .materialized_view("from_json", move || read_json(j.as_str()))
        .materialized_view("all_ids", || {
            sql(
                "SELECT id FROM from_parquet UNION ALL SELECT id FROM from_csv
                 UNION ALL SELECT id FROM from_json",
            )
        })
        .storage_backend(storage.clone())
        .run()
        .await
        .unwrap();
    for name in ["from_parquet", "from_csv", "from_json"] {
        assert_eq!(
            report.dataset(name).unwrap().rows_written,
            Some(3),
            "{name}"
        );
    }
    assert_eq!(report.dataset("all_ids").unwrap().rows_written, Some(9));
    let graph = Pipeline::builder()
        .materialized_view("x", move || {
            read_files(format!("{base}/people.csv"), csv().delimiter(b','))
        })
        .storage_backend(storage)
        .dry_run()
        .await
        .unwrap();
    assert!(
        graph
            .get("x")
            .unwrap()
            .sources
            .iter()
            .any(|s| s.contains("people.csv")),
        "sources are recorded for lineage"
    );
}

#[tokio::test]
async fn a_delta_path_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let upstream = dir.path().join("upstream");
    Pipeline::builder()
        .materialized_view("numbers", || {
            sql("SELECT * FROM (VALUES (1), (2), (3), (4)) AS t(n)")
        })
        .storage(upstream.to_str().unwrap())
        .run()
        .await
        .unwrap();
    let table = upstream.join("numbers").display().to_string();
    let report = Pipeline::builder()
        .materialized_view("evens", move || {
            Ok(read_delta(table.as_str())?.filter((col("n") % lit(2)).eq(lit(0)))?)
        })
        .storage(dir.path().join("downstream").to_str().unwrap())
        .run()
        .await
        .unwrap();
    assert_eq!(report.dataset("evens").unwrap().rows_written, Some(2));
}

#[tokio::test]
async fn registered_external_tables_resolve_in_sql() {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path()).await;
    let csv_path = dir.path().join("people.csv").display().to_string();
    let report = Pipeline::builder()
        .external_table("raw_people", SourceSpec::csv(csv_path))
        .materialized_view("names", || {
            sql("SELECT upper(name) AS name FROM RAW_PEOPLE")
        })
        .storage_backend(Arc::new(MemoryStorage::new()))
        .run()
        .await
        .unwrap();
    assert_eq!(report.dataset("names").unwrap().rows_written, Some(3));
}

#[tokio::test]
async fn a_missing_file_names_the_dataset_and_the_path() {
    let error = Pipeline::builder()
        .materialized_view("orders", || read_parquet("/nonexistent/orders.parquet"))
        .storage_backend(Arc::new(MemoryStorage::new()))
        .dry_run()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Definition { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with("dataset `orders` (tests/it/sources.rs:"),
        "{text}"
    );
    assert!(
        text.contains("cannot open source `/nonexistent/orders.parquet`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_view_over_unchanged_files_is_up_to_date_and_recomputed_when_they_change() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("people.csv");
    std::fs::write(&data, "id,name\n1,ann\n2,bob\n").unwrap();
    let path = data.display().to_string();
    let pipeline = Pipeline::builder()
        .materialized_view("people", move || read_csv(path.as_str()))
        .storage(dir.path().join("store").to_str().unwrap())
        .progress(ProgressMode::Off);
    let first = pipeline.run().await.unwrap();
    assert_eq!(first.dataset("people").unwrap().rows_written, Some(2));
    let second = pipeline.run().await.unwrap();
    assert_eq!(
        second.dataset("people").unwrap().status,
        lakeflow::FlowStatus::UpToDate
    );
    std::fs::write(&data, "id,name\n1,ann\n2,bob\n3,cy\n").unwrap();
    let third = pipeline.run().await.unwrap();
    assert_eq!(third.dataset("people").unwrap().rows_written, Some(3));
}
