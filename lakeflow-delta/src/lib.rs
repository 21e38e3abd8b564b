//! Delta Lake storage for lakeflow: every pipeline table is a plain Delta table that any Delta
//! reader can open.
//!
//! Layout under the storage root (a local directory or an object-store URL):
//!
//! ```text
//! <root>/<dataset>/            one Delta table per stored dataset
//! <root>/<dataset>/_delta_log/ its transaction log
//! <root>/<schema>/<dataset>/   a dataset of another schema than the pipeline's (`schema.dataset`)
//! ```
//!
//! This is the only crate of the workspace that names `deltalake`.
#![warn(missing_docs)]

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::datasource::provider_as_source;
use datafusion::execution::object_store::{DefaultObjectStoreRegistry, ObjectStoreRegistry};
use datafusion::logical_expr::LogicalPlanBuilder;
use datafusion::object_store::ObjectStoreExt;
use deltalake::kernel::StructType;
use deltalake::kernel::engine::arrow_conversion::{TryIntoArrow, TryIntoKernel};
use deltalake::kernel::schema::cast::normalize_for_delta;
use deltalake::protocol::SaveMode;
use deltalake::{DeltaTable, DeltaTableBuilder, DeltaTableError, Path as StorePath};
use lakeflow_core::storage::{
    Committed, MaintainRequest, Maintained, Storage, TableUpsert, TableWrite, Txn, nullable_schema,
};
use lakeflow_core::{Error, Result};
use url::Url;

mod files;
mod log;
mod merged;
mod one_shot;
mod written;

pub use files::{DataFile, FileListTable};
pub use written::FileWriter;

use one_shot::OneShotTable;

/// Pipeline tables as Delta tables under one root directory or URL: a local path, or
/// `s3://` / `s3a://`, `az://` / `abfss://`, `gs://` (with the crate features `s3`, `azure`,
/// `gcs`, on by default). Credentials and endpoints come from the environment as
/// `object_store` reads it (`AWS_*`, `AZURE_*`, `GOOGLE_*`) and from
/// [`DeltaStorage::with_options`].
#[derive(Clone)]
pub struct DeltaStorage {
    root: Url,
    options: StorageOptions,
    /// The object store at the root, made once (checkpoints and other small documents).
    state: Arc<std::sync::OnceLock<deltalake::logstore::ObjectStoreRef>>,
    /// Whether tables are read as [`FileListTable`]s (for engines that ship plans to other
    /// processes) rather than through delta-rs's scan.
    portable: bool,
}

impl std::fmt::Debug for DeltaStorage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeltaStorage")
            .field("root", &display_url(&self.root))
            .field("options", &self.options)
            .finish()
    }
}

impl DeltaStorage {
    /// Storage rooted at `location`: a directory path or a URL. Nothing is created until a
    /// table is written.
    pub fn open(location: &str) -> Result<Self> {
        let root = location_url(location)?;
        check_scheme(&root, location)?;
        Ok(DeltaStorage {
            root,
            options: StorageOptions::default(),
            state: Arc::default(),
            portable: false,
        })
    }

    /// This storage reading tables as explicit lists of Parquet files ([`FileListTable`]),
    /// whose plans serialize, when `portable` is set: what an engine that runs plans in other
    /// processes needs ([`lakeflow_core::Engine::portable_scans`]).
    pub fn with_portable_scans(mut self, portable: bool) -> Self {
        self.portable = portable;
        self
    }

    /// This storage with object-store options (`aws_endpoint`, `azure_storage_account_name`,
    /// `google_service_account`, ... as `object_store` and delta-rs name them); they are added
    /// to what the environment says, and win over it. Their values never appear in messages.
    pub fn with_options<K: Into<String>, V: Into<String>>(
        mut self,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.options = self.options.with(options);
        self.state = Arc::default();
        self
    }

    /// The root URL, ending in `/`.
    pub fn root(&self) -> &Url {
        &self.root
    }

    /// The object-store options given with [`DeltaStorage::with_options`].
    pub fn options(&self) -> &StorageOptions {
        &self.options
    }

    /// The object stores files are read from (sources, `read_files`), for an engine's
    /// sessions: the same options as this storage's tables.
    pub fn object_stores(&self) -> Arc<dyn ObjectStoreRegistry> {
        Arc::new(StoreRegistry::new(self.options.clone()))
    }

    fn builder(&self, url: Url, location: &str) -> Result<DeltaTableBuilder> {
        Ok(DeltaTableBuilder::from_url(url)
            .map_err(|e| delta_error(location, e))?
            .with_storage_options(self.options.map().clone()))
    }

    /// The object store rooted at the storage root, for checkpoints.
    fn state_store(&self) -> Result<deltalake::logstore::ObjectStoreRef> {
        if let Some(store) = self.state.get() {
            return Ok(store.clone());
        }
        let location = display_url(&self.root);
        if self.root.scheme() == "file" {
            let path = self
                .root
                .to_file_path()
                .map_err(|_| Error::InvalidStorage(location.clone()))?;
            std::fs::create_dir_all(&path).map_err(|e| Error::storage(&location, e))?;
        }
        let log_store = self
            .builder(self.root.clone(), &location)?
            .build_storage()
            .map_err(|e| delta_error(&location, e))?;
        Ok(self
            .state
            .get_or_init(|| log_store.object_store(None))
            .clone())
    }

