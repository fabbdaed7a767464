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
use arrow::row::{RowConverter, Rows, SortField};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;

use crate::error::{IngestError, Result};
use crate::manifest::{self, FileEntry};
use crate::schema::{col, events_schema, files_col, files_schema};
use crate::store::Store;

/// Key-value metadata key naming the layout an events part was written with.
pub const LAYOUT_KEY: &str = "evtxsql.layout";
/// A segment sorted whole by [`CLUSTER_KEY`] (`compact`, or an ingest of a single run).
pub const LAYOUT_CLUSTERED: &str = "clustered-1";
/// A segment of several runs, each sorted by [`CLUSTER_KEY`] and cut into its own row groups
/// (`ingest`); `compact` merges such segments into clustered ones.
pub const LAYOUT_SORTED_RUNS: &str = "sorted-runs-1";
/// Rows per batch of a spilled run, and per batch the merge emits.
const MERGE_BATCH_ROWS: usize = 8192;
/// The columns a segment's rows are sorted by, in order.
pub const CLUSTER_KEY: [&str; 5] = [
    col::CHANNEL,
    col::EVENT_ID,
    col::TIME_CREATED,
    col::FILE_ID,
    col::RECORD_ID,
];

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

/// The Parquet writer properties of events parts: zstd, page statistics and page index (for
/// pruning on channel, event_id and time), no dictionary for the payload, record ids and times.
/// The layout's name ([`LAYOUT_KEY`]) is added to the footer when the segment is finished.
pub fn events_writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ColumnPath::from(col::DATA), false)
        // Unique, or nearly, in every row group: a dictionary would only cost its building.
        .set_column_dictionary_enabled(ColumnPath::from(col::RECORD_ID), false)
        .set_column_dictionary_enabled(ColumnPath::from(col::TIME_CREATED), false)
        .set_created_by(format!("evtxsql {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The clustering key's columns and a row converter for them.
fn key_converter() -> Result<(Vec<usize>, RowConverter)> {
    let schema = events_schema();
    let key: Vec<usize> = CLUSTER_KEY
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .collect();
    let converter = RowConverter::new(
        key.iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )?;
    Ok((key, converter))
}

/// The clustering key of a batch's rows, in the row format (compared as bytes).
fn key_rows(key: &[usize], converter: &RowConverter, batch: &RecordBatch) -> Result<Rows> {
    let columns: Vec<ArrayRef> = key.iter().map(|&i| batch.column(i).clone()).collect();
    Ok(converter.convert_columns(&columns)?)
}

fn schema_error(message: String) -> IngestError {
    IngestError::Arrow(arrow::error::ArrowError::SchemaError(message))
}

/// The order of a run's rows by the clustering key: `(batch, row)` pairs, ascending.
///
/// The same order as the key's row format (which the merge of spilled runs compares): each
/// column ascending, nulls first, channels by their text. Channels are ranked once per run
/// (a batch's dictionary holds a handful), so the sort compares integers, not rows of bytes.
pub fn cluster_order(batches: &[RecordBatch]) -> Result<Vec<(usize, usize)>> {
    use arrow::array::{Array, AsArray, DictionaryArray};
    use arrow::datatypes::{Int32Type, TimestampMicrosecondType, UInt32Type, UInt64Type};
    let column = |b: &RecordBatch, name: &str| {
        b.column_by_name(name)
            .cloned()
            .ok_or_else(|| schema_error(format!("a sort run has no column {name}")))
    };
    // Every channel of the run, ranked by its text (1-based: 0 is null).
    let mut channels: Vec<&str> = Vec::new();
    let mut dicts: Vec<ArrayRef> = Vec::with_capacity(batches.len());
    for b in batches {
        dicts.push(column(b, col::CHANNEL)?);
    }
    let typed: Vec<&DictionaryArray<Int32Type>> = dicts
        .iter()
        .map(|d| {
            d.as_dictionary_opt::<Int32Type>()
                .ok_or_else(|| schema_error("channel is not a dictionary".into()))
        })
        .collect::<Result<_>>()?;
    for d in &typed {
        channels.extend(d.values().as_string::<i32>().iter().flatten());
    }
    channels.sort_unstable();
    channels.dedup();
    let rank = |s: &str| channels.binary_search(&s).map_or(0, |i| i as u32 + 1);

    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Key {
        channel: u32,
        event_id: Option<u32>,
        time: Option<i64>,
        file_id: u32,
        record_id: u64,
        at: (u32, u32),
    }
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut keys: Vec<Key> = Vec::with_capacity(rows);
    for (b, (batch, dict)) in batches.iter().zip(&typed).enumerate() {
        let values = dict.values().as_string::<i32>();
        let ranks: Vec<u32> = (0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    0
                } else {
                    rank(values.value(i))
                }
            })
            .collect();
        let ids = column(batch, col::EVENT_ID)?;
        let ids = ids.as_primitive::<UInt32Type>();
        let times = column(batch, col::TIME_CREATED)?;
        let times = times.as_primitive::<TimestampMicrosecondType>();
        let files = column(batch, col::FILE_ID)?;
        let files = files.as_primitive::<UInt32Type>();
        let records = column(batch, col::RECORD_ID)?;
        let records = records.as_primitive::<UInt64Type>();
        for i in 0..batch.num_rows() {
            let channel = if dict.is_null(i) {
                0
            } else {
                usize::try_from(dict.keys().value(i))
                    .ok()
                    .and_then(|k| ranks.get(k).copied())
                    .unwrap_or(0)
            };
            keys.push(Key {
                channel,
                event_id: ids.is_valid(i).then(|| ids.value(i)),
                time: times.is_valid(i).then(|| times.value(i)),
                file_id: files.value(i),
                record_id: records.value(i),
                at: (b as u32, i as u32),
            });
        }
    }
    keys.sort_unstable();
    Ok(keys
        .into_iter()
        .map(|k| (k.at.0 as usize, k.at.1 as usize))
        .collect())
}

