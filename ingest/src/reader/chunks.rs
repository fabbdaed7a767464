//! The chunks of an EVTX file held in memory, as slices of its bytes: no copy per chunk.
//!
//! [`SharedChunks`] walks them as the evtx crate's `EvtxParser::chunks` does (its order, the
//! chunks it skips, the ones it reports as errors), which a test checks on every file of the
//! corpus and on damaged copies: from the chunk that holds the oldest records to the end of the
//! file, then from the start (a log that has wrapped around); an all-zero chunk is skipped; a
//! chunk whose header does not read is an error naming it; the walk ends at the last whole
//! chunk. A file too large to hold in memory is read by the evtx crate's iterator instead
//! ([`ChunkBytes::Owned`]).

use std::io::Cursor;
use std::sync::Arc;

use evtx::err::ChunkError;
use evtx::{EvtxChunkData, EvtxChunkHeader, EvtxParser};

use super::CHUNK_SIZE;
use super::buffers::FileBytes;

/// Where the first chunk starts (the evtx crate places chunks after a 4 KiB file header,
/// whatever the header's own block size says).
const FIRST_CHUNK: usize = 4096;
/// A chunk's header, the part read to find the oldest chunk.
const CHUNK_HEADER: usize = 512;
const CHUNK: usize = CHUNK_SIZE as usize;

/// One chunk of a file.
pub enum ChunkBytes {
    /// Read by the evtx crate (a file read from disk as it is parsed).
    Owned(Box<EvtxChunkData>),
    /// Chunk `number` of a file held in memory, a slice of it.
    Shared { file: Arc<FileBytes>, number: u64 },
}

impl ChunkBytes {
    /// The chunk's number in the file.
    pub fn number(&self) -> u64 {
        match self {
            ChunkBytes::Owned(c) => c.number.unwrap_or_default(),
            ChunkBytes::Shared { number, .. } => *number,
        }
    }

    /// The chunk's 64 KiB, header included.
    pub fn data(&self) -> &[u8] {
        match self {
            ChunkBytes::Owned(c) => &c.data,
            ChunkBytes::Shared { file, number } => {
                let start = offset(*number).unwrap_or(usize::MAX);
                file.get(start..start.saturating_add(CHUNK))
                    .unwrap_or_default()
            }
        }
    }

    /// The chunk as the evtx crate's own (a copy of a shared chunk), for reading it whole
    /// with the evtx crate: its errors then name the chunk as the crate names it.
    pub fn into_owned(self) -> Result<EvtxChunkData, ChunkError> {
        match self {
            ChunkBytes::Owned(c) => Ok(*c),
            ChunkBytes::Shared { .. } => {
                let number = self.number();
                let mut c = EvtxChunkData::new(self.data().to_vec(), false)?;
                c.number = Some(number);
                Ok(c)
            }
        }
    }
}

/// Where chunk `number` starts.
fn offset(number: u64) -> Option<usize> {
    usize::try_from(number)
        .ok()?
        .checked_mul(CHUNK)?
        .checked_add(FIRST_CHUNK)
}

/// Whether every byte is 0 (in blocks the compiler can vectorize: logs that Windows made
/// large ahead of time are mostly zeroed chunks).
fn all_zero(bytes: &[u8]) -> bool {
    let mut blocks = bytes.chunks_exact(64);
    blocks.all(|b| b.iter().fold(0u8, |acc, x| acc | x) == 0)
        && blocks.remainder().iter().all(|b| *b == 0)
}

/// A chunk the walk could not take: its number and why.
#[derive(Debug)]
pub struct ChunkFailure {
    pub number: u64,
    pub error: ChunkError,
}

/// The chunks of a file in memory, in the evtx crate's order.
pub struct SharedChunks {
    file: Arc<FileBytes>,
    /// Whole chunks after the header, as the evtx crate counts them.
    count: u64,
    oldest: u64,
    next: u64,
    wrapped: bool,
    done: bool,
}

impl SharedChunks {
    /// Start the walk; a file the evtx crate cannot open (no EVTX file header) is its error.
    pub fn open(file: Arc<FileBytes>) -> evtx::err::Result<SharedChunks> {
        let parser = EvtxParser::from_read_seek(Cursor::new(&file[..]))?;
        let header_block = usize::from(parser.header().header_block_size);
        let count = (file.len().saturating_sub(header_block) / CHUNK) as u64;
        let mut walk = SharedChunks {
            file,
            count,
            oldest: 0,
            next: 0,
            wrapped: false,
            done: false,
        };
        walk.oldest = walk.oldest_chunk();
        walk.next = walk.oldest;
        Ok(walk)
    }

    /// The chunk whose header names the lowest record id (a reversed range does not count);
    /// the headers are read in order until one is not there.
    fn oldest_chunk(&self) -> u64 {
        let mut oldest = (u64::MAX, 0);
        for number in 0..self.count {
            let Some(head) = offset(number).and_then(|o| self.file.get(o..o + CHUNK_HEADER)) else {
                break;
            };
            if let Ok(h) = EvtxChunkHeader::from_bytes(head)
                && h.first_event_record_id <= h.last_event_record_id
                && h.first_event_record_id < oldest.0
            {
                oldest = (h.first_event_record_id, number);
            }
        }
        oldest.1
    }

