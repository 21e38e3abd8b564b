//! Delta Lake storage for lakeflow: every pipeline table is a plain Delta table that any Delta
//! reader can open.
//!
//! Layout under the storage root (a local directory or an object-store URL):
//!
//! ```text
//! <root>/<dataset>/            one Delta table per stored dataset
//! <root>/<dataset>/_delta_log/ its transaction log
//! ```
//!
//! This is the only crate of the workspace that names `deltalake`.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::provider_as_source;
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::object_store::ObjectStoreExt;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::schema::cast::normalize_for_delta;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, Path as StorePath};
use lakeflow_core::storage::{Committed, Storage, TableUpsert, TableWrite, Txn, nullable_schema};
use lakeflow_core::{Error, Result};
use url::Url;

mod log;
mod one_shot;

use one_shot::OneShotTable;

/// Pipeline tables as Delta tables under one root directory or URL.
#[derive(Debug, Clone)]
pub struct DeltaStorage {
    root: Url,
}

impl DeltaStorage {
    /// Storage rooted at `location`: a directory path or a URL. Nothing is created until a
    /// table is written.
    pub fn open(location: &str) -> Result<Self> {
        Ok(DeltaStorage {
            root: location_url(location)?,
        })
    }

    /// The root URL, ending in `/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The object store rooted at the storage root, for checkpoints.
    fn state_store(&self) -> Result<deltalake::logstore::ObjectStoreRef> {
        let location = display_url(&self.root);
        if self.root.scheme() == "file" {
            let path = self
                .root
                .to_file_path()
                .map_err(|_| Error::InvalidStorage(location.clone()))?;
            std::fs::create_dir_all(&path).map_err(|e| Error::storage(&location, e))?;
        }
        let log_store = DeltaTableBuilder::from_url(self.root.clone())
            .map_err(|e| delta_error(&location, e))?
            .build_storage()
            .map_err(|e| delta_error(&location, e))?;
        Ok(log_store.object_store(None))
    }

    fn table_url(&self, name: &str) -> Result<Url> {
        self.root
            .join(&format!("{name}/"))
            .map_err(|_| Error::InvalidStorage(format!("{}{name}", self.root)))
    }

    /// Loads the table of `name`; `None` when nothing was ever written there. With `create`,
    /// a missing local directory is made so that a first write can go there.
    async fn load(&self, name: &str, create: bool) -> Result<Option<DeltaTable>> {
        let url = self.table_url(name)?;
        let location = display_url(&url);
        if url.scheme() == "file" {
            let path = url
                .to_file_path()
                .map_err(|_| Error::InvalidStorage(location.clone()))?;
            if !path.exists() {
                if !create {
                    return Ok(None);
                }
                std::fs::create_dir_all(&path).map_err(|e| Error::storage(&location, e))?;
            }
        }
        DeltaTable::try_from_url(url)
            .await
            .map(Some)
            .map_err(|e| Error::storage(location, e))
    }
}

/// Turns a path or URL into a directory URL (ending in `/`); relative paths are taken from
/// the current directory.
pub fn location_url(location: &str) -> Result<Url> {
    let invalid = || Error::InvalidStorage(location.to_string());
    if location.contains("://") {
        let mut url = Url::parse(location).map_err(|_| invalid())?;
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        return Ok(url);
    }
    if location.is_empty() {
        return Err(invalid());
    }
    let path = std::path::absolute(location).map_err(|e| Error::storage(location, e))?;
    Url::from_directory_path(&path).map_err(|_| invalid())
}

fn display_url(url: &Url) -> String {
    match url.to_file_path() {
        Ok(path) if url.scheme() == "file" => path.display().to_string(),
        _ => url.to_string(),
    }
}

fn delta_error(location: &str, e: DeltaTableError) -> Error {
    Error::storage(location, e)
}

#[async_trait]
impl Storage for DeltaStorage {
    fn location(&self) -> String {
        display_url(&self.root)
    }

