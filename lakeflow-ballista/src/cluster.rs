//! A Ballista scheduler and executors that understand lakeflow's plans: Ballista's own
//! processes with lakeflow's codec and its Spark SQL functions (and a pipeline's functions of
//! its own, when they run in the pipeline's process) registered.
//!
//! The three places that see a plan must agree on the functions it calls, which travel by
//! name: the coordinator that plans it, the scheduler that decodes and splits it, and each
//! executor that decodes its stages. [`cluster_state`] is the one place all three get them.

use std::net::SocketAddr;
use std::sync::Arc;

use ballista_core::ConfigProducer;
use ballista_core::RuntimeProducer;
use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;
use datafusion::execution::SessionState;
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use datafusion::prelude::SessionConfig;
use lakeflow_core::engine::{Functions, SqlDialect, session_with};
use lakeflow_core::{Error, Result};

use crate::codec::LakeflowLogicalCodec;

/// A session state with lakeflow's Spark SQL functions and `functions`: what the scheduler
/// plans with and what executors look functions up in.
pub fn cluster_state(
    config: SessionConfig,
    runtime: Arc<RuntimeEnv>,
    functions: &Functions,
) -> datafusion::common::Result<SessionState> {
    session_with(config, runtime, SqlDialect::default(), functions)
        .map(|ctx| crate::write::with_write_planner(ctx.state()))
        .map_err(|e| datafusion::common::DataFusionError::External(Box::new(e)))
}

/// The configuration every query starts from on the cluster: Ballista's, with its adaptive
/// planner off (see [`ballista_config`]).
pub(crate) fn config_producer() -> ConfigProducer {
    Arc::new(ballista_config)
}

/// Ballista's session configuration with the adaptive (re-planning) query planner turned off:
/// with it, a global aggregate over a union (a view merged with its new rows) gave a wrong
/// count now and then; the static planner gives the in-process answers.
pub fn ballista_config() -> SessionConfig {
    SessionConfig::new_with_ballista().with_ballista_adaptive_query_planner(false)
}

/// The runtime of the cluster's sessions: local files, and object stores made for `s3://`,
/// `az://` and `gs://` URLs from the environment's credentials.
pub(crate) fn runtime() -> datafusion::common::Result<Arc<RuntimeEnv>> {
    RuntimeEnvBuilder::new()
        .with_object_store_registry(lakeflow_delta::object_stores_from_environment())
        .build_arc()
}

/// The runtime of each session on an executor.
pub(crate) fn runtime_producer() -> RuntimeProducer {
    Arc::new(|_| runtime())
}

fn logical_codec() -> Arc<dyn datafusion_proto::logical_plan::LogicalExtensionCodec> {
    Arc::new(LakeflowLogicalCodec::default())
}

fn physical_codec() -> Arc<dyn datafusion_proto::physical_plan::PhysicalExtensionCodec> {
    Arc::new(crate::codec::LakeflowPhysicalCodec::default())
}

fn session_builder(functions: Functions) -> ballista_scheduler::scheduler_server::SessionBuilder {
    Arc::new(move |config| cluster_state(config, runtime()?, &functions))
}

fn cluster_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Engine(format!("Ballista {what}: {e}"))
}

/// A Ballista scheduler with lakeflow's codec and functions (`lakeflow cluster scheduler`).
#[derive(Debug, Clone)]
pub struct Scheduler {
    /// Where it listens (`0.0.0.0:50050` in a cluster, `127.0.0.1:P` in tests).
    pub bind: SocketAddr,
    /// The host executors and clients are told to reach it at.
    pub external_host: String,
    /// Functions of a pipeline's own it knows besides lakeflow's (a cluster inside the
    /// pipeline's process).
    pub functions: Functions,
}

impl Scheduler {
    /// A scheduler listening on `bind`.
    pub fn new(bind: SocketAddr) -> Self {
        Scheduler {
            bind,
            external_host: bind.ip().to_string(),
            functions: Functions::default(),
        }
    }

