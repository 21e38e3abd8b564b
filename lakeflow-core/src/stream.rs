//! Streaming flows: one batch per run over the new input of each streaming source, exactly
//! once. The batch's end offsets are written to the checkpoint before it runs, its output is
//! committed with the Delta transaction `(app_id, batch)`, and then it is marked committed;
//! see `checkpoint.rs` for the protocol and how a crash is recovered.
//!
//! Executing and writing the batch is `flow.rs`'s; this module decides what the batch covers,
//! and evolves a file source's held schema when a batch meets new columns (`evolve_schemas`).

use std::collections::BTreeMap;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::logical_expr::LogicalPlan;
use futures::StreamExt;

use crate::checkpoint::{Checkpoint, FileStamp, Offset, Offsets};
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
///
/// A file source bounded by `maxFilesPerTrigger` / `maxBytesPerTrigger` leaves files for
/// later batches: they run one after another in this run, each its own checkpointed batch,
/// until nothing is left.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn run_stream_batch(
    graph: &DatasetGraph,
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
    log: &EventLog,
    mode: FlowMode,
    inputs: FlowInputs,
    stream_reads: BTreeMap<String, StreamInput>,
) -> Result<FlowOutcome> {
    let mut total: Option<FlowOutcome> = None;
    let mut mode = mode;
    loop {
        let (outcome, more) = run_one_batch(
            graph,
            name,
            engine,
            storage,
            log,
            mode,
            inputs.clone(),
            &stream_reads,
        )
        .await?;
        // Later batches of this run continue the checkpoint the first one started.
        mode.full_refresh = false;
        total = Some(match total {
            None => outcome,
            Some(mut sum) => {
                sum.rows_written += outcome.rows_written;
                sum.dropped_rows += outcome.dropped_rows;
                sum.version = outcome.version.or(sum.version);
                sum.batch = outcome.batch.or(sum.batch);
                for (s, o) in sum.expectations.iter_mut().zip(outcome.expectations) {
                    s.passed += o.passed;
                    s.failed += o.failed;
                }
                if outcome.technique != Technique::NoNewData {
                    sum.technique = outcome.technique;
                }
                sum
            }
        });
        if !more {
            break;
        }
    }
    total.ok_or_else(|| Error::Internal(format!("flow `{name}` ran no batch")))
}

