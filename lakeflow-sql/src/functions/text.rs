//! Spark's string functions whose results differ from DataFusion's: `regexp_extract`,
//! `initcap` (only spaces start words; the rest is lower-cased) and `split` (by a regex).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};
use regex::Regex;

fn strings(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(cast(array, &DataType::Utf8)?)
}

fn compiled(cache: &mut Option<(String, Regex)>, pattern: &str) -> Result<()> {
    if cache.as_ref().is_none_or(|(p, _)| p != pattern) {
        match Regex::new(pattern) {
            Ok(re) => *cache = Some((pattern.to_string(), re)),
            Err(e) => return exec_err!("the regular expression `{pattern}` is invalid: {e}"),
        }
    }
    Ok(())
}

/// `regexp_extract(s, pattern [, group = 1])`: '' when nothing matches.
pub(super) fn regexp_extract(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let values = strings(&arrays[0])?;
    let values = values.as_string::<i32>();
    let patterns = strings(&arrays[1])?;
    let patterns = patterns.as_string::<i32>();
    let groups = match arrays.get(2) {
        Some(g) => Some(cast(g, &DataType::Int64)?),
        None => None,
    };
    let mut cache = None;
    let mut out = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        let group = match &groups {
            Some(g) => {
                let g = g.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                if g.is_null(i) {
                    out.push(None);
                    continue;
                }
                g.value(i)
            }
            None => 1,
        };
        if values.is_null(i) || patterns.is_null(i) {
            out.push(None);
            continue;
        }
        compiled(&mut cache, patterns.value(i))?;
        let re = &cache.as_ref().expect("compiled").1;
        if group < 0 || group as usize > re.captures_len() - 1 {
            return exec_err!(
                "regexp_extract: the regular expression `{}` has {} groups, group {group} was asked for",
                patterns.value(i),
                re.captures_len() - 1
            );
        }
        let found = re
            .captures(values.value(i))
            .and_then(|c| c.get(group as usize).map(|m| m.as_str().to_string()))
            .unwrap_or_default();
        out.push(Some(found));
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `initcap(s)`.
pub(super) fn initcap(array: &ArrayRef) -> Result<ArrayRef> {
    let values = strings(array)?;
    let out: StringArray = values
        .as_string::<i32>()
        .iter()
        .map(|v| {
            v.map(|s| {
                let mut out = String::with_capacity(s.len());
                let mut start = true;
                for c in s.chars() {
                    if start {
                        out.extend(c.to_uppercase());
                    } else {
                        out.extend(c.to_lowercase());
                    }
                    start = c == ' ';
                }
                out
            })
        })
        .collect();
    Ok(Arc::new(out))
}

/// `split(s, regex [, limit])`.
pub(super) fn split(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let values = strings(&arrays[0])?;
    let values = values.as_string::<i32>();
    let patterns = strings(&arrays[1])?;
    let patterns = patterns.as_string::<i32>();
    let limits = match arrays.get(2) {
        Some(l) => Some(cast(l, &DataType::Int64)?),
        None => None,
    };
    let mut cache = None;
    let mut builder = ListBuilder::new(StringBuilder::new());
    for i in 0..values.len() {
        if values.is_null(i) || patterns.is_null(i) {
            builder.append_null();
            continue;
        }
        let limit = limits
            .as_ref()
            .map(|l| l.as_primitive::<datafusion::arrow::datatypes::Int64Type>())
            .filter(|l| l.is_valid(i))
            .map(|l| l.value(i))
            .unwrap_or(-1);
        compiled(&mut cache, patterns.value(i))?;
        let re = &cache.as_ref().expect("compiled").1;
        let s = values.value(i);
        if limit > 0 {
            for part in re.splitn(s, limit as usize) {
                builder.values().append_value(part);
            }
        } else {
            for part in re.split(s) {
                builder.values().append_value(part);
            }
        }
        builder.append(true);
    }
    Ok(Arc::new(builder.finish()))
}