    /// The first chunk from `number` on, before `end`, that is not all zeros: the chunk, or
    /// why it cannot be read; `None` past the last whole chunk.
    fn find_chunk(&self, mut number: u64, end: u64) -> Option<(Result<(), ChunkError>, u64)> {
        loop {
            if number >= end {
                return None;
            }
            let bytes = offset(number).and_then(|o| self.file.get(o..o.checked_add(CHUNK)?));
            let Some(bytes) = bytes else {
                // Past the whole chunks: the end, unless the count says a chunk is there.
                if number >= self.count {
                    return None;
                }
                return Some((Err(ChunkError::IncompleteChunk), number));
            };
            if all_zero(bytes) {
                number = number.checked_add(1)?;
                continue;
            }
            if EvtxChunkHeader::from_bytes(bytes).is_ok() {
                return Some((Ok(()), number));
            }
            // The evtx crate's own error for this header.
            let error = match EvtxChunkData::new(bytes.to_vec(), false) {
                Err(e) => e,
                Ok(_) => ChunkError::IncompleteChunk,
            };
            return Some((Err(error), number));
        }
    }
}

impl Iterator for SharedChunks {
    type Item = Result<ChunkBytes, ChunkFailure>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            let end = if self.wrapped { self.oldest } else { u64::MAX };
            if let Some((found, number)) = self.find_chunk(self.next, end) {
                match number.checked_add(1) {
                    Some(n) => self.next = n,
                    None => self.done = true,
                }
                return Some(match found {
                    Ok(()) => Ok(ChunkBytes::Shared {
                        file: self.file.clone(),
                        number,
                    }),
                    Err(error) => Err(ChunkFailure { number, error }),
                });
            }
            if self.wrapped || self.oldest == 0 {
                self.done = true;
            } else {
                self.wrapped = true;
                self.next = 0;
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The walk's chunk numbers, and which are errors, as the evtx crate's iterator gives them.
    fn evtx_walk(bytes: &[u8]) -> Option<Vec<(u64, bool)>> {
        let mut parser = EvtxParser::from_buffer(bytes.to_vec()).ok()?;
        let mut out = Vec::new();
        for c in parser.chunks() {
            match c {
                Ok(c) => out.push((c.number.unwrap_or(u64::MAX), true)),
                // The crate's error names the chunk in its text only.
                Err(e) => out.push((chunk_number_in(&e.to_string()), false)),
            }
        }
        Some(out)
    }

    fn chunk_number_in(message: &str) -> u64 {
        message
            .split(|c: char| !c.is_ascii_digit())
            .find(|s| !s.is_empty())
            .and_then(|s| s.parse().ok())
            .unwrap_or(u64::MAX)
    }

    fn our_walk(bytes: &[u8]) -> Option<Vec<(u64, bool)>> {
        let walk = SharedChunks::open(Arc::new(FileBytes::from(bytes.to_vec()))).ok()?;
        Some(
            walk.map(|c| match c {
                Ok(c) => {
                    assert_eq!(c.data().len(), CHUNK, "a shared chunk is whole");
                    (c.number(), true)
                }
                Err(f) => (f.number, false),
            })
            .collect(),
        )
    }

    /// Every corpus file, and damaged copies of each: the same chunks in the same order.
    #[test]
    fn walks_the_chunks_as_the_evtx_crate_does() {
        let Some(dir) = evtxsql_testkit::corpus() else {
            return;
        };
        let mut files = crate::discover(std::slice::from_ref(&dir)).files();
        files.sort();
        assert!(!files.is_empty(), "no .evtx files in {}", dir.display());
        let mut compared = 0;
        for path in &files {
            let Ok(bytes) = std::fs::read(path) else {
                continue;
            };
            let mut variants = vec![("as it is".to_owned(), bytes.clone())];
            if bytes.len() > FIRST_CHUNK + 2 * CHUNK {
                // A chunk zeroed, a chunk's magic broken, the oldest record ids changed, the
                // file cut inside a chunk and after the header.
                let mut zeroed = bytes.clone();
                zeroed[FIRST_CHUNK + CHUNK..FIRST_CHUNK + 2 * CHUNK].fill(0);
                variants.push(("second chunk zeroed".into(), zeroed));
                let mut magic = bytes.clone();
                magic[FIRST_CHUNK] ^= 0xff;
                variants.push(("first chunk's magic broken".into(), magic));
                let mut ids = bytes.clone();
                ids[FIRST_CHUNK + CHUNK + 8..FIRST_CHUNK + CHUNK + 16].fill(0);
                variants.push(("second chunk's first record id 0".into(), ids));
                variants.push((
                    "cut inside the second chunk".into(),
                    bytes[..FIRST_CHUNK + CHUNK + 1000].to_vec(),
                ));
            }
            variants.push((
                "header only".into(),
                bytes[..bytes.len().min(FIRST_CHUNK)].to_vec(),
            ));
            let mut small_block = bytes.clone();
            if small_block.len() > 0x28 {
                // A header block size smaller than where the chunks start.
                small_block[0x28..0x2a].copy_from_slice(&128u16.to_le_bytes());
            }
            variants.push(("header block size 128".into(), small_block));
            for (what, v) in &variants {
                let want = evtx_walk(v);
                let got = our_walk(v);
                assert_eq!(got, want, "{} ({what})", path.display());
                compared += 1;
            }
        }
        assert!(compared > files.len());
    }
}
