//! GROUP BY a dictionary column (`computer`, `channel`, `provider`, `provider_guid`), alone or
//! beside one string or integer column: the partial aggregation DataFusion plans for it
//! encodes every row of the key in its row format and hashes the encoded bytes, though a batch
//! of a dictionary column holds a handful of distinct strings and one small integer key per
//! row. [`DictionaryGrouping`] is a physical optimizer rule that puts
//! [`DictionaryAggregateExec`] in place of such a partial aggregation (and splits a one-phase
//! aggregation into ours and DataFusion's final phase). It numbers the values of each key
//! column (a dictionary's strings once per batch, then each row by its key; a string view of
//! up to 12 bytes by its 16 bytes; an integer below 65 536 in a table), and a group is a
//! number, or a pair of numbers for two key columns.
//!
//! It takes over only what it computes the same way: one or two group expressions of type
//! `Dictionary(Int32, Utf8)`, `Utf8`, `Utf8View` or an integer of up to 32 bits, at least one
//! of them a dictionary, no grouping sets, input in no particular order, and aggregates with a
//! groups accumulator, without DISTINCT or ORDER BY inside them. Its output has the schema,
//! partitioning and meaning of the partial aggregation it replaces, so the final aggregation
//! above it is unchanged. Under memory pressure it does what a partial aggregation may: it
//! sends the groups it holds on early and starts again (the final stage merges them).

use std::collections::VecDeque;
use std::fmt;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, Int8Array, Int16Array, Int32Array,
    StringArray, StringViewArray, UInt8Array, UInt16Array, UInt32Array,
};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Int8Type, Int16Type, Int32Type, SchemaRef, UInt8Type, UInt16Type,
    UInt32Type,
};
use arrow::record_batch::RecordBatch;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, HashMap, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::aggregate::AggregateFunctionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{
    AggregateExec, AggregateMode, aggregate_expressions, evaluate_many,
};
use datafusion::physical_plan::metrics::{BaselineMetrics, ExecutionPlanMetricsSet, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, InputOrderMode, PlanProperties,
};
use futures::{StreamExt, TryStreamExt};

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
            let partial = AggregateExec::try_new(
                AggregateMode::Partial,
                aggregate.group_expr().clone(),
                aggregate.aggr_expr().to_vec(),
                aggregate.filter_expr().to_vec(),
                Arc::clone(aggregate.input()),
                aggregate.input_schema(),
            )?;
            let partial = DictionaryAggregateExec::try_new(Arc::new(partial))?;
            let merged = AggregateExec::try_new(
                final_mode,
                aggregate.group_expr().as_final(),
                aggregate.aggr_expr().to_vec(),
                aggregate.filter_expr().to_vec(),
                Arc::new(partial),
                aggregate.input_schema(),
            )?;
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

/// The store's dictionary columns' type.
fn dictionary_key() -> DataType {
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
        || !(1..=2).contains(&group_by.expr().len())
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
    // Without a dictionary key, DataFusion's own grouping is as good.
    if !dictionary {
        return Ok(false);
    }
    Ok(aggregate
        .aggr_expr()
        .iter()
        .all(|a| a.groups_accumulator_supported() && !a.is_distinct() && a.order_bys().is_empty()))
}