    /// A dataset `name` is the table `<root>/<name>/`; a dataset of another schema than the
    /// pipeline's, `schema.name`, is `<root>/<schema>/<name>/`.
    fn table_url(&self, name: &str) -> Result<Url> {
        let path = match name.split_once('.') {
            Some((schema, table)) if !name.starts_with("_lakeflow/") => format!("{schema}/{table}"),
            _ => name.to_string(),
        };
        self.root
            .join(&format!("{path}/"))
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
        match self.builder(url, &location)?.load().await {
            Ok(table) => Ok(Some(table)),
            // An object store has no directories: nothing written there yet.
            Err(DeltaTableError::NotATable(_)) if !create => Ok(None),
            Err(DeltaTableError::NotATable(_)) => self
                .builder(self.table_url(name)?, &location)?
                .build()
                .map(Some)
                .map_err(|e| Error::storage(location, e)),
            Err(e) => Err(Error::storage(location, e)),
        }
    }

    /// The (not yet loaded) Delta table at an external path or URL, with this storage's
    /// options.
    fn external(&self, path: &str) -> Result<DeltaTable> {
        let url = if path.contains("://") {
            Url::parse(path).map_err(|_| Error::InvalidStorage(path.to_string()))?
        } else {
            let canonical = std::fs::canonicalize(path).map_err(|e| Error::storage(path, e))?;
            Url::from_directory_path(canonical)
                .map_err(|_| Error::InvalidStorage(path.to_string()))?
        };
        check_scheme(&url, path)?;
        self.builder(url, path)?
            .build()
            .map_err(|e| delta_error(path, e))
    }
}

/// The object store holding `location` (an `s3://`, `az://`, `gs://` URL) and the folder of
/// `location` in it, made with `options` and the standard environment variables: for sinks
/// that write files there.
pub fn object_store_at<K: AsRef<str>, V: AsRef<str>>(
    location: &str,
    options: impl IntoIterator<Item = (K, V)>,
) -> Result<(Arc<dyn deltalake::ObjectStore>, StorePath)> {
    let url = location_url(location)?;
    check_scheme(&url, location)?;
    let mut root = url.clone();
    root.set_path("/");
    let options: HashMap<String, String> = options
        .into_iter()
        .map(|(k, v)| (k.as_ref().to_string(), v.as_ref().to_string()))
        .collect();
    let store =
        deltalake::logstore::store_for(&root, &options).map_err(|e| delta_error(location, e))?;
    let prefix = StorePath::from_url_path(url.path().trim_end_matches('/'))
        .map_err(|e| Error::storage(location, e))?;
    Ok((store, prefix))
}

/// Object-store options, kept apart from messages: `Debug` shows the keys only.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct StorageOptions(HashMap<String, String>);

impl StorageOptions {
    /// These options and `more` (which win on a clash).
    pub fn with<K: Into<String>, V: Into<String>>(
        mut self,
        more: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.0
            .extend(more.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// The options as delta-rs and object_store take them.
    pub fn map(&self) -> &HashMap<String, String> {
        &self.0
    }

    /// Whether none were given.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl std::fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut keys: Vec<&String> = self.0.keys().collect();
        keys.sort();
        f.debug_map()
            .entries(keys.into_iter().map(|k| (k, "<redacted>")))
            .finish()
    }
}

/// The URL schemes this build can reach, with the feature each needs.
const SCHEMES: &[(&str, &str, bool)] = &[
    ("s3", "s3", cfg!(feature = "s3")),
    ("s3a", "s3", cfg!(feature = "s3")),
    ("az", "azure", cfg!(feature = "azure")),
    ("azure", "azure", cfg!(feature = "azure")),
    ("abfs", "azure", cfg!(feature = "azure")),
    ("abfss", "azure", cfg!(feature = "azure")),
    ("adl", "azure", cfg!(feature = "azure")),
    ("gs", "gcs", cfg!(feature = "gcs")),
];

/// An error in words for a URL whose scheme this build cannot reach.
fn check_scheme(url: &Url, location: &str) -> Result<()> {
    let scheme = url.scheme();
    if scheme == "file" || scheme == "memory" {
        return Ok(());
    }
    match SCHEMES.iter().find(|(s, _, _)| *s == scheme) {
        Some((_, _, true)) => Ok(()),
        Some((_, feature, false)) => Err(Error::Storage {
            location: location.to_string(),
            message: format!(
                "`{scheme}://` URLs need lakeflow's `{feature}` feature, which this build leaves out; build with `--features {feature}` (it is on by default)"
            ),
            source: None,
        }),
        None => Err(Error::Storage {
            location: location.to_string(),
            message: format!(
                "`{scheme}://` is not a storage lakeflow can reach; use a local path, s3://, s3a://, az://, abfss:// or gs://"
            ),
            source: None,
        }),
    }
}

/// Object stores made on first use for the URLs a session reads (`s3://`, `az://`, `gs://`,
/// local files), from the environment's credentials (the standard variables delta-rs reads):
/// what a process that reads pipeline files without a pipeline of its own needs (a cluster's
/// scheduler and executors).
pub fn object_stores_from_environment() -> Arc<dyn ObjectStoreRegistry> {
    Arc::new(StoreRegistry::new(StorageOptions::default()))
}

/// Object stores for an engine's sessions, made on first use from the URL and the storage
/// options (through delta-rs's store factories, so the same environment variables apply).
#[derive(Debug)]
struct StoreRegistry {
    options: StorageOptions,
    known: DefaultObjectStoreRegistry,
}

impl StoreRegistry {
    fn new(options: StorageOptions) -> Self {
        StoreRegistry {
            options,
            known: DefaultObjectStoreRegistry::new(),
        }
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn deltalake::ObjectStore>,
    ) -> Option<Arc<dyn deltalake::ObjectStore>> {
        self.known.register_store(url, store)
    }

