//! The event log queried as Databricks documents it: the monitoring queries of Databricks'
//! "Pipeline event log" pages run through `Pipeline::event_log_sql` as they are written, and
//! give the counts of the run report.
//!
//! The only adaptation any query needs: none for those of the current documentation (they
//! read `event_log_raw` and the `latest_update` temporary view, which lakeflow accepts as
//! written); the older documentation's `'${latest_update.id}'`, a notebook variable set from
//! Python, has the id substituted, as the notebook would.

use std::collections::BTreeSet;
use std::path::Path;

use lakeflow::datafusion::arrow::array::RecordBatch;
use lakeflow::prelude::*;
use lakeflow::{FlowStatus, RunReport};

use crate::support::strings;

/// Databricks' "Pipeline event log" documentation: the last update.
const LATEST_UPDATE: &str = "CREATE OR REPLACE TEMP VIEW latest_update AS
SELECT origin.update_id AS id
FROM event_log_raw
WHERE event_type = 'create_update'
ORDER BY timestamp DESC
LIMIT 1;
";

/// Databricks' documentation: "Query lineage information".
const LINEAGE: &str = "SELECT
  details:flow_definition.output_dataset as output_dataset,
  details:flow_definition.input_datasets as input_dataset
FROM
  event_log_raw,
  latest_update
WHERE
  event_type = 'flow_definition'
  AND
  origin.update_id = latest_update.id;";

/// Databricks' documentation: "Query data quality" (the expectation metrics of the last
/// update).
const DATA_QUALITY: &str = r#"SELECT
  row_expectations.dataset as dataset,
  row_expectations.name as expectation,
  SUM(row_expectations.passed_records) as passing_records,
  SUM(row_expectations.failed_records) as failing_records
FROM
  (
    SELECT
      explode(
        from_json(
          details:flow_progress:data_quality:expectations,
          "array<struct<name: string, dataset: string, passed_records: int, failed_records: int>>"
        )
      ) row_expectations
    FROM
      event_log_raw,
      latest_update
    WHERE
      event_type = 'flow_progress'
      AND origin.update_id = latest_update.id
  )
GROUP BY
  row_expectations.dataset,
  row_expectations.name;"#;

/// The older documentation's data quality query ("Delta Live Tables event log", and
/// Databricks Academy's notebooks), spaces before the colons; `${latest_update.id}` is
/// substituted.
const DATA_QUALITY_OLD: &str = r#"SELECT row_expectations.dataset as dataset,
       row_expectations.name as expectation,
       SUM(row_expectations.passed_records) as passing_records,
       SUM(row_expectations.failed_records) as failing_records
FROM
  (SELECT explode(
            from_json(details :flow_progress :data_quality :expectations,
                      "array<struct<name: string, dataset: string, passed_records: int, failed_records: int>>")
          ) row_expectations
   FROM event_log_raw
   WHERE event_type = 'flow_progress' AND
         origin.update_id = '${latest_update.id}'
  )
GROUP BY row_expectations.dataset, row_expectations.name"#;

/// Databricks' documentation: "Monitor data backlog".
const BACKLOG: &str = "SELECT
  timestamp,
  Double(details :flow_progress.metrics.backlog_bytes) as backlog
FROM
  event_log_raw,
  latest_update
WHERE
  event_type ='flow_progress'
  AND
  origin.update_id = latest_update.id;";

/// Databricks' documentation: "Query user actions" (lakeflow records none).
const AUDIT: &str = "SELECT timestamp, details:user_action:action, details:user_action:user_name FROM event_log_raw WHERE event_type = 'user_action'";

/// Rows written and dropped per flow of the last update, as monitoring notebooks for
/// Databricks write it (`details:flow_progress.metrics.num_output_rows`).
const ROWS_WRITTEN: &str = "SELECT origin.flow_name AS flow,
       CAST(details:flow_progress.metrics.num_output_rows AS BIGINT) AS rows_written,
       CAST(details:flow_progress.data_quality.dropped_records AS BIGINT) AS rows_dropped
FROM event_log_raw, latest_update
WHERE event_type = 'flow_progress' AND origin.update_id = latest_update.id
  AND details:flow_progress.metrics.num_output_rows IS NOT NULL";

fn land(landing: &Path, n: usize, rows: &str) {
    std::fs::write(
        landing.join(format!("events-{n:03}.csv")),
        format!("id,amount,status\n{rows}"),
    )
    .unwrap();
}

