//! A table whose scan yields streams that already exist, once: how a flow's output streams
//! are handed to the Delta writer, which takes a plan, without collecting them.

use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};

/// The streams of one flow's output, scanned at most once.
pub(crate) struct OneShotTable {
    schema: SchemaRef,
    partitions: Vec<Arc<dyn PartitionStream>>,
}

impl fmt::Debug for OneShotTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OneShotTable")
            .field("partitions", &self.partitions.len())
            .finish()
    }
}

impl OneShotTable {
    pub fn new(schema: SchemaRef, streams: Vec<SendableRecordBatchStream>) -> Self {
        let partitions = streams
            .into_iter()
            .map(|s| {
                Arc::new(OneShotPartition {
                    schema: schema.clone(),
                    stream: Mutex::new(Some(s)),
                }) as Arc<dyn PartitionStream>
            })
            .collect();
        OneShotTable { schema, partitions }
    }
}

#[async_trait]
impl TableProvider for OneShotTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let exec = StreamingTableExec::try_new(
            self.schema.clone(),
            self.partitions.clone(),
            projection,
            Vec::new(),
            false,
            limit,
        )?;
        Ok(Arc::new(exec))
    }
}

struct OneShotPartition {
    schema: SchemaRef,
    stream: Mutex<Option<SendableRecordBatchStream>>,
}

impl fmt::Debug for OneShotPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OneShotPartition")
    }
}

impl PartitionStream for OneShotPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let taken = self.stream.lock().unwrap_or_else(|e| e.into_inner()).take();
        match taken {
            Some(stream) => stream,
            None => {
                let error =
                    DataFusionError::Internal("a flow's output stream was read twice".to_string());
                let schema = self.schema.clone();
                Box::pin(
                    datafusion::physical_plan::stream::RecordBatchStreamAdapter::new(
                        schema,
                        futures::stream::once(async move { Err(error) }),
                    ),
                )
            }
        }
    }
}
