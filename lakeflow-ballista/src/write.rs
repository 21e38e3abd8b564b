//! Writes on the executors: a flow's plan under a [`WriteNode`] is planned by the scheduler
//! ([`WritePlanner`]) into a [`WriteExec`] over it, which the physical codec ships to the
//! executors with the plan. Each task checks its rows with the flow's rules (a
//! [`Checker`] rebuilt from its description), writes what is kept as Parquet files into the
//! table's directory ([`FileWriter`]), and what drop rules removed into the quarantine
//! table's when there is one, and returns one row: the files it wrote (their Delta `add`
//! actions) and its counts. The coordinator adds the counts up and commits the files, the
//! quarantine table's first, each table's in one commit with the batch's transaction, so no
//! table row passes through it and exactly-once holds as it does in-process.

use std::any::Any;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DFSchema, DFSchemaRef, DataFusionError, Result};
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::{SendableRecordBatchStream, SessionState, TaskContext};
use datafusion::logical_expr::{
    Expr, LogicalPlan, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::StreamExt;
use lakeflow_core::expectations::CheckCounts;
use lakeflow_core::ingest::FileBatchExec;
use lakeflow_core::storage::FileTarget;
use lakeflow_core::{Checker, FileSink, Sink, WrittenFiles};
use lakeflow_delta::FileWriter;

/// The one column of what a write returns: a JSON document per task.
const WRITTEN: &str = "lakeflow_written";

fn written_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new(
        WRITTEN,
        DataType::Utf8,
        false,
    )]))
}

/// What a write is told: the flow's checks and where its files go, as JSON (it travels as
/// such in both codecs).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd)]
pub(crate) struct WriteSpec {
    /// [`Checker::spec`].
    pub checker: String,
    /// The dataset.
    pub table: String,
    /// [`FileTarget::spec`].
    pub target: String,
    /// The quarantine table and its [`FileTarget::spec`], when the rows drop rules remove are
    /// written there.
    pub quarantine: Option<(String, String)>,
    /// A file sink's batch ([`SinkBatch`] as JSON) to write instead of the table's files.
    pub sink: Option<String>,
}

impl WriteSpec {
    /// The JSON text `text`, the write's `what`.
    fn parse(&self, what: &str, text: &str) -> lakeflow_core::Result<serde_json::Value> {
        serde_json::from_str(text).map_err(|e| {
            lakeflow_core::Error::Internal(format!(
                "the {what} of a write of `{}`: {e}",
                self.table
            ))
        })
    }

    /// The flow's checker, rebuilt for batches of `input`.
    fn checker(&self, input: &Schema) -> lakeflow_core::Result<Checker> {
        Checker::from_spec(&self.parse("checks", &self.checker)?, input)
    }

    pub(crate) fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "checker": self.checker,
            "table": self.table,
            "target": self.target,
            "quarantine": self.quarantine,
            "sink": self.sink,
        })
    }

    pub(crate) fn from_json(value: &serde_json::Value) -> Result<WriteSpec> {
        let field = |name: &str| {
            value[name].as_str().map(str::to_string).ok_or_else(|| {
                DataFusionError::Internal(format!("a lakeflow write without its `{name}`"))
            })
        };
        Ok(WriteSpec {
            checker: field("checker")?,
            table: field("table")?,
            target: field("target")?,
            quarantine: serde_json::from_value(value["quarantine"].clone()).map_err(|e| {
                DataFusionError::Internal(format!("a lakeflow write's quarantine: {e}"))
            })?,
            sink: value["sink"].as_str().map(str::to_string),
        })
    }
}

/// A flow's plan and the write of its rows where they are computed.
#[derive(Debug, Clone)]
pub(crate) struct WriteNode {
    pub input: LogicalPlan,
    pub spec: WriteSpec,
    schema: DFSchemaRef,
}

impl WriteNode {
    pub(crate) fn new(input: LogicalPlan, spec: WriteSpec) -> Result<WriteNode> {
        Ok(WriteNode {
            input,
            spec,
            schema: Arc::new(DFSchema::try_from(written_schema().as_ref().clone())?),
        })
    }
}

impl PartialEq for WriteNode {
    fn eq(&self, other: &Self) -> bool {
        self.spec == other.spec && self.input == other.input
    }
}

impl Eq for WriteNode {}

impl Hash for WriteNode {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.spec.hash(state);
        self.input.hash(state);
    }
}

impl PartialOrd for WriteNode {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        match self.spec.partial_cmp(&other.spec) {
            Some(std::cmp::Ordering::Equal) => self.input.partial_cmp(&other.input),
            ordering => ordering,
        }
    }
}

impl UserDefinedLogicalNodeCore for WriteNode {
    fn name(&self) -> &str {
        "LakeflowWrite"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        &self.schema
    }

    fn expressions(&self) -> Vec<Expr> {
        Vec::new()
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LakeflowWrite: table={}", self.spec.table)
    }

