//! A scan's reader factory: footers given the dictionary hint and, when a scan asks, the page
//! index of the row groups it reads, read once per file and scan; local files read in place.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::Schema;
use bytes::Bytes;
use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};

use super::local::LocalFile;
use super::page_index::page_index_of;
use super::{hinted, reads_dictionaries};

/// A file's footer with the page index of some row groups, loaded once for all the readers of
/// the file in a scan: a shared future that whichever reader awaits it drives (a reader that
/// only waited for another's load was starved: DataFusion polls a scan's next file while it
/// reads the current one, so the loading reader polled its load once per batch, and on the
/// 10.5 M-event store the other partition waited 18-40 ms for a 3 ms load).
type SharedFooter = Shared<BoxFuture<'static, Result<Arc<ParquetMetaData>, String>>>;

/// Per file, the row groups whose page index a scan reads.
pub(crate) type PageIndexRows = HashMap<Path, Arc<[usize]>>;

/// Opens a scan's files through DataFusion's cached reader factory, with their footers given
/// the dictionary hint (for tables that read dictionaries) and, when asked, with the page
/// index of the row groups the scan reads, read once per file and scan.
///
/// DataFusion's Parquet scan reads a file's page index when its filter can prune pages: the
/// whole of it, every column of every row group, and again for every piece of the file it
/// opens (a scan cut into pieces of row groups, [`crate::pieces`], opens each file once per
/// piece). With [`Footers::with_page_index`] a file's footer comes with the page index of the
/// row groups the scan may read (all their columns; the other row groups' entries empty), read
/// once for all the pieces that open the file (whichever of them waits for it drives the read:
/// [`SharedFooter`]), so the scan finds it there and reads nothing more. On the 10.5 M-event store a filter on one event id keeps 5 of 81 row
/// groups: 23 of the page index's 363 KB. Such a footer is the scan's alone, never put in the
/// session's cache: another scan may read other row groups.
#[derive(Debug)]
pub(crate) struct Footers {
    inner: CachedParquetFileReaderFactory,
    /// Each file's footer with the page index of the row groups in `page_index`.
    loaded: Mutex<HashMap<Path, SharedFooter>>,
    /// Per file, the row groups whose page index is read (none: no page index).
    page_index: PageIndexRows,
    /// Footers given the dictionary hint, kept in this cache: for tables that read dictionaries.
    hint: Option<Arc<FileMetadataCache>>,
    /// The files are on the local file system: their bytes are read in place ([`local`]).
    local: bool,
}

impl Footers {
    /// Reading from `store`, keeping footers in `cache` (the session's metadata cache); footers
    /// with the dictionary hint when a table of `schema` reads dictionaries; with the page index
    /// of the row groups `page_index` names for their file.
    pub(super) fn new(
        store: Arc<dyn ObjectStore>,
        url: &ObjectStoreUrl,
        cache: Arc<FileMetadataCache>,
        schema: &Schema,
        page_index: PageIndexRows,
    ) -> Self {
        Footers {
            hint: reads_dictionaries(schema).then(|| Arc::clone(&cache)),
            inner: CachedParquetFileReaderFactory::new(store, cache),
            loaded: Mutex::new(HashMap::new()),
            page_index,
            local: url.as_str() == "file:///",
        }
    }

    /// Footers with the page index of the row groups `rows` names for their file, read once
    /// per file (and the hint as [`Footers::new`]). A scan through them must read no other row
    /// groups of those files.
    pub(crate) fn with_page_index(
        store: Arc<dyn ObjectStore>,
        url: &ObjectStoreUrl,
        cache: Arc<FileMetadataCache>,
        schema: &Schema,
        rows: PageIndexRows,
    ) -> Self {
        Footers::new(store, url, cache, schema, rows)
    }

