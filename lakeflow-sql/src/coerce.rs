//! Spark's implicit conversions, on the planned statement (where types are known):
//! a string compared with a number, date or timestamp is cast to that type (`id != ""` on a
//! bigint is NULL, as in Spark, not a string comparison); `/` of integers is a division of
//! doubles; `div` is integral division; and, unless ANSI is on, dividing by zero gives NULL.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Cast, ExprSchemable, LogicalPlan, Operator, TryCast};
use datafusion::optimizer::analyzer::type_coercion::TypeCoercionRewriter;
use datafusion::prelude::{Expr, lit, nullif};

/// Applies Spark's conversions to every expression of `plan`.
pub(crate) fn spark_coercions(
    plan: LogicalPlan,
    ansi: bool,
    time_zone: &str,
) -> Result<LogicalPlan> {
    let converted = plan.transform_up_with_subqueries(|node| {
        if let LogicalPlan::Values(values) = &node {
            return int_values(values);
        }
        // The planner types a UNION as its first input; Spark (and DataFusion's analyzer,
        // later) widen to a type every input fits. Widen here, so that the schema the
        // pipeline stores is the one the rows have (an INT and a DOUBLE input: DOUBLE).
        if let LogicalPlan::Union(union) = node {
            let before = union.schema.clone();
            let widened = TypeCoercionRewriter::coerce_union(union)?;
            return Ok(if widened.schema().as_ref() == before.as_ref() {
                Transformed::no(widened)
            } else {
                Transformed::yes(widened)
            });
        }
        let inputs = node.inputs();
        if inputs.is_empty() || matches!(node, LogicalPlan::Limit(_)) {
            return Ok(Transformed::no(node));
        }
        let mut schema = DFSchema::empty();
        for input in inputs {
            schema.merge(input.schema());
        }
        // Nodes whose output columns are named after their expressions keep those names, so
        // the nodes above, which refer to them by name, still find them.
        let keeps_names = matches!(
            node,
            LogicalPlan::Projection(_) | LogicalPlan::Aggregate(_) | LogicalPlan::Window(_)
        );
        let rewritten = node.map_expressions(|e| {
            let name = keeps_names.then(|| e.name_for_alias()).transpose()?;
            let out = e.transform_up(|e| rewrite(e, &schema, ansi, time_zone))?;
            match name {
                Some(name) if out.transformed && !matches!(out.data, Expr::Alias(_)) => {
                    Ok(Transformed::yes(out.data.alias(name)))
                }
                _ => Ok(out),
            }
        })?;
        if rewritten.transformed {
            Ok(Transformed::yes(rewritten.data.recompute_schema()?))
        } else {
            Ok(rewritten)
        }
    })?;
    if !converted.transformed {
        return Ok(converted.data);
    }
    // A changed input type (a narrowed VALUES column) changes the schemas above it.
    converted
        .data
        .transform_up_with_subqueries(|node| Ok(Transformed::yes(node.recompute_schema()?)))
        .map(|t| t.data)
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

/// Whether Spark casts a string compared with this type to it.
fn string_compares_as(t: &DataType) -> bool {
    t.is_numeric()
        || matches!(
            t,
            DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) | DataType::Boolean
        )
}

fn convert(expr: Expr, to: DataType, ansi: bool) -> Expr {
    if ansi {
        Expr::Cast(Cast::new(Box::new(expr), to))
    } else {
        Expr::TryCast(TryCast::new(Box::new(expr), to))
    }
}

fn zero_is_null(expr: Expr, ansi: bool) -> Expr {
    if ansi {
        expr
    } else {
        nullif(expr, lit(ScalarValue::Int8(Some(0))))
    }
}