/// One batch; also says whether file sources hold more files than the batch's bound took.
#[allow(clippy::too_many_arguments)]
async fn run_one_batch(
    graph: &DatasetGraph,
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
    log: &EventLog,
    mode: FlowMode,
    mut inputs: FlowInputs,
    stream_reads: &BTreeMap<String, StreamInput>,
) -> Result<(FlowOutcome, bool)> {
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
    // A table with a quarantine table commits a batch there first (`flow.rs`). When only
    // that commit landed before a crash, the batch runs again with the same offsets (the same
    // rows) and writes the table only.
    let quarantine = graph
        .get(&table)
        .filter(|_| state.is_none())
        .and_then(|t| t.def.quarantine.clone());
    let mut replay = None;
    failpoint::hit("stream_plan");
    let session = engine.session();
    // The batch to run and where it starts: after the last committed batch. A planned batch
    // that did not commit (the transaction id on the table says) is planned again from the
    // same start; nothing read it, so it may now cover more input.
    let mut replan = false;
    let (batch, start) = match checkpoint.latest_planned(storage).await? {
        None => (0, Offsets::default()),
        Some(planned) => {
            let marked = checkpoint.is_committed(storage, planned).await?;
            let holds = |table: String| {
                let app_id = &app_id;
                async move {
                    Ok::<_, Error>(
                        storage.transaction_version(&table, app_id).await? >= Some(planned as i64),
                    )
                }
            };
            let committed = marked || holds(done_table.clone()).await?;
            if let Some(quarantine) = quarantine.filter(|_| !committed)
                && holds(quarantine).await?
            {
                replay = Some(checkpoint.offsets(storage, planned).await?);
            }
            if committed {
                if !marked {
                    let version = storage.version(&table).await?.unwrap_or(0);
                    checkpoint.commit(storage, planned, version).await?;
                }
                (planned + 1, checkpoint.offsets(storage, planned).await?)
            } else {
                if sink && replay.is_none() {
                    replay = Some(checkpoint.offsets(storage, planned).await?);
                }
                replan = true;
                if planned == 0 {
                    (0, Offsets::default())
                } else {
                    (planned, checkpoint.offsets(storage, planned - 1).await?)
                }
            }
        }
    };
    let (mut end, mut more, changed) = match replay.take() {
        Some(planned) => (planned, false, Vec::new()),
        None => current_offsets(&session, storage, stream_reads, &start, batch).await?,
    };
    for file in &changed {
        warn_progress(
            log,
            name,
            format!(
                "`{file}` changed after flow `{name}` read it (its size or modification time differs); the change is not read. Land files by writing them elsewhere and renaming them into place, or set allowOverwrites to read changed files again"
            ),
            serde_json::json!({ "changed_file": file }),
        );
    }
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
                    return Ok((
                        FlowOutcome {
                            rows_written: 0,
                            version: None,
                            expectations: Vec::new(),
                            dropped_rows: 0,
                            technique: Technique::NoNewData,
                            batch: None,
                        },
                        false,
                    ));
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
        return Ok((
            FlowOutcome {
                rows_written: 0,
                version: None,
                expectations: Vec::new(),
                dropped_rows: 0,
                technique: Technique::NoNewData,
                batch: None,
            },
            false,
        ));
    }
    let mut schemas = BTreeMap::new();
    for (key, input) in stream_reads {
        if let StreamInput::Files(_) = input {
            schemas.insert(key.clone(), stream_file_schema(graph, name, key)?);
        }
    }
    checkpoint.hold_schemas(storage, &schemas).await?;
    failpoint::hit("before_offsets");
    let planned = checkpoint.plan(storage, &end, replan).await?;
    if planned != end {
        // Another writer planned this batch first: run it as planned there, and go on to the
        // next batch for what this run saw beyond it.
        more |= end.is_ahead_of(&planned);
        end = planned;
    }
    failpoint::hit("after_offsets");
    let evolve = || {
        evolve_schemas(
            graph,
            name,
            &session,
            storage,
            &checkpoint,
            stream_reads,
            &start,
            &end,
        )
    };
    // With type widening a value that needs a wider type is not an error of the reader (it
    // would be rescued), so the batch's files are looked at before it runs.
    if stream_reads.values().any(widens_types)
        && let Some(widened) = evolve().await?
    {
        return Err(widened);
    }
    let malformed = std::sync::Arc::new(crate::ingest::Malformed::default());
    // With a watermark: the windows this batch closes, (after the watermark before it, up to
    // the watermark after it).
    let mut closing: Option<(Option<i64>, Option<i64>)> = None;
    for (key, input) in stream_reads {
        let provider = match input {
            StreamInput::Dataset {
                name: upstream,
                skip_change_commits,
            } if dataset.def.watermark.is_some() => {
                let mark = dataset.def.watermark.as_ref().ok_or_else(|| {
                    Error::Internal("a watermark flow without a watermark".into())
                })?;
                let (after, upto) = table_range(key, &start, &end)?;
                // A window's rows are those its table holds when the watermark passes the
                // window's end: the table read whole, as of this batch's end.
                let whole = storage
                    .appended(upstream, None, upto, *skip_change_commits)
                    .await?;
                let before = match after {
                    Some(v) => {
                        let table = storage
                            .appended(upstream, None, v, *skip_change_commits)
                            .await?;
                        watermark_of(&session, table, mark).await?
                    }
                    None => None,
                };
                closing = Some((before, watermark_of(&session, whole.clone(), mark).await?));
                whole
            }
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
                let new = batch_files(spec, key, &start, &end, batch)?;
                let schema = stream_file_schema(graph, name, key)?;
                spec.open_counted_files(&session, &new, schema, malformed.clone())?
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
    let plan = match closing {
        Some((before, after)) => close_windows(name, plan, before, after)?,
        None => plan,
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
                target_done,
            };
            log.flow(
                name,
                crate::event_log::FlowState::Running,
                serde_json::Value::Null,
            );
            crate::cdc::apply_batch(&spec, &tables, &session, engine, storage, plan, txn)
                .await
                .map(|applied| FlowOutcome {
                    rows_written: applied.rows,
                    version: applied.version,
                    expectations: Vec::new(),
                    dropped_rows: 0,
                    technique: Technique::Merge,
                    batch: None,
                })
        }
        _ => execute(graph, name, engine, storage, log, plan, commit, Some(txn)).await,
    };
    let mut outcome = match written {
        Ok(outcome) => outcome,
        Err(e) => {
            let e =
                attribute_file_error(e, &session, stream_reads, &start, &end, graph, name).await;
            if matches!(e, Error::NewColumns { .. })
                && let Some(evolved) = evolve().await?
            {
                return Err(evolved);
            }
            return Err(e);
        }
    };
    failpoint::hit("after_commit");
    checkpoint
        .commit(storage, batch, outcome.version.unwrap_or(0))
        .await?;
    let malformed = malformed.counts();
    if !malformed.is_empty() {
        let total: u64 = malformed.values().sum();
        let files: Vec<String> = malformed.keys().map(|f| format!("`{f}`")).collect();
        warn_progress(
            log,
            name,
            format!(
                "mode DROPMALFORMED left out {total} malformed records of {} (batch {batch})",
                files.join(", ")
            ),
            serde_json::json!({ "dropped_malformed_records": total, "files": malformed }),
        );
    }
    failpoint::hit("after_checkpoint");
    outcome.batch = Some(batch);
    Ok((outcome, more))
}

