//! The page index of some of a file's row groups: read and parsed for them alone, and set in
//! the file's footer in their places (the other row groups' entries empty).

use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectMeta;
use parquet::DecodeResult;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataBuilder, ParquetMetaDataPushDecoder,
};

/// `footer` with the column and offset indexes of its row groups `rows` (every column of
/// them) and empty entries for the others; `footer` as it is when the file has no page index
/// for them. Reads the bytes from `reader` (the file, of `file_len` bytes).
pub(super) async fn page_index_of(
    reader: &mut (dyn AsyncFileReader + Send),
    footer: Arc<ParquetMetaData>,
    rows: &[usize],
    file_len: u64,
) -> parquet::errors::Result<Arc<ParquetMetaData>> {
    let Some(mut decoder) = part_decoder(&footer, rows, file_len)? else {
        return Ok(footer);
    };
    loop {
        match decoder.try_decode()? {
            DecodeResult::Data(part) => return Ok(splice(footer, &part, rows)),
            DecodeResult::NeedsData(ranges) => {
                let bytes = reader.get_byte_ranges(ranges.clone()).await?;
                decoder.push_ranges(ranges, bytes)?;
            }
            DecodeResult::Finished => return Ok(footer),
        }
    }
}

/// [`page_index_of`] for a file of the local file system (`object`, under `url`, which is
/// `file:///`), read with blocking reads: for planning, which cannot wait on a future. None
/// for any other store, or when the file cannot be read or is no longer the one `footer` came
/// from.
pub(crate) fn local_page_index_of(
    footer: Arc<ParquetMetaData>,
    rows: &[usize],
    object: &ObjectMeta,
    url: &datafusion::execution::object_store::ObjectStoreUrl,
) -> Option<Arc<ParquetMetaData>> {
    let Some(decoder) = part_decoder(&footer, rows, object.size).ok()? else {
        return Some(footer);
    };
    let part = decode_local(decoder, object, url)?;
    Some(splice(footer, &part, rows))
}

/// What `decoder` decodes, its bytes read from the local file `object` (under `url`, which
/// is `file:///`) with blocking reads. None for any other store, when the file cannot be read
/// or is no longer `object`'s size, or the bytes do not decode.
fn decode_local(
    mut decoder: ParquetMetaDataPushDecoder,
    object: &ObjectMeta,
    url: &datafusion::execution::object_store::ObjectStoreUrl,
) -> Option<ParquetMetaData> {
    use std::io::{Read, Seek, SeekFrom};
    if url.as_str() != "file:///" {
        return None;
    }
    let path = object_store::local::LocalFileSystem::new()
        .path_to_filesystem(&object.location)
        .ok()?;
    let mut file = std::fs::File::open(path).ok()?;
    if file.metadata().ok()?.len() != object.size {
        return None;
    }
    loop {
        match decoder.try_decode().ok()? {
            DecodeResult::Data(part) => return Some(part),
            DecodeResult::NeedsData(ranges) => {
                let mut bytes = Vec::with_capacity(ranges.len());
                for range in &ranges {
                    let len = usize::try_from(range.end.checked_sub(range.start)?).ok()?;
                    let mut buffer = vec![0u8; len];
                    file.seek(SeekFrom::Start(range.start)).ok()?;
                    file.read_exact(&mut buffer).ok()?;
                    bytes.push(Bytes::from(buffer));
                }
                decoder.push_ranges(ranges, bytes).ok()?;
            }
            DecodeResult::Finished => return None,
        }
    }
}

/// A decoder of the page index of `footer`'s row groups `rows` alone (a footer of those row
/// groups: the decoder reads and parses their indexes only; the file is `file_len` bytes).
/// None when `footer` has its page index already or names no such row groups.
fn part_decoder(
    footer: &ParquetMetaData,
    rows: &[usize],
    file_len: u64,
) -> parquet::errors::Result<Option<ParquetMetaDataPushDecoder>> {
    if footer.column_index().is_some() && footer.offset_index().is_some() {
        return Ok(None);
    }
    let groups: Option<Vec<_>> = rows
        .iter()
        .map(|&i| footer.row_groups().get(i).cloned())
        .collect();
    let Some(groups) = groups else {
        return Ok(None);
    };
    let part = ParquetMetaDataBuilder::new(footer.file_metadata().clone())
        .set_row_groups(groups)
        .build();
    let decoder = ParquetMetaDataPushDecoder::try_new_with_metadata(file_len, part)?
        .with_page_index_policy(PageIndexPolicy::Optional);
    Ok(Some(decoder))
}

