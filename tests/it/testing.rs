//! `lakeflow::testing`: unit tests of one dataset or a graph, in memory.

use std::sync::Arc;

use lakeflow::datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use lakeflow::prelude::*;
use lakeflow::testing::{TestRun, batch};

fn text(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

fn ints(values: &[i64]) -> ArrayRef {
    Arc::new(Int64Array::from(values.to_vec()))
}

fn pipeline() -> Pipeline {
    Pipeline::builder()
        .materialized_view("orders", || {
            read_parquet("/data/that/does/not/exist.parquet")
        })
        .table("paid", || {
            Ok(read("orders")?.filter(col("status").eq(lit("paid")))?)
        })
        .materialized_view("totals", || {
            sql("SELECT customer, sum(amount) AS total FROM paid GROUP BY customer")
        })
}

#[tokio::test]
async fn inputs_replace_upstream_datasets_and_results_come_back() {
    let orders = batch([
        ("customer", text(&["ann", "bob", "ann", "cy"])),
        ("amount", ints(&[10, 20, 30, 40])),
        ("status", text(&["paid", "paid", "paid", "open"])),
    ])
    .unwrap();
    let output = TestRun::new(pipeline())
        .input("orders", orders)
        .run()
        .await
        .unwrap();
    assert_eq!(output.row_count("paid").unwrap(), 3);
    assert_eq!(
        output.pretty("totals").unwrap(),
        "+----------+-------+\n\
         | customer | total |\n\
         +----------+-------+\n\
         | ann      | 40    |\n\
         | bob      | 20    |\n\
         +----------+-------+"
    );
}

#[tokio::test]
async fn only_runs_the_named_datasets() {
    let paid = batch([
        ("customer", text(&["ann", "ann"])),
        ("amount", ints(&[1, 2])),
    ])
    .unwrap();
    let output = TestRun::new(pipeline())
        .input("paid", paid)
        .only(["totals"])
        .run()
        .await
        .unwrap();
    assert_eq!(output.report().datasets.len(), 1);
    assert_eq!(output.row_count("totals").unwrap(), 1);
    assert!(output.batches("orders").is_err(), "orders was not run");
}

#[tokio::test]
async fn a_query_error_surfaces_in_a_test_run() {
    let orders = batch([("customer", text(&["ann"]))]).unwrap();
    let error = TestRun::new(pipeline())
        .input("orders", orders)
        .run()
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(text.starts_with("dataset `paid` ("), "{text}");
    assert!(text.contains("status"), "{text}");
}
