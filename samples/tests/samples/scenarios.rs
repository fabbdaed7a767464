//! Scenario truth on generated data, for several seeds: what each scenario plants, that noise
//! does not change it, the signing scenario's rollbacks and re-upgrades, the server scenario's
//! shape varying with the seed, and the `user` convention.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use evtxsql_samples::catalog::Catalog;
use evtxsql_samples::scenario::{
    self, BUILD_24H2, Finding, GenerateOptions, analyze, normalize_server, plan_scenario,
    scenario_events, scenario_names,
};
use evtxsql_samples::writer::Event;

pub fn small(seed: u64) -> GenerateOptions {
    GenerateOptions {
        scenario: "all".into(),
        hosts: 6,
        days: 2,
        events: 1500,
        seed,
        out: PathBuf::new(),
        start: None,
    }
}

#[test]
fn truth_does_not_change_when_noise_is_added() {
    let cat = Catalog::new();
    for name in scenario_names() {
        let (truth, files) = scenario_events(&cat, name, &small(3)).unwrap();
        let all: Vec<Event> = files.into_iter().flatten().collect();
        assert_eq!(all.len(), 1500.max(all.len()));
        assert_eq!(analyze(&all), truth, "{name}");
    }
}

fn kinds(findings: &[Finding]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for f in findings {
        *m.entry(f.kind.clone()).or_default() += 1;
    }
    m
}

#[test]
fn each_scenario_plants_what_it_is_named_for() {
    let cat = Catalog::new();
    for seed in [1, 7, 99] {
        let opts = small(seed);
        let get = |name: &str| plan_scenario(&cat, name, &opts).unwrap().2;
        let k = |name: &str| kinds(&get(name));
        assert!(get("clean-fleet").is_empty());
        let nas = k("nas-guest-only");
        assert!(
            nas["client_rejected_guest"] >= 2
                && nas["guest_dependency"] == 1
                && !nas.contains_key("client_allowed_guest")
        );
        let admin = get("admin-enables-guest");
        let enabled: Vec<_> = admin
            .iter()
            .filter(|f| f.kind == "insecure_guest_enabled")
            .collect();
        assert_eq!(enabled.len(), 3);
        // PowerShell: 4104, 4657, Sysmon 13, 31018; group policy (the last one): no 4104.
        assert_eq!(
            enabled.iter().map(|f| f.count).collect::<Vec<_>>(),
            vec![4, 4, 3],
            "{enabled:?}"
        );
        assert!(enabled.iter().any(|f| f.user.as_deref() == Some("itadmin")));
        assert_eq!(kinds(&admin)["client_allowed_guest"], 3);
        let fb = k("fallback-to-guest");
        assert_eq!(fb["fallback_to_guest"], 3);
        let spoof = get("spoofed-server");
        let s: Vec<_> = spoof
            .iter()
            .filter(|f| f.kind == "spoofed_server")
            .collect();
        assert_eq!(s.len(), 1);
        assert_eq!(s[0].server.as_deref(), Some("10.66.6.6"));
        assert_eq!(s[0].hosts.len(), 4);
        assert!(
            spoof
                .iter()
                .any(|f| f.kind == "guest_dependency" && f.server.as_deref() == Some("nas01"))
        );
        // Three hosts upgraded, one of them (at least) twice; one more upgraded at its third boot.
        let sign = k("signing-breaks-guest");
        assert!(sign["guest_blocked_by_signing"] >= 5, "{sign:?}");
        let server = get("windows-guest-server");
        let sessions: Vec<_> = server
            .iter()
            .filter(|f| f.kind == "server_guest_session")
            .collect();
        assert!(!sessions.is_empty());
        assert!(
            sessions
                .iter()
                .filter(|f| f.user.as_deref() == Some("ANONYMOUS LOGON"))
                .count()
                <= 1,
            "only the scanner logs on anonymously with share access; the IPC$-only null session is not a finding"
        );
        assert!(server.iter().any(|f| f.kind == "server_guest_denied"));
    }
}

