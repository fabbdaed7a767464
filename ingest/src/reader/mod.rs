//! Reading EVTX files in parallel into `RecordBatch`es, in file order (the conversion of one
//! group of chunks on a worker is in [`group`]).
//!
//! One dispatcher thread walks the files in order and finds their chunks (64 KiB each): in a file
//! held in memory, as slices of its bytes ([`chunks`], the evtx crate's order, damaged and
//! stale-header files included); in a file too large for that, with the evtx crate's chunk
//! iterator. Groups of chunks go
//! to a rayon pool of our own, where each is parsed single-threaded (the evtx parser's own pool
//! is never used: nesting it inside ours deadlocks) and converted into one batch. Results are put
//! back in order, so a consumer sees each file's batches, then its report, file after file.
//! Each chunk's records are decoded by our own BinXML decoder ([`crate::binxml`]); the records
//! it leaves (and whole chunks it cannot read) go through the evtx crate's JSON rendering, as
//! every record does with `EVTXSQL_RECORD_PATH=evtx` ([`RecordPath`]).
//! At most `4 × threads + 4` groups are in flight, which bounds memory whatever the input size.
//!
//! With an [`Admission`] ([`read_admitted`]), each file is read once: the dispatcher reads it
//! into memory (files up to [`MAX_BUFFERED_FILE`]) and hashes it as it reads it, or, with
//! more than a few threads, the pool hashes those bytes beside the decoding of the files before
//! it ([`dispatch`]); the admission says whether to read it (a
//! store skips what it holds), and the chunks are parsed from the same bytes. Without one
//! ([`read`], e.g. `read_evtx` in SQL), files are read into memory the same way, unhashed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

use arrow::record_batch::RecordBatch;
use evtx::{EvtxParser, ParserSettings};

use crate::binxml::Decoder;
use crate::error::{IngestError, ProblemKind, RecordProblem, Result};
use crate::filter::RecordFilter;

mod buffers;
mod chunks;
mod dedup;
mod dispatch;
mod group;
mod prefetch;
use chunks::{ChunkBytes, SharedChunks};
use group::{Group, convert_group};

/// Size of an EVTX chunk.
pub const CHUNK_SIZE: u64 = 65_536;
/// Messages kept per file (the count of errors is always exact).
pub const MAX_MESSAGES_PER_FILE: usize = 20;
/// Files up to this size are read into memory once, hashed and parsed from there; a larger
/// file is hashed in a pass of its own and then parsed from disk, chunk by chunk, so memory
/// stays bounded. The same as the budget of files in memory (read ahead, being decoded, or
/// kept for reuse in the buffer pool; one file is always let in): a
/// larger file, let in alone, would hold more than the budget (at 256 MiB, a generated 10 GB
/// set's 135 MB files made its peak memory ~130 MB higher than a 1 GB set's).
pub const MAX_BUFFERED_FILE: u64 = 64 << 20;

/// Whether to read a file, decided from its key (see [`ReadOptions::key`]) before any of it is
/// parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// Read it; its rows get this `file_id`.
    Read { file_id: u32 },
    /// Skip it: the consumer gets [`Item::Skipped`] with this reason and nothing else.
    Skip(Skip),
}

/// Why a file is not read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// The store holds a file with this content.
    Known,
    /// An earlier input of this run has this content.
    Duplicate,
}

/// Called on the dispatcher thread for each readable file, in input order, with its index
/// and key.
pub type Admission<'a> = dyn FnMut(usize, &str) -> Admit + Send + 'a;

