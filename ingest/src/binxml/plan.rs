//! A template compiled into a column plan, and the per-record executor.
//!
//! [`Plan::compile`] checks a template once: which System element and attribute feeds which
//! System column, and whether the template's shape is one this path renders exactly as the
//! evtx crate does. Per record, [`render`] reads only the substitution values: the System
//! columns straight from them, `data` written as JSON from the typed values as the evtx crate
//! would render the payload element (its `Data[@Name]` flattening, `_N` suffixes for repeated
//! names, runs of one name as arrays, `#attributes`/`#text`, nested BinXML instances), with the
//! top-level members noted so that promoted fields are read back without parsing.

use std::borrow::Cow;
use std::sync::Arc;

use super::Unsupported;
use super::strings;
use super::templates::{Elem, Node, Template};
use super::values::Val;
use crate::convert::{PayloadFields, RecordView};

/// Deepest element nesting rendered (across nested instances).
const MAX_RENDER_DEPTH: u32 = 96;
/// Most `data` bytes one record may produce (the evtx crate's own cap is 16 MiB).
pub const MAX_OUTPUT: usize = 16 << 20;

/// The System columns a plan knows where to find.
#[derive(Clone, Copy)]
enum Field {
    ProviderName,
    ProviderGuid,
    EventId,
    Qualifiers,
    Version,
    Level,
    Task,
    Opcode,
    Keywords,
    SystemTime,
    ActivityId,
    ProcessId,
    ThreadId,
    Channel,
    Computer,
    UserId,
}
const FIELDS: usize = 16;
/// The fields read as text (the others as numbers).
const FIELD_IS_TEXT: [bool; FIELDS] = [
    true, true, false, false, false, false, false, false, false, true, true, false, false, true,
    true, true,
];

/// Where a System column's text comes from: an element's content, or one of its attributes.
#[derive(Clone, Copy, Debug)]
struct Src {
    elem: u32,
    attr: Option<u32>,
}

/// A compiled template.
pub struct Plan {
    pub tpl: Arc<Template>,
    /// Whether the tree can be rendered at all (names that need no escaping, no duplicate
    /// attribute names).
    generic: Result<(), Unsupported>,
    /// Whether it can be a record's top-level template (an `Event` with a `System`).
    event: Result<(), Unsupported>,
    sources: [Option<Src>; FIELDS],
    /// Per element: its `Data` children have literal names, all different, so no name of
    /// them repeats (no `_N` suffixes, no runs to gather into arrays).
    distinct_data: Vec<bool>,
    /// Per element: when all its children are `<Data Name="literal">%n</Data>` (names all
    /// different, no dependencies), their keys (escaped) and substitutions, for the payload's
    /// fast path.
    fast_data: Vec<Option<Vec<FastData>>>,
}

/// One `<Data Name="literal">%n</Data>` of a fast payload.
struct FastData {
    key: String,
    id: u16,
}

fn fast_data(tpl: &Template, e: &Elem) -> Option<Vec<FastData>> {
    if !distinct_data(tpl, e) || e.children.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(e.children.len());
    for n in &e.children {
        let Node::Elem(id) = n else { return None };
        let c = &tpl.elems[*id as usize];
        if c.name != "Data" || c.dependency.is_some() {
            return None;
        }
        let key = literal_name(c)?.to_owned();
        // Optional or not, an empty value is `""` in a Data element.
        let [Node::Sub { id, .. }] = c.children.as_slice() else {
            return None;
        };
        out.push(FastData { key, id: *id });
    }
    Some(out)
}

/// A `Data` element's literal, non-empty name that needs no escaping.
fn literal_name(e: &Elem) -> Option<&str> {
    let a = e.attrs.iter().find(|a| a.name == "Name")?;
    match a.value.as_slice() {
        [Node::Text(s)] if !s.is_empty() && json_safe_name(s) => Some(s),
        _ => None,
    }
}