/// The watermark of the rows `table` holds: the latest `mark.column` minus the delay, in
/// microseconds since the epoch (`None` while the table holds no time).
async fn watermark_of(
    session: &datafusion::prelude::SessionContext,
    table: std::sync::Arc<dyn datafusion::catalog::TableProvider>,
    mark: &crate::dataset::Watermark,
) -> Result<Option<i64>> {
    use datafusion::arrow::datatypes::{DataType, TimeUnit, TimestampMicrosecondType};
    use datafusion::functions_aggregate::expr_fn::max;
    use datafusion::prelude::{cast, ident};
    let latest = session
        .read_table(table)?
        .aggregate(
            Vec::new(),
            vec![
                max(cast(
                    ident(&mark.column),
                    DataType::Timestamp(TimeUnit::Microsecond, None),
                ))
                .alias("latest"),
            ],
        )?
        .collect()
        .await?;
    let value = latest.first().and_then(|batch| {
        use datafusion::arrow::array::{Array, AsArray};
        let column = batch.column(0).as_primitive::<TimestampMicrosecondType>();
        (column.len() == 1 && column.is_valid(0)).then(|| column.value(0))
    });
    Ok(value.map(|t| t.saturating_sub(mark.delay_micros)))
}

/// `plan` keeping only the windows whose end the watermark passed in this batch: above each
/// aggregate grouped by `window(..)`, a filter on the window's end, after `before` (none:
/// the first batch) and up to `after` (none: no window closes yet).
fn close_windows(
    name: &str,
    plan: datafusion::logical_expr::LogicalPlan,
    before: Option<i64>,
    after: Option<i64>,
) -> Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::common::tree_node::{Transformed, TreeNode};
    use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, lit};
    use datafusion::scalar::ScalarValue;
    let at = |micros: i64| {
        lit(ScalarValue::TimestampMicrosecond(
            Some(micros),
            Some("UTC".into()),
        ))
    };
    let mut found = false;
    let plan = plan
        .transform_up(|node| {
            let LogicalPlan::Aggregate(aggregate) = &node else {
                return Ok(Transformed::no(node));
            };
            let Some(i) = aggregate.group_expr.iter().position(|e| {
                matches!(e, Expr::ScalarFunction(f)
                        if lakeflow_sql::functions::window::is_time_window(f.name()))
            }) else {
                return Ok(Transformed::no(node));
            };
            found = true;
            let (qualifier, field) = aggregate.schema.qualified_field(i);
            let window = Expr::Column(datafusion::common::Column::new(
                qualifier.cloned(),
                field.name(),
            ));
            let end = datafusion::functions::core::expr_fn::get_field(window, "end");
            let mut keep = match after {
                Some(after) => end.clone().lt_eq(at(after)),
                None => lit(false),
            };
            if let Some(before) = before {
                keep = keep.and(end.gt(at(before)));
            }
            let filtered = LogicalPlanBuilder::from(node).filter(keep)?.build()?;
            Ok(Transformed::yes(filtered))
        })?
        .data;
    if !found {
        return Err(Error::InvalidDefinition {
            dataset: name.to_string(),
            message: "has a watermark but groups by no time window; group the stream by window(<event time>, '<duration>') so that each window is appended once its end passes the watermark".into(),
        });
    }
    Ok(plan)
}

