//! The `Storage` seam: where pipeline tables live and how a flow's output is committed.
//!
//! lakeflow-core never names a table format. `lakeflow-delta` implements this trait with Delta
//! Lake; [`MemoryStorage`] keeps tables in memory for unit tests.
//! Contract: [`Storage::replace`] makes the new contents visible whole or not at all.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::execution::SendableRecordBatchStream;
use futures::TryStreamExt;

use crate::error::{Error, Result};

/// What to write: the rows of one flow, as one or more partition streams, and the table options.
pub struct TableWrite {
    /// The dataset name.
    pub name: String,
    /// The schema every batch has (already normalized by [`Storage::stored_schema`]).
    pub schema: SchemaRef,
    /// The rows, as independent partition streams that may be written in parallel.
    pub streams: Vec<SendableRecordBatchStream>,
    /// Columns to partition the stored table by.
    pub partition_cols: Vec<String>,
    /// Properties stored in the table metadata.
    pub properties: BTreeMap<String, String>,
    /// A description stored with the table.
    pub comment: Option<String>,
    /// A transaction identifier committed with the data, so that a replayed batch is
    /// recognised as already written (Delta's `txn` action).
    pub txn: Option<Txn>,
}

/// Rows to merge into a table by key, in one commit (AUTO CDC): a row whose key matches is
/// updated, or deleted when its `delete_column` is true; a row whose key does not match is
/// inserted unless it is a delete. Used by AUTO CDC flows for the target and their state.
pub struct TableUpsert {
    /// The table name.
    pub name: String,
    /// The stored schema of the table (without `delete_column`).
    pub schema: SchemaRef,
    /// The rows: `schema`'s columns and then the boolean `delete_column`.
    pub rows: Vec<RecordBatch>,
    /// The columns that identify a row.
    pub keys: Vec<String>,
    /// The name of the last column of `rows`: true marks a delete.
    pub delete_column: String,
    /// Replace the table's contents with the rows that are not deletes, instead of merging.
    pub replace: bool,
    /// Also delete the rows no source row matched that this marks expired (tombstones).
    pub expire: Option<Expire>,
    /// Columns to partition the table by, when it is created.
    pub partition_cols: Vec<String>,
    /// Properties stored in the table metadata.
    pub properties: BTreeMap<String, String>,
    /// A description stored with the table.
    pub comment: Option<String>,
    /// The transaction committed with the rows.
    pub txn: Option<Txn>,
}

/// Which rows of a table have expired: those whose boolean column `flag` is true and whose
/// `Int64` column `at` is below `before`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expire {
    /// The boolean column that marks rows that can expire.
    pub flag: String,
    /// The `Int64` column with the time the row was marked.
    pub at: String,
    /// Rows marked before this expire.
    pub before: i64,
}

/// An application transaction: `app_id` wrote batch `version`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Who writes: one id per streaming flow and checkpoint.
    pub app_id: String,
    /// The batch id, increasing.
    pub version: i64,
}

/// Where the processes that compute a flow's rows write its table's files themselves (an
/// engine that writes where it computes, [`crate::Engine::writes_files`]); what the files are
/// is the storage's to say, and only it reads `spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct FileTarget {
    /// The dataset, for messages.
    pub table: String,
    /// What the storage's file writer needs (the table's location, options, schema and
    /// partition columns), as the storage described it.
    pub spec: serde_json::Value,
}

/// What [`Storage::prepare_files`] found.
#[derive(Debug, Clone, PartialEq)]
pub enum FilesPrepared {
    /// Write the files here, then commit them with [`Storage::commit_files`].
    Write(FileTarget),
    /// The table already holds the write's batch (its transaction): nothing to write.
    Done(Committed),
}

/// A merge ([`TableUpsert`]) whose rewrite of the table's files an engine's tasks make
/// ([`Storage::prepare_merge`]): the files that may hold one of its keys (or an expired
/// row) are read, the merge's keys taken out of them and its new rows added, and the files
/// written replace the touched ones in one commit ([`Storage::commit_merge`]).
#[derive(Debug, Clone)]
pub struct MergeFiles {
    /// The rows of the touched files, as a table other processes can read.
    pub touched: Arc<dyn TableProvider>,
    /// The merge's rows (the upsert's columns and its delete column), staged where other
    /// processes can read them.
    pub rows: Arc<dyn TableProvider>,
    /// Where the rewritten files go.
    pub target: FileTarget,
    /// The touched files and the version they were read at, as the storage described them
    /// for its commit.
    pub removes: serde_json::Value,
}

