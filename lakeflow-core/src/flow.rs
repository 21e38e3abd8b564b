//! Execute one flow: decide how its table is refreshed (skipped when up to date, merged
//! incrementally, recomputed, or a streaming batch from `stream.rs`), plan its query against
//! its inputs, run it on the engine, check its expectations, and stream its batches into one
//! storage commit, counting rows on the way. Rows that drop rules remove go, when asked, to a
//! quarantine table written alongside.
//!
//! The counts come from the same pass that writes; nothing here runs a query twice.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{SinkExt, StreamExt};

use datafusion::logical_expr::LogicalPlan;

use crate::dataset::DatasetKind;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event_log::{EventLog, FlowState};
use crate::expectations::{Checker, ExpectationResult, Rule};
use crate::failpoint;
use crate::graph::DatasetGraph;
use crate::planner::{FlowInputs, executable_plan, reads};
use crate::storage::{FilesPrepared, Storage, TableWrite, Txn, conform_batch};

/// What a completed flow did.
#[derive(Debug, Clone)]
pub(crate) struct FlowOutcome {
    pub rows_written: u64,
    /// The table version committed, or `None` when there was nothing new to commit.
    pub version: Option<u64>,
    pub expectations: Vec<ExpectationResult>,
    pub dropped_rows: u64,
    /// How the table was refreshed.
    pub technique: Technique,
    /// For a streaming flow: the last batch it committed in this run.
    pub batch: Option<u64>,
}

/// How a flow refreshed its table, as the event log records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Technique {
    /// Recomputed over all input and replaced.
    FullRecompute,
    /// The aggregate of the new rows merged into the stored result.
    Incremental,
    /// A streaming batch appended.
    Append,
    /// A batch of changes merged by key (AUTO CDC).
    Merge,
    /// A streaming flow found no new input; nothing committed.
    NoNewData,
    /// Not run: inputs and definition are as at the last refresh.
    Skipped,
}

impl Technique {
    /// The name in the event log.
    pub fn as_str(self) -> &'static str {
        match self {
            Technique::FullRecompute => "full_recompute",
            Technique::Incremental => "incremental",
            Technique::Append => "append",
            Technique::Merge => "merge",
            Technique::NoNewData => "no_new_data",
            Technique::Skipped => "skipped",
        }
    }
}

/// What a recomputed flow's result depends on: its definition (a hash of the plan and the
/// table options), the version of every pipeline table it reads, and a fingerprint (path,
/// size, modification time) of the external files it reads. `None` when it reads an external
/// source lakeflow cannot fingerprint (a Delta path, a table provider); such a flow is always
/// recomputed.
async fn signature(
    graph: &DatasetGraph,
    name: &str,
    storage: &dyn Storage,
    session: &datafusion::prelude::SessionContext,
) -> Result<Option<String>> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut todo = vec![name.to_string()];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(next) = todo.pop() {
        let Some(dataset) = graph.get(&next) else {
            continue;
        };
        if !dataset.stream_files.is_empty() {
            return Ok(None);
        }
        let Some(files) = &dataset.file_sources else {
            return Ok(None);
        };
        for spec in files {
            spec.fingerprint(session).await?.hash(&mut hasher);
        }
        let def = &dataset.def;
        format!("{}", dataset.plan.display_indent_schema()).hash(&mut hasher);
        format!(
            "{:?}{:?}{:?}{:?}",
            def.expectations, def.partition_cols, def.table_properties, def.quarantine
        )
        .hash(&mut hasher);
        for input in dataset.inputs.keys() {
            if graph
                .get(input)
                .is_some_and(|d| d.kind == DatasetKind::TemporaryView)
                && seen.insert(input.clone())
            {
                todo.push(input.clone());
            }
        }
    }
    let (tables, _) = reads(graph, name);
    let mut versions = BTreeMap::new();
    for table in tables {
        versions.insert(table.clone(), storage.version(&table).await?);
    }
    Ok(Some(
        serde_json::json!({ "definition": format!("{:016x}", hasher.finish()), "inputs": versions })
            .to_string(),
    ))
}

