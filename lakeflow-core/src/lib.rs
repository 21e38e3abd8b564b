//! The model and the runtime of lakeflow: dataset definitions and their registry, the
//! resolver that turns query functions into a dependency graph, the planner, the scheduler,
//! and the `Storage` and `Engine` seams.
//!
//! This crate never names a table format: storage is behind [`Storage`] (Delta Lake lives in
//! `lakeflow-delta`), and execution is behind [`Engine`].
#![warn(missing_docs)]

pub mod cdc;
pub mod checkpoint;
pub mod dataset;
pub mod engine;
pub mod error;
pub mod event_log;
pub mod event_log_sql;
pub mod expectations;
#[doc(hidden)]
pub mod failpoint;
mod flow;
pub mod graph;
mod incremental;
pub mod ingest;
pub mod lease;
pub mod maintenance;
pub mod pipeline;
mod placeholder;
pub mod planner;
pub mod progress;
pub mod query;
pub mod report;
pub mod resolve;
pub mod scheduler;
pub mod sink;
pub mod source;
pub mod storage;
mod stream;

pub use cdc::AutoCdc;
pub use dataset::{
    DatasetDef, DatasetKind, DatasetRecord, Plan, PlanFuture, QueryFn, SourceLocation,
};
pub use engine::{DataFusionEngine, Engine, Functions, SqlDialect, WrittenFiles, session_with};
pub use error::{Error, Result};
pub use expectations::{CheckCounts, Checker, ExpectAction, Expectation, ExpectationResult, Rule};
pub use graph::DatasetGraph;
pub use ingest::FileOptions;
pub use pipeline::PipelineDef;
pub use query::{
    SqlOptions, StreamOptions, read, read_csv, read_delta, read_files, read_files_with, read_json,
    read_parquet, read_stream, read_stream_delta, read_stream_files, read_stream_files_with,
    read_stream_with, sql, sql_with, sql_with_options,
};
pub use report::{DatasetReport, FlowStatus, RunReport};
pub use scheduler::RunOptions;
pub use sink::{FileSink, Sink, SinkBatch};
pub use source::{CsvFormat, ExternalTable, FileFormat, SourceSpec, csv, json, parquet};
pub use storage::{Committed, FileTarget, FilesPrepared, MemoryStorage, Storage, TableWrite};
