//! CLI tests of `evtxsql query`, `shell` and `stats`: over a store made by `evtxsql ingest` and
//! over the same EVTX files read directly, every output format, and the error exits.
//! Real files come from `EVTXSQL_CORPUS` (default `../shared/evtx`); tests skip loudly without.

use std::path::{Path, PathBuf};

use crate::common::{corpus, evtxsql, stdout};
use predicates::prelude::*;

const FILES: &[&str] = &[
    "tugix456__randaodcxjj/Microsoft-Windows-SmbClient%4Security.evtx",
    "tugix456__randaodcxjj/Microsoft-Windows-SMBServer%4Operational.evtx",
    "sans-blue-team__DeepBlueCLI/smb-password-guessing-security.evtx",
    "sbousseaden__EVTX-ATTACK-SAMPLES/PrivEsc_NetSvc_SessionToken_Retrival_via_localSMB_Auth_5145.evtx",
    "Yamato-Security__hayabusa/test1.evtx",
];

fn fixture() -> Option<(tempfile::TempDir, PathBuf, PathBuf)> {
    let corpus = corpus()?;
    let tmp = tempfile::tempdir().unwrap();
    let evtx = tmp.path().join("evtx");
    std::fs::create_dir(&evtx).unwrap();
    for f in FILES {
        std::fs::copy(corpus.join(f), evtx.join(Path::new(f).file_name().unwrap())).unwrap();
    }
    let store = tmp.path().join("store");
    evtxsql()
        .arg("ingest")
        .arg(&evtx)
        .arg("--store")
        .arg(&store)
        .arg("--quiet")
        .assert()
        .code(predicate::in_iter([0, 3]));
    Some((tmp, evtx, store))
}

fn stdout_of(args: &[&str]) -> String {
    stdout(evtxsql().args(args))
}

#[test]
fn store_and_evtx_give_the_same_answers_in_every_text_format() {
    let Some((_tmp, evtx, store)) = fixture() else {
        return;
    };
    let (evtx, store) = (evtx.to_str().unwrap(), store.to_str().unwrap());
    let queries = [
        "SELECT channel, event_id, count(*) AS n FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT user_name, client_ip, status_name, count(*) AS n FROM logons GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2, 3 LIMIT 5",
        "SELECT event_id, count(*) FROM smb_client GROUP BY 1",
        "SELECT event_id, count(*) FROM smb_server GROUP BY 1 ORDER BY 1",
        "SELECT share_name, user_name FROM share_access",
        "SELECT min(time_created), max(time_created) FROM events",
    ];
    for q in queries {
        for format in ["csv", "json", "jsonl", "table"] {
            let a = stdout_of(&["query", store, q, "--format", format]);
            let b = stdout_of(&["query", evtx, q, "--format", format]);
            assert_eq!(a, b, "{q} as {format}");
        }
    }
    let csv = stdout_of(&["query", store, queries[0], "--format", "csv"]);
    assert!(csv.starts_with("channel,event_id,n\n"), "{csv}");
    assert!(
        csv.contains("Microsoft-Windows-SmbClient/Security,31018,8"),
        "{csv}"
    );
    assert!(csv.contains("Security,4625,3561"), "{csv}");
    let json: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "query", store, queries[5], "--format", "json",
    ]))
    .unwrap();
    let first = json[0]["min(events.time_created)"].as_str().unwrap();
    assert!(first.ends_with('Z') && first.len() == 27, "{first}");
    let berlin = stdout_of(&[
        "query",
        store,
        queries[5],
        "--format",
        "csv",
        "--tz",
        "Europe/Berlin",
    ]);
    assert!(
        berlin.contains("+02:00") || berlin.contains("+01:00"),
        "{berlin}"
    );
}

