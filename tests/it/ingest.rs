//! File ingestion as Auto Loader and `read_files` do it: options, inference, rescued data,
//! modes, `_metadata`, bounded batches, changed files. Expected results follow Databricks'
//! documentation (Spark's CSV/JSON readers where they agree): rescued values are JSON with the
//! file's path last, `read_files` infers types and `cloud_files` reads text as STRING.

use std::path::PathBuf;

use lakeflow::prelude::*;
use lakeflow::project::Project;

use crate::support::{delta_rows, sorted_lines};

struct Dirs {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Dirs {
    fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        Dirs { _tmp: tmp, root }
    }

    fn landing(&self) -> PathBuf {
        self.root.join("landing")
    }

    fn storage(&self) -> PathBuf {
        self.root.join("storage")
    }

    fn write(&self, name: &str, text: &str) {
        let path = self.landing().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    async fn table(&self, name: &str) -> Vec<String> {
        sorted_lines(&delta_rows(&self.storage().join(name)).await)
    }
}

fn pipeline(dirs: &Dirs, options: FileOptions) -> Pipeline {
    let landing = dirs.landing().display().to_string();
    Pipeline::builder()
        .streaming_table("bronze", move || {
            read_stream_files_with(landing.as_str(), options.clone())
        })
        .storage(dirs.storage().to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// bronze (the landed files, read with `options`) -> silver (bronze's new rows, no id 0).
fn bronze_and_silver(dirs: &Dirs, options: FileOptions) -> Pipeline {
    let landing = dirs.landing().display().to_string();
    Pipeline::builder()
        .streaming_table("bronze", move || {
            read_stream_files_with(landing.as_str(), options.clone())
        })
        .table("silver", || {
            Ok(read_stream("bronze")?.filter(col("id").not_eq(lit(0)))?)
        })
        .storage(dirs.storage().to_str().unwrap())
        .progress(ProgressMode::Off)
}

/// A SQL project with `sql` as its one file, run once.
fn sql_project(dirs: &Dirs, sql: &str) -> Pipeline {
    std::fs::write(
        dirs.root.join("lakeflow.yml"),
        "name: ingest\nstorage: storage\nlibraries:\n  - glob:\n      include: p.sql\n",
    )
    .unwrap();
    std::fs::write(dirs.root.join("p.sql"), sql).unwrap();
    Project::find(&dirs.root)
        .unwrap()
        .pipeline()
        .progress(ProgressMode::Off)
}

fn reason(result: lakeflow::Result<lakeflow::RunReport>, dataset: &str) -> String {
    match result {
        Err(lakeflow::Error::RunFailed { report }) => report
            .dataset(dataset)
            .and_then(|d| d.reason.clone())
            .unwrap_or_default(),
        Err(e) => e.to_string(),
        Ok(_) => panic!("the run should fail"),
    }
}

#[tokio::test]
async fn a_value_that_does_not_fit_is_rescued_and_the_row_kept() {
    let dirs = Dirs::new();
    dirs.write("a.csv", "id,name\n1,x\nabc,y\n");
    pipeline(&dirs, FileOptions::csv().option("schemaHints", "id INT"))
        .run()
        .await
        .unwrap();
    let file = format!("file://{}", dirs.landing().join("a.csv").display());
    assert_eq!(
        compact(dirs.table("bronze").await),
        [
            "|id|name|_rescued_data|".to_string(),
            format!("||y|{{\"id\":\"abc\",\"_file_path\":\"{file}\"}}|"),
            "|1|x||".to_string(),
        ]
    );
}

/// Table lines with cell padding removed: `|1|x|`.
fn compact(lines: Vec<String>) -> Vec<String> {
    lines
        .iter()
        .map(|l| l.split('|').map(str::trim).collect::<Vec<_>>().join("|"))
        .collect()
}

#[tokio::test]
async fn unknown_and_case_mismatched_columns_are_rescued_by_name() {
    let dirs = Dirs::new();
    dirs.write("a.csv", "id,name\n1,x\n");
    pipeline(
        &dirs,
        FileOptions::csv().option("schemaEvolutionMode", "rescue"),
    )
    .run()
    .await
    .unwrap();
    dirs.write("b.csv", "id,NAME,extra\n2,y,z\n");
    pipeline(
        &dirs,
        FileOptions::csv().option("schemaEvolutionMode", "rescue"),
    )
    .run()
    .await
    .unwrap();
    let file = format!("file://{}", dirs.landing().join("b.csv").display());
    assert_eq!(
        compact(dirs.table("bronze").await),
        [
            "|id|name|_rescued_data|".to_string(),
            "|1|x||".to_string(),
            format!("|2||{{\"NAME\":\"y\",\"extra\":\"z\",\"_file_path\":\"{file}\"}}|"),
        ]
    );
}

#[tokio::test]
async fn failfast_names_the_file_and_line_and_dropmalformed_drops() {
    let dirs = Dirs::new();
    dirs.write("a.csv", "id,name\n1,x\n2,y\nabc,z\n");
    let failed = pipeline(
        &dirs,
        FileOptions::csv()
            .schema("id INT, name STRING")
            .option("mode", "FAILFAST"),
    )
    .run()
    .await;
    let reason = reason(failed, "bronze");
    assert!(reason.contains("a.csv"), "{reason}");
    assert!(reason.contains("line 4"), "{reason}");
    assert!(reason.contains("`id` is not INT"), "{reason}");

    let dirs = Dirs::new();
    dirs.write("a.csv", "id,name\n1,x\nabc,z\nxyz,w\n");
    let dropping = pipeline(
        &dirs,
        FileOptions::csv()
            .schema("id INT, name STRING")
            .option("mode", "dropmalformed"),
    );
    dropping.run().await.unwrap();
    assert_eq!(compact(dirs.table("bronze").await), ["|id|name|", "|1|x|"]);
    // The rows left out are counted in the event log, with the file they came from.
    let text = crate::support::warnings(&dropping).await;
    assert!(text.contains("left out 2 malformed records"), "{text}");
    assert!(text.contains("a.csv"), "{text}");
}

#[tokio::test]
async fn read_files_options_come_from_sql() {
    let dirs = Dirs::new();
    dirs.write("a.csv", "id;amount\n1;2.5\n");
    let p = sql_project(
        &dirs,
        "CREATE MATERIALIZED VIEW typed AS SELECT * FROM read_files('landing', format => 'csv', sep => ';', `cloudFiles.useNotifications` => 'true');
CREATE MATERIALIZED VIEW strings AS SELECT * FROM read_files('landing', format => 'csv', sep => ';', inferColumnTypes => false, rescuedDataColumn => 'bad');
CREATE MATERIALIZED VIEW given AS SELECT * FROM read_files('landing', format => 'csv', SEP => ';', schema => 'id BIGINT, amount STRING');
CREATE MATERIALIZED VIEW hinted AS SELECT * FROM read_files('landing', format => 'csv', sep => ';', schemaHints => 'amount DECIMAL(10,2)');
CREATE STREAMING TABLE legacy AS SELECT * FROM cloud_files('landing', 'csv', map('cloudFiles.sep', ';'));
CREATE MATERIALIZED VIEW files AS SELECT id, _metadata.file_name AS name, _metadata.file_size AS size FROM read_files('landing', format => 'csv', sep => ';');
",
    );
    p.run().await.unwrap();
    let schema = |name: &str| {
        let dir = dirs.storage().join(name);
        async move {
            let batches = delta_rows(&dir).await;
            batches[0]
                .schema()
                .fields()
                .iter()
                .map(|f| format!("{} {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
        }
    };
    let typed = schema("typed").await;
    assert!(typed[0].starts_with("id Int"), "{typed:?}");
    assert!(typed[1].starts_with("amount Float64"), "{typed:?}");
    assert!(typed[2].starts_with("_rescued_data"), "{typed:?}");
    let strings = schema("strings").await;
    assert!(strings[0].starts_with("id Utf8"), "{strings:?}");
    assert!(strings[2].starts_with("bad "), "{strings:?}");
    assert_eq!(
        schema("given").await.len(),
        2,
        "a given schema has no rescued column"
    );
    assert!(schema("given").await[0].starts_with("id Int64"));
    assert!(schema("hinted").await[1].contains("Decimal128(10, 2)"));
    assert!(
        schema("legacy").await[0].starts_with("id Utf8"),
        "cloud_files reads STRING"
    );
    assert_eq!(
        compact(dirs.table("files").await),
        ["|id|name|size|", "|1|a.csv|16|"]
    );
}

#[tokio::test]
async fn an_unknown_option_is_an_error_naming_it_and_the_known_ones() {
    let dirs = Dirs::new();
    dirs.write("a.csv", "id\n1\n");
    std::fs::write(
        dirs.root.join("lakeflow.yml"),
        "name: ingest\nstorage: storage\nlibraries:\n  - glob:\n      include: p.sql\n",
    )
    .unwrap();
    std::fs::write(
        dirs.root.join("p.sql"),
        "CREATE MATERIALIZED VIEW t AS SELECT * FROM read_files('landing', format => 'csv', inferColumTypes => true);\n",
    )
    .unwrap();
    let e = match Project::find(&dirs.root) {
        Ok(project) => match project.pipeline().progress(ProgressMode::Off).run().await {
            Ok(_) => panic!("an unknown option must fail"),
            Err(e) => e.to_string(),
        },
        Err(e) => e.to_string(),
    };
    assert!(e.contains("unknown option `inferColumTypes`"), "{e}");
    assert!(e.contains("inferColumnTypes"), "{e}");
    assert!(e.contains("p.sql"), "{e}");
}

#[tokio::test]
async fn max_files_per_trigger_runs_several_batches_each_once() {
    let dirs = Dirs::new();
    for i in 0..3 {
        dirs.write(&format!("f{i}.csv"), &format!("id\n{i}\n"));
    }
    let options = FileOptions::csv().option("maxFilesPerTrigger", "1");
    let report = pipeline(&dirs, options.clone()).run().await.unwrap();
    assert_eq!(report.dataset("bronze").unwrap().rows_written, Some(3));
    let offsets = dirs
        .storage()
        .join("_lakeflow/checkpoints/bronze/v1/commits");
    assert_eq!(
        std::fs::read_dir(offsets).unwrap().count(),
        3,
        "three batches"
    );
    pipeline(&dirs, options).run().await.unwrap();
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|_rescued_data|", "|0||", "|1||", "|2||"]
    );
}

#[tokio::test]
async fn a_file_changed_after_it_was_read_is_reported_and_read_again_with_allow_overwrites() {
    let dirs = Dirs::new();
    dirs.write("a.csv", "id\n1\n");
    pipeline(&dirs, FileOptions::csv()).run().await.unwrap();
    // The file grows (it was read while still being written).
    dirs.write("a.csv", "id\n1\n2\n3\n");
    let p = pipeline(&dirs, FileOptions::csv());
    p.run().await.unwrap();
    let warned = p
        .event_log_sql(
            "SELECT message FROM event_log WHERE level = 'WARN' AND message LIKE '%a.csv%changed after%'",
        )
        .await
        .unwrap()
        .count()
        .await
        .unwrap();
    assert_eq!(warned, 1, "the changed file is named in the event log");
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|_rescued_data|", "|1||"]
    );

    let allow = FileOptions::csv().option("cloudFiles.allowOverwrites", "true");
    pipeline(&dirs, allow).run().await.unwrap();
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|_rescued_data|", "|1||", "|1||", "|2||", "|3||"],
        "allowOverwrites reads the whole file again"
    );
}

#[tokio::test]
async fn globs_recursion_and_existing_files_select_what_is_read() {
    let dirs = Dirs::new();
    dirs.write("a.csv", "id\n1\n");
    dirs.write("b.txt", "id\n2\n");
    dirs.write("sub/c.csv", "id\n3\n");
    dirs.write(".d.csv", "id\n4\n");
    dirs.write("_e.csv", "id\n5\n");
    let glob = FileOptions::csv().option("pathGlobFilter", "*.csv");
    pipeline(&dirs, glob.clone()).run().await.unwrap();
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|_rescued_data|", "|1||", "|3||"]
    );
    let dirs2 = Dirs::new();
    dirs2.write("a.csv", "id\n1\n");
    dirs2.write("sub/c.csv", "id\n3\n");
    pipeline(
        &dirs2,
        FileOptions::csv().option("recursiveFileLookup", "false"),
    )
    .run()
    .await
    .unwrap();
    assert_eq!(
        compact(dirs2.table("bronze").await),
        ["|id|_rescued_data|", "|1||"]
    );
    let dirs3 = Dirs::new();
    dirs3.write("a.csv", "id\n1\n");
    let existing = FileOptions::csv()
        .schema("id INT")
        .option("includeExistingFiles", "false");
    pipeline(&dirs3, existing.clone()).run().await.unwrap();
    dirs3.write("b.csv", "id\n2\n");
    pipeline(&dirs3, existing).run().await.unwrap();
    assert_eq!(compact(dirs3.table("bronze").await), ["|id|", "|2|"]);
}

#[tokio::test]
async fn json_arrays_nested_records_and_quoted_newlines_read_whole() {
    let dirs = Dirs::new();
    dirs.write(
        "a.json",
        r#"[
  {"id": 1, "address": {"city": "Oslo", "zip": 150}, "tags": ["a", "b"]},
  {"id": 2, "address": {"city": "Rome", "zip": 100}, "tags": []}
]"#,
    );
    pipeline(&dirs, FileOptions::json().option("multiLine", "true"))
        .run()
        .await
        .unwrap();
    let batches = delta_rows(&dirs.storage().join("bronze")).await;
    let schema = batches[0].schema();
    let names: Vec<_> = schema.fields().iter().map(|f| f.name().clone()).collect();
    assert_eq!(
        names,
        ["address", "id", "tags", "_rescued_data"],
        "Spark orders JSON columns by name"
    );
    assert!(matches!(
        schema.field(0).data_type(),
        datafusion::arrow::datatypes::DataType::Struct(_)
    ));
    assert!(matches!(
        schema.field(2).data_type(),
        datafusion::arrow::datatypes::DataType::List(_)
    ));
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 2);

    let dirs = Dirs::new();
    dirs.write("a.csv", "id,note\n1,\"two\nlines\"\n2,plain\n");
    pipeline(&dirs, FileOptions::csv().option("multiLine", "true"))
        .run()
        .await
        .unwrap();
    let rows = delta_rows(&dirs.storage().join("bronze")).await;
    let notes: Vec<String> = rows
        .iter()
        .flat_map(|b| crate::support::strings(b.column(1).as_ref()))
        .collect();
    assert!(notes.contains(&"two\nlines".to_string()), "{notes:?}");
    assert_eq!(notes.len(), 2);
}

