//! Ingest throughput benchmark: `evtxsql_ingest::ingest` (the code path of `evtxsql ingest`)
//! over a folder of EVTX files into a fresh store; prints one JSON line with records, seconds,
//! records/s, MiB/s and peak RSS (VmHWM).
//!
//! cargo bench -p evtxsql-ingest --bench ingest -- <INPUT_DIR> <STORE_DIR> [THREADS] [--replace]
//! (`--replace`: an existing STORE_DIR is removed first, so that runs can repeat.)
//! (benches/ingest_vs_evtx_dump.sh runs it beside evtx_dump on the same files.)

use std::path::PathBuf;

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

fn main() {
    let all: Vec<String> = std::env::args().skip(1).collect();
    let replace = all.iter().any(|a| a == "--replace");
    let args: Vec<&String> = all.iter().filter(|a| !a.starts_with("--")).collect();
    if args.len() < 2 {
        eprintln!("usage: ingest <INPUT_DIR> <STORE_DIR> [THREADS] [--replace]");
        std::process::exit(2);
    }
    let input = PathBuf::from(args[0]);
    let store = PathBuf::from(args[1]);
    if replace
        && store.join("evtxsql-store.json").exists()
        && let Err(e) = std::fs::remove_dir_all(&store)
    {
        eprintln!("removing {}: {e}", store.display());
        std::process::exit(2);
    }
    let threads = args.get(2).and_then(|t| t.parse().ok()).unwrap_or(0);
    if store.exists() {
        eprintln!("{} exists; give a fresh store path", store.display());
        std::process::exit(2);
    }
    let opts = evtxsql_ingest::IngestOptions {
        threads,
        ..Default::default()
    };
    match evtxsql_ingest::ingest(&[input], &store, &opts, &evtxsql_ingest::NoProgress) {
        Ok(s) => println!(
            "{{\"records\":{},\"failed_records\":{},\"files\":{},\"bytes\":{},\"seconds\":{:.3},\"records_per_sec\":{:.0},\"mib_per_sec\":{:.1},\"store_bytes\":{},\"peak_rss_kib\":{}}}",
            s.records,
            s.failed_records,
            s.files_ingested,
            s.bytes_read,
            s.elapsed_secs,
            s.records_per_sec,
            s.mib_per_sec,
            s.store_bytes,
            peak_rss_kib().unwrap_or(0)
        ),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