    fn table_location(&self, name: &str) -> String {
        match self.table_url(name) {
            Ok(url) => display_url(&url),
            Err(_) => format!("{}{name}", self.root),
        }
    }

    fn stored_schema(&self, schema: &Schema) -> Result<SchemaRef> {
        let nullable = Arc::new(nullable_schema(schema));
        let normalized = normalize_for_delta(&nullable);
        let delta: StructType =
            normalized
                .as_ref()
                .try_into_kernel()
                .map_err(|e| Error::InvalidDefinition {
                    dataset: "?".into(),
                    message: format!("a column type cannot be stored in Delta Lake: {e}"),
                })?;
        let back: Schema = (&delta)
            .try_into_arrow()
            .map_err(|e| Error::Internal(format!("Delta schema back to Arrow: {e}")))?;
        Ok(Arc::new(back))
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let Some(table) = self.load(name, false).await? else {
            return Ok(None);
        };
        if table.version().is_none() {
            return Ok(None);
        }
        let location = self.table_location(name);
        let provider = table
            .table_provider()
            .await
            .map_err(|e| Error::storage(location, e))?;
        Ok(Some(provider))
    }

    async fn replace(&self, write: TableWrite) -> Result<Committed> {
        self.commit(write, SaveMode::Overwrite).await
    }

    async fn append(&self, write: TableWrite) -> Result<Committed> {
        self.commit(write, SaveMode::Append).await
    }