/// A partial aggregation grouped by one `Dictionary(Int32, Utf8)` expression (see the module
/// documentation). Built from the [`AggregateExec`] it replaces, which it keeps for its schema,
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
    metrics: ExecutionPlanMetricsSet,
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
        Ok(Self {
            input: Arc::clone(agg.input()),
            filters: agg.filter_expr().to_vec(),
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
        )
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
            + self.accumulators.iter().map(|a| a.size()).sum::<usize>()
    }

    /// The groups held so far as batches of the partial aggregation's schema; the state is
    /// empty afterwards.
    fn emit(&mut self) -> Result<Vec<RecordBatch>> {
        if self.groups.len() == 0 {
            return Ok(Vec::new());
        }
        let mut columns = self.groups.take()?;
        for accumulator in &mut self.accumulators {
            columns.extend(accumulator.state(EmitTo::All)?);
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

/// No group assigned yet to a dictionary key (see [`KeyColumn::memo`]).
const UNSET: u32 = u32::MAX;

/// The distinct strings of one key column, numbered in order of arrival; null has its number.
#[derive(Default)]
struct Strings {
    ids: HashMap<Box<str>, u32>,
    /// Number → its string (None for null).
    names: Vec<Option<Box<str>>>,
    null: Option<u32>,
    /// Bytes of the strings held.
    bytes: usize,
}

impl Strings {
    fn len(&self) -> usize {
        self.names.len()
    }

    fn size(&self) -> usize {
        // Each string is held twice (map key and name) plus the table's and vector's slots.
        2 * self.bytes
            + self.ids.capacity() * (size_of::<(Box<str>, u32)>() + 1)
            + self.names.capacity() * size_of::<Option<Box<str>>>()
    }

    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.names.len() as u32;
        self.bytes += text.len();
        self.ids.insert(text.into(), id);
        self.names.push(Some(text.into()));
        id
    }

    fn null(&mut self) -> u32 {
        *self.null.get_or_insert_with(|| {
            self.names.push(None);
            (self.names.len() - 1) as u32
        })
    }

    /// A column of `data_type` whose row i is the string numbered `ids[i]`.
    fn column(&self, ids: &[u32], data_type: &DataType) -> Result<ArrayRef> {
        let name = |id: &u32| self.names[*id as usize].as_deref();
        Ok(match data_type {
            DataType::Utf8 => Arc::new(ids.iter().map(name).collect::<StringArray>()),
            DataType::Utf8View => Arc::new(ids.iter().map(name).collect::<StringViewArray>()),
            _ => {
                let keys: Int32Array = ids.iter().map(|id| name(id).map(|_| *id as i32)).collect();
                let values: StringArray = self
                    .names
                    .iter()
                    .map(|n| Some(n.as_deref().unwrap_or("")))
                    .collect();
                Arc::new(DictionaryArray::<Int32Type>::try_new(
                    keys,
                    Arc::new(values),
                )?)
            }
        })
    }
}

/// The distinct values of one integer key column, numbered in order of arrival; null has its
/// number. A value below 65 536 finds its number in a table, others in a map.
#[derive(Default)]
struct Numbers {
    small: Vec<u32>,
    large: HashMap<u32, u32>,
    /// Number → its value as 32 bits (None for null).
    values: Vec<Option<u32>>,
    null: Option<u32>,
}

impl Numbers {
    fn size(&self) -> usize {
        self.small.capacity() * size_of::<u32>()
            + self.large.capacity() * (size_of::<(u32, u32)>() + 1)
            + self.values.capacity() * size_of::<Option<u32>>()
    }

    fn number(&mut self, value: Option<u32>) -> u32 {
        let Some(v) = value else {
            return *self.null.get_or_insert_with(|| {
                self.values.push(None);
                (self.values.len() - 1) as u32
            });
        };
        let next = self.values.len() as u32;
        let slot = if v < 1 << 16 {
            if self.small.is_empty() {
                self.small = vec![UNSET; 1 << 16];
            }
            &mut self.small[v as usize]
        } else {
            self.large.entry(v).or_insert(UNSET)
        };
        if *slot == UNSET {
            *slot = next;
            self.values.push(Some(v));
        }
        *slot
    }

    /// A column of `data_type` whose row i is the value numbered `ids[i]`.
    fn column(&self, ids: &[u32], data_type: &DataType) -> Result<ArrayRef> {
        let bits: Vec<Option<u32>> = ids.iter().map(|id| self.values[*id as usize]).collect();
        Ok(match data_type {
            DataType::Int8 => Arc::new(Int8Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as i8)),
            )),
            DataType::Int16 => Arc::new(Int16Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as i16)),
            )),
            DataType::Int32 => Arc::new(Int32Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as i32)),
            )),
            DataType::UInt8 => Arc::new(UInt8Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as u8)),
            )),
            DataType::UInt16 => Arc::new(UInt16Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as u16)),
            )),
            _ => Arc::new(UInt32Array::from_iter(bits)),
        })
    }
}

/// One key column: its strings or numbers, and how the rows of a batch find theirs.
struct KeyColumn {
    data_type: DataType,
    strings: Strings,
    numbers: Numbers,
    /// The dictionary `memo` belongs to: batches of one column chunk share theirs.
    memo_of: Option<ArrayRef>,
    /// Dictionary key → string number, filled as keys are met.
    memo: Vec<u32>,
    /// A string view of at most 12 bytes (the string is inside it) → string number.
    short: HashMap<u128, u32>,
}

