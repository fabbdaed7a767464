//! One entry per event kind: System constants and payload fields in manifest order.

use super::{channel as ch, provider as p};
use crate::writer::{Guid, ValueType};

use ValueType::{
    Binary, FileTime, Guid as G, HexInt32, HexInt64, Sid, String as S, UInt32, UInt64,
};

/// The constant facts of an event kind.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    /// Provider name and GUID.
    pub provider: (&'static str, Guid),
    /// `Provider/@EventSourceName`, for classic providers.
    pub event_source_name: Option<&'static str>,
    /// Channel.
    pub channel: &'static str,
    /// Event id.
    pub event_id: u16,
    /// `EventID/@Qualifiers`, for classic events.
    pub qualifiers: Option<u16>,
    /// Version.
    pub version: u8,
    /// Level (0 LogAlways, 2 Error, 3 Warning, 4 Information, 5 Verbose).
    pub level: u8,
    /// Task.
    pub task: u16,
    /// Opcode.
    pub opcode: u8,
    /// Keywords.
    pub keywords: u64,
    /// `UserData/EventData/<Name>` (true) or `EventData/Data[@Name]` (false).
    pub user_data: bool,
    /// Payload fields in order.
    pub fields: &'static [(&'static str, ValueType)],
}

/// Every event kind the generator writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)]
pub enum Kind {
    SmbClient31001,
    SmbClient31010,
    SmbClient31017,
    SmbClient31018,
    SmbClient31022,
    SmbClient30803,
    SmbClient30804,
    SmbClient30805,
    SmbClient30806,
    SmbServer551,
    SmbServer1006,
    SmbServer1007,
    SmbServer1009,
    SmbServer3023,
    SmbServer3000,
    SmbServer3021,
    Security4624,
    Security4625,
    Security4634,
    Security4672,
    Security4776,
    Security5140,
    Security5145,
    Security4657,
    Sysmon13,
    PowerShell4104,
    System7036,
    KernelGeneral12,
}

const SMB_AUTH_KW: u64 = 0x0200_0000_0000_0080;
const SMB_AUTHZ_KW: u64 = 0x0200_0000_0000_0100;
const SMB_CONN_KW: u64 = 0x0400_0000_0000_0020;
const SMB_SRV_SEC_KW: u64 = 0x0810_0000_0220_0008;
const SMB_SRV_AUDIT_KW: u64 = 0x0200_0000_0000_0000;
const AUDIT_SUCCESS: u64 = 0x8020_0000_0000_0000;
const AUDIT_FAILURE: u64 = 0x8010_0000_0000_0000;

const CLIENT_GUEST: &[(&str, ValueType)] = &[
    ("UserNameLength", UInt32),
    ("UserName", S),
    ("ServerNameLength", UInt32),
    ("ServerName", S),
];
const CONNECTIVITY: &[(&str, ValueType)] = &[
    ("Reason", UInt32),
    ("Status", HexInt32),
    ("ServerNameLength", UInt32),
    ("ServerName", S),
    ("AddressLength", UInt32),
    ("Address", Binary),
    ("ConnectionType", UInt32),
];
const SHARE_ACCESS: &[(&str, ValueType)] = &[
    ("SubjectUserSid", Sid),
    ("SubjectUserName", S),
    ("SubjectDomainName", S),
    ("SubjectLogonId", HexInt64),
    ("ObjectType", S),
    ("IpAddress", S),
    ("IpPort", S),
    ("ShareName", S),
    ("ShareLocalPath", S),
    ("AccessMask", HexInt32),
    ("AccessList", S),
];

impl Kind {
    /// Every kind, in declaration order.
    pub const ALL: [Kind; 28] = [
        Kind::SmbClient31001,
        Kind::SmbClient31010,
        Kind::SmbClient31017,
        Kind::SmbClient31018,
        Kind::SmbClient31022,
        Kind::SmbClient30803,
        Kind::SmbClient30804,
        Kind::SmbClient30805,
        Kind::SmbClient30806,
        Kind::SmbServer551,
        Kind::SmbServer1006,
        Kind::SmbServer1007,
        Kind::SmbServer1009,
        Kind::SmbServer3023,
        Kind::SmbServer3000,
        Kind::SmbServer3021,
        Kind::Security4624,
        Kind::Security4625,
        Kind::Security4634,
        Kind::Security4672,
        Kind::Security4776,
        Kind::Security5140,
        Kind::Security5145,
        Kind::Security4657,
        Kind::Sysmon13,
        Kind::PowerShell4104,
        Kind::System7036,
        Kind::KernelGeneral12,
    ];

