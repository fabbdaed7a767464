//! A client session whose queries run on a Ballista cluster.
//!
//! The session is an evtxsql session ([`evtxsql_query::session_state`]: configuration,
//! functions) upgraded with Ballista's query planner: SQL is parsed, analyzed and optimized
//! here, against the store's tables and views, and each query's logical plan is sent to the
//! scheduler, which splits it into stages at its exchanges and hands the tasks to the
//! executors. The executors read the store's Parquet files themselves: they must see the store
//! at the same path as this client (a shared mount). This process only fetches the final
//! partitions. DDL (`CREATE VIEW`, `SET`) and `information_schema` stay here.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use ballista::prelude::SessionContextExt;
use ballista_core::extension::SessionConfigExt;
use datafusion::catalog::{TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::plan_err;
use datafusion::execution::SessionStateBuilder;
use datafusion::prelude::SessionContext;
use evtxsql_query::SessionOptions;

use crate::address::ClusterUrl;
use crate::codec::logical_codec;
use crate::error::ClusterError;

/// Ballista's switch for its adaptive query planner, off in evtxsql's cluster sessions.
const ADAPTIVE_PLANNER: &str = ballista_core::config::BALLISTA_ADAPTIVE_PLANNER_ENABLED;

/// How long a client waits for the scheduler's address to accept a connection.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Check that something accepts connections at the scheduler's address, within `timeout`
/// (Ballista's client would only find out at the first query, after planning).
pub async fn check_scheduler(url: &ClusterUrl, timeout: Duration) -> Result<(), ClusterError> {
    let target = url.scheduler.authority();
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(&target)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(cause)) => Err(ClusterError::Unreachable {
            url: url.to_string(),
            cause,
        }),
        Err(_) => Err(ClusterError::Timeout {
            url: url.to_string(),
            timeout,
        }),
    }
}

/// `read_evtx(...)` on a cluster session: EVTX files are read where they are, by this process,
/// which a cluster plan cannot do; say so at planning time.
#[derive(Debug)]
struct ReadEvtxLocalOnly;

impl TableFunctionImpl for ReadEvtxLocalOnly {
    fn call_with_args(
        &self,
        _args: TableFunctionArgs,
    ) -> datafusion::error::Result<Arc<dyn TableProvider>> {
        plan_err!(
            "read_evtx() reads EVTX files on this machine and does not run on a cluster: \
             ingest them into the store first (evtxsql ingest FILES --store STORE), or run \
             the query without --cluster"
        )
    }
}

/// A session whose queries run on the cluster at `url`, over the store at `store` (which the
/// executors must see at the same absolute path). Fails within `timeout` when no scheduler
/// answers at `url`.
pub async fn remote_session_for_store(
    url: &ClusterUrl,
    store: &Path,
    opts: &SessionOptions,
    timeout: Duration,
) -> Result<SessionContext, ClusterError> {
    check_scheduler(url, timeout).await?;
    let state = evtxsql_query::session_state(opts)?;
    let config = state
        .config()
        .clone()
        .with_ballista_logical_extension_codec(logical_codec());
    let ours: Vec<_> = state.scalar_functions().values().cloned().collect();
    let state = SessionStateBuilder::new_from_existing(state)
        .with_config(config)
        .build();
    let ctx = SessionContext::remote_with_state(&url.ballista_url(), state)
        .await
        .map_err(|source| ClusterError::Setup {
            what: format!("Ballista client for {url}"),
            source,
        })?;
    // Ballista's upgrade replaces the scalar functions with its own list (the JSON planner and
    // rewrite stay): put evtxsql's back.
    let now = ctx.state().scalar_functions().clone();
    for udf in ours {
        if !now.contains_key(udf.name()) {
            ctx.register_udf(udf.as_ref().clone());
        }
    }
    // Ballista 55's adaptive planner re-plans some joins without end: the smb-guest pack's
    // spoofed_server rule (a join on an aggregate with a time filter, under a semi join) ran
    // new stages for minutes, cancelling the old ones, and never finished. The static planner
    // runs every query of the tests.
    // (SET takes effect when planned; its empty result needs no collecting.)
    ctx.sql(&format!("SET {ADAPTIVE_PLANNER} = false"))
        .await
        .map_err(|source| ClusterError::Setup {
            what: format!("setting {ADAPTIVE_PLANNER}"),
            source,
        })?;
    ctx.register_udtf("read_evtx", Arc::new(ReadEvtxLocalOnly));
    evtxsql_query::register_store(&ctx, store).await?;
    Ok(ctx)
}
