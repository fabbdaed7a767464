//! Which rows and columns a rule set reads: its scans of the relation, found in the optimized
//! plans, merged into at most two passes over the store.

use std::collections::{BTreeMap, BTreeSet};

use arrow::datatypes::{DataType, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Column, ScalarValue};
use datafusion::execution::context::SQLOptions;
use datafusion::logical_expr::utils::{conjunction, disjunction, split_conjunction};
use datafusion::logical_expr::{BinaryExpr, Expr, LogicalPlan, Operator};
use datafusion::prelude::{SessionContext, col, lit};
use evtxsql_ingest::schema::col as schema;

/// Above this many distinct filters on one event id, all its rows are kept instead.
const MAX_BRANCHES: usize = 32;

/// What one scan of the relation, in one planned query, reads.
#[derive(Debug, Clone)]
pub struct ScanUse {
    /// Event ids the scan's filters allow (`None`: any).
    pub event_ids: Option<BTreeSet<u32>>,
    /// Columns it reads, by name.
    pub columns: BTreeSet<String>,
    /// Its filters that may cut rows, all of which a row must pass (empty: it reads every row).
    pub filters: Vec<Expr>,
}

/// Plan `sql` (with the relation registered, usually as an empty [`SharedRelation`](super::SharedRelation)); return
/// the optimized plan, its repeated CTEs planned once ([`super::ctes`]), and the scans of
/// `relation` in it and in those CTEs' plans, subqueries included.
pub async fn plan_and_scans(
    ctx: &SessionContext,
    sql: &str,
    relation: &str,
) -> datafusion::error::Result<(LogicalPlan, Vec<ScanUse>)> {
    let (state, plan) = ctx.sql_with_options(sql, query_only()).await?.into_parts();
    let once = super::ctes::optimize_once(&state, plan)?;
    let mut uses = Vec::new();
    for plan in std::iter::once(&once.plan).chain(&once.inner) {
        scans_of(plan, relation, &mut uses)?;
    }
    Ok((once.plan, uses))
}

/// Add the scans of `relation` in `plan` (subqueries included) to `uses`.
fn scans_of(
    plan: &LogicalPlan,
    relation: &str,
    uses: &mut Vec<ScanUse>,
) -> datafusion::error::Result<()> {
    plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && scan.table_name.table() == relation
        {
            let schema = scan.source.schema();
            let columns: BTreeSet<String> = match &scan.projection {
                Some(p) => p.iter().map(|&i| schema.field(i).name().clone()).collect(),
                None => schema.fields().iter().map(|f| f.name().clone()).collect(),
            };
            let usable: Vec<Expr> = scan
                .filters
                .iter()
                .filter(|f| usable_filter(f))
                .map(unqualified)
                .collect();
            let mut columns = columns;
            for f in &usable {
                for c in f.column_refs() {
                    columns.insert(c.name.clone());
                }
            }
            uses.push(ScanUse {
                event_ids: event_ids_of(&scan.filters),
                columns,
                filters: usable,
            });
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(())
}

/// Rules are queries: no DDL (`CREATE TABLE` would run while planning), DML or `SET`.
pub fn query_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// A filter may cut rows from the shared relation unless it holds a subquery or a volatile
/// function (its value could differ between the shared scan and the rule's own run).
fn usable_filter(e: &Expr) -> bool {
    !e.is_volatile()
        && !e
            .exists(|e| {
                Ok(matches!(
                    e,
                    Expr::ScalarSubquery(_) | Expr::InSubquery(_) | Expr::Exists(_)
                ))
            })
            .unwrap_or(true)
}

fn unqualified(e: &Expr) -> Expr {
    e.clone()
        .transform(|e| match e {
            Expr::Column(c) => Ok(Transformed::yes(Expr::Column(Column::new_unqualified(
                c.name,
            )))),
            other => Ok(Transformed::no(other)),
        })
        .map(|t| t.data)
        .unwrap_or_else(|_| e.clone())
}

/// The event ids a set of (conjunctive) filters allows, when they say.
pub fn event_ids_of(filters: &[Expr]) -> Option<BTreeSet<u32>> {
    let mut out: Option<BTreeSet<u32>> = None;
    for f in filters.iter().flat_map(split_conjunction) {
        if let Some(ids) = ids_of_expr(f) {
            out = Some(match out {
                None => ids,
                Some(prev) => prev.intersection(&ids).copied().collect(),
            });
        }
    }
    out
}

fn ids_of_expr(e: &Expr) -> Option<BTreeSet<u32>> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => match op {
            Operator::Eq => match (is_event_id(left), is_event_id(right)) {
                (true, false) => literal_id(right).map(|v| BTreeSet::from([v])),
                (false, true) => literal_id(left).map(|v| BTreeSet::from([v])),
                _ => None,
            },
            Operator::Or => {
                let (a, b) = (ids_of_expr(left)?, ids_of_expr(right)?);
                Some(a.union(&b).copied().collect())
            }
            Operator::And => match (ids_of_expr(left), ids_of_expr(right)) {
                (Some(a), Some(b)) => Some(a.intersection(&b).copied().collect()),
                (Some(a), None) | (None, Some(a)) => Some(a),
                (None, None) => None,
            },
            _ => None,
        },
        Expr::InList(list) if !list.negated && is_event_id(&list.expr) => list
            .list
            .iter()
            .map(literal_id)
            .collect::<Option<BTreeSet<u32>>>(),
        _ => None,
    }
}

