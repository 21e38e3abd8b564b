//! AUTO CDC apply against its floor: a batch of changes applied by lakeflow to a type 1 table,
//! and the same changes applied by one hand-written delta-rs MERGE.
//!
//! ```text
//! cargo bench --bench cdc -- [--rows N] [--changes M] [--runs K] [--floor-dedup join|window]
//! ```
//!
//! Each run, in a fresh temporary directory:
//!
//! - lakeflow: lands a Parquet file of `N` inserts (key `id`, sequence `seq`, an `op` column and
//!   five value columns of mixed types) and runs the pipeline once (the streaming table
//!   `changes`, then the AUTO CDC flow `t_cdc` that builds the type 1 table `t` and its state);
//!   then lands a Parquet file of `M` changes (90 % updates and 5 % deletes of random existing
//!   keys, 5 % new keys, all with higher sequences) and times only the second `run()`. The
//!   run's report also gives the time of the CDC flow alone.
//! - floor: writes the same `N` rows (without `op`) as a Delta table with deltalake, then times
//!   opening it and one delta-rs MERGE of the same `M` changes read from the same Parquet file,
//!   deduplicated per key by highest `seq` (as the CDC flow does; by default a join with
//!   `max(seq)` per key, with `--floor-dedup window` a `row_number()` window, which DataFusion
//!   runs far slower): matched deletes delete, matched updates set every column, unmatched
//!   non-deletes insert.
//!
//! Prints each run's times, rows per second (changes / time) and ratios, then best and median,
//! and checks that both final tables have the same rows.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use lakeflow::AutoCdc;
use lakeflow::datafusion::arrow::array::{
    ArrayRef, BooleanArray, Date32Array, Float64Array, Int32Array, Int64Array, RecordBatch,
    StringArray,
};
use lakeflow::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use lakeflow::datafusion::parquet::arrow::ArrowWriter;
use lakeflow::datafusion::prelude::{ParquetReadOptions, SessionContext};
use lakeflow::prelude::*;

type BenchResult<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The target's columns, in order (the source also has `op`, left out of the target).
const COLUMNS: [&str; 7] = ["id", "seq", "qty", "price", "name", "active", "day"];

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("seq", DataType::Int64, false),
        Field::new("op", DataType::Utf8, false),
        Field::new("qty", DataType::Int32, true),
        Field::new("price", DataType::Float64, true),
        Field::new("name", DataType::Utf8, true),
        Field::new("active", DataType::Boolean, true),
        Field::new("day", DataType::Date32, true),
    ]))
}

/// A small deterministic generator (xorshift64*), so every run lands the same data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One change: key, sequence, operation (`I`, `U` or `D`).
type Change = (i64, i64, &'static str);

/// Writes `changes` with generated values as one Parquet file, in batches of 65,536 rows.
fn land(path: &Path, changes: &[Change], rng: &mut Rng) -> BenchResult<()> {
    std::fs::create_dir_all(path.parent().expect("a file in a directory"))?;
    let file = std::fs::File::create(path)?;
    let mut writer = ArrowWriter::try_new(file, schema(), None)?;
    for chunk in changes.chunks(65_536) {
        let n = chunk.len();
        let mut qty = Vec::with_capacity(n);
        let mut price = Vec::with_capacity(n);
        let mut name = Vec::with_capacity(n);
        let mut active = Vec::with_capacity(n);
        let mut day = Vec::with_capacity(n);
        for (id, _, _) in chunk {
            let r = rng.next();
            qty.push((!r.is_multiple_of(50)).then_some((r % 1000) as i32));
            price.push(Some((r >> 16) as f64 % 100_000.0 / 100.0));
            name.push(
                (!r.is_multiple_of(97)).then(|| format!("customer-{id}-{}", (r >> 8) % 1000)),
            );
            active.push(Some(r & 1 == 0));
            day.push(Some(18_000 + ((r >> 20) % 3650) as i32));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(|c| c.0))),
            Arc::new(Int64Array::from_iter_values(chunk.iter().map(|c| c.1))),
            Arc::new(StringArray::from_iter_values(chunk.iter().map(|c| c.2))),
            Arc::new(Int32Array::from(qty)),
            Arc::new(Float64Array::from(price)),
            Arc::new(StringArray::from(name)),
            Arc::new(BooleanArray::from(active)),
            Arc::new(Date32Array::from(day)),
        ];
        writer.write(&RecordBatch::try_new(schema(), columns)?)?;
    }
    writer.close()?;
    Ok(())
}

