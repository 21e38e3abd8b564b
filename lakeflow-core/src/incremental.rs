//! Incremental refresh of materialized views: a view that groups and aggregates an input
//! which only received appends since its last refresh is refreshed by aggregating the new
//! rows and merging them into the stored result, not by recomputing over all rows.
//!
//! Mergeable aggregates: `count`, `sum`, `min`, `max` and `avg` (not DISTINCT, no FILTER or
//! ORDER BY), under a projection that only selects or renames the group columns and
//! aggregates. The merge groups `stored UNION ALL aggregate(new rows)` again: counts and sums
//! add, minima and maxima compare.
//!
//! `avg(x)` merges only when the same view also has `count(x)` of the same argument (not
//! `count(*)`: avg ignores NULLs, `count(*)` counts them), because the stored table holds
//! only the average and hidden columns would change what users see. The stored average times
//! that count is the stored sum, so the merged average is `sum(avg * count) / sum(count)`.
//! It is floating point: it can differ from a recompute in the last bits. An `avg` whose
//! result is not `Float64` (a decimal or duration average, which rounds to a scale) recomputes.
//!
//! The aggregated input must be *linear* in the appended rows: new input rows only add output
//! rows and change no earlier ones. Scans, filters, projections, aliases, `UNION ALL`,
//! unnest, and joins whose other side did not change are (a fact table that received appends
//! joined with a dimension at the version the view last saw: the new facts joined with the
//! same dimension are the new output rows); DISTINCT, nested aggregates, windows, limits,
//! subqueries in expressions, and joins of two sides that both grew are not. A temporary view
//! is only a placeholder in a view's plan, so `flow.rs` inlines temporary views
//! (`planner::inline_temporary_views`) before calling [`analyze`].
//!
//! `count(DISTINCT x)` does not merge: the stored result holds how many distinct values a
//! group had, not which, so whether a new row's value is new cannot be told without the old
//! rows; such a view is recomputed.
//!
//! Anything else — expressions over aggregates, HAVING, several inputs that changed,
//! expectations — is refreshed by a full recompute. This module only analyses and builds
//! plans; `flow.rs` decides when to use them.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::JoinType;
use datafusion::common::tree_node::TreeNode;
use datafusion::dataframe::DataFrame;
use datafusion::functions::core::expr_fn::nullif;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::{Expr, LogicalPlan, cast};
use datafusion::prelude::{col, lit};

use crate::error::Result;
use crate::placeholder::Placeholder;

/// How one aggregate of the stored result merges with the same aggregate of new rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    /// `count` and `sum`: add.
    Sum,
    /// `min`: the smaller.
    Min,
    /// `max`: the larger.
    Max,
    /// `avg`: the averages weighted by the column at index `count` of
    /// [`Mergeable::columns`], which holds `count` of the same argument.
    Avg {
        /// Index of the matching count column.
        count: usize,
    },
}

/// The shape of a mergeable aggregation: its output columns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mergeable {
    /// Output column name and, for aggregates, how it merges (`None` for group columns).
    pub columns: Vec<(String, Option<Merge>)>,
}

