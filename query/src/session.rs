//! Building the DataFusion `SessionContext`: configuration (pruning, filter pushdown, memory limit
//! and spilling), the `events` and `files` tables of a store or of EVTX files, views and functions.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use datafusion::catalog::TableProvider;
use datafusion::config::TableParquetOptions;
use datafusion::datasource::MemTable;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::{FairSpillPool, MemoryLimit, TrackConsumersPool};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::execution::{SessionState, SessionStateBuilder};
use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
use datafusion::prelude::{SessionConfig, SessionContext};
use evtxsql_ingest::s3::{S3Location, S3Store};
use evtxsql_ingest::store::{EVENTS_DIR, FILES_DIR};
use evtxsql_ingest::{IngestError, Store, events_schema, files_schema};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef};

use crate::dictionary_exprs::DictionaryExprs;
use crate::error::QueryError;
use crate::footers::{self, DICTIONARY_COLUMNS, FooterFirst};
use crate::grouping::{DictionaryGrouping, dictionary_key};
use crate::pieces::RowGroupPieces;
use crate::pushdown::PushdownChoice;
use crate::rowstats::RowGroupAggregates;
use crate::{evtx, functions, views};

/// How many of the memory pool's largest consumers an allocation that fails names.
const TOP_CONSUMERS: std::num::NonZeroUsize = std::num::NonZeroUsize::MIN.saturating_add(4);

/// How a session uses the machine.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    /// Memory for query operators (sorts, joins, aggregations) in bytes; beyond it they spill to
    /// disk. None: unlimited.
    pub memory_limit: Option<u64>,
    /// Parallelism (partitions and EVTX parser threads). None: one per core.
    pub threads: Option<usize>,
    /// Where spill files go. None: the system temporary directory.
    pub spill_dir: Option<PathBuf>,
}

impl SessionOptions {
    fn threads(&self) -> usize {
        self.threads.filter(|n| *n > 0).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
    }
}

/// A session over the store at `store`: tables `events` and `files`, the views, the functions.
pub async fn session_for_store(
    store: &Path,
    opts: &SessionOptions,
) -> Result<SessionContext, QueryError> {
    // The segments' footers are read on a thread of their own while the session is built and
    // the SQL planned: planning's first step is to read them (on the 10.5 M-event store, ~1 ms
    // of a 5 ms `SELECT count(*)`). A local store only; the table reads names as dictionaries
    // when the session has no memory limit (see `register_tables`).
    let prefetch = (S3Location::of_path(store).ok().flatten().is_none())
        .then(|| Store::open(store).ok()?.committed_event_parts().ok())
        .flatten()
        .map(|parts| {
            let unbounded = opts.memory_limit.is_none();
            footers::prefetch(parts, unbounded, Some(events_table_schema(unbounded, true)))
        });
    let ctx = new_context(opts)?;
    register_store(&ctx, store).await?;
    // Planning waits for them when it first needs a footer: until then, the SQL is parsed,
    // planned and optimized while they are read.
    if let Some(prefetch) = prefetch {
        let pending = Arc::new(footers::PendingFooters::new(prefetch));
        ctx.state_ref().write().config_mut().set_extension(pending);
    }
    Ok(ctx)
}

/// Register the store at `store` on `ctx`: the tables `events` and `files` (Parquet listings of
/// exactly the committed parts) and the views over them. `ctx` must know the functions (see
/// [`session_state`]); it may be a local session or one whose plans run elsewhere (a cluster),
/// as long as that place sees the store's files at the same paths. `store` is a directory or
/// `s3://bucket/prefix` (see [`evtxsql_ingest::s3`]).
pub async fn register_store(ctx: &SessionContext, store: &Path) -> Result<(), QueryError> {
    let remote = S3Location::of_path(store).map_err(|e| s3_error(store, e))?;
    if let Some(location) = remote {
        return register_s3_store(ctx, &location).await;
    }
    let opened = Store::open(store).map_err(|source| QueryError::Store {
        path: store.to_path_buf(),
        source,
    })?;
    let store_err = |source| QueryError::Store {
        path: store.to_path_buf(),
        source,
    };
    let urls = |parts: Vec<PathBuf>| -> Result<Vec<String>, QueryError> {
        parts
            .into_iter()
            .map(|p| {
                std::path::absolute(&p)
                    .map(|abs| abs.to_string_lossy().into_owned())
                    .map_err(|source| QueryError::Io { path: p, source })
            })
            .collect()
    };
    let event_parts = urls(opened.committed_event_parts().map_err(store_err)?)?;
    let manifest_parts = urls(opened.manifest_parts().map_err(store_err)?)?;
    register_tables(ctx, &event_parts, &manifest_parts).await
}

