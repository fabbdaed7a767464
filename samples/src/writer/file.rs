//! An EVTX file: the 4 KiB file header, then 64 KiB chunks written as they fill.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::chunk::{Added, CHUNK_SIZE, Chunk};
use super::schema::Event;
use crate::SamplesError;

/// The size of the file header block.
pub const FILE_HEADER_SIZE: usize = 4096;
/// The most chunks a file header can count.
pub const MAX_CHUNKS: u32 = 0xffff;

/// What a finished file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WriteStats {
    /// Records written.
    pub records: u64,
    /// Chunks written.
    pub chunks: u32,
    /// Bytes in the file.
    pub bytes: u64,
    /// The first record's `EventRecordID` (the next one if none was written).
    pub first_record_id: u64,
}

/// Writes events as records of an EVTX file, in the order given.
///
/// Record ids count up from the first one; chunks are written as they fill, and the file header
/// is written last, so an unfinished file has a zeroed header. Call [`EvtxWriter::finish`].
#[derive(Debug)]
pub struct EvtxWriter<W: Write + Seek> {
    out: W,
    path: PathBuf,
    chunk: Chunk,
    first_record_id: u64,
    next_record_id: u64,
    chunks: u32,
    minor_version: u16,
}

impl EvtxWriter<BufWriter<File>> {
    /// Create (or truncate) `path`, with record ids starting at `first_record_id`.
    pub fn create(path: &Path, first_record_id: u64) -> Result<Self, SamplesError> {
        let file = File::create(path).map_err(|e| SamplesError::io("create", path, e))?;
        EvtxWriter::new(
            BufWriter::with_capacity(4 * CHUNK_SIZE, file),
            path,
            first_record_id,
        )
    }
}

impl<W: Write + Seek> EvtxWriter<W> {
    /// A writer on `out`; `path` only names the output in errors.
    pub fn new(mut out: W, path: &Path, first_record_id: u64) -> Result<Self, SamplesError> {
        out.write_all(&[0u8; FILE_HEADER_SIZE])
            .map_err(|e| SamplesError::io("write", path, e))?;
        let first_record_id = first_record_id.max(1);
        Ok(EvtxWriter {
            out,
            path: path.to_path_buf(),
            chunk: Chunk::new(),
            first_record_id,
            next_record_id: first_record_id,
            chunks: 0,
            minor_version: 1,
        })
    }

    /// Write the header as format version 3.2 instead of 3.1.
    pub fn with_minor_version_2(mut self) -> Self {
        self.minor_version = 2;
        self
    }

    /// Bytes written to the output so far (header block plus finished chunks).
    pub fn bytes_written(&self) -> u64 {
        FILE_HEADER_SIZE as u64 + u64::from(self.chunks) * CHUNK_SIZE as u64
    }

    /// Append one event; returns its `EventRecordID`.
    pub fn write(&mut self, event: &Event) -> Result<u64, SamplesError> {
        let id = self.next_record_id;
        if let Added::Full = self.chunk.add(event, id)? {
            self.flush_chunk()?;
            if let Added::Full = self.chunk.add(event, id)? {
                // `Chunk::add` reports records larger than an empty chunk as errors; this is
                // unreachable, but stays an error rather than a panic.
                return Err(SamplesError::RecordTooLarge {
                    record_id: id,
                    event_id: event.schema.event_id,
                    provider: event.schema.provider.to_string(),
                    size: CHUNK_SIZE,
                });
            }
        }
        self.next_record_id += 1;
        Ok(id)
    }

    fn flush_chunk(&mut self) -> Result<(), SamplesError> {
        if self.chunk.records() == 0 {
            return Ok(());
        }
        if self.chunks >= MAX_CHUNKS {
            return Err(SamplesError::TooManyChunks {
                path: self.path.clone(),
            });
        }
        let bytes = self.chunk.finish();
        self.out
            .write_all(bytes)
            .map_err(|e| SamplesError::io("write", &self.path, e))?;
        self.chunks += 1;
        self.chunk.reset();
        Ok(())
    }

    /// Write the last chunk and the file header; returns what was written and the output.
    pub fn finish(mut self) -> Result<(WriteStats, W), SamplesError> {
        self.flush_chunk()?;
        let header = file_header(self.chunks, self.next_record_id, self.minor_version);
        let path = &self.path;
        let io = |action| move |e| SamplesError::io(action, path, e);
        self.out.seek(SeekFrom::Start(0)).map_err(io("seek"))?;
        self.out.write_all(&header).map_err(io("write"))?;
        self.out.seek(SeekFrom::End(0)).map_err(io("seek"))?;
        self.out.flush().map_err(io("flush"))?;
        let stats = WriteStats {
            records: self.next_record_id - self.first_record_id,
            chunks: self.chunks,
            bytes: self.bytes_written(),
            first_record_id: self.first_record_id,
        };
        Ok((stats, self.out))
    }
}

/// The 4096-byte file header block.
fn file_header(chunks: u32, next_record_id: u64, minor_version: u16) -> Vec<u8> {
    let mut h = vec![0u8; FILE_HEADER_SIZE];
    h[..8].copy_from_slice(b"ElfFile\0");
    h[8..16].copy_from_slice(&0u64.to_le_bytes());
    h[16..24].copy_from_slice(&u64::from(chunks.saturating_sub(1)).to_le_bytes());
    h[24..32].copy_from_slice(&next_record_id.to_le_bytes());
    h[32..36].copy_from_slice(&128u32.to_le_bytes());
    h[36..38].copy_from_slice(&minor_version.to_le_bytes());
    h[38..40].copy_from_slice(&3u16.to_le_bytes());
    h[40..42].copy_from_slice(&(FILE_HEADER_SIZE as u16).to_le_bytes());
    h[42..44].copy_from_slice(&(chunks.min(MAX_CHUNKS) as u16).to_le_bytes());
    // Flags at 120 stay 0: the file is clean, not full, and has CRC32s.
    let crc = crc32fast::hash(&h[..120]);
    h[124..128].copy_from_slice(&crc.to_le_bytes());
    h
}

/// Write `events` to a new EVTX file at `path`, record ids from 1.
pub fn write_evtx(
    path: &Path,
    events: impl IntoIterator<Item = Event>,
) -> Result<WriteStats, SamplesError> {
    let mut w = EvtxWriter::create(path, 1)?;
    for e in events {
        w.write(&e)?;
    }
    Ok(w.finish()?.0)
}
