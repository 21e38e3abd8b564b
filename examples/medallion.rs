//! A medallion pipeline: CSV landing files -> bronze -> silver -> gold.
//!
//! Generates a small deterministic orders/customers dataset if it is missing, runs the
//! pipeline and prints the report. The bronze layer ingests the landing directory
//! incrementally: `--land N` drops one more file of N orders there before the run, and only
//! that file is read.
//!
//! ```text
//! cargo run --example medallion -- [--storage DIR] [--data DIR] [--rows N] [--land N]
//! ```

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use lakeflow::prelude::*;

/// Where the generated input files are; set once in `main`.
static DATA: OnceLock<PathBuf> = OnceLock::new();

fn data(file: &str) -> String {
    DATA.get()
        .expect("set in main")
        .join(file)
        .display()
        .to_string()
}

#[materialized_view(comment = "Customer master, from the CRM export")]
#[expect_unique_or_fail("customer_pk", ["customer_id"])]
fn customers() -> Plan {
    read_csv(data("customers.csv"))
}

#[streaming_table(comment = "Orders as they land: each run reads only the new CSV files")]
fn bronze_orders() -> Plan {
    read_stream_files(data("landing"), csv())
}

#[table(
    comment = "Orders without test traffic or refunds",
    partition_cols = ["country"],
    quarantine = true
)]
#[lakeflow::expect("not_cancelled", "status <> 'cancelled'")]
#[expect_or_drop("positive_amount", "amount > 0")]
#[expect_or_fail("has_order_date", "order_date IS NOT NULL")]
fn silver_orders() -> Plan {
    let orders = read_stream("bronze_orders")?.filter(col("status").not_eq(lit("test")))?;
    let customers = read("customers")?.select_columns(&["customer_id", "country", "segment"])?;
    Ok(orders
        .join_on(
            customers,
            datafusion::logical_expr::JoinType::Inner,
            [col("bronze_orders.customer_id").eq(col("customers.customer_id"))],
        )?
        .select(vec![
            col("order_id"),
            col("bronze_orders.customer_id").alias("customer_id"),
            col("order_date"),
            col("amount"),
            col("status"),
            col("country"),
            col("segment"),
        ])?)
}

#[temporary_view(comment = "Completed orders only")]
fn completed_orders() -> Plan {
    Ok(read("silver_orders")?.filter(col("status").eq(lit("completed")))?)
}

#[materialized_view(comment = "Revenue per day and country")]
fn gold_daily_revenue() -> Plan {
    sql(
        "SELECT order_date, country, sum(amount) AS revenue, count(*) AS orders
         FROM completed_orders GROUP BY order_date, country",
    )
}

#[materialized_view(comment = "Spend per customer segment")]
fn gold_segment_stats() -> Plan {
    sql(
        "SELECT segment, count(DISTINCT customer_id) AS customers, sum(amount) AS revenue,
                avg(amount) AS avg_order
         FROM silver_orders GROUP BY segment",
    )
}

struct Args {
    storage: String,
    data: Option<PathBuf>,
    rows: u64,
    land: Option<u64>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        storage: "lakeflow-data/medallion".into(),
        data: None,
        rows: 100_000,
        land: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--storage" => args.storage = value()?,
            "--data" => args.data = Some(PathBuf::from(value()?)),
            "--rows" => {
                args.rows = value()?
                    .replace('_', "")
                    .parse()
                    .map_err(|_| "--rows takes a whole number".to_string())?
            }
            "--land" => {
                args.land = Some(
                    value()?
                        .replace('_', "")
                        .parse()
                        .map_err(|_| "--land takes a whole number".to_string())?,
                )
            }
            "--help" | "-h" => {
                return Err(
                    "usage: medallion [--storage DIR] [--data DIR] [--rows N] [--land N]".into(),
                );
            }
            other => return Err(format!("unknown argument `{other}`; try --help")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> lakeflow::Result<()> {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let data_dir = args
        .data
        .unwrap_or_else(|| PathBuf::from(format!("lakeflow-data/medallion-input-{}", args.rows)));
    generate(&data_dir, args.rows)?;
    if let Some(rows) = args.land {
        land_more(&data_dir, args.rows, rows)?;
    }
    DATA.set(data_dir).expect("set once");

    let report = Pipeline::from_registry()
        .storage(&args.storage)
        .run()
        .await?;
    println!("{report}");
    Ok(())
}

/// Writes `customers.csv` and `landing/orders-NNN.csv` unless they exist. Deterministic.
fn generate(dir: &Path, rows: u64) -> std::io::Result<()> {
    let done = dir.join("_complete");
    if done.exists() {
        return Ok(());
    }
    let landing = dir.join("landing");
    std::fs::create_dir_all(&landing)?;
    let customers = (rows / 50).clamp(10, 100_000);
    let countries = ["FR", "DE", "US", "JP", "BR", "IN", "GB", "ES"];
    let segments = ["consumer", "smb", "enterprise"];
    let mut rng = Rng(0x5eed_1a4e_f10e);

    let mut out = BufWriter::new(std::fs::File::create(dir.join("customers.csv"))?);
    writeln!(out, "customer_id,name,country,segment")?;
    for id in 0..customers {
        let country = countries[rng.below(countries.len() as u64) as usize];
        let segment = segments[rng.below(segments.len() as u64) as usize];
        writeln!(out, "{id},customer {id},{country},{segment}")?;
    }
    out.flush()?;

    let files = (rows / 250_000).clamp(1, 64);
    let per_file = rows.div_ceil(files);
    let statuses = [
        "completed",
        "completed",
        "completed",
        "pending",
        "cancelled",
        "test",
    ];
    let mut order_id = 0u64;
    for file in 0..files {
        let path = landing.join(format!("orders-{file:03}.csv"));
        let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
        writeln!(out, "order_id,customer_id,order_date,amount,status")?;
        let end = (order_id + per_file).min(rows);
        while order_id < end {
            let customer = rng.below(customers);
            let day = 1 + rng.below(28);
            let month = 1 + rng.below(12);
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
            order_id += 1;
        }
        out.flush()?;
    }
    std::fs::write(done, format!("{rows}\n"))
}

/// Writes one more landing file of `rows` orders, numbered after the files already there.
fn land_more(dir: &Path, customers_from_rows: u64, rows: u64) -> std::io::Result<()> {
    let landing = dir.join("landing");
    let index = std::fs::read_dir(&landing)?.count() as u64;
    let customers = (customers_from_rows / 50).clamp(10, 100_000);
    let mut rng = Rng(0x1a4d_0000 + index);
    let path = landing.join(format!("orders-{index:03}.csv"));
    let mut out = BufWriter::new(std::fs::File::create(&path)?);
    writeln!(out, "order_id,customer_id,order_date,amount,status")?;
    let first = 1_000_000_000 * index;
    for order_id in first..first + rows {
        let customer = rng.below(customers);
        let day = 1 + rng.below(28);
        let cents = rng.below(50_000);
        writeln!(
            out,
            "{order_id},{customer},2026-12-{day:02},{}.{:02},completed",
            cents / 100,
            cents % 100
        )?;
    }
    out.flush()?;
    eprintln!("landed {} with {rows} orders", path.display());
    Ok(())
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
