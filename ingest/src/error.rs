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
    /// A store in S3 (`s3://bucket/prefix`) could not be used: a bad URL, no credentials, a
    /// missing bucket, an endpoint that does not answer, a writer lock lost to another writer.
    #[error("{url}: {message}")]
    Remote { url: String, message: String },
}

/// One record, chunk or batch of a file that could not be read, and where: a bad record is data
/// (counted in the `files` table and named in a warning), not a failure of the ingest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}{}: {kind}", path.display(), at("chunk", *chunk), at("record", *record))]
pub struct RecordProblem {
    pub path: PathBuf,
    /// The chunk's number in the file (0-based), when known.
    pub chunk: Option<u64>,
    /// The record's EventRecordID, when known.
    pub record: Option<u64>,
    pub kind: ProblemKind,
}

fn at(what: &str, n: Option<u64>) -> String {
    n.map(|n| format!(": {what} {n}")).unwrap_or_default()
}

/// Why a record, chunk or batch could not be read; the text is the parser's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProblemKind {
    /// The chunk header is damaged (bad magic, bad checksum, cut short).
    #[error("{0}")]
    Chunk(String),
    /// The record header or its BinXML could not be parsed.
    #[error("{0}")]
    Record(String),
    /// The parser could not render the record.
    #[error("{0}")]
    Render(String),
    /// The rendered record is not UTF-8 or not the JSON shape of an event.
    #[error("{0}")]
    Convert(#[from] ConvertError),
    /// The rows read could not be assembled into an Arrow batch.
    #[error("building batch failed: {0}")]
    Batch(String),
}

/// Why a rendered record could not become a row.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConvertError {
    #[error("invalid UTF-8 in rendered record: {0}")]
    NotUtf8(std::str::Utf8Error),
    #[error("unreadable rendered record: {0}")]
    NotAnEvent(String),
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
