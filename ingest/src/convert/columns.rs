//! The column builders of the events table that are ours: dictionary columns (provider,
//! channel, computer, provider GUID) and the promoted columns, filled only where a row has a
//! value.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, StringBuilder, UInt8Builder, UInt16Builder, UInt32Builder, UInt64Builder,
};

use crate::mapping::Promoted;

pub(super) enum PromotedBuilder {
    Text(StringBuilder),
    U8(UInt8Builder),
    U16(UInt16Builder),
    U32(UInt32Builder),
    U64(UInt64Builder),
}

/// A value on its way into a promoted column: a number, or text at a range of the row's text
/// buffer (one buffer for every promoted text of a row: no allocation per value).
#[derive(Clone, Copy)]
pub(super) enum Value {
    Text(u32, u32),
    Num(u64),
}

impl PromotedBuilder {
    pub(super) fn new(p: Promoted, cap: usize) -> Self {
        use arrow::datatypes::DataType as D;
        match p.data_type() {
            D::UInt8 => PromotedBuilder::U8(UInt8Builder::with_capacity(cap)),
            D::UInt16 => PromotedBuilder::U16(UInt16Builder::with_capacity(cap)),
            D::UInt32 => PromotedBuilder::U32(UInt32Builder::with_capacity(cap)),
            D::UInt64 => PromotedBuilder::U64(UInt64Builder::with_capacity(cap)),
            _ => PromotedBuilder::Text(StringBuilder::with_capacity(cap, cap * 8)),
        }
    }

    fn len(&self) -> usize {
        use arrow::array::ArrayBuilder;
        match self {
            PromotedBuilder::Text(b) => b.len(),
            PromotedBuilder::U8(b) => b.len(),
            PromotedBuilder::U16(b) => b.len(),
            PromotedBuilder::U32(b) => b.len(),
            PromotedBuilder::U64(b) => b.len(),
        }
    }

    /// Nulls up to row `rows` (exclusive): most records fill no promoted column, so a column
    /// is written only where it has a value, its gaps as runs of nulls.
    fn pad(&mut self, rows: usize) {
        let n = rows.saturating_sub(self.len());
        if n == 0 {
            return;
        }
        match self {
            PromotedBuilder::Text(b) => b.append_nulls(n),
            PromotedBuilder::U8(b) => b.append_nulls(n),
            PromotedBuilder::U16(b) => b.append_nulls(n),
            PromotedBuilder::U32(b) => b.append_nulls(n),
            PromotedBuilder::U64(b) => b.append_nulls(n),
        }
    }

    /// The value of row `row` (rows before it that got none are null); `text` holds the
    /// row's promoted texts.
    pub(super) fn set(&mut self, row: usize, v: &Value, text: &str) {
        self.pad(row);
        match (self, v) {
            (PromotedBuilder::Text(b), Value::Text(start, end)) => {
                b.append_value(text.get(*start as usize..*end as usize).unwrap_or_default())
            }
            (PromotedBuilder::Text(b), Value::Num(n)) => b.append_value(n.to_string()),
            (PromotedBuilder::U8(b), Value::Num(n)) => b.append_option(u8::try_from(*n).ok()),
            (PromotedBuilder::U16(b), Value::Num(n)) => b.append_option(u16::try_from(*n).ok()),
            (PromotedBuilder::U32(b), Value::Num(n)) => b.append_option(u32::try_from(*n).ok()),
            (PromotedBuilder::U64(b), Value::Num(n)) => b.append_value(*n),
            (PromotedBuilder::U8(b), _) => b.append_null(),
            (PromotedBuilder::U16(b), _) => b.append_null(),
            (PromotedBuilder::U32(b), _) => b.append_null(),
            (PromotedBuilder::U64(b), _) => b.append_null(),
        }
    }

    /// The column of `rows` rows.
    pub(super) fn finish(&mut self, rows: usize) -> ArrayRef {
        self.pad(rows);
        match self {
            PromotedBuilder::Text(b) => Arc::new(b.finish()),
            PromotedBuilder::U8(b) => Arc::new(b.finish()),
            PromotedBuilder::U16(b) => Arc::new(b.finish()),
            PromotedBuilder::U32(b) => Arc::new(b.finish()),
            PromotedBuilder::U64(b) => Arc::new(b.finish()),
        }
    }
}

/// A dictionary column of text: values in the order first seen, a key per row. The last
/// row's value is compared first: a batch's rows come in runs of one provider, channel and
/// computer, so most rows cost one comparison and no hashing.
pub(super) struct DictColumn {
    keys: arrow::array::Int32Builder,
    values: StringBuilder,
    index: crate::FastMap<Box<str>, i32>,
    last: Option<i32>,
}

impl DictColumn {
    pub(super) fn with_capacity(cap: usize) -> Self {
        DictColumn {
            keys: arrow::array::Int32Builder::with_capacity(cap),
            values: StringBuilder::new(),
            index: crate::FastMap::default(),
            last: None,
        }
    }

    /// The text of value `k`.
    fn value(&self, k: i32) -> Option<&[u8]> {
        let offsets = self.values.offsets_slice();
        let k = usize::try_from(k).ok()?;
        let (start, end) = (*offsets.get(k)?, *offsets.get(k + 1)?);
        self.values
            .values_slice()
            .get(usize::try_from(start).ok()?..usize::try_from(end).ok()?)
    }

    pub(super) fn append(&mut self, v: Option<&str>) {
        let Some(s) = v else {
            self.keys.append_null();
            return;
        };
        if let Some(k) = self.last
            && self.value(k) == Some(s.as_bytes())
        {
            self.keys.append_value(k);
            return;
        }
        let k = match self.index.get(s) {
            Some(&k) => k,
            None => {
                // More than i32::MAX distinct values cannot happen within one batch.
                let Ok(k) = i32::try_from(self.index.len()) else {
                    self.keys.append_null();
                    return;
                };
                self.values.append_value(s);
                self.index.insert(s.into(), k);
                k
            }
        };
        self.last = Some(k);
        self.keys.append_value(k);
    }

    pub(super) fn finish(&mut self) -> Result<ArrayRef, arrow::error::ArrowError> {
        self.index.clear();
        self.last = None;
        let keys = self.keys.finish();
        let values = Arc::new(self.values.finish());
        Ok(Arc::new(arrow::array::DictionaryArray::try_new(
            keys, values,
        )?))
    }
}

pub(super) fn append_text(b: &mut StringBuilder, v: Option<&str>) {
    match v {
        Some(s) if !s.is_empty() => b.append_value(s),
        _ => b.append_null(),
    }
}
