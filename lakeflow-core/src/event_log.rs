//! The event log: what happened in every run, as rows of a table under the pipeline storage
//! (`_lakeflow/event_log`), and as live notifications to observers such as the progress
//! display.
//!
//! Columns: `id`, `sequence`, `timestamp`, `level`, `event_type`, `origin` (a struct of
//! `pipeline_name`, `run_id`, `dataset_name`, `flow_name`), `message`, `details` (JSON),
//! `error`, and `expectations` (a list of `{dataset, name, action, passed_records,
//! failed_records}` on `flow_progress` events, so data quality is queryable without JSON).
//!
//! Event types: `create_update` (a run and its settings), `dataset_definition`,
//! `flow_definition` (with the flow's inputs: the lineage), `flow_progress` (a flow's state,
//! with `metrics` and `data_quality` in `details` when it ends) and `update_progress` (the
//! run's state). This module formats and buffers events; the scheduler decides when to emit
//! and flush them, and storage writes them.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use datafusion::arrow::array::{
    ArrayRef, Int64Array, Int64Builder, ListBuilder, StringArray, StringBuilder, StructArray,
    StructBuilder, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Value, json};

use crate::error::{Error, Result};
use crate::expectations::ExpectationResult;
use crate::storage::{Storage, TableWrite};

/// Where the event log lives, as a table name under the pipeline storage.
pub const EVENT_LOG_TABLE: &str = "_lakeflow/event_log";

/// The state of a flow, as `flow_progress` events report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowState {
    /// Waiting for its inputs.
    Queued,
    /// Its plan is being built against the current snapshots of its inputs.
    Planning,
    /// Its plan is being handed to the engine.
    Starting,
    /// Rows are streaming into storage.
    Running,
    /// Committed.
    Completed,
    /// Failed; nothing was committed.
    Failed,
    /// Not run because an input did not complete.
    Skipped,
    /// Not selected for this run.
    Excluded,
}

impl FlowState {
    /// Whether the flow is done in this run.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            FlowState::Completed | FlowState::Failed | FlowState::Skipped | FlowState::Excluded
        )
    }
}

impl fmt::Display for FlowState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            FlowState::Queued => "QUEUED",
            FlowState::Planning => "PLANNING",
            FlowState::Starting => "STARTING",
            FlowState::Running => "RUNNING",
            FlowState::Completed => "COMPLETED",
            FlowState::Failed => "FAILED",
            FlowState::Skipped => "SKIPPED",
            FlowState::Excluded => "EXCLUDED",
        })
    }
}

/// How serious an event is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Normal progress.
    Info,
    /// Something a person should look at (dropped rows, skipped flows).
    Warn,
    /// A failure.
    Error,
    /// Counts and timings.
    Metrics,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
            Level::Metrics => "METRICS",
        }
    }
}

/// One event.
#[derive(Debug, Clone)]
pub struct Event {
    /// Position in the run, from 1.
    pub sequence: u64,
    /// When it happened.
    pub timestamp: SystemTime,
    /// How serious it is.
    pub level: Level,
    /// `create_update`, `dataset_definition`, `flow_definition`, `flow_progress` or `update_progress`.
    pub event_type: &'static str,
    /// The dataset it concerns, if any.
    pub dataset: Option<String>,
    /// For `flow_progress`: the flow's new state.
    pub flow_state: Option<FlowState>,
    /// A sentence for a person.
    pub message: String,
    /// Structured details.
    pub details: Value,
    /// The error, for failures.
    pub error: Option<String>,
    /// Expectation results, on a flow's final `flow_progress` event.
    pub expectations: Vec<ExpectationResult>,
}

/// Receives every event as it happens (the progress display, tests).
pub trait Observer: Send + Sync {
    /// Called once per event, in order.
    fn on_event(&self, run_id: &str, event: &Event);
}

/// The events of one run: numbered, handed to observers, buffered until flushed to storage.
pub(crate) struct EventLog {
    pipeline: String,
    run_id: String,
    sequence: AtomicU64,
    buffer: Mutex<Vec<Event>>,
    observers: Vec<Arc<dyn Observer>>,
}

