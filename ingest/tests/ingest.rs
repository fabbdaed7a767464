//! Integration tests of the ingest crate: conformance with the shared real-EVTX corpus, store
//! idempotence, incremental appends and crash safety.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use evtxsql_ingest::reader::{self, Input, Item, ReadOptions};
use evtxsql_ingest::{IngestOptions, NoProgress, Store, ingest};
use evtxsql_testkit::corpus;

fn expected(dir: &Path) -> BTreeMap<String, serde_json::Value> {
    let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn corpus_conformance_with_evtx_dump() {
    let Some(dir) = corpus() else { return };
    let expected = expected(&dir);
    let inputs: Vec<Input> = expected
        .keys()
        .enumerate()
        .map(|(i, rel)| {
            let path = dir.join(rel);
            let size = std::fs::metadata(&path).unwrap().len();
            Input {
                path,
                file_id: i as u32,
                size,
            }
        })
        .collect();
    let mut reports = BTreeMap::new();
    let mut rows_per_file = vec![0usize; inputs.len()];
    reader::read(&inputs, &ReadOptions::default(), &mut |item| {
        match item {
            Item::Batch { file, batch, .. } => rows_per_file[file] += batch.num_rows(),
            Item::FileDone { file, report, .. } => {
                reports.insert(file, report);
            }
            Item::Admitted { .. } | Item::Skipped { .. } => unreachable!("no admission"),
        }
        true
    })
    .unwrap();
    assert_eq!(reports.len(), expected.len(), "every file reported");
    let mut failures = Vec::new();
    for (i, (rel, exp)) in expected.iter().enumerate() {
        let r = &reports[&i];
        let want = exp["records_evtx_dump"].as_u64().unwrap();
        if r.records != want || rows_per_file[i] as u64 != want {
            failures.push(format!(
                "{rel}: records {} (rows {}), evtx_dump {want}",
                r.records, rows_per_file[i]
            ));
        }
        let counts = exp
            .get("event_id_counts_evtx_dump")
            .filter(|v| v.is_object())
            .unwrap_or(&exp["event_id_counts"]);
        let mut want_ids: BTreeMap<String, u64> = counts
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
            .collect();
        want_ids.retain(|_, v| *v > 0);
        let got_ids: BTreeMap<String, u64> = r
            .event_ids
            .iter()
            .map(|(k, v)| {
                (
                    k.map(|k| k.to_string()).unwrap_or_else(|| "null".into()),
                    *v,
                )
            })
            .collect();
        if got_ids != want_ids {
            failures.push(format!(
                "{rel}: event ids {got_ids:?}, evtx_dump {want_ids:?}"
            ));
        }
        let want_errors = exp["evtx_dump_record_errors"].as_u64().unwrap_or(0);
        if exp["size"].as_u64() == Some(0) {
            assert!(r.fatal.is_some(), "{rel}: a 0-byte file cannot be opened");
        } else if r.failed_records != want_errors {
            failures.push(format!(
                "{rel}: failed {} ({:?}), evtx_dump errors {want_errors}",
                r.failed_records, r.messages
            ));
        }
        for m in &r.messages {
            let text = m.to_string();
            assert_eq!(m.path, r.path, "the problem names the file: {m}");
            assert!(
                text.starts_with(&*r.path.to_string_lossy()),
                "the message names the file: {m}"
            );
            assert!(
                m.chunk.is_some() || text.contains("chunk"),
                "the message names the chunk: {m}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The fuzz target's entry point reads a file held in memory as the reader reads it from disk:
/// the same counts, the same records left to the evtx crate.
#[test]
fn read_buffer_reads_as_read_does() {
    let Some(dir) = corpus() else { return };
    let paths: Vec<_> = expected(&dir).keys().map(|rel| dir.join(rel)).collect();
    let inputs = Input::numbered(&paths);
    let mut from_disk = BTreeMap::new();
    let path_kind = reader::RecordPath::Decoder;
    reader::read_with(&inputs, &ReadOptions::default(), path_kind, &mut |item| {
        if let Item::FileDone { file, report, .. } = item {
            from_disk.insert(file, report);
        }
        true
    })
    .unwrap();
    let counts = |r: &reader::FileReport| {
        (
            r.records,
            r.failed_records,
            r.decoded_records,
            r.fallback_records,
            r.fallback_reasons.clone(),
            r.event_ids.clone(),
            r.fatal.is_some(),
        )
    };
    for (i, path) in paths.iter().enumerate() {
        let bytes = std::fs::read(path).unwrap();
        let r = reader::read_buffer(bytes, path_kind);
        assert_eq!(counts(&r), counts(&from_disk[&i]), "{}", path.display());
    }
}

fn count_rows(store: &Path) -> usize {
    let store = Store::open(store).unwrap();
    let mut n = 0;
    for part in store.committed_event_parts().unwrap() {
        let file = std::fs::File::open(part).unwrap();
        let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
        use parquet::file::reader::FileReader;
        n += reader.metadata().file_metadata().num_rows() as usize;
    }
    n
}

#[test]
fn store_is_idempotent_and_incremental() {
    let Some(dir) = corpus() else { return };
    let expected = expected(&dir);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s.store");
    let first = dir.join("tugix456__randaodcxjj");
    let s1 = ingest(
        std::slice::from_ref(&first),
        &store,
        &IngestOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let want1: u64 = expected
        .iter()
        .filter(|(k, _)| k.starts_with("tugix456__randaodcxjj/"))
        .map(|(_, v)| v["records_evtx_dump"].as_u64().unwrap())
        .sum();
    assert_eq!(s1.records, want1);
    assert_eq!(count_rows(&store), want1 as usize);
    // Again: nothing new.
    let s2 = ingest(
        std::slice::from_ref(&first),
        &store,
        &IngestOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(s2.records, 0);
    assert_eq!(s2.files_skipped, s1.files_ingested + s1.files_failed);
    assert_eq!(count_rows(&store), want1 as usize);
    // The whole corpus: only the rest is added.
    let s3 = ingest(
        std::slice::from_ref(&dir),
        &store,
        &IngestOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let total: u64 = expected
        .values()
        .map(|v| v["records_evtx_dump"].as_u64().unwrap())
        .sum();
    assert_eq!(s1.records + s3.records, total);
    assert_eq!(count_rows(&store), total as usize);
    assert!(s3.files_skipped >= s1.files_ingested);
    // The 0-byte file is listed as failed and counted, and the run says so.
    assert!(s3.files_failed >= 1);
    assert!(s3.problems.iter().any(|p| p.contains("test1.evtx")));
}

/// A file over the memory bound is hashed on the pool in a pass of its own and parsed from disk.
/// With the bound at 1 MiB most of the corpus (damaged files included) takes that path: the
/// store holds the same rows, files and sha256s, with the same problems reported, as one made
/// the usual way; and a copy of a large file in the same run is read once.
#[test]
fn files_over_the_memory_bound_read_as_files_in_memory() {
    let Some(dir) = corpus() else { return };
    let files = evtxsql_ingest::discover(std::slice::from_ref(&dir)).files();
    let size = |p: &std::path::PathBuf| std::fs::metadata(p).unwrap().len();
    let large = files.iter().filter(|p| size(p) > 1 << 20).count();
    assert!(large >= 5, "{large} files over 1 MiB");
    let tmp = tempfile::tempdir().unwrap();
    let again = tmp.path().join("again");
    std::fs::create_dir(&again).unwrap();
    let largest = files.iter().max_by_key(|p| size(p)).unwrap();
    std::fs::copy(largest, again.join("copy.evtx")).unwrap();
    let inputs = [dir.clone(), again];

    let usual = tmp.path().join("usual");
    let s1 = ingest(&inputs, &usual, &IngestOptions::default(), &NoProgress).unwrap();
    let bounded = tmp.path().join("bounded");
    let opts = IngestOptions {
        max_buffered_file: 1 << 20,
        ..IngestOptions::default()
    };
    let s2 = ingest(&inputs, &bounded, &opts, &NoProgress).unwrap();
    let counts = |s: &evtxsql_ingest::IngestSummary| {
        (
            s.files_ingested,
            s.files_duplicate,
            s.files_damaged,
            s.files_failed,
            s.records,
            s.failed_records,
        )
    };
    assert_eq!(counts(&s1), counts(&s2));
    assert!(s2.files_duplicate >= 1);
    assert_eq!(s1.problems, s2.problems);
    assert_same_rows(&read_back(&usual).0, &read_back(&bounded).0);
    let known = |store: &Path| {
        let store = Store::open(store).unwrap();
        let mut keys: Vec<(String, u32)> = evtxsql_ingest::manifest::known(&store)
            .unwrap()
            .by_sha256
            .into_iter()
            .collect();
        keys.sort();
        keys
    };
    assert_eq!(known(&usual), known(&bounded));
}

#[test]
fn bad_inputs_are_named_and_the_rest_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let not_evtx = tmp.path().join("notes.txt");
    std::fs::write(&not_evtx, "hello").unwrap();
    let fake = tmp.path().join("fake.evtx");
    std::fs::write(&fake, b"ElfFile\0 but truncated").unwrap();
    let empty_dir = tmp.path().join("empty");
    std::fs::create_dir(&empty_dir).unwrap();
    let missing = tmp.path().join("missing.evtx");
    let store = tmp.path().join("s.store");
    let s = ingest(
        &[not_evtx.clone(), fake.clone(), empty_dir, missing.clone()],
        &store,
        &IngestOptions::default(),
        &NoProgress,
    )
    .unwrap();
    assert_eq!(s.records, 0);
    let all = s.problems.join("\n");
    assert!(
        all.contains("notes.txt") && all.contains("not an EVTX file"),
        "{all}"
    );
    assert!(all.contains("missing.evtx"), "{all}");
    assert!(all.contains("fake.evtx"), "{all}");
    // A store exists and is valid, with the failed file in the manifest.
    assert!(Store::open(&store).unwrap().segments().unwrap().len() == 1);
}

/// The committed generated sample set: what ingest reads equals what the generator says it wrote,
/// per (channel, event id, computer).
#[test]
fn generated_samples_match_generator_counts() {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Int32Type, UInt32Type};
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data");
    let mut scenarios = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(text) = std::fs::read_to_string(dir.join("counts.json")) else {
            continue;
        };
        scenarios += 1;
        let counts: serde_json::Value = serde_json::from_str(&text).unwrap();
        let mut want: BTreeMap<(String, u32, String), u64> = BTreeMap::new();
        for c in counts["counts"].as_array().unwrap() {
            let key = (
                c["channel"].as_str().unwrap().to_string(),
                c["event_id"].as_u64().unwrap() as u32,
                c["computer"].as_str().unwrap().to_string(),
            );
            *want.entry(key).or_default() += c["count"].as_u64().unwrap();
        }
        let files = evtxsql_ingest::discover(std::slice::from_ref(&dir)).files();
        let inputs = Input::numbered(&files);
        let mut got: BTreeMap<(String, u32, String), u64> = BTreeMap::new();
        let mut failed = 0;
        reader::read(&inputs, &ReadOptions::default(), &mut |item| {
            match item {
                Item::Batch { batch, .. } => {
                    let ch = batch
                        .column_by_name("channel")
                        .unwrap()
                        .as_dictionary::<Int32Type>();
                    let co = batch
                        .column_by_name("computer")
                        .unwrap()
                        .as_dictionary::<Int32Type>();
                    let ids = batch
                        .column_by_name("event_id")
                        .unwrap()
                        .as_primitive::<UInt32Type>();
                    let chv = ch.values().as_string::<i32>();
                    let cov = co.values().as_string::<i32>();
                    for i in 0..batch.num_rows() {
                        let key = (
                            chv.value(ch.keys().value(i) as usize).to_string(),
                            ids.value(i),
                            cov.value(co.keys().value(i) as usize).to_string(),
                        );
                        assert!(!ids.is_null(i));
                        *got.entry(key).or_default() += 1;
                    }
                }
                Item::FileDone { report, .. } => failed += report.failed_records,
                Item::Admitted { .. } | Item::Skipped { .. } => unreachable!("no admission"),
            }
            true
        })
        .unwrap();
        assert_eq!(failed, 0, "{}", dir.display());
        assert_eq!(got, want, "{}", dir.display());
    }
    assert!(
        scenarios >= 7,
        "the committed sample set has every scenario"
    );
}

#[path = "support/differential.rs"]
mod differential;

#[path = "support/mutation.rs"]
mod mutation;

/// Every committed events part, read back whole, in segment order.
fn read_back(store: &Path) -> (Vec<arrow::record_batch::RecordBatch>, Vec<Vec<i64>>) {
    let store = Store::open(store).unwrap();
    let mut batches = Vec::new();
    let mut row_groups = Vec::new();
    for part in store.committed_event_parts().unwrap() {
        let file = std::fs::File::open(part).unwrap();
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(
            builder.schema().fields(),
            evtxsql_ingest::events_schema().fields(),
            "the Arrow schema is stored with the part"
        );
        row_groups.push(
            builder
                .metadata()
                .row_groups()
                .iter()
                .map(|g| g.num_rows())
                .collect(),
        );
        for b in builder.build().unwrap() {
            batches.push(b.unwrap());
        }
    }
    (batches, row_groups)
}

/// All rows of `batches`, ordered by (file_id, record_id): the store's rows whatever their layout.
fn by_record(batches: &[arrow::record_batch::RecordBatch]) -> arrow::record_batch::RecordBatch {
    use arrow::compute::{SortColumn, lexsort_to_indices, take_record_batch};
    let schema = evtxsql_ingest::events_schema();
    let all = arrow::compute::concat_batches(&schema, batches).unwrap();
    let key = |name: &str| SortColumn {
        values: all.column_by_name(name).unwrap().clone(),
        options: None,
    };
    let order = lexsort_to_indices(&[key("file_id"), key("record_id")], None).unwrap();
    take_record_batch(&all, &order).unwrap()
}

/// Whether the rows of `batch` are in the clustering order (channel, event_id, time, ...).
fn is_clustered(batch: &arrow::record_batch::RecordBatch) -> bool {
    let order = evtxsql_ingest::segment::cluster_order(std::slice::from_ref(batch)).unwrap();
    order.iter().enumerate().all(|(i, &(_, row))| i == row)
}

fn assert_same_rows(
    a: &[arrow::record_batch::RecordBatch],
    b: &[arrow::record_batch::RecordBatch],
) {
    let (a, b) = (by_record(a), by_record(b));
    assert_same_columns(&a, &b);
}

/// Two batches hold the same rows in the same order, column by column.
fn assert_same_columns(a: &arrow::record_batch::RecordBatch, b: &arrow::record_batch::RecordBatch) {
    assert_eq!(a.num_rows(), b.num_rows());
    for (i, field) in a.schema().fields().iter().enumerate() {
        assert_eq!(
            a.column(i).as_ref(),
            b.column(i).as_ref(),
            "column {}",
            field.name()
        );
    }
}

/// Row groups are cut at exactly `row_group_rows` (the columns of each encoded in parallel),
/// each segment is sorted by the clustering key, and the rows are the same whatever the
/// row-group, sort-run and segment sizes.
#[test]
fn row_groups_have_the_chosen_size_and_hold_the_same_rows() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data");
    let tmp = tempfile::tempdir().unwrap();
    let run = |name: &str, opts: IngestOptions| {
        let store = tmp.path().join(name);
        let s = ingest(std::slice::from_ref(&data), &store, &opts, &NoProgress).unwrap();
        (s, read_back(&store))
    };
    let (s1, (default_rows, default_groups)) = run("default", IngestOptions::default());
    let small = IngestOptions {
        row_group_rows: 1000,
        segment_rows: 4000,
        // Each segment one sort run: its row groups are cut at exactly 1000 rows.
        sort_run_bytes: 64 << 20,
        chunks_per_batch: 3,
        ..IngestOptions::default()
    };
    let (s2, (small_rows, small_groups)) = run("small", small);
    assert_eq!(s1.records, s2.records);
    assert!(s2.segments_written > 1, "{s2:?}");
    assert_eq!(default_groups.len(), 1);
    for (groups, size) in std::iter::once((&default_groups[0], 128 * 1024))
        .chain(small_groups.iter().map(|g| (g, 1000)))
    {
        let (last, full) = groups.split_last().unwrap();
        assert!(full.iter().all(|&n| n == size), "{groups:?}");
        assert!((1..=size).contains(last), "{groups:?}");
    }
    let default_all =
        arrow::compute::concat_batches(&evtxsql_ingest::events_schema(), &default_rows).unwrap();
    assert!(is_clustered(&default_all));
    assert_eq!(default_all.num_rows() as u64, s1.records);
    assert_same_rows(&default_rows, &small_rows);
}

/// The layout name in the footer of each committed events part.
fn layouts(store: &Path) -> Vec<String> {
    let store = Store::open(store).unwrap();
    store
        .committed_event_parts()
        .unwrap()
        .into_iter()
        .map(|part| {
            let file = std::fs::File::open(part).unwrap();
            let builder =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap();
            builder
                .metadata()
                .file_metadata()
                .key_value_metadata()
                .into_iter()
                .flatten()
                .find(|kv| kv.key == evtxsql_ingest::segment::LAYOUT_KEY)
                .and_then(|kv| kv.value.clone())
                .unwrap_or_default()
        })
        .collect()
}

/// Each committed events part read back whole.
fn parts(store: &Path) -> Vec<arrow::record_batch::RecordBatch> {
    let store = Store::open(store).unwrap();
    store
        .committed_event_parts()
        .unwrap()
        .into_iter()
        .map(|part| {
            let file = std::fs::File::open(part).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .build()
                    .unwrap();
            let batches: Vec<_> = reader.map(|b| b.unwrap()).collect();
            arrow::compute::concat_batches(&evtxsql_ingest::events_schema(), &batches).unwrap()
        })
        .collect()
}

/// Ingest encodes each sort run as it fills (a segment of several runs is marked so); compact
/// then sorts each segment whole, and a segment sorted in memory and the same segment merged
/// from many spilled runs hold the same rows in the same order (the key is a total order).
#[test]
fn sorted_runs_of_ingest_merge_into_the_same_clustered_segments() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data");
    let tmp = tempfile::tempdir().unwrap();
    let ingested = tmp.path().join("ingested");
    let opts = IngestOptions {
        row_group_rows: 700,
        segment_rows: 5_000,
        chunks_per_batch: 2,
        sort_run_bytes: 1 << 20,
        ..IngestOptions::default()
    };
    ingest(std::slice::from_ref(&data), &ingested, &opts, &NoProgress).unwrap();
    let names = layouts(&ingested);
    assert!(names.len() > 1, "{names:?}");
    assert!(names.iter().any(|n| n == "sorted-runs-1"), "{names:?}");
    assert!(parts(&ingested).iter().any(|p| !is_clustered(p)));
    for g in row_group_batches(&ingested) {
        assert!(g.num_rows() <= 700);
        assert!(is_clustered(&g), "a row group never spans two runs");
    }
    let (rows_before, _) = read_back(&ingested);

    let compacted = |name: &str, run_bytes: usize| {
        let store = tmp.path().join(name);
        compaction::copy_dir(&ingested, &store);
        let opts = evtxsql_ingest::compact::CompactOptions {
            segment_rows: 5_000,
            layout: evtxsql_ingest::segment::Layout {
                row_group_rows: 700,
                run_bytes,
                merge_runs: true,
            },
            threads: 2,
        };
        let s = evtxsql_ingest::compact::compact(&store, &opts).unwrap();
        assert!(s.segments_written > 1, "{s:?}");
        let opened = Store::open(&store).unwrap();
        // No spill file is left behind.
        assert_eq!(std::fs::read_dir(opened.tmp_dir()).unwrap().count(), 0);
        assert!(layouts(&store).iter().all(|n| n == "clustered-1"));
        let (rows_after, _) = read_back(&store);
        assert_same_rows(&rows_before, &rows_after);
        parts(&store)
    };
    let in_memory = compacted("memory", 1 << 30);
    let merged = compacted("merged", 1);
    assert_eq!(in_memory.len(), merged.len());
    for (a, b) in in_memory.iter().zip(&merged) {
        assert!(is_clustered(a));
        assert_same_columns(a, b);
    }
}

/// Every row group of every committed events part, read back one batch per row group.
fn row_group_batches(store: &Path) -> Vec<arrow::record_batch::RecordBatch> {
    let store = Store::open(store).unwrap();
    let mut out = Vec::new();
    for part in store.committed_event_parts().unwrap() {
        let file = std::fs::File::open(&part).unwrap();
        let builder =
            parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let groups = builder.metadata().num_row_groups();
        for g in 0..groups {
            let file = std::fs::File::open(&part).unwrap();
            let reader =
                parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
                    .unwrap()
                    .with_row_groups(vec![g])
                    .with_batch_size(1 << 20)
                    .build()
                    .unwrap();
            for b in reader {
                out.push(b.unwrap());
            }
        }
    }
    out
}

/// Each row group of a store written with small sort runs is sorted by the clustering key.
#[test]
fn row_groups_are_clustered() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    let opts = IngestOptions {
        row_group_rows: 700,
        sort_run_bytes: 2 << 20,
        ..IngestOptions::default()
    };
    ingest(std::slice::from_ref(&data), &store, &opts, &NoProgress).unwrap();
    let groups = row_group_batches(&store);
    assert!(groups.len() > 10, "{}", groups.len());
    for g in &groups {
        assert!(g.num_rows() <= 700);
        assert!(is_clustered(g));
    }
}

/// Record ids and times are stored as deltas (they are sorted within runs), every other column
/// as dictionaries or plain values; the payload, record ids and times with zstd, dictionary-
/// encoded names and codes without compression.
#[test]
fn record_ids_and_times_are_stored_as_deltas_and_names_uncompressed() {
    use parquet::basic::{Compression, Encoding};
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data");
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("s");
    ingest(
        std::slice::from_ref(&data),
        &store,
        &IngestOptions::default(),
        &NoProgress,
    )
    .unwrap();
    let parts = Store::open(&store)
        .unwrap()
        .committed_event_parts()
        .unwrap();
    assert!(!parts.is_empty());
    for part in parts {
        let file = std::fs::File::open(&part).unwrap();
        let reader = parquet::file::reader::SerializedFileReader::new(file).unwrap();
        let meta = parquet::file::reader::FileReader::metadata(&reader);
        for group in meta.row_groups() {
            for chunk in group.columns() {
                let name = chunk.column_path().string();
                let delta = chunk
                    .encodings()
                    .any(|e| e == Encoding::DELTA_BINARY_PACKED);
                let sorted = name == "record_id" || name == "time_created";
                let encodings: Vec<Encoding> = chunk.encodings().collect();
                assert_eq!(delta, sorted, "{name}: {encodings:?}");
                // Names and codes are dictionary keys zstd barely shrinks: stored as they are.
                let plain = [
                    "event_id",
                    "channel",
                    "provider",
                    "computer",
                    "user_name",
                    "server_name",
                    "client_ip",
                ];
                if plain.contains(&name.as_str()) {
                    assert_eq!(chunk.compression(), Compression::UNCOMPRESSED, "{name}");
                } else if ["data", "record_id", "time_created", "logon_id"].contains(&name.as_str())
                {
                    assert!(
                        matches!(chunk.compression(), Compression::ZSTD(_)),
                        "{name}"
                    );
                }
            }
        }
    }
}

#[path = "support/compaction.rs"]
mod compaction;

#[path = "support/filtered.rs"]
mod filtered;
