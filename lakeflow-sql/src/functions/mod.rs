//! Spark functions that `datafusion-spark` does not provide (or provides with other
//! results), registered under Spark's names: date parts, `date_format`, `to_timestamp`,
//! `to_date`, `unix_timestamp` and `from_unixtime` with Spark's patterns, `timestampdiff`,
//! `get_json_object`, `from_json`, `to_json`, `regexp_extract`, `initcap`, `split` and the
//! AES functions.
//!
//! Each is one [`SparkFunction`]: a name, a signature and an implementation over arrays.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility,
};

pub mod aes;
pub(crate) mod cast;
mod datetime;
pub mod ddl;
pub mod double_text;
mod json;
pub mod pattern;
pub mod sql_function;
pub mod subscript;
mod text;
pub mod window;

/// Which Spark function a [`SparkFunction`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    Year,
    Month,
    Day,
    Quarter,
    DayOfWeek,
    DayOfYear,
    WeekOfYear,
    DateFormat,
    ToTimestamp,
    ToDate,
    UnixTimestamp,
    FromUnixtime,
    TimestampDiff,
    GetJsonObject,
    FromJson,
    ToJson,
    RegexpExtract,
    Initcap,
    Split,
    TypeOf,
    CastString,
    RoundDouble,
    ArrayField,
    MonthsBetween,
    TimestampString,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Year => "year",
            Kind::Month => "month",
            Kind::Day => "day",
            Kind::Quarter => "quarter",
            Kind::DayOfWeek => "dayofweek",
            Kind::DayOfYear => "dayofyear",
            Kind::WeekOfYear => "weekofyear",
            Kind::DateFormat => "date_format",
            Kind::ToTimestamp => "to_timestamp",
            Kind::ToDate => "to_date",
            Kind::UnixTimestamp => "unix_timestamp",
            Kind::FromUnixtime => "from_unixtime",
            Kind::TimestampDiff => "timestampdiff",
            Kind::GetJsonObject => "get_json_object",
            Kind::FromJson => "from_json",
            Kind::ToJson => "to_json",
            Kind::RegexpExtract => "regexp_extract",
            Kind::Initcap => "initcap",
            Kind::Split => "split",
            Kind::TypeOf => "typeof",
            Kind::CastString => "spark_cast_string",
            Kind::RoundDouble => "spark_round_double",
            Kind::ArrayField => "spark_array_field",
            Kind::MonthsBetween => "months_between",
            Kind::TimestampString => "spark_timestamp_string",
        }
    }

    const ALL: [Kind; 25] = [
        Kind::TimestampString,
        Kind::MonthsBetween,
        Kind::ArrayField,
        Kind::RoundDouble,
        Kind::CastString,
        Kind::TypeOf,
        Kind::Year,
        Kind::Month,
        Kind::Day,
        Kind::Quarter,
        Kind::DayOfWeek,
        Kind::DayOfYear,
        Kind::WeekOfYear,
        Kind::DateFormat,
        Kind::ToTimestamp,
        Kind::ToDate,
        Kind::UnixTimestamp,
        Kind::FromUnixtime,
        Kind::TimestampDiff,
        Kind::GetJsonObject,
        Kind::FromJson,
        Kind::ToJson,
        Kind::RegexpExtract,
        Kind::Initcap,
        Kind::Split,
    ];
}

/// One Spark function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SparkFunction {
    kind: Kind,
    signature: Signature,
}

/// Registers lakeflow's Spark functions (after `datafusion-spark`'s, replacing DataFusion's
/// functions of the same name that give other results).
pub fn register(registry: &mut dyn FunctionRegistry) -> Result<()> {
    for kind in Kind::ALL {
        let volatility = if kind == Kind::UnixTimestamp {
            Volatility::Stable
        } else {
            Volatility::Immutable
        };
        registry.register_udf(Arc::new(ScalarUDF::from(SparkFunction {
            kind,
            signature: Signature::user_defined(volatility),
        })))?;
    }
    registry.register_udf(Arc::new(ScalarUDF::from(window::SparkWindow::new())))?;
    registry.register_udf(Arc::new(ScalarUDF::from(window::SparkWindow::sliding())))?;
    registry.register_udf(Arc::new(ScalarUDF::from(window::SparkWindowStarts::new())))?;
    registry.register_udf(Arc::new(ScalarUDF::from(subscript::SparkSubscript::new())))?;
    for op in [
        aes::AesOp::Encrypt,
        aes::AesOp::Decrypt,
        aes::AesOp::TryDecrypt,
    ] {
        registry.register_udf(Arc::new(ScalarUDF::from(aes::SparkAes::new(op))))?;
    }
    registry.register_udf(Arc::new(ScalarUDF::from(
        double_text::SparkDoubleString::new(),
    )))?;
    Ok(())
}

