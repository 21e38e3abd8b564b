//! The end-to-end benchmark of the performance issue: an orders workload (CSV landing files →
//! bronze → silver with filters → two aggregating gold views, one joined with a customers
//! table), run by lakeflow and, as the floor, by the same work written directly against
//! DataFusion and deltalake.
//!
//! ```text
//! cargo bench --bench pipeline -- [--rows N] [--scenario all|floor|full|nothing|incremental]
//!                                  [--dir DIR] [--runs K]
//! ```
//!
//! `--scenario all` (the default) generates the input once under `DIR/data-N` (kept for later
//! invocations), then runs every scenario as a child process of this executable, `--runs`
//! times, in the order floor, full, nothing, incremental:
//!
//! - `floor`: the hand-written DataFusion + deltalake version over the 20 landing files.
//! - `full`: lakeflow's first run over the same files into an empty store.
//! - `nothing`: lakeflow again with no new input.
//! - `incremental`: one more landing file with 5 % more rows, then lakeflow.
//!
//! Each child measures its own work (the "run time") and its peak resident set size (`VmHWM`)
//! when that work ends; the parent measures the wall time from starting the child to the
//! `DONE` line the child prints at that moment, so both leave out the checks that follow. The
//! parent asserts that lakeflow wrote the floor's row counts and values (and, after the
//! incremental run, what a recompute over lakeflow's silver table gives), and prints the
//! table. One scenario alone (`--scenario full`, ...) is what to run under `perf`.
//!
//! `--cluster` (built with `--features ballista`): lakeflow's scenarios run their flows on a
//! local Ballista cluster of one scheduler and two executors (two tasks each), processes of
//! the `lakeflow` binary started before the runs; the floor is unchanged.
//!
//! The gold views have `count(amount)` beside `avg(amount)`: lakeflow merges an average into
//! a stored result only through the count of the same argument.

use std::io::{BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use deltalake::DeltaTable;
use deltalake::protocol::SaveMode;
use lakeflow::datafusion::arrow::array::{Array, AsArray};
use lakeflow::datafusion::arrow::datatypes::{DataType, Float64Type};
use lakeflow::datafusion::catalog::TableProvider;
use lakeflow::datafusion::prelude::{CsvReadOptions, SessionContext};
use lakeflow::prelude::*;

/// Landing files of the initial input.
const FILES: u64 = 20;
/// Customers in the customers table.
const CUSTOMERS: u64 = 100_000;
/// The datasets both versions write, in order.
const TABLES: [&str; 4] = [
    "bronze_orders",
    "silver_orders",
    "gold_daily_revenue",
    "gold_segment_stats",
];

const GOLD_DAILY: &str = "SELECT order_date, count(*) AS orders, sum(amount) AS revenue,
        count(amount) AS amounts, avg(amount) AS avg_amount
    FROM silver_orders GROUP BY order_date";

/// Customers come first: DataFusion builds the hash table of a join on its left input when
/// it has no statistics to choose by (CSV files have none), and the build side should be the
/// 100,000 customers, not the orders, whose number grows with the input.
const GOLD_SEGMENT: &str = "SELECT c.segment, count(*) AS orders, sum(o.amount) AS revenue,
        min(o.amount) AS smallest, max(o.amount) AS largest,
        count(o.amount) AS amounts, avg(o.amount) AS avg_amount
    FROM customers c JOIN silver_orders o ON o.customer_id = c.customer_id
    GROUP BY c.segment";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    All,
    Floor,
    Full,
    Nothing,
    Incremental,
}

impl Scenario {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "all" => Scenario::All,
            "floor" => Scenario::Floor,
            "full" => Scenario::Full,
            "nothing" => Scenario::Nothing,
            "incremental" => Scenario::Incremental,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Scenario::All => "all",
            Scenario::Floor => "floor",
            Scenario::Full => "full",
            Scenario::Nothing => "nothing",
            Scenario::Incremental => "incremental",
        }
    }
}

