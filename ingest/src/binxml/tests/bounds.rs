//! Hostile shapes stay bounded: arrays and names that repeat, templates that name one long
//! name many times, plans shared across chunks; the hand-made chunks as fuzz seeds.

#![allow(clippy::unwrap_used)]

use super::*;

/// A record `<Event><System/><EventData>` with `copies` elements `<Data Name="x">%0</Data>`,
/// whose value 0 is `value` (type, bytes).
fn repeated_data_record(copies: usize, value: (u8, Vec<u8>)) -> Vec<u8> {
    let ty = value.0;
    let writer = move |w: &mut W, _record: u64| {
        w.u8(0x0f).u8(1).u8(1).u8(0);
        w.instance(
            7,
            |t| {
                t.open("Event", false, Some(0xffff)).close_start();
                t.open("System", false, Some(0xffff)).close_start().end();
                t.open("EventData", false, Some(0xffff)).close_start();
                for _ in 0..copies {
                    t.data("x", 0, ty);
                }
                t.end().end();
            },
            std::slice::from_ref(&value),
        );
        w.u8(0x00);
    };
    chunk(&[&writer])
}

/// An array of 11 900 strings repeats each of 250 elements once per string: about 3 million
/// copies (12 MB of `data`, under the record's cap). Each copy found its string by scanning
/// the strings before it: quadratic, two minutes for this one record in a debug build (and a chunk
/// may hold several such records). The copies now walk the array once: a few seconds.
#[test]
fn long_arrays_expand_in_linear_time() {
    let (copies, items) = (250, 11_900);
    let strings = utf16(&"a\0".repeat(items));
    let data = repeated_data_record(copies, (0x81, strings));
    let started = std::time::Instant::now();
    let mut len = 0;
    let outcome = Decoder::new()
        .decode_chunk(&data, |view| len = view.data.len())
        .unwrap();
    let took = started.elapsed();
    assert_eq!((outcome.decoded, outcome.fallback.len()), (1, 0));
    // `{"x":["a","a",...]}`: one run of all the copies.
    assert_eq!(len, "{\"x\":[]}".len() + copies * items * 4 - 1);
    // A wide margin for a loaded machine; the quadratic walk takes ten times as long.
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    // (The evtx crate refuses this record: past 2^18 nodes it renders none.)
}

/// One name of 16 000 CJK characters (48 000 bytes of UTF-8) named by 2 500 elements of a
/// template: 64 KiB of chunk became 240 MB of names (each element's, and each reference's),
/// kept in the plans the decoder shares across chunks, so that a file of such chunks ran the
/// reader out of memory. A template's text now has a budget; past it, the evtx crate reads.
#[test]
fn one_long_name_cannot_blow_up_a_template() {
    let long = "\u{4e2d}".repeat(16_000);
    let writer = |w: &mut W, _record: u64| {
        w.u8(0x0f).u8(1).u8(1).u8(0);
        w.instance(
            8,
            |t| {
                t.open("Event", false, Some(0xffff)).close_start();
                // Token, dependency, size, the name reference; the name's offset after it.
                let name_at = (t.b.len() + 1 + 2 + 4 + 4) as u32;
                t.open(&long, false, Some(0xffff)).close_empty();
                for _ in 1..2_500 {
                    t.u8(0x01).u16(0xffff).u32(0).u32(name_at).close_empty();
                }
                t.end();
            },
            &[],
        );
        w.u8(0x00);
    };
    let data = chunk(&[&writer]);
    let outcome = Decoder::new().decode_chunk(&data, |_| {}).unwrap();
    assert_eq!(outcome.decoded, 0);
    let reasons: Vec<&str> = outcome.fallback.iter().map(|(_, why)| why.0).collect();
    assert_eq!(reasons, ["template text too large"]);
}

