//! What happens in each scenario: the hosts, and the events that matter (the "signal"),
//! including each host's boot record. Noise is added around them when files are written.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::emit::{Emit, Logon, sids};
use super::fleet::{BUILD_23H2, BUILD_24H2, BUILD_WIN10, DOMAIN, Host, domain_sid, workstations};
use super::rng::Rng;
use crate::catalog::ntstatus;
use crate::writer::{Event, FileTime, Sid};

/// The scenario names, in the order `all` writes them.
pub const SCENARIOS: [&str; 7] = [
    "nas-guest-only",
    "admin-enables-guest",
    "fallback-to-guest",
    "spoofed-server",
    "windows-guest-server",
    "signing-breaks-guest",
    "clean-fleet",
];

/// The hosts and signal events of a scenario.
#[derive(Debug)]
pub struct Plan {
    /// Every host that writes logs.
    pub hosts: Vec<Host>,
    /// The events that matter, in no particular order.
    pub signal: Vec<Event>,
}

/// What a scenario builder works with.
pub struct Ctx<'a> {
    /// Event factory.
    pub emit: Emit<'a>,
    /// The scenario's random numbers.
    pub rng: Rng,
    /// Start, Unix seconds.
    pub start: i64,
    /// Days covered (at least 1).
    pub days: u32,
    /// Workstations in the fleet (at least 1).
    pub hosts: usize,
}

const TICKS_PER_SEC: u64 = 10_000_000;

impl Ctx<'_> {
    fn at(&self, secs: u64) -> FileTime {
        FileTime::from_unix_secs(self.start + i64::try_from(secs).unwrap_or(i64::MAX))
    }

    fn span_secs(&self) -> u64 {
        u64::from(self.days) * 86_400
    }

    /// A random time (with microseconds) during working hours of `day`.
    fn work_time(&mut self, day: u32) -> FileTime {
        let secs = u64::from(day.min(self.days - 1)) * 86_400 + self.rng.range(8 * 3600, 18 * 3600);
        self.jitter(self.at(secs))
    }

    /// `t` plus a random sub-second part, in whole microseconds.
    fn jitter(&mut self, t: FileTime) -> FileTime {
        FileTime(t.0 + self.rng.below(1_000_000) * 10)
    }

    fn plus_secs(t: FileTime, secs: u64) -> FileTime {
        FileTime(t.0 + secs * TICKS_PER_SEC)
    }

    /// A boot record for every host shortly after the start.
    fn boots(&mut self, hosts: &[Host], out: &mut Vec<Event>) {
        for h in hosts {
            let t = self.rng.range(60, 1800);
            let t = self.jitter(self.at(t));
            out.push(self.emit.os_boot(h, t, h.build));
        }
    }
}

/// Build the plan of scenario `name` (a name from [`SCENARIOS`]).
pub fn build(name: &str, ctx: &mut Ctx<'_>) -> Option<Plan> {
    Some(match name {
        "nas-guest-only" => nas_guest_only(ctx),
        "admin-enables-guest" => admin_enables_guest(ctx),
        "fallback-to-guest" => fallback_to_guest(ctx),
        "spoofed-server" => spoofed_server(ctx),
        "windows-guest-server" => super::server_plan::windows_guest_server(ctx),
        "signing-breaks-guest" => signing_breaks_guest(ctx),
        "clean-fleet" => clean_fleet(ctx),
        _ => return None,
    })
}

fn mixed_build(i: usize) -> u32 {
    match i % 4 {
        0 | 2 => BUILD_24H2,
        1 => BUILD_23H2,
        _ => BUILD_WIN10,
    }
}

