//! AUTO CDC: a customer change feed applied in several runs as SCD type 1 (the latest row
//! per customer) and SCD type 2 (every version), then the type 2 history of one customer.
//!
//! The feed is generated: each run lands one CSV file of changes — updates, deletes, and
//! changes that arrive late, out of order — and the pipeline applies only the new file.
//!
//! ```text
//! cargo run --example cdc -- [--storage DIR] [--customers N] [--runs N]
//! ```

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use lakeflow::AutoCdc;
use lakeflow::datafusion::prelude::SessionContext;
use lakeflow::prelude::*;

const CITIES: [&str; 5] = ["Lyon", "Porto", "Turin", "Ghent", "Bergen"];
const TIERS: [&str; 3] = ["bronze", "silver", "gold"];

/// A small deterministic generator (xorshift), so every run of the example is the same.
struct Random(u64);

impl Random {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

/// The changes of run `run`: every customer's sequence numbers grow by run, and about one
/// change in eight is held back and delivered one run late.
fn land(landing: &Path, run: u64, customers: u64, late: &mut Vec<String>, random: &mut Random) {
    let mut text = String::from("customer_id,name,city,tier,op,updated_at\n");
    for line in late.drain(..) {
        text.push_str(&line);
    }
    for id in 0..customers {
        if run > 0 && random.below(3) == 0 {
            continue; // this customer did not change this run
        }
        let op = if run > 0 && random.below(12) == 0 {
            "DELETE"
        } else {
            "UPSERT"
        };
        let city = CITIES[random.below(CITIES.len() as u64) as usize];
        let tier = TIERS[(random.below(4).min(2)) as usize];
        let line = format!(
            "{id},customer {id},{city},{tier},{op},{}\n",
            run * 100 + random.below(50)
        );
        if run > 0 && random.below(8) == 0 {
            late.push(line);
        } else {
            text.push_str(&line);
        }
    }
    std::fs::create_dir_all(landing).expect("the landing directory can be created");
    std::fs::write(landing.join(format!("changes-{run:03}.csv")), text)
        .expect("the change file can be written");
}

fn pipeline(landing: &Path, storage: &Path) -> Pipeline {
    let landing = landing.display().to_string();
    let customers = |target: &str| {
        AutoCdc::new(target, "customer_changes")
            .keys(["customer_id"])
            .sequence_by("updated_at")
            .apply_as_deletes("op = 'DELETE'")
            .except_column_list(["op"])
    };
    Pipeline::builder()
        .name("cdc_example")
        .streaming_table("customer_changes", move || {
            read_stream_files(landing.as_str(), csv())
        })
        .create_streaming_table("customers")
        .create_auto_cdc_flow(customers("customers"))
        .create_streaming_table("customers_history")
        .create_auto_cdc_flow(
            customers("customers_history")
                .except_column_list(["op", "updated_at"])
                .track_history_column_list(["city", "tier"])
                .stored_as_scd_type(2),
        )
        .storage(storage.to_str().expect("a UTF-8 path"))
        .progress(ProgressMode::Off)
}

struct Args {
    storage: PathBuf,
    customers: u64,
    runs: u64,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        storage: PathBuf::from("lakeflow-data/cdc-example"),
        customers: 20,
        runs: 4,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{flag} takes a whole number"))
        };
        match flag.as_str() {
            "--storage" => args.storage = PathBuf::from(value()?),
            "--customers" => args.customers = number(value()?)?.max(1),
            "--runs" => args.runs = number(value()?)?,
            "--help" | "-h" => {
                return Err("usage: cdc [--storage DIR] [--customers N] [--runs N]".into());
            }
            other => return Err(format!("unknown argument `{other}`; try --help")),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> lakeflow::Result<()> {
    let Args {
        storage,
        customers,
        runs,
    } = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    // A fresh feed each time the example runs.
    let _ = std::fs::remove_dir_all(&storage);
    let landing = storage.join("landing");
    let tables = storage.join("tables");

    let mut random = Random(0x9e37_79b9_7f4a_7c15);
    let mut late = Vec::new();
    for run in 0..runs {
        land(&landing, run, customers, &mut late, &mut random);
        let report = pipeline(&landing, &tables).run().await?;
        println!("run {run}:\n{report}");
    }

    // The type 2 history of the customer with the most versions, read back from Delta.
    let storage = lakeflow::DeltaStorage::open(tables.to_str().expect("a UTF-8 path"))?;
    let Some(history) = lakeflow::Storage::table(&storage, "customers_history").await? else {
        println!("no run wrote customers_history (--runs 0?)");
        return Ok(());
    };
    let ctx = SessionContext::new();
    ctx.register_table("history", history)?;
    let rows = ctx
        .sql(
            "SELECT * FROM history WHERE customer_id = (
                 SELECT customer_id FROM history GROUP BY customer_id
                 ORDER BY count(*) DESC, customer_id LIMIT 1)
             ORDER BY \"__START_AT\"",
        )
        .await?
        .collect()
        .await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "history of the customer with the most versions (type 2):"
    );
    let _ = write!(
        out,
        "{}",
        lakeflow::datafusion::arrow::util::pretty::pretty_format_batches(&rows)
            .map_err(|e| lakeflow::Error::Internal(e.to_string()))?
    );
    println!("{out}");
    Ok(())
}