/// How to read.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Worker threads; 0 means one per core.
    pub threads: usize,
    /// Chunks converted together into one batch (16 chunks ≈ 1 MiB of EVTX).
    pub chunks_per_batch: usize,
    /// Keep only these records (`None`: all). Records our decoder reads are skipped before
    /// their payload is rendered and counted in [`FileReport::skipped_records`]; the few read
    /// by the evtx crate instead are kept.
    pub filter: Option<Arc<RecordFilter>>,
    /// How a read with an admission tells files apart (the key it hands the admission).
    pub key: crate::manifest::FileKey,
    /// Files up to this size are read into memory in one read, and the bytes of files in
    /// memory stay within it; a larger file is hashed in a pass of its own and parsed from
    /// disk ([`MAX_BUFFERED_FILE`] unless a test sends small files down that path).
    pub max_buffered_file: u64,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            threads: 0,
            chunks_per_batch: 16,
            filter: None,
            key: crate::manifest::FileKey::Sha256,
            max_buffered_file: MAX_BUFFERED_FILE,
        }
    }
}

impl ReadOptions {
    pub fn effective_threads(&self) -> usize {
        if self.threads == 0 {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        } else {
            self.threads
        }
    }
}

/// What reading one file gave.
#[derive(Debug, Clone, Default)]
pub struct FileReport {
    pub path: PathBuf,
    pub file_id: u32,
    /// Records read and kept.
    pub records: u64,
    /// Records (or whole chunks) that could not be read; each is one error.
    pub failed_records: u64,
    /// The first [`MAX_MESSAGES_PER_FILE`] problems, each naming file, chunk and record.
    pub messages: Vec<RecordProblem>,
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
    pub computers: BTreeSet<String>,
    pub channels: BTreeSet<String>,
    /// Records per event id (None: the record has no readable EventID).
    pub event_ids: BTreeMap<Option<u32>, u64>,
    /// Set when the file could not be opened at all.
    pub fatal: Option<String>,
    /// Of `records`, those our own BinXML decoder read ([`crate::binxml`]).
    pub decoded_records: u64,
    /// Of `records`, those read with the evtx crate's JSON path instead (the decoder left
    /// them, or it was switched off).
    pub fallback_records: u64,
    /// Why the decoder left records to the evtx crate, with how many.
    pub fallback_reasons: BTreeMap<String, u64>,
    /// Records read but not kept: [`ReadOptions::filter`] skipped them (not in `records`).
    pub skipped_records: u64,
}

impl FileReport {
    fn note(&mut self, problem: RecordProblem) {
        self.failed_records += 1;
        if self.messages.len() < MAX_MESSAGES_PER_FILE {
            self.messages.push(problem);
        }
    }

    fn merge(&mut self, other: FileReport) {
        self.records += other.records;
        self.failed_records += other.failed_records;
        for m in other.messages {
            if self.messages.len() < MAX_MESSAGES_PER_FILE {
                self.messages.push(m);
            }
        }
        self.first_time = min_opt(self.first_time, other.first_time);
        self.last_time = max_opt(self.last_time, other.last_time);
        self.computers.extend(other.computers);
        self.channels.extend(other.channels);
        for (k, v) in other.event_ids {
            *self.event_ids.entry(k).or_default() += v;
        }
        self.decoded_records += other.decoded_records;
        self.fallback_records += other.fallback_records;
        self.skipped_records += other.skipped_records;
        for (k, v) in other.fallback_reasons {
            *self.fallback_reasons.entry(k).or_default() += v;
        }
    }

    fn row(&mut self, event_id: Option<u32>, time: Option<i64>) {
        self.records += 1;
        *self.event_ids.entry(event_id).or_default() += 1;
        self.first_time = min_opt(self.first_time, time);
        self.last_time = max_opt(self.last_time, time);
    }

    /// `ok`, `damaged` (some records or chunks unreadable) or `failed` (nothing readable).
    pub fn status(&self) -> &'static str {
        if self.fatal.is_some() {
            "failed"
        } else if self.failed_records > 0 {
            "damaged"
        } else {
            "ok"
        }
    }
}

