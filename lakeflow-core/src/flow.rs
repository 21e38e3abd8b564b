//! Execute one flow: plan its query against the current snapshots of its inputs, run it on
//! the engine, check its expectations, and stream its batches into one storage commit,
//! counting rows on the way. Rows that drop rules remove go, when asked, to a quarantine table
//! written alongside.
//!
//! The counts come from the same pass that writes; nothing here runs a query twice.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{SinkExt, StreamExt};

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event_log::{EventLog, FlowState};
use crate::expectations::{Checker, ExpectationResult};
use crate::graph::DatasetGraph;
use crate::planner::{executable_plan, stored_inputs};
use crate::storage::{Storage, TableWrite};

/// What a completed flow did.
#[derive(Debug, Clone)]
pub(crate) struct FlowOutcome {
    pub rows_written: u64,
    pub version: u64,
    pub expectations: Vec<ExpectationResult>,
    pub dropped_rows: u64,
}

/// Recomputes dataset `name` and replaces its table in one commit.
pub(crate) async fn run_flow(
    graph: &DatasetGraph,
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
    log: &EventLog,
) -> Result<FlowOutcome> {
    log.flow(name, FlowState::Planning, serde_json::Value::Null);
    let dataset = graph
        .get(name)
        .ok_or_else(|| Error::Internal(format!("running unknown dataset `{name}`")))?;
    let mut tables = HashMap::new();
    for input in stored_inputs(graph, name) {
        let table = storage.table(&input).await?.ok_or_else(|| Error::Storage {
            location: storage.table_location(&input),
            message: format!(
                "`{name}` reads `{input}`, which has no table yet; run the pipeline without a selection so `{input}` is computed first"
            ),
            source: None,
        })?;
        tables.insert(input, table);
    }
    let plan = executable_plan(graph, name, &tables)?;
    let def = &dataset.def;
    let (plan, checker) = Checker::new(
        name,
        &def.expectations,
        def.quarantine.is_some(),
        plan,
        &engine.session().state(),
    )?;
    let checker = Arc::new(checker);
    log.flow(name, FlowState::Starting, serde_json::Value::Null);
    let streams = engine.execute(plan).await?;
    log.flow(name, FlowState::Running, serde_json::Value::Null);

    let rows = Arc::new(AtomicU64::new(0));
    let schema = dataset.read_schema.clone();
    let (quarantine_tx, quarantine_rx) =
        futures::channel::mpsc::channel::<Result<RecordBatch, DataFusionError>>(4);
    let quarantine_tx = checker.quarantines().then_some(quarantine_tx);
    let streams = streams
        .into_iter()
        .map(|s| {
            check_and_conform(
                s,
                checker.clone(),
                schema.clone(),
                rows.clone(),
                quarantine_tx.clone(),
            )
        })
        .collect();
    drop(quarantine_tx);
    let write = storage.replace(TableWrite {
        name: name.to_string(),
        schema,
        streams,
        partition_cols: def.partition_cols.clone(),
        properties: def.table_properties.clone(),
        comment: def.comment.clone(),
    });
    let committed = match (&def.quarantine, checker.quarantines()) {
        (Some(quarantine), true) => {
            let data = Arc::new(dataset.output_schema.as_ref().clone());
            let q_schema = storage.stored_schema(&Checker::quarantine_schema(&data))?;
            let q_stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
                q_schema.clone(),
                quarantine_rx,
            ));
            let q_stream = conform(q_stream, q_schema.clone(), Arc::new(AtomicU64::new(0)));
            let quarantine_write = storage.replace(TableWrite {
                name: quarantine.clone(),
                schema: q_schema,
                streams: vec![q_stream],
                partition_cols: Vec::new(),
                properties: BTreeMap::new(),
                comment: Some(format!("Rows that drop rules removed from `{name}`")),
            });
            futures::try_join!(write, quarantine_write).map(|(main, _)| main)
        }
        _ => write.await,
    };
    let committed = match committed {
        Ok(committed) => committed,
        Err(e) => return Err(checker.take_failure().unwrap_or(e)),
    };
    Ok(FlowOutcome {
        rows_written: rows.load(Ordering::Relaxed),
        version: committed.version,
        expectations: checker.results(),
        dropped_rows: checker.dropped(),
    })
}

/// Runs the expectation checks on every batch, hands dropped rows to the quarantine channel,
/// and conforms what is kept to the stored schema.
fn check_and_conform(
    stream: SendableRecordBatchStream,
    checker: Arc<Checker>,
    schema: SchemaRef,
    rows: Arc<AtomicU64>,
    quarantine: Option<futures::channel::mpsc::Sender<Result<RecordBatch, DataFusionError>>>,
) -> SendableRecordBatchStream {
    let target = schema.clone();
    let checked = stream.then(move |batch| {
        let checker = checker.clone();
        let mut quarantine = quarantine.clone();
        let target = target.clone();
        let rows = rows.clone();
        async move {
            let checked = checker.check(&batch?)?;
            if let (Some(tx), Some(q)) = (quarantine.as_mut(), checked.quarantined)
                && q.num_rows() > 0
            {
                tx.send(Ok(q)).await.map_err(|_| {
                    DataFusionError::Execution("the quarantine write stopped early".into())
                })?;
            }
            let batch = conform_batch(&checked.kept, &target)?;
            rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
            Ok(batch)
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, checked))
}

/// Gives every batch the stored schema and counts its rows.
fn conform(
    stream: SendableRecordBatchStream,
    schema: SchemaRef,
    rows: Arc<AtomicU64>,
) -> SendableRecordBatchStream {
    let target = schema.clone();
    let mapped = stream.map(move |batch| {
        let batch = conform_batch(&batch?, &target)?;
        rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(batch)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, mapped))
}

/// `batch` with the stored schema, casting columns where storage chose another type.
pub(crate) fn conform_batch(
    batch: &RecordBatch,
    target: &SchemaRef,
) -> Result<RecordBatch, DataFusionError> {
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new(target.clone(), columns)
        .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))
}
