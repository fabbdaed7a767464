//! Writing query results: an aligned table for people, CSV / JSON / JSON lines for scripts,
//! Parquet and Arrow IPC for other tools. Everything but the table streams batch by batch.

use std::io::Write;
use std::str::FromStr;

use arrow::datatypes::SchemaRef;
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatch;
use chrono_tz::Tz;
use comfy_table::{CellAlignment, ContentArrangement, Table, presets};
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

use crate::cells::{Cell, ColumnCells, neutralize_formula};
use crate::error::QueryError;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Table,
    Csv,
    Json,
    Jsonl,
    Parquet,
    Arrow,
}

impl Format {
    pub const NAMES: &'static [&'static str] =
        &["table", "csv", "json", "jsonl", "parquet", "arrow"];

    pub fn name(self) -> &'static str {
        match self {
            Format::Table => "table",
            Format::Csv => "csv",
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Parquet => "parquet",
            Format::Arrow => "arrow",
        }
    }

    /// Binary formats are not written to a terminal.
    pub fn is_binary(self) -> bool {
        matches!(self, Format::Parquet | Format::Arrow)
    }
}

impl FromStr for Format {
    type Err = QueryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s.to_ascii_lowercase().as_str() {
            "table" => Format::Table,
            "csv" => Format::Csv,
            "json" => Format::Json,
            "jsonl" | "ndjson" => Format::Jsonl,
            "parquet" => Format::Parquet,
            "arrow" | "ipc" => Format::Arrow,
            _ => {
                return Err(QueryError::InvalidOption {
                    what: "format",
                    value: s.into(),
                    message: format!("use one of {}", Format::NAMES.join(", ")),
                });
            }
        })
    }
}

/// Parse a time zone name (`Europe/Berlin`, `UTC`).
pub fn parse_tz(name: &str) -> Result<Tz, QueryError> {
    name.parse::<Tz>().map_err(|e| QueryError::InvalidOption {
        what: "time zone",
        value: name.into(),
        message: format!("{e}; use an IANA name such as Europe/Berlin or UTC"),
    })
}

/// How to write results.
#[derive(Debug, Clone, Default)]
pub struct OutputOptions {
    pub format: Format,
    /// Zone for times; None: UTC written with `Z`.
    pub tz: Option<Tz>,
    /// Table cells longer than this many characters are cut with `…` (0: never).
    pub max_cell: usize,
    /// Wrap the table to the terminal width (when writing to a terminal).
    pub terminal: bool,
    /// Where the output goes, for messages (`stdout` or a path).
    pub target: String,
}

/// Write every batch of `stream` to `out`; returns the number of rows.
pub async fn write_stream(
    mut stream: SendableRecordBatchStream,
    out: &mut (dyn Write + Send),
    opts: &OutputOptions,
) -> Result<u64, QueryError> {
    let schema = stream.schema();
    let mut writer = Writer::new(schema, out, opts)?;
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(QueryError::Execution)?;
        writer.write(&batch)?;
    }
    writer.finish()
}

/// Write already collected batches (with the schema of the result, for empty results).
pub fn write_batches(
    schema: SchemaRef,
    batches: &[RecordBatch],
    out: &mut (dyn Write + Send),
    opts: &OutputOptions,
) -> Result<u64, QueryError> {
    let mut writer = Writer::new(schema, out, opts)?;
    for b in batches {
        writer.write(b)?;
    }
    writer.finish()
}

/// A writer in one of the formats, fed batch by batch.
pub struct Writer<'w> {
    inner: Inner<'w>,
    opts: OutputOptions,
    schema: SchemaRef,
    rows: u64,
}

