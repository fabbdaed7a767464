//! The Windows file server scenario: servers with guest access enabled (3023, Guest and
//! ANONYMOUS LOGON network logons, share access in those sessions) and servers where guest is
//! disabled (551, 1007, 1009, 4625), next to benign server-side audit events.
//!
//! The seed chooses the shape: how many servers of each kind (named `FS01`, `FS02`, ... in a
//! seeded order), the name of each open server's guest account (renamed or localized; its SID
//! still ends in -501), which workstations and devices use which server, and the scanner (which
//! device, which server and share, anonymous or as guest).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::emit::{Logon, sids};
use super::fleet::{BUILD_23H2, BUILD_WIN10, Host, workstations};
use super::plan::{Ctx, Plan};
use crate::catalog::ntstatus;
use crate::writer::{Event, FileTime, Sid};

/// Names a guest account goes by: Windows' own, localized ones, and a renamed one.
const GUEST_NAMES: [&str; 5] = ["Guest", "Gast", "Invité", "Invitado", "visitor"];
/// Shares a scanner drops its files into: (share, local path).
const SCAN_SHARES: [(&str, &str); 3] = [
    ("Scans", "D:\\Scans"),
    ("ScanDrop", "E:\\ScanDrop"),
    ("Public", "C:\\Shares\\Public"),
];

/// A client of the file servers: a fleet workstation or another device.
#[derive(Debug, Clone)]
struct Client {
    ip: IpAddr,
    /// The workstation name it sends (`-` for devices that send none).
    name: String,
}

/// The non-Windows devices on the network.
fn devices() -> Vec<Client> {
    let device = |ip: IpAddr, name: &str| Client {
        ip,
        name: name.to_string(),
    };
    vec![
        device(IpAddr::V4(Ipv4Addr::new(10, 30, 0, 11)), "SCANNER-2F"),
        device(IpAddr::V4(Ipv4Addr::new(10, 30, 0, 12)), "-"),
        device(
            IpAddr::V6(Ipv6Addr::new(0xfd00, 0, 0, 30, 0, 0, 0, 0x13)),
            "-",
        ),
    ]
}

/// A server with guest access enabled, and its guest account.
struct OpenServer {
    host: Host,
    guest: Sid,
    account: &'static str,
}

/// The subject of a logon session on a server: SID, account, domain.
type Account<'a> = (Sid, &'a str, &'a str);

/// Logon ids and SMB session ids, unique across the scenario.
struct Ids {
    logon: u64,
    session: u64,
}

impl Ids {
    fn next(&mut self) -> (u64, u64) {
        self.logon += 0x1d;
        self.session += 0x40;
        (self.logon, self.session)
    }
}

fn plus_secs(t: FileTime, secs: u64) -> FileTime {
    Ctx::plus_secs(t, secs)
}

fn network_logon<'a>(who: &Account<'a>, logon_id: u64, c: &'a Client, ip: &'a str) -> Logon<'a> {
    Logon {
        sid: who.0,
        user: who.1,
        domain: who.2,
        logon_id,
        logon_type: 3,
        workstation: &c.name,
        ip,
        port: "0",
    }
}

/// One to `most` of `items`, distinct, chosen by the seed.
fn some_of<T: Clone>(ctx: &mut Ctx<'_>, items: &[T], most: usize) -> Vec<T> {
    let k = ctx.rng.range(1, most.max(1) as u64) as usize;
    ctx.rng
        .sample(items.len(), k)
        .into_iter()
        .map(|i| items[i].clone())
        .collect()
}