/// The schema of the table `events`: names and addresses as string views (and, in a local
/// session, as dictionaries) when the session has no memory limit (`unbounded`).
fn events_table_schema(unbounded: bool, local: bool) -> SchemaRef {
    if unbounded {
        string_views(&events_schema(), local)
    } else {
        events_schema()
    }
}

/// The tables `events` and `files` over exactly these Parquet parts (URLs), and the views.
async fn register_tables(
    ctx: &SessionContext,
    event_parts: &[String],
    manifest_parts: &[String],
) -> Result<(), QueryError> {
    let unbounded = matches!(
        ctx.runtime_env().memory_pool.memory_limit(),
        MemoryLimit::Infinite
    );
    let local = is_local(ctx);
    let events = events_table_schema(unbounded, local);
    let parquet = ctx.state_ref().read().default_table_options().parquet;
    let events = parquet_table(event_parts, events, local, parquet.clone())?;
    register(ctx, "events", events)?;
    let files = parquet_table(manifest_parts, files_schema(), local, parquet)?;
    register(ctx, "files", files)?;
    views::register_views(ctx).await
}

/// [`register_store`] for `s3://bucket/prefix`: the bucket's object store registered on `ctx`
/// (credentials and endpoint from the AWS environment variables), the tables over the
/// committed parts of one listing.
async fn register_s3_store(ctx: &SessionContext, location: &S3Location) -> Result<(), QueryError> {
    let url = PathBuf::from(location.url());
    let s3 = S3Store::open(location)
        .await
        .map_err(|e| s3_error(&url, e))?;
    let listing = s3.listing().await.map_err(|e| s3_error(&url, e))?;
    let bucket =
        ObjectStoreUrl::parse(location.bucket_url()).map_err(|source| QueryError::Setup {
            what: format!("object store {}", location.bucket_url()),
            source,
        })?;
    ctx.register_object_store(bucket.as_ref(), s3.object_store());
    let event_parts: Vec<String> = listing
        .event_segments()
        .into_iter()
        .map(|seg| s3.part_url(EVENTS_DIR, seg))
        .collect();
    let manifest_parts: Vec<String> = listing
        .segments
        .iter()
        .map(|&seg| s3.part_url(FILES_DIR, seg))
        .collect();
    register_tables(ctx, &event_parts, &manifest_parts).await
}

/// An error opening an S3 store: the store's own errors (not a store, too new) as for a
/// directory; the object store's (credentials, bucket, endpoint) naming the store once.
fn s3_error(store: &Path, e: IngestError) -> QueryError {
    match e {
        IngestError::Remote { url, message } => QueryError::Remote {
            what: format!("cannot open store {url}"),
            cause: message.into(),
        },
        source => QueryError::Store {
            path: store.to_path_buf(),
            source,
        },
    }
}

/// A session over EVTX files, directories or globs, read on the fly: `events` is `read_evtx`
/// over `paths`, `files` describes each file found (reading it when queried).
pub async fn session_for_evtx(
    paths: &[PathBuf],
    opts: &SessionOptions,
) -> Result<SessionContext, QueryError> {
    let ctx = new_context(opts)?;
    let source = evtx::EvtxSource::discover(paths, opts.threads.unwrap_or(0))?;
    register(&ctx, "events", Arc::new(source.events_table()))?;
    register(&ctx, "files", Arc::new(source.files_table()))?;
    views::register_views(&ctx).await?;
    Ok(ctx)
}

/// An empty session with evtxsql's configuration, functions and the `read_evtx` table function.
pub fn new_context(opts: &SessionOptions) -> Result<SessionContext, QueryError> {
    let ctx = SessionContext::new_with_state(build_state(opts, true)?);
    ctx.register_udtf(
        "read_evtx",
        Arc::new(evtx::ReadEvtx {
            threads: opts.threads.unwrap_or(0),
        }),
    );
    Ok(ctx)
}

