//! UTF-16LE text as EVTX stores it: the part before the first NUL, decoded to UTF-8, and written
//! as JSON string content the way the evtx crate escapes it (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
//! `\f`, other C0 controls as `\u00XX`; an unpaired surrogate becomes U+FFFD).

/// One in every 16-bit lane of a u64, and each lane's top bit.
const LANE_ONES: u64 = 0x0001_0001_0001_0001;
const LANE_TOPS: u64 = 0x8000_8000_8000_8000;

/// Four UTF-16LE code units as one u64 (`b` holds at least 8 bytes).
#[inline]
fn four_units(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

/// Whether any 16-bit lane of `w` is below `n` (`n` ≤ 0x8000): never true when none is.
#[inline]
fn any_lane_below(w: u64, n: u64) -> bool {
    w.wrapping_sub(n * LANE_ONES) & !w & LANE_TOPS != 0
}

/// Whether the four code units of `w` are printable ASCII (no control): then each is its
/// low byte.
#[inline]
fn printable_ascii(w: u64) -> bool {
    w & 0xff80_ff80_ff80_ff80 == 0 && !any_lane_below(w, 0x20)
}

/// Whether the four code units of `w` are printable ASCII that JSON keeps as it is (no quote
/// or backslash either).
#[inline]
fn plain_ascii(w: u64) -> bool {
    printable_ascii(w)
        && !any_lane_below(w ^ (u64::from(b'"') * LANE_ONES), 1)
        && !any_lane_below(w ^ (u64::from(b'\\') * LANE_ONES), 1)
}

/// The code units before the first NUL unit (an odd trailing byte is dropped).
pub fn until_nul(bytes: &[u8]) -> &[u8] {
    let mut i = 0;
    // Four units at a time up to the block holding a NUL.
    while i + 8 <= bytes.len() && !any_lane_below(four_units(&bytes[i..]), 1) {
        i += 8;
    }
    while i + 1 < bytes.len() {
        if bytes[i] == 0 && bytes[i + 1] == 0 {
            return &bytes[..i];
        }
        i += 2;
    }
    &bytes[..bytes.len() & !1]
}

/// The characters of UTF-16LE `bytes`; an unpaired surrogate gives `None`.
fn chars(bytes: &[u8]) -> impl Iterator<Item = Option<char>> + '_ {
    let units = bytes
        .chunks_exact(2)
        .map(|u| u16::from_le_bytes([u[0], u[1]]));
    char::decode_utf16(units).map(|c| c.ok())
}

/// Decode, with U+FFFD for an unpaired surrogate (as the JSON renderer writes it).
pub fn push_lossy(out: &mut String, bytes: &[u8]) {
    push_utf16(out, bytes, false);
}

/// Decode strictly: `None` when a surrogate is unpaired (the evtx crate rejects such names).
pub fn decode_strict(bytes: &[u8]) -> Option<String> {
    let mut s = String::with_capacity(bytes.len() / 2);
    for c in chars(bytes) {
        s.push(c?);
    }
    Some(s)
}

/// Whether UTF-16LE `bytes` decode (no unpaired surrogate).
pub fn is_strict(bytes: &[u8]) -> bool {
    chars(bytes).all(|c| c.is_some())
}

/// Whether UTF-16LE `bytes` are the text `s`.
pub fn eq_str(bytes: &[u8], s: &str) -> bool {
    let mut units = bytes
        .chunks_exact(2)
        .map(|u| u16::from_le_bytes([u[0], u[1]]));
    s.encode_utf16().all(|c| units.next() == Some(c)) && units.next().is_none()
}

/// Append `c` as JSON string content.
#[inline]
pub fn push_json_char(out: &mut String, c: char) {
    if c >= ' ' && c != '"' && c != '\\' {
        out.push(c);
        return;
    }
    let mut buf = [0u8; MOST_PER_CHAR];
    let n = json_char_into(c, &mut buf);
    flush(out, &buf[..n]);
}

/// Append UTF-8 `s` as JSON string content.
pub fn push_json_str(out: &mut String, s: &str) {
    let clean = s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\');
    if clean {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        push_json_char(out, c);
    }
}

