//! A template compiled into a column plan.
//!
//! [`Plan::compile`] checks a template once: which System element and attribute feeds which
//! System column, which `Data` names feed `data` keys (and so the promoted columns), and
//! whether the template's shape is one this path renders exactly as the evtx crate does. The
//! per-record executor is [`super::render`].

use std::collections::HashSet;
use std::sync::Arc;

use super::Unsupported;
use super::templates::{Elem, Node, Template};
use super::values::Val;

/// The System columns a plan knows where to find.
#[derive(Clone, Copy)]
pub(super) enum Field {
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
pub(super) const FIELDS: usize = 16;
/// The fields read as text (the others as numbers).
pub(super) const FIELD_IS_TEXT: [bool; FIELDS] = [
    true, true, false, false, false, false, false, false, false, true, true, false, false, true,
    true, true,
];

/// A System column's one substitution: its id, and the dependency of the element holding it
/// (a NullType value there leaves the element out).
#[derive(Clone, Copy, Debug)]
pub(super) struct Direct {
    pub(super) id: u16,
    pub(super) dependency: Option<u16>,
}

/// Where a System column's text comes from: an element's content, or one of its attributes.
#[derive(Clone, Copy, Debug)]
pub(super) struct Src {
    pub(super) elem: u32,
    pub(super) attr: Option<u32>,
}

/// A compiled template.
pub struct Plan {
    pub tpl: Arc<Template>,
    /// The template's [`Template::weight`] and the plan's own.
    pub weight: usize,
    /// Whether the tree can be rendered at all (names that need no escaping, no duplicate
    /// attribute names).
    generic: Result<(), Unsupported>,
    /// Whether it can be a record's top-level template (an `Event` with a `System`).
    pub(super) event: Result<(), Unsupported>,
    pub(super) sources: [Option<Src>; FIELDS],
    /// Per System column: the substitution that is alone in its element or attribute, with the
    /// element's dependency (found once here, not in the tree for every record).
    pub(super) direct: [Option<Direct>; FIELDS],
    /// Event's `System` element (with `event` Ok).
    pub(super) system: Option<u32>,
    /// Per element: its `Data` children have literal names, all different, so no name of
    /// them repeats (no `_N` suffixes, no runs to gather into arrays).
    pub(super) distinct_data: Vec<bool>,
    /// Per element: when all its children are `<Data Name="literal">%n</Data>` (names all
    /// different, no dependencies), their keys (escaped) and substitutions, for the payload's
    /// fast path (empty for a fragment's plan: read it with [`Plan::fast_data_of`]).
    pub(super) fast_data: Vec<Option<Vec<FastData>>>,
    /// Where the reader's filter finds the provider, channel and event id of a record of this
    /// template without rendering it; `None` when the template's shape needs the full path.
    pub(super) keys: Option<FilterKeys>,
    /// The plan of a fragment written as elements ([`Plan::fragment`]).
    fragment: bool,
}

/// Where a System field a filter reads comes from, in a template whose System part is plain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum KeySrc {
    /// The template has no such element or attribute.
    Absent,
    /// Literal text of the template.
    Literal(String),
    /// One substitution of the record's own instance, alone in the element or attribute.
    Sub(u16),
}

/// The sources of the fields [`crate::filter::RecordFilter`] decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct FilterKeys {
    pub(super) provider: KeySrc,
    pub(super) channel: KeySrc,
    pub(super) event_id: KeySrc,
    /// The substitutions whose NullType value would leave out Event, System or one of the
    /// fields' elements (MS-EVEN6 2.2.12): a record with such a value takes the full path.
    pub(super) dependencies: Vec<u16>,
}

