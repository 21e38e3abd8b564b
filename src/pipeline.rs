//! The user-facing pipeline: definitions (from the registry or the builder), where tables are
//! stored, what engine runs the flows, and the verbs `dry_run` and `run`.
//!
//! This module ties the crates together: it turns a storage location into Delta storage and
//! hands the rest to `lakeflow-core`. It holds no runtime logic of its own.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use lakeflow_core::dataset::{DatasetDef, DatasetKind, Plan, PlanFuture, Query, SourceLocation};
use lakeflow_core::event_log::{EVENT_LOG_TABLE, Observer};
use lakeflow_core::lease::{Lease, LeaseOptions};
use lakeflow_core::maintenance::{MaintenanceOptions, TableMaintenance};
use lakeflow_core::progress::ProgressMode;
use lakeflow_core::{
    DataFusionEngine, DatasetGraph, Engine, Error, ExpectAction, Expectation, ExternalTable,
    Functions, PipelineDef, Result, RunOptions, RunReport, SqlDialect, Storage,
};
use lakeflow_delta::DeltaStorage;

/// Where pipeline tables are stored unless [`Pipeline::storage`] says otherwise.
pub const DEFAULT_STORAGE: &str = "lakeflow-data";

/// A pipeline: its datasets, its storage and its engine.
///
/// ```no_run
/// # async fn example() -> lakeflow::Result<()> {
/// use lakeflow::prelude::*;
///
/// let report = Pipeline::from_registry().storage("lakeflow-data").run().await?;
/// println!("{report}");
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Pipeline {
    def: PipelineDef,
    storage: StorageChoice,
    engine: Arc<dyn Engine>,
    /// The in-process engine's dialect and functions; `None` once `engine(..)` chose another.
    local: Option<DataFusionEngine>,
    options: RunOptions,
    progress: ProgressMode,
    /// Object-store options for the storage location, its sources and sinks.
    storage_options: Vec<(String, String)>,
    lease: LeaseOptions,
}

#[derive(Clone)]
enum StorageChoice {
    Location(String),
    Backend(Arc<dyn Storage>),
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let storage = match &self.storage {
            StorageChoice::Location(l) => l.clone(),
            StorageChoice::Backend(b) => format!("{b:?}"),
        };
        f.debug_struct("Pipeline")
            .field("datasets", &self.def.datasets.len())
            .field("storage", &storage)
            .finish_non_exhaustive()
    }
}

impl Pipeline {
    /// A pipeline of every dataset defined with the attribute macros in this program.
    pub fn from_registry() -> Self {
        Pipeline::with_def(PipelineDef::from_registry())
    }

    /// An empty pipeline to add datasets to with [`Pipeline::table`] and friends — the same
    /// definitions the macros make, for tests and for pipelines generated in a loop.
    ///
    /// ```
    /// use lakeflow::prelude::*;
    ///
    /// let pipeline = Pipeline::builder()
    ///     .materialized_view("numbers", || sql("SELECT 1 AS n UNION ALL SELECT 2"))
    ///     .materialized_view("total", || sql("SELECT sum(n) AS total FROM numbers"));
    /// assert_eq!(pipeline.dataset_names(), ["numbers", "total"]);
    /// ```
    pub fn builder() -> Self {
        Pipeline::with_def(PipelineDef::default())
    }

    fn with_def(def: PipelineDef) -> Self {
        Pipeline {
            def,
            storage: StorageChoice::Location(DEFAULT_STORAGE.to_string()),
            engine: Arc::new(DataFusionEngine::default()),
            local: Some(DataFusionEngine::default()),
            options: RunOptions::default(),
            progress: ProgressMode::Auto,
            storage_options: Vec::new(),
            lease: LeaseOptions::default(),
        }
    }

    /// Adds a `#[table]`: a streaming table if its query reads a stream, else a materialized view.
    #[track_caller]
    pub fn table<F>(self, name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        self.dataset(Dataset::new(DatasetKind::Table, name, query))
    }

    /// Adds a materialized view.
    #[track_caller]
    pub fn materialized_view<F>(self, name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        self.dataset(Dataset::new(DatasetKind::MaterializedView, name, query))
    }

    /// Adds a streaming table.
    #[track_caller]
    pub fn streaming_table<F>(self, name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        self.dataset(Dataset::new(DatasetKind::StreamingTable, name, query))
    }

