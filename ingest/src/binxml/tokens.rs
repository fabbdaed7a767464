//! BinXML tokens (MS-EVEN6 2.2.3): a template definition's token stream read into a
//! [`Template`] tree of elements, attributes, text and substitution slots.
//!
//! Tokens: end of stream (0x00), open start element (0x01, with the "more bits" flag 0x40 when
//! attributes follow), close start (0x02), close empty (0x03), end element (0x04), value text
//! (0x05/0x45), attribute (0x06/0x46), CDATA (0x07/0x47), character reference (0x08/0x48),
//! entity reference (0x09/0x49), processing instruction target and data (0x0A, 0x0B), template
//! instance (0x0C, not allowed inside a definition), normal and optional substitutions (0x0D,
//! 0x0E) and the fragment header (0x0F). The walk keeps an explicit stack (no recursion), caps
//! the depth, and stops at the definition's end whatever the tokens say.

use super::chunk::{Chunk, u32_at};
use super::templates::{Attr, Elem, Name, Node, Template};
use super::values::{is_known_type, ty};
use super::{Unsupported, strings};

/// Deepest element nesting kept (the evtx crate's own limit is 512; real templates nest 4).
pub const MAX_DEPTH: usize = 64;
/// Most elements in one template.
const MAX_ELEMENTS: usize = 4096;
/// Most bytes of text (names, counted twice as they are also kept as references, and
/// literal text) one template or fragment may decode. A name is stored once in a chunk and may
/// be referenced by every element: without a budget, a 64 KiB chunk could make a template of
/// gigabytes. Real templates decode a few KiB.
pub const MAX_TEMPLATE_TEXT: usize = 256 << 10;

struct Cursor<'a> {
    data: &'a [u8],
    pos: usize,
    /// The name references read, with their names (kept for a template definition only: a
    /// fragment's tree is never shared).
    refs: Option<Vec<(u32, Name)>>,
    /// What is left of [`MAX_TEMPLATE_TEXT`].
    text_left: usize,
}

impl<'a> Cursor<'a> {
    fn u8(&mut self) -> Result<u8, Unsupported> {
        let b = *self.data.get(self.pos).ok_or(TRUNCATED)?;
        self.pos += 1;
        Ok(b)
    }
    fn u16(&mut self) -> Result<u16, Unsupported> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    fn u32(&mut self) -> Result<u32, Unsupported> {
        let v = u32_at(self.data, self.pos).ok_or(TRUNCATED)?;
        self.pos += 4;
        Ok(v)
    }
    fn spend(&mut self, bytes: usize) -> Result<(), Unsupported> {
        self.text_left = self
            .text_left
            .checked_sub(bytes)
            .ok_or(Unsupported("template text too large"))?;
        Ok(())
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], Unsupported> {
        let end = self.pos.checked_add(n).ok_or(TRUNCATED)?;
        let b = self.data.get(self.pos..end).ok_or(TRUNCATED)?;
        self.pos = end;
        Ok(b)
    }
    /// A u16 count and that many UTF-16 units, cut at a NUL, decoded (U+FFFD for a lone
    /// surrogate, as the JSON renderer writes it).
    fn text(&mut self, mut s: String) -> Result<String, Unsupported> {
        let n = usize::from(self.u16()?);
        let b = self.take(2 * n)?;
        s.clear();
        strings::push_lossy(&mut s, strings::until_nul(b));
        self.spend(s.len())?;
        Ok(s)
    }
    /// A name reference: an offset into the chunk, the name stored right there when it is the
    /// first use.
    fn name(&mut self, chunk: &Chunk<'_>) -> Result<Name, Unsupported> {
        let offset = self.u32()?;
        if offset as usize == self.pos {
            // next (u32), hash (u16), count (u16), the units, a NUL.
            let n = usize::from(u16_le(self.data, self.pos + 6).ok_or(TRUNCATED)?);
            self.pos += 6 + 2 + 2 * n + 2;
        }
        let name = chunk.name(offset)?;
        self.spend(2 * name.len())?;
        if let Some(refs) = &mut self.refs {
            refs.push((offset, name.clone()));
        }
        Ok(name)
    }
}