/// evtxsql's session configuration: pruning, filter pushdown into Parquet, page index, SQL
/// spans, JSON reads kept inside filters, the sort spill reservation for a memory limit.
pub fn session_config(opts: &SessionOptions) -> SessionConfig {
    let threads = opts.threads();
    let mut config = SessionConfig::new()
        .with_information_schema(true)
        .with_target_partitions(threads)
        .with_parquet_pruning(true);
    {
        let o = config.options_mut();
        o.execution.parquet.pushdown_filters = true;
        o.execution.parquet.reorder_filters = true;
        o.execution.parquet.enable_page_index = true;
        // A store's segments carry no bloom filters: do not look for them (opening the pieces of
        // a 31017 count took 348 µs in all with the lookups, 248 µs without). These settings reach
        // the store's scans through the tables' format (`register_tables`), not on their own.
        o.execution.parquet.bloom_filter_on_read = false;
        o.sql_parser.collect_spans = true;
        // Keep JSON field reads (`data->>'X'`, json_get_str) inside the filters that use them:
        // pulled out into a projection below the filter they run on every row, before cheap
        // conjuncts such as `event_id = 4104` have thrown most rows away (measured on a
        // 5.6 M-row relation: 5.5 s with the pushdown, 23 ms without).
        o.optimizer.enable_leaf_expression_pushdown = false;
        // No filter from a hash join's build side into its probe side's scan: building it
        // takes the min/max of every join key, and for a dictionary key (computer, channel,
        // provider) DataFusion does that one value at a time: 20 of the 46 ms of a self-join
        // of 31001 with 31022 events on computer and server (62 K build rows), while the
        // bounds of a computer or user name prune no row group of a clustered segment.
        o.optimizer.enable_join_dynamic_filter_pushdown = false;
        if let Some(limit) = opts.memory_limit {
            // Sorts reserve this much up front for merging spills; keep it well inside small
            // limits so they spill instead of failing.
            let share = limit / (4 * threads as u64).max(1);
            let reserve = usize::try_from(share).unwrap_or(usize::MAX);
            o.execution.sort_spill_reservation_bytes =
                o.execution.sort_spill_reservation_bytes.min(reserve);
            // One sort of all partitions rather than one a partition and a merge of them:
            // the fair pool gives every sort a share, each sort's merge of its spills then
            // grows into what is left, and the final merge found none (a sort of 40 MB of
            // text under 16 MiB on 2 threads failed so, and `ORDER BY data` of the real-log
            // store at 64 and 128 MiB).
            o.optimizer.repartition_sorts = false;
        }
    }
    config
}

/// The state of an evtxsql session without tables: [`session_config`], the memory pool and
/// spill directory of `opts`, DataFusion's defaults and evtxsql's functions
/// ([`functions::register_functions`]). Local sessions and cluster clients start from it.
pub fn session_state(opts: &SessionOptions) -> Result<SessionState, QueryError> {
    build_state(opts, false)
}

/// [`session_state`], with evtxsql's own physical operators when `local` (a cluster's executors
/// would not know them: [`crate::grouping`]).
fn build_state(opts: &SessionOptions, local: bool) -> Result<SessionState, QueryError> {
    let mut config = session_config(opts);
    let mut runtime = crate::objects::runtime_builder();
    if let Some(limit) = opts.memory_limit {
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        // An allocation that fails names the operators that hold the memory.
        let pool = TrackConsumersPool::new(FairSpillPool::new(limit), TOP_CONSUMERS);
        runtime = runtime.with_memory_pool(Arc::new(pool));
    }
    let mode = match &opts.spill_dir {
        Some(dir) => DiskManagerMode::Directories(vec![dir.clone()]),
        None => DiskManagerMode::OsTmpDirectory,
    };
    runtime = runtime.with_disk_manager_builder(DiskManagerBuilder::default().with_mode(mode));
    let runtime = runtime.build_arc().map_err(|source| QueryError::Setup {
        what: "runtime (memory pool, spill directory)".into(),
        source,
    })?;
    let mut builder = SessionStateBuilder::new().with_runtime_env(Arc::clone(&runtime));
    if local {
        // Row-level pushdown is chosen scan by scan (see `pushdown`), before DataFusion pushes
        // filters into scans; row groups that hold one group are aggregated from their
        // statistics (see `rowstats`); our dictionary grouping replaces aggregations once they
        // are planned; scans are cut at row groups after pruning (see `pieces`).
        config.options_mut().execution.parquet.pushdown_filters = false;
        let mut rules = PhysicalOptimizer::new().rules;
        let at = rules
            .iter()
            .position(|r| r.name() == "FilterPushdown")
            .unwrap_or(0);
        rules.insert(at, Arc::new(PushdownChoice));
        rules.push(Arc::new(RowGroupAggregates::new(&runtime)));
        rules.push(Arc::new(DictionaryGrouping));
        // Work on one dictionary column done once per value of its dictionary (see
        // `dictionary_exprs`): after the plan's filters and projections are in place.
        rules.push(Arc::new(DictionaryExprs));
        // Last: the scans' partitions are final, and so is each scan's filter.
        rules.push(Arc::new(RowGroupPieces::new(Arc::clone(&runtime))));
        builder = builder.with_physical_optimizer_rules(rules);
        config = config.with_extension(Arc::new(LocalSession));
    }
    let mut state = builder.with_config(config).with_default_features().build();
    functions::register_functions(&mut state).map_err(|source| QueryError::Setup {
        what: "functions".into(),
        source,
    })?;
    Ok(state)
}

