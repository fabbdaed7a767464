//! evtxsql-query against a store and against the same EVTX files read directly: every table,
//! view, function and output format. Real files come from the shared corpus (`EVTXSQL_CORPUS`,
//! default `../shared/evtx` from the workspace root); tests that need it say so and skip when it
//! is absent (and fail under CI, see evtxsql-testkit).
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use arrow::array::{
    ArrayRef, RecordBatch, StringArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
    new_null_array,
};
use arrow::compute::cast;
use arrow::datatypes::DataType;
use datafusion::prelude::SessionContext;
use evtxsql_ingest::{Store, events_schema};
use evtxsql_query::cells::row_lines;
use evtxsql_query::{
    Format, OutputOptions, QueryError, SessionOptions, new_context, session_for_evtx,
    session_for_store, write_batches,
};
use evtxsql_testkit::corpus;

/// Files of the corpus the tests read (SMB client/server, logons, share access, an empty file).
const FILES: &[&str] = &[
    "tugix456__randaodcxjj/Microsoft-Windows-SmbClient%4Security.evtx",
    "tugix456__randaodcxjj/Microsoft-Windows-SmbClient%4Connectivity.evtx",
    "tugix456__randaodcxjj/Microsoft-Windows-SMBServer%4Operational.evtx",
    "sans-blue-team__DeepBlueCLI/smb-password-guessing-security.evtx",
    "sbousseaden__EVTX-ATTACK-SAMPLES/PrivEsc_NetSvc_SessionToken_Retrival_via_localSMB_Auth_5145.evtx",
    "sbousseaden__EVTX-ATTACK-SAMPLES/4624_LT3_AnonymousLogon_Localhost_-_JuicyPotato.evtx",
    "Yamato-Security__hayabusa/test1.evtx",
];

/// The corpus subset copied into a directory, and a store ingested from it.
struct Fixture {
    _tmp: tempfile::TempDir,
    evtx: PathBuf,
    store: PathBuf,
}

static FIXTURE: LazyLock<Option<Fixture>> = LazyLock::new(|| {
    let corpus = corpus()?;
    let tmp = tempfile::tempdir().unwrap();
    let evtx = tmp.path().join("evtx");
    std::fs::create_dir(&evtx).unwrap();
    for (i, f) in FILES.iter().enumerate() {
        let name = Path::new(f).file_name().unwrap().to_string_lossy();
        std::fs::copy(corpus.join(f), evtx.join(format!("{i}-{name}"))).unwrap();
    }
    let store = tmp.path().join("store");
    evtxsql_ingest::ingest(
        std::slice::from_ref(&evtx),
        &store,
        &evtxsql_ingest::IngestOptions::default(),
        &evtxsql_ingest::NoProgress,
    )
    .unwrap();
    Some(Fixture {
        _tmp: tmp,
        evtx,
        store,
    })
});

/// Rows of a query as text, each row one line with `|` between cells (times in UTC).
async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
    let df = match evtxsql_query::sql(ctx, sql).await {
        Ok(df) => df,
        Err(e) => panic!("{sql}: {}", e.render_with_sql(sql)),
    };
    let batches = df.collect().await.unwrap();
    row_lines(&batches, "NULL").unwrap()
}

