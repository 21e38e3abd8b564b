//! Planning cost: a dry run of a generated pipeline of N datasets (default 1,000), in layers
//! that each read two datasets of the layer before, mixing `read(..)` and `sql(..)`.
//! A dry run resolves every query and builds the graph; it reads no data.
//!
//! ```text
//! cargo bench --bench dry_run -- [--datasets N] [--runs K]
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use lakeflow::MemoryStorage;
use lakeflow::prelude::*;

fn pipeline(datasets: usize) -> Pipeline {
    let width = 10;
    let mut pipeline = Pipeline::builder();
    for i in 0..datasets {
        let name = format!("d{i:05}");
        pipeline = if i < width {
            pipeline.materialized_view(name, move || {
                sql(&format!(
                    "SELECT {i} AS id, 'x{i}' AS label, {i}.5 AS amount"
                ))
            })
        } else {
            let left = format!("d{:05}", i - width);
            let right = format!(
                "d{:05}",
                i - width + 1 - (i % width == width - 1) as usize * width
            );
            if i % 2 == 0 {
                pipeline.materialized_view(name, move || {
                    Ok(read(&left)?
                        .union(read(&right)?)?
                        .filter(col("amount").gt(lit(0.0)))?)
                })
            } else {
                pipeline.materialized_view(name, move || {
                    sql(&format!(
                        "SELECT id, label, amount FROM {left} UNION ALL SELECT id, label, amount FROM {right}"
                    ))
                })
            }
        };
    }
    pipeline.storage_backend(Arc::new(MemoryStorage::new()))
}

#[tokio::main]
async fn main() -> lakeflow::Result<()> {
    let mut datasets = 1000;
    let mut runs = 5;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--datasets" => datasets = args.next().and_then(|v| v.parse().ok()).unwrap_or(datasets),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            _ => {}
        }
    }
    let mut times: Vec<Duration> = Vec::new();
    for _ in 0..runs.max(1) {
        let pipeline = pipeline(datasets);
        let started = Instant::now();
        let graph = pipeline.dry_run().await?;
        times.push(started.elapsed());
        assert_eq!(graph.in_order().count(), datasets, "every dataset resolved");
    }
    times.sort();
    println!(
        "dry run of {datasets} datasets: best {:.3?}, median {:.3?} ({} runs)",
        times[0],
        times[times.len() / 2],
        times.len()
    );
    Ok(())
}
