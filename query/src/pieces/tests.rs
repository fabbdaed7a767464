//! Tests of the row-group pieces.

#![allow(clippy::unwrap_used)]
// Rows read are given as lists of ranges, many of one range.
#![allow(clippy::single_range_in_vec_init)]
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

/// Asserts that each of `queries` gets the same answer from `ours` as from `plain`.
async fn same_answers(ours: &SessionContext, plain: &SessionContext, queries: &[&str]) {
    for q in queries {
        assert_eq!(text(ours, q).await, text(plain, q).await, "{q}");
    }
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

/// A file `name` written by `write` in a new temporary directory (kept alive by the returned
/// one), its path, and a [`local`] session over it.
async fn local_file(
    name: &str,
    write: impl FnOnce(&std::path::Path),
) -> (tempfile::TempDir, String, SessionContext) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    write(&path);
    let path = path.to_string_lossy().into_owned();
    let ours = local(&path).await;
    (dir, path, ours)
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
    let options = ctx.state_ref().read().default_table_options().parquet;
    let table = parquet_table(&[path.to_string()], schema, true, options).unwrap();
    ctx.register_table("t", table).unwrap();
    ctx
}

/// DataFusion's own session over the file, as the table `t`: the answers to compare with.
pub(crate) async fn plain(path: &str) -> SessionContext {
    let plain = SessionContext::new();
    plain
        .register_parquet("t", path, ParquetReadOptions::default())
        .await
        .unwrap();
    plain
}

/// The physical plan of `sql`.
pub(crate) async fn physical_plan(
    ctx: &SessionContext,
    sql: &str,
) -> Arc<dyn datafusion::physical_plan::ExecutionPlan> {
    ctx.sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap()
}

/// The configurations of the query's Parquet scans, in the order of the plan's walk.
async fn parquet_scans(ctx: &SessionContext, sql: &str) -> Vec<FileScanConfig> {
    let plan = physical_plan(ctx, sql).await;
    let mut found = Vec::new();
    plan.apply(|node| {
        if let Some(exec) = node.downcast_ref::<DataSourceExec>()
            && let Some((config, _)) = exec.downcast_to_file_source::<ParquetSource>()
        {
            found.push(config.clone());
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })
    .unwrap();
    found
}

/// The access plans of the files each partition of the query's Parquet scans reads.
async fn access_plans(ctx: &SessionContext, sql: &str) -> Vec<Vec<ParquetAccessPlan>> {
    let mut found = Vec::new();
    for config in parquet_scans(ctx, sql).await {
        for group in &config.file_groups {
            let plans = group.iter().map(|file| {
                let plan = file.extensions.get::<ParquetAccessPlan>().unwrap();
                plan.clone()
            });
            found.push(plans.collect());
        }
    }
    found
}

/// The row groups each partition of the query's Parquet scan reads.
pub(crate) async fn pieces_of(ctx: &SessionContext, sql: &str) -> Vec<Vec<usize>> {
    let partitions = access_plans(ctx, sql).await;
    let row_groups = |plans: &Vec<ParquetAccessPlan>| {
        plans
            .iter()
            .flat_map(ParquetAccessPlan::row_group_indexes)
            .collect()
    };
    partitions.iter().map(row_groups).collect()
}

/// A filter that keeps a run of neighbouring row groups gets them spread over both
/// partitions (DataFusion's byte ranges gave them all to one), each kept row group read
/// exactly once; without a filter every row group is read once. Answers are DataFusion's
/// own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kept_row_groups_are_shared_by_the_partitions_and_answers_do_not_change() {
    let (_dir, path, ours) = local_file("t.parquet", write_file).await;
    let mut config = SessionConfig::new().with_target_partitions(2);
    config.options_mut().execution.parquet.pushdown_filters = true;
    let plain = SessionContext::new_with_config(config);
    plain
        .register_parquet("t", &path, ParquetReadOptions::default())
        .await
        .unwrap();

    let filtered = "SELECT who, count(*) AS n FROM t WHERE event_id = 3 GROUP BY who ORDER BY who";
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

    same_answers(&ours, &plain, &[
        filtered,
        "SELECT count(*) FROM t",
        "SELECT count(*), min(event_id), max(event_id) FROM t WHERE event_id >= 2 AND event_id < 4",
        "SELECT who, count(*) AS n FROM t WHERE who IS NOT NULL GROUP BY who ORDER BY who",
        "SELECT count(*) FROM t WHERE event_id = 4 AND payload LIKE '%IPC3%'",
        "SELECT event_id, count(*) AS n FROM t WHERE payload LIKE '%\"n\":1999%' GROUP BY event_id ORDER BY event_id",
        "SELECT count(*) FROM t WHERE event_id = 99",
    ])
    .await;
}

