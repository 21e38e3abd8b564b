//! Names as Spark resolves and gives them.
//!
//! Spark resolves columns, tables and aliases case-insensitively and keeps a name's case as
//! written. lakeflow gets the same by lower-casing every identifier of the statement and
//! every column of its inputs before DataFusion plans it (so matching ignores case), and
//! naming the output columns afterwards from a dictionary of the spellings seen: the
//! aliases as written first, then the inputs' columns ([`Spellings`]).
//!
//! Unaliased select items get the name Spark gives them (`sum(amount)`, `amount` for
//! `CAST(amount AS INT)`, `curr` for `s.curr`, `col` for `explode(x)`), written before the
//! lower-casing so they keep the user's case.

use std::collections::HashMap;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, CastKind, ExcludeSelectItem, Expr, FunctionArg, FunctionArgExpr,
    FunctionArguments, Ident, JoinConstraint, ObjectName, ObjectNamePart, Query, Select,
    SelectItem, SelectItemQualifiedWildcardKind, SetExpr, TableFactor, UnaryOperator, Value,
    VisitorMut,
};

use datafusion::logical_expr::{Distinct, Expr as DfExpr, LogicalPlan};

use super::exprs::function_name;

/// The spellings of names: lower-case name to the spelling Spark would show.
#[derive(Debug, Default, Clone)]
pub struct Spellings {
    map: HashMap<String, String>,
    /// The lower-cased names the statement gives columns (`AS x`, and unaliased items).
    written: std::collections::HashSet<String>,
}

impl Spellings {
    /// Records `name` unless a spelling of it is known already.
    pub fn add(&mut self, name: &str) {
        self.map
            .entry(name.to_lowercase())
            .or_insert_with(|| name.to_string());
    }

    /// Records a name the statement gives a column, as written.
    pub fn add_written(&mut self, name: &str) {
        self.add(name);
        self.written.insert(name.to_lowercase());
    }

    /// Whether the statement gives a column this (lower-cased) name.
    pub fn is_written(&self, lower: &str) -> bool {
        self.written.contains(lower)
    }

    /// The spelling of a lower-cased name, if one was seen.
    pub fn spelling(&self, lower: &str) -> Option<&str> {
        self.map.get(lower).map(String::as_str)
    }
}

/// Gives unaliased select items Spark's names.
pub(crate) struct OutputNames;

impl VisitorMut for OutputNames {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        later_branches(&mut query.body, true);
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        // Generators that make several columns: one select item for each.
        let mut expanded = Vec::with_capacity(select.projection.len());
        for item in std::mem::take(&mut select.projection) {
            match generator_columns(&item) {
                Some(items) => expanded.extend(items),
                None => expanded.push(item),
            }
        }
        select.projection = expanded;
        for item in &mut select.projection {
            if let SelectItem::UnnamedExpr(expr) = item {
                // Spark names even a plain column reference as it is written.
                let name = spark_name(expr);
                *item = SelectItem::ExprWithAlias {
                    expr: expr.clone(),
                    alias: Ident::with_quote('`', name),
                };
            }
        }
        ControlFlow::Continue(())
    }
}

/// A set operation takes its column names from its first branch, as Spark does: the items of
/// the later branches get names of their own, by position, so that two equal unnamed values
/// there (`SELECT -1, NULL, NULL` after `SELECT id, name, city`) are not a clash of names.
fn later_branches(body: &mut SetExpr, first: bool) {
    match body {
        SetExpr::SetOperation { left, right, .. } => {
            later_branches(left, first);
            later_branches(right, false);
        }
        SetExpr::Query(query) => later_branches(&mut query.body, first),
        SetExpr::Select(select) if !first => {
            let mut seen = std::collections::HashSet::new();
            for (i, item) in select.projection.iter_mut().enumerate() {
                let positional = Ident::new(format!("__lakeflow_union_{i}"));
                match item {
                    SelectItem::UnnamedExpr(expr) if !is_generator(expr) => {
                        *item = SelectItem::ExprWithAlias {
                            expr: expr.clone(),
                            alias: positional,
                        };
                    }
                    SelectItem::ExprWithAlias { alias, .. }
                        if !seen.insert(alias.value.to_lowercase()) =>
                    {
                        *alias = positional;
                    }
                    _ => {}
                }
            }
        }
        _ => {}
    }
}

/// Whether `expr` is a generator (its select item may stand for several columns).
fn is_generator(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f) if matches!(
        function_name(f).as_deref(),
        Some("explode" | "explode_outer" | "posexplode" | "inline" | "unnest")
    ))
}

