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
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SessionContext, col, lit};
use serde::Serialize;

use evtxsql_ingest::schema::col as schema;

use crate::error::{Result, RulesError};
use crate::finding::{Finding, column_names, findings_from_batches, missing_standard_columns};
use crate::one_lane;
use crate::reuse;
use crate::rule::{Requirement, Rule, TimelineQuery};
use crate::shared::{self, RelationPlan, RelationRows, SharedRelation};
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
    /// The pack's timeline query, to run with the rules (for reports); `None`: no timeline.
    pub timeline: Option<TimelineQuery>,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            shared_scan: true,
            since: None,
            until: None,
            timeline: None,
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
    /// Daily allow/reject counts per host and per server, from the run's timeline query
    /// (empty without one).
    pub timeline: Vec<DailyCount>,
    /// Rows in the shared relation (shared mode only).
    pub relation_rows: Option<usize>,
    /// Time to build the shared relation, planning included (naive mode: registering the view).
    pub prepare: Duration,
    /// Of `prepare`, the time spent planning the rules against the empty relation.
    pub planning: Duration,
    /// The passes over the store the shared scan made (none in naive mode).
    pub passes: Vec<PassRun>,
    /// Rules run at a time, and the wall time they took together.
    pub lanes: usize,
    pub rules_elapsed: Duration,
    pub rule_runs: Vec<RuleRun>,
    pub total: Duration,
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The union of the rules' requirements (and the timeline query's), merged by source name.
pub fn merged_requirements(rules: &[Rule], timeline: Option<&TimelineQuery>) -> Vec<Requirement> {
    let mut by_source: BTreeMap<String, std::collections::BTreeSet<u32>> = BTreeMap::new();
    for req in rules
        .iter()
        .flat_map(|r| r.requires.iter())
        .chain(timeline.iter().flat_map(|t| t.requires.iter()))
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
    let reqs = merged_requirements(rules, opts.timeline.as_ref());
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
                "((lower({provider}) = {s} OR lower({channel}) = {s}) \
                 AND {event_id} IN ({}))",
                ids(&mut r.event_ids.iter().copied()),
                provider = schema::PROVIDER,
                channel = schema::CHANNEL,
                event_id = schema::EVENT_ID,
            )
        })
        .collect();
    let mut sql = format!(
        "SELECT * FROM events\nWHERE {} IN ({})\n  AND ({})",
        schema::EVENT_ID,
        ids(&mut all_ids.iter().copied()),
        groups.join("\n    OR ")
    );
    if let Some(t) = &opts.since {
        sql.push_str(&format!(
            "\n  AND {} >= {}",
            schema::TIME_CREATED,
            sql_time(t)
        ));
    }
    if let Some(t) = &opts.until {
        sql.push_str(&format!(
            "\n  AND {} < {}",
            schema::TIME_CREATED,
            sql_time(t)
        ));
    }
    sql
}

/// The relation registered for a run and, in shared mode, the plans made against it.
#[derive(Debug, Default)]
pub struct Prepared {
    /// Rows of the shared relation (shared mode only).
    pub rows: Option<usize>,
    /// Each rule's optimized plan, in the order of the rules (shared mode only).
    plans: Vec<LogicalPlan>,
    /// The timeline's optimized plan (shared mode with the timeline only).
    timeline: Option<LogicalPlan>,
    /// Time spent planning the rules before the scan (shared mode).
    pub planning: Duration,
    /// The passes over the store the shared scan made.
    pub passes: Vec<PassRun>,
}

/// One pass of the shared scan over the store, as it ran.
#[derive(Debug, Clone, Serialize)]
pub struct PassRun {
    /// Event ids it fetched.
    pub event_ids: usize,
    /// Columns it fetched.
    pub columns: usize,
    /// Whether it fetched the payload (`data`).
    pub payload: bool,
    /// Rows it kept.
    pub rows: usize,
    /// Wall time, from planning the pass to its last batch.
    #[serde(serialize_with = "as_millis")]
    pub elapsed: Duration,
}

/// Register [`RELATION`] in `ctx`: cached (shared) or a view (naive).
///
/// In shared mode every rule (and the timeline query in `opts.timeline`) is first planned
/// against the relation while it is still empty, the store is scanned once for the rows and
/// columns those plans read (see [`crate::shared`]), and the rows are put into the relation the
/// plans already point at, so each rule is planned once.
pub async fn register_relation(
    ctx: &SessionContext,
    rules: &[Rule],
    opts: &RunOptions,
) -> Result<Prepared> {
    register_relation_from(ctx, ctx, rules, opts).await
}

