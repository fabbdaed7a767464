//! Running a rule's plan with each repeated subplan computed once.
//!
//! DataFusion inlines a common table expression wherever it is named, so a rule whose CTE is
//! read by two others computes it twice, and again inside each of theirs: `spoofed_server`'s
//! per-server first sighting (an aggregation over every SMB client event) ran four times per
//! run. Before a plan runs, every subplan that occurs more than once and is worth keeping (it
//! aggregates, joins, sorts or windows) is run once, innermost first, its rows are kept in
//! memory, and each occurrence is replaced by a scan of them, under the same names and
//! qualifiers, so the rest of the plan is unchanged.
//!
//! Left alone: subplans with a volatile function (each occurrence may differ), plans with a
//! recursive query (a subplan may read its work table), and subqueries inside expressions.

use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, HashMap, Result};
use datafusion::datasource::MemTable;
use datafusion::datasource::provider_as_source;
use datafusion::execution::SessionState;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Projection};

/// At most this many subplans are kept for one plan.
const MAX_KEPT: usize = 64;

/// Table name under which the rows of the `n`th kept subplan are scanned (never looked up in a
/// catalog: the scan carries its source).
fn kept_name(n: usize) -> String {
    format!("__evtxsql_kept_{n}")
}

/// Run `plan` (optimized by `state`'s optimizer), each repeated subplan computed once.
pub(crate) async fn collect(state: &SessionState, plan: &LogicalPlan) -> Result<Vec<RecordBatch>> {
    let (plan, _) = keep_repeated(state, plan).await?;
    collect_optimized(state, &plan).await
}

/// `plan` with each repeated subplan worth keeping run (now) and replaced by a scan of its
/// rows; and how many were kept.
async fn keep_repeated(state: &SessionState, plan: &LogicalPlan) -> Result<(LogicalPlan, usize)> {
    let mut plan = plan.clone();
    let mut kept = 0;
    if has_recursive_query(&plan)? {
        return Ok((plan, kept));
    }
    // Each round replaces a subplan that does work by scans that do none, so the rounds end;
    // the bound is a guard.
    while kept < MAX_KEPT
        && let Some(repeated) = innermost_repeated(&plan)
    {
        let batches = collect_optimized(state, &repeated).await?;
        let Some(scan) = scan_of(&repeated, batches, &kept_name(kept), state)? else {
            break;
        };
        kept += 1;
        plan = replace_each(plan, &repeated, &scan, false)?;
    }
    Ok((plan, kept))
}

/// `plan` with every occurrence of `target` replaced by `by` (not looked into again); in
/// subqueries in expressions too when `in_subqueries`.
pub(crate) fn replace_each(
    plan: LogicalPlan,
    target: &LogicalPlan,
    by: &LogicalPlan,
    in_subqueries: bool,
) -> Result<LogicalPlan> {
    let swap = |node: LogicalPlan| {
        Ok(if &node == target {
            Transformed::new(by.clone(), true, TreeNodeRecursion::Jump)
        } else {
            Transformed::no(node)
        })
    };
    Ok(if in_subqueries {
        plan.transform_down_with_subqueries(swap)?
    } else {
        plan.transform_down(swap)?
    }
    .data)
}

/// Run a logical plan that was optimized by `state`'s optimizer: physical planning only.
/// (`DataFrame::collect` would analyze and optimize it again: with 200 rules that was about
/// 1 CPU-s, 0.5 s of the run's wall time on 2 cores.)
pub(crate) async fn collect_optimized(
    state: &SessionState,
    plan: &LogicalPlan,
) -> Result<Vec<RecordBatch>> {
    let physical = state
        .query_planner()
        .create_physical_plan(plan, state)
        .await?;
    datafusion::physical_plan::collect(physical, state.task_ctx()).await
}

