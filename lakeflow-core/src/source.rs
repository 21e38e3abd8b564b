//! External sources a query reads by path: Parquet, CSV and JSON files or directories, and
//! Delta tables. A [`SourceSpec`] names one; opening it (which reads only metadata: file
//! listings, footers, the Delta log) gives a DataFusion table provider.
//!
//! Opening is async, and query functions are plain functions, so readers here never open a
//! source themselves: the first read of a spec defers to the resolver, which opens it once,
//! caches the provider and calls the query function again.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::csv::CsvFormat as DfCsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::datasource::source_as_provider;
use datafusion::logical_expr::LogicalPlan;
use datafusion::object_store::{ObjectMeta, ObjectStoreExt};
use datafusion::prelude::{CsvReadOptions, JsonReadOptions, ParquetReadOptions, SessionContext};
use futures::TryStreamExt;

use crate::error::{Error, Result};
use crate::storage::Storage;

/// A file format for reading files from a path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FileFormat {
    /// Apache Parquet.
    Parquet,
    /// Comma (or other delimiter) separated values.
    Csv(CsvFormat),
    /// Newline-delimited JSON, one object per line.
    Json,
    /// Any format read with `read_files` / Auto Loader options (rescued data, `_metadata`,
    /// schema hints and evolution); see [`crate::ingest`].
    Options(Box<crate::ingest::FileOptions>),
}

impl From<crate::ingest::FileOptions> for FileFormat {
    fn from(options: crate::ingest::FileOptions) -> Self {
        FileFormat::Options(Box::new(options))
    }
}

impl FileFormat {
    /// The plain format files are written in: options become the format they name (text is
    /// CSV without a header).
    pub fn plain(self) -> FileFormat {
        use crate::ingest::IngestFormat;
        match self {
            FileFormat::Options(o) => match o.format() {
                IngestFormat::Csv => csv().has_header(o.header).delimiter(o.delimiter).into(),
                IngestFormat::Json => FileFormat::Json,
                IngestFormat::Parquet => FileFormat::Parquet,
                IngestFormat::Text => csv().has_header(false).into(),
            },
            plain => plain,
        }
    }
}

/// Options of [`FileFormat::Csv`]; build with [`csv()`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CsvFormat {
    /// Whether the first line holds column names (default true).
    pub has_header: bool,
    /// The field delimiter (default `,`).
    pub delimiter: u8,
}

impl CsvFormat {
    /// Sets whether the first line holds column names.
    pub fn has_header(mut self, has_header: bool) -> Self {
        self.has_header = has_header;
        self
    }

    /// Sets the field delimiter.
    pub fn delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }
}

impl From<CsvFormat> for FileFormat {
    fn from(format: CsvFormat) -> Self {
        FileFormat::Csv(format)
    }
}

/// CSV with a header line and `,` as delimiter; adjust with [`CsvFormat`]'s setters.
pub fn csv() -> CsvFormat {
    CsvFormat {
        has_header: true,
        delimiter: b',',
    }
}

/// Newline-delimited JSON.
pub fn json() -> FileFormat {
    FileFormat::Json
}

/// Apache Parquet.
pub fn parquet() -> FileFormat {
    FileFormat::Parquet
}

/// An external source: files of one format under a path, or a Delta table.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceSpec {
    /// Files of one format: a single file, or every file with the format's extension under a directory.
    Files {
        /// Path or URL.
        path: String,
        /// The format.
        format: FileFormat,
    },
    /// Files read as Auto Loader and `read_files` read them: options, inference, rescued
    /// data, `_metadata` (see [`crate::ingest`]).
    Ingest(Box<crate::ingest::IngestSpec>),
    /// A Delta table at a path or URL.
    Delta {
        /// Path or URL.
        path: String,
    },
}

impl SourceSpec {
    /// Parquet files at `path`.
    pub fn parquet(path: impl Into<String>) -> Self {
        SourceSpec::Files {
            path: path.into(),
            format: FileFormat::Parquet,
        }
    }

