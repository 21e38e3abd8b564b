//! The error type of lakeflow-core, grouped by cause: the user's definitions, planning,
//! storage, execution, and lakeflow's own bugs.
//!
//! This module owns no behaviour beyond formatting; it must not depend on any storage crate.

use std::fmt;

use datafusion::error::DataFusionError;

use crate::dataset::SourceLocation;
use crate::report::RunReport;

/// `Result` with lakeflow's [`Error`] as the default error type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in lakeflow, grouped by cause.
///
/// `Debug` prints the same text as `Display` followed by the chain of causes, so that
/// `fn main() -> lakeflow::Result<()>` shows a person a readable message.
#[derive(thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    // ---- the user's definitions ----------------------------------------------------------
    /// Two definitions share a name.
    #[error(
        "dataset `{name}` is defined twice: at {first} and at {second}; rename one of them (`name = \"...\"` sets a dataset's name)"
    )]
    DuplicateDataset {
        /// The shared name.
        name: String,
        /// Where the first definition is.
        first: SourceLocation,
        /// Where the second definition is.
        second: SourceLocation,
    },
    /// A query reads a name that is neither a dataset of the pipeline nor a registered external table.
    #[error(
        "dataset `{referenced_by}` ({location}) reads `{name}`, which is not defined in this pipeline{}",
        suggestion_text(suggestion, location)
    )]
    UnknownDataset {
        /// The name that was read.
        name: String,
        /// The dataset whose query read it.
        referenced_by: String,
        /// Where that dataset is defined.
        location: SourceLocation,
        /// The nearest defined name, if one is close.
        suggestion: Option<String>,
    },
    /// The datasets read each other in a circle.
    #[error("datasets depend on each other in a cycle: {}; break the cycle by removing one of these reads", cycle_text(.path))]
    Cycle {
        /// The datasets on the cycle, each with its definition site; the first is repeated at the end.
        path: Vec<(String, SourceLocation)>,
    },
    /// Several problems at once, as a dry run reports them.
    #[error("{}", many_text(.0))]
    Many(Vec<Error>),
    /// A definition is malformed in a way the macros could not see (builder API, options).
    #[error("dataset `{dataset}`: {message}")]
    InvalidDefinition {
        /// The dataset.
        dataset: String,
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A file-reading option or its value is not valid.
    #[error("{message}")]
    InvalidOption {
        /// What is wrong and how to fix it.
        message: String,
    },
    /// A query function failed while lakeflow planned it (for example a column that does not exist).
    #[error("dataset `{dataset}` ({location}) has an invalid query: {source}")]
    Definition {
        /// The dataset.
        dataset: String,
        /// Where it is defined.
        location: SourceLocation,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
    /// An expectation does not fit its dataset (a column that does not exist, not a boolean).
    #[error("expectation `{expectation}` of dataset `{dataset}` ({location}): {message}")]
    Expectation {
        /// The dataset.
        dataset: String,
        /// The expectation.
        expectation: String,
        /// Where the dataset is defined.
        location: SourceLocation,
        /// What is wrong.
        message: String,
    },
    /// A row violated an `expect_or_fail` rule; the flow committed nothing.
    #[error(
        "expectation `{expectation}` of dataset `{dataset}` failed: `{rule}` is not true for the row {row}"
    )]
    ExpectationFailed {
        /// The dataset.
        dataset: String,
        /// The expectation.
        expectation: String,
        /// The rule's text.
        rule: String,
        /// One violating row, as `column=value, ...`.
        row: String,
    },
    /// `read`, `sql` or another reader was called outside a query function.
    #[error(
        "`{function}` was called outside a query function; it only works inside a function registered with `#[table]`, `#[materialized_view]`, `#[streaming_table]`, `#[temporary_view]` or the pipeline builder"
    )]
    OutsideQueryFunction {
        /// The reader that was called.
        function: &'static str,
    },
    /// An external source could not be opened.
    #[error("cannot open source `{source_name}`: {cause}")]
    Source {
        /// The path, URL or table name of the source.
        source_name: String,
        /// The cause.
        cause: Box<Error>,
    },

    // ---- storage ---------------------------------------------------------------------------
    /// Storage failed to read or write a table.
    #[error("storage error at `{location}`: {message}")]
    Storage {
        /// The table location.
        location: String,
        /// What the storage layer reported.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The pipeline defines nothing to store: no table, materialized view, flow or sink
    /// (Spark's `RUN_EMPTY_PIPELINE`).
    #[error(
        "the pipeline defines no table, materialized view or flow (only temporary views, or nothing at all), so a run would do nothing; define a dataset, or check that the spec's `libraries` globs match your files [RUN_EMPTY_PIPELINE]"
    )]
    EmptyPipeline,
    /// Another run holds the lease on the pipeline storage: one writer at a time.
    #[error(
        "another run is using the pipeline storage `{location}`: {holder} (started {since}, last heartbeat {heartbeat}); wait for it to finish (`lakeflow run --wait` waits), or, if it crashed, run again once its lease expires ({expires})"
    )]
    StorageBusy {
        /// The storage root.
        location: String,
        /// Who holds it: host and process.
        holder: String,
        /// When the holder's run started (RFC 3339).
        since: String,
        /// When the holder last said it is alive (RFC 3339).
        heartbeat: String,
        /// When the lease expires unless renewed (RFC 3339).
        expires: String,
    },
    /// This run lost its lease on the pipeline storage (it could not renew it in time, and
    /// another run took over): it stopped before writing anything more.
    #[error(
        "this run lost its lease on the pipeline storage `{location}` ({message}); it stopped writing; what it committed before is complete, run again to go on"
    )]
    LeaseLost {
        /// The storage root.
        location: String,
        /// What happened.
        message: String,
    },
    /// Another writer planned a batch of the same streaming flow at the same time (no lease:
    /// another tool, or a lease lost to a clock problem).
    #[error(
        "flow `{flow}`: another run planned batch {batch} at the same time; this run left it to that run and wrote nothing of it; run again to go on"
    )]
    ConcurrentBatch {
        /// The flow.
        flow: String,
        /// The batch both planned.
        batch: u64,
    },
    /// A streaming read met a commit that changed or removed rows instead of appending.
    #[error(
        "table `{table}` version {version} is not an append (it updated, deleted or overwrote rows), so it cannot be read as a stream; run a full refresh of the datasets that read it as a stream, or let the flow skip change commits"
    )]
    NotAnAppend {
        /// The table read as a stream.
        table: String,
        /// The offending version.
        version: u64,
    },
    /// A streaming flow's checkpoint is damaged.
    #[error("checkpoint of flow `{flow}`: {message}")]
    Checkpoint {
        /// The flow (or the checkpoint file).
        flow: String,
        /// What is wrong and what to do.
        message: String,
    },
    /// A file of a streaming file source could not be read.
    #[error(
        "cannot read `{file}`: {message}; fix or remove the file and run again (nothing was committed)"
    )]
    SourceFile {
        /// The file.
        file: String,
        /// The reader's message (with the line, where it knows it).
        message: String,
    },
    /// A new file has columns the held schema lacks, and `schemaEvolutionMode` is
    /// failOnNewColumns: the flow fails and the schema stays as it is.
    #[error(
        "`{file}` has new columns {}: {}",
        columns.iter().map(|c| format!("`{c}`")).collect::<Vec<_>>().join(", "),
        "the flow's held schema lacks them and schemaEvolutionMode failOnNewColumns does not add them; set schemaEvolutionMode to addNewColumns (the schema gains them), rescue (they go to _rescued_data) or none (they are ignored), remove the file, or run a full refresh of the flow to infer the schema again; nothing of this batch was committed"
    )]
    NewColumns {
        /// The file.
        file: String,
        /// The columns.
        columns: Vec<String>,
    },
    /// A new file has columns the held schema lacks, and `schemaEvolutionMode` is
    /// addNewColumns: the held schema gained them and the flow stopped, as Auto Loader's
    /// stream stops at a schema change; the next run reads them.
    #[error(
        "`{file}` has new columns {}: {}",
        columns.iter().map(|(c, t)| format!("`{c}` {t}")).collect::<Vec<_>>().join(", "),
        "the flow's held schema gained them (schemaEvolutionMode addNewColumns) and the flow stopped, as Auto Loader does at a schema change; run the pipeline again to read them (its table gains the columns, earlier rows read NULL); nothing of this batch was committed"
    )]
    SchemaEvolved {
        /// A file that has the new columns (the first, in listing order).
        file: String,
        /// The columns the held schema gained, each with its Spark type (`STRING`).
        columns: Vec<(String, String)>,
    },
    /// A new file has values that need wider types than the held schema's, and
    /// `schemaEvolutionMode` is addNewColumnsWithTypeWidening: the held schema's types were
    /// widened (new columns added) and the flow stopped, as Auto Loader does; the next run
    /// reads the file with the wider types and widens the table's columns.
    #[error(
        "`{file}` needs wider types: {}: the flow's held schema was widened (schemaEvolutionMode addNewColumnsWithTypeWidening) and the flow stopped, as Auto Loader does at a schema change; run the pipeline again to read it (the table's column types are widened, its rows kept); nothing of this batch was committed",
        changes.join(", ")
    )]
    SchemaWidened {
        /// A file that needs the wider types (the first, in listing order).
        file: String,
        /// Each change, as `` `amount` INT -> BIGINT `` or `` `note` STRING (new) ``.
        changes: Vec<String>,
    },
    /// The storage location is not a valid path or URL.
    #[error(
        "invalid storage location `{0}`: give a directory path or a URL such as file:///data/lakeflow"
    )]
    InvalidStorage(String),

    // ---- execution -------------------------------------------------------------------------
    /// SQL calls a function that is neither Spark SQL's nor registered with the pipeline.
    #[error(
        "`{name}` is not a function lakeflow knows: it is neither a Spark SQL function nor one registered with the pipeline; register functions of your own (model UDFs, vendor functions such as ai_classify) with the pipeline, see the README's \"Functions of your own\" (in `{query}`)"
    )]
    UnknownFunction {
        /// The function's name as written.
        name: String,
        /// The SQL that calls it.
        query: String,
    },
    /// DataFusion reported an error while planning or executing a query.
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
    /// A flow failed while running; its table was left as it was.
    #[error("flow `{dataset}` failed: {source}")]
    Flow {
        /// The flow's target dataset.
        dataset: String,
        /// The cause.
        #[source]
        source: Box<Error>,
    },
    /// The run ended FAILED: at least one flow failed. The report says which and why.
    #[error("pipeline run failed\n{report}")]
    RunFailed {
        /// The full report of the run, with each dataset's status.
        report: Box<RunReport>,
    },
    /// An I/O error outside storage (for example generating example data).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// The engine could not run a flow's plan: a cluster that cannot be reached or refused
    /// the plan.
    #[error("{0}")]
    Engine(String),

    // ---- lakeflow's own bugs ---------------------------------------------------------------
    /// A bug in lakeflow: please report it with the message.
    #[error("internal error in lakeflow: {0}. This is a bug; please report it with this message")]
    Internal(String),

    /// Control flow of the resolver: a query function needs something resolved first.
    /// Never returned from a public API.
    #[doc(hidden)]
    #[error(
        "lakeflow is still resolving `{0}`; return this error with `?` from the query function"
    )]
    Deferred(crate::resolve::Pending),
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")?;
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let text = cause.to_string();
            if !self.to_string().contains(&text) {
                write!(f, "\n  caused by: {text}")?;
            }
            source = cause.source();
        }
        Ok(())
    }
}

