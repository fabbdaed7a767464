//! Integration tests of evtxsql-rules (one test binary): the smb-guest pack against the samples'
//! ground truth, against the shared corpus of real EVTX files, and the report renderers
//! (escaping, formula neutralization, the HTML report in headless Chromium).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
mod corpus;
mod ground_truth;
mod html_browser;
mod reports;
mod rule_check;
mod shared_scan;
mod signing;
