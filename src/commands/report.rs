//! `evtxsql report`: run a rule pack over a store and write a report.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use evtxsql_rules::report::Format;
use evtxsql_rules::runner::{self, RunOptions};
use evtxsql_rules::{Report, ReportMeta, RuleSet, Severity, pack};

use super::{EXIT_FINDINGS, EXIT_OK, EXIT_USAGE};

/// Exit codes shared by `report` and `scan`, shown at the end of their `--help`.
pub const EXIT_CODES_HELP: &str = "\
Exit status:
  0  done; no finding at or above --fail-on (or --fail-on not given)
  1  fatal error (message on stderr)
  2  bad usage: unknown option, pack, format or time
  3  (scan only) done, but some inputs could not be read (named on stderr)
  4  done, and at least one detection at or above --fail-on exists
     (inventory rules such as host_posture never trigger it; 4 wins over 3)";

/// Run the rule pack over an evtxsql store and write a report.
///
/// The rules are planned first; then the store is read once (in two passes when some rules read
/// the JSON payload) for just the rows and columns their plans use, and every rule runs on that
/// shared copy, so adding rules adds little. Findings come out in a stable order (severity, rule,
/// host, server, user), so two runs over the same store give the same bytes.
///
/// Examples:
///
///   evtxsql report store/                              text summary + findings on stdout
///
///   evtxsql report store/ --format html --out guest.html
///
///   evtxsql report store/ --since 2025-01-01 --format jsonl --fail-on high
///
///   evtxsql report store/ --rules my-rules/            built-in pack + your own rules
///
///   evtxsql report store/ --pack none --rules my-rules/
///
///   evtxsql report /data/fleet.store --cluster df://sched:50050   on a Ballista cluster
#[derive(Debug, clap::Args)]
#[command(after_long_help = EXIT_CODES_HELP)]
pub struct ReportArgs {
    /// The store written by `evtxsql ingest`: a directory or s3://bucket/prefix.
    pub store: PathBuf,

    #[command(flatten)]
    pub report: ReportOptions,
}

/// Options shared by `report` and `scan`.
#[derive(Debug, Clone, clap::Args)]
pub struct ReportOptions {
    /// Built-in rule pack to run (repeatable; `none` for no built-in pack). See `evtxsql rules list`.
    #[arg(long = "pack", value_name = "NAME", default_value = pack::DEFAULT_PACK)]
    pub packs: Vec<String>,

    /// A directory of your own `.sql` rules to run as well (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,

    /// Only events at or after this time (UTC): 2025-01-31 or 2025-01-31T08:00:00Z.
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Only events before this time (UTC).
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Output format: text, json, jsonl (one finding a line), csv, md, html (one self-contained file).
    #[arg(long, short = 'f', value_name = "FORMAT", default_value = "text")]
    pub format: Format,

    /// Write the report to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Exit with status 4 when a detection at or above this severity exists
    /// (info, low, medium, high, critical).
    #[arg(long, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,

    /// Run each rule on its own scan of the store instead of one shared scan (for timing).
    #[arg(long)]
    pub no_shared_scan: bool,

    /// Print how long the shared scan (and each of its passes over the store, with the rows it
    /// kept) and each rule took (on standard error).
    #[arg(long)]
    pub timings: bool,

    /// Worker threads for the query engine (default: all cores).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Read the store on a Ballista cluster (see `evtxsql cluster --help`): df://HOST:PORT of
    /// its scheduler. The store must be one every executor sees at the same path (or an s3://
    /// store they all reach). The shared
    /// scan's passes over the store run on the executors; the rules run here on the rows kept.
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
}

impl ReportOptions {
    /// The rules this run uses: the packs (unless `none`) then the `--rules` directories, and
    /// the timeline query one of them may bring.
    pub fn load_rules(&self) -> anyhow::Result<RuleSet> {
        let packs: Vec<String> = self
            .packs
            .iter()
            .filter(|p| !p.eq_ignore_ascii_case("none"))
            .cloned()
            .collect();
        let set = pack::select(&packs, &self.rules)?;
        anyhow::ensure!(
            !set.rules.is_empty(),
            "no rules to run: give --pack NAME or --rules DIR"
        );
        Ok(set)
    }

    fn run_options(&self, set: &RuleSet) -> anyhow::Result<RunOptions> {
        anyhow::ensure!(
            self.cluster.is_none() || !self.no_shared_scan,
            "--no-shared-scan does not combine with --cluster: the rules run here on the rows \
             the cluster's passes over the store keep (whole rules as Ballista 55 jobs hung or \
             failed on two of the smb-guest pack's rules)"
        );
        Ok(RunOptions {
            shared_scan: !self.no_shared_scan,
            since: self.since.as_deref().map(runner::parse_time).transpose()?,
            until: self.until.as_deref().map(runner::parse_time).transpose()?,
            timeline: set.timeline.clone(),
        })
    }
}

