//! The segment writer and the store's layout: how rows of the events table are ordered, cut
//! into row groups and encoded before a segment is committed. `ingest` and `compact` both write
//! through it, so the layout lives here and nowhere else.
//!
//! Layout: every segment is sorted by the clustering key (`channel`, `event_id`,
//! `time_created`, then `file_id`, `record_id` so the order is total) and cut into row groups of
//! [`Layout::row_group_rows`] rows, so the statistics of each row group cover a narrow range of
//! the key: filters on channel, event id and time skip most row groups (and, with the page index,
//! most pages).
//!
//! Memory stays bounded while a segment is sorted: rows are buffered in a *sort run* of at most
//! [`Layout::run_bytes`] of Arrow memory. How the runs become the segment depends on
//! [`Layout::merge_runs`]:
//! - `ingest` sorts each full run and encodes it at once, while the readers go on decoding (the
//!   encoding overlaps the decoding, and memory is one run). A row group never spans two runs,
//!   so each row group is sorted and its statistics stay narrow; a segment of several runs is
//!   marked [`LAYOUT_SORTED_RUNS`], one of a single run [`LAYOUT_CLUSTERED`].
//! - `compact` sorts the segment whole: a segment that fits in one run is sorted in memory;
//!   otherwise each full run is sorted and spilled to an Arrow IPC file in the store's `tmp/`,
//!   and at commit the runs are merged (k-way, by the key's row format) into the segment
//!   ([`LAYOUT_CLUSTERED`]). Memory: one run plus one batch per spilled run and the encoded pages
//!   of one row group.

use std::fs::{self, File};
use std::io::{BufReader, BufWriter};
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{ArrayRef, UInt32Array};
use arrow::compute::interleave_record_batch;
use arrow::ipc::reader::StreamReader;
use arrow::ipc::writer::StreamWriter;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::error::{IngestError, Result};
use crate::manifest::{self, FileEntry};
use crate::schema::{col, events_schema, files_col, files_schema};
use crate::store::Store;

mod encode;
mod order;

use encode::Encoder;
pub use order::{CLUSTER_KEY, cluster_order};
use order::{RunCursor, key_converter};

/// Key-value metadata key naming the layout an events part was written with.
pub const LAYOUT_KEY: &str = "evtxsql.layout";
/// A segment sorted whole by [`CLUSTER_KEY`] (`compact`, or an ingest of a single run).
pub const LAYOUT_CLUSTERED: &str = "clustered-1";
/// A segment of several runs, each sorted by [`CLUSTER_KEY`] and cut into its own row groups
/// (`ingest`); `compact` merges such segments into clustered ones.
pub const LAYOUT_SORTED_RUNS: &str = "sorted-runs-1";
/// Rows per batch of a spilled run, and per batch the merge emits.
const MERGE_BATCH_ROWS: usize = 8192;
/// How rows are laid out in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// Rows per Parquet row group (the last of a segment may hold fewer).
    pub row_group_rows: usize,
    /// Arrow memory of the rows sorted together in memory.
    pub run_bytes: usize,
    /// Sort each segment whole (full runs spilled, merged at commit), instead of encoding each
    /// sorted run as it fills.
    pub merge_runs: bool,
}

impl Default for Layout {
    /// The layout `compact` writes: each segment sorted whole.
    fn default() -> Self {
        Layout {
            row_group_rows: 128 * 1024,
            run_bytes: 256 << 20,
            merge_runs: true,
        }
    }
}

impl Layout {
    /// The layout `ingest` writes: sorted runs of 64 MiB, each encoded as soon as it fills.
    pub fn ingest() -> Self {
        Layout {
            run_bytes: 64 << 20,
            merge_runs: false,
            ..Layout::default()
        }
    }
}

