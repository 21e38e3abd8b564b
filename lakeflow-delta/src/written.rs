//! Files written by other processes (an engine's tasks, where the rows are computed) and
//! committed here: [`FileWriter`] writes a task's rows into the table's directory and
//! describes each file as its Delta `add` action; [`DeltaStorage`]'s `commit_files` commits
//! them all in one commit, with the batch's transaction.
//!
//! A file written but never committed (a task that failed, a coordinator killed before the
//! commit) is in no version of the table: readers never see it, and a vacuum deletes it.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use deltalake::DeltaTableError;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add, MetadataExt, StructType};
use deltalake::protocol::{DeltaOperation, SaveMode};
use deltalake::writer::{DeltaWriter, RecordBatchWriter};
use lakeflow_core::storage::{Committed, FileTarget, FilesPrepared, Storage};
use lakeflow_core::{Error, Result};

use crate::{
    DeltaStorage, Head, Prepared, checkpoint_if_due, commit_properties, delta_error,
    writer_properties,
};

/// Files of about this many bytes, as delta-rs's own writer makes them.
const TARGET_FILE_SIZE: u64 = 100 * 1024 * 1024;

impl DeltaStorage {
    /// Readies `write`'s table for files written elsewhere; `None` when a replacement would
    /// change its partition columns (delta-rs's own writer does that, with the rows here).
    pub(crate) async fn prepare_written(
        &self,
        write: Head,
        replace: bool,
    ) -> Result<Option<FilesPrepared>> {
        let mode = if replace {
            SaveMode::Overwrite
        } else {
            SaveMode::Append
        };
        let table = match self.prepare(&write, mode, true).await? {
            Prepared::Done(committed) => return Ok(Some(FilesPrepared::Done(committed))),
            Prepared::Ready { table, .. } => table,
        };
        let location = self.table_location(&write.name);
        let state = table.snapshot().map_err(|e| delta_error(&location, e))?;
        if state.metadata().partition_columns() != write.partition_cols {
            return Ok(None);
        }
        let schema: StructType = write
            .schema
            .as_ref()
            .try_into_kernel()
            .map_err(|e| Error::Internal(format!("Arrow schema to Delta: {e}")))?;
        Ok(Some(FilesPrepared::Write(FileTarget {
            table: write.name.clone(),
            spec: serde_json::json!({
                "url": table.table_url().as_str(),
                "options": self.options.map(),
                "partition_cols": write.partition_cols,
                "schema": schema,
            }),
        })))
    }

    /// Commits `files` (Delta `add` actions) as `write`, in one commit with its transaction:
    /// a replacement removes every file the table had; a write with columns the table lacks
    /// adds them to its schema.
    pub(crate) async fn commit_written(
        &self,
        write: Head,
        replace: bool,
        files: Vec<serde_json::Value>,
    ) -> Result<Committed> {
        let location = self.table_location(&write.name);
        let error = |e: DeltaTableError| delta_error(&location, e);
        let table = self.load(&write.name, false).await?.ok_or_else(|| {
            Error::Internal(format!("table `{location}` vanished before its commit"))
        })?;
        if let Some(version) = crate::already_committed(&table, write.txn.as_ref()).await? {
            return Ok(Committed { version });
        }
        let state = table.snapshot().map_err(error)?.clone();
        let stored = state.snapshot().arrow_schema();
        let schema = if replace {
            (stored.fields() != write.schema.fields()).then(|| write.schema.as_ref().clone())
        } else {
            let added: Vec<_> = write
                .schema
                .fields()
                .iter()
                .filter(|f| stored.field_with_name(f.name()).is_err())
                .cloned()
                .collect();
            (!added.is_empty()).then(|| {
                Schema::new(
                    stored
                        .fields()
                        .iter()
                        .cloned()
                        .chain(added)
                        .collect::<Vec<_>>(),
                )
            })
        };
        let mut actions = Vec::with_capacity(files.len() + 1);
        if let Some(schema) = schema {
            let schema: StructType = (&schema)
                .try_into_kernel()
                .map_err(|e| Error::Internal(format!("Arrow schema to Delta: {e}")))?;
            let metadata = state
                .metadata()
                .clone()
                .with_schema(&schema)
                .map_err(|e| Error::storage(&location, e))?;
            actions.push(Action::Metadata(metadata));
        }
        if replace {
            actions.extend(
                state
                    .log_data()
                    .iter()
                    .map(|file| Action::Remove(file.remove_action(true))),
            );
        }
        for file in files {
            let add: Add = serde_json::from_value(file)
                .map_err(|e| Error::Internal(format!("a file written for `{location}`: {e}")))?;
            actions.push(Action::Add(add));
        }
        let operation = DeltaOperation::Write {
            mode: if replace {
                SaveMode::Overwrite
            } else {
                SaveMode::Append
            },
            partition_by: (!write.partition_cols.is_empty()).then(|| write.partition_cols.clone()),
            predicate: None,
        };
        let txn = write.txn.clone();
        let commit = CommitBuilder::from(commit_properties(write.txn))
            .with_actions(actions)
            .build(Some(&state), table.log_store(), operation)
            .await;
        if let Err(e) = commit {
            return self.after_conflict(&write.name, txn.as_ref(), e).await;
        }
        let mut table = table;
        table.load().await.map_err(error)?;
        checkpoint_if_due(&table, &location).await;
        let version = table.version().ok_or_else(|| {
            Error::Internal(format!(
                "Delta table `{location}` has no version after a write"
            ))
        })?;
        Ok(Committed {
            version: version as u64,
        })
    }
}