/// Whether `input` is a file source with `schemaEvolutionMode` addNewColumnsWithTypeWidening.
fn widens_types(input: &StreamInput) -> bool {
    matches!(
        input,
        StreamInput::Files(crate::source::SourceSpec::Ingest(spec))
            if spec.options.evolution() == crate::ingest::SchemaEvolution::AddNewColumnsWithTypeWidening
    )
}

/// A WARN `flow_progress` event of flow `name` (a changed file, records left out).
fn warn_progress(log: &EventLog, name: &str, message: String, details: serde_json::Value) {
    log.emit(
        crate::event_log::Level::Warn,
        "flow_progress",
        Some(name),
        None,
        message,
        details,
        None,
        Vec::new(),
    );
}

/// Schema evolution (`schemaEvolutionMode` addNewColumns): a batch failed because a new
/// file has columns the held schema lacks. Every file of the batch is read for its columns
/// (only on this failure path), the new ones are added at the end of the held data columns
/// with the types inference gives them, and the held schema is replaced in the checkpoint.
/// The batch stays planned and uncommitted, so the next run plans it again from the same
/// start with the evolved schema, and its table gains the columns by schema merge. Returns
/// the error that stops the flow, or `None` when no source evolves (failOnNewColumns).
#[allow(clippy::too_many_arguments)]
async fn evolve_schemas(
    graph: &DatasetGraph,
    name: &str,
    session: &datafusion::prelude::SessionContext,
    storage: &dyn Storage,
    checkpoint: &Checkpoint,
    stream_reads: &BTreeMap<String, StreamInput>,
    start: &Offsets,
    end: &Offsets,
) -> Result<Option<Error>> {
    use crate::ingest::{SchemaEvolution, reader::merge_types, spark_type_name};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    // The first file met, the columns added (name, Spark type), the widenings in words.
    type Evolved = (String, Vec<(String, String)>, Vec<String>);
    let mut evolved: Option<Evolved> = None;
    for (key, input) in stream_reads {
        let StreamInput::Files(source) = input else {
            continue;
        };
        let crate::source::SourceSpec::Ingest(spec) = source else {
            continue;
        };
        let options = &spec.options;
        if !matches!(
            options.evolution(),
            SchemaEvolution::AddNewColumns | SchemaEvolution::AddNewColumnsWithTypeWidening
        ) {
            continue;
        }
        let held = stream_file_schema(graph, name, key)?;
        let data = crate::ingest::data_schema(options, &held);
        let widen = options.evolution() == SchemaEvolution::AddNewColumnsWithTypeWidening;
        let mut added: Vec<Field> = Vec::new();
        // Held columns whose type a file widens: (name, held type, wider type).
        let mut widened: Vec<(String, DataType, DataType)> = Vec::new();
        let mut first_file = None;
        for file in batch_files(source, key, start, end, end.batch)? {
            for (column, data_type) in spec.file_columns(session, &file).await? {
                if widen && let Ok(field) = data.field_with_name(&column) {
                    let held_type = field.data_type();
                    let current = widened
                        .iter()
                        .find(|w| w.0 == column)
                        .map_or(held_type, |w| &w.2);
                    let wider = merge_types(current, &data_type);
                    if &wider != current && crate::storage::is_widening(held_type, &wider) {
                        first_file.get_or_insert_with(|| source.file_url(&file.location));
                        match widened.iter_mut().find(|w| w.0 == column) {
                            Some(w) => w.2 = wider,
                            None => widened.push((column, held_type.clone(), wider)),
                        }
                    }
                    continue;
                }
                let known = Schema::new(
                    data.fields()
                        .iter()
                        .map(|f| f.as_ref().clone())
                        .chain(added.iter().cloned())
                        .collect::<Vec<_>>(),
                );
                if let Some(field) = added.iter_mut().find(|f| *f.name() == column) {
                    let widened = merge_types(field.data_type(), &data_type);
                    *field = Field::new(column, widened, true);
                    continue;
                }
                if crate::ingest::reader::new_columns(options, &known, [column.as_str()]).is_empty()
                {
                    continue;
                }
                first_file.get_or_insert_with(|| source.file_url(&file.location));
                added.push(Field::new(column, data_type, true));
            }
        }
        let Some(file) = first_file else { continue };
        let metadata = held.field_with_name(crate::ingest::METADATA_COLUMN).is_ok();
        let data = Schema::new(
            data.fields()
                .iter()
                .map(|f| match widened.iter().find(|w| w.0 == *f.name()) {
                    Some((_, _, wider)) => f.as_ref().clone().with_data_type(wider.clone()),
                    None => f.as_ref().clone(),
                })
                .chain(added.iter().cloned())
                .collect::<Vec<_>>(),
        );
        let schema = crate::ingest::output_schema(options, &data, metadata);
        checkpoint.evolve_schema(storage, key, schema).await?;
        failpoint::hit("schema_evolved");
        let columns = added
            .iter()
            .map(|f| (f.name().clone(), spark_type_name(f.data_type())))
            .collect::<Vec<_>>();
        let widened = widened
            .iter()
            .map(|(column, from, to)| {
                format!(
                    "`{column}` {} -> {}",
                    spark_type_name(from).to_uppercase(),
                    spark_type_name(to).to_uppercase()
                )
            })
            .collect::<Vec<_>>();
        match &mut evolved {
            None => evolved = Some((file, columns, widened)),
            Some((_, all, all_widened)) => {
                all.extend(columns);
                all_widened.extend(widened);
            }
        }
    }
    Ok(evolved.map(|(file, columns, widened)| {
        if widened.is_empty() {
            Error::SchemaEvolved { file, columns }
        } else {
            let changes = widened
                .into_iter()
                .chain(columns.into_iter().map(|(c, t)| format!("`{c}` {t} (new)")))
                .collect();
            Error::SchemaWidened { file, changes }
        }
    }))
}

