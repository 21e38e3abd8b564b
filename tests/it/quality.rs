//! Expectations, quarantine and the event log: exact counts read back from the target table
//! and from the event log.

use std::sync::Arc;

use lakeflow::datafusion::arrow::array::{AsArray, RecordBatch};
use lakeflow::datafusion::arrow::datatypes::Int64Type;
use lakeflow::prelude::*;
use lakeflow::{Error, ExpectationResult, FlowStatus, MemoryStorage};

use crate::support::{delta_count, delta_rows, open_delta, sorted_lines, strings};

/// Ten orders: ids 1..=10; amount NULL for id 3, negative for ids 4 and 5; status 'test'
/// for id 6; id 7 appears twice.
fn orders() -> Dataset {
    Dataset::materialized_view("orders", || {
        sql("SELECT * FROM (VALUES
               (1, 10.0, 'ok'), (2, 20.0, 'ok'), (3, NULL, 'ok'), (4, -1.0, 'ok'),
               (5, -2.0, 'ok'), (6, 5.0, 'test'), (7, 7.0, 'ok'), (7, 7.5, 'ok'),
               (8, 8.0, 'ok'), (9, 9.0, 'ok'))
             AS t(id, amount, status)")
    })
}

fn result(name: &str, action: ExpectAction, passed: u64, failed: u64) -> ExpectationResult {
    ExpectationResult {
        name: name.into(),
        action,
        passed,
        failed,
    }
}

#[tokio::test]
async fn warn_keeps_drop_removes_and_both_count_with_null_as_a_violation() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::builder()
        .dataset(
            orders()
                .expect("not_test", "status <> 'test'")
                .expect_or_drop("positive_amount", "amount > 0"),
        )
        .storage(dir.path().to_str().unwrap())
        .progress(ProgressMode::Off);
    let report = pipeline.run().await.unwrap();

    let orders = report.dataset("orders").unwrap();
    assert_eq!(
        orders.expectations,
        [
            result("not_test", ExpectAction::Warn, 9, 1),
            // NULL (id 3) and the two negatives fail.
            result("positive_amount", ExpectAction::Drop, 7, 3),
        ]
    );
    assert_eq!(orders.dropped_rows, Some(3));
    assert_eq!(orders.rows_written, Some(7));
    assert_eq!(delta_count(&dir.path().join("orders")).await, 7);
    let text = report.to_string();
    assert!(
        text.contains("orders   positive_amount  drop               7             3"),
        "{text}"
    );
}

#[tokio::test]
async fn fail_stops_the_flow_commits_nothing_and_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let storage = dir.path().to_str().unwrap();
    let good = Pipeline::builder()
        .dataset(orders())
        .materialized_view("downstream", || sql("SELECT count(*) AS n FROM orders"))
        .materialized_view("independent", || sql("SELECT 1 AS x"))
        .storage(storage)
        .progress(ProgressMode::Off);
    good.run().await.unwrap();
    let version = open_delta(&dir.path().join("orders")).await.version();

    let failing = Pipeline::builder()
        .dataset(orders().expect_or_fail("no_negative", "amount >= 0 OR amount IS NULL"))
        .materialized_view("downstream", || sql("SELECT count(*) AS n FROM orders"))
        .materialized_view("independent", || sql("SELECT 1 AS x"))
        .storage(storage)
        .progress(ProgressMode::Off);
    let error = failing.run().await.unwrap_err();
    let report = error.report().expect("a run report");
    assert_eq!(report.dataset("orders").unwrap().status, FlowStatus::Failed);
    assert_eq!(
        report.dataset("downstream").unwrap().status,
        FlowStatus::Skipped
    );
    assert_eq!(
        report.dataset("independent").unwrap().status,
        FlowStatus::UpToDate
    );
    let reason = report.dataset("orders").unwrap().reason.clone().unwrap();
    assert!(
        reason.starts_with(
            "expectation `no_negative` of dataset `orders` failed: `amount >= 0 OR amount IS NULL` is not true for the row id=4, amount=-1.0, status=ok"
        ),
        "{reason}"
    );
    assert_eq!(
        open_delta(&dir.path().join("orders")).await.version(),
        version,
        "the target's Delta version did not change"
    );
}

