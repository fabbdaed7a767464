//! The pack over the shared corpus of real EVTX files (`EVTXSQL_CORPUS`, default `../shared/evtx`
//! beside the workspace): every rule runs without error, and the 31018 events of
//! `tugix456__randaodcxjj/Microsoft-Windows-SmbClient%4Security.evtx` are reported.

use evtxsql_testkit::corpus;
use serde_json::Value;

use super::common::{ingest, run, session, smb_guest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pack_runs_on_the_real_corpus_and_finds_31018() {
    let Some(dir) = corpus() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let summary = ingest(std::slice::from_ref(&dir), &store);
    assert!(
        summary.files_ingested > 0,
        "nothing ingested from {}",
        dir.display()
    );
    let ctx = session(&store).await;
    let rules = smb_guest();
    let shared = run(&ctx, &rules, true).await;
    let naive = run(&ctx, &rules, false).await;
    assert_eq!(shared.findings, naive.findings);

    // The tugix456 host: 8x 31018 (AllowInsecureGuestAuth=1) in its SmbClient/Security log.
    let enabled: Vec<_> = shared
        .findings
        .iter()
        .filter(|f| f.rule == "insecure_guest_enabled")
        .filter(|f| {
            f.extra
                .get("mechanisms")
                .and_then(Value::as_str)
                .is_some_and(|m| m.contains("31018"))
        })
        .collect();
    // The machine was renamed twice while logging (WIN-8TCU0Q1I3O7, DESKTOP-P2NAHG6, Cafte):
    // one finding per name, 8 events in all.
    let total: u64 = enabled.iter().map(|f| f.count).sum();
    assert_eq!(total, 8, "{enabled:#?}");
    assert!(
        enabled
            .iter()
            .all(|f| f.evidence.contains("AllowInsecureGuestAuth=1"))
    );
    let first = enabled.iter().filter_map(|f| f.first_seen.clone()).min();
    assert_eq!(first.as_deref(), Some("2024-11-14T16:15:55Z"));
    let hosts: Vec<_> = enabled.iter().filter_map(|f| f.host.clone()).collect();
    assert!(hosts.contains(&"DESKTOP-P2NAHG6".to_string()), "{hosts:?}");
    eprintln!(
        "corpus: {} events examined, {} findings; 31018 on {hosts:?} x{total}",
        shared.relation_rows.unwrap_or(0),
        shared.findings.len(),
    );
    for f in &shared.findings {
        eprintln!("  {} {:?} {:?} x{}", f.rule, f.host, f.server, f.count);
    }
}
