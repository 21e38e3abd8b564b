//! Helpers shared by the integration tests: opening written tables with the `deltalake`
//! crate directly (an independent reader), and printing rows in a stable order.

use std::path::Path;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::prelude::SessionContext;
use deltalake::DeltaTable;
use lakeflow::datafusion;

/// Opens the Delta table at `dir` with deltalake itself, not through lakeflow.
pub async fn open_delta(dir: &Path) -> DeltaTable {
    let url = url::Url::from_directory_path(std::fs::canonicalize(dir).unwrap()).unwrap();
    deltalake::open_table(url).await.expect("a Delta table")
}

/// All rows of the Delta table at `dir`, read with deltalake and DataFusion.
pub async fn delta_rows(dir: &Path) -> Vec<RecordBatch> {
    let table = open_delta(dir).await;
    let ctx = SessionContext::new();
    let provider = table.table_provider().await.unwrap();
    ctx.register_table("t", provider).unwrap();
    ctx.sql("SELECT * FROM t")
        .await
        .unwrap()
        .collect()
        .await
        .unwrap()
}

/// The row count of the Delta table at `dir`.
pub async fn delta_count(dir: &Path) -> usize {
    delta_rows(dir)
        .await
        .iter()
        .map(RecordBatch::num_rows)
        .sum()
}

/// Rows as text lines, sorted, header first: comparable regardless of file order.
pub fn sorted_lines(batches: &[RecordBatch]) -> Vec<String> {
    let text = pretty_format_batches(batches).unwrap().to_string();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    if lines.len() < 4 {
        return lines;
    }
    let header = lines[1].clone();
    let mut body: Vec<String> = lines[3..lines.len() - 1].to_vec();
    body.sort();
    std::iter::once(header).chain(body).collect()
}

/// The values of a string column of any string type (Delta reads strings as views).
pub fn strings(column: &dyn datafusion::arrow::array::Array) -> Vec<String> {
    use datafusion::arrow::array::AsArray;
    use datafusion::arrow::datatypes::DataType;
    let utf8 = datafusion::arrow::compute::cast(column, &DataType::Utf8).unwrap();
    utf8.as_string::<i32>()
        .iter()
        .map(|v| v.unwrap_or("NULL").to_string())
        .collect()
}

/// The messages of the warnings `pipeline`'s event log holds about its flows' progress, as
/// one table of text.
pub async fn warnings(pipeline: &lakeflow::Pipeline) -> String {
    use datafusion::prelude::{col, lit};
    let warnings = pipeline
        .event_log()
        .await
        .unwrap()
        .filter(
            col("event_type")
                .eq(lit("flow_progress"))
                .and(col("level").eq(lit("WARN"))),
        )
        .unwrap()
        .select(vec![col("message")])
        .unwrap()
        .collect()
        .await
        .unwrap();
    pretty_format_batches(&warnings).unwrap().to_string()
}
