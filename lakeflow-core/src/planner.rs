//! Plan: turn a resolved query into one that can execute, by swapping every placeholder scan
//! for what it stands for — the current snapshot of a stored table, or the inlined plan of a
//! temporary view.
//!
//! This module only rewrites plans; it does no I/O. The caller fetches the snapshots
//! ([`stored_inputs`] says which).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::common::tree_node::Transformed;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::{LogicalPlan, LogicalPlanBuilder, SubqueryAlias, cast, col};
use datafusion::prelude::Expr;

use crate::dataset::DatasetKind;
use crate::error::{Error, Result};
use crate::graph::DatasetGraph;
use crate::placeholder::Placeholder;

/// The stored datasets `name`'s query reads, looking through temporary views.
pub fn stored_inputs(graph: &DatasetGraph, name: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut todo = vec![name.to_string()];
    let mut seen = BTreeSet::new();
    while let Some(next) = todo.pop() {
        let Some(dataset) = graph.get(&next) else {
            continue;
        };
        for input in dataset.inputs.keys() {
            if !seen.insert(input.clone()) {
                continue;
            }
            match graph.get(input).map(|d| d.kind) {
                Some(DatasetKind::TemporaryView) => todo.push(input.clone()),
                Some(_) => {
                    found.insert(input.clone());
                }
                None => {}
            }
        }
    }
    found
}

/// `name`'s plan with every placeholder replaced; `tables` holds a snapshot of every dataset
/// [`stored_inputs`] names.
pub fn executable_plan(
    graph: &DatasetGraph,
    name: &str,
    tables: &HashMap<String, Arc<dyn TableProvider>>,
) -> Result<LogicalPlan> {
    let dataset = graph
        .get(name)
        .ok_or_else(|| Error::Internal(format!("planning unknown dataset `{name}`")))?;
    swap_placeholders(dataset.plan.clone(), graph, tables)
}

fn swap_placeholders(
    plan: LogicalPlan,
    graph: &DatasetGraph,
    tables: &HashMap<String, Arc<dyn TableProvider>>,
) -> Result<LogicalPlan> {
    let mut failure = None;
    let swapped = plan.transform_up_with_subqueries(|node| {
        let LogicalPlan::TableScan(scan) = &node else {
            return Ok(Transformed::no(node));
        };
        let Some(provider) = Placeholder::of(&scan.source) else {
            return Ok(Transformed::no(node));
        };
        let placeholder = provider
            .downcast_ref::<Placeholder>()
            .expect("Placeholder::of returns placeholders");
        match replacement(placeholder, &scan.table_name, graph, tables) {
            Ok(plan) => Ok(Transformed::yes(plan)),
            Err(e) => {
                failure = Some(e);
                Ok(Transformed::no(node))
            }
        }
    })?;
    match failure {
        Some(e) => Err(e),
        None => Ok(swapped.data),
    }
}

fn replacement(
    placeholder: &Placeholder,
    table_name: &datafusion::common::TableReference,
    graph: &DatasetGraph,
    tables: &HashMap<String, Arc<dyn TableProvider>>,
) -> Result<LogicalPlan> {
    let upstream = graph.get(&placeholder.name).ok_or_else(|| {
        Error::Internal(format!("placeholder for unresolved `{}`", placeholder.name))
    })?;
    if upstream.kind == DatasetKind::TemporaryView {
        let inner = swap_placeholders(upstream.plan.clone(), graph, tables)?;
        let alias = SubqueryAlias::try_new(Arc::new(inner), table_name.clone())?;
        return Ok(LogicalPlan::SubqueryAlias(alias));
    }
    let provider = tables.get(&placeholder.name).ok_or_else(|| {
        Error::Internal(format!("no snapshot of `{}` was fetched", placeholder.name))
    })?;
    let actual = provider.schema();
    let expected = &placeholder.schema;
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
    // The stored table reports other types than planned (a reader's choice of string or
    // timestamp representation): cast back so the reading plan sees what it was built on.
    let mut exprs: Vec<Expr> = Vec::with_capacity(expected.fields().len());
    for field in expected.fields() {
        if actual.field_with_name(field.name()).is_err() {
            return Err(Error::Storage {
                location: placeholder.name.clone(),
                message: format!(
                    "the stored table has no column `{}`; run a full refresh of `{}` to rebuild it",
                    field.name(),
                    placeholder.name
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
