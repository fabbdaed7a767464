//! The key columns of a [`super::DictionaryAggregateExec`]: each column's values numbered
//! ([`Strings`], [`Numbers`], [`KeyColumn`]) and the groups made of them ([`Groups`]).

use std::sync::Arc;

use arrow::array::{
    Array, ArrayRef, AsArray, DictionaryArray, Int8Array, Int16Array, Int32Array, StringArray,
    StringViewArray, UInt8Array, UInt16Array, UInt32Array,
};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Int8Type, Int16Type, Int32Type, UInt8Type, UInt16Type, UInt32Type,
};
use datafusion::common::{DataFusionError, HashMap, Result};

use super::{dictionary_key, integer_key};
use counts::per_key_counts;

mod counts;
mod pairs;

/// No group assigned yet to a dictionary key (see [`KeyColumn::memo`]).
const UNSET: u32 = u32::MAX;

/// The distinct strings of one key column, numbered in order of arrival; null has its number.
#[derive(Default)]
struct Strings {
    ids: HashMap<Box<str>, u32>,
    /// Number → its string (None for null).
    names: Vec<Option<Box<str>>>,
    null: Option<u32>,
    /// Bytes of the strings held.
    bytes: usize,
}

impl Strings {
    fn len(&self) -> usize {
        self.names.len()
    }

    fn size(&self) -> usize {
        // Each string is held twice (map key and name) plus the table's and vector's slots.
        2 * self.bytes
            + self.ids.capacity() * (size_of::<(Box<str>, u32)>() + 1)
            + self.names.capacity() * size_of::<Option<Box<str>>>()
    }

    fn intern(&mut self, text: &str) -> u32 {
        if let Some(&id) = self.ids.get(text) {
            return id;
        }
        let id = self.names.len() as u32;
        self.bytes += text.len();
        self.ids.insert(text.into(), id);
        self.names.push(Some(text.into()));
        id
    }

    fn null(&mut self) -> u32 {
        *self.null.get_or_insert_with(|| {
            self.names.push(None);
            (self.names.len() - 1) as u32
        })
    }

    /// A column of `data_type` whose row i is the string numbered `ids[i]`.
    fn column(&self, ids: &[u32], data_type: &DataType) -> Result<ArrayRef> {
        let name = |id: &u32| self.names[*id as usize].as_deref();
        Ok(match data_type {
            DataType::Utf8 => Arc::new(ids.iter().map(name).collect::<StringArray>()),
            DataType::Utf8View => Arc::new(ids.iter().map(name).collect::<StringViewArray>()),
            _ => {
                let keys: Int32Array = ids.iter().map(|id| name(id).map(|_| *id as i32)).collect();
                let values: StringArray = self
                    .names
                    .iter()
                    .map(|n| Some(n.as_deref().unwrap_or("")))
                    .collect();
                Arc::new(DictionaryArray::<Int32Type>::try_new(
                    keys,
                    Arc::new(values),
                )?)
            }
        })
    }
}

/// The distinct values of one integer key column, numbered in order of arrival; null has its
/// number. A value below 65 536 finds its number in a table, others in a map.
#[derive(Default)]
struct Numbers {
    small: Vec<u32>,
    large: HashMap<u32, u32>,
    /// Number → its value as 32 bits (None for null).
    values: Vec<Option<u32>>,
    null: Option<u32>,
}

impl Numbers {
    fn size(&self) -> usize {
        self.small.capacity() * size_of::<u32>()
            + self.large.capacity() * (size_of::<(u32, u32)>() + 1)
            + self.values.capacity() * size_of::<Option<u32>>()
    }

    fn number(&mut self, value: Option<u32>) -> u32 {
        let Some(v) = value else {
            return *self.null.get_or_insert_with(|| {
                self.values.push(None);
                (self.values.len() - 1) as u32
            });
        };
        let next = self.values.len() as u32;
        let slot = if v < 1 << 16 {
            if self.small.is_empty() {
                self.small = vec![UNSET; 1 << 16];
            }
            &mut self.small[v as usize]
        } else {
            self.large.entry(v).or_insert(UNSET)
        };
        if *slot == UNSET {
            *slot = next;
            self.values.push(Some(v));
        }
        *slot
    }

