//! Pipeline projects: a spec file (`lakeflow.yml`, or Spark's `spark-pipeline.yml`) that
//! names the pipeline, its storage and configuration, and globs for its definition files —
//! SQL files in the Spark Declarative Pipelines syntax ([`sql`]).
//!
//! [`Project::load`] reads the spec ([`spec`]), expands the globs and reads every SQL file
//! into definitions; [`Project::pipeline`] (or [`Project::add_to`], for a Rust binary that
//! has `#[table]` definitions of its own) turns them into a [`Pipeline`]. Every mistake
//! found here is a [`ProjectError`] naming `file:line:column`; mistakes only planning can
//! find (a column that does not exist) come from `dry_run` and name the definition's
//! location the same way. This module never runs a query.

pub mod spec;
pub mod sql;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::logical_expr::cast;
use datafusion::prelude::ident;
use lakeflow_core::SourceLocation;

use crate::{Dataset, Error, Pipeline, Plan};
pub use spec::{LibraryGlob, SPEC_FILE_NAMES, Spec, TableFormat, TableMapping};
use sql::{SqlContext, SqlDefinition, SqlKind, SqlQuery, TableSource};

/// A place in a project file: `file:line:column`, 1-based.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// The file, relative to the project root where it is inside it.
    pub file: String,
    /// The line.
    pub line: usize,
    /// The column, in characters.
    pub column: usize,
}

impl Location {
    /// A location in `file`.
    pub fn new(file: &str, line: usize, column: usize) -> Self {
        Location {
            file: file.to_string(),
            line,
            column,
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.line, self.column)
    }
}

/// What can be wrong with a project before any query is planned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectError {
    /// No spec file in the directory or its parents.
    #[error(
        "no pipeline spec file (lakeflow.yml, spark-pipeline.yml or spark-pipeline.yaml) in `{}` or any parent directory; create a project with `lakeflow init --name NAME`, or pass `--spec FILE`",
        dir.display()
    )]
    SpecNotFound {
        /// Where the search started.
        dir: PathBuf,
    },
    /// More than one spec file in one directory.
    #[error("`{}` has several spec files ({}); keep one", dir.display(), files.join(", "))]
    SeveralSpecs {
        /// The directory.
        dir: PathBuf,
        /// The spec files found there.
        files: Vec<String>,
    },
    /// A file could not be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A mistake in the spec or a definition file, at its place.
    #[error("{location}: {message}")]
    Invalid {
        /// Where it is.
        location: Location,
        /// What is wrong and what to do.
        message: String,
    },
}

/// A loaded project: the spec and the definitions of its files.
#[derive(Debug, Clone)]
pub struct Project {
    spec: Spec,
    files: Vec<PathBuf>,
    definitions: Vec<SqlDefinition>,
}

impl Project {
    /// Loads the project whose spec file is in `dir` or its nearest parent that has one.
    pub fn find(dir: &Path) -> Result<Project, ProjectError> {
        Project::load(&Spec::find(dir)?)
    }

