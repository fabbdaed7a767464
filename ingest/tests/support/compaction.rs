//! Compaction: many small segments become large clustered ones with the same rows and manifest,
//! a second run changes nothing, and every crash point leaves the old or the new segments.

use std::fs;
use std::path::{Path, PathBuf};

use arrow::record_batch::RecordBatch;
use evtxsql_ingest::compact::{self, CompactOptions};
use evtxsql_ingest::{IngestOptions, NoProgress, Store, ingest};

use super::{assert_same_rows, is_clustered, read_back, row_group_batches};

fn scenario_dirs() -> Vec<PathBuf> {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data");
    let mut dirs: Vec<PathBuf> = fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    dirs
}

/// A store made of one small ingest per scenario, each cut into small segments.
fn many_small_ingests(store: &Path) -> u64 {
    let opts = IngestOptions {
        segment_rows: 500,
        ..IngestOptions::default()
    };
    let mut segments = 0;
    for dir in scenario_dirs() {
        let s = ingest(std::slice::from_ref(&dir), store, &opts, &NoProgress).unwrap();
        segments += s.segments_written;
    }
    segments
}

/// The manifest rows of a store ordered by file_id, without the segment column.
fn manifest(store: &Path) -> RecordBatch {
    let store = Store::open(store).unwrap();
    let mut batches = Vec::new();
    for part in store.manifest_parts().unwrap() {
        let file = fs::File::open(part).unwrap();
        let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        for b in reader {
            batches.push(b.unwrap());
        }
    }
    let all = arrow::compute::concat_batches(&evtxsql_ingest::files_schema(), &batches).unwrap();
    let order = arrow::compute::sort_to_indices(all.column_by_name("file_id").unwrap(), None, None)
        .unwrap();
    let mut sorted = arrow::compute::take_record_batch(&all, &order).unwrap();
    let seg = sorted.schema().index_of("segment").unwrap();
    sorted.remove_column(seg);
    sorted
}

pub(super) fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            fs::copy(e.path(), dest).unwrap();
        }
    }
}

#[test]
fn compaction_merges_small_segments_without_changing_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("daily");
    let written = many_small_ingests(&store);
    assert!(written >= 10, "{written} segments");
    let (rows_before, _) = read_back(&store);
    let files_before = manifest(&store);
    let plan = compact::plan_store(&store, 4_000_000).unwrap();
    assert_eq!(plan.groups.len(), 1, "{plan:?}");
    assert_eq!(plan.rewritten() as u64, written);

    let s = compact::compact(&store, &CompactOptions::default()).unwrap();
    assert_eq!(s.segments_before, written);
    assert_eq!(s.segments_rewritten, written);
    assert_eq!(s.segments_written, 1);
    assert_eq!(s.segments_after, 1);
    let (rows_after, groups) = read_back(&store);
    assert_eq!(groups.len(), 1);
    assert_same_rows(&rows_before, &rows_after);
    assert_eq!(manifest(&store), files_before);
    for g in row_group_batches(&store) {
        assert!(is_clustered(&g));
    }
    // Only the new segment's parts (and its list of what it replaced) are left.
    let opened = Store::open(&store).unwrap();
    let seg = opened.segments().unwrap()[0];
    assert_eq!(seg as u64, written, "a new number after the old ones");
    assert_eq!(fs::read_dir(opened.events_dir()).unwrap().count(), 1);
    assert_eq!(fs::read_dir(opened.files_dir()).unwrap().count(), 2);

    // Idempotent: nothing to do the second time, nothing changes.
    assert!(compact::plan_store(&store, 4_000_000).unwrap().is_empty());
    let again = compact::compact(&store, &CompactOptions::default()).unwrap();
    assert_eq!(again.segments_rewritten, 0);
    assert_eq!(Store::open(&store).unwrap().segments().unwrap(), vec![seg]);

    // An ingest after compaction still skips every file it has, and adds a new one's rows.
    for dir in scenario_dirs() {
        let s = ingest(
            std::slice::from_ref(&dir),
            &store,
            &IngestOptions::default(),
            &NoProgress,
        )
        .unwrap();
        assert_eq!(s.files_ingested, 0, "{s:?}");
        assert!(s.files_skipped > 0);
    }
}

