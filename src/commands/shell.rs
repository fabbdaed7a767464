//! `evtxsql shell`: an interactive SQL prompt over a store (or EVTX files), with history,
//! multi-line statements and table/column listings. Errors are shown and the session goes on.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use evtxsql_query::datafusion::prelude::SessionContext;
use evtxsql_query::{Format, OutputOptions, QueryError};
use rustyline::error::ReadlineError;

use super::EXIT_OK;
use super::query::{EngineArgs, OutputArgs, classify, open_session, report_error, run_sql};

/// Interactive SQL over a store (or EVTX files read on the fly).
///
/// Statements end with `;` and may span lines. Meta commands (on a line of their own):
/// `.tables` or `\d` lists tables and views, `.schema NAME` or `\d NAME` shows columns,
/// `.format FORMAT` switches the output format, `.help`, `.quit` (or Ctrl-D).
///
/// Standard input need not be a terminal: `evtxsql shell case42/ < hunt.sql` runs the statements
/// without prompts and exits with 2 (bad SQL) or 1 (failed query) if any statement failed.
#[derive(Debug, clap::Args)]
#[command(after_help = SHELL_EXAMPLES)]
pub struct ShellArgs {
    /// A store (directory or s3://bucket/prefix), or EVTX files/folders/globs.
    #[arg(required = true, value_name = "STORE|EVTX")]
    pub inputs: Vec<PathBuf>,

    /// History file (default: ~/.evtxsql_history, or .evtxsql_history in the store).
    #[arg(long, value_name = "FILE")]
    pub history: Option<PathBuf>,

    /// Keep no history.
    #[arg(long)]
    pub no_history: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub engine: EngineArgs,
}

const SHELL_EXAMPLES: &str = "\
Examples:
  evtxsql shell case42/
  evtxsql> SELECT event_id, count(*) FROM smb_client
      ...>   GROUP BY 1 ORDER BY 2 DESC;
  evtxsql> \\d logons
  echo 'SELECT count(*) FROM events;' | evtxsql shell case42/ --format csv";

const HELP: &str = "\
SQL statements end with ';' and may span lines.
  .tables, \\d            list tables and views
  .schema NAME, \\d NAME  columns of a table or view
  .format FORMAT         table, csv, json, jsonl
  .help, \\?              this help
  .quit, \\q              leave (or Ctrl-D)
Tables: events, files. Views: smb_client, smb_server, logons, share_access.
Functions: ntstatus_name, sockaddr_ip, sockaddr_port, ip_in_cidr, is_private_ip, normalize_host,
json_get_str(data, 'Field') / data->>'Field', read_evtx('glob').";

/// Where lines come from: a line editor on a terminal, plain lines otherwise.
enum Input {
    Editor(Box<rustyline::DefaultEditor>, Option<PathBuf>),
    Lines(std::io::StdinLock<'static>),
}

impl Input {
    /// The next line, or None at the end.
    fn next(&mut self, prompt: &str) -> Option<String> {
        match self {
            Input::Editor(ed, _) => match ed.readline(prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = ed.add_history_entry(line.as_str());
                    }
                    Some(line)
                }
                // Ctrl-C abandons the line, not the session.
                Err(ReadlineError::Interrupted) => {
                    println!("^C");
                    Some(String::from("\u{3}"))
                }
                Err(_) => None,
            },
            Input::Lines(lock) => {
                let mut line = String::new();
                match lock.read_line(&mut line) {
                    Ok(0) | Err(_) => None,
                    Ok(_) => Some(line.trim_end_matches(['\n', '\r']).to_string()),
                }
            }
        }
    }

    fn save_history(&mut self) {
        if let Input::Editor(ed, Some(path)) = self {
            let _ = ed.save_history(path);
        }
    }
}

fn history_path(args: &ShellArgs) -> Option<PathBuf> {
    if args.no_history {
        return None;
    }
    if let Some(p) = &args.history {
        return Some(p.clone());
    }
    match std::env::var_os("HOME") {
        Some(home) => Some(PathBuf::from(home).join(".evtxsql_history")),
        None => args
            .inputs
            .first()
            .filter(|s| !evtxsql_ingest::s3::S3Location::is_url(s))
            .map(|s| s.join(".evtxsql_history")),
    }
}