/// Append UTF-16LE `bytes` as JSON string content.
pub fn push_json_utf16(out: &mut String, bytes: &[u8]) {
    push_utf16(out, bytes, true);
}

/// Bytes gathered on the stack before they go into the `String` at once.
const BLOCK: usize = 256;
/// Most bytes one character adds (`\u00XX`, or four bytes of UTF-8).
const MOST_PER_CHAR: usize = 6;

/// Append UTF-16LE `bytes` decoded (a lone surrogate as U+FFFD), escaped as JSON string content
/// when `json`: characters are written as UTF-8 into a block on the stack, and each full
/// block goes into `out` in one `push_str`.
fn push_utf16(out: &mut String, bytes: &[u8], json: bool) {
    let bytes = &bytes[..bytes.len() & !1];
    out.reserve(bytes.len() / 2);
    let mut block = [0u8; BLOCK];
    let mut n = 0;
    let mut i = 0;
    while i < bytes.len() {
        if n + MOST_PER_CHAR > BLOCK {
            flush(out, &block[..n]);
            n = 0;
        }
        // Runs of plain ASCII, four units at a time (most of what Windows writes).
        if i + 8 <= bytes.len() && n + 4 <= BLOCK {
            let w = four_units(&bytes[i..]);
            let kept = if json {
                plain_ascii(w)
            } else {
                printable_ascii(w)
            };
            if kept {
                block[n..n + 4].copy_from_slice(&[
                    w as u8,
                    (w >> 16) as u8,
                    (w >> 32) as u8,
                    (w >> 48) as u8,
                ]);
                n += 4;
                i += 8;
                continue;
            }
        }
        let (lo, hi) = (bytes[i], bytes[i + 1]);
        if hi == 0 && (0x20..0x80).contains(&lo) && !(json && (lo == b'"' || lo == b'\\')) {
            block[n] = lo;
            n += 1;
            i += 2;
            continue;
        }
        let unit = u16::from_le_bytes([lo, hi]);
        let c = if !(0xD800..0xE000).contains(&unit) {
            i += 2;
            char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}')
        } else {
            // A surrogate: a pair makes one character, a lone one U+FFFD.
            let low = bytes
                .get(i + 2..i + 4)
                .map(|b| u16::from_le_bytes([b[0], b[1]]));
            match low {
                Some(low)
                    if (0xD800..0xDC00).contains(&unit) && (0xDC00..0xE000).contains(&low) =>
                {
                    i += 4;
                    let c =
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    char::from_u32(c).unwrap_or('\u{FFFD}')
                }
                _ => {
                    i += 2;
                    '\u{FFFD}'
                }
            }
        };
        n += if json {
            json_char_into(c, &mut block[n..])
        } else {
            c.encode_utf8(&mut block[n..]).len()
        };
    }
    flush(out, &block[..n]);
}

/// `block` holds whole characters only, so it is always UTF-8.
#[inline]
fn flush(out: &mut String, block: &[u8]) {
    if let Ok(s) = std::str::from_utf8(block) {
        out.push_str(s);
    }
}

/// Write `c` as JSON string content (the one escape table) into `buf`, which has room
/// for [`MOST_PER_CHAR`] bytes; how many it wrote.
#[inline]
fn json_char_into(c: char, buf: &mut [u8]) -> usize {
    let escape: &[u8] = match c {
        '"' => b"\\\"",
        '\\' => b"\\\\",
        '\n' => b"\\n",
        '\r' => b"\\r",
        '\t' => b"\\t",
        '\u{8}' => b"\\b",
        '\u{c}' => b"\\f",
        c if (c as u32) < 0x20 => {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            let b = c as u32 as usize;
            buf[..6].copy_from_slice(&[b'\\', b'u', b'0', b'0', HEX[b >> 4], HEX[b & 15]]);
            return 6;
        }
        c => return c.encode_utf8(buf).len(),
    };
    buf[..escape.len()].copy_from_slice(escape);
    escape.len()
}

