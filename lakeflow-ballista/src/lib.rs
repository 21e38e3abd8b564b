//! lakeflow's flows on an Apache DataFusion Ballista cluster.
//!
//! [`BallistaEngine`] is an [`lakeflow_core::Engine`]: each flow's plan goes to a Ballista
//! scheduler, which cuts it into stages that executors run. The executors also write the
//! flow's table: each task checks its rows with the flow's expectations and writes Parquet
//! files into the table's directory, and the process that runs the pipeline (the
//! coordinator) commits the files to Delta with the batch's transaction id — so exactly-once
//! holds as it does in-process. Flows whose checks see the whole write (uniqueness rules,
//! quarantine) or that feed sinks bring their rows to the coordinator instead. Landing files
//! are read on the executors too ([`lakeflow_core::ingest::FileBatchTable`]).
//!
//! What crosses the wire is what DataFusion's and Ballista's codecs serialize, plus lakeflow's
//! own piece: a pipeline table is read as the list of its Parquet files with their partition
//! values ([`lakeflow_delta::FileListTable`], encoded by [`LakeflowLogicalCodec`]), whose scan
//! is DataFusion's Parquet scan; a batch of landing files travels as its files and options,
//! decoded on the executors by lakeflow's reader. A plan that reads something that cannot cross
//! (rows already in memory, a batch read with DROPMALFORMED, whose count of left-out records the
//! run reports) runs in-process instead, and the engine logs that it did.
//!
//! The scheduler and the executors must know lakeflow's Spark SQL functions: run them with
//! [`cluster::Scheduler`] and [`cluster::Executor`] (the `lakeflow cluster scheduler` and
//! `lakeflow cluster executor` commands), not Ballista's stock binaries.

pub mod cluster;
mod codec;
mod engine;
mod write;

pub use codec::LakeflowLogicalCodec;
pub use engine::BallistaEngine;