/// The function of `kind`.
pub(crate) fn udf(kind: Kind) -> ScalarUDF {
    ScalarUDF::from(SparkFunction {
        kind,
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

/// The type a Spark timestamp has in lakeflow (what Delta stores).
pub(crate) fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn is_string(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

fn is_temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..)
    )
}

impl SparkFunction {
    fn arity(&self, n: usize) -> Result<()> {
        let ok = match self.kind {
            Kind::Year
            | Kind::Month
            | Kind::Day
            | Kind::Quarter
            | Kind::DayOfWeek
            | Kind::DayOfYear
            | Kind::WeekOfYear
            | Kind::Initcap
            | Kind::ToJson
            | Kind::TypeOf => n == 1,
            Kind::DateFormat | Kind::GetJsonObject | Kind::FromJson => n == 2,
            Kind::ToTimestamp | Kind::ToDate | Kind::FromUnixtime => n == 1 || n == 2,
            Kind::UnixTimestamp => n <= 2,
            Kind::TimestampDiff | Kind::CastString => n == 3,
            Kind::TimestampString => n == 2,
            Kind::RegexpExtract | Kind::Split => n == 2 || n == 3,
            Kind::RoundDouble => n == 1 || n == 2,
            Kind::ArrayField => n == 2,
            Kind::MonthsBetween => n == 2 || n == 3,
        };
        if ok {
            Ok(())
        } else {
            plan_err!("{}() does not take {n} arguments", self.kind.name())
        }
    }
}

impl ScalarUDFImpl for SparkFunction {
    fn name(&self) -> &str {
        self.kind.name()
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.arity(arg_types.len())?;
        let name = self.kind.name();
        let temporal = |t: &DataType| -> Result<DataType> {
            if is_temporal(t) {
                Ok(t.clone())
            } else if is_string(t) || t == &DataType::Null {
                Ok(timestamp_type())
            } else {
                plan_err!("{name}() takes a date, timestamp or string, not {t}")
            }
        };
        let string = |t: &DataType| -> Result<DataType> {
            match t {
                DataType::Struct(_) | DataType::List(_) | DataType::Map(..)
                    if self.kind == Kind::ToJson =>
                {
                    Ok(t.clone())
                }
                _ => Ok(DataType::Utf8),
            }
        };
        match self.kind {
            Kind::TypeOf => Ok(arg_types.to_vec()),
            Kind::ArrayField => Ok(vec![arg_types[0].clone(), DataType::Utf8]),
            Kind::MonthsBetween => {
                let mut out = vec![temporal(&arg_types[0])?, temporal(&arg_types[1])?];
                if arg_types.len() == 3 {
                    out.push(DataType::Boolean);
                }
                Ok(out)
            }
            Kind::CastString => Ok(vec![DataType::Utf8, DataType::Utf8, DataType::Boolean]),
            Kind::TimestampString => Ok(vec![temporal(&arg_types[0])?, DataType::Utf8]),
            Kind::RoundDouble => {
                let mut out = vec![DataType::Float64];
                if arg_types.len() == 2 {
                    out.push(DataType::Int64);
                }
                Ok(out)
            }
            Kind::Year
            | Kind::Month
            | Kind::Day
            | Kind::Quarter
            | Kind::DayOfWeek
            | Kind::DayOfYear
            | Kind::WeekOfYear => Ok(vec![temporal(&arg_types[0])?]),
            Kind::DateFormat => Ok(vec![temporal(&arg_types[0])?, DataType::Utf8]),
            Kind::UnixTimestamp => match arg_types {
                [] => Ok(vec![]),
                [t] if is_temporal(t) => Ok(vec![t.clone()]),
                [_] => Ok(vec![DataType::Utf8]),
                [t, _] if is_temporal(t) => Ok(vec![t.clone(), DataType::Utf8]),
                _ => Ok(vec![DataType::Utf8, DataType::Utf8]),
            },
            Kind::ToTimestamp | Kind::ToDate => Ok(arg_types
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    if i == 0 && (is_temporal(t) || t.is_numeric()) {
                        t.clone()
                    } else {
                        DataType::Utf8
                    }
                })
                .collect()),
            Kind::FromUnixtime => {
                let mut out = vec![DataType::Int64];
                if arg_types.len() == 2 {
                    out.push(DataType::Utf8);
                }
                Ok(out)
            }
            Kind::TimestampDiff => Ok(vec![
                DataType::Utf8,
                temporal(&arg_types[1])?,
                temporal(&arg_types[2])?,
            ]),
            Kind::RegexpExtract | Kind::Split => {
                let mut out = vec![DataType::Utf8, DataType::Utf8];
                if arg_types.len() == 3 {
                    out.push(DataType::Int64);
                }
                Ok(out)
            }
            Kind::ToJson => Ok(vec![string(&arg_types[0])?]),
            Kind::GetJsonObject | Kind::FromJson | Kind::Initcap => {
                Ok(arg_types.iter().map(|_| DataType::Utf8).collect())
            }
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(match self.kind {
            Kind::Year
            | Kind::Month
            | Kind::Day
            | Kind::Quarter
            | Kind::DayOfWeek
            | Kind::DayOfYear
            | Kind::WeekOfYear => DataType::Int32,
            Kind::DateFormat
            | Kind::FromUnixtime
            | Kind::GetJsonObject
            | Kind::ToJson
            | Kind::RegexpExtract
            | Kind::Initcap
            | Kind::TimestampString
            | Kind::TypeOf => DataType::Utf8,
            Kind::ToTimestamp => timestamp_type(),
            Kind::RoundDouble | Kind::MonthsBetween => DataType::Float64,
            Kind::ToDate => DataType::Date32,
            Kind::UnixTimestamp | Kind::TimestampDiff => DataType::Int64,
            Kind::Split => DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            Kind::FromJson | Kind::CastString | Kind::ArrayField => {
                return plan_err!("{}() needs its type as a literal", self.name());
            }
        })
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        if self.kind == Kind::FromJson {
            let Some(Some(schema)) = args.scalar_arguments.get(1) else {
                return plan_err!(
                    "from_json(json, schema) takes its schema as a string literal, e.g. 'a INT, b STRING'"
                );
            };
            let (ScalarValue::Utf8(Some(ddl))
            | ScalarValue::LargeUtf8(Some(ddl))
            | ScalarValue::Utf8View(Some(ddl))) = schema
            else {
                return plan_err!("from_json(json, schema) takes its schema as a string literal");
            };
            return Ok(Arc::new(Field::new(
                self.name(),
                ddl::parse_ddl(ddl)?,
                true,
            )));
        }
        if self.kind == Kind::ArrayField {
            let Some(Some(ScalarValue::Utf8(Some(name)))) = args.scalar_arguments.get(1) else {
                return plan_err!("spark_array_field(array, field) takes its field as a literal");
            };
            let item = match args.arg_fields[0].data_type() {
                DataType::List(f) | DataType::LargeList(f) => f.data_type().clone(),
                other => return plan_err!("{other} is not an array of structs"),
            };
            let DataType::Struct(fields) = item else {
                return plan_err!("the array's elements are not structs");
            };
            let Some(field) = fields.iter().find(|f| f.name() == name) else {
                return plan_err!("the array's structs have no field `{name}`");
            };
            let list = DataType::List(Arc::new(Field::new_list_field(
                field.data_type().clone(),
                true,
            )));
            return Ok(Arc::new(Field::new(self.name(), list, true)));
        }
        if self.kind == Kind::CastString {
            let Some(Some(ScalarValue::Utf8(Some(name)))) = args.scalar_arguments.get(1) else {
                return plan_err!(
                    "spark_cast_string(value, type, ansi) takes its type as a literal"
                );
            };
            let to = ddl::parse_ddl(name)?;
            return Ok(Arc::new(Field::new(self.name(), to, true)));
        }
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        Ok(Arc::new(Field::new(
            self.name(),
            self.return_type(&types)?,
            true,
        )))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let scalars = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays: Vec<ArrayRef> = args
            .args
            .iter()
            .map(|a| a.to_array(rows))
            .collect::<Result<_>>()?;
        let out = match self.kind {
            Kind::Year
            | Kind::Month
            | Kind::Day
            | Kind::Quarter
            | Kind::DayOfWeek
            | Kind::DayOfYear
            | Kind::WeekOfYear => datetime::part(self.kind, &arrays[0])?,
            Kind::DateFormat => datetime::date_format(&arrays[0], &arrays[1])?,
            Kind::ToTimestamp => datetime::to_timestamp(&arrays, false)?,
            Kind::ToDate => datetime::to_timestamp(&arrays, true)?,
            Kind::UnixTimestamp => datetime::unix_timestamp(&arrays, rows)?,
            Kind::FromUnixtime => datetime::from_unixtime(&arrays)?,
            Kind::TimestampDiff => datetime::timestampdiff(&arrays)?,
            Kind::GetJsonObject => json::get_json_object(&arrays[0], &arrays[1])?,
            Kind::FromJson => json::from_json(&arrays[0], args.return_field.data_type())?,
            Kind::ToJson => json::to_json(&arrays[0])?,
            Kind::RegexpExtract => text::regexp_extract(&arrays)?,
            Kind::Initcap => text::initcap(&arrays[0])?,
            Kind::Split => text::split(&arrays)?,
            Kind::CastString => {
                let ansi = arrays[2]
                    .as_boolean_opt()
                    .is_some_and(|b| !b.is_empty() && b.value(0));
                cast::cast_string(&arrays[0], args.return_field.data_type(), ansi)?
            }
            Kind::RoundDouble => text::round_half_up(&arrays)?,
            Kind::MonthsBetween => datetime::months_between(&arrays)?,
            Kind::TimestampString => datetime::timestamp_string(&arrays[0], &arrays[1])?,
            Kind::ArrayField => {
                let name = arrays[1].as_string::<i32>();
                if name.is_empty() {
                    return exec_err!("spark_array_field needs a field name");
                }
                array_field(&arrays[0], name.value(0))?
            }
            Kind::TypeOf => {
                let name = spark_type_name(args.arg_fields[0].data_type());
                Arc::new(datafusion::arrow::array::StringArray::from(vec![
                    name;
                    rows
                ]))
            }
        };
        if out.len() != rows {
            return exec_err!("{}() returned {} rows for {rows}", self.name(), out.len());
        }
        if scalars && rows == 1 {
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        }
        Ok(ColumnarValue::Array(out))
    }
}

