//! Background events: the logons, service changes, benign SMB hiccups, scripts and registry
//! writes that make up almost all of a real log. None of them is a guest-logon finding.

use std::net::{IpAddr, Ipv4Addr};

use super::emit::{Emit, Logon, sids};
use super::fleet::{DOMAIN, Host, domain_sid};
use super::rng::Rng;
use crate::catalog::{Kind, channel, ntstatus};
use crate::writer::{Event, FileTime, Sid};

/// Servers that benign SMB traffic goes to (never used by the guest scenarios).
pub const BENIGN_SERVERS: [&str; 4] = ["\\fs-main", "\\dc01", "\\print01", "\\sccm01"];

/// The channels a host's noise goes to, with relative weights.
pub fn channel_weights(host: &Host) -> &'static [(&'static str, u64)] {
    if host.server {
        &[
            (channel::SECURITY, 80),
            (channel::SYSTEM, 15),
            (channel::SMB_SERVER_SECURITY, 5),
        ]
    } else {
        &[
            (channel::SECURITY, 70),
            (channel::SYSTEM, 14),
            (channel::SMB_CLIENT_CONNECTIVITY, 4),
            (channel::SMB_CLIENT_SECURITY, 2),
            (channel::POWERSHELL, 5),
            (channel::SYSMON, 5),
        ]
    }
}

const SERVICES: [&str; 8] = [
    "Windows Update",
    "Background Intelligent Transfer Service",
    "WinHTTP Web Proxy Auto-Discovery Service",
    "Microsoft Defender Antivirus Network Inspection Service",
    "Windows Modules Installer",
    "Delivery Optimization",
    "Microsoft Store Install Service",
    "Software Protection",
];
const SCRIPTS: [&str; 6] = [
    "Get-Process | Sort-Object CPU -Descending | Select-Object -First 10",
    "Get-SmbConnection | Format-Table ServerName, ShareName, Dialect",
    "Import-Module Microsoft.PowerShell.Management",
    "Test-NetConnection -ComputerName fs-main -Port 445",
    "Get-ChildItem -Path $env:TEMP -Recurse | Remove-Item -Force -ErrorAction SilentlyContinue",
    "$PSVersionTable.PSVersion",
];
const REG_TARGETS: [(&str, &str, &str); 4] = [
    (
        "C:\\Program Files\\Windows Defender\\MsMpEng.exe",
        "HKLM\\SOFTWARE\\Microsoft\\Windows Defender\\Signature Updates\\SignaturesLastUpdated",
        "Binary Data",
    ),
    (
        "C:\\Windows\\system32\\svchost.exe",
        "HKLM\\System\\CurrentControlSet\\Services\\W32Time\\Config\\LastKnownGoodTime",
        "QWORD (0x01dc8a2f-0x4e5b1c00)",
    ),
    (
        "C:\\Windows\\Explorer.EXE",
        "HKU\\S-1-5-21-3623811015-3361044348-30300820-1101\\Software\\Microsoft\\Windows\\CurrentVersion\\Explorer\\RecentDocs\\MRUListEx",
        "Binary Data",
    ),
    (
        "C:\\Program Files (x86)\\Microsoft\\EdgeUpdate\\MicrosoftEdgeUpdate.exe",
        "HKLM\\SOFTWARE\\WOW6432Node\\Microsoft\\EdgeUpdate\\LastChecked",
        "DWORD (0x65f1a2b3)",
    ),
];

/// A stream of `count` noise events for one host and channel, evenly spread over
/// `[start, start + span)` with jitter, in time order.
pub struct NoiseStream<'a> {
    emit: Emit<'a>,
    host: &'a Host,
    channel: &'static str,
    rng: Rng,
    start: u64,
    span: u64,
    count: u64,
    next: u64,
    fleet_size: u32,
}

