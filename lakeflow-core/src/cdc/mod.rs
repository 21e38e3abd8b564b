//! AUTO CDC: a change feed applied to a streaming table as slowly changing dimension type 1
//! (the latest row per key) or type 2 (every version of a key, with `__START_AT` and
//! `__END_AT`), correct under out-of-order, duplicated and late changes, across runs.
//!
//! Model (what the property test checks):
//! - Each change has keys, a sequence (any orderable type; a struct orders field by field),
//!   and is an upsert, a delete (`apply_as_deletes`) or a truncate (`apply_as_truncates`, type 1).
//! - Type 1: a batch's changes are applied in sequence order; a change whose sequence is not
//!   above the key's last applied one (or the last truncate's) is ignored, so the highest
//!   sequence wins whatever the arrival order, and a deleted key remembers its sequence (a
//!   tombstone, kept `pipelines.cdc.tombstoneGCThresholdInSeconds`, default two days) so an
//!   older update arriving late cannot bring it back. With `ignore_null_updates`, a NULL in an
//!   update keeps the value the row had. A truncate empties the table; only the batch's
//!   changes after it apply.
//! - Type 2: the history of a key is a function of all its changes (a change with a sequence
//!   already seen is a duplicate and ignored), walked in sequence order: an upsert that changes
//!   a tracked column closes the current version at its sequence and opens a new one; one
//!   that changes only untracked columns updates the current version in place; a delete
//!   closes the current version. A late change therefore lands at its place in history.
//!
//! Storage: the target table holds what users read. The flow's state — per key its last
//! sequence and tombstone (type 1), or every applied change (type 2) — is a Delta table of
//! its own under `_lakeflow/cdc/`, one per checkpoint version, so a full refresh starts
//! empty. A batch is one merge into the target and then one into the state, each carrying
//! the batch's transaction id; the state is committed last, so it says whether the batch is
//! done, and the state after a batch depends only on the state before it and the batch's
//! changes, so a batch interrupted between the two merges completes on the next run.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::dataframe::DataFrame;
use datafusion::prelude::SessionContext;

use crate::error::{Error, Result};

mod apply;
mod history;
mod latest;
mod merge;
mod snapshot;
mod write;

pub(crate) use apply::{Tables, apply_batch, state_table, tombstone_ttl};
pub(crate) use snapshot::{SNAPSHOT_OFFSET, next_snapshot, snapshot_changes};
pub use snapshot::{Snapshot, SnapshotFn};

/// Start of a type 2 version: the sequence of the change that opened it.
pub const START_AT: &str = "__START_AT";
/// End of a type 2 version: the sequence of the change that closed it; NULL while current.
pub const END_AT: &str = "__END_AT";
/// The table property that sets how long type 1 tombstones are kept, in seconds.
pub const TOMBSTONE_TTL: &str = "pipelines.cdc.tombstoneGCThresholdInSeconds";
const DEFAULT_TOMBSTONE_TTL: i64 = 2 * 24 * 3600;

const SEQ: &str = "__lakeflow_seq";
const DELETE: &str = "__lakeflow_delete";
const TRUNCATE: &str = "__lakeflow_truncate";
const DELETED_AT: &str = "__lakeflow_deleted_at";
const FLOOR: &str = "__lakeflow_floor";
const UPSERT_DELETE: &str = "__lakeflow_upsert_delete";

/// An AUTO CDC flow: applies the change feed `source` to the streaming table `target`
/// (Spark's `create_auto_cdc_flow`). Build it, then add it with
/// `Pipeline::create_auto_cdc_flow`.
///
/// ```
/// use lakeflow_core::AutoCdc;
///
/// let flow = AutoCdc::new("customers", "customer_changes")
///     .keys(["customer_id"])
///     .sequence_by("updated_at")
///     .apply_as_deletes("operation = 'DELETE'")
///     .except_column_list(["operation"])
///     .stored_as_scd_type(2);
/// # let _ = flow;
/// ```
#[derive(Debug, Clone)]
pub struct AutoCdc {
    pub(crate) snapshot: Option<Snapshot>,
    pub(crate) target: String,
    pub(crate) source: String,
    pub(crate) name: Option<String>,
    pub(crate) keys: Vec<String>,
    pub(crate) sequence_by: Option<String>,
    pub(crate) apply_as_deletes: Option<String>,
    pub(crate) apply_as_truncates: Option<String>,
    pub(crate) column_list: Option<Vec<String>>,
    pub(crate) except_column_list: Option<Vec<String>>,
    pub(crate) scd_type: u8,
    pub(crate) track_history_column_list: Option<Vec<String>>,
    pub(crate) track_history_except_column_list: Option<Vec<String>>,
    pub(crate) ignore_null_updates: bool,
}

