//! The shared relation: one scan of the store for a whole rule set.
//!
//! Before anything runs, every rule (and the pack's timeline query) is planned against an empty
//! stand-in for [`RELATION`](crate::runner::RELATION). DataFusion's optimizer pushes each rule's
//! filters down to its scans of that relation, so the optimized plans say exactly which rows
//! (the conjunction of the filters at each scan) and which columns (the scan's projection) the
//! rule set can ever read. The shared scan keeps only those: the rows matching any scan's
//! filters, the columns some scan reads. A rule that reads 4624 only as a guest network logon
//! therefore no longer pulls every interactive logon of the fleet into memory.
//!
//! The rows are then held in one partition per event id, and a column that no scan of a given
//! event id reads is not kept in that partition: the JSON payload of 5145 share checks
//! is not kept when no rule reads it. A rule's scan gets only the partitions its event-id filter
//! (`event_id = …`, `event_id IN (…)`, or an `OR` of them) allows, so a rule over 31017 looks at
//! the 31017 rows and not at the million logons beside them.
//!
//! Why the findings equal the naive run's: the optimizer only pushes a filter to a scan when
//! the plan's result does not depend on rows failing it, so every row a rule can use passes the
//! filters of the scan that reads it, and that row is kept. Filters with subqueries or volatile
//! functions are not used to cut rows. A scan that asks for a column the plan said it would not
//! read fails loudly instead of reading nulls.
//!
//! - [`plan`]: planning the rule set and deriving what the shared scan keeps ([`RelationPlan`]).
//! - [`relation`]: the kept rows, partitioned by event id, as a DataFusion table.
//! - [`ctes`]: a rule's repeated CTEs planned, optimized and run once.

pub mod ctes;
mod literals;
pub mod plan;
pub mod relation;

pub use plan::{RelationPlan, ScanUse, StorePass, event_ids_of, plan_and_scans, query_only};
pub use relation::{RelationRows, SharedRelation};
