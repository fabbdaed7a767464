//! Findings: the rows a rule returns, with the rule's metadata attached, and their conversion from
//! Arrow record batches.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType, Int64Type, TimeUnit, TimestampMicrosecondType, UInt64Type};
use arrow::record_batch::RecordBatch;
use serde::Serialize;
use serde_json::{Map, Value};

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

/// Format microseconds since the epoch as `2025-01-31T08:00:00Z`.
pub fn format_micros(us: i64) -> String {
    match chrono::DateTime::from_timestamp_micros(us) {
        Some(t) => t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        None => us.to_string(),
    }
}

/// Convert one cell to JSON: integers stay numbers, timestamps become RFC 3339 text, strings and
/// dictionaries become text, everything else uses Arrow's display formatting.
fn cell(col: &ArrayRef, row: usize) -> Value {
    if col.is_null(row) {
        return Value::Null;
    }
    match col.data_type() {
        DataType::Boolean => Value::Bool(col.as_boolean().value(row)),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            match arrow::compute::cast(&col.slice(row, 1), &DataType::Int64) {
                Ok(a) => Value::from(a.as_primitive::<Int64Type>().value(0)),
                Err(_) => Value::Null,
            }
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            match arrow::compute::cast(&col.slice(row, 1), &DataType::UInt64) {
                Ok(a) => Value::from(a.as_primitive::<UInt64Type>().value(0)),
                Err(_) => Value::Null,
            }
        }
        DataType::Float32 | DataType::Float64 => {
            match arrow::compute::cast(&col.slice(row, 1), &DataType::Float64) {
                Ok(a) => serde_json::Number::from_f64(
                    a.as_primitive::<arrow::datatypes::Float64Type>().value(0),
                )
                .map(Value::Number)
                .unwrap_or(Value::Null),
                Err(_) => Value::Null,
            }
        }
        DataType::Timestamp(_, _) => {
            let target = DataType::Timestamp(TimeUnit::Microsecond, None);
            match arrow::compute::cast(&col.slice(row, 1), &target) {
                Ok(a) => Value::String(format_micros(
                    a.as_primitive::<TimestampMicrosecondType>().value(0),
                )),
                Err(_) => Value::Null,
            }
        }
        _ => match arrow::compute::cast(&col.slice(row, 1), &DataType::Utf8) {
            Ok(a) => Value::String(a.as_string::<i32>().value(0).to_string()),
            Err(_) => {
                let fmt = arrow::util::display::ArrayFormatter::try_new(
                    col.as_ref(),
                    &arrow::util::display::FormatOptions::default(),
                );
                match fmt {
                    Ok(f) => Value::String(f.value(row).to_string()),
                    Err(_) => Value::Null,
                }
            }
        },
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

/// Which standard columns a schema lacks (names compared case-insensitively).
pub fn missing_standard_columns(names: &[String]) -> Vec<&'static str> {
    STANDARD_COLUMNS
        .iter()
        .copied()
        .filter(|c| !names.iter().any(|n| n.eq_ignore_ascii_case(c)))
        .collect()
}

/// Turn a rule's result batches into findings.
pub fn findings_from_batches(rule: &Rule, batches: &[RecordBatch]) -> Vec<Finding> {
    let mut out = Vec::new();
    for batch in batches {
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
                let v = cell(batch.column(i), row);
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
    out
}
