//! evtxsql-ingest: EVTX → Arrow `RecordBatch`es of the events schema → a Parquet store with a
//! files manifest. Knows EVTX and Arrow, nothing of SQL.

pub mod error;
pub mod mapping;
pub mod schema;
pub mod store;

pub use error::{IngestError, Result};
pub use schema::{STORE_FORMAT_VERSION, events_schema, files_schema};
pub use store::Store;