struct Args {
    rows: u64,
    scenario: Scenario,
    dir: PathBuf,
    runs: usize,
    cluster: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        rows: 5_250_000,
        scenario: Scenario::All,
        dir: PathBuf::from("/tmp/lfbench"),
        runs: 1,
        cluster: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--rows" => {
                let value = it.next().map(|v| v.replace('_', ""));
                args.rows = value.and_then(|v| v.parse().ok()).unwrap_or(args.rows);
            }
            "--scenario" => {
                let value = it.next().unwrap_or_default();
                args.scenario = Scenario::parse(&value).unwrap_or_else(|| {
                    eprintln!("--scenario takes all, floor, full, nothing or incremental");
                    std::process::exit(2)
                });
            }
            "--dir" => args.dir = it.next().map(PathBuf::from).unwrap_or(args.dir),
            "--runs" => args.runs = it.next().and_then(|v| v.parse().ok()).unwrap_or(1),
            "--cluster" => args.cluster = true,
            _ => {} // `cargo bench` passes `--bench`; ignore what is not ours.
        }
    }
    args.runs = args.runs.max(1);
    args
}

/// Where one workload's files and stores are.
struct Layout {
    data: PathBuf,
}

impl Layout {
    fn new(dir: &Path, rows: u64) -> Self {
        Layout {
            data: dir.join(format!("data-{rows}")),
        }
    }
    fn landing(&self) -> PathBuf {
        self.data.join("landing")
    }
    /// The extra file of the incremental scenario, outside the landing directory until then.
    fn extra(&self) -> PathBuf {
        self.data
            .join("extra")
            .join(format!("orders-{FILES:03}.csv"))
    }
    fn landed_extra(&self) -> PathBuf {
        self.landing().join(format!("orders-{FILES:03}.csv"))
    }
    fn customers(&self) -> PathBuf {
        self.data.join("customers.csv")
    }
    fn lakeflow_store(&self) -> PathBuf {
        self.data.join("lakeflow")
    }
    fn floor_store(&self) -> PathBuf {
        self.data.join("floor")
    }
    /// Only the initial files are in the landing directory.
    fn unland_extra(&self) {
        let _ = std::fs::remove_file(self.landed_extra());
    }
}

/// What a child prints on its last line and the parent reads.
#[derive(Debug, Clone, Default)]
struct Measured {
    seconds: f64,
    peak_rss_kib: u64,
    rows: Vec<u64>,
    notes: String,
}

impl Measured {
    fn line(&self) -> String {
        let rows: Vec<String> = self.rows.iter().map(u64::to_string).collect();
        format!(
            "RESULT {:.6} {} {} {}",
            self.seconds,
            self.peak_rss_kib,
            rows.join(","),
            self.notes
        )
    }

    fn parse(stdout: &str) -> Option<Self> {
        let line = stdout.lines().rev().find(|l| l.starts_with("RESULT "))?;
        let mut parts = line.splitn(5, ' ').skip(1);
        Some(Measured {
            seconds: parts.next()?.parse().ok()?,
            peak_rss_kib: parts.next()?.parse().ok()?,
            rows: parts
                .next()?
                .split(',')
                .filter_map(|r| r.parse().ok())
                .collect(),
            notes: parts.next().unwrap_or("").to_string(),
        })
    }
}

/// The peak resident set size of this process so far, in KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn main() -> lakeflow::Result<()> {
    let args = parse_args();
    let layout = Layout::new(&args.dir, args.rows);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| lakeflow::Error::storage("tokio runtime", e))?;
    if args.scenario == Scenario::All {
        return runtime.block_on(drive(&args, &layout));
    }
    let measured = runtime.block_on(async {
        match args.scenario {
            Scenario::Floor => floor(&layout).await,
            Scenario::Full | Scenario::Nothing | Scenario::Incremental => {
                lakeflow_run(&layout, args.scenario).await
            }
            Scenario::All => unreachable!("handled above"),
        }
    })?;
    println!("{}", measured.line());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// The local cluster of `--cluster`: processes of the `lakeflow` binary built for this bench.