    fn deregister_store(
        &self,
        url: &Url,
    ) -> datafusion::error::Result<Arc<dyn deltalake::ObjectStore>> {
        self.known.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::error::Result<Arc<dyn deltalake::ObjectStore>> {
        if let Ok(store) = self.known.get_store(url) {
            return Ok(store);
        }
        check_scheme(url, url.as_str())
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        let mut root = url.clone();
        root.set_path("/");
        root.set_query(None);
        let store = deltalake::logstore::store_for(&root, self.options.map())
            .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))?;
        self.known.register_store(&root, store.clone());
        Ok(store)
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
        if self.portable {
            return Ok(Some(Arc::new(FileListTable::of_snapshot(
                &table, name, None,
            )?)));
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

    async fn prepare_files(
        &self,
        write: TableWrite,
        replace: bool,
    ) -> Result<Option<lakeflow_core::storage::FilesPrepared>> {
        self.prepare_written(Head::of(&write), replace).await
    }

    async fn commit_files(
        &self,
        write: TableWrite,
        replace: bool,
        files: Vec<serde_json::Value>,
    ) -> Result<Committed> {
        self.commit_written(Head::of(&write), replace, files).await
    }

    async fn prepare_merge(
        &self,
        upsert: &TableUpsert,
    ) -> Result<Option<lakeflow_core::storage::MergePrepared>> {
        self.prepare_merged(upsert).await
    }

    async fn commit_merge(
        &self,
        upsert: &TableUpsert,
        merge: &lakeflow_core::storage::MergeFiles,
        files: Vec<serde_json::Value>,
    ) -> Result<Committed> {
        self.commit_merged(upsert, merge, files).await
    }

    async fn version(&self, name: &str) -> Result<Option<u64>> {
        Ok(self.load(name, false).await?.and_then(|t| t.version()))
    }

    async fn partition_columns(&self, name: &str) -> Result<Option<Vec<String>>> {
        let Some(table) = self.load(name, false).await? else {
            return Ok(None);
        };
        Ok(table
            .snapshot()
            .ok()
            .map(|state| state.metadata().partition_columns().to_vec()))
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
        let read = Appended {
            name,
            location,
            after,
            upto,
            skip_change_commits,
            portable: self.portable,
        };
        appended(table, read).await
    }

    async fn upsert(&self, upsert: TableUpsert) -> Result<Committed> {
        let location = self.table_location(&upsert.name);
        let existing = match self.load(&upsert.name, false).await? {
            Some(table) if table.version().is_some() => Some(table),
            _ => None,
        };
        if let Some(table) = &existing
            && let Some(version) = already_committed(table, upsert.txn.as_ref()).await?
        {
            return Ok(Committed { version });
        }
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
        builder = builder.with_commit_properties(commit_properties(upsert.txn.clone()));
        let (table, _) = match builder.await {
            Ok(done) => done,
            Err(e) => {
                return self
                    .after_conflict(&upsert.name, upsert.txn.as_ref(), e)
                    .await;
            }
        };
        let version = table.version().ok_or_else(|| {
            Error::Internal(format!(
                "Delta table `{location}` has no version after a merge"
            ))
        })?;
        checkpoint_if_due(&table, &location).await;
        Ok(Committed { version })
    }

    async fn version_at(&self, path: &str) -> Result<Option<u64>> {
        let mut table = self.external(path)?;
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
        let table = self.external(path)?;
        let read = Appended {
            name: path,
            location: path.to_string(),
            after,
            upto,
            skip_change_commits,
            portable: self.portable,
        };
        appended(table, read).await
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

    async fn create_state(&self, key: &str, bytes: Vec<u8>) -> Result<bool> {
        let store = self.state_store()?;
        let options = datafusion::object_store::PutOptions {
            mode: datafusion::object_store::PutMode::Create,
            ..Default::default()
        };
        match store
            .put_opts(&StorePath::from(key), bytes.into(), options)
            .await
        {
            Ok(_) => Ok(true),
            Err(deltalake::ObjectStoreError::AlreadyExists { .. }) => Ok(false),
            Err(e @ deltalake::ObjectStoreError::NotImplemented { .. }) => Err(Error::Storage {
                location: format!("{}{key}", self.location()),
                message: format!(
                    "the object store cannot create a file only if it is absent ({e}); lakeflow needs conditional writes (on S3-compatible stores: `aws_conditional_put` = `etag`)"
                ),
                source: None,
            }),
            Err(e) => Err(Error::storage(key, e)),
        }
    }

    async fn list_state(&self, prefix: &str) -> Result<Vec<String>> {
        use futures::TryStreamExt;
        let store = self.state_store()?;
        let folder = StorePath::from(prefix.trim_end_matches('/'));
        let mut keys: Vec<String> = store
            .list(Some(&folder))
            .map_ok(|meta| meta.location.to_string())
            .try_collect()
            .await
            .map_err(|e| Error::storage(prefix, e))?;
        keys.sort();
        Ok(keys)
    }

    async fn delete_state(&self, key: &str) -> Result<()> {
        let store = self.state_store()?;
        match store.delete(&StorePath::from(key)).await {
            Ok(()) | Err(deltalake::ObjectStoreError::NotFound { .. }) => Ok(()),
            Err(e) => Err(Error::storage(key, e)),
        }
    }

    async fn maintain(&self, request: &MaintainRequest) -> Result<Option<Maintained>> {
        let location = self.table_location(&request.name);
        let Some(table) = self.load(&request.name, false).await? else {
            return Ok(None);
        };
        if table.version().is_none() {
            return Ok(None);
        }
        let (files_before, small) = data_files(&table, request.target_file_size, &location)?;
        let mut done = Maintained {
            files_before,
            files_after: files_before,
            ..Maintained::default()
        };
        let mut table = table;
        if small >= request.compact_min_files.max(2) as u64 {
            // Delta's OPTIMIZE: bin-packs the small files; its adds and removes carry
            // `dataChange = false`, so readers of the table's appends skip the commit.
            let target = std::num::NonZeroU64::new(request.target_file_size.max(1))
                .unwrap_or(std::num::NonZeroU64::MIN);
            let (compacted, metrics) = table
                .optimize()
                .with_target_size(target)
                .await
                .map_err(|e| delta_error(&location, e))?;
            if metrics.num_files_removed > 0 {
                done.version = compacted.version();
                checkpoint_if_due(&compacted, &location).await;
            }
            done.files_compacted = metrics.num_files_removed;
            done.files_written = metrics.num_files_added;
            table = compacted;
        }
        if request.vacuum {
            // The full mode lists the table's directory, so it also finds the files a write
            // that died before its commit left behind, and files whose tombstones have already
            // left the log's checkpoints. The retention is the table's
            // `delta.deletedFileRetentionDuration` (7 days unless set).
            let (vacuumed, metrics) = table
                .vacuum()
                .with_mode(deltalake::operations::vacuum::VacuumMode::Full)
                .await
                .map_err(|e| delta_error(&location, e))?;
            done.files_vacuumed = metrics.files_deleted.len() as u64;
            table = vacuumed;
            // Log files older than `delta.logRetentionDuration` (30 days unless set) and
            // before the last checkpoint, which commits no longer clean up one by one.
            if let Err(e) = deltalake::checkpoints::cleanup_metadata(&table, None).await {
                eprintln!("warning: could not clean up the Delta log of `{location}`: {e}");
            }
        }
        done.files_after = data_files(&table, request.target_file_size, &location)?.0;
        Ok(Some(done))
    }

    async fn open_table_at(&self, path: &str) -> Result<Arc<dyn TableProvider>> {
        let mut table = self.external(path)?;
        table.load().await.map_err(|e| delta_error(path, e))?;
        if self.portable {
            return Ok(Arc::new(FileListTable::of_snapshot(&table, path, None)?));
        }
        table
            .table_provider()
            .await
            .map_err(|e| Error::storage(path, e))
    }
}

/// What [`appended`] reads: `name` and `location` are for messages.
struct Appended<'a> {
    name: &'a str,
    location: String,
    after: Option<u64>,
    upto: u64,
    skip_change_commits: bool,
    /// Read as a [`FileListTable`].
    portable: bool,
}

/// The rows the commits of `table` after version `after` up to `upto` appended (the table as
/// of `upto` when `after` is `None`).
async fn appended(mut table: DeltaTable, read: Appended<'_>) -> Result<Arc<dyn TableProvider>> {
    let Appended {
        name,
        location,
        after,
        upto,
        skip_change_commits,
        portable,
    } = read;
    table
        .load_version(upto)
        .await
        .map_err(|e| Error::storage(&location, e))?;
    let Some(after) = after else {
        if portable {
            return Ok(Arc::new(FileListTable::of_snapshot(&table, name, None)?));
        }
        // A stream that starts reads the table as it is at `upto`, then what is appended.
        return table
            .table_provider()
            .await
            .map_err(|e| Error::storage(location, e));
    };
    let first = after + 1;
    let store = table.log_store().object_store(None);
    // Each file is selected from a snapshot in which it is active. A compaction in the range
    // (files removed without `dataChange`) takes the files added before it out of later
    // snapshots, so those are read from the version just before it: a stream reading through a
    // compaction sees every appended row once, and none of the compacted copies.
    let mut segments: Vec<(u64, Vec<String>)> = Vec::new();
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
        if commit.rearranges && !files.is_empty() {
            segments.push((version - 1, std::mem::take(&mut files)));
        }
        files.extend(commit.added);
    }
    if !files.is_empty() {
        segments.push((upto, files));
    }
    if portable {
        // One list of every segment's files, each selected from its version; the scan reads
        // older files with the table's current schema (missing columns NULL, narrower types
        // cast), as `conform_to` does below.
        let state = table.snapshot().map_err(|e| Error::storage(&location, e))?;
        let mut list = FileListTable::new(
            state.snapshot().arrow_schema(),
            state.metadata().partition_columns().to_vec(),
            Vec::new(),
        );
        for (version, files) in segments {
            let mut at = table.clone();
            at.load_version(version)
                .await
                .map_err(|e| Error::storage(&location, e))?;
            let selected = files.iter().map(|f| files::log_path(f)).collect();
            list = list.concat(FileListTable::of_snapshot(&at, name, Some(&selected))?);
        }
        return Ok(Arc::new(list));
    }
    let schema = table
        .snapshot()
        .map_err(|e| Error::storage(&location, e))?
        .snapshot()
        .arrow_schema();
    let select = |table: DeltaTable, files: Vec<String>| {
        let selection = deltalake::delta_datafusion::FileSelection::from_file_paths(files);
        let location = location.clone();
        async move {
            table
                .table_provider()
                .with_file_selection(selection)
                .await
                .map_err(|e| Error::storage(location, e))
        }
    };
    match segments.len() {
        0 => Ok(Arc::new(datafusion::datasource::MemTable::try_new(
            schema,
            vec![Vec::new()],
        )?)),
        1 if segments[0].0 == upto => {
            let (_, files) = segments.remove(0);
            select(table, files).await
        }
        _ => {
            let mut union: Option<LogicalPlanBuilder> = None;
            for (version, files) in segments {
                let mut at = table.clone();
                at.load_version(version)
                    .await
                    .map_err(|e| Error::storage(&location, e))?;
                let provider = select(at, files).await?;
                let scan = LogicalPlanBuilder::scan(name, provider_as_source(provider), None)?;
                let scan = conform_to(scan, &schema)?;
                union = Some(match union {
                    None => scan,
                    Some(plan) => plan.union(scan.build()?)?,
                });
            }
            let plan = union
                .ok_or_else(|| Error::Internal("no segment to read".into()))?
                .build()?;
            Ok(Arc::new(datafusion::catalog::view::ViewTable::new(
                plan, None,
            )))
        }
    }
}

/// `scan` with the columns of `schema` in its order: an earlier version may lack columns the
/// table gained since (they read NULL) or hold them as another type (cast).
fn conform_to(scan: LogicalPlanBuilder, schema: &Schema) -> Result<LogicalPlanBuilder> {
    use datafusion::logical_expr::{cast, col, lit};
    use datafusion::scalar::ScalarValue;
    let have = scan.schema().clone();
    let exprs = schema.fields().iter().map(|field| {
        let expr = match have.index_of_column_by_name(None, field.name()) {
            Some(i) if have.field(i).data_type() == field.data_type() => {
                col(datafusion::common::Column::from(have.qualified_field(i)))
            }
            Some(i) => cast(
                col(datafusion::common::Column::from(have.qualified_field(i))),
                field.data_type().clone(),
            ),
            None => lit(ScalarValue::try_from(field.data_type()).unwrap_or(ScalarValue::Null)),
        };
        expr.alias(field.name())
    });
    Ok(scan.project(exprs)?)
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
            parent: DeltaStorage {
                root: parent,
                options: StorageOptions::default(),
                state: Arc::default(),
                portable: false,
            },
            name,
            location: display_url(&url),
        })
    }
}

