//! CLI tests of `evtxsql cluster` and `--cluster`: a scheduler and two executors run as
//! separate processes of the built binary on 127.0.0.1; the query set and the smb-guest pack
//! give the local answers; an executor killed mid-query never yields a silently partial
//! answer; a missing scheduler is a quick, clear error. Every process started here is killed
//! when its guard drops, so a failing test leaves nothing running.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::{evtxsql, ingested, samples_data, stdout};

/// A child process, killed and reaped on drop.
pub(crate) struct Role {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Role {
    fn start(name: &str, args: &[String], logs: &Path, env: &[(&str, String)]) -> Role {
        let log = logs.join(format!("{name}.log"));
        let err = std::fs::File::create(&log).unwrap();
        let child = Command::new(assert_cmd::cargo::cargo_bin("evtxsql"))
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        Role {
            name: name.to_string(),
            child,
            log,
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Tasks this executor ran to the end (Ballista logs one line per task).
    pub(crate) fn finished_tasks(&self) -> usize {
        self.log().matches("Finished task").count()
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Wait until `done` holds, failing with the role's log if it exits or `deadline` passes
    /// (`what`: the state waited for).
    fn wait_until(&mut self, deadline: Instant, what: &str, done: impl Fn(&Role) -> bool) {
        while !done(self) {
            self.assert_running();
            assert!(
                Instant::now() < deadline,
                "{} not {what} in time:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fail with the role's log if it has exited.
    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, self.log());
        }
    }
}

impl Drop for Role {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let [port] = free_ports();
    port
}

/// `N` different ports nothing listens on right now: each is held until all are chosen (one
/// released at once may be handed out again, and an executor given the same port twice fails).
fn free_ports<const N: usize>() -> [u16; N] {
    let held: Vec<TcpListener> = (0..N)
        .map(|_| TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    std::array::from_fn(|i| held[i].local_addr().unwrap().port())
}

fn wait_for_port(role: &mut Role, port: u16) {
    let deadline = Instant::now() + Duration::from_secs(60);
    role.wait_until(deadline, &format!("listening on {port}"), |_| {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    });
}

/// A scheduler and `n` executors (two task slots each) on 127.0.0.1.
pub(crate) struct Cluster {
    pub(crate) url: String,
    scheduler: Role,
    pub(crate) executors: Vec<Role>,
    _logs: tempfile::TempDir,
}

impl Cluster {
    fn start(n: usize) -> Cluster {
        Cluster::start_with_env(n, &[])
    }

    /// [`Cluster::start`] with `env` added to every role's environment.
    pub(crate) fn start_with_env(n: usize, env: &[(&str, String)]) -> Cluster {
        let logs = tempfile::tempdir().unwrap();
        let port = free_port();
        let mut scheduler = Role::start(
            "scheduler",
            &[
                "cluster".into(),
                "scheduler".into(),
                "--bind".into(),
                format!("127.0.0.1:{port}"),
                "--executor-timeout".into(),
                "10".into(),
            ],
            logs.path(),
            env,
        );
        wait_for_port(&mut scheduler, port);
        let mut executors = Vec::new();
        for i in 0..n {
            let [flight, grpc] = free_ports();
            let mut e = Role::start(
                &format!("executor{i}"),
                &[
                    "cluster".into(),
                    "executor".into(),
                    "--scheduler".into(),
                    format!("127.0.0.1:{port}"),
                    "--bind".into(),
                    format!("127.0.0.1:{flight}"),
                    "--grpc-port".into(),
                    grpc.to_string(),
                    "--concurrency".into(),
                    "2".into(),
                    "--work-dir".into(),
                    logs.path().join(format!("work{i}")).display().to_string(),
                ],
                logs.path(),
                env,
            );
            wait_for_port(&mut e, grpc);
            executors.push(e);
        }
        // Registration follows the ports opening; wait for each executor's line.
        let deadline = Instant::now() + Duration::from_secs(30);
        for e in &mut executors {
            e.wait_until(deadline, "registered", |e| {
                e.log().contains("registration succeed")
            });
        }
        Cluster {
            url: format!("df://127.0.0.1:{port}"),
            scheduler,
            executors,
            _logs: logs,
        }
    }

    pub(crate) fn logs(&self) -> String {
        std::iter::once(&self.scheduler)
            .chain(&self.executors)
            .map(|r| format!("--- {}\n{}", r.name, r.log()))
            .collect()
    }
}

/// A store of every committed sample scenario.
fn sample_store() -> (tempfile::TempDir, PathBuf) {
    ingested(&samples_data())
}

/// The query set: the store's tables and views, evtxsql's functions, the JSON functions and
/// operators, joins, DISTINCT aggregates, window functions, a subquery.
pub(crate) const QUERIES: &[&str] = &[
    "SELECT channel, event_id, count(*) AS n FROM events GROUP BY 1, 2",
    "SELECT user_name, client_ip, status_name, count(*) AS n FROM logons GROUP BY 1, 2, 3",
    "SELECT event_id, count(*) FROM smb_client GROUP BY 1",
    "SELECT event_id, status, ntstatus_name(status) AS name, count(*) FROM smb_server GROUP BY 1, 2, 3",
    "SELECT share_name, user_name, client_ip FROM share_access",
    "SELECT min(time_created), max(time_created), count(DISTINCT computer) FROM events",
    "SELECT computer, data->>'UserName' AS u, json_get_str(data, 'ServerName') AS s FROM smb_client WHERE event_id IN (31017, 31022)",
    "SELECT client_ip, ip_in_cidr(client_ip, '10.0.0.0/8') AS ten, is_private_ip(client_ip) AS private, count(*) FROM events WHERE client_ip IS NOT NULL GROUP BY 1, 2, 3",
    "SELECT normalize_host(server_name) AS h, sockaddr_ip(data->>'Address') AS ip, count(*) FROM smb_client GROUP BY 1, 2",
    "SELECT f.path, count(*) AS n FROM events e JOIN files f ON e.file_id = f.file_id GROUP BY 1",
    "SELECT computer, event_id, row_number() OVER (PARTITION BY computer ORDER BY time_created, record_id, file_id) AS k FROM smb_client",
    "SELECT computer FROM events WHERE event_id = 31022 AND computer IN (SELECT computer FROM events WHERE event_id = 31018)",
    // The fixed query set of benches/query_vs_duckdb.py.
    "SELECT channel, event_id, count(*) AS n FROM events GROUP BY channel, event_id ORDER BY n DESC, channel, event_id LIMIT 20",
    "SELECT computer, server_name, user_name, count(*) AS n, min(time_created) AS first_seen, max(time_created) AS last_seen FROM events WHERE event_id = 31017 AND lower(channel) = 'microsoft-windows-smbclient/security' GROUP BY computer, server_name, user_name ORDER BY n DESC, computer, server_name",
    "SELECT count(*) AS n FROM events WHERE time_created >= TIMESTAMP '2026-03-03 00:00:00' AND time_created < TIMESTAMP '2026-03-04 00:00:00'",
    "SELECT computer, count(*) AS n FROM events WHERE event_id = 4104 AND data LIKE '%EnableInsecureGuestLogons%' GROUP BY computer ORDER BY computer",
    "SELECT a.computer, a.server_name, count(*) AS n FROM events a JOIN events b ON a.computer = b.computer AND a.server_name = b.server_name WHERE a.event_id = 31001 AND b.event_id = 31022 AND b.time_created >= a.time_created AND b.time_created <= a.time_created + INTERVAL '60 seconds' GROUP BY a.computer, a.server_name ORDER BY n DESC, a.computer, a.server_name",
    "SELECT count(DISTINCT computer) AS n FROM events",
    "SELECT count(*) AS n FROM events WHERE data LIKE '%guest%'",
];

/// CSV output with its rows sorted (the header stays first).
pub(crate) fn sorted_csv(out: &str) -> Vec<String> {
    let mut lines: Vec<String> = out.lines().map(str::to_string).collect();
    if lines.len() > 1 {
        lines[1..].sort();
    }
    lines
}

#[test]
fn queries_stats_and_the_pack_give_the_local_answers_on_a_cluster() {
    let (_tmp, store) = sample_store();
    let s = store.to_str().unwrap();
    let cluster = Cluster::start(2);
    for sql in QUERIES {
        let local = stdout(evtxsql().args(["query", s, sql, "--format", "csv"]));
        let remote = stdout(evtxsql().args([
            "query",
            s,
            sql,
            "--format",
            "csv",
            "--cluster",
            &cluster.url,
        ]));
        assert!(local.lines().count() > 1, "{sql}: no result locally");
        assert_eq!(
            sorted_csv(&local),
            sorted_csv(&remote),
            "{sql}: cluster differs\n{}",
            cluster.logs()
        );
    }
    let local = stdout(evtxsql().args(["stats", s, "--format", "json"]));
    let remote =
        stdout(evtxsql().args(["stats", s, "--format", "json", "--cluster", &cluster.url]));
    let (l, r): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&local).unwrap(),
        serde_json::from_str(&remote).unwrap(),
    );
    assert_eq!(l["summary"], r["summary"]);
    assert!(l["summary"]["events"].as_u64().unwrap() > 1000);
    for section in ["channels", "computers"] {
        let mut a = l[section].as_array().unwrap().clone();
        let mut b = r[section].as_array().unwrap().clone();
        a.sort_by_key(|v| v.to_string());
        b.sort_by_key(|v| v.to_string());
        assert_eq!(a, b, "stats {section}");
    }
    // The whole smb-guest pack: findings (in report order) and the timeline.
    let local = stdout(evtxsql().args(["report", s, "--format", "json"]));
    let out = evtxsql()
        .args([
            "report",
            s,
            "--format",
            "json",
            "--timings",
            "--cluster",
            &cluster.url,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stderr),
        cluster.logs()
    );
    let (l, r): (serde_json::Value, serde_json::Value) = (
        serde_json::from_str(&local).unwrap(),
        serde_json::from_slice(&out.stdout).unwrap(),
    );
    let findings = l["findings"].as_array().unwrap();
    assert!(findings.len() > 10, "{} local findings", findings.len());
    assert_eq!(l["findings"], r["findings"], "pack findings differ");
    assert_eq!(l["timeline"], r["timeline"], "pack timelines differ");
    let timings = String::from_utf8_lossy(&out.stderr);
    assert!(
        timings.contains("ran as one job on the executors"),
        "{timings}"
    );
    // The work ran on both executors, not here.
    for e in &cluster.executors {
        assert!(
            e.finished_tasks() > 0,
            "{} ran no task:\n{}",
            e.name,
            e.log()
        );
    }
    // What cannot run there says so.
    evtxsql()
        .args([
            "query",
            s,
            "SELECT count(*) FROM read_evtx('x.evtx')",
            "--cluster",
            &cluster.url,
        ])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("does not run on a cluster"));
    evtxsql()
        .args(["query"])
        .arg(samples_data())
        .args(["SELECT 1", "--cluster", &cluster.url])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("ingest them first"));
    evtxsql()
        .arg("scan")
        .arg(samples_data())
        .args(["--cluster", &cluster.url])
        .assert()
        .failure()
        .stderr(predicates::str::contains("--cluster needs --store"));
}

#[test]
fn an_executor_killed_mid_query_gives_the_answer_or_an_error_never_a_partial_one() {
    let (_tmp, store) = sample_store();
    let s = store.to_str().unwrap();
    // Heavy enough to be running when the executor dies: a self-join per computer and channel.
    let sql = "SELECT a.computer, count(*) AS n, sum(a.record_id * b.record_id % 7) AS x \
               FROM events a JOIN events b ON a.computer = b.computer AND a.channel = b.channel \
               GROUP BY 1";
    let local = sorted_csv(&stdout(
        evtxsql().args(["query", s, sql, "--format", "csv"]),
    ));
    let mut cluster = Cluster::start(2);
    let query = Command::new(assert_cmd::cargo::cargo_bin("evtxsql"))
        .args([
            "query",
            s,
            sql,
            "--format",
            "csv",
            "--cluster",
            &cluster.url,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut query = Role {
        name: "query".into(),
        child: query,
        log: PathBuf::new(),
    };
    // Kill an executor once it is running a task of this query.
    let deadline = Instant::now() + Duration::from_secs(60);
    let busy = loop {
        let running = (0..2).find(|&i| cluster.executors[i].log().contains("Execute task"));
        if let Some(i) = running {
            break i;
        }
        assert!(
            Instant::now() < deadline,
            "no task started:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    cluster.executors[busy].kill();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = query.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(240),
            "the query neither finished nor failed 240 s after the executor died:\n{}",
            cluster.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut out = String::new();
    let mut err = String::new();
    use std::io::Read;
    query
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    query
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    if status.success() {
        assert_eq!(
            sorted_csv(&out),
            local,
            "a partial answer after an executor died"
        );
        eprintln!(
            "answered correctly after the executor died ({:?})",
            started.elapsed()
        );
    } else {
        // Rows streamed before the failure may have been printed; the exit status and the
        // message say the answer is not whole.
        assert!(err.contains("error:"), "failed without a message: {err}");
        eprintln!("failed clearly after the executor died: {err}");
    }
}

#[test]
fn a_missing_scheduler_is_a_quick_clear_error_naming_it() {
    let (_tmp, store) = sample_store();
    let port = free_port();
    let url = format!("df://127.0.0.1:{port}");
    let started = Instant::now();
    evtxsql()
        .arg("query")
        .arg(&store)
        .args(["SELECT count(*) FROM events", "--cluster", &url])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "no Ballista scheduler at {url}"
        )));
    evtxsql()
        .arg("report")
        .arg(&store)
        .args(["--cluster", &url])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!("127.0.0.1:{port}")));
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    // An executor gives up after --wait, naming the scheduler it waited for.
    let started = Instant::now();
    let [flight, grpc] = free_ports();
    // An executor of that scheduler serving flights on `flight` and tasks on `task_port`.
    let executor = |task_port: u16| {
        let mut command = evtxsql();
        command
            .args(["cluster", "executor", "--scheduler"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["--bind"])
            .arg(format!("127.0.0.1:{flight}"))
            .args(["--grpc-port"])
            .arg(task_port.to_string());
        command
    };
    executor(grpc)
        .args(["--wait", "2"])
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "no Ballista scheduler at df://127.0.0.1:{port}"
        )));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    // One port for both of an executor's servers is refused before anything starts.
    executor(flight)
        .timeout(Duration::from_secs(30))
        .assert()
        .code(1)
        .stderr(predicates::str::contains(format!(
            "the task port (--grpc-port) and the bind port are both {flight}"
        )));
    // Bad addresses are usage errors.
    evtxsql()
        .arg("query")
        .arg(&store)
        .args(["SELECT 1", "--cluster", "http://x:1"])
        .assert()
        .code(2)
        .stderr(predicates::str::contains("df://HOST:PORT"));
    evtxsql()
        .args(["cluster", "--help"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "evtxsql cluster executor --scheduler",
        ));
}
