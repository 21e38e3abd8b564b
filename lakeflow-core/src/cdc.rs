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

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, Int64Array, RecordBatch, make_comparator, new_null_array,
};
use datafusion::arrow::compute::{SortOptions, concat_batches, interleave};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, LogicalPlan, cast, lit};
use datafusion::prelude::{SessionContext, coalesce, col};

use crate::error::{Error, Result};

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
/// use lakeflow::AutoCdc;
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
        let sequence_by = match &self.snapshot {
            Some(_) => {
                if self.sequence_by.is_some()
                    || self.apply_as_deletes.is_some()
                    || self.apply_as_truncates.is_some()
                {
                    return Err(invalid(
                        "a flow from snapshots orders changes by the snapshot version and finds deletes itself; remove sequence_by, apply_as_deletes and apply_as_truncates".into(),
                    ));
                }
                None
            }
            None => self.sequence_by.clone(),
        };
        let sequence_type = match (&self.snapshot, sequence_by) {
            (Some(_), _) => DataType::Int64,
            (None, Some(sequence)) => parse(source, &sequence, "sequence_by", flow, &self.source)?,
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

/// Where the snapshots of an AUTO CDC flow from snapshots come from.
#[derive(Clone)]
pub enum Snapshot {
    /// A pipeline dataset or registered external table, read whole each run that it changed;
    /// its Delta version is the snapshot version.
    Table(String),
    /// A function that, given the last processed snapshot version (`None` at first), returns
    /// the next snapshot and its version, or `None` when there is none yet.
    Function(SnapshotFn),
}

/// The function of [`Snapshot::Function`]: builds the next snapshot as a DataFusion
/// `DataFrame` (on the session it is given), with its version.
pub type SnapshotFn = Arc<
    dyn Fn(
            SessionContext,
            Option<u64>,
        ) -> futures::future::BoxFuture<'static, Result<Option<(DataFrame, u64)>>>
        + Send
        + Sync,
>;

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Snapshot::Table(name) => write!(f, "Snapshot::Table({name:?})"),
            Snapshot::Function(_) => f.write_str("Snapshot::Function"),
        }
    }
}

/// The checkpoint key of a snapshot flow's offset: the last snapshot version processed.
pub(crate) const SNAPSHOT_OFFSET: &str = "snapshot";
const SNAPSHOT_VERSION: &str = "__lakeflow_snapshot_version";
const SNAPSHOT_DELETE: &str = "__lakeflow_snapshot_delete";

impl AutoCdc {
    /// An AUTO CDC flow from snapshots (Spark's `create_auto_cdc_from_snapshot_flow`): each
    /// run that `source` (a pipeline dataset or registered external table) has a new version,
    /// its whole contents are compared with `target`: new keys are inserted, changed rows
    /// updated (or versioned, type 2), keys missing from the snapshot deleted (or closed).
    /// Type 2 versions are numbered by the source's Delta version.
    pub fn from_snapshot(target: impl Into<String>, source: impl Into<String>) -> Self {
        let source = source.into();
        AutoCdc {
            snapshot: Some(Snapshot::Table(source.clone())),
            ..AutoCdc::new(target, source)
        }
    }

    /// An AUTO CDC flow from snapshots that a function produces: called with the last
    /// processed version (`None` at first), it returns the next snapshot and its version,
    /// or `None`. One snapshot is applied per run. To plan the pipeline, the function is also
    /// called with `None` once, to learn the snapshot's columns (it only builds a plan; no
    /// data is read then).
    pub fn from_snapshot_fn<F, Fut>(target: impl Into<String>, function: F) -> Self
    where
        F: Fn(SessionContext, Option<u64>) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<Option<(DataFrame, u64)>>> + Send + 'static,
    {
        let function: SnapshotFn = Arc::new(move |ctx, version| Box::pin(function(ctx, version)));
        AutoCdc {
            snapshot: Some(Snapshot::Function(function)),
            ..AutoCdc::new(target, "")
        }
    }

    /// The spec that applies a snapshot's changes (`snapshot_changes`): ordered by the
    /// snapshot version, deletes flagged.
    pub(crate) fn snapshot_spec(&self) -> AutoCdc {
        AutoCdc {
            snapshot: None,
            sequence_by: Some(SNAPSHOT_VERSION.to_string()),
            apply_as_deletes: Some(SNAPSHOT_DELETE.to_string()),
            ..self.clone()
        }
    }
}

/// The next snapshot after version `last`: its version and, for a function, its plan (a
/// table's snapshot is the flow's own query). `None` when there is none.
pub(crate) async fn next_snapshot(
    snapshot: &Snapshot,
    flow: &str,
    storage: &dyn crate::storage::Storage,
    session: &SessionContext,
    last: Option<u64>,
) -> Result<Option<(u64, Option<LogicalPlan>)>> {
    match snapshot {
        Snapshot::Table(source) => match storage.version(source).await? {
            Some(version) if Some(version) != last => Ok(Some((version, None))),
            _ => Ok(None),
        },
        Snapshot::Function(function) => match function(session.clone(), last).await? {
            None => Ok(None),
            Some((df, version)) => {
                if last.is_some_and(|l| version <= l) {
                    return Err(Error::Flow {
                        dataset: flow.to_string(),
                        source: Box::new(Error::InvalidDefinition {
                            dataset: flow.to_string(),
                            message: format!(
                                "its snapshot function returned version {version} after version {}; versions must increase",
                                last.unwrap_or_default()
                            ),
                        }),
                    });
                }
                Ok(Some((version, Some(df.into_unoptimized_plan()))))
            }
        },
    }
}