/// The filter keys of a template whose System fields were found (`sources`): each field
/// absent, one literal text or one substitution, alone in its element or attribute.
fn filter_keys(tpl: &Template, sources: &[Option<Src>; FIELDS]) -> Option<FilterKeys> {
    let root = &tpl.elems[tpl.root as usize];
    let system = root.children.iter().find_map(|n| match n {
        Node::Elem(id) if tpl.elems[*id as usize].name.as_ref() == "System" => {
            Some(&tpl.elems[*id as usize])
        }
        _ => None,
    })?;
    let mut dependencies: Vec<u16> = [root.dependency, system.dependency]
        .into_iter()
        .flatten()
        .collect();
    let mut key = |f: Field| -> Option<KeySrc> {
        let Some(src) = sources[f as usize] else {
            return Some(KeySrc::Absent);
        };
        let e = tpl.elems.get(src.elem as usize)?;
        dependencies.extend(e.dependency);
        let nodes = match src.attr {
            Some(i) => &e.attrs.get(i as usize)?.value,
            None => &e.children,
        };
        match nodes.as_slice() {
            [Node::Text(s)] => Some(KeySrc::Literal(s.clone())),
            [Node::Sub { id, .. }] => Some(KeySrc::Sub(*id)),
            _ => None,
        }
    };
    let provider = key(Field::ProviderName)?;
    let channel = key(Field::Channel)?;
    let event_id = key(Field::EventId)?;
    dependencies.sort_unstable();
    dependencies.dedup();
    Some(FilterKeys {
        provider,
        channel,
        event_id,
        dependencies,
    })
}

/// One `<Data Name="literal">%n</Data>` of a fast payload.
pub(super) struct FastData {
    /// The member's start as written after another: `,"key":` (without the comma first).
    pub(super) member: String,
    pub(super) id: u16,
}

impl FastData {
    /// The key's length (in `member`, between `,"` and `":`).
    pub(super) fn key_len(&self) -> usize {
        self.member.len() - 4
    }
}

fn fast_data(tpl: &Template, e: &Elem) -> Option<Vec<FastData>> {
    let all_data = e.children.iter().all(|n| match n {
        Node::Elem(id) => tpl.elems[*id as usize].name.as_ref() == "Data",
        _ => false,
    });
    if !all_data || e.children.is_empty() || !distinct_data(tpl, e) {
        return None;
    }
    let mut out = Vec::with_capacity(e.children.len());
    for n in &e.children {
        let Node::Elem(id) = n else { return None };
        let c = &tpl.elems[*id as usize];
        if c.name.as_ref() != "Data" || c.dependency.is_some() {
            return None;
        }
        let key = literal_name(c)?;
        // Optional or not, an empty value is `""` in a Data element.
        let [Node::Sub { id, .. }] = c.children.as_slice() else {
            return None;
        };
        out.push(FastData {
            member: format!(",\"{key}\":"),
            id: *id,
        });
    }
    Some(out)
}

/// A `Data` element's literal, non-empty name that needs no escaping.
pub(super) fn literal_name(e: &Elem) -> Option<&str> {
    let a = e.attrs.iter().find(|a| a.name.as_ref() == "Name")?;
    match a.value.as_slice() {
        [Node::Text(s)] if !s.is_empty() && json_safe_name(s) => Some(s),
        _ => None,
    }
}

