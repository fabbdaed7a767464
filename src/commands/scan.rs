//! `evtxsql scan`: ingest EVTX files into a (temporary) store and print the rule pack's report.

use std::path::PathBuf;

use anyhow::Context;

use super::report::{EXIT_CODES_HELP, ReportOptions, report_store};
use super::{EXIT_OK, EXIT_PARTIAL};

/// Answers now: read EVTX files, run the SMB guest-logon rules, print what matters.
///
/// Ingests the inputs (files, folders, globs) into a temporary store (or `--store DIR`, kept for
/// `evtxsql query` afterwards), runs the rule pack with one shared scan and prints the report:
/// summary counts, the busiest servers and clients, then findings by severity.
///
/// Examples:
///
///   evtxsql scan samples/data/                         every .evtx below the folder
///
///   evtxsql scan C:/collect/ --store case42/           keep the store for SQL later
///
///   evtxsql scan logs/ --format html --out guest.html --fail-on high
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct ScanArgs {
    /// EVTX files, folders (searched recursively) or globs.
    #[arg(required = true, value_name = "EVTX")]
    pub inputs: Vec<PathBuf>,

    /// Keep the store in DIR (created, or appended to) instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    pub store: Option<PathBuf>,

    /// No progress bar or ingest summary on standard error.
    #[arg(long, short = 'q')]
    pub quiet: bool,

    #[command(flatten)]
    pub report: ReportOptions,
}

pub fn run(args: ScanArgs) -> anyhow::Result<u8> {
    // Check the rules and options before spending time on the ingest.
    args.report.load_rules()?;
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
    let summary =
        super::ingest::ingest_with_progress(&args.inputs, &store, args.report.threads, args.quiet)?;
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
