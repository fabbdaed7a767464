//! The shared relation: the kept rows, one partition per event id, as a DataFusion table whose
//! scans read only the partitions their event-id filter allows.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, RwLock};

use arrow::array::{Array, AsArray, RecordBatch, UInt32Array};
use arrow::datatypes::{DataType, SchemaRef, UInt32Type};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::DataFusionError;
use datafusion::datasource::memory::{DataSourceExec, MemorySourceConfig};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use evtxsql_ingest::schema::col as schema;

use super::plan::{RelationPlan, event_ids_of};

/// Rows per batch when the partitions are put together.
const BATCH_ROWS: usize = 8192;

/// One event id's rows, holding only the columns some scan of that id reads.
#[derive(Debug)]
struct Part {
    /// Indices (in the relation's schema) of the columns kept, ascending.
    kept: Vec<usize>,
    /// The schema of `batches`: the relation's, projected to `kept`.
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
}

/// The rows of the shared relation, one partition per event id, each holding only the columns
/// the plan said are read.
#[derive(Debug)]
pub struct RelationRows {
    schema: SchemaRef,
    parts: BTreeMap<Option<u32>, Part>,
    rows: usize,
}

impl RelationRows {
    /// No rows yet; `schema` is the relation's full schema.
    pub fn new(schema: SchemaRef) -> RelationRows {
        RelationRows {
            schema,
            parts: BTreeMap::new(),
            rows: 0,
        }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Add a batch holding the columns `plan.columns` (in that order), split by event id,
    /// keeping for each event id only the columns that some scan of it reads.
    pub fn push(
        &mut self,
        batch: &RecordBatch,
        plan: &RelationPlan,
    ) -> datafusion::error::Result<()> {
        if batch.num_rows() == 0 {
            return Ok(());
        }
        let in_batch = batch.schema();
        let idx = in_batch.index_of(schema::EVENT_ID)?;
        let ids = arrow::compute::cast(batch.column(idx), &DataType::UInt32)?;
        let ids = ids.as_primitive::<UInt32Type>();
        let mut rows: BTreeMap<Option<u32>, Vec<u32>> = BTreeMap::new();
        for r in 0..ids.len() {
            let key = (!ids.is_null(r)).then(|| ids.value(r));
            rows.entry(key).or_default().push(r as u32);
        }
        let single = rows.len() == 1;
        for (id, take) in rows {
            if !self.parts.contains_key(&id) {
                let keep = plan.columns_for(id);
                let kept: Vec<usize> = self
                    .schema
                    .fields()
                    .iter()
                    .enumerate()
                    .filter(|(_, f)| keep.contains(f.name()) && in_batch.index_of(f.name()).is_ok())
                    .map(|(i, _)| i)
                    .collect();
                let schema = Arc::new(self.schema.project(&kept)?);
                self.parts.insert(
                    id,
                    Part {
                        kept,
                        schema,
                        batches: Vec::new(),
                    },
                );
            }
            let Some(part) = self.parts.get_mut(&id) else {
                continue;
            };
            let piece = if single {
                batch.clone()
            } else {
                arrow::compute::take_record_batch(batch, &UInt32Array::from(take))?
            };
            // A batch that crossed a process boundary (a cluster's Flight stream) may carry a
            // dictionary column as plain strings: cast it back to the relation's type.
            let columns = part
                .schema
                .fields()
                .iter()
                .map(|f| {
                    let c = piece.column(in_batch.index_of(f.name())?);
                    Ok(if c.data_type() == f.data_type() {
                        Arc::clone(c)
                    } else {
                        arrow::compute::cast(c, f.data_type())?
                    })
                })
                .collect::<datafusion::error::Result<Vec<_>>>()?;
            let piece = RecordBatch::try_new(Arc::clone(&part.schema), columns)?;
            self.rows += piece.num_rows();
            part.batches.push(piece);
        }
        Ok(())
    }

    /// Put each partition's small pieces together into batches of about 8192 rows.
    pub fn finish(&mut self) -> datafusion::error::Result<()> {
        for part in self.parts.values_mut() {
            let mut out = Vec::new();
            let mut group: Vec<RecordBatch> = Vec::new();
            let mut n = 0;
            for b in part.batches.drain(..) {
                n += b.num_rows();
                group.push(b);
                if n >= BATCH_ROWS {
                    out.push(arrow::compute::concat_batches(&part.schema, &group)?);
                    group.clear();
                    n = 0;
                }
            }
            if !group.is_empty() {
                out.push(arrow::compute::concat_batches(&part.schema, &group)?);
            }
            part.batches = out;
        }
        Ok(())
    }
}

/// The shared relation. It has the full schema of `events` (so that every rule plans against
/// it as against the store) and starts empty: rules are planned against it, then the rows the
/// plans read are put in ([`SharedRelation::fill`]) and the same plans run. Filters are pushed
/// down (inexactly) so that a scan reads only the partitions its event-id filter allows.
pub struct SharedRelation {
    schema: SchemaRef,
    rows: RwLock<RelationRows>,
}

impl fmt::Debug for SharedRelation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedRelation")
            .field("columns", &self.schema.fields().len())
            .field("rows", &self.rows())
            .finish()
    }
}

impl SharedRelation {
    /// No rows, with the relation's full schema.
    pub fn empty(schema: SchemaRef) -> SharedRelation {
        SharedRelation {
            rows: RwLock::new(RelationRows::new(Arc::clone(&schema))),
            schema,
        }
    }

    /// Replace the rows (built with the same schema).
    pub fn fill(&self, rows: RelationRows) {
        match self.rows.write() {
            Ok(mut guard) => *guard = rows,
            Err(poisoned) => *poisoned.into_inner() = rows,
        }
    }

    /// Rows held.
    pub fn rows(&self) -> usize {
        self.rows.read().map_or(0, |r| r.rows)
    }
}

#[async_trait]
impl TableProvider for SharedRelation {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> datafusion::error::Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> datafusion::error::Result<Arc<dyn ExecutionPlan>> {
        let ids = event_ids_of(filters);
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let lanes = state.config().target_partitions().max(1);
        let mut partitions: Vec<Vec<RecordBatch>> = vec![Vec::new(); lanes];
        let mut next = 0;
        let rows = self
            .rows
            .read()
            .map_err(|_| DataFusionError::Internal("shared relation: lock poisoned".into()))?;
        for (id, part) in &rows.parts {
            let allowed = match (&ids, id) {
                (None, _) => true,
                (Some(ids), Some(id)) => ids.contains(id),
                (Some(_), None) => false,
            };
            if !allowed {
                continue;
            }
            let positions = wanted
                .iter()
                .map(|c| {
                    part.kept.binary_search(c).map_err(|_| {
                        DataFusionError::Internal(format!(
                            "shared relation: column {} was not kept for event id {} (the \
                             rule set's plan did not read it); run with --no-shared-scan and \
                             report this",
                            self.schema.field(*c).name(),
                            id.map_or("NULL".to_string(), |i| i.to_string()),
                        ))
                    })
                })
                .collect::<datafusion::error::Result<Vec<usize>>>()?;
            for b in &part.batches {
                partitions[next % lanes].push(b.project(&positions)?);
                next += 1;
            }
        }
        let projected = Arc::new(self.schema.project(&wanted)?);
        let source = MemorySourceConfig::try_new(&partitions, projected, None)?;
        Ok(DataSourceExec::from_data_source(source))
    }
}
