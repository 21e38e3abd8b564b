//! Incremental refresh of aggregating materialized views: over random sequences of appends
//! (with NULL keys and values), the merged result equals a full recompute, and the event log
//! says which technique ran. Averages are compared with a tolerance: merging them is floating
//! point arithmetic in another order.

use std::path::Path;
use std::sync::Arc;

use lakeflow::MemoryStorage;
use lakeflow::datafusion::arrow::array::{Array, AsArray};
use lakeflow::datafusion::arrow::datatypes::{DataType, Float64Type};
use lakeflow::datafusion::arrow::record_batch::RecordBatch;
use lakeflow::datafusion::datasource::MemTable;
use lakeflow::datafusion::prelude::SessionContext;
use lakeflow::prelude::*;

use crate::support::{delta_rows, sorted_lines, strings};

/// xorshift64*: deterministic random numbers for the generated appends.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
}

fn land_random(landing: &Path, n: usize, rng: &mut Rng) {
    std::fs::create_dir_all(landing).unwrap();
    let mut text = String::from("k,v\n");
    for _ in 0..rng.below(30) {
        // An empty field is NULL: a key of its own, a value that avg and count(v) leave out.
        let key = ["a", "b", "c", "d", "e", ""][rng.below(6) as usize];
        // Key `e` has only NULL values in the first two files: an average of nothing at first.
        let value = match rng.below(8) {
            _ if key == "e" && n < 2 => String::new(),
            0 => String::new(),
            _ => (rng.below(101) as i64 - 50).to_string(),
        };
        text.push_str(&format!("{key},{value}\n"));
    }
    // Every file has at least one row, so the schema can be inferred from the first one.
    text.push_str("a,1\n");
    std::fs::write(landing.join(format!("part-{n:03}.csv")), text).unwrap();
}

/// Views that merge: every run after the first is incremental. `true`: compared exactly.
const MERGEABLE: [(&str, &str, bool); 3] = [
    (
        "totals",
        "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi FROM events GROUP BY k",
        true,
    ),
    (
        "averages",
        "SELECT k, avg(v) AS mean, count(v) AS n, sum(v) AS s FROM events GROUP BY k",
        false,
    ),
    (
        "overall",
        "SELECT count(v) AS n, avg(v) AS mean, max(v) AS hi FROM events",
        false,
    ),
];

/// Views that look alike but must be recomputed.
const UNMERGEABLE: [(&str, &str, bool); 3] = [
    // No count of the averaged column: the stored average alone cannot be weighted.
    (
        "mean_only",
        "SELECT k, avg(v) AS mean FROM events GROUP BY k",
        false,
    ),
    // count(*) also counts the rows where v is NULL, which avg leaves out.
    (
        "mean_rows",
        "SELECT k, avg(v) AS mean, count(*) AS n FROM events GROUP BY k",
        false,
    ),
    // A new row equal to an old one adds nothing here: the input is not linear.
    (
        "distinct_pairs",
        "SELECT k, count(*) AS n FROM (SELECT DISTINCT k, v FROM events) GROUP BY k",
        true,
    ),
];

/// Where a history's tables are: Delta tables under a directory (what users run), or memory
/// (the same flows and merges, without Parquet and Delta I/O, so more histories fit the time).
enum Store {
    Delta(std::path::PathBuf),
    Memory(Arc<MemoryStorage>),
}

impl Store {
    fn pipeline(&self, landing: &Path, views: &[(&'static str, &'static str, bool)]) -> Pipeline {
        let landing = landing.display().to_string();
        let mut pipeline = Pipeline::builder()
            .streaming_table("events", move || read_stream_files(landing.as_str(), csv()));
        for &(name, query, _) in views {
            pipeline = pipeline.materialized_view(name, move || sql(query));
        }
        let pipeline = pipeline.progress(ProgressMode::Off);
        match self {
            Store::Delta(dir) => pipeline.storage(dir.to_str().unwrap()),
            Store::Memory(storage) => pipeline.storage_backend(storage.clone()),
        }
    }

    async fn rows(&self, table: &str) -> Vec<RecordBatch> {
        match self {
            Store::Delta(dir) => delta_rows(&dir.join(table)).await,
            Store::Memory(storage) => storage.batches(table).unwrap(),
        }
    }
}

/// Each query recomputed over all of `events` by DataFusion alone.
async fn recomputed(events: Vec<RecordBatch>, queries: &[&str]) -> Vec<Vec<RecordBatch>> {
    let ctx = SessionContext::new();
    let table = MemTable::try_new(events[0].schema(), vec![events]).unwrap();
    ctx.register_table("events", Arc::new(table)).unwrap();
    let mut results = Vec::new();
    for query in queries {
        results.push(ctx.sql(query).await.unwrap().collect().await.unwrap());
    }
    results
}

