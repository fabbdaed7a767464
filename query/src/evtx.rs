//! EVTX files as tables, without a store: `read_evtx('path or glob', ...)` and the `events`/`files`
//! tables of [`crate::session_for_evtx`].
//!
//! A scan runs the ingest reader (parallel, chunk by chunk) on a thread of its own and hands
//! batches to DataFusion through a bounded channel, projected to the columns the query needs, so
//! memory stays bounded whatever the input size. Dropping the stream (a `LIMIT` reached) stops
//! the reader.

use std::path::PathBuf;
use std::sync::Arc;

use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::{Session, TableFunctionArgs, TableFunctionImpl, TableProvider};
use datafusion::common::{DataFusionError, Result, ScalarValue, plan_err};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableType};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::streaming::{PartitionStream, StreamingTableExec};
use evtxsql_ingest::discover::Candidate;
use evtxsql_ingest::manifest::{self, FileEntry, to_batch};
use evtxsql_ingest::reader::{self, FileReport, Input, Item, ReadOptions};
use evtxsql_ingest::{IngestError, events_schema, files_schema};

use crate::error::QueryError;

/// Batches buffered between the reader thread and the query.
const CHANNEL_BATCHES: usize = 4;

/// The EVTX files found for a set of inputs; `file_id` is the index into `candidates`.
#[derive(Debug, Clone)]
pub struct EvtxSource {
    candidates: Arc<Vec<Candidate>>,
    inputs: Arc<Vec<Input>>,
    threads: usize,
    /// Problems that did not stop discovery (an unreadable directory entry), for the caller to
    /// show.
    pub warnings: Vec<String>,
}