/// A spilled sorted run being merged: its reader, and the batch at its head with its key rows.
struct RunCursor {
    reader: StreamReader<BufReader<File>>,
    /// Index of the head batch among the merge's live batches, its keys, the next row.
    head: Option<(usize, Rows)>,
    pos: usize,
}

impl RunCursor {
    /// Load the next batch (into `live`); `head` is None once the run is done.
    fn advance(
        &mut self,
        key: &[usize],
        converter: &RowConverter,
        live: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        self.head = None;
        self.pos = 0;
        for batch in self.reader.by_ref() {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let rows = key_rows(key, converter, &batch)?;
            live.push(batch);
            self.head = Some((live.len() - 1, rows));
            break;
        }
        Ok(())
    }
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

/// Encodes sorted rows into a segment file: the file (opened on first use), the pool its
/// columns are encoded on, where the file is written.
struct Encoder {
    writer: Option<OpenSegment>,
    pool: Option<Arc<rayon::ThreadPool>>,
    row_group_rows: usize,
    tmp: PathBuf,
}

/// A segment file being written.
struct OpenSegment {
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    row_groups: usize,
    /// The column writers of the row group in progress, and its rows so far.
    columns: Vec<ArrowColumnWriter>,
    group_rows: usize,
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
            w.file.append_key_value_metadata(KeyValue::new(
                LAYOUT_KEY.to_string(),
                layout.to_string(),
            ));
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

impl Encoder {
    fn failed(&self) -> impl Fn(parquet::errors::ParquetError) -> IngestError + use<> {
        let path = self.tmp.clone();
        move |source| IngestError::Parquet {
            path: path.clone(),
            source,
        }
    }

    /// Sort a run and encode it in row groups of its own.
    fn encode_run(&mut self, run: Vec<RecordBatch>) -> Result<()> {
        let order = cluster_order(&run)?;
        let batches: Vec<&RecordBatch> = run.iter().collect();
        for chunk in order.chunks(MERGE_BATCH_ROWS) {
            self.encode_sorted(&interleave_record_batch(&batches, chunk)?)?;
        }
        drop(batches);
        drop(run);
        let failed = self.failed();
        if let Some(open) = self.writer.as_mut()
            && open.group_rows > 0
        {
            open.close_row_group(self.pool.as_deref())
                .map_err(&failed)?;
        }
        Ok(())
    }

