//! The history of each key a batch touches, computed in memory from its known state and the
//! batch's changes: type 1 (latest row, tombstones, truncates) and type 2 (versions). The
//! result is a `Plan`: rows of cells that point into the batches they came from.

use std::cmp::Ordering;
use std::collections::HashMap;

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, RecordBatch, make_comparator, new_null_array,
};
use datafusion::arrow::compute::SortOptions;
use datafusion::arrow::row::{OwnedRow, RowConverter, Rows, SortField};

use super::apply::*;
use super::write::*;
use super::*;
use crate::error::{Error, Result};

/// A value of one column: which source batch and which row holds it.
pub(super) type Cell = (usize, usize);

/// The outcome of one batch, as rows of cells into `Plan::sources`.
pub(super) struct Plan {
    /// Arrays of the value columns, one list per column, one array per source batch.
    pub(super) sources: Vec<Vec<ArrayRef>>,
    /// Sequence arrays, one per source batch.
    pub(super) seqs: Vec<ArrayRef>,
    /// Target rows to upsert: value cells, and for type 2 the start and end sequences.
    pub(super) upserts: Vec<(Vec<Cell>, Option<Cell>, Option<Cell>)>,
    /// Target rows to delete: the key cells (type 2: and the version's start).
    pub(super) deletes: Vec<(Vec<Cell>, Option<Cell>)>,
    /// State rows: value (or key) cells, sequence, deleted.
    pub(super) state: Vec<(Vec<Cell>, Cell, bool)>,
    /// A truncate: replace target and state instead of merging; the new floor.
    pub(super) replace: bool,
    pub(super) floor: Option<Cell>,
}

impl Plan {
    pub(super) fn target_rows(&self) -> usize {
        self.upserts.len() + self.deletes.len()
    }
}

/// Source batches of cells: arrays per value column, sequences, and (after `finish`) a
/// trailing one-row batch of NULLs that `write.rs` points cells without a value at.
pub(super) struct Sources {
    pub(super) columns: Vec<Vec<ArrayRef>>,
    pub(super) seqs: Vec<ArrayRef>,
}

impl Sources {
    pub(super) fn new(layout: &Layout) -> Self {
        Sources {
            columns: vec![Vec::new(); layout.values.fields().len()],
            seqs: Vec::new(),
        }
    }

    /// Adds a batch whose first columns are the value columns and whose column `seq` (if
    /// any) is the sequence. Returns its index.
    pub(super) fn add(
        &mut self,
        layout: &Layout,
        batch: &RecordBatch,
        seq: Option<usize>,
    ) -> usize {
        let index = self.seqs.len();
        for (j, column) in self.columns.iter_mut().enumerate() {
            column.push(batch.column(j).clone());
        }
        self.seqs.push(match seq {
            Some(s) => batch.column(s).clone(),
            None => new_null_array(&layout.seq_type, batch.num_rows()),
        });
        index
    }

    /// The arrays per value column and the sequences, each ending with the NULL row.
    pub(super) fn finish(mut self, layout: &Layout) -> (Vec<Vec<ArrayRef>>, Vec<ArrayRef>) {
        for (column, field) in self.columns.iter_mut().zip(layout.values.fields()) {
            column.push(new_null_array(field.data_type(), 1));
        }
        self.seqs.push(new_null_array(&layout.seq_type, 1));
        (self.columns, self.seqs)
    }
}

/// Each key's events (keys as row bytes), in key order.
pub(super) type KeyedEvents = Vec<(Vec<u8>, Vec<Event>)>;

/// One change of a key, ordered by its sequence.
pub(super) struct Event {
    pub(super) seq: OwnedRow,
    pub(super) seq_cell: Cell,
    pub(super) delete: bool,
    pub(super) values: Vec<Cell>,
}

