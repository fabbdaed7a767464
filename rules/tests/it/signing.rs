//! `guest_blocked_by_signing` follows each host's boot sequence: its evidence names the upgrade
//! boot as it is in the store (build before and after, time, record), on generated scenarios
//! and on a fleet merged from every scenario of the committed set, whose findings equal the
//! truth derived from all of its events.

use std::collections::BTreeMap;

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int64Type, UInt32Type, UInt64Type};
use datafusion::prelude::SessionContext;
use evtxsql_rules::Finding;
use evtxsql_samples::GenerateOptions;
use evtxsql_samples::catalog::Catalog;
use evtxsql_samples::scenario::{analyze, scenario_events};
use serde_json::Value;

use super::common::{ingest, run, session, smb_guest, workspace};
use super::ground_truth::{assert_same, truth_keys};

/// One boot in the store: (time, file id, record id, build).
type Boot = (i64, u32, u64, Option<i64>);

/// Every host's Kernel-General 12 boots, in order (time, file, record).
async fn boots(ctx: &SessionContext) -> BTreeMap<String, Vec<Boot>> {
    let sql = "SELECT CAST(computer AS VARCHAR) AS computer, CAST(time_created AS BIGINT) AS t, \
               file_id, record_id, CAST(json_as_text(data, 'BuildVersion') AS BIGINT) AS build \
               FROM events WHERE event_id = 12 AND lower(provider) = 'microsoft-windows-kernel-general'";
    let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
    let mut out: BTreeMap<String, Vec<Boot>> = BTreeMap::new();
    for b in &batches {
        let computer =
            arrow::compute::cast(b.column(0), &arrow::datatypes::DataType::Utf8).unwrap();
        let computer = computer.as_string::<i32>();
        let t = b.column(1).as_primitive::<Int64Type>();
        let file = b.column(2).as_primitive::<UInt32Type>();
        let record = b.column(3).as_primitive::<UInt64Type>();
        let build = b.column(4).as_primitive::<Int64Type>();
        for i in 0..b.num_rows() {
            let host = computer.value(i).split('.').next().unwrap().to_string();
            let build = (!build.is_null(i)).then(|| build.value(i));
            out.entry(host)
                .or_default()
                .push((t.value(i), file.value(i), record.value(i), build));
        }
    }
    for v in out.values_mut() {
        v.sort();
    }
    out
}

/// Each signing finding names a boot of its host that is in the store at that time with that
/// record and build, right after a boot on the build it names as "from". Returns how many.
async fn check_upgrade_evidence(ctx: &SessionContext, findings: &[Finding]) -> usize {
    let boots = boots(ctx).await;
    let mut checked = 0;
    for f in findings
        .iter()
        .filter(|f| f.rule == "guest_blocked_by_signing")
    {
        let host = f.host.as_deref().unwrap();
        let num = |k: &str| f.extra[k].as_u64().unwrap_or_else(|| panic!("{k}: {f:?}"));
        let (from, to, record) = (num("from_build"), num("to_build"), num("upgrade_record"));
        let at = f.extra["upgraded_at"].as_str().unwrap();
        let seq = &boots[host];
        let k = seq
            .iter()
            .position(|b| b.2 == record && seconds(b.0) == at)
            .unwrap_or_else(|| panic!("{host}: no boot at {at} with record {record}: {seq:?}"));
        assert!(k > 0, "{host}: the first boot is not an upgrade: {f:?}");
        assert_eq!(seq[k].3, Some(to as i64), "{host} boot {record}: build");
        assert_eq!(
            seq[k - 1].3,
            Some(from as i64),
            "{host}: build before {record}"
        );
        assert!(from < 26100 && to >= 26100, "{f:?}");
        let first = f.first_seen.as_deref().unwrap();
        assert!(
            first >= at,
            "{host}: rejects start at {first}, before the upgrade at {at}"
        );
        let named = format!("upgraded from build {from} to {to} at {}", &at[..19]);
        assert!(f.evidence.starts_with(&named), "{}", f.evidence);
        assert!(
            f.evidence.contains(&format!("record {record})")),
            "{}",
            f.evidence
        );
        checked += 1;
    }
    checked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_evidence_names_the_upgrade_boot() {
    let tmp = tempfile::tempdir().unwrap();
    let rules: Vec<_> = smb_guest()
        .into_iter()
        .filter(|r| r.id == "guest_blocked_by_signing")
        .collect();
    let mut checked = 0;
    for (seed, hosts, days) in [(2, 6, 2), (31, 9, 3), (77, 3, 1)] {
        let out = tmp.path().join(format!("sign-{seed}"));
        let opts = GenerateOptions {
            scenario: "signing-breaks-guest".into(),
            hosts,
            days,
            events: 2000,
            seed,
            out: out.clone(),
            start: None,
        };
        evtxsql_samples::generate(&opts, &|_| {}).unwrap();
        let store = tmp.path().join(format!("store-{seed}"));
        ingest(&[out], &store);
        let ctx = session(&store).await;
        let found = run(&ctx, &rules, true).await.findings;
        checked += check_upgrade_evidence(&ctx, &found).await;
    }
    assert!(checked >= 9, "{checked} upgrade findings checked");
}

/// Every scenario of the committed set merged into one store: hosts of the same name from
/// different scenarios give interleaved boot sequences (WKS-004 boots 19045, 22631, 26100, ...).
/// The pack's findings equal the truth derived from all events together, and each signing
/// finding names the boot that upgraded the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_fleet_follows_the_boot_sequence() {
    let data = workspace().join("samples/data");
    let catalog = Catalog::new();
    let mut events = Vec::new();
    for name in evtxsql_samples::scenario_names() {
        let truth: Value =
            serde_json::from_slice(&std::fs::read(data.join(name).join("truth.json")).unwrap())
                .unwrap();
        let opts = GenerateOptions {
            scenario: (*name).into(),
            hosts: truth["hosts"].as_u64().unwrap() as usize,
            days: truth["days"].as_u64().unwrap() as u32,
            events: truth["events"].as_u64().unwrap(),
            seed: truth["seed"].as_u64().unwrap(),
            out: data.join(name),
            start: None,
        };
        let (_, files) = scenario_events(&catalog, name, &opts).unwrap();
        events.extend(files.into_iter().flatten());
    }
    let truth = serde_json::json!({ "findings": analyze(&events) });
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    ingest(&[data], &store);
    let ctx = session(&store).await;
    let out = run(&ctx, &smb_guest(), true).await;
    assert_same("merged fleet", &truth_keys(&truth), &out.findings);
    let checked = check_upgrade_evidence(&ctx, &out.findings).await;
    let wks004: Vec<_> = out
        .findings
        .iter()
        .filter(|f| f.rule == "guest_blocked_by_signing" && f.host.as_deref() == Some("WKS-004"))
        .map(|f| f.evidence.as_str())
        .collect();
    eprintln!("merged fleet: {checked} upgrade findings checked; WKS-004: {wks004:#?}");
    assert!(checked >= 3, "{checked}");
}

/// Microseconds since the epoch in the findings' form, `2025-01-31T08:00:00Z`.
fn seconds(us: i64) -> String {
    evtxsql_query::cells::format_time(
        us.div_euclid(1_000_000),
        arrow::datatypes::TimeUnit::Second,
        None,
    )
}
