//! Casts from strings as Spark makes them, which differ from Arrow's: numbers are trimmed and
//! a fraction truncates (`' 1.9 '` is 1 as an INT), dates and timestamps take Spark's forms
//! (`2024`, `2024-3`, `2024-03-05 13:04`, `2024-03-05T13:04:05Z`), booleans take
//! `t`/`yes`/`1`. What does not parse is NULL, or an error in ANSI mode.

use std::sync::Arc;

use chrono::{FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Int8Array, Int16Array, Int32Array,
    Int64Array, TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{Result, exec_err};

/// Spark's whitespace trimming for casts (every character up to U+0020).
fn trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

/// An integral number: sign, digits, and a fraction that is dropped.
pub(crate) fn parse_integer(text: &str) -> Option<i64> {
    let s = trim(text);
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let digits = int.strip_prefix(['-', '+']).unwrap_or(int);
    if digits.is_empty() && frac.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    if digits.is_empty() {
        return Some(0);
    }
    int.parse::<i64>().ok()
}

fn parse_date_part(s: &str) -> Option<(NaiveDate, &str)> {
    let bytes = s.as_bytes();
    let mut i = 0;
    let mut fields = [0u32; 3];
    let mut n = 0;
    while n < 3 {
        let start = i;
        while i < bytes.len() && bytes[i].is_ascii_digit() {
            i += 1;
        }
        let width = i - start;
        if width == 0 || (n == 0 && !(4..=7).contains(&width)) || (n > 0 && width > 2) {
            return None;
        }
        fields[n] = s[start..i].parse().ok()?;
        n += 1;
        if i < bytes.len() && bytes[i] == b'-' && n < 3 {
            i += 1;
            continue;
        }
        break;
    }
    let (year, month, day) = match n {
        1 => (fields[0], 1, 1),
        2 => (fields[0], fields[1], 1),
        _ => (fields[0], fields[1], fields[2]),
    };
    let date = NaiveDate::from_ymd_opt(year as i32, month, day)?;
    Some((date, &s[i..]))
}

/// A date as Spark casts a string: `yyyy`, `yyyy-[m]m`, `yyyy-[m]m-[d]d`, optionally
/// followed by a time after a space or `T`.
pub(crate) fn parse_date(text: &str) -> Option<NaiveDate> {
    let (date, rest) = parse_date_part(trim(text))?;
    (rest.is_empty() || rest.starts_with([' ', 'T'])).then_some(date)
}

/// A timestamp as Spark casts a string (UTC unless it names an offset).
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let s = trim(text);
    let (date, rest) = parse_date_part(s)?;
    if rest.is_empty() {
        return Some(date.and_time(NaiveTime::MIN).and_utc().timestamp_micros());
    }
    let rest = rest.strip_prefix([' ', 'T'])?;
    // [h]h:[m]m[:[s]s[.fraction]] then an optional zone
    let end = rest
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(rest.len());
    let (clock, zone) = rest.split_at(end);
    let mut parts = clock.split(':');
    let hour: u32 = parts.next()?.parse().ok()?;
    let minute: u32 = parts.next().map_or(Some(0), |m| m.parse().ok())?;
    let (second, micros) = match parts.next() {
        None => (0, 0),
        Some(sec) => {
            let (whole, frac) = sec.split_once('.').unwrap_or((sec, ""));
            let mut frac = frac.to_string();
            if frac.len() > 6 {
                frac.truncate(6);
            }
            while frac.len() < 6 {
                frac.push('0');
            }
            (whole.parse().ok()?, frac.parse::<u32>().ok()?)
        }
    };
    if parts.next().is_some() {
        return None;
    }
    let time = NaiveTime::from_hms_micro_opt(hour, minute, second, micros)?;
    let local: NaiveDateTime = date.and_time(time);
    let zone = zone.trim();
    let offset = match zone {
        "" | "Z" | "UTC" | "GMT" => 0,
        z => {
            let z = z
                .strip_prefix("UTC")
                .or_else(|| z.strip_prefix("GMT"))
                .unwrap_or(z);
            let sign = match z.chars().next()? {
                '+' => 1,
                '-' => -1,
                _ => return None,
            };
            let digits: String = z[1..].chars().filter(|c| c.is_ascii_digit()).collect();
            let (h, m) = match digits.len() {
                1 | 2 => (digits.parse::<i32>().ok()?, 0),
                4 => (
                    digits[..2].parse::<i32>().ok()?,
                    digits[2..].parse::<i32>().ok()?,
                ),
                _ => return None,
            };
            sign * (h * 3600 + m * 60)
        }
    };
    let offset = FixedOffset::east_opt(offset)?;
    Some(
        offset
            .from_local_datetime(&local)
            .single()?
            .timestamp_micros(),
    )
}

