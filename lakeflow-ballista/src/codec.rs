//! The logical codec of lakeflow's plans: Ballista's, plus pipeline tables read as lists of
//! Parquet files.

use std::sync::Arc;

use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::TableProvider;
use datafusion::common::{DataFusionError, Result, TableReference};
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion_proto::logical_plan::LogicalExtensionCodec;
use lakeflow_delta::FileListTable;

/// What starts an encoded [`FileListTable`], so that it is never mistaken for Ballista's own
/// protobuf.
const FILE_LIST: &[u8] = b"lakeflow.files.v1:";

/// Encodes [`FileListTable`]s (as JSON: the files, their sizes and partition values; the
/// schema travels with the plan) and hands everything else to Ballista's codec.
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
        self.inner.try_decode(buf, inputs, ctx)
    }

    fn try_encode(&self, node: &Extension, buf: &mut Vec<u8>) -> Result<()> {
        self.inner.try_encode(node, buf)
    }

    fn try_decode_table_provider(
        &self,
        buf: &[u8],
        table_ref: &TableReference,
        schema: SchemaRef,
        ctx: &TaskContext,
    ) -> Result<Arc<dyn TableProvider>> {
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

    fn try_encode_file_format(
        &self,
        buf: &mut Vec<u8>,
        node: Arc<dyn FileFormatFactory>,
    ) -> Result<()> {
        self.inner.try_encode_file_format(buf, node)
    }
}
