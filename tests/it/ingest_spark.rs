//! lakeflow's `read_files` against Spark's own readers. `tests/fixtures/ingest_spark/oracle.py`
//! ran pyspark 4.3 (`local[1]`, UTC) on small CSV/JSON inputs with plain `spark.read` and wrote
//! what it gave to `expected.json`: the schema as `simpleString()`, the rows as
//! `CAST(.. AS STRING)` (`to_json` for structs and arrays), or that the read failed. Each test
//! reads the same input with `read_files_with` into a materialized view and compares.
//!
//! Deliberate differences, left out of the comparison: lakeflow's `read_files` adds
//! `_rescued_data` (as Databricks' `read_files` does; plain Spark does not), and it rescues a bad
//! value there where Spark's `columnNameOfCorruptRecord` keeps the whole raw line.

use std::path::{Path, PathBuf};

use lakeflow::datafusion::arrow::array::{Array, RecordBatch};
use lakeflow::datafusion::arrow::compute::cast;
use lakeflow::datafusion::arrow::datatypes::{DataType, Field, Schema};
use lakeflow::prelude::*;
use serde_json::Value;

use crate::support::{delta_rows, strings};

const RESCUED: &str = "_rescued_data";

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/ingest_spark")
}

/// The case `name` of `expected.json`.
fn case(name: &str) -> Value {
    let text = std::fs::read_to_string(fixtures().join("expected.json")).unwrap();
    let all: Vec<Value> = serde_json::from_str(&text).unwrap();
    all.into_iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no case {name}"))
}

/// What lakeflow gives for a case: its table's batches, or the error of the run.
async fn read(case: &Value) -> Result<Vec<RecordBatch>, String> {
    let tmp = tempfile::tempdir().unwrap();
    let landing = tmp.path().join("landing");
    std::fs::create_dir_all(&landing).unwrap();
    let file = case["file"].as_str().unwrap();
    std::fs::copy(fixtures().join(file), landing.join(file)).unwrap();
    let mut options = match case["format"].as_str().unwrap() {
        "csv" => FileOptions::csv(),
        "json" => FileOptions::json(),
        other => panic!("format {other}"),
    };
    for (key, value) in case["options"].as_object().unwrap() {
        options = options.option(key, value.as_str().unwrap());
    }
    if let Some(ddl) = case["schema_ddl"].as_str() {
        options = options.schema(ddl);
    }
    let path = landing.display().to_string();
    let storage = tmp.path().join("storage");
    let run = Pipeline::builder()
        .materialized_view("t", move || read_files_with(path.as_str(), options.clone()))
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
        .run()
        .await;
    match run {
        Ok(_) => Ok(delta_rows(&storage.join("t")).await),
        Err(e) => Err(e.to_string()),
    }
}

/// Spark's `simpleString` of an Arrow type as Delta gives it back.
fn spark_type(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::Date32 => "date".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp".into(),
        DataType::Timestamp(_, None) => "timestamp_ntz".into(),
        DataType::Decimal128(p, s) => format!("decimal({p},{s})"),
        DataType::List(f) | DataType::LargeList(f) | DataType::ListView(f) => {
            format!("array<{}>", spark_type(f.data_type()))
        }
        DataType::Struct(fields) => struct_string(fields.iter().map(|f| f.as_ref())),
        other => format!("{other}"),
    }
}

fn struct_string<'a>(fields: impl Iterator<Item = &'a Field>) -> String {
    let inner: Vec<String> = fields
        .map(|f| format!("{}:{}", f.name(), spark_type(f.data_type())))
        .collect();
    format!("struct<{}>", inner.join(","))
}

/// The schema without `_rescued_data`, as Spark would print it.
fn simple_string(schema: &Schema) -> String {
    struct_string(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref())
            .filter(|f| f.name() != RESCUED),
    )
}

/// One column's values as Spark's `CAST(.. AS STRING)` / `to_json` prints them.
fn texts(column: &dyn Array) -> Vec<Option<String>> {
    let nested = matches!(
        column.data_type(),
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_)
    );
    if nested {
        let field = Field::new("v", column.data_type().clone(), true);
        let batch = RecordBatch::try_new(
            std::sync::Arc::new(Schema::new(vec![field])),
            vec![lakeflow::datafusion::arrow::array::make_array(
                column.to_data(),
            )],
        )
        .unwrap();
        let mut writer = lakeflow::datafusion::arrow::json::ArrayWriter::new(Vec::new());
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        let rows: Vec<Value> = serde_json::from_slice(&writer.into_inner()).unwrap();
        return rows
            .iter()
            .map(|r| r.get("v").map(|v| v.to_string()))
            .collect();
    }
    let text = cast(column, &DataType::Utf8).unwrap();
    let values = strings(&text);
    (0..column.len())
        .map(|i| {
            if column.is_null(i) {
                None
            } else {
                let v = &values[i];
                Some(match column.data_type() {
                    // Arrow prints `2024-01-02T03:04:05Z`, Spark `2024-01-02 03:04:05`.
                    DataType::Timestamp(..) => v.replace('T', " ").trim_end_matches('Z').into(),
                    _ => v.clone(),
                })
            }
        })
        .collect()
}

