//! Incremental refresh of materialized views: a view that groups and aggregates an input
//! which only received appends since its last refresh is refreshed by aggregating the new
//! rows and merging them into the stored result, not by recomputing over all rows.
//!
//! Mergeable: `count`, `sum`, `min`, `max` (not DISTINCT, no FILTER or ORDER BY), under a
//! projection that only selects or renames the group columns and aggregates. Anything else —
//! `avg`, expressions over aggregates, DISTINCT, several inputs, expectations — is refreshed
//! by a full recompute. This module only analyses and builds plans; `flow.rs` decides when to
//! use them.

use datafusion::dataframe::DataFrame;
use datafusion::functions_aggregate::expr_fn::{max, min, sum};
use datafusion::logical_expr::{Expr, LogicalPlan, cast};
use datafusion::prelude::col;

use crate::error::Result;

/// How one aggregate of the stored result merges with the same aggregate of new rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Merge {
    /// `count` and `sum`: add.
    Sum,
    /// `min`: the smaller.
    Min,
    /// `max`: the larger.
    Max,
}

/// The shape of a mergeable aggregation: its output columns, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mergeable {
    /// Output column name and, for aggregates, how it merges (`None` for group columns).
    pub columns: Vec<(String, Option<Merge>)>,
}

/// Whether `plan` (a view's unoptimized plan) is a mergeable aggregation, and how.
pub(crate) fn analyze(plan: &LogicalPlan) -> Option<Mergeable> {
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
        .any(|g| matches!(g, Expr::GroupingSet(_)))
    {
        return None;
    }
    let mut merges = Vec::with_capacity(aggregate.aggr_expr.len());
    for expr in &aggregate.aggr_expr {
        let Expr::AggregateFunction(f) = strip_alias(expr) else {
            return None;
        };
        let p = &f.params;
        if p.distinct || p.filter.is_some() || !p.order_by.is_empty() {
            return None;
        }
        merges.push(match f.func.name() {
            "count" | "sum" => Merge::Sum,
            "min" => Merge::Min,
            "max" => Merge::Max,
            _ => return None,
        });
    }
    let agg_schema = aggregate.schema.as_ref();
    let kind_at = |index: usize| (index >= groups).then(|| merges[index - groups]);
    let columns = match projection {
        None => agg_schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name().clone(), kind_at(i)))
            .collect(),
        Some(p) => {
            let mut columns = Vec::with_capacity(p.expr.len());
            for (expr, field) in p.expr.iter().zip(p.schema.fields()) {
                let Expr::Column(column) = strip_alias(expr) else {
                    return None;
                };
                let index = agg_schema.index_of_column(column).ok()?;
                columns.push((field.name().clone(), kind_at(index)));
            }
            // Every aggregate must be visible to be merged.
            let shown = columns.iter().filter(|(_, m)| m.is_some()).count();
            if shown != merges.len() {
                return None;
            }
            columns
        }
    };
    Some(Mergeable { columns })
}

fn strip_alias(expr: &Expr) -> &Expr {
    match expr {
        Expr::Alias(alias) => strip_alias(&alias.expr),
        other => other,
    }
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
        let mut groups = Vec::new();
        let mut aggregates = Vec::new();
        for (name, merge) in &self.columns {
            let column = col(format!("\"{name}\""));
            match merge {
                None => groups.push(column),
                Some(Merge::Sum) => aggregates.push(sum(column).alias(name)),
                Some(Merge::Min) => aggregates.push(min(column).alias(name)),
                Some(Merge::Max) => aggregates.push(max(column).alias(name)),
            }
        }
        let merged = both.aggregate(groups, aggregates)?;
        typed(merged)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn plan(sql: &str) -> LogicalPlan {
        let ctx = SessionContext::new();
        ctx.sql("CREATE TABLE t (k VARCHAR, v BIGINT) AS VALUES ('a', 1)")
            .await
            .unwrap();
        ctx.sql(sql).await.unwrap().into_unoptimized_plan()
    }

    #[tokio::test]
    async fn recognises_mergeable_aggregations() {
        let p = plan(
            "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi FROM t GROUP BY k",
        )
        .await;
        let m = analyze(&p).unwrap();
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
    async fn falls_back_for_the_rest() {
        for sql in [
            "SELECT k, avg(v) FROM t GROUP BY k",
            "SELECT k, count(DISTINCT v) FROM t GROUP BY k",
            "SELECT k, sum(v) * 2 AS doubled FROM t GROUP BY k",
            "SELECT k FROM t",
        ] {
            assert!(analyze(&plan(sql).await).is_none(), "{sql}");
        }
    }
}