/// Every table, view and function gives the same answer over the store, over `events` of an
/// EVTX session, and through `read_evtx(...)`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_and_evtx_sessions_agree() {
    let Some(fx) = FIXTURE.as_ref() else { return };
    let opts = SessionOptions::default();
    let store = session_for_store(&fx.store, &opts).await.unwrap();
    let evtx = session_for_evtx(std::slice::from_ref(&fx.evtx), &opts)
        .await
        .unwrap();
    let dir = fx.evtx.display().to_string();
    let queries = [
        "SELECT count(*), min(time_created), max(time_created) FROM events",
        "SELECT channel, event_id, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT computer, provider, count(*) FROM events GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT record_id, event_id, level, task, keywords, user_sid FROM events ORDER BY time_created, record_id LIMIT 20",
        "SELECT event_id, server_name, share_name, status, status_name, count(*) FROM smb_client GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5, 6",
        "SELECT event_id, client_name, client_ip, user_name, status_name, count(*) FROM smb_server GROUP BY 1, 2, 3, 4, 5 ORDER BY 1, 2, 3, 4, 5, 6",
        "SELECT event_id, user_name, user_domain, logon_type, auth_package, workstation, client_ip, status, status_name, count(*) FROM logons GROUP BY 1, 2, 3, 4, 5, 6, 7, 8, 9 ORDER BY 1, 2, 3, 4, 5, 6, 7, 8, 9, 10",
        "SELECT event_id, share_name, user_name, target_sid, client_ip, client_port, object_name FROM share_access ORDER BY 1, 2, 3, 4, 5, 6, 7",
        "SELECT ntstatus_name(status) AS name, count(*) FROM events WHERE status IS NOT NULL GROUP BY 1 ORDER BY 1",
        "SELECT normalize_host(computer), count(*) FROM events GROUP BY 1 ORDER BY 1",
        "SELECT client_ip, is_private_ip(client_ip), ip_in_cidr(client_ip, '10.0.0.0/8'), count(*) FROM events WHERE client_ip IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT json_get_str(data, 'TargetUserName') AS u, data->>'IpAddress' AS ip, count(*) FROM logons GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT sockaddr_ip(data->>'ClientAddress'), sockaddr_port(data->>'ClientAddress'), count(*) FROM smb_server GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT regexp_replace(path, '^.*/', '') AS name, size, sha256, computers, channels, first_time, last_time, records, failed_records, status FROM files ORDER BY name",
        // The names and addresses a store session reads as dictionaries, through filters,
        // string functions, DISTINCT, a join and a sort.
        "SELECT lower(user_name), upper(user_domain), count(DISTINCT client_ip), count(*) FROM events WHERE user_name LIKE '%a%' OR user_name IN ('Administrator', '-') GROUP BY 1, 2 ORDER BY 1, 2",
        "SELECT a.server_name, a.event_id, b.event_id, count(*) FROM events a JOIN events b ON a.server_name = b.server_name AND a.computer = b.computer WHERE a.server_name IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3",
        "SELECT coalesce(client_name, client_ip, '?') || ':' || coalesce(share_name, '') AS k, min(user_sid), max(target_sid), count(*) FROM events WHERE client_ip IS NOT NULL OR share_name IS NOT NULL GROUP BY 1 ORDER BY 1",
        "SELECT user_name, workstation, auth_package, client_ip FROM events WHERE user_name IS NOT NULL AND user_name <> 'SYSTEM' AND client_ip >= '1' ORDER BY user_name DESC, workstation, client_ip, record_id LIMIT 25",
    ];
    let mut nonempty = 0;
    for q in queries {
        let a = rows(&store, q).await;
        let b = rows(&evtx, q).await;
        assert_eq!(a, b, "store vs EVTX session differ for: {q}");
        if q.contains("FROM events") && !q.contains("FROM files") {
            let c = rows(
                &store,
                &q.replacen("FROM events", &format!("FROM read_evtx('{dir}')"), 1),
            )
            .await;
            assert_eq!(a, c, "store vs read_evtx() differ for: {q}");
        }
        if !a.is_empty() && a[0] != "0|NULL|NULL" {
            nonempty += 1;
        }
    }
    assert_eq!(
        nonempty,
        queries.len(),
        "every query should find rows in the fixture"
    );

    // Facts from the corpus's expected.json.
    let by_id = rows(
        &store,
        "SELECT event_id, count(*) FROM events GROUP BY 1 ORDER BY 1",
    )
    .await;
    for want in [
        "4625|3561",
        "5145|1",
        "31018|8",
        "30810|29",
        "1010|14",
        "4624|1",
    ] {
        assert!(by_id.contains(&want.to_string()), "{want} not in {by_id:?}");
    }
    assert_eq!(
        rows(&store, "SELECT count(*) FROM smb_client").await,
        ["58"]
    );
    assert_eq!(
        rows(&store, "SELECT count(*) FROM smb_server").await,
        ["28"]
    );
    assert_eq!(rows(&store, "SELECT count(*) FROM logons").await, ["3563"]);
    assert_eq!(
        rows(&store, "SELECT count(*) FROM share_access").await,
        ["1"]
    );
    let failed = rows(
        &store,
        "SELECT status FROM files WHERE path LIKE '%test1.evtx'",
    )
    .await;
    assert_eq!(failed, ["failed"]);
}