/// [`register_relation`], reading the store through `store` (whose plans may run elsewhere,
/// e.g. on a cluster) while the relation is registered, and the rules planned, in `ctx`.
pub async fn register_relation_from(
    store: &SessionContext,
    ctx: &SessionContext,
    rules: &[Rule],
    opts: &RunOptions,
) -> Result<Prepared> {
    let sql = relation_sql(rules, opts);
    let df = store
        .sql(&sql)
        .await
        .map_err(|e| RulesError::df("planning the shared relation", e))?;
    let _ = ctx.deregister_table(RELATION);
    if !opts.shared_scan {
        ctx.register_table(RELATION, df.into_view())
            .map_err(|e| RulesError::df("registering the relation view", e))?;
        return Ok(Prepared::default());
    }
    let started = Instant::now();
    let full: SchemaRef = Arc::new(df.schema().as_arrow().clone());
    let relation = Arc::new(SharedRelation::empty(Arc::clone(&full)));
    ctx.register_table(RELATION, Arc::clone(&relation) as _)
        .map_err(|e| RulesError::df("registering the shared relation", e))?;
    // Planning is CPU work on the calling task: plan a few rules at once on their own tasks.
    let lanes = ctx.state().config().target_partitions().clamp(1, 4);
    let planned: Vec<Result<(LogicalPlan, Vec<shared::ScanUse>)>> =
        futures::stream::iter(rules.iter().cloned())
            .map(|rule| {
                let ctx = ctx.clone();
                async move {
                    let task = tokio::spawn({
                        let ctx = ctx.clone();
                        let sql = rule.sql.clone();
                        async move { shared::plan_and_scans(&ctx, &sql, RELATION).await }
                    });
                    let joined = task
                        .await
                        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)));
                    joined.and_then(|r| r).map_err(|source| RulesError::Rule {
                        rule: rule.id.clone(),
                        origin: rule.origin.clone(),
                        source,
                    })
                }
            })
            .buffered(lanes)
            .collect()
            .await;
    let mut uses = Vec::new();
    let mut plans = Vec::with_capacity(rules.len());
    for p in planned {
        let (plan, found) = p?;
        plans.push(plan);
        uses.extend(found);
    }
    let mut timeline_plan = None;
    if let Some(t) = &opts.timeline {
        let (plan, found) = shared::plan_and_scans(ctx, &t.sql, RELATION)
            .await
            .map_err(|e| RulesError::df(format!("planning the timeline query {}", t.origin), e))?;
        timeline_plan = Some(plan);
        uses.extend(found);
    }
    let planning = started.elapsed();
    let ids: std::collections::BTreeSet<u32> = merged_requirements(rules, opts.timeline.as_ref())
        .iter()
        .flat_map(|r| r.event_ids.iter().copied())
        .collect();
    let plan = RelationPlan::new(&full, &ids, &uses);
    let stage = "reading the shared relation";
    let mut rows = RelationRows::new(full);
    let mut passes = Vec::with_capacity(plan.passes.len());
    for pass in &plan.passes {
        let pass_started = Instant::now();
        let before = rows.rows();
        let names: Vec<&str> = pass.columns.iter().map(String::as_str).collect();
        // Separate conjuncts, cheapest first: the Parquet reader evaluates them in turn and
        // decodes each one's columns only for the rows the earlier ones left.
        let ids =
            col(schema::EVENT_ID).in_list(pass.event_ids.iter().map(|&e| lit(e)).collect(), false);
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
            rows.push(&batch, &plan)
                .map_err(|e| RulesError::df(stage, e))?;
        }
        passes.push(PassRun {
            event_ids: pass.event_ids.len(),
            columns: pass.columns.len(),
            payload: pass.columns.iter().any(|c| c == schema::DATA),
            rows: rows.rows() - before,
            elapsed: pass_started.elapsed(),
        });
    }
    rows.finish().map_err(|e| RulesError::df(stage, e))?;
    relation.fill(rows);
    Ok(Prepared {
        rows: Some(relation.rows()),
        plans,
        timeline: timeline_plan,
        planning,
        passes,
    })
}