#[test]
fn binary_formats_go_to_files_and_csv_is_safe_for_spreadsheets() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    // A store with no events still answers SQL.
    evtxsql_ingest::Store::create_or_open(&data).unwrap();
    let d = data.to_str().unwrap();
    let q = "SELECT '=cmd|calc' AS a, '+1' AS b, '-x' AS c, '@y' AS d, 'ok' AS e, -1 AS n";
    let csv = stdout_of(&["query", d, q, "--format", "csv"]);
    assert_eq!(csv, "a,b,c,d,e,n\n'=cmd|calc,'+1,'-x,'@y,ok,-1\n");
    for (format, magic) in [("parquet", &b"PAR1"[..]), ("arrow", &b"ARROW1"[..])] {
        let out = tmp.path().join(format!("out.{format}"));
        evtxsql()
            .args([
                "query",
                d,
                "SELECT count(*) AS n FROM events",
                "--format",
                format,
                "--out",
            ])
            .arg(&out)
            .assert()
            .success();
        let bytes = std::fs::read(&out).unwrap();
        assert!(bytes.starts_with(magic), "{format}");
    }
    let out = tmp.path().join("x.jsonl");
    evtxsql()
        .args([
            "query",
            d,
            "SELECT 1 AS a UNION ALL SELECT 2 ORDER BY a",
            "--format",
            "jsonl",
            "-o",
        ])
        .arg(&out)
        .assert()
        .success();
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        "{\"a\":1}\n{\"a\":2}\n"
    );
    // Several statements from a file, and from standard input.
    let sql = tmp.path().join("q.sql");
    std::fs::write(&sql, "CREATE VIEW v AS SELECT 7 AS x;\nSELECT x FROM v;\n").unwrap();
    let out = stdout_of(&["query", d, "-f", sql.to_str().unwrap(), "--format", "csv"]);
    assert_eq!(out, "x\n7\n");
    evtxsql()
        .args(["query", d, "-f", "-", "--format", "csv"])
        .write_stdin("SELECT 'a' AS s; SELECT 'b' AS t;")
        .assert()
        .success()
        .stdout("s\na\n\nt\nb\n");
    evtxsql()
        .args([
            "query",
            d,
            "SELECT 1",
            "--memory-limit",
            "16MiB",
            "--threads",
            "1",
        ])
        .assert()
        .success();
}

