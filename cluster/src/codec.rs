//! The logical plan codec of every role: Ballista's (Parquet listings, its own plan nodes),
//! with an error that names the table when a plan holds one that lives in the client's memory
//! (a `MemTable`, the rule runner's shared relation, `read_evtx(...)` over local files) and so
//! cannot be sent to executors. evtxsql's functions travel by name and are found in each role's
//! registry ([`crate::registry`]); nothing else custom crosses the wire.

use std::sync::Arc;

use ballista_core::serde::BallistaLogicalExtensionCodec;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::{Result, TableReference, plan_err};
use datafusion::datasource::TableProvider;
use datafusion::datasource::file_format::FileFormatFactory;
use datafusion::datasource::listing::ListingTable;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::{Extension, LogicalPlan};
use datafusion_proto::logical_plan::LogicalExtensionCodec;

/// Ballista's logical codec, with clear errors for tables that cannot leave this process.
#[derive(Debug, Default)]
pub struct EvtxLogicalCodec {
    inner: BallistaLogicalExtensionCodec,
}

/// The codec as the roles and the client session take it.
pub fn logical_codec() -> Arc<dyn LogicalExtensionCodec> {
    Arc::new(EvtxLogicalCodec::default())
}

impl LogicalExtensionCodec for EvtxLogicalCodec {
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
        self.inner
            .try_decode_table_provider(buf, table_ref, schema, ctx)
    }

    fn try_encode_table_provider(
        &self,
        table_ref: &TableReference,
        node: Arc<dyn TableProvider>,
        buf: &mut Vec<u8>,
    ) -> Result<()> {
        // Listings of Parquet files are serialized by DataFusion itself and never get here;
        // what gets here holds its rows (or its reader) in this process.
        if node.downcast_ref::<ListingTable>().is_none() {
            return plan_err!(
                "the table `{table_ref}` lives in this process (rows in memory, or EVTX files \
                 read here) and cannot be sent to the cluster's executors; on a cluster, query \
                 the store's tables (events, files) and views"
            );
        }
        self.inner.try_encode_table_provider(table_ref, node, buf)
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