    /// The kind's constant facts.
    pub fn spec(self) -> Spec {
        let base = |provider, channel, event_id, level, keywords, fields| Spec {
            provider,
            event_source_name: None,
            channel,
            event_id,
            qualifiers: None,
            version: 0,
            level,
            task: 0,
            opcode: 0,
            keywords,
            user_data: false,
            fields,
        };
        let client = |id, level, kw, fields| {
            base(
                p::SMB_CLIENT,
                ch::SMB_CLIENT_SECURITY,
                id,
                level,
                kw,
                fields,
            )
        };
        let conn = |id, level| {
            base(
                p::SMB_CLIENT,
                ch::SMB_CLIENT_CONNECTIVITY,
                id,
                level,
                SMB_CONN_KW,
                CONNECTIVITY,
            )
        };
        let server = |id, fields| Spec {
            user_data: true,
            ..base(
                p::SMB_SERVER,
                ch::SMB_SERVER_SECURITY,
                id,
                2,
                SMB_SRV_SEC_KW,
                fields,
            )
        };
        let security = |id, version, task, kw, fields| Spec {
            version,
            task,
            ..base(p::SECURITY, ch::SECURITY, id, 0, kw, fields)
        };
        match self {
            Kind::SmbClient31001 => client(
                31001,
                2,
                SMB_AUTH_KW,
                &[
                    ("Reason", UInt32),
                    ("Status", HexInt32),
                    ("SecurityStatus", HexInt32),
                    ("LogonId", HexInt64),
                    ("ServerNameLength", UInt32),
                    ("ServerName", S),
                    ("PrincipalNameLength", UInt32),
                    ("PrincipalName", S),
                    ("UserNameLength", UInt32),
                    ("UserName", S),
                ],
            ),
            Kind::SmbClient31010 => client(
                31010,
                2,
                SMB_AUTHZ_KW,
                &[
                    ("Reason", UInt32),
                    ("Status", HexInt32),
                    ("ShareNameLength", UInt32),
                    ("ShareName", S),
                    ("ObjectNameLength", UInt32),
                    ("ObjectName", S),
                ],
            ),
            Kind::SmbClient31017 => Spec {
                task: 31017,
                ..client(31017, 2, SMB_AUTH_KW, CLIENT_GUEST)
            },
            Kind::SmbClient31018 => Spec {
                task: 31018,
                ..client(
                    31018,
                    3,
                    SMB_AUTH_KW,
                    &[("RegName", S), ("RegValue", UInt32)],
                )
            },
            Kind::SmbClient31022 => Spec {
                task: 31022,
                ..client(31022, 3, SMB_AUTH_KW, CLIENT_GUEST)
            },
            Kind::SmbClient30803 => conn(30803, 2),
            Kind::SmbClient30804 => conn(30804, 3),
            Kind::SmbClient30805 => Spec {
                version: 2,
                fields: &[
                    ("Status", HexInt32),
                    ("SessionId", UInt64),
                    ("TreeId", UInt32),
                    ("ServerNameLength", UInt32),
                    ("ServerName", S),
                    ("AddressLength", UInt32),
                    ("Address", Binary),
                ],
                ..conn(30805, 3)
            },
            Kind::SmbClient30806 => Spec {
                level: 4,
                fields: &[
                    ("SessionId", UInt64),
                    ("ServerNameLength", UInt32),
                    ("ServerName", S),
                    ("AddressLength", UInt32),
                    ("Address", Binary),
                ],
                ..conn(30806, 4)
            },
            Kind::SmbServer551 => Spec {
                version: 2,
                task: 551,
                ..server(
                    551,
                    &[
                        ("SessionGUID", G),
                        ("ConnectionGUID", G),
                        ("Status", HexInt32),
                        ("TranslatedStatus", HexInt32),
                        ("ClientAddressLength", UInt32),
                        ("ClientAddress", Binary),
                        ("SessionId", UInt64),
                        ("UserNameLength", UInt32),
                        ("UserName", S),
                        ("ClientNameLength", UInt32),
                        ("ClientName", S),
                        ("SPN", S),
                        ("SPNValidationPolicy", UInt32),
                    ],
                )
            },
            Kind::SmbServer1006 => server(
                1006,
                &[
                    ("ShareNameLength", UInt32),
                    ("ShareName", S),
                    ("SharePathLength", UInt32),
                    ("SharePath", S),
                    ("ClientAddressLength", UInt32),
                    ("ClientAddress", Binary),
                    ("UserNameLength", UInt32),
                    ("UserName", S),
                    ("ClientNameLength", UInt32),
                    ("ClientName", S),
                    ("MappedAccess", HexInt32),
                    ("GrantedAccess", HexInt32),
                    ("ShareSecurityDescriptorLength", UInt32),
                    ("ShareSecurityDescriptor", Binary),
                    ("Status", HexInt32),
                    ("TranslatedStatus", HexInt32),
                    ("SessionID", UInt64),
                ],
            ),
            Kind::SmbServer1007 => server(
                1007,
                &[
                    ("ShareNameLength", UInt32),
                    ("ShareName", S),
                    ("SharePathLength", UInt32),
                    ("SharePath", S),
                    ("ClientAddressLength", UInt32),
                    ("ClientAddress", Binary),
                    ("ClientNameLength", UInt32),
                    ("ClientName", S),
                ],
            ),
            Kind::SmbServer1009 => server(
                1009,
                &[
                    ("ClientAddressLength", UInt32),
                    ("ClientAddress", Binary),
                    ("ClientNameLength", UInt32),
                    ("ClientName", S),
                    ("SessionId", UInt64),
                    ("SessionGUID", G),
                    ("ConnectionGUID", G),
                ],
            ),
            // Field names of 3023 are not public; these are our choice (README).
            Kind::SmbServer3023 => Spec {
                level: 4,
                task: 3023,
                ..server(
                    3023,
                    &[
                        ("ClientNameLength", UInt32),
                        ("ClientName", S),
                        ("ClientAddressLength", UInt32),
                        ("ClientAddress", Binary),
                        ("UserNameLength", UInt32),
                        ("UserName", S),
                        ("SessionId", UInt64),
                        ("SessionGUID", G),
                        ("ConnectionGUID", G),
                    ],
                )
            },
            Kind::SmbServer3000 => base(
                p::SMB_SERVER,
                ch::SMB_SERVER_AUDIT,
                3000,
                4,
                SMB_SRV_AUDIT_KW,
                &[("ClientName", S)],
            ),
            // Field names of 3021 are not public; these are our choice (README).
            Kind::SmbServer3021 => base(
                p::SMB_SERVER,
                ch::SMB_SERVER_AUDIT,
                3021,
                3,
                SMB_SRV_AUDIT_KW,
                &[
                    ("ClientNameLength", UInt32),
                    ("ClientName", S),
                    ("ClientAddressLength", UInt32),
                    ("ClientAddress", Binary),
                    ("UserNameLength", UInt32),
                    ("UserName", S),
                    ("SessionId", UInt64),
                ],
            ),
            Kind::Security4624 => security(
                4624,
                2,
                12544,
                AUDIT_SUCCESS,
                &[
                    ("SubjectUserSid", Sid),
                    ("SubjectUserName", S),
                    ("SubjectDomainName", S),
                    ("SubjectLogonId", HexInt64),
                    ("TargetUserSid", Sid),
                    ("TargetUserName", S),
                    ("TargetDomainName", S),
                    ("TargetLogonId", HexInt64),
                    ("LogonType", UInt32),
                    ("LogonProcessName", S),
                    ("AuthenticationPackageName", S),
                    ("WorkstationName", S),
                    ("LogonGuid", G),
                    ("TransmittedServices", S),
                    ("LmPackageName", S),
                    ("KeyLength", UInt32),
                    ("ProcessId", HexInt64),
                    ("ProcessName", S),
                    ("IpAddress", S),
                    ("IpPort", S),
                    ("ImpersonationLevel", S),
                    ("RestrictedAdminMode", S),
                    ("TargetOutboundUserName", S),
                    ("TargetOutboundDomainName", S),
                    ("VirtualAccount", S),
                    ("TargetLinkedLogonId", HexInt64),
                    ("ElevatedToken", S),
                ],
            ),
            Kind::Security4625 => security(
                4625,
                0,
                12544,
                AUDIT_FAILURE,
                &[
                    ("SubjectUserSid", Sid),
                    ("SubjectUserName", S),
                    ("SubjectDomainName", S),
                    ("SubjectLogonId", HexInt64),
                    ("TargetUserSid", Sid),
                    ("TargetUserName", S),
                    ("TargetDomainName", S),
                    ("Status", HexInt32),
                    ("FailureReason", S),
                    ("SubStatus", HexInt32),
                    ("LogonType", UInt32),
                    ("LogonProcessName", S),
                    ("AuthenticationPackageName", S),
                    ("WorkstationName", S),
                    ("TransmittedServices", S),
                    ("LmPackageName", S),
                    ("KeyLength", UInt32),
                    ("ProcessId", HexInt64),
                    ("ProcessName", S),
                    ("IpAddress", S),
                    ("IpPort", S),
                ],
            ),
            Kind::Security4634 => security(
                4634,
                0,
                12545,
                AUDIT_SUCCESS,
                &[
                    ("TargetUserSid", Sid),
                    ("TargetUserName", S),
                    ("TargetDomainName", S),
                    ("TargetLogonId", HexInt64),
                    ("LogonType", UInt32),
                ],
            ),
            Kind::Security4672 => security(
                4672,
                0,
                12548,
                AUDIT_SUCCESS,
                &[
                    ("SubjectUserSid", Sid),
                    ("SubjectUserName", S),
                    ("SubjectDomainName", S),
                    ("SubjectLogonId", HexInt64),
                    ("PrivilegeList", S),
                ],
            ),
            Kind::Security4776 => security(
                4776,
                0,
                14336,
                AUDIT_SUCCESS,
                &[
                    ("PackageName", S),
                    ("TargetUserName", S),
                    ("Workstation", S),
                    ("Status", HexInt32),
                ],
            ),
            Kind::Security5140 => security(5140, 1, 12808, AUDIT_SUCCESS, SHARE_ACCESS),
            Kind::Security5145 => security(
                5145,
                0,
                12811,
                AUDIT_SUCCESS,
                &[
                    ("SubjectUserSid", Sid),
                    ("SubjectUserName", S),
                    ("SubjectDomainName", S),
                    ("SubjectLogonId", HexInt64),
                    ("ObjectType", S),
                    ("IpAddress", S),
                    ("IpPort", S),
                    ("ShareName", S),
                    ("ShareLocalPath", S),
                    ("RelativeTargetName", S),
                    ("AccessMask", HexInt32),
                    ("AccessList", S),
                    ("AccessReason", S),
                ],
            ),
            Kind::Security4657 => security(
                4657,
                0,
                12801,
                AUDIT_SUCCESS,
                &[
                    ("SubjectUserSid", Sid),
                    ("SubjectUserName", S),
                    ("SubjectDomainName", S),
                    ("SubjectLogonId", HexInt64),
                    ("ObjectName", S),
                    ("ObjectValueName", S),
                    ("HandleId", HexInt64),
                    ("OperationType", S),
                    ("OldValueType", S),
                    ("OldValue", S),
                    ("NewValueType", S),
                    ("NewValue", S),
                    ("ProcessId", HexInt64),
                    ("ProcessName", S),
                ],
            ),
            Kind::Sysmon13 => Spec {
                version: 2,
                task: 13,
                ..base(
                    p::SYSMON,
                    ch::SYSMON,
                    13,
                    4,
                    0x8000_0000_0000_0000,
                    &[
                        ("RuleName", S),
                        ("EventType", S),
                        ("UtcTime", S),
                        ("ProcessGuid", G),
                        ("ProcessId", UInt32),
                        ("Image", S),
                        ("TargetObject", S),
                        ("Details", S),
                        ("User", S),
                    ],
                )
            },
            Kind::PowerShell4104 => Spec {
                version: 1,
                task: 2,
                opcode: 15,
                ..base(
                    p::POWERSHELL,
                    ch::POWERSHELL,
                    4104,
                    5,
                    0,
                    &[
                        ("MessageNumber", UInt32),
                        ("MessageTotal", UInt32),
                        ("ScriptBlockText", S),
                        ("ScriptBlockId", S),
                        ("Path", S),
                    ],
                )
            },
            Kind::System7036 => Spec {
                event_source_name: Some("Service Control Manager"),
                qualifiers: Some(16384),
                ..base(
                    p::SCM,
                    ch::SYSTEM,
                    7036,
                    4,
                    0x8080_0000_0000_0000,
                    &[("param1", S), ("param2", S)],
                )
            },
            Kind::KernelGeneral12 => Spec {
                version: 1,
                task: 1,
                ..base(
                    p::KERNEL_GENERAL,
                    ch::SYSTEM,
                    12,
                    4,
                    0x8000_0000_0000_0000,
                    &[
                        ("MajorVersion", UInt32),
                        ("MinorVersion", UInt32),
                        ("BuildVersion", UInt32),
                        ("QfeVersion", UInt32),
                        ("ServiceVersion", UInt32),
                        ("BootMode", UInt32),
                        ("StartTime", FileTime),
                    ],
                )
            },
        }
    }
}
