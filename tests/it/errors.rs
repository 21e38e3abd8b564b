//! Graph errors found by `dry_run`, with the text a user sees.

use lakeflow::Error;
use lakeflow::prelude::*;

async fn dry_run_error(pipeline: Pipeline) -> String {
    let dir = tempfile::tempdir().unwrap();
    let error = pipeline
        .storage(dir.path().join("store").to_str().unwrap())
        .dry_run()
        .await
        .expect_err("the pipeline is invalid");
    assert!(
        !dir.path().join("store").exists(),
        "a dry run writes nothing"
    );
    error.to_string()
}

#[tokio::test]
async fn a_cycle_prints_the_cycle() {
    let text = dry_run_error(
        Pipeline::builder()
            .materialized_view("a", || read("c"))
            .materialized_view("b", || read("a"))
            .materialized_view("c", || read("b"))
            .materialized_view("unrelated", || sql("SELECT 1 AS x")),
    )
    .await;
    assert!(
        text.starts_with("datasets depend on each other in a cycle: a (tests/it/errors.rs:"),
        "{text}"
    );
    assert!(text.contains(") -> c (tests/it/errors.rs:"), "{text}");
    assert!(text.contains(") -> b (tests/it/errors.rs:"), "{text}");
    assert!(
        text.ends_with(") -> a; break the cycle by removing one of these reads"),
        "{text}"
    );
}

#[tokio::test]
async fn a_dataset_reading_itself_is_a_cycle() {
    let text = dry_run_error(Pipeline::builder().materialized_view("me", || read("me"))).await;
    assert!(
        text.starts_with("datasets depend on each other in a cycle: me ("),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_dataset_suggests_the_nearest_name() {
    let text = dry_run_error(
        Pipeline::builder()
            .materialized_view("customers", || sql("SELECT 1 AS id"))
            .materialized_view("report", || sql("SELECT * FROM customer")),
    )
    .await;
    assert!(
        text.starts_with("dataset `report` (tests/it/errors.rs:"),
        "{text}"
    );
    assert!(
        text.ends_with(
            "reads `customer`, which is not defined in this pipeline; did you mean `customers`?"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_missing_dataset_without_a_near_name_says_how_to_define_it() {
    let text =
        dry_run_error(Pipeline::builder().materialized_view("report", || read("zzz_unknown")))
            .await;
    assert!(
        text.ends_with("define it, or register it as an external table with `Pipeline::builder().external_table(..)`"),
        "{text}"
    );
}

#[tokio::test]
async fn a_duplicate_name_shows_both_locations() {
    let text = dry_run_error(
        Pipeline::builder()
            .materialized_view("twice", || sql("SELECT 1 AS x"))
            .materialized_view("twice", || sql("SELECT 2 AS x")),
    )
    .await;
    let line = line!();
    assert!(
        text.starts_with("dataset `twice` is defined twice: at tests/it/errors.rs:"),
        "{text}"
    );
    assert!(
        text.contains(&format!("tests/it/errors.rs:{}:", line - 4)),
        "{text}"
    );
    assert!(
        text.contains(&format!("and at tests/it/errors.rs:{}:", line - 3)),
        "{text}"
    );
}

#[tokio::test]
async fn a_column_that_does_not_exist_names_the_dataset_and_the_column() {
    let text = dry_run_error(
        Pipeline::builder()
            .materialized_view("orders", || sql("SELECT 1 AS id, 2 AS amount"))
            .materialized_view("big", || {
                Ok(read("orders")?.filter(col("amont").gt(lit(1)))?)
            }),
    )
    .await;
    assert!(
        text.starts_with("dataset `big` (tests/it/errors.rs:"),
        "{text}"
    );
    assert!(text.contains("has an invalid query"), "{text}");
    assert!(text.contains("amont"), "{text}");
    assert!(
        text.contains("orders.amount"),
        "valid fields are listed: {text}"
    );
}

#[tokio::test]
async fn a_column_missing_in_sql_is_found_too() {
    let text = dry_run_error(
        Pipeline::builder()
            .materialized_view("orders", || sql("SELECT 1 AS id"))
            .materialized_view("totals", || sql("SELECT sum(amount) FROM orders")),
    )
    .await;
    assert!(text.starts_with("dataset `totals` ("), "{text}");
    assert!(text.contains("amount"), "{text}");
}

#[tokio::test]
async fn every_problem_is_reported_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let error = Pipeline::builder()
        .materialized_view("a", || read("b"))
        .materialized_view("b", || read("a"))
        .materialized_view("c", || read("nope"))
        .materialized_view("d", || sql("SELECT 1 AS x"))
        .materialized_view("e", || read("c"))
        .storage(dir.path().to_str().unwrap())
        .dry_run()
        .await
        .unwrap_err();
    let Error::Many(errors) = &error else {
        panic!("expected several errors, got {error}");
    };
    assert_eq!(
        errors.len(),
        2,
        "the cycle and the missing name; `e` only inherits: {error}"
    );
    assert!(matches!(errors[0], Error::Cycle { .. }));
    assert!(matches!(errors[1], Error::UnknownDataset { .. }));
    assert!(
        error
            .to_string()
            .starts_with("2 problems found in the pipeline definition:")
    );
}

#[tokio::test]
async fn an_invalid_builder_name_is_an_error_not_a_panic() {
    let text =
        dry_run_error(Pipeline::builder().materialized_view("bad/name", || sql("SELECT 1 AS x")))
            .await;
    assert!(
        text.starts_with("dataset `bad/name`: `bad/name` is not a valid dataset name"),
        "{text}"
    );
}

#[tokio::test]
async fn duplicate_output_columns_are_a_definition_error() {
    let text = dry_run_error(
        Pipeline::builder()
            .materialized_view("a", || sql("SELECT 1 AS id"))
            .materialized_view("b", || sql("SELECT 1 AS id"))
            .materialized_view("ab", || sql("SELECT * FROM a JOIN b ON a.id = b.id")),
    )
    .await;
    assert!(
        text.contains(
            "the query produces two columns named `id`; select one or rename with an alias"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_dry_run_of_a_valid_pipeline_gives_the_graph() {
    let graph = Pipeline::builder()
        .materialized_view("raw", || sql("SELECT 1 AS id"))
        .temporary_view("clean", || read("raw"))
        .materialized_view("gold", || sql("SELECT count(*) AS n FROM clean"))
        .dry_run()
        .await
        .unwrap();
    let order: Vec<&str> = graph.in_order().map(|d| d.def.name.as_str()).collect();
    assert_eq!(order, ["raw", "clean", "gold"]);
    assert_eq!(
        graph.to_dot(),
        "digraph pipeline {\n  rankdir=LR;\n  node [shape=box];\n  \
         \"raw\" [label=\"raw\\nmaterialized view\"];\n  \
         \"clean\" [label=\"clean\\ntemporary view\", style=dashed];\n  \
         \"gold\" [label=\"gold\\nmaterialized view\"];\n  \
         \"raw\" -> \"clean\";\n  \"clean\" -> \"gold\";\n}\n"
    );
}
