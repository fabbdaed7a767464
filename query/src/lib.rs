//! evtxsql-query: DataFusion over an evtxsql store and over raw EVTX files.
//!
//! [`session_for_store`] and [`session_for_evtx`] build a `SessionContext` with the `events` and
//! `files` tables, the SMB views and the evtxsql functions; [`output`] writes results as a table,
//! CSV, JSON, JSON lines, Parquet or Arrow IPC. Knows DataFusion and the store layout, nothing of
//! rules.

pub mod error;
pub mod functions;
pub mod ntstatus;

pub use error::QueryError;
pub use functions::register_udfs;
pub mod evtx;
pub mod session;
pub mod views;

pub use session::{SessionOptions, new_context, parse_size, session_for_evtx, session_for_store};
pub mod cells;
pub mod output;

pub use output::{Format, OutputOptions, parse_tz, write_batches, write_stream};
pub mod statement;

pub use statement::{SqlStatement, execute, parse_statements, sql};