#[test]
fn errors_exit_2_with_a_clear_message() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    evtxsql_ingest::Store::create_or_open(&data).unwrap();
    let d = data.to_str().unwrap();
    let no_panic = || predicate::str::contains("panicked").not();
    evtxsql()
        .args(["query", d, "SELECT event_id FROM events WHERE"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("line 1, column").and(no_panic()));
    evtxsql()
        .args(["query", d, "SELECT nope FROM events"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nope").and(predicate::str::contains("column 8")));
    evtxsql()
        .args(["query", d, "SELECT * FROM nothing_here"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("nothing_here"));
    let missing = tmp.path().join("missing");
    evtxsql()
        .arg("query")
        .arg(&missing)
        .arg("SELECT 1")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("missing").and(no_panic()));
    let newer = tmp.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    std::fs::write(
        newer.join("evtxsql-store.json"),
        r#"{"format": 999, "created_by": "evtxsql 99"}"#,
    )
    .unwrap();
    evtxsql()
        .arg("query")
        .arg(&newer)
        .arg("SELECT 1")
        .assert()
        .code(2)
        .stderr(predicate::str::contains("newer"));
    evtxsql()
        .args(["query", d, "SELECT 1", "--memory-limit", "lots"])
        .assert()
        .code(2);
    evtxsql()
        .args(["query", d, "SELECT 1", "--tz", "Mars/Olympus"])
        .assert()
        .code(2);
    evtxsql().args(["query", d]).assert().code(2);
    evtxsql()
        .args(["query", d, "SELECT 1; SELECT 2", "--format", "json"])
        .assert()
        .code(2);
}

#[test]
fn shell_reads_statements_from_a_pipe_and_survives_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("d");
    evtxsql_ingest::Store::create_or_open(&data).unwrap();
    let script = ".tables\n\\d logons\n.schema no_such\nSELECT count(*)\n  AS n FROM events;\nSELECT bogus FROM events;\n.format csv\nSELECT 42 AS answer;\n.quit\nSELECT 'not run';\n";
    let out = evtxsql()
        .arg("shell")
        .arg(&data)
        .arg("--no-history")
        .write_stdin(script)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for want in [
        "smb_client",
        "share_access",
        "VIEW",
        "logon_type",
        "answer\n42\n",
    ] {
        assert!(stdout.contains(want), "{want} missing in:\n{stdout}");
    }
    assert!(!stdout.contains("not run"), "{stdout}");
    assert!(
        stderr.contains("bogus") && stderr.contains("no_such"),
        "{stderr}"
    );
    evtxsql()
        .arg("shell")
        .arg(&data)
        .arg("--no-history")
        .write_stdin("SELECT 1 AS one;\n")
        .assert()
        .success()
        .stdout(predicate::str::contains("one"));
}

#[test]
fn stats_gives_the_overview() {
    let Some((_tmp, evtx, store)) = fixture() else {
        return;
    };
    let store = store.to_str().unwrap();
    let table = stdout_of(&["stats", store]);
    for want in [
        "Store",
        "Events per channel and event id",
        "Events per computer",
        "Files with errors",
        "test1.evtx",
        "3561",
    ] {
        assert!(table.contains(want), "{want} missing in:\n{table}");
    }
    let json: serde_json::Value =
        serde_json::from_str(&stdout_of(&["stats", store, "--format", "json"])).unwrap();
    assert_eq!(json["summary"]["events"], 3598);
    assert_eq!(json["summary"]["files_with_errors"], 1);
    assert_eq!(json["files"][0]["status"], "failed");
    assert!(
        json["channels"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["event_id"] == 31018 && r["events"] == 8)
    );
    let same: serde_json::Value = serde_json::from_str(&stdout_of(&[
        "stats",
        evtx.to_str().unwrap(),
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(json["channels"], same["channels"]);
    assert_eq!(json["computers"], same["computers"]);
    let csv = stdout_of(&[
        "stats",
        store,
        "--section",
        "channels",
        "--format",
        "csv",
        "--top",
        "1",
    ]);
    assert_eq!(csv.lines().count(), 2, "{csv}");
    evtxsql()
        .args(["stats", store, "--format", "csv"])
        .assert()
        .code(2);
    let jsonl = stdout_of(&["stats", store, "--format", "jsonl"]);
    assert!(jsonl.lines().all(|l| l.contains("\"section\"")), "{jsonl}");
}

#[test]
fn timings_say_where_the_time_went_and_change_no_answer() {
    let (_tmp, store) = crate::common::ingested(&crate::common::samples_data());
    let sql = "CREATE VIEW rejects AS SELECT computer, server_name FROM events \
               WHERE event_id = 31017; \
               SELECT computer, count(*) AS n FROM rejects GROUP BY computer ORDER BY computer; \
               SELECT count(*) AS n FROM events WHERE event_id = 1";
    let plain = evtxsql()
        .arg("query")
        .arg(&store)
        .args([sql, "--format", "csv"])
        .output()
        .unwrap();
    let timed = evtxsql()
        .arg("query")
        .arg(&store)
        .args([sql, "--format", "csv", "--timings"])
        .output()
        .unwrap();
    assert!(plain.status.success() && timed.status.success());
    assert_eq!(plain.stdout, timed.stdout, "--timings changes no answer");
    assert!(
        plain.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&plain.stderr)
    );
    let stderr = String::from_utf8(timed.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 5, "{stderr}");
    assert!(
        lines[0].starts_with("session: ") && lines[0].ends_with(" ms"),
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("statement 1: SQL to plan ") && lines[1].ends_with("(no rows)"),
        "{stderr}"
    );
    // The two results, a blank line between them: the first one's rows, below its header.
    let answers = String::from_utf8(plain.stdout.clone()).unwrap();
    let groups = answers.split("\n\n").next().unwrap().lines().count() - 1;
    assert!(groups > 1, "{answers}");
    for (line, n, rows) in [
        (lines[2], 2, format!("({groups} rows)")),
        (lines[3], 3, "(1 row)".into()),
    ] {
        assert!(
            line.starts_with(&format!("statement {n}: SQL to plan ")),
            "{stderr}"
        );
        for part in ["optimizer ", "physical plan ", "run and write "] {
            assert!(line.contains(part), "{part} in {line}");
        }
        assert!(line.ends_with(&rows), "{rows} in {line}");
    }
    assert!(lines[4].starts_with("total: "), "{stderr}");
    // Every figure is a duration in milliseconds: a number before each "ms".
    let words: Vec<&str> = stderr.split_whitespace().collect();
    let figures: Vec<&[&str]> = words
        .windows(2)
        .filter(|w| w[1].trim_end_matches([',', '(']) == "ms")
        .collect();
    assert_eq!(figures.len(), 1 + 2 + 4 + 4 + 1, "{stderr}");
    for w in figures {
        assert!(
            w[0].parse::<f64>().is_ok_and(|ms| ms >= 0.0),
            "{} in {stderr}",
            w[0]
        );
    }
}
