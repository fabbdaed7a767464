//! `evtxsql samples generate`: write scenario sets of real `.evtx` files with ground truth.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use evtxsql_samples::{GenerateOptions, generate, scenario_names};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::EXIT_OK;

/// Generated EVTX logs for tests, demos and benchmarks.
#[derive(Debug, clap::Args)]
pub struct SamplesArgs {
    #[command(subcommand)]
    pub command: SamplesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum SamplesCommand {
    Generate(GenerateArgs),
    /// List the scenarios `generate` knows.
    List,
}

/// Write a fleet's logs for a scenario: one `.evtx` per host and channel, plus `truth.json` (the
/// findings a correct analysis must report) and `counts.json` (events written per channel,
/// event id and computer). The same options and seed give byte-identical files.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:
  evtxsql samples generate --scenario all --out demo/
  evtxsql samples generate --scenario spoofed-server --hosts 50 --days 7 --events 100000 --seed 3 --out spoof/
  evtxsql samples generate --scenario clean-fleet --hosts 200 --events 20000000 --out /data/bench/   # ~10 GB")]
pub struct GenerateArgs {
    /// A scenario name (see `evtxsql samples list`) or `all` (each into OUT/<scenario>/).
    #[arg(long, default_value = "all")]
    pub scenario: String,
    /// Workstations in the fleet (a scenario's servers come on top).
    #[arg(long, default_value_t = 8)]
    pub hosts: usize,
    /// Days the logs cover.
    #[arg(long, default_value_t = 2)]
    pub days: u32,
    /// Events per scenario, noise included (unrelated Security/System events fill the rest).
    #[arg(long, default_value_t = 2000)]
    pub events: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Output directory.
    #[arg(long)]
    pub out: PathBuf,
    /// No progress bar.
    #[arg(short, long)]
    pub quiet: bool,
}

pub fn run(args: SamplesArgs) -> anyhow::Result<u8> {
    match args.command {
        SamplesCommand::List => {
            for name in scenario_names() {
                println!("{name}");
            }
            Ok(EXIT_OK)
        }
        SamplesCommand::Generate(g) => run_generate(g),
    }
}

fn run_generate(g: GenerateArgs) -> anyhow::Result<u8> {
    let opts = GenerateOptions {
        scenario: g.scenario,
        hosts: g.hosts,
        days: g.days,
        events: g.events,
        seed: g.seed,
        out: g.out.clone(),
        start: None,
    };
    let bar = if g.quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {bytes} written ({bytes_per_sec})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        bar
    };
    let started = Instant::now();
    let summary = generate(&opts, &|bytes| bar.set_position(bytes))
        .with_context(|| format!("generating samples into {}", g.out.display()))?;
    bar.finish_and_clear();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "wrote {} files, {} records, {:.1} MiB into {} in {:.2}s ({:.1} MiB/s): {}",
        summary.files,
        summary.records,
        summary.bytes as f64 / 1_048_576.0,
        g.out.display(),
        secs,
        summary.bytes as f64 / 1_048_576.0 / secs,
        summary.scenarios.join(", ")
    );
    Ok(EXIT_OK)
}