/// The name Spark gives an unaliased expression.
pub fn spark_name(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        Expr::Nested(e) => spark_name(e),
        Expr::Cast {
            expr: inner,
            data_type,
            kind,
            ..
        } => match inner.as_ref() {
            Expr::Identifier(_) | Expr::CompoundIdentifier(_) => spark_name(inner),
            _ => {
                let word = if *kind == CastKind::TryCast {
                    "TRY_CAST"
                } else {
                    "CAST"
                };
                format!(
                    "{word}({} AS {})",
                    pretty(inner),
                    data_type.to_string().to_uppercase()
                )
            }
        },
        Expr::Function(f)
            if matches!(
                function_name(f).as_deref(),
                Some("explode" | "explode_outer")
            ) =>
        {
            "col".into()
        }
        Expr::Function(f)
            if matches!(
                function_name(f).as_deref(),
                Some(
                    "int"
                        | "integer"
                        | "bigint"
                        | "smallint"
                        | "tinyint"
                        | "double"
                        | "float"
                        | "boolean"
                        | "string"
                        | "date"
                        | "timestamp"
                        | "decimal"
                        | "binary"
                )
            ) && super::exprs::plain_args(f).is_some_and(|a| {
                a.len() == 1 && matches!(a[0], Expr::Identifier(_) | Expr::CompoundIdentifier(_))
            }) =>
        {
            spark_name(&super::exprs::plain_args(f).expect("checked")[0])
        }
        _ => pretty(expr),
    }
}

/// Spark's printing of an expression in a generated column name.
fn pretty(expr: &Expr) -> String {
    match expr {
        Expr::Identifier(i) => i.value.clone(),
        Expr::CompoundIdentifier(parts) => {
            parts.last().map(|p| p.value.clone()).unwrap_or_default()
        }
        Expr::Nested(e) => pretty(e),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => s.clone(),
            Value::Null => "NULL".into(),
            other => other.to_string(),
        },
        Expr::BinaryOp {
            left,
            op: BinaryOperator::StringConcat,
            right,
        } => format!("concat({}, {})", pretty(left), pretty(right)),
        Expr::BinaryOp { left, op, right } => {
            let op = match op {
                BinaryOperator::And => "AND".to_string(),
                BinaryOperator::Or => "OR".to_string(),
                BinaryOperator::NotEq => "!=".to_string(),
                other => other.to_string(),
            };
            format!("({} {op} {})", pretty(left), pretty(right))
        }
        Expr::UnaryOp { op, expr } => match (op, expr.as_ref()) {
            (UnaryOperator::Minus, Expr::Value(v)) => format!("-{}", v.value),
            (UnaryOperator::Not, _) => format!("(NOT {})", pretty(expr)),
            (UnaryOperator::Minus, _) => format!("(- {})", pretty(expr)),
            (UnaryOperator::Plus, _) => format!("(+ {})", pretty(expr)),
            (other, _) => format!("{other}{}", pretty(expr)),
        },
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let items: Vec<String> = list.iter().map(pretty).collect();
            let inner = format!("({} IN ({}))", pretty(expr), items.join(", "));
            if *negated {
                format!("(NOT {inner})")
            } else {
                inner
            }
        }
        Expr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let inner = format!(
                "between({}, {}, {})",
                pretty(expr),
                pretty(low),
                pretty(high)
            );
            if *negated {
                format!("(NOT {inner})")
            } else {
                inner
            }
        }
        Expr::Like {
            negated,
            expr,
            pattern,
            ..
        } => {
            let inner = format!("{} LIKE {}", pretty(expr), pretty(pattern));
            if *negated {
                format!("(NOT {inner})")
            } else {
                inner
            }
        }
        Expr::Case {
            operand,
            conditions,
            else_result,
            ..
        } => {
            let mut out = String::from("CASE");
            for when in conditions {
                let condition = match operand {
                    Some(op) => format!("({} = {})", pretty(op), pretty(&when.condition)),
                    None => pretty(&when.condition),
                };
                out.push_str(&format!(" WHEN {condition} THEN {}", pretty(&when.result)));
            }
            if let Some(e) = else_result {
                out.push_str(&format!(" ELSE {}", pretty(e)));
            }
            out.push_str(" END");
            out
        }
        Expr::IsNull(e) => format!("({} IS NULL)", pretty(e)),
        Expr::IsNotNull(e) => format!("({} IS NOT NULL)", pretty(e)),
        Expr::Cast { .. } => spark_name(expr),
        Expr::Function(f) if f.over.is_none() && function_name(f).as_deref() == Some("if") => {
            let args: Vec<String> = super::exprs::plain_args(f)
                .unwrap_or_default()
                .iter()
                .map(pretty)
                .collect();
            format!("(IF({}))", args.join(", "))
        }
        Expr::Function(f) if f.over.is_none() => {
            let name = function_name(f).unwrap_or_else(|| f.name.to_string());
            let FunctionArguments::List(list) = &f.args else {
                return format!("{name}()");
            };
            let distinct = list
                .duplicate_treatment
                .is_some_and(|d| d.to_string() == "DISTINCT");
            let args: Vec<String> = list
                .args
                .iter()
                .map(|a| match a {
                    FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => pretty(e),
                    FunctionArg::Unnamed(FunctionArgExpr::Wildcard) if name == "count" => {
                        "1".into()
                    }
                    other => other.to_string(),
                })
                .collect();
            format!(
                "{name}({}{})",
                if distinct { "DISTINCT " } else { "" },
                args.join(", ")
            )
        }
        other => other.to_string(),
    }
}

