//! `s3://bucket/prefix` stores against a real S3-compatible server started here (moto's
//! `moto_server` on a free 127.0.0.1 port): the answers equal those of a local store of the same
//! files; several `ingest` processes at once neither lose nor double a file; a crashed writer's
//! lock is taken over after its time to live, and an ingest killed mid-way and run again equals
//! one clean run; bad URLs, missing buckets, missing credentials and unreachable endpoints give
//! errors that name the store; a cluster (scheduler and executor processes with the AWS
//! environment) reads the store and gives the local answers.
//!
//! Without `moto_server` the tests are skipped with a `SKIPPED:` line, unless
//! `EVTXSQL_REQUIRE_S3` (or `CI`) is set: then they fail.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{WRITER_GROUPS, evtxsql, ingested, samples_data, stdout};

/// A moto server on 127.0.0.1, stopped when dropped.
struct Moto {
    child: Child,
    port: u16,
}

impl Moto {
    /// Start one, or `None` (skipped) when moto is not installed and not required.
    fn start() -> Option<Moto> {
        let program = evtxsql_testkit::moto_server()?;
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(&program)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", program.display()));
        let moto = Moto { child, port };
        let deadline = Instant::now() + Duration::from_secs(60);
        while moto.http("GET", "/", b"").is_none() {
            assert!(
                Instant::now() < deadline,
                "moto_server did not answer on port {port} within 60 s"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Some(moto)
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// One unsigned HTTP/1.1 request; the status code, or `None` when nothing answers.
    fn http(&self, method: &str, path: &str, body: &[u8]) -> Option<u16> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            self.port,
            body.len()
        );
        s.write_all(head.as_bytes()).ok()?;
        s.write_all(body).ok()?;
        let mut reply = String::new();
        s.read_to_string(&mut reply).ok()?;
        reply.split_whitespace().nth(1)?.parse().ok()
    }

    fn create_bucket(&self, bucket: &str) {
        assert_eq!(self.http("PUT", &format!("/{bucket}"), b""), Some(200));
    }

    /// `evtxsql` with the AWS environment of this server (and nothing else of the caller's).
    fn evtxsql(&self) -> assert_cmd::Command {
        let mut cmd = evtxsql();
        aws_env(&mut cmd, Some(&self.endpoint()));
        cmd
    }

    fn command(&self) -> Command {
        let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("evtxsql"));
        for var in AWS_VARS {
            cmd.env_remove(var);
        }
        cmd.envs(aws_values(&self.endpoint()));
        cmd
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Variables of the caller's environment that would change which server or credentials the
/// tests use.
const AWS_VARS: [&str; 12] = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT",
    "AWS_ALLOW_HTTP",
    "AWS_PROFILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
];

fn aws_values(endpoint: &str) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "testing".into()),
        ("AWS_SECRET_ACCESS_KEY", "testing".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_ENDPOINT_URL", endpoint.into()),
        ("AWS_ALLOW_HTTP", "true".into()),
    ]
}

fn aws_env(cmd: &mut assert_cmd::Command, endpoint: Option<&str>) {
    for var in AWS_VARS {
        cmd.env_remove(var);
    }
    if let Some(endpoint) = endpoint {
        cmd.envs(aws_values(endpoint));
    }
}

/// The CSV rows (without header) of `sql` over `store`.
fn rows(cmd: &mut assert_cmd::Command, store: &str, sql: &str) -> String {
    let out = stdout(cmd.arg("query").arg(store).args([sql, "--format", "csv"]));
    out.lines().skip(1).collect::<Vec<_>>().join("\n")
}

const QUERIES: [&str; 5] = [
    "SELECT count(*), count(DISTINCT file_id), min(time_created), max(time_created) FROM events",
    "SELECT event_id, channel, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2",
    "SELECT path, sha256, status, records, file_id FROM files ORDER BY path",
    "SELECT computer, count(*) FROM smb_client GROUP BY 1 ORDER BY 1",
    "SELECT ntstatus_name(status) AS s, count(*) FROM events WHERE status IS NOT NULL \
     GROUP BY 1 ORDER BY 1",
];

