//! The footers' dictionary hint, and the page index of some row groups.

#![allow(clippy::unwrap_used)]
use super::page_index::page_index_of;
use super::*;
use arrow::array::{ArrayRef, AsArray, RecordBatch, StringArray};
use arrow::datatypes::Field;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder,
};
use parquet::arrow::arrow_writer::ArrowWriterOptions;
use parquet::file::metadata::ParquetMetaDataReader;
use parquet::file::properties::WriterProperties;

/// A Parquet file of `user_name` (a name, few values) and `data` (not one of them), with
/// or without the writer's Arrow schema in its footer, in dictionary pages or plain ones.
fn file(with_arrow_schema: bool, dictionary_pages: bool) -> (Bytes, Vec<Option<String>>) {
    let names: Vec<Option<String>> = (0..5000)
        .map(|i| (i % 7 != 0).then(|| format!("user{}", i % 13)))
        .collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_name", DataType::Utf8, true),
        Field::new("data", DataType::Utf8, true),
    ]));
    let data: StringArray = (0..5000).map(|i| Some(format!("{{\"n\":{i}}}"))).collect();
    let batch = RecordBatch::try_new(
        Arc::clone(&schema),
        vec![
            Arc::new(names.iter().cloned().collect::<StringArray>()),
            Arc::new(data),
        ],
    )
    .unwrap();
    let mut out = Vec::new();
    let properties = WriterProperties::builder()
        .set_dictionary_enabled(dictionary_pages)
        .build();
    let options = ArrowWriterOptions::new()
        .with_skip_arrow_metadata(!with_arrow_schema)
        .with_properties(properties);
    let mut w = ArrowWriter::try_new_with_options(&mut out, schema, options).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    (Bytes::from(out), names)
}

fn footer(bytes: &Bytes) -> Arc<ParquetMetaData> {
    Arc::new(
        ParquetMetaDataReader::new()
            .parse_and_finish(bytes)
            .unwrap(),
    )
}

/// The name column as the reader returns it with the hinted footer of `bytes`: its values,
/// and each batch's dictionary values.
fn read_hinted(bytes: Bytes) -> (Vec<Option<String>>, Vec<ArrayRef>) {
    let (hinted, changed) = dictionary_hint(footer(&bytes));
    assert!(changed);
    let metadata = ArrowReaderMetadata::try_new(hinted, ArrowReaderOptions::new()).unwrap();
    let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(bytes, metadata)
        .with_batch_size(1024)
        .build()
        .unwrap();
    let mut read = Vec::new();
    let mut dictionaries = Vec::new();
    for batch in reader {
        let batch = batch.unwrap();
        assert_eq!(batch.schema().field(1).data_type(), &DataType::Utf8);
        let column = batch
            .column(0)
            .as_dictionary::<arrow::datatypes::Int32Type>();
        let values = column.values().as_string::<i32>();
        dictionaries.push(Arc::clone(column.values()));
        read.extend(
            column
                .keys()
                .iter()
                .map(|k| k.map(|k| values.value(k as usize).to_string())),
        );
    }
    (read, dictionaries)
}

/// The hinted footer makes the reader return the name column as a dictionary of the same
/// values, one dictionary for the batches of a column chunk, and leaves other columns be.
#[test]
fn the_hint_reads_names_as_dictionaries_of_the_same_values() {
    let (bytes, names) = file(true, true);
    let (read, dictionaries) = read_hinted(bytes.clone());
    assert_eq!(read, names);
    assert!(dictionaries.len() > 1);
    // The batches of a column chunk share its dictionary (what GROUP BY's memo of a
    // dictionary's values keys on).
    assert!(
        dictionaries
            .windows(2)
            .all(|d| crate::grouping::keys::same_strings(&d[0], &d[1]))
    );
    // Given once: a given footer is given back as it is.
    let (hinted, _) = dictionary_hint(footer(&bytes));
    let (again, changed) = dictionary_hint(Arc::clone(&hinted));
    assert!(!changed);
    assert!(Arc::ptr_eq(&again, &hinted));
}

