//! A pipeline definition: the datasets and external tables, and the two things to do with it
//! — plan it (resolve and build the graph, reading no data) and run it.
//!
//! Definitions come from the registry (`inventory`) or from the builder; both land here as
//! [`DatasetDef`]s. Duplicate names are found here, before any query function is called.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::dataset::{DatasetDef, DatasetKind, DatasetRecord};
use serde_json::json;

use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::event_log::{EventLog, Level};
use crate::graph::DatasetGraph;
use crate::maintenance::Candidate;
use crate::report::{FlowStatus, RunReport};
use crate::resolve::Resolver;
use crate::scheduler::{RunOptions, run_graph};
use crate::source::ExternalTable;
use crate::storage::Storage;

/// The datasets and external tables of one pipeline.
#[derive(Debug, Clone, Default)]
pub struct PipelineDef {
    /// Every dataset definition, in the order given (duplicates are reported when planning).
    pub datasets: Vec<DatasetDef>,
    /// External tables that `sql(...)` and `read(...)` resolve by name.
    pub externals: BTreeMap<String, ExternalTable>,
    /// Mistakes found while the pipeline was being defined (an unknown sink format), as
    /// (dataset, message), reported with the others when it is planned.
    pub invalid: Vec<(String, String)>,
}

impl PipelineDef {
    /// Every dataset registered with the attribute macros in this program, sorted by name.
    pub fn from_registry() -> Self {
        let mut datasets: Vec<DatasetDef> = inventory::iter::<DatasetRecord>
            .into_iter()
            .map(DatasetDef::from_record)
            .collect();
        datasets.sort_by(|a, b| a.name.cmp(&b.name).then(a.location.cmp(&b.location)));
        PipelineDef {
            datasets,
            externals: BTreeMap::new(),
            invalid: Vec::new(),
        }
    }

    /// Resolves every query and builds the dependency graph, reading no data. All problems
    /// found are returned together.
    pub async fn plan(
        &self,
        engine: &dyn Engine,
        storage: Arc<dyn Storage>,
    ) -> Result<DatasetGraph> {
        self.plan_for(engine, storage, None).await
    }

