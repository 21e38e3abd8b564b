//! Merges whose files other processes rewrite (copy-on-write): [`DeltaStorage`]'s
//! `prepare_merge` stages the merge's rows as a table of their own, selects the files that
//! may hold one of the merge's keys (by the key columns' statistics in the log) or an expired
//! row, and `commit_merge` commits the files the tasks wrote in place of those, in one commit
//! with the batch's transaction, refusing if the table moved in between.

use std::collections::HashSet;

use datafusion::arrow::array::Array;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ScalarValue;
use deltalake::DeltaTableError;
use deltalake::kernel::transaction::CommitBuilder;
use deltalake::kernel::{Action, Add};
use deltalake::protocol::DeltaOperation;
use lakeflow_core::storage::{
    Committed, Expire, FilesPrepared, MergeFiles, MergePrepared, Storage, TableUpsert, TableWrite,
};
use lakeflow_core::{Error, Result};
use serde_json::{Value, json};

use crate::{DeltaStorage, FileListTable, Head, checkpoint_if_due, commit_properties, delta_error};

/// Text statistics of at least this many characters may be truncated (delta-rs and Spark
/// cut them), so they bound nothing.
const TRUNCATED_STATS: usize = 32;

impl DeltaStorage {
    pub(crate) async fn prepare_merged(
        &self,
        upsert: &TableUpsert,
    ) -> Result<Option<MergePrepared>> {
        if !self.portable || upsert.replace {
            return Ok(None);
        }
        let location = self.table_location(&upsert.name);
        let Some(table) = self.load(&upsert.name, false).await? else {
            return Ok(None);
        };
        if table.version().is_none() {
            return Ok(None);
        }
        if let Some(version) = crate::already_committed(&table, upsert.txn.as_ref()).await? {
            return Ok(Some(MergePrepared::Done(Committed { version })));
        }
        let state = table.snapshot().map_err(|e| delta_error(&location, e))?;
        let stored = state.snapshot().arrow_schema();
        // The rewrite writes the upsert's columns: a stored column it lacks would be lost.
        let lacks = stored
            .fields()
            .iter()
            .any(|f| upsert.schema.field_with_name(f.name()).is_err());
        if lacks || state.metadata().partition_columns() != upsert.partition_cols {
            return Ok(None);
        }
        let head = Head {
            name: upsert.name.clone(),
            schema: upsert.schema.clone(),
            partition_cols: upsert.partition_cols.clone(),
            properties: upsert.properties.clone(),
            comment: upsert.comment.clone(),
            txn: upsert.txn.clone(),
        };
        let target = match self.prepare_written(head, false).await? {
            None => return Ok(None),
            Some(FilesPrepared::Done(committed)) => {
                return Ok(Some(MergePrepared::Done(committed)));
            }
            Some(FilesPrepared::Write(target)) => target,
        };
        let rows = self.stage(upsert).await?;
        // Read again: preparing may have rewritten the table (a wider type).
        let table = self.load(&upsert.name, false).await?.ok_or_else(|| {
            Error::Internal(format!("table `{location}` vanished before its merge"))
        })?;
        let state = table.snapshot().map_err(|e| delta_error(&location, e))?;
        let ranges = key_ranges(upsert)?;
        let selected: HashSet<String> = state
            .log_data()
            .iter()
            .filter(|file| touches(file.stats().as_deref(), &ranges, upsert.expire.as_ref()))
            .map(|file| file.path().to_string())
            .collect();
        let touched = FileListTable::of_snapshot(&table, &upsert.name, Some(&selected))?;
        Ok(Some(MergePrepared::Write(MergeFiles {
            touched: std::sync::Arc::new(touched),
            rows,
            target,
            removes: json!({
                "version": table.version(),
                "paths": selected.into_iter().collect::<Vec<_>>(),
            }),
        })))
    }

