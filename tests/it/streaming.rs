//! Streaming tables: only new input is processed, each batch once; refresh control.

use std::path::{Path, PathBuf};

use lakeflow::prelude::*;
use lakeflow::{Error, FlowStatus};

use crate::support::{delta_count, delta_rows, open_delta, sorted_lines};

/// Writes `landing/orders-<n>.csv` with `rows` rows whose ids start at `first`.
pub fn land(landing: &Path, n: usize, first: u64, rows: u64) {
    std::fs::create_dir_all(landing).unwrap();
    let mut text = String::from("order_id,customer,amount,status\n");
    for id in first..first + rows {
        let status = if id % 5 == 0 { "test" } else { "ok" };
        text.push_str(&format!("{id},c{},{}.5,{status}\n", id % 3, id % 7));
    }
    std::fs::write(landing.join(format!("orders-{n:03}.csv")), text).unwrap();
}

/// bronze (new files) -> silver (new bronze rows, no test orders) -> gold (totals, recomputed);
/// `amounts`, a table two append flows write: silver's new rows, and a backfill once; and
/// silver applied as a change feed per customer: `latest_order` (type 1), `order_history`
/// (type 2).
pub fn pipeline(landing: &Path, storage: &Path) -> Pipeline {
    let landing = landing.display().to_string();
    Pipeline::builder()
        .streaming_table("bronze", move || read_stream_files(landing.as_str(), csv()))
        .table("silver", || {
            Ok(read_stream("bronze")?.filter(col("status").not_eq(lit("test")))?)
        })
        .materialized_view("gold", || {
            sql("SELECT customer, count(*) AS orders, sum(amount) AS amount FROM silver GROUP BY customer")
        })
        .create_streaming_table("amounts")
        .append_flow("amounts", "amounts_live", || {
            Ok(read_stream("silver")?.select(vec![col("order_id"), col("amount")])?)
        })
        .dataset(
            Dataset::append_flow("amounts", "amounts_backfill", || {
                sql("SELECT CAST(-1 AS BIGINT) AS order_id, 0.5D AS amount")
            })
            .once(),
        )
        .create_streaming_table("latest_order")
        .create_auto_cdc_flow(
            lakeflow::AutoCdc::new("latest_order", "silver")
                .keys(["customer"])
                .sequence_by("order_id"),
        )
        .create_streaming_table("order_history")
        .create_auto_cdc_flow(
            lakeflow::AutoCdc::new("order_history", "silver")
                .keys(["customer"])
                .sequence_by("order_id")
                .column_list(["customer", "amount"])
                .stored_as_scd_type(2),
        )
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// Every table of the pipeline, as sorted text lines.
/// Every table of [`pipeline`].
pub const TABLES: [&str; 6] = [
    "bronze",
    "silver",
    "gold",
    "amounts",
    "latest_order",
    "order_history",
];

pub async fn tables(storage: &Path) -> Vec<Vec<String>> {
    let mut all = Vec::new();
    for name in TABLES {
        all.push(sorted_lines(&delta_rows(&storage.join(name)).await));
    }
    all
}

struct Dirs {
    _root: tempfile::TempDir,
    landing: PathBuf,
    storage: PathBuf,
}

fn dirs() -> Dirs {
    let root = tempfile::tempdir().unwrap();
    Dirs {
        landing: root.path().join("landing"),
        storage: root.path().join("store"),
        _root: root,
    }
}

#[tokio::test]
async fn a_second_run_reads_only_the_new_files_and_equals_one_run_over_all() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    land(&d.landing, 1, 10, 10);
    let first = pipeline(&d.landing, &d.storage).run().await.unwrap();
    assert_eq!(first.dataset("bronze").unwrap().rows_written, Some(20));
    assert_eq!(first.dataset("silver").unwrap().rows_written, Some(16));

    land(&d.landing, 2, 20, 5);
    let second = pipeline(&d.landing, &d.storage).run().await.unwrap();
    assert_eq!(
        second.dataset("bronze").unwrap().rows_written,
        Some(5),
        "only the new file"
    );
    assert_eq!(
        second.dataset("silver").unwrap().rows_written,
        Some(4),
        "only the new rows"
    );
    assert_eq!(delta_count(&d.storage.join("bronze")).await, 25);
    assert_eq!(delta_count(&d.storage.join("silver")).await, 20);

    // The event log shows what each run read.
    let pipeline = pipeline(&d.landing, &d.storage);
    let rows = pipeline
        .event_log_sql(
            "SELECT details FROM event_log WHERE event_type = 'flow_progress'
             AND origin.dataset_name = 'bronze' AND message LIKE '%COMPLETED%'
             ORDER BY origin.run_id, sequence",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    let details: Vec<String> = rows
        .iter()
        .flat_map(|b| crate::support::strings(b.column(0)))
        .collect();
    assert_eq!(details.len(), 2);
    assert!(
        details[0].contains(r#""num_output_rows":20"#),
        "{}",
        details[0]
    );
    assert!(
        details[1].contains(r#""num_output_rows":5"#),
        "{}",
        details[1]
    );

    // The same input in one run gives the same tables.
    let once = dirs();
    for (n, file) in std::fs::read_dir(&d.landing).unwrap().enumerate() {
        let file = file.unwrap().path();
        std::fs::create_dir_all(&once.landing).unwrap();
        std::fs::copy(&file, once.landing.join(format!("copy-{n}.csv"))).unwrap();
    }
    super::streaming::pipeline(&once.landing, &once.storage)
        .run()
        .await
        .unwrap();
    assert_eq!(tables(&d.storage).await, tables(&once.storage).await);
}

#[tokio::test]
async fn a_run_with_nothing_new_commits_nothing() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    pipeline(&d.landing, &d.storage).run().await.unwrap();
    let bronze = open_delta(&d.storage.join("bronze")).await.version();
    let silver = open_delta(&d.storage.join("silver")).await.version();
    let again = pipeline(&d.landing, &d.storage).run().await.unwrap();
    assert_eq!(again.dataset("bronze").unwrap().rows_written, Some(0));
    assert_eq!(again.dataset("bronze").unwrap().version, None);
    assert_eq!(
        open_delta(&d.storage.join("bronze")).await.version(),
        bronze
    );
    assert_eq!(
        open_delta(&d.storage.join("silver")).await.version(),
        silver
    );
}

#[tokio::test]
async fn full_refresh_resets_the_checkpoint_and_recomputes() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    pipeline(&d.landing, &d.storage).run().await.unwrap();
    land(&d.landing, 1, 10, 10);
    pipeline(&d.landing, &d.storage).run().await.unwrap();

    let report = pipeline(&d.landing, &d.storage)
        .full_refresh(["bronze", "silver"])
        .run()
        .await
        .unwrap();
    assert_eq!(report.dataset("bronze").unwrap().rows_written, Some(20));
    assert_eq!(report.dataset("gold").unwrap().status, FlowStatus::Excluded);
    assert_eq!(
        delta_count(&d.storage.join("bronze")).await,
        20,
        "replaced, not appended"
    );
    assert_eq!(delta_count(&d.storage.join("silver")).await, 16);
    let checkpoints = d.storage.join("_lakeflow/checkpoints/bronze");
    assert!(
        checkpoints.join("v1/latest.json").exists(),
        "history is kept"
    );
    assert!(
        checkpoints.join("v2/latest.json").exists(),
        "a new checkpoint version"
    );

    // Resetting bronze alone rewrites it, which silver cannot read as a stream.
    pipeline(&d.landing, &d.storage)
        .full_refresh(["bronze"])
        .run()
        .await
        .unwrap();
    let error = pipeline(&d.landing, &d.storage).run().await.unwrap_err();
    let reason = error
        .report()
        .unwrap()
        .dataset("silver")
        .unwrap()
        .reason
        .clone()
        .unwrap();
    assert!(reason.starts_with("table `bronze` version "), "{reason}");
    assert!(reason.contains("is not an append"), "{reason}");
}

#[tokio::test]
async fn refresh_runs_only_the_selection() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    pipeline(&d.landing, &d.storage).run().await.unwrap();
    land(&d.landing, 1, 10, 10);
    let report = pipeline(&d.landing, &d.storage)
        .refresh(["bronze"])
        .run()
        .await
        .unwrap();
    assert_eq!(
        report.dataset("bronze").unwrap().status,
        FlowStatus::Completed
    );
    assert_eq!(
        report.dataset("silver").unwrap().status,
        FlowStatus::Excluded
    );
    assert_eq!(report.dataset("gold").unwrap().status, FlowStatus::Excluded);
    assert_eq!(delta_count(&d.storage.join("silver")).await, 8);

    let error = pipeline(&d.landing, &d.storage)
        .refresh(["nope"])
        .run()
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("dataset `nope`: is not a dataset of this pipeline"),
        "{error}"
    );
}

