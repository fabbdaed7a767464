//! GROUP BY answered from row-group statistics where a row group holds one group.
//!
//! A segment of the store is clustered by channel, event id and time, so most of its row groups
//! hold a single channel, and most a single pair of channel and event id (on the 10.5 M-event
//! store: 75 and 67 of 81 row groups, 9.7 M and 8.7 M of the 10.5 M rows). For such a row group
//! the footer already answers `count(*)`, `count(col)`, `min(col)` and `max(col)` grouped by
//! those columns: the group is the value each group column holds alone (its minimum equals its
//! maximum and it has no nulls, or it is null on every row), and the aggregates are the row
//! count, the rows less the nulls, and the exact minimum and maximum.
//!
//! [`RowGroupAggregates`] finds a partial aggregation of that kind over a Parquet scan. It turns
//! each such row group into one row of the partial aggregation's output (its state), from the
//! footer that planning cached ([`RowGroupStatisticsExec`]), and leaves the scan only the other
//! row groups. The final aggregation above merges both, as it merges the partial results of
//! the scan's partitions. A one-phase aggregation (one partition) is split into both phases
//! around them. A row group any of whose statistics is missing, inexact (a truncated string)
//! or not a single group is read as before, and so is every file whose footer is not cached.
//!
//! Under a filter (in the scan, or a `FilterExec` over it), a row group is answered only when
//! every row of it passes: the filter is made of comparisons of a column with a value joined
//! by AND and OR, the pruning predicate of its negation rules the row group out, and the
//! filtered columns have no nulls there. A row group none of whose rows can pass is dropped
//! from both; any other is scanned and filtered as before.
//!
//! A row group only some of whose rows pass is split by page when every aggregate is
//! `count(*)` and the filter reads one column ([`pages`]): the pages of that column whose
//! statistics show every row passing are counted from the page index, read at planning (local
//! stores) and kept in the footer cache for the scan, and the scan reads only the pages where
//! some rows pass.
//!
//! Local sessions only, like the footer cache it reads. It runs before [`crate::grouping`]
//! (which takes over the partial aggregation of the rows left) and [`crate::pieces`] (which
//! shares those row groups among the partitions).

mod exec;
mod filter;
mod pages;
mod stats;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use arrow::compute::cast;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, Partitioning, replace_children_if_necessary};

use datafusion::execution::object_store::ObjectStoreUrl;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::ParquetMetaData;

use crate::footers;
use crate::grouping::{final_phase, partial_phase};
use crate::pieces::whole_files;

use exec::RowGroupStatisticsExec;
use filter::{Filter, Matches, on_schema};
use stats::FileStats;

/// The rule's name.
pub const NAME: &str = "row_group_aggregates";

/// What one aggregate takes from a row group's statistics.
#[derive(Debug)]
pub(super) enum Wanted {
    /// `count(*)`: the rows.
    Rows,
    /// `count(col)`: the rows less the column's nulls.
    Values(String),
    /// `min(col)`: the exact minimum (null when every value is).
    Min(String),
    /// `max(col)`: the exact maximum (null when every value is).
    Max(String),
}

/// See the module documentation.
#[derive(Debug)]
pub struct RowGroupAggregates {
    footers: Arc<FileMetadataCache>,
}

impl RowGroupAggregates {
    /// The rule for sessions of `runtime`, whose metadata cache holds the footers.
    pub fn new(runtime: &RuntimeEnv) -> Self {
        let footers = runtime.cache_manager.get_file_metadata_cache();
        Self { footers }
    }

    /// `footer` (of `file`) with its page index: as cached, or read from the local file and
    /// put in the cache (the scan then finds it there) when it is small beside the cache's
    /// limit; None for a file that is not local or has no page index.
    fn with_page_index(
        &self,
        footer: &Arc<ParquetMetaData>,
        file: &PartitionedFile,
        url: &ObjectStoreUrl,
    ) -> Option<Arc<ParquetMetaData>> {
        if footer.column_index().is_some() && footer.offset_index().is_some() {
            return Some(Arc::clone(footer));
        }
        let indexed = pages::read_page_index(footer, &file.object_meta, url)?;
        // Kept only when it takes a small share of the cache: a large one would push other
        // files' footers out, and this rule gives up on a file whose footer is not there.
        if indexed.memory_size() <= self.footers.cache_limit() / 8 {
            footers::keep(
                self.footers.as_ref(),
                &file.object_meta,
                Arc::clone(&indexed),
            );
        }
        Some(indexed)
    }