    /// [`PipelineDef::plan`] for a run with `options`: the file streams of flows the run
    /// resets (a full refresh) infer their schema again instead of taking the held one.
    async fn plan_for(
        &self,
        engine: &dyn Engine,
        storage: Arc<dyn Storage>,
        options: Option<&RunOptions>,
    ) -> Result<DatasetGraph> {
        let mut errors: Vec<Error> = self
            .invalid
            .iter()
            .map(|(dataset, message)| Error::InvalidDefinition {
                dataset: dataset.clone(),
                message: message.clone(),
            })
            .collect();
        let mut defs: BTreeMap<String, DatasetDef> = BTreeMap::new();
        let mut lower: BTreeMap<String, String> = BTreeMap::new();
        for def in &self.datasets {
            if let Err(e) = def.validate() {
                errors.push(e);
                continue;
            }
            let key = def.name.to_ascii_lowercase();
            if let Some(first) = lower.get(&key) {
                errors.push(Error::DuplicateDataset {
                    name: def.name.clone(),
                    first: defs[first].location,
                    second: def.location,
                });
                continue;
            }
            if self
                .externals
                .keys()
                .any(|e| e.eq_ignore_ascii_case(&def.name))
            {
                errors.push(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: "an external table has the same name; rename one of them".into(),
                });
                continue;
            }
            lower.insert(key, def.name.clone());
            defs.insert(def.name.clone(), def.clone());
        }
        // A schema is a directory of the storage, as a stored dataset of the home schema is:
        // the two must not share one (a vacuum of the table would delete the schema's tables).
        for def in defs.values().filter(|d| d.kind.is_stored()) {
            if def.name.eq_ignore_ascii_case("_lakeflow") {
                errors.push(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: "`_lakeflow` is where lakeflow keeps its own state in the storage; rename the dataset".into(),
                });
                continue;
            }
            let Some((schema, _)) = def.name.split_once('.') else {
                continue;
            };
            let clash = defs.values().find(|d| {
                d.kind.is_stored() && !d.name.contains('.') && d.name.eq_ignore_ascii_case(schema)
            });
            if let Some(table) = clash {
                errors.push(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message: format!(
                        "its schema `{schema}` has the name of the dataset `{}` (at {}), and both would be stored in the directory `{schema}`; rename the schema or the dataset",
                        table.name, table.location
                    ),
                });
            } else if schema.eq_ignore_ascii_case("_lakeflow") {
                errors.push(Error::InvalidDefinition {
                    dataset: def.name.clone(),
                    message:
                        "the schema `_lakeflow` holds lakeflow's own state; use another schema name"
                            .into(),
                });
            }
        }
        if errors.is_empty()
            && defs
                .values()
                .all(|d| d.kind == DatasetKind::TemporaryView && !d.persisted)
        {
            errors.push(Error::EmptyPipeline);
        }
        let reinfer = defs
            .values()
            .filter(|d| options.is_some_and(|o| o.resets(d.target.as_deref().unwrap_or(&d.name))))
            .map(|d| d.name.clone())
            .collect();
        let resolver = Resolver::new(
            engine.session(),
            defs,
            self.externals.clone(),
            storage,
            reinfer,
        );
        let resolution = resolver.resolve_all().await;
        errors.extend(resolution.errors);
        if !errors.is_empty() {
            return Err(Error::from_many(errors));
        }
        DatasetGraph::new(resolution.resolved)
    }

    /// The tables of this pipeline that maintenance works on: each stored dataset and
    /// quarantine table, in definition order, then the event log.
    pub fn maintained_tables(&self) -> Vec<String> {
        self.datasets
            .iter()
            .filter(|d| d.kind.is_stored())
            .flat_map(|d| std::iter::once(d.name.clone()).chain(d.quarantine.clone()))
            .chain([crate::event_log::EVENT_LOG_TABLE.to_string()])
            .collect()
    }

    /// Maintains tables now, in full (compaction of every small file, then `VACUUM` with each
    /// table's retention), whatever the schedule says: `tables`, or with `None` every table of
    /// [`PipelineDef::maintained_tables`]. The events go to the event log as a run of their own
    /// (`create_update` with cause `MAINTENANCE`, then `maintenance_progress` per table). The
    /// caller holds the storage's lease.
    pub async fn maintain(
        &self,
        storage: Arc<dyn Storage>,
        options: &RunOptions,
        tables: Option<&[String]>,
    ) -> Result<Vec<crate::maintenance::TableMaintenance>> {
        let known = self.maintained_tables();
        let tables = match tables {
            None => known,
            Some(asked) => {
                for name in asked {
                    if !known.iter().any(|k| k.eq_ignore_ascii_case(name)) {
                        return Err(Error::InvalidDefinition {
                            dataset: name.clone(),
                            message: format!(
                                "is not a table of this pipeline; the tables maintenance works on are {}",
                                known.join(", ")
                            ),
                        });
                    }
                }
                asked
                    .iter()
                    .filter_map(|name| known.iter().find(|k| k.eq_ignore_ascii_case(name)))
                    .cloned()
                    .collect()
            }
        };
        let details = json!({ "cause": "MAINTENANCE", "tables": tables });
        let log = open_log(storage.as_ref(), options, "Maintenance run", details).await;
        let result =
            crate::maintenance::maintain(storage.as_ref(), &log, &options.maintenance, &tables)
                .await;
        update_progress(
            &log,
            if result.is_ok() {
                "COMPLETED"
            } else {
                "FAILED"
            },
            result.as_ref().err().map(ToString::to_string),
        );
        log.flush(storage.as_ref()).await;
        result
    }

    /// Plans the pipeline, then runs every flow. A run in which a flow failed returns
    /// [`Error::RunFailed`] carrying the full report.
    pub async fn run(
        &self,
        engine: &dyn Engine,
        storage: Arc<dyn Storage>,
        options: &RunOptions,
    ) -> Result<RunReport> {
        self.run_planned(engine, storage, options).await.1
    }

    /// [`PipelineDef::run`], also handing back the graph the run planned (`None` when
    /// planning failed), for views of the run such as the graph page.
    pub async fn run_planned(
        &self,
        engine: &dyn Engine,
        storage: Arc<dyn Storage>,
        options: &RunOptions,
    ) -> (Option<DatasetGraph>, Result<RunReport>) {
        crate::failpoint::hit("run_start");
        let names: Vec<&str> = self.datasets.iter().map(|d| d.name.as_str()).collect();
        // Databricks' keys (a library call is an `API_CALL`), then lakeflow's.
        let details = json!({
            "cause": "API_CALL",
            "full_refresh": options.full_refresh_all,
            "full_refresh_selection": options.full_refresh,
            "refresh_selection": options.refresh,
            "storage": storage.location(),
            "max_concurrent_flows": options.max_concurrent_flows,
            "datasets": names,
        });
        let log = open_log(storage.as_ref(), options, "Run", details).await;
        let graph = match self.plan_for(engine, storage.clone(), Some(options)).await {
            Ok(graph) => graph,
            Err(e) => {
                update_progress(&log, "FAILED", Some(e.to_string()));
                log.flush(storage.as_ref()).await;
                return (None, Err(e));
            }
        };
        let selection = options
            .refresh
            .iter()
            .flatten()
            .chain(&options.full_refresh);
        for name in selection {
            if let Some(target) = graph.get(name).and_then(|d| d.target.as_ref()) {
                let e = Error::InvalidDefinition {
                    dataset: name.clone(),
                    message: format!(
                        "is an append flow; refresh and full refresh select tables, so name its target `{target}`"
                    ),
                };
                update_progress(&log, "FAILED", Some(e.to_string()));
                log.flush(storage.as_ref()).await;
                return (Some(graph), Err(e));
            }
            if graph.get(name).is_none() {
                let e = Error::InvalidDefinition {
                    dataset: name.clone(),
                    message: "is not a dataset of this pipeline; refresh and full refresh take the names of its datasets".into(),
                };
                update_progress(&log, "FAILED", Some(e.to_string()));
                log.flush(storage.as_ref()).await;
                return (Some(graph), Err(e));
            }
        }
        definitions(&log, &graph);
        update_progress(&log, "RUNNING", None);
        // The log is written once, at the end of the run: one commit per run, whatever the
        // pipeline's age. Observers (the progress display) see each event as it happens.
        let mut report = run_graph(&graph, engine, storage.as_ref(), options, &log).await;
        let mut candidates = maintenance_candidates(&graph, &report);
        // The state of each AUTO CDC flow is a table merged every batch: many small files.
        for flow in graph.in_order().filter(|d| d.def.cdc.is_some()) {
            if let Ok(checkpoint) =
                crate::checkpoint::Checkpoint::open(storage.as_ref(), &flow.def.name).await
            {
                let state = crate::cdc::state_table(&flow.def.name, checkpoint.version());
                // A cluster's merges stage their rows in tables replaced every batch.
                for staged in [flow.table(), state.as_str()] {
                    candidates.push(Candidate::internal(crate::storage::staged_table(staged)));
                }
                candidates.push(Candidate::internal(state));
            }
        }
        report.maintenance =
            crate::maintenance::after_run(storage.as_ref(), &log, &options.maintenance, candidates)
                .await;
        let state = if report.succeeded() {
            "COMPLETED"
        } else {
            "FAILED"
        };
        update_progress(&log, state, None);
        log.flush(storage.as_ref()).await;
        let result = if report.succeeded() {
            Ok(report)
        } else {
            Err(Error::RunFailed {
                report: Box::new(report),
            })
        };
        (Some(graph), result)
    }
}

