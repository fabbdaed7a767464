//! Our own BinXML decoder (MS-EVEN6): EVTX chunks → rows of the events table, without the
//! evtx crate's JSON rendering and without parsing JSON again.
//!
//! - [`chunk`]: the chunk header, its string table and the walk over record headers;
//! - [`strings`]: UTF-16 text and JSON string escaping;
//! - [`tokens`]: the BinXML token stream of a template definition;
//! - [`templates`]: template trees and their caches (per chunk by offset, shared by content);
//! - [`values`]: substitution values: reading and rendering every type Windows writes;
//! - [`plan`]: a template compiled into a column plan;
//! - [`substitution`]: template nodes resolved against an instance's values;
//! - [`render`]: an element written as the evtx crate writes it in JSON;
//! - [`record`]: one record through its plan: System columns, `data`, promoted fields.
//!
//! A record this decoder does not take (damaged, or of a shape it does not render exactly as
//! the evtx crate does) is an [`Unsupported`]: the caller reads that record with the evtx
//! crate instead. Every length read from the file is checked against the chunk before use,
//! nesting is capped, and the output of one record is bounded.

pub mod chunk;
pub mod plan;
pub mod record;
pub mod render;
pub mod strings;
pub mod substitution;
pub mod templates;
mod text;
pub mod tokens;
pub mod values;

use chunk::{Chunk, RecordHeader};
use plan::{Inst, KeySrc, Record};
use render::Scratch;
use templates::{SharedPlans, TemplateCache};
use values::{Val, read_substitutions};

use std::sync::Arc;

use crate::convert::RecordView;
use crate::filter::RecordFilter;

/// Why a record (or a chunk) is left to the evtx crate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsupported(pub &'static str);

impl std::fmt::Display for Unsupported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for Unsupported {}

/// Most nested BinXML instances in one record (real records nest one or two).
const MAX_NESTING: usize = 8;
/// Most `data` bytes the records of one chunk may produce (the evtx crate's own budget).
const MAX_CHUNK_OUTPUT: usize = 64 << 20;
/// Most instances in one record.
const MAX_INSTANCES: usize = 256;

/// What decoding one chunk left to the evtx crate.
#[derive(Debug, Default)]
pub struct ChunkOutcome {
    /// Records decoded here.
    pub decoded: u64,
    /// Offsets (in the chunk) of the records left to the evtx crate, each with its reason.
    pub fallback: Vec<(usize, Unsupported)>,
    /// Where the record walk stopped: the evtx crate reads every record from here on.
    pub cutoff: Option<usize>,
}

/// A decoder; one per worker thread. Plans compiled in one chunk serve every later chunk.
#[derive(Default)]
pub struct Decoder {
    shared: SharedPlans,
    scratch: Scratch,
    fragments: Fragments,
}

/// The plans of fragments written as elements, and the parts of their trees, kept from one
/// record to the next ([`tokens::parse_fragment_into`]).
#[derive(Default)]
struct Fragments {
    spare: Vec<Arc<plan::Plan>>,
    bins: tokens::Bins,
}

impl Fragments {
    /// Most plans kept.
    const MOST: usize = 16;

    /// The plan of the fragment `data[start..stop]`.
    fn plan(
        &mut self,
        chunk: &Chunk<'_>,
        start: usize,
        stop: usize,
    ) -> Result<Arc<plan::Plan>, Unsupported> {
        let mut spare = self.spare.pop();
        let reused = spare.as_mut().and_then(Arc::get_mut).and_then(|plan| {
            let tpl = Arc::get_mut(&mut plan.tpl)?;
            Some(
                tokens::parse_fragment_into(chunk, start, stop, tpl, &mut self.bins)
                    .map(|()| plan.refit_fragment()),
            )
        });
        match (reused, spare) {
            (Some(Ok(())), Some(plan)) => Ok(plan),
            (Some(Err(e)), Some(plan)) => {
                self.spare.push(plan);
                Err(e)
            }
            _ => {
                let tpl = tokens::parse_fragment(chunk, start, stop)?;
                Ok(Arc::new(plan::Plan::fragment(Arc::new(tpl))))
            }
        }
    }

    /// Empty `insts`, keeping the fragments' plans no one else holds.
    fn recycle(&mut self, insts: &mut Vec<Inst>) {
        for inst in insts.drain(..) {
            let mut plan = inst.plan;
            if plan.is_fragment()
                && self.spare.len() < Self::MOST
                && Arc::get_mut(&mut plan).is_some()
            {
                self.spare.push(plan);
            }
        }
    }
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Start reading one chunk (`data`, 64 KiB with its header). A chunk it cannot read at
    /// all is an `Err`: the evtx crate reads it whole.
    pub fn session<'d, 'a>(
        &'d mut self,
        data: &'a [u8],
    ) -> Result<ChunkSession<'d, 'a>, Unsupported> {
        Ok(ChunkSession {
            chunk: Chunk::new(data)?,
            cache: TemplateCache::default(),
            rec: Record::default(),
            decoder: self,
            spent: 0,
        })
    }

