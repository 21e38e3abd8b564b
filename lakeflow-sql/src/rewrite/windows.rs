//! Spark's time windows as a select list reads them: with `GROUP BY window(ts, '5 minutes')`,
//! Spark names the grouping `window`, so `window.start`, `window.end` and `window` itself are
//! columns of the select list, `HAVING` and `ORDER BY`. DataFusion only knows the expression,
//! so each such name becomes the grouping expression (`window.start` is
//! `get_field(window(ts, '5 minutes'), 'start')`), which the planner then reads from the
//! aggregate's output. The `window` function itself is `functions::window`.

use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{Expr, Function, GroupByExpr, Select, VisitMut, VisitorMut};

use super::exprs::{call, function_name, string};

/// Rewrites the names `window` and `window.<field>` of every select grouped by a `window(..)`.
pub(crate) struct TimeWindows;

impl VisitorMut for TimeWindows {
    type Break = ();

    fn pre_visit_select(&mut self, select: &mut Select) -> ControlFlow<()> {
        let GroupByExpr::Expressions(keys, _) = &select.group_by else {
            return ControlFlow::Continue(());
        };
        let Some(window) = keys.iter().find(|k| is_window_call(k)).cloned() else {
            return ControlFlow::Continue(());
        };
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
    }
}
