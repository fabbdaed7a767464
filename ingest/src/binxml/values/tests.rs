//! Tests of the substitution values: reading, bounds, and their text.

#![allow(clippy::unwrap_used)]
use super::*;

fn text(v: Val<'_>) -> String {
    let mut s = String::new();
    v.write(&mut s, true).unwrap();
    s
}

/// A FILETIME read straight as microseconds is the time its text parses back to, from
/// 1970 to the end of 9999, and none outside.
#[test]
fn filetime_micros_agree_with_the_text() {
    let mut x: u64 = 7;
    let mut times = vec![
        super::super::chunk::UNIX_EPOCH_FILETIME,
        super::super::chunk::MAX_FILETIME,
        133_760_745_556_879_013,
        133_760_745_556_879_019,
    ];
    for _ in 0..2000 {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        times.push(
            super::super::chunk::UNIX_EPOCH_FILETIME
                + x % (super::super::chunk::MAX_FILETIME
                    - super::super::chunk::UNIX_EPOCH_FILETIME),
        );
    }
    for ft in times {
        assert_eq!(
            filetime_micros(ft),
            crate::json::parse_system_time(&text(Val::FileTime(ft))),
            "{ft}"
        );
    }
    assert_eq!(
        filetime_micros(super::super::chunk::UNIX_EPOCH_FILETIME - 1),
        None
    );
    assert_eq!(filetime_micros(super::super::chunk::MAX_FILETIME + 1), None);
}

#[test]
fn renders_like_the_evtx_crate() {
    let guid = [
        0x17, 0xe6, 0x8c, 0xd4, 0xa2, 0x33, 0xc3, 0x4b, 0xa5, 0xc7, 0x11, 0xaa, 0x4f, 0x29, 0x61,
        0x9e,
    ];
    assert_eq!(
        text(Val::Guid(&guid)),
        "{d48ce617-33a2-4bc3-a5c7-11aa4f29619e}"
    );
    let sid = [1, 1, 0, 0, 0, 0, 0, 5, 18, 0, 0, 0];
    assert_eq!(text(Val::Sid(&sid)), "S-1-5-18");
    assert_eq!(
        text(Val::Hex64(0x8080_0000_0000_0000)),
        "0x8080000000000000"
    );
    assert_eq!(text(Val::Hex32(0)), "0x0");
    assert_eq!(text(Val::I8(-5)), "-5");
    assert_eq!(text(Val::Binary(&[0x0a, 0xff])), "0AFF");
    assert_eq!(
        text(Val::FileTime(133_760_745_556_879_013)),
        "2024-11-14T16:15:55.6879013Z"
    );
    assert_eq!(
        text(Val::FileTime(u64::MAX)),
        "0000-00-00T00:00:00.0000000Z"
    );
    let st: Vec<u8> = [2019u16, 3, 5, 1, 12, 34, 56, 789]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    assert_eq!(text(Val::SysTime(&st)), "2019-03-01T12:34:56.7890000Z");
    assert_eq!(text(Val::SysTime(&[0; 16])), "1601-01-01T00:00:00.0000000Z");
    assert_eq!(text(Val::Ansi(b"a\0\x80\"")), "a€\\\"");
    assert_eq!(text(Val::F64(0.5)), "0.5");
}

/// Integers, hex integers and binary written without `format!` give `format!`'s text, at every
/// width and at the ends of each type's range; binary across the writer's 64-byte pieces.
#[test]
fn numbers_and_binary_read_as_format_writes_them() {
    let mut u = vec![0u64, 1, 9, 10, 99, 100, u64::MAX, u64::from(u32::MAX)];
    u.extend((0..64).map(|s| 1u64 << s));
    u.extend((0..64).map(|s| (1u64 << s).wrapping_sub(1)));
    for &v in &u {
        assert_eq!(text(Val::U64(v)), v.to_string());
        assert_eq!(text(Val::Hex64(v)), format!("0x{v:x}"));
        let w = v as u32;
        assert_eq!(text(Val::Hex32(w)), format!("0x{w:x}"));
        assert_eq!(text(Val::U32(w)), w.to_string());
        let i = v as i64;
        assert_eq!(text(Val::I64(i)), i.to_string());
        assert_eq!(
            text(Val::I64(i.wrapping_neg())),
            i.wrapping_neg().to_string()
        );
    }
    assert_eq!(text(Val::I64(i64::MIN)), i64::MIN.to_string());
    assert_eq!(text(Val::I16(i16::MIN)), i16::MIN.to_string());
    assert_eq!(text(Val::U8(255)), "255");
    for len in [0, 1, 63, 64, 65, 200] {
        let bytes: Vec<u8> = (0..len).map(|i| (i * 37 + 11) as u8).collect();
        let want: String = bytes.iter().map(|b| format!("{b:02X}")).collect();
        assert_eq!(text(Val::Binary(&bytes)), want, "{len} bytes");
    }
}

