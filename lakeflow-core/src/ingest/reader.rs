//! Decoding one file into record batches of a fixed schema, as Auto Loader does: values that
//! do not fit their column (a type mismatch, a column the schema lacks, a name that differs
//! only in case) become NULL and go, with the file's path, into the rescued data column as
//! JSON; `mode` drops or fails such records instead; `_metadata` describes the file.
//!
//! CSV is parsed with the `csv` crate (quoted newlines, escapes, comments), JSON with
//! `serde_json` (lines, or whole files holding a record or an array of records), and typed
//! columns are cast from text with Arrow's casts, so a record's fate is decided value by value.
//! Inference (`infer_*`) reads the same records.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, StringBuilder,
    StructArray, TimestampMicrosecondArray, new_null_array,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use serde_json::{Map, Value};

use super::options::{FileOptions, IngestFormat, Mode, SchemaEvolution};

/// Rows per record batch.
const BATCH_ROWS: usize = 8192;

/// Records read per file for schema inference.
pub(crate) const INFER_RECORDS: usize = 1000;

/// The `_metadata` column's name.
pub const METADATA_COLUMN: &str = "_metadata";

/// A file to read, as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileInfo {
    /// The path shown to people and in `_metadata.file_path` (a URL, `file:///..` for local files).
    pub path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its modification time, microseconds since the epoch.
    pub modified: i64,
}

/// The `_metadata` struct's fields, as Spark exposes them.
pub fn metadata_fields() -> Fields {
    Fields::from(vec![
        Field::new("file_path", DataType::Utf8, false),
        Field::new("file_name", DataType::Utf8, false),
        Field::new("file_size", DataType::Int64, false),
        Field::new(
            "file_modification_time",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
    ])
}

/// What a file is decoded into.
#[derive(Debug)]
pub(crate) struct Target {
    /// The options.
    pub options: FileOptions,
    /// The data columns (the held schema), without the rescued and metadata columns.
    pub data: SchemaRef,
    /// The whole output: data, then the rescued column, then `_metadata`, when present.
    pub output: SchemaRef,
}

/// A failure decoding a file, to be reported naming the file.
#[derive(Debug)]
pub(crate) enum DecodeError {
    /// The file does not parse, or (FAILFAST) a value does not fit; at a 1-based line.
    Malformed { line: Option<u64>, message: String },
    /// The file has columns the schema lacks, and the evolution mode fails on them.
    NewColumns(Vec<String>),
}

/// Raw records of a file (or of a chunk of its records): column names, and per record its
/// line and values.
struct Records<'a> {
    names: Vec<String>,
    /// Per record: the line it starts at, and per column of `names` a value.
    rows: Vec<(u64, Vec<Raw<'a>>)>,
}

/// A value as the file holds it; CSV text is borrowed from the records it was read into.
#[derive(Debug, Clone)]
enum Raw<'a> {
    Missing,
    Text(std::borrow::Cow<'a, str>),
    Json(Value),
}

impl Raw<'_> {
    /// The value as text, borrowed when the file held text (no copy per value).
    fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Raw::Missing | Raw::Json(Value::Null) => None,
            Raw::Text(s) => Some(std::borrow::Cow::Borrowed(s.as_ref())),
            Raw::Json(Value::String(s)) => Some(std::borrow::Cow::Borrowed(s)),
            Raw::Json(v) => Some(std::borrow::Cow::Owned(v.to_string())),
        }
    }

    fn json(&self) -> Value {
        match self {
            Raw::Missing => Value::Null,
            Raw::Text(s) => Value::String(s.to_string()),
            Raw::Json(v) => v.clone(),
        }
    }
}

fn csv_reader<R: std::io::Read>(options: &FileOptions, input: R) -> csv::Reader<R> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(options.delimiter)
        .quote(options.quote)
        .escape((options.escape != options.quote).then_some(options.escape))
        .double_quote(true)
        .comment(options.comment)
        .from_reader(input)
}

/// A file's bytes as UTF-8 text, without a byte-order mark.
fn utf8(bytes: &[u8]) -> Result<&str, DecodeError> {
    let text = std::str::from_utf8(bytes).map_err(|e| DecodeError::Malformed {
        line: Some(
            1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64,
        ),
        message: "the file is not UTF-8; convert it (lakeflow reads UTF-8 only)".into(),
    })?;
    Ok(text.strip_prefix('\u{feff}').unwrap_or(text))
}

/// Parses a whole file into raw records (at most `limit`).
fn parse(
    options: &FileOptions,
    bytes: &[u8],
    limit: usize,
) -> Result<Records<'static>, DecodeError> {
    let text = utf8(bytes)?;
    match options.format {
        IngestFormat::Csv => parse_csv(options, text.as_bytes(), limit),
        IngestFormat::Json => parse_json(options, text, limit),
        IngestFormat::Text => Ok(Records {
            names: vec!["value".into()],
            rows: text
                .lines()
                .take(limit)
                .enumerate()
                .map(|(i, l)| (i as u64 + 1, vec![Raw::Text(l.to_string().into())]))
                .collect(),
        }),
        IngestFormat::Parquet => Err(DecodeError::Malformed {
            line: None,
            message: "internal: Parquet is not decoded as text".into(),
        }),
    }
}

fn parse_csv(
    options: &FileOptions,
    bytes: &[u8],
    limit: usize,
) -> Result<Records<'static>, DecodeError> {
    let mut reader = csv_reader(options, bytes);
    let mut names: Vec<String> = Vec::new();
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut first = true;
    loop {
        let line = reader.position().line();
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                return Err(DecodeError::Malformed {
                    line: e.position().map(|p| p.line()).or(Some(line)),
                    message: e.to_string(),
                });
            }
        }
        let line = record.position().map_or(line, |p| p.line());
        if first && options.header {
            first = false;
            names = header_names(&record);
            continue;
        }
        first = false;
        if rows.len() >= limit {
            break;
        }
        while names.len() < record.len() {
            names.push(format!("_c{}", names.len()));
        }
        let values = (0..names.len())
            .map(|i| match record.get(i) {
                Some(v) => Raw::Text(v.to_string().into()),
                None => Raw::Missing,
            })
            .collect();
        rows.push((line, values));
    }
    Ok(Records { names, rows })
}

