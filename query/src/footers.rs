//! The store's Parquet format for local sessions: DataFusion's own, except that planning reads
//! only each file's footer.
//!
//! To plan a query, a listing table infers each file's statistics (row counts, min/max: they
//! answer `count(*)` and choose join sides). With its default metadata cache, DataFusion's
//! Parquet format reads the file's page index along with the footer there, for every query,
//! whether or not a filter will use it: on the 10.5 M-event store, parsing the page index was
//! ~15 % of a `SELECT count(*)`. Here planning reads the footer alone (into the same cache);
//! a store session reads them beforehand, on a thread of their own while it is built
//! ([`prefetch`]). Whether a scan reads the page index is decided per scan by
//! [`crate::pieces`]; when it does, [`Footers::with_page_index`] reads that of the row groups
//! the scan keeps, once per file, for that scan alone.
//!
//! Names and addresses read as dictionaries: the promoted columns of [`DICTIONARY_COLUMNS`]
//! hold few distinct values per segment (accounts, hosts, shares, IP addresses), and the
//! writer stores them as dictionary pages. Read as strings, every row is a string (a view
//! copied out of the dictionary); read as `Dictionary(Int32, Utf8)`, a row is its key, and
//! filters, joins and GROUP BY work on the keys. The reader decodes a column as a dictionary
//! when the footer's Arrow schema (the writer's, kept in the footer) says so: a session whose
//! table reads them as dictionaries sees footers whose Arrow schema does ([`dictionary_hint`]).
//!
//! A local file's bytes are read by the partition that asks for them ([`local`]), not handed to
//! tokio's blocking pool through `object_store`.
//!
//! Local sessions only: a cluster's executors know DataFusion's Parquet format, not this one
//! (a plan is sent to them by name of its format).

use std::sync::{Arc, Mutex, PoisonError};

use arrow::datatypes::{DataType, FieldRef, Schema, SchemaRef};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::FileMeta;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::physical_plan::parquet::metadata::CachedParquetMetaData;
use datafusion::datasource::physical_plan::parquet::metadata::{
    DFParquetMetadata, ordering_from_parquet_metadata,
};
use datafusion::datasource::physical_plan::{
    FileScanConfig, FileScanConfigBuilder, FileSinkConfig, FileSource, ParquetSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::cache::cache_manager::{CachedFileMetadataEntry, FileMetadataCache};
use datafusion::physical_expr::{LexOrdering, LexRequirement};
use datafusion::physical_plan::ExecutionPlan;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore};
use parquet::arrow::{ARROW_SCHEMA_META_KEY, encode_arrow_schema, parquet_to_arrow_schema};
use parquet::file::metadata::{
    FileMetaData, KeyValue, PageIndexPolicy, ParquetMetaData, ParquetMetaDataBuilder,
};

use crate::grouping::dictionary_key;

/// The promoted columns that local sessions read as `Dictionary(Int32, Utf8)` (see the module
/// documentation). Not `object_name` (paths: many values), nor the core columns `data`,
/// `activity_id` (one value per record or near it).
pub const DICTIONARY_COLUMNS: &[&str] = &[
    "user_name",
    "user_domain",
    "target_sid",
    "auth_package",
    "workstation",
    "server_name",
    "server_ip",
    "share_name",
    "client_name",
    "client_ip",
    "user_sid",
];

/// A footer key that marks a footer as already given by [`dictionary_hint`].
const HINTED: &str = "evtxsql:dictionary_hint";

/// Whether a table of `schema` reads the columns of [`DICTIONARY_COLUMNS`] as dictionaries.
pub(crate) fn reads_dictionaries(schema: &Schema) -> bool {
    DICTIONARY_COLUMNS.iter().any(|name| {
        schema
            .field_with_name(name)
            .is_ok_and(|f| matches!(f.data_type(), DataType::Dictionary(..)))
    })
}

