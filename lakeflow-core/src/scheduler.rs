//! The scheduler: walk the dependency graph and run every flow whose inputs are done, several
//! at a time. A failed flow marks everything downstream SKIPPED; independent flows go on.
//!
//! Temporary views are not flows: they are inlined into their readers by the planner.
//! This module decides order and status only; executing a flow is `flow.rs`'s job.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::dataset::DatasetKind;
use crate::engine::Engine;
use crate::flow::run_flow;
use crate::graph::DatasetGraph;
use crate::planner::stored_inputs;
use crate::report::{DatasetReport, FlowStatus, RunReport};
use crate::storage::Storage;

/// Options of one run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// At most this many flows run at the same time.
    pub max_concurrent_flows: usize,
}

impl Default for RunOptions {
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        RunOptions {
            max_concurrent_flows: cores.max(2),
        }
    }
}

/// Runs every stored dataset's flow in dependency order and reports what happened.
pub async fn run_graph(
    graph: &DatasetGraph,
    engine: &dyn Engine,
    storage: &dyn Storage,
    options: &RunOptions,
) -> RunReport {
    let started = Instant::now();
    let flows: Vec<&str> = graph
        .in_order()
        .filter(|d| d.kind != DatasetKind::TemporaryView)
        .map(|d| d.def.name.as_str())
        .collect();
    let deps: BTreeMap<&str, BTreeSet<String>> = flows
        .iter()
        .map(|name| (*name, stored_inputs(graph, name)))
        .collect();
    let mut reports: BTreeMap<&str, DatasetReport> = BTreeMap::new();
    let mut waiting: Vec<&str> = flows.clone();
    let mut running = FuturesUnordered::new();

    loop {
        // Settle what can be settled: skip flows with a failed input, start ready ones.
        let mut still_waiting = Vec::with_capacity(waiting.len());
        for name in waiting {
            let inputs = &deps[name];
            let blocked_by = inputs.iter().find(|i| {
                reports
                    .get(i.as_str())
                    .is_some_and(|r| r.status != FlowStatus::Completed)
            });
            if let Some(upstream) = blocked_by {
                let reason = format!("upstream `{upstream}` did not complete");
                reports.insert(
                    name,
                    report(graph, storage, name, FlowStatus::Skipped, Some(reason)),
                );
                continue;
            }
            let ready = inputs.iter().all(|i| reports.contains_key(i.as_str()));
            if ready && running.len() < options.max_concurrent_flows {
                running.push(async move {
                    let start = Instant::now();
                    let outcome = run_flow(graph, name, engine, storage).await;
                    (name, outcome, start.elapsed())
                });
            } else {
                still_waiting.push(name);
            }
        }
        waiting = still_waiting;
        let Some((name, outcome, elapsed)) = running.next().await else {
            break;
        };
        let mut row = match outcome {
            Ok(done) => {
                let mut row = report(graph, storage, name, FlowStatus::Completed, None);
                row.rows_written = Some(done.rows_written);
                row.version = Some(done.version);
                row
            }
            Err(e) => report(
                graph,
                storage,
                name,
                FlowStatus::Failed,
                Some(e.to_string()),
            ),
        };
        row.duration = elapsed;
        reports.insert(name, row);
    }
    RunReport {
        datasets: flows
            .iter()
            .filter_map(|name| reports.remove(name))
            .collect(),
        duration: started.elapsed(),
        storage: storage.location(),
    }
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
        location: storage.table_location(name),
        reason,
    }
}
