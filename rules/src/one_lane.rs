//! DataFusion's `EnsureRequirements` for plans that run in one partition.
//!
//! Over the shared relation every rule runs in one partition (the rules are the parallelism):
//! the relation's scans, the CTEs run once and the subplans `reuse` keeps all give one
//! partition. `EnsureRequirements` then still walks the plan in every one of its phases: join
//! keys reordered for partitioned joins, distribution enforced (repartitions and merges),
//! sorts parallelized and made order-preserving across partitions. None of those can change a
//! plan whose every operator has one partition; only the sorting phases can (a sort for a
//! window, an ordered aggregate or an ORDER BY). It was the most expensive physical optimizer
//! rule for 200 rules (785 of 2 190 CPU-ms over their plans).
//!
//! [`OneLaneRequirements`] takes its place in the rules' physical optimizer: for a plan whose
//! operators all have one output partition it runs the sorting phases alone (the same
//! functions, in the same order), for any other plan the whole rule. `SanityCheckPlan`, later
//! in the list, still checks every requirement.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::enforce_sorting::sort_pushdown::{
    SortPushDown, assign_initial_requirements, pushdown_sorts,
};
use datafusion::physical_optimizer::enforce_sorting::{
    PlanWithCorrespondingSort, ensure_sorting, replace_with_partial_sort,
};
use datafusion::physical_optimizer::ensure_requirements::EnsureRequirements;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

/// `EnsureRequirements`, with only its sorting phases for plans that run in one partition.
#[derive(Debug, Default)]
pub struct OneLaneRequirements {
    full: EnsureRequirements,
}

/// The name of the rule it replaces.
pub const REPLACES: &str = "EnsureRequirements";

impl OneLaneRequirements {
    pub fn new() -> OneLaneRequirements {
        OneLaneRequirements::default()
    }
}

/// Whether every operator of `plan` has one output partition.
fn one_lane(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let mut one = true;
    plan.apply(|node| {
        one &= node.output_partitioning().partition_count() == 1;
        Ok(if one {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    })?;
    Ok(one)
}

impl PhysicalOptimizerRule for OneLaneRequirements {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if !one_lane(&plan)? {
            return self.full.optimize(plan, config);
        }
        // EnsureRequirements' phase 2b (sorting), 3c (sort pushdown) and 3d (partial sorts).
        let sorted = PlanWithCorrespondingSort::new_default(plan)
            .transform_up(ensure_sorting)?
            .data;
        let mut pushdown = SortPushDown::new_default(sorted.plan);
        assign_initial_requirements(&mut pushdown);
        pushdown_sorts(pushdown)?
            .plan
            .transform_up(|p| Ok(Transformed::yes(replace_with_partial_sort(p)?)))
            .data()
    }

    fn name(&self) -> &str {
        "OneLaneRequirements"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::util::pretty::pretty_format_batches;
    use datafusion::datasource::MemTable;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// A context over `t` (two columns, `parts` partitions), with our rule in the place of
    /// EnsureRequirements when `ours`.
    fn context(parts: usize, ours: bool) -> SessionContext {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, true),
            Field::new("v", DataType::Int64, true),
        ]));
        let keys: Vec<Option<String>> = (0..4000)
            .map(|i| (i % 11 != 0).then(|| format!("k{}", i % 17)))
            .collect();
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(StringArray::from(keys)),
                Arc::new(Int64Array::from_iter_values(
                    (0..4000).map(|i| (i * 7919) % 4000),
                )),
            ],
        )
        .unwrap();
        let per = 4000 / parts;
        let partitions: Vec<Vec<RecordBatch>> = (0..parts)
            .map(|p| vec![batch.slice(p * per, per)])
            .collect();
        let config = SessionConfig::new().with_target_partitions(1);
        let mut state = SessionStateBuilder::new()
            .with_config(config)
            .with_default_features()
            .build();
        if ours {
            let rules: Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>> = state
                .physical_optimizers()
                .iter()
                .map(|r| {
                    if r.name() == REPLACES {
                        Arc::new(OneLaneRequirements::new()) as _
                    } else {
                        Arc::clone(r)
                    }
                })
                .collect();
            state = SessionStateBuilder::new_from_existing(state)
                .with_physical_optimizer_rules(rules)
                .build();
        }
        let ctx = SessionContext::new_with_state(state);
        ctx.register_table(
            "t",
            Arc::new(MemTable::try_new(schema, partitions).unwrap()),
        )
        .unwrap();
        ctx
    }

    /// The answer and the physical plan, with our rule and with DataFusion's.
    async fn both(parts: usize, sql: &str) -> [(String, String); 2] {
        let mut out = Vec::new();
        for ours in [true, false] {
            let ctx = context(parts, ours);
            let df = ctx.sql(sql).await.unwrap();
            let plan = df.clone().create_physical_plan().await.unwrap();
            let shown = displayable(plan.as_ref()).indent(false).to_string();
            let rows = pretty_format_batches(&df.collect().await.unwrap())
                .unwrap()
                .to_string();
            out.push((rows, shown));
        }
        [out[0].clone(), out[1].clone()]
    }

    const SHAPES: &[&str] = &[
        // A window (a sort for it), an ordered aggregate, a join, an ORDER BY with a limit.
        "SELECT k, v, row_number() OVER (PARTITION BY k ORDER BY v DESC) AS rn FROM t \
         ORDER BY k, rn LIMIT 40",
        "SELECT k, array_agg(v ORDER BY v) AS vs, count(*) AS n FROM t WHERE v < 300 \
         GROUP BY k ORDER BY k",
        "WITH g AS (SELECT k, max(v) AS m FROM t GROUP BY k) \
         SELECT t.k, count(*) AS n FROM t JOIN g ON t.k = g.k AND t.v > g.m - 500 \
         GROUP BY t.k ORDER BY n DESC, t.k",
        "SELECT DISTINCT k FROM t WHERE k IS NOT NULL ORDER BY k DESC",
    ];

    #[tokio::test]
    async fn one_partition_plans_are_the_same_as_datafusions() {
        for sql in SHAPES {
            let [(ours, our_plan), (theirs, their_plan)] = both(1, sql).await;
            assert_eq!(ours, theirs, "{sql}");
            assert_eq!(our_plan, their_plan, "{sql}");
            assert!(ours.lines().count() > 4, "{sql}: {ours}");
        }
    }

    #[tokio::test]
    async fn plans_over_several_partitions_get_the_whole_rule() {
        for sql in SHAPES {
            let [(ours, our_plan), (theirs, their_plan)] = both(3, sql).await;
            assert_eq!(ours, theirs, "{sql}");
            assert_eq!(our_plan, their_plan, "{sql}");
            assert!(
                our_plan.contains("CoalescePartitionsExec")
                    || our_plan.contains("SortPreservingMergeExec"),
                "{sql}: the partitions are merged as DataFusion merges them\n{our_plan}"
            );
        }
    }
}