#[tokio::test]
async fn a_new_column_in_a_new_file_fails_the_flow_naming_file_and_column() {
    let dirs = Dirs::new();
    dirs.write("a.csv", "id\n1\n");
    pipeline(&dirs, FileOptions::csv()).run().await.unwrap();
    dirs.write("b.csv", "id,extra\n2,z\n");
    let reason = reason(pipeline(&dirs, FileOptions::csv()).run().await, "bronze");
    assert!(reason.contains("b.csv"), "{reason}");
    assert!(reason.contains("`extra` STRING"), "{reason}");
    assert!(reason.contains("run the pipeline again"), "{reason}");
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|_rescued_data|", "|1||"]
    );
    // addNewColumns (the default): the held schema gained the column, so the next run reads
    // it; the table gains it by schema merge and the row there reads NULL.
    pipeline(&dirs, FileOptions::csv()).run().await.unwrap();
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|_rescued_data|extra|", "|1|||", "|2||z|"]
    );
}

#[tokio::test]
async fn fail_on_new_columns_fails_until_the_file_goes_and_the_schema_stays() {
    let dirs = Dirs::new();
    let options = FileOptions::csv().option("schemaEvolutionMode", "failOnNewColumns");
    dirs.write("a.csv", "id\n1\n");
    pipeline(&dirs, options.clone()).run().await.unwrap();
    dirs.write("b.csv", "id,extra\n2,z\n");
    for _ in 0..2 {
        let reason = reason(pipeline(&dirs, options.clone()).run().await, "bronze");
        assert!(reason.contains("b.csv"), "{reason}");
        assert!(reason.contains("`extra`"), "{reason}");
        assert!(reason.contains("failOnNewColumns"), "{reason}");
    }
    std::fs::remove_file(dirs.landing().join("b.csv")).unwrap();
    dirs.write("c.csv", "id\n3\n");
    pipeline(&dirs, options).run().await.unwrap();
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|_rescued_data|", "|1||", "|3||"]
    );
}