/// The views are planned when first read: each answers exactly as its SQL run directly, they are
/// listed as views before any is read, and a user's view of the same name replaces ours.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_planned_when_read_answer_as_their_sql() {
    let Some(fx) = FIXTURE.as_ref() else { return };
    let opts = SessionOptions::default();
    let ctx = session_for_store(&fx.store, &opts).await.unwrap();
    let listed = rows(
        &ctx,
        "SELECT table_name, table_type FROM information_schema.tables \
         WHERE table_type = 'VIEW' AND table_schema = 'public' ORDER BY table_name",
    )
    .await;
    assert_eq!(
        listed,
        [
            "logons|VIEW",
            "share_access|VIEW",
            "smb_client|VIEW",
            "smb_server|VIEW"
        ]
    );
    for (name, _, select) in evtxsql_query::views::VIEWS {
        let order = "ORDER BY record_id, provider, computer, time_created";
        let direct = rows(&ctx, &format!("SELECT * FROM ({select}) v {order}")).await;
        let view = rows(&ctx, &format!("SELECT * FROM {name} {order}")).await;
        assert!(!view.is_empty(), "{name} is empty in the fixture");
        assert_eq!(view, direct, "{name} differs from its SQL");
        let columns = rows(
            &ctx,
            &format!("SELECT count(*) FROM information_schema.columns WHERE table_name = '{name}'"),
        )
        .await;
        let events = rows(
            &ctx,
            "SELECT count(*) + 1 FROM information_schema.columns WHERE table_name = 'events'",
        )
        .await;
        assert_eq!(
            columns, events,
            "{name}: the columns of events and status_name"
        );
    }
    let fresh = session_for_store(&fx.store, &opts).await.unwrap();
    rows(&fresh, "CREATE OR REPLACE VIEW smb_client AS SELECT 1 AS x").await;
    assert_eq!(rows(&fresh, "SELECT * FROM smb_client").await, ["1"]);
    rows(&fresh, "DROP VIEW smb_server").await;
    let gone = evtxsql_query::sql(&fresh, "SELECT * FROM smb_server").await;
    assert!(gone.is_err(), "a dropped view is gone");
}

/// The payload column keeps no statistics (no filter can use them), and DataFusion does not
/// take that for "all null": counts of `data` come from the rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payload_counts_without_statistics() {
    let Some(fx) = FIXTURE.as_ref() else { return };
    let ctx = session_for_store(&fx.store, &SessionOptions::default())
        .await
        .unwrap();
    let counts = rows(
        &ctx,
        "SELECT count(*), count(data), count(*) FILTER (WHERE data IS NULL) FROM events",
    )
    .await;
    let direct = rows(
        &ctx,
        "SELECT count(*), sum(CASE WHEN data IS NULL THEN 0 ELSE 1 END), \
         sum(CASE WHEN data IS NULL THEN 1 ELSE 0 END) FROM events WHERE record_id >= 0",
    )
    .await;
    assert_eq!(counts, direct);
    let fields: Vec<&str> = counts[0].split('|').collect();
    assert_ne!(fields[1], "0", "count(data) read as all null: {counts:?}");
}