    /// Serves until the process ends.
    pub async fn run(self) -> Result<()> {
        let functions = self.functions.clone();
        let config = SchedulerConfig {
            bind_host: self.bind.ip().to_string(),
            bind_port: self.bind.port(),
            external_host: self.external_host.clone(),
            override_config_producer: Some(config_producer()),
            override_session_builder: Some(session_builder(functions)),
            override_logical_codec: Some(logical_codec()),
            override_physical_codec: Some(physical_codec()),
            ..SchedulerConfig::default()
        };
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| cluster_error("scheduler", e))?;
        start_server(cluster, self.bind, Arc::new(config))
            .await
            .map_err(|e| cluster_error("scheduler", e))
    }
}

/// A Ballista executor with lakeflow's codec and functions (`lakeflow cluster executor`).
#[derive(Debug, Clone)]
pub struct Executor {
    /// The scheduler's host.
    pub scheduler_host: String,
    /// The scheduler's port.
    pub scheduler_port: u16,
    /// The host it listens on.
    pub bind_host: String,
    /// The host the scheduler and clients reach it at.
    pub external_host: String,
    /// Its Arrow Flight port (results and shuffles are fetched from it).
    pub port: u16,
    /// Its gRPC port (the scheduler pushes tasks to it).
    pub grpc_port: u16,
    /// How many tasks it runs at once (0: one per core).
    pub concurrent_tasks: usize,
    /// Where it keeps shuffle files.
    pub work_dir: String,
    /// Functions of a pipeline's own it knows besides lakeflow's (a cluster inside the
    /// pipeline's process).
    pub functions: Functions,
}

impl Executor {
    /// Serves until the process ends.
    pub async fn run(self) -> Result<()> {
        let state = cluster_state(
            config_producer()(),
            Arc::new(RuntimeEnv::default()),
            &self.functions,
        )
        .map_err(|e| cluster_error("executor", e))?;
        std::fs::create_dir_all(&self.work_dir)?;
        let config = ExecutorProcessConfig {
            scheduler_host: self.scheduler_host,
            scheduler_port: self.scheduler_port,
            scheduler_connect_timeout_seconds: 30,
            bind_host: self.bind_host,
            external_host: Some(self.external_host),
            port: self.port,
            grpc_port: self.grpc_port,
            vcores: self.concurrent_tasks,
            work_dir: Some(self.work_dir),
            override_config_producer: Some(config_producer()),
            override_runtime_producer: Some(runtime_producer()),
            override_function_registry: Some(Arc::new(BallistaFunctionRegistry::from(&state))),
            override_logical_codec: Some(logical_codec()),
            override_physical_codec: Some(physical_codec()),
            ..ExecutorProcessConfig::default()
        };
        start_executor_process(Arc::new(config))
            .await
            .map_err(|e| cluster_error("executor", e))
    }
}

/// Starts a scheduler and one executor in this process, on loopback ports the system picks
/// and with a work directory of their own (the same code as the cluster's processes), for
/// [`crate::BallistaEngine::standalone`]; returns the scheduler's address.
pub(crate) async fn start_standalone(functions: &Functions, tasks: usize) -> Result<SocketAddr> {
    let port = free_port()?;
    let address = SocketAddr::from(([127, 0, 0, 1], port));
    let mut scheduler = Scheduler::new(address);
    scheduler.functions = functions.clone();
    tokio::spawn(async move {
        if let Err(e) = scheduler.run().await {
            log::error!("the standalone scheduler stopped: {e}");
        }
    });
    listening(port).await?;
    let (flight, grpc) = (free_port()?, free_port()?);
    let work_dir =
        std::env::temp_dir().join(format!("lakeflow-standalone-{}-{port}", std::process::id()));
    let executor = Executor {
        scheduler_host: "127.0.0.1".into(),
        scheduler_port: port,
        bind_host: "127.0.0.1".into(),
        external_host: "127.0.0.1".into(),
        port: flight,
        grpc_port: grpc,
        concurrent_tasks: tasks,
        work_dir: work_dir.display().to_string(),
        functions: functions.clone(),
    };
    tokio::spawn(async move {
        if let Err(e) = executor.run().await {
            log::error!("the standalone executor stopped: {e}");
        }
    });
    listening(flight).await?;
    Ok(address)
}

/// Waits (up to a minute) until something listens on `port` of this machine.
async fn listening(port: u16) -> Result<()> {
    let start = std::time::Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            return Err(cluster_error(
                "standalone cluster",
                format!("nothing listens on port {port}"),
            ));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    Ok(())
}

