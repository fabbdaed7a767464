//! `evtxsql compact` on a store made of many small ingests: `ingest` suggests it, it merges the
//! segments, the report and query answers stay the same, and a second run does nothing.

use std::path::Path;

use crate::common::{evtxsql, samples_data, stdout};

const QUERIES: [&str; 3] = [
    "SELECT file_id, record_id, event_id, computer, time_created, server_name, data \
     FROM events ORDER BY file_id, record_id",
    "SELECT channel, event_id, count(*) AS n, min(time_created) AS t0, max(time_created) AS t1 \
     FROM events GROUP BY channel, event_id ORDER BY channel, event_id",
    "SELECT file_id, path, sha256, records FROM files ORDER BY file_id",
];

fn answers(store: &Path) -> Vec<String> {
    QUERIES
        .iter()
        .map(|sql| {
            stdout(
                evtxsql()
                    .arg("query")
                    .arg(store)
                    .arg(sql)
                    .args(["--format", "csv"]),
            )
        })
        .collect()
}

fn findings(store: &Path, out: &Path) -> serde_json::Value {
    evtxsql()
        .arg("report")
        .arg(store)
        .args(["--format", "json", "--out"])
        .arg(out)
        .assert()
        .success();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    json["findings"].clone()
}

#[test]
fn compact_merges_daily_ingests_and_changes_no_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("daily.store");
    let mut dirs: Vec<_> = std::fs::read_dir(samples_data())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    let mut last = String::new();
    for dir in &dirs {
        last = stdout(
            evtxsql()
                .arg("ingest")
                .arg(dir)
                .arg("--store")
                .arg(&store)
                .args(["--quiet", "--segment-rows", "2000"]),
        );
    }
    assert!(
        last.contains("evtxsql compact"),
        "ingest suggests it: {last}"
    );
    let before = answers(&store);
    let report_before = findings(&store, &tmp.path().join("before.json"));
    assert!(!report_before.as_array().unwrap().is_empty());

    let dry = stdout(evtxsql().arg("compact").arg(&store).arg("--dry-run"));
    assert!(dry.contains("would rewrite"), "{dry}");
    let out = stdout(evtxsql().arg("compact").arg(&store));
    assert!(out.contains("segments rewritten into 1"), "{out}");
    assert_eq!(answers(&store), before);
    assert_eq!(
        findings(&store, &tmp.path().join("after.json")),
        report_before
    );

    let again = stdout(evtxsql().arg("compact").arg(&store));
    assert!(again.contains("nothing to compact"), "{again}");
    assert_eq!(answers(&store), before);
}

/// One ingest large enough to be sorted in several runs (here runs of 1 MiB) leaves a segment
/// whose row groups each span most channels: `ingest` says so and suggests `compact`, which
/// clusters it without changing an answer; a small ingest (one run) gets no hint.
#[test]
fn ingest_suggests_compact_for_a_segment_of_sorted_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let ingest = |store: &Path, extra: &[&str]| {
        stdout(
            evtxsql()
                .arg("ingest")
                .arg(samples_data())
                .arg("--store")
                .arg(store)
                .arg("--quiet")
                .args(extra),
        )
    };
    let store = tmp.path().join("runs.store");
    let out = ingest(&store, &["--sort-run-mib", "1"]);
    assert!(
        out.contains("1 of the store's 1 segments were written as several sorted runs")
            && out.contains("evtxsql compact"),
        "{out}"
    );
    let before = answers(&store);
    let compacted = stdout(evtxsql().arg("compact").arg(&store));
    assert!(
        compacted.contains("segments rewritten into 1"),
        "{compacted}"
    );
    assert_eq!(answers(&store), before);

    let one_run = tmp.path().join("one-run.store");
    let out = ingest(&one_run, &[]);
    assert!(!out.contains("hint:"), "{out}");
}