fn distinct_data(tpl: &Template, e: &Elem) -> bool {
    // A set: an element may have thousands of children.
    let mut seen: HashSet<&str> = HashSet::new();
    for n in &e.children {
        let Node::Elem(id) = n else {
            return false;
        };
        let c = &tpl.elems[*id as usize];
        if c.name.as_ref() != "Data" {
            continue;
        }
        match literal_name(c) {
            Some(name) if seen.insert(name) => {}
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
        let system = generic.and_then(|()| compile_event(&tpl, &mut sources));
        let event = system.map(|_| ());
        let system = system.ok();
        let mut direct = [None; FIELDS];
        for (d, src) in direct.iter_mut().zip(&sources) {
            let Some(src) = src else { continue };
            let e = &tpl.elems[src.elem as usize];
            let nodes = match src.attr {
                Some(i) => &e.attrs[i as usize].value,
                None => &e.children,
            };
            if let [Node::Sub { id, .. }] = nodes.as_slice() {
                *d = Some(Direct {
                    id: *id,
                    dependency: e.dependency,
                });
            }
        }
        let keys = event.ok().and_then(|()| filter_keys(&tpl, &sources));
        let distinct_data = tpl.elems.iter().map(|e| distinct_data(&tpl, e)).collect();
        let fast_data: Vec<_> = tpl.elems.iter().map(|e| fast_data(&tpl, e)).collect();
        let fast_weight = fast_data
            .iter()
            .flatten()
            .flatten()
            .map(|f: &FastData| std::mem::size_of::<FastData>() + f.member.len())
            .sum::<usize>();
        let weight = tpl.weight() + fast_weight + tpl.elems.len() * 32;
        Plan {
            tpl,
            weight,
            generic,
            event,
            sources,
            direct,
            system,
            distinct_data,
            fast_data,
            keys,
            fragment: false,
        }
    }

    /// The plan of a fragment written as elements (a BinXML value holding no template
    /// instance): rendered as a nested element only, never kept in a cache, and without
    /// substitutions, so with no System columns, filter keys, fast payload or weight to find.
    pub fn fragment(tpl: Arc<Template>) -> Plan {
        let mut plan = Plan {
            tpl,
            weight: 0,
            generic: Ok(()),
            event: Err(Unsupported("a fragment is not an event")),
            sources: [None; FIELDS],
            direct: [None; FIELDS],
            system: None,
            distinct_data: Vec::new(),
            fast_data: Vec::new(),
            keys: None,
            fragment: true,
        };
        plan.refit_fragment();
        plan
    }

    /// Whether this is a fragment's plan ([`Plan::fragment`]).
    pub(super) fn is_fragment(&self) -> bool {
        self.fragment
    }

    /// A fragment's plan made the plan of the tree now in it, its lists reused: what
    /// [`Plan::fragment`] finds of a tree.
    pub(super) fn refit_fragment(&mut self) {
        self.generic = check_generic(&self.tpl);
        let tpl = &self.tpl;
        self.distinct_data.clear();
        self.distinct_data
            .extend(tpl.elems.iter().map(|e| distinct_data(tpl, e)));
    }

    /// The fast payload of element `elem`, if it has one (see [`Plan::fast_data`]).
    pub(super) fn fast_data_of(&self, elem: u32) -> Option<&[FastData]> {
        self.fast_data.get(elem as usize)?.as_deref()
    }

    pub fn generic(&self) -> Result<(), Unsupported> {
        self.generic
    }
}

fn check_generic(tpl: &Template) -> Result<(), Unsupported> {
    let mut names: HashSet<&str> = HashSet::new();
    for e in &tpl.elems {
        if !json_safe_name(&e.name) {
            return Err(Unsupported("element name that needs escaping"));
        }
        for a in &e.attrs {
            if !json_safe_name(&a.name) {
                return Err(Unsupported("attribute name that needs escaping"));
            }
        }
        // A few attributes are compared pairwise (no set to fill for each element).
        let repeated = if e.attrs.len() <= 8 {
            e.attrs
                .iter()
                .enumerate()
                .any(|(i, a)| e.attrs[..i].iter().any(|b| b.name == a.name))
        } else {
            names.clear();
            !e.attrs.iter().all(|a| names.insert(&a.name))
        };
        if repeated {
            return Err(Unsupported("repeated attribute name"));
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

/// The System columns' sources of an `Event` template, and its `System` element.
fn compile_event(tpl: &Template, sources: &mut [Option<Src>; FIELDS]) -> Result<u32, Unsupported> {
    let root = &tpl.elems[tpl.root as usize];
    if root.name.as_ref() != "Event" {
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
        if tpl.elems[*id as usize].name.as_ref() == "System" {
            if system.is_some() {
                return Err(Unsupported("two System elements"));
            }
            system = Some(*id);
        }
    }
    let Some(system) = system else {
        return Err(Unsupported("no System element"));
    };
    let mut seen: HashSet<&str> = HashSet::new();
    for n in &tpl.elems[system as usize].children {
        let Node::Elem(id) = n else {
            return Err(Unsupported("System has content other than elements"));
        };
        let e = &tpl.elems[*id as usize];
        if !seen.insert(&e.name) {
            return Err(Unsupported("repeated System child"));
        }
        let attr = |name: &str| -> Option<Src> {
            e.attrs
                .iter()
                .position(|a| a.name.as_ref() == name)
                .map(|i| Src {
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
        match e.name.as_ref() {
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
    Ok(system)
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