impl Error {
    /// Builds a [`Error::Storage`] from any error.
    pub fn storage(
        location: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Storage {
            location: location.into(),
            message: source.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// The report of a failed run, when this error is [`Error::RunFailed`].
    pub fn report(&self) -> Option<&RunReport> {
        match self {
            Error::RunFailed { report } => Some(report),
            _ => None,
        }
    }
}

fn suggestion_text(suggestion: &Option<String>, location: &SourceLocation) -> String {
    match suggestion {
        Some(s) => format!("; did you mean `{s}`?"),
        // Advice in the reader's own language: SQL files read existing tables by path.
        None if location.file.ends_with(".sql") => "; define it in a pipeline file, map the name to an existing table in the spec (`tables:` with `name: path/to/delta/table` in lakeflow.yml), or read it by its path (``delta.`/path/to/table` ``, `read_files('/path', format => 'parquet')`)".to_string(),
        None => "; define it, or register it as an external table with `Pipeline::builder().external_table(..)`".to_string(),
    }
}

fn cycle_text(path: &[(String, SourceLocation)]) -> String {
    struct Path<'a>(&'a [(String, SourceLocation)]);
    impl fmt::Display for Path<'_> {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            for (i, (name, loc)) in self.0.iter().enumerate() {
                if i > 0 {
                    f.write_str(" -> ")?;
                }
                if i + 1 == self.0.len() {
                    write!(f, "{name}")?;
                } else {
                    write!(f, "{name} ({loc})")?;
                }
            }
            Ok(())
        }
    }
    Path(path).to_string()
}

