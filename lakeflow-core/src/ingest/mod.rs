//! File ingestion as Databricks documents Auto Loader and `read_files`: the options
//! (`options.rs`), the schema in Spark's DDL (`ddl.rs`), and reading files value by value so
//! that what does not fit is rescued instead of failing the flow (`reader.rs`). This module
//! lists the files (`pathGlobFilter`, `recursiveFileLookup`, `modifiedAfter`/`Before`),
//! infers the schema across them, and gives the table provider a flow scans.
//!
//! It reads only through DataFusion's object stores and never touches the checkpoint: what
//! was seen and which schema is held is `stream.rs` and `checkpoint.rs`'s.

pub mod ddl;
pub mod options;
pub(crate) mod reader;

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::listing::ListingTableUrl;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectMeta, ObjectStoreExt};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::PartitionStream;
use datafusion::prelude::SessionContext;
use futures::{StreamExt, TryStreamExt};

pub use options::{FileOptions, IngestFormat, Mode, SchemaEvolution};
pub use reader::{METADATA_COLUMN, metadata_fields};

use crate::error::{Error, Result};
use reader::{DecodeError, FileInfo, Target};

/// Files of one format under a path, read with [`FileOptions`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IngestSpec {
    /// Path, URL or glob.
    pub path: String,
    /// The format and options.
    pub options: FileOptions,
}

/// A listed file: where it is, and its size and modification time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    /// The object-store location.
    pub location: String,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, microseconds since the epoch.
    pub modified: i64,
}

