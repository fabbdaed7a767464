//! The reader's filter (`scan` without a store): a record is skipped as soon as its template and
//! at most three values show no rule reads it. Whatever path decides, a filtered read keeps
//! exactly the rows of an unfiltered read that the filter keeps, the same row for row, and
//! accounts for every record (kept, skipped or failed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::{Int32Type, UInt32Type, UInt64Type};
use arrow::record_batch::RecordBatch;
use evtxsql_ingest::reader::{self, Input, Item, ReadOptions};
use evtxsql_ingest::{FileReport, RecordFilter};

/// (file, record id) → (provider, channel, event id, data).
type Rows = BTreeMap<(usize, u64), (Option<String>, Option<String>, Option<u32>, String)>;

fn dict(batch: &RecordBatch, name: &str, i: usize) -> Option<String> {
    let d = batch
        .column_by_name(name)
        .unwrap()
        .as_dictionary::<Int32Type>();
    if d.is_null(i) {
        return None;
    }
    let values = d.values().as_string::<i32>();
    Some(values.value(d.keys().value(i) as usize).to_string())
}

fn read(inputs: &[Input], filter: Option<&RecordFilter>) -> (Rows, Vec<FileReport>) {
    let opts = ReadOptions {
        filter: filter.map(|f| std::sync::Arc::new(f.clone())),
        ..ReadOptions::default()
    };
    let mut rows = Rows::new();
    let mut reports = vec![FileReport::default(); inputs.len()];
    reader::read_with(inputs, &opts, reader::RecordPath::Decoder, &mut |item| {
        match item {
            Item::Batch { file, batch, .. } => {
                let ids = batch.column_by_name("record_id").unwrap();
                let ids = ids.as_primitive::<UInt64Type>();
                let events = batch.column_by_name("event_id").unwrap();
                let events = events.as_primitive::<UInt32Type>();
                let data = batch.column_by_name("data").unwrap().as_string::<i32>();
                for i in 0..batch.num_rows() {
                    let row = (
                        dict(&batch, "provider", i),
                        dict(&batch, "channel", i),
                        (!events.is_null(i)).then(|| events.value(i)),
                        data.value(i).to_string(),
                    );
                    rows.insert((file, ids.value(i)), row);
                }
            }
            Item::FileDone { file, report, .. } => reports[file] = *report,
            Item::Admitted { .. } | Item::Skipped { .. } => unreachable!("no admission"),
        }
        true
    })
    .unwrap();
    (rows, reports)
}

fn inputs() -> Vec<Input> {
    let mut dirs: Vec<PathBuf> =
        vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("../samples/data")];
    if let Some(corpus) = evtxsql_testkit::corpus() {
        dirs.push(corpus);
    }
    Input::numbered(&evtxsql_ingest::discover(&dirs).files())
}

#[test]
fn filtered_reads_keep_exactly_what_the_filter_keeps() {
    let inputs = inputs();
    // By provider and by channel, names in other cases than the logs', ids that occur and ids
    // that do not.
    let filter = RecordFilter::new([
        (
            "microsoft-windows-security-auditing",
            vec![4624, 4625, 5145],
        ),
        ("MICROSOFT-WINDOWS-SMBCLIENT/SECURITY", vec![31017, 31022]),
        ("Microsoft-Windows-SMBServer", vec![3023, 551]),
        ("system", vec![7045, 104]),
        ("Microsoft-Windows-Sysmon/Operational", vec![1, 13]),
        ("Microsoft-Windows-PowerShell", vec![4104]),
    ]);
    let (all, all_reports) = read(&inputs, None);
    let (kept, kept_reports) = read(&inputs, Some(&filter));
    let keeps = |r: &(Option<String>, Option<String>, Option<u32>, String)| {
        filter.keeps(r.0.as_deref(), r.1.as_deref(), r.2.map(u64::from))
    };

    let mut skipped = 0;
    for (i, (a, k)) in all_reports.iter().zip(&kept_reports).enumerate() {
        let path = inputs[i].path.display();
        assert_eq!(a.skipped_records, 0, "{path}");
        assert_eq!(
            k.records + k.skipped_records + k.failed_records,
            a.records + a.failed_records,
            "{path}: every record kept, skipped or failed"
        );
        // Rows the filter does not keep come only from the evtx crate's path (not filtered).
        let unfiltered = kept
            .range((i, 0)..=(i, u64::MAX))
            .filter(|(_, r)| !keeps(r))
            .count() as u64;
        assert!(unfiltered <= k.fallback_records, "{path}");
        skipped += k.skipped_records;
    }
    assert!(skipped > 10_000, "the filter skips most records: {skipped}");

    let wanted: Rows = all.into_iter().filter(|(_, r)| keeps(r)).collect();
    let got: Rows = kept.into_iter().filter(|(_, r)| keeps(r)).collect();
    assert!(
        wanted.len() > 1_000,
        "the filter keeps some: {}",
        wanted.len()
    );
    assert_eq!(got.len(), wanted.len());
    for (key, row) in &wanted {
        assert_eq!(
            got.get(key),
            Some(row),
            "{key:?} ({})",
            inputs[key.0].path.display()
        );
    }
}
