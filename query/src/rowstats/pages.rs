//! Row groups a filter splits, answered page by page.
//!
//! A row group some of whose rows pass a filter on one column is read whole by the scan. When
//! the aggregates are all `count(*)`, the page index of that column says more: a page whose
//! statistics show every row passing is counted without being read, a page none of whose rows
//! can pass is skipped, and only the pages in between are read and filtered. On the 10.5 M-event
//! store one day's count touched 27 such row groups (3.5 M rows decoded for 0.84 M passing):
//! only the pages where the day begins or ends are read.

use std::fs::File;
use std::sync::Arc;

use arrow::datatypes::Schema;
use datafusion::execution::object_store::ObjectStoreUrl;
use object_store::ObjectMeta;
use object_store::local::LocalFileSystem;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData, ParquetMetaDataReader};

use super::filter::{Filter, Matches};

/// What the page index tells of a row group the filter splits.
#[derive(Debug, PartialEq)]
pub(super) struct Split {
    /// The rows of the pages that pass whole.
    pub(super) rows: u64,
    /// The rows still to read and filter (the pages that pass in part); None when none are.
    pub(super) rest: Option<RowSelection>,
}

/// Row group `row_group` of `footer` (with its page index) split by `filter`'s pages; None
/// when the index cannot tell (a filter on several columns, no page statistics) or no page
/// passes whole.
pub(super) fn split(
    filter: &Filter,
    footer: &ParquetMetaData,
    arrow: &Schema,
    row_group: usize,
) -> Option<Split> {
    let pages = filter.pages(footer, arrow, row_group)?;
    let total: u64 = pages.iter().map(|(_, rows)| rows).sum();
    if u64::try_from(footer.row_group(row_group).num_rows()).ok()? != total {
        return None;
    }
    of_pages(&pages)
}

/// [`split`] from each page's matches and rows.
fn of_pages(pages: &[(Matches, u64)]) -> Option<Split> {
    let rows: u64 = pages
        .iter()
        .filter(|(m, _)| *m == Matches::All)
        .map(|(_, rows)| rows)
        .sum();
    if rows == 0 {
        return None;
    }
    let mut selectors: Vec<RowSelector> = Vec::with_capacity(pages.len());
    for &(matches, count) in pages {
        let count = usize::try_from(count).ok()?;
        let selector = if matches == Matches::Some {
            RowSelector::select(count)
        } else {
            RowSelector::skip(count)
        };
        selectors.push(selector);
    }
    let rest = pages
        .iter()
        .any(|(m, _)| *m == Matches::Some)
        .then(|| RowSelection::from(selectors));
    Some(Split { rows, rest })
}

/// `footer` with the page index of its file read in, for a file of the local file system
/// (`url` is `file:///`); None for any other store, or when the file has no page index or
/// cannot be read (the scan then reads the row group as before).
pub(super) fn read_page_index(
    footer: &ParquetMetaData,
    object: &ObjectMeta,
    url: &ObjectStoreUrl,
) -> Option<Arc<ParquetMetaData>> {
    if url.as_str() != "file:///" {
        return None;
    }
    let path = LocalFileSystem::new()
        .path_to_filesystem(&object.location)
        .ok()?;
    let file = File::open(path).ok()?;
    // The file must still be the one the footer came from.
    if file.metadata().ok()?.len() != object.size {
        return None;
    }
    let mut reader = ParquetMetaDataReader::new_with_metadata(footer.clone())
        .with_page_index_policy(PageIndexPolicy::Optional);
    reader.read_page_indexes(&file).ok()?;
    let indexed = reader.finish().ok()?;
    (indexed.column_index().is_some() && indexed.offset_index().is_some())
        .then(|| Arc::new(indexed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_that_pass_whole_are_counted_and_only_the_others_read() {
        use Matches::{All, None as No, Some as Part};
        let split = of_pages(&[
            (No, 10),
            (Part, 20),
            (All, 30),
            (All, 5),
            (Part, 7),
            (No, 1),
        ])
        .expect("two pages pass whole");
        assert_eq!(split.rows, 35);
        let rest = split.rest.expect("two pages are read");
        assert_eq!(rest.row_count(), 27);
        assert_eq!(rest.skipped_row_count(), 46);
        let selectors: Vec<RowSelector> = rest.into();
        assert_eq!(
            selectors,
            vec![
                RowSelector::skip(10),
                RowSelector::select(20),
                RowSelector::skip(35),
                RowSelector::select(7),
                RowSelector::skip(1),
            ]
        );
        // Every page passes whole or not at all: nothing is left to read.
        let split = of_pages(&[(All, 4), (No, 6), (All, 1)]).expect("pages pass whole");
        assert_eq!(
            split,
            Split {
                rows: 5,
                rest: None
            }
        );
        // No page passes whole: nothing is gained, the row group is read as before.
        assert_eq!(of_pages(&[(Part, 4), (No, 6)]), None);
    }
}
