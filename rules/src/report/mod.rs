//! Reports: a run's findings with a summary and the daily timeline, rendered as text, JSON,
//! JSON lines, CSV, Markdown or one self-contained HTML file. Every renderer is deterministic:
//! the same store and rules give the same bytes.

mod chart;
mod csv;
mod html;
mod markdown;
mod text;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use serde::Serialize;

use crate::error::{Result, UnknownName};
use crate::finding::Finding;
use crate::rule::{Rule, RuleKind, Severity};
use crate::runner::RunOutput;
use crate::timeline::{DailyCount, Scope};

/// Output formats of `report` and `scan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Jsonl,
    Csv,
    Md,
    Html,
}

impl Format {
    pub const NAMES: [&'static str; 6] = ["text", "json", "jsonl", "csv", "md", "html"];

    pub fn as_str(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
            Format::Md => "md",
            Format::Html => "html",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Format {
    type Err = UnknownName;

    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "text" | "txt" => Ok(Format::Text),
            "json" => Ok(Format::Json),
            "jsonl" | "ndjson" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            "md" | "markdown" => Ok(Format::Md),
            "html" | "htm" => Ok(Format::Html),
            other => Err(UnknownName {
                what: "format",
                value: other.to_string(),
                expected: format!("one of {}", Format::NAMES.join(", ")),
            }),
        }
    }
}

/// Where the report's data came from.
#[derive(Debug, Clone, Serialize)]
pub struct ReportMeta {
    /// `evtxsql 0.1.0`.
    pub tool: String,
    /// The store directory, or the scanned inputs.
    pub source: String,
    pub packs: Vec<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// One rule as the report lists it.
#[derive(Debug, Clone, Serialize)]
pub struct RuleSummary {
    pub id: String,
    pub title: String,
    pub severity: Severity,
    pub kind: RuleKind,
    pub description: String,
    pub attack: Vec<String>,
    pub references: Vec<String>,
    pub falsepositives: Vec<String>,
    pub findings: usize,
}

/// A server or client ranked by guest activity.
#[derive(Debug, Clone, Serialize)]
pub struct Top {
    pub name: String,
    pub allowed: u64,
    pub rejected: u64,
    /// Distinct peers in the findings: clients of a server, servers of a client.
    pub peers: usize,
}

/// The headline numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub findings: usize,
    /// Detection findings (inventory rules excluded), per severity, highest first.
    pub by_severity: Vec<(Severity, usize)>,
    pub detections: usize,
    pub inventory: usize,
    pub hosts: usize,
    pub servers: usize,
    pub users: usize,
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Rows of the shared relation (events the rules looked at), when known.
    pub events_examined: Option<usize>,
    pub top_servers: Vec<Top>,
    pub top_clients: Vec<Top>,
}

/// A complete report.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub meta: ReportMeta,
    pub summary: Summary,
    pub rules: Vec<RuleSummary>,
    pub findings: Vec<Finding>,
    pub timeline: Vec<DailyCount>,
}

/// How many servers/clients the "top" tables list.
pub const TOP_N: usize = 10;

impl Report {
    /// Assemble a report from a run.
    pub fn build(meta: ReportMeta, rules: &[Rule], run: &RunOutput) -> Report {
        Report::from_parts(
            meta,
            rules,
            run.findings.clone(),
            run.timeline.clone(),
            run.relation_rows,
        )
    }

    /// Assemble a report from findings and a timeline (sorted here, so any order will do).
    pub fn from_parts(
        meta: ReportMeta,
        rules: &[Rule],
        mut findings: Vec<Finding>,
        mut timeline: Vec<DailyCount>,
        events_examined: Option<usize>,
    ) -> Report {
        findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
        timeline.sort_by(|a, b| (a.scope, &a.name, &a.day).cmp(&(b.scope, &b.name, &b.day)));
        let mut rule_list: Vec<RuleSummary> = rules
            .iter()
            .map(|r| RuleSummary {
                id: r.id.clone(),
                title: r.title.clone(),
                severity: r.severity,
                kind: r.kind,
                description: r.description.clone(),
                attack: r.attack_ids(),
                references: r.references.clone(),
                falsepositives: r.falsepositives.clone(),
                findings: findings.iter().filter(|f| f.rule == r.id).count(),
            })
            .collect();
        rule_list.sort_by(|a, b| {
            (std::cmp::Reverse(a.severity), &a.id).cmp(&(std::cmp::Reverse(b.severity), &b.id))
        });
        let summary = summarize(&findings, &timeline, events_examined);
        Report {
            meta,
            summary,
            rules: rule_list,
            findings,
            timeline,
        }
    }

