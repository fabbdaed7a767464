//! Running a rule set over a session.
//!
//! Every rule reads the relation [`RELATION`] (`smb_events`): the rows of `events` whose provider
//! or channel and event id one of the rules `requires`, inside the `--since`/`--until` window.
//! In the default *shared* mode that relation is computed once (one pass over the store, keeping
//! only the rows and columns the rules' plans read, see [`crate::shared`]) and kept in memory,
//! partitioned by event id, and every rule runs against the cached rows. In *naive* mode (`--no-shared-scan`)
//! it is a plain view, so each rule scans the store again; the two give the same findings and
//! exist so that the saving can be measured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::datatypes::SchemaRef;
use futures::StreamExt;

use chrono::{DateTime, Utc};
use datafusion::prelude::{SessionContext, col, lit};
use serde::Serialize;

use crate::error::{Result, RulesError};
use crate::finding::{Finding, findings_from_batches, missing_standard_columns};
use crate::rule::{Requirement, Rule};
use crate::shared::{self, RelationPlan, SharedRelation};
use crate::timeline::{self, DailyCount};

/// The table name every rule reads.
pub const RELATION: &str = "smb_events";

/// How to run a rule set.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Materialize the shared relation once (default) instead of re-scanning per rule.
    pub shared_scan: bool,
    /// Only events at or after this time.
    pub since: Option<DateTime<Utc>>,
    /// Only events before this time.
    pub until: Option<DateTime<Utc>>,
    /// Also compute the daily allow/reject timeline for reports.
    pub timeline: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shared_scan: true,
            since: None,
            until: None,
            timeline: true,
        }
    }
}

/// Time spent and rows returned by one rule.
#[derive(Debug, Clone, Serialize)]
pub struct RuleRun {
    pub rule: String,
    pub findings: usize,
    #[serde(serialize_with = "as_millis")]
    pub elapsed: Duration,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1000.0)
}

/// Everything a run produced.
#[derive(Debug, Clone)]
pub struct RunOutput {
    /// Findings in report order (see [`Finding::sort_key`]).
    pub findings: Vec<Finding>,
    /// Daily guest allow/reject counts per host and per server.
    pub timeline: Vec<DailyCount>,
    /// Rows in the shared relation (shared mode only).
    pub relation_rows: Option<usize>,
    /// Time to build the shared relation (zero in naive mode).
    pub prepare: Duration,
    pub rule_runs: Vec<RuleRun>,
    pub total: Duration,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The union of the rules' requirements (plus the timeline's), merged by source name.
pub fn merged_requirements(rules: &[Rule]) -> Vec<Requirement> {
    let mut by_source: BTreeMap<String, std::collections::BTreeSet<u32>> = BTreeMap::new();
    let extra = timeline::requirements();
    for req in rules
        .iter()
        .flat_map(|r| r.requires.iter())
        .chain(extra.iter())
    {
        by_source
            .entry(req.source.to_ascii_lowercase())
            .or_default()
            .extend(req.event_ids.iter().copied());
    }
    by_source
        .into_iter()
        .map(|(source, ids)| Requirement {
            source,
            event_ids: ids.into_iter().collect(),
        })
        .collect()
}

fn sql_time(t: &DateTime<Utc>) -> String {
    format!("CAST('{}' AS TIMESTAMP)", t.format("%Y-%m-%dT%H:%M:%S%.6f"))
}

/// The SQL of the shared relation for a rule set.
pub fn relation_sql(rules: &[Rule], opts: &RunOptions) -> String {
    let reqs = merged_requirements(rules);
    let all_ids: std::collections::BTreeSet<u32> = reqs
        .iter()
        .flat_map(|r| r.event_ids.iter().copied())
        .collect();
    let ids =
        |v: &mut dyn Iterator<Item = u32>| v.map(|i| i.to_string()).collect::<Vec<_>>().join(", ");
    let groups: Vec<String> = reqs
        .iter()
        .map(|r| {
            let s = quote(&r.source);
            format!(
                "((lower(provider) = {s} OR lower(channel) = {s}) \
                 AND event_id IN ({}))",
                ids(&mut r.event_ids.iter().copied())
            )
        })
        .collect();
    let mut sql = format!(
        "SELECT * FROM events\nWHERE event_id IN ({})\n  AND ({})",
        ids(&mut all_ids.iter().copied()),
        groups.join("\n    OR ")
    );
    if let Some(t) = &opts.since {
        sql.push_str(&format!("\n  AND time_created >= {}", sql_time(t)));
    }
    if let Some(t) = &opts.until {
        sql.push_str(&format!("\n  AND time_created < {}", sql_time(t)));
    }
    sql
}

