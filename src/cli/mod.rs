//! The `lakeflow` command line: `init`, `run`, `dry-run`, `graph` and `events`, for a SQL
//! project (the `lakeflow` binary) and for a Rust binary whose `main` is one line:
//!
//! ```no_run
//! use lakeflow::prelude::*;
//!
//! #[materialized_view]
//! fn numbers() -> Plan {
//!     sql("SELECT 1 AS n")
//! }
//!
//! fn main() -> std::process::ExitCode {
//!     lakeflow::cli::main()
//! }
//! ```
//!
//! A Rust binary uses a spec file when there is one (`--spec`, or `lakeflow.yml` in the
//! current directory or a parent): its name, storage and configuration, and its SQL files
//! join the Rust definitions. Exit codes are in [`exit`]. This module parses arguments,
//! prints, and calls [`Pipeline`]; it holds no pipeline logic.

mod args;
mod init;
pub(crate) mod render;

use std::path::Path;
use std::process::ExitCode;

use datafusion::arrow::util::pretty::pretty_format_batches;

pub use args::{ClusterRole, Command, Common, GraphFormat, UsageError, help};

use crate::project::{Project, ProjectError, Spec};
use crate::{Error, Pipeline};

/// Writes a line to stdout; a closed pipe (`lakeflow events | head`) ends the program
/// quietly instead of panicking.
macro_rules! out {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = writeln!(stdout, $($arg)*).and_then(|()| stdout.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// [`out!`] without the newline.
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        if let Err(e) = write!(stdout, $($arg)*).and_then(|()| stdout.flush()) {
            if e.kind() == std::io::ErrorKind::BrokenPipe {
                std::process::exit(0);
            }
        }
    }};
}

/// The exit codes, which scripts can rely on.
pub mod exit {
    /// The command did what was asked.
    pub const OK: u8 = 0;
    /// The run ended FAILED: at least one flow failed (the report says which).
    pub const RUN_FAILED: u8 = 1;
    /// The command line could not be understood, or `init` could not use the name.
    pub const USAGE: u8 = 2;
    /// The definitions are invalid: spec file, SQL, or what a dry run finds (a cycle, a
    /// missing dataset, a column that does not exist).
    pub const INVALID: u8 = 3;
    /// Anything else: storage, I/O, an event log query.
    pub const ERROR: u8 = 4;
    /// Another run holds the pipeline storage's lease (`run` without `--wait`); nothing was
    /// written.
    pub const BUSY: u8 = 5;
}

/// The command line of a Rust binary whose datasets are defined with the attribute macros:
/// `fn main() -> ExitCode { lakeflow::cli::main() }`.
pub fn main() -> ExitCode {
    Cli::new(Pipeline::from_registry()).main()
}

/// A command line over a pipeline.
#[derive(Debug)]
pub struct Cli {
    pipeline: Option<Pipeline>,
    program: String,
}

/// Why a command stopped: the exit code and what to tell the person.
struct Failure {
    code: u8,
    message: String,
}

impl From<ProjectError> for Failure {
    fn from(e: ProjectError) -> Self {
        let code = match e {
            ProjectError::Io { .. } => exit::ERROR,
            _ => exit::INVALID,
        };
        Failure {
            code,
            message: e.to_string(),
        }
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::RunFailed { .. } => exit::RUN_FAILED,
            Error::StorageBusy { .. } => exit::BUSY,
            Error::DuplicateDataset { .. }
            | Error::UnknownDataset { .. }
            | Error::Cycle { .. }
            | Error::Many(_)
            | Error::InvalidDefinition { .. }
            | Error::Definition { .. }
            | Error::Expectation { .. }
            | Error::EmptyPipeline => exit::INVALID,
            _ => exit::ERROR,
        };
        Failure {
            code,
            message: format!("{e:?}"),
        }
    }
}

