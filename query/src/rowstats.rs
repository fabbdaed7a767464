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
//! Local sessions only, like the footer cache it reads. It runs before [`crate::grouping`]
//! (which takes over the partial aggregation of the rows left) and [`crate::pieces`] (which
//! shares those row groups among the partitions).

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray, RecordBatch, UInt64Array};
use arrow::compute::cast;
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetAccessPlan;
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    replace_children_if_necessary,
};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::parquet_to_arrow_schema;
use parquet::file::metadata::ParquetMetaData;

use crate::footers;
use crate::grouping::{final_phase, partial_phase};
use crate::pieces::kept_row_groups;

/// The rule's name.
pub const NAME: &str = "row_group_aggregates";

/// What one aggregate takes from a row group's statistics.
#[derive(Debug)]
enum Wanted {
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
        let schema = aggregate.input_schema();
        let column_name = |c: &Column| schema.field(c.index()).name().clone();
        let groups: Vec<String> = groups.iter().map(column_name).collect();
        let wanted: Vec<Wanted> = wanted
            .into_iter()
            .map(|w| match w {
                Shape::Rows => Wanted::Rows,
                Shape::Values(c) => Wanted::Values(column_name(&c)),
                Shape::Min(c) => Wanted::Min(column_name(&c)),
                Shape::Max(c) => Wanted::Max(column_name(&c)),
            })
            .collect();
        let out = aggregate.schema();
        if out.fields().len() != groups.len() + wanted.len() {
            return Ok(None);
        }
        // Each file once, whole (DataFusion may have cut it into byte ranges).
        let mut files: Vec<&PartitionedFile> = Vec::new();
        let mut seen = HashSet::new();
        for file in config.file_groups.iter().flat_map(FileGroup::iter) {
            if !file.extensions.is_empty() || !file.partition_values.is_empty() {
                return Ok(None);
            }
            if seen.insert(&file.object_meta.location) {
                files.push(file);
            }
        }
        let mut rows: Vec<Vec<ScalarValue>> = vec![Vec::new(); out.fields().len()];
        let mut rest: Vec<PartitionedFile> = Vec::new();
        let mut answered = 0usize;
        let mut rows_answered = 0u64;
        for file in files {
            let Some(footer) = footers::cached(self.footers.as_ref(), &file.object_meta) else {
                return Ok(None);
            };
            let Some(stats) = FileStats::read(&footer, &groups, &wanted) else {
                return Ok(None);
            };
            let matches = match &filter {
                Some(filter) => match filter.row_groups(&footer, file) {
                    Some(matches) => Some(matches),
                    None => return Ok(None),
                },
                None => None,
            };
            let mut plan = ParquetAccessPlan::new_none(footer.num_row_groups());
            let mut left = false;
            for (i, row_group) in footer.row_groups().iter().enumerate() {
                let count = u64::try_from(row_group.num_rows()).unwrap_or(u64::MAX);
                let every_row = match &matches {
                    // No row of it passes the filter: neither answered nor scanned.
                    Some(m) if m[i] == Matches::None => continue,
                    Some(m) => m[i] == Matches::All,
                    None => true,
                };
                let row = if every_row {
                    stats.row(i, count, &wanted)?
                } else {
                    None
                };
                match row {
                    Some(values) => {
                        for (column, value) in rows.iter_mut().zip(values) {
                            column.push(value);
                        }
                        answered += 1;
                        rows_answered += count;
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
}

impl RowGroupAggregates {
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

/// The rows of a partial aggregation taken from row-group statistics: one per row group, in
/// one partition (`RowGroupStatisticsExec: row_groups=N, rows=M` in `EXPLAIN`, M being the
/// table rows they stand for).
#[derive(Debug)]
pub struct RowGroupStatisticsExec {
    batch: RecordBatch,
    rows: u64,
    properties: Arc<PlanProperties>,
}

impl RowGroupStatisticsExec {
    fn new(batch: RecordBatch, rows: u64) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(batch.schema()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            batch,
            rows,
            properties: Arc::new(properties),
        }
    }

    /// The partial aggregation's rows (one per row group answered).
    fn batch(&self) -> &RecordBatch {
        &self.batch
    }
}

impl DisplayAs for RowGroupStatisticsExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "RowGroupStatisticsExec: row_groups={}, rows={}",
            self.batch().num_rows(),
            self.rows
        )
    }
}

impl ExecutionPlan for RowGroupStatisticsExec {
    fn name(&self) -> &str {
        "RowGroupStatisticsExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        Vec::new()
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "RowGroupStatisticsExec has one partition, not {partition}"
            )));
        }
        let batch = self.batch.clone();
        let stream = futures::stream::once(async move { Ok(batch) });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            self.batch.schema(),
            stream,
        )))
    }
}

