//! Relations as Spark joins them: `USING` and `NATURAL` joins of every kind return the
//! coalesced key once, first (`LEFT JOIN .. USING (id)` keeps the left `id`, `FULL` the
//! non-NULL one), and an unqualified key means that column; `* EXCEPT (t.col)` leaves out
//! one side's column; `LATERAL VIEW explode(..)` adds the exploded column to its relation.
//!
//! DataFusion plans these differently, so a select that has any of them is rewritten: each
//! `USING` becomes `ON` equalities, each star becomes the explicit column list Spark would
//! give, and each unqualified key becomes its expression. Knowing the columns of a relation
//! takes planning it; the caller passes that in as [`Columns`].

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::common::{Result, plan_datafusion_err, plan_err};
use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Cte, ExcludeSelectItem, Expr, Ident, JoinConstraint, JoinOperator, ObjectName,
    ObjectNamePart, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr, Statement,
    TableAlias, TableFactor, TableWithJoins, VisitMut, VisitorMut, WildcardAdditionalOptions, With,
};

use super::exprs::{call, function_name, outer_array, plain_args};
use crate::dialect::parse_statement;

/// The output column names of a query, as DataFusion plans it.
pub(crate) type Columns<'a> = dyn Fn(&Query) -> Result<Vec<String>> + 'a;

/// Rewrites the selects of `statement` that join with `USING`/`NATURAL`, exclude qualified
/// columns from a star, or have lateral views.
pub(crate) fn rewrite(statement: &mut Statement, columns: &Columns) -> Result<()> {
    let Statement::Query(query) = statement else {
        return Ok(());
    };
    if !needs_rewrite(query) && !has_bare_semi_join(query) {
        return Ok(());
    }
    rewrite_query(query, &[], columns)
}

