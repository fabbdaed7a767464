//! The daily guest allow/reject counts behind the report's charts, per client host and per server.
//!
//! Allowed: client 31022 (the client let a guest logon through) and server 3023 (a guest session).
//! Rejected: client 31017 (the client refused) and server 551 for Guest / 1007 / 1009 (the server
//! refused anonymous or guest access). Read from the shared relation, so `--since`/`--until` apply.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::dataframe::DataFrame;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::error::{Result, RulesError};
use crate::rule::Requirement;
use crate::runner::RELATION;

/// Counts for one day and one host (short name, as in the findings) or server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DailyCount {
    /// `YYYY-MM-DD` (UTC).
    pub day: String,
    /// `host` (an SMB client, counted from its own logs) or `server`.
    pub scope: Scope,
    pub name: String,
    pub allowed: u64,
    pub rejected: u64,
}

/// What a timeline row counts for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    Host,
    Server,
}

/// The events the timeline reads (added to the shared relation's filter).
pub fn requirements() -> Vec<Requirement> {
    vec![
        Requirement {
            source: "Microsoft-Windows-SMBClient".into(),
            event_ids: vec![31017, 31022],
        },
        Requirement {
            source: "Microsoft-Windows-SMBServer".into(),
            event_ids: vec![551, 1007, 1009, 3023],
        },
    ]
}

pub(crate) const SQL: &str = "
WITH ev AS (
  SELECT CAST(CAST(time_created AS DATE) AS VARCHAR) AS day,
         lower(CAST(provider AS VARCHAR)) AS prov, event_id,
         split_part(CAST(computer AS VARCHAR), '.', 1) AS computer, server_name, user_name
  FROM smb_events WHERE time_created IS NOT NULL
),
client AS (
  SELECT * FROM ev WHERE prov = 'microsoft-windows-smbclient' AND event_id IN (31017, 31022)
),
server AS (
  SELECT * FROM ev WHERE prov = 'microsoft-windows-smbserver'
    AND (event_id IN (3023, 1007, 1009)
         OR (event_id = 551 AND (lower(user_name) = 'guest' OR user_name IS NULL)))
),
rows AS (
  SELECT day, 'host' AS scope, computer AS name,
         CASE WHEN event_id = 31022 THEN 1 ELSE 0 END AS allowed,
         CASE WHEN event_id = 31017 THEN 1 ELSE 0 END AS rejected
  FROM client
  UNION ALL
  SELECT day, 'server', coalesce(server_name, '(unknown)'),
         CASE WHEN event_id = 31022 THEN 1 ELSE 0 END,
         CASE WHEN event_id = 31017 THEN 1 ELSE 0 END
  FROM client
  UNION ALL
  SELECT day, 'server', computer,
         CASE WHEN event_id = 3023 THEN 1 ELSE 0 END,
         CASE WHEN event_id = 3023 THEN 0 ELSE 1 END
  FROM server
)
SELECT day, scope, name, CAST(sum(allowed) AS BIGINT) AS allowed,
       CAST(sum(rejected) AS BIGINT) AS rejected
FROM rows WHERE name IS NOT NULL
GROUP BY day, scope, name
ORDER BY scope, name, day";

/// Compute the timeline from [`RELATION`], with the plan made for it beforehand if given.
pub async fn daily_counts(
    ctx: &SessionContext,
    plan: Option<&LogicalPlan>,
) -> Result<Vec<DailyCount>> {
    debug_assert!(SQL.contains(RELATION));
    let stage = "computing the daily timeline";
    let df = match plan {
        Some(p) => DataFrame::new(ctx.state(), p.clone()),
        None => ctx.sql(SQL).await.map_err(|e| RulesError::df(stage, e))?,
    };
    let batches = df.collect().await.map_err(|e| RulesError::df(stage, e))?;
    let mut out = Vec::new();
    for b in &batches {
        let cast = |i: usize, t: &DataType| {
            arrow::compute::cast(b.column(i), t).map_err(|e| RulesError::df(stage, e.into()))
        };
        let day = cast(0, &DataType::Utf8)?;
        let scope = cast(1, &DataType::Utf8)?;
        let name = cast(2, &DataType::Utf8)?;
        let allowed = cast(3, &DataType::Int64)?;
        let rejected = cast(4, &DataType::Int64)?;
        let (day, scope, name) = (
            day.as_string::<i32>(),
            scope.as_string::<i32>(),
            name.as_string::<i32>(),
        );
        let (allowed, rejected) = (
            allowed.as_primitive::<Int64Type>(),
            rejected.as_primitive::<Int64Type>(),
        );
        for r in 0..b.num_rows() {
            if day.is_null(r) || name.is_null(r) {
                continue;
            }
            out.push(DailyCount {
                day: day.value(r).to_string(),
                scope: if scope.value(r) == "host" {
                    Scope::Host
                } else {
                    Scope::Server
                },
                name: name.value(r).to_string(),
                allowed: u64::try_from(allowed.value(r)).unwrap_or(0),
                rejected: u64::try_from(rejected.value(r)).unwrap_or(0),
            });
        }
    }
    Ok(out)
}