/// `rows` inserts of keys `0..rows` at sequence 1.
fn inserts(rows: u64) -> Vec<Change> {
    (0..rows as i64).map(|id| (id, 1, "I")).collect()
}

/// `changes` changes with sequences above every insert: 90 % updates and 5 % deletes of
/// random existing keys (a key may change more than once), 5 % inserts of new keys.
fn changes(rows: u64, changes: u64, rng: &mut Rng) -> Vec<Change> {
    let mut next_new = rows as i64;
    (0..changes as i64)
        .map(|i| {
            let seq = 2 + i;
            match rng.below(100) {
                0..5 => (rng.below(rows) as i64, seq, "D"),
                5..10 => {
                    next_new += 1;
                    (next_new - 1, seq, "I")
                }
                _ => (rng.below(rows) as i64, seq, "U"),
            }
        })
        .collect()
}

fn pipeline(landing: &Path, storage: &Path) -> Pipeline {
    let landing = landing.display().to_string();
    Pipeline::builder()
        .streaming_table("changes", move || {
            read_stream_files(landing.as_str(), parquet())
        })
        .create_streaming_table("t")
        .create_auto_cdc_flow(
            AutoCdc::new("t", "changes")
                .keys(["id"])
                .sequence_by("seq")
                .apply_as_deletes("op = 'D'")
                .except_column_list(["op"]),
        )
        .storage(storage.to_str().expect("a UTF-8 temp path"))
        .progress(ProgressMode::Off)
}

/// For profiling only the timed part of one side: with `CDC_BENCH_PERF_CTL` set to the control
/// FIFO of `perf record --control fifo:CTL -D -1` and `CDC_BENCH_PERF_SIDE` to `lakeflow` or
/// `floor`, sampling is enabled around that side's timed section and disabled after it.
fn perf_control(side: &str, enable: bool) {
    use std::io::Write;
    let (Ok(path), Ok(wanted)) = (
        std::env::var("CDC_BENCH_PERF_CTL"),
        std::env::var("CDC_BENCH_PERF_SIDE"),
    ) else {
        return;
    };
    if wanted != side {
        return;
    }
    let command: &[u8] = if enable { b"enable\n" } else { b"disable\n" };
    if let Ok(mut fifo) = std::fs::OpenOptions::new().write(true).open(path) {
        let _ = fifo.write_all(command);
    }
}

/// What the timed lakeflow run took: the whole run and the CDC flow alone.
struct LakeflowTimes {
    run: Duration,
    flow: Duration,
    changes_flow: Duration,
}

async fn lakeflow_run(
    dir: &Path,
    rows: u64,
    change_rows: &[Change],
    seed: u64,
) -> BenchResult<LakeflowTimes> {
    let landing = dir.join("landing");
    let storage = dir.join("store");
    let mut rng = Rng(seed);
    land(
        &landing.join("0000-inserts.parquet"),
        &inserts(rows),
        &mut rng,
    )?;
    let first = pipeline(&landing, &storage).run().await?;
    assert!(
        first.succeeded(),
        "the initial lakeflow run failed:\n{first}"
    );
    land(&landing.join("0001-changes.parquet"), change_rows, &mut rng)?;
    perf_control("lakeflow", true);
    let started = Instant::now();
    let report = pipeline(&landing, &storage).run().await?;
    let run = started.elapsed();
    perf_control("lakeflow", false);
    assert!(
        report.succeeded(),
        "the timed lakeflow run failed:\n{report}"
    );
    let flow = report.dataset("t_cdc").expect("the CDC flow in the report");
    let changes_flow = report.dataset("changes").expect("the changes table");
    Ok(LakeflowTimes {
        run,
        flow: flow.duration,
        changes_flow: changes_flow.duration,
    })
}

