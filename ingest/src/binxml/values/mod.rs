//! Substitution values (MS-EVEN6 2.2.4, "value types"): reading them out of a template
//! instance's substitution array and writing their text as the evtx crate renders it.
//!
//! Every length comes from the record and is checked against it; a value whose descriptor does
//! not match its type's size, or a type the fast path does not render the evtx crate's way
//! (ANSI string arrays, arrays that expand into repeated elements, handles), is a
//! [`Unsupported`] and the record takes the evtx crate's path.

use super::Unsupported;
use super::strings;

/// Value type bytes.
use super::text::{
    filetime_fields, systime_fields, windows_1252, write_binary, write_fields, write_guid,
    write_hex, write_int, write_sid, write_uint,
};

pub mod ty {
    pub const NULL: u8 = 0x00;
    pub const STRING: u8 = 0x01;
    pub const ANSI_STRING: u8 = 0x02;
    pub const INT8: u8 = 0x03;
    pub const UINT8: u8 = 0x04;
    pub const INT16: u8 = 0x05;
    pub const UINT16: u8 = 0x06;
    pub const INT32: u8 = 0x07;
    pub const UINT32: u8 = 0x08;
    pub const INT64: u8 = 0x09;
    pub const UINT64: u8 = 0x0a;
    pub const REAL32: u8 = 0x0b;
    pub const REAL64: u8 = 0x0c;
    pub const BOOL: u8 = 0x0d;
    pub const BINARY: u8 = 0x0e;
    pub const GUID: u8 = 0x0f;
    pub const SIZE_T: u8 = 0x10;
    pub const FILETIME: u8 = 0x11;
    pub const SYSTIME: u8 = 0x12;
    pub const SID: u8 = 0x13;
    pub const HEX_INT32: u8 = 0x14;
    pub const HEX_INT64: u8 = 0x15;
    pub const EVT_HANDLE: u8 = 0x20;
    pub const BIN_XML: u8 = 0x21;
    pub const EVT_XML: u8 = 0x23;
    /// Set on the type of an array of that type.
    pub const ARRAY: u8 = 0x80;
}

/// Whether the evtx crate knows the type byte at all (an unknown one makes the record fail).
pub fn is_known_type(t: u8) -> bool {
    matches!(t, 0x00..=0x15 | 0x20 | 0x21 | 0x23 | 0x81..=0x95)
}

/// A FILETIME in microseconds since 1970, as its text ([`Val::write`]) parses back
/// (`json::parse_system_time`: the seventh digit of the fraction dropped); `None` outside
/// 1970..=9999, where the caller goes by the text.
pub fn filetime_micros(ft: u64) -> Option<i64> {
    let after = ft.checked_sub(super::chunk::UNIX_EPOCH_FILETIME)?;
    if ft > super::chunk::MAX_FILETIME {
        return None;
    }
    i64::try_from(after / 10).ok()
}