/// Names the writer did not put in dictionary pages (too many values for one) are read as
/// dictionaries all the same, of the same values.
#[test]
fn names_in_plain_pages_are_read_as_dictionaries_of_the_same_values() {
    let (bytes, names) = file(true, false);
    let (read, _) = read_hinted(bytes);
    assert_eq!(read, names);
}

/// A footer without the writer's Arrow schema is left as it is: the reader's own types
/// stand.
#[test]
fn a_footer_without_an_arrow_schema_is_left_as_it_is() {
    let (bytes, _) = file(false, true);
    let before = footer(&bytes);
    let (after, changed) = dictionary_hint(Arc::clone(&before));
    assert!(!changed);
    assert!(Arc::ptr_eq(&before, &after));
}

/// The page index of some row groups: theirs exactly as the whole page index has it (every
/// column), the other row groups' entries empty; a file without a page index keeps its
/// footer as it is.
#[tokio::test]
async fn the_page_index_of_some_row_groups() {
    let mut out = Vec::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("t", DataType::Int64, false),
        Field::new("name", DataType::Utf8, true),
    ]));
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .set_data_page_row_count_limit(100)
        .set_write_batch_size(100)
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Page)
        .build();
    let mut w = ArrowWriter::try_new(&mut out, Arc::clone(&schema), Some(properties)).unwrap();
    let t = arrow::array::Int64Array::from_iter_values(0..5000);
    let name: StringArray = (0..5000).map(|i| Some(format!("n{}", i % 9))).collect();
    let batch = RecordBatch::try_new(schema, vec![Arc::new(t), Arc::new(name)]).unwrap();
    w.write(&batch).unwrap();
    w.close().unwrap();
    let bytes = Bytes::from(out);
    let whole = ParquetMetaDataReader::new()
        .with_page_index_policy(PageIndexPolicy::Required)
        .parse_and_finish(&bytes)
        .unwrap();
    let plain = footer(&bytes);
    assert!(plain.offset_index().is_none());

    let mut reader = std::io::Cursor::new(bytes.to_vec());
    let len = bytes.len() as u64;
    let some = page_index_of(&mut reader, Arc::clone(&plain), &[1, 3], len)
        .await
        .unwrap();
    let (columns, offsets) = (some.column_index().unwrap(), some.offset_index().unwrap());
    let (all_columns, all_offsets) = (whole.column_index().unwrap(), whole.offset_index().unwrap());
    assert_eq!(offsets.len(), 5);
    assert_eq!(columns.len(), 5);
    for i in 0..5 {
        if i == 1 || i == 3 {
            assert_eq!(offsets[i], all_offsets[i], "row group {i}");
            assert_eq!(columns[i], all_columns[i], "row group {i}");
            assert_eq!(offsets[i].len(), 2);
            assert_eq!(offsets[i][0].page_locations().len(), 10);
        } else {
            assert!(
                offsets[i].is_empty() && columns[i].is_empty(),
                "row group {i}"
            );
        }
    }
    assert_eq!(some.row_groups(), plain.row_groups());

    // The same read from a local file at planning, with blocking reads; not for a file that
    // changed since its footer was read, nor for another store.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    std::fs::write(&path, &bytes).unwrap();
    let object = ObjectMeta {
        location: Path::from_filesystem_path(&path).unwrap(),
        last_modified: std::fs::metadata(&path).unwrap().modified().unwrap().into(),
        size: len,
        e_tag: None,
        version: None,
    };
    let url = datafusion::execution::object_store::ObjectStoreUrl::local_filesystem();
    let local = local_page_index_of(Arc::clone(&plain), &[1, 3], &object, &url).unwrap();
    assert_eq!(local.column_index(), some.column_index());
    assert_eq!(local.offset_index(), some.offset_index());
    let other = datafusion::execution::object_store::ObjectStoreUrl::parse("s3://b/").unwrap();
    assert!(local_page_index_of(Arc::clone(&plain), &[1], &object, &other).is_none());
    let changed = ObjectMeta {
        size: len + 1,
        ..object.clone()
    };
    assert!(local_page_index_of(Arc::clone(&plain), &[1], &changed, &url).is_none());

    // Without a page index (no page statistics, no offset index): the footer unchanged.
    let mut out = Vec::new();
    let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Int64, false)]));
    let properties = WriterProperties::builder()
        .set_max_row_group_row_count(Some(1000))
        .set_statistics_enabled(parquet::file::properties::EnabledStatistics::Chunk)
        .set_offset_index_disabled(true)
        .build();
    let mut w = ArrowWriter::try_new(&mut out, Arc::clone(&schema), Some(properties)).unwrap();
    let t = arrow::array::Int64Array::from_iter_values(0..3000);
    w.write(&RecordBatch::try_new(schema, vec![Arc::new(t)]).unwrap())
        .unwrap();
    w.close().unwrap();
    let bytes = Bytes::from(out);
    let plain = footer(&bytes);
    assert!(plain.row_group(1).column(0).offset_index_offset().is_none());
    let mut reader = std::io::Cursor::new(bytes.to_vec());
    let len = bytes.len() as u64;
    let kept = page_index_of(&mut reader, Arc::clone(&plain), &[1], len);
    let kept = kept.await.unwrap();
    assert!(Arc::ptr_eq(&kept, &plain));
}

