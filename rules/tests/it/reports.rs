//! Renderers: hostile strings from the logs are escaped (HTML, Markdown), neutralized (CSV),
//! cleaned (text); output is deterministic; --fail-on thresholds.

use evtxsql_rules::report::{Format, Report, ReportMeta};
use evtxsql_rules::timeline::{DailyCount, Scope};
use evtxsql_rules::{Finding, RuleKind, Severity, pack};
use serde_json::{Map, Value};

pub const SCRIPT_USER: &str = "<script>document.title='pwned-script'</script>";
pub const IMG_SERVER: &str = "\"><img src=x onerror=\"document.title='pwned-img'\">";
pub const SVG_HOST: &str = "<svg onload=\"document.title='pwned-svg'\">";

fn finding(rule: &str, sev: Severity, host: &str, server: &str, user: &str, count: u64) -> Finding {
    let mut extra = Map::new();
    extra.insert("client".into(), Value::String("=cmd|' /C calc'!A0".into()));
    extra.insert(
        "note".into(),
        Value::String("</td></tr><script>alert(1)</script>".into()),
    );
    Finding {
        rule: rule.into(),
        title: format!("title of {rule}"),
        severity: sev,
        kind: if rule == "host_posture" {
            RuleKind::Inventory
        } else {
            RuleKind::Detection
        },
        host: Some(host.into()),
        server: Some(server.into()),
        user_name: Some(user.into()),
        first_seen: Some("2026-03-02T08:00:00Z".into()),
        last_seen: Some("2026-03-03T09:00:00Z".into()),
        count,
        evidence: format!("31022 x{count} @SUM(1+1) \u{1b}[31mred"),
        extra,
    }
}

/// A report full of hostile names.
pub fn hostile_report() -> Report {
    let rules = pack::builtin_pack("smb-guest").unwrap().rules;
    let findings = vec![
        finding(
            "client_rejected_guest",
            Severity::Low,
            "WKS-002",
            "nas01",
            "-2+3",
            2,
        ),
        finding(
            "client_allowed_guest",
            Severity::High,
            SVG_HOST,
            IMG_SERVER,
            SCRIPT_USER,
            5,
        ),
        finding(
            "host_posture",
            Severity::Info,
            "WKS-009",
            "+nas",
            "@admin",
            1,
        ),
        finding(
            "client_allowed_guest",
            Severity::High,
            "WKS-001",
            "nas01",
            "=1+1",
            3,
        ),
    ];
    let mut timeline = Vec::new();
    for (day, a, r) in [
        ("2026-03-02", 1, 3),
        ("2026-03-03", 4, 0),
        ("2026-03-05", 2, 2),
    ] {
        for (scope, name) in [
            (Scope::Server, IMG_SERVER),
            (Scope::Host, SVG_HOST),
            (Scope::Server, "nas01"),
        ] {
            timeline.push(DailyCount {
                day: day.into(),
                scope,
                name: name.into(),
                allowed: a,
                rejected: r,
            });
        }
    }
    let meta = ReportMeta {
        tool: "evtxsql test".into(),
        source: "<b>store</b>".into(),
        packs: vec!["smb-guest".into()],
        since: None,
        until: None,
    };
    Report::from_parts(meta, &rules, findings, timeline, Some(1234))
}

