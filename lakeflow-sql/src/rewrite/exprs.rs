//! Expressions as Spark means them, rewritten into what DataFusion plans the same way:
//! Spark's function names and forms (`int(x)`, `first(x, true)`, `DATEDIFF(MINUTE, a, b)`,
//! 2-argument `replace`, `explode`), casts that give NULL instead of failing unless ANSI is
//! on, Databricks' `:` JSON paths, and Spark's type names.

use std::ops::ControlFlow;

use datafusion::common::{DataFusionError, plan_datafusion_err};
use datafusion::sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, CastKind, DataType, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArgumentList, FunctionArguments, Ident, JsonPath, JsonPathElem,
    NullTreatment, ObjectName, ObjectNamePart, OrderByExpr, OrderByOptions, Subscript, Value,
    VisitorMut,
};

/// Rewrites every expression of a statement, bottom-up.
pub(crate) struct SparkExprs {
    /// `spark.sql.ansi.enabled`: failed casts are errors instead of NULL.
    pub ansi: bool,
}

impl VisitorMut for SparkExprs {
    type Break = DataFusionError;

    fn post_visit_expr(&mut self, expr: &mut Expr) -> ControlFlow<DataFusionError> {
        // A function named with its catalog and schema (`main.sales.date_key(d)`, a Unity
        // Catalog function) is the function of that name: functions belong to no schema here.
        if let Expr::Function(f) = expr
            && f.name.0.len() > 1
            && let Some(last) = f.name.0.pop()
        {
            f.name.0 = vec![last];
        }
        match rewrite(expr, self.ansi) {
            Ok(Some(new)) => *expr = new,
            Ok(None) => {}
            Err(e) => return ControlFlow::Break(e),
        }
        ControlFlow::Continue(())
    }
}

/// The Spark type names sqlparser leaves as custom types.
pub(crate) fn spark_type(data_type: &DataType) -> Option<DataType> {
    match data_type {
        DataType::Binary(_) | DataType::Varbinary(_) => return Some(DataType::Bytea),
        DataType::Dec(info) => return Some(DataType::Decimal(*info)),
        _ => {}
    }
    let DataType::Custom(name, modifiers) = data_type else {
        return None;
    };
    if !modifiers.is_empty() || name.0.len() != 1 {
        return None;
    }
    let name = name.0[0].as_ident()?.value.to_ascii_lowercase();
    Some(match name.as_str() {
        "long" => DataType::BigInt(None),
        "short" => DataType::SmallInt(None),
        "byte" => DataType::TinyInt(None),
        _ => return None,
    })
}

fn rewrite(expr: &mut Expr, ansi: bool) -> Result<Option<Expr>, DataFusionError> {
    Ok(match expr {
        Expr::Cast {
            kind, data_type, ..
        } => {
            if let Some(t) = spark_type(data_type) {
                *data_type = t;
            }
            if !ansi && matches!(kind, CastKind::Cast | CastKind::DoubleColon) {
                *kind = CastKind::TryCast;
            }
            None
        }
        Expr::JsonAccess { .. } => Some(json_access(expr)?),
        // `struct('a', 'b')`, which sqlparser reads as a struct literal.
        Expr::Struct { values, fields } if fields.is_empty() => Some(spark_struct(values)),
        Expr::BinaryOp {
            left,
            op: BinaryOperator::MyIntegerDivide,
            right,
        } => {
            // `a div b`: the integral part of the quotient, a bigint (`/` is planned as
            // Spark's division of doubles, so this truncates that).
            let quotient = Expr::BinaryOp {
                left: left.clone(),
                op: BinaryOperator::Divide,
                right: right.clone(),
            };
            Some(Expr::Cast {
                kind: CastKind::TryCast,
                expr: Box::new(Expr::Nested(Box::new(quotient))),
                data_type: DataType::BigInt(None),
                array: false,
                format: None,
            })
        }
        Expr::RLike {
            negated,
            expr: value,
            pattern,
            ..
        } => {
            let call = call("regexp_like", vec![(**value).clone(), (**pattern).clone()]);
            Some(if *negated {
                Expr::UnaryOp {
                    op: datafusion::sql::sqlparser::ast::UnaryOperator::Not,
                    expr: Box::new(call),
                }
            } else {
                call
            })
        }
        Expr::CompoundFieldAccess { root, access_chain } => {
            // `(expr).field` as `(expr)['field']`, which DataFusion plans as a field access.
            for access in access_chain.iter_mut() {
                if let AccessExpr::Dot(Expr::Identifier(ident)) = access {
                    *access = AccessExpr::Subscript(Subscript::Index {
                        index: string(&ident.value),
                    });
                }
            }
            // `x[i]` with an index that is not a field name: Spark's subscript (arrays count
            // from 0), which `spark_subscript` gives once the type of `x` is known.
            let positional = |a: &AccessExpr| matches!(a, AccessExpr::Subscript(Subscript::Index { index }) if !is_string_literal(index));
            if access_chain.iter().any(positional) {
                let mut acc = (**root).clone();
                for access in access_chain.iter() {
                    acc = match access {
                        AccessExpr::Subscript(Subscript::Index { index }) if positional(access) => {
                            call("spark_subscript", vec![acc, index.clone()])
                        }
                        other => Expr::CompoundFieldAccess {
                            root: Box::new(acc),
                            access_chain: vec![other.clone()],
                        },
                    };
                }
                Some(acc)
            } else {
                None
            }
        }
        Expr::Function(f) => function(f, ansi)?,
        _ => None,
    })
}