/// Columns stored without compression: dictionary-encoded names and small codes, whose pages
/// (bit-packed keys) zstd barely shrinks (on the 10.5 M-event store `computer` took 7.93 MB with
/// zstd and 8.06 MB without, `event_id` more with it than without), while every page read
/// pays a zstd decoder's set-up and run.
const UNCOMPRESSED_COLUMNS: &[&str] = &[
    col::EVENT_ID,
    col::QUALIFIERS,
    col::PROVIDER,
    col::PROVIDER_GUID,
    col::CHANNEL,
    col::COMPUTER,
    col::LEVEL,
    col::OPCODE,
    col::VERSION,
    col::TASK,
    col::KEYWORDS,
    col::USER_SID,
    "user_name",
    "user_domain",
    "target_sid",
    "logon_type",
    "auth_package",
    "server_name",
    "server_ip",
    "server_port",
    "share_name",
    "client_name",
    "client_ip",
    "status",
];

/// The Parquet writer properties of events parts: zstd (but [`UNCOMPRESSED_COLUMNS`]); row group statistics for every column
/// but the payload, page statistics (the column index, for pruning pages) for the clustering
/// columns and the provider only; no dictionary for the payload, record ids and times, record
/// ids and times as deltas.
/// The layout's name ([`LAYOUT_KEY`]) is added to the footer when the segment is finished.
pub fn events_writer_properties(row_group_rows: usize) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows))
        // Page statistics prune only where a page's rows are sorted or nearly constant: the
        // clustering key (channel, event id, time) and the provider, which follows the channel
        // and event id. Elsewhere (computer, user and server names) a page spans most values,
        // yet every scan that loads the page index parsed them: on the 10.5 M-event store
        // they were 330 of its 400 KB of column index.
        .set_statistics_enabled(EnabledStatistics::Chunk);
    for column in [
        col::CHANNEL,
        col::EVENT_ID,
        col::TIME_CREATED,
        col::PROVIDER,
    ] {
        builder = builder
            .set_column_statistics_enabled(ColumnPath::from(column), EnabledStatistics::Page);
    }
    for column in UNCOMPRESSED_COLUMNS {
        builder =
            builder.set_column_compression(ColumnPath::from(*column), Compression::UNCOMPRESSED);
    }
    builder
        .set_column_dictionary_enabled(ColumnPath::from(col::DATA), false)
        // No filter can use the min/max of JSON text, yet every query read them: on the 10.5
        // M-event store they were 395 of the 830 KB of column index that a query parses.
        .set_column_statistics_enabled(ColumnPath::from(col::DATA), EnabledStatistics::None)
        // Unique, or nearly, in every row group: a dictionary would only cost its building.
        // Sorted within runs of a channel and event id, so stored as deltas (zstd on top
        // still finds repeats in some logs): on the 10.5 M-event store the times took 37.8 MB
        // as zstd over plain values and 30.7 MB as deltas, and min/max time per channel read
        // them in 0.09 s instead of 0.15 s.
        .set_column_dictionary_enabled(ColumnPath::from(col::RECORD_ID), false)
        .set_column_dictionary_enabled(ColumnPath::from(col::TIME_CREATED), false)
        .set_column_encoding(
            ColumnPath::from(col::RECORD_ID),
            Encoding::DELTA_BINARY_PACKED,
        )
        .set_column_encoding(
            ColumnPath::from(col::TIME_CREATED),
            Encoding::DELTA_BINARY_PACKED,
        )
        .set_created_by(format!("evtxsql {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The segment being written: events rows to a temporary Parquet file, manifest rows in memory.
///
/// Rows are buffered into a sort run, sorted ([`cluster_order`]) and spilled or, at commit,
/// merged with the spilled runs and encoded, each row group's columns in parallel on a pool of
/// their own (one task per column); a row group is closed at exactly `row_group_rows` rows, its
/// column chunks appended in schema order.
pub(crate) struct SegmentWriter<'s> {
    store: &'s Store,
    segment: u32,
    layout: Layout,
    /// The segment file's encoder, when no run is being encoded in the background.
    encoder: Option<Box<Encoder>>,
    /// A full run being sorted and encoded on a thread of its own (ingest's layout), while
    /// this writer takes the next run's rows: the readers go on decoding meanwhile. It hands
    /// the encoder back when done.
    busy: Option<std::thread::JoinHandle<(Box<Encoder>, Result<()>)>>,
    run: Vec<RecordBatch>,
    run_bytes: usize,
    /// Sorted runs of this segment spilled to `tmp/` (merging layout).
    spilled: Vec<PathBuf>,
    /// Sorted runs of this segment already encoded (ingest's layout).
    encoded_runs: usize,
    /// Rows of the segment so far, buffered or written.
    pub(crate) rows: usize,
    /// Manifest rows of the files whose events are in this segment.
    pub(crate) entries: Vec<FileEntry>,
    /// Manifest rows copied from other segments (compaction); their `segment` is rewritten.
    pub(crate) copied_entries: Vec<RecordBatch>,
}

impl<'s> SegmentWriter<'s> {
    pub(crate) fn new(store: &'s Store, segment: u32, layout: Layout, threads: usize) -> Self {
        let encoders = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("evtxsql-encode-{i}"))
            .build()
            .ok();
        let row_group_rows = layout.row_group_rows.max(1);
        SegmentWriter {
            store,
            segment,
            layout: Layout {
                row_group_rows,
                run_bytes: layout.run_bytes.max(1),
                merge_runs: layout.merge_runs,
            },
            encoder: Some(Box::new(Encoder {
                writer: None,
                pool: encoders.map(Arc::new),
                row_group_rows,
                tmp: tmp_events(store, segment),
            })),
            busy: None,
            run: Vec::new(),
            run_bytes: 0,
            spilled: Vec::new(),
            encoded_runs: 0,
            rows: 0,
            entries: Vec::new(),
            copied_entries: Vec::new(),
        }
    }

    fn tmp_events(&self) -> PathBuf {
        tmp_events(self.store, self.segment)
    }

    /// The encoder, once the run being encoded in the background (if any) is done; its
    /// error, if it failed.
    fn encoder(&mut self) -> Result<&mut Encoder> {
        if let Some(job) = self.busy.take() {
            let (encoder, done) = job.join().map_err(|_| IngestError::Parquet {
                path: self.tmp_events(),
                source: parquet::errors::ParquetError::General(
                    "the thread encoding a sort run panicked".into(),
                ),
            })?;
            self.encoder = Some(encoder);
            done?;
        }
        let tmp = self.tmp_events();
        let encoder = self.encoder.as_mut().ok_or_else(|| IngestError::Parquet {
            path: tmp.clone(),
            source: parquet::errors::ParquetError::General(
                "the segment's encoder was lost to an earlier failure".into(),
            ),
        })?;
        if encoder.writer.is_none() {
            encoder.tmp = tmp;
        }
        Ok(encoder)
    }

    /// Add rows of the events schema; a full sort run is sorted and encoded, or spilled.
    pub(crate) fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        self.run_bytes += batch.get_array_memory_size();
        self.rows += batch.num_rows();
        self.run.push(batch.clone());
        if self.run_bytes >= self.layout.run_bytes {
            if self.layout.merge_runs {
                self.spill_run()?;
            } else {
                self.encode_run()?;
            }
        }
        Ok(())
    }

    /// Sort the buffered run and encode it into the segment, in row groups of its own, on a
    /// thread of its own (see `busy`); waits for the run before it first.
    fn encode_run(&mut self) -> Result<()> {
        if self.run.is_empty() {
            return Ok(());
        }
        self.encoder()?;
        let Some(mut encoder) = self.encoder.take() else {
            return Ok(());
        };
        let run = std::mem::take(&mut self.run);
        self.run_bytes = 0;
        self.encoded_runs += 1;
        let job = std::thread::Builder::new()
            .name("evtxsql-sort".into())
            .spawn(move || {
                let done = encoder.encode_run(run);
                (encoder, done)
            })
            .map_err(|e| IngestError::Threads(e.to_string()))?;
        self.busy = Some(job);
        Ok(())
    }

    /// Sort the buffered run and write it to a spill file of its own.
    fn spill_run(&mut self) -> Result<()> {
        if self.run.is_empty() {
            return Ok(());
        }
        let run = std::mem::take(&mut self.run);
        self.run_bytes = 0;
        let order = cluster_order(&run)?;
        let path = self.store.tmp_dir().join(format!(
            "run-{:06}-{:04}.arrows",
            self.segment,
            self.spilled.len()
        ));
        let file = File::create(&path).map_err(|e| IngestError::io(&path, e))?;
        let mut w = StreamWriter::try_new(BufWriter::new(file), &events_schema())?;
        let batches: Vec<&RecordBatch> = run.iter().collect();
        for chunk in order.chunks(MERGE_BATCH_ROWS) {
            w.write(&interleave_record_batch(&batches, chunk)?)?;
        }
        w.finish()?;
        self.spilled.push(path);
        Ok(())
    }

    /// Write the segment's rows not yet written, sorted: the last run alone, or every spilled
    /// run merged.
    fn write_sorted(&mut self) -> Result<()> {
        if self.spilled.is_empty() {
            return self.encode_run();
        }
        self.spill_run()?;
        let (key, converter) = key_converter()?;
        let mut live: Vec<RecordBatch> = Vec::new();
        let mut cursors = Vec::with_capacity(self.spilled.len());
        for path in &self.spilled {
            let file = File::open(path).map_err(|e| IngestError::io(path, e))?;
            let mut c = RunCursor {
                reader: StreamReader::try_new(BufReader::new(file), None)?,
                head: None,
                pos: 0,
            };
            c.advance(&key, &converter, &mut live)?;
            cursors.push(c);
        }
        let mut out: Vec<(usize, usize)> = Vec::with_capacity(MERGE_BATCH_ROWS);
        loop {
            // The run whose head row is least (k is small: a linear scan).
            let mut least: Option<(usize, arrow::row::Row<'_>)> = None;
            for (i, c) in cursors.iter().enumerate() {
                if let Some((_, rows)) = &c.head {
                    let row = rows.row(c.pos);
                    if least.as_ref().is_none_or(|(_, l)| row < *l) {
                        least = Some((i, row));
                    }
                }
            }
            let Some((i, _)) = least else { break };
            let c = &mut cursors[i];
            let Some((slot, rows)) = &c.head else { break };
            out.push((*slot, c.pos));
            c.pos += 1;
            if c.pos == rows.num_rows() {
                c.advance(&key, &converter, &mut live)?;
            }
            if out.len() == MERGE_BATCH_ROWS {
                self.flush_merged(&mut out, &mut live, &mut cursors)?;
            }
        }
        self.flush_merged(&mut out, &mut live, &mut cursors)?;
        Ok(())
    }

    /// Encode the merged rows `out` (indices into `live`), then keep only the live batches
    /// that are still some run's head.
    fn flush_merged(
        &mut self,
        out: &mut Vec<(usize, usize)>,
        live: &mut Vec<RecordBatch>,
        cursors: &mut [RunCursor],
    ) -> Result<()> {
        if !out.is_empty() {
            let refs: Vec<&RecordBatch> = live.iter().collect();
            let merged = interleave_record_batch(&refs, out)?;
            out.clear();
            self.encoder()?.encode_sorted(&merged)?;
        }
        let mut kept = Vec::with_capacity(cursors.len());
        for c in cursors.iter_mut() {
            if let Some((slot, _)) = c.head.as_mut() {
                kept.push(live[*slot].clone());
                *slot = kept.len() - 1;
            }
        }
        *live = kept;
        Ok(())
    }

    /// The number the segment being written will be committed under.
    pub(crate) fn segment(&self) -> u32 {
        self.segment
    }

    /// Commit the segment if it holds anything; returns whether it did. `replaces`: committed
    /// segments this one takes the place of (compaction), hidden from readers from the moment
    /// this segment is committed.
    pub(crate) fn commit(&mut self, replaces: &[u32]) -> Result<bool> {
        let open = self.busy.is_some() || self.encoder()?.writer.is_some();
        if self.entries.is_empty() && self.copied_entries.is_empty() && self.run.is_empty() && !open
        {
            return Ok(false);
        }
        self.write_sorted()?;
        let encoder = self.encoder()?;
        let (writer, pool) = (encoder.writer.take(), encoder.pool.clone());
        for p in std::mem::take(&mut self.spilled) {
            fs::remove_file(&p).map_err(|e| IngestError::io(&p, e))?;
        }
        let layout = if self.encoded_runs > 1 {
            LAYOUT_SORTED_RUNS
        } else {
            LAYOUT_CLUSTERED
        };
        self.encoded_runs = 0;
        if let Some(mut w) = writer {
            w.name_layout(layout);
            let tmp = self.tmp_events();
            let file = w
                .finish(pool.as_deref())
                .map_err(|source| IngestError::Parquet {
                    path: tmp.clone(),
                    source,
                })?;
            file.sync_all().map_err(|e| IngestError::io(&tmp, e))?;
            let dest = self.store.events_part(self.segment);
            fs::rename(&tmp, &dest).map_err(|e| IngestError::io(&dest, e))?;
        }
        for e in self.entries.iter_mut() {
            e.segment = self.segment;
        }
        let mut batches = vec![manifest::to_batch(&self.entries)?];
        for b in std::mem::take(&mut self.copied_entries) {
            batches.push(with_segment(&b, self.segment)?);
        }
        if !replaces.is_empty() {
            self.store.write_replaces(self.segment, replaces)?;
        }
        let tmp = self.store.tmp_dir().join(format!(
            "files-{}",
            crate::store::segment_file_name(self.segment)
        ));
        let parquet_err = |source| IngestError::Parquet {
            path: tmp.clone(),
            source,
        };
        let file = File::create(&tmp).map_err(|e| IngestError::io(&tmp, e))?;
        let mut w = ArrowWriter::try_new(file, files_schema(), None).map_err(parquet_err)?;
        for batch in &batches {
            w.write(batch).map_err(parquet_err)?;
        }
        let file = w.into_inner().map_err(parquet_err)?;
        file.sync_all().map_err(|e| IngestError::io(&tmp, e))?;
        let dest = self.store.files_part(self.segment);
        fs::rename(&tmp, &dest).map_err(|e| IngestError::io(&dest, e))?;
        self.entries.clear();
        self.rows = 0;
        self.segment += 1;
        Ok(true)
    }
}

/// A manifest batch with its `segment` column set to `segment`.
fn with_segment(batch: &RecordBatch, segment: u32) -> Result<RecordBatch> {
    let schema = files_schema();
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(schema.fields().len());
    for field in schema.fields() {
        if field.name() == files_col::SEGMENT {
            columns.push(Arc::new(UInt32Array::from(vec![segment; batch.num_rows()])));
        } else {
            let c = batch.column_by_name(field.name()).ok_or_else(|| {
                arrow::error::ArrowError::SchemaError(format!(
                    "manifest rows lack column {}",
                    field.name()
                ))
            })?;
            columns.push(c.clone());
        }
    }
    Ok(RecordBatch::try_new(schema, columns)?)
}

/// Where segment `segment`'s events file is written before it is committed.
fn tmp_events(store: &Store, segment: u32) -> PathBuf {
    store.tmp_dir().join(format!(
        "events-{}",
        crate::store::segment_file_name(segment)
    ))
}

impl Drop for SegmentWriter<'_> {
    /// A run still being encoded is waited for: its thread writes into the store's `tmp/`.
    fn drop(&mut self) {
        if let Some(job) = self.busy.take() {
            let _ = job.join();
        }
    }
}