/// The changes that turn `target` (type 2: its current versions) into `snapshot`: the
/// snapshot's rows that differ from the target's, and deletes for the target's keys missing
/// from the snapshot, all at sequence `version`.
pub(crate) async fn snapshot_changes(
    spec: &AutoCdc,
    session: &SessionContext,
    storage: &dyn crate::storage::Storage,
    target: &str,
    target_schema: &SchemaRef,
    snapshot: LogicalPlan,
    version: u64,
) -> Result<LogicalPlan> {
    let values: Vec<&Field> = target_schema
        .fields()
        .iter()
        .filter(|f| f.name() != START_AT && f.name() != END_AT)
        .map(|f| f.as_ref())
        .collect();
    let snapshot = DataFrame::new(session.state(), snapshot);
    let project = |df: DataFrame| -> Result<DataFrame> {
        let exprs: Vec<Expr> = values
            .iter()
            .map(|f| {
                cast(
                    col(datafusion::common::Column::from_name(f.name())),
                    f.data_type().clone(),
                )
                .alias(f.name())
            })
            .collect();
        Ok(df.select(exprs)?)
    };
    let snapshot = project(snapshot)?;
    let current = match storage.table(target).await? {
        Some(table) => {
            let mut current = session.read_table(table)?;
            if spec.scd_type == 2 {
                current =
                    current.filter(col(datafusion::common::Column::from_name(END_AT)).is_null())?;
            }
            project(current)?
        }
        None => {
            let empty = Schema::new(values.iter().map(|f| (*f).clone()).collect::<Vec<_>>());
            project(session.read_batch(RecordBatch::new_empty(Arc::new(empty)))?)?
        }
    };
    let keys: Vec<&str> = spec.keys.iter().map(String::as_str).collect();
    let renamed: Vec<Expr> = spec
        .keys
        .iter()
        .map(|k| col(datafusion::common::Column::from_name(k)).alias(format!("__s_{k}")))
        .collect();
    let snapshot_keys: Vec<String> = spec.keys.iter().map(|k| format!("__s_{k}")).collect();
    let snapshot_keys: Vec<&str> = snapshot_keys.iter().map(String::as_str).collect();
    let gone = current.clone().join(
        snapshot.clone().select(renamed)?,
        JoinType::LeftAnti,
        &keys,
        &snapshot_keys,
        None,
    )?;
    let changed = snapshot.except(current)?;
    let tag = |df: DataFrame, delete: bool| -> Result<DataFrame> {
        Ok(df
            .with_column(SNAPSHOT_VERSION, lit(version as i64))?
            .with_column(SNAPSHOT_DELETE, lit(delete))?)
    };
    Ok(tag(changed, false)?
        .union(tag(gone, true)?)?
        .into_unoptimized_plan())
}

/// The type of SQL expression `text` over `source`, or an error naming the option.
fn parse(source: &DataFrame, text: &str, what: &str, flow: &str, from: &str) -> Result<DataType> {
    use datafusion::logical_expr::ExprSchemable;
    let invalid = |message: String| Error::InvalidDefinition {
        dataset: flow.to_string(),
        message,
    };
    let expr = source.parse_sql_expr(text).map_err(|e| {
        invalid(format!(
            "{what} `{text}` is not valid SQL over `{from}`: {e}"
        ))
    })?;
    expr.get_type(source.schema())
        .map_err(|e| invalid(format!("{what} `{text}` does not apply to `{from}`: {e}")))
}

/// What one batch did to the target.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Applied {
    /// Target rows inserted, updated or deleted.
    pub rows: u64,
    /// The target's version after the batch, if it committed one.
    pub version: Option<u64>,
}

/// The target and state tables and their schemas, as a batch sees them.
pub(crate) struct Tables<'a> {
    /// The flow's name, for messages.
    pub flow: &'a str,
    /// The target table.
    pub target: &'a str,
    /// The target's stored schema.
    pub target_schema: SchemaRef,
    /// The state table of the flow's live checkpoint version.
    pub state: String,
    /// Seconds a type 1 tombstone is kept.
    pub tombstone_ttl: i64,
    /// The target's definition (its options, for creating it).
    pub def: &'a crate::dataset::DatasetDef,
}

/// The state table of `flow` at checkpoint version `version`.
pub(crate) fn state_table(flow: &str, version: u64) -> String {
    format!("_lakeflow/cdc/{flow}_v{version}")
}

/// The tombstone time-to-live a target's properties set.
pub(crate) fn tombstone_ttl(properties: &BTreeMap<String, String>) -> Result<i64> {
    match properties.get(TOMBSTONE_TTL) {
        None => Ok(DEFAULT_TOMBSTONE_TTL),
        Some(v) => v.trim().parse().map_err(|_| Error::Storage {
            location: TOMBSTONE_TTL.into(),
            message: format!("`{v}` is not a number of seconds"),
            source: None,
        }),
    }
}

