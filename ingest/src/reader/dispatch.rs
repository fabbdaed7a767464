//! The dispatcher thread: files in input order → (hashed, admitted) → groups of chunks on the
//! pool, each message numbered so the consumer can put them back in order.
//!
//! With an admission, files are read ahead of their dispatch (up to [`LOOKAHEAD_BYTES`] of
//! them, and at least one) and each one's key (sha256, or BLAKE3 for a one-run store) is taken
//! before the admission sees it: with few threads, sha256 here, as the file is read
//! ([`HASH_WHILE_READING_UP_TO`]); with more, on the pool, beside the decoding of the files
//! before it. The dispatcher waits for a file's key only when that file is next in line, asks the
//! admission, and only then hands its chunks to the pool. So hashing overlaps decoding, and a
//! file the store already holds is still never parsed. A one-run store ([`FileKey::Blake3`])
//! hashes a file whole only when its quick key is not enough to tell it from an earlier input
//! ([`super::dedup`]).

use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;

use evtx::ParserSettings;

use super::buffers::{BufferPool, FileBytes};
use super::chunks::ChunkBytes;
use super::dedup;
use super::group::{Group, convert_group};
use super::{
    Admission, Admit, DECODER, Input, Item, Msg, ProblemKind, RecordPath, Source, error_chain,
    problem,
};
use crate::error::IngestError;
use crate::filter::RecordFilter;
use crate::manifest::FileKey;

/// Most bytes of files read and being hashed ahead of the file being dispatched.
pub(super) const LOOKAHEAD_BYTES: u64 = 16 << 20;

/// What the dispatcher hands to the pool and the consumer.
pub(super) struct Dispatcher<'p> {
    pub(super) tx: mpsc::Sender<(u64, Msg)>,
    /// One permit per group in flight (returned by the consumer).
    pub(super) permits: mpsc::SyncSender<()>,
    pub(super) pool: &'p rayon::ThreadPool,
    pub(super) settings: Arc<ParserSettings>,
    pub(super) path_kind: RecordPath,
    pub(super) filter: Option<Arc<RecordFilter>>,
    /// The key each file is hashed to for the admission.
    pub(super) key: FileKey,
    pub(super) per_batch: usize,
    pub(super) seq: u64,
    /// Buffers of files read into memory, used again once a file's chunks are done. Files up
    /// to its budget are read into memory (`ReadOptions::max_buffered_file`).
    pub(super) buffers: Arc<BufferPool>,
    /// The quick keys of the run so far (with [`FileKey::Blake3`]).
    pub(super) staged: dedup::Staged,
    /// Hash a file's sha256 here, piece by piece as it is read (see
    /// [`HASH_WHILE_READING_UP_TO`]), instead of on the pool.
    pub(super) hash_while_reading: bool,
    /// How far the kernel has been asked to read files ahead.
    pub(super) prefetch: super::prefetch::Prefetch,
}

/// Up to this many decoding threads, a file's sha256 is taken on the dispatcher as the file is
/// read, [`super::buffers::SEEN_PIECE`] at a time, while each piece is still in this core's
/// cache; with more, on the pool, where hashing scales with the threads.
///
/// Measured here (2 cores): sha256 reads bytes in cache at 1.93 GB/s and bytes streamed from
/// memory at 1.40 GB/s. Ingest of 1 GB of real logs with 2 threads took 10 % less CPU and 6 %
/// less time hashing while reading than on the pool (7 alternating runs). The dispatcher reads
/// and hashes at about 1.4 GB/s, more than four threads decode (about 0.25 GB/s each).
pub(super) const HASH_WHILE_READING_UP_TO: usize = 4;

/// A file read ahead: its bytes and its hash to come, or why it could not be read.
struct Ahead<'i> {
    file: usize,
    input: &'i Input,
    read: Read,
}

enum Read {
    /// In memory; its key is sent by the pool, or at once when it was taken as the file was
    /// read (sha256 with few threads, or the quick key of [`FileKey::Blake3`]).
    Buffered {
        bytes: Arc<FileBytes>,
        hash: mpsc::Receiver<String>,
    },
    /// Too large to hold: hashed on the pool in a pass of its own (1 MiB at a time; with
    /// [`FileKey::Blake3`] its quick key only), parsed from disk when its turn comes.
    Large {
        hash: mpsc::Receiver<Result<String, String>>,
    },
    Failed(String),
}

