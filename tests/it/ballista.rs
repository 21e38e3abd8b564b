//! The same pipelines on a Ballista cluster: a scheduler and two executors, each a separate
//! `lakeflow cluster ..` process on loopback ports, run the SQL medallion and AUTO CDC
//! projects; every table equals an in-process run's, and the executors' logs show the tasks
//! they ran.

use std::path::Path;
use std::sync::Arc;

use lakeflow::BallistaEngine;
use lakeflow::ballista::cluster::LocalCluster;

fn start(dir: &Path) -> LocalCluster {
    LocalCluster::start(Path::new(env!("CARGO_BIN_EXE_lakeflow")), 2, dir).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelines_on_a_cluster_give_the_tables_of_an_in_process_run() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let engine = Arc::new(BallistaEngine::remote(cluster.url()));
    let compared = crate::engines::same_tables_as_in_process(engine).await;
    assert!(compared >= 10, "{compared} tables compared");
    assert!(cluster.tasks_finished() > 0, "the executors ran no task");
}

/// The crash test on the cluster: the coordinator is killed with SIGKILL at its failpoints
/// while its flows run on the cluster, and every run after a crash ends with each row once,
/// as in-process.
#[test]
fn a_coordinator_killed_at_any_moment_on_the_cluster_reruns_to_an_uninterrupted_result() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let kills = crate::crash::kill_and_rerun(
        &[
            "stream_plan",
            "mid_write",
            "after_commit",
            "after_checkpoint:2",
            "flow_done:2",
            "cdc_between_merges",
        ],
        Some(&cluster.url()),
    );
    assert!(
        kills >= 8,
        "most failpoints were reached twice; only {kills} kills"
    );
    assert!(cluster.tasks_finished() > 0, "the executors ran no task");
}

/// `BallistaEngine::standalone()`: a scheduler and an executor inside the process give the
/// same tables too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standalone_cluster_gives_the_tables_of_an_in_process_run() {
    let compared =
        crate::engines::same_tables_as_in_process(Arc::new(BallistaEngine::standalone())).await;
    assert!(compared >= 10, "{compared} tables compared");
}

/// A flow that calls a function of the pipeline's own (here a SQL file's `CREATE FUNCTION`),
/// which a remote cluster does not know, runs in the coordinator instead of failing there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flow_calling_the_pipelines_own_function_runs_beside_the_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let cluster = start(dir.path());
    let (_tmp, root) = crate::sql_pipelines::project(&[
        (
            "lakeflow.yml",
            "name: f\nstorage: out\nlibraries:\n  - glob:\n      include: sql/**\n",
        ),
        (
            "sql/a.sql",
            "CREATE FUNCTION twice(x INT) RETURNS INT RETURN x * 2;\n\
             CREATE MATERIALIZED VIEW numbers AS SELECT id FROM range(3);\n\
             CREATE MATERIALIZED VIEW doubled AS SELECT twice(CAST(id AS INT)) AS d FROM numbers;\n",
        ),
    ]);
    let report = lakeflow::project::Project::find(&root)
        .unwrap()
        .pipeline()
        .progress(lakeflow::ProgressMode::Off)
        .cluster(cluster.url())
        .run()
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    let rows = crate::support::sorted_lines(
        &crate::support::delta_rows(&root.join("out").join("doubled")).await,
    );
    assert_eq!(rows, ["| d |", "| 0 |", "| 2 |", "| 4 |"]);
}
