//! The codecs of lakeflow's plans: Ballista's, plus pipeline tables read as lists of Parquet
//! files (logical plans), SQL functions of a pipeline's own (`CREATE FUNCTION .. RETURN
//! expr`), shipped by their definition (logical and physical plans), so that the cluster runs
//! flows that call them, and the writes of flows' rows on the executors (both).

use std::sync::Arc;

use ballista_core::serde::{BallistaLogicalExtensionCodec, BallistaPhysicalExtensionCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan, ScalarUDF};
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use datafusion_proto::physical_plan::{PhysicalExtensionCodec, PhysicalProtoConverterExtension};
use lakeflow_core::ingest::{FileBatchExec, FileBatchTable};
use lakeflow_delta::FileListTable;
use lakeflow_sql::functions::sql_function::SqlFunction;

use crate::write::{WriteExec, WriteNode, WriteSpec};

/// What starts an encoded [`FileListTable`], so that it is never mistaken for Ballista's own
/// protobuf.
const FILE_LIST: &[u8] = b"lakeflow.files.v1:";

/// What starts an encoded [`SqlFunction`].
const SQL_FUNCTION: &[u8] = b"lakeflow.sqlfn.v1:";

/// What starts an encoded batch of landing files ([`FileBatchTable`] and [`FileBatchExec`]).
const FILE_BATCH: &[u8] = b"lakeflow.filebatch.v1:";

fn internal(what: &str, e: impl std::fmt::Display) -> DataFusionError {
    DataFusionError::Internal(format!("{what}: {e}"))
}

/// The scan `buf` encodes, if it is a batch of landing files: decoded here, on another
/// process than the run's, it tells its file errors so that the run reads them back.
fn decode_file_batch(buf: &[u8]) -> Result<Option<FileBatchExec>> {
    let Some(json) = buf.strip_prefix(FILE_BATCH) else {
        return Ok(None);
    };
    let value: serde_json::Value =
        serde_json::from_slice(json).map_err(|e| internal("a batch of landing files", e))?;
    let schema: datafusion::arrow::datatypes::Schema =
        serde_json::from_value(value["schema"].clone())
            .map_err(|e| internal("the schema of a batch of landing files", e))?;
    let table = FileBatchTable::from_json(&value["table"], Arc::new(schema))
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    let projection: Option<Vec<usize>> = serde_json::from_value(value["projection"].clone())
        .map_err(|e| internal("the columns of a batch of landing files", e))?;
    let scan = FileBatchExec::new(Arc::new(table), projection)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    Ok(Some(scan.from_the_wire()))
}

fn encode_file_batch(scan: &FileBatchExec, buf: &mut Vec<u8>) -> Result<()> {
    let table = scan.table();
    buf.extend_from_slice(FILE_BATCH);
    let value = serde_json::json!({
        "table": table.to_json(),
        "schema": table.schema().as_ref(),
        "projection": scan.projection(),
    });
    serde_json::to_writer(&mut *buf, &value).map_err(|e| internal("a batch of landing files", e))
}

/// What starts an encoded write ([`WriteNode`] and [`WriteExec`]).
const WRITE: &[u8] = b"lakeflow.write.v1:";

/// The write `buf` encodes, if it is one.
fn decode_write(buf: &[u8]) -> Result<Option<WriteSpec>> {
    let Some(json) = buf.strip_prefix(WRITE) else {
        return Ok(None);
    };
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| DataFusionError::Internal(format!("a lakeflow write: {e}")))?;
    WriteSpec::from_json(&value).map(Some)
}

fn encode_write(spec: &WriteSpec, buf: &mut Vec<u8>) -> Result<()> {
    buf.extend_from_slice(WRITE);
    serde_json::to_writer(&mut *buf, &spec.to_json())
        .map_err(|e| DataFusionError::Internal(format!("a lakeflow write: {e}")))
}

/// The one input of a decoded write.
fn only_input<T: Clone>(inputs: &[T]) -> Result<T> {
    match inputs {
        [input] => Ok(input.clone()),
        _ => Err(DataFusionError::Internal(format!(
            "a lakeflow write with {} inputs",
            inputs.len()
        ))),
    }
}

/// The function `buf` encodes: a SQL function, or what `inner` decodes.
fn decode_udf(
    name: &str,
    buf: &[u8],
    inner: impl FnOnce() -> Result<Arc<ScalarUDF>>,
) -> Result<Arc<ScalarUDF>> {
    let Some(json) = buf.strip_prefix(SQL_FUNCTION) else {
        return inner();
    };
    let value: serde_json::Value = serde_json::from_slice(json)
        .map_err(|e| DataFusionError::Internal(format!("SQL function `{name}`: {e}")))?;
    Ok(Arc::new(ScalarUDF::from(SqlFunction::from_json(&value)?)))
}

