//! Sinks: append flows write outside the pipeline — Parquet files, a Delta table by path, a
//! sink of the user's own — exactly once per batch, even when a batch is handed over again.

use std::path::Path;
use std::sync::{Arc, Mutex};

use lakeflow::datafusion::arrow::datatypes::SchemaRef;
use lakeflow::datafusion::execution::SendableRecordBatchStream;
use lakeflow::datafusion::prelude::{ParquetReadOptions, SessionContext};
use lakeflow::prelude::*;
use lakeflow::{FileSink, Sink};

use crate::streaming::land;
use crate::support::delta_count;

/// Records every batch it is handed: (writer, batch, rows). Fails the first time it is handed
/// batch `fail_once` after writing it through to `inner`, as a crash after the write would.
#[derive(Debug)]
struct Recording {
    inner: FileSink,
    seen: Mutex<Vec<(String, u64, usize)>>,
    fail_once: Mutex<Option<u64>>,
}

#[async_trait::async_trait]
impl Sink for Recording {
    async fn write(
        &self,
        writer: &str,
        batch: u64,
        schema: SchemaRef,
        rows: Vec<SendableRecordBatchStream>,
    ) -> lakeflow::Result<()> {
        let mut collected = Vec::new();
        for stream in rows {
            collected.extend(lakeflow::datafusion::physical_plan::common::collect(stream).await?);
        }
        let count = collected.iter().map(|b| b.num_rows()).sum();
        self.seen
            .lock()
            .unwrap()
            .push((writer.to_string(), batch, count));
        let stream: SendableRecordBatchStream = Box::pin(
            lakeflow::datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                schema.clone(),
                futures::stream::iter(collected.into_iter().map(Ok)),
            ),
        );
        self.inner
            .write(writer, batch, schema, vec![stream])
            .await?;
        let mut fail = self.fail_once.lock().unwrap();
        if *fail == Some(batch) {
            *fail = None;
            return Err(lakeflow::Error::Internal(
                "the process died after writing".into(),
            ));
        }
        Ok(())
    }

    fn location(&self) -> String {
        self.inner.location()
    }
}

fn pipeline(landing: &Path, out: &Path, recording: Arc<Recording>) -> Pipeline {
    let landing = landing.display().to_string();
    let delta = out.join("delta_orders").display().to_string();
    Pipeline::builder()
        .streaming_table("orders", move || read_stream_files(landing.as_str(), csv()))
        .create_sink(
            "parquet_out",
            "parquet",
            [("path", out.join("parquet").display().to_string())],
        )
        .create_sink("delta_out", "delta", [("path", delta)])
        .create_sink_with("mine", recording)
        .append_flow("parquet_out", "to_parquet", || read_stream("orders"))
        .append_flow("delta_out", "to_delta", || read_stream("orders"))
        .append_flow("mine", "to_mine", || {
            Ok(read_stream("orders")?.filter(col("status").eq(lit("ok")))?)
        })
        .storage(out.join("store").to_str().unwrap())
        .progress(ProgressMode::Off)
}

async fn parquet_rows(dir: &Path) -> usize {
    let ctx = SessionContext::new();
    ctx.read_parquet(dir.display().to_string(), ParquetReadOptions::default())
        .await
        .unwrap()
        .count()
        .await
        .unwrap()
}

#[tokio::test]
async fn append_flows_write_each_batch_to_sinks_once() {
    let root = tempfile::tempdir().unwrap();
    let (landing, out) = (root.path().join("landing"), root.path().join("out"));
    let recording = Arc::new(Recording {
        inner: FileSink::new(out.join("mine"), lakeflow::json()),
        seen: Mutex::new(Vec::new()),
        fail_once: Mutex::new(Some(1)),
    });
    land(&landing, 0, 0, 10);
    let first = pipeline(&landing, &out, recording.clone())
        .run()
        .await
        .unwrap();
    assert_eq!(first.dataset("to_parquet").unwrap().rows_written, Some(10));
    assert_eq!(
        first.dataset("parquet_out").unwrap().kind,
        DatasetKind::Sink
    );
    land(&landing, 1, 10, 5);
    // The custom sink fails after writing batch 1, as a crash would: the flow fails...
    let failed = pipeline(&landing, &out, recording.clone()).run().await;
    assert!(failed.is_err());
    // ...and the next run hands it the same batch again, with the same rows.
    pipeline(&landing, &out, recording.clone())
        .run()
        .await
        .unwrap();
    let seen = recording.seen.lock().unwrap().clone();
    let writer = seen[0].0.clone();
    assert_eq!(
        seen,
        [
            (writer.clone(), 0, 8),
            (writer.clone(), 1, 4),
            (writer.clone(), 1, 4),
        ]
    );
    assert_eq!(parquet_rows(&out.join("parquet")).await, 15);
    assert_eq!(delta_count(&out.join("delta_orders")).await, 15);
    let json_files = std::fs::read_dir(out.join("mine")).unwrap().count();
    assert_eq!(json_files, 2, "batch 1 written twice is still one file");

    // A full refresh resets the flows' checkpoints, not the sinks' data.
    pipeline(&landing, &out, recording.clone())
        .full_refresh(["parquet_out"])
        .run()
        .await
        .unwrap();
    assert_eq!(parquet_rows(&out.join("parquet")).await, 30);
}

#[tokio::test]
async fn sink_mistakes_are_definition_errors() {
    let error = Pipeline::builder()
        .materialized_view("x", || sql("SELECT 1 AS id"))
        .create_sink("out", "kafka", [("topic", "t")])
        .storage_backend(Arc::new(lakeflow::MemoryStorage::new()))
        .dry_run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("dataset `out`") && error.contains("sink format `kafka` is not supported"),
        "{error}"
    );
    let error = Pipeline::builder()
        .streaming_table("s", || read_stream_files("/nonexistent", csv()))
        .create_sink("out", "parquet", [("path", "/tmp/x")])
        .materialized_view("r", || read("out"))
        .storage_backend(Arc::new(lakeflow::MemoryStorage::new()))
        .dry_run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("`out` is a sink, which append flows write and nothing reads"),
        "{error}"
    );
}
