//! Unit-test a pipeline, or one dataset of it, in memory: give record batches for the names
//! its queries read, run, and get record batches back. No files are read or written.
//!
//! ```
//! use lakeflow::prelude::*;
//! use lakeflow::testing::{TestRun, batch};
//! use lakeflow::datafusion::arrow::array::Int64Array;
//! use std::sync::Arc;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> lakeflow::Result<()> {
//! let pipeline = Pipeline::builder().materialized_view("big_orders", || {
//!     Ok(read("orders")?.filter(col("amount").gt(lit(10)))?)
//! });
//! let orders = batch([
//!     ("id", Arc::new(Int64Array::from(vec![1, 2, 3])) as _),
//!     ("amount", Arc::new(Int64Array::from(vec![5, 20, 30])) as _),
//! ])?;
//! let output = TestRun::new(pipeline).input("orders", orders).run().await?;
//! assert_eq!(output.row_count("big_orders")?, 2);
//! assert_eq!(
//!     output.pretty("big_orders")?,
//!     "+----+--------+\n\
//!      | id | amount |\n\
//!      +----+--------+\n\
//!      | 2  | 20     |\n\
//!      | 3  | 30     |\n\
//!      +----+--------+"
//! );
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::datasource::MemTable;
use lakeflow_core::progress::ProgressMode;
use lakeflow_core::{Error, ExternalTable, MemoryStorage, Result, RunReport};

use crate::Pipeline;

/// A record batch from named columns, for test inputs.
pub fn batch<'a>(columns: impl IntoIterator<Item = (&'a str, ArrayRef)>) -> Result<RecordBatch> {
    RecordBatch::try_from_iter(columns).map_err(|e| Error::DataFusion(e.into()))
}

/// A pipeline prepared to run in memory with given inputs.
#[derive(Debug)]
pub struct TestRun {
    pipeline: Pipeline,
    inputs: BTreeMap<String, Vec<RecordBatch>>,
    only: Option<BTreeSet<String>>,
}

impl TestRun {
    /// Prepares `pipeline` to run in memory.
    pub fn new(pipeline: Pipeline) -> Self {
        TestRun {
            pipeline,
            inputs: BTreeMap::new(),
            only: None,
        }
    }

    /// Gives the rows of `name`. If the pipeline defines `name`, these rows replace its query.
    /// Call again to add more batches (of the same schema).
    pub fn input(mut self, name: impl Into<String>, batch: RecordBatch) -> Self {
        self.inputs.entry(name.into()).or_default().push(batch);
        self
    }

    /// Runs only these datasets; everything they read must be given with [`TestRun::input`].
    pub fn only<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.only = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Runs the pipeline in memory. A run in which a flow failed is an error, as in
    /// [`Pipeline::run`].
    pub async fn run(self) -> Result<TestOutput> {
        let mut def = self.pipeline.definition().clone();
        // An append flow goes with its target: kept when the target is, dropped when given
        // rows replace it.
        def.datasets.retain(|d| {
            let table = d.target.as_ref().unwrap_or(&d.name);
            !self.inputs.contains_key(table)
                && self.only.as_ref().is_none_or(|only| only.contains(table))
        });
        for (name, batches) in self.inputs {
            let schema = batches[0].schema();
            let table =
                MemTable::try_new(schema, vec![batches]).map_err(|e| Error::InvalidDefinition {
                    dataset: name.clone(),
                    message: format!("test input batches do not share one schema: {e}"),
                })?;
            def.externals
                .insert(name, ExternalTable::Provider(Arc::new(table)));
        }
        let storage = Arc::new(MemoryStorage::new());
        let report = self
            .pipeline
            .with_definition(def)
            .storage_backend(storage.clone())
            .progress(ProgressMode::Off)
            .run()
            .await?;
        Ok(TestOutput { storage, report })
    }
}

/// What a [`TestRun`] produced.
#[derive(Debug)]
pub struct TestOutput {
    storage: Arc<MemoryStorage>,
    report: RunReport,
}

impl TestOutput {
    /// The run report.
    pub fn report(&self) -> &RunReport {
        &self.report
    }

    /// The rows of stored dataset `name`.
    pub fn batches(&self, name: &str) -> Result<Vec<RecordBatch>> {
        self.storage
            .batches(name)
            .ok_or_else(|| Error::InvalidDefinition {
                dataset: name.to_string(),
                message: "no table was written for this dataset in the test run".into(),
            })
    }

    /// The number of rows of stored dataset `name`.
    pub fn row_count(&self, name: &str) -> Result<usize> {
        Ok(self.batches(name)?.iter().map(RecordBatch::num_rows).sum())
    }

    /// The rows of `name` as a text table with the rows sorted, for comparing in assertions
    /// regardless of the order flows produced them in.
    pub fn pretty(&self, name: &str) -> Result<String> {
        let batches = self.batches(name)?;
        let text = pretty_format_batches(&batches)
            .map_err(|e| Error::DataFusion(e.into()))?
            .to_string();
        Ok(sort_table_rows(&text))
    }
}

/// Sorts the data lines of a pretty-printed table, keeping header and borders in place.
fn sort_table_rows(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    if lines.len() < 5 {
        return text.to_string();
    }
    let (head, rest) = lines.split_at(3);
    let (body, tail) = rest.split_at(rest.len() - 1);
    let mut body = body.to_vec();
    body.sort_unstable();
    head.iter()
        .chain(body.iter())
        .chain(tail.iter())
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}