/// What [`Storage::prepare_merge`] found.
#[derive(Debug, Clone)]
pub enum MergePrepared {
    /// Rewrite the files as [`MergeFiles`] says, then commit them with [`Storage::commit_merge`].
    Write(MergeFiles),
    /// The table already holds the merge's batch (its transaction): nothing to write.
    Done(Committed),
}

/// The result of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The table version the commit created.
    pub version: u64,
}

/// Maintenance of one table (see [`Storage::maintain`]): compaction of small files into files of
/// about `target_file_size`, and the deletion of files no version in the retention period
/// needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintainRequest {
    /// The table (a dataset name, or a table of lakeflow's own such as the event log).
    pub name: String,
    /// Compact only when at least this many of the table's data files are smaller than
    /// `target_file_size`; `0` or `1` compacts whenever two or more are.
    pub compact_min_files: usize,
    /// The size, in bytes, compaction bin-packs small files up to.
    pub target_file_size: u64,
    /// Also delete the files that compaction and replacements removed from the table, once
    /// they are older than the table's retention period (Delta's `VACUUM`).
    pub vacuum: bool,
}

/// What maintenance did to one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Maintained {
    /// Data files of the table before.
    pub files_before: u64,
    /// Data files of the table after.
    pub files_after: u64,
    /// Small files compaction rewrote (removed from the table, rows kept).
    pub files_compacted: u64,
    /// Files compaction wrote in their place.
    pub files_written: u64,
    /// Files the vacuum deleted from storage.
    pub files_vacuumed: u64,
    /// The version of the compaction's commit, if it made one. Its files change no rows:
    /// readers of the table's appends skip it.
    pub version: Option<u64>,
}

/// Whether a column of type `from` can become `to` keeping every value, as Delta's type
/// widening allows: a wider integer; a double from an integer of at most 32 bits or from a
/// float; a decimal with at least as many integer and fraction digits; a timestamp without
/// time zone from a date. An append whose column is a widening of the table's widens the
/// table's column (see [`Storage::append`]).
pub fn is_widening(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    match (from, to) {
        (Int8, Int16 | Int32 | Int64 | Float64)
        | (Int16, Int32 | Int64 | Float64)
        | (Int32, Int64 | Float64)
        | (Float32, Float64)
        | (Date32, Timestamp(_, None)) => true,
        (Decimal128(p, s), Decimal128(p2, s2)) => {
            s2 >= s && i16::from(*p2) - i16::from(*s2) >= i16::from(*p) - i16::from(*s) && p2 > p
        }
        _ => false,
    }
}

/// The first column of `written` that an append would retype in a table of `stored`: its
/// name, stored type and written type, when a stored value cannot hold the written one as it
/// is (a BOOLEAN column given `5`). Not a retype: the same logical type (`Utf8` and
/// `Utf8View`, timestamps of another unit), a NULL column, a narrower value
/// ([`is_widening`] into the stored type), a wider one (the table widens to it), and nested
/// types (they evolve by schema merge). Both storages refuse a retype with
/// [`retyped_column_error`]: casting would change the rows silently.
pub fn retyped_column(stored: &Schema, written: &Schema) -> Option<(String, DataType, DataType)> {
    use DataType::*;
    let string = |t: &DataType| matches!(t, Utf8 | LargeUtf8 | Utf8View);
    let binary = |t: &DataType| matches!(t, Binary | LargeBinary | BinaryView);
    let holds = |to: &DataType, from: &DataType| {
        to == from
            || matches!(from, Null)
            || is_widening(from, to)
            || is_widening(to, from)
            || (string(to) && string(from))
            || (binary(to) && binary(from))
            || to.is_nested()
            || from.is_nested()
            || matches!((to, from), (Timestamp(_, a), Timestamp(_, b)) if a.is_some() == b.is_some())
    };
    written.fields().iter().find_map(|field| {
        let have = stored.field_with_name(field.name()).ok()?;
        (!holds(have.data_type(), field.data_type())).then(|| {
            (
                field.name().clone(),
                have.data_type().clone(),
                field.data_type().clone(),
            )
        })
    })
}

