//! The rows a partial aggregation takes from row-group statistics, as a plan node.

use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

/// The rows of a partial aggregation taken from row-group statistics: one per row group, in
/// one partition (`RowGroupStatisticsExec: row_groups=N, rows=M` in `EXPLAIN`, M being the
/// table rows they stand for).
#[derive(Debug)]
pub struct RowGroupStatisticsExec {
    batch: RecordBatch,
    rows: u64,
    properties: Arc<PlanProperties>,
}

impl RowGroupStatisticsExec {
    pub(super) fn new(batch: RecordBatch, rows: u64) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(batch.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            batch,
            rows,
            properties: Arc::new(properties),
        }
    }

    /// The table rows the answers stand for.
    #[cfg(test)]
    pub(super) fn rows(&self) -> u64 {
        self.rows
    }

    /// The partial aggregation's rows (one per row group answered).
    pub(super) fn batch(&self) -> &RecordBatch {
        &self.batch
    }
}

impl DisplayAs for RowGroupStatisticsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RowGroupStatisticsExec: row_groups={}, rows={}",
            self.batch().num_rows(),
            self.rows
        )
    }
}

impl ExecutionPlan for RowGroupStatisticsExec {
    fn name(&self) -> &str {
        "RowGroupStatisticsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "RowGroupStatisticsExec has one partition, not {partition}"
            )));
        }
        let batch = self.batch.clone();
        let stream = futures::stream::once(async move { Ok(batch) });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.batch.schema(),
            stream,
        )))
    }
}
