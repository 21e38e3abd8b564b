//! Spark Declarative Pipelines' own test cases, ported: `tests/fixtures/sdp/cases.json` holds
//! small SQL projects from Spark's SDP suites (`SqlPipelineSuite`, `ConnectValidPipelineSuite`,
//! `ConnectInvalidPipelineSuite`, ...) with the outcome `spark-pipelines` 4.3 gave for each:
//! the tables it wrote, or the error class it failed with (`oracle.py` records them; no JVM
//! is needed here). Each case runs as a lakeflow project. A case whose outcome differs from
//! Spark's must be listed in `known_differences.txt` beside the cases, with why; the test
//! fails when an unlisted case differs or a listed one matches.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray, RecordBatch};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use lakeflow::datafusion;
use lakeflow::prelude::*;
use lakeflow::project::Project;
use serde_json::Value;

use crate::support::delta_rows;

const CASES: &str = include_str!("../fixtures/sdp/cases.json");
const KNOWN: &str = include_str!("../fixtures/sdp/known_differences.txt");

#[tokio::test]
async fn spark_sdp_cases_give_what_spark_gave() {
    let cases: Value = serde_json::from_str(CASES).unwrap();
    let known: BTreeMap<&str, &str> = KNOWN
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| l.split_once(' ').unwrap_or((l, "")))
        .collect();
    let only = std::env::var("SDP_CASE").ok();
    let (mut matched, mut total) = (0, 0);
    let mut unexpected = Vec::new();
    let mut stale = Vec::new();
    let mut listing = String::new();
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        // A case that starts from tables already in Spark's catalog (`setup`) starts here
        // from the same tables in lakeflow's terms (see `setup_project`); creating a schema
        // is nothing to lakeflow (a schema is where its datasets are stored).
        if case["expect"].is_null() || only.as_deref().is_some_and(|o| !name.contains(o)) {
            continue;
        }
        total += 1;
        let outcome = run_case(case).await;
        match (&outcome, known.contains_key(name)) {
            (Ok(()), false) => matched += 1,
            (Ok(()), true) => stale.push(name.to_string()),
            (Err(e), false) => unexpected.push(format!("{name}: {e}")),
            (Err(_), true) => {}
        }
        if let Err(e) = &outcome {
            listing.push_str(&format!("{name} {}\n", e.replace('\n', " ")));
        }
    }
    println!("{matched} of {total} Spark SDP cases give Spark's outcome");
    if std::env::var_os("SDP_LIST").is_some() {
        println!("{listing}");
    }
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{} cases differ from Spark:\n{}\n{} listed in known_differences.txt now match (remove them):\n{}",
        unexpected.len(),
        unexpected.join("\n"),
        stale.len(),
        stale.join("\n")
    );
}

/// Runs one case as a project; `Ok(())` when its outcome is Spark's.
async fn run_case(case: &Value) -> Result<(), String> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let mut spec = String::from(
        "name: sdp_case\nstorage: out\nlibraries:\n  - glob:\n      include: transformations/**\n",
    );
    if let Some(conf) = case["configuration"].as_object() {
        spec.push_str("configuration:\n");
        for (k, v) in conf {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            spec.push_str(&format!("  {k}: {}\n", serde_json::to_string(&v).unwrap()));
        }
    }
    let setup: Vec<&str> = case["setup"]
        .as_array()
        .map(|s| s.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let outside = setup_project(root, &setup).await?;
    if !outside.is_empty() {
        spec.push_str("tables:\n");
    }
    for (name, path) in outside {
        spec.push_str(&format!("  {name}: {path}\n"));
    }
    std::fs::write(root.join("lakeflow.yml"), spec).unwrap();
    for (path, text) in case["files"].as_object().unwrap() {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text.as_str().unwrap()).unwrap();
    }
    let outcome = run(root).await;
    let expect = &case["expect"];
    if let Some(class) = expect["error"].as_str() {
        return match outcome {
            Err(_) => Ok(()),
            Ok(()) => Err(format!("Spark fails ({class}), lakeflow runs")),
        };
    }
    outcome.map_err(|e| format!("Spark runs, lakeflow fails: {e}"))?;
    let tables = expect["tables"].as_object().cloned().unwrap_or_default();
    for (table, want) in tables {
        // Spark stores names lower-case; lakeflow keeps the case they were written in. A
        // table of schema `s` is `out/s/<name>`.
        let mut dir = root.join("out");
        for part in table.split('.') {
            dir = std::fs::read_dir(&dir)
                .map_err(|e| e.to_string())?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .find(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().eq_ignore_ascii_case(part))
                })
                .unwrap_or_else(|| dir.join(part));
        }
        if !dir.join("_delta_log").exists() {
            return Err(format!("no table `{table}` was written"));
        }
        let got = delta_rows(&dir).await;
        compare(&table, want, &got)?;
    }
    Ok(())
}

