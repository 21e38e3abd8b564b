//! Sinks: destinations outside the pipeline that append flows write to (Spark's
//! `create_sink`) — a Delta table by path, directories of Parquet, CSV or JSON files, or a
//! [`Sink`] of the user's own. A sink is not a dataset: nothing in the pipeline reads it.
//!
//! Exactly once: a flow into a sink writes its batch's offsets ahead, hands the batch to the
//! sink with a writer id and a batch number, then marks it committed. After a crash, a batch
//! that was not marked is handed over again with the same writer, number and rows, so a sink
//! that writes a batch idempotently (the file sinks name their files after it; the Delta sink
//! records it as a Delta transaction) holds every row once. A full refresh starts the flows'
//! checkpoints over (a new writer id) but leaves the sink's data alone.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::object_store::path::Path as ObjectPath;
use datafusion::object_store::{ObjectStore, ObjectStoreExt};
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::source::FileFormat;

/// Where append flows into a sink write. Implement it for a destination of your own; add it
/// with `Pipeline::create_sink_with(name, sink)`.
#[async_trait]
pub trait Sink: fmt::Debug + Send + Sync {
    /// Writes batch `batch` of the flow checkpoint `writer` (a flow name and checkpoint
    /// version; a full refresh makes a new one): `rows`, as partition streams of `schema`.
    /// The same writer and batch may be handed over again after a crash, with the same rows;
    /// writing them twice must leave what writing them once leaves.
    async fn write(
        &self,
        writer: &str,
        batch: u64,
        schema: SchemaRef,
        rows: Vec<SendableRecordBatchStream>,
    ) -> Result<()>;

    /// Where the sink writes, for messages and the report.
    fn location(&self) -> String;

    /// The table of a [`crate::Storage`] this sink appends each batch to, when it is one (the
    /// Delta sink), with the batch's writer and number as the commit's transaction: an engine
    /// that writes where it computes then writes the batch's files there and the flow
    /// commits them, so the rows never come back. `None` (the default): the sink takes rows.
    fn table(&self) -> Option<(&dyn crate::Storage, &str)> {
        None
    }

    /// This sink as a [`FileSink`], when it is one: an engine that writes where it computes
    /// then writes the batch's files ([`FileSink::parts`]), so the rows never come back.
    fn file_sink(&self) -> Option<&FileSink> {
        None
    }
}

/// A directory of Parquet, CSV or JSON files: batch `b` of writer `w` is written as
/// `<w>-<b>-<partition>.<ext>` (on local disk to a temporary name first, renamed when
/// complete; on an object store with one put, which is atomic), so a batch written again
/// replaces its own files.
#[derive(Debug, Clone)]
pub struct FileSink {
    dir: PathBuf,
    format: FileFormat,
    /// An object store and the folder in it, instead of the local `dir`.
    store: Option<(Arc<dyn ObjectStore>, ObjectPath, String)>,
    /// The object-store options the store was made with, when another process can make it
    /// again from its URL ([`FileSink::parts`]).
    store_options: Option<Vec<(String, String)>>,
}

/// Makes the object store and folder of a URL with object-store options.
pub type StoreAt = dyn Fn(&str, &[(String, String)]) -> Result<(Arc<dyn ObjectStore>, ObjectPath)>;

/// One batch of a [`FileSink`] written part by part where its rows are computed (by an
/// engine's tasks, [`crate::Engine::execute_into_sink`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SinkBatch {
    /// The sink, as [`FileSink::parts`] describes it.
    pub sink: serde_json::Value,
    /// The flow checkpoint writing it.
    pub writer: String,
    /// The batch number.
    pub batch: u64,
}