/// `read_evtx` takes several paths, projects and stops at a LIMIT; bad paths are plan errors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_evtx_paths_projection_and_limit() {
    let Some(fx) = FIXTURE.as_ref() else { return };
    let ctx = new_context(&SessionOptions::default()).unwrap();
    let a = fx.evtx.join("0-Microsoft-Windows-SmbClient%4Security.evtx");
    let glob = fx.evtx.join("2-*.evtx");
    let q = format!(
        "SELECT event_id, count(*) FROM read_evtx('{}', '{}') GROUP BY 1 ORDER BY 1",
        a.display(),
        glob.display()
    );
    assert_eq!(
        rows(&ctx, &q).await,
        ["1010|14", "1011|4", "1025|5", "1027|5", "31018|8"]
    );
    let q = format!(
        "SELECT record_id FROM read_evtx('{}') LIMIT 3",
        fx.evtx.display()
    );
    assert_eq!(rows(&ctx, &q).await.len(), 3);

    for bad in [
        "SELECT * FROM read_evtx('/no/such/file.evtx')",
        "SELECT * FROM read_evtx()",
        "SELECT * FROM read_evtx(42)",
    ] {
        let err = evtxsql_query::sql(&ctx, bad).await.map(|_| ()).unwrap_err();
        assert!(err.is_usage(), "{bad}: {err}");
    }
}

/// The functions return NULL for NULL and garbage, never panic, and accept text or numbers.
#[tokio::test]
async fn functions_on_hostile_input() {
    let ctx = new_context(&SessionOptions::default()).unwrap();
    let q = "SELECT ntstatus_name(3221225581), ntstatus_name(-1073741715), ntstatus_name('0xC05D0002'), \
             ntstatus_name('garbage'), ntstatus_name(NULL), ntstatus_name(99999999999), ntstatus_name(0)";
    assert_eq!(
        rows(&ctx, q).await,
        [
            "STATUS_LOGON_FAILURE|STATUS_LOGON_FAILURE|STATUS_SMB_GUEST_LOGON_BLOCKED|NULL|NULL|NULL|STATUS_SUCCESS"
        ]
    );
    let q = "SELECT sockaddr_ip('02-00-01-BD-C0-A8-01-05-00-00-00-00-00-00-00-00'), \
             sockaddr_port('020001BDC0A80105'), sockaddr_ip('zz'), sockaddr_port(''), sockaddr_ip(NULL), \
             sockaddr_ip(12)";
    assert_eq!(rows(&ctx, q).await, ["192.168.1.5|445|NULL|NULL|NULL|NULL"]);
    let q = "SELECT ip_in_cidr('10.1.2.3', '10.0.0.0/8'), ip_in_cidr('10.1.2.3', NULL), \
             ip_in_cidr('x', 'y'), ip_in_cidr('10.1.2.3', '10.0.0.0/99'), is_private_ip('192.168.0.1'), \
             is_private_ip('8.8.8.8'), is_private_ip(42), is_private_ip(NULL)";
    assert_eq!(
        rows(&ctx, q).await,
        ["true|NULL|NULL|NULL|true|false|NULL|NULL"]
    );
    let q = "SELECT normalize_host('\\\\NAS01.Local.'), normalize_host('-'), normalize_host(''), normalize_host(NULL)";
    assert_eq!(rows(&ctx, q).await, ["nas01.local|NULL|NULL|NULL"]);
    // Over columns, not just literals.
    let q = "SELECT ntstatus_name(s), is_private_ip(ip) FROM (VALUES (3221225586, '10.0.0.1'), (NULL, 'nope')) t(s, ip)";
    assert_eq!(
        rows(&ctx, q).await,
        ["STATUS_ACCOUNT_DISABLED|true", "NULL|NULL"]
    );
}

