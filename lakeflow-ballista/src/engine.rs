//! [`BallistaEngine`]: flows on a Ballista cluster.

use std::sync::Arc;

use async_trait::async_trait;
use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::dataframe::DataFrame;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::source_as_provider;
use datafusion::execution::object_store::ObjectStoreRegistry;
use datafusion::execution::{SendableRecordBatchStream, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use lakeflow_core::Checker;
use lakeflow_core::engine::{DataFusionEngine, Engine, Functions, WrittenFiles};
use lakeflow_core::ingest::FileBatchTable;
use lakeflow_core::storage::FileTarget;
use lakeflow_core::{Error, Result, SinkBatch};
use lakeflow_delta::FileListTable;
use lakeflow_sql::SparkSql;
use lakeflow_sql::functions::sql_function::SqlFunction;
use tokio::sync::OnceCell;

use crate::codec::LakeflowLogicalCodec;
use crate::write::{WriteNode, WriteSpec};

/// Where the cluster is.
#[derive(Debug, Clone)]
enum Cluster {
    /// A running scheduler, `df://host:port`.
    Remote(String),
    /// A scheduler and an executor this process starts on first use.
    Standalone {
        tasks: usize,
        started: Arc<OnceCell<String>>,
    },
}

/// Runs each flow's plan on a Ballista cluster; plans are made (and plans that cannot be
/// shipped are run) by an in-process engine with the same dialect and functions.
#[derive(Debug, Clone)]
pub struct BallistaEngine {
    cluster: Cluster,
    local: DataFusionEngine,
}

impl BallistaEngine {
    /// The cluster whose scheduler is at `url` (`df://host:50050`; the port defaults to 50050).
    pub fn remote(url: impl Into<String>) -> Self {
        BallistaEngine {
            cluster: Cluster::Remote(url.into()),
            local: DataFusionEngine::new(),
        }
    }

    /// A scheduler and an executor in this process, started on first use: the same plans,
    /// stages and wire as a cluster, for tests.
    pub fn standalone() -> Self {
        BallistaEngine {
            cluster: Cluster::Standalone {
                tasks: 2,
                started: Arc::default(),
            },
            local: DataFusionEngine::new(),
        }
    }

    /// This engine planning (and running what cannot be shipped) with `local`: its dialect and
    /// functions.
    pub fn with_local_engine(mut self, local: DataFusionEngine) -> Self {
        self.local = local;
        self
    }

    /// This engine calling `functions` too (user-defined functions). They must be known on
    /// the cluster as well: a standalone cluster gets them; a remote one runs lakeflow's
    /// functions only, so plans that call others fail there, naming the function.
    pub fn with_functions(mut self, functions: Functions) -> Self {
        self.local = self.local.with_functions(functions);
        self
    }

    /// The scheduler's URL, starting the standalone cluster if this is one.
    async fn scheduler(&self) -> Result<String> {
        match &self.cluster {
            Cluster::Remote(url) => Ok(url.clone()),
            Cluster::Standalone { tasks, started } => started
                .get_or_try_init(|| async {
                    let address =
                        crate::cluster::start_standalone(self.local.functions(), *tasks).await?;
                    Ok::<_, Error>(format!("df://localhost:{}", address.port()))
                })
                .await
                .cloned(),
        }
    }

    /// A client session of the cluster, with lakeflow's codec and functions.
    async fn client(&self) -> Result<SessionContext> {
        let url = self.scheduler().await?;
        let config = crate::cluster::ballista_config()
            .with_ballista_logical_extension_codec(Arc::new(LakeflowLogicalCodec::default()))
            .with_ballista_job_name("lakeflow");
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .build();
        let ctx = SessionContext::remote_with_state(&url, state)
            .await
            .map_err(|e| Error::Engine(format!("the Ballista scheduler at {url}: {e}")))?;
        // Ballista's session replaces the functions of the state it is given.
        let mut state = ctx.state();
        SparkSql::register_functions(&mut state)?;
        let state = self.local.functions().registered(state)?;
        Ok(SessionContext::new_with_state(state))
    }
}

/// Whether every table `plan` reads can be shipped: file lists and listing tables (and views
/// over them); rows in memory and lakeflow's own sources cannot. A landing-file batch read
/// with DROPMALFORMED ships when `malformed` says its counts come back.
fn ships(plan: &LogicalPlan, malformed: bool) -> Option<String> {
    let mut blocker = None;
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                let portable = source_as_provider(&scan.source).is_ok_and(|p| {
                    p.is::<FileListTable>()
                        || p.is::<ListingTable>()
                        || p.downcast_ref::<FileBatchTable>()
                            .is_some_and(|t| malformed || t.ships())
                        || p.downcast_ref::<datafusion::catalog::view::ViewTable>()
                            .is_some_and(|v| ships(v.logical_plan(), false).is_none())
                });
                if !portable {
                    blocker = Some(format!("`{}`", scan.table_name));
                }
            }
            LogicalPlan::Extension(e) => blocker = Some(e.node.name().to_string()),
            _ => {}
        }
        Ok(if blocker.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    blocker
}

