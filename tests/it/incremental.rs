//! Incremental refresh of aggregating materialized views: over random sequences of appends,
//! the merged result equals a full recompute, and the event log says which technique ran.

use std::path::Path;

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
        // An empty key is NULL: a group of its own.
        let key = ["a", "b", "c", "d", ""][rng.below(5) as usize];
        let value = rng.below(101) as i64 - 50;
        text.push_str(&format!("{key},{value}\n"));
    }
    // Every file has at least one row, so the schema can be inferred from the first one.
    text.push_str("a,1\n");
    std::fs::write(landing.join(format!("part-{n:03}.csv")), text).unwrap();
}

const TOTALS: &str =
    "SELECT k, count(*) AS n, sum(v) AS s, min(v) AS lo, max(v) AS hi FROM events GROUP BY k";

fn pipeline(landing: &Path, storage: &Path) -> Pipeline {
    let landing = landing.display().to_string();
    Pipeline::builder()
        .streaming_table("events", move || read_stream_files(landing.as_str(), csv()))
        .materialized_view("totals", || sql(TOTALS))
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// The same aggregation recomputed over all of `events` by DataFusion alone.
async fn recomputed(storage: &Path) -> Vec<String> {
    let ctx = SessionContext::new();
    let events = delta_rows(&storage.join("events")).await;
    let table =
        lakeflow::datafusion::datasource::MemTable::try_new(events[0].schema(), vec![events])
            .unwrap();
    ctx.register_table("events", std::sync::Arc::new(table))
        .unwrap();
    let batches = ctx.sql(TOTALS).await.unwrap().collect().await.unwrap();
    sorted_lines(&batches)
}

#[tokio::test]
async fn merging_appends_equals_recomputing_over_random_histories() {
    let mut incremental_runs = 0;
    for seed in 1..=8u64 {
        let root = tempfile::tempdir().unwrap();
        let landing = root.path().join("landing");
        let storage = root.path().join("store");
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for run in 0..5 {
            land_random(&landing, run, &mut rng);
            pipeline(&landing, &storage).run().await.unwrap();
            assert_eq!(
                sorted_lines(&delta_rows(&storage.join("totals")).await),
                recomputed(&storage).await,
                "seed {seed}, run {run}"
            );
        }
        let techniques = pipeline(&landing, &storage)
            .event_log_sql(
                "SELECT details FROM event_log WHERE origin.dataset_name = 'totals'
                 AND details LIKE '%technique%' ORDER BY origin.run_id",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let techniques: Vec<String> = techniques
            .iter()
            .flat_map(|b| strings(b.column(0)))
            .collect();
        assert!(
            techniques[0].contains(r#""technique":"full_recompute""#),
            "{}",
            techniques[0]
        );
        incremental_runs += techniques
            .iter()
            .filter(|t| t.contains(r#""technique":"incremental""#))
            .count();
    }
    assert_eq!(incremental_runs, 8 * 4, "every run after the first merged");
}

#[tokio::test]
async fn an_unmergeable_view_is_recomputed() {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    let storage = root.path().join("store");
    let mut rng = Rng(7);
    let averages = |landing: &Path, storage: &Path| {
        let landing = landing.display().to_string();
        Pipeline::builder()
            .streaming_table("events", move || read_stream_files(landing.as_str(), csv()))
            .materialized_view("averages", || {
                sql("SELECT k, avg(v) AS mean FROM events GROUP BY k")
            })
            .storage(storage.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    for run in 0..2 {
        land_random(&landing, run, &mut rng);
        averages(&landing, &storage).run().await.unwrap();
    }
    let details = averages(&landing, &storage)
        .event_log_sql(
            "SELECT details FROM event_log WHERE origin.dataset_name = 'averages'
             AND details LIKE '%technique%'",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let details: Vec<String> = details.iter().flat_map(|b| strings(b.column(0))).collect();
    assert_eq!(details.len(), 2);
    assert!(
        details
            .iter()
            .all(|d| d.contains(r#""technique":"full_recompute""#)),
        "{details:?}"
    );
}