    /// CSV files with a header line at `path`.
    pub fn csv(path: impl Into<String>) -> Self {
        SourceSpec::Files {
            path: path.into(),
            format: csv().into(),
        }
    }

    /// Newline-delimited JSON files at `path`.
    pub fn json(path: impl Into<String>) -> Self {
        SourceSpec::Files {
            path: path.into(),
            format: FileFormat::Json,
        }
    }

    /// The Delta table at `path`.
    pub fn delta(path: impl Into<String>) -> Self {
        SourceSpec::Delta { path: path.into() }
    }

    /// The path or URL of the source.
    pub fn path(&self) -> &str {
        match self {
            SourceSpec::Files { path, .. } | SourceSpec::Delta { path } => path,
            SourceSpec::Ingest(spec) => &spec.path,
        }
    }

    /// A short name for plans and messages: the last path segment without extension.
    pub(crate) fn table_name(&self) -> String {
        let path = self.path().trim_end_matches('/');
        let last = path.rsplit('/').next().unwrap_or(path);
        // `orders.csv` reads as `orders`; a hidden name (`.tmp1`) or an empty one keeps a name.
        match last.trim_start_matches('.').split('.').next() {
            Some(stem) if !stem.is_empty() => stem.to_string(),
            _ => "source".to_string(),
        }
    }

    /// Opens the source: lists files, infers the schema, or loads the Delta log.
    pub(crate) async fn open(
        &self,
        session: &SessionContext,
        storage: &dyn Storage,
    ) -> Result<Arc<dyn TableProvider>> {
        let wrap = |e: Error| Error::Source {
            source_name: self.path().to_string(),
            cause: Box::new(e),
        };
        match self {
            SourceSpec::Delta { path } => storage.open_table_at(path).await.map_err(wrap),
            SourceSpec::Ingest(spec) => {
                let files = spec.list(session).await?;
                let data = spec.infer(session, &files).await?;
                let schema =
                    crate::ingest::output_schema(&spec.options, &data, spec.options.metadata);
                spec.table(session, &files, schema)
            }
            SourceSpec::Files {
                path,
                format: FileFormat::Options(options),
            } => {
                let spec = crate::ingest::IngestSpec {
                    path: path.clone(),
                    options: (**options).clone(),
                };
                Box::pin(SourceSpec::Ingest(Box::new(spec)).open(session, storage)).await
            }
            SourceSpec::Files { path, format } => {
                let path = &listing_path(session, path)
                    .await
                    .map_err(|e| wrap(e.into()))?;
                let df = match format {
                    FileFormat::Parquet => {
                        session
                            .read_parquet(path.as_str(), ParquetReadOptions::default())
                            .await
                    }
                    FileFormat::Csv(c) if !c.has_header => {
                        // Without a header, columns are named as Spark names them: `_c0`, ...
                        let options = CsvReadOptions::new()
                            .has_header(false)
                            .delimiter(c.delimiter);
                        let inferred = session.read_csv(path.as_str(), options).await;
                        match inferred {
                            Ok(df) => {
                                let fields: Vec<datafusion::arrow::datatypes::Field> = df
                                    .schema()
                                    .fields()
                                    .iter()
                                    .enumerate()
                                    .map(|(i, f)| f.as_ref().clone().with_name(format!("_c{i}")))
                                    .collect();
                                let schema = datafusion::arrow::datatypes::Schema::new(fields);
                                let options = CsvReadOptions::new()
                                    .has_header(false)
                                    .delimiter(c.delimiter)
                                    .schema(&schema);
                                session.read_csv(path.as_str(), options).await
                            }
                            Err(e) => Err(e),
                        }
                    }
                    FileFormat::Csv(c) => {
                        let options = CsvReadOptions::new()
                            .has_header(c.has_header)
                            .delimiter(c.delimiter);
                        session.read_csv(path.as_str(), options).await
                    }
                    FileFormat::Json | FileFormat::Options(_) => {
                        let ext = if path.ends_with(".jsonl") {
                            ".jsonl"
                        } else {
                            ".json"
                        };
                        let options = JsonReadOptions::default().file_extension(ext);
                        session.read_json(path.as_str(), options).await
                    }
                }
                .map_err(|e| wrap(e.into()))?;
                match df.logical_plan() {
                    LogicalPlan::TableScan(scan) => {
                        source_as_provider(&scan.source).map_err(|e| wrap(e.into()))
                    }
                    other => Err(Error::Internal(format!(
                        "reading `{path}` planned {} instead of a table scan",
                        other.display()
                    ))),
                }
            }
        }
    }
}

