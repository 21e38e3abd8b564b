//! Spark's `window(time, duration[, slide])`: the time window that holds `time`, a struct of
//! its `start` and `end` timestamps. Windows are aligned to the epoch (Spark's `startTime` 0).
//!
//! A tumbling window (no slide, or a slide equal to the duration) is one per row. A sliding
//! window holds a row in several windows; `rewrite::windows` expands each row into the start
//! times of the windows holding it ([`SparkWindowStarts`], as Spark's `TimeWindowing` rule
//! expands them) and groups those by [`SLIDING_WINDOW`]`(start, duration, slide)`, the window
//! beginning at the last slide boundary at or before its time. `window(..)` with a slide
//! anywhere else (a select without GROUP BY) is an error rather than one window of several.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, ListBuilder, StructArray, TimestampMicrosecondArray,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Fields, TimestampMicrosecondType};
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::timestamp_type;

/// The name of the grouping key a sliding window becomes (see the module docs).
pub const SLIDING_WINDOW: &str = "__lakeflow_sliding_window";

/// Whether a function of this name groups rows into time windows (`window`, or the key a
/// sliding window becomes).
pub fn is_time_window(name: &str) -> bool {
    name == "window" || name == SLIDING_WINDOW
}

/// `window(time, duration[, slide])`, or the grouping key of a sliding window.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SparkWindow {
    signature: Signature,
    sliding: bool,
}

impl SparkWindow {
    /// The function.
    pub fn new() -> Self {
        SparkWindow {
            signature: Signature::user_defined(Volatility::Immutable),
            sliding: false,
        }
    }

    /// [`SLIDING_WINDOW`]: the window of duration and slide that starts at the last slide
    /// boundary at or before a time.
    pub fn sliding() -> Self {
        SparkWindow {
            sliding: true,
            ..SparkWindow::new()
        }
    }
}

impl Default for SparkWindow {
    fn default() -> Self {
        Self::new()
    }
}

fn fields() -> Fields {
    Fields::from(vec![
        Field::new("start", timestamp_type(), true),
        Field::new("end", timestamp_type(), true),
    ])
}

/// A Spark duration (`'5 minutes'`, `'1 hour 30 minutes'`, `'interval 10 seconds'`) in
/// microseconds.
pub fn duration_micros(text: &str) -> Option<i64> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let words = match words.first() {
        Some(w) if w.eq_ignore_ascii_case("interval") => &words[1..],
        _ => &words[..],
    };
    if words.is_empty() || words.len() % 2 != 0 {
        return None;
    }
    let mut total: i64 = 0;
    for pair in words.chunks(2) {
        let n: i64 = pair[0].trim_matches('\'').parse().ok()?;
        let unit = pair[1].trim_matches('\'').to_ascii_lowercase();
        let micros = match unit.trim_end_matches('s') {
            "microsecond" => 1,
            "millisecond" => 1_000,
            "second" | "sec" => 1_000_000,
            "minute" | "min" => 60_000_000,
            "hour" => 3_600_000_000,
            "day" => 86_400_000_000,
            "week" => 7 * 86_400_000_000,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(micros)?)?;
    }
    (total > 0).then_some(total)
}

fn literal_duration(arg: &ColumnarValue, what: &str) -> Result<i64> {
    let ColumnarValue::Scalar(value) = arg else {
        return exec_err!("window(): the {what} must be a literal such as '5 minutes'");
    };
    let text = match value {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => s.clone(),
        other => {
            return exec_err!(
                "window(): the {what} must be a string such as '5 minutes', not {other}"
            );
        }
    };
    match duration_micros(&text) {
        Some(micros) => Ok(micros),
        None => exec_err!(
            "window(): `{text}` is not a duration; write it as '5 minutes' or '1 hour 30 minutes'"
        ),
    }
}