/// The rows without `_rescued_data`, each value as text, sorted as the oracle sorts them.
fn rows(batches: &[RecordBatch]) -> Vec<Vec<Option<String>>> {
    let mut out = Vec::new();
    for batch in batches {
        let columns: Vec<Vec<Option<String>>> = batch
            .schema()
            .fields()
            .iter()
            .zip(batch.columns())
            .filter(|(f, _)| f.name() != RESCUED)
            .map(|(_, c)| texts(c.as_ref()))
            .collect();
        for i in 0..batch.num_rows() {
            out.push(columns.iter().map(|c| c[i].clone()).collect());
        }
    }
    out.sort_by_key(|r| serde_json::to_string(r).unwrap());
    out
}

fn spark_rows(case: &Value) -> Vec<Vec<Option<String>>> {
    serde_json::from_value(case["rows"].clone()).unwrap()
}

/// lakeflow gives Spark's schema and rows for `name` (`_rescued_data` aside).
async fn same_as_spark(name: &str) -> Vec<RecordBatch> {
    let case = case(name);
    let batches = read(&case).await.unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(
        simple_string(&batches[0].schema()),
        case["schema"].as_str().unwrap(),
        "{name}: schema"
    );
    assert_eq!(rows(&batches), spark_rows(&case), "{name}: rows");
    batches
}

#[tokio::test]
async fn csv_inference_gives_sparks_types_and_values() {
    same_as_spark("csv_infer").await;
}

#[tokio::test]
async fn csv_without_inference_reads_strings_as_spark() {
    same_as_spark("csv_strings").await;
}

#[tokio::test]
async fn csv_dropmalformed_keeps_the_rows_spark_keeps() {
    same_as_spark("csv_dropmalformed").await;
}

#[tokio::test]
async fn csv_permissive_nulls_what_spark_nulls() {
    same_as_spark("csv_permissive").await;
}

#[tokio::test]
async fn json_inference_gives_sparks_types_and_values() {
    same_as_spark("json_infer").await;
}

#[tokio::test]
async fn json_multiline_array_reads_as_spark() {
    same_as_spark("json_multiline").await;
}

#[tokio::test]
async fn json_dropmalformed_keeps_the_rows_spark_keeps() {
    same_as_spark("json_dropmalformed").await;
}

#[tokio::test]
async fn failfast_fails_where_spark_fails() {
    for name in ["csv_failfast", "json_failfast"] {
        let case = case(name);
        assert!(case["error"].is_string(), "{name}: Spark failed");
        assert!(read(&case).await.is_err(), "{name}: lakeflow should fail");
    }
}

#[tokio::test]
async fn csv_inference_edge_cases_give_sparks_types_and_values() {
    same_as_spark("csv_infer_edge").await;
}

#[tokio::test]
async fn csv_quoted_newlines_and_doubled_quotes_read_as_spark() {
    same_as_spark("csv_multiline").await;
}

#[tokio::test]
async fn json_inference_widens_and_merges_as_spark() {
    same_as_spark("json_infer_edge").await;
}

/// Spark's `columnNameOfCorruptRecord` keeps the raw line of a row that does not fit; lakeflow
/// (like Databricks' `read_files`) rescues the bad value into `_rescued_data` instead. The
/// typed columns must agree, and lakeflow must rescue exactly the rows Spark marks corrupt.
#[tokio::test]
async fn corrupt_rows_spark_keeps_raw_are_the_rows_lakeflow_rescues() {
    let mut case = case("csv_permissive_corrupt");
    case["options"]
        .as_object_mut()
        .unwrap()
        .remove("columnNameOfCorruptRecord");
    // With a given schema, `read_files` adds the rescue column only when asked.
    case["options"]["rescuedDataColumn"] = RESCUED.into();
    case["schema_ddl"] = "id INT, amount DOUBLE, name STRING".into();
    let batches = read(&case).await.unwrap();
    let spark = spark_rows(&case);
    let typed: Vec<Vec<Option<String>>> = spark.iter().map(|r| r[..3].to_vec()).collect();
    assert_eq!(rows(&batches), typed);
    let schema = batches[0].schema();
    let rescued_at = schema.index_of(RESCUED).unwrap();
    let mut lake: Vec<(Option<String>, bool)> = Vec::new();
    for batch in &batches {
        let ids = texts(batch.column(0).as_ref());
        let rescued = batch.column(rescued_at);
        for (i, id) in ids.into_iter().enumerate() {
            lake.push((id, !rescued.is_null(i)));
        }
    }
    lake.sort();
    let mut marked: Vec<(Option<String>, bool)> = spark
        .iter()
        .map(|r| (r[0].clone(), r[3].is_some()))
        .collect();
    marked.sort();
    assert_eq!(lake, marked);
}

/// Spark infers `decimal(20,0)` for an integer too large for BIGINT and keeps it exact.
#[tokio::test]
async fn csv_integer_beyond_bigint_infers_decimal_as_spark() {
    same_as_spark("csv_huge_integer").await;
}

/// Spark drops a JSON field that is always `{}` (there is nothing to store).
#[tokio::test]
async fn json_always_empty_object_is_dropped_as_spark() {
    same_as_spark("json_empty_object").await;
}