impl Error {
    /// One error for several: itself when there is one, else [`Error::Many`].
    pub fn from_many(mut errors: Vec<Error>) -> Self {
        if errors.len() == 1 {
            errors.pop().expect("one error")
        } else {
            Error::Many(errors)
        }
    }
}

fn many_text(errors: &[Error]) -> String {
    let mut out = format!(
        "{} problems found in the pipeline definition:",
        errors.len()
    );
    for e in errors {
        out.push_str("\n  - ");
        out.push_str(&e.to_string());
    }
    out
}

/// What starts a file error told across processes ([`Error::to_wire`]): the error's fields
/// follow as hexadecimal JSON, which survives however the message is quoted on its way.
const WIRE: &str = "[lakeflow-file-error:";

impl Error {
    /// `error` with a file error a run acts on (a file that changed while read, new columns)
    /// also told in words [`Error::from_wire`] reads back: for scans that run in another
    /// process, whose errors reach the run as text. Other errors are returned as they are.
    pub fn to_wire(error: DataFusionError) -> DataFusionError {
        let fields = match &error {
            DataFusionError::External(inner) => match inner.downcast_ref::<Error>() {
                Some(Error::SourceFile { file, message }) => {
                    serde_json::json!({"kind": "source_file", "file": file, "message": message})
                }
                Some(Error::NewColumns { file, columns }) => {
                    serde_json::json!({"kind": "new_columns", "file": file, "columns": columns})
                }
                _ => return error,
            },
            _ => return error,
        };
        let hex: String = fields
            .to_string()
            .bytes()
            .map(|b| format!("{b:02x}"))
            .collect();
        DataFusionError::Execution(format!("{error} {WIRE}{hex}]"))
    }