fn rewrite(
    expr: Expr,
    schema: &DFSchema,
    ansi: bool,
    time_zone: &str,
) -> Result<Transformed<Expr>> {
    // Spark types an integer literal that fits as INT (DataFusion: BIGINT).
    if let Expr::Literal(ScalarValue::Int64(Some(v)), metadata) = &expr
        && let Ok(v) = i32::try_from(*v)
    {
        return Ok(Transformed::yes(Expr::Literal(
            ScalarValue::Int32(Some(v)),
            metadata.clone(),
        )));
    }
    // A timestamp as text, as Spark writes it (`2024-01-02 03:04:05.5`), in the session zone.
    if let Expr::Cast(Cast { expr: inner, field }) | Expr::TryCast(TryCast { expr: inner, field }) =
        &expr
        && is_string(field.data_type())
        && matches!(inner.get_type(schema), Ok(DataType::Timestamp(..)))
    {
        let udf = crate::functions::udf(crate::functions::Kind::TimestampString);
        return Ok(Transformed::yes(
            udf.call(vec![(**inner).clone(), lit(time_zone)]),
        ));
    }
    // A double or float as text, as Spark (Java) writes it: `1.0E10`, `100.0`, `Infinity`.
    if let Expr::Cast(Cast { expr: inner, field }) | Expr::TryCast(TryCast { expr: inner, field }) =
        &expr
        && is_string(field.data_type())
        && matches!(
            inner.get_type(schema),
            Ok(DataType::Float64 | DataType::Float32)
        )
    {
        let udf = datafusion::logical_expr::ScalarUDF::from(
            crate::functions::double_text::SparkDoubleString::new(),
        );
        let text = udf.call(vec![(**inner).clone()]);
        // The cast's own string type (Utf8View, LargeUtf8) is kept.
        return Ok(Transformed::yes(if field.data_type() == &DataType::Utf8 {
            text
        } else {
            Expr::Cast(Cast::new(Box::new(text), field.data_type().clone()))
        }));
    }
    // Strings cast as Spark casts them.
    let string_cast = match &expr {
        Expr::Cast(Cast { expr: inner, field }) => Some((inner, field.data_type(), ansi)),
        Expr::TryCast(TryCast { expr: inner, field }) => Some((inner, field.data_type(), false)),
        _ => None,
    };
    // Numbers and timestamps convert through seconds since the epoch, as in Spark (Arrow
    // reads the number as the timestamp's own unit).
    if let Some((inner, to, strict)) = string_cast
        && let Ok(from) = inner.get_type(schema)
    {
        let micros = DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None);
        if matches!(to, DataType::Timestamp(..)) && from.is_numeric() {
            let scaled = Expr::BinaryExpr(BinaryExpr::new(
                Box::new(convert((**inner).clone(), DataType::Float64, true)),
                Operator::Multiply,
                Box::new(lit(1_000_000f64)),
            ));
            let us = convert(convert(scaled, DataType::Int64, strict), micros, true);
            return Ok(Transformed::yes(convert(us, to.clone(), true)));
        }
        if matches!(from, DataType::Timestamp(..)) && (to.is_integer() || to.is_floating()) {
            let us = convert(
                convert((**inner).clone(), micros, true),
                DataType::Int64,
                true,
            );
            let seconds = if to.is_integer() {
                // Whole seconds, rounded down as Spark does for instants before 1970 too.
                Expr::ScalarFunction(datafusion::logical_expr::expr::ScalarFunction::new_udf(
                    datafusion::functions::math::floor(),
                    vec![Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(convert(us, DataType::Float64, true)),
                        Operator::Divide,
                        Box::new(lit(1_000_000f64)),
                    ))],
                ))
            } else {
                Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(convert(us, DataType::Float64, true)),
                    Operator::Divide,
                    Box::new(lit(1_000_000f64)),
                ))
            };
            return Ok(Transformed::yes(convert(seconds, to.clone(), strict)));
        }
    }
    if let Some((inner, to, strict)) = string_cast
        && crate::functions::cast::casts_string_to(to)
        && inner.get_type(schema).is_ok_and(|t| is_string(&t))
        && let Some(udf) = spark_cast_string()
    {
        let name = crate::functions::spark_type_name(to);
        return Ok(Transformed::yes(udf.call(vec![
            (**inner).clone(),
            lit(name),
            lit(strict),
        ])));
    }
    // round(double, d): Spark rounds half up on the decimal form.
    if let Expr::ScalarFunction(f) = &expr
        && f.func.name() == "round"
        && f.args.first().is_some_and(|a| {
            a.get_type(schema)
                .is_ok_and(|t| matches!(t, DataType::Float64 | DataType::Float32))
        })
    {
        let udf = crate::functions::udf(crate::functions::Kind::RoundDouble);
        return Ok(Transformed::yes(udf.call(f.args.clone())));
    }
    let Expr::BinaryExpr(BinaryExpr { left, op, right }) = &expr else {
        return Ok(Transformed::no(expr));
    };
    let (Ok(lt), Ok(rt)) = (left.get_type(schema), right.get_type(schema)) else {
        return Ok(Transformed::no(expr));
    };
    let binary = |l: Expr, op: Operator, r: Expr| {
        Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(l),
            op,
            Box::new(r),
        )))
    };
    if let Some(result) = decimal_result(left, &lt, *op, right, &rt) {
        let to = DataType::Decimal128(result.0, result.1);
        let exact = match op {
            // Spark's quotient is rounded to its result scale; DataFusion's decimal division
            // keeps fewer digits, so divide as doubles and round to Spark's type.
            Operator::Divide => Expr::BinaryExpr(BinaryExpr::new(
                Box::new(convert(*left.clone(), DataType::Float64, true)),
                Operator::Divide,
                Box::new(zero_is_null(
                    convert(*right.clone(), DataType::Float64, true),
                    ansi,
                )),
            )),
            Operator::Modulo => Expr::BinaryExpr(BinaryExpr::new(
                left.clone(),
                Operator::Modulo,
                Box::new(zero_is_null(*right.clone(), ansi)),
            )),
            _ => expr.clone(),
        };
        return Ok(Transformed::yes(convert(exact, to, ansi)));
    }
    Ok(match op {
        Operator::Eq
        | Operator::NotEq
        | Operator::Lt
        | Operator::LtEq
        | Operator::Gt
        | Operator::GtEq
        | Operator::IsDistinctFrom
        | Operator::IsNotDistinctFrom => {
            if is_string(&lt) && string_compares_as(&rt) {
                binary(convert(*left.clone(), rt, ansi), *op, *right.clone())
            } else if is_string(&rt) && string_compares_as(&lt) {
                binary(*left.clone(), *op, convert(*right.clone(), lt, ansi))
            } else {
                Transformed::no(expr)
            }
        }
        Operator::Divide => {
            let (l, r) = if is_integer(&lt) && is_integer(&rt) {
                (
                    convert(*left.clone(), DataType::Float64, true),
                    convert(*right.clone(), DataType::Float64, true),
                )
            } else {
                (*left.clone(), *right.clone())
            };
            if ansi && !(is_integer(&lt) && is_integer(&rt)) {
                return Ok(Transformed::no(expr));
            }
            binary(l, Operator::Divide, zero_is_null(r, ansi))
        }
        Operator::Modulo if !ansi => binary(
            *left.clone(),
            Operator::Modulo,
            zero_is_null(*right.clone(), ansi),
        ),
        Operator::IntegerDivide => {
            let quotient = if is_integer(&lt) && is_integer(&rt) {
                Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(convert(*left.clone(), DataType::Int64, true)),
                    Operator::Divide,
                    Box::new(zero_is_null(
                        convert(*right.clone(), DataType::Int64, true),
                        ansi,
                    )),
                ))
            } else {
                Expr::BinaryExpr(BinaryExpr::new(
                    Box::new(convert(*left.clone(), DataType::Float64, true)),
                    Operator::Divide,
                    Box::new(zero_is_null(
                        convert(*right.clone(), DataType::Float64, true),
                        ansi,
                    )),
                ))
            };
            Transformed::yes(convert(quotient, DataType::Int64, true))
        }
        _ => Transformed::no(expr),
    })
}

