//! evtxsql: Windows event logs (.evtx) → a columnar store → SQL, with SMB guest-logon rules.
//! `main` only parses arguments, dispatches to one command and owns the exit code.

mod cli;
mod commands;

use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = cli::Cli::parse();
    match commands::dispatch(cli) {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            eprintln!("error: {err:#}");
            std::process::ExitCode::from(commands::EXIT_FATAL)
        }
    }
}