/// Build a tokio runtime and run `fut` on it.
pub fn block_on<T>(
    fut: impl std::future::Future<Output = T>,
    threads: Option<usize>,
) -> anyhow::Result<T> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    b.enable_all();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    Ok(b.build()
        .context("starting the async runtime")?
        .block_on(fut))
}

/// Run the rules over `store`, write the report, and return the exit status.
pub fn report_store(store: &Path, source: &str, opts: &ReportOptions) -> anyhow::Result<u8> {
    let loaded = opts.load_rules().and_then(|set| {
        let run_opts = opts.run_options(&set)?;
        Ok((set.rules, run_opts))
    });
    let (rules, run_opts) = match loaded {
        Ok(x) => x,
        Err(e) => {
            eprintln!("error: {e:#}");
            return Ok(EXIT_USAGE);
        }
    };
    let session_opts = evtxsql_query::SessionOptions {
        threads: opts.threads,
        ..Default::default()
    };
    let run = block_on(
        async {
            let ctx = evtxsql_query::session_for_store(store, &session_opts)
                .await
                .with_context(|| format!("opening the store {}", store.display()))?;
            let Some(url) = &opts.cluster else {
                return anyhow::Ok(runner::run(&ctx, &rules, &run_opts).await?);
            };
            // The passes over the store run on the cluster; the rules run here on the rows
            // they keep (the shared relation is in this process's memory).
            let remote = super::cluster::remote_session(url, store, &session_opts)
                .await
                .with_context(|| format!("opening the store {}", store.display()))?;
            anyhow::Ok(runner::run_from(&remote, &ctx, &rules, &run_opts).await?)
        },
        opts.threads,
    )??;
    if opts.timings {
        let ms = |d: std::time::Duration| d.as_secs_f64() * 1000.0;
        match run.relation_rows {
            Some(n) => {
                eprintln!(
                    "shared scan: {:.1} ms ({n} events kept, {} pass(es) over the store; \
                     planning the rules first: {:.1} ms)",
                    ms(run.prepare),
                    run.passes.len(),
                    ms(run.planning)
                );
                for (i, p) in run.passes.iter().enumerate() {
                    eprintln!(
                        "  pass {}: {:>8.1} ms  {} rows kept; {} event ids, {} columns{}",
                        i + 1,
                        ms(p.elapsed),
                        p.rows,
                        p.event_ids,
                        p.columns,
                        if p.payload { " with the payload" } else { "" }
                    );
                }
            }
            None => eprintln!("no shared scan: each rule scans the store"),
        }
        if let Some(url) = &opts.cluster {
            eprintln!(
                "cluster {url}: each pass over the store ran as one job on the executors \
                 (Parquet scan with pruning, filters, projection, in tasks over the store's \
                 parts); the rules ran in this process on the kept rows"
            );
        }
        eprintln!(
            "rules: {:.1} ms ({} rules, {} at a time)",
            ms(run.rules_elapsed),
            run.rule_runs.len(),
            run.lanes
        );
        for r in &run.rule_runs {
            eprintln!(
                "  {:<28} {:>8.1} ms  {} findings",
                r.rule,
                r.elapsed.as_secs_f64() * 1000.0,
                r.findings
            );
        }
        eprintln!("total: {:.1} ms", run.total.as_secs_f64() * 1000.0);
    }
    let packs: Vec<String> = rules
        .iter()
        .map(|r| r.pack.clone())
        .fold(Vec::new(), |mut v, p| {
            if !v.contains(&p) {
                v.push(p);
            }
            v
        });
    let meta = ReportMeta {
        tool: format!("evtxsql {}", env!("CARGO_PKG_VERSION")),
        source: source.to_string(),
        packs,
        since: run_opts.since.map(|t| t.to_rfc3339()),
        until: run_opts.until.map(|t| t.to_rfc3339()),
    };
    let report = Report::build(meta, &rules, &run);
    let text = report.render(opts.format)?;
    match &opts.out {
        Some(path) => std::fs::write(path, text)
            .with_context(|| format!("writing the report to {}", path.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .context("writing the report to standard output")?;
        }
    }
    Ok(match opts.fail_on {
        Some(min) if report.has_findings_at_or_above(min) => EXIT_FINDINGS,
        _ => EXIT_OK,
    })
}

pub fn run(args: ReportArgs) -> anyhow::Result<u8> {
    anyhow::ensure!(
        evtxsql_ingest::s3::S3Location::is_url(&args.store) || args.store.is_dir(),
        "{} is not a store directory (make one with `evtxsql ingest <EVTX...> --store {}`)",
        args.store.display(),
        args.store.display()
    );
    report_store(&args.store, &args.store.display().to_string(), &args.report)
}
