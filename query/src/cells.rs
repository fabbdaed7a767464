//! Turning Arrow values into what people and scripts read: text for tables and CSV, JSON values
//! for JSON output. Times are ISO-8601 in UTC (`2024-11-14T16:15:55.687901Z`) or in a chosen
//! zone; JSON-function unions show the value they hold.

use std::borrow::Cow;

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, StringArray, UInt64Array,
    UnionArray,
};
use arrow::compute::{CastOptions, cast_with_options};
use arrow::datatypes::{DataType, TimeUnit, UnionMode};
use arrow::error::ArrowError;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// One value, typed enough to be written as text or JSON.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    UInt(u64),
    Float(f64),
    /// Text that came from the data (strings): the one kind CSV output guards against formulas.
    Text(Cow<'a, str>),
    /// Text rendered by evtxsql (times, lists, structs).
    Rendered(String),
}

impl Cell<'_> {
    /// The value as text; NULL as `null_text`.
    pub fn to_text(&self, null_text: &str) -> String {
        match self {
            Cell::Null => null_text.to_string(),
            Cell::Bool(b) => b.to_string(),
            Cell::Int(v) => v.to_string(),
            Cell::UInt(v) => v.to_string(),
            Cell::Float(v) => v.to_string(),
            Cell::Text(s) => s.to_string(),
            Cell::Rendered(s) => s.clone(),
        }
    }

    /// The value as JSON: numbers stay numbers, NaN and infinities become null.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value;
        match self {
            Cell::Null => Value::Null,
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Int(v) => Value::from(*v),
            Cell::UInt(v) => Value::from(*v),
            Cell::Float(v) => serde_json::Number::from_f64(*v).map_or(Value::Null, Value::Number),
            Cell::Text(s) => Value::String(s.to_string()),
            Cell::Rendered(s) => Value::String(s.clone()),
        }
    }

    /// True for numbers (right-aligned in tables).
    pub fn is_numeric(&self) -> bool {
        matches!(self, Cell::Int(_) | Cell::UInt(_) | Cell::Float(_))
    }
}

/// A CSV field that a spreadsheet would run as a formula gets a leading `'`.
pub fn neutralize_formula(text: &str) -> Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        Cow::Owned(format!("'{text}"))
    } else {
        Cow::Borrowed(text)
    }
}

/// Reads the cells of one column of one batch.
pub struct ColumnCells<'a> {
    kind: Kind<'a>,
}

enum Kind<'a> {
    Bool(BooleanArray),
    Int(Int64Array),
    UInt(UInt64Array),
    Float(Float64Array),
    Str(StringArray),
    Time {
        values: Int64Array,
        unit: TimeUnit,
        tz: Option<Tz>,
    },
    Union {
        array: &'a UnionArray,
        children: Vec<Option<ColumnCells<'a>>>,
    },
    Other(ArrayFormatter<'a>),
}

const FORMAT: FormatOptions<'static> = FormatOptions::new().with_null("");

/// Each row of `batches` as one line of text, cells between `|`, nulls as `null_text`, times in
/// UTC: a compact form to compare results by (tests, diagnostics).
pub fn row_lines(
    batches: &[arrow::record_batch::RecordBatch],
    null_text: &str,
) -> Result<Vec<String>, ArrowError> {
    let mut out = Vec::new();
    for b in batches {
        let cols = b
            .columns()
            .iter()
            .map(|c| ColumnCells::new(c.as_ref(), None))
            .collect::<Result<Vec<_>, _>>()?;
        for r in 0..b.num_rows() {
            let cells: Vec<String> = cols.iter().map(|c| c.cell(r).to_text(null_text)).collect();
            out.push(cells.join("|"));
        }
    }
    Ok(out)
}

fn cast(array: &dyn Array, to: &DataType) -> Result<ArrayRef, ArrowError> {
    let opts = CastOptions {
        safe: true,
        ..Default::default()
    };
    cast_with_options(&arrow::array::make_array(array.to_data()), to, &opts)
}