/// `footer` with the Arrow schema kept in it saying `Dictionary(Int32, Utf8)` for the columns of
/// [`DICTIONARY_COLUMNS`] where it says `Utf8`, so that the reader decodes their dictionary
/// pages into keys (a page the writer did not dictionary-encode is made into a dictionary by
/// the reader: the same values). The same footer when it has no Arrow schema, when nothing
/// changes, or when it was given already; the second value says whether it changed.
pub(crate) fn dictionary_hint(footer: Arc<ParquetMetaData>) -> (Arc<ParquetMetaData>, bool) {
    let file = footer.file_metadata();
    let Some(pairs) = file.key_value_metadata() else {
        return (footer, false);
    };
    if pairs.iter().any(|kv| kv.key == HINTED)
        || !pairs.iter().any(|kv| kv.key == ARROW_SCHEMA_META_KEY)
    {
        return (footer, false);
    }
    let Ok(schema) = parquet_to_arrow_schema(file.schema_descr(), Some(pairs)) else {
        return (footer, false);
    };
    let mut changed = false;
    let fields: Vec<FieldRef> = schema
        .fields()
        .iter()
        .map(|f| {
            if *f.data_type() == DataType::Utf8 && DICTIONARY_COLUMNS.contains(&f.name().as_str()) {
                changed = true;
                Arc::new(f.as_ref().clone().with_data_type(dictionary_key()))
            } else {
                Arc::clone(f)
            }
        })
        .collect();
    if !changed {
        return (footer, false);
    }
    let hinted = Schema::new_with_metadata(fields, schema.metadata().clone());
    let mut pairs: Vec<KeyValue> = pairs
        .iter()
        .filter(|kv| kv.key != ARROW_SCHEMA_META_KEY)
        .cloned()
        .collect();
    pairs.push(KeyValue::new(
        ARROW_SCHEMA_META_KEY.to_string(),
        encode_arrow_schema(&hinted),
    ));
    pairs.push(KeyValue::new(HINTED.to_string(), "1".to_string()));
    let file = FileMetaData::new(
        file.version(),
        file.num_rows(),
        file.created_by().map(str::to_string),
        Some(pairs),
        file.schema_descr_ptr(),
        file.column_orders().cloned(),
    );
    // Moved, not copied, when no one else holds the footer (a footer read for this): the
    // copy of a large footer's row groups costs as much as reading it.
    let mut old = ParquetMetaDataBuilder::new_from_metadata(Arc::unwrap_or_clone(footer));
    let footer = ParquetMetaDataBuilder::new(file)
        .set_row_groups(old.take_row_groups())
        .set_column_index(old.take_column_index())
        .set_offset_index(old.take_offset_index())
        .build();
    (Arc::new(footer), true)
}

/// [`ParquetFormat`] whose statistics and ordering come from the footer alone.
#[derive(Debug)]
pub(crate) struct FooterFirst {
    inner: ParquetFormat,
}

impl FooterFirst {
    /// The format reading as `inner` does.
    pub(crate) fn new(inner: ParquetFormat) -> Self {
        Self { inner }
    }

    /// The footer of `object`, from the session's metadata cache or read and put there; given
    /// the dictionary hint when a table of `schema` reads dictionaries.
    async fn footer(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        object: &ObjectMeta,
        schema: &Schema,
    ) -> Result<Arc<ParquetMetaData>> {
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        if let Some(pending) = state.config().get_extension::<PendingFooters>() {
            pending.settle(cache.as_ref());
        }
        let hint = reads_dictionaries(schema);
        if hint && let Some(footer) = cached(cache.as_ref(), object) {
            return Ok(hinted(cache.as_ref(), object, footer));
        }
        // With the hint to give, read outside the cache, so that the footer read is the only
        // one of its kind and is given the hint without a copy; the given one is kept.
        let footer = DFParquetMetadata::new(store.as_ref(), object)
            .with_metadata_size_hint(self.inner.metadata_size_hint())
            .with_file_metadata_cache((!hint).then(|| Arc::clone(&cache)))
            .with_page_index_policy(Some(PageIndexPolicy::Skip))
            .fetch_metadata()
            .await?;
        Ok(if hint {
            hinted(cache.as_ref(), object, footer)
        } else {
            footer
        })
    }
}

