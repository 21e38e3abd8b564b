//! Table maintenance as Databricks runs it for pipelines: small files compacted, files no
//! version needs any more deleted, on a schedule lakeflow keeps.
//!
//! After the flows of a run (never while they run):
//!
//! - **Auto compaction.** A table the run wrote that holds at least
//!   [`MaintenanceOptions::compact_min_files`] files smaller than the target size is compacted
//!   (Delta's `OPTIMIZE`, bin-packing to [`MaintenanceOptions::target_file_size`]). Its
//!   commit changes no rows (`dataChange = false`), so streams reading the table skip it.
//! - **Scheduled maintenance.** At most once per [`MaintenanceOptions::interval`] (24 h) per
//!   table, every small file is compacted and the files older than the table's retention
//!   (`delta.deletedFileRetentionDuration`, 7 days unless set) that no version inside it
//!   references are deleted (`VACUUM`). A table's first run only starts its clock.
//!
//! A table with `pipelines.autoOptimize.managed = false` is left alone (as in Databricks);
//! `lakeflow maintain` still maintains it on demand. The event log and the state tables of
//! AUTO CDC flows are maintained like the tables the run wrote. Each table maintained is a `maintenance_progress` event and a
//! line of the run report; a maintenance that fails is a warning, never a failed run: the
//! tables hold the rows they held.
//!
//! The schedule is one document, `_lakeflow/maintenance.json`: per table, when it was last
//! maintained in full.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;

use crate::error::{Error, Result};
use crate::event_log::{EVENT_LOG_TABLE, EventLog, Level};
use crate::storage::{MaintainRequest, Maintained, Storage};

/// The table property that turns automatic maintenance off for one table.
pub const MANAGED_PROPERTY: &str = "pipelines.autoOptimize.managed";

const SCHEDULE: &str = "_lakeflow/maintenance.json";

/// When and how lakeflow maintains a pipeline's tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaintenanceOptions {
    /// Maintain tables after the flows of each run (on by default).
    pub after_runs: bool,
    /// A table the run wrote is compacted once it has this many small files (Databricks'
    /// auto compaction uses 50).
    pub compact_min_files: usize,
    /// The size compaction aims at, in bytes (128 MiB, as Databricks' auto compaction).
    pub target_file_size: u64,
    /// Full maintenance (compaction of every small file and `VACUUM`) runs at most this
    /// often per table.
    pub interval: Duration,
}

impl Default for MaintenanceOptions {
    fn default() -> Self {
        MaintenanceOptions {
            after_runs: true,
            compact_min_files: 50,
            target_file_size: 128 * 1024 * 1024,
            interval: Duration::from_secs(24 * 60 * 60),
        }
    }
}

/// What maintenance did to one table, for the run report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMaintenance {
    /// The table: a dataset name, or the event log's.
    pub table: String,
    /// `OPTIMIZE`, or `OPTIMIZE, VACUUM` for full maintenance.
    pub operation: &'static str,
    /// The file counts.
    pub outcome: Maintained,
}

/// A table maintenance may touch: its name, whether the run wrote it, and whether it is
/// managed (not `pipelines.autoOptimize.managed = false`).
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    pub name: String,
    pub written: bool,
    pub managed: bool,
}

impl Candidate {
    /// A dataset's table, managed unless its properties say otherwise.
    pub(crate) fn dataset(
        name: &str,
        written: bool,
        properties: &BTreeMap<String, String>,
    ) -> Candidate {
        let managed = properties
            .get(MANAGED_PROPERTY)
            .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
        Candidate {
            name: name.to_string(),
            written,
            managed,
        }
    }

    /// The event log, written by every run.
    pub(crate) fn event_log() -> Candidate {
        Candidate::internal(EVENT_LOG_TABLE.to_string())
    }

    /// A table of lakeflow's own (the event log, an AUTO CDC flow's state): maintained, and
    /// counted as written (finding out costs what checking its files costs).
    pub(crate) fn internal(name: String) -> Candidate {
        Candidate {
            name,
            written: true,
            managed: true,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn read_schedule(storage: &dyn Storage) -> Result<BTreeMap<String, i64>> {
    match storage.read_state(SCHEDULE).await? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Storage {
            location: format!("{}/{SCHEDULE}", storage.location()),
            message: format!("the maintenance schedule is not valid JSON ({e}); delete it to start the schedule again"),
            source: None,
        }),
        None => Ok(BTreeMap::new()),
    }
}

async fn write_schedule(storage: &dyn Storage, schedule: &BTreeMap<String, i64>) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(schedule)
        .map_err(|e| Error::Internal(format!("the maintenance schedule as JSON: {e}")))?;
    storage.write_state(SCHEDULE, bytes).await
}

