//! One group of chunks of a file, converted on a worker into one batch: each chunk through our
//! BinXML decoder, the records (or whole chunks) it leaves through the evtx crate, in step.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

use arrow::array::AsArray;
use arrow::datatypes::Int32Type;
use arrow::record_batch::RecordBatch;
use evtx::{EvtxChunk, EvtxChunkHeader, ParserSettings};

use super::chunks::ChunkBytes;
use super::{CHUNK_SIZE, FileReport, Msg, RecordPath, error_chain, problem};
use crate::binxml::chunk::{RECORD_HEADER_SIZE, RecordHeader};
use crate::binxml::{ChunkSession, Decoder};
use crate::convert::EventsBuilder;
use crate::error::ProblemKind;
use crate::filter::RecordFilter;
use crate::schema::col;

/// Chunks of one file converted together.
pub(super) struct Group<'p> {
    pub(super) file: usize,
    pub(super) file_id: u32,
    pub(super) path: &'p Path,
    pub(super) chunks: Vec<ChunkBytes>,
}

/// Convert a group of chunks single-threaded into one batch: each chunk with our decoder
/// (`path_kind` permitting), the records it leaves (or the whole chunk) with the evtx crate.
pub(super) fn convert_group(
    decoder: &mut Decoder,
    group: Group<'_>,
    settings: Arc<ParserSettings>,
    path_kind: RecordPath,
    filter: Option<&RecordFilter>,
) -> Msg {
    let Group {
        file,
        file_id,
        path,
        chunks,
    } = group;
    let bytes = chunks.len() as u64 * CHUNK_SIZE;
    let mut report = FileReport::default();
    // Capacity from the chunk headers' record ids: a batch holds what it needs, not a guess
    // (a sort run is measured in the batches' memory).
    let records: usize = chunks
        .iter()
        .map(|c| crate::binxml::chunk::records_estimate(c.data()))
        .sum();
    let mut builder = EventsBuilder::with_capacity(records.max(1));
    for chunk in chunks {
        let mut at = Place {
            path,
            number: chunk.number(),
            file_id,
            filter,
            builder: &mut builder,
            report: &mut report,
        };
        if path_kind == RecordPath::Decoder
            && decode_chunk(decoder, chunk.data(), &settings, &mut at)
        {
            continue;
        }
        // The whole chunk through the evtx crate.
        let mut data = match chunk.into_owned() {
            Ok(d) => d,
            Err(e) => {
                at.chunk_error(&e);
                continue;
            }
        };
        let mut chunk = match data.parse(settings.clone()) {
            Ok(c) => c,
            Err(e) => {
                at.chunk_error(&e);
                continue;
            }
        };
        for record in chunk.iter() {
            match record {
                Ok(r) => at.push_evtx(r),
                Err(e) => at.error(&e),
            }
        }
    }
    let batch = if builder.is_empty() {
        None
    } else {
        match builder.finish() {
            Ok(b) => {
                collect_names(&b, col::COMPUTER, &mut report.computers);
                collect_names(&b, col::CHANNEL, &mut report.channels);
                Some(b)
            }
            Err(e) => {
                report.note(problem(path, None, None, ProblemKind::Batch(e.to_string())));
                report.records = 0;
                None
            }
        }
    };
    Msg::Job {
        file,
        batch,
        report: Box::new(report),
        bytes,
    }
}

/// Where rows of a chunk go.
pub(super) struct Place<'p> {
    path: &'p Path,
    number: u64,
    file_id: u32,
    filter: Option<&'p RecordFilter>,
    builder: &'p mut EventsBuilder,
    report: &'p mut FileReport,
}

impl Place<'_> {
    fn error(&mut self, e: &dyn std::error::Error) {
        self.note(None, ProblemKind::Record(error_chain(e)));
    }

    fn chunk_error(&mut self, e: &dyn std::error::Error) {
        self.note(None, ProblemKind::Chunk(error_chain(e)));
    }

    fn note(&mut self, record: Option<u64>, kind: ProblemKind) {
        let p = problem(self.path, Some(self.number), record, kind);
        self.report.note(p);
    }

    /// A record through the evtx crate's JSON rendering.
    fn push_evtx(&mut self, record: evtx::EvtxRecord<'_>) {
        let record_id = record.event_record_id;
        let fallback = Some(record.timestamp.as_microsecond());
        let rendered = match record.into_json_bytes() {
            Ok(r) => r,
            Err(e) => {
                self.note(Some(record_id), ProblemKind::Render(error_chain(&e)));
                return;
            }
        };
        match self
            .builder
            .push_json(self.file_id, record_id, fallback, &rendered.data)
        {
            Ok((event_id, time)) => {
                self.report.row(event_id, time);
                self.report.fallback_records += 1;
            }
            Err(e) => self.note(Some(record_id), e.into()),
        }
    }

    fn fallback(&mut self, why: &str) {
        *self
            .report
            .fallback_reasons
            .entry(why.to_owned())
            .or_default() += 1;
    }
}

