//! The command line: `COMMAND [OPTIONS]`, parsed by hand into a [`Command`] (a handful of
//! options does not need a parser crate). A mistake is a [`UsageError`] saying what to write.

use std::path::PathBuf;

use crate::ProgressMode;

/// How `graph` prints the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphFormat {
    /// Graphviz DOT.
    #[default]
    Dot,
    /// A Mermaid flowchart.
    Mermaid,
    /// JSON, for tools.
    Json,
}

/// What to do, with its options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `init --name NAME`: make a new project directory.
    Init {
        /// The project (and directory) name.
        name: String,
    },
    /// `run`: run the pipeline.
    Run {
        /// Tables to reset and recompute.
        full_refresh: Vec<String>,
        /// Reset every streaming table.
        full_refresh_all: bool,
        /// Only these tables (with `full_refresh`).
        refresh: Vec<String>,
        /// How progress is shown.
        progress: ProgressMode,
        /// Wait for another run that holds the storage, instead of exiting at once.
        wait: bool,
    },
    /// `maintain`: compact and vacuum tables now.
    Maintain {
        /// These tables; empty: every table of the pipeline and the event log.
        tables: Vec<String>,
        /// Wait for another run that holds the storage, instead of exiting at once.
        wait: bool,
    },
    /// `dry-run`: plan everything, read and write nothing.
    DryRun,
    /// `graph`: print the dependency graph.
    Graph {
        /// The format.
        format: GraphFormat,
    },
    /// `events`: print the event log (the last run's events, or a query's result).
    Events {
        /// A SQL query over the table `event_log` (or `event_log_raw`), views first.
        sql: Option<String>,
    },
    /// `cluster scheduler ..` or `cluster executor ..`: serve as a process of a Ballista
    /// cluster that runs lakeflow's flows (in a binary built with the `ballista` feature).
    Cluster(ClusterRole),
    /// `help` or `--help`.
    Help,
    /// `--version`.
    Version,
}

/// What `cluster` serves as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterRole {
    /// `cluster scheduler [--bind HOST] [--port P] [--external-host H]`.
    Scheduler {
        /// The address it listens on.
        bind: String,
        /// Its port.
        port: u16,
        /// The host others reach it at (default: `bind`).
        external_host: Option<String>,
    },
    /// `cluster executor --scheduler HOST:P [--bind HOST] [--port Q] [--grpc-port R]
    /// [--external-host H] [--concurrent-tasks N] [--work-dir DIR]`.
    Executor {
        /// The scheduler's `host:port`.
        scheduler: String,
        /// The address it listens on.
        bind: String,
        /// Its Arrow Flight port.
        port: u16,
        /// Its gRPC port.
        grpc_port: u16,
        /// The host others reach it at (default: `bind`).
        external_host: Option<String>,
        /// Tasks at once (0: one per core).
        concurrent_tasks: usize,
        /// Where it keeps shuffle files (default: a directory under the system's temp dir).
        work_dir: Option<PathBuf>,
    },
}

/// Options every pipeline command takes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Common {
    /// `--spec FILE`: the spec file instead of searching for one.
    pub spec: Option<PathBuf>,
    /// `--storage DIR_OR_URL`: where tables are, instead of the spec's `storage`.
    pub storage: Option<String>,
    /// `--engine df://HOST:PORT`: run flows on this Ballista cluster, instead of the spec's
    /// `engine` (default: in this process).
    pub engine: Option<String>,
}