    async fn version(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.load(name, false).await?.and_then(|t| t.version()))
    }

    async fn transaction_version(&self, name: &str, app_id: &str) -> Result<Option<i64>> {
        let Some(table) = self.load(name, false).await? else {
            return Ok(None);
        };
        let Ok(state) = table.snapshot() else {
            return Ok(None);
        };
        let location = self.table_location(name);
        state
            .snapshot()
            .transaction_version(table.log_store().as_ref(), app_id)
            .await
            .map_err(|e| Error::storage(location, e))
    }

    async fn appended(
        &self,
        name: &str,
        after: Option<u64>,
        upto: u64,
        skip_change_commits: bool,
    ) -> Result<Arc<dyn TableProvider>> {
        let location = self.table_location(name);
        let table = self
            .load(name, false)
            .await?
            .ok_or_else(|| Error::Storage {
                location: location.clone(),
                message: "the table does not exist".into(),
                source: None,
            })?;
        appended(table, name, location, after, upto, skip_change_commits).await
    }

    async fn upsert(&self, upsert: TableUpsert) -> Result<Committed> {
        let location = self.table_location(&upsert.name);
        let existing = match self.load(&upsert.name, false).await? {
            Some(table) if table.version().is_some() => Some(table),
            _ => None,
        };
        let (Some(table), false) = (existing, upsert.replace) else {
            // A new table, or a replacement: write the rows that are not deletes.
            return self.write_upsert_rows(upsert).await;
        };
        let ctx = datafusion::prelude::SessionContext::new();
        let source = ctx.read_batches(upsert.rows)?;
        let column = |alias: &str, name: &str| {
            datafusion::prelude::Expr::Column(datafusion::common::Column::new(Some(alias), name))
        };
        let on = upsert
            .keys
            .iter()
            .map(|k| column("t", k).eq(column("s", k)))
            .reduce(|a, b| a.and(b))
            .ok_or_else(|| Error::Internal("an upsert without keys".into()))?;
        let is_delete = column("s", &upsert.delete_column);
        let names: Vec<String> = upsert
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let mut builder = table
            .merge(source, on)
            .with_source_alias("s")
            .with_target_alias("t")
            // Columns the rows have and the table lacks are added (schema evolution upstream).
            .with_merge_schema(true)
            .when_matched_delete(|d| d.predicate(is_delete.clone()))
            .map_err(|e| delta_error(&location, e))?
            .when_matched_update(|mut u| {
                for name in &names {
                    u = u.update(
                        datafusion::common::Column::from_name(name),
                        column("s", name),
                    );
                }
                u
            })
            .map_err(|e| delta_error(&location, e))?
            .when_not_matched_insert(|mut i| {
                i = i.predicate(datafusion::prelude::not(is_delete.clone()));
                for name in &names {
                    i = i.set(
                        datafusion::common::Column::from_name(name),
                        column("s", name),
                    );
                }
                i
            })
            .map_err(|e| delta_error(&location, e))?;
        if let Some(expire) = &upsert.expire {
            let expired = column("t", &expire.flag)
                .and(column("t", &expire.at).lt(datafusion::prelude::lit(expire.before)));
            builder = builder
                .when_not_matched_by_source_delete(|d| d.predicate(expired))
                .map_err(|e| delta_error(&location, e))?;
        }
        if let Some(txn) = upsert.txn {
            builder = builder.with_commit_properties(commit_properties(txn));
        }
        let (table, _) = builder.await.map_err(|e| delta_error(&location, e))?;
        let version = table.version().ok_or_else(|| {
            Error::Internal(format!(
                "Delta table `{location}` has no version after a merge"
            ))
        })?;
        Ok(Committed { version })
    }

    async fn version_at(&self, path: &str) -> Result<Option<u64>> {
        let mut table = external(path)?;
        match table.load().await {
            Ok(()) => Ok(table.version()),
            Err(DeltaTableError::NotATable(_)) => Ok(None),
            Err(e) => Err(delta_error(path, e)),
        }
    }

    async fn appended_at(
        &self,
        path: &str,
        after: Option<u64>,
        upto: u64,
        skip_change_commits: bool,
    ) -> Result<Arc<dyn TableProvider>> {
        let table = external(path)?;
        appended(
            table,
            path,
            path.to_string(),
            after,
            upto,
            skip_change_commits,
        )
        .await
    }

    async fn read_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let store = self.state_store()?;
        match store.get(&StorePath::from(key)).await {
            Ok(found) => {
                let bytes = found.bytes().await.map_err(|e| Error::storage(key, e))?;
                Ok(Some(bytes.to_vec()))
            }
            Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(key, e)),
        }
    }

    async fn write_state(&self, key: &str, bytes: Vec<u8>) -> Result<()> {
        let store = self.state_store()?;
        store
            .put(&StorePath::from(key), bytes.into())
            .await
            .map_err(|e| Error::storage(key, e))?;
        Ok(())
    }

    async fn open_table_at(&self, path: &str) -> Result<Arc<dyn TableProvider>> {
        let mut table = external(path)?;
        table.load().await.map_err(|e| delta_error(path, e))?;
        table
            .table_provider()
            .await
            .map_err(|e| Error::storage(path, e))
    }
}

/// The (not yet loaded) Delta table at an external path or URL.
fn external(path: &str) -> Result<DeltaTable> {
    let url = if path.contains("://") {
        Url::parse(path).map_err(|_| Error::InvalidStorage(path.to_string()))?
    } else {
        let canonical = std::fs::canonicalize(path).map_err(|e| Error::storage(path, e))?;
        Url::from_directory_path(canonical).map_err(|_| Error::InvalidStorage(path.to_string()))?
    };
    DeltaTableBuilder::from_url(url)
        .map_err(|e| delta_error(path, e))?
        .build()
        .map_err(|e| delta_error(path, e))
}

