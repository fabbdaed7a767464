//! Each input file is read once: hashed and parsed from the same bytes. Its own test binary
//! (one process, one test) so that `/proc/self/io` counts only this ingest's reads.

use std::path::{Path, PathBuf};

/// Bytes this process has read through read(2) and friends so far (Linux).
fn rchar() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("rchar: "))
        .and_then(|v| v.trim().parse().ok())
}

#[test]
fn ingest_reads_each_input_once_and_skips_what_the_store_holds() {
    let Some(before) = rchar() else {
        eprintln!("SKIPPED: no /proc/self/io on this system");
        return;
    };
    let data: PathBuf = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data");
    let tmp = tempfile::tempdir().expect("tmp");
    let store = tmp.path().join("store");
    let opts = evtxsql_ingest::IngestOptions {
        threads: 2,
        ..Default::default()
    };
    let first = evtxsql_ingest::ingest(
        std::slice::from_ref(&data),
        &store,
        &opts,
        &evtxsql_ingest::NoProgress,
    )
    .expect("ingest");
    let read = rchar().expect("rchar") - before;
    let input = first.bytes_read;
    assert!(first.files_ingested > 200 && input > 10 << 20, "{first:?}");
    // One read of every input plus a little (directory walk, the store's manifest): hashing in
    // a pass of its own would make it twice the input.
    assert!(
        read < input + input / 4,
        "read {read} bytes for {input} bytes of input"
    );
    // Again: everything is known, each file is read once more (to hash it), nothing parsed.
    let before = rchar().expect("rchar");
    let again = evtxsql_ingest::ingest(
        std::slice::from_ref(&data),
        &store,
        &opts,
        &evtxsql_ingest::NoProgress,
    )
    .expect("re-ingest");
    assert_eq!(again.files_ingested, 0, "{again:?}");
    assert_eq!(again.records, 0);
    assert_eq!(again.files_skipped, first.files_found);
    let read = rchar().expect("rchar") - before;
    assert!(read < input + input / 4, "re-ingest read {read} bytes");

    // The same content under two names in one run: the first in input order is read.
    let one = std::fs::read_dir(data.join("nas-guest-only/WKS-001"))
        .expect("scenario")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "evtx"))
        .expect("an evtx file");
    let twins = tmp.path().join("twins");
    std::fs::create_dir(&twins).expect("dir");
    std::fs::copy(&one, twins.join("a.evtx")).expect("copy");
    std::fs::copy(&one, twins.join("b.evtx")).expect("copy");
    let fresh = tmp.path().join("fresh");
    let twin = evtxsql_ingest::ingest(&[twins], &fresh, &opts, &evtxsql_ingest::NoProgress)
        .expect("twins");
    assert_eq!(
        (twin.files_ingested, twin.files_duplicate),
        (1, 1),
        "{twin:?}"
    );
    assert!(twin.records > 0);
}
