//! Maintenance: compaction keeps tables at a bounded number of files, streams read through a
//! compaction without seeing a row twice, `lakeflow maintain` compacts and vacuums, and the
//! Python `deltalake` package reads the result.

use std::path::Path;
use std::process::Command;

use lakeflow::prelude::*;
use lakeflow::{MaintenanceOptions, RunReport};

use crate::streaming::land;
use crate::support::{delta_rows, open_delta, sorted_lines};

fn active_files(table: &deltalake::DeltaTable) -> usize {
    table.snapshot().unwrap().log_data().num_files()
}

fn parquet_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".parquet")
        })
        .count()
}

/// bronze (new files) -> silver (new bronze rows), maintained with `options`; `managed`
/// false sets `pipelines.autoOptimize.managed = false` on bronze.
fn pipeline(
    landing: &Path,
    storage: &Path,
    options: MaintenanceOptions,
    managed: bool,
) -> Pipeline {
    let landing = landing.display().to_string();
    let mut bronze =
        Dataset::streaming_table("bronze", move || read_stream_files(landing.as_str(), csv()));
    if !managed {
        bronze = bronze.table_property("pipelines.autoOptimize.managed", "false");
    }
    Pipeline::builder()
        .dataset(bronze)
        .streaming_table("silver", || {
            Ok(read_stream("bronze")?.select(vec![col("order_id"), col("amount")])?)
        })
        .storage(storage.to_str().unwrap())
        .maintenance(options)
        .progress(ProgressMode::Off)
}

fn compacted(report: &RunReport, table: &str) -> u64 {
    report
        .maintenance
        .iter()
        .filter(|m| m.table == table)
        .map(|m| m.outcome.files_compacted)
        .sum()
}

/// Order ids of a table, sorted; a row read twice shows as a repeated id.
async fn ids(dir: &Path) -> Vec<i64> {
    use lakeflow::datafusion::arrow::array::AsArray;
    use lakeflow::datafusion::arrow::datatypes::Int64Type;
    let mut ids: Vec<i64> = delta_rows(dir)
        .await
        .iter()
        .flat_map(|b| {
            let column = b.column_by_name("order_id").unwrap();
            let column = lakeflow::datafusion::arrow::compute::cast(
                column,
                &lakeflow::datafusion::arrow::datatypes::DataType::Int64,
            )
            .unwrap();
            column.as_primitive::<Int64Type>().values().to_vec()
        })
        .collect();
    ids.sort_unstable();
    ids
}

