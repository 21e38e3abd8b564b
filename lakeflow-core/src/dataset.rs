//! What a dataset is: its kind, its options, where it was defined, and the query function
//! that describes its contents.
//!
//! Two forms exist. [`DatasetRecord`] is the const record the attribute macros submit through
//! `inventory` (only `&'static` data and fn pointers). [`DatasetDef`] is the owned form every
//! other module works with; the builder API makes it directly from closures.
//! This module must not depend on the resolver, the graph or any storage.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use datafusion::dataframe::DataFrame;

use crate::error::Result;
use crate::expectations::{ExpectAction, Expectation, ExpectationRecord, Rule};

/// What a query function returns: a DataFusion [`DataFrame`] describing the dataset's rows.
///
/// The `DataFrame` is only a plan; lakeflow executes it when the pipeline runs.
pub type Plan = Result<DataFrame>;

/// The future an `async` query function returns, boxed.
pub type PlanFuture = Pin<Box<dyn Future<Output = Plan> + Send + 'static>>;

/// The kind of a dataset, as declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DatasetKind {
    /// `#[table]`: a streaming table when its query reads a stream, a materialized view otherwise.
    Table,
    /// `#[materialized_view]`: recomputed from its inputs and replaced atomically.
    MaterializedView,
    /// `#[streaming_table]`: appends what is new in its streaming inputs.
    StreamingTable,
    /// `#[temporary_view]`: never stored; inlined into the queries that read it.
    TemporaryView,
    /// `#[append_flow(target = "..")]`: not a dataset but a flow that appends its query's rows
    /// to a streaming table, with a checkpoint of its own.
    AppendFlow,
    /// `create_sink`: a destination outside the pipeline that append flows write; not read.
    Sink,
}

impl DatasetKind {
    /// Whether datasets of this kind are written to storage.
    pub fn is_stored(self) -> bool {
        !matches!(
            self,
            DatasetKind::TemporaryView | DatasetKind::AppendFlow | DatasetKind::Sink
        )
    }
}

impl fmt::Display for DatasetKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DatasetKind::Table => "table",
            DatasetKind::MaterializedView => "materialized view",
            DatasetKind::StreamingTable => "streaming table",
            DatasetKind::TemporaryView => "temporary view",
            DatasetKind::AppendFlow => "append flow",
            DatasetKind::Sink => "sink",
        })
    }
}

/// Where a dataset is defined: a file, line and column of the user's source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceLocation {
    /// The source file, as `file!()` gives it.
    pub file: &'static str,
    /// The 1-based line.
    pub line: u32,
    /// The 1-based column.
    pub column: u32,
}

impl SourceLocation {
    /// The location of the caller; used by the builder API.
    #[track_caller]
    pub fn caller() -> Self {
        let loc = std::panic::Location::caller();
        SourceLocation {
            file: loc.file(),
            line: loc.line(),
            column: loc.column(),
        }
    }
}

impl fmt::Display for SourceLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// A query function as the macros record it: a plain or an `async` fn pointer.
#[derive(Clone, Copy)]
pub enum QueryFn {
    /// `fn() -> Plan`.
    Sync(fn() -> Plan),
    /// `async fn() -> Plan`, wrapped by the macro to return a boxed future.
    Async(fn() -> PlanFuture),
}

impl fmt::Debug for QueryFn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            QueryFn::Sync(_) => "QueryFn::Sync",
            QueryFn::Async(_) => "QueryFn::Async",
        })
    }
}

/// The const record one dataset macro submits through `inventory`.
///
/// Users do not build these by hand; `Pipeline::builder()` is the API for that.
#[derive(Debug)]
pub struct DatasetRecord {
    /// The dataset name.
    pub name: &'static str,
    /// The declared kind.
    pub kind: DatasetKind,
    /// The `comment = "..."` option.
    pub comment: Option<&'static str>,
    /// The `partition_cols = [...]` option.
    pub partition_cols: &'static [&'static str],
    /// The `table_properties = {...}` option.
    pub table_properties: &'static [(&'static str, &'static str)],
    /// The expectations stacked under the dataset attribute, top to bottom.
    pub expectations: &'static [ExpectationRecord],
    /// The quarantine table for rows drop rules remove, if any.
    pub quarantine: Option<&'static str>,
    /// Where the definition is.
    pub location: SourceLocation,
    /// The query function; `None` for a streaming table only append flows write
    /// (`create_streaming_table!`).
    pub query: Option<QueryFn>,
    /// For an append flow: the streaming table it appends to.
    pub target: Option<&'static str>,
    /// For an append flow: run its query a single time (again after a full refresh).
    pub once: bool,
}

inventory::collect!(DatasetRecord);

