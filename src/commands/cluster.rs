//! `evtxsql cluster scheduler|executor`: the roles of an Apache DataFusion Ballista cluster that
//! runs evtxsql's SQL and rule packs (`--cluster df://HOST:PORT` on query, stats, report, scan).

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context;
use evtxsql_cluster::{ClusterUrl, ExecutorOptions, HostPort, SchedulerOptions};
use evtxsql_query::datafusion::prelude::SessionContext;
use evtxsql_query::{QueryError, SessionOptions};

use super::EXIT_OK;

/// Run a role of an evtxsql cluster (Apache DataFusion Ballista): one scheduler, any number of
/// executors. Clients add `--cluster df://SCHEDULER:PORT` to `query`, `stats`, `report` and
/// `scan --store`.
///
/// Every executor must see the store at the same absolute path as the clients (a network mount,
/// e.g. NFS at /data/fleet.store on every machine): executors read the Parquet files themselves.
/// Roles log to standard error (`EVTXSQL_LOG=debug` for more).
#[derive(Debug, clap::Args)]
#[command(after_help = CLUSTER_EXAMPLES)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub role: Role,
}

const CLUSTER_EXAMPLES: &str = "\
Examples (three machines, the store mounted at /data/fleet.store on each):
  sched$  evtxsql cluster scheduler --bind 0.0.0.0:50050 --advertise sched.example
  exec1$  evtxsql cluster executor --scheduler sched.example:50050 --bind 0.0.0.0:50051 --advertise exec1.example
  exec2$  evtxsql cluster executor --scheduler sched.example:50050 --bind 0.0.0.0:50051 --advertise exec2.example
  any$    evtxsql report /data/fleet.store --cluster df://sched.example:50050";

#[derive(Debug, clap::Subcommand)]
pub enum Role {
    Scheduler(SchedulerArgs),
    Executor(ExecutorArgs),
}

/// Run the scheduler: clients send it their plans, it splits them into stages and hands the
/// tasks to the executors that registered with it.
///
/// Runs until stopped (Ctrl-C, SIGTERM). Exit status: 1 when it cannot start (port taken,
/// bad address), 2 bad arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = SCHEDULER_EXAMPLES)]
pub struct SchedulerArgs {
    /// Address to listen on for clients and executors: HOST:PORT (0.0.0.0:50050 for every
    /// interface).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50050")]
    pub bind: String,

    /// The host name other machines reach this scheduler by (default: the bind host).
    #[arg(long, value_name = "HOST")]
    pub advertise: Option<String>,

    /// Take an executor as lost after SECS without a heartbeat, and run its tasks elsewhere.
    #[arg(long, value_name = "SECS", default_value_t = evtxsql_cluster::scheduler::EXECUTOR_TIMEOUT_SECS)]
    pub executor_timeout: u64,
}

const SCHEDULER_EXAMPLES: &str = "\
Examples:
  evtxsql cluster scheduler                                   # 127.0.0.1:50050, this machine only
  evtxsql cluster scheduler --bind 0.0.0.0:50050 --advertise sched.example";

/// Run an executor: registers with the scheduler, runs the tasks it is given (reading the
/// store's Parquet files), keeps its shuffle output for the next stage, and serves results.
///
/// Uses two ports: --bind's (results and shuffle data, Arrow Flight) and --grpc-port (tasks
/// from the scheduler; default: the bind port + 1). Runs until stopped; Ctrl-C or SIGTERM
/// stop it gracefully. Exit status: 1 when it cannot start (scheduler unreachable after
/// --wait, port taken), 2 bad arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = EXECUTOR_EXAMPLES)]
pub struct ExecutorArgs {
    /// The scheduler: HOST:PORT (df://HOST:PORT is accepted too).
    #[arg(long, value_name = "ADDR")]
    pub scheduler: String,

    /// Address to serve results and shuffle data on: HOST:PORT.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:50051")]
    pub bind: String,

    /// Port for tasks from the scheduler (default: the bind port + 1).
    #[arg(long, value_name = "PORT")]
    pub grpc_port: Option<u16>,

    /// The host name the scheduler, other executors and clients reach this executor by
    /// (needed with --bind 0.0.0.0:PORT on a machine with several addresses).
    #[arg(long, value_name = "HOST")]
    pub advertise: Option<String>,

    /// Tasks run at once (default: one per core).
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,

    /// Memory for all tasks' sorts, joins and aggregations (e.g. 8GiB); beyond it they spill
    /// to disk (default: 70% of the machine's memory).
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,

    /// Directory for shuffle files (default: a new temporary directory).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,

    /// Wait up to SECS for the scheduler to accept connections before giving up.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub wait: u64,
}

const EXECUTOR_EXAMPLES: &str = "\
Examples:
  evtxsql cluster executor --scheduler 127.0.0.1:50050
  evtxsql cluster executor --scheduler 127.0.0.1:50050 --bind 127.0.0.1:50061   # a second one here
  evtxsql cluster executor --scheduler sched.example:50050 --bind 0.0.0.0:50051 \\
      --advertise exec1.example --concurrency 16 --memory-limit 48GiB --work-dir /scratch/evtxsql";

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(16 * 1024 * 1024)
        .build()
        .context("starting the async runtime")
}

pub fn run(args: ClusterArgs) -> anyhow::Result<u8> {
    evtxsql_cluster::logger::init();
    match args.role {
        Role::Scheduler(a) => {
            let opts = SchedulerOptions {
                bind: HostPort::parse("--bind", &a.bind, None)?,
                advertise: a.advertise,
                executor_timeout_secs: a.executor_timeout,
            };
            runtime()?.block_on(evtxsql_cluster::run_scheduler(&opts))?;
        }
        Role::Executor(a) => {
            let scheduler = a.scheduler.trim();
            let scheduler = scheduler.strip_prefix("df://").unwrap_or(scheduler);
            let opts = ExecutorOptions {
                scheduler: HostPort::parse(
                    "--scheduler",
                    scheduler,
                    Some(evtxsql_cluster::address::DEFAULT_SCHEDULER_PORT),
                )?,
                bind: HostPort::parse("--bind", &a.bind, None)?,
                grpc_port: a.grpc_port,
                advertise: a.advertise,
                concurrency: a.concurrency.filter(|n| *n > 0),
                memory_limit: a
                    .memory_limit
                    .as_deref()
                    .map(evtxsql_query::parse_size)
                    .transpose()?,
                work_dir: a.work_dir,
                wait_for_scheduler: Duration::from_secs(a.wait),
            };
            runtime()?.block_on(evtxsql_cluster::run_executor(&opts))?;
        }
    }
    Ok(EXIT_OK)
}

/// A session over `store` whose queries run on the cluster at `url` (`df://HOST:PORT`).
pub async fn remote_session(
    url: &str,
    store: &Path,
    opts: &SessionOptions,
) -> Result<SessionContext, QueryError> {
    let parsed = ClusterUrl::parse(url).map_err(|e| QueryError::InvalidOption {
        what: "--cluster",
        value: url.to_string(),
        message: match e {
            evtxsql_cluster::ClusterError::Address { message, .. } => message,
            other => other.to_string(),
        },
    })?;
    evtxsql_cluster::remote_session_for_store(
        &parsed,
        store,
        opts,
        evtxsql_cluster::CONNECT_TIMEOUT,
    )
    .await
    .map_err(|e| e.into_query_error(&parsed.to_string()))
}
