//! The command line: clap derive only. Each subcommand's arguments live beside its code in
//! `commands/<name>.rs`.

use clap::{Parser, Subcommand};

use crate::commands;

/// SQL over Windows event logs, and the SMB insecure-guest-logon rule pack.
///
/// Start with `evtxsql scan <FOLDER>` for answers now; `evtxsql ingest` + `evtxsql query` for
/// your own SQL over every event.
#[derive(Debug, Parser)]
#[command(
    name = "evtxsql",
    version,
    about,
    long_about,
    propagate_version = true,
    after_help = "Examples:
  evtxsql scan samples/data                         # the SMB guest-logon report, now
  evtxsql ingest /cases/42/logs --store case42       # build a store (incremental, crash-safe)
  evtxsql query case42 \"SELECT * FROM smb_client WHERE event_id = 31017\"
  evtxsql report case42 --format html --out report.html --fail-on high
  evtxsql shell case42                               # interactive SQL
  evtxsql report case42 --cluster df://sched:50050   # the same on a Ballista cluster

Run `evtxsql <COMMAND> --help` for each command's options and exit codes."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Ingest(commands::ingest::IngestArgs),
    Compact(commands::compact::CompactArgs),
    Scan(commands::scan::ScanArgs),
    Report(commands::report::ReportArgs),
    Rules(commands::rules::RulesArgs),
    Samples(commands::samples::SamplesArgs),
    Query(commands::query::QueryArgs),
    Shell(commands::shell::ShellArgs),
    Stats(commands::stats::StatsArgs),
    Cluster(commands::cluster::ClusterArgs),
}
