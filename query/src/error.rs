//! The one error type of the query crate.

use std::path::PathBuf;

use datafusion::error::DataFusionError;
use evtxsql_ingest::IngestError;

/// What can go wrong while setting up a session, running SQL or writing results.
/// [`QueryError::is_usage`] tells the CLI which of them are the user's to fix (exit status 2).
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The store could not be opened (missing, not a store, made by a newer evtxsql).
    #[error("cannot open store {path}: {source}")]
    Store {
        path: PathBuf,
        #[source]
        source: IngestError,
    },
    /// EVTX inputs could not be found or read.
    #[error("{0}")]
    Evtx(#[source] IngestError),
    /// No EVTX file matched the given paths.
    #[error("no EVTX files found in {paths}")]
    NoEvtxFiles { paths: String },
    /// The SQL text could not be parsed or planned (syntax, unknown table or column, types).
    #[error("{message}")]
    Sql {
        message: String,
        /// 1-based line and column in the SQL text, when DataFusion reports one.
        position: Option<(u64, u64)>,
        #[source]
        source: DataFusionError,
    },
    /// The query was valid but failed while running (I/O, memory, a bad file).
    #[error("query failed: {0}")]
    Execution(#[source] DataFusionError),
    /// Setting up the session (tables, views, functions) failed.
    #[error("cannot set up the SQL session ({what}): {source}")]
    Setup {
        what: String,
        #[source]
        source: DataFusionError,
    },
    /// A bad option value (memory size, time zone, output format).
    #[error("invalid {what} `{value}`: {message}")]
    InvalidOption {
        what: &'static str,
        value: String,
        message: String,
    },
    /// Writing results failed.
    #[error("writing {format} output to {target}: {message}")]
    Output {
        format: &'static str,
        target: String,
        message: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A place the session runs on (another process, a cluster) could not be used; `what`
    /// names it (an address). The cause is part of the message (not a `source`, so that error
    /// chains do not repeat it).
    #[error("{what}: {cause}")]
    Remote {
        what: String,
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl QueryError {
    /// True when the user can fix it by changing the command line or the SQL: bad SQL, unknown
    /// column or table, a missing or too-new store, no input files, a bad option.
    pub fn is_usage(&self) -> bool {
        match self {
            QueryError::Store { .. }
            | QueryError::NoEvtxFiles { .. }
            | QueryError::Sql { .. }
            | QueryError::InvalidOption { .. } => true,
            QueryError::Evtx(e) => {
                matches!(e, IngestError::NoMatch { .. } | IngestError::Glob { .. })
            }
            _ => false,
        }
    }

    /// True when the reader of our output went away (`evtxsql query ... | head`): not an error
    /// worth reporting.
    pub fn is_broken_pipe(&self) -> bool {
        match self {
            QueryError::Io { source, .. } => source.kind() == std::io::ErrorKind::BrokenPipe,
            QueryError::Output { message, .. } => {
                message.contains("Broken pipe") || message.contains("os error 32")
            }
            _ => false,
        }
    }

    /// Classify an error DataFusion gave while planning `sql`: syntax and planning errors become
    /// [`QueryError::Sql`] with the position, the rest [`QueryError::Execution`].
    pub fn from_planning(source: DataFusionError) -> QueryError {
        let root = source.find_root();
        let is_sql = matches!(
            root,
            DataFusionError::SQL(..)
                | DataFusionError::Plan(..)
                | DataFusionError::SchemaError(..)
                | DataFusionError::NotImplemented(..)
                | DataFusionError::Configuration(..)
        ) || source.diagnostic().is_some();
        if !is_sql {
            return QueryError::Execution(source);
        }
        let position = source
            .diagnostic()
            .and_then(|d| d.span)
            .map(|s| (s.start.line, s.start.column))
            .filter(|(l, c)| *l > 0 && *c > 0)
            .or_else(|| position_in_message(&root.to_string()));
        let message = match source.diagnostic() {
            Some(d) => d.message.clone(),
            None => clean_message(&root.strip_backtrace()),
        };
        QueryError::Sql {
            message,
            position,
            source,
        }
    }

    /// The SQL error explained with a caret under the position in `sql`, or the plain message.
    pub fn render_with_sql(&self, sql: &str) -> String {
        let (message, line, col) = match self {
            QueryError::Sql {
                message,
                position: Some((line, col)),
                ..
            } => (message, *line, *col),
            // The statement ended too early: point just past its end.
            QueryError::Sql { message, .. } if message.contains("found: EOF") => {
                let text = sql.trim_end();
                let line = text.lines().count().max(1);
                let col = text.lines().last().map_or(0, |l| l.chars().count()) + 1;
                (message, line as u64, col as u64)
            }
            _ => return self.to_string(),
        };
        let Some(text) = sql
            .lines()
            .nth(usize::try_from(line).unwrap_or(0).saturating_sub(1))
        else {
            return format!("{message} (line {line}, column {col})");
        };
        let pad = " ".repeat(usize::try_from(col).unwrap_or(1).saturating_sub(1));
        format!("{message}\n  at line {line}, column {col}:\n  {text}\n  {pad}^")
    }
}

/// sqlparser writes positions as `at Line: 1, Column: 8`.
fn position_in_message(msg: &str) -> Option<(u64, u64)> {
    let at = msg.rfind("Line: ")?;
    let rest = &msg[at + "Line: ".len()..];
    let (line, rest) = rest.split_once(", Column: ")?;
    let col: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((line.trim().parse().ok()?, col.parse().ok()?))
}

/// Drop DataFusion's wrapping (`SQL error: ParserError("...")`, `Error during planning: `).
fn clean_message(msg: &str) -> String {
    let mut m = msg.trim();
    for prefix in ["SQL error: ", "Error during planning: ", "Schema error: "] {
        if let Some(rest) = m.strip_prefix(prefix) {
            m = rest;
        }
    }
    if let Some(inner) = m
        .strip_prefix("ParserError(\"")
        .or_else(|| m.strip_prefix("TokenizerError(\""))
        .and_then(|r| r.strip_suffix("\")"))
    {
        return inner.replace("\\\"", "\"");
    }
    m.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_from_parser_messages() {
        assert_eq!(
            position_in_message("Expected: end of statement, found: x at Line: 2, Column: 13"),
            Some((2, 13))
        );
        assert_eq!(position_in_message("no position"), None);
        assert_eq!(
            clean_message("SQL error: ParserError(\"Expected: an expression, found: EOF\")"),
            "Expected: an expression, found: EOF"
        );
    }
}
