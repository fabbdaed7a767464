//! Row-level filter pushdown into Parquet scans, decided scan by scan.
//!
//! With pushdown, a Parquet scan evaluates the filter while decoding: it decodes the filter's
//! columns first, then the other columns only for the rows that pass. That pays when the scan
//! reads columns the filter does not (`event_id = 4104` before the payload), or when the filter
//! has several columns (the cheap, selective one first). It costs when the filter's one column
//! is all the scan reads (`client_ip IS NOT NULL` under `GROUP BY client_ip`, a time window
//! under `count(*)`): the column is decoded, turned into a row selection and selected again,
//! and nothing is saved. Measured on the 10.5 M-event store (see the README), such scans took
//! 0.61-0.73x the time without pushdown, and the others up to 1.4x the time.
//!
//! So local sessions turn pushdown off in their configuration and [`PushdownChoice`], a
//! physical optimizer rule that runs before DataFusion pushes filters into scans, turns it on
//! for every Parquet scan except those. Either way the filter still prunes row groups and pages
//! by their statistics.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::datasource::physical_plan::{FileScanConfigBuilder, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::{ExecutionPlan, replace_children_if_necessary};

/// The rule's name; it must run before DataFusion's rule named `FilterPushdown`.
pub const NAME: &str = "pushdown_choice";

/// See the module documentation.
#[derive(Debug, Default)]
pub struct PushdownChoice;

impl PhysicalOptimizerRule for PushdownChoice {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            // Children first: every Parquet scan gets pushdown, then a filter that reads only
            // the one column its scan reads takes it away again.
            if let Some(scan) = with_pushdown(&node, true) {
                return Ok(Transformed::yes(scan));
            }
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            if !reads_only_its_filter_column(filter) {
                return Ok(Transformed::no(node));
            }
            match with_pushdown(filter.input(), false) {
                Some(scan) => Ok(Transformed::yes(replace_children_if_necessary(
                    node,
                    vec![scan],
                )?)),
                None => Ok(Transformed::no(node)),
            }
        })
        .data()
    }

    fn name(&self) -> &str {
        NAME
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The filter's predicate reads one column, and that column is all its input gives.
fn reads_only_its_filter_column(filter: &FilterExec) -> bool {
    let columns = collect_columns(filter.predicate());
    columns.len() == 1 && filter.input().schema().fields().len() == 1
}

/// `plan` as a Parquet scan with row-level pushdown `on`; None when it is not a Parquet scan
/// or already is so.
fn with_pushdown(plan: &Arc<dyn ExecutionPlan>, on: bool) -> Option<Arc<dyn ExecutionPlan>> {
    let exec = plan.downcast_ref::<DataSourceExec>()?;
    let (config, source) = exec.downcast_to_file_source::<ParquetSource>()?;
    if source.table_parquet_options().global.pushdown_filters == on {
        return None;
    }
    let source = source.clone().with_pushdown_filters(on);
    let config = FileScanConfigBuilder::from(config.clone())
        .with_source(Arc::new(source))
        .build();
    Some(DataSourceExec::from_data_source(config))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::cells::row_lines;
    use crate::session::{SessionOptions, new_context};
    use arrow::array::{Int64Array, RecordBatch, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::{ParquetReadOptions, SessionConfig, SessionContext};

    /// A Parquet file of 3 row groups: `a` 0..30 000, `ip` set on every third row.
    fn write_file(path: &std::path::Path) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int64, false),
            Field::new("ip", DataType::Utf8, true),
        ]));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(10_000))
            .build();
        let file = std::fs::File::create(path).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        let a = Int64Array::from_iter_values(0..30_000);
        let ip: StringArray = (0..30_000)
            .map(|i| (i % 3 == 0).then(|| format!("10.0.{}.{}", i % 7, i % 11)))
            .collect();
        let batch = RecordBatch::try_new(schema, vec![Arc::new(a), Arc::new(ip)]).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    async fn text(ctx: &SessionContext, sql: &str) -> String {
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        row_lines(&batches, "NULL").unwrap().join("\n")
    }

    /// A filter whose one column is all its scan reads is evaluated above the scan; any other
    /// filter is pushed into it. Both keep pruning by statistics, and the answers are
    /// DataFusion's own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pushdown_is_chosen_per_scan_and_answers_do_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        write_file(&path);
        let path = path.to_string_lossy().into_owned();
        let ours = new_context(&SessionOptions::default()).unwrap();
        ours.register_parquet("t", &path, ParquetReadOptions::default())
            .await
            .unwrap();
        let pushed = SessionConfig::new().with_target_partitions(2);
        let mut pushed = pushed;
        pushed.options_mut().execution.parquet.pushdown_filters = true;
        let plain = SessionContext::new_with_config(pushed);
        plain
            .register_parquet("t", &path, ParquetReadOptions::default())
            .await
            .unwrap();
        let alone = [
            "SELECT count(*) FROM t WHERE a >= 25000",
            "SELECT ip, count(*) AS n FROM t WHERE ip IS NOT NULL GROUP BY ip ORDER BY n DESC, ip LIMIT 5",
        ];
        let with_others = [
            "SELECT ip FROM t WHERE a >= 29990 ORDER BY ip",
            "SELECT count(*) FROM t WHERE a >= 20000 AND ip LIKE '10.0.3.%'",
        ];
        for q in alone.iter().chain(&with_others) {
            assert_eq!(text(&ours, q).await, text(&plain, q).await, "{q}");
        }
        for (queries, filter_above) in [(alone, true), (with_others, false)] {
            for q in queries {
                let plan = text(&ours, &format!("EXPLAIN {q}")).await;
                let physical = plan.split("physical_plan").nth(1).unwrap();
                assert_eq!(physical.contains("FilterExec"), filter_above, "{q}\n{plan}");
                assert!(physical.contains("pruning_predicate="), "{q}\n{plan}");
            }
        }
    }
}