impl KeyColumn {
    fn new(data_type: &DataType) -> Self {
        KeyColumn {
            data_type: data_type.clone(),
            strings: Strings::default(),
            numbers: Numbers::default(),
            memo_of: None,
            memo: Vec::new(),
            short: HashMap::default(),
        }
    }

    fn len(&self) -> usize {
        self.strings.len() + self.numbers.values.len()
    }

    /// A column of the key's type whose row i is the key numbered `ids[i]`.
    fn column(&self, ids: &[u32]) -> Result<ArrayRef> {
        if integer_key(&self.data_type) {
            self.numbers.column(ids, &self.data_type)
        } else {
            self.strings.column(ids, &self.data_type)
        }
    }

    fn size(&self) -> usize {
        self.strings.size()
            + self.numbers.size()
            + self.memo.capacity() * size_of::<u32>()
            + self.short.capacity() * (size_of::<(u128, u32)>() + 1)
    }

    /// The string number of each row of `array` into `out`.
    fn assign(&mut self, array: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        out.reserve(array.len());
        let wrong = || key_type_error(array.data_type());
        match &self.data_type {
            DataType::Utf8 => {
                let strings = array.as_string_opt::<i32>().ok_or_else(wrong)?;
                for row in 0..strings.len() {
                    out.push(if strings.is_null(row) {
                        self.strings.null()
                    } else {
                        self.strings.intern(strings.value(row))
                    });
                }
            }
            DataType::Utf8View => {
                let views = array.as_string_view_opt().ok_or_else(wrong)?;
                for (row, &view) in views.views().iter().enumerate() {
                    let id = if views.is_null(row) {
                        self.strings.null()
                    } else if view as u32 <= 12 {
                        match self.short.get(&view) {
                            Some(&id) => id,
                            None => {
                                let id = self.strings.intern(views.value(row));
                                self.short.insert(view, id);
                                id
                            }
                        }
                    } else {
                        self.strings.intern(views.value(row))
                    };
                    out.push(id);
                }
            }
            t if integer_key(t) => self.assign_integers(array, out)?,
            _ => self.assign_dictionary(array, out)?,
        }
        Ok(())
    }

    fn assign_integers(&mut self, array: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        fn bits<T: ArrowPrimitiveType>(
            array: &ArrayRef,
            to_u32: impl Fn(T::Native) -> u32,
            numbers: &mut Numbers,
            out: &mut Vec<u32>,
        ) -> Result<()> {
            let values = array
                .as_primitive_opt::<T>()
                .ok_or_else(|| key_type_error(array.data_type()))?;
            for (row, &v) in values.values().iter().enumerate() {
                let value = (!values.is_null(row)).then(|| to_u32(v));
                out.push(numbers.number(value));
            }
            Ok(())
        }
        let n = &mut self.numbers;
        match array.data_type() {
            DataType::UInt8 => bits::<UInt8Type>(array, u32::from, n, out),
            DataType::UInt16 => bits::<UInt16Type>(array, u32::from, n, out),
            DataType::UInt32 => bits::<UInt32Type>(array, |v| v, n, out),
            DataType::Int8 => bits::<Int8Type>(array, |v| v as u8 as u32, n, out),
            DataType::Int16 => bits::<Int16Type>(array, |v| v as u16 as u32, n, out),
            DataType::Int32 => bits::<Int32Type>(array, |v| v as u32, n, out),
            other => Err(key_type_error(other)),
        }
    }

    fn assign_dictionary(&mut self, array: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        let wrong = || key_type_error(array.data_type());
        let dict = array.as_dictionary_opt::<Int32Type>().ok_or_else(wrong)?;
        let values = dict.values().as_string_opt::<i32>().ok_or_else(wrong)?;
        let same = self
            .memo_of
            .as_ref()
            .is_some_and(|m| Arc::ptr_eq(m, dict.values()));
        if !same {
            self.memo.clear();
            self.memo.resize(values.len(), UNSET);
            self.memo_of = Some(Arc::clone(dict.values()));
        }
        let key_nulls = dict.keys().nulls();
        for (row, &key) in dict.keys().values().iter().enumerate() {
            let id = if key_nulls.is_some_and(|n| n.is_null(row)) {
                self.strings.null()
            } else {
                let Some(k) = usize::try_from(key).ok().filter(|k| *k < values.len()) else {
                    return Err(DataFusionError::Internal(format!(
                        "dictionary key {key} out of range ({} values)",
                        values.len()
                    )));
                };
                match self.memo[k] {
                    UNSET => {
                        let id = if values.is_null(k) {
                            self.strings.null()
                        } else {
                            self.strings.intern(values.value(k))
                        };
                        self.memo[k] = id;
                        id
                    }
                    id => id,
                }
            };
            out.push(id);
        }
        Ok(())
    }
}