impl EventLog {
    pub fn new(pipeline: &str, observers: Vec<Arc<dyn Observer>>) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        EventLog {
            pipeline: pipeline.to_string(),
            run_id: format!("{nanos:020x}-{:x}", std::process::id()),
            sequence: AtomicU64::new(0),
            buffer: Mutex::new(Vec::new()),
            observers,
        }
    }

    /// The id of this run, in every event's origin.
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Records an event.
    #[allow(clippy::too_many_arguments)]
    pub fn emit(
        &self,
        level: Level,
        event_type: &'static str,
        dataset: Option<&str>,
        flow_state: Option<FlowState>,
        message: String,
        details: Value,
        error: Option<String>,
        expectations: Vec<ExpectationResult>,
    ) {
        let event = Event {
            sequence: self.sequence.fetch_add(1, Ordering::Relaxed) + 1,
            timestamp: SystemTime::now(),
            level,
            event_type,
            dataset: dataset.map(str::to_string),
            flow_state,
            message,
            details,
            error,
            expectations,
        };
        match event.level {
            Level::Error => {
                tracing::error!(event_type, dataset = ?event.dataset, "{}", event.message)
            }
            Level::Warn => {
                tracing::warn!(event_type, dataset = ?event.dataset, "{}", event.message)
            }
            Level::Info | Level::Metrics => {
                tracing::info!(event_type, dataset = ?event.dataset, "{}", event.message)
            }
        }
        for observer in &self.observers {
            observer.on_event(&self.run_id, &event);
        }
        self.buffer
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(event);
    }

    /// Records a flow state change.
    pub fn flow(&self, dataset: &str, state: FlowState, details: Value) {
        let level = match state {
            FlowState::Failed => Level::Error,
            FlowState::Skipped => Level::Warn,
            _ => Level::Info,
        };
        self.emit(
            level,
            "flow_progress",
            Some(dataset),
            Some(state),
            format!("Flow '{dataset}' is {state}."),
            json!({ "flow_progress": { "status": state.to_string() } }).merge(details),
            None,
            Vec::new(),
        );
    }

    /// Appends the buffered events to the event log table. A failure to write the log is
    /// reported as a warning and does not fail the run: the data commits stand.
    pub async fn flush(&self, storage: &dyn Storage) {
        if let Err(e) = self.try_flush(storage).await {
            tracing::warn!(error = %e, "could not append to the event log");
        }
    }

    async fn try_flush(&self, storage: &dyn Storage) -> Result<()> {
        let Some(batch) = self.drain()? else {
            return Ok(());
        };
        let schema = storage.stored_schema(&event_log_schema())?;
        let batch = crate::flow::conform_batch(&batch, &schema)?;
        let stream = datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema.clone(),
            futures::stream::iter([Ok(batch)]),
        );
        storage
            .append(TableWrite {
                name: EVENT_LOG_TABLE.to_string(),
                schema,
                streams: vec![Box::pin(stream)],
                partition_cols: Vec::new(),
                properties: Default::default(),
                comment: Some("lakeflow event log".into()),
                txn: None,
            })
            .await?;
        Ok(())
    }

    /// Takes the buffered events as one record batch, if there are any.
    pub fn drain(&self) -> Result<Option<RecordBatch>> {
        let events = std::mem::take(&mut *self.buffer.lock().unwrap_or_else(|e| e.into_inner()));
        if events.is_empty() {
            return Ok(None);
        }
        self.to_batch(&events).map(Some)
    }

    fn to_batch(&self, events: &[Event]) -> Result<RecordBatch> {
        let schema = event_log_schema();
        let ids: StringArray = events
            .iter()
            .map(|e| Some(format!("{}-{:06}", self.run_id, e.sequence)))
            .collect();
        let sequence: Int64Array = events.iter().map(|e| Some(e.sequence as i64)).collect();
        let timestamp = TimestampMicrosecondArray::from(
            events
                .iter()
                .map(|e| {
                    e.timestamp
                        .duration_since(SystemTime::UNIX_EPOCH)
                        .map_or(0, |d| d.as_micros() as i64)
                })
                .collect::<Vec<_>>(),
        )
        .with_timezone("UTC");
        let level: StringArray = events.iter().map(|e| Some(e.level.as_str())).collect();
        let event_type: StringArray = events.iter().map(|e| Some(e.event_type)).collect();
        let origin = self.origin(events);
        let message: StringArray = events.iter().map(|e| Some(e.message.as_str())).collect();
        let details: StringArray = events.iter().map(|e| Some(e.details.to_string())).collect();
        let error: StringArray = events.iter().map(|e| e.error.as_deref()).collect();
        let expectations = expectations_column(events);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids),
            Arc::new(sequence),
            Arc::new(timestamp),
            Arc::new(level),
            Arc::new(event_type),
            Arc::new(origin),
            Arc::new(message),
            Arc::new(details),
            Arc::new(error),
            expectations,
        ];
        RecordBatch::try_new(schema, columns)
            .map_err(|e| Error::Internal(format!("event log batch: {e}")))
    }

    fn origin(&self, events: &[Event]) -> StructArray {
        let pipeline: StringArray = events
            .iter()
            .map(|_| Some(self.pipeline.as_str()))
            .collect();
        let run: StringArray = events.iter().map(|_| Some(self.run_id.as_str())).collect();
        let dataset: StringArray = events.iter().map(|e| e.dataset.as_deref()).collect();
        // A dataset's flow carries the dataset's name (one flow per dataset for now).
        let flow: StringArray = events
            .iter()
            .map(|e| e.flow_state.and(e.dataset.as_deref()))
            .collect();
        StructArray::new(
            origin_fields(),
            vec![
                Arc::new(pipeline),
                Arc::new(run),
                Arc::new(dataset),
                Arc::new(flow),
            ],
            None,
        )
    }
}