/// The error of an append to `table` that [`retyped_column`] found retyping `column` (the
/// types named as the storage names them).
pub fn retyped_column_error(table: &str, column: &str, stored: &str, written: &str) -> Error {
    Error::InvalidDefinition {
        dataset: table.to_string(),
        message: format!(
            "column `{column}` is stored as {stored} but the query now gives {written}, which does not convert to it without loss; cast it in the query, or run a full refresh of `{table}` to re-create the table with the new type [CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE]"
        ),
    }
}

/// Where pipeline tables live.
#[async_trait]
pub trait Storage: Debug + Send + Sync {
    /// The root of this storage (a path or URL), for messages and reports.
    fn location(&self) -> String;

    /// Where the table of dataset `name` lives (a path or URL), for messages and reports.
    fn table_location(&self, name: &str) -> String;

    /// The schema readers will see for a table written with `schema`. Types the format cannot
    /// store are mapped to the nearest one it can; every field becomes nullable.
    fn stored_schema(&self, schema: &Schema) -> Result<SchemaRef>;

    /// The current snapshot of dataset `name`'s table, or `None` if it was never written.
    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>>;

    /// Replaces the table's contents with the written rows in one atomic commit, creating the
    /// table if needed. On error nothing is visible and the table is as it was.
    async fn replace(&self, write: TableWrite) -> Result<Committed>;

    /// Appends the written rows to the table in one commit, creating it if needed (the event
    /// log). The schema may add columns to the table's (schema evolution: rows already there
    /// read NULL in them), and may widen a column's type ([`is_widening`]: the table's rows
    /// are kept, with the wider type, by a commit that changes no rows); other type changes
    /// are errors.
    async fn append(&self, write: TableWrite) -> Result<Committed>;

    /// The current version of dataset `name`'s table, or `None` if it was never written.
    async fn version(&self, name: &str) -> Result<Option<u64>>;

    /// The partition columns of dataset `name`'s table, or `None` if it was never written or
    /// this storage does not partition tables.
    async fn partition_columns(&self, name: &str) -> Result<Option<Vec<String>>>;

    /// The last batch `app_id` committed to the table, if any.
    async fn transaction_version(&self, name: &str, app_id: &str) -> Result<Option<i64>>;

    /// The rows appended to the table by the commits after version `after` up to and
    /// including `upto`; with `after` `None` (a stream that starts), the table as of `upto`.
    /// A commit in the range that is not an append is an error naming the table and the
    /// version, unless `skip_change_commits` is set, in which case such commits are left out.
    async fn appended(
        &self,
        name: &str,
        after: Option<u64>,
        upto: u64,
        skip_change_commits: bool,
    ) -> Result<Arc<dyn TableProvider>>;

