//! The EVTX writer: file header, 64 KiB chunks with string and template tables, and BinXML
//! records made of one template instance each, with typed substitution values.

mod chunk;
mod file;
mod names;
mod schema;
mod template;
mod value;

pub use chunk::{CHUNK_HEADER_SIZE, CHUNK_SIZE};
pub use file::{EvtxWriter, FILE_HEADER_SIZE, MAX_CHUNKS, WriteStats, write_evtx};
pub use schema::{Event, EventSchema, Field, Payload};
pub use value::{FileTime, Guid, Sid, Value, ValueType};

#[allow(unused_imports)]
pub(crate) use schema::Fnv;
#[allow(unused_imports)]
pub(crate) use value::civil_from_days;