fn parse_json(
    options: &FileOptions,
    text: &str,
    limit: usize,
) -> Result<Records<'static>, DecodeError> {
    let mut objects: Vec<(u64, Map<String, Value>)> = Vec::new();
    let mut push = |line: u64, value: Value| -> Result<(), DecodeError> {
        match value {
            Value::Object(map) => objects.push((line, map)),
            Value::Array(items) => {
                for item in items {
                    match item {
                        Value::Object(map) => objects.push((line, map)),
                        other => {
                            return Err(DecodeError::Malformed {
                                line: Some(line),
                                message: format!("an array element is not a JSON object: {other}"),
                            });
                        }
                    }
                }
            }
            other => {
                return Err(DecodeError::Malformed {
                    line: Some(line),
                    message: format!("a record is not a JSON object: {other}"),
                });
            }
        }
        Ok(())
    };
    let trimmed = text.trim_start();
    if options.multi_line || trimmed.starts_with('[') {
        // The whole file: one record, an array of records, or records one after another.
        let start_line = 1 + (text.len() - trimmed.len()) as u64;
        let mut stream = serde_json::Deserializer::from_str(text).into_iter::<Value>();
        loop {
            let offset = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(v)) => {
                    let line = start_line.max(1 + text[..offset].matches('\n').count() as u64);
                    push(line, v)?
                }
                Some(Err(e)) => {
                    return Err(DecodeError::Malformed {
                        line: Some(e.line() as u64),
                        message: format!("invalid JSON: {e}"),
                    });
                }
            }
        }
    } else {
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let value: Value = serde_json::from_str(line).map_err(|e| DecodeError::Malformed {
                line: Some(i as u64 + 1),
                message: format!("invalid JSON: {e}"),
            })?;
            push(i as u64 + 1, value)?;
        }
    }
    let mut names: Vec<String> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (_, map) in objects.iter().take(limit) {
        for key in map.keys() {
            if !index.contains_key(key) {
                index.insert(key.clone(), names.len());
                names.push(key.clone());
            }
        }
    }
    let rows = objects
        .into_iter()
        .take(limit)
        .map(|(line, mut map)| {
            let values = names
                .iter()
                .map(|n| map.remove(n).map_or(Raw::Missing, Raw::Json))
                .collect();
            (line, values)
        })
        .collect();
    Ok(Records { names, rows })
}

/// The columns of one file as inference sees them: name and type, in file order.
/// `head`: the bytes are the first whole lines of a longer file (a quoted value may still
/// run past them, so the last record read is left out unless the limit stopped before it).
pub(crate) fn infer_file(
    options: &FileOptions,
    bytes: &[u8],
    head: bool,
) -> Result<Vec<(String, DataType)>, DecodeError> {
    let mut records = parse(options, bytes, INFER_RECORDS)?;
    if head && records.rows.len() < INFER_RECORDS {
        records.rows.pop();
    }
    let columns = records.names.iter().enumerate().map(|(i, name)| {
        let values = records.rows.iter().map(move |(_, row)| &row[i]);
        let data_type = if !options.infer_types {
            DataType::Utf8
        } else if options.format == IngestFormat::Json {
            infer_json(values)
        } else {
            infer_text(
                values.filter_map(|v| v.text().map(|t| t.into_owned())),
                options,
            )
        };
        (name.clone(), data_type)
    });
    let mut columns: Vec<_> = columns.collect();
    if options.format == IngestFormat::Json {
        // Spark orders the columns of an inferred JSON schema by name, and drops those that
        // are only ever empty objects (nothing to store).
        columns.sort_by(|a, b| a.0.cmp(&b.0));
        columns = columns
            .into_iter()
            .filter_map(|(name, t)| Some((name, without_empty_structs(t)?)))
            .collect();
    }
    Ok(columns)
}

/// `t` without struct fields that have no fields themselves (Spark's inference drops them);
/// `None` when nothing is left.
fn without_empty_structs(t: DataType) -> Option<DataType> {
    match t {
        DataType::Struct(fields) => {
            let kept: Vec<Field> = fields
                .iter()
                .filter_map(|f| {
                    let t = without_empty_structs(f.data_type().clone())?;
                    Some(f.as_ref().clone().with_data_type(t))
                })
                .collect();
            (!kept.is_empty()).then(|| DataType::Struct(Fields::from(kept)))
        }
        DataType::List(item) => {
            let t = without_empty_structs(item.data_type().clone())?;
            Some(DataType::List(Arc::new(
                item.as_ref().clone().with_data_type(t),
            )))
        }
        other => Some(other),
    }
}

/// Whether column `i` of a JSON file holds only nulls and empty objects: inference leaves
/// such a column out, so it is not a new column either.
fn only_empty_objects(records: &Records<'_>, i: usize) -> bool {
    let types: Vec<DataType> = records
        .rows
        .iter()
        .filter_map(|(_, row)| match &row[i] {
            Raw::Json(v) => json_type(v),
            _ => None,
        })
        .collect();
    !types.is_empty()
        && types
            .into_iter()
            .all(|t| without_empty_structs(t).is_none())
}

/// The narrowest of INT, BIGINT, DOUBLE, BOOLEAN, DATE, TIMESTAMP that every value casts to
/// (Spark's CSV inference), else STRING.
fn infer_text(values: impl Iterator<Item = String>, options: &FileOptions) -> DataType {
    let candidates = [
        DataType::Int32,
        DataType::Int64,
        DataType::Float64,
        DataType::Boolean,
        DataType::Date32,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    ];
    let values: Vec<String> = values.filter(|v| *v != options.null_value).collect();
    if values.is_empty() {
        return DataType::Utf8;
    }
    if let Some(decimal) = integers_beyond_bigint(&values) {
        return decimal;
    }
    let array: ArrayRef = Arc::new(StringArray::from(values));
    for candidate in candidates {
        if candidate == DataType::Date32 {
            // Only ISO dates (yyyy-MM-dd) infer as DATE, as in Spark.
            let strings = array.as_any().downcast_ref::<StringArray>();
            if strings.is_some_and(|s| s.iter().flatten().any(|v| v.len() != 10)) {
                continue;
            }
        }
        if casts_every_value(&array, &candidate, options) {
            return candidate;
        }
    }
    DataType::Utf8
}

