//! The text forms of value types, as the evtx crate writes them: integers, GUIDs, SIDs,
//! FILETIME and SYSTEMTIME timestamps, Windows-1252 characters.

use super::values::le;

/// Append ASCII bytes (the writers below fill a buffer on the stack, then append it once).
pub(super) fn push_ascii(out: &mut String, bytes: &[u8]) {
    if let Ok(s) = std::str::from_utf8(bytes) {
        out.push_str(s);
    }
}

pub(super) fn write_uint(out: &mut String, v: u64) {
    out.push_str(itoa::Buffer::new().format(v));
}

pub(super) fn write_int(out: &mut String, v: i64) {
    out.push_str(itoa::Buffer::new().format(v));
}

/// `0x` and the lower-case hex digits of `v`, without leading zeros (`0x0` for zero).
pub(super) fn write_hex(out: &mut String, mut v: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 18];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = HEX[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    buf[i - 2..i].copy_from_slice(b"0x");
    push_ascii(out, &buf[i - 2..]);
}

/// Upper-case hex of every byte, two digits each.
pub(super) fn write_binary(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut buf = [0u8; 128];
    out.reserve(bytes.len() * 2);
    for piece in bytes.chunks(buf.len() / 2) {
        for (pair, &x) in buf.chunks_exact_mut(2).zip(piece) {
            pair[0] = HEX[usize::from(x >> 4)];
            pair[1] = HEX[usize::from(x & 15)];
        }
        push_ascii(out, &buf[..2 * piece.len()]);
    }
}

/// `{d1-d2-d3-d4[0..2]-d4[2..8]}`, lower case, data1-3 little-endian.
pub(super) fn write_guid(out: &mut String, g: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    const ORDER: [usize; 16] = [3, 2, 1, 0, 5, 4, 7, 6, 8, 9, 10, 11, 12, 13, 14, 15];
    let mut buf = [0u8; 38];
    buf[0] = b'{';
    let mut n = 1;
    for (i, &idx) in ORDER.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            buf[n] = b'-';
            n += 1;
        }
        let b = g.get(idx).copied().unwrap_or(0);
        buf[n] = HEX[usize::from(b >> 4)];
        buf[n + 1] = HEX[usize::from(b & 15)];
        n += 2;
    }
    buf[n] = b'}';
    push_ascii(out, &buf);
}

/// `S-R-A-S1-...`: revision, 48-bit big-endian authority, little-endian sub-authorities.
pub(super) fn write_sid(out: &mut String, b: &[u8]) {
    let &[rev, n, a0, a1, a2, a3, a4, a5, ref subs @ ..] = b else {
        out.push_str("S-?");
        return;
    };
    out.push_str("S-");
    write_uint(out, u64::from(rev));
    out.push('-');
    write_uint(out, u64::from_be_bytes([0, 0, a0, a1, a2, a3, a4, a5]));
    for s in subs.chunks_exact(4).take(usize::from(n)) {
        out.push('-');
        write_uint(out, u64::from(u32::from_le_bytes(le(s))));
    }
}

/// A date and time as rendered, with the 100 ns ticks of the second.
#[derive(Default, Clone, Copy)]
pub(super) struct Fields {
    year: u32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    ticks: u32,
}

const TICKS_PER_SEC: u64 = 10_000_000;
const TICKS_PER_DAY: u64 = 86_400 * TICKS_PER_SEC;

/// A FILETIME as Windows renders it: years past 9999 keep their last four digits; a value past
/// `i64::MAX` renders as zeros.
pub(super) fn filetime_fields(ft: u64) -> Fields {
    if ft > i64::MAX as u64 {
        return Fields::default();
    }
    let (days, ticks) = (ft / TICKS_PER_DAY, ft % TICKS_PER_DAY);
    // Civil date from days since 1601-01-01 (Howard Hinnant's algorithm, from 0000-03-01).
    let z = days + 584_694;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = era * 400 + yoe + u64::from(month <= 2);
    let secs = ticks / TICKS_PER_SEC;
    Fields {
        year: (year % 10_000) as u32,
        month: month as u32,
        day: day as u32,
        hour: (secs / 3_600) as u32,
        minute: (secs / 60 % 60) as u32,
        second: (secs % 60) as u32,
        ticks: (ticks % TICKS_PER_SEC) as u32,
    }
}

/// A SYSTEMTIME as Windows renders it; one that is not a valid time renders as 1601-01-01.
pub(super) fn systime_fields(b: &[u8]) -> Fields {
    let f = |i: usize| u32::from(u16::from_le_bytes([b[2 * i], b[2 * i + 1]]));
    let (year, month, day) = (f(0), f(1), f(3));
    let (hour, minute, second, ms) = (f(4), f(5), f(6), f(7));
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let dim = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    };
    let valid = (1601..=30827).contains(&year)
        && (1..=12).contains(&month)
        && (1..=dim).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60
        && ms < 1000;
    if !valid {
        return Fields {
            year: 1601,
            month: 1,
            day: 1,
            ..Fields::default()
        };
    }
    Fields {
        year: year % 10_000,
        month,
        day,
        hour,
        minute,
        second,
        ticks: ms * 10_000,
    }
}

/// `YYYY-MM-DDTHH:MM:SS.fffffffZ`.
pub(super) fn write_fields(out: &mut String, f: Fields) {
    let mut buf = *b"0000-00-00T00:00:00.0000000Z";
    let mut pack = |range: std::ops::Range<usize>, mut v: u32| {
        for b in buf[range].iter_mut().rev() {
            *b = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    pack(0..4, f.year);
    pack(5..7, f.month);
    pack(8..10, f.day);
    pack(11..13, f.hour);
    pack(14..16, f.minute);
    pack(17..19, f.second);
    pack(20..27, f.ticks);
    push_ascii(out, &buf);
}

/// Windows-1252 (WHATWG: the five undefined bytes map to the C1 controls).
pub(super) fn windows_1252(b: u8) -> char {
    const C1: [char; 32] = [
        '\u{20AC}', '\u{0081}', '\u{201A}', '\u{0192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{02C6}', '\u{2030}', '\u{0160}', '\u{2039}', '\u{0152}', '\u{008D}',
        '\u{017D}', '\u{008F}', '\u{0090}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}',
        '\u{2022}', '\u{2013}', '\u{2014}', '\u{02DC}', '\u{2122}', '\u{0161}', '\u{203A}',
        '\u{0153}', '\u{009D}', '\u{017E}', '\u{0178}',
    ];
    match b {
        0x80..=0x9F => C1[usize::from(b - 0x80)],
        _ => char::from(b),
    }
}
