//! AUTO CDC: change feeds applied as SCD type 1 and type 2, checked against a plain
//! in-memory model over random histories, plus the validation errors.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lakeflow::AutoCdc;
use lakeflow::datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use lakeflow::datafusion::arrow::datatypes::{DataType, Field, Schema};
use lakeflow::prelude::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

use crate::support::delta_rows;

/// One change of the feed: history `h`, key `id`, sequence, delete or upsert, two values.
#[derive(Debug, Clone, PartialEq)]
struct Change {
    h: i64,
    id: i64,
    seq: i64,
    delete: bool,
    a: Option<i64>,
    b: Option<String>,
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("h", DataType::Int64, false),
        Field::new("id", DataType::Int64, false),
        Field::new("seq", DataType::Int64, true),
        Field::new("op", DataType::Utf8, false),
        Field::new("a", DataType::Int64, true),
        Field::new("b", DataType::Utf8, true),
    ]))
}

/// Lands `changes` as one Parquet file in `dir`.
fn land(dir: &Path, n: usize, changes: &[Change]) {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.h))),
        Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.id))),
        Arc::new(Int64Array::from_iter_values(changes.iter().map(|c| c.seq))),
        Arc::new(StringArray::from_iter_values(
            changes.iter().map(|c| if c.delete { "D" } else { "U" }),
        )),
        Arc::new(Int64Array::from_iter(changes.iter().map(|c| c.a))),
        Arc::new(StringArray::from_iter(changes.iter().map(|c| c.b.clone()))),
    ];
    write_parquet(dir, n, RecordBatch::try_new(schema(), columns).unwrap());
}

/// Lands changes of history 0 given as `(id, seq, op, a)`, with any op (`T` truncates).
fn land_ops(dir: &Path, n: usize, rows: &[(i64, i64, &str, Option<i64>)]) {
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(vec![0; rows.len()])),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
        Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.1))),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.2))),
        Arc::new(Int64Array::from_iter(rows.iter().map(|r| r.3))),
        Arc::new(StringArray::from(vec![None::<&str>; rows.len()])),
    ];
    write_parquet(dir, n, RecordBatch::try_new(schema(), columns).unwrap());
}

