//! Markdown: summary, top tables, one table per rule with findings. Log text is escaped so that
//! it can neither break a table (`|`, newlines) nor inject HTML into a rendered page.

use std::fmt::Write;

use super::Report;

/// Escape text for a Markdown table cell.
pub(crate) fn md(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '|' => out.push_str("\\|"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '`' | '*' | '_' | '[' | ']' | '\\' => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn o(s: &Option<String>) -> String {
    s.as_deref().map(md).unwrap_or_default()
}

/// Render the Markdown report.
pub fn render(r: &Report) -> String {
    let s = &r.summary;
    let mut out = String::new();
    let _ = writeln!(out, "# {} report\n", md(&r.meta.packs.join(" + ")));
    let _ = writeln!(out, "- source: {}", md(&r.meta.source));
    let _ = writeln!(out, "- tool: {}", md(&r.meta.tool));
    if let Some(n) = s.events_examined {
        let _ = writeln!(out, "- events examined: {n}");
    }
    let _ = writeln!(
        out,
        "- detections: {} ({}); inventory rows: {}",
        s.detections,
        s.by_severity
            .iter()
            .map(|(sev, n)| format!("{n} {sev}"))
            .collect::<Vec<_>>()
            .join(", "),
        s.inventory
    );
    let _ = writeln!(
        out,
        "- hosts: {}, servers: {}, users: {}; first seen {}, last seen {}",
        s.hosts,
        s.servers,
        s.users,
        o(&s.first_seen),
        o(&s.last_seen)
    );
    for (title, peers, list) in [
        ("Top servers", "clients", &s.top_servers),
        ("Top clients", "servers", &s.top_clients),
    ] {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            out,
            "\n## {title}\n\n| name | allowed | rejected | {peers} |\n|---|---:|---:|---:|"
        );
        for t in list {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} |",
                md(&t.name),
                t.allowed,
                t.rejected,
                t.peers
            );
        }
    }
    let _ = writeln!(out, "\n## Findings");
    for rule in r.rules.iter().filter(|x| x.findings > 0) {
        let _ = writeln!(
            out,
            "\n### {} `{}`: {} ({})\n\n{}\n",
            rule.severity.as_str().to_ascii_uppercase(),
            rule.id,
            md(&rule.title),
            rule.findings,
            md(&rule.description)
        );
        let _ = writeln!(
            out,
            "| host | server | user | first seen | last seen | count | evidence |\n|---|---|---|---|---|---:|---|"
        );
        for f in r.findings.iter().filter(|f| f.rule == rule.id) {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                o(&f.host),
                o(&f.server),
                o(&f.user_name),
                o(&f.first_seen),
                o(&f.last_seen),
                f.count,
                md(&f.evidence)
            );
        }
    }
    if r.findings.is_empty() {
        let _ = writeln!(out, "\nNo findings.");
    }
    out
}