/// The maintenance after a run's flows: auto compaction of the tables it wrote, and full
/// maintenance of those whose interval has passed. Failures are warnings in the log.
pub(crate) async fn after_run(
    storage: &dyn Storage,
    log: &EventLog,
    options: &MaintenanceOptions,
    candidates: Vec<Candidate>,
) -> Vec<TableMaintenance> {
    if !options.after_runs {
        return Vec::new();
    }
    let mut schedule = match read_schedule(storage).await {
        Ok(schedule) => schedule,
        Err(e) => {
            warn(log, None, format!("Maintenance skipped: {e}"));
            return Vec::new();
        }
    };
    let now = now_ms();
    let interval = i64::try_from(options.interval.as_millis()).unwrap_or(i64::MAX);
    let mut changed = false;
    let mut done = Vec::new();
    for candidate in candidates.into_iter().filter(|c| c.managed) {
        let full = match schedule.get(&candidate.name) {
            // A table's first run starts its clock: a table just written has nothing to
            // vacuum, and compacting it would only slow the first run.
            None => {
                schedule.insert(candidate.name.clone(), now);
                changed = true;
                false
            }
            Some(last) => now.saturating_sub(*last) >= interval,
        };
        if !full && !candidate.written {
            continue;
        }
        // A failure is a warning in the log (`maintain_one`); the run stands.
        let request = maintain_request(&candidate.name, full, options);
        if let Ok(Some(table)) = maintain_one(storage, log, &request).await {
            done.push(table);
        }
        if full {
            schedule.insert(candidate.name, now);
            changed = true;
        }
    }
    if changed && let Err(e) = write_schedule(storage, &schedule).await {
        warn(
            log,
            None,
            format!("The maintenance schedule was not saved: {e}"),
        );
    }
    done
}

/// Full maintenance of `tables` now, whatever the schedule and `managed` say (`lakeflow
/// maintain`). The first error stops it; the tables maintained before it stay maintained.
pub(crate) async fn maintain(
    storage: &dyn Storage,
    log: &EventLog,
    options: &MaintenanceOptions,
    tables: &[String],
) -> Result<Vec<TableMaintenance>> {
    let mut schedule = read_schedule(storage).await?;
    let mut done = Vec::new();
    for name in tables {
        let request = maintain_request(name, true, options);
        done.extend(maintain_one(storage, log, &request).await?);
        schedule.insert(name.clone(), now_ms());
    }
    write_schedule(storage, &schedule).await?;
    Ok(done)
}

/// What to ask of the storage for table `name`: full maintenance (every small file compacted,
/// then VACUUM), or auto compaction at the configured number of small files.
fn maintain_request(name: &str, full: bool, options: &MaintenanceOptions) -> MaintainRequest {
    MaintainRequest {
        name: name.to_string(),
        compact_min_files: if full { 2 } else { options.compact_min_files },
        target_file_size: options.target_file_size,
        vacuum: full,
    }
}

/// Maintains one table: what it did is a `maintenance_progress` event (nothing when auto
/// compaction found nothing to do), a failure a WARN one, and returned.
async fn maintain_one(
    storage: &dyn Storage,
    log: &EventLog,
    request: &MaintainRequest,
) -> Result<Option<TableMaintenance>> {
    match storage.maintain(request).await {
        Ok(Some(outcome)) => {
            if !request.vacuum && outcome.files_compacted == 0 {
                return Ok(None);
            }
            let table = TableMaintenance {
                table: request.name.clone(),
                operation: if request.vacuum {
                    "OPTIMIZE, VACUUM"
                } else {
                    "OPTIMIZE"
                },
                outcome,
            };
            record(log, &table);
            Ok(Some(table))
        }
        Ok(None) => Ok(None),
        Err(e) => {
            warn(
                log,
                Some(&request.name),
                format!(
                    "Maintenance of '{}' failed; its rows are as they were: {e}",
                    request.name
                ),
            );
            Err(e)
        }
    }
}

/// A `maintenance_progress` event, with Databricks' `maintenance_state` and lakeflow's counts.
fn record(log: &EventLog, table: &TableMaintenance) {
    let m = &table.outcome;
    log.emit(
        Level::Info,
        "maintenance_progress",
        Some(&table.table),
        None,
        format!(
            "Maintenance of '{}' is COMPLETED: {} ({} files compacted into {}, {} vacuumed; {} -> {} files).",
            table.table,
            table.operation,
            m.files_compacted,
            m.files_written,
            m.files_vacuumed,
            m.files_before,
            m.files_after
        ),
        json!({ "maintenance_progress": {
            "maintenance_state": "COMPLETED",
            "operation": table.operation,
            "num_files_before": m.files_before,
            "num_files_after": m.files_after,
            "num_files_compacted": m.files_compacted,
            "num_files_written": m.files_written,
            "num_files_vacuumed": m.files_vacuumed,
            "version": m.version,
        }}),
        None,
        Vec::new(),
    );
}

fn warn(log: &EventLog, table: Option<&str>, message: String) {
    log.emit(
        Level::Warn,
        "maintenance_progress",
        table,
        None,
        message.clone(),
        json!({ "maintenance_progress": { "maintenance_state": "FAILED" } }),
        Some(message),
        Vec::new(),
    );
}
