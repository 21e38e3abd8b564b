//! One batch of an AUTO CDC flow: its changes projected to events, the state and target rows
//! of its keys read, the history computed (`history.rs`), and the two merges (`write.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::row::{OwnedRow, RowConverter, SortField};
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, LogicalPlan, cast, lit};
use datafusion::prelude::{SessionContext, coalesce, col};

use super::write::*;
use super::*;
use crate::error::{Error, Result};

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
    /// The target merge of this batch already committed (a rerun after a crash between the
    /// two merges).
    pub target_done: bool,
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
/// merged into the target, then into the state (skipping the target when
/// [`Tables::target_done`]). The changes are read, and the merges made, where `engine` runs
/// plans and writes files.
pub(crate) async fn apply_batch(
    spec: &AutoCdc,
    tables: &Tables<'_>,
    session: &SessionContext,
    engine: &dyn crate::engine::Engine,
    storage: &dyn crate::storage::Storage,
    changes: LogicalPlan,
    txn: crate::storage::Txn,
) -> Result<Applied> {
    let target_done = tables.target_done;
    let mut layout = Layout::new(spec, tables)?;
    let changes = DataFrame::new(session.state(), changes);
    let sequence = spec.sequence_by.as_deref().unwrap_or_default();
    let seq_type = {
        use datafusion::logical_expr::ExprSchemable;
        crate::query::sql_expr(&changes, sequence)?.get_type(changes.schema())?
    };
    layout.set_seq_type(seq_type, storage)?;
    // The source's new rows are read where the engine runs its plans.
    let events = layout.project(spec, changes)?.into_unoptimized_plan();
    let mut collected = Vec::new();
    for stream in engine.execute(events).await? {
        collected.extend(futures::TryStreamExt::try_collect::<Vec<_>>(stream).await?);
    }
    let events = read_as(&layout.event_schema, &collected)?;
    layout.check_sequences(tables.flow, &events)?;
    let keys = distinct_keys(session, &layout, &events)?;
    // The state is loaded once: its rows for the batch's keys, and (for a flow that applies
    // truncates) the floor the last truncate left.
    let state_table = storage.table(&tables.state).await?;
    let state = match &state_table {
        Some(table) => {
            semi_join(
                session.read_table(table.clone())?,
                &layout.keys,
                keys.clone(),
            )
            .await?
        }
        None => Vec::new(),
    };
    let state = read_as(&layout.state_schema, &state)?;
    let floor = match state_table {
        Some(table) if layout.scd_type == 1 && spec.apply_as_truncates.is_some() => {
            floor(session, table, &layout).await?
        }
        _ => None,
    };
    let old_rows = if layout.scd_type == 1 && spec.ignore_null_updates && !target_done {
        match storage.table(tables.target).await? {
            Some(table) => {
                let rows = semi_join(session.read_table(table)?, &layout.keys, keys).await?;
                read_as(&tables.target_schema, &rows)?
            }
            None => RecordBatch::new_empty(tables.target_schema.clone()),
        }
    } else {
        RecordBatch::new_empty(tables.target_schema.clone())
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    if layout.scd_type == 1 && !spec.ignore_null_updates {
        let latest =
            layout.type1_latest(&events, &state, floor.as_ref(), &tables.target_schema, now)?;
        if let Some(latest) = latest {
            let rows = latest.rows();
            let mut version = None;
            if !target_done && rows > 0 {
                let upsert = layout.target_merge(tables, latest.target, false, txn.clone());
                version = Some(
                    super::merge::merge(upsert, engine, storage, session)
                        .await?
                        .version,
                );
            }
            crate::failpoint::hit("cdc_between_merges");
            let upsert = layout.state_merge(tables, latest.state, false, txn, now);
            super::merge::merge(upsert, engine, storage, session).await?;
            return Ok(Applied {
                rows: rows as u64,
                version,
            });
        }
    }
    let plan = if layout.scd_type == 1 {
        layout.type1(spec, &events, &state, &old_rows, floor)?
    } else {
        layout.type2(spec, &events, &state)?
    };
    let rows = plan.target_rows();
    let mut version = None;
    if !target_done && (rows > 0 || plan.replace) {
        let upsert = layout.target_upsert(tables, &plan, txn.clone())?;
        version = Some(
            super::merge::merge(upsert, engine, storage, session)
                .await?
                .version,
        );
    }
    crate::failpoint::hit("cdc_between_merges");
    let upsert = layout.state_upsert(tables, &plan, txn, now)?;
    super::merge::merge(upsert, engine, storage, session).await?;
    Ok(Applied {
        rows: rows as u64,
        version,
    })
}

/// Column positions and schemas of one flow's batches.
pub(super) struct Layout {
    pub(super) scd_type: u8,
    /// The target's value columns (without `__START_AT`/`__END_AT`), stored types.
    pub(super) values: SchemaRef,
    /// The keys.
    pub(super) keys: Vec<String>,
    /// Positions of the keys in `values`.
    pub(super) key_index: Vec<usize>,
    /// Positions of the tracked columns in `values` (type 2).
    pub(super) tracked: Vec<usize>,
    /// The stored type of the sequence.
    pub(super) seq_type: DataType,
    /// Events: `values`, then sequence, delete, truncate.
    pub(super) event_schema: SchemaRef,
    /// State rows: type 1 keys, sequence, deleted, deleted-at, floor; type 2 `values`,
    /// sequence, deleted.
    pub(super) state_schema: SchemaRef,
}

impl Layout {
    pub(super) fn new(spec: &AutoCdc, tables: &Tables<'_>) -> Result<Self> {
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

    pub(super) fn set_seq_type(
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
    pub(super) fn project(&self, spec: &AutoCdc, changes: DataFrame) -> Result<DataFrame> {
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
        let seq = crate::query::sql_expr(&changes, sequence)?;
        exprs.push(cast(seq, self.seq_type.clone()).alias(SEQ));
        for (condition, name) in [
            (&spec.apply_as_deletes, DELETE),
            (&spec.apply_as_truncates, TRUNCATE),
        ] {
            let flag = match condition {
                Some(c) => coalesce(vec![crate::query::sql_expr(&changes, c)?, lit(false)]),
                None => lit(false),
            };
            exprs.push(flag.alias(name));
        }
        Ok(changes.select(exprs)?)
    }

    /// Every change must have a sequence; the error names the key of the first without.
    pub(super) fn check_sequences(&self, flow: &str, events: &RecordBatch) -> Result<()> {
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

    pub(super) fn describe_key(&self, batch: &RecordBatch, row: usize) -> String {
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
pub(super) fn distinct_keys(
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
pub(super) async fn semi_join(
    table: DataFrame,
    keys: &[String],
    wanted: DataFrame,
) -> Result<Vec<RecordBatch>> {
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
pub(super) async fn floor(
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

pub(super) fn seq_converter(seq_type: &DataType) -> Result<RowConverter> {
    RowConverter::new(vec![SortField::new(seq_type.clone())]).map_err(|e| {
        Error::Internal(format!(
            "the sequence type {seq_type} cannot be ordered: {e}"
        ))
    })
}
