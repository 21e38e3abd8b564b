//! Expectations: data-quality rules on a dataset, checked in the same pass that writes it.
//!
//! A SQL rule becomes a boolean column appended to the flow's plan; [`Checker`] reads those
//! columns from each batch as it streams to storage, counts passes and failures, drops rows
//! (`Drop`), stops the flow (`Fail`), and strips the columns again. A uniqueness rule keeps
//! the keys it has seen in this write and checks each new row against them, or, for a write
//! made in other processes ([`Checker::new_in_plan`]), is a column of the plan too. The query
//! is never run a second time to count.
//!
//! A rule passes only when it evaluates to TRUE: a NULL result is a violation, so
//! `amount > 0` fails for a NULL amount. Write `amount IS NULL OR amount > 0` to accept NULLs.
//!
//! This module must not depend on storage; it sees batches and plans only.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, BooleanBufferBuilder, ListBuilder, StringBuilder,
};
use datafusion::arrow::compute::{and, filter_record_batch, not, prep_null_mask_filter};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::dataframe::DataFrame;
use datafusion::error::DataFusionError;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{ExprSchemable, LogicalPlan, LogicalPlanBuilder};
use datafusion::prelude::{Expr, col};

use crate::dataset::SourceLocation;
use crate::error::{Error, Result};

/// What happens to a row that violates a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ExpectAction {
    /// Keep the row; count the violation (`#[expect]`).
    Warn,
    /// Drop the row; count it (`#[expect_or_drop]`).
    Drop,
    /// Stop the flow; nothing is committed (`#[expect_or_fail]`).
    Fail,
}

impl fmt::Display for ExpectAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(match self {
            ExpectAction::Warn => "warn",
            ExpectAction::Drop => "drop",
            ExpectAction::Fail => "fail",
        })
    }
}

/// A rule as the macros record it.
#[derive(Debug, Clone, Copy)]
pub enum RuleRecord {
    /// A SQL boolean expression over the dataset's columns.
    Sql(&'static str),
    /// These columns together identify a row: no two rows share their values.
    Unique(&'static [&'static str]),
}

/// An expectation as the macros record it.
#[derive(Debug, Clone, Copy)]
pub struct ExpectationRecord {
    /// The expectation name, unique on its dataset.
    pub name: &'static str,
    /// The rule.
    pub rule: RuleRecord,
    /// What a violation does.
    pub action: ExpectAction,
}

/// A rule in owned form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rule {
    /// A SQL boolean expression over the dataset's columns.
    Sql(String),
    /// These columns together identify a row.
    Unique(Vec<String>),
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Sql(expr) => f.write_str(expr),
            Rule::Unique(cols) => write!(f, "UNIQUE ({})", cols.join(", ")),
        }
    }
}

/// An expectation on a dataset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectation {
    /// The name, unique on its dataset.
    pub name: String,
    /// The rule.
    pub rule: Rule,
    /// What a violation does.
    pub action: ExpectAction,
}

impl Expectation {
    /// A SQL rule: `expr` must be TRUE for a row to pass.
    pub fn sql(name: impl Into<String>, expr: impl Into<String>, action: ExpectAction) -> Self {
        Expectation {
            name: name.into(),
            rule: Rule::Sql(expr.into()),
            action,
        }
    }

    /// A uniqueness rule over `columns`.
    pub fn unique<I, S>(name: impl Into<String>, columns: I, action: ExpectAction) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Expectation {
            name: name.into(),
            rule: Rule::Unique(columns.into_iter().map(Into::into).collect()),
            action,
        }
    }

    /// The owned form of a macro record.
    pub fn from_record(record: &ExpectationRecord) -> Self {
        let rule = match record.rule {
            RuleRecord::Sql(expr) => Rule::Sql(expr.to_string()),
            RuleRecord::Unique(cols) => Rule::Unique(cols.iter().map(|c| c.to_string()).collect()),
        };
        Expectation {
            name: record.name.to_string(),
            rule,
            action: record.action,
        }
    }
}

/// How one expectation did in one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpectationResult {
    /// The expectation name.
    pub name: String,
    /// Its action.
    pub action: ExpectAction,
    /// Rows that passed.
    pub passed: u64,
    /// Rows that violated it.
    pub failed: u64,
}

