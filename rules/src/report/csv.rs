//! CSV: one row per finding, the standard columns then the extra columns as one JSON object.
//! Cells that a spreadsheet would run as a formula (`= + - @`, tab, carriage return first) get
//! a leading `'`.

use evtxsql_query::cells::neutralize_formula;

use super::Report;
use crate::error::{Result, RulesError};

const HEADER: [&str; 12] = [
    "severity",
    "rule",
    "title",
    "host",
    "server",
    "user_name",
    "first_seen",
    "last_seen",
    "count",
    "evidence",
    "kind",
    "extra",
];

/// Render the CSV report.
pub fn render(r: &Report) -> Result<String> {
    let err = |e: &dyn std::fmt::Display| RulesError::Render {
        format: "csv".into(),
        message: e.to_string(),
    };
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(HEADER).map_err(|e| err(&e))?;
    for f in &r.findings {
        let extra = serde_json::Value::Object(f.extra.clone()).to_string();
        let cells = [
            f.severity.as_str().to_string(),
            f.rule.clone(),
            f.title.clone(),
            f.host.clone().unwrap_or_default(),
            f.server.clone().unwrap_or_default(),
            f.user_name.clone().unwrap_or_default(),
            f.first_seen.clone().unwrap_or_default(),
            f.last_seen.clone().unwrap_or_default(),
            f.count.to_string(),
            f.evidence.clone(),
            match f.kind {
                crate::rule::RuleKind::Detection => "detection".to_string(),
                crate::rule::RuleKind::Inventory => "inventory".to_string(),
            },
            if f.extra.is_empty() {
                String::new()
            } else {
                extra
            },
        ];
        w.write_record(cells.iter().map(|c| neutralize_formula(c).into_owned()))
            .map_err(|e| err(&e))?;
    }
    let bytes = w.into_inner().map_err(|e| err(&e))?;
    String::from_utf8(bytes).map_err(|e| err(&e))
}