/// The name Spark gives a type (`int`, `bigint`, `decimal(10,2)`, `array<string>`,
/// `struct<a:int>`, `map<string,int>`), as `typeof` prints it.
pub fn spark_type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => "int".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp".into(),
        DataType::Timestamp(_, None) => "timestamp_ntz".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Null => "void".into(),
        DataType::List(f) | DataType::LargeList(f) => {
            format!("array<{}>", spark_type_name(f.data_type()))
        }
        DataType::Struct(fields) => format!(
            "struct<{}>",
            fields
                .iter()
                .map(|f| format!("{}:{}", f.name(), spark_type_name(f.data_type())))
                .collect::<Vec<_>>()
                .join(",")
        ),
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map<{},{}>",
                spark_type_name(kv[0].data_type()),
                spark_type_name(kv[1].data_type())
            ),
            other => format!("map<{other}>"),
        },
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        other => other.to_string().to_lowercase(),
    }
}

/// Each element's field `name` of an array of structs, as an array.
fn array_field(array: &ArrayRef, name: &str) -> Result<ArrayRef> {
    let array = datafusion::arrow::compute::cast(
        array,
        &match array.data_type() {
            DataType::LargeList(f) => DataType::List(f.clone()),
            other => other.clone(),
        },
    )?;
    let list = array.as_list::<i32>();
    let structs = list.values().as_struct();
    let Some(child) = structs.column_by_name(name) else {
        return exec_err!("the array's structs have no field `{name}`");
    };
    let field = Arc::new(Field::new_list_field(child.data_type().clone(), true));
    let out = datafusion::arrow::array::ListArray::try_new(
        field,
        list.offsets().clone(),
        child.clone(),
        list.nulls().cloned(),
    )?;
    Ok(Arc::new(out))
}
