//! The `files` table: one row per input file, written as each segment's commit mark, and read
//! back to skip files already in the store.

use std::collections::HashMap;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::UInt32Type;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sha2::{Digest, Sha256};

use crate::error::{IngestError, Result};
use crate::reader::FileReport;
use crate::schema::{files_col, files_schema};
use crate::store::Store;

/// One row of the `files` table.
#[derive(Debug, Clone)]
pub struct FileEntry {
    pub file_id: u32,
    pub path: PathBuf,
    pub size: u64,
    pub sha256: String,
    pub computers: Vec<String>,
    pub channels: Vec<String>,
    pub first_time: Option<i64>,
    pub last_time: Option<i64>,
    pub records: u64,
    pub failed_records: u64,
    pub status: String,
    pub error: Option<String>,
    pub ingested_at: i64,
    pub segment: u32,
}

impl FileEntry {
    /// A file that could not be read at all (`status` `failed`, no records).
    pub fn failed(
        file_id: u32,
        path: &Path,
        size: u64,
        sha256: String,
        error: String,
        ingested_at: i64,
    ) -> Self {
        FileEntry {
            file_id,
            path: path.to_path_buf(),
            size,
            sha256,
            computers: Vec::new(),
            channels: Vec::new(),
            first_time: None,
            last_time: None,
            records: 0,
            failed_records: 0,
            status: "failed".into(),
            error: Some(error),
            ingested_at,
            segment: 0,
        }
    }

    /// A file the reader went through: its counts, hosts, channels, time range and status, and
    /// as its error the fatal one or else the first unreadable record's.
    pub fn from_report(report: FileReport, size: u64, sha256: String, ingested_at: i64) -> Self {
        let status = report.status().to_string();
        FileEntry {
            file_id: report.file_id,
            path: report.path,
            size,
            sha256,
            computers: report.computers.into_iter().collect(),
            channels: report.channels.into_iter().collect(),
            first_time: report.first_time,
            last_time: report.last_time,
            records: report.records,
            failed_records: report.failed_records,
            status,
            error: report
                .fatal
                .or_else(|| report.messages.first().map(ToString::to_string)),
            ingested_at,
            segment: 0,
        }
    }
}

/// The sha256 of a file's bytes, as lower-case hex: the store's identity of a file.
pub fn sha256_file(path: &Path) -> Result<String> {
    FileKey::Sha256.of_file(path)
}

/// What tells two input files apart (two files with the same key are the same file, read once).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum FileKey {
    /// sha256, recorded in the `files` table: a store's chain of custody, and what later
    /// ingests compare against. The default.
    #[default]
    Sha256,
    /// BLAKE3, kept in memory only (the `sha256` column is left empty): for a store that lives
    /// for one run (`scan` without `--store`), where the key only drops duplicates among its
    /// inputs. About 2.5x faster than sha256 here (with the SHA extensions) and just as
    /// collision resistant, so a crafted file still cannot pass for another. The reader hashes
    /// a file whole only when its size and first bytes do not tell it from an earlier input
    /// (see `reader::dedup`).
    Blake3,
}

/// A sha256 fed in pieces, its key as [`FileKey::Sha256`] gives it.
#[derive(Default)]
pub struct Sha256Stream(Sha256);

impl Sha256Stream {
    pub fn update(&mut self, piece: &[u8]) {
        self.0.update(piece);
    }

    /// The key, as lower-case hex.
    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

impl FileKey {
    /// The key of bytes in memory, as lower-case hex.
    pub fn of_bytes(self, bytes: &[u8]) -> String {
        match self {
            FileKey::Sha256 => {
                let mut sha = Sha256Stream::default();
                sha.update(bytes);
                sha.finish()
            }
            FileKey::Blake3 => hex(blake3::hash(bytes).as_bytes()),
        }
    }

    /// The key of a file's contents, read in pieces.
    pub fn of_file(self, path: &Path) -> Result<String> {
        let mut f = File::open(path).map_err(|e| IngestError::io(path, e))?;
        let mut sha = Sha256Stream::default();
        let mut b3 = blake3::Hasher::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = f.read(&mut buf).map_err(|e| IngestError::io(path, e))?;
            if n == 0 {
                break;
            }
            match self {
                FileKey::Sha256 => sha.update(&buf[..n]),
                FileKey::Blake3 => {
                    b3.update(&buf[..n]);
                }
            }
        }
        Ok(match self {
            FileKey::Sha256 => sha.finish(),
            FileKey::Blake3 => hex(b3.finalize().as_bytes()),
        })
    }

    /// What the `files` table records for a file of this key: the sha256, or nothing.
    pub fn recorded(self, key: String) -> String {
        match self {
            FileKey::Sha256 => key,
            FileKey::Blake3 => String::new(),
        }
    }
}

