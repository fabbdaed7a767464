//! `evtxsql query`: SQL over a store or over EVTX files, as a table or for scripts. Also the
//! pieces `shell` and `stats` share: engine and output options, opening a session, printing
//! errors with exit codes.

use std::fs::File;
use std::io::{BufWriter, IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use evtxsql_query::datafusion::physical_plan::execute_stream;
use evtxsql_query::datafusion::prelude::SessionContext;
use evtxsql_query::{Format, OutputOptions, QueryError, SessionOptions};

use super::{EXIT_FATAL, EXIT_OK, EXIT_USAGE};

/// Run SQL over a store or directly over EVTX files.
///
/// The first arguments name the data: one store directory (made by `evtxsql ingest`), or EVTX
/// files, folders (searched recursively) and globs, read on the fly. The last argument is the
/// SQL, unless `-f FILE` gives it (several statements separated by `;` are run in order).
///
/// Tables: `events` (one row per event record), `files` (one row per input file). Views:
/// `smb_client`, `smb_server`, `logons`, `share_access`. Functions: `ntstatus_name(status)`,
/// `sockaddr_ip(hex)`, `sockaddr_port(hex)`, `ip_in_cidr(ip, cidr)`, `is_private_ip(ip)`,
/// `normalize_host(name)`, the JSON functions over `data` (`data->>'UserName'`,
/// `json_get_str(data, 'ShareName')`), and the table function `read_evtx('glob', ...)`.
#[derive(Debug, clap::Args)]
#[command(after_help = QUERY_EXAMPLES)]
pub struct QueryArgs {
    /// A store (directory or s3://bucket/prefix) or EVTX files/folders/globs, then the SQL
    /// (unless -f is given).
    #[arg(required = true, value_name = "STORE|EVTX... SQL")]
    pub args: Vec<String>,

    /// Read the SQL from FILE (`-` for standard input); all positional arguments are then data.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<PathBuf>,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub engine: EngineArgs,

    /// Say where the time went, on standard error: opening the data (the session), and for
    /// each statement its planning (SQL to a plan, the optimizer, the physical plan: footers,
    /// pruning, pieces) and its running with the writing of its rows.
    #[arg(long)]
    pub timings: bool,
}

const QUERY_EXAMPLES: &str = "\
Examples:
  evtxsql query case42/ \"SELECT channel, event_id, count(*) FROM events GROUP BY 1, 2 ORDER BY 3 DESC\"
  evtxsql query case42/ \"SELECT time_created, computer, server_name FROM smb_client WHERE event_id = 31017\"
  evtxsql query logs/ \"SELECT user_name, client_ip, status_name, count(*) FROM logons WHERE event_id = 4625 GROUP BY 1, 2, 3\"
  evtxsql query 'C:/collect/**/*.evtx' \"SELECT * FROM share_access LIMIT 20\" --format csv --out shares.csv
  evtxsql query case42/ -f hunt.sql --format jsonl
  evtxsql query case42/ \"SELECT count(*) FROM events WHERE event_id = 4104\" --timings
  evtxsql query s3://soc-evidence/fleet \"SELECT count(*) FROM events\"
  evtxsql query case42/ \"SELECT * FROM events\" --format parquet --out all.parquet --memory-limit 2GiB
  evtxsql query /data/fleet.store \"SELECT computer, count(*) FROM smb_client GROUP BY 1\" --cluster df://sched:50050

Exit status: 0 ok, 1 the query failed while running, 2 bad SQL, unknown column, missing or too-new store.";

/// How results are written.
#[derive(Debug, Clone, clap::Args)]
pub struct OutputArgs {
    /// Output format: table (aligned, for people), csv, json (one array), jsonl (one object a
    /// line), parquet, arrow (IPC file).
    #[arg(long, value_name = "FORMAT", default_value = "table", value_parser = clap::builder::PossibleValuesParser::new(Format::NAMES))]
    pub format: String,

    /// Write to FILE instead of standard output.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub out: Option<PathBuf>,

    /// Show times in this zone (IANA name, e.g. Europe/Berlin) instead of UTC.
    #[arg(long, value_name = "ZONE")]
    pub tz: Option<String>,

    /// In tables, cut cells longer than N characters (0: never).
    #[arg(long, value_name = "N", default_value_t = 120)]
    pub max_width: usize,
}

/// How the engine uses the machine.
#[derive(Debug, Clone, clap::Args)]
pub struct EngineArgs {
    /// Memory for sorts, joins and aggregations (e.g. 2GiB, 512MiB); beyond it they spill to disk.
    #[arg(long, value_name = "SIZE")]
    pub memory_limit: Option<String>,

    /// Worker threads (default: one per core).
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,

    /// Directory for spill files (default: the system temporary directory).
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,

    /// Run on a Ballista cluster (see `evtxsql cluster --help`): df://HOST:PORT of its
    /// scheduler. The data must be a store that every executor sees at the same path, or an
    /// s3://bucket/prefix store they all reach.
    #[arg(long, value_name = "URL")]
    pub cluster: Option<String>,
}

impl EngineArgs {
    pub fn session_options(&self) -> Result<SessionOptions, QueryError> {
        Ok(SessionOptions {
            memory_limit: self
                .memory_limit
                .as_deref()
                .map(evtxsql_query::parse_size)
                .transpose()?,
            threads: self.threads,
            spill_dir: self.spill_dir.clone(),
        })
    }

    /// A tokio runtime sized like the session.
    pub fn runtime(&self) -> anyhow::Result<tokio::runtime::Runtime> {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.enable_all();
        if let Some(n) = self.threads.filter(|n| *n > 0) {
            b.worker_threads(n);
        }
        Ok(b.build()?)
    }
}

impl OutputArgs {
    pub fn format(&self) -> Result<Format, QueryError> {
        self.format.parse()
    }

    /// Output options and where to write (a file, or standard output).
    pub fn open(&self) -> Result<(OutputOptions, Box<dyn Write + Send>), QueryError> {
        let format = self.format()?;
        let tz = self
            .tz
            .as_deref()
            .map(evtxsql_query::parse_tz)
            .transpose()?;
        let (out, target, terminal): (Box<dyn Write + Send>, String, bool) = match &self.out {
            Some(path) => {
                let f = File::create(path).map_err(|source| QueryError::Io {
                    path: path.clone(),
                    source,
                })?;
                (
                    Box::new(BufWriter::new(f)),
                    path.display().to_string(),
                    false,
                )
            }
            None => {
                let terminal = std::io::stdout().is_terminal();
                if terminal && format.is_binary() {
                    return Err(QueryError::InvalidOption {
                        what: "output",
                        value: format.name().into(),
                        message:
                            "binary output is not written to a terminal; use --out FILE or redirect"
                                .into(),
                    });
                }
                (
                    Box::new(BufWriter::new(std::io::stdout())),
                    "stdout".into(),
                    terminal,
                )
            }
        };
        Ok((
            OutputOptions {
                format,
                tz,
                max_cell: self.max_width,
                terminal,
                target,
            },
            out,
        ))
    }
}

/// What the data arguments name.
pub enum Data {
    Store(PathBuf),
    Evtx(Vec<PathBuf>),
}

/// A store when a single argument is a directory with the store marker, EVTX inputs otherwise.
pub fn classify(inputs: &[PathBuf]) -> Result<Data, QueryError> {
    for p in inputs {
        // An `s3://` URL names a store; another URL is an error here, not a missing file.
        if let Err(e) = evtxsql_ingest::s3::S3Location::of_path(p) {
            return Err(QueryError::InvalidOption {
                what: "store URL",
                value: p.display().to_string(),
                message: match e {
                    evtxsql_ingest::IngestError::Remote { message, .. } => message,
                    other => other.to_string(),
                },
            });
        }
    }
    let is_store = |p: &Path| {
        evtxsql_ingest::s3::S3Location::is_url(p)
            || p.join(evtxsql_ingest::store::MARKER_FILE).is_file()
    };
    match inputs {
        [] => Err(QueryError::InvalidOption {
            what: "arguments",
            value: String::new(),
            message: "name a store directory or EVTX files".into(),
        }),
        [one] if is_store(one) => Ok(Data::Store(one.clone())),
        many => {
            if let Some(store) = many.iter().find(|p| is_store(p)) {
                return Err(QueryError::InvalidOption {
                    what: "arguments",
                    value: store.display().to_string(),
                    message: "a store is queried on its own, not together with other inputs".into(),
                });
            }
            Ok(Data::Evtx(many.to_vec()))
        }
    }
}

/// A session over the data: local, or on the cluster whose scheduler `cluster` names.
pub async fn open_session(
    data: &Data,
    opts: &SessionOptions,
    cluster: Option<&str>,
) -> Result<SessionContext, QueryError> {
    match (data, cluster) {
        (Data::Store(dir), None) => evtxsql_query::session_for_store(dir, opts).await,
        (Data::Evtx(paths), None) => evtxsql_query::session_for_evtx(paths, opts).await,
        (Data::Store(dir), Some(url)) => super::cluster::remote_session(url, dir, opts).await,
        (Data::Evtx(_), Some(_)) => Err(QueryError::InvalidOption {
            what: "arguments",
            value: "--cluster".into(),
            message: "a cluster queries a store, not EVTX files (they are read on this machine): \
                      ingest them first (evtxsql ingest FILES --store STORE) into a store the \
                      executors see"
                .into(),
        }),
    }
}

/// Print an error the way users should see it (with the SQL position) and give the exit code.
pub fn report_error(err: &QueryError, sql: &str) -> u8 {
    if err.is_broken_pipe() {
        return EXIT_OK;
    }
    eprintln!("error: {}", err.render_with_sql(sql));
    if err.is_usage() {
        EXIT_USAGE
    } else {
        EXIT_FATAL
    }
}

/// Run every statement of `sql`, writing the results of those that return rows; with
/// `timings`, say on standard error how long each took to plan and to run ([`StatementTimes`]).
pub async fn run_sql(
    ctx: &SessionContext,
    sql: &str,
    out: &mut (dyn Write + Send),
    opts: &OutputOptions,
    timings: bool,
) -> Result<(), QueryError> {
    let statements = evtxsql_query::parse_statements(sql)?;
    let with_rows = statements.iter().filter(|s| s.returns_rows()).count();
    if with_rows > 1 && matches!(opts.format, Format::Json | Format::Parquet | Format::Arrow) {
        return Err(QueryError::InvalidOption {
            what: "format",
            value: opts.format.name().into(),
            message: format!(
                "{with_rows} statements return rows, but one {} document holds one result; \
                 use jsonl or csv, or run them one at a time",
                opts.format.name()
            ),
        });
    }
    let mut first = true;
    for (n, statement) in statements.iter().enumerate() {
        let mut times = StatementTimes::default();
        let started = Instant::now();
        let df = evtxsql_query::execute(ctx, statement).await?;
        times.plan = started.elapsed();
        if !statement.returns_rows() {
            let started = Instant::now();
            df.collect().await.map_err(QueryError::Execution)?;
            times.run = started.elapsed();
            if timings {
                times.print(n + 1, None);
            }
            continue;
        }
        if !first && matches!(opts.format, Format::Table | Format::Csv) {
            writeln!(out).map_err(|source| QueryError::Io {
                path: opts.target.clone().into(),
                source,
            })?;
        }
        first = false;
        // What `DataFrame::execute_stream` does, step by step so that each is timed.
        let task = Arc::new(df.task_ctx());
        let (state, plan) = df.into_parts();
        let started = Instant::now();
        let plan = state.optimize(&plan).map_err(QueryError::Execution)?;
        times.optimize = started.elapsed();
        let started = Instant::now();
        let plan = state
            .query_planner()
            .create_physical_plan(&plan, &state)
            .await
            .map_err(QueryError::Execution)?;
        let stream = execute_stream(plan, task).map_err(QueryError::Execution)?;
        times.physical = started.elapsed();
        let started = Instant::now();
        let rows = evtxsql_query::write_stream(stream, out, opts).await?;
        times.run = started.elapsed();
        if timings {
            times.print(n + 1, Some(rows));
        }
    }
    out.flush().map_err(|source| QueryError::Io {
        path: opts.target.clone().into(),
        source,
    })
}

/// Where one statement's time went (`query --timings`).
#[derive(Default)]
struct StatementTimes {
    /// SQL to a logical plan.
    plan: Duration,
    /// The logical optimizer.
    optimize: Duration,
    /// The physical plan and its optimizer rules: reading footers, pruning, cutting pieces.
    physical: Duration,
    /// Running the plan and writing its rows.
    run: Duration,
}

impl StatementTimes {
    /// One line: a statement that returns rows has `rows`; another was planned and run alone.
    fn print(&self, statement: usize, rows: Option<u64>) {
        match rows {
            Some(rows) => eprintln!(
                "statement {statement}: SQL to plan {}, optimizer {}, physical plan {}, run and \
                 write {} ({rows} row{})",
                ms(self.plan),
                ms(self.optimize),
                ms(self.physical),
                ms(self.run),
                if rows == 1 { "" } else { "s" },
            ),
            None => eprintln!(
                "statement {statement}: SQL to plan {}, run {} (no rows)",
                ms(self.plan),
                ms(self.run)
            ),
        }
    }
}

/// A duration in milliseconds, for `--timings`.
fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

pub fn run(args: QueryArgs) -> anyhow::Result<u8> {
    let (inputs, sql) = match &args.file {
        Some(file) => {
            let mut sql = String::new();
            let read = if file.as_os_str() == "-" {
                std::io::stdin().read_to_string(&mut sql).map(|_| ())
            } else {
                std::fs::read_to_string(file).map(|s| sql = s)
            };
            if let Err(source) = read {
                let err = QueryError::Io {
                    path: file.clone(),
                    source,
                };
                return Ok(report_error(&err, ""));
            }
            (args.args.clone(), sql)
        }
        None => {
            let Some((sql, inputs)) = args.args.split_last().filter(|(_, i)| !i.is_empty()) else {
                eprintln!(
                    "error: give the data (a store or EVTX files) and then the SQL, or -f FILE\n\
                     e.g. evtxsql query case42/ \"SELECT count(*) FROM events\""
                );
                return Ok(EXIT_USAGE);
            };
            (inputs.to_vec(), sql.clone())
        }
    };
    let inputs: Vec<PathBuf> = inputs.iter().map(PathBuf::from).collect();
    let started = Instant::now();
    let runtime = args.engine.runtime()?;
    let result = runtime.block_on(async {
        let opts = args.engine.session_options()?;
        let data = classify(&inputs)?;
        let opening = Instant::now();
        let ctx = open_session(&data, &opts, args.engine.cluster.as_deref()).await?;
        if args.timings {
            eprintln!("session: {}", ms(opening.elapsed()));
        }
        let (out_opts, mut out) = args.output.open()?;
        let result = run_sql(&ctx, &sql, &mut out, &out_opts, args.timings).await;
        drop(out);
        leave_behind(ctx);
        result
    });
    // The process ends here: its worker threads go with it, instead of being woken, told to
    // stop and joined one by one (hourly rejects by server on the 10.5 M-event store: 10.5 ->
    // 9.3 ms wall, 12.1 -> 10.6 ms CPU, `perf stat -r 30` in alternating pairs).
    std::mem::forget(runtime);
    if args.timings {
        eprintln!(
            "total: {} (from the engine's start: its threads, the session, every statement)",
            ms(started.elapsed())
        );
    }
    Ok(match result {
        Ok(()) => EXIT_OK,
        Err(e) => report_error(&e, &sql),
    })
}

/// Let the process's exit free a session it is done with, instead of tearing its catalog,
/// functions and cached Parquet footers down piece by piece first (~5 % of the samples of a
/// profiled `SELECT count(*)` on a 10.5 M-event store).
/// Dropped as usual when it made a spill directory, so the directory is removed.
fn leave_behind(ctx: SessionContext) {
    if ctx.runtime_env().disk_manager.temp_dir_paths().is_empty() {
        std::mem::forget(ctx);
    }
}
