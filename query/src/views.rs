//! The views over `events` that make SMB and logon analysis read naturally. Each keeps every
//! column of `events` and adds `status_name`; names are compared case-insensitively because
//! sources differ (`Microsoft-Windows-SmbClient/Security` vs `...SMBClient/...`).

use datafusion::prelude::SessionContext;

use crate::error::QueryError;

/// (name, what it holds, SELECT).
pub const VIEWS: &[(&str, &str, &str)] = &[
    (
        "smb_client",
        "events of the SMB client (Microsoft-Windows-SMBClient: 31001, 31010, 31017, 31018, 31022, Connectivity 308xx)",
        "SELECT *, ntstatus_name(status) AS status_name FROM events \
         WHERE lower(provider) = 'microsoft-windows-smbclient' \
            OR lower(channel) LIKE 'microsoft-windows-smbclient/%'",
    ),
    (
        "smb_server",
        "events of the SMB server (Microsoft-Windows-SMBServer: 551, 1006, 1007, 1009, 3000, 3023)",
        "SELECT *, ntstatus_name(status) AS status_name FROM events \
         WHERE lower(provider) = 'microsoft-windows-smbserver' \
            OR lower(channel) LIKE 'microsoft-windows-smbserver/%'",
    ),
    (
        "logons",
        "Security logon events 4624, 4625, 4634, 4648, 4776 with user, logon type, source and status",
        "SELECT *, ntstatus_name(status) AS status_name FROM events \
         WHERE event_id IN (4624, 4625, 4634, 4648, 4776) \
           AND lower(provider) = 'microsoft-windows-security-auditing'",
    ),
    (
        "share_access",
        "Security share access events 5140 (share) and 5145 (file in share) with user, share and source",
        "SELECT *, ntstatus_name(status) AS status_name FROM events \
         WHERE event_id IN (5140, 5145) \
           AND lower(provider) = 'microsoft-windows-security-auditing'",
    ),
];

/// Create the views on `ctx`; `events` and the functions must be registered first.
pub async fn register_views(ctx: &SessionContext) -> Result<(), QueryError> {
    for (name, _, select) in VIEWS {
        let sql = format!("CREATE OR REPLACE VIEW {name} AS {select}");
        ctx.sql(&sql).await.map_err(|source| QueryError::Setup {
            what: format!("view {name}"),
            source,
        })?;
    }
    Ok(())
}