/// Whether `plan` (a view's unoptimized plan) is a mergeable aggregation, and how, when the
/// pipeline datasets for which `grew` says so received appends and the others did not change.
pub(crate) fn analyze(plan: &LogicalPlan, grew: &dyn Fn(&str) -> bool) -> Option<Mergeable> {
    let (projection, aggregate) = match plan {
        LogicalPlan::Projection(p) => match p.input.as_ref() {
            LogicalPlan::Aggregate(a) => (Some(p), a),
            _ => return None,
        },
        LogicalPlan::Aggregate(a) => (None, a),
        _ => return None,
    };
    let groups = aggregate.group_expr.len();
    if aggregate
        .group_expr
        .iter()
        .any(|g| matches!(g, Expr::GroupingSet(_)) || has_subquery(g))
    {
        return None;
    }
    if !linear(&aggregate.input, grew) {
        return None;
    }
    // Per aggregate: its function's name and arguments.
    let mut functions = Vec::with_capacity(aggregate.aggr_expr.len());
    for expr in &aggregate.aggr_expr {
        let Expr::AggregateFunction(f) = strip_alias(expr) else {
            return None;
        };
        let p = &f.params;
        if p.distinct || p.filter.is_some() || !p.order_by.is_empty() || has_subquery(expr) {
            return None;
        }
        let name = f.func.name();
        if !matches!(name, "count" | "sum" | "min" | "max" | "avg") {
            return None;
        }
        functions.push((name, &p.args));
    }
    let agg_schema = aggregate.schema.as_ref();
    // Each output column: its name and the index of the aggregate it shows, if one.
    let aggregate_at = |index: usize| (index >= groups).then(|| index - groups);
    let shown: Vec<(String, Option<usize>)> = match projection {
        None => agg_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().clone(), aggregate_at(i)))
            .collect(),
        Some(p) => {
            let mut shown = Vec::with_capacity(p.expr.len());
            for (expr, field) in p.expr.iter().zip(p.schema.fields()) {
                let Expr::Column(column) = strip_alias(expr) else {
                    return None;
                };
                let index = agg_schema.index_of_column(column).ok()?;
                shown.push((field.name().clone(), aggregate_at(index)));
            }
            shown
        }
    };
    // Every aggregate must be visible to be merged.
    if (0..functions.len()).any(|a| !shown.iter().any(|(_, s)| *s == Some(a))) {
        return None;
    }
    let mut columns = Vec::with_capacity(shown.len());
    for (name, aggregate_index) in shown.iter() {
        let merge = match aggregate_index {
            None => None,
            Some(a) => Some(match functions[*a] {
                ("count" | "sum", _) => Merge::Sum,
                ("min", _) => Merge::Min,
                ("max", _) => Merge::Max,
                (_, args) => {
                    // `avg`: weighted by the shown `count` of the same argument.
                    if agg_schema.field(groups + a).data_type() != &DataType::Float64 {
                        return None;
                    }
                    let count = shown
                        .iter()
                        .position(|(_, s)| s.is_some_and(|c| functions[c] == ("count", args)))?;
                    Merge::Avg { count }
                }
            }),
        };
        columns.push((name.clone(), merge));
    }
    Some(Mergeable { columns })
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
}

fn has_subquery(expr: &Expr) -> bool {
    expr.exists(|e| {
        Ok(matches!(
            e,
            Expr::Exists(_) | Expr::InSubquery(_) | Expr::ScalarSubquery(_)
        ))
    })
    .unwrap_or(true)
}