/// Which rows of a row group pass a filter, as far as its statistics tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Matches {
    None,
    Some,
    All,
}

/// A scan's filter, with what tells a row group none of whose rows pass (DataFusion's pruning
/// predicate) and one all of whose rows pass (the pruning predicate of its negation, where the
/// filtered columns have no nulls).
struct Filter {
    passes: Arc<PruningPredicate>,
    fails: Arc<PruningPredicate>,
    columns: Vec<String>,
    schema: SchemaRef,
}

impl Filter {
    /// None when the filter is not made of comparisons of a column with a value, joined by AND
    /// and OR: the negation of anything else is not written here.
    fn new(
        predicate: &Arc<dyn PhysicalExpr>,
        schema: &SchemaRef,
        source: &ParquetSource,
    ) -> Option<Self> {
        let negated = negate(predicate)?;
        let build = |expr| {
            PruningPredicateBuilder::new()
                .with_file_schema(Arc::clone(schema))
                .with_max_in_list_size(source.max_in_list_size())
                .build(expr)
        };
        let passes = build(Arc::clone(predicate))?;
        let fails = build(negated)?;
        let columns = collect_columns(predicate)
            .iter()
            .map(|c| c.name().to_string())
            .collect();
        Some(Self {
            passes,
            fails,
            columns,
            schema: Arc::clone(schema),
        })
    }

    /// For each row group of `footer`, which of its rows pass; None if a filtered column is
    /// not in the file.
    fn row_groups(&self, footer: &ParquetMetaData, file: &PartitionedFile) -> Option<Vec<Matches>> {
        let kept = |predicate: &Arc<PruningPredicate>| {
            kept_row_groups(footer, &self.schema, Some(predicate), file)
                .map(|kept| kept.into_iter().collect::<HashSet<usize>>())
        };
        let passing = kept(&self.passes)?;
        let failing = kept(&self.fails)?;
        let meta = footer.file_metadata();
        let arrow = parquet_to_arrow_schema(meta.schema_descr(), meta.key_value_metadata()).ok()?;
        let columns = self
            .columns
            .iter()
            .map(|name| ColumnStats::read(name, &arrow, footer))
            .collect::<Option<Vec<_>>>()?;
        let matches = (0..footer.num_row_groups())
            .map(|i| {
                if !passing.contains(&i) {
                    Matches::None
                } else if !failing.contains(&i) && columns.iter().all(|c| c.nulls(i) == Some(0)) {
                    Matches::All
                } else {
                    Matches::Some
                }
            })
            .collect();
        Some(matches)
    }
}

/// `predicate` negated, for comparisons of a column (or a cast of one) with a non-null value
/// joined by AND and OR; None for anything else. On rows where the columns are not null, a
/// row passes the negation exactly when it fails `predicate`.
fn negate(predicate: &Arc<dyn PhysicalExpr>) -> Option<Arc<dyn PhysicalExpr>> {
    let binary = predicate.downcast_ref::<BinaryExpr>()?;
    let (left, right) = (binary.left(), binary.right());
    let op = match binary.op() {
        Operator::And | Operator::Or => {
            let op = if *binary.op() == Operator::And {
                Operator::Or
            } else {
                Operator::And
            };
            return Some(Arc::new(BinaryExpr::new(negate(left)?, op, negate(right)?)));
        }
        Operator::Eq => Operator::NotEq,
        Operator::NotEq => Operator::Eq,
        Operator::Lt => Operator::GtEq,
        Operator::LtEq => Operator::Gt,
        Operator::Gt => Operator::LtEq,
        Operator::GtEq => Operator::Lt,
        _ => return None,
    };
    let column = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>().is_some()
            || e.downcast_ref::<CastExpr>()
                .is_some_and(|c| c.expr().downcast_ref::<Column>().is_some())
    };
    let value = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Literal>()
            .is_some_and(|l| !l.value().is_null())
    };
    if !(column(left) && value(right) || value(left) && column(right)) {
        return None;
    }
    Some(Arc::new(BinaryExpr::new(
        Arc::clone(left),
        op,
        Arc::clone(right),
    )))
}

