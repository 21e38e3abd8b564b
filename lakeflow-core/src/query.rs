//! The readers a query function calls: pipeline datasets by name, SQL over them, and
//! external files and tables by path. Each returns a [`Plan`]; none reads data.
//!
//! They only work inside a query function while lakeflow plans the pipeline; elsewhere they
//! return [`crate::Error::OutsideQueryFunction`].

use datafusion::dataframe::DataFrame;

use crate::dataset::Plan;
use crate::ingest::{FileOptions, IngestSpec};
use crate::resolve::{ReadMode, plan_sql, read_dataset, read_source, read_stream_source};
use crate::source::{FileFormat, SourceSpec};

/// Reads pipeline dataset `name` (or a registered external table) as a whole.
///
/// The read is how lakeflow learns that this dataset depends on `name`.
pub fn read(name: &str) -> Plan {
    read_dataset(name, ReadMode::Batch, "read")
}

/// Reads pipeline dataset `name` — or an external table registered as
/// `SourceSpec::delta(path)` — as a stream: each run sees only the rows appended since the
/// reading flow's last batch.
///
/// A dataset declared with `#[table]` that reads a stream is a streaming table. The upstream
/// must only ever be appended to; a commit that changes rows fails the flow (see
/// [`crate::Error::NotAnAppend`]).
pub fn read_stream(name: &str) -> Plan {
    read_dataset(name, ReadMode::Stream, "read_stream")
}

/// Options of [`read_stream_with`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamOptions {
    skip_change_commits: bool,
}

impl StreamOptions {
    /// The defaults: a commit that changes rows in the upstream fails the reading flow.
    pub fn new() -> Self {
        Self::default()
    }

    /// Leave out upstream commits that update, delete or overwrite rows, reading only the
    /// appends (Spark's `skipChangeCommits`).
    pub fn skip_change_commits(mut self) -> Self {
        self.skip_change_commits = true;
        self
    }
}

/// [`read_stream`] with options.
pub fn read_stream_with(name: &str, options: StreamOptions) -> Plan {
    let mode = if options.skip_change_commits {
        ReadMode::StreamSkippingChanges
    } else {
        ReadMode::Stream
    };
    read_dataset(name, mode, "read_stream_with")
}

/// Plans a SQL query. Table names resolve to pipeline datasets and registered external
/// tables, case-insensitively, as [`read`] would.
pub fn sql(query: &str) -> Plan {
    plan_sql(query, &[], SqlOptions::default())
}

/// Settings of one query: [`sql_with_options`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SqlOptions {
    pub(crate) ansi: Option<bool>,
    pub(crate) time_zone: Option<String>,
    pub(crate) schema: Option<String>,
}

impl SqlOptions {
    /// The pipeline's settings.
    pub fn new() -> Self {
        Self::default()
    }

    /// `spark.sql.ansi.enabled` for this query (Spark SQL only): failed casts and division
    /// by zero are errors instead of NULL.
    pub fn ansi(mut self, on: bool) -> Self {
        self.ansi = Some(on);
        self
    }

    /// `spark.sql.session.timeZone` for this query (Spark SQL only): the zone timestamps are
    /// written in as text (`CAST(ts AS STRING)`).
    pub fn time_zone(mut self, zone: impl Into<String>) -> Self {
        self.time_zone = Some(zone.into());
        self
    }

    /// The schema whose datasets unqualified table names mean first (Spark SQL only): a
    /// name `x` reads dataset `schema.x` when the pipeline has one, and `x` otherwise. SQL
    /// files pass the current schema after `USE SCHEMA`.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }
}

/// [`sql_with`] with settings of its own: SQL files pass `SET spark.sql.ansi.enabled`.
pub fn sql_with_options(
    query: &str,
    tables: Vec<(String, DataFrame)>,
    options: SqlOptions,
) -> Plan {
    plan_sql(query, &tables, options)
}

/// [`sql`] where some table names stand for plans given here, for what SQL text cannot say
/// by itself: a stream of a dataset, or files read by path. Each given name is read as its
/// plan, aliased to that name; every other table name resolves as in [`sql`]. Given names
/// match case-insensitively and hide a dataset of the same name in this query only.
///
/// SQL pipeline files use it for `STREAM(orders)` and `read_files(..)`:
///
/// ```
/// use lakeflow_core::{Plan, read_stream, sql_with};
///
/// // The query function of a streaming table: only the new rows of `orders`.
/// fn clean_orders() -> Plan {
///     sql_with(
///         "SELECT * FROM new_orders WHERE amount > 0",
///         vec![("new_orders".to_string(), read_stream("orders")?)],
///     )
/// }
/// # let _ = clean_orders;
/// ```
pub fn sql_with(query: &str, tables: Vec<(String, DataFrame)>) -> Plan {
    plan_sql(query, &tables, SqlOptions::default())
}