    fn with_exprs_and_inputs(
        &self,
        _exprs: Vec<Expr>,
        mut inputs: Vec<LogicalPlan>,
    ) -> Result<Self> {
        let input = inputs.pop().ok_or_else(|| {
            DataFusionError::Internal("a lakeflow write without its input".into())
        })?;
        WriteNode::new(input, self.spec.clone())
    }
}

/// Checks and writes each partition of its input; one row per partition comes out.
#[derive(Debug)]
pub(crate) struct WriteExec {
    pub input: Arc<dyn ExecutionPlan>,
    pub spec: WriteSpec,
    properties: Arc<PlanProperties>,
}

impl WriteExec {
    pub(crate) fn new(input: Arc<dyn ExecutionPlan>, spec: WriteSpec) -> WriteExec {
        let partitions = input.output_partitioning().partition_count();
        let properties = PlanProperties::new(
            EquivalenceProperties::new(written_schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        WriteExec {
            input,
            spec,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for WriteExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "LakeflowWriteExec: table={}", self.spec.table)
    }
}

impl ExecutionPlan for WriteExec {
    fn name(&self) -> &str {
        "LakeflowWriteExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    // Each task writes the partition it computed: no repartition before it.
    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.pop().ok_or_else(|| {
            DataFusionError::Internal("a lakeflow write without its input".into())
        })?;
        Ok(Arc::new(WriteExec::new(input, self.spec.clone())))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let spec = self.spec.clone();
        let scans = self.input.clone();
        let written = futures::stream::once(async move {
            let written = match &spec.sink {
                Some(sink) => write_sink_part(input, &spec, sink, partition).await,
                None => write_partition(input, &spec).await,
            };
            let mut document = written.map_err(|e| DataFusionError::External(Box::new(e)))?;
            // What DROPMALFORMED left out of the scans of this task (they are in its stage:
            // the engine ships such a scan only under projections and filters).
            document["malformed"] = serde_json::json!(malformed(scans.as_ref()));
            let column = StringArray::from(vec![document.to_string()]);
            Ok(RecordBatch::try_new(
                written_schema(),
                vec![Arc::new(column)],
            )?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            written_schema(),
            written,
        )))
    }
}

/// Checks and writes one partition's rows, and the rows drop rules removed when they are
/// quarantined; its files and counts as one JSON document. A `Fail` rule's violation stops
/// the partition: its counts carry the failure, and its files are never committed.
async fn write_partition(
    mut input: SendableRecordBatchStream,
    spec: &WriteSpec,
) -> lakeflow_core::Result<serde_json::Value> {
    let checker = spec.checker(&input.schema())?;
    let open = |table: &str, target: &str| {
        FileWriter::open(&FileTarget {
            table: table.to_string(),
            spec: spec.parse("target", target)?,
        })
    };
    let mut writer = open(&spec.table, &spec.target)?;
    let mut quarantine = match &spec.quarantine {
        Some((table, target)) if checker.quarantines() => Some(open(table, target)?),
        _ => None,
    };
    while let Some(batch) = input.next().await {
        let checked = match checker.check(&batch?) {
            Ok(checked) => checked,
            Err(e) => {
                let counts = checker.counts();
                if counts.failure.is_some() {
                    return Ok(stopped(counts));
                }
                return Err(e.into());
            }
        };
        writer.write(&checked.kept).await?;
        if let (Some(writer), Some(rows)) = (quarantine.as_mut(), checked.quarantined) {
            writer.write(&rows).await?;
        }
    }
    let rows = writer.rows();
    let files = writer.finish().await?;
    log::info!(
        "wrote {rows} rows of `{}` in {} files for the coordinator to commit",
        spec.table,
        files.len()
    );
    let quarantined = match (quarantine, &spec.quarantine) {
        (Some(writer), Some((table, _))) => {
            let rows = writer.rows();
            let files = writer.finish().await?;
            log::info!(
                "wrote {rows} quarantined rows of `{table}` in {} files",
                files.len()
            );
            files
        }
        _ => Vec::new(),
    };
    Ok(serde_json::json!({
        "files": files,
        "quarantined": quarantined,
        "rows": rows,
        "counts": checker.counts(),
    }))
}

/// What a task stopped by a `Fail` rule returns: no files, and its counts with the failure.
fn stopped(counts: CheckCounts) -> serde_json::Value {
    serde_json::json!({"files": [], "rows": 0, "counts": counts})
}

/// Checks one partition's rows and writes what is kept as part `part` of a file sink's batch
/// (`sink`, a [`SinkBatch`]); its rows and counts as one JSON document.
async fn write_sink_part(
    input: SendableRecordBatchStream,
    spec: &WriteSpec,
    sink: &str,
    part: usize,
) -> lakeflow_core::Result<serde_json::Value> {
    let checker = Arc::new(spec.checker(&input.schema())?);
    let batch = spec.parse("sink", sink)?;
    let sink = FileSink::from_parts(&batch["sink"], &|url, options| {
        lakeflow_delta::object_store_at(url, options.iter().map(|(k, v)| (k, v)))
    })?;
    let (writer, number) = (
        batch["writer"].as_str().unwrap_or_default(),
        batch["batch"].as_u64().unwrap_or_default(),
    );
    let rows = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let kept = {
        let (checker, rows) = (checker.clone(), rows.clone());
        input.map(move |batch| {
            let kept = checker.keep(&batch?)?;
            rows.fetch_add(kept.num_rows() as u64, std::sync::atomic::Ordering::Relaxed);
            Ok(kept)
        })
    };
    let kept: SendableRecordBatchStream =
        Box::pin(RecordBatchStreamAdapter::new(checker.data_schema(), kept));
    if let Err(e) = sink.write_part(writer, number, part, kept).await {
        let counts = checker.counts();
        if counts.failure.is_some() {
            return Ok(stopped(counts));
        }
        return Err(e);
    }
    let rows = rows.load(std::sync::atomic::Ordering::Relaxed);
    log::info!(
        "wrote {rows} rows of `{}` as part {part} of batch {number} of sink {}",
        spec.table,
        sink.location()
    );
    Ok(serde_json::json!({"files": [], "rows": rows, "counts": checker.counts()}))
}

/// The records mode DROPMALFORMED left out of the landing-file scans in `plan`, per file.
fn malformed(plan: &dyn ExecutionPlan) -> std::collections::BTreeMap<String, u64> {
    let mut counts = std::collections::BTreeMap::new();
    let mut pending = vec![plan];
    while let Some(node) = pending.pop() {
        if let Some(scan) = node.downcast_ref::<FileBatchExec>() {
            for (file, n) in scan.table().malformed() {
                *counts.entry(file).or_default() += n;
            }
        }
        pending.extend(node.children().into_iter().map(|c| c.as_ref()));
    }
    counts
}

/// The files and counts of every task of a write, from the rows its plan returned; the
/// counts are added to `checker`, and what DROPMALFORMED left out to `malformed`.
pub(crate) fn gather(
    batches: &[RecordBatch],
    checker: &Checker,
    malformed: &mut std::collections::BTreeMap<String, u64>,
) -> lakeflow_core::Result<WrittenFiles> {
    let mut written = WrittenFiles::default();
    for batch in batches {
        let Some(column) = batch.column_by_name(WRITTEN) else {
            continue;
        };
        let column = column
            .as_any()
            .downcast_ref::<StringArray>()
            .ok_or_else(|| lakeflow_core::Error::Internal("a write's result is not text".into()))?;
        for i in 0..column.len() {
            let document: serde_json::Value = serde_json::from_str(column.value(i))
                .map_err(|e| lakeflow_core::Error::Internal(format!("a write's result: {e}")))?;
            let counts: CheckCounts = serde_json::from_value(document["counts"].clone())
                .map_err(|e| lakeflow_core::Error::Internal(format!("a write's counts: {e}")))?;
            checker.add(&counts);
            written.rows += document["rows"].as_u64().unwrap_or(0);
            if let Some(files) = document["files"].as_array() {
                written.files.extend(files.iter().cloned());
            }
            if let Some(files) = document["quarantined"].as_array() {
                written.quarantined.extend(files.iter().cloned());
            }
            if let Some(counts) = document["malformed"].as_object() {
                for (file, n) in counts {
                    *malformed.entry(file.clone()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
        }
    }
    Ok(written)
}

/// Plans [`WriteNode`]s into [`WriteExec`]s.
#[derive(Debug)]
struct WritePlanner;

#[async_trait]
impl ExtensionPlanner for WritePlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session_state: &dyn datafusion::catalog::Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(write) = node.as_any().downcast_ref::<WriteNode>() else {
            return Ok(None);
        };
        let input = physical_inputs.first().cloned().ok_or_else(|| {
            DataFusionError::Internal("a lakeflow write without its input".into())
        })?;
        Ok(Some(Arc::new(WriteExec::new(input, write.spec.clone()))))
    }
}

/// DataFusion's planner, plus lakeflow's writes: the scheduler's.
#[derive(Debug)]
pub(crate) struct LakeflowQueryPlanner;

#[async_trait]
impl QueryPlanner for LakeflowQueryPlanner {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn datafusion::catalog::Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(WritePlanner)])
            .create_physical_plan(logical_plan, session)
            .await
    }
}

/// `state` planning lakeflow's writes too.
pub(crate) fn with_write_planner(state: SessionState) -> SessionState {
    datafusion::execution::SessionStateBuilder::new_from_existing(state)
        .with_query_planner(Arc::new(LakeflowQueryPlanner))
        .build()
}

/// Whether `node` is a lakeflow write (for the codec).
pub(crate) fn as_write(node: &dyn Any) -> Option<&WriteNode> {
    node.downcast_ref::<WriteNode>()
}
