//! Files written by other processes (an engine's tasks, where the rows are computed) and
//! committed here: [`FileWriter`] writes a task's rows into the table's directory and
//! describes each file as its Delta `add` action; [`DeltaStorage`]'s `commit_files` commits
//! them all in one commit, with the batch's transaction.
//!
//! A file written but never committed (a task that failed, a coordinator killed before the
//! commit) is in no version of the table: readers never see it, and a vacuum deletes it.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use deltalake::DeltaTableError;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add, StructType};
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
            with_added_columns(&stored, &write.schema)
        };
        let mut actions = Vec::with_capacity(files.len() + 1);
        if let Some(schema) = schema {
            let metadata = crate::metadata_with_schema(&state, &schema, &location)?;
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

/// `stored` with the columns of `written` it lacks after its own, or `None` when it lacks none.
pub(crate) fn with_added_columns(stored: &Schema, written: &Schema) -> Option<Schema> {
    let added: Vec<_> = written
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
}

/// Writes one task's rows as Parquet files into a table's directory, for a commit made
/// elsewhere ([`lakeflow_core::Storage::commit_files`]): the files are in no version of the
/// table until then.
pub struct FileWriter {
    schema: SchemaRef,
    url: String,
    options: HashMap<String, String>,
    partitions: Vec<String>,
    writer: Option<RecordBatchWriter>,
    rows: u64,
}

impl std::fmt::Debug for FileWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWriter")
            .field("url", &self.url)
            .field("rows", &self.rows)
            .finish()
    }
}