/// A query function in owned form: called once per planning, returns the plan.
pub type Query = Arc<dyn Fn() -> PlanFuture + Send + Sync>;

/// One dataset of a pipeline, in the owned form the runtime works with.
#[derive(Clone)]
pub struct DatasetDef {
    /// The dataset name, unique in the pipeline.
    pub name: String,
    /// The declared kind.
    pub kind: DatasetKind,
    /// A description stored with the table.
    pub comment: Option<String>,
    /// Columns the stored table is partitioned by.
    pub partition_cols: Vec<String>,
    /// Properties stored in the table's metadata.
    pub table_properties: BTreeMap<String, String>,
    /// Data-quality rules checked as the dataset is written.
    pub expectations: Vec<Expectation>,
    /// The table that receives rows removed by drop rules, if any.
    pub quarantine: Option<String>,
    /// Where the definition is.
    pub location: SourceLocation,
    /// The query function; `None` for a streaming table only append flows write.
    pub query: Option<Query>,
    /// For an append flow ([`DatasetKind::AppendFlow`]): the streaming table it appends to.
    pub target: Option<String>,
    /// For an append flow: run its query a single time, as a batch (again after a full
    /// refresh of its target).
    pub once: bool,
    /// For a streaming table without a query: its schema, when given rather than taken from
    /// its flows.
    pub schema: Option<datafusion::arrow::datatypes::SchemaRef>,
    /// For an AUTO CDC flow: how its source's changes apply to its target.
    pub cdc: Option<Arc<crate::cdc::AutoCdc>>,
    /// For a sink: where its flows' rows go.
    pub sink: Option<Arc<dyn crate::sink::Sink>>,
    /// A view that Spark would persist in its catalog (`CREATE VIEW` without `TEMPORARY`).
    /// lakeflow inlines it as a temporary view; it counts as a dataset of the pipeline, and
    /// it may not read a stream (Spark's `STREAMING_RELATION_FOR_PERSISTED_VIEW`).
    pub persisted: bool,
    /// For a streaming table that aggregates time windows of a stream: the stream's event
    /// time column and how late its rows may arrive (`WATERMARK ts DELAY OF INTERVAL ..`).
    /// Each window is appended once, when the watermark passes its end.
    pub watermark: Option<Watermark>,
    /// The SQL confs of its flow (`SET key = value` above it in a SQL file). A flow that reads
    /// temporary views has theirs too (Spark fuses them); two values of one key are an error.
    pub sql_conf: BTreeMap<String, String>,
}

/// A stream's watermark: rows may arrive up to `delay_micros` later than the latest event time
/// seen; the watermark is that latest time minus the delay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// The event time column of the stream.
    pub column: String,
    /// The allowed lateness, in microseconds.
    pub delay_micros: i64,
}

impl fmt::Debug for DatasetDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatasetDef")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("location", &self.location)
            .finish_non_exhaustive()
    }
}

impl DatasetDef {
    /// Converts a macro record into the owned form.
    pub fn from_record(record: &'static DatasetRecord) -> Self {
        let query = record.query.map(|query| -> Query {
            match query {
                QueryFn::Sync(f) => Arc::new(move || Box::pin(async move { f() }) as PlanFuture),
                QueryFn::Async(f) => Arc::new(f),
            }
        });
        DatasetDef {
            name: record.name.to_string(),
            kind: record.kind,
            comment: record.comment.map(str::to_string),
            partition_cols: record
                .partition_cols
                .iter()
                .map(|c| c.to_string())
                .collect(),
            table_properties: record
                .table_properties
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            expectations: record
                .expectations
                .iter()
                .map(Expectation::from_record)
                .collect(),
            quarantine: record.quarantine.map(str::to_string),
            location: record.location,
            query,
            target: record.target.map(str::to_string),
            once: record.once,
            schema: None,
            cdc: None,
            sink: None,
            persisted: false,
            watermark: None,
            sql_conf: BTreeMap::new(),
        }
    }