impl IngestSpec {
    fn wrap(&self) -> impl Fn(DataFusionError) -> Error + '_ {
        |e| Error::Source {
            source_name: self.path.clone(),
            cause: Box::new(e.into()),
        }
    }

    fn url(&self) -> Result<ListingTableUrl> {
        ListingTableUrl::parse(&self.path).map_err(self.wrap())
    }

    /// Every file the options select, sorted by location. Hidden files and directories (a
    /// name starting with `.` or `_`, such as files still being written as `.name.tmp`) are
    /// left out, as Spark leaves them out.
    pub(crate) async fn list(&self, session: &SessionContext) -> Result<Vec<Listed>> {
        self.list_after(session, None).await
    }

    /// [`IngestSpec::list`], but with `after` (a location a listing returned) and the option
    /// `useIncrementalListing` only the names that sort after it: the store is asked to start
    /// after that key (S3's `start-after`), so a listing does not grow with the history.
    pub(crate) async fn list_after(
        &self,
        session: &SessionContext,
        after: Option<&str>,
    ) -> Result<Vec<Listed>> {
        let after = after.filter(|_| self.options.incremental_listing);
        let url = self.url()?;
        let state = session.state();
        let store = state
            .runtime_env()
            .object_store(url.object_store())
            .map_err(self.wrap())?;
        let prefix = url.prefix().clone();
        let single = if url.is_collection() {
            None
        } else {
            match store.head(&prefix).await {
                Ok(meta) => Some(meta),
                Err(datafusion::object_store::Error::NotFound { .. }) => None,
                Err(e) => return Err(self.wrap()(e.into())),
            }
        };
        let metas: Vec<ObjectMeta> = match single {
            Some(meta) => vec![meta],
            None => match after {
                Some(after) => {
                    let after =
                        ObjectPath::parse(after).unwrap_or_else(|_| ObjectPath::from(after));
                    store.list_with_offset(Some(&prefix), &after)
                }
                None => store.list(Some(&prefix)),
            }
            .try_collect()
            .await
            .map_err(|e| self.wrap()(e.into()))?,
        };
        let glob = match &self.options.glob {
            Some(g) => Some(glob::Pattern::new(g).map_err(|e| Error::Source {
                source_name: self.path.clone(),
                cause: Box::new(Error::Internal(e.to_string())),
            })?),
            None => None,
        };
        let o = &self.options;
        let mut files: Vec<Listed> = metas
            .into_iter()
            .filter(|m| {
                let Some(segments) = url.strip_prefix(&m.location) else {
                    return false;
                };
                let segments: Vec<&str> = segments.collect();
                if segments
                    .iter()
                    .any(|s| s.starts_with('.') || s.starts_with('_'))
                {
                    return false;
                }
                if !o.recursive && segments.len() > 1 {
                    return false;
                }
                let name = m.location.filename().unwrap_or_default();
                let modified = m.last_modified.timestamp_micros();
                glob.as_ref().is_none_or(|g| g.matches(name))
                    && url.contains(&m.location, false)
                    && o.modified_after.is_none_or(|t| modified > t)
                    && o.modified_before.is_none_or(|t| modified < t)
            })
            .map(|m| Listed {
                location: m.location.to_string(),
                size: m.size,
                modified: m.last_modified.timestamp_micros(),
            })
            .collect();
        files.sort_by(|a, b| a.location.cmp(&b.location));
        Ok(files)
    }

    /// The URL a file is shown by (in `_metadata.file_path`, the rescued data and messages).
    fn display(&self, location: &str) -> Result<String> {
        let base = self.url()?.object_store();
        Ok(format!(
            "{}{}",
            base.as_str(),
            location.trim_start_matches('/')
        ))
    }

    /// The schema of the data columns: `schema` if given, else inferred across `files` (and
    /// `schemaHints` applied).
    pub(crate) async fn infer(
        &self,
        session: &SessionContext,
        files: &[Listed],
    ) -> Result<SchemaRef> {
        let o = &self.options;
        o.check().map_err(|message| self.invalid(message))?;
        for ignored in o.ignored() {
            tracing::warn!(
                "option `{ignored}` of {} `{}` is ignored: lakeflow lists files itself and holds the schema in the flow's checkpoint",
                o.format(),
                self.path
            );
        }
        if let Some(ddl) = &o.schema {
            let schema = ddl::parse_schema(ddl).map_err(|m| self.invalid(m))?;
            return Ok(Arc::new(nullable(&schema)));
        }
        let mut columns: Vec<(String, DataType)> = Vec::new();
        for file in files.iter().take(1000) {
            let file_columns = self.file_columns(session, file).await?;
            for (name, t) in file_columns {
                match columns.iter_mut().find(|(n, _)| *n == name) {
                    Some((_, existing)) => *existing = reader::merge_types(existing, &t),
                    None => columns.push((name, t)),
                }
            }
        }
        if o.format == IngestFormat::Json {
            columns.sort_by(|a, b| a.0.cmp(&b.0));
        }
        if columns.is_empty() && files.is_empty() {
            return Err(Error::Source {
                source_name: self.path.clone(),
                cause: Box::new(Error::Internal(
                    "there are no files to infer the schema from; land a first file, or give the schema with the `schema` option (`schema => 'id INT, name STRING'`)".into(),
                )),
            });
        }
        let rescued = o.rescued_column();
        let mut fields: Vec<Field> = columns
            .into_iter()
            .filter(|(n, _)| Some(n.as_str()) != rescued && n != METADATA_COLUMN)
            .map(|(n, t)| Field::new(n, t, true))
            .collect();
        if let Some(hints) = &o.schema_hints {
            let hints = ddl::parse_schema(hints).map_err(|m| self.invalid(m))?;
            for hint in hints.fields() {
                match fields.iter_mut().find(|f| f.name() == hint.name()) {
                    Some(f) => *f = Field::new(hint.name(), hint.data_type().clone(), true),
                    None => fields.push(Field::new(hint.name(), hint.data_type().clone(), true)),
                }
            }
        }
        Ok(Arc::new(Schema::new(fields)))
    }

    /// The columns one file holds, typed as inference would.
    pub(crate) async fn file_columns(
        &self,
        session: &SessionContext,
        file: &Listed,
    ) -> Result<Vec<(String, DataType)>> {
        let url = self.url()?;
        let store = session
            .state()
            .runtime_env()
            .object_store(url.object_store())
            .map_err(self.wrap())?;
        let display = self.display(&file.location)?;
        let location = ObjectPath::from(file.location.as_str());
        // Inference reads the first records of a file: a CSV or JSON-lines file larger than
        // that is read only in its first bytes, up to its last whole line there.
        let lines = matches!(self.options.format, IngestFormat::Csv)
            || (self.options.format == IngestFormat::Json && !self.options.multi_line);
        if lines && file.size > INFER_BYTES {
            let head = store
                .get_range(&location, 0..INFER_BYTES)
                .await
                .map_err(|e| self.wrap()(e.into()))?;
            if let Some(end) = head.iter().rposition(|b| *b == b'\n') {
                return reader::infer_file(&self.options, &head[..=end], true)
                    .map_err(|e| decode_error(&display, e));
            }
        }
        let bytes = store
            .get(&location)
            .await
            .map_err(|e| self.wrap()(e.into()))?
            .bytes()
            .await
            .map_err(|e| self.wrap()(e.into()))?;
        if self.options.format == IngestFormat::Parquet {
            use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
            let builder =
                ParquetRecordBatchReaderBuilder::try_new(bytes).map_err(|e| Error::SourceFile {
                    file: display.clone(),
                    message: e.to_string(),
                })?;
            return Ok(builder
                .schema()
                .fields()
                .iter()
                .map(|f| (f.name().clone(), f.data_type().clone()))
                .collect());
        }
        reader::infer_file(&self.options, &bytes, false).map_err(|e| decode_error(&display, e))
    }

    fn invalid(&self, message: String) -> Error {
        Error::Source {
            source_name: self.path.clone(),
            cause: Box::new(Error::InvalidOption { message }),
        }
    }

    /// The table over `files` whose rows have `schema` (data columns, then the rescued and
    /// metadata columns as the options ask). A file whose size or modification time differs
    /// from the listing's, because it changed after it was listed, fails the scan naming it.
    pub(crate) fn table(
        &self,
        session: &SessionContext,
        files: &[Listed],
        schema: SchemaRef,
    ) -> Result<Arc<dyn TableProvider>> {
        self.counted_table(session, files, schema, Arc::default())
    }

    /// [`IngestSpec::table`], counting into `malformed` the records DROPMALFORMED leaves out.
    pub(crate) fn counted_table(
        &self,
        session: &SessionContext,
        files: &[Listed],
        schema: SchemaRef,
        malformed: Arc<Malformed>,
    ) -> Result<Arc<dyn TableProvider>> {
        let data = data_schema(&self.options, &schema);
        let output = output_schema(&self.options, &data, self.options.metadata);
        let target = Arc::new(Target {
            options: self.options.clone(),
            data,
            output: output.clone(),
        });
        let store = self.url()?.object_store();
        let partitions = session.state().config().target_partitions().max(1);
        // Fewer files than partitions: the cores left over decode pieces of each file.
        let threads = (partitions / files.len().max(1)).max(1);
        let mut groups: Vec<Vec<(Listed, String)>> =
            vec![Vec::new(); partitions.min(files.len()).max(1)];
        let count = groups.len();
        for (i, file) in files.iter().enumerate() {
            groups[i % count].push((file.clone(), self.display(&file.location)?));
        }
        Ok(Arc::new(FileBatchTable {
            spec: self.clone(),
            target,
            store,
            groups,
            threads,
            malformed,
        }))
    }
}