/// Spark's type for integers of which some do not fit BIGINT: `DECIMAL(p, 0)`, `p` the most
/// digits (INT values count 10, BIGINT ones 20), exact where DOUBLE would round; `None` when
/// every value fits BIGINT, one is not an integer, or one needs more than 38 digits.
fn integers_beyond_bigint(values: &[String]) -> Option<DataType> {
    let mut precision = 0u8;
    let mut beyond = false;
    for value in values {
        let v = value.trim();
        let digits = v.strip_prefix(['-', '+']).unwrap_or(v);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let needed = if v.parse::<i32>().is_ok() {
            10
        } else if v.parse::<i64>().is_ok() {
            20
        } else {
            beyond = true;
            digits.trim_start_matches('0').len().max(1)
        };
        precision = precision.max(u8::try_from(needed).ok()?);
    }
    (beyond && precision <= 38).then_some(DataType::Decimal128(precision, 0))
}

fn casts_every_value(array: &ArrayRef, to: &DataType, options: &FileOptions) -> bool {
    match cast_text(array, to, options) {
        Some(cast) => cast.null_count() == array.null_count(),
        None => false,
    }
}

/// Spark's JSON inference: integers are BIGINT, other numbers DOUBLE, objects structs (fields
/// by name), arrays lists; conflicting types become STRING.
fn infer_json<'a, 'r: 'a>(values: impl Iterator<Item = &'a Raw<'r>>) -> DataType {
    let mut result: Option<DataType> = None;
    for value in values {
        let Raw::Json(v) = value else { continue };
        let Some(t) = json_type(v) else { continue };
        result = Some(match result {
            None => t,
            Some(r) => merge_types(&r, &t),
        });
    }
    result.unwrap_or(DataType::Utf8)
}

fn json_type(v: &Value) -> Option<DataType> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => DataType::Boolean,
        Value::Number(n) if n.is_i64() => DataType::Int64,
        Value::Number(_) => DataType::Float64,
        Value::String(_) => DataType::Utf8,
        Value::Array(items) => {
            let mut item: Option<DataType> = None;
            for i in items {
                if let Some(t) = json_type(i) {
                    item = Some(match item {
                        None => t,
                        Some(r) => merge_types(&r, &t),
                    });
                }
            }
            DataType::List(Arc::new(Field::new(
                "element",
                item.unwrap_or(DataType::Utf8),
                true,
            )))
        }
        Value::Object(map) => {
            let mut fields: Vec<Field> = map
                .iter()
                .map(|(k, v)| Field::new(k, json_type(v).unwrap_or(DataType::Utf8), true))
                .collect();
            fields.sort_by(|a, b| a.name().cmp(b.name()));
            DataType::Struct(Fields::from(fields))
        }
    })
}

/// The type two inferred types of one column widen to.
pub(crate) fn merge_types(a: &DataType, b: &DataType) -> DataType {
    use DataType::*;
    if a == b {
        return a.clone();
    }
    match (a, b) {
        (Int32, Int64) | (Int64, Int32) => Int64,
        (Int32 | Int64 | Float64, Int32 | Int64 | Float64) => Float64,
        (Date32, Timestamp(..)) | (Timestamp(..), Date32) => {
            Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
        }
        (List(x), List(y)) => List(Arc::new(Field::new(
            "element",
            merge_types(x.data_type(), y.data_type()),
            true,
        ))),
        (Struct(x), Struct(y)) => {
            let mut fields: Vec<Field> = x.iter().map(|f| f.as_ref().clone()).collect();
            for f in y.iter() {
                match fields.iter_mut().find(|g| g.name() == f.name()) {
                    Some(g) => {
                        *g = Field::new(g.name(), merge_types(g.data_type(), f.data_type()), true)
                    }
                    None => fields.push(f.as_ref().clone()),
                }
            }
            fields.sort_by(|a, b| a.name().cmp(b.name()));
            Struct(Fields::from(fields))
        }
        _ => Utf8,
    }
}

/// Text cast to `to`, values that do not fit becoming NULL; `dateFormat` and
/// `timestampFormat` (Spark patterns) are honoured. `None` when the type cannot come from text.
fn cast_text(array: &ArrayRef, to: &DataType, options: &FileOptions) -> Option<ArrayRef> {
    let strings = array.as_any().downcast_ref::<StringArray>()?;
    match to {
        DataType::Date32 if options.date_format.is_some() => {
            let format = spark_pattern(options.date_format.as_deref()?);
            let days: datafusion::arrow::array::Date32Array = strings
                .iter()
                .map(|v| {
                    v.and_then(|s| chrono::NaiveDate::parse_from_str(s.trim(), &format).ok())
                        .map(|d| {
                            (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default())
                                .num_days() as i32
                        })
                })
                .collect();
            Some(Arc::new(days))
        }
        DataType::Timestamp(TimeUnit::Microsecond, zone) if options.timestamp_format.is_some() => {
            let format = spark_pattern(options.timestamp_format.as_deref()?);
            let micros: TimestampMicrosecondArray = strings
                .iter()
                .map(|v| {
                    v.and_then(|s| chrono::NaiveDateTime::parse_from_str(s.trim(), &format).ok())
                        .map(|t| t.and_utc().timestamp_micros())
                })
                .collect();
            Some(Arc::new(micros.with_timezone_opt(zone.clone())))
        }
        DataType::Boolean => {
            // Spark reads true/false in any case, nothing else.
            let b: BooleanArray = strings
                .iter()
                .map(|v| {
                    v.and_then(|s| match s.trim().to_ascii_lowercase().as_str() {
                        "true" => Some(true),
                        "false" => Some(false),
                        _ => None,
                    })
                })
                .collect();
            Some(Arc::new(b))
        }
        _ => {
            let trimmed: StringArray = if matches!(to, DataType::Utf8) {
                strings.clone()
            } else {
                strings.iter().map(|v| v.map(str::trim)).collect()
            };
            let safe = CastOptions {
                safe: true,
                ..Default::default()
            };
            cast_with_options(&trimmed, to, &safe).ok()
        }
    }
}