fn is_event_id(e: &Expr) -> bool {
    match e {
        Expr::Column(c) => c.name == schema::EVENT_ID,
        Expr::Cast(c) => is_event_id(&c.expr),
        Expr::TryCast(c) => is_event_id(&c.expr),
        _ => false,
    }
}

fn literal_id(e: &Expr) -> Option<u32> {
    match e {
        Expr::Literal(v, _) => match v.cast_to(&DataType::UInt32).ok()? {
            ScalarValue::UInt32(Some(v)) => Some(v),
            _ => None,
        },
        Expr::Cast(c) => literal_id(&c.expr),
        _ => None,
    }
}

/// The column no rule reads cheaply: the JSON payload. Event ids whose scans read it are
/// fetched in their own pass, so that it is decoded only for their rows.
const PAYLOAD: &str = schema::DATA;

/// One pass over the store: the event ids it fetches, with what.
#[derive(Debug, Clone, PartialEq)]
pub struct StorePass {
    /// Event ids fetched.
    pub event_ids: BTreeSet<u32>,
    /// Columns fetched, in the order of the full relation's schema.
    pub columns: Vec<String>,
    /// Rows to keep (beyond the `requires`): an `OR` of `event_id IN (…) AND condition`.
    pub predicate: Expr,
    /// The same with the conditions on the payload left out (implied by `predicate`), when
    /// `predicate` reads the payload: evaluated first, it spares decoding the payload of rows
    /// that cheaper columns already rule out.
    pub prefilter: Option<Expr>,
}

/// Which rows and columns the shared scan keeps, from the scans of a rule set.
#[derive(Debug, Clone)]
pub struct RelationPlan {
    /// At most two passes: the event ids read with the payload, and the others.
    pub passes: Vec<StorePass>,
    /// Per event id, the columns some scan that may read it reads; ids not listed use
    /// `any_id`.
    per_id: BTreeMap<u32, BTreeSet<String>>,
    any_id: BTreeSet<String>,
}