/// `orders` (a materialized view: a warn rule and a drop rule), `bronze` (new files, a drop
/// rule), `silver` (bronze's new rows, a warn rule) and `total` (over `orders`).
fn pipeline(landing: &Path, storage: &Path) -> Pipeline {
    let landing = landing.display().to_string();
    Pipeline::builder()
        .dataset(
            Dataset::materialized_view("orders", || {
                sql("SELECT * FROM (VALUES
                       (1, 10.0, 'ok'), (2, 20.0, 'ok'), (3, NULL, 'ok'), (4, -1.0, 'ok'),
                       (5, -2.0, 'ok'), (6, 5.0, 'test'), (7, 7.0, 'ok'), (8, 8.0, 'ok'))
                     AS t(id, amount, status)")
            })
            .expect("not_test", "status <> 'test'")
            .expect_or_drop("positive_amount", "amount > 0"),
        )
        .dataset(
            Dataset::streaming_table("bronze", move || read_stream_files(landing.as_str(), csv()))
                .expect_or_drop("valid_id", "id IS NOT NULL"),
        )
        .dataset(Dataset::table("silver", || read_stream("bronze")).expect("large", "amount > 5"))
        .materialized_view("total", || sql("SELECT sum(amount) AS total FROM orders"))
        .name("shop")
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// Two runs: the second finds one new file, and `orders` up to date.
async fn two_runs(dir: &Path) -> (Pipeline, RunReport, RunReport) {
    let landing = dir.join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    land(&landing, 1, "1,10.0,ok\n,3.0,ok\n3,4.0,ok\n4,8.0,ok\n");
    let pipeline = pipeline(&landing, &dir.join("data"));
    let first = pipeline.run().await.unwrap();
    land(&landing, 2, "5,1.0,ok\n6,6.0,ok\n7,7.0,ok\n");
    let second = pipeline.run().await.unwrap();
    assert_eq!(
        second.dataset("orders").unwrap().status,
        FlowStatus::UpToDate
    );
    (pipeline, first, second)
}

async fn query(pipeline: &Pipeline, sql: &str) -> Vec<RecordBatch> {
    pipeline
        .event_log_sql(sql)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{sql}"))
        .collect()
        .await
        .unwrap_or_else(|e| panic!("{e}\n{sql}"))
}

/// Every row as its values in text, sorted.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for batch in batches {
        let columns: Vec<Vec<String>> = batch.columns().iter().map(|c| strings(c)).collect();
        for i in 0..batch.num_rows() {
            rows.push(columns.iter().map(|c| c[i].clone()).collect());
        }
    }
    rows.sort();
    rows
}

/// `(dataset, expectation, passed, failed)` of every rule the report counted.
fn reported_expectations(report: &RunReport) -> Vec<Vec<String>> {
    let mut rows: Vec<Vec<String>> = report
        .datasets
        .iter()
        .flat_map(|d| {
            d.expectations.iter().map(|e| {
                vec![
                    d.name.clone(),
                    e.name.clone(),
                    e.passed.to_string(),
                    e.failed.to_string(),
                ]
            })
        })
        .collect();
    rows.sort();
    rows
}

async fn latest_update_id(pipeline: &Pipeline) -> String {
    let id = query(
        pipeline,
        &format!("{LATEST_UPDATE} SELECT id FROM latest_update"),
    )
    .await;
    rows(&id)[0][0].clone()
}

#[tokio::test]
async fn the_documented_data_quality_query_gives_the_reported_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, first, second) = two_runs(dir.path()).await;
    let expected = reported_expectations(&second);
    // `orders` was up to date: the second run counted only the streams' new rows.
    assert_eq!(
        expected,
        [
            ["bronze", "valid_id", "3", "0"],
            ["silver", "large", "2", "1"],
        ]
    );
    let quality = query(&pipeline, &format!("{LATEST_UPDATE}\n{DATA_QUALITY}")).await;
    assert_eq!(rows(&quality), expected);

    // The older page's text, the notebook variable substituted.
    let id = latest_update_id(&pipeline).await;
    let old = query(
        &pipeline,
        &DATA_QUALITY_OLD.replace("${latest_update.id}", &id),
    )
    .await;
    assert_eq!(rows(&old), expected);

    // Over every update: the first run's counts added.
    let all_updates = DATA_QUALITY.replace(
        "      event_log_raw,\n      latest_update\n    WHERE\n      event_type = 'flow_progress'\n      AND origin.update_id = latest_update.id",
        "      event_log_raw\n    WHERE\n      event_type = 'flow_progress'",
    );
    assert_ne!(all_updates, DATA_QUALITY, "the filter is taken out");
    let mut totals = reported_expectations(&first);
    for row in &mut totals {
        if let Some(later) = expected.iter().find(|r| r[..2] == row[..2]) {
            for i in [2, 3] {
                let sum: u64 = row[i].parse::<u64>().unwrap() + later[i].parse::<u64>().unwrap();
                row[i] = sum.to_string();
            }
        }
    }
    assert_eq!(
        totals,
        [
            ["bronze", "valid_id", "6", "1"],
            ["orders", "not_test", "7", "1"],
            ["orders", "positive_amount", "5", "3"],
            ["silver", "large", "4", "2"],
        ]
    );
    assert_eq!(rows(&query(&pipeline, &all_updates).await), totals);
}

