//! AUTO CDC from snapshots: the next snapshot (a table's new version, or a function's next
//! result), and the changes that turn the target into it.

use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::JoinType;
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::{Expr, LogicalPlan, cast, lit};
use datafusion::prelude::{SessionContext, col};

use super::*;
use crate::error::{Error, Result};

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
pub(super) const SNAPSHOT_VERSION: &str = "__lakeflow_snapshot_version";
pub(super) const SNAPSHOT_DELETE: &str = "__lakeflow_snapshot_delete";

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