/// Checks at planning time that every rule fits the query's output: SQL rules parse, name
/// existing columns and are boolean; uniqueness rules name existing columns.
pub(crate) fn validate(
    dataset: &str,
    location: SourceLocation,
    expectations: &[Expectation],
    df: &DataFrame,
) -> Result<()> {
    let fail = |e: &Expectation, message: String| {
        Err(Error::Expectation {
            dataset: dataset.to_string(),
            expectation: e.name.clone(),
            location,
            message,
        })
    };
    // Names are checked unique with the rest of the definition (`DatasetDef::validate`).
    for e in expectations {
        match &e.rule {
            Rule::Sql(sql) => {
                let expr = match crate::query::sql_expr(df, sql) {
                    Ok(expr) => expr,
                    Err(err) => return fail(e, format!("`{sql}`: {err}")),
                };
                match expr.get_type(df.schema()) {
                    Ok(DataType::Boolean | DataType::Null) => {}
                    Ok(other) => {
                        return fail(e, format!("`{sql}` is {other}, not a boolean condition"));
                    }
                    Err(err) => return fail(e, format!("`{sql}`: {err}")),
                }
            }
            Rule::Unique(cols) => {
                if cols.is_empty() {
                    return fail(e, "a uniqueness rule needs at least one column".into());
                }
                for c in cols {
                    if df.schema().field_with_unqualified_name(c).is_err() {
                        return fail(
                            e,
                            format!(
                                "column `{c}` does not exist; the columns are {}",
                                crate::resolve::column_list(df.schema().inner())
                            ),
                        );
                    }
                }
            }
        }
    }
    Ok(())
}

/// The checks of one flow's write, shared by all of its partition streams (and, for an engine
/// that writes where it computes, rebuilt in each of its tasks from [`Checker::spec`], their
/// counts added back with [`Checker::add`]).
#[derive(Debug)]
pub struct Checker {
    dataset: String,
    /// The query's own columns; the SQL rule columns follow them in each batch.
    data_schema: SchemaRef,
    checks: Vec<Check>,
    /// Whether rows removed by drop rules are handed back for a quarantine table.
    quarantine: bool,
    dropped: AtomicU64,
    /// The first `Fail` violation, kept so the flow reports it rather than how the writer
    /// wrapped it.
    failure: Mutex<Option<Error>>,
}

#[derive(Debug)]
struct Check {
    name: String,
    rule: Rule,
    action: ExpectAction,
    kind: CheckKind,
    passed: AtomicU64,
    failed: AtomicU64,
}

enum CheckKind {
    /// The index of the rule's boolean column in each batch.
    Column(usize),
    /// Key column indices, and every key seen so far in this write.
    Unique {
        columns: Vec<usize>,
        converter: RowConverter,
        seen: Mutex<HashSet<Box<[u8]>>>,
    },
}

impl fmt::Debug for CheckKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckKind::Column(i) => write!(f, "Column({i})"),
            CheckKind::Unique { columns, .. } => write!(f, "Unique({columns:?})"),
        }
    }
}

/// The name of the quarantine table's extra column.
pub const FAILED_EXPECTATIONS_COLUMN: &str = "failed_expectations";

/// What [`Checker::check`] made of one batch.
pub struct Checked {
    /// The rows to write, with the query's columns only.
    pub kept: RecordBatch,
    /// The rows drop rules removed, with a list of the rules each failed (when quarantining).
    pub quarantined: Option<RecordBatch>,
}

/// Where a uniqueness rule keeps the keys it has seen.
enum Uniqueness {
    /// In the checker, as the write streams through it (seeded with the stored keys by
    /// [`Checker::seed`]).
    InChecker,
    /// In the plan: the rule is a column like a SQL rule's, so each row is checked alone.
    /// `stored` reads the rows the table already holds, when the write appends to them.
    InPlan { stored: Option<LogicalPlan> },
}

impl Checker {
    /// Appends one boolean column per SQL rule to `plan` and prepares the checks.
    pub fn new(
        dataset: &str,
        expectations: &[Expectation],
        quarantine: bool,
        plan: LogicalPlan,
        state: &SessionState,
    ) -> Result<(LogicalPlan, Checker)> {
        Checker::build(
            dataset,
            expectations,
            quarantine,
            plan,
            state,
            Uniqueness::InChecker,
        )
    }