impl RelationPlan {
    /// Merge the scans' needs. `schema` is the full relation's, `ids` the event ids it can hold
    /// (the rule set's `requires`).
    ///
    /// The rows of event id `e` must pass the filters of at least one scan that may read `e`;
    /// branches implied by others are dropped, and event ids with the same condition share one
    /// `event_id IN (…) AND condition` term. Event ids that no scan reads are not fetched.
    pub fn new(schema: &SchemaRef, ids: &BTreeSet<u32>, uses: &[ScanUse]) -> RelationPlan {
        let mut any_id: BTreeSet<String> = BTreeSet::from([schema::EVENT_ID.to_string()]);
        let mut per_id: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
        for u in uses.iter().filter(|u| u.event_ids.is_none()) {
            any_id.extend(u.columns.iter().cloned());
        }
        for u in uses {
            if let Some(ids) = &u.event_ids {
                for id in ids {
                    per_id
                        .entry(*id)
                        .or_insert_with(|| any_id.clone())
                        .extend(u.columns.iter().cloned());
                }
            }
        }
        let mut plan = RelationPlan {
            passes: Vec::new(),
            per_id,
            any_id,
        };
        // Per pass (payload or not): condition → event ids.
        type Groups = BTreeMap<String, (Vec<u32>, Option<Vec<Vec<Expr>>>)>;
        let mut passes: [Groups; 2] = [Groups::new(), Groups::new()];
        for &e in ids {
            let condition = condition_for(e, uses);
            if condition.as_ref().is_some_and(Vec::is_empty) {
                continue; // no scan reads e
            }
            let wide = usize::from(plan.columns_for(Some(e)).contains(PAYLOAD));
            passes[wide]
                .entry(format!("{condition:?}"))
                .or_insert_with(|| (Vec::new(), condition))
                .0
                .push(e);
        }
        for groups in passes {
            if groups.is_empty() {
                continue;
            }
            let mut event_ids = BTreeSet::new();
            let mut wanted: BTreeSet<&String> = BTreeSet::new();
            let mut terms = Vec::new();
            let mut cheap_terms = Vec::new();
            for (group, condition) in groups.values() {
                for &e in group {
                    event_ids.insert(e);
                    wanted.extend(plan.columns_for(Some(e)));
                }
                let in_group =
                    col(schema::EVENT_ID).in_list(group.iter().map(|&e| lit(e)).collect(), false);
                let (full, cheap) = match condition {
                    None => (in_group.clone(), in_group),
                    Some(branches) => (
                        match payload_check(branches) {
                            // Before the condition: rows without the text skip its JSON reads.
                            Some(check) => in_group.clone().and(check),
                            None => in_group.clone(),
                        }
                        .and(branch_condition(branches)),
                        match branch_condition_without(branches, PAYLOAD) {
                            Some(c) => in_group.and(c),
                            None => in_group,
                        },
                    ),
                };
                terms.push(full);
                cheap_terms.push(cheap);
            }
            let predicate = disjunction(terms).unwrap_or_else(|| lit(false));
            let prefilter = disjunction(cheap_terms).filter(|_| reads(&predicate, PAYLOAD));
            let columns = schema
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .filter(|n| wanted.contains(n))
                .collect();
            plan.passes.push(StorePass {
                event_ids,
                columns,
                predicate,
                prefilter,
            });
        }
        plan
    }

    pub(crate) fn columns_for(&self, id: Option<u32>) -> &BTreeSet<String> {
        id.and_then(|id| self.per_id.get(&id))
            .unwrap_or(&self.any_id)
    }
}

