//! Typed substitution values and how BinXML encodes them.

use std::borrow::Cow;
use std::fmt;

use crate::SamplesError;

/// The BinXML value types the writer emits (MS-EVEN6 value types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// UTF-16LE string (0x01).
    String,
    /// Unsigned 8-bit integer (0x04).
    UInt8,
    /// Unsigned 16-bit integer (0x06).
    UInt16,
    /// Unsigned 32-bit integer (0x08).
    UInt32,
    /// Unsigned 64-bit integer (0x0a).
    UInt64,
    /// Boolean, stored as a 32-bit integer (0x0d).
    Bool,
    /// Binary bytes (0x0e).
    Binary,
    /// GUID (0x0f).
    Guid,
    /// FILETIME (0x11).
    FileTime,
    /// Security identifier (0x13).
    Sid,
    /// 32-bit integer shown in hexadecimal (0x14).
    HexInt32,
    /// 64-bit integer shown in hexadecimal (0x15).
    HexInt64,
}

impl ValueType {
    /// The type byte of this value type in BinXML.
    pub fn code(self) -> u8 {
        match self {
            ValueType::String => 0x01,
            ValueType::UInt8 => 0x04,
            ValueType::UInt16 => 0x06,
            ValueType::UInt32 => 0x08,
            ValueType::UInt64 => 0x0a,
            ValueType::Bool => 0x0d,
            ValueType::Binary => 0x0e,
            ValueType::Guid => 0x0f,
            ValueType::FileTime => 0x11,
            ValueType::Sid => 0x13,
            ValueType::HexInt32 => 0x14,
            ValueType::HexInt64 => 0x15,
        }
    }
}

/// A Windows FILETIME: 100-nanosecond intervals since 1601-01-01 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct FileTime(pub u64);

/// Seconds from 1601-01-01 to 1970-01-01.
const EPOCH_DIFF_SECS: i64 = 11_644_473_600;

impl FileTime {
    /// The FILETIME of a Unix time in microseconds (clamped at 1601).
    pub fn from_unix_micros(micros: i64) -> FileTime {
        let ticks = (i128::from(micros) + i128::from(EPOCH_DIFF_SECS) * 1_000_000) * 10;
        FileTime(u64::try_from(ticks.max(0)).unwrap_or(u64::MAX))
    }

    /// The FILETIME of a Unix time in seconds.
    pub fn from_unix_secs(secs: i64) -> FileTime {
        FileTime::from_unix_micros(secs.saturating_mul(1_000_000))
    }

    /// This time as Unix microseconds (sub-microsecond ticks are dropped).
    pub fn unix_micros(self) -> i64 {
        let micros = i128::from(self.0 / 10) - i128::from(EPOCH_DIFF_SECS) * 1_000_000;
        i64::try_from(micros).unwrap_or(i64::MAX)
    }

    /// RFC 3339 UTC text with microseconds, e.g. `2026-03-02T08:15:00.000000Z`.
    pub fn to_rfc3339(self) -> String {
        let micros = self.unix_micros();
        let secs = micros.div_euclid(1_000_000);
        let frac = micros.rem_euclid(1_000_000);
        let days = secs.div_euclid(86_400);
        let sod = secs.rem_euclid(86_400);
        let (y, m, d) = civil_from_days(days);
        format!(
            "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z",
            sod / 3600,
            (sod / 60) % 60,
            sod % 60
        )
    }
}

/// Year, month, day of a count of days since 1970-01-01 (proleptic Gregorian).
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A GUID in its Windows field layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Guid {
    /// First 32 bits.
    pub data1: u32,
    /// Next 16 bits.
    pub data2: u16,
    /// Next 16 bits.
    pub data3: u16,
    /// Last 8 bytes, in order.
    pub data4: [u8; 8],
}