/// A store written by hand: `n` events with a long distinct `data` text each.
fn write_store(dir: &Path, n: usize) {
    let store = Store::create_or_open(dir).unwrap();
    let schema = events_schema();
    let per_batch = 50_000;
    let file = std::fs::File::create(store.events_part(0)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), None).unwrap();
    let mut start = 0;
    while start < n {
        let len = per_batch.min(n - start);
        let ids: Vec<u64> = (start as u64..(start + len) as u64).collect();
        let cols: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| -> ArrayRef {
                match f.name().as_str() {
                    "file_id" => Arc::new(UInt32Array::from(vec![0u32; len])),
                    "record_id" => Arc::new(UInt64Array::from(ids.clone())),
                    "time_created" => Arc::new(
                        TimestampMicrosecondArray::from(
                            ids.iter()
                                .map(|i| 1_700_000_000_000_000 + *i as i64)
                                .collect::<Vec<_>>(),
                        )
                        .with_timezone("UTC"),
                    ),
                    "event_id" => Arc::new(UInt32Array::from(
                        ids.iter().map(|i| (i % 50) as u32).collect::<Vec<_>>(),
                    )),
                    "channel" => {
                        let s = StringArray::from(
                            ids.iter()
                                .map(|i| format!("ch{}", i % 7))
                                .collect::<Vec<_>>(),
                        );
                        cast(&s, f.data_type()).unwrap()
                    }
                    "data" => Arc::new(StringArray::from(
                        ids.iter()
                            .map(|i| {
                                format!(
                                    "{{\"k\":\"{:016x}-{:064}\"}}",
                                    i.wrapping_mul(0x9E37_79B9_7F4A_7C15),
                                    i
                                )
                            })
                            .collect::<Vec<_>>(),
                    )),
                    _ => new_null_array(f.data_type(), len),
                }
            })
            .collect();
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
        start += len;
    }
    w.close().unwrap();
    let manifest = evtxsql_ingest::manifest::to_batch(&[]).unwrap();
    let file = std::fs::File::create(store.files_part(0)).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, manifest.schema(), None).unwrap();
    w.write(&manifest).unwrap();
    w.close().unwrap();
}

/// With a memory limit far below the data, a sort and a high-cardinality GROUP BY spill to disk
/// and give exactly the answer they give without a limit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_limit_spills_and_agrees() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    write_store(&dir, 400_000);
    let spill = tmp.path().join("spill");
    std::fs::create_dir(&spill).unwrap();
    let free = session_for_store(&dir, &SessionOptions::default())
        .await
        .unwrap();
    let limited = session_for_store(
        &dir,
        &SessionOptions {
            memory_limit: Some(16 << 20),
            threads: Some(2),
            spill_dir: Some(spill.clone()),
        },
    )
    .await
    .unwrap();
    let queries = [
        // The sorted data: ~40 MB of text, more than twice the limit.
        "SELECT data, record_id FROM events ORDER BY data DESC",
        "SELECT count(*), sum(c), max(d) FROM (SELECT data AS d, count(*) AS c FROM events GROUP BY data)",
    ];
    for q in queries {
        assert_eq!(rows(&free, q).await, rows(&limited, q).await, "{q}");
    }
    // Strings are read as views without a limit (faster), names and addresses as dictionaries,
    // and both as plain strings under one (a sort of views cannot spill within it: DataFusion
    // counts their shared buffers once per batch).
    let types = "SELECT arrow_typeof(data), arrow_typeof(user_name) FROM events LIMIT 1";
    assert_eq!(
        rows(&free, types).await,
        vec!["Utf8View|Dictionary(Int32, Utf8)"]
    );
    assert_eq!(rows(&limited, types).await, vec!["Utf8|Utf8"]);
    let sort = "EXPLAIN ANALYZE SELECT data FROM events ORDER BY data DESC";
    let plan = rows(&limited, sort).await.join("\n");
    let spilled = plan.split("spill_count=").skip(1).any(|s| {
        s.chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse::<u64>()
            .unwrap_or(0)
            > 0
    });
    assert!(spilled, "expected the sort to spill:\n{plan}");
}