pub(crate) fn windows_guest_server(ctx: &mut Ctx<'_>) -> Plan {
    let fleet = workstations(
        ctx.hosts,
        |i| if i % 2 == 0 { BUILD_23H2 } else { BUILD_WIN10 },
    );
    let open_count = ctx.rng.range(1, 2) as usize;
    let closed_count = ctx.rng.range(1, 2) as usize;
    let servers: Vec<Host> = (0..open_count + closed_count)
        .map(|k| {
            Host::file_server(
                &format!("FS{:02}", k + 1),
                Ipv4Addr::new(10, 0, 1, 21 + k as u8),
            )
        })
        .collect();
    let order = ctx.rng.sample(servers.len(), servers.len());
    let open: Vec<OpenServer> = order[..open_count]
        .iter()
        .map(|&k| {
            let machine = ctx.rng.range(1_000_000_000, 4_000_000_000) as u32;
            let account = GUEST_NAMES[ctx.rng.below(GUEST_NAMES.len() as u64) as usize];
            OpenServer {
                host: servers[k].clone(),
                guest: Sid::new(5, &[21, 1_004_336_348, 1_177_238_915, machine, 501]),
                account,
            }
        })
        .collect();
    let closed: Vec<Host> = order[open_count..]
        .iter()
        .map(|&k| servers[k].clone())
        .collect();
    let mut hosts = fleet.clone();
    hosts.extend(servers);
    let mut signal = Vec::new();
    ctx.boots(&hosts, &mut signal);

    let devs = devices();
    let mut pool: Vec<Client> = fleet
        .iter()
        .map(|h| Client {
            ip: IpAddr::V4(h.ip),
            name: h.name.clone(),
        })
        .collect();
    pool.extend(devs.iter().cloned());
    let mut ids = Ids {
        logon: 0x7_1000,
        session: 0x4400_0000_0001,
    };

    for srv in &open {
        let who = (srv.guest, srv.account, srv.host.name.as_str());
        for c in some_of(ctx, &pool, 3) {
            for _ in 0..ctx.rng.range(1, 3) {
                let day = ctx.rng.below(u64::from(ctx.days)) as u32;
                let t = ctx.work_time(day);
                guest_visit(ctx, &srv.host, &who, &c, t, &mut ids, &mut signal);
            }
        }
    }

    // A scanner that drops files into a share, anonymously or as the server's guest.
    let scanner = devs[ctx.rng.below(devs.len() as u64) as usize].clone();
    let target = &open[ctx.rng.below(open.len() as u64) as usize];
    let (share, local) = SCAN_SHARES[ctx.rng.below(SCAN_SHARES.len() as u64) as usize];
    let anon = sids::anonymous();
    let scanner_account = if ctx.rng.chance(0.3) {
        (target.guest, target.account, target.host.name.as_str())
    } else {
        (anon, "ANONYMOUS LOGON", "NT AUTHORITY")
    };
    for day in 0..ctx.days {
        let t = ctx.work_time(day);
        let (logon_id, session) = ids.next();
        let ip = scanner.ip.to_string();
        let srv = &target.host;
        signal.push(ctx.emit.logon(
            srv,
            t,
            &network_logon(&scanner_account, logon_id, &scanner, &ip),
        ));
        if scanner_account.0 != anon {
            let user = format!("{}\\{}", srv.name, target.account);
            signal.push(ctx.emit.guest_session(srv, t, scanner.ip, &user, session));
        }
        let (sid, user, domain) = scanner_account;
        signal.push(ctx.emit.share_access(
            srv,
            plus_secs(t, 1),
            (&sid, user, domain, logon_id),
            &ip,
            &format!("\\\\*\\{share}"),
            local,
            None,
        ));
        signal.push(
            ctx.emit
                .logoff(srv, plus_secs(t, 40), sid, user, domain, logon_id, 3),
        );
    }

    // A null session that only touches IPC$ (common and benign: not a finding).
    let null_client = pool[ctx.rng.below(fleet.len().max(1) as u64) as usize].clone();
    let srv = &open[ctx.rng.below(open.len() as u64) as usize].host;
    let t = ctx.work_time(0);
    let (logon_id, _) = ids.next();
    let ip = null_client.ip.to_string();
    let who = (anon, "ANONYMOUS LOGON", "NT AUTHORITY");
    signal.push(
        ctx.emit
            .logon(srv, t, &network_logon(&who, logon_id, &null_client, &ip)),
    );
    signal.push(ctx.emit.share_access(
        srv,
        plus_secs(t, 1),
        (&anon, who.1, who.2, logon_id),
        &ip,
        "\\\\*\\IPC$",
        "",
        None,
    ));

    // Benign server audit events: SMB1 from a device, a client without signing.
    let t = ctx.work_time(0);
    let dev = devs[ctx.rng.below(devs.len() as u64) as usize].ip;
    signal.push(ctx.emit.smb1_access(srv, t, dev));
    let t = ctx.work_time(0);
    let dev = devs[ctx.rng.below(devs.len() as u64) as usize].ip;
    signal.push(
        ctx.emit
            .client_no_signing(srv, t, dev, "CORP\\svc-scan", 0x4400_0000_0999),
    );

    // Guest disabled: guest attempts fail (551 + 4625), anonymous ones are denied.
    for srv in &closed {
        for c in some_of(ctx, &pool, 2) {
            for _ in 0..ctx.rng.range(1, 2) {
                let day = ctx.rng.below(u64::from(ctx.days)) as u32;
                let t = ctx.work_time(day);
                let (_, session) = ids.next();
                let ip = c.ip.to_string();
                signal.push(ctx.emit.logon_failed(
                    srv,
                    t,
                    "Guest",
                    &srv.name,
                    ntstatus::ACCOUNT_RESTRICTION,
                    ntstatus::ACCOUNT_DISABLED,
                    &ip,
                    &c.name,
                ));
                signal.push(ctx.emit.session_auth_failure(
                    srv,
                    t,
                    c.ip,
                    "Guest",
                    ntstatus::ACCOUNT_DISABLED,
                    session,
                ));
            }
        }
    }
    let srv = &closed[ctx.rng.below(closed.len() as u64) as usize];
    let t = ctx.work_time(ctx.days - 1);
    let (_, session) = ids.next();
    signal.push(
        ctx.emit
            .session_anonymous_denied(srv, t, scanner.ip, session),
    );
    signal.push(
        ctx.emit
            .share_anonymous_denied(srv, plus_secs(t, 1), scanner.ip, share, local),
    );
    Plan { hosts, signal }
}

