//! `rules check` semantics: planning against an empty store catches bad SQL with file and line.

use evtxsql_rules::{check, pack};

use super::common::session;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn builtin_rules_plan_and_bad_rules_name_their_line() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    evtxsql_ingest::Store::create_or_open(&store).unwrap();
    let ctx = session(&store).await;
    let set = pack::builtin_pack("smb-guest").unwrap();
    let errors = check::check_rules(&ctx, &set.rules, set.timeline.as_ref()).await;
    assert!(errors.is_empty(), "{errors:#?}");

    let dir = tmp.path().join("mine");
    std::fs::create_dir(&dir).unwrap();
    let head = "-- id: ID\n-- title: t\n-- severity: low\n-- requires: Security: 4624\n";
    std::fs::write(
        dir.join("a_unknown_column.sql"),
        format!(
            "{}SELECT computer AS host,\n  server_name AS server,\n  nosuch_col AS user_name,\n  \
             time_created AS first_seen, time_created AS last_seen, 1 AS count, '' AS evidence\nFROM smb_events",
            head.replace("ID", "a")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("b_missing_columns.sql"),
        format!(
            "{}SELECT computer AS host FROM smb_events",
            head.replace("ID", "b")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("c_syntax.sql"),
        format!(
            "{}SELECT computer AS host,\nFROM FROM smb_events",
            head.replace("ID", "c")
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("d_header.sql"),
        "-- id: d\n-- title: t\n-- severity: urgent\nSELECT 1",
    )
    .unwrap();
    let (ok, bad) = pack::load_dir_all(&dir).unwrap();
    assert_eq!(bad.len(), 1);
    assert!(
        bad[0].to_string().ends_with(
            "d_header.sql:3: unknown severity `urgent` (info, low, medium, high, critical)"
        ),
        "{}",
        bad[0]
    );
    let errors: Vec<String> = check::check_rules(&ctx, &ok.rules, ok.timeline.as_ref())
        .await
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].contains("a_unknown_column.sql:7:") && errors[0].contains("nosuch_col"),
        "{}",
        errors[0]
    );
    assert!(
        errors[1].contains("b_missing_columns.sql:5:") && errors[1].contains("server"),
        "{}",
        errors[1]
    );
    assert!(errors[2].contains("c_syntax.sql:6:"), "{}", errors[2]);

    // A timeline query is checked like a rule: planned, and its columns named.
    let cases = [
        (
            "SELECT '2025-01-01' AS day, 'host' AS scope, computer AS name, 1 AS allowed\nFROM smb_events",
            "timeline.sql:4: a timeline query returns the columns day, scope, name, allowed, rejected",
        ),
        (
            "SELECT '2025-01-01' AS day, 'host' AS scope,\n  nosuch AS name, 1 AS allowed, 0 AS rejected\nFROM smb_events",
            "timeline.sql:5:",
        ),
    ];
    for (i, (sql, want)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("timeline{i}"));
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(
            dir.join("timeline.sql"),
            format!("-- kind: timeline\n-- title: t\n-- requires: Security: 4624\n{sql}"),
        )
        .unwrap();
        let set = pack::load_dir(&dir).unwrap();
        let errors = check::check_rules(&ctx, &set.rules, set.timeline.as_ref()).await;
        assert_eq!(errors.len(), 1, "{errors:#?}");
        assert!(errors[0].to_string().contains(want), "{}", errors[0]);
    }
}
