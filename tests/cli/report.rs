//! CLI tests of `evtxsql scan`, `report` and `rules` over the committed samples
//! (`samples/data/<scenario>`): the text a responder reads, every report format, `--since`,
//! `--fail-on` exit codes, shared vs naive scans, user rule directories and `rules check`.

use std::path::PathBuf;

use predicates::prelude::*;

use crate::common::{evtxsql, ingested, samples_data, stdout};

fn scenario(name: &str) -> PathBuf {
    samples_data().join(name)
}

/// A temp dir with `store/` ingested from a scenario.
fn store_of(name: &str) -> (tempfile::TempDir, PathBuf) {
    ingested(&scenario(name))
}

#[test]
fn scan_prints_summary_then_findings_by_severity() {
    let out = stdout(
        evtxsql()
            .arg("scan")
            .arg(scenario("spoofed-server"))
            .arg("-q"),
    );
    let summary = out.find("SUMMARY").unwrap();
    let critical = out.find("[CRITICAL] spoofed_server").unwrap();
    let high = out.find("[HIGH] client_allowed_guest").unwrap();
    assert!(summary < critical && critical < high, "{out}");
    assert!(out.contains("server 10.66.6.6"), "{out}");
    assert!(out.contains("TOP SERVERS"), "{out}");
    assert!(out.contains("[MEDIUM] guest_dependency"), "{out}");
}

#[test]
fn scan_fail_on_sets_exit_status() {
    evtxsql()
        .args(["scan", "-q", "--fail-on", "high"])
        .arg(scenario("admin-enables-guest"))
        .assert()
        .code(4);
    evtxsql()
        .args(["scan", "-q", "--fail-on", "critical"])
        .arg(scenario("admin-enables-guest"))
        .assert()
        .code(0);
    evtxsql()
        .args(["scan", "-q", "--fail-on", "info"])
        .arg(scenario("clean-fleet"))
        .assert()
        .code(0)
        .stdout(predicate::str::contains("no detections"));
}

#[test]
fn scan_keeps_a_store_when_asked() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("case");
    evtxsql()
        .args(["scan", "-q", "--format", "jsonl", "--store"])
        .arg(&store)
        .arg(scenario("fallback-to-guest"))
        .assert()
        .success()
        .stdout(predicate::str::contains("\"rule\":\"fallback_to_guest\""));
    assert!(store.join("evtxsql-store.json").exists());
}

#[test]
fn report_writes_every_format_deterministically() {
    let (tmp, store) = store_of("windows-guest-server");
    for format in ["text", "json", "jsonl", "csv", "md", "html"] {
        let a = tmp.path().join(format!("a.{format}"));
        let b = tmp.path().join(format!("b.{format}"));
        for out in [&a, &b] {
            evtxsql()
                .arg("report")
                .arg(&store)
                .args(["--format", format, "--out"])
                .arg(out)
                .assert()
                .success()
                .stdout(predicate::str::is_empty());
        }
        let (a, b) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert!(!a.is_empty(), "{format}");
        assert_eq!(a, b, "{format} differs between two runs");
    }
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(tmp.path().join("a.json")).unwrap()).unwrap();
    let rules: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"server_guest_session"), "{rules:?}");
    assert!(rules.contains(&"server_guest_denied"), "{rules:?}");
    let html = std::fs::read_to_string(tmp.path().join("a.html")).unwrap();
    assert!(html.contains("<svg class=\"chart\""));
    assert!(html.contains("FS01"));
    let csv = std::fs::read_to_string(tmp.path().join("a.csv")).unwrap();
    assert!(csv.starts_with("severity,rule,title,host,server,user_name,"));
}

#[test]
fn report_since_until_and_naive_scan() {
    let (_tmp, store) = store_of("admin-enables-guest");
    let all = stdout(
        evtxsql()
            .arg("report")
            .arg(&store)
            .args(["--format", "json"]),
    );
    let naive =
        stdout(
            evtxsql()
                .arg("report")
                .arg(&store)
                .args(["--format", "json", "--no-shared-scan"]),
        );
    let (a, n): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&all).unwrap(),
        serde_json::from_str(&naive).unwrap(),
    );
    assert!(
        a["findings"] == n["findings"],
        "shared and naive scans differ"
    );
    assert!(
        a["timeline"] == n["timeline"],
        "shared and naive timelines differ"
    );
    // The scenario holds 926 events of the ids the pack requires; the shared scan keeps only
    // those the rules' filters can use (ordinary logons and share checks stay out).
    let examined = a["summary"]["events_examined"].as_u64().unwrap();
    assert!(examined > 0 && examined < 926, "{examined} events examined");
    assert!(n["summary"]["events_examined"].is_null());
    let later = stdout(evtxsql().arg("report").arg(&store).args([
        "--format",
        "jsonl",
        "--since",
        "2026-03-03",
        "--until",
        "2026-03-04T00:00:00Z",
    ]));
    assert!(!later.is_empty());
    for line in later.lines() {
        let f: serde_json::Value = serde_json::from_str(line).unwrap();
        let first = f["first_seen"].as_str().unwrap();
        assert!(first >= "2026-03-03", "{first} before --since");
    }
    assert!(later.lines().count() < all.matches("\"rule\":").count());
    evtxsql()
        .arg("report")
        .arg(&store)
        .arg("--timings")
        .assert()
        .success()
        .stderr(
            predicate::str::contains("shared scan:")
                .and(predicate::str::contains("  pass 1: "))
                .and(predicate::str::contains("rows kept;"))
                .and(predicate::str::contains("client_allowed_guest")),
        );
}