/// The rows the commits of `table` after version `after` up to `upto` appended (the table as
/// of `upto` when `after` is `None`); `name` and `location` are for messages.
async fn appended(
    mut table: DeltaTable,
    name: &str,
    location: String,
    after: Option<u64>,
    upto: u64,
    skip_change_commits: bool,
) -> Result<Arc<dyn TableProvider>> {
    table
        .load_version(upto)
        .await
        .map_err(|e| Error::storage(&location, e))?;
    let Some(after) = after else {
        // A stream that starts reads the table as it is at `upto`, then what is appended.
        return table
            .table_provider()
            .await
            .map_err(|e| Error::storage(location, e));
    };
    let first = after + 1;
    let store = table.log_store().object_store(None);
    let mut files = Vec::new();
    for version in first..=upto {
        let commit = log::read_commit(store.as_ref(), version)
            .await
            .map_err(|e| Error::Storage {
                location: location.clone(),
                message: format!("reading commit {version}: {e}"),
                source: Some(e),
            })?;
        if commit.changes_rows {
            if skip_change_commits {
                continue;
            }
            return Err(Error::NotAnAppend {
                table: name.to_string(),
                version,
            });
        }
        files.extend(commit.added);
    }
    let schema = table
        .snapshot()
        .map_err(|e| Error::storage(&location, e))?
        .snapshot()
        .arrow_schema();
    if files.is_empty() {
        return Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![Vec::new()],
        )?));
    }
    let selection = deltalake::delta_datafusion::FileSelection::from_file_paths(files);
    table
        .table_provider()
        .with_file_selection(selection)
        .await
        .map_err(|e| Error::storage(location, e))
}

/// A Delta table at a path or URL that append flows write (a sink): each batch is one append
/// carrying the transaction `(writer, batch)`, and a batch handed over again after a crash is
/// recognised by it and not written twice.
#[derive(Debug, Clone)]
pub struct DeltaSink {
    /// Storage rooted at the table's parent directory.
    parent: DeltaStorage,
    /// The table's directory name under `parent`.
    name: String,
    location: String,
}

impl DeltaSink {
    /// A sink writing the Delta table at `path` (created on the first batch).
    pub fn new(path: &str) -> Result<Self> {
        let url = location_url(path)?;
        let name = url
            .path_segments()
            .and_then(|mut s| s.rfind(|p| !p.is_empty()))
            .map(str::to_string)
            .ok_or_else(|| Error::InvalidStorage(path.to_string()))?;
        let parent = url
            .join("..")
            .map_err(|_| Error::InvalidStorage(path.to_string()))?;
        Ok(DeltaSink {
            parent: DeltaStorage { root: parent },
            name,
            location: display_url(&url),
        })
    }
}

#[async_trait]
impl lakeflow_core::Sink for DeltaSink {
    async fn write(
        &self,
        writer: &str,
        batch: u64,
        schema: SchemaRef,
        rows: Vec<datafusion::execution::SendableRecordBatchStream>,
    ) -> Result<()> {
        if self.parent.transaction_version(&self.name, writer).await? >= Some(batch as i64) {
            return Ok(());
        }
        self.parent
            .append(TableWrite {
                name: self.name.clone(),
                schema,
                streams: rows,
                partition_cols: Vec::new(),
                properties: std::collections::BTreeMap::new(),
                comment: None,
                txn: Some(Txn {
                    app_id: writer.to_string(),
                    version: batch as i64,
                }),
            })
            .await?;
        Ok(())
    }

    fn location(&self) -> String {
        self.location.clone()
    }
}

/// Commit properties carrying the application transaction `txn`.
fn commit_properties(txn: Txn) -> deltalake::kernel::transaction::CommitProperties {
    deltalake::kernel::transaction::CommitProperties::default()
        .with_application_transaction(deltalake::kernel::Transaction::new(txn.app_id, txn.version))
}