    /// A small document under the storage root (checkpoints), if it exists.
    async fn read_state(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Writes a small document under the storage root, replacing it atomically.
    async fn write_state(&self, key: &str, bytes: Vec<u8>) -> Result<()>;

    /// Writes a small document under the storage root only if none is there (put-if-absent:
    /// a conditional put on object stores, create-new on local disk). Returns `false`, writing
    /// nothing, when the key already exists: another writer got there first.
    async fn create_state(&self, key: &str, bytes: Vec<u8>) -> Result<bool>;

    /// The keys of the documents under `prefix` (a folder of the storage root), sorted.
    async fn list_state(&self, prefix: &str) -> Result<Vec<String>>;

    /// Removes a document under the storage root; a missing one is not an error.
    async fn delete_state(&self, key: &str) -> Result<()>;

    /// Opens a table of this storage's format at an arbitrary path or URL (an external source).
    async fn open_table_at(&self, path: &str) -> Result<Arc<dyn TableProvider>>;

    /// Merges `upsert`'s rows into its table by key in one commit, creating the table if
    /// needed (see [`TableUpsert`]).
    async fn upsert(&self, upsert: TableUpsert) -> Result<Committed>;

    /// The current version of the table of this storage's format at `path` (an external
    /// source read as a stream), or `None` if there is none.
    async fn version_at(&self, path: &str) -> Result<Option<u64>>;

    /// [`Storage::appended`] for the table of this storage's format at `path`.
    async fn appended_at(
        &self,
        path: &str,
        after: Option<u64>,
        upto: u64,
        skip_change_commits: bool,
    ) -> Result<Arc<dyn TableProvider>>;

    /// Compacts (and, if asked, vacuums) a table, or returns `None` when the table does not
    /// exist or this storage keeps no files (the default). Compaction must change no rows and
    /// be skipped by [`Storage::appended`]: a stream reading through it sees no row twice.
    async fn maintain(&self, request: &MaintainRequest) -> Result<Option<Maintained>> {
        let _ = request;
        Ok(None)
    }

    /// Prepares `upsert` to be merged by other processes ([`MergeFiles`]): stages its rows,
    /// selects the files it touches and says where the new files go; or `None` when this
    /// storage merges rows only (the default) or not this merge (a table not created yet, a
    /// replacement, one whose partitioning or columns the upsert does not carry): the merge
    /// then goes through [`Storage::upsert`].
    async fn prepare_merge(&self, upsert: &TableUpsert) -> Result<Option<MergePrepared>> {
        let _ = upsert;
        Ok(None)
    }

    /// Commits `files`, the rewrite of `merge`'s touched files, in place of them, in one
    /// commit with `upsert`'s transaction; fails, committing nothing, when the table changed
    /// since [`Storage::prepare_merge`] read it.
    async fn commit_merge(
        &self,
        upsert: &TableUpsert,
        merge: &MergeFiles,
        files: Vec<serde_json::Value>,
    ) -> Result<Committed> {
        let _ = (merge, files);
        Err(Error::Internal(format!(
            "the storage at {} merges rows, not files, into `{}`",
            self.location(),
            upsert.name
        )))
    }

    /// Prepares `write`'s table (its `streams` are not read) for files written by other
    /// processes: creates it if needed, widens what the write widens, checks what an append
    /// checks, and says where the files go; or `None` when this storage takes rows only (the
    /// default) or not for this write: the flow then writes its rows through
    /// [`Storage::replace`] or [`Storage::append`].
    async fn prepare_files(
        &self,
        write: TableWrite,
        replace: bool,
    ) -> Result<Option<FilesPrepared>> {
        let _ = (write, replace);
        Ok(None)
    }

    /// Commits files written at the target [`Storage::prepare_files`] gave, as `write`
    /// (replacing the table's contents, or appending), in one commit with its transaction;
    /// `files` are as the storage's file writer described them. Nothing is visible on error.
    async fn commit_files(
        &self,
        write: TableWrite,
        replace: bool,
        files: Vec<serde_json::Value>,
    ) -> Result<Committed> {
        let _ = (replace, files);
        Err(Error::Internal(format!(
            "the storage at {} takes rows, not files, for `{}`",
            self.location(),
            write.name
        )))
    }
}

/// The internal table where a storage stages the rows of a merge into `table` for other
/// processes ([`Storage::prepare_merge`]); each merge into `table` replaces it.
pub fn staged_table(table: &str) -> String {
    format!("_lakeflow/staged/{}", table.replace('/', "__"))
}

/// `batch` with the stored schema `target`, casting columns where storage chose another type
/// (the columns are `target`'s, in its order).
pub fn conform_batch(
    batch: &RecordBatch,
    target: &SchemaRef,
) -> std::result::Result<RecordBatch, datafusion::error::DataFusionError> {
    use datafusion::error::DataFusionError;
    let columns = batch
        .columns()
        .iter()
        .zip(target.fields())
        .map(|(column, field)| {
            if column.data_type() == field.data_type() {
                Ok(column.clone())
            } else {
                datafusion::arrow::compute::cast(column, field.data_type())
            }
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    RecordBatch::try_new(target.clone(), columns)
        .map_err(|e| DataFusionError::ArrowError(Box::new(e), None))
}

/// Makes every field nullable: the common normalization of stored schemas.
pub fn nullable_schema(schema: &Schema) -> Schema {
    Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    )
}

/// `batch` in `schema`'s columns by name: NULL where it lacks one (schema evolution).
fn widen_batch(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match batch.column_by_name(f.name()) {
            Some(c) if c.data_type() == f.data_type() => Ok(c.clone()),
            Some(c) => datafusion::arrow::compute::cast(c, f.data_type())
                .map_err(|e| Error::Internal(format!("memory table column `{}`: {e}", f.name()))),
            None => Ok(datafusion::arrow::array::new_null_array(
                f.data_type(),
                batch.num_rows(),
            )),
        })
        .collect::<Result<Vec<_>>>()?;
    RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| Error::Internal(format!("memory table: {e}")))
}