/// A NAS that only offers guest access: 24H2 clients reject it (31017), older ones connect
/// silently; some older ones log 31018 because guest logons were enabled on them.
fn nas_guest_only(ctx: &mut Ctx<'_>) -> Plan {
    let hosts = workstations(ctx.hosts, mixed_build);
    let mut signal = Vec::new();
    ctx.boots(&hosts, &mut signal);
    for (i, h) in hosts.iter().enumerate() {
        if h.build >= BUILD_24H2 {
            for day in 0..ctx.days {
                for _ in 0..ctx.rng.range(1, 3) {
                    let t = ctx.work_time(day);
                    signal.push(ctx.emit.guest_rejected(h, t, "", "\\nas01"));
                }
            }
        } else if i % 4 == 3 {
            let t = ctx.jitter(ctx.at(1900 + i as u64));
            signal.push(ctx.emit.guest_config(h, t, 1));
        }
    }
    Plan { hosts, signal }
}

const LANMAN_PARAMS: &str =
    "\\REGISTRY\\MACHINE\\SYSTEM\\ControlSet001\\Services\\LanmanWorkstation\\Parameters";
const LANMAN_POLICY: &str =
    "\\REGISTRY\\MACHINE\\SOFTWARE\\Policies\\Microsoft\\Windows\\LanmanWorkstation";
const SYSMON_PARAMS: &str = "HKLM\\System\\CurrentControlSet\\Services\\LanmanWorkstation\\Parameters\\AllowInsecureGuestAuth";
const SYSMON_POLICY: &str =
    "HKLM\\SOFTWARE\\Policies\\Microsoft\\Windows\\LanmanWorkstation\\AllowInsecureGuestAuth";

/// An administrator enables insecure guest logons on a group of hosts (PowerShell, or group
/// policy on one of them); the group rejected the NAS before and is allowed after.
fn admin_enables_guest(ctx: &mut Ctx<'_>) -> Plan {
    let hosts = workstations(ctx.hosts, |_| BUILD_24H2);
    let mut signal = Vec::new();
    ctx.boots(&hosts, &mut signal);
    let group = hosts.len().div_ceil(2);
    let admin_sid = domain_sid(1013);
    let span = ctx.span_secs();
    let enable_at = span / 3;
    for (i, h) in hosts.iter().enumerate() {
        if i >= group {
            if i == group {
                let t = ctx.work_time(0);
                signal.push(ctx.emit.guest_rejected(h, t, "", "\\nas-legacy"));
            }
            continue;
        }
        // Before: rejected.
        for _ in 0..ctx.rng.range(1, 3) {
            let secs = ctx.rng.range(3600, enable_at - 600);
            let t = ctx.jitter(ctx.at(secs));
            signal.push(ctx.emit.guest_rejected(h, t, "", "\\nas-legacy"));
        }
        // The change.
        let t0 = ctx.jitter(ctx.at(enable_at + 180 * i as u64));
        let by_policy = group >= 2 && i == group - 1;
        if by_policy {
            let t1 = Ctx::plus_secs(t0, 1);
            let svchost = "C:\\Windows\\System32\\svchost.exe";
            signal.push(ctx.emit.registry_4657(
                h,
                t1,
                (&sids::system(), &format!("{}$", h.name), 0x3e7),
                LANMAN_POLICY,
                "AllowInsecureGuestAuth",
                0,
                1,
                (0x4d8, svchost),
            ));
            signal.push(ctx.emit.sysmon_13(
                h,
                t1,
                svchost,
                1240,
                SYSMON_POLICY,
                "DWORD (0x00000001)",
                "NT AUTHORITY\\SYSTEM",
            ));
        } else {
            let text = "Set-SmbClientConfiguration -EnableInsecureGuestLogons $true -Force";
            signal.push(
                ctx.emit
                    .script_block(h, t0, admin_sid, text, 0x51 + i as u64),
            );
            let t1 = Ctx::plus_secs(t0, 2);
            let ps = "C:\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe";
            signal.push(ctx.emit.registry_4657(
                h,
                t1,
                (&admin_sid, "itadmin", 0x8_1a2b),
                LANMAN_PARAMS,
                "AllowInsecureGuestAuth",
                0,
                1,
                (0x1a3c, ps),
            ));
            signal.push(ctx.emit.sysmon_13(
                h,
                t1,
                ps,
                6716,
                SYSMON_PARAMS,
                "DWORD (0x00000001)",
                "CORP\\itadmin",
            ));
        }
        let t2 = Ctx::plus_secs(t0, 6);
        signal.push(ctx.emit.guest_config(h, t2, 1));
        // After: allowed.
        for _ in 0..ctx.rng.range(2, 5) {
            let secs = ctx.rng.range(enable_at + 3600, span - 60);
            let t = ctx.jitter(ctx.at(secs));
            let user = if ctx.rng.chance(0.5) {
                String::new()
            } else {
                h.user.clone()
            };
            signal.push(ctx.emit.guest_allowed(h, t, &user, "\\nas-legacy"));
        }
    }
    Plan { hosts, signal }
}