/// `footer` with the column and offset indexes that `part` (the footer of its row groups
/// `rows` alone, decoded with their page index) holds, in those row groups' places, and empty
/// entries for the others; `footer` as it is when `part` has no page index.
fn splice(
    footer: Arc<ParquetMetaData>,
    part: &ParquetMetaData,
    rows: &[usize],
) -> Arc<ParquetMetaData> {
    let (Some(columns), Some(offsets)) = (part.column_index(), part.offset_index()) else {
        return footer;
    };
    let count = footer.num_row_groups();
    let mut column_index = vec![Vec::new(); count];
    let mut offset_index = vec![Vec::new(); count];
    for ((&i, c), o) in rows.iter().zip(columns).zip(offsets) {
        column_index[i] = c.clone();
        offset_index[i] = o.clone();
    }
    let footer = ParquetMetaDataBuilder::new_from_metadata(Arc::unwrap_or_clone(footer))
        .set_column_index(Some(column_index))
        .set_offset_index(Some(offset_index))
        .build();
    Arc::new(footer)
}

/// The page index of `footer`'s row groups `rows`, for its top-level columns named in
/// `columns` alone, read from the local file (`object`, under `url`): a footer of those row
/// groups (its row group k is `rows[k]`) and those columns (its schema holds them alone, in
/// the file's order), with their column and offset indexes. For planning: the indexes of a
/// filter's columns tell which rows of the kept row groups it can keep, at a few hundred bytes
/// a row group, where the whole page index of a row group is every column's. None when no
/// such column has a page index in every one of those row groups, or the file cannot be read.
pub(crate) fn local_filter_index_of(
    footer: &ParquetMetaData,
    rows: &[usize],
    columns: &[String],
    object: &ObjectMeta,
    url: &datafusion::execution::object_store::ObjectStoreUrl,
) -> Option<ParquetMetaData> {
    use parquet::file::metadata::{FileMetaData, RowGroupMetaData};
    use parquet::schema::types::{SchemaDescriptor, Type};
    let descr = footer.file_metadata().schema_descr();
    let indexed = |leaf: usize| {
        rows.iter().all(|&i| {
            footer.row_groups().get(i).is_some_and(|group| {
                let chunk = group.column(leaf);
                chunk.column_index_offset().is_some() && chunk.offset_index_offset().is_some()
            })
        })
    };
    let leaves: Vec<usize> = (0..descr.num_columns())
        .filter(|&leaf| {
            let column = descr.column(leaf);
            column.path().parts().len() == 1
                && columns.iter().any(|name| name == column.name())
                && indexed(leaf)
        })
        .collect();
    if leaves.is_empty() || rows.is_empty() {
        return None;
    }
    let root = descr.root_schema();
    let fields = leaves
        .iter()
        .map(|&leaf| Arc::clone(&root.get_fields()[descr.get_column_root_idx(leaf)]))
        .collect();
    let schema = Type::group_type_builder(root.name())
        .with_fields(fields)
        .build()
        .ok()?;
    let schema = Arc::new(SchemaDescriptor::new(Arc::new(schema)));
    let file = footer.file_metadata();
    let orders = file.column_orders().map(|orders| {
        leaves
            .iter()
            .filter_map(|&l| orders.get(l).copied())
            .collect()
    });
    let file = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_string),
        None,
        Arc::clone(&schema),
        orders,
    );
    let mut groups = Vec::with_capacity(rows.len());
    for &i in rows {
        let group = footer.row_group(i);
        let chunks = leaves.iter().map(|&l| group.column(l).clone()).collect();
        let part = RowGroupMetaData::builder(Arc::clone(&schema))
            .set_num_rows(group.num_rows())
            .set_total_byte_size(group.total_byte_size())
            .set_column_metadata(chunks)
            .build()
            .ok()?;
        groups.push(part);
    }
    let part = ParquetMetaDataBuilder::new(file)
        .set_row_groups(groups)
        .build();
    let decoder = ParquetMetaDataPushDecoder::try_new_with_metadata(object.size, part)
        .ok()?
        .with_page_index_policy(PageIndexPolicy::Optional);
    let part = decode_local(decoder, object, url)?;
    (part.column_index().is_some() && part.offset_index().is_some()).then_some(part)
}