/// How a run treats one flow.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct FlowMode {
    /// Start the flow's checkpoint over and replace its table (streaming tables).
    pub full_refresh: bool,
}

/// How the output of one execution lands in the table.
pub(crate) enum Commit {
    /// Replace the table's contents.
    Replace,
    /// Append to the table.
    Append,
}

/// Runs dataset `name`'s flow: a streaming table over streaming inputs processes the new
/// input since its checkpoint and appends; everything else is recomputed and replaced.
pub(crate) async fn run_flow(
    graph: &DatasetGraph,
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
    log: &EventLog,
    mode: FlowMode,
) -> Result<FlowOutcome> {
    log.flow(name, FlowState::Planning, serde_json::Value::Null);
    let dataset = graph
        .get(name)
        .ok_or_else(|| Error::Internal(format!("running unknown dataset `{name}`")))?;
    let (batch_reads, stream_reads) = reads(graph, name);
    let mut inputs = FlowInputs::default();
    for input in batch_reads {
        let table = snapshot(storage, name, &input).await?;
        inputs.tables.insert(input, table);
    }
    let streaming = dataset.kind == DatasetKind::AppendFlow
        || (dataset.kind == DatasetKind::StreamingTable && !stream_reads.is_empty());
    if streaming {
        check_partitioning(graph, dataset.table(), storage, mode).await?;
    } else {
        let signature = signature(graph, name, storage, &engine.session()).await?;
        let state_key = format!("_lakeflow/state/{name}.json");
        if let Some(signature) = &signature
            && !mode.full_refresh
            && storage.version(name).await?.is_some()
            && storage.read_state(&state_key).await?.as_deref() == Some(signature.as_bytes())
        {
            return Ok(FlowOutcome {
                rows_written: 0,
                version: None,
                expectations: Vec::new(),
                dropped_rows: 0,
                technique: Technique::Skipped,
                batch: None,
            });
        }
        // Only a flow that writes checks: a skipped one's definition is as at its last
        // refresh, partitioning included.
        check_partitioning(graph, dataset.table(), storage, mode).await?;
        let incremental = match &signature {
            Some(signature) if !mode.full_refresh => {
                incremental(
                    graph, name, engine, storage, log, &inputs, signature, &state_key,
                )
                .await?
            }
            _ => None,
        };
        let outcome = match incremental {
            Some(outcome) => outcome,
            None => {
                let plan = executable_plan(graph, name, &inputs)?;
                execute(
                    graph,
                    name,
                    engine,
                    storage,
                    log,
                    plan,
                    Commit::Replace,
                    None,
                )
                .await?
            }
        };
        match signature {
            Some(signature) => {
                storage
                    .write_state(&state_key, signature.into_bytes())
                    .await?
            }
            // Once a flow cannot be skipped, drop what an older definition recorded.
            None => storage.write_state(&state_key, Vec::new()).await?,
        }
        return Ok(outcome);
    }
    crate::stream::run_stream_batch(
        graph,
        name,
        engine,
        storage,
        log,
        mode,
        inputs,
        stream_reads,
    )
    .await
}

