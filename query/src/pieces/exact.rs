//! The rows a filter's conditions on a small key column keep, read at planning.
//!
//! A segment is clustered by channel, then event id, so the pages of `event_id` span several
//! channels and their statistics keep far more rows than hold the event: on the 1 GB real-log
//! store, compacted, `event_id = 4104` keeps 385 K rows by the page index, of which 7 659 are
//! 4104 events, each with a script block of about 4.7 KB. The scan's row filter reads `data`
//! for those 7 659 rows alone, so they are all its cost, but the pieces were costed and cut by
//! the rows the page index kept: the two row groups holding them went to two pieces whole, one
//! with twice the payload of the other, and the second thread idled half the scan.
//!
//! Here the conditions of the filter on one integer column (`event_id = 4104`,
//! `event_id IN (...)`, ranges) are evaluated at planning over that column alone (a few
//! hundred bytes a row group: RLE-encoded and dictionary-coded), for the rows the page index
//! kept, and the pieces carry exactly the rows that pass them. The scan still applies the
//! whole filter; it reads nothing for the other rows, and the rows cut between pieces are rows
//! it will decode whole.

use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::datatypes::{Schema, SchemaRef};
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, RowGroupAccess};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{
    BinaryExpr, CastExpr, Column, InListExpr, IsNotNullExpr, IsNullExpr, Literal, NotExpr,
};
use datafusion::physical_expr::utils::{collect_columns, reassign_expr_columns, split_conjunction};
use object_store::ObjectMeta;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection,
    RowSelector,
};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

/// Most rows read here: the column is decoded on one thread before the scan starts.
const MOST_ROWS: usize = 1 << 20;
/// Most compressed bytes of the key column read here, over the row groups kept.
const MOST_BYTES: i64 = 1 << 20;
/// A row group's passing rows are scattered when they form more than this many runs ...
const SCATTERED_RUNS: usize = 64;
/// ... of fewer rows than this on average.
const SHORTEST_MEAN_RUN: usize = 32;

/// The plan of `object`'s row groups `kept` (the rows of each that `carried` selects, all
/// without it) narrowed to the rows that pass the conditions of `filter` on one small integer
/// column; None when the filter has no such condition, the rows are too many, or the file
/// cannot be read here (only local files, `url` being `file:///`).
pub(super) fn narrowed(
    filter: &Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
    footer: &Arc<ParquetMetaData>,
    kept: &[usize],
    carried: Option<&ParquetAccessPlan>,
    object: &ObjectMeta,
    url: &datafusion::execution::object_store::ObjectStoreUrl,
) -> Option<ParquetAccessPlan> {
    if url.as_str() != "file:///" || kept.is_empty() {
        return None;
    }
    let (name, conditions) = key_conditions(filter, schema, footer, kept)?;
    let field = schema.field_with_name(&name).ok()?.clone();
    let key_schema = Arc::new(Schema::new(vec![field]));
    let conditions: Vec<Arc<dyn PhysicalExpr>> = conditions
        .into_iter()
        .map(|c| reassign_expr_columns(c, &key_schema).ok())
        .collect::<Option<_>>()?;
    // The rows to read: each kept row group's selection, in file order.
    let mut groups: Vec<(usize, RowSelection)> = Vec::with_capacity(kept.len());
    for &i in kept {
        let num_rows = usize::try_from(footer.row_groups().get(i)?.num_rows()).ok()?;
        let rows = match carried.and_then(|plan| plan.inner().get(i)) {
            Some(RowGroupAccess::Skip) => continue,
            Some(RowGroupAccess::Selection(selection)) => selection.clone(),
            _ => RowSelection::from(vec![RowSelector::select(num_rows)]),
        };
        groups.push((i, rows));
    }
    let total: usize = groups.iter().map(|(_, rows)| rows.row_count()).sum();
    if total == 0 || total > MOST_ROWS {
        return None;
    }
    let passes = evaluate(footer, object, &groups, &name, &key_schema, &conditions)?;
    if passes.len() != total {
        return None;
    }
    let mut plan = ParquetAccessPlan::new_none(footer.num_row_groups());
    let mut at = 0;
    for (i, rows) in groups {
        let n = rows.row_count();
        let mask = passes.slice(at, n);
        at += n;
        if mask.true_count() == 0 {
            continue;
        }
        let refined = rows.and_then(&RowSelection::from_filters(std::slice::from_ref(&mask)));
        // Rows that pass scattered one by one (not as Windows logs cluster): the page index's
        // rows are kept, as a selection of thousands of short runs costs the scan more than
        // the rows it skips.
        let runs = refined.iter().filter(|s| !s.skip).count();
        let refined = if runs > SCATTERED_RUNS && runs * SHORTEST_MEAN_RUN > refined.row_count() {
            rows
        } else {
            refined
        };
        let access = if refined.skipped_row_count() == 0 {
            RowGroupAccess::Scan
        } else {
            RowGroupAccess::Selection(refined)
        };
        plan.set(i, access);
    }
    Some(plan)
}

