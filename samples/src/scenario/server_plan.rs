//! The Windows file server scenario: one server with guest access enabled (3023, Guest and
//! ANONYMOUS LOGON network logons, share access in those sessions) and one where guest is
//! disabled (551, 1007, 1009, 4625), next to benign server-side audit events.

use std::net::{IpAddr, Ipv4Addr};

use super::emit::sids;
use super::fleet::{BUILD_23H2, BUILD_WIN10, Host, workstations};
use super::plan::shared::{Ctx, Plan};
use super::plan::{Client, devices, guest_sid, network_logon};
use crate::catalog::ntstatus;
use crate::writer::FileTime;

const FS01_RID_BASE: u32 = 2_811_045_217;

fn plus_secs(t: FileTime, secs: u64) -> FileTime {
    FileTime(t.0 + secs * 10_000_000)
}

pub(crate) fn windows_guest_server(ctx: &mut Ctx<'_>) -> Plan {
    let fleet = workstations(
        ctx.hosts,
        |i| if i % 2 == 0 { BUILD_23H2 } else { BUILD_WIN10 },
    );
    let fs01 = Host::file_server("FS01", Ipv4Addr::new(10, 0, 1, 21));
    let fs02 = Host::file_server("FS02", Ipv4Addr::new(10, 0, 1, 22));
    let mut signal = Vec::new();
    let mut hosts = fleet.clone();
    hosts.push(fs01.clone());
    hosts.push(fs02.clone());
    ctx_boots(ctx, &hosts, &mut signal);

    let devs = devices();
    let ws_names: Vec<&'static str> = vec!["WKS-001", "WKS-002", "WKS-003"];
    let mut clients: Vec<Client> = fleet
        .iter()
        .take(3)
        .zip(ws_names)
        .map(|(h, name)| Client {
            ip: IpAddr::V4(h.ip),
            name,
        })
        .collect();
    clients.push(devs[0]);
    clients.push(devs[2]);

    let guest = guest_sid(FS01_RID_BASE);
    let mut logon_id = 0x7_1000u64;
    let mut session = 0x4400_0000_0001u64;
    for c in &clients {
        for _ in 0..ctx.rng.range(1, 3) {
            let day = ctx.rng.below(u64::from(ctx.days)) as u32;
            let t = work_time(ctx, day);
            let ip = c.ip.to_string();
            logon_id += 0x1d;
            session += 0x40;
            signal.push(ctx.emit.credential_validation(
                &fs01,
                t,
                "Guest",
                c.name,
                ntstatus::SUCCESS,
            ));
            signal.push(ctx.emit.logon(
                &fs01,
                t,
                &network_logon(guest, "Guest", "FS01", logon_id, c.name, &ip),
            ));
            signal.push(ctx.emit.guest_session(
                &fs01,
                plus_secs(t, 1),
                c.ip,
                "FS01\\Guest",
                session,
            ));
            let subject = (&guest, "Guest", "FS01", logon_id);
            signal.push(ctx.emit.share_access(
                &fs01,
                plus_secs(t, 1),
                subject,
                &ip,
                "\\\\*\\Public",
                "C:\\Shares\\Public",
                None,
            ));
            if ctx.rng.chance(0.5) {
                signal.push(ctx.emit.share_access(
                    &fs01,
                    plus_secs(t, 2),
                    subject,
                    &ip,
                    "\\\\*\\Public",
                    "C:\\Shares\\Public",
                    Some("Handbook\\guest-wifi.pdf"),
                ));
            }
            let end = plus_secs(t, ctx.rng.range(60, 1800));
            signal.push(
                ctx.emit
                    .logoff(&fs01, end, guest, "Guest", "FS01", logon_id, 3),
            );
        }
    }

    // A scanner that drops files anonymously into a share.
    let scanner = devs[1];
    let anon = sids::anonymous();
    for day in 0..ctx.days {
        let t = work_time(ctx, day);
        let ip = scanner.ip.to_string();
        logon_id += 0x1d;
        signal.push(ctx.emit.logon(
            &fs01,
            t,
            &network_logon(
                anon,
                "ANONYMOUS LOGON",
                "NT AUTHORITY",
                logon_id,
                scanner.name,
                &ip,
            ),
        ));
        let subject = (&anon, "ANONYMOUS LOGON", "NT AUTHORITY", logon_id);
        signal.push(ctx.emit.share_access(
            &fs01,
            plus_secs(t, 1),
            subject,
            &ip,
            "\\\\*\\Scans",
            "D:\\Scans",
            None,
        ));
        signal.push(ctx.emit.logoff(
            &fs01,
            plus_secs(t, 40),
            anon,
            "ANONYMOUS LOGON",
            "NT AUTHORITY",
            logon_id,
            3,
        ));
    }
    // A null session that only touches IPC$ (common and benign: not a finding).
    if let Some(h) = fleet.first() {
        let t = work_time(ctx, 0);
        let ip = h.ip.to_string();
        logon_id += 0x1d;
        signal.push(ctx.emit.logon(
            &fs01,
            t,
            &network_logon(
                anon,
                "ANONYMOUS LOGON",
                "NT AUTHORITY",
                logon_id,
                "WKS-001",
                &ip,
            ),
        ));
        let subject = (&anon, "ANONYMOUS LOGON", "NT AUTHORITY", logon_id);
        signal.push(ctx.emit.share_access(
            &fs01,
            plus_secs(t, 1),
            subject,
            &ip,
            "\\\\*\\IPC$",
            "",
            None,
        ));
    }
    // Benign server audit events: SMB1 from the scanner, a client without signing.
    let t = work_time(ctx, 0);
    signal.push(ctx.emit.smb1_access(&fs01, t, devs[0].ip));
    let t = work_time(ctx, 0);
    signal.push(ctx.emit.client_no_signing(
        &fs01,
        t,
        devs[2].ip,
        "CORP\\svc-scan",
        0x4400_0000_0999,
    ));

    // FS02: guest disabled. Guest attempts fail (551 + 4625), anonymous ones are denied.
    let mut denied: Vec<Client> = vec![devs[0]];
    if let Some(h) = fleet.get(1) {
        denied.push(Client {
            ip: IpAddr::V4(h.ip),
            name: "WKS-002",
        });
    }
    for c in &denied {
        for _ in 0..ctx.rng.range(1, 2) {
            let day = ctx.rng.below(u64::from(ctx.days)) as u32;
            let t = work_time(ctx, day);
            session += 0x40;
            let ip = c.ip.to_string();
            signal.push(ctx.emit.logon_failed(
                &fs02,
                t,
                "Guest",
                "FS02",
                ntstatus::ACCOUNT_RESTRICTION,
                ntstatus::ACCOUNT_DISABLED,
                &ip,
                c.name,
            ));
            signal.push(ctx.emit.session_auth_failure(
                &fs02,
                t,
                c.ip,
                "Guest",
                ntstatus::ACCOUNT_DISABLED,
                session,
            ));
        }
    }
    let t = work_time(ctx, ctx.days - 1);
    session += 0x40;
    signal.push(
        ctx.emit
            .session_anonymous_denied(&fs02, t, scanner.ip, session),
    );
    signal.push(ctx.emit.share_anonymous_denied(
        &fs02,
        plus_secs(t, 1),
        scanner.ip,
        "Scans",
        "D:\\Scans",
    ));
    Plan { hosts, signal }
}

fn work_time(ctx: &mut Ctx<'_>, day: u32) -> FileTime {
    let secs = u64::from(day.min(ctx.days - 1)) * 86_400 + ctx.rng.range(8 * 3600, 18 * 3600);
    let t = FileTime::from_unix_secs(ctx.start + secs as i64);
    FileTime(t.0 + ctx.rng.below(1_000_000) * 10)
}

fn ctx_boots(ctx: &mut Ctx<'_>, hosts: &[Host], out: &mut Vec<crate::writer::Event>) {
    for h in hosts {
        let secs = ctx.rng.range(60, 1800);
        let t = FileTime::from_unix_secs(ctx.start + secs as i64);
        out.push(
            ctx.emit
                .os_boot(h, FileTime(t.0 + ctx.rng.below(1_000_000) * 10), h.build),
        );
    }
}
