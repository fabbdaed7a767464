//! The scheduler role: Ballista's scheduler, whose sessions know evtxsql's functions.

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;

use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::{SchedulerConfig, TaskDistributionPolicy};
use ballista_scheduler::scheduler_process::start_server;

use crate::address::HostPort;
use crate::codec::logical_codec;
use crate::error::ClusterError;
use crate::registry::scheduler_session;

/// How to run the scheduler.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    /// Where to listen for clients and executors.
    pub bind: HostPort,
    /// The host name other machines reach this scheduler by (default: the bind host).
    pub advertise: Option<String>,
    /// An executor that has not sent a heartbeat for this long is taken as lost and its tasks
    /// run elsewhere (executors started by evtxsql beat every [`HEARTBEAT_SECS`] s).
    pub executor_timeout_secs: u64,
}

/// How often evtxsql's executors tell the scheduler they are alive.
pub const HEARTBEAT_SECS: u64 = 5;

/// The default for [`SchedulerOptions::executor_timeout_secs`].
pub const EXECUTOR_TIMEOUT_SECS: u64 = 30;

/// The socket address for `hp` (the first its host resolves to).
pub(crate) fn socket_addr(role: &'static str, hp: &HostPort) -> Result<SocketAddr, ClusterError> {
    let role_err = |message: String| ClusterError::Role {
        role,
        address: hp.authority(),
        message,
    };
    hp.authority()
        .to_socket_addrs()
        .map_err(|e| role_err(format!("cannot resolve the address: {e}")))?
        .next()
        .ok_or_else(|| role_err("the address resolves to nothing".into()))
}

/// Run the scheduler until the process is stopped (or it fails, e.g. the port is taken).
pub async fn run_scheduler(opts: &SchedulerOptions) -> Result<(), ClusterError> {
    let addr = socket_addr("scheduler", &opts.bind)?;
    let role_err = |message: String| ClusterError::Role {
        role: "scheduler",
        address: opts.bind.authority(),
        message,
    };
    // Fail fast and clearly on a taken port (Ballista would report it after its setup).
    drop(std::net::TcpListener::bind(addr).map_err(|e| role_err(format!("cannot listen: {e}")))?);
    let timeout = opts.executor_timeout_secs.max(HEARTBEAT_SECS * 2);
    let mut config = SchedulerConfig {
        bind_host: addr.ip().to_string(),
        bind_port: addr.port(),
        external_host: opts
            .advertise
            .clone()
            .unwrap_or_else(|| opts.bind.host.clone()),
        executor_timeout_seconds: timeout,
        expire_dead_executor_interval_seconds: HEARTBEAT_SECS.min(timeout / 2).max(1),
        no_executors_grace_period_seconds: timeout,
        override_logical_codec: Some(logical_codec()),
        // Spread each stage's tasks over the executors (Ballista's default fills one first).
        task_distribution: TaskDistributionPolicy::RoundRobin,
        ..SchedulerConfig::default()
    };
    config = config.with_override_session_builder(Arc::new(scheduler_session));
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| role_err(e.to_string()))?;
    log::info!(
        "evtxsql cluster scheduler listening on {addr} (clients: --cluster df://{}:{})",
        config.external_host,
        addr.port()
    );
    start_server(cluster, addr, Arc::new(config))
        .await
        .map_err(|e| role_err(e.to_string()))
}
