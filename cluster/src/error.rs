//! The one error type of the cluster crate.

use std::time::Duration;

use evtxsql_query::QueryError;

/// What can go wrong starting a cluster role or a session on a cluster.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// An address argument is not what it should be.
    #[error("invalid {what} `{value}`: {message}")]
    Address {
        what: &'static str,
        value: String,
        message: String,
    },
    /// Nothing accepted a connection at the scheduler's address (the cause is in the message).
    #[error("no Ballista scheduler at {url}: {cause}")]
    Unreachable { url: String, cause: std::io::Error },
    /// The scheduler's address did not answer within the time allowed.
    #[error("no Ballista scheduler at {url}: no answer within {} s", timeout.as_secs_f64())]
    Timeout { url: String, timeout: Duration },
    /// A role could not start or stopped with an error.
    #[error("{role} at {address}: {message}")]
    Role {
        role: &'static str,
        address: String,
        message: String,
    },
    /// Setting up the session (functions, store tables) failed.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// DataFusion failed while the session was set up.
    #[error("setting up the cluster session ({what}): {source}")]
    Setup {
        what: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
}

impl ClusterError {
    /// As a [`QueryError`], for commands whose error handling speaks that type: setup errors of
    /// the store stay what they are, the rest name the cluster address.
    pub fn into_query_error(self, url: &str) -> QueryError {
        match self {
            ClusterError::Query(e) => e,
            other => QueryError::Remote {
                what: format!("cluster {url}"),
                cause: Box::new(other),
            },
        }
    }
}