/// Tables kept in memory: for unit tests and `lakeflow::testing`. Nothing is persisted.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    tables: Mutex<HashMap<String, MemoryTable>>,
    state: Mutex<HashMap<String, Vec<u8>>>,
}

#[derive(Debug, Clone)]
struct MemoryTable {
    schema: SchemaRef,
    /// Every commit, oldest first: its rows and whether it replaced the table.
    commits: Vec<MemoryCommit>,
    txns: HashMap<String, i64>,
}

#[derive(Debug, Clone)]
struct MemoryCommit {
    batches: Vec<RecordBatch>,
    replaced: bool,
}

impl MemoryTable {
    fn version(&self) -> u64 {
        self.commits.len() as u64 - 1
    }

    /// The current rows: everything since the last replacing commit.
    fn batches(&self) -> Vec<RecordBatch> {
        let start = self.commits.iter().rposition(|c| c.replaced).unwrap_or(0);
        self.commits[start..]
            .iter()
            .flat_map(|c| c.batches.iter().cloned())
            .collect()
    }
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts a table in place directly, as if a run had written it (a test input).
    pub fn insert(&self, name: impl Into<String>, schema: SchemaRef, batches: Vec<RecordBatch>) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let commit = MemoryCommit {
            batches,
            replaced: true,
        };
        match tables.entry(name.into()) {
            std::collections::hash_map::Entry::Occupied(mut t) => {
                t.get_mut().schema = schema;
                t.get_mut().commits.push(commit);
            }
            std::collections::hash_map::Entry::Vacant(v) => {
                v.insert(MemoryTable {
                    schema,
                    commits: vec![commit],
                    txns: HashMap::new(),
                });
            }
        }
    }

    /// The rows of a table, if it exists.
    pub fn batches(&self, name: &str) -> Option<Vec<RecordBatch>> {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.get(name).map(MemoryTable::batches)
    }

    async fn commit(&self, write: TableWrite, replaced: bool) -> Result<Committed> {
        // Before any row is computed: an append may not retype a stored column.
        let stored = (!replaced)
            .then(|| {
                let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
                tables.get(&write.name).map(|t| t.schema.clone())
            })
            .flatten();
        if let Some((column, stored, written)) =
            stored.and_then(|stored| retyped_column(&stored, &write.schema))
        {
            let name = |t: &DataType| crate::ingest::spark_type_name(t).to_lowercase();
            return Err(retyped_column_error(
                &write.name,
                &column,
                &name(&stored),
                &name(&written),
            ));
        }
        let mut batches = Vec::new();
        for stream in write.streams {
            let part: Vec<RecordBatch> = stream.try_collect().await?;
            batches.extend(part.into_iter().filter(|b| b.num_rows() > 0));
        }
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let table = tables.entry(write.name).or_insert_with(|| MemoryTable {
            schema: write.schema.clone(),
            commits: Vec::new(),
            txns: HashMap::new(),
        });
        if !replaced && table.schema != write.schema {
            // An append that adds columns: the rows already there read NULL in them, as a
            // Delta table's do after a schema merge.
            for commit in &mut table.commits {
                for batch in &mut commit.batches {
                    *batch = widen_batch(batch, &write.schema)?;
                }
            }
        }
        table.schema = write.schema;
        table.commits.push(MemoryCommit { batches, replaced });
        if let Some(txn) = write.txn {
            table.txns.insert(txn.app_id, txn.version);
        }
        Ok(Committed {
            version: table.version(),
        })
    }
}

#[async_trait]
impl Storage for MemoryStorage {
    fn location(&self) -> String {
        "memory:///".into()
    }

    fn table_location(&self, name: &str) -> String {
        format!("memory:///{name}")
    }

    fn stored_schema(&self, schema: &Schema) -> Result<SchemaRef> {
        Ok(Arc::new(nullable_schema(schema)))
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = {
            let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            tables.get(name).map(|t| (t.schema.clone(), t.batches()))
        };
        let Some((schema, batches)) = table else {
            return Ok(None);
        };
        let provider = MemTable::try_new(schema, vec![batches])?;
        Ok(Some(Arc::new(provider)))
    }