/// What the reader hands its consumer, in file order.
pub enum Item {
    /// (With an admission.) File `file` was hashed and is read with this `file_id`; comes
    /// before its batches and its [`Item::FileDone`].
    Admitted {
        file: usize,
        key: String,
        file_id: u32,
    },
    /// (With an admission.) File `file` was hashed and not read; nothing else comes for it.
    Skipped { file: usize, key: String, why: Skip },
    /// Rows of file number `file` (index into the input list); `bytes` of the file were consumed.
    Batch {
        file: usize,
        batch: RecordBatch,
        bytes: u64,
    },
    /// The file is done; `bytes` is the rest of its size not yet reported.
    FileDone {
        file: usize,
        report: Box<FileReport>,
        bytes: u64,
    },
}

/// One file to read and the `file_id` its rows get.
#[derive(Debug, Clone)]
pub struct Input {
    pub path: PathBuf,
    pub file_id: u32,
    pub size: u64,
}

impl Input {
    /// `paths` as inputs numbered from 0 in order, each with its size (0 when it cannot be
    /// read: the reader then reports the file as failed).
    pub fn numbered(paths: &[PathBuf]) -> Vec<Input> {
        paths
            .iter()
            .enumerate()
            .map(|(i, p)| Input {
                path: p.clone(),
                file_id: u32::try_from(i).unwrap_or(u32::MAX),
                size: std::fs::metadata(p).map(|m| m.len()).unwrap_or(0),
            })
            .collect()
    }
}

enum Msg {
    /// [`Item::Admitted`] or [`Item::Skipped`], passed on as it is.
    Hashed(Item),
    Job {
        file: usize,
        batch: Option<RecordBatch>,
        report: Box<FileReport>,
        bytes: u64,
    },
    Error {
        file: usize,
        message: RecordProblem,
    },
    End {
        file: usize,
        fatal: Option<String>,
    },
}

/// Which code turns records into rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPath {
    /// Our own BinXML decoder ([`crate::binxml`]), the evtx crate's JSON for the records it
    /// leaves.
    Decoder,
    /// The evtx crate's JSON rendering for every record, parsed again.
    EvtxJson,
}

impl RecordPath {
    /// `EVTXSQL_RECORD_PATH=evtx` chooses [`RecordPath::EvtxJson`], `decoder` the decoder;
    /// unset, the default.
    pub fn from_env() -> Self {
        match std::env::var("EVTXSQL_RECORD_PATH").as_deref() {
            Ok("evtx") => RecordPath::EvtxJson,
            Ok("decoder") => RecordPath::Decoder,
            _ => RecordPath::DEFAULT,
        }
    }

    pub const DEFAULT: RecordPath = RecordPath::Decoder;
}

thread_local! {
    /// One decoder per worker thread: the plans it compiled serve all later chunks.
    static DECODER: std::cell::RefCell<Decoder> = std::cell::RefCell::new(Decoder::new());
}

/// Read `inputs` in parallel; call `consume` with every batch and every file's report, in file
/// order. `consume` returns false to stop early. Blocking.
pub fn read(
    inputs: &[Input],
    opts: &ReadOptions,
    consume: &mut dyn FnMut(Item) -> bool,
) -> Result<()> {
    read_with(inputs, opts, RecordPath::from_env(), consume)
}

/// [`read`] with the record path chosen.
pub fn read_with(
    inputs: &[Input],
    opts: &ReadOptions,
    path_kind: RecordPath,
    consume: &mut dyn FnMut(Item) -> bool,
) -> Result<()> {
    read_admitted(inputs, opts, path_kind, None, consume)
}

