//! `ingest`: inputs → discovery → parallel read (each file read once: hashed, skipped when the
//! store knows it, parsed) → Parquet segments.
//!
//! Each segment is committed (events part renamed into place, then its manifest part) only at a
//! file boundary, so a store always holds whole files: a crash loses at most the segment being
//! written, and the same ingest run again adds exactly what is missing.

use std::collections::HashSet;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::Instant;

use arrow::record_batch::RecordBatch;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_writer::{ArrowLeafColumn, ArrowRowGroupWriterFactory, compute_leaves};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::writer::SerializedFileWriter;
use parquet::schema::types::ColumnPath;
use rayon::prelude::*;
use serde::Serialize;

use crate::discover::{Candidate, discover};
use crate::error::{IngestError, Result};
use crate::manifest::{self, FileEntry};
use crate::reader::{self, Admit, Input, Item, ReadOptions, Skip};
use crate::schema::{col, events_schema, files_schema};
use crate::store::Store;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// A segment is committed once it holds at least this many rows (at the next file boundary).
    pub segment_rows: usize,
    /// Rows per Parquet row group.
    pub row_group_rows: usize,
    /// Chunks converted together into one batch.
    pub chunks_per_batch: usize,
    /// Keep only these records (`None`, the default: every record). For a store that only
    /// answers known rules (`scan` without `--store`); a store for SQL later keeps everything.
    pub filter: Option<std::sync::Arc<crate::filter::RecordFilter>>,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            threads: 0,
            segment_rows: 4_000_000,
            row_group_rows: 128 * 1024,
            chunks_per_batch: 16,
            filter: None,
        }
    }
}

/// Callbacks for a progress display. All have empty defaults.
pub trait Progress: Sync {
    /// Discovery is done: this many files and bytes will be read (each file once: hashed,
    /// then parsed unless the store already holds it).
    fn planned(&self, _files: u64, _bytes: u64) {}
    /// More input has been read.
    fn advanced(&self, _bytes: u64, _records: u64) {}
    /// A file is finished.
    fn file_done(&self, _entry: &FileEntry) {}
    /// A one-line warning naming a file (and chunk, record where known).
    fn warn(&self, _message: &str) {}
}

/// A progress sink that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}

/// What an ingest did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct IngestSummary {
    pub store: PathBuf,
    /// EVTX files found in the inputs (including ones skipped below).
    pub files_found: u64,
    pub files_ingested: u64,
    /// Already in the store (same sha256).
    pub files_skipped: u64,
    /// The same content twice in this run: only the first is ingested.
    pub files_duplicate: u64,
    /// Files with unreadable records or chunks (their readable records are kept).
    pub files_damaged: u64,
    /// Files that could not be read at all (not EVTX, empty, unreadable).
    pub files_failed: u64,
    /// Files in the walked directories that are not EVTX.
    pub files_ignored: u64,
    pub records: u64,
    pub failed_records: u64,
    /// Records read but not kept ([`IngestOptions::filter`]).
    pub skipped_records: u64,
    /// Of `records`, those read by our own decoder (the rest by the evtx crate).
    pub decoded_records: u64,
    pub bytes_read: u64,
    pub segments_written: u64,
    pub store_bytes: u64,
    pub elapsed_secs: f64,
    pub records_per_sec: f64,
    pub mib_per_sec: f64,
    /// Inputs that could not be read, one line each.
    pub problems: Vec<String>,
}