    /// Adds a temporary view: never stored, inlined into the queries that read it.
    #[track_caller]
    pub fn temporary_view<F>(self, name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        self.dataset(Dataset::new(DatasetKind::TemporaryView, name, query))
    }

    /// Adds a streaming table without a query, for append flows to write
    /// ([`Pipeline::append_flow`]); its schema is the union of its flows' columns. With
    /// options (a schema, expectations, partition columns) use
    /// [`Dataset::create_streaming_table`].
    ///
    /// ```
    /// use lakeflow::prelude::*;
    ///
    /// let pipeline = Pipeline::builder()
    ///     .create_streaming_table("all_orders")
    ///     .append_flow("all_orders", "eu_orders", || read_stream("eu"))
    ///     .append_flow("all_orders", "us_orders", || read_stream("us"));
    /// # let _ = pipeline;
    /// ```
    #[track_caller]
    pub fn create_streaming_table(self, name: impl Into<String>) -> Self {
        self.dataset(Dataset::create_streaming_table(name))
    }

    /// Adds an append flow named `name` that appends the new rows of its streaming query to
    /// the streaming table `target` each run, with a checkpoint of its own. Several flows may
    /// write one table. For a flow that runs once, see [`Dataset::append_flow`] and
    /// [`Dataset::once`].
    #[track_caller]
    pub fn append_flow<F>(
        self,
        target: impl Into<String>,
        name: impl Into<String>,
        query: F,
    ) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        self.dataset(Dataset::append_flow(target, name, query))
    }

    /// Adds an AUTO CDC flow: the change feed its source reads as a stream is applied to its
    /// target (made with [`Pipeline::create_streaming_table`]) as SCD type 1 or 2. See
    /// [`AutoCdc`](crate::AutoCdc).
    ///
    /// ```
    /// use lakeflow::prelude::*;
    /// use lakeflow::AutoCdc;
    ///
    /// let pipeline = Pipeline::builder()
    ///     .streaming_table("changes", || read_stream_files("landing/changes", csv()))
    ///     .create_streaming_table("customers")
    ///     .create_auto_cdc_flow(
    ///         AutoCdc::new("customers", "changes")
    ///             .keys(["id"])
    ///             .sequence_by("version")
    ///             .apply_as_deletes("op = 'DELETE'")
    ///             .except_column_list(["op"]),
    ///     );
    /// # let _ = pipeline;
    /// ```
    #[track_caller]
    pub fn create_auto_cdc_flow(mut self, flow: lakeflow_core::AutoCdc) -> Self {
        self.def
            .datasets
            .push(flow.into_def(SourceLocation::caller()));
        self
    }

    /// Adds an AUTO CDC flow from snapshots (made with
    /// [`AutoCdc::from_snapshot`](crate::AutoCdc::from_snapshot) or
    /// [`AutoCdc::from_snapshot_fn`](crate::AutoCdc::from_snapshot_fn)): each new snapshot
    /// is compared with the target, and the difference applied as SCD type 1 or 2.
    #[track_caller]
    pub fn create_auto_cdc_from_snapshot_flow(self, flow: lakeflow_core::AutoCdc) -> Self {
        self.create_auto_cdc_flow(flow)
    }

    /// Adds a sink (Spark's `create_sink`): a destination outside the pipeline that append
    /// flows write to (`append_flow(sink_name, flow_name, query)`), exactly once per batch.
    /// Formats: `delta` (option `path`: a Delta table by path or URL such as `s3://b/t`; its
    /// other options are object-store options, as for [`Pipeline::storage_options`]), and
    /// `parquet`, `csv`, `json` (option `path`: a local directory, or an object-store URL
    /// whose other options are its object-store options; each batch is its own files). A full refresh
    /// of a sink starts its flows' checkpoints over but leaves the data already written.
    ///
    /// ```
    /// use lakeflow::prelude::*;
    ///
    /// let pipeline = Pipeline::builder()
    ///     .streaming_table("orders", || read_stream_files("landing/orders", csv()))
    ///     .create_sink("orders_export", "parquet", [("path", "exports/orders")])
    ///     .append_flow("orders_export", "export_orders", || read_stream("orders"));
    /// # let _ = pipeline;
    /// ```
    #[track_caller]
    pub fn create_sink<I, K, V>(self, name: impl Into<String>, format: &str, options: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let name = name.into();
        let options: Vec<(String, String)> = options
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let location = SourceLocation::caller();
        let sink: std::result::Result<Arc<dyn lakeflow_core::Sink>, String> = match format
            .to_ascii_lowercase()
            .as_str()
        {
            // The options besides `path` are object-store options for the table's store.
            "delta" => match options.iter().find(|(k, _)| k == "path") {
                Some((_, path)) => lakeflow_delta::DeltaSink::new(path)
                    .map(|s| {
                        let store = options.iter().filter(|(k, _)| k != "path").cloned();
                        Arc::new(s.with_options(store)) as Arc<dyn lakeflow_core::Sink>
                    })
                    .map_err(|e| e.to_string()),
                None => Err("a delta sink needs the option `path`".to_string()),
            },
            // A file sink on an object store: the options besides `path` are its options.
            other
                if matches!(other, "parquet" | "csv" | "json")
                    && options.iter().any(|(k, v)| {
                        k == "path" && v.contains("://") && !v.starts_with("file:")
                    }) =>
            {
                let path = options
                    .iter()
                    .find(|(k, _)| k == "path")
                    .map(|(_, v)| v.clone())
                    .unwrap_or_default();
                let format = match other {
                    "parquet" => lakeflow_core::parquet(),
                    "csv" => lakeflow_core::csv().into(),
                    _ => lakeflow_core::json(),
                };
                let store_options = options.iter().filter(|(k, _)| k != "path").cloned();
                lakeflow_delta::object_store_at(&path, store_options)
                    .map(|(store, prefix)| {
                        let sink =
                            lakeflow_core::FileSink::on_store(store, prefix, path.clone(), format);
                        let shipped = options.iter().filter(|(k, _)| k != "path").cloned();
                        Arc::new(sink.with_store_options(shipped)) as Arc<dyn lakeflow_core::Sink>
                    })
                    .map_err(|e| e.to_string())
            }
            other => match lakeflow_core::sink::file_sink(other, &options) {
                Ok(Some(sink)) => Ok(sink),
                Ok(None) => Err(format!(
                    "sink format `{format}` is not supported; use delta, parquet, csv or json, or create_sink_with(name, your Sink)"
                )),
                Err(e) => Err(e.to_string()),
            },
        };
        match sink {
            Ok(sink) => self.sink_at(name, sink, location),
            Err(message) => {
                let mut this = self;
                this.def.invalid.push((name, message));
                this
            }
        }
    }

    /// Adds a sink of your own (see [`lakeflow_core::Sink`]).
    #[track_caller]
    pub fn create_sink_with(
        self,
        name: impl Into<String>,
        sink: Arc<dyn lakeflow_core::Sink>,
    ) -> Self {
        self.sink_at(name.into(), sink, SourceLocation::caller())
    }

    fn sink_at(
        mut self,
        name: String,
        sink: Arc<dyn lakeflow_core::Sink>,
        location: SourceLocation,
    ) -> Self {
        let mut def = Dataset::with_query(DatasetKind::Sink, name, None, location).def;
        def.sink = Some(sink);
        self.def.datasets.push(def);
        self
    }

    /// Adds a dataset with options (comment, partition columns, table properties, async query).
    pub fn dataset(mut self, dataset: Dataset) -> Self {
        self.def.datasets.push(dataset.def);
        self
    }

    /// Registers a table outside the pipeline that `read(name)` and `sql(...)` can read.
    ///
    /// ```
    /// use lakeflow::prelude::*;
    ///
    /// let pipeline = Pipeline::builder()
    ///     .external_table("raw_orders", SourceSpec::csv("data/orders.csv"))
    ///     .materialized_view("orders", || sql("SELECT * FROM raw_orders"));
    /// # let _ = pipeline;
    /// ```
    pub fn external_table(
        mut self,
        name: impl Into<String>,
        table: impl Into<ExternalTable>,
    ) -> Self {
        self.def.externals.insert(name.into(), table.into());
        self
    }

    /// Stores tables under `location`: a directory path or a URL. Default: `./lakeflow-data`.
    pub fn storage(mut self, location: impl Into<String>) -> Self {
        self.storage = StorageChoice::Location(location.into());
        self
    }

    /// Object-store options for the storage location and the files the pipeline reads
    /// (`aws_endpoint`, `aws_region`, `azure_storage_account_name`, `google_service_account`,
    /// ... as `object_store` names them). They add to, and win over, the standard environment
    /// variables (`AWS_*`, `AZURE_*`, `GOOGLE_*`), which are enough on their own. Values
    /// never appear in messages or the event log.
    ///
    /// ```
    /// use lakeflow::prelude::*;
    ///
    /// let pipeline = Pipeline::builder()
    ///     .storage("s3://lake/pipelines/sales")
    ///     .storage_options([("aws_endpoint", "http://127.0.0.1:9000"), ("aws_allow_http", "true")]);
    /// # let _ = pipeline;
    /// ```
    pub fn storage_options<I, K, V>(mut self, options: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        self.storage_options
            .extend(options.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// How long this run's lease on its storage lives without a heartbeat (default one
    /// minute): a run that crashed on another machine blocks the storage at most this long
    /// (one on this machine frees it at once).
    pub fn lease_ttl(mut self, ttl: std::time::Duration) -> Self {
        self.lease.ttl = ttl;
        self
    }

    /// Waits for another run that holds the storage to finish, instead of failing at once
    /// with [`Error::StorageBusy`].
    pub fn wait_for_storage(mut self, wait: bool) -> Self {
        self.lease.wait = wait;
        self
    }

    /// How tables are maintained after each run (see [`lakeflow_core::maintenance`]): by
    /// default a table the run wrote is compacted once it holds 50 small files, and every
    /// table is compacted and vacuumed once a day. `MaintenanceOptions { after_runs: false,
    /// .. }` leaves maintenance to [`Pipeline::maintain`].
    pub fn maintenance(mut self, options: MaintenanceOptions) -> Self {
        self.options.maintenance = options;
        self
    }

    /// Stores tables in a storage backend of your own (see [`lakeflow_core::MemoryStorage`]).
    pub fn storage_backend(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = StorageChoice::Backend(storage);
        self
    }

    /// Runs flows on another engine (default: DataFusion in this process). Its sessions
    /// decide the SQL dialect and functions: [`Pipeline::sql_dialect`] and
    /// [`Pipeline::udf`] set those of the in-process engine only.
    pub fn engine(mut self, engine: Arc<dyn Engine>) -> Self {
        self.engine = engine;
        self.local = None;
        self
    }

    /// Runs flows on the Ballista cluster whose scheduler is at `url` (`df://host:50050`),
    /// planning them with this pipeline's dialect and functions; see
    /// [`lakeflow_ballista::BallistaEngine`].
    #[cfg(feature = "ballista")]
    pub fn cluster(self, url: impl Into<String>) -> Self {
        let local = self.local.clone().unwrap_or_default();
        let engine = lakeflow_ballista::BallistaEngine::remote(url).with_local_engine(local);
        self.engine(Arc::new(engine))
    }

    /// How SQL in this pipeline is read: Spark SQL (the default, non-ANSI as Databricks
    /// runs it), Spark SQL in ANSI mode, or DataFusion's own dialect. It applies to
    /// `sql(..)`, SQL expectations, AUTO CDC conditions and SQL pipeline files alike.
    ///
    /// ```
    /// use lakeflow::prelude::*;
    /// use lakeflow::SqlDialect;
    ///
    /// let pipeline = Pipeline::builder()
    ///     .sql_dialect(SqlDialect::DataFusion)
    ///     .materialized_view("one", || sql("SELECT 1 AS n"));
    /// # let _ = pipeline;
    /// ```
    pub fn sql_dialect(mut self, dialect: SqlDialect) -> Self {
        if let Some(local) = self.local.take() {
            let local = local.with_dialect(dialect);
            self.engine = Arc::new(local.clone());
            self.local = Some(local);
        }
        self
    }

    /// Registers a scalar function of your own (a model UDF, a vendor function such as
    /// `ai_classify`) that `sql(..)`, expectations and SQL files can call by its name.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use lakeflow::prelude::*;
    /// use datafusion::arrow::datatypes::DataType;
    /// use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
    ///
    /// // ai_classify(text): a stand-in model that labels every text "other".
    /// let classify = create_udf(
    ///     "ai_classify",
    ///     vec![DataType::Utf8],
    ///     DataType::Utf8,
    ///     Volatility::Immutable,
    ///     Arc::new(|_args: &[ColumnarValue]| {
    ///         Ok(ColumnarValue::Scalar(datafusion::common::ScalarValue::from("other")))
    ///     }),
    /// );
    /// let pipeline = Pipeline::builder()
    ///     .udf(classify)
    ///     .materialized_view("labels", || sql("SELECT ai_classify('hello') AS label"));
    /// # let _ = pipeline;
    /// ```
    pub fn udf(self, udf: datafusion::logical_expr::ScalarUDF) -> Self {
        self.with_functions(|f| f.scalar(udf))
    }

    /// Registers an aggregate function of your own for SQL (see [`Pipeline::udf`]).
    pub fn udaf(self, udaf: datafusion::logical_expr::AggregateUDF) -> Self {
        self.with_functions(|f| f.aggregate(udaf))
    }

    fn with_functions(mut self, add: impl FnOnce(&mut Functions)) -> Self {
        if let Some(local) = self.local.take() {
            let mut functions = local.functions().clone();
            add(&mut functions);
            let local = local.with_functions(functions);
            self.engine = Arc::new(local.clone());
            self.local = Some(local);
        }
        self
    }

    /// Runs at most `n` flows at the same time (default: the number of cores, at least 2).
    pub fn max_concurrent_flows(mut self, n: usize) -> Self {
        self.options.max_concurrent_flows = n.max(1);
        self
    }

    /// Names the pipeline in its event log (default `pipeline`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.options.pipeline_name = name.into();
        self
    }

    /// How the run shows progress (default: bars on a terminal, timestamped lines otherwise).
    pub fn progress(mut self, mode: ProgressMode) -> Self {
        self.progress = mode;
        self
    }

    /// Tells `observer` about every event of each run as it happens.
    pub fn observe(mut self, observer: Arc<dyn Observer>) -> Self {
        self.options.observers.push(observer);
        self
    }

    /// Runs only these datasets (and those given to [`Pipeline::full_refresh`]); the others
    /// are reported EXCLUDED and keep their tables.
    pub fn refresh<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options.refresh = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// Resets these streaming tables — a new checkpoint, the table replaced by a recompute
    /// over all input — and runs them. A table with the property
    /// `pipelines.reset.allowed = false` is not reset.
    pub fn full_refresh<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options.full_refresh = names.into_iter().map(Into::into).collect();
        self
    }

    /// Resets every streaming table (see [`Pipeline::full_refresh`]).
    pub fn full_refresh_all(mut self) -> Self {
        self.options.full_refresh_all = true;
        self
    }

    /// The names of the defined datasets, in definition order.
    pub fn dataset_names(&self) -> Vec<&str> {
        self.def.datasets.iter().map(|d| d.name.as_str()).collect()
    }

    /// The definitions, for tools that transform a pipeline (such as `lakeflow::testing`).
    pub fn definition(&self) -> &PipelineDef {
        &self.def
    }

    /// Replaces the definitions, keeping storage and engine settings.
    pub fn with_definition(mut self, def: PipelineDef) -> Self {
        self.def = def;
        self
    }

    /// The storage, and the engine that reads files from the same stores.
    fn open(&self) -> Result<(Arc<dyn Storage>, Arc<dyn Engine>)> {
        match &self.storage {
            StorageChoice::Location(location) => {
                let storage = DeltaStorage::open(location)?
                    .with_options(self.storage_options.clone())
                    .with_portable_scans(self.engine.portable_scans() && self.local.is_none());
                let engine = match &self.local {
                    Some(local) => {
                        Arc::new(local.clone().with_object_stores(storage.object_stores()))
                            as Arc<dyn Engine>
                    }
                    None => self
                        .engine
                        .reading_through(storage.object_stores())
                        .unwrap_or_else(|| self.engine.clone()),
                };
                Ok((Arc::new(storage), engine))
            }
            StorageChoice::Backend(storage) => Ok((storage.clone(), self.engine.clone())),
        }
    }

    fn open_storage(&self) -> Result<Arc<dyn Storage>> {
        Ok(self.open()?.0)
    }

    /// Resolves every query and builds the dependency graph without reading or writing data:
    /// cycles, missing or duplicate datasets and columns that do not exist are all reported.
    pub async fn dry_run(&self) -> Result<DatasetGraph> {
        let (storage, engine) = self.open()?;
        self.def.plan(engine.as_ref(), storage).await
    }

    /// Plans the pipeline and runs every flow, independent ones at the same time.
    ///
    /// When a flow fails its table is left as it was, its downstream datasets are SKIPPED, the
    /// rest still runs, and the result is [`crate::Error::RunFailed`] with the full report.
    ///
    /// A run holds a lease on its storage while it writes: a second run on the same storage
    /// fails at once with [`Error::StorageBusy`] (or waits, see [`Pipeline::wait_for_storage`]).
    pub async fn run(&self) -> Result<RunReport> {
        let mut options = self.options.clone();
        options.observers.extend(self.progress.observer());
        let (storage, engine) = self.open()?;
        let lease = Arc::new(Lease::acquire(storage.clone(), self.lease).await?);
        let storage = lease.guard(storage);
        let (graph, result) = self
            .def
            .run_planned(engine.as_ref(), storage.clone(), &options)
            .await;
        let report = match &result {
            Ok(report) => Some(report),
            Err(Error::RunFailed { report }) => Some(report.as_ref()),
            Err(_) => None,
        };
        // The page is a view of the run, never a reason to fail it.
        if let (Some(graph), Some(report)) = (graph, report)
            && let Err(e) = crate::graph_page::write(storage.as_ref(), &graph, report).await
        {
            eprintln!(
                "warning: could not write {}: {e}",
                crate::graph_page::GRAPH_PAGE
            );
        }
        drop(storage);
        if let Err(e) = lease.release().await {
            // Left held, the lease expires on its own; the run's result stands.
            eprintln!("warning: could not release the lease on the storage: {e}");
        }
        result
    }

    /// Maintains tables now, in full: small files compacted (Delta `OPTIMIZE`, whose commit
    /// changes no rows, so streams reading the table see nothing twice), then files older than
    /// each table's `delta.deletedFileRetentionDuration` (7 days unless set) that no version
    /// inside it needs deleted (`VACUUM`). `tables` names tables of the pipeline; `None`
    /// maintains all of them and the event log. Like a run, it holds the storage's lease.
    pub async fn maintain(&self, tables: Option<&[String]>) -> Result<Vec<TableMaintenance>> {
        let mut options = self.options.clone();
        options.observers.extend(self.progress.observer());
        let (storage, _) = self.open()?;
        let lease = Arc::new(Lease::acquire(storage.clone(), self.lease).await?);
        let guarded = lease.guard(storage);
        let result = self.def.maintain(guarded.clone(), &options, tables).await;
        drop(guarded);
        if let Err(e) = lease.release().await {
            eprintln!("warning: could not release the lease on the storage: {e}");
        }
        result
    }

    /// The event log of every run so far, as a DataFrame: one row per event, newest last.
    /// See [`lakeflow_core::event_log`] for the columns.
    pub async fn event_log(&self) -> Result<DataFrame> {
        let storage = self.open_storage()?;
        let table = storage
            .table(EVENT_LOG_TABLE)
            .await?
            .ok_or_else(|| Error::Storage {
                location: storage.table_location(EVENT_LOG_TABLE),
                message: "there is no event log yet: run the pipeline first".into(),
                source: None,
            })?;
        Ok(self.engine.session().read_table(table)?)
    }

    /// Runs a SQL query over the event log, which it names `event_log` and, as Databricks'
    /// documentation does, `event_log_raw`. The query is read in the pipeline's dialect
    /// (Spark SQL unless [`Pipeline::sql_dialect`] says otherwise) and may begin with
    /// `CREATE TEMP VIEW .. AS ..;` statements that the query reads, so the monitoring
    /// queries of Databricks' event log documentation run as they are written. See
    /// [`lakeflow_core::event_log`] for the columns and the `details` of each event type.
    ///
    /// The expectation results of the last run, as Databricks documents the query:
    ///
    /// ```sql
    /// CREATE OR REPLACE TEMP VIEW latest_update AS
    /// SELECT origin.update_id AS id FROM event_log_raw
    /// WHERE event_type = 'create_update' ORDER BY timestamp DESC LIMIT 1;
    ///
    /// SELECT row_expectations.dataset AS dataset, row_expectations.name AS expectation,
    ///   SUM(row_expectations.passed_records) AS passing_records,
    ///   SUM(row_expectations.failed_records) AS failing_records
    /// FROM (SELECT explode(from_json(details:flow_progress:data_quality:expectations,
    ///         "array<struct<name: string, dataset: string, passed_records: int, failed_records: int>>"
    ///       )) row_expectations
    ///       FROM event_log_raw, latest_update
    ///       WHERE event_type = 'flow_progress' AND origin.update_id = latest_update.id)
    /// GROUP BY row_expectations.dataset, row_expectations.name
    /// ```
    pub async fn event_log_sql(&self, query: &str) -> Result<DataFrame> {
        let log = self.event_log().await?;
        let statements: Vec<&str> = crate::project::sql::statements(query).collect();
        lakeflow_core::event_log_sql::query(
            &self.engine.session(),
            log.logical_plan().clone(),
            &statements,
        )
        .await
    }
}