/// The condition on rows of event id `e`: `None` when every row is read, otherwise the
/// branches (conjunct lists, one per scan that may read `e`) of which a row must pass one.
/// No branch at all means no scan reads `e`.
fn condition_for(e: u32, uses: &[ScanUse]) -> Option<Vec<Vec<Expr>>> {
    let mut branches: Vec<Vec<Expr>> = Vec::new();
    for u in uses {
        if u.event_ids.as_ref().is_some_and(|ids| !ids.contains(&e)) {
            continue;
        }
        // Conjuncts that only restrict event_id hold for `e` (it is in their allowed set).
        let mut rest: Vec<Expr> = u
            .filters
            .iter()
            .flat_map(split_conjunction)
            .filter(|c| !only_event_id(c))
            .cloned()
            .collect();
        if rest.is_empty() {
            return None;
        }
        rest.sort_by_cached_key(|c| format!("{c:?}"));
        rest.dedup();
        if !branches.contains(&rest) {
            branches.push(rest);
        }
    }
    // A branch whose conjuncts include all of another's adds no rows: drop it.
    let keep: Vec<bool> = branches
        .iter()
        .enumerate()
        .map(|(i, b)| {
            !branches.iter().enumerate().any(|(j, a)| {
                j != i && a.iter().all(|c| b.contains(c)) && (a.len() < b.len() || j < i)
            })
        })
        .collect();
    let mut branches: Vec<Vec<Expr>> = branches
        .into_iter()
        .zip(keep)
        .filter_map(|(b, k)| k.then_some(b))
        .collect();
    if branches.len() > MAX_BRANCHES {
        // Hundreds of different filters on one event id: evaluating them all per row would cost
        // more than keeping the rows; every rule still applies its own filter.
        return None;
    }
    branches.sort_by_cached_key(|b| format!("{b:?}"));
    Some(branches)
}

/// A condition as one expression: the conjuncts common to every branch, and an `OR` of what is
/// left of each branch.
fn branch_condition(branches: &[Vec<Expr>]) -> Expr {
    let Some(first) = branches.first() else {
        return lit(false);
    };
    let common: Vec<Expr> = first
        .iter()
        .filter(|c| branches.iter().all(|b| b.contains(c)))
        .cloned()
        .collect();
    let rests: Vec<Expr> = branches
        .iter()
        .map(|b| conjunction(b.iter().filter(|c| !common.contains(c)).cloned()))
        .collect::<Option<Vec<Expr>>>()
        .unwrap_or_default(); // a branch with nothing left: the common part is enough
    conjunction(common.into_iter().chain(disjunction(rests))).unwrap_or_else(|| lit(true))
}

/// A check on the raw payload that the condition implies (see [`super::literals`]): every
/// branch must give one, or a row could pass by a branch without.
fn payload_check(branches: &[Vec<Expr>]) -> Option<Expr> {
    let per_branch: Option<Vec<Expr>> = branches
        .iter()
        .map(|b| {
            b.iter()
                .filter_map(|c| super::literals::implied_check(c, PAYLOAD))
                .reduce(Expr::and)
        })
        .collect();
    disjunction(per_branch?)
}

/// [`branch_condition`] with every conjunct that reads `column` left out (so implied by it);
/// `None` when nothing is left (true).
fn branch_condition_without(branches: &[Vec<Expr>], column: &str) -> Option<Expr> {
    let cheap: Vec<Vec<Expr>> = branches
        .iter()
        .map(|b| b.iter().filter(|c| !reads(c, column)).cloned().collect())
        .collect();
    if cheap.iter().any(Vec::is_empty) {
        return None;
    }
    Some(branch_condition(&cheap))
}

fn reads(e: &Expr, column: &str) -> bool {
    e.column_refs().iter().any(|c| c.name == column)
}

