//! The one mapping table from (provider, event id, payload field) to promoted columns, and the
//! normalizations applied on the way. The original value always stays in `data`.

use arrow::datatypes::DataType;

/// A promoted column of the `events` table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Promoted {
    UserName,
    UserDomain,
    TargetSid,
    LogonId,
    LogonType,
    AuthPackage,
    Workstation,
    ServerName,
    ServerIp,
    ServerPort,
    ShareName,
    ClientName,
    ClientIp,
    ClientPort,
    Status,
    ObjectName,
}

impl Promoted {
    /// Every promoted column, in schema order.
    pub const ALL: &'static [Promoted] = &[
        Promoted::UserName,
        Promoted::UserDomain,
        Promoted::TargetSid,
        Promoted::LogonId,
        Promoted::LogonType,
        Promoted::AuthPackage,
        Promoted::Workstation,
        Promoted::ServerName,
        Promoted::ServerIp,
        Promoted::ServerPort,
        Promoted::ShareName,
        Promoted::ClientName,
        Promoted::ClientIp,
        Promoted::ClientPort,
        Promoted::Status,
        Promoted::ObjectName,
    ];

    /// The column name in the `events` table.
    pub fn column(self) -> &'static str {
        match self {
            Promoted::UserName => "user_name",
            Promoted::UserDomain => "user_domain",
            Promoted::TargetSid => "target_sid",
            Promoted::LogonId => "logon_id",
            Promoted::LogonType => "logon_type",
            Promoted::AuthPackage => "auth_package",
            Promoted::Workstation => "workstation",
            Promoted::ServerName => "server_name",
            Promoted::ServerIp => "server_ip",
            Promoted::ServerPort => "server_port",
            Promoted::ShareName => "share_name",
            Promoted::ClientName => "client_name",
            Promoted::ClientIp => "client_ip",
            Promoted::ClientPort => "client_port",
            Promoted::Status => "status",
            Promoted::ObjectName => "object_name",
        }
    }

    /// The Arrow type of the column.
    pub fn data_type(self) -> DataType {
        match self {
            Promoted::LogonType => DataType::UInt8,
            Promoted::ServerPort | Promoted::ClientPort => DataType::UInt16,
            Promoted::Status => DataType::UInt32,
            Promoted::LogonId => DataType::UInt64,
            _ => DataType::Utf8,
        }
    }

    /// Position among the promoted columns.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// How a payload value becomes a promoted value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// The text as it is (empty and `-` become null).
    Text,
    /// A host name: leading backslashes and a trailing dot removed, lower case.
    HostName,
    /// A UNC share path: leading backslashes removed, lower case.
    Share,
    /// An IP address as Windows writes it in Security events (`-` null, `::ffff:` prefix dropped).
    Ip,
    /// A number, decimal or `0x` hex, as a string or a JSON number.
    Number,
    /// A binary SOCKADDR (hex text): fills the IP column and the matching port column.
    SockAddr,
    /// A name that may be an IP literal (SMBServer 3000 ClientName): an IP fills the IP column.
    NameOrIp,
}

/// Which provider a mapping row applies to.
#[derive(Debug, Clone, Copy)]
enum Provider {
    SmbClient,
    SmbServer,
    Security,
    Sysmon,
}

impl Provider {
    fn matches(self, name: &str) -> bool {
        let want = match self {
            Provider::SmbClient => "Microsoft-Windows-SMBClient",
            Provider::SmbServer => "Microsoft-Windows-SMBServer",
            Provider::Security => "Microsoft-Windows-Security-Auditing",
            Provider::Sysmon => "Microsoft-Windows-Sysmon",
        };
        name.eq_ignore_ascii_case(want)
    }
}

/// One row of the mapping: `events` of `provider` with an id in `ids` (empty: any id) have
/// their payload field `field` promoted into `column` through `transform`.
struct Row {
    provider: Provider,
    ids: &'static [u32],
    field: &'static str,
    column: Promoted,
    transform: Transform,
}