/// The column and the conditions of `filter` (its conjuncts) that read that column alone: an
/// integer column, whose chunks in the row groups `kept` are small. The column with the most
/// conditions is taken (the first in the filter on a tie).
fn key_conditions(
    filter: &Arc<dyn PhysicalExpr>,
    schema: &SchemaRef,
    footer: &ParquetMetaData,
    kept: &[usize],
) -> Option<(String, Vec<Arc<dyn PhysicalExpr>>)> {
    let mut found: Vec<(String, Vec<Arc<dyn PhysicalExpr>>)> = Vec::new();
    for condition in split_conjunction(filter) {
        let columns = collect_columns(condition);
        let [column] = columns.iter().collect::<Vec<_>>()[..] else {
            continue;
        };
        let name = column.name();
        let integer = schema
            .field_with_name(name)
            .is_ok_and(|f| f.data_type().is_integer());
        if !integer || !plain(condition) || !small(footer, kept, name) {
            continue;
        }
        match found.iter_mut().find(|(n, _)| n == name) {
            Some((_, conditions)) => conditions.push(Arc::clone(condition)),
            None => found.push((name.to_string(), vec![Arc::clone(condition)])),
        }
    }
    let most = found.iter().map(|(_, c)| c.len()).max()?;
    found.into_iter().find(|(_, c)| c.len() == most)
}

/// Whether `expr` is made of comparisons, lists, casts, null tests and NOT of columns and
/// values alone (nothing that changes as the query runs, as a join's dynamic filter does).
fn plain(expr: &Arc<dyn PhysicalExpr>) -> bool {
    let known = expr.downcast_ref::<BinaryExpr>().is_some()
        || expr.downcast_ref::<Column>().is_some()
        || expr.downcast_ref::<Literal>().is_some()
        || expr.downcast_ref::<InListExpr>().is_some()
        || expr.downcast_ref::<NotExpr>().is_some()
        || expr.downcast_ref::<IsNullExpr>().is_some()
        || expr.downcast_ref::<IsNotNullExpr>().is_some()
        || expr.downcast_ref::<CastExpr>().is_some();
    known && expr.children().into_iter().all(plain)
}

/// Whether column `name`'s chunks in the row groups `kept` are small enough to read here.
fn small(footer: &ParquetMetaData, kept: &[usize], name: &str) -> bool {
    let mut bytes = 0i64;
    for &i in kept {
        let Some(group) = footer.row_groups().get(i) else {
            return false;
        };
        let Some(chunk) = group
            .columns()
            .iter()
            .find(|c| c.column_path().parts().len() == 1 && c.column_path().string() == name)
        else {
            return false;
        };
        bytes = bytes.saturating_add(chunk.compressed_size());
    }
    bytes <= MOST_BYTES
}

/// Whether each row of `groups` (row groups and their rows, in file order) passes every one of
/// `conditions` (over `key_schema`, column `name` alone): one value a row, nulls as false.
fn evaluate(
    footer: &Arc<ParquetMetaData>,
    object: &ObjectMeta,
    groups: &[(usize, RowSelection)],
    name: &str,
    key_schema: &SchemaRef,
    conditions: &[Arc<dyn PhysicalExpr>],
) -> Option<BooleanArray> {
    let path = object_store::local::LocalFileSystem::new()
        .path_to_filesystem(&object.location)
        .ok()?;
    let file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() != object.size {
        return None;
    }
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip);
    let metadata = ArrowReaderMetadata::try_new(Arc::clone(footer), options).ok()?;
    let descr = footer.file_metadata().schema_descr();
    let root = descr
        .root_schema()
        .get_fields()
        .iter()
        .position(|f| f.name() == name)?;
    let mask = ProjectionMask::roots(descr, [root]);
    let selectors: Vec<RowSelector> = groups
        .iter()
        .flat_map(|(_, rows)| rows.iter().copied())
        .collect();
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata)
        .with_projection(mask)
        .with_row_groups(groups.iter().map(|(i, _)| *i).collect())
        .with_row_selection(RowSelection::from(selectors))
        .with_batch_size(65_536)
        .build()
        .ok()?;
    let mut parts: Vec<BooleanArray> = Vec::new();
    for batch in reader {
        let batch = batch.ok()?;
        let column = batch.column_by_name(name)?;
        if column.data_type() != key_schema.field(0).data_type() {
            return None;
        }
        let batch = RecordBatch::try_new(Arc::clone(key_schema), vec![Arc::clone(column)]).ok()?;
        let mut passes: Option<BooleanArray> = None;
        for condition in conditions {
            let value = condition.evaluate(&batch).ok()?;
            let array = value.into_array(batch.num_rows()).ok()?;
            let array = array.as_any().downcast_ref::<BooleanArray>()?;
            let array = if array.null_count() > 0 {
                arrow::compute::prep_null_mask_filter(array)
            } else {
                array.clone()
            };
            passes = Some(match passes {
                Some(p) => arrow::compute::and(&p, &array).ok()?,
                None => array,
            });
        }
        parts.push(passes?);
    }
    let refs: Vec<&dyn Array> = parts.iter().map(|p| p as &dyn Array).collect();
    if refs.is_empty() {
        return Some(BooleanArray::from(Vec::<bool>::new()));
    }
    let all = arrow::compute::concat(&refs).ok()?;
    all.as_any().downcast_ref::<BooleanArray>().cloned()
}