fn register(
    ctx: &SessionContext,
    name: &str,
    table: Arc<dyn TableProvider>,
) -> Result<(), QueryError> {
    ctx.register_table(name, table)
        .map_err(|source| QueryError::Setup {
            what: format!("table {name}"),
            source,
        })?;
    Ok(())
}

/// `schema` with its plain string columns (`data` and the promoted ones) read as string views:
/// a view points into the Parquet page instead of copying each string out of it, which filters,
/// GROUP BY and LIKE take from faster (10.5 M-event store: GROUP BY client_ip 85 -> 46 ms).
/// In `local` sessions the names and addresses of [`DICTIONARY_COLUMNS`] are read as
/// dictionaries instead ([`crate::footers`]).
/// Used without a memory limit only: under one, DataFusion counts the page buffers shared by
/// view batches once per batch, and a sort that should spill fails instead (a test of the
/// query crate holds that).
fn string_views(schema: &SchemaRef, local: bool) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| match f.data_type() {
            DataType::Utf8 if local && DICTIONARY_COLUMNS.contains(&f.name().as_str()) => {
                f.as_ref().clone().with_data_type(dictionary_key())
            }
            DataType::Utf8 => f.as_ref().clone().with_data_type(DataType::Utf8View),
            _ => f.as_ref().clone(),
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Marks the configuration of a session whose plans run here (not on a cluster).
#[derive(Debug)]
struct LocalSession;

/// Whether `ctx`'s plans run in this process ([`new_context`]), not on a cluster.
pub(crate) fn is_local(ctx: &SessionContext) -> bool {
    ctx.state_ref()
        .read()
        .config()
        .get_extension::<LocalSession>()
        .is_some()
}

/// A Parquet listing over exactly `parts` (absolute paths or URLs; never a directory listing:
/// a directory can hold a crashed writer's leftovers), or an empty table when there are none.
/// `local`: the plans run in this process, which plans from the footers alone
/// ([`FooterFirst`]). The scans read with `options`: the session's (`execution.parquet`), which
/// a format made by hand does not take on its own (it reads with DataFusion's defaults).
pub(crate) fn parquet_table(
    parts: &[String],
    schema: SchemaRef,
    local: bool,
    options: TableParquetOptions,
) -> Result<Arc<dyn TableProvider>, QueryError> {
    let setup = |what: String| move |source| QueryError::Setup { what, source };
    if parts.is_empty() {
        let empty = MemTable::try_new(schema, vec![vec![]]).map_err(setup("empty table".into()))?;
        return Ok(Arc::new(empty));
    }
    let mut urls = Vec::with_capacity(parts.len());
    for p in parts {
        let url = ListingTableUrl::parse(p).map_err(setup(format!("Parquet part {p}")))?;
        urls.push(url);
    }
    let format: Arc<dyn FileFormat> = if local {
        Arc::new(FooterFirst::new(
            ParquetFormat::default().with_options(options),
        ))
    } else {
        Arc::new(ParquetFormat::default().with_options(options))
    };
    let options = ListingOptions::new(format).with_file_extension(".parquet");
    let config = ListingTableConfig::new_with_multi_paths(urls)
        .with_listing_options(options)
        .with_schema(schema);
    let table = ListingTable::try_new(config).map_err(setup("Parquet listing".into()))?;
    Ok(Arc::new(table))
}

/// Parse a size such as `2GiB`, `512MiB`, `16M`, `1.5G`, `1000000` (bytes). Binary and decimal
/// suffixes are both read as powers of 1024, as people mean them for memory.
pub fn parse_size(text: &str) -> Result<u64, QueryError> {
    let bad = |message: &str| QueryError::InvalidOption {
        what: "size",
        value: text.to_string(),
        message: message.to_string(),
    };
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let num: f64 = num
        .parse()
        .map_err(|_| bad("expected a number with an optional unit, e.g. 2GiB or 512MiB"))?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad("unknown unit; use B, KiB, MiB, GiB or TiB")),
    };
    let bytes = num * mult as f64;
    if !bytes.is_finite() || bytes < 1.0 || bytes > u64::MAX as f64 {
        return Err(bad("out of range"));
    }
    Ok(bytes as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// JSON reads stay inside the filter, behind the cheap conjuncts, instead of being computed
    /// for every row in a projection below it.
    #[tokio::test]
    async fn json_reads_stay_in_filters() {
        let ctx = new_context(&SessionOptions::default()).expect("context");
        let empty = MemTable::try_new(events_schema(), vec![vec![]]).expect("table");
        ctx.register_table("rel", Arc::new(empty))
            .expect("register");
        let df = ctx
            .sql(
                "EXPLAIN SELECT count(*) FROM rel WHERE event_id = 4104 \
                 AND json_as_text(data, 'ScriptBlockText') LIKE '%Guest%'",
            )
            .await
            .expect("plan");
        let batches = df.collect().await.expect("explain");
        let text = arrow::util::pretty::pretty_format_batches(&batches)
            .expect("format")
            .to_string();
        assert!(!text.contains("__datafusion_extracted"), "{text}");
        assert!(
            text.lines()
                .any(|l| l.contains("Filter:") && l.contains("json_as_text")),
            "{text}"
        );
    }

    /// The store's scans read with the session's Parquet settings, not DataFusion's defaults
    /// (which a format made by hand gets): no bloom filter lookups (the store writes none; each
    /// scan looked for them), filters reordered by cost. Local sessions and cluster clients.
    #[tokio::test]
    async fn scans_read_with_the_session_parquet_settings() {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        use datafusion::datasource::physical_plan::ParquetSource;
        use datafusion::datasource::source::DataSourceExec;

        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("seg-000000.parquet");
        let file = std::fs::File::create(&path).expect("file");
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, events_schema(), None).expect("writer");
        let batch = arrow::array::RecordBatch::new_empty(events_schema());
        writer.write(&batch).expect("write");
        writer.close().expect("close");
        let parts = [path.to_string_lossy().into_owned()];
        let opts = SessionOptions::default();
        let local = new_context(&opts).expect("context");
        let client = SessionContext::new_with_state(session_state(&opts).expect("state"));
        for ctx in [local, client] {
            register_tables(&ctx, &parts, &[]).await.expect("tables");
            let plan = ctx
                .sql("SELECT record_id FROM events WHERE event_id = 4624")
                .await
                .expect("sql")
                .create_physical_plan()
                .await
                .expect("plan");
            let mut scans = Vec::new();
            plan.apply(|node| {
                if let Some(exec) = node.downcast_ref::<DataSourceExec>()
                    && let Some((_, source)) = exec.downcast_to_file_source::<ParquetSource>()
                {
                    scans.push(source.table_parquet_options().global.clone());
                }
                Ok(TreeNodeRecursion::Continue)
            })
            .expect("walk");
            assert_eq!(scans.len(), 1, "{}", is_local(&ctx));
            assert!(!scans[0].bloom_filter_on_read, "{}", is_local(&ctx));
            assert!(scans[0].reorder_filters, "{}", is_local(&ctx));
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("2GiB").ok(), Some(2 << 30));
        assert_eq!(parse_size("16 MiB").ok(), Some(16 << 20));
        assert_eq!(parse_size("1.5g").ok(), Some(3 << 29));
        assert_eq!(parse_size("4096").ok(), Some(4096));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("2PB").is_err());
        assert!(parse_size("0").is_err());
    }
}