/// A Spark datetime pattern (`yyyy-MM-dd HH:mm:ss`) as a chrono format.
fn spark_pattern(pattern: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = pattern.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let mut n = 1;
        while i + n < chars.len() && chars[i + n] == c {
            n += 1;
        }
        let piece = match (c, n) {
            ('y', 2) => "%y".to_string(),
            ('y', _) => "%Y".to_string(),
            ('M', 1 | 2) => "%m".to_string(),
            ('M', 3) => "%b".to_string(),
            ('M', _) => "%B".to_string(),
            ('d', _) => "%d".to_string(),
            ('H', _) => "%H".to_string(),
            ('h', _) => "%I".to_string(),
            ('m', _) => "%M".to_string(),
            ('s', _) => "%S".to_string(),
            ('S', n) => format!("%{n}f"),
            ('a', _) => "%p".to_string(),
            ('\'', _) => String::new(),
            (c, n) => std::iter::repeat_n(c, n).collect(),
        };
        out.push_str(&piece);
        i += n;
    }
    out
}

/// The columns of a file (by `names`) that are new to the schema `data`: not in it, not even
/// in another case (such a column is rescued, never added), and not the rescued data or
/// `_metadata` column. CSV without a header has no column names, so it has no new columns
/// (extra fields make a record malformed).
pub(crate) fn new_columns<'a>(
    options: &FileOptions,
    data: &Schema,
    names: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    if options.format == IngestFormat::Csv && !options.header {
        return Vec::new();
    }
    let rescued = options.rescued_column();
    names
        .into_iter()
        .filter(|n| {
            Some(*n) != rescued
                && *n != METADATA_COLUMN
                && !data
                    .fields()
                    .iter()
                    .any(|f| f.name().eq_ignore_ascii_case(n))
        })
        .map(str::to_string)
        .collect()
}

/// Files at least this large may be decoded by several threads (see [`decode_in`]).
pub(crate) const SPLIT_BYTES: usize = 4 << 20;