impl Cli {
    /// A command line over `pipeline` (a Rust binary's definitions). A spec file, when
    /// there is one, adds its SQL files, name, storage and configuration.
    pub fn new(pipeline: Pipeline) -> Self {
        Cli {
            pipeline: Some(pipeline),
            program: program_name(),
        }
    }

    /// The command line of the `lakeflow` binary: definitions come from the project's spec
    /// file, which must exist; `init` makes one.
    pub fn project() -> Self {
        Cli {
            pipeline: None,
            program: program_name(),
        }
    }

    /// Runs the command in the process arguments and returns the exit code.
    pub fn main(self) -> ExitCode {
        let args: Vec<String> = std::env::args().skip(1).collect();
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                eprintln!("error: cannot start the async runtime: {e}");
                return ExitCode::from(exit::ERROR);
            }
        };
        ExitCode::from(runtime.block_on(self.run(&args)))
    }

    /// Runs the command `args` (without the program name) and returns the exit code; what a
    /// person reads goes to stdout (results) and stderr (progress, errors).
    pub async fn run(self, args: &[String]) -> u8 {
        let (command, common) = match args::parse(args) {
            Ok(parsed) => parsed,
            Err(e) => {
                eprintln!(
                    "error: {e}\nRun `{} --help` for the commands.",
                    self.program
                );
                return exit::USAGE;
            }
        };
        match self.command(command, &common).await {
            Ok(()) => exit::OK,
            Err(failure) => {
                eprintln!("error: {}", failure.message);
                failure.code
            }
        }
    }

    async fn command(self, command: Command, common: &Common) -> Result<(), Failure> {
        match command {
            Command::Help => {
                out_raw!("{}", help(&self.program));
                Ok(())
            }
            Command::Cluster(role) => cluster(role).await,
            Command::Version => {
                out!("{} {}", self.program, env!("CARGO_PKG_VERSION"));
                Ok(())
            }
            Command::Init { name } => {
                if self.pipeline.is_some() {
                    return Err(Failure {
                        code: exit::USAGE,
                        message: "`init` makes a SQL project; run it with the `lakeflow` binary (`cargo install lakeflow`)".into(),
                    });
                }
                let cwd = current_dir()?;
                let dir = init::create(&cwd, &name).map_err(|message| Failure {
                    code: exit::USAGE,
                    message,
                })?;
                out!(
                    "Pipeline project `{name}` created in {}. To run it:\n  cd {name}\n  lakeflow run",
                    dir.display()
                );
                Ok(())
            }
            Command::Run {
                full_refresh,
                full_refresh_all,
                refresh,
                progress,
                wait,
            } => {
                let (mut pipeline, _) = self.load(common)?;
                pipeline = pipeline.progress(progress).wait_for_storage(wait);
                if !refresh.is_empty() {
                    pipeline = pipeline.refresh(refresh);
                }
                if !full_refresh.is_empty() {
                    pipeline = pipeline.full_refresh(full_refresh);
                }
                if full_refresh_all {
                    pipeline = pipeline.full_refresh_all();
                }
                match pipeline.run().await {
                    Ok(report) => {
                        out!("{report}");
                        Ok(())
                    }
                    Err(Error::RunFailed { report }) => {
                        out!("{report}");
                        let failed = report
                            .datasets
                            .iter()
                            .filter(|d| d.status == crate::FlowStatus::Failed)
                            .map(|d| d.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ");
                        Err(Failure {
                            code: exit::RUN_FAILED,
                            message: format!("the run failed: {failed} failed (see above)"),
                        })
                    }
                    Err(e) => Err(e.into()),
                }
            }
            Command::Maintain { tables, wait } => {
                let (pipeline, _) = self.load(common)?;
                let pipeline = pipeline.wait_for_storage(wait);
                let selection = (!tables.is_empty()).then_some(tables.as_slice());
                let done = pipeline.maintain(selection).await?;
                out!("Maintenance completed: {} tables.", done.len());
                for m in done {
                    let o = &m.outcome;
                    out!(
                        "  {}: {}, {} -> {} files ({} compacted into {}, {} vacuumed)",
                        m.table,
                        m.operation,
                        o.files_before,
                        o.files_after,
                        o.files_compacted,
                        o.files_written,
                        o.files_vacuumed
                    );
                }
                Ok(())
            }
            Command::DryRun => {
                let (pipeline, _) = self.load(common)?;
                let graph = pipeline.dry_run().await?;
                let nodes: Vec<_> = graph.in_order().collect();
                out!("Dry run succeeded: {} definitions are valid.", nodes.len());
                let width = nodes.iter().map(|n| n.def.name.len()).max().unwrap_or(0);
                for node in nodes {
                    out!(
                        "  {:width$}  {:18}  {}",
                        node.def.name,
                        node.kind,
                        node.def.location
                    );
                    // The columns the dataset will have: for file sources, the schema
                    // inferred (or held by its checkpoint) with the source's options.
                    let columns: Vec<String> = node
                        .output_schema
                        .fields()
                        .iter()
                        .map(|f| {
                            format!(
                                "{} {}",
                                f.name(),
                                lakeflow_sql::functions::spark_type_name(f.data_type())
                                    .to_uppercase()
                            )
                        })
                        .collect();
                    if !columns.is_empty() {
                        out!("  {:width$}  columns: {}", "", columns.join(", "));
                    }
                }
                Ok(())
            }
            Command::Graph { format } => {
                let (pipeline, name) = self.load(common)?;
                let graph = pipeline.dry_run().await?;
                out_raw!(
                    "{}",
                    match format {
                        GraphFormat::Dot => render::dot(&graph, &name),
                        GraphFormat::Mermaid => render::mermaid(&graph),
                        GraphFormat::Json => render::json(&graph, &name),
                    }
                );
                Ok(())
            }
            Command::Events { sql } => {
                let (pipeline, _) = self.load(common)?;
                let query = sql.unwrap_or_else(|| LAST_RUN_EVENTS.to_string());
                let batches = pipeline
                    .event_log_sql(&query)
                    .await?
                    .collect()
                    .await
                    .map_err(Error::from)?;
                let table = pretty_format_batches(&batches).map_err(|e| Failure {
                    code: exit::ERROR,
                    message: format!("cannot print the events: {e}"),
                })?;
                out!("{table}");
                Ok(())
            }
        }
    }

    /// The pipeline to work on and its name, from the spec file and/or the binary's own
    /// definitions, with `--storage` applied.
    fn load(self, common: &Common) -> Result<(Pipeline, String), Failure> {
        let spec_path = match &common.spec {
            Some(path) if !path.is_file() => {
                return Err(Failure {
                    code: exit::USAGE,
                    message: format!("`--spec {}`: no such file", path.display()),
                });
            }
            Some(path) => Some(path.clone()),
            None => match Spec::find(&current_dir()?) {
                Ok(path) => Some(path),
                Err(ProjectError::SpecNotFound { .. }) if self.pipeline.is_some() => None,
                Err(e) => return Err(e.into()),
            },
        };
        let (pipeline, name) = match (spec_path, self.pipeline) {
            (Some(path), base) => {
                let project = Project::load(&path)?;
                let name = project.spec().name.clone();
                let pipeline = match base {
                    Some(base) => project.add_to(base),
                    None => project.pipeline(),
                };
                (pipeline, name)
            }
            (None, Some(base)) => (base, "pipeline".to_string()),
            (None, None) => {
                return Err(ProjectError::SpecNotFound {
                    dir: current_dir()?,
                }
                .into());
            }
        };
        let pipeline = match &common.storage {
            Some(storage) => pipeline.storage(storage.clone()),
            None => pipeline,
        };
        let pipeline = match &common.engine {
            Some(url) => on_cluster(pipeline, url)?,
            None => pipeline,
        };
        Ok((pipeline, name))
    }
}

