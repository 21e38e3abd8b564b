//! The scheduler: walk the dependency graph and run every flow whose inputs are done, several
//! at a time. A failed flow marks everything downstream SKIPPED; independent flows go on.
//!
//! Temporary views are not flows: they are inlined into their readers by the planner.
//! This module decides order and status only; executing a flow is `flow.rs`'s job.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use std::sync::Arc;

use serde_json::json;

use crate::dataset::DatasetKind;
use crate::engine::Engine;
use crate::event_log::{EventLog, FlowState, Level, Observer};
use crate::flow::{FlowMode, FlowOutcome, Technique, run_flow};
use crate::graph::DatasetGraph;
use crate::planner::stored_inputs;
use crate::report::{DatasetReport, FlowStatus, RunReport};
use crate::storage::Storage;

/// Options of one run.
#[derive(Clone)]
pub struct RunOptions {
    /// The pipeline's name, in the event log.
    pub pipeline_name: String,
    /// At most this many flows run at the same time.
    pub max_concurrent_flows: usize,
    /// Who is told about each event as it happens (the progress display).
    pub observers: Vec<Arc<dyn Observer>>,
    /// Run only these datasets (with those in `full_refresh`); the others are EXCLUDED.
    /// `None` runs everything.
    pub refresh: Option<BTreeSet<String>>,
    /// Reset these streaming tables: new checkpoint, table replaced by a full recompute.
    pub full_refresh: BTreeSet<String>,
    /// Reset every streaming table.
    pub full_refresh_all: bool,
    /// The maintenance after the flows (compaction, vacuum).
    pub maintenance: crate::maintenance::MaintenanceOptions,
}

impl RunOptions {
    /// Whether the run selects `name`.
    pub fn selects(&self, name: &str) -> bool {
        if self.full_refresh_all {
            return true;
        }
        match &self.refresh {
            None if self.full_refresh.is_empty() => true,
            refresh => {
                refresh.as_ref().is_some_and(|r| r.contains(name))
                    || self.full_refresh.contains(name)
            }
        }
    }

    /// Whether the run asks to reset `name`.
    pub fn resets(&self, name: &str) -> bool {
        self.full_refresh_all || self.full_refresh.contains(name)
    }
}

impl std::fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunOptions")
            .field("pipeline_name", &self.pipeline_name)
            .field("max_concurrent_flows", &self.max_concurrent_flows)
            .field("observers", &self.observers.len())
            .finish()
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        RunOptions {
            pipeline_name: "pipeline".into(),
            max_concurrent_flows: cores.max(2),
            observers: Vec::new(),
            refresh: None,
            full_refresh: BTreeSet::new(),
            full_refresh_all: false,
            maintenance: Default::default(),
        }
    }
}