/// `value:a.b[0]` (nested for `value:a:b`) as `get_json_object(value, '$.a.b[0]')`.
fn json_access(expr: &Expr) -> Result<Expr, DataFusionError> {
    let mut elems: Vec<&JsonPathElem> = Vec::new();
    let mut value = expr;
    let mut paths: Vec<&JsonPath> = Vec::new();
    while let Expr::JsonAccess { value: inner, path } = value {
        paths.push(path);
        value = inner;
    }
    for path in paths.into_iter().rev() {
        elems.extend(path.path.iter());
    }
    let mut text = String::from("$");
    for elem in elems {
        match elem {
            JsonPathElem::Dot { key, .. } => {
                text.push('.');
                text.push_str(key);
            }
            JsonPathElem::Bracket { key } | JsonPathElem::ColonBracket { key } => match key {
                Expr::Value(v) => match &v.value {
                    Value::Number(n, _) => text.push_str(&format!("[{n}]")),
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                        text.push_str(&format!("['{s}']"))
                    }
                    other => {
                        return Err(plan_datafusion_err!(
                            "the JSON path element [{other}] is not supported; use a number or a quoted key"
                        ));
                    }
                },
                Expr::Wildcard(_) => text.push_str("[*]"),
                other => {
                    return Err(plan_datafusion_err!(
                        "the JSON path element [{other}] is not supported; use a number or a quoted key"
                    ));
                }
            },
        }
    }
    Ok(call("get_json_object", vec![value.clone(), string(&text)]))
}

/// The function's lower-case name when it is a plain one-part name.
pub(crate) fn function_name(f: &Function) -> Option<String> {
    match f.name.0.as_slice() {
        [ObjectNamePart::Identifier(ident)] => Some(ident.value.to_ascii_lowercase()),
        _ => None,
    }
}

/// The plain positional argument expressions of a call, if all are.
pub(crate) fn plain_args(f: &Function) -> Option<Vec<Expr>> {
    let FunctionArguments::List(list) = &f.args else {
        return matches!(f.args, FunctionArguments::None).then(Vec::new);
    };
    list.args
        .iter()
        .map(|a| match a {
            FunctionArg::Unnamed(FunctionArgExpr::Expr(e)) => Some(e.clone()),
            _ => None,
        })
        .collect()
}

fn set_args(f: &mut Function, args: Vec<Expr>) {
    let (duplicate_treatment, clauses) = match &f.args {
        FunctionArguments::List(list) => (list.duplicate_treatment, list.clauses.clone()),
        _ => (None, Vec::new()),
    };
    f.args = FunctionArguments::List(FunctionArgumentList {
        duplicate_treatment,
        args: args
            .into_iter()
            .map(|e| FunctionArg::Unnamed(FunctionArgExpr::Expr(e)))
            .collect(),
        clauses,
    });
}

fn rename(f: &mut Function, name: &str) {
    f.name = ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]);
}

