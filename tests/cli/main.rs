//! End-to-end tests of the `evtxsql` binary (one test binary: each links the whole stack).
#![allow(clippy::unwrap_used)]

mod cluster;
mod common;
mod compact;
mod ingest;
mod query;
mod report;
mod s3;
mod writers;