    /// Encode sorted rows into the segment file (opened on first use), closing a row group at
    /// exactly `row_group_rows` rows.
    fn encode_sorted(&mut self, batch: &RecordBatch) -> Result<()> {
        let failed = self.failed();
        if self.writer.is_none() {
            let path = &self.tmp;
            let file = File::create(path).map_err(|e| IngestError::io(path, e))?;
            let (file, factory) = ArrowWriter::try_new(
                file,
                events_schema(),
                Some(events_writer_properties(self.row_group_rows)),
            )
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(&failed)?;
            let columns = factory.create_column_writers(0).map_err(&failed)?;
            self.writer = Some(OpenSegment {
                file,
                factory,
                row_groups: 0,
                columns,
                group_rows: 0,
            });
        }
        let Some(open) = self.writer.as_mut() else {
            return Ok(());
        };
        let pool = self.pool.as_deref();
        let mut at = 0;
        while at < batch.num_rows() {
            let n = (self.row_group_rows - open.group_rows).min(batch.num_rows() - at);
            let part = batch.slice(at, n);
            encode(&mut open.columns, &part, pool).map_err(&failed)?;
            open.group_rows += n;
            at += n;
            if open.group_rows == self.row_group_rows {
                open.close_row_group(pool).map_err(&failed)?;
            }
        }
        Ok(())
    }
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

impl OpenSegment {
    /// Close the row group in progress (its columns in parallel) and start the next one.
    fn close_row_group(
        &mut self,
        pool: Option<&rayon::ThreadPool>,
    ) -> std::result::Result<(), parquet::errors::ParquetError> {
        let next = self.factory.create_column_writers(self.row_groups + 1)?;
        let writers = std::mem::replace(&mut self.columns, next);
        let close = || {
            writers
                .into_par_iter()
                .map(ArrowColumnWriter::close)
                .collect::<std::result::Result<Vec<_>, _>>()
        };
        let chunks = match pool {
            Some(p) => p.install(close),
            None => close(),
        }?;
        let mut rg = self.file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut rg)?;
        }
        rg.close()?;
        self.row_groups += 1;
        self.group_rows = 0;
        Ok(())
    }

    /// Close the last row group (if it has rows) and the file.
    fn finish(mut self, pool: Option<&rayon::ThreadPool>) -> parquet::errors::Result<File> {
        if self.group_rows > 0 {
            self.close_row_group(pool)?;
        }
        self.file.into_inner()
    }
}

/// Feed one batch to the column writers of a row group, one task per column.
fn encode(
    writers: &mut [ArrowColumnWriter],
    batch: &RecordBatch,
    pool: Option<&rayon::ThreadPool>,
) -> std::result::Result<(), parquet::errors::ParquetError> {
    let schema = events_schema();
    let mut leaves = Vec::with_capacity(writers.len());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        leaves.extend(compute_leaves(field, array)?);
    }
    if leaves.len() != writers.len() {
        return Err(parquet::errors::ParquetError::General(format!(
            "{} leaf columns for {} column writers",
            leaves.len(),
            writers.len()
        )));
    }
    let mut work = move || {
        writers
            .par_iter_mut()
            .zip(leaves.par_iter())
            .try_for_each(|(w, leaf)| w.write(leaf))
    };
    match pool {
        Some(p) => p.install(work),
        None => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::datatypes::UInt32Type;

    fn batch(channels: &[&str], ids: &[u32], first_record: u64) -> RecordBatch {
        let schema = events_schema();
        let n = ids.len();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                col::CHANNEL => {
                    let a: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> =
                        channels.iter().copied().collect();
                    Arc::new(a) as ArrayRef
                }
                col::EVENT_ID => Arc::new(UInt32Array::from(ids.to_vec())) as ArrayRef,
                col::FILE_ID => Arc::new(UInt32Array::from(vec![1; n])) as ArrayRef,
                col::RECORD_ID => Arc::new(arrow::array::UInt64Array::from_iter_values(
                    (first_record..first_record + n as u64).rev(),
                )) as ArrayRef,
                _ => arrow::array::new_null_array(f.data_type(), n),
            })
            .collect();
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    /// Rows of several batches come out ordered by channel, then event id, then the tie
    /// breakers (record_id here, as time is null).
    #[test]
    fn cluster_order_sorts_across_batches_by_the_key() {
        let a = batch(&["Security", "System", "Security"], &[4625, 7036, 4624], 10);
        let b = batch(&["Application", "Security"], &[1000, 4624], 0);
        let order = cluster_order(&[a.clone(), b.clone()]).expect("order");
        assert_eq!(order, vec![(1, 0), (1, 1), (0, 2), (0, 0), (0, 1)]);
        let sorted = interleave_record_batch(&[&a, &b], &order).expect("take");
        let ids = sorted
            .column_by_name(col::EVENT_ID)
            .and_then(|c| c.as_primitive_opt::<UInt32Type>())
            .expect("ids");
        assert_eq!(ids.values().to_vec(), vec![1000, 4624, 4624, 4625, 7036]);
        let channels = arrow::compute::cast(
            sorted.column_by_name(col::CHANNEL).expect("channel"),
            &arrow::datatypes::DataType::Utf8,
        )
        .expect("cast");
        let channels: Vec<&str> = channels.as_string::<i32>().iter().flatten().collect();
        assert_eq!(
            channels,
            vec!["Application", "Security", "Security", "Security", "System"]
        );
    }

