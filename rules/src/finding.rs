//! Findings: the rows a rule returns, with the rule's metadata attached, and their conversion from
//! Arrow record batches.

use std::sync::Arc;

use arrow::array::ArrayRef;
use arrow::datatypes::{DataType, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatch;
use evtxsql_query::cells::ColumnCells;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Result, RulesError};
use crate::rule::{Rule, RuleKind, STANDARD_COLUMNS, Severity};

/// One finding: a row of a rule's result.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    /// The rule id (`client_allowed_guest`).
    pub rule: String,
    pub title: String,
    pub severity: Severity,
    pub kind: RuleKind,
    /// The host whose logs show it (a client for client rules, the server for server rules).
    pub host: Option<String>,
    /// The SMB server involved, normalized (lower case, no backslashes).
    pub server: Option<String>,
    pub user_name: Option<String>,
    /// RFC 3339 UTC, seconds precision.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    pub count: u64,
    /// What to look at: event ids, record ids, values.
    pub evidence: String,
    /// Any further columns of the rule, in the rule's column order.
    pub extra: Map<String, Value>,
}

impl Finding {
    /// A stable sort key: severity (highest first), rule, host, server, user, time, evidence.
    pub fn sort_key(&self) -> impl Ord + '_ {
        (
            std::cmp::Reverse(self.severity),
            self.rule.as_str(),
            self.host.as_deref().unwrap_or(""),
            self.server.as_deref().unwrap_or(""),
            self.user_name.as_deref().unwrap_or(""),
            self.first_seen.as_deref().unwrap_or(""),
            self.evidence.as_str(),
        )
    }
}

/// The cells of one result column: query's conversion (numbers stay numbers, strings and
/// dictionaries become text, other types Arrow's display), with times in seconds precision
/// (`2025-01-31T08:00:00Z`), the findings' convention.
fn column_cells(columns: &[ArrayRef]) -> std::result::Result<Vec<ColumnCells<'_>>, ArrowError> {
    columns
        .iter()
        .map(|c| ColumnCells::new(c.as_ref(), None))
        .collect()
}

/// Times cut to whole seconds, before [`column_cells`].
fn in_seconds(col: &ArrayRef) -> std::result::Result<ArrayRef, ArrowError> {
    match col.data_type() {
        DataType::Timestamp(unit, _) if *unit != TimeUnit::Second => {
            arrow::compute::cast(col, &DataType::Timestamp(TimeUnit::Second, None))
        }
        _ => Ok(Arc::clone(col)),
    }
}

fn text(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) if s.is_empty() => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    }
}

/// The column names of a plan's result, in order.
pub(crate) fn column_names(schema: &datafusion::common::DFSchema) -> Vec<String> {
    schema.fields().iter().map(|f| f.name().clone()).collect()
}

/// Which standard columns a schema lacks (names compared case-insensitively).
pub fn missing_standard_columns(names: &[String]) -> Vec<&'static str> {
    STANDARD_COLUMNS
        .iter()
        .copied()
        .filter(|c| !names.iter().any(|n| n.eq_ignore_ascii_case(c)))
        .collect()
}

/// Turn a rule's result batches into findings.
pub fn findings_from_batches(rule: &Rule, batches: &[RecordBatch]) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for batch in batches {
        let unreadable = |e: ArrowError| RulesError::Output {
            rule: rule.id.clone(),
            origin: rule.origin.clone(),
            message: format!("a result column cannot be read: {e}"),
        };
        let columns = batch
            .columns()
            .iter()
            .map(in_seconds)
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(unreadable)?;
        let cells = column_cells(&columns).map_err(unreadable)?;
        let schema = batch.schema();
        let names: Vec<String> = schema
            .fields()
            .iter()
            .map(|f| f.name().to_ascii_lowercase())
            .collect();
        for row in 0..batch.num_rows() {
            let mut f = Finding {
                rule: rule.id.clone(),
                title: rule.title.clone(),
                severity: rule.severity,
                kind: rule.kind,
                host: None,
                server: None,
                user_name: None,
                first_seen: None,
                last_seen: None,
                count: 0,
                evidence: String::new(),
                extra: Map::new(),
            };
            for (i, name) in names.iter().enumerate() {
                let v = cells[i].cell(row).to_json();
                match name.as_str() {
                    "host" => f.host = text(v),
                    "server" => f.server = text(v),
                    "user_name" => f.user_name = text(v),
                    "first_seen" => f.first_seen = text(v),
                    "last_seen" => f.last_seen = text(v),
                    "count" => {
                        f.count = v
                            .as_u64()
                            .or_else(|| v.as_f64().map(|x| x as u64))
                            .unwrap_or(0)
                    }
                    "evidence" => f.evidence = text(v).unwrap_or_default(),
                    _ => {
                        f.extra.insert(schema.field(i).name().clone(), v);
                    }
                }
            }
            out.push(f);
        }
    }
    Ok(out)
}
