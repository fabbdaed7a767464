//! The daily allow/reject counts behind a report's charts and top lists, per host and per server.
//!
//! What counts as allowed or rejected is the pack's business: a pack brings a timeline query
//! (a file with `-- kind: timeline`, see [`TimelineQuery`]; smb-guest's is
//! `packs/smb-guest/timeline.sql`) and this module only runs it and reads its rows. It reads the
//! shared relation like the rules, so `--since`/`--until` apply.

use arrow::array::{Array, AsArray};
use arrow::datatypes::{DataType, Int64Type};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::error::{Result, RulesError};
use crate::finding::column_names;
use crate::reuse::collect_optimized;
use crate::rule::{TIMELINE_COLUMNS, TimelineQuery};

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

/// Whether a timeline query's result columns are [`TIMELINE_COLUMNS`] (names, in order): the
/// problem to report, if not.
pub fn column_problem(names: &[String]) -> Option<String> {
    let got: Vec<&str> = names.iter().map(String::as_str).collect();
    (got != TIMELINE_COLUMNS).then(|| {
        format!(
            "a timeline query returns the columns {} (in this order), found {}",
            TIMELINE_COLUMNS.join(", "),
            got.join(", ")
        )
    })
}

/// Run a pack's timeline query over the registered relation, with the plan made for it
/// beforehand if given.
pub async fn daily_counts(
    ctx: &SessionContext,
    query: &TimelineQuery,
    plan: Option<&LogicalPlan>,
) -> Result<Vec<DailyCount>> {
    let stage = format!("timeline query {}", query.origin);
    let df_err = |e| RulesError::df(stage.clone(), e);
    let plan = match plan {
        Some(p) => p.clone(),
        None => ctx
            .sql(&query.sql)
            .await
            .and_then(|df| df.into_optimized_plan())
            .map_err(df_err)?,
    };
    let names = column_names(plan.schema());
    if let Some(problem) = column_problem(&names) {
        return Err(RulesError::Output {
            rule: "timeline".into(),
            origin: query.origin.clone(),
            message: problem,
        });
    }
    let batches = collect_optimized(&ctx.state(), &plan)
        .await
        .map_err(df_err)?;
    let mut out = Vec::new();
    for b in &batches {
        let cast = |i: usize, t: &DataType| {
            arrow::compute::cast(b.column(i), t).map_err(|e| df_err(e.into()))
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
            let scope_text = if scope.is_null(r) { "" } else { scope.value(r) };
            let scope = match scope_text {
                "host" => Scope::Host,
                "server" => Scope::Server,
                other => {
                    return Err(RulesError::Output {
                        rule: "timeline".into(),
                        origin: query.origin.clone(),
                        message: format!(
                            "scope `{other}`: a timeline row's scope is host or server"
                        ),
                    });
                }
            };
            out.push(DailyCount {
                day: day.value(r).to_string(),
                scope,
                name: name.value(r).to_string(),
                allowed: u64::try_from(allowed.value(r)).unwrap_or(0),
                rejected: u64::try_from(rejected.value(r)).unwrap_or(0),
            });
        }
    }
    Ok(out)
}