#[tokio::test]
async fn quarantine_keeps_the_dropped_rows_with_the_rules_they_failed() {
    let dir = tempfile::tempdir().unwrap();
    Pipeline::builder()
        .dataset(
            orders()
                .expect("not_test", "status <> 'test'")
                .expect_or_drop("has_amount", "amount IS NOT NULL")
                .expect_or_drop("positive_amount", "amount > 0")
                .quarantine(),
        )
        .storage(dir.path().to_str().unwrap())
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    let quarantined = delta_rows(&dir.path().join("orders_quarantine")).await;
    assert_eq!(
        sorted_lines(&quarantined),
        [
            "| id | amount | status | failed_expectations           |",
            "| 3  |        | ok     | [has_amount, positive_amount] |",
            "| 4  | -1.0   | ok     | [positive_amount]             |",
            "| 5  | -2.0   | ok     | [positive_amount]             |",
        ]
    );
    assert_eq!(delta_count(&dir.path().join("orders")).await, 7);
}

#[tokio::test]
async fn uniqueness_warns_drops_or_fails() {
    let storage = Arc::new(MemoryStorage::new());
    let report = Pipeline::builder()
        .dataset(orders().expect_unique("pk", ["id"], ExpectAction::Drop))
        .dataset(
            Dataset::materialized_view("copy", || read("orders")).expect_unique(
                "pk_status",
                ["id", "status"],
                ExpectAction::Warn,
            ),
        )
        .storage_backend(storage.clone())
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    assert_eq!(
        report.dataset("orders").unwrap().expectations,
        [result("pk", ExpectAction::Drop, 9, 1)]
    );
    assert_eq!(report.dataset("orders").unwrap().rows_written, Some(9));
    assert_eq!(
        report.dataset("copy").unwrap().expectations,
        [result("pk_status", ExpectAction::Warn, 9, 0)]
    );

    let error = Pipeline::builder()
        .dataset(orders().expect_unique("pk", ["id"], ExpectAction::Fail))
        .storage_backend(Arc::new(MemoryStorage::new()))
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap_err();
    let reason = error.report().unwrap().datasets[0].reason.clone().unwrap();
    assert!(
        reason.starts_with("expectation `pk` of dataset `orders` failed: `UNIQUE (id)` is not true for the row id=7"),
        "{reason}"
    );
}

#[tokio::test]
async fn a_rule_on_a_missing_column_is_a_dry_run_error_naming_everything() {
    let error = Pipeline::builder()
        .dataset(orders().expect("valid", "amont > 0"))
        .storage_backend(Arc::new(MemoryStorage::new()))
        .dry_run()
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Expectation { .. }), "{error}");
    let text = error.to_string();
    assert!(
        text.starts_with("expectation `valid` of dataset `orders` (tests/it/quality.rs:"),
        "{text}"
    );
    assert!(text.contains("amont"), "{text}");

    let error = Pipeline::builder()
        .dataset(orders().expect("numeric", "amount + 1"))
        .storage_backend(Arc::new(MemoryStorage::new()))
        .dry_run()
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("not a boolean condition"),
        "{error}"
    );

    let error = Pipeline::builder()
        .dataset(orders().expect_unique("pk", ["order_id"], ExpectAction::Warn))
        .storage_backend(Arc::new(MemoryStorage::new()))
        .dry_run()
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("column `order_id` does not exist"),
        "{error}"
    );
}

