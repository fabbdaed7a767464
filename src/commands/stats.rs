//! `evtxsql stats`: the overview a responder wants first, computed by SQL on the store.

use std::io::Write;
use std::path::PathBuf;

use evtxsql_query::datafusion::prelude::SessionContext;
use evtxsql_query::{Format, OutputOptions, QueryError};

use super::EXIT_OK;
use super::query::{Data, EngineArgs, OutputArgs, classify, open_session, report_error};

/// What is in a store: events, computers, channels, time range, files that could not be read.
///
/// Four sections, each one SQL query over the store (see them with `--show-sql`):
/// `summary` (totals and time range), `channels` (events per channel and event id),
/// `computers` (events per computer), `files` (files with errors or unreadable records).
#[derive(Debug, clap::Args)]
#[command(after_help = STATS_EXAMPLES)]
pub struct StatsArgs {
    /// A store (directory or s3://bucket/prefix), or EVTX files/folders/globs read on the fly.
    #[arg(required = true, value_name = "STORE|EVTX")]
    pub inputs: Vec<PathBuf>,

    /// Only this section: summary, channels, computers or files (needed for csv).
    #[arg(long, value_name = "SECTION", value_parser = clap::builder::PossibleValuesParser::new(["summary", "channels", "computers", "files"]))]
    pub section: Option<String>,

    /// At most N rows per section (0: all).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub top: usize,

    /// Print the SQL of each section instead of running it.
    #[arg(long)]
    pub show_sql: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    #[command(flatten)]
    pub engine: EngineArgs,
}

const STATS_EXAMPLES: &str = "\
Examples:
  evtxsql stats case42/
  evtxsql stats case42/ --format json --out overview.json
  evtxsql stats case42/ --section channels --format csv --top 100
  evtxsql stats case42/ --tz Europe/Berlin
  evtxsql stats /data/fleet.store --cluster df://sched:50050";

/// (name, SQL).
const SECTIONS: &[(&str, &str)] = &[
    (
        "summary",
        "SELECT e.events, e.computers, e.channels, e.providers, e.event_ids, \
                e.first_event, e.last_event, f.files, f.files_with_errors, f.failed_records \
         FROM (SELECT count(*) AS events, count(DISTINCT computer) AS computers, \
                      count(DISTINCT channel) AS channels, count(DISTINCT provider) AS providers, \
                      count(DISTINCT event_id) AS event_ids, \
                      min(time_created) AS first_event, max(time_created) AS last_event \
               FROM events) e \
         CROSS JOIN (SELECT count(*) AS files, \
                            count(*) FILTER (WHERE status <> 'ok' OR failed_records > 0) AS files_with_errors, \
                            CAST(coalesce(sum(failed_records), 0) AS BIGINT) AS failed_records \
                     FROM files) f",
    ),
    (
        "channels",
        "SELECT channel, event_id, min(provider) AS provider, count(*) AS events, \
                count(DISTINCT computer) AS computers, \
                min(time_created) AS first_event, max(time_created) AS last_event \
         FROM events GROUP BY channel, event_id ORDER BY events DESC, channel, event_id",
    ),
    (
        "computers",
        "SELECT computer, count(*) AS events, count(DISTINCT channel) AS channels, \
                min(time_created) AS first_event, max(time_created) AS last_event \
         FROM events GROUP BY computer ORDER BY events DESC, computer",
    ),
    (
        "files",
        "SELECT path, status, records, failed_records, error, size \
         FROM files WHERE status <> 'ok' OR failed_records > 0 ORDER BY path",
    ),
];

fn section_sql(sql: &str, top: usize) -> String {
    if top == 0 {
        sql.to_string()
    } else {
        format!("{sql} LIMIT {top}")
    }
}