impl FileSink {
    /// A sink writing `format` files into directory `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>, format: FileFormat) -> Self {
        FileSink {
            dir: dir.into(),
            format: format.plain(),
            store: None,
            store_options: None,
        }
    }

    /// A sink writing `format` files under `prefix` of `store` (an S3 bucket, an Azure
    /// container, ...); `location` is its URL, for messages.
    pub fn on_store(
        store: Arc<dyn ObjectStore>,
        prefix: ObjectPath,
        location: impl Into<String>,
        format: FileFormat,
    ) -> Self {
        let location = location.into();
        FileSink {
            dir: PathBuf::from(&location),
            format: format.plain(),
            store: Some((store, prefix, location)),
            store_options: None,
        }
    }

    /// This sink on an object store, saying that its store is the one its URL and `options`
    /// make: processes that compute the rows can then write the files themselves.
    pub fn with_store_options<K: Into<String>, V: Into<String>>(
        mut self,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.store_options = Some(
            options
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        );
        self
    }

    fn extension(&self) -> &'static str {
        match self.format {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv(_) => "csv",
            FileFormat::Json | FileFormat::Options(_) => "json",
        }
    }

    /// What makes this sink again in another process ([`FileSink::from_parts`]): its
    /// directory, or its URL and store options, and its format; `None` for a sink on a store
    /// given as an object only.
    pub fn parts(&self) -> Option<serde_json::Value> {
        let format = match &self.format {
            FileFormat::Parquet => serde_json::json!({"kind": "parquet"}),
            FileFormat::Csv(csv) => serde_json::json!({
                "kind": "csv", "header": csv.has_header, "delimiter": csv.delimiter,
            }),
            FileFormat::Json | FileFormat::Options(_) => serde_json::json!({"kind": "json"}),
        };
        match (&self.store, &self.store_options) {
            (None, _) => Some(serde_json::json!({"dir": self.dir, "format": format})),
            (Some((_, _, location)), Some(options)) => Some(serde_json::json!({
                "url": location, "options": options, "format": format,
            })),
            (Some(_), None) => None,
        }
    }

    /// The sink [`FileSink::parts`] described; `store_at` makes the object store and folder
    /// of a URL with options.
    pub fn from_parts(parts: &serde_json::Value, store_at: &StoreAt) -> Result<FileSink> {
        let bad = |what: &str| Error::Internal(format!("a file sink's description lacks {what}"));
        let format = &parts["format"];
        let format = match format["kind"].as_str() {
            Some("parquet") => FileFormat::Parquet,
            Some("json") => FileFormat::Json,
            Some("csv") => FileFormat::Csv(
                crate::source::csv()
                    .has_header(format["header"].as_bool().unwrap_or(true))
                    .delimiter(format["delimiter"].as_u64().unwrap_or(b',' as u64) as u8),
            ),
            _ => return Err(bad("a format")),
        };
        if let Some(dir) = parts["dir"].as_str() {
            return Ok(FileSink::new(dir, format));
        }
        let url = parts["url"].as_str().ok_or_else(|| bad("a place"))?;
        let options: Vec<(String, String)> =
            serde_json::from_value(parts["options"].clone()).map_err(|_| bad("its options"))?;
        let (store, prefix) = store_at(url, &options)?;
        Ok(FileSink::on_store(store, prefix, url, format).with_store_options(options))
    }

    /// The start of the names of batch `batch` of `writer`'s files.
    fn batch_prefix(writer: &str, batch: u64) -> String {
        format!("{}-{batch:020}-", file_part(writer))
    }

    /// Removes the files of batch `batch` of `writer`, whatever their number was, before the
    /// batch is written (again).
    pub async fn clear_batch(&self, writer: &str, batch: u64) -> Result<()> {
        let prefix = FileSink::batch_prefix(writer, batch);
        if let Some((store, folder, location)) = &self.store {
            let failed = |e: datafusion::object_store::Error| Error::Storage {
                location: location.clone(),
                message: e.to_string(),
                source: None,
            };
            let existing: Vec<ObjectPath> = store
                .list(Some(folder))
                .map_ok(|m| m.location)
                .try_collect()
                .await
                .map_err(failed)?;
            for path in existing {
                if path.filename().is_some_and(|n| n.starts_with(&prefix)) {
                    store.delete(&path).await.map_err(failed)?;
                }
            }
            return Ok(());
        }
        let io = |e: std::io::Error| self.io_error(e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        for entry in std::fs::read_dir(&self.dir).map_err(io)? {
            let path = entry.map_err(io)?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            if name.starts_with(&prefix) {
                std::fs::remove_file(&path).map_err(io)?;
            }
        }
        Ok(())
    }

    fn io_error(&self, e: std::io::Error) -> Error {
        Error::Storage {
            location: self.dir.display().to_string(),
            message: e.to_string(),
            source: None,
        }
    }

    /// Writes part `part` of batch `batch` of `writer`: `rows`, as one file (a part written
    /// again replaces its file). [`FileSink::clear_batch`] first, once per batch.
    pub async fn write_part(
        &self,
        writer: &str,
        batch: u64,
        part: usize,
        mut rows: SendableRecordBatchStream,
    ) -> Result<()> {
        let name = format!(
            "{}{part:05}.{}",
            FileSink::batch_prefix(writer, batch),
            self.extension()
        );
        let schema = rows.schema();
        if let Some((store, folder, location)) = &self.store {
            let mut writer = FileWriter::new(&self.format, Vec::new(), schema)?;
            while let Some(next) = rows.next().await {
                let next = next?;
                if next.num_rows() > 0 {
                    writer.write(&next)?;
                }
            }
            let bytes = writer.finish()?;
            store
                .put(&folder.clone().join(name), bytes.into())
                .await
                .map_err(|e| Error::Storage {
                    location: location.clone(),
                    message: e.to_string(),
                    source: None,
                })?;
            return Ok(());
        }
        let io = |e: std::io::Error| self.io_error(e);
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let temporary = self.dir.join(format!(".{name}.tmp"));
        let file = std::fs::File::create(&temporary).map_err(io)?;
        let mut writer = FileWriter::new(&self.format, file, schema)?;
        while let Some(next) = rows.next().await {
            let next = next?;
            if next.num_rows() > 0 {
                writer.write(&next)?;
            }
        }
        writer.finish()?.sync_all().map_err(Error::Io)?;
        std::fs::rename(&temporary, self.dir.join(&name)).map_err(io)?;
        Ok(())
    }
}

