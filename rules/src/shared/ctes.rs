//! A rule's repeated CTEs planned, optimized and run once.
//!
//! DataFusion inlines a common table expression wherever it is named, so a CTE read by two
//! others is planned and optimized once per reference, and the CTEs it reads again inside each
//! copy: the pack's `server_guest_session`, before it was rewritten to name each CTE once, held
//! 13 scans of the relation where its SQL names three. [`reuse`](crate::reuse) runs such copies
//! once when the plan runs, but the planning and optimizing of every copy is paid before.
//!
//! Here, before a rule's plan is optimized, every subquery (a CTE's use, or a derived table)
//! that occurs at least twice, identically, and does work (aggregates, joins, sorts, windows)
//! is optimized on its own, innermost first, and each occurrence is replaced by a scan of a
//! [`OnceTable`] under the subquery's alias: the table runs the optimized subquery the first
//! time a plan scans it and keeps its rows for the other scans. The rest of the plan is then
//! optimized with those scans in place.
//!
//! What differs from DataFusion's inlining: the outer query's filters and projections are not
//! pushed into a CTE planned on its own (it computes all its rows and columns, once); the
//! answers are the same. Left alone: subqueries with a volatile function (each occurrence may
//! differ), subqueries whose output carries the JSON payload `data` (see [`carries_payload`])
//! and plans with a recursive query.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::datasource::{TableProvider, TableType, provider_as_source};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::physical_plan::ExecutionPlan;

use crate::reuse;

/// At most this many subqueries are planned on their own for one plan.
const MAX_ONCE: usize = 64;

/// A rule's plan with its repeated subqueries planned once.
pub struct PlannedOnce {
    /// The optimized plan, with scans of [`OnceTable`]s where the repeated subqueries were.
    pub plan: LogicalPlan,
    /// The optimized plans of those subqueries (innermost first), which the scans run.
    pub inner: Vec<LogicalPlan>,
}

/// Optimize `plan` (as `state.optimize` does) with each repeated subquery planned once.
pub fn optimize_once(state: &SessionState, plan: LogicalPlan) -> Result<PlannedOnce> {
    let mut plan = plan;
    let mut inner = Vec::new();
    if !reuse::has_recursive_query(&plan)? {
        while inner.len() < MAX_ONCE {
            let Some(repeated) = innermost_repeated(&plan)? else {
                break;
            };
            let LogicalPlan::SubqueryAlias(alias) = &repeated else {
                break;
            };
            let optimized = state.optimize(&alias.input)?;
            let Some(table) = OnceTable::new(&repeated, optimized.clone()) else {
                break;
            };
            let name = format!("__evtxsql_once_{}", inner.len());
            let scan = LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?
                .alias(alias.alias.clone())?
                .build()?;
            plan = reuse::replace_each(plan, &repeated, &scan, true)?;
            inner.push(optimized);
        }
    }
    Ok(PlannedOnce {
        plan: state.optimize(&plan)?,
        inner,
    })
}