#[tokio::test]
async fn rows_written_and_dropped_match_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _, second) = two_runs(dir.path()).await;
    let written = query(&pipeline, &format!("{LATEST_UPDATE}{ROWS_WRITTEN}")).await;
    let mut expected: Vec<Vec<String>> = second
        .datasets
        .iter()
        .filter(|d| d.status == FlowStatus::Completed)
        .map(|d| {
            vec![
                d.name.clone(),
                d.rows_written.unwrap().to_string(),
                d.dropped_rows.unwrap().to_string(),
            ]
        })
        .collect();
    expected.sort();
    // `orders` and `total` were up to date: nothing written, no metrics.
    assert_eq!(expected, [["bronze", "3", "0"], ["silver", "3", "0"]]);
    assert_eq!(rows(&written), expected);

    let backlog = query(&pipeline, &format!("{LATEST_UPDATE}{BACKLOG}")).await;
    let backlog = rows(&backlog);
    assert!(!backlog.is_empty());
    // lakeflow measures no backlog: the documented query runs and reads NULL.
    assert!(backlog.iter().all(|r| r[1] == "NULL"), "{backlog:?}");

    let audit = query(&pipeline, AUDIT).await;
    assert!(rows(&audit).is_empty());
}

#[tokio::test]
async fn the_documented_lineage_query_lists_each_flow_and_its_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _, _) = two_runs(dir.path()).await;
    let lineage = query(&pipeline, &format!("{LATEST_UPDATE}{LINEAGE}")).await;
    assert_eq!(
        rows(&lineage),
        [
            ["bronze", "[]"],
            ["orders", "[]"],
            ["silver", r#"["bronze"]"#],
            ["total", r#"["orders"]"#],
        ]
    );
}

#[tokio::test]
async fn origin_has_databricks_ids_and_lakeflow_keeps_its_own_columns() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _, _) = two_runs(dir.path()).await;
    // One pipeline id over both runs, the one kept in the storage; update_id is run_id.
    let ids = query(
        &pipeline,
        "SELECT DISTINCT origin.pipeline_id, origin.update_id = origin.run_id FROM event_log",
    )
    .await;
    let ids = rows(&ids);
    assert_eq!(ids.len(), 1, "{ids:?}");
    assert_eq!(ids[0][1], "true");
    let state = std::fs::read_to_string(dir.path().join("data/_lakeflow/pipeline.json")).unwrap();
    assert!(state.contains(&ids[0][0]), "{state}");

    // A flow keeps its id across runs; a streaming flow's completion names its batch.
    let flows = query(
        &pipeline,
        "SELECT origin.flow_name, origin.table_name, count(DISTINCT origin.flow_id),
                count(DISTINCT origin.update_id), max(origin.batch_id)
         FROM event_log WHERE event_type = 'flow_progress'
         GROUP BY origin.flow_name, origin.table_name",
    )
    .await;
    assert_eq!(
        rows(&flows),
        [
            ["bronze", "bronze", "1", "2", "1"],
            ["orders", "orders", "1", "2", "NULL"],
            ["silver", "silver", "1", "2", "1"],
            ["total", "total", "1", "2", "NULL"],
        ]
    );

    let levels = query(
        &pipeline,
        "SELECT DISTINCT maturity_level, event_type FROM event_log",
    )
    .await;
    let levels: BTreeSet<String> = rows(&levels).into_iter().map(|r| r.join(" ")).collect();
    assert_eq!(
        levels,
        [
            "STABLE create_update",
            "STABLE dataset_definition",
            "STABLE flow_definition",
            "STABLE flow_progress",
            "STABLE update_progress",
        ]
        .map(String::from)
        .into()
    );

    // Databricks' details keys, and lakeflow's beside them.
    let details = query(
        &pipeline,
        "SELECT details:create_update.cause, details:create_update.full_refresh,
                details:create_update.storage IS NOT NULL
         FROM event_log WHERE event_type = 'create_update' LIMIT 1",
    )
    .await;
    assert_eq!(rows(&details), [["API_CALL", "false", "true"]]);
    let flows = query(
        &pipeline,
        "SELECT origin.flow_name, details:flow_definition.flow_type,
                details:flow_definition.explain_text IS NOT NULL, details:flow_definition.target
         FROM event_log WHERE event_type = 'flow_definition'
         AND origin.update_id = (SELECT max(origin.update_id) FROM event_log)",
    )
    .await;
    assert_eq!(
        rows(&flows),
        [
            ["bronze", "APPEND", "true", "bronze"],
            ["orders", "COMPLETE", "true", "orders"],
            ["silver", "APPEND", "true", "silver"],
            ["total", "COMPLETE", "true", "total"],
        ]
    );
    let schema = query(
        &pipeline,
        "SELECT details:dataset_definition.dataset_type,
                details:dataset_definition.schema[2].name,
                details:dataset_definition.schema[2].data_type
         FROM event_log WHERE event_type = 'dataset_definition'
         AND origin.dataset_name = 'orders' LIMIT 1",
    )
    .await;
    assert_eq!(rows(&schema), [["TABLE", "status", "STRING"]]);
}

