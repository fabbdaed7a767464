//! The one error type of the ingest crate.

use std::path::PathBuf;

/// What can go wrong while reading EVTX or writing a store. Every variant names the place.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not an EVTX file (no `ElfFile` signature)")]
    NotEvtx { path: PathBuf },
    #[error("{path}: cannot open as EVTX: {message}")]
    Open { path: PathBuf, message: String },
    #[error("{path}: no such file, directory or glob match")]
    NoMatch { path: PathBuf },
    #[error("{path}: directory holds no EVTX files (none starts with the `ElfFile` signature)")]
    NoLogs { path: PathBuf },
    #[error("invalid glob pattern `{pattern}`: {message}")]
    Glob { pattern: String, message: String },
    #[error("{path}: not an evtxsql store (missing {marker})")]
    NotAStore { path: PathBuf, marker: &'static str },
    #[error(
        "{path}: store format {found} is newer than this evtxsql understands ({supported}); upgrade evtxsql"
    )]
    NewerStore {
        path: PathBuf,
        found: u32,
        supported: u32,
    },
    #[error("{path}: corrupt store metadata: {message}")]
    BadStore { path: PathBuf, message: String },
    #[error("{path}: writing Parquet failed: {source}")]
    Parquet {
        path: PathBuf,
        #[source]
        source: parquet::errors::ParquetError,
    },
    #[error("building Arrow batch failed: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("cannot start worker threads: {0}")]
    Threads(String),
}

pub type Result<T, E = IngestError> = std::result::Result<T, E>;

impl IngestError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        IngestError::Io {
            path: path.into(),
            source,
        }
    }
}