    /// A column of `data_type` whose row i is the value numbered `ids[i]`.
    fn column(&self, ids: &[u32], data_type: &DataType) -> Result<ArrayRef> {
        let bits: Vec<Option<u32>> = ids.iter().map(|id| self.values[*id as usize]).collect();
        Ok(match data_type {
            DataType::Int8 => Arc::new(Int8Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as i8)),
            )),
            DataType::Int16 => Arc::new(Int16Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as i16)),
            )),
            DataType::Int32 => Arc::new(Int32Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as i32)),
            )),
            DataType::UInt8 => Arc::new(UInt8Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as u8)),
            )),
            DataType::UInt16 => Arc::new(UInt16Array::from_iter(
                bits.iter().map(|v| v.map(|v| v as u16)),
            )),
            _ => Arc::new(UInt32Array::from_iter(bits)),
        })
    }
}

/// One key column: its strings or numbers, and how the rows of a batch find theirs.
struct KeyColumn {
    data_type: DataType,
    strings: Strings,
    numbers: Numbers,
    /// The dictionary `memo` belongs to: batches of one column chunk share theirs (see
    /// [`same_strings`]).
    memo_of: Option<ArrayRef>,
    /// Dictionary key → string number, filled as keys are met.
    memo: Vec<u32>,
    /// A string view of at most 12 bytes (the string is inside it) → string number.
    short: HashMap<u128, u32>,
    /// Rows per dictionary key of the batch being counted (kept to reuse its allocation).
    per_key: Vec<i64>,
}

impl KeyColumn {
    fn new(data_type: &DataType) -> Self {
        KeyColumn {
            data_type: data_type.clone(),
            strings: Strings::default(),
            numbers: Numbers::default(),
            memo_of: None,
            memo: Vec::new(),
            short: HashMap::default(),
            per_key: Vec::new(),
        }
    }

    fn len(&self) -> usize {
        self.strings.len() + self.numbers.values.len()
    }

    /// A column of the key's type whose row i is the key numbered `ids[i]`.
    fn column(&self, ids: &[u32]) -> Result<ArrayRef> {
        if integer_key(&self.data_type) {
            self.numbers.column(ids, &self.data_type)
        } else {
            self.strings.column(ids, &self.data_type)
        }
    }

    fn size(&self) -> usize {
        self.strings.size()
            + self.numbers.size()
            + self.memo.capacity() * size_of::<u32>()
            + self.short.capacity() * (size_of::<(u128, u32)>() + 1)
            + self.per_key.capacity() * size_of::<i64>()
    }

    /// The string number of each row of `array` into `out`, one slot a row sized up front:
    /// pushing row by row kept the vector's length in memory, stored and reloaded for every row
    /// (a quarter of a GROUP BY computer's time).
    fn assign(&mut self, array: &ArrayRef, out: &mut Vec<u32>) -> Result<()> {
        out.clear();
        out.resize(array.len(), UNSET);
        let wrong = || key_type_error(array.data_type());
        match &self.data_type {
            DataType::Utf8 => {
                let strings = array.as_string_opt::<i32>().ok_or_else(wrong)?;
                for (row, slot) in out.iter_mut().enumerate() {
                    *slot = if strings.is_null(row) {
                        self.strings.null()
                    } else {
                        self.strings.intern(strings.value(row))
                    };
                }
            }
            DataType::Utf8View => {
                let views = array.as_string_view_opt().ok_or_else(wrong)?;
                for (row, (slot, &view)) in out.iter_mut().zip(views.views().iter()).enumerate() {
                    *slot = if views.is_null(row) {
                        self.strings.null()
                    } else if view as u32 <= 12 {
                        match self.short.get(&view) {
                            Some(&id) => id,
                            None => {
                                let id = self.strings.intern(views.value(row));
                                self.short.insert(view, id);
                                id
                            }
                        }
                    } else {
                        self.strings.intern(views.value(row))
                    };
                }
            }
            t if integer_key(t) => self.assign_integers(array, out)?,
            _ => self.assign_dictionary(array, out)?,
        }
        Ok(())
    }