/// A command line that cannot be understood; the message says what to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageError(pub String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The help text; `program` is the binary's name.
pub fn help(program: &str) -> String {
    format!(
        "Declarative data pipelines on DataFusion and Delta Lake.

Usage: {program} <COMMAND> [OPTIONS]

Commands:
  init --name NAME      create a project: a spec file, SQL transformations and a README
  run                   run the pipeline (incremental unless told otherwise)
  dry-run               check every definition and the graph; read and write no data
  graph                 print the dependency graph
  events                print the last run's events from the event log
  maintain              compact small files and vacuum old ones now (runs also do it:
                        compaction at 50 small files, both once a day per table)
  cluster scheduler     serve as the scheduler of a Ballista cluster that runs flows
                        (--bind HOST, default 0.0.0.0; --port P, default 50050)
  cluster executor      serve as an executor of it (--scheduler HOST:P; --port Q, default
                        50051; --grpc-port R, default 50052; --concurrent-tasks N;
                        --work-dir DIR; --external-host H, how others reach it)

Options of run:
  --full-refresh A,B    reset these tables and recompute them from all input
  --full-refresh-all    reset every table
  --refresh A,B         run only these tables (the others are EXCLUDED)
  --progress MODE       auto (default), bars, lines or off
  --wait                if another run is using the storage, wait for it to finish
                        (without it, exit at once with code 5)
  --engine df://H:P     run the flows on the Ballista cluster whose scheduler is at H:P
                        (instead of the spec's `engine`; default: in this process)
Options of maintain:
  --table A,B           only these tables (default: every table and the event log)
  --wait                as for run
Options of graph:
  --format FORMAT       dot (default), mermaid or json
Options of events:
  --sql QUERY           run a Spark SQL query over the table `event_log` (also named
                        `event_log_raw`; CREATE TEMP VIEW statements may come first)
Options of run, dry-run, graph, events and maintain:
  --spec FILE           the spec file (default: lakeflow.yml or spark-pipeline.yml in the
                        current directory or the nearest parent that has one)
  --storage PATH        where tables are stored, instead of the spec's `storage`

Exit codes: 0 success, 1 the run failed (a flow failed), 2 a usage error,
3 invalid definitions (spec file, SQL, graph), 4 any other error (storage, I/O),
5 another run is using the storage (the message names it; run again later or use --wait).
"
    )
}

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<(Command, Common), UsageError> {
    let mut common = Common::default();
    let Some((command, rest)) = args.split_first() else {
        return Ok((Command::Help, common));
    };
    let mut name = None;
    let mut full_refresh = Vec::new();
    let mut full_refresh_all = false;
    let mut refresh = Vec::new();
    let mut tables = Vec::new();
    let mut progress = ProgressMode::Auto;
    let mut wait = false;
    let mut format = GraphFormat::Dot;
    let mut sql = None;
    let command = command.as_str();
    if matches!(command, "help" | "--help" | "-h") {
        return Ok((Command::Help, common));
    }
    if matches!(command, "--version" | "-V" | "version") {
        return Ok((Command::Version, common));
    }
    if command == "cluster" {
        return Ok((Command::Cluster(parse_cluster(rest)?), common));
    }
    if !matches!(
        command,
        "init" | "run" | "dry-run" | "graph" | "events" | "maintain"
    ) {
        return Err(UsageError(format!(
            "unknown command `{command}`; the commands are init, run, dry-run, graph, events, maintain and cluster (see --help)"
        )));
    }
    let mut i = 0;
    while i < rest.len() {
        let arg = &rest[i];
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => (flag, Some(value.to_string())),
            _ => (arg.as_str(), None),
        };
        let takes_value = matches!(
            flag,
            "--name"
                | "--spec"
                | "--storage"
                | "--full-refresh"
                | "--refresh"
                | "--table"
                | "--progress"
                | "--format"
                | "--sql"
                | "--engine"
        );
        let value = if takes_value {
            match inline {
                Some(v) => Some(v),
                None => {
                    i += 1;
                    Some(rest.get(i).cloned().ok_or_else(|| {
                        UsageError(format!("`{flag}` needs a value, as in `{flag} VALUE`"))
                    })?)
                }
            }
        } else {
            if inline.is_some() {
                return Err(UsageError(format!("`{flag}` takes no value")));
            }
            None
        };
        let allowed: &[&str] = match command {
            "init" => &["--name"],
            "run" => &[
                "--spec",
                "--storage",
                "--full-refresh",
                "--full-refresh-all",
                "--refresh",
                "--progress",
                "--wait",
                "--engine",
            ],
            "graph" => &["--spec", "--storage", "--format"],
            "events" => &["--spec", "--storage", "--sql"],
            "maintain" => &["--spec", "--storage", "--table", "--wait"],
            _ => &["--spec", "--storage"],
        };
        if matches!(flag, "--help" | "-h") {
            return Ok((Command::Help, common));
        }
        if !allowed.contains(&flag) {
            return Err(UsageError(if flag.starts_with('-') {
                format!(
                    "`{command}` has no option `{flag}`; its options are {}",
                    allowed.join(", ")
                )
            } else {
                format!("unexpected argument `{flag}` after `{command}`")
            }));
        }
        let value = value.unwrap_or_default();
        match flag {
            "--name" => name = Some(value),
            "--spec" => common.spec = Some(PathBuf::from(value)),
            "--storage" => common.storage = Some(value),
            "--engine" => common.engine = Some(value),
            "--full-refresh" => full_refresh.extend(list(&value)),
            "--full-refresh-all" => full_refresh_all = true,
            "--wait" => wait = true,
            "--refresh" => refresh.extend(list(&value)),
            "--table" => tables.extend(list(&value)),
            "--progress" => {
                progress = match value.as_str() {
                    "auto" => ProgressMode::Auto,
                    "bars" => ProgressMode::Bars,
                    "lines" => ProgressMode::Lines,
                    "off" => ProgressMode::Off,
                    other => {
                        return Err(UsageError(format!(
                            "`--progress {other}`: use auto, bars, lines or off"
                        )));
                    }
                }
            }
            "--format" => {
                format = match value.as_str() {
                    "dot" => GraphFormat::Dot,
                    "mermaid" => GraphFormat::Mermaid,
                    "json" => GraphFormat::Json,
                    other => {
                        return Err(UsageError(format!(
                            "`--format {other}`: use dot, mermaid or json"
                        )));
                    }
                }
            }
            _ => sql = Some(value),
        }
        i += 1;
    }
    let command = match command {
        "init" => Command::Init {
            name: name.ok_or_else(|| {
                UsageError("`init` needs `--name NAME`, the new project's directory".into())
            })?,
        },
        "run" => {
            if full_refresh_all && !(full_refresh.is_empty() && refresh.is_empty()) {
                return Err(UsageError(
                    "`--full-refresh-all` resets every table; it cannot be combined with `--full-refresh` or `--refresh`".into(),
                ));
            }
            Command::Run {
                full_refresh,
                full_refresh_all,
                refresh,
                progress,
                wait,
            }
        }
        "dry-run" => Command::DryRun,
        "maintain" => Command::Maintain { tables, wait },
        "graph" => Command::Graph { format },
        _ => Command::Events { sql },
    };
    Ok((command, common))
}