impl Read {
    /// What a file read ahead counts against [`LOOKAHEAD_BYTES`]: its bytes in memory; a large
    /// file the whole window, so that one is hashed ahead at a time (its hashing then overlaps
    /// the decoding of the file before it, where it used to stop the dispatcher).
    fn weight(&self) -> u64 {
        match self {
            Read::Buffered { bytes, .. } => bytes.len() as u64,
            Read::Large { .. } => LOOKAHEAD_BYTES,
            Read::Failed(_) => 0,
        }
    }
}

impl Dispatcher<'_> {
    /// Send `msg` with the next number; false once the consumer has gone.
    fn send(&mut self, msg: Msg) -> bool {
        self.seq += 1;
        self.tx.send((self.seq - 1, msg)).is_ok()
    }

    /// Every file through the admission (see the module docs); false once the consumer has
    /// gone.
    pub(super) fn admitted(&mut self, inputs: &[Input], admit: &mut Admission<'_>) -> bool {
        let mut ahead: VecDeque<Ahead<'_>> = VecDeque::new();
        let mut ahead_bytes = 0u64;
        for (file, input) in inputs.iter().enumerate() {
            self.prefetch.advance(inputs, file);
            // Within the pool's budget: dispatch files read ahead until this one fits, then
            // (with none left ahead) wait for the decoders to give buffers back.
            if input.size <= self.buffers.budget() {
                while !self.buffers.has_room(input.size) {
                    let Some(next) = ahead.pop_front() else {
                        self.buffers.wait_for_room(input.size);
                        break;
                    };
                    ahead_bytes -= next.read.weight();
                    if !self.admit_and_dispatch(next, admit) {
                        return false;
                    }
                }
            }
            let read = self.read_ahead(input);
            ahead_bytes += read.weight();
            ahead.push_back(Ahead { file, input, read });
            while ahead_bytes > LOOKAHEAD_BYTES
                && let Some(next) = ahead.pop_front()
            {
                ahead_bytes -= next.read.weight();
                if !self.admit_and_dispatch(next, admit) {
                    return false;
                }
            }
        }
        while let Some(next) = ahead.pop_front() {
            if !self.admit_and_dispatch(next, admit) {
                return false;
            }
        }
        true
    }

    /// Read a file into memory and take its key: sha256 as it is read
    /// ([`Dispatcher::hash_while_reading`]) or on the pool; a large file is hashed from disk on
    /// the pool. With [`FileKey::Blake3`] only the quick key is taken, here: it reads 68 KiB.
    fn read_ahead(&self, input: &Input) -> Read {
        let quick = self.key == FileKey::Blake3;
        if input.size > self.buffers.budget() {
            let (tx, hash) = mpsc::channel();
            if quick {
                let key = dedup::quick_key_of_file(&input.path, input.size)
                    .map_err(|e| IngestError::io(&input.path, e).to_string());
                let _ = tx.send(key);
                return Read::Large { hash };
            }
            let (key, path) = (self.key, input.path.clone());
            self.pool.spawn(move || {
                let _ = tx.send(key.of_file(&path).map_err(|e| e.to_string()));
            });
            return Read::Large { hash };
        }
        // sha256 taken here, as the file is read, or `None`.
        let mut sha = (self.key == FileKey::Sha256 && self.hash_while_reading)
            .then(crate::manifest::Sha256Stream::default);
        let read = match sha.as_mut() {
            Some(sha) => {
                let mut see = |piece: &[u8]| sha.update(piece);
                self.buffers
                    .read_seeing(&input.path, input.size, Some(&mut see))
            }
            None => self.buffers.read(&input.path, input.size),
        };
        match read {
            Ok(bytes) => {
                let bytes = Arc::new(bytes);
                let (tx, hash) = mpsc::channel();
                if let Some(sha) = sha {
                    let _ = tx.send(sha.finish());
                } else if quick {
                    let _ = tx.send(dedup::quick_key(bytes.len() as u64, &bytes));
                } else {
                    let mine = bytes.clone();
                    let key = self.key;
                    self.pool.spawn(move || {
                        let _ = tx.send(key.of_bytes(&mine));
                    });
                }
                Read::Buffered { bytes, hash }
            }
            Err(e) => Read::Failed(IngestError::io(&input.path, e).to_string()),
        }
    }

    /// The file's hash (waiting for it), the admission's answer, and its chunks to the pool.
    fn admit_and_dispatch(&mut self, next: Ahead<'_>, admit: &mut Admission<'_>) -> bool {
        let Ahead { file, input, read } = next;
        let (key, bytes) = match read {
            Read::Buffered { bytes, hash } => match hash.recv() {
                Ok(h) => (h, Some(bytes)),
                // The hashing job cannot fail; a pool torn down means the run is over.
                Err(_) => return false,
            },
            Read::Large { hash } => match hash.recv() {
                Ok(Ok(h)) => (h, None),
                Ok(Err(why)) => {
                    return self.send(Msg::End {
                        file,
                        fatal: Some(why),
                    });
                }
                Err(_) => return false,
            },
            Read::Failed(why) => {
                return self.send(Msg::End {
                    file,
                    fatal: Some(why),
                });
            }
        };
        let key = if self.key == FileKey::Blake3 {
            let whole = || match &bytes {
                Some(b) => Ok(FileKey::Blake3.of_bytes(b)),
                None => FileKey::Blake3
                    .of_file(&input.path)
                    .map_err(|e| e.to_string()),
            };
            match self.staged.key(key, &input.path, whole) {
                Ok(key) => key,
                Err(why) => {
                    return self.send(Msg::End {
                        file,
                        fatal: Some(why),
                    });
                }
            }
        } else {
            key
        };
        let item = match admit(file, &key) {
            Admit::Read { file_id } => Item::Admitted { file, key, file_id },
            Admit::Skip(why) => Item::Skipped { file, key, why },
        };
        let file_id = match item {
            Item::Admitted { file_id, .. } => Some(file_id),
            _ => None,
        };
        if !self.send(Msg::Hashed(item)) {
            return false;
        }
        let Some(file_id) = file_id else {
            return true;
        };
        let source = match bytes {
            Some(b) => Source::shared(b),
            None => Source::file(&input.path, &self.settings),
        };
        self.dispatch(file, file_id, input, source)
    }

    /// Every file without hashing, read into memory in one read (within the pool's budget;
    /// a larger file, or one whose read fails, is parsed from disk: its errors are then the
    /// evtx crate's, as before); false once the consumer has gone.
    pub(super) fn unhashed(&mut self, inputs: &[Input]) -> bool {
        for (file, input) in inputs.iter().enumerate() {
            self.prefetch.advance(inputs, file);
            let read = (input.size <= self.buffers.budget()).then(|| {
                // Every buffer in use is held by a dispatched group, given back when it is done.
                self.buffers.wait_for_room(input.size);
                self.buffers.read(&input.path, input.size)
            });
            let source = match read {
                Some(Ok(bytes)) => Source::shared(Arc::new(bytes)),
                _ => Source::file(&input.path, &self.settings),
            };
            if !self.dispatch(file, input.file_id, input, source) {
                return false;
            }
        }
        true
    }

    /// The chunks of one opened file, in groups, to the pool; then the file's end.
    fn dispatch(
        &mut self,
        file: usize,
        file_id: u32,
        input: &Input,
        source: evtx::err::Result<Source>,
    ) -> bool {
        let mut source = match source {
            Ok(s) => s,
            Err(e) => {
                let fatal = Some(format!(
                    "{}: cannot open as EVTX: {}",
                    input.path.display(),
                    error_chain(&e)
                ));
                return self.send(Msg::End { file, fatal });
            }
        };
        let path: Arc<Path> = Arc::from(input.path.as_path());
        let per_batch = self.per_batch;
        let mut group: Vec<ChunkBytes> = Vec::with_capacity(per_batch);
        let mut chunks = source.chunks();
        loop {
            let item = chunks.next();
            let flush = item.is_none() || group.len() == per_batch;
            if flush && !group.is_empty() {
                if self.permits.send(()).is_err() {
                    return false;
                }
                let job = std::mem::replace(&mut group, Vec::with_capacity(per_batch));
                self.seq += 1;
                let (tx, settings, path, seq) = (
                    self.tx.clone(),
                    self.settings.clone(),
                    path.clone(),
                    self.seq - 1,
                );
                let (filter, path_kind) = (self.filter.clone(), self.path_kind);
                self.pool.spawn(move || {
                    let msg = DECODER.with_borrow_mut(|decoder| {
                        let group = Group {
                            file,
                            file_id,
                            path: &path,
                            chunks: job,
                        };
                        convert_group(decoder, group, settings, path_kind, filter.as_deref())
                    });
                    let _ = tx.send((seq, msg));
                });
            }
            match item {
                None => break,
                Some(Ok(chunk)) => group.push(chunk),
                Some(Err(why)) => {
                    let message = problem(&input.path, None, None, ProblemKind::Chunk(why));
                    if !self.send(Msg::Error { file, message }) {
                        return false;
                    }
                }
            }
        }
        drop(chunks);
        self.send(Msg::End { file, fatal: None })
    }
}
