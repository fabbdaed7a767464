//! Builds the events of each kind from what happened (who, when, which server), with values
//! shaped the way Windows writes them.

// Each builder takes the facts of one event; bundling them in structs would only rename them.
#![allow(clippy::too_many_arguments)]

use std::net::IpAddr;

use super::fleet::{DOMAIN, Host};
use crate::catalog::{Catalog, Kind, ntstatus, sockaddr_v4, sockaddr_v6};
use crate::writer::{Event, FileTime, Guid, Sid, Value};

/// Well-known SIDs.
pub mod sids {
    use crate::writer::Sid;
    /// SYSTEM.
    pub fn system() -> Sid {
        Sid::new(5, &[18])
    }
    /// NETWORK SERVICE.
    pub fn network_service() -> Sid {
        Sid::new(5, &[20])
    }
    /// ANONYMOUS LOGON.
    pub fn anonymous() -> Sid {
        Sid::new(5, &[7])
    }
    /// NULL SID.
    pub fn null() -> Sid {
        Sid::new(0, &[0])
    }
}

fn s(text: impl Into<String>) -> Value {
    Value::str(text.into())
}

fn len(text: &str) -> Value {
    Value::UInt32(text.encode_utf16().count() as u32)
}

/// A SOCKADDR_STORAGE (128 bytes) of an address, as SMBServer events carry it.
pub fn sockaddr_storage(ip: IpAddr, port: u16) -> Vec<u8> {
    match ip {
        IpAddr::V4(v4) => sockaddr_v4(v4, port, 128),
        IpAddr::V6(v6) => sockaddr_v6(v6, port, 128),
    }
}

/// A 4624 logon, described by what matters.
#[derive(Debug, Clone)]
pub struct Logon<'a> {
    /// Target account SID.
    pub sid: Sid,
    /// Target account name.
    pub user: &'a str,
    /// Target account domain.
    pub domain: &'a str,
    /// TargetLogonId.
    pub logon_id: u64,
    /// LogonType (2 interactive, 3 network, 5 service).
    pub logon_type: u32,
    /// Source workstation name (`-` if none).
    pub workstation: &'a str,
    /// Source address (`-` if none).
    pub ip: &'a str,
    /// Source port (`-` or `0` if none).
    pub port: &'a str,
}

/// Makes events from the catalog.
#[derive(Debug, Clone, Copy)]
pub struct Emit<'a> {
    /// The schemas.
    pub cat: &'a Catalog,
}