/// `path` as DataFusion lists it: an object-store path that names no object is a prefix (an
/// object store has no directories), so it gets the trailing `/` of a directory.
async fn listing_path(session: &SessionContext, path: &str) -> datafusion::error::Result<String> {
    let url = ListingTableUrl::parse(path)?;
    if url.is_collection() || url.scheme() == "file" || path.contains(['*', '?', '[']) {
        return Ok(path.to_string());
    }
    let store = session.runtime_env().object_store(url.object_store())?;
    match store.head(url.prefix()).await {
        Err(datafusion::object_store::Error::NotFound { .. }) => Ok(format!("{path}/")),
        _ => Ok(path.to_string()),
    }
}

/// A table outside the pipeline that queries read by name.
#[derive(Debug, Clone)]
pub enum ExternalTable {
    /// Files or a Delta table, opened when the pipeline is planned.
    Source(SourceSpec),
    /// A DataFusion table provider given directly (in-memory test inputs, custom sources).
    Provider(Arc<dyn TableProvider>),
}

impl From<SourceSpec> for ExternalTable {
    fn from(spec: SourceSpec) -> Self {
        ExternalTable::Source(spec)
    }
}

impl ExternalTable {
    pub(crate) async fn open(
        &self,
        session: &SessionContext,
        storage: &dyn Storage,
    ) -> Result<Arc<dyn TableProvider>> {
        match self {
            ExternalTable::Source(spec) => spec.open(session, storage).await,
            ExternalTable::Provider(provider) => Ok(provider.clone()),
        }
    }
}

impl SourceSpec {
    fn listing_options(&self) -> Option<ListingOptions> {
        let SourceSpec::Files { format, .. } = self else {
            return None;
        };
        Some(match format.clone().plain() {
            FileFormat::Parquet => ListingOptions::new(Arc::new(ParquetFormat::default()))
                .with_file_extension(".parquet"),
            FileFormat::Csv(c) => ListingOptions::new(Arc::new(
                DfCsvFormat::default()
                    .with_has_header(c.has_header)
                    .with_delimiter(c.delimiter),
            ))
            .with_file_extension(".csv"),
            FileFormat::Json | FileFormat::Options(_) => {
                ListingOptions::new(Arc::new(JsonFormat::default())).with_file_extension(".json")
            }
        })
    }

    /// Every file of the source with its metadata (path, size, modification time).
    async fn list_objects(&self, session: &SessionContext) -> Result<Vec<ObjectMeta>> {
        let options = self
            .listing_options()
            .ok_or_else(|| Error::Internal(format!("{self} is not a file source")))?;
        let wrap = |e: datafusion::error::DataFusionError| Error::Source {
            source_name: self.path().to_string(),
            cause: Box::new(e.into()),
        };
        let path = listing_path(session, self.path()).await.map_err(wrap)?;
        let url = ListingTableUrl::parse(&path).map_err(wrap)?;
        let state = session.state();
        let store = state
            .runtime_env()
            .object_store(url.object_store())
            .map_err(wrap)?;
        url.list_all_files(&state, store.as_ref(), &options.file_extension)
            .await
            .map_err(wrap)?
            .try_collect()
            .await
            .map_err(wrap)
    }

    /// Every file of the source, with its size and modification time.
    pub(crate) async fn list_files(
        &self,
        session: &SessionContext,
    ) -> Result<Vec<crate::ingest::Listed>> {
        self.list_files_after(session, None).await
    }

