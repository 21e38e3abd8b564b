//! Runs every case of `tests/spark/*.json` — input tables, a query, and the columns and rows
//! Spark 4.3 returned (or the error it raised) — through lakeflow's Spark SQL and compares.
//!
//! Cases lakeflow does not match yet are listed, each with its reason, in
//! `tests/spark/known_differences.txt`; the test fails when any other case differs, and when
//! a listed case starts to match (so the list only shrinks). The README's Spark SQL table is
//! written from the same list.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float64Array, Int32Array,
    Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionConfig;
use lakeflow_sql::SparkSql;
use serde_json::Value;

fn spark_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/spark"))
}

/// The type name Spark would print for an Arrow type; timestamps compare as one type
/// (lakeflow stores every timestamp as Delta's UTC timestamp).
fn spark_type(t: &DataType) -> String {
    lakeflow_sql::functions::spark_type_name(t).replace("timestamp_ntz", "timestamp")
}

fn input_type(name: &str) -> DataType {
    match name {
        "string" => DataType::Utf8,
        "int" => DataType::Int32,
        "bigint" => DataType::Int64,
        "double" => DataType::Float64,
        "boolean" => DataType::Boolean,
        "date" => DataType::Date32,
        "timestamp" => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        d if d.starts_with("decimal(") => {
            let inner = &d["decimal(".len()..d.len() - 1];
            let (p, s) = inner.split_once(',').expect("decimal(p,s)");
            DataType::Decimal128(p.trim().parse().unwrap(), s.trim().parse().unwrap())
        }
        other => panic!("input type {other} is not one the oracle may use"),
    }
}

fn parse_timestamp(s: &str) -> i64 {
    let t = chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f")
        .unwrap_or_else(|e| panic!("timestamp {s}: {e}"));
    t.and_utc().timestamp_micros()
}

fn input_array(t: &DataType, values: &[&Value]) -> ArrayRef {
    match t {
        DataType::Utf8 => Arc::new(StringArray::from_iter(values.iter().map(|v| v.as_str()))),
        DataType::Int32 => Arc::new(Int32Array::from_iter(
            values.iter().map(|v| v.as_i64().map(|n| n as i32)),
        )),
        DataType::Int64 => Arc::new(Int64Array::from_iter(values.iter().map(|v| v.as_i64()))),
        DataType::Float64 => Arc::new(Float64Array::from_iter(values.iter().map(|v| match v {
            Value::String(s) => s.parse::<f64>().ok().or(match s.as_str() {
                "Infinity" => Some(f64::INFINITY),
                "-Infinity" => Some(f64::NEG_INFINITY),
                _ => Some(f64::NAN),
            }),
            other => other.as_f64(),
        }))),
        DataType::Boolean => Arc::new(BooleanArray::from_iter(values.iter().map(|v| v.as_bool()))),
        DataType::Date32 => Arc::new(Date32Array::from_iter(values.iter().map(|v| {
            v.as_str().map(|s| {
                let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
                (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as i32
            })
        }))),
        DataType::Timestamp(_, _) => Arc::new(
            TimestampMicrosecondArray::from_iter(
                values.iter().map(|v| v.as_str().map(parse_timestamp)),
            )
            .with_timezone("UTC"),
        ),
        DataType::Decimal128(p, s) => {
            let scale = *s as u32;
            let array = Decimal128Array::from_iter(values.iter().map(|v| {
                v.as_str().map(|text| {
                    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
                    let mut frac = frac.to_string();
                    while frac.len() < scale as usize {
                        frac.push('0');
                    }
                    format!("{int}{frac}").parse::<i128>().unwrap()
                })
            }));
            Arc::new(array.with_precision_and_scale(*p, *s).unwrap())
        }
        other => panic!("no input arrays of {other}"),
    }
}

/// A value as the oracle encodes it.
fn render(array: &ArrayRef, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::UInt8
        | DataType::UInt16
        | DataType::UInt32
        | DataType::UInt64 => {
            let cast = datafusion::arrow::compute::cast(array, &DataType::Int64).unwrap();
            Value::from(
                cast.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                    .value(i),
            )
        }
        DataType::Float32 | DataType::Float64 => {
            let cast = datafusion::arrow::compute::cast(array, &DataType::Float64).unwrap();
            let v = cast
                .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
                .value(i);
            if v.is_nan() {
                Value::from("NaN")
            } else if v.is_infinite() {
                Value::from(if v > 0.0 { "Infinity" } else { "-Infinity" })
            } else {
                Value::from(v)
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let cast = datafusion::arrow::compute::cast(array, &DataType::Utf8).unwrap();
            Value::from(cast.as_string::<i32>().value(i))
        }
        DataType::Timestamp(_, _) => {
            let cast = datafusion::arrow::compute::cast(
                array,
                &DataType::Timestamp(TimeUnit::Microsecond, None),
            )
            .unwrap();
            let us = cast
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                .value(i);
            let t = chrono::DateTime::from_timestamp_micros(us)
                .unwrap()
                .naive_utc();
            let mut s = t.format("%Y-%m-%d %H:%M:%S").to_string();
            let frac = us.rem_euclid(1_000_000);
            if frac != 0 {
                let digits = format!("{frac:06}");
                s.push('.');
                s.push_str(digits.trim_end_matches('0'));
            }
            Value::from(s)
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            use base64_engine::encode;
            let cast = datafusion::arrow::compute::cast(array, &DataType::Binary).unwrap();
            Value::from(encode(cast.as_binary::<i32>().value(i)))
        }
        DataType::List(_) => {
            let list = array.as_list::<i32>().value(i);
            Value::Array((0..list.len()).map(|j| render(&list, j)).collect())
        }
        DataType::LargeList(_) => {
            let list = array.as_list::<i64>().value(i);
            Value::Array((0..list.len()).map(|j| render(&list, j)).collect())
        }
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let mut map = serde_json::Map::new();
            for (j, f) in fields.iter().enumerate() {
                map.insert(f.name().clone(), render(s.column(j), i));
            }
            Value::Object(map)
        }
        DataType::Map(_, _) => {
            let m = array.as_map();
            let entries = m.value(i);
            let keys = entries.column(0);
            let values = entries.column(1);
            Value::Array(
                (0..entries.len())
                    .map(|j| Value::Array(vec![render(keys, j), render(values, j)]))
                    .collect(),
            )
        }
        _ => {
            let options = FormatOptions::default();
            let f = ArrayFormatter::try_new(array.as_ref(), &options).unwrap();
            Value::from(f.value(i).to_string())
        }
    }
}