impl EvtxSource {
    /// Expand `paths` (files, directories, globs). A path that matches nothing is an error, so
    /// a typo never gives a silently smaller answer.
    pub fn discover(paths: &[PathBuf], threads: usize) -> Result<EvtxSource, QueryError> {
        let found = evtxsql_ingest::discover(paths);
        let mut warnings = Vec::new();
        for p in found.problems {
            match p {
                IngestError::NoMatch { .. } | IngestError::Glob { .. } => {
                    return Err(QueryError::Evtx(p));
                }
                other => warnings.push(other.to_string()),
            }
        }
        let candidates = found.candidates;
        let inputs: Vec<Input> = candidates
            .iter()
            .enumerate()
            .filter(|(_, c)| c.problem.is_none())
            .map(|(i, c)| Input {
                path: c.path.clone(),
                file_id: u32::try_from(i).unwrap_or(u32::MAX),
                size: c.size,
            })
            .collect();
        if inputs.is_empty() {
            return Err(QueryError::NoEvtxFiles {
                paths: paths
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        Ok(EvtxSource {
            candidates: Arc::new(candidates),
            inputs: Arc::new(inputs),
            threads,
            warnings,
        })
    }

    /// The `events` table over these files.
    pub fn events_table(&self) -> EvtxEventsTable {
        EvtxEventsTable {
            source: self.clone(),
        }
    }

    /// The `files` table over these files (reads them when queried).
    pub fn files_table(&self) -> EvtxFilesTable {
        EvtxFilesTable {
            source: self.clone(),
        }
    }

    fn read_options(&self) -> ReadOptions {
        ReadOptions {
            threads: self.threads,
            ..ReadOptions::default()
        }
    }
}

/// `events` read from EVTX files on the fly.
#[derive(Debug)]
pub struct EvtxEventsTable {
    source: EvtxSource,
}

#[async_trait]
impl TableProvider for EvtxEventsTable {
    fn schema(&self) -> SchemaRef {
        events_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema = match projection {
            Some(p) => Arc::new(events_schema().project(p)?),
            None => events_schema(),
        };
        let partition = EventsPartition {
            source: self.source.clone(),
            projection: projection.cloned(),
            schema: schema.clone(),
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            schema,
            vec![Arc::new(partition)],
            None,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

#[derive(Debug)]
struct EventsPartition {
    source: EvtxSource,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
}

impl PartitionStream for EventsPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let inputs = self.source.inputs.clone();
        let opts = self.source.read_options();
        let projection = self.projection.clone();
        spawn_producer(self.schema.clone(), move |tx| {
            let mut consume = |item: Item| match item {
                Item::Batch { batch, .. } => {
                    let batch = match &projection {
                        Some(p) => batch.project(p).map_err(DataFusionError::from),
                        None => Ok(batch),
                    };
                    tx.blocking_send(batch).is_ok()
                }
                Item::FileDone { .. } | Item::Admitted { .. } | Item::Skipped { .. } => true,
            };
            reader::read(&inputs, &opts, &mut consume)
                .map_err(|e| DataFusionError::External(Box::new(e)))
        })
    }
}

/// `files` of EVTX inputs: one row per file found, with what reading it gave.
#[derive(Debug)]
pub struct EvtxFilesTable {
    source: EvtxSource,
}

#[async_trait]
impl TableProvider for EvtxFilesTable {
    fn schema(&self) -> SchemaRef {
        files_schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let partition = FilesPartition {
            source: self.source.clone(),
            schema: files_schema(),
        };
        Ok(Arc::new(StreamingTableExec::try_new(
            files_schema(),
            vec![Arc::new(partition)],
            projection,
            Vec::new(),
            false,
            limit,
        )?))
    }
}

#[derive(Debug)]
struct FilesPartition {
    source: EvtxSource,
    schema: SchemaRef,
}

impl PartitionStream for FilesPartition {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let source = self.source.clone();
        spawn_producer(self.schema.clone(), move |tx| {
            let batch = files_batch(&source);
            let _ = tx.blocking_send(batch);
            Ok(())
        })
    }
}

/// Read every file (dropping its rows) and describe it as the store's manifest would. A file
/// that cannot be hashed (unreadable) is `failed` with that error, as `ingest` would list it.
fn files_batch(source: &EvtxSource) -> Result<RecordBatch> {
    let now = manifest::now_micros();
    let mut entries: Vec<FileEntry> = Vec::with_capacity(source.candidates.len());
    let mut shas: Vec<Option<String>> = Vec::with_capacity(source.candidates.len());
    for (i, c) in source.candidates.iter().enumerate() {
        let file_id = u32::try_from(i).unwrap_or(u32::MAX);
        let (sha, problem) = match manifest::sha256_file(&c.path) {
            Ok(sha) => (Some(sha), c.problem.clone()),
            Err(e) => (None, Some(e.to_string())),
        };
        let sha256 = sha.clone().unwrap_or_default();
        entries.push(match problem {
            Some(why) => FileEntry::failed(file_id, &c.path, c.size, sha256, why, now),
            None => FileEntry::from_report(
                FileReport {
                    path: c.path.clone(),
                    file_id,
                    ..FileReport::default()
                },
                c.size,
                sha256,
                now,
            ),
        });
        shas.push(sha);
    }
    let mut consume = |item: Item| {
        if let Item::FileDone { report, .. } = item {
            let i = report.file_id as usize;
            if let (Some(e), Some(Some(sha))) = (entries.get_mut(i), shas.get(i))
                && e.status != "failed"
            {
                *e = FileEntry::from_report(*report, e.size, sha.clone(), now);
            }
        }
        true
    };
    reader::read(&source.inputs, &source.read_options(), &mut consume)
        .map_err(|e| DataFusionError::External(Box::new(e)))?;
    to_batch(&entries).map_err(|e| DataFusionError::External(Box::new(e)))
}

type Sender = tokio::sync::mpsc::Sender<Result<RecordBatch>>;

/// Run `produce` on a thread of its own, feeding a bounded channel; the returned stream ends
/// when `produce` returns (its error, if any, is the stream's last item).
fn spawn_producer(
    schema: SchemaRef,
    produce: impl FnOnce(&Sender) -> Result<()> + Send + 'static,
) -> SendableRecordBatchStream {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<RecordBatch>>(CHANNEL_BATCHES);
    let spawned = std::thread::Builder::new()
        .name("evtxsql-scan".into())
        .spawn(move || {
            if let Err(e) = produce(&tx) {
                let _ = tx.blocking_send(Err(e));
            }
        });
    let stream = futures::stream::unfold(Some(rx), |rx| async move {
        let mut rx = rx?;
        let item = rx.recv().await?;
        Some((item, Some(rx)))
    });
    match spawned {
        Ok(_) => Box::pin(RecordBatchStreamAdapter::new(schema, stream)),
        Err(e) => {
            let err = DataFusionError::External(Box::new(e));
            Box::pin(RecordBatchStreamAdapter::new(
                schema,
                futures::stream::once(async move { Err(err) }),
            ))
        }
    }
}

/// The `read_evtx('path', 'dir/', 'glob/**/*.evtx', ...)` table function.
#[derive(Debug)]
pub struct ReadEvtx {
    /// Parser threads; 0: one per core.
    pub threads: usize,
}

impl TableFunctionImpl for ReadEvtx {
    fn call_with_args(&self, args: TableFunctionArgs) -> Result<Arc<dyn TableProvider>> {
        let mut paths = Vec::new();
        for expr in args.exprs() {
            match expr {
                Expr::Literal(
                    ScalarValue::Utf8(Some(s))
                    | ScalarValue::Utf8View(Some(s))
                    | ScalarValue::LargeUtf8(Some(s)),
                    _,
                ) => paths.push(PathBuf::from(s)),
                other => {
                    return plan_err!(
                        "read_evtx takes string literals (files, directories or globs), got {other}"
                    );
                }
            }
        }
        if paths.is_empty() {
            return plan_err!(
                "read_evtx needs at least one path, e.g. read_evtx('logs/**/*.evtx')"
            );
        }
        let source = EvtxSource::discover(&paths, self.threads)
            .map_err(|e| DataFusionError::Plan(format!("read_evtx: {e}")))?;
        Ok(Arc::new(source.events_table()))
    }
}