/// The boots of a host from its plan: (time, build), the first one at the start.
fn boot_sequence(h: &scenario::Host) -> Vec<(Option<String>, u32)> {
    std::iter::once((None, h.build))
        .chain(h.reboots.iter().map(|(t, b)| (Some(t.to_rfc3339()), *b)))
        .collect()
}

/// The signing findings follow each host's boot sequence as planned: one per upgrade (a boot on
/// 26100 or later right after one on an older build) that has rejects before the next boot on
/// an older build, counting exactly those rejects.
#[test]
fn signing_breakage_follows_each_hosts_boot_sequence() {
    let cat = Catalog::new();
    let (mut reupgraded, mut late_first_upgrade, mut rollback_rejects) = (0, 0, 0);
    for (seed, hosts) in [(1, 6), (7, 6), (99, 6), (5, 9), (12, 3), (8, 14)] {
        let opts = GenerateOptions {
            hosts,
            ..small(seed)
        };
        let (plan_hosts, signal, truth) =
            plan_scenario(&cat, "signing-breaks-guest", &opts).unwrap();
        let mut want = BTreeSet::new();
        for h in &plan_hosts {
            let rejects: Vec<String> = signal
                .iter()
                .filter(|e| e.schema.event_id == 31017 && e.computer == h.computer)
                .map(|e| e.time.to_rfc3339())
                .collect();
            let boots = boot_sequence(h);
            let mut upgrades = 0;
            for (k, w) in boots.windows(2).enumerate() {
                let ((_, before), (Some(at), after)) = (&w[0], &w[1]) else {
                    continue;
                };
                if *before >= BUILD_24H2 || *after < BUILD_24H2 {
                    if *before >= BUILD_24H2 && *after < BUILD_24H2 {
                        let until = boots.get(k + 2).and_then(|b| b.0.clone());
                        rollback_rejects += rejects
                            .iter()
                            .filter(|t| *t >= at && until.as_ref().is_none_or(|u| *t < u))
                            .count();
                    }
                    continue;
                }
                let end = boots[k + 2..]
                    .iter()
                    .find(|b| b.1 < BUILD_24H2)
                    .and_then(|b| b.0.clone());
                let inside: Vec<&String> = rejects
                    .iter()
                    .filter(|t| *t >= at && end.as_ref().is_none_or(|e| *t < e))
                    .collect();
                if let (Some(first), Some(last)) = (inside.iter().min(), inside.iter().max()) {
                    upgrades += 1;
                    if k > 0 && upgrades == 1 {
                        late_first_upgrade += 1;
                    }
                    let key = (h.name.clone(), at.clone(), *before, *after);
                    want.insert((key, (*first).clone(), (*last).clone(), inside.len() as u64));
                }
            }
            if upgrades >= 2 {
                reupgraded += 1;
            }
        }
        let got: BTreeSet<_> = truth
            .iter()
            .filter(|f| f.kind == "guest_blocked_by_signing")
            .map(|f| {
                let u = f.upgrade.as_ref().expect("the upgrade boot");
                let key = (
                    f.host.clone().unwrap(),
                    u.at.clone(),
                    u.from_build,
                    u.to_build,
                );
                (key, f.first.clone(), f.last.clone(), f.count)
            })
            .collect();
        assert_eq!(got, want, "seed {seed}, {hosts} hosts");
    }
    // The variant is exercised: hosts upgraded twice, hosts first upgraded at a later boot than
    // their second, and rejects during rollbacks that must not count.
    assert!(reupgraded >= 6, "{reupgraded} hosts upgraded twice");
    assert!(late_first_upgrade >= 6, "{late_first_upgrade}");
    assert!(
        rollback_rejects >= 6,
        "{rollback_rejects} rejects during rollbacks"
    );
}

/// A finding without its times and counts: kind, host, client, user.
type Shape = (String, Option<String>, Option<String>, Option<String>);

/// What a server-scenario fleet looks like, without times and counts.
fn server_shape(findings: &[Finding]) -> BTreeSet<Shape> {
    findings
        .iter()
        .map(|f| {
            (
                f.kind.clone(),
                f.host.clone(),
                f.client.clone(),
                f.user.clone(),
            )
        })
        .collect()
}