const fn row(
    provider: Provider,
    ids: &'static [u32],
    field: &'static str,
    column: Promoted,
    transform: Transform,
) -> Row {
    Row {
        provider,
        ids,
        field,
        column,
        transform,
    }
}

use Promoted as P;
use Provider::*;
use Transform as T;

const LOGON_EVENTS: &[u32] = &[4624, 4625, 4634, 4647, 4648, 4672, 4776];
const SHARE_EVENTS: &[u32] = &[5140, 5142, 5143, 5144, 5145];

/// The mapping table. Facts come from `reference/SMB_EVENTS.md` and the Windows manifests.
static MAPPING: &[Row] = &[
    // SMB client: 31001/31010/31017/31018/31022 and Connectivity 308xx.
    row(SmbClient, &[], "UserName", P::UserName, T::Text),
    row(SmbClient, &[], "ServerName", P::ServerName, T::HostName),
    row(SmbClient, &[], "ShareName", P::ShareName, T::Share),
    row(SmbClient, &[], "Status", P::Status, T::Number),
    row(SmbClient, &[], "Address", P::ServerIp, T::SockAddr),
    // SMB server: 551, 1003-1009, 3023 (UserData or EventData), 3000.
    row(SmbServer, &[3000], "ClientName", P::ClientName, T::NameOrIp),
    row(SmbServer, &[], "ClientName", P::ClientName, T::HostName),
    row(SmbServer, &[], "ClientAddress", P::ClientIp, T::SockAddr),
    row(SmbServer, &[], "UserName", P::UserName, T::Text),
    row(SmbServer, &[], "ShareName", P::ShareName, T::Share),
    row(SmbServer, &[], "Status", P::Status, T::Number),
    // Security: logons.
    row(
        Security,
        LOGON_EVENTS,
        "TargetUserName",
        P::UserName,
        T::Text,
    ),
    row(
        Security,
        LOGON_EVENTS,
        "TargetDomainName",
        P::UserDomain,
        T::Text,
    ),
    row(
        Security,
        LOGON_EVENTS,
        "TargetUserSid",
        P::TargetSid,
        T::Text,
    ),
    row(
        Security,
        LOGON_EVENTS,
        "TargetLogonId",
        P::LogonId,
        T::Number,
    ),
    row(Security, LOGON_EVENTS, "LogonType", P::LogonType, T::Number),
    row(
        Security,
        LOGON_EVENTS,
        "AuthenticationPackageName",
        P::AuthPackage,
        T::Text,
    ),
    row(Security, &[4776], "PackageName", P::AuthPackage, T::Text),
    row(
        Security,
        LOGON_EVENTS,
        "WorkstationName",
        P::Workstation,
        T::HostName,
    ),
    row(
        Security,
        &[4776],
        "Workstation",
        P::Workstation,
        T::HostName,
    ),
    row(Security, LOGON_EVENTS, "IpAddress", P::ClientIp, T::Ip),
    row(Security, LOGON_EVENTS, "IpPort", P::ClientPort, T::Number),
    row(Security, &[4625], "SubStatus", P::Status, T::Number),
    row(Security, &[4776], "Status", P::Status, T::Number),
    row(Security, &[4672], "SubjectUserName", P::UserName, T::Text),
    row(
        Security,
        &[4672],
        "SubjectDomainName",
        P::UserDomain,
        T::Text,
    ),
    row(Security, &[4672], "SubjectUserSid", P::TargetSid, T::Text),
    row(Security, &[4672], "SubjectLogonId", P::LogonId, T::Number),
    // Security: share access.
    row(
        Security,
        SHARE_EVENTS,
        "SubjectUserName",
        P::UserName,
        T::Text,
    ),
    row(
        Security,
        SHARE_EVENTS,
        "SubjectDomainName",
        P::UserDomain,
        T::Text,
    ),
    row(
        Security,
        SHARE_EVENTS,
        "SubjectUserSid",
        P::TargetSid,
        T::Text,
    ),
    row(
        Security,
        SHARE_EVENTS,
        "SubjectLogonId",
        P::LogonId,
        T::Number,
    ),
    row(Security, SHARE_EVENTS, "ShareName", P::ShareName, T::Share),
    row(Security, SHARE_EVENTS, "IpAddress", P::ClientIp, T::Ip),
    row(Security, SHARE_EVENTS, "IpPort", P::ClientPort, T::Number),
    // Security: registry value changes.
    row(Security, &[4657], "ObjectName", P::ObjectName, T::Text),
    row(Security, &[4657], "SubjectUserName", P::UserName, T::Text),
    row(
        Security,
        &[4657],
        "SubjectDomainName",
        P::UserDomain,
        T::Text,
    ),
    // Sysmon: registry events.
    row(
        Sysmon,
        &[12, 13, 14],
        "TargetObject",
        P::ObjectName,
        T::Text,
    ),
    row(Sysmon, &[12, 13, 14], "User", P::UserName, T::Text),
];

