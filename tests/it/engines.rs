//! Pipelines give the same tables whatever engine runs their flows: the SQL medallion and
//! AUTO CDC projects run twice, with new input between the runs, on an engine under test and
//! on the in-process engine, and every stored table is compared.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use lakeflow::datafusion::execution::SendableRecordBatchStream;
use lakeflow::datafusion::logical_expr::LogicalPlan;
use lakeflow::datafusion::prelude::SessionContext;
use lakeflow::{DataFusionEngine, Engine};

use crate::sql_pipelines::{fixture, run, run_on};
use crate::support::{delta_rows, sorted_lines};

/// The in-process engine, reading tables as file lists as a cluster engine does: the plans
/// it runs are the plans a cluster gets.
#[derive(Debug, Default)]
struct FileListEngine(DataFusionEngine);

#[async_trait]
impl Engine for FileListEngine {
    fn session(&self) -> SessionContext {
        self.0.session()
    }

    async fn execute(&self, plan: LogicalPlan) -> lakeflow::Result<Vec<SendableRecordBatchStream>> {
        self.0.execute(plan).await
    }

    fn portable_scans(&self) -> bool {
        true
    }
}

/// Every Delta table under `dir` (outside the input data), by path, with its sorted rows.
async fn tables(dir: &Path) -> Vec<(PathBuf, Vec<String>)> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(d) = pending.pop() {
        if d.join("_delta_log").is_dir() {
            found.push(d);
            continue;
        }
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.ends_with("data") {
                pending.push(path);
            }
        }
    }
    found.sort();
    let mut out = Vec::new();
    for table in found {
        let rows = sorted_lines(&delta_rows(&table).await);
        // The event log records run ids and times; it is compared by its shape elsewhere.
        if table.components().any(|c| c.as_os_str() == "_lakeflow") {
            continue;
        }
        out.push((table.strip_prefix(dir).unwrap().to_path_buf(), rows));
    }
    out
}

/// New input for the second run of each project.
const NEW_INPUT: &[(&str, &str, &str)] = &[
    (
        "medallion_sql",
        "data/landing/orders-0002.csv",
        "order_id,customer_id,amount\n5,12,30.0\n6,10,200.0\n7,11,-1.0\n",
    ),
    (
        "cdc_sql",
        "data/changes/changes-0002.csv",
        "customer_id,name,city,email,operation,sequence_num\n2,Bob,Munich,bob@example.com,UPDATE,5\n3,Cid,Rome,cid@example.com,DELETE,6\n4,Dee,Oslo,dee@example.com,INSERT,7\n",
    ),
];

/// Runs each project twice on `engine` and on the in-process engine; panics at the first
/// table that differs. Returns the number of tables compared.
pub async fn same_tables_as_in_process(engine: Arc<dyn Engine>) -> usize {
    let mut compared = 0;
    for (project, new_file, new_rows) in NEW_INPUT {
        let (_a, ours) = fixture(project);
        let (_b, reference) = fixture(project);
        for round in 0..2 {
            if round == 1 {
                std::fs::write(ours.join(new_file), new_rows).unwrap();
                std::fs::write(reference.join(new_file), new_rows).unwrap();
            }
            let on_engine = run_on(&ours, Some(engine.clone())).await;
            let in_process = run(&reference).await;
            assert_eq!(
                on_engine.datasets.len(),
                in_process.datasets.len(),
                "{on_engine}"
            );
            let (got, want) = (tables(&ours).await, tables(&reference).await);
            assert!(!want.is_empty(), "{project} stored no table");
            assert_eq!(
                got.iter().map(|t| &t.0).collect::<Vec<_>>(),
                want.iter().map(|t| &t.0).collect::<Vec<_>>(),
                "{project}, run {round}: the tables"
            );
            let differ: Vec<String> = got
                .iter()
                .zip(&want)
                .filter(|((_, g), (_, w))| g != w)
                .map(|((name, g), (_, w))| {
                    format!("table {}:\n  got  {g:?}\n  want {w:?}", name.display())
                })
                .collect();
            assert!(
                differ.is_empty(),
                "{project}, run {round}: {} tables differ\n{}",
                differ.len(),
                differ.join("\n")
            );
            compared += want.len();
        }
    }
    compared
}

/// Tables read as lists of Parquet files (what a cluster engine ships) give the same results
/// as delta-rs's own scan, streams and AUTO CDC included.
#[tokio::test]
async fn tables_read_as_file_lists_give_the_same_results() {
    let compared = same_tables_as_in_process(Arc::new(FileListEngine::default())).await;
    assert!(compared >= 10, "{compared} tables compared");
}