/// Ingest `inputs` (files, directories, globs) into the store at `store_dir`, creating it.
pub fn ingest(
    inputs: &[PathBuf],
    store_dir: &Path,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestSummary> {
    let started = Instant::now();
    let store = Store::create_or_open(store_dir)?;
    let mut summary = IngestSummary {
        store: store_dir.to_path_buf(),
        ..IngestSummary::default()
    };
    let problem = |summary: &mut IngestSummary, message: String| {
        progress.warn(&message);
        summary.problems.push(message);
    };

    let found = discover(inputs);
    summary.files_ignored = found.ignored;
    for p in &found.problems {
        problem(&mut summary, p.to_string());
    }
    summary.files_found = found.candidates.len() as u64;

    let read_opts = ReadOptions {
        threads: opts.threads,
        chunks_per_batch: opts.chunks_per_batch,
        filter: opts.filter.clone(),
    };
    let mut known = manifest::known(&store)?;
    let now = manifest::now_micros();

    // Files discovery already found unreadable are hashed here (they are few) and recorded as
    // failed; every other file is hashed by the reader in the same read as its parse, and
    // skipped there when the store (or an earlier input of this run) has its content.
    let mut seen: HashSet<String> = HashSet::new();
    let mut to_read: Vec<Input> = Vec::new();
    let mut failed_entries: Vec<FileEntry> = Vec::new();
    let bad: Vec<&Candidate> = found
        .candidates
        .iter()
        .filter(|c| c.problem.is_some())
        .collect();
    let bad_hashes = hash_all(&bad, read_opts.effective_threads())?;
    for (cand, hash) in bad.iter().zip(bad_hashes) {
        let sha = match hash {
            Ok(s) => s,
            Err(e) => {
                summary.files_failed += 1;
                problem(&mut summary, e.to_string());
                continue;
            }
        };
        if known.by_sha256.contains_key(&sha) {
            summary.files_skipped += 1;
            continue;
        }
        if !seen.insert(sha.clone()) {
            summary.files_duplicate += 1;
            continue;
        }
        let why = cand.problem.clone().unwrap_or_default();
        summary.files_failed += 1;
        problem(&mut summary, format!("{}: {why}", cand.path.display()));
        failed_entries.push(FileEntry::failed(
            known.next_file_id,
            &cand.path,
            cand.size,
            sha,
            why,
            now,
        ));
        known.next_file_id += 1;
    }
    for cand in found.candidates.iter().filter(|c| c.problem.is_none()) {
        to_read.push(Input {
            path: cand.path.clone(),
            file_id: 0,
            size: cand.size,
        });
    }
    let planned_bytes: u64 = to_read.iter().map(|i| i.size).sum();
    progress.planned(to_read.len() as u64, planned_bytes);
    let mut next_file_id = known.next_file_id;
    let in_store = std::mem::take(&mut known.by_sha256);
    let mut admit = move |_file: usize, sha: &str| {
        if in_store.contains_key(sha) {
            Admit::Skip(Skip::Known)
        } else if !seen.insert(sha.to_string()) {
            Admit::Skip(Skip::Duplicate)
        } else {
            next_file_id += 1;
            Admit::Read {
                file_id: next_file_id - 1,
            }
        }
    };
    let mut shas: Vec<String> = vec![String::new(); to_read.len()];

    let mut writer = SegmentWriter::new(
        &store,
        known.next_segment,
        opts,
        read_opts.effective_threads(),
    );
    for e in failed_entries {
        writer.entries.push(e);
    }
    let mut write_error: Option<IngestError> = None;
    reader::read_admitted(
        &to_read,
        &read_opts,
        reader::RecordPath::from_env(),
        Some(&mut admit),
        &mut |item| {
            let step = match item {
                Item::Admitted { file, sha256, .. } => {
                    shas[file] = sha256;
                    Ok(())
                }
                Item::Skipped { file, why, .. } => {
                    match why {
                        Skip::Known => summary.files_skipped += 1,
                        Skip::Duplicate => summary.files_duplicate += 1,
                    }
                    progress.advanced(to_read[file].size, 0);
                    Ok(())
                }
                Item::Batch { batch, bytes, .. } => {
                    summary.records += batch.num_rows() as u64;
                    progress.advanced(bytes, batch.num_rows() as u64);
                    writer.write(&batch)
                }
                Item::FileDone {
                    file,
                    report,
                    bytes,
                } => {
                    progress.advanced(bytes, 0);
                    summary.bytes_read += to_read[file].size;
                    summary.failed_records += report.failed_records;
                    summary.skipped_records += report.skipped_records;
                    summary.decoded_records += report.decoded_records;
                    if shas[file].is_empty() {
                        // Not even hashed (unreadable): no manifest entry, as before the read.
                        summary.files_failed += 1;
                        problem(
                            &mut summary,
                            report.fatal.clone().unwrap_or_else(|| {
                                format!("{}: could not be read", report.path.display())
                            }),
                        );
                        return true;
                    }
                    if let Some(fatal) = &report.fatal {
                        summary.files_failed += 1;
                        problem(&mut summary, fatal.clone());
                    } else {
                        summary.files_ingested += 1;
                        if report.failed_records > 0 {
                            summary.files_damaged += 1;
                        }
                    }
                    for m in &report.messages {
                        progress.warn(&m.to_string());
                    }
                    let shown = report.messages.len() as u64;
                    if report.failed_records > shown {
                        progress.warn(&format!(
                            "{}: ... and {} more unreadable records or chunks",
                            report.path.display(),
                            report.failed_records - shown
                        ));
                    }
                    let entry = FileEntry::from_report(
                        *report,
                        to_read[file].size,
                        std::mem::take(&mut shas[file]),
                        now,
                    );
                    progress.file_done(&entry);
                    writer.entries.push(entry);
                    if writer.rows >= opts.segment_rows {
                        writer.commit().map(|committed| {
                            summary.segments_written += u64::from(committed);
                        })
                    } else {
                        Ok(())
                    }
                }
            };
            match step {
                Ok(()) => true,
                Err(e) => {
                    write_error = Some(e);
                    false
                }
            }
        },
    )?;
    if let Some(e) = write_error {
        return Err(e);
    }
    summary.segments_written += u64::from(writer.commit()?);

    summary.store_bytes = store.size_bytes()?;
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    if summary.elapsed_secs > 0.0 {
        summary.records_per_sec = summary.records as f64 / summary.elapsed_secs;
        summary.mib_per_sec = summary.bytes_read as f64 / 1_048_576.0 / summary.elapsed_secs;
    }
    Ok(summary)
}

/// The Parquet writer properties of events parts: zstd, page statistics (for pruning on
/// channel, event_id and time), no dictionary for the payload.
pub fn events_writer_properties(row_group_rows: usize) -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(row_group_rows))
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_column_dictionary_enabled(ColumnPath::from(col::DATA), false)
        .set_created_by(format!("evtxsql {}", env!("CARGO_PKG_VERSION")))
        .build()
}

