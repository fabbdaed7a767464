//! The executor role: Ballista's executor, whose function registry holds evtxsql's functions.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};

use crate::address::HostPort;
use crate::codec::logical_codec;
use crate::error::ClusterError;
use crate::registry::executor_registry;
use crate::scheduler::{HEARTBEAT_SECS, socket_addr};

/// How to run an executor.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    /// The scheduler to register with.
    pub scheduler: HostPort,
    /// Where to serve results and shuffle data (Arrow Flight); the task port is `grpc_port`.
    pub bind: HostPort,
    /// Where the scheduler sends tasks (default: the bind port + 1).
    pub grpc_port: Option<u16>,
    /// The host name the scheduler, other executors and clients reach this executor by
    /// (default: the bind host; needed when binding 0.0.0.0).
    pub advertise: Option<String>,
    /// Tasks run at once (default: one per core).
    pub concurrency: Option<usize>,
    /// Memory for all tasks' sorts, joins and aggregations in bytes, beyond which they spill
    /// (default: Ballista's, 70 % of the machine's or cgroup's memory).
    pub memory_limit: Option<u64>,
    /// Directory for shuffle files (default: a new temporary directory).
    pub work_dir: Option<PathBuf>,
    /// How long to wait for the scheduler to accept connections before giving up.
    pub wait_for_scheduler: Duration,
}

/// Wait until something accepts TCP connections at `hp`, up to `wait`.
async fn wait_for(hp: &HostPort, wait: Duration) -> Result<(), ClusterError> {
    let started = Instant::now();
    let url = format!("df://{}", hp.authority());
    loop {
        let attempt = tokio::time::timeout(
            Duration::from_secs(2),
            tokio::net::TcpStream::connect(hp.authority()),
        )
        .await;
        let err = match attempt {
            Ok(Ok(_)) => return Ok(()),
            Ok(Err(e)) => ClusterError::Unreachable {
                url: url.clone(),
                cause: e,
            },
            Err(_) => ClusterError::Timeout {
                url: url.clone(),
                timeout: Duration::from_secs(2),
            },
        };
        if started.elapsed() >= wait {
            return Err(err);
        }
        log::warn!("{err}; retrying");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The runtime of the executor's tasks: Ballista's (spill files in the work directory, or the
/// system's temporary directory without one) with evtxsql's object stores, so that tasks read
/// `s3://` stores with the executor's AWS environment.
fn runtime_producer(work_dir: Option<std::path::PathBuf>) -> ballista_core::RuntimeProducer {
    Arc::new(move |_config| {
        let mut runtime = evtxsql_query::objects::runtime_builder();
        if let Some(dir) = &work_dir {
            runtime = runtime.with_temp_file_path(dir);
        }
        runtime.build_arc()
    })
}

/// Register with the scheduler and run tasks until the process is stopped (SIGTERM or Ctrl-C
/// stop it gracefully), or fail (scheduler unreachable, port taken).
pub async fn run_executor(opts: &ExecutorOptions) -> Result<(), ClusterError> {
    let role_err = |message: String| ClusterError::Role {
        role: "executor",
        address: opts.bind.authority(),
        message,
    };
    let addr = socket_addr("executor", &opts.bind)?;
    let grpc_port = match opts.grpc_port {
        Some(p) => p,
        None => addr.port().checked_add(1).ok_or_else(|| {
            role_err("the task port (bind port + 1) is out of range; give --grpc-port".into())
        })?,
    };
    if grpc_port == addr.port() {
        return Err(role_err(format!(
            "the task port (--grpc-port) and the bind port are both {grpc_port}; they must differ"
        )));
    }
    for port in [addr.port(), grpc_port] {
        let probe = std::net::SocketAddr::new(addr.ip(), port);
        drop(
            std::net::TcpListener::bind(probe)
                .map_err(|e| role_err(format!("cannot listen on port {port}: {e}")))?,
        );
    }
    if let Some(dir) = &opts.work_dir {
        std::fs::create_dir_all(dir).map_err(|e| {
            role_err(format!(
                "cannot create the work directory {}: {e}",
                dir.display()
            ))
        })?;
    }
    wait_for(&opts.scheduler, opts.wait_for_scheduler).await?;
    let registry = executor_registry().map_err(|e| role_err(e.to_string()))?;
    let advertise = opts
        .advertise
        .clone()
        .or_else(|| (!addr.ip().is_unspecified()).then(|| addr.ip().to_string()));
    let config = ExecutorProcessConfig {
        bind_host: addr.ip().to_string(),
        external_host: advertise,
        port: addr.port(),
        grpc_port,
        scheduler_host: opts.scheduler.host.clone(),
        scheduler_port: opts.scheduler.port,
        scheduler_connect_timeout_seconds: 0,
        vcores: opts.concurrency.unwrap_or(0),
        work_dir: opts
            .work_dir
            .as_ref()
            .map(|d| d.to_string_lossy().into_owned()),
        special_mod_log_level: "INFO".into(),
        executor_heartbeat_interval_seconds: HEARTBEAT_SECS,
        memory_pool_size: opts.memory_limit,
        override_function_registry: Some(registry),
        override_runtime_producer: Some(runtime_producer(opts.work_dir.clone())),
        override_logical_codec: Some(logical_codec()),
        ..ExecutorProcessConfig::default()
    };
    log::info!(
        "evtxsql cluster executor {} on {addr} (tasks on port {grpc_port}), scheduler {}",
        config.executor_id,
        opts.scheduler
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| role_err(e.to_string()))
}