#[cfg(feature = "ballista")]
fn start_cluster() -> (lakeflow::ballista::cluster::LocalCluster, String) {
    let dir = std::env::temp_dir().join("lfbench-cluster");
    let cluster = lakeflow::ballista::cluster::LocalCluster::start(
        Path::new(env!("CARGO_BIN_EXE_lakeflow")),
        2,
        &dir,
    )
    .expect("the local cluster starts");
    let url = cluster.url();
    (cluster, url)
}

#[cfg(not(feature = "ballista"))]
fn start_cluster() -> ((), String) {
    eprintln!("--cluster needs `cargo bench --features ballista`");
    std::process::exit(2)
}

// ---------------------------------------------------------------------------------------------
// The parent: generate, run each scenario in its own process, check, print.

async fn drive(args: &Args, layout: &Layout) -> lakeflow::Result<()> {
    let cluster = args.cluster.then(start_cluster);
    let engine = cluster.as_ref().map(|(_, url)| url.clone());
    let started = Instant::now();
    generate(layout, args.rows)?;
    eprintln!(
        "input ready under {} ({:.1?})",
        layout.data.display(),
        started.elapsed()
    );
    let order = [
        Scenario::Floor,
        Scenario::Full,
        Scenario::Nothing,
        Scenario::Incremental,
    ];
    let mut results: Vec<(Scenario, Vec<(Measured, Duration)>)> =
        order.iter().map(|s| (*s, Vec::new())).collect();
    for run in 0..args.runs {
        for (i, scenario) in order.iter().enumerate() {
            let (measured, wall) = child(args, *scenario, engine.as_deref())?;
            eprintln!(
                "run {}: {:<11} {:>8.3} s in process, {:>8.3} s wall, peak RSS {:>5} MiB {}",
                run + 1,
                scenario.name(),
                measured.seconds,
                wall.as_secs_f64(),
                measured.peak_rss_kib / 1024,
                measured.notes
            );
            results[i].1.push((measured, wall));
            match scenario {
                Scenario::Full => check_against_floor(layout).await?,
                Scenario::Incremental => check_against_recompute(layout).await?,
                _ => {}
            }
        }
    }
    // Row counts: every full run of lakeflow wrote what every floor run wrote.
    let floor_rows = &results[0].1[0].0.rows;
    for (measured, _) in results[0].1.iter().chain(&results[1].1) {
        assert_eq!(
            &measured.rows, floor_rows,
            "lakeflow and the floor wrote the same rows"
        );
    }
    println!();
    println!(
        "rows: {} orders in {FILES} files (+{} in the incremental file), {CUSTOMERS} customers; {} run(s), median",
        args.rows,
        extra_rows(args.rows),
        args.runs
    );
    for (table, rows) in TABLES.iter().zip(floor_rows) {
        println!("  {table}: {rows} rows (floor and lakeflow alike)");
    }
    let median = |runs: &Vec<(Measured, Duration)>| {
        let mut seconds: Vec<f64> = runs.iter().map(|(m, _)| m.seconds).collect();
        let mut walls: Vec<f64> = runs.iter().map(|(_, w)| w.as_secs_f64()).collect();
        let peak = runs.iter().map(|(m, _)| m.peak_rss_kib).max().unwrap_or(0);
        seconds.sort_by(f64::total_cmp);
        walls.sort_by(f64::total_cmp);
        (seconds[seconds.len() / 2], walls[walls.len() / 2], peak)
    };
    let (floor_s, floor_wall, _) = median(&results[0].1);
    let (full_s, full_wall, _) = median(&results[1].1);
    let rounds: Vec<String> = results[1]
        .1
        .iter()
        .zip(&results[3].1)
        .map(|((full, _), (incremental, _))| {
            format!("{:.1} %", 100.0 * incremental.seconds / full.seconds)
        })
        .collect();
    println!(
        "incremental / full run time, per round: {}",
        rounds.join(", ")
    );
    println!();
    println!(
        "| scenario | run time | process wall time | ratio | peak RSS (highest) |\n|---|---|---|---|---|"
    );
    for (scenario, runs) in &results {
        let (s, wall, peak) = median(runs);
        let ratio = match scenario {
            Scenario::Floor => "1.00x (the floor)".to_string(),
            Scenario::Full => format!("{:.2}x floor (wall {:.2}x)", s / floor_s, wall / floor_wall),
            _ => format!(
                "{:.1} % of full (wall {:.1} %)",
                100.0 * s / full_s,
                100.0 * wall / full_wall
            ),
        };
        println!(
            "| {} | {:.3} s | {:.3} s | {} | {} MiB |",
            scenario.name(),
            s,
            wall,
            ratio,
            peak / 1024
        );
    }
    Ok(())
}