/// Reads files of `format` at `path`: one file, or every file with the format's extension
/// under a directory.
///
/// Given [`FileOptions`] (`read_files(path, FileOptions::csv())`), reads as
/// [`read_files_with`] does.
pub fn read_files(path: impl Into<String>, format: impl Into<FileFormat>) -> Plan {
    read_source(file_spec(path.into(), format.into()), "read_files")
}

fn file_spec(path: String, format: FileFormat) -> SourceSpec {
    match format {
        FileFormat::Options(options) => SourceSpec::Ingest(Box::new(IngestSpec {
            path,
            options: *options,
        })),
        format => SourceSpec::Files { path, format },
    }
}

/// Reads Parquet files at `path`.
pub fn read_parquet(path: impl Into<String>) -> Plan {
    read_files(path, FileFormat::Parquet)
}

/// Reads CSV files with a header line at `path`; use [`read_files`] with
/// [`crate::csv()`] for other options.
pub fn read_csv(path: impl Into<String>) -> Plan {
    read_files(path, crate::source::csv())
}

/// Reads newline-delimited JSON files at `path`.
pub fn read_json(path: impl Into<String>) -> Plan {
    read_files(path, FileFormat::Json)
}

/// Reads the current snapshot of the Delta table at `path`.
pub fn read_delta(path: impl Into<String>) -> Plan {
    read_source(SourceSpec::Delta { path: path.into() }, "read_delta")
}

/// Reads the Delta table at `path` as a stream: each run sees only the rows its commits
/// appended since the reading flow's last batch (the first batch reads the table as it is).
/// A commit that updates, deletes or overwrites rows fails the flow, naming the table and the
/// version; to leave such commits out, register the table with
/// `Pipeline::external_table(name, SourceSpec::delta(path))` and read it with
/// [`read_stream_with`] and [`StreamOptions::skip_change_commits`].
pub fn read_stream_delta(path: impl Into<String>) -> Plan {
    read_stream_source(
        SourceSpec::Delta { path: path.into() },
        false,
        "read_stream_delta",
    )
}

/// Reads the files of `format` under directory `path` as a stream: each run sees only the
/// files the reading flow has not processed yet. The schema is inferred when the pipeline is
/// planned; a file that does not parse fails the flow, naming the file, with nothing committed.
///
/// Given [`FileOptions`], reads as [`read_stream_files_with`] does.
pub fn read_stream_files(path: impl Into<String>, format: impl Into<FileFormat>) -> Plan {
    read_stream_source(
        file_spec(path.into(), format.into()),
        false,
        "read_stream_files",
    )
}

/// Reads files at `path` as Databricks' `read_files` does, with `options`: a directory's
/// files (hidden ones left out), the schema inferred across them or given, values that do not
/// fit rescued into `_rescued_data`, `_metadata` on request.
///
/// ```
/// use lakeflow_core::{FileOptions, Plan, read_files_with};
///
/// fn customers() -> Plan {
///     read_files_with("data/customers", FileOptions::csv().option("schemaHints", "id BIGINT"))
/// }
/// # let _ = customers;
/// ```
pub fn read_files_with(path: impl Into<String>, options: FileOptions) -> Plan {
    let spec = SourceSpec::Ingest(Box::new(IngestSpec {
        path: path.into(),
        options,
    }));
    read_source(spec, "read_files_with")
}

/// Reads the files under `path` as a stream, as Auto Loader and `STREAM read_files` do, with
/// `options`: each run reads the files not read yet (`maxFilesPerTrigger` and
/// `maxBytesPerTrigger` split them into several batches), with the schema held in the flow's
/// checkpoint, values that do not fit rescued, and new columns handled per
/// `schemaEvolutionMode`. A file that changes after it was read is reported by name, and read
/// again with `allowOverwrites`.
pub fn read_stream_files_with(path: impl Into<String>, options: FileOptions) -> Plan {
    let spec = SourceSpec::Ingest(Box::new(IngestSpec {
        path: path.into(),
        options,
    }));
    read_stream_source(spec, false, "read_stream_files_with")
}

/// Plans a SQL expression over `df`'s columns (an expectation, a CDC condition) in the
/// dialect of `df`'s session: Spark SQL's functions, casts and case-insensitive names unless
/// the session reads DataFusion's dialect.
pub(crate) fn sql_expr(
    df: &DataFrame,
    sql: &str,
) -> datafusion::error::Result<datafusion::prelude::Expr> {
    let state = df.clone().into_parts().0;
    match lakeflow_sql::SparkSql::of(state.config()) {
        Some(spark) => spark.plan_expr(sql, df.schema(), &state),
        None => df.parse_sql_expr(sql),
    }
}
