//! The crate's integration tests: written files read back by the `evtx` crate (checksums
//! verified), counts, and determinism against the committed set; scenario truth in
//! `scenarios`.
#![allow(clippy::unwrap_used)]

mod scenarios;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use scenarios::small;
use std::sync::Arc;

use evtx::{EvtxParser, ParserSettings};
use evtxsql_samples::catalog::{Catalog, Kind};
use evtxsql_samples::scenario::{
    BUILD_24H2, Emit, GenerateOptions, Host, file_events, scenario_names,
};
use evtxsql_samples::writer::{
    Event, EvtxWriter, FileTime, Guid, Sid, Value, ValueType, write_evtx,
};
use serde_json::Value as Json;

fn parse_all(path: &Path) -> Vec<Json> {
    let settings = ParserSettings::new()
        .validate_checksums(true)
        .num_threads(1);
    let mut parser = EvtxParser::from_path(path)
        .unwrap()
        .with_configuration(settings);
    parser
        .records_json_value()
        .map(|r| r.unwrap().data)
        .collect()
}

/// What the evtx crate renders for a value.
fn expected(v: &Value) -> Json {
    match v {
        Value::Null => Json::Null,
        Value::String(s) => Json::from(s.to_string()),
        Value::UInt8(x) => Json::from(*x),
        Value::UInt16(x) => Json::from(*x),
        Value::UInt32(x) => Json::from(*x),
        Value::UInt64(x) => Json::from(*x),
        Value::Bool(b) => Json::from(*b),
        Value::Binary(b) => Json::from(b.iter().map(|x| format!("{x:02X}")).collect::<String>()),
        Value::Guid(g) => Json::from(g.to_string()),
        Value::FileTime(t) => Json::from(format!("{}0Z", &t.to_rfc3339()[..26])),
        Value::Sid(s) => Json::from(s.to_string()),
        Value::HexInt32(x) => Json::from(format!("0x{x:x}")),
        Value::HexInt64(x) => Json::from(format!("0x{x:x}")),
    }
}

fn same(v: &Value, got: &Json) -> bool {
    let want = expected(v);
    match (&want, got) {
        (Json::String(a), Json::String(b)) if matches!(v, Value::Guid(_)) => {
            a.eq_ignore_ascii_case(b)
        }
        _ => &want == got,
    }
}