/// The options of `cluster scheduler` and `cluster executor`.
fn parse_cluster(args: &[String]) -> Result<ClusterRole, UsageError> {
    let usage = || {
        UsageError(
            "`cluster` serves as a process of a Ballista cluster: `cluster scheduler [--port P]` or `cluster executor --scheduler HOST:P [--port Q]` (see --help)".into(),
        )
    };
    let (role, rest) = args.split_first().ok_or_else(usage)?;
    let mut options = std::collections::BTreeMap::new();
    let mut i = 0;
    while i < rest.len() {
        let (flag, value) = match rest[i].split_once('=') {
            Some((flag, value)) => (flag.to_string(), value.to_string()),
            None => {
                i += 1;
                let value = rest.get(i).cloned().ok_or_else(|| {
                    UsageError(format!(
                        "`{}` needs a value, as in `{} VALUE`",
                        rest[i - 1],
                        rest[i - 1]
                    ))
                })?;
                (rest[i - 1].clone(), value)
            }
        };
        options.insert(flag, value);
        i += 1;
    }
    let allowed: &[&str] = match role.as_str() {
        "scheduler" => &["--bind", "--port", "--external-host"],
        "executor" => &[
            "--scheduler",
            "--bind",
            "--port",
            "--grpc-port",
            "--external-host",
            "--concurrent-tasks",
            "--work-dir",
        ],
        _ => return Err(usage()),
    };
    if let Some(flag) = options.keys().find(|f| !allowed.contains(&f.as_str())) {
        return Err(UsageError(format!(
            "`cluster {role}` has no option `{flag}`; its options are {}",
            allowed.join(", ")
        )));
    }
    let number = |flag: &str, default: u64| -> Result<u64, UsageError> {
        match options.get(flag) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| UsageError(format!("`{flag} {v}`: a number is needed"))),
        }
    };
    let port = |flag: &str, default: u16| -> Result<u16, UsageError> {
        let n = number(flag, u64::from(default))?;
        u16::try_from(n).map_err(|_| UsageError(format!("`{flag} {n}`: not a port")))
    };
    let bind = options
        .get("--bind")
        .cloned()
        .unwrap_or_else(|| "0.0.0.0".to_string());
    let external_host = options.get("--external-host").cloned();
    Ok(match role.as_str() {
        "scheduler" => ClusterRole::Scheduler {
            bind,
            port: port("--port", 50050)?,
            external_host,
        },
        _ => ClusterRole::Executor {
            scheduler: options.get("--scheduler").cloned().ok_or_else(|| {
                UsageError(
                    "`cluster executor` needs `--scheduler HOST:PORT`, where its scheduler listens"
                        .into(),
                )
            })?,
            bind,
            port: port("--port", 50051)?,
            grpc_port: port("--grpc-port", 50052)?,
            external_host,
            concurrent_tasks: usize::try_from(number("--concurrent-tasks", 0)?).unwrap_or(0),
            work_dir: options.get("--work-dir").map(PathBuf::from),
        },
    })
}

