//! A corpus of Delta Live Tables / Lakeflow SQL pipelines (`tests/fixtures/dlt/<name>`), each
//! an original pipeline written after the SQL patterns of a published Databricks example (its
//! README names which), run as they are and compared table by table with what pyspark computed
//! for the same logic over the same inputs (`tests/fixtures/dlt/generate.py` wrote `data/` and
//! `expected/`; no JVM is needed here).
//!
//! Pipelines that fail today are listed in [`EXPECTED_FAILURES`] with their error: the test
//! fails when an unlisted pipeline fails, and when a listed one passes or fails differently.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result as DfResult, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};
use lakeflow::datafusion;
use lakeflow::prelude::*;
use lakeflow::project::Project;
use serde_json::Value;

use crate::sql_pipelines::fixture;
use crate::support::delta_rows;

/// Every pipeline of the corpus.
const PIPELINES: &[&str] = &[
    "bakery_orders",
    "courier_fleet",
    "ev_chargers",
    "freight_ledger",
    "gym_members_cdc",
    "lease_screening",
    "podcast_listeners",
    "product_catalog_cdc",
    "substation_sensors",
    "toll_fraud",
    "wallet_risk",
];

/// Pipelines that fail today, each with the parts of the error it gives (a listed pipeline
/// must fail with all of them; `<root>` stands for the project directory).
const EXPECTED_FAILURES: &[(&str, &[&str])] = &[];

#[tokio::test]
async fn dlt_pipelines_give_the_tables_spark_gives() {
    let mut report = String::new();
    let mut wrong = Vec::new();
    for name in PIPELINES {
        let outcome = run_pipeline(name).await;
        let listed = EXPECTED_FAILURES.iter().find(|(n, _)| n == name);
        let verdict = match (&outcome, listed) {
            (Ok(()), None) => "pass".to_string(),
            (Ok(()), Some(_)) => {
                wrong.push(format!("{name}: listed as failing but passes"));
                "pass (listed as failing!)".to_string()
            }
            (Err(e), Some((_, expected))) if expected.iter().all(|x| e.contains(x)) => {
                "expected failure".to_string()
            }
            (Err(e), _) => {
                wrong.push(format!("{name}: {e}"));
                "FAIL".to_string()
            }
        };
        report.push_str(&format!("{name:<20} {verdict}\n"));
        if let Err(e) = &outcome {
            for line in e.lines() {
                report.push_str(&format!("    {line}\n"));
            }
        }
    }
    println!("{report}");
    assert!(
        wrong.is_empty(),
        "{report}\nunexpected:\n{}",
        wrong.join("\n")
    );
}

