#![allow(clippy::unwrap_used)]
use super::*;
use crate::pieces::tests::{local, local_with, physical_plan, pieces_of, text};
use arrow::array::{DictionaryArray, Int32Array, StringArray, TimestampMicrosecondArray};
use arrow::datatypes::{DataType, Field, Int32Type, Schema, TimeUnit};
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

/// A file `write` makes in a temporary folder (kept while the folder lives), its path, a
/// local session over it as evtxsql plans a store, and DataFusion's own over it.
async fn sessions(
    write: fn(&std::path::Path),
) -> (tempfile::TempDir, String, SessionContext, SessionContext) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    write(&path);
    let path = path.to_string_lossy().into_owned();
    let ours = local(&path).await;
    let plain = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
    plain
        .register_parquet("t", &path, ParquetReadOptions::default())
        .await
        .unwrap();
    (dir, path, ours, plain)
}

/// The rows the plan of `sql` takes from statistics (one per row group), if any.
async fn answered(ctx: &SessionContext, sql: &str) -> Option<usize> {
    let plan = physical_plan(ctx, sql).await;
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
    let (_dir, path, ours, plain) = sessions(write_file).await;

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
    let distinct =
        "SELECT channel, count(DISTINCT event_id) AS ids FROM t GROUP BY channel ORDER BY channel";
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

/// Four row groups of 100 rows, one second apart, in pages of 10 rows with page statistics on
/// `time_created` (as the store writes it); row group 3 has a second channel; `host` is null
/// on the first 70 rows of row group 0 (as many as its pages 30-99 hold).
fn write_paged_file(path: &std::path::Path) {
    let schema = Arc::new(Schema::new(vec![
        Field::new("channel", DataType::Utf8, false),
        Field::new(
            "time_created",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("event_id", DataType::Int32, false),
        Field::new("host", DataType::Utf8, true),
    ]));
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(ROWS_PER_GROUP))
        .set_data_page_row_count_limit(10)
        .set_write_batch_size(10)
        .set_statistics_enabled(EnabledStatistics::Chunk)
        .set_column_statistics_enabled("time_created".into(), EnabledStatistics::Page)
        .set_column_statistics_enabled("event_id".into(), EnabledStatistics::Page)
        .build();
    let n = 4 * ROWS_PER_GROUP;
    let channel: StringArray = (0..n)
        .map(|i| {
            Some(if i >= 300 && i % 2 == 1 {
                "System"
            } else {
                "Security"
            })
        })
        .collect();
    let time = TimestampMicrosecondArray::from_iter_values(
        (0..n).map(|i| 1_767_225_600_000_000 + i as i64 * 1_000_000),
    )
    .with_timezone("UTC");
    let event_id = Int32Array::from_iter_values((0..n).map(|i| 4624 + (i % 7) as i32));
    let host: StringArray = (0..n).map(|i| (i >= 70).then_some("wks-1")).collect();
    let columns: Vec<ArrayRef> = vec![
        Arc::new(channel),
        Arc::new(time),
        Arc::new(event_id),
        Arc::new(host),
    ];
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).unwrap();
    let file = std::fs::File::create(path).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    for start in (0..n).step_by(10) {
        writer.write(&batch.slice(start, 10)).unwrap();
    }
    writer.close().unwrap();
}