impl Guid {
    /// A GUID from its 128-bit big-endian number (as written in text).
    pub const fn from_u128(v: u128) -> Guid {
        let b = v.to_be_bytes();
        Guid {
            data1: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            data2: u16::from_be_bytes([b[4], b[5]]),
            data3: u16::from_be_bytes([b[6], b[7]]),
            data4: [b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]],
        }
    }

    /// Parse `{xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx}` (braces optional, any case).
    pub fn parse(text: &str) -> Result<Guid, SamplesError> {
        let err = || SamplesError::Parse {
            what: "GUID",
            text: text.to_string(),
        };
        let t = text.trim().trim_start_matches('{').trim_end_matches('}');
        let groups: Vec<&str> = t.split('-').collect();
        let lens = [8, 4, 4, 4, 12];
        if groups.len() != 5 || groups.iter().zip(lens).any(|(g, l)| g.len() != l) {
            return Err(err());
        }
        let hex: String = groups.concat();
        let v = u128::from_str_radix(&hex, 16).map_err(|_| err())?;
        Ok(Guid::from_u128(v))
    }

    /// The 16 bytes as stored on disk (little-endian first three fields).
    pub fn to_bytes(self) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(&self.data1.to_le_bytes());
        out[4..6].copy_from_slice(&self.data2.to_le_bytes());
        out[6..8].copy_from_slice(&self.data3.to_le_bytes());
        out[8..].copy_from_slice(&self.data4);
        out
    }
}

impl fmt::Display for Guid {
    /// Windows' braced upper-case form, `{54849625-5478-4994-A5BA-3E3B0328C30D}`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = &self.data4;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

/// A security identifier (at most 15 sub-authorities, as Windows allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sid {
    authority: u64,
    count: u8,
    subs: [u32; 15],
}

impl Sid {
    /// A SID from its identifier authority and sub-authorities (extra ones beyond 15 are dropped).
    pub fn new(authority: u64, sub_authorities: &[u32]) -> Sid {
        let mut subs = [0u32; 15];
        let count = sub_authorities.len().min(15);
        subs[..count].copy_from_slice(&sub_authorities[..count]);
        Sid {
            authority: authority & 0xFFFF_FFFF_FFFF,
            count: count as u8,
            subs,
        }
    }

    /// Parse `S-1-5-21-...`.
    pub fn parse(text: &str) -> Result<Sid, SamplesError> {
        let err = || SamplesError::Parse {
            what: "SID",
            text: text.to_string(),
        };
        let mut parts = text.split('-');
        if parts.next() != Some("S") || parts.next() != Some("1") {
            return Err(err());
        }
        let authority: u64 = parts.next().ok_or_else(err)?.parse().map_err(|_| err())?;
        let subs: Vec<u32> = parts
            .map(|p| p.parse().map_err(|_| err()))
            .collect::<Result<_, _>>()?;
        if subs.len() > 15 {
            return Err(err());
        }
        Ok(Sid::new(authority, &subs))
    }

    /// The sub-authorities.
    pub fn sub_authorities(&self) -> &[u32] {
        &self.subs[..usize::from(self.count)]
    }

    fn encoded_len(&self) -> usize {
        8 + 4 * usize::from(self.count)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(1);
        out.push(self.count);
        out.extend_from_slice(&self.authority.to_be_bytes()[2..]);
        for s in self.sub_authorities() {
            out.extend_from_slice(&s.to_le_bytes());
        }
    }
}

impl fmt::Display for Sid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "S-1-{}", self.authority)?;
        for s in self.sub_authorities() {
            write!(f, "-{s}")?;
        }
        Ok(())
    }
}

/// One substitution value of an event.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// No value: the template's optional substitution is left out.
    Null,
    /// A string, written as UTF-16LE without a terminator.
    String(Cow<'static, str>),
    /// UInt8.
    UInt8(u8),
    /// UInt16.
    UInt16(u16),
    /// UInt32.
    UInt32(u32),
    /// UInt64.
    UInt64(u64),
    /// Boolean.
    Bool(bool),
    /// Binary bytes.
    Binary(Vec<u8>),
    /// GUID.
    Guid(Guid),
    /// FILETIME.
    FileTime(FileTime),
    /// SID.
    Sid(Sid),
    /// HexInt32 (NTSTATUS values and the like).
    HexInt32(u32),
    /// HexInt64 (logon ids, keywords).
    HexInt64(u64),
}

impl Value {
    /// A string value from anything string-like.
    pub fn str(s: impl Into<Cow<'static, str>>) -> Value {
        Value::String(s.into())
    }