#[test]
fn s3_store_answers_like_a_local_store() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("evidence");
    let data = samples_data();
    let (_tmp, local) = ingested(&data);
    let url = "s3://evidence/cases/42";
    let out = stdout(
        moto.evtxsql()
            .arg("ingest")
            .arg(&data)
            .args(["--store", url, "--quiet", "--json"]),
    );
    let summary: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!(summary["files_ingested"].as_u64().unwrap() > 200, "{out}");
    assert_eq!(summary["store"], url);
    // Run again: everything is known, nothing is added.
    let again = stdout(
        moto.evtxsql()
            .arg("ingest")
            .arg(&data)
            .args(["--store", url, "--quiet", "--json"]),
    );
    let again: serde_json::Value = serde_json::from_str(&again).unwrap();
    assert_eq!(again["files_ingested"], 0, "{again}");
    assert_eq!(again["files_skipped"], summary["files_ingested"], "{again}");
    assert_eq!(again["segments_written"], 0, "{again}");
    // The lock is gone after each writer.
    assert_eq!(
        moto.http("GET", "/evidence/cases/42/writer.lock", b""),
        Some(404)
    );

    let local_str = local.to_str().unwrap();
    for sql in QUERIES {
        let want = rows(&mut evtxsql(), local_str, sql);
        assert!(!want.is_empty(), "{sql}");
        assert_eq!(rows(&mut moto.evtxsql(), url, sql), want, "{sql}");
    }
    let report = |cmd: &mut assert_cmd::Command, store: &str| {
        let out = stdout(cmd.arg("report").arg(store).args(["--format", "json"]));
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        (v["findings"].clone(), v["timeline"].clone())
    };
    let want = report(&mut evtxsql(), local_str);
    assert!(want.0.as_array().is_some_and(|f| !f.is_empty()));
    assert_eq!(report(&mut moto.evtxsql(), url), want);
    // stats reads it too.
    let stats = stdout(moto.evtxsql().arg("stats").arg(url));
    assert!(stats.contains("4624") || stats.contains("31017"), "{stats}");
    // scan --store into another prefix gives the report of a scan into a local store.
    let scan = |cmd: &mut assert_cmd::Command, store: &str| {
        let out = stdout(
            cmd.args(["scan", "-q", "--format", "json", "--store", store])
                .arg(data.join("spoofed-server")),
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["findings"].clone()
    };
    let tmp = tempfile::tempdir().unwrap();
    let local_scan = tmp.path().join("scan");
    let want = scan(&mut evtxsql(), local_scan.to_str().unwrap());
    assert_eq!(scan(&mut moto.evtxsql(), "s3://evidence/scan"), want);
}