/// A file whose page index is small next to its rows: 4 row groups of 100 000 rows,
/// `t` = the row number, pages of 10 000 rows, page statistics on `t` only.
fn write_large_file(path: &std::path::Path) {
    write_paged(path, "t", |i| i);
}

/// 4 row groups of 100 000 rows and pages of 10 000 rows of two columns, `name` = `value(row)`
/// (page statistics on it alone) and `v` = row % 7.
fn write_paged(path: &std::path::Path, name: &str, value: impl Fn(i64) -> i64) {
    write_pages_of(path, name, 10_000, value);
}

/// [`write_paged`] with pages of `page_rows` rows.
fn write_pages_of(
    path: &std::path::Path,
    name: &str,
    page_rows: usize,
    value: impl Fn(i64) -> i64,
) {
    let schema = Arc::new(Schema::new(vec![
        Field::new(name, DataType::Int64, false),
        Field::new("v", DataType::Int64, false),
    ]));
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(100_000))
        .set_data_page_row_count_limit(page_rows)
        .set_write_batch_size(page_rows.min(1000))
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_column_statistics_enabled(name.into(), EnabledStatistics::Page)
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
    let k = Int64Array::from_iter_values((0..400_000).map(value));
    let v = Int64Array::from_iter_values((0..400_000).map(|i| i % 7));
    let batch = RecordBatch::try_new(schema, vec![Arc::new(k), Arc::new(v)]).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

/// 4 row groups of 100 000 rows, pages of `page_rows` rows, page statistics on `k`: `k` = 5
/// on every other row of the second half of row group 0 (9 before, 6 between), on every
/// row of row group 1 and of the first half of row group 2 (every other row after), and on
/// none of row group 3 (1 in its first half, 9 after: its statistics, 1 to 9, cannot rule
/// it out).
fn write_split_file_of(path: &std::path::Path, page_rows: usize) {
    write_pages_of(path, "k", page_rows, |i| match i / 50_000 {
        1 | 5 => 5 + i % 2,
        2..=4 => 5,
        6 => 1,
        _ => 9,
    });
}

/// [`write_split_file_of`] with pages of 10 000 rows.
fn write_split_file(path: &std::path::Path) {
    write_split_file_of(path, 10_000);
}

/// A row group's rows that a piece reads: its index, and the ranges of its rows.
type Part = (usize, Vec<std::ops::Range<usize>>);

/// The pieces each partition of the query's Parquet scan reads, in the order it takes them:
/// each the parts of row groups it reads (the row groups of the file hold `rows` rows each).
async fn parts_of(ctx: &SessionContext, sql: &str, rows: usize) -> Vec<Vec<Vec<Part>>> {
    let mut found = Vec::new();
    for plans in access_plans(ctx, sql).await {
        let mut pieces = Vec::new();
        for plan in &plans {
            let mut parts = Vec::new();
            for (i, access) in plan.inner().iter().enumerate() {
                let ranges = match access {
                    RowGroupAccess::Skip => continue,
                    RowGroupAccess::Scan => vec![0..rows],
                    RowGroupAccess::Selection(selection) => {
                        let mut at = 0;
                        let mut ranges = Vec::new();
                        for s in selection.iter() {
                            if !s.skip {
                                ranges.push(at..at + s.row_count);
                            }
                            at += s.row_count;
                        }
                        assert_eq!(at, rows, "a selection of every row of the group");
                        ranges
                    }
                };
                parts.push((i, ranges));
            }
            pieces.push(parts);
        }
        found.push(pieces);
    }
    found
}

/// Per row group, the rows that the pieces read, asserting that none is read twice.
fn read_once(
    pieces: &[Vec<Vec<Part>>],
) -> std::collections::BTreeMap<usize, Vec<std::ops::Range<usize>>> {
    let mut read: std::collections::BTreeMap<usize, Vec<std::ops::Range<usize>>> =
        std::collections::BTreeMap::new();
    for (i, ranges) in pieces.iter().flatten().flatten() {
        read.entry(*i).or_default().extend(ranges.iter().cloned());
    }
    for ranges in read.values_mut() {
        ranges.sort_by_key(|r| r.start);
        let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
        for r in ranges.drain(..) {
            match merged.last_mut() {
                Some(last) => {
                    assert!(last.end <= r.start, "rows read twice: {pieces:?}");
                    if last.end == r.start {
                        last.end = r.end;
                    } else {
                        merged.push(r);
                    }
                }
                None => merged.push(r),
            }
        }
        *ranges = merged;
    }
    read
}