#[test]
fn tables_that_read_dictionaries() {
    let names = |t: DataType| Schema::new(vec![Field::new("client_ip", t, true)]);
    let dictionary = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    assert!(reads_dictionaries(&names(dictionary.clone())));
    assert!(!reads_dictionaries(&names(DataType::Utf8View)));
    let other = Schema::new(vec![Field::new("computer", dictionary, true)]);
    assert!(!reads_dictionaries(&other));
}

/// Planning waits for the footers read beside it (once) and uses them: the footer in the cache
/// after the first query is the one the thread read, not one planning read itself, and the
/// file's statistics (the same as DataFusion's) are the ones the thread made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planning_waits_for_the_footers_read_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t.parquet");
    let schema = Arc::new(Schema::new(vec![Field::new("t", DataType::Int64, false)]));
    let mut w = ArrowWriter::try_new(
        std::fs::File::create(&path).unwrap(),
        Arc::clone(&schema),
        None,
    )
    .unwrap();
    let t = arrow::array::Int64Array::from_iter_values(0..3000);
    w.write(&RecordBatch::try_new(schema, vec![Arc::new(t)]).unwrap())
        .unwrap();
    w.close().unwrap();
    let ctx = crate::pieces::tests::local(&path.to_string_lossy()).await;
    let table = ctx.table("t").await.unwrap().schema().inner().clone();
    let read = prefetch(vec![path.clone()], false, Some(Arc::clone(&table)));
    let read = read.join().unwrap().into_iter().next().unwrap();
    let theirs = Arc::clone(&read.footer);
    let (_, statistics) = read.statistics.as_ref().expect("statistics for the table");
    assert_eq!(
        statistics,
        &DFParquetMetadata::statistics_from_parquet_metadata(&read.footer, &table).unwrap()
    );
    let thread = std::thread::spawn(move || vec![read]);
    let pending = Arc::new(PendingFooters::new(thread));
    ctx.state_ref()
        .write()
        .config_mut()
        .set_extension(Arc::clone(&pending));
    let answer = crate::pieces::tests::text(&ctx, "SELECT count(*), max(t) FROM t").await;
    assert_eq!(answer, "3000|2999");
    assert!(!pending.pending(), "planning did not wait for the footers");
    let cache = ctx.runtime_env().cache_manager.get_file_metadata_cache();
    let meta = std::fs::metadata(&path).unwrap();
    let object = ObjectMeta {
        location: Path::from_filesystem_path(std::path::absolute(&path).unwrap()).unwrap(),
        last_modified: meta.modified().unwrap().into(),
        size: meta.len(),
        e_tag: None,
        version: None,
    };
    let cached = cached(cache.as_ref(), &object).expect("the footer is cached");
    assert!(
        Arc::ptr_eq(&cached, &theirs),
        "planning read the footer again"
    );
    // Planning took the statistics the thread made (once: they are gone).
    assert!(
        pending.take_statistics(&object, &table).is_none(),
        "planning made the statistics again"
    );
}
