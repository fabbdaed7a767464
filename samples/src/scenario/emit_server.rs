//! Builders of the SMBServer events (551, 1006, 1007, 1009, 3023, 3000, 3021).

// Each builder takes the facts of one event; bundling them in structs would only rename them.
#![allow(clippy::too_many_arguments)]

use std::net::IpAddr;

use super::emit::{Emit, sids, sockaddr_storage};
use super::fleet::Host;
use crate::catalog::{Kind, ntstatus};
use crate::writer::{Event, FileTime, Guid, Value};

fn s(text: impl Into<String>) -> Value {
    Value::str(text.into())
}

fn len(text: &str) -> Value {
    Value::UInt32(text.encode_utf16().count() as u32)
}

impl Emit<'_> {
    /// 551: SMB session authentication failure.
    pub fn session_auth_failure(
        &self,
        host: &Host,
        t: FileTime,
        client: IpAddr,
        user: &str,
        status: u32,
        session: u64,
    ) -> Event {
        let addr = sockaddr_storage(client, 50_000 + (session % 10_000) as u16);
        let name = format!("\\\\{client}");
        let values = vec![
            Value::Guid(Guid::from_u128(u128::from(session) << 64 | 0x551)),
            Value::Guid(Guid::from_u128(u128::from(session) << 64 | 0xc0)),
            Value::HexInt32(status),
            Value::HexInt32(status),
            Value::UInt32(addr.len() as u32),
            Value::Binary(addr),
            Value::UInt64(session),
            len(user),
            s(user),
            len(&name),
            s(name.clone()),
            s(""),
            Value::UInt32(0),
        ];
        self.ev(
            Kind::SmbServer551,
            host,
            t,
            4,
            5812,
            Some(sids::system()),
            values,
        )
    }

    /// 1006: the share denied access.
    pub fn share_denied(
        &self,
        host: &Host,
        t: FileTime,
        client: IpAddr,
        user: &str,
        share: &str,
        path: &str,
        session: u64,
    ) -> Event {
        let addr = sockaddr_storage(client, 50_100);
        let name = format!("\\\\{client}");
        let values = vec![
            len(share),
            s(share),
            len(path),
            s(path),
            Value::UInt32(addr.len() as u32),
            Value::Binary(addr),
            len(user),
            s(user),
            len(&name),
            s(name.clone()),
            Value::HexInt32(0x0012_0089),
            Value::HexInt32(0),
            Value::UInt32(4),
            Value::Binary(vec![1, 0, 4, 0x80]),
            Value::HexInt32(ntstatus::ACCESS_DENIED),
            Value::HexInt32(ntstatus::ACCESS_DENIED),
            Value::UInt64(session),
        ];
        self.ev(
            Kind::SmbServer1006,
            host,
            t,
            4,
            5812,
            Some(sids::system()),
            values,
        )
    }

    /// 1007: the share denied anonymous access.
    pub fn share_anonymous_denied(
        &self,
        host: &Host,
        t: FileTime,
        client: IpAddr,
        share: &str,
        path: &str,
    ) -> Event {
        let addr = sockaddr_storage(client, 50_200);
        let name = format!("\\\\{client}");
        let values = vec![
            len(share),
            s(share),
            len(path),
            s(path),
            Value::UInt32(addr.len() as u32),
            Value::Binary(addr),
            len(&name),
            s(name.clone()),
        ];
        self.ev(
            Kind::SmbServer1007,
            host,
            t,
            4,
            5812,
            Some(sids::system()),
            values,
        )
    }

    /// 1009: the server denied anonymous access.
    pub fn session_anonymous_denied(
        &self,
        host: &Host,
        t: FileTime,
        client: IpAddr,
        session: u64,
    ) -> Event {
        let addr = sockaddr_storage(client, 50_300);
        let name = format!("\\\\{client}");
        let values = vec![
            Value::UInt32(addr.len() as u32),
            Value::Binary(addr),
            len(&name),
            s(name.clone()),
            Value::UInt64(session),
            Value::Guid(Guid::from_u128(u128::from(session) << 64 | 0x1009)),
            Value::Guid(Guid::from_u128(u128::from(session) << 64 | 0xc1)),
        ];
        self.ev(
            Kind::SmbServer1009,
            host,
            t,
            4,
            5812,
            Some(sids::system()),
            values,
        )
    }

    /// 3023: a client was logged on as Guest (field names are ours; see the README).
    pub fn guest_session(
        &self,
        host: &Host,
        t: FileTime,
        client: IpAddr,
        user: &str,
        session: u64,
    ) -> Event {
        let addr = sockaddr_storage(client, 50_400);
        let name = format!("\\\\{client}");
        let values = vec![
            len(&name),
            s(name.clone()),
            Value::UInt32(addr.len() as u32),
            Value::Binary(addr),
            len(user),
            s(user),
            Value::UInt64(session),
            Value::Guid(Guid::from_u128(u128::from(session) << 64 | 0x3023)),
            Value::Guid(Guid::from_u128(u128::from(session) << 64 | 0xc2)),
        ];
        self.ev(
            Kind::SmbServer3023,
            host,
            t,
            4,
            5812,
            Some(sids::system()),
            values,
        )
    }

    /// 3000: SMB1 access (audit).
    pub fn smb1_access(&self, host: &Host, t: FileTime, client: IpAddr) -> Event {
        self.ev(
            Kind::SmbServer3000,
            host,
            t,
            4,
            5812,
            Some(sids::system()),
            vec![s(client.to_string())],
        )
    }

    /// 3021: the client does not support signing (audit; field names are ours).
    pub fn client_no_signing(
        &self,
        host: &Host,
        t: FileTime,
        client: IpAddr,
        user: &str,
        session: u64,
    ) -> Event {
        let addr = sockaddr_storage(client, 50_500);
        let name = format!("\\\\{client}");
        let values = vec![
            len(&name),
            s(name.clone()),
            Value::UInt32(addr.len() as u32),
            Value::Binary(addr),
            len(user),
            s(user),
            Value::UInt64(session),
        ];
        self.ev(
            Kind::SmbServer3021,
            host,
            t,
            4,
            5812,
            Some(sids::system()),
            values,
        )
    }
}
