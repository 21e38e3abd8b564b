//! A pipeline definition: the datasets and external tables, and the two things to do with it
//! — plan it (resolve and build the graph, reading no data) and run it.
//!
//! Definitions come from the registry (`inventory`) or from the builder; both land here as
//! [`DatasetDef`]s. Duplicate names are found here, before any query function is called.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::dataset::{DatasetDef, DatasetRecord};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::graph::DatasetGraph;
use crate::report::RunReport;
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
        }
    }

    /// Resolves every query and builds the dependency graph, reading no data. All problems
    /// found are returned together.
    pub async fn plan(
        &self,
        engine: &dyn Engine,
        storage: Arc<dyn Storage>,
    ) -> Result<DatasetGraph> {
        let mut errors = Vec::new();
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
        let resolver = Resolver::new(engine.session(), defs, self.externals.clone(), storage);
        let resolution = resolver.resolve_all().await;
        errors.extend(resolution.errors);
        if !errors.is_empty() {
            return Err(Error::from_many(errors));
        }
        DatasetGraph::new(resolution.resolved)
    }

    /// Plans the pipeline, then runs every flow. A run in which a flow failed returns
    /// [`Error::RunFailed`] carrying the full report.
    pub async fn run(
        &self,
        engine: &dyn Engine,
        storage: Arc<dyn Storage>,
        options: &RunOptions,
    ) -> Result<RunReport> {
        let graph = self.plan(engine, storage.clone()).await?;
        let report = run_graph(&graph, engine, storage.as_ref(), options).await;
        if report.succeeded() {
            Ok(report)
        } else {
            Err(Error::RunFailed {
                report: Box::new(report),
            })
        }
    }
}