/// Runs every stored dataset's flow in dependency order and reports what happened.
pub(crate) async fn run_graph(
    graph: &DatasetGraph,
    engine: &dyn Engine,
    storage: &dyn Storage,
    options: &RunOptions,
    log: &EventLog,
) -> RunReport {
    let started = Instant::now();
    // Every stored dataset and append flow; a streaming table without a query of its own
    // completes when the flows into it have.
    let flows: Vec<&str> = graph
        .in_order()
        .filter(|d| d.kind != DatasetKind::TemporaryView)
        .map(|d| d.def.name.as_str())
        .collect();
    let deps: BTreeMap<&str, BTreeSet<String>> = flows
        .iter()
        .map(|name| {
            let mut deps = stored_inputs(graph, name);
            if let Some(node) = graph.get(name) {
                deps.extend(node.flows.iter().cloned());
            }
            (*name, deps)
        })
        .collect();
    let table_of = |name: &str| {
        graph
            .get(name)
            .map_or(name.to_string(), |d| d.table().to_string())
    };
    let mut reports: BTreeMap<&str, DatasetReport> = BTreeMap::new();
    let mut waiting: Vec<&str> = flows.clone();
    let mut running = FuturesUnordered::new();
    // Tables a flow is writing now: flows into one table run one at a time.
    let mut busy: BTreeSet<String> = BTreeSet::new();
    // Shared tables whose full refresh this run has started.
    let mut reset: BTreeSet<String> = BTreeSet::new();
    for name in &flows {
        if options.selects(&table_of(name)) {
            log.flow(name, FlowState::Queued, serde_json::Value::Null);
        } else {
            log.flow(
                name,
                FlowState::Excluded,
                json!({ "flow_progress": { "reason": "not selected for this run" } }),
            );
            reports.insert(
                name,
                report(graph, storage, name, FlowStatus::Excluded, None),
            );
        }
    }
    waiting.retain(|name| options.selects(&table_of(name)));

    loop {
        // Settle what can be settled: skip flows with a failed input, start ready ones.
        let mut still_waiting = Vec::with_capacity(waiting.len());
        for name in waiting {
            let inputs = &deps[name];
            let blocked_by = inputs.iter().find(|i| {
                reports.get(i.as_str()).is_some_and(|r| {
                    !matches!(
                        r.status,
                        FlowStatus::Completed | FlowStatus::Excluded | FlowStatus::UpToDate
                    )
                })
            });
            if let Some(upstream) = blocked_by {
                let reason = format!("upstream `{upstream}` did not complete");
                log.flow(
                    name,
                    FlowState::Skipped,
                    json!({ "flow_progress": { "reason": reason } }),
                );
                reports.insert(
                    name,
                    report(graph, storage, name, FlowStatus::Skipped, Some(reason)),
                );
                continue;
            }
            let ready = inputs.iter().all(|i| reports.contains_key(i.as_str()));
            let Some(node) = graph.get(name) else {
                continue;
            };
            if ready && !node.has_flow() {
                reports.insert(name, written_by_flows(graph, storage, name, &reports));
                continue;
            }
            let table = node.table().to_string();
            if ready && running.len() < options.max_concurrent_flows && !busy.contains(&table) {
                let mode = flow_mode(graph, name, options, log);
                // A table several flows write is reset once, by its first flow of the run.
                let start_reset = graph.get(&table).is_some_and(|t| t.is_shared())
                    && mode.full_refresh
                    && reset.insert(table.clone());
                busy.insert(table);
                running.push(async move {
                    let start = Instant::now();
                    let outcome = async {
                        if start_reset {
                            crate::stream::start_table_reset(graph, name, storage).await?;
                        }
                        run_flow(graph, name, engine, storage, log, mode).await
                    }
                    .await;
                    (name, outcome, start.elapsed())
                });
            } else {
                still_waiting.push(name);
            }
        }
        waiting = still_waiting;
        let Some((name, outcome, elapsed)) = running.next().await else {
            // Nothing runs and nothing can start: only possible if a flow waits on a dataset
            // that is not a flow, which the graph rules out. Report rather than hang.
            for name in waiting.drain(..) {
                let reason = "its inputs never completed".to_string();
                reports.insert(
                    name,
                    report(graph, storage, name, FlowStatus::Skipped, Some(reason)),
                );
            }
            break;
        };
        let mut row = match outcome {
            Ok(done) if done.technique == Technique::Skipped => {
                let reason = "its inputs and its definition are as at its last refresh".to_string();
                log.emit(
                    Level::Info,
                    "flow_progress",
                    Some(name),
                    Some(FlowState::Completed),
                    format!("Flow '{name}' is COMPLETED: up to date, not recomputed."),
                    json!({ "flow_progress": { "status": "COMPLETED", "skipped": true, "reason": reason } }),
                    None,
                    Vec::new(),
                );
                report(graph, storage, name, FlowStatus::UpToDate, Some(reason))
            }
            Ok(done) => {
                completed(log, name, &table_of(name), &done);
                let mut row = report(graph, storage, name, FlowStatus::Completed, None);
                row.rows_written = Some(done.rows_written);
                row.version = done.version;
                row.dropped_rows = Some(done.dropped_rows);
                row.expectations = done.expectations;
                row
            }
            Err(e) => {
                log.emit(
                    Level::Error,
                    "flow_progress",
                    Some(name),
                    Some(FlowState::Failed),
                    format!("Flow '{name}' is FAILED."),
                    json!({ "flow_progress": { "status": "FAILED" } }),
                    Some(e.to_string()),
                    Vec::new(),
                );
                report(
                    graph,
                    storage,
                    name,
                    FlowStatus::Failed,
                    Some(e.to_string()),
                )
            }
        };
        row.duration = elapsed;
        busy.remove(&table_of(name));
        reports.insert(name, row);
        crate::failpoint::hit("flow_done");
    }
    RunReport {
        datasets: flows
            .iter()
            .filter_map(|name| reports.remove(name))
            .collect(),
        duration: started.elapsed(),
        storage: storage.location(),
        maintenance: Vec::new(),
    }
}

