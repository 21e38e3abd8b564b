//! Spark's time windows as a select list reads them: with `GROUP BY window(ts, '5 minutes')`,
//! Spark names the grouping `window`, so `window.start`, `window.end` and `window` itself are
//! columns of the select list, `HAVING` and `ORDER BY`. DataFusion only knows the expression,
//! so each such name becomes the grouping expression (`window.start` is
//! `get_field(window(ts, '5 minutes'), 'start')`), which the planner then reads from the
//! aggregate's output. The `window` function itself is `functions::window`.
//!
//! A sliding window (`window(ts, '10 minutes', '5 minutes')`) holds each row in several
//! windows. As Spark's `TimeWindowing` rule expands each row into one row a window, the select
//! gains `LATERAL VIEW explode(__lakeflow_window_starts(ts, ..)) AS __lakeflow_window_time`
//! and groups by `__lakeflow_sliding_window(__lakeflow_window_time, ..)`: every window holding
//! the row, once.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{
    BinaryOperator, Expr, Function, GroupByExpr, Ident, LateralView, ObjectName, ObjectNamePart,
    Select, Value, VisitMut, VisitorMut,
};

use super::exprs::{call, function_name, plain_args, string};
use crate::functions::window::{SLIDING_WINDOW, WINDOW_STARTS, duration_micros};

/// The column of a row's window start when sliding windows expand it.
pub(crate) const WINDOW_TIME: &str = "__lakeflow_window_time";

/// Rewrites the names `window` and `window.<field>` of every select grouped by a `window(..)`.
pub(crate) struct TimeWindows;

impl VisitorMut for TimeWindows {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let GroupByExpr::Expressions(keys, _) = &select.group_by else {
            return ControlFlow::Continue(());
        };
        let Some(mut window) = keys.iter().find(|k| is_window_call(k)).cloned() else {
            return ControlFlow::Continue(());
        };
        match expand_sliding(select, &window) {
            Some(expanded) => window = expanded,
            None => drop_rows_without_time(select, &window),
        }
        let mut names = WindowNames { window };
        for item in &mut select.projection {
            let _ = item.visit(&mut names);
        }
        if let Some(having) = &mut select.having {
            let _ = having.visit(&mut names);
        }
        ControlFlow::Continue(())
    }
}

/// When `window` slides (a literal slide shorter than its literal duration): each row of the
/// select expands into the start times of its windows, every `window` call like this one
/// takes the start time instead of the row's time, and the new grouping key is returned.
fn expand_sliding(select: &mut Select, window: &Expr) -> Option<Expr> {
    let Expr::Function(f) = window else {
        return None;
    };
    let args = plain_args(f)?;
    let [time, size, slide] = args.as_slice() else {
        return None;
    };
    let micros = |e: &Expr| match e {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => duration_micros(s),
            _ => None,
        },
        _ => None,
    };
    // Not a literal, or a slide longer than the window: the function reports it.
    if micros(size)? <= micros(slide)? {
        return None;
    }
    let starts = call(
        WINDOW_STARTS,
        vec![time.clone(), size.clone(), slide.clone()],
    );
    select.lateral_views.push(LateralView {
        lateral_view: call("explode", vec![starts]),
        lateral_view_name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(
            "__lakeflow_windows",
        ))]),
        lateral_col_alias: vec![Ident::new(WINDOW_TIME)],
        outer: false,
    });
    let expanded = call(
        SLIDING_WINDOW,
        vec![
            Expr::Identifier(Ident::new(WINDOW_TIME)),
            size.clone(),
            slide.clone(),
        ],
    );
    let mut calls = SameCall {
        from: window.clone(),
        to: expanded.clone(),
    };
    if let GroupByExpr::Expressions(keys, _) = &mut select.group_by {
        for key in keys {
            let _ = key.visit(&mut calls);
        }
    }
    for item in &mut select.projection {
        let _ = item.visit(&mut calls);
    }
    if let Some(having) = &mut select.having {
        let _ = having.visit(&mut calls);
    }
    Some(expanded)
}

/// A row whose time is NULL is in no window (Spark filters them out before grouping).
fn drop_rows_without_time(select: &mut Select, window: &Expr) {
    let Some(time) = (match window {
        Expr::Function(f) => plain_args(f).and_then(|args| args.into_iter().next()),
        _ => None,
    }) else {
        return;
    };
    let known = Expr::IsNotNull(Box::new(time));
    select.selection = Some(match select.selection.take() {
        Some(filter) => Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(filter))),
            op: BinaryOperator::And,
            right: Box::new(known),
        },
        None => known,
    });
}

/// Replaces every expression equal to `from` with `to`.
struct SameCall {
    from: Expr,
    to: Expr,
}

impl VisitorMut for SameCall {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        if *expr == self.from {
            *expr = self.to.clone();
        }
        ControlFlow::Continue(())
    }
}

fn is_window_call(expr: &Expr) -> bool {
    matches!(expr, Expr::Function(f) if is_window(f))
}

fn is_window(f: &Function) -> bool {
    function_name(f).is_some_and(|n| n.eq_ignore_ascii_case("window"))
}

/// Replaces `window` and `window.f` with the grouping expression (and its field `f`).
struct WindowNames {
    window: Expr,
}

impl VisitorMut for WindowNames {
    type Break = ();

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<()> {
        match expr {
            Expr::Identifier(ident) if ident.value.eq_ignore_ascii_case("window") => {
                *expr = self.window.clone();
            }
            Expr::CompoundIdentifier(parts)
                if parts.len() == 2 && parts[0].value.eq_ignore_ascii_case("window") =>
            {
                let field = parts[1].value.to_ascii_lowercase();
                *expr = call("get_field", vec![self.window.clone(), string(&field)]);
            }
            _ => {}
        }
        ControlFlow::Continue(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_names_become_the_grouping_expression() {
        let mut statement = crate::dialect::parse_statement(
            "SELECT window.start AS s, window, count(*) FROM t GROUP BY window(ts, '5 seconds'), id HAVING window.end > 0",
        )
        .unwrap();
        let _ = statement.visit(&mut TimeWindows);
        let text = statement.to_string();
        assert!(
            text.contains("get_field(window(ts, '5 seconds'), 'start') AS s"),
            "{text}"
        );
        assert!(
            text.contains("get_field(window(ts, '5 seconds'), 'end') > 0"),
            "{text}"
        );
        assert!(
            text.contains(", window(ts, '5 seconds'), count(*)"),
            "{text}"
        );
        assert!(
            text.contains("FROM t WHERE ts IS NOT NULL GROUP BY"),
            "{text}"
        );
    }

    #[test]
    fn sliding_windows_expand_each_row_into_its_windows() {
        let mut statement = crate::dialect::parse_statement(
            "SELECT window.start AS s, window(ts, '10 seconds', '5 seconds') AS w, count(*) FROM t GROUP BY window(ts, '10 seconds', '5 seconds')",
        )
        .unwrap();
        let _ = statement.visit(&mut TimeWindows);
        let text = statement.to_string();
        let window = "__lakeflow_sliding_window(__lakeflow_window_time, '10 seconds', '5 seconds')";
        assert!(
            text.contains("LATERAL VIEW explode(__lakeflow_window_starts(ts, '10 seconds', '5 seconds')) __lakeflow_windows AS __lakeflow_window_time"),
            "{text}"
        );
        assert!(
            text.contains(&format!("get_field({window}, 'start') AS s")),
            "{text}"
        );
        assert!(text.contains(&format!("{window} AS w")), "{text}");
        assert!(text.ends_with(&format!("GROUP BY {window}")), "{text}");
    }
}