#[tokio::test]
async fn a_full_refresh_infers_the_schema_again() {
    let dirs = Dirs::new();
    let options = FileOptions::csv().option("schemaEvolutionMode", "failOnNewColumns");
    dirs.write("a.csv", "id\n1\n");
    pipeline(&dirs, options.clone()).run().await.unwrap();
    dirs.write("b.csv", "id,extra\n2,z\n");
    let failed = reason(pipeline(&dirs, options.clone()).run().await, "bronze");
    assert!(failed.contains("failOnNewColumns"), "{failed}");
    pipeline(&dirs, options)
        .full_refresh(["bronze"])
        .run()
        .await
        .unwrap();
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|extra|_rescued_data|", "|1|||", "|2|z||"]
    );
}

#[tokio::test]
async fn none_ignores_new_columns_and_rescues_them_only_when_asked() {
    let dirs = Dirs::new();
    let options = FileOptions::csv().option("schemaEvolutionMode", "none");
    dirs.write("a.csv", "id\n1\n");
    pipeline(&dirs, options.clone()).run().await.unwrap();
    dirs.write("b.csv", "id,extra\n2,z\n");
    pipeline(&dirs, options).run().await.unwrap();
    assert_eq!(
        compact(dirs.table("bronze").await),
        ["|id|_rescued_data|", "|1||", "|2||"]
    );

    let dirs = Dirs::new();
    let options = FileOptions::csv()
        .option("schemaEvolutionMode", "none")
        .option("rescuedDataColumn", "_rescue");
    dirs.write("a.csv", "id\n1\n");
    pipeline(&dirs, options.clone()).run().await.unwrap();
    dirs.write("b.csv", "id,extra\n2,z\n");
    pipeline(&dirs, options).run().await.unwrap();
    let file = format!("file://{}", dirs.landing().join("b.csv").display());
    assert_eq!(
        compact(dirs.table("bronze").await),
        [
            "|id|_rescue|".to_string(),
            "|1||".to_string(),
            format!("|2|{{\"extra\":\"z\",\"_file_path\":\"{file}\"}}|"),
        ]
    );
}

