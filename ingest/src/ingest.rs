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
use parquet::arrow::arrow_writer::{ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves};
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
/// Each batch is encoded as it comes, its columns in parallel on a pool of their own (one task
/// per column, each column's writer fed in row order); a row group is closed at exactly
/// `row_group_rows` rows and its column chunks appended in schema order. Memory: the encoded
/// pages of one row group, as with a plain `ArrowWriter`.
struct SegmentWriter<'s> {
    store: &'s Store,
    segment: u32,
    row_group_rows: usize,
    writer: Option<OpenSegment>,
    encoders: Option<rayon::ThreadPool>,
    rows: usize,
    entries: Vec<FileEntry>,
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
        let path = self.tmp_events();
        let failed = |source| IngestError::Parquet {
            path: path.clone(),
            source,
        };
        if self.writer.is_none() {
            let file = File::create(&path).map_err(|e| IngestError::io(&path, e))?;
            let (file, factory) = ArrowWriter::try_new(
                file,
                events_schema(),
                Some(events_writer_properties(self.row_group_rows)),
            )
            .and_then(ArrowWriter::into_serialized_writer)
            .map_err(failed)?;
            let columns = factory.create_column_writers(0).map_err(failed)?;
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
        let mut at = 0;
        while at < batch.num_rows() {
            let n = (self.row_group_rows - open.group_rows).min(batch.num_rows() - at);
            let part = batch.slice(at, n);
            encode(&mut open.columns, &part, self.encoders.as_ref()).map_err(failed)?;
            open.group_rows += n;
            at += n;
            if open.group_rows == self.row_group_rows {
                open.close_row_group(self.encoders.as_ref())
                    .map_err(failed)?;
            }
        }
        self.rows += batch.num_rows();
        Ok(())
    }

    /// Commit the segment if it holds anything; returns whether it did.
    fn commit(&mut self) -> Result<bool> {
        if self.entries.is_empty() && self.writer.is_none() {
            return Ok(false);
        }
        if let Some(w) = self.writer.take() {
            let tmp = self.tmp_events();
            let file = w
                .finish(self.encoders.as_ref())
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