    fn assign_integers(&mut self, array: &ArrayRef, out: &mut [u32]) -> Result<()> {
        fn bits<T: ArrowPrimitiveType>(
            array: &ArrayRef,
            to_u32: impl Fn(T::Native) -> u32,
            numbers: &mut Numbers,
            out: &mut [u32],
        ) -> Result<()> {
            let values = array
                .as_primitive_opt::<T>()
                .ok_or_else(|| key_type_error(array.data_type()))?;
            for (row, (slot, &v)) in out.iter_mut().zip(values.values().iter()).enumerate() {
                let value = (!values.is_null(row)).then(|| to_u32(v));
                *slot = numbers.number(value);
            }
            Ok(())
        }
        let n = &mut self.numbers;
        match array.data_type() {
            DataType::UInt8 => bits::<UInt8Type>(array, u32::from, n, out),
            DataType::UInt16 => bits::<UInt16Type>(array, u32::from, n, out),
            DataType::UInt32 => bits::<UInt32Type>(array, |v| v, n, out),
            DataType::Int8 => bits::<Int8Type>(array, |v| v as u8 as u32, n, out),
            DataType::Int16 => bits::<Int16Type>(array, |v| v as u16 as u32, n, out),
            DataType::Int32 => bits::<Int32Type>(array, |v| v as u32, n, out),
            other => Err(key_type_error(other)),
        }
    }

    /// `array` as a dictionary of strings, with the memo of its values made ready (kept when
    /// the batch shares the last one's dictionary).
    fn dictionary<'a>(
        &mut self,
        array: &'a ArrayRef,
    ) -> Result<(&'a DictionaryArray<Int32Type>, &'a StringArray)> {
        let wrong = || key_type_error(array.data_type());
        let dict = array.as_dictionary_opt::<Int32Type>().ok_or_else(wrong)?;
        let values = dict.values().as_string_opt::<i32>().ok_or_else(wrong)?;
        let same = self
            .memo_of
            .as_ref()
            .is_some_and(|m| same_strings(m, dict.values()));
        if !same {
            self.memo.clear();
            self.memo.resize(values.len(), UNSET);
            self.memo_of = Some(Arc::clone(dict.values()));
        }
        Ok((dict, values))
    }

    fn assign_dictionary(&mut self, array: &ArrayRef, out: &mut [u32]) -> Result<()> {
        let (dict, values) = self.dictionary(array)?;
        let keys = dict.keys();
        let any_null = keys.null_count() > 0;
        for (row, (slot, &key)) in out.iter_mut().zip(keys.values().iter()).enumerate() {
            if any_null && keys.is_null(row) {
                *slot = self.strings.null();
                continue;
            }
            let Some(&id) = usize::try_from(key).ok().and_then(|k| self.memo.get(k)) else {
                return Err(DataFusionError::Internal(format!(
                    "dictionary key {key} out of range ({} values)",
                    values.len()
                )));
            };
            *slot = if id == UNSET {
                self.first_use(key as usize, values)
            } else {
                id
            };
        }
        Ok(())
    }

    /// Add the rows of each value of the dictionary column `array` to `counts` (indexed by
    /// string number): the rows are counted by dictionary key first, and each key used is
    /// numbered once. With `skip_nulls`, rows whose key is null or names a null value are not
    /// counted.
    fn count_dictionary(
        &mut self,
        array: &ArrayRef,
        counts: &mut Vec<i64>,
        skip_nulls: bool,
    ) -> Result<()> {
        let (dict, values) = self.dictionary(array)?;
        let keys = dict.keys();
        let len = values.len();
        let nulls = per_key_counts(&mut self.per_key, keys, len)?;
        let per_key = std::mem::take(&mut self.per_key);
        let mut add = |id: u32, n: i64| {
            let id = id as usize;
            if counts.len() <= id {
                counts.resize(id + 1, 0);
            }
            counts[id] += n;
        };
        if nulls > 0 && !skip_nulls {
            add(self.strings.null(), nulls);
        }
        for (k, &n) in per_key[..len].iter().enumerate() {
            if n > 0 && !(skip_nulls && values.is_null(k)) {
                let id = match self.memo[k] {
                    UNSET => self.first_use(k, values),
                    id => id,
                };
                add(id, n);
            }
        }
        self.per_key = per_key;
        Ok(())
    }

    /// The string number of cell coordinate `k` of a dictionary of `len` values (`values`,
    /// which the memo follows): null for `len`.
    fn number(&mut self, k: usize, len: usize, values: &StringArray) -> u32 {
        if k == len {
            return self.strings.null();
        }
        match self.memo[k] {
            UNSET => self.first_use(k, values),
            id => id,
        }
    }

    /// The string number of dictionary value `k`, numbered and remembered on its first use.
    #[cold]
    fn first_use(&mut self, k: usize, values: &StringArray) -> u32 {
        let id = if values.is_null(k) {
            self.strings.null()
        } else {
            self.strings.intern(values.value(k))
        };
        self.memo[k] = id;
        id
    }
}