    /// Loads the project of the spec file at `spec_path`.
    ///
    /// ```no_run
    /// # async fn example() -> lakeflow::Result<()> {
    /// let project = lakeflow::project::Project::load("lakeflow.yml".as_ref())
    ///     .map_err(|e| lakeflow::Error::InvalidDefinition {
    ///         dataset: "project".into(),
    ///         message: e.to_string(),
    ///     })?;
    /// let report = project.pipeline().run().await?;
    /// println!("{report}");
    /// # Ok(())
    /// # }
    /// ```
    pub fn load(spec_path: &Path) -> Result<Project, ProjectError> {
        let spec = Spec::load(spec_path)?;
        let root = spec.root().to_path_buf();
        let files = library_files(&spec)?;
        let context = SqlContext {
            configuration: spec.configuration.clone(),
            catalog: spec.catalog.clone(),
            database: spec.database.clone(),
            root: root.clone(),
        };
        let mut definitions = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|source| ProjectError::Io {
                path: file.clone(),
                source,
            })?;
            let name = display_name(&root, file);
            definitions.extend(sql::parse_sql_file(&name, &text, &context)?);
        }
        merge_own_flows(&mut definitions);
        Ok(Project {
            spec,
            files,
            definitions,
        })
    }

    /// The spec.
    pub fn spec(&self) -> &Spec {
        &self.spec
    }

    /// The definition files the globs matched, in the order they are read.
    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }

    /// The names of the datasets and flows the files define, in file order.
    pub fn definition_names(&self) -> Vec<&str> {
        self.definitions.iter().map(|d| d.name.as_str()).collect()
    }

    /// Where tables are stored: the spec's `storage` against the spec's directory, or
    /// `lakeflow-data` next to the spec.
    pub fn storage(&self) -> String {
        let storage = self.spec.storage.as_deref();
        in_project(self.spec.root(), storage.unwrap_or(crate::DEFAULT_STORAGE))
    }

    /// Where a `tables` entry of the spec reads from: its path made absolute from the spec's
    /// directory (a URL as it is), in its format.
    fn external_source(&self, table: &TableMapping) -> crate::SourceSpec {
        let path = in_project(self.spec.root(), &table.path);
        match table.format {
            TableFormat::Parquet => crate::SourceSpec::parquet(path),
            TableFormat::Csv => crate::SourceSpec::csv(path),
            TableFormat::Json => crate::SourceSpec::json(path),
            TableFormat::Delta => crate::SourceSpec::delta(path),
        }
    }

    /// A pipeline of the project's definitions, named and stored as the spec says.
    pub fn pipeline(&self) -> Pipeline {
        self.add_to(Pipeline::builder())
    }

    /// Adds the project's definitions to `pipeline` and applies the spec's name, storage
    /// and configuration (readable with [`conf`]).
    pub fn add_to(&self, pipeline: Pipeline) -> Pipeline {
        set_configuration(&self.spec.configuration);
        let base = pipeline.definition().datasets.len();
        let mut pipeline = pipeline
            .name(self.spec.name.clone())
            .storage(self.storage())
            .storage_options(self.spec.storage_options.clone());
        for (name, table) in &self.spec.tables {
            pipeline = pipeline.external_table(name.clone(), self.external_source(table));
        }
        for definition in &self.definitions {
            pipeline = add(pipeline, definition);
        }
        // The builder records the caller's location; a SQL definition's is in its file.
        let mut def = pipeline.definition().clone();
        // Functions add no dataset.
        let datasets = self
            .definitions
            .iter()
            .filter(|d| !matches!(d.kind, SqlKind::Function(_)));
        for (i, definition) in datasets.enumerate() {
            if let Some(dataset) = def.datasets.get_mut(base + i) {
                dataset.location = source_location(&definition.location);
                if matches!(definition.kind, SqlKind::AutoCdc(_)) {
                    dataset.comment.clone_from(&definition.comment);
                }
            }
        }
        let pipeline = pipeline.with_definition(def);
        #[cfg(feature = "ballista")]
        if let Some(url) = &self.spec.engine {
            return pipeline.cluster(url.clone());
        }
        pipeline
    }
}

/// A path of the project (relative to `root`, the spec's directory) as the pipeline opens it:
/// absolute; a URL or an absolute path as it is.
pub(crate) fn in_project(root: &Path, path: &str) -> String {
    if path.contains("://") || Path::new(path).is_absolute() {
        path.to_string()
    } else {
        root.join(path).display().to_string()
    }
}