#[test]
fn concurrent_ingests_into_s3_neither_lose_nor_double_a_file() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("fleet");
    let data = samples_data();
    let (_tmp, one) = ingested(&data);
    let url = "s3://fleet/shared";
    // Four writers at once; two of them both bring clean-fleet (the same files).
    let children: Vec<_> = WRITER_GROUPS
        .iter()
        .map(|dirs| {
            moto.command()
                .arg("ingest")
                .args(dirs.iter().map(|d| data.join(d)))
                // Many small segments: many commits, each a chance for a reader to see half.
                .args(["--store", url, "--quiet", "--segment-rows", "300"])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    // Meanwhile readers see whole segments only: every file in `files` with all its rows in
    // `events`, and no rows of a file that `files` lacks.
    let consistent = "SELECT \
        (SELECT count(*) FROM files f LEFT JOIN \
           (SELECT file_id, count(*) AS n FROM events GROUP BY 1) e ON f.file_id = e.file_id \
         WHERE coalesce(e.n, 0) <> f.records) AS short, \
        (SELECT count(*) FROM events WHERE file_id NOT IN (SELECT file_id FROM files)) AS stray";
    let mut children = children;
    let mut looks = 0;
    while children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        let out = moto
            .evtxsql()
            .args(["query", url, consistent, "--format", "csv"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        if out.status.success() {
            assert_eq!(text.lines().nth(1), Some("0,0"), "{text}");
            looks += 1;
        } else {
            // Before the first writer made the store, it is not one yet.
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("not an evtxsql store"), "{err}");
        }
    }
    eprintln!("{looks} consistent looks at the store while the writers ran");
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let one = one.to_str().unwrap();
    let files = "SELECT count(*), count(DISTINCT sha256), count(DISTINCT file_id) FROM files";
    let expected = rows(&mut evtxsql(), one, files);
    let n: u64 = expected.split(',').next().unwrap().parse().unwrap();
    assert!(n > 200, "{expected}");
    assert_eq!(rows(&mut moto.evtxsql(), url, files), expected);
    // Each writer committed segments of its own, under numbers no other writer used: the
    // segment numbers in the manifest are those of the objects listed, each once.
    let segments = rows(
        &mut moto.evtxsql(),
        url,
        "SELECT count(DISTINCT segment), min(segment), max(segment) FROM files",
    );
    let parts: Vec<u64> = segments.split(',').map(|v| v.parse().unwrap()).collect();
    assert!(parts[0] >= 4, "{segments}");
    assert_eq!(parts[2] - parts[1] + 1, parts[0], "{segments}");
    for sql in [
        "SELECT count(*), count(DISTINCT file_id) FROM events",
        "SELECT count(*) FROM (SELECT DISTINCT file_id, record_id FROM events)",
        "SELECT event_id, count(*) FROM events GROUP BY 1 ORDER BY 1",
    ] {
        assert_eq!(
            rows(&mut moto.evtxsql(), url, sql),
            rows(&mut evtxsql(), one, sql),
            "{sql}"
        );
    }
    assert_eq!(
        moto.http("GET", "/fleet/shared/writer.lock", b""),
        Some(404)
    );
}

#[test]
fn a_crashed_writers_lock_is_taken_over_after_its_ttl() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("stale");
    // The lock of a writer that died: never beats again.
    let body = br#"{"writer":"gone:1:1","host":"gone","pid":1,"acquired_unix":1,
        "heartbeat_unix":1,"ttl_secs":2}"#;
    assert_eq!(
        moto.http("PUT", "/stale/store/writer.lock", body),
        Some(200)
    );
    // And the parts it uploaded without committing them (no manifest part): the next writer
    // deletes them (its own segment 0 is put create-only, so a leftover there would fail it).
    for seg in ["000000", "000007"] {
        let path = format!("/stale/store/events/seg-{seg}.parquet");
        assert_eq!(moto.http("PUT", &path, b"not parquet"), Some(200));
    }
    let started = Instant::now();
    let out = moto
        .evtxsql()
        .arg("ingest")
        .arg(samples_data().join("clean-fleet"))
        .args(["--store", "s3://stale/store"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("is held by writer pid 1 on gone"), "{err}");
    assert!(
        err.contains("took over s3://stale/store/writer.lock"),
        "{err}"
    );
    assert!(started.elapsed() >= Duration::from_secs(2));
    let n = rows(
        &mut moto.evtxsql(),
        "s3://stale/store",
        "SELECT count(*), count(DISTINCT segment), min(segment) FROM files",
    );
    assert!(n.ends_with(",1,0") && !n.starts_with("0,"), "{n}");
    // The leftover beyond the committed segments is gone (an unsigned GET: 404 when there is
    // no object, 403 when there is one).
    assert_eq!(
        moto.http("GET", "/stale/store/events/seg-000007.parquet", b""),
        Some(404)
    );
    assert_eq!(moto.http("GET", "/stale/store/writer.lock", b""), Some(404));
    let events = rows(
        &mut moto.evtxsql(),
        "s3://stale/store",
        "SELECT count(*) FROM events",
    );
    assert!(events.parse::<u64>().unwrap() > 0, "{events}");
}

