//! The `Storage` seam: where pipeline tables live and how a flow's output is committed.
//!
//! lakeflow-core never names a table format. `lakeflow-delta` implements this trait with Delta
//! Lake; [`MemoryStorage`] keeps tables in memory for unit tests.
//! Contract: [`Storage::replace`] makes the new contents visible whole or not at all.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Debug;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
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
}

/// The result of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// The table version the commit created.
    pub version: u64,
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
    /// log). The schema must match the table's.
    async fn append(&self, write: TableWrite) -> Result<Committed>;

    /// Opens a table of this storage's format at an arbitrary path or URL (an external source).
    async fn open_table_at(&self, path: &str) -> Result<Arc<dyn TableProvider>>;
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

/// Tables kept in memory: for unit tests and `lakeflow::testing`. Nothing is persisted.
#[derive(Debug, Default)]
pub struct MemoryStorage {
    tables: Mutex<HashMap<String, MemoryTable>>,
}

#[derive(Debug, Clone)]
struct MemoryTable {
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    version: u64,
}

impl MemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    /// Puts a table in place directly, as if a run had written it (a test input).
    pub fn insert(&self, name: impl Into<String>, schema: SchemaRef, batches: Vec<RecordBatch>) {
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let name = name.into();
        let version = tables.get(&name).map_or(0, |t| t.version + 1);
        tables.insert(
            name,
            MemoryTable {
                schema,
                batches,
                version,
            },
        );
    }

    async fn commit(&self, write: TableWrite, append: bool) -> Result<Committed> {
        let mut batches = Vec::new();
        for stream in write.streams {
            let part: Vec<RecordBatch> = stream.try_collect().await?;
            batches.extend(part.into_iter().filter(|b| b.num_rows() > 0));
        }
        let mut tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        let previous = tables.remove(&write.name);
        let version = previous.as_ref().map_or(0, |t| t.version + 1);
        if append && let Some(previous) = previous {
            batches.splice(0..0, previous.batches);
        }
        tables.insert(
            write.name,
            MemoryTable {
                schema: write.schema,
                batches,
                version,
            },
        );
        Ok(Committed { version })
    }

    /// The rows of a table, if it exists.
    pub fn batches(&self, name: &str) -> Option<Vec<RecordBatch>> {
        let tables = self.tables.lock().unwrap_or_else(|e| e.into_inner());
        tables.get(name).map(|t| t.batches.clone())
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
            tables.get(name).cloned()
        };
        let Some(table) = table else { return Ok(None) };
        let provider = MemTable::try_new(table.schema, vec![table.batches])?;
        Ok(Some(Arc::new(provider)))
    }

    async fn replace(&self, write: TableWrite) -> Result<Committed> {
        self.commit(write, false).await
    }

    async fn append(&self, write: TableWrite) -> Result<Committed> {
        self.commit(write, true).await
    }

    async fn open_table_at(&self, path: &str) -> Result<Arc<dyn TableProvider>> {
        Err(Error::Storage {
            location: path.to_string(),
            message: "in-memory storage cannot open tables by path; register the input with `lakeflow::testing` instead".into(),
            source: None,
        })
    }
}