/// Read a chunk with our decoder, in record order: the records it leaves are read by the
/// evtx crate's iterator, walked in step. False when the decoder cannot read the chunk at all
/// (nothing was pushed).
pub(super) fn decode_chunk(
    decoder: &mut Decoder,
    data: &[u8],
    settings: &Arc<ParserSettings>,
    at: &mut Place<'_>,
) -> bool {
    let mut session = match decoder.session(data) {
        Ok(s) => s,
        Err(why) => {
            at.fallback(&format!("whole chunk: {why}"));
            return false;
        }
    };
    let mut heads = Vec::new();
    let cutoff = session.walk(&mut heads);
    let decode = |session: &mut ChunkSession<'_, '_>, at: &mut Place<'_>, h: &RecordHeader| {
        let (builder, report, file_id) = (&mut *at.builder, &mut *at.report, at.file_id);
        let done = session.decode(h, at.filter, |view| {
            let (event_id, time) = builder.push_view(file_id, view);
            report.row(event_id, time);
            report.decoded_records += 1;
        });
        match done {
            Ok(true) => {}
            Ok(false) => at.report.skipped_records += 1,
            Err(why) => {
                at.fallback(why.0);
                return false;
            }
        }
        true
    };
    let mut i = 0;
    while i < heads.len() && decode(&mut session, at, &heads[i]) {
        i += 1;
    }
    if i == heads.len() && cutoff.is_none() {
        return true;
    }
    // From the first record the decoder left on, the evtx crate's records in step.
    let header = match EvtxChunkHeader::from_bytes(data) {
        Ok(h) => h,
        Err(e) => {
            at.chunk_error(&e);
            return true;
        }
    };
    let mut chunk = match EvtxChunk::new(data, &header, settings.clone()) {
        Ok(c) => c,
        Err(e) => {
            at.chunk_error(&e);
            return true;
        }
    };
    let offset =
        |r: &evtx::EvtxRecord<'_>| (r.binxml_offset as usize).saturating_sub(RECORD_HEADER_SIZE);
    let mut records = chunk.iter().peekable();
    let mut first = true;
    while i < heads.len() {
        let h = heads[i];
        i += 1;
        if !std::mem::take(&mut first) && decode(&mut session, at, &h) {
            continue;
        }
        loop {
            match records.peek() {
                None => break,
                Some(Ok(r)) if offset(r) < h.offset => {
                    records.next();
                }
                Some(Ok(r)) if offset(r) == h.offset => {
                    if let Some(Ok(r)) = records.next() {
                        at.push_evtx(r);
                    }
                    break;
                }
                Some(Ok(_)) => break,
                Some(Err(_)) => {
                    if let Some(Err(e)) = records.next() {
                        at.error(&e);
                    }
                }
            }
        }
    }
    // Past the walk's end, and the errors after the last record it read.
    for item in records {
        match item {
            Ok(r) if cutoff.is_some_and(|c| offset(&r) >= c) => {
                at.fallback("past a record header the walk stops at");
                at.push_evtx(r);
            }
            Ok(_) => {}
            Err(e) => at.error(&e),
        }
    }
    true
}

/// The distinct values of a dictionary column.
pub(super) fn collect_names(batch: &RecordBatch, column: &str, into: &mut BTreeSet<String>) {
    let Ok(i) = batch.schema().index_of(column) else {
        return;
    };
    let Some(dict) = batch.column(i).as_dictionary_opt::<Int32Type>() else {
        return;
    };
    let values = dict.values().as_string::<i32>();
    for v in values.iter().flatten() {
        if !into.contains(v) {
            into.insert(v.to_owned());
        }
    }
}