#[tokio::test]
async fn auto_compaction_keeps_a_table_at_a_bounded_number_of_files() {
    let tmp = tempfile::tempdir().unwrap();
    let (landing, storage) = (tmp.path().join("landing"), tmp.path().join("store"));
    let options = MaintenanceOptions {
        compact_min_files: 4,
        ..MaintenanceOptions::default()
    };
    let mut compactions = 0;
    for n in 0..10u64 {
        land(&landing, n as usize, n * 10, 3);
        let report = pipeline(&landing, &storage, options.clone(), true)
            .run()
            .await
            .unwrap();
        compactions += compacted(&report, "bronze");
        let bronze = open_delta(&storage.join("bronze")).await;
        assert!(
            active_files(&bronze) < 4,
            "run {n}: bronze has {} files",
            active_files(&bronze)
        );
    }
    assert!(compactions >= 8, "{compactions} files compacted");
    // Every row once in both tables, though silver read bronze across its compactions.
    let expected: Vec<i64> = (0..10).flat_map(|n| n * 10..n * 10 + 3).collect();
    assert_eq!(ids(&storage.join("bronze")).await, expected);
    assert_eq!(ids(&storage.join("silver")).await, expected);
    // The maintenance is in the event log, with Databricks' event type.
    let events = pipeline(&landing, &storage, options, true)
        .event_log_sql(
            "SELECT count(*) AS n FROM event_log WHERE event_type = 'maintenance_progress' \
             AND origin.dataset_name = 'bronze' \
             AND details:maintenance_progress.maintenance_state = 'COMPLETED'",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let lines = sorted_lines(&events);
    let n: u64 = lines[1]
        .trim_matches(|c| c == '|' || c == ' ')
        .parse()
        .unwrap();
    assert!(n >= 2, "{lines:?}");
}

#[tokio::test]
async fn a_table_that_is_not_managed_is_not_compacted_after_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let (landing, storage) = (tmp.path().join("landing"), tmp.path().join("store"));
    let options = MaintenanceOptions {
        compact_min_files: 2,
        ..MaintenanceOptions::default()
    };
    for n in 0..4u64 {
        land(&landing, n as usize, n * 10, 2);
        let report = pipeline(&landing, &storage, options.clone(), false)
            .run()
            .await
            .unwrap();
        assert_eq!(compacted(&report, "bronze"), 0);
    }
    assert_eq!(active_files(&open_delta(&storage.join("bronze")).await), 4);
    // silver is managed: compacted.
    assert!(active_files(&open_delta(&storage.join("silver")).await) < 4);
    // `maintain` does what it is asked, managed or not.
    let done = pipeline(&landing, &storage, options, false)
        .maintain(Some(&["bronze".to_string()]))
        .await
        .unwrap();
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].outcome.files_compacted, 4);
    assert_eq!(active_files(&open_delta(&storage.join("bronze")).await), 1);
}

#[tokio::test]
async fn a_stream_reads_appends_compacted_before_it_read_them_exactly_once() {
    let tmp = tempfile::tempdir().unwrap();
    let (landing, storage) = (tmp.path().join("landing"), tmp.path().join("store"));
    let manual = MaintenanceOptions {
        after_runs: false,
        ..MaintenanceOptions::default()
    };
    let p = || pipeline(&landing, &storage, manual.clone(), true);
    land(&landing, 0, 0, 3);
    p().run().await.unwrap();
    // Three appends to bronze that silver has not read yet...
    for n in 1..4u64 {
        land(&landing, n as usize, n * 10, 3);
        p().refresh(["bronze"]).run().await.unwrap();
    }
    // ... compacted away from bronze's current snapshot before silver reads them ...
    let done = p().maintain(Some(&["bronze".to_string()])).await.unwrap();
    assert_eq!(done[0].outcome.files_compacted, 4);
    // ... and one more append after the compaction.
    land(&landing, 4, 40, 3);
    p().refresh(["bronze"]).run().await.unwrap();
    let report = p().run().await.unwrap();
    assert_eq!(report.dataset("silver").unwrap().rows_written, Some(12));
    let expected: Vec<i64> = (0..5).flat_map(|n| n * 10..n * 10 + 3).collect();
    assert_eq!(ids(&storage.join("silver")).await, expected);
    // A further run reads nothing again.
    let report = p().run().await.unwrap();
    assert_eq!(report.dataset("silver").unwrap().rows_written, Some(0));
    assert_eq!(ids(&storage.join("silver")).await, expected);
}