/// The segments' footers (read while the session is built and the first query planned) are in
/// a store session's metadata cache after its first query, given the dictionary hint in a
/// session that reads names as dictionaries and not under a memory limit (which reads them as
/// strings), and not read again by the next query; answers agree. (That planning waits for the
/// footers read beside it instead of reading them itself: `footers::tests`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn footers_are_read_while_the_session_is_built() {
    use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    write_store(&dir, 2_000);
    let parts = Store::open(&dir).unwrap().committed_event_parts().unwrap();
    assert_eq!(parts.len(), 1);
    let limited = SessionOptions {
        memory_limit: Some(64 << 20),
        ..SessionOptions::default()
    };
    let mut answers = Vec::new();
    for (opts, hinted) in [(SessionOptions::default(), true), (limited, false)] {
        let ctx = session_for_store(&dir, &opts).await.unwrap();
        let cache = ctx.runtime_env().cache_manager.get_file_metadata_cache();
        let location = object_store::path::Path::from_filesystem_path(&parts[0]).unwrap();
        let q = "SELECT count(*), count(DISTINCT data), max(record_id) FROM events";
        answers.push(rows(&ctx, q).await);
        let entry = cache
            .get(&location)
            .expect("the footer is not in the cache");
        let footer = entry
            .file_metadata
            .as_any()
            .downcast_ref::<CachedParquetMetaData>()
            .unwrap()
            .parquet_metadata()
            .clone();
        assert_eq!(footer.file_metadata().num_rows(), 2_000);
        let pairs = footer.file_metadata().key_value_metadata().unwrap();
        let marked = pairs.iter().any(|kv| kv.key == "evtxsql:dictionary_hint");
        assert_eq!(marked, hinted, "memory limit {:?}", opts.memory_limit);
        assert_eq!(rows(&ctx, q).await, answers[answers.len() - 1]);
        let after = cache.get(&location).unwrap();
        let after = after.file_metadata.as_any();
        let after = after.downcast_ref::<CachedParquetMetaData>().unwrap();
        assert!(
            Arc::ptr_eq(after.parquet_metadata(), &footer),
            "the footer was read again"
        );
    }
    assert_eq!(answers[0], answers[1]);
}

/// Missing store, newer store, bad SQL, unknown column: clear usage errors with positions.
#[tokio::test]
async fn errors_are_clear_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    let err = session_for_store(&missing, &SessionOptions::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains("not an evtxsql store"), "{err}");

    let newer = tmp.path().join("newer");
    std::fs::create_dir(&newer).unwrap();
    std::fs::write(
        newer.join("evtxsql-store.json"),
        r#"{"format": 999, "created_by": "evtxsql 99"}"#,
    )
    .unwrap();
    let err = session_for_store(&newer, &SessionOptions::default())
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(err.is_usage());
    assert!(err.to_string().contains("newer"), "{err}");

    // An empty store: tables and views exist and are empty.
    let empty = tmp.path().join("empty");
    Store::create_or_open(&empty).unwrap();
    let ctx = session_for_store(&empty, &SessionOptions::default())
        .await
        .unwrap();
    for t in [
        "events",
        "files",
        "smb_client",
        "smb_server",
        "logons",
        "share_access",
    ] {
        assert_eq!(
            rows(&ctx, &format!("SELECT count(*) FROM {t}")).await,
            ["0"],
            "{t}"
        );
    }

    let bad = "SELECT event_id\nFROM events WHERE";
    let err = evtxsql_query::sql(&ctx, bad).await.map(|_| ()).unwrap_err();
    assert!(err.is_usage(), "{err}");
    let shown = err.render_with_sql(bad);
    assert!(shown.contains("line 2"), "{shown}");

    let unknown = "SELECT no_such_column FROM events";
    let err = evtxsql_query::sql(&ctx, unknown)
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(err.is_usage(), "{err}");
    let shown = err.render_with_sql(unknown);
    assert!(shown.contains("no_such_column"), "{shown}");
    assert!(shown.contains("column 8"), "{shown}");

    let err = evtxsql_query::sql(&ctx, "SELECT * FROM no_such_table")
        .await
        .map(|_| ())
        .unwrap_err();
    assert!(
        err.is_usage() && err.to_string().contains("no_such_table"),
        "{err}"
    );
    assert!(matches!(
        evtxsql_query::parse_size("2 parsecs"),
        Err(QueryError::InvalidOption { .. })
    ));
}