#[tokio::test]
async fn a_protected_table_is_not_reset() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    let landing = d.landing.display().to_string();
    let protected = || {
        let landing = landing.clone();
        Pipeline::builder()
            .dataset(
                Dataset::streaming_table("bronze", move || {
                    read_stream_files(landing.as_str(), csv())
                })
                .table_property("pipelines.reset.allowed", "false"),
            )
            .storage(d.storage.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    protected().run().await.unwrap();
    let version = open_delta(&d.storage.join("bronze")).await.version();
    let report = protected().full_refresh(["bronze"]).run().await.unwrap();
    assert_eq!(report.dataset("bronze").unwrap().rows_written, Some(0));
    assert_eq!(
        open_delta(&d.storage.join("bronze")).await.version(),
        version
    );
    assert!(!d.storage.join("_lakeflow/checkpoints/bronze/v2").exists());
}

#[tokio::test]
async fn a_streaming_aggregation_of_a_table_holds_the_complete_result_and_of_files_is_rejected() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    let landing = d.landing.display().to_string();
    let totals = || {
        let landing = landing.clone();
        Pipeline::builder()
            .streaming_table("bronze", move || read_stream_files(landing.as_str(), csv()))
            .table("totals", || {
                Ok(read_stream("bronze")?
                    .aggregate(vec![col("customer")], vec![count(lit(1)).alias("n")])?)
            })
            .storage(d.storage.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    totals().run().await.unwrap();
    land(&d.landing, 1, 10, 5);
    totals().run().await.unwrap();
    let rows = sorted_lines(&delta_rows(&d.storage.join("totals")).await);
    assert_eq!(
        rows,
        [
            "| customer | n |",
            "| c0       | 5 |",
            "| c1       | 5 |",
            "| c2       | 5 |"
        ]
    );

    let landing = d.landing.display().to_string();
    let error = Pipeline::builder()
        .table("totals", move || {
            Ok(read_stream_files(landing.as_str(), csv())?
                .aggregate(vec![col("customer")], vec![count(lit(1)).alias("n")])?)
        })
        .storage(d.storage.to_str().unwrap())
        .dry_run()
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        text.starts_with("dataset `totals`: a streaming query cannot be computed incrementally: it aggregates a stream"),
        "{text}"
    );
    assert!(
        text.contains("aggregate a streaming table instead"),
        "{text}"
    );
}

#[tokio::test]
async fn a_file_that_does_not_parse_fails_the_flow_naming_it_and_commits_nothing() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    pipeline(&d.landing, &d.storage).run().await.unwrap();
    let version = open_delta(&d.storage.join("bronze")).await.version();
    std::fs::write(
        d.landing.join("orders-bad.csv"),
        "order_id,customer,amount,status\n1,c1,2.5,ok\nnot-a-number,c2,3.5,ok\n",
    )
    .unwrap();
    let error = pipeline(&d.landing, &d.storage).run().await.unwrap_err();
    let Error::RunFailed { report } = &error else {
        panic!("{error}");
    };
    let reason = report.dataset("bronze").unwrap().reason.clone().unwrap();
    assert!(reason.starts_with("cannot read `/"), "{reason}");
    assert!(reason.contains("orders-bad.csv"), "{reason}");
    assert!(reason.contains("line"), "{reason}");
    assert_eq!(
        open_delta(&d.storage.join("bronze")).await.version(),
        version
    );

    std::fs::remove_file(d.landing.join("orders-bad.csv")).unwrap();
    land(&d.landing, 1, 10, 3);
    let report = pipeline(&d.landing, &d.storage).run().await.unwrap();
    assert_eq!(report.dataset("bronze").unwrap().rows_written, Some(3));
}

