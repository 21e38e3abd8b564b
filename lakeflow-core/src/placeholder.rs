//! Placeholder scans: what `read("x")` and `sql("... FROM x")` put in a plan while lakeflow
//! resolves the pipeline. A placeholder carries the schema readers of `x` will see and the
//! name it stands for; the planner swaps it for the real source before execution.
//! Executing a placeholder is a bug, reported as such.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::{TableType, source_as_provider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, TableSource};
use datafusion::physical_plan::ExecutionPlan;

use crate::source::SourceSpec;

/// What a placeholder scan stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Binding {
    /// The whole current contents of pipeline dataset `name`.
    Dataset(String),
    /// The rows appended to pipeline dataset `name` since the reading flow's checkpoint.
    Stream(String),
    /// What an external source gained since the reading flow's checkpoint: the files under a
    /// path not processed yet, or the commits of a Delta table.
    Source(SourceSpec),
}

impl Binding {
    /// The checkpoint key of a streaming input.
    pub fn stream_key(&self) -> Option<String> {
        match self {
            Binding::Dataset(_) => None,
            Binding::Stream(name) => Some(format!("dataset:{name}")),
            Binding::Source(spec @ (SourceSpec::Files { .. } | SourceSpec::Ingest(_))) => {
                Some(format!("files:{}", spec.path()))
            }
            Binding::Source(spec @ SourceSpec::Delta { .. }) => {
                Some(format!("delta:{}", spec.path()))
            }
        }
    }
}

/// Stands for a pipeline dataset or a streaming source in a plan under construction.
#[derive(Debug)]
pub(crate) struct Placeholder {
    /// What this scan reads.
    pub binding: Binding,
    /// The schema readers see (the stored schema for stored datasets).
    pub schema: SchemaRef,
}

impl Placeholder {
    /// The placeholder behind a scan's source, if it is one.
    pub fn of(source: &Arc<dyn TableSource>) -> Option<Arc<dyn TableProvider>> {
        let provider = source_as_provider(source).ok()?;
        provider.downcast_ref::<Placeholder>()?;
        Some(provider)
    }
}

#[async_trait]
impl TableProvider for Placeholder {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        _projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Err(DataFusionError::Internal(format!(
            "lakeflow placeholder for {:?} reached execution; the planner should have replaced it",
            self.binding
        )))
    }
}