/// Run `cmd`, require failure within `limit`, return stderr.
fn fails(cmd: &mut assert_cmd::Command, limit: Duration) -> String {
    let started = Instant::now();
    let out = cmd.output().unwrap();
    let took = started.elapsed();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{cmd:?} succeeded: {err}");
    assert!(took < limit, "{cmd:?} took {took:?}: {err}");
    err
}

#[test]
fn s3_errors_name_the_store() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("present");
    let data = samples_data().join("clean-fleet");
    let quick = Duration::from_secs(30);
    let tmp = tempfile::tempdir().unwrap();
    // Bad URLs: usage errors, for readers and writers, without touching the network.
    for bad in ["gs://present/x", "s3://NoSuchCase/x", "s3://present/a//b"] {
        let data = data.to_str().unwrap();
        for args in [
            vec!["query", bad, "SELECT 1"],
            vec!["ingest", data, "--store", bad, "-q"],
            vec!["scan", data, "--store", bad, "-q"],
        ] {
            let mut cmd = moto.evtxsql();
            cmd.current_dir(tmp.path()).args(&args);
            let err = fails(&mut cmd, quick);
            assert!(err.contains(bad), "{err}");
            cmd.assert().code(2);
        }
    }
    // A bucket that does not exist.
    let data_arg = data.to_str().unwrap();
    for args in [
        vec!["query", "s3://missing-bucket/x", "SELECT 1"],
        vec!["ingest", data_arg, "--store", "s3://missing-bucket/x", "-q"],
    ] {
        let err = fails(moto.evtxsql().args(&args), quick);
        assert!(err.contains("s3://missing-bucket/x"), "{err}");
        assert!(
            err.contains("bucket `missing-bucket` does not exist"),
            "{err}"
        );
    }
    // A prefix without a store.
    let err = fails(
        moto.evtxsql().args(["report", "s3://present/nothing"]),
        quick,
    );
    assert!(
        err.contains("s3://present/nothing: not an evtxsql store"),
        "{err}"
    );
    // No credentials.
    let mut cmd = evtxsql();
    aws_env(&mut cmd, None);
    cmd.env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ALLOW_HTTP", "true")
        .args(["query", "s3://present/x", "SELECT 1"]);
    let err = fails(&mut cmd, quick);
    assert!(err.contains("s3://present/x"), "{err}");
    assert!(err.contains("no AWS credentials"), "{err}");
    // A plain-http endpoint without AWS_ALLOW_HTTP.
    let mut cmd = moto.evtxsql();
    cmd.env_remove("AWS_ALLOW_HTTP")
        .args(["query", "s3://present/x", "SELECT 1"]);
    let err = fails(&mut cmd, quick);
    assert!(err.contains("s3://present/x"), "{err}");
    assert!(err.contains("set AWS_ALLOW_HTTP=true"), "{err}");
    // An endpoint nobody listens on: a bounded wait, then an error naming store and endpoint.
    let closed = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let nowhere = format!("http://127.0.0.1:{closed}");
    for args in [
        vec!["query", "s3://present/x", "SELECT 1"],
        vec!["ingest", data_arg, "--store", "s3://present/x", "-q"],
    ] {
        let mut cmd = evtxsql();
        aws_env(&mut cmd, Some(&nowhere));
        let err = fails(cmd.args(&args), Duration::from_secs(90));
        assert!(err.contains("s3://present/x"), "{err}");
        assert!(
            err.contains(&format!("cannot reach the S3 endpoint {nowhere}")),
            "{err}"
        );
    }
    // Commands that need a store directory say so.
    let err = fails(
        moto.evtxsql()
            .current_dir(tmp.path())
            .args(["compact", "s3://present/x"]),
        quick,
    );
    assert!(err.contains("s3://present/x"), "{err}");
    assert!(err.contains("needs a store directory"), "{err}");
    // Nothing was made of a URL on the local disk.
    let made: Vec<_> = std::fs::read_dir(tmp.path()).unwrap().collect();
    assert!(made.is_empty(), "{made:?}");
}

