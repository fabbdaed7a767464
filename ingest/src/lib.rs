//! evtxsql-ingest: EVTX → Arrow `RecordBatch`es of the events schema → a Parquet store with a
//! files manifest. Knows EVTX and Arrow, nothing of SQL.
//!
//! - [`ingest()`]: inputs → store (incremental, idempotent, crash-safe).
//! - [`compact()`]: many small segments → large clustered ones (atomic, idempotent).
//! - [`reader::read`]: inputs → batches in file order, for callers that do not want a store
//!   (the `read_evtx` table function).
//! - [`s3`]: stores in S3 (`s3://bucket/prefix`): readers' listing, the writer and its lock.
//! - [`schema`], [`mapping`]: the tables' columns and the one mapping of payload fields to
//!   promoted columns.

pub mod binxml;
pub mod compact;
pub mod convert;
pub mod discover;
pub mod error;
pub mod filter;
pub mod ingest;
mod json;
pub mod manifest;
pub mod mapping;
pub mod reader;
pub mod s3;
pub mod schema;
pub mod segment;
pub mod store;

pub use compact::{CompactOptions, CompactPlan, CompactSummary, compact};
pub use discover::{Candidate, Discovery, discover};
pub use error::{IngestError, Result};
pub use filter::RecordFilter;
pub use ingest::{IngestOptions, IngestSummary, NoProgress, Progress, ingest};
pub use manifest::{FileEntry, FileKey};
pub use reader::{FileReport, ReadOptions};
pub use schema::{STORE_FORMAT_VERSION, events_schema, files_schema};
pub use store::Store;

/// A hash map for the hot path's small keys (template offsets, event ids, name offsets): a fast
/// hash with a fixed seed, which is enough where the keys are few and the map is rebuilt per
/// chunk or per batch.
pub(crate) type FastMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::FixedState>;