/// A table's partitioning is fixed once it is stored, as in Spark: a definition that asks for
/// other partition columns is an error unless the run fully refreshes the table, which
/// re-creates it with them.
async fn check_partitioning(
    graph: &DatasetGraph,
    table: &str,
    storage: &dyn Storage,
    mode: FlowMode,
) -> Result<()> {
    let Some(target) = graph.get(table) else {
        return Ok(());
    };
    if mode.full_refresh || !target.kind.is_stored() {
        return Ok(());
    }
    let Some(existing) = storage.partition_columns(table).await? else {
        return Ok(());
    };
    let requested = &target.def.partition_cols;
    if &existing == requested {
        return Ok(());
    }
    let list = |cols: &[String]| match cols {
        [] => "none".to_string(),
        cols => cols
            .iter()
            .map(|c| format!("`{c}`"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    Err(Error::InvalidDefinition {
        dataset: table.to_string(),
        message: format!(
            "the stored table is partitioned by {} but the definition asks for {}; partitioning cannot change on an existing table: run a full refresh of `{table}` (`lakeflow run --full-refresh {table}`) to re-create it, or keep its partition columns [CANNOT_UPDATE_PARTITION_COLUMNS]",
            list(&existing),
            list(requested)
        ),
    })
}

async fn snapshot(
    storage: &dyn Storage,
    reader: &str,
    input: &str,
) -> Result<Arc<dyn datafusion::catalog::TableProvider>> {
    storage.table(input).await?.ok_or_else(|| Error::Storage {
        location: storage.table_location(input),
        message: format!(
            "`{reader}` reads `{input}`, which has no table yet; run the pipeline without a selection so `{input}` is computed first"
        ),
        source: None,
    })
}

/// Refreshes a materialized view by merging the aggregate of its input's new rows into the
/// stored result, when that is equivalent to recomputing it: the view is a mergeable
/// aggregation (`incremental.rs`) whose pipeline inputs are as at the view's last refresh but
/// one, which only received appends (a fact table joined with unchanged dimensions), with an
/// unchanged definition and no expectations. `None` means recompute.
#[allow(clippy::too_many_arguments)]
async fn incremental(
    graph: &DatasetGraph,
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
    log: &EventLog,
    inputs: &FlowInputs,
    signature: &str,
    state_key: &str,
) -> Result<Option<FlowOutcome>> {
    let dataset = graph
        .get(name)
        .ok_or_else(|| Error::Internal(format!("running unknown dataset `{name}`")))?;
    let def = &dataset.def;
    if dataset.kind != DatasetKind::MaterializedView
        || !def.expectations.is_empty()
        || def.quarantine.is_some()
    {
        return Ok(None);
    }
    let parse = |text: &[u8]| serde_json::from_slice::<serde_json::Value>(text).ok();
    let (Some(previous), Some(current)) = (
        storage.read_state(state_key).await?.and_then(|s| parse(&s)),
        parse(signature.as_bytes()),
    ) else {
        return Ok(None);
    };
    if previous.get("definition") != current.get("definition") {
        return Ok(None);
    }
    // Exactly one input table changed since the last refresh (a fact table that received
    // appends); the others (dimensions) are at the versions that refresh read.
    let (tables, _) = reads(graph, name);
    let version = |v: &serde_json::Value, input: &str| {
        v.pointer(&format!("/inputs/{input}"))
            .and_then(|v| v.as_u64())
    };
    let mut changed = Vec::new();
    for input in &tables {
        let (Some(before), Some(now)) = (version(&previous, input), version(&current, input))
        else {
            return Ok(None);
        };
        if before != now {
            changed.push((input.clone(), before, now));
        }
    }
    let [(input, before, now)] = changed.as_slice() else {
        return Ok(None);
    };
    let (input, before, now) = (input.clone(), *before, *now);
    if before >= now {
        return Ok(None);
    }
    // Temporary views are inlined so that what they do (a DISTINCT, say) is seen.
    let inlined = crate::planner::inline_temporary_views(graph, dataset.plan.clone())?;
    let Some(mergeable) = crate::incremental::analyze(&inlined, &|table| table == input) else {
        return Ok(None);
    };
    let Some(stored) = storage.table(name).await? else {
        return Ok(None);
    };
    let appended = match storage.appended(&input, Some(before), now, false).await {
        Ok(appended) => appended,
        Err(Error::NotAnAppend { .. }) => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut delta_inputs = FlowInputs::default();
    delta_inputs.tables.insert(input.clone(), appended);
    for (table, provider) in &inputs.tables {
        delta_inputs
            .tables
            .entry(table.clone())
            .or_insert_with(|| provider.clone());
    }
    let delta = executable_plan(graph, name, &delta_inputs)?;
    let session = engine.session();
    let merged = mergeable.merge(
        session.read_table(stored)?,
        datafusion::dataframe::DataFrame::new(session.state(), delta),
    )?;
    let mut outcome = execute(
        graph,
        name,
        engine,
        storage,
        log,
        merged.into_unoptimized_plan(),
        Commit::Replace,
        None,
    )
    .await?;
    outcome.technique = Technique::Incremental;
    Ok(Some(outcome))
}

/// Plans the flow against `inputs`, executes it, checks its expectations and writes the
/// output (and the quarantine table) in one commit each.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn execute(
    graph: &DatasetGraph,
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
    log: &EventLog,
    plan: LogicalPlan,
    commit: Commit,
    txn: Option<Txn>,
) -> Result<FlowOutcome> {
    let dataset = graph
        .get(name)
        .ok_or_else(|| Error::Internal(format!("running unknown dataset `{name}`")))?;
    // An append flow writes its target: the target's options and rules, plus its own rules,
    // over its rows conformed to the target's columns.
    let target = graph
        .get(dataset.table())
        .ok_or_else(|| Error::Internal(format!("`{name}` writes an unknown table")))?;
    let table = target.def.name.as_str();
    let def = &target.def;
    let mut expectations = def.expectations.clone();
    let plan = if dataset.target.is_some() {
        expectations.extend(dataset.def.expectations.iter().cloned());
        conform_to(plan, &target.output_schema)?
    } else {
        plan
    };
    let txn_present = txn.is_some();
    let technique = if txn_present {
        Technique::Append
    } else {
        Technique::FullRecompute
    };
    // An engine that writes where it computes gets every rule as a column of the plan, so
    // that its tasks check their rows alone; the rows stay there, only the files' list comes
    // back. Not for sinks that take rows.
    let sink_table = def.sink.as_ref().map(|sink| sink.table());
    let sink_files = def
        .sink
        .as_ref()
        .and_then(|sink| sink.file_sink())
        .and_then(|sink| Some((sink, sink.parts()?)));
    let writes_files =
        (def.sink.is_none() || sink_files.is_some() || sink_table.is_some_and(|t| t.is_some()))
            && engine.writes_files(&plan);
    let session = engine.session();
    let (plan, checker) = if writes_files {
        let unique = expectations
            .iter()
            .any(|e| matches!(e.rule, Rule::Unique(_)));
        let stored = match (&commit, unique) {
            (Commit::Append, true) => match storage.table(table).await? {
                Some(stored) => Some(session.read_table(stored)?.into_unoptimized_plan()),
                None => None,
            },
            _ => None,
        };
        Checker::new_in_plan(
            table,
            &expectations,
            def.quarantine.is_some(),
            plan,
            &session.state(),
            stored,
        )?
    } else {
        Checker::new(
            table,
            &expectations,
            def.quarantine.is_some(),
            plan,
            &session.state(),
        )?
    };
    if matches!(commit, Commit::Append) {
        seed_unique_keys(&checker, table, target, storage, engine).await?;
    }
    if writes_files && checker.checks_rows_alone() && engine.writes_files(&plan) {
        if let Some((sink, parts)) = sink_files {
            // A file sink's batch: its old files cleared, each task writes its part.
            let (writer, batch) = sink_batch(txn.as_ref(), name);
            sink.clear_batch(&writer, batch).await?;
            log.flow(name, FlowState::Starting, serde_json::Value::Null);
            log.flow(name, FlowState::Running, serde_json::Value::Null);
            let batch = crate::SinkBatch {
                sink: parts,
                writer,
                batch,
            };
            let written = engine.execute_into_sink(plan, &checker, &batch).await;
            if let Some(failure) = checker.take_failure() {
                return Err(failure);
            }
            return Ok(FlowOutcome {
                rows_written: written?,
                version: None,
                expectations: checker.results(),
                dropped_rows: checker.dropped(),
                technique: Technique::Append,
                batch: None,
            });
        }
        // A table: the dataset's, or a sink's, which takes the batch under the flow's writer
        // id and batch number.
        let (store, sink, txn, technique) = match sink_table.flatten() {
            Some((store, table)) => {
                let (app_id, batch) = sink_batch(txn.as_ref(), name);
                let txn = Txn {
                    app_id,
                    version: batch as i64,
                };
                (store, Some(table), Some(txn), Technique::Append)
            }
            None => (storage, None, txn, technique),
        };
        let files = FileWrite {
            name,
            target,
            sink,
            checker: &checker,
            replace: matches!(commit, Commit::Replace),
            txn,
            technique,
        };
        if let Some(outcome) = files.run(engine, store, log, plan.clone()).await? {
            return Ok(outcome);
        }
        // The storage takes rows only: they come back here to be written.
        return execute_here(
            name, engine, storage, log, plan, commit, files.txn, target, checker, technique,
        )
        .await;
    }
    execute_here(
        name, engine, storage, log, plan, commit, txn, target, checker, technique,
    )
    .await
}

/// A flow's write by an engine that writes files where it computes them.
struct FileWrite<'a> {
    name: &'a str,
    target: &'a crate::resolve::Resolved,
    /// The sink's table in its own storage, when the flow writes a sink.
    sink: Option<&'a str>,
    checker: &'a Checker,
    replace: bool,
    txn: Option<Txn>,
    technique: Technique,
}

impl FileWrite<'_> {
    /// Writes the files and commits them, the quarantine table's first; `None` when the
    /// storage takes rows only.
    async fn run(
        &self,
        engine: &dyn Engine,
        storage: &dyn Storage,
        log: &EventLog,
        plan: LogicalPlan,
    ) -> Result<Option<FlowOutcome>> {
        let def = &self.target.def;
        let write = || match self.sink {
            Some(table) => TableWrite {
                name: table.to_string(),
                schema: self.target.read_schema.clone(),
                streams: Vec::new(),
                partition_cols: Vec::new(),
                properties: BTreeMap::new(),
                comment: None,
                txn: self.txn.clone(),
            },
            None => table_write(
                def,
                self.target.read_schema.clone(),
                Vec::new(),
                self.txn.clone(),
            ),
        };
        let Some(prepared) = storage.prepare_files(write(), self.replace).await? else {
            return Ok(None);
        };
        // A sink's versions are not the pipeline's.
        let outcome = |rows_written, version, dropped_rows| FlowOutcome {
            rows_written,
            version: self.sink.is_none().then_some(version),
            expectations: self.checker.results(),
            dropped_rows,
            technique: self.technique,
            batch: None,
        };
        let main = match prepared {
            FilesPrepared::Done(committed) => return Ok(Some(outcome(0, committed.version, 0))),
            FilesPrepared::Write(main) => main,
        };
        // The quarantine table carries the batch's transaction too, and commits first: a
        // batch whose quarantined rows landed before a crash writes them no more.
        let quarantine = match (&def.quarantine, self.checker.quarantines()) {
            (Some(quarantine), true) => {
                let write = quarantine_write(quarantine, self.target, storage, self.txn.clone())?;
                match storage.prepare_files(write, self.replace).await? {
                    Some(FilesPrepared::Write(files)) => Some(files),
                    Some(FilesPrepared::Done(_)) => None,
                    None => {
                        return Err(Error::Internal(format!(
                            "the storage takes files for `{}` but not for its quarantine table `{quarantine}`",
                            def.name
                        )));
                    }
                }
            }
            _ => None,
        };
        log.flow(self.name, FlowState::Starting, serde_json::Value::Null);
        log.flow(self.name, FlowState::Running, serde_json::Value::Null);
        let written = engine
            .execute_into_files(plan, self.checker, &main, quarantine.as_ref())
            .await;
        if let Some(failure) = self.checker.take_failure() {
            return Err(failure);
        }
        let written = written?;
        failpoint::hit("mid_write");
        if let (Some(name), Some(_)) = (&def.quarantine, &quarantine) {
            let write = quarantine_write(name, self.target, storage, self.txn.clone())?;
            storage
                .commit_files(write, self.replace, written.quarantined)
                .await?;
            failpoint::hit("quarantine_committed");
        }
        let committed = storage
            .commit_files(write(), self.replace, written.files)
            .await?;
        Ok(Some(outcome(
            written.rows,
            committed.version,
            self.checker.dropped(),
        )))
    }
}

/// The write of the quarantine table `name` of `target` (its `streams` empty): the query's
/// columns and the rules each row failed, with the batch's transaction.
fn quarantine_write(
    name: &str,
    target: &crate::resolve::Resolved,
    storage: &dyn Storage,
    txn: Option<Txn>,
) -> Result<TableWrite> {
    let data = Arc::new(target.output_schema.as_ref().clone());
    Ok(TableWrite {
        name: name.to_string(),
        schema: storage.stored_schema(&Checker::quarantine_schema(&data))?,
        streams: Vec::new(),
        partition_cols: Vec::new(),
        properties: BTreeMap::new(),
        comment: Some(format!(
            "Rows that drop rules removed from `{}`",
            target.def.name
        )),
        txn,
    })
}

/// Executes the flow's checked plan and writes the rows that come back to this process (and
/// the quarantine table) in one commit each.
#[allow(clippy::too_many_arguments)]
async fn execute_here(
    name: &str,
    engine: &dyn Engine,
    storage: &dyn Storage,
    log: &EventLog,
    plan: LogicalPlan,
    commit: Commit,
    txn: Option<Txn>,
    target: &crate::resolve::Resolved,
    checker: Checker,
    technique: Technique,
) -> Result<FlowOutcome> {
    let def = &target.def;
    let checker = Arc::new(checker);
    // The quarantine table commits first and the table last, so the table says whether a
    // batch is done; a batch run again because only its quarantined rows landed before a
    // crash (`stream.rs`) writes the table only.
    let mut quarantine = def.quarantine.as_deref().filter(|_| checker.quarantines());
    if let (Some(txn), Some(table)) = (&txn, quarantine)
        && storage.transaction_version(table, &txn.app_id).await? >= Some(txn.version)
    {
        quarantine = None;
    }
    log.flow(name, FlowState::Starting, serde_json::Value::Null);
    let streams = engine.execute(plan).await?;
    log.flow(name, FlowState::Running, serde_json::Value::Null);

    let rows = Arc::new(AtomicU64::new(0));
    let schema = target.read_schema.clone();
    let (quarantine_tx, quarantine_rx) =
        futures::channel::mpsc::channel::<Result<RecordBatch, DataFusionError>>(4);
    let quarantine_tx = quarantine.is_some().then_some(quarantine_tx);
    // The table's streams end once the quarantine table is committed, so that its commit
    // comes after.
    let (gate, ended, committed_tx) = QuarantineGate::new(streams.len());
    let streams = streams
        .into_iter()
        .map(|s| {
            let checked = check_and_conform(
                s,
                checker.clone(),
                schema.clone(),
                rows.clone(),
                quarantine_tx.clone(),
            );
            match quarantine {
                Some(_) => gate.after(checked),
                None => checked,
            }
        })
        .collect();
    drop(quarantine_tx);
    if let Some(sink) = &def.sink {
        // A sink: the batch goes to it under the flow's writer id and batch number.
        let (writer, batch) = sink_batch(txn.as_ref(), name);
        if let Err(e) = sink.write(&writer, batch, schema, streams).await {
            return Err(checker.take_failure().unwrap_or(e));
        }
        return Ok(FlowOutcome {
            rows_written: rows.load(Ordering::Relaxed),
            version: None,
            expectations: checker.results(),
            dropped_rows: checker.dropped(),
            technique: Technique::Append,
            batch: None,
        });
    }
    let quarantine_txn = txn.clone();
    let main = table_write(def, schema, streams, txn);
    let write = async {
        match commit {
            Commit::Replace => storage.replace(main).await,
            Commit::Append => storage.append(main).await,
        }
    };
    let committed = match quarantine {
        Some(quarantine) => {
            let mut q_write = quarantine_write(quarantine, target, storage, quarantine_txn)?;
            let q_schema = q_write.schema.clone();
            let q_stream: SendableRecordBatchStream = Box::pin(RecordBatchStreamAdapter::new(
                q_schema.clone(),
                quarantine_rx,
            ));
            let q_stream = QuarantineGate::until_ended(q_stream, ended);
            q_write.streams = vec![conform(q_stream, q_schema, Arc::new(AtomicU64::new(0)))];
            let q_commit = async {
                let committed = match commit {
                    Commit::Replace => storage.replace(q_write).await,
                    Commit::Append => storage.append(q_write).await,
                }?;
                failpoint::hit("quarantine_committed");
                let _ = committed_tx.send(());
                Ok::<_, Error>(committed)
            };
            futures::try_join!(write, q_commit).map(|(main, _)| main)
        }
        _ => write.await,
    };
    let committed = match committed {
        Ok(committed) => committed,
        Err(e) => return Err(checker.take_failure().unwrap_or(e)),
    };
    Ok(FlowOutcome {
        rows_written: rows.load(Ordering::Relaxed),
        version: Some(committed.version),
        expectations: checker.results(),
        dropped_rows: checker.dropped(),
        technique,
        batch: None,
    })
}

/// The writer id and batch number a flow's batch goes to a sink under: its streaming
/// transaction's, or the flow's name and 0.
fn sink_batch(txn: Option<&Txn>, flow: &str) -> (String, u64) {
    match txn {
        Some(txn) => (txn.app_id.clone(), txn.version as u64),
        None => (flow.to_string(), 0),
    }
}

/// The write of `streams` into dataset `def`'s table, with its options. `pipelines.*`
/// properties are lakeflow's settings, not the table format's, and are left out.
pub(crate) fn table_write(
    def: &crate::dataset::DatasetDef,
    schema: SchemaRef,
    streams: Vec<SendableRecordBatchStream>,
    txn: Option<Txn>,
) -> TableWrite {
    TableWrite {
        name: def.name.clone(),
        schema,
        streams,
        partition_cols: def.partition_cols.clone(),
        properties: def
            .table_properties
            .iter()
            .filter(|(k, _)| !k.starts_with("pipelines."))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        comment: def.comment.clone(),
        txn,
    }
}

/// An append flow's rows in its target's columns: by name, cast to the target's types, NULL
/// where the flow has no such column (the resolver checked that every column it has fits).
fn conform_to(
    plan: LogicalPlan,
    schema: &datafusion::arrow::datatypes::Schema,
) -> Result<LogicalPlan> {
    use datafusion::logical_expr::{ExprSchemable, LogicalPlanBuilder, cast, lit};
    let input = plan.schema().clone();
    let exprs = schema
        .fields()
        .iter()
        .map(|field| {
            let expr = match input.index_of_column_by_name(None, field.name()) {
                Some(index) => datafusion::prelude::Expr::Column(datafusion::common::Column::from(
                    input.qualified_field(index),
                )),
                None => lit(datafusion::common::ScalarValue::Null),
            };
            let expr = if expr.get_type(&input)? == *field.data_type() {
                expr
            } else {
                cast(expr, field.data_type().clone())
            };
            Ok(expr.alias(field.name()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(LogicalPlanBuilder::from(plan).project(exprs)?.build()?)
}

/// Appending to a table: its uniqueness rules must also hold against the rows already
/// committed, so their keys (only the key columns are read) seed the rules' seen sets.
async fn seed_unique_keys(
    checker: &Checker,
    name: &str,
    dataset: &crate::resolve::Resolved,
    storage: &dyn Storage,
    engine: &dyn Engine,
) -> Result<()> {
    let keys = checker.unique_keys();
    if keys.is_empty() {
        return Ok(());
    }
    let Some(table) = storage.table(name).await? else {
        return Ok(());
    };
    let session = engine.session();
    for (index, columns) in keys {
        let exprs: Vec<_> = columns
            .iter()
            .map(|c| {
                let field = dataset.output_schema.field_with_name(c)?;
                Ok(datafusion::logical_expr::cast(
                    datafusion::prelude::col(datafusion::common::Column::from_name(c)),
                    field.data_type().clone(),
                ))
            })
            .collect::<Result<_, datafusion::arrow::error::ArrowError>>()
            .map_err(|e| Error::DataFusion(e.into()))?;
        let mut stream = session
            .read_table(table.clone())?
            .select(exprs)?
            .execute_stream()
            .await?;
        while let Some(batch) = stream.next().await {
            checker.seed(index, &batch?)?;
        }
    }
    Ok(())
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
            failpoint::hit("mid_write");
            Ok(batch)
        }
    });
    Box::pin(RecordBatchStreamAdapter::new(schema, checked))
}

/// Orders a table's commit after its quarantine table's. The table's streams each drop
/// their quarantine sender as they end; the last to end says so (the quarantine stream ends
/// only then, so a table write that stops early commits no quarantined rows) and holds its
/// own end back until the quarantine table is committed (failing if that write did).
struct QuarantineGate {
    left: Arc<AtomicU64>,
    ended: Arc<std::sync::Mutex<Option<futures::channel::oneshot::Sender<()>>>>,
    committed: futures::future::Shared<futures::channel::oneshot::Receiver<()>>,
}

impl QuarantineGate {
    /// The gate for `streams` table streams; the receiver of "every table stream ended",
    /// for [`QuarantineGate::until_ended`], and the sender of "the quarantine table is
    /// committed".
    fn new(
        streams: usize,
    ) -> (
        Self,
        futures::channel::oneshot::Receiver<()>,
        futures::channel::oneshot::Sender<()>,
    ) {
        use futures::FutureExt;
        let (ended_tx, ended_rx) = futures::channel::oneshot::channel();
        let (committed_tx, committed_rx) = futures::channel::oneshot::channel();
        // No table stream: nothing to wait for.
        let ended_tx = if streams == 0 {
            let _ = ended_tx.send(());
            None
        } else {
            Some(ended_tx)
        };
        let gate = QuarantineGate {
            left: Arc::new(AtomicU64::new(streams as u64)),
            ended: Arc::new(std::sync::Mutex::new(ended_tx)),
            committed: committed_rx.shared(),
        };
        (gate, ended_rx, committed_tx)
    }

    /// A table stream whose end waits as the gate says.
    fn after(&self, stream: SendableRecordBatchStream) -> SendableRecordBatchStream {
        let (left, ended, committed) = (
            self.left.clone(),
            self.ended.clone(),
            self.committed.clone(),
        );
        let schema = stream.schema();
        let end = futures::stream::once(async move {
            if left.fetch_sub(1, Ordering::AcqRel) != 1 {
                return None;
            }
            let ended = ended.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(ended) = ended {
                let _ = ended.send(());
            }
            match committed.await {
                Ok(()) => None,
                Err(_) => Some(Err(DataFusionError::Execution(
                    "the quarantine table's write failed".into(),
                ))),
            }
        })
        .filter_map(futures::future::ready);
        Box::pin(RecordBatchStreamAdapter::new(schema, stream.chain(end)))
    }

    /// The quarantined rows, ending once every table stream has ended (or with an error, if
    /// the table's write stopped before).
    fn until_ended(
        rows: SendableRecordBatchStream,
        ended: futures::channel::oneshot::Receiver<()>,
    ) -> SendableRecordBatchStream {
        let schema = rows.schema();
        let end = futures::stream::once(async move {
            ended.await.err().map(|_| {
                Err(DataFusionError::Execution(
                    "the table's write stopped before its end".into(),
                ))
            })
        })
        .filter_map(futures::future::ready);
        Box::pin(RecordBatchStreamAdapter::new(schema, rows.chain(end)))
    }
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