/// The rows the plan of `sql` answers without reading them, and the rows its scan reads of
/// the row groups it reads in part.
async fn answered_and_selected(ctx: &SessionContext, sql: &str) -> (u64, usize) {
    let plan = physical_plan(ctx, sql).await;
    let (mut answered, mut selected) = (0, 0);
    plan.apply(|node| {
        if let Some(exec) = node.downcast_ref::<RowGroupStatisticsExec>() {
            answered += exec.rows();
        }
        if let Some(exec) = node.downcast_ref::<DataSourceExec>()
            && let Some((config, _)) = exec.downcast_to_file_source::<ParquetSource>()
        {
            for file in config.file_groups.iter().flat_map(FileGroup::iter) {
                let plan = file.extensions.get::<ParquetAccessPlan>().unwrap();
                for access in plan.inner() {
                    if let RowGroupAccess::Selection(selection) = access {
                        selected += selection.row_count();
                    }
                }
            }
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })
    .unwrap();
    (answered, selected)
}

/// A time window that splits row groups: the pages inside it are counted from the page index
/// and only the pages where it begins and ends are read; the answers are DataFusion's own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_inside_a_window_are_counted_from_the_page_index() {
    let (_dir, path, ours, plain) = sessions(write_paged_file).await;
    // Rows 25-344: row group 0 from its page 20-29 (read: 25-29 pass), pages 30-99 counted;
    // row group 1 and 2 whole; row group 3 pages 300-339 counted, page 340-349 read.
    let window = "SELECT count(*) AS n FROM t \
        WHERE time_created >= TIMESTAMP '2026-01-01T00:00:25Z' \
        AND time_created < TIMESTAMP '2026-01-01T00:05:45Z'";
    assert_eq!(text(&ours, window).await, "320");
    assert_eq!(text(&plain, window).await, "320");
    assert_eq!(
        answered_and_selected(&ours, window).await,
        (70 + 200 + 40, 20)
    );
    // Grouped by a column that holds one value in row groups 0-2 only: row group 3 is read,
    // its pages that the window keeps (300-349: the planner's pieces narrow it by the page
    // index of the filter's column), since they cannot say which channel their rows have.
    let by_channel = "SELECT channel, count(*) AS n FROM t \
        WHERE time_created >= TIMESTAMP '2026-01-01T00:00:25Z' \
        AND time_created < TIMESTAMP '2026-01-01T00:05:45Z' GROUP BY channel ORDER BY channel";
    assert_eq!(
        answered_and_selected(&ours, by_channel).await,
        (270, 10 + 50)
    );
    // Row group 0 holds two hosts (null and a name): not counted, though its pages that pass
    // whole hold as many rows as its nulls; read from the pages the window keeps (20-99), and
    // row group 3's page 340-349 as before.
    let by_host = "SELECT host, count(*) AS n FROM t \
        WHERE time_created >= TIMESTAMP '2026-01-01T00:00:25Z' \
        AND time_created < TIMESTAMP '2026-01-01T00:05:45Z' GROUP BY host ORDER BY host";
    assert_eq!(answered_and_selected(&ours, by_host).await, (240, 80 + 10));
    // A window inside one page: nothing passes whole, that page is read.
    let inside = "SELECT count(*) AS n FROM t \
        WHERE time_created > TIMESTAMP '2026-01-01T00:00:21Z' \
        AND time_created <= TIMESTAMP '2026-01-01T00:00:28Z'";
    assert_eq!(answered_and_selected(&ours, inside).await, (0, 10));
    // Not this shape, where pages are not counted: an aggregate other than count(*) (row
    // groups 1 and 2 are answered from their statistics), a filter on two columns (row
    // groups 1-3, which pass it whole); the scan reads the pages of the others that the
    // window keeps.
    let max = "SELECT count(*) AS n, max(event_id) AS m FROM t \
        WHERE time_created >= TIMESTAMP '2026-01-01T00:00:25Z' \
        AND time_created < TIMESTAMP '2026-01-01T00:05:45Z'";
    assert_eq!(answered_and_selected(&ours, max).await, (200, 80 + 50));
    let two = "SELECT count(*) AS n FROM t \
        WHERE time_created >= TIMESTAMP '2026-01-01T00:00:25Z' AND event_id >= 4624";
    assert_eq!(answered_and_selected(&ours, two).await, (300, 80));
    for q in [window, by_channel, by_host, inside, max, two] {
        let ours = text(&ours, q).await;
        assert_eq!(ours, text(&plain, q).await, "{q}");
        assert!(!ours.is_empty());
    }
    // One thread, and a single aggregation phase split around the answers.
    let one = local_with(&path, 1).await;
    for q in [window, by_channel, by_host] {
        assert_eq!(text(&one, q).await, text(&plain, q).await, "{q}");
    }
}