/// ANSI text written in runs is the text written byte by byte: NULs dropped, Windows-1252
/// for the high bytes, JSON escapes (quotes, backslashes, controls) only in JSON.
#[test]
fn ansi_text_is_windows_1252_byte_by_byte() {
    let one_by_one = |s: &[u8], json: bool| {
        let mut out = String::new();
        for &b in s.iter().filter(|&&b| b != 0) {
            let c = windows_1252(b);
            if json {
                strings::push_json_char(&mut out, c);
            } else {
                out.push(c);
            }
        }
        out
    };
    let mut x: u64 = 11;
    let mut cases: Vec<Vec<u8>> = vec![
        b"C:\\Windows\\System32\\svchost.exe".to_vec(),
        b"plain text only".to_vec(),
        b"\"quoted\"\ttab\r\n\x7f\x80\x9f\xa0\xff\0\0end".to_vec(),
        Vec::new(),
        vec![0; 5],
    ];
    for len in 0..200 {
        let bytes = (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                // Mostly printable ASCII, with every other kind of byte mixed in.
                match (x >> 59) % 4 {
                    0 => (x >> 33) as u8,
                    _ => b'a' + ((x >> 40) % 26) as u8,
                }
            })
            .collect();
        cases.push(bytes);
    }
    for case in &cases {
        for json in [true, false] {
            let mut out = String::from("before|");
            Val::Ansi(case).write(&mut out, json).unwrap();
            assert_eq!(
                out,
                format!("before|{}", one_by_one(case, json)),
                "{case:?} {json}"
            );
        }
    }
}

#[test]
fn substitution_arrays_are_bounded() {
    // Two values: a UInt8 and a UTF-16 string "hi".
    let mut data = 2u32.to_le_bytes().to_vec();
    data.extend_from_slice(&[1, 0, ty::UINT8, 0, 4, 0, ty::STRING, 0, 7]);
    data.extend_from_slice(&[b'h', 0, b'i', 0]);
    let mut out = Vec::new();
    let end = read_substitutions(&data, 0, data.len(), &mut out).unwrap();
    assert_eq!(end, data.len());
    assert!(matches!(out[0], Val::U8(7)));
    assert_eq!(text(out[1]), "hi");
    // A count that claims more than the record holds.
    let huge = u32::MAX.to_le_bytes();
    assert!(read_substitutions(&huge, 0, 4, &mut Vec::new()).is_err());
    // A value past the limit.
    out.clear();
    assert!(read_substitutions(&data, 0, data.len() - 1, &mut out).is_err());
    // Arrays: one item renders as the item, several are not for the fast path.
    let one = array(0x81, &[b'a', 0, 0, 0]).unwrap();
    assert_eq!(text(one), "a");
    assert!(!one.is_bare());
    let Val::Array(items) = array(0x81, &[b'a', 0, 0, 0, b'b', 0, 0, 0]).unwrap() else {
        panic!("an array of two")
    };
    assert_eq!(items.count, 2);
    let (a, next) = items.item_at(0).unwrap();
    assert_eq!((text(a), next), ("a".to_owned(), 4));
    let (b, next) = items.item_at(next).unwrap();
    assert_eq!((text(b), next), ("b".to_owned(), 8));
    assert!(items.item_at(next).is_none());
    assert!(items.item_at(usize::MAX).is_none());
    let Val::Array(ints) = array(0x8d, &[1, 0, 0, 0, 7, 0, 0, 0]).unwrap() else {
        panic!("an array of two")
    };
    assert!(matches!(ints.item_at(4), Some((Val::I32(7), 8))));
    assert!(ints.item_at(usize::MAX - 1).is_none());
    assert!(matches!(array(0x88, &[]).unwrap(), Val::EmptyArray));
    assert!(array(0x88, &[1, 2, 3]).is_err());
}