/// `predicate` (over a filter's input) with its columns found by name in `schema` (the file's).
fn on_schema(
    predicate: &Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
) -> Result<Arc<dyn PhysicalExpr>> {
    Arc::clone(predicate)
        .transform(|e| match e.downcast_ref::<Column>() {
            Some(c) => {
                let index = schema.index_of(c.name())?;
                Ok(Transformed::yes(Arc::new(Column::new(c.name(), index)) as _))
            }
            None => Ok(Transformed::no(e)),
        })
        .data()
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

/// An aggregate as planned, before its column is named.
enum Shape {
    Rows,
    Values(Column),
    Min(Column),
    Max(Column),
}

/// The group columns and aggregates of `aggregate` when it is a partial aggregation that
/// statistics can answer: plain columns as groups (no grouping sets), and only `count(*)`,
/// `count(col)`, `min(col)` and `max(col)`, without DISTINCT, FILTER or ORDER BY.
fn shape(aggregate: &AggregateExec) -> Option<(Vec<Column>, Vec<Shape>)> {
    let group_by = aggregate.group_expr();
    if *aggregate.mode() != AggregateMode::Partial
        || !group_by.is_single()
        || group_by.has_grouping_set()
        || aggregate.limit_options().is_some()
        || aggregate.filter_expr().iter().any(Option::is_some)
    {
        return None;
    }
    let groups = group_by
        .expr()
        .iter()
        .map(|(e, _)| e.downcast_ref::<Column>().cloned())
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
        let column = argument.downcast_ref::<Column>().cloned();
        let literal = argument
            .downcast_ref::<Literal>()
            .is_some_and(|l| !l.value().is_null());
        wanted.push(match (expr.fun().name(), column) {
            ("count", None) if literal => Shape::Rows,
            ("count", Some(c)) => Shape::Values(c),
            ("min", Some(c)) => Shape::Min(c),
            ("max", Some(c)) => Shape::Max(c),
            _ => return None,
        });
    }
    Some((groups, wanted))
}

/// One column's row-group statistics in a file, as Arrow arrays of the file's type.
struct ColumnStats {
    mins: ArrayRef,
    maxes: ArrayRef,
    min_exact: BooleanArray,
    max_exact: BooleanArray,
    nulls: UInt64Array,
}

impl ColumnStats {
    fn read(name: &str, arrow: &Schema, footer: &ParquetMetaData) -> Option<Self> {
        let parquet = footer.file_metadata().schema_descr();
        // A count that was not written is not taken for zero.
        let converter = StatisticsConverter::try_new(name, arrow, parquet)
            .ok()?
            .with_missing_null_counts_as_zero(false);
        let row_groups = footer.row_groups();
        Some(Self {
            mins: converter.row_group_mins(row_groups).ok()?,
            maxes: converter.row_group_maxes(row_groups).ok()?,
            min_exact: converter.row_group_is_min_value_exact(row_groups).ok()?,
            max_exact: converter.row_group_is_max_value_exact(row_groups).ok()?,
            nulls: converter.row_group_null_counts(row_groups).ok()?,
        })
    }

    /// Row group `i`'s null count, if written.
    fn nulls(&self, i: usize) -> Option<u64> {
        self.nulls.is_valid(i).then(|| self.nulls.value(i))
    }

