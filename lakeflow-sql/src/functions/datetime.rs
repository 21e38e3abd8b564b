//! Spark's date and time functions over arrays: parts of a date, formatting and parsing with
//! Spark's patterns, epoch seconds, and differences in a unit.

use std::sync::Arc;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Timelike};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Array, Int32Array, Int64Array, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{Result, exec_err};

use super::{Kind, pattern, timestamp_type};

const DEFAULT_FORMAT: &str = "yyyy-MM-dd HH:mm:ss";

/// Microseconds since the epoch (UTC wall clock) of each value: dates at midnight, strings
/// parsed as Spark casts them (NULL when they do not parse).
fn micros(array: &ArrayRef) -> Result<TimestampMicrosecondArray> {
    if matches!(
        array.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        let strings = cast(array, &DataType::Utf8)?;
        return Ok(strings
            .as_string::<i32>()
            .iter()
            .map(|s| s.and_then(super::cast::parse_timestamp))
            .collect());
    }
    let as_ts = cast(array, &DataType::Timestamp(TimeUnit::Microsecond, None)).or_else(|_| {
        cast(
            &cast(array, &timestamp_type())?,
            &DataType::Timestamp(TimeUnit::Microsecond, None),
        )
    })?;
    Ok(as_ts
        .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
        .clone())
}

fn naive(us: i64) -> Option<NaiveDateTime> {
    DateTime::from_timestamp_micros(us).map(|d| d.naive_utc())
}

/// The chrono format of the Spark pattern met last (patterns are mostly one literal).
#[derive(Default)]
struct Patterns {
    last: Option<(String, String)>,
}

impl Patterns {
    fn chrono(&mut self, spark: &str) -> Result<&str> {
        if self.last.as_ref().is_none_or(|(p, _)| p != spark) {
            self.last = Some((spark.to_string(), pattern::to_chrono(spark)?));
        }
        Ok(self.last.as_ref().map_or("", |(_, c)| c.as_str()))
    }
}

/// `year`, `month`, `day`, `quarter`, `dayofweek` (1 = Sunday), `dayofyear`, `weekofyear`
/// (ISO weeks).
pub(super) fn part(kind: Kind, array: &ArrayRef) -> Result<ArrayRef> {
    let values = micros(array)?;
    let out: Int32Array = values
        .iter()
        .map(|v| {
            let t = naive(v?)?;
            Some(match kind {
                Kind::Year => t.year(),
                Kind::Month => t.month() as i32,
                Kind::Day => t.day() as i32,
                Kind::Quarter => (t.month() as i32 - 1) / 3 + 1,
                Kind::DayOfWeek => t.weekday().num_days_from_sunday() as i32 + 1,
                Kind::DayOfYear => t.ordinal() as i32,
                Kind::WeekOfYear => t.iso_week().week() as i32,
                _ => return None,
            })
        })
        .collect();
    Ok(Arc::new(out))
}

fn format_arg(formats: &ArrayRef, i: usize) -> Option<String> {
    let formats = formats.as_string_opt::<i32>()?;
    (!formats.is_null(i)).then(|| formats.value(i).to_string())
}

/// `date_format(ts, pattern)`.
pub(super) fn date_format(values: &ArrayRef, formats: &ArrayRef) -> Result<ArrayRef> {
    let times = micros(values)?;
    let mut cache = Patterns::default();
    let mut out = Vec::with_capacity(times.len());
    for i in 0..times.len() {
        let Some(fmt) = format_arg(formats, i) else {
            out.push(None);
            continue;
        };
        let chrono_fmt = cache.chrono(&fmt)?;
        out.push(
            times
                .is_valid(i)
                .then(|| naive(times.value(i)))
                .flatten()
                .and_then(|t| formatted(t, chrono_fmt)),
        );
    }
    Ok(Arc::new(StringArray::from(out)))
}

/// `t` (UTC) formatted; `None` when the format cannot print it.
fn formatted(t: NaiveDateTime, chrono_fmt: &str) -> Option<String> {
    use std::fmt::Write;
    let mut out = String::new();
    write!(out, "{}", t.and_utc().format(chrono_fmt)).ok()?;
    Some(out)
}