/// The files the spec's globs match: each glob must match at least one file, and every file
/// must be a `.sql` file.
fn library_files(spec: &Spec) -> Result<Vec<PathBuf>, ProjectError> {
    let root = spec.root();
    let mut files = Vec::new();
    for library in &spec.libraries {
        let invalid = |message: String| ProjectError::Invalid {
            location: library.location.clone(),
            message,
        };
        let mut pattern = library.include.trim_end_matches('/').to_string();
        if pattern.ends_with("**") {
            pattern.push_str("/*");
        }
        let full = if Path::new(&pattern).is_absolute() {
            pattern.clone()
        } else {
            root.join(&pattern).display().to_string()
        };
        let matches = glob::glob(&full)
            .map_err(|e| invalid(format!("`{}` is not a valid glob: {e}", library.include)))?;
        let mut found = Vec::new();
        for entry in matches {
            let path = entry.map_err(|e| invalid(format!("cannot read a matched path: {e}")))?;
            let hidden = path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                found.push(path);
            }
        }
        if found.is_empty() {
            return Err(invalid(format!(
                "`{}` matches no file under `{}`; fix the pattern or add the files",
                library.include,
                root.display()
            )));
        }
        found.sort();
        for path in found {
            if path.extension().and_then(|e| e.to_str()) != Some("sql") {
                return Err(invalid(format!(
                    "`{}` matches `{}`, which is not a .sql file; lakeflow reads SQL definition files (Rust definitions are compiled into a binary that calls `lakeflow::cli::main()`), so narrow the pattern, e.g. `{}/*.sql`",
                    library.include,
                    display_name(root, &path),
                    library
                        .include
                        .trim_end_matches("/**")
                        .trim_end_matches('/'),
                )));
            }
            if !files.contains(&path) {
                files.push(path);
            }
        }
    }
    Ok(files)
}

/// `file` relative to `root` when it is under it.
fn display_name(root: &Path, file: &Path) -> String {
    file.strip_prefix(root)
        .unwrap_or(file)
        .display()
        .to_string()
}

/// A dataset location for the runtime, which keeps file names as `&'static str`: each file
/// name is leaked once per process (a project has a handful of files).
fn source_location(location: &Location) -> SourceLocation {
    static FILES: Mutex<BTreeMap<String, &'static str>> = Mutex::new(BTreeMap::new());
    let mut files = FILES.lock().unwrap_or_else(|e| e.into_inner());
    let file: &'static str = files
        .entry(location.file.clone())
        .or_insert_with(|| Box::leak(location.file.clone().into_boxed_str()));
    SourceLocation {
        file,
        line: u32::try_from(location.line).unwrap_or(u32::MAX),
        column: u32::try_from(location.column).unwrap_or(u32::MAX),
    }
}

static CONFIGURATION: RwLock<BTreeMap<String, String>> = RwLock::new(BTreeMap::new());

/// Adds a project's values; a process normally loads one project, and a key set by two
/// projects keeps the value of the one added last.
fn set_configuration(values: &BTreeMap<String, String>) {
    let mut all = CONFIGURATION.write().unwrap_or_else(|e| e.into_inner());
    all.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
}

/// A value of the `configuration:` map of the project's spec file, for Rust definitions of
/// a binary run with [`crate::cli`] (SQL files substitute `${key}` instead): the values of
/// every project added to a pipeline in this process ([`Project::add_to`]), the last one
/// winning for a key two projects set. `None` when no project set the key.
///
/// ```
/// use lakeflow::prelude::*;
///
/// fn landing_orders() -> Plan {
///     let dir = lakeflow::project::conf("landing").unwrap_or_else(|| "data/landing".into());
///     read_stream_files(dir, csv())
/// }
/// # let _ = landing_orders;
/// ```
pub fn conf(key: &str) -> Option<String> {
    CONFIGURATION
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .get(key)
        .cloned()
}

/// The query function of a SQL definition.
#[derive(Debug)]
struct SqlPlan {
    dataset: String,
    location: Location,
    query: SqlQuery,
    columns: Vec<Field>,
}

