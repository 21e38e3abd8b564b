//! Field access as Spark has it: `a.f` where `a` is an array of structs is the array of each
//! element's `f` (DataFusion only reads fields of a struct). An `ExprPlanner` that the
//! statement's planner asks before DataFusion's own.

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{Column, DFSchema, Result, TableReference};
use datafusion::logical_expr::planner::{ExprPlanner, PlannerResult, RawFieldAccessExpr};
use datafusion::logical_expr::{ExprSchemable, GetFieldAccess};
use datafusion::prelude::{Expr, lit};

use crate::functions::{Kind, udf};

/// Plans `array_of_structs.field`.
#[derive(Debug, Default)]
pub(crate) struct SparkFieldPlanner;

fn is_list_of_structs(t: &DataType) -> bool {
    matches!(t, DataType::List(f) | DataType::LargeList(f) if matches!(f.data_type(), DataType::Struct(_)))
}

/// `expr.name` over `t`: a struct field, or the array of it when `t` is an array of structs.
fn access(expr: Expr, t: &DataType, name: &str) -> Option<(Expr, DataType)> {
    match t {
        DataType::Struct(fields) => {
            let field = fields
                .iter()
                .find(|f| f.name().eq_ignore_ascii_case(name))?;
            let got = datafusion::functions::core::expr_fn::get_field(expr, field.name().as_str());
            Some((got, field.data_type().clone()))
        }
        DataType::List(item) | DataType::LargeList(item) => {
            let DataType::Struct(fields) = item.data_type() else {
                return None;
            };
            let field = fields
                .iter()
                .find(|f| f.name().eq_ignore_ascii_case(name))?;
            let out = DataType::List(std::sync::Arc::new(Field::new_list_field(
                field.data_type().clone(),
                true,
            )));
            Some((
                udf(Kind::ArrayField).call(vec![expr, lit(field.name().as_str())]),
                out,
            ))
        }
        _ => None,
    }
}

impl ExprPlanner for SparkFieldPlanner {
    fn plan_compound_identifier(
        &self,
        field: &Field,
        qualifier: Option<&TableReference>,
        nested_names: &[String],
    ) -> Result<PlannerResult<Vec<Expr>>> {
        let mut t = field.data_type().clone();
        let mut list_seen = false;
        let mut expr = Expr::Column(Column::from((qualifier, field)));
        for name in nested_names {
            list_seen |= is_list_of_structs(&t);
            let Some((next, next_type)) = access(expr, &t, name) else {
                return Ok(PlannerResult::Original(vec![]));
            };
            expr = next;
            t = next_type;
        }
        if !list_seen {
            return Ok(PlannerResult::Original(vec![]));
        }
        Ok(PlannerResult::Planned(expr))
    }

    fn plan_field_access(
        &self,
        raw: RawFieldAccessExpr,
        schema: &DFSchema,
    ) -> Result<PlannerResult<RawFieldAccessExpr>> {
        let GetFieldAccess::NamedStructField { name } = &raw.field_access else {
            return Ok(PlannerResult::Original(raw));
        };
        let Ok(t) = raw.expr.get_type(schema) else {
            return Ok(PlannerResult::Original(raw));
        };
        if !is_list_of_structs(&t) {
            return Ok(PlannerResult::Original(raw));
        }
        let name = name.to_string();
        match access(raw.expr.clone(), &t, &name) {
            Some((expr, _)) => Ok(PlannerResult::Planned(expr)),
            None => Ok(PlannerResult::Original(raw)),
        }
    }
}