/// One substitution value, borrowed from the chunk.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Null,
    /// UTF-16LE, cut at the first NUL.
    Str(&'a [u8]),
    /// Windows-1252 bytes (NULs are dropped when written).
    Ansi(&'a [u8]),
    I8(i8),
    U8(u8),
    I16(i16),
    U16(u16),
    I32(i32),
    U32(u32),
    I64(i64),
    U64(u64),
    F32(f32),
    F64(f64),
    Bool(bool),
    Binary(&'a [u8]),
    Guid(&'a [u8]),
    FileTime(u64),
    SysTime(&'a [u8]),
    Sid(&'a [u8]),
    Hex32(u32),
    Hex64(u64),
    /// Nested BinXML (0x21), not empty: the raw fragment.
    BinXml(&'a [u8]),
    /// The nested instance a [`Val::BinXml`] was decoded into (index into the record's list).
    Frag(u32),
    /// An array of no items.
    EmptyArray,
    /// An array of one item: rendered as that item's text, but never as a bare number.
    One(ty_one::Item<'a>),
    /// An array of several items: the element holding it is repeated, once per item.
    Array(Items<'a>),
}

/// The items of an array of several.
#[derive(Debug, Clone, Copy)]
pub struct Items<'a> {
    /// The items' type (the array type without [`ty::ARRAY`]).
    pub ty: u8,
    pub bytes: &'a [u8],
    pub count: u32,
}

impl<'a> Items<'a> {
    /// The item whose bytes start at `at` (the first item's at 0) as a scalar value, and where
    /// the next item starts. Reading the items in order this way reads each byte once (a copy
    /// of an element per item of a long array must not scan the items before its own).
    pub fn item_at(&self, at: usize) -> Option<(Val<'a>, usize)> {
        let b = self.bytes;
        let end = match self.ty {
            // Up to its NUL, which is not part of the item.
            ty::STRING => {
                let len = b.get(at..)?.chunks_exact(2).position(|u| u == [0, 0])?;
                let item = &b[at..at + 2 * len];
                return Some((Val::Str(item), at + 2 * len + 2));
            }
            ty::SID => at.checked_add(8 + 4 * usize::from(*b.get(at.checked_add(1)?)?))?,
            t => at.checked_add(if t == ty::INT32 { 4 } else { fixed_size(t)? })?,
        };
        Some((scalar(self.ty, b.get(at..end)?).ok()?, end))
    }
}

/// The single item of a one-item array.
pub mod ty_one {
    #[derive(Debug, Clone, Copy)]
    pub struct Item<'a> {
        /// The item's type (the array type without [`super::ty::ARRAY`]).
        pub ty: u8,
        pub bytes: &'a [u8],
    }
}

pub(super) fn le<const N: usize>(b: &[u8]) -> [u8; N] {
    let mut a = [0u8; N];
    a.copy_from_slice(&b[..N]);
    a
}

/// The fixed size of a scalar type, if it has one.
fn fixed_size(t: u8) -> Option<usize> {
    Some(match t {
        ty::INT8 | ty::UINT8 => 1,
        ty::INT16 | ty::UINT16 => 2,
        ty::INT32 | ty::UINT32 | ty::REAL32 | ty::BOOL | ty::HEX_INT32 => 4,
        ty::INT64 | ty::UINT64 | ty::REAL64 | ty::FILETIME | ty::HEX_INT64 => 8,
        ty::GUID | ty::SYSTIME => 16,
        _ => return None,
    })
}

/// A scalar of type `t` from exactly its bytes.
// Inlined: returned through memory, its value was read back in pieces that straddle the
// pieces it was written in (a store-forwarding stall per value, ~40 % of this loop's samples).
#[inline(always)]
fn scalar(t: u8, b: &[u8]) -> Result<Val<'_>, Unsupported> {
    if let Some(n) = fixed_size(t)
        && b.len() != n
    {
        return Err(Unsupported("value size does not match its type"));
    }
    Ok(match t {
        ty::NULL => Val::Null,
        ty::STRING => {
            if !b.len().is_multiple_of(2) {
                return Err(Unsupported("odd-sized UTF-16 string"));
            }
            Val::Str(strings::until_nul(b))
        }
        ty::ANSI_STRING => Val::Ansi(b),
        ty::INT8 => Val::I8(b[0] as i8),
        ty::UINT8 => Val::U8(b[0]),
        ty::INT16 => Val::I16(i16::from_le_bytes(le(b))),
        ty::UINT16 => Val::U16(u16::from_le_bytes(le(b))),
        ty::INT32 => Val::I32(i32::from_le_bytes(le(b))),
        ty::UINT32 => Val::U32(u32::from_le_bytes(le(b))),
        ty::INT64 => Val::I64(i64::from_le_bytes(le(b))),
        ty::UINT64 => Val::U64(u64::from_le_bytes(le(b))),
        ty::REAL32 => Val::F32(f32::from_le_bytes(le(b))),
        ty::REAL64 => Val::F64(f64::from_le_bytes(le(b))),
        // Windows writes bitmasks into some bool slots: values other than 0/1 stay integers.
        ty::BOOL => match i32::from_le_bytes(le(b)) {
            0 => Val::Bool(false),
            1 => Val::Bool(true),
            raw => Val::I32(raw),
        },
        ty::BINARY => Val::Binary(b),
        ty::GUID => Val::Guid(b),
        ty::SIZE_T => match b.len() {
            4 => Val::Hex32(u32::from_le_bytes(le(b))),
            8 => Val::Hex64(u64::from_le_bytes(le(b))),
            _ => return Err(Unsupported("size_t of a size other than 4 or 8")),
        },
        ty::FILETIME => Val::FileTime(u64::from_le_bytes(le(b))),
        ty::SYSTIME => Val::SysTime(b),
        ty::SID => {
            if b.len() < 8 || b.len() != 8 + 4 * usize::from(b[1]) {
                return Err(Unsupported(
                    "SID size does not match its sub-authority count",
                ));
            }
            Val::Sid(b)
        }
        ty::HEX_INT32 => Val::Hex32(u32::from_le_bytes(le(b))),
        ty::HEX_INT64 => Val::Hex64(u64::from_le_bytes(le(b))),
        ty::BIN_XML if b.is_empty() => Val::Null,
        ty::BIN_XML => Val::BinXml(b),
        _ => return Err(Unsupported("value type without a fast-path rendering")),
    })
}

/// An array value of type `t | 0x80` from its bytes.
fn array(t: u8, b: &[u8]) -> Result<Val<'_>, Unsupported> {
    let item = t & !ty::ARRAY;
    let mut one: Option<&[u8]> = None;
    let mut count = 0usize;
    match item {
        ty::STRING => {
            if !b.len().is_multiple_of(2) {
                return Err(Unsupported("odd-sized string array"));
            }
            // NUL-terminated strings back to back, the last one inside the value.
            let mut start = 0;
            let mut i = 0;
            while i + 1 < b.len() {
                if b[i] == 0 && b[i + 1] == 0 {
                    count += 1;
                    if count == 1 {
                        one = Some(&b[start..i]);
                    }
                    start = i + 2;
                }
                i += 2;
            }
            if start != b.len() {
                return Err(Unsupported("string array without its last NUL"));
            }
        }
        ty::SID => {
            let mut at = 0;
            while at < b.len() {
                let n = b
                    .get(at + 1)
                    .map(|&c| 8 + 4 * usize::from(c))
                    .ok_or(Unsupported("truncated SID array"))?;
                if at + n > b.len() {
                    return Err(Unsupported("truncated SID array"));
                }
                count += 1;
                if count == 1 {
                    one = Some(&b[at..at + n]);
                }
                at += n;
            }
        }
        ty::BOOL => {
            if !b.len().is_multiple_of(4) {
                return Err(Unsupported("misaligned array"));
            }
            count = b.len() / 4;
            one = b.get(..4);
        }
        _ => {
            let size = fixed_size(item).ok_or(Unsupported("array type without a rendering"))?;
            if !b.len().is_multiple_of(size) {
                return Err(Unsupported("misaligned array"));
            }
            count = b.len() / size;
            one = b.get(..size);
        }
    }
    match (count, one) {
        (0, _) => Ok(Val::EmptyArray),
        (1, Some(bytes)) => {
            // A bool array with a value other than 0/1 is an int32 array.
            let ty = if item == ty::BOOL && !matches!(i32::from_le_bytes(le(bytes)), 0 | 1) {
                ty::INT32
            } else {
                item
            };
            Ok(Val::One(ty_one::Item { ty, bytes }))
        }
        (n, _) => {
            let ty = if item == ty::BOOL
                && b.chunks_exact(4)
                    .any(|c| !matches!(i32::from_le_bytes(le(c)), 0 | 1))
            {
                ty::INT32
            } else {
                item
            };
            Ok(Val::Array(Items {
                ty,
                bytes: b,
                count: u32::try_from(n).map_err(|_| Unsupported("array too long"))?,
            }))
        }
    }
}

/// Read a substitution array at `at` in `data` (the chunk), within `limit`: the count, the
/// descriptors, then the values. Values go to `out`; returns the offset after the last value.
pub fn read_substitutions<'a>(
    data: &'a [u8],
    at: usize,
    limit: usize,
    out: &mut Vec<Val<'a>>,
) -> Result<usize, Unsupported> {
    let (desc_start, desc_end) = descriptors(data, at, limit)?;
    let limit = limit.min(data.len());
    let mut pos = desc_end;
    for d in data[desc_start..desc_end].chunks_exact(4) {
        if !is_known_type(d[2]) {
            return Err(Unsupported("unknown value type"));
        }
    }
    for d in data[desc_start..desc_end].chunks_exact(4) {
        let size = usize::from(u16::from_le_bytes([d[0], d[1]]));
        let t = d[2];
        let end = pos
            .checked_add(size)
            .filter(|&e| e <= limit)
            .ok_or(Unsupported("substitution value past the record"))?;
        let bytes = &data[pos..end];
        let v = if t & ty::ARRAY != 0 {
            array(t, bytes)?
        } else {
            scalar(t, bytes)?
        };
        out.push(v);
        pos = end;
    }
    Ok(pos)
}

/// Substitution `id` alone, out of the substitution array at `at` (the descriptors before it are
/// read for their sizes only, the values before and after it not at all): for a decision that
/// needs one or two values of a record, the reader's filter. `Ok(None)` when the array has no
/// such value, or it is an array or of a type this reads only in context.
pub fn substitution_at<'a>(
    data: &'a [u8],
    at: usize,
    limit: usize,
    id: u16,
) -> Result<Option<Val<'a>>, Unsupported> {
    let (desc_start, desc_end) = descriptors(data, at, limit)?;
    let limit = limit.min(data.len());
    let id = usize::from(id);
    if desc_start + 4 * id >= desc_end {
        return Ok(None);
    }
    let descriptor = |i: usize| {
        let d = &data[desc_start + 4 * i..desc_start + 4 * i + 4];
        (usize::from(u16::from_le_bytes([d[0], d[1]])), d[2])
    };
    let pos = (0..id).try_fold(desc_end, |pos, i| pos.checked_add(descriptor(i).0));
    let (size, t) = descriptor(id);
    let Some((start, end)) = pos
        .and_then(|p| Some((p, p.checked_add(size)?)))
        .filter(|&(_, end)| end <= limit)
    else {
        return Err(Unsupported("substitution value past the record"));
    };
    if t & ty::ARRAY != 0 || matches!(t, ty::BIN_XML | ty::EVT_XML) || !is_known_type(t) {
        return Ok(None);
    }
    scalar(t, &data[start..end]).map(Some)
}

/// Whether substitution `id` of the array at `at` is a NullType value (which leaves out an
/// element that depends on it); false when the array has no such value.
pub fn is_null_at(data: &[u8], at: usize, limit: usize, id: u16) -> Result<bool, Unsupported> {
    let (desc_start, desc_end) = descriptors(data, at, limit)?;
    let d = desc_start + 4 * usize::from(id);
    if d >= desc_end {
        return Ok(false);
    }
    let size = u16::from_le_bytes([data[d], data[d + 1]]);
    Ok(data[d + 2] == ty::NULL || (data[d + 2] == ty::BIN_XML && size == 0))
}

/// Where the descriptors (4 bytes each: size, type, padding) of the substitution array at `at`
/// start and end, checked against `limit`.
fn descriptors(data: &[u8], at: usize, limit: usize) -> Result<(usize, usize), Unsupported> {
    let limit = limit.min(data.len());
    let count = read_u32(data, at, limit)? as usize;
    let desc_start = at + 4;
    let desc_end = count
        .checked_mul(4)
        .and_then(|n| desc_start.checked_add(n))
        .filter(|&end| end <= limit)
        .ok_or(Unsupported("substitution descriptors past the record"))?;
    Ok((desc_start, desc_end))
}

fn read_u32(data: &[u8], at: usize, limit: usize) -> Result<u32, Unsupported> {
    match data.get(at..at + 4) {
        Some(b) if at + 4 <= limit => Ok(u32::from_le_bytes(le(b))),
        _ => Err(Unsupported("truncated")),
    }
}

impl<'a> Val<'a> {
    /// Rendered as a bare JSON number or boolean.
    pub fn is_bare(&self) -> bool {
        matches!(
            self,
            Val::I8(_)
                | Val::U8(_)
                | Val::I16(_)
                | Val::U16(_)
                | Val::I32(_)
                | Val::U32(_)
                | Val::I64(_)
                | Val::U64(_)
                | Val::Bool(_)
        )
    }

    /// Left out where an optional substitution stands (and no content anywhere).
    pub fn is_empty(&self) -> bool {
        match self {
            Val::Null | Val::EmptyArray => true,
            Val::Str(s) | Val::Binary(s) => s.is_empty(),
            Val::Ansi(s) => s.iter().all(|&b| b == 0),
            _ => false,
        }
    }

    /// Strings become text nodes; everything else is a value node.
    pub fn is_text(&self) -> bool {
        matches!(self, Val::Str(_) | Val::Ansi(_))
    }

    /// Write the value's text; `json` escapes it for a JSON string.
    pub fn write(&self, out: &mut String, json: bool) -> Result<(), Unsupported> {
        match *self {
            Val::Null | Val::EmptyArray => {}
            Val::Str(s) => {
                if json {
                    strings::push_json_utf16(out, s)
                } else {
                    strings::push_lossy(out, s)
                }
            }
            Val::Ansi(s) => {
                // Runs of printable ASCII that need no escaping go in whole; the bytes between
                // them one at a time.
                let mut rest = s;
                while !rest.is_empty() {
                    let plain =
                        |b: u8| (0x20..0x80).contains(&b) && !(json && (b == b'"' || b == b'\\'));
                    let run = rest.iter().position(|&b| !plain(b)).unwrap_or(rest.len());
                    if let Ok(text) = std::str::from_utf8(&rest[..run]) {
                        out.push_str(text);
                    }
                    let Some(&b) = rest.get(run) else { break };
                    if b != 0 {
                        let c = windows_1252(b);
                        if json {
                            strings::push_json_char(out, c);
                        } else {
                            out.push(c);
                        }
                    }
                    rest = &rest[run + 1..];
                }
            }
            Val::I8(v) => write_int(out, i64::from(v)),
            Val::U8(v) => write_uint(out, u64::from(v)),
            Val::I16(v) => write_int(out, i64::from(v)),
            Val::U16(v) => write_uint(out, u64::from(v)),
            Val::I32(v) => write_int(out, i64::from(v)),
            Val::U32(v) => write_uint(out, u64::from(v)),
            Val::I64(v) => write_int(out, v),
            Val::U64(v) => write_uint(out, v),
            Val::F32(v) => out.push_str(zmij::Buffer::new().format(v)),
            Val::F64(v) => out.push_str(zmij::Buffer::new().format(v)),
            Val::Bool(v) => out.push_str(if v { "true" } else { "false" }),
            Val::Binary(b) => write_binary(out, b),
            Val::Guid(g) => write_guid(out, g),
            Val::FileTime(ft) => write_fields(out, filetime_fields(ft)),
            Val::SysTime(b) => write_fields(out, systime_fields(b)),
            Val::Sid(b) => write_sid(out, b),
            Val::Hex32(v) => write_hex(out, u64::from(v)),
            Val::Hex64(v) => write_hex(out, v),
            Val::BinXml(_) | Val::Frag(_) => {
                return Err(Unsupported("nested BinXML as text"));
            }
            Val::Array(_) => return Err(Unsupported("array of several items as text")),
            Val::One(item) => {
                let v = scalar(item.ty, item.bytes)?;
                v.write(out, json)?;
            }
        }
        Ok(())
    }

    /// The number a bare value is, as the JSON reader takes it (negative and boolean: none).
    pub fn bare_number(&self) -> Option<u64> {
        match *self {
            Val::I8(v) => u64::try_from(v).ok(),
            Val::U8(v) => Some(u64::from(v)),
            Val::I16(v) => u64::try_from(v).ok(),
            Val::U16(v) => Some(u64::from(v)),
            Val::I32(v) => u64::try_from(v).ok(),
            Val::U32(v) => Some(u64::from(v)),
            Val::I64(v) => u64::try_from(v).ok(),
            Val::U64(v) => Some(v),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests;
