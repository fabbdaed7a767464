//! The per-record executor of a [`Plan`]: it reads only the substitution values. The System
//! columns come straight from them; `data` is written as JSON from the typed values as the evtx
//! crate renders the payload element (its `Data[@Name]` flattening, `_N` suffixes for repeated
//! names, runs of one name as arrays, `#attributes`/`#text`, nested BinXML instances, elements
//! repeated by array substitutions), without building a tree, and with the payload's top-level
//! members noted so that promoted fields are read back without parsing.

use crate::FastMap;
use std::borrow::Cow;

use super::Unsupported;
use super::plan::literal_name;
use super::strings;
use super::substitution::{ER, Nodes, RN, Res};
use super::templates::{Elem, Node};
use super::values::Val;

/// Deepest element nesting rendered (across nested instances).
const MAX_RENDER_DEPTH: u32 = 96;
/// Most `data` bytes one record may produce (the evtx crate's own cap is 16 MiB).
pub const MAX_OUTPUT: usize = 16 << 20;

/// What a top-level member of the payload object holds.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Str,
    Num,
    Other,
}

/// A top-level member of `data`: key and value as byte ranges of it.
#[derive(Clone, Copy, Debug)]
pub struct Member {
    pub(super) key: (u32, u32),
    pub(super) val: (u32, u32),
    pub(super) kind: Kind,
}

/// Reusable buffers of the executor.
#[derive(Default)]
pub struct Scratch {
    pub data: String,
    pub(super) kids: Vec<Vec<ER>>,
    pub(super) counts: Vec<Vec<(u32, u32)>>,
    pub(super) sys: String,
    pub(super) members: Vec<Member>,
    pub(super) num: String,
    /// Per System column, the last UTF-16 string, GUID or SID it held (its kind: 0, 1, 2; its
    /// bytes) and its text: most records of a chunk name the same provider, provider GUID,
    /// channel, computer and user, whose text is then copied, not written again.
    pub(super) known: Vec<(u8, Vec<u8>, String)>,
}

pub(super) struct R<'s, 'a> {
    pub(super) res: Res<'s, 'a>,
    pub(super) out: &'s mut String,
    pub(super) depth: u32,
    /// Depth whose members are noted (the payload object's), if any.
    pub(super) note_depth: Option<u32>,
    pub(super) members: &'s mut Vec<Member>,
    /// Buffers for the element lists and name counts of the objects being written.
    pub(super) kids: &'s mut Vec<Vec<ER>>,
    pub(super) counts: &'s mut Vec<Vec<(u32, u32)>>,
}