fn distinct_data(tpl: &Template, e: &Elem) -> bool {
    let mut seen: Vec<&str> = Vec::new();
    for n in &e.children {
        let Node::Elem(id) = n else {
            return false;
        };
        let c = &tpl.elems[*id as usize];
        if c.name != "Data" {
            continue;
        }
        match literal_name(c) {
            Some(name) if !seen.contains(&name) => seen.push(name),
            _ => return false,
        }
    }
    true
}

fn json_safe_name(s: &str) -> bool {
    s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\')
}

impl Plan {
    pub fn compile(tpl: Arc<Template>) -> Plan {
        let generic = check_generic(&tpl);
        let mut sources = [None; FIELDS];
        let event = generic.and_then(|()| compile_event(&tpl, &mut sources));
        let distinct_data = tpl.elems.iter().map(|e| distinct_data(&tpl, e)).collect();
        let fast_data = tpl.elems.iter().map(|e| fast_data(&tpl, e)).collect();
        Plan {
            tpl,
            generic,
            event,
            sources,
            distinct_data,
            fast_data,
        }
    }

    pub fn generic(&self) -> Result<(), Unsupported> {
        self.generic
    }
}

fn check_generic(tpl: &Template) -> Result<(), Unsupported> {
    for e in &tpl.elems {
        if !json_safe_name(&e.name) {
            return Err(Unsupported("element name that needs escaping"));
        }
        for (i, a) in e.attrs.iter().enumerate() {
            if !json_safe_name(&a.name) {
                return Err(Unsupported("attribute name that needs escaping"));
            }
            if e.attrs[..i].iter().any(|b| b.name == a.name) {
                return Err(Unsupported("repeated attribute name"));
            }
        }
        for n in &e.children {
            if let Node::Entity(name) = n
                && !json_safe_name(name)
            {
                return Err(Unsupported("entity name that needs escaping"));
            }
        }
    }
    Ok(())
}

fn compile_event(tpl: &Template, sources: &mut [Option<Src>; FIELDS]) -> Result<(), Unsupported> {
    let root = &tpl.elems[tpl.root as usize];
    if root.name != "Event" {
        return Err(Unsupported("root element is not Event"));
    }
    let mut system = None;
    for n in &root.children {
        let id = match n {
            Node::Elem(id) => id,
            // A nested instance (EventData or UserData in a BinXML value), checked per record.
            Node::Sub { .. } => continue,
            _ => return Err(Unsupported("Event has content other than elements")),
        };
        if tpl.elems[*id as usize].name == "System" {
            if system.is_some() {
                return Err(Unsupported("two System elements"));
            }
            system = Some(*id);
        }
    }
    let Some(system) = system else {
        return Err(Unsupported("no System element"));
    };
    let mut seen: Vec<&str> = Vec::new();
    for n in &tpl.elems[system as usize].children {
        let Node::Elem(id) = n else {
            return Err(Unsupported("System has content other than elements"));
        };
        let e = &tpl.elems[*id as usize];
        if seen.contains(&e.name.as_str()) {
            return Err(Unsupported("repeated System child"));
        }
        seen.push(&e.name);
        let attr = |name: &str| -> Option<Src> {
            e.attrs.iter().position(|a| a.name == name).map(|i| Src {
                elem: *id,
                attr: Some(i as u32),
            })
        };
        let content = Src {
            elem: *id,
            attr: None,
        };
        let leaf = !e.children.iter().any(|n| matches!(n, Node::Elem(_)));
        // Elements read as attribute objects must have no content: text would make them a
        // string, which the JSON reader refuses.
        let attrs_only = e.children.is_empty();
        let mut set = |f: Field, s: Option<Src>| sources[f as usize] = s;
        match e.name.as_str() {
            "Provider" | "TimeCreated" | "Correlation" | "Execution" | "Security"
                if !attrs_only =>
            {
                return Err(Unsupported("System attribute element with content"));
            }
            "EventID" | "Version" | "Level" | "Task" | "Opcode" | "Keywords" | "Channel"
            | "Computer"
                if !leaf =>
            {
                return Err(Unsupported("System element with child elements"));
            }
            "Provider" => {
                set(Field::ProviderName, attr("Name"));
                set(Field::ProviderGuid, attr("Guid"));
            }
            "TimeCreated" => set(Field::SystemTime, attr("SystemTime")),
            "Correlation" => set(Field::ActivityId, attr("ActivityID")),
            "Execution" => {
                set(Field::ProcessId, attr("ProcessID"));
                set(Field::ThreadId, attr("ThreadID"));
            }
            "Security" => set(Field::UserId, attr("UserID")),
            "EventID" => {
                set(Field::EventId, Some(content));
                set(Field::Qualifiers, attr("Qualifiers"));
            }
            "Version" => set(Field::Version, Some(content)),
            "Level" => set(Field::Level, Some(content)),
            "Task" => set(Field::Task, Some(content)),
            "Opcode" => set(Field::Opcode, Some(content)),
            "Keywords" => set(Field::Keywords, Some(content)),
            "Channel" => set(Field::Channel, Some(content)),
            "Computer" => set(Field::Computer, Some(content)),
            _ => {}
        }
    }
    Ok(())
}