impl<'a> ColumnCells<'a> {
    /// Prepare to read `array`; times are shown in `tz` (None: UTC with a `Z`).
    pub fn new(array: &'a dyn Array, tz: Option<Tz>) -> Result<Self, ArrowError> {
        use DataType::*;
        let kind = match array.data_type() {
            Boolean => Kind::Bool(array.as_boolean().clone()),
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 => {
                Kind::Int(cast(array, &Int64)?.as_primitive().clone())
            }
            UInt64 => Kind::UInt(cast(array, &UInt64)?.as_primitive().clone()),
            Float16 | Float32 | Float64 => {
                Kind::Float(cast(array, &Float64)?.as_primitive().clone())
            }
            Utf8 | LargeUtf8 | Utf8View => {
                Kind::Str(cast(array, &Utf8)?.as_string::<i32>().clone())
            }
            Dictionary(_, v) if matches!(**v, Utf8 | LargeUtf8 | Utf8View) => {
                Kind::Str(cast(array, &Utf8)?.as_string::<i32>().clone())
            }
            Timestamp(unit, _) => Kind::Time {
                values: cast(array, &Int64)?.as_primitive().clone(),
                unit: *unit,
                tz,
            },
            Union(fields, _) => {
                let union = array
                    .as_any()
                    .downcast_ref::<UnionArray>()
                    .ok_or_else(|| ArrowError::CastError("not a union array".into()))?;
                let max_id = fields.iter().map(|(id, _)| id).max().unwrap_or(0);
                let mut children: Vec<Option<ColumnCells<'a>>> = Vec::new();
                for id in 0..=max_id {
                    let child = if fields.iter().any(|(i, _)| i == id) {
                        Some(ColumnCells::new(union.child(id).as_ref(), tz)?)
                    } else {
                        None
                    };
                    children.push(child);
                }
                Kind::Union {
                    array: union,
                    children,
                }
            }
            _ => Kind::Other(ArrayFormatter::try_new(array, &FORMAT)?),
        };
        Ok(ColumnCells { kind })
    }

    /// The value at `row`.
    pub fn cell(&self, row: usize) -> Cell<'_> {
        match &self.kind {
            Kind::Bool(a) => opt(a, row, |a| Cell::Bool(a.value(row))),
            Kind::Int(a) => opt(a, row, |a| Cell::Int(a.value(row))),
            Kind::UInt(a) => opt(a, row, |a| Cell::UInt(a.value(row))),
            Kind::Float(a) => opt(a, row, |a| Cell::Float(a.value(row))),
            Kind::Str(a) => opt(a, row, |a| Cell::Text(Cow::Borrowed(a.value(row)))),
            Kind::Time { values, unit, tz } => opt(values, row, |a| {
                Cell::Rendered(format_time(a.value(row), *unit, *tz))
            }),
            Kind::Union { array, children } => {
                if array.is_null(row) {
                    return Cell::Null;
                }
                let id = array.type_id(row);
                let idx = match array.data_type() {
                    DataType::Union(_, UnionMode::Dense) => array.value_offset(row),
                    _ => row,
                };
                match children.get(usize::try_from(id).unwrap_or(usize::MAX)) {
                    Some(Some(child)) => child.cell(idx),
                    _ => Cell::Null,
                }
            }
            Kind::Other(f) => {
                let text = f.value(row).to_string();
                if text.is_empty() {
                    Cell::Null
                } else {
                    Cell::Rendered(text)
                }
            }
        }
    }
}

fn opt<'b, A: Array>(a: &'b A, row: usize, f: impl FnOnce(&'b A) -> Cell<'b>) -> Cell<'b> {
    if row >= a.len() || a.is_null(row) {
        Cell::Null
    } else {
        f(a)
    }
}

/// ISO-8601 with the precision of the unit: `2024-11-14T16:15:55.687901Z`, or with the offset
/// of `tz` (`2024-11-14T17:15:55.687901+01:00`).
pub fn format_time(value: i64, unit: TimeUnit, tz: Option<Tz>) -> String {
    let (dt, frac): (Option<DateTime<Utc>>, &str) = match unit {
        TimeUnit::Second => (DateTime::from_timestamp(value, 0), ""),
        TimeUnit::Millisecond => (DateTime::from_timestamp_millis(value), "%.3f"),
        TimeUnit::Microsecond => (DateTime::from_timestamp_micros(value), "%.6f"),
        TimeUnit::Nanosecond => (Some(DateTime::from_timestamp_nanos(value)), "%.9f"),
    };
    let Some(dt) = dt else {
        return value.to_string();
    };
    match tz {
        None => dt.format(&format!("%Y-%m-%dT%H:%M:%S{frac}Z")).to_string(),
        Some(tz) => dt
            .with_timezone(&tz)
            .format(&format!("%Y-%m-%dT%H:%M:%S{frac}%:z"))
            .to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_and_formulas() {
        assert_eq!(
            format_time(1_731_600_955_687_901, TimeUnit::Microsecond, None),
            "2024-11-14T16:15:55.687901Z"
        );
        assert_eq!(
            format_time(
                1_731_600_955_687_901,
                TimeUnit::Microsecond,
                Some(chrono_tz::Europe::Berlin)
            ),
            "2024-11-14T17:15:55.687901+01:00"
        );
        assert_eq!(
            format_time(0, TimeUnit::Second, None),
            "1970-01-01T00:00:00Z"
        );
        assert_eq!(neutralize_formula("=1+1"), "'=1+1");
        assert_eq!(neutralize_formula("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(neutralize_formula("\tx"), "'\tx");
        assert_eq!(neutralize_formula("plain"), "plain");
    }
}