    /// `node` (a partial aggregation) with the row groups its statistics answer taken out of
    /// its scan, which reads the others on `partitions`; None when it stays as it is.
    fn rewrite(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        partitions: usize,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
            return Ok(None);
        };
        let Some((groups, wanted)) = shape(aggregate) else {
            return Ok(None);
        };
        // The scan, under a filter of its own or not, and a round-robin split of its batches
        // (DataFusion's, when the scan has one partition).
        let mut between: Vec<&Arc<dyn ExecutionPlan>> = Vec::new();
        let mut filter_node = None;
        let mut scan = aggregate.input();
        loop {
            if let Some(filter) = scan.downcast_ref::<FilterExec>() {
                if filter_node.is_some() {
                    return Ok(None);
                }
                filter_node = Some(scan);
                between.push(scan);
                scan = filter.input();
            } else if let Some(split) = scan.downcast_ref::<RepartitionExec>()
                && matches!(split.partitioning(), Partitioning::RoundRobinBatch(_))
            {
                between.push(scan);
                scan = split.input();
            } else {
                break;
            }
        }
        let Some(exec) = scan.downcast_ref::<DataSourceExec>() else {
            return Ok(None);
        };
        let Some((config, source)) = exec.downcast_to_file_source::<ParquetSource>() else {
            return Ok(None);
        };
        if config.limit.is_some() {
            return Ok(None);
        }
        let file_schema = config.file_schema();
        let predicate = match filter_node.and_then(|f| f.downcast_ref::<FilterExec>()) {
            Some(filter) => Some(on_schema(filter.predicate(), file_schema)?),
            None => FileSource::filter(source),
        };
        let filter = match predicate {
            Some(predicate) => match Filter::new(&predicate, file_schema, source) {
                Some(filter) => Some(filter),
                None => return Ok(None),
            },
            None => None,
        };
        // Only `count(*)`: a page's rows are all a page gives.
        let only_rows = wanted.iter().all(|w| matches!(w, Wanted::Rows));
        let out = aggregate.schema();
        if out.fields().len() != groups.len() + wanted.len() {
            return Ok(None);
        }
        // Each file once, whole (DataFusion may have cut it into byte ranges), and read whole.
        let Some(files) = whole_files(config) else {
            return Ok(None);
        };
        if files
            .iter()
            .any(|f| f.extensions.contains::<ParquetAccessPlan>())
        {
            return Ok(None);
        }
        let mut rows: Vec<Vec<ScalarValue>> = vec![Vec::new(); out.fields().len()];
        let mut rest: Vec<PartitionedFile> = Vec::new();
        let mut answered = 0usize;
        let mut rows_answered = 0u64;
        for file in files {
            let Some(footer) = footers::cached(self.footers.as_ref(), &file.object_meta) else {
                return Ok(None);
            };
            let meta = footer.file_metadata();
            let Ok(arrow) = parquet_to_arrow_schema(meta.schema_descr(), meta.key_value_metadata())
            else {
                return Ok(None);
            };
            let Some(stats) = FileStats::read(&footer, &arrow, &groups, &wanted) else {
                return Ok(None);
            };
            let matches = match &filter {
                Some(filter) => match filter.row_groups(&footer, &arrow, file) {
                    Some(matches) => Some(matches),
                    None => return Ok(None),
                },
                None => None,
            };
            let mut plan = ParquetAccessPlan::new_none(footer.num_row_groups());
            let mut left = false;
            // The footer with its page index, read when a row group needs it.
            let mut indexed: Option<Option<Arc<ParquetMetaData>>> = None;
            for (i, row_group) in footer.row_groups().iter().enumerate() {
                let count = u64::try_from(row_group.num_rows()).unwrap_or(u64::MAX);
                let every_row = match &matches {
                    // No row of it passes the filter: neither answered nor scanned.
                    Some(m) if m[i] == Matches::None => continue,
                    Some(m) => m[i] == Matches::All,
                    None => true,
                };
                // The row group's answer: every row from its statistics; or, when some rows
                // pass in a row group of one group, the rows of the pages that pass whole
                // (the page index is read the first time), with the other pages to read.
                let mut answer = None;
                if every_row {
                    answer = stats.row(i, count, &wanted)?.map(|v| (v, count, None));
                } else if let (Some(filter), true) = (&filter, only_rows)
                    && stats.row(i, count, &wanted)?.is_some()
                {
                    let indexed = indexed.get_or_insert_with(|| {
                        self.with_page_index(&footer, file, &config.object_store_url)
                    });
                    if let Some(split) = indexed
                        .as_ref()
                        .and_then(|indexed| pages::split(filter, indexed, &arrow, i))
                    {
                        answer = stats
                            .row_counting(i, count, split.rows, &wanted)?
                            .map(|v| (v, split.rows, split.rest));
                    }
                }
                match answer {
                    Some((values, answered_rows, rest)) => {
                        for (column, value) in rows.iter_mut().zip(values) {
                            column.push(value);
                        }
                        answered += 1;
                        rows_answered += answered_rows;
                        if let Some(selection) = rest {
                            plan.set(i, RowGroupAccess::Selection(selection));
                            left = true;
                        }
                    }
                    None => {
                        plan.scan(i);
                        left = true;
                    }
                }
            }
            if left {
                let mut part = file.clone();
                part.range = None;
                part.statistics = None;
                part.extensions.insert(plan);
                rest.push(part);
            }
        }
        if answered == 0 {
            return Ok(None);
        }
        let mut columns: Vec<ArrayRef> = Vec::with_capacity(rows.len());
        for (values, field) in rows.into_iter().zip(out.fields()) {
            let array = ScalarValue::iter_to_array(values)?;
            columns.push(cast(&array, field.data_type())?);
        }
        let batch = RecordBatch::try_new(Arc::clone(&out), columns)?;
        let answers: Arc<dyn ExecutionPlan> =
            Arc::new(RowGroupStatisticsExec::new(batch, rows_answered));
        if rest.is_empty() {
            return Ok(Some(answers));
        }
        let mut scan: Arc<dyn ExecutionPlan> =
            DataSourceExec::from_data_source(rest_of_scan(config, rest, partitions));
        for node in between.into_iter().rev() {
            scan = replace_children_if_necessary(Arc::clone(node), vec![scan])?;
        }
        let partial = replace_children_if_necessary(Arc::clone(node), vec![scan])?;
        Ok(Some(UnionExec::try_new(vec![partial, answers])?))
    }

    /// [`Self::rewrite`] for a partial aggregation, and for a one-phase one over a single
    /// partition (DataFusion plans those when the scan is not split), which becomes the
    /// partial aggregation rewritten and a final one over its partitions gathered. The result
    /// has as many partitions as `node` when that was one.
    fn rewrite_any(
        &self,
        node: &Arc<dyn ExecutionPlan>,
        partitions: usize,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
            return Ok(None);
        };
        let single = node.properties().output_partitioning().partition_count() == 1;
        if *aggregate.mode() == AggregateMode::Single {
            if aggregate.limit_options().is_some() {
                return Ok(None);
            }
            let partial: Arc<dyn ExecutionPlan> = Arc::new(partial_phase(aggregate)?);
            let Some(rewritten) = self.rewrite(&partial, partitions)? else {
                return Ok(None);
            };
            let gathered = Arc::new(CoalescePartitionsExec::new(rewritten));
            let merged = final_phase(aggregate, AggregateMode::Final, gathered)?;
            return Ok(Some(Arc::new(merged)));
        }
        let Some(rewritten) = self.rewrite(node, partitions)? else {
            return Ok(None);
        };
        if single
            && rewritten
                .properties()
                .output_partitioning()
                .partition_count()
                != 1
        {
            return Ok(Some(Arc::new(CoalescePartitionsExec::new(rewritten))));
        }
        Ok(Some(rewritten))
    }
}