/// Runs one scenario as a child process of this executable. The wall time is from starting
/// the process to its `DONE` line, printed when the measured work ends: it includes process
/// start, not the checks the child makes afterwards.
fn child(
    args: &Args,
    scenario: Scenario,
    engine: Option<&str>,
) -> lakeflow::Result<(Measured, Duration)> {
    let exe = std::env::current_exe().map_err(|e| lakeflow::Error::storage("current_exe", e))?;
    let started = Instant::now();
    let mut command = Command::new(exe);
    if let Some(url) = engine {
        command.env("LAKEFLOW_BENCH_ENGINE", url);
    }
    let mut process = command
        .args(["--scenario", scenario.name(), "--rows"])
        .arg(args.rows.to_string())
        .arg("--dir")
        .arg(&args.dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| lakeflow::Error::storage("child process", e))?;
    let mut stderr = process.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut wall = None;
    let mut stdout = String::new();
    for line in BufReader::new(process.stdout.take().expect("piped")).lines() {
        let line = line.map_err(|e| lakeflow::Error::storage("child output", e))?;
        if line == DONE {
            wall.get_or_insert(started.elapsed());
        }
        stdout.push_str(&line);
        stdout.push('\n');
    }
    let status = process
        .wait()
        .map_err(|e| lakeflow::Error::storage("child process", e))?;
    let errors = errors.join().unwrap_or_default();
    if !status.success() {
        eprintln!("{stdout}{errors}");
        panic!("scenario {} failed: {status}", scenario.name());
    }
    let measured = Measured::parse(&stdout).unwrap_or_else(|| {
        panic!(
            "scenario {} printed no RESULT line:\n{stdout}",
            scenario.name()
        )
    });
    Ok((measured, wall.unwrap_or_else(|| started.elapsed())))
}

/// What a child prints, alone on a line, the moment its measured work ends.
const DONE: &str = "DONE";

/// Ends the measurement: the elapsed time and peak RSS, and the `DONE` line for the parent.
fn done(started: Instant) -> (f64, u64) {
    let seconds = started.elapsed().as_secs_f64();
    let peak = peak_rss_kib();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{DONE}");
    let _ = out.flush();
    (seconds, peak)
}

// ---------------------------------------------------------------------------------------------
// lakeflow

fn pipeline(layout: &Layout) -> Pipeline {
    let landing = layout.landing().display().to_string();
    let pipeline = Pipeline::builder()
        .external_table(
            "customers",
            SourceSpec::csv(layout.customers().display().to_string()),
        )
        .streaming_table("bronze_orders", move || {
            read_stream_files(landing.as_str(), csv())
        })
        .streaming_table("silver_orders", || {
            Ok(read_stream("bronze_orders")?.filter(
                col("status")
                    .eq(lit("completed"))
                    .and(col("amount").gt(lit(0.0))),
            )?)
        })
        .materialized_view("gold_daily_revenue", || sql(GOLD_DAILY))
        .materialized_view("gold_segment_stats", || sql(GOLD_SEGMENT))
        .storage(layout.lakeflow_store().display().to_string())
        .progress(ProgressMode::Off);
    // `LAKEFLOW_BENCH_ENGINE=df://host:port` (built with `--features ballista`): the flows
    // run on that Ballista cluster.
    #[cfg(feature = "ballista")]
    if let Ok(url) = std::env::var("LAKEFLOW_BENCH_ENGINE") {
        return pipeline.cluster(url);
    }
    pipeline
}

