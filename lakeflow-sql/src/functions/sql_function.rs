//! SQL functions: `CREATE FUNCTION f(a INT, b STRING) RETURNS STRING RETURN expr`, as Spark
//! and Databricks (Unity Catalog) define them — a scalar function whose body is one Spark SQL
//! expression over its parameters. The body is planned once, on first use, with lakeflow's
//! Spark SQL, and evaluated over the argument columns.

use std::sync::{Arc, OnceLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::common::{DFSchema, Result, exec_err, plan_err};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility, cast,
};
use datafusion::physical_expr::PhysicalExpr;

use crate::SparkSql;

/// A function defined in SQL by `CREATE FUNCTION .. RETURN expr`.
#[derive(Debug)]
pub struct SqlFunction {
    name: String,
    params: Vec<(String, DataType)>,
    returns: DataType,
    body: String,
    signature: Signature,
    /// The body planned over the parameters (or why it cannot be), made on first use.
    planned: OnceLock<std::result::Result<Arc<dyn PhysicalExpr>, String>>,
}

impl SqlFunction {
    /// The function `name(params) RETURNS returns RETURN body`.
    pub fn new(
        name: impl Into<String>,
        params: Vec<(String, DataType)>,
        returns: DataType,
        body: impl Into<String>,
    ) -> Self {
        SqlFunction {
            name: name.into(),
            params,
            returns,
            body: body.into(),
            // Arguments are cast to the parameters' types (`coerce_types`), as Spark casts them.
            signature: Signature::user_defined(Volatility::Immutable),
            planned: OnceLock::new(),
        }
    }

    /// The definition as JSON (name, parameters, return type, body), for shipping the
    /// function to other processes, where [`SqlFunction::from_json`] makes it again.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "params": self
                .params
                .iter()
                .map(|(n, t)| serde_json::json!([n, t.to_string()]))
                .collect::<Vec<_>>(),
            "returns": self.returns.to_string(),
            "body": self.body,
        })
    }

    /// The function [`SqlFunction::to_json`] described.
    pub fn from_json(value: &serde_json::Value) -> Result<Self> {
        let text = |v: &serde_json::Value, what: &str| {
            v.as_str().map(str::to_string).ok_or_else(|| {
                datafusion::common::DataFusionError::Internal(format!(
                    "a shipped SQL function without its {what}"
                ))
            })
        };
        let data_type = |v: &serde_json::Value| -> Result<DataType> {
            Ok(text(v, "types")?.parse::<DataType>()?)
        };
        let params = value["params"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|p| Ok((text(&p[0], "parameter names")?, data_type(&p[1])?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(SqlFunction::new(
            text(&value["name"], "name")?,
            params,
            data_type(&value["returns"])?,
            text(&value["body"], "body")?,
        ))
    }

    fn schema(&self) -> Schema {
        Schema::new(
            self.params
                .iter()
                .map(|(n, t)| Field::new(n.to_lowercase(), t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    fn plan(&self) -> std::result::Result<Arc<dyn PhysicalExpr>, String> {
        let schema = DFSchema::try_from(self.schema()).map_err(|e| e.to_string())?;
        let ctx = SparkSql::new()
            .context(datafusion::prelude::SessionConfig::new())
            .map_err(|e| e.to_string())?;
        let state = ctx.state();
        let expr = SparkSql::new()
            .plan_expr(&self.body, &schema, &state)
            .map_err(|e| e.to_string())?;
        state
            .create_physical_expr(cast(expr, self.returns.clone()), &schema)
            .map_err(|e| e.to_string())
    }
}

impl PartialEq for SqlFunction {
    fn eq(&self, other: &Self) -> bool {
        (&self.name, &self.params, &self.returns, &self.body)
            == (&other.name, &other.params, &other.returns, &other.body)
    }
}

impl Eq for SqlFunction {}

impl std::hash::Hash for SqlFunction {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.name, &self.params, &self.returns, &self.body).hash(state);
    }
}

impl ScalarUDFImpl for SqlFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != self.params.len() {
            return plan_err!(
                "SQL function `{}` takes {} arguments ({}), not {}",
                self.name,
                self.params.len(),
                self.params
                    .iter()
                    .map(|(n, _)| n.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
                arg_types.len()
            );
        }
        Ok(self.params.iter().map(|(_, t)| t.clone()).collect())
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(self.returns.clone())
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let planned = match self.planned.get_or_init(|| self.plan()) {
            Ok(planned) => planned,
            Err(e) => {
                return exec_err!(
                    "the body of SQL function `{}` (`{}`) does not plan: {e}",
                    self.name,
                    self.body
                );
            }
        };
        let columns = args
            .args
            .iter()
            .map(|a| a.to_array(args.number_rows))
            .collect::<Result<Vec<_>>>()?;
        let batch = if columns.is_empty() {
            RecordBatch::try_new_with_options(
                Arc::new(self.schema()),
                columns,
                &datafusion::arrow::array::RecordBatchOptions::new()
                    .with_row_count(Some(args.number_rows)),
            )?
        } else {
            RecordBatch::try_new(Arc::new(self.schema()), columns)?
        };
        planned.evaluate(&batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_definition_survives_its_json() {
        let f = SqlFunction::new(
            "net",
            vec![
                ("price".into(), DataType::Decimal128(10, 2)),
                (
                    "at".into(),
                    DataType::Timestamp(
                        datafusion::arrow::datatypes::TimeUnit::Microsecond,
                        Some("UTC".into()),
                    ),
                ),
            ],
            DataType::Utf8,
            "concat(price * 0.8, ' at ', at)",
        );
        let again = SqlFunction::from_json(&f.to_json()).unwrap();
        assert_eq!(again, f);
        assert!(SqlFunction::from_json(&serde_json::json!({"name": "x"})).is_err());
    }
}