/// Rows as (the text columns, the numeric columns as floats), sorted.
fn numeric_rows(batches: &[RecordBatch]) -> Vec<(Vec<String>, Vec<Option<f64>>)> {
    let mut rows = Vec::new();
    for batch in batches {
        let mut keys = vec![Vec::new(); batch.num_rows()];
        let mut values = vec![Vec::new(); batch.num_rows()];
        for column in batch.columns() {
            if column.data_type().is_numeric() {
                let floats =
                    lakeflow::datafusion::arrow::compute::cast(column, &DataType::Float64).unwrap();
                let floats = floats.as_primitive::<Float64Type>();
                for (row, out) in values.iter_mut().enumerate() {
                    out.push(floats.is_valid(row).then(|| floats.value(row)));
                }
            } else {
                for (row, text) in strings(column).into_iter().enumerate() {
                    keys[row].push(text);
                }
            }
        }
        rows.extend(keys.into_iter().zip(values));
    }
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

/// `stored` equals `expected`: exactly, or (averages) up to floating point rounding.
fn assert_same(stored: &[RecordBatch], expected: &[RecordBatch], exact: bool, context: &str) {
    if exact {
        assert_eq!(sorted_lines(stored), sorted_lines(expected), "{context}");
        return;
    }
    let (a, b) = (numeric_rows(stored), numeric_rows(expected));
    assert_eq!(a.len(), b.len(), "{context}: {a:?} vs {b:?}");
    for ((ka, va), (kb, vb)) in a.iter().zip(&b) {
        let close = va.len() == vb.len()
            && va.iter().zip(vb).all(|(x, y)| match (x, y) {
                (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
                (None, None) => true,
                _ => false,
            });
        assert!(ka == kb && close, "{context}: {a:?} vs {b:?}");
    }
}

/// The technique of each refresh of each of `views`, in run order.
async fn techniques(pipeline: &Pipeline, views: &[(&str, &str, bool)]) -> Vec<Vec<String>> {
    let details = pipeline
        .event_log_sql(
            "SELECT origin.dataset_name, details FROM event_log
             WHERE details LIKE '%technique%' ORDER BY origin.run_id",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let mut all = vec![Vec::new(); views.len()];
    for batch in &details {
        for (dataset, detail) in strings(batch.column(0))
            .iter()
            .zip(strings(batch.column(1)))
        {
            if let Some(i) = views.iter().position(|(name, _, _)| name == dataset) {
                let (_, rest) = detail.split_once(r#""technique":""#).expect("a technique");
                all[i].push(rest.split('"').next().unwrap_or_default().to_string());
            }
        }
    }
    all
}

/// Lands `runs` random files, one per run, checking every view against a recompute after each
/// run; returns each view's techniques.
async fn random_history(
    seed: u64,
    runs: usize,
    views: &[(&'static str, &'static str, bool)],
    delta: bool,
) -> Vec<Vec<String>> {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    let store = if delta {
        Store::Delta(root.path().join("store"))
    } else {
        Store::Memory(Arc::new(MemoryStorage::new()))
    };
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
    for run in 0..runs {
        land_random(&landing, run, &mut rng);
        store.pipeline(&landing, views).run().await.unwrap();
        let queries: Vec<&str> = views.iter().map(|(_, query, _)| *query).collect();
        let expected = recomputed(store.rows("events").await, &queries).await;
        for ((name, _, exact), expected) in views.iter().zip(expected) {
            assert_same(
                &store.rows(name).await,
                &expected,
                *exact,
                &format!("{name}, seed {seed}, run {run}"),
            );
        }
    }
    techniques(&store.pipeline(&landing, views), views).await
}

#[tokio::test]
async fn merging_appends_equals_recomputing_over_random_histories() {
    // The first history on Delta tables, the others in memory.
    for seed in 1..=6u64 {
        let techniques = random_history(seed, 5, &MERGEABLE, seed == 1).await;
        for ((name, _, _), techniques) in MERGEABLE.iter().zip(techniques) {
            assert_eq!(
                techniques,
                [
                    "full_recompute",
                    "incremental",
                    "incremental",
                    "incremental",
                    "incremental"
                ],
                "{name}, seed {seed}: every run after the first merged"
            );
        }
    }
}

#[tokio::test]
async fn an_unmergeable_view_is_recomputed() {
    let techniques = random_history(7, 3, &UNMERGEABLE, false).await;
    for ((name, _, _), techniques) in UNMERGEABLE.iter().zip(techniques) {
        assert_eq!(
            techniques, ["full_recompute"; 3],
            "{name}: recomputed every run"
        );
    }
}

/// A view over a temporary view that is not linear (DISTINCT): `flow.rs` analyzes the plan
/// with temporary views inlined, so it sees the DISTINCT and recomputes.
#[tokio::test]
async fn a_view_over_an_unmergeable_temporary_view_is_recomputed() {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    let storage = Arc::new(MemoryStorage::new());
    let mut rng = Rng(3);
    for run in 0..3 {
        land_random(&landing, run, &mut rng);
        let files = landing.display().to_string();
        Pipeline::builder()
            .streaming_table("events", move || read_stream_files(files.as_str(), csv()))
            .temporary_view("pairs", || sql("SELECT DISTINCT k, v FROM events"))
            .materialized_view("counts", || {
                sql("SELECT k, count(*) AS n FROM pairs GROUP BY k")
            })
            .storage_backend(storage.clone())
            .progress(ProgressMode::Off)
            .run()
            .await
            .unwrap();
        let expected = recomputed(
            storage.batches("events").unwrap(),
            &["SELECT k, count(*) AS n FROM (SELECT DISTINCT k, v FROM events) GROUP BY k"],
        )
        .await;
        assert_eq!(
            sorted_lines(&storage.batches("counts").unwrap()),
            sorted_lines(&expected[0]),
            "run {run}"
        );
    }
}

/// A dimension: a materialized view that does not change while `events` grows (its
/// definition is fixed), and, from `changed_at` on, one with another row.
fn dims_query(run: usize, changed_at: usize) -> &'static str {
    if run < changed_at {
        "SELECT 'a' AS k, 'x' AS g UNION ALL SELECT 'b', 'x' UNION ALL SELECT 'c', 'y' UNION ALL SELECT 'd', CAST(NULL AS STRING)"
    } else {
        "SELECT 'a' AS k, 'x' AS g UNION ALL SELECT 'b', 'y' UNION ALL SELECT 'c', 'y' UNION ALL SELECT 'e', 'z'"
    }
}

/// Views over the fact table `events` joined with the dimension `dims`.
const JOINED: [(&str, &str, bool); 2] = [
    (
        "by_group",
        "SELECT d.g, count(*) AS n, sum(e.v) AS s, min(e.v) AS lo, max(e.v) AS hi FROM events e JOIN dims d ON e.k = d.k GROUP BY d.g",
        true,
    ),
    (
        "by_key_and_group",
        "SELECT e.k, d.g, count(*) AS n, sum(e.v) AS s, count(e.v) AS c, avg(e.v) AS mean FROM events e LEFT JOIN dims d ON e.k = d.k GROUP BY e.k, d.g",
        false,
    ),
];

/// Over random appends to the fact table, a view joining it with an unchanged dimension is
/// merged (the new facts joined with the same dimension), and equals a recompute; the run
/// where the dimension changes recomputes, and the runs after it merge again.
#[tokio::test]
async fn a_fact_joined_with_an_unchanged_dimension_merges_its_appends() {
    for seed in 1..=3u64 {
        let root = tempfile::tempdir().unwrap();
        let landing = root.path().join("landing");
        let store = if seed == 1 {
            Store::Delta(root.path().join("store"))
        } else {
            Store::Memory(Arc::new(MemoryStorage::new()))
        };
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let changed_at = 3;
        let pipeline = |run: usize| {
            let dims = dims_query(run, changed_at);
            store
                .pipeline(&landing, &JOINED)
                .materialized_view("dims", move || sql(dims))
        };
        for run in 0..5 {
            land_random(&landing, run, &mut rng);
            pipeline(run).run().await.unwrap();
            let ctx = SessionContext::new();
            for table in ["events", "dims"] {
                let rows = store.rows(table).await;
                let provider = MemTable::try_new(rows[0].schema(), vec![rows]).unwrap();
                ctx.register_table(table, Arc::new(provider)).unwrap();
            }
            for (name, query, exact) in JOINED {
                let expected = ctx.sql(query).await.unwrap().collect().await.unwrap();
                assert_same(
                    &store.rows(name).await,
                    &expected,
                    exact,
                    &format!("{name}, seed {seed}, run {run}"),
                );
            }
        }
        let techniques = techniques(&pipeline(5), &JOINED).await;
        for ((name, _, _), techniques) in JOINED.iter().zip(techniques) {
            assert_eq!(
                techniques,
                [
                    "full_recompute",
                    "incremental",
                    "incremental",
                    "full_recompute",
                    "incremental"
                ],
                "{name}, seed {seed}: merged unless the dimension changed"
            );
        }
    }
}