/// `pipeline` running its flows on the cluster at `url` (`--engine`).
#[cfg(feature = "ballista")]
fn on_cluster(pipeline: Pipeline, url: &str) -> Result<Pipeline, Failure> {
    Ok(pipeline.cluster(url))
}

#[cfg(not(feature = "ballista"))]
fn on_cluster(_: Pipeline, url: &str) -> Result<Pipeline, Failure> {
    Err(without_ballista(&format!("`--engine {url}`")))
}

#[cfg(not(feature = "ballista"))]
fn without_ballista(what: &str) -> Failure {
    Failure {
        code: exit::USAGE,
        message: format!(
            "{what} needs a Ballista cluster, and this lakeflow was built without the `ballista` feature; install it with `cargo install lakeflow --features ballista`"
        ),
    }
}

/// Serves as a scheduler or an executor of a Ballista cluster until the process ends.
#[cfg(feature = "ballista")]
async fn cluster(role: ClusterRole) -> Result<(), Failure> {
    use lakeflow_ballista::cluster::{Executor, Scheduler, init_logging};
    init_logging();
    let address = |host: &str, port: u16| -> Result<std::net::SocketAddr, Failure> {
        use std::net::ToSocketAddrs;
        (host, port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| Failure {
                code: exit::USAGE,
                message: format!("`{host}:{port}` is not an address this machine can listen on"),
            })
    };
    // What others are told to reach a process at: a wildcard address is not reachable.
    let reachable = |bind: &str, external: Option<String>| {
        external.unwrap_or_else(|| match bind {
            "0.0.0.0" | "::" => "localhost".to_string(),
            other => other.to_string(),
        })
    };
    let result = match role {
        ClusterRole::Scheduler {
            bind,
            port,
            external_host,
        } => {
            let mut scheduler = Scheduler::new(address(&bind, port)?);
            scheduler.external_host = reachable(&bind, external_host);
            scheduler.run().await
        }
        ClusterRole::Executor {
            scheduler,
            bind,
            port,
            grpc_port,
            external_host,
            concurrent_tasks,
            work_dir,
        } => {
            let Some((host, scheduler_port)) = scheduler
                .rsplit_once(':')
                .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)))
            else {
                return Err(Failure {
                    code: exit::USAGE,
                    message: format!("`--scheduler {scheduler}`: write it as HOST:PORT"),
                });
            };
            let work_dir = work_dir
                .unwrap_or_else(|| std::env::temp_dir().join(format!("lakeflow-executor-{port}")));
            Executor {
                scheduler_host: host,
                scheduler_port,
                external_host: reachable(&bind, external_host),
                bind_host: bind,
                port,
                grpc_port,
                concurrent_tasks,
                work_dir: work_dir.display().to_string(),
                functions: Default::default(),
            }
            .run()
            .await
        }
    };
    result.map_err(Failure::from)
}

#[cfg(not(feature = "ballista"))]
async fn cluster(role: ClusterRole) -> Result<(), Failure> {
    let which = match role {
        ClusterRole::Scheduler { .. } => "`cluster scheduler`",
        ClusterRole::Executor { .. } => "`cluster executor`",
    };
    Err(without_ballista(which))
}

/// The default of `events`: the last run's events, in order.
const LAST_RUN_EVENTS: &str =
    "SELECT sequence, timestamp, level, event_type, origin.dataset_name AS dataset, message
FROM event_log
WHERE origin.run_id = (SELECT max(origin.run_id) FROM event_log)
ORDER BY sequence";

fn current_dir() -> Result<std::path::PathBuf, Failure> {
    std::env::current_dir().map_err(|e| Failure {
        code: exit::ERROR,
        message: format!("cannot read the current directory: {e}"),
    })
}

fn program_name() -> String {
    std::env::args()
        .next()
        .as_deref()
        .and_then(|p| {
            Path::new(p)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "lakeflow".to_string())
}