    /// The file error [`Error::to_wire`] told in `text`, if it holds one.
    pub fn from_wire(text: &str) -> Option<Error> {
        let start = text.find(WIRE)? + WIRE.len();
        let hex = &text[start..];
        let hex = &hex[..hex.find(']')?];
        let bytes = (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        let fields: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        let file = fields["file"].as_str()?.to_string();
        match fields["kind"].as_str()? {
            "source_file" => Some(Error::SourceFile {
                file,
                message: fields["message"].as_str()?.to_string(),
            }),
            "new_columns" => Some(Error::NewColumns {
                file,
                columns: serde_json::from_value(fields["columns"].clone()).ok()?,
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_error_told_across_processes_is_read_back_however_it_is_quoted() {
        let error = Error::NewColumns {
            file: "file:///landing/b.csv".into(),
            columns: vec!["extra".into(), "note \"x\"".into()],
        };
        let told = Error::to_wire(DataFusionError::External(Box::new(error)));
        // A cluster wraps the message and may quote it as Rust's Debug does.
        let text = format!("Job failed: Task failed: {:?}", told.to_string());
        match Error::from_wire(&text) {
            Some(Error::NewColumns { file, columns }) => {
                assert_eq!(file, "file:///landing/b.csv");
                assert_eq!(columns, ["extra", "note \"x\""]);
            }
            other => panic!("{other:?}"),
        }
        let plain = Error::to_wire(DataFusionError::Execution("other".into()));
        assert_eq!(plain.to_string(), "Execution error: other");
        assert!(Error::from_wire("no file error here").is_none());
    }
}
