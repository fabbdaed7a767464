//! evtxsql's functions where Ballista plans and runs: the scheduler's sessions (it decodes and
//! plans the logical plans clients send, so it must resolve `ntstatus_name`, `json_get_str`,
//! the `->>` planner, ...) and the executor's function registry (it decodes the physical plan
//! fragments, whose expressions name the functions).

use std::sync::Arc;

use ballista_core::extension::SessionConfigExt;
use ballista_core::registry::BallistaFunctionRegistry;
use ballista_core::utils::default_session_builder;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::prelude::SessionConfig;

/// Ballista's session for `config` (its optimizer rules and functions) plus evtxsql's functions.
/// This is the scheduler's session builder.
/// Its object store registry also knows `s3://` buckets ([`evtxsql_query::objects`]): the
/// scheduler lists the store's parts when it plans a scan.
pub fn scheduler_session(config: SessionConfig) -> datafusion::error::Result<SessionState> {
    let state = default_session_builder(config)?;
    let runtime = evtxsql_query::objects::runtime_builder().build_arc()?;
    let mut state = SessionStateBuilder::new_from_existing(state)
        .with_runtime_env(runtime)
        .build();
    evtxsql_query::register_functions(&mut state)?;
    Ok(state)
}

/// Every function an executor may meet in a plan fragment: DataFusion's and Ballista's, and
/// evtxsql's.
pub fn executor_registry() -> datafusion::error::Result<Arc<BallistaFunctionRegistry>> {
    let state = scheduler_session(SessionConfig::new_with_ballista())?;
    Ok(Arc::new(BallistaFunctionRegistry::from(&state)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::FunctionRegistry;

    #[test]
    fn both_roles_know_evtxsql_functions() {
        let state = scheduler_session(SessionConfig::new_with_ballista()).expect("state");
        let registry = executor_registry().expect("registry");
        for name in [
            "ntstatus_name",
            "sockaddr_ip",
            "sockaddr_port",
            "ip_in_cidr",
            "is_private_ip",
            "normalize_host",
            "json_get_str",
            "json_as_text",
            "json_get_int",
            "json_contains",
        ] {
            assert!(state.udf(name).is_ok(), "scheduler lacks {name}");
            assert!(registry.udf(name).is_ok(), "executor lacks {name}");
        }
        assert!(registry.udaf("count").is_ok());
    }
}