/// Writes the cluster processes' log records (Ballista logs through the `log` crate) to
/// standard error: `INFO`, or the level `LAKEFLOW_LOG` names (`debug`, `warn`, ..).
pub fn init_logging() {
    struct Stderr(log::LevelFilter);
    impl log::Log for Stderr {
        fn enabled(&self, metadata: &log::Metadata) -> bool {
            metadata.level() <= self.0
        }
        fn log(&self, record: &log::Record) {
            if self.enabled(record.metadata()) {
                eprintln!("{} {}: {}", record.level(), record.target(), record.args());
            }
        }
        fn flush(&self) {}
    }
    let level = std::env::var("LAKEFLOW_LOG")
        .ok()
        .and_then(|l| l.parse().ok())
        .unwrap_or(log::LevelFilter::Info);
    if log::set_boxed_logger(Box::new(Stderr(level))).is_ok() {
        log::set_max_level(level);
    }
}

/// A cluster of local processes — a scheduler and executors, each `lakeflow cluster ..` of the
/// given binary on a loopback port — for tests and benchmarks; stopped (killed) when dropped.
/// Each process logs to a file under the cluster's directory.
#[derive(Debug)]
pub struct LocalCluster {
    processes: Vec<std::process::Child>,
    scheduler_port: u16,
    executor_logs: Vec<std::path::PathBuf>,
}

impl LocalCluster {
    /// Starts a scheduler and `executors` executors (two tasks each) of `binary` (a `lakeflow`
    /// built with the `ballista` feature), logging and keeping shuffle files under `dir`;
    /// returns once each listens.
    pub fn start(
        binary: &std::path::Path,
        executors: usize,
        dir: &std::path::Path,
    ) -> std::io::Result<LocalCluster> {
        std::fs::create_dir_all(dir)?;
        let spawn = |args: Vec<String>, log: &std::path::Path| {
            std::process::Command::new(binary)
                .args(args)
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(log)?)
                .spawn()
        };
        let scheduler_port = free_port()?;
        let log = dir.join("scheduler.log");
        let mut cluster = LocalCluster {
            processes: vec![spawn(
                vec![
                    "cluster".into(),
                    "scheduler".into(),
                    "--bind".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    scheduler_port.to_string(),
                ],
                &log,
            )?],
            scheduler_port,
            executor_logs: Vec::new(),
        };
        wait_for_port(scheduler_port, &log)?;
        for i in 0..executors {
            let (port, grpc_port) = (free_port()?, free_port()?);
            let log = dir.join(format!("executor-{i}.log"));
            let work_dir = dir.join(format!("executor-{i}"));
            cluster.processes.push(spawn(
                vec![
                    "cluster".into(),
                    "executor".into(),
                    "--scheduler".into(),
                    format!("127.0.0.1:{scheduler_port}"),
                    "--bind".into(),
                    "127.0.0.1".into(),
                    "--port".into(),
                    port.to_string(),
                    "--grpc-port".into(),
                    grpc_port.to_string(),
                    "--concurrent-tasks".into(),
                    "2".into(),
                    "--work-dir".into(),
                    work_dir.display().to_string(),
                ],
                &log,
            )?);
            wait_for_port(port, &log)?;
            cluster.executor_logs.push(log);
        }
        Ok(cluster)
    }

    /// The scheduler's URL, for [`crate::BallistaEngine::remote`].
    pub fn url(&self) -> String {
        format!("df://127.0.0.1:{}", self.scheduler_port)
    }

    /// How many tasks the executors say they finished, from their logs.
    pub fn tasks_finished(&self) -> usize {
        self.logged("Finished task")
    }

    /// How many times the executors' logs say `text`: a table's files they wrote are logged
    /// as ``wrote N rows of `table` ``.
    pub fn logged(&self, text: &str) -> usize {
        self.executor_logs
            .iter()
            .map(|log| {
                std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .matches(text)
                    .count()
            })
            .sum()
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Waits (up to a minute) until something listens on `port`; the error quotes `log`.
fn wait_for_port(port: u16, log: &std::path::Path) -> std::io::Result<()> {
    let start = std::time::Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > std::time::Duration::from_secs(60) {
            return Err(std::io::Error::other(format!(
                "nothing listens on port {port} after a minute; its log:\n{}",
                std::fs::read_to_string(log).unwrap_or_default()
            )));
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    Ok(())
}
