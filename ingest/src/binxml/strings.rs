//! UTF-16LE text as EVTX stores it: the part before the first NUL, decoded to UTF-8, and written
//! as JSON string content the way the evtx crate escapes it (`\"`, `\\`, `\n`, `\r`, `\t`, `\b`,
//! `\f`, other C0 controls as `\u00XX`; an unpaired surrogate becomes U+FFFD).

/// The code units before the first NUL unit (an odd trailing byte is dropped).
pub fn until_nul(bytes: &[u8]) -> &[u8] {
    let mut i = 0;
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
    // ASCII fast path.
    if bytes.chunks_exact(2).all(|u| u[1] == 0 && u[0] < 0x80) {
        out.reserve(bytes.len() / 2);
        let mut at = 0;
        while at < bytes.len() & !1 {
            at = push_ascii_run(out, bytes, at, |_| true);
        }
        return;
    }
    for c in chars(bytes) {
        out.push(c.unwrap_or('\u{FFFD}'));
    }
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
    match c {
        '"' => out.push_str("\\\""),
        '\\' => out.push_str("\\\\"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        c if (c as u32) < 0x20 => {
            const HEX: &[u8; 16] = b"0123456789ABCDEF";
            let b = c as u32 as usize;
            out.push_str("\\u00");
            out.push(char::from(HEX[b >> 4]));
            out.push(char::from(HEX[b & 15]));
        }
        c => out.push(c),
    }
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

/// Bytes of ASCII gathered before they go into a `String` at once.
const RUN: usize = 64;

/// Append the run of ASCII code units of UTF-16LE `bytes` from `at` (even) whose low byte
/// `keep` accepts, up to [`RUN`] of them, in one `push_str`; the offset after them.
#[inline]
fn push_ascii_run(out: &mut String, bytes: &[u8], at: usize, keep: impl Fn(u8) -> bool) -> usize {
    let mut run = [0u8; RUN];
    let mut n = 0;
    let units = bytes
        .get(at..)
        .unwrap_or_default()
        .chunks_exact(2)
        .take(RUN);
    for u in units {
        if u[1] != 0 || u[0] >= 0x80 || !keep(u[0]) {
            break;
        }
        run[n] = u[0];
        n += 1;
    }
    // ASCII only, so always UTF-8.
    if let Ok(s) = std::str::from_utf8(&run[..n]) {
        out.push_str(s);
    }
    at + 2 * n
}

/// Append UTF-16LE `bytes` as JSON string content.
pub fn push_json_utf16(out: &mut String, bytes: &[u8]) {
    let bytes = &bytes[..bytes.len() & !1];
    out.reserve(bytes.len() / 2);
    let mut i = 0;
    while i < bytes.len() {
        // A run of ASCII that needs no escape.
        let after = push_ascii_run(out, bytes, i, |lo| lo >= 0x20 && lo != b'"' && lo != b'\\');
        if after != i {
            i = after;
            continue;
        }
        let (lo, hi) = (bytes[i], bytes[i + 1]);
        let unit = u16::from_le_bytes([lo, hi]);
        if !(0xD800..0xE000).contains(&unit) {
            // One BMP character (or an ASCII one to escape).
            push_json_char(out, char::from_u32(u32::from(unit)).unwrap_or('\u{FFFD}'));
            i += 2;
            continue;
        }
        // A surrogate: a pair makes one character, a lone one U+FFFD.
        let next = bytes
            .get(i + 2..i + 4)
            .map(|b| u16::from_le_bytes([b[0], b[1]]));
        match next {
            Some(low) if (0xD800..0xDC00).contains(&unit) && (0xDC00..0xE000).contains(&low) => {
                let c = 0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                out.push(char::from_u32(c).unwrap_or('\u{FFFD}'));
                i += 4;
            }
            _ => {
                out.push('\u{FFFD}');
                i += 2;
            }
        }
    }
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
        for len in [0, 1, 63, 64, 65, 127, 128, 129, text.chars().count()] {
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
        let ascii = "a".repeat(200);
        let mut got = String::new();
        push_lossy(&mut got, &utf16(&ascii));
        assert_eq!(got, ascii);
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