#[test]
fn a_cluster_reads_an_s3_store() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("shared");
    let url = "s3://shared/fleet";
    moto.evtxsql()
        .arg("ingest")
        .arg(samples_data())
        .args(["--store", url, "--quiet"])
        .assert()
        .success();
    // The scheduler and the executors get the store's AWS environment, nothing else.
    let cluster = crate::cluster::Cluster::start_with_env(1, &aws_values(&moto.endpoint()));
    for sql in crate::cluster::QUERIES.iter().take(6) {
        let local = stdout(moto.evtxsql().args(["query", url, sql, "--format", "csv"]));
        let remote = stdout(moto.evtxsql().args([
            "query",
            url,
            sql,
            "--format",
            "csv",
            "--cluster",
            &cluster.url,
        ]));
        assert_eq!(
            crate::cluster::sorted_csv(&remote),
            crate::cluster::sorted_csv(&local),
            "{sql}\n{}",
            cluster.logs()
        );
    }
    let report = |extra: &[&str]| {
        let out = stdout(
            moto.evtxsql()
                .arg("report")
                .arg(url)
                .args(["--format", "json"])
                .args(extra),
        );
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        v["findings"].clone()
    };
    assert_eq!(report(&["--cluster", &cluster.url]), report(&[]));
    // The executor read the store's parts itself.
    assert!(
        cluster.executors[0].finished_tasks() > 0,
        "{}",
        cluster.logs()
    );
}

#[test]
fn kill_9_mid_ingest_then_rerun_equals_one_clean_run() {
    let Some(moto) = Moto::start() else { return };
    moto.create_bucket("crash");
    let data = samples_data();
    let (_tmp, clean) = ingested(&data);
    let url = "s3://crash/store";
    // Small segments on one thread: many commits, so the kill lands between two of them.
    // The killed writer leaves its local staging directory behind: in a directory of the test.
    let staging = tempfile::tempdir().unwrap();
    let mut writer = moto
        .command()
        .env("EVTXSQL_S3_LOCK_TTL", "2")
        .env("TMPDIR", staging.path())
        .arg("ingest")
        .arg(&data)
        .args(["--store", url, "--quiet", "-j", "1", "--segment-rows", "50"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as its first segment is committed (an unsigned GET answers 403 once the
    // object exists).
    let deadline = Instant::now() + Duration::from_secs(120);
    while moto.http("GET", "/crash/store/files/seg-000000.parquet", b"") != Some(403) {
        assert!(Instant::now() < deadline, "no segment committed in time");
        assert!(
            writer.try_wait().unwrap().is_none(),
            "the writer ended early"
        );
    }
    writer.kill().unwrap();
    let status = writer.wait().unwrap();
    assert!(!status.success());
    let files = "SELECT count(*), count(DISTINCT sha256), count(DISTINCT file_id) FROM files";
    let partial = rows(&mut moto.evtxsql(), url, files);
    let all = rows(&mut evtxsql(), clean.to_str().unwrap(), files);
    let n = |t: &str| t.split(',').next().unwrap().parse::<u64>().unwrap();
    assert!(
        n(&partial) > 0 && n(&partial) < n(&all),
        "{partial} of {all}"
    );
    // The dead writer's lock is still there; the next writer takes it over after 2 s, removes
    // what was uploaded but not committed, and adds exactly what is missing.
    let out = moto
        .evtxsql()
        .arg("ingest")
        .arg(&data)
        .args(["--store", url, "--quiet", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["files_skipped"].as_u64(), Some(n(&partial)));
    assert_eq!(rows(&mut moto.evtxsql(), url, files), all);
    for sql in [
        "SELECT count(*), count(DISTINCT file_id) FROM events",
        "SELECT count(*) FROM (SELECT DISTINCT file_id, record_id FROM events)",
        "SELECT event_id, count(*) FROM events GROUP BY 1 ORDER BY 1",
    ] {
        assert_eq!(
            rows(&mut moto.evtxsql(), url, sql),
            rows(&mut evtxsql(), clean.to_str().unwrap(), sql),
            "{sql}"
        );
    }
}