impl<'s, 'a> R<'s, 'a> {
    pub(super) fn elem(&self, er: ER) -> &'s Elem {
        self.res.elem(er)
    }

    pub(super) fn left_out(&self, inst: u32, e: &Elem) -> bool {
        self.res.left_out(inst, e)
    }

    pub(super) fn nodes(&self, ctx: ER, nodes: &'s [Node]) -> Nodes<'s, 'a> {
        self.res.nodes(ctx, nodes)
    }

    pub(super) fn children(&self, er: ER) -> Nodes<'s, 'a> {
        self.res.children(er)
    }

    pub(super) fn attrs(
        &self,
        er: ER,
    ) -> impl Iterator<Item = (&'s str, usize)> + Clone + use<'s, 'a> {
        self.res.attrs(er)
    }

    pub(super) fn attr_nodes(&self, er: ER, i: usize) -> Nodes<'s, 'a> {
        self.res.attr_nodes(er, i)
    }

    pub(super) fn check(&self) -> Result<(), Unsupported> {
        if self.out.len() > MAX_OUTPUT {
            return Err(Unsupported("record renders too large"));
        }
        Ok(())
    }

    // --- text ---

    /// The content of `nodes` as text (JSON-escaped when `json`).
    pub(super) fn text(
        out: &mut String,
        nodes: impl Iterator<Item = RN<'s, 'a>>,
        skip_elements: bool,
        json: bool,
    ) -> Result<(), Unsupported> {
        for n in nodes {
            match n {
                RN::Text(s) => {
                    if json {
                        strings::push_json_str(out, s)
                    } else {
                        out.push_str(s)
                    }
                }
                RN::Str(v) | RN::Val(v) => v.write(out, json)?,
                RN::Char(c) => match char::from_u32(u32::from(c)) {
                    Some(ch) if json => strings::push_json_char(out, ch),
                    Some(ch) => out.push(ch),
                    None => {
                        out.push_str("&#");
                        out.push_str(&c.to_string());
                        out.push(';');
                    }
                },
                RN::Entity(name) => {
                    let resolved = match name {
                        "quot" => Some('"'),
                        "apos" => Some('\''),
                        "amp" => Some('&'),
                        "lt" => Some('<'),
                        "gt" => Some('>'),
                        _ => None,
                    };
                    match resolved {
                        Some(c) if json => strings::push_json_char(out, c),
                        Some(c) => out.push(c),
                        None => {
                            out.push('&');
                            out.push_str(name);
                            out.push(';');
                        }
                    }
                }
                RN::Pi => {}
                RN::Elem(_) => {
                    if !skip_elements {
                        return Err(Unsupported("element inside text"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The single bare value `nodes` consist of, if they do.
    pub(super) fn as_number(
        nodes: impl Iterator<Item = RN<'s, 'a>>,
        skip_elements: bool,
    ) -> Option<Val<'a>> {
        let mut single: Option<RN<'s, 'a>> = None;
        for n in nodes {
            match n {
                RN::Elem(_) => {
                    if skip_elements {
                        continue;
                    }
                    return None;
                }
                n if n.is_text() => {
                    let empty = !n.is_content();
                    if skip_elements {
                        if !empty {
                            return None;
                        }
                    } else if single.is_some() || !empty {
                        return None;
                    } else {
                        single = Some(n);
                    }
                }
                RN::Val(v) => {
                    if skip_elements && v.is_empty() {
                        continue;
                    }
                    if single.is_some() {
                        return None;
                    }
                    single = Some(n);
                }
                RN::Char(_) | RN::Entity(_) => return None,
                _ => {
                    // A processing instruction.
                    if !skip_elements {
                        if single.is_some() {
                            return None;
                        }
                        single = Some(n);
                    }
                }
            }
        }
        match single {
            Some(RN::Val(v)) if v.is_bare() => Some(v),
            _ => None,
        }
    }

    pub(super) fn content_value(
        &mut self,
        nodes: impl Iterator<Item = RN<'s, 'a>> + Clone,
        skip_elements: bool,
    ) -> Result<(), Unsupported> {
        if let Some(v) = Self::as_number(nodes.clone(), skip_elements) {
            return v.write(self.out, false);
        }
        self.out.push('"');
        Self::text(self.out, nodes, skip_elements, true)?;
        self.out.push('"');
        Ok(())
    }

    // --- elements ---

    pub(super) fn layout(&self, er: ER) -> (bool, bool) {
        let (mut text, mut elem) = (false, false);
        for n in self.children(er) {
            if matches!(n, RN::Elem(_)) {
                elem = true;
            } else if n.is_content() {
                text = true;
            }
        }
        (text, elem)
    }

    pub(super) fn attrs_have_text(&self, er: ER) -> bool {
        self.attrs(er)
            .any(|(_, i)| self.attr_nodes(er, i).any(|n| n.is_content()))
    }

    pub(super) fn try_leaf(&mut self, er: ER, empty_as_string: bool) -> Result<bool, Unsupported> {
        let mut it = self.children(er);
        let (Some(first), None) = (it.next(), it.next()) else {
            return Ok(false);
        };
        let empty = if empty_as_string { "\"\"" } else { "null" };
        match first {
            RN::Text(_) | RN::Str(_) if !first.is_content() => self.out.push_str(empty),
            RN::Text(_) | RN::Str(_) => {
                self.out.push('"');
                Self::text(self.out, std::iter::once(first), false, true)?;
                self.out.push('"');
            }
            RN::Val(v) if v.is_empty() => self.out.push_str(empty),
            RN::Val(v) if v.is_bare() => v.write(self.out, false)?,
            RN::Val(v) => {
                self.out.push('"');
                v.write(self.out, true)?;
                self.out.push('"');
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    pub(super) fn data_value(&mut self, er: ER) -> Result<(), Unsupported> {
        if self.try_leaf(er, true)? {
            return Ok(());
        }
        let (text, elem) = self.layout(er);
        if !text && !elem {
            self.out.push_str("\"\"");
            Ok(())
        } else if elem {
            self.body(er, false, true, text)
        } else {
            self.content_value(self.children(er), false)
        }
    }

    pub(super) fn value(&mut self, er: ER, container: bool) -> Result<(), Unsupported> {
        if self.attrs(er).next().is_none() && self.try_leaf(er, false)? {
            return Ok(());
        }
        let (text, elem) = self.layout(er);
        let attr_text = self.attrs_have_text(er);
        if !elem && !text && !attr_text {
            self.out.push_str("null");
            Ok(())
        } else if !elem && !attr_text {
            self.content_value(self.children(er), false)
        } else {
            self.body(er, container, false, text)
        }
    }

    /// Whether [`R::value`] writes an object.
    pub(super) fn value_is_object(&self, er: ER) -> bool {
        let mut it = self.children(er);
        let leaf = match (it.next(), it.next()) {
            (Some(n), None) => !matches!(n, RN::Elem(_) | RN::Char(_) | RN::Entity(_) | RN::Pi),
            _ => false,
        };
        if self.attrs(er).next().is_none() && leaf {
            return false;
        }
        let (_, elem) = self.layout(er);
        elem || self.attrs_have_text(er)
    }

    pub(super) fn attrs_object(&mut self, er: ER) -> Result<bool, Unsupported> {
        if !self.attrs_have_text(er) {
            return Ok(false);
        }
        self.out.push_str("\"#attributes\":{");
        let mut first = true;
        for (name, i) in self.attrs(er) {
            if !self.attr_nodes(er, i).any(|n| n.is_content()) {
                continue;
            }
            if !first {
                self.out.push(',');
            }
            first = false;
            self.out.push('"');
            self.out.push_str(name);
            self.out.push_str("\":");
            self.content_value(self.attr_nodes(er, i), false)?;
        }
        self.out.push('}');
        Ok(true)
    }

    /// A `Data` element's `Name`: its text, if it has content.
    pub(super) fn data_name(&self, er: ER) -> Option<Cow<'s, str>> {
        if let Some(name) = literal_name(self.elem(er)) {
            return Some(Cow::Borrowed(name));
        }
        let (_, i) = self.attrs(er).find(|(n, _)| *n == "Name")?;
        let mut it = self.attr_nodes(er, i);
        if !it.clone().any(|n| n.is_content()) {
            return None;
        }
        if let (Some(RN::Text(s)), None) = (it.next(), it.next()) {
            if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
                return Some(Cow::Borrowed(s));
            }
            let mut escaped = String::new();
            strings::push_json_str(&mut escaped, s);
            return Some(Cow::Owned(escaped));
        }
        let mut s = String::new();
        Self::text(&mut s, self.attr_nodes(er, i), false, true).ok()?;
        Some(Cow::Owned(s))
    }

    pub(super) fn key(&mut self, name: &str, suffix: u32) -> usize {
        self.out.push('"');
        let start = self.out.len();
        self.out.push_str(name);
        if suffix > 0 {
            self.out.push('_');
            self.out.push_str(&suffix.to_string());
        }
        let end = self.out.len();
        self.out.push_str("\":");
        self.note_key(start, end);
        self.out.len()
    }

    /// Note a member whose key is `out[start..end]`, when this depth's members are noted.
    fn note_key(&mut self, start: usize, end: usize) {
        if self.note_depth == Some(self.depth) {
            self.members.push(Member {
                key: (start as u32, end as u32),
                val: (0, 0),
                kind: Kind::Other,
            });
        }
    }

    pub(super) fn noted(&mut self, value_start: usize) {
        if self.note_depth == Some(self.depth)
            && let Some(m) = self.members.last_mut()
        {
            let end = self.out.len();
            m.val = (value_start as u32, end as u32);
            m.kind = match self.out.as_bytes().get(value_start) {
                Some(b'"') => Kind::Str,
                Some(b'-' | b'0'..=b'9' | b't' | b'f') => Kind::Num,
                _ => Kind::Other,
            };
        }
    }

    /// Whether `er` is an element of the payload's fast path: its children are all `Data`
    /// elements with literal names and no dependency, none repeated by an array. Such an
    /// element, with at least one child, is always written as an object
    /// ([`R::value_is_object`], which resolves every child to tell).
    pub(super) fn is_fast(&self, er: ER) -> bool {
        let rec = self.res.rec;
        !rec.arrays
            && er.rep == 0
            && rec.insts[er.inst as usize]
                .plan
                .fast_data_of(er.elem)
                .is_some()
    }

    /// The payload object of a fast-path element (see [`Plan::fast_data`]); false (nothing
    /// written) when a value needs the general path.
    pub(super) fn fast_body(&mut self, er: ER) -> Result<bool, Unsupported> {
        let rec = self.res.rec;
        let inst = &rec.insts[er.inst as usize];
        let Some(fields) = inst.plan.fast_data_of(er.elem) else {
            return Ok(false);
        };
        if rec.arrays || er.rep > 0 {
            return Ok(false);
        }
        let vals = &rec.vals[inst.vals.0 as usize..inst.vals.1 as usize];
        let (start, noted) = (self.out.len(), self.members.len());
        self.out.push('{');
        for (i, f) in fields.iter().enumerate() {
            // The key written in one copy, as `key` writes it.
            let member = if i > 0 { &f.member } else { &f.member[1..] };
            self.out.push_str(member);
            let at = self.out.len();
            self.note_key(at - 2 - f.key_len(), at - 2);
            match vals.get(usize::from(f.id)) {
                None => self.out.push_str("\"\""),
                Some(Val::Frag(_) | Val::Array(_)) => {
                    self.out.truncate(start);
                    self.members.truncate(noted);
                    return Ok(false);
                }
                Some(v) if v.is_empty() => self.out.push_str("\"\""),
                Some(v) if v.is_bare() => v.write(self.out, false)?,
                Some(v) => {
                    self.out.push('"');
                    v.write(self.out, true)?;
                    self.out.push('"');
                }
            }
            self.noted(at);
        }
        self.out.push('}');
        Ok(true)
    }

    pub(super) fn body(
        &mut self,
        er: ER,
        in_container: bool,
        omit_attrs: bool,
        has_text: bool,
    ) -> Result<(), Unsupported> {
        self.check()?;
        if self.depth >= MAX_RENDER_DEPTH {
            return Err(Unsupported("elements nested too deeply"));
        }
        self.depth += 1;
        let mut kids = self.kids.pop().unwrap_or_default();
        kids.clear();
        kids.extend(self.children(er).filter_map(|n| match n {
            RN::Elem(c) => Some(c),
            _ => None,
        }));
        let mut names = self.counts.pop().unwrap_or_default();
        names.clear();
        let done = self.members_of(er, &kids, &mut names, in_container, omit_attrs, has_text);
        self.kids.push(kids);
        self.counts.push(names);
        done?;
        self.out.push('}');
        self.depth -= 1;
        Ok(())
    }

    /// The members of `er`'s object (after its `{`): attributes, text, child elements.
    /// `names` counts the element names seen, as (index in `kids` of the first, count).
    pub(super) fn members_of(
        &mut self,
        er: ER,
        kids: &[ER],
        names: &mut Vec<(u32, u32)>,
        in_container: bool,
        omit_attrs: bool,
        has_text: bool,
    ) -> Result<(), Unsupported> {
        let is_data = |r: &Self, c: ER| r.elem(c).name.as_ref() == "Data";
        let distinct = self.res.rec.insts[er.inst as usize].plan.distinct_data[er.elem as usize]
            && !kids.iter().any(|k| k.rep > 0);
        let flatten = in_container
            && kids
                .iter()
                .any(|&c| is_data(self, c) && self.data_name(c).is_some());
        self.out.push('{');
        let mut wrote_any = false;
        if !omit_attrs && self.attrs(er).next().is_some() && self.attrs_object(er)? {
            wrote_any = true;
        }
        if has_text {
            if wrote_any {
                self.out.push(',');
            }
            wrote_any = true;
            let at = self.key("#text", 0);
            self.content_value(self.children(er), true)?;
            self.noted(at);
        }
        let positional = if in_container && !flatten {
            kids.iter().filter(|&&c| is_data(self, c)).count()
        } else {
            0
        };
        let mut positional_done = false;
        // The `Data` names seen, with their counts. A map: an array substitution in the `Name`
        // of one element makes as many names as it has items, and a name may need decoding.
        let mut data_names: FastMap<Cow<'s, str>, u32> = FastMap::default();
        let mut i = 0;
        while i < kids.len() {
            let c = kids[i];
            i += 1;
            let name: &'s str = &self.elem(c).name;
            if in_container && name == "Data" {
                if flatten {
                    let Some(dn) = self.data_name(c) else {
                        continue;
                    };
                    if wrote_any {
                        self.out.push(',');
                    }
                    wrote_any = true;
                    // A run of Data elements of one name is one member, an array.
                    let mut run = 1;
                    while let Some(&n) = kids.get(i + run - 1).filter(|_| !distinct) {
                        if is_data(self, n) && self.data_name(n).as_deref() == Some(&*dn) {
                            run += 1;
                        } else {
                            break;
                        }
                    }
                    let suffix = if distinct {
                        0
                    } else {
                        let seen = data_names.entry(dn.clone()).or_insert(0);
                        *seen += 1;
                        *seen - 1
                    };
                    let at = self.key(&dn, suffix);
                    if run == 1 {
                        self.data_value(c)?;
                    } else {
                        self.out.push('[');
                        self.data_value(c)?;
                        for &n in &kids[i..i + run - 1] {
                            self.out.push(',');
                            self.data_value(n)?;
                        }
                        self.out.push(']');
                        i += run - 1;
                    }
                    self.noted(at);
                    continue;
                }
                if positional_done || positional == 0 {
                    continue;
                }
                if wrote_any {
                    self.out.push(',');
                }
                wrote_any = true;
                positional_done = true;
                let at = self.key("Data", 0);
                self.out.push_str("{\"#text\":");
                if positional == 1 {
                    self.data_value(c)?;
                } else {
                    self.out.push('[');
                    let mut first = true;
                    for &n in kids {
                        if !is_data(self, n) {
                            continue;
                        }
                        if !first {
                            self.out.push(',');
                        }
                        first = false;
                        self.data_value(n)?;
                    }
                    self.out.push(']');
                }
                self.out.push('}');
                self.noted(at);
                continue;
            }
            let suffix = {
                let found = names
                    .iter_mut()
                    .find(|(first, _)| self.elem(kids[*first as usize]).name.as_ref() == name);
                match found {
                    Some(e) => {
                        e.1 += 1;
                        e.1 - 1
                    }
                    None => {
                        names.push(((i - 1) as u32, 1));
                        0
                    }
                }
            };
            if wrote_any {
                self.out.push(',');
            }
            wrote_any = true;
            let at = self.key(name, suffix);
            let container = name == "EventData" || name == "UserData";
            self.value(c, container)?;
            self.noted(at);
            self.check()?;
        }
        Ok(())
    }
}

/// Element names seen, each with its count (an element has few distinct children's names).
pub(super) type Names<'s> = smallvec::SmallVec<[(&'s str, u32); 4]>;

/// How many elements named `name` came before this one (counted in `seen`).
pub(super) fn next_suffix_str<'s>(seen: &mut Names<'s>, name: &'s str) -> u32 {
    if let Some(e) = seen.iter_mut().find(|(n, _)| *n == name) {
        e.1 += 1;
        return e.1 - 1;
    }
    seen.push((name, 1));
    0
}