    /// Decode the records of one chunk, calling `push` with each row; the outcome says which
    /// records are left to the evtx crate.
    pub fn decode_chunk(
        &mut self,
        data: &[u8],
        mut push: impl FnMut(&RecordView<'_>),
    ) -> Result<ChunkOutcome, Unsupported> {
        let mut s = self.session(data)?;
        let mut heads = Vec::new();
        let mut out = ChunkOutcome {
            cutoff: s.walk(&mut heads),
            ..ChunkOutcome::default()
        };
        for h in &heads {
            match s.decode(h, None, &mut push) {
                Ok(_) => out.decoded += 1,
                Err(e) => out.fallback.push((h.offset, e)),
            }
        }
        Ok(out)
    }
}

/// One chunk being read: its string table, its templates' plans.
pub struct ChunkSession<'d, 'a> {
    chunk: Chunk<'a>,
    cache: TemplateCache,
    rec: Record<'a>,
    decoder: &'d mut Decoder,
    /// `data` bytes written so far.
    spent: usize,
}

impl<'a> ChunkSession<'_, 'a> {
    /// The chunk's record headers, in order, into `heads`; where the walk had to stop (the
    /// evtx crate reads every record from there on).
    pub fn walk(&self, heads: &mut Vec<RecordHeader>) -> Option<usize> {
        heads.clear();
        self.chunk.walk(|h| heads.push(h))
    }

    /// Decode one record and hand its row to `push`; nothing is pushed on `Err`, nor when
    /// `filter` skips the record (then `Ok(false)`).
    pub fn decode(
        &mut self,
        h: &RecordHeader,
        filter: Option<&RecordFilter>,
        push: impl FnOnce(&RecordView<'_>),
    ) -> Result<bool, Unsupported> {
        if self.spent > MAX_CHUNK_OUTPUT {
            return Err(Unsupported("chunk renders too large"));
        }
        if let Some(filter) = filter
            && self.skips(h, filter) == Some(true)
        {
            return Ok(false);
        }
        let rec = &mut self.rec;
        let Decoder {
            shared,
            scratch,
            fragments,
        } = &mut *self.decoder;
        rec.vals.clear();
        fragments.recycle(&mut rec.insts);
        rec.arrays = false;
        read_record(&self.chunk, h, &mut self.cache, shared, fragments, rec)?;
        let done = record::render(rec, scratch, h.record_id, Some(h.micros()), filter, push);
        self.spent += scratch.data.len();
        done.map(|pushed| pushed.is_some())
    }
}

impl ChunkSession<'_, '_> {
    /// Whether `filter` skips record `h`, told from its template's plan and at most three of
    /// its values (provider, channel, event id), without reading the rest of the record: most
    /// records a `scan` skips cost this much and no more. `None` when the record's shape needs
    /// the full path to tell (which then decides as [`record::render`] does).
    fn skips(&mut self, h: &RecordHeader, filter: &RecordFilter) -> Option<bool> {
        let data = self.chunk.data;
        let (start, end) = h.binxml;
        let at = single_instance(data, start, end).ok()?;
        let mut pos = at + 10;
        if pos > end {
            return None;
        }
        let def = chunk::u32_at(data, at + 6)?;
        if def as usize == pos {
            let size = chunk::u32_at(data, pos + 20)? as usize;
            pos = pos
                .checked_add(templates::DEFINITION_HEADER_SIZE + size)
                .filter(|&p| p <= end)?;
        }
        let plan = self
            .cache
            .plan(&self.chunk, def, &mut self.decoder.shared)
            .ok()?;
        let keys = plan.keys.as_ref()?;
        for &d in &keys.dependencies {
            if values::is_null_at(data, pos, end, d).ok()? {
                return None;
            }
        }
        let sys = &mut self.decoder.scratch.sys;
        sys.clear();
        let provider = key_text(&keys.provider, data, pos, end, sys)?;
        let channel = key_text(&keys.channel, data, pos, end, sys)?;
        let event_id = match &keys.event_id {
            KeySrc::Absent => None,
            KeySrc::Literal(s) => crate::mapping::parse_number(s),
            KeySrc::Sub(id) => match values::substitution_at(data, pos, end, *id).ok()?? {
                v if v.is_bare() => v.bare_number(),
                Val::Hex32(x) => Some(u64::from(x)),
                Val::Hex64(x) => Some(x),
                v @ (Val::Str(_) | Val::Ansi(_)) if !v.is_empty() => {
                    let from = sys.len();
                    v.write(sys, false).ok()?;
                    crate::mapping::parse_number(&sys[from..])
                }
                _ => return None,
            },
        };
        let text = |r: Option<(usize, usize)>| r.map(|(s, e)| &sys[s..e]);
        Some(!filter.keeps(text(provider), text(channel), event_id))
    }
}

/// The text of a filter key, appended to `sys`: its range there (`None` for an absent key), or
/// `None` outside when the value is of a kind the full path must render.
fn key_text(
    key: &KeySrc,
    data: &[u8],
    pos: usize,
    end: usize,
    sys: &mut String,
) -> Option<Option<(usize, usize)>> {
    let from = sys.len();
    match key {
        KeySrc::Absent => return Some(None),
        KeySrc::Literal(s) => sys.push_str(s),
        KeySrc::Sub(id) => match values::substitution_at(data, pos, end, *id).ok()?? {
            v @ (Val::Str(_) | Val::Ansi(_)) if !v.is_empty() => v.write(sys, false).ok()?,
            _ => return None,
        },
    }
    Some(Some((from, sys.len())))
}

/// Read a record's instance (and the instances nested in its values) into `rec`.
fn read_record<'a>(
    chunk: &Chunk<'a>,
    h: &RecordHeader,
    cache: &mut TemplateCache,
    shared: &mut SharedPlans,
    fragments: &mut Fragments,
    rec: &mut Record<'a>,
) -> Result<(), Unsupported> {
    let (start, end) = h.binxml;
    match single_instance(chunk.data, start, end) {
        Ok(at) => {
            let after = read_instance(chunk, at, end, 0, cache, shared, fragments, rec)?;
            ends_stream(chunk.data, after, end)
        }
        Err(_) => {
            // A record written out as elements, without a template.
            let tpl = tokens::parse_fragment(chunk, start, end)?;
            let plan = std::sync::Arc::new(plan::Plan::compile(std::sync::Arc::new(tpl)));
            rec.insts.push(Inst { plan, vals: (0, 0) });
            Ok(())
        }
    }
}

