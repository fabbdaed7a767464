//! evtxsql-cluster: evtxsql's SQL and rule packs on an Apache DataFusion Ballista cluster.
//!
//! - [`scheduler`]: the scheduler role (`evtxsql cluster scheduler`), whose sessions know
//!   evtxsql's functions so that it can plan the SQL clients send.
//! - [`executor`]: the executor role (`evtxsql cluster executor`), whose function registry holds
//!   evtxsql's functions so that the plan fragments it runs can call them.
//! - [`remote`]: a client session whose queries run on the cluster (`--cluster df://HOST:PORT`):
//!   the store's tables and views, planned here, executed by the executors.
//! - [`codec`]: the plan codec every role uses; it names the table that cannot travel.
//! - [`address`]: `df://HOST:PORT` and `HOST:PORT` arguments, and the reachability check.
//! - [`registry`]: evtxsql's functions on the scheduler's sessions and the executor's registry.
//! - [`logger`]: the roles' log lines on standard error.
//!
//! Every Ballista crate is a dependency of this crate only, so that the rest of the workspace
//! builds without them. Knows `evtxsql-query`, nothing of rules.

pub mod address;
pub mod codec;
pub mod error;
pub mod executor;
pub mod logger;
pub mod registry;
pub mod remote;
pub mod scheduler;

pub use address::{ClusterUrl, HostPort};
pub use error::ClusterError;
pub use executor::{ExecutorOptions, run_executor};
pub use remote::{CONNECT_TIMEOUT, remote_session_for_store};
pub use scheduler::{SchedulerOptions, run_scheduler};