/// `addNewColumnsWithTypeWidening`: a file whose values need a wider type stops the flow
/// naming the file and the change; the next run reads it with the wider type, and the
/// tables (bronze, and silver that streams from it) get the wider column by a rewrite that
/// keeps their rows: every row once, no full refresh, readable by an independent reader.
#[tokio::test]
async fn type_widening_widens_the_held_schema_and_the_tables_keeping_every_row_once() {
    use lakeflow::datafusion::arrow::datatypes::DataType;
    let dirs = Dirs::new();
    let options = FileOptions::csv()
        .option(
            "cloudFiles.schemaEvolutionMode",
            "addNewColumnsWithTypeWidening",
        )
        .option("cloudFiles.inferColumnTypes", "true");
    let pipeline = || bronze_and_silver(&dirs, options.clone());
    let amount_type = |table: &str| {
        let dir = dirs.storage().join(table);
        async move {
            let table = crate::support::open_delta(&dir).await;
            let schema = table.snapshot().unwrap().snapshot().arrow_schema();
            schema
                .field_with_name("amount")
                .unwrap()
                .data_type()
                .clone()
        }
    };
    dirs.write("f1.csv", "id,amount\n1,10\n2,20\n");
    pipeline().run().await.unwrap();
    assert_eq!(amount_type("bronze").await, DataType::Int32);
    assert_eq!(amount_type("silver").await, DataType::Int32);
    dirs.write("f2.csv", "id,amount\n3,3000000000\n");
    let stopped = reason(pipeline().run().await, "bronze");
    assert!(
        stopped.contains("f2.csv") && stopped.contains("`amount` INT -> BIGINT"),
        "{stopped}"
    );
    let report = pipeline().run().await.unwrap();
    assert_eq!(report.dataset("bronze").unwrap().rows_written, Some(1));
    assert_eq!(report.dataset("silver").unwrap().rows_written, Some(1));
    dirs.write("f3.csv", "id,amount\n4,40\n");
    pipeline().run().await.unwrap();
    let expected = [
        "|id|amount|_rescued_data|".to_string(),
        "|1|10||".to_string(),
        "|2|20||".to_string(),
        "|3|3000000000||".to_string(),
        "|4|40||".to_string(),
    ];
    assert_eq!(compact(dirs.table("bronze").await), expected);
    assert_eq!(compact(dirs.table("silver").await), expected);
    assert_eq!(amount_type("bronze").await, DataType::Int64);
    assert_eq!(amount_type("silver").await, DataType::Int64);
    // No full refresh, and the Python `deltalake` package reads the widened table.
    assert!(
        !dirs
            .storage()
            .join("_lakeflow/checkpoints/silver/current.json")
            .exists()
    );
    let rows = crate::servers::python_rows(
        &dirs.storage().join("silver").display().to_string(),
        &[],
        &[],
    );
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert!(rows.iter().any(|r| r.contains("3000000000")), "{rows:?}");
}