/// Writes one task's rows as Parquet files into a table's directory, for a commit made
/// elsewhere ([`lakeflow_core::Storage::commit_files`]): the files are in no version of the
/// table until then.
pub struct FileWriter {
    table: String,
    schema: SchemaRef,
    writer: Option<RecordBatchWriter>,
    spec: serde_json::Value,
    rows: u64,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("table", &self.table)
            .field("rows", &self.rows)
            .finish()
    }
}

impl FileWriter {
    /// A writer of the files of `target` (as `prepare_files` of [`DeltaStorage`] gave it). No
    /// file is opened before the first row.
    pub fn open(target: &FileTarget) -> Result<FileWriter> {
        let schema: StructType = serde_json::from_value(target.spec["schema"].clone())
            .map_err(|e| Error::Internal(format!("the schema of `{}`: {e}", target.table)))?;
        let schema: Schema = (&schema)
            .try_into_arrow()
            .map_err(|e| Error::Internal(format!("Delta schema to Arrow: {e}")))?;
        Ok(FileWriter {
            table: target.table.clone(),
            schema: Arc::new(schema),
            writer: None,
            spec: target.spec.clone(),
            rows: 0,
        })
    }

    /// The schema the files have: every batch is cast to it.
    pub fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    /// The rows written so far.
    pub fn rows(&self) -> u64 {
        self.rows
    }

    fn start(&self) -> Result<RecordBatchWriter> {
        let url = self.spec["url"].as_str().unwrap_or_default();
        let options: HashMap<String, String> =
            serde_json::from_value(self.spec["options"].clone()).unwrap_or_default();
        let partitions: Vec<String> =
            serde_json::from_value(self.spec["partition_cols"].clone()).unwrap_or_default();
        let writer = RecordBatchWriter::try_new(
            url,
            self.schema.clone(),
            (!partitions.is_empty()).then_some(partitions),
            Some(options),
        )
        .map_err(|e| delta_error(url, e))?;
        Ok(writer
            .with_writer_properties(writer_properties(&self.schema))
            .with_target_file_size(TARGET_FILE_SIZE))
    }

    /// Writes `batch` (the table's columns, in order), cast to [`FileWriter::schema`].
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let columns = batch
            .columns()
            .iter()
            .zip(self.schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    cast(column, field.data_type())
                }
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::DataFusion(e.into()))?;
        let batch = RecordBatch::try_new(self.schema.clone(), columns)
            .map_err(|e| Error::DataFusion(e.into()))?;
        if self.writer.is_none() {
            self.writer = Some(self.start()?);
        }
        let url = self.spec["url"].as_str().unwrap_or_default().to_string();
        if let Some(writer) = self.writer.as_mut() {
            writer
                .write(batch.clone())
                .await
                .map_err(|e| delta_error(&url, e))?;
        }
        self.rows += batch.num_rows() as u64;
        Ok(())
    }

    /// Closes the files and describes each (its Delta `add` action, for the commit).
    pub async fn finish(self) -> Result<Vec<serde_json::Value>> {
        let Some(mut writer) = self.writer else {
            return Ok(Vec::new());
        };
        let url = self.spec["url"].as_str().unwrap_or_default().to_string();
        let adds = writer.flush().await.map_err(|e| delta_error(&url, e))?;
        adds.into_iter()
            .map(|add| {
                serde_json::to_value(add)
                    .map_err(|e| Error::Internal(format!("a file written for `{url}`: {e}")))
            })
            .collect()
    }
}
