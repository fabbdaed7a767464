//! Helpers shared by the CLI tests.

use std::path::{Path, PathBuf};

pub use evtxsql_testkit::corpus;

/// The scenarios each of four concurrent writers brings in the concurrent-ingest tests: every
/// scenario once, and clean-fleet twice (the same files from two writers).
pub const WRITER_GROUPS: [&[&str]; 4] = [
    &["admin-enables-guest", "clean-fleet"],
    &["fallback-to-guest", "nas-guest-only"],
    &["signing-breaks-guest", "spoofed-server"],
    &["windows-guest-server", "clean-fleet"],
];

/// The committed generated sample set.
pub fn samples_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/data")
}

pub fn evtxsql() -> assert_cmd::Command {
    assert_cmd::Command::cargo_bin("evtxsql").unwrap()
}

/// Run `cmd`, require success (showing the command and its stderr otherwise), return stdout.
pub fn stdout(cmd: &mut assert_cmd::Command) -> String {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A temp dir with `store/` ingested from `input` (kept alive by the returned dir).
pub fn ingested(input: &Path) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    evtxsql()
        .arg("ingest")
        .arg(input)
        .arg("--store")
        .arg(&store)
        .arg("--quiet")
        .assert()
        .success();
    (tmp, store)
}

/// Rows in the committed events parts of a store, from Parquet metadata.
pub fn store_rows(store: &Path) -> u64 {
    use parquet::file::reader::{FileReader, SerializedFileReader};
    let store = evtxsql_ingest::Store::open(store).unwrap();
    store
        .committed_event_parts()
        .unwrap()
        .into_iter()
        .map(|p| {
            let r = SerializedFileReader::new(std::fs::File::open(p).unwrap()).unwrap();
            r.metadata().file_metadata().num_rows() as u64
        })
        .sum()
}

/// Copy the corpus `times` times, changing a padding byte of each file header so every copy has
/// its own sha256 (the parser ignores header padding).
pub fn corpus_copies(corpus: &Path, out: &Path, times: u32) -> u64 {
    let mut bytes = 0;
    for i in 0..times {
        let dir = out.join(format!("copy{i}"));
        for entry in walk(corpus) {
            let data = std::fs::read(&entry).unwrap();
            if data.len() < 4096 || &data[..8] != b"ElfFile\0" {
                continue;
            }
            let mut data = data;
            data[4000..4004].copy_from_slice(&i.to_le_bytes());
            let rel = entry.strip_prefix(corpus).unwrap();
            let dest = dir.join(rel);
            std::fs::create_dir_all(dest.parent().unwrap()).unwrap();
            std::fs::write(&dest, &data).unwrap();
            bytes += data.len() as u64;
        }
    }
    bytes
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out.sort();
    out
}