/// Parses `text` with a chrono format: a date-time, or a date at midnight.
fn parse(text: &str, chrono_fmt: &str) -> Option<NaiveDateTime> {
    let text = text.trim();
    NaiveDateTime::parse_from_str(text, chrono_fmt)
        .ok()
        .or_else(|| {
            NaiveDate::parse_from_str(text, chrono_fmt)
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .or_else(|| {
            // A pattern with only a time of day or only a year and month.
            let mut parsed = chrono::format::Parsed::new();
            chrono::format::parse(
                &mut parsed,
                text,
                chrono::format::StrftimeItems::new(chrono_fmt),
            )
            .ok()?;
            let year = parsed.year().unwrap_or(1970);
            let month = parsed.month().unwrap_or(1);
            let day = parsed.day().unwrap_or(1);
            let date = NaiveDate::from_ymd_opt(year, month, day)?;
            let hour = parsed.hour_div_12().unwrap_or(0) * 12 + parsed.hour_mod_12().unwrap_or(0);
            date.and_hms_opt(
                hour,
                parsed.minute().unwrap_or(0),
                parsed.second().unwrap_or(0),
            )
        })
}

/// The instants of `to_timestamp(s [, pattern])` / `to_date(..)`, `unix_timestamp(s, pattern)`.
fn parsed_micros(arrays: &[ArrayRef]) -> Result<Vec<Option<i64>>> {
    let values = &arrays[0];
    if values.data_type().is_numeric() {
        // Seconds since the epoch, as Spark's to_timestamp(number) reads them.
        let seconds = cast(values, &DataType::Float64)?;
        return Ok(seconds
            .as_primitive::<datafusion::arrow::datatypes::Float64Type>()
            .iter()
            .map(|s| s.map(|s| (s * 1_000_000.0).round() as i64))
            .collect());
    }
    if !matches!(
        values.data_type(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
    ) {
        return Ok(micros(values)?.iter().collect());
    }
    let strings = cast(values, &DataType::Utf8)?;
    let strings = strings.as_string::<i32>();
    if arrays.len() < 2 {
        return Ok(micros(values)?.iter().collect());
    }
    let mut cache = Patterns::default();
    let mut out = Vec::with_capacity(strings.len());
    for i in 0..strings.len() {
        let Some(fmt) = format_arg(&arrays[1], i) else {
            out.push(None);
            continue;
        };
        let chrono_fmt = cache.chrono(&fmt)?;
        out.push(
            strings
                .is_valid(i)
                .then(|| parse(strings.value(i), chrono_fmt))
                .flatten()
                .map(|t| t.and_utc().timestamp_micros()),
        );
    }
    Ok(out)
}

/// `to_timestamp(s [, pattern])`, or `to_date` when `date`.
pub(super) fn to_timestamp(arrays: &[ArrayRef], date: bool) -> Result<ArrayRef> {
    let values = parsed_micros(arrays)?;
    if date {
        let days: Date32Array = values
            .into_iter()
            .map(|v| v.map(|us| us.div_euclid(86_400_000_000) as i32))
            .collect();
        return Ok(Arc::new(days));
    }
    Ok(Arc::new(
        TimestampMicrosecondArray::from(values).with_timezone("UTC"),
    ))
}

/// `unix_timestamp()` (now), `unix_timestamp(ts)`, `unix_timestamp(s [, pattern])`.
pub(super) fn unix_timestamp(arrays: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
    if arrays.is_empty() {
        let now = chrono::Utc::now().timestamp();
        return Ok(Arc::new(Int64Array::from(vec![now; rows])));
    }
    let mut arrays = arrays.to_vec();
    if arrays.len() == 1 && matches!(arrays[0].data_type(), DataType::Utf8) {
        arrays.push(Arc::new(StringArray::from(vec![DEFAULT_FORMAT; rows])));
    }
    let values = parsed_micros(&arrays)?;
    Ok(Arc::new(
        values
            .into_iter()
            .map(|v| v.map(|us| us.div_euclid(1_000_000)))
            .collect::<Int64Array>(),
    ))
}

/// `from_unixtime(seconds [, pattern])`: the instant as text.
pub(super) fn from_unixtime(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let seconds = cast(&arrays[0], &DataType::Int64)?;
    let seconds = seconds.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
    let mut cache = Patterns::default();
    let mut out = Vec::with_capacity(seconds.len());
    for i in 0..seconds.len() {
        let fmt = if arrays.len() == 2 {
            match format_arg(&arrays[1], i) {
                Some(f) => f,
                None => {
                    out.push(None);
                    continue;
                }
            }
        } else {
            DEFAULT_FORMAT.to_string()
        };
        let chrono_fmt = cache.chrono(&fmt)?;
        out.push(
            seconds
                .is_valid(i)
                .then(|| DateTime::from_timestamp(seconds.value(i), 0))
                .flatten()
                .and_then(|t| formatted(t.naive_utc(), chrono_fmt)),
        );
    }
    Ok(Arc::new(StringArray::from(out)))
}

fn whole_months(a: NaiveDateTime, b: NaiveDateTime) -> i64 {
    // Whole months from a to b, counted as Spark's timestampdiff does.
    let mut months = (b.year() as i64 - a.year() as i64) * 12 + b.month() as i64 - a.month() as i64;
    let a_rest = (a.day(), a.time());
    let b_rest = (b.day(), b.time());
    if months > 0 && b_rest < a_rest {
        months -= 1;
    } else if months < 0 && b_rest > a_rest {
        months += 1;
    }
    months
}

/// `timestampdiff(unit, start, end)`, also Databricks' `datediff(unit, start, end)`.
pub(super) fn timestampdiff(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let units = arrays[0].as_string::<i32>();
    let start = micros(&arrays[1])?;
    let end = micros(&arrays[2])?;
    let mut out = Vec::with_capacity(start.len());
    for i in 0..start.len() {
        if units.is_null(i) || start.is_null(i) || end.is_null(i) {
            out.push(None);
            continue;
        }
        let (a, b) = (start.value(i), end.value(i));
        let micros = b - a;
        let unit = units.value(i).to_ascii_uppercase();
        let value = match unit.trim_end_matches('S') {
            "MICROSECOND" => micros,
            "MILLISECOND" => micros / 1_000,
            "SECOND" => micros / 1_000_000,
            "MINUTE" => micros / 60_000_000,
            "HOUR" => micros / 3_600_000_000,
            "DAY" => micros / 86_400_000_000,
            "WEEK" => micros / (7 * 86_400_000_000),
            "MONTH" | "QUARTER" | "YEAR" => {
                let (Some(a), Some(b)) = (naive(a), naive(b)) else {
                    out.push(None);
                    continue;
                };
                let months = whole_months(a, b);
                match unit.trim_end_matches('S') {
                    "MONTH" => months,
                    "QUARTER" => months / 3,
                    _ => months / 12,
                }
            }
            other => {
                return exec_err!(
                    "timestampdiff unit `{other}` is not one of MICROSECOND, MILLISECOND, SECOND, MINUTE, HOUR, DAY, WEEK, MONTH, QUARTER, YEAR"
                );
            }
        };
        out.push(Some(value));
    }
    Ok(Arc::new(Int64Array::from(out)))
}

/// `months_between(end, start [, roundOff = true])`: whole months when both days are the
/// same day of the month or both the last day of their month, else the months plus the
/// remaining time over a 31-day month; rounded to 8 digits unless `roundOff` is false.
pub(super) fn months_between(arrays: &[ArrayRef]) -> Result<ArrayRef> {
    let end = micros(&arrays[0])?;
    let start = micros(&arrays[1])?;
    let round = arrays.get(2).map(|r| r.as_boolean().clone());
    let last_day = |t: &NaiveDateTime| {
        t.date()
            .succ_opt()
            .is_none_or(|next| next.month() != t.month())
    };
    let mut out = Vec::with_capacity(end.len());
    for i in 0..end.len() {
        let (Some(a), Some(b)) = (
            end.is_valid(i).then(|| naive(end.value(i))).flatten(),
            start.is_valid(i).then(|| naive(start.value(i))).flatten(),
        ) else {
            out.push(None);
            continue;
        };
        let months = (a.year() as i64 - b.year() as i64) * 12 + a.month() as i64 - b.month() as i64;
        let value = if a.day() == b.day() || (last_day(&a) && last_day(&b)) {
            months as f64
        } else {
            let seconds_in_month = |t: &NaiveDateTime| {
                (t.day() as i64 - 1) * 86_400 + t.time().num_seconds_from_midnight() as i64
            };
            let diff = seconds_in_month(&a) - seconds_in_month(&b);
            months as f64 + diff as f64 / (31.0 * 86_400.0)
        };
        let round_off = round.as_ref().is_none_or(|r| r.is_null(i) || r.value(i));
        out.push(Some(if round_off {
            (value * 1e8).round() / 1e8
        } else {
            value
        }));
    }
    Ok(Arc::new(datafusion::arrow::array::Float64Array::from(out)))
}

/// `CAST(ts AS STRING)` as Spark writes it: `yyyy-MM-dd HH:mm:ss`, then the fraction of a
/// second without trailing zeros when there is one, in the session time zone `zone` (an IANA
/// name or an offset; empty: UTC).
pub(super) fn timestamp_string(values: &ArrayRef, zone: &ArrayRef) -> Result<ArrayRef> {
    let zone = zone
        .as_string_opt::<i32>()
        .and_then(|z| (!z.is_empty() && z.is_valid(0)).then(|| z.value(0).to_string()))
        .unwrap_or_default();
    let tz: Option<datafusion::arrow::array::timezone::Tz> = if zone.is_empty() {
        None
    } else {
        match zone.parse() {
            Ok(tz) => Some(tz),
            Err(_) => return exec_err!("`{zone}` is not a time zone (spark.sql.session.timeZone)"),
        }
    };
    let micros = micros(values)?;
    let out: StringArray = micros
        .iter()
        .map(|v| {
            let utc = DateTime::from_timestamp_micros(v?)?;
            let local = match &tz {
                Some(tz) => utc.with_timezone(tz).naive_local(),
                None => utc.naive_utc(),
            };
            let mut text = local.format("%Y-%m-%d %H:%M:%S").to_string();
            let fraction = local.and_utc().timestamp_subsec_micros();
            if fraction != 0 {
                let digits = format!("{fraction:06}");
                text.push('.');
                text.push_str(digits.trim_end_matches('0'));
            }
            Some(text)
        })
        .collect();
    Ok(Arc::new(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_with_spark_patterns() {
        let f = pattern::to_chrono("MM-dd-yyyy HH:mm:ss").unwrap();
        assert_eq!(
            parse("03-05-2024 13:04:05", &f).unwrap().to_string(),
            "2024-03-05 13:04:05"
        );
        let f = pattern::to_chrono("yyyyMMdd").unwrap();
        assert_eq!(
            parse("20240305", &f).unwrap().to_string(),
            "2024-03-05 00:00:00"
        );
        assert!(parse("2024-13-01", &pattern::to_chrono("yyyy-MM-dd").unwrap()).is_none());
    }
}