impl DeltaSink {
    /// This sink with object-store options for the table's store (see
    /// [`DeltaStorage::with_options`]).
    pub fn with_options<K: Into<String>, V: Into<String>>(
        mut self,
        options: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.parent = self.parent.with_options(options);
        self
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

    fn table(&self) -> Option<(&dyn Storage, &str)> {
        Some((&self.parent, &self.name))
    }
}

/// The table's version when it already holds `txn`'s batch (or a later one of its writer).
async fn already_committed(table: &DeltaTable, txn: Option<&Txn>) -> Result<Option<u64>> {
    let (Some(txn), Some(version)) = (txn, table.version()) else {
        return Ok(None);
    };
    let Ok(state) = table.snapshot() else {
        return Ok(None);
    };
    let done = state
        .snapshot()
        .transaction_version(table.log_store().as_ref(), &txn.app_id)
        .await
        .map_err(|e| Error::storage(table.log_store().root_url().to_string(), e))?;
    Ok((done >= Some(txn.version)).then_some(version))
}

impl DeltaStorage {
    /// A write of table `name` failed with `e`. When another writer committed at the same time
    /// and its commit holds this write's batch, the batch is done; any other conflict is told
    /// in words, and nothing of the write is visible.
    async fn after_conflict(
        &self,
        name: &str,
        txn: Option<&Txn>,
        e: DeltaTableError,
    ) -> Result<Committed> {
        let location = self.table_location(name);
        let conflict = matches!(
            e,
            DeltaTableError::VersionAlreadyExists(_)
                | DeltaTableError::Transaction {
                    source: deltalake::kernel::transaction::TransactionError::CommitConflict(_)
                        | deltalake::kernel::transaction::TransactionError::MaxCommitAttempts(_)
                        | deltalake::kernel::transaction::TransactionError::VersionAlreadyExists(_)
                }
        );
        if !conflict {
            return Err(delta_error(&location, e));
        }
        if let Some(table) = self.load(name, false).await?
            && let Some(version) = already_committed(&table, txn).await?
        {
            return Ok(Committed { version });
        }
        Err(Error::Storage {
            location,
            message: format!(
                "another writer committed to this table at the same time ({e}); nothing of this write was committed; run again (two runs of one pipeline should not share storage: the lease keeps them apart)"
            ),
            source: None,
        })
    }
}

/// Commit properties carrying the application transaction `txn`.
/// The table's schema with the types `incoming` widens, or `None` when it widens none.
fn widened_schema(table: &DeltaTable, incoming: &Schema) -> Option<Schema> {
    let state = table.snapshot().ok()?;
    let stored = state.snapshot().arrow_schema();
    let mut widened = false;
    let fields: Vec<Field> = stored
        .fields()
        .iter()
        .map(|field| match incoming.field_with_name(field.name()) {
            Ok(wider)
                if lakeflow_core::storage::is_widening(field.data_type(), wider.data_type()) =>
            {
                widened = true;
                field
                    .as_ref()
                    .clone()
                    .with_data_type(wider.data_type().clone())
            }
            _ => field.as_ref().clone(),
        })
        .collect();
    widened.then(|| Schema::new(fields))
}

/// How lakeflow writes Parquet: Snappy as delta-rs and Spark do, with dictionary encoding
/// except for floating-point columns, whose values are rarely repeated (hashing every value
/// into a dictionary that Parquet then abandons was a tenth of a CSV-to-Delta run's time).
fn writer_properties(schema: &Schema) -> datafusion::parquet::file::properties::WriterProperties {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::parquet::basic::Compression;
    use datafusion::parquet::file::properties::WriterProperties;
    use datafusion::parquet::schema::types::ColumnPath;
    let mut builder = WriterProperties::builder()
        .set_created_by(format!("lakeflow {}", env!("CARGO_PKG_VERSION")))
        .set_compression(Compression::SNAPPY);
    for field in schema.fields() {
        if matches!(
            field.data_type(),
            DataType::Float16 | DataType::Float32 | DataType::Float64
        ) {
            builder = builder
                .set_column_dictionary_enabled(ColumnPath::from(field.name().as_str()), false);
        }
    }
    builder.build()
}

/// The number of data files of `table`, and how many of them are smaller than `target` bytes.
fn data_files(table: &DeltaTable, target: u64, location: &str) -> Result<(u64, u64)> {
    let state = table.snapshot().map_err(|e| Error::storage(location, e))?;
    let (mut all, mut small) = (0, 0);
    for file in state.log_data().iter() {
        all += 1;
        if u64::try_from(file.size()).unwrap_or(0) < target {
            small += 1;
        }
    }
    Ok((all, small))
}

/// lakeflow checkpoints a table's log every this many commits (Delta's default is 100). A
/// pipeline commits to its tables on every run, and every load of a table replays the commits
/// since its last checkpoint, so this bounds the cost of a load whatever the table's age.
const CHECKPOINT_INTERVAL: u64 = 10;

/// Writes a checkpoint of `table`'s log when its version ends a run of
/// [`CHECKPOINT_INTERVAL`] commits. A table that sets `delta.checkpointInterval` is left to
/// delta-rs's post-commit hook, which honours it (and checkpoints every 100th commit of the
/// others). A checkpoint that cannot be written is a warning: the commit stands, and the
/// next one tries again.
async fn checkpoint_if_due(table: &DeltaTable, location: &str) {
    let Some(version) = table.version() else {
        return;
    };
    let next = version + 1;
    let configured = table.snapshot().is_ok_and(|state| {
        state
            .metadata()
            .configuration()
            .contains_key("delta.checkpointInterval")
    });
    if configured || !next.is_multiple_of(CHECKPOINT_INTERVAL) || next.is_multiple_of(100) {
        return;
    }
    if let Err(e) = deltalake::checkpoints::create_checkpoint(table, None).await {
        eprintln!("warning: could not checkpoint the Delta log of `{location}`: {e}");
    }
}

/// The properties of lakeflow's commits: the batch's transaction, if any, and no clean-up of
/// expired log files. delta-rs cleans up after every commit by listing the whole `_delta_log`,
/// a cost that grows with the table's age; lakeflow does it in the daily maintenance instead.
fn commit_properties(txn: Option<Txn>) -> deltalake::kernel::transaction::CommitProperties {
    let properties = deltalake::kernel::transaction::CommitProperties::default()
        .with_cleanup_expired_logs(Some(false));
    match txn {
        Some(txn) => properties.with_application_transaction(deltalake::kernel::Transaction::new(
            txn.app_id,
            txn.version,
        )),
        None => properties,
    }
}

/// The table's metadata of `state` with `schema` instead of its own (a commit that changes it).
fn metadata_with_schema(
    state: &deltalake::table::state::DeltaTableState,
    schema: &Schema,
    location: &str,
) -> Result<deltalake::kernel::Metadata> {
    use deltalake::kernel::MetadataExt;
    let schema: StructType = schema
        .try_into_kernel()
        .map_err(|e| Error::Internal(format!("Arrow schema to Delta: {e}")))?;
    state
        .metadata()
        .clone()
        .with_schema(&schema)
        .map_err(|e| Error::storage(location, e))
}

/// What a write says of its table, without its rows.
struct Head {
    name: String,
    schema: SchemaRef,
    partition_cols: Vec<String>,
    properties: std::collections::BTreeMap<String, String>,
    comment: Option<String>,
    txn: Option<Txn>,
}

impl Head {
    fn of(write: &TableWrite) -> Head {
        Head {
            name: write.name.clone(),
            schema: write.schema.clone(),
            partition_cols: write.partition_cols.clone(),
            properties: write.properties.clone(),
            comment: write.comment.clone(),
            txn: write.txn.clone(),
        }
    }
}

/// What [`DeltaStorage::prepare`] found.
enum Prepared {
    /// The table already holds the write's batch.
    Done(Committed),
    /// Write into `table`; the write adds columns to it (schema evolution).
    Ready {
        table: DeltaTable,
        adds_columns: bool,
    },
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