/// One batch of an AUTO CDC flow: the batch's changes (`changes`, the source's new rows)
/// merged into the target, then into the state. `target_done` says the target merge of this
/// batch already committed (a rerun after a crash between the two merges).
pub(crate) async fn apply_batch(
    spec: &AutoCdc,
    tables: &Tables<'_>,
    session: &SessionContext,
    storage: &dyn crate::storage::Storage,
    changes: LogicalPlan,
    txn: crate::storage::Txn,
    target_done: bool,
) -> Result<Applied> {
    let mut layout = Layout::new(spec, tables)?;
    let changes = DataFrame::new(session.state(), changes);
    let sequence = spec.sequence_by.as_deref().unwrap_or_default();
    let seq_type = {
        use datafusion::logical_expr::ExprSchemable;
        changes
            .parse_sql_expr(sequence)?
            .get_type(changes.schema())?
    };
    layout.set_seq_type(seq_type, storage)?;
    let events = layout.project(spec, changes)?.collect().await?;
    let events = concat_batches(&layout.event_schema, &events)
        .map_err(|e| Error::Internal(e.to_string()))?;
    layout.check_sequences(tables.flow, &events)?;
    let keys = distinct_keys(session, &layout, &events)?;
    let state = match storage.table(&tables.state).await? {
        Some(table) => {
            semi_join(
                session,
                session.read_table(table)?,
                &layout.keys,
                keys.clone(),
            )
            .await?
        }
        None => Vec::new(),
    };
    let state = read_as(&layout.state_schema, &state)?;
    let floor = if layout.scd_type == 1 {
        match storage.table(&tables.state).await? {
            Some(table) => floor(session, table, &layout).await?,
            None => None,
        }
    } else {
        None
    };
    let old_rows = if layout.scd_type == 1 && spec.ignore_null_updates && !target_done {
        match storage.table(tables.target).await? {
            Some(table) => {
                let rows =
                    semi_join(session, session.read_table(table)?, &layout.keys, keys).await?;
                read_as(&tables.target_schema, &rows)?
            }
            None => RecordBatch::new_empty(tables.target_schema.clone()),
        }
    } else {
        RecordBatch::new_empty(tables.target_schema.clone())
    };
    let plan = if layout.scd_type == 1 {
        layout.type1(spec, &events, &state, &old_rows, floor)?
    } else {
        layout.type2(spec, &events, &state)?
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let rows = plan.target_rows();
    let mut version = None;
    if !target_done && (rows > 0 || plan.replace) {
        let upsert = layout.target_upsert(tables, &plan, txn.clone())?;
        version = Some(storage.upsert(upsert).await?.version);
    }
    crate::failpoint::hit("cdc_between_merges");
    let upsert = layout.state_upsert(tables, &plan, txn, now)?;
    storage.upsert(upsert).await?;
    Ok(Applied {
        rows: rows as u64,
        version,
    })
}

/// Column positions and schemas of one flow's batches.
struct Layout {
    scd_type: u8,
    /// The target's value columns (without `__START_AT`/`__END_AT`), stored types.
    values: SchemaRef,
    /// The keys.
    keys: Vec<String>,
    /// Positions of the keys in `values`.
    key_index: Vec<usize>,
    /// Positions of the tracked columns in `values` (type 2).
    tracked: Vec<usize>,
    /// The stored type of the sequence.
    seq_type: DataType,
    /// Events: `values`, then sequence, delete, truncate.
    event_schema: SchemaRef,
    /// State rows: type 1 keys, sequence, deleted, deleted-at, floor; type 2 `values`,
    /// sequence, deleted.
    state_schema: SchemaRef,
}

impl Layout {
    fn new(spec: &AutoCdc, tables: &Tables<'_>) -> Result<Self> {
        let target = &tables.target_schema;
        let values: Vec<Field> = target
            .fields()
            .iter()
            .filter(|f| f.name() != START_AT && f.name() != END_AT)
            .map(|f| f.as_ref().clone())
            .collect();
        let values = Arc::new(Schema::new(values));
        let key_index = spec
            .keys
            .iter()
            .map(|k| values.index_of(k))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::Internal(format!("CDC key: {e}")))?;
        let tracked = (0..values.fields().len())
            .filter(|i| {
                let name = values.field(*i).name();
                match (
                    &spec.track_history_column_list,
                    &spec.track_history_except_column_list,
                ) {
                    (Some(list), _) => list.contains(name),
                    (_, Some(except)) => !except.contains(name),
                    _ => true,
                }
            })
            .collect();
        // The sequence's type is known once the batch's changes are (`set_seq_type`).
        Ok(Layout {
            scd_type: spec.scd_type,
            values: values.clone(),
            keys: spec.keys.clone(),
            key_index,
            tracked,
            seq_type: DataType::Null,
            event_schema: values.clone(),
            state_schema: values,
        })
    }

    fn set_seq_type(
        &mut self,
        seq_type: DataType,
        storage: &dyn crate::storage::Storage,
    ) -> Result<()> {
        let stored = storage.stored_schema(&Schema::new(vec![Field::new(SEQ, seq_type, true)]))?;
        self.seq_type = stored.field(0).data_type().clone();
        let mut events: Vec<Field> = self
            .values
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        events.push(Field::new(SEQ, self.seq_type.clone(), true));
        events.push(Field::new(DELETE, DataType::Boolean, true));
        events.push(Field::new(TRUNCATE, DataType::Boolean, true));
        self.event_schema = Arc::new(Schema::new(events));
        let state: Vec<Field> = if self.scd_type == 1 {
            let mut fields: Vec<Field> = self
                .key_index
                .iter()
                .map(|i| self.values.field(*i).clone())
                .collect();
            fields.push(Field::new(SEQ, self.seq_type.clone(), true));
            fields.push(Field::new(DELETE, DataType::Boolean, true));
            fields.push(Field::new(DELETED_AT, DataType::Int64, true));
            fields.push(Field::new(FLOOR, DataType::Boolean, true));
            fields
        } else {
            let mut fields: Vec<Field> = self
                .values
                .fields()
                .iter()
                .map(|f| f.as_ref().clone())
                .collect();
            fields.push(Field::new(SEQ, self.seq_type.clone(), true));
            fields.push(Field::new(DELETE, DataType::Boolean, true));
            fields
        };
        self.state_schema = storage.stored_schema(&Schema::new(state))?;
        Ok(())
    }

    /// The batch's changes as events: the target's value columns cast to their stored types
    /// (NULL where the source has none), the sequence, and the delete and truncate flags.
    fn project(&self, spec: &AutoCdc, changes: DataFrame) -> Result<DataFrame> {
        let schema = changes.schema().clone();
        let mut exprs: Vec<Expr> = Vec::new();
        for field in self.values.fields() {
            let expr = match schema.index_of_column_by_name(None, field.name()) {
                Some(i) => {
                    Expr::Column(datafusion::common::Column::from(schema.qualified_field(i)))
                }
                None => lit(datafusion::common::ScalarValue::Null),
            };
            exprs.push(cast(expr, field.data_type().clone()).alias(field.name()));
        }
        let sequence = spec.sequence_by.as_deref().unwrap_or_default();
        let seq = changes.parse_sql_expr(sequence)?;
        exprs.push(cast(seq, self.seq_type.clone()).alias(SEQ));
        for (condition, name) in [
            (&spec.apply_as_deletes, DELETE),
            (&spec.apply_as_truncates, TRUNCATE),
        ] {
            let flag = match condition {
                Some(c) => coalesce(vec![changes.parse_sql_expr(c)?, lit(false)]),
                None => lit(false),
            };
            exprs.push(flag.alias(name));
        }
        Ok(changes.select(exprs)?)
    }

    /// Every change must have a sequence; the error names the key of the first without.
    fn check_sequences(&self, flow: &str, events: &RecordBatch) -> Result<()> {
        let seq = events.column(self.values.fields().len());
        if seq.null_count() == 0 {
            return Ok(());
        }
        let row = (0..events.num_rows())
            .find(|i| seq.is_null(*i))
            .unwrap_or_default();
        let key = self.describe_key(events, row);
        Err(Error::Flow {
            dataset: flow.to_string(),
            source: Box::new(Error::InvalidDefinition {
                dataset: flow.to_string(),
                message: format!(
                    "the change for key ({key}) has a NULL sequence; every change needs one to be ordered (fix the source, or filter such rows out)"
                ),
            }),
        })
    }

    fn describe_key(&self, batch: &RecordBatch, row: usize) -> String {
        use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
        let options = FormatOptions::default().with_null("NULL");
        self.key_index
            .iter()
            .map(|i| {
                let value = ArrayFormatter::try_new(batch.column(*i).as_ref(), &options)
                    .map(|f| f.value(row).to_string())
                    .unwrap_or_default();
                format!("{}={value}", self.values.field(*i).name())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// The distinct keys of the batch's events, as a one-batch table.
fn distinct_keys(
    session: &SessionContext,
    layout: &Layout,
    events: &RecordBatch,
) -> Result<DataFrame> {
    let columns: Vec<ArrayRef> = layout
        .key_index
        .iter()
        .map(|i| events.column(*i).clone())
        .collect();
    let fields: Vec<Field> = layout
        .key_index
        .iter()
        .map(|i| layout.values.field(*i).clone())
        .collect();
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(e.to_string()))?;
    Ok(session.read_batch(batch)?.distinct()?)
}

/// The rows of `table` whose keys are among `keys`.
async fn semi_join(
    session: &SessionContext,
    table: DataFrame,
    keys: &[String],
    wanted: DataFrame,
) -> Result<Vec<RecordBatch>> {
    let _ = session;
    let aliased: Vec<Expr> = keys
        .iter()
        .map(|k| col(datafusion::common::Column::from_name(k)).alias(format!("__k_{k}")))
        .collect();
    let wanted = wanted.select(aliased)?;
    let left: Vec<String> = keys.to_vec();
    let right: Vec<String> = keys.iter().map(|k| format!("__k_{k}")).collect();
    let left: Vec<&str> = left.iter().map(String::as_str).collect();
    let right: Vec<&str> = right.iter().map(String::as_str).collect();
    Ok(table
        .join(wanted, JoinType::LeftSemi, &left, &right, None)?
        .collect()
        .await?)
}

/// The sequence of the last truncate (type 1), from the state's floor row.
async fn floor(
    session: &SessionContext,
    table: Arc<dyn datafusion::catalog::TableProvider>,
    layout: &Layout,
) -> Result<Option<OwnedRow>> {
    let rows = session
        .read_table(table)?
        .filter(col(FLOOR).eq(lit(true)))?
        .select(vec![col(SEQ)])?
        .collect()
        .await?;
    let converter = seq_converter(&layout.seq_type)?;
    let mut best: Option<OwnedRow> = None;
    for batch in rows {
        let array = conform(batch.column(0).clone(), &layout.seq_type)?;
        let converted = converter
            .convert_columns(&[array])
            .map_err(|e| Error::Internal(e.to_string()))?;
        for i in 0..batch.num_rows() {
            let row = converted.row(i).owned();
            if best.as_ref().is_none_or(|b| row > *b) {
                best = Some(row);
            }
        }
    }
    Ok(best)
}

fn seq_converter(seq_type: &DataType) -> Result<RowConverter> {
    RowConverter::new(vec![SortField::new(seq_type.clone())]).map_err(|e| {
        Error::Internal(format!(
            "the sequence type {seq_type} cannot be ordered: {e}"
        ))
    })
}

/// A value of one column: which source batch and which row holds it.
type Cell = (usize, usize);

/// The outcome of one batch, as rows of cells into `Plan::sources`.
struct Plan {
    /// Arrays of the value columns, one list per column, one array per source batch.
    sources: Vec<Vec<ArrayRef>>,
    /// Sequence arrays, one per source batch.
    seqs: Vec<ArrayRef>,
    /// Target rows to upsert: value cells, and for type 2 the start and end sequences.
    upserts: Vec<(Vec<Cell>, Option<Cell>, Option<Cell>)>,
    /// Target rows to delete: the key cells (type 2: and the version's start).
    deletes: Vec<(Vec<Cell>, Option<Cell>)>,
    /// State rows: value (or key) cells, sequence, deleted.
    state: Vec<(Vec<Cell>, Cell, bool)>,
    /// A truncate: replace target and state instead of merging; the new floor.
    replace: bool,
    floor: Option<Cell>,
}

impl Plan {
    fn target_rows(&self) -> usize {
        self.upserts.len() + self.deletes.len()
    }
}

/// Source batches of cells: arrays per value column, sequences, and a trailing all-NULL row.
struct Sources {
    columns: Vec<Vec<ArrayRef>>,
    seqs: Vec<ArrayRef>,
    null: usize,
}

impl Sources {
    fn new(layout: &Layout) -> Self {
        Sources {
            columns: vec![Vec::new(); layout.values.fields().len()],
            seqs: Vec::new(),
            null: 0,
        }
    }

    /// Adds a batch whose first columns are the value columns (or, with `keys_only`, the
    /// key columns) and whose column `seq` (if any) is the sequence. Returns its index.
    fn add(
        &mut self,
        layout: &Layout,
        batch: &RecordBatch,
        keys_only: bool,
        seq: Option<usize>,
    ) -> usize {
        let index = self.seqs.len();
        let rows = batch.num_rows();
        for (j, column) in self.columns.iter_mut().enumerate() {
            let array = if keys_only {
                match layout.key_index.iter().position(|k| *k == j) {
                    Some(p) => batch.column(p).clone(),
                    None => new_null_array(layout.values.field(j).data_type(), rows),
                }
            } else {
                batch.column(j).clone()
            };
            column.push(array);
        }
        self.seqs.push(match seq {
            Some(s) => batch.column(s).clone(),
            None => new_null_array(&layout.seq_type, rows),
        });
        index
    }

    fn finish(mut self, layout: &Layout) -> (Vec<Vec<ArrayRef>>, Vec<ArrayRef>, usize) {
        let empty = RecordBatch::new_empty(layout.values.clone());
        let nulls: Vec<ArrayRef> = layout
            .values
            .fields()
            .iter()
            .map(|f| new_null_array(f.data_type(), 1))
            .collect();
        let _ = empty;
        self.null = self.seqs.len();
        for (j, column) in self.columns.iter_mut().enumerate() {
            column.push(nulls[j].clone());
        }
        self.seqs.push(new_null_array(&layout.seq_type, 1));
        (self.columns, self.seqs, self.null)
    }
}

/// Each key's events (keys as row bytes), in key order.
type KeyedEvents = Vec<(Vec<u8>, Vec<Event>)>;

/// One change of a key, ordered by its sequence.
struct Event {
    seq: OwnedRow,
    seq_cell: Cell,
    delete: bool,
    values: Vec<Cell>,
}

/// Value comparison of cells across source batches.
struct Compare<'a> {
    columns: &'a [Vec<ArrayRef>],
    cache: HashMap<(usize, usize, usize), datafusion::arrow::array::DynComparator>,
}

impl Compare<'_> {
    fn equal(&mut self, column: usize, a: Cell, b: Cell) -> Result<bool> {
        if a == b {
            return Ok(true);
        }
        let arrays = &self.columns[column];
        let (left, right) = (&arrays[a.0], &arrays[b.0]);
        match (left.is_null(a.1), right.is_null(b.1)) {
            (true, true) => return Ok(true),
            (true, false) | (false, true) => return Ok(false),
            _ => {}
        }
        let key = (column, a.0, b.0);
        let comparator = match self.cache.entry(key) {
            std::collections::hash_map::Entry::Occupied(found) => found.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => slot.insert(
                make_comparator(left.as_ref(), right.as_ref(), SortOptions::default())
                    .map_err(|e| Error::Internal(e.to_string()))?,
            ),
        };
        Ok(comparator(a.1, b.1) == Ordering::Equal)
    }
}

impl Layout {
    /// Groups the batch's events by key, each key's events in sequence order (ties in
    /// arrival order). Truncates are returned apart.
    fn events_by_key(
        &self,
        events: &RecordBatch,
        batch: usize,
        seq_rows: &datafusion::arrow::row::Rows,
        key_rows: &datafusion::arrow::row::Rows,
    ) -> (KeyedEvents, Vec<(OwnedRow, Cell)>) {
        let width = self.values.fields().len();
        let deletes = flags(events.column(width + 1));
        let truncates = flags(events.column(width + 2));
        let mut order: Vec<Vec<u8>> = Vec::new();
        let mut by_key: HashMap<Vec<u8>, Vec<Event>> = HashMap::new();
        let mut cuts = Vec::new();
        for row in 0..events.num_rows() {
            let seq = seq_rows.row(row).owned();
            if truncates[row] {
                cuts.push((seq, (batch, row)));
                continue;
            }
            let key = key_rows.row(row).as_ref().to_vec();
            let event = Event {
                seq,
                seq_cell: (batch, row),
                delete: deletes[row],
                values: (0..width).map(|_| (batch, row)).collect(),
            };
            by_key
                .entry(key.clone())
                .or_insert_with(|| {
                    order.push(key);
                    Vec::new()
                })
                .push(event);
        }
        let mut grouped: Vec<(Vec<u8>, Vec<Event>)> = order
            .into_iter()
            .map(|k| {
                let mut events = by_key.remove(&k).unwrap_or_default();
                events.sort_by(|a, b| a.seq.cmp(&b.seq));
                (k, events)
            })
            .collect();
        grouped.sort_by(|a, b| a.0.cmp(&b.0));
        (grouped, cuts)
    }

    fn converters(&self) -> Result<(RowConverter, RowConverter)> {
        let keys = RowConverter::new(
            self.key_index
                .iter()
                .map(|i| SortField::new(self.values.field(*i).data_type().clone()))
                .collect(),
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok((keys, seq_converter(&self.seq_type)?))
    }

    /// Type 1: per key, the changes above its last sequence (and the floor) in order.
    fn type1(
        &self,
        spec: &AutoCdc,
        events: &RecordBatch,
        state: &RecordBatch,
        old_rows: &RecordBatch,
        floor: Option<OwnedRow>,
    ) -> Result<Plan> {
        let width = self.values.fields().len();
        let (keys, seqs) = self.converters()?;
        let mut sources = Sources::new(self);
        let ev = sources.add(self, events, false, Some(width));
        let key_columns = |batch: &RecordBatch, positions: &[usize]| -> Vec<ArrayRef> {
            positions.iter().map(|i| batch.column(*i).clone()).collect()
        };
        let event_keys = keys
            .convert_columns(&key_columns(events, &self.key_index))
            .map_err(|e| Error::Internal(e.to_string()))?;
        let event_seqs = seqs
            .convert_columns(&[events.column(width).clone()])
            .map_err(|e| Error::Internal(e.to_string()))?;
        let (grouped, cuts) = self.events_by_key(events, ev, &event_seqs, &event_keys);

        // A truncate in the batch empties the table; only changes after the last one apply.
        let mut floor_seq = floor;
        let mut floor_cell = None;
        let cut = cuts.into_iter().max_by(|a, b| a.0.cmp(&b.0));
        let replace = match cut {
            Some((seq, cell)) if floor_seq.as_ref().is_none_or(|f| seq > *f) => {
                floor_seq = Some(seq);
                floor_cell = Some(cell);
                true
            }
            _ => false,
        };

        // Last sequence and tombstone per key, from the state.
        let n_keys = self.key_index.len();
        let mut known: HashMap<Vec<u8>, (OwnedRow, bool)> = HashMap::new();
        if !replace && state.num_rows() > 0 {
            let state_keys = keys
                .convert_columns(&state.columns()[..n_keys])
                .map_err(|e| Error::Internal(e.to_string()))?;
            let state_seqs = seqs
                .convert_columns(&[conform(state.column(n_keys).clone(), &self.seq_type)?])
                .map_err(|e| Error::Internal(e.to_string()))?;
            let deleted = flags(state.column(n_keys + 1));
            let floors = flags(state.column(n_keys + 3));
            for i in 0..state.num_rows() {
                if !floors[i] {
                    known.insert(
                        state_keys.row(i).as_ref().to_vec(),
                        (state_seqs.row(i).owned(), deleted[i]),
                    );
                }
            }
        }
        // The rows the target has now (read only for ignore_null_updates).
        let mut current: HashMap<Vec<u8>, Vec<Cell>> = HashMap::new();
        if !replace && old_rows.num_rows() > 0 {
            let values: Vec<ArrayRef> = self
                .values
                .fields()
                .iter()
                .map(|f| old_rows.column_by_name(f.name()).cloned())
                .collect::<Option<_>>()
                .ok_or_else(|| Error::Internal("target row lacks a column".into()))?;
            let batch = RecordBatch::try_new(self.values.clone(), values)
                .map_err(|e| Error::Internal(e.to_string()))?;
            let src = sources.add(self, &batch, false, None);
            let old_keys = keys
                .convert_columns(&key_columns(&batch, &self.key_index))
                .map_err(|e| Error::Internal(e.to_string()))?;
            for i in 0..batch.num_rows() {
                current.insert(
                    old_keys.row(i).as_ref().to_vec(),
                    (0..width).map(|_| (src, i)).collect(),
                );
            }
        }
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        let mut state_rows = Vec::new();
        {
            let columns = sources.columns.clone();
            for (key, events) in grouped {
                let (mut seq, mut deleted) = match known.get(&key) {
                    Some((s, d)) => (Some(s.clone()), *d),
                    None => (None, false),
                };
                let mut values = current.get(&key).cloned();
                let mut last: Option<&Event> = None;
                for event in &events {
                    let above =
                        |bound: &Option<OwnedRow>| bound.as_ref().is_none_or(|b| event.seq > *b);
                    if !above(&seq) || !above(&floor_seq) {
                        continue;
                    }
                    seq = Some(event.seq.clone());
                    if event.delete {
                        deleted = true;
                        values = None;
                    } else {
                        let merged = match (&values, spec.ignore_null_updates) {
                            (Some(old), true) => event
                                .values
                                .iter()
                                .zip(old)
                                .enumerate()
                                .map(|(j, (new, old))| {
                                    if columns[j][new.0].is_null(new.1) {
                                        *old
                                    } else {
                                        *new
                                    }
                                })
                                .collect(),
                            _ => event.values.clone(),
                        };
                        deleted = false;
                        values = Some(merged);
                    }
                    last = Some(event);
                }
                let Some(last) = last else {
                    continue;
                };
                let key_cells: Vec<Cell> = last.values.clone();
                match &values {
                    Some(v) => upserts.push((v.clone(), None, None)),
                    None => deletes.push((key_cells.clone(), None)),
                }
                state_rows.push((key_cells, last.seq_cell, deleted));
            }
        }
        let (columns, seqs_out, _) = sources.finish(self);
        // The floor row is written with a truncate (which replaces the state) and kept after.
        Ok(Plan {
            sources: columns,
            seqs: seqs_out,
            upserts,
            deletes,
            state: state_rows,
            replace,
            floor: floor_cell.filter(|_| replace),
        })
    }

    /// Type 2: per key, the history walked again over its known and new changes.
    fn type2(&self, spec: &AutoCdc, events: &RecordBatch, state: &RecordBatch) -> Result<Plan> {
        let width = self.values.fields().len();
        let (keys, seqs) = self.converters()?;
        let mut sources = Sources::new(self);
        let ev = sources.add(self, events, false, Some(width));
        let event_keys = keys
            .convert_columns(
                &self
                    .key_index
                    .iter()
                    .map(|i| events.column(*i).clone())
                    .collect::<Vec<_>>(),
            )
            .map_err(|e| Error::Internal(e.to_string()))?;
        let event_seqs = seqs
            .convert_columns(&[events.column(width).clone()])
            .map_err(|e| Error::Internal(e.to_string()))?;
        let (grouped, _) = self.events_by_key(events, ev, &event_seqs, &event_keys);
        // Known changes per key, from the state.
        let mut known: HashMap<Vec<u8>, Vec<Event>> = HashMap::new();
        if state.num_rows() > 0 {
            let st = sources.add(self, state, false, Some(width));
            let state_keys = keys
                .convert_columns(
                    &self
                        .key_index
                        .iter()
                        .map(|i| state.column(*i).clone())
                        .collect::<Vec<_>>(),
                )
                .map_err(|e| Error::Internal(e.to_string()))?;
            let state_seqs = seqs
                .convert_columns(&[conform(state.column(width).clone(), &self.seq_type)?])
                .map_err(|e| Error::Internal(e.to_string()))?;
            let deleted = flags(state.column(width + 1));
            for (i, &delete) in deleted.iter().enumerate() {
                known
                    .entry(state_keys.row(i).as_ref().to_vec())
                    .or_default()
                    .push(Event {
                        seq: state_seqs.row(i).owned(),
                        seq_cell: (st, i),
                        delete,
                        values: (0..width).map(|_| (st, i)).collect(),
                    });
            }
        }
        let columns = sources.columns.clone();
        let mut compare = Compare {
            columns: &columns,
            cache: HashMap::new(),
        };
        let mut upserts = Vec::new();
        let mut deletes = Vec::new();
        let mut state_rows = Vec::new();
        for (key, new) in grouped {
            let mut old = known.remove(&key).unwrap_or_default();
            old.sort_by(|a, b| a.seq.cmp(&b.seq));
            let before = self.walk(spec, &old, &mut compare)?;
            // A change with a sequence already seen is a duplicate: the first one stays.
            let mut added = Vec::new();
            for event in new {
                let seen = old
                    .iter()
                    .chain(added.iter())
                    .any(|e: &Event| e.seq == event.seq);
                if !seen {
                    added.push(event);
                }
            }
            if added.is_empty() {
                continue;
            }
            for event in &added {
                state_rows.push((event.values.clone(), event.seq_cell, event.delete));
            }
            let mut all = old;
            all.extend(added);
            all.sort_by(|a, b| a.seq.cmp(&b.seq));
            let after = self.walk(spec, &all, &mut compare)?;
            // Versions are identified by their start; write the changed ones, delete the gone.
            for version in &after {
                let unchanged = match before.iter().find(|v| v.start == version.start) {
                    Some(v) => v.same_as(version, width, &mut compare)?,
                    None => false,
                };
                if !unchanged {
                    upserts.push((
                        version.values.clone(),
                        Some(version.start_cell),
                        version.end.as_ref().map(|(_, c)| *c),
                    ));
                }
            }
            for version in &before {
                if !after.iter().any(|v| v.start == version.start) {
                    deletes.push((version.values.clone(), Some(version.start_cell)));
                }
            }
        }
        let (columns, seqs_out, _) = sources.finish(self);
        Ok(Plan {
            sources: columns,
            seqs: seqs_out,
            upserts,
            deletes,
            state: state_rows,
            replace: false,
            floor: None,
        })
    }

    /// The versions of one key's history, from its changes in sequence order.
    fn walk(
        &self,
        spec: &AutoCdc,
        events: &[Event],
        compare: &mut Compare<'_>,
    ) -> Result<Vec<Version>> {
        let mut versions: Vec<Version> = Vec::new();
        let mut open = false;
        for event in events {
            if event.delete {
                if open && let Some(current) = versions.last_mut() {
                    current.end = Some((event.seq.clone(), event.seq_cell));
                }
                open = false;
                continue;
            }
            let values: Vec<Cell> = match (open, spec.ignore_null_updates, versions.last()) {
                (true, true, Some(current)) => event
                    .values
                    .iter()
                    .zip(&current.values)
                    .enumerate()
                    .map(|(j, (new, old))| {
                        if compare.columns[j][new.0].is_null(new.1) {
                            *old
                        } else {
                            *new
                        }
                    })
                    .collect(),
                _ => event.values.clone(),
            };
            if open && let Some(current) = versions.last_mut() {
                let mut same = true;
                for j in &self.tracked {
                    if !compare.equal(*j, current.values[*j], values[*j])? {
                        same = false;
                        break;
                    }
                }
                if same {
                    // Only untracked columns changed (or nothing): update in place.
                    current.values = values;
                    continue;
                }
                current.end = Some((event.seq.clone(), event.seq_cell));
            }
            versions.push(Version {
                start: event.seq.clone(),
                start_cell: event.seq_cell,
                end: None,
                values,
            });
            open = true;
        }
        Ok(versions)
    }

    /// The merge of `plan` into the target.
    fn target_upsert(
        &self,
        tables: &Tables<'_>,
        plan: &Plan,
        txn: crate::storage::Txn,
    ) -> Result<crate::storage::TableUpsert> {
        let schema = tables.target_schema.clone();
        let width = self.values.fields().len();
        let null = plan.seqs.len() - 1;
        let mut rows: Vec<(Vec<Cell>, Cell, Cell, bool)> = Vec::new();
        for (values, start, end) in &plan.upserts {
            rows.push((
                values.clone(),
                start.unwrap_or((null, 0)),
                end.unwrap_or((null, 0)),
                false,
            ));
        }
        for (values, start) in &plan.deletes {
            let cells = (0..width)
                .map(|j| {
                    if self.key_index.contains(&j) {
                        values[j]
                    } else {
                        (null, 0)
                    }
                })
                .collect();
            rows.push((cells, start.unwrap_or((null, 0)), (null, 0), true));
        }
        let mut columns = Vec::new();
        for field in schema.fields() {
            let array = match self.values.index_of(field.name()) {
                Ok(j) => gather(&plan.sources[j], rows.iter().map(|r| r.0[j]))?,
                Err(_) if field.name() == START_AT => gather(&plan.seqs, rows.iter().map(|r| r.1))?,
                Err(_) => gather(&plan.seqs, rows.iter().map(|r| r.2))?,
            };
            columns.push(conform(array, field.data_type())?);
        }
        columns.push(Arc::new(BooleanArray::from(
            rows.iter().map(|r| r.3).collect::<Vec<_>>(),
        )));
        let mut keys = self.keys.clone();
        if self.scd_type == 2 {
            keys.push(START_AT.to_string());
        }
        Ok(crate::storage::TableUpsert {
            name: tables.target.to_string(),
            rows: vec![with_delete(&schema, columns)?],
            schema,
            keys,
            delete_column: UPSERT_DELETE.to_string(),
            replace: plan.replace,
            expire: None,
            partition_cols: tables.def.partition_cols.clone(),
            properties: tables
                .def
                .table_properties
                .iter()
                .filter(|(k, _)| !k.starts_with("pipelines."))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            comment: tables.def.comment.clone(),
            txn: Some(txn),
        })
    }

    /// The merge of `plan` into the flow's state.
    fn state_upsert(
        &self,
        tables: &Tables<'_>,
        plan: &Plan,
        txn: crate::storage::Txn,
        now: i64,
    ) -> Result<crate::storage::TableUpsert> {
        let schema = self.state_schema.clone();
        let mut columns: Vec<ArrayRef> = Vec::new();
        let mut rows: Vec<(Vec<Cell>, Cell, bool, bool)> = plan
            .state
            .iter()
            .map(|(cells, seq, deleted)| (cells.clone(), *seq, *deleted, false))
            .collect();
        let null = plan.seqs.len() - 1;
        if let (1, Some(cell)) = (self.scd_type, plan.floor) {
            let width = self.values.fields().len();
            rows.push((vec![(null, 0); width], cell, false, true));
        }
        if self.scd_type == 1 {
            for (n, j) in self.key_index.iter().enumerate() {
                let array = gather(&plan.sources[*j], rows.iter().map(|r| r.0[*j]))?;
                columns.push(conform(array, schema.field(n).data_type())?);
            }
            let n = self.key_index.len();
            columns.push(conform(
                gather(&plan.seqs, rows.iter().map(|r| r.1))?,
                schema.field(n).data_type(),
            )?);
            columns.push(Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )));
            columns.push(Arc::new(Int64Array::from(
                rows.iter().map(|r| r.2.then_some(now)).collect::<Vec<_>>(),
            )));
            columns.push(Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.3).collect::<Vec<_>>(),
            )));
        } else {
            let width = self.values.fields().len();
            for j in 0..width {
                let array = gather(&plan.sources[j], rows.iter().map(|r| r.0[j]))?;
                columns.push(conform(array, schema.field(j).data_type())?);
            }
            columns.push(conform(
                gather(&plan.seqs, rows.iter().map(|r| r.1))?,
                schema.field(width).data_type(),
            )?);
            columns.push(Arc::new(BooleanArray::from(
                rows.iter().map(|r| r.2).collect::<Vec<_>>(),
            )));
        }
        columns.push(Arc::new(BooleanArray::from(vec![false; rows.len()])));
        let mut keys = self.keys.clone();
        if self.scd_type == 2 {
            keys.push(SEQ.to_string());
        }
        let expire = (self.scd_type == 1).then(|| crate::storage::Expire {
            flag: DELETE.to_string(),
            at: DELETED_AT.to_string(),
            before: now - tables.tombstone_ttl * 1_000_000,
        });
        Ok(crate::storage::TableUpsert {
            name: tables.state.clone(),
            rows: vec![with_delete(&schema, columns)?],
            schema,
            keys,
            delete_column: UPSERT_DELETE.to_string(),
            replace: plan.replace,
            expire,
            partition_cols: Vec::new(),
            properties: BTreeMap::new(),
            comment: Some(format!("State of AUTO CDC flow `{}`", tables.flow)),
            txn: Some(txn),
        })
    }
}