fn strings<I, S>(items: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: Into<String>,
{
    items.into_iter().map(Into::into).collect()
}

impl AutoCdc {
    /// A flow that applies the changes read as a stream from `source` (a pipeline dataset or
    /// a registered external Delta table) to `target`, a streaming table without a query.
    pub fn new(target: impl Into<String>, source: impl Into<String>) -> Self {
        AutoCdc {
            snapshot: None,
            target: target.into(),
            source: source.into(),
            name: None,
            keys: Vec::new(),
            sequence_by: None,
            apply_as_deletes: None,
            apply_as_truncates: None,
            column_list: None,
            except_column_list: None,
            scd_type: 1,
            track_history_column_list: None,
            track_history_except_column_list: None,
            ignore_null_updates: false,
        }
    }

    /// The columns that identify a row.
    pub fn keys<I, S>(mut self, keys: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.keys = strings(keys);
        self
    }

    /// A SQL expression over the source's columns that orders the changes of a key: a
    /// column, or a struct (`struct(ts, id)`) to break ties.
    pub fn sequence_by(mut self, expr: impl Into<String>) -> Self {
        self.sequence_by = Some(expr.into());
        self
    }

    /// A SQL condition that makes a change a delete.
    pub fn apply_as_deletes(mut self, condition: impl Into<String>) -> Self {
        self.apply_as_deletes = Some(condition.into());
        self
    }

    /// A SQL condition that makes a change a truncate of the whole table (type 1 only).
    pub fn apply_as_truncates(mut self, condition: impl Into<String>) -> Self {
        self.apply_as_truncates = Some(condition.into());
        self
    }

    /// Keep only these source columns in the target.
    pub fn column_list<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.column_list = Some(strings(columns));
        self
    }

    /// Keep every source column but these in the target.
    pub fn except_column_list<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.except_column_list = Some(strings(columns));
        self
    }

    /// 1 (the default): the latest row per key. 2: every version, with `__START_AT` and
    /// `__END_AT`.
    pub fn stored_as_scd_type(mut self, scd_type: u8) -> Self {
        self.scd_type = scd_type;
        self
    }

    /// Type 2: only changes to these columns open a new version.
    pub fn track_history_column_list<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.track_history_column_list = Some(strings(columns));
        self
    }

    /// Type 2: changes to every column but these open a new version.
    pub fn track_history_except_column_list<I, S>(mut self, columns: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.track_history_except_column_list = Some(strings(columns));
        self
    }

    /// A NULL in an update keeps the column's previous value.
    pub fn ignore_null_updates(mut self, ignore: bool) -> Self {
        self.ignore_null_updates = ignore;
        self
    }

    /// The flow's name (default `<target>_cdc`); its checkpoint is kept under it.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The flow's name.
    pub fn flow_name(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{}_cdc", self.target))
    }

    /// The target table.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The source dataset.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Checks the options against the source's columns and returns the columns the target
    /// gets (with `__START_AT` and `__END_AT`, typed like the sequence, for type 2).
    pub(crate) fn target_schema(&self, flow: &str, source: &DataFrame) -> Result<SchemaRef> {
        let invalid = |message: String| Error::InvalidDefinition {
            dataset: flow.to_string(),
            message,
        };
        let schema = source.schema().as_arrow().clone();
        let has = |c: &str| schema.field_with_name(c).is_ok();
        let columns = crate::resolve::column_list(&schema);
        if self.scd_type != 1 && self.scd_type != 2 {
            return Err(invalid(format!(
                "stored_as_scd_type is {}; it is 1 (latest row per key) or 2 (history)",
                self.scd_type
            )));
        }
        if self.keys.is_empty() {
            return Err(invalid(
                "it has no keys; name the columns that identify a row with .keys([..])".into(),
            ));
        }
        for key in &self.keys {
            if !has(key) {
                return Err(invalid(format!(
                    "key `{key}` is not a column of its source `{}`; its columns are {columns}",
                    self.source
                )));
            }
        }
        let sequence_type = match (&self.snapshot, &self.sequence_by) {
            (Some(_), _)
                if self.sequence_by.is_some()
                    || self.apply_as_deletes.is_some()
                    || self.apply_as_truncates.is_some() =>
            {
                return Err(invalid(
                    "a flow from snapshots orders changes by the snapshot version and finds deletes itself; remove sequence_by, apply_as_deletes and apply_as_truncates".into(),
                ));
            }
            // Snapshot versions are the sequence.
            (Some(_), _) => DataType::Int64,
            (None, Some(sequence)) => parse(source, sequence, "sequence_by", flow, &self.source)?,
            (None, None) => {
                return Err(invalid(
                    "it has no sequence_by; name the column (or struct) that orders the changes"
                        .into(),
                ));
            }
        };
        for (condition, what) in [
            (&self.apply_as_deletes, "apply_as_deletes"),
            (&self.apply_as_truncates, "apply_as_truncates"),
        ] {
            if let Some(condition) = condition {
                let t = parse(source, condition, what, flow, &self.source)?;
                if t != DataType::Boolean && t != DataType::Null {
                    return Err(invalid(format!(
                        "{what} `{condition}` is {t}, not a condition; write a boolean SQL expression"
                    )));
                }
            }
        }
        if self.column_list.is_some() && self.except_column_list.is_some() {
            return Err(invalid(
                "it has both a column_list and an except_column_list; keep one".into(),
            ));
        }
        let tracking = self.track_history_column_list.is_some()
            || self.track_history_except_column_list.is_some();
        if self.scd_type == 1 && tracking {
            return Err(invalid(
                "history tracking (track_history_column_list) needs stored_as_scd_type(2); type 1 keeps no history".into(),
            ));
        }
        if self.track_history_column_list.is_some()
            && self.track_history_except_column_list.is_some()
        {
            return Err(invalid(
                "it has both a track_history_column_list and a track_history_except_column_list; keep one".into(),
            ));
        }
        if self.scd_type == 2 && self.apply_as_truncates.is_some() {
            return Err(invalid(
                "apply_as_truncates is for type 1 only; a type 2 table keeps history, which a truncate would erase".into(),
            ));
        }
        for list in [&self.column_list, &self.except_column_list]
            .into_iter()
            .flatten()
        {
            for column in list {
                if !has(column) {
                    return Err(invalid(format!(
                        "`{column}` is not a column of its source `{}`; its columns are {columns}",
                        self.source
                    )));
                }
            }
        }
        let kept: Vec<Field> = schema
            .fields()
            .iter()
            .filter(|f| match (&self.column_list, &self.except_column_list) {
                (Some(list), _) => list.contains(f.name()),
                (_, Some(except)) => !except.contains(f.name()),
                _ => true,
            })
            .map(|f| f.as_ref().clone())
            .collect();
        for key in &self.keys {
            if !kept.iter().any(|f| f.name() == key) {
                return Err(invalid(format!(
                    "key `{key}` is left out of the target by its column list; keep the keys"
                )));
            }
        }
        for list in [
            &self.track_history_column_list,
            &self.track_history_except_column_list,
        ]
        .into_iter()
        .flatten()
        {
            for column in list {
                if !kept.iter().any(|f| f.name() == column) {
                    return Err(invalid(format!(
                        "tracked column `{column}` is not a column of the target"
                    )));
                }
            }
        }
        let mut fields = kept;
        if self.scd_type == 2 {
            for name in [START_AT, END_AT] {
                if fields.iter().any(|f| f.name() == name) {
                    return Err(invalid(format!(
                        "its source has a column `{name}`, which type 2 adds itself; leave it out with except_column_list"
                    )));
                }
                fields.push(Field::new(name, sequence_type.clone(), true));
            }
        }
        Ok(Arc::new(Schema::new(fields)))
    }
}