/// Whether `plan` holds a recursive query anywhere, subqueries included (a subplan may read
/// its work table, which differs between the iterations).
pub(crate) fn has_recursive_query(plan: &LogicalPlan) -> Result<bool> {
    let mut found = false;
    plan.apply_with_subqueries(|node| {
        found |= matches!(node, LogicalPlan::RecursiveQuery(_));
        Ok(if found {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    })?;
    Ok(found)
}

/// The first subplan (leftmost, innermost) that occurs at least twice in `plan` and is worth
/// keeping, if any. It is rooted at a node that does work: a repeated subplan that does work
/// holds one (itself, or deeper), which is repeated as often and is innermost.
fn innermost_repeated(plan: &LogicalPlan) -> Option<LogicalPlan> {
    // Only subplans rooted at a node that does work are counted: hashing a subplan hashes all
    // of it, so hashing every node's would cost the depth of the plan times its size.
    // (`apply` visits plan inputs, not subqueries in expressions, as `transform_down` does when
    // the occurrences are replaced.)
    let mut counts: HashMap<&LogicalPlan, usize> = HashMap::new();
    let _ = plan.apply(|node| {
        if does_work(node) {
            *counts.entry(node).or_default() += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    fn find<'a>(
        node: &'a LogicalPlan,
        counts: &HashMap<&LogicalPlan, usize>,
    ) -> Option<&'a LogicalPlan> {
        for input in node.inputs() {
            if let Some(found) = find(input, counts) {
                return Some(found);
            }
        }
        (counts.get(node).copied().unwrap_or(0) >= 2 && deterministic(node)).then_some(node)
    }
    if counts.values().all(|&n| n < 2) {
        return None;
    }
    find(plan, &counts).cloned()
}

/// A node whose result is worth keeping: it does work beyond reading, projecting and
/// filtering.
pub(crate) fn does_work(node: &LogicalPlan) -> bool {
    matches!(
        node,
        LogicalPlan::Aggregate(_)
            | LogicalPlan::Join(_)
            | LogicalPlan::Sort(_)
            | LogicalPlan::Window(_)
            | LogicalPlan::Distinct(_)
    )
}

/// Every expression in the subplan, its subqueries included, is deterministic (a volatile one
/// may give each occurrence other rows).
pub(crate) fn deterministic(plan: &LogicalPlan) -> bool {
    let mut volatile = false;
    let _ = plan.apply_with_subqueries(|node| {
        volatile |= node.expressions().iter().any(Expr::is_volatile);
        Ok(if volatile {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    !volatile
}

/// A plan that scans `batches` (the rows of `original`) and gives them `original`'s schema:
/// the same names, qualifiers and types. `None` if the rows do not fit that schema.
fn scan_of(
    original: &LogicalPlan,
    batches: Vec<RecordBatch>,
    name: &str,
    state: &SessionState,
) -> Result<Option<LogicalPlan>> {
    let logical = original.schema();
    // Positional column names: a join's output may hold one name under two qualifiers.
    let fields: Vec<Field> = logical
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| Field::new(format!("c{i}"), f.data_type().clone(), f.is_nullable()))
        .collect();
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    let lanes = state.config().target_partitions().max(1);
    let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); lanes];
    for (i, b) in batches.into_iter().enumerate() {
        let Ok(renamed) = RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec()) else {
            return Ok(None);
        };
        partitions[i % lanes].push(renamed);
    }
    let Ok(table) = MemTable::try_new(Arc::clone(&schema), partitions) else {
        return Ok(None);
    };
    let scan =
        LogicalPlanBuilder::scan(name, provider_as_source(Arc::new(table)), None)?.build()?;
    let exprs: Vec<Expr> = logical
        .iter()
        .enumerate()
        .map(|(i, (qualifier, field))| {
            Expr::Column(Column::new(Some(name), format!("c{i}")))
                .alias_qualified(qualifier.cloned(), field.name())
        })
        .collect();
    let projection = Projection::try_new(exprs, Arc::new(scan))?;
    Ok(Some(LogicalPlan::Projection(projection)))
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::DataType;
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::prelude::SessionContext;

    /// A session with table `t`: 3 000 rows of `k` (13 keys, every seventh NULL) and `v`, in
    /// two partitions.
    pub(crate) fn context() -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let keys: Vec<Option<String>> = (0..3000)
            .map(|i| (i % 7 != 0).then(|| format!("k{}", i % 13)))
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from_iter_values(0..3000)),
            ],
        )
        .unwrap();
        let ctx = SessionContext::new();
        let parts = vec![vec![batch.slice(0, 1500)], vec![batch.slice(1500, 1500)]];
        ctx.register_table("t", Arc::new(MemTable::try_new(schema, parts).unwrap()))
            .unwrap();
        ctx
    }

    /// The answer with repeated subplans kept, the answer DataFusion gives by itself, and how
    /// many subplans were kept.
    async fn both(sql: &str) -> (String, String, usize) {
        let ctx = context();
        let plan = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        let (kept_plan, kept) = keep_repeated(&ctx.state(), &plan).await.unwrap();
        let ours = collect_optimized(&ctx.state(), &kept_plan).await.unwrap();
        let theirs = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let text = |b: &[RecordBatch]| pretty_format_batches(b).unwrap().to_string();
        (text(&ours), text(&theirs), kept)
    }

    #[tokio::test]
    async fn a_cte_read_twice_is_computed_once_with_the_same_answer() {
        // A self-join: one name under two qualifiers in the kept subplan's readers. (Both read
        // the same columns: a CTE read for different columns is pruned to different plans.)
        let (ours, theirs, kept) = both(
            "WITH g AS (SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k) \
             SELECT a.k, a.n, b.s, b.n + a.s AS x FROM g a JOIN g b ON a.k = b.k ORDER BY a.k",
        )
        .await;
        assert_eq!(kept, 1);
        assert_eq!(ours, theirs);
        assert!(ours.contains("| k12 |"), "{ours}");
    }

    #[tokio::test]
    async fn nested_repeats_are_kept_innermost_first() {
        // f is read by b (twice, through the IN) and b is read twice: f's aggregation and b's
        // join each run once.
        let (ours, theirs, kept) = both(
            "WITH f AS (SELECT k, min(v) AS first FROM t WHERE k IS NOT NULL GROUP BY k), \
             b AS (SELECT t.k, t.v - f.first AS since FROM t JOIN f ON t.k = f.k WHERE t.v % 5 = 0) \
             SELECT k, count(*) AS n, max(since) AS m FROM b \
             WHERE k IN (SELECT k FROM b WHERE since > 100) GROUP BY k \
             UNION ALL SELECT k, count(*), min(since) FROM b GROUP BY k ORDER BY 1, 2, 3",
        )
        .await;
        assert_eq!(kept, 2);
        assert_eq!(ours, theirs);
    }

    #[tokio::test]
    async fn volatile_and_recursive_plans_are_left_alone() {
        let (_, _, kept) = both(
            "WITH r AS (SELECT k, sum(v * random()) AS x FROM t GROUP BY k) \
             SELECT count(*), sum(a.x - b.x) FROM r a JOIN r b ON a.k = b.k",
        )
        .await;
        assert_eq!(kept, 0, "a random() subplan may differ between its readers");
        let (ours, theirs, kept) = both(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5), \
             g AS (SELECT k, count(*) AS c FROM t GROUP BY k) \
             SELECT (SELECT sum(i) FROM n) AS s, a.k, b.c FROM g a JOIN g b ON a.k = b.k ORDER BY 2",
        )
        .await;
        assert_eq!(kept, 0);
        assert_eq!(ours, theirs);
    }

    #[tokio::test]
    async fn plans_without_repeats_are_unchanged() {
        let ctx = context();
        let sql = "SELECT k, count(*) FROM t GROUP BY k";
        let plan = ctx.sql(sql).await.unwrap().into_optimized_plan().unwrap();
        let (same, kept) = keep_repeated(&ctx.state(), &plan).await.unwrap();
        assert_eq!(kept, 0);
        assert_eq!(same, plan);
    }
}