fn hex(digest: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(digest.len() * 2);
    for b in digest {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Now, in microseconds since the epoch (the `ingested_at` of a run's entries).
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Build the `files` batch of a segment.
pub fn to_batch(entries: &[FileEntry]) -> Result<RecordBatch> {
    let n = entries.len();
    let mut file_id = UInt32Builder::with_capacity(n);
    let mut path = StringBuilder::new();
    let mut size = UInt64Builder::with_capacity(n);
    let mut sha = StringBuilder::new();
    let mut computers = StringBuilder::new();
    let mut channels = StringBuilder::new();
    let mut first = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut last = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut records = UInt64Builder::with_capacity(n);
    let mut failed = UInt64Builder::with_capacity(n);
    let mut status = StringBuilder::new();
    let mut error = StringBuilder::new();
    let mut ingested = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut segment = UInt32Builder::with_capacity(n);
    for e in entries {
        file_id.append_value(e.file_id);
        path.append_value(e.path.to_string_lossy());
        size.append_value(e.size);
        sha.append_value(&e.sha256);
        computers.append_option((!e.computers.is_empty()).then(|| e.computers.join(", ")));
        channels.append_option((!e.channels.is_empty()).then(|| e.channels.join(", ")));
        first.append_option(e.first_time);
        last.append_option(e.last_time);
        records.append_value(e.records);
        failed.append_value(e.failed_records);
        status.append_value(&e.status);
        error.append_option(e.error.as_deref());
        ingested.append_value(e.ingested_at);
        segment.append_value(e.segment);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(file_id.finish()),
        Arc::new(path.finish()),
        Arc::new(size.finish()),
        Arc::new(sha.finish()),
        Arc::new(computers.finish()),
        Arc::new(channels.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(records.finish()),
        Arc::new(failed.finish()),
        Arc::new(status.finish()),
        Arc::new(error.finish()),
        Arc::new(ingested.finish()),
        Arc::new(segment.finish()),
    ];
    Ok(RecordBatch::try_new(files_schema(), columns)?)
}

/// What a writer needs to know of the files already in a store.
#[derive(Debug, Default)]
pub struct Known {
    /// sha256 → file_id of every file in the store.
    pub by_sha256: HashMap<String, u32>,
    /// The next free file id and segment number.
    pub next_file_id: u32,
    pub next_segment: u32,
}

/// Read the sha256 and file ids of every committed manifest part.
pub fn known(store: &Store) -> Result<Known> {
    let mut k = Known::default();
    for seg in store.segments()? {
        k.next_segment = k.next_segment.max(seg + 1);
        let path = store.files_part(seg);
        let bad = |message: String| IngestError::BadStore {
            path: path.clone(),
            message,
        };
        let file = File::open(&path).map_err(|e| IngestError::io(&path, e))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| bad(e.to_string()))?;
        let schema = builder.parquet_schema();
        let wanted: Vec<usize> = [files_col::FILE_ID, files_col::SHA256]
            .iter()
            .filter_map(|name| schema.columns().iter().position(|c| c.name() == *name))
            .collect();
        if wanted.len() != 2 {
            return Err(bad("manifest part lacks file_id or sha256".into()));
        }
        let mask = ProjectionMask::leaves(schema, wanted);
        let reader = builder
            .with_projection(mask)
            .build()
            .map_err(|e| bad(e.to_string()))?;
        for batch in reader {
            let batch = batch.map_err(|e| bad(e.to_string()))?;
            let ids = batch
                .column_by_name(files_col::FILE_ID)
                .and_then(|c| c.as_primitive_opt::<UInt32Type>())
                .ok_or_else(|| bad("file_id column has the wrong type".into()))?;
            let shas = batch
                .column_by_name(files_col::SHA256)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| bad("sha256 column has the wrong type".into()))?;
            for (id, sha) in ids.iter().zip(shas.iter()) {
                if let (Some(id), Some(sha)) = (id, sha) {
                    k.next_file_id = k.next_file_id.max(id + 1);
                    k.by_sha256.insert(sha.to_owned(), id);
                }
            }
        }
    }
    Ok(k)
}

#[cfg(test)]
mod tests {
    use super::FileKey;

    #[test]
    fn keys_of_bytes_and_of_files_agree() {
        // Published test vectors for "abc".
        assert_eq!(
            FileKey::Sha256.of_bytes(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            FileKey::Blake3.of_bytes(b"abc"),
            "6437b3ac38465133ffb63b75273a8db548c558465d79db03fd359c6cd5bd9d85"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        // More than one read buffer, not a multiple of it.
        let bytes: Vec<u8> = (0..(3 << 20) + 17).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).expect("write");
        for key in [FileKey::Sha256, FileKey::Blake3] {
            assert_eq!(key.of_file(&path).expect("hash"), key.of_bytes(&bytes));
        }
        assert_eq!(FileKey::Sha256.recorded("k".into()), "k");
        assert_eq!(FileKey::Blake3.recorded("k".into()), "");
    }
}