/// Each output format, on a result with times, dictionary text, numbers, NULL and a formula.
#[tokio::test]
async fn output_formats() {
    let ctx = new_context(&SessionOptions::default()).unwrap();
    let q = "SELECT arrow_cast(TIMESTAMP '2024-11-14T16:15:55.687901Z', 'Timestamp(Microsecond, Some(\"UTC\"))') AS t, \
             arrow_cast('Security', 'Dictionary(Int32, Utf8)') AS channel, \
             arrow_cast(4625, 'UInt32') AS event_id, -3 AS n, 1.5 AS f, true AS b, NULL AS nothing, \
             '=HYPERLINK(\"x\")' AS evil";
    let df = evtxsql_query::sql(&ctx, q).await.unwrap();
    let schema = Arc::new(df.schema().as_arrow().clone());
    let batches = df.collect().await.unwrap();
    let write = |format: Format, tz: Option<chrono_tz::Tz>| -> Vec<u8> {
        let mut out: Vec<u8> = Vec::new();
        let opts = OutputOptions {
            format,
            tz,
            target: "test".into(),
            ..OutputOptions::default()
        };
        let n = write_batches(schema.clone(), &batches, &mut out, &opts).unwrap();
        assert_eq!(n, 1);
        out
    };
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();

    let table = text(write(Format::Table, None));
    assert!(
        table.contains("2024-11-14T16:15:55.687901Z") && table.contains("Security"),
        "{table}"
    );
    assert!(
        table.contains("NULL") && table.contains("(1 row)"),
        "{table}"
    );
    let berlin = text(write(Format::Table, Some(chrono_tz::Europe::Berlin)));
    assert!(
        berlin.contains("2024-11-14T17:15:55.687901+01:00"),
        "{berlin}"
    );

    let csv = text(write(Format::Csv, None));
    assert_eq!(
        csv,
        "t,channel,event_id,n,f,b,nothing,evil\n\
         2024-11-14T16:15:55.687901Z,Security,4625,-3,1.5,true,,\"'=HYPERLINK(\"\"x\"\")\"\n"
    );

    let json: serde_json::Value = serde_json::from_slice(&write(Format::Json, None)).unwrap();
    assert_eq!(
        json,
        serde_json::json!([{"t": "2024-11-14T16:15:55.687901Z", "channel": "Security", "event_id": 4625,
            "n": -3, "f": 1.5, "b": true, "nothing": null, "evil": "=HYPERLINK(\"x\")"}])
    );
    let jsonl = text(write(Format::Jsonl, None));
    assert_eq!(jsonl.lines().count(), 1);
    let line: serde_json::Value = serde_json::from_str(jsonl.trim()).unwrap();
    assert_eq!(line, json[0]);

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("out.parquet");
    std::fs::write(&path, write(Format::Parquet, None)).unwrap();
    let file = std::fs::File::open(&path).unwrap();
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .build()
        .unwrap();
    let back: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(back.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    assert!(matches!(
        back[0].column(0).data_type(),
        DataType::Timestamp(_, Some(_))
    ));

    let arrow_bytes = write(Format::Arrow, None);
    let reader =
        arrow::ipc::reader::FileReader::try_new(std::io::Cursor::new(arrow_bytes), None).unwrap();
    let back: Vec<RecordBatch> = reader.map(|b| b.unwrap()).collect();
    assert_eq!(back[0].schema(), schema);

    // An empty result is still valid output.
    let mut out: Vec<u8> = Vec::new();
    let opts = OutputOptions {
        format: Format::Json,
        ..OutputOptions::default()
    };
    write_batches(schema.clone(), &[], &mut out, &opts).unwrap();
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&out).unwrap(),
        serde_json::json!([])
    );
}
