//! evtxsql-testkit: what the tests of every evtxsql crate need from outside the repository.
//!
//! - [`corpus()`]: the shared real-EVTX corpus (`$EVTXSQL_CORPUS`, else `../shared/evtx` beside
//!   the workspace).
//! - [`chromium()`]: a headless browser for the HTML report test.
//! - [`moto_server()`]: an S3-compatible server for the `s3://` store tests.
//!
//! On a developer's fresh clone a missing fixture is skipped with a `SKIPPED:` line on stderr.
//! Under CI it is a failure that names what is missing: when `EVTXSQL_REQUIRE_CORPUS` /
//! `EVTXSQL_REQUIRE_BROWSER` / `EVTXSQL_REQUIRE_S3` is set (to anything but `0`, `false` or nothing), or `CI` is `true`
//! or `1`.

pub mod fixtures;

pub use fixtures::{Requirement, chromium, corpus, moto_server, required};