/// The files of one batch of a file source as a table: each partition decodes its group of
/// files one after another. Its description ([`FileBatchTable::to_json`]) rebuilds it in
/// another process, so an engine that ships plans reads the files where it runs them; with
/// mode DROPMALFORMED, what such a scan left out must be told back here
/// ([`FileBatchTable::add_malformed`]), or it runs here ([`FileBatchTable::ships`]).
#[derive(Debug, Clone)]
pub struct FileBatchTable {
    spec: IngestSpec,
    target: Arc<Target>,
    store: ObjectStoreUrl,
    groups: Vec<Vec<(Listed, String)>>,
    threads: usize,
    malformed: Arc<Malformed>,
}

impl FileBatchTable {
    /// Whether its scan can run in another process without more: every mode but
    /// DROPMALFORMED, whose count of left-out records the run reports (an engine that reads
    /// the counts of its scans there adds them with [`FileBatchTable::add_malformed`]).
    pub fn ships(&self) -> bool {
        self.spec.options.mode != Mode::DropMalformed
    }

    /// The records mode DROPMALFORMED left out of this table's scans so far, per file (by
    /// the name the run reports).
    pub fn malformed(&self) -> BTreeMap<String, u64> {
        self.malformed.counts()
    }

    /// Counts records a scan of this table in another process left out (its
    /// [`FileBatchTable::malformed`]), for the files of this table among `counts`.
    pub fn add_malformed(&self, counts: &BTreeMap<String, u64>) {
        for group in &self.groups {
            for (_, display) in group {
                if let Some(n) = counts.get(display) {
                    self.malformed.add(display, *n);
                }
            }
        }
    }