/// The smallest subquery (`SubqueryAlias`) that occurs at least twice in `plan`, subqueries in
/// expressions included, does work and is deterministic; a repeated subquery inside a larger
/// one is smaller than it, so it comes first.
fn innermost_repeated(plan: &LogicalPlan) -> Result<Option<LogicalPlan>> {
    // Only aliases named twice can repeat: counting names first spares hashing the subqueries
    // of a plan that names each once (most rules).
    let mut names: HashMap<String, usize> = HashMap::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::SubqueryAlias(a) = node {
            *names.entry(a.alias.table().to_string()).or_default() += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    if names.values().all(|&n| n < 2) {
        return Ok(None);
    }
    // Keys are clones (a node's children are shared, so a clone is one node deep): the nodes of
    // a subquery in an expression are not borrowed for the whole walk.
    let mut counts: HashMap<LogicalPlan, usize> = HashMap::new();
    let mut order: Vec<LogicalPlan> = Vec::new();
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::SubqueryAlias(a) = node
            && names.get(a.alias.table()).is_some_and(|&n| n >= 2)
        {
            let n = counts.entry(node.clone()).or_default();
            *n += 1;
            if *n == 2 {
                order.push(node.clone());
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    // The smallest; of equal sizes, the first to repeat (plans are walked in a fixed order).
    let mut best: Option<(usize, LogicalPlan)> = None;
    for node in order {
        // Planned twice, a subquery that does no work (reads, filters, projects) costs little,
        // and the outer query's filters still cut its rows.
        if !node.exists(|n| Ok(reuse::does_work(n)))?
            || !reuse::deterministic(&node)
            || carries_payload(&node)
        {
            continue;
        }
        let size = size_of(&node)?;
        if best.as_ref().is_none_or(|(s, _)| size < *s) {
            best = Some((size, node));
        }
    }
    Ok(best.map(|(_, node)| node))
}

/// Whether the subquery's output has the JSON payload column. Planned on its own, a subquery
/// computes every column it names, and the outer query's projections no longer reach its scans:
/// a CTE that passes `data` along (`SELECT *` of events joined or numbered) would make the
/// shared scan keep the payload of its event ids (a second pass over the store) even where no
/// reader uses it. Such subqueries are left to DataFusion's inlining.
fn carries_payload(plan: &LogicalPlan) -> bool {
    plan.schema()
        .fields()
        .iter()
        .any(|f| f.name() == evtxsql_ingest::schema::col::DATA)
}

fn size_of(plan: &LogicalPlan) -> Result<usize> {
    let mut n = 0;
    plan.apply_with_subqueries(|_| {
        n += 1;
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(n)
}

/// A subquery planned once: its optimized plan, run the first time a plan scans the table, and
/// its rows, kept for the other scans.
pub struct OnceTable {
    /// The subquery's output as its alias gives it (names, types, nullability).
    schema: SchemaRef,
    plan: LogicalPlan,
    rows: tokio::sync::OnceCell<Vec<RecordBatch>>,
}

impl fmt::Debug for OnceTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnceTable")
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

impl OnceTable {
    /// The table standing for `subquery`, which runs `optimized` (its input, optimized); `None`
    /// if the optimized plan's columns do not have the subquery's types.
    fn new(subquery: &LogicalPlan, optimized: LogicalPlan) -> Option<OnceTable> {
        let wanted = subquery.schema();
        let got = optimized.schema();
        if wanted.fields().len() != got.fields().len()
            || wanted
                .fields()
                .iter()
                .zip(got.fields())
                .any(|(w, g)| w.data_type() != g.data_type())
        {
            return None;
        }
        // The alias's names: unique, where a join below it may repeat one under two qualifiers.
        let fields: Vec<Field> = wanted
            .fields()
            .iter()
            .zip(got.fields())
            .map(|(w, g)| {
                Field::new(
                    w.name(),
                    w.data_type().clone(),
                    w.is_nullable() || g.is_nullable(),
                )
            })
            .collect();
        Some(OnceTable {
            schema: Arc::new(Schema::new(fields)),
            plan: optimized,
            rows: tokio::sync::OnceCell::new(),
        })
    }

    async fn rows(&self, state: &SessionState) -> Result<&[RecordBatch]> {
        let rows = self
            .rows
            .get_or_try_init(|| async {
                let batches = reuse::collect(state, &self.plan).await?;
                batches
                    .iter()
                    .map(|b| {
                        RecordBatch::try_new(Arc::clone(&self.schema), b.columns().to_vec())
                            .map_err(DataFusionError::from)
                    })
                    .collect::<Result<Vec<_>>>()
            })
            .await?;
        Ok(rows)
    }
}

#[async_trait]
impl TableProvider for OnceTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Temporary
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let state = state
            .as_any()
            .downcast_ref::<SessionState>()
            .ok_or_else(|| {
                DataFusionError::Internal("a CTE planned once needs a SessionState".into())
            })?;
        let rows = self.rows(state).await?;
        let lanes = state.config().target_partitions().max(1);
        let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); lanes];
        for (i, b) in rows.iter().enumerate() {
            partitions[i % lanes].push(b.clone());
        }
        let source = MemorySourceConfig::try_new(
            &partitions,
            Arc::clone(&self.schema),
            projection.cloned(),
        )?;
        Ok(DataSourceExec::from_data_source(source))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::reuse::tests::context;
    use arrow::util::pretty::pretty_format_batches;

    /// The answer with repeated subqueries planned once, the answer DataFusion gives by
    /// itself, how many were planned once, and the number of scans of `t` in the plans.
    async fn both(sql: &str) -> (String, String, usize, usize) {
        let ctx = context();
        let (state, plan) = ctx.sql(sql).await.unwrap().into_parts();
        let once = optimize_once(&state, plan).unwrap();
        let ours = crate::reuse::collect(&state, &once.plan).await.unwrap();
        let theirs = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut scans = 0;
        for p in std::iter::once(&once.plan).chain(&once.inner) {
            p.apply_with_subqueries(|node| {
                if let LogicalPlan::TableScan(s) = node
                    && s.table_name.table() == "t"
                {
                    scans += 1;
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .unwrap();
        }
        let text = |b: &[RecordBatch]| pretty_format_batches(b).unwrap().to_string();
        (text(&ours), text(&theirs), once.inner.len(), scans)
    }

    #[tokio::test]
    async fn a_cte_read_twice_is_planned_once_with_the_same_answer() {
        let (ours, theirs, once, scans) = both(
            "WITH g AS (SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k) \
             SELECT a.k, a.n, b.s, b.n + a.s AS x FROM g a JOIN g b ON a.k = b.k \
             WHERE a.n > 100 ORDER BY a.k",
        )
        .await;
        assert_eq!(once, 1);
        assert_eq!(scans, 1, "g's scan of t is planned once");
        assert_eq!(ours, theirs);
        assert!(ours.contains("| k12 |"), "{ours}");
    }

    #[tokio::test]
    async fn nested_ctes_read_in_subqueries_are_planned_once_innermost_first() {
        // f is read by b and by the IN subquery; b is read three times, once inside an IN.
        let (ours, theirs, once, scans) = both(
            "WITH f AS (SELECT k, min(v) AS first FROM t WHERE k IS NOT NULL GROUP BY k), \
             b AS (SELECT t.k, t.v - f.first AS since FROM t JOIN f ON t.k = f.k \
                   WHERE t.v % 5 = 0 AND t.k IN (SELECT k FROM f WHERE first < 10)) \
             SELECT k, count(*) AS n, max(since) AS m FROM b \
             WHERE k IN (SELECT k FROM b WHERE since > 100) GROUP BY k \
             UNION ALL SELECT k, count(*), min(since) FROM b GROUP BY k ORDER BY 1, 2, 3",
        )
        .await;
        assert_eq!(once, 2);
        assert_eq!(scans, 2, "one scan of t for f, one for b");
        assert_eq!(ours, theirs);
    }

    #[tokio::test]
    async fn same_names_in_two_scopes_stay_apart() {
        // Two CTEs named g with other bodies, each read twice in its own scalar subquery: each
        // is planned once as a table of its own, so the two subqueries that read them (the
        // same text but for g's body) are not taken for one.
        let (ours, theirs, once, scans) = both(
            "SELECT (WITH g AS (SELECT k, max(v) AS m FROM t GROUP BY k) \
                     SELECT sum(x.m) FROM g x JOIN g y ON x.k = y.k) AS hi, \
                    (WITH g AS (SELECT k, min(v) AS m FROM t GROUP BY k) \
                     SELECT sum(x.m) FROM g x JOIN g y ON x.k = y.k) AS lo",
        )
        .await;
        assert_eq!(once, 2);
        assert_eq!(scans, 2);
        assert_eq!(ours, theirs);
        let cells: Vec<&str> = ours
            .lines()
            .nth(3)
            .unwrap()
            .split('|')
            .map(str::trim)
            .collect();
        assert_ne!(cells[1], cells[2], "hi and lo differ: {ours}");
    }

    #[tokio::test]
    async fn volatile_recursive_and_cheap_subqueries_are_left_alone() {
        let (_, _, once, _) = both(
            "WITH r AS (SELECT k, sum(v * random()) AS x FROM t GROUP BY k) \
             SELECT count(*), sum(a.x - b.x) FROM r a JOIN r b ON a.k = b.k",
        )
        .await;
        assert_eq!(
            once, 0,
            "a random() subquery may differ between its readers"
        );
        let (ours, theirs, once, _) = both(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5), \
             g AS (SELECT k, count(*) AS c FROM t GROUP BY k) \
             SELECT (SELECT sum(i) FROM n) AS s, a.k, b.c FROM g a JOIN g b ON a.k = b.k ORDER BY 2",
        )
        .await;
        assert_eq!(once, 0);
        assert_eq!(ours, theirs);
        // A subquery that carries the payload column: its readers' projections must reach it.
        let (ours, theirs, once, _) = both(
            "WITH g AS (SELECT k, max(v) AS data FROM t GROUP BY k) \
             SELECT a.k FROM g a JOIN g b ON a.k = b.k ORDER BY a.k",
        )
        .await;
        assert_eq!(once, 0);
        assert_eq!(ours, theirs);
        // A filter alone: the outer filters still reach the scan of t.
        let (ours, theirs, once, _) = both(
            "WITH e AS (SELECT k, v FROM t WHERE v > 10) \
             SELECT (SELECT count(*) FROM e WHERE k = 'k1') AS a, \
                    (SELECT count(*) FROM e WHERE k = 'k2') AS b",
        )
        .await;
        assert_eq!(once, 0);
        assert_eq!(ours, theirs);
    }

    #[tokio::test]
    async fn plans_without_repeats_are_optimized_as_datafusion_does() {
        let ctx = context();
        let sql =
            "WITH g AS (SELECT k, count(*) AS n FROM t GROUP BY k) SELECT * FROM g WHERE n > 3";
        let (state, plan) = ctx.sql(sql).await.unwrap().into_parts();
        let once = optimize_once(&state, plan).unwrap();
        assert!(once.inner.is_empty());
        let theirs = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        assert_eq!(once.plan, theirs);
    }
}
