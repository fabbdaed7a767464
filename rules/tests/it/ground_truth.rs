//! The pack's findings on every samples scenario equal its truth.json: no misses, no extras.
//! `host_posture` is an inventory the truth does not list; it is checked on its own.

use std::collections::BTreeSet;
use std::path::Path;

use evtxsql_rules::Finding;
use serde_json::Value;

use super::common::{ingest, run, session, smb_guest, workspace};

/// A finding reduced to what truth.json states.
type Key = (
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    Option<String>,
    String,
    String,
    u64,
    String,
);

fn seconds(t: &str) -> String {
    format!("{}Z", &t[..19])
}

fn lower(v: Option<&str>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(str::to_lowercase)
}

fn truth_keys(truth: &Value) -> BTreeSet<Key> {
    truth["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            let hosts: Vec<String> = f["hosts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|h| h.as_str().unwrap().to_lowercase())
                        .collect()
                })
                .unwrap_or_default();
            (
                f["kind"].as_str().unwrap().to_string(),
                lower(f["host"].as_str()),
                lower(f["server"].as_str()),
                lower(f["client"].as_str()),
                f["user"].as_str().map(String::from),
                seconds(f["first"].as_str().unwrap()),
                seconds(f["last"].as_str().unwrap()),
                f["count"].as_u64().unwrap(),
                hosts.join(","),
            )
        })
        .collect()
}

fn finding_keys(findings: &[Finding]) -> BTreeSet<Key> {
    findings
        .iter()
        .filter(|f| f.rule != "host_posture")
        .map(|f| {
            let hosts = f
                .extra
                .get("hosts")
                .and_then(Value::as_str)
                .map(|h| h.to_lowercase().replace(", ", ","))
                .unwrap_or_default();
            (
                f.rule.clone(),
                lower(f.host.as_deref()),
                lower(f.server.as_deref()),
                lower(f.extra.get("client").and_then(Value::as_str)),
                f.user_name.clone(),
                f.first_seen.clone().unwrap_or_default(),
                f.last_seen.clone().unwrap_or_default(),
                f.count,
                hosts,
            )
        })
        .collect()
}

/// Run the pack on a scenario directory (EVTX files + truth.json) and compare, in shared and
/// naive mode. Returns the rules that produced findings.
async fn check_scenario(dir: &Path) -> BTreeSet<String> {
    let name = dir.file_name().unwrap().to_string_lossy().into_owned();
    let truth: Value =
        serde_json::from_slice(&std::fs::read(dir.join("truth.json")).expect("truth.json"))
            .expect("truth json");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ingest(&[dir.to_path_buf()], &store);
    let ctx = session(&store).await;
    let rules = smb_guest();
    let shared = run(&ctx, &rules, true).await;
    let want = truth_keys(&truth);
    let got = finding_keys(&shared.findings);
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(&want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: findings differ from truth.json\nmissing: {missing:#?}\nextra: {extra:#?}"
    );
    let naive = run(&ctx, &rules, false).await;
    assert_eq!(
        shared.findings, naive.findings,
        "{name}: shared vs naive scan"
    );
    assert_eq!(
        shared.timeline, naive.timeline,
        "{name}: timeline shared vs naive"
    );
    eprintln!("{name}: {} findings match truth.json", got.len());
    shared.findings.iter().map(|f| f.rule.clone()).collect()
}

const SCENARIOS: [&str; 7] = [
    "nas-guest-only",
    "admin-enables-guest",
    "fallback-to-guest",
    "spoofed-server",
    "windows-guest-server",
    "signing-breaks-guest",
    "clean-fleet",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_samples_match_truth() {
    let data = workspace().join("samples/data");
    let mut fired = BTreeSet::new();
    for s in SCENARIOS {
        let rules = check_scenario(&data.join(s)).await;
        if s == "clean-fleet" {
            assert!(
                rules.is_empty(),
                "clean-fleet must yield nothing, got {rules:?}"
            );
        }
        fired.extend(rules);
    }
    // Every rule of the pack is exercised by some scenario.
    for r in smb_guest() {
        assert!(
            fired.contains(&r.id),
            "rule {} never fired on the samples",
            r.id
        );
    }
}

/// Freshly generated scenarios with another seed and a bigger fleet (different times, users,
/// counts and noise than the committed set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_scenarios_match_truth() {
    let tmp = tempfile::tempdir().unwrap();
    let opts = evtxsql_samples::GenerateOptions {
        scenario: "all".into(),
        hosts: 9,
        days: 4,
        events: 4000,
        seed: 20_251_125,
        out: tmp.path().join("gen"),
        start: None,
    };
    evtxsql_samples::generate(&opts, &|_| {}).expect("generate");
    for s in SCENARIOS {
        let rules = check_scenario(&tmp.path().join("gen").join(s)).await;
        if s == "clean-fleet" {
            assert!(
                rules.is_empty(),
                "clean-fleet must yield nothing, got {rules:?}"
            );
        }
    }
}

/// host_posture is an inventory, not in truth.json: check it on admin-enables-guest, where half
/// of the fleet was switched to allow guest logons after rejecting them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_posture_summarizes_each_host() {
    let dir = workspace().join("samples/data/admin-enables-guest");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ingest(&[dir], &store);
    let ctx = session(&store).await;
    let rules: Vec<_> = smb_guest()
        .into_iter()
        .filter(|r| r.id == "host_posture")
        .collect();
    let out = run(&ctx, &rules, true).await;
    let by_host: std::collections::BTreeMap<String, &Finding> = out
        .findings
        .iter()
        .map(|f| (f.host.clone().unwrap(), f))
        .collect();
    let truth: Value = serde_json::from_slice(
        &std::fs::read(workspace().join("samples/data/admin-enables-guest/truth.json")).unwrap(),
    )
    .unwrap();
    let enabled: BTreeSet<String> = truth["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "client_allowed_guest")
        .map(|f| f["host"].as_str().unwrap().to_string())
        .collect();
    assert!(!enabled.is_empty());
    for (host, f) in &by_host {
        let posture = f.extra["posture"].as_str().unwrap();
        if enabled.contains(host) {
            assert_eq!(posture, "guest allowed", "{host}");
            assert_eq!(f.extra["auditing"], "on");
        } else {
            assert_eq!(posture, "guest blocked", "{host}");
        }
        let daily = f.extra["daily"].as_str().unwrap();
        assert!(daily.starts_with("2026-03-0"), "{daily}");
    }
}
