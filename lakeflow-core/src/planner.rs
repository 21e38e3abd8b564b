//! Plan: turn a resolved query into one that can execute, by swapping every placeholder scan
//! for what it stands for — the current snapshot of a stored table, the rows a streaming
//! input gained in this batch, or the inlined plan of a temporary view.
//!
//! This module only rewrites plans; it does no I/O. The caller fetches the sources
//! ([`reads`] says which).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::Transformed;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, SubqueryAlias, cast, col};
use datafusion::prelude::Expr;

use crate::dataset::DatasetKind;
use crate::error::{Error, Result};
use crate::graph::DatasetGraph;
use crate::placeholder::{Binding, Placeholder};
use crate::resolve::ReadMode;
use crate::source::SourceSpec;

/// A streaming input of a flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamInput {
    /// A pipeline dataset's appended rows.
    Dataset {
        /// The dataset.
        name: String,
        /// Leave out commits that changed rows instead of failing on them.
        skip_change_commits: bool,
    },
    /// New files under a path.
    Files(SourceSpec),
    /// The rows appended to an external Delta table.
    Delta {
        /// Its path or URL.
        path: String,
        /// Leave out commits that changed rows instead of failing on them.
        skip_change_commits: bool,
    },
}

/// What `name`'s query reads, looking through temporary views: the stored datasets it reads
/// whole, and its streaming inputs by checkpoint key.
pub fn reads(
    graph: &DatasetGraph,
    name: &str,
) -> (BTreeSet<String>, BTreeMap<String, StreamInput>) {
    let mut batch = BTreeSet::new();
    let mut streams = BTreeMap::new();
    let mut todo = vec![name.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(next) = todo.pop() {
        let Some(dataset) = graph.get(&next) else {
            continue;
        };
        for (key, spec) in &dataset.stream_files {
            let input = match spec {
                SourceSpec::Delta { path } => StreamInput::Delta {
                    path: path.clone(),
                    skip_change_commits: dataset.stream_skips.contains(key),
                },
                files => StreamInput::Files(files.clone()),
            };
            streams.insert(key.clone(), input);
        }
        for (input, mode) in &dataset.inputs {
            match graph.get(input).map(|d| d.kind) {
                Some(DatasetKind::TemporaryView) if seen.insert(input.clone()) => {
                    todo.push(input.clone());
                }
                Some(DatasetKind::TemporaryView) => {}
                Some(_) if mode.is_stream() => {
                    let key = Binding::Stream(input.clone())
                        .stream_key()
                        .expect("a stream has a key");
                    let input = StreamInput::Dataset {
                        name: input.clone(),
                        skip_change_commits: *mode == ReadMode::StreamSkippingChanges,
                    };
                    streams.insert(key, input);
                }
                Some(_) => {
                    batch.insert(input.clone());
                }
                None => {}
            }
        }
    }
    (batch, streams)
}

/// The stored datasets `name`'s query reads, whole or as a stream, looking through
/// temporary views: the flows that must finish before `name`'s.
pub fn stored_inputs(graph: &DatasetGraph, name: &str) -> BTreeSet<String> {
    let (mut all, streams) = reads(graph, name);
    all.extend(streams.into_values().filter_map(|s| match s {
        StreamInput::Dataset { name, .. } => Some(name),
        StreamInput::Files(_) | StreamInput::Delta { .. } => None,
    }));
    all
}

/// The sources one execution of a flow reads: snapshots of the tables it reads whole, and
/// the rows of this batch for each streaming input.
#[derive(Debug, Default, Clone)]
pub struct FlowInputs {
    /// Current snapshot per stored dataset read whole.
    pub tables: HashMap<String, Arc<dyn TableProvider>>,
    /// This batch's rows per streaming input, by checkpoint key.
    pub streams: HashMap<String, Arc<dyn TableProvider>>,
}

/// `name`'s plan with every placeholder replaced by what `inputs` holds for it. A source that
/// reports other types or column order than planned is cast back by name; a pipeline table
/// that lacks a planned column (its definition gained it, its table not yet) reads NULL in it.
pub fn executable_plan(
    graph: &DatasetGraph,
    name: &str,
    inputs: &FlowInputs,
) -> Result<LogicalPlan> {
    let dataset = graph
        .get(name)
        .ok_or_else(|| Error::Internal(format!("planning unknown dataset `{name}`")))?;
    swap_placeholders(dataset.plan.clone(), graph, inputs)
}

/// `plan` with each temporary view's placeholder replaced by the view's own plan (its
/// temporary views inlined too); every other placeholder stays. For deciding what a query
/// does (`incremental.rs`), not for running it.
pub fn inline_temporary_views(graph: &DatasetGraph, plan: LogicalPlan) -> Result<LogicalPlan> {
    map_placeholders(plan, &mut |placeholder, table_name| {
        let Binding::Dataset(name) = &placeholder.binding else {
            return Ok(None);
        };
        let Some(view) = graph
            .get(name)
            .filter(|d| d.kind == DatasetKind::TemporaryView)
        else {
            return Ok(None);
        };
        let inner = inline_temporary_views(graph, view.plan.clone())?;
        let alias = SubqueryAlias::try_new(Arc::new(inner), table_name.clone())?;
        Ok(Some(LogicalPlan::SubqueryAlias(alias)))
    })
}

fn swap_placeholders(
    plan: LogicalPlan,
    graph: &DatasetGraph,
    inputs: &FlowInputs,
) -> Result<LogicalPlan> {
    map_placeholders(plan, &mut |placeholder, table_name| {
        replacement(placeholder, table_name, graph, inputs).map(Some)
    })
}

/// `plan` with every placeholder scan for which `replace` gives a plan replaced by it
/// (subqueries included); the first error stops the rewrite.
fn map_placeholders(
    plan: LogicalPlan,
    replace: &mut dyn FnMut(
        &Placeholder,
        &datafusion::common::TableReference,
    ) -> Result<Option<LogicalPlan>>,
) -> Result<LogicalPlan> {
    let mut failure = None;
    let rewritten = plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        let Some(provider) = Placeholder::of(&scan.source) else {
            return Ok(Transformed::no(node));
        };
        let placeholder = provider
            .downcast_ref::<Placeholder>()
            .expect("Placeholder::of returns placeholders");
        match replace(placeholder, &scan.table_name) {
            Ok(Some(plan)) => Ok(Transformed::yes(plan)),
            Ok(None) => Ok(Transformed::no(node)),
            Err(e) => {
                failure = Some(e);
                Ok(Transformed::no(node))
            }
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(rewritten.data),
    }
}

fn replacement(
    placeholder: &Placeholder,
    table_name: &datafusion::common::TableReference,
    graph: &DatasetGraph,
    inputs: &FlowInputs,
) -> Result<LogicalPlan> {
    let (label, provider) = match &placeholder.binding {
        Binding::Dataset(name) => {
            let upstream = graph
                .get(name)
                .ok_or_else(|| Error::Internal(format!("placeholder for unresolved `{name}`")))?;
            if upstream.kind == DatasetKind::TemporaryView {
                let inner = swap_placeholders(upstream.plan.clone(), graph, inputs)?;
                let alias = SubqueryAlias::try_new(Arc::new(inner), table_name.clone())?;
                return Ok(LogicalPlan::SubqueryAlias(alias));
            }
            let provider = inputs
                .tables
                .get(name)
                .ok_or_else(|| Error::Internal(format!("no snapshot of `{name}` was fetched")))?;
            (name.clone(), provider)
        }
        binding => {
            let key = binding.stream_key().expect("streams have keys");
            let provider = inputs.streams.get(&key).ok_or_else(|| {
                Error::Internal(format!("no batch of stream `{key}` was prepared"))
            })?;
            (key, provider)
        }
    };
    let actual = provider.schema();
    let expected = &placeholder.schema;
    let pipeline_table = matches!(
        placeholder.binding,
        Binding::Dataset(_) | Binding::Stream(_)
    );
    let builder = LogicalPlanBuilder::scan(
        table_name.clone(),
        provider_as_source(provider.clone()),
        None,
    )?;
    let same = actual.fields().len() == expected.fields().len()
        && actual
            .fields()
            .iter()
            .zip(expected.fields())
            .all(|(a, e)| a.name() == e.name() && a.data_type() == e.data_type());
    if same {
        return Ok(builder.build()?);
    }
    // The source reports other types or another column order than planned (a reader's choice
    // of string or timestamp representation, partition columns last): cast back by name so
    // the reading plan sees what it was built on.
    let mut exprs: Vec<Expr> = Vec::with_capacity(expected.fields().len());
    for field in expected.fields() {
        if actual.field_with_name(field.name()).is_err() && pipeline_table {
            // The dataset's definition gained a column its table has not been written with
            // yet (schema evolution upstream): the rows there read NULL in it.
            exprs.push(
                cast(
                    datafusion::prelude::lit(datafusion::common::ScalarValue::Null),
                    field.data_type().clone(),
                )
                .alias(field.name()),
            );
            continue;
        }
        if actual.field_with_name(field.name()).is_err() {
            return Err(Error::Storage {
                location: label.clone(),
                message: format!(
                    "the source has no column `{}` any more; run a full refresh of the datasets that read `{label}`",
                    field.name(),
                ),
                source: None,
            });
        }
        let column = col(datafusion::common::Column::new(
            Some(table_name.clone()),
            field.name(),
        ));
        exprs.push(cast(column, field.data_type().clone()).alias(field.name()));
    }
    Ok(builder.project(exprs)?.alias(table_name.clone())?.build()?)
}