/// The acceptance case of schema evolution: a streaming table fed file by file, where file 3
/// adds a column and file 5 has a bad value, and a streaming table downstream of it. Every
/// row is there once, the new column from file 3 on (NULL before), the bad value rescued, and
/// nothing was fully refreshed: the one failed run is the stop at the schema change that
/// Auto Loader makes too.
#[tokio::test]
async fn a_stream_fed_file_by_file_evolves_rescues_and_keeps_every_row_once() {
    let dirs = Dirs::new();
    let options = FileOptions::csv().option("schemaHints", "amount DOUBLE");
    let pipeline = || bronze_and_silver(&dirs, options.clone());
    dirs.write("f1.csv", "id,amount\n1,1.5\n2,2.5\n");
    pipeline().run().await.unwrap();
    dirs.write("f2.csv", "id,amount\n3,3.5\n");
    pipeline().run().await.unwrap();
    dirs.write("f3.csv", "id,amount,country\n4,4.5,FR\n5,5.5,DE\n");
    let stopped = reason(pipeline().run().await, "bronze");
    assert!(
        stopped.contains("f3.csv") && stopped.contains("`country` STRING"),
        "{stopped}"
    );
    pipeline().run().await.unwrap();
    dirs.write("f4.csv", "id,amount,country\n6,6.5,IT\n");
    pipeline().run().await.unwrap();
    dirs.write("f5.csv", "id,amount,country\n7,abc,ES\n8,8.5,PT\n");
    let last = pipeline().run().await.unwrap();
    assert_eq!(last.dataset("silver").unwrap().rows_written, Some(2));

    let f5 = format!("file://{}", dirs.landing().join("f5.csv").display());
    let expected = [
        "|id|amount|_rescued_data|country|".to_string(),
        "|1|1.5|||".to_string(),
        "|2|2.5|||".to_string(),
        "|3|3.5|||".to_string(),
        "|4|4.5||FR|".to_string(),
        "|5|5.5||DE|".to_string(),
        "|6|6.5||IT|".to_string(),
        format!("|7||{{\"amount\":\"abc\",\"_file_path\":\"{f5}\"}}|ES|"),
        "|8|8.5||PT|".to_string(),
    ];
    assert_eq!(compact(dirs.table("bronze").await), expected);
    assert_eq!(compact(dirs.table("silver").await), expected);
    // No full refresh: both checkpoints are still at their first version.
    for flow in ["bronze", "silver"] {
        assert!(
            !dirs
                .storage()
                .join(format!("_lakeflow/checkpoints/{flow}/current.json"))
                .exists(),
            "{flow} was reset"
        );
    }
}