    /// These footers, given already (each with the page index of the row groups
    /// [`Footers::with_page_index`] names for its file: planning read it), read no more.
    pub(crate) fn with_loaded(self, footers: Vec<(Path, Arc<ParquetMetaData>)>) -> Self {
        {
            let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            for (path, footer) in footers {
                let ready = futures::future::ready(Ok(footer)).boxed().shared();
                loaded.insert(path, ready);
            }
        }
        self
    }
}

impl ParquetFileReaderFactory for Footers {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let location = &partitioned_file.object_meta.location;
        let hint = self
            .hint
            .as_ref()
            .map(|cache| (Arc::clone(cache), partitioned_file.object_meta.clone()));
        let footer = match self.page_index.get(location) {
            None => None,
            Some(rows) => {
                let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
                match loaded.get(location) {
                    Some(shared) => Some(shared.clone()),
                    None => {
                        // The load reads through a reader of its own, so that it belongs to no
                        // one reader.
                        let reader = self.inner.create_reader(
                            partition_index,
                            partitioned_file.clone(),
                            metadata_size_hint,
                            metrics,
                        )?;
                        let rows = Arc::clone(rows);
                        let len = partitioned_file.object_meta.size;
                        let load = load_footer(reader, hint.clone(), rows, len)
                            .boxed()
                            .shared();
                        loaded.insert(location.clone(), load.clone());
                        Some(load)
                    }
                }
            }
        };
        let size = partitioned_file.object_meta.size;
        let file = self
            .local
            .then(|| LocalFile::open(location, size, partition_index, metrics))
            .flatten();
        let inner = self.inner.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )?;
        Ok(Box::new(FooterReader {
            inner,
            footer,
            hint,
            file,
        }))
    }
}

/// A file's reader whose footer comes with the page index of some row groups, read once for
/// all its readers (`footer`), or with the dictionary hint (`hint`), or both.
struct FooterReader {
    inner: Box<dyn AsyncFileReader + Send>,
    /// The footer with the page index of some of its row groups, shared by the readers of one
    /// file of a scan.
    footer: Option<SharedFooter>,
    /// The cache to keep the hinted footer in, and the file's object, when it takes the hint.
    hint: Option<(Arc<FileMetadataCache>, ObjectMeta)>,
    /// The file, when it is local: read in place.
    file: Option<LocalFile>,
}

impl AsyncFileReader for FooterReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        match &mut self.file {
            Some(file) => futures::future::ready(file.read(range)).boxed(),
            None => self.inner.get_bytes(range),
        }
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        match &mut self.file {
            Some(file) => futures::future::ready(file.read_ranges(ranges)).boxed(),
            None => self.inner.get_byte_ranges(ranges),
        }
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        let FooterReader {
            inner,
            footer,
            hint,
            ..
        } = self;
        async move {
            let hint = &*hint;
            let give = |footer| match hint {
                Some((cache, object)) => hinted(cache.as_ref(), object, footer),
                None => footer,
            };
            let Some(shared) = footer else {
                return Ok(give(inner.get_metadata(options).await?));
            };
            shared
                .clone()
                .await
                .map_err(parquet::errors::ParquetError::General)
        }
        .boxed()
    }
}

/// The footer of `reader`'s file (the cache's: without its page index; given the hint when
/// `hint` names the cache and object), then with the page index of its row groups `rows`
/// ([`page_index_of`]; the file is `len` bytes).
async fn load_footer(
    mut reader: Box<dyn AsyncFileReader + Send>,
    hint: Option<(Arc<FileMetadataCache>, ObjectMeta)>,
    rows: Arc<[usize]>,
    len: u64,
) -> Result<Arc<ParquetMetaData>, String> {
    let options = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip);
    let footer = reader
        .get_metadata(Some(&options))
        .await
        .map_err(|e| e.to_string())?;
    let footer = match &hint {
        Some((cache, object)) => hinted(cache.as_ref(), object, footer),
        None => footer,
    };
    page_index_of(reader.as_mut(), footer, &rows, len)
        .await
        .map_err(|e| e.to_string())
}