    /// Row group `i`'s exact minimum (`max` false) or maximum, if written and exact.
    fn bound(&self, i: usize, max: bool) -> Result<Option<ScalarValue>> {
        let (values, exact) = if max {
            (&self.maxes, &self.max_exact)
        } else {
            (&self.mins, &self.min_exact)
        };
        if !values.is_valid(i) || !exact.is_valid(i) || !exact.value(i) {
            return Ok(None);
        }
        Ok(Some(ScalarValue::try_from_array(values, i)?))
    }

    /// A null of the column's type.
    fn null(&self) -> Result<ScalarValue> {
        ScalarValue::try_new_null(self.mins.data_type())
    }
}

/// The statistics of a file's group columns and aggregated columns.
struct FileStats {
    groups: Vec<ColumnStats>,
    /// One per aggregate (None for `count(*)`).
    aggregates: Vec<Option<ColumnStats>>,
}

impl FileStats {
    fn read(footer: &ParquetMetaData, groups: &[String], wanted: &[Wanted]) -> Option<Self> {
        let meta = footer.file_metadata();
        let arrow = parquet_to_arrow_schema(meta.schema_descr(), meta.key_value_metadata()).ok()?;
        let groups = groups
            .iter()
            .map(|name| ColumnStats::read(name, &arrow, footer))
            .collect::<Option<Vec<_>>>()?;
        let aggregates = wanted
            .iter()
            .map(|w| match w {
                Wanted::Rows => Some(None),
                Wanted::Values(c) | Wanted::Min(c) | Wanted::Max(c) => {
                    ColumnStats::read(c, &arrow, footer).map(Some)
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { groups, aggregates })
    }

    /// The partial aggregation's row for row group `i` of `rows` rows (group values, then one
    /// state per aggregate), or None when its statistics do not answer it.
    fn row(&self, i: usize, rows: u64, wanted: &[Wanted]) -> Result<Option<Vec<ScalarValue>>> {
        let mut row = Vec::with_capacity(self.groups.len() + wanted.len());
        for column in &self.groups {
            let value = match column.nulls(i) {
                Some(n) if n == rows => column.null()?,
                Some(0) => {
                    let (Some(min), Some(max)) = (column.bound(i, false)?, column.bound(i, true)?)
                    else {
                        return Ok(None);
                    };
                    if min != max {
                        return Ok(None);
                    }
                    min
                }
                _ => return Ok(None),
            };
            row.push(value);
        }
        for (w, column) in wanted.iter().zip(&self.aggregates) {
            let value = match (w, column) {
                (Wanted::Rows, _) => ScalarValue::Int64(i64::try_from(rows).ok()),
                (Wanted::Values(_), Some(column)) => {
                    let Some(n) = column.nulls(i) else {
                        return Ok(None);
                    };
                    ScalarValue::Int64(i64::try_from(rows.saturating_sub(n)).ok())
                }
                (Wanted::Min(_) | Wanted::Max(_), Some(column)) => {
                    let max = matches!(w, Wanted::Max(_));
                    match column.nulls(i) {
                        Some(n) if n == rows => column.null()?,
                        Some(_) => match column.bound(i, max)? {
                            Some(value) => value,
                            None => return Ok(None),
                        },
                        None => return Ok(None),
                    }
                }
                _ => return Ok(None),
            };
            row.push(value);
        }
        Ok(Some(row))
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::pieces::tests::{local, local_with, pieces_of, text};
    use arrow::array::{DictionaryArray, Int32Array, StringArray, TimestampMicrosecondArray};
    use arrow::datatypes::{DataType, Field, Int32Type, TimeUnit};
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

    const ROWS_PER_GROUP: usize = 100;
    const LONG: &str = "Microsoft-Windows-A-Channel-Name-Longer-Than-Sixteen-Bytes/Operational";

    /// Ten row groups of 100 rows, clustered like a segment: 0-2 Security/4624 with a user on
    /// every row; 3 Security, 4624 and 4625; 4 Security and System; 5-6 System/7045 without a
    /// user; 7 System/7045, a user on some rows; 8-9 a channel name longer than the statistics
    /// keep (16 bytes), so its bounds are not exact.
    fn write_file(path: &std::path::Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new(
                "channel",
                DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8)),
                false,
            ),
            Field::new("event_id", DataType::Int32, false),
            Field::new(
                "time_created",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("user", DataType::Utf8, true),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
            .set_write_batch_size(ROWS_PER_GROUP)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_statistics_truncate_length(Some(16))
            .build();
        let n = 10 * ROWS_PER_GROUP;
        let group = |i: usize| i / ROWS_PER_GROUP;
        let channel: DictionaryArray<Int32Type> = (0..n)
            .map(|i| match group(i) {
                0..=3 => "Security",
                4 if i % 2 == 0 => "Security",
                4..=7 => "System",
                _ => LONG,
            })
            .collect();
        let event_id = Int32Array::from_iter_values((0..n).map(|i| match group(i) {
            0..=2 => 4624,
            3 | 4 if i % 3 == 0 => 4625,
            3 | 4 => 4624,
            5..=7 => 7045,
            _ => 1,
        }));
        // Times go down in row group 7 and jump back: min and max are not the first and last.
        let time = TimestampMicrosecondArray::from_iter_values((0..n).map(|i| {
            let i = i as i64;
            1_767_225_600_000_000 + if group(i as usize) == 7 { -i } else { i } * 1_000_003
        }))
        .with_timezone("UTC");
        let user: StringArray = (0..n)
            .map(|i| match group(i) {
                5 | 6 => None,
                7 if i % 4 != 0 => None,
                _ => Some(["alice", "bob", "carol"][i % 3]),
            })
            .collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(channel),
            Arc::new(event_id),
            Arc::new(time),
            Arc::new(user),
        ];
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
        let file = std::fs::File::create(path).unwrap();
        let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    /// The rows the plan of `sql` takes from statistics (one per row group), if any.
    async fn answered(ctx: &SessionContext, sql: &str) -> Option<usize> {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut rows = None;
        plan.apply(|node| {
            if let Some(exec) = node.downcast_ref::<RowGroupStatisticsExec>() {
                rows = Some(exec.batch().num_rows());
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        rows
    }

    /// The row groups the plan of `sql` still scans, in order.
    async fn scanned(ctx: &SessionContext, sql: &str) -> Vec<usize> {
        let mut read = pieces_of(ctx, sql).await.concat();
        read.sort_unstable();
        read
    }

    /// Row groups that hold one group are answered from their statistics, and only the others
    /// are scanned: inexact (truncated) bounds, several values, or nulls beside values keep a
    /// row group in the scan. Every answer is DataFusion's own, with and without the rule's
    /// shapes (a LIKE filter, sum, avg, an aggregate's FILTER).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn row_groups_of_one_group_are_answered_from_statistics() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_file(&path);
        let path = path.to_string_lossy().into_owned();
        let ours = local(&path).await;
        let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        plain
            .register_parquet("t", &path, ParquetReadOptions::default())
            .await
            .unwrap();

        let per_channel = "SELECT channel, min(time_created) AS first, max(time_created) AS last, \
            count(*) AS n FROM t GROUP BY channel ORDER BY channel";
        assert_eq!(answered(&ours, per_channel).await, Some(7));
        assert_eq!(scanned(&ours, per_channel).await, vec![4, 8, 9]);

        let per_event = "SELECT channel, event_id, count(*) AS n FROM t \
            GROUP BY channel, event_id ORDER BY n DESC, channel, event_id";
        assert_eq!(answered(&ours, per_event).await, Some(6));
        assert_eq!(scanned(&ours, per_event).await, vec![3, 4, 8, 9]);
        // The row groups left are shared by both partitions.
        let pieces = pieces_of(&ours, per_event).await;
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!(pieces.iter().all(|p| !p.is_empty()), "{pieces:?}");

        // A user column null on some rows of row group 7: its count and bounds are exact, but
        // as a group column it holds two groups there (a user and null).
        let users = "SELECT channel, count(user) AS users, min(user) AS lo, max(user) AS hi \
            FROM t GROUP BY channel ORDER BY channel";
        assert_eq!(scanned(&ours, users).await, vec![4, 8, 9]);
        let by_user = "SELECT user, count(*) AS n FROM t GROUP BY user ORDER BY user";
        assert_eq!(answered(&ours, by_user).await, Some(2));
        assert_eq!(scanned(&ours, by_user).await, vec![0, 1, 2, 3, 4, 7, 8, 9]);

        // DataFusion plans DISTINCT as a grouping by both columns first: that one is ours.
        let distinct = "SELECT channel, count(DISTINCT event_id) AS ids FROM t GROUP BY channel ORDER BY channel";
        assert_eq!(answered(&ours, distinct).await, Some(6));

        // Under a filter: a row group all of whose rows pass it (by its statistics, and without
        // nulls in the filtered columns) is answered; one none of whose rows pass is dropped.
        let one_event = "SELECT channel, count(*) AS n FROM t WHERE event_id = 4624 GROUP BY channel ORDER BY channel";
        assert_eq!(answered(&ours, one_event).await, Some(3));
        assert_eq!(scanned(&ours, one_event).await, vec![3, 4]);
        // Rows 150-549: row groups 2-4 whole, 1 and 5 in part.
        let window = "SELECT channel, count(*) AS n, max(time_created) AS last FROM t \
            WHERE time_created >= TIMESTAMP '2026-01-01T00:02:30Z' \
            AND time_created < TIMESTAMP '2026-01-01T00:09:10Z' GROUP BY channel ORDER BY channel";
        assert_eq!(answered(&ours, window).await, Some(2));
        assert_eq!(scanned(&ours, window).await, vec![1, 4, 5]);
        // Every user passes; row group 7 also has nulls, which do not.
        let named = "SELECT channel, count(*) AS n FROM t WHERE user >= 'a' OR user = 'zed' \
            GROUP BY channel ORDER BY channel";
        assert_eq!(answered(&ours, named).await, Some(4));
        assert_eq!(scanned(&ours, named).await, vec![4, 7, 8, 9]);

        let not_ours = [
            "SELECT channel, count(*) AS n FROM t WHERE user LIKE 'a%' GROUP BY channel ORDER BY channel",
            "SELECT channel, count(*) AS n FROM t WHERE event_id = 4624 AND user LIKE 'a%' GROUP BY channel ORDER BY channel",
            "SELECT channel, sum(event_id) AS s FROM t GROUP BY channel ORDER BY channel",
            "SELECT channel, avg(event_id) AS a FROM t GROUP BY channel ORDER BY channel",
            "SELECT channel, count(*) FILTER (WHERE user = 'bob') AS n FROM t GROUP BY channel ORDER BY channel",
        ];
        for q in not_ours {
            assert_eq!(answered(&ours, q).await, None, "{q}");
        }
        for q in [
            per_channel,
            per_event,
            users,
            by_user,
            distinct,
            one_event,
            window,
            named,
        ]
        .into_iter()
        .chain(not_ours)
        {
            let ours = text(&ours, q).await;
            assert_eq!(ours, text(&plain, q).await, "{q}");
            assert!(!ours.is_empty());
        }
        // A scan of one partition: DataFusion plans one aggregation phase, which the rule
        // splits in two around the row groups it answers.
        ours.sql("SET datafusion.optimizer.repartition_file_min_size = 1000000000")
            .await
            .unwrap();
        for q in [
            "SELECT count(*) AS n FROM t WHERE event_id = 4624",
            "SELECT count(*) AS n, max(time_created) AS last FROM t WHERE channel = 'System'",
            per_event,
        ] {
            assert_eq!(text(&ours, q).await, text(&plain, q).await, "{q}");
        }
        assert_eq!(
            answered(&ours, "SELECT count(*) AS n FROM t WHERE event_id = 4624").await,
            Some(3)
        );
        // One thread: DataFusion plans one aggregation phase.
        let one = local_with(&path, 1).await;
        for q in [
            "SELECT count(*) AS n FROM t WHERE event_id = 4624",
            per_event,
            window,
        ] {
            assert!(answered(&one, q).await.is_some(), "{q}");
            assert_eq!(text(&one, q).await, text(&plain, q).await, "{q}");
        }
        let per_channel = text(&ours, per_channel).await;
        assert!(per_channel.contains(LONG), "{per_channel}");
    }
}
