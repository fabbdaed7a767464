//! Generate scenarios the way `evtxsql samples generate` does.
//!
//! `cargo run -p evtxsql-samples --example generate -- [--scenario all] [--hosts 8] [--days 2]
//! [--events 2000] [--seed 1] [--start UNIX_SECS] --out DIR`

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use evtxsql_samples::{GenerateOptions, generate};

fn parse(args: &[String]) -> Result<GenerateOptions, String> {
    let mut o = GenerateOptions::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let bad = |e: std::num::ParseIntError| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--scenario" => o.scenario = value.clone(),
            "--hosts" => o.hosts = value.parse().map_err(bad)?,
            "--days" => o.days = value.parse().map_err(bad)?,
            "--events" => o.events = value.parse().map_err(bad)?,
            "--seed" => o.seed = value.parse().map_err(bad)?,
            "--start" => o.start = Some(value.parse().map_err(bad)?),
            "--out" => o.out = PathBuf::from(value),
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let opts = match parse(&args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("generate: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    match generate(&opts, &|_| {}) {
        Ok(s) => {
            let secs = started.elapsed().as_secs_f64();
            println!(
                "{} scenario(s), {} files, {} records, {} bytes in {:.2} s ({:.1} MB/s)",
                s.scenarios.len(),
                s.files,
                s.records,
                s.bytes,
                secs,
                s.bytes as f64 / 1e6 / secs.max(1e-9)
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("generate: {e}");
            ExitCode::FAILURE
        }
    }
}
