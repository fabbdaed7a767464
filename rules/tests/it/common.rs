//! Helpers: ingest EVTX into a temporary store, open a session, run the pack.

use std::path::{Path, PathBuf};

use datafusion::prelude::SessionContext;
use evtxsql_rules::runner::{self, RunOptions, RunOutput};
use evtxsql_rules::{Rule, TimelineQuery, pack};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Ingest `inputs` into `store` (created).
pub fn ingest(inputs: &[PathBuf], store: &Path) -> evtxsql_ingest::IngestSummary {
    let opts = evtxsql_ingest::IngestOptions {
        threads: 2,
        ..Default::default()
    };
    evtxsql_ingest::ingest(inputs, store, &opts, &evtxsql_ingest::NoProgress).expect("ingest")
}

pub async fn session(store: &Path) -> SessionContext {
    evtxsql_query::session_for_store(store, &evtxsql_query::SessionOptions::default())
        .await
        .expect("session")
}

pub fn smb_guest() -> Vec<Rule> {
    pack::builtin_pack("smb-guest").expect("pack").rules
}

/// The smb-guest pack's timeline query.
pub fn smb_timeline() -> TimelineQuery {
    pack::builtin_pack("smb-guest")
        .expect("pack")
        .timeline
        .expect("smb-guest brings a timeline")
}

/// Run `rules` with the smb-guest timeline (so that shared and naive timelines are compared).
pub async fn run(ctx: &SessionContext, rules: &[Rule], shared: bool) -> RunOutput {
    let opts = RunOptions {
        shared_scan: shared,
        timeline: Some(smb_timeline()),
        ..RunOptions::default()
    };
    runner::run(ctx, rules, &opts).await.expect("run")
}