/// A credentialed logon fails (31001) and the client falls back to guest (31022) seconds later.
fn fallback_to_guest(ctx: &mut Ctx<'_>) -> Plan {
    let hosts = workstations(ctx.hosts, |_| BUILD_24H2);
    let mut signal = Vec::new();
    ctx.boots(&hosts, &mut signal);
    for (i, h) in hosts.iter().enumerate() {
        let enabled = i % 2 == 0;
        if enabled {
            let t = ctx.jitter(ctx.at(1900 + i as u64));
            signal.push(ctx.emit.guest_config(h, t, 1));
        }
        let user = format!("{DOMAIN}\\{}", h.user);
        for _ in 0..ctx.rng.range(1, 3) {
            let day = ctx.rng.below(u64::from(ctx.days)) as u32;
            let t = ctx.work_time(day);
            let id = 0x2_0000 + ctx.rng.below(0xffff);
            signal.push(ctx.emit.auth_failed(
                h,
                t,
                &user,
                "\\fileshare-old",
                ntstatus::LOGON_FAILURE,
                id,
            ));
            let gap = ctx.rng.range(1, 8);
            let later = ctx.jitter(Ctx::plus_secs(t, gap));
            if enabled {
                signal.push(ctx.emit.guest_allowed(h, later, &h.user, "\\fileshare-old"));
            } else {
                signal.push(
                    ctx.emit
                        .guest_rejected(h, later, &h.user, "\\fileshare-old"),
                );
            }
        }
        if enabled && i % 4 == 0 {
            // A plain guest logon, without a failed credentialed logon before it.
            let t = ctx.work_time(ctx.days - 1);
            signal.push(ctx.emit.guest_allowed(h, t, "", "\\nas01"));
        }
    }
    Plan { hosts, signal }
}

/// A host never seen before takes guest logons from many clients within minutes.
fn spoofed_server(ctx: &mut Ctx<'_>) -> Plan {
    let hosts = workstations(ctx.hosts, |_| BUILD_24H2);
    let mut signal = Vec::new();
    ctx.boots(&hosts, &mut signal);
    // The NAS is known long before anyone logs on as guest: a reconnect in the night.
    let t = ctx.jitter(ctx.at(3600));
    let nas = IpAddr::V4(Ipv4Addr::new(10, 20, 0, 50));
    signal.push(ctx.emit.connectivity(
        crate::catalog::Kind::SmbClient30806,
        &hosts[0],
        t,
        "\\nas01",
        nas,
        0x77,
    ));
    for (i, h) in hosts.iter().enumerate() {
        let t = ctx.jitter(ctx.at(1900 + i as u64));
        signal.push(ctx.emit.guest_config(h, t, 1));
        // The legitimate guest NAS, used by each host once a day at its own time.
        for day in 0..ctx.days {
            let secs = u64::from(day) * 86_400 + 8 * 3600 + ctx.rng.below(10 * 3600);
            let t = ctx.jitter(ctx.at(secs));
            signal.push(ctx.emit.guest_allowed(h, t, "", "\\nas01"));
        }
    }
    let victims = (hosts.len() * 2 / 3).max(3).min(hosts.len());
    let attack = u64::from(ctx.days - 1) * 86_400 + 13 * 3600;
    for h in hosts.iter().take(victims) {
        for _ in 0..ctx.rng.range(1, 2) {
            let offset = ctx.rng.below(480);
            let t = ctx.jitter(ctx.at(attack + offset));
            signal.push(ctx.emit.guest_allowed(h, t, &h.user, "\\10.66.6.6"));
        }
    }
    Plan { hosts, signal }
}

