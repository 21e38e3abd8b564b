//! The event log: what happened in every run, as rows of a table under the pipeline storage
//! (`_lakeflow/event_log`), and as live notifications to observers such as the progress
//! display.
//!
//! The table has Databricks' columns and `details` shapes, so the queries of Databricks'
//! event log documentation run on it unchanged (`details:flow_progress.data_quality.
//! expectations`, `origin.update_id`): `id`, `sequence` (lakeflow's: the event's number in
//! its run, from 1), `timestamp`, `level`, `event_type`, `origin` (a struct of
//! `pipeline_name`, `run_id`, `dataset_name`, `flow_name`, then Databricks' `pipeline_id`,
//! `update_id` (= `run_id`), `flow_id`, `table_name`, `batch_id`), `message`, `details`
//! (JSON text), `error`, `expectations` (lakeflow's: a list of `{dataset, name, action,
//! passed_records, failed_records}` on `flow_progress` events, so data quality is queryable
//! without JSON), and `maturity_level`. New columns and origin fields come last, so a log
//! written by an older lakeflow gains them by schema merge.
//!
//! Event types: `create_update` (a run and its settings), `dataset_definition`,
//! `flow_definition` (with the flow's inputs: the lineage), `flow_progress` (a flow's state,
//! with `metrics` and `data_quality` in `details` when it ends) and `update_progress` (the
//! run's state). This module formats and buffers events; the scheduler decides when to emit
//! and flush them, and storage writes them.

use std::collections::BTreeMap;
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

/// The state document holding the pipeline's id (`origin.pipeline_id`).
const PIPELINE_STATE: &str = "_lakeflow/pipeline.json";

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
    /// For a streaming flow's final `flow_progress` event: the last batch it committed.
    pub batch_id: Option<u64>,
}

/// Receives every event as it happens (the progress display, tests).
pub trait Observer: Send + Sync {
    /// Called once per event, in order.
    fn on_event(&self, run_id: &str, event: &Event);
}

/// The events of one run: numbered, handed to observers, buffered until flushed to storage.
pub(crate) struct EventLog {
    pipeline: String,
    pipeline_id: String,
    run_id: String,
    sequence: AtomicU64,
    buffer: Mutex<Vec<Event>>,
    observers: Vec<Arc<dyn Observer>>,
    /// The table each flow writes, by flow name (set once the graph is planned): a
    /// dataset's event has its table in `origin.table_name`.
    tables: Mutex<BTreeMap<String, String>>,
}

impl EventLog {
    pub fn new(pipeline: &str, pipeline_id: String, observers: Vec<Arc<dyn Observer>>) -> Self {
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        EventLog {
            pipeline: pipeline.to_string(),
            pipeline_id,
            run_id: format!("{nanos:020x}-{:x}", std::process::id()),
            sequence: AtomicU64::new(0),
            buffer: Mutex::new(Vec::new()),
            observers,
            tables: Mutex::new(BTreeMap::new()),
        }
    }

    /// The id of this run, in every event's origin (`run_id` and `update_id`).
    pub fn run_id(&self) -> &str {
        &self.run_id
    }

    /// Records that the events of `dataset` (a stored table, or a flow) concern `table`.
    pub fn set_table(&self, dataset: &str, table: &str) {
        self.tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(dataset.to_string(), table.to_string());
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
        self.push(Event {
            sequence: 0,
            timestamp: SystemTime::now(),
            level,
            event_type,
            dataset: dataset.map(str::to_string),
            flow_state,
            message,
            details,
            error,
            expectations,
            batch_id: None,
        });
    }

