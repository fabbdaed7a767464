//! Expressions over one dictionary column, computed once per value of the dictionary instead
//! of once per row.
//!
//! The names a store holds (`computer`, `provider`, `channel`, user, server and share names)
//! are read as dictionaries: a batch of 8 192 rows holds a few dozen distinct strings and a
//! small integer key per row. Functions take plain strings, so DataFusion casts such a column
//! to strings first and then works row by row: `lower(provider) = 'microsoft-windows-
//! smbclient'` copies out and lowercases every row's provider, `split_part(CAST(computer AS
//! VARCHAR), '.', 1)` splits every row's computer name, and a CASE that yields a name builds a
//! new dictionary by hashing every row. In the rule pack's 200-rule benchmark these casts and
//! functions were about 13 % of the CPU.
//!
//! [`DictionaryExprs`] is a physical optimizer rule that wraps each largest subexpression of a
//! filter or projection that reads one dictionary column and nothing else (through casts,
//! functions, comparisons, CASE, LIKE, IN lists) in a [`PerValue`] expression. Per batch,
//! [`PerValue`] evaluates the subexpression over the dictionary's values, each once, plus a
//! null (what a row whose key is null gets), and gives each row the result of its key, with
//! `take`: a boolean or a string per row, or a new key when the result is itself a dictionary.
//!
//! The answers are those of the subexpression evaluated row by row, which it falls back to
//! for batches of fewer than 1 024 rows or with more values than half their rows, when the
//! column is not a dictionary after all, and when evaluating over all the values fails (a
//! value that no row refers to may fail where the rows do not: the rows decide). Volatile
//! functions, subqueries and expressions this rule does not know are left alone.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, DictionaryArray, PrimitiveArray, RecordBatch,
    UInt32Array, downcast_dictionary_array,
};
use arrow::buffer::{BooleanBuffer, NullBuffer};
use arrow::datatypes::{ArrowDictionaryKeyType, ArrowNativeType, DataType, Field, FieldRef};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue, internal_err};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::ScalarFunctionExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CaseExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, LikeExpr,
    Literal, NegativeExpr, NotExpr, TryCastExpr,
};
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::ProjectionExec;

#[cfg(test)]
mod tests;

/// Fewer rows than this are evaluated row by row: a batch that an earlier conjunct cut to a few
/// hundred rows costs less so than the fixed cost of going through the values (500 simple
/// rules, whose filter on `lower(provider)` runs after one on the user name, ran 1.06x slower
/// without this bound).
const MIN_ROWS: usize = 1024;

/// The physical optimizer rule: in every filter and projection, each largest subexpression
/// that does work on one dictionary column alone becomes a [`PerValue`].
#[derive(Debug, Default)]
pub struct DictionaryExprs;

