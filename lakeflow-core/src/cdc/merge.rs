//! A batch's merges where the engine writes files: the storage stages the merge's rows and
//! names the files it touches ([`Storage::prepare_merge`]); the engine's tasks read those
//! files, take the merge's keys out of them, add its new rows and write the result; the
//! storage commits the new files in place of the touched ones, with the batch's transaction.
//! So the stored rows of the target and of the state are read and written by the tasks, not
//! here. Any other engine or storage merges the rows itself ([`Storage::upsert`]).

use datafusion::common::{Column, JoinType, ScalarValue};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, cast, lit};
use datafusion::prelude::{SessionContext, col, not};

use crate::engine::Engine;
use crate::error::Result;
use crate::expectations::Checker;
use crate::storage::{Committed, MergeFiles, MergePrepared, Storage, TableUpsert};

/// Merges `upsert` into its table: on the engine's tasks when both the storage and the
/// engine can, else by the storage.
pub(crate) async fn merge(
    upsert: TableUpsert,
    engine: &dyn Engine,
    storage: &dyn Storage,
    session: &SessionContext,
) -> Result<Committed> {
    if !engine.portable_scans() {
        return storage.upsert(upsert).await;
    }
    let merge = match storage.prepare_merge(&upsert).await? {
        None => return storage.upsert(upsert).await,
        Some(MergePrepared::Done(committed)) => return Ok(committed),
        Some(MergePrepared::Write(merge)) => merge,
    };
    let plan = rewrite(&upsert, &merge, session)?.into_unoptimized_plan();
    let (plan, checker) = Checker::new(&upsert.name, &[], false, plan, &session.state())?;
    if !engine.writes_files(&plan) {
        return storage.upsert(upsert).await;
    }
    let written = engine
        .execute_into_files(plan, &checker, &merge.target, None)
        .await?;
    storage.commit_merge(&upsert, &merge, written.files).await
}

/// The rows of the touched files after the merge: those whose key the merge does not name
/// (and, with `expire`, that have not expired), then the merge's rows that are not deletes;
/// `upsert`'s columns, in its order and types (NULL where the stored rows predate a column).
fn rewrite(
    upsert: &TableUpsert,
    merge: &MergeFiles,
    session: &SessionContext,
) -> Result<DataFrame> {
    let rows = session.read_table(merge.rows.clone())?;
    let touched = session.read_table(merge.touched.clone())?;
    let named: Vec<String> = upsert.keys.iter().map(|k| format!("__merge_{k}")).collect();
    let keys = rows.clone().select(
        upsert
            .keys
            .iter()
            .zip(&named)
            .map(|(k, n)| col(Column::from_name(k)).alias(n))
            .collect::<Vec<_>>(),
    )?;
    // A NULL key matches nothing, as in the storage's own merge (`t.k = s.k`). Columns are
    // named exactly (`__START_AT` is not `__start_at`).
    let on: Vec<Expr> = upsert
        .keys
        .iter()
        .zip(&named)
        .map(|(k, n)| col(Column::from_name(k)).eq(col(Column::from_name(n))))
        .collect();
    let mut kept = touched.join_on(keys, JoinType::LeftAnti, on)?;
    if let Some(expire) = &upsert.expire {
        let expired = col(Column::from_name(&expire.flag))
            .and(col(Column::from_name(&expire.at)).lt(lit(expire.before)));
        kept = kept.filter(expired.is_not_true())?;
    }
    let columns = |frame: &DataFrame| -> Vec<Expr> {
        upsert
            .schema
            .fields()
            .iter()
            .map(|field| {
                let value = if frame
                    .schema()
                    .has_column_with_unqualified_name(field.name())
                {
                    col(Column::from_name(field.name()))
                } else {
                    lit(ScalarValue::Null)
                };
                cast(value, field.data_type().clone()).alias(field.name())
            })
            .collect()
    };
    let kept_columns = columns(&kept);
    let kept = kept.select(kept_columns)?;
    let added = rows.filter(not(col(Column::from_name(&upsert.delete_column))))?;
    let added_columns = columns(&added);
    let added = added.select(added_columns)?;
    Ok(kept.union(added)?)
}