#[test]
fn the_server_scenario_varies_with_the_seed() {
    let cat = Catalog::new();
    let mut shapes = BTreeSet::new();
    let (mut servers, mut accounts, mut scanners) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for (seed, hosts) in [
        (1, 6),
        (2, 6),
        (3, 6),
        (4, 6),
        (5, 6),
        (6, 6),
        (7, 9),
        (8, 12),
    ] {
        let opts = GenerateOptions {
            hosts,
            ..small(seed)
        };
        let (plan_hosts, _, truth) = plan_scenario(&cat, "windows-guest-server", &opts).unwrap();
        let k = kinds(&truth);
        assert!(
            k.get("server_guest_session") >= Some(&1) && k.get("server_guest_denied") >= Some(&1),
            "seed {seed}: {k:?}"
        );
        // Every server plays a part.
        let named: BTreeSet<_> = truth.iter().filter_map(|f| f.host.clone()).collect();
        let file_servers: BTreeSet<_> = plan_hosts
            .iter()
            .filter(|h| h.server)
            .map(|h| h.name.clone())
            .collect();
        assert!(
            named.is_superset(&file_servers),
            "seed {seed}: {file_servers:?} vs {named:?}"
        );
        servers.insert(file_servers.len());
        for f in truth.iter().filter(|f| f.kind == "server_guest_session") {
            accounts.insert(f.user.clone());
            if f.user.as_deref() == Some("ANONYMOUS LOGON") {
                scanners.insert((f.host.clone(), f.client.clone()));
            }
        }
        shapes.insert(server_shape(&truth));
    }
    assert!(
        shapes.len() >= 6,
        "{} distinct shapes in 8 seeds",
        shapes.len()
    );
    assert!(servers.len() >= 2, "server counts {servers:?}");
    assert!(accounts.len() >= 3, "accounts {accounts:?}");
    assert!(scanners.len() >= 2, "scanners {scanners:?}");
}

/// The most frequent non-empty user name (`-` counts as empty), ties to the first by name.
fn most_frequent<'a>(users: impl Iterator<Item = &'a str>) -> Option<String> {
    let mut n: BTreeMap<&str, u64> = BTreeMap::new();
    for u in users.filter(|u| !u.is_empty() && *u != "-") {
        *n.entry(u).or_default() += 1;
    }
    let best = n.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))?;
    Some(best.0.to_string())
}

/// `user` is the most frequent user name of the finding's events, on fleet-wide findings too:
/// checked where a finding's events are a plain selection (client 31017/31022 per host and
/// server, and a spoofed server's guest logons between its first and last).
#[test]
fn user_is_the_most_frequent_user_of_the_findings_events() {
    let cat = Catalog::new();
    let mut spoofed_users = 0;
    for seed in [1, 7, 99] {
        for name in ["spoofed-server", "fallback-to-guest", "admin-enables-guest"] {
            let (_, signal, truth) = plan_scenario(&cat, name, &small(seed)).unwrap();
            let host_of = |e: &Event| e.computer.split('.').next().unwrap_or("").to_string();
            let server_of = |e: &Event| normalize_server(e.get_str("ServerName").unwrap_or(""));
            for f in &truth {
                let (id, per_host) = match f.kind.as_str() {
                    "client_rejected_guest" => (31017, true),
                    "client_allowed_guest" => (31022, true),
                    "spoofed_server" => (31022, false),
                    _ => continue,
                };
                let events = signal.iter().filter(|e| {
                    e.schema.event_id == id
                        && f.server.as_deref() == Some(server_of(e).as_str())
                        && (!per_host || f.host.as_deref() == Some(host_of(e).as_str()))
                        && (per_host
                            || (f.first <= e.time.to_rfc3339() && e.time.to_rfc3339() <= f.last))
                });
                let want = most_frequent(events.map(|e| e.get_str("UserName").unwrap_or("")));
                assert_eq!(f.user, want, "{name} seed {seed}: {f:?}");
                if f.kind == "spoofed_server" && f.user.is_some() {
                    spoofed_users += 1;
                }
            }
        }
    }
    assert_eq!(
        spoofed_users, 3,
        "each seed's spoofed server names its most frequent user"
    );
}
