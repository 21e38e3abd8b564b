//! Type 1 without truncates or NULL-keeping updates, the common case: per key only the change
//! with the highest sequence can matter, so a batch is reduced to it in one hashing pass over
//! the events, compared with the key's state, and the survivors are taken whole as the rows of
//! both merges. Same result as `history.rs`'s general walk, without per-row histories.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, Int64Array, RecordBatch, UInt32Array};
use datafusion::arrow::compute::take;
use datafusion::arrow::row::OwnedRow;
use datafusion::common::HashMap;

use crate::error::{Error, Result};

use super::apply::Layout;
use super::history::flags;
use super::write::{conform, with_delete};

/// The rows of both merges of one batch.
pub(super) struct Latest {
    /// Target rows: the target's columns and the delete marker.
    pub(super) target: RecordBatch,
    /// State rows: the state's columns and the delete marker.
    pub(super) state: RecordBatch,
}

impl Latest {
    /// Target rows inserted, updated or deleted.
    pub(super) fn rows(&self) -> usize {
        self.target.num_rows()
    }
}

impl Layout {
    /// The batch's latest change per key, kept when it is above the key's last sequence and
    /// the last truncate; `None` when the batch has a truncate (the general walk handles it).
    pub(super) fn type1_latest(
        &self,
        events: &RecordBatch,
        state: &RecordBatch,
        floor: Option<&OwnedRow>,
        target: &datafusion::arrow::datatypes::SchemaRef,
        now: i64,
    ) -> Result<Option<Latest>> {
        let internal = |e: datafusion::arrow::error::ArrowError| Error::Internal(e.to_string());
        let width = self.values.fields().len();
        if flags(events.column(width + 2)).iter().any(|t| *t) {
            return Ok(None);
        }
        let (keys, seqs) = self.converters()?;
        let event_keys = self.key_rows(&keys, events, &self.key_index)?;
        let event_seqs = self.seq_rows(&seqs, events.column(width))?;
        // The highest sequence per key; the first to arrive among equal ones.
        let mut latest: HashMap<&[u8], usize> = HashMap::with_capacity(events.num_rows());
        for i in 0..events.num_rows() {
            latest
                .entry(event_keys.row(i).data())
                .and_modify(|j| {
                    if event_seqs.row(i) > event_seqs.row(*j) {
                        *j = i;
                    }
                })
                .or_insert(i);
        }
        // Each key's last applied sequence, from the state (floor rows left out).
        let n_keys = self.key_index.len();
        let state_keys = self.key_rows(&keys, state, &(0..n_keys).collect::<Vec<_>>())?;
        let state_seqs = self.seq_rows(&seqs, state.column(n_keys))?;
        let floors = flags(state.column(n_keys + 3));
        let mut known: HashMap<&[u8], usize> = HashMap::with_capacity(state.num_rows());
        for (i, floor_row) in floors.iter().enumerate() {
            if !floor_row {
                known.insert(state_keys.row(i).data(), i);
            }
        }
        let mut kept: Vec<u32> = latest
            .into_iter()
            .filter(|(key, i)| {
                let seq = event_seqs.row(*i);
                let above_key = known.get(key).is_none_or(|s| seq > state_seqs.row(*s));
                let above_floor = floor.is_none_or(|f| seq > f.row());
                above_key && above_floor
            })
            .map(|(_, i)| i as u32)
            .collect();
        kept.sort_unstable();
        let indices = UInt32Array::from(kept);
        let pick = |column: &ArrayRef| take(column.as_ref(), &indices, None).map_err(internal);
        let deletes = pick(events.column(width + 1))?;
        let deleted = flags(&deletes);

        // Target: the change's row; a delete matches by key and its other columns are unused.
        let mut columns = Vec::with_capacity(target.fields().len() + 1);
        for field in target.fields() {
            let j = self
                .values
                .index_of(field.name())
                .map_err(|e| Error::Internal(e.to_string()))?;
            columns.push(conform(pick(events.column(j))?, field.data_type())?);
        }
        columns.push(Arc::new(BooleanArray::from(deleted.clone())) as ArrayRef);
        let target_rows = with_delete(target, columns)?;

        // State: key, sequence, deleted, when, not a floor.
        let mut columns = Vec::with_capacity(n_keys + 5);
        for (n, j) in self.key_index.iter().enumerate() {
            columns.push(conform(
                pick(events.column(*j))?,
                self.state_schema.field(n).data_type(),
            )?);
        }
        columns.push(conform(
            pick(events.column(width))?,
            self.state_schema.field(n_keys).data_type(),
        )?);
        columns.push(Arc::new(BooleanArray::from(deleted.clone())) as ArrayRef);
        columns.push(Arc::new(Int64Array::from(
            deleted.iter().map(|d| d.then_some(now)).collect::<Vec<_>>(),
        )) as ArrayRef);
        columns.push(Arc::new(BooleanArray::from(vec![false; deleted.len()])) as ArrayRef);
        columns.push(Arc::new(BooleanArray::from(vec![false; deleted.len()])) as ArrayRef);
        let state_rows = with_delete(&self.state_schema, columns)?;
        Ok(Some(Latest {
            target: target_rows,
            state: state_rows,
        }))
    }
}