/// The row of a streaming table that only append flows write: what they wrote this run.
fn written_by_flows(
    graph: &DatasetGraph,
    storage: &dyn Storage,
    name: &str,
    reports: &BTreeMap<&str, DatasetReport>,
) -> DatasetReport {
    let flows = graph.get(name).map(|d| d.flows.clone()).unwrap_or_default();
    let rows: Option<u64> = flows
        .iter()
        .filter_map(|f| reports.get(f.as_str()).and_then(|r| r.rows_written))
        .reduce(|a, b| a + b);
    let mut row = report(graph, storage, name, FlowStatus::Completed, None);
    row.rows_written = rows;
    row.version = flows
        .iter()
        .filter_map(|f| reports.get(f.as_str()).and_then(|r| r.version))
        .max();
    row
}

/// Whether the flow starts over; a table with `pipelines.reset.allowed = false` never does.
fn flow_mode(graph: &DatasetGraph, name: &str, options: &RunOptions, log: &EventLog) -> FlowMode {
    let table = graph.get(name).map_or(name, |d| d.table());
    if !options.resets(table) {
        return FlowMode::default();
    }
    let protected = graph.get(table).is_some_and(|d| {
        d.def
            .table_properties
            .get("pipelines.reset.allowed")
            .is_some_and(|v| v.eq_ignore_ascii_case("false"))
    });
    if protected {
        log.emit(
            Level::Warn,
            "flow_progress",
            Some(name),
            None,
            format!("Flow '{name}' is not reset: its table sets pipelines.reset.allowed = false; it runs incrementally."),
            json!({ "flow_progress": { "full_refresh": "refused" } }),
            None,
            Vec::new(),
        );
        return FlowMode::default();
    }
    FlowMode { full_refresh: true }
}

/// The final `flow_progress` event of a completed flow, with its metrics and data quality
/// in Databricks' shape (`metrics.num_output_rows`, `data_quality.dropped_records`,
/// `data_quality.expectations[{name, dataset, passed_records, failed_records}]`, the
/// dataset being the table the rules belong to); `technique`, `metrics.version` and each
/// expectation's `action` are lakeflow's.
fn completed(log: &EventLog, name: &str, table: &str, done: &FlowOutcome) {
    let expectations: Vec<_> = done
        .expectations
        .iter()
        .map(|e| {
            json!({
                "name": e.name,
                "dataset": table,
                "action": e.action.to_string(),
                "passed_records": e.passed,
                "failed_records": e.failed,
            })
        })
        .collect();
    log.push(crate::event_log::Event {
        sequence: 0,
        timestamp: std::time::SystemTime::now(),
        level: Level::Info,
        event_type: "flow_progress",
        dataset: Some(name.to_string()),
        flow_state: Some(FlowState::Completed),
        message: format!("Flow '{name}' is COMPLETED."),
        details: json!({ "flow_progress": {
            "status": "COMPLETED",
            "technique": done.technique.as_str(),
            "metrics": { "num_output_rows": done.rows_written, "version": done.version },
            "data_quality": { "dropped_records": done.dropped_rows, "expectations": expectations },
        }}),
        error: None,
        expectations: done.expectations.clone(),
        batch_id: done.batch,
    });
}

fn report(
    graph: &DatasetGraph,
    storage: &dyn Storage,
    name: &str,
    status: FlowStatus,
    reason: Option<String>,
) -> DatasetReport {
    let kind = graph.get(name).map_or(DatasetKind::Table, |d| d.kind);
    DatasetReport {
        name: name.to_string(),
        kind,
        status,
        rows_written: None,
        version: None,
        duration: Duration::ZERO,
        location: match graph.get(name).and_then(|d| graph.get(d.table())) {
            Some(target) => match &target.def.sink {
                Some(sink) => sink.location(),
                None => storage.table_location(target.table()),
            },
            None => storage.table_location(name),
        },
        expectations: Vec::new(),
        dropped_rows: None,
        reason,
    }
}