impl PhysicalOptimizerRule for DictionaryExprs {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                let schema = filter.input().schema();
                let predicate = per_value(Arc::clone(filter.predicate()), &schema)?;
                if !predicate.transformed {
                    return Ok(Transformed::no(node));
                }
                let exec = FilterExecBuilder::from(filter)
                    .with_predicate(predicate.data)
                    .build()?;
                return Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>));
            }
            if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
                let schema = projection.input().schema();
                let mut changed = false;
                let mut exprs = Vec::with_capacity(projection.expr().len());
                for p in projection.expr() {
                    let expr = per_value(Arc::clone(&p.expr), &schema)?;
                    changed |= expr.transformed;
                    exprs.push(ProjectionExpr {
                        expr: expr.data,
                        alias: p.alias.clone(),
                    });
                }
                if !changed {
                    return Ok(Transformed::no(node));
                }
                let exec = ProjectionExec::try_new_with_schema_metadata(
                    exprs,
                    Arc::clone(projection.input()),
                    projection.schema().as_ref(),
                )?;
                return Ok(Transformed::yes(Arc::new(exec) as Arc<dyn ExecutionPlan>));
            }
            Ok(Transformed::no(node))
        })
        .data()
    }

    fn name(&self) -> &str {
        "dictionary_exprs"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `expr` with each largest subexpression worth computing per dictionary value wrapped in a
/// [`PerValue`]; `schema` is the schema of the rows it is evaluated on.
pub(crate) fn per_value(
    expr: Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    expr.transform_down(|e| {
        if e.downcast_ref::<PerValue>().is_some() {
            return Ok(Transformed::new(e, false, TreeNodeRecursion::Jump));
        }
        match lone_dictionary_column(&e, schema) {
            Some(column) if does_work(&e) => {
                let wrapped = PerValue::try_new(e, column)?;
                Ok(Transformed::new(
                    Arc::new(wrapped) as Arc<dyn PhysicalExpr>,
                    true,
                    TreeNodeRecursion::Jump,
                ))
            }
            _ => Ok(Transformed::no(e)),
        }
    })
}

/// The one column `expr` reads, when that is a dictionary column of `schema` and every node of
/// `expr` is one whose result for a row depends on that row's value alone.
fn lone_dictionary_column(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Column> {
    let mut column: Option<Column> = None;
    let mut fits = true;
    let _ = expr.apply(|e| {
        if let Some(c) = e.downcast_ref::<Column>() {
            match &column {
                Some(seen) if seen.index() != c.index() => fits = false,
                _ => column = Some(c.clone()),
            }
        } else if !per_row(e) {
            fits = false;
        }
        Ok(if fits {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    let column = column.filter(|_| fits)?;
    let field = schema.fields().get(column.index())?;
    (field.name() == column.name() && matches!(field.data_type(), DataType::Dictionary(..)))
        .then_some(column)
}

/// Node kinds whose result for a row is a function of their children's results for that row.
fn per_row(e: &Arc<dyn PhysicalExpr>) -> bool {
    if let Some(f) = e.downcast_ref::<ScalarFunctionExpr>() {
        return !f.is_volatile_node();
    }
    e.downcast_ref::<Literal>().is_some()
        || e.downcast_ref::<CastExpr>().is_some()
        || e.downcast_ref::<TryCastExpr>().is_some()
        || e.downcast_ref::<BinaryExpr>().is_some()
        || e.downcast_ref::<NotExpr>().is_some()
        || e.downcast_ref::<IsNullExpr>().is_some()
        || e.downcast_ref::<IsNotNullExpr>().is_some()
        || e.downcast_ref::<CaseExpr>().is_some()
        || e.downcast_ref::<LikeExpr>().is_some()
        || e.downcast_ref::<InListExpr>().is_some()
        || e.downcast_ref::<NegativeExpr>().is_some()
}

/// Whether `expr` does row-by-row work that a dictionary's values would spare: a cast, a
/// function, a CASE or a LIKE. (A comparison of the column with a literal, or an IN list,
/// DataFusion already makes over the values.)
fn does_work(expr: &Arc<dyn PhysicalExpr>) -> bool {
    expr.exists(|e| {
        Ok(e.downcast_ref::<CastExpr>().is_some()
            || e.downcast_ref::<TryCastExpr>().is_some()
            || e.downcast_ref::<ScalarFunctionExpr>().is_some()
            || e.downcast_ref::<CaseExpr>().is_some()
            || e.downcast_ref::<LikeExpr>().is_some())
    })
    .unwrap_or(false)
}

/// An expression over one dictionary column, evaluated once per value of each batch's
/// dictionary (see the module's documentation).
#[derive(Debug, Eq)]
pub struct PerValue {
    /// The expression as planned, over the batch's columns (what rows fall back to).
    expr: Arc<dyn PhysicalExpr>,
    /// The column it reads.
    column: Column,
    /// The same expression over a batch of one column: the column's values, one row each.
    over_values: Arc<dyn PhysicalExpr>,
}

impl PerValue {
    /// Wrap `expr`, which reads `column` and no other.
    pub fn try_new(expr: Arc<dyn PhysicalExpr>, column: Column) -> Result<PerValue> {
        let over_values =
            Arc::clone(&expr)
                .transform_up(|e| {
                    Ok(match e.downcast_ref::<Column>() {
                        Some(c) if c.index() == column.index() => Transformed::yes(Arc::new(
                            Column::new(c.name(), 0),
                        )
                            as Arc<dyn PhysicalExpr>),
                        Some(_) => return internal_err!("PerValue over a second column: {e}"),
                        None => Transformed::no(e),
                    })
                })
                .data()?;
        Ok(PerValue {
            expr,
            column,
            over_values,
        })
    }

    /// Evaluate over `dictionary`'s values and give each of `rows` rows its key's result;
    /// `None` when that would not pay or failed.
    fn by_values(&self, dictionary: &ArrayRef, rows: usize) -> Option<ColumnarValue> {
        downcast_dictionary_array! {
            dictionary => self.by_values_of(dictionary, rows),
            _ => None,
        }
    }

    fn by_values_of<K: ArrowDictionaryKeyType>(
        &self,
        array: &DictionaryArray<K>,
        rows: usize,
    ) -> Option<ColumnarValue> {
        let values = array.values();
        let n = values.len();
        if rows < MIN_ROWS || n > rows / 2 {
            return None;
        }
        // Row `i` holds value `i`; the last row has a null key, as the rows it stands for
        // (some functions tell a null key from a key to a null value: `split_part` gives ''
        // for the one and null for the other).
        let distinct_keys: Option<Vec<K::Native>> = (0..=n).map(K::Native::from_usize).collect();
        let valid: Vec<bool> = (0..=n).map(|i| i < n).collect();
        let distinct_keys = PrimitiveArray::<K>::new(distinct_keys?.into(), Some(valid.into()));
        let distinct = DictionaryArray::<K>::try_new(distinct_keys, Arc::clone(values)).ok()?;
        let schema = Arc::new(Schema::new(vec![Field::new(
            self.column.name(),
            array.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(distinct)]).ok()?;
        let results = self
            .over_values
            .evaluate(&batch)
            .and_then(|r| r.into_array(n + 1))
            .ok()?;
        let keys = array.keys();
        // Row `r`'s result: that of its key, or of the null row.
        let at = |r: usize| {
            if keys.is_valid(r) {
                keys.values()[r].as_usize().min(n)
            } else {
                n
            }
        };
        if let Some(results) = results.as_boolean_opt() {
            return Some(booleans(results, keys, n, at));
        }
        // Null keys pick the null row's result: `take` gives them null, which is that result
        // unless the expression makes something of a null (`coalesce`).
        let taken = if keys.null_count() == 0 || results.is_null(n) {
            arrow::compute::take(results.as_ref(), keys, None).ok()?
        } else {
            let of_row: UInt32Array = (0..keys.len())
                .map(|r| at(r) as u32)
                .collect::<Vec<_>>()
                .into();
            arrow::compute::take(results.as_ref(), &of_row, None).ok()?
        };
        Some(ColumnarValue::Array(taken))
    }
}

/// Each row's boolean from its value's (`at(row)`: its index in `results`), by lookup; the
/// same boolean for every row as one scalar (a filter on the provider of a batch of one
/// provider).
fn booleans<K: ArrowDictionaryKeyType>(
    results: &BooleanArray,
    keys: &PrimitiveArray<K>,
    n: usize,
    at: impl Fn(usize) -> usize,
) -> ColumnarValue {
    // 0 false, 1 true, 2 null.
    let table: Vec<u8> = (0..=n)
        .map(|i| {
            if results.is_null(i) {
                2
            } else {
                u8::from(results.value(i))
            }
        })
        .collect();
    let seen = if keys.null_count() == 0 {
        &table[..n]
    } else {
        &table[..]
    };
    if let Some(&first) = seen.first()
        && first != 2
        && seen.iter().all(|&t| t == first)
    {
        return ColumnarValue::Scalar(ScalarValue::Boolean(Some(first == 1)));
    }
    let len = keys.len();
    let bits = if keys.null_count() == 0 {
        let keys = keys.values();
        BooleanBuffer::collect_bool(len, |r| table[keys[r].as_usize().min(n)] == 1)
    } else {
        BooleanBuffer::collect_bool(len, |r| table[at(r)] == 1)
    };
    let nulls = table
        .contains(&2)
        .then(|| NullBuffer::new(BooleanBuffer::collect_bool(len, |r| table[at(r)] != 2)));
    ColumnarValue::Array(Arc::new(BooleanArray::new(bits, nulls)))
}

// `over_values` follows from `expr` and `column`.
impl PartialEq for PerValue {
    fn eq(&self, other: &Self) -> bool {
        self.expr.eq(&other.expr) && self.column == other.column
    }
}

impl Hash for PerValue {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.expr.hash(state);
        self.column.hash(state);
    }
}

impl fmt::Display for PerValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "per_value({})", self.expr)
    }
}

impl PhysicalExpr for PerValue {
    fn return_field(&self, input_schema: &Schema) -> Result<FieldRef> {
        self.expr.return_field(input_schema)
    }

    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.expr.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.expr.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if let Some(column) = batch.columns().get(self.column.index())
            && let Some(out) = self.by_values(column, batch.num_rows())
        {
            return Ok(out);
        }
        self.expr.evaluate(batch)
    }

    /// The expression as planned: whatever walks or rewrites a plan's expressions (the
    /// columns they read, a change of column indices) sees it.
    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.expr]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let [expr] = <[_; 1]>::try_from(children).map_err(|c| {
            datafusion::error::DataFusionError::Internal(format!(
                "PerValue takes one child, got {}",
                c.len()
            ))
        })?;
        // Still one column (its index may have moved): wrap it again; otherwise the
        // expression as it now is, evaluated row by row.
        let mut columns = Vec::new();
        let _ = expr.apply(|e| {
            if let Some(c) = e.downcast_ref::<Column>() {
                columns.push(c.clone());
            }
            Ok(TreeNodeRecursion::Continue)
        });
        match columns.first() {
            Some(c) if columns.iter().all(|o| o.index() == c.index()) => {
                let c = c.clone();
                Ok(Arc::new(PerValue::try_new(expr, c)?))
            }
            _ => Ok(expr),
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.expr.fmt_sql(f)
    }
}