    /// What rebuilds it elsewhere ([`FileBatchTable::from_json`]; its schema travels with the
    /// plan).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "path": self.spec.path,
            "options": self.spec.options,
            "groups": self.groups.iter().map(|group| {
                group.iter().map(|(file, display)| {
                    serde_json::json!([file.location, file.size, file.modified, display])
                }).collect::<Vec<_>>()
            }).collect::<Vec<_>>(),
            "threads": self.threads,
        })
    }

    /// The table [`FileBatchTable::to_json`] described, with output `schema`.
    pub fn from_json(value: &serde_json::Value, schema: SchemaRef) -> Result<FileBatchTable> {
        let bad = |what: &str| Error::Internal(format!("a file batch's description: {what}"));
        let options: FileOptions =
            serde_json::from_value(value["options"].clone()).map_err(|e| bad(&e.to_string()))?;
        let spec = IngestSpec {
            path: value["path"]
                .as_str()
                .ok_or_else(|| bad("no path"))?
                .to_string(),
            options,
        };
        let groups = value["groups"]
            .as_array()
            .ok_or_else(|| bad("no groups"))?
            .iter()
            .map(|group| {
                group
                    .as_array()
                    .ok_or_else(|| bad("a group"))?
                    .iter()
                    .map(|file| {
                        let listed = Listed {
                            location: file[0].as_str().ok_or_else(|| bad("a location"))?.into(),
                            size: file[1].as_u64().ok_or_else(|| bad("a size"))?,
                            modified: file[2].as_i64().ok_or_else(|| bad("a time"))?,
                        };
                        Ok((
                            listed,
                            file[3].as_str().ok_or_else(|| bad("a name"))?.into(),
                        ))
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        let data = data_schema(&spec.options, &schema);
        let target = Arc::new(Target {
            options: spec.options.clone(),
            data,
            output: schema,
        });
        Ok(FileBatchTable {
            store: spec.url()?.object_store(),
            spec,
            target,
            groups,
            threads: value["threads"].as_u64().unwrap_or(1).max(1) as usize,
            malformed: Arc::default(),
        })
    }

    fn partition(&self, i: usize) -> FilePartition {
        FilePartition {
            target: self.target.clone(),
            store: self.store.clone(),
            files: self.groups.get(i).cloned().unwrap_or_default(),
            malformed: self.malformed.clone(),
            threads: self.threads,
        }
    }
}

#[async_trait::async_trait]
impl TableProvider for FileBatchTable {
    fn schema(&self) -> SchemaRef {
        self.target.output.clone()
    }

    fn table_type(&self) -> datafusion::logical_expr::TableType {
        datafusion::logical_expr::TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn datafusion::catalog::Session,
        projection: Option<&Vec<usize>>,
        _filters: &[datafusion::prelude::Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let scan = FileBatchExec::new(Arc::new(self.clone()), projection.cloned())
            .map_err(|e| DataFusionError::External(Box::new(e)))?;
        Ok(Arc::new(scan))
    }
}

/// The scan of a [`FileBatchTable`]: partition `i` decodes the table's `i`-th group of files.
/// Decoded from another process's plan ([`FileBatchExec::from_the_wire`]), its errors carry
/// the file errors a run acts on (a file changed, new columns) in words the coordinator reads
/// back ([`crate::error::Error::from_wire`]).
#[derive(Debug)]
pub struct FileBatchExec {
    table: Arc<FileBatchTable>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    wire: bool,
    properties: Arc<datafusion::physical_plan::PlanProperties>,
}

impl FileBatchExec {
    /// The scan of `table`'s columns `projection` (all when `None`).
    pub fn new(table: Arc<FileBatchTable>, projection: Option<Vec<usize>>) -> Result<Self> {
        let output = table.target.output.clone();
        let schema = match &projection {
            Some(p) => Arc::new(output.project(p).map_err(|e| Error::DataFusion(e.into()))?),
            None => output,
        };
        let properties = datafusion::physical_plan::PlanProperties::new(
            datafusion::physical_expr::EquivalenceProperties::new(schema.clone()),
            datafusion::physical_plan::Partitioning::UnknownPartitioning(table.groups.len()),
            datafusion::physical_plan::execution_plan::EmissionType::Incremental,
            datafusion::physical_plan::execution_plan::Boundedness::Bounded,
        );
        Ok(FileBatchExec {
            table,
            projection,
            schema,
            wire: false,
            properties: Arc::new(properties),
        })
    }

    /// This scan, decoded in another process than the run's: its file errors are told so
    /// that the run can read them back.
    pub fn from_the_wire(mut self) -> Self {
        self.wire = true;
        self
    }

    /// The table it scans.
    pub fn table(&self) -> &FileBatchTable {
        &self.table
    }

    /// The columns it reads.
    pub fn projection(&self) -> Option<&Vec<usize>> {
        self.projection.as_ref()
    }
}

impl datafusion::physical_plan::DisplayAs for FileBatchExec {
    fn fmt_as(
        &self,
        _t: datafusion::physical_plan::DisplayFormatType,
        f: &mut std::fmt::Formatter,
    ) -> std::fmt::Result {
        write!(
            f,
            "FileBatchExec: {} files of `{}`",
            self.table.groups.iter().map(Vec::len).sum::<usize>(),
            self.table.spec.path
        )
    }
}

impl ExecutionPlan for FileBatchExec {
    fn name(&self) -> &str {
        "FileBatchExec"
    }

    fn properties(&self) -> &Arc<datafusion::physical_plan::PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(
            &Arc<dyn datafusion::physical_plan::PhysicalExpr>,
        ) -> datafusion::error::Result<
            datafusion::common::tree_node::TreeNodeRecursion,
        >,
    ) -> datafusion::error::Result<datafusion::common::tree_node::TreeNodeRecursion> {
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        let stream = self.table.partition(partition).execute(context);
        let projection = self.projection.clone();
        let wire = self.wire;
        let mapped = stream.map(move |batch| {
            let batch = match batch {
                Ok(batch) => batch,
                Err(e) if wire => return Err(crate::error::Error::to_wire(e)),
                Err(e) => return Err(e),
            };
            match &projection {
                Some(p) => Ok(batch.project(p)?),
                None => Ok(batch),
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.schema.clone(),
            mapped,
        )))
    }
}

/// The file a listed location of the local file system is, when it is plainly one (a
/// location with escapes goes through the object store).
fn local_path(file: &Listed) -> Option<std::path::PathBuf> {
    (!file.location.contains('%')).then(|| std::path::Path::new("/").join(&file.location))
}

/// A local CSV file decoded as it is read, a batch at a time, on a blocking thread: memory
/// holds a read buffer and the batches not yet consumed, whatever the file's size. The file
/// must still be as listed (size and modification time) when it is opened and when it ends.
fn stream_local_csv(
    target: Arc<Target>,
    file: Listed,
    display: String,
    path: std::path::PathBuf,
    malformed: Arc<Malformed>,
) -> futures::stream::BoxStream<
    'static,
    std::result::Result<datafusion::arrow::array::RecordBatch, DataFusionError>,
> {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    tokio::task::spawn_blocking(move || {
        let external = |e: Error| DataFusionError::External(Box::new(e));
        let changed = |now: String| {
            external(Error::SourceFile {
                file: display.clone(),
                message: format!(
                    "it changed while the batch read it ({} bytes when listed, {now}): it is still being written; land files by writing them elsewhere (or under a name starting with `.`) and renaming them into place",
                    file.size
                ),
            })
        };
        let unreadable = |e: std::io::Error| {
            external(Error::SourceFile {
                file: display.clone(),
                message: format!("it cannot be read: {e}"),
            })
        };
        let decoded = (|| {
            let opened = std::fs::File::open(&path).map_err(unreadable)?;
            let meta = opened.metadata().map_err(unreadable)?;
            let modified = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_micros() as i64);
            if meta.len() != file.size || modified != file.modified {
                return Err(changed(format!("{} now", meta.len())));
            }
            let info = FileInfo {
                path: display.clone(),
                size: file.size,
                modified,
            };
            let mut input = CountingReader {
                inner: std::io::BufReader::with_capacity(1 << 20, opened),
                read: 0,
            };
            let mut open = true;
            let dropped = reader::decode_csv_stream(&target, &info, &mut input, &mut |batch| {
                open = tx.blocking_send(Ok(batch)).is_ok();
                open
            })
            .map_err(|e| external(decode_error(&display, e)))?;
            if open && input.read != file.size {
                return Err(changed(format!("{} read", input.read)));
            }
            if dropped > 0 {
                let message = format!(
                    "mode DROPMALFORMED left out {dropped} malformed records of `{display}`"
                );
                tracing::warn!("{message}");
                malformed.add(&display, dropped);
            }
            Ok(())
        })();
        if let Err(e) = decoded {
            let _ = tx.blocking_send(Err(e));
        }
    });
    futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    })
    .boxed()
}