/// `checker`'s description for the tasks of a write of `what`.
fn checks(checker: &Checker, what: &str) -> Result<String> {
    let checks = checker.spec().ok_or_else(|| {
        Error::Internal(format!(
            "the checks of `{what}` cannot be made on the cluster"
        ))
    })?;
    Ok(checks.to_string())
}

/// The landing-file batches `plan` reads.
fn file_batches(plan: &LogicalPlan) -> Vec<FileBatchTable> {
    let mut found = Vec::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(table) = provider.downcast_ref::<FileBatchTable>()
        {
            found.push(table.clone());
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Whether every landing-file batch `plan` reads with DROPMALFORMED is reached from its root
/// through projections and filters only: its scan then runs in the tasks that write the
/// table (no stage between them), which tell what it left out.
fn malformed_counts_come_back(plan: &LogicalPlan) -> bool {
    let mut subqueries = false;
    let _ = plan.apply_subqueries(|_| {
        subqueries = true;
        Ok(TreeNodeRecursion::Stop)
    });
    match plan {
        LogicalPlan::Projection(_) | LogicalPlan::Filter(_) | LogicalPlan::SubqueryAlias(_)
            if !subqueries =>
        {
            plan.inputs().into_iter().all(malformed_counts_come_back)
        }
        LogicalPlan::TableScan(_) => true,
        _ => file_batches(plan).iter().all(FileBatchTable::ships),
    }
}

/// The first of `functions` that `plan` calls, if any; SQL functions (`CREATE FUNCTION ..
/// RETURN expr`) do not count, as the codec ships them by their definition.
fn calls_one_of(plan: &LogicalPlan, functions: &Functions) -> Option<String> {
    let names: std::collections::HashSet<&str> = functions.names().collect();
    if names.is_empty() {
        return None;
    }
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                let name = match e {
                    datafusion::logical_expr::Expr::ScalarFunction(f)
                        if f.func.inner().is::<SqlFunction>() =>
                    {
                        None
                    }
                    datafusion::logical_expr::Expr::ScalarFunction(f) => Some(f.name()),
                    datafusion::logical_expr::Expr::AggregateFunction(f) => Some(f.func.name()),
                    datafusion::logical_expr::Expr::WindowFunction(f) => Some(f.fun.name()),
                    _ => None,
                };
                if let Some(name) = name.filter(|n| names.contains(n)) {
                    found = Some(name.to_string());
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if found.is_some() {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    found
}

#[async_trait]
impl Engine for BallistaEngine {
    fn session(&self) -> SessionContext {
        self.local.session()
    }

    async fn execute(&self, plan: LogicalPlan) -> Result<Vec<SendableRecordBatchStream>> {
        if let Some(why) = self.stays_here(&plan, false) {
            log::info!("{why}");
            return self.local.execute(plan).await;
        }
        let ctx = self.client().await?;
        let stream = DataFrame::new(ctx.state(), plan).execute_stream().await?;
        Ok(vec![stream])
    }

    // A plan that stays here is logged when `execute` runs it.
    fn writes_files(&self, plan: &LogicalPlan) -> bool {
        self.stays_here(plan, malformed_counts_come_back(plan))
            .is_none()
    }

    async fn execute_into_files(
        &self,
        plan: LogicalPlan,
        checker: &Checker,
        target: &FileTarget,
        quarantine: Option<&FileTarget>,
    ) -> Result<WrittenFiles> {
        let spec = WriteSpec {
            checker: checks(checker, &target.table)?,
            table: target.table.clone(),
            target: target.spec.to_string(),
            quarantine: quarantine.map(|q| (q.table.clone(), q.spec.to_string())),
            sink: None,
        };
        self.write(plan, checker, spec).await
    }

    async fn execute_into_sink(
        &self,
        plan: LogicalPlan,
        checker: &Checker,
        batch: &SinkBatch,
    ) -> Result<u64> {
        let sink = serde_json::json!({
            "sink": batch.sink, "writer": batch.writer, "batch": batch.batch,
        });
        let spec = WriteSpec {
            checker: checks(checker, &batch.writer)?,
            table: batch.writer.clone(),
            target: String::new(),
            quarantine: None,
            sink: Some(sink.to_string()),
        };
        Ok(self.write(plan, checker, spec).await?.rows)
    }

    fn portable_scans(&self) -> bool {
        true
    }

    fn reading_through(&self, stores: Arc<dyn ObjectStoreRegistry>) -> Option<Arc<dyn Engine>> {
        let mut engine = self.clone();
        engine.local = engine.local.with_object_stores(stores);
        Some(Arc::new(engine))
    }
}

impl BallistaEngine {
    /// Runs `plan` under a write as `spec` says; the tasks' counts are added to `checker` and
    /// what DROPMALFORMED left out to the batches of landing files the plan reads.
    async fn write(
        &self,
        plan: LogicalPlan,
        checker: &Checker,
        spec: WriteSpec,
    ) -> Result<WrittenFiles> {
        let batches = file_batches(&plan);
        let plan = LogicalPlan::Extension(datafusion::logical_expr::Extension {
            node: Arc::new(WriteNode::new(plan, spec)?),
        });
        let ctx = self.client().await?;
        let written = DataFrame::new(ctx.state(), plan).collect().await;
        // A task stopped by a `Fail` rule ends the job: the rule's own error, not the job's.
        let mut malformed = std::collections::BTreeMap::new();
        let written = match written {
            Ok(written) => crate::write::gather(&written, checker, &mut malformed)?,
            Err(e) => return Err(checker.take_failure().unwrap_or(e.into())),
        };
        for batch in &batches {
            batch.add_malformed(&malformed);
        }
        Ok(written)
    }

    /// Why `plan` cannot run on the cluster, if it cannot; `malformed`: what DROPMALFORMED
    /// leaves out of its landing files comes back.
    fn stays_here(&self, plan: &LogicalPlan, malformed: bool) -> Option<String> {
        if let Some(blocker) = ships(plan, malformed) {
            return Some(format!(
                "a plan reading {blocker}, which cannot be shipped, runs in-process"
            ));
        }
        // A remote cluster knows lakeflow's functions, not the pipeline's own.
        match &self.cluster {
            Cluster::Remote(_) => calls_one_of(plan, self.local.functions()).map(|function| {
                format!(
                    "a plan calling `{function}`, a function of the pipeline's own that the cluster does not know, runs in-process"
                )
            }),
            Cluster::Standalone { .. } => None,
        }
    }
}