    /// The merge of spilled runs compares the key's row format: the order of a run must be
    /// that same order, nulls (channel, event id, time) first, on batches whose dictionaries
    /// differ and repeat values.
    #[test]
    fn cluster_order_is_the_row_format_order() {
        use arrow::array::{DictionaryArray, TimestampMicrosecondArray, UInt64Array};
        use arrow::datatypes::Int32Type;
        let names = [
            None,
            Some("System"),
            Some("Security"),
            Some("Application"),
            Some(""),
        ];
        let make = |seed: u64, n: usize| {
            let mut x = seed;
            let mut next = || {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as usize
            };
            let mut channel = Vec::new();
            let mut ids = Vec::new();
            let mut times = Vec::new();
            let mut records = Vec::new();
            for i in 0..n {
                channel.push(names[next() % names.len()]);
                ids.push((next() % 4 != 0).then(|| (next() % 3) as u32));
                times.push((next() % 5 != 0).then(|| (next() % 4) as i64 - 2));
                records.push((next() % 3) as u64 * 1000 + i as u64);
            }
            let schema = events_schema();
            let columns: Vec<ArrayRef> = schema
                .fields()
                .iter()
                .map(|f| match f.name().as_str() {
                    col::CHANNEL => Arc::new(
                        channel
                            .iter()
                            .copied()
                            .collect::<DictionaryArray<Int32Type>>(),
                    ) as ArrayRef,
                    col::EVENT_ID => Arc::new(UInt32Array::from(ids.clone())) as ArrayRef,
                    col::TIME_CREATED => Arc::new(
                        TimestampMicrosecondArray::from(times.clone()).with_timezone("UTC"),
                    ) as ArrayRef,
                    col::FILE_ID => Arc::new(UInt32Array::from(vec![seed as u32 % 2; n])),
                    col::RECORD_ID => Arc::new(UInt64Array::from(records.clone())) as ArrayRef,
                    _ => arrow::array::new_null_array(f.data_type(), n),
                })
                .collect();
            RecordBatch::try_new(schema, columns).expect("batch")
        };
        let batches: Vec<RecordBatch> = (0..4).map(|s| make(s, 300)).collect();
        let (key, converter) = key_converter().expect("converter");
        let rows: Vec<Rows> = batches
            .iter()
            .map(|b| key_rows(&key, &converter, b).expect("rows"))
            .collect();
        let order = cluster_order(&batches).expect("order");
        assert_eq!(order.len(), 1200);
        for w in order.windows(2) {
            let (a, b) = (rows[w[0].0].row(w[0].1), rows[w[1].0].row(w[1].1));
            assert!(a <= b, "{:?} before {:?}", w[0], w[1]);
        }
    }
}