/// The segment being written: events rows to a temporary Parquet file, manifest rows in memory.
///
/// Rows are gathered until a row group is full; then its columns are encoded (and
/// zstd-compressed) in parallel on a pool of their own, each column by one task, and the
/// column chunks appended in schema order. Memory: at most one row group of rows, plus its
/// encoded chunks.
struct SegmentWriter<'s> {
    store: &'s Store,
    segment: u32,
    row_group_rows: usize,
    writer: Option<OpenSegment>,
    /// Rows not yet in a row group.
    pending: Vec<RecordBatch>,
    pending_rows: usize,
    encoders: Option<rayon::ThreadPool>,
    rows: usize,
    entries: Vec<FileEntry>,
}

/// A segment file being written.
struct OpenSegment {
    file: SerializedFileWriter<File>,
    factory: ArrowRowGroupWriterFactory,
    row_groups: usize,
}

impl<'s> SegmentWriter<'s> {
    fn new(store: &'s Store, segment: u32, opts: &IngestOptions, threads: usize) -> Self {
        let encoders = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .thread_name(|i| format!("evtxsql-encode-{i}"))
            .build()
            .ok();
        SegmentWriter {
            store,
            segment,
            row_group_rows: opts.row_group_rows.max(1),
            writer: None,
            pending: Vec::new(),
            pending_rows: 0,
            encoders,
            rows: 0,
            entries: Vec::new(),
        }
    }

    fn tmp_events(&self) -> PathBuf {
        self.store.tmp_dir().join(format!(
            "events-{}",
            crate::store::segment_file_name(self.segment)
        ))
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        if self.writer.is_none() {
            let path = self.tmp_events();
            let file = File::create(&path).map_err(|e| IngestError::io(&path, e))?;
            let (file, factory) = ArrowWriter::try_new(
                file,
                events_schema(),
                Some(events_writer_properties(self.row_group_rows)),
            )
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(|source| IngestError::Parquet { path, source })?;
            self.writer = Some(OpenSegment {
                file,
                factory,
                row_groups: 0,
            });
        }
        self.pending.push(batch.clone());
        self.pending_rows += batch.num_rows();
        self.rows += batch.num_rows();
        while self.pending_rows >= self.row_group_rows {
            self.flush_row_group()?;
        }
        Ok(())
    }