#[tokio::test]
async fn a_materialized_view_whose_inputs_did_not_change_is_not_recomputed() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    pipeline(&d.landing, &d.storage).run().await.unwrap();
    let gold = open_delta(&d.storage.join("gold")).await.version();

    let again = pipeline(&d.landing, &d.storage).run().await.unwrap();
    let row = again.dataset("gold").unwrap();
    assert_eq!(row.status, FlowStatus::UpToDate);
    assert_eq!(
        row.reason.as_deref(),
        Some("its inputs and its definition are as at its last refresh")
    );
    assert_eq!(open_delta(&d.storage.join("gold")).await.version(), gold);
    let skipped = pipeline(&d.landing, &d.storage)
        .event_log_sql(
            "SELECT count(*) FROM event_log WHERE origin.dataset_name = 'gold'
             AND details LIKE '%\"skipped\":true%'",
        )
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    assert_eq!(sorted_lines(&skipped)[1], "| 1        |");

    // New input reaches gold through silver's new version: recomputed.
    land(&d.landing, 1, 10, 5);
    let third = pipeline(&d.landing, &d.storage).run().await.unwrap();
    assert_eq!(third.dataset("gold").unwrap().status, FlowStatus::Completed);
    assert_ne!(open_delta(&d.storage.join("gold")).await.version(), gold);
}

