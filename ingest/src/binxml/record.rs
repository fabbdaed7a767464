//! One record through its plan: the System columns read from the values, the payload
//! element chosen as the `data` JSON reader expects (EventData as it is, UserData's one
//! element, or every child of Event but System), written by [`super::render`], and the row
//! handed to [`crate::convert::EventsBuilder::push_view`] as a [`RecordView`].

use super::Unsupported;
use super::plan::{FIELD_IS_TEXT, FIELDS, Field, Record};
use super::render::{Kind, Member, Names, R, Scratch, next_suffix_str};
use super::strings;
use super::substitution::{ER, RN, Res};
use super::values::{Val, filetime_micros};
use crate::convert::{PayloadFields, RecordView};
use crate::filter::RecordFilter;

/// The payload's top-level fields, for the promoted columns.
struct Payload<'s> {
    data: &'s str,
    members: &'s [Member],
    /// Where the search for the next field starts: after the last one found (the mapping
    /// names a record's fields mostly in the order the record holds them).
    next: std::cell::Cell<usize>,
}

impl PayloadFields for Payload<'_> {
    fn field_text(&self, name: &str, out: &mut String) -> bool {
        let n = self.members.len();
        let from = self.next.get().min(n);
        let (data, want) = (self.data.as_bytes(), name.as_bytes());
        // Lengths and first bytes first: most keys passed over differ in one or the other,
        // and are told apart without a call to compare them whole.
        let Some(i) = (from..n).chain(0..from).find(|&i| {
            let (start, end) = (
                self.members[i].key.0 as usize,
                self.members[i].key.1 as usize,
            );
            end.wrapping_sub(start) == want.len()
                && want.first().is_none_or(|b| data.get(start) == Some(b))
                && data.get(start..end) == Some(want)
        }) else {
            return false;
        };
        self.next.set(i + 1);
        let m = &self.members[i];
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

/// Render record `rec` (its first instance is the record's own) and hand the row to `push`;
/// `Ok(None)` when `filter` skips it (decided from the System part, before the payload).
pub fn render<T>(
    rec: &Record<'_>,
    scratch: &mut Scratch,
    record_id: u64,
    fallback_time: Option<i64>,
    filter: Option<&RecordFilter>,
    push: impl FnOnce(&RecordView<'_>) -> T,
) -> Result<Option<T>, Unsupported> {
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
        known,
    } = scratch;
    known.resize_with(FIELDS, Default::default);
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
    // TimeCreated read straight from its FILETIME, not written as text and parsed again.
    let mut time_direct: Option<i64> = None;
    let own = &rec.vals[..top.vals.1 as usize];
    for (f, src) in plan.sources.iter().enumerate() {
        let Some(src) = src else { continue };
        let start = sys.len();
        // One substitution, no arrays: the value itself.
        if let (Some(direct), false) = (plan.direct[f], rec.arrays) {
            let left_out = direct
                .dependency
                .is_some_and(|d| matches!(own.get(usize::from(d)), Some(Val::Null)));
            if left_out {
                continue;
            }
            let v = own.get(usize::from(direct.id));
            if let Some(Val::FileTime(ft)) = v
                && f == Field::SystemTime as usize
                && let Some(t) = filetime_micros(*ft)
            {
                time_direct = Some(t);
                continue;
            }
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
                Some(v @ (Val::Str(raw) | Val::Guid(raw) | Val::Sid(raw)))
                    if FIELD_IS_TEXT[f] && !raw.is_empty() =>
                {
                    let kind = match v {
                        Val::Str(_) => 0,
                        Val::Guid(_) => 1,
                        _ => 2,
                    };
                    let (seen_kind, seen, text) = &mut known[f];
                    if *seen_kind != kind || seen.as_slice() != *raw {
                        // Known again only once written whole.
                        seen.clear();
                        text.clear();
                        v.write(text, false)?;
                        seen.extend_from_slice(raw);
                        *seen_kind = kind;
                    }
                    sys.push_str(text);
                    texts[f] = Some((start, sys.len()));
                    continue;
                }
                Some(v) if !v.is_empty() => {
                    v.write(sys, false)?;
                    texts[f] = Some((start, sys.len()));
                    if !FIELD_IS_TEXT[f] {
                        nums[f] = crate::mapping::parse_number(&sys[start..]);
                    }
                    continue;
                }
                _ if src.attr.is_some() => continue,
                _ => {}
            }
        }
        let er = ER::new(0, src.elem);
        let e = r.elem(er);
        if r.left_out(0, e) {
            continue;
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
            if !FIELD_IS_TEXT[f] {
                nums[f] = crate::mapping::parse_number(&sys[start..]);
            }
        }
    }
    // A system parent left out (its dependency is NullType) takes its children with it.
    let system_left_out = plan
        .system
        .is_some_and(|id| r.left_out(0, &plan.tpl.elems[id as usize]));
    if system_left_out {
        texts = [None; FIELDS];
        nums = [None; FIELDS];
        time_direct = None;
    }
    if let Some(filter) = filter {
        let text = |f: Field| texts[f as usize].map(|(s, e)| &sys[s..e]);
        let keep = filter.keeps(
            text(Field::ProviderName),
            text(Field::Channel),
            nums[Field::EventId as usize],
        );
        if !keep {
            return Ok(None);
        }
    }

    // The payload: Event's children other than System.
    let mut names: Names<'_> = Names::new();
    let mut others: smallvec::SmallVec<[(&str, u32, ER); 4]> = smallvec::SmallVec::new();
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
        [("EventData", 0, c)] if r.is_fast(*c) || r.value_is_object(*c) => {
            debug_assert!(r.value_is_object(*c), "a fast payload is an object");
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
            if kids.iter().any(|&k| r.elem(k).name.as_ref() == "Data") {
                // Data directly in UserData: a shape Windows does not write.
                return Err(Unsupported("Data element directly in UserData"));
            }
            let payload = match kids.as_slice() {
                [only] if !text && r.value_is_object(*only) => {
                    let name: &str = &r.elem(*only).name;
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
    let time = time_direct
        .or_else(|| text(Field::SystemTime).and_then(crate::json::parse_system_time))
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
        fields: &Payload {
            data,
            members,
            next: std::cell::Cell::new(0),
        },
    };
    Ok(Some(push(&view)))
}
