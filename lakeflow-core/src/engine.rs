//! The `Engine` seam: what executes a flow's plan.
//!
//! [`DataFusionEngine`] runs plans in this process. A distributed DataFusion engine (Ballista)
//! can implement the same two methods later; nothing outside this module assumes the plan runs
//! in-process, only that it yields partition streams of record batches.

use std::fmt::Debug;

use async_trait::async_trait;
use datafusion::dataframe::DataFrame;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::error::Result;

/// Executes plans. Keep it small: sessions for planning, and execution to streams.
#[async_trait]
pub trait Engine: Debug + Send + Sync {
    /// A session whose functions and configuration query functions are planned with.
    fn session(&self) -> SessionContext;

    /// Executes a plan, returning one stream per output partition.
    async fn execute(&self, plan: LogicalPlan) -> Result<Vec<SendableRecordBatchStream>>;
}

/// Runs plans with DataFusion in this process.
#[derive(Debug, Clone)]
pub struct DataFusionEngine {
    config: SessionConfig,
}

impl Default for DataFusionEngine {
    fn default() -> Self {
        let config = SessionConfig::new()
            .with_information_schema(false)
            .with_batch_size(8192);
        DataFusionEngine { config }
    }
}

impl DataFusionEngine {
    /// An engine with DataFusion's defaults (one partition per core).
    pub fn new() -> Self {
        Self::default()
    }

    /// An engine with the given session configuration.
    pub fn with_config(config: SessionConfig) -> Self {
        DataFusionEngine { config }
    }
}

#[async_trait]
impl Engine for DataFusionEngine {
    fn session(&self) -> SessionContext {
        SessionContext::new_with_config(self.config.clone())
    }

    async fn execute(&self, plan: LogicalPlan) -> Result<Vec<SendableRecordBatchStream>> {
        let df = DataFrame::new(self.session().state(), plan);
        Ok(df.execute_stream_partitioned().await?)
    }
}
