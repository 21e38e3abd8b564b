//! Pipelines whose landing files, tables, checkpoints, event log and sinks live on object
//! stores: a real S3 server (moto) and Azure's emulator (azurite), started by the tests. Each
//! run is compared with the same run on local disk, table by table, as the Python `deltalake`
//! package reads them back (a reader that is not lakeflow).

use std::path::Path;
use std::process::Command;

use lakeflow::Error;

use crate::servers::{azure_env, moto, python_rows, python_with, s3_env, s3_options};
use crate::streaming::{TABLES, land, pipeline};

/// Uploads the files of `dir` to `s3://lake/<prefix>/`.
fn upload(dir: &Path, prefix: &str) {
    python_with(
        &format!(
            r#"
import boto3, os
s3 = boto3.client('s3', endpoint_url={:?}, aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')
for name in sorted(os.listdir({:?})):
    s3.upload_file(os.path.join({:?}, name), 'lake', {:?} + '/' + name)
"#,
            moto().endpoint(),
            dir.display().to_string(),
            dir.display().to_string(),
            prefix
        ),
        &[],
    );
}

/// The rows of the Delta table at `uri` on moto, as Python's deltalake reads them.
fn s3_rows(uri: &str) -> Vec<String> {
    python_rows(uri, &s3_env(), &[])
}

/// The medallion pipeline with its landing files, storage (tables, checkpoints, event log,
/// lease, graph page) on S3: two runs with a file landed in between equal the same on disk.
#[tokio::test]
async fn the_medallion_pipeline_runs_on_s3_as_on_disk() {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    let local = root.path().join("local");
    land(&landing, 0, 0, 40);
    upload(&landing, "medallion/landing");
    let on_s3 = || {
        pipeline(
            Path::new("s3://lake/medallion/landing"),
            Path::new("s3://lake/medallion/store"),
        )
        .storage_options(s3_options())
    };
    for round in 0..2 {
        pipeline(&landing, &local).run().await.unwrap();
        let report = on_s3().run().await.unwrap();
        assert!(report.succeeded(), "{report}");
        if round == 0 {
            // A file lands between the runs; the second run reads it, and only it.
            land(&landing, 1, 40, 25);
            std::fs::create_dir_all(root.path().join("new")).unwrap();
            std::fs::copy(
                landing.join("orders-001.csv"),
                root.path().join("new/orders-001.csv"),
            )
            .unwrap();
            upload(&root.path().join("new"), "medallion/landing");
        }
    }
    for table in TABLES {
        let expected = python_rows(&local.join(table).display().to_string(), &[], &[]);
        let stored = s3_rows(&format!("s3://lake/medallion/store/{table}"));
        assert_eq!(stored, expected, "table {table} on S3");
    }
    let bronze = s3_rows("s3://lake/medallion/store/bronze");
    assert_eq!(bronze.len(), 1 + 65, "every order once");
    // The run's state lives there too, and the lease was given back.
    let events = s3_rows("s3://lake/medallion/store/_lakeflow/event_log");
    assert!(events.len() > 10, "{events:?}");
    assert!(
        events.iter().all(|e| !e.contains("sekrit-test-key")),
        "no secret in the event log"
    );
    let graph = on_s3().dry_run().await;
    assert!(
        graph.is_ok(),
        "a dry run reads the held schemas there: {graph:?}"
    );
}

/// Two runs at once on S3: the lease lets one write; the other is turned away (or, waiting,
/// runs after it); every order is in bronze once.
#[tokio::test]
async fn two_runs_at_once_on_s3_write_each_row_once() {
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    land(&landing, 0, 0, 30);
    land(&landing, 1, 30, 30);
    upload(&landing, "twice/landing");
    let on_s3 = |wait: bool| {
        pipeline(
            Path::new("s3://lake/twice/landing"),
            Path::new("s3://lake/twice/store"),
        )
        .storage_options(s3_options())
        .wait_for_storage(wait)
    };
    let runs = [on_s3(false), on_s3(false), on_s3(true)];
    let (one, two, three) = tokio::join!(runs[0].run(), runs[1].run(), runs[2].run());
    let mut ran = 0;
    for result in [one, two, three] {
        match result {
            Ok(report) => {
                assert!(report.succeeded(), "{report}");
                ran += 1;
            }
            Err(Error::StorageBusy { holder, .. }) => {
                assert!(holder.contains("pid"), "{holder}")
            }
            Err(e) => panic!("neither ran nor turned away: {e}"),
        }
    }
    assert!(ran >= 1, "the waiting run runs");
    let bronze = s3_rows("s3://lake/twice/store/bronze");
    assert_eq!(bronze.len(), 1 + 60, "every order once");
}

/// Lands `first` orders, runs a pipeline whose bronze table feeds a `format` sink at `path`
/// on S3, lands `more` orders and runs twice more (the last run has nothing new).
async fn run_into_sink(format: &str, path: &str, first: u64, more: u64) {
    use lakeflow::prelude::*;
    let root = tempfile::tempdir().unwrap();
    let landing = root.path().join("landing");
    land(&landing, 0, 0, first);
    let source = landing.display().to_string();
    let mut sink_options = vec![("path".to_string(), path.to_string())];
    sink_options.extend(s3_options().into_iter().map(|(k, v)| (k.to_string(), v)));
    let build = || {
        let source = source.clone();
        Pipeline::builder()
            .streaming_table("bronze", move || read_stream_files(source.as_str(), csv()))
            .create_sink("orders_out", format, sink_options.clone())
            .append_flow("orders_out", "to_sink", || read_stream("bronze"))
            .storage(root.path().join("store").to_str().unwrap())
            .progress(ProgressMode::Off)
    };
    build().run().await.unwrap();
    land(&landing, 1, first, more);
    build().run().await.unwrap();
    build().run().await.unwrap();
}

/// A Delta sink on S3: each batch appended once, readable by deltalake.
#[tokio::test]
async fn a_delta_sink_on_s3_gets_each_batch_once() {
    run_into_sink("delta", "s3://lake/sink/orders", 12, 5).await;
    let rows = s3_rows("s3://lake/sink/orders");
    assert_eq!(rows.len(), 1 + 17, "{rows:?}");
}

/// Runs `lakeflow run` in `dir` with `env`; asserts it succeeds and prints no secret.
fn cli_run(dir: &Path, env: &[(&str, String)]) {
    let output = Command::new(env!("CARGO_BIN_EXE_lakeflow"))
        .args(["run", "--progress", "lines"])
        .current_dir(dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{text}");
    assert!(
        !text.contains("sekrit-test-key"),
        "no secret in the output: {text}"
    );
}

/// The rows of table `table` of the SQL project at `dir`, stored on local disk.
fn local_rows(dir: &Path, table: &str) -> Vec<String> {
    python_rows(
        &dir.join("lakeflow-data").join(table).display().to_string(),
        &[],
        &[],
    )
}

/// The `lakeflow` binary over a SQL project whose storage and landing are on S3, with the
/// credentials in the standard environment variables only: the same tables as on disk, and
/// the secret in no output.
#[tokio::test]
async fn a_sql_project_on_s3_with_credentials_from_the_environment() {
    let (_tmp, project) = crate::sql_pipelines::fixture("medallion_sql");
    let (_tmp2, local) = crate::sql_pipelines::fixture("medallion_sql");
    upload(&project.join("data/landing"), "sqlproj/landing");
    let spec = std::fs::read_to_string(project.join("lakeflow.yml")).unwrap();
    let spec = spec
        .replace("storage: lakeflow-data", "storage: s3://lake/sqlproj/store")
        .replace(
            "landing: data/landing",
            "landing: s3://lake/sqlproj/landing",
        );
    std::fs::write(project.join("lakeflow.yml"), spec).unwrap();
    cli_run(&project, &s3_env());
    cli_run(&local, &[]);
    for table in [
        "orders_bronze",
        "orders_silver",
        "revenue_by_country",
        "order_ids",
    ] {
        let expected = local_rows(&local, table);
        let stored = s3_rows(&format!("s3://lake/sqlproj/store/{table}"));
        assert_eq!(stored, expected, "table {table} on S3");
    }
}

/// The medallion pipeline with its storage on Azure (the emulator), credentials from the
/// environment, through the `lakeflow` CLI over a SQL project.
#[tokio::test]
async fn a_sql_project_on_azure_runs_as_on_disk() {
    let (_tmp, project) = crate::sql_pipelines::fixture("medallion_sql");
    let (_tmp2, local) = crate::sql_pipelines::fixture("medallion_sql");
    let spec = std::fs::read_to_string(project.join("lakeflow.yml")).unwrap();
    std::fs::write(
        project.join("lakeflow.yml"),
        spec.replace("storage: lakeflow-data", "storage: az://lake/sqlproj"),
    )
    .unwrap();
    cli_run(&project, &azure_env());
    cli_run(&local, &[]);
    for table in ["orders_bronze", "orders_silver", "revenue_by_country"] {
        let expected = local_rows(&local, table);
        let stored = python_rows(
            &format!("az://lake/sqlproj/{table}"),
            &[("AZURE_STORAGE_USE_EMULATOR", "true".into())],
            &azure_env(),
        );
        assert_eq!(stored, expected, "table {table} on Azure");
    }
}

/// `useIncrementalListing`: on S3 the listing starts after the last file read (S3's
/// `start-after`), so it does not grow with the files already read; a file whose name sorts
/// before that is not seen (the documented price of the option), one after it is.
#[tokio::test]
async fn incremental_listing_starts_after_the_last_file_read() {
    use lakeflow::prelude::*;
    let root = tempfile::tempdir().unwrap();
    let build = || {
        let options = FileOptions::csv().option("cloudFiles.useIncrementalListing", "true");
        Pipeline::builder()
            .streaming_table("bronze", move || {
                read_stream_files_with("s3://lake/incremental/landing", options.clone())
            })
            .storage("s3://lake/incremental/store")
            .storage_options(s3_options())
            .progress(ProgressMode::Off)
    };
    let drop_file = |name: &str, text: &str| {
        let dir = root.path().join(name.replace('.', "_"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), text).unwrap();
        upload(&dir, "incremental/landing");
    };
    drop_file("b.csv", "id\n1\n");
    build().run().await.unwrap();
    drop_file("a.csv", "id\n2\n");
    drop_file("c.csv", "id\n3\n");
    build().run().await.unwrap();
    let rows = s3_rows("s3://lake/incremental/store/bronze");
    let ids: Vec<&str> = rows.iter().skip(1).map(String::as_str).collect();
    assert_eq!(ids.len(), 2, "{rows:?}");
    assert!(
        ids[0].contains("\"1\"") && ids[1].contains("\"3\""),
        "{rows:?}"
    );
}

/// Landing files on GCS (fake-gcs-server, which serves reads only): a streaming table reads
/// each file once, the second run only the new one.
#[tokio::test]
async fn landing_files_on_gcs_are_read_once() {
    use crate::servers::{gcs_options, gcs_upload};
    use lakeflow::prelude::*;
    let root = tempfile::tempdir().unwrap();
    let storage = root.path().join("store");
    let build = || {
        Pipeline::builder()
            .streaming_table("bronze", || {
                read_stream_files_with("gs://lake/landing", FileOptions::csv())
            })
            .storage(storage.to_str().unwrap())
            .storage_options(gcs_options())
            .progress(ProgressMode::Off)
    };
    gcs_upload("landing/a.csv", "id,name\n1,ann\n2,bob\n");
    build().run().await.unwrap();
    gcs_upload("landing/b.csv", "id,name\n3,cy\n");
    build().run().await.unwrap();
    build().run().await.unwrap();
    let rows =
        crate::support::sorted_lines(&crate::support::delta_rows(&storage.join("bronze")).await);
    assert_eq!(rows.len(), 1 + 3, "{rows:?}");
}

/// A Parquet sink on S3: each batch is its own file, written with one put; a batch handed
/// over again replaces its own file.
#[tokio::test]
async fn a_parquet_sink_on_s3_writes_each_batch_once() {
    run_into_sink("parquet", "s3://lake/parquet-sink", 8, 4).await;
    let count = python_with(
        &format!(
            r#"
import boto3, io, pyarrow.parquet as pq
s3 = boto3.client('s3', endpoint_url={:?}, aws_access_key_id='test', aws_secret_access_key='test', region_name='us-east-1')
keys = [o['Key'] for o in s3.list_objects_v2(Bucket='lake', Prefix='parquet-sink/')['Contents']]
rows = sum(pq.read_table(io.BytesIO(s3.get_object(Bucket='lake', Key=k)['Body'].read())).num_rows for k in keys)
print(len(keys), rows)
"#,
            moto().endpoint()
        ),
        &[],
    );
    let mut parts = count
        .split_whitespace()
        .map(|n| n.parse::<usize>().unwrap());
    let (files, rows) = (parts.next().unwrap(), parts.next().unwrap());
    assert!(files >= 2, "one file per batch at least: {count}");
    assert_eq!(rows, 12, "every row once");
}