/// Register [`RELATION`] in `ctx`: cached (shared) or a view (naive). Returns its row count in
/// shared mode.
///
/// In shared mode every rule (and, with `opts.timeline`, the timeline) is first planned
/// against an empty stand-in, and the store is scanned once for the rows and columns those
/// plans read (see [`crate::shared`]).
pub async fn register_relation(
    ctx: &SessionContext,
    rules: &[Rule],
    opts: &RunOptions,
) -> Result<Option<usize>> {
    let sql = relation_sql(rules, opts);
    let df = ctx
        .sql(&sql)
        .await
        .map_err(|e| RulesError::df("planning the shared relation", e))?;
    let _ = ctx.deregister_table(RELATION);
    if !opts.shared_scan {
        ctx.register_table(RELATION, df.into_view())
            .map_err(|e| RulesError::df("registering the relation view", e))?;
        return Ok(None);
    }
    let register = |table: Arc<dyn datafusion::datasource::TableProvider>| {
        let _ = ctx.deregister_table(RELATION);
        ctx.register_table(RELATION, table)
            .map_err(|e| RulesError::df("registering the shared relation", e))
    };
    let full: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    register(Arc::new(SharedRelation::empty(Arc::clone(&full))))?;
    let mut uses = Vec::new();
    for rule in rules {
        let found = shared::scan_uses(ctx, &rule.sql, RELATION)
            .await
            .map_err(|source| RulesError::Rule {
                rule: rule.id.clone(),
                origin: rule.origin.clone(),
                source,
            })?;
        uses.extend(found);
    }
    if opts.timeline {
        let found = shared::scan_uses(ctx, timeline::SQL, RELATION)
            .await
            .map_err(|e| RulesError::df("planning the daily timeline", e))?;
        uses.extend(found);
    }
    let ids: std::collections::BTreeSet<u32> = merged_requirements(rules)
        .iter()
        .flat_map(|r| r.event_ids.iter().copied())
        .collect();
    let plan = RelationPlan::new(&full, &ids, &uses);
    let stage = "reading the shared relation";
    let mut relation = SharedRelation::empty(full);
    for pass in &plan.passes {
        let names: Vec<&str> = pass.columns.iter().map(String::as_str).collect();
        // Separate conjuncts, cheapest first: the Parquet reader evaluates them in turn and
        // decodes each one's columns only for the rows the earlier ones left.
        let ids = col("event_id").in_list(pass.event_ids.iter().map(|&e| lit(e)).collect(), false);
        let mut pass_df = df.clone().filter(ids);
        if let Some(pre) = &pass.prefilter {
            pass_df = pass_df.and_then(|d| d.filter(pre.clone()));
        }
        let df = pass_df
            .and_then(|d| d.filter(pass.predicate.clone()))
            .and_then(|d| d.select_columns(&names))
            .map_err(|e| RulesError::df(stage, e))?;
        let mut stream = df
            .execute_stream()
            .await
            .map_err(|e| RulesError::df(stage, e))?;
        while let Some(batch) = stream.next().await {
            let batch = batch.map_err(|e| RulesError::df(stage, e))?;
            relation
                .push(&batch, &plan)
                .map_err(|e| RulesError::df(stage, e))?;
        }
    }
    relation.finish().map_err(|e| RulesError::df(stage, e))?;
    let rows = relation.rows();
    register(Arc::new(relation))?;
    Ok(Some(rows))
}

/// Run one rule against a session where [`RELATION`] is registered.
pub async fn run_rule(ctx: &SessionContext, rule: &Rule) -> Result<Vec<Finding>> {
    let err = |source| RulesError::Rule {
        rule: rule.id.clone(),
        origin: rule.origin.clone(),
        source,
    };
    let df = ctx.sql(&rule.sql).await.map_err(err)?;
    let names: Vec<String> = df
        .schema()
        .fields()
        .iter()
        .map(|f| f.name().clone())
        .collect();
    let missing = missing_standard_columns(&names);
    if !missing.is_empty() {
        return Err(RulesError::Output {
            rule: rule.id.clone(),
            origin: rule.origin.clone(),
            message: format!("result lacks the standard column(s) {}", missing.join(", ")),
        });
    }
    let batches = df.collect().await.map_err(err)?;
    Ok(findings_from_batches(rule, &batches))
}

/// Run every rule; findings come back sorted in report order.
pub async fn run(ctx: &SessionContext, rules: &[Rule], opts: &RunOptions) -> Result<RunOutput> {
    let start = Instant::now();
    let relation_rows = register_relation(ctx, rules, opts).await?;
    let prepare = start.elapsed();
    let mut findings = Vec::new();
    let mut rule_runs = Vec::new();
    for rule in rules {
        let t = Instant::now();
        let f = run_rule(ctx, rule).await?;
        rule_runs.push(RuleRun {
            rule: rule.id.clone(),
            findings: f.len(),
            elapsed: t.elapsed(),
        });
        findings.extend(f);
    }
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let timeline = if opts.timeline {
        timeline::daily_counts(ctx).await?
    } else {
        Vec::new()
    };
    Ok(RunOutput {
        findings,
        timeline,
        relation_rows,
        prepare,
        rule_runs,
        total: start.elapsed(),
    })
}

/// Parse a `--since`/`--until` value: `YYYY-MM-DD`, `YYYY-MM-DDTHH:MM:SS` (UTC) or RFC 3339.
pub fn parse_time(value: &str) -> Result<DateTime<Utc>> {
    let v = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    for f in ["%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, f) {
            return Ok(t.and_utc());
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
        && let Some(t) = d.and_hms_opt(0, 0, 0)
    {
        return Ok(t.and_utc());
    }
    Err(RulesError::BadTime {
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_parse() {
        let t = parse_time("2025-01-31").expect("date");
        assert_eq!(t.to_rfc3339(), "2025-01-31T00:00:00+00:00");
        let t = parse_time("2025-01-31T08:00:00+02:00").expect("rfc3339");
        assert_eq!(t.to_rfc3339(), "2025-01-31T06:00:00+00:00");
        assert!(parse_time("yesterday").is_err());
    }

    #[test]
    fn relation_sql_merges_requirements_and_quotes() {
        let r = Rule::parse(
            "-- id: a\n-- title: t\n-- severity: low\n-- requires: O'Brien: 1, 2\n-- requires: o'brien: 3\nSELECT 1",
            "a.sql",
            "p",
        )
        .expect("rule");
        let sql = relation_sql(&[r], &RunOptions::default());
        assert!(sql.contains("= 'o''brien'"), "{sql}");
        assert!(sql.contains("event_id IN (1, 2, 3)"), "{sql}");
    }
}
