//! Two dictionary key columns counted by pair of dictionary keys ([`Groups::count_pairs`]).

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, DictionaryArray};
use arrow::datatypes::Int32Type;
use datafusion::common::{DataFusionError, Result};

use super::counts::{count_in_turn, sum_tables};
use super::{Groups, key_type_error, pair_group, same_strings};
use crate::grouping::dictionary_key;

/// At most this many cells of pair counts: more, and rows are counted by group one by one.
const DENSE_CELLS: usize = 1 << 16;

/// Tables of pair counts a batch is counted into, in turn, when they fit in [`LANE_CELLS`].
const LANES: usize = 4;

/// At most this many cells in all the tables of pair counts counted in turn (64 KiB).
const LANE_CELLS: usize = 1 << 14;

impl Groups {
    /// With two dictionary key columns: the rows of each group of `keys` (their arrays) added
    /// to `counts` (indexed by group). Rows are counted by pair of dictionary keys in a table
    /// kept while the batches share their dictionaries (the batches of a column chunk), and
    /// the table is added to the groups when a dictionary changes ([`Groups::flush`]); with
    /// dictionaries too large for a table, group by group row by row (`indices` is scratch
    /// space). False, and nothing done, for other keys.
    pub(in crate::grouping) fn count_pairs(
        &mut self,
        keys: &[ArrayRef],
        counts: &mut Vec<i64>,
        indices: &mut Vec<usize>,
    ) -> Result<bool> {
        let ([a, b], [ca, cb]) = (keys, self.columns.as_slice()) else {
            return Ok(false);
        };
        if ca.data_type != dictionary_key() || cb.data_type != dictionary_key() {
            return Ok(false);
        }
        let wrong = |k: &ArrayRef| key_type_error(k.data_type());
        let da = a.as_dictionary_opt::<Int32Type>().ok_or_else(|| wrong(a))?;
        let db = b.as_dictionary_opt::<Int32Type>().ok_or_else(|| wrong(b))?;
        // A cell holds at most u32::MAX rows: the table is started anew before it could hold
        // more.
        let fits = self.dense_rows.saturating_add(da.len()) <= u32::MAX as usize;
        let same = fits
            && self
                .dense_of
                .as_ref()
                .is_some_and(|[x, y]| same_strings(x, da.values()) && same_strings(y, db.values()));
        if !same {
            self.flush(counts)?;
        }
        let (la, lb) = (da.values().len(), db.values().len());
        let size = (la + 1).saturating_mul(lb + 1);
        if size > DENSE_CELLS {
            self.assign(keys, indices)?;
            for &group in indices.iter() {
                if counts.len() <= group {
                    counts.resize(group + 1, 0);
                }
                counts[group] += 1;
            }
            return Ok(true);
        }
        // Four tables of pair counts, row i counted into table i % 4 (a row need not wait on
        // the increment of the row before it when both are of one pair), when they are small.
        let lanes = if size * LANES <= LANE_CELLS { LANES } else { 1 };
        if !same {
            // The columns' memos now follow these dictionaries.
            self.columns[0].dictionary(a)?;
            self.columns[1].dictionary(b)?;
            self.dense.clear();
            self.dense.resize(size * lanes, 0);
            self.dense_of = Some([Arc::clone(da.values()), Arc::clone(db.values())]);
            self.dense_rows = 0;
        }
        self.dense_rows += da.len();
        let [xs, ys] = &mut self.cells;
        cell_coordinates(da, xs)?;
        cell_coordinates(db, ys)?;
        let width = (lb + 1) as u32;
        for (x, &y) in xs.iter_mut().zip(ys.iter()) {
            *x = *x * width + y;
        }
        let cell = |c: u32| (c as usize).min(size - 1);
        match lanes {
            LANES => count_in_turn::<LANES, _, _>(&mut self.dense, size, xs, cell),
            _ => count_in_turn::<1, _, _>(&mut self.dense, size, xs, cell),
        }
        Ok(true)
    }

    /// The pair counts of [`Groups::count_pairs`] added to `counts` (indexed by group), and
    /// the table emptied. Before the groups are read or the dictionaries change.
    pub(in crate::grouping) fn flush(&mut self, counts: &mut Vec<i64>) -> Result<()> {
        let Some([va, vb]) = self.dense_of.take() else {
            return Ok(());
        };
        let wrong = |k: &ArrayRef| key_type_error(k.data_type());
        let va_strings = va.as_string_opt::<i32>().ok_or_else(|| wrong(&va))?;
        let vb_strings = vb.as_string_opt::<i32>().ok_or_else(|| wrong(&vb))?;
        let (la, lb) = (va.len(), vb.len());
        let width = lb + 1;
        let mut dense = std::mem::take(&mut self.dense);
        let size = (la + 1) * width;
        sum_tables(&mut dense, size);
        for (cell, &n) in dense[..size.min(dense.len())].iter().enumerate() {
            if n == 0 {
                continue;
            }
            let (i, j) = (cell / width, cell % width);
            let [ca, cb] = &mut self.columns[..] else {
                return Err(DataFusionError::Internal(
                    "pair counts without two key columns".into(),
                ));
            };
            let x = ca.number(i, la, va_strings);
            let y = cb.number(j, lb, vb_strings);
            let group = pair_group(&mut self.pairs, &mut self.tuples, x, y) as usize;
            if counts.len() <= group {
                counts.resize(group + 1, 0);
            }
            counts[group] += i64::from(n);
        }
        self.dense = dense;
        self.dense.clear();
        Ok(())
    }
}

/// Each row's cell coordinate of the dictionary column `dict` into `out`: its key, or the
/// dictionary's length for a null row. An error for a non-null key beyond the dictionary.
fn cell_coordinates(dict: &DictionaryArray<Int32Type>, out: &mut Vec<u32>) -> Result<()> {
    let len = dict.values().len() as u32;
    let keys = dict.keys();
    out.clear();
    out.extend(keys.values().iter().map(|&k| (k as u32).min(len)));
    // Keys at the length: beyond the dictionary, unless the row is null.
    let mut beyond = out.iter().filter(|&&c| c == len).count();
    if let Some(valid) = keys.nulls().filter(|n| n.null_count() > 0) {
        // Only the null rows are visited: the zero bits of each word of validity.
        let bits = valid
            .inner()
            .inner()
            .bit_chunks(valid.offset(), valid.len());
        let rest = (1u64 << bits.remainder_len()) - 1;
        let words = bits
            .iter()
            .chain(std::iter::once(bits.remainder_bits() | !rest));
        for (block, word) in out.chunks_mut(64).zip(words) {
            let mut nulls = !word;
            while nulls != 0 {
                if let Some(slot) = block.get_mut(nulls.trailing_zeros() as usize) {
                    beyond -= usize::from(*slot == len);
                    *slot = len;
                }
                nulls &= nulls - 1;
            }
        }
    }
    if beyond > 0 {
        return Err(DataFusionError::Internal(format!(
            "{beyond} dictionary keys out of range ({len} values)"
        )));
    }
    Ok(())
}