/// One dataset for [`Pipeline::dataset`], with options.
///
/// ```
/// use lakeflow::prelude::*;
///
/// let orders = Dataset::materialized_view("orders", || sql("SELECT 1 AS id, 'FR' AS country"))
///     .comment("All orders")
///     .partition_cols(["country"])
///     .table_property("delta.appendOnly", "false");
/// let pipeline = Pipeline::builder().dataset(orders);
/// # let _ = pipeline;
/// ```
#[derive(Debug, Clone)]
pub struct Dataset {
    def: DatasetDef,
}

impl Dataset {
    /// Marks a view as one Spark would persist (`CREATE VIEW`, see
    /// [`DatasetDef::persisted`]).
    pub(crate) fn persisted(mut self) -> Self {
        self.def.persisted = true;
        self
    }

    /// A dataset of `kind` with a plain query function.
    #[track_caller]
    pub fn new<F>(kind: DatasetKind, name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        // The call happens when the future is first polled, inside lakeflow's planning scope.
        let query = Arc::new(query);
        let query: Query = Arc::new(move || {
            let query = query.clone();
            Box::pin(async move { query() }) as PlanFuture
        });
        Dataset::with_query(kind, name.into(), query, SourceLocation::caller())
    }

    /// A dataset of `kind` with an `async` query function.
    #[track_caller]
    pub fn new_async<F, Fut>(kind: DatasetKind, name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Plan> + Send + 'static,
    {
        let query: Query = Arc::new(move || Box::pin(query()) as PlanFuture);
        Dataset::with_query(kind, name.into(), query, SourceLocation::caller())
    }

    /// A `#[table]`.
    #[track_caller]
    pub fn table<F>(name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        Dataset::new(DatasetKind::Table, name, query)
    }

    /// A materialized view.
    #[track_caller]
    pub fn materialized_view<F>(name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        Dataset::new(DatasetKind::MaterializedView, name, query)
    }

    /// A streaming table.
    #[track_caller]
    pub fn streaming_table<F>(name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        Dataset::new(DatasetKind::StreamingTable, name, query)
    }

    /// A temporary view.
    #[track_caller]
    pub fn temporary_view<F>(name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        Dataset::new(DatasetKind::TemporaryView, name, query)
    }

    /// A streaming table without a query (Spark's `create_streaming_table`): append flows
    /// ([`Dataset::append_flow`]) write it. Its schema is the union of its flows' columns
    /// unless given with [`Dataset::schema`]; options and expectations apply to every flow.
    #[track_caller]
    pub fn create_streaming_table(name: impl Into<String>) -> Self {
        Dataset::with_query(
            DatasetKind::StreamingTable,
            name.into(),
            None,
            SourceLocation::caller(),
        )
    }

    /// An append flow named `name` into the streaming table `target`: each run appends the new
    /// rows of its streaming query, exactly once, with a checkpoint of its own. Rules added
    /// to the flow apply to its rows besides the target's own.
    ///
    /// ```
    /// use lakeflow::prelude::*;
    ///
    /// let backfill = Dataset::append_flow("orders", "orders_backfill", || {
    ///     read_parquet("archive/orders.parquet")
    /// })
    /// .once();
    /// let pipeline = Pipeline::builder()
    ///     .create_streaming_table("orders")
    ///     .append_flow("orders", "orders_live", || read_stream_files("landing/", csv()))
    ///     .dataset(backfill);
    /// # let _ = pipeline;
    /// ```
    #[track_caller]
    pub fn append_flow<F>(target: impl Into<String>, name: impl Into<String>, query: F) -> Self
    where
        F: Fn() -> Plan + Send + Sync + 'static,
    {
        let mut flow = Dataset::new(DatasetKind::AppendFlow, name, query);
        flow.def.target = Some(target.into());
        flow
    }

    /// Makes an append flow run its query a single time, reading its inputs whole (a
    /// backfill); it runs again only after a full refresh of its target.
    pub fn once(mut self) -> Self {
        self.def.once = true;
        self
    }

    /// The schema of a streaming table made with [`Dataset::create_streaming_table`]; its
    /// flows' columns must be among these (the others are NULL in their rows).
    pub fn schema(mut self, schema: datafusion::arrow::datatypes::SchemaRef) -> Self {
        self.def.schema = Some(schema);
        self
    }

    fn with_query(
        kind: DatasetKind,
        name: String,
        query: impl Into<Option<Query>>,
        location: SourceLocation,
    ) -> Self {
        Dataset {
            def: DatasetDef {
                name,
                kind,
                comment: None,
                partition_cols: Vec::new(),
                table_properties: BTreeMap::new(),
                expectations: Vec::new(),
                quarantine: None,
                location,
                query: query.into(),
                target: None,
                once: false,
                schema: None,
                cdc: None,
                sink: None,
                persisted: false,
                watermark: None,
                sql_conf: BTreeMap::new(),
            },
        }
    }

    /// A description stored with the table.
    pub fn comment(mut self, comment: impl Into<String>) -> Self {
        self.def.comment = Some(comment.into());
        self
    }

    /// Columns to partition the stored table by.
    pub fn partition_cols<I, S>(mut self, cols: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.def.partition_cols = cols.into_iter().map(Into::into).collect();
        self
    }

    /// A rule that keeps violating rows and counts them (`#[expect]`). The rule passes only
    /// when `expr` is TRUE; NULL is a violation.
    pub fn expect(self, name: impl Into<String>, expr: impl Into<String>) -> Self {
        self.expectation(Expectation::sql(name, expr, ExpectAction::Warn))
    }

    /// A rule that drops violating rows and counts them (`#[expect_or_drop]`).
    pub fn expect_or_drop(self, name: impl Into<String>, expr: impl Into<String>) -> Self {
        self.expectation(Expectation::sql(name, expr, ExpectAction::Drop))
    }

    /// A rule that stops the flow on the first violating row (`#[expect_or_fail]`).
    pub fn expect_or_fail(self, name: impl Into<String>, expr: impl Into<String>) -> Self {
        self.expectation(Expectation::sql(name, expr, ExpectAction::Fail))
    }

    /// A uniqueness rule over `columns` with the given action (`#[expect_unique*]`).
    pub fn expect_unique<I, S>(
        self,
        name: impl Into<String>,
        columns: I,
        action: ExpectAction,
    ) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.expectation(Expectation::unique(name, columns, action))
    }