#[test]
fn report_runs_user_rules_and_rejects_bad_usage() {
    let (tmp, store) = store_of("nas-guest-only");
    let dir = tmp.path().join("my-rules");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(
        dir.join("nas_seen.sql"),
        "-- id: nas01_rejects_per_day\n-- title: Rejects of nas01 per day\n-- severity: medium\n\
         -- requires: Microsoft-Windows-SMBClient: 31017\n\
         SELECT NULL AS host, server_name AS server, NULL AS user_name,\n\
           min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,\n\
           'per day' AS evidence, CAST(time_created AS DATE) AS day\n\
         FROM smb_events WHERE event_id = 31017 AND server_name = 'nas01'\n\
         GROUP BY server_name, CAST(time_created AS DATE)\n",
    )
    .unwrap();
    let out = stdout(
        evtxsql()
            .arg("report")
            .arg(&store)
            .args(["--pack", "none", "--rules"])
            .arg(&dir)
            .args(["--format", "jsonl"]),
    );
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.contains("\"rule\":\"nas01_rejects_per_day\""));
    assert!(out.contains("\"day\":\"2026-03-0"));
    let rejects: u64 = out
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["count"]
                .as_u64()
                .unwrap()
        })
        .sum();
    let report_json = || -> serde_json::Value {
        let text = stdout(
            evtxsql()
                .arg("report")
                .arg(&store)
                .args(["--pack", "none", "--rules"])
                .arg(&dir)
                .args(["--format", "json"]),
        );
        serde_json::from_str(&text).unwrap()
    };
    // A user's pack has no timeline unless it brings one: the runner adds none of its own.
    assert_eq!(report_json()["timeline"], serde_json::json!([]));
    std::fs::write(
        dir.join("timeline.sql"),
        "-- kind: timeline\n-- title: nas01 rejects per day\n\
         -- requires: Microsoft-Windows-SMBClient: 31017\n\
         SELECT CAST(CAST(time_created AS DATE) AS VARCHAR) AS day, 'server' AS scope,\n\
           server_name AS name, CAST(0 AS BIGINT) AS allowed, count(*) AS rejected\n\
         FROM smb_events WHERE event_id = 31017 AND server_name = 'nas01'\n\
         GROUP BY 1, 3\n",
    )
    .unwrap();
    let timeline = report_json()["timeline"].as_array().unwrap().clone();
    assert_eq!(timeline.len(), 2, "{timeline:?}");
    assert!(
        timeline
            .iter()
            .all(|d| d["name"] == "nas01" && d["scope"] == "server")
    );
    let counted: u64 = timeline
        .iter()
        .map(|d| d["rejected"].as_u64().unwrap())
        .sum();
    assert_eq!(counted, rejects);
    let listed = stdout(evtxsql().args(["rules", "list", "--rules"]).arg(&dir));
    assert!(
        listed.contains("(timeline)") && listed.contains("nas01 rejects per day"),
        "{listed}"
    );
    // With the built-in pack too, two timelines: an error naming both files.
    evtxsql()
        .arg("report")
        .arg(&store)
        .arg("--rules")
        .arg(&dir)
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("two timeline queries")
                .and(predicate::str::contains("builtin:smb-guest/timeline.sql")),
        );
    evtxsql()
        .arg("report")
        .arg(&store)
        .args(["--pack", "nope"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("unknown rule pack `nope`"));
    evtxsql()
        .arg("report")
        .arg(&store)
        .args(["--since", "yesterday"])
        .assert()
        .code(2);
    evtxsql()
        .arg("report")
        .arg(&store)
        .args(["--format", "xml"])
        .assert()
        .code(2);
    evtxsql()
        .arg("report")
        .arg(tmp.path().join("missing"))
        .assert()
        .code(1);
}

