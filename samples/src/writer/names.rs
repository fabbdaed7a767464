//! The chunk string table: element and attribute names, stored once per chunk and then
//! referenced by offset, with 64 hash buckets in the chunk header.

use std::collections::HashMap;

use super::value::push_utf16;

/// Names already written in the current chunk, and the bucket heads of the string table.
#[derive(Debug)]
pub(crate) struct NameTable {
    offsets: HashMap<String, u32>,
    pub(crate) buckets: [u32; 64],
    /// Names added since the last [`NameTable::commit`], removed again by [`NameTable::rollback`].
    pending: Vec<String>,
    saved_buckets: [u32; 64],
}

/// The 16-bit name hash Windows stores beside each name (multiply by 65599, add the UTF-16 unit).
pub(crate) fn name_hash(name: &str) -> u16 {
    let mut h: u32 = 0;
    for unit in name.encode_utf16() {
        h = h.wrapping_mul(65_599).wrapping_add(u32::from(unit));
    }
    (h & 0xffff) as u16
}

impl NameTable {
    pub(crate) fn new() -> NameTable {
        NameTable {
            offsets: HashMap::new(),
            buckets: [0; 64],
            pending: Vec::new(),
            saved_buckets: [0; 64],
        }
    }

    /// Forget every name (a new chunk starts).
    pub(crate) fn clear(&mut self) {
        self.offsets.clear();
        self.buckets = [0; 64];
        self.pending.clear();
        self.saved_buckets = [0; 64];
    }

    /// Write a reference to `name` at the end of `buf`: its offset, and the name itself right
    /// after when it is new in this chunk.
    pub(crate) fn write_ref(&mut self, buf: &mut Vec<u8>, name: &str) {
        if let Some(&offset) = self.offsets.get(name) {
            buf.extend_from_slice(&offset.to_le_bytes());
            return;
        }
        if self.pending.is_empty() {
            self.saved_buckets = self.buckets;
        }
        let offset = (buf.len() + 4) as u32;
        buf.extend_from_slice(&offset.to_le_bytes());
        let hash = name_hash(name);
        let bucket = usize::from(hash % 64);
        buf.extend_from_slice(&self.buckets[bucket].to_le_bytes());
        buf.extend_from_slice(&hash.to_le_bytes());
        let units = name.encode_utf16().count() as u16;
        buf.extend_from_slice(&units.to_le_bytes());
        push_utf16(buf, name);
        buf.extend_from_slice(&[0, 0]);
        self.buckets[bucket] = offset;
        self.offsets.insert(name.to_string(), offset);
        self.pending.push(name.to_string());
    }

    /// Keep the names added since the last commit.
    pub(crate) fn commit(&mut self) {
        self.pending.clear();
    }

    /// Drop the names added since the last commit (their bytes were truncated away).
    pub(crate) fn rollback(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        for name in self.pending.drain(..) {
            self.offsets.remove(&name);
        }
        self.buckets = self.saved_buckets;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_written_once_then_referenced() {
        let mut t = NameTable::new();
        let mut buf = vec![0u8; 512];
        t.write_ref(&mut buf, "Event");
        assert_eq!(&buf[512..516], &516u32.to_le_bytes());
        assert_eq!(buf.len(), 512 + 4 + 4 + 2 + 2 + 10 + 2);
        let before = buf.len();
        t.write_ref(&mut buf, "Event");
        assert_eq!(buf.len(), before + 4);
        assert_eq!(&buf[before..], &516u32.to_le_bytes());
        let bucket = usize::from(name_hash("Event") % 64);
        assert_eq!(t.buckets[bucket], 516);
    }

    #[test]
    fn rollback_forgets_pending_names() {
        let mut t = NameTable::new();
        let mut buf = vec![0u8; 512];
        t.write_ref(&mut buf, "System");
        t.commit();
        t.write_ref(&mut buf, "Data");
        t.rollback();
        let mut again = vec![0u8; 600];
        t.write_ref(&mut again, "Data");
        assert_eq!(again.len(), 600 + 4 + 8 + 8 + 2);
        assert_eq!(t.buckets.iter().filter(|&&b| b != 0).count(), 2);
    }
}
