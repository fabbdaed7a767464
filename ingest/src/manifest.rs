//! The `files` table: one row per input file, written as each segment's commit mark, and read
//! back to skip files already in the store.

use std::collections::HashMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, AsArray, StringBuilder, TimestampMicrosecondBuilder, UInt32Builder, UInt64Builder,
};
use arrow::datatypes::UInt32Type;
use arrow::record_batch::RecordBatch;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::error::{IngestError, Result};
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