/// A SQL project whose table `events` lakeflow did not write file by file: 1,000 small files
/// made by one write that rolls a file per batch.
async fn thousand_file_table(dir: &Path, retention: Option<&str>) {
    use lakeflow::datafusion::arrow::array::{Int64Array, StringArray};
    use lakeflow::datafusion::arrow::datatypes::{DataType, Field, Schema};
    use lakeflow::datafusion::arrow::record_batch::RecordBatch;
    use std::sync::Arc;
    std::fs::create_dir_all(dir.join("transformations")).unwrap();
    std::fs::create_dir_all(dir.join("landing")).unwrap();
    let properties = retention
        .map(|r| format!("TBLPROPERTIES ('delta.deletedFileRetentionDuration' = '{r}')\n"))
        .unwrap_or_default();
    std::fs::write(
        dir.join("lakeflow.yml"),
        "name: kept\nstorage: store\nlibraries:\n  - glob:\n      include: transformations/**\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("transformations/events.sql"),
        format!(
            "CREATE STREAMING TABLE events\n{properties}AS SELECT * FROM STREAM read_files('landing', format => 'csv', schema => 'id BIGINT, name STRING');\n"
        ),
    )
    .unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new("name", DataType::Utf8, true),
    ]));
    let batches: Vec<RecordBatch> = (0..1000i64)
        .map(|b| {
            RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(Int64Array::from(vec![b * 2, b * 2 + 1])),
                    Arc::new(StringArray::from(vec![format!("n{b}"), format!("m{b}")])),
                ],
            )
            .unwrap()
        })
        .collect();
    // The pipeline creates the table from one landed row, then 1,000 files are appended to
    // it by another writer.
    std::fs::write(dir.join("landing/a0.csv"), "id,name\n-1,first\n").unwrap();
    let (code, out) = cli(dir, &["run", "--progress", "off"]);
    assert_eq!(code, 0, "{out}");
    let table = open_delta(&dir.join("store/events")).await;
    table
        .write(batches)
        .with_save_mode(deltalake::protocol::SaveMode::Append)
        .with_target_file_size(std::num::NonZeroU64::new(1))
        .await
        .unwrap();
}

fn cli(dir: &Path, args: &[&str]) -> (u8, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_lakeflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap() as u8, text)
}

#[tokio::test]
async fn lakeflow_maintain_compacts_a_thousand_small_files_into_a_handful() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    thousand_file_table(dir, None).await;
    let table_dir = dir.join("store/events");
    assert_eq!(active_files(&open_delta(&table_dir).await), 1001);
    let uri = table_dir.display().to_string();
    let before = crate::servers::python_rows(&uri, &[], &[]);
    // A header line, then the rows.
    assert_eq!(before.len(), 1 + 2001);

    let (code, out) = cli(dir, &["maintain", "--table", "events"]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("events: OPTIMIZE, VACUUM, 1001 -> "), "{out}");
    let files = active_files(&open_delta(&table_dir).await);
    assert!(files <= 4, "{files} files after maintenance");
    // An independent reader sees the same rows.
    assert_eq!(crate::servers::python_rows(&uri, &[], &[]), before);
    // Within the default retention (7 days) the compacted files stay on storage, for
    // readers of older versions.
    assert!(parquet_files(&table_dir) >= 1000);

    // A table that is not the pipeline's is named in the error.
    let (code, out) = cli(dir, &["maintain", "--table", "nope"]);
    assert_eq!(code, 3, "{out}");
    assert!(out.contains("`nope`") || out.contains("nope"), "{out}");
    assert!(out.contains("events"), "{out}");
}

#[tokio::test]
async fn vacuum_honours_the_tables_retention() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    thousand_file_table(dir, Some("interval 0 seconds")).await;
    let table_dir = dir.join("store/events");
    let (code, out) = cli(dir, &["maintain"]);
    assert_eq!(code, 0, "{out}");
    // With no retention the files compaction removed are deleted at once.
    let files = active_files(&open_delta(&table_dir).await);
    assert_eq!(parquet_files(&table_dir), files, "{out}");
    let rows = crate::servers::python_rows(&table_dir.display().to_string(), &[], &[]);
    assert_eq!(rows.len(), 1 + 2001);
    // The pipeline still runs on the maintained table: a new file is appended to it.
    std::fs::write(dir.join("landing/a.csv"), "id,name\n5000,x\n").unwrap();
    let (code, out) = cli(dir, &["run", "--progress", "off"]);
    assert_eq!(code, 0, "{out}");
    let rows = crate::servers::python_rows(&table_dir.display().to_string(), &[], &[]);
    assert_eq!(rows.len(), 1 + 2002);
}