/// Compare one parsed record with the event written.
fn check_record(json: &Json, e: &Event, record_id: u64) {
    let ev = &json["Event"];
    let sys = &ev["System"];
    let s = &e.schema;
    assert_eq!(
        sys["Provider"]["#attributes"]["Name"],
        Json::from(s.provider.to_string())
    );
    if let Some(g) = s.provider_guid {
        assert!(
            sys["Provider"]["#attributes"]["Guid"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(&g.to_string())
        );
    }
    let event_id = if s.qualifiers.is_some() {
        &sys["EventID"]["#text"]
    } else {
        &sys["EventID"]
    };
    assert_eq!(event_id, &Json::from(s.event_id), "{json}");
    if let Some(q) = s.qualifiers {
        assert_eq!(sys["EventID"]["#attributes"]["Qualifiers"], Json::from(q));
    }
    assert_eq!(sys["Version"], Json::from(s.version));
    assert_eq!(sys["Level"], Json::from(s.level));
    assert_eq!(sys["Task"], Json::from(s.task));
    assert_eq!(sys["Opcode"], Json::from(s.opcode));
    assert_eq!(sys["Keywords"], Json::from(format!("0x{:x}", s.keywords)));
    assert_eq!(sys["EventRecordID"], Json::from(record_id));
    assert_eq!(sys["Channel"], Json::from(s.channel.to_string()));
    assert_eq!(sys["Computer"], Json::from(e.computer.to_string()));
    assert_eq!(
        sys["Execution"]["#attributes"]["ProcessID"],
        Json::from(e.process_id)
    );
    assert_eq!(
        sys["Execution"]["#attributes"]["ThreadID"],
        Json::from(e.thread_id)
    );
    let time = sys["TimeCreated"]["#attributes"]["SystemTime"]
        .as_str()
        .unwrap();
    assert!(
        time.starts_with(&e.time.to_rfc3339()[..26]),
        "{time} vs {}",
        e.time.to_rfc3339()
    );
    match e.user_id {
        Some(sid) => assert_eq!(
            sys["Security"]["#attributes"]["UserID"],
            Json::from(sid.to_string())
        ),
        None => assert!(sys["Security"]["#attributes"]["UserID"].is_null()),
    }
    if let Some(a) = e.activity_id {
        assert!(
            sys["Correlation"]["#attributes"]["ActivityID"]
                .as_str()
                .unwrap()
                .eq_ignore_ascii_case(&a.to_string())
        );
    }
    let payload = match &s.payload {
        evtxsql_samples::writer::Payload::EventData => &ev["EventData"],
        evtxsql_samples::writer::Payload::UserData { element, .. } => {
            &ev["UserData"][element.as_ref()]
        }
    };
    for (f, v) in s.fields.iter().zip(&e.values) {
        let got = &payload[f.name.as_ref()];
        assert!(
            same(v, got),
            "{} {}: wrote {v:?}, read {got}",
            s.event_id,
            f.name
        );
    }
}

/// A sample value of a type, varied by `i`.
fn sample(ty: ValueType, i: u64) -> Value {
    match ty {
        ValueType::String => Value::str(format!("\\\\value-{i} é")),
        ValueType::UInt8 => Value::UInt8(i as u8),
        ValueType::UInt16 => Value::UInt16(i as u16 + 300),
        ValueType::UInt32 => Value::UInt32(i as u32 + 70_000),
        ValueType::UInt64 => Value::UInt64(i + (1 << 40)),
        ValueType::Bool => Value::Bool(i.is_multiple_of(2)),
        ValueType::Binary => Value::Binary(vec![2, 0, 1, 0xbd, 10, 1, 2, i as u8]),
        ValueType::Guid => Value::Guid(Guid::from_u128(
            0x0123_4567_89ab_cdef_0011_2233_4455_6600 + u128::from(i),
        )),
        ValueType::FileTime => {
            Value::FileTime(FileTime::from_unix_micros(1_772_409_600_123_456 + i as i64))
        }
        ValueType::Sid => Value::Sid(Sid::parse(&format!("S-1-5-21-1-2-3-{}", 500 + i)).unwrap()),
        ValueType::HexInt32 => Value::HexInt32(0xC05D_0002u32.wrapping_add(i as u32)),
        ValueType::HexInt64 => Value::HexInt64(0x8_1a2b + i),
    }
}

#[test]
fn every_kind_and_value_type_round_trips_through_the_evtx_crate() {
    let cat = Catalog::new();
    let mut events = Vec::new();
    for (i, kind) in Kind::ALL.iter().enumerate() {
        let schema = cat.schema(*kind).clone();
        for round in 0..3u64 {
            let values = schema
                .fields
                .iter()
                .map(|f| sample(f.ty, round + i as u64))
                .collect();
            events.push(Event {
                schema: schema.clone(),
                computer: if round == 2 {
                    "OTHER.corp.example.net".into()
                } else {
                    "WKS-001.corp.example.net".into()
                },
                time: FileTime::from_unix_micros(
                    1_772_409_600_000_000 + (i as i64 * 3 + round as i64) * 1_000_001,
                ),
                process_id: 4 + round as u32,
                thread_id: 100 + i as u32,
                activity_id: (round == 1).then(|| Guid::from_u128(0xabc + u128::from(round))),
                user_id: (round != 1).then(|| Sid::parse("S-1-5-18").unwrap()),
                values,
            });
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("all.evtx");
    let stats = write_evtx(&path, events.clone()).unwrap();
    assert_eq!(stats.records, events.len() as u64);
    let records = parse_all(&path);
    assert_eq!(records.len(), events.len());
    for (i, (json, e)) in records.iter().zip(&events).enumerate() {
        check_record(json, e, i as u64 + 1);
    }
}

#[test]
fn a_file_of_many_chunks_keeps_numbering_times_and_checksums() {
    let cat = Catalog::new();
    let host = Host::workstation(0, BUILD_24H2);
    let opts = GenerateOptions {
        days: 3,
        ..GenerateOptions::default()
    };
    let n = 120_000u64;
    let events: Vec<Event> =
        file_events(&cat, "test", &opts, &host, "Security", Vec::new(), n, 8).collect();
    assert_eq!(events.len() as u64, n);
    assert!(events.windows(2).all(|w| w[0].time <= w[1].time));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.evtx");
    let mut w = EvtxWriter::create(&path, 5000).unwrap();
    for e in &events {
        w.write(e).unwrap();
    }
    let (stats, _) = w.finish().unwrap();
    assert!(stats.chunks > 100, "{} chunks", stats.chunks);
    assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());
    let records = parse_all(&path);
    assert_eq!(records.len() as u64, n);
    for (i, (json, e)) in records.iter().zip(&events).enumerate() {
        if i % 97 == 0 || i as u64 == n - 1 {
            check_record(json, e, 5000 + i as u64);
        } else {
            assert_eq!(
                json["Event"]["System"]["EventRecordID"],
                Json::from(5000 + i as u64)
            );
        }
    }
    // The header: chunk count and next record id.
    let bytes = std::fs::read(&path).unwrap();
    assert_eq!(&bytes[..8], b"ElfFile\0");
    assert_eq!(
        u16::from_le_bytes([bytes[42], bytes[43]]) as u32,
        stats.chunks
    );
    assert_eq!(
        u64::from_le_bytes(bytes[24..32].try_into().unwrap()),
        5000 + n
    );
    assert_eq!(
        crc32fast::hash(&bytes[..120]),
        u32::from_le_bytes(bytes[124..128].try_into().unwrap())
    );
}

#[test]
fn a_corrupted_chunk_fails_its_checksum() {
    let cat = Catalog::new();
    let host = Host::workstation(0, BUILD_24H2);
    let events: Vec<Event> = file_events(
        &cat,
        "t",
        &GenerateOptions::default(),
        &host,
        "System",
        Vec::new(),
        50,
        8,
    )
    .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.evtx");
    write_evtx(&path, events).unwrap();
    assert_eq!(parse_all(&path).len(), 50);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[4096 + 700] ^= 0xff;
    std::fs::write(&path, &bytes).unwrap();
    let settings = ParserSettings::new().validate_checksums(true);
    let mut parser = EvtxParser::from_path(&path)
        .unwrap()
        .with_configuration(settings);
    assert_eq!(parser.records_json_value().filter(|r| r.is_ok()).count(), 0);
}

#[test]
fn values_that_do_not_fit_are_errors_not_panics() {
    let cat = Catalog::new();
    let schema = cat.schema(Kind::PowerShell4104).clone();
    let mut e = Event {
        schema,
        computer: Arc::from("WKS-001"),
        time: FileTime::from_unix_secs(1_772_409_600),
        process_id: 1,
        thread_id: 1,
        activity_id: None,
        user_id: None,
        values: vec![
            Value::UInt32(1),
            Value::UInt32(1),
            Value::str("x".repeat(40_000)),
            Value::str(""),
            Value::str(""),
        ],
    };
    let dir = tempfile::tempdir().unwrap();
    let mut w = EvtxWriter::create(&dir.path().join("e.evtx"), 1).unwrap();
    assert!(w.write(&e).is_err());
    e.values[2] = Value::str("y".repeat(31_000));
    assert!(w.write(&e).is_ok(), "62 000 bytes fit in one chunk");
    e.values[2] = Value::UInt32(3);
    assert!(w.write(&e).is_err(), "type mismatch");
    e.values.pop();
    assert!(w.write(&e).is_err(), "too few values");
    let (stats, _) = w.finish().unwrap();
    assert_eq!(stats.records, 1);
}

fn files_under(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(
                    p.strip_prefix(dir).unwrap().to_path_buf(),
                    std::fs::read(&p).unwrap(),
                );
            }
        }
    }
    out
}

