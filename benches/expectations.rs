//! The cost of expectations: the same flow with no rules and with five, over generated rows
//! written to Delta. Expectations are checked in the pass that writes, so the difference is
//! the cost of evaluating the rules, not of a second query.
//!
//! ```text
//! cargo bench --bench expectations -- [--rows N] [--runs K]
//! ```
//!
//! Prints the best and median wall time of each variant and the overhead of the five rules.

use std::time::{Duration, Instant};

use lakeflow::prelude::*;

fn source(rows: u64) -> impl Fn() -> Plan + Send + Sync + 'static {
    move || {
        sql(&format!(
            "SELECT value AS order_id,
                    value % 100000 AS customer_id,
                    CAST(value % 9973 AS DOUBLE) / 10.0 - 5.0 AS amount,
                    CASE value % 7 WHEN 0 THEN 'cancelled' WHEN 1 THEN 'pending' ELSE 'completed' END AS status,
                    arrow_cast(value % 365, 'Int32') AS day
             FROM generate_series(1, {rows})"
        ))
    }
}

fn pipeline(rows: u64, rules: bool) -> Pipeline {
    let mut orders = Dataset::materialized_view("orders", source(rows));
    if rules {
        orders = orders
            .expect(
                "known_status",
                "status IN ('completed', 'pending', 'cancelled')",
            )
            .expect("recent", "day >= 0")
            .expect_or_drop("positive_amount", "amount > 0")
            .expect_or_drop("has_customer", "customer_id IS NOT NULL")
            .expect_or_fail("has_id", "order_id IS NOT NULL");
    }
    Pipeline::builder()
        .dataset(orders)
        .progress(ProgressMode::Off)
}

fn parse_args() -> (u64, usize) {
    let mut rows = 5_000_000;
    let mut runs = 3;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--rows" => rows = args.next().and_then(|v| v.parse().ok()).unwrap_or(rows),
            "--runs" => runs = args.next().and_then(|v| v.parse().ok()).unwrap_or(runs),
            _ => {} // `cargo bench` passes `--bench`; ignore what is not ours.
        }
    }
    (rows, runs.max(1))
}

#[tokio::main]
async fn main() -> lakeflow::Result<()> {
    let (rows, runs) = parse_args();
    let mut times: [Vec<Duration>; 2] = [Vec::new(), Vec::new()];
    let mut written = [0u64; 2];
    // Alternate the variants so that machine noise falls on both alike.
    for _ in 0..runs {
        for (i, rules) in [false, true].into_iter().enumerate() {
            let dir = tempfile::tempdir()?;
            let started = Instant::now();
            let report = pipeline(rows, rules)
                .storage(dir.path().to_str().expect("a UTF-8 temp path"))
                .run()
                .await?;
            times[i].push(started.elapsed());
            let rows_written = report.dataset("orders").and_then(|d| d.rows_written);
            assert!(rows_written.is_some_and(|w| w > 0), "the flow wrote rows");
            written[i] = rows_written.unwrap_or(0);
        }
    }
    let stats = |t: &mut Vec<Duration>| {
        t.sort();
        (t[0], t[t.len() / 2])
    };
    let (none_best, none_median) = stats(&mut times[0]);
    let (five_best, five_median) = stats(&mut times[1]);
    println!(
        "rows: {rows}, runs per variant: {runs}; rows written: {} without rules, {} with (drop rules removed the rest)",
        written[0], written[1]
    );
    println!("no expectations:   best {none_best:>8.3?}  median {none_median:>8.3?}");
    println!("five expectations: best {five_best:>8.3?}  median {five_median:>8.3?}");
    let overhead = |a: Duration, b: Duration| (b.as_secs_f64() / a.as_secs_f64() - 1.0) * 100.0;
    println!(
        "overhead: best {:+.1}%  median {:+.1}%",
        overhead(none_best, five_best),
        overhead(none_median, five_median)
    );
    Ok(())
}