fn only_event_id(e: &Expr) -> bool {
    ids_of_expr(e).is_some() && e.column_refs().iter().all(|c| c.name == "event_id")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn event_ids_from_filters() {
        let f = vec![
            col("event_id").in_list(vec![lit(5140u32), lit(5145u32)], false),
            col("share_name").is_not_null(),
        ];
        assert_eq!(event_ids_of(&f), Some(BTreeSet::from([5140, 5145])));
        let or = col("event_id")
            .eq(lit(31017i64))
            .or(lit(31022i64).eq(col("event_id")));
        assert_eq!(event_ids_of(&[or]), Some(BTreeSet::from([31017, 31022])));
        let half = col("event_id").eq(lit(1u32)).or(col("user_name").is_null());
        assert_eq!(event_ids_of(&[half]), None);
        let both = vec![
            col("event_id").in_list(vec![lit(1u32), lit(2u32)], false),
            col("event_id").eq(lit(2u32)),
        ];
        assert_eq!(event_ids_of(&both), Some(BTreeSet::from([2])));
        let negated = col("event_id").in_list(vec![lit(1u32)], true);
        assert_eq!(event_ids_of(&[negated]), None);
    }

    fn scan(ids: Option<&[u32]>, filters: Vec<Expr>) -> ScanUse {
        ScanUse {
            event_ids: ids.map(|i| i.iter().copied().collect()),
            columns: BTreeSet::from(["event_id".to_string()]),
            filters,
        }
    }

    #[test]
    fn passes_per_event_id() {
        let schema: SchemaRef = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("event_id", DataType::UInt32, true),
            arrow::datatypes::Field::new("logon_type", DataType::UInt8, true),
            arrow::datatypes::Field::new("data", DataType::Utf8, true),
        ]));
        let guest = col("logon_type").eq(lit(3u8));
        let mut payload = scan(Some(&[4104]), vec![col("data").like(lit("%guest%"))]);
        payload.columns.insert("data".into());
        let uses = vec![
            scan(
                Some(&[4624]),
                vec![col("event_id").eq(lit(4624u32)), guest.clone()],
            ),
            // Implied by the first: adds no 4624 rows.
            scan(
                Some(&[4624]),
                vec![
                    col("event_id").eq(lit(4624u32)),
                    guest.clone(),
                    col("x").is_null(),
                ],
            ),
            scan(
                Some(&[31017, 31022]),
                vec![col("event_id").in_list(vec![lit(31017u32), lit(31022u32)], false)],
            ),
            payload,
        ];
        let ids = BTreeSet::from([4104, 4624, 5140, 31017, 31022]);
        let plan = RelationPlan::new(&schema, &ids, &uses);
        let within =
            |ids: &[u32]| col("event_id").in_list(ids.iter().map(|&e| lit(e)).collect(), false);
        // No scan reads 5140; 31017/31022 are read whole; 4104 comes with its payload.
        let narrow = StorePass {
            event_ids: BTreeSet::from([4624, 31017, 31022]),
            // The predicate's columns are read by the pass's filter, not kept.
            columns: vec!["event_id".into()],
            predicate: within(&[31017, 31022]).or(within(&[4624]).and(guest)),
            prefilter: None,
        };
        let wide = StorePass {
            event_ids: BTreeSet::from([4104]),
            columns: vec!["event_id".into(), "data".into()],
            predicate: within(&[4104]).and(col("data").like(lit("%guest%"))),
            prefilter: Some(within(&[4104])),
        };
        assert_eq!(plan.passes, vec![narrow, wide]);
        // A scan with no filter at all reads every row.
        let plan = RelationPlan::new(&schema, &ids, &[scan(None, vec![])]);
        assert_eq!(plan.passes.len(), 1);
        assert_eq!(
            plan.passes[0].predicate,
            within(&[4104, 4624, 5140, 31017, 31022])
        );
    }

    #[test]
    fn many_filters_on_one_id_keep_its_rows() {
        let schema: SchemaRef = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("event_id", DataType::UInt32, true),
            arrow::datatypes::Field::new("user_name", DataType::Utf8, true),
        ]));
        let uses: Vec<ScanUse> = (0..=MAX_BRANCHES)
            .map(|i| {
                scan(
                    Some(&[4624]),
                    vec![col("user_name").eq(lit(format!("user{i}")))],
                )
            })
            .collect();
        let plan = RelationPlan::new(&schema, &BTreeSet::from([4624]), &uses);
        let within = col("event_id").in_list(vec![lit(4624u32)], false);
        assert_eq!(plan.passes[0].predicate, within);
        let plan = RelationPlan::new(&schema, &BTreeSet::from([4624]), &uses[..3]);
        assert_ne!(plan.passes[0].predicate, within);
    }
}