#[test]
fn html_escapes_every_log_string() {
    let html = hostile_report().render(Format::Html).unwrap();
    for raw in [
        SCRIPT_USER,
        IMG_SERVER,
        SVG_HOST,
        "<script>alert(1)</script>",
        "<b>store</b>",
    ] {
        assert!(!html.contains(raw), "unescaped {raw}");
    }
    assert!(
        html.contains("&lt;script&gt;document.title="),
        "script user shown as text"
    );
    assert!(
        html.contains("&lt;img src=x onerror="),
        "img server shown as text"
    );
    assert!(
        !html.to_ascii_lowercase().contains("<script"),
        "no script element at all"
    );
    assert!(!html.contains("<img"));
    assert!(!html.contains("http://") || html.contains("xmlns=\"http://www.w3.org/2000/svg\""));
    assert!(html.contains("Content-Security-Policy"));
    assert!(html.contains("<svg class=\"chart\""), "timeline charts");
    assert!(html.matches("<rect class=\"allowed\"").count() >= 6);
    // No external resources: nothing to fetch.
    for needle in ["src=\"http", "href=\"http", "@import", "url("] {
        assert!(!html.contains(needle), "external reference {needle}");
    }
}

#[test]
fn csv_neutralizes_formulas_and_round_trips() {
    let csv_text = hostile_report().render(Format::Csv).unwrap();
    let mut reader = csv::Reader::from_reader(csv_text.as_bytes());
    let headers = reader.headers().unwrap().clone();
    assert_eq!(&headers[0], "severity");
    let mut rows = 0;
    for rec in reader.records() {
        let rec = rec.unwrap();
        rows += 1;
        for cell in rec.iter() {
            assert!(
                !cell.starts_with(['=', '+', '-', '@']),
                "formula cell {cell:?} in {rec:?}"
            );
        }
    }
    assert_eq!(rows, 4);
    assert!(csv_text.contains("'=1+1"));
    assert!(csv_text.contains("'-2+3"));
    assert!(csv_text.contains("'@admin"));
    assert!(csv_text.contains("'+nas"));
}

#[test]
fn markdown_text_json_are_safe_and_deterministic() {
    let r = hostile_report();
    let md = r.render(Format::Md).unwrap();
    assert!(
        !md.contains("<script") && !md.contains("<img") && !md.contains("<svg"),
        "{md}"
    );
    let text = r.render(Format::Text).unwrap();
    assert!(!text.contains('\u{1b}'), "terminal escapes removed");
    assert!(text.contains("[HIGH] client_allowed_guest"));
    let json: Value = serde_json::from_str(&r.render(Format::Json).unwrap()).unwrap();
    assert_eq!(json["findings"].as_array().unwrap().len(), 4);
    assert_eq!(
        json["findings"][0]["user_name"], SCRIPT_USER,
        "JSON keeps the original"
    );
    let jsonl = r.render(Format::Jsonl).unwrap();
    assert_eq!(jsonl.lines().count(), 4);
    for line in jsonl.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["rule"].is_string());
    }
    // Deterministic: the same input in another order renders the same bytes.
    let mut shuffled = r.clone();
    shuffled.findings.reverse();
    shuffled.timeline.reverse();
    let again = Report::from_parts(
        r.meta.clone(),
        &pack::builtin_pack("smb-guest").unwrap().rules,
        shuffled.findings,
        shuffled.timeline,
        Some(1234),
    );
    for f in [
        Format::Text,
        Format::Json,
        Format::Csv,
        Format::Md,
        Format::Html,
    ] {
        assert_eq!(r.render(f).unwrap(), again.render(f).unwrap(), "{f}");
    }
    // Order: severity first, then rule and host.
    let order: Vec<_> = r
        .findings
        .iter()
        .map(|f| (f.severity, f.host.clone().unwrap()))
        .collect();
    assert_eq!(order[0].0, Severity::High);
    assert_eq!(order[3].0, Severity::Info);
}

#[test]
fn fail_on_thresholds_ignore_inventory() {
    let r = hostile_report();
    assert!(r.has_findings_at_or_above(Severity::High));
    assert!(!r.has_findings_at_or_above(Severity::Critical));
    let only_posture = Report::from_parts(
        r.meta.clone(),
        &[],
        r.findings
            .iter()
            .filter(|f| f.rule == "host_posture")
            .cloned()
            .collect(),
        vec![],
        None,
    );
    assert!(!only_posture.has_findings_at_or_above(Severity::Info));
}