const TRUNCATED: Unsupported = Unsupported("truncated template");

fn u16_le(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// An element being opened: its attributes are collected until the start closes.
struct Open {
    elem: Elem,
}

/// Parse the definition body `chunk.data[start..end]` (fragment header, one element, EOF).
/// Also returns the name references it read (chunk offset, name): the same bytes elsewhere
/// are the same template where those names are the same.
pub fn parse_template(
    chunk: &Chunk<'_>,
    start: usize,
    end: usize,
) -> Result<(Template, Vec<(u32, Name)>), Unsupported> {
    let mut elems = Vec::new();
    let (root, refs) = parse(chunk, start, end, false, &mut elems, &mut Bins::default())?;
    Ok((Template { elems, root }, refs))
}

/// Parse a BinXML fragment that holds elements rather than a template instance (a BinXML
/// value, 0x21, written out): one root element, literal text only.
pub fn parse_fragment(
    chunk: &Chunk<'_>,
    start: usize,
    end: usize,
) -> Result<Template, Unsupported> {
    let mut tpl = Template::default();
    parse_fragment_into(chunk, start, end, &mut tpl, &mut Bins::default())?;
    Ok(tpl)
}

/// [`parse_fragment`] into `tpl`, whose tree goes to `bins` first; the new tree is made of
/// what `bins` holds. A record's fragments are parsed and dropped once each (their text is
/// inline, so no two are alike): reusing their elements, attributes and strings spares the
/// allocations that were most of their time.
pub fn parse_fragment_into(
    chunk: &Chunk<'_>,
    start: usize,
    end: usize,
    tpl: &mut Template,
    bins: &mut Bins,
) -> Result<(), Unsupported> {
    for e in tpl.elems.drain(..) {
        bins.put_elem(e);
    }
    tpl.root = 0;
    let (root, _) = parse(chunk, start, end, true, &mut tpl.elems, bins)?;
    tpl.root = root;
    Ok(())
}

/// Elements, attributes and strings of trees no longer used, for the next fragment's tree
/// ([`parse_fragment_into`]). Bounded: at most [`Bins::MOST`] of each, none that grew large.
#[derive(Default)]
pub struct Bins {
    elems: Vec<Elem>,
    attrs: Vec<Attr>,
    strings: Vec<String>,
    stack: Vec<u32>,
}

impl Bins {
    /// Most elements, attributes and strings kept.
    const MOST: usize = 1024;
    /// Most nodes, attributes or bytes a kept list or string holds room for.
    const ROOM: usize = 64;

    fn put_elem(&mut self, mut e: Elem) {
        for mut a in e.attrs.drain(..) {
            self.put_nodes(&mut a.value);
            if self.attrs.len() < Self::MOST && a.value.capacity() <= Self::ROOM {
                self.attrs.push(a);
            }
        }
        self.put_nodes(&mut e.children);
        if self.elems.len() < Self::MOST
            && e.children.capacity() <= Self::ROOM
            && e.attrs.capacity() <= Self::ROOM
        {
            self.elems.push(e);
        }
    }

    fn put_nodes(&mut self, nodes: &mut Vec<Node>) {
        for n in nodes.drain(..) {
            if let Node::Text(mut s) | Node::CData(mut s) | Node::Entity(mut s) = n
                && self.strings.len() < Self::MOST
                && s.capacity() <= 16 * Self::ROOM
            {
                s.clear();
                self.strings.push(s);
            }
        }
    }

    fn elem(&mut self, name: Name, dependency: Option<u16>) -> Elem {
        match self.elems.pop() {
            Some(mut e) => {
                e.name = name;
                e.dependency = dependency;
                e
            }
            None => Elem {
                name,
                dependency,
                attrs: Vec::new(),
                children: Vec::new(),
            },
        }
    }

    fn attr(&mut self, name: Name) -> Attr {
        match self.attrs.pop() {
            Some(mut a) => {
                a.name = name;
                a
            }
            None => Attr {
                name,
                value: Vec::new(),
            },
        }
    }

    fn string(&mut self) -> String {
        self.strings.pop().unwrap_or_default()
    }
}

/// In a fragment (`fragment`) element starts carry no dependency id, and substitutions and
/// template instances are not for this path. The elements go into `elems` (empty), the
/// root's index is returned.
fn parse(
    chunk: &Chunk<'_>,
    start: usize,
    end: usize,
    fragment: bool,
    elems: &mut Vec<Elem>,
    bins: &mut Bins,
) -> Result<(u32, Vec<(u32, Name)>), Unsupported> {
    let mut cur = Cursor {
        data: chunk.data,
        pos: start,
        refs: (!fragment).then(Vec::new),
        text_left: MAX_TEMPLATE_TEXT,
    };
    let mut stack = std::mem::take(&mut bins.stack);
    stack.clear();
    let parsed = parse_tokens(chunk, end, fragment, &mut cur, elems, &mut stack, bins);
    bins.stack = stack;
    let root = parsed?;
    Ok((root, cur.refs.unwrap_or_default()))
}

fn parse_tokens(
    chunk: &Chunk<'_>,
    end: usize,
    fragment: bool,
    cur: &mut Cursor<'_>,
    elems: &mut Vec<Elem>,
    stack: &mut Vec<u32>,
    bins: &mut Bins,
) -> Result<u32, Unsupported> {
    let mut open: Option<Open> = None;
    let mut root: Option<u32> = None;

    fn push_node(
        elems: &mut [Elem],
        stack: &[u32],
        open: &mut Option<Open>,
        node: Node,
    ) -> Result<(), Unsupported> {
        if let Some(o) = open.as_mut() {
            let attr = o
                .elem
                .attrs
                .last_mut()
                .ok_or(Unsupported("value in an element start"))?;
            attr.value.push(node);
            return Ok(());
        }
        let parent = *stack
            .last()
            .ok_or(Unsupported("value outside an element"))?;
        elems[parent as usize].children.push(node);
        Ok(())
    }

    fn attach(
        elems: &mut Vec<Elem>,
        stack: &[u32],
        root: &mut Option<u32>,
        elem: Elem,
    ) -> Result<u32, Unsupported> {
        if elems.len() >= MAX_ELEMENTS {
            return Err(Unsupported("template too large"));
        }
        let id = elems.len() as u32;
        elems.push(elem);
        match stack.last() {
            Some(&parent) => elems[parent as usize].children.push(Node::Elem(id)),
            None if root.is_none() => *root = Some(id),
            None => return Err(Unsupported("template with several roots")),
        }
        Ok(id)
    }

    while cur.pos < end {
        let token = cur.u8()?;
        match token {
            0x00 => break,
            0x0f => {
                cur.take(3)?;
            }
            0x01 | 0x41 => {
                if open.is_some() {
                    return Err(Unsupported("element start inside an element start"));
                }
                let dep = if fragment { 0xffff } else { cur.u16()? };
                let _size = cur.u32()?;
                let name = cur.name(chunk)?;
                if token & 0x40 != 0 {
                    let _attr_size = cur.u32()?;
                }
                open = Some(Open {
                    elem: bins.elem(name, (dep != 0xffff).then_some(dep)),
                });
            }
            0x06 | 0x46 => {
                let name = cur.name(chunk)?;
                let o = open
                    .as_mut()
                    .ok_or(Unsupported("attribute outside an element start"))?;
                o.elem.attrs.push(bins.attr(name));
            }
            0x02 => {
                let o = open
                    .take()
                    .ok_or(Unsupported("close start without a start"))?;
                if stack.len() >= MAX_DEPTH {
                    return Err(Unsupported("elements nested too deeply"));
                }
                let id = attach(elems, stack, &mut root, finish(o))?;
                // The element was attached to its parent when it opened; it becomes the parent.
                stack.push(id);
            }
            0x03 => {
                let o = open
                    .take()
                    .ok_or(Unsupported("close empty without a start"))?;
                attach(elems, stack, &mut root, finish(o))?;
            }
            0x04 => {
                if open.is_some() {
                    return Err(Unsupported("end element inside an element start"));
                }
                stack
                    .pop()
                    .ok_or(Unsupported("end element without an element"))?;
            }
            0x05 | 0x45 => {
                let t = cur.u8()?;
                if t != ty::STRING {
                    return Err(Unsupported("literal value of a type other than string"));
                }
                let s = cur.text(bins.string())?;
                push_node(elems, stack, &mut open, Node::Text(s))?;
            }
            0x0d | 0x0e if fragment => {
                return Err(Unsupported("substitution outside a template definition"));
            }
            0x0d | 0x0e => {
                let id = cur.u16()?;
                let t = cur.u8()?;
                if !is_known_type(t) {
                    return Err(Unsupported("unknown substitution type"));
                }
                push_node(
                    elems,
                    stack,
                    &mut open,
                    Node::Sub {
                        id,
                        optional: token == 0x0e,
                    },
                )?;
            }
            0x07 | 0x47 => {
                let s = cur.text(bins.string())?;
                push_node(elems, stack, &mut open, Node::CData(s))?;
            }
            0x08 | 0x48 => {
                let c = cur.u16()?;
                push_node(elems, stack, &mut open, Node::CharRef(c))?;
            }
            0x09 | 0x49 => {
                let name = cur.name(chunk)?;
                push_node(elems, stack, &mut open, Node::Entity(name.to_string()))?;
            }
            0x0a => {
                let _target = cur.name(chunk)?;
                push_node(elems, stack, &mut open, Node::Pi)?;
            }
            0x0b => {
                let _data = cur.text(String::new())?;
                push_node(elems, stack, &mut open, Node::Pi)?;
            }
            _ => return Err(Unsupported("token not allowed in a template definition")),
        }
    }
    if open.is_some() || !stack.is_empty() {
        return Err(Unsupported("unbalanced template"));
    }
    // A last token that runs past the end would make the tree depend on bytes outside it
    // (and plans are shared by the definition's bytes).
    if cur.pos > end {
        return Err(Unsupported("template tokens run past the definition"));
    }
    root.ok_or(Unsupported("template without a root element"))
}

fn finish(o: Open) -> Elem {
    let mut e = o.elem;
    // An attribute without a value is not rendered.
    e.attrs.retain(|a| !a.value.is_empty());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    fn elem(children: usize, attrs: usize, text: usize) -> Elem {
        let name: Name = "E".into();
        Elem {
            name: name.clone(),
            dependency: None,
            attrs: (0..attrs)
                .map(|_| Attr {
                    name: name.clone(),
                    value: vec![Node::Text("v".repeat(text))],
                })
                .collect(),
            children: (0..children)
                .map(|_| Node::Text("t".repeat(text)))
                .collect(),
        }
    }

    /// What the bins keep is bounded whatever the trees put in them: no list or string that
    /// grew large, at most `MOST` of each; what they give back is empty, named anew.
    #[test]
    fn bins_keep_a_bounded_number_of_small_parts() {
        let mut bins = Bins::default();
        bins.put_elem(elem(Bins::ROOM + 1, 1, 1));
        assert_eq!((bins.elems.len(), bins.attrs.len()), (0, 1));
        assert_eq!(bins.strings.len(), Bins::ROOM + 2);
        bins.put_elem(elem(1, 1, 16 * Bins::ROOM + 1));
        assert_eq!((bins.elems.len(), bins.strings.len()), (1, Bins::ROOM + 2));
        for _ in 0..3 * Bins::MOST {
            bins.put_elem(elem(2, 2, 3));
        }
        assert_eq!(bins.elems.len(), Bins::MOST);
        assert_eq!(bins.attrs.len(), Bins::MOST);
        assert_eq!(bins.strings.len(), Bins::MOST);
        let e = bins.elem("Other".into(), Some(3));
        assert_eq!((e.name.as_ref(), e.dependency), ("Other", Some(3)));
        assert!(e.attrs.is_empty() && e.children.is_empty());
        let a = bins.attr("A".into());
        assert!(a.name.as_ref() == "A" && a.value.is_empty());
        assert!(bins.string().is_empty());
    }
}
