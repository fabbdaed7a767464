//! What a row group's statistics tell of a filter: none, some or all of its rows pass.

use std::collections::HashSet;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, UInt64Array};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::Result;
use datafusion::common::pruning::PruningStatistics;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetSource;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, CastExpr, Column, Literal};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::ParquetMetaData;

use crate::pieces::kept_row_groups;

use super::stats::ColumnStats;

/// Which rows of a row group pass a filter, as far as its statistics tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Matches {
    None,
    Some,
    All,
}

/// A scan's filter, with what tells a row group none of whose rows pass (DataFusion's pruning
/// predicate) and one all of whose rows pass (the pruning predicate of its negation, where the
/// filtered columns have no nulls).
pub(super) struct Filter {
    passes: Arc<PruningPredicate>,
    fails: Arc<PruningPredicate>,
    columns: Vec<String>,
    schema: SchemaRef,
}

impl Filter {
    /// None when the filter is not made of comparisons of a column with a value, joined by AND
    /// and OR: the negation of anything else is not written here.
    pub(super) fn new(
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
    pub(super) fn row_groups(
        &self,
        footer: &ParquetMetaData,
        arrow: &Schema,
        file: &PartitionedFile,
    ) -> Option<Vec<Matches>> {
        let kept = |predicate: &Arc<PruningPredicate>| {
            kept_row_groups(footer, &self.schema, Some(predicate), file)
                .map(|kept| kept.into_iter().collect::<HashSet<usize>>())
        };
        let passing = kept(&self.passes)?;
        let failing = kept(&self.fails)?;
        let columns = self
            .columns
            .iter()
            .map(|name| ColumnStats::read(name, arrow, footer))
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

    /// The one column the filter reads, if it reads one.
    pub(super) fn column(&self) -> Option<&str> {
        match self.columns.as_slice() {
            [name] => Some(name),
            _ => None,
        }
    }

    /// For each data page of the filter's one column in row group `row_group`, which of its
    /// rows pass and how many rows it has, from the page index `footer` carries; None when
    /// the filter reads more than one column (their pages do not line up) or the index lacks
    /// the column.
    pub(super) fn pages(
        &self,
        footer: &ParquetMetaData,
        arrow: &Schema,
        row_group: usize,
    ) -> Option<Vec<(Matches, u64)>> {
        let column = self.column()?;
        let (column_index, offset_index) = (footer.column_index()?, footer.offset_index()?);
        let converter =
            StatisticsConverter::try_new(column, arrow, footer.file_metadata().schema_descr())
                .ok()?
                .with_missing_null_counts_as_zero(false);
        let at = [row_group];
        let stats = PageStats {
            column,
            mins: converter
                .data_page_mins(column_index, offset_index, &at)
                .ok()?,
            maxes: converter
                .data_page_maxes(column_index, offset_index, &at)
                .ok()?,
            nulls: converter
                .data_page_null_counts(column_index, offset_index, &at)
                .ok()?,
            rows: converter
                .data_page_row_counts(offset_index, footer.row_groups(), &at)
                .ok()??,
        };
        if stats.rows.null_count() > 0 || stats.mins.len() != stats.rows.len() {
            return None;
        }
        let passing = self.passes.prune(&stats).ok()?;
        let failing = self.fails.prune(&stats).ok()?;
        let pages = (0..stats.rows.len())
            .map(|p| {
                let no_nulls = stats.nulls.is_valid(p) && stats.nulls.value(p) == 0;
                let matches = if !passing.get(p).copied().unwrap_or(true) {
                    Matches::None
                } else if !failing.get(p).copied().unwrap_or(true) && no_nulls {
                    Matches::All
                } else {
                    Matches::Some
                };
                (matches, stats.rows.value(p))
            })
            .collect();
        Some(pages)
    }
}

/// The page statistics of one column in one row group: each page is a container.
struct PageStats<'a> {
    column: &'a str,
    mins: ArrayRef,
    maxes: ArrayRef,
    nulls: UInt64Array,
    rows: UInt64Array,
}

impl PruningStatistics for PageStats<'_> {
    fn min_values(&self, column: &datafusion::common::Column) -> Option<ArrayRef> {
        (column.name == self.column).then(|| Arc::clone(&self.mins))
    }

    fn max_values(&self, column: &datafusion::common::Column) -> Option<ArrayRef> {
        (column.name == self.column).then(|| Arc::clone(&self.maxes))
    }

    fn num_containers(&self) -> usize {
        self.rows.len()
    }

    fn null_counts(&self, column: &datafusion::common::Column) -> Option<ArrayRef> {
        (column.name == self.column).then(|| Arc::new(self.nulls.clone()) as ArrayRef)
    }

    fn row_counts(&self) -> Option<ArrayRef> {
        Some(Arc::new(self.rows.clone()))
    }

    #[allow(clippy::mutable_key_type)] // the trait's signature
    fn contained(
        &self,
        _column: &datafusion::common::Column,
        _values: &HashSet<datafusion::common::ScalarValue>,
    ) -> Option<arrow::array::BooleanArray> {
        None
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
pub(super) fn on_schema(
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