impl Emit<'_> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn ev(
        &self,
        kind: Kind,
        host: &Host,
        t: FileTime,
        pid: u32,
        tid: u32,
        user: Option<Sid>,
        values: Vec<Value>,
    ) -> Event {
        Event {
            schema: self.cat.schema(kind).clone(),
            computer: host.computer.clone(),
            time: t,
            process_id: pid,
            thread_id: tid,
            activity_id: None,
            user_id: user,
            values,
        }
    }

    /// 31017: the client rejected a guest logon to `server` (`\name` or `\10.1.2.3`).
    pub fn guest_rejected(&self, host: &Host, t: FileTime, user: &str, server: &str) -> Event {
        let values = vec![len(user), s(user), len(server), s(server)];
        self.ev(
            Kind::SmbClient31017,
            host,
            t,
            4,
            9120,
            Some(sids::network_service()),
            values,
        )
    }

    /// 31022: the client allowed a guest logon to `server`.
    pub fn guest_allowed(&self, host: &Host, t: FileTime, user: &str, server: &str) -> Event {
        let values = vec![len(user), s(user), len(server), s(server)];
        self.ev(
            Kind::SmbClient31022,
            host,
            t,
            4,
            9120,
            Some(sids::system()),
            values,
        )
    }

    /// 31018: AllowInsecureGuestAuth is not at its default (logged when the setting is read).
    pub fn guest_config(&self, host: &Host, t: FileTime, value: u32) -> Event {
        let values = vec![s("AllowInsecureGuestAuth"), Value::UInt32(value)];
        self.ev(
            Kind::SmbClient31018,
            host,
            t,
            4,
            312,
            Some(sids::network_service()),
            values,
        )
    }

    /// 31001: a credentialed session setup to `server` failed.
    pub fn auth_failed(
        &self,
        host: &Host,
        t: FileTime,
        user: &str,
        server: &str,
        status: u32,
        logon_id: u64,
    ) -> Event {
        let principal = format!("cifs/{}", server.trim_start_matches('\\'));
        let values = vec![
            Value::UInt32(0),
            Value::HexInt32(status),
            Value::HexInt32(status),
            Value::HexInt64(logon_id),
            len(server),
            s(server),
            len(&principal),
            s(principal.clone()),
            len(user),
            s(user),
        ];
        self.ev(
            Kind::SmbClient31001,
            host,
            t,
            4,
            9120,
            Some(sids::network_service()),
            values,
        )
    }

    /// 31010: connecting to a share failed (Reason 12 = access denied).
    pub fn share_failed(&self, host: &Host, t: FileTime, share: &str, status: u32) -> Event {
        let values = vec![
            Value::UInt32(12),
            Value::HexInt32(status),
            len(share),
            s(share),
            Value::UInt32(0),
            s(""),
        ];
        self.ev(
            Kind::SmbClient31010,
            host,
            t,
            4,
            9120,
            Some(sids::network_service()),
            values,
        )
    }

    /// 30803/30804 (connection failed / lost), 30805 (session lost), 30806 (re-established).
    pub fn connectivity(
        &self,
        kind: Kind,
        host: &Host,
        t: FileTime,
        server: &str,
        ip: IpAddr,
        session: u64,
    ) -> Event {
        let addr = match ip {
            IpAddr::V4(v4) => sockaddr_v4(v4, 445, 16),
            IpAddr::V6(v6) => sockaddr_v6(v6, 445, 28),
        };
        let alen = Value::UInt32(addr.len() as u32);
        let values = match kind {
            Kind::SmbClient30805 => vec![
                Value::HexInt32(ntstatus::NETWORK_NAME_DELETED),
                Value::UInt64(session),
                Value::UInt32(1),
                len(server),
                s(server),
                alen,
                Value::Binary(addr),
            ],
            Kind::SmbClient30806 => vec![
                Value::UInt64(session),
                len(server),
                s(server),
                alen,
                Value::Binary(addr),
            ],
            _ => vec![
                Value::UInt32(if kind == Kind::SmbClient30803 { 2 } else { 8 }),
                Value::HexInt32(ntstatus::IO_TIMEOUT),
                len(server),
                s(server),
                alen,
                Value::Binary(addr),
                Value::UInt32(1),
            ],
        };
        self.ev(
            kind,
            host,
            t,
            4,
            9120,
            Some(sids::network_service()),
            values,
        )
    }

    /// Kernel-General 12: the OS started, with its build.
    pub fn os_boot(&self, host: &Host, t: FileTime, build: u32) -> Event {
        let values = vec![
            Value::UInt32(10),
            Value::UInt32(0),
            Value::UInt32(build),
            Value::UInt32(if build >= 26100 { 2894 } else { 4317 }),
            Value::UInt32(0),
            Value::UInt32(0),
            Value::FileTime(FileTime(t.0.saturating_sub(5_000_000))),
        ];
        self.ev(
            Kind::KernelGeneral12,
            host,
            t,
            4,
            8,
            Some(sids::system()),
            values,
        )
    }

    /// 4657: a registry value was modified.
    #[allow(clippy::too_many_arguments)]
    pub fn registry_4657(
        &self,
        host: &Host,
        t: FileTime,
        subject: (&Sid, &str, u64),
        object: &str,
        value_name: &str,
        old: u32,
        new: u32,
        process: (u64, &str),
    ) -> Event {
        let values = vec![
            Value::Sid(*subject.0),
            s(subject.1),
            s(DOMAIN),
            Value::HexInt64(subject.2),
            s(object),
            s(value_name),
            Value::HexInt64(0x1f4),
            s("%%1905"),
            s("%%1876"),
            s(old.to_string()),
            s("%%1876"),
            s(new.to_string()),
            Value::HexInt64(process.0),
            s(process.1),
        ];
        self.ev(Kind::Security4657, host, t, 732, 1580, None, values)
    }

    /// Sysmon 13: a registry value was set.
    #[allow(clippy::too_many_arguments)]
    pub fn sysmon_13(
        &self,
        host: &Host,
        t: FileTime,
        image: &str,
        pid: u32,
        target: &str,
        details: &str,
        user: &str,
    ) -> Event {
        let values = vec![
            s("-"),
            s("SetValue"),
            s(utc_time(t)),
            Value::Guid(Guid::from_u128(
                0x6f2a_0000_0000_0000_0000_0000_0000_0000 | u128::from(pid),
            )),
            Value::UInt32(pid),
            s(image),
            s(target),
            s(details),
            s(user),
        ];
        self.ev(
            Kind::Sysmon13,
            host,
            t,
            3052,
            4120,
            Some(sids::system()),
            values,
        )
    }

    /// PowerShell 4104: a script block was logged.
    pub fn script_block(&self, host: &Host, t: FileTime, user: Sid, text: &str, id: u64) -> Event {
        let block = Guid::from_u128(0x2b1c_0000_4000_8000_0000_0000_0000_0000 | u128::from(id));
        let values = vec![
            Value::UInt32(1),
            Value::UInt32(1),
            s(text),
            s(block.to_string().to_lowercase()),
            s(""),
        ];
        self.ev(
            Kind::PowerShell4104,
            host,
            t,
            6012,
            7340,
            Some(user),
            values,
        )
    }

    /// 7036: a service entered a state.
    pub fn service_state(&self, host: &Host, t: FileTime, service: &str, state: &str) -> Event {
        self.ev(
            Kind::System7036,
            host,
            t,
            724,
            6920,
            None,
            vec![s(service), s(state)],
        )
    }

    /// 4624: an account logged on.
    pub fn logon(&self, host: &Host, t: FileTime, l: &Logon<'_>) -> Event {
        let network = l.logon_type == 3;
        let (process, auth) = if network {
            ("NtLmSsp ", "NTLM")
        } else {
            ("User32 ", "Negotiate")
        };
        let values = vec![
            Value::Sid(if network {
                sids::null()
            } else {
                sids::system()
            }),
            s(if network { "-" } else { "WKS$" }),
            s(if network { "-" } else { DOMAIN }),
            Value::HexInt64(if network { 0 } else { 0x3e7 }),
            Value::Sid(l.sid),
            s(l.user),
            s(l.domain),
            Value::HexInt64(l.logon_id),
            Value::UInt32(l.logon_type),
            s(process),
            s(auth),
            s(l.workstation),
            Value::Guid(Guid::default()),
            s("-"),
            s(if network { "NTLM V2" } else { "-" }),
            Value::UInt32(if network { 128 } else { 0 }),
            Value::HexInt64(if network { 0 } else { 0x2f8 }),
            s(if network {
                "-"
            } else {
                "C:\\Windows\\System32\\svchost.exe"
            }),
            s(l.ip),
            s(l.port),
            s("%%1833"),
            s("-"),
            s("-"),
            s("-"),
            s("%%1843"),
            Value::HexInt64(0),
            s("%%1842"),
        ];
        self.ev(Kind::Security4624, host, t, 732, 1580, None, values)
    }

    /// 4625: a logon failed.
    #[allow(clippy::too_many_arguments)]
    pub fn logon_failed(
        &self,
        host: &Host,
        t: FileTime,
        user: &str,
        domain: &str,
        status: u32,
        sub_status: u32,
        ip: &str,
        workstation: &str,
    ) -> Event {
        let values = vec![
            Value::Sid(sids::null()),
            s("-"),
            s("-"),
            Value::HexInt64(0),
            Value::Sid(sids::null()),
            s(user),
            s(domain),
            Value::HexInt32(status),
            s(if sub_status == ntstatus::ACCOUNT_DISABLED {
                "%%2310"
            } else {
                "%%2313"
            }),
            Value::HexInt32(sub_status),
            Value::UInt32(3),
            s("NtLmSsp "),
            s("NTLM"),
            s(workstation),
            s("-"),
            s("-"),
            Value::UInt32(0),
            Value::HexInt64(0),
            s("-"),
            s(ip),
            s("0"),
        ];
        self.ev(Kind::Security4625, host, t, 732, 1580, None, values)
    }

    /// 4634: an account logged off.
    pub fn logoff(
        &self,
        host: &Host,
        t: FileTime,
        sid: Sid,
        user: &str,
        domain: &str,
        logon_id: u64,
        logon_type: u32,
    ) -> Event {
        let values = vec![
            Value::Sid(sid),
            s(user),
            s(domain),
            Value::HexInt64(logon_id),
            Value::UInt32(logon_type),
        ];
        self.ev(Kind::Security4634, host, t, 732, 1580, None, values)
    }

    /// 4672: special privileges assigned to a new logon.
    pub fn special_logon(
        &self,
        host: &Host,
        t: FileTime,
        sid: Sid,
        user: &str,
        logon_id: u64,
    ) -> Event {
        let privileges = "SeSecurityPrivilege\r\n\t\t\tSeBackupPrivilege\r\n\t\t\tSeRestorePrivilege\r\n\t\t\tSeDebugPrivilege";
        let values = vec![
            Value::Sid(sid),
            s(user),
            s(DOMAIN),
            Value::HexInt64(logon_id),
            s(privileges),
        ];
        self.ev(Kind::Security4672, host, t, 732, 1580, None, values)
    }

    /// 4776: NTLM credential validation.
    pub fn credential_validation(
        &self,
        host: &Host,
        t: FileTime,
        user: &str,
        workstation: &str,
        status: u32,
    ) -> Event {
        let values = vec![
            s("MICROSOFT_AUTHENTICATION_PACKAGE_V1_0"),
            s(user),
            s(workstation),
            Value::HexInt32(status),
        ];
        self.ev(Kind::Security4776, host, t, 732, 1580, None, values)
    }

    /// 5140 (or 5145 with a relative target): a network share was accessed.
    #[allow(clippy::too_many_arguments)]
    pub fn share_access(
        &self,
        host: &Host,
        t: FileTime,
        subject: (&Sid, &str, &str, u64),
        ip: &str,
        share: &str,
        local: &str,
        target: Option<&str>,
    ) -> Event {
        let mut values = vec![
            Value::Sid(*subject.0),
            s(subject.1),
            s(subject.2),
            Value::HexInt64(subject.3),
            s("File"),
            s(ip),
            s("49812"),
            s(share),
            s(local),
        ];
        let kind = match target {
            Some(rel) => {
                values.push(s(rel));
                values.push(Value::HexInt32(0x1));
                values.push(s("%%4416"));
                values.push(s("%%1541:\t%%1801 D:(A;;FA;;;WD)"));
                Kind::Security5145
            }
            None => {
                values.push(Value::HexInt32(0x1));
                values.push(s("%%4416"));
                Kind::Security5140
            }
        };
        self.ev(kind, host, t, 4, 5520, None, values)
    }
}

/// Sysmon's `UtcTime` text: `2026-03-02 08:15:00.123`.
pub fn utc_time(t: FileTime) -> String {
    let iso = t.to_rfc3339();
    format!("{} {}", &iso[..10], &iso[11..23])
}
