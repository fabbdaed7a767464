//! Hostile bytes: real files with bytes flipped, spans zeroed and tails cut off. Neither our
//! BinXML decoder nor the reader around it may panic, and every file is accounted for.

use std::path::{Path, PathBuf};

use evtxsql_ingest::binxml::Decoder;
use evtxsql_ingest::reader::{self, Input, Item, ReadOptions, RecordPath};

/// A small deterministic generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Some files of every kind in the corpus: Security, System (arrays), CAPI2 (nested
/// fragments), damaged ones.
fn seeds() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let corpus = std::env::var_os("EVTXSQL_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("../../shared/evtx"));
    let mut out: Vec<PathBuf> = [
        "sans-blue-team__DeepBlueCLI/password-spray.evtx",
        "omerbenamram__evtx/system.evtx",
        "omerbenamram__evtx/E_Windows_system32_winevt_logs_Microsoft-Windows-CAPI2%4Operational.evtx",
        "omerbenamram__evtx/sample_with_a_bad_chunk_magic.evtx",
        "tugix456__randaodcxjj/Microsoft-Windows-SmbClient%4Security.evtx",
        "Yamato-Security__hayabusa-evtx/kernel_processor_power_complexdata.evtx",
    ]
    .iter()
    .map(|p| corpus.join(p))
    .filter(|p| p.exists())
    .collect();
    out.push(root.join("../samples/data/windows-guest-server/FS01/Security.evtx"));
    out.retain(|p| p.exists());
    out
}

fn mutate(rng: &mut Rng, data: &mut Vec<u8>) {
    match rng.below(4) {
        0 | 1 => {
            // A few bytes flipped, mostly in the chunks.
            for _ in 0..1 + rng.below(16) {
                let at = rng.below(data.len());
                data[at] ^= 1 << rng.below(8);
            }
        }
        2 => {
            let at = rng.below(data.len());
            let len = (1 + rng.below(512)).min(data.len() - at);
            data[at..at + len].fill(if rng.below(2) == 0 { 0 } else { 0xff });
        }
        _ => {
            let keep = rng.below(data.len());
            data.truncate(keep);
        }
    }
}

#[test]
fn the_decoder_survives_mutated_chunks() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut decoder = Decoder::new();
    let mut chunks = 0;
    for seed in seeds() {
        let file = std::fs::read(&seed).unwrap();
        for chunk in file.get(4096..).unwrap_or(&[]).chunks(65_536).take(4) {
            for _ in 0..150 {
                let mut c = chunk.to_vec();
                mutate(&mut rng, &mut c);
                // Keep the magic now and then, so the chunk is walked.
                if c.len() >= 8 && rng.below(4) > 0 {
                    c[..8].copy_from_slice(b"ElfChnk\0");
                }
                let mut rows = 0;
                let _ = decoder.decode_chunk(&c, |view| {
                    assert!(serde_json::from_str::<serde_json::Value>(view.data).is_ok());
                    rows += 1;
                });
                chunks += 1;
            }
        }
    }
    assert!(chunks > 1000, "{chunks} mutated chunks");
}

#[test]
fn reading_mutated_files_never_panics_and_reports_every_file() {
    let tmp = tempfile::tempdir().unwrap();
    let mut rng = Rng(0xfeed_face_0bad_f00d);
    let mut inputs = Vec::new();
    for (i, seed) in seeds().iter().enumerate() {
        let file = std::fs::read(seed).unwrap();
        for j in 0..30 {
            let mut data = file.clone();
            mutate(&mut rng, &mut data);
            if j % 3 == 0 {
                mutate(&mut rng, &mut data);
            }
            let path = tmp.path().join(format!("m{i}-{j}.evtx"));
            std::fs::write(&path, &data).unwrap();
            inputs.push(Input {
                file_id: inputs.len() as u32,
                size: data.len() as u64,
                path,
            });
        }
    }
    let mut done = vec![false; inputs.len()];
    let mut rows = 0;
    reader::read(&inputs, &ReadOptions::default(), &mut |item| {
        match item {
            Item::Batch { batch, .. } => rows += batch.num_rows(),
            Item::FileDone { file, report, .. } => {
                done[file] = true;
                assert!(report.records >= report.decoded_records);
            }
            Item::Admitted { .. } | Item::Skipped { .. } => unreachable!("no admission"),
        }
        true
    })
    .unwrap();
    assert!(done.iter().all(|d| *d), "every file has its report");
    assert!(rows > 0);

    // On damaged bytes too, both record paths give the same rows and counts.
    let files: Vec<PathBuf> = inputs.iter().map(|i| i.path.clone()).collect();
    let ours = super::differential::read_all(&files, RecordPath::Decoder);
    let theirs = super::differential::read_all(&files, RecordPath::EvtxJson);
    let mut diffs = Vec::new();
    for (i, f) in files.iter().enumerate() {
        let ((a, ra), (b, rb)) = (&ours[i], &theirs[i]);
        if (ra.records, ra.failed_records) != (rb.records, rb.failed_records) || a != b {
            diffs.push(format!(
                "{}: records/failed {}/{} vs {}/{}, rows equal: {}",
                f.display(),
                ra.records,
                ra.failed_records,
                rb.records,
                rb.failed_records,
                a == b
            ));
        }
    }
    assert!(diffs.is_empty(), "{}", diffs.join("\n"));
}