/// The tables a case's `setup` makes in Spark's catalog, made in lakeflow's terms by a
/// pipeline run before the case's: `CREATE TABLE t (cols) [PARTITIONED BY ..]` (with the rows
/// of a later `INSERT INTO t (cols) VALUES ..`) is a materialized view `t` in the case's
/// storage, which the case's pipeline then finds stored; `CREATE TABLE s.t AS SELECT ..` is a
/// table outside the pipeline, returned as the name and path for the spec's `tables:`.
async fn setup_project(root: &Path, setup: &[&str]) -> Result<Vec<(String, String)>, String> {
    let (mut stored, mut outside) = (Vec::new(), Vec::new());
    for statement in setup {
        let upper = statement.to_ascii_uppercase();
        if upper.starts_with("CREATE DATABASE") || upper.starts_with("CREATE SCHEMA") {
            continue;
        }
        if let Some(rest) = upper.strip_prefix("INSERT INTO ") {
            let name = rest.split_whitespace().next().unwrap_or_default();
            let values = &statement[upper.find("VALUES").ok_or("INSERT without VALUES")?..];
            let columns =
                &statement[statement.find('(').unwrap_or(0)..statement.find(')').unwrap_or(0) + 1];
            let (_, query): &mut (String, String) = stored
                .iter_mut()
                .find(|(n, _): &&mut (String, String)| n.eq_ignore_ascii_case(name))
                .ok_or("INSERT INTO a table setup did not create")?;
            let partition = query
                .find(" AS SELECT")
                .map_or("", |i| &query[..i])
                .to_string();
            *query = format!("{partition} AS SELECT * FROM {values} AS v{columns}");
            continue;
        }
        let rest = upper
            .strip_prefix("CREATE TABLE ")
            .ok_or(format!("setup `{statement}`"))?;
        let name = &statement[13..13 + rest.find([' ', '(']).unwrap_or(rest.len())];
        if let Some(at) = upper.find(" AS SELECT") {
            outside.push((name.to_string(), statement[at + 4..].to_string()));
            continue;
        }
        let open = statement.find('(').ok_or("CREATE TABLE without columns")?;
        let close = statement.find(')').ok_or("CREATE TABLE without columns")?;
        let columns: Vec<String> = statement[open + 1..close]
            .split(',')
            .map(|c| {
                let (column, ty) = c.trim().split_once(' ').unwrap_or((c.trim(), "STRING"));
                format!("CAST(NULL AS {ty}) AS {column}")
            })
            .collect();
        let partition = statement[close + 1..].trim();
        let query = format!("{partition} AS SELECT {} WHERE false", columns.join(", "));
        stored.push((name.to_string(), query));
    }
    let mut sql = String::new();
    for (name, query) in &stored {
        sql.push_str(&format!("CREATE MATERIALIZED VIEW {name} {query};\n"));
    }
    let mut mapped = Vec::new();
    for (i, (name, query)) in outside.iter().enumerate() {
        sql.push_str(&format!(
            "CREATE MATERIALIZED VIEW outside_{i} AS {query};\n"
        ));
        mapped.push((name.clone(), format!("out/outside_{i}")));
    }
    if sql.is_empty() {
        return Ok(mapped);
    }
    let spec = "name: sdp_case\nstorage: out\nlibraries:\n  - glob:\n      include: setup/**\n";
    std::fs::create_dir_all(root.join("setup")).unwrap();
    std::fs::write(root.join("lakeflow.yml"), spec).unwrap();
    std::fs::write(root.join("setup/setup.sql"), sql).unwrap();
    run(root)
        .await
        .map_err(|e| format!("the setup failed: {e}"))?;
    std::fs::remove_dir_all(root.join("setup")).unwrap();
    Ok(mapped)
}

/// Loads and runs the project at `root`; an error (at load, planning or in a flow) as text.
async fn run(root: &Path) -> Result<(), String> {
    let project = Project::find(root).map_err(|e| e.to_string())?;
    let report = project
        .pipeline()
        .progress(ProgressMode::Off)
        .run()
        .await
        .map_err(|e| e.to_string())?;
    if report.succeeded() {
        return Ok(());
    }
    Err(report
        .datasets
        .iter()
        .filter_map(|d| d.reason.clone())
        .collect::<Vec<_>>()
        .join("; "))
}