    /// Write up to `row_group_rows` of the pending rows as one row group.
    fn flush_row_group(&mut self) -> Result<()> {
        let mut take = Vec::new();
        let mut rows = 0;
        while rows < self.row_group_rows && !self.pending.is_empty() {
            let b = self.pending.remove(0);
            let room = self.row_group_rows - rows;
            if b.num_rows() > room {
                self.pending.insert(0, b.slice(room, b.num_rows() - room));
                take.push(b.slice(0, room));
                rows += room;
            } else {
                rows += b.num_rows();
                take.push(b);
            }
        }
        self.pending_rows -= rows;
        if rows == 0 {
            return Ok(());
        }
        let schema = events_schema();
        let path = self.tmp_events();
        let failed = |source| IngestError::Parquet {
            path: path.clone(),
            source,
        };
        let Some(open) = self.writer.as_mut() else {
            return Ok(());
        };
        let writers = open
            .factory
            .create_column_writers(open.row_groups)
            .map_err(failed)?;
        // columns[j]: leaf column j of every batch, in order.
        let mut columns: Vec<Vec<ArrowLeafColumn>> = writers.iter().map(|_| Vec::new()).collect();
        for b in &take {
            let mut j = 0;
            for (field, array) in schema.fields().iter().zip(b.columns()) {
                for leaf in compute_leaves(field, array).map_err(failed)? {
                    if let Some(c) = columns.get_mut(j) {
                        c.push(leaf);
                    }
                    j += 1;
                }
            }
        }
        let encode = || {
            writers
                .into_par_iter()
                .zip(columns.into_par_iter())
                .map(|(mut w, leaves)| {
                    for leaf in &leaves {
                        w.write(leaf)?;
                    }
                    w.close()
                })
                .collect::<std::result::Result<Vec<_>, _>>()
        };
        let chunks = match &self.encoders {
            Some(pool) => pool.install(encode),
            None => encode(),
        };
        let appended = chunks.and_then(|chunks| {
            let mut rg = open.file.next_row_group()?;
            for chunk in chunks {
                chunk.append_to_row_group(&mut rg)?;
            }
            rg.close().map(|_| ())
        });
        open.row_groups += 1;
        appended.map_err(failed)
    }

    /// Commit the segment if it holds anything; returns whether it did.
    fn commit(&mut self) -> Result<bool> {
        if self.entries.is_empty() && self.writer.is_none() {
            return Ok(false);
        }
        while self.pending_rows > 0 {
            self.flush_row_group()?;
        }
        if let Some(w) = self.writer.take() {
            let tmp = self.tmp_events();
            let file = w.file.into_inner().map_err(|source| IngestError::Parquet {
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
        let batch = manifest::to_batch(&self.entries)?;
        let tmp = self.store.tmp_dir().join(format!(
            "files-{}",
            crate::store::segment_file_name(self.segment)
        ));
        let file = File::create(&tmp).map_err(|e| IngestError::io(&tmp, e))?;
        let mut w = ArrowWriter::try_new(file, files_schema(), None).map_err(|source| {
            IngestError::Parquet {
                path: tmp.clone(),
                source,
            }
        })?;
        w.write(&batch).map_err(|source| IngestError::Parquet {
            path: tmp.clone(),
            source,
        })?;
        let file = w.into_inner().map_err(|source| IngestError::Parquet {
            path: tmp.clone(),
            source,
        })?;
        file.sync_all().map_err(|e| IngestError::io(&tmp, e))?;
        let dest = self.store.files_part(self.segment);
        fs::rename(&tmp, &dest).map_err(|e| IngestError::io(&dest, e))?;
        self.entries.clear();
        self.rows = 0;
        self.segment += 1;
        Ok(true)
    }
}

/// sha256 of every candidate, in parallel, in input order.
fn hash_all(candidates: &[&Candidate], threads: usize) -> Result<Vec<Result<String>>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| IngestError::Threads(e.to_string()))?;
    Ok(pool.install(|| {
        candidates
            .par_iter()
            .map(|c| manifest::sha256_file(&c.path))
            .collect()
    }))
}