/// A buffered reader that counts the bytes it hands out.
struct CountingReader<R> {
    inner: R,
    read: u64,
}

impl<R: std::io::BufRead> std::io::Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        Ok(n)
    }
}

impl<R: std::io::BufRead> std::io::BufRead for CountingReader<R> {
    fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
        self.inner.fill_buf()
    }

    fn consume(&mut self, amount: usize) {
        self.read += amount as u64;
        self.inner.consume(amount);
    }
}

/// The data columns of a source's full schema: without the rescued and `_metadata` columns.
pub(crate) fn data_schema(options: &FileOptions, schema: &Schema) -> SchemaRef {
    let rescued = options.rescued_column();
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .filter(|f| Some(f.name().as_str()) != rescued && f.name() != METADATA_COLUMN)
            .map(|f| f.as_ref().clone())
            .collect::<Vec<_>>(),
    ))
}

/// The columns rows carry: the data columns, then the rescued data column, then `_metadata`.
pub(crate) fn output_schema(options: &FileOptions, data: &Schema, metadata: bool) -> SchemaRef {
    let mut fields: Vec<Field> = data.fields().iter().map(|f| f.as_ref().clone()).collect();
    if let Some(name) = options.rescued_column() {
        fields.push(Field::new(name, DataType::Utf8, true));
    }
    if metadata {
        fields.push(Field::new(
            METADATA_COLUMN,
            DataType::Struct(metadata_fields()),
            false,
        ));
    }
    Arc::new(Schema::new(fields))
}

