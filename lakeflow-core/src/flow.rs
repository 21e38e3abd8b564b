//! Execute one flow: plan its query against the current snapshots of its inputs, run it on
//! the engine, and stream its batches into one storage commit, counting rows on the way.
//!
//! The counts come from the same pass that writes; nothing here runs a query twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::graph::DatasetGraph;
use crate::planner::{executable_plan, stored_inputs};
use crate::storage::{Storage, TableWrite};

/// What a completed flow did.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FlowOutcome {
    pub rows_written: u64,
    pub version: u64,
}

/// Recomputes dataset `name` and replaces its table in one commit.
pub(crate) async fn run_flow(
    graph: &DatasetGraph,
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
) -> Result<FlowOutcome> {
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
    let streams = engine.execute(plan).await?;
    let rows = Arc::new(AtomicU64::new(0));
    let schema = dataset.read_schema.clone();
    let streams = streams
        .into_iter()
        .map(|s| conform(s, schema.clone(), rows.clone()))
        .collect();
    let committed = storage
        .replace(TableWrite {
            name: name.to_string(),
            schema,
            streams,
            partition_cols: dataset.def.partition_cols.clone(),
            properties: dataset.def.table_properties.clone(),
            comment: dataset.def.comment.clone(),
        })
        .await?;
    Ok(FlowOutcome {
        rows_written: rows.load(Ordering::Relaxed),
        version: committed.version,
    })
}

/// Gives every batch the stored schema (casting where storage chose another type) and counts
/// its rows.
fn conform(
    stream: SendableRecordBatchStream,
    schema: SchemaRef,
    rows: Arc<AtomicU64>,
) -> SendableRecordBatchStream {
    let target = schema.clone();
    let mapped = stream.map(move |batch| {
        let batch = batch?;
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
        let batch = RecordBatch::try_new(target.clone(), columns)
            .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))?;
        rows.fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
        Ok(batch)
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, mapped))
}