/// Hosts that use a guest NAS are upgraded to 24H2 (signing required); guest logons to the NAS
/// are rejected from then on.
fn signing_breaks_guest(ctx: &mut Ctx<'_>) -> Plan {
    let mut hosts = workstations(ctx.hosts, |_| BUILD_23H2);
    let span = ctx.span_secs();
    let group = hosts.len().div_ceil(2);
    let upgrade_at = span * 2 / 5;
    for (i, h) in hosts.iter_mut().enumerate().take(group) {
        let t = FileTime::from_unix_secs(ctx.start + (upgrade_at + 420 * i as u64) as i64);
        h.upgrade = Some((t, BUILD_24H2));
    }
    let mut signal = Vec::new();
    ctx.boots(&hosts, &mut signal);
    for h in &hosts {
        let t = ctx.jitter(ctx.at(1900));
        signal.push(ctx.emit.guest_config(h, t, 1));
        if let Some((when, build)) = h.upgrade {
            signal.push(ctx.emit.os_boot(h, when, build));
            signal.push(ctx.emit.guest_config(h, Ctx::plus_secs(when, 30), 1));
            let from = (when.unix_micros() / 1_000_000 - ctx.start) as u64 + 600;
            for _ in 0..ctx.rng.range(2, 5) {
                let secs = ctx.rng.range(from, span - 60);
                let t = ctx.jitter(ctx.at(secs));
                signal.push(ctx.emit.guest_rejected(h, t, "", "\\nas-old"));
            }
        }
    }
    Plan { hosts, signal }
}

/// No guest activity at all.
fn clean_fleet(ctx: &mut Ctx<'_>) -> Plan {
    let hosts = workstations(ctx.hosts, mixed_build);
    let mut signal = Vec::new();
    ctx.boots(&hosts, &mut signal);
    Plan { hosts, signal }
}

/// Helpers the server scenario shares.
pub(crate) mod shared {
    pub use super::{Ctx, Plan};
}

/// A client of the file servers: a fleet workstation or another device.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Client {
    pub ip: IpAddr,
    pub name: &'static str,
}

/// The non-Windows devices on the network.
pub(crate) fn devices() -> Vec<Client> {
    vec![
        Client {
            ip: IpAddr::V4(Ipv4Addr::new(10, 30, 0, 11)),
            name: "SCANNER-2F",
        },
        Client {
            ip: IpAddr::V4(Ipv4Addr::new(10, 30, 0, 12)),
            name: "-",
        },
        Client {
            ip: IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 30, 0, 0, 0, 0x13)),
            name: "-",
        },
    ]
}

/// The logon of a guest account on `server`.
pub(crate) fn guest_sid(server_rid_base: u32) -> Sid {
    Sid::new(5, &[21, 1_004_336_348, 1_177_238_915, server_rid_base, 501])
}

/// A workstation's network logon description.
pub(crate) fn network_logon<'a>(
    sid: Sid,
    user: &'a str,
    domain: &'a str,
    logon_id: u64,
    ws: &'a str,
    ip: &'a str,
) -> Logon<'a> {
    Logon {
        sid,
        user,
        domain,
        logon_id,
        logon_type: 3,
        workstation: ws,
        ip,
        port: "0",
    }
}