/// With the page index read at planning, a row group whose pages all fail the filter is
/// not opened, a row group costs the rows its pages keep, a row group across the boundary
/// between two pieces is cut there (each row read once), and the costliest pieces come first
/// in the partitions' shared queue (a partition that finishes early takes the cheap ones);
/// the answers are DataFusion's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pieces_are_costed_by_the_pages_they_read() {
    let (_dir, path, ours) = local_file("split.parquet", write_split_file).await;
    let q = "SELECT count(*), sum(v) FROM t WHERE k = 5";
    let parts = parts_of(&ours, q, 100_000).await;
    // Row group 3 is not read; the others are, each row once: row group 0 from its second
    // half (the pages that may pass), 1 and 2 whole.
    let read = read_once(&parts);
    let whole = vec![0..100_000];
    assert_eq!(
        read.into_iter().collect::<Vec<_>>(),
        vec![(0, vec![50_000..100_000]), (1, whole.clone()), (2, whole)],
        "{parts:?}"
    );
    // Four pieces: row group 0 (half of its pages pass: the cheapest) alone and last; the
    // others cut from row groups 1 and 2 at the boundaries between pieces.
    let queue: Vec<&Vec<Part>> = parts.iter().flatten().collect();
    assert_eq!(queue.len(), 4, "{parts:?}");
    assert_eq!(queue[3], &vec![(0, vec![50_000..100_000])], "{parts:?}");
    assert!(
        queue[..3]
            .iter()
            .all(|piece| piece.iter().all(|(i, _)| *i == 1 || *i == 2)),
        "{parts:?}"
    );
    assert!(parts.iter().all(|p| !p.is_empty()), "{parts:?}");
    let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {q}")).await;
    assert!(analyzed.contains("files_opened=4"), "{analyzed}");
    let plain = plain(&path).await;
    // count(*) alone: row group 1 and the first half of row group 2 are counted from
    // statistics; the scan reads row group 0 whole and the rest of row group 2 (a selection
    // in its plan), and nothing of row group 3.
    let counted = "SELECT count(*) FROM t WHERE k = 5";
    assert_eq!(text(&ours, counted).await, "200000");
    same_answers(
        &ours,
        &plain,
        &[
            q,
            counted,
            "SELECT k, count(*) FROM t WHERE k >= 5 GROUP BY k ORDER BY k",
            "SELECT count(*) FROM t WHERE k = 1",
        ],
    )
    .await;
}

/// Where the whole page index would cost more than it saves (pages of 100 rows), the
/// planner reads the page index of the filter's column alone: the pieces carry the rows of
/// the pages that may pass (row group 0's second half), a row group none of whose pages
/// passes is not read, and the session's cache keeps the footer without a page index; the
/// answers are DataFusion's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_filter_columns_page_index_narrows_the_pieces() {
    let (_dir, path, ours) = local_file("fine.parquet", |p| write_split_file_of(p, 100)).await;
    let q = "SELECT count(*), sum(v) FROM t WHERE k = 5";
    let parts = parts_of(&ours, q, 100_000).await;
    let read = read_once(&parts);
    assert_eq!(
        read.into_iter().collect::<Vec<_>>(),
        vec![
            (0, vec![50_000..100_000]),
            (1, vec![0..100_000]),
            (2, vec![0..100_000])
        ],
        "{parts:?}"
    );
    assert!(parts.iter().all(|p| !p.is_empty()), "{parts:?}");
    let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {q}")).await;
    assert!(
        analyzed.contains("page_index_pages_pruned=0 total"),
        "{analyzed}"
    );
    assert!(
        !page_index_cached(&ours, &path),
        "the page index was read whole"
    );
    let plain = plain(&path).await;
    same_answers(
        &ours,
        &plain,
        &[
            q,
            "SELECT k, count(*), min(v) FROM t WHERE k >= 5 GROUP BY k ORDER BY k",
            "SELECT count(*) FROM t WHERE k = 1 AND v > 2",
            "SELECT count(*) FROM t WHERE k = 7",
        ],
    )
    .await;
}

