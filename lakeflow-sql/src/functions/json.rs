//! Spark's JSON functions: `get_json_object` (a JSON path into text), `from_json` (text to
//! a typed value; what does not parse is NULL) and `to_json` (a struct, array or map to text;
//! NULL fields are left out, as Spark does).

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, RecordBatch, StringArray, StructArray, new_null_array,
};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema};
use datafusion::arrow::json::{LineDelimitedWriter, ReaderBuilder};
use datafusion::common::{Result, exec_err};
use serde_json::Value;

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Key(String),
    Index(usize),
    All,
}

/// Parses `$.a.b[0]['c']`; `None` when the path is not one Spark accepts.
fn parse_path(path: &str) -> Option<Vec<Step>> {
    let rest = path.strip_prefix('$')?;
    let chars: Vec<char> = rest.chars().collect();
    let mut steps = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '.' => {
                let start = i + 1;
                let mut end = start;
                while end < chars.len() && chars[end] != '.' && chars[end] != '[' {
                    end += 1;
                }
                let key: String = chars[start..end].iter().collect();
                if key.is_empty() {
                    return None;
                }
                steps.push(if key == "*" {
                    Step::All
                } else {
                    Step::Key(key)
                });
                i = end;
            }
            '[' => {
                let close = chars[i..].iter().position(|&c| c == ']')? + i;
                let inner: String = chars[i + 1..close].iter().collect();
                let inner = inner.trim();
                if inner == "*" {
                    steps.push(Step::All);
                } else if let Some(key) = inner
                    .strip_prefix('\'')
                    .and_then(|s| s.strip_suffix('\''))
                    .or_else(|| inner.strip_prefix('"').and_then(|s| s.strip_suffix('"')))
                {
                    steps.push(Step::Key(key.to_string()));
                } else {
                    steps.push(Step::Index(inner.parse().ok()?));
                }
                i = close + 1;
            }
            _ => return None,
        }
    }
    Some(steps)
}

fn walk<'v>(value: &'v Value, steps: &[Step], out: &mut Vec<&'v Value>) {
    let Some((step, rest)) = steps.split_first() else {
        out.push(value);
        return;
    };
    match (step, value) {
        (Step::Key(k), Value::Object(map)) => {
            if let Some(v) = map.get(k) {
                walk(v, rest, out);
            }
        }
        (Step::Index(n), Value::Array(items)) => {
            if let Some(v) = items.get(*n) {
                walk(v, rest, out);
            }
        }
        (Step::All, Value::Array(items)) => {
            for v in items {
                walk(v, rest, out);
            }
        }
        _ => {}
    }
}