/// The files a batch reads from file input `key`: those its end offset has and its start
/// lacks, and (with `allowOverwrites`) those whose stamp changed since they were read. With
/// `includeExistingFiles` false, the first batch reads none: the files there when the stream
/// started are only marked seen.
fn batch_files(
    spec: &crate::source::SourceSpec,
    key: &str,
    start: &Offsets,
    end: &Offsets,
    batch: u64,
) -> Result<Vec<crate::ingest::Listed>> {
    let (seen, seen_stamps) = match start.sources.get(key) {
        Some(Offset::Files { files, stamps }) => (files.clone(), stamps.clone()),
        None if batch == 0 && ingest_options(spec).is_some_and(|o| !o.include_existing) => {
            return Ok(Vec::new());
        }
        _ => Default::default(),
    };
    let Some(Offset::Files { files, stamps }) = end.sources.get(key) else {
        return Err(Error::Internal(format!("no end offset for `{key}`")));
    };
    Ok(files
        .iter()
        .filter(|f| {
            !seen.contains(*f)
                || seen_stamps
                    .get(*f)
                    .is_some_and(|old| stamps.get(*f) != Some(old))
        })
        .map(|f| {
            let stamp = stamps.get(f).copied().unwrap_or(FileStamp {
                size: 0,
                modified: 0,
            });
            crate::ingest::Listed {
                location: f.clone(),
                size: stamp.size,
                modified: stamp.modified,
            }
        })
        .collect())
}

