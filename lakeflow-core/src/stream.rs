//! Streaming flows: one batch per run over the new input of each streaming source, exactly
//! once. The batch's end offsets are written to the checkpoint before it runs, its output is
//! committed with the Delta transaction `(app_id, batch)`, and then it is marked committed;
//! see `checkpoint.rs` for the protocol and how a crash is recovered.
//!
//! Executing and writing the batch is `flow.rs`'s; this module decides what the batch covers.

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;

use crate::checkpoint::{Checkpoint, Offset, Offsets};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event_log::EventLog;
use crate::failpoint;
use crate::flow::{Commit, FlowMode, FlowOutcome, Technique, execute};
use crate::graph::DatasetGraph;
use crate::planner::{FlowInputs, StreamInput, executable_plan};
use crate::storage::{Storage, Txn};

/// One batch of a streaming flow, exactly once: recover or plan the batch's offsets, write
/// them ahead, append the batch's output with the transaction `(app_id, batch)`, then mark
/// the batch committed. See `checkpoint.rs` for the protocol.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_stream_batch(
    graph: &DatasetGraph,
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
    log: &EventLog,
    mode: FlowMode,
    mut inputs: FlowInputs,
    stream_reads: BTreeMap<String, StreamInput>,
) -> Result<FlowOutcome> {
    let dataset = graph
        .get(name)
        .ok_or_else(|| Error::Internal(format!("running unknown flow `{name}`")))?;
    let table = dataset.table().to_string();
    let shared = graph.get(&table).is_some_and(|t| t.is_shared());
    let checkpoint = if shared {
        // A table several flows write: finish its reset, if one started, before any batch.
        let epoch = crate::checkpoint::table_epoch(storage, &table).await?;
        if epoch > 0 {
            truncate_once(graph, &table, storage, epoch).await?;
        }
        let checkpoint = Checkpoint::open(storage, name).await?;
        if checkpoint.epoch() < epoch {
            Checkpoint::reset(storage, name, Some(epoch)).await?
        } else {
            checkpoint
        }
    } else if mode.full_refresh {
        Checkpoint::reset(storage, name, None).await?
    } else {
        Checkpoint::open(storage, name).await?
    };
    let app_id = checkpoint.app_id();
    // An AUTO CDC batch commits to the target and then to its state: the state says whether
    // the whole batch is done.
    let state = dataset
        .def
        .cdc
        .as_ref()
        .map(|_| crate::cdc::state_table(name, checkpoint.version()));
    let done_table = state.clone().unwrap_or_else(|| table.clone());
    // A sink cannot say what it holds: a batch not marked committed is handed to it again
    // with the same rows (the same offsets), and the sink writes it idempotently.
    let sink = graph
        .get(&table)
        .is_some_and(|t| t.kind == crate::dataset::DatasetKind::Sink);
    let mut replay = None;
    failpoint::hit("stream_plan");
    let session = engine.session();
    // The batch to run and where it starts: after the last committed batch. A planned batch
    // that did not commit (the transaction id on the table says) is planned again from the
    // same start; nothing read it, so it may now cover more input.
    let (batch, start) = match checkpoint.latest_planned(storage).await? {
        None => (0, Offsets::default()),
        Some(planned) => {
            let marked = checkpoint.is_committed(storage, planned).await?;
            let committed = marked
                || storage.transaction_version(&done_table, &app_id).await? >= Some(planned as i64);
            if committed {
                if !marked {
                    let version = storage.version(&table).await?.unwrap_or(0);
                    checkpoint.commit(storage, planned, version).await?;
                }
                (planned + 1, checkpoint.offsets(storage, planned).await?)
            } else {
                if sink {
                    replay = Some(checkpoint.offsets(storage, planned).await?);
                }
                if planned == 0 {
                    (0, Offsets::default())
                } else {
                    (planned, checkpoint.offsets(storage, planned - 1).await?)
                }
            }
        }
    };
    let mut end = match replay.take() {
        Some(planned) => planned,
        None => current_offsets(&session, storage, &stream_reads, &start, batch).await?,
    };
    // An AUTO CDC flow from snapshots: the snapshot's version is its offset.
    let snapshot_plan = match dataset.def.cdc.as_ref().and_then(|c| c.snapshot.as_ref()) {
        None => None,
        Some(snapshot) => {
            let last = match start.sources.get(crate::cdc::SNAPSHOT_OFFSET) {
                Some(Offset::Table { version }) => Some(*version),
                _ => None,
            };
            match crate::cdc::next_snapshot(snapshot, name, storage, &session, last).await? {
                None => {
                    return Ok(FlowOutcome {
                        rows_written: 0,
                        version: None,
                        expectations: Vec::new(),
                        dropped_rows: 0,
                        technique: Technique::NoNewData,
                    });
                }
                Some((version, plan)) => {
                    end.sources.insert(
                        crate::cdc::SNAPSHOT_OFFSET.to_string(),
                        Offset::Table { version },
                    );
                    Some((version, plan))
                }
            }
        }
    };
    let table_exists = sink || storage.version(&table).await?.is_some();
    if !end.is_ahead_of(&start) && table_exists && batch > 0 {
        // Nothing new since the last batch: no commit, no checkpoint entry.
        return Ok(FlowOutcome {
            rows_written: 0,
            version: None,
            expectations: Vec::new(),
            dropped_rows: 0,
            technique: Technique::NoNewData,
        });
    }
    let mut schemas = BTreeMap::new();
    for (key, input) in &stream_reads {
        if let StreamInput::Files(_) = input {
            schemas.insert(key.clone(), stream_file_schema(graph, name, key)?);
        }
    }
    checkpoint.hold_schemas(storage, &schemas).await?;
    failpoint::hit("before_offsets");
    checkpoint.plan(storage, &end).await?;
    failpoint::hit("after_offsets");
    for (key, input) in &stream_reads {
        let provider = match input {
            StreamInput::Dataset {
                name: upstream,
                skip_change_commits,
            } => {
                let (after, upto) = table_range(key, &start, &end)?;
                storage
                    .appended(upstream, after, upto, *skip_change_commits)
                    .await?
            }
            StreamInput::Delta {
                path,
                skip_change_commits,
            } => {
                let (after, upto) = table_range(key, &start, &end)?;
                storage
                    .appended_at(path, after, upto, *skip_change_commits)
                    .await?
            }
            StreamInput::Files(spec) => {
                let seen = match start.sources.get(key) {
                    Some(Offset::Files { files }) => files.clone(),
                    _ => Default::default(),
                };
                let new: Vec<String> = match end.sources.get(key) {
                    Some(Offset::Files { files }) => files.difference(&seen).cloned().collect(),
                    _ => return Err(Error::Internal(format!("no end offset for `{key}`"))),
                };
                let schema = stream_file_schema(graph, name, key)?;
                spec.open_files(&session, &new, schema)?
            }
        };
        inputs.streams.insert(key.clone(), provider);
    }
    // The first batch of a checkpoint creates the table, or replaces it on a full refresh;
    // a shared table was truncated by its reset instead, so its flows only append.
    let commit = if batch == 0 && !shared {
        Commit::Replace
    } else {
        Commit::Append
    };
    let txn = Txn {
        app_id: app_id.clone(),
        version: batch as i64,
    };
    let plan = match &snapshot_plan {
        Some((_, Some(plan))) => plan.clone(),
        _ => executable_plan(graph, name, &inputs)?,
    };
    let written = match (&dataset.def.cdc, state) {
        (Some(spec), Some(state)) => {
            let target = graph
                .get(&table)
                .ok_or_else(|| Error::Internal(format!("unknown CDC target `{table}`")))?;
            // A snapshot becomes the changes that turn the target into it.
            let (spec, plan) = match &snapshot_plan {
                Some((version, _)) => {
                    let changes = crate::cdc::snapshot_changes(
                        spec,
                        &session,
                        storage,
                        &table,
                        &target.read_schema,
                        plan,
                        *version,
                    )
                    .await?;
                    (std::sync::Arc::new(spec.snapshot_spec()), changes)
                }
                None => (spec.clone(), plan),
            };
            let target_done =
                storage.transaction_version(&table, &app_id).await? >= Some(batch as i64);
            let tables = crate::cdc::Tables {
                flow: name,
                target: &table,
                target_schema: target.read_schema.clone(),
                state,
                tombstone_ttl: crate::cdc::tombstone_ttl(&target.def.table_properties)?,
                def: &target.def,
            };
            log.flow(
                name,
                crate::event_log::FlowState::Running,
                serde_json::Value::Null,
            );
            crate::cdc::apply_batch(&spec, &tables, &session, storage, plan, txn, target_done)
                .await
                .map(|applied| FlowOutcome {
                    rows_written: applied.rows,
                    version: applied.version,
                    expectations: Vec::new(),
                    dropped_rows: 0,
                    technique: Technique::Merge,
                })
        }
        _ => execute(graph, name, engine, storage, log, plan, commit, Some(txn)).await,
    };
    let outcome = match written {
        Ok(outcome) => outcome,
        Err(e) => {
            return Err(attribute_file_error(
                e,
                &session,
                &stream_reads,
                &start,
                &end,
                graph,
                name,
            )
            .await);
        }
    };
    failpoint::hit("after_commit");
    checkpoint
        .commit(storage, batch, outcome.version.unwrap_or(0))
        .await?;
    failpoint::hit("after_checkpoint");
    Ok(outcome)
}