fn write_parquet(dir: &Path, n: usize, batch: RecordBatch) {
    std::fs::create_dir_all(dir).unwrap();
    let file = std::fs::File::create(dir.join(format!("changes-{n:04}.parquet"))).unwrap();
    let mut writer =
        lakeflow::datafusion::parquet::arrow::ArrowWriter::try_new(file, schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// `changes` (new files) -> `t1` (type 1), `t1n` (type 1, NULLs keep values), `t2` (type 2).
fn pipeline(landing: &Path, storage: &Path) -> Pipeline {
    let landing = landing.display().to_string();
    let flow = |target: &str| {
        AutoCdc::new(target, "changes")
            .keys(["h", "id"])
            .sequence_by("seq")
            .apply_as_deletes("op = 'D'")
            .except_column_list(["op"])
    };
    Pipeline::builder()
        .streaming_table("changes", move || {
            read_stream_files(landing.as_str(), parquet())
        })
        .create_streaming_table("t1")
        .create_streaming_table("t1n")
        .create_streaming_table("t2")
        .create_auto_cdc_flow(flow("t1"))
        .create_auto_cdc_flow(flow("t1n").ignore_null_updates(true))
        .create_auto_cdc_flow(
            flow("t2")
                .except_column_list(["op", "seq"])
                .stored_as_scd_type(2),
        )
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// A type 1 row: history, key, sequence, a, b.
type Type1Row = (i64, i64, i64, Option<i64>, Option<String>);
/// A type 2 row: history, key, start, end, a, b.
type Type2Row = (i64, i64, i64, Option<i64>, Option<i64>, Option<String>);
/// The values of a row.
type Values = (Option<i64>, Option<String>);
/// A version in the type 2 model: start, end, a, b.
type Version = (i64, Option<i64>, Option<i64>, Option<String>);

/// Type 1 model: each batch in sequence order; a change applies only above the key's last
/// applied sequence; deletes are remembered.
fn model_type1(batches: &[Vec<Change>], ignore_nulls: bool) -> Vec<Type1Row> {
    let mut state: BTreeMap<(i64, i64), (i64, Option<Values>)> = BTreeMap::new();
    for batch in batches {
        let mut sorted = batch.clone();
        sorted.sort_by_key(|c| c.seq); // stable: ties keep arrival order
        for c in sorted {
            let entry = state.get(&(c.h, c.id)).cloned();
            if entry.as_ref().is_some_and(|(seq, _)| c.seq <= *seq) {
                continue;
            }
            let values = if c.delete {
                None
            } else {
                match (ignore_nulls, entry.and_then(|e| e.1)) {
                    (true, Some((a, b))) => Some((c.a.or(a), c.b.clone().or(b))),
                    _ => Some((c.a, c.b.clone())),
                }
            };
            state.insert((c.h, c.id), (c.seq, values));
        }
    }
    state
        .into_iter()
        .filter_map(|((h, id), (seq, v))| v.map(|(a, b)| (h, id, seq, a, b)))
        .collect()
}

/// Type 2 model: all changes of a key (a repeated sequence is a duplicate: the first stays),
/// walked in sequence order; a change of any column opens a version, a delete closes one.
fn model_type2(batches: &[Vec<Change>]) -> Vec<Type2Row> {
    let mut events: BTreeMap<(i64, i64), Vec<Change>> = BTreeMap::new();
    for c in batches.iter().flatten() {
        let list = events.entry((c.h, c.id)).or_default();
        if !list.iter().any(|e| e.seq == c.seq) {
            list.push(c.clone());
        }
    }
    let mut out = Vec::new();
    for ((h, id), mut list) in events {
        list.sort_by_key(|c| c.seq);
        let mut versions: Vec<Version> = Vec::new();
        let mut open = false;
        for c in list {
            if c.delete {
                if open && let Some(v) = versions.last_mut() {
                    v.1 = Some(c.seq);
                }
                open = false;
                continue;
            }
            if open && let Some(v) = versions.last_mut() {
                if v.2 == c.a && v.3 == c.b {
                    continue;
                }
                v.1 = Some(c.seq);
            }
            versions.push((c.seq, None, c.a, c.b.clone()));
            open = true;
        }
        out.extend(versions.into_iter().map(|(s, e, a, b)| (h, id, s, e, a, b)));
    }
    out
}

fn int(batch: &RecordBatch, name: &str, row: usize) -> Option<i64> {
    let column = batch.column_by_name(name).unwrap();
    let column = lakeflow::datafusion::arrow::compute::cast(column, &DataType::Int64).unwrap();
    let ints = column.as_any().downcast_ref::<Int64Array>().unwrap();
    ints.is_valid(row).then(|| ints.value(row))
}

fn text(batch: &RecordBatch, name: &str, row: usize) -> Option<String> {
    let column = batch.column_by_name(name).unwrap();
    let column = lakeflow::datafusion::arrow::compute::cast(column, &DataType::Utf8).unwrap();
    let texts = column.as_any().downcast_ref::<StringArray>().unwrap();
    texts.is_valid(row).then(|| texts.value(row).to_string())
}

use lakeflow::datafusion::arrow::array::Array;

async fn table_type1(dir: &Path) -> Vec<Type1Row> {
    let mut rows = Vec::new();
    for batch in delta_rows(dir).await {
        for r in 0..batch.num_rows() {
            rows.push((
                int(&batch, "h", r).unwrap(),
                int(&batch, "id", r).unwrap(),
                int(&batch, "seq", r).unwrap(),
                int(&batch, "a", r),
                text(&batch, "b", r),
            ));
        }
    }
    rows.sort();
    rows
}

async fn table_type2(dir: &Path) -> Vec<Type2Row> {
    let mut rows = Vec::new();
    for batch in delta_rows(dir).await {
        for r in 0..batch.num_rows() {
            rows.push((
                int(&batch, "h", r).unwrap(),
                int(&batch, "id", r).unwrap(),
                int(&batch, "__START_AT", r).unwrap(),
                int(&batch, "__END_AT", r),
                int(&batch, "a", r),
                text(&batch, "b", r),
            ));
        }
    }
    rows.sort();
    rows
}

/// A random history: up to 12 changes over up to 3 keys, sequences shuffled (so they arrive
/// out of order), some changes delivered twice, split into up to 3 batches.
fn history(h: i64) -> impl Strategy<Value = Vec<Vec<Change>>> {
    let change = (
        0..3i64,
        any::<bool>(),
        0..10u8,
        proptest::option::of(0..4i64),
        proptest::option::of(0..3u8),
    );
    (
        proptest::collection::vec(change, 1..12),
        any::<u64>(),
        0..4usize,
        0..4usize,
    )
        .prop_map(move |(raw, shuffle, cut1, cut2)| {
            let n = raw.len();
            // Distinct sequences in a shuffled order.
            let mut seqs: Vec<i64> = (1..=n as i64).map(|s| s * 10).collect();
            let mut state = shuffle | 1;
            for i in (1..seqs.len()).rev() {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                seqs.swap(i, (state % (i as u64 + 1)) as usize);
            }
            let mut changes: Vec<Change> = raw
                .into_iter()
                .zip(seqs)
                .map(|((id, _, kind, a, b), seq)| Change {
                    h,
                    id,
                    seq,
                    delete: kind < 3,
                    a,
                    b: b.map(|b| format!("v{b}")),
                })
                .collect();
            // Duplicates: a change delivered again later.
            if n > 2 && cut1 % 2 == 0 {
                let again = changes[cut2 % n].clone();
                changes.push(again);
            }
            let n = changes.len();
            let (x, y) = ((cut1 * n) / 4, (cut2 * n) / 4);
            let (x, y) = (x.min(y), x.max(y));
            vec![
                changes[..x].to_vec(),
                changes[x..y].to_vec(),
                changes[y..].to_vec(),
            ]
        })
}

#[test]
fn random_change_histories_equal_the_model_for_both_types() {
    let checked = histories_equal_the_model(500, 2, None);
    assert!(checked >= 1000, "{checked} histories checked");
}

/// Runs `cases` sets of `histories` random change histories, each split into three batches
/// (three runs, on `engine` or in-process), and compares the three targets with the model
/// after every run. Returns the number of histories checked.
pub(crate) fn histories_equal_the_model(
    histories: i64,
    cases: u32,
    engine: Option<Arc<dyn lakeflow::Engine>>,
) -> usize {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 0,
        ..Config::default()
    });
    let strategy = (0..histories).map(history).collect::<Vec<_>>();
    let checked = std::cell::Cell::new(0usize);
    runner
        .run(&strategy, |histories| {
            let root = tempfile::tempdir().unwrap();
            let (landing, storage) = (root.path().join("landing"), root.path().join("store"));
            for run in 0..3 {
                let batch: Vec<Change> = histories.iter().flat_map(|h| h[run].clone()).collect();
                land(&landing, run, &batch);
                let pipeline = match &engine {
                    Some(engine) => pipeline(&landing, &storage).engine(engine.clone()),
                    None => pipeline(&landing, &storage),
                };
                let report = runtime.block_on(pipeline.run());
                prop_assert!(report.is_ok(), "run {run}: {:?}", report.err());
                let seen: Vec<Vec<Change>> = (0..=run)
                    .map(|r| histories.iter().flat_map(|h| h[r].clone()).collect())
                    .collect();
                prop_assert_eq!(
                    runtime.block_on(table_type1(&storage.join("t1"))),
                    model_type1(&seen, false),
                    "type 1 after run {}",
                    run
                );
                prop_assert_eq!(
                    runtime.block_on(table_type1(&storage.join("t1n"))),
                    model_type1(&seen, true),
                    "type 1 ignoring NULL updates after run {}",
                    run
                );
                prop_assert_eq!(
                    runtime.block_on(table_type2(&storage.join("t2"))),
                    model_type2(&seen),
                    "type 2 after run {}",
                    run
                );
            }
            if engine.is_some() {
                // The merges went through the cluster's rewrite: their rows were staged.
                for table in ["t1", "t1n", "t2"] {
                    let staged = storage.join("_lakeflow/staged").join(table);
                    prop_assert!(staged.exists(), "{} was not merged on the cluster", table);
                }
            }
            checked.set(checked.get() + histories.len());
            Ok(())
        })
        .unwrap();
    checked.get()
}

fn change(id: i64, seq: i64, delete: bool, a: Option<i64>) -> Change {
    Change {
        h: 0,
        id,
        seq,
        delete,
        a,
        b: None,
    }
}

#[tokio::test]
async fn late_and_duplicate_changes_land_where_they_belong() {
    let root = tempfile::tempdir().unwrap();
    let (landing, storage) = (root.path().join("landing"), root.path().join("store"));
    land(
        &landing,
        0,
        &[change(1, 20, false, Some(2)), change(2, 10, false, Some(1))],
    );
    pipeline(&landing, &storage).run().await.unwrap();
    // Key 1: an older update arrives late (ignored by type 1, history for type 2); key 2 is
    // deleted, then an older update arrives late and must not bring it back.
    land(
        &landing,
        1,
        &[
            change(1, 15, false, Some(9)),
            change(2, 30, true, None),
            change(2, 25, false, Some(7)),
            change(1, 20, false, Some(2)),
        ],
    );
    let report = pipeline(&landing, &storage).run().await.unwrap();
    assert_eq!(
        report.dataset("t2_cdc").unwrap().kind,
        DatasetKind::AppendFlow
    );
    assert_eq!(
        table_type1(&storage.join("t1")).await,
        [(0, 1, 20, Some(2), None)],
        "the highest sequence wins; the deleted key stays deleted"
    );
    assert_eq!(
        table_type2(&storage.join("t2")).await,
        [
            (0, 1, 15, Some(20), Some(9), None),
            (0, 1, 20, None, Some(2), None),
            (0, 2, 10, Some(25), Some(1), None),
            (0, 2, 25, Some(30), Some(7), None),
        ],
        "late changes are inserted at their place in history; a delete closes the version"
    );
    // The event log names the technique.
    let rows = pipeline(&landing, &storage)
        .event_log_sql(
            "SELECT details FROM event_log WHERE origin.flow_name = 't1_cdc'
             AND details LIKE '%\"technique\":\"merge\"%'",
        )
        .await
        .unwrap()
        .count()
        .await
        .unwrap();
    assert_eq!(rows, 2);
}

#[tokio::test]
async fn a_null_sequence_fails_the_flow_naming_the_key() {
    let root = tempfile::tempdir().unwrap();
    let (landing, storage) = (root.path().join("landing"), root.path().join("store"));
    land(&landing, 0, &[change(7, 10, false, Some(1))]);
    let error = Pipeline::builder()
        .streaming_table("changes", {
            let landing = landing.display().to_string();
            move || {
                Ok(read_stream_files(landing.as_str(), parquet())?
                    .with_column("seq", lit(lakeflow::datafusion::common::ScalarValue::Null))?)
            }
        })
        .create_streaming_table("t1")
        .create_auto_cdc_flow(
            AutoCdc::new("t1", "changes")
                .keys(["h", "id"])
                .sequence_by("CAST(seq AS BIGINT)"),
        )
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("the change for key (h=0, id=7) has a NULL sequence"),
        "{error}"
    );
}