    /// `upsert`'s rows as a table of their own (`_lakeflow/staged/..`, replaced by every
    /// merge into the same table), read as a file list.
    async fn stage(
        &self,
        upsert: &TableUpsert,
    ) -> Result<std::sync::Arc<dyn datafusion::catalog::TableProvider>> {
        let name = lakeflow_core::storage::staged_table(&upsert.name);
        let schema = upsert.rows.first().map(|b| b.schema()).ok_or_else(|| {
            Error::Internal(format!("a merge into `{}` without rows", upsert.name))
        })?;
        let rows =
            concat_batches(&schema, &upsert.rows).map_err(|e| Error::Internal(e.to_string()))?;
        let stream: datafusion::execution::SendableRecordBatchStream = Box::pin(
            datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                schema.clone(),
                futures::stream::iter([Ok(rows)]),
            ),
        );
        self.replace(TableWrite {
            name: name.clone(),
            schema,
            streams: vec![stream],
            partition_cols: Vec::new(),
            properties: Default::default(),
            comment: Some(format!("The rows of the last merge into `{}`", upsert.name)),
            txn: None,
        })
        .await?;
        self.table(&name).await?.ok_or_else(|| {
            Error::Internal(format!("the staged rows of `{}` vanished", upsert.name))
        })
    }

    pub(crate) async fn commit_merged(
        &self,
        upsert: &TableUpsert,
        merge: &MergeFiles,
        files: Vec<Value>,
    ) -> Result<Committed> {
        let location = self.table_location(&upsert.name);
        let error = |e: DeltaTableError| delta_error(&location, e);
        let table = self.load(&upsert.name, false).await?.ok_or_else(|| {
            Error::Internal(format!("table `{location}` vanished before its merge"))
        })?;
        if let Some(version) = crate::already_committed(&table, upsert.txn.as_ref()).await? {
            return Ok(Committed { version });
        }
        let read = merge.removes["version"].as_u64();
        if table.version() != read {
            return Err(Error::Storage {
                location: location.clone(),
                message: format!(
                    "the table changed (version {:?}, read at {read:?}) while a merge into it was written; nothing was committed: run the pipeline again",
                    table.version()
                ),
                source: None,
            });
        }
        let paths: HashSet<&str> = merge.removes["paths"]
            .as_array()
            .map(|paths| paths.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let state = table.snapshot().map_err(error)?.clone();
        let stored = state.snapshot().arrow_schema();
        let mut actions = Vec::with_capacity(paths.len() + files.len() + 1);
        if let Some(schema) = crate::written::with_added_columns(&stored, &upsert.schema) {
            actions.push(Action::Metadata(crate::metadata_with_schema(
                &state, &schema, &location,
            )?));
        }
        actions.extend(
            state
                .log_data()
                .iter()
                .filter(|file| paths.contains(file.path().as_ref()))
                .map(|file| Action::Remove(file.remove_action(true))),
        );
        for file in files {
            let add: Add = serde_json::from_value(file)
                .map_err(|e| Error::Internal(format!("a file written for `{location}`: {e}")))?;
            actions.push(Action::Add(add));
        }
        let operation = DeltaOperation::Merge {
            predicate: None,
            merge_predicate: Some(
                upsert
                    .keys
                    .iter()
                    .map(|k| format!("t.{k} = s.{k}"))
                    .collect::<Vec<_>>()
                    .join(" AND "),
            ),
            matched_predicates: Vec::new(),
            not_matched_predicates: Vec::new(),
            not_matched_by_source_predicates: Vec::new(),
        };
        let commit = CommitBuilder::from(commit_properties(upsert.txn.clone()))
            .with_actions(actions)
            .build(Some(&state), table.log_store(), operation)
            .await;
        if let Err(e) = commit {
            return self
                .after_conflict(&upsert.name, upsert.txn.as_ref(), e)
                .await;
        }
        let mut table = table;
        table.load().await.map_err(error)?;
        checkpoint_if_due(&table, &location).await;
        let version = table.version().ok_or_else(|| {
            Error::Internal(format!(
                "Delta table `{location}` has no version after a merge"
            ))
        })?;
        Ok(Committed {
            version: version as u64,
        })
    }
}

/// A key column, its type, and the lowest and highest value a merge gives it (`None`: all
/// NULL).
type KeyRange = (String, DataType, Option<(ScalarValue, ScalarValue)>);

/// Per key column, the lowest and highest value among the merge's rows (`None`: all NULL,
/// so the column matches no stored row).
fn key_ranges(upsert: &TableUpsert) -> Result<Vec<KeyRange>> {
    let internal =
        |e: &dyn std::fmt::Display| Error::Internal(format!("merge into `{}`: {e}", upsert.name));
    let mut ranges = Vec::with_capacity(upsert.keys.len());
    for key in &upsert.keys {
        let field = upsert
            .schema
            .field_with_name(key)
            .map_err(|e| internal(&e))?;
        let mut range: Option<(ScalarValue, ScalarValue)> = None;
        for batch in &upsert.rows {
            let column = batch
                .column_by_name(key)
                .ok_or_else(|| internal(&format!("no key column `{key}`")))?;
            let column = datafusion::arrow::compute::cast(column, field.data_type())
                .map_err(|e| internal(&e))?;
            for i in 0..column.len() {
                if column.is_null(i) {
                    continue;
                }
                let value = ScalarValue::try_from_array(&column, i).map_err(|e| internal(&e))?;
                range = Some(match range {
                    None => (value.clone(), value),
                    Some((lo, hi)) => {
                        let lo = if value < lo { value.clone() } else { lo };
                        let hi = if value > hi { value } else { hi };
                        (lo, hi)
                    }
                });
            }
        }
        ranges.push((key.clone(), field.data_type().clone(), range));
    }
    Ok(ranges)
}

