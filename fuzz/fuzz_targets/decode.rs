//! Hostile bytes through the record path of `evtxsql ingest`: the evtx crate's file and chunk
//! walk, our BinXML decoder on each chunk, the evtx crate for what the decoder leaves, the
//! Arrow batch; the rows are dropped. An input that starts with a chunk's magic is one chunk:
//! it is cut or padded to 64 KiB and given a file header of its own, so that mutations of a
//! chunk reach the decoder rather than the file header check.

#![no_main]

use evtxsql_ingest::reader::{CHUNK_SIZE, RecordPath, read_buffer};
use libfuzzer_sys::fuzz_target;

/// Size of the file header block before the first chunk.
const FILE_HEADER_SIZE: usize = 4096;

/// A file of one chunk: a minimal file header (magic, header size 128, version 3.1, header
/// block size 4096, one chunk), then `chunk` cut or zero-padded to 64 KiB.
fn one_chunk_file(chunk: &[u8]) -> Vec<u8> {
    let mut file = vec![0u8; FILE_HEADER_SIZE];
    file[..8].copy_from_slice(b"ElfFile\0");
    file[32..36].copy_from_slice(&128u32.to_le_bytes());
    file[36..38].copy_from_slice(&1u16.to_le_bytes());
    file[38..40].copy_from_slice(&3u16.to_le_bytes());
    file[40..42].copy_from_slice(&(FILE_HEADER_SIZE as u16).to_le_bytes());
    file[42..44].copy_from_slice(&1u16.to_le_bytes());
    let size = CHUNK_SIZE as usize;
    file.extend_from_slice(&chunk[..chunk.len().min(size)]);
    file.resize(FILE_HEADER_SIZE + size, 0);
    file
}

fuzz_target!(|data: &[u8]| {
    let file = if data.starts_with(b"ElfChnk\0") {
        one_chunk_file(data)
    } else {
        data.to_vec()
    };
    let _ = read_buffer(file, RecordPath::Decoder);
});