#[tokio::test]
async fn a_truncate_empties_a_type1_table_and_older_changes_stay_out() {
    let root = tempfile::tempdir().unwrap();
    let (landing, storage) = (root.path().join("landing"), root.path().join("store"));
    let truncating = || {
        let landing = landing.display().to_string();
        Pipeline::builder()
            .streaming_table("changes", move || {
                read_stream_files(landing.as_str(), parquet())
            })
            .create_streaming_table("t")
            .create_auto_cdc_flow(
                AutoCdc::new("t", "changes")
                    .keys(["h", "id"])
                    .sequence_by("seq")
                    .apply_as_deletes("op = 'D'")
                    .apply_as_truncates("op = 'T'")
                    .column_list(["h", "id", "a"]),
            )
            .storage(storage.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    land(
        &landing,
        0,
        &[change(1, 10, false, Some(1)), change(2, 20, false, Some(2))],
    );
    truncating().run().await.unwrap();
    // Key 3 after the truncate (seq 30); key 1's update is older than the truncate.
    land_ops(
        &landing,
        1,
        &[
            (3, 40, "U", Some(3)),
            (1, 25, "U", Some(9)),
            (0, 30, "T", None),
        ],
    );
    truncating().run().await.unwrap();
    let rows = crate::support::sorted_lines(&delta_rows(&storage.join("t")).await);
    assert_eq!(
        rows.len(),
        2,
        "only the change after the truncate: {rows:?}"
    );
    assert!(rows[1].contains("| 0 | 3  | 3 |"), "{rows:?}");
    // A change older than the truncate, arriving late, stays out.
    land(&landing, 2, &[change(2, 28, false, Some(5))]);
    truncating().run().await.unwrap();
    assert_eq!(
        delta_rows(&storage.join("t"))
            .await
            .iter()
            .map(|b| b.num_rows())
            .sum::<usize>(),
        1
    );
}

#[tokio::test]
async fn expired_tombstones_are_dropped() {
    tombstones_expire(None).await;
}

/// A delete's tombstone with a zero time-to-live is gone by the next batch (on `engine`, or
/// in-process): a late, older update of its key is applied again.
pub(crate) async fn tombstones_expire(engine: Option<Arc<dyn lakeflow::Engine>>) {
    let root = tempfile::tempdir().unwrap();
    let (landing, storage) = (root.path().join("landing"), root.path().join("store"));
    let expiring = || {
        let landing = landing.display().to_string();
        let pipeline = Pipeline::builder()
            .streaming_table("changes", move || {
                read_stream_files(landing.as_str(), parquet())
            })
            .dataset(
                Dataset::create_streaming_table("t")
                    .table_property("pipelines.cdc.tombstoneGCThresholdInSeconds", "0"),
            )
            .create_auto_cdc_flow(
                AutoCdc::new("t", "changes")
                    .keys(["h", "id"])
                    .sequence_by("seq")
                    .apply_as_deletes("op = 'D'"),
            )
            .storage(storage.to_str().unwrap())
            .progress(ProgressMode::Off);
        match &engine {
            Some(engine) => pipeline.engine(engine.clone()),
            None => pipeline,
        }
    };
    land(
        &landing,
        0,
        &[change(1, 10, false, Some(1)), change(1, 20, true, None)],
    );
    expiring().run().await.unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    land(&landing, 1, &[change(2, 10, false, Some(1))]);
    expiring().run().await.unwrap();
    // The tombstone of key 1 expired: a late, older update is applied again.
    land(&landing, 2, &[change(1, 15, false, Some(4))]);
    expiring().run().await.unwrap();
    assert_eq!(
        table_type1(&storage.join("t")).await.len(),
        2,
        "with a zero time-to-live the delete is forgotten"
    );
}

async fn cdc_error(flow: AutoCdc, extra: Option<Dataset>) -> String {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    land(&landing, 0, &[change(1, 10, false, Some(1))]);
    let landing = landing.display().to_string();
    let mut pipeline = Pipeline::builder()
        .streaming_table("changes", move || {
            read_stream_files(landing.as_str(), parquet())
        })
        .create_streaming_table("t")
        .create_auto_cdc_flow(flow)
        .storage(root.path().join("store").to_str().unwrap());
    if let Some(extra) = extra {
        pipeline = pipeline.dataset(extra);
    }
    pipeline.dry_run().await.unwrap_err().to_string()
}

#[tokio::test]
async fn auto_cdc_definitions_are_checked_at_dry_run() {
    let base = || {
        AutoCdc::new("t", "changes")
            .keys(["h", "id"])
            .sequence_by("seq")
    };
    let cases: Vec<(AutoCdc, Option<Dataset>, &str)> = vec![
        (
            AutoCdc::new("t", "changes")
                .keys(["nope"])
                .sequence_by("seq"),
            None,
            "key `nope` is not a column of its source `changes`",
        ),
        (
            base().sequence_by("missing_col"),
            None,
            "sequence_by `missing_col` is not valid SQL over `changes`",
        ),
        (
            AutoCdc::new("t", "changes").keys(["id"]),
            None,
            "it has no sequence_by",
        ),
        (
            base().column_list(["h", "id"]).except_column_list(["a"]),
            None,
            "both a column_list and an except_column_list",
        ),
        (
            base().track_history_column_list(["a"]),
            None,
            "history tracking (track_history_column_list) needs stored_as_scd_type(2)",
        ),
        (
            base().stored_as_scd_type(2).apply_as_truncates("op = 'T'"),
            None,
            "apply_as_truncates is for type 1 only",
        ),
        (
            base().column_list(["h", "a"]),
            None,
            "key `id` is left out of the target by its column list",
        ),
        (
            base().stored_as_scd_type(3),
            None,
            "stored_as_scd_type is 3",
        ),
        (
            base(),
            Some(Dataset::append_flow("t", "other", || {
                read_stream("changes")
            })),
            "AUTO CDC flow `t_cdc` must be the only writer of its target, but `other` also write it",
        ),
    ];
    for (flow, extra, expected) in cases {
        let error = cdc_error(flow, extra).await;
        assert!(
            error.contains(expected),
            "expected {expected:?} in: {error}"
        );
        assert!(
            error.contains("t_cdc") || error.contains("dataset `t`"),
            "names the flow: {error}"
        );
    }
}

#[tokio::test]
async fn a_struct_sequence_breaks_ties() {
    let root = tempfile::tempdir().unwrap();
    let (landing, storage) = (root.path().join("landing"), root.path().join("store"));
    // Same `seq`, told apart by `a` as the second field of the sequence.
    land(
        &landing,
        0,
        &[change(1, 10, false, Some(2)), change(1, 10, false, Some(1))],
    );
    let landing_dir = landing.display().to_string();
    Pipeline::builder()
        .streaming_table("changes", move || {
            read_stream_files(landing_dir.as_str(), parquet())
        })
        .create_streaming_table("t")
        .create_auto_cdc_flow(
            AutoCdc::new("t", "changes")
                .keys(["h", "id"])
                .sequence_by("named_struct('seq', seq, 'tie', a)"),
        )
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
        .run()
        .await
        .unwrap();
    assert_eq!(
        table_type1(&storage.join("t")).await,
        [(0, 1, 10, Some(2), None)]
    );
}

/// `snapshot` (a CSV file read whole) applied from snapshots as type 1 and type 2.
fn snapshots(csv: &Path, storage: &Path) -> Pipeline {
    let csv = csv.display().to_string();
    Pipeline::builder()
        .materialized_view("snapshot", move || read_csv(csv.as_str()))
        .create_streaming_table("s1")
        .create_streaming_table("s2")
        .create_auto_cdc_from_snapshot_flow(AutoCdc::from_snapshot("s1", "snapshot").keys(["id"]))
        .create_auto_cdc_from_snapshot_flow(
            AutoCdc::from_snapshot("s2", "snapshot")
                .keys(["id"])
                .stored_as_scd_type(2),
        )
        .storage(storage.to_str().unwrap())
        .progress(ProgressMode::Off)
}

async fn lines(dir: &Path) -> Vec<String> {
    crate::support::sorted_lines(&delta_rows(dir).await)
}

#[tokio::test]
async fn snapshots_insert_update_and_delete_by_difference() {
    let root = tempfile::tempdir().unwrap();
    let (csv, storage) = (root.path().join("snapshot.csv"), root.path().join("store"));
    std::fs::write(&csv, "id,name\n1,ann\n2,bob\n").unwrap();
    snapshots(&csv, &storage).run().await.unwrap();
    std::fs::write(&csv, "id,name\n1,anna\n3,cy\n").unwrap();
    let report = snapshots(&csv, &storage).run().await.unwrap();
    assert_eq!(
        report.dataset("s1_cdc").unwrap().rows_written,
        Some(3),
        "one update, one insert, one delete"
    );
    assert_eq!(
        lines(&storage.join("s1")).await,
        ["| id | name |", "| 1  | anna |", "| 3  | cy   |"]
    );
    assert_eq!(
        lines(&storage.join("s2")).await,
        [
            "| id | name | __START_AT | __END_AT |",
            "| 1  | ann  | 0          | 1        |",
            "| 1  | anna | 1          |          |",
            "| 2  | bob  | 0          | 1        |",
            "| 3  | cy   | 1          |          |",
        ]
    );
    // The same snapshot again: nothing to do.
    let again = snapshots(&csv, &storage).run().await.unwrap();
    assert_eq!(again.dataset("s1_cdc").unwrap().rows_written, Some(0));
}

#[tokio::test]
async fn a_snapshot_function_is_applied_one_version_per_run() {
    let root = tempfile::tempdir().unwrap();
    let storage = root.path().join("store");
    let snapshot = |rows: &[(i64, &str)]| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("id", DataType::Int64, false),
                Field::new("name", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int64Array::from_iter_values(rows.iter().map(|r| r.0))),
                Arc::new(StringArray::from_iter_values(rows.iter().map(|r| r.1))),
            ],
        )
        .unwrap()
    };
    let versions = Arc::new(vec![
        snapshot(&[(1, "a"), (2, "b")]),
        snapshot(&[(1, "a"), (2, "B")]),
        snapshot(&[(2, "B")]),
    ]);
    let pipeline = || {
        let versions = versions.clone();
        Pipeline::builder()
            .create_streaming_table("people")
            .create_auto_cdc_from_snapshot_flow(
                AutoCdc::from_snapshot_fn("people", move |ctx, last: Option<u64>| {
                    let versions = versions.clone();
                    async move {
                        let next = last.map_or(1, |v| v + 1);
                        Ok(match versions.get(next as usize - 1) {
                            Some(batch) => Some((ctx.read_batch(batch.clone())?, next)),
                            None => None,
                        })
                    }
                })
                .keys(["id"])
                .stored_as_scd_type(2),
            )
            .storage(storage.to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    for _ in 0..3 {
        pipeline().run().await.unwrap();
    }
    let nothing = pipeline().run().await.unwrap();
    assert_eq!(nothing.dataset("people_cdc").unwrap().rows_written, Some(0));
    assert_eq!(
        lines(&storage.join("people")).await,
        [
            "| id | name | __START_AT | __END_AT |",
            "| 1  | a    | 1          | 3        |",
            "| 2  | B    | 2          |          |",
            "| 2  | b    | 1          | 2        |",
        ]
    );
}