/// `a,b , c` as names.
fn list(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn run_options() {
        let (command, common) = parse(&args(
            "run --spec p/lakeflow.yml --full-refresh a,b --refresh=c --progress off --wait",
        ))
        .unwrap();
        assert_eq!(common.spec, Some(PathBuf::from("p/lakeflow.yml")));
        assert_eq!(
            command,
            Command::Run {
                full_refresh: vec!["a".into(), "b".into()],
                full_refresh_all: false,
                refresh: vec!["c".into()],
                progress: ProgressMode::Off,
                wait: true,
            }
        );
    }

    #[test]
    fn mistakes_say_what_to_write() {
        let err = parse(&args("graph --refresh a")).unwrap_err().0;
        assert!(err.contains("`graph` has no option `--refresh`"), "{err}");
        let err = parse(&args("init")).unwrap_err().0;
        assert!(err.contains("--name NAME"), "{err}");
        let err = parse(&args("walk")).unwrap_err().0;
        assert!(err.contains("unknown command `walk`"), "{err}");
        let err = parse(&args("run --full-refresh-all --refresh a"))
            .unwrap_err()
            .0;
        assert!(err.contains("cannot be combined"), "{err}");
        let err = parse(&args("graph --format svg")).unwrap_err().0;
        assert!(err.contains("dot, mermaid or json"), "{err}");
        assert_eq!(parse(&[]).unwrap().0, Command::Help);
    }

    #[test]
    fn maintain_options() {
        let (command, _) = parse(&args("maintain --table a,b --table=c --wait")).unwrap();
        assert_eq!(
            command,
            Command::Maintain {
                tables: vec!["a".into(), "b".into(), "c".into()],
                wait: true,
            }
        );
        let err = parse(&args("maintain --refresh a")).unwrap_err().0;
        assert!(
            err.contains("`maintain` has no option `--refresh`"),
            "{err}"
        );
    }
}
