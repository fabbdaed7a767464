//! `compact`: rewrite many small segments (daily appends) and segments written before the
//! clustered layout into large clustered ones.
//!
//! Each group of old segments becomes one new segment through the same [`SegmentWriter`] as
//! ingest (so the layout is the same), its manifest rows copied with the new segment number.
//! The new segment names the old ones in its `.replaces` list before it is committed; from the
//! commit on, readers see the new segment and not the old ones, which are then deleted (see
//! [`crate::store`]). A crash leaves either the old or the new segments visible, and running
//! compaction again finishes or redoes the work. A store with nothing to gain is left alone.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::Serialize;

use crate::error::{IngestError, Result};
use crate::schema::{STORE_FORMAT_VERSION, events_schema, files_schema};
use crate::segment::{LAYOUT_CLUSTERED, LAYOUT_KEY, Layout, SegmentWriter};
use crate::store::Store;

/// How to compact.
#[derive(Debug, Clone)]
pub struct CompactOptions {
    /// Rows a new segment aims at; segments of at least half of it that already have the
    /// clustered layout are left as they are.
    pub segment_rows: usize,
    /// Layout of the new segments.
    pub layout: Layout,
    /// Encoder threads; 0 means one per core.
    pub threads: usize,
}

impl Default for CompactOptions {
    fn default() -> Self {
        CompactOptions {
            segment_rows: crate::ingest::IngestOptions::default().segment_rows,
            layout: Layout::default(),
            threads: 0,
        }
    }
}

/// One committed segment as compaction sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SegmentInfo {
    pub segment: u32,
    pub rows: u64,
    pub bytes: u64,
    /// Written with the clustered layout ([`LAYOUT_CLUSTERED`]).
    pub clustered: bool,
}

/// What compaction would do: groups of old segments, each to become one new segment.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactPlan {
    pub segments: Vec<SegmentInfo>,
    pub groups: Vec<Vec<u32>>,
}

impl CompactPlan {
    /// Segments that would be rewritten.
    pub fn rewritten(&self) -> usize {
        self.groups.iter().map(Vec::len).sum()
    }

    /// Of the segments that would be rewritten, those not clustered whole: written as several
    /// sorted runs (a large ingest's own segment) or before the clustered layout.
    pub fn unclustered(&self) -> usize {
        self.groups
            .iter()
            .flatten()
            .filter(|&&seg| {
                self.segments
                    .iter()
                    .any(|s| s.segment == seg && !s.clustered)
            })
            .count()
    }

    /// Whether compaction would change anything.
    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }
}

/// What a compaction did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CompactSummary {
    pub store: PathBuf,
    pub segments_before: u64,
    pub segments_after: u64,
    pub segments_rewritten: u64,
    pub segments_written: u64,
    pub rows_rewritten: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
    pub elapsed_secs: f64,
}

/// The committed segments of `store`: rows, size and layout, from their events parts' footers.
pub fn segment_infos(store: &Store) -> Result<Vec<SegmentInfo>> {
    let mut out = Vec::new();
    for segment in store.segments()? {
        let path = store.events_part(segment);
        let Ok(file) = File::open(&path) else {
            // A segment of failed files only: no events part.
            out.push(SegmentInfo {
                segment,
                rows: 0,
                bytes: 0,
                clustered: true,
            });
            continue;
        };
        let bytes = file
            .metadata()
            .map_err(|e| IngestError::io(&path, e))?
            .len();
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| IngestError::BadStore {
                path: path.clone(),
                message: e.to_string(),
            })?;
        let meta = builder.metadata().file_metadata();
        let clustered = meta.key_value_metadata().is_some_and(|kv| {
            kv.iter()
                .any(|e| e.key == LAYOUT_KEY && e.value.as_deref() == Some(LAYOUT_CLUSTERED))
        });
        out.push(SegmentInfo {
            segment,
            rows: u64::try_from(meta.num_rows()).unwrap_or(0),
            bytes,
            clustered,
        });
    }
    Ok(out)
}

