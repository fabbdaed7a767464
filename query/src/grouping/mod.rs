//! GROUP BY a dictionary column (`computer`, `channel`, `provider`, `provider_guid`, and the
//! names and addresses a local session reads as dictionaries), alone or beside up to three
//! string, dictionary or integer columns, or GROUP BY one string view column (many values of
//! up to 12 bytes): the partial aggregation DataFusion plans for it
//! encodes every row of the key in its row format and hashes the encoded bytes, though a batch
//! of a dictionary column holds a handful of distinct strings and one small integer key per
//! row. [`DictionaryGrouping`] is a physical optimizer rule that puts
//! [`DictionaryAggregateExec`] in place of such a partial aggregation (and splits a one-phase
//! aggregation into ours and DataFusion's final phase). It numbers the values of each key
//! column (a dictionary's strings once per batch, then each row by its key; a string view of
//! up to 12 bytes by its 16 bytes; an integer below 65 536 in a table), and a group is a
//! number, or a tuple of numbers for two to four key columns.
//!
//! It takes over only what it computes the same way: one to four group expressions of type
//! `Dictionary(Int32, Utf8)`, `Utf8`, `Utf8View` or an integer of up to 32 bits, at least one
//! of them a dictionary (or a lone `Utf8View`: 8-18 % faster than DataFusion's grouping of
//! views on the 10.5 M-event store), no grouping sets, input in no particular order, and aggregates with a
//! groups accumulator, without DISTINCT or ORDER BY inside them. Its output has the schema,
//! partitioning and meaning of the partial aggregation it replaces, so the final aggregation
//! above it is unchanged. Under memory pressure it does what a partial aggregation may: it
//! sends the groups it holds on early and starts again (the final stage merges them).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, BooleanArray, Int64Array};
use arrow::datatypes::{DataType, SchemaRef};
use arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_expr::expressions::{Column, IsNotNullExpr, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{
    AggregateExec, AggregateMode, aggregate_expressions, evaluate_many,
};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

use keys::Groups;

/// The physical optimizer rule: every eligible partial aggregation becomes a
/// [`DictionaryAggregateExec`]. It runs after DataFusion's own rules.
#[derive(Debug, Default)]
pub struct DictionaryGrouping;

impl PhysicalOptimizerRule for DictionaryGrouping {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            if !eligible(aggregate)? {
                return Ok(Transformed::no(node));
            }
            let final_mode = match aggregate.mode() {
                AggregateMode::Partial => {
                    let exec = DictionaryAggregateExec::try_new(Arc::clone(&node))?;
                    return Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>));
                }
                AggregateMode::Single => AggregateMode::Final,
                AggregateMode::SinglePartitioned => AggregateMode::FinalPartitioned,
                _ => return Ok(Transformed::no(node)),
            };
            // A one-phase aggregation becomes ours and DataFusion's final phase above it (the
            // plan DataFusion makes for two phases), so that its memory stays bounded.
            let partial = DictionaryAggregateExec::try_new(Arc::new(partial_phase(aggregate)?))?;
            let merged = final_phase(aggregate, final_mode, Arc::new(partial))?;
            Ok(Transformed::yes(Arc::new(merged) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "dictionary_grouping"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The raw-input (partial) phase of the one-phase aggregation `aggregate`.
pub(crate) fn partial_phase(aggregate: &AggregateExec) -> Result<AggregateExec> {
    AggregateExec::try_new(
        AggregateMode::Partial,
        aggregate.group_expr().clone(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        Arc::clone(aggregate.input()),
        aggregate.input_schema(),
    )
}

/// The final phase (`mode`: final or final partitioned) of the one-phase aggregation
/// `aggregate`, over `partials`, the output of its partial phase.
pub(crate) fn final_phase(
    aggregate: &AggregateExec,
    mode: AggregateMode,
    partials: Arc<dyn ExecutionPlan>,
) -> Result<AggregateExec> {
    AggregateExec::try_new(
        mode,
        aggregate.group_expr().as_final(),
        aggregate.aggr_expr().to_vec(),
        aggregate.filter_expr().to_vec(),
        partials,
        aggregate.input_schema(),
    )
}

/// Whether a partial aggregation grouped by `keys` computes nothing but rows per group: one
/// or two dictionary keys, every aggregate `count(*)` (or of another non-null value), no
/// FILTER.
fn counts_only(
    keys: &[DataType],
    aggregates: &[Arc<AggregateFunctionExpr>],
    filters: &[Option<Arc<dyn PhysicalExpr>>],
) -> bool {
    let rows = |a: &Arc<AggregateFunctionExpr>| {
        let arguments = a.expressions();
        a.fun().name() == "count"
            && !a.is_distinct()
            && matches!(arguments.as_slice(), [one] if one
                .downcast_ref::<Literal>()
                .is_some_and(|l| !l.value().is_null()))
    };
    keys.len() <= 2
        && keys.iter().all(|key| *key == dictionary_key())
        && filters.iter().all(Option::is_none)
        && aggregates.iter().all(rows)
}

/// The store's dictionary columns' type (and that of the names a local session reads as
/// dictionaries).
pub(crate) fn dictionary_key() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// The group key types taken over: dictionary strings, and beside them plain or view strings
/// or integers of up to 32 bits (`event_id`, `level`, `logon_type`, `status`, ...).
fn key_type(data_type: &DataType) -> bool {
    *data_type == dictionary_key()
        || matches!(data_type, DataType::Utf8 | DataType::Utf8View)
        || integer_key(data_type)
}

fn integer_key(data_type: &DataType) -> bool {
    matches!(
        data_type,
        DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::Int8
            | DataType::Int16
            | DataType::Int32
    )
}

/// Whether this module computes the raw-input phase of `aggregate` the same way.
fn eligible(aggregate: &AggregateExec) -> Result<bool> {
    let group_by = aggregate.group_expr();
    let raw = matches!(
        aggregate.mode(),
        AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
    );
    if !raw
        || group_by.has_grouping_set()
        || !group_by.is_single()
        || !(1..=keys::MAX_KEYS).contains(&group_by.expr().len())
        || aggregate.limit_options().is_some()
        || !aggregate.dynamic_expressions_produced().is_empty()
        || *aggregate.input_order_mode() != InputOrderMode::Linear
    {
        return Ok(false);
    }
    let input_schema = aggregate.input_schema();
    let mut dictionary = false;
    for (expr, _) in group_by.expr() {
        let data_type = expr.data_type(&input_schema)?;
        dictionary |= data_type == dictionary_key();
        if !key_type(&data_type) {
            return Ok(false);
        }
    }
    // Without a dictionary key, DataFusion's own grouping is as good, except for one string
    // view key (GROUP BY client_ip), whose short values are numbered by their 16 bytes.
    let one_view = group_by.expr().len() == 1
        && matches!(
            group_by.expr()[0].0.data_type(&input_schema)?,
            DataType::Utf8View
        );
    if !dictionary && !one_view {
        return Ok(false);
    }
    Ok(aggregate
        .aggr_expr()
        .iter()
        .all(|a| a.groups_accumulator_supported() && !a.is_distinct() && a.order_bys().is_empty()))
}

/// A partial aggregation grouped by a `Dictionary(Int32, Utf8)` expression, or by one string
/// view (see the module documentation). Built from the [`AggregateExec`] it replaces, which it keeps for its schema,
/// properties and expressions.
#[derive(Debug)]
pub struct DictionaryAggregateExec {
    /// The replaced partial aggregation (an [`AggregateExec`]).
    aggregate: Arc<dyn ExecutionPlan>,
    input: Arc<dyn ExecutionPlan>,
    /// The group expressions, their names and types.
    groups: Vec<(Arc<dyn PhysicalExpr>, String)>,
    group_types: Vec<DataType>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    /// The filter `key IS NOT NULL` right below a count of rows per dictionary key, done here
    /// instead: the rows of a null key are not counted (GROUP BY client_ip ... WHERE client_ip
    /// IS NOT NULL: the filter copied every kept row's key into a new batch first).
    absorbed: Option<Arc<dyn ExecutionPlan>>,
    metrics: ExecutionPlanMetricsSet,
}

/// `input` when it is a filter that keeps exactly the rows whose group key `key` (a column of
/// the filter's output) is not null, and nothing else: no projection, no limit.
fn null_key_filter(input: &Arc<dyn ExecutionPlan>, key: &Arc<dyn PhysicalExpr>) -> bool {
    let Some(filter) = input.downcast_ref::<FilterExec>() else {
        return false;
    };
    let Some(key) = key.downcast_ref::<Column>() else {
        return false;
    };
    filter.projection().is_none()
        && filter.fetch().is_none()
        && filter
            .predicate()
            .downcast_ref::<IsNotNullExpr>()
            .and_then(|e| e.arg().downcast_ref::<Column>())
            .is_some_and(|c| c.index() == key.index())
}

impl DictionaryAggregateExec {
    /// Take over `aggregate`, which must be an eligible [`AggregateExec`].
    fn try_new(aggregate: Arc<dyn ExecutionPlan>) -> Result<Self> {
        let Some(agg) = aggregate.downcast_ref::<AggregateExec>() else {
            return Err(DataFusionError::Internal(
                "DictionaryAggregateExec built from a plan that is not an aggregation".into(),
            ));
        };
        let groups = agg.group_expr().expr().to_vec();
        let input_schema = agg.input_schema();
        let group_types = groups
            .iter()
            .map(|(e, _)| e.data_type(&input_schema))
            .collect::<Result<Vec<_>>>()?;
        let aggregates = agg.aggr_expr().to_vec();
        let arguments = aggregate_expressions(&aggregates, agg.mode(), groups.len())?;
        let filters = agg.filter_expr().to_vec();
        let mut input = Arc::clone(agg.input());
        let mut absorbed = None;
        if counts_only(&group_types, &aggregates, &filters)
            && groups.len() == 1
            && null_key_filter(&input, &groups[0].0)
            && let Some(below) = input.children().first()
        {
            let below = Arc::clone(below);
            absorbed = Some(std::mem::replace(&mut input, below));
        }
        Ok(Self {
            input,
            filters,
            absorbed,
            aggregate,
            groups,
            group_types,
            aggregates,
            arguments,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for DictionaryAggregateExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let groups: Vec<&str> = self.groups.iter().map(|(_, n)| n.as_str()).collect();
        let names: Vec<&str> = self.aggregates.iter().map(|a| a.name()).collect();
        write!(
            f,
            "DictionaryAggregateExec: mode=Partial, gby=[{}], aggr=[{}]",
            groups.join(", "),
            names.join(", ")
        )?;
        if self.absorbed.is_some() {
            write!(f, ", null keys skipped")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for DictionaryAggregateExec {
    fn name(&self) -> &str {
        "DictionaryAggregateExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    #[allow(deprecated)]
    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // The absorbed filter is put back over the new input, and taken in again.
        let children = match &self.absorbed {
            Some(filter) => vec![Arc::clone(filter).with_new_children(children)?],
            None => children,
        };
        let aggregate = Arc::clone(&self.aggregate).with_new_children(children)?;
        Ok(Arc::new(Self::try_new(aggregate)?))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let schema = self.schema();
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let accumulators = self
            .aggregates
            .iter()
            .map(|a| a.create_groups_accumulator())
            .collect::<Result<Vec<_>>>()?;
        let reservation = MemoryConsumer::new(format!("DictionaryAggregateExec[{partition}]"))
            .register(context.memory_pool());
        let state = Grouping {
            schema: Arc::clone(&schema),
            keys: self.groups.iter().map(|(e, _)| Arc::clone(e)).collect(),
            aggregates: self.aggregates.clone(),
            arguments: self.arguments.clone(),
            filters: self.filters.clone(),
            accumulators,
            groups: Groups::new(&self.group_types),
            indices: Vec::new(),
            counts: counts_only(&self.group_types, &self.aggregates, &self.filters).then(Vec::new),
            skip_null_keys: self.absorbed.is_some(),
            reservation,
            batch_size: context.session_config().batch_size().max(1),
            metrics: BaselineMetrics::new(&self.metrics, partition),
        };
        let stream = futures::stream::try_unfold(
            (input, state, VecDeque::new(), false),
            |(mut input, mut state, mut ready, mut done)| async move {
                loop {
                    if let Some(batch) = ready.pop_front() {
                        return Ok(Some((batch, (input, state, ready, done))));
                    }
                    if done {
                        return Ok(None);
                    }
                    let elapsed = state.metrics.elapsed_compute().clone();
                    match input.try_next().await? {
                        Some(batch) => {
                            let timer = elapsed.timer();
                            let full = state.update(&batch)?;
                            if full {
                                ready.extend(state.emit()?);
                            }
                            timer.done();
                        }
                        None => {
                            let timer = elapsed.timer();
                            ready.extend(state.emit()?);
                            timer.done();
                            done = true;
                        }
                    }
                }
            },
        );
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.boxed(),
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }
}

/// The running state of one partition.
struct Grouping {
    schema: SchemaRef,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    aggregates: Vec<Arc<AggregateFunctionExpr>>,
    arguments: Vec<Vec<Arc<dyn PhysicalExpr>>>,
    filters: Vec<Option<Arc<dyn PhysicalExpr>>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    groups: Groups,
    /// The group of each row of the batch being added (kept to reuse its allocation).
    indices: Vec<usize>,
    /// The rows of each group, when every aggregate is `count(*)` and the key one dictionary
    /// column: then rows are counted per dictionary key, with no group index per row and no
    /// accumulator (GROUP BY computer: 15 % of its CPU went to the index and the count).
    counts: Option<Vec<i64>>,
    /// Rows whose key is null are not counted (the absorbed filter).
    skip_null_keys: bool,
    reservation: MemoryReservation,
    batch_size: usize,
    metrics: BaselineMetrics,
}

impl Grouping {
    /// Add `batch` to the groups. True when the memory pool refuses the state's growth: the
    /// caller then emits what is held (a partial aggregation's way to stay within memory).
    fn update(&mut self, batch: &RecordBatch) -> Result<bool> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(false);
        }
        let keys = self
            .keys
            .iter()
            .map(|k| k.evaluate(batch)?.into_array(rows))
            .collect::<Result<Vec<_>>>()?;
        if let Some(counts) = &mut self.counts {
            let counted = match keys.as_slice() {
                [key] => self.groups.count(key, counts, self.skip_null_keys)?,
                _ => self.groups.count_pairs(&keys, counts, &mut self.indices)?,
            };
            if !counted {
                return Err(DataFusionError::Internal(
                    "counting by key of columns that are not dictionaries".into(),
                ));
            }
            let size = self.size();
            return Ok(self.reservation.try_resize(size).is_err());
        }
        self.groups.assign(&keys, &mut self.indices)?;
        let arguments = evaluate_many(&self.arguments, batch)?;
        let total = self.groups.len();
        for (i, accumulator) in self.accumulators.iter_mut().enumerate() {
            let filter = match &self.filters[i] {
                Some(f) => Some(f.evaluate(batch)?.into_array(rows)?),
                None => None,
            };
            let filter: Option<&BooleanArray> = match &filter {
                Some(f) => Some(f.as_boolean_opt().ok_or_else(|| {
                    DataFusionError::Internal(format!(
                        "the FILTER of {} is not boolean",
                        self.aggregates[i].name()
                    ))
                })?),
                None => None,
            };
            accumulator.update_batch(&arguments[i], &self.indices, filter, total)?;
        }
        let size = self.size();
        Ok(self.reservation.try_resize(size).is_err())
    }

    fn size(&self) -> usize {
        self.groups.size()
            + self.indices.capacity() * size_of::<usize>()
            + self
                .counts
                .as_ref()
                .map_or(0, |c| c.capacity() * size_of::<i64>())
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// The groups held so far as batches of the partial aggregation's schema; the state is
    /// empty afterwards.
    fn emit(&mut self) -> Result<Vec<RecordBatch>> {
        if let Some(counts) = &mut self.counts {
            self.groups.flush(counts)?;
        }
        if self.groups.len() == 0 {
            return Ok(Vec::new());
        }
        let groups = self.groups.len();
        let mut columns = self.groups.take()?;
        match &mut self.counts {
            Some(counts) => {
                counts.resize(groups, 0);
                let state: ArrayRef = Arc::new(Int64Array::from(std::mem::take(counts)));
                columns.extend(self.accumulators.iter().map(|_| Arc::clone(&state)));
            }
            None => {
                for accumulator in &mut self.accumulators {
                    columns.extend(accumulator.state(EmitTo::All)?);
                }
            }
        }
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        self.reservation.try_resize(self.size())?;
        let mut out = Vec::with_capacity(batch.num_rows().div_ceil(self.batch_size));
        let mut offset = 0;
        while offset < batch.num_rows() {
            let len = self.batch_size.min(batch.num_rows() - offset);
            out.push(batch.slice(offset, len));
            offset += len;
        }
        self.metrics.record_output(batch.num_rows());
        Ok(out)
    }
}

pub(crate) mod keys;
#[cfg(test)]
mod tests;
