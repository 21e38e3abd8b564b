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
use futures::StreamExt;

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
}

/// A directory of Parquet, CSV or JSON files: batch `b` of writer `w` is written as
/// `<w>-<b>-<partition>.<ext>` (to a temporary name first, renamed when complete), so a batch
/// written again replaces its own files. Local directories only.
#[derive(Debug, Clone)]
pub struct FileSink {
    dir: PathBuf,
    format: FileFormat,
}

impl FileSink {
    /// A sink writing `format` files into directory `dir` (created when first written).
    pub fn new(dir: impl Into<PathBuf>, format: FileFormat) -> Self {
        FileSink {
            dir: dir.into(),
            format: format.plain(),
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
        let io = |e: std::io::Error| Error::Storage {
            location: self.dir.display().to_string(),
            message: e.to_string(),
            source: None,
        };
        std::fs::create_dir_all(&self.dir).map_err(io)?;
        let prefix = format!("{}-{batch:020}-", file_part(writer));
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
            writer.finish()?;
            std::fs::rename(&temporary, self.dir.join(&name)).map_err(io)?;
        }
        Ok(())
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }
}

/// One open file of a [`FileSink`].
enum FileWriter {
    Parquet(datafusion::parquet::arrow::ArrowWriter<std::fs::File>),
    Csv(datafusion::arrow::csv::Writer<std::fs::File>),
    Json(datafusion::arrow::json::LineDelimitedWriter<std::fs::File>),
}

impl FileWriter {
    fn new(format: &FileFormat, file: std::fs::File, schema: SchemaRef) -> Result<Self> {
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

    fn finish(self) -> Result<()> {
        let arrow = |e: datafusion::arrow::error::ArrowError| Error::DataFusion(e.into());
        match self {
            FileWriter::Parquet(w) => w
                .close()
                .map(|_| ())
                .map_err(|e| Error::DataFusion(e.into())),
            FileWriter::Csv(w) => {
                let file = w.into_inner();
                file.sync_all().map_err(Error::Io)
            }
            FileWriter::Json(mut w) => {
                w.finish().map_err(arrow)?;
                let file = w.into_inner();
                file.sync_all().map_err(Error::Io)
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