/// Minimal base64 (standard alphabet, padded) for binary values.
mod base64_engine {
    pub fn encode(bytes: &[u8]) -> String {
        const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (b[0] as u32) << 16 | (b[1] as u32) << 8 | b[2] as u32;
            for k in 0..4 {
                if k <= chunk.len() {
                    out.push(A[(n >> (18 - 6 * k) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }
}

fn same_value(ours: &Value, spark: &Value, spark_type: &str) -> bool {
    match (ours, spark) {
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (a.as_f64().unwrap(), b.as_f64().unwrap());
            let tolerance = if spark_type == "float" { 1e-6 } else { 1e-9 };
            a == b || (a - b).abs() <= tolerance * a.abs().max(b.abs()).max(1.0)
        }
        (Value::Array(a), Value::Array(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| same_value(x, y, ""))
        }
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len()
                && a.iter()
                    .zip(b)
                    .all(|((ka, va), (kb, vb))| ka == kb && same_value(va, vb, ""))
        }
        (a, b) => a == b,
    }
}

fn sort_key(row: &[Value]) -> String {
    serde_json::to_string(row).unwrap()
}

/// Runs one case; `Ok(())` when lakeflow gives what Spark gave.
async fn run_case(case: &Value) -> Result<(), String> {
    let sql = case["sql"].as_str().unwrap();
    let ansi = case["ansi"].as_bool().unwrap_or(false);
    let dialect = SparkSql::new().with_ansi(ansi);
    let ctx = dialect
        .context(SessionConfig::new().with_target_partitions(1))
        .map_err(|e| e.to_string())?;
    let mut tables: Vec<(String, LogicalPlan)> = Vec::new();
    if let Some(map) = case["tables"].as_object() {
        for (name, table) in map {
            let columns = table["columns"].as_array().unwrap();
            let rows = table["rows"].as_array().unwrap();
            let fields: Vec<Field> = columns
                .iter()
                .map(|c| {
                    Field::new(
                        c[0].as_str().unwrap(),
                        input_type(c[1].as_str().unwrap()),
                        true,
                    )
                })
                .collect();
            let arrays: Vec<ArrayRef> = fields
                .iter()
                .enumerate()
                .map(|(j, f)| {
                    let values: Vec<&Value> = rows.iter().map(|r| &r[j]).collect();
                    input_array(f.data_type(), &values)
                })
                .collect();
            let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).unwrap();
            let df = ctx.read_batch(batch).unwrap();
            tables.push((name.clone(), df.into_unoptimized_plan()));
        }
    }
    let outcome = async {
        let query = dialect.parse(sql)?;
        let plan = query.plan(&ctx.state(), tables)?;
        let df = DataFrame::new(ctx.state(), plan);
        let schema = df.schema().as_arrow().clone();
        let batches = df.collect().await?;
        Ok::<_, datafusion::error::DataFusionError>((schema, batches))
    }
    .await;
    if let Some(error) = case.get("error") {
        return match outcome {
            Err(_) => Ok(()),
            Ok(_) => Err(format!(
                "Spark raised `{}`, lakeflow did not",
                error.as_str().unwrap_or("")
            )),
        };
    }
    let (schema, batches) = outcome.map_err(|e| format!("error: {e}"))?;
    let expected = &case["expected"];
    let expected_columns: Vec<(String, String)> = expected["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c[0].as_str().unwrap().to_string(),
                c[1].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let ours: Vec<(String, String)> = schema
        .fields()
        .iter()
        .map(|f| (f.name().clone(), spark_type(f.data_type())))
        .collect();
    if ours != expected_columns {
        return Err(format!(
            "columns: lakeflow {ours:?}, Spark {expected_columns:?}"
        ));
    }
    let mut rows: Vec<Vec<Value>> = Vec::new();
    for batch in &batches {
        for i in 0..batch.num_rows() {
            rows.push(batch.columns().iter().map(|c| render(c, i)).collect());
        }
    }
    let mut want: Vec<Vec<Value>> = expected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_array().unwrap().clone())
        .collect();
    if !case["ordered"].as_bool().unwrap_or(false) {
        rows.sort_by_key(|r| sort_key(r));
        want.sort_by_key(|r| sort_key(r));
    }
    let matches = rows.len() == want.len()
        && rows.iter().zip(&want).all(|(a, b)| {
            a.iter()
                .zip(b)
                .zip(&expected_columns)
                .all(|((x, y), (_, t))| same_value(x, y, t))
        });
    if !matches {
        return Err(format!(
            "rows: lakeflow {}, Spark {}",
            serde_json::to_string(&rows).unwrap(),
            serde_json::to_string(&want).unwrap()
        ));
    }
    Ok(())
}

fn known_differences() -> BTreeMap<String, String> {
    let text =
        std::fs::read_to_string(spark_dir().join("known_differences.txt")).unwrap_or_default();
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, why) = l.split_once(' ').unwrap_or((l, ""));
            (name.trim().to_string(), why.trim().to_string())
        })
        .collect()
}