/// The versions a table input covers in this batch: after the start offset (`None` for a
/// stream that starts) up to the end offset.
fn table_range(key: &str, start: &Offsets, end: &Offsets) -> Result<(Option<u64>, u64)> {
    let upto = match end.sources.get(key) {
        Some(Offset::Table { version }) => *version,
        _ => return Err(Error::Internal(format!("no end offset for `{key}`"))),
    };
    let after = match start.sources.get(key) {
        Some(Offset::Table { version }) => Some(*version),
        _ => None,
    };
    Ok((after, upto))
}

/// Starts a full refresh of the shared table `name`'s flow writes: raises the table's reset
/// epoch. The truncation and the new checkpoints follow as each flow runs (see
/// `checkpoint.rs`).
pub(crate) async fn start_table_reset(
    graph: &DatasetGraph,
    name: &str,
    storage: &dyn Storage,
) -> Result<()> {
    let table = graph.get(name).map_or(name, |d| d.table());
    crate::checkpoint::next_table_epoch(storage, table).await?;
    Ok(())
}

/// Empties shared table `table` for reset epoch `epoch`, unless that was done: the commit
/// carries the transaction `(lakeflow:reset:<table>, epoch)`, which is how a rerun knows.
async fn truncate_once(
    graph: &DatasetGraph,
    table: &str,
    storage: &dyn Storage,
    epoch: u64,
) -> Result<()> {
    let app_id = format!("lakeflow:reset:{table}");
    if storage.transaction_version(table, &app_id).await? >= Some(epoch as i64) {
        return Ok(());
    }
    let target = graph
        .get(table)
        .ok_or_else(|| Error::Internal(format!("resetting unknown table `{table}`")))?;
    let schema = target.read_schema.clone();
    let empty: datafusion::execution::SendableRecordBatchStream = Box::pin(
        datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
            schema.clone(),
            futures::stream::empty(),
        ),
    );
    failpoint::hit("before_truncate");
    storage
        .replace(crate::flow::table_write(
            &target.def,
            schema,
            vec![empty],
            Some(Txn {
                app_id,
                version: epoch as i64,
            }),
        ))
        .await?;
    failpoint::hit("after_truncate");
    Ok(())
}