/// Segments already large and clustered are kept; small ones around them are merged in runs.
#[test]
fn compaction_plan_keeps_large_clustered_segments() {
    let info = |segment, rows, clustered| compact::SegmentInfo {
        segment,
        rows,
        bytes: 0,
        clustered,
    };
    let segs = [
        info(0, 10, true),
        info(1, 10, true),
        info(2, 900, true),
        info(3, 10, true),
        info(4, 950, false),
        info(5, 400, true),
        info(6, 400, true),
        info(7, 400, true),
        info(8, 10, true),
    ];
    let plan = compact::plan(&segs, 1000);
    assert_eq!(
        plan.groups,
        vec![vec![0, 1], vec![3, 4], vec![5, 6], vec![7, 8]]
    );
    assert!(compact::plan(&[info(0, 10, true)], 1000).is_empty());
    assert_eq!(
        compact::plan(&[info(0, 900, false)], 1000).groups,
        vec![vec![0]]
    );
    assert!(compact::plan(&[info(0, 900, true), info(1, 900, true)], 1000).is_empty());
}

/// The two crash points of a compaction, rebuilt from the parts it writes: before the new
/// segment's manifest part is renamed into place only the old segments are visible (and the
/// next writer removes the new parts); after it, only the new one (and the next writer removes
/// the old parts). Never both, never neither.
#[test]
fn a_crash_in_compaction_leaves_old_or_new_segments() {
    let tmp = tempfile::tempdir().unwrap();
    let before = tmp.path().join("before");
    many_small_ingests(&before);
    let old = Store::open(&before).unwrap().segments().unwrap();
    let (rows, _) = read_back(&before);
    let done = tmp.path().join("done");
    copy_dir(&before, &done);
    compact::compact(&done, &CompactOptions::default()).unwrap();
    let new_seg = Store::open(&done).unwrap().segments().unwrap()[0];
    let done = Store::open(&done).unwrap();

    // Crash after the events part and the replaces list, before the manifest part.
    let early = tmp.path().join("early");
    copy_dir(&before, &early);
    let s = Store::open(&early).unwrap();
    fs::copy(done.events_part(new_seg), s.events_part(new_seg)).unwrap();
    fs::copy(done.replaces_part(new_seg), s.replaces_part(new_seg)).unwrap();
    assert_eq!(s.segments().unwrap(), old);
    assert_same_rows(&read_back(&early).0, &rows);
    let s = Store::create_or_open(&early).unwrap();
    assert!(!s.events_part(new_seg).exists());
    assert!(!s.replaces_part(new_seg).exists());
    assert_eq!(s.segments().unwrap(), old);

    // Crash after the commit, before the old parts are deleted.
    let late = tmp.path().join("late");
    copy_dir(&before, &late);
    let s = Store::open(&late).unwrap();
    for p in [
        done.events_part(new_seg),
        done.replaces_part(new_seg),
        done.files_part(new_seg),
    ] {
        fs::copy(&p, s.root().join(rel(&p, done.root()))).unwrap();
    }
    assert_eq!(s.segments().unwrap(), vec![new_seg]);
    assert_same_rows(&read_back(&late).0, &rows);
    // Opening it for writing (or compacting again) removes the old parts.
    let again = compact::compact(&late, &CompactOptions::default()).unwrap();
    assert_eq!(again.segments_rewritten, 0);
    for seg in &old {
        assert!(!s.files_part(*seg).exists());
        assert!(!s.events_part(*seg).exists());
    }
    assert_same_rows(&read_back(&late).0, &rows);
}

fn rel(p: &Path, root: &Path) -> PathBuf {
    p.strip_prefix(root).unwrap().to_path_buf()
}
