//! The ground truth: which findings a correct analysis of a scenario's logs reports, derived
//! from the written events by the rules stated here (and in the README), so that truth and
//! data cannot drift apart. Every kind is matched on provider + event id, never on channel.

// The match arms read as one rule each; guards would split a rule across two places.
#![allow(clippy::collapsible_match)]

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use serde::Serialize;

use crate::catalog::Kind;
use crate::writer::{Event, FileTime, Value};

/// A 31022 this soon after a 31001 to the same server is a fallback to guest.
pub const FALLBACK_WINDOW_SECS: u64 = 30;
/// A server is spoofed when this many clients log on as guest within
/// [`SPOOF_WINDOW_SECS`] of the first time it is seen.
pub const SPOOF_MIN_CLIENTS: usize = 3;
/// See [`SPOOF_MIN_CLIENTS`].
pub const SPOOF_WINDOW_SECS: u64 = 600;
/// The first build that requires SMB signing by default.
pub const SIGNING_BUILD: u32 = 26100;

/// One thing a correct analysis must report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct Finding {
    /// What was found (`client_rejected_guest`, ...).
    pub kind: String,
    /// The host whose logs show it (short name), if one host.
    pub host: Option<String>,
    /// The SMB server concerned (normalized: no backslashes, lower case).
    pub server: Option<String>,
    /// The client address, for server-side findings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The account, when the events name one.
    pub user: Option<String>,
    /// The first event's time (RFC 3339, UTC).
    pub first: String,
    /// The last event's time.
    pub last: String,
    /// How many events (or sessions; see the README per kind).
    pub count: u64,
    /// The client hosts involved, for fleet-wide findings.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    /// The boot that upgraded the host, for `guest_blocked_by_signing`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub upgrade: Option<Upgrade>,
    /// Why this is a finding.
    pub why: String,
}

/// A boot whose build is [`SIGNING_BUILD`] or later, right after a boot on an older build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, PartialOrd, Ord)]
pub struct Upgrade {
    /// The build of the boot before.
    pub from_build: u32,
    /// The build of this boot.
    pub to_build: u32,
    /// This boot's time (RFC 3339, UTC).
    pub at: String,
}

/// A host's boot sequence so far: the last boot's build (`None` before the first boot or when
/// it names none), and the upgrade that began the current run of boots on a signing build.
#[derive(Default)]
struct Boots {
    build: Option<u32>,
    upgrade: Option<(u32, u32, FileTime)>,
}

impl Boots {
    fn boot(&mut self, build: Option<u32>, t: FileTime) {
        let previous = std::mem::replace(&mut self.build, build);
        self.upgrade = match (previous, build) {
            (_, Some(b)) if b < SIGNING_BUILD => None,
            (_, None) | (None, _) => None,
            (Some(p), Some(b)) if p < SIGNING_BUILD => Some((p, b, t)),
            (Some(_), Some(_)) => self.upgrade,
        };
    }
}

/// The rejects after one upgrade: events, servers named, build before, build after.
type Blocked = (Group, BTreeSet<String>, u32, u32);

fn kind_of(e: &Event) -> Option<Kind> {
    let s = &e.schema;
    Kind::ALL.iter().copied().find(|k| {
        let spec = k.spec();
        spec.event_id == s.event_id && spec.provider.0 == s.provider
    })
}

/// `\\SERVER.corp\share` → `server.corp`.
pub fn normalize_server(name: &str) -> String {
    name.trim_start_matches('\\')
        .split('\\')
        .next()
        .unwrap_or("")
        .to_lowercase()
}

fn host_of(e: &Event) -> String {
    e.computer.split('.').next().unwrap_or("").to_string()
}

fn text(e: &Event, field: &str) -> String {
    e.get_str(field).unwrap_or("").to_string()
}

fn uint(e: &Event, field: &str) -> Option<u64> {
    match e.get(field)? {
        Value::UInt32(v) | Value::HexInt32(v) => Some(u64::from(*v)),
        Value::UInt64(v) | Value::HexInt64(v) => Some(*v),
        _ => None,
    }
}