/// Where each streaming input is now: the upstream table's version, or every file there.
async fn current_offsets(
    session: &datafusion::prelude::SessionContext,
    storage: &dyn Storage,
    stream_reads: &BTreeMap<String, StreamInput>,
    start: &Offsets,
    batch: u64,
) -> Result<Offsets> {
    let mut end = Offsets {
        batch,
        sources: BTreeMap::new(),
    };
    for (key, input) in stream_reads {
        let offset = match input {
            StreamInput::Dataset { name: upstream, .. } => match storage.version(upstream).await? {
                Some(version) => Offset::Table { version },
                None => {
                    return Err(Error::Storage {
                        location: storage.table_location(upstream),
                        message: format!(
                            "`{upstream}` has no table yet, so it cannot be read as a stream; run the pipeline without a selection"
                        ),
                        source: None,
                    });
                }
            },
            StreamInput::Delta { path, .. } => match storage.version_at(path).await? {
                Some(version) => Offset::Table { version },
                None => {
                    return Err(Error::Storage {
                        location: path.clone(),
                        message: "there is no Delta table here any more, so it cannot be read as a stream; restore it, or run a full refresh of the datasets that read it".into(),
                        source: None,
                    });
                }
            },
            StreamInput::Files(spec) => {
                let mut files = match start.sources.get(key) {
                    Some(Offset::Files { files }) => files.clone(),
                    _ => Default::default(),
                };
                files.extend(spec.list_files(session).await?);
                Offset::Files { files }
            }
        };
        end.sources.insert(key.clone(), offset);
    }
    Ok(end)
}