async fn lakeflow_run(layout: &Layout, scenario: Scenario) -> lakeflow::Result<Measured> {
    match scenario {
        Scenario::Full => {
            layout.unland_extra();
            let _ = std::fs::remove_dir_all(layout.lakeflow_store());
        }
        Scenario::Incremental if !layout.landed_extra().exists() => {
            std::fs::hard_link(layout.extra(), layout.landed_extra())
                .or_else(|_| std::fs::copy(layout.extra(), layout.landed_extra()).map(|_| ()))
                .map_err(|e| lakeflow::Error::storage("landing the extra file", e))?;
        }
        _ => {}
    }
    let started = Instant::now();
    let report = pipeline(layout).run().await?;
    let (seconds, peak_rss_kib) = done(started);
    eprintln!("{report}");
    // Which technique each view used, from the event log (after the measurement).
    let techniques = pipeline(layout)
        .event_log_sql(
            "SELECT origin.dataset_name, details FROM event_log
             WHERE origin.run_id = (SELECT max(origin.run_id) FROM event_log)
               AND details LIKE '%technique%' AND origin.dataset_name LIKE 'gold%'
             ORDER BY origin.dataset_name",
        )
        .await?
        .collect()
        .await?;
    let mut notes = Vec::new();
    for batch in &techniques {
        let names = strings(batch.column(0).as_ref());
        let details = strings(batch.column(1).as_ref());
        for (name, detail) in names.iter().zip(details) {
            let technique = json_field(&detail, "technique");
            notes.push(format!("{name}={technique}"));
        }
    }
    Ok(Measured {
        seconds,
        peak_rss_kib,
        rows: table_rows(&layout.lakeflow_store()).await?,
        notes: notes.join(" "),
    })
}

/// The value of `"field":"value"` in a JSON text, without a JSON parser.
fn json_field(json: &str, field: &str) -> String {
    let key = format!("\"{field}\":\"");
    json.split_once(&key)
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(value, _)| value.to_string())
        .unwrap_or_else(|| "?".into())
}

// ---------------------------------------------------------------------------------------------
// The floor: the same tables, written by hand with DataFusion and deltalake.

/// Writes `df` to the Delta table at `path`, replacing what is there, streaming the batches
/// into the writer.
async fn write_delta(path: &Path, df: DataFrame) -> Result<DeltaTable, deltalake::DeltaTableError> {
    std::fs::create_dir_all(path)?;
    let url = url::Url::from_directory_path(path).expect("an absolute path");
    DeltaTable::try_from_url(url)
        .await?
        .write(Vec::new())
        .with_input_plan(df.into_unoptimized_plan())
        .with_save_mode(SaveMode::Overwrite)
        .await
}

async fn floor(layout: &Layout) -> lakeflow::Result<Measured> {
    layout.unland_extra();
    let store = layout.floor_store();
    let _ = std::fs::remove_dir_all(&store);
    let started = Instant::now();
    let err = |e: deltalake::DeltaTableError| lakeflow::Error::storage("floor", e);

    let ctx = SessionContext::new();
    let orders = ctx
        .read_csv(
            format!("{}/", layout.landing().display()),
            CsvReadOptions::new(),
        )
        .await?;
    let bronze = write_delta(&store.join(TABLES[0]), orders)
        .await
        .map_err(err)?;

    let bronze = ctx.read_table(bronze.table_provider().await?)?;
    let silver = bronze.filter(
        col("status")
            .eq(lit("completed"))
            .and(col("amount").gt(lit(0.0))),
    )?;
    let silver = write_delta(&store.join(TABLES[1]), silver)
        .await
        .map_err(err)?;

    ctx.register_table("silver_orders", silver.table_provider().await?)?;
    ctx.register_csv(
        "customers",
        layout.customers().display().to_string(),
        CsvReadOptions::new(),
    )
    .await?;
    for (table, query) in [(TABLES[2], GOLD_DAILY), (TABLES[3], GOLD_SEGMENT)] {
        let df = ctx.sql(query).await?;
        write_delta(&store.join(table), df).await.map_err(err)?;
    }
    let (seconds, peak_rss_kib) = done(started);
    Ok(Measured {
        seconds,
        peak_rss_kib,
        rows: table_rows(&store).await?,
        notes: String::new(),
    })
}