/// The groups of one partition: with one key column, a group is a string number of it; with
/// two to four, a tuple of string numbers, numbered in order of arrival.
pub(super) struct Groups {
    columns: Vec<KeyColumn>,
    /// Both columns' string numbers of a pair (high and low half) → group.
    pairs: HashMap<u64, u32>,
    /// Three or four columns' string numbers (32 bits each, first column highest) → group.
    wide: HashMap<u128, u32>,
    /// Group → its tuple (the unused places 0).
    tuples: Vec<[u32; MAX_KEYS]>,
    /// The string numbers of each key column for the batch being added.
    ids: Vec<Vec<u32>>,
    /// Two dictionary keys counted by pair of dictionary keys (see [`Groups::count_pairs`]):
    /// the rows of key pair (i, j) in cell `i * (b + 1) + j`, where `b` is the second
    /// dictionary's length and a dictionary's length stands for null.
    dense: Vec<u32>,
    /// The two dictionaries (values) `dense` counts the keys of.
    dense_of: Option<[ArrayRef; 2]>,
    /// The rows counted in `dense` since it was started.
    dense_rows: usize,
    /// Each column's cell coordinate of the rows of the batch being counted.
    cells: [Vec<u32>; 2],
}

impl Groups {
    pub(super) fn new(types: &[DataType]) -> Self {
        Groups {
            columns: types.iter().map(KeyColumn::new).collect(),
            pairs: HashMap::default(),
            wide: HashMap::default(),
            tuples: Vec::new(),
            ids: vec![Vec::new(); types.len()],
            dense: Vec::new(),
            dense_of: None,
            dense_rows: 0,
            cells: [Vec::new(), Vec::new()],
        }
    }

    pub(super) fn len(&self) -> usize {
        match self.columns.as_slice() {
            [one] => one.len(),
            _ => self.tuples.len(),
        }
    }

    pub(super) fn size(&self) -> usize {
        self.columns.iter().map(KeyColumn::size).sum::<usize>()
            + self.pairs.capacity() * (size_of::<(u64, u32)>() + 1)
            + self.wide.capacity() * (size_of::<(u128, u32)>() + 1)
            + self.tuples.capacity() * size_of::<[u32; MAX_KEYS]>()
            + self
                .ids
                .iter()
                .chain(&self.cells)
                .map(|v| v.capacity() * size_of::<u32>())
                .sum::<usize>()
            + self.dense.capacity() * size_of::<u32>()
    }

