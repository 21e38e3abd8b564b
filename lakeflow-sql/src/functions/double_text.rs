//! A double or float as Spark writes it as text (Java's `Double.toString`): plain decimals
//! from 0.001 up to 10,000,000 (`100.0`, `0.001`), scientific notation outside that range
//! (`1.0E10`, `1.0E-5`), `NaN`, `Infinity`, `-Infinity`; always with a fractional digit.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringArray};
use datafusion::arrow::datatypes::{DataType, Float32Type, Float64Type};
use datafusion::common::{Result, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// `spark_double_string(x)`: `x` (a DOUBLE or FLOAT) as Spark's `CAST(x AS STRING)` writes it.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SparkDoubleString {
    signature: Signature,
}

impl SparkDoubleString {
    /// The function.
    pub fn new() -> Self {
        SparkDoubleString {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for SparkDoubleString {
    fn default() -> Self {
        Self::new()
    }
}

/// `text` (Rust's shortest round-trip digits of the value) in Java's layout.
fn java_layout(value: f64, plain: String, scientific: String) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    if value.is_infinite() {
        return if value > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let magnitude = value.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        return if plain.contains('.') {
            plain
        } else {
            format!("{plain}.0")
        };
    }
    // `1.2345678e7` -> `1.2345678E7`, `1e10` -> `1.0E10`.
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exponent}")
}

/// A double as Spark writes it.
pub fn double_text(value: f64) -> String {
    java_layout(value, format!("{value}"), format!("{value:e}"))
}

/// A float as Spark writes it (its own shortest digits, not the double's).
pub fn float_text(value: f32) -> String {
    java_layout(f64::from(value), format!("{value}"), format!("{value:e}"))
}

impl ScalarUDFImpl for SparkDoubleString {
    fn name(&self) -> &str {
        "spark_double_string"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [DataType::Float32] => Ok(vec![DataType::Float32]),
            [_] => Ok(vec![DataType::Float64]),
            _ => plan_err!("spark_double_string(x) takes 1 argument"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let values = args.args[0].to_array(args.number_rows)?;
        let text: StringArray = match values.data_type() {
            DataType::Float32 => values
                .as_primitive::<Float32Type>()
                .iter()
                .map(|v| v.map(float_text))
                .collect(),
            _ => values
                .as_primitive::<Float64Type>()
                .iter()
                .map(|v| v.map(double_text))
                .collect(),
        };
        Ok(ColumnarValue::Array(Arc::new(text) as Arc<dyn Array>))
    }
}

#[cfg(test)]
mod tests {
    use super::{double_text, float_text};

    #[test]
    fn doubles_as_java_writes_them() {
        let cases = [
            (1.0e10, "1.0E10"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1.0e-5, "1.0E-5"),
            (1234567.0, "1234567.0"),
            (12345678.0, "1.2345678E7"),
            (0.001, "0.001"),
            (-0.0, "-0.0"),
            (1.0e7, "1.0E7"),
            (f64::NAN, "NaN"),
            (f64::NEG_INFINITY, "-Infinity"),
        ];
        for (value, text) in cases {
            assert_eq!(double_text(value), text, "{value}");
        }
        assert_eq!(float_text(0.1), "0.1");
        assert_eq!(float_text(1.0e10), "1.0E10");
    }
}
