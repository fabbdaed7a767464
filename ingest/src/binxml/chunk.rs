//! A 64 KiB EVTX chunk: its header, its string table, and the walk over its records' headers.
//!
//! The walk follows the evtx crate's for a chunk in good order: records back to back from the
//! end of the 512-byte header up to the free space, or up to the record the header names as
//! the last. Where that walk would meet something it resyncs over (a bad record magic, a size
//! that runs past the chunk, a timestamp out of range), this walk stops and says where: the
//! rest of the chunk is the evtx crate's to read.

use std::cell::RefCell;

use super::templates::Name;
use crate::FastMap;

use super::{Unsupported, strings};

pub const CHUNK_HEADER_SIZE: usize = 512;
pub const RECORD_HEADER_SIZE: usize = 24;
const RECORD_MAGIC: [u8; 4] = [0x2a, 0x2a, 0, 0];

fn u16_at(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

pub fn u32_at(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at.checked_add(4)?)
        .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn u64_at(d: &[u8], at: usize) -> Option<u64> {
    let b = d.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

/// The records a chunk's header says it holds (first to last record id), at most as many as
/// fit in its bytes: an estimate for the builders' capacity, never trusted beyond it.
pub fn records_estimate(data: &[u8]) -> usize {
    let (Some(first), Some(last)) = (u64_at(data, 24), u64_at(data, 32)) else {
        return 0;
    };
    let most = data.len().saturating_sub(CHUNK_HEADER_SIZE) / RECORD_HEADER_SIZE;
    usize::try_from(last.saturating_sub(first).saturating_add(1))
        .unwrap_or(most)
        .min(most)
}

/// One record's header fields and its BinXML window.
#[derive(Debug, Clone, Copy)]
pub struct RecordHeader {
    /// Offset of the record (its magic) in the chunk.
    pub offset: usize,
    pub record_id: u64,
    pub filetime: u64,
    /// The BinXML: `[start, end)` in the chunk.
    pub binxml: (usize, usize),
}

/// A chunk's data with its header fields and string table.
pub struct Chunk<'a> {
    pub data: &'a [u8],
    last_record_id: u64,
    free_space: usize,
    /// Names by offset, as the string table's chains give them: their UTF-16 bytes (checked
    /// to decode).
    names: FastMap<u32, (u32, u32)>,
    /// Names decoded so far, by offset: a name is decoded once per chunk, however many
    /// elements and records of it use it (the records written out as elements, without a
    /// template, repeat their names in every record).
    decoded: RefCell<FastMap<u32, Name>>,
}

/// Latest FILETIME the evtx crate turns into a timestamp (jiff's range ends in 9999).
pub const MAX_FILETIME: u64 = 2_650_466_807_999_999_999;
/// 1970-01-01 as a FILETIME.
pub const UNIX_EPOCH_FILETIME: u64 = 116_444_736_000_000_000;

impl<'a> Chunk<'a> {
    /// Read the header and the string table. A chunk the evtx crate would refuse (string table
    /// chains it cannot read) is [`Unsupported`] as a whole.
    pub fn new(data: &'a [u8]) -> Result<Self, Unsupported> {
        if data.len() < CHUNK_HEADER_SIZE || &data[..8] != b"ElfChnk\0" {
            return Err(Unsupported("not a chunk"));
        }
        let trunc = Unsupported("truncated chunk header");
        let last_record_id = u64_at(data, 32).ok_or(trunc)?;
        let free_space = u32_at(data, 48).ok_or(trunc)? as usize;
        let mut chunk = Chunk {
            data,
            last_record_id,
            free_space: free_space.min(data.len()),
            names: FastMap::with_capacity_and_hasher(64, Default::default()),
            decoded: RefCell::default(),
        };
        for bucket in 0..64 {
            let mut offset = u32_at(data, 128 + bucket * 4).ok_or(trunc)?;
            // Each chain ends at a zero link or at a string already read (a loop).
            while offset > 0 && !chunk.names.contains_key(&offset) {
                let at = offset as usize;
                let next = u32_at(data, at).ok_or(Unsupported("string table out of bounds"))?;
                let name = name_bytes_at(data, at + 6)
                    .filter(|b| strings::is_strict(b))
                    .ok_or(Unsupported("unreadable string table entry"))?;
                let start = (at + 8) as u32;
                chunk
                    .names
                    .insert(offset, (start, start + name.len() as u32));
                offset = next;
            }
        }
        Ok(chunk)
    }

    /// The name a name reference at `offset` points to.
    pub fn name(&self, offset: u32) -> Result<Name, Unsupported> {
        if let Some(name) = self.decoded.borrow().get(&offset) {
            return Ok(name.clone());
        }
        let name: Name = strings::decode_strict(self.name_bytes(offset)?)
            .ok_or(Unsupported("unreadable name"))?
            .into();
        self.decoded.borrow_mut().insert(offset, name.clone());
        Ok(name)
    }

    /// Whether the name at `offset` is `name` (no allocation).
    pub fn name_is(&self, offset: u32, name: &str) -> bool {
        self.name_bytes(offset)
            .is_ok_and(|b| strings::is_strict(b) && strings::eq_str(b, name))
    }

    fn name_bytes(&self, offset: u32) -> Result<&'a [u8], Unsupported> {
        if let Some(&(start, end)) = self.names.get(&offset) {
            return Ok(&self.data[start as usize..end as usize]);
        }
        name_bytes_at(self.data, offset as usize + 6).ok_or(Unsupported("unreadable name"))
    }

    /// Walk the records in order. Returns where the walk had to stop (`Some(offset)`: the evtx
    /// crate reads on from there) after calling `each` on every record before it.
    pub fn walk(&self, mut each: impl FnMut(RecordHeader)) -> Option<usize> {
        let data = self.data;
        let mut at = CHUNK_HEADER_SIZE;
        while at < self.free_space {
            let Some(h) = self.record_at(at) else {
                return Some(at);
            };
            let size = u32_at(data, at + 4).unwrap_or(0) as usize;
            each(h);
            if h.record_id == self.last_record_id {
                return None;
            }
            at += size;
        }
        None
    }

    fn record_at(&self, at: usize) -> Option<RecordHeader> {
        let d = self.data;
        if d.get(at..at + 4)? != RECORD_MAGIC {
            return None;
        }
        let size = u32_at(d, at + 4)? as usize;
        let record_id = u64_at(d, at + 8)?;
        let filetime = u64_at(d, at + 16)?;
        // Times the evtx crate cannot hold are its to report; so are times before 1970 that
        // are not whole microseconds (it rounds those its own way).
        if filetime > MAX_FILETIME || (filetime < UNIX_EPOCH_FILETIME && filetime % 10 != 0) {
            return None;
        }
        if size < RECORD_HEADER_SIZE + 4 {
            return None;
        }
        let start = at + RECORD_HEADER_SIZE;
        let end = start + (size - RECORD_HEADER_SIZE - 4);
        if end > d.len() {
            return None;
        }
        Some(RecordHeader {
            offset: at,
            record_id,
            filetime,
            binxml: (start, end),
        })
    }
}

impl RecordHeader {
    /// The header's time in microseconds since 1970.
    pub fn micros(&self) -> i64 {
        (self.filetime as i64 - UNIX_EPOCH_FILETIME as i64).div_euclid(10)
    }
}

/// A name: u16 count, that many UTF-16 units (cut at a NUL), a NUL.
fn name_bytes_at(data: &[u8], at: usize) -> Option<&[u8]> {
    let n = usize::from(u16_at(data, at)?);
    let chars = data.get(at + 2..at + 2 + 2 * n)?;
    // The NUL after it must be there too.
    u16_at(data, at + 2 + 2 * n)?;
    Some(strings::until_nul(chars))
}