/// [`read_with`], each file hashed in the same read as its parse and read only if `admit`
/// says so (see the module docs). A file that cannot be read at all gets no hash: only its
/// [`Item::FileDone`] with `fatal` set.
pub fn read_admitted(
    inputs: &[Input],
    opts: &ReadOptions,
    path_kind: RecordPath,
    admit: Option<&mut Admission<'_>>,
    consume: &mut dyn FnMut(Item) -> bool,
) -> Result<()> {
    let threads = opts.effective_threads();
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("evtxsql-read-{i}"))
        .build()
        .map_err(|e| IngestError::Threads(e.to_string()))?;
    let settings = parser_settings();
    let per_batch = opts.chunks_per_batch.max(1);
    let max_in_flight = 4 * threads + 4;

    let (tx, rx) = mpsc::channel::<(u64, Msg)>();
    // Permits bound the groups in flight: the dispatcher takes one per group, the consumer
    // returns it once the group's result has been consumed in order. Results are consumed in
    // order, so a long group holds the permits of the short ones after it: at `2 × threads + 2`
    // the dispatcher waited for permits while decoders had nothing to do (0.6 s of waiting in
    // a 2.4 s ingest of 1 GB, 2 threads). At 4 × threads + 4 that ingest took 0.97x the time
    // and `scan` 0.96x, with 7-12 MiB more memory at its peak.
    let (permit_tx, permit_rx) = mpsc::sync_channel::<()>(max_in_flight);

    std::thread::scope(|scope| {
        let mut dispatcher = dispatch::Dispatcher {
            tx: tx.clone(),
            permits: permit_tx,
            pool: &pool,
            settings,
            path_kind,
            filter: opts.filter.clone(),
            key: opts.key,
            per_batch,
            seq: 0,
            buffers: buffers::BufferPool::new(
                usize::try_from(opts.max_buffered_file).unwrap_or(usize::MAX),
            ),
            staged: dedup::Staged::default(),
            hash_while_reading: threads <= dispatch::HASH_WHILE_READING_UP_TO,
            prefetch: prefetch::Prefetch::default(),
        };
        scope.spawn(move || match admit {
            Some(admit) => dispatcher.admitted(inputs, admit),
            None => dispatcher.unhashed(inputs),
        });
        drop(tx);

        // Consumer: put results back in order.
        let mut pending: BTreeMap<u64, Msg> = BTreeMap::new();
        let mut next_seq = 0u64;
        let mut reports: Vec<Option<FileReport>> = inputs
            .iter()
            .map(|i| {
                Some(FileReport {
                    path: i.path.clone(),
                    file_id: i.file_id,
                    ..FileReport::default()
                })
            })
            .collect();
        let mut reported = vec![0u64; inputs.len()];
        let permit_rx = permit_rx;
        for (seq, msg) in rx.iter() {
            pending.insert(seq, msg);
            while let Some(msg) = pending.remove(&next_seq) {
                next_seq += 1;
                let keep_going = match msg {
                    Msg::Hashed(item) => {
                        match &item {
                            Item::Admitted { file, file_id, .. } => {
                                if let Some(r) = reports[*file].as_mut() {
                                    r.file_id = *file_id;
                                }
                            }
                            Item::Skipped { file, .. } => reports[*file] = None,
                            Item::Batch { .. } | Item::FileDone { .. } => {}
                        }
                        consume(item)
                    }
                    Msg::Job {
                        file,
                        batch,
                        report,
                        bytes,
                    } => {
                        let _ = permit_rx.recv();
                        if let Some(r) = reports[file].as_mut() {
                            r.merge(*report);
                        }
                        reported[file] += bytes;
                        match batch {
                            Some(batch) => consume(Item::Batch { file, batch, bytes }),
                            None => true,
                        }
                    }
                    Msg::Error { file, message } => {
                        if let Some(r) = reports[file].as_mut() {
                            r.note(message);
                        }
                        true
                    }
                    Msg::End { file, fatal } => {
                        let mut report = reports[file].take().unwrap_or_default();
                        report.fatal = fatal;
                        let bytes = inputs[file].size.saturating_sub(reported[file]);
                        consume(Item::FileDone {
                            file,
                            report: Box::new(report),
                            bytes,
                        })
                    }
                };
                if !keep_going {
                    // Dropping the receivers stops the dispatcher; workers' sends fail quietly.
                    return;
                }
            }
        }
    });
    Ok(())
}

/// A file's bytes: on disk, or read into memory once (its chunks are slices of them).
enum Source {
    File(Box<EvtxParser<std::fs::File>>),
    Buffer(SharedChunks),
}

