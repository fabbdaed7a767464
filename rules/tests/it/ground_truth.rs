//! The pack's findings on every samples scenario equal its truth.json: no misses, no extras.
//! `host_posture` is an inventory the truth does not list; it is checked on its own.

use std::collections::BTreeSet;
use std::path::Path;

use evtxsql_rules::Finding;
use serde_json::Value;

use super::common::{ingest, run, session, smb_guest, workspace};

/// A finding reduced to what truth.json states.
#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    kind: String,
    host: Option<String>,
    server: Option<String>,
    client: Option<String>,
    user: Option<String>,
    first: String,
    last: String,
    count: u64,
    hosts: String,
    /// The upgrade boot of `guest_blocked_by_signing`: build before, build after, time.
    upgrade: Option<(u64, u64, String)>,
}

fn seconds(t: &str) -> String {
    format!("{}Z", &t[..19])
}

fn lower(v: Option<&str>) -> Option<String> {
    v.filter(|s| !s.is_empty()).map(str::to_lowercase)
}

/// The keys of truth.json's findings (`truth["findings"]`).
pub fn truth_keys(truth: &Value) -> BTreeSet<Key> {
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
            let u = &f["upgrade"];
            Key {
                kind: f["kind"].as_str().unwrap().to_string(),
                host: lower(f["host"].as_str()),
                server: lower(f["server"].as_str()),
                client: lower(f["client"].as_str()),
                user: f["user"].as_str().map(String::from),
                first: seconds(f["first"].as_str().unwrap()),
                last: seconds(f["last"].as_str().unwrap()),
                count: f["count"].as_u64().unwrap(),
                hosts: hosts.join(","),
                upgrade: u["at"].as_str().map(|at| {
                    let build = |k: &str| u[k].as_u64().unwrap();
                    (build("from_build"), build("to_build"), seconds(at))
                }),
            }
        })
        .collect()
}

/// The keys of the pack's findings (`host_posture` left out).
pub fn finding_keys(findings: &[Finding]) -> BTreeSet<Key> {
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
            let extra = |k: &str| f.extra.get(k).filter(|v| !v.is_null());
            let upgrade = extra("upgraded_at").map(|at| {
                let build = |k: &str| extra(k).and_then(Value::as_u64).expect(k);
                let at = at.as_str().expect("upgraded_at").to_string();
                (build("from_build"), build("to_build"), at)
            });
            Key {
                kind: f.rule.clone(),
                host: lower(f.host.as_deref()),
                server: lower(f.server.as_deref()),
                client: lower(f.extra.get("client").and_then(Value::as_str)),
                user: f.user_name.clone(),
                first: f.first_seen.clone().unwrap_or_default(),
                last: f.last_seen.clone().unwrap_or_default(),
                count: f.count,
                hosts,
                upgrade,
            }
        })
        .collect()
}

/// Assert that the pack's findings are exactly the truth's.
pub fn assert_same(name: &str, want: &BTreeSet<Key>, findings: &[Finding]) {
    let got = finding_keys(findings);
    let missing: Vec<_> = want.difference(&got).collect();
    let extra: Vec<_> = got.difference(want).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{name}: findings differ from truth\nmissing: {missing:#?}\nextra: {extra:#?}"
    );
}

/// Run the pack on a scenario directory (EVTX files + truth.json) and compare, in shared and
/// naive mode (clean-fleet must yield nothing). Returns the rules that produced findings.
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
    assert_same(&name, &want, &shared.findings);
    let naive = run(&ctx, &rules, false).await;
    assert_eq!(
        shared.findings, naive.findings,
        "{name}: shared vs naive scan"
    );
    assert_eq!(
        shared.timeline, naive.timeline,
        "{name}: timeline shared vs naive"
    );
    if !want.is_empty() {
        assert!(!shared.timeline.is_empty(), "{name}: the timeline has rows");
    }
    eprintln!("{name}: {} findings match truth.json", want.len());
    let rules: BTreeSet<String> = shared.findings.iter().map(|f| f.rule.clone()).collect();
    if name == "clean-fleet" {
        assert!(
            rules.is_empty(),
            "clean-fleet must yield nothing, got {rules:?}"
        );
    }
    rules
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
        fired.extend(check_scenario(&data.join(s)).await);
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

/// Freshly generated scenarios with other seeds and fleet sizes (different times, users, counts,
/// shapes and noise than the committed set).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_scenarios_match_truth() {
    let tmp = tempfile::tempdir().unwrap();
    for (seed, hosts, days, events) in
        [(20_251_125, 9, 4, 4000), (3, 4, 1, 1200), (42, 12, 3, 3000)]
    {
        let out = tmp.path().join(format!("gen-{seed}"));
        let opts = evtxsql_samples::GenerateOptions {
            scenario: "all".into(),
            hosts,
            days,
            events,
            seed,
            out: out.clone(),
            start: None,
        };
        evtxsql_samples::generate(&opts, &|_| {}).expect("generate");
        for s in SCENARIOS {
            check_scenario(&out.join(s)).await;
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
