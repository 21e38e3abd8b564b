//! How a run executes: failures stay contained, independent flows run at the same time,
//! async query functions work.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lakeflow::datafusion::execution::SendableRecordBatchStream;
use lakeflow::datafusion::logical_expr::LogicalPlan;
use lakeflow::datafusion::prelude::SessionContext;
use lakeflow::prelude::*;
use lakeflow::{DataFusionEngine, Engine, Error, FlowStatus};

use crate::support::{delta_count, open_delta};

/// `source` of 3 rows; `parsed` casts its text to integers, which fails at execution time when
/// `broken` is set (in ANSI mode, where Spark fails a bad cast); `downstream` reads `parsed`;
/// `independent` reads only `source`.
fn pipeline(broken: Arc<AtomicBool>) -> Pipeline {
    Pipeline::builder()
        .sql_dialect(lakeflow::SqlDialect::Spark { ansi: true })
        .materialized_view("source", || {
            sql("SELECT * FROM (VALUES ('1'), ('2'), ('x')) AS t(text)")
        })
        .materialized_view("parsed", move || {
            if broken.load(Ordering::SeqCst) {
                sql("SELECT CAST(text AS INT) AS n FROM source")
            } else {
                sql("SELECT CAST(text AS INT) AS n FROM source WHERE text <> 'x'")
            }
        })
        .materialized_view("downstream", || sql("SELECT sum(n) AS total FROM parsed"))
        .materialized_view("independent", || sql("SELECT count(*) AS rows FROM source"))
}

#[tokio::test]
async fn a_failed_flow_keeps_its_table_skips_downstream_and_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let broken = Arc::new(AtomicBool::new(false));
    let pipeline = pipeline(broken.clone()).storage(dir.path().to_str().unwrap());
    pipeline.run().await.expect("the first run succeeds");
    let before = open_delta(&dir.path().join("parsed")).await.version();

    broken.store(true, Ordering::SeqCst);
    let error = pipeline.run().await.expect_err("the second run fails");
    let Error::RunFailed { report } = &error else {
        panic!("expected RunFailed, got {error}");
    };
    let status = |name: &str| report.dataset(name).unwrap().status;
    // Unchanged definitions over unchanged inputs are not recomputed.
    assert_eq!(status("source"), FlowStatus::UpToDate);
    assert_eq!(status("parsed"), FlowStatus::Failed);
    assert_eq!(status("downstream"), FlowStatus::Skipped);
    assert_eq!(status("independent"), FlowStatus::UpToDate);
    let reason = report.dataset("parsed").unwrap().reason.clone().unwrap();
    assert!(
        reason.contains("[CAST_INVALID_INPUT] the value 'x'"),
        "{reason}"
    );
    assert_eq!(
        report.dataset("downstream").unwrap().reason.as_deref(),
        Some("upstream `parsed` did not complete")
    );
    let text = error.to_string();
    assert!(
        text.starts_with("pipeline run failed\nrun FAILED"),
        "{text}"
    );

    // The failed flow committed nothing: same version, same rows.
    let after = open_delta(&dir.path().join("parsed")).await.version();
    assert_eq!(before, after);
    assert_eq!(delta_count(&dir.path().join("parsed")).await, 2);
}

/// An engine whose executions wait until `expected` of them are in flight at once: a
/// scheduler that runs independent flows one after another never gets past the first.
#[derive(Debug)]
struct RendezvousEngine {
    inner: DataFusionEngine,
    barrier: tokio::sync::Barrier,
}

#[async_trait::async_trait]
impl Engine for RendezvousEngine {
    fn session(&self) -> SessionContext {
        self.inner.session()
    }

    async fn execute(&self, plan: LogicalPlan) -> lakeflow::Result<Vec<SendableRecordBatchStream>> {
        self.barrier.wait().await;
        self.inner.execute(plan).await
    }
}

#[tokio::test]
async fn independent_flows_run_at_the_same_time() {
    let engine = Arc::new(RendezvousEngine {
        inner: DataFusionEngine::default(),
        barrier: tokio::sync::Barrier::new(3),
    });
    let pipeline = Pipeline::builder()
        .materialized_view("a", || sql("SELECT 1 AS x"))
        .materialized_view("b", || sql("SELECT 2 AS x"))
        .materialized_view("c", || sql("SELECT 3 AS x"))
        .engine(engine)
        .max_concurrent_flows(3)
        .storage_backend(Arc::new(lakeflow::MemoryStorage::new()));
    let report = tokio::time::timeout(Duration::from_secs(60), pipeline.run())
        .await
        .expect("the three flows met, so they ran concurrently")
        .unwrap();
    assert_eq!(report.datasets.len(), 3);
}

#[tokio::test]
async fn async_query_functions_are_planned_and_run() {
    let storage = Arc::new(lakeflow::MemoryStorage::new());
    let report = Pipeline::builder()
        .dataset(Dataset::new_async(
            DatasetKind::MaterializedView,
            "numbers",
            || async {
                tokio::task::yield_now().await;
                sql("SELECT * FROM (VALUES (1), (2), (3)) AS t(n)")
            },
        ))
        .dataset(Dataset::new_async(
            DatasetKind::Table,
            "doubled",
            || async {
                let numbers = read("numbers")?;
                tokio::task::yield_now().await;
                Ok(numbers.select(vec![(col("n") * lit(2)).alias("n2")])?)
            },
        ))
        .storage_backend(storage.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(report.dataset("doubled").unwrap().rows_written, Some(3));
    assert_eq!(
        report.dataset("doubled").unwrap().kind,
        DatasetKind::MaterializedView,
        "a #[table] that reads no stream is a materialized view"
    );
}

#[tokio::test]
async fn a_table_reading_a_stream_is_a_streaming_table() {
    let graph = Pipeline::builder()
        .materialized_view("events", || sql("SELECT 1 AS id"))
        .table("live", || read_stream("events"))
        .dry_run()
        .await
        .unwrap();
    assert_eq!(graph.get("live").unwrap().kind, DatasetKind::StreamingTable);
}

#[tokio::test]
async fn readers_outside_a_query_function_say_where_they_work() {
    let error = read("anything").unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("`read` was called outside a query function"),
        "{error}"
    );
}