    /// Records an event built by the caller; its sequence and timestamp are set here.
    pub fn push(&self, mut event: Event) {
        event.sequence = self.sequence.fetch_add(1, Ordering::Relaxed) + 1;
        event.timestamp = SystemTime::now();
        let event_type = event.event_type;
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
        let batch = crate::storage::conform_batch(&batch, &schema)?;
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
        let tables = self
            .tables
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let expectations = expectations_column(events, &tables);
        let maturity: StringArray = events
            .iter()
            .map(|e| Some(maturity_level(e.event_type)))
            .collect();
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
            Arc::new(maturity),
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
        // A dataset's flow carries the dataset's name (append flows are named on their own).
        fn flow_name(e: &Event) -> Option<&str> {
            matches!(e.event_type, "flow_definition" | "flow_progress")
                .then_some(e.dataset.as_deref())
                .flatten()
        }
        let flow: StringArray = events.iter().map(flow_name).collect();
        let pipeline_id: StringArray = events
            .iter()
            .map(|_| Some(self.pipeline_id.as_str()))
            .collect();
        let flow_id: StringArray = events
            .iter()
            .map(|e| flow_name(e).map(|f| stable_id(&[&self.pipeline_id, "flow", f])))
            .collect();
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let table: StringArray = events
            .iter()
            .map(|e| {
                e.dataset
                    .as_deref()
                    .and_then(|d| tables.get(d))
                    .map(String::as_str)
            })
            .collect();
        let batch: Int64Array = events
            .iter()
            .map(|e| e.batch_id.map(|b| b as i64))
            .collect();
        StructArray::new(
            origin_fields(),
            vec![
                Arc::new(pipeline),
                Arc::new(run.clone()),
                Arc::new(dataset),
                Arc::new(flow),
                Arc::new(pipeline_id),
                Arc::new(run),
                Arc::new(flow_id),
                Arc::new(table),
                Arc::new(batch),
            ],
            None,
        )
    }
}

/// The origin struct: lakeflow's first fields, then Databricks' (appended, so that a log
/// written before they existed gains them by schema merge).
fn origin_fields() -> Fields {
    Fields::from(vec![
        Field::new("pipeline_name", DataType::Utf8, true),
        Field::new("run_id", DataType::Utf8, true),
        Field::new("dataset_name", DataType::Utf8, true),
        Field::new("flow_name", DataType::Utf8, true),
        Field::new("pipeline_id", DataType::Utf8, true),
        Field::new("update_id", DataType::Utf8, true),
        Field::new("flow_id", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, true),
        Field::new("batch_id", DataType::Int64, true),
    ])
}

/// Databricks' `maturity_level`: lakeflow writes the event types and `details` keys that
/// Databricks documents as stable; anything else would be evolving.
fn maturity_level(event_type: &str) -> &'static str {
    match event_type {
        "create_update" | "update_progress" | "flow_definition" | "dataset_definition"
        | "flow_progress" => "STABLE",
        _ => "EVOLVING",
    }
}

/// The id of the pipeline whose storage this is: made on its first run and kept in
/// `_lakeflow/pipeline.json`, so it stays the same however the storage is named. When the
/// document can be neither read nor written, an id derived from the storage's location.
pub(crate) async fn pipeline_id(storage: &dyn Storage) -> String {
    if let Ok(Some(bytes)) = storage.read_state(PIPELINE_STATE).await
        && let Ok(state) = serde_json::from_slice::<Value>(&bytes)
        && let Some(id) = state.get("pipeline_id").and_then(Value::as_str)
    {
        return id.to_string();
    }
    let location = storage.location();
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
        .to_string();
    let fresh = stable_id(&[&location, &nanos, &std::process::id().to_string()]);
    let document = json!({ "pipeline_id": fresh }).to_string().into_bytes();
    match storage.write_state(PIPELINE_STATE, document).await {
        Ok(()) => fresh,
        Err(e) => {
            tracing::warn!(error = %e, "could not record the pipeline id");
            stable_id(&[&location])
        }
    }
}

