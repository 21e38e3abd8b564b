//! Spark's subscript `x[i]`: on an array, element `i` counting from 0, NULL when `i` is
//! negative or past the end (DataFusion counts from 1 and from the end for negative `i`); on
//! a map, the value of key `i`. The rewrite of `x[i]` calls this function; it hands the work
//! to DataFusion's `array_element` and `map_extract`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Array};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Int64Type};
use datafusion::common::{Result, ScalarValue, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// `spark_subscript(x, i)`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct SparkSubscript {
    signature: Signature,
}

impl SparkSubscript {
    /// The function.
    pub fn new() -> Self {
        SparkSubscript {
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }
}

impl Default for SparkSubscript {
    fn default() -> Self {
        Self::new()
    }
}

fn element_type(container: &DataType) -> Result<DataType> {
    match container {
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            Ok(f.data_type().clone())
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(fields) if fields.len() == 2 => Ok(fields[1].data_type().clone()),
            other => plan_err!("a map's entries are not key-value pairs: {other}"),
        },
        DataType::Null => Ok(DataType::Null),
        other => plan_err!("`[..]` takes an array or a map, not {other}"),
    }
}

impl ScalarUDFImpl for SparkSubscript {
    fn name(&self) -> &str {
        "spark_subscript"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        let [container, index] = arg_types else {
            return plan_err!("spark_subscript(x, i) takes 2 arguments");
        };
        Ok(match container {
            DataType::Map(..) => vec![container.clone(), index.clone()],
            _ => vec![container.clone(), DataType::Int64],
        })
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        element_type(&arg_types[0])
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let data_type = element_type(args.arg_fields[0].data_type())?;
        Ok(Arc::new(Field::new(self.name(), data_type, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let container_type = args.arg_fields[0].data_type().clone();
        if matches!(container_type, DataType::Null) {
            return Ok(ColumnarValue::Scalar(ScalarValue::Null));
        }
        if let DataType::Map(..) = container_type {
            // map_extract gives the values of the key as a list (of one or none).
            let extract = datafusion::functions_nested::map_extract::map_extract_udf();
            let values = extract.invoke_with_args(ScalarFunctionArgs {
                args: args.args.clone(),
                arg_fields: args.arg_fields.clone(),
                number_rows: args.number_rows,
                return_field: Arc::new(Field::new(
                    "values",
                    DataType::List(Arc::new(Field::new_list_field(
                        args.return_field.data_type().clone(),
                        true,
                    ))),
                    true,
                )),
                config_options: args.config_options.clone(),
            })?;
            return first_element(values, &args);
        }
        // Spark's index i is DataFusion's i + 1; a negative one is NULL (DataFusion's 0).
        let index = args.args[1].to_array(args.number_rows)?;
        let index = index.as_primitive::<Int64Type>();
        let shifted: Int64Array = index
            .iter()
            .map(|i| i.map(|i| if i >= 0 { i.saturating_add(1) } else { 0 }))
            .collect();
        let element = datafusion::functions_nested::extract::array_element_udf();
        element.invoke_with_args(ScalarFunctionArgs {
            args: vec![
                args.args[0].clone(),
                ColumnarValue::Array(Arc::new(shifted)),
            ],
            arg_fields: args.arg_fields.clone(),
            number_rows: args.number_rows,
            return_field: args.return_field.clone(),
            config_options: args.config_options.clone(),
        })
    }
}

/// The first element of each list of `values` (NULL for an empty one).
fn first_element(values: ColumnarValue, args: &ScalarFunctionArgs) -> Result<ColumnarValue> {
    let lists = values.to_array(args.number_rows)?;
    let list_field = Arc::new(Field::new("values", lists.data_type().clone(), true));
    let ones: Int64Array = (0..lists.len()).map(|_| Some(1)).collect();
    let element = datafusion::functions_nested::extract::array_element_udf();
    element.invoke_with_args(ScalarFunctionArgs {
        args: vec![
            ColumnarValue::Array(lists),
            ColumnarValue::Array(Arc::new(ones)),
        ],
        arg_fields: vec![
            list_field,
            Arc::new(Field::new("index", DataType::Int64, false)),
        ],
        number_rows: args.number_rows,
        return_field: args.return_field.clone(),
        config_options: args.config_options.clone(),
    })
}
