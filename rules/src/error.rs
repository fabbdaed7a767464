//! The one error type of the rules crate. Every variant names where it happened: the rule file
//! and line, the rule id, the output path.

use std::path::PathBuf;

/// Errors from loading, checking and running rules and from rendering reports.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    /// A malformed `-- key: value` header line, or a missing/invalid key.
    #[error("{origin}:{line}: {problem}")]
    Header {
        origin: String,
        line: usize,
        problem: HeaderProblem,
    },
    /// The SQL body does not parse, is not a single query, or does not plan against the schema.
    #[error("{origin}:{line}: {message}")]
    Sql {
        origin: String,
        line: usize,
        message: String,
    },
    /// Two rules share an id.
    #[error("rule id `{id}` is defined twice: {first} and {second}")]
    DuplicateId {
        id: String,
        first: String,
        second: String,
    },
    /// `--pack NAME` names no built-in pack.
    #[error("unknown rule pack `{name}` (built-in packs: {known})")]
    UnknownPack { name: String, known: String },
    /// A rule directory holds no `.sql` file.
    #[error("{path}: no .sql rule files found")]
    EmptyRuleDir { path: PathBuf },
    /// Reading a rule file or directory, or writing a report.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Two packs of one run each bring a timeline query.
    #[error(
        "two timeline queries in one run: {first} and {second} (a run draws one timeline; \
         leave one pack out, e.g. with --pack none)"
    )]
    DuplicateTimeline { first: String, second: String },
    /// DataFusion failed while preparing the shared relation or the timeline.
    #[error("{stage}: {source}")]
    DataFusion {
        stage: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// A rule failed to plan or run.
    #[error("rule `{rule}` ({origin}): {source}")]
    Rule {
        rule: String,
        origin: String,
        #[source]
        source: datafusion::error::DataFusionError,
    },
    /// A rule's result is missing a standard column or has one of the wrong type.
    #[error("rule `{rule}` ({origin}): {message}")]
    Output {
        rule: String,
        origin: String,
        message: String,
    },
    /// A `--since`/`--until` value that is not a date or timestamp.
    #[error("bad time `{value}`: expected YYYY-MM-DD or RFC 3339 (2025-01-31T08:00:00Z)")]
    BadTime { value: String },
    /// A report template or renderer failed.
    #[error("rendering the {format} report: {message}")]
    Render { format: String, message: String },
}

impl RulesError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RulesError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn df(stage: impl Into<String>, source: datafusion::error::DataFusionError) -> Self {
        RulesError::DataFusion {
            stage: stage.into(),
            source,
        }
    }
}

/// A word that is not one of the names a setting takes (`--format`, `--fail-on`, `severity:`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` ({expected})")]
pub struct UnknownName {
    /// What was being named: `format`, `severity`, `kind`.
    pub what: &'static str,
    pub value: String,
    /// The names it takes, for the message.
    pub expected: String,
}

/// What is wrong with a rule file's `-- key: value` header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderProblem {
    #[error("expected `-- key: value`")]
    NotKeyValue,
    #[error("no SQL after the header")]
    NoSql,
    #[error("missing `-- {0}:` header line")]
    Missing(&'static str),
    #[error("`{0}` given twice")]
    Twice(&'static str),
    #[error("`{0}` does not apply to a timeline query")]
    NotForTimeline(&'static str),
    #[error("`{0}` is empty")]
    Empty(&'static str),
    #[error("id `{0}` may only hold letters, digits, `_`, `-`, `.`")]
    BadId(String),
    #[error(transparent)]
    Unknown(#[from] UnknownName),
    #[error("requires `{0}`: expected `<provider or channel>: <event id>, ...`")]
    RequiresShape(String),
    #[error("requires: empty provider/channel name")]
    RequiresNoSource,
    #[error("requires: `{0}` is not an event id")]
    RequiresBadId(String),
    #[error("requires `{0}`: no event ids")]
    RequiresNoIds(String),
}

/// Result alias of the rules crate.
pub type Result<T, E = RulesError> = std::result::Result<T, E>;