/// A boolean as Spark casts a string.
pub(crate) fn parse_boolean(text: &str) -> Option<bool> {
    match trim(text).to_ascii_lowercase().as_str() {
        "t" | "true" | "y" | "yes" | "1" => Some(true),
        "f" | "false" | "n" | "no" | "0" => Some(false),
        _ => None,
    }
}

/// Casts strings to `to` as Spark does.
pub(crate) fn cast_string(values: &ArrayRef, to: &DataType, ansi: bool) -> Result<ArrayRef> {
    let strings = cast(values, &DataType::Utf8)?;
    let strings = strings.as_string::<i32>();
    let target = super::spark_type_name(to).to_uppercase();
    let fail = |s: &str| {
        exec_err!(
            "[CAST_INVALID_INPUT] the value '{s}' of the type STRING cannot be cast to {target}; use try_cast to tolerate malformed input, or turn ANSI mode off"
        )
    };
    macro_rules! each {
        ($parse:expr) => {{
            let mut out = Vec::with_capacity(strings.len());
            for v in strings.iter() {
                out.push(match v {
                    None => None,
                    Some(s) => match $parse(s) {
                        Some(x) => Some(x),
                        None if ansi => return fail(s),
                        None => None,
                    },
                });
            }
            out
        }};
    }
    let integer =
        |s: &str, min: i64, max: i64| parse_integer(s).filter(|v| (min..=max).contains(v));
    Ok(match to {
        DataType::Int8 => Arc::new(Int8Array::from(each!(|s| integer(
            s,
            i8::MIN as i64,
            i8::MAX as i64
        )
        .map(|v| v as i8)))),
        DataType::Int16 => Arc::new(Int16Array::from(each!(|s| integer(
            s,
            i16::MIN as i64,
            i16::MAX as i64
        )
        .map(|v| v as i16)))),
        DataType::Int32 => Arc::new(Int32Array::from(each!(|s| integer(
            s,
            i32::MIN as i64,
            i32::MAX as i64
        )
        .map(|v| v as i32)))),
        DataType::Int64 => Arc::new(Int64Array::from(each!(|s| integer(s, i64::MIN, i64::MAX)))),
        DataType::Boolean => Arc::new(BooleanArray::from(each!(parse_boolean))),
        DataType::Date32 => {
            let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
            Arc::new(Date32Array::from(each!(
                |s| parse_date(s).map(|d| (d - epoch).num_days() as i32)
            )))
        }
        DataType::Timestamp(unit, tz) => {
            let micros = TimestampMicrosecondArray::from(each!(parse_timestamp))
                .with_timezone_opt(tz.clone());
            let array: ArrayRef = Arc::new(micros);
            let target = DataType::Timestamp(*unit, tz.clone());
            cast(&array, &target)?
        }
        other => return exec_err!("strings are not cast to {other} this way"),
    })
}

/// Whether [`cast_string`] casts strings to `to`.
pub(crate) fn casts_string_to(to: &DataType) -> bool {
    matches!(
        to,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Boolean
            | DataType::Date32
            | DataType::Timestamp(..)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spark_string_forms() {
        assert_eq!(parse_integer(" 12 "), Some(12));
        assert_eq!(parse_integer("1.9"), Some(1));
        assert_eq!(parse_integer("-7"), Some(-7));
        assert_eq!(parse_integer("1e3"), None);
        assert_eq!(parse_integer(""), None);
        assert_eq!(parse_date("2024").unwrap().to_string(), "2024-01-01");
        assert_eq!(parse_date("2024-3").unwrap().to_string(), "2024-03-01");
        assert_eq!(
            parse_date("2024-03-05 13:04:05").unwrap().to_string(),
            "2024-03-05"
        );
        assert!(parse_date("2024-02-30").is_none());
        assert_eq!(
            parse_timestamp("2024-03-05 13:04"),
            parse_timestamp("2024-03-05T13:04:00Z")
        );
        assert_eq!(
            parse_timestamp("2024-03-05T13:04:05+02:00").unwrap() + 2 * 3_600_000_000,
            parse_timestamp("2024-03-05 13:04:05").unwrap()
        );
        assert_eq!(parse_boolean(" Yes "), Some(true));
        assert_eq!(parse_boolean("maybe"), None);
    }
}