impl FileWriter {
    /// A writer of the files of `target` (as `prepare_files` of [`DeltaStorage`] gave it). No
    /// file is opened before the first row.
    pub fn open(target: &FileTarget) -> Result<FileWriter> {
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            Error::Internal(format!("the {what} of `{}`'s files: {e}", target.table))
        };
        let schema: StructType =
            serde_json::from_value(target.spec["schema"].clone()).map_err(|e| bad("schema", &e))?;
        let schema: Schema = (&schema).try_into_arrow().map_err(|e| bad("schema", &e))?;
        Ok(FileWriter {
            schema: Arc::new(schema),
            url: target.spec["url"]
                .as_str()
                .ok_or_else(|| bad("location", &"none given"))?
                .to_string(),
            options: serde_json::from_value(target.spec["options"].clone())
                .map_err(|e| bad("storage options", &e))?,
            partitions: serde_json::from_value(target.spec["partition_cols"].clone())
                .map_err(|e| bad("partition columns", &e))?,
            writer: None,
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
        let writer = RecordBatchWriter::try_new(
            &self.url,
            self.schema.clone(),
            (!self.partitions.is_empty()).then(|| self.partitions.clone()),
            Some(self.options.clone()),
        )
        .map_err(|e| delta_error(&self.url, e))?;
        Ok(writer
            .with_writer_properties(writer_properties(&self.schema))
            .with_target_file_size(TARGET_FILE_SIZE))
    }

    /// Writes `batch` (the table's columns, in order), cast to [`FileWriter::schema`].
    pub async fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let batch = lakeflow_core::storage::conform_batch(batch, &self.schema)?;
        let rows = batch.num_rows() as u64;
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self.writer.insert(self.start()?),
        };
        writer
            .write(batch)
            .await
            .map_err(|e| delta_error(&self.url, e))?;
        self.rows += rows;
        Ok(())
    }

    /// Closes the files and describes each (its Delta `add` action, for the commit).
    pub async fn finish(self) -> Result<Vec<serde_json::Value>> {
        let Some(mut writer) = self.writer else {
            return Ok(Vec::new());
        };
        let url = self.url;
        let adds = writer.flush().await.map_err(|e| delta_error(&url, e))?;
        adds.into_iter()
            .map(|add| {
                serde_json::to_value(add)
                    .map_err(|e| Error::Internal(format!("a file written for `{url}`: {e}")))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::prelude::SessionContext;
    use lakeflow_core::storage::{FilesPrepared, Storage, TableWrite, Txn};

    use super::FileWriter;
    use crate::DeltaStorage;

    fn write(schema: &SchemaRef, txn: Option<i64>) -> TableWrite {
        TableWrite {
            name: "t".into(),
            schema: schema.clone(),
            streams: Vec::new(),
            partition_cols: Vec::new(),
            properties: BTreeMap::new(),
            comment: None,
            txn: txn.map(|version| Txn {
                app_id: "flow".into(),
                version,
            }),
        }
    }

    /// Writes `batch` as another process would and commits it; `None` when the table already
    /// held the batch.
    async fn write_elsewhere(
        storage: &DeltaStorage,
        batch: RecordBatch,
        replace: bool,
        txn: Option<i64>,
    ) -> Option<u64> {
        let schema = batch.schema();
        match storage
            .prepare_files(write(&schema, txn), replace)
            .await
            .unwrap()
            .unwrap()
        {
            FilesPrepared::Done(_) => None,
            FilesPrepared::Write(target) => {
                let mut writer = FileWriter::open(&target).unwrap();
                writer.write(&batch).await.unwrap();
                assert_eq!(writer.rows(), batch.num_rows() as u64);
                let files = writer.finish().await.unwrap();
                let committed = storage
                    .commit_files(write(&schema, txn), replace, files)
                    .await
                    .unwrap();
                Some(committed.version)
            }
        }
    }

    /// The table's rows as `id:name` lines, sorted, and its column names.
    async fn rows(storage: &DeltaStorage) -> (Vec<String>, Vec<String>) {
        let table = storage.table("t").await.unwrap().unwrap();
        let columns = table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let batches = SessionContext::new()
            .read_table(table)
            .unwrap()
            .collect()
            .await
            .unwrap();
        let mut lines = Vec::new();
        for batch in batches {
            let ids = batch
                .column(0)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let names = batch
                .column_by_name("name")
                .map(|c| datafusion::arrow::compute::cast(c, &DataType::Utf8).unwrap())
                .map(|c| c.as_any().downcast_ref::<StringArray>().unwrap().clone());
            for i in 0..batch.num_rows() {
                let name = match &names {
                    Some(n) if n.is_valid(i) => n.value(i).to_string(),
                    Some(_) => "NULL".into(),
                    None => "-".into(),
                };
                lines.push(format!("{}:{name}", ids.value(i)));
            }
        }
        lines.sort();
        (lines, columns)
    }

    fn ids(values: &[i64]) -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int64Array::from(values.to_vec()))]).unwrap()
    }

    #[tokio::test]
    async fn files_written_elsewhere_commit_as_one_append_or_replacement() {
        let dir = tempfile::tempdir().unwrap();
        let storage = DeltaStorage::open(dir.path().to_str().unwrap()).unwrap();
        assert!(
            write_elsewhere(&storage, ids(&[1, 2]), false, Some(0))
                .await
                .is_some()
        );
        // The same batch again (a replay after a crash): already committed, nothing written.
        assert_eq!(
            write_elsewhere(&storage, ids(&[1, 2]), false, Some(0)).await,
            None
        );
        // An append with a column the table lacks adds it; the rows there read NULL in it.
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
        ]));
        let named = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![3])),
                Arc::new(StringArray::from(vec!["c"])),
            ],
        )
        .unwrap();
        write_elsewhere(&storage, named, false, Some(1))
            .await
            .unwrap();
        assert_eq!(
            rows(&storage).await,
            (
                vec!["1:NULL".into(), "2:NULL".into(), "3:c".into()],
                vec!["id".into(), "name".into()]
            )
        );
        // A replacement removes every file and takes its own schema.
        write_elsewhere(&storage, ids(&[7]), true, None)
            .await
            .unwrap();
        assert_eq!(
            rows(&storage).await,
            (vec!["7:-".into()], vec!["id".into()])
        );
    }
}