fn nullable(schema: &Schema) -> Schema {
    Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
    )
}

/// A Spark type's name for messages (`INT`, `STRING`, ..).
pub(crate) fn spark_type_name(t: &DataType) -> String {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "STRING".into(),
        DataType::Int8 => "TINYINT".into(),
        DataType::Int16 => "SMALLINT".into(),
        DataType::Int32 => "INT".into(),
        DataType::Int64 => "BIGINT".into(),
        DataType::Float32 => "FLOAT".into(),
        DataType::Float64 => "DOUBLE".into(),
        DataType::Boolean => "BOOLEAN".into(),
        DataType::Date32 => "DATE".into(),
        DataType::Timestamp(_, Some(_)) => "TIMESTAMP".into(),
        DataType::Timestamp(_, None) => "TIMESTAMP_NTZ".into(),
        DataType::Decimal128(p, s) => format!("DECIMAL({p},{s})"),
        other => other.to_string(),
    }
}

fn decode_error(file: &str, e: DecodeError) -> Error {
    match e {
        DecodeError::Malformed { line, message } => Error::SourceFile {
            file: file.to_string(),
            message: match line {
                Some(line) => format!("line {line}: {message}"),
                None => message,
            },
        },
        DecodeError::NewColumns(columns) => Error::NewColumns {
            file: file.to_string(),
            columns,
        },
    }
}

/// The records mode DROPMALFORMED left out of a scan, per file.
#[derive(Debug, Default)]
pub(crate) struct Malformed(std::sync::Mutex<BTreeMap<String, u64>>);

impl Malformed {
    fn add(&self, file: &str, n: u64) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *counts.entry(file.to_string()).or_default() += n;
    }

    /// The files with records left out, and how many.
    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The bytes of a large CSV or JSON-lines file that schema inference reads: far more than its
/// first `reader::INFER_RECORDS` records in any file seen so far.
const INFER_BYTES: u64 = 4 << 20;

/// The files of one partition of a scan, read one after another.
#[derive(Debug)]
struct FilePartition {
    target: Arc<Target>,
    store: ObjectStoreUrl,
    files: Vec<(Listed, String)>,
    malformed: Arc<Malformed>,
    /// Threads one file may be decoded with (see `reader::decode_in`).
    threads: usize,
}