/// Lower-cases every identifier of a statement, recording the spellings of the names it
/// defines (select aliases, table and CTE column aliases).
pub(crate) struct LowerCase<'a> {
    pub spellings: &'a mut Spellings,
}

fn lower(ident: &mut Ident) {
    ident.value = ident.value.to_lowercase();
}

fn lower_name(name: &mut ObjectName) {
    for part in &mut name.0 {
        if let ObjectNamePart::Identifier(ident) = part {
            lower(ident);
        }
    }
}

impl LowerCase<'_> {
    fn alias(&mut self, ident: &mut Ident) {
        self.spellings.add_written(&ident.value);
        lower(ident);
    }
}

impl VisitorMut for LowerCase<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        if let Some(with) = &mut query.with {
            for cte in &mut with.cte_tables {
                lower(&mut cte.alias.name);
                for column in &mut cte.alias.columns {
                    self.alias(&mut column.name);
                }
            }
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        for item in &mut select.projection {
            match item {
                SelectItem::ExprWithAlias { alias, .. } => self.alias(alias),
                SelectItem::ExprWithAliases { aliases, .. } => {
                    aliases.iter_mut().for_each(|a| self.alias(a))
                }
                SelectItem::Wildcard(options) | SelectItem::QualifiedWildcard(_, options) => {
                    match &mut options.opt_exclude {
                        Some(ExcludeSelectItem::Single(name)) => lower_name(name),
                        Some(ExcludeSelectItem::Multiple(names)) => {
                            names.iter_mut().for_each(lower_name)
                        }
                        None => {}
                    }
                    if let Some(except) = &mut options.opt_except {
                        lower(&mut except.first_element);
                        except.additional_elements.iter_mut().for_each(lower);
                    }
                }
                SelectItem::UnnamedExpr(_) => {}
            }
            if let SelectItem::QualifiedWildcard(
                SelectItemQualifiedWildcardKind::ObjectName(n),
                _,
            ) = item
            {
                lower_name(n);
            }
        }
        for from in &mut select.from {
            for join in &mut from.joins {
                let constraint = super::joins::constraint_of(&mut join.join_operator);
                if let Some(JoinConstraint::Using(names)) = constraint {
                    names.iter_mut().for_each(lower_name);
                }
            }
        }
        for view in &mut select.lateral_views {
            lower_name(&mut view.lateral_view_name);
            view.lateral_col_alias
                .iter_mut()
                .for_each(|a| self.alias(a));
        }
        for window in &mut select.named_window {
            lower(&mut window.0);
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_relation(&mut self, relation: &mut ObjectName) -> ControlFlow<()> {
        lower_name(relation);
        ControlFlow::Continue(())
    }

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        let alias = match factor {
            TableFactor::Table { alias, .. }
            | TableFactor::Derived { alias, .. }
            | TableFactor::TableFunction { alias, .. }
            | TableFactor::Function { alias, .. }
            | TableFactor::UNNEST { alias, .. }
            | TableFactor::NestedJoin { alias, .. } => alias.as_mut(),
            _ => None,
        };
        if let Some(alias) = alias {
            lower(&mut alias.name);
            for column in &mut alias.columns {
                self.alias(&mut column.name);
            }
        }
        ControlFlow::Continue(())
    }

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Identifier(ident) => lower(ident),
            Expr::CompoundIdentifier(parts) => parts.iter_mut().for_each(lower),
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

/// The spelling of output column `index` of `plan` when it is an input column passed
/// through: the input's own spelling (seen through lakeflow's lower-casing projection, see
/// [`crate::SparkQuery::plan`]). `None` for computed columns and aliases, which take the
/// spelling written in the statement.
pub(crate) fn origin(plan: &LogicalPlan, index: usize, spellings: &Spellings) -> Option<String> {
    let origin = |plan: &LogicalPlan, index: usize| origin(plan, index, spellings);
    match plan {
        LogicalPlan::Projection(p) => expr_origin(p.expr.get(index)?, &p.input, spellings),
        LogicalPlan::SubqueryAlias(a) => origin(&a.input, index),
        LogicalPlan::Filter(f) => origin(&f.input, index),
        LogicalPlan::Sort(s) => origin(&s.input, index),
        LogicalPlan::Limit(l) => origin(&l.input, index),
        LogicalPlan::Distinct(Distinct::All(input)) => origin(input, index),
        LogicalPlan::Join(j) => {
            let left = j.left.schema().fields().len();
            if index < left {
                origin(&j.left, index)
            } else {
                origin(&j.right, index - left)
            }
        }
        LogicalPlan::Union(u) => origin(u.inputs.first()?, index),
        LogicalPlan::Aggregate(a) => {
            let group = a.group_expr.get(index)?;
            expr_origin(group, &a.input, spellings)
        }
        LogicalPlan::Window(w) => {
            (index < w.input.schema().fields().len()).then(|| origin(&w.input, index))?
        }
        LogicalPlan::TableScan(_) | LogicalPlan::Values(_) => {
            Some(plan.schema().field(index).name().clone())
        }
        _ => None,
    }
}

fn expr_origin(expr: &DfExpr, input: &LogicalPlan, spellings: &Spellings) -> Option<String> {
    match expr {
        // A name the statement gives is spelled as written.
        DfExpr::Alias(alias) if spellings.is_written(&alias.name) => None,
        // lakeflow's own names: lower-casing an input column, a USING key.
        DfExpr::Alias(alias) => match alias.expr.as_ref() {
            DfExpr::Column(c) if c.name.to_lowercase() == alias.name => {
                expr_origin(alias.expr.as_ref(), input, spellings)
            }
            _ => None,
        },
        DfExpr::Column(c) => origin(input, input.schema().index_of_column(c).ok()?, spellings),
        _ => None,
    }
}

/// `posexplode(x) [AS (p, c)]`, `explode(m) AS (k, v)`, `posexplode(m) AS (p, k, v)`: the
/// columns Spark's generator makes, as unnests DataFusion zips row by row.
fn generator_columns(item: &SelectItem) -> Option<Vec<SelectItem>> {
    use super::exprs::{call, plain_args};
    let (expr, aliases): (&Expr, Vec<Ident>) = match item {
        SelectItem::UnnamedExpr(e) => (e, Vec::new()),
        SelectItem::ExprWithAliases { expr, aliases } => (expr, aliases.clone()),
        _ => return None,
    };
    let Expr::Function(f) = expr else {
        return None;
    };
    let name = function_name(f)?;
    let args = plain_args(f)?;
    let [x] = args.as_slice() else {
        return None;
    };
    let named = |e: Expr, name: &str, given: Option<&Ident>| SelectItem::ExprWithAlias {
        expr: e,
        alias: given
            .cloned()
            .unwrap_or_else(|| Ident::with_quote('`', name)),
    };
    let unnest = |e: Expr| call("unnest", vec![e]);
    let positions = || {
        let last = Expr::BinaryOp {
            left: Box::new(call("size", vec![x.clone()])),
            op: BinaryOperator::Minus,
            right: Box::new(Expr::value(Value::Number("1".into(), false))),
        };
        // Spark's positions are INTs.
        Expr::Cast {
            kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
            expr: Box::new(unnest(call(
                "generate_series",
                vec![Expr::value(Value::Number("0".into(), false)), last],
            ))),
            data_type: datafusion::sql::sqlparser::ast::DataType::Int(None),
            array: false,
            format: None,
        }
    };
    Some(match (name.as_str(), aliases.len()) {
        ("posexplode", 0 | 2) => vec![
            named(positions(), "pos", aliases.first()),
            named(unnest(x.clone()), "col", aliases.get(1)),
        ],
        ("explode", 1) => vec![named(unnest(x.clone()), "col", aliases.first())],
        ("explode", 2) => vec![
            named(
                unnest(call("map_keys", vec![x.clone()])),
                "key",
                aliases.first(),
            ),
            named(
                unnest(call("map_values", vec![x.clone()])),
                "value",
                aliases.get(1),
            ),
        ],
        ("posexplode", 3) => vec![
            named(
                unnest(call(
                    "generate_series",
                    vec![
                        Expr::value(Value::Number("0".into(), false)),
                        Expr::BinaryOp {
                            left: Box::new(call("cardinality", vec![x.clone()])),
                            op: BinaryOperator::Minus,
                            right: Box::new(Expr::value(Value::Number("1".into(), false))),
                        },
                    ],
                )),
                "pos",
                aliases.first(),
            ),
            named(
                unnest(call("map_keys", vec![x.clone()])),
                "key",
                aliases.get(1),
            ),
            named(
                unnest(call("map_values", vec![x.clone()])),
                "value",
                aliases.get(2),
            ),
        ],
        _ => return None,
    })
}