/// Whether the rows of `plan` over an input plus appended rows are its rows over the input
/// plus its rows over the appended rows alone — what merging needs. The pipeline datasets
/// `grew` names are what grew; everything else is read as it was.
fn linear(plan: &LogicalPlan, grew: &dyn Fn(&str) -> bool) -> bool {
    let exprs_ok = |node: &LogicalPlan| !node.expressions().iter().any(has_subquery);
    let linear = |plan: &LogicalPlan| linear(plan, grew);
    let grows = |plan: &LogicalPlan| grows(plan, grew);
    match plan {
        LogicalPlan::TableScan(scan) => scan.fetch.is_none(),
        LogicalPlan::Values(_) | LogicalPlan::EmptyRelation(_) => true,
        LogicalPlan::Projection(_)
        | LogicalPlan::Filter(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Union(_)
        | LogicalPlan::Unnest(_)
        | LogicalPlan::Repartition(_) => exprs_ok(plan) && plan.inputs().into_iter().all(linear),
        LogicalPlan::Sort(sort) => sort.fetch.is_none() && linear(&sort.input),
        LogicalPlan::Join(join) => {
            let (left, right) = (grows(&join.left), grows(&join.right));
            // The side whose rows are kept (or tested) may grow when the other is fixed.
            let sides = match join.join_type {
                JoinType::Inner => !(left && right),
                JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti => !right,
                JoinType::Right | JoinType::RightSemi | JoinType::RightAnti => !left,
                _ => !left && !right,
            };
            sides && exprs_ok(plan) && linear(&join.left) && linear(&join.right)
        }
        _ => false,
    }
}

/// Whether `plan` reads a pipeline dataset that received appends (any placeholder that is not
/// of a whole dataset counts as one).
fn grows(plan: &LogicalPlan, grew: &dyn Fn(&str) -> bool) -> bool {
    plan.exists(|node| {
        let LogicalPlan::TableScan(scan) = node else {
            return Ok(false);
        };
        let Some(provider) = Placeholder::of(&scan.source) else {
            return Ok(false);
        };
        Ok(
            match provider.downcast_ref::<Placeholder>().map(|p| &p.binding) {
                Some(crate::placeholder::Binding::Dataset(name)) => grew(name),
                _ => true,
            },
        )
    })
    .unwrap_or(true)
}

impl Mergeable {
    /// The merged result: the stored rows and the aggregate of the new rows, grouped again
    /// with each aggregate's merge. Columns are named and typed like `stored`.
    pub fn merge(&self, stored: DataFrame, delta: DataFrame) -> Result<DataFrame> {
        let schema = stored.schema().as_arrow().clone();
        let names: Vec<&str> = self.columns.iter().map(|(n, _)| n.as_str()).collect();
        let typed = |df: DataFrame| -> Result<DataFrame> {
            let exprs: Vec<Expr> = names
                .iter()
                .map(|n| {
                    let data_type = schema.field_with_name(n)?.data_type().clone();
                    Ok(cast(col(format!("\"{n}\"")), data_type).alias(*n))
                })
                .collect::<std::result::Result<_, datafusion::arrow::error::ArrowError>>()
                .map_err(|e| crate::Error::DataFusion(e.into()))?;
            Ok(df.select(exprs)?)
        };
        let both = typed(stored)?.union(typed(delta)?)?;
        let float = |name: &str| cast(col(format!("\"{name}\"")), DataType::Float64);
        // Each average's weighted sum, named after its position: `sum(avg * count)`. A side
        // with no values has count 0 and a NULL average, which `sum` leaves out.
        let weighted = |index: usize| format!("__lakeflow_weighted_{index}");
        let mut groups = Vec::new();
        let mut aggregates = Vec::new();
        for (index, (name, merge)) in self.columns.iter().enumerate() {
            let column = col(format!("\"{name}\""));
            match merge {
                None => groups.push(column),
                Some(Merge::Sum) => aggregates.push(sum(column).alias(name)),
                Some(Merge::Min) => aggregates.push(min(column).alias(name)),
                Some(Merge::Max) => aggregates.push(max(column).alias(name)),
                Some(Merge::Avg { count }) => {
                    aggregates.push(sum(float(name) * float(names[*count])).alias(weighted(index)))
                }
            }
        }
        let merged = both.aggregate(groups, aggregates)?;
        // The merged average: the weighted sum over the merged count (NULL when it is 0).
        let exprs: Vec<Expr> = self
            .columns
            .iter()
            .enumerate()
            .map(|(index, (name, merge))| match merge {
                Some(Merge::Avg { count }) => {
                    (float(&weighted(index)) / nullif(float(names[*count]), lit(0.0))).alias(name)
                }
                _ => col(format!("\"{name}\"")),
            })
            .collect();
        let merged = merged.select(exprs)?;
        typed(merged)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::placeholder::Binding;
    use datafusion::prelude::SessionContext;

    /// Plans `sql` where `t` and `s` stand for pipeline datasets (placeholders) and `u` is a
    /// table outside the pipeline.
    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE u (k VARCHAR, g VARCHAR) AS VALUES ('a', 'x')")
            .await
            .unwrap();
        ctx.sql(
            "CREATE TABLE shape (k VARCHAR, v BIGINT, d DECIMAL(10, 2)) AS VALUES ('a', 1, 1.5)",
        )
        .await
        .unwrap();
        let schema = ctx
            .table("shape")
            .await
            .unwrap()
            .schema()
            .as_arrow()
            .clone();
        for name in ["t", "s"] {
            let placeholder = Placeholder {
                binding: Binding::Dataset(name.to_string()),
                schema: Arc::new(schema.clone()),
            };
            ctx.register_table(name, Arc::new(placeholder)).unwrap();
        }
        ctx.sql(sql).await.unwrap().into_unoptimized_plan()
    }

    #[tokio::test]
    async fn recognises_mergeable_aggregations() {
        let p = plan(
            "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi FROM t GROUP BY k",
        )
        .await;
        let m = analyze(&p, &|_| true).unwrap();
        assert_eq!(
            m.columns,
            [
                ("k".to_string(), None),
                ("n".to_string(), Some(Merge::Sum)),
                ("s".to_string(), Some(Merge::Sum)),
                ("lo".to_string(), Some(Merge::Min)),
                ("hi".to_string(), Some(Merge::Max)),
            ]
        );
    }

    #[tokio::test]
    async fn an_average_merges_through_the_count_of_its_argument() {
        let p = plan("SELECT avg(v) AS mean, k, count(v) AS n FROM t GROUP BY k").await;
        assert_eq!(
            analyze(&p, &|_| true).unwrap().columns,
            [
                ("mean".to_string(), Some(Merge::Avg { count: 2 })),
                ("k".to_string(), None),
                ("n".to_string(), Some(Merge::Sum)),
            ]
        );
    }

    #[tokio::test]
    async fn linear_inputs_merge() {
        for sql in [
            "SELECT k, sum(v) FROM t WHERE v > 0 GROUP BY k",
            "SELECT u.g, count(*), sum(t.v) FROM t JOIN u ON t.k = u.k GROUP BY u.g",
            "SELECT u.g, count(*) FROM t LEFT JOIN u ON t.k = u.k GROUP BY u.g",
            "SELECT k, count(*) FROM (SELECT k FROM t UNION ALL SELECT k FROM t) GROUP BY k",
        ] {
            assert!(analyze(&plan(sql).await, &|_| true).is_some(), "{sql}");
        }
    }

    /// A join of two pipeline datasets merges when only one of them grew.
    #[tokio::test]
    async fn a_join_with_an_unchanged_side_merges() {
        let sql =
            "SELECT s.k, count(*) AS n, sum(t.v) AS total FROM t JOIN s ON t.k = s.k GROUP BY s.k";
        let p = plan(sql).await;
        assert!(analyze(&p, &|name| name == "t").is_some());
        assert!(analyze(&p, &|name| name == "s").is_some());
        assert!(analyze(&p, &|_| true).is_none(), "both sides grew");
        let left =
            plan("SELECT s.k, count(*) AS n FROM t LEFT JOIN s ON t.k = s.k GROUP BY s.k").await;
        assert!(analyze(&left, &|name| name == "t").is_some());
        assert!(
            analyze(&left, &|name| name == "s").is_none(),
            "the outer side changed"
        );
    }

    #[tokio::test]
    async fn falls_back_for_the_rest() {
        for sql in [
            // avg without the count of its own argument, or not a float.
            "SELECT k, avg(v) FROM t GROUP BY k",
            "SELECT k, avg(v), count(*) FROM t GROUP BY k",
            "SELECT k, avg(v), count(DISTINCT v) FROM t GROUP BY k",
            "SELECT k, avg(v), count(d) FROM t GROUP BY k",
            "SELECT k, avg(d), count(d) FROM t GROUP BY k",
            // Not an aggregate the merge can redo.
            "SELECT k, count(DISTINCT v) FROM t GROUP BY k",
            "SELECT k, sum(v) * 2 AS doubled FROM t GROUP BY k",
            "SELECT k, sum(v) FROM t GROUP BY k HAVING sum(v) > 0",
            "SELECT k FROM t",
            // Inputs where new rows change or remove earlier output rows.
            "SELECT k, count(*) FROM (SELECT DISTINCT k, v FROM t) GROUP BY k",
            "SELECT k, sum(n) FROM (SELECT k, count(*) AS n FROM t GROUP BY k) GROUP BY k",
            "SELECT k, count(*) FROM (SELECT k FROM t LIMIT 10) GROUP BY k",
            "SELECT t.k, count(*) FROM t JOIN s ON t.k = s.k GROUP BY t.k",
            "SELECT u.g, count(*) FROM u LEFT JOIN t ON t.k = u.k GROUP BY u.g",
            "SELECT k, count(*) FROM t WHERE v > (SELECT avg(v) FROM t) GROUP BY k",
            "SELECT k, count(*) FROM (SELECT k, row_number() OVER (ORDER BY v) AS r FROM t) WHERE r > 1 GROUP BY k",
        ] {
            assert!(analyze(&plan(sql).await, &|_| true).is_none(), "{sql}");
        }
    }
}