    /// The value's type, `None` for [`Value::Null`].
    pub fn value_type(&self) -> Option<ValueType> {
        Some(match self {
            Value::Null => return None,
            Value::String(_) => ValueType::String,
            Value::UInt8(_) => ValueType::UInt8,
            Value::UInt16(_) => ValueType::UInt16,
            Value::UInt32(_) => ValueType::UInt32,
            Value::UInt64(_) => ValueType::UInt64,
            Value::Bool(_) => ValueType::Bool,
            Value::Binary(_) => ValueType::Binary,
            Value::Guid(_) => ValueType::Guid,
            Value::FileTime(_) => ValueType::FileTime,
            Value::Sid(_) => ValueType::Sid,
            Value::HexInt32(_) => ValueType::HexInt32,
            Value::HexInt64(_) => ValueType::HexInt64,
        })
    }

    /// The BinXML type byte written in the value's descriptor (0x00 for null).
    pub fn type_code(&self) -> u8 {
        self.value_type().map_or(0, ValueType::code)
    }

    /// Append the value's bytes to `out`; returns how many were written.
    pub(crate) fn encode(&self, out: &mut Vec<u8>) -> usize {
        let start = out.len();
        match self {
            Value::Null => {}
            Value::String(s) => push_utf16(out, s),
            Value::UInt8(v) => out.push(*v),
            Value::UInt16(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::UInt32(v) | Value::HexInt32(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::UInt64(v) | Value::HexInt64(v) => out.extend_from_slice(&v.to_le_bytes()),
            Value::Bool(b) => out.extend_from_slice(&u32::from(*b).to_le_bytes()),
            Value::Binary(b) => out.extend_from_slice(b),
            Value::Guid(g) => out.extend_from_slice(&g.to_bytes()),
            Value::FileTime(t) => out.extend_from_slice(&t.0.to_le_bytes()),
            Value::Sid(s) => {
                out.reserve(s.encoded_len());
                s.encode(out)
            }
        }
        out.len() - start
    }
}

/// Append `s` as UTF-16LE code units.
pub(crate) fn push_utf16(out: &mut Vec<u8>, s: &str) {
    out.reserve(s.len() * 2);
    for unit in s.encode_utf16() {
        out.extend_from_slice(&unit.to_le_bytes());
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn filetime_round_trips_and_formats() {
        let t = FileTime::from_unix_secs(1_772_409_600); // 2026-03-02T00:00:00Z
        assert_eq!(t.to_rfc3339(), "2026-03-02T00:00:00.000000Z");
        assert_eq!(t.unix_micros(), 1_772_409_600_000_000);
        assert_eq!(FileTime::from_unix_secs(0).0, 116_444_736_000_000_000);
        assert_eq!(
            FileTime::from_unix_micros(951_782_400_000_001).to_rfc3339(),
            "2000-02-29T00:00:00.000001Z"
        );
    }

    #[test]
    fn guid_parses_and_encodes() {
        let g = Guid::parse("{54849625-5478-4994-a5ba-3e3b0328c30d}").unwrap();
        assert_eq!(g.to_string(), "{54849625-5478-4994-A5BA-3E3B0328C30D}");
        assert_eq!(&g.to_bytes()[..4], &[0x25, 0x96, 0x84, 0x54]);
        assert!(Guid::parse("{5484962-5478-4994-a5ba-3e3b0328c30d}").is_err());
        assert!(Guid::parse("zz849625-5478-4994-a5ba-3e3b0328c30d").is_err());
    }

    #[test]
    fn sid_parses_and_encodes() {
        let s = Sid::parse("S-1-5-21-1004336348-1177238915-682003330-501").unwrap();
        assert_eq!(
            s.to_string(),
            "S-1-5-21-1004336348-1177238915-682003330-501"
        );
        let mut out = Vec::new();
        Value::Sid(s).encode(&mut out);
        assert_eq!(out.len(), 8 + 5 * 4);
        assert_eq!(&out[..8], &[1, 5, 0, 0, 0, 0, 0, 5]);
        assert!(Sid::parse("S-2-5").is_err());
        assert!(Sid::parse("S-1-5-x").is_err());
    }

    #[test]
    fn strings_are_utf16le() {
        let mut out = Vec::new();
        assert_eq!(Value::str("\\\\é").encode(&mut out), 6);
        assert_eq!(out, vec![0x5c, 0, 0x5c, 0, 0xe9, 0]);
    }
}