#[test]
fn generated_files_match_counts_and_parse_everywhere() {
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        out: dir.path().to_path_buf(),
        ..small(11)
    };
    let summary = evtxsql_samples::generate(&opts, &|_| {}).unwrap();
    assert_eq!(summary.scenarios.len(), 7);
    assert_eq!(summary.records, 7 * 1500);
    for name in scenario_names() {
        let sdir = dir.path().join(name);
        let counts: Json =
            serde_json::from_slice(&std::fs::read(sdir.join("counts.json")).unwrap()).unwrap();
        let mut seen: BTreeMap<(String, u64, String), u64> = BTreeMap::new();
        let mut total = 0;
        for f in counts["files"].as_array().unwrap() {
            let records = parse_all(&sdir.join(f["path"].as_str().unwrap()));
            assert_eq!(records.len() as u64, f["records"].as_u64().unwrap());
            for r in &records {
                let s = &r["Event"]["System"];
                let id = s["EventID"]
                    .as_u64()
                    .or_else(|| s["EventID"]["#text"].as_u64())
                    .unwrap();
                *seen
                    .entry((
                        s["Channel"].as_str().unwrap().into(),
                        id,
                        s["Computer"].as_str().unwrap().into(),
                    ))
                    .or_default() += 1;
                total += 1;
            }
        }
        let want: BTreeMap<(String, u64, String), u64> = counts["counts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    (
                        c["channel"].as_str().unwrap().into(),
                        c["event_id"].as_u64().unwrap(),
                        c["computer"].as_str().unwrap().into(),
                    ),
                    c["count"].as_u64().unwrap(),
                )
            })
            .collect();
        assert_eq!(seen, want, "{name}");
        assert_eq!(total, 1500);
        let truth: Json =
            serde_json::from_slice(&std::fs::read(sdir.join("truth.json")).unwrap()).unwrap();
        assert_eq!(truth["scenario"], Json::from(*name));
    }
}