    async fn replace(&self, write: TableWrite) -> Result<Committed> {
        self.commit(write, true).await
    }

    async fn append(&self, write: TableWrite) -> Result<Committed> {
        self.commit(write, false).await
    }

    async fn version(&self, name: &str) -> Result<Option<u64>> {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        Ok(tables.get(name).map(MemoryTable::version))
    }

    async fn partition_columns(&self, name: &str) -> Result<Option<Vec<String>>> {
        let _ = name;
        Ok(None)
    }

    async fn transaction_version(&self, name: &str, app_id: &str) -> Result<Option<i64>> {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        Ok(tables.get(name).and_then(|t| t.txns.get(app_id).copied()))
    }

    async fn appended(
        &self,
        name: &str,
        after: Option<u64>,
        upto: u64,
        skip_change_commits: bool,
    ) -> Result<Arc<dyn TableProvider>> {
        let (schema, batches) = {
            let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            let table = tables.get(name).ok_or_else(|| Error::Storage {
                location: self.table_location(name),
                message: "the table does not exist".into(),
                source: None,
            })?;
            let upto = upto.min(table.version()) as usize;
            let Some(after) = after else {
                // A stream that starts reads the table as it is at `upto`.
                let start = table.commits[..=upto]
                    .iter()
                    .rposition(|c| c.replaced)
                    .unwrap_or(0);
                let batches = table.commits[start..=upto]
                    .iter()
                    .flat_map(|c| c.batches.iter().cloned())
                    .collect::<Vec<_>>();
                return Ok(Arc::new(MemTable::try_new(
                    table.schema.clone(),
                    vec![batches],
                )?));
            };
            let mut batches = Vec::new();
            for version in (after as usize + 1)..=upto {
                let version = version as u64;
                let commit = &table.commits[version as usize];
                if commit.replaced {
                    if skip_change_commits {
                        continue;
                    }
                    return Err(Error::NotAnAppend {
                        table: name.to_string(),
                        version,
                    });
                }
                batches.extend(commit.batches.iter().cloned());
            }
            (table.schema.clone(), batches)
        };
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }

    async fn read_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned())
    }

    async fn write_state(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(key.to_string(), bytes);
        Ok(())
    }

    async fn create_state(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.contains_key(key) {
            return Ok(false);
        }
        state.insert(key.to_string(), bytes);
        Ok(true)
    }

    async fn list_state(&self, prefix: &str) -> Result<Vec<String>> {
        let folder = format!("{}/", prefix.trim_end_matches('/'));
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut keys: Vec<String> = state
            .keys()
            .filter(|k| k.starts_with(&folder))
            .cloned()
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn delete_state(&self, key: &str) -> Result<()> {
        self.state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(key);
        Ok(())
    }

    async fn open_table_at(&self, path: &str) -> Result<Arc<dyn TableProvider>> {
        Err(no_paths(path))
    }

    async fn upsert(&self, upsert: TableUpsert) -> Result<Committed> {
        let merged = {
            let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
            let current = match tables.get(&upsert.name) {
                Some(table) if !upsert.replace => table.batches(),
                _ => Vec::new(),
            };
            merge_rows(&upsert, current)?
        };
        let merged = match &upsert.expire {
            Some(expire) => expire_rows(&upsert, merged, expire)?,
            None => merged,
        };
        let write = TableWrite {
            name: upsert.name,
            schema: upsert.schema,
            streams: Vec::new(),
            partition_cols: upsert.partition_cols,
            properties: upsert.properties,
            comment: upsert.comment,
            txn: upsert.txn,
        };
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let table = tables.entry(write.name).or_insert_with(|| MemoryTable {
            schema: write.schema.clone(),
            commits: Vec::new(),
            txns: HashMap::new(),
        });
        table.schema = write.schema;
        table.commits.push(MemoryCommit {
            batches: merged.rows,
            replaced: true,
        });
        if let Some(txn) = write.txn {
            table.txns.insert(txn.app_id, txn.version);
        }
        Ok(Committed {
            version: table.version(),
        })
    }

    async fn version_at(&self, path: &str) -> Result<Option<u64>> {
        Err(no_paths(path))
    }

    async fn appended_at(
        &self,
        path: &str,
        _after: Option<u64>,
        _upto: u64,
        _skip_change_commits: bool,
    ) -> Result<Arc<dyn TableProvider>> {
        Err(no_paths(path))
    }
}