/// A UUID-shaped id that depends only on `parts` (FNV-1a, twice with different offsets,
/// so it is the same on every platform and Rust version).
fn stable_id(parts: &[&str]) -> String {
    let fnv = |offset: u64| {
        let mut hash = offset;
        for part in parts {
            for byte in part.bytes().chain([0xff]) {
                hash ^= u64::from(byte);
                hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
            }
        }
        hash
    };
    let (a, b) = (fnv(0xcbf2_9ce4_8422_2325), fnv(0x6c62_272e_07bb_0142));
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xffff,
        b >> 48,
        b & 0xffff_ffff_ffff
    )
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

/// The `expectations` column; an expectation's dataset is the table its rules belong to.
fn expectations_column(events: &[Event], tables: &BTreeMap<String, String>) -> ArrayRef {
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
                .append_option(
                    event
                        .dataset
                        .as_deref()
                        .map(|d| tables.get(d).map_or(d, String::as_str)),
                );
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
        Field::new("maturity_level", DataType::Utf8, true),
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
    use datafusion::arrow::array::Array;

    #[test]
    fn events_become_one_batch_with_the_log_schema() {
        let log = EventLog::new("p", "id".into(), Vec::new());
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
    fn origin_carries_databricks_ids_and_the_flow_table() {
        let log = EventLog::new("p", "pid".into(), Vec::new());
        log.set_table("to_amounts", "amounts");
        log.flow("to_amounts", FlowState::Queued, Value::Null);
        log.push(Event {
            sequence: 0,
            timestamp: SystemTime::now(),
            level: Level::Info,
            event_type: "flow_progress",
            dataset: Some("to_amounts".into()),
            flow_state: Some(FlowState::Completed),
            message: "done".into(),
            details: Value::Null,
            error: None,
            expectations: Vec::new(),
            batch_id: Some(4),
        });
        log.emit(
            Level::Info,
            "update_progress",
            None,
            None,
            "done".into(),
            Value::Null,
            None,
            Vec::new(),
        );
        let batch = log.drain().unwrap().unwrap();
        let origin = batch
            .column(5)
            .as_any()
            .downcast_ref::<StructArray>()
            .unwrap();
        let text = |name: &str, row: usize| {
            let column = origin.column_by_name(name).unwrap();
            let strings = column.as_any().downcast_ref::<StringArray>().unwrap();
            (!strings.is_null(row)).then(|| strings.value(row).to_string())
        };
        assert_eq!(text("pipeline_id", 2).as_deref(), Some("pid"));
        assert_eq!(text("update_id", 0), text("run_id", 0));
        assert_eq!(text("table_name", 1).as_deref(), Some("amounts"));
        assert_eq!(text("table_name", 2), None);
        assert_eq!(text("flow_name", 1).as_deref(), Some("to_amounts"));
        assert_eq!(text("flow_id", 0), text("flow_id", 1));
        assert_eq!(text("flow_id", 2), None);
        let batches = origin.column_by_name("batch_id").unwrap();
        let batches = batches.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(batches.iter().collect::<Vec<_>>(), [None, Some(4), None]);
    }

    #[test]
    fn ids_are_uuid_shaped_and_depend_only_on_their_parts() {
        let id = stable_id(&["pid", "flow", "silver"]);
        assert_eq!(id, stable_id(&["pid", "flow", "silver"]));
        assert_ne!(id, stable_id(&["pid", "flowsilver"]));
        assert_eq!(
            id.split('-').map(str::len).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
    }

    #[tokio::test]
    async fn the_pipeline_id_is_made_once_and_kept_in_the_storage() {
        let storage = crate::storage::MemoryStorage::new();
        let id = pipeline_id(&storage).await;
        assert_eq!(pipeline_id(&storage).await, id);
        let other = crate::storage::MemoryStorage::new();
        assert_ne!(
            pipeline_id(&other).await,
            id,
            "a new storage, a new pipeline"
        );
    }

    #[test]
    fn json_objects_merge_deeply() {
        let merged = json!({"a": {"b": 1}}).merge(json!({"a": {"c": 2}, "d": 3}));
        assert_eq!(merged, json!({"a": {"b": 1, "c": 2}, "d": 3}));
    }
}