#[tokio::test]
async fn the_event_log_records_runs_flows_and_data_quality() {
    let dir = tempfile::tempdir().unwrap();
    let pipeline = Pipeline::builder()
        .dataset(orders().expect_or_drop("positive_amount", "amount > 0"))
        .materialized_view("total", || sql("SELECT sum(amount) AS total FROM orders"))
        .name("shop")
        .storage(dir.path().to_str().unwrap())
        .progress(ProgressMode::Off);
    pipeline.run().await.unwrap();
    // Recompute everything: an unchanged pipeline would otherwise be up to date.
    pipeline.clone().full_refresh_all().run().await.unwrap();

    let last_run = "origin.run_id = (SELECT max(origin.run_id) FROM event_log)";
    let states: Vec<RecordBatch> = pipeline
        .event_log_sql(&format!(
            "SELECT json_status FROM (
               SELECT origin.dataset_name || ':' || message AS json_status, sequence
               FROM event_log WHERE event_type = 'flow_progress' AND origin.dataset_name = 'orders'
               AND {last_run}) ORDER BY sequence"
        ))
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let states: Vec<String> = states.iter().flat_map(|b| strings(b.column(0))).collect();
    assert_eq!(
        states,
        [
            "orders:Flow 'orders' is QUEUED.",
            "orders:Flow 'orders' is PLANNING.",
            "orders:Flow 'orders' is STARTING.",
            "orders:Flow 'orders' is RUNNING.",
            "orders:Flow 'orders' is COMPLETED.",
        ]
    );

    // The README's query for the expectation results of the last run.
    let quality: Vec<RecordBatch> = pipeline
        .event_log_sql(
            "SELECT e.dataset, e.name, e.action, e.passed_records, e.failed_records
             FROM (SELECT unnest(expectations) AS e FROM event_log
                   WHERE origin.run_id = (SELECT max(origin.run_id) FROM event_log))",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(quality.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let row = &quality[0];
    assert_eq!(strings(row.column(1)), ["positive_amount"]);
    assert_eq!(row.column(3).as_primitive::<Int64Type>().value(0), 7);
    assert_eq!(row.column(4).as_primitive::<Int64Type>().value(0), 3);

    let counts: Vec<RecordBatch> = pipeline
        .event_log_sql(
            "SELECT event_type, count(*) AS n FROM event_log
             WHERE origin.pipeline_name = 'shop' GROUP BY event_type ORDER BY event_type",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(
        sorted_lines(&counts),
        [
            "| event_type         | n  |",
            "| create_update      | 2  |",
            "| dataset_definition | 4  |",
            "| flow_definition    | 4  |",
            "| flow_progress      | 20 |",
            "| update_progress    | 4  |",
        ]
    );
    let lineage: Vec<RecordBatch> = pipeline
        .event_log_sql(
            "SELECT details FROM event_log WHERE event_type = 'flow_definition'
             AND origin.dataset_name = 'total' LIMIT 1",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let details = &strings(lineage[0].column(0))[0];
    assert!(
        details.contains(r#""inputs":[{"name":"orders","streaming":false}]"#),
        "{details}"
    );
}

#[tokio::test]
async fn observers_see_every_state_change_as_it_happens() {
    #[derive(Default)]
    struct Seen(std::sync::Mutex<Vec<String>>);
    impl lakeflow::Observer for Seen {
        fn on_event(&self, _run: &str, event: &lakeflow::Event) {
            if let (Some(d), Some(s)) = (&event.dataset, event.flow_state) {
                self.0.lock().unwrap().push(format!("{d} {s}"));
            }
        }
    }
    let seen = Arc::new(Seen::default());
    // ANSI mode, so that the cast of 'x' fails as Spark's does there.
    let _ = Pipeline::builder()
        .sql_dialect(lakeflow::SqlDialect::Spark { ansi: true })
        .materialized_view("a", || sql("SELECT 1 AS x"))
        .materialized_view("b", || sql("SELECT CAST('x' AS INT) AS y FROM a"))
        .materialized_view("c", || read("b"))
        .storage_backend(Arc::new(MemoryStorage::new()))
        .progress(ProgressMode::Off)
        .observe(seen.clone())
        .run()
        .await;
    let seen = seen.0.lock().unwrap().clone();
    assert!(seen.contains(&"a COMPLETED".to_string()), "{seen:?}");
    assert!(seen.contains(&"b FAILED".to_string()), "{seen:?}");
    assert!(seen.contains(&"c SKIPPED".to_string()), "{seen:?}");
    assert_eq!(seen.iter().filter(|s| s.ends_with("QUEUED")).count(), 3);
}