/// The groups of one partition: with one key column, a group is a string number of it; with
/// two, a pair of string numbers, numbered in order of arrival.
struct Groups {
    columns: Vec<KeyColumn>,
    /// Both columns' string numbers of a pair (high and low half) → group.
    pairs: HashMap<u64, u32>,
    /// Group → its pair.
    tuples: Vec<[u32; 2]>,
    /// The string numbers of each key column for the batch being added.
    ids: Vec<Vec<u32>>,
}

impl Groups {
    fn new(types: &[DataType]) -> Self {
        Groups {
            columns: types.iter().map(KeyColumn::new).collect(),
            pairs: HashMap::default(),
            tuples: Vec::new(),
            ids: vec![Vec::new(); types.len()],
        }
    }

    fn len(&self) -> usize {
        match self.columns.as_slice() {
            [one] => one.len(),
            _ => self.tuples.len(),
        }
    }

    fn size(&self) -> usize {
        self.columns.iter().map(KeyColumn::size).sum::<usize>()
            + self.pairs.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.tuples.capacity() * size_of::<[u32; 2]>()
            + self
                .ids
                .iter()
                .map(|v| v.capacity() * size_of::<u32>())
                .sum::<usize>()
    }

    /// The group of each row (`keys`: one array per key column) into `out`.
    fn assign(&mut self, keys: &[ArrayRef], out: &mut Vec<usize>) -> Result<()> {
        for ((column, array), ids) in self.columns.iter_mut().zip(keys).zip(&mut self.ids) {
            column.assign(array, ids)?;
        }
        out.clear();
        match self.ids.as_slice() {
            [one] => out.extend(one.iter().map(|&id| id as usize)),
            [a, b] => {
                for (&x, &y) in a.iter().zip(b) {
                    let key = (u64::from(x) << 32) | u64::from(y);
                    let next = self.tuples.len() as u32;
                    let group = *self.pairs.entry(key).or_insert(next);
                    if group == next {
                        self.tuples.push([x, y]);
                    }
                    out.push(group as usize);
                }
            }
            _ => {
                return Err(DataFusionError::Internal(format!(
                    "DictionaryAggregateExec with {} key columns",
                    self.ids.len()
                )));
            }
        }
        Ok(())
    }

    /// The key columns of the groups, row i for group i; the state is empty afterwards.
    fn take(&mut self) -> Result<Vec<ArrayRef>> {
        let mut out = Vec::with_capacity(self.columns.len());
        match self.columns.as_slice() {
            [one] => {
                let ids: Vec<u32> = (0..one.len() as u32).collect();
                out.push(one.column(&ids)?);
            }
            columns => {
                for (i, column) in columns.iter().enumerate() {
                    let ids: Vec<u32> = self.tuples.iter().map(|t| t[i]).collect();
                    out.push(column.column(&ids)?);
                }
            }
        }
        let types: Vec<DataType> = self.columns.iter().map(|c| c.data_type.clone()).collect();
        *self = Groups::new(&types);
        Ok(out)
    }
}

