//! How the inputs of one run are told apart: by sha256 into a kept store (see `one_read.rs`),
//! by a quick key and BLAKE3 where needed into a store that lives for one run.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use evtxsql_ingest::store::Store;
use evtxsql_ingest::{FileKey, IngestOptions, NoProgress, ingest, manifest};

/// A one-run store (BLAKE3 keys) hashes a file whole only when its size and first bytes match
/// an earlier input's, yet tells inputs apart as exactly as whole hashes do: a copy is read
/// once, and a file that differs from another only in its last byte is read too. The same in
/// memory and from disk (over the memory bound).
#[test]
fn one_run_keys_tell_copies_from_look_alikes() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data/clean-fleet/WKS-001");
    let original = std::fs::read(data.join("Security.evtx")).unwrap();
    // Longer than the quick key's 68 KiB: the last byte is outside it.
    assert!(original.len() > 69_632, "{} bytes", original.len());
    let tmp = tempfile::tempdir().unwrap();
    let inputs = tmp.path().join("inputs");
    std::fs::create_dir(&inputs).unwrap();
    let mut look_alike = original.clone();
    *look_alike.last_mut().unwrap() ^= 0x5a;
    std::fs::write(inputs.join("a.evtx"), &original).unwrap();
    std::fs::write(inputs.join("b-copy.evtx"), &original).unwrap();
    std::fs::write(inputs.join("c-look-alike.evtx"), &look_alike).unwrap();
    std::fs::write(inputs.join("d-copy.evtx"), &look_alike).unwrap();
    let single = ingest(
        &[data.join("Security.evtx")],
        &tmp.path().join("single"),
        &IngestOptions::default(),
        &NoProgress,
    )
    .unwrap();
    for (name, bound) in [("memory", 64 << 20), ("disk", 4096)] {
        let opts = IngestOptions {
            key: FileKey::Blake3,
            max_buffered_file: bound,
            ..IngestOptions::default()
        };
        let s = ingest(
            std::slice::from_ref(&inputs),
            &tmp.path().join(name),
            &opts,
            &NoProgress,
        )
        .unwrap();
        assert_eq!(
            (s.files_ingested, s.files_duplicate),
            (2, 2),
            "{name}: {s:?}"
        );
        assert_eq!(s.records, 2 * single.records, "{name}");
    }
}

/// A kept store records each file's sha256, whether it was taken as the file was read (few
/// threads) or on the pool (many): the same keys, each the sha256 of the whole file.
#[test]
fn sha256_is_of_the_whole_file_however_it_is_taken() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data/clean-fleet");
    let tmp = tempfile::tempdir().unwrap();
    let mut stores = Vec::new();
    for threads in [1, 8] {
        let store = tmp.path().join(format!("t{threads}"));
        let opts = IngestOptions {
            threads,
            ..IngestOptions::default()
        };
        let s = ingest(std::slice::from_ref(&data), &store, &opts, &NoProgress).unwrap();
        assert!(s.files_ingested >= 10, "{s:?}");
        let known = manifest::known(&Store::open(&store).unwrap()).unwrap();
        let mut keys: Vec<String> = known.by_sha256.into_keys().collect();
        keys.sort();
        stores.push(keys);
    }
    assert_eq!(stores[0], stores[1]);
    let mut whole: Vec<String> = evtxsql_ingest::discover(std::slice::from_ref(&data))
        .files()
        .iter()
        .map(|p| manifest::sha256_file(p).unwrap())
        .collect();
    whole.sort();
    whole.dedup();
    assert_eq!(stores[0], whole);
}