// ---------------------------------------------------------------------------------------------
// Checks (in the parent, not measured).

async fn open(dir: &Path) -> lakeflow::Result<Arc<dyn TableProvider>> {
    let url = url::Url::from_directory_path(dir).expect("an absolute path");
    let table = deltalake::open_table(url)
        .await
        .map_err(|e| lakeflow::Error::storage(dir.display().to_string(), e))?;
    Ok(table.table_provider().await?)
}

/// Row counts of the four tables under `store`.
async fn table_rows(store: &Path) -> lakeflow::Result<Vec<u64>> {
    let ctx = SessionContext::new();
    let mut rows = Vec::new();
    for table in TABLES {
        let count = ctx
            .read_table(open(&store.join(table)).await?)?
            .count()
            .await?;
        rows.push(count as u64);
    }
    Ok(rows)
}

/// A gold table as `key -> values`: the first column as text, the others as floats.
async fn gold(
    df: DataFrame,
) -> lakeflow::Result<std::collections::BTreeMap<String, Vec<Option<f64>>>> {
    let mut out = std::collections::BTreeMap::new();
    for batch in df.collect().await? {
        let keys = strings(batch.column(0).as_ref());
        let columns: Vec<_> = (1..batch.num_columns())
            .map(|i| {
                lakeflow::datafusion::arrow::compute::cast(batch.column(i), &DataType::Float64)
            })
            .collect::<Result<_, _>>()
            .map_err(|e| lakeflow::Error::DataFusion(e.into()))?;
        for (row, key) in keys.into_iter().enumerate() {
            let values = columns
                .iter()
                .map(|c| {
                    let c = c.as_primitive::<Float64Type>();
                    c.is_valid(row).then(|| c.value(row))
                })
                .collect();
            out.insert(key, values);
        }
    }
    Ok(out)
}

fn assert_close(
    what: &str,
    a: &std::collections::BTreeMap<String, Vec<Option<f64>>>,
    b: &std::collections::BTreeMap<String, Vec<Option<f64>>>,
) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        b.keys().collect::<Vec<_>>(),
        "{what}: the same groups"
    );
    for (key, left) in a {
        for (x, y) in left.iter().zip(&b[key]) {
            let close = match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                (None, None) => true,
                _ => false,
            };
            assert!(close, "{what}: group {key}: {left:?} vs {:?}", b[key]);
        }
    }
}

/// After the full run: lakeflow's gold tables hold the floor's values.
async fn check_against_floor(layout: &Layout) -> lakeflow::Result<()> {
    let ctx = SessionContext::new();
    for table in &TABLES[2..] {
        let ours = gold(ctx.read_table(open(&layout.lakeflow_store().join(table)).await?)?).await?;
        let floor = gold(ctx.read_table(open(&layout.floor_store().join(table)).await?)?).await?;
        assert_close(&format!("{table}, lakeflow vs floor"), &ours, &floor);
    }
    eprintln!("checked: lakeflow's gold tables equal the floor's");
    Ok(())
}