impl ScalarUDFImpl for SparkWindow {
    fn name(&self) -> &str {
        if self.sliding {
            SLIDING_WINDOW
        } else {
            "window"
        }
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if !(2..=3).contains(&arg_types.len()) {
            return plan_err!(
                "window() takes a time, a duration and optionally a slide: window(ts, '10 minutes'[, '5 minutes'])"
            );
        }
        match &arg_types[0] {
            DataType::Timestamp(..) | DataType::Date32 | DataType::Date64 | DataType::Null => {}
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {}
            other => return plan_err!("window() groups by a timestamp, not {other}"),
        }
        let mut out = vec![timestamp_type()];
        out.extend(arg_types[1..].iter().map(|_| DataType::Utf8));
        Ok(out)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Struct(fields()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (size, slide) = size_and_slide(&args.args)?;
        if slide != size && !self.sliding {
            return exec_err!(
                "window(time, duration, slide): a sliding window puts a row in several windows, which lakeflow does in GROUP BY window(..) only; group by it, or use a tumbling window, window(time, duration)"
            );
        }
        let times = times(&args.args[0], args.number_rows)?;
        let times = times.as_primitive::<TimestampMicrosecondType>();
        let start: TimestampMicrosecondArray = times
            .iter()
            .map(|t| t.map(|t| t - t.rem_euclid(slide)))
            .collect();
        let end: TimestampMicrosecondArray = start
            .iter()
            .map(|s| s.and_then(|s| s.checked_add(size)))
            .collect();
        let zone: Arc<str> = "UTC".into();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(start.with_timezone(zone.clone())),
            Arc::new(end.with_timezone(zone)),
        ];
        let nulls = times.nulls().cloned();
        Ok(ColumnarValue::Array(Arc::new(StructArray::try_new(
            fields(),
            columns,
            nulls,
        )?)))
    }
}

/// The window's duration and slide (the duration when there is no slide), in microseconds;
/// a slide longer than the duration is Spark's error.
fn size_and_slide(args: &[ColumnarValue]) -> Result<(i64, i64)> {
    let size = literal_duration(&args[1], "duration")?;
    let Some(slide) = args.get(2) else {
        return Ok((size, size));
    };
    let slide = literal_duration(slide, "slide")?;
    if slide > size {
        return exec_err!(
            "window(): the slide must not be longer than the window's duration (Spark: The slide duration must be less than or equal to the windowDuration)"
        );
    }
    Ok((size, slide))
}

/// The time argument as microseconds in UTC.
fn times(arg: &ColumnarValue, rows: usize) -> Result<ArrayRef> {
    let times = arg.to_array(rows)?;
    Ok(datafusion::arrow::compute::cast(&times, &timestamp_type())?)
}

/// The name `rewrite::windows` calls [`SparkWindowStarts`] by.
pub const WINDOW_STARTS: &str = "__lakeflow_window_starts";

/// `__lakeflow_window_starts(time, duration, slide)`: the start times of the sliding windows
/// holding `time`, latest first; none for a NULL time (Spark drops such rows from sliding
/// windows).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SparkWindowStarts {
    signature: Signature,
}

impl SparkWindowStarts {
    /// The function.
    pub fn new() -> Self {
        SparkWindowStarts {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for SparkWindowStarts {
    fn default() -> Self {
        Self::new()
    }
}

fn start_field() -> Arc<Field> {
    Arc::new(Field::new("item", timestamp_type(), true))
}

impl ScalarUDFImpl for SparkWindowStarts {
    fn name(&self) -> &str {
        WINDOW_STARTS
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        SparkWindow::new().coerce_types(arg_types)
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::List(start_field()))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let (size, slide) = size_and_slide(&args.args)?;
        let times = times(&args.args[0], args.number_rows)?;
        let times = times.as_primitive::<TimestampMicrosecondType>();
        let starts = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut lists = ListBuilder::new(starts).with_field(start_field());
        for t in times.iter() {
            if let Some(t) = t {
                let mut start = t - t.rem_euclid(slide);
                while start.checked_add(size).is_some_and(|end| end > t) {
                    lists.values().append_value(start);
                    match start.checked_sub(slide) {
                        Some(earlier) => start = earlier,
                        None => break,
                    }
                }
            }
            lists.append(true);
        }
        Ok(ColumnarValue::Array(Arc::new(lists.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::duration_micros;

    #[test]
    fn durations() {
        assert_eq!(duration_micros("5 seconds"), Some(5_000_000));
        assert_eq!(duration_micros("1 hour 30 minutes"), Some(5_400_000_000));
        assert_eq!(duration_micros("interval 1 day"), Some(86_400_000_000));
        assert_eq!(duration_micros("10 fortnights"), None);
        assert_eq!(duration_micros("0 seconds"), None);
    }
}