    /// The group of each row (`keys`: one array per key column) into `out`.
    pub(super) fn assign(&mut self, keys: &[ArrayRef], out: &mut Vec<usize>) -> Result<()> {
        for ((column, array), ids) in self.columns.iter_mut().zip(keys).zip(&mut self.ids) {
            column.assign(array, ids)?;
        }
        out.clear();
        match self.ids.as_slice() {
            [one] => out.extend(one.iter().map(|&id| id as usize)),
            [a, b] => {
                out.resize(a.len(), 0);
                for ((slot, &x), &y) in out.iter_mut().zip(a).zip(b) {
                    *slot = pair_group(&mut self.pairs, &mut self.tuples, x, y) as usize;
                }
            }
            columns if columns.len() <= MAX_KEYS => {
                let rows = columns[0].len();
                out.resize(rows, 0);
                for (row, slot) in out.iter_mut().enumerate() {
                    let mut tuple = [0u32; MAX_KEYS];
                    let mut key = 0u128;
                    for (place, ids) in tuple.iter_mut().zip(columns) {
                        *place = ids[row];
                        key = (key << 32) | u128::from(ids[row]);
                    }
                    let next = self.tuples.len() as u32;
                    let group = *self.wide.entry(key).or_insert(next);
                    if group == next {
                        self.tuples.push(tuple);
                    }
                    *slot = group as usize;
                }
            }
            _ => {
                return Err(DataFusionError::Internal(format!(
                    "DictionaryAggregateExec with {} key columns",
                    self.ids.len()
                )));
            }
        }
        Ok(())
    }

    /// With one dictionary key column: the rows of each group of `key` (that column's array)
    /// added to `counts` (indexed by group), without a group index per row; with `skip_nulls`,
    /// not the rows of a null key. False, and nothing done, for other keys.
    pub(super) fn count(
        &mut self,
        key: &ArrayRef,
        counts: &mut Vec<i64>,
        skip_nulls: bool,
    ) -> Result<bool> {
        match self.columns.as_mut_slice() {
            [one] if one.data_type == dictionary_key() => {
                one.count_dictionary(key, counts, skip_nulls)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// The key columns of the groups, row i for group i; the state is empty afterwards.
    pub(super) fn take(&mut self) -> Result<Vec<ArrayRef>> {
        let mut out = Vec::with_capacity(self.columns.len());
        match self.columns.as_slice() {
            [one] => {
                let ids: Vec<u32> = (0..one.len() as u32).collect();
                out.push(one.column(&ids)?);
            }
            columns => {
                for (i, column) in columns.iter().enumerate() {
                    let ids: Vec<u32> = self.tuples.iter().map(|t| t[i]).collect();
                    out.push(column.column(&ids)?);
                }
            }
        }
        let types: Vec<DataType> = self.columns.iter().map(|c| c.data_type.clone()).collect();
        *self = Groups::new(&types);
        Ok(out)
    }
}

/// Key columns a [`Groups`] takes at most.
pub(super) const MAX_KEYS: usize = 4;

/// The group of the pair of string numbers (x, y), numbered on its first use.
fn pair_group(
    pairs: &mut HashMap<u64, u32>,
    tuples: &mut Vec<[u32; MAX_KEYS]>,
    x: u32,
    y: u32,
) -> u32 {
    let key = (u64::from(x) << 32) | u64::from(y);
    let next = tuples.len() as u32;
    let group = *pairs.entry(key).or_insert(next);
    if group == next {
        tuples.push([x, y, 0, 0]);
    }
    group
}

/// Whether the dictionary values `a` and `b` are the same strings: the same array, or string
/// arrays over the same buffers. The Parquet reader gives each batch of a column chunk its own
/// values array over the chunk's one dictionary buffer. (`a` is held while compared, so its
/// buffers cannot have been freed and their addresses taken by others.)
pub(crate) fn same_strings(a: &ArrayRef, b: &ArrayRef) -> bool {
    if Arc::ptr_eq(a, b) {
        return true;
    }
    match (a.as_string_opt::<i32>(), b.as_string_opt::<i32>()) {
        (Some(a), Some(b)) => {
            a.len() == b.len()
                && a.offsets().inner().inner().as_ptr() == b.offsets().inner().inner().as_ptr()
                && a.values().as_ptr() == b.values().as_ptr()
                && a.nulls() == b.nulls()
        }
        _ => false,
    }
}

fn key_type_error(found: &DataType) -> DataFusionError {
    DataFusionError::Internal(format!(
        "DictionaryAggregateExec: a key column of {found} where the plan said otherwise"
    ))
}