impl DeltaStorage {
    /// The rows of `upsert` that are not deletes, written as the whole table (a new table, or
    /// a replacement).
    async fn write_upsert_rows(&self, upsert: TableUpsert) -> Result<Committed> {
        use datafusion::arrow::array::BooleanArray;
        let width = upsert.schema.fields().len();
        let mut batches = Vec::with_capacity(upsert.rows.len());
        for batch in &upsert.rows {
            let deletes = batch
                .column(width)
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| Error::Internal("upsert delete column is not boolean".into()))?;
            let keep = datafusion::arrow::compute::not(deletes)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let kept = datafusion::arrow::compute::filter_record_batch(batch, &keep)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let columns = kept.columns()[..width].to_vec();
            batches.push(
                datafusion::arrow::record_batch::RecordBatch::try_new(
                    upsert.schema.clone(),
                    columns,
                )
                .map_err(|e| Error::Internal(e.to_string()))?,
            );
        }
        let schema = upsert.schema.clone();
        let stream: datafusion::execution::SendableRecordBatchStream = Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                schema.clone(),
                futures::stream::iter(batches.into_iter().map(Ok)),
            ),
        );
        self.replace(TableWrite {
            name: upsert.name,
            schema,
            streams: vec![stream],
            partition_cols: upsert.partition_cols,
            properties: upsert.properties,
            comment: upsert.comment,
            txn: upsert.txn,
        })
        .await
    }

    /// One commit of `write` in `mode`: the streams go through delta-rs's writer unbuffered.
    async fn commit(&self, write: TableWrite, mode: SaveMode) -> Result<Committed> {
        let location = self.table_location(&write.name);
        let table = self.load(&write.name, true).await?.ok_or_else(|| {
            Error::Internal(format!(
                "table `{location}` could not be prepared for writing"
            ))
        })?;
        // delta-rs refuses unknown keys when a write creates a table; a table with properties
        // of the user's own (`'quality' = 'gold'`, common in DLT pipelines) is created first,
        // with them allowed, and then written.
        let custom = write.properties.keys().any(|k| !k.starts_with("delta."));
        let table = if table.version().is_none() && custom {
            let columns: StructType = write
                .schema
                .as_ref()
                .try_into_kernel()
                .map_err(|e| Error::Internal(format!("Arrow schema to Delta: {e}")))?;
            let mut create = table
                .create()
                .with_columns(columns.fields().cloned())
                .with_table_name(write.name.clone())
                .with_configuration(
                    write
                        .properties
                        .iter()
                        .map(|(k, v)| (k.clone(), Some(v.clone()))),
                )
                .with_raise_if_key_not_exists(false);
            if !write.partition_cols.is_empty() {
                create = create.with_partition_columns(write.partition_cols.clone());
            }
            if let Some(comment) = &write.comment {
                create = create.with_comment(comment.clone());
            }
            create.await.map_err(|e| delta_error(&location, e))?
        } else {
            table
        };
        let adds_columns = table.snapshot().is_ok_and(|state| {
            let stored = state.snapshot().arrow_schema();
            write
                .schema
                .fields()
                .iter()
                .any(|f| stored.field_with_name(f.name()).is_err())
        });
        let input = OneShotTable::new(write.schema.clone(), write.streams);
        let plan = LogicalPlanBuilder::scan(
            write.name.as_str(),
            provider_as_source(Arc::new(input)),
            None,
        )?
        .build()?;
        let configuration: HashMap<String, Option<String>> = write
            .properties
            .into_iter()
            .map(|(k, v)| (k, Some(v)))
            .collect();
        let mut builder = table
            .write(Vec::new())
            .with_input_plan(plan)
            .with_save_mode(mode)
            .with_table_name(write.name.clone())
            .with_configuration(configuration);
        // A replacement may change the schema; an append may add columns (schema evolution:
        // the rows already there read NULL in them), never drop or retype one. Appends that
        // add nothing keep delta-rs's plain path.
        if mode == SaveMode::Overwrite {
            builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Overwrite);
        } else if adds_columns {
            builder = builder.with_schema_mode(deltalake::operations::write::SchemaMode::Merge);
        }
        if !write.partition_cols.is_empty() {
            builder = builder.with_partition_columns(write.partition_cols);
        }
        if let Some(comment) = write.comment {
            builder = builder.with_description(comment);
        }
        if let Some(txn) = write.txn {
            builder = builder.with_commit_properties(commit_properties(txn));
        }
        let table = builder.await.map_err(|e| delta_error(&location, e))?;
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
