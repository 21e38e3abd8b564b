//! Datasets defined with the attribute macros, collected by `Pipeline::from_registry()`.
//! This is the only module of the test binary that uses the macros, so the registry holds
//! exactly these.

use std::sync::Arc;

use lakeflow::prelude::*;

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

#[tokio::test]
async fn macros_register_and_run() {
    let pipeline = Pipeline::from_registry();
    assert_eq!(
        pipeline.dataset_names(),
        ["registry_big", "registry_numbers", "registry_odd", "registry_result"]
    );
    let storage = Arc::new(lakeflow::MemoryStorage::new());
    let report = pipeline.storage_backend(storage.clone()).run().await.unwrap();
    assert_eq!(report.dataset("registry_odd").unwrap().rows_written, Some(3));
    assert_eq!(report.dataset("registry_result").unwrap().rows_written, Some(2));
    assert_eq!(
        report.dataset("registry_odd").unwrap().kind,
        DatasetKind::MaterializedView
    );
    let graph = Pipeline::from_registry().dry_run().await.unwrap();
    let numbers = graph.get("registry_numbers").unwrap();
    assert_eq!(numbers.def.comment.as_deref(), Some("Numbers one to five"));
    assert!(numbers.def.location.file.ends_with("tests/it/registry.rs"));
    let result = graph.get("registry_result").unwrap();
    assert_eq!(result.def.partition_cols, ["n"]);
    assert_eq!(result.def.table_properties.get("quality").map(String::as_str), Some("gold"));
}