pub fn run(args: StatsArgs) -> anyhow::Result<u8> {
    let sections: Vec<(&str, String)> = SECTIONS
        .iter()
        .filter(|(name, _)| args.section.as_deref().is_none_or(|s| s == *name))
        .map(|(name, sql)| (*name, section_sql(sql, args.top)))
        .collect();
    if args.show_sql {
        for (name, sql) in &sections {
            println!("-- {name}\n{sql};\n");
        }
        return Ok(EXIT_OK);
    }
    let runtime = args.engine.runtime()?;
    let result = runtime.block_on(async {
        let opts = args.engine.session_options()?;
        let data = classify(&args.inputs)?;
        let format = args.output.format()?;
        if sections.len() > 1 && matches!(format, Format::Csv | Format::Parquet | Format::Arrow) {
            return Err(QueryError::InvalidOption {
                what: "format",
                value: format.name().into(),
                message:
                    "one file holds one section: add --section summary|channels|computers|files"
                        .into(),
            });
        }
        let ctx = open_session(&data, &opts, args.engine.cluster.as_deref()).await?;
        let (out_opts, mut out) = args.output.open()?;
        write_sections(
            &ctx,
            &sections,
            matches!(data, Data::Store(_)),
            &mut out,
            &out_opts,
        )
        .await
    });
    Ok(match result {
        Ok(()) => EXIT_OK,
        Err(e) => report_error(&e, ""),
    })
}

async fn write_sections(
    ctx: &SessionContext,
    sections: &[(&str, String)],
    is_store: bool,
    out: &mut Box<dyn Write + Send>,
    opts: &OutputOptions,
) -> Result<(), QueryError> {
    let io = |source| QueryError::Io {
        path: opts.target.clone().into(),
        source,
    };
    let single = sections.len() == 1;
    let mut json = serde_json::Map::new();
    for (i, (name, sql)) in sections.iter().enumerate() {
        let df = evtxsql_query::sql(ctx, sql).await?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        let batches = df.collect().await.map_err(QueryError::Execution)?;
        match opts.format {
            Format::Json if !single => {
                let mut buf: Vec<u8> = Vec::new();
                evtxsql_query::write_batches(schema, &batches, &mut buf, opts)?;
                let value: serde_json::Value =
                    serde_json::from_slice(&buf).map_err(|e| QueryError::Output {
                        format: "json",
                        target: opts.target.clone(),
                        message: e.to_string(),
                    })?;
                let value = match (*name, value) {
                    ("summary", serde_json::Value::Array(mut rows)) if rows.len() == 1 => {
                        rows.remove(0)
                    }
                    (_, v) => v,
                };
                json.insert((*name).to_string(), value);
            }
            Format::Jsonl if !single => {
                let mut buf: Vec<u8> = Vec::new();
                evtxsql_query::write_batches(schema, &batches, &mut buf, opts)?;
                for line in String::from_utf8_lossy(&buf).lines() {
                    let mut row: serde_json::Map<String, serde_json::Value> =
                        serde_json::from_str(line).unwrap_or_default();
                    row.insert("section".into(), serde_json::Value::from(*name));
                    writeln!(out, "{}", serde_json::Value::Object(row)).map_err(io)?;
                }
            }
            Format::Table if !single => {
                if i > 0 {
                    writeln!(out).map_err(io)?;
                }
                writeln!(out, "{}", heading(name, is_store)).map_err(io)?;
                evtxsql_query::write_batches(schema, &batches, out, opts)?;
            }
            _ => {
                evtxsql_query::write_batches(schema, &batches, out, opts)?;
            }
        }
    }
    if !json.is_empty() {
        writeln!(out, "{}", serde_json::Value::Object(json)).map_err(io)?;
    }
    out.flush().map_err(io)
}

fn heading(name: &str, is_store: bool) -> &'static str {
    match name {
        "summary" if is_store => "Store",
        "summary" => "EVTX files",
        "channels" => "Events per channel and event id",
        "computers" => "Events per computer",
        _ => "Files with errors",
    }
}
