//! Datasets defined with the attribute macros, collected by `Pipeline::from_registry()`.
//! The registry of this binary holds these and the datasets of `tests/ui/pass/all_forms.rs`.

use std::sync::Arc;

use lakeflow::datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
use lakeflow::prelude::*;
use lakeflow::testing::{TestRun, batch};

#[materialized_view(comment = "Numbers one to five")]
fn registry_numbers() -> Plan {
    sql("SELECT * FROM (VALUES (1), (2), (3), (4), (5)) AS t(n)")
}

#[table(name = "registry_odd")]
fn odd_numbers() -> Plan {
    Ok(read("registry_numbers")?.filter((col("n") % lit(2)).eq(lit(1)))?)
}

#[temporary_view]
async fn registry_big() -> Plan {
    Ok(read("registry_odd")?.filter(col("n").gt(lit(1)))?)
}

#[materialized_view(partition_cols = ["n"], table_properties = {"quality": "gold"})]
fn registry_result() -> Plan {
    read("registry_big")
}

fn text(values: &[&str]) -> ArrayRef {
    Arc::new(StringArray::from(values.to_vec()))
}

#[tokio::test]
async fn macros_register_and_run() {
    let pipeline = Pipeline::from_registry();
    assert_eq!(
        pipeline.dataset_names(),
        [
            // tests/ui/pass/all_forms.rs and expectations.rs
            "all_regions",
            "all_regions_backfill",
            "all_regions_live",
            "bronze_orders",
            "checked_orders",
            "checked_paid",
            "customers",
            "eu_orders",
            "gold_daily_revenue",
            "match",
            "plain_table",
            "private_stream",
            // this module
            "registry_big",
            "registry_numbers",
            "registry_odd",
            "registry_result",
            "silver_orders",
        ]
    );
    let landing = batch([
        (
            "order_date",
            text(&["2026-01-01", "2026-01-01", "2026-01-02"]),
        ),
        ("country", text(&["FR", "FR", "DE"])),
        ("status", text(&["ok", "test", "ok"])),
        ("region", text(&["EU", "EU", "EU"])),
        (
            "amount",
            Arc::new(Int64Array::from(vec![10, 20, 30])) as ArrayRef,
        ),
    ])
    .unwrap();
    let customers = batch([("id", text(&["c1"]))]).unwrap();
    let checked = batch([
        (
            "id",
            Arc::new(Int64Array::from(vec![1, 2, 2, 3, 4])) as ArrayRef,
        ),
        (
            "amount",
            Arc::new(Int64Array::from(vec![10, 20, 21, -5, 40])) as ArrayRef,
        ),
        (
            "status",
            text(&["paid", "paid", "open", "paid", "cancelled"]),
        ),
        (
            "order_date",
            text(&[
                "2026-01-02",
                "2025-12-31",
                "2026-02-01",
                "2026-03-01",
                "2026-03-02",
            ]),
        ),
    ])
    .unwrap();
    let output = TestRun::new(pipeline)
        .input("landing_orders", landing)
        .input("raw_customers", customers)
        .input("raw_checked_orders", checked)
        .run()
        .await
        .unwrap();
    let report = output.report();
    assert!(report.succeeded(), "{report}");
    assert_eq!(
        report.dataset("registry_odd").unwrap().rows_written,
        Some(3)
    );
    assert_eq!(
        report.dataset("registry_result").unwrap().rows_written,
        Some(2)
    );
    assert_eq!(
        report.dataset("silver_orders").unwrap().rows_written,
        Some(2)
    );
    assert_eq!(
        report.dataset("gold_daily_revenue").unwrap().rows_written,
        Some(2)
    );
    assert_eq!(
        report.dataset("private_stream").unwrap().rows_written,
        Some(3)
    );
    assert_eq!(
        report.dataset("all_regions").unwrap().rows_written,
        Some(4),
        "three live rows and one backfill row"
    );
    assert_eq!(
        report.dataset("all_regions_backfill").unwrap().kind,
        DatasetKind::AppendFlow
    );
    assert_eq!(
        output.row_count("all_regions").unwrap(),
        4,
        "{}",
        output.pretty("all_regions").unwrap()
    );
    assert_eq!(
        report.dataset("registry_odd").unwrap().kind,
        DatasetKind::MaterializedView
    );
    assert_eq!(
        report.dataset("private_stream").unwrap().kind,
        DatasetKind::StreamingTable
    );
    assert!(
        report.dataset("eu_orders").is_none(),
        "temporary views are not stored"
    );

    let error = Pipeline::from_registry()
        .external_table("landing_orders", SourceSpec::csv("unused.csv"))
        .dataset(Dataset::materialized_view("raw_customers", || {
            sql("SELECT 1 AS id")
        }))
        .dry_run()
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot open source `unused.csv`"),
        "sources open at dry run: {error}"
    );
}

#[tokio::test]
async fn macro_options_reach_the_definition() {
    let def = Pipeline::from_registry().definition().clone();
    let find = |name: &str| {
        def.datasets
            .iter()
            .find(|d| d.name == name)
            .unwrap()
            .clone()
    };
    let numbers = find("registry_numbers");
    assert_eq!(numbers.comment.as_deref(), Some("Numbers one to five"));
    assert_eq!(numbers.kind, DatasetKind::MaterializedView);
    assert!(numbers.location.file.ends_with("tests/it/registry.rs"));
    let result = find("registry_result");
    assert_eq!(result.partition_cols, ["n"]);
    assert_eq!(
        result.table_properties.get("quality").map(String::as_str),
        Some("gold")
    );
    let silver = find("silver_orders");
    assert_eq!(silver.kind, DatasetKind::Table);
    assert_eq!(silver.partition_cols, ["order_date", "country"]);
    assert_eq!(silver.table_properties.len(), 2);
    assert_eq!(find("registry_big").kind, DatasetKind::TemporaryView);
    let table = find("all_regions");
    assert!(table.query.is_none());
    assert_eq!(table.kind, DatasetKind::StreamingTable);
    assert_eq!(table.partition_cols, ["region"]);
    assert_eq!(table.comment.as_deref(), Some("Orders of every region"));
    let backfill = find("all_regions_backfill");
    assert_eq!(backfill.kind, DatasetKind::AppendFlow);
    assert_eq!(backfill.target.as_deref(), Some("all_regions"));
    assert!(backfill.once);
    assert!(!find("all_regions_live").once);
}