/// Where the template instance token of a `[fragment header] TemplateInstance EOF` stream is.
fn single_instance(data: &[u8], start: usize, end: usize) -> Result<usize, Unsupported> {
    let b = data
        .get(start..end)
        .ok_or(Unsupported("stream out of bounds"))?;
    match b {
        [0x0f, _, _, _, 0x0c, _, ..] => Ok(start + 4),
        [0x0c, ..] => Ok(start),
        _ => Err(Unsupported("stream is not one template instance")),
    }
}

/// After the instance: nothing, or the end-of-stream token.
fn ends_stream(data: &[u8], at: usize, end: usize) -> Result<(), Unsupported> {
    if at == end || (at < end && data.get(at) == Some(&0x00)) {
        Ok(())
    } else {
        Err(Unsupported("stream holds more than one template instance"))
    }
}

/// Read the template instance whose token is at `at` (within `limit`): its definition's plan,
/// its values, and the instances nested in them. Returns the offset after it.
#[allow(clippy::too_many_arguments)]
fn read_instance<'a>(
    chunk: &Chunk<'a>,
    at: usize,
    limit: usize,
    depth: usize,
    cache: &mut TemplateCache,
    shared: &mut SharedPlans,
    fragments: &mut Fragments,
    rec: &mut Record<'a>,
) -> Result<usize, Unsupported> {
    let data = chunk.data;
    if depth > MAX_NESTING || rec.insts.len() >= MAX_INSTANCES {
        return Err(Unsupported("BinXML nested too deeply"));
    }
    let trunc = Unsupported("truncated template instance");
    // Token, an unknown byte, the template id, the definition's offset.
    let mut pos = at + 10;
    if pos > limit {
        return Err(trunc);
    }
    let def = chunk::u32_at(data, at + 6).ok_or(trunc)?;
    if def as usize == pos {
        // The definition follows inline: skip its header and body.
        let size = chunk::u32_at(data, pos + 20).ok_or(trunc)? as usize;
        pos = pos
            .checked_add(templates::DEFINITION_HEADER_SIZE + size)
            .filter(|&p| p <= limit)
            .ok_or(trunc)?;
    }
    let plan = cache.plan(chunk, def, shared)?;
    let first = rec.vals.len();
    let end = read_substitutions(data, pos, limit, &mut rec.vals)?;
    rec.arrays |= rec.vals[first..].iter().any(|v| matches!(v, Val::Array(_)));
    rec.insts.push(Inst {
        plan,
        vals: (first as u32, rec.vals.len() as u32),
    });
    for i in first..rec.vals.len() {
        let Val::BinXml(bytes) = rec.vals[i] else {
            continue;
        };
        // The fragment's place in the chunk (it is a slice of it).
        let start = bytes.as_ptr() as usize - data.as_ptr() as usize;
        let stop = start + bytes.len();
        let nested = rec.insts.len();
        match single_instance(data, start, stop) {
            Ok(inner) => {
                let after =
                    read_instance(chunk, inner, stop, depth + 1, cache, shared, fragments, rec)?;
                ends_stream(data, after, stop)?;
            }
            Err(_) => {
                // Elements written out: a tree of its own, with no values.
                if rec.insts.len() >= MAX_INSTANCES {
                    return Err(Unsupported("BinXML nested too deeply"));
                }
                let plan = fragments.plan(chunk, start, stop)?;
                let at = rec.vals.len() as u32;
                rec.insts.push(Inst {
                    plan,
                    vals: (at, at),
                });
            }
        }
        rec.vals[i] = Val::Frag(nested as u32);
    }
    Ok(end)
}

#[cfg(test)]
mod tests;
