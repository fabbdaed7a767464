//! `evtxsql scan`: ingest EVTX files into a (temporary) store and print the rule pack's report.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use evtxsql_ingest::{FileKey, RecordFilter};
use evtxsql_rules::runner;

use super::report::{EXIT_CODES_HELP, ReportOptions, report_store};
use super::{EXIT_OK, EXIT_PARTIAL};

/// Answers now: read EVTX files, run the SMB guest-logon rules, print what matters.
///
/// Ingests the inputs (files, folders, globs) into a temporary store (or `--store DIR`, kept for
/// `evtxsql query` afterwards), runs the rule pack with one shared scan and prints the report:
/// summary counts, the busiest servers and clients, then findings by severity.
///
/// Without `--store`, only the records some rule of the run can read (their provider or
/// channel and event id, from the rules' `requires`) are decoded in full and kept; the rest are
/// skipped right after their System part is read. `--timings` says how many. With `--store`,
/// every record is kept, for your own SQL later.
///
/// Examples:
///
///   evtxsql scan samples/data/                         every .evtx below the folder
///
///   evtxsql scan C:/collect/ --store case42/           keep the store for SQL later
///
///   evtxsql scan logs/ --format html --out guest.html --fail-on high
///
///   evtxsql scan new/ --store /data/fleet.store --cluster df://sched:50050
///                                                      ingest here, run the rules on a cluster
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct ScanArgs {
    /// EVTX files, folders (searched recursively) or globs.
    #[arg(required = true, value_name = "EVTX")]
    pub inputs: Vec<PathBuf>,

    /// Keep the store in DIR or s3://bucket/prefix (created, or appended to) instead of a
    /// temporary directory.
    #[arg(long, value_name = "DIR|s3://BUCKET/PREFIX")]
    pub store: Option<PathBuf>,

    /// No progress bar or ingest summary on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub report: ReportOptions,
}

pub fn run(args: ScanArgs) -> anyhow::Result<u8> {
    if let Some(code) = args.store.as_deref().and_then(super::ingest::bad_store_url) {
        return Ok(code);
    }
    // Check the rules and options before spending time on the ingest.
    anyhow::ensure!(
        args.report.cluster.is_none() || args.store.is_some(),
        "--cluster needs --store DIR: the executors read the store, so it must be a directory \
         they see at the same path (a temporary store here is not)"
    );
    let set = args.report.load_rules()?;
    // A temporary store only serves this run's rules: keep just what they can read (unless a
    // rule reads the store's own tables rather than `smb_events`).
    let whole = set
        .rules
        .iter()
        .map(|r| r.sql.as_str())
        .chain(set.timeline.as_ref().map(|t| t.sql.as_str()))
        .any(names_store_table);
    let filter = (args.store.is_none() && !whole).then(|| {
        let reqs = runner::merged_requirements(&set.rules, set.timeline.as_ref());
        Arc::new(RecordFilter::new(
            reqs.into_iter().map(|r| (r.source, r.event_ids)),
        ))
    });
    // The same store tells files apart by BLAKE3 (~2.5x faster here), and hashes a file whole
    // only when its size and first bytes match an earlier input's: it records no sha256, and
    // no rule of the run reads the `files` table.
    let key = if filter.is_some() {
        FileKey::Blake3
    } else {
        FileKey::Sha256
    };
    let tmp;
    let store = match &args.store {
        Some(dir) => dir.clone(),
        None => {
            tmp = tempfile::Builder::new()
                .prefix("evtxsql-scan-")
                .tempdir()
                .context("creating a temporary store directory")?;
            tmp.path().join("store")
        }
    };
    let summary = super::ingest::ingest_with_progress(
        &args.inputs,
        &store,
        args.report.threads,
        filter,
        key,
        args.quiet,
    )?;
    if args.report.timings {
        let read = summary.records + summary.skipped_records;
        eprintln!(
            "ingest: {:.1} ms, {read} records read: {} kept ({} decoded here, {} by the evtx \
             crate), {} skipped (no rule of the run reads them){}",
            summary.elapsed_secs * 1000.0,
            summary.records,
            summary.decoded_records,
            summary.records - summary.decoded_records,
            summary.skipped_records,
            if args.store.is_some() {
                "; --store keeps every record"
            } else {
                ""
            }
        );
    }
    let partial = summary.files_failed > 0;
    anyhow::ensure!(
        summary.files_found > 0,
        "no .evtx files found in {}",
        args.inputs
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ")
    );
    let source = args
        .inputs
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    let code = report_store(&store, &source, &args.report)?;
    Ok(if partial && code == EXIT_OK {
        EXIT_PARTIAL
    } else {
        code
    })
}

/// Whether SQL names the store's `events` or `files` table as a word outside string literals
/// and comments (`smb_events` does not count). When unsure it says yes: then nothing is
/// skipped, which costs time, never findings.
fn names_store_table(sql: &str) -> bool {
    let lower = code_only(sql).to_ascii_lowercase();
    let bytes = lower.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    ["events", "files"].iter().any(|name| {
        lower.match_indices(name).any(|(i, m)| {
            let before = i.checked_sub(1).map(|j| bytes[j]);
            let after = bytes.get(i + m.len()).copied();
            !before.is_some_and(word) && !after.is_some_and(word)
        })
    })
}

/// `sql` with its '...' literals and -- and /* */ comments blanked out.
fn code_only(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // To the closing quote; '' inside is an escaped quote.
                while let Some(c) = chars.next() {
                    if c == '\'' && chars.next_if_eq(&'\'').is_none() {
                        break;
                    }
                }
                out.push(' ');
            }
            '-' if chars.next_if_eq(&'-').is_some() => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
                out.push('\n');
            }
            '/' if chars.next_if_eq(&'*').is_some() => {
                let mut prev = ' ';
                for c in chars.by_ref() {
                    if prev == '*' && c == '/' {
                        break;
                    }
                    prev = c;
                }
                out.push(' ');
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::names_store_table;

    #[test]
    fn store_tables_are_words() {
        assert!(!names_store_table("SELECT * FROM smb_events WHERE x"));
        assert!(names_store_table("SELECT count(*) FROM events"));
        assert!(names_store_table(
            "select * from smb_events join FILES using (file_id)"
        ));
        assert!(!names_store_table("SELECT events_seen FROM smb_events"));
        assert!(!names_store_table(
            "SELECT concat('(events ', 'it''s events') -- from events\n/* events */ FROM smb_events"
        ));
        assert!(names_store_table("SELECT 'a' FROM \"events\""));
        for rule in evtxsql_rules::pack::builtin_pack("smb-guest")
            .expect("smb-guest")
            .rules
        {
            assert!(!names_store_table(&rule.sql), "{} reads the store", rule.id);
        }
    }
}