/// `writer` as a file name part: letters, digits, `_` and `-`; anything else becomes `_`.
fn file_part(writer: &str) -> String {
    writer
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[async_trait]
impl Sink for FileSink {
    async fn write(
        &self,
        writer: &str,
        batch: u64,
        _schema: SchemaRef,
        rows: Vec<SendableRecordBatchStream>,
    ) -> Result<()> {
        self.clear_batch(writer, batch).await?;
        for (part, stream) in rows.into_iter().enumerate() {
            self.write_part(writer, batch, part, stream).await?;
        }
        Ok(())
    }

    fn location(&self) -> String {
        match &self.store {
            Some((_, _, location)) => location.clone(),
            None => self.dir.display().to_string(),
        }
    }

    fn file_sink(&self) -> Option<&FileSink> {
        Some(self)
    }
}

/// One open file of a [`FileSink`], written to `W` (a local file, or bytes for a put).
enum FileWriter<W: std::io::Write + Send> {
    Parquet(datafusion::parquet::arrow::ArrowWriter<W>),
    Csv(datafusion::arrow::csv::Writer<W>),
    Json(datafusion::arrow::json::LineDelimitedWriter<W>),
}

impl<W: std::io::Write + Send> FileWriter<W> {
    fn new(format: &FileFormat, file: W, schema: SchemaRef) -> Result<Self> {
        Ok(match format {
            FileFormat::Parquet => FileWriter::Parquet(
                datafusion::parquet::arrow::ArrowWriter::try_new(file, schema, None)
                    .map_err(|e| Error::DataFusion(e.into()))?,
            ),
            FileFormat::Csv(csv) => FileWriter::Csv(
                datafusion::arrow::csv::WriterBuilder::new()
                    .with_header(csv.has_header)
                    .with_delimiter(csv.delimiter)
                    .build(file),
            ),
            FileFormat::Json | FileFormat::Options(_) => {
                FileWriter::Json(datafusion::arrow::json::LineDelimitedWriter::new(file))
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        let arrow = |e: datafusion::arrow::error::ArrowError| Error::DataFusion(e.into());
        match self {
            FileWriter::Parquet(w) => w.write(batch).map_err(|e| Error::DataFusion(e.into())),
            FileWriter::Csv(w) => w.write(batch).map_err(arrow),
            FileWriter::Json(w) => w.write(batch).map_err(arrow),
        }
    }

    /// Completes the file and hands back what it was written to.
    fn finish(self) -> Result<W> {
        let arrow = |e: datafusion::arrow::error::ArrowError| Error::DataFusion(e.into());
        match self {
            FileWriter::Parquet(w) => w.into_inner().map_err(|e| Error::DataFusion(e.into())),
            FileWriter::Csv(w) => Ok(w.into_inner()),
            FileWriter::Json(mut w) => {
                w.finish().map_err(arrow)?;
                Ok(w.into_inner())
            }
        }
    }
}

/// A sink given by a format name and options, as Spark's `create_sink(name, format, options)`
/// takes them: `parquet`, `csv` and `json` with option `path`. (`delta` is built by the
/// `lakeflow` facade, which knows the Delta storage.)
pub fn file_sink(format: &str, options: &[(String, String)]) -> Result<Option<Arc<dyn Sink>>> {
    let format = match format.to_ascii_lowercase().as_str() {
        "parquet" => FileFormat::Parquet,
        "csv" => crate::source::csv().into(),
        "json" => FileFormat::Json,
        _ => return Ok(None),
    };
    let path = options
        .iter()
        .find(|(k, _)| k == "path")
        .map(|(_, v)| v.clone())
        .ok_or_else(|| Error::InvalidStorage("a file sink needs the option `path`".into()))?;
    Ok(Some(Arc::new(FileSink::new(Path::new(&path), format))))
}
