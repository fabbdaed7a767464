//! The plain-text report: what a responder reads first. Summary counts, the busiest servers and
//! clients, then findings grouped by rule, highest severity first; inventory rules last.

use std::fmt::Write;

use super::{Report, Top, clean};
use crate::finding::Finding;
use crate::rule::RuleKind;

fn opt(s: &Option<String>) -> String {
    s.as_deref().map(clean).unwrap_or_else(|| "-".to_string())
}

fn tops(out: &mut String, title: &str, peers: &str, list: &[Top]) {
    if list.is_empty() {
        return;
    }
    let _ = writeln!(out, "\n{title}");
    let width = list
        .iter()
        .map(|t| t.name.chars().count())
        .max()
        .unwrap_or(0)
        .min(40);
    for t in list {
        let _ = writeln!(
            out,
            "  {:<width$}  allowed {:>5}  rejected {:>5}  {peers} {}",
            clean(&t.name),
            t.allowed,
            t.rejected,
            t.peers
        );
    }
}

fn finding(out: &mut String, f: &Finding) {
    let who = match (&f.host, &f.server) {
        (Some(_), Some(_)) => format!("{} -> {}", opt(&f.host), opt(&f.server)),
        (Some(_), None) => opt(&f.host),
        (None, Some(_)) => format!("server {}", opt(&f.server)),
        (None, None) => "-".to_string(),
    };
    let user = f
        .user_name
        .as_deref()
        .map(|u| format!("  user {}", clean(u)))
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "  {who}{user}  x{}  {} .. {}",
        f.count,
        opt(&f.first_seen),
        opt(&f.last_seen)
    );
    if !f.evidence.is_empty() {
        let _ = writeln!(out, "      {}", clean(&f.evidence));
    }
    let extra: Vec<String> = f
        .extra
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => format!("{k}={}", clean(s)),
            other => format!("{k}={other}"),
        })
        .collect();
    if !extra.is_empty() {
        let _ = writeln!(out, "      {}", extra.join("  "));
    }
}

/// Render the text report.
pub fn render(r: &Report) -> String {
    let mut out = String::new();
    let s = &r.summary;
    let _ = writeln!(
        out,
        "{} report ({}) on {}",
        r.meta.packs.join("+"),
        r.meta.tool,
        clean(&r.meta.source)
    );
    if r.meta.since.is_some() || r.meta.until.is_some() {
        let _ = writeln!(
            out,
            "window: {} .. {}",
            r.meta.since.as_deref().unwrap_or("start"),
            r.meta.until.as_deref().unwrap_or("end")
        );
    }
    if let Some(n) = s.events_examined {
        let _ = writeln!(out, "events examined: {n}");
    }
    let sev: Vec<String> = s
        .by_severity
        .iter()
        .map(|(sev, n)| format!("{n} {sev}"))
        .collect();
    let _ = writeln!(out, "\nSUMMARY");
    if s.detections == 0 {
        let _ = writeln!(out, "  no detections");
    } else {
        let _ = writeln!(out, "  {} detections: {}", s.detections, sev.join(", "));
    }
    if s.inventory > 0 {
        let _ = writeln!(
            out,
            "  {} inventory rows (posture, dependencies)",
            s.inventory
        );
    }
    if s.findings > 0 {
        let _ = writeln!(
            out,
            "  {} hosts, {} servers, {} users; {} .. {}",
            s.hosts,
            s.servers,
            s.users,
            opt(&s.first_seen),
            opt(&s.last_seen)
        );
    }
    tops(
        &mut out,
        "TOP SERVERS (guest logons)",
        "clients",
        &s.top_servers,
    );
    tops(
        &mut out,
        "TOP CLIENTS (guest logons)",
        "servers",
        &s.top_clients,
    );
    for (heading, kind) in [
        ("FINDINGS", RuleKind::Detection),
        ("INVENTORY", RuleKind::Inventory),
    ] {
        let rules: Vec<_> = r
            .rules
            .iter()
            .filter(|x| x.kind == kind && x.findings > 0)
            .collect();
        if rules.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{heading}");
        for rule in rules {
            let _ = writeln!(
                out,
                "\n[{}] {}: {} ({})",
                rule.severity.as_str().to_ascii_uppercase(),
                rule.id,
                rule.title,
                rule.findings
            );
            for f in r.findings.iter().filter(|f| f.rule == rule.id) {
                finding(&mut out, f);
            }
        }
    }
    out
}
