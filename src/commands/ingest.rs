//! `evtxsql ingest`: EVTX files into a store, with a progress bar and a summary.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use evtxsql_ingest::{FileEntry, IngestOptions, IngestSummary, Progress};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::{EXIT_OK, EXIT_PARTIAL, EXIT_USAGE};

/// Read .evtx files into a store (Parquet files that evtxsql, DuckDB, pandas or Spark can query).
///
/// Inputs are files, directories (searched recursively) and glob patterns. A file is EVTX when
/// it starts with the `ElfFile` signature, whatever its name. Files already in the store (same
/// sha256) are skipped, so running the same ingest again adds nothing, and an interrupted ingest
/// can simply be run again. Damaged files are read as far as possible: every readable record is
/// kept, each unreadable record or chunk is counted and named in a warning.
///
/// Exit status: 0 all inputs read (damaged records are counted in the summary, not an error);
/// 3 finished, but some inputs could not be read, matched nothing, or were directories without
/// EVTX files (each named on stderr); 1 fatal error (for
/// example the store directory is not writable, or an s3:// store cannot be reached); 2 bad
/// arguments.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  evtxsql ingest C:/collected/ --store case42.store
  evtxsql ingest 'hosts/*/Security.evtx' hosts/*/Microsoft-Windows-SmbClient%4Security.evtx --store case42.store
  evtxsql ingest samples/data --store demo.store --json > summary.json
  AWS_REGION=eu-west-1 evtxsql ingest /collect/today --store s3://soc-evidence/fleet")]
pub struct IngestArgs {
    /// Files, directories or glob patterns to read.
    #[arg(required = true, value_name = "PATH")]
    pub inputs: Vec<PathBuf>,
    /// The store: a directory, or s3://bucket/prefix (credentials and endpoint from the AWS_*
    /// environment variables; see README "Stores in S3"). Created when missing.
    #[arg(short, long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub store: PathBuf,
    /// Worker threads (default: one per core).
    #[arg(short = 'j', long, value_name = "N", default_value_t = 0)]
    pub threads: usize,
    /// No progress bar and no warnings on stderr (the summary is still printed).
    #[arg(short, long)]
    pub quiet: bool,
    /// Print the summary as JSON on stdout (for scripts).
    #[arg(long)]
    pub json: bool,
    /// Commit a segment (one Parquet file of events plus its manifest) after at least this many
    /// rows, at the next file boundary. Smaller segments lose less work on a crash.
    #[arg(long, value_name = "ROWS", default_value_t = 4_000_000)]
    pub segment_rows: usize,
    /// Rows per Parquet row group (rows are sorted by channel, event id and time in runs of
    /// bounded memory, then cut into row groups of this size).
    #[arg(long, value_name = "ROWS", default_value_t = IngestOptions::default().row_group_rows)]
    pub row_group_rows: usize,
    /// Memory (MiB of Arrow data) of the rows sorted together before they are written. A full
    /// run is encoded while the next one fills: up to twice this is held.
    #[arg(long, value_name = "MIB", default_value_t = IngestOptions::default().sort_run_bytes >> 20)]
    pub sort_run_mib: usize,
}

/// A store with at least this many segments that `compact` would rewrite gets a hint.
pub const COMPACT_HINT_SEGMENTS: u64 = 4;

pub fn run(args: IngestArgs) -> anyhow::Result<u8> {
    if let Some(code) = bad_store_url(&args.store) {
        return Ok(code);
    }
    let opts = IngestOptions {
        threads: args.threads,
        segment_rows: args.segment_rows.max(1),
        row_group_rows: args.row_group_rows.max(1),
        sort_run_bytes: args.sort_run_mib.max(1) << 20,
        ..IngestOptions::default()
    };
    let summary = ingest_with_options(&args.inputs, &args.store, &opts, args.quiet)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        print_summary(&summary);
    }
    Ok(exit_status(&summary))
}

/// A malformed `s3://` URL, or another URL scheme, given as the store: said on stderr, and
/// the usage exit status.
pub fn bad_store_url(store: &Path) -> Option<u8> {
    match evtxsql_ingest::s3::S3Location::of_path(store) {
        Ok(_) => None,
        Err(e) => {
            eprintln!("error: {e}");
            Some(EXIT_USAGE)
        }
    }
}

/// 0 when every input was read, 3 when some could not be.
pub fn exit_status(summary: &IngestSummary) -> u8 {
    if summary.problems.is_empty() && summary.files_failed == 0 {
        EXIT_OK
    } else {
        EXIT_PARTIAL
    }
}

/// Ingest with a progress bar on a terminal (nothing on a pipe or with `quiet`) and warnings on
/// stderr. Used by `ingest` and `scan`.
pub fn ingest_with_progress(
    inputs: &[PathBuf],
    store: &Path,
    threads: Option<usize>,
    filter: Option<std::sync::Arc<evtxsql_ingest::RecordFilter>>,
    key: evtxsql_ingest::FileKey,
    quiet: bool,
) -> anyhow::Result<IngestSummary> {
    let opts = IngestOptions {
        threads: threads.unwrap_or(0),
        filter,
        key,
        ..IngestOptions::default()
    };
    ingest_with_options(inputs, store, &opts, quiet)
}

fn ingest_with_options(
    inputs: &[PathBuf],
    store: &Path,
    opts: &IngestOptions,
    quiet: bool,
) -> anyhow::Result<IngestSummary> {
    let progress = BarProgress::new(quiet);
    let summary = evtxsql_ingest::ingest(inputs, store, opts, &progress)
        .with_context(|| format!("ingest into {} failed", store.display()))?;
    progress.finish();
    Ok(summary)
}

struct BarProgress {
    bar: ProgressBar,
    quiet: bool,
    counts: Mutex<Counts>,
}

/// What the bar's message shows: files done of planned, records read.
#[derive(Default)]
struct Counts {
    files: u64,
    files_done: u64,
    records: u64,
}

impl Counts {
    fn message(&self) -> String {
        format!(
            "{}/{} files, {} records",
            self.files_done, self.files, self.records
        )
    }
}

impl BarProgress {
    fn new(quiet: bool) -> Self {
        let bar = if quiet || !std::io::stderr().is_terminal() {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::with_draw_target(Some(0), ProgressDrawTarget::stderr());
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({bytes_per_sec}, ETA {eta}) {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
            );
            bar.set_message("hashing inputs…");
            bar.enable_steady_tick(Duration::from_millis(200));
            bar
        };
        BarProgress {
            bar,
            quiet,
            counts: Mutex::new(Counts::default()),
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for BarProgress {
    fn planned(&self, files: u64, bytes: u64) {
        self.bar.set_length(bytes);
        if let Ok(mut c) = self.counts.lock() {
            c.files = files;
            self.bar.set_message(c.message());
        }
    }

    fn advanced(&self, bytes: u64, records: u64) {
        self.bar.inc(bytes);
        if records > 0
            && let Ok(mut c) = self.counts.lock()
        {
            c.records += records;
            self.bar.set_message(c.message());
        }
    }

    fn file_done(&self, _entry: &FileEntry) {
        if let Ok(mut c) = self.counts.lock() {
            c.files_done += 1;
            self.bar.set_message(c.message());
        }
    }

    fn warn(&self, message: &str) {
        if !self.quiet {
            self.bar.suspend(|| eprintln!("warning: {message}"));
        }
    }
}

fn print_summary(s: &IngestSummary) {
    let mut lines = vec![format!(
        "ingested {} files ({} records, {:.1} MiB) into {} in {:.2}s: {:.0} records/s, {:.1} MiB/s",
        s.files_ingested,
        s.records,
        s.bytes_read as f64 / 1_048_576.0,
        s.store.display(),
        s.elapsed_secs,
        s.records_per_sec,
        s.mib_per_sec
    )];
    if s.files_skipped > 0 {
        lines.push(format!(
            "skipped {} files already in the store",
            s.files_skipped
        ));
    }
    if s.files_duplicate > 0 {
        lines.push(format!(
            "skipped {} duplicate files (same content as another input)",
            s.files_duplicate
        ));
    }
    if s.files_damaged > 0 || s.failed_records > 0 {
        lines.push(format!(
            "{} damaged files: {} unreadable records or chunks (all readable records kept)",
            s.files_damaged, s.failed_records
        ));
    }
    if s.files_failed > 0 {
        lines.push(format!(
            "{} files could not be read (see warnings; listed in the files table)",
            s.files_failed
        ));
    }
    if s.files_ignored > 0 {
        lines.push(format!(
            "ignored {} non-EVTX files in the directories",
            s.files_ignored
        ));
    }
    lines.push(format!(
        "store: {:.1} MiB, {} new segments",
        s.store_bytes as f64 / 1_048_576.0,
        s.segments_written
    ));
    if s.segments_unclustered > 0 {
        // A segment of several sorted runs: each row group spans most channels and event ids,
        // so filters on them skip little (1 GB of real logs in one ingest: compaction took the
        // store from 10.3 to 2.0 MiB, and 13 of the 14 benchmark shapes 1-25 % faster).
        lines.push(format!(
            "hint: {} of the store's {} segments were written as several sorted runs or \
             before the clustered layout; \
             `evtxsql compact {}` would cluster them: a smaller store and faster queries",
            s.segments_unclustered,
            s.segments_total,
            s.store.display()
        ));
    } else if s.segments_compactable >= COMPACT_HINT_SEGMENTS {
        lines.push(format!(
            "hint: {} of the store's {} segments are small or unclustered; \
             `evtxsql compact {}` would merge them and make queries faster",
            s.segments_compactable,
            s.segments_total,
            s.store.display()
        ));
    }
    for l in lines {
        println!("{l}");
    }
}