    /// Rewrites `table` with the column types of `target`, in one commit that changes no rows:
    /// every file is read, its columns cast to the wider types and written again; the commit
    /// holds the new schema, and its removes and adds carry `dataChange = false`, so streams
    /// reading the table skip it (and read the files appended before it from the version
    /// before it). delta-rs 1.1 does not write Delta's `typeWidening` table feature, which
    /// would change the type without a rewrite; the rewritten table needs no feature at all,
    /// so every Delta reader reads it. Killed before the commit, nothing is visible (the files
    /// written are left for a vacuum); after it, the table simply has the wider type.
    async fn widen(&self, table: DeltaTable, target: Schema, location: &str) -> Result<DeltaTable> {
        use datafusion::execution::runtime_env::RuntimeEnvBuilder;
        use datafusion::prelude::{SessionConfig, SessionContext, cast, col};
        use deltalake::kernel::Action;
        use deltalake::kernel::transaction::CommitBuilder;
        use deltalake::writer::{DeltaWriter, RecordBatchWriter};
        use futures::StreamExt;
        let error = |e: DeltaTableError| delta_error(location, e);
        let state = table.snapshot().map_err(error)?.clone();
        let removes: Vec<Action> = state
            .log_data()
            .iter()
            .map(|file| Action::Remove(file.remove_action(false)))
            .collect();
        let runtime = RuntimeEnvBuilder::new()
            .with_object_store_registry(self.object_stores())
            .build_arc()?;
        let ctx = SessionContext::new_with_config_rt(SessionConfig::new(), runtime);
        let rows = ctx
            .read_table(
                table
                    .table_provider()
                    .await
                    .map_err(|e| Error::storage(location, e))?,
            )?
            .select(
                target
                    .fields()
                    .iter()
                    .map(|f| {
                        cast(col(format!("\"{}\"", f.name())), f.data_type().clone())
                            .alias(f.name())
                    })
                    .collect::<Vec<_>>(),
            )?;
        let mut stream = rows.execute_stream().await?;
        let partitions = state.metadata().partition_columns().to_vec();
        let mut writer = RecordBatchWriter::try_new(
            table.table_url().as_str(),
            Arc::new(target.clone()),
            (!partitions.is_empty()).then_some(partitions),
            Some(self.options.map().clone()),
        )
        .map_err(error)?;
        let mut adds = Vec::new();
        let mut buffered = 0usize;
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            buffered += batch.get_array_memory_size();
            writer.write(batch).await.map_err(error)?;
            // Files of about 128 MiB in memory before they go out.
            if buffered >= 128 * 1024 * 1024 {
                adds.extend(writer.flush().await.map_err(error)?);
                buffered = 0;
            }
        }
        adds.extend(writer.flush().await.map_err(error)?);
        let metadata = metadata_with_schema(&state, &target, location)?;
        let mut actions = vec![Action::Metadata(metadata)];
        actions.extend(removes);
        actions.extend(adds.into_iter().map(|mut add| {
            add.data_change = false;
            Action::Add(add)
        }));
        let operation = deltalake::protocol::DeltaOperation::Write {
            mode: SaveMode::Overwrite,
            partition_by: None,
            predicate: None,
        };
        CommitBuilder::default()
            .with_actions(actions)
            .build(Some(&state), table.log_store(), operation)
            .await
            .map_err(error)?;
        lakeflow_core::failpoint::hit("table_widened");
        let mut table = table;
        table.load().await.map_err(error)?;
        checkpoint_if_due(&table, location).await;
        Ok(table)
    }

