//! Template definitions (MS-EVEN6 2.2.5): the tree a definition's tokens describe, where it
//! lives in a chunk, and the per-chunk cache of compiled plans (by definition offset).

use crate::FastMap;
use std::sync::Arc;

use super::Unsupported;
use super::chunk::{Chunk, u32_at};
use super::plan::Plan;
use super::tokens::parse_template;

/// An element or attribute name: decoded once per chunk and shared by every node that names it.
pub type Name = Arc<str>;

/// A template definition's tree. Element 0 is not special: `root` says which is the root.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Template {
    pub elems: Vec<Elem>,
    pub root: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Elem {
    pub name: Name,
    /// The substitution whose NullType value leaves this element out (MS-EVEN6 2.2.12).
    pub dependency: Option<u16>,
    /// Attributes with at least one value node.
    pub attrs: Vec<Attr>,
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Attr {
    pub name: Name,
    pub value: Vec<Node>,
}

/// A node of an element's content or of an attribute's value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    Text(String),
    CData(String),
    Sub {
        id: u16,
        optional: bool,
    },
    Elem(u32),
    CharRef(u16),
    Entity(String),
    /// A processing instruction's target or data: renders as nothing.
    Pi,
}

impl Template {
    /// About how many bytes the tree takes in memory.
    pub fn weight(&self) -> usize {
        use std::mem::{size_of, size_of_val};
        let nodes = |ns: &[Node]| {
            ns.iter()
                .map(|n| match n {
                    Node::Text(s) | Node::CData(s) | Node::Entity(s) => s.len(),
                    _ => 0,
                })
                .sum::<usize>()
                + size_of_val(ns)
        };
        self.elems
            .iter()
            .map(|e| {
                size_of::<Elem>()
                    + e.name.len()
                    + nodes(&e.children)
                    + e.attrs
                        .iter()
                        .map(|a| size_of::<Attr>() + a.name.len() + nodes(&a.value))
                        .sum::<usize>()
            })
            .sum()
    }
}

/// Size of a template definition's header: next offset, GUID, data size.
pub const DEFINITION_HEADER_SIZE: usize = 24;

/// Compiled plans of one chunk's templates, by definition offset, with the plans shared by
/// every chunk the decoder has seen (by the template's content: the same template GUID recurs
/// in every chunk of a file, each with its own copy of the definition).
#[derive(Default)]
pub struct TemplateCache {
    by_offset: FastMap<u32, Result<Arc<Plan>, Unsupported>>,
    /// The weight of the plans in `by_offset`.
    weight: usize,
}

/// Most weight ([`Template::weight`]) of the plans one chunk may use: every record may name a
/// definition of its own.
const MAX_CHUNK_PLAN_WEIGHT: usize = 64 << 20;

/// Plans shared across chunks, by the definition's bytes: a definition with the same bytes, and
/// the same names where its name references point outside it, is the same template.
#[derive(Default)]
pub struct SharedPlans {
    plans: FastMap<u64, Vec<Shared>>,
    count: usize,
    /// The weight of the plans and bodies kept.
    weight: usize,
}

struct Shared {
    body: Box<[u8]>,
    /// Name references outside the body, with their names.
    refs: Vec<(u32, Name)>,
    plan: Arc<Plan>,
}

/// Most plans kept, and most weight of them, per decoding thread; past either, the map is
/// cleared (a bound for hostile inputs, and for inputs whose templates rarely repeat). The
/// real logs of the test corpus (1 GB of copies) need ~250 plans, ~1.3 MiB per thread.
/// Generated logs, whose definitions sit at other offsets in every chunk and so are seldom
/// shared, used to fill the former bound of 64 MiB per thread over a long ingest: that was
/// most of the peak memory that grew between 1 and 10 GB of input.
const MAX_SHARED_PLANS: usize = 1024;
pub(super) const MAX_SHARED_WEIGHT: usize = 8 << 20;

/// A quick hash of a definition's bytes.
fn hash_bytes(b: &[u8]) -> u64 {
    let mut h: u64 = b.len() as u64 ^ 0x9E37_79B9_7F4A_7C15;
    let mut words = b.chunks_exact(8);
    for w in &mut words {
        let mut a = [0u8; 8];
        a.copy_from_slice(w);
        h = (h ^ u64::from_le_bytes(a))
            .wrapping_mul(0x0100_0000_01B3)
            .rotate_left(29);
    }
    for &x in words.remainder() {
        h = (h ^ u64::from(x)).wrapping_mul(0x0100_0000_01B3);
    }
    h
}

impl SharedPlans {
    /// The plans kept and their weight, counted from them.
    #[cfg(test)]
    pub(super) fn kept(&self) -> (usize, usize) {
        let kept = self.plans.values().flatten();
        let weight = kept.clone().map(|s| s.plan.weight + s.body.len()).sum();
        (kept.count(), weight)
    }

    fn get_or_compile(
        &mut self,
        chunk: &Chunk<'_>,
        start: usize,
        end: usize,
    ) -> Result<Arc<Plan>, Unsupported> {
        let body = &chunk.data[start..end];
        let key = hash_bytes(body);
        if let Some(list) = self.plans.get(&key)
            && let Some(s) = list.iter().find(|s| {
                *s.body == *body && s.refs.iter().all(|(off, name)| chunk.name_is(*off, name))
            })
        {
            return Ok(s.plan.clone());
        }
        let (tpl, mut refs) = parse_template(chunk, start, end)?;
        refs.retain(|(off, _)| !(start..end).contains(&(*off as usize)));
        refs.sort_unstable();
        refs.dedup();
        let plan = Arc::new(Plan::compile(Arc::new(tpl)));
        let weight =
            plan.weight + body.len() + refs.iter().map(|(_, name)| 8 + name.len()).sum::<usize>();
        if self.count >= MAX_SHARED_PLANS || self.weight + weight > MAX_SHARED_WEIGHT {
            self.plans.clear();
            self.count = 0;
            self.weight = 0;
        }
        self.weight += weight;
        self.plans.entry(key).or_default().push(Shared {
            body: body.into(),
            refs,
            plan: plan.clone(),
        });
        self.count += 1;
        Ok(plan)
    }
}

impl TemplateCache {
    /// The plan of the template defined at `offset` in `chunk`.
    pub fn plan(
        &mut self,
        chunk: &Chunk<'_>,
        offset: u32,
        shared: &mut SharedPlans,
    ) -> Result<Arc<Plan>, Unsupported> {
        if let Some(p) = self.by_offset.get(&offset) {
            return p.clone();
        }
        let p = definition_at(chunk, offset)
            .and_then(|(start, end)| shared.get_or_compile(chunk, start, end))
            .and_then(|p| {
                self.weight += p.weight;
                if self.weight > MAX_CHUNK_PLAN_WEIGHT {
                    return Err(Unsupported("templates of the chunk too large"));
                }
                Ok(p)
            });
        self.by_offset.insert(offset, p.clone());
        p
    }
}

/// The body of the definition at `offset`: `[start, end)` in the chunk.
pub fn definition_at(chunk: &Chunk<'_>, offset: u32) -> Result<(usize, usize), Unsupported> {
    let at = offset as usize;
    let size = u32_at(chunk.data, at + 20).ok_or(Unsupported("template header out of bounds"))?;
    let start = at + DEFINITION_HEADER_SIZE;
    let end = start
        .checked_add(size as usize)
        .filter(|&e| e <= chunk.data.len())
        .ok_or(Unsupported("template data out of bounds"))?;
    Ok((start, end))
}
