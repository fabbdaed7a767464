//! Row-group statistics of a file's columns, and the row of a partial aggregation they give.

use arrow::array::{Array, ArrayRef, BooleanArray, UInt64Array};
use arrow::datatypes::Schema;
use datafusion::common::{Result, ScalarValue};
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::file::metadata::ParquetMetaData;

use super::Wanted;

/// One column's row-group statistics in a file, as Arrow arrays of the file's type.
pub(super) struct ColumnStats {
    mins: ArrayRef,
    maxes: ArrayRef,
    min_exact: BooleanArray,
    max_exact: BooleanArray,
    nulls: UInt64Array,
}

impl ColumnStats {
    pub(super) fn read(name: &str, arrow: &Schema, footer: &ParquetMetaData) -> Option<Self> {
        let parquet = footer.file_metadata().schema_descr();
        // A count that was not written is not taken for zero.
        let converter = StatisticsConverter::try_new(name, arrow, parquet)
            .ok()?
            .with_missing_null_counts_as_zero(false);
        let row_groups = footer.row_groups();
        Some(Self {
            mins: converter.row_group_mins(row_groups).ok()?,
            maxes: converter.row_group_maxes(row_groups).ok()?,
            min_exact: converter.row_group_is_min_value_exact(row_groups).ok()?,
            max_exact: converter.row_group_is_max_value_exact(row_groups).ok()?,
            nulls: converter.row_group_null_counts(row_groups).ok()?,
        })
    }

    /// Row group `i`'s null count, if written.
    pub(super) fn nulls(&self, i: usize) -> Option<u64> {
        self.nulls.is_valid(i).then(|| self.nulls.value(i))
    }

    /// Row group `i`'s exact minimum (`max` false) or maximum, if written and exact.
    fn bound(&self, i: usize, max: bool) -> Result<Option<ScalarValue>> {
        let (values, exact) = if max {
            (&self.maxes, &self.max_exact)
        } else {
            (&self.mins, &self.min_exact)
        };
        if !values.is_valid(i) || !exact.is_valid(i) || !exact.value(i) {
            return Ok(None);
        }
        Ok(Some(ScalarValue::try_from_array(values, i)?))
    }

    /// A null of the column's type.
    fn null(&self) -> Result<ScalarValue> {
        ScalarValue::try_new_null(self.mins.data_type())
    }
}

/// The statistics of a file's group columns and aggregated columns.
pub(super) struct FileStats {
    groups: Vec<ColumnStats>,
    /// One per aggregate (None for `count(*)`).
    aggregates: Vec<Option<ColumnStats>>,
}

impl FileStats {
    pub(super) fn read(
        footer: &ParquetMetaData,
        arrow: &Schema,
        groups: &[String],
        wanted: &[Wanted],
    ) -> Option<Self> {
        let groups = groups
            .iter()
            .map(|name| ColumnStats::read(name, arrow, footer))
            .collect::<Option<Vec<_>>>()?;
        let aggregates = wanted
            .iter()
            .map(|w| match w {
                Wanted::Rows => Some(None),
                Wanted::Values(c) | Wanted::Min(c) | Wanted::Max(c) => {
                    ColumnStats::read(c, arrow, footer).map(Some)
                }
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Self { groups, aggregates })
    }

    /// The partial aggregation's row for row group `i` of `rows` rows (group values, then one
    /// state per aggregate), or None when its statistics do not answer it.
    pub(super) fn row(
        &self,
        i: usize,
        rows: u64,
        wanted: &[Wanted],
    ) -> Result<Option<Vec<ScalarValue>>> {
        self.row_counting(i, rows, rows, wanted)
    }

    /// [`Self::row`] with `count(*)` taken as `counted` rows of the row group (those of some
    /// of its pages); the group is still the one all its `rows` rows hold. None when an
    /// aggregate other than `count(*)` would need the statistics of those rows alone.
    pub(super) fn row_counting(
        &self,
        i: usize,
        rows: u64,
        counted: u64,
        wanted: &[Wanted],
    ) -> Result<Option<Vec<ScalarValue>>> {
        let mut row = Vec::with_capacity(self.groups.len() + wanted.len());
        for column in &self.groups {
            let value = match column.nulls(i) {
                Some(n) if n == rows => column.null()?,
                Some(0) => {
                    let (Some(min), Some(max)) = (column.bound(i, false)?, column.bound(i, true)?)
                    else {
                        return Ok(None);
                    };
                    if min != max {
                        return Ok(None);
                    }
                    min
                }
                _ => return Ok(None),
            };
            row.push(value);
        }
        for (w, column) in wanted.iter().zip(&self.aggregates) {
            let value = match (w, column) {
                (Wanted::Rows, _) => ScalarValue::Int64(i64::try_from(counted).ok()),
                _ if counted != rows => return Ok(None),
                (Wanted::Values(_), Some(column)) => {
                    let Some(n) = column.nulls(i) else {
                        return Ok(None);
                    };
                    ScalarValue::Int64(i64::try_from(rows.saturating_sub(n)).ok())
                }
                (Wanted::Min(_) | Wanted::Max(_), Some(column)) => {
                    let max = matches!(w, Wanted::Max(_));
                    match column.nulls(i) {
                        Some(n) if n == rows => column.null()?,
                        Some(_) => match column.bound(i, max)? {
                            Some(value) => value,
                            None => return Ok(None),
                        },
                        None => return Ok(None),
                    }
                }
                _ => return Ok(None),
            };
            row.push(value);
        }
        Ok(Some(row))
    }
}