/// A guest session at an open server: 4776, 4624, 3023, share access, 4634.
fn guest_visit(
    ctx: &mut Ctx<'_>,
    srv: &Host,
    who: &Account<'_>,
    c: &Client,
    t: FileTime,
    ids: &mut Ids,
    signal: &mut Vec<Event>,
) {
    let ip = c.ip.to_string();
    let (logon_id, session) = ids.next();
    signal.push(
        ctx.emit
            .credential_validation(srv, t, who.1, &c.name, ntstatus::SUCCESS),
    );
    signal.push(
        ctx.emit
            .logon(srv, t, &network_logon(who, logon_id, c, &ip)),
    );
    let user = format!("{}\\{}", srv.name, who.1);
    signal.push(
        ctx.emit
            .guest_session(srv, plus_secs(t, 1), c.ip, &user, session),
    );
    let subject = (&who.0, who.1, who.2, logon_id);
    let (share, local) = ("\\\\*\\Public", "C:\\Shares\\Public");
    signal.push(
        ctx.emit
            .share_access(srv, plus_secs(t, 1), subject, &ip, share, local, None),
    );
    if ctx.rng.chance(0.5) {
        let file = Some("Handbook\\guest-wifi.pdf");
        signal.push(
            ctx.emit
                .share_access(srv, plus_secs(t, 2), subject, &ip, share, local, file),
        );
    }
    let end = plus_secs(t, ctx.rng.range(60, 1800));
    signal.push(ctx.emit.logoff(srv, end, who.0, who.1, who.2, logon_id, 3));
}