fn ingest_options(spec: &crate::source::SourceSpec) -> Option<&crate::ingest::FileOptions> {
    match spec {
        crate::source::SourceSpec::Ingest(s) => Some(&s.options),
        _ => None,
    }
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

/// Where each streaming input is now: the upstream table's version, or the files there (the
/// oldest first, as many as `maxFilesPerTrigger` / `maxBytesPerTrigger` allow). Also says
/// whether files were left for another batch, and which files read before have changed.
async fn current_offsets(
    session: &datafusion::prelude::SessionContext,
    storage: &dyn Storage,
    stream_reads: &BTreeMap<String, StreamInput>,
    start: &Offsets,
    batch: u64,
) -> Result<(Offsets, bool, Vec<String>)> {
    let mut more = false;
    let mut changed = Vec::new();
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
                let starting = !start.sources.contains_key(key);
                let (mut files, mut stamps) = match start.sources.get(key) {
                    Some(Offset::Files { files, stamps }) => (files.clone(), stamps.clone()),
                    _ => Default::default(),
                };
                let options = ingest_options(spec);
                let allow = options.is_some_and(|o| o.allow_overwrites);
                let mut fresh = Vec::new();
                let last = files.iter().next_back().map(String::as_str);
                for f in spec.list_files_after(session, last).await? {
                    let stamp = FileStamp {
                        size: f.size,
                        modified: f.modified,
                    };
                    match stamps.get(&f.location) {
                        _ if !files.contains(&f.location) => fresh.push(f),
                        Some(old) if *old != stamp && allow => fresh.push(f),
                        Some(old) if *old != stamp => {
                            changed.push(spec.file_url(&f.location));
                        }
                        _ => {}
                    }
                }
                fresh.sort_by(|a, b| (a.modified, &a.location).cmp(&(b.modified, &b.location)));
                // The files there when a stream starts without includeExistingFiles are only
                // marked seen, all at once.
                let skip_existing =
                    starting && batch == 0 && options.is_some_and(|o| !o.include_existing);
                let (max_files, max_bytes) = match options {
                    Some(o) if !skip_existing => (o.max_files, o.max_bytes),
                    _ => (None, None),
                };
                let (mut count, mut bytes) = (0u64, 0u64);
                for f in fresh {
                    if count > 0
                        && (max_files.is_some_and(|m| count >= m)
                            || max_bytes.is_some_and(|m| bytes.saturating_add(f.size) > m))
                    {
                        more = true;
                        break;
                    }
                    count += 1;
                    bytes = bytes.saturating_add(f.size);
                    stamps.insert(
                        f.location.clone(),
                        FileStamp {
                            size: f.size,
                            modified: f.modified,
                        },
                    );
                    files.insert(f.location);
                }
                Offset::Files { files, stamps }
            }
        };
        end.sources.insert(key.clone(), offset);
    }
    Ok((end, more, changed))
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
    // The ingestion reader names the file itself.
    if let Some(found) = file_error(&error) {
        return found;
    }
    for (key, input) in stream_reads {
        let StreamInput::Files(spec) = input else {
            continue;
        };
        let Ok(new) = batch_files(spec, key, start, end, end.batch) else {
            continue;
        };
        let Ok(schema) = stream_file_schema(graph, name, key) else {
            continue;
        };
        for file in &new {
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
                let e = Error::DataFusion(e);
                if let Some(found) = file_error(&e) {
                    return found;
                }
                return Error::SourceFile {
                    file: format!("/{}", file.location.trim_start_matches('/')),
                    message: e.to_string(),
                };
            }
        }
    }
    error
}

/// A file error the ingestion reader raised, found in `error`'s chain of causes.
pub(crate) fn file_error(error: &Error) -> Option<Error> {
    // Read on another process (an engine's executor), it comes back in words.
    if let Some(found) = Error::from_wire(&error.to_string()) {
        return Some(found);
    }
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        match e.downcast_ref::<Error>() {
            Some(Error::SourceFile { file, message }) => {
                return Some(Error::SourceFile {
                    file: file.clone(),
                    message: message.clone(),
                });
            }
            Some(Error::NewColumns { file, columns }) => {
                return Some(Error::NewColumns {
                    file: file.clone(),
                    columns: columns.clone(),
                });
            }
            _ => {}
        }
        current = match e.downcast_ref::<datafusion::error::DataFusionError>() {
            Some(datafusion::error::DataFusionError::External(inner)) => Some(inner.as_ref()),
            Some(datafusion::error::DataFusionError::Context(_, inner)) => Some(inner.as_ref()),
            Some(datafusion::error::DataFusionError::Shared(inner)) => Some(inner.as_ref()),
            _ => e.source(),
        };
    }
    None
}
