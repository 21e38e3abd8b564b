//! The cost of a run as a pipeline ages (issue 15): the project `lakeflow init` makes, fed one
//! two-row landing file per run, run again and again with the release `lakeflow` binary.
//!
//! ```text
//! cargo bench --bench history -- [--runs N] [--dir DIR]
//! ```
//!
//! Each run is a child process (`lakeflow run --progress off`), timed from spawn to exit. The
//! output is the median run time of each block of 10 runs, the ratio of the last block to runs
//! 11–20, and what the storage holds at the end: active data files per table (from the Delta
//! log) and the files under `_lakeflow/`. Rows are checked too: every landed row is in
//! `orders_bronze` exactly once.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Args {
    runs: usize,
    dir: PathBuf,
}

fn parse_args() -> Args {
    let mut args = Args {
        runs: 300,
        dir: std::env::temp_dir().join("lfhistory"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--runs" => args.runs = it.next().and_then(|v| v.parse().ok()).unwrap_or(300),
            "--dir" => args.dir = it.next().map(PathBuf::from).unwrap_or(args.dir),
            // `cargo bench` passes `--bench`.
            _ => {}
        }
    }
    args
}

fn lakeflow(dir: &Path, args: &[&str]) -> Duration {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_lakeflow"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the lakeflow binary runs");
    let elapsed = started.elapsed();
    assert!(
        out.status.success(),
        "lakeflow {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    elapsed
}

fn median(times: &[Duration]) -> Duration {
    let mut sorted = times.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn files_under(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| {
                    let path = e.path();
                    if path.is_dir() { files_under(&path) } else { 1 }
                })
                .sum()
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args = parse_args();
    let _ = std::fs::remove_dir_all(&args.dir);
    std::fs::create_dir_all(&args.dir).unwrap();
    lakeflow(&args.dir, &["init", "--name", "proj"]);
    let project = args.dir.join("proj");
    let landing = project.join("data/landing");
    // The template's own file has rows too; count them as landed.
    let mut landed = std::fs::read_to_string(landing.join("orders-0001.csv"))
        .unwrap()
        .lines()
        .count()
        - 1;
    let mut times = Vec::with_capacity(args.runs);
    for run in 1..=args.runs {
        if run > 1 {
            let text = format!(
                "order_id,customer,amount\n{},c{},{}.5\n{},c{},-1.0\n",
                run * 10,
                run % 7,
                run,
                run * 10 + 1,
                run % 5
            );
            std::fs::write(landing.join(format!("orders-{run:05}.csv")), text).unwrap();
            landed += 2;
        }
        times.push(lakeflow(&project, &["run", "--progress", "off"]));
    }
    println!("runs   median run time");
    for (block, chunk) in times.chunks(10).enumerate() {
        println!(
            "{:>3}-{:<3} {:>7.1} ms",
            block * 10 + 1,
            block * 10 + chunk.len(),
            median(chunk).as_secs_f64() * 1e3
        );
    }
    if times.len() >= 30 {
        let early = median(&times[10..20]);
        let late = median(&times[times.len() - 10..]);
        println!(
            "runs 11-20: {:.1} ms, runs {}-{}: {:.1} ms, ratio {:.2}",
            early.as_secs_f64() * 1e3,
            times.len() - 9,
            times.len(),
            late.as_secs_f64() * 1e3,
            late.as_secs_f64() / early.as_secs_f64()
        );
    }
    let storage = project.join("lakeflow-data");
    for table in [
        "orders_bronze",
        "orders_silver",
        "revenue_by_customer",
        "_lakeflow/event_log",
    ] {
        let dir = std::fs::canonicalize(storage.join(table)).unwrap();
        let url = url::Url::from_directory_path(dir).unwrap();
        let delta = deltalake::open_table(url).await.unwrap();
        let state = delta.snapshot().unwrap();
        println!(
            "{table}: version {}, {} active data files",
            delta.version().unwrap_or_default(),
            state.log_data().num_files()
        );
        if table == "orders_bronze" {
            let ctx = lakeflow::datafusion::prelude::SessionContext::new();
            let rows = ctx
                .read_table(delta.table_provider().await.unwrap())
                .unwrap()
                .count()
                .await
                .unwrap();
            assert_eq!(rows, landed, "every landed row once in orders_bronze");
        }
    }
    println!(
        "files under _lakeflow/: {} (checkpoints: {})",
        files_under(&storage.join("_lakeflow")),
        files_under(&storage.join("_lakeflow/checkpoints"))
    );
}