enum Inner<'w> {
    Table {
        out: &'w mut (dyn Write + Send),
        rows: Vec<Vec<String>>,
        numeric: Vec<bool>,
    },
    Csv(Box<csv::Writer<&'w mut (dyn Write + Send)>>),
    Json {
        out: &'w mut (dyn Write + Send),
        lines: bool,
    },
    Parquet(Box<ArrowWriter<&'w mut (dyn Write + Send)>>),
    Arrow(Box<FileWriter<&'w mut (dyn Write + Send)>>),
}

impl<'w> Writer<'w> {
    pub fn new(
        schema: SchemaRef,
        out: &'w mut (dyn Write + Send),
        opts: &OutputOptions,
    ) -> Result<Self, QueryError> {
        let target = opts.target.clone();
        let fail = |format: Format, message: String| QueryError::Output {
            format: format.name(),
            target: target.clone(),
            message,
        };
        let inner = match opts.format {
            Format::Table => Inner::Table {
                out,
                rows: Vec::new(),
                numeric: vec![false; schema.fields().len()],
            },
            Format::Csv => {
                let mut w = csv::WriterBuilder::new().from_writer(out);
                w.write_record(schema.fields().iter().map(|f| f.name().as_str()))
                    .map_err(|e| fail(Format::Csv, e.to_string()))?;
                Inner::Csv(Box::new(w))
            }
            Format::Json => {
                out.write_all(b"[")
                    .map_err(|e| fail(Format::Json, e.to_string()))?;
                Inner::Json { out, lines: false }
            }
            Format::Jsonl => Inner::Json { out, lines: true },
            Format::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::ZSTD(ZstdLevel::default()))
                    .build();
                let w = ArrowWriter::try_new(out, schema.clone(), Some(props))
                    .map_err(|e| fail(Format::Parquet, e.to_string()))?;
                Inner::Parquet(Box::new(w))
            }
            Format::Arrow => {
                let w = FileWriter::try_new(out, &schema)
                    .map_err(|e| fail(Format::Arrow, e.to_string()))?;
                Inner::Arrow(Box::new(w))
            }
        };
        Ok(Writer {
            inner,
            opts: opts.clone(),
            schema,
            rows: 0,
        })
    }

    fn fail(&self, message: impl ToString) -> QueryError {
        QueryError::Output {
            format: self.opts.format.name(),
            target: self.opts.target.clone(),
            message: message.to_string(),
        }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), QueryError> {
        let first_row = self.rows == 0;
        self.rows += batch.num_rows() as u64;
        if matches!(self.inner, Inner::Parquet(_) | Inner::Arrow(_)) {
            let res = match &mut self.inner {
                Inner::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
                Inner::Arrow(w) => w.write(batch).map_err(|e| e.to_string()),
                _ => Ok(()),
            };
            return res.map_err(|m| self.fail(m));
        }
        let columns = batch
            .columns()
            .iter()
            .map(|c| ColumnCells::new(c.as_ref(), self.opts.tz))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.fail(e))?;
        let names: Vec<String> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect();
        let max_cell = self.opts.max_cell;
        let mut err: Option<QueryError> = None;
        for row in 0..batch.num_rows() {
            let cells: Vec<Cell<'_>> = columns.iter().map(|c| c.cell(row)).collect();
            let res: Result<(), String> = match &mut self.inner {
                Inner::Table { rows, numeric, .. } => {
                    for (i, c) in cells.iter().enumerate() {
                        if c.is_numeric() {
                            numeric[i] = true;
                        }
                    }
                    rows.push(
                        cells
                            .iter()
                            .map(|c| clip(c.to_text("NULL"), max_cell))
                            .collect(),
                    );
                    Ok(())
                }
                Inner::Csv(w) => {
                    let fields: Vec<String> = cells
                        .iter()
                        .map(|c| match c {
                            Cell::Text(s) => neutralize_formula(s).into_owned(),
                            other => other.to_text(""),
                        })
                        .collect();
                    w.write_record(&fields).map_err(|e| e.to_string())
                }
                Inner::Json { out, lines } => {
                    let obj: serde_json::Map<String, serde_json::Value> = names
                        .iter()
                        .zip(&cells)
                        .map(|(n, c)| (n.clone(), c.to_json()))
                        .collect();
                    let text = serde_json::Value::Object(obj).to_string();
                    let sep = match (*lines, first_row && row == 0) {
                        (true, _) => "",
                        (false, true) => "\n",
                        (false, false) => ",\n",
                    };
                    out.write_all(sep.as_bytes())
                        .and_then(|()| out.write_all(text.as_bytes()))
                        .and_then(|()| if *lines { out.write_all(b"\n") } else { Ok(()) })
                        .map_err(|e| e.to_string())
                }
                Inner::Parquet(_) | Inner::Arrow(_) => Ok(()),
            };
            if let Err(m) = res {
                err = Some(self.fail(m));
                break;
            }
        }
        match err {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Finish the output (table rendering, JSON closing bracket, file footers); returns rows.
    pub fn finish(self) -> Result<u64, QueryError> {
        let rows = self.rows;
        let fail = |m: String| QueryError::Output {
            format: self.opts.format.name(),
            target: self.opts.target.clone(),
            message: m,
        };
        match self.inner {
            Inner::Table {
                out,
                rows: cells,
                numeric,
            } => {
                let mut table = Table::new();
                table.load_preset(presets::UTF8_FULL_CONDENSED);
                table.set_content_arrangement(if self.opts.terminal {
                    ContentArrangement::Dynamic
                } else {
                    ContentArrangement::Disabled
                });
                table.set_header(self.schema.fields().iter().map(|f| f.name().clone()));
                for r in cells {
                    table.add_row(r);
                }
                for (i, is_num) in numeric.iter().enumerate() {
                    if *is_num && let Some(col) = table.column_mut(i) {
                        col.set_cell_alignment(CellAlignment::Right);
                    }
                }
                let noun = if rows == 1 { "row" } else { "rows" };
                writeln!(out, "{table}\n({rows} {noun})").map_err(|e| QueryError::Io {
                    path: self.opts.target.clone().into(),
                    source: e,
                })?;
            }
            Inner::Csv(mut w) => w.flush().map_err(|e| fail(e.to_string()))?,
            Inner::Json { out, lines } => {
                if !lines {
                    let close: &[u8] = if rows == 0 { b"]\n" } else { b"\n]\n" };
                    out.write_all(close).map_err(|e| fail(e.to_string()))?;
                }
                out.flush().map_err(|e| fail(e.to_string()))?;
            }
            Inner::Parquet(w) => {
                w.close().map_err(|e| fail(e.to_string()))?;
            }
            Inner::Arrow(mut w) => {
                w.finish().map_err(|e| fail(e.to_string()))?;
            }
        }
        Ok(rows)
    }
}

fn clip(text: String, max: usize) -> String {
    if max == 0 || text.chars().count() <= max {
        return text;
    }
    let mut t: String = text.chars().take(max.saturating_sub(1)).collect();
    t.push('…');
    t
}