/// One kept row group is cut among the partitions (it was one partition's alone), each row
/// read once; the answers are DataFusion's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_row_group_is_shared_by_the_partitions() {
    let (_dir, path, ours) = local_file("large.parquet", write_large_file).await;
    let q = "SELECT count(*), sum(v) FROM t WHERE t >= 100000 AND t < 200000 AND v <> 3";
    let parts = parts_of(&ours, q, 100_000).await;
    assert_eq!(parts.len(), 2, "{parts:?}");
    assert!(parts.iter().all(|p| !p.is_empty()), "{parts:?}");
    let read = read_once(&parts);
    assert_eq!(
        read.into_iter().collect::<Vec<_>>(),
        vec![(1, vec![0..100_000])],
        "{parts:?}"
    );
    // The bytes the partitions read in place are counted.
    let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {q}")).await;
    assert!(analyzed.contains("bytes_scanned="), "{analyzed}");
    assert!(!analyzed.contains("bytes_scanned=0,"), "{analyzed}");
    let plain = plain(&path).await;
    assert_eq!(text(&ours, q).await, text(&plain, q).await);
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
    let (dir, large, ours) = local_file("large.parquet", write_large_file).await;
    assert_eq!(text(&ours, "SELECT count(*) FROM t").await, "400000");
    assert!(
        !page_index_cached(&ours, &large),
        "planning read the page index"
    );
    let q = "SELECT count(*), sum(v) FROM t WHERE t >= 150000 AND t < 215000";
    let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {q}")).await;
    assert!(
        !analyzed.contains("page_index_pages_pruned=0 total"),
        "{analyzed}"
    );
    // The pieces read the pages that may pass: 150 000-219 999.
    let read = read_once(&parts_of(&ours, q, 100_000).await);
    assert_eq!(
        read.into_iter().collect::<Vec<_>>(),
        vec![(1, vec![50_000..100_000]), (2, vec![0..20_000])]
    );
    assert!(
        !page_index_cached(&ours, &large),
        "the page index of some row groups was left in the session's cache"
    );
    let plain = plain(&large).await;
    assert_eq!(text(&ours, q).await, text(&plain, q).await);
    // Other row groups, the same session: their own page index.
    let other = "SELECT count(*), sum(v) FROM t WHERE t >= 5000 AND t < 390000";
    let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {other}")).await;
    assert!(
        !analyzed.contains("page_index_pages_pruned=0 total"),
        "{analyzed}"
    );
    let read = read_once(&parts_of(&ours, other, 100_000).await);
    let whole = vec![0..100_000];
    assert_eq!(
        read.into_iter().collect::<Vec<_>>(),
        vec![
            (0, whole.clone()),
            (1, whole.clone()),
            (2, whole),
            (3, vec![0..90_000])
        ]
    );
    // count(*) alone: row groups and pages that pass whole are counted from statistics,
    // and the scan reads the rows of the pages in between (a selection in its plan).
    let counted = "SELECT count(*) FROM t WHERE t >= 150005 AND t < 215000";
    same_answers(
        &ours,
        &plain,
        &[
            other,
            q,
            "SELECT count(*), sum(v) FROM t WHERE t >= 330000",
            counted,
        ],
    )
    .await;

    // 20 000 rows in pages of 100 rows: its page index outweighs the rows a filter keeps.
    let small = dir.path().join("small.parquet");
    write_file(&small);
    let small = small.to_string_lossy().into_owned();
    let ours = local(&small).await;
    let q = "SELECT count(*) FROM t WHERE event_id = 3 AND payload LIKE '%IPC1%'";
    assert_eq!(text(&ours, q).await, "571");
    assert!(!page_index_cached(&ours, &small), "the page index was read");
}

/// 4 row groups of 100 000 rows, pages of 10 000 rows with page statistics on `k`, `k` even
/// and laid out in runs of 1 000 rows (`k` = 2 × (row / 1 000 % 10)): every page holds every
/// value, as a segment's `event_id` pages hold many channels' events, so its page index keeps
/// every row for any `k` in 0 to 18.
fn write_runs_file(path: &std::path::Path) {
    write_paged(path, "k", |i| 2 * (i / 1000 % 10));
}