/// Run one rule against a session where [`RELATION`] is registered (planning its SQL).
pub async fn run_rule(ctx: &SessionContext, rule: &Rule) -> Result<Vec<Finding>> {
    let plan = ctx
        .sql_with_options(&rule.sql, shared::query_only())
        .await
        .and_then(|df| df.into_optimized_plan())
        .map_err(|source| RulesError::Rule {
            rule: rule.id.clone(),
            origin: rule.origin.clone(),
            source,
        })?;
    run_plan(&ctx.state(), rule, &plan).await
}

/// Run a rule's logical plan, optimized by `state`'s optimizer.
async fn run_plan(state: &SessionState, rule: &Rule, plan: &LogicalPlan) -> Result<Vec<Finding>> {
    let err = |source| RulesError::Rule {
        rule: rule.id.clone(),
        origin: rule.origin.clone(),
        source,
    };
    let names = column_names(plan.schema());
    let missing = missing_standard_columns(&names);
    if !missing.is_empty() {
        return Err(RulesError::Output {
            rule: rule.id.clone(),
            origin: rule.origin.clone(),
            message: format!("result lacks the standard column(s) {}", missing.join(", ")),
        });
    }
    let batches = reuse::collect(state, plan).await.map_err(err)?;
    findings_from_batches(rule, &batches)
}

/// Run every rule; findings come back sorted in report order.
pub async fn run(ctx: &SessionContext, rules: &[Rule], opts: &RunOptions) -> Result<RunOutput> {
    run_from(ctx, ctx, rules, opts).await
}

/// [`run`], with the store read through `store` and the rules run in `ctx`. With a `store`
/// session whose plans run on a cluster, the passes over the store (scans, filters,
/// projections) run there, and the rules run here on the kept rows (shared mode); in naive
/// mode the relation is a view that `ctx` runs itself.
pub async fn run_from(
    store: &SessionContext,
    ctx: &SessionContext,
    rules: &[Rule],
    opts: &RunOptions,
) -> Result<RunOutput> {
    let start = Instant::now();
    let mut prepared = register_relation_from(store, ctx, rules, opts).await?;
    let prepare = start.elapsed();
    // Rules over the cached relation are small queries whose time is mostly fixed costs
    // (physical planning, starting operators): run a few at once, results kept in rule order.
    let lanes = if prepared.plans.is_empty() {
        1
    } else {
        ctx.state().config().target_partitions().clamp(1, 4)
    };
    // Each rule's plan moves into its run and is dropped when the rule ends, with the rows of
    // the CTEs it ran once (`shared::ctes`).
    let mut plans = std::mem::take(&mut prepared.plans).into_iter();
    let work: Vec<(&Rule, Option<LogicalPlan>)> =
        rules.iter().map(|rule| (rule, plans.next())).collect();
    // With rules running side by side, each runs in one partition: the rules are the
    // parallelism, and over the cached rows a rule's repartitioning (planned, started and run
    // for every rule) costs more than it gains.
    let state = {
        let mut state = ctx.state();
        if lanes > 1 {
            state.config_mut().options_mut().execution.target_partitions = 1;
        }
        Arc::new(over_relation(state))
    };
    let state = &state;
    let rules_started = Instant::now();
    let results: Vec<Result<(Vec<Finding>, Duration)>> = futures::stream::iter(work)
        .map(|(rule, plan)| async move {
            let t = Instant::now();
            let f = match plan {
                // On its own task, so that two rules' CPU work runs on two threads.
                Some(plan) => {
                    let (state, rule) = (Arc::clone(state), rule.clone());
                    let task = tokio::spawn(async move { run_plan(&state, &rule, &plan).await });
                    task.await.map_err(|e| {
                        RulesError::df(
                            "running a rule",
                            datafusion::error::DataFusionError::External(Box::new(e)),
                        )
                    })??
                }
                None => run_rule(ctx, rule).await?,
            };
            Ok((f, t.elapsed()))
        })
        .buffered(lanes)
        .collect()
        .await;
    let rules_elapsed = rules_started.elapsed();
    let mut findings = Vec::new();
    let mut rule_runs = Vec::new();
    for (rule, result) in rules.iter().zip(results) {
        let (f, elapsed) = result?;
        rule_runs.push(RuleRun {
            rule: rule.id.clone(),
            findings: f.len(),
            elapsed,
        });
        findings.extend(f);
    }
    findings.sort_by(|a, b| a.sort_key().cmp(&b.sort_key()));
    let timeline = match &opts.timeline {
        Some(t) => timeline::daily_counts(ctx, t, prepared.timeline.as_ref()).await?,
        None => Vec::new(),
    };
    Ok(RunOutput {
        findings,
        timeline,
        relation_rows: prepared.rows,
        prepare,
        planning: prepared.planning,
        passes: prepared.passes.clone(),
        lanes,
        rules_elapsed,
        rule_runs,
        total: start.elapsed(),
    })
}

