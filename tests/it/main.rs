//! The integration tests of the `lakeflow` package, in one binary so linking happens once.

#[cfg(feature = "ballista")]
mod ballista;
mod cdc;
mod cli;
mod concurrent;
mod crash;
mod delta;
mod dlt_corpus;
mod engines;
mod errors;
mod event_log;
mod execution;
mod flows;
mod incremental;
mod ingest;
mod ingest_spark;
mod maintenance;
mod object_stores;
mod quality;
mod registry;
mod sdp;
mod sdp_conformance;
mod servers;
mod sinks;
mod sources;
mod spark_sql;
mod sql_pipelines;
mod streaming;
mod support;
mod testing;
mod ui;

/// Every accepted form of the macros; its datasets join the registry of this binary.
#[path = "../ui/pass/all_forms.rs"]
#[allow(dead_code, clippy::needless_question_mark)]
mod all_forms;

/// Every expectation form; its datasets join the registry of this binary too.
#[path = "../ui/pass/expectations.rs"]
#[allow(dead_code)]
mod expectation_forms;
