//! The run report: what each dataset's flow did, printable as a table a person reads at a
//! glance. Built by the scheduler; this module only holds and formats it.

use std::fmt;
use std::time::Duration;

use crate::dataset::DatasetKind;
use crate::expectations::ExpectationResult;

/// The outcome of one dataset's flow in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowStatus {
    /// The flow committed its output.
    Completed,
    /// The flow failed; its table is as it was before the run.
    Failed,
    /// An upstream flow failed, so this one did not run.
    Skipped,
    /// The run did not select this dataset.
    Excluded,
    /// Not recomputed: its inputs and definition are as at its last refresh.
    UpToDate,
}

impl fmt::Display for FlowStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            FlowStatus::Completed => "COMPLETED",
            FlowStatus::Failed => "FAILED",
            FlowStatus::Skipped => "SKIPPED",
            FlowStatus::Excluded => "EXCLUDED",
            FlowStatus::UpToDate => "UP_TO_DATE",
        })
    }
}

/// One row of the report.
#[derive(Debug, Clone)]
pub struct DatasetReport {
    /// The dataset name.
    pub name: String,
    /// Its effective kind.
    pub kind: DatasetKind,
    /// What happened.
    pub status: FlowStatus,
    /// Rows written by the flow, counted in the pass that wrote them.
    pub rows_written: Option<u64>,
    /// The table version the flow committed.
    pub version: Option<u64>,
    /// Wall time of the flow.
    pub duration: Duration,
    /// Where the table is stored.
    pub location: String,
    /// How each expectation did, in definition order.
    pub expectations: Vec<ExpectationResult>,
    /// Rows removed by drop rules.
    pub dropped_rows: Option<u64>,
    /// Why the flow failed or was skipped.
    pub reason: Option<String>,
}

/// The report of one pipeline run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// One row per stored dataset, in dependency order.
    pub datasets: Vec<DatasetReport>,
    /// Wall time of the whole run.
    pub duration: Duration,
    /// The storage location of the pipeline.
    pub storage: String,
    /// The tables maintained after the flows (compaction, vacuum), in the order maintained.
    pub maintenance: Vec<crate::maintenance::TableMaintenance>,
}

impl RunReport {
    /// Whether every selected flow completed.
    pub fn succeeded(&self) -> bool {
        self.datasets.iter().all(|d| {
            matches!(
                d.status,
                FlowStatus::Completed | FlowStatus::Excluded | FlowStatus::UpToDate
            )
        })
    }

    /// The row of dataset `name`.
    pub fn dataset(&self, name: &str) -> Option<&DatasetReport> {
        self.datasets.iter().find(|d| d.name == name)
    }

    fn count(&self, status: FlowStatus) -> usize {
        self.datasets.iter().filter(|d| d.status == status).count()
    }
}

impl fmt::Display for RunReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.succeeded() {
            "COMPLETED"
        } else {
            "FAILED"
        };
        writeln!(
            f,
            "run {status} in {:.2}s: {} completed, {} failed, {} skipped, {} up to date ({})",
            self.duration.as_secs_f64(),
            self.count(FlowStatus::Completed),
            self.count(FlowStatus::Failed),
            self.count(FlowStatus::Skipped),
            self.count(FlowStatus::UpToDate),
            self.storage
        )?;
        let width = self
            .datasets
            .iter()
            .map(|d| d.name.len())
            .chain([7])
            .max()
            .unwrap_or(7);
        writeln!(
            f,
            "  {:<width$}  {:<17}  {:<10}  {:>12}  {:>8}",
            "dataset", "kind", "status", "rows", "time"
        )?;
        for d in &self.datasets {
            let rows = d.rows_written.map_or_else(|| "-".to_string(), group_digits);
            writeln!(
                f,
                "  {:<width$}  {:<17}  {:<10}  {:>12}  {:>7.2}s",
                d.name,
                d.kind.to_string(),
                d.status,
                rows,
                d.duration.as_secs_f64()
            )?;
        }
        let checked: Vec<&DatasetReport> = self
            .datasets
            .iter()
            .filter(|d| !d.expectations.is_empty())
            .collect();
        if !checked.is_empty() {
            let name_width = checked
                .iter()
                .flat_map(|d| d.expectations.iter().map(|e| e.name.len()))
                .chain([11])
                .max()
                .unwrap_or(11);
            writeln!(
                f,
                "  {:<width$}  {:<name_width$}  {:<6}  {:>12}  {:>12}",
                "dataset", "expectation", "action", "passed", "failed"
            )?;
            for d in checked {
                for e in &d.expectations {
                    writeln!(
                        f,
                        "  {:<width$}  {:<name_width$}  {:<6}  {:>12}  {:>12}",
                        d.name,
                        e.name,
                        e.action,
                        group_digits(e.passed),
                        group_digits(e.failed)
                    )?;
                }
            }
        }
        for m in &self.maintenance {
            let o = &m.outcome;
            writeln!(
                f,
                "  maintenance {}: {}, {} -> {} files ({} compacted, {} vacuumed)",
                m.table,
                m.operation,
                o.files_before,
                o.files_after,
                o.files_compacted,
                o.files_vacuumed
            )?;
        }
        for d in &self.datasets {
            if let Some(reason) = &d.reason {
                writeln!(f, "  {} {}: {reason}", d.name, d.status)?;
            }
        }
        Ok(())
    }
}

fn group_digits(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_are_grouped() {
        assert_eq!(group_digits(0), "0");
        assert_eq!(group_digits(999), "999");
        assert_eq!(group_digits(1000), "1,000");
        assert_eq!(group_digits(5_000_000), "5,000,000");
    }

    #[test]
    fn prints_a_table() {
        let report = RunReport {
            datasets: vec![DatasetReport {
                name: "gold".into(),
                kind: DatasetKind::MaterializedView,
                status: FlowStatus::Failed,
                rows_written: None,
                version: None,
                duration: Duration::from_millis(1500),
                location: "x".into(),
                expectations: Vec::new(),
                dropped_rows: None,
                reason: Some("boom".into()),
            }],
            duration: Duration::from_secs(2),
            storage: "mem".into(),
            maintenance: Vec::new(),
        };
        let text = report.to_string();
        assert!(
            text.starts_with("run FAILED in 2.00s: 0 completed, 1 failed"),
            "{text}"
        );
        assert!(
            text.contains("gold     materialized view  FAILED"),
            "{text}"
        );
        assert!(text.contains("gold FAILED: boom"), "{text}");
    }
}