fn text_of(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// `get_json_object(json, path)`.
pub(super) fn get_json_object(json: &ArrayRef, paths: &ArrayRef) -> Result<ArrayRef> {
    let json = json.as_string::<i32>();
    let paths = paths.as_string::<i32>();
    let mut cache: Option<(String, Option<Vec<Step>>)> = None;
    let mut out = Vec::with_capacity(json.len());
    for i in 0..json.len() {
        if json.is_null(i) || paths.is_null(i) {
            out.push(None);
            continue;
        }
        let path = paths.value(i);
        if cache.as_ref().is_none_or(|(p, _)| p != path) {
            cache = Some((path.to_string(), parse_path(path)));
        }
        let Some(steps) = cache.as_ref().and_then(|(_, s)| s.as_ref()) else {
            out.push(None);
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(json.value(i)) else {
            out.push(None);
            continue;
        };
        let mut found = Vec::new();
        walk(&value, steps, &mut found);
        let wildcard = steps.contains(&Step::All);
        out.push(match (found.as_slice(), wildcard) {
            ([], _) => None,
            ([one], false) => text_of(one),
            (many, _) => {
                if many.len() == 1 {
                    text_of(many[0])
                } else {
                    Some(Value::Array(many.iter().map(|v| (*v).clone()).collect()).to_string())
                }
            }
        });
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `from_json(json, schema)`: each row decoded on its own, so one bad row is NULL and the
/// others keep their values.
pub(super) fn from_json(json: &ArrayRef, data_type: &DataType) -> Result<ArrayRef> {
    let json = cast(json, &DataType::Utf8)?;
    let json = json.as_string::<i32>();
    let wrapped = !matches!(data_type, DataType::Struct(_));
    let schema = Arc::new(match data_type {
        DataType::Struct(fields) if !wrapped => Schema::new(fields.clone()),
        other => Schema::new(vec![Field::new("v", other.clone(), true)]),
    });
    let mut rows: Vec<ArrayRef> = Vec::with_capacity(json.len());
    for i in 0..json.len() {
        let decoded = if json.is_null(i) {
            None
        } else {
            decode_one(json.value(i), &schema, wrapped)
        };
        rows.push(match decoded {
            Some(array) => array,
            None => new_null_array(data_type, 1),
        });
    }
    if rows.is_empty() {
        return Ok(new_null_array(data_type, 0));
    }
    let refs: Vec<&dyn Array> = rows.iter().map(|a| a.as_ref()).collect();
    Ok(concat(&refs)?)
}

/// `value` with what does not fit `t` made NULL, as Spark's permissive parser reads it: a
/// string field takes any JSON as its text, a number field only numbers of its kind.
fn conform(value: Value, t: &DataType) -> Value {
    match (t, value) {
        (_, Value::Null) => Value::Null,
        (DataType::Struct(fields), Value::Object(mut map)) => Value::Object(
            fields
                .iter()
                .map(|f| {
                    let v = map.remove(f.name()).unwrap_or(Value::Null);
                    (f.name().clone(), conform(v, f.data_type()))
                })
                .collect(),
        ),
        (DataType::List(item) | DataType::LargeList(item), Value::Array(items)) => Value::Array(
            items
                .into_iter()
                .map(|v| conform(v, item.data_type()))
                .collect(),
        ),
        (DataType::Map(entries, _), Value::Object(map)) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => Value::Object(
                map.into_iter()
                    .map(|(k, v)| (k, conform(v, kv[1].data_type())))
                    .collect(),
            ),
            _ => Value::Null,
        },
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, Value::String(s)) => {
            Value::String(s)
        }
        (DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View, other) => {
            Value::String(other.to_string())
        }
        (t, Value::Number(n)) if t.is_integer() => {
            if n.is_i64() || n.is_u64() {
                Value::Number(n)
            } else {
                Value::Null
            }
        }
        (t, Value::Number(n)) if t.is_floating() || matches!(t, DataType::Decimal128(..)) => {
            Value::Number(n)
        }
        (DataType::Boolean, Value::Bool(b)) => Value::Bool(b),
        (DataType::Date32, Value::String(s)) => {
            if super::cast::parse_date(&s).is_some() {
                Value::String(s)
            } else {
                Value::Null
            }
        }
        (DataType::Timestamp(..), Value::String(s)) => {
            if super::cast::parse_timestamp(&s).is_some() {
                Value::String(s)
            } else {
                Value::Null
            }
        }
        _ => Value::Null,
    }
}

fn decode_one(text: &str, schema: &Arc<Schema>, wrapped: bool) -> Option<ArrayRef> {
    let parsed: Option<Value> = serde_json::from_str(text).ok();
    let line = if wrapped {
        let t = schema.field(0).data_type();
        serde_json::json!({ "v": conform(parsed?, t) }).to_string()
    } else {
        // A record that is not a JSON object reads as a record of NULLs, as in Spark.
        let t = DataType::Struct(schema.fields().clone());
        match parsed {
            Some(Value::Null) => return None,
            Some(v @ Value::Object(_)) => conform(v, &t).to_string(),
            _ => "{}".to_string(),
        }
    };
    let mut decoder = ReaderBuilder::new(schema.clone()).build_decoder().ok()?;
    decoder.decode(line.as_bytes()).ok()?;
    let batch = decoder.flush().ok()??;
    if batch.num_rows() != 1 {
        return None;
    }
    Some(if wrapped {
        batch.column(0).clone()
    } else {
        Arc::new(StructArray::from(batch))
    })
}

/// `to_json(value)`.
pub(super) fn to_json(values: &ArrayRef) -> Result<ArrayRef> {
    let (batch, wrapped) = match values.data_type() {
        DataType::Struct(fields) => {
            let s = values.as_struct();
            let schema = Arc::new(Schema::new(fields.clone()));
            (RecordBatch::try_new(schema, s.columns().to_vec())?, false)
        }
        DataType::List(_) | DataType::LargeList(_) | DataType::Map(..) => {
            let field = Field::new("v", values.data_type().clone(), true);
            (
                RecordBatch::try_new(
                    Arc::new(Schema::new(Fields::from(vec![field]))),
                    vec![values.clone()],
                )?,
                true,
            )
        }
        other => return exec_err!("to_json() takes a struct, array or map, not {other}"),
    };
    let mut buffer = Vec::new();
    {
        let mut writer = LineDelimitedWriter::new(&mut buffer);
        writer.write(&batch)?;
        writer.finish()?;
    }
    let text = String::from_utf8(buffer)
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
    let mut out = Vec::with_capacity(values.len());
    for (i, line) in text.lines().enumerate() {
        if values.is_null(i) {
            out.push(None);
            continue;
        }
        if wrapped {
            let value: Value = serde_json::from_str(line)
                .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
            out.push(value.get("v").map(|v| v.to_string()));
        } else {
            out.push(Some(line.to_string()));
        }
    }
    Ok(Arc::new(StringArray::from(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        assert_eq!(
            parse_path("$.a.b[0]['c']").unwrap(),
            vec![
                Step::Key("a".into()),
                Step::Key("b".into()),
                Step::Index(0),
                Step::Key("c".into())
            ]
        );
        assert!(parse_path("a.b").is_none());
    }
}