impl SqlPlan {
    /// A SQL error that names a line and column of the query, named at the file's position
    /// instead (the query DataFusion sees is the file's text with `STREAM(..)` and
    /// `read_files(..)` replaced).
    fn in_file(&self, error: Error) -> Error {
        if matches!(error, Error::Deferred(_)) {
            return error;
        }
        let text = error.to_string();
        let Some(at) = text.find(" at Line: ") else {
            return error;
        };
        let rest = &text[at + " at Line: ".len()..];
        let number = |s: &str| -> Option<(usize, usize)> {
            let digits = s.chars().take_while(char::is_ascii_digit).count();
            Some((s[..digits].parse().ok()?, digits))
        };
        let Some((line, used)) = number(rest) else {
            return error;
        };
        let Some(rest) = rest[used..].strip_prefix(", Column: ") else {
            return error;
        };
        let Some((column, used)) = number(rest) else {
            return error;
        };
        let Some(location) = self.query.file_position(line, column) else {
            return error;
        };
        let message = text[..at]
            .trim_start_matches("SQL error: ParserError(\"")
            .to_string();
        let tail = rest[used..].trim_start_matches("\")");
        Error::InvalidDefinition {
            dataset: self.dataset.clone(),
            message: format!("{location}: {message}{tail}"),
        }
    }

    fn plan(&self) -> Plan {
        let mut given = Vec::with_capacity(self.query.tables.len());
        for (name, source) in &self.query.tables {
            given.push((name.clone(), read(source)?));
        }
        let mut options = match self.query.ansi {
            Some(ansi) => crate::SqlOptions::new().ansi(ansi),
            None => crate::SqlOptions::new(),
        };
        if let Some(zone) = &self.query.time_zone {
            options = options.time_zone(zone.clone());
        }
        if let Some(schema) = &self.query.schema {
            options = options.schema(schema.clone());
        }
        let df = crate::sql_with_options(&self.query.text, given, options)
            .map_err(|e| self.in_file(e))?;
        if self.columns.is_empty() {
            return Ok(df);
        }
        let invalid = |message: String| Error::InvalidDefinition {
            dataset: self.dataset.clone(),
            message: format!("{message} (column list at {})", self.location),
        };
        for field in df.schema().fields() {
            if !self.columns.iter().any(|c| c.name() == field.name()) {
                return Err(invalid(format!(
                    "the query returns column `{}`, which the column list does not declare; declare it or leave it out of the query",
                    field.name()
                )));
            }
        }
        let mut exprs = Vec::with_capacity(self.columns.len());
        for column in &self.columns {
            if !df.schema().has_column_with_unqualified_name(column.name()) {
                return Err(invalid(format!(
                    "declared column `{}` is not a column of the query",
                    column.name()
                )));
            }
            let (_, actual) = df
                .schema()
                .qualified_field_with_unqualified_name(column.name())?;
            let (from, to) = (actual.data_type(), column.data_type());
            if from != to
                && from != &DataType::Null
                && (from == &DataType::Boolean) != (to == &DataType::Boolean)
            {
                return Err(invalid(format!(
                    "declared column `{}` is {to}, but the query gives {from}, which does not convert to it; declare the query's type or cast in the query [USER_SPECIFIED_AND_INFERRED_SCHEMA_NOT_COMPATIBLE]",
                    column.name()
                )));
            }
            exprs.push(cast(ident(column.name()), to.clone()).alias(column.name()));
        }
        Ok(df.select(exprs)?)
    }
}

fn read(source: &TableSource) -> Plan {
    match source {
        TableSource::Stream(name) => crate::read_stream(name),
        TableSource::Files {
            path,
            format,
            stream: true,
        } => crate::read_stream_files(path.clone(), format.clone()),
        TableSource::Files { path, format, .. } => crate::read_files(path.clone(), format.clone()),
        TableSource::Delta { path, stream: true } => crate::read_stream_delta(path.clone()),
        TableSource::Delta { path, .. } => crate::read_delta(path.clone()),
    }
}

/// Adds a SQL definition to `pipeline` with the builder.
/// `CREATE FLOW t AS INSERT INTO t ..` for a streaming table `t` declared without a query:
/// in Spark flows and datasets are separate namespaces, and the flow named like its table is
/// that table's own flow. lakeflow names a table's own flow after the table, so the flow's
/// query becomes the table's. (With a query of its own, the table already has a flow `t`,
/// and the second one is reported as a duplicate, as Spark reports it.)
fn merge_own_flows(definitions: &mut Vec<SqlDefinition>) {
    let own: Vec<usize> = definitions
        .iter()
        .enumerate()
        .filter(|(_, d)| {
            matches!(&d.kind, SqlKind::Flow { target, once: false } if target.eq_ignore_ascii_case(&d.name))
        })
        .map(|(i, _)| i)
        .collect();
    for i in own.into_iter().rev() {
        let name = definitions[i].name.clone();
        let Some(table) = definitions.iter().position(|d| {
            d.kind == SqlKind::StreamingTable
                && d.query.is_none()
                && d.name.eq_ignore_ascii_case(&name)
        }) else {
            continue;
        };
        let flow = definitions.remove(i);
        let table = if table > i { table - 1 } else { table };
        definitions[table].query = flow.query;
    }
}