fn origin_fields() -> Fields {
    Fields::from(vec![
        Field::new("pipeline_name", DataType::Utf8, true),
        Field::new("run_id", DataType::Utf8, true),
        Field::new("dataset_name", DataType::Utf8, true),
        Field::new("flow_name", DataType::Utf8, true),
    ])
}

fn expectation_fields() -> Fields {
    Fields::from(vec![
        Field::new("dataset", DataType::Utf8, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("action", DataType::Utf8, true),
        Field::new("passed_records", DataType::Int64, true),
        Field::new("failed_records", DataType::Int64, true),
    ])
}

fn expectations_column(events: &[Event]) -> ArrayRef {
    let mut builder =
        ListBuilder::new(StructBuilder::from_fields(expectation_fields(), 0)).with_field(Arc::new(
            Field::new("item", DataType::Struct(expectation_fields()), true),
        ));
    for event in events {
        if event.expectations.is_empty() {
            builder.append(false);
            continue;
        }
        let entries = builder.values();
        for e in &event.expectations {
            entries
                .field_builder::<StringBuilder>(0)
                .expect("dataset is a string")
                .append_option(event.dataset.as_deref());
            entries
                .field_builder::<StringBuilder>(1)
                .expect("name is a string")
                .append_value(&e.name);
            entries
                .field_builder::<StringBuilder>(2)
                .expect("action is a string")
                .append_value(e.action.to_string());
            entries
                .field_builder::<Int64Builder>(3)
                .expect("passed is an i64")
                .append_value(e.passed as i64);
            entries
                .field_builder::<Int64Builder>(4)
                .expect("failed is an i64")
                .append_value(e.failed as i64);
            entries.append(true);
        }
        builder.append(true);
    }
    Arc::new(builder.finish())
}

/// The schema of the event log table.
pub fn event_log_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Utf8, true),
        Field::new("sequence", DataType::Int64, true),
        Field::new(
            "timestamp",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            true,
        ),
        Field::new("level", DataType::Utf8, true),
        Field::new("event_type", DataType::Utf8, true),
        Field::new("origin", DataType::Struct(origin_fields()), true),
        Field::new("message", DataType::Utf8, true),
        Field::new("details", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
        Field::new(
            "expectations",
            DataType::List(Arc::new(Field::new(
                "item",
                DataType::Struct(expectation_fields()),
                true,
            ))),
            true,
        ),
    ]))
}

/// Merging JSON objects, for details built in two places.
trait Merge {
    fn merge(self, other: Value) -> Value;
}

impl Merge for Value {
    fn merge(mut self, other: Value) -> Value {
        match (&mut self, other) {
            (Value::Object(a), Value::Object(b)) => {
                for (k, v) in b {
                    let merged = match a.remove(&k) {
                        Some(existing) => existing.merge(v),
                        None => v,
                    };
                    a.insert(k, merged);
                }
                self
            }
            (_, Value::Null) => self,
            (_, other) => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expectations::ExpectAction;

    #[test]
    fn events_become_one_batch_with_the_log_schema() {
        let log = EventLog::new("p", Vec::new());
        log.flow("silver", FlowState::Running, Value::Null);
        log.emit(
            Level::Info,
            "flow_progress",
            Some("silver"),
            Some(FlowState::Completed),
            "done".into(),
            json!({"flow_progress": {"metrics": {"num_output_rows": 3}}}),
            None,
            vec![ExpectationResult {
                name: "positive".into(),
                action: ExpectAction::Drop,
                passed: 3,
                failed: 1,
            }],
        );
        let batch = log.drain().unwrap().unwrap();
        assert_eq!(batch.schema(), event_log_schema());
        assert_eq!(batch.num_rows(), 2);
        assert!(log.drain().unwrap().is_none(), "drained");
        let details = batch
            .column(7)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(
            details.value(0),
            r#"{"flow_progress":{"status":"RUNNING"}}"#
        );
    }

    #[test]
    fn json_objects_merge_deeply() {
        let merged = json!({"a": {"b": 1}}).merge(json!({"a": {"c": 2}, "d": 3}));
        assert_eq!(merged, json!({"a": {"b": 1, "c": 2}, "d": 3}));
    }
}