    /// [`Checker::new`] with every rule a column of the plan, so that each row can be checked
    /// alone, in any process ([`Checker::checks_rows_alone`]): a uniqueness rule becomes a row
    /// number per key (the key's first row passes) and, when the write appends to rows
    /// `stored` reads (the table's), whether the key is among them. Which of a key's rows
    /// passes is the plan's choice, as it is the stream's order in [`Checker::new`]; the
    /// counts are the same.
    pub fn new_in_plan(
        dataset: &str,
        expectations: &[Expectation],
        quarantine: bool,
        plan: LogicalPlan,
        state: &SessionState,
        stored: Option<LogicalPlan>,
    ) -> Result<(LogicalPlan, Checker)> {
        Checker::build(
            dataset,
            expectations,
            quarantine,
            plan,
            state,
            Uniqueness::InPlan { stored },
        )
    }

    fn build(
        dataset: &str,
        expectations: &[Expectation],
        quarantine: bool,
        plan: LogicalPlan,
        state: &SessionState,
        uniqueness: Uniqueness,
    ) -> Result<(LogicalPlan, Checker)> {
        let data_schema = Arc::new(plan.schema().as_arrow().clone());
        let df = DataFrame::new(state.clone(), plan.clone());
        let mut exprs: Vec<Expr> = plan.schema().columns().into_iter().map(col).collect();
        // The plan the rule columns are computed over: `plan`, with the columns of
        // uniqueness rules kept in the plan.
        let mut base = plan;
        let mut checks = Vec::with_capacity(expectations.len());
        for (i, e) in expectations.iter().enumerate() {
            let kind = match &e.rule {
                Rule::Sql(sql) => {
                    let expr = crate::query::sql_expr(&df, sql)?;
                    let index = exprs.len();
                    // A NULL literal rule has type Null; the cast makes every rule column boolean.
                    let expr = datafusion::logical_expr::cast(expr, DataType::Boolean);
                    exprs.push(expr.alias(format!("__lakeflow_expectation_{i}")));
                    CheckKind::Column(index)
                }
                Rule::Unique(cols) => {
                    let mut columns = Vec::with_capacity(cols.len());
                    let mut fields = Vec::with_capacity(cols.len());
                    for c in cols {
                        let index = data_schema.index_of(c).map_err(|_| {
                            Error::Internal(format!("unique column `{c}` vanished after planning"))
                        })?;
                        columns.push(index);
                        fields.push(SortField::new(data_schema.field(index).data_type().clone()));
                    }
                    match &uniqueness {
                        Uniqueness::InPlan { stored } => {
                            let (with_columns, expr) =
                                unique_in_plan(base, i, &columns, stored.as_ref())?;
                            base = with_columns;
                            let index = exprs.len();
                            exprs.push(expr.alias(format!("__lakeflow_expectation_{i}")));
                            CheckKind::Column(index)
                        }
                        Uniqueness::InChecker => {
                            let converter = RowConverter::new(fields)
                                .map_err(|e| Error::DataFusion(e.into()))?;
                            CheckKind::Unique {
                                columns,
                                converter,
                                seen: Mutex::new(HashSet::new()),
                            }
                        }
                    }
                }
            };
            checks.push(Check {
                name: e.name.clone(),
                rule: e.rule.clone(),
                action: e.action,
                kind,
                passed: AtomicU64::new(0),
                failed: AtomicU64::new(0),
            });
        }
        let plan = if exprs.len() > data_schema.fields().len() {
            LogicalPlanBuilder::from(base).project(exprs)?.build()?
        } else {
            base
        };
        let quarantine = quarantine && expectations.iter().any(|e| e.action == ExpectAction::Drop);
        Ok((
            plan,
            Checker {
                dataset: dataset.to_string(),
                data_schema,
                checks,
                quarantine,
                dropped: AtomicU64::new(0),
                failure: Mutex::new(None),
            },
        ))
    }

    /// The quarantine table's schema: the query's columns and the list of failed rules.
    pub fn quarantine_schema(data: &Schema) -> Schema {
        let mut fields: Vec<Field> = data.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields.push(Field::new(
            FAILED_EXPECTATIONS_COLUMN,
            DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
            true,
        ));
        Schema::new(fields)
    }

    /// The query's own columns: what a kept batch holds.
    pub fn data_schema(&self) -> SchemaRef {
        self.data_schema.clone()
    }