    /// Readies `write`'s table for a write in `mode`: loads it (creating it empty first when
    /// `create_empty`, or when the write carries a transaction or properties of the user's
    /// own), widens what the write widens and refuses what an append would retype; or says
    /// that the table already holds the write's batch.
    async fn prepare(&self, write: &Head, mode: SaveMode, create_empty: bool) -> Result<Prepared> {
        let location = self.table_location(&write.name);
        let table = self.load(&write.name, true).await?.ok_or_else(|| {
            Error::Internal(format!(
                "table `{location}` could not be prepared for writing"
            ))
        })?;
        // A batch another writer already committed is not written again (exactly once
        // whoever else runs; the lease should make this rare).
        if let Some(version) = already_committed(&table, write.txn.as_ref()).await? {
            return Ok(Prepared::Done(Committed { version }));
        }
        // delta-rs refuses unknown keys when a write creates a table; a table with properties
        // of the user's own (`'quality' = 'gold'`, common in DLT pipelines) is created first,
        // with them allowed, and then written.
        let custom = write.properties.keys().any(|k| !k.starts_with("delta."));
        // A streaming batch that creates its table creates it empty first: delta-rs retries a
        // first commit that lost the race for version 0 on top of the winner without checking
        // it for conflicts, so two writers of the same batch would both land. On an existing
        // table the batch's transaction id makes the second one conflict.
        let create_empty = create_empty || custom || write.txn.is_some();
        let table = if table.version().is_none() && create_empty {
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
            match create.await {
                Ok(table) => table,
                // Another writer created it meanwhile: write into theirs, unless it already
                // holds this batch.
                Err(e) => {
                    let Some(existing) = self.load(&write.name, false).await? else {
                        return Err(delta_error(&location, e));
                    };
                    if existing.version().is_none() {
                        return Err(delta_error(&location, e));
                    }
                    if let Some(version) = already_committed(&existing, write.txn.as_ref()).await? {
                        return Ok(Prepared::Done(Committed { version }));
                    }
                    existing
                }
            }
        } else {
            table
        };
        // A write whose column is a wider type than the table's (schema evolution with type
        // widening upstream) first rewrites the table with the wider type.
        let table = match widened_schema(&table, &write.schema) {
            Some(target) => self.widen(table, target, &location).await?,
            None => table,
        };
        let stored = table
            .snapshot()
            .ok()
            .map(|state| state.snapshot().arrow_schema());
        // delta-rs would cast a retyped column's values into the stored type (`5` as `true`).
        if mode == SaveMode::Append
            && let Some((column, had, written)) = stored
                .as_ref()
                .and_then(|stored| lakeflow_core::storage::retyped_column(stored, &write.schema))
        {
            let name = |t: &datafusion::arrow::datatypes::DataType| {
                t.try_into_kernel().map_or_else(
                    |_| t.to_string(),
                    |t: deltalake::kernel::DataType| t.to_string(),
                )
            };
            return Err(lakeflow_core::storage::retyped_column_error(
                &write.name,
                &column,
                &name(&had),
                &name(&written),
            ));
        }
        let adds_columns = stored.is_some_and(|stored| {
            write
                .schema
                .fields()
                .iter()
                .any(|f| stored.field_with_name(f.name()).is_err())
        });
        Ok(Prepared::Ready {
            table,
            adds_columns,
        })
    }

    /// One commit of `write` in `mode`: the streams go through delta-rs's writer unbuffered.
    async fn commit(&self, write: TableWrite, mode: SaveMode) -> Result<Committed> {
        let location = self.table_location(&write.name);
        let head = Head::of(&write);
        let txn = write.txn.clone();
        let (table, adds_columns) = match self.prepare(&head, mode, false).await? {
            Prepared::Done(committed) => return Ok(committed),
            Prepared::Ready {
                table,
                adds_columns,
            } => (table, adds_columns),
        };
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
            .with_configuration(configuration)
            .with_writer_properties(writer_properties(&write.schema));
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
        builder = builder.with_commit_properties(commit_properties(write.txn));
        let table = match builder.await {
            Ok(table) => table,
            Err(e) => return self.after_conflict(&write.name, txn.as_ref(), e).await,
        };
        let version = table.version().ok_or_else(|| {
            Error::Internal(format!(
                "Delta table `{location}` has no version after a write"
            ))
        })?;
        checkpoint_if_due(&table, &location).await;
        Ok(Committed {
            version: version as u64,
        })
    }
}