/// Encodes `udf` into `buf`: a SQL function by its definition, anything else by `inner`.
fn encode_udf(
    udf: &ScalarUDF,
    buf: &mut Vec<u8>,
    inner: impl FnOnce(&mut Vec<u8>) -> Result<()>,
) -> Result<()> {
    let Some(function) = udf.inner().downcast_ref::<SqlFunction>() else {
        return inner(buf);
    };
    buf.extend_from_slice(SQL_FUNCTION);
    serde_json::to_writer(&mut *buf, &function.to_json())
        .map_err(|e| DataFusionError::Internal(format!("SQL function `{}`: {e}", udf.name())))
}

/// Encodes [`FileListTable`]s (as JSON: the files, their sizes and partition values; the
/// schema travels with the plan) and [`SqlFunction`]s (by their definition), and hands
/// everything else to Ballista's codec.
#[derive(Debug, Default)]
pub struct LakeflowLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

impl LogicalExtensionCodec for LakeflowLogicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[LogicalPlan],
        ctx: &TaskContext,
    ) -> Result<Extension> {
        match decode_write(buf)? {
            Some(spec) => Ok(Extension {
                node: Arc::new(WriteNode::new(only_input(inputs)?, spec)?),
            }),
            None => self.inner.try_decode(buf, inputs, ctx),
        }
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        match crate::write::as_write(node.node.as_any()) {
            Some(write) => encode_write(&write.spec, buf),
            None => self.inner.try_encode(node, buf),
        }
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
        if let Some(json) = buf.strip_prefix(FILE_BATCH) {
            let value = serde_json::from_slice(json)
                .map_err(|e| internal(&format!("the landing files of `{table_ref}`"), e))?;
            let table = FileBatchTable::from_json(&value, schema)
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            return Ok(Arc::new(table));
        }
        match buf.strip_prefix(FILE_LIST) {
            Some(json) => {
                let value = serde_json::from_slice(json).map_err(|e| {
                    DataFusionError::Internal(format!("the file list of `{table_ref}`: {e}"))
                })?;
                Ok(Arc::new(FileListTable::from_json(&value, schema)?))
            }
            None => self
                .inner
                .try_decode_table_provider(buf, table_ref, schema, ctx),
        }
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        if let Some(batch) = node.downcast_ref::<FileBatchTable>() {
            buf.extend_from_slice(FILE_BATCH);
            return serde_json::to_writer(&mut *buf, &batch.to_json())
                .map_err(|e| internal(&format!("the landing files of `{table_ref}`"), e));
        }
        match node.downcast_ref::<FileListTable>() {
            Some(files) => {
                buf.extend_from_slice(FILE_LIST);
                serde_json::to_writer(&mut *buf, &files.to_json()).map_err(|e| {
                    DataFusionError::Internal(format!("the file list of `{table_ref}`: {e}"))
                })
            }
            None => self.inner.try_encode_table_provider(table_ref, node, buf),
        }
    }

    fn try_decode_file_format(
        &self,
        buf: &[u8],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn FileFormatFactory>> {
        self.inner.try_decode_file_format(buf, ctx)
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf, || self.inner.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udf(node, buf, |buf| self.inner.try_encode_udf(node, buf))
    }

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}

/// Ballista's physical codec, plus SQL functions shipped by their definition.
#[derive(Debug, Default)]
pub struct LakeflowPhysicalCodec {
    inner: BallistaPhysicalExtensionCodec,
}

impl PhysicalExtensionCodec for LakeflowPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let Some(scan) = decode_file_batch(buf)? {
            return Ok(Arc::new(scan));
        }
        match decode_write(buf)? {
            Some(spec) => Ok(Arc::new(WriteExec::new(only_input(inputs)?, spec))),
            None => self.inner.try_decode(buf, inputs, ctx, proto_converter),
        }
    }

    fn try_encode(
        &self,
        node: Arc<dyn ExecutionPlan>,
        buf: &mut Vec<u8>,
        proto_converter: &dyn PhysicalProtoConverterExtension,
    ) -> Result<()> {
        if let Some(scan) = node.downcast_ref::<FileBatchExec>() {
            return encode_file_batch(scan, buf);
        }
        match node.downcast_ref::<WriteExec>() {
            Some(write) => encode_write(&write.spec, buf),
            None => self.inner.try_encode(node, buf, proto_converter),
        }
    }

    fn try_decode_udf(&self, name: &str, buf: &[u8]) -> Result<Arc<ScalarUDF>> {
        decode_udf(name, buf, || self.inner.try_decode_udf(name, buf))
    }

    fn try_encode_udf(&self, node: &ScalarUDF, buf: &mut Vec<u8>) -> Result<()> {
        encode_udf(node, buf, |buf| self.inner.try_encode_udf(node, buf))
    }
}