/// Runs the pipeline `name` in a temporary copy; `Err` is its first error or mismatches.
async fn run_pipeline(name: &str) -> Result<(), String> {
    let (_tmp, root) = fixture(&format!("dlt/{name}"));
    let scrub = |s: String| s.replace(&root.display().to_string(), "<root>");
    let project = Project::find(&root).map_err(|e| scrub(format!("load: {e}")))?;
    let pipeline = project
        .add_to(
            Pipeline::builder()
                .udf(stub("ai_classify", DataType::Utf8))
                .udf(stub("predict_churn", DataType::Int32))
                .udf(stub("predict_maintenance", DataType::Utf8))
                .udf(stub("is_member", DataType::Boolean)),
        )
        .progress(ProgressMode::Off);
    let run = pipeline
        .run()
        .await
        .map_err(|e| scrub(format!("run: {e}")))?;
    if !run.succeeded() {
        let failed: Vec<String> = run
            .datasets
            .iter()
            .filter(|d| d.status == lakeflow::FlowStatus::Failed)
            .map(|d| format!("{}: {}", d.name, d.reason.clone().unwrap_or_default()))
            .collect();
        return Err(scrub(format!("failed flows:\n{}", failed.join("\n"))));
    }
    let storage = Path::new(&project.storage()).to_path_buf();
    let mut problems = Vec::new();
    let mut tables: Vec<_> = std::fs::read_dir(root.join("expected"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    tables.sort();
    for path in tables {
        let table = path.file_stem().unwrap().to_str().unwrap().to_string();
        let expected: Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        // Table names are case-insensitive, as in Spark: `RIDES_RAW` is `rides_raw`.
        let dir = std::fs::read_dir(&storage)
            .into_iter()
            .flatten()
            .map(|e| e.unwrap().path())
            .find(|d| {
                d.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .eq_ignore_ascii_case(&table)
                    && d.join("_delta_log").exists()
            });
        let Some(dir) = dir else {
            problems.push(format!("{table}: not stored"));
            continue;
        };
        if let Err(e) = compare(&expected, &delta_rows(&dir).await) {
            problems.push(format!("{table}: {e}"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(format!("wrong tables:\n{}", problems.join("\n")))
    }
}

/// Compares a table with its expected JSON: the same column names, the same multiset of rows
/// (numbers with a tolerance, timestamps in any ISO form).
fn compare(expected: &Value, batches: &[RecordBatch]) -> Result<(), String> {
    let columns: Vec<String> = expected["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_string())
        .collect();
    let actual_columns: Vec<String> = batches
        .first()
        .map(|b| {
            b.schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect()
        })
        .unwrap_or_default();
    if !batches.is_empty() {
        let want: BTreeSet<_> = columns.iter().collect();
        let got: BTreeSet<_> = actual_columns.iter().collect();
        if want != got {
            return Err(format!(
                "columns differ: expected {columns:?}, got {actual_columns:?}"
            ));
        }
    }
    let shift = now_shift(expected);
    let relative: Vec<&str> = expected["now_relative_days"]
        .as_array()
        .map(|a| a.iter().map(|c| c.as_str().unwrap()).collect())
        .unwrap_or_default();
    let want: Vec<Vec<Value>> = expected["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            columns
                .iter()
                .zip(r)
                .map(|(c, v)| match v.as_i64() {
                    Some(n) if relative.contains(&c.as_str()) => Value::from(n + shift),
                    _ => v.clone(),
                })
                .collect()
        })
        .collect();
    let got = rows_as_json(batches, &columns)?;
    if want.len() != got.len() {
        return Err(format!(
            "{} rows, expected {}{}",
            got.len(),
            want.len(),
            sample_diff(&want, &got)
        ));
    }
    let mut used = vec![false; got.len()];
    for w in &want {
        let found = got
            .iter()
            .enumerate()
            .find(|(i, g)| !used[*i] && w.iter().zip(g.iter()).all(|(a, b)| same(a, b)));
        match found {
            Some((i, _)) => used[i] = true,
            None => {
                return Err(format!(
                    "no row matches expected {}{}",
                    Value::from(w.clone()),
                    sample_diff(&want, &got)
                ));
            }
        }
    }
    Ok(())
}

fn sample_diff(want: &[Vec<Value>], got: &[Vec<Value>]) -> String {
    let show = |rows: &[Vec<Value>]| {
        let mut lines: Vec<String> = rows
            .iter()
            .map(|r| Value::from(r.clone()).to_string())
            .collect();
        lines.sort();
        lines.truncate(3);
        lines.join("\n      ")
    };
    format!(
        "\n    expected e.g. {}\n    got      e.g. {}",
        show(want),
        show(got)
    )
}

/// Each row as values in the order of `columns`, through arrow's JSON writer.
fn rows_as_json(batches: &[RecordBatch], columns: &[String]) -> Result<Vec<Vec<Value>>, String> {
    let mut out = Vec::new();
    for batch in batches {
        let batch = views_to_strings(batch);
        let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
        writer.write(&batch).map_err(|e| e.to_string())?;
        writer.finish().map_err(|e| e.to_string())?;
        let bytes = writer.into_inner();
        if bytes.is_empty() {
            continue;
        }
        let rows: Vec<serde_json::Map<String, Value>> =
            serde_json::from_slice(&bytes).map_err(|e| e.to_string())?;
        for row in rows {
            out.push(
                columns
                    .iter()
                    .map(|c| row.get(c).cloned().unwrap_or(Value::Null))
                    .collect(),
            );
        }
    }
    Ok(out)
}

/// Top-level string and binary views as plain strings (the JSON writer's common ground).
fn views_to_strings(batch: &RecordBatch) -> RecordBatch {
    let mut fields = Vec::new();
    let mut arrays = Vec::new();
    for (field, array) in batch.schema().fields().iter().zip(batch.columns()) {
        let target = match field.data_type() {
            DataType::Utf8View | DataType::LargeUtf8 => Some(DataType::Utf8),
            DataType::BinaryView | DataType::LargeBinary => Some(DataType::Binary),
            _ => None,
        };
        match target {
            Some(t) => {
                arrays.push(cast(array, &t).unwrap());
                fields.push(field.as_ref().clone().with_data_type(t));
            }
            None => {
                arrays.push(array.clone());
                fields.push(field.as_ref().clone());
            }
        }
    }
    let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(fields));
    RecordBatch::try_new(schema, arrays).unwrap()
}

/// Whether two JSON values are the same table value.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).all(|k| {
            same(
                x.get(k).unwrap_or(&Value::Null),
                y.get(k).unwrap_or(&Value::Null),
            )
        }),
        _ => match (number(a), number(b)) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * x.abs().max(y.abs()).max(1.0),
            _ => match (a, b) {
                (Value::String(x), Value::String(y)) => timestamp(x) == timestamp(y),
                _ => a == b,
            },
        },
    }
}

fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok().filter(|_| {
            s.chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '.' | '-' | 'e' | 'E' | '+'))
        }),
        _ => None,
    }
}

/// `2024-01-01 10:00:00.000Z`, `2024-01-01T10:00:00` and `2024-01-01T10:00:00+00:00` alike.
fn timestamp(s: &str) -> String {
    let b = s.as_bytes();
    let looks = b.len() >= 19 && b[4] == b'-' && b[7] == b'-' && (b[10] == b' ' || b[10] == b'T');
    if !looks {
        return s.to_string();
    }
    let mut t = s.replacen(' ', "T", 1);
    for suffix in ["Z", "+00:00"] {
        if let Some(x) = t.strip_suffix(suffix) {
            t = x.to_string();
        }
    }
    if t.contains('.') {
        t = t.trim_end_matches('0').trim_end_matches('.').to_string();
    }
    t
}

/// Days from the expected file's `generated_on` to today (UTC), for `now()`-relative columns.
fn now_shift(expected: &Value) -> i64 {
    let Some(on) = expected["generated_on"].as_str() else {
        return 0;
    };
    let p: Vec<i64> = on.split('-').map(|x| x.parse().unwrap()).collect();
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    today - days_from_civil(p[0], p[1], p[2])
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Stand-ins for Databricks-only and model functions the corpus calls: `ai_classify` labels
/// by keyword as `generate.py` does; the model UDFs and `is_member` give a constant.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Stub {
    name: &'static str,
    signature: Signature,
    returns: DataType,
}

fn stub(name: &'static str, returns: DataType) -> ScalarUDF {
    ScalarUDF::new_from_impl(Stub {
        name,
        signature: Signature::variadic_any(Volatility::Immutable),
        returns,
    })
}

impl ScalarUDFImpl for Stub {
    fn name(&self) -> &str {
        self.name
    }
    fn signature(&self) -> &Signature {
        &self.signature
    }
    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(self.returns.clone())
    }
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        match self.name {
            "ai_classify" => {
                let text = args.args[0].to_array(args.number_rows)?;
                let text = cast(&text, &DataType::Utf8)?;
                let labels = args.args[1].to_array(args.number_rows)?;
                let labels = labels.as_list::<i32>();
                let out: StringArray = (0..args.number_rows)
                    .map(|i| {
                        if text.is_null(i) {
                            return None;
                        }
                        let t = text.as_string::<i32>().value(i).to_lowercase();
                        let row = cast(&labels.value(i), &DataType::Utf8).ok()?;
                        let row = row.as_string::<i32>();
                        let names: Vec<&str> = (0..row.len()).map(|j| row.value(j)).collect();
                        let hit = names
                            .iter()
                            .find(|l| l.split('_').any(|w| t.contains(w.trim_end_matches('s'))));
                        hit.or(names.last()).map(|s| s.to_string())
                    })
                    .collect();
                Ok(ColumnarValue::Array(Arc::new(out)))
            }
            "predict_churn" => Ok(ColumnarValue::Scalar(ScalarValue::Int32(Some(0)))),
            "predict_maintenance" => Ok(ColumnarValue::Scalar(ScalarValue::from("ok"))),
            _ => Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(false)))),
        }
    }
}
