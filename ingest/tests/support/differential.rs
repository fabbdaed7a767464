//! The differential test of our BinXML decoder: on every file of the shared real-EVTX corpus
//! and of the committed sample set, the decoder's path and the evtx crate's JSON path give the
//! same rows in the same order, column by column (`data` compared as parsed JSON), and the
//! same counts of records and failures.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use evtxsql_ingest::reader::{self, FileReport, Input, Item, ReadOptions, RecordPath};

/// Every `.evtx` (by content: the `ElfFile` signature) under `dir`.
fn evtx_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            evtx_files(&p, out);
        } else if std::fs::read(&p).is_ok_and(|b| b.starts_with(b"ElfFile\0")) {
            out.push(p);
        }
    }
}

/// One row: every column but `data` as text, and `data` parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    cols: Vec<String>,
    data: serde_json::Value,
    /// `data` as written.
    raw: String,
}

fn rows_of(batch: &RecordBatch, out: &mut Vec<Row>) {
    let opts = FormatOptions::default().with_null("∅");
    let schema = batch.schema();
    let data_idx = schema.index_of("data").unwrap();
    let formatters: Vec<_> = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &opts).unwrap())
        .collect();
    let data = batch.column(data_idx).as_string::<i32>();
    let data_col = data;
    for i in 0..batch.num_rows() {
        let cols = formatters
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != data_idx)
            .map(|(j, f)| format!("{}={}", schema.field(j).name(), f.value(i)))
            .collect();
        let data = if data.is_null(i) {
            serde_json::Value::Null
        } else {
            serde_json::from_str(data.value(i)).unwrap_or_else(|e| {
                panic!("data is not JSON ({e}): {}", data.value(i));
            })
        };
        let raw = if data_col.is_null(i) {
            String::new()
        } else {
            data_col.value(i).to_owned()
        };
        out.push(Row { cols, data, raw });
    }
}

pub fn read_all(files: &[PathBuf], path: RecordPath) -> Vec<(Vec<Row>, FileReport)> {
    let inputs = Input::numbered(files);
    let mut out: Vec<(Vec<Row>, FileReport)> = files
        .iter()
        .map(|_| (Vec::new(), FileReport::default()))
        .collect();
    reader::read_with(&inputs, &ReadOptions::default(), path, &mut |item| {
        match item {
            Item::Batch { file, batch, .. } => rows_of(&batch, &mut out[file].0),
            Item::FileDone { file, report, .. } => out[file].1 = *report,
            Item::Admitted { .. } | Item::Skipped { .. } => unreachable!("no admission"),
        }
        true
    })
    .unwrap();
    out
}

#[test]
fn decoder_and_evtx_json_give_the_same_rows() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = std::env::var_os("EVTXSQL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../../shared/evtx"));
    let mut files = Vec::new();
    evtx_files(&corpus, &mut files);
    evtx_files(&root.join("../samples/data"), &mut files);
    assert!(!files.is_empty());
    let ours = read_all(&files, RecordPath::Decoder);
    let theirs = read_all(&files, RecordPath::EvtxJson);
    let mut failures = Vec::new();
    let (mut decoded, mut fallback) = (0, 0);
    let mut bytes_differ = 0;
    let mut reasons: BTreeMap<String, u64> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        let name = f.strip_prefix(&corpus).unwrap_or(f).display().to_string();
        let ((a, ra), (b, rb)) = (&ours[i], &theirs[i]);
        decoded += ra.decoded_records;
        fallback += ra.fallback_records;
        for (k, v) in &ra.fallback_reasons {
            *reasons.entry(k.clone()).or_default() += v;
        }
        println!(
            "{name}: {} records: decoder {}, evtx fallback {}, failed {} {:?}",
            ra.records,
            ra.decoded_records,
            ra.fallback_records,
            ra.failed_records,
            ra.fallback_reasons
        );
        if (ra.records, ra.failed_records) != (rb.records, rb.failed_records) {
            failures.push(format!(
                "{name}: records/failed {}/{} (decoder) vs {}/{} (evtx): {:?}",
                ra.records, ra.failed_records, rb.records, rb.failed_records, ra.messages
            ));
        }
        if a.len() != b.len() {
            failures.push(format!("{name}: {} rows vs {}", a.len(), b.len()));
            continue;
        }
        let mut shown = 0;
        for (x, y) in a.iter().zip(b) {
            if x.raw != y.raw {
                bytes_differ += 1;
                if bytes_differ <= 3 {
                    println!("data bytes differ: {name}:\n  {}\n  {}", x.raw, y.raw);
                }
            }
            if (&x.cols, &x.data) == (&y.cols, &y.data) {
                continue;
            }
            if shown < 3 {
                let cols: Vec<String> = x
                    .cols
                    .iter()
                    .zip(&y.cols)
                    .filter(|(p, q)| p != q)
                    .map(|(p, q)| format!("{p} vs {q}"))
                    .collect();
                let data = if x.data == y.data {
                    String::new()
                } else {
                    format!("\n    data {}\n    vs   {}", x.data, y.data)
                };
                failures.push(format!("{name}: {} {cols:?}{data}", x.cols[1]));
            }
            shown += 1;
        }
    }
    println!(
        "decoder {decoded} records, evtx fallback {fallback}; data equal as JSON in all, \
         byte for byte in all but {bytes_differ}; why: {reasons:#?}"
    );
    assert!(
        failures.is_empty(),
        "{} differences:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // The decoder takes the records the evtx crate reads but for damaged ones (~0.4 % of
    // the corpus): a shape it stopped taking (each falls back whole, and still compares equal)
    // shows here. The CAPI2 logs' UserData written as elements is 2 % of the corpus.
    assert!(
        fallback * 100 <= decoded,
        "the decoder left {fallback} of {} records to the evtx crate: {reasons:#?}",
        decoded + fallback
    );
}
