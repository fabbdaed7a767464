//! Several `ingest` processes writing into one store at once: they take turns on the store's
//! writer lock, so no file is lost, none is stored twice, and file ids and segments stay unique.

use std::process::{Command, Stdio};

use crate::common::{WRITER_GROUPS, evtxsql, samples_data, stdout};

fn count_line(store: &std::path::Path, sql: &str) -> String {
    stdout(
        evtxsql()
            .arg("query")
            .arg(store)
            .args([sql, "--format", "csv"]),
    )
    .lines()
    .nth(1)
    .unwrap()
    .to_string()
}

#[test]
fn concurrent_ingests_neither_lose_nor_double_a_file() {
    let data = samples_data();
    let tmp = tempfile::tempdir().unwrap();
    let one = tmp.path().join("one");
    let shared = tmp.path().join("shared");
    evtxsql()
        .arg("ingest")
        .arg(&data)
        .arg("--store")
        .arg(&one)
        .arg("--quiet")
        .assert()
        .success();
    // Four writers at once; two of them both bring clean-fleet (the same files).
    let children: Vec<_> = WRITER_GROUPS
        .iter()
        .map(|dirs| {
            Command::new(assert_cmd::cargo::cargo_bin("evtxsql"))
                .arg("ingest")
                .args(dirs.iter().map(|d| data.join(d)))
                .arg("--store")
                .arg(&shared)
                .arg("--quiet")
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let files = "SELECT count(*), count(DISTINCT sha256), count(DISTINCT file_id) FROM files";
    let expected = count_line(&one, files);
    let n: u64 = expected.split(',').next().unwrap().parse().unwrap();
    assert!(n > 200, "{expected}");
    assert_eq!(count_line(&shared, files), expected);
    // Each writer committed segments of its own.
    let segments = count_line(&shared, "SELECT count(DISTINCT segment) FROM files");
    assert!(segments.parse::<u64>().unwrap() >= 4, "{segments} segments");
    for sql in [
        "SELECT count(*), count(DISTINCT file_id) FROM events",
        "SELECT count(*) FROM (SELECT DISTINCT file_id, record_id FROM events)",
    ] {
        assert_eq!(count_line(&shared, sql), count_line(&one, sql), "{sql}");
    }
}
