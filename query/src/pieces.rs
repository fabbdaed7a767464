//! A Parquet scan's work cut at row groups, after pruning, so that every thread gets a share.
//!
//! DataFusion splits a scan among its partitions by byte ranges of each file, before any row
//! group is pruned. A segment of the store is clustered by channel, event id and time, so the
//! row groups a filter such as `event_id = 5145` keeps lie next to each other, and nearly always
//! in one byte range: one thread decoded them all while the others had nothing to do (on the
//! 10.5 M-event store, such queries took as long on 2 threads as on 1).
//!
//! [`RowGroupPieces`] prunes each file's row groups by their statistics, from the footer that
//! planning already read into the session's metadata cache, and cuts the kept ones into
//! [`PIECES_PER_PARTITION`] pieces per partition of about equal cost (the uncompressed bytes of
//! the columns the scan reads). A piece is the file with an access plan of its row groups; a
//! row group of a local file that lies across the boundary between two pieces is cut there,
//! each part a selection of its rows ([`split`]). The pieces are dealt out to the scan's
//! partitions costliest first ([`deal`]), which take them from one queue when work stealing is
//! on (DataFusion's default). The scan still prunes each piece by statistics, bloom filters and
//! page index as before; the number of partitions does not change.
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
//! Where the whole page index does not pay, the page index of the filter's columns alone is
//! read at planning ([`footers::local_filter_index_of`]: a few hundred bytes a row group):
//! the pieces then carry the rows of the pages that may pass, and a row group costs what those
//! rows cost. On the 10.5 M-event store `event_id = 5145` keeps five row groups by their
//! statistics; two of them hold no 5145 event and one a third of its rows, and the costs by
//! whole row groups had one partition decode the last row group alone.
//!
//! Last, where the filter has conditions on one small integer column (`event_id = 4104`), that
//! column is read at planning for the rows kept so far, and the pieces carry the rows that
//! pass those conditions alone ([`exact`]): they are what the scan decodes whole, so the
//! pieces are costed and cut by them (parts of [`split::LEAST_EXACT_PART_ROWS`] rows and
//! more), and a scan none of whose rows pass reads none. A segment's `event_id` pages span
//! several channels, so their statistics keep many more rows than hold the event.
//!
//! DataFusion's partitions take a scan's files from one queue (work stealing), the file groups
//! one after the other, so the pieces are queued costliest first: a costly piece taken last ran
//! alone while the other partitions had finished ([`deal`]).
//!
//! A file that comes with an access plan of whole row groups (from [`crate::rowstats`]) is cut
//! among the row groups that plan reads.
//!
//! A scan whose rows are wide (a payload LIKE decodes `data`) gets batches of fewer rows than
//! the session's, about [`batch::SCAN_BATCH_BYTES`] of its columns each ([`batch`]).
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
/// enough that opening a piece stays small (its footer comes from the cache, but every column
/// chunk it reads gets a reader, and a zstd column's reader makes a zstd context or two). With
/// the pieces queued costliest first, two per partition took 0.90-0.97x the time of four on
/// the short shapes of the 10.5 M-event store, and 1.02x on a LIKE over every event.
const PIECES_PER_PARTITION: usize = 2;

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
        let mut read_bytes = 0u64;
        for (file, footer, indexes) in &kept {
            read_bytes += indexes
                .iter()
                .map(|&i| column_bytes(footer, i, &read))
                .sum::<u64>();
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
        // Without it, the page index of the filter's columns alone (a few hundred bytes a row
        // group), read now (local files), tells which rows of the kept row groups the filter
        // can keep: the pieces carry those rows, and a row group costs what they cost.
        let column_filter = FileSource::filter(source)
            .filter(|_| !uses_page_index)
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
            let narrowed = || {
                let filter = column_filter.as_ref()?;
                let url = &config.object_store_url;
                let part = footers::local_filter_index_of(
                    &footer,
                    &indexes,
                    &pruned_columns,
                    &file.object_meta,
                    url,
                )?;
                Some(column_pruned_plan(
                    filter, schema, file, &footer, &part, &indexes, access,
                ))
            };
            // The plan whose rows the pieces carry: the one the page index narrowed (the whole
            // index, or the filter's columns'), or the file's own.
            let (indexes, pages, carried) = match indexed {
                Some((filter, indexed)) => {
                    let plan = page_pruned_plan(filter, schema, file, &indexed, &indexes, access);
                    loaded.push((location.clone(), indexed));
                    (plan.row_group_indexes(), Some(plan.clone()), Some(plan))
                }
                None => match narrowed() {
                    Some(plan) => (plan.row_group_indexes(), Some(plan.clone()), Some(plan)),
                    None => (indexes, None, access.cloned()),
                },
            };
            // Narrowed further to the rows that pass the filter's conditions on a small key
            // column, read now ([`exact`]): those rows are what the scan decodes whole.
            let exact = FileSource::filter(source).and_then(|f| {
                let url = &config.object_store_url;
                exact::narrowed(
                    &f,
                    schema,
                    &footer,
                    &indexes,
                    carried.as_ref(),
                    &file.object_meta,
                    url,
                )
            });
            let exact_rows = exact.is_some();
            let (indexes, pages, carried) = match exact {
                Some(plan) => (plan.row_group_indexes(), Some(plan.clone()), Some(plan)),
                None => (indexes, pages, carried),
            };
            let costs: Vec<u64> = indexes
                .iter()
                .map(|&i| read_cost(&footer, i, &read, pages.as_ref().or(access)))
                .collect();
            costed.push((file, footer, indexes, costs, carried, exact_rows));
        }
        // The kept row groups in file order, cut into pieces of about equal cost: piece k
        // takes the row groups whose middle falls in the k-th part of the whole cost, and a
        // row group across a boundary between pieces is cut there ([`split`]). A piece that
        // spans two files is two.
        let total: u64 = costed.iter().flat_map(|k| k.3.iter()).sum();
        if total == 0 {
            // No row of any file can pass the key conditions: the scan opens each file's
            // footer and reads none of its rows (detection queries often match nothing).
            let read_nothing = !costed.is_empty() && costed.iter().all(|k| k.2.is_empty() && k.5);
            if !read_nothing {
                return None;
            }
            let mut groups = vec![Vec::new(); partitions];
            for (file, footer, ..) in costed {
                let mut part = file.clone();
                part.range = None;
                part.statistics = None;
                part.extensions
                    .insert(ParquetAccessPlan::new_none(footer.num_row_groups()));
                groups[0].push(part);
            }
            let groups = groups.into_iter().map(FileGroup::new).collect();
            let builder = FileScanConfigBuilder::from(config.clone());
            return Some(builder.with_file_groups(groups).build());
        }
        let count = partitions * PIECES_PER_PARTITION;
        // Row groups of local files are cut; a remote file's column chunks would be fetched
        // once a part.
        let local = config.object_store_url.as_str() == "file:///";
        let mut pieces: Vec<(u64, PartitionedFile)> = Vec::new();
        let mut before = 0u64;
        for (file, footer, indexes, costs, carried, exact_rows) in costed {
            let least_rows = if exact_rows {
                split::LEAST_EXACT_PART_ROWS
            } else {
                split::LEAST_PART_ROWS
            };
            let mut piece_of_file: Vec<(usize, u64, ParquetAccessPlan)> = Vec::new();
            for (&i, &cost) in indexes.iter().zip(&costs) {
                // The row group whole, or the rows of it the carried plan selects.
                let rows = match carried.as_ref().map(|plan| &plan.inner()[i]) {
                    Some(RowGroupAccess::Selection(selection)) => {
                        RowGroupAccess::Selection(selection.clone())
                    }
                    _ => RowGroupAccess::Scan,
                };
                let num_rows = usize::try_from(footer.row_group(i).num_rows()).unwrap_or(0);
                let parts = split::parts(
                    (before, cost),
                    total,
                    count,
                    (&rows, num_rows),
                    least_rows,
                    local,
                );
                for (piece, cost, rows) in parts {
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
            let url = &config.object_store_url;
            let store = self.runtime.object_store(url).ok()?;
            let footers = Arc::clone(&self.footers);
            let factory = Footers::with_page_index(store, url, footers, schema, page_index)
                .with_loaded(loaded);
            let source = source
                .clone()
                .with_parquet_file_reader_factory(Arc::new(factory));
            builder = builder.with_source(Arc::new(source));
        }
        let groups = groups.into_iter().map(FileGroup::new).collect();
        let batch = usize::from(options.execution.batch_size);
        let rows = batch::scan_batch_rows(read_bytes, kept_rows, batch);
        if rows.is_some() {
            builder = builder.with_batch_size(rows);
        }
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
    let file_metrics = scratch_metrics(file);
    let parquet_schema = footer.file_metadata().schema_descr();
    let pruned =
        filter.prune_plan_with_page_index(plan, schema, parquet_schema, footer, &file_metrics);
    let mut plan = ParquetAccessPlan::new_none(footer.num_row_groups());
    for (i, rows) in pruned.inner().iter().enumerate() {
        plan.set(i, whole_as_scan(rows));
    }
    plan
}

/// The access plan of `file`'s row groups `kept` (the rows of each that the file's plan
/// `access` selects, all without one) after `filter` pruned their pages by the page index of
/// the filter's columns alone: `part`, the footer of those row groups and columns that
/// [`footers::local_filter_index_of`] read, its row group k being `kept[k]` of `footer`.
fn column_pruned_plan(
    filter: &PagePruningAccessPlanFilter,
    schema: &SchemaRef,
    file: &PartitionedFile,
    footer: &ParquetMetaData,
    part: &ParquetMetaData,
    kept: &[usize],
    access: Option<&ParquetAccessPlan>,
) -> ParquetAccessPlan {
    let mut narrowed = ParquetAccessPlan::new_all(kept.len());
    for (k, &i) in kept.iter().enumerate() {
        if let Some(RowGroupAccess::Selection(selection)) = access.map(|plan| &plan.inner()[i]) {
            narrowed.scan_selection(k, selection.clone());
        }
    }
    // The part's schema holds the filter's columns alone, and the page filter finds a column
    // by its place among the fields: the file schema's fields of those columns, in its order.
    let parquet_schema = part.file_metadata().schema_descr();
    let fields: Vec<_> = parquet_schema
        .root_schema()
        .get_fields()
        .iter()
        .filter_map(|f| schema.field_with_name(f.name()).ok().cloned())
        .collect();
    let mut plan = ParquetAccessPlan::new_none(footer.num_row_groups());
    if fields.len() != parquet_schema.root_schema().get_fields().len() {
        for (k, &i) in kept.iter().enumerate() {
            plan.set(i, narrowed.inner()[k].clone());
        }
        return plan;
    }
    let part_schema = arrow::datatypes::Schema::new(fields);
    let file_metrics = scratch_metrics(file);
    let narrowed = filter.prune_plan_with_page_index(
        narrowed,
        &part_schema,
        parquet_schema,
        part,
        &file_metrics,
    );
    for (k, &i) in kept.iter().enumerate() {
        plan.set(i, whole_as_scan(&narrowed.inner()[k]));
    }
    plan
}

/// Metrics for pruning `file` at planning: the scan's own metrics count its pruning, these are
/// thrown away.
fn scratch_metrics(file: &PartitionedFile) -> ParquetFileMetrics {
    let metrics = ExecutionPlanMetricsSet::new();
    ParquetFileMetrics::new(0, file.object_meta.location.as_ref(), &metrics)
}

/// `rows`, a selection of every row being the row group whole.
fn whole_as_scan(rows: &RowGroupAccess) -> RowGroupAccess {
    match rows {
        RowGroupAccess::Selection(selection) if selection.skipped_row_count() == 0 => {
            RowGroupAccess::Scan
        }
        rows => rows.clone(),
    }
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

/// The uncompressed bytes of the columns in `read` in `footer`'s row group `i`.
fn column_bytes(footer: &ParquetMetaData, i: usize, read: &[String]) -> u64 {
    let bytes: i64 = footer
        .row_group(i)
        .columns()
        .iter()
        .filter(|c| read.iter().any(|n| c.column_path().string() == *n))
        .map(|c| c.uncompressed_size())
        .sum();
    u64::try_from(bytes).unwrap_or(0)
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
    let bytes = column_bytes(footer, i, read);
    let cost = if bytes > 0 {
        bytes
    } else {
        u64::try_from(row_group.num_rows()).unwrap_or(0)
    };
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
        let file_metrics = scratch_metrics(file);
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

mod batch;
mod exact;
mod split;

#[cfg(test)]
pub(crate) mod tests;
