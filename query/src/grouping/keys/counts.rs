//! Rows counted per dictionary key ([`per_key_counts`]).

use std::ops::AddAssign;

use arrow::array::{Array, Int32Array};
use datafusion::common::{DataFusionError, Result};

/// Count tables a batch is counted into when it has rows enough: row i goes to table i % 4, so
/// that a row does not wait on the increment of the row before it when both have the same key
/// (runs of one key are common: the store is clustered).
const LANES: usize = 4;

/// The rows of each key of `keys` (keys into a dictionary of `len` values) counted into
/// `tables` (scratch space, reused; its first `len` cells are the counts afterwards), and the
/// number of null rows, which are not counted. An error when a key of a non-null row is beyond
/// the dictionary (the key of a null row may be anything).
pub(super) fn per_key_counts(tables: &mut Vec<i64>, keys: &Int32Array, len: usize) -> Result<i64> {
    // One cell more than the dictionary: where keys beyond it are counted (clamped: no branch
    // per row).
    let width = len + 1;
    tables.clear();
    let nulls = keys.null_count();
    let valid = keys.nulls().filter(|_| nulls > 0);
    // Summing four tables costs four times the dictionary: worth it only with the rows to
    // spare.
    if width * LANES <= keys.len() {
        tables.resize(width * LANES, 0);
        count_lanes::<LANES>(tables, width, keys.values(), valid);
        sum_tables(tables, width);
        tables.truncate(width);
    } else {
        tables.resize(width, 0);
        count_lanes::<1>(tables, width, keys.values(), valid);
    }
    if tables[len] > 0 {
        return Err(DataFusionError::Internal(format!(
            "dictionary key out of range ({len} values)"
        )));
    }
    Ok(nulls as i64)
}

/// Each row of `keys` added to table `row % L` of `tables` (`L` tables of `width` cells, the
/// last cell of each for keys beyond the others): 1 per row, or the row's validity bit.
fn count_lanes<const L: usize>(
    tables: &mut [i64],
    width: usize,
    keys: &[i32],
    valid: Option<&arrow::buffer::NullBuffer>,
) {
    let last = width - 1;
    let cell = |key: i32| (key as u32 as usize).min(last);
    match valid {
        None => count_in_turn::<L, _, _>(tables, width, keys, cell),
        // A row adds its validity bit to its key's count, without a branch: a null check per
        // row took 3/4 of the count.
        Some(valid) => {
            let mut chunks = tables.chunks_exact_mut(width);
            let mut lanes: [&mut [i64]; L] =
                std::array::from_fn(|_| chunks.next().unwrap_or_default());
            let bits = valid
                .inner()
                .inner()
                .bit_chunks(valid.offset(), valid.len());
            let words = bits.iter().chain(std::iter::once(bits.remainder_bits()));
            for (rows, word) in keys.chunks(64).zip(words) {
                let mut groups = rows.chunks_exact(L);
                let mut shift = 0;
                for group in &mut groups {
                    for (lane, &key) in lanes.iter_mut().zip(group) {
                        lane[cell(key)] += ((word >> shift) & 1) as i64;
                        shift += 1;
                    }
                }
                for &key in groups.remainder() {
                    lanes[0][cell(key)] += ((word >> shift) & 1) as i64;
                    shift += 1;
                }
            }
        }
    }
}

/// Each row counted once into its cell of `tables` (`L` tables of `width` cells, row i into
/// table i % L; `cell` gives a row's cell, below `width`). The tables are summed by
/// [`sum_tables`].
pub(super) fn count_in_turn<const L: usize, T, K>(
    tables: &mut [T],
    width: usize,
    rows: &[K],
    cell: impl Fn(K) -> usize,
) where
    T: Copy + AddAssign + From<u8>,
    K: Copy,
{
    let mut chunks = tables.chunks_exact_mut(width);
    let mut lanes: [&mut [T]; L] = std::array::from_fn(|_| chunks.next().unwrap_or_default());
    let mut groups = rows.chunks_exact(L);
    for group in &mut groups {
        for (lane, &row) in lanes.iter_mut().zip(group) {
            lane[cell(row)] += T::from(1);
        }
    }
    for &row in groups.remainder() {
        lanes[0][cell(row)] += T::from(1);
    }
}

/// The first of `tables` (tables of `width` cells) made the sum of them all.
pub(super) fn sum_tables<T: Copy + AddAssign>(tables: &mut [T], width: usize) {
    let (first, rest) = tables.split_at_mut(width.min(tables.len()));
    for table in rest.chunks_exact(width) {
        for (sum, &n) in first.iter_mut().zip(table) {
            *sum += n;
        }
    }
}