fn add(pipeline: Pipeline, definition: &SqlDefinition) -> Pipeline {
    let name = definition.name.clone();
    let plan = definition.query.clone().map(|query| {
        Arc::new(SqlPlan {
            dataset: name.clone(),
            location: definition.location.clone(),
            query,
            columns: definition.columns.clone(),
        })
    });
    let query = move || -> Box<dyn Fn() -> Plan + Send + Sync> {
        let plan = plan.clone();
        Box::new(move || match &plan {
            Some(plan) => plan.plan(),
            None => Err(Error::Internal(
                "a SQL definition without a query was given a query function".into(),
            )),
        })
    };
    let mut dataset = match (&definition.kind, &definition.query) {
        (SqlKind::StreamingTable, None) => {
            let table = Dataset::create_streaming_table(name);
            if definition.columns.is_empty() {
                table
            } else {
                table.schema(Arc::new(sql::columns_schema(&definition.columns)))
            }
        }
        (SqlKind::MaterializedView, _) => Dataset::materialized_view(name, query()),
        (SqlKind::StreamingTable, Some(_)) => Dataset::streaming_table(name, query()),
        (SqlKind::TemporaryView, _) if definition.persisted => {
            Dataset::temporary_view(name, query()).persisted()
        }
        (SqlKind::TemporaryView, _) => Dataset::temporary_view(name, query()),
        (SqlKind::Flow { target, once }, _) => {
            let flow = Dataset::append_flow(target.clone(), name, query());
            if *once { flow.once() } else { flow }
        }
        // Its options are the flow's; `Project::add_to` sets its comment and location.
        (SqlKind::AutoCdc(cdc), _) => return pipeline.create_auto_cdc_flow(cdc.auto_cdc(&name)),
        (SqlKind::Function(f), _) => {
            return pipeline.udf(datafusion::logical_expr::ScalarUDF::from(
                lakeflow_sql::functions::sql_function::SqlFunction::new(
                    name,
                    f.params.clone(),
                    f.returns.clone(),
                    f.body.clone(),
                ),
            ));
        }
    };
    if let Some(comment) = &definition.comment {
        dataset = dataset.comment(comment.clone());
    }
    for (key, value) in &definition.sql_conf {
        dataset = dataset.sql_conf(key.clone(), value.clone());
    }
    if let Some((column, delay_micros)) =
        definition.query.as_ref().and_then(|q| q.watermark.clone())
    {
        dataset = dataset.watermark(
            column,
            std::time::Duration::from_micros(u64::try_from(delay_micros).unwrap_or(0)),
        );
    }
    if !definition.partition_cols.is_empty() {
        dataset = dataset.partition_cols(definition.partition_cols.clone());
    }
    for (key, value) in &definition.table_properties {
        dataset = dataset.table_property(key.clone(), value.clone());
    }
    for (rule, expr, action) in &definition.expectations {
        dataset = dataset.expectation(crate::Expectation::sql(rule.clone(), expr.clone(), *action));
    }
    // `col TYPE NOT NULL`: a row with a NULL there fails the flow, as Delta's NOT NULL
    // constraint fails the write.
    for column in definition.columns.iter().filter(|c| !c.is_nullable()) {
        let name = column.name();
        dataset = dataset.expectation(crate::Expectation::sql(
            format!("{name} NOT NULL"),
            format!("`{}` IS NOT NULL", name.replace('`', "``")),
            crate::ExpectAction::Fail,
        ));
    }
    pipeline.dataset(dataset)
}
