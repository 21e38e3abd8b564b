//! Runs that meet: one writer per storage at a time (the lease), and exactly once even
//! without it (offsets created with put-if-absent, commits that carry their batch's id).

use std::sync::Arc;

use lakeflow::prelude::*;
use lakeflow::{Error, Storage};

use crate::crash::child;
use crate::streaming::{land, pipeline, tables};

/// What a child run says on stderr when it ran, or was turned away by the lease.
pub const RAN: &str = "concurrent run: ran";
/// See [`RAN`].
pub const BUSY: &str = "concurrent run: storage busy";

/// Four `run`s started at once on one project: each either runs (two of them wait their
/// turn) or is turned away with the lease's message, and every table equals one run's.
#[test]
fn four_runs_at_once_write_every_row_once() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    for n in 0..3 {
        land(&landing, n, n as u64 * 40, 40);
    }
    let reference = root.path().join("reference");
    let output = child(&landing, &reference).output().unwrap();
    assert!(output.status.success(), "{output:?}");
    let expected = runtime.block_on(tables(&reference));
    assert_eq!(expected[0].len(), 1 + 120, "bronze has every row once");

    let storage = root.path().join("store");
    let children: Vec<_> = ["wait", "wait", "no-wait", "no-wait"]
        .iter()
        .map(|mode| {
            child(&landing, &storage)
                .env("LAKEFLOW_CRASH_CONCURRENT", mode)
                .spawn()
                .unwrap()
        })
        .collect();
    let (mut ran, mut busy) = (0, 0);
    for child in children {
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{stderr}");
        ran += stderr.matches(RAN).count();
        busy += stderr.matches(BUSY).count();
    }
    assert_eq!(ran + busy, 4, "each run ran or was turned away");
    assert!(ran >= 2, "the two that wait both run, one after the other");
    assert_eq!(
        runtime.block_on(tables(&storage)),
        expected,
        "four runs at once wrote what one run writes"
    );
}

/// A lease left by a run on another machine (which this one cannot see die) holds the
/// storage until it expires: a run is turned away with a message naming the holder, a run
/// that waits goes on once the lease has expired, and the CLI says so with exit code 5.
#[tokio::test]
async fn a_lease_left_by_a_run_elsewhere_holds_until_it_expires() {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    let storage = root.path().join("store");
    land(&landing, 0, 0, 10);
    forge_lease(&storage, "elsewhere", 4242, 2000);
    let busy = pipeline(&landing, &storage).run().await.unwrap_err();
    let text = busy.to_string();
    assert!(matches!(busy, Error::StorageBusy { .. }), "{text}");
    assert!(text.contains("host elsewhere (pid 4242)"), "{text}");
    assert!(text.contains("--wait"), "{text}");
    assert!(!storage.join("bronze").exists(), "nothing was written");

    let report = pipeline(&landing, &storage)
        .wait_for_storage(true)
        .run()
        .await
        .unwrap();
    assert!(report.succeeded(), "{report}");
    let rows =
        crate::support::sorted_lines(&crate::support::delta_rows(&storage.join("bronze")).await);
    assert_eq!(rows.len(), 1 + 10, "{rows:?}");
}

/// Without the lease (two writers that bypass it, as another tool might), batches are still
/// committed once: whoever plans a batch first decides what it covers, the other runs the
/// same batch, and its transaction id lets only one commit land.
#[tokio::test]
async fn two_writers_without_the_lease_commit_each_batch_once() {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    let storage_dir = root.path().join("store");
    let landing_text = landing.display().to_string();
    let def = Pipeline::builder()
        .streaming_table("bronze", move || {
            read_stream_files(landing_text.as_str(), csv())
        })
        .definition()
        .clone();
    for round in 0..3u64 {
        land(&landing, round as usize, round * 30, 30);
        let storage: Arc<dyn Storage> =
            Arc::new(lakeflow::DeltaStorage::open(storage_dir.to_str().unwrap()).unwrap());
        let engine = lakeflow::DataFusionEngine::default();
        let options = lakeflow_core::RunOptions::default();
        let one = def.run_planned(&engine, storage.clone(), &options);
        let two = def.run_planned(&engine, storage.clone(), &options);
        let ((_, one), (_, two)) = tokio::join!(one, two);
        for result in [one, two] {
            if let Err(e) = result {
                let text = format!("{e}");
                assert!(text.contains("at the same time"), "{text}");
            }
        }
        // A later run finishes whatever a conflict left.
        def.run_planned(&engine, storage.clone(), &options)
            .await
            .1
            .unwrap();
        let rows = crate::support::sorted_lines(
            &crate::support::delta_rows(&storage_dir.join("bronze")).await,
        );
        assert_eq!(rows.len(), 1 + 30 * (round as usize + 1), "round {round}");
        let mut ids: Vec<&String> = rows.iter().skip(1).collect();
        ids.dedup();
        assert_eq!(ids.len(), rows.len() - 1, "no row twice");
    }
}

/// Writes the lease a run on another machine (`host`, `pid`) would hold on `storage`, with a
/// heartbeat now and `ttl_ms` to live.
pub fn forge_lease(storage: &std::path::Path, host: &str, pid: u32, ttl_ms: u64) {
    let leases = storage.join("_lakeflow/lease");
    std::fs::create_dir_all(&leases).unwrap();
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::fs::write(
        leases.join("00000000000000000001.json"),
        format!(
            r#"{{"holder": "{host}:{pid}", "host": "{host}", "pid": {pid}, "run": "00000000feedface",
                "started": "{now}", "heartbeat": "{now}", "ttl_ms": {ttl_ms}, "released": false}}"#
        ),
    )
    .unwrap();
}