/// `x` with a NULL or empty array made `[NULL]`: what `explode_outer` and `LATERAL VIEW OUTER`
/// explode, so that such a row gives one row with NULL instead of none.
pub(crate) fn outer_array(x: Expr) -> Expr {
    let present = call("coalesce", vec![x, call("make_array", Vec::new())]);
    let size = call("cardinality", vec![present.clone()]);
    let one = Expr::value(Value::Number("1".into(), false));
    let at_least_one = Expr::Cast {
        kind: datafusion::sql::sqlparser::ast::CastKind::Cast,
        expr: Box::new(call("greatest", vec![size, one])),
        data_type: datafusion::sql::sqlparser::ast::DataType::BigInt(None),
        array: false,
        format: None,
    };
    call("array_resize", vec![present, at_least_one])
}

pub(crate) fn call(name: &str, args: Vec<Expr>) -> Expr {
    let mut f = Function {
        name: ObjectName(vec![ObjectNamePart::Identifier(Ident::new(name))]),
        uses_odbc_syntax: false,
        parameters: FunctionArguments::None,
        args: FunctionArguments::None,
        filter: None,
        null_treatment: None,
        over: None,
        within_group: Vec::new(),
    };
    set_args(&mut f, args);
    Expr::Function(f)
}

pub(crate) fn string(s: &str) -> Expr {
    Expr::value(Value::SingleQuotedString(s.to_string()))
}

fn cast(expr: Expr, data_type: DataType, ansi: bool) -> Expr {
    Expr::Cast {
        kind: if ansi {
            CastKind::Cast
        } else {
            CastKind::TryCast
        },
        expr: Box::new(expr),
        data_type,
        array: false,
        format: None,
    }
}

/// A unit written as a bare word (`MINUTE`) or a string (`'minute'`).
fn unit_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Identifier(i) => Some(i.value.to_ascii_uppercase()),
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                Some(s.to_ascii_uppercase())
            }
            _ => None,
        },
        _ => None,
    }
}

fn is_true(expr: &Expr) -> bool {
    matches!(expr, Expr::Value(v) if v.value == Value::Boolean(true))
}

fn is_string_literal(expr: &Expr) -> bool {
    matches!(
        expr,
        Expr::Value(v) if matches!(v.value, Value::SingleQuotedString(_) | Value::DoubleQuotedString(_))
    )
}

/// Spark's `struct(..)`: its fields are named after the columns given, else col1, col2, ..
fn spark_struct(args: &[Expr]) -> Expr {
    let mut named = Vec::with_capacity(args.len() * 2);
    for (i, arg) in args.iter().enumerate() {
        let field = match arg {
            Expr::Identifier(id) => id.value.clone(),
            Expr::CompoundIdentifier(parts) => {
                parts.last().map(|p| p.value.clone()).unwrap_or_default()
            }
            Expr::Named { name, .. } => name.value.clone(),
            _ => format!("col{}", i + 1),
        };
        let value = match arg {
            Expr::Named { expr, .. } => (**expr).clone(),
            other => other.clone(),
        };
        named.push(string(&field));
        named.push(value);
    }
    call("named_struct", named)
}