/// The rows of a table after a merge, and which of them no source row matched.
struct Merged {
    rows: Vec<RecordBatch>,
    unmatched: Vec<bool>,
}

/// The merge of [`TableUpsert`] over `current` rows, in memory: one output row per key, the
/// source's last row for a key winning.
fn merge_rows(upsert: &TableUpsert, current: Vec<RecordBatch>) -> Result<Merged> {
    use datafusion::arrow::compute::{concat_batches, filter_record_batch};
    use datafusion::arrow::row::{RowConverter, SortField};
    let schema = upsert.schema.clone();
    let width = schema.fields().len();
    let key_index: Vec<usize> = upsert
        .keys
        .iter()
        .map(|k| schema.index_of(k))
        .collect::<Result<_, _>>()
        .map_err(|e| Error::Internal(format!("upsert key: {e}")))?;
    let fields = key_index
        .iter()
        .map(|i| SortField::new(schema.field(*i).data_type().clone()))
        .collect();
    let converter = RowConverter::new(fields).map_err(|e| Error::Internal(e.to_string()))?;
    let existing = concat_batches(&schema, &current).map_err(|e| Error::Internal(e.to_string()))?;
    let source = if upsert.rows.is_empty() {
        None
    } else {
        let all = concat_batches(&upsert.rows[0].schema(), &upsert.rows)
            .map_err(|e| Error::Internal(e.to_string()))?;
        Some(all)
    };
    let key_rows = |batch: &RecordBatch| {
        let columns: Vec<_> = key_index.iter().map(|i| batch.column(*i).clone()).collect();
        converter
            .convert_columns(&columns)
            .map_err(|e| Error::Internal(e.to_string()))
    };
    // The last source row per key decides.
    let mut decided: HashMap<Vec<u8>, usize> = HashMap::new();
    if let Some(source) = &source {
        let rows = key_rows(source)?;
        for i in 0..source.num_rows() {
            decided.insert(rows.row(i).as_ref().to_vec(), i);
        }
    }
    let existing_rows = key_rows(&existing)?;
    let mut keep = Vec::with_capacity(existing.num_rows());
    let mut unmatched = Vec::new();
    for i in 0..existing.num_rows() {
        let matched = decided.contains_key(existing_rows.row(i).as_ref());
        keep.push(!matched);
        if !matched {
            unmatched.push(true);
        }
    }
    let kept =
        filter_record_batch(&existing, &keep.into()).map_err(|e| Error::Internal(e.to_string()))?;
    let mut rows = vec![kept];
    if let Some(source) = source {
        let deletes = source
            .column(width)
            .as_any()
            .downcast_ref::<datafusion::arrow::array::BooleanArray>()
            .ok_or_else(|| Error::Internal("upsert delete column is not boolean".into()))?;
        let mut winners: Vec<usize> = decided.into_values().collect();
        winners.sort_unstable();
        let mask: Vec<bool> = (0..source.num_rows())
            .map(|i| winners.binary_search(&i).is_ok() && !deletes.value(i))
            .collect();
        let inserted = filter_record_batch(&source, &mask.into())
            .map_err(|e| Error::Internal(e.to_string()))?;
        let columns = inserted.columns()[..width].to_vec();
        let inserted = RecordBatch::try_new(schema.clone(), columns)
            .map_err(|e| Error::Internal(e.to_string()))?;
        unmatched.extend(std::iter::repeat_n(false, inserted.num_rows()));
        rows.push(inserted);
    }
    Ok(Merged { rows, unmatched })
}

