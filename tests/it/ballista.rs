//! The same pipelines on a Ballista cluster: a scheduler and two executors, each a separate
//! `lakeflow cluster ..` process on loopback ports, run the SQL medallion and AUTO CDC
//! projects; every table equals an in-process run's, and the executors' logs show the tasks
//! they ran.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use lakeflow::BallistaEngine;

/// The cluster's processes, stopped when dropped.
struct Cluster {
    _dir: tempfile::TempDir,
    processes: Vec<Child>,
    scheduler_port: u16,
    executor_logs: Vec<PathBuf>,
}

impl Cluster {
    /// How many tasks the executors say they finished, from their logs.
    fn tasks_run(&self) -> usize {
        self.executor_logs
            .iter()
            .map(|log| {
                std::fs::read_to_string(log)
                    .unwrap_or_default()
                    .matches("Finished task")
                    .count()
            })
            .sum()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str, log: &PathBuf) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "{what} did not listen on {port}: {}",
            std::fs::read_to_string(log).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn spawn(args: &[String], log: &PathBuf) -> Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(env!("CARGO_BIN_EXE_lakeflow"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(file)
        .spawn()
        .unwrap()
}

fn start(executors: usize) -> Cluster {
    let dir = tempfile::tempdir().unwrap();
    let scheduler_port = free_port();
    let scheduler_log = dir.path().join("scheduler.log");
    let scheduler = spawn(
        &[
            "cluster".into(),
            "scheduler".into(),
            "--bind".into(),
            "127.0.0.1".into(),
            "--port".into(),
            scheduler_port.to_string(),
        ],
        &scheduler_log,
    );
    let mut cluster = Cluster {
        processes: vec![scheduler],
        scheduler_port,
        executor_logs: Vec::new(),
        _dir: dir,
    };
    wait_for_port(scheduler_port, "the scheduler", &scheduler_log);
    for i in 0..executors {
        let (port, grpc_port) = (free_port(), free_port());
        let log = cluster._dir.path().join(format!("executor-{i}.log"));
        let work_dir = cluster._dir.path().join(format!("executor-{i}"));
        cluster.processes.push(spawn(
            &[
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
        ));
        wait_for_port(port, "an executor", &log);
        cluster.executor_logs.push(log);
    }
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_on_a_cluster_give_the_tables_of_an_in_process_run() {
    let cluster = start(2);
    let engine = Arc::new(BallistaEngine::remote(format!(
        "df://127.0.0.1:{}",
        cluster.scheduler_port
    )));
    let compared = crate::engines::same_tables_as_in_process(engine).await;
    assert!(compared >= 10, "{compared} tables compared");
    assert!(cluster.tasks_run() > 0, "the executors ran no task");
}

/// The crash test on the cluster: the coordinator is killed with SIGKILL at its failpoints
/// while its flows run on the cluster, and every run after a crash ends with each row once,
/// as in-process.
#[test]
fn a_coordinator_killed_at_any_moment_on_the_cluster_reruns_to_an_uninterrupted_result() {
    let cluster = start(2);
    let url = format!("df://127.0.0.1:{}", cluster.scheduler_port);
    let kills = crate::crash::kill_and_rerun(
        &[
            "stream_plan",
            "mid_write",
            "after_commit",
            "after_checkpoint:2",
            "flow_done:2",
            "cdc_between_merges",
        ],
        Some(&url),
    );
    assert!(
        kills >= 8,
        "most failpoints were reached twice; only {kills} kills"
    );
}

/// `BallistaEngine::standalone()`: a scheduler and an executor inside the process give the
/// same tables too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_cluster_gives_the_tables_of_an_in_process_run() {
    let compared =
        crate::engines::same_tables_as_in_process(Arc::new(BallistaEngine::standalone())).await;
    assert!(compared >= 10, "{compared} tables compared");
}