fn key_type_error(found: &DataType) -> DataFusionError {
    DataFusionError::Internal(format!(
        "DictionaryAggregateExec: a key column of {found} where the plan said otherwise"
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cells::ColumnCells;
    use crate::session::{SessionOptions, new_context};
    use arrow::datatypes::{Field, Schema};
    use datafusion::datasource::MemTable;
    use datafusion::prelude::SessionContext;

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("computer", dictionary_key(), true),
            Field::new("n", DataType::UInt32, true),
            Field::new("note", DataType::Utf8, true),
            Field::new("tag", DataType::Utf8View, true),
        ]))
    }

    fn batch(keys: Int32Array, values: &ArrayRef, n: Vec<Option<u32>>) -> RecordBatch {
        let note: StringArray = n
            .iter()
            .map(|v| v.map(|v| format!("note {}", v % 7)))
            .collect();
        // Short views (the string inside), long ones (in a buffer), nulls.
        let tag: StringViewArray = n
            .iter()
            .map(|v| {
                v.map(|v| match v % 3 {
                    0 => format!("u{}", v % 4),
                    1 => format!("a-much-longer-user-name-{}", v % 5),
                    _ => "u1".to_string(),
                })
            })
            .collect();
        let dict = DictionaryArray::<Int32Type>::try_new(keys, Arc::clone(values)).unwrap();
        RecordBatch::try_new(
            schema(),
            vec![
                Arc::new(dict),
                Arc::new(UInt32Array::from(n)),
                Arc::new(note),
                Arc::new(tag),
            ],
        )
        .unwrap()
    }

    /// Two partitions whose batches have every shape of dictionary: a null key, a key to a
    /// null value, two keys to the same string, one dictionary shared by two batches (the
    /// memo kept), a dictionary much larger than its batch, an empty batch.
    fn partitions() -> Vec<Vec<RecordBatch>> {
        let shared: ArrayRef = Arc::new(StringArray::from(vec![
            Some("WS-B"),
            Some("WS-A"),
            None,
            Some("DC-1"),
        ]));
        let first = batch(
            Int32Array::from(vec![Some(0), Some(1), None, Some(2), Some(3), Some(1)]),
            &shared,
            vec![Some(1), Some(2), Some(3), None, Some(5), Some(6)],
        );
        let second = batch(
            Int32Array::from(vec![Some(3), Some(3), Some(0), None]),
            &shared,
            vec![Some(10), None, Some(12), Some(13)],
        );
        let twice: ArrayRef = Arc::new(StringArray::from(vec!["WS-A", "WS-A", "NAS-9"]));
        let third = batch(
            Int32Array::from(vec![0, 1, 2, 1, 0]),
            &twice,
            vec![Some(20), Some(21), Some(22), Some(23), None],
        );
        let many: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..1000).map(|i| format!("HOST-{i:04}")),
        ));
        let fourth = batch(
            Int32Array::from(vec![999, 3, 999, 500]),
            &many,
            vec![Some(30), Some(31), Some(32), Some(33)],
        );
        let empty = batch(Int32Array::from(Vec::<i32>::new()), &many, vec![]);
        vec![vec![first, empty, second], vec![third, fourth]]
    }

    async fn rows(ctx: &SessionContext, sql: &str) -> Vec<String> {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        let mut out = Vec::new();
        for b in &batches {
            let cols: Vec<ColumnCells<'_>> = b
                .columns()
                .iter()
                .map(|c| ColumnCells::new(c.as_ref(), None).unwrap())
                .collect();
            for r in 0..b.num_rows() {
                let cells: Vec<String> = cols.iter().map(|c| c.cell(r).to_text("NULL")).collect();
                out.push(cells.join("|"));
            }
        }
        out
    }

    fn register(ctx: &SessionContext, parts: Vec<Vec<RecordBatch>>) {
        let table = MemTable::try_new(schema(), parts).unwrap();
        ctx.register_table("t", Arc::new(table)).unwrap();
    }

    const QUERIES: [&str; 10] = [
        "SELECT computer, count(*), count(note), sum(n), min(n), max(n), avg(n) FROM t \
         GROUP BY computer ORDER BY computer NULLS FIRST",
        "SELECT computer, count(*) FILTER (WHERE n > 4), min(note), max(note) FROM t \
         GROUP BY computer ORDER BY computer NULLS FIRST",
        "SELECT lower(c), n FROM (SELECT computer AS c, count(*) AS n FROM t GROUP BY computer) \
         ORDER BY n DESC, c LIMIT 3",
        "SELECT computer, count(DISTINCT n) FROM t GROUP BY computer ORDER BY computer",
        "SELECT computer, note, count(*), sum(n) FROM t GROUP BY computer, note \
         ORDER BY computer NULLS FIRST, note NULLS FIRST",
        "SELECT tag, computer, count(*), max(note) FROM t GROUP BY tag, computer \
         ORDER BY tag NULLS FIRST, computer NULLS FIRST",
        "SELECT computer, tag, n FROM (SELECT computer, tag, count(*) AS n, row_number() OVER \
         (PARTITION BY computer ORDER BY count(*) DESC, tag) AS rn FROM t GROUP BY computer, tag) \
         WHERE rn <= 2 ORDER BY computer NULLS FIRST, n DESC, tag",
        "SELECT computer, n, count(*) FROM t GROUP BY computer, n \
         ORDER BY computer NULLS FIRST, n NULLS FIRST",
        "SELECT computer, big, count(*) FROM (SELECT computer, n * arrow_cast(5000, 'UInt32') \
         AS big FROM t) GROUP BY computer, big ORDER BY computer NULLS FIRST, big NULLS FIRST",
        "SELECT small, computer, count(*) FROM (SELECT computer, arrow_cast(n, 'Int16') - \
         arrow_cast(20, 'Int16') AS small FROM t) GROUP BY small, computer \
         ORDER BY small NULLS FIRST, computer NULLS FIRST",
    ];

    /// The rule's plans give DataFusion's own answers, and the rule is in the plan of the
    /// shapes it takes over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn grouping_by_a_dictionary_column_gives_datafusions_answers() {
        let opts = SessionOptions {
            threads: Some(2),
            ..SessionOptions::default()
        };
        let ours = new_context(&opts).unwrap();
        register(&ours, partitions());
        let plain = SessionContext::new_with_config(
            datafusion::prelude::SessionConfig::new().with_target_partitions(2),
        );
        register(&plain, partitions());
        for q in QUERIES {
            let expected = rows(&plain, q).await;
            assert!(expected.len() >= 3, "{q}: {expected:?}");
            assert_eq!(rows(&ours, q).await, expected, "{q}");
        }
        let plan = rows(&ours, &format!("EXPLAIN {}", QUERIES[0]))
            .await
            .join("\n");
        assert!(plan.contains("DictionaryAggregateExec"), "{plan}");
        let plan = rows(&plain, &format!("EXPLAIN {}", QUERIES[0]))
            .await
            .join("\n");
        assert!(!plan.contains("DictionaryAggregateExec"), "{plan}");
    }

    /// Under a memory limit too small for its groups, the partial aggregation sends them on
    /// early (more rows out than groups), and what it sends adds up to the true counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn groups_beyond_the_memory_limit_are_sent_on_early() {
        let names: ArrayRef = Arc::new(StringArray::from_iter_values(
            (0..4096).map(|i| format!("{i:05}-{}", "x".repeat(200))),
        ));
        let batches: Vec<RecordBatch> = (0..64)
            .map(|b| {
                let keys = Int32Array::from_iter_values((0..4096).map(|i| (i * 7 + b) % 4096));
                let n = (0..4096).map(|i| Some(i as u32)).collect();
                batch(keys, &names, n)
            })
            .collect();
        let limited = new_context(&SessionOptions {
            memory_limit: Some(1 << 20),
            threads: Some(1),
            spill_dir: None,
        })
        .unwrap();
        register(&limited, vec![batches]);
        let q = "SELECT computer, count(*) AS c FROM t GROUP BY computer";
        let plan = limited
            .sql(q)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut ours = None;
        plan.apply(|node| {
            if node.is::<DictionaryAggregateExec>() {
                ours = Some(Arc::clone(node));
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        let ours = ours.expect("the rule takes the GROUP BY");
        let out: Vec<RecordBatch> = ours
            .execute(0, limited.task_ctx())
            .unwrap()
            .try_collect()
            .await
            .unwrap();
        let mut counts = std::collections::BTreeMap::<String, i64>::new();
        let mut rows = 0;
        for b in &out {
            let groups = b.column(0).as_dictionary::<Int32Type>();
            let values = groups.values().as_string::<i32>();
            let partial = b.column(1).as_primitive::<arrow::datatypes::Int64Type>();
            for r in 0..b.num_rows() {
                let key = groups.keys().value(r) as usize;
                *counts.entry(values.value(key).to_string()).or_default() += partial.value(r);
            }
            rows += b.num_rows();
        }
        assert!(
            rows > 4096,
            "{rows} rows: the groups were not sent on early"
        );
        assert_eq!(counts.len(), 4096);
        assert!(counts.values().all(|&c| c == 64));
    }
}
