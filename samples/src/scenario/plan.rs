//! What happens in each scenario: the hosts, and the events that matter (the "signal"),
//! including each host's boot record. Noise is added around them when files are written.

use std::net::{IpAddr, Ipv4Addr};

use super::emit::{Emit, sids};
use super::fleet::{BUILD_23H2, BUILD_24H2, BUILD_WIN10, DOMAIN, Host, domain_sid, workstations};
use super::rng::Rng;
use crate::catalog::ntstatus;
use crate::writer::{Event, FileTime};

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
    pub(crate) fn at(&self, secs: u64) -> FileTime {
        FileTime::from_unix_secs(self.start + i64::try_from(secs).unwrap_or(i64::MAX))
    }

    pub(crate) fn span_secs(&self) -> u64 {
        u64::from(self.days) * 86_400
    }

    /// A random time (with microseconds) during working hours of `day`.
    pub(crate) fn work_time(&mut self, day: u32) -> FileTime {
        let secs = u64::from(day.min(self.days - 1)) * 86_400 + self.rng.range(8 * 3600, 18 * 3600);
        self.jitter(self.at(secs))
    }

    /// `t` plus a random sub-second part, in whole microseconds.
    pub(crate) fn jitter(&mut self, t: FileTime) -> FileTime {
        FileTime(t.0 + self.rng.below(1_000_000) * 10)
    }

    pub(crate) fn plus_secs(t: FileTime, secs: u64) -> FileTime {
        FileTime(t.0 + secs * TICKS_PER_SEC)
    }

    /// A boot record for every host shortly after the start.
    pub(crate) fn boots(&mut self, hosts: &[Host], out: &mut Vec<Event>) {
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

/// One boot of a host in the signing scenario: seconds from the start, the build it runs from
/// then on, and whether the guest policy is in force (31018 logged at that boot).
#[derive(Clone, Copy)]
struct Stanza {
    at: u64,
    build: u32,
    policy: bool,
}

/// Hosts that use a guest NAS (guest logons enabled, 31018 at boot) are upgraded to 24H2, where
/// signing is required: guest logons to the NAS are rejected (31017) from then on. Some of them
/// roll back to 23H2, on an image without the guest policy (so they reject guest logons there
/// too, which is not signing breakage), and are upgraded again. One of the other hosts starts on
/// 24H2 (rejecting from the start: no upgrade seen), rolls back and is upgraded again. Which
/// hosts do so depends on the seed.
fn signing_breaks_guest(ctx: &mut Ctx<'_>) -> Plan {
    let mut hosts = workstations(ctx.hosts, |_| BUILD_23H2);
    let span = ctx.span_secs();
    let group = hosts.len().div_ceil(2);
    // At least one upgraded host rolls back when two or more are upgraded.
    let sure_rollback = ctx.rng.below(group as u64) as usize;
    let starts_new =
        (hosts.len() > group).then(|| group + ctx.rng.below((hosts.len() - group) as u64) as usize);
    let old = Stanza {
        at: 0,
        build: BUILD_23H2,
        policy: true,
    };
    let mut lives: Vec<Vec<Stanza>> = Vec::with_capacity(hosts.len());
    for i in 0..hosts.len() {
        // One host's boots are 7 minutes after the previous host's (wrapping after 16 hosts).
        let offset = 420 * (i as u64 % 16);
        let boot = |fifths: u64, build: u32, policy: bool| Stanza {
            at: span * fifths / 5 + offset,
            build,
            policy,
        };
        let again = [boot(3, BUILD_23H2, false), boot(4, BUILD_24H2, true)];
        lives.push(if i < group {
            let mut life = vec![old, boot(2, BUILD_24H2, true)];
            if group >= 2 && (i == sure_rollback || ctx.rng.chance(0.34)) {
                life.extend(again);
            }
            life
        } else if Some(i) == starts_new {
            let policy = Stanza {
                policy: true,
                ..again[0]
            };
            let first = Stanza {
                build: BUILD_24H2,
                ..old
            };
            vec![first, policy, again[1]]
        } else {
            vec![old]
        });
    }
    for (h, life) in hosts.iter_mut().zip(&lives) {
        h.build = life[0].build;
        h.reboots = life[1..].iter().map(|s| (ctx.at(s.at), s.build)).collect();
    }
    let mut signal = Vec::new();
    ctx.boots(&hosts, &mut signal);
    for (h, life) in hosts.iter().zip(&lives) {
        for (k, s) in life.iter().enumerate() {
            let when = ctx.at(s.at);
            if k > 0 {
                signal.push(ctx.emit.os_boot(h, when, s.build));
            }
            if s.policy {
                let t = if k == 0 {
                    ctx.jitter(ctx.at(1900))
                } else {
                    Ctx::plus_secs(when, 30)
                };
                signal.push(ctx.emit.guest_config(h, t, 1));
            }
            // Signing blocks guest on 24H2 whatever the policy; without the policy every build
            // rejects guest logons.
            if s.build >= BUILD_24H2 || !s.policy {
                let from = s.at.max(3000) + 600;
                let until = life.get(k + 1).map_or(span, |n| n.at) - 60;
                let (lo, hi) = if s.build >= BUILD_24H2 {
                    (2, 5)
                } else {
                    (1, 3)
                };
                for _ in 0..ctx.rng.range(lo, hi) {
                    let secs = ctx.rng.range(from, until);
                    let t = ctx.jitter(ctx.at(secs));
                    signal.push(ctx.emit.guest_rejected(h, t, "", "\\nas-old"));
                }
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