#[test]
fn rules_list_and_check() {
    let out = stdout(evtxsql().args(["rules", "list"]));
    for id in [
        "client_rejected_guest",
        "client_allowed_guest",
        "insecure_guest_enabled",
        "fallback_to_guest",
        "spoofed_server",
        "server_guest_session",
        "server_guest_denied",
        "guest_blocked_by_signing",
        "guest_dependency",
        "host_posture",
    ] {
        assert!(out.contains(id), "{id} missing from rules list");
    }
    let verbose = stdout(evtxsql().args(["rules", "list", "--verbose"]));
    assert!(verbose.contains("FROM smb_events"));
    assert!(verbose.contains("requires: Microsoft-Windows-SMBClient: 31017"));
    evtxsql()
        .args(["rules", "check"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "10 rule(s) and 1 timeline query(ies) checked, 0 error(s)",
        ));
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("bad.sql"),
        "-- id: bad\n-- title: t\n-- severity: low\n-- requires: Security: 4624\n\
         SELECT computer AS host, NULL AS server, NULL AS user_name,\n\
         time_created AS first_seen, time_created AS last_seen,\n\
         1 AS count, no_such_column AS evidence FROM smb_events\n",
    )
    .unwrap();
    evtxsql()
        .args(["rules", "check"])
        .arg(tmp.path())
        .assert()
        .code(2)
        .stderr(
            predicate::str::contains("bad.sql:7:").and(predicate::str::contains("no_such_column")),
        );
}

#[test]
fn help_documents_exit_codes() {
    for cmd in ["report", "scan"] {
        evtxsql().args([cmd, "--help"]).assert().success().stdout(
            predicate::str::contains("Exit status:").and(predicate::str::contains(
                "4  done, and at least one detection at or above --fail-on",
            )),
        );
    }
}

#[test]
fn scan_skips_what_no_rule_reads_and_finds_the_same() {
    let run = |store: Option<&std::path::Path>| {
        let mut cmd = evtxsql();
        cmd.arg("scan")
            .arg(samples_data())
            .args(["--quiet", "--timings", "--format", "json"]);
        if let Some(s) = store {
            cmd.arg("--store").arg(s);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        let line = stderr
            .lines()
            .find(|l| l.starts_with("ingest: "))
            .unwrap_or_else(|| panic!("no ingest line in {stderr}"))
            .to_string();
        // "..., N skipped (no rule of the run reads them)"
        let skipped: u64 = line
            .split_once(" skipped (")
            .and_then(|(head, _)| head.rsplit(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no skipped count in {line}"));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (skipped, line, report)
    };
    let (skipped, line, lean) = run(None);
    assert!(skipped > 0, "{line}");
    assert!(line.contains("10500 records read"), "{line}");
    let tmp = tempfile::tempdir().unwrap();
    let (kept_all, line, full) = run(Some(&tmp.path().join("store")));
    assert_eq!(kept_all, 0, "--store keeps every record: {line}");
    assert_eq!(lean["findings"], full["findings"]);
    assert_eq!(lean["timeline"], full["timeline"]);
    assert_eq!(lean["summary"], full["summary"]);
}

/// Without `--store` the run tells files apart by BLAKE3 instead of sha256: a file brought twice
/// (here every sample, from two folders) is still read once, and the findings are those of one
/// copy.
#[test]
fn scan_reads_a_file_brought_twice_once() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a");
    let b = tmp.path().join("b");
    fn copy_tree(from: &std::path::Path, to: &std::path::Path) {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let p = e.unwrap().path();
            let dest = to.join(p.file_name().unwrap());
            if p.is_dir() {
                copy_tree(&p, &dest);
            } else {
                std::fs::copy(&p, dest).unwrap();
            }
        }
    }
    for dir in [&a, &b] {
        copy_tree(&scenario("fallback-to-guest"), dir);
    }
    let run = |inputs: &[&std::path::Path]| {
        let out = evtxsql()
            .arg("scan")
            .args(inputs)
            .args(["--quiet", "--timings", "--format", "json"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stderr = String::from_utf8(out.stderr).unwrap();
        let read = stderr
            .lines()
            .find_map(|l| {
                l.split_once(" records read")?
                    .0
                    .rsplit(' ')
                    .next()?
                    .parse::<u64>()
                    .ok()
            })
            .unwrap_or_else(|| panic!("no records read in {stderr}"));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        (read, report)
    };
    let (once, one) = run(&[&a]);
    let (twice, both) = run(&[&a, &b]);
    assert!(once > 0);
    assert_eq!(twice, once, "the second copy is read again");
    assert_eq!(one["findings"], both["findings"]);
}
