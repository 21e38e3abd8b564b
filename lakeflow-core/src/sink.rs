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
}

impl FileSink {
    /// A sink writing `format` files into directory `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>, format: FileFormat) -> Self {
        FileSink {
            dir: dir.into(),
            format: format.plain(),
            store: None,
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
        }
    }

    fn extension(&self) -> &'static str {
        match self.format {
            FileFormat::Parquet => "parquet",
            FileFormat::Csv(_) => "csv",
            FileFormat::Json | FileFormat::Options(_) => "json",
        }
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
        schema: SchemaRef,
        rows: Vec<SendableRecordBatchStream>,
    ) -> Result<()> {
        let prefix = format!("{}-{batch:020}-", file_part(writer));
        if let Some((store, folder, location)) = &self.store {
            let failed = |e: datafusion::object_store::Error| Error::Storage {
                location: location.clone(),
                message: e.to_string(),
                source: None,
            };
            // A batch written again replaces its own files, whatever their number was.
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
            for (part, mut stream) in rows.into_iter().enumerate() {
                let name = format!("{prefix}{part:05}.{}", self.extension());
                let mut writer = FileWriter::new(&self.format, Vec::new(), schema.clone())?;
                while let Some(next) = stream.next().await {
                    let next = next?;
                    if next.num_rows() > 0 {
                        writer.write(&next)?;
                    }
                }
                let bytes = writer.finish()?;
                store
                    .put(&folder.clone().join(name), bytes.into())
                    .await
                    .map_err(failed)?;
            }
            return Ok(());
        }
        let io = |e: std::io::Error| Error::Storage {
            location: self.dir.display().to_string(),
            message: e.to_string(),
            source: None,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        // A batch written again replaces its own files, whatever their number was.
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
        for (part, mut stream) in rows.into_iter().enumerate() {
            let name = format!("{prefix}{part:05}.{}", self.extension());
            let temporary = self.dir.join(format!(".{name}.tmp"));
            let file = std::fs::File::create(&temporary).map_err(io)?;
            let mut writer = FileWriter::new(&self.format, file, schema.clone())?;
            while let Some(next) = stream.next().await {
                let next = next?;
                if next.num_rows() > 0 {
                    writer.write(&next)?;
                }
            }
            writer.finish()?.sync_all().map_err(Error::Io)?;
            std::fs::rename(&temporary, self.dir.join(&name)).map_err(io)?;
        }
        Ok(())
    }

    fn location(&self) -> String {
        match &self.store {
            Some((_, _, location)) => location.clone(),
            None => self.dir.display().to_string(),
        }
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