/// Chunks of a file each with a template of its own, 1 000 elements named by a 100-character
/// name: the plans shared across chunks were bounded by count only (4 096), so that they
/// could keep gigabytes. They are now bounded by weight as well.
#[test]
fn plans_shared_across_chunks_are_bounded_by_weight() {
    let mut decoder = Decoder::new();
    let mut most = 0;
    for i in 0..400 {
        let name = format!("{i:0>100}");
        let writer = |w: &mut W, _record: u64| {
            w.u8(0x0f).u8(1).u8(1).u8(0);
            w.instance(
                9,
                |t| {
                    t.open("Event", false, Some(0xffff)).close_start();
                    let name_at = (t.b.len() + 1 + 2 + 4 + 4) as u32;
                    t.open(&name, false, Some(0xffff)).close_empty();
                    for _ in 1..1_000 {
                        t.u8(0x01).u16(0xffff).u32(0).u32(name_at).close_empty();
                    }
                    t.end();
                },
                &[],
            );
            w.u8(0x00);
        };
        let outcome = decoder.decode_chunk(&chunk(&[&writer]), |_| {}).unwrap();
        assert_eq!(outcome.fallback.len(), 1);
        let (plans, weight) = decoder.shared.kept();
        assert!(
            weight <= crate::binxml::templates::MAX_SHARED_WEIGHT,
            "{plans} plans, {weight}"
        );
        most = most.max(plans);
    }
    // Plans are kept until the weight says otherwise.
    assert!((10..400).contains(&most), "{most}");
}

/// The hand-made chunks of these tests as seeds of the fuzz corpus: they hold every token and
/// value type, and the shapes the bounds above are for, which the real files do not (small
/// versions: a seed should run fast). Each must reach the renderer; with `$EVTXSQL_FUZZ_SEEDS`
/// set (`fuzz/seed.sh` sets it) they are also written there.
#[test]
fn fuzz_seeds_reach_the_renderer() {
    let dir = std::env::var_os("EVTXSQL_FUZZ_SEEDS").map(std::path::PathBuf::from);
    if let Some(dir) = &dir {
        std::fs::create_dir_all(dir).unwrap();
    }
    let strings = utf16(&"a\0bc\0".repeat(20));
    let sids = [SID; 3].concat();
    let seeds = [
        ("every-token-and-type", sample_chunk()),
        ("string-array", repeated_data_record(8, (0x81, strings))),
        ("sid-array", repeated_data_record(4, (0x93, sids))),
        ("int-array", repeated_data_record(4, (0x88, vec![7; 40]))),
    ];
    for (name, bytes) in seeds {
        // Each reaches the renderer.
        let outcome = Decoder::new().decode_chunk(&bytes, |_| {}).unwrap();
        assert!(
            outcome.decoded > 0 && outcome.fallback.is_empty(),
            "{name}: {outcome:?}"
        );
        if let Some(dir) = &dir {
            std::fs::write(dir.join(format!("handmade-{name}")), bytes).unwrap();
        }
    }
}

/// `<Data Name="%0">x</Data>` with value 0 an array of 10 000 different strings: one copy per
/// string, each a member of its own name. Each copy looked for its name among the names
/// written before it, decoding each again: quadratic.
#[test]
fn many_data_names_are_counted_in_linear_time() {
    let items = 10_000;
    let mut names = String::new();
    for i in 0..items {
        names.push(char::from_u32(0x4e00 + i as u32).unwrap());
        names.push('\0');
    }
    let writer = |w: &mut W, _record: u64| {
        w.u8(0x0f).u8(1).u8(1).u8(0);
        w.instance(
            10,
            |t| {
                t.open("Event", false, Some(0xffff)).close_start();
                t.open("System", false, Some(0xffff)).close_start().end();
                t.open("EventData", false, Some(0xffff)).close_start();
                t.open("Data", true, Some(0xffff))
                    .attr("Name")
                    .sub(0, 0x81, false)
                    .close_start()
                    .text("x")
                    .end();
                t.end().end();
            },
            &[(0x81, utf16(&names))],
        );
        w.u8(0x00);
    };
    let data = chunk(&[&writer]);
    let started = std::time::Instant::now();
    let mut keys = 0;
    let outcome = Decoder::new()
        .decode_chunk(&data, |view| {
            let v: serde_json::Value = serde_json::from_str(view.data).unwrap();
            keys = v.as_object().unwrap().len();
        })
        .unwrap();
    let took = started.elapsed();
    assert_eq!((outcome.decoded, outcome.fallback.len()), (1, 0));
    assert_eq!(keys, items);
    assert!(took < std::time::Duration::from_secs(30), "{took:?}");
    // As the evtx crate renders it.
    let (ours, theirs) = both(&data);
    assert_eq!(ours.unwrap(), theirs.unwrap());
}