    /// Whether dropped rows go to a quarantine table.
    pub fn quarantines(&self) -> bool {
        self.quarantine
    }

    /// The rows of `batch` to write, with the query's columns only: [`Checker::check`]
    /// without quarantine.
    pub fn keep(&self, batch: &RecordBatch) -> Result<RecordBatch, DataFusionError> {
        self.check(batch).map(|checked| checked.kept)
    }

    /// Checks one batch: counts, drops, or fails with one violating row.
    pub fn check(&self, batch: &RecordBatch) -> Result<Checked, DataFusionError> {
        let rows = batch.num_rows();
        let data = batch.project(&(0..self.data_schema.fields().len()).collect::<Vec<_>>())?;
        if self.checks.is_empty() {
            return Ok(Checked {
                kept: data,
                quarantined: None,
            });
        }
        let mut keep: Option<BooleanArray> = None;
        let mut failures: Vec<(usize, BooleanArray)> = Vec::new();
        for (i, check) in self.checks.iter().enumerate() {
            let ok = match &check.kind {
                CheckKind::Column(index) => {
                    // NULL is a violation: only TRUE passes.
                    let result = batch.column(*index).as_boolean();
                    if result.null_count() == 0 {
                        result.clone()
                    } else {
                        prep_null_mask_filter(result)
                    }
                }
                CheckKind::Unique {
                    columns,
                    converter,
                    seen,
                } => {
                    let keys: Vec<ArrayRef> =
                        columns.iter().map(|c| batch.column(*c).clone()).collect();
                    let converted = converter.convert_columns(&keys)?;
                    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                    let mut ok = BooleanBufferBuilder::new(rows);
                    for row in converted.iter() {
                        ok.append(seen.insert(row.as_ref().into()));
                    }
                    BooleanArray::new(ok.finish(), None)
                }
            };
            let passed = ok.true_count();
            check.passed.fetch_add(passed as u64, Ordering::Relaxed);
            check
                .failed
                .fetch_add((rows - passed) as u64, Ordering::Relaxed);
            if passed == rows {
                continue;
            }
            match check.action {
                ExpectAction::Fail => {
                    let row = ok.iter().position(|v| v != Some(true)).unwrap_or(0);
                    let failure = Error::ExpectationFailed {
                        dataset: self.dataset.clone(),
                        expectation: check.name.clone(),
                        rule: check.rule.to_string(),
                        row: format_row(&data, row),
                    };
                    let message = failure.to_string();
                    self.failure
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .get_or_insert(failure);
                    return Err(DataFusionError::Execution(message));
                }
                ExpectAction::Drop => {
                    keep = Some(match keep {
                        None => ok.clone(),
                        Some(k) => and(&k, &ok)?,
                    });
                }
                ExpectAction::Warn => {}
            }
            if self.quarantine {
                failures.push((i, ok));
            }
        }
        let Some(keep) = keep else {
            return Ok(Checked {
                kept: data,
                quarantined: None,
            });
        };
        let kept = filter_record_batch(&data, &keep)?;
        self.dropped
            .fetch_add((rows - kept.num_rows()) as u64, Ordering::Relaxed);
        let quarantined = if self.quarantine {
            Some(self.quarantine_batch(&data, &keep, &failures)?)
        } else {
            None
        };
        Ok(Checked { kept, quarantined })
    }

    fn quarantine_batch(
        &self,
        data: &RecordBatch,
        keep: &BooleanArray,
        failures: &[(usize, BooleanArray)],
    ) -> Result<RecordBatch, DataFusionError> {
        let dropped = not(keep)?;
        let mut list = ListBuilder::new(StringBuilder::new());
        for row in 0..data.num_rows() {
            if !dropped.value(row) {
                continue;
            }
            for (i, ok) in failures {
                if !ok.value(row) {
                    list.values().append_value(&self.checks[*i].name);
                }
            }
            list.append(true);
        }
        let rows = filter_record_batch(data, &dropped)?;
        let mut columns: Vec<ArrayRef> = rows.columns().to_vec();
        columns.push(Arc::new(list.finish()));
        let schema = Arc::new(Checker::quarantine_schema(&self.data_schema));
        Ok(RecordBatch::try_new(schema, columns)?)
    }