/// Drops the rows no source row matched that `expire` marks expired.
fn expire_rows(upsert: &TableUpsert, merged: Merged, expire: &Expire) -> Result<Merged> {
    use datafusion::arrow::array::{Array, BooleanArray, Int64Array};
    use datafusion::arrow::compute::{concat_batches, filter_record_batch};
    let all =
        concat_batches(&upsert.schema, &merged.rows).map_err(|e| Error::Internal(e.to_string()))?;
    let column = |name: &str| {
        all.column_by_name(name)
            .ok_or_else(|| Error::Internal(format!("expiry column `{name}` is missing")))
    };
    let flag = column(&expire.flag)?;
    let flag = flag
        .as_any()
        .downcast_ref::<BooleanArray>()
        .ok_or_else(|| Error::Internal("expiry flag is not boolean".into()))?;
    let at = column(&expire.at)?;
    let at = at
        .as_any()
        .downcast_ref::<Int64Array>()
        .ok_or_else(|| Error::Internal("expiry time is not Int64".into()))?;
    let keep: Vec<bool> = (0..all.num_rows())
        .map(|i| {
            let expired =
                flag.is_valid(i) && flag.value(i) && at.is_valid(i) && at.value(i) < expire.before;
            !(merged.unmatched[i] && expired)
        })
        .collect();
    let rows =
        filter_record_batch(&all, &keep.into()).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(Merged {
        rows: vec![rows],
        unmatched: Vec::new(),
    })
}

fn no_paths(path: &str) -> Error {
    Error::Storage {
        location: path.to_string(),
        message: "in-memory storage cannot open tables by path; register the input with `lakeflow::testing` instead".into(),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int32Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field};

    fn write(schema: SchemaRef, batch: RecordBatch) -> TableWrite {
        let stream: SendableRecordBatchStream = Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                schema.clone(),
                futures::stream::iter([Ok(batch)]),
            ),
        );
        TableWrite {
            name: "t".into(),
            schema,
            streams: vec![stream],
            partition_cols: Vec::new(),
            properties: BTreeMap::new(),
            comment: None,
            txn: None,
        }
    }

    #[tokio::test]
    async fn an_append_that_adds_a_column_leaves_the_rows_there_null_in_it() {
        let storage = MemoryStorage::new();
        let one = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, true)]));
        let two = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int32, true),
            Field::new("extra", DataType::Utf8, true),
        ]));
        let first =
            RecordBatch::try_new(one.clone(), vec![Arc::new(Int32Array::from(vec![1]))]).unwrap();
        let second = RecordBatch::try_new(
            two.clone(),
            vec![
                Arc::new(Int32Array::from(vec![2])),
                Arc::new(StringArray::from(vec!["z"])),
            ],
        )
        .unwrap();
        storage.append(write(one, first)).await.unwrap();
        storage.append(write(two.clone(), second)).await.unwrap();
        let batches = storage.batches("t").unwrap();
        assert!(batches.iter().all(|b| b.schema() == two));
        assert!(batches[0].column(1).is_null(0));
        assert_eq!(batches[1].column(1).null_count(), 0);
        // A stream over both appends reads the table's current schema.
        let appended = storage.appended("t", Some(0), 1, false).await.unwrap();
        assert_eq!(appended.schema(), two);
    }

    #[tokio::test]
    async fn an_append_that_retypes_a_column_is_refused_and_one_that_widens_it_is_kept() {
        let storage = MemoryStorage::new();
        let int = Arc::new(Schema::new(vec![Field::new("id", DataType::Int32, true)]));
        let text = Arc::new(Schema::new(vec![Field::new("id", DataType::Utf8, true)]));
        let long = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let batch = |schema: &SchemaRef, array: datafusion::arrow::array::ArrayRef| {
            RecordBatch::try_new(schema.clone(), vec![array]).unwrap()
        };
        let ints = batch(&int, Arc::new(Int32Array::from(vec![1])));
        storage.append(write(int.clone(), ints)).await.unwrap();
        let words = batch(&text, Arc::new(StringArray::from(vec!["x"])));
        let e = storage
            .append(write(text, words))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("column `id` is stored as int but the query now gives string")
                && e.contains("CANNOT_MERGE_INCOMPATIBLE_DATA_TYPE"),
            "{e}"
        );
        assert_eq!(storage.batches("t").unwrap().len(), 1, "nothing appended");
        let longs = batch(
            &long,
            Arc::new(datafusion::arrow::array::Int64Array::from(vec![2])),
        );
        storage.append(write(long.clone(), longs)).await.unwrap();
        assert!(
            storage
                .batches("t")
                .unwrap()
                .iter()
                .all(|b| b.schema() == long)
        );
        // Narrower values into the wider column are no retype either.
        assert!(retyped_column(&long, &int).is_none());
    }
}
