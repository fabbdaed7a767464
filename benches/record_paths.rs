//! Record paths benchmark: reads a folder of EVTX files into Arrow batches (no store, no
//! hash) with the evtx crate's JSON path and with our BinXML decoder, alternating, and prints
//! one JSON line per run: records, how many the decoder took, wall and CPU seconds, records/s
//! and CPU µs per record.
//!
//! cargo bench -p evtxsql-ingest --bench record_paths -- <INPUT_DIR> [RUNS] [THREADS] [evtx_json|decoder]

use std::path::PathBuf;
use std::time::Instant;

use evtxsql_ingest::reader::{self, Input, Item, ReadOptions, RecordPath};

/// User + system CPU seconds of this process (from /proc, 10 ms ticks).
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields 14 and 15 of the line; 12 and 13 after the command name.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(dir) = args.first().map(PathBuf::from) else {
        eprintln!("usage: record_paths <INPUT_DIR> [RUNS] [THREADS]");
        std::process::exit(2);
    };
    let runs: usize = args.get(1).and_then(|v| v.parse().ok()).unwrap_or(3);
    let threads: usize = args.get(2).and_then(|v| v.parse().ok()).unwrap_or(1);
    let only = args.get(3).cloned();
    let files = evtxsql_ingest::discover(std::slice::from_ref(&dir)).files();
    let inputs = Input::numbered(&files);
    let bytes: u64 = inputs.iter().map(|i| i.size).sum();
    let opts = ReadOptions {
        threads,
        ..ReadOptions::default()
    };
    for run in 0..runs {
        for (name, path) in [
            ("evtx_json", RecordPath::EvtxJson),
            ("decoder", RecordPath::Decoder),
        ] {
            if only.as_deref().is_some_and(|o| o != name) {
                continue;
            }
            let (mut records, mut decoded, mut failed) = (0u64, 0u64, 0u64);
            let (t0, c0) = (Instant::now(), cpu_secs());
            let res = reader::read_with(&inputs, &opts, path, &mut |item| {
                if let Item::FileDone { report, .. } = item {
                    records += report.records;
                    decoded += report.decoded_records;
                    failed += report.failed_records;
                }
                true
            });
            let (secs, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - c0);
            if let Err(e) = res {
                eprintln!("error: {e}");
                std::process::exit(1);
            }
            println!(
                "{{\"run\":{run},\"path\":\"{name}\",\"files\":{},\"bytes\":{bytes},\"threads\":{threads},\"records\":{records},\"decoded\":{decoded},\"failed\":{failed},\"seconds\":{secs:.3},\"cpu_seconds\":{cpu:.2},\"records_per_sec\":{:.0},\"cpu_us_per_record\":{:.2}}}",
                inputs.len(),
                records as f64 / secs,
                cpu * 1e6 / records.max(1) as f64
            );
        }
    }
}
