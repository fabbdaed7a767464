//! The shared scan keeps only what the rules' plans read, and never changes a finding.

use arrow::array::AsArray;
use arrow::datatypes::Int64Type;
use evtxsql_rules::Rule;

use crate::common::{ingest, run, session, smb_guest, workspace};

fn rule(id: &str, requires: &str, sql: &str) -> Rule {
    let text =
        format!("-- id: {id}\n-- title: {id}\n-- severity: low\n-- requires: {requires}\n{sql}");
    Rule::parse(&text, &format!("{id}.sql"), "test").expect("rule parses")
}

async fn count(ctx: &datafusion::prelude::SessionContext, sql: &str) -> i64 {
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    batches[0].column(0).as_primitive::<Int64Type>().value(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_relation_holds_only_what_rules_read_and_findings_match_naive() {
    let data = workspace().join("samples/data");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ingest(
        &[
            data.join("windows-guest-server"),
            data.join("admin-enables-guest"),
        ],
        &store,
    );
    let ctx = session(&store).await;

    // The pack: the Security logons it requires are mostly ordinary (non-guest) noise, which
    // the rules' own filters rule out, so the relation holds far fewer rows than `requires`.
    let pack = smb_guest();
    let required = count(
        &ctx,
        "SELECT count(*) FROM events WHERE event_id IN (4624, 4625, 5140, 5145, 4104, 13)",
    )
    .await;
    let shared = run(&ctx, &pack, true).await;
    let naive = run(&ctx, &pack, false).await;
    assert_eq!(shared.findings, naive.findings);
    assert_eq!(shared.timeline, naive.timeline);
    assert!(!shared.findings.is_empty());
    assert!(!shared.timeline.is_empty(), "the pack's timeline has rows");
    let kept = shared.relation_rows.expect("shared mode counts rows") as i64;
    assert!(kept > 0);
    assert!(
        kept < required,
        "relation kept {kept} rows, the required Security/PowerShell/Sysmon ids alone have {required}"
    );
    assert!(
        (1..=2).contains(&shared.passes.len()),
        "{:?} passes",
        shared.passes
    );
    // Each pass says what it kept: together, the relation's rows.
    assert_eq!(
        shared.passes.iter().map(|p| p.rows).sum::<usize>() as i64,
        kept
    );
    assert!(
        shared
            .passes
            .iter()
            .all(|p| p.event_ids > 0 && p.columns > 0)
    );
    assert!(
        shared.passes.iter().any(|p| p.payload),
        "the pack reads the payload (31018, 4104, Sysmon 13)"
    );

    // User rules that read the same event ids differently: one with no filter beyond the event
    // id (every row), one reading the payload of a few rows, one reading a column of another id
    // that no other rule reads, one with a subquery filter, and one whose filter is an OR
    // across ids. Each must see exactly what it sees on its own scan of the store.
    let rules = vec![
        rule(
            "all_logons",
            "Microsoft-Windows-Security-Auditing: 4624",
            "SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, NULL AS server, NULL AS user_name,\n\
             min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,\n\
             'logons' AS evidence FROM smb_events WHERE event_id = 4624 GROUP BY 1",
        ),
        rule(
            "guest_payload",
            "Microsoft-Windows-Security-Auditing: 4624",
            "SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, NULL AS server, user_name,\n\
             min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,\n\
             max(json_as_text(data, 'LogonProcessName')) AS evidence FROM smb_events\n\
             WHERE event_id = 4624 AND logon_type = 3 AND target_sid LIKE '%-501' GROUP BY 1, 3",
        ),
        rule(
            "script_lengths",
            "Microsoft-Windows-PowerShell: 4104",
            "SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, NULL AS server, NULL AS user_name,\n\
             min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,\n\
             CAST(max(length(data)) AS VARCHAR) AS evidence FROM smb_events WHERE event_id = 4104 GROUP BY 1",
        ),
        rule(
            "subquery_filter",
            "Microsoft-Windows-Security-Auditing: 5140, 4624",
            "SELECT split_part(CAST(computer AS VARCHAR), '.', 1) AS host, NULL AS server, NULL AS user_name,\n\
             min(time_created) AS first_seen, max(time_created) AS last_seen, count(*) AS count,\n\
             'shares' AS evidence FROM smb_events WHERE event_id = 5140\n\
             AND logon_id IN (SELECT logon_id FROM smb_events WHERE event_id = 4624 AND logon_type = 3)\n\
             GROUP BY 1",
        ),
        rule(
            "either_id",
            "Microsoft-Windows-Security-Auditing: 4624, 4625",
            "SELECT NULL AS host, NULL AS server, user_name, min(time_created) AS first_seen,\n\
             max(time_created) AS last_seen, count(*) AS count, 'either' AS evidence\n\
             FROM smb_events WHERE (event_id = 4624 AND logon_type = 3) OR (event_id = 4625 AND status IS NOT NULL)\n\
             GROUP BY 3",
        ),
    ];
    let shared = run(&ctx, &rules, true).await;
    let naive = run(&ctx, &rules, false).await;
    assert_eq!(shared.findings, naive.findings);
    for id in [
        "all_logons",
        "guest_payload",
        "script_lengths",
        "subquery_filter",
        "either_id",
    ] {
        assert!(
            shared.findings.iter().any(|f| f.rule == id),
            "{id} found nothing: the test would not show a difference"
        );
    }
    // all_logons reads every 4624, so the relation holds them all.
    let logons = count(&ctx, "SELECT count(*) FROM events WHERE event_id = 4624").await;
    assert!(shared.relation_rows.unwrap() as i64 >= logons);
}