    /// The counts so far, in definition order.
    pub fn results(&self) -> Vec<ExpectationResult> {
        self.checks
            .iter()
            .map(|c| ExpectationResult {
                name: c.name.clone(),
                action: c.action,
                passed: c.passed.load(Ordering::Relaxed),
                failed: c.failed.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The key columns of every uniqueness rule the checker keeps the keys of (not those
    /// [`Checker::new_in_plan`] made columns), by rule index: what [`Checker::seed`] needs.
    pub fn unique_keys(&self) -> Vec<(usize, Vec<String>)> {
        self.checks
            .iter()
            .enumerate()
            .filter_map(|(i, c)| match (&c.rule, &c.kind) {
                (Rule::Unique(cols), CheckKind::Unique { .. }) => Some((i, cols.clone())),
                _ => None,
            })
            .collect()
    }

    /// Adds the keys of rows already in the table to uniqueness rule `index`, so that new
    /// rows are checked against them too (appends to a streaming table). `batch` holds the
    /// rule's key columns, in order.
    pub fn seed(&self, index: usize, batch: &RecordBatch) -> Result<()> {
        let Some(Check {
            kind: CheckKind::Unique {
                converter, seen, ..
            },
            ..
        }) = self.checks.get(index)
        else {
            return Err(Error::Internal(format!("no uniqueness rule at {index}")));
        };
        let rows = converter
            .convert_columns(batch.columns())
            .map_err(|e| Error::DataFusion(e.into()))?;
        let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
        for row in rows.iter() {
            seen.insert(row.as_ref().into());
        }
        Ok(())
    }

    /// The `Fail` violation that stopped the flow, if one did.
    pub fn take_failure(&self) -> Option<Error> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    /// Rows removed by drop rules so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The counts of one part of a write checked elsewhere (an engine's task), added to the
/// flow's [`Checker`] with [`Checker::add`].
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CheckCounts {
    /// Rows that passed each rule, in definition order.
    pub passed: Vec<u64>,
    /// Rows that violated each rule, in definition order.
    pub failed: Vec<u64>,
    /// Rows drop rules removed.
    pub dropped: u64,
    /// The `Fail` violation that stopped this part: the expectation's name and the row.
    pub failure: Option<(String, String)>,
}

impl Checker {
    /// Whether each row is checked on its own (every rule a column of the plan: no
    /// uniqueness rule keeps its keys here), so that parts of the write can be checked in
    /// other processes ([`Checker::spec`]), each handing its quarantined rows on.
    pub fn checks_rows_alone(&self) -> bool {
        self.checks
            .iter()
            .all(|check| matches!(check.kind, CheckKind::Column(_)))
    }

    /// What rebuilds this checker in another process ([`Checker::from_spec`]), or `None`
    /// when it keeps state that the whole write shares: uniqueness rules made by
    /// [`Checker::new`] (every key seen so far).
    pub fn spec(&self) -> Option<serde_json::Value> {
        if !self.checks_rows_alone() {
            return None;
        }
        let checks: Vec<_> = self
            .checks
            .iter()
            .filter_map(|check| match &check.kind {
                CheckKind::Column(column) => Some(serde_json::json!({
                    "name": check.name,
                    "rule": check.rule.to_string(),
                    "action": check.action.to_string(),
                    "column": column,
                })),
                CheckKind::Unique { .. } => None,
            })
            .collect();
        Some(serde_json::json!({
            "dataset": self.dataset,
            "data_columns": self.data_schema.fields().len(),
            "checks": checks,
            "quarantine": self.quarantine,
        }))
    }

    /// The checker [`Checker::spec`] describes, for batches of `input` (the query's columns,
    /// then one boolean column per rule).
    pub fn from_spec(spec: &serde_json::Value, input: &Schema) -> Result<Checker> {
        let bad = |what: &str| Error::Internal(format!("a checker's description lacks {what}"));
        let data_columns = spec["data_columns"]
            .as_u64()
            .ok_or_else(|| bad("data_columns"))? as usize;
        let data_schema = Arc::new(
            input
                .project(&(0..data_columns).collect::<Vec<_>>())
                .map_err(|e| Error::DataFusion(e.into()))?,
        );
        let checks = spec["checks"]
            .as_array()
            .ok_or_else(|| bad("checks"))?
            .iter()
            .map(|check| {
                let action = match check["action"].as_str() {
                    Some("warn") => ExpectAction::Warn,
                    Some("drop") => ExpectAction::Drop,
                    Some("fail") => ExpectAction::Fail,
                    _ => return Err(bad("an action")),
                };
                Ok(Check {
                    name: check["name"].as_str().ok_or_else(|| bad("a name"))?.into(),
                    rule: Rule::Sql(check["rule"].as_str().ok_or_else(|| bad("a rule"))?.into()),
                    action,
                    kind: CheckKind::Column(
                        check["column"].as_u64().ok_or_else(|| bad("a column"))? as usize,
                    ),
                    passed: AtomicU64::new(0),
                    failed: AtomicU64::new(0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Checker {
            dataset: spec["dataset"].as_str().unwrap_or_default().to_string(),
            data_schema,
            checks,
            quarantine: spec["quarantine"].as_bool().unwrap_or(false),
            dropped: AtomicU64::new(0),
            failure: Mutex::new(None),
        })
    }

    /// This checker's counts so far, and its failure (taken), for [`Checker::add`].
    pub fn counts(&self) -> CheckCounts {
        let failure = self.take_failure().map(|e| match e {
            Error::ExpectationFailed {
                expectation, row, ..
            } => (expectation, row),
            other => (String::new(), other.to_string()),
        });
        CheckCounts {
            passed: self
                .checks
                .iter()
                .map(|c| c.passed.load(Ordering::Relaxed))
                .collect(),
            failed: self
                .checks
                .iter()
                .map(|c| c.failed.load(Ordering::Relaxed))
                .collect(),
            dropped: self.dropped(),
            failure,
        }
    }

    /// Adds the counts of a part of the write checked elsewhere; its failure becomes this
    /// checker's ([`Checker::take_failure`]).
    pub fn add(&self, counts: &CheckCounts) {
        for (check, (passed, failed)) in self
            .checks
            .iter()
            .zip(counts.passed.iter().zip(&counts.failed))
        {
            check.passed.fetch_add(*passed, Ordering::Relaxed);
            check.failed.fetch_add(*failed, Ordering::Relaxed);
        }
        self.dropped.fetch_add(counts.dropped, Ordering::Relaxed);
        if let Some((expectation, row)) = &counts.failure {
            let rule = self
                .checks
                .iter()
                .find(|c| &c.name == expectation)
                .map(|c| c.rule.to_string())
                .unwrap_or_default();
            self.failure
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get_or_insert(Error::ExpectationFailed {
                    dataset: self.dataset.clone(),
                    expectation: expectation.clone(),
                    rule,
                    row: row.clone(),
                });
        }
    }
}

/// Uniqueness rule `index` over `plan`'s columns `columns` as columns of the plan: the row's
/// number among the rows of its key (NULLs are a key like any other, as in the checker), and,
/// when `stored` reads the rows the table already holds, whether its key is among theirs.
/// Returns the plan with those columns and the rule's condition over them.
fn unique_in_plan(
    plan: LogicalPlan,
    index: usize,
    columns: &[usize],
    stored: Option<&LogicalPlan>,
) -> Result<(LogicalPlan, Expr)> {
    use datafusion::common::{Column, JoinType, NullEquality};
    use datafusion::functions_window::expr_fn::row_number;
    use datafusion::logical_expr::{ExprFunctionExt, cast, lit};
    let schema = plan.schema().clone();
    let keys: Vec<Column> = columns
        .iter()
        .map(|i| Column::from(schema.qualified_field(*i)))
        .collect();
    let row = format!("__lakeflow_unique_{index}_row");
    let number = row_number()
        .partition_by(keys.iter().cloned().map(Expr::Column).collect())
        .build()?;
    let numbered = number.schema_name().to_string();
    // The window's column is renamed at once, so that another rule over the same columns
    // does not make a second column of the same name.
    let mut exprs: Vec<Expr> = schema.columns().into_iter().map(col).collect();
    exprs.push(col(Column::from_name(numbered)).alias(&row));
    let mut plan = LogicalPlanBuilder::from(LogicalPlanBuilder::window_plan(plan, [number])?)
        .project(exprs)?
        .build()?;
    let mut passes = col(Column::from_name(&row)).eq(lit(1u64));
    if let Some(stored) = stored {
        let names: Vec<String> = (0..columns.len())
            .map(|k| format!("__lakeflow_unique_{index}_key_{k}"))
            .collect();
        let held = format!("__lakeflow_unique_{index}_stored");
        let projected: Vec<Expr> = columns
            .iter()
            .zip(&names)
            .map(|(i, name)| {
                let field = schema.field(*i);
                cast(
                    col(Column::from_name(field.name())),
                    field.data_type().clone(),
                )
                .alias(name)
            })
            .collect();
        let mut marked: Vec<Expr> = names.iter().map(|n| col(Column::from_name(n))).collect();
        marked.push(lit(true).alias(&held));
        let stored_keys = LogicalPlanBuilder::from(stored.clone())
            .project(projected)?
            .distinct()?
            .project(marked)?
            .build()?;
        plan = LogicalPlanBuilder::from(plan)
            .join_detailed(
                stored_keys,
                JoinType::Left,
                (keys, names.iter().map(Column::from_name).collect()),
                None,
                NullEquality::NullEqualsNull,
            )?
            .build()?;
        passes = passes.and(col(Column::from_name(&held)).is_null());
    }
    Ok((plan, passes))
}

/// `col=value, ...` for one row, for error messages.
fn format_row(batch: &RecordBatch, row: usize) -> String {
    let options = FormatOptions::default().with_null("NULL");
    batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(field, column)| {
            let value = ArrayFormatter::try_new(column.as_ref(), &options)
                .map(|f| f.value(row).to_string())
                .unwrap_or_else(|_| "?".into());
            format!("{}={value}", field.name())
        })
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    /// Keys of the rows kept, and the counts, of `checker` over `plan`'s batches.
    async fn checked(
        ctx: &SessionContext,
        plan: LogicalPlan,
        checker: &Checker,
    ) -> (Vec<String>, Vec<ExpectationResult>) {
        let batches = DataFrame::new(ctx.state(), plan).collect().await.unwrap();
        let mut kept = Vec::new();
        for batch in batches {
            let batch = checker.keep(&batch).unwrap();
            let formatter =
                ArrayFormatter::try_new(batch.column(0), &FormatOptions::default()).unwrap();
            kept.extend((0..batch.num_rows()).map(|i| formatter.value(i).to_string()));
        }
        kept.sort();
        (kept, checker.results())
    }

    /// A uniqueness rule as plan columns keeps one row of each key not stored, and counts as
    /// the checker's own seen set does, NULL keys and stored keys included.
    #[tokio::test]
    async fn a_uniqueness_rule_in_the_plan_counts_as_the_checker_does() {
        let ctx = SessionContext::new();
        let plan = |sql: &str| {
            let ctx = ctx.clone();
            let sql = sql.to_string();
            async move { ctx.sql(&sql).await.unwrap().into_unoptimized_plan() }
        };
        let rows = plan(
            "SELECT * FROM (VALUES (1, 'a'), (2, 'b'), (2, 'b'), (3, 'c'), (NULL, 'd'), (NULL, 'd'), (4, 'e')) AS t(id, v)",
        )
        .await;
        let stored = plan("SELECT * FROM (VALUES (CAST(3 AS BIGINT)), (NULL)) AS s(id)").await;
        let rules = [
            Expectation::unique("pk", ["id"], ExpectAction::Drop),
            Expectation::sql("short", "length(v) = 1", ExpectAction::Warn),
        ];
        let state = ctx.state();
        let (here_plan, here) = Checker::new("t", &rules, false, rows.clone(), &state).unwrap();
        let seed = DataFrame::new(state.clone(), stored.clone())
            .collect()
            .await
            .unwrap();
        for batch in &seed {
            here.seed(0, batch).unwrap();
        }
        let (in_plan, there) =
            Checker::new_in_plan("t", &rules, false, rows, &state, Some(stored)).unwrap();
        assert!(there.checks_rows_alone() && !here.checks_rows_alone());
        assert!(there.unique_keys().is_empty());
        let want = checked(&ctx, here_plan, &here).await;
        let got = checked(&ctx, in_plan, &there).await;
        assert_eq!(got, want);
        assert_eq!(want.0, ["1", "2", "4"]);
        assert_eq!(
            (want.1[0].passed, want.1[0].failed, there.dropped()),
            (3, 4, 4)
        );
    }
}