impl PartitionStream for FilePartition {
    fn schema(&self) -> &SchemaRef {
        &self.target.output
    }

    fn execute(&self, ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let target = self.target.clone();
        let store = ctx
            .runtime_env()
            .object_store(&self.store)
            .map_err(|e| e.to_string());
        let files = self.files.clone();
        let malformed = self.malformed.clone();
        let threads = self.threads;
        let local = self.store.as_str() == "file:///";
        let stream = futures::stream::iter(files)
            .then(move |(file, display)| {
                let target = target.clone();
                let store = store.clone();
                let malformed = malformed.clone();
                async move {
                    // A local CSV file streams through the decoder, unless it is large
                    // enough to be cut into pieces for idle cores.
                    let pieces = threads > 1 && file.size >= reader::SPLIT_BYTES as u64;
                    if local
                        && !pieces
                        && target.options.format == IngestFormat::Csv
                        && let Some(path) = local_path(&file)
                    {
                        return Ok(stream_local_csv(target, file, display, path, malformed));
                    }
                    let store = store.map_err(|e| DataFusionError::Execution(e.to_string()))?;
                    let external = |e: Error| DataFusionError::External(Box::new(e));
                    let got = store
                        .get(&ObjectPath::from(file.location.as_str()))
                        .await
                        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
                    let (size, modified) = (got.meta.size, got.meta.last_modified.timestamp_micros());
                    let bytes = got
                        .bytes()
                        .await
                        .map_err(|e| DataFusionError::ObjectStore(Box::new(e)))?;
                    if size != file.size || modified != file.modified || bytes.len() as u64 != file.size {
                        return Err(external(Error::SourceFile {
                            file: display,
                            message: format!(
                                "it changed while the batch read it ({} bytes when listed, {} now): it is still being written; land files by writing them elsewhere (or under a name starting with `.`) and renaming them into place",
                                file.size,
                                bytes.len()
                            ),
                        }));
                    }
                    let info = FileInfo {
                        path: display.clone(),
                        size,
                        modified,
                    };
                    let decoded = if target.options.format == IngestFormat::Parquet {
                        reader::decode_parquet(&target, &info, bytes)
                    } else {
                        reader::decode_in(&target, &info, &bytes, threads)
                    };
                    let (batches, dropped) =
                        decoded.map_err(|e| external(decode_error(&display, e)))?;
                    if dropped > 0 {
                        let message = format!(
                            "mode DROPMALFORMED left out {dropped} malformed records of `{display}`"
                        );
                        tracing::warn!("{message}");
                        malformed.add(&display, dropped);
                    }
                    Ok::<_, DataFusionError>(futures::stream::iter(batches.into_iter().map(Ok)).boxed())
                }
            })
            .try_flatten();
        Box::pin(RecordBatchStreamAdapter::new(
            self.target.output.clone(),
            stream,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_local_csv_streams_in_batches_and_must_stay_as_listed() {
        let dir = std::env::temp_dir().join(format!("lakeflow-stream-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("a.csv");
        let rows = 20_000;
        let text: String = std::iter::once("id\n".to_string())
            .chain((0..rows).map(|i| format!("{i}\n")))
            .collect();
        std::fs::write(&file, &text).unwrap();
        let spec = IngestSpec {
            path: format!("{}/", dir.display()),
            options: FileOptions::csv(),
        };
        let session = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_target_partitions(1),
        );
        let files = spec.list(&session).await.unwrap();
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let scan = |files: Vec<Listed>| {
            let table = spec
                .counted_table(&session, &files, schema.clone(), Arc::default())
                .unwrap();
            let session = session.clone();
            async move { session.read_table(table).unwrap().collect().await }
        };
        let batches = scan(files.clone()).await.unwrap();
        assert!(
            batches.len() >= 3,
            "decoded as it was read: {} batches",
            batches.len()
        );
        assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), rows);

        std::fs::write(&file, format!("{text}{rows}\n")).unwrap();
        let e = scan(files).await.unwrap_err().to_string();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            e.contains("a.csv") && e.contains("changed while the batch read it"),
            "{e}"
        );
    }
}