#[test]
fn regenerating_the_committed_set_is_byte_identical() {
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("data");
    let dir = tempfile::tempdir().unwrap();
    let opts = GenerateOptions {
        out: dir.path().to_path_buf(),
        ..small(7)
    };
    evtxsql_samples::generate(&opts, &|_| {}).unwrap();
    let again = files_under(dir.path());
    let before = files_under(&committed);
    assert_eq!(
        again.keys().collect::<Vec<_>>(),
        before
            .keys()
            .filter(|p| !p.ends_with("README.md"))
            .collect::<Vec<_>>()
    );
    for (p, bytes) in &again {
        assert!(
            before[p] == *bytes,
            "{} differs from the committed copy",
            p.display()
        );
    }
    // And a second run in-process gives the same bytes again.
    let dir2 = tempfile::tempdir().unwrap();
    evtxsql_samples::generate(
        &GenerateOptions {
            out: dir2.path().to_path_buf(),
            ..small(7)
        },
        &|_| {},
    )
    .unwrap();
    assert_eq!(files_under(dir2.path()), again);
}

#[test]
fn bad_options_are_errors() {
    let base = small(1);
    assert!(
        evtxsql_samples::generate(
            &GenerateOptions {
                scenario: "nope".into(),
                ..base.clone()
            },
            &|_| {}
        )
        .is_err()
    );
    assert!(
        evtxsql_samples::generate(
            &GenerateOptions {
                hosts: 0,
                ..base.clone()
            },
            &|_| {}
        )
        .is_err()
    );
    assert!(evtxsql_samples::generate(&GenerateOptions { days: 0, ..base }, &|_| {}).is_err());
    let _ = Emit {
        cat: &Catalog::new(),
    };
}