/// The tables maintenance may touch after a run: every stored dataset (with whether the run
/// wrote it) and the event log.
fn maintenance_candidates(graph: &DatasetGraph, report: &RunReport) -> Vec<Candidate> {
    let mut candidates: Vec<Candidate> = report
        .datasets
        .iter()
        .filter(|row| row.kind.is_stored())
        .filter_map(|row| Some((row, graph.get(&row.name)?)))
        .flat_map(|(row, dataset)| {
            let written = row.status == FlowStatus::Completed;
            let properties = &dataset.def.table_properties;
            // A quarantine table is written with its dataset.
            std::iter::once(row.name.as_str())
                .chain(dataset.def.quarantine.as_deref())
                .map(move |name| Candidate::dataset(name, written, properties))
        })
        .collect();
    candidates.push(Candidate::event_log());
    candidates
}

/// The event log of a run (`what`: "Run", "Maintenance run"), which begins with its
/// `create_update` event carrying `details`.
async fn open_log(
    storage: &dyn Storage,
    options: &RunOptions,
    what: &str,
    details: serde_json::Value,
) -> EventLog {
    let pipeline_id = crate::event_log::pipeline_id(storage).await;
    let log = EventLog::new(
        &options.pipeline_name,
        pipeline_id,
        options.observers.clone(),
    );
    log.emit(
        Level::Info,
        "create_update",
        None,
        None,
        format!(
            "{what} {} of pipeline '{}' created.",
            log.run_id(),
            options.pipeline_name
        ),
        json!({ "create_update": details }),
        None,
        Vec::new(),
    );
    log
}