/// The table's columns (names, in order, any case) and rows (as text, in any order) against
/// Spark's, whose values are `CAST(v AS STRING)`.
fn compare(table: &str, want: Value, got: &[RecordBatch]) -> Result<(), String> {
    let columns: Vec<String> = want["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_lowercase())
        .collect();
    let schema = match got.first() {
        Some(b) => b.schema(),
        None => return empty_ok(table, &want),
    };
    let names: Vec<String> = schema
        .fields()
        .iter()
        .map(|f| f.name().to_lowercase())
        .collect();
    if names != columns {
        return Err(format!(
            "`{table}` has columns {names:?}, Spark {columns:?}"
        ));
    }
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let options = FormatOptions::default().with_null("\u{0}");
    for batch in got {
        for i in 0..batch.num_rows() {
            rows.push(
                batch
                    .columns()
                    .iter()
                    .map(|c| c.is_valid(i).then(|| spark_text(c.as_ref(), i, &options)))
                    .collect(),
            );
        }
    }
    let want_rows: Vec<Vec<Option<String>>> = want["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            r.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .collect();
    let canon = |rows: &[Vec<Option<String>>]| -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut seen: BTreeMap<String, usize> = BTreeMap::new();
        for r in rows {
            let key = r
                .iter()
                .map(|v| v.as_deref().map_or("NULL".to_string(), canonical_value))
                .collect::<Vec<_>>()
                .join("|");
            let n = seen.entry(key.clone()).or_default();
            *n += 1;
            out.insert(format!("{key}#{n}"));
        }
        out
    };
    let (mine, theirs) = (canon(&rows), canon(&want_rows));
    if mine != theirs {
        let missing: Vec<_> = theirs.difference(&mine).take(3).collect();
        let extra: Vec<_> = mine.difference(&theirs).take(3).collect();
        return Err(format!(
            "`{table}` rows differ: Spark has {missing:?} that lakeflow lacks, lakeflow {extra:?}"
        ));
    }
    Ok(())
}

fn empty_ok(table: &str, want: &Value) -> Result<(), String> {
    match want["rows"].as_array() {
        Some(rows) if rows.is_empty() => Ok(()),
        _ => Err(format!("`{table}` is empty; Spark has rows")),
    }
}

/// A value as text, with numbers compared as numbers (`1.0` and `1` are one value) and
/// timestamps as Spark prints them (`2024-01-02 03:04:05`, not `2024-01-02T03:04:05`).
/// Value `i` of `array` as Spark's `CAST(v AS STRING)` writes it: a struct as `{a, b}`, a map
/// as `{k -> v}`, an array as `[a, b]`, NULL inside them as `null`.
fn spark_text(array: &dyn Array, i: usize, options: &FormatOptions) -> String {
    if array.is_null(i) {
        return "null".to_string();
    }
    match array.data_type() {
        DataType::Struct(_) => {
            let s = array.as_struct();
            let parts: Vec<String> = s
                .columns()
                .iter()
                .map(|c| spark_text(c.as_ref(), i, options))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Map(..) => {
            let m = array.as_map();
            let (keys, values) = (m.keys(), m.values());
            let range = m.value_offsets()[i] as usize..m.value_offsets()[i + 1] as usize;
            let parts: Vec<String> = range
                .map(|j| {
                    format!(
                        "{} -> {}",
                        spark_text(keys.as_ref(), j, options),
                        spark_text(values.as_ref(), j, options)
                    )
                })
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::List(_) => {
            let items = array.as_list::<i32>().value(i);
            let parts: Vec<String> = (0..items.len())
                .map(|j| spark_text(items.as_ref(), j, options))
                .collect();
            format!("[{}]", parts.join(", "))
        }
        _ => ArrayFormatter::try_new(array, options)
            .unwrap()
            .value(i)
            .to_string(),
    }
}

fn canonical_value(v: &str) -> String {
    match v.parse::<f64>() {
        Ok(x) if v.chars().any(|c| c.is_ascii_digit()) => format!("{x}"),
        _ => {
            let b = v.as_bytes();
            if b.len() >= 19 && b[4] == b'-' && b[10] == b'T' && b[13] == b':' {
                return format!("{} {}", &v[..10], v[11..].trim_end_matches('Z')).to_lowercase();
            }
            v.to_lowercase()
        }
    }
}
