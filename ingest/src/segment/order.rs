//! The clustering key and the order of a segment's rows: a sort run ordered by integer keys
//! ([`cluster_order`]), and spilled runs merged by the key's row format ([`RunCursor`]); the
//! two orders are the same (a test holds them together).

use std::fs::File;
use std::io::BufReader;

use arrow::array::ArrayRef;
use arrow::ipc::reader::StreamReader;
use arrow::record_batch::RecordBatch;
use arrow::row::{RowConverter, Rows, SortField};

use crate::error::{IngestError, Result};
use crate::schema::{col, events_schema};

/// The columns a segment's rows are sorted by, in order.
pub const CLUSTER_KEY: [&str; 5] = [
    col::CHANNEL,
    col::EVENT_ID,
    col::TIME_CREATED,
    col::FILE_ID,
    col::RECORD_ID,
];

/// The clustering key's columns and a row converter for them.
pub(super) fn key_converter() -> Result<(Vec<usize>, RowConverter)> {
    let schema = events_schema();
    let key: Vec<usize> = CLUSTER_KEY
        .iter()
        .filter_map(|name| schema.index_of(name).ok())
        .collect();
    let converter = RowConverter::new(
        key.iter()
            .map(|&i| SortField::new(schema.field(i).data_type().clone()))
            .collect(),
    )?;
    Ok((key, converter))
}

/// The clustering key of a batch's rows, in the row format (compared as bytes).
pub(super) fn key_rows(
    key: &[usize],
    converter: &RowConverter,
    batch: &RecordBatch,
) -> Result<Rows> {
    let columns: Vec<ArrayRef> = key.iter().map(|&i| batch.column(i).clone()).collect();
    Ok(converter.convert_columns(&columns)?)
}

fn schema_error(message: String) -> IngestError {
    IngestError::Arrow(arrow::error::ArrowError::SchemaError(message))
}

/// The order of a run's rows by the clustering key: `(batch, row)` pairs, ascending.
///
/// The same order as the key's row format (which the merge of spilled runs compares): each
/// column ascending, nulls first, channels by their text. Channels are ranked once per run
/// (a batch's dictionary holds a handful), so the sort compares integers, not rows of bytes.
pub fn cluster_order(batches: &[RecordBatch]) -> Result<Vec<(usize, usize)>> {
    use arrow::array::{Array, AsArray, DictionaryArray};
    use arrow::datatypes::{Int32Type, TimestampMicrosecondType, UInt32Type, UInt64Type};
    let column = |b: &RecordBatch, name: &str| {
        b.column_by_name(name)
            .cloned()
            .ok_or_else(|| schema_error(format!("a sort run has no column {name}")))
    };
    // Every channel of the run, ranked by its text (1-based: 0 is null).
    let mut channels: Vec<&str> = Vec::new();
    let mut dicts: Vec<ArrayRef> = Vec::with_capacity(batches.len());
    for b in batches {
        dicts.push(column(b, col::CHANNEL)?);
    }
    let typed: Vec<&DictionaryArray<Int32Type>> = dicts
        .iter()
        .map(|d| {
            d.as_dictionary_opt::<Int32Type>()
                .ok_or_else(|| schema_error("channel is not a dictionary".into()))
        })
        .collect::<Result<_>>()?;
    for d in &typed {
        channels.extend(d.values().as_string::<i32>().iter().flatten());
    }
    channels.sort_unstable();
    channels.dedup();
    let rank = |s: &str| channels.binary_search(&s).map_or(0, |i| i as u32 + 1);

    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct Key {
        channel: u32,
        event_id: Option<u32>,
        time: Option<i64>,
        file_id: u32,
        record_id: u64,
        at: (u32, u32),
    }
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let mut keys: Vec<Key> = Vec::with_capacity(rows);
    for (b, (batch, dict)) in batches.iter().zip(&typed).enumerate() {
        let values = dict.values().as_string::<i32>();
        let ranks: Vec<u32> = (0..values.len())
            .map(|i| {
                if values.is_null(i) {
                    0
                } else {
                    rank(values.value(i))
                }
            })
            .collect();
        let ids = column(batch, col::EVENT_ID)?;
        let ids = ids.as_primitive::<UInt32Type>();
        let times = column(batch, col::TIME_CREATED)?;
        let times = times.as_primitive::<TimestampMicrosecondType>();
        let files = column(batch, col::FILE_ID)?;
        let files = files.as_primitive::<UInt32Type>();
        let records = column(batch, col::RECORD_ID)?;
        let records = records.as_primitive::<UInt64Type>();
        for i in 0..batch.num_rows() {
            let channel = if dict.is_null(i) {
                0
            } else {
                usize::try_from(dict.keys().value(i))
                    .ok()
                    .and_then(|k| ranks.get(k).copied())
                    .unwrap_or(0)
            };
            keys.push(Key {
                channel,
                event_id: ids.is_valid(i).then(|| ids.value(i)),
                time: times.is_valid(i).then(|| times.value(i)),
                file_id: files.value(i),
                record_id: records.value(i),
                at: (b as u32, i as u32),
            });
        }
    }
    keys.sort_unstable();
    Ok(keys
        .into_iter()
        .map(|k| (k.at.0 as usize, k.at.1 as usize))
        .collect())
}

/// A spilled sorted run being merged: its reader, and the batch at its head with its key rows.
pub(super) struct RunCursor {
    pub(super) reader: StreamReader<BufReader<File>>,
    /// Index of the head batch among the merge's live batches, its keys, the next row.
    pub(super) head: Option<(usize, Rows)>,
    pub(super) pos: usize,
}