/// The address in a SOCKADDR field.
pub fn sockaddr_ip(bytes: &[u8]) -> Option<IpAddr> {
    let family = u16::from_le_bytes([*bytes.first()?, *bytes.get(1)?]);
    match family {
        2 => Some(IpAddr::V4(Ipv4Addr::new(
            *bytes.get(4)?,
            *bytes.get(5)?,
            *bytes.get(6)?,
            *bytes.get(7)?,
        ))),
        23 => {
            let a: [u8; 16] = bytes.get(8..24)?.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

fn secs(t: FileTime) -> u64 {
    t.0 / 10_000_000
}

/// Events grouped under a key, with times and users.
#[derive(Default)]
struct Group {
    times: Vec<FileTime>,
    users: BTreeMap<String, u64>,
    hosts: BTreeSet<String>,
}

impl Group {
    fn add(&mut self, t: FileTime, user: &str, host: &str) {
        self.times.push(t);
        if !user.is_empty() && user != "-" {
            *self.users.entry(user.to_string()).or_default() += 1;
        }
        self.hosts.insert(host.to_string());
    }

    fn user(&self) -> Option<String> {
        // The most frequent, then the first by name.
        let best = self
            .users
            .iter()
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))?;
        Some(best.0.clone())
    }

    fn finding(
        &self,
        kind: &str,
        host: Option<String>,
        server: Option<String>,
        why: String,
    ) -> Finding {
        let first = self.times.iter().min().copied().unwrap_or_default();
        let last = self.times.iter().max().copied().unwrap_or_default();
        Finding {
            kind: kind.to_string(),
            host,
            server,
            client: None,
            user: self.user(),
            first: first.to_rfc3339(),
            last: last.to_rfc3339(),
            count: self.times.len() as u64,
            hosts: Vec::new(),
            upgrade: None,
            why,
        }
    }
}

/// Derive the findings from `events` (any order). Returns them sorted.
pub fn analyze(events: &[Event]) -> Vec<Finding> {
    let mut sorted: Vec<(&Event, Kind)> = events
        .iter()
        .filter_map(|e| kind_of(e).map(|k| (e, k)))
        .collect();
    // A boot comes before the other events of its instant: they happen on the booted build.
    sorted.sort_by_key(|(e, k)| (e.time, *k != Kind::KernelGeneral12));
    let mut out = Vec::new();

    // Client side: rejected and allowed guest logons, per (host, server).
    let mut rejected: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut allowed: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut by_server: BTreeMap<String, Group> = BTreeMap::new();
    let mut first_seen: BTreeMap<String, FileTime> = BTreeMap::new();
    let mut enabled: BTreeMap<String, Group> = BTreeMap::new();
    let mut fallback: BTreeMap<(String, String), Group> = BTreeMap::new();
    let mut last_failed: BTreeMap<(String, String), (FileTime, String)> = BTreeMap::new();
    let mut boots: BTreeMap<String, Boots> = BTreeMap::new();
    let mut blocked: BTreeMap<(String, FileTime), Blocked> = BTreeMap::new();
    let mut allowed_events: Vec<(String, String, String, FileTime)> = Vec::new();

    for &(e, k) in &sorted {
        let host = host_of(e);
        let server_field = match k {
            Kind::SmbClient31010 => Some(text(e, "ShareName")),
            Kind::SmbClient31001
            | Kind::SmbClient31017
            | Kind::SmbClient31022
            | Kind::SmbClient30803
            | Kind::SmbClient30804
            | Kind::SmbClient30805
            | Kind::SmbClient30806 => Some(text(e, "ServerName")),
            _ => None,
        };
        if let Some(name) = &server_field {
            first_seen.entry(normalize_server(name)).or_insert(e.time);
        }
        match k {
            Kind::SmbClient31017 | Kind::SmbClient31022 => {
                let server = normalize_server(&text(e, "ServerName"));
                let user = text(e, "UserName");
                let map = if k == Kind::SmbClient31017 {
                    &mut rejected
                } else {
                    &mut allowed
                };
                map.entry((host.clone(), server.clone()))
                    .or_default()
                    .add(e.time, &user, &host);
                by_server
                    .entry(server.clone())
                    .or_default()
                    .add(e.time, &user, &host);
                if k == Kind::SmbClient31022 {
                    allowed_events.push((server.clone(), host.clone(), user.clone(), e.time));
                    if let Some((t, failed_user)) = last_failed.get(&(host.clone(), server.clone()))
                        && secs(e.time) - secs(*t) <= FALLBACK_WINDOW_SECS
                    {
                        let g = fallback.entry((host.clone(), server)).or_default();
                        if g.times.is_empty() {
                            g.times.push(*t);
                            g.hosts.insert(host.clone());
                        }
                        g.add(e.time, failed_user, &host);
                    }
                } else if let Some((from, to, at)) = boots.get(&host).and_then(|b| b.upgrade) {
                    let (g, servers, ..) = blocked
                        .entry((host.clone(), at))
                        .or_insert_with(|| (Group::default(), BTreeSet::new(), from, to));
                    g.add(e.time, &user, &host);
                    servers.insert(server);
                }
            }
            Kind::SmbClient31001 => {
                let server = normalize_server(&text(e, "ServerName"));
                last_failed.insert((host.clone(), server), (e.time, text(e, "UserName")));
            }
            Kind::SmbClient31018 => {
                if uint(e, "RegValue") == Some(1) {
                    enabled
                        .entry(host.clone())
                        .or_default()
                        .add(e.time, "", &host);
                }
            }
            Kind::Security4657 => {
                if text(e, "ObjectValueName") == "AllowInsecureGuestAuth"
                    && text(e, "NewValue") == "1"
                {
                    let user = text(e, "SubjectUserName");
                    enabled
                        .entry(host.clone())
                        .or_default()
                        .add(e.time, &user, &host);
                }
            }
            Kind::Sysmon13 => {
                if text(e, "TargetObject").ends_with("\\AllowInsecureGuestAuth")
                    && text(e, "Details") == "DWORD (0x00000001)"
                {
                    enabled
                        .entry(host.clone())
                        .or_default()
                        .add(e.time, "", &host);
                }
            }
            Kind::PowerShell4104 => {
                let script = text(e, "ScriptBlockText").to_lowercase();
                if script.contains("-enableinsecureguestlogons")
                    && (script.contains("$true") || script.contains(" 1"))
                {
                    enabled
                        .entry(host.clone())
                        .or_default()
                        .add(e.time, "", &host);
                }
            }
            Kind::KernelGeneral12 => {
                let build = uint(e, "BuildVersion").and_then(|b| u32::try_from(b).ok());
                boots.entry(host.clone()).or_default().boot(build, e.time);
            }
            _ => {}
        }
    }

    for ((host, server), g) in &rejected {
        let why = format!(
            "{host} rejected {} insecure guest logon(s) to {server} (SMBClient 31017).",
            g.times.len()
        );
        out.push(g.finding(
            "client_rejected_guest",
            Some(host.clone()),
            Some(server.clone()),
            why,
        ));
    }
    for ((host, server), g) in &allowed {
        let why = format!(
            "{host} allowed {} insecure guest logon(s) to {server} (SMBClient 31022).",
            g.times.len()
        );
        out.push(g.finding(
            "client_allowed_guest",
            Some(host.clone()),
            Some(server.clone()),
            why,
        ));
    }
    for (host, g) in &enabled {
        let why = format!(
            "{host} has insecure guest logons enabled: {} event(s) among 31018, 4657/Sysmon 13 of AllowInsecureGuestAuth=1, and 4104 Set-SmbClientConfiguration -EnableInsecureGuestLogons $true.",
            g.times.len()
        );
        out.push(g.finding("insecure_guest_enabled", Some(host.clone()), None, why));
    }
    for ((host, server), g) in &fallback {
        let mut f = g.finding(
            "fallback_to_guest",
            Some(host.clone()),
            Some(server.clone()),
            String::new(),
        );
        f.count = g.times.len() as u64 - 1;
        f.why = format!(
            "{host} fell back to guest on {server} {} time(s): a failed credentialed logon (31001) followed within {FALLBACK_WINDOW_SECS} s by an allowed guest logon (31022).",
            f.count
        );
        out.push(f);
    }

    // Spoofed servers: first seen, then many guest clients within minutes.
    let mut spoofed = BTreeSet::new();
    for (server, seen) in &first_seen {
        let mut g = Group::default();
        for (s, host, user, t) in &allowed_events {
            if s == server && *t >= *seen && secs(*t) - secs(*seen) <= SPOOF_WINDOW_SECS {
                g.add(*t, user, host);
            }
        }
        if g.hosts.len() >= SPOOF_MIN_CLIENTS {
            let mut f = g.finding("spoofed_server", None, Some(server.clone()), String::new());
            f.hosts = g.hosts.iter().cloned().collect();
            f.why = format!(
                "{server} was never seen before {} and then took {} guest logon(s) from {} clients within {} minutes: a rogue or spoofed SMB server.",
                seen.to_rfc3339(),
                f.count,
                f.hosts.len(),
                SPOOF_WINDOW_SECS / 60
            );
            out.push(f);
            spoofed.insert(server.clone());
        }
    }
    for (server, g) in &by_server {
        if g.hosts.len() >= 2 && !spoofed.contains(server) {
            let mut f = g.finding(
                "guest_dependency",
                None,
                Some(server.clone()),
                String::new(),
            );
            f.hosts = g.hosts.iter().cloned().collect();
            f.why = format!(
                "{} client(s) tried guest logons to {server} ({} event(s) of 31017/31022): the server depends on guest access.",
                f.hosts.len(),
                f.count
            );
            out.push(f);
        }
    }
    for ((host, at), (g, servers, from, to)) in &blocked {
        let server = (servers.len() == 1).then(|| servers.iter().next().cloned());
        let mut f = g.finding(
            "guest_blocked_by_signing",
            Some(host.clone()),
            server.flatten(),
            String::new(),
        );
        f.upgrade = Some(Upgrade {
            from_build: *from,
            to_build: *to,
            at: at.to_rfc3339(),
        });
        f.why = format!(
            "{host} was upgraded from build {from} to {to} at {} (Kernel-General 12) and then rejected {} guest logon(s) before booting an older build: guest access broken by required signing.",
            at.to_rfc3339(),
            f.count
        );
        out.push(f);
    }

    server_side(&sorted, &mut out);
    out.sort();
    out
}

/// Guest sessions and denials on Windows servers.
fn server_side(sorted: &[(&Event, Kind)], out: &mut Vec<Finding>) {
    // Logon sessions of Guest (-501) or ANONYMOUS LOGON, by (server, logon id).
    let mut sessions: BTreeMap<(String, u64), (FileTime, String, String, bool)> = BTreeMap::new();
    let mut shared_session: BTreeSet<(String, u64)> = BTreeSet::new();
    let mut denied: BTreeMap<(String, String), Group> = BTreeMap::new();
    for &(e, k) in sorted {
        let host = host_of(e);
        match k {
            Kind::Security4624 if uint(e, "LogonType") == Some(3) => {
                let sid = match e.get("TargetUserSid") {
                    Some(Value::Sid(s)) => s.to_string(),
                    _ => String::new(),
                };
                let guest = sid.starts_with("S-1-5-21-") && sid.ends_with("-501");
                if guest || sid == "S-1-5-7" {
                    let id = uint(e, "TargetLogonId").unwrap_or(0);
                    sessions.insert(
                        (host, id),
                        (
                            e.time,
                            text(e, "IpAddress"),
                            text(e, "TargetUserName"),
                            guest,
                        ),
                    );
                }
            }
            Kind::Security5140 | Kind::Security5145 => {
                let share = text(e, "ShareName");
                if !share.to_uppercase().ends_with("\\IPC$") {
                    shared_session.insert((host, uint(e, "SubjectLogonId").unwrap_or(0)));
                }
            }
            Kind::SmbServer551 | Kind::SmbServer1007 | Kind::SmbServer1009 => {
                let ip = match e.get("ClientAddress") {
                    Some(Value::Binary(b)) => {
                        sockaddr_ip(b).map(|i| i.to_string()).unwrap_or_default()
                    }
                    _ => String::new(),
                };
                let user = text(e, "UserName");
                denied
                    .entry((host.clone(), ip))
                    .or_default()
                    .add(e.time, &user, &host);
            }
            Kind::Security4625 => {
                if text(e, "TargetUserName").eq_ignore_ascii_case("guest") {
                    let ip = text(e, "IpAddress");
                    denied
                        .entry((host.clone(), ip))
                        .or_default()
                        .add(e.time, "Guest", &host);
                }
            }
            _ => {}
        }
    }
    let mut groups: BTreeMap<(String, String, String), Group> = BTreeMap::new();
    for ((host, id), (t, ip, user, guest)) in &sessions {
        if *guest || shared_session.contains(&(host.clone(), *id)) {
            groups
                .entry((host.clone(), ip.clone(), user.clone()))
                .or_default()
                .add(*t, user, host);
        }
    }
    for ((host, ip, user), g) in &groups {
        let mut f = g.finding(
            "server_guest_session",
            Some(host.clone()),
            None,
            String::new(),
        );
        f.client = Some(ip.clone());
        f.user = Some(user.clone());
        f.why = format!(
            "{host} accepted {} network logon session(s) as {user} from {ip} (4624 logon type 3{}).",
            f.count,
            if user == "Guest" {
                ", 3023, 5140"
            } else {
                " with share access, 5140"
            }
        );
        out.push(f);
    }
    for ((host, ip), g) in &denied {
        let mut f = g.finding(
            "server_guest_denied",
            Some(host.clone()),
            None,
            String::new(),
        );
        f.client = Some(ip.clone());
        f.why = format!(
            "{host} denied {} guest or anonymous access attempt event(s) from {ip} (551, 1007, 1009, 4625 Guest).",
            f.count
        );
        out.push(f);
    }
}
