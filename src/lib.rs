//! # lakeflow
//!
//! Declarative data pipelines for Rust. Declare *what tables should exist* as functions that
//! return Apache DataFusion plans; lakeflow finds the dependency graph, runs it on DataFusion
//! and stores every table as a plain Delta Lake table.
//!
//! ```no_run
//! use lakeflow::prelude::*;
//!
//! #[materialized_view(comment = "Customer master")]
//! fn customers() -> Plan {
//!     read_parquet("data/customers.parquet")
//! }
//!
//! #[table]
//! fn big_customers() -> Plan {
//!     Ok(read("customers")?.filter(col("orders").gt(lit(10)))?)
//! }
//!
//! #[tokio::main]
//! async fn main() -> lakeflow::Result<()> {
//!     let report = Pipeline::from_registry().storage("lakeflow-data").run().await?;
//!     println!("{report}");
//!     Ok(())
//! }
//! ```
//!
//! - Datasets: [`table`], [`materialized_view`], [`streaming_table`], [`temporary_view`], or
//!   the builder [`Pipeline::builder`]. Flows: [`append_flow`] into a table made with
//!   [`create_streaming_table!`].
//! - Reading: [`read`], [`read_stream`], [`sql`], and external files with [`read_parquet`],
//!   [`read_csv`], [`read_json`], [`read_delta`], [`read_files`].
//! - Running: [`Pipeline::run`], [`Pipeline::dry_run`]; testing: [`testing`].
//! - Projects: a spec file and SQL definition files ([`project`]), and the command line
//!   `lakeflow run | dry-run | graph | events` ([`cli`]) for them and for Rust binaries.
#![warn(missing_docs)]

pub mod cli;
mod continuous;
mod graph_page;
mod pipeline;
pub mod project;
pub mod testing;

pub use continuous::{ContinuousSummary, shutdown_signal};
pub use lakeflow_core::event_log::{Event, FlowState, Observer};
/// File ingestion as Auto Loader does it: options, modes, schema evolution.
pub use lakeflow_core::ingest;
pub use lakeflow_core::maintenance::{MaintenanceOptions, TableMaintenance};
pub use lakeflow_core::progress::ProgressMode;
pub use lakeflow_core::{
    AutoCdc, CsvFormat, DataFusionEngine, DatasetGraph, DatasetKind, DatasetReport, Engine, Error,
    ExpectAction, Expectation, ExpectationResult, ExternalTable, FileFormat, FileOptions,
    FlowStatus, Functions, MemoryStorage, Plan, Result, RunReport, SourceSpec, SqlDialect,
    SqlOptions, Storage, StreamOptions, csv, json, parquet, read, read_csv, read_delta, read_files,
    read_files_with, read_json, read_parquet, read_stream, read_stream_delta, read_stream_files,
    read_stream_files_with, read_stream_with, sql, sql_with, sql_with_options,
};
pub use lakeflow_core::{FileSink, Sink};
pub use lakeflow_delta::{DeltaSink, DeltaStorage};

/// Flows on an Apache DataFusion Ballista cluster (the `ballista` feature): [`BallistaEngine`]
/// and the cluster's processes.
#[cfg(feature = "ballista")]
pub use lakeflow_ballista as ballista;
#[cfg(feature = "ballista")]
pub use lakeflow_ballista::BallistaEngine;
pub use lakeflow_macros::{
    append_flow, create_streaming_table, expect, expect_all, expect_all_or_drop,
    expect_all_or_fail, expect_or_drop, expect_or_fail, expect_or_warn, expect_unique,
    expect_unique_or_drop, expect_unique_or_fail, materialized_view, streaming_table, table,
    temporary_view,
};
pub use pipeline::{DEFAULT_STORAGE, Dataset, Pipeline};

/// DataFusion, as lakeflow uses it: build plans with its `DataFrame` and expression API.
pub use datafusion;

/// What a pipeline file needs: the macros, the readers, `Plan`, `Pipeline`, and DataFusion's
/// expression helpers (`col`, `lit`, functions).
pub mod prelude {
    // `expect` is left out on purpose: it is also the name of Rust's built-in lint attribute
    // (`#[expect(dead_code)]`), which the compiler checks before macros run, and importing a
    // macro of that name would make every lint `#[expect]` in the module ambiguous. Write
    // `#[lakeflow::expect(..)]` or `#[expect_or_warn(..)]`.
    pub use crate::{
        Dataset, DatasetKind, ExpectAction, FileOptions, Pipeline, Plan, ProgressMode, SourceSpec,
        StreamOptions, append_flow, create_streaming_table, csv, expect_all, expect_all_or_drop,
        expect_all_or_fail, expect_or_drop, expect_or_fail, expect_or_warn, expect_unique,
        expect_unique_or_drop, expect_unique_or_fail, json, materialized_view, parquet, read,
        read_csv, read_delta, read_files, read_files_with, read_json, read_parquet, read_stream,
        read_stream_delta, read_stream_files, read_stream_files_with, read_stream_with, sql,
        streaming_table, table, temporary_view,
    };
    pub use datafusion::dataframe::DataFrame;
    pub use datafusion::functions_aggregate::expr_fn::{avg, count, max, min, sum};
    pub use datafusion::prelude::{Expr, col, lit};
}

/// Used by generated code; not a public API.
#[doc(hidden)]
pub mod __private {
    /// Used by generated code: the registry the macros submit to.
    pub use inventory;
    /// Used by generated code: the record and its parts.
    pub use lakeflow_core::dataset::{
        DatasetKind, DatasetRecord, Plan, PlanFuture, QueryFn, SourceLocation,
    };
    /// Used by generated code: expectation records.
    pub use lakeflow_core::expectations::{ExpectAction, ExpectationRecord, RuleRecord};
    /// Used by crash tests: the line a process prints when it stops at a failpoint.
    pub use lakeflow_core::failpoint::REACHED as FAILPOINT_REACHED;
}
