//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while writing EVTX files or generating scenarios.
#[derive(Debug, thiserror::Error)]
pub enum SamplesError {
    /// An I/O operation on a file or directory failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("create", "write", "seek", ...).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record does not fit into an empty 64 KiB chunk.
    #[error(
        "record {record_id} of event {event_id} ({provider}) needs {size} bytes, more than a chunk holds"
    )]
    RecordTooLarge {
        /// The record id the record would have had.
        record_id: u64,
        /// Its event id.
        event_id: u16,
        /// Its provider name.
        provider: String,
        /// The bytes it needs.
        size: usize,
    },
    /// A single substitution value is larger than the 65 535 bytes a descriptor can express.
    #[error("value of field {field} of event {event_id} is {size} bytes, more than 65535")]
    ValueTooLarge {
        /// The field's name.
        field: String,
        /// The event id.
        event_id: u16,
        /// The encoded size.
        size: usize,
    },
    /// An event's values do not match its schema.
    #[error("event {event_id} ({provider}): {problem}")]
    SchemaMismatch {
        /// The event id.
        event_id: u16,
        /// The provider name.
        provider: String,
        /// What does not match.
        problem: String,
    },
    /// A file would need more chunks than the file header can count (65 535).
    #[error("{path}: more than 65535 chunks (about 4 GiB) in one EVTX file")]
    TooManyChunks {
        /// The file being written.
        path: PathBuf,
    },
    /// The scenario name is not one of [`crate::scenario_names`].
    #[error("unknown scenario {name:?}; known: {known}")]
    UnknownScenario {
        /// The name asked for.
        name: String,
        /// The known names, comma separated.
        known: String,
    },
    /// An option value is out of range.
    #[error("invalid option {option}: {problem}")]
    InvalidOption {
        /// The option.
        option: &'static str,
        /// Why it is invalid.
        problem: String,
    },
    /// A text form of a SID or GUID could not be parsed.
    #[error("cannot parse {what} from {text:?}")]
    Parse {
        /// "SID" or "GUID".
        what: &'static str,
        /// The text.
        text: String,
    },
    /// Serializing truth.json or counts.json failed.
    #[error("serialize {path}: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: serde_json::Error,
    },
    /// A generator thread panicked (a bug); the message is kept.
    #[error("generator thread failed: {0}")]
    Thread(String),
}

impl SamplesError {
    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
        source: std::io::Error,
    ) -> Self {
        SamplesError::Io {
            action,
            path: path.into(),
            source,
        }
    }
}