/// The type of SQL expression `text` over `source`, or an error naming the option.
fn parse(source: &DataFrame, text: &str, what: &str, flow: &str, from: &str) -> Result<DataType> {
    use datafusion::logical_expr::ExprSchemable;
    let invalid = |message: String| Error::InvalidDefinition {
        dataset: flow.to_string(),
        message,
    };
    let expr = crate::query::sql_expr(source, text).map_err(|e| {
        invalid(format!(
            "{what} `{text}` is not valid SQL over `{from}`: {e}"
        ))
    })?;
    expr.get_type(source.schema())
        .map_err(|e| invalid(format!("{what} `{text}` does not apply to `{from}`: {e}")))
}

impl AutoCdc {
    /// The flow's definition: an append flow into the target that reads the source as a
    /// stream and applies it with this spec.
    pub fn into_def(self, location: crate::dataset::SourceLocation) -> crate::dataset::DatasetDef {
        let source = self.source.clone();
        let query: crate::dataset::Query = match &self.snapshot {
            None => Arc::new(move || {
                let source = source.clone();
                Box::pin(async move { crate::query::read_stream(&source) })
                    as crate::dataset::PlanFuture
            }),
            Some(Snapshot::Table(_)) => Arc::new(move || {
                let source = source.clone();
                Box::pin(async move { crate::query::read(&source) }) as crate::dataset::PlanFuture
            }),
            Some(Snapshot::Function(function)) => {
                let function = function.clone();
                let flow = self.flow_name();
                Arc::new(move || {
                    let function = function.clone();
                    let flow = flow.clone();
                    Box::pin(async move {
                        match function(SessionContext::new(), None).await? {
                            Some((df, _)) => Ok(df),
                            None => Err(Error::InvalidDefinition {
                                dataset: flow,
                                message: "its snapshot function has no first snapshot, so the target's columns are unknown; return the first snapshot (or an empty one) for version None".into(),
                            }),
                        }
                    }) as crate::dataset::PlanFuture
                })
            }
        };
        crate::dataset::DatasetDef {
            name: self.flow_name(),
            kind: crate::dataset::DatasetKind::AppendFlow,
            comment: None,
            partition_cols: Vec::new(),
            table_properties: BTreeMap::new(),
            expectations: Vec::new(),
            quarantine: None,
            location,
            query: Some(query),
            target: Some(self.target.clone()),
            once: false,
            schema: None,
            cdc: Some(Arc::new(self)),
            sink: None,
            persisted: false,
            watermark: None,
            sql_conf: BTreeMap::new(),
        }
    }
}