/// One template instance of a record: its plan and its values (a range of [`Record::vals`]).
pub struct Inst {
    pub plan: Arc<Plan>,
    pub vals: (u32, u32),
}

/// A record's instances (the first is the record's own) and their values.
#[derive(Default)]
pub struct Record<'a> {
    pub vals: Vec<Val<'a>>,
    pub insts: Vec<Inst>,
    /// Whether a value is an array of several items (elements may repeat).
    pub arrays: bool,
}

/// An element of one of the record's instances; a copy of it when an array substitution
/// repeats it (`rep` > 0: the copy for item `rep - 1` of substitution `sub`).
#[derive(Clone, Copy)]
struct ER {
    inst: u32,
    elem: u32,
    rep: u32,
    sub: u16,
}

impl ER {
    fn new(inst: u32, elem: u32) -> Self {
        ER {
            inst,
            elem,
            rep: 0,
            sub: 0,
        }
    }
}

/// What one template node resolves to: nothing, one node, or the copies of an element.
#[derive(Clone, Copy)]
enum Resolved<'s, 'a> {
    Empty,
    One(RN<'s, 'a>),
    Many { er: ER, count: u32 },
}

impl<'s, 'a> Iterator for Resolved<'s, 'a> {
    type Item = RN<'s, 'a>;
    fn next(&mut self) -> Option<RN<'s, 'a>> {
        match *self {
            Resolved::Empty => None,
            Resolved::One(n) => {
                *self = Resolved::Empty;
                Some(n)
            }
            Resolved::Many { er, count } => {
                if er.rep > count {
                    return None;
                }
                *self = Resolved::Many {
                    er: ER {
                        rep: er.rep + 1,
                        ..er
                    },
                    count,
                };
                Some(RN::Elem(er))
            }
        }
    }
}