/// The promotions that apply to one (provider, event id): (field, column, transform).
/// The first row for a field wins.
pub fn promotions_for(
    provider: &str,
    event_id: Option<u32>,
) -> Vec<(&'static str, Promoted, Transform)> {
    let mut out: Vec<(&'static str, Promoted, Transform)> = Vec::new();
    for r in MAPPING {
        if !r.provider.matches(provider) {
            continue;
        }
        if !r.ids.is_empty() && !event_id.is_some_and(|id| r.ids.contains(&id)) {
            continue;
        }
        if out.iter().any(|(f, _, _)| *f == r.field) {
            continue;
        }
        out.push((r.field, r.column, r.transform));
    }
    out
}

/// The port column that goes with an IP column filled from a SOCKADDR.
pub fn port_column_for(ip: Promoted) -> Option<Promoted> {
    match ip {
        Promoted::ClientIp => Some(Promoted::ClientPort),
        Promoted::ServerIp => Some(Promoted::ServerPort),
        _ => None,
    }
}

/// Normalize a host name for joins: `\\SERVER.local.` → `server.local`.
pub fn normalize_host(s: &str) -> Option<String> {
    let mut out = String::new();
    normalize_host_into(s, &mut out).then_some(out)
}

/// [`normalize_host`], appended to `out`; false (nothing appended) when there is no name.
pub fn normalize_host_into(s: &str, out: &mut String) -> bool {
    let t = s
        .trim()
        .trim_start_matches(['\\', '/'])
        .trim_end_matches('.');
    push_lowercase(t, out)
}

/// Normalize a UNC share path: `\\Server\Share` → `server\share`.
pub fn normalize_share(s: &str) -> Option<String> {
    let mut out = String::new();
    normalize_share_into(s, &mut out).then_some(out)
}

/// [`normalize_share`], appended to `out`; false (nothing appended) when there is no path.
pub fn normalize_share_into(s: &str, out: &mut String) -> bool {
    push_lowercase(s.trim().trim_start_matches(['\\', '/']), out)
}

/// `t` in lower case (as `str::to_lowercase`) onto `out`, unless it is empty or `-`.
fn push_lowercase(t: &str, out: &mut String) -> bool {
    if t.is_empty() || t == "-" {
        return false;
    }
    if t.is_ascii() {
        let start = out.len();
        out.push_str(t);
        out[start..].make_ascii_lowercase();
    } else {
        out.push_str(&t.to_lowercase());
    }
    true
}

/// Normalize an IP address as Security events write it.
pub fn normalize_ip(s: &str) -> Option<String> {
    let mut out = String::new();
    normalize_ip_into(s, &mut out).then_some(out)
}

/// [`normalize_ip`], appended to `out`; false (nothing appended) when there is no address.
pub fn normalize_ip_into(s: &str, out: &mut String) -> bool {
    let t = s.trim();
    if t.is_empty() || t == "-" {
        return false;
    }
    let t = t.strip_prefix("::ffff:").unwrap_or(t);
    // An IPv4 address that parses is written back as it was (the parser takes no leading
    // zeros, signs or spaces): no need to format it.
    if t.parse::<std::net::Ipv4Addr>().is_ok() {
        out.push_str(t);
        return true;
    }
    match t.parse::<std::net::IpAddr>() {
        Ok(ip) => {
            use std::fmt::Write;
            let _ = write!(out, "{ip}");
        }
        Err(_) => out.push_str(t),
    }
    true
}

/// Parse a number written as decimal or `0x` hex.
pub fn parse_number(s: &str) -> Option<u64> {
    let t = s.trim();
    if let Some(hex) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else {
        t.parse::<u64>().ok()
    }
}

/// Decode a SOCKADDR written as hex text (`02-00-F4-D5-0A-70-...` or `0200F4D5...`): family
/// (little-endian u16: 2 IPv4, 23 IPv6), port (big-endian), address.
pub fn decode_sockaddr(hex: &str) -> Option<(std::net::IpAddr, u16)> {
    let mut bytes = [0u8; 24];
    let mut n = 0;
    let mut hi: Option<u8> = None;
    for c in hex.bytes() {
        let v = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => c - b'a' + 10,
            b'A'..=b'F' => c - b'A' + 10,
            b'-' | b' ' | b':' => continue,
            _ => return None,
        };
        match hi.take() {
            None => hi = Some(v),
            Some(h) => {
                if n == bytes.len() {
                    break;
                }
                bytes[n] = (h << 4) | v;
                n += 1;
            }
        }
    }
    let family = u16::from_le_bytes([bytes[0], bytes[1]]);
    let port = u16::from_be_bytes([bytes[2], bytes[3]]);
    match family {
        2 if n >= 8 => Some((
            std::net::IpAddr::from([bytes[4], bytes[5], bytes[6], bytes[7]]),
            port,
        )),
        23 if n >= 24 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&bytes[8..24]);
            let v6 = std::net::Ipv6Addr::from(a);
            let ip = match v6.to_ipv4_mapped() {
                Some(v4) => std::net::IpAddr::V4(v4),
                None => std::net::IpAddr::V6(v6),
            };
            Some((ip, port))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sockaddr_ipv4_and_ipv6() {
        let (ip, port) =
            decode_sockaddr("02-00-F4-D5-0A-70-8C-8F-00-00-00-00-00-00-00-00").expect("v4");
        assert_eq!(ip.to_string(), "10.112.140.143");
        assert_eq!(port, 0xF4D5);
        let (ip, port) = decode_sockaddr("020001BDC0A80105").expect("v4 contiguous");
        assert_eq!((ip.to_string().as_str(), port), ("192.168.1.5", 445));
        let v6 = "170001BD00000000FE800000000000000000000000000001";
        let (ip, port) = decode_sockaddr(v6).expect("v6");
        assert_eq!((ip.to_string().as_str(), port), ("fe80::1", 445));
        assert!(decode_sockaddr("zz").is_none());
        assert!(decode_sockaddr("0200").is_none());
        assert!(decode_sockaddr("").is_none());
    }

    #[test]
    fn names_numbers_and_ips() {
        assert_eq!(
            normalize_host("\\\\NAS01.Local.").as_deref(),
            Some("nas01.local")
        );
        assert_eq!(
            normalize_host("\\SERVER.local").as_deref(),
            Some("server.local")
        );
        assert_eq!(normalize_host("-"), None);
        assert_eq!(normalize_share("\\\\*\\IPC$").as_deref(), Some("*\\ipc$"));
        assert_eq!(parse_number("0xC05D0002"), Some(0xC05D_0002));
        assert_eq!(parse_number("3"), Some(3));
        assert_eq!(parse_number("x"), None);
        assert_eq!(normalize_ip("::ffff:10.0.0.1").as_deref(), Some("10.0.0.1"));
        assert_eq!(normalize_ip("-"), None);
    }

    /// The forms that append to a buffer append what the others return, after what the
    /// buffer held, and nothing when there is no value; names not in ASCII are lowered as
    /// `str::to_lowercase` lowers them (a final sigma included).
    #[test]
    fn normalized_values_append_to_a_buffer() {
        let hosts = [
            "\\\\NAS01.Local.",
            "-",
            "  ",
            "\\\\ΣΕΡΒΕΡΟΣ.Local",
            "İSTANBUL-PC",
            "Ünïcödé.",
        ];
        for h in hosts {
            let mut out = String::from("x|");
            let wrote = normalize_host_into(h, &mut out);
            match h
                .trim()
                .trim_start_matches(['\\', '/'])
                .trim_end_matches('.')
            {
                "" | "-" => assert!(!wrote && out == "x|", "{h}"),
                t => assert_eq!(out, format!("x|{}", t.to_lowercase()), "{h}"),
            }
            assert_eq!(normalize_host(h).is_some(), wrote);
        }
        assert!(normalize_host("ΣΕΡΒΕΡΟΣ").is_some_and(|h| h.ends_with('ς')));
        let mut out = String::from("x|");
        assert!(normalize_share_into("\\\\*\\IPC$", &mut out));
        assert!(!normalize_share_into(" - ", &mut out));
        assert_eq!(out, "x|*\\ipc$");
        let mut out = String::from("x|");
        assert!(normalize_ip_into("::ffff:10.0.0.1", &mut out));
        assert!(normalize_ip_into("fe80::1", &mut out));
        assert!(normalize_ip_into("not an ip", &mut out));
        assert!(!normalize_ip_into("-", &mut out));
        assert_eq!(out, "x|10.0.0.1fe80::1not an ip");
    }

    /// An IPv4 address is written as it came (not parsed and formatted again): the same text
    /// as formatting it, and anything the parser refuses goes on as text, as before.
    #[test]
    fn ipv4_written_as_it_came_is_its_formatted_text() {
        let inputs = [
            "10.0.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "010.0.0.1",
            "1.2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "+1.2.3.4",
            "1.2.3.4 ",
            " 1.2.3.4",
            "1..3.4",
            "01.02.03.04",
            "1.2.3.4/24",
            "127.000.0.1",
            "::ffff:192.168.1.10",
            "::1",
            "2001:db8::ff00:42:8329",
            "2001:0db8:0000:0000:0000:ff00:0042:8329",
        ];
        for ip in inputs {
            let mut got = String::new();
            let wrote = normalize_ip_into(ip, &mut got);
            let t = ip.trim();
            let t = t.strip_prefix("::ffff:").unwrap_or(t);
            let want = match t.parse::<std::net::IpAddr>() {
                Ok(parsed) => parsed.to_string(),
                Err(_) => t.to_string(),
            };
            assert!(wrote, "{ip}");
            assert_eq!(got, want, "{ip}");
        }
    }

    #[test]
    fn mapping_resolves_per_event() {
        let p = promotions_for("Microsoft-Windows-SMBServer", Some(3000));
        assert!(p.contains(&("ClientName", Promoted::ClientName, Transform::NameOrIp)));
        let p = promotions_for("microsoft-windows-smbserver", Some(551));
        assert!(p.contains(&("ClientName", Promoted::ClientName, Transform::HostName)));
        assert!(p.contains(&("ClientAddress", Promoted::ClientIp, Transform::SockAddr)));
        let p = promotions_for("Microsoft-Windows-Security-Auditing", Some(4624));
        assert!(
            p.iter()
                .any(|(f, c, _)| *f == "LogonType" && *c == Promoted::LogonType)
        );
        assert!(promotions_for("Microsoft-Windows-Security-Auditing", Some(1102)).is_empty());
        assert!(promotions_for("Other", Some(4624)).is_empty());
    }
}
