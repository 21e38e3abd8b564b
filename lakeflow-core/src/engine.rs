//! The `Engine` seam: what executes a flow's plan.
//!
//! [`DataFusionEngine`] runs plans in this process; `lakeflow-ballista`'s engine runs them on
//! a Ballista cluster. Nothing outside this module assumes the plan runs in-process, only
//! that it yields partition streams of record batches (and, for an engine that ships plans,
//! that tables are read as file lists: [`Engine::portable_scans`]).
//!
//! The SQL dialect is a setting of the engine's sessions: [`SqlDialect::Spark`] (the default)
//! puts `lakeflow_sql::SparkSql` in their config and registers Spark's functions, and every
//! `sql(..)`, expectation and SQL file is then planned as Spark SQL.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::dataframe::DataFrame;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::execution::{FunctionRegistry, SendableRecordBatchStream};
use datafusion::logical_expr::{AggregateUDF, LogicalPlan, ScalarUDF, WindowUDF};
use datafusion::prelude::{SessionConfig, SessionContext};
use lakeflow_sql::SparkSql;

use crate::error::Result;
use crate::expectations::Checker;
use crate::storage::FileTarget;

/// Executes plans. Keep it small: sessions for planning, and execution to streams.
#[async_trait]
pub trait Engine: Debug + Send + Sync {
    /// A session whose functions and configuration query functions are planned with.
    fn session(&self) -> SessionContext;

    /// Executes a plan, returning one stream per output partition.
    async fn execute(&self, plan: LogicalPlan) -> Result<Vec<SendableRecordBatchStream>>;

    /// Whether the plans it executes must read tables as explicit lists of files (a plan an
    /// engine ships to other processes cannot hold a storage library's own scan). The
    /// pipeline's storage then hands out such tables. `false` by default.
    fn portable_scans(&self) -> bool {
        false
    }

    /// Whether this engine writes `plan`'s rows where it computes them (into files a storage
    /// commits, [`Engine::execute_into_files`]), so that the rows never come back to this
    /// process. `false` by default: the flow writes the streams [`Engine::execute`] returns.
    fn writes_files(&self, plan: &LogicalPlan) -> bool {
        let _ = plan;
        false
    }

    /// Executes `plan` (the query's columns, then one boolean column per rule, as `checker`
    /// made it): every task checks its rows with a checker rebuilt from [`Checker::spec`] and
    /// writes what is kept at `target`, and the rows drop rules removed at `quarantine` when
    /// the checker quarantines and a target is given (none: they are left out). The tasks'
    /// counts are added to `checker`; returns the files written, as the storage's file writer
    /// described them, and the rows they hold. Only called when [`Engine::writes_files`] said
    /// so.
    async fn execute_into_files(
        &self,
        plan: LogicalPlan,
        checker: &Checker,
        target: &FileTarget,
        quarantine: Option<&FileTarget>,
    ) -> Result<WrittenFiles> {
        let _ = (plan, checker, quarantine);
        Err(crate::Error::Internal(format!(
            "this engine does not write files (`{}`)",
            target.table
        )))
    }

    /// Executes `plan` as [`Engine::execute_into_files`] does, every task writing what it
    /// keeps as its part of `batch` of a file sink ([`crate::FileSink::write_part`]; the
    /// batch's old files are cleared first). Returns the rows written. Only called when
    /// [`Engine::writes_files`] said so.
    async fn execute_into_sink(
        &self,
        plan: LogicalPlan,
        checker: &Checker,
        batch: &crate::SinkBatch,
    ) -> Result<u64> {
        let _ = (plan, checker);
        Err(crate::Error::Internal(format!(
            "this engine does not write sink files (`{}`)",
            batch.writer
        )))
    }

    /// This engine reading files in this process through `stores` (the pipeline storage's
    /// object stores, with its options), or `None` to keep it as it is (the default).
    fn reading_through(&self, stores: Arc<dyn ObjectStoreRegistry>) -> Option<Arc<dyn Engine>> {
        let _ = stores;
        None
    }
}

/// What [`Engine::execute_into_files`] wrote.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WrittenFiles {
    /// The files, as the storage's file writer described them (for
    /// [`crate::Storage::commit_files`]).
    pub files: Vec<serde_json::Value>,
    /// The rows the files hold.
    pub rows: u64,
    /// The files of the quarantine table, as `files`.
    pub quarantined: Vec<serde_json::Value>,
}

/// How SQL text in a pipeline is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqlDialect {
    /// Spark SQL, as Spark and Databricks run it (the default): Spark's functions, literals,
    /// case-insensitive names, joins and non-ANSI casts, unless `ansi` is set.
    Spark {
        /// `spark.sql.ansi.enabled`: failed casts and division by zero are errors.
        ansi: bool,
    },
    /// DataFusion's own SQL dialect.
    DataFusion,
}

impl Default for SqlDialect {
    fn default() -> Self {
        SqlDialect::Spark { ansi: false }
    }
}