impl RunCursor {
    /// Load the next batch (into `live`); `head` is None once the run is done.
    pub(super) fn advance(
        &mut self,
        key: &[usize],
        converter: &RowConverter,
        live: &mut Vec<RecordBatch>,
    ) -> Result<()> {
        self.head = None;
        self.pos = 0;
        for batch in self.reader.by_ref() {
            let batch = batch?;
            if batch.num_rows() == 0 {
                continue;
            }
            let rows = key_rows(key, converter, &batch)?;
            live.push(batch);
            self.head = Some((live.len() - 1, rows));
            break;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::AsArray;
    use arrow::array::UInt32Array;
    use arrow::compute::interleave_record_batch;
    use arrow::datatypes::UInt32Type;
    use std::sync::Arc;

    fn batch(channels: &[&str], ids: &[u32], first_record: u64) -> RecordBatch {
        let schema = events_schema();
        let n = ids.len();
        let columns: Vec<ArrayRef> = schema
            .fields()
            .iter()
            .map(|f| match f.name().as_str() {
                col::CHANNEL => {
                    let a: arrow::array::DictionaryArray<arrow::datatypes::Int32Type> =
                        channels.iter().copied().collect();
                    Arc::new(a) as ArrayRef
                }
                col::EVENT_ID => Arc::new(UInt32Array::from(ids.to_vec())) as ArrayRef,
                col::FILE_ID => Arc::new(UInt32Array::from(vec![1; n])) as ArrayRef,
                col::RECORD_ID => Arc::new(arrow::array::UInt64Array::from_iter_values(
                    (first_record..first_record + n as u64).rev(),
                )) as ArrayRef,
                _ => arrow::array::new_null_array(f.data_type(), n),
            })
            .collect();
        RecordBatch::try_new(schema, columns).expect("batch")
    }

    /// Rows of several batches come out ordered by channel, then event id, then the tie
    /// breakers (record_id here, as time is null).
    #[test]
    fn cluster_order_sorts_across_batches_by_the_key() {
        let a = batch(&["Security", "System", "Security"], &[4625, 7036, 4624], 10);
        let b = batch(&["Application", "Security"], &[1000, 4624], 0);
        let order = cluster_order(&[a.clone(), b.clone()]).expect("order");
        assert_eq!(order, vec![(1, 0), (1, 1), (0, 2), (0, 0), (0, 1)]);
        let sorted = interleave_record_batch(&[&a, &b], &order).expect("take");
        let ids = sorted
            .column_by_name(col::EVENT_ID)
            .and_then(|c| c.as_primitive_opt::<UInt32Type>())
            .expect("ids");
        assert_eq!(ids.values().to_vec(), vec![1000, 4624, 4624, 4625, 7036]);
        let channels = arrow::compute::cast(
            sorted.column_by_name(col::CHANNEL).expect("channel"),
            &arrow::datatypes::DataType::Utf8,
        )
        .expect("cast");
        let channels: Vec<&str> = channels.as_string::<i32>().iter().flatten().collect();
        assert_eq!(
            channels,
            vec!["Application", "Security", "Security", "Security", "System"]
        );
    }

    /// The merge of spilled runs compares the key's row format: the order of a run must be
    /// that same order, nulls (channel, event id, time) first, on batches whose dictionaries
    /// differ and repeat values.
    #[test]
    fn cluster_order_is_the_row_format_order() {
        use arrow::array::{DictionaryArray, TimestampMicrosecondArray, UInt64Array};
        use arrow::datatypes::Int32Type;
        let names = [
            None,
            Some("System"),
            Some("Security"),
            Some("Application"),
            Some(""),
        ];
        let make = |seed: u64, n: usize| {
            let mut x = seed;
            let mut next = || {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 33) as usize
            };
            let mut channel = Vec::new();
            let mut ids = Vec::new();
            let mut times = Vec::new();
            let mut records = Vec::new();
            for i in 0..n {
                channel.push(names[next() % names.len()]);
                ids.push((next() % 4 != 0).then(|| (next() % 3) as u32));
                times.push((next() % 5 != 0).then(|| (next() % 4) as i64 - 2));
                records.push((next() % 3) as u64 * 1000 + i as u64);
            }
            let schema = events_schema();
            let columns: Vec<ArrayRef> = schema
                .fields()
                .iter()
                .map(|f| match f.name().as_str() {
                    col::CHANNEL => Arc::new(
                        channel
                            .iter()
                            .copied()
                            .collect::<DictionaryArray<Int32Type>>(),
                    ) as ArrayRef,
                    col::EVENT_ID => Arc::new(UInt32Array::from(ids.clone())) as ArrayRef,
                    col::TIME_CREATED => Arc::new(
                        TimestampMicrosecondArray::from(times.clone()).with_timezone("UTC"),
                    ) as ArrayRef,
                    col::FILE_ID => Arc::new(UInt32Array::from(vec![seed as u32 % 2; n])),
                    col::RECORD_ID => Arc::new(UInt64Array::from(records.clone())) as ArrayRef,
                    _ => arrow::array::new_null_array(f.data_type(), n),
                })
                .collect();
            RecordBatch::try_new(schema, columns).expect("batch")
        };
        let batches: Vec<RecordBatch> = (0..4).map(|s| make(s, 300)).collect();
        let (key, converter) = key_converter().expect("converter");
        let rows: Vec<Rows> = batches
            .iter()
            .map(|b| key_rows(&key, &converter, b).expect("rows"))
            .collect();
        let order = cluster_order(&batches).expect("order");
        assert_eq!(order.len(), 1200);
        for w in order.windows(2) {
            let (a, b) = (rows[w[0].0].row(w[0].1), rows[w[1].0].row(w[1].1));
            assert!(a <= b, "{:?} before {:?}", w[0], w[1]);
        }
    }
}
