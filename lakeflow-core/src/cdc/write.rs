//! The merges a batch commits: the target's rows and the flow's state, assembled from a
//! history `Plan`'s cells.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, Int64Array, RecordBatch};
use datafusion::arrow::compute::{concat_batches, interleave};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use super::apply::*;
use super::history::*;
use super::*;
use crate::error::{Error, Result};

impl Layout {
    /// The merge of `plan` into the target.
    pub(super) fn target_upsert(
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
        Ok(self.target_merge(tables, with_delete(&schema, columns)?, plan.replace, txn))
    }

    /// The target merge of `rows` (the target's columns and the delete marker).
    pub(super) fn target_merge(
        &self,
        tables: &Tables<'_>,
        rows: RecordBatch,
        replace: bool,
        txn: crate::storage::Txn,
    ) -> crate::storage::TableUpsert {
        let mut keys = self.keys.clone();
        if self.scd_type == 2 {
            keys.push(START_AT.to_string());
        }
        crate::storage::TableUpsert {
            name: tables.target.to_string(),
            rows: vec![rows],
            schema: tables.target_schema.clone(),
            keys,
            delete_column: UPSERT_DELETE.to_string(),
            replace,
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
        }
    }

    /// The merge of `plan` into the flow's state.
    pub(super) fn state_upsert(
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
        Ok(self.state_merge(
            tables,
            with_delete(&schema, columns)?,
            plan.replace,
            txn,
            now,
        ))
    }

    /// The state merge of `rows` (the state's columns and the delete marker); type 1 also
    /// drops tombstones older than the time-to-live.
    pub(super) fn state_merge(
        &self,
        tables: &Tables<'_>,
        rows: RecordBatch,
        replace: bool,
        txn: crate::storage::Txn,
        now: i64,
    ) -> crate::storage::TableUpsert {
        let mut keys = self.keys.clone();
        if self.scd_type == 2 {
            keys.push(SEQ.to_string());
        }
        let expire = (self.scd_type == 1).then(|| crate::storage::Expire {
            flag: DELETE.to_string(),
            at: DELETED_AT.to_string(),
            before: now - tables.tombstone_ttl * 1_000_000,
        });
        crate::storage::TableUpsert {
            name: tables.state.clone(),
            rows: vec![rows],
            schema: self.state_schema.clone(),
            keys,
            delete_column: UPSERT_DELETE.to_string(),
            replace,
            expire,
            partition_cols: Vec::new(),
            properties: BTreeMap::new(),
            comment: Some(format!("State of AUTO CDC flow `{}`", tables.flow)),
            txn: Some(txn),
        }
    }
}

/// One array of the cells' values, in order.
pub(super) fn gather(arrays: &[ArrayRef], cells: impl Iterator<Item = Cell>) -> Result<ArrayRef> {
    let indices: Vec<Cell> = cells.collect();
    let refs: Vec<&dyn Array> = arrays.iter().map(|a| a.as_ref()).collect();
    interleave(&refs, &indices).map_err(|e| Error::Internal(e.to_string()))
}

pub(super) fn conform(array: ArrayRef, to: &DataType) -> Result<ArrayRef> {
    if array.data_type() == to {
        Ok(array)
    } else {
        datafusion::arrow::compute::cast(&array, to).map_err(|e| Error::Internal(e.to_string()))
    }
}

/// `batches` as one batch of `schema`: columns by name, cast where storage chose another
/// type (Delta reads strings back as views), NULL where the stored rows predate a column.
pub(super) fn read_as(schema: &SchemaRef, batches: &[RecordBatch]) -> Result<RecordBatch> {
    let mut conformed = Vec::with_capacity(batches.len());
    for batch in batches {
        let columns = schema
            .fields()
            .iter()
            .map(|f| {
                match batch.column_by_name(f.name()) {
                    Some(column) => conform(column.clone(), f.data_type()),
                    // A column the source gained since these rows were stored (schema
                    // evolution): they read NULL in it, as the target's rows do.
                    None => Ok(datafusion::arrow::array::new_null_array(
                        f.data_type(),
                        batch.num_rows(),
                    )),
                }
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
pub(super) fn with_delete(schema: &SchemaRef, columns: Vec<ArrayRef>) -> Result<RecordBatch> {
    let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
    fields.push(Field::new(UPSERT_DELETE, DataType::Boolean, true));
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .map_err(|e| Error::Internal(e.to_string()))
}