/// Tables downstream of an evolved source gain its new column without a full refresh: a
/// materialized view over all of it, and an AUTO CDC target (its merge adds the column).
#[tokio::test]
async fn views_and_cdc_targets_downstream_of_an_evolved_source_gain_the_column() {
    let dirs = Dirs::new();
    let landing = dirs.landing().display().to_string();
    let pipeline = || {
        let landing = landing.clone();
        Pipeline::builder()
            .streaming_table("bronze", move || {
                read_stream_files_with(landing.as_str(), FileOptions::csv())
            })
            .materialized_view("everything", || sql("SELECT * FROM bronze"))
            .create_streaming_table("latest")
            .create_auto_cdc_flow(
                lakeflow::AutoCdc::new("latest", "bronze")
                    .keys(["key"])
                    .sequence_by("id"),
            )
            .create_streaming_table("history")
            .create_auto_cdc_flow(
                lakeflow::AutoCdc::new("history", "bronze")
                    .keys(["key"])
                    .sequence_by("id")
                    .stored_as_scd_type(2),
            )
            .storage(dirs.storage().to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    dirs.write("a.csv", "id,key\n1,a\n2,b\n");
    pipeline().run().await.unwrap();
    dirs.write("b.csv", "id,key,extra\n3,a,x\n");
    let stopped = reason(pipeline().run().await, "bronze");
    assert!(stopped.contains("`extra`"), "{stopped}");
    pipeline().run().await.unwrap();
    assert_eq!(
        compact(dirs.table("everything").await),
        [
            "|id|key|extra|_rescued_data|",
            "|1|a|||",
            "|2|b|||",
            "|3|a|x||"
        ]
    );
    assert_eq!(
        compact(dirs.table("latest").await),
        ["|id|key|_rescued_data|extra|", "|2|b|||", "|3|a||x|"]
    );
    let history = compact(dirs.table("history").await);
    assert!(history[0].contains("|extra|"), "{history:?}");
    assert_eq!(history.len(), 4, "{history:?}");
}
