//! evtxsql-samples: an EVTX writer and a scenario generator with ground truth.
//!
//! - [`writer`]: real `.evtx` files (file header, chunks, BinXML templates, typed values).
//! - [`catalog`]: the SMB guest-logon event kinds and the noise around them.
//! - [`scenario`]: seeded fleets of hosts writing one file per host and channel, plus
//!   `truth.json` (the findings a correct analysis reports) and `counts.json`.

pub mod catalog;
mod error;
pub mod scenario;
pub mod writer;

pub use error::SamplesError;
pub use scenario::{GenerateOptions, GenerateSummary, generate, scenario_names};
pub use writer::{Event, EventSchema, EvtxWriter, Value, WriteStats, write_evtx};