/// Undo [`push_json_str`]'s escapes (and any standard JSON escape) in string content.
pub fn unescape_json(s: &str, out: &mut String) {
    if !s.contains('\\') {
        out.push_str(s);
        return;
    }
    let mut it = s.chars();
    while let Some(c) = it.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match it.next() {
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some('t') => out.push('\t'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let hex: String = it.by_ref().take(4).collect();
                let c = u32::from_str_radix(&hex, 16)
                    .ok()
                    .and_then(char::from_u32)
                    .unwrap_or('\u{FFFD}');
                out.push(c);
            }
            Some(c) => out.push(c),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str) -> Vec<u8> {
        s.encode_utf16().flat_map(u16::to_le_bytes).collect()
    }

    /// Long text crosses the ASCII runs' block size at every kind of character.
    #[test]
    fn long_text_is_escaped_and_decoded_char_by_char() {
        let pieces = [
            "plain ascii text ",
            "\"",
            "\\",
            "\n",
            "é",
            "😀",
            "\u{1}",
            "\u{7f}",
            "x",
        ];
        let mut text = String::new();
        for i in 0..400 {
            text.push_str(pieces[(i * 7 + i / 3) % pieces.len()]);
        }
        let lengths = [0, 1, 4, 8, 12, 16, 24, 63, 64, 65, 127, 128, 129];
        for len in lengths.into_iter().chain([text.chars().count()]) {
            let t: String = text.chars().take(len).collect();
            let mut want = String::new();
            for c in t.chars() {
                push_json_char(&mut want, c);
            }
            let mut got = String::new();
            push_json_utf16(&mut got, &utf16(&t));
            assert_eq!(got, want, "escaped, {len} chars");
            got.clear();
            push_lossy(&mut got, &utf16(&t));
            assert_eq!(got, t, "decoded, {len} chars");
        }
        for len in [4, 8, 16, 24, 200, 256, 257] {
            let ascii = "a".repeat(len);
            let mut got = String::new();
            push_lossy(&mut got, &utf16(&ascii));
            assert_eq!(got, ascii);
            got.clear();
            push_json_utf16(&mut got, &utf16(&ascii));
            assert_eq!(got, ascii);
        }
    }

    /// The four-units-at-a-time paths against a character at a time: each character that
    /// ends a plain ASCII run (or sits next to one in value) at every place of a block, and a
    /// NUL at every place.
    #[test]
    fn runs_of_four_units_agree_with_one_at_a_time() {
        let odd = [
            '\u{0}', '\u{1f}', ' ', '"', '\\', '\u{7f}', '\u{80}', '\u{120}', '\u{15c}',
            '\u{2022}', '\u{ff22}', '😀',
        ];
        for c in odd {
            for at in 0..12 {
                let t: String = (0..13).map(|i| if i == at { c } else { 'a' }).collect();
                let mut want = String::new();
                let mut plain = String::new();
                for c in t.chars() {
                    push_json_char(&mut want, c);
                    plain.push(c);
                }
                let mut got = String::new();
                push_json_utf16(&mut got, &utf16(&t));
                assert_eq!(got, want, "escaped {c:?} at {at}");
                got.clear();
                push_lossy(&mut got, &utf16(&t));
                assert_eq!(got, plain, "decoded {c:?} at {at}");
                let nul = t.find('\u{0}').unwrap_or(t.len());
                assert_eq!(
                    until_nul(&utf16(&t)),
                    &utf16(&t[..nul])[..],
                    "{c:?} at {at}"
                );
            }
        }
    }

    #[test]
    fn escapes_like_the_evtx_renderer() {
        let mut out = String::new();
        push_json_utf16(&mut out, &utf16("a\"b\\c\nd\u{1}é😀\u{7f}"));
        assert_eq!(out, "a\\\"b\\\\c\\nd\\u0001é😀\u{7f}");
        let mut lone = utf16("x");
        lone.extend_from_slice(&0xD800u16.to_le_bytes());
        lone.extend_from_slice(&utf16("y"));
        out.clear();
        push_json_utf16(&mut out, &lone);
        assert_eq!(out, "x\u{FFFD}y");
        assert_eq!(until_nul(&utf16("ab\0cd")), &utf16("ab")[..]);
        assert_eq!(until_nul(&[0x41, 0, 0x42]), &[0x41, 0][..]);
        assert!(decode_strict(&lone).is_none());
        let mut back = String::new();
        unescape_json("a\\\"b\\\\c\\nd\\u0001", &mut back);
        assert_eq!(back, "a\"b\\c\nd\u{1}");
    }
}
