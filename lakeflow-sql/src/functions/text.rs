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

/// `round(double, scale)` as Spark rounds a double: HALF_UP on its shortest decimal form
/// (`-9140.585` to 2 places is `-9140.59`, where rounding the binary value gives `-9140.58`).
pub(super) fn round_half_up(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let values = cast(&arrays[0], &DataType::Float64)?;
    let values = values.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
    let scales = match arrays.get(1) {
        Some(s) => Some(cast(s, &DataType::Int64)?),
        None => None,
    };
    let mut out = Vec::with_capacity(values.len());
    for i in 0..values.len() {
        let scale = match &scales {
            Some(s) => {
                let s = s.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                if s.is_null(i) {
                    out.push(None);
                    continue;
                }
                s.value(i)
            }
            None => 0,
        };
        out.push(
            values
                .is_valid(i)
                .then(|| round_one(values.value(i), scale)),
        );
    }
    Ok(Arc::new(datafusion::arrow::array::Float64Array::from(out)))
}

fn round_one(v: f64, scale: i64) -> f64 {
    if !v.is_finite() || !(-300..=300).contains(&scale) {
        return v;
    }
    let text = format!("{}", v.abs());
    let (int, frac) = text.split_once('.').unwrap_or((&text, ""));
    let digits: Vec<u8> = int.bytes().chain(frac.bytes()).map(|b| b - b'0').collect();
    let point = int.len() as i64;
    // Keep `point + scale` digits, rounding half up on the next one.
    let keep = point + scale;
    if keep >= digits.len() as i64 {
        return v;
    }
    if keep < 0 {
        return 0.0_f64.copysign(v);
    }
    let keep = keep as usize;
    let mut kept: Vec<u8> = digits[..keep].to_vec();
    if digits[keep] >= 5 {
        let mut i = kept.len();
        loop {
            if i == 0 {
                kept.insert(0, 1);
                break;
            }
            i -= 1;
            if kept[i] == 9 {
                kept[i] = 0;
            } else {
                kept[i] += 1;
                break;
            }
        }
    }
    let carried = kept.len() as i64 - keep as i64;
    let int_len = point + carried;
    let mut s = String::new();
    for (i, d) in kept.iter().enumerate() {
        if i as i64 == int_len {
            s.push('.');
        }
        s.push((b'0' + d) as char);
    }
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, '0');
    }
    let mut r: f64 = s.parse().unwrap_or(v.abs());
    if int_len > kept.len() as i64 {
        r *= 10f64.powi((int_len - kept.len() as i64) as i32);
    }
    r.copysign(v)
}

#[cfg(test)]
mod tests {
    use super::round_one;

    #[test]
    fn rounds_half_up_on_the_decimal_form() {
        assert_eq!(round_one(-9140.585, 2), -9140.59);
        assert_eq!(round_one(2.5, 0), 3.0);
        assert_eq!(round_one(1.005, 2), 1.01);
        assert_eq!(round_one(1234.5, -2), 1200.0);
        assert_eq!(round_one(9.99, 1), 10.0);
        assert_eq!(round_one(0.4, 0), 0.0);
    }
}