/// `config` reading only `rest` (files with the row groups left), dealt out to the session's
/// `partitions`, even if some get none: [`crate::pieces`] shares the row groups out.
fn rest_of_scan(
    config: &FileScanConfig,
    rest: Vec<PartitionedFile>,
    partitions: usize,
) -> FileScanConfig {
    let partitions = partitions.max(config.file_groups.len()).max(1);
    let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); partitions];
    for (i, file) in rest.into_iter().enumerate() {
        groups[i % partitions].push(file);
    }
    let groups = groups.into_iter().map(FileGroup::new).collect();
    FileScanConfigBuilder::from(config.clone())
        .with_file_groups(groups)
        .build()
}

/// The names of the group columns, and the aggregates, of `aggregate` when it is a partial
/// aggregation that statistics can answer: plain columns as groups (no grouping sets), and
/// only `count(*)`, `count(col)`, `min(col)` and `max(col)`, without DISTINCT, FILTER or
/// ORDER BY.
fn shape(aggregate: &AggregateExec) -> Option<(Vec<String>, Vec<Wanted>)> {
    let group_by = aggregate.group_expr();
    if *aggregate.mode() != AggregateMode::Partial
        || !group_by.is_single()
        || group_by.has_grouping_set()
        || aggregate.limit_options().is_some()
        || aggregate.filter_expr().iter().any(Option::is_some)
    {
        return None;
    }
    let schema = aggregate.input_schema();
    let name = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>()
            .map(|c| schema.field(c.index()).name().clone())
    };
    let groups = group_by
        .expr()
        .iter()
        .map(|(e, _)| name(e))
        .collect::<Option<Vec<_>>>()?;
    let mut wanted = Vec::with_capacity(aggregate.aggr_expr().len());
    for expr in aggregate.aggr_expr() {
        if expr.is_distinct() || !expr.order_bys().is_empty() {
            return None;
        }
        if expr.state_fields().ok()?.len() != 1 {
            return None;
        }
        let arguments = expr.expressions();
        let [argument] = arguments.as_slice() else {
            return None;
        };
        let column = name(argument);
        let literal = argument
            .downcast_ref::<Literal>()
            .is_some_and(|l| !l.value().is_null());
        wanted.push(match (expr.fun().name(), column) {
            ("count", None) if literal => Wanted::Rows,
            ("count", Some(c)) => Wanted::Values(c),
            ("min", Some(c)) => Wanted::Min(c),
            ("max", Some(c)) => Wanted::Max(c),
            _ => return None,
        });
    }
    Some((groups, wanted))
}

impl PhysicalOptimizerRule for RowGroupAggregates {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partitions = config.execution.target_partitions;
        plan.transform_up(|node| match self.rewrite_any(&node, partitions)? {
            Some(new) => Ok(Transformed::yes(new)),
            None => Ok(Transformed::no(node)),
        })
        .data()
    }

    fn name(&self) -> &str {
        NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}