/// Value comparison of cells across source batches.
pub(super) struct Compare<'a> {
    pub(super) columns: &'a [Vec<ArrayRef>],
    pub(super) cache: HashMap<(usize, usize, usize), datafusion::arrow::array::DynComparator>,
}

impl Compare<'_> {
    pub(super) fn equal(&mut self, column: usize, a: Cell, b: Cell) -> Result<bool> {
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
    pub(super) fn events_by_key(
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

    pub(super) fn converters(&self) -> Result<(RowConverter, RowConverter)> {
        let keys = RowConverter::new(
            self.key_index
                .iter()
                .map(|i| SortField::new(self.values.field(*i).data_type().clone()))
                .collect(),
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        Ok((keys, seq_converter(&self.seq_type)?))
    }

    /// The row-format keys of `batch`, whose key columns are at `positions`.
    pub(super) fn key_rows(
        &self,
        keys: &RowConverter,
        batch: &RecordBatch,
        positions: &[usize],
    ) -> Result<Rows> {
        let columns: Vec<ArrayRef> = positions.iter().map(|i| batch.column(*i).clone()).collect();
        keys.convert_columns(&columns)
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// The row-format sequences of `column`, cast to the sequence's stored type.
    pub(super) fn seq_rows(&self, seqs: &RowConverter, column: &ArrayRef) -> Result<Rows> {
        seqs.convert_columns(&[conform(column.clone(), &self.seq_type)?])
            .map_err(|e| Error::Internal(e.to_string()))
    }

    /// Type 1: per key, the changes above its last sequence (and the floor) in order.
    pub(super) fn type1(
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
        let ev = sources.add(self, events, Some(width));
        let event_keys = self.key_rows(&keys, events, &self.key_index)?;
        let event_seqs = self.seq_rows(&seqs, events.column(width))?;
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
            let state_keys = self.key_rows(&keys, state, &(0..n_keys).collect::<Vec<_>>())?;
            let state_seqs = self.seq_rows(&seqs, state.column(n_keys))?;
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
            let src = sources.add(self, &batch, None);
            let old_keys = self.key_rows(&keys, &batch, &self.key_index)?;
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
        let (columns, seqs_out) = sources.finish(self);
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
    pub(super) fn type2(
        &self,
        spec: &AutoCdc,
        events: &RecordBatch,
        state: &RecordBatch,
    ) -> Result<Plan> {
        let width = self.values.fields().len();
        let (keys, seqs) = self.converters()?;
        let mut sources = Sources::new(self);
        let ev = sources.add(self, events, Some(width));
        let event_keys = self.key_rows(&keys, events, &self.key_index)?;
        let event_seqs = self.seq_rows(&seqs, events.column(width))?;
        let (grouped, _) = self.events_by_key(events, ev, &event_seqs, &event_keys);
        // Known changes per key, from the state.
        let mut known: HashMap<Vec<u8>, Vec<Event>> = HashMap::new();
        if state.num_rows() > 0 {
            let st = sources.add(self, state, Some(width));
            let state_keys = self.key_rows(&keys, state, &self.key_index)?;
            let state_seqs = self.seq_rows(&seqs, state.column(width))?;
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
        let (columns, seqs_out) = sources.finish(self);
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
    pub(super) fn walk(
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
}

/// One version of a key (type 2).
pub(super) struct Version {
    pub(super) start: OwnedRow,
    pub(super) start_cell: Cell,
    pub(super) end: Option<(OwnedRow, Cell)>,
    pub(super) values: Vec<Cell>,
}

impl Version {
    pub(super) fn same_as(
        &self,
        other: &Version,
        width: usize,
        compare: &mut Compare<'_>,
    ) -> Result<bool> {
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

pub(super) fn flags(array: &ArrayRef) -> Vec<bool> {
    match array.as_any().downcast_ref::<BooleanArray>() {
        Some(b) => (0..b.len()).map(|i| b.is_valid(i) && b.value(i)).collect(),
        None => vec![false; array.len()],
    }
}