/// After the incremental run: lakeflow's gold tables equal a recompute over its silver table.
async fn check_against_recompute(layout: &Layout) -> lakeflow::Result<()> {
    let ctx = SessionContext::new();
    let store = layout.lakeflow_store();
    ctx.register_table("silver_orders", open(&store.join(TABLES[1])).await?)?;
    ctx.register_csv(
        "customers",
        layout.customers().display().to_string(),
        CsvReadOptions::new(),
    )
    .await?;
    for (table, query) in [(TABLES[2], GOLD_DAILY), (TABLES[3], GOLD_SEGMENT)] {
        let stored = gold(ctx.read_table(open(&store.join(table)).await?)?).await?;
        let recomputed = gold(ctx.sql(query).await?).await?;
        assert_close(
            &format!("{table}, after the incremental run vs recomputed"),
            &stored,
            &recomputed,
        );
    }
    eprintln!("checked: after the incremental run, lakeflow's gold tables equal a recompute");
    Ok(())
}

/// The values of a column as text (any string, date or number type).
fn strings(column: &dyn Array) -> Vec<String> {
    let utf8 = lakeflow::datafusion::arrow::compute::cast(column, &DataType::Utf8)
        .expect("castable to text");
    utf8.as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("NULL").to_string())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The input.

fn extra_rows(rows: u64) -> u64 {
    rows.div_ceil(20)
}

/// Writes `customers.csv`, `landing/orders-000..019.csv` (`rows` orders in all) and the extra
/// file of 5 % more, unless a complete set for `rows` is there. Deterministic.
fn generate(layout: &Layout, rows: u64) -> lakeflow::Result<()> {
    let io = |e: std::io::Error| lakeflow::Error::storage(layout.data.display().to_string(), e);
    let done = layout.data.join("_complete");
    if done.exists() {
        return Ok(());
    }
    let _ = std::fs::remove_dir_all(&layout.data);
    std::fs::create_dir_all(layout.landing()).map_err(io)?;
    std::fs::create_dir_all(layout.extra().parent().expect("in a directory")).map_err(io)?;
    let mut rng = Rng(0x5eed_1a4e_f10e);
    let countries = ["FR", "DE", "US", "JP", "BR", "IN", "GB", "ES"];
    let segments = ["consumer", "smb", "enterprise", "public"];
    let mut out = BufWriter::new(std::fs::File::create(layout.customers()).map_err(io)?);
    writeln!(out, "customer_id,segment,country").map_err(io)?;
    for id in 0..CUSTOMERS {
        let segment = segments[rng.below(segments.len() as u64) as usize];
        let country = countries[rng.below(countries.len() as u64) as usize];
        writeln!(out, "{id},{segment},{country}").map_err(io)?;
    }
    out.flush().map_err(io)?;

    let per_file = rows.div_ceil(FILES);
    let mut order_id = 0;
    for file in 0..FILES {
        let path = layout.landing().join(format!("orders-{file:03}.csv"));
        let end = (order_id + per_file).min(rows);
        write_orders(&path, order_id..end, &mut rng).map_err(io)?;
        order_id = end;
    }
    write_orders(
        &layout.extra(),
        order_id..order_id + extra_rows(rows),
        &mut rng,
    )
    .map_err(io)?;
    std::fs::write(done, format!("{rows}\n")).map_err(io)
}

fn write_orders(path: &Path, ids: std::ops::Range<u64>, rng: &mut Rng) -> std::io::Result<()> {
    let statuses = [
        "completed",
        "completed",
        "completed",
        "pending",
        "cancelled",
        "test",
    ];
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "order_id,customer_id,order_date,amount,status")?;
    for order_id in ids {
        let customer = rng.below(CUSTOMERS);
        let month = 1 + rng.below(12);
        let day = 1 + rng.below(28);
        let cents = rng.below(50_000) as i64 - 1_000;
        let status = statuses[rng.below(statuses.len() as u64) as usize];
        let sign = if cents < 0 { "-" } else { "" };
        let cents = cents.unsigned_abs();
        writeln!(
            out,
            "{order_id},{customer},2026-{month:02}-{day:02},{sign}{}.{:02},{status}",
            cents / 100,
            cents % 100
        )?;
    }
    out.flush()
}

/// xorshift64*: small, fast and the same on every machine.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}
