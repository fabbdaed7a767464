//! evtxsql-query: DataFusion over an evtxsql store and over raw EVTX files.
//!
//! - [`session_for_store`] / [`session_for_evtx`]: a `SessionContext` with the `events` and
//!   `files` tables, the SMB [`views`], the evtxsql [`functions`] and `read_evtx(...)` ([`evtx`]),
//!   configured by [`SessionOptions`] (memory limit with spilling, threads).
//! - [`objects`]: the object store registry of every session: local files and `s3://` buckets.
//! - [`statement`]: SQL text with one or more statements, with errors that give the position.
//! - [`output`]: results as a table, CSV, JSON, JSON lines, Parquet or Arrow IPC ([`cells`]
//!   renders values; times are UTC ISO-8601 unless a zone is chosen).
//!
//! Knows DataFusion and the store layout, nothing of rules.

/// The DataFusion this crate is built on, for callers that use its types.
pub use datafusion;

pub mod cells;
pub mod dictionary_exprs;
pub mod error;
pub mod evtx;
mod footers;
pub mod functions;
pub mod grouping;
pub mod ntstatus;
pub mod objects;
pub mod output;
mod pieces;
pub mod pushdown;
mod rowstats;
pub mod session;
pub mod statement;
pub mod views;

pub use error::QueryError;
pub use functions::{register_functions, register_udfs};
pub use output::{Format, OutputOptions, parse_tz, write_batches, write_stream};
pub use session::{
    SessionOptions, new_context, parse_size, register_store, session_config, session_for_evtx,
    session_for_store, session_state,
};
pub use statement::{SqlStatement, execute, parse_statements, sql};