/// Group the segments compaction rewrites: consecutive segments that are small (under half of
/// `segment_rows`) or not clustered, gathered until a group holds `segment_rows` rows. A group
/// is rewritten when it merges segments or clusters one; a lone small clustered segment stays.
pub fn plan(segments: &[SegmentInfo], segment_rows: usize) -> CompactPlan {
    let target = segment_rows.max(1) as u64;
    let mut groups = Vec::new();
    let mut group: Vec<&SegmentInfo> = Vec::new();
    let mut rows = 0u64;
    let close = |group: &mut Vec<&SegmentInfo>, groups: &mut Vec<Vec<u32>>| {
        if group.len() > 1 || group.iter().any(|s| !s.clustered) {
            groups.push(group.iter().map(|s| s.segment).collect());
        }
        group.clear();
    };
    for s in segments {
        let candidate = !s.clustered || s.rows < target / 2;
        if !candidate {
            close(&mut group, &mut groups);
            rows = 0;
            continue;
        }
        if !group.is_empty() && rows + s.rows > target {
            close(&mut group, &mut groups);
            rows = 0;
        }
        group.push(s);
        rows += s.rows;
    }
    close(&mut group, &mut groups);
    CompactPlan {
        segments: segments.to_vec(),
        groups,
    }
}

/// The plan for the store at `store_dir` (read only).
pub fn plan_store(store_dir: &Path, segment_rows: usize) -> Result<CompactPlan> {
    let store = Store::open(store_dir)?;
    Ok(plan(&segment_infos(&store)?, segment_rows))
}

/// Compact the store at `store_dir`.
pub fn compact(store_dir: &Path, opts: &CompactOptions) -> Result<CompactSummary> {
    let started = Instant::now();
    // Opening for writing finishes an interrupted compaction (deletes replaced segments).
    let store = Store::create_or_open(store_dir)?;
    let before = segment_infos(&store)?;
    let plan = plan(&before, opts.segment_rows);
    let mut summary = CompactSummary {
        store: store_dir.to_path_buf(),
        segments_before: before.len() as u64,
        bytes_before: store.size_bytes()?,
        ..CompactSummary::default()
    };
    if !plan.is_empty() {
        store.require_format(STORE_FORMAT_VERSION)?;
    }
    let threads = if opts.threads == 0 {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    } else {
        opts.threads
    };
    let next = before.iter().map(|s| s.segment + 1).max().unwrap_or(0);
    let mut writer = SegmentWriter::new(&store, next, opts.layout, threads);
    for group in &plan.groups {
        for &seg in group {
            let events = store.events_part(seg);
            if events.exists() {
                for batch in read_part(&events)? {
                    let batch = batch?;
                    summary.rows_rewritten += batch.num_rows() as u64;
                    writer.write(&batch)?;
                }
            }
            for batch in read_part(&store.files_part(seg))? {
                writer.copied_entries.push(batch?);
            }
        }
        if writer.commit(group)? {
            summary.segments_written += 1;
        }
        summary.segments_rewritten += group.len() as u64;
        store.remove_replaced()?;
    }
    summary.segments_after = store.segments()?.len() as u64;
    summary.bytes_after = store.size_bytes()?;
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// The record batches of a Parquet part, each checked against its table's schema.
fn read_part(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch>>> {
    let bad = |message: String| IngestError::BadStore {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.with_batch_size(16 * 1024).build())
        .map_err(|e| bad(e.to_string()))?;
    let is_files = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|n| n == crate::store::FILES_DIR);
    let path = path.to_path_buf();
    Ok(reader.map(move |b| {
        let b = b.map_err(|e| IngestError::BadStore {
            path: path.clone(),
            message: e.to_string(),
        })?;
        conform(b, &path, is_files)
    }))
}

/// `batch` with the schema of the events (or files) table: the same columns and types.
fn conform(batch: RecordBatch, path: &Path, files: bool) -> Result<RecordBatch> {
    let schema = if files {
        files_schema()
    } else {
        events_schema()
    };
    if batch.schema() == schema {
        return Ok(batch);
    }
    RecordBatch::try_new(schema, batch.columns().to_vec()).map_err(|e| IngestError::BadStore {
        path: path.to_path_buf(),
        message: format!("columns differ from this version's schema: {e}"),
    })
}