fn update_progress(log: &EventLog, state: &str, error: Option<String>) {
    let level = if state == "FAILED" {
        Level::Error
    } else {
        Level::Info
    };
    log.emit(
        level,
        "update_progress",
        None,
        None,
        format!("Run is {state}."),
        json!({ "update_progress": { "state": state } }),
        error,
        Vec::new(),
    );
}

/// `dataset_definition` and `flow_definition` events: what each dataset is and reads, with
/// Databricks' keys (`dataset_type`, `output_dataset`, `input_datasets`, `flow_type`,
/// `explain_text`) beside lakeflow's.
fn definitions(log: &EventLog, graph: &DatasetGraph) {
    for dataset in graph.in_order() {
        let def = &dataset.def;
        let table = dataset.table();
        if graph.get(table).is_some_and(|t| t.kind.is_stored()) {
            log.set_table(&def.name, table);
        }
        // An append flow is a flow only; every other node is a dataset, with a flow of its
        // own unless it is a temporary view or a table only flows write.
        if dataset.target.is_none() {
            let schema: Vec<_> = dataset
                .read_schema
                .fields()
                .iter()
                .map(|f| {
                    json!({
                        "name": f.name(),
                        "path": f.name(),
                        "data_type": crate::ingest::spark_type_name(f.data_type()),
                        "type": f.data_type().to_string(),
                    })
                })
                .collect();
            let expectations: Vec<_> = def
                .expectations
                .iter()
                .map(|e| json!({ "name": e.name, "rule": e.rule.to_string(), "action": e.action.to_string() }))
                .collect();
            log.emit(
                Level::Info,
                "dataset_definition",
                Some(&def.name),
                None,
                format!("Dataset '{}' is a {}.", def.name, dataset.kind),
                json!({ "dataset_definition": {
                    "dataset_type": match dataset.kind {
                        DatasetKind::TemporaryView => "VIEW",
                        DatasetKind::Sink => "SINK",
                        _ => "TABLE",
                    },
                    "num_flows": dataset.flows.len() + usize::from(dataset.has_flow()),
                    "kind": dataset.kind.to_string(),
                    "schema": schema,
                    "comment": def.comment,
                    "partition_cols": def.partition_cols,
                    "table_properties": def.table_properties,
                    "expectations": expectations,
                    "quarantine": def.quarantine,
                    "location": def.location.to_string(),
                }}),
                None,
                Vec::new(),
            );
        }
        if !dataset.has_flow() {
            continue;
        }
        let inputs: Vec<_> = dataset
            .inputs
            .iter()
            .map(|(name, mode)| json!({ "name": name, "streaming": mode.is_stream() }))
            .collect();
        let message = match &dataset.target {
            Some(target) => format!("Flow '{}' appends to '{target}'.", def.name),
            None => format!("Flow '{}' defined.", def.name),
        };
        log.emit(
            Level::Info,
            "flow_definition",
            Some(&def.name),
            None,
            message,
            json!({ "flow_definition": {
                "output_dataset": dataset.table(),
                "input_datasets": dataset.inputs.keys().collect::<Vec<_>>(),
                "flow_type": flow_type(dataset),
                "explain_text": dataset.plan.display_indent().to_string(),
                "target": dataset.table(),
                "once": def.once,
                "inputs": inputs,
                "sources": dataset.sources,
                "location": def.location.to_string(),
            }}),
            None,
            Vec::new(),
        );
    }
}

/// Databricks' `flow_type`: `COMPLETE` recomputes its table, `APPEND` appends batches,
/// `CHANGE` merges changes by key (AUTO CDC).
fn flow_type(dataset: &crate::resolve::Resolved) -> &'static str {
    if dataset.def.cdc.is_some() {
        "CHANGE"
    } else if dataset.kind == DatasetKind::AppendFlow
        || (dataset.kind == DatasetKind::StreamingTable && dataset.reads_stream())
    {
        "APPEND"
    } else {
        "COMPLETE"
    }
}
