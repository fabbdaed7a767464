//! `evtxsql rules`: list the rules of the built-in packs and check rule files.

use std::path::PathBuf;

use anyhow::Context;
use evtxsql_rules::{Rule, RuleSet, TimelineQuery, check, pack};

use super::report::block_on;
use super::{EXIT_OK, EXIT_USAGE};

/// List and check detection rules.
///
/// A rule is one `.sql` file: a header of `-- key: value` lines (id, title, severity,
/// description, tags, references, falsepositives, requires) and one SELECT over `smb_events`
/// returning host, server, user_name, first_seen, last_seen, count, evidence (plus any columns
/// of your own). A pack may also hold one timeline query (`-- kind: timeline`) returning day,
/// scope, name, allowed, rejected: the daily counts behind the report's charts. See
/// rules/README.md.
///
/// Examples:
///
///   evtxsql rules list                         the smb-guest pack, one line per rule
///
///   evtxsql rules list --verbose               with descriptions, requirements and SQL
///
///   evtxsql rules check my-rules/              parse + plan every rule, report file:line errors
#[derive(Debug, clap::Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RulesCommand {
    /// List rules: id, severity, title (built-in packs, plus --rules DIR).
    List(ListArgs),
    /// Parse every rule in DIR (default: the built-in packs) and plan it against an empty store;
    /// exit 2 if any rule is bad.
    Check(CheckArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Built-in pack to list (repeatable; default: every built-in pack).
    #[arg(long = "pack", value_name = "NAME")]
    pub packs: Vec<String>,

    /// Also list the rules in DIR (repeatable).
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,

    /// Show each rule's description, tags, requirements and SQL.
    #[arg(long, short = 'v')]
    pub verbose: bool,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// Rule directories to check (default: the built-in packs).
    #[arg(value_name = "DIR")]
    pub dirs: Vec<PathBuf>,
}

pub fn run(args: RulesArgs) -> anyhow::Result<u8> {
    match args.command {
        RulesCommand::List(a) => list(a),
        RulesCommand::Check(a) => check_dirs(a),
    }
}

fn list(args: ListArgs) -> anyhow::Result<u8> {
    let packs: Vec<String> = if args.packs.is_empty() && args.rules.is_empty() {
        pack::BUILTIN_PACKS
            .iter()
            .map(|p| p.name.to_string())
            .collect()
    } else {
        args.packs.clone()
    };
    let set = pack::select(&packs, &args.rules)?;
    for r in &set.rules {
        println!(
            "{:<26} {:<8} {:<9} {}",
            r.id,
            r.severity.as_str(),
            format!("{:?}", r.kind).to_ascii_lowercase(),
            r.title
        );
        if args.verbose {
            verbose(r);
        }
    }
    if let Some(t) = &set.timeline {
        println!(
            "{:<26} {:<8} {:<9} {}",
            "(timeline)", "-", "timeline", t.title
        );
        if args.verbose {
            verbose_timeline(t);
        }
    }
    Ok(EXIT_OK)
}

fn verbose_timeline(t: &TimelineQuery) {
    println!("  pack: {}   file: {}", t.pack, t.origin);
    if !t.description.is_empty() {
        println!("  {}", t.description);
    }
    print_requires(&t.requires);
    println!();
    for line in t.sql.lines() {
        println!("    {line}");
    }
    println!();
}

fn print_requires(requires: &[evtxsql_rules::rule::Requirement]) {
    for req in requires {
        println!(
            "  requires: {}: {}",
            req.source,
            req.event_ids
                .iter()
                .map(u32::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
}

fn verbose(r: &Rule) {
    println!("  pack: {}   file: {}", r.pack, r.origin);
    if !r.description.is_empty() {
        println!("  {}", r.description);
    }
    if !r.tags.is_empty() {
        println!("  tags: {}", r.tags.join(", "));
    }
    print_requires(&r.requires);
    for reference in &r.references {
        println!("  reference: {reference}");
    }
    println!();
    for line in r.sql.lines() {
        println!("    {line}");
    }
    println!();
}

fn check_dirs(args: CheckArgs) -> anyhow::Result<u8> {
    // Each pack or directory is checked as a set of its own: two packs that each bring a
    // timeline are fine to check, only a run must choose one.
    let mut sets: Vec<RuleSet> = Vec::new();
    let mut errors: Vec<String> = Vec::new();
    if args.dirs.is_empty() {
        for p in pack::BUILTIN_PACKS {
            match pack::builtin_pack(p.name) {
                Ok(set) => sets.push(set),
                Err(e) => errors.push(e.to_string()),
            }
        }
    }
    for dir in &args.dirs {
        match pack::load_dir_all(dir) {
            Ok((ok, bad)) => {
                sets.push(ok);
                errors.extend(bad.into_iter().map(|e| e.to_string()));
            }
            Err(e) => errors.push(e.to_string()),
        }
    }
    let rules: Vec<Rule> = sets.iter().flat_map(|s| s.rules.iter().cloned()).collect();
    if let Err(e) = pack::check_unique(&rules) {
        errors.push(e.to_string());
    }
    let tmp = tempfile::Builder::new()
        .prefix("evtxsql-check-")
        .tempdir()
        .context("creating an empty store to plan against")?;
    let store = tmp.path().join("store");
    evtxsql_ingest::Store::create_or_open(&store).context("creating an empty store")?;
    let plan_errors = block_on(
        async {
            let ctx =
                evtxsql_query::session_for_store(&store, &evtxsql_query::SessionOptions::default())
                    .await?;
            let mut errors = Vec::new();
            for set in &sets {
                errors.extend(check::check_rules(&ctx, &set.rules, set.timeline.as_ref()).await);
            }
            anyhow::Ok(errors)
        },
        None,
    )??;
    errors.extend(plan_errors.into_iter().map(|e| e.to_string()));
    let timelines = sets.iter().filter(|s| s.timeline.is_some()).count();
    for e in &errors {
        eprintln!("error: {e}");
    }
    let bad = errors.len();
    println!(
        "{} rule(s) and {timelines} timeline query(ies) checked, {} error(s)",
        rules.len(),
        bad
    );
    Ok(if bad == 0 { EXIT_OK } else { EXIT_USAGE })
}