fn function(f: &mut Function, ansi: bool) -> Result<Option<Expr>, DataFusionError> {
    let Some(name) = function_name(f) else {
        return Ok(None);
    };
    let Some(args) = plain_args(f) else {
        return Ok(None);
    };
    // Spark's casting functions: int(x), double(x), date(x), ...
    let cast_to = match name.as_str() {
        "int" | "integer" => Some(DataType::Int(None)),
        "bigint" | "long" => Some(DataType::BigInt(None)),
        "smallint" | "short" => Some(DataType::SmallInt(None)),
        "tinyint" | "byte" => Some(DataType::TinyInt(None)),
        "double" => Some(DataType::Double(
            datafusion::sql::sqlparser::ast::ExactNumberInfo::None,
        )),
        "float" | "real" => Some(DataType::Float(
            datafusion::sql::sqlparser::ast::ExactNumberInfo::None,
        )),
        "boolean" => Some(DataType::Boolean),
        "string" => Some(DataType::String(None)),
        "binary" => Some(DataType::Binary(None)),
        "date" => Some(DataType::Date),
        "timestamp" => Some(DataType::Timestamp(
            None,
            datafusion::sql::sqlparser::ast::TimezoneInfo::None,
        )),
        "decimal" => Some(DataType::Decimal(
            datafusion::sql::sqlparser::ast::ExactNumberInfo::PrecisionAndScale(10, 0),
        )),
        _ => None,
    };
    if let Some(data_type) = cast_to
        && args.len() == 1
        && f.over.is_none()
    {
        return Ok(Some(cast(args[0].clone(), data_type, ansi)));
    }
    match (name.as_str(), args.len()) {
        ("to_date", 1) => return Ok(Some(cast(args[0].clone(), DataType::Date, ansi))),
        ("to_timestamp", 1) => {
            return Ok(Some(cast(
                args[0].clone(),
                DataType::Timestamp(None, datafusion::sql::sqlparser::ast::TimezoneInfo::None),
                ansi,
            )));
        }
        // first(x, ignoreNulls) / last(x, ignoreNulls)
        ("first" | "last" | "first_value" | "last_value", 2) => {
            let target = if name.starts_with("first") {
                "first_value"
            } else {
                "last_value"
            };
            let ignore_nulls = is_true(&args[1]);
            rename(f, target);
            set_args(f, vec![args[0].clone()]);
            if ignore_nulls {
                f.null_treatment = Some(NullTreatment::IgnoreNulls);
            }
        }
        ("first", 1) => rename(f, "first_value"),
        ("last", 1) => rename(f, "last_value"),
        ("min_by" | "max_by", 2) => {
            // The value at the row with the smallest (largest) ordering value; rows whose
            // ordering value is NULL are not considered, as in Spark.
            rename(f, "first_value");
            set_args(f, vec![args[0].clone()]);
            let FunctionArguments::List(list) = &mut f.args else {
                unreachable!("set_args makes a list");
            };
            list.clauses
                .push(FunctionArgumentClause::OrderBy(vec![OrderByExpr {
                    expr: args[1].clone(),
                    options: OrderByOptions {
                        asc: Some(name == "min_by"),
                        nulls_first: Some(false),
                    },
                    with_fill: None,
                }]));
        }
        ("explode", 1) => rename(f, "unnest"),
        ("explode_outer", 1) => {
            rename(f, "unnest");
            set_args(f, vec![outer_array(args[0].clone())]);
        }
        ("regexp_replace", 3) => {
            // Spark replaces every match, with Java's `$1` groups and `\$` for a dollar.
            let replacement = match &args[2] {
                Expr::Value(v) => match &v.value {
                    Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => {
                        string(&s.replace("\\$", "$$").replace("\\\\", "\\"))
                    }
                    _ => args[2].clone(),
                },
                other => other.clone(),
            };
            set_args(
                f,
                vec![args[0].clone(), args[1].clone(), replacement, string("g")],
            );
        }
        ("variance", 1) => rename(f, "var_samp"),
        ("approx_count_distinct", 1) => rename(f, "approx_distinct"),
        ("sign", 1) => rename(f, "signum"),
        ("to_unix_timestamp", _) => rename(f, "unix_timestamp"),
        ("try_to_timestamp" | "to_timestamp_ntz" | "to_timestamp_ltz", _) => {
            rename(f, "to_timestamp")
        }
        ("try_to_date", _) => rename(f, "to_date"),
        ("timestamp_seconds", 1) => rename(f, "to_timestamp_seconds"),
        ("timestamp_millis", 1) => rename(f, "to_timestamp_millis"),
        ("timestamp_micros", 1) => rename(f, "to_timestamp_micros"),
        ("date_from_unix_date", 1) => return Ok(Some(cast(args[0].clone(), DataType::Date, ansi))),
        ("try_element_at", 2) => rename(f, "element_at"),
        // datafusion-spark's date functions take a DATE and an INT; Spark casts to them.
        ("date_add" | "date_sub" | "add_months", 2) => {
            set_args(
                f,
                vec![
                    cast(args[0].clone(), DataType::Date, ansi),
                    cast(args[1].clone(), DataType::Int(None), ansi),
                ],
            );
        }
        ("last_day" | "next_day", 1 | 2) => {
            let mut new = args.clone();
            new[0] = cast(args[0].clone(), DataType::Date, ansi);
            set_args(f, new);
        }
        ("hour" | "minute" | "second", 1) => {
            set_args(
                f,
                vec![cast(
                    args[0].clone(),
                    DataType::Timestamp(None, datafusion::sql::sqlparser::ast::TimezoneInfo::None),
                    ansi,
                )],
            );
        }
        ("date_trunc", 2) => {
            set_args(
                f,
                vec![
                    args[0].clone(),
                    cast(
                        args[1].clone(),
                        DataType::Timestamp(
                            None,
                            datafusion::sql::sqlparser::ast::TimezoneInfo::None,
                        ),
                        ansi,
                    ),
                ],
            );
        }
        // The file a row was read from: Databricks' `_metadata.file_path`.
        ("input_file_name", 0) => {
            return Ok(Some(Expr::CompoundIdentifier(vec![
                Ident::new("_metadata"),
                Ident::new("file_path"),
            ])));
        }
        ("listagg", _) => rename(f, "string_agg"),
        ("dayname", 1) => {
            return Ok(Some(call(
                "date_format",
                vec![args[0].clone(), string("EEE")],
            )));
        }
        ("startswith", 2) => rename(f, "starts_with"),
        ("rlike" | "regexp", 2) => rename(f, "regexp_like"),
        ("endswith", 2) => rename(f, "ends_with"),
        ("equal_null", 2) => {
            return Ok(Some(Expr::IsNotDistinctFrom(
                Box::new(args[0].clone()),
                Box::new(args[1].clone()),
            )));
        }
        ("try_divide", 2) => {
            let divisor = call(
                "nullif",
                vec![
                    args[1].clone(),
                    Expr::value(Value::Number("0".into(), false)),
                ],
            );
            return Ok(Some(Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(args[0].clone()),
                op: BinaryOperator::Divide,
                right: Box::new(divisor),
            }))));
        }
        ("percentile_approx" | "approx_percentile", 2 | 3) => {
            // Spark's percentile_approx returns a value of the column: the one at rank
            // ceil(p * n) of the sorted non-NULL values (its sketch is exact below 10,000
            // values per group, and within 1/10,000 of the rank above).
            let value = args[0].clone();
            let at = |p: Expr| percentile_at(value.clone(), p);
            if let Expr::Function(list) = &args[1]
                && function_name(list).as_deref() == Some("array")
            {
                let each = plain_args(list)
                    .unwrap_or_default()
                    .into_iter()
                    .map(at)
                    .collect();
                return Ok(Some(call("make_array", each)));
            }
            return Ok(Some(at(args[1].clone())));
        }
        ("sequence", 2 | 3) => rename(f, "generate_series"),
        ("replace", 2) => set_args(f, vec![args[0].clone(), args[1].clone(), string("")]),
        ("len" | "char_length" | "character_length", 1) => rename(f, "length"),
        ("dayofmonth", 1) => rename(f, "day"),
        ("ucase", 1) => rename(f, "upper"),
        ("lcase", 1) => rename(f, "lower"),
        ("every", 1) => rename(f, "bool_and"),
        ("some" | "any", 1) => rename(f, "bool_or"),
        ("std", 1) => rename(f, "stddev"),
        ("locate" | "position", 2) => {
            rename(f, "strpos");
            set_args(f, vec![args[1].clone(), args[0].clone()]);
        }
        ("count_if", 1) => {
            rename(f, "count");
            let case = Expr::Case {
                case_token:
                    datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                end_token:
                    datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                operand: None,
                conditions: vec![datafusion::sql::sqlparser::ast::CaseWhen {
                    condition: args[0].clone(),
                    result: Expr::value(Value::Number("1".into(), false)),
                }],
                else_result: None,
            };
            set_args(f, vec![case]);
        }
        ("count", n) if n > 1 => {
            // count(DISTINCT a, b): the distinct combinations in which no value is NULL.
            let all_present = args
                .iter()
                .map(|a| Expr::IsNotNull(Box::new(a.clone())))
                .reduce(|l, r| Expr::BinaryOp {
                    left: Box::new(l),
                    op: BinaryOperator::And,
                    right: Box::new(r),
                })
                .expect("n > 1");
            let mut fields = Vec::with_capacity(n * 2);
            for (i, arg) in args.iter().enumerate() {
                fields.push(string(&format!("c{i}")));
                fields.push(arg.clone());
            }
            let tuple = Expr::Case {
                case_token:
                    datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                end_token:
                    datafusion::sql::sqlparser::ast::helpers::attached_token::AttachedToken::empty(),
                operand: None,
                conditions: vec![datafusion::sql::sqlparser::ast::CaseWhen {
                    condition: all_present,
                    result: call("named_struct", fields),
                }],
                else_result: None,
            };
            set_args(f, vec![tuple]);
        }
        ("try_add" | "try_subtract" | "try_multiply", 2) => {
            let op = match name.as_str() {
                "try_add" => BinaryOperator::Plus,
                "try_subtract" => BinaryOperator::Minus,
                _ => BinaryOperator::Multiply,
            };
            return Ok(Some(Expr::Nested(Box::new(Expr::BinaryOp {
                left: Box::new(args[0].clone()),
                op,
                right: Box::new(args[1].clone()),
            }))));
        }
        ("isnull", 1) => return Ok(Some(Expr::IsNull(Box::new(args[0].clone())))),
        ("isnotnull", 1) => return Ok(Some(Expr::IsNotNull(Box::new(args[0].clone())))),
        // size(x) / cardinality(x): an INT; of NULL, -1 (NULL with ANSI on).
        ("size" | "cardinality", 1) if f.over.is_none() => {
            let count = Expr::Cast {
                kind: CastKind::Cast,
                expr: Box::new(call("cardinality", vec![args[0].clone()])),
                data_type: DataType::Int(None),
                array: false,
                format: None,
            };
            return Ok(Some(if ansi {
                count
            } else {
                call(
                    "coalesce",
                    vec![count, Expr::value(Value::Number("-1".into(), false))],
                )
            }));
        }
        // Spark's array_agg is collect_list: NULLs are left out.
        ("array_agg", 1)
            if f.over.is_none()
                && matches!(&f.args, FunctionArguments::List(list)
                    if list.clauses.is_empty() && list.duplicate_treatment.is_none()) =>
        {
            rename(f, "collect_list");
        }
        // Spark's array_sort: ascending, NULLs last.
        ("array_sort", 1) => set_args(
            f,
            vec![args[0].clone(), string("ASC"), string("NULLS LAST")],
        ),
        // sort_array: NULLs first ascending, last descending.
        ("sort_array", 1 | 2) => {
            let (order, nulls) = if args.len() == 2 && !is_true(&args[1]) {
                ("DESC", "NULLS LAST")
            } else {
                ("ASC", "NULLS FIRST")
            };
            rename(f, "array_sort");
            set_args(f, vec![args[0].clone(), string(order), string(nulls)]);
        }
        ("struct", _) if f.over.is_none() => return Ok(Some(spark_struct(&args))),
        ("datediff" | "date_diff" | "timestampdiff" | "timestamp_diff", 3) => {
            let Some(unit) = unit_name(&args[0]) else {
                return Ok(None);
            };
            return Ok(Some(call(
                "timestampdiff",
                vec![string(&unit), args[1].clone(), args[2].clone()],
            )));
        }
        _ => {}
    }
    Ok(None)
}

/// The value at rank `ceil(p * count)` (at least 1) of the sorted non-NULL values of `value`.
fn percentile_at(value: Expr, p: Expr) -> Expr {
    let sorted = call(
        "array_sort",
        vec![call("collect_list", vec![value.clone()])],
    );
    let count = call("count", vec![value]);
    let rank = call(
        "ceil",
        vec![Expr::BinaryOp {
            left: Box::new(Expr::Nested(Box::new(p))),
            op: BinaryOperator::Multiply,
            right: Box::new(count),
        }],
    );
    let rank = Expr::Cast {
        kind: CastKind::Cast,
        expr: Box::new(rank),
        data_type: DataType::BigInt(None),
        array: false,
        format: None,
    };
    let rank = call(
        "greatest",
        vec![rank, Expr::value(Value::Number("1".into(), false))],
    );
    call("array_element", vec![sorted, rank])
}
