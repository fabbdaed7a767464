//! The event kinds the generator writes: SMB client and server events, the Security, Sysmon,
//! PowerShell and System events around them, with providers (names and GUIDs), channels,
//! levels, tasks, keywords and payload fields as Windows writes them (see
//! `/work/shared/reference/SMB_EVENTS.md`; where the public record is silent, the choice is
//! documented in `samples/README.md`).

mod kinds;
mod payload;

use std::sync::Arc;

pub use kinds::{Kind, Spec};
pub use payload::{ntstatus, sockaddr_v4, sockaddr_v6};

use crate::writer::{EventSchema, Field, Guid, Payload};

/// Provider names and GUIDs.
pub mod provider {
    use crate::writer::Guid;

    /// `Microsoft-Windows-SMBClient`.
    pub const SMB_CLIENT: (&str, Guid) = (
        "Microsoft-Windows-SMBClient",
        Guid::from_u128(0x988c59c5_0a1c_45b6_a555_0c62276e327d),
    );
    /// `Microsoft-Windows-SMBServer`.
    pub const SMB_SERVER: (&str, Guid) = (
        "Microsoft-Windows-SMBServer",
        Guid::from_u128(0xd48ce617_33a2_4bc3_a5c7_11aa4f29619e),
    );
    /// `Microsoft-Windows-Security-Auditing`.
    pub const SECURITY: (&str, Guid) = (
        "Microsoft-Windows-Security-Auditing",
        Guid::from_u128(0x54849625_5478_4994_a5ba_3e3b0328c30d),
    );
    /// `Microsoft-Windows-Sysmon`.
    pub const SYSMON: (&str, Guid) = (
        "Microsoft-Windows-Sysmon",
        Guid::from_u128(0x5770385f_c22a_43e0_bf4c_06f5698ffbd9),
    );
    /// `Microsoft-Windows-PowerShell`.
    pub const POWERSHELL: (&str, Guid) = (
        "Microsoft-Windows-PowerShell",
        Guid::from_u128(0xa0c1853b_5c40_4b15_8766_3cf1c58f985a),
    );
    /// `Service Control Manager` (a classic provider with an EventSourceName).
    pub const SCM: (&str, Guid) = (
        "Service Control Manager",
        Guid::from_u128(0x555908d1_a6d7_4695_8e1e_26931d2012f4),
    );
    /// `Microsoft-Windows-Kernel-General`.
    pub const KERNEL_GENERAL: (&str, Guid) = (
        "Microsoft-Windows-Kernel-General",
        Guid::from_u128(0xa68ca8b7_004f_d7b6_a698_07e2de0f1f5d),
    );
}

/// Channel names, spelled as the records spell them.
pub mod channel {
    /// SMB client security events (31001, 31010, 31017, 31018, 31022).
    pub const SMB_CLIENT_SECURITY: &str = "Microsoft-Windows-SmbClient/Security";
    /// SMB client connectivity events (30803–30806).
    pub const SMB_CLIENT_CONNECTIVITY: &str = "Microsoft-Windows-SmbClient/Connectivity";
    /// SMB server security events (551, 1006, 1007, 1009, 3023).
    pub const SMB_SERVER_SECURITY: &str = "Microsoft-Windows-SMBServer/Security";
    /// SMB server audit events (3000, 3021).
    pub const SMB_SERVER_AUDIT: &str = "Microsoft-Windows-SMBServer/Audit";
    /// The Security log.
    pub const SECURITY: &str = "Security";
    /// The System log.
    pub const SYSTEM: &str = "System";
    /// Sysmon.
    pub const SYSMON: &str = "Microsoft-Windows-Sysmon/Operational";
    /// PowerShell script block logging.
    pub const POWERSHELL: &str = "Microsoft-Windows-PowerShell/Operational";
}

/// The user-data namespace of SMBServer events.
pub const SMB_SERVER_XMLNS: &str = "http://manifests.microsoft.com/win/2004/08/windows/smbserver";

/// The schemas of every [`Kind`], built once and shared by all events.
#[derive(Debug, Clone)]
pub struct Catalog {
    schemas: Vec<Arc<EventSchema>>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog::new()
    }
}

impl Catalog {
    /// Build every schema.
    pub fn new() -> Catalog {
        Catalog {
            schemas: Kind::ALL
                .iter()
                .map(|k| Arc::new(schema_of(&k.spec())))
                .collect(),
        }
    }

    /// The schema of `kind`.
    pub fn schema(&self, kind: Kind) -> &Arc<EventSchema> {
        &self.schemas[kind as usize]
    }
}

fn schema_of(spec: &Spec) -> EventSchema {
    let (name, guid): (&'static str, Guid) = spec.provider;
    EventSchema {
        provider: name.into(),
        provider_guid: Some(guid),
        event_source_name: spec.event_source_name.map(Into::into),
        channel: spec.channel.into(),
        event_id: spec.event_id,
        qualifiers: spec.qualifiers,
        version: spec.version,
        level: spec.level,
        task: spec.task,
        opcode: spec.opcode,
        keywords: spec.keywords,
        payload: if spec.user_data {
            Payload::UserData {
                element: "EventData".into(),
                xmlns: SMB_SERVER_XMLNS.into(),
            }
        } else {
            Payload::EventData
        },
        fields: spec
            .fields
            .iter()
            .map(|&(n, ty)| Field { name: n.into(), ty })
            .collect(),
    }
}