/// Functions a pipeline registers for its SQL (model UDFs, vendor functions).
#[derive(Debug, Clone, Default)]
pub struct Functions {
    scalar: Vec<Arc<ScalarUDF>>,
    aggregate: Vec<Arc<AggregateUDF>>,
    window: Vec<Arc<WindowUDF>>,
}

impl Functions {
    /// Adds a scalar function.
    pub fn scalar(&mut self, udf: ScalarUDF) {
        self.scalar.push(Arc::new(udf));
    }

    /// Adds an aggregate function.
    pub fn aggregate(&mut self, udaf: AggregateUDF) {
        self.aggregate.push(Arc::new(udaf));
    }

    /// Adds a window function.
    pub fn window(&mut self, udwf: WindowUDF) {
        self.window.push(Arc::new(udwf));
    }

    /// The names of the functions added.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.scalar
            .iter()
            .map(|f| f.name())
            .chain(self.aggregate.iter().map(|f| f.name()))
            .chain(self.window.iter().map(|f| f.name()))
    }

    /// Whether none were added.
    pub fn is_empty(&self) -> bool {
        self.scalar.is_empty() && self.aggregate.is_empty() && self.window.is_empty()
    }

    /// `state` with these functions registered.
    pub fn registered(
        &self,
        mut state: datafusion::execution::SessionState,
    ) -> Result<datafusion::execution::SessionState> {
        self.register(&mut state)?;
        Ok(state)
    }

    fn register(&self, registry: &mut dyn FunctionRegistry) -> Result<()> {
        for f in &self.scalar {
            registry.register_udf(f.clone())?;
        }
        for f in &self.aggregate {
            registry.register_udaf(f.clone())?;
        }
        for f in &self.window {
            registry.register_udwf(f.clone())?;
        }
        Ok(())
    }
}

/// A session context on `runtime` with `dialect` configured, its functions and then
/// `functions` registered.
pub fn session_with(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    dialect: SqlDialect,
    functions: &Functions,
) -> Result<SessionContext> {
    let ctx = match dialect {
        SqlDialect::Spark { ansi } => SparkSql::new()
            .with_ansi(ansi)
            .context_with_runtime(config, runtime)?,
        SqlDialect::DataFusion => SessionContext::new_with_config_rt(config, runtime),
    };
    if functions.is_empty() {
        return Ok(ctx);
    }
    let mut state = ctx.state();
    functions.register(&mut state)?;
    Ok(SessionContext::new_with_state(state))
}

/// Runs plans with DataFusion in this process.
#[derive(Debug, Clone)]
pub struct DataFusionEngine {
    config: SessionConfig,
    /// Where sessions find object stores; each session gets a runtime of its own over it.
    stores: Option<Arc<dyn ObjectStoreRegistry>>,
    dialect: SqlDialect,
    functions: Functions,
}

impl Default for DataFusionEngine {
    fn default() -> Self {
        let config = SessionConfig::new()
            .with_information_schema(false)
            .with_batch_size(8192);
        DataFusionEngine {
            config,
            stores: None,
            dialect: SqlDialect::default(),
            functions: Functions::default(),
        }
    }
}

impl DataFusionEngine {
    /// An engine with DataFusion's defaults (one partition per core) and Spark SQL.
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine with the given session configuration (and Spark SQL).
    pub fn with_config(config: SessionConfig) -> Self {
        DataFusionEngine {
            config,
            ..Self::default()
        }
    }

    /// This engine reading SQL in `dialect`.
    pub fn with_dialect(mut self, dialect: SqlDialect) -> Self {
        self.dialect = dialect;
        self
    }

    /// This engine with `functions` registered in its sessions.
    pub fn with_functions(mut self, functions: Functions) -> Self {
        self.functions = functions;
        self
    }

    /// This engine reading files through `stores` (object stores made on first use for
    /// `s3://`, `az://`, `gs://` URLs, with the pipeline's storage options), the default
    /// runtime settings otherwise.
    pub fn with_object_stores(mut self, stores: Arc<dyn ObjectStoreRegistry>) -> Self {
        self.stores = Some(stores);
        self
    }

    /// The functions registered in its sessions besides Spark's.
    pub fn functions(&self) -> &Functions {
        &self.functions
    }

    /// The dialect its sessions read SQL in.
    pub fn dialect(&self) -> SqlDialect {
        self.dialect
    }
}

#[async_trait]
impl Engine for DataFusionEngine {
    fn session(&self) -> SessionContext {
        let mut runtime = RuntimeEnvBuilder::new();
        if let Some(stores) = &self.stores {
            runtime = runtime.with_object_store_registry(stores.clone());
        }
        let runtime = runtime
            .build_arc()
            .unwrap_or_else(|_| Arc::new(RuntimeEnv::default()));
        session_with(self.config.clone(), runtime, self.dialect, &self.functions)
            .unwrap_or_else(|_| SessionContext::new_with_config(self.config.clone()))
    }

    async fn execute(&self, plan: LogicalPlan) -> Result<Vec<SendableRecordBatchStream>> {
        let df = DataFrame::new(self.session().state(), plan);
        Ok(df.execute_stream_partitioned().await?)
    }
}