/// Whether a file with statistics `stats` (its `add` action's JSON) may hold a row whose keys
/// fall in `ranges` or that `expire` marks expired. Without statistics it may.
fn touches(stats: Option<&str>, ranges: &[KeyRange], expire: Option<&Expire>) -> bool {
    let Some(stats) = stats.and_then(|s| serde_json::from_str::<Value>(s).ok()) else {
        return true;
    };
    let records = stats["numRecords"].as_i64();
    let all_null =
        |column: &str| records.is_some() && stats["nullCount"][column].as_i64() == records;
    let keys = ranges.iter().all(|(column, data_type, range)| {
        let Some((lo, hi)) = range else {
            return false;
        };
        if all_null(column) {
            return false;
        }
        let bound = |which: &str| {
            let value = &stats[which][column];
            let text = match value {
                Value::String(s) if s.chars().count() < TRUNCATED_STATS => s.clone(),
                Value::Number(n) => n.to_string(),
                _ => return None,
            };
            prunable(data_type)
                .then(|| ScalarValue::try_from_string(text, data_type).ok())
                .flatten()
        };
        match (bound("minValues"), bound("maxValues")) {
            (Some(min), Some(max)) => !(max < *lo || min > *hi),
            _ => true,
        }
    });
    let expired = expire.is_some_and(|expire| {
        if all_null(&expire.at) {
            return false;
        }
        stats["minValues"][&expire.at]
            .as_i64()
            .is_none_or(|min| min < expire.before)
    });
    keys || expired
}

/// Types whose statistics bound their values exactly (timestamps are cut to milliseconds in
/// the log, floating point has NaN: those files are always read).
fn prunable(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64
            | DataType::Date32
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::datatypes::DataType;
    use datafusion::common::ScalarValue;
    use lakeflow_core::storage::Expire;

    use super::touches;

    fn stats(min: i64, max: i64, nulls: i64, at: Option<i64>) -> String {
        let at = at.map_or(String::new(), |at| format!(r#","at":{at}"#));
        format!(
            r#"{{"numRecords":10,"minValues":{{"k":{min}{at}}},"maxValues":{{"k":{max}}},"nullCount":{{"k":{nulls},"at":{}}}}}"#,
            if at.is_empty() { 10 } else { 0 }
        )
    }

    #[test]
    fn a_file_is_touched_when_its_statistics_may_hold_a_key_or_an_expired_row() {
        let keys = |lo: i64, hi: i64| {
            vec![(
                "k".to_string(),
                DataType::Int64,
                Some((ScalarValue::Int64(Some(lo)), ScalarValue::Int64(Some(hi)))),
            )]
        };
        // Key ranges that overlap the file's, and ones that do not.
        assert!(touches(Some(&stats(10, 20, 0, None)), &keys(15, 30), None));
        assert!(touches(Some(&stats(10, 20, 0, None)), &keys(1, 10), None));
        assert!(!touches(Some(&stats(10, 20, 0, None)), &keys(21, 30), None));
        assert!(!touches(Some(&stats(10, 20, 0, None)), &keys(1, 9), None));
        // No statistics, or a merge of NULL keys only.
        assert!(touches(None, &keys(21, 30), None));
        let null_keys = vec![("k".to_string(), DataType::Int64, None)];
        assert!(!touches(Some(&stats(10, 20, 0, None)), &null_keys, None));
        // A timestamp's statistics are cut to milliseconds: they bound nothing.
        let at_ts = vec![(
            "k".to_string(),
            DataType::Timestamp(datafusion::arrow::datatypes::TimeUnit::Microsecond, None),
            Some((
                ScalarValue::TimestampMicrosecond(Some(1), None),
                ScalarValue::TimestampMicrosecond(Some(2), None),
            )),
        )];
        assert!(touches(Some(&stats(10, 20, 0, None)), &at_ts, None));
        // Expired rows: the oldest deletion time before the cut.
        let expire = Expire {
            flag: "deleted".into(),
            at: "at".into(),
            before: 100,
        };
        assert!(touches(
            Some(&stats(10, 20, 0, Some(50))),
            &keys(21, 30),
            Some(&expire)
        ));
        assert!(!touches(
            Some(&stats(10, 20, 0, Some(150))),
            &keys(21, 30),
            Some(&expire)
        ));
        assert!(!touches(
            Some(&stats(10, 20, 0, None)),
            &keys(21, 30),
            Some(&expire)
        ));
    }
}