fn needs_rewrite(query: &mut Query) -> bool {
    struct Finder(bool);
    impl VisitorMut for Finder {
        type Break = ();
        fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            if select_needs(select) {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = query.visit(&mut finder);
    finder.0
}

/// The constraint of a join that has one (`ON`, `USING`, `NATURAL`).
pub(crate) fn constraint_of(op: &mut JoinOperator) -> Option<&mut JoinConstraint> {
    match op {
        JoinOperator::Join(c)
        | JoinOperator::Inner(c)
        | JoinOperator::Left(c)
        | JoinOperator::LeftOuter(c)
        | JoinOperator::Right(c)
        | JoinOperator::RightOuter(c)
        | JoinOperator::FullOuter(c)
        | JoinOperator::Semi(c)
        | JoinOperator::LeftSemi(c)
        | JoinOperator::Anti(c)
        | JoinOperator::LeftAnti(c) => Some(c),
        _ => None,
    }
}

fn select_needs(select: &mut Select) -> bool {
    let using = select.from.iter_mut().any(|f| {
        f.joins.iter_mut().any(|j| {
            matches!(
                constraint_of(&mut j.join_operator),
                Some(JoinConstraint::Using(_) | JoinConstraint::Natural)
            )
        })
    });
    let qualified_exclude = select.projection.iter().any(|item| match item {
        SelectItem::Wildcard(o) | SelectItem::QualifiedWildcard(_, o) => {
            exclude_names(o).iter().any(|n| n.0.len() > 1)
        }
        _ => false,
    });
    using || qualified_exclude || !select.lateral_views.is_empty()
}

fn exclude_names(options: &WildcardAdditionalOptions) -> Vec<ObjectName> {
    match &options.opt_exclude {
        Some(ExcludeSelectItem::Single(n)) => vec![n.clone()],
        Some(ExcludeSelectItem::Multiple(ns)) => ns.clone(),
        None => Vec::new(),
    }
}

fn rewrite_query(query: &mut Query, env: &[Cte], columns: &Columns) -> Result<()> {
    let mut env = env.to_vec();
    if let Some(with) = &mut query.with {
        for cte in &mut with.cte_tables {
            rewrite_query(&mut cte.query, &env, columns)?;
            env.push(cte.clone());
        }
    }
    rewrite_set_expr(&mut query.body, &env, columns)
}

fn rewrite_set_expr(set: &mut SetExpr, env: &[Cte], columns: &Columns) -> Result<()> {
    match set {
        SetExpr::Select(select) => rewrite_select(select, env, columns),
        SetExpr::Query(query) => rewrite_query(query, env, columns),
        SetExpr::SetOperation { left, right, .. } => {
            rewrite_set_expr(left, env, columns)?;
            rewrite_set_expr(right, env, columns)
        }
        _ => Ok(()),
    }
}

/// A column a select can see.
#[derive(Debug, Clone)]
struct Col {
    /// The relation it comes from (`None` for a join key, which belongs to no side).
    qual: Option<String>,
    name: String,
    /// How the select refers to it.
    expr: Expr,
    key: bool,
}

fn ident(name: &str) -> Ident {
    Ident::with_quote('`', name)
}

fn column_ref(qual: Option<&str>, name: &str) -> Expr {
    match qual {
        Some(q) => Expr::CompoundIdentifier(vec![ident(q), ident(name)]),
        None => Expr::Identifier(ident(name)),
    }
}

fn rewrite_factor_subqueries(
    factor: &mut TableFactor,
    env: &[Cte],
    columns: &Columns,
) -> Result<()> {
    match factor {
        TableFactor::Derived { subquery, .. } => rewrite_query(subquery, env, columns),
        TableFactor::NestedJoin {
            table_with_joins, ..
        } => {
            rewrite_factor_subqueries(&mut table_with_joins.relation, env, columns)?;
            for join in &mut table_with_joins.joins {
                rewrite_factor_subqueries(&mut join.relation, env, columns)?;
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Rewrites subqueries inside expressions (each in its own scope).
struct Subqueries<'a, 'b> {
    env: &'a [Cte],
    columns: &'a Columns<'b>,
    error: Option<datafusion::common::DataFusionError>,
}

impl VisitorMut for Subqueries<'_, '_> {
    type Break = ();
    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Err(e) = rewrite_query(query, self.env, self.columns) {
            self.error = Some(e);
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }
}

fn factor_qualifier(factor: &TableFactor) -> Option<String> {
    let alias = match factor {
        TableFactor::Table { alias, name, .. } => {
            return alias.as_ref().map(|a| a.name.value.clone()).or_else(|| {
                name.0
                    .last()
                    .and_then(ObjectNamePart::as_ident)
                    .map(|i| i.value.clone())
            });
        }
        TableFactor::Derived { alias, .. }
        | TableFactor::TableFunction { alias, .. }
        | TableFactor::Function { alias, .. }
        | TableFactor::UNNEST { alias, .. }
        | TableFactor::NestedJoin { alias, .. } => alias,
        _ => &None,
    };
    alias.as_ref().map(|a| a.name.value.clone())
}

/// The planned column names of one relation.
fn factor_columns(factor: &mut TableFactor, env: &[Cte], columns: &Columns) -> Result<Vec<Col>> {
    if let TableFactor::NestedJoin {
        table_with_joins, ..
    } = factor
    {
        let (cols, _) = join_columns(table_with_joins, env, columns)?;
        return Ok(cols);
    }
    let Statement::Query(mut query) = parse_statement("SELECT * FROM t")? else {
        return plan_err!("a star select did not parse as a query");
    };
    if !env.is_empty() {
        query.with = Some(With {
            with_token:
                datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
            recursive: false,
            cte_tables: env.to_vec(),
        });
    }
    if let SetExpr::Select(select) = query.body.as_mut() {
        select.from = vec![TableWithJoins {
            relation: factor.clone(),
            joins: Vec::new(),
        }];
    }
    let qual = factor_qualifier(factor);
    Ok(columns(&query)?
        .into_iter()
        .map(|name| Col {
            expr: column_ref(qual.as_deref(), &name),
            qual: qual.clone(),
            name,
            key: false,
        })
        .collect())
}

/// The columns a join chain makes visible, and its keys by name; rewrites each `USING` and
/// `NATURAL` into `ON`.
fn join_columns(
    from: &mut TableWithJoins,
    env: &[Cte],
    columns: &Columns,
) -> Result<(Vec<Col>, HashMap<String, Expr>)> {
    let mut left = factor_columns(&mut from.relation, env, columns)?;
    let mut keys: HashMap<String, Expr> = HashMap::new();
    for join in &mut from.joins {
        let right = factor_columns(&mut join.relation, env, columns)?;
        let semi = matches!(
            join.join_operator,
            JoinOperator::Semi(_)
                | JoinOperator::LeftSemi(_)
                | JoinOperator::Anti(_)
                | JoinOperator::LeftAnti(_)
        );
        let kind = match join.join_operator {
            JoinOperator::Right(_) | JoinOperator::RightOuter(_) => Side::Right,
            JoinOperator::FullOuter(_) => Side::Full,
            _ => Side::Left,
        };
        let Some(constraint) = constraint_of(&mut join.join_operator) else {
            left.extend(right);
            continue;
        };
        let names: Vec<String> = match constraint {
            JoinConstraint::Using(names) => names
                .iter()
                .map(|n| n.to_string().trim_matches('`').to_lowercase())
                .collect(),
            JoinConstraint::Natural => left
                .iter()
                .filter(|l| right.iter().any(|r| r.name == l.name))
                .map(|l| l.name.clone())
                .collect(),
            _ => {
                if !semi {
                    left.extend(right);
                }
                continue;
            }
        };
        let mut on: Option<Expr> = None;
        let mut key_cols = Vec::with_capacity(names.len());
        for name in &names {
            let l = unique(&left, name, "left")?;
            let r = unique(&right, name, "right")?;
            let equal = Expr::BinaryOp {
                left: Box::new(l.expr.clone()),
                op: BinaryOperator::Eq,
                right: Box::new(r.expr.clone()),
            };
            on = Some(match on {
                None => equal,
                Some(prev) => Expr::BinaryOp {
                    left: Box::new(prev),
                    op: BinaryOperator::And,
                    right: Box::new(equal),
                },
            });
            let expr = match kind {
                Side::Left => l.expr.clone(),
                Side::Right => r.expr.clone(),
                Side::Full => call("coalesce", vec![l.expr.clone(), r.expr.clone()]),
            };
            keys.insert(name.clone(), expr.clone());
            // The key is the left side's column (the right's for RIGHT joins), so
            // `* EXCEPT (l.key)` leaves it out, as in Spark.
            let qual = match kind {
                Side::Left => l.qual.clone(),
                Side::Right => r.qual.clone(),
                Side::Full => None,
            };
            key_cols.push(Col {
                qual,
                name: name.clone(),
                expr,
                key: true,
            });
        }
        *constraint = match on {
            Some(on) => JoinConstraint::On(on),
            None => JoinConstraint::None,
        };
        if names.is_empty() && !semi {
            // A NATURAL join without common columns is a cross join.
            join.join_operator = JoinOperator::CrossJoin(JoinConstraint::None);
        }
        let mut next = key_cols;
        next.extend(left.into_iter().filter(|c| !names.contains(&c.name)));
        if !semi {
            next.extend(right.into_iter().filter(|c| !names.contains(&c.name)));
        }
        left = next;
    }
    Ok((left, keys))
}

#[derive(Clone, Copy)]
enum Side {
    Left,
    Right,
    Full,
}

fn unique<'c>(cols: &'c [Col], name: &str, side: &str) -> Result<&'c Col> {
    let mut found = cols.iter().filter(|c| c.name == *name);
    match (found.next(), found.next()) {
        (Some(c), None) => Ok(c),
        (None, _) => Err(plan_datafusion_err!(
            "USING column `{name}` cannot be resolved on the {side} side of the join; columns there: {}",
            cols.iter()
                .map(|c| c.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
        (Some(_), Some(_)) => Err(plan_datafusion_err!(
            "USING column `{name}` is ambiguous on the {side} side of the join"
        )),
    }
}

/// `LATERAL VIEW explode(e) v AS x` over a single relation: the relation becomes
/// `(SELECT r.*, unnest(e) AS x FROM r) AS r`.
fn lateral_views(select: &mut Select) -> Result<Vec<String>> {
    if select.lateral_views.is_empty() {
        return Ok(Vec::new());
    }
    if select.from.len() != 1 || !select.from[0].joins.is_empty() {
        let sliding = select.lateral_views.iter().any(|v| {
            v.lateral_col_alias
                .iter()
                .any(|a| a.value == super::windows::WINDOW_TIME)
        });
        if sliding {
            return plan_err!(
                "a sliding window (window(time, duration, slide)) groups one relation; group a subquery of the join: SELECT .. FROM (SELECT .. FROM a JOIN b ON ..) GROUP BY window(..)"
            );
        }
        return plan_err!(
            "LATERAL VIEW is supported over one relation without joins; move the join into a subquery"
        );
    }
    let mut dropped = Vec::new();
    for view in std::mem::take(&mut select.lateral_views) {
        let Expr::Function(f) = &view.lateral_view else {
            return plan_err!(
                "LATERAL VIEW takes explode(..), found {}",
                view.lateral_view
            );
        };
        let name = function_name(f).unwrap_or_default();
        let args = plain_args(f).unwrap_or_default();
        if name != "explode" && name != "unnest" || args.len() != 1 {
            return plan_err!(
                "LATERAL VIEW supports explode(array); `{}` is not supported",
                view.lateral_view
            );
        }
        if view.lateral_col_alias.len() > 1 {
            return plan_err!("LATERAL VIEW explode(array) names one column, found several");
        }
        let column = view
            .lateral_col_alias
            .first()
            .map(|a| a.value.clone())
            .unwrap_or_else(|| "col".to_string());
        if let Some(v) = view
            .lateral_view_name
            .0
            .last()
            .and_then(ObjectNamePart::as_ident)
        {
            dropped.push(v.value.clone());
        }
        let relation = select.from[0].relation.clone();
        let qual = factor_qualifier(&relation).unwrap_or_else(|| "__lakeflow_lateral".into());
        let sql = format!(
            "SELECT {}.*, unnest(x) AS {} FROM t",
            ident(&qual),
            ident(&column)
        );
        let Statement::Query(mut inner) = parse_statement(&sql)? else {
            return plan_err!("a lateral view did not parse as a query");
        };
        if let SetExpr::Select(inner_select) = inner.body.as_mut() {
            if let Some(SelectItem::ExprWithAlias { expr, .. }) = inner_select.projection.get_mut(1)
            {
                // OUTER keeps a row whose array is NULL or empty, with NULL.
                let array = args
                    .into_iter()
                    .next()
                    .map(|a| if view.outer { outer_array(a) } else { a });
                *expr = call("unnest", array.into_iter().collect());
            }
            let mut relation = relation;
            if factor_qualifier(&relation).is_none()
                && let TableFactor::Derived { alias, .. } = &mut relation
            {
                *alias = Some(TableAlias {
                    explicit: true,
                    name: ident(&qual),
                    columns: Vec::new(),
                    at: None,
                });
            }
            inner_select.from = vec![TableWithJoins {
                relation,
                joins: Vec::new(),
            }];
        }
        select.from[0].relation = TableFactor::Derived {
            lateral: false,
            subquery: inner,
            alias: Some(TableAlias {
                explicit: true,
                name: ident(&qual),
                columns: Vec::new(),
                at: None,
            }),
            sample: None,
        };
    }
    Ok(dropped)
}

fn rewrite_select(select: &mut Select, env: &[Cte], columns: &Columns) -> Result<()> {
    // `SEMI JOIN` and `ANTI JOIN` are Spark's `LEFT SEMI` and `LEFT ANTI`.
    for from in &mut select.from {
        for join in &mut from.joins {
            join.join_operator = match std::mem::replace(
                &mut join.join_operator,
                JoinOperator::CrossJoin(JoinConstraint::None),
            ) {
                JoinOperator::Semi(c) => JoinOperator::LeftSemi(c),
                JoinOperator::Anti(c) => JoinOperator::LeftAnti(c),
                other => other,
            };
        }
    }
    for from in &mut select.from {
        rewrite_factor_subqueries(&mut from.relation, env, columns)?;
        for join in &mut from.joins {
            rewrite_factor_subqueries(&mut join.relation, env, columns)?;
        }
    }
    if !select_needs(select) {
        return rewrite_expr_subqueries(select, env, columns);
    }
    let dropped = lateral_views(select)?;
    let mut visible = Vec::new();
    let mut keys = HashMap::new();
    for from in &mut select.from {
        let (cols, k) = join_columns(from, env, columns)?;
        visible.extend(cols);
        keys.extend(k);
    }
    let mut projection = Vec::with_capacity(select.projection.len());
    for item in std::mem::take(&mut select.projection) {
        match item {
            SelectItem::Wildcard(options) => {
                let excluded = exclude_names(&options);
                for col in visible.iter().filter(|c| !is_excluded(c, &excluded)) {
                    projection.push(item_of(col));
                }
            }
            SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(q),
                options,
            ) => {
                let qual = q.to_string().trim_matches('`').to_lowercase();
                let excluded = exclude_names(&options);
                let mut any = false;
                for from in &mut select.from {
                    for col in side_columns(from, &qual, env, columns)? {
                        any = true;
                        if !is_excluded(&col, &excluded) {
                            projection.push(item_of(&col));
                        }
                    }
                }
                if !any {
                    return plan_err!("`{qual}.*` names no relation of this select");
                }
            }
            SelectItem::UnnamedExpr(Expr::Identifier(i)) if keys.contains_key(&i.value) => {
                projection.push(SelectItem::ExprWithAlias {
                    expr: keys[&i.value].clone(),
                    alias: i,
                });
            }
            other => projection.push(other),
        }
    }
    select.projection = projection;
    let mut keys_in_exprs = KeyRefs {
        keys: &keys,
        dropped: &dropped,
        depth: 0,
    };
    for item in &mut select.projection {
        let _ = item.visit(&mut keys_in_exprs);
    }
    if let Some(selection) = &mut select.selection {
        let _ = selection.visit(&mut keys_in_exprs);
    }
    let _ = select.group_by.visit(&mut keys_in_exprs);
    if let Some(having) = &mut select.having {
        let _ = having.visit(&mut keys_in_exprs);
    }
    if let Some(qualify) = &mut select.qualify {
        let _ = qualify.visit(&mut keys_in_exprs);
    }
    rewrite_expr_subqueries(select, env, columns)
}

fn rewrite_expr_subqueries(select: &mut Select, env: &[Cte], columns: &Columns) -> Result<()> {
    let mut subqueries = Subqueries {
        env,
        columns,
        error: None,
    };
    for item in &mut select.projection {
        let _ = item.visit(&mut subqueries);
    }
    if let Some(selection) = &mut select.selection {
        let _ = selection.visit(&mut subqueries);
    }
    if let Some(having) = &mut select.having {
        let _ = having.visit(&mut subqueries);
    }
    subqueries.error.map_or(Ok(()), Err)
}

/// The columns of relation `qual` inside a join chain (for `qual.*`).
fn side_columns(
    from: &mut TableWithJoins,
    qual: &str,
    env: &[Cte],
    columns: &Columns,
) -> Result<Vec<Col>> {
    let mut out = Vec::new();
    if factor_qualifier(&from.relation).as_deref() == Some(qual) {
        out.extend(factor_columns(&mut from.relation, env, columns)?);
    }
    for join in &mut from.joins {
        if factor_qualifier(&join.relation).as_deref() == Some(qual) {
            out.extend(factor_columns(&mut join.relation, env, columns)?);
        }
    }
    Ok(out)
}

fn is_excluded(col: &Col, excluded: &[ObjectName]) -> bool {
    excluded.iter().any(|name| {
        let parts: Vec<String> = name
            .0
            .iter()
            .filter_map(ObjectNamePart::as_ident)
            .map(|i| i.value.to_lowercase())
            .collect();
        match parts.as_slice() {
            [c] => *c == col.name,
            [.., q, c] => *c == col.name && col.qual.as_deref() == Some(q.as_str()),
            [] => false,
        }
    })
}

fn item_of(col: &Col) -> SelectItem {
    if col.key {
        SelectItem::ExprWithAlias {
            expr: col.expr.clone(),
            alias: ident(&col.name),
        }
    } else {
        SelectItem::UnnamedExpr(col.expr.clone())
    }
}

/// Unqualified join keys become their expressions; columns qualified by a lateral view's
/// name lose the qualifier. Subqueries have their own scope and are left alone.
struct KeyRefs<'a> {
    keys: &'a HashMap<String, Expr>,
    dropped: &'a [String],
    depth: usize,
}

impl VisitorMut for KeyRefs<'_> {
    type Break = ();
    fn pre_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth += 1;
        ControlFlow::Continue(())
    }
    fn post_visit_query(&mut self, _query: &mut Query) -> ControlFlow<()> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if self.depth > 0 {
            return ControlFlow::Continue(());
        }
        match expr {
            Expr::Identifier(i) => {
                if let Some(key) = self.keys.get(&i.value) {
                    *expr = key.clone();
                }
            }
            Expr::CompoundIdentifier(parts)
                if parts.len() == 2 && self.dropped.contains(&parts[0].value) =>
            {
                *expr = Expr::Identifier(parts[1].clone());
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

fn has_bare_semi_join(query: &mut Query) -> bool {
    struct Finder(bool);
    impl VisitorMut for Finder {
        type Break = ();
        fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
            if select.from.iter().any(|f| {
                f.joins.iter().any(|j| {
                    matches!(
                        j.join_operator,
                        JoinOperator::Semi(_) | JoinOperator::Anti(_)
                    )
                })
            }) {
                self.0 = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut finder = Finder(false);
    let _ = query.visit(&mut finder);
    finder.0
}