fn spark_cast_string() -> Option<datafusion::logical_expr::ScalarUDF> {
    Some(crate::functions::udf(crate::functions::Kind::CastString))
}

/// `VALUES (1), (2)`: Spark types a column of integer literals that fit as INT.
fn int_values(values: &datafusion::logical_expr::Values) -> Result<Transformed<LogicalPlan>> {
    let width = values.schema.fields().len();
    let fits = |e: &Expr| match e {
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => i32::try_from(*v).is_ok(),
        Expr::Literal(ScalarValue::Int64(None) | ScalarValue::Null, _) => true,
        _ => false,
    };
    let narrow: Vec<bool> = (0..width)
        .map(|i| {
            values.schema.field(i).data_type() == &DataType::Int64
                && values.values.iter().all(|row| row.get(i).is_some_and(fits))
        })
        .collect();
    if !narrow.contains(&true) {
        return Ok(Transformed::no(LogicalPlan::Values(values.clone())));
    }
    let rows: Vec<Vec<Expr>> = values
        .values
        .iter()
        .map(|row| {
            row.iter()
                .enumerate()
                .map(|(i, e)| match e {
                    Expr::Literal(ScalarValue::Int64(v), m) if narrow[i] => {
                        Expr::Literal(ScalarValue::Int32(v.map(|v| v as i32)), m.clone())
                    }
                    other => other.clone(),
                })
                .collect()
        })
        .collect();
    let mut fields: Vec<datafusion::arrow::datatypes::Field> = Vec::with_capacity(width);
    for (i, f) in values.schema.fields().iter().enumerate() {
        let t = if narrow[i] {
            DataType::Int32
        } else {
            f.data_type().clone()
        };
        fields.push(f.as_ref().clone().with_data_type(t));
    }
    let qualified: Vec<_> = values
        .schema
        .iter()
        .zip(fields)
        .map(|((q, _), f)| (q.cloned(), std::sync::Arc::new(f)))
        .collect();
    let schema = DFSchema::new_with_metadata(qualified, values.schema.metadata().clone())?;
    Ok(Transformed::yes(LogicalPlan::Values(
        datafusion::logical_expr::Values {
            schema: std::sync::Arc::new(schema),
            values: rows,
        },
    )))
}

