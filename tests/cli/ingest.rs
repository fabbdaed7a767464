//! `evtxsql ingest` as a user runs it.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{corpus, corpus_copies, evtxsql, samples_data, store_rows};

#[test]
fn ingest_reports_summary_json_and_exit_status() {
    let Some(dir) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.store");
    // The corpus holds a 0-byte .evtx: finished, but not everything was readable → 3.
    let out = evtxsql()
        .args(["ingest", "--json", "--store"])
        .arg(&store)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let expected: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    let total: u64 = expected
        .as_object()
        .unwrap()
        .values()
        .map(|v| v["records_evtx_dump"].as_u64().unwrap())
        .sum();
    assert_eq!(summary["records"].as_u64(), Some(total));
    assert_eq!(store_rows(&store), total);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("test1.evtx"),
        "the empty file is named: {stderr}"
    );
    assert!(
        stderr.contains("chunk"),
        "damaged chunks are named: {stderr}"
    );
    // No progress bar on a pipe.
    assert!(!stderr.contains("ETA"), "{stderr}");

    // Again: nothing added, exit 0, skipped files counted.
    let out = evtxsql()
        .args(["ingest", "--json", "--store"])
        .arg(&store)
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["records"].as_u64(), Some(0));
    assert!(summary["files_skipped"].as_u64().unwrap() >= 60);
    assert_eq!(store_rows(&store), total);
}

#[test]
fn missing_input_is_named_and_bad_usage_is_2() {
    let tmp = tempfile::tempdir().unwrap();
    let out = evtxsql()
        .args(["ingest", "--store"])
        .arg(tmp.path().join("s"))
        .arg(tmp.path().join("nope.evtx"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nope.evtx"));
    let out = evtxsql().args(["ingest"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn directory_without_logs_is_named_and_the_rest_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let empty = tmp.path().join("no-logs");
    std::fs::create_dir(&empty).unwrap();
    std::fs::write(empty.join("notes.txt"), "not a log").unwrap();
    let logs = samples_data().join("nas-guest-only");
    let out = evtxsql()
        .args(["ingest", "--json", "--store"])
        .arg(tmp.path().join("s"))
        .arg(&empty)
        .arg(&logs)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no-logs: directory holds no EVTX files"),
        "{stderr}"
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(summary["files_ingested"].as_u64().unwrap() > 0, "{summary}");
    assert!(summary["records"].as_u64().unwrap() > 0, "{summary}");
}

#[test]
fn kill_9_mid_ingest_then_rerun_equals_one_clean_run() {
    let Some(dir) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("input");
    corpus_copies(&dir, &input, 4);

    // The clean run.
    let clean = tmp.path().join("clean.store");
    evtxsql()
        .args(["ingest", "-q", "--segment-rows", "3000", "--store"])
        .arg(&clean)
        .arg(&input)
        .assert()
        .success();
    let want = store_rows(&clean);
    assert!(want > 100_000);

    // Kill -9 once the first segments are committed, several times if needed.
    let crashed = tmp.path().join("crashed.store");
    let bin = assert_cmd::cargo::cargo_bin("evtxsql");
    let mut killed_mid_way = false;
    for _ in 0..3 {
        let mut child = std::process::Command::new(&bin)
            .args(["ingest", "-q", "--segment-rows", "3000", "--store"])
            .arg(&crashed)
            .arg(&input)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let files_dir = crashed.join("files");
        loop {
            let committed = std::fs::read_dir(&files_dir)
                .map(|d| d.count())
                .unwrap_or(0);
            if committed >= 2 || start.elapsed() > Duration::from_secs(120) {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        child.kill().unwrap(); // SIGKILL
        let status = child.wait().unwrap();
        if status.code().is_none() {
            killed_mid_way = true;
            break;
        }
    }
    assert!(killed_mid_way, "the ingest was killed while running");
    assert!(
        store_rows(&crashed) < want,
        "the killed run left a partial store"
    );

    // The same ingest again completes the store: exactly the rows of the clean run.
    evtxsql()
        .args(["ingest", "-q", "--segment-rows", "3000", "--store"])
        .arg(&crashed)
        .arg(&input)
        .assert()
        .success();
    assert_eq!(store_rows(&crashed), want);
    assert!(
        std::fs::read_dir(crashed.join("tmp"))
            .unwrap()
            .next()
            .is_none(),
        "no leftovers"
    );
}