    /// [`SourceSpec::list_files`]; with `useIncrementalListing`, only the files whose names
    /// sort after `after`.
    pub(crate) async fn list_files_after(
        &self,
        session: &SessionContext,
        after: Option<&str>,
    ) -> Result<Vec<crate::ingest::Listed>> {
        if let SourceSpec::Ingest(spec) = self {
            return spec.list_after(session, after).await;
        }
        let files = self.list_objects(session).await?;
        Ok(files
            .into_iter()
            .map(|m| crate::ingest::Listed {
                location: m.location.to_string(),
                size: m.size,
                modified: m.last_modified.timestamp_micros(),
            })
            .collect())
    }

    /// A fingerprint of the source's files: path, size and modification time of each. Equal
    /// fingerprints mean unchanged input, as far as a listing can tell.
    pub(crate) async fn fingerprint(&self, session: &SessionContext) -> Result<String> {
        let mut files: Vec<String> = self
            .list_files(session)
            .await?
            .into_iter()
            .map(|m| format!("{}:{}:{}", m.location, m.size, m.modified))
            .collect();
        files.sort();
        Ok(files.join("\n"))
    }

    /// The URL of file `location` of this source, as messages show it.
    pub(crate) fn file_url(&self, location: &str) -> String {
        match ListingTableUrl::parse(self.path()) {
            Ok(url) => format!(
                "{}{}",
                url.object_store().as_str(),
                location.trim_start_matches('/')
            ),
            Err(_) => location.to_string(),
        }
    }

    /// A table over just `files` (from [`SourceSpec::list_files`]), with `schema`.
    pub(crate) fn open_files(
        &self,
        session: &SessionContext,
        files: &[crate::ingest::Listed],
        schema: SchemaRef,
    ) -> Result<Arc<dyn TableProvider>> {
        self.open_counted_files(session, files, schema, Arc::default())
    }

    /// [`SourceSpec::open_files`], counting into `malformed` the records mode DROPMALFORMED
    /// leaves out.
    pub(crate) fn open_counted_files(
        &self,
        session: &SessionContext,
        files: &[crate::ingest::Listed],
        schema: SchemaRef,
        malformed: Arc<crate::ingest::Malformed>,
    ) -> Result<Arc<dyn TableProvider>> {
        if files.is_empty() {
            return Ok(Arc::new(MemTable::try_new(schema, vec![Vec::new()])?));
        }
        if let SourceSpec::Ingest(spec) = self {
            return spec.counted_table(session, files, schema, malformed);
        }
        let options = self
            .listing_options()
            .ok_or_else(|| Error::Internal(format!("{self} is not a file source")))?;
        let base = ListingTableUrl::parse(self.path())?;
        let prefix = base.object_store().as_str().to_string();
        let urls = files
            .iter()
            .map(|f| ListingTableUrl::parse(format!("{prefix}{}", f.location)))
            .collect::<datafusion::error::Result<Vec<_>>>()?;
        let _ = session;
        let config = ListingTableConfig::new_with_multi_paths(urls)
            .with_listing_options(options)
            .with_schema(schema);
        Ok(Arc::new(ListingTable::try_new(config)?))
    }
}

impl fmt::Display for SourceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceSpec::Files { path, format } => {
                let format = match format {
                    FileFormat::Parquet => "parquet",
                    FileFormat::Csv(_) => "csv",
                    FileFormat::Json => "json",
                    FileFormat::Options(o) => return write!(f, "{} `{path}`", o.format()),
                };
                write!(f, "{format} `{path}`")
            }
            SourceSpec::Ingest(spec) => write!(f, "{} `{}`", spec.options.format(), spec.path),
            SourceSpec::Delta { path } => write!(f, "delta `{path}`"),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn table_names_come_from_the_last_path_segment() {
        let name = |p: &str| super::SourceSpec::delta(p).table_name();
        assert_eq!(name("data/orders.csv"), "orders");
        assert_eq!(name("/tmp/.tmpAbC/landing/"), "landing");
        assert_eq!(name("/tmp/.tmpAbC"), "tmpAbC");
        assert_eq!(name("/"), "source");
    }
}