impl<'a> NoiseStream<'a> {
    /// `start` and `span` are FILETIME ticks.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        emit: Emit<'a>,
        host: &'a Host,
        channel: &'static str,
        rng: Rng,
        start: FileTime,
        span: u64,
        count: u64,
        fleet_size: usize,
    ) -> Self {
        NoiseStream {
            emit,
            host,
            channel,
            rng,
            start: start.0,
            span,
            count,
            next: 0,
            fleet_size: fleet_size.max(1) as u32,
        }
    }

    fn time(&mut self) -> FileTime {
        let i = u128::from(self.next);
        let n = u128::from(self.count);
        let slot = u128::from(self.span) / n.max(1);
        let base = u128::from(self.span) * i / n.max(1);
        let jitter = u128::from(self.rng.below(u64::try_from(slot).unwrap_or(u64::MAX)));
        // Whole microseconds, like the rest of the generated times.
        let ticks = (base + jitter) / 10 * 10;
        FileTime(self.start + u64::try_from(ticks).unwrap_or(0))
    }

    fn other_user(&mut self) -> (String, Sid, Ipv4Addr) {
        let n = self.rng.range(1, u64::from(self.fleet_size) + 20) as u32;
        (
            format!("user{n:02}"),
            domain_sid(1100 + n),
            Ipv4Addr::new(10, 10, (n / 200) as u8, (n % 200 + 20) as u8),
        )
    }

    fn security(&mut self, t: FileTime) -> Event {
        let e = self.emit;
        let h = self.host;
        let logon_id = 0x1_0000 + self.rng.below(0xff_ffff);
        let r = self.rng.below(100);
        let (user, sid, ip) = self.other_user();
        let ip_text = ip.to_string();
        let ws = format!("WKS-{}", &user[4..]);
        match r {
            0..30 => e.logon(
                h,
                t,
                &Logon {
                    sid,
                    user: &user,
                    domain: DOMAIN,
                    logon_id,
                    logon_type: 3,
                    workstation: &ws,
                    ip: &ip_text,
                    port: "0",
                },
            ),
            30..35 => {
                let (u, s) = (h.user.as_str(), h.user_sid);
                e.logon(
                    h,
                    t,
                    &Logon {
                        sid: s,
                        user: u,
                        domain: DOMAIN,
                        logon_id,
                        logon_type: 2,
                        workstation: &h.name,
                        ip: "127.0.0.1",
                        port: "0",
                    },
                )
            }
            35..50 => e.logon(
                h,
                t,
                &Logon {
                    sid: sids::system(),
                    user: "SYSTEM",
                    domain: "NT AUTHORITY",
                    logon_id: 0x3e7,
                    logon_type: 5,
                    workstation: "-",
                    ip: "-",
                    port: "-",
                },
            ),
            50..72 => e.logoff(h, t, sid, &user, DOMAIN, logon_id, 3),
            72..82 => e.special_logon(h, t, sids::system(), "SYSTEM", 0x3e7),
            82..88 => e.credential_validation(h, t, &user, &ws, ntstatus::SUCCESS),
            88..90 => e.logon_failed(
                h,
                t,
                &user,
                DOMAIN,
                ntstatus::LOGON_FAILURE,
                ntstatus::WRONG_PASSWORD,
                &ip_text,
                &ws,
            ),
            90..96 => {
                let share = *self
                    .rng
                    .pick(&["\\\\*\\SYSVOL", "\\\\*\\NETLOGON", "\\\\*\\IPC$"])
                    .unwrap_or(&"\\\\*\\IPC$");
                e.share_access(
                    h,
                    t,
                    (&sid, &user, DOMAIN, logon_id),
                    &ip_text,
                    share,
                    "",
                    None,
                )
            }
            _ => e.share_access(
                h,
                t,
                (&sid, &user, DOMAIN, logon_id),
                &ip_text,
                "\\\\*\\SYSVOL",
                "C:\\Windows\\SYSVOL\\sysvol",
                Some("corp.example.net\\Policies\\gpt.ini"),
            ),
        }
    }

    fn event(&mut self, t: FileTime) -> Event {
        let e = self.emit;
        let h = self.host;
        match self.channel {
            channel::SECURITY => self.security(t),
            channel::SYSTEM => {
                let service = *self.rng.pick(&SERVICES).unwrap_or(&SERVICES[0]);
                let state = if self.rng.chance(0.5) {
                    "running"
                } else {
                    "stopped"
                };
                e.service_state(h, t, service, state)
            }
            channel::SMB_CLIENT_CONNECTIVITY => {
                let i = self.rng.below(BENIGN_SERVERS.len() as u64) as usize;
                let ip = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 10 + i as u8));
                let kind = *self
                    .rng
                    .pick(&[
                        Kind::SmbClient30803,
                        Kind::SmbClient30804,
                        Kind::SmbClient30805,
                        Kind::SmbClient30806,
                    ])
                    .unwrap_or(&Kind::SmbClient30804);
                let session = 0x1000_0000_0000 + self.rng.below(1 << 32);
                e.connectivity(kind, h, t, BENIGN_SERVERS[i], ip, session)
            }
            channel::SMB_CLIENT_SECURITY => {
                if self.rng.chance(0.7) {
                    let share = *self
                        .rng
                        .pick(&[
                            "\\fs-main\\finance$",
                            "\\fs-main\\hr$",
                            "\\sccm01\\SMS_SITE",
                            "\\print01\\print$",
                        ])
                        .unwrap_or(&"\\fs-main\\hr$");
                    let status = if self.rng.chance(0.8) {
                        ntstatus::ACCESS_DENIED
                    } else {
                        ntstatus::BAD_NETWORK_NAME
                    };
                    e.share_failed(h, t, share, status)
                } else {
                    let user = format!("{DOMAIN}\\{}", h.user);
                    e.auth_failed(
                        h,
                        t,
                        &user,
                        "\\fs-main",
                        ntstatus::WRONG_PASSWORD,
                        0x1_0000 + self.rng.below(0xffff),
                    )
                }
            }
            channel::POWERSHELL => {
                let text = *self.rng.pick(&SCRIPTS).unwrap_or(&SCRIPTS[0]);
                e.script_block(h, t, h.user_sid, text, self.rng.next_u64() >> 16)
            }
            channel::SYSMON => {
                let (image, target, details) =
                    *self.rng.pick(&REG_TARGETS).unwrap_or(&REG_TARGETS[0]);
                e.sysmon_13(
                    h,
                    t,
                    image,
                    1000 + self.rng.below(9000) as u32,
                    target,
                    details,
                    "NT AUTHORITY\\SYSTEM",
                )
            }
            _ => {
                // SMBServer/Security on a file server: a domain user denied by a share ACL.
                let (user, _, ip) = self.other_user();
                e.share_denied(
                    h,
                    t,
                    IpAddr::V4(ip),
                    &user,
                    "Finance",
                    "C:\\Shares\\Finance",
                    0x4000_0000_0000 + self.rng.below(1 << 24),
                )
            }
        }
    }
}

impl Iterator for NoiseStream<'_> {
    type Item = Event;

    fn next(&mut self) -> Option<Event> {
        if self.next >= self.count {
            return None;
        }
        let t = self.time();
        let e = self.event(t);
        self.next += 1;
        Some(e)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.count - self.next).unwrap_or(usize::MAX);
        (left, Some(left))
    }
}
