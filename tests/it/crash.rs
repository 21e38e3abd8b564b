//! Exactly once across crashes: the pipeline process is killed with SIGKILL at many moments
//! of a run, run again, and every table must equal a run that was never interrupted — no row
//! lost, none repeated.
//!
//! The pipeline runs in a child process: this test binary again, running only
//! `crash::child_pipeline` with the directories in environment variables. A named failpoint
//! (`LAKEFLOW_FAILPOINT`) makes the child announce the moment on stderr and wait; the parent
//! then kills it with SIGKILL.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::streaming::{land, pipeline, tables};

/// The moments to crash at: `name` or `name:k` for the k-th time it is reached in one run.
const FAILPOINTS: &[&str] = &[
    "run_start",
    "stream_plan",
    "before_offsets",
    "after_offsets",
    "mid_write",
    "after_commit",
    "after_checkpoint",
    "flow_done",
    "before_offsets:2",
    "after_commit:2",
    "after_checkpoint:2",
    "flow_done:2",
    "flow_done:3",
    "before_event_log",
    "cdc_between_merges",
    "cdc_between_merges:2",
];

/// This test binary, set to run only `child_pipeline` over the given directories.
pub(crate) fn child(landing: &Path, storage: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .args([
            "crash::child_pipeline",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("LAKEFLOW_CRASH_LANDING", landing)
        .env("LAKEFLOW_CRASH_STORAGE", storage)
        .env_remove("LAKEFLOW_FAILPOINT")
        .env_remove("LAKEFLOW_CRASH_FULL_REFRESH")
        .env_remove("LAKEFLOW_CONTINUOUS")
        .env_remove("LAKEFLOW_CRASH_EVOLVE")
        .env_remove("LAKEFLOW_CRASH_WATERMARK")
        .env_remove("LAKEFLOW_CRASH_CONCURRENT")
        .env_remove("LAKEFLOW_CRASH_ENGINE")
        .env_remove("LAKEFLOW_CRASH_QUARANTINE")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Runs the pipeline in a child process, killing it at `failpoint` if it gets there.
/// Returns whether it was killed.
fn run_child(landing: &Path, storage: &Path, failpoint: Option<&str>) -> bool {
    run_until(child(landing, storage), failpoint)
}

/// Runs `command`, killing it at `failpoint` if it gets there. Returns whether it was killed.
pub(crate) fn run_until(mut command: Command, failpoint: Option<&str>) -> bool {
    if let Some(point) = failpoint {
        command.env("LAKEFLOW_FAILPOINT", point);
    }
    let mut child = command.spawn().unwrap();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let mut killed = false;
    let mut output = Vec::new();
    for line in stderr.lines() {
        let line = line.unwrap();
        if line.starts_with(lakeflow::__private::FAILPOINT_REACHED) {
            child.kill().unwrap(); // SIGKILL
            killed = true;
            break;
        }
        output.push(line);
    }
    let status = child.wait().unwrap();
    assert!(
        killed || status.success(),
        "the child failed without being killed ({failpoint:?}):\n{}",
        output.join("\n")
    );
    killed
}

#[test]
fn killed_at_any_moment_a_rerun_equals_an_uninterrupted_run() {
    let kills = kill_and_rerun(FAILPOINTS, None);
    assert!(
        kills >= 20,
        "most failpoints were reached twice; only {kills} kills"
    );
}

/// Runs the streaming pipeline in a child process killed at each of `failpoints` (twice: a
/// file lands between the runs), each followed by a run to completion, and compares every
/// table with two uninterrupted in-process runs. The child runs its flows on the Ballista
/// cluster at `engine` when one is given. Returns how many times a child was killed.
pub(crate) fn kill_and_rerun(failpoints: &[&str], engine: Option<&str>) -> usize {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let child = |landing: &Path, storage: &Path, failpoint: Option<&str>| {
        let mut command = child(landing, storage);
        if let Some(url) = engine {
            command.env("LAKEFLOW_CRASH_ENGINE", url);
        }
        run_until(command, failpoint)
    };

    // The reference: two uninterrupted runs, with a file landing in between.
    let landing = root.path().join("landing");
    let reference = root.path().join("reference");
    land(&landing, 0, 0, 40);
    land(&landing, 1, 40, 40);
    assert!(!run_child(&landing, &reference, None));
    land(&landing, 2, 80, 30);
    assert!(!run_child(&landing, &reference, None));
    let expected = runtime.block_on(tables(&reference));
    assert_eq!(expected[0].len(), 1 + 110, "bronze has every row once");

    let mut kills = 0;
    for point in failpoints {
        let dir = root.path().join(point.replace(':', "_"));
        let landing = dir.join("landing");
        let storage = dir.join("store");
        land(&landing, 0, 0, 40);
        land(&landing, 1, 40, 40);
        // First run: crash, then run again to completion.
        kills += usize::from(child(&landing, &storage, Some(point)));
        assert!(!child(&landing, &storage, None));
        // New input, and the same again.
        land(&landing, 2, 80, 30);
        kills += usize::from(child(&landing, &storage, Some(point)));
        assert!(!child(&landing, &storage, None));
        assert_eq!(
            runtime.block_on(tables(&storage)),
            expected,
            "tables differ after a crash at {point}"
        );
    }
    kills
}

/// `bronze` (new files) with a drop rule whose rows go to `bronze_quarantine`.
fn quarantined_pipeline(landing: &Path, storage: &Path) -> lakeflow::Pipeline {
    use lakeflow::prelude::*;
    let landing = landing.display().to_string();
    Pipeline::builder()
        .dataset(
            Dataset::streaming_table("bronze", move || read_stream_files(landing.as_str(), csv()))
                .expect_or_drop("not_test", "status <> 'test'")
                .quarantine(),
        )
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// A batch of a table with a quarantine table, killed at `failpoints` (on the cluster at
/// `engine`, or in-process) and run again (on `rerun_engine`, or in-process): the table and
/// its quarantine table hold each row once, as two uninterrupted runs leave them. Returns
/// the number of kills.
pub(crate) fn quarantined_batches_land_once(
    failpoints: &[&str],
    engine: Option<&str>,
    rerun_engine: Option<&str>,
) -> usize {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let child = |landing: &Path, storage: &Path, engine: Option<&str>, point: Option<&str>| {
        let mut command = child(landing, storage);
        command.env("LAKEFLOW_CRASH_QUARANTINE", "1");
        if let Some(url) = engine {
            command.env("LAKEFLOW_CRASH_ENGINE", url);
        }
        run_until(command, point)
    };
    let tables = |storage: &Path| {
        let storage = storage.to_path_buf();
        runtime.block_on(async move {
            let mut all = Vec::new();
            for name in ["bronze", "bronze_quarantine"] {
                all.push(crate::support::sorted_lines(
                    &crate::support::delta_rows(&storage.join(name)).await,
                ));
            }
            all
        })
    };
    let reference = root.path().join("reference");
    let landing = root.path().join("landing");
    for (n, first, rows) in [(0, 0, 40), (1, 40, 30), (2, 70, 20)] {
        land(&landing, n, first, rows);
        assert!(!child(&landing, &reference, None, None));
    }
    let expected = tables(&reference);
    assert_eq!(
        expected[0].len(),
        1 + 72,
        "bronze keeps the orders that are not tests"
    );
    assert_eq!(expected[1].len(), 1 + 18, "the test orders are quarantined");
    let mut kills = 0;
    for point in failpoints {
        let dir = root.path().join(point.replace(':', "_"));
        let (landing, storage) = (dir.join("landing"), dir.join("store"));
        land(&landing, 0, 0, 40);
        kills += usize::from(child(&landing, &storage, engine, Some(point)));
        // A file lands before the run after the crash: the interrupted batch must still be
        // the rows it was (its quarantined rows may have landed), the new file the next's.
        land(&landing, 1, 40, 30);
        assert!(!child(&landing, &storage, rerun_engine, None));
        assert!(!child(&landing, &storage, rerun_engine, None));
        land(&landing, 2, 70, 20);
        kills += usize::from(child(&landing, &storage, engine, Some(point)));
        assert!(!child(&landing, &storage, rerun_engine, None));
        assert_eq!(
            tables(&storage),
            expected,
            "the tables differ after a crash at {point}"
        );
    }
    kills
}

#[test]
fn a_quarantined_batch_killed_between_its_two_commits_lands_once() {
    let kills = quarantined_batches_land_once(
        &["mid_write", "quarantine_committed", "after_commit"],
        None,
        None,
    );
    assert_eq!(kills, 6, "every failpoint was reached in both runs");
}

/// The moments to crash at during a full refresh of `amounts`, a table two flows write (a
/// refresh run runs only its flows: the backfill first, then the live flow).
const RESET_FAILPOINTS: &[&str] = &[
    "before_truncate",
    "after_truncate",
    "after_offsets",
    "after_commit",
    "flow_done",
    "stream_plan:2",
    "after_commit:2",
    "after_checkpoint:2",
];

#[test]
fn a_full_refresh_of_a_shared_table_killed_at_any_moment_finishes_on_the_next_run() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let refresh = |landing: &Path, storage: &Path| {
        let mut command = child(landing, storage);
        command.env("LAKEFLOW_CRASH_FULL_REFRESH", "amounts");
        command
    };
    let landing = root.path().join("landing");
    let reference = root.path().join("reference");
    land(&landing, 0, 0, 40);
    assert!(!run_child(&landing, &reference, None));
    land(&landing, 1, 40, 20);
    assert!(!run_until(refresh(&landing, &reference), None));
    // `full_refresh([amounts])` runs only `amounts`; the next run brings in the new file.
    assert!(!run_child(&landing, &reference, None));
    let expected = runtime.block_on(tables(&reference));
    assert_eq!(
        expected[3].len(),
        1 + 48 + 1,
        "amounts: silver's rows and the backfill, once"
    );

    let mut kills = 0;
    for point in RESET_FAILPOINTS {
        let dir = root.path().join(point.replace(':', "_"));
        let landing = dir.join("landing");
        let storage = dir.join("store");
        land(&landing, 0, 0, 40);
        assert!(!run_child(&landing, &storage, None));
        land(&landing, 1, 40, 20);
        kills += usize::from(run_until(refresh(&landing, &storage), Some(point)));
        // The next run, without the flag, finishes what the killed one started.
        assert!(!run_child(&landing, &storage, None));
        assert_eq!(
            runtime.block_on(tables(&storage)),
            expected,
            "tables differ after a crash at {point} during a full refresh"
        );
    }
    assert!(
        kills >= RESET_FAILPOINTS.len() - 1,
        "most failpoints were reached; only {kills} kills"
    );
}

/// bronze ingests files with Auto Loader's options (the schema inferred, then evolved) and
/// silver streams from it: the pipeline of the schema evolution crash test.
fn evolving_pipeline(landing: &Path, storage: &Path, widen: bool) -> lakeflow::Pipeline {
    use lakeflow::prelude::*;
    let landing = landing.display().to_string();
    let options = if widen {
        FileOptions::csv()
            .option("schemaEvolutionMode", "addNewColumnsWithTypeWidening")
            .option("inferColumnTypes", "true")
    } else {
        FileOptions::csv()
    };
    Pipeline::builder()
        .streaming_table("bronze", move || {
            read_stream_files_with(landing.as_str(), options.clone())
        })
        .table("silver", || {
            Ok(read_stream("bronze")?.filter(col("status").not_eq(lit("test")))?)
        })
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// The moments to crash at in the run where a file brings a new column: as the held schema
/// changed (before any commit), and at the first commits with the evolved schema (bronze's,
/// then silver's, each before its commit marker).
const EVOLUTION_FAILPOINTS: &[&str] = &["schema_evolved", "after_commit", "after_commit:2"];

/// Schema evolution across crashes, with `LAKEFLOW_CRASH_EVOLVE=mode`: a first run over 20
/// orders, then the file `second` lands, and the run that meets it is killed at each of
/// `failpoints` (each case from a copy of the first run, to keep this cheap) and run again.
/// Every case must end with the tables of an uninterrupted run, which are returned (bronze's,
/// then silver's rows).
fn evolution_across_crashes(mode: &str, second: &str, failpoints: &[&str]) -> Vec<Vec<String>> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let evolving = |landing: &Path, storage: &Path| {
        let mut command = child(landing, storage);
        command.env("LAKEFLOW_CRASH_EVOLVE", mode);
        command
    };
    let landing = root.path().join("landing");
    let base = root.path().join("base");
    land(&landing, 0, 0, 20);
    assert!(!run_until(evolving(&landing, &base), None));
    std::fs::write(landing.join("orders-001.csv"), second).unwrap();
    let reference = root.path().join("reference");
    copy_dir(&base, &reference);
    assert!(!run_until(evolving(&landing, &reference), None));
    let tables = |storage: &Path| {
        runtime.block_on(async {
            let mut all = Vec::new();
            for name in ["bronze", "silver"] {
                all.push(crate::support::sorted_lines(
                    &crate::support::delta_rows(&storage.join(name)).await,
                ));
            }
            all
        })
    };
    let expected = tables(&reference);
    let mut kills = 0;
    for point in failpoints {
        let storage = root.path().join(point.replace(':', "_"));
        copy_dir(&base, &storage);
        kills += usize::from(run_until(evolving(&landing, &storage), Some(point)));
        assert!(!run_until(evolving(&landing, &storage), None));
        assert_eq!(
            tables(&storage),
            expected,
            "tables differ after a crash at {point} ({mode})"
        );
    }
    assert_eq!(kills, failpoints.len(), "every failpoint was reached");
    expected
}

/// Schema evolution across crashes: killed between the schema change and the commit (or at
/// the first commits that merge the new column into the tables), the rerun equals an
/// uninterrupted run.
#[test]
fn a_schema_change_killed_at_any_moment_reruns_to_an_uninterrupted_result() {
    // A file with a new column.
    let mut text = String::from("order_id,customer,amount,status,channel\n");
    for id in 20..30 {
        let status = if id % 5 == 0 { "test" } else { "ok" };
        text.push_str(&format!("{id},c{},{}.5,{status},web\n", id % 3, id % 7));
    }
    let expected = evolution_across_crashes("1", &text, EVOLUTION_FAILPOINTS);
    assert_eq!(expected[0].len(), 1 + 30, "bronze has every row once");
    assert!(expected[0][0].contains("channel"), "{:?}", expected[0][0]);
    assert!(expected[1][0].contains("channel"), "{:?}", expected[1][0]);
}

/// bronze (orders, with `ts` = `order_id` seconds after the epoch) -> `windows`: orders per
/// customer per 20-second window, appended once the watermark (latest `ts` minus 5 seconds)
/// passes the window's end.
fn windowed_pipeline(landing: &Path, storage: &Path) -> lakeflow::Pipeline {
    use lakeflow::datafusion::functions::datetime::expr_fn::to_timestamp_seconds;
    use lakeflow::prelude::*;
    let landing = landing.display().to_string();
    Pipeline::builder()
        .streaming_table("bronze", move || {
            Ok(read_stream_files(landing.as_str(), csv())?
                .with_column("ts", to_timestamp_seconds(vec![col("order_id")]))?)
        })
        .dataset(
            Dataset::streaming_table("windows", || {
                lakeflow::sql_with(
                    "SELECT window.start AS start, window.end AS end, customer, count(*) AS orders \
                     FROM s GROUP BY window(ts, '20 seconds'), customer",
                    vec![("s".to_string(), read_stream("bronze")?)],
                )
            })
            .watermark("ts", std::time::Duration::from_secs(5)),
        )
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// The moments of the windowed flow (the second flow of a run) to crash at.
const WATERMARK_FAILPOINTS: &[&str] = &[
    "before_offsets:2",
    "after_offsets:2",
    "mid_write:2",
    "after_commit:2",
    "after_checkpoint:2",
];

/// A streaming aggregation with a watermark across crashes: killed at any moment of the run
/// that closes windows, the rerun appends each window once, as an uninterrupted run does.
#[test]
fn a_watermarked_aggregation_killed_at_any_moment_appends_each_window_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let windowed = |landing: &Path, storage: &Path| {
        let mut command = child(landing, storage);
        command.env("LAKEFLOW_CRASH_WATERMARK", "1");
        command
    };
    let landing = root.path().join("landing");
    let base = root.path().join("base");
    land(&landing, 0, 0, 40);
    assert!(!run_until(windowed(&landing, &base), None));
    land(&landing, 1, 40, 40);
    let reference = root.path().join("reference");
    copy_dir(&base, &reference);
    assert!(!run_until(windowed(&landing, &reference), None));
    let windows = |storage: &Path| {
        runtime.block_on(async {
            crate::support::sorted_lines(
                &crate::support::delta_rows(&storage.join("windows")).await,
            )
        })
    };
    let expected = windows(&reference);
    // Windows [0, 20), [20, 40) and [40, 60) are closed (watermark 79 - 5 = 74), three
    // customers each; [60, 80) is still open.
    assert_eq!(expected.len(), 1 + 9, "{expected:?}");

    let mut kills = 0;
    for point in WATERMARK_FAILPOINTS {
        let storage = root.path().join(point.replace(':', "_"));
        copy_dir(&base, &storage);
        kills += usize::from(run_until(windowed(&landing, &storage), Some(point)));
        assert!(!run_until(windowed(&landing, &storage), None));
        assert_eq!(
            windows(&storage),
            expected,
            "windows differ after a crash at {point}"
        );
    }
    assert_eq!(
        kills,
        WATERMARK_FAILPOINTS.len(),
        "every failpoint was reached"
    );
}

/// The moments to crash at in the run where a file needs a wider type: as the held schema was
/// widened, after bronze's and silver's tables were rewritten with the wider type, and at the
/// commits of the batch.
const WIDENING_FAILPOINTS: &[&str] = &[
    "schema_evolved",
    "table_widened",
    "table_widened:2",
    "after_commit",
    "after_commit:2",
];

/// Type widening across crashes: killed at any moment between the widened held schema and
/// the last commit of the batch that needed it, the rerun equals an uninterrupted run.
#[test]
fn a_type_widening_killed_at_any_moment_reruns_to_an_uninterrupted_result() {
    // An id beyond INT: order_id is widened to BIGINT.
    let expected = evolution_across_crashes(
        "widen",
        "order_id,customer,amount,status\n3000000000,c1,1.5,ok\n21,c2,2.5,ok\n",
        WIDENING_FAILPOINTS,
    );
    assert_eq!(expected[0].len(), 1 + 22, "bronze has every row once");
    assert!(
        expected[1].iter().any(|l| l.contains("3000000000")),
        "{:?}",
        expected[1]
    );
}

/// Copies the directory `from` to `to`, recursively.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The child side of the crash test; does nothing unless the crash test started it.
#[tokio::test]
#[ignore = "run by the crash test in a child process"]
async fn child_pipeline() {
    let (Some(landing), Some(storage)) = (
        std::env::var_os("LAKEFLOW_CRASH_LANDING"),
        std::env::var_os("LAKEFLOW_CRASH_STORAGE"),
    ) else {
        panic!("run by the crash test only");
    };
    if std::env::var_os("LAKEFLOW_CRASH_WATERMARK").is_some() {
        windowed_pipeline(Path::new(&landing), Path::new(&storage))
            .run()
            .await
            .unwrap();
        return;
    }
    if let Some(mode) = std::env::var_os("LAKEFLOW_CRASH_EVOLVE") {
        // A schema change stops the flow once (Auto Loader's addNewColumns); the job is
        // restarted, as Databricks advises, by running again.
        let widen = mode == "widen";
        let pipeline = evolving_pipeline(Path::new(&landing), Path::new(&storage), widen);
        if let Err(lakeflow::Error::RunFailed { report }) = pipeline.run().await {
            let reason = report.dataset("bronze").and_then(|d| d.reason.clone());
            assert!(
                reason.as_deref().is_some_and(|r| {
                    r.contains("held schema gained") || r.contains("needs wider types")
                }),
                "only the stop at a schema change: {report}"
            );
            pipeline.run().await.unwrap();
        }
        return;
    }
    let mut pipeline = if std::env::var_os("LAKEFLOW_CRASH_QUARANTINE").is_some() {
        quarantined_pipeline(Path::new(&landing), Path::new(&storage))
    } else {
        pipeline(Path::new(&landing), Path::new(&storage))
    };
    #[cfg(feature = "ballista")]
    if let Some(url) = std::env::var_os("LAKEFLOW_CRASH_ENGINE") {
        pipeline = pipeline.cluster(url.to_string_lossy().into_owned());
    }
    if let Some(mode) = std::env::var_os("LAKEFLOW_CRASH_CONCURRENT") {
        // One of several runs started at once: it runs, waits its turn, or is turned away.
        match pipeline.wait_for_storage(mode == "wait").run().await {
            Ok(_) => eprintln!("{}", crate::concurrent::RAN),
            Err(lakeflow::Error::StorageBusy { .. }) => eprintln!("{}", crate::concurrent::BUSY),
            Err(e) => panic!("a concurrent run failed: {e}"),
        }
        return;
    }
    if let Some(table) = std::env::var_os("LAKEFLOW_CRASH_FULL_REFRESH") {
        pipeline = pipeline.full_refresh([table.to_string_lossy().into_owned()]);
    }
    if std::env::var_os("LAKEFLOW_CONTINUOUS").is_some() {
        let summary = pipeline
            .run_continuously(std::time::Duration::from_millis(50))
            .await
            .unwrap();
        assert!(summary.completed_runs > 0);
        eprintln!(
            "continuous mode stopped after {} runs",
            summary.completed_runs
        );
    } else {
        pipeline.run().await.unwrap();
    }
}

/// Continuous mode picks up files as they land and stops cleanly on SIGTERM.
#[test]
fn continuous_mode_processes_new_files_and_stops_on_sigterm() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    let storage = root.path().join("store");
    land(&landing, 0, 0, 40);
    let mut child = child(&landing, &storage)
        .env("LAKEFLOW_CONTINUOUS", "1")
        .spawn()
        .unwrap();
    let bronze_rows = |n: usize| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        while std::time::Instant::now() < deadline {
            if storage.join("bronze/_delta_log").exists()
                && runtime.block_on(crate::support::delta_count(&storage.join("bronze"))) == n
            {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        false
    };
    assert!(bronze_rows(40), "the first file was ingested");
    land(&landing, 1, 40, 40);
    assert!(bronze_rows(80), "a file landed while running was ingested");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let stderr = BufReader::new(child.stderr.take().unwrap());
    let lines: Vec<String> = stderr.lines().map_while(|l| l.ok()).collect();
    let exit = child.wait().unwrap();
    assert!(
        exit.success(),
        "a clean exit after SIGTERM:\n{}",
        lines.join("\n")
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("continuous mode stopped after ")),
        "{lines:?}"
    );
    // Every table as one run over both files gives.
    let reference = root.path().join("reference");
    assert!(!run_child(&landing, &reference, None));
    assert_eq!(
        runtime.block_on(tables(&storage)),
        runtime.block_on(tables(&reference))
    );
}