    /// Checks what the macros check at compile time, for definitions made by the builder.
    pub fn validate(&self) -> Result<()> {
        let invalid = |message: String| {
            Err(crate::Error::InvalidDefinition {
                dataset: self.name.clone(),
                message,
            })
        };
        if !is_valid_name(&self.name) {
            return invalid(format!(
                "`{}` is not a valid dataset name: use letters, digits, `_` and `-`, starting with a letter or `_`, at most 255 characters",
                self.name
            ));
        }
        for key in ["pipelines.reset.allowed"] {
            if let Some(value) = self.table_properties.get(key)
                && !matches!(value.trim().to_ascii_lowercase().as_str(), "true" | "false")
            {
                return invalid(format!(
                    "table property `{key}` is true or false, not `{value}`"
                ));
            }
        }
        if self.kind == DatasetKind::TemporaryView
            && (!self.partition_cols.is_empty() || !self.table_properties.is_empty())
        {
            return invalid(
                "a temporary view is never stored, so it takes no partition columns or table properties".into(),
            );
        }
        match (self.kind, &self.target) {
            (DatasetKind::AppendFlow, None) => {
                return invalid("an append flow needs a target streaming table".into());
            }
            (DatasetKind::AppendFlow, Some(target)) => {
                if !is_valid_name(target) {
                    return invalid(format!("`{target}` is not a valid target table name"));
                }
                if !self.partition_cols.is_empty()
                    || !self.table_properties.is_empty()
                    || self.quarantine.is_some()
                {
                    return invalid(format!(
                        "an append flow writes into `{target}`; partition columns, table properties and quarantine belong to that table's definition"
                    ));
                }
            }
            (_, Some(_)) => {
                return invalid("only an append flow has a target".into());
            }
            (_, None) if self.once => {
                return invalid("only an append flow can run once".into());
            }
            _ => {}
        }
        if (self.kind == DatasetKind::Sink) != self.sink.is_some() {
            return invalid("a sink is made with create_sink and has a destination".into());
        }
        match (&self.query, self.kind) {
            (None, DatasetKind::StreamingTable | DatasetKind::Sink) => {}
            (None, _) => {
                return invalid(format!(
                    "a {} needs a query; only a streaming table can be created without one (for append flows to write)",
                    self.kind
                ));
            }
            (Some(_), _) if self.schema.is_some() => {
                return invalid(
                    "a schema is given only for a streaming table without a query; a query defines its own schema".into(),
                );
            }
            _ => {}
        }
        let mut seen = std::collections::BTreeSet::new();
        for col in &self.partition_cols {
            if !seen.insert(col) {
                return invalid(format!("partition column `{col}` is listed twice"));
            }
        }
        let mut names = std::collections::BTreeSet::new();
        for e in &self.expectations {
            // Databricks names expectations with any text (`Ships after the cut-over`); only
            // an empty name or control characters cannot be shown in reports and the log.
            if e.name.trim().is_empty() || e.name.chars().any(char::is_control) {
                return invalid(format!(
                    "`{}` is not a valid expectation name: give it a name of visible characters",
                    e.name.escape_debug()
                ));
            }
            if !names.insert(&e.name) {
                return invalid(format!(
                    "two expectations are named `{}`; rename one",
                    e.name
                ));
            }
            if self.kind == DatasetKind::TemporaryView {
                return invalid(format!(
                    "expectation `{}`: a temporary view is never materialized, so its rules would never be counted; put them on the table that reads the view",
                    e.name
                ));
            }
            if let Rule::Unique(cols) = &e.rule
                && cols.is_empty()
            {
                return invalid(format!("uniqueness rule `{}` names no columns", e.name));
            }
        }
        if let Some(quarantine) = &self.quarantine {
            if !self
                .expectations
                .iter()
                .any(|e| e.action == ExpectAction::Drop)
            {
                return invalid(format!(
                    "quarantine table `{quarantine}` keeps the rows drop rules remove, but `{}` has no drop rule; add one or remove the quarantine",
                    self.name
                ));
            }
            if !is_valid_name(quarantine) {
                return invalid(format!(
                    "`{quarantine}` is not a valid quarantine table name"
                ));
            }
        }
        Ok(())
    }
}

/// Whether `name` is a valid dataset name: `[A-Za-z_][A-Za-z0-9_-]*`, 1 to 255 characters,
/// or `schema.name` with both parts so (a dataset of another schema than the pipeline's, as
/// SQL files define them after `USE SCHEMA`). A `-` (Spark's `` `hyphen-mv` ``, written in
/// backticks in SQL) is allowed after the first character; the attribute macros keep to names
/// that need no quoting.
pub fn is_valid_name(name: &str) -> bool {
    let part = |part: &str| {
        let mut chars = part.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    };
    let parts = match name.split_once('.') {
        Some((schema, table)) => part(schema) && part(table),
        None => part(name),
    };
    parts && name.len() <= 255
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("silver_orders"));
        assert!(is_valid_name("_x1"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("1abc"));
        assert!(is_valid_name("a-b"));
        assert!(!is_valid_name("-ab"));
        assert!(!is_valid_name("a/b"));
        assert!(is_valid_name("sales.orders"));
        assert!(!is_valid_name("a.b.c"));
        assert!(!is_valid_name(".a"));
        assert!(!is_valid_name("a."));
        assert!(!is_valid_name(&"a".repeat(256)));
    }
}
