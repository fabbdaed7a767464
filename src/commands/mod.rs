//! One module per subcommand; each has its clap `Args` and a `run` that returns the exit code.

pub mod cluster;
pub mod compact;
pub mod ingest;
pub mod query;
pub mod report;
pub mod rules;
pub mod samples;
pub mod scan;
pub mod shell;
pub mod stats;

use crate::cli::{Cli, Command};

/// Exit status: everything worked.
pub const EXIT_OK: u8 = 0;
/// Exit status: a fatal error (message on stderr).
pub const EXIT_FATAL: u8 = 1;
/// Exit status: bad usage or a bad query (clap uses it for argument errors too).
pub const EXIT_USAGE: u8 = 2;
/// Exit status: finished, but some inputs could not be read (each was named on stderr).
pub const EXIT_PARTIAL: u8 = 3;
/// Exit status: `report`/`scan --fail-on SEVERITY` found a detection at or above SEVERITY.
pub const EXIT_FINDINGS: u8 = 4;

pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.command {
        Command::Ingest(args) => ingest::run(args),
        Command::Compact(args) => compact::run(args),
        Command::Scan(args) => scan::run(args),
        Command::Report(args) => report::run(args),
        Command::Rules(args) => rules::run(args),
        Command::Samples(args) => samples::run(args),
        Command::Query(args) => query::run(args),
        Command::Shell(args) => shell::run(args),
        Command::Stats(args) => stats::run(args),
        Command::Cluster(args) => cluster::run(args),
    }
}
