//! A Parquet scan's work cut at row groups, after pruning, so that every thread gets a share.
//!
//! DataFusion splits a scan among its partitions by byte ranges of each file, before any row
//! group is pruned. A segment of the store is clustered by channel, event id and time, so the
//! row groups a filter such as `event_id = 5145` keeps lie next to each other, and nearly always
//! in one byte range: one thread decoded them all while the others had nothing to do (on the
//! 10.5 M-event store, such queries took as long on 2 threads as on 1).
//!
//! [`RowGroupPieces`] prunes each file's row groups by their statistics, from the footer that
//! planning already read into the session's metadata cache, and cuts the kept ones into four
//! pieces per partition of about equal cost (the uncompressed bytes of the columns the scan
//! reads). A piece is the file with an access plan of its row groups; pieces are dealt out in
//! turn to the scan's partitions, which also take pieces from one another when they run out
//! (DataFusion's work stealing between sibling streams). The scan still prunes each piece by
//! statistics, bloom filters and page index as before; the number of partitions does not
//! change.
//!
//! The page index: DataFusion's scan reads and parses a file's whole page index (every
//! column's) whenever its filter could prune pages, for every piece it opens. Here, when the
//! kept rows are many next to the cost of their page index ([`PAGE_INDEX_PAYBACK`]), the
//! files are opened through [`Footers::with_page_index`], which reads the page index of the
//! kept row groups alone, once per file and scan; otherwise the scan does without it. For a
//! local file that index is read here, at planning ([`footers::local_page_index_of`]), and
//! handed to the scan: a row group then costs what the pages its filter keeps cost, and one
//! none of whose pages can pass is left out. On the 10.5 M-event store `event_id = 4104` kept
//! eight row groups by their statistics, four of them without a 4104 row.
//!
//! DataFusion's partitions take a scan's files from one queue (work stealing), the file groups
//! one after the other, so the pieces are queued costliest first: a costly piece taken last ran
//! alone while the other partitions had finished ([`deal`]).
//!
//! A file that comes with an access plan of whole row groups (from [`crate::rowstats`]) is cut
//! among the row groups that plan reads.
//!
//! Local sessions only, like the footer cache it reads.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::{
    PagePruningAccessPlanFilter, ParquetAccessPlan, ParquetFileMetrics, RowGroupAccess,
    RowGroupAccessPlanFilter,
};
use datafusion::datasource::physical_plan::{
    FileGroup, FileScanConfig, FileScanConfigBuilder, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::runtime_env::RuntimeEnv;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use object_store::path::Path;
use parquet::file::metadata::ParquetMetaData;

use crate::footers::{self, Footers, PageIndexRows};

/// The rule's name.
pub const NAME: &str = "row_group_pieces";

/// Pieces per partition: enough that a partition which finishes early finds work left, few
/// enough that opening a piece (its footer comes from the cache) stays small.
const PIECES_PER_PARTITION: usize = 4;

/// A scan reads the page index of the kept row groups only when the values of those row groups
/// it decodes (rows times columns) are at least this many times what the index costs: its
/// bytes, plus half the file's whole page index for the copy of the footer that holds it.
/// Measured on the 10.5 M-event store (page index 363 KB; 2 threads, alternating runs), the
/// kept row groups' index read at every size: a day's events out of seven (27 row groups,
/// one column: 3.5 M values, 12x) took 0.85x the time with it; one event id's row groups took
/// 1.06-1.07x (`event_id = 31017`, one row group: ~0.8 M values, 4x; two for a join) and
/// 1.02-1.03x (5145 with a payload LIKE, five row groups: 2 M values, 10x).
const PAGE_INDEX_PAYBACK: u64 = 10;

/// See the module documentation.
#[derive(Debug)]
pub struct RowGroupPieces {
    runtime: Arc<RuntimeEnv>,
    footers: Arc<FileMetadataCache>,
}

impl RowGroupPieces {
    /// The rule for sessions of `runtime`, whose metadata cache holds the footers.
    pub fn new(runtime: Arc<RuntimeEnv>) -> Self {
        let footers = runtime.cache_manager.get_file_metadata_cache();
        Self { runtime, footers }
    }

    /// The footer of `file` if planning cached it and it is still the file's.
    fn footer(&self, file: &PartitionedFile) -> Option<Arc<ParquetMetaData>> {
        footers::cached(self.footers.as_ref(), &file.object_meta)
    }

    /// `config` with its files cut into pieces of kept row groups; None when it should stay as
    /// it is.
    fn cut(
        &self,
        config: &FileScanConfig,
        source: &ParquetSource,
        options: &ConfigOptions,
    ) -> Option<FileScanConfig> {
        let partitions = config.file_groups.len();
        if partitions < 2 || config.preserve_order || config.output_partitioning.is_some() {
            return None;
        }
        if !config.output_ordering.is_empty() {
            return None;
        }
        // Each file once, whole: the byte ranges DataFusion cut are replaced.
        let files = whole_files(config)?;
        let schema = config.file_schema();
        let pruning = FileSource::filter(source).and_then(|p| {
            PruningPredicateBuilder::new()
                .with_file_schema(Arc::clone(schema))
                .with_max_in_list_size(source.max_in_list_size())
                .build(p)
        });
        let read = read_columns(config, source);
        let pruned_columns: Vec<String> = FileSource::filter(source)
            .map(|f| {
                collect_columns(&f)
                    .iter()
                    .map(|c| c.name().to_string())
                    .collect()
            })
            .unwrap_or_default();
        // Per file: the kept row groups.
        let mut kept = Vec::with_capacity(files.len());
        for file in files {
            let footer = self.footer(file)?;
            let indexes = kept_row_groups(&footer, schema, pruning.as_ref(), file)?;
            kept.push((file, footer, indexes));
        }
        // Whether the scan reads the page index, and of which row groups.
        let mut page_index = PageIndexRows::new();
        let mut index_bytes = 0u64;
        let mut kept_rows = 0u64;
        for (file, footer, indexes) in &kept {
            kept_rows += indexes
                .iter()
                .map(|&i| u64::try_from(footer.row_group(i).num_rows()).unwrap_or(0))
                .sum::<u64>();
            if page_pruned(footer, indexes, &pruned_columns) {
                // The kept row groups' page index is parsed; the footer is copied to hold it,
                // which costs about as much as parsing half the whole page index would.
                let all: Vec<usize> = (0..footer.num_row_groups()).collect();
                index_bytes += page_index_bytes(footer, indexes);
                index_bytes += page_index_bytes(footer, &all) / 2;
                let location = file.object_meta.location.clone();
                page_index.insert(location, indexes.clone().into());
            }
        }
        // The page index pays when the values it may let the scan skip outnumber its bytes by
        // far: it is parsed whole for each kept row group, every column.
        let values = kept_rows.saturating_mul(read.len().max(1) as u64);
        let uses_page_index =
            !page_index.is_empty() && values >= PAGE_INDEX_PAYBACK.saturating_mul(index_bytes);
        // When it does, it is read now (local files), and a row group costs what the pages its
        // filter keeps of it cost: a row group of other events that the row group's statistics
        // could not rule out costs next to nothing, and one whose pages all pass costs it all.
        let page_filter = FileSource::filter(source)
            .filter(|_| uses_page_index)
            .map(|f| PagePruningAccessPlanFilter::new(&f, Arc::clone(schema)));
        let mut loaded: Vec<(Path, Arc<ParquetMetaData>)> = Vec::new();
        let mut costed = Vec::with_capacity(kept.len());
        for (file, footer, indexes) in kept {
            let access = file.extensions.get::<ParquetAccessPlan>();
            let location = &file.object_meta.location;
            let indexed =
                page_filter
                    .as_ref()
                    .zip(page_index.get(location))
                    .and_then(|(filter, rows)| {
                        let url = &config.object_store_url;
                        let indexed = footers::local_page_index_of(
                            Arc::clone(&footer),
                            rows,
                            &file.object_meta,
                            url,
                        )?;
                        Some((filter, indexed))
                    });
            let (indexes, pages) = match indexed {
                Some((filter, indexed)) => {
                    let plan = page_pruned_plan(filter, schema, file, &indexed, &indexes, access);
                    loaded.push((location.clone(), indexed));
                    (plan.row_group_indexes(), Some(plan))
                }
                None => (indexes, None),
            };
            let costs: Vec<u64> = indexes
                .iter()
                .map(|&i| read_cost(&footer, i, &read, pages.as_ref().or(access)))
                .collect();
            costed.push((file, footer, indexes, costs));
        }
        // The kept row groups in file order, cut into pieces of about equal cost: piece k
        // takes the row groups whose middle falls in the k-th part of the whole cost. A piece
        // that spans two files is two.
        let total: u64 = costed.iter().flat_map(|k| k.3.iter()).sum();
        if total == 0 {
            return None;
        }
        let count = partitions * PIECES_PER_PARTITION;
        let mut pieces: Vec<(u64, PartitionedFile)> = Vec::new();
        let mut before = 0u64;
        for (file, footer, indexes, costs) in costed {
            let access = file.extensions.get::<ParquetAccessPlan>();
            let mut piece_of_file: Vec<(usize, u64, ParquetAccessPlan)> = Vec::new();
            for (&i, &cost) in indexes.iter().zip(&costs) {
                let middle = u128::from(before) + u128::from(cost / 2);
                let piece = middle * count as u128 / u128::from(total);
                let piece = usize::try_from(piece).unwrap_or(usize::MAX).min(count - 1);
                // The row group whole, or the rows of it the file's plan selects.
                let rows = match access.map(|plan| &plan.inner()[i]) {
                    Some(RowGroupAccess::Selection(selection)) => {
                        RowGroupAccess::Selection(selection.clone())
                    }
                    _ => RowGroupAccess::Scan,
                };
                match piece_of_file.last_mut() {
                    Some((k, sum, plan)) if *k == piece => {
                        plan.set(i, rows);
                        *sum += cost;
                    }
                    _ => {
                        let mut plan = ParquetAccessPlan::new_none(footer.num_row_groups());
                        plan.set(i, rows);
                        piece_of_file.push((piece, cost, plan));
                    }
                }
                before += cost;
            }
            for (_, cost, plan) in piece_of_file {
                let mut part = file.clone();
                part.range = None;
                part.statistics = None;
                part.extensions.insert(plan);
                pieces.push((cost, part));
            }
        }
        let stealing = options.execution.enable_file_stream_work_stealing;
        let groups = deal(pieces, partitions, stealing);
        let mut builder = FileScanConfigBuilder::from(config.clone());
        if !page_index.is_empty() && !uses_page_index {
            let source = source.clone().with_enable_page_index(false);
            builder = builder.with_source(Arc::new(source));
        } else if uses_page_index {
            let store = self.runtime.object_store(&config.object_store_url).ok()?;
            let footers = Arc::clone(&self.footers);
            let factory =
                Footers::with_page_index(store, footers, schema, page_index).with_loaded(loaded);
            let source = source
                .clone()
                .with_parquet_file_reader_factory(Arc::new(factory));
            builder = builder.with_source(Arc::new(source));
        }
        let groups = groups.into_iter().map(FileGroup::new).collect();
        Some(builder.with_file_groups(groups).build())
    }
}

/// The access plan of `file`'s row groups `kept` (the rows of each that the file's plan
/// `access` selects, all without one) after `filter` pruned their pages, from `footer` (with
/// those row groups' page index): row groups none of whose pages can pass are skipped.
fn page_pruned_plan(
    filter: &PagePruningAccessPlanFilter,
    schema: &SchemaRef,
    file: &PartitionedFile,
    footer: &ParquetMetaData,
    kept: &[usize],
    access: Option<&ParquetAccessPlan>,
) -> ParquetAccessPlan {
    let mut plan = ParquetAccessPlan::new_none(footer.num_row_groups());
    for &i in kept {
        plan.scan(i);
        if let Some(RowGroupAccess::Selection(selection)) = access.map(|plan| &plan.inner()[i]) {
            // Narrows the scan of row group i to these rows.
            plan.scan_selection(i, selection.clone());
        }
    }
    // The scan's own metrics count its pruning; these are thrown away.
    let metrics = ExecutionPlanMetricsSet::new();
    let file_metrics = ParquetFileMetrics::new(0, file.object_meta.location.as_ref(), &metrics);
    let parquet_schema = footer.file_metadata().schema_descr();
    filter.prune_plan_with_page_index(plan, schema, parquet_schema, footer, &file_metrics)
}

/// `pieces` (each with its cost) dealt out to `partitions` file groups, the costliest first so
/// that the cheap ones even out the end. With work stealing (`stealing`) the partitions take
/// their files from one queue, the groups one after the other: the groups then hold the pieces
/// in order of cost, and whichever partition is free takes the costliest piece left. Without
/// it, each piece goes to the group with the least cost so far.
fn deal(
    mut pieces: Vec<(u64, PartitionedFile)>,
    partitions: usize,
    stealing: bool,
) -> Vec<Vec<PartitionedFile>> {
    // Stable: pieces of equal cost stay in file order.
    pieces.sort_by_key(|piece| std::cmp::Reverse(piece.0));
    let mut groups: Vec<Vec<PartitionedFile>> = vec![Vec::new(); partitions];
    if stealing {
        let per_group = pieces.len().div_ceil(partitions.max(1)).max(1);
        for (k, (_, piece)) in pieces.into_iter().enumerate() {
            groups[(k / per_group).min(partitions - 1)].push(piece);
        }
    } else {
        let mut loads = vec![0u64; partitions];
        for (cost, piece) in pieces {
            let (least, _) = loads
                .iter()
                .enumerate()
                .min_by_key(|&(k, load)| (*load, k))
                .unwrap_or((0, &0));
            loads[least] += cost;
            groups[least].push(piece);
        }
    }
    groups
}

/// Each file of `config` once (DataFusion may have cut a file into byte ranges), or None when
/// a file has partition values or extensions other than an access plan, or its ranges come
/// with different plans. (`rowstats` leaves a scan such plans: the row groups, and the rows of
/// row groups, it could not answer.)
pub(crate) fn whole_files(config: &FileScanConfig) -> Option<Vec<&PartitionedFile>> {
    let mut files: Vec<&PartitionedFile> = Vec::new();
    let mut seen: HashMap<&Path, Option<&ParquetAccessPlan>> = HashMap::new();
    for file in config.file_groups.iter().flat_map(FileGroup::iter) {
        let plan = file.extensions.get::<ParquetAccessPlan>();
        let others = file.extensions.len() - usize::from(plan.is_some());
        if others > 0 || !file.partition_values.is_empty() {
            return None;
        }
        match seen.get(&file.object_meta.location) {
            Some(earlier) if *earlier != plan => return None,
            Some(_) => {}
            None => {
                seen.insert(&file.object_meta.location, plan);
                files.push(file);
            }
        }
    }
    Some(files)
}

/// The names of the columns a scan decodes: those it outputs and those of its filter.
fn read_columns(config: &FileScanConfig, source: &ParquetSource) -> Vec<String> {
    let mut names: Vec<String> = match config.projected_schema() {
        Ok(schema) => schema.fields().iter().map(|f| f.name().clone()).collect(),
        Err(_) => Vec::new(),
    };
    if let Some(filter) = FileSource::filter(source) {
        for column in collect_columns(&filter) {
            if !names.iter().any(|n| n == column.name()) {
                names.push(column.name().to_string());
            }
        }
    }
    names
}

/// Whether the scan will read `footer`'s page index: a filter column has one in a kept row
/// group (as DataFusion's scan decides).
fn page_pruned(footer: &ParquetMetaData, kept: &[usize], filter_columns: &[String]) -> bool {
    kept.iter().any(|&i| {
        footer.row_group(i).columns().iter().any(|c| {
            c.column_index_offset().is_some()
                && c.offset_index_offset().is_some()
                && filter_columns
                    .iter()
                    .any(|n| c.column_path().string() == *n)
        })
    })
}

/// The bytes of the page index (column and offset indexes of every column chunk) of
/// `footer`'s row groups `kept`.
fn page_index_bytes(footer: &ParquetMetaData, kept: &[usize]) -> u64 {
    let lengths = kept
        .iter()
        .filter_map(|&i| footer.row_groups().get(i))
        .flat_map(|rg| rg.columns())
        .map(|c| {
            let column = c.column_index_length().unwrap_or(0);
            let offset = c.offset_index_length().unwrap_or(0);
            u64::try_from(column).unwrap_or(0) + u64::try_from(offset).unwrap_or(0)
        });
    lengths.sum()
}

/// What row group `i` costs to read: the uncompressed bytes of the columns in `read`, or its
/// rows when it reads none of them (`count(*)`); in proportion to the rows `access` (the file's
/// plan) selects of it.
fn read_cost(
    footer: &ParquetMetaData,
    i: usize,
    read: &[String],
    access: Option<&ParquetAccessPlan>,
) -> u64 {
    let row_group = footer.row_group(i);
    let bytes: i64 = row_group
        .columns()
        .iter()
        .filter(|c| read.iter().any(|n| c.column_path().string() == *n))
        .map(|c| c.uncompressed_size())
        .sum();
    let cost = if bytes > 0 {
        bytes
    } else {
        row_group.num_rows()
    };
    let cost = u64::try_from(cost).unwrap_or(0);
    let cost = match access.map(|plan| &plan.inner()[i]) {
        Some(RowGroupAccess::Selection(selection)) => {
            let rows = u64::try_from(row_group.num_rows()).unwrap_or(0).max(1);
            let selected = u64::try_from(selection.row_count()).unwrap_or(u64::MAX);
            u64::try_from(u128::from(cost) * u128::from(selected.min(rows)) / u128::from(rows))
                .unwrap_or(u64::MAX)
        }
        _ => cost,
    };
    cost.max(1)
}

/// The indexes of `footer`'s row groups that `pruning` keeps (all of them without one) among
/// those the file's access plan reads (all without one); None if that plan is not the file's.
pub(crate) fn kept_row_groups(
    footer: &ParquetMetaData,
    schema: &SchemaRef,
    pruning: Option<&Arc<PruningPredicate>>,
    file: &PartitionedFile,
) -> Option<Vec<usize>> {
    let row_groups = footer.row_groups();
    let plan = match file.extensions.get::<ParquetAccessPlan>() {
        Some(plan) if plan.len() != row_groups.len() => return None,
        Some(plan) => plan.clone(),
        None => ParquetAccessPlan::new_all(row_groups.len()),
    };
    let mut filter = RowGroupAccessPlanFilter::new(plan);
    if let Some(pruning) = pruning {
        // The scan's own metrics count its pruning; these are thrown away.
        let metrics = ExecutionPlanMetricsSet::new();
        let file_metrics = ParquetFileMetrics::new(0, file.object_meta.location.as_ref(), &metrics);
        filter.prune_by_statistics(
            schema,
            footer.file_metadata().schema_descr(),
            row_groups,
            pruning.as_ref(),
            &file_metrics,
        );
    }
    Some(filter.row_group_indexes().collect())
}

impl PhysicalOptimizerRule for RowGroupPieces {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        options: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some((config, source)) = exec.downcast_to_file_source::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            match self.cut(config, source, options) {
                Some(config) => Ok(Transformed::yes(DataSourceExec::from_data_source(config))),
                None => Ok(Transformed::no(node)),
            }
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
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cells::row_lines;
    use crate::session::{SessionOptions, new_context, parquet_table};
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};
    use object_store::ObjectMeta;
    use parquet::file::properties::{EnabledStatistics, WriterProperties};

    const ROW_GROUPS: i64 = 20;
    const ROWS_PER_GROUP: i64 = 1000;

    /// A file clustered like a segment: 20 row groups of 1 000 rows, `event_id` = row group / 4
    /// (so `event_id = 3` keeps row groups 12-15 only), `who` set on every other row, `payload`
    /// text; page statistics on `event_id`, pages of 100 rows.
    fn write_file(path: &std::path::Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("event_id", DataType::Int64, false),
            Field::new("who", DataType::Utf8, true),
            Field::new("payload", DataType::Utf8, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(ROWS_PER_GROUP as usize))
            .set_data_page_row_count_limit(100)
            .set_write_batch_size(100)
            .set_statistics_enabled(EnabledStatistics::Page)
            .build();
        let file = std::fs::File::create(path).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        let n = ROW_GROUPS * ROWS_PER_GROUP;
        let event_id = Int64Array::from_iter_values((0..n).map(|i| i / ROWS_PER_GROUP / 4));
        let who: StringArray = (0..n)
            .map(|i| (i % 2 == 0).then(|| format!("user{}", i % 13)))
            .collect();
        let payload: StringArray = (0..n)
            .map(|i| {
                Some(format!(
                    "{{\"n\":{i},\"share\":\"\\\\\\\\*\\\\IPC{}\"}}",
                    i % 7
                ))
            })
            .collect();
        let columns: Vec<arrow::array::ArrayRef> =
            vec![Arc::new(event_id), Arc::new(who), Arc::new(payload)];
        let batch = RecordBatch::try_new(schema, columns).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    pub(crate) async fn text(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        row_lines(&batches, "NULL").unwrap().join("\n")
    }

    /// A local session over the file, planned as evtxsql plans a store (footers first), on 2
    /// partitions, with files split among partitions whatever their size.
    pub(crate) async fn local(path: &str) -> SessionContext {
        local_with(path, 2).await
    }

    /// [`local`] on `threads` partitions.
    pub(crate) async fn local_with(path: &str, threads: usize) -> SessionContext {
        let ctx = new_context(&SessionOptions {
            threads: Some(threads),
            ..SessionOptions::default()
        })
        .unwrap();
        ctx.sql("SET datafusion.optimizer.repartition_file_min_size = 1")
            .await
            .unwrap();
        let plain = SessionContext::new();
        let schema = plain
            .read_parquet(path, ParquetReadOptions::default())
            .await
            .unwrap()
            .schema()
            .inner()
            .clone();
        let table = parquet_table(&[path.to_string()], schema, true).unwrap();
        ctx.register_table("t", table).unwrap();
        ctx
    }

    /// The row groups each partition of the query's Parquet scan reads.
    pub(crate) async fn pieces_of(ctx: &SessionContext, sql: &str) -> Vec<Vec<usize>> {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let mut found = Vec::new();
        plan.apply(|node| {
            if let Some(exec) = node.downcast_ref::<DataSourceExec>()
                && let Some((config, _)) = exec.downcast_to_file_source::<ParquetSource>()
            {
                for group in &config.file_groups {
                    let mut row_groups = Vec::new();
                    for file in group.iter() {
                        let plan = file.extensions.get::<ParquetAccessPlan>().unwrap();
                        row_groups.extend(plan.row_group_indexes());
                    }
                    found.push(row_groups);
                }
            }
            Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
        })
        .unwrap();
        found
    }

    /// A filter that keeps a run of neighbouring row groups gets them spread over both
    /// partitions (DataFusion's byte ranges gave them all to one), each kept row group read
    /// exactly once; without a filter every row group is read once. Answers are DataFusion's
    /// own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn kept_row_groups_are_shared_by_the_partitions_and_answers_do_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_file(&path);
        let path = path.to_string_lossy().into_owned();
        let ours = local(&path).await;
        let mut config = SessionConfig::new().with_target_partitions(2);
        config.options_mut().execution.parquet.pushdown_filters = true;
        let plain = SessionContext::new_with_config(config);
        plain
            .register_parquet("t", &path, ParquetReadOptions::default())
            .await
            .unwrap();

        let filtered =
            "SELECT who, count(*) AS n FROM t WHERE event_id = 3 GROUP BY who ORDER BY who";
        let pieces = pieces_of(&ours, filtered).await;
        assert_eq!(pieces.len(), 2, "{pieces:?}");
        assert!(pieces.iter().all(|p| !p.is_empty()), "{pieces:?}");
        let mut read: Vec<usize> = pieces.concat();
        read.sort_unstable();
        assert_eq!(read, vec![12, 13, 14, 15], "{pieces:?}");

        let whole = pieces_of(&ours, "SELECT count(*) FROM t WHERE payload LIKE '%IPC1%'").await;
        let mut read: Vec<usize> = whole.concat();
        read.sort_unstable();
        assert_eq!(read, (0..ROW_GROUPS as usize).collect::<Vec<_>>());

        for q in [
            filtered,
            "SELECT count(*) FROM t",
            "SELECT count(*), min(event_id), max(event_id) FROM t WHERE event_id >= 2 AND event_id < 4",
            "SELECT who, count(*) AS n FROM t WHERE who IS NOT NULL GROUP BY who ORDER BY who",
            "SELECT count(*) FROM t WHERE event_id = 4 AND payload LIKE '%IPC3%'",
            "SELECT event_id, count(*) AS n FROM t WHERE payload LIKE '%\"n\":1999%' GROUP BY event_id ORDER BY event_id",
            "SELECT count(*) FROM t WHERE event_id = 99",
        ] {
            assert_eq!(text(&ours, q).await, text(&plain, q).await, "{q}");
        }
    }

    /// A file whose page index is small next to its rows: 4 row groups of 100 000 rows,
    /// `t` = the row number, pages of 10 000 rows, page statistics on `t` only.
    fn write_large_file(path: &std::path::Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("t", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(100_000))
            .set_data_page_row_count_limit(10_000)
            .set_write_batch_size(1000)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_column_statistics_enabled("t".into(), EnabledStatistics::Page)
            .build();
        let file = std::fs::File::create(path).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        let t = Int64Array::from_iter_values(0..400_000);
        let v = Int64Array::from_iter_values((0..400_000).map(|i| i % 7));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(t), Arc::new(v)]).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    /// 4 row groups of 100 000 rows, pages of 10 000 rows, page statistics on `k`: `k` = 5 on
    /// every other row of the second half of row group 0 (9 before, 6 between), on every row
    /// of row group 1 and of the first half of row group 2 (every other row after), and on
    /// none of row group 3 (1 in its first half, 9 after: its statistics, 1 to 9, cannot rule
    /// it out).
    fn write_split_file(path: &std::path::Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Int64, false),
            Field::new("v", DataType::Int64, false),
        ]));
        let props = WriterProperties::builder()
            .set_max_row_group_row_count(Some(100_000))
            .set_data_page_row_count_limit(10_000)
            .set_write_batch_size(1000)
            .set_statistics_enabled(EnabledStatistics::Chunk)
            .set_column_statistics_enabled("k".into(), EnabledStatistics::Page)
            .build();
        let file = std::fs::File::create(path).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        let k = Int64Array::from_iter_values((0..400_000).map(|i| match i / 50_000 {
            1 | 5 => 5 + i % 2,
            2..=4 => 5,
            6 => 1,
            _ => 9,
        }));
        let v = Int64Array::from_iter_values((0..400_000).map(|i| i % 7));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(k), Arc::new(v)]).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    /// With the page index read at planning, a row group whose pages all fail the filter is
    /// not opened, a row group costs the rows its pages keep, and the costliest pieces come
    /// first in the partitions' shared queue (a partition that finishes early takes the cheap
    /// ones); the answers are DataFusion's own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pieces_are_costed_by_the_pages_they_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("split.parquet");
        write_split_file(&path);
        let path = path.to_string_lossy().into_owned();
        let ours = local(&path).await;
        let q = "SELECT count(*), sum(v) FROM t WHERE k = 5";
        let pieces = pieces_of(&ours, q).await;
        let mut read: Vec<usize> = pieces.concat();
        read.sort_unstable();
        assert_eq!(read, vec![0, 1, 2], "{pieces:?}");
        // Row groups 1 and 2 cost the most (every page may pass), then row group 0 (half of
        // its pages): first in the queue (group 0, then group 1), row group 0 last.
        let queue = pieces.concat();
        assert_eq!(queue.last(), Some(&0), "{pieces:?}");
        let mut first: Vec<usize> = queue[..2].to_vec();
        first.sort_unstable();
        assert_eq!(first, vec![1, 2], "{pieces:?}");
        let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {q}")).await;
        assert!(analyzed.contains("files_opened=3"), "{analyzed}");
        let plain = SessionContext::new();
        plain
            .register_parquet("t", &path, ParquetReadOptions::default())
            .await
            .unwrap();
        // count(*) alone: row group 1 and the first half of row group 2 are counted from
        // statistics; the scan reads row group 0 whole and the rest of row group 2 (a selection
        // in its plan), and nothing of row group 3.
        let counted = "SELECT count(*) FROM t WHERE k = 5";
        assert_eq!(text(&ours, counted).await, "200000");
        for q in [
            q,
            counted,
            "SELECT k, count(*) FROM t WHERE k >= 5 GROUP BY k ORDER BY k",
            "SELECT count(*) FROM t WHERE k = 1",
        ] {
            assert_eq!(text(&ours, q).await, text(&plain, q).await, "{q}");
        }
    }

    /// Pieces are dealt costliest first: with work stealing in order of cost, one group after
    /// the other (the partitions' shared queue); without it, each to the group with the least
    /// cost so far.
    #[test]
    fn pieces_are_dealt_costliest_first() {
        let pieces = || {
            [1u64, 10, 3, 7, 2]
                .iter()
                .map(|&cost| (cost, PartitionedFile::new(format!("f{cost}"), cost)))
                .collect::<Vec<_>>()
        };
        let names = |groups: Vec<Vec<PartitionedFile>>| -> Vec<Vec<String>> {
            groups
                .iter()
                .map(|g| {
                    g.iter()
                        .map(|f| f.object_meta.location.to_string())
                        .collect()
                })
                .collect()
        };
        assert_eq!(
            names(deal(pieces(), 2, true)),
            vec![vec!["f10", "f7", "f3"], vec!["f2", "f1"]]
        );
        assert_eq!(
            names(deal(pieces(), 2, false)),
            vec![vec!["f10", "f2"], vec!["f7", "f3", "f1"]]
        );
        assert_eq!(
            names(deal(pieces(), 1, true)),
            vec![vec!["f10", "f7", "f3", "f2", "f1"]]
        );
    }

    /// Whether the session's metadata cache holds `path`'s footer with its page index.
    fn page_index_cached(ctx: &SessionContext, path: &str) -> bool {
        let cache = ctx.runtime_env().cache_manager.get_file_metadata_cache();
        let meta = std::fs::metadata(path).unwrap();
        let object = ObjectMeta {
            location: object_store::path::Path::from_filesystem_path(path).unwrap(),
            last_modified: meta.modified().unwrap().into(),
            size: meta.len(),
            e_tag: None,
            version: None,
        };
        let footer = footers::cached(cache.as_ref(), &object).unwrap();
        footer.column_index().is_some() && footer.offset_index().is_some()
    }

    /// Planning caches a file's footer without its page index. A scan whose filter can prune
    /// pages of many kept rows reads the page index of the kept row groups and prunes pages
    /// with it, leaving the session's cache as it was (a later scan of other row groups of the
    /// same session reads their page index); one whose kept rows are few next to the page
    /// index's size does without it. Answers are the same either way.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_page_index_is_read_where_it_pays() {
        let dir = tempfile::tempdir().unwrap();
        let large = dir.path().join("large.parquet");
        write_large_file(&large);
        let large = large.to_string_lossy().into_owned();
        let ours = local(&large).await;
        assert_eq!(text(&ours, "SELECT count(*) FROM t").await, "400000");
        assert!(
            !page_index_cached(&ours, &large),
            "planning read the page index"
        );
        let q = "SELECT count(*), sum(v) FROM t WHERE t >= 150000 AND t < 215000";
        let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {q}")).await;
        assert!(
            analyzed.contains("page_index_rows_pruned=200.0 K total → 70.00 K matched"),
            "{analyzed}"
        );
        assert!(
            !page_index_cached(&ours, &large),
            "the page index of some row groups was left in the session's cache"
        );
        let plain = SessionContext::new();
        plain
            .register_parquet("t", &large, ParquetReadOptions::default())
            .await
            .unwrap();
        assert_eq!(text(&ours, q).await, text(&plain, q).await);
        // Other row groups, the same session: their own page index.
        let other = "SELECT count(*), sum(v) FROM t WHERE t >= 5000 AND t < 390000";
        let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {other}")).await;
        assert!(
            analyzed.contains("page_index_rows_pruned=200.0 K total → 190.0 K matched"),
            "{analyzed}"
        );
        // count(*) alone: row groups and pages that pass whole are counted from statistics,
        // and the scan reads the rows of the pages in between (a selection in its plan).
        let counted = "SELECT count(*) FROM t WHERE t >= 150005 AND t < 215000";
        for q in [
            other,
            q,
            "SELECT count(*), sum(v) FROM t WHERE t >= 330000",
            counted,
        ] {
            assert_eq!(text(&ours, q).await, text(&plain, q).await, "{q}");
        }

        // 20 000 rows in pages of 100 rows: its page index outweighs the rows a filter keeps.
        let small = dir.path().join("small.parquet");
        write_file(&small);
        let small = small.to_string_lossy().into_owned();
        let ours = local(&small).await;
        let q = "SELECT count(*) FROM t WHERE event_id = 3 AND payload LIKE '%IPC1%'";
        assert_eq!(text(&ours, q).await, "571");
        assert!(!page_index_cached(&ours, &small), "the page index was read");
    }
}