#[tokio::test]
async fn spark_sql_gives_what_spark_gave() {
    let known = known_differences();
    let mut files: Vec<_> = std::fs::read_dir(spark_dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut unexpected = Vec::new();
    let mut fixed = Vec::new();
    let (mut total, mut passed) = (0, 0);
    let only = std::env::var("SPARK_CASE").ok();
    for file in files {
        let cases: Vec<Value> =
            serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        let area = file.file_stem().unwrap().to_string_lossy().to_string();
        for case in &cases {
            let name = format!("{area}/{}", case["name"].as_str().unwrap());
            if only.as_ref().is_some_and(|o| !name.contains(o.as_str())) {
                continue;
            }
            total += 1;
            let result = match tokio::spawn({
                let case = case.clone();
                async move { run_case(&case).await }
            })
            .await
            {
                Ok(r) => r,
                Err(panic) => Err(format!("panicked: {panic}")),
            };
            match (result, known.contains_key(&name)) {
                (Ok(()), false) => passed += 1,
                (Ok(()), true) => fixed.push(name),
                (Err(why), true) => {
                    if std::env::var("SPARK_LIST").is_ok() {
                        println!("known {name}: {why}");
                    }
                }
                (Err(why), false) => {
                    unexpected.push(format!("{name}: {}\n    {}", why, case["sql"]))
                }
            }
        }
    }
    println!(
        "{passed} of {total} Spark cases match; {} known differences",
        known.len()
    );
    if std::env::var("SPARK_LIST").is_ok() {
        for u in &unexpected {
            println!("{}", u.lines().next().unwrap_or(""));
        }
    }
    assert!(
        unexpected.is_empty() && fixed.is_empty(),
        "{} cases differ from Spark:\n{}\n{} listed in known_differences.txt now match (remove them):\n{}",
        unexpected.len(),
        unexpected.join("\n"),
        fixed.len(),
        fixed.join("\n")
    );
}
