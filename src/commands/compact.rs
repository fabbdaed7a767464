//! `evtxsql compact`: merge a store's small segments into large clustered ones.

use std::path::PathBuf;

use anyhow::Context;
use evtxsql_ingest::{CompactOptions, compact};

use super::EXIT_OK;

/// Rewrite a store's many small segments (left by daily ingests) and segments written before
/// the clustered layout into large segments whose rows are sorted by channel, event id and time,
/// so that filters skip most of the data.
///
/// Atomic: a crash leaves either the old or the new segments visible, never both or neither;
/// running it again finishes the work. Idempotent: a compacted store is left as it is. Query
/// answers do not change. Needs free disk space in the store: while it sorts, the rows being
/// rewritten are spilled to tmp/ uncompressed, about 400 bytes an event (3.9 GB for 10.5 M
/// events of a 243 MiB store), besides the new segments (`evtxsql stats` counts the events).
///
/// Exit status: 0 done (or nothing to do); 1 fatal error; 2 bad arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  evtxsql compact case42.store
  evtxsql compact case42.store --dry-run")]
pub struct CompactArgs {
    /// The store directory.
    #[arg(value_name = "STORE")]
    pub store: PathBuf,
    /// Rows a new segment aims at; clustered segments of at least half of it are kept as they are.
    #[arg(long, value_name = "ROWS", default_value_t = CompactOptions::default().segment_rows)]
    pub segment_rows: usize,
    /// Worker threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// Only say what would be rewritten.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the summary as JSON on stdout (for scripts).
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: CompactArgs) -> anyhow::Result<u8> {
    let segment_rows = args.segment_rows.max(1);
    if args.dry_run {
        let plan = evtxsql_ingest::compact::plan_store(&args.store, segment_rows)
            .with_context(|| format!("reading {} failed", args.store.display()))?;
        if args.json {
            println!("{}", serde_json::to_string_pretty(&plan)?);
        } else if plan.is_empty() {
            println!("{}: nothing to compact", args.store.display());
        } else {
            println!(
                "{}: would rewrite {} of {} segments into {}",
                args.store.display(),
                plan.rewritten(),
                plan.segments.len(),
                plan.groups.len()
            );
        }
        return Ok(EXIT_OK);
    }
    let opts = CompactOptions {
        segment_rows,
        threads: args.threads,
        ..CompactOptions::default()
    };
    let s = compact(&args.store, &opts)
        .with_context(|| format!("compacting {} failed", args.store.display()))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&s)?);
    } else if s.segments_rewritten == 0 {
        println!("{}: nothing to compact", s.store.display());
    } else {
        println!(
            "compacted {}: {} segments rewritten into {} ({} rows) in {:.2}s; {} -> {} segments, {:.1} -> {:.1} MiB",
            s.store.display(),
            s.segments_rewritten,
            s.segments_written,
            s.rows_rewritten,
            s.elapsed_secs,
            s.segments_before,
            s.segments_after,
            s.bytes_before as f64 / 1_048_576.0,
            s.bytes_after as f64 / 1_048_576.0
        );
    }
    Ok(EXIT_OK)
}