/// A chunk, or why it cannot be read (naming it).
type ChunkItem = std::result::Result<ChunkBytes, String>;

impl Source {
    fn file(path: &Path, settings: &ParserSettings) -> evtx::err::Result<Source> {
        EvtxParser::from_path(path)
            .map(|p| Source::File(Box::new(p.with_configuration(settings.clone()))))
    }

    fn buffer(bytes: Vec<u8>) -> evtx::err::Result<Source> {
        Self::shared(Arc::new(buffers::FileBytes::from(bytes)))
    }

    fn shared(bytes: Arc<buffers::FileBytes>) -> evtx::err::Result<Source> {
        SharedChunks::open(bytes).map(Source::Buffer)
    }

    fn chunks(&mut self) -> Box<dyn Iterator<Item = ChunkItem> + '_> {
        match self {
            Source::File(p) => Box::new(p.chunks().map(|c| match c {
                Ok(c) => Ok(ChunkBytes::Owned(Box::new(c))),
                Err(e) => Err(error_chain(&e)),
            })),
            Source::Buffer(walk) => Box::new(walk.map(|c| {
                c.map_err(|f| {
                    format!(
                        "Failed to parse chunk number {}: {}",
                        f.number,
                        error_chain(&f.error)
                    )
                })
            })),
        }
    }
}

/// How the evtx crate reads for us: single-threaded (inside our own pool), no indenting.
fn parser_settings() -> Arc<ParserSettings> {
    Arc::new(ParserSettings::new().num_threads(1).indent(false))
}

/// Read a whole EVTX file held in memory on this thread, as [`read`] reads each file: its
/// chunks in the evtx crate's order, in groups of the default size, each through our decoder
/// (`path_kind` permitting) with the evtx crate for the records and chunks it leaves. The rows
/// are built and dropped; the report is returned. For the fuzz target (`fuzz/`), which hands
/// it hostile bytes: it takes every path a file on disk takes, with a fresh [`Decoder`].
pub fn read_buffer(bytes: Vec<u8>, path_kind: RecordPath) -> FileReport {
    let path = Path::new("<buffer>");
    let mut report = FileReport {
        path: path.to_path_buf(),
        ..FileReport::default()
    };
    let settings = parser_settings();
    let mut source = match Source::buffer(bytes) {
        Ok(s) => s,
        Err(e) => {
            report.fatal = Some(format!("cannot open as EVTX: {}", error_chain(&e)));
            return report;
        }
    };
    let per_batch = ReadOptions::default().chunks_per_batch;
    let mut decoder = Decoder::new();
    let mut chunks = source.chunks().peekable();
    while chunks.peek().is_some() {
        let mut group = Vec::with_capacity(per_batch);
        while group.len() < per_batch {
            match chunks.next() {
                None => break,
                Some(Ok(chunk)) => group.push(chunk),
                Some(Err(why)) => report.note(problem(path, None, None, ProblemKind::Chunk(why))),
            }
        }
        if group.is_empty() {
            continue;
        }
        let group = Group {
            file: 0,
            file_id: 0,
            path,
            chunks: group,
        };
        if let Msg::Job { report: r, .. } =
            convert_group(&mut decoder, group, settings.clone(), path_kind, None)
        {
            report.merge(*r);
        }
    }
    report
}

fn problem(
    path: &Path,
    chunk: Option<u64>,
    record: Option<u64>,
    kind: ProblemKind,
) -> RecordProblem {
    RecordProblem {
        path: path.to_path_buf(),
        chunk,
        record,
        kind,
    }
}

/// An error and its causes on one line.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let m = c.to_string();
        if !s.contains(&m) {
            s.push_str(": ");
            s.push_str(&m);
        }
        cur = c.source();
    }
    s
}

fn min_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, None) => x,
        (None, y) => y,
    }
}

fn max_opt(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, None) => x,
        (None, y) => y,
    }
}