#[tokio::test]
async fn a_statement_before_the_query_must_create_a_view() {
    let dir = tempfile::tempdir().unwrap();
    let (pipeline, _, _) = two_runs(dir.path()).await;
    let error = pipeline
        .event_log_sql("SELECT 1; SELECT 2")
        .await
        .expect_err("refused")
        .to_string();
    assert!(
        error.contains("only `CREATE TEMP VIEW .. AS ..` statements may come before"),
        "{error}"
    );
    let error = pipeline
        .event_log_sql("  ;  ")
        .await
        .expect_err("refused")
        .to_string();
    assert!(error.contains("the event log query is empty"), "{error}");
}

/// An event log written before the Databricks columns existed: one row in the old shape.
fn old_event_log_row() -> RecordBatch {
    use lakeflow::datafusion::arrow::array::{
        ArrayRef, Int64Array, StringArray, StructArray, TimestampMicrosecondArray, new_null_array,
    };
    use lakeflow::datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, TimeUnit};
    use std::sync::Arc;
    let text = |v: Option<&str>| Arc::new(StringArray::from(vec![v])) as ArrayRef;
    let origin_fields = Fields::from(
        ["pipeline_name", "run_id", "dataset_name", "flow_name"]
            .map(|n| Field::new(n, DataType::Utf8, true))
            .to_vec(),
    );
    let origin = StructArray::new(
        origin_fields.clone(),
        vec![
            text(Some("shop")),
            text(Some("0-old")),
            text(None),
            text(None),
        ],
        None,
    );
    let expectation = DataType::Struct(Fields::from(vec![
        Field::new("dataset", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, true),
        Field::new("passed_records", DataType::Int64, true),
        Field::new("failed_records", DataType::Int64, true),
    ]));
    let expectations = DataType::List(Arc::new(Field::new("item", expectation, true)));
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    let schema = Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("sequence", DataType::Int64, true),
        Field::new("timestamp", timestamp, true),
        Field::new("level", DataType::Utf8, true),
        Field::new("event_type", DataType::Utf8, true),
        Field::new("origin", DataType::Struct(origin_fields), true),
        Field::new("message", DataType::Utf8, true),
        Field::new("details", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
        Field::new("expectations", expectations.clone(), true),
    ]);
    RecordBatch::try_new(
        Arc::new(schema),
        vec![
            text(Some("0-old-000001")),
            Arc::new(Int64Array::from(vec![1])),
            Arc::new(TimestampMicrosecondArray::from(vec![0]).with_timezone("UTC")),
            text(Some("INFO")),
            text(Some("create_update")),
            Arc::new(origin),
            text(Some("Run 0-old created.")),
            text(Some(r#"{"create_update":{}}"#)),
            text(None),
            new_null_array(&expectations, 1),
        ],
    )
    .unwrap()
}

#[tokio::test]
async fn an_event_log_of_an_older_lakeflow_gains_the_new_columns() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("data/_lakeflow/event_log");
    std::fs::create_dir_all(&log).unwrap();
    let url = url::Url::from_directory_path(&log).unwrap();
    deltalake::DeltaTable::try_from_url(url)
        .await
        .unwrap()
        .write(vec![old_event_log_row()])
        .await
        .unwrap();

    let (pipeline, _, second) = two_runs(dir.path()).await;
    let quality = query(&pipeline, &format!("{LATEST_UPDATE}\n{DATA_QUALITY}")).await;
    assert_eq!(rows(&quality), reported_expectations(&second));
    // The old row reads NULL in what it lacks.
    let old = query(
        &pipeline,
        "SELECT origin.run_id, origin.update_id, maturity_level FROM event_log WHERE origin.run_id = '0-old'",
    )
    .await;
    assert_eq!(rows(&old), [["0-old", "NULL", "NULL"]]);
}