/// [`dictionary_hint`] of `footer` (of `object`), kept in the session's metadata cache when it
/// changed, so that the next reader of the cache finds it given.
fn hinted(
    cache: &FileMetadataCache,
    object: &ObjectMeta,
    footer: Arc<ParquetMetaData>,
) -> Arc<ParquetMetaData> {
    let (given, changed) = dictionary_hint(footer);
    if changed {
        keep(cache, object, Arc::clone(&given));
    }
    given
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
        let footer = self.footer(state, store, object, &table_schema).await?;
        DFParquetMetadata::statistics_from_parquet_metadata(&footer, &table_schema)
    }

    async fn infer_ordering(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Option<LexOrdering>> {
        let footer = self.footer(state, store, object, &table_schema).await?;
        ordering_from_parquet_metadata(&footer, &table_schema)
    }

    async fn infer_stats_and_ordering(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<FileMeta> {
        let footer = self.footer(state, store, object, &table_schema).await?;
        let made = state
            .config()
            .get_extension::<PendingFooters>()
            .and_then(|pending| pending.take_statistics(object, &table_schema));
        let statistics = match made {
            Some(statistics) => statistics,
            None => DFParquetMetadata::statistics_from_parquet_metadata(&footer, &table_schema)?,
        };
        let ordering = ordering_from_parquet_metadata(&footer, &table_schema)?;
        Ok(FileMeta::new(statistics).with_ordering(ordering))
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let hint = reads_dictionaries(conf.file_schema());
        let url = conf.object_store_url.clone();
        let plan = self.inner.create_physical_plan(state, conf).await?;
        if !hint && url.as_str() != "file:///" {
            return Ok(plan);
        }
        // DataFusion's scan reads footers through its cached reader factory: ours gives them
        // the hint.
        let Some((config, source)) = plan
            .downcast_ref::<DataSourceExec>()
            .and_then(|exec| exec.downcast_to_file_source::<ParquetSource>())
        else {
            return Ok(plan);
        };
        let runtime = state.runtime_env();
        let cache = runtime.cache_manager.get_file_metadata_cache();
        let factory = Footers::new(
            runtime.object_store(&url)?,
            &url,
            cache,
            config.file_schema(),
            PageIndexRows::new(),
        );
        let source = source
            .clone()
            .with_parquet_file_reader_factory(Arc::new(factory));
        let config = FileScanConfigBuilder::from(config.clone())
            .with_source(Arc::new(source))
            .build();
        Ok(DataSourceExec::from_data_source(config))
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

/// The footers of the Parquet files `parts`, read and parsed on a thread of their own (without
/// their page index; given the dictionary hint when `hint`), with each file's object as a
/// local listing describes it, to be put in a session's metadata cache ([`keep`]) where
/// planning looks for them first. A file that cannot be read or parsed is left out: planning
/// reads it and reports its error.
pub(crate) fn prefetch(
    parts: Vec<std::path::PathBuf>,
    hint: bool,
    table: Option<SchemaRef>,
) -> Prefetch {
    std::thread::spawn(move || {
        let read = |part: &std::path::Path| -> Option<Prefetched> {
            let part = std::path::absolute(part).ok()?;
            let file = std::fs::File::open(&part).ok()?;
            let meta = file.metadata().ok()?;
            let object = ObjectMeta {
                location: Path::from_filesystem_path(&part).ok()?,
                last_modified: meta.modified().ok()?.into(),
                size: meta.len(),
                e_tag: None,
                version: None,
            };
            let footer = parquet::file::metadata::ParquetMetaDataReader::new()
                .with_page_index_policy(PageIndexPolicy::Skip)
                .parse_and_finish(&file)
                .ok()?;
            let footer = Arc::new(footer);
            let footer = if hint {
                dictionary_hint(footer).0
            } else {
                footer
            };
            // What planning asks of the footer first: the file's statistics for the table.
            let statistics = table.as_ref().and_then(|schema| {
                let statistics =
                    DFParquetMetadata::statistics_from_parquet_metadata(&footer, schema).ok()?;
                Some((Arc::clone(schema), statistics))
            });
            Some(Prefetched {
                object,
                footer,
                statistics,
            })
        };
        parts.iter().filter_map(|p| read(p)).collect()
    })
}

/// A footer read by [`prefetch`], with the file's statistics for the table's schema when it
/// was given one.
pub(crate) struct Prefetched {
    pub(crate) object: ObjectMeta,
    pub(crate) footer: Arc<ParquetMetaData>,
    pub(crate) statistics: Option<(SchemaRef, Statistics)>,
}

/// The footers a store session reads on a thread of its own ([`prefetch`]), until planning
/// first needs a footer: the session is built, the SQL parsed, planned and optimized while they
/// are read, and [`FooterFirst`] waits for them (once, [`PendingFooters::settle`]) before it
/// looks for a footer in the cache. Kept in the session's configuration.
#[derive(Debug)]
pub(crate) struct PendingFooters {
    thread: Mutex<Option<Prefetch>>,
    /// The statistics the thread made, per file: (object, table schema, statistics).
    statistics: Mutex<Vec<(ObjectMeta, SchemaRef, Statistics)>>,
}

/// The thread that reads a store's footers.
pub(crate) type Prefetch = std::thread::JoinHandle<Vec<Prefetched>>;

impl PendingFooters {
    pub(crate) fn new(thread: Prefetch) -> Self {
        PendingFooters {
            thread: Mutex::new(Some(thread)),
            statistics: Mutex::new(Vec::new()),
        }
    }

    /// Wait for the footers, the first time, and put them in `cache` ([`keep`]); a reader
    /// that comes meanwhile waits too, and then finds them there.
    pub(crate) fn settle(&self, cache: &FileMetadataCache) {
        let mut thread = self.thread.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(thread) = thread.take() {
            let mut kept = self
                .statistics
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            for read in thread.join().unwrap_or_default() {
                keep(cache, &read.object, read.footer);
                if let Some((schema, statistics)) = read.statistics {
                    kept.push((read.object, schema, statistics));
                }
            }
        }
    }

    /// The statistics the thread made of `object` for a table of `schema`, once (planning asks
    /// once per file and scan); None when it made none for them, or the file changed since.
    pub(crate) fn take_statistics(
        &self,
        object: &ObjectMeta,
        schema: &Schema,
    ) -> Option<Statistics> {
        let mut kept = self
            .statistics
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let at = kept.iter().position(|(o, s, _)| {
            o.location == object.location
                && o.size == object.size
                && o.last_modified == object.last_modified
                && s.as_ref() == schema
        })?;
        Some(kept.swap_remove(at).2)
    }

    /// Whether the footers are still being read, or read and not yet asked for.
    #[cfg(test)]
    pub(crate) fn pending(&self) -> bool {
        self.thread
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }
}

mod local;
mod page_index;
mod reader;
#[cfg(test)]
mod tests;

pub(crate) use page_index::{local_filter_index_of, local_page_index_of};
pub(crate) use reader::{Footers, PageIndexRows};