    /// Adds any expectation.
    pub fn expectation(mut self, expectation: Expectation) -> Self {
        self.def.expectations.push(expectation);
        self
    }

    /// Writes the rows drop rules remove to table `<name>_quarantine`, with a
    /// `failed_expectations` column listing the rules each row failed.
    pub fn quarantine(mut self) -> Self {
        self.def.quarantine = Some(format!("{}_quarantine", self.def.name));
        self
    }

    /// Like [`Dataset::quarantine`], into a table of the given name.
    pub fn quarantine_to(mut self, table: impl Into<String>) -> Self {
        self.def.quarantine = Some(table.into());
        self
    }

    /// A property stored in the table's metadata.
    pub fn table_property(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.def.table_properties.insert(key.into(), value.into());
        self
    }

    /// A SQL conf of this dataset's flow (what `SET key = value` above it sets in a SQL file).
    /// A flow that reads temporary views has their confs too; two values of one key are an
    /// error (Spark's `DUPLICATE_FLOW_SQL_CONF`), and a view's
    /// `spark.sql.session.timeZone` applies to the query that reads it.
    pub fn sql_conf(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.def.sql_conf.insert(key.into(), value.into());
        self
    }

    /// The watermark of a streaming table that aggregates time windows of its stream
    /// (Spark's `WATERMARK column DELAY OF INTERVAL ..`): rows may arrive up to `delay` later
    /// than the latest `column` value seen. Each window (`window(column, '5 minutes')` in the
    /// query's grouping) is appended once, in the run whose watermark passes its end; rows
    /// that arrive for a window already appended are dropped.
    pub fn watermark(mut self, column: impl Into<String>, delay: std::time::Duration) -> Self {
        self.def.watermark = Some(lakeflow_core::dataset::Watermark {
            column: column.into(),
            delay_micros: i64::try_from(delay.as_micros()).unwrap_or(i64::MAX),
        });
        self
    }
}
