//! A chunk made by hand with every token and every value type Windows writes, read by this
//! decoder and by the evtx crate: the rows must be the same, `data` byte for byte. It holds a
//! record whose EventData is a nested instance (a 0x21 value) with a Data element of every
//! value type (signed, floating, bool and a bool bitmask, binary, GUID, size_t, SYSTEMTIME,
//! SID, hex, ANSI, null, a one-item array, an array that repeats its element, an int array),
//! an optional empty substitution, an element left out by its dependency, text with CDATA, a
//! character reference and a processing instruction, a repeated Data name (`_1`) and a
//! non-Data element; System with entity and character references, optional attributes; and a
//! record with a UserData payload.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use arrow::array::{Array, AsArray};
use arrow::record_batch::RecordBatch;
use arrow::util::display::{ArrayFormatter, FormatOptions};

use super::Decoder;
use crate::convert::EventsBuilder;

/// Writes BinXML into a chunk buffer; offsets are the chunk's.
struct W {
    b: Vec<u8>,
}

impl W {
    fn u8(&mut self, v: u8) -> &mut Self {
        self.b.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut Self {
        self.b.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut Self {
        self.b.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut Self {
        self.b.extend_from_slice(&v.to_le_bytes());
        self
    }
    fn utf16(&mut self, s: &str) -> &mut Self {
        for u in s.encode_utf16() {
            self.u16(u);
        }
        self
    }
    /// A name reference with the name stored inline.
    fn name(&mut self, s: &str) -> &mut Self {
        let at = self.b.len() as u32 + 4;
        self.u32(at)
            .u32(0)
            .u16(0)
            .u16(s.encode_utf16().count() as u16);
        self.utf16(s).u16(0)
    }
    /// Element start (in a template definition: with a dependency id).
    fn open(&mut self, name: &str, attrs: bool, dep: Option<u16>) -> &mut Self {
        self.u8(if attrs { 0x41 } else { 0x01 });
        if let Some(d) = dep {
            self.u16(d);
        }
        self.u32(0).name(name);
        if attrs {
            self.u32(0);
        }
        self
    }
    fn attr(&mut self, name: &str) -> &mut Self {
        self.u8(0x46).name(name)
    }
    fn text(&mut self, s: &str) -> &mut Self {
        self.u8(0x05).u8(0x01).u16(s.encode_utf16().count() as u16);
        self.utf16(s)
    }
    fn sub(&mut self, id: u16, ty: u8, optional: bool) -> &mut Self {
        self.u8(if optional { 0x0e } else { 0x0d }).u16(id).u8(ty)
    }
    fn close_start(&mut self) -> &mut Self {
        self.u8(0x02)
    }
    fn close_empty(&mut self) -> &mut Self {
        self.u8(0x03)
    }
    fn end(&mut self) -> &mut Self {
        self.u8(0x04)
    }
    /// `<Data Name="name">%id</Data>`.
    fn data(&mut self, name: &str, id: u16, ty: u8) -> &mut Self {
        self.open("Data", true, Some(0xffff))
            .attr("Name")
            .text(name)
            .close_start()
            .sub(id, ty, false)
            .end()
    }
    /// A template instance with its definition inline (`body` writes the definition's
    /// tokens), then `values` (type, bytes).
    fn instance(&mut self, guid: u8, body: impl FnOnce(&mut W), values: &[(u8, Vec<u8>)]) {
        self.u8(0x0c).u8(0x01).u32(guid.into());
        let def = self.b.len() as u32 + 4;
        self.u32(def);
        self.u32(0);
        self.b.extend_from_slice(&[guid; 16]);
        let size_at = self.b.len();
        self.u32(0);
        let start = self.b.len();
        self.u8(0x0f).u8(1).u8(1).u8(0);
        body(self);
        self.u8(0x00);
        let size = (self.b.len() - start) as u32;
        self.b[size_at..size_at + 4].copy_from_slice(&size.to_le_bytes());
        self.u32(values.len() as u32);
        for (ty, v) in values {
            self.u16(v.len() as u16).u8(*ty).u8(0);
        }
        for (_, v) in values {
            self.b.extend_from_slice(v);
        }
    }
}

fn utf16(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(u16::to_le_bytes).collect()
}

fn le<T: Copy, const N: usize>(vals: &[T], f: impl Fn(T) -> [u8; N]) -> Vec<u8> {
    vals.iter().flat_map(|v| f(*v)).collect()
}

const SID: [u8; 16] = [1, 2, 0, 0, 0, 0, 0, 5, 21, 0, 0, 0, 0xe9, 3, 0, 0];

/// The System part of the template: values 0..=13.
fn system(w: &mut W) {
    w.open("System", false, Some(0xffff)).close_start();
    w.open("Provider", true, Some(0xffff))
        .attr("Name")
        .text("Test-Provider")
        .attr("Guid")
        .sub(0, 0x0f, false)
        .close_empty();
    w.open("EventID", true, Some(0xffff))
        .attr("Qualifiers")
        .sub(1, 0x06, true)
        .close_start()
        .sub(2, 0x06, false)
        .end();
    for (name, id, ty) in [
        ("Version", 3, 0x04),
        ("Level", 4, 0x04),
        ("Task", 5, 0x06),
        ("Opcode", 6, 0x04),
        ("Keywords", 7, 0x15),
    ] {
        w.open(name, false, Some(0xffff))
            .close_start()
            .sub(id, ty, false)
            .end();
    }
    w.open("TimeCreated", true, Some(0xffff))
        .attr("SystemTime")
        .sub(8, 0x11, false)
        .close_empty();
    w.open("EventRecordID", false, Some(0xffff))
        .close_start()
        .sub(9, 0x0a, false)
        .end();
    w.open("Correlation", true, Some(0xffff))
        .attr("ActivityID")
        .sub(10, 0x0f, true)
        .close_empty();
    w.open("Execution", true, Some(0xffff))
        .attr("ProcessID")
        .sub(11, 0x08, false)
        .attr("ThreadID")
        .sub(12, 0x08, false)
        .close_empty();
    w.open("Channel", false, Some(0xffff))
        .close_start()
        .text("Test/Operational")
        .end();
    // Text, an entity reference and a character reference.
    w.open("Computer", false, Some(0xffff))
        .close_start()
        .text("HOST");
    w.u8(0x09).name("amp");
    w.u8(0x08).u16(u16::from(b'1'));
    w.end();
    w.open("Security", true, Some(0xffff))
        .attr("UserID")
        .sub(13, 0x13, true)
        .close_empty();
    w.end();
}

fn system_values(record: u64, qualifiers: bool) -> Vec<(u8, Vec<u8>)> {
    vec![
        (0x0f, (0u8..16).collect()),
        if qualifiers {
            (0x06, 16384u16.to_le_bytes().to_vec())
        } else {
            (0x00, vec![])
        },
        (0x06, 4624u16.to_le_bytes().to_vec()),
        (0x04, vec![2]),
        (0x04, vec![4]),
        (0x06, 12544u16.to_le_bytes().to_vec()),
        (0x04, vec![0]),
        (0x15, 0x8020_0000_0000_0000u64.to_le_bytes().to_vec()),
        (0x11, 133_760_745_556_879_013u64.to_le_bytes().to_vec()),
        (0x0a, record.to_le_bytes().to_vec()),
        (0x0f, vec![0xab; 16]),
        (0x08, 4u32.to_le_bytes().to_vec()),
        (0x08, 1234u32.to_le_bytes().to_vec()),
        (0x13, SID.to_vec()),
    ]
}

/// Writes one record's BinXML, given its record id.
type RecordWriter<'r> = &'r dyn Fn(&mut W, u64);

/// A chunk of records; each writes its BinXML through `W`.
fn chunk(records: &[RecordWriter<'_>]) -> Vec<u8> {
    let mut w = W { b: vec![0u8; 512] };
    w.b[..8].copy_from_slice(b"ElfChnk\0");
    let mut last = 0;
    for (i, rec) in records.iter().enumerate() {
        let id = i as u64 + 1;
        let at = w.b.len();
        last = at;
        w.u32(0x2a2a).u32(0).u64(id).u64(133_760_745_556_879_013);
        rec(&mut w, id);
        let size = (w.b.len() + 4 - at) as u32;
        w.u32(size);
        w.b[at + 4..at + 8].copy_from_slice(&size.to_le_bytes());
    }
    let free = w.b.len() as u32;
    let n = records.len() as u64;
    for (at, v) in [(8, 1), (16, n), (24, 1), (32, n)] {
        w.b[at..at + 8].copy_from_slice(&u64::to_le_bytes(v));
    }
    w.b[40..44].copy_from_slice(&128u32.to_le_bytes());
    w.b[44..48].copy_from_slice(&(last as u32).to_le_bytes());
    w.b[48..52].copy_from_slice(&free.to_le_bytes());
    w.b.resize(65_536, 0);
    w.b
}

/// The EventData template (nested, a 0x21 value): every value type, arrays, CDATA, PI.
fn event_data(w: &mut W) {
    w.open("EventData", false, Some(0xffff)).close_start();
    let types: [(&str, u8); 21] = [
        ("S", 0x01),
        ("A", 0x02),
        ("I8", 0x03),
        ("I16", 0x05),
        ("I32", 0x07),
        ("I64", 0x09),
        ("F32", 0x0b),
        ("F64", 0x0c),
        ("B", 0x0d),
        ("BRaw", 0x0d),
        ("Bin", 0x0e),
        ("G", 0x0f),
        ("SizeT", 0x10),
        ("ST", 0x12),
        ("Sid", 0x13),
        ("H32", 0x14),
        ("Null", 0x01),
        ("One", 0x81),
        ("Many", 0x81),
        ("Ints", 0x88),
        ("U64", 0x0a),
    ];
    for (i, (name, ty)) in types.iter().enumerate() {
        w.data(name, i as u16, *ty);
    }
    // Optional, empty: the Data stays, empty.
    w.open("Data", true, Some(0xffff))
        .attr("Name")
        .text("Opt")
        .close_start()
        .sub(21, 0x01, true)
        .end();
    // Left out: its dependency is a NullType value.
    w.open("Data", true, Some(16))
        .attr("Name")
        .text("Gone")
        .close_start()
        .text("x")
        .end();
    // Mixed content: text, CDATA, a character reference, a processing instruction.
    w.open("Data", true, Some(0xffff))
        .attr("Name")
        .text("Mixed")
        .close_start()
        .text("a<");
    w.u8(0x07).u16(3).utf16("c&d");
    w.u8(0x08).u16(0x263A);
    w.u8(0x0a).name("pi");
    w.u8(0x0b).u16(2).utf16("zz");
    w.end();
    // A repeated name, apart: `_1`.
    w.data("S", 0, 0x01);
    // Not a Data element.
    w.open("Binary", false, Some(0xffff))
        .close_start()
        .sub(10, 0x0e, false)
        .end();
    w.end();
}

fn event_data_values() -> Vec<(u8, Vec<u8>)> {
    let st: Vec<u8> = le(&[2019u16, 3, 5, 1, 12, 34, 56, 789], u16::to_le_bytes);
    vec![
        (0x01, utf16("q\"b\\s\n\t\u{1}é😀 end")),
        (0x02, b"ansi \x80\0".to_vec()),
        (0x03, vec![0xfe]),
        (0x05, (-300i16).to_le_bytes().to_vec()),
        (0x07, (-70000i32).to_le_bytes().to_vec()),
        (0x09, (-5_000_000_000i64).to_le_bytes().to_vec()),
        (0x0b, 1.5f32.to_le_bytes().to_vec()),
        (0x0c, 1e21f64.to_le_bytes().to_vec()),
        (0x0d, 1u32.to_le_bytes().to_vec()),
        (0x0d, 2u32.to_le_bytes().to_vec()),
        (0x0e, vec![0xde, 0xad, 0x01]),
        (0x0f, (16u8..32).collect()),
        (0x10, 0xffff_0000_1234u64.to_le_bytes().to_vec()),
        (0x12, st),
        (0x13, SID.to_vec()),
        (0x14, 0xc000_006du32.to_le_bytes().to_vec()),
        (0x00, vec![]),
        (0x81, utf16("only\0")),
        (0x81, utf16("x\0\0z\0")),
        (0x88, le(&[7u32, 8], u32::to_le_bytes)),
        (0x0a, u64::MAX.to_le_bytes().to_vec()),
        (0x01, vec![]),
    ]
}

fn rows(batch: &RecordBatch) -> Vec<String> {
    let opts = FormatOptions::default().with_null("∅");
    let mut out = Vec::new();
    for i in 0..batch.num_rows() {
        let mut row = Vec::new();
        for (j, c) in batch.columns().iter().enumerate() {
            let name = batch.schema().field(j).name().clone();
            if name == "data" {
                let v: serde_json::Value =
                    serde_json::from_str(c.as_string::<i32>().value(i)).unwrap();
                row.push(format!("data={v}"));
            } else {
                let f = ArrayFormatter::try_new(c.as_ref(), &opts).unwrap();
                row.push(format!("{name}={}", f.value(i)));
            }
        }
        out.push(row.join(" "));
    }
    out
}

/// The hand-made chunk: a record with a nested EventData instance, one with UserData.
fn sample_chunk() -> Vec<u8> {
    let nested = |w: &mut W, record: u64| {
        w.u8(0x0f).u8(1).u8(1).u8(0);
        let mut values = system_values(record, true);
        // Value 14: the EventData instance, BinXML of its own. Offsets in it are the chunk's,
        // so it is written where it will land: after the outer instance, whose layout a probe
        // with an empty value 14 (the last) gives.
        values.push((0x21, vec![]));
        let outer_values = values;
        let mut probe = W { b: w.b.clone() };
        probe.instance(
            1,
            |t| {
                t.open("Event", true, Some(0xffff))
                    .attr("xmlns")
                    .text("http://schemas.microsoft.com/win/2004/08/events/event")
                    .close_start();
                system(t);
                t.sub(14, 0x21, true);
                t.end();
            },
            &outer_values,
        );
        // Where value 14 would start: the end of the probe (it is last and empty).
        let nested_at = probe.b.len();
        let mut n = W {
            b: vec![0u8; nested_at],
        };
        n.u8(0x0f).u8(1).u8(1).u8(0);
        n.instance(2, event_data, &event_data_values());
        n.u8(0x00);
        let nested_bytes = n.b[nested_at..].to_vec();
        let mut values = outer_values;
        values[14] = (0x21, nested_bytes);
        w.instance(
            1,
            |t| {
                t.open("Event", true, Some(0xffff))
                    .attr("xmlns")
                    .text("http://schemas.microsoft.com/win/2004/08/events/event")
                    .close_start();
                system(t);
                t.sub(14, 0x21, true);
                t.end();
            },
            &values,
        );
        w.u8(0x00);
    };
    let user_data = |w: &mut W, record: u64| {
        w.u8(0x0f).u8(1).u8(1).u8(0);
        w.instance(
            3,
            |t| {
                t.open("Event", false, Some(0xffff)).close_start();
                system(t);
                t.open("UserData", false, Some(0xffff)).close_start();
                t.open("EventXML", true, Some(0xffff))
                    .attr("xmlns")
                    .text("urn:x")
                    .close_start();
                t.open("ShareName", false, Some(0xffff))
                    .close_start()
                    .sub(14, 0x01, false)
                    .end();
                t.open("Status", false, Some(0xffff))
                    .close_start()
                    .sub(15, 0x14, false)
                    .end();
                t.end().end().end();
            },
            &[
                system_values(record, false),
                vec![
                    (0x01, utf16("\\\\*\\IPC$")),
                    (0x14, 0xc05d_0002u32.to_le_bytes().to_vec()),
                ],
            ]
            .concat(),
        );
        w.u8(0x00);
    };
    chunk(&[&nested, &user_data])
}

/// The rows of `data` through our decoder and through the evtx crate's JSON (None when a
/// path cannot read the chunk).
fn both(data: &[u8]) -> (Option<Vec<String>>, Option<Vec<String>>) {
    let mut ours = EventsBuilder::with_capacity(4);
    let outcome = Decoder::new().decode_chunk(data, |view| {
        ours.push_view(1, view);
    });
    let ours = outcome.ok().map(|_| rows(&ours.finish().unwrap()));
    let theirs = (|| {
        let mut theirs = EventsBuilder::with_capacity(4);
        let mut chunk = evtx::EvtxChunkData::new(data.to_vec(), false).ok()?;
        let settings = Arc::new(evtx::ParserSettings::new().num_threads(1).indent(false));
        let mut parsed = chunk.parse(settings).ok()?;
        for r in parsed.iter().flatten() {
            let (id, t) = (r.event_record_id, r.timestamp.as_microsecond());
            if let Ok(json) = r.into_json_bytes() {
                let _ = theirs.push_json(1, id, Some(t), &json.data);
            }
        }
        Some(rows(&theirs.finish().ok()?))
    })();
    (ours, theirs)
}

/// The hand-made chunk with bytes flipped: every row the decoder gives, the evtx crate gives
/// the same; and nothing panics.
#[test]
fn mutated_records_decode_as_the_evtx_crate_or_not_at_all() {
    let clean = sample_chunk();
    let used = u32::from_le_bytes([clean[48], clean[49], clean[50], clean[51]]) as usize;
    let mut seed = 0x1234_5678_9abc_def1u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let mut decoded = 0;
    for _ in 0..3000 {
        let mut data = clean.clone();
        for _ in 0..1 + next() % 6 {
            let at = 512 + (next() as usize) % (used - 512);
            data[at] ^= 1 << (next() % 8);
        }
        let (ours, theirs) = both(&data);
        let Some(ours) = ours else { continue };
        let theirs = theirs.unwrap_or_default();
        for row in &ours {
            assert!(theirs.contains(row), "decoder row not from evtx: {row}");
        }
        decoded += ours.len();
    }
    assert!(decoded > 500, "{decoded}");
}

#[test]
fn every_token_and_value_type_as_the_evtx_crate_renders_them() {
    let data = sample_chunk();

    // Our decoder.
    let mut ours = EventsBuilder::with_capacity(4);
    let outcome = Decoder::new()
        .decode_chunk(&data, |view| {
            ours.push_view(1, view);
        })
        .unwrap();
    assert_eq!(
        (outcome.decoded, outcome.fallback.len(), outcome.cutoff),
        (2, 0, None),
        "{:?}",
        outcome.fallback
    );
    // The evtx crate.
    let mut theirs = EventsBuilder::with_capacity(4);
    let mut chunk = evtx::EvtxChunkData::new(data.clone(), false).unwrap();
    let settings = Arc::new(evtx::ParserSettings::new().num_threads(1).indent(false));
    let mut parsed = chunk.parse(settings).unwrap();
    for r in parsed.iter() {
        let r = r.unwrap();
        let (id, t) = (r.event_record_id, r.timestamp.as_microsecond());
        let json = r.into_json_bytes().unwrap();
        theirs.push_json(1, id, Some(t), &json.data).unwrap();
    }
    let (a, b) = (ours.finish().unwrap(), theirs.finish().unwrap());
    assert_eq!(b.num_rows(), 2);
    let (ra, rb) = (rows(&a), rows(&b));
    for (x, y) in ra.iter().zip(&rb) {
        assert_eq!(x, y);
    }
    // And byte for byte.
    let (da, db) = (
        a.column_by_name("data").unwrap().as_string::<i32>(),
        b.column_by_name("data").unwrap().as_string::<i32>(),
    );
    for i in 0..2 {
        assert_eq!(da.value(i), db.value(i));
    }
    assert!(!da.is_null(0));
}

// --- Hostile inputs: bounds the fuzz target (`fuzz/`) and review found. ---

mod bounds;