/// Decodes one file's bytes into batches of the target's output schema, with the number of
/// records DROPMALFORMED left out; up to `threads` threads for one file: a CSV file of at least
/// [`SPLIT_BYTES`] without a quote character is cut at line ends into that many pieces,
/// decoded at once (no record can span lines without quotes, so every record is whole in one
/// piece). The batches come in file order; line numbers in errors are the file's.
pub(crate) fn decode_in(
    target: &Target,
    file: &FileInfo,
    bytes: &[u8],
    threads: usize,
) -> Result<(Vec<RecordBatch>, u64), DecodeError> {
    if target.options.format == IngestFormat::Csv {
        let text = utf8(bytes)?.as_bytes();
        let pieces = line_pieces(text, &target.options, threads);
        if pieces.len() < 2 {
            return decode_csv(target, file, text, None, 0);
        }
        // The header line is the first piece's; the pieces after it are named by it.
        let header = target.options.header.then(|| {
            let mut record = csv::StringRecord::new();
            let _ = csv_reader(&target.options, text).read_record(&mut record);
            header_names(&record)
        });
        let decoded: Vec<Result<(Vec<RecordBatch>, u64), DecodeError>> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = pieces
                    .iter()
                    .enumerate()
                    .map(|(i, &(start, end, lines_before))| {
                        let names = header.clone().filter(|_| i > 0);
                        scope.spawn(move || {
                            decode_csv(target, file, &text[start..end], names, lines_before)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| {
                        h.join().unwrap_or_else(|_| {
                            Err(DecodeError::Malformed {
                                line: None,
                                message: "internal: a decoding thread panicked".into(),
                            })
                        })
                    })
                    .collect()
            });
        let (mut batches, mut dropped) = (Vec::new(), 0);
        for piece in decoded {
            let (more, n) = piece?;
            batches.extend(more);
            dropped += n;
        }
        return Ok((batches, dropped));
    }
    let records = parse(&target.options, bytes, usize::MAX)?;
    decode_records(target, file, &records)
}

/// Where `text` may be cut into up to `pieces` pieces of whole lines: `(start, end, lines
/// before start)`; one piece when it is small, has quotes (a quoted field may hold a line
/// end), or `pieces` is 1.
fn line_pieces(text: &[u8], options: &FileOptions, pieces: usize) -> Vec<(usize, usize, u64)> {
    let whole = vec![(0, text.len(), 0)];
    if pieces < 2 || text.len() < SPLIT_BYTES || text.contains(&options.quote) {
        return whole;
    }
    let mut cuts = vec![(0, 0u64)];
    let mut lines = 0u64;
    let mut from = 0;
    for k in 1..pieces {
        let target = text.len() * k / pieces;
        if target <= from {
            continue;
        }
        let Some(newline) = text[target..].iter().position(|b| *b == b'\n') else {
            break;
        };
        let cut = target + newline + 1;
        if cut >= text.len() {
            break;
        }
        lines += text[from..cut].iter().filter(|b| **b == b'\n').count() as u64;
        cuts.push((cut, lines));
        from = cut;
    }
    cuts.iter()
        .enumerate()
        .map(|(i, &(start, before))| {
            let end = cuts.get(i + 1).map_or(text.len(), |c| c.0);
            (start, end, before)
        })
        .collect()
}

/// Decodes CSV text a batch of records at a time, so that what a file holds in memory
/// beside its bytes is its decoded batches and one batch of raw records. The records are
/// read into buffers reused from batch to batch, and their values are borrowed, not copied.
/// A record with more fields than the header names them `_cN` from where it is met; the
/// records before it had no value there, so they decode as they would with the name known.
/// `names`: the header's names, for a piece of a file after its first (which has no header
/// line); `lines_before`: the file's lines before the text, for line numbers.
fn decode_csv(
    target: &Target,
    file: &FileInfo,
    text: &[u8],
    names: Option<Vec<String>>,
    lines_before: u64,
) -> Result<(Vec<RecordBatch>, u64), DecodeError> {
    let mut batches = Vec::new();
    let dropped = decode_csv_from(target, file, text, names, lines_before, &mut |batch| {
        batches.push(batch);
        true
    })?;
    Ok((batches, dropped))
}

/// Decodes a whole CSV file read from `input` (a byte-order mark at its start is skipped),
/// handing each batch to `emit` as soon as it is decoded (`false` from it stops the decode):
/// the file is never all in memory. The records left out are returned.
pub(crate) fn decode_csv_stream(
    target: &Target,
    file: &FileInfo,
    mut input: impl std::io::BufRead,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<u64, DecodeError> {
    let io = |e: std::io::Error| DecodeError::Malformed {
        line: None,
        message: e.to_string(),
    };
    if input
        .fill_buf()
        .map_err(io)?
        .starts_with("\u{feff}".as_bytes())
    {
        input.consume(3);
    }
    decode_csv_from(target, file, input, None, 0, emit)
}

/// [`decode_csv`] from any reader, each batch to `emit`.
fn decode_csv_from(
    target: &Target,
    file: &FileInfo,
    input: impl std::io::Read,
    names: Option<Vec<String>>,
    lines_before: u64,
    emit: &mut dyn FnMut(RecordBatch) -> bool,
) -> Result<u64, DecodeError> {
    let options = &target.options;
    let mut reader = csv_reader(options, input);
    let mut header = options.header && names.is_none();
    let mut names: Vec<String> = names.unwrap_or_default();
    let mut buffers: Vec<csv::StringRecord> = Vec::new();
    let mut lines: Vec<u64> = Vec::with_capacity(BATCH_ROWS);
    let (mut dropped, mut decoded_any) = (0, false);
    loop {
        lines.clear();
        let mut done = false;
        while lines.len() < BATCH_ROWS {
            let n = lines.len();
            if buffers.len() == n {
                buffers.push(csv::StringRecord::new());
            }
            let line = reader.position().line();
            match reader.read_record(&mut buffers[n]) {
                Ok(false) => {
                    done = true;
                    break;
                }
                Ok(true) => {}
                Err(e) => {
                    let message = match e.kind() {
                        csv::ErrorKind::Utf8 { .. } => {
                            "the file is not UTF-8; convert it (lakeflow reads UTF-8 only)".into()
                        }
                        _ => e.to_string(),
                    };
                    return Err(DecodeError::Malformed {
                        line: e
                            .position()
                            .map(|p| p.line())
                            .or(Some(line))
                            .map(|l| l + lines_before),
                        message,
                    });
                }
            }
            let record = &buffers[n];
            if header {
                header = false;
                names = header_names(record);
                continue;
            }
            while names.len() < record.len() {
                names.push(format!("_c{}", names.len()));
            }
            lines.push(record.position().map_or(line, |p| p.line()) + lines_before);
        }
        if !lines.is_empty() || !decoded_any {
            let rows = buffers
                .iter()
                .zip(&lines)
                .map(|(record, line)| {
                    let values = (0..names.len())
                        .map(|i| match record.get(i) {
                            Some(v) => Raw::Text(std::borrow::Cow::Borrowed(v)),
                            None => Raw::Missing,
                        })
                        .collect();
                    (*line, values)
                })
                .collect();
            let records = Records {
                names: names.clone(),
                rows,
            };
            let (more, n) = decode_records(target, file, &records)?;
            dropped += n;
            decoded_any = true;
            for batch in more {
                if !emit(batch) {
                    return Ok(dropped);
                }
            }
        }
        if done {
            return Ok(dropped);
        }
    }
}

/// A header record's column names; an empty one is `_cN`, as in Spark.
fn header_names(record: &csv::StringRecord) -> Vec<String> {
    record
        .iter()
        .enumerate()
        .map(|(i, n)| match n.trim() {
            "" => format!("_c{i}"),
            n => n.to_string(),
        })
        .collect()
}

/// Decodes raw records into batches of the target's output, with the records left out.
fn decode_records(
    target: &Target,
    file: &FileInfo,
    records: &Records<'_>,
) -> Result<(Vec<RecordBatch>, u64), DecodeError> {
    let options = &target.options;
    let rescued = options.rescued_column();
    let mut new = new_columns(
        options,
        &target.data,
        records.names.iter().map(String::as_str),
    );
    if options.format == IngestFormat::Json {
        new.retain(|name| {
            let i = records.names.iter().position(|n| n == name);
            !i.is_some_and(|i| only_empty_objects(records, i))
        });
    }
    if !new.is_empty()
        && !matches!(
            options.evolution(),
            SchemaEvolution::Rescue | SchemaEvolution::None
        )
    {
        return Err(DecodeError::NewColumns(new));
    }
    // Columns of the file that the schema does not have (by exact name): rescued, except
    // that with `none` new columns are ignored unless a rescued data column was asked for.
    let ignore_new =
        options.evolution() == SchemaEvolution::None && options.rescued_column.is_none();
    let unknown: Vec<usize> = records
        .names
        .iter()
        .enumerate()
        .filter(|(_, n)| target.data.field_with_name(n).is_err() && Some(n.as_str()) != rescued)
        .filter(|(_, n)| !(ignore_new && new.contains(n)))
        .map(|(i, _)| i)
        .collect();
    let mut batches = Vec::new();
    let mut dropped = 0;
    for chunk in records.rows.chunks(BATCH_ROWS) {
        let (batch, n) = decode_chunk(target, file, &records.names, &unknown, chunk)?;
        dropped += n;
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    Ok((batches, dropped))
}

fn decode_chunk(
    target: &Target,
    file: &FileInfo,
    names: &[String],
    unknown: &[usize],
    rows: &[(u64, Vec<Raw<'_>>)],
) -> Result<(RecordBatch, u64), DecodeError> {
    let options = &target.options;
    let rescued_name = options.rescued_column();
    // Per row, the rescued values in the order met (the file's path goes last, as in Spark).
    let mut rescued: Vec<Option<Vec<(String, Value)>>> = vec![None; rows.len()];
    let mut bad = vec![false; rows.len()];
    let rescue = |row: usize, key: &str, value: Value, rescued: &mut Vec<Option<_>>| {
        rescued[row]
            .get_or_insert_with(Vec::new)
            .push((key.to_string(), value));
    };
    let mut columns: Vec<ArrayRef> = Vec::new();
    for field in target.data.fields() {
        let position = names.iter().position(|n| n == field.name());
        let Some(position) = position else {
            columns.push(new_null_array(field.data_type(), rows.len()));
            continue;
        };
        let values: Vec<&Raw<'_>> = rows.iter().map(|(_, r)| &r[position]).collect();
        let column = if is_nested(field.data_type()) {
            decode_nested(field, &values, options)
        } else {
            let text: StringArray = values
                .iter()
                .map(|v| v.text().filter(|s| *s != options.null_value.as_str()))
                .collect();
            let text: ArrayRef = Arc::new(text);
            let cast = cast_text(&text, field.data_type(), options)
                .unwrap_or_else(|| new_null_array(field.data_type(), rows.len()));
            let mismatched: Vec<bool> = (0..rows.len())
                .map(|i| text.is_valid(i) && cast.is_null(i))
                .collect();
            (cast, mismatched)
        };
        let (array, mismatched) = column;
        for (i, m) in mismatched.iter().enumerate() {
            if !m {
                continue;
            }
            match options.mode {
                Mode::FailFast => {
                    return Err(DecodeError::Malformed {
                        line: Some(rows[i].0),
                        message: format!(
                            "value {} of column `{}` is not {} (mode FAILFAST)",
                            values[i].json(),
                            field.name(),
                            super::spark_type_name(field.data_type())
                        ),
                    });
                }
                Mode::DropMalformed => bad[i] = true,
                Mode::Permissive => {
                    rescue(i, field.name(), values[i].json(), &mut rescued);
                }
            }
        }
        columns.push(array);
    }
    // Values of columns the schema lacks; CSV records with more fields than the header.
    for (i, (line, row)) in rows.iter().enumerate() {
        for &u in unknown {
            if let Some(v) = row.get(u).filter(|v| !matches!(v, Raw::Missing)) {
                if options.format == IngestFormat::Csv && !options.header {
                    // Without a header, extra fields make the record malformed.
                    match options.mode {
                        Mode::FailFast => {
                            return Err(DecodeError::Malformed {
                                line: Some(*line),
                                message: format!(
                                    "the record has {} fields, the schema {} (mode FAILFAST)",
                                    row.iter().filter(|v| !matches!(v, Raw::Missing)).count(),
                                    target.data.fields().len()
                                ),
                            });
                        }
                        Mode::DropMalformed => {
                            bad[i] = true;
                            continue;
                        }
                        Mode::Permissive => {}
                    }
                }
                if rescued_name.is_some() && !matches!(v, Raw::Json(Value::Null)) {
                    rescue(i, &names[u], v.json(), &mut rescued);
                }
            }
        }
    }
    if let Some(_name) = rescued_name {
        let mut builder = StringBuilder::new();
        for r in rescued {
            match r {
                Some(mut entries) => {
                    entries.push(("_file_path".into(), Value::String(file.path.clone())));
                    let text: Vec<String> = entries
                        .iter()
                        .map(|(k, v)| format!("{}:{v}", Value::String(k.clone())))
                        .collect();
                    builder.append_value(format!("{{{}}}", text.join(",")));
                }
                None => builder.append_null(),
            }
        }
        columns.push(Arc::new(builder.finish()));
    }
    if target.output.field_with_name(METADATA_COLUMN).is_ok() {
        columns.push(metadata_array(file, rows.len()));
    }
    let batch = RecordBatch::try_new(target.output.clone(), columns).map_err(|e| {
        DecodeError::Malformed {
            line: None,
            message: format!("internal: {e}"),
        }
    })?;
    let dropped = bad.iter().filter(|b| **b).count() as u64;
    if dropped == 0 {
        return Ok((batch, 0));
    }
    let keep: BooleanArray = bad.iter().map(|b| Some(!b)).collect();
    let batch = filter_record_batch(&batch, &keep).map_err(|e| DecodeError::Malformed {
        line: None,
        message: format!("internal: {e}"),
    })?;
    Ok((batch, dropped))
}

fn is_nested(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Struct(_) | DataType::List(_) | DataType::LargeList(_) | DataType::Map(..)
    )
}

/// A nested column decoded from JSON values with arrow-json: the whole chunk at once, or when
/// that fails value by value, so only the values that do not fit are NULL (and reported).
fn decode_nested(
    field: &Field,
    values: &[&Raw<'_>],
    options: &FileOptions,
) -> (ArrayRef, Vec<bool>) {
    let _ = options;
    let schema = Arc::new(Schema::new(vec![Field::new(
        "v",
        field.data_type().clone(),
        true,
    )]));
    let decode = |rows: &[Value]| -> Option<ArrayRef> {
        let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
            .with_coerce_primitive(true)
            .build_decoder()
            .ok()?;
        decoder.serialize(rows).ok()?;
        decoder.flush().ok()?.map(|b| b.column(0).clone())
    };
    let wrap = |v: &Raw<'_>| {
        let mut m = Map::new();
        let value = match v {
            Raw::Json(v) => v.clone(),
            _ => Value::Null,
        };
        m.insert("v".into(), value);
        Value::Object(m)
    };
    let rows: Vec<Value> = values.iter().map(|v| wrap(v)).collect();
    if let Some(array) = decode(&rows) {
        return (array, vec![false; values.len()]);
    }
    let mut parts: Vec<ArrayRef> = Vec::new();
    let mut mismatched = Vec::new();
    for row in &rows {
        match decode(std::slice::from_ref(row)) {
            Some(a) => {
                parts.push(a);
                mismatched.push(false);
            }
            None => {
                parts.push(new_null_array(field.data_type(), 1));
                mismatched.push(true);
            }
        }
    }
    let refs: Vec<&dyn Array> = parts.iter().map(|a| a.as_ref()).collect();
    match datafusion::arrow::compute::concat(&refs) {
        Ok(array) => (array, mismatched),
        Err(_) => (
            new_null_array(field.data_type(), values.len()),
            vec![true; values.len()],
        ),
    }
}

fn metadata_array(file: &FileInfo, rows: usize) -> ArrayRef {
    let name = file
        .path
        .rsplit('/')
        .next()
        .unwrap_or(&file.path)
        .to_string();
    let fields = metadata_fields();
    let arrays: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![file.path.clone(); rows])),
        Arc::new(StringArray::from(vec![name; rows])),
        Arc::new(Int64Array::from(vec![file.size as i64; rows])),
        Arc::new(TimestampMicrosecondArray::from(vec![file.modified; rows]).with_timezone("UTC")),
    ];
    Arc::new(StructArray::new(fields, arrays, None))
}

/// Parquet: the file's batches conformed to the target by column name (a missing column is
/// NULL, a column of another type is cast where every value fits, else rescued).
pub(crate) fn decode_parquet(
    target: &Target,
    file: &FileInfo,
    bytes: bytes::Bytes,
) -> Result<(Vec<RecordBatch>, u64), DecodeError> {
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
    let malformed = |e: &dyn std::fmt::Display| DecodeError::Malformed {
        line: None,
        message: e.to_string(),
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes)
        .map_err(|e| malformed(&e))?
        .with_batch_size(BATCH_ROWS)
        .build()
        .map_err(|e| malformed(&e))?;
    let options = &target.options;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| malformed(&e))?;
        let schema = batch.schema();
        let new = new_columns(
            options,
            &target.data,
            schema.fields().iter().map(|f| f.name().as_str()),
        );
        if !new.is_empty()
            && !matches!(
                options.evolution(),
                SchemaEvolution::Rescue | SchemaEvolution::None
            )
        {
            return Err(DecodeError::NewColumns(new));
        }
        let mut columns = Vec::new();
        for field in target.data.fields() {
            let column = match batch.column_by_name(field.name()) {
                None => new_null_array(field.data_type(), batch.num_rows()),
                Some(c) if c.data_type() == field.data_type() => c.clone(),
                Some(c) => {
                    let safe = CastOptions {
                        safe: true,
                        ..Default::default()
                    };
                    cast_with_options(c, field.data_type(), &safe)
                        .unwrap_or_else(|_| new_null_array(field.data_type(), c.len()))
                }
            };
            columns.push(column);
        }
        if options.rescued_column().is_some() {
            columns.push(new_null_array(&DataType::Utf8, batch.num_rows()));
        }
        if target.output.field_with_name(METADATA_COLUMN).is_ok() {
            columns.push(metadata_array(file, batch.num_rows()));
        }
        out.push(RecordBatch::try_new(target.output.clone(), columns).map_err(|e| malformed(&e))?);
    }
    Ok((out, 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(options: FileOptions, data: Schema) -> Target {
        let data = Arc::new(data);
        let output = super::super::output_schema(&options, &data, true);
        Target {
            options,
            data,
            output,
        }
    }

    fn file() -> FileInfo {
        FileInfo {
            path: "file:///in/a.csv".into(),
            size: 10,
            modified: 0,
        }
    }

    #[test]
    fn a_value_that_does_not_fit_is_rescued_with_the_file_path() {
        let t = target(
            FileOptions::csv(),
            Schema::new(vec![
                Field::new("id", DataType::Int32, true),
                Field::new("name", DataType::Utf8, true),
            ]),
        );
        let (batches, dropped) = decode(&t, &file(), b"id,name\n1,a\nabc,b\n").unwrap();
        assert_eq!(dropped, 0);
        let b = &batches[0];
        assert_eq!(b.num_rows(), 2);
        let rescued = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
        assert!(rescued.is_null(0));
        assert_eq!(
            rescued.value(1),
            r#"{"id":"abc","_file_path":"file:///in/a.csv"}"#
        );
        assert!(b.column(0).is_null(1));
    }

    fn decode(
        t: &Target,
        f: &FileInfo,
        bytes: &[u8],
    ) -> Result<(Vec<RecordBatch>, u64), DecodeError> {
        decode_in(t, f, bytes, 1)
    }

    #[test]
    fn the_head_of_a_file_infers_without_its_last_record() {
        let o = FileOptions::csv().infer_column_types(true);
        // The head ends inside a quoted value that runs on past it.
        let bytes = b"a,b\n1,2\n3,\"long\n";
        let types = |head| -> Vec<DataType> {
            infer_file(&o, bytes, head)
                .unwrap()
                .into_iter()
                .map(|(_, t)| t)
                .collect()
        };
        assert_eq!(types(true), [DataType::Int32, DataType::Int32]);
        assert_eq!(types(false), [DataType::Int32, DataType::Utf8]);
    }

    #[test]
    fn a_large_csv_without_quotes_decodes_in_pieces_as_it_does_whole() {
        let options = FileOptions::csv()
            .option("schemaEvolutionMode", "rescue")
            .option("mode", "DROPMALFORMED");
        let t = target(
            options,
            Schema::new(vec![
                Field::new("id", DataType::Int64, true),
                Field::new("name", DataType::Utf8, true),
            ]),
        );
        let mut text = String::from("id,name\n");
        let mut i = 0;
        while text.len() < SPLIT_BYTES + (256 << 10) {
            match i % 50_000 {
                7 => text.push_str("not a number,x\n"),
                8 => text.push_str(&format!("{i},n{i},extra\n")),
                _ => text.push_str(&format!("{i},name number {i}\n")),
            }
            i += 1;
        }
        let pieces = line_pieces(text.as_bytes(), &t.options, 3);
        assert_eq!(pieces.len(), 3);
        assert!(
            pieces
                .iter()
                .all(|(s, _, _)| *s == 0 || text.as_bytes()[s - 1] == b'\n')
        );
        let whole = decode_in(&t, &file(), text.as_bytes(), 1).unwrap();
        let split = decode_in(&t, &file(), text.as_bytes(), 3).unwrap();
        assert_eq!(whole.1, split.1);
        assert!(whole.1 > 1, "malformed rows were dropped in every piece");
        let rows = |batches: &[RecordBatch]| {
            let all =
                datafusion::arrow::compute::concat_batches(&batches[0].schema(), batches).unwrap();
            datafusion::arrow::util::pretty::pretty_format_batches(&[all])
                .unwrap()
                .to_string()
        };
        assert_eq!(rows(&whole.0), rows(&split.0));
        // A value FAILFAST refuses names the file's line, wherever the piece starts.
        let strict = target(
            FileOptions::csv()
                .option("schemaEvolutionMode", "rescue")
                .option("mode", "FAILFAST"),
            t.data.as_ref().clone(),
        );
        let line = |threads| match decode_in(&strict, &file(), text.as_bytes(), threads) {
            Err(DecodeError::Malformed { line, .. }) => line,
            other => panic!("{other:?}"),
        };
        assert_eq!(line(1), Some(9));
        // The first two refused values made valid: the first left is in the second piece.
        let late = text.replacen("not a number", "1", 2);
        let late_line = |threads| match decode_in(&strict, &file(), late.as_bytes(), threads) {
            Err(DecodeError::Malformed { line, .. }) => line,
            other => panic!("{other:?}"),
        };
        assert_eq!(late_line(3), late_line(1));
        assert_eq!(late_line(1), Some(100_009));
        let (second, _, _) = line_pieces(late.as_bytes(), &t.options, 3)[1];
        assert!(late[..second].lines().count() < 100_009, "in a later piece");
        // With a quote anywhere, a file is never cut (a quoted value may hold a line end).
        let quoted = format!("{text}1,\"a\nb\"\n");
        assert_eq!(line_pieces(quoted.as_bytes(), &t.options, 3).len(), 1);
    }

    #[test]
    fn a_long_csv_decodes_in_batches_with_a_late_extra_field_rescued() {
        let t = target(
            FileOptions::csv().option("schemaEvolutionMode", "rescue"),
            Schema::new(vec![
                Field::new("id", DataType::Int32, true),
                Field::new("name", DataType::Utf8, true),
            ]),
        );
        let rows = BATCH_ROWS * 2 + 10;
        let mut text = String::from("id,name\n");
        for i in 0..rows {
            if i == BATCH_ROWS + 5 {
                text.push_str(&format!("{i},n{i},extra\n"));
            } else {
                text.push_str(&format!("{i},n{i}\n"));
            }
        }
        let (batches, dropped) = decode(&t, &file(), text.as_bytes()).unwrap();
        assert_eq!(dropped, 0);
        assert_eq!(batches.len(), 3);
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), rows);
        let rescued: Vec<(usize, String)> = batches
            .iter()
            .flat_map(|b| {
                let r = b.column(2).as_any().downcast_ref::<StringArray>().unwrap();
                let ids = datafusion::arrow::array::AsArray::as_primitive::<
                    datafusion::arrow::datatypes::Int32Type,
                >(b.column(0));
                (0..b.num_rows())
                    .filter(|i| r.is_valid(*i))
                    .map(|i| (ids.value(i) as usize, r.value(i).to_string()))
                    .collect::<Vec<_>>()
            })
            .collect();
        assert_eq!(
            rescued,
            [(
                BATCH_ROWS + 5,
                r#"{"_c2":"extra","_file_path":"file:///in/a.csv"}"#.to_string()
            )]
        );
        // A header alone is a file without records, checked for new columns all the same.
        let added = target(FileOptions::csv(), t.data.as_ref().clone());
        assert!(matches!(
            decode(&added, &file(), b"id,name,more\n"),
            Err(DecodeError::NewColumns(c)) if c == ["more"]
        ));
    }

    #[test]
    fn new_columns_leave_out_case_variants_the_rescued_column_and_headerless_csv() {
        let data = Schema::new(vec![Field::new("id", DataType::Int32, true)]);
        let names = ["id", "ID", "_rescued_data", "_metadata", "extra"];
        assert_eq!(new_columns(&FileOptions::csv(), &data, names), ["extra"]);
        let headerless = FileOptions::csv().header(false);
        assert!(new_columns(&headerless, &data, ["_c0", "_c1"]).is_empty());
    }

    #[test]
    fn a_new_column_fails_the_decode_unless_rescued_or_ignored() {
        let data = Schema::new(vec![Field::new("id", DataType::Int32, true)]);
        let bytes = b"id,extra\n1,z\n";
        let added = target(FileOptions::csv(), data.clone());
        assert!(matches!(
            decode(&added, &file(), bytes),
            Err(DecodeError::NewColumns(c)) if c == ["extra"]
        ));
        let ignored = target(
            FileOptions::csv().option("schemaEvolutionMode", "none"),
            data,
        );
        let (batches, _) = decode(&ignored, &file(), bytes).unwrap();
        let rescued = batches[0].column(1);
        assert!(rescued.is_null(0), "none ignores new columns");
    }

    #[test]
    fn spark_patterns_become_chrono_formats() {
        assert_eq!(spark_pattern("yyyy-MM-dd HH:mm:ss"), "%Y-%m-%d %H:%M:%S");
        assert_eq!(spark_pattern("dd/MM/yyyy"), "%d/%m/%Y");
    }

    #[test]
    fn csv_inference_follows_spark() {
        let o = FileOptions::csv();
        let cols = infer_file(
            &o,
            b"a,b,c,d,e\n1,1.5,true,2024-01-02,x\n3000000000,2,false,2024-01-03,\n",
            false,
        )
        .unwrap();
        let types: Vec<_> = cols.iter().map(|c| c.1.clone()).collect();
        assert_eq!(
            types,
            [
                DataType::Int64,
                DataType::Float64,
                DataType::Boolean,
                DataType::Date32,
                DataType::Utf8
            ]
        );
        let strings = infer_file(
            &FileOptions::csv().infer_column_types(false),
            b"a\n1\n",
            false,
        )
        .unwrap();
        assert_eq!(strings[0].1, DataType::Utf8);
    }
}