/// A node after substitution.
#[derive(Clone, Copy)]
enum RN<'s, 'a> {
    Text(&'s str),
    /// A string value: a text node.
    Str(Val<'a>),
    Val(Val<'a>),
    Elem(ER),
    Char(u16),
    Entity(&'s str),
    Pi,
}

impl RN<'_, '_> {
    fn is_content(&self) -> bool {
        match self {
            RN::Text(s) => !s.is_empty(),
            RN::Str(v) | RN::Val(v) => !v.is_empty(),
            RN::Char(_) | RN::Entity(_) => true,
            RN::Elem(_) | RN::Pi => false,
        }
    }
    fn is_text(&self) -> bool {
        matches!(self, RN::Text(_) | RN::Str(_))
    }
}

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
    key: (u32, u32),
    val: (u32, u32),
    kind: Kind,
}

/// Reusable buffers of the executor.
#[derive(Default)]
pub struct Scratch {
    pub data: String,
    kids: Vec<Vec<ER>>,
    counts: Vec<Vec<(u32, u32)>>,
    sys: String,
    members: Vec<Member>,
    num: String,
}

/// Substitution over a record's instances: how its template nodes resolve.
#[derive(Clone, Copy)]
struct Res<'s, 'a> {
    rec: &'s Record<'a>,
    /// Set when the record uses a substitution in a way this path does not render.
    bad: &'s std::cell::Cell<bool>,
}

impl<'s, 'a> Res<'s, 'a> {
    fn elem(self, er: ER) -> &'s Elem {
        let tpl: &'s Template = &self.rec.insts[er.inst as usize].plan.tpl;
        &tpl.elems[er.elem as usize]
    }

    fn val(self, inst: u32, id: u16) -> Option<&'s Val<'a>> {
        let rec: &'s Record<'a> = self.rec;
        let (start, end) = rec.insts[inst as usize].vals;
        rec.vals[start as usize..end as usize].get(usize::from(id))
    }

    fn left_out(self, inst: u32, e: &Elem) -> bool {
        e.dependency
            .and_then(|d| self.val(inst, d))
            .is_some_and(|v| matches!(v, Val::Null))
    }

    /// Resolve node `n` of element `ctx` (whose copy `ctx.rep` replaces `ctx.sub`).
    fn resolve(self, ctx: ER, n: &'s Node) -> Resolved<'s, 'a> {
        let one = Resolved::One;
        match n {
            Node::Text(s) | Node::CData(s) => one(RN::Text(s)),
            Node::Sub { id, optional } => {
                let Some(&v) = self.val(ctx.inst, *id) else {
                    return Resolved::Empty;
                };
                let v = match v {
                    Val::Array(items) if ctx.rep > 0 && *id == ctx.sub => {
                        match items.item(ctx.rep - 1) {
                            // Empty strings leave the copy empty.
                            Some(v) if v.is_text() && v.is_empty() => return Resolved::Empty,
                            Some(v) => v,
                            None => {
                                self.bad.set(true);
                                return Resolved::Empty;
                            }
                        }
                    }
                    v => v,
                };
                match v {
                    Val::Frag(i) => {
                        let tpl = &self.rec.insts[i as usize].plan.tpl;
                        one(RN::Elem(ER::new(i, tpl.root)))
                    }
                    v if *optional && v.is_empty() => Resolved::Empty,
                    v if v.is_text() => one(RN::Str(v)),
                    v => one(RN::Val(v)),
                }
            }
            Node::Elem(id) => {
                let er = ER::new(ctx.inst, *id);
                let e = self.elem(er);
                if self.left_out(ctx.inst, e) {
                    return Resolved::Empty;
                }
                let expansion = if self.rec.arrays {
                    self.expansion(ctx.inst, e)
                } else {
                    None
                };
                match expansion {
                    Some((sub, count)) => Resolved::Many {
                        er: ER { rep: 1, sub, ..er },
                        count,
                    },
                    None => one(RN::Elem(er)),
                }
            }
            Node::CharRef(c) => one(RN::Char(*c)),
            Node::Entity(name) => one(RN::Entity(name)),
            Node::Pi => one(RN::Pi),
        }
    }

    /// The array substitution that repeats `e` (MS-EVEN6 3.1.4.7.5): the first array of
    /// several items among its content, then its attributes. An element with more than one
    /// such use (the evtx crate then repeats it for each, crosswise) is not for this path.
    fn expansion(self, inst: u32, e: &Elem) -> Option<(u16, u32)> {
        let mut found: Option<(u16, u32)> = None;
        let nodes = e
            .children
            .iter()
            .chain(e.attrs.iter().flat_map(|a| a.value.iter()));
        for n in nodes {
            let Node::Sub { id, .. } = n else { continue };
            if let Some(Val::Array(items)) = self.val(inst, *id) {
                if found.is_some() {
                    self.bad.set(true);
                    return found;
                }
                found = Some((*id, items.count));
            }
        }
        found
    }

    fn nodes(self, ctx: ER, nodes: &'s [Node]) -> Nodes<'s, 'a> {
        Nodes {
            res: self,
            ctx,
            it: nodes.iter(),
            pending: Resolved::Empty,
        }
    }

    fn children(self, er: ER) -> Nodes<'s, 'a> {
        self.nodes(er, &self.elem(er).children)
    }

    /// The attributes that keep a value after substitution: (name, index).
    fn attrs(self, er: ER) -> impl Iterator<Item = (&'s str, usize)> + Clone + use<'s, 'a> {
        let e = self.elem(er);
        e.attrs
            .iter()
            .enumerate()
            .filter(move |(_, a)| self.nodes(er, &a.value).next().is_some())
            .map(|(i, a)| (a.name.as_str(), i))
    }

    fn attr_nodes(self, er: ER, i: usize) -> Nodes<'s, 'a> {
        self.nodes(er, &self.elem(er).attrs[i].value)
    }
}

/// The nodes of an element's content or of an attribute's value, after substitution.
#[derive(Clone)]
struct Nodes<'s, 'a> {
    res: Res<'s, 'a>,
    ctx: ER,
    it: std::slice::Iter<'s, Node>,
    /// The copies of a repeated element still to come.
    pending: Resolved<'s, 'a>,
}

impl<'s, 'a> Iterator for Nodes<'s, 'a> {
    type Item = RN<'s, 'a>;
    #[inline]
    fn next(&mut self) -> Option<RN<'s, 'a>> {
        if let Resolved::Many { .. } = self.pending
            && let Some(n) = self.pending.next()
        {
            return Some(n);
        }
        loop {
            let n = self.it.next()?;
            match self.res.resolve(self.ctx, n) {
                Resolved::Empty => continue,
                Resolved::One(x) => return Some(x),
                mut many => {
                    let first = many.next();
                    self.pending = many;
                    if first.is_some() {
                        return first;
                    }
                }
            }
        }
    }
}

struct R<'s, 'a> {
    res: Res<'s, 'a>,
    out: &'s mut String,
    depth: u32,
    /// Depth whose members are noted (the payload object's), if any.
    note_depth: Option<u32>,
    members: &'s mut Vec<Member>,
    /// Buffers for the element lists and name counts of the objects being written.
    kids: &'s mut Vec<Vec<ER>>,
    counts: &'s mut Vec<Vec<(u32, u32)>>,
}

impl<'s, 'a> R<'s, 'a> {
    fn elem(&self, er: ER) -> &'s Elem {
        self.res.elem(er)
    }

    fn left_out(&self, inst: u32, e: &Elem) -> bool {
        self.res.left_out(inst, e)
    }

    fn nodes(&self, ctx: ER, nodes: &'s [Node]) -> Nodes<'s, 'a> {
        self.res.nodes(ctx, nodes)
    }

    fn children(&self, er: ER) -> Nodes<'s, 'a> {
        self.res.children(er)
    }

    fn attrs(&self, er: ER) -> impl Iterator<Item = (&'s str, usize)> + Clone + use<'s, 'a> {
        self.res.attrs(er)
    }

    fn attr_nodes(&self, er: ER, i: usize) -> Nodes<'s, 'a> {
        self.res.attr_nodes(er, i)
    }

    fn check(&self) -> Result<(), Unsupported> {
        if self.out.len() > MAX_OUTPUT {
            return Err(Unsupported("record renders too large"));
        }
        Ok(())
    }

    // --- text ---

    /// The content of `nodes` as text (JSON-escaped when `json`).
    fn text(
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
    fn as_number(nodes: impl Iterator<Item = RN<'s, 'a>>, skip_elements: bool) -> Option<Val<'a>> {
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

    fn content_value(
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

    fn layout(&self, er: ER) -> (bool, bool) {
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

    fn attrs_have_text(&self, er: ER) -> bool {
        self.attrs(er)
            .any(|(_, i)| self.attr_nodes(er, i).any(|n| n.is_content()))
    }

    fn try_leaf(&mut self, er: ER, empty_as_string: bool) -> Result<bool, Unsupported> {
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

    fn data_value(&mut self, er: ER) -> Result<(), Unsupported> {
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

    fn value(&mut self, er: ER, container: bool) -> Result<(), Unsupported> {
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
    fn value_is_object(&self, er: ER) -> bool {
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

    fn attrs_object(&mut self, er: ER) -> Result<bool, Unsupported> {
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
    fn data_name(&self, er: ER) -> Option<Cow<'s, str>> {
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

    fn key(&mut self, name: &str, suffix: u32) -> usize {
        self.out.push('"');
        let start = self.out.len();
        self.out.push_str(name);
        if suffix > 0 {
            self.out.push('_');
            self.out.push_str(&suffix.to_string());
        }
        let end = self.out.len();
        self.out.push_str("\":");
        if self.note_depth == Some(self.depth) {
            self.members.push(Member {
                key: (start as u32, end as u32),
                val: (0, 0),
                kind: Kind::Other,
            });
        }
        self.out.len()
    }

    fn noted(&mut self, value_start: usize) {
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

    /// The payload object of a fast-path element (see [`Plan::fast_data`]); false (nothing
    /// written) when a value needs the general path.
    fn fast_body(&mut self, er: ER) -> Result<bool, Unsupported> {
        let rec = self.res.rec;
        let inst = &rec.insts[er.inst as usize];
        let Some(fields) = &inst.plan.fast_data[er.elem as usize] else {
            return Ok(false);
        };
        if rec.arrays || er.rep > 0 {
            return Ok(false);
        }
        let vals = &rec.vals[inst.vals.0 as usize..inst.vals.1 as usize];
        let (start, noted) = (self.out.len(), self.members.len());
        self.out.push('{');
        for (i, f) in fields.iter().enumerate() {
            if i > 0 {
                self.out.push(',');
            }
            let at = self.key(&f.key, 0);
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

    fn body(
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
        let mut data_names = self.counts.pop().unwrap_or_default();
        data_names.clear();
        let done = self.members_of(
            er,
            &kids,
            &mut names,
            &mut data_names,
            in_container,
            omit_attrs,
            has_text,
        );
        self.kids.push(kids);
        self.counts.push(names);
        self.counts.push(data_names);
        done?;
        self.out.push('}');
        self.depth -= 1;
        Ok(())
    }

    /// The members of `er`'s object (after its `{`): attributes, text, child elements.
    /// `names` and `data_names` count the names seen, as (index in `kids` of the first, count).
    #[allow(clippy::too_many_arguments)]
    fn members_of(
        &mut self,
        er: ER,
        kids: &[ER],
        names: &mut Vec<(u32, u32)>,
        data_names: &mut Vec<(u32, u32)>,
        in_container: bool,
        omit_attrs: bool,
        has_text: bool,
    ) -> Result<(), Unsupported> {
        let is_data = |r: &Self, c: ER| r.elem(c).name == "Data";
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
                        let found = data_names.iter_mut().find(|(first, _)| {
                            self.data_name(kids[*first as usize]).as_deref() == Some(&*dn)
                        });
                        match found {
                            Some(e) => {
                                e.1 += 1;
                                e.1 - 1
                            }
                            None => {
                                data_names.push(((i - 1) as u32, 1));
                                0
                            }
                        }
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
                    .find(|(first, _)| self.elem(kids[*first as usize]).name == name);
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

fn next_suffix_str<'s>(seen: &mut Vec<(&'s str, u32)>, name: &'s str) -> u32 {
    if let Some(e) = seen.iter_mut().find(|(n, _)| *n == name) {
        e.1 += 1;
        return e.1 - 1;
    }
    seen.push((name, 1));
    0
}

/// The payload's top-level fields, for the promoted columns.
struct Payload<'s> {
    data: &'s str,
    members: &'s [Member],
}

impl PayloadFields for Payload<'_> {
    fn field_text(&self, name: &str, out: &mut String) -> bool {
        let Some(m) = self
            .members
            .iter()
            .find(|m| self.data.get(m.key.0 as usize..m.key.1 as usize) == Some(name))
        else {
            return false;
        };
        let Some(v) = self.data.get(m.val.0 as usize..m.val.1 as usize) else {
            return false;
        };
        match m.kind {
            Kind::Str if v.len() >= 2 => {
                strings::unescape_json(&v[1..v.len() - 1], out);
                true
            }
            Kind::Num => {
                out.push_str(v);
                true
            }
            _ => false,
        }
    }
}

/// Render record `rec` (its first instance is the record's own) and hand the row to `push`.
pub fn render<T>(
    rec: &Record<'_>,
    scratch: &mut Scratch,
    record_id: u64,
    fallback_time: Option<i64>,
    push: impl FnOnce(&RecordView<'_>) -> T,
) -> Result<T, Unsupported> {
    let top = rec.insts.first().ok_or(Unsupported("no instance"))?;
    let plan = &top.plan;
    plan.event?;
    for inst in &rec.insts[1..] {
        inst.plan.generic()?;
    }
    let Scratch {
        data,
        sys,
        members,
        num,
        kids,
        counts,
    } = scratch;
    data.clear();
    sys.clear();
    members.clear();
    let bad = std::cell::Cell::new(false);
    let mut r = R {
        res: Res { rec, bad: &bad },
        out: data,
        depth: 0,
        note_depth: None,
        members,
        kids,
        counts,
    };
    let root = ER::new(0, plan.tpl.root);

    // System columns.
    let mut texts: [Option<(usize, usize)>; FIELDS] = [None; FIELDS];
    let mut nums: [Option<u64>; FIELDS] = [None; FIELDS];
    for (f, src) in plan.sources.iter().enumerate() {
        let Some(src) = src else { continue };
        let er = ER::new(0, src.elem);
        let e = r.elem(er);
        if r.left_out(0, e) {
            continue;
        }
        let start = sys.len();
        // One substitution, no arrays: the value itself.
        let nodes = match src.attr {
            Some(i) => e.attrs[i as usize].value.as_slice(),
            None => e.children.as_slice(),
        };
        if let ([Node::Sub { id, .. }], false) = (nodes, rec.arrays) {
            let v = rec.vals[..top.vals.1 as usize].get(usize::from(*id));
            match v {
                Some(v) if v.is_bare() => {
                    nums[f] = v.bare_number();
                    if FIELD_IS_TEXT[f] {
                        v.write(sys, false)?;
                        texts[f] = Some((start, sys.len()));
                    }
                    continue;
                }
                Some(Val::Hex32(x)) if !FIELD_IS_TEXT[f] => {
                    nums[f] = Some(u64::from(*x));
                    continue;
                }
                Some(Val::Hex64(x)) if !FIELD_IS_TEXT[f] => {
                    nums[f] = Some(*x);
                    continue;
                }
                Some(Val::Frag(_) | Val::Array(_)) => {}
                Some(v) if !v.is_empty() => {
                    v.write(sys, false)?;
                    texts[f] = Some((start, sys.len()));
                    nums[f] = crate::mapping::parse_number(&sys[start..]);
                    continue;
                }
                _ if src.attr.is_some() => continue,
                _ => {}
            }
        }
        let has = match src.attr {
            Some(i) => {
                let nodes = r.nodes(er, &e.attrs[i as usize].value);
                let has = nodes.clone().any(|n| n.is_content());
                if has {
                    R::text(sys, nodes, false, false)?;
                }
                has
            }
            None => {
                let nodes = r.children(er);
                let has = nodes.clone().any(|n| n.is_content());
                if has {
                    R::text(sys, nodes, false, false)?;
                    true
                } else {
                    // An element with attributes and no text reads as an empty text.
                    r.attrs_have_text(er)
                }
            }
        };
        if has {
            texts[f] = Some((start, sys.len()));
            nums[f] = crate::mapping::parse_number(&sys[start..]);
        }
    }
    // A system parent left out (its dependency is NullType) takes its children with it.
    let system_left_out = {
        let tpl = &plan.tpl;
        let ev = &tpl.elems[tpl.root as usize];
        ev.children.iter().any(|n| match n {
            Node::Elem(id) => {
                let e = &tpl.elems[*id as usize];
                e.name == "System" && r.left_out(0, e)
            }
            _ => false,
        })
    };
    if system_left_out {
        texts = [None; FIELDS];
        nums = [None; FIELDS];
    }

    // The payload: Event's children other than System.
    let mut names: Vec<(&str, u32)> = Vec::new();
    let mut others: Vec<(&str, u32, ER)> = Vec::new();
    for n in r.children(root) {
        let RN::Elem(c) = n else {
            if n.is_content() {
                return Err(Unsupported("Event has text"));
            }
            continue;
        };
        let name: &str = &r.elem(c).name;
        let suffix = next_suffix_str(&mut names, name);
        if name == "System" && suffix == 0 {
            continue;
        }
        others.push((name, suffix, c));
    }
    let mut fields = false;
    match others.as_slice() {
        [] => r.out.push_str("{}"),
        [("EventData", 0, c)] if r.value_is_object(*c) => {
            r.note_depth = Some(1);
            r.depth = 1;
            let fast = r.fast_body(*c)?;
            r.depth = 0;
            if !fast {
                let (text, _) = r.layout(*c);
                r.body(*c, true, true, text)?;
            }
            fields = true;
        }
        [("UserData", 0, c)] if r.value_is_object(*c) => {
            // UserData's one element, when it is an object, is the payload.
            let (text, _) = r.layout(*c);
            let kids: Vec<ER> = r
                .children(*c)
                .filter_map(|n| match n {
                    RN::Elem(e) => Some(e),
                    _ => None,
                })
                .collect();
            if kids.iter().any(|&k| r.elem(k).name == "Data") {
                // Data directly in UserData: a shape Windows does not write.
                return Err(Unsupported("Data element directly in UserData"));
            }
            let payload = match kids.as_slice() {
                [only] if !text && r.value_is_object(*only) => {
                    let name = &r.elem(*only).name;
                    Some((*only, name == "EventData" || name == "UserData"))
                }
                _ => None,
            };
            r.note_depth = Some(1);
            match payload {
                Some((only, container)) => {
                    let (text, _) = r.layout(only);
                    r.body(only, container, true, text)?;
                }
                None => r.body(*c, true, true, text)?,
            }
            fields = true;
        }
        _ => {
            r.out.push('{');
            for (i, (name, suffix, c)) in others.iter().enumerate() {
                if i > 0 {
                    r.out.push(',');
                }
                r.key(name, *suffix);
                r.value(*c, *name == "EventData" || *name == "UserData")?;
            }
            r.out.push('}');
        }
    }
    r.check()?;
    if bad.get() {
        return Err(Unsupported(
            "array substitution used more than once in an element",
        ));
    }
    let members: &[Member] = if fields { r.members } else { &[] };
    let data: &str = r.out;

    let text = |f: Field| texts[f as usize].map(|(s, e)| &sys[s..e]);
    let num_of = |f: Field| nums[f as usize];
    let time = text(Field::SystemTime)
        .and_then(crate::json::parse_system_time)
        .or(fallback_time);
    num.clear();
    let view = RecordView {
        record_id,
        time,
        event_id: num_of(Field::EventId),
        qualifiers: num_of(Field::Qualifiers),
        provider: text(Field::ProviderName),
        provider_guid: text(Field::ProviderGuid),
        channel: text(Field::Channel),
        computer: text(Field::Computer),
        level: num_of(Field::Level),
        opcode: num_of(Field::Opcode),
        version: num_of(Field::Version),
        task: num_of(Field::Task),
        keywords: num_of(Field::Keywords),
        process_id: num_of(Field::ProcessId),
        thread_id: num_of(Field::ThreadId),
        user_sid: text(Field::UserId),
        activity_id: text(Field::ActivityId),
        data,
        fields: &Payload { data, members },
    };
    Ok(push(&view))
}