pub fn run(args: ShellArgs) -> anyhow::Result<u8> {
    let runtime = args.engine.runtime()?;
    let interactive = std::io::stdin().is_terminal();
    let setup = runtime.block_on(async {
        let opts = args.engine.session_options()?;
        let data = classify(&args.inputs)?;
        let ctx = open_session(&data, &opts, args.engine.cluster.as_deref()).await?;
        let (out_opts, out) = args.output.open()?;
        Ok::<_, QueryError>((ctx, out_opts, out))
    });
    let (ctx, mut out_opts, mut out) = match setup {
        Ok(s) => s,
        Err(e) => return Ok(report_error(&e, "")),
    };
    let mut input = if interactive {
        let mut ed = rustyline::DefaultEditor::new()?;
        let history = history_path(&args);
        if let Some(h) = &history {
            let _ = ed.load_history(h);
        }
        eprintln!(
            "evtxsql shell: tables events, files; views smb_client, smb_server, logons, share_access. .help for help."
        );
        Input::Editor(Box::new(ed), history)
    } else {
        Input::Lines(std::io::stdin().lock())
    };

    let mut worst = EXIT_OK;
    let mut buffer = String::new();
    loop {
        let prompt = if buffer.is_empty() {
            "evtxsql> "
        } else {
            "    ...> "
        };
        let Some(line) = input.next(prompt) else {
            break;
        };
        if line == "\u{3}" {
            buffer.clear();
            continue;
        }
        let trimmed = line.trim();
        if buffer.is_empty() && (trimmed.starts_with('.') || trimmed.starts_with('\\')) {
            match runtime.block_on(meta(trimmed, &ctx, &mut out, &mut out_opts)) {
                Ok(Meta::Quit) => break,
                Ok(Meta::Done) => {}
                Err(e) => worst = worst.max(report_error(&e, "")),
            }
            continue;
        }
        if buffer.is_empty() && trimmed.is_empty() {
            continue;
        }
        buffer.push_str(&line);
        buffer.push('\n');
        if trimmed.ends_with(';') {
            let sql = std::mem::take(&mut buffer);
            let code = run_one(&runtime, &ctx, &sql, &mut out, &out_opts);
            worst = worst.max(code);
        }
    }
    if !buffer.trim().is_empty() {
        let code = run_one(&runtime, &ctx, &buffer, &mut out, &out_opts);
        worst = worst.max(code);
    }
    input.save_history();
    // Without a terminal, tell the script whether something failed: a usage error (2)
    // outranks a failed query (1).
    Ok(if interactive { EXIT_OK } else { worst })
}

fn run_one(
    runtime: &tokio::runtime::Runtime,
    ctx: &SessionContext,
    sql: &str,
    out: &mut Box<dyn Write + Send>,
    opts: &OutputOptions,
) -> u8 {
    match runtime.block_on(run_sql(ctx, sql, out, opts, false)) {
        Ok(()) => EXIT_OK,
        Err(e) => report_error(&e, sql),
    }
}

enum Meta {
    Done,
    Quit,
}

async fn meta(
    line: &str,
    ctx: &SessionContext,
    out: &mut Box<dyn Write + Send>,
    opts: &mut OutputOptions,
) -> Result<Meta, QueryError> {
    let line = line.trim_end_matches(';');
    let mut parts = line.split_whitespace();
    let cmd = parts.next().unwrap_or("");
    let arg = parts.next();
    let sql = match (cmd, arg) {
        (".quit" | ".exit" | "\\q", _) => return Ok(Meta::Quit),
        (".help" | "\\?" | "\\h", _) => {
            writeln!(out, "{HELP}")
                .and_then(|()| out.flush())
                .map_err(io)?;
            return Ok(Meta::Done);
        }
        (".format", Some(f)) => {
            let format: Format = f.parse()?;
            if format.is_binary() {
                return Err(QueryError::InvalidOption {
                    what: "format",
                    value: f.into(),
                    message: "the shell writes text formats: table, csv, json, jsonl".into(),
                });
            }
            opts.format = format;
            return Ok(Meta::Done);
        }
        (".tables" | "\\d" | "\\dt" | "\\dv", None) => {
            "SELECT table_name, table_type FROM information_schema.tables \
             WHERE table_schema = 'public' ORDER BY table_type, table_name"
                .to_string()
        }
        (".schema" | "\\d", Some(name)) => {
            let name = name.replace('\'', "''").to_lowercase();
            let sql = format!(
                "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
                 WHERE table_schema = 'public' AND table_name = '{name}' ORDER BY ordinal_position"
            );
            let df = evtxsql_query::sql(ctx, &sql).await?;
            let batches = df.collect().await.map_err(QueryError::Execution)?;
            if batches.iter().all(|b| b.num_rows() == 0) {
                return Err(QueryError::InvalidOption {
                    what: "table",
                    value: name,
                    message: "no such table or view; .tables lists them".into(),
                });
            }
            sql
        }
        _ => {
            return Err(QueryError::InvalidOption {
                what: "command",
                value: line.into(),
                message: "unknown; .help lists the commands".into(),
            });
        }
    };
    run_sql(ctx, &sql, out, opts, false).await?;
    Ok(Meta::Done)
}

fn io(source: std::io::Error) -> QueryError {
    QueryError::Io {
        path: "stdout".into(),
        source,
    }
}