/// The schema a streaming file input was planned with (held fixed for every batch).
fn stream_file_schema(graph: &DatasetGraph, name: &str, key: &str) -> Result<SchemaRef> {
    let mut found = None;
    let mut todo = vec![name.to_string()];
    while let Some(next) = todo.pop() {
        let Some(dataset) = graph.get(&next) else {
            continue;
        };
        if dataset.stream_files.contains_key(key) {
            let _ = dataset.plan.apply_with_subqueries(|node| {
                if let LogicalPlan::TableScan(scan) = node
                    && let Some(provider) = crate::placeholder::Placeholder::of(&scan.source)
                    && let Some(p) = provider.downcast_ref::<crate::placeholder::Placeholder>()
                    && p.binding.stream_key().as_deref() == Some(key)
                {
                    found = Some(p.schema.clone());
                }
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            });
        }
        todo.extend(dataset.inputs.keys().cloned());
    }
    found.ok_or_else(|| Error::Internal(format!("no planned schema for stream `{key}`")))
}

/// A batch over new files failed: if a file does not parse, say which one. Only on this error
/// path is each new file read again, one at a time, to find it.
async fn attribute_file_error(
    error: Error,
    session: &datafusion::prelude::SessionContext,
    stream_reads: &BTreeMap<String, StreamInput>,
    start: &Offsets,
    end: &Offsets,
    graph: &DatasetGraph,
    name: &str,
) -> Error {
    for (key, input) in stream_reads {
        let StreamInput::Files(spec) = input else {
            continue;
        };
        let (Some(Offset::Files { files: all }), seen) =
            (end.sources.get(key), start.sources.get(key))
        else {
            continue;
        };
        let seen = match seen {
            Some(Offset::Files { files }) => files.clone(),
            _ => Default::default(),
        };
        let Ok(schema) = stream_file_schema(graph, name, key) else {
            continue;
        };
        for file in all.difference(&seen) {
            let Ok(provider) = spec.open_files(session, std::slice::from_ref(file), schema.clone())
            else {
                continue;
            };
            let Ok(df) = session.read_table(provider) else {
                continue;
            };
            // Read every column (a count would skip parsing) without keeping the rows.
            let failure = match df.execute_stream().await {
                Err(e) => Some(e),
                Ok(mut stream) => {
                    let mut failure = None;
                    while let Some(batch) = stream.next().await {
                        if let Err(e) = batch {
                            failure = Some(e);
                            break;
                        }
                    }
                    failure
                }
            };
            if let Some(e) = failure {
                return Error::SourceFile {
                    file: format!("/{}", file.trim_start_matches('/')),
                    message: e.to_string(),
                };
            }
        }
    }
    error
}