/// The floor: the same inserts as a Delta table, then one timed MERGE of the changes.
async fn floor_run(
    dir: &Path,
    rows: u64,
    change_rows: &[Change],
    seed: u64,
    window_dedup: bool,
    verbose: bool,
) -> BenchResult<Duration> {
    let data = dir.join("floor-data");
    let table_dir = dir.join("floor-table");
    let mut rng = Rng(seed);
    let inserts_file = data.join("inserts.parquet");
    let changes_file = data.join("changes.parquet");
    land(&inserts_file, &inserts(rows), &mut rng)?;
    land(&changes_file, change_rows, &mut rng)?;

    std::fs::create_dir_all(&table_dir)?;
    let url = url::Url::from_directory_path(std::fs::canonicalize(&table_dir)?)
        .expect("an absolute path");
    let ctx = SessionContext::new();
    let initial = ctx
        .read_parquet(
            inserts_file.to_str().expect("a UTF-8 path"),
            ParquetReadOptions::default(),
        )
        .await?
        .select_columns(&COLUMNS)?;
    DeltaTable::try_from_url(url.clone())
        .await?
        .write(Vec::new())
        .with_input_plan(initial.into_unoptimized_plan())
        .with_save_mode(SaveMode::Overwrite)
        .await?;

    perf_control("floor", true);
    let started = Instant::now();
    let ctx = SessionContext::new();
    ctx.register_parquet(
        "changes",
        changes_file.to_str().expect("a UTF-8 path"),
        ParquetReadOptions::default(),
    )
    .await?;
    let columns = COLUMNS.join(", ");
    let query = if window_dedup {
        format!(
            "SELECT {columns}, op FROM (
                 SELECT *, row_number() OVER (PARTITION BY id ORDER BY seq DESC) AS __rn
                 FROM changes)
             WHERE __rn = 1"
        )
    } else {
        // Each key's change at its highest sequence (sequences are unique in this bench).
        let columns = COLUMNS.map(|c| format!("c.{c}")).join(", ");
        format!(
            "SELECT {columns}, c.op FROM changes c
             JOIN (SELECT id AS __id, max(seq) AS __seq FROM changes GROUP BY id) m
               ON c.id = m.__id AND c.seq = m.__seq"
        )
    };
    let source = ctx.sql(&query).await?;
    let table = DeltaTable::try_from_url(url).await?;
    let (_, metrics) = table
        .merge(source, "t.id = s.id")
        .with_source_alias("s")
        .with_target_alias("t")
        .when_matched_delete(|d| d.predicate("s.op = 'D'"))?
        .when_matched_update(|mut u| {
            for c in COLUMNS {
                u = u.update(c, format!("s.{c}"));
            }
            u
        })?
        .when_not_matched_insert(|mut i| {
            i = i.predicate("s.op <> 'D'");
            for c in COLUMNS {
                i = i.set(c, format!("s.{c}"));
            }
            i
        })?
        .await?;
    let elapsed = started.elapsed();
    perf_control("floor", false);
    if verbose {
        println!(
            "  floor merge: {} source rows; target rows inserted {}, updated {}, deleted {}, copied {}; files scanned {}, added {}, removed {}",
            metrics.num_source_rows,
            metrics.num_target_rows_inserted,
            metrics.num_target_rows_updated,
            metrics.num_target_rows_deleted,
            metrics.num_target_rows_copied,
            metrics.num_target_files_scanned,
            metrics.num_target_files_added,
            metrics.num_target_files_removed
        );
    }
    Ok(elapsed)
}

/// Row count, sum of keys and sum of sequences of the Delta table at `path`.
async fn fingerprint(path: &Path) -> BenchResult<(i64, i64, i64)> {
    let url =
        url::Url::from_directory_path(std::fs::canonicalize(path)?).expect("an absolute path");
    let table = deltalake::open_table(url).await?;
    let ctx = SessionContext::new();
    ctx.register_table("t", table.table_provider().await?)?;
    let batches = ctx
        .sql("SELECT count(*), sum(id), sum(seq) FROM t")
        .await?
        .collect()
        .await?;
    let value = |i: usize| -> i64 {
        let column =
            lakeflow::datafusion::arrow::compute::cast(batches[0].column(i), &DataType::Int64)
                .expect("an integer");
        column
            .as_any()
            .downcast_ref::<Int64Array>()
            .expect("Int64")
            .value(0)
    };
    Ok((value(0), value(1), value(2)))
}

/// Command-line options.
struct Options {
    rows: u64,
    changes: u64,
    runs: usize,
    /// The floor deduplicates with `row_number()` instead of a max-per-key join.
    window_dedup: bool,
}