    /// Whether a detection finding at or above `min` exists (`--fail-on`).
    pub fn has_findings_at_or_above(&self, min: Severity) -> bool {
        self.findings
            .iter()
            .any(|f| f.kind == RuleKind::Detection && f.severity >= min)
    }

    /// Render in `format`.
    pub fn render(&self, format: Format) -> Result<String> {
        match format {
            Format::Text => Ok(text::render(self)),
            Format::Json => serde_json::to_string_pretty(self)
                .map(|mut s| {
                    s.push('\n');
                    s
                })
                .map_err(|e| crate::error::RulesError::Render {
                    format: "json".into(),
                    message: e.to_string(),
                }),
            Format::Jsonl => jsonl(self),
            Format::Csv => csv::render(self),
            Format::Md => Ok(markdown::render(self)),
            Format::Html => html::render(self),
        }
    }
}

fn jsonl(report: &Report) -> Result<String> {
    let mut out = String::new();
    for f in &report.findings {
        let line = serde_json::to_string(f).map_err(|e| crate::error::RulesError::Render {
            format: "jsonl".into(),
            message: e.to_string(),
        })?;
        out.push_str(&line);
        out.push('\n');
    }
    Ok(out)
}

fn summarize(findings: &[Finding], timeline: &[DailyCount], events: Option<usize>) -> Summary {
    let detections: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.kind == RuleKind::Detection)
        .collect();
    let by_severity = Severity::ALL
        .iter()
        .map(|s| (*s, detections.iter().filter(|f| f.severity == *s).count()))
        .filter(|(_, n)| *n > 0)
        .collect();
    let set = |get: fn(&Finding) -> Option<&String>| -> BTreeSet<String> {
        findings.iter().filter_map(|f| get(f).cloned()).collect()
    };
    let hosts = set(|f| f.host.as_ref());
    let servers = set(|f| f.server.as_ref());
    let users = set(|f| f.user_name.as_ref());
    let first_seen = findings.iter().filter_map(|f| f.first_seen.clone()).min();
    let last_seen = findings.iter().filter_map(|f| f.last_seen.clone()).max();
    Summary {
        findings: findings.len(),
        by_severity,
        detections: detections.len(),
        inventory: findings.len() - detections.len(),
        hosts: hosts.len(),
        servers: servers.len(),
        users: users.len(),
        first_seen,
        last_seen,
        events_examined: events,
        top_servers: top(timeline, findings, Scope::Server),
        top_clients: top(timeline, findings, Scope::Host),
    }
}

fn top(timeline: &[DailyCount], findings: &[Finding], scope: Scope) -> Vec<Top> {
    let mut totals: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for d in timeline.iter().filter(|d| d.scope == scope) {
        let e = totals.entry(&d.name).or_default();
        e.0 += d.allowed;
        e.1 += d.rejected;
    }
    let mut peers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for f in findings {
        // Client-side findings name (host = client, server); server-side ones (host = the
        // server, extra `client` = the client address).
        let client = f.extra.get("client").and_then(serde_json::Value::as_str);
        let pair = match (f.host.as_deref(), f.server.as_deref(), client) {
            (Some(h), Some(s), _) => Some((h, s)),
            (Some(server), None, Some(c)) => Some((c, server)),
            _ => None,
        };
        if let Some((h, s)) = pair {
            let (me, peer) = if scope == Scope::Server {
                (s, h)
            } else {
                (h, s)
            };
            peers.entry(me).or_default().insert(peer);
        }
    }
    let mut out: Vec<Top> = totals
        .into_iter()
        .map(|(name, (allowed, rejected))| Top {
            name: name.to_string(),
            allowed,
            rejected,
            peers: peers.get(name).map_or(0, BTreeSet::len),
        })
        .collect();
    out.sort_by(|a, b| {
        (b.allowed + b.rejected, b.allowed, &a.name).cmp(&(
            a.allowed + a.rejected,
            a.allowed,
            &b.name,
        ))
    });
    out.truncate(TOP_N);
    out
}

/// Replace control characters (terminal escapes, newlines) in log text for line-oriented output.
pub(crate) fn clean(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}
