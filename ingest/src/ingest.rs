//! `ingest`: inputs → discovery → parallel read (each file read once: hashed, skipped when the
//! store knows it, parsed) → Parquet segments.
//!
//! Each segment is committed (events part renamed into place, then its manifest part) only at a
//! file boundary, so a store always holds whole files: a crash loses at most the segment being
//! written, and the same ingest run again adds exactly what is missing.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rayon::prelude::*;
use serde::Serialize;

use crate::discover::{Candidate, discover};
use crate::error::{IngestError, Result};
use crate::manifest::{self, FileEntry, FileKey};
use crate::reader::{self, Admit, Input, Item, ReadOptions, Skip};
use crate::s3::{S3Location, S3Writer};
use crate::segment::{Layout, SegmentWriter};
use crate::store::Store;

pub use crate::segment::events_writer_properties;

/// How to ingest.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// A segment is committed once it holds at least this many rows (at the next file boundary).
    pub segment_rows: usize,
    /// Rows per Parquet row group (the last of each sort run may hold fewer).
    pub row_group_rows: usize,
    /// Arrow memory of the rows sorted together before they are written (see
    /// [`crate::segment`]): the memory an ingest needs beyond the reader's. Each run is encoded
    /// as soon as it is full; `compact` later merges the runs of a segment.
    pub sort_run_bytes: usize,
    /// Chunks converted together into one batch.
    pub chunks_per_batch: usize,
    /// Keep only these records (`None`, the default: every record). For a store that only
    /// answers known rules (`scan` without `--store`); a store for SQL later keeps everything.
    pub filter: Option<std::sync::Arc<crate::filter::RecordFilter>>,
    /// How files are told apart. [`FileKey::Blake3`] (faster, nothing recorded in the `sha256`
    /// column) only into a new, empty store that lives for one run; the default sha256 is what
    /// a kept store records and compares against.
    pub key: FileKey,
    /// Files up to this size are read into memory in one read (see
    /// [`crate::reader::ReadOptions::max_buffered_file`]).
    pub max_buffered_file: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        IngestOptions {
            threads: 0,
            segment_rows: 4_000_000,
            row_group_rows: Layout::ingest().row_group_rows,
            sort_run_bytes: Layout::ingest().run_bytes,
            chunks_per_batch: 16,
            filter: None,
            key: FileKey::Sha256,
            max_buffered_file: crate::reader::MAX_BUFFERED_FILE,
        }
    }
}

impl IngestOptions {
    /// The segment layout these options ask for.
    pub fn layout(&self) -> Layout {
        Layout {
            row_group_rows: self.row_group_rows,
            run_bytes: self.sort_run_bytes,
            merge_runs: false,
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
    /// Committed segments in the store after this ingest.
    pub segments_total: u64,
    /// Of those, the segments `compact` (with its default segment size) would rewrite: small,
    /// or not clustered.
    pub segments_compactable: u64,
    /// Of those, the segments not clustered whole: written as several sorted runs (a large
    /// ingest's own segment, whose row groups each span most channels and event ids), or before
    /// the clustered layout.
    pub segments_unclustered: u64,
    pub store_bytes: u64,
    pub elapsed_secs: f64,
    pub records_per_sec: f64,
    pub mib_per_sec: f64,
    /// Inputs that could not be read, one line each.
    pub problems: Vec<String>,
}

/// Ingest `inputs` (files, directories, globs) into the store at `store_dir` (a directory, or
/// `s3://bucket/prefix`: see [`crate::s3`]), creating it.
pub fn ingest(
    inputs: &[PathBuf],
    store_dir: &Path,
    opts: &IngestOptions,
    progress: &dyn Progress,
) -> Result<IngestSummary> {
    let started = Instant::now();
    let mut summary = match S3Location::of_path(store_dir)? {
        Some(location) => {
            // Segments are written to a local staging store and uploaded as they commit.
            let writer = S3Writer::open(&location, progress)?;
            let mut summary =
                ingest_into(writer.staging(), inputs, opts, progress, &mut |segment| {
                    writer.push(segment)
                })?;
            let listing = writer.finish()?;
            summary.store_bytes = listing.size_bytes();
            summary.segments_total = listing.segments.len() as u64;
            summary
        }
        None => {
            let store = Store::create_or_open(store_dir)?;
            let mut summary = ingest_into(&store, inputs, opts, progress, &mut |_| Ok(()))?;
            summary.store_bytes = store.size_bytes()?;
            // What `compact` with its default target would rewrite (ingest's own segment size
            // is about crash losses, not about the size segments should end up with).
            let plan = crate::compact::plan(
                &crate::compact::segment_infos(&store)?,
                crate::compact::CompactOptions::default().segment_rows,
            );
            summary.segments_total = plan.segments.len() as u64;
            summary.segments_compactable = plan.rewritten() as u64;
            summary.segments_unclustered = plan.unclustered() as u64;
            summary
        }
    };
    summary.store = store_dir.to_path_buf();
    summary.elapsed_secs = started.elapsed().as_secs_f64();
    if summary.elapsed_secs > 0.0 {
        summary.records_per_sec = summary.records as f64 / summary.elapsed_secs;
        summary.mib_per_sec = summary.bytes_read as f64 / 1_048_576.0 / summary.elapsed_secs;
    }
    Ok(summary)
}

/// Ingest into an opened (locked) local store; `committed` is called with the number of each
/// segment right after it is committed.
fn ingest_into(
    store: &Store,
    inputs: &[PathBuf],
    opts: &IngestOptions,
    progress: &dyn Progress,
    committed: &mut dyn FnMut(u32) -> Result<()>,
) -> Result<IngestSummary> {
    let mut summary = IngestSummary::default();
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
        key: opts.key,
        max_buffered_file: opts.max_buffered_file,
    };
    let mut known = manifest::known(store)?;
    if opts.key != FileKey::Sha256 && !known.by_sha256.is_empty() {
        return Err(IngestError::BadStore {
            path: store.root().to_path_buf(),
            message: "files are told apart by sha256 in a store that already holds files; \
                      BLAKE3 keys are only for a new store that lives for one run"
                .into(),
        });
    }
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
    let bad_hashes = hash_all(&bad, opts.key, read_opts.effective_threads())?;
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
            opts.key.recorded(sha),
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
        store,
        known.next_segment,
        opts.layout(),
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
                Item::Admitted { file, key, .. } => {
                    shas[file] = key;
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
                        opts.key.recorded(std::mem::take(&mut shas[file])),
                        now,
                    );
                    progress.file_done(&entry);
                    writer.entries.push(entry);
                    if writer.rows >= opts.segment_rows {
                        commit(&mut writer, &mut summary, committed)
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
    commit(&mut writer, &mut summary, committed)?;
    Ok(summary)
}

/// Commit the writer's segment (if it holds anything) and tell `committed`.
fn commit(
    writer: &mut SegmentWriter<'_>,
    summary: &mut IngestSummary,
    committed: &mut dyn FnMut(u32) -> Result<()>,
) -> Result<()> {
    let segment = writer.segment();
    if writer.commit(&[])? {
        summary.segments_written += 1;
        committed(segment)?;
    }
    Ok(())
}

/// The key of every candidate, in parallel, in input order.
fn hash_all(
    candidates: &[&Candidate],
    key: FileKey,
    threads: usize,
) -> Result<Vec<Result<String>>> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| IngestError::Threads(e.to_string()))?;
    Ok(pool.install(|| {
        candidates
            .par_iter()
            .map(|c| key.of_file(&c.path))
            .collect()
    }))
}