/// Physical optimizer rules left out of the plans that run over the shared relation (the
/// rules' plans and the subplans they keep, see [`reuse`]; shared mode only: in naive mode the
/// rules plan with the session's list). A rule that also reads a store table directly plans
/// without them too: its scans' columns come from the logical plan all the same.
///
/// `ProjectionPushdown` (in DataFusion's list twice) merges projections and pushes them into
/// joins and scans. The relation's scans already read only the columns the logical plan asks
/// for, and its partitions are in memory, so a projection left in place costs a few `Arc`
/// clones per batch; the rule itself was a quarter of the physical optimizer's time for 200
/// rules (545 of 2 190 CPU-ms over their 482 plans, kept subplans included).
const LEFT_OUT_OVER_RELATION: &[&str] = &["ProjectionPushdown"];

/// `state` without the physical optimizer rules of [`LEFT_OUT_OVER_RELATION`], and with
/// `EnsureRequirements` run as [`one_lane::OneLaneRequirements`] (its sorting phases alone for a
/// plan that runs in one partition, as every rule does when rules run side by side).
fn over_relation(state: SessionState) -> SessionState {
    let rules: Vec<_> = state
        .physical_optimizers()
        .iter()
        .filter(|r| !LEFT_OUT_OVER_RELATION.contains(&r.name()))
        .map(|r| {
            if r.name() == one_lane::REPLACES {
                Arc::new(one_lane::OneLaneRequirements::new()) as _
            } else {
                Arc::clone(r)
            }
        })
        .collect();
    SessionStateBuilder::new_from_existing(state)
        .with_physical_optimizer_rules(rules)
        .build()
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

    /// Rules over the relation plan without `ProjectionPushdown` (both of its places), every
    /// other rule kept, in order.
    #[test]
    fn relation_plans_leave_out_projection_pushdown_and_ensure_requirements_in_one_lane() {
        let state = SessionStateBuilder::new().with_default_features().build();
        let names = |s: &SessionState| -> Vec<String> {
            s.physical_optimizers()
                .iter()
                .map(|r| r.name().to_string())
                .collect()
        };
        let before = names(&state);
        assert_eq!(
            before.iter().filter(|n| *n == "ProjectionPushdown").count(),
            2,
            "{before:?}"
        );
        let after = names(&over_relation(state));
        let expected: Vec<String> = before
            .into_iter()
            .filter(|n| n != "ProjectionPushdown")
            .map(|n| {
                if n == "EnsureRequirements" {
                    "OneLaneRequirements".to_string()
                } else {
                    n
                }
            })
            .collect();
        assert_eq!(after, expected);
        assert!(
            after.iter().any(|n| n == "OneLaneRequirements"),
            "{after:?}"
        );
    }

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

    /// The runner knows nothing of SMB: a pack of Security rules loads Security events only, and
    /// a timeline's events come with the timeline query that names them.
    #[test]
    fn relation_reads_only_what_the_run_names() {
        let r = Rule::parse(
            "-- id: failed_logons\n-- title: t\n-- severity: low\n-- requires: Security: 4625\nSELECT 1",
            "a.sql",
            "p",
        )
        .expect("rule");
        let sql = relation_sql(std::slice::from_ref(&r), &RunOptions::default());
        assert!(sql.contains("event_id IN (4625)"), "{sql}");
        for smb in ["smbclient", "smbserver", "31017", "31022", "3023"] {
            assert!(!sql.to_ascii_lowercase().contains(smb), "{smb} in {sql}");
        }
        let timeline = crate::pack::builtin_pack("smb-guest")
            .expect("pack")
            .timeline
            .expect("timeline");
        let opts = RunOptions {
            timeline: Some(timeline),
            ..RunOptions::default()
        };
        let sql = relation_sql(&[r], &opts);
        assert!(
            sql.contains("event_id IN (551, 1007, 1009, 3023, 4625, 31017, 31022)"),
            "{sql}"
        );
    }
}
