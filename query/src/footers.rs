//! The store's Parquet format for local sessions: DataFusion's own, except that planning reads
//! only each file's footer.
//!
//! To plan a query, a listing table infers each file's statistics (row counts, min/max: they
//! answer `count(*)` and choose join sides). With its default metadata cache, DataFusion's
//! Parquet format reads the file's page index along with the footer there, for every query,
//! whether or not a filter will use it: on the 10.5 M-event store, parsing the page index was
//! ~15 % of a `SELECT count(*)`. Here planning reads the footer alone (into the same cache).
//! Whether a scan reads the page index is decided per scan by [`crate::pieces`]; when it does,
//! [`PageIndexOnce`] reads it once per file and keeps it in that cache.
//!
//! Local sessions only: a cluster's executors know DataFusion's Parquet format, not this one
//! (a plan is sent to them by name of its format).

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use bytes::Bytes;
use datafusion::catalog::Session;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::FileMeta;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::parquet::metadata::{
    DFParquetMetadata, ordering_from_parquet_metadata,
};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileSinkConfig, FileSource, ParquetFileReaderFactory,
};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileMetadataCache};
use datafusion::physical_expr::{LexOrdering, LexRequirement};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::arrow_reader::ArrowReaderOptions;
use parquet::arrow::async_reader::AsyncFileReader;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use tokio::sync::OnceCell;

/// [`ParquetFormat`] whose statistics and ordering come from the footer alone.
#[derive(Debug, Default)]
pub(crate) struct FooterFirst {
    inner: ParquetFormat,
}

impl FooterFirst {
    /// The footer of `object`, from the session's metadata cache or read and put there.
    async fn footer(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        object: &ObjectMeta,
    ) -> Result<Arc<ParquetMetaData>> {
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        DFParquetMetadata::new(store.as_ref(), object)
            .with_metadata_size_hint(self.inner.metadata_size_hint())
            .with_file_metadata_cache(Some(cache))
            .with_page_index_policy(Some(PageIndexPolicy::Skip))
            .fetch_metadata()
            .await
    }
}

#[async_trait]
impl FileFormat for FooterFirst {
    fn get_ext(&self) -> String {
        self.inner.get_ext()
    }

    fn get_ext_with_compression(&self, compression: &FileCompressionType) -> Result<String> {
        self.inner.get_ext_with_compression(compression)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.inner.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        self.inner.infer_schema(state, store, objects).await
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        let footer = self.footer(state, store, object).await?;
        DFParquetMetadata::statistics_from_parquet_metadata(&footer, &table_schema)
    }

    async fn infer_ordering(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Option<LexOrdering>> {
        let footer = self.footer(state, store, object).await?;
        ordering_from_parquet_metadata(&footer, &table_schema)
    }

    async fn infer_stats_and_ordering(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<FileMeta> {
        let footer = self.footer(state, store, object).await?;
        let statistics =
            DFParquetMetadata::statistics_from_parquet_metadata(&footer, &table_schema)?;
        let ordering = ordering_from_parquet_metadata(&footer, &table_schema)?;
        Ok(FileMeta::new(statistics).with_ordering(ordering))
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner.create_physical_plan(state, conf).await
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        state: &dyn Session,
        conf: FileSinkConfig,
        order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.inner
            .create_writer_physical_plan(input, state, conf, order_requirements)
            .await
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.inner.file_source(table_schema)
    }
}

/// `object`'s footer as the session's metadata cache holds it (with or without its page index),
/// if it is there and still the file's.
pub(crate) fn cached(
    cache: &FileMetadataCache,
    object: &ObjectMeta,
) -> Option<Arc<ParquetMetaData>> {
    let entry = cache.get(&object.location)?;
    if !entry.is_valid_for(object) {
        return None;
    }
    let footer = entry
        .file_metadata
        .as_any()
        .downcast_ref::<CachedParquetMetaData>()?;
    Some(Arc::clone(footer.parquet_metadata()))
}

/// Put `footer` (read from `object`, with its page index or not) in the session's metadata
/// cache, where the scan's readers look for it.
pub(crate) fn keep(cache: &FileMetadataCache, object: &ObjectMeta, footer: Arc<ParquetMetaData>) {
    let entry =
        CachedFileMetadataEntry::new(object.clone(), Arc::new(CachedParquetMetaData::new(footer)));
    cache.put(&object.location, entry);
}

/// Opens a scan's files with their page index, read once per file and kept in the session's
/// metadata cache.
///
/// DataFusion's Parquet scan reads a file's page index when its filter can prune pages, and
/// does not keep it: every file it opens reads and parses the page index again. A scan cut into
/// pieces of row groups ([`crate::pieces`]) opens each file once per piece. With this factory a
/// file's footer comes with its page index, read by the first piece that opens it (the others
/// wait for it), so the scan finds it there and reads nothing more.
#[derive(Debug)]
pub(crate) struct PageIndexOnce {
    inner: CachedParquetFileReaderFactory,
    loaded: Mutex<HashMap<Path, Arc<OnceCell<Arc<ParquetMetaData>>>>>,
}

impl PageIndexOnce {
    /// Reading from `store`, keeping footers in `cache` (the session's metadata cache).
    pub(crate) fn new(store: Arc<dyn ObjectStore>, cache: Arc<FileMetadataCache>) -> Self {
        PageIndexOnce {
            inner: CachedParquetFileReaderFactory::new(store, cache),
            loaded: Mutex::new(HashMap::new()),
        }
    }
}

impl ParquetFileReaderFactory for PageIndexOnce {
    fn create_reader(
        &self,
        partition_index: usize,
        partitioned_file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let footer = {
            let mut loaded = self.loaded.lock().unwrap_or_else(PoisonError::into_inner);
            let entry = loaded.entry(partitioned_file.object_meta.location.clone());
            Arc::clone(entry.or_default())
        };
        let inner = self.inner.create_reader(
            partition_index,
            partitioned_file,
            metadata_size_hint,
            metrics,
        )?;
        Ok(Box::new(IndexedReader { inner, footer }))
    }
}

/// A file's reader whose footer comes with the page index, read once for all its readers.
struct IndexedReader {
    inner: Box<dyn AsyncFileReader + Send>,
    footer: Arc<OnceCell<Arc<ParquetMetaData>>>,
}

impl AsyncFileReader for IndexedReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, parquet::errors::Result<Bytes>> {
        self.inner.get_bytes(range)
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, parquet::errors::Result<Vec<Bytes>>> {
        self.inner.get_byte_ranges(ranges)
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, parquet::errors::Result<Arc<ParquetMetaData>>> {
        let IndexedReader { inner, footer } = self;
        async move {
            let options = options
                .cloned()
                .unwrap_or_default()
                .with_page_index_policy(PageIndexPolicy::Optional);
            let footer = footer
                .get_or_try_init(|| inner.get_metadata(Some(&options)))
                .await?;
            Ok(Arc::clone(footer))
        }
        .boxed()
    }
}