/// The precision and scale Spark gives a decimal operand: integers as decimals of their
/// width (an integer literal of its digits), `None` for other types.
fn decimal_of(expr: &Expr, t: &DataType) -> Option<(u8, i8)> {
    if let Expr::Literal(ScalarValue::Int32(Some(v)), _) = expr_int(expr)? {
        let digits = v.unsigned_abs().to_string().len() as u8;
        return Some((digits, 0));
    }
    Some(match t {
        DataType::Decimal128(p, s) => (*p, *s),
        DataType::Int8 => (3, 0),
        DataType::Int16 => (5, 0),
        DataType::Int32 => (10, 0),
        DataType::Int64 => (20, 0),
        _ => return None,
    })
}

/// An integer literal as an `Int32` literal (for its digits), or the expression itself.
fn expr_int(expr: &Expr) -> Option<Expr> {
    Some(match expr {
        Expr::Literal(ScalarValue::Int32(Some(v)), m) => {
            Expr::Literal(ScalarValue::Int32(Some(*v)), m.clone())
        }
        Expr::Literal(ScalarValue::Int64(Some(v)), m) => match i32::try_from(*v) {
            Ok(v) => Expr::Literal(ScalarValue::Int32(Some(v)), m.clone()),
            Err(_) => expr.clone(),
        },
        Expr::Literal(ScalarValue::Int8(Some(v)), m) => {
            Expr::Literal(ScalarValue::Int32(Some(*v as i32)), m.clone())
        }
        _ => expr.clone(),
    })
}

/// Spark's result type of decimal arithmetic (`DecimalPrecision`, with precision loss allowed),
/// when at least one operand is a decimal and neither is a float.
fn decimal_result(
    left: &Expr,
    lt: &DataType,
    op: Operator,
    right: &Expr,
    rt: &DataType,
) -> Option<(u8, i8)> {
    if !matches!(lt, DataType::Decimal128(..)) && !matches!(rt, DataType::Decimal128(..)) {
        return None;
    }
    let (p1, s1) = decimal_of(left, lt)?;
    let (p2, s2) = decimal_of(right, rt)?;
    let (p1, s1, p2, s2) = (p1 as i32, s1 as i32, p2 as i32, s2 as i32);
    let (p, s) = match op {
        Operator::Plus | Operator::Minus => {
            let s = s1.max(s2);
            ((p1 - s1).max(p2 - s2) + s + 1, s)
        }
        Operator::Multiply => (p1 + p2 + 1, s1 + s2),
        Operator::Divide => {
            let s = 6.max(s1 + p2 + 1);
            (p1 - s1 + s2 + s, s)
        }
        Operator::Modulo => {
            let s = s1.max(s2);
            ((p1 - s1).min(p2 - s2) + s, s)
        }
        _ => return None,
    };
    let (p, s) = if p > 38 {
        let int_digits = p - s;
        let min_scale = s.min(6);
        (38, (38 - int_digits).max(min_scale))
    } else {
        (p, s)
    };
    Some((p.clamp(1, 38) as u8, s.clamp(0, 38) as i8))
}