/// One version of a key (type 2).
struct Version {
    start: OwnedRow,
    start_cell: Cell,
    end: Option<(OwnedRow, Cell)>,
    values: Vec<Cell>,
}

impl Version {
    fn same_as(&self, other: &Version, width: usize, compare: &mut Compare<'_>) -> Result<bool> {
        if self.end.as_ref().map(|e| &e.0) != other.end.as_ref().map(|e| &e.0) {
            return Ok(false);
        }
        for j in 0..width {
            if !compare.equal(j, self.values[j], other.values[j])? {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

fn flags(array: &ArrayRef) -> Vec<bool> {
    match array.as_any().downcast_ref::<BooleanArray>() {
        Some(b) => (0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect(),
        None => vec![false; array.len()],
    }
}

/// One array of the cells' values, in order.
fn gather(arrays: &[ArrayRef], cells: impl Iterator<Item = Cell>) -> Result<ArrayRef> {
    let indices: Vec<Cell> = cells.collect();
    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    interleave(&refs, &indices).map_err(|e| Error::Internal(e.to_string()))
}

fn conform(array: ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if array.data_type() == to {
        Ok(array)
    } else {
        datafusion::arrow::compute::cast(&array, to).map_err(|e| Error::Internal(e.to_string()))
    }
}

/// `batches` as one batch of `schema`: columns by name, cast where storage chose another
/// type (Delta reads strings back as views).
fn read_as(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let mut conformed = Vec::with_capacity(batches.len());
    for batch in batches {
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                let column = batch.column_by_name(f.name()).ok_or_else(|| {
                    Error::Internal(format!("stored CDC rows lack column `{}`", f.name()))
                })?;
                conform(column.clone(), f.data_type())
            })
            .collect::<Result<Vec<_>>>()?;
        conformed.push(
            RecordBatch::try_new(schema.clone(), columns)
                .map_err(|e| Error::Internal(e.to_string()))?,
        );
    }
    concat_batches(schema, &conformed).map_err(|e| Error::Internal(e.to_string()))
}

/// The rows with the delete marker column after `schema`'s columns.
fn with_delete(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(UPSERT_DELETE, DataType::Boolean, true));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(e.to_string()))
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
        }
    }
}