/// The pieces carry exactly the rows that pass the filter's conditions on a small integer
/// column, read at planning (the page index could not narrow them), each read once and cut
/// among the pieces; a value no row holds reads no rows at all; the answers are DataFusion's
/// own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_column_narrows_the_pieces_to_the_rows_that_pass() {
    let (_dir, path, ours) = local_file("runs.parquet", write_runs_file).await;
    let q = "SELECT count(*), sum(v) FROM t WHERE k = 6 AND v <> 3";
    let parts = parts_of(&ours, q, 100_000).await;
    let read = read_once(&parts);
    // k = 6: rows 3 000..3 999 of every 10 000.
    let runs: Vec<std::ops::Range<usize>> = (0..10)
        .map(|p| p * 10_000 + 3_000..p * 10_000 + 4_000)
        .collect();
    let expected: Vec<(usize, Vec<std::ops::Range<usize>>)> =
        (0..4).map(|g| (g, runs.clone())).collect();
    assert_eq!(read.into_iter().collect::<Vec<_>>(), expected, "{parts:?}");
    assert!(
        parts.iter().all(|p| !p.is_empty()),
        "both partitions read: {parts:?}"
    );
    let analyzed = text(&ours, &format!("EXPLAIN ANALYZE {q}")).await;
    assert!(
        analyzed.contains("pushdown_rows_pruned=5.71 K"),
        "{analyzed}"
    );
    // No row holds 5 (between the statistics' 0 and 18): nothing is read.
    let none = "SELECT count(*) FROM t WHERE k = 5";
    let parts = parts_of(&ours, none, 100_000).await;
    assert!(
        parts.iter().flatten().flatten().next().is_none(),
        "{parts:?}"
    );
    let plain = plain(&path).await;
    same_answers(
        &ours,
        &plain,
        &[
            q,
            none,
            "SELECT k, count(*), min(v) FROM t WHERE k IN (4, 16) GROUP BY k ORDER BY k",
            "SELECT count(*) FROM t WHERE k >= 14 AND k < 17 AND v = 2",
            "SELECT count(*) FROM t WHERE k = 2 OR v = 1",
        ],
    )
    .await;
}

/// A file of 2 row groups of 4 000 rows, `event_id` = row group, each row's `payload` 400
/// bytes: 8 192 of its rows hold over 3 MiB of payload.
fn write_wide_file(path: &std::path::Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new("payload", DataType::Utf8, false),
    ]));
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(4000))
        .build();
    let file = std::fs::File::create(path).unwrap();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
    let event_id = Int64Array::from_iter_values((0..8000).map(|i| i / 4000));
    let payload: StringArray = (0..8000)
        .map(|i| {
            Some(format!(
                "{i:>8}{}",
                if i % 3 == 0 { "IPC$" } else { "data" }.repeat(98)
            ))
        })
        .collect();
    let columns: Vec<arrow::array::ArrayRef> = vec![Arc::new(event_id), Arc::new(payload)];
    writer
        .write(&RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    writer.close().unwrap();
}

/// The batch size of the query's Parquet scan (its only one), when it has one of its own.
async fn scan_batch_size(ctx: &SessionContext, sql: &str) -> Option<usize> {
    let scans = parquet_scans(ctx, sql).await;
    assert_eq!(scans.len(), 1, "one Parquet scan in the plan of {sql}");
    scans[0].batch_size
}

/// A scan that decodes the wide payload reads batches of about 1 MiB of it (2 560 rows of
/// ~409 bytes), one that does not keeps the session's; the answers are DataFusion's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scan_of_wide_rows_reads_smaller_batches() {
    let (_dir, path, ours) = local_file("wide.parquet", write_wide_file).await;
    let like = "SELECT event_id, count(*) AS n FROM t WHERE payload LIKE '%IPC$%' GROUP BY event_id ORDER BY event_id";
    let rows = scan_batch_size(&ours, like).await.unwrap();
    assert!((2000..=2600).contains(&rows), "{rows}");
    // A filtered scan of `event_id` alone (not answered from the statistics), cut into pieces.
    let narrow = "SELECT max(event_id * 2) AS m FROM t WHERE event_id >= 0";
    let pieces = pieces_of(&ours, narrow).await;
    assert!(
        pieces.len() == 2 && pieces.iter().all(|p| !p.is_empty()),
        "{pieces:?}"
    );
    assert_eq!(scan_batch_size(&ours, narrow).await, None);
    let plain = plain(&path).await;
    same_answers(&ours, &plain, &[like, narrow]).await;
    assert_eq!(text(&ours, like).await, "0|1334\n1|1333");
}