fn parse_args() -> Options {
    let (mut rows, mut changes, mut runs) = (1_000_000, 100_000, 3);
    let mut window_dedup = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().and_then(|v| v.parse().ok());
        match arg.as_str() {
            "--rows" => rows = value().unwrap_or(rows),
            "--changes" => changes = value().unwrap_or(changes),
            "--runs" => runs = value().unwrap_or(runs),
            "--floor-dedup" => window_dedup = args.next().as_deref() == Some("window"),
            _ => {} // `cargo bench` passes `--bench`; ignore what is not ours.
        }
    }
    Options {
        rows,
        changes,
        runs: runs.max(1) as usize,
        window_dedup,
    }
}

fn per_second(rows: u64, time: Duration) -> f64 {
    rows as f64 / time.as_secs_f64()
}

#[tokio::main]
async fn main() -> BenchResult<()> {
    let Options {
        rows,
        changes: change_count,
        runs,
        window_dedup,
    } = parse_args();
    let seed = 0x9E37_79B9_7F4A_7C15;
    let change_rows = changes(rows, change_count, &mut Rng(seed ^ 0x5555));
    println!(
        "table: {rows} rows; changes: {change_count} (one Parquet file); runs: {runs}; floor dedup: {}; rows/s = changes / time",
        if window_dedup {
            "row_number() window"
        } else {
            "max(seq) per key, joined"
        }
    );
    let mut run_times = Vec::new();
    let mut flow_times = Vec::new();
    let mut floor_times = Vec::new();
    for run in 1..=runs {
        let dir = tempfile::tempdir()?;
        // Alternate which side goes first, so that machine noise falls on both alike.
        let (lakeflow, floor) = if run % 2 == 1 {
            let l = lakeflow_run(dir.path(), rows, &change_rows, seed).await?;
            (
                l,
                floor_run(dir.path(), rows, &change_rows, seed, window_dedup, run == 1).await?,
            )
        } else {
            let f = floor_run(dir.path(), rows, &change_rows, seed, window_dedup, false).await?;
            (lakeflow_run(dir.path(), rows, &change_rows, seed).await?, f)
        };
        let ours = fingerprint(&dir.path().join("store").join("t")).await?;
        let theirs = fingerprint(&dir.path().join("floor-table")).await?;
        assert_eq!(
            ours.0, theirs.0,
            "row counts differ: lakeflow's table has {} rows, the floor's {}",
            ours.0, theirs.0
        );
        assert_eq!(
            ours, theirs,
            "the tables differ: (rows, sum(id), sum(seq)) lakeflow {ours:?}, floor {theirs:?}"
        );
        println!(
            "run {run}: lakeflow run {:>9.3?} (changes {:>8.3?}, t_cdc flow {:>9.3?}) | floor merge {:>9.3?} | rows/s: run {:>9.0}, flow {:>9.0}, floor {:>9.0} | ratio run/floor {:.2}x, flow/floor {:.2}x | final rows {}",
            lakeflow.run,
            lakeflow.changes_flow,
            lakeflow.flow,
            floor,
            per_second(change_count, lakeflow.run),
            per_second(change_count, lakeflow.flow),
            per_second(change_count, floor),
            lakeflow.run.as_secs_f64() / floor.as_secs_f64(),
            lakeflow.flow.as_secs_f64() / floor.as_secs_f64(),
            ours.0
        );
        run_times.push(lakeflow.run);
        flow_times.push(lakeflow.flow);
        floor_times.push(floor);
    }
    let stats = |t: &mut Vec<Duration>| {
        t.sort();
        (t[0], t[t.len() / 2])
    };
    let (run_best, run_median) = stats(&mut run_times);
    let (flow_best, flow_median) = stats(&mut flow_times);
    let (floor_best, floor_median) = stats(&mut floor_times);
    for (what, best, median) in [
        ("lakeflow run  ", run_best, run_median),
        ("t_cdc flow    ", flow_best, flow_median),
        ("floor merge   ", floor_best, floor_median),
    ] {
        println!(
            "{what} best {best:>9.3?} ({:>9.0} rows/s)  median {median:>9.3?} ({:>9.0} rows/s)",
            per_second(change_count, best),
            per_second(change_count, median)
        );
    }
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!(
        "ratio run/floor: best {:.2}x  median {:.2}x; flow/floor: best {:.2}x  median {:.2}x (target: at most 2x)",
        ratio(run_best, floor_best),
        ratio(run_median, floor_median),
        ratio(flow_best, floor_best),
        ratio(flow_median, floor_median)
    );
    Ok(())
}