#[tokio::test]
async fn a_stream_can_skip_change_commits() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    let landing = d.landing.display().to_string();
    let skipping = || {
        let landing = landing.clone();
        Pipeline::builder()
            .streaming_table("bronze", move || read_stream_files(landing.as_str(), csv()))
            .table("silver", || {
                read_stream_with("bronze", StreamOptions::new().skip_change_commits())
            })
            .storage(d.storage.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    skipping().run().await.unwrap();
    // Rewriting bronze is a change commit, which silver leaves out instead of failing.
    skipping().full_refresh(["bronze"]).run().await.unwrap();
    let report = skipping().run().await.unwrap();
    assert_eq!(
        report.dataset("silver").unwrap().status,
        FlowStatus::Completed
    );
    assert_eq!(report.dataset("silver").unwrap().rows_written, Some(0));
    land(&d.landing, 1, 10, 4);
    let report = skipping().run().await.unwrap();
    assert_eq!(report.dataset("silver").unwrap().rows_written, Some(4));
    assert_eq!(delta_count(&d.storage.join("silver")).await, 14);
}

#[tokio::test]
async fn uniqueness_on_a_streaming_table_checks_new_rows_against_committed_ones() {
    let d = dirs();
    land(&d.landing, 0, 0, 10);
    let landing = d.landing.display().to_string();
    let unique = || {
        let landing = landing.clone();
        Pipeline::builder()
            .dataset(
                Dataset::streaming_table("bronze", move || {
                    read_stream_files(landing.as_str(), csv())
                })
                .expect_unique("pk", ["order_id"], ExpectAction::Drop),
            )
            .storage(d.storage.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    unique().run().await.unwrap();
    // Ids 5..15: 5..10 are already committed, 10..15 are new.
    land(&d.landing, 1, 5, 10);
    let report = unique().run().await.unwrap();
    let bronze = report.dataset("bronze").unwrap();
    assert_eq!(bronze.expectations[0].passed, 5);
    assert_eq!(bronze.expectations[0].failed, 5);
    assert_eq!(bronze.rows_written, Some(5));
    assert_eq!(delta_count(&d.storage.join("bronze")).await, 15);
}

#[tokio::test]
async fn an_external_table_read_as_a_stream_must_be_delta() {
    let error = Pipeline::builder()
        .external_table("raw", SourceSpec::csv("unused.csv"))
        .table("copy", || read_stream("raw"))
        .storage_backend(std::sync::Arc::new(lakeflow::MemoryStorage::new()))
        .dry_run()
        .await
        .unwrap_err();
    assert!(
        error.to_string().starts_with(
            "dataset `copy`: `raw` is an external table that is not a Delta table, so it cannot be read as a stream"
        ),
        "{error}"
    );
}

#[tokio::test]
async fn an_external_delta_table_is_read_as_a_stream_of_its_appends() {
    let d = dirs();
    // Another pipeline's table is the external Delta source.
    land(&d.landing, 0, 0, 10);
    let upstream = d.storage.join("upstream");
    let source = upstream.join("bronze").display().to_string();
    let produce = || {
        let landing = d.landing.display().to_string();
        Pipeline::builder()
            .streaming_table("bronze", move || read_stream_files(landing.as_str(), csv()))
            .storage(upstream.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    produce().run().await.unwrap();
    let consumer = d.storage.join("consumer");
    let consume = |skip: bool| {
        let source = source.clone();
        Pipeline::builder()
            .external_table("ext", SourceSpec::delta(source.clone()))
            .table("direct", move || read_stream_delta(source.as_str()))
            .table("skipping", move || {
                let options = if skip {
                    StreamOptions::new().skip_change_commits()
                } else {
                    StreamOptions::new()
                };
                read_stream_with("ext", options)
            })
            .storage(consumer.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    let first = consume(true).run().await.unwrap();
    assert_eq!(first.dataset("direct").unwrap().rows_written, Some(10));
    assert_eq!(first.dataset("skipping").unwrap().rows_written, Some(10));

    land(&d.landing, 1, 10, 4);
    produce().run().await.unwrap();
    let second = consume(true).run().await.unwrap();
    assert_eq!(
        second.dataset("direct").unwrap().rows_written,
        Some(4),
        "only the appended rows"
    );
    assert_eq!(second.dataset("skipping").unwrap().rows_written, Some(4));
    let nothing = consume(true).run().await.unwrap();
    assert_eq!(nothing.dataset("direct").unwrap().rows_written, Some(0));

    // A full refresh upstream overwrites the table: not an append. (Version 0 created the
    // table, 1 and 2 appended the two batches, 3 overwrites.)
    produce().full_refresh_all().run().await.unwrap();
    let error = consume(true).run().await.unwrap_err().to_string();
    assert!(
        error.contains(&format!("`{source}`")) && error.contains("version 3"),
        "the flow reading it without skipping fails, naming table and version: {error}"
    );
    let report = match consume(true).run().await {
        Err(lakeflow::Error::RunFailed { report }) => report,
        other => panic!("expected a failed run, got {other:?}"),
    };
    assert_eq!(
        report.dataset("skipping").unwrap().status,
        lakeflow::FlowStatus::Completed,
        "the flow that skips change commits goes on: {report}"
    );
    assert_eq!(delta_count(&consumer.join("direct")).await, 14);
}
