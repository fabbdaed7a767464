//! Substitution: a template's nodes resolved against an instance's values, lazily, without
//! building a tree. Optional substitutions of empty values disappear; strings become text;
//! nested BinXML values become their instance's root element; an element whose dependency
//! value is NullType is left out (MS-EVEN6 2.2.12); an element holding an array of several
//! items is repeated, once per item (MS-EVEN6 3.1.4.7.5).

use super::plan::Record;
use super::templates::{Elem, Node, Template};
use super::values::{Items, Val};

/// An element of one of the record's instances; a copy of it when an array substitution
/// repeats it (`rep` > 0: the copy for item `rep - 1` of substitution `sub`, whose bytes start
/// at `at` in the array's: the copies are walked in order, so that finding an item does not
/// scan the items before it).
#[derive(Clone, Copy)]
pub(super) struct ER {
    pub(super) inst: u32,
    pub(super) elem: u32,
    pub(super) rep: u32,
    pub(super) sub: u16,
    pub(super) at: usize,
}

impl ER {
    pub(super) fn new(inst: u32, elem: u32) -> Self {
        ER {
            inst,
            elem,
            rep: 0,
            sub: 0,
            at: 0,
        }
    }
}

/// What one template node resolves to: nothing, one node, or the copies of an element.
#[derive(Clone, Copy)]
pub(super) enum Resolved<'s, 'a> {
    Empty,
    One(RN<'s, 'a>),
    Many {
        er: ER,
        count: u32,
        items: Items<'a>,
    },
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
            Resolved::Many { er, count, items } => {
                if er.rep > count {
                    return None;
                }
                // An item that cannot be read leaves the next copy without one (and the
                // record is then not for this path: see `resolve`).
                let at = items.item_at(er.at).map_or(usize::MAX, |(_, next)| next);
                *self = Resolved::Many {
                    er: ER {
                        rep: er.rep + 1,
                        at,
                        ..er
                    },
                    count,
                    items,
                };
                Some(RN::Elem(er))
            }
        }
    }
}

/// A node after substitution.
#[derive(Clone, Copy)]
pub(super) enum RN<'s, 'a> {
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
    pub(super) fn is_content(&self) -> bool {
        match self {
            RN::Text(s) => !s.is_empty(),
            RN::Str(v) | RN::Val(v) => !v.is_empty(),
            RN::Char(_) | RN::Entity(_) => true,
            RN::Elem(_) | RN::Pi => false,
        }
    }
    pub(super) fn is_text(&self) -> bool {
        matches!(self, RN::Text(_) | RN::Str(_))
    }
}

/// Substitution over a record's instances: how its template nodes resolve.
#[derive(Clone, Copy)]
pub(super) struct Res<'s, 'a> {
    pub(super) rec: &'s Record<'a>,
    /// Set when the record uses a substitution in a way this path does not render.
    pub(super) bad: &'s std::cell::Cell<bool>,
}

impl<'s, 'a> Res<'s, 'a> {
    pub(super) fn elem(self, er: ER) -> &'s Elem {
        let tpl: &'s Template = &self.rec.insts[er.inst as usize].plan.tpl;
        &tpl.elems[er.elem as usize]
    }

    pub(super) fn val(self, inst: u32, id: u16) -> Option<&'s Val<'a>> {
        let rec: &'s Record<'a> = self.rec;
        let (start, end) = rec.insts[inst as usize].vals;
        rec.vals[start as usize..end as usize].get(usize::from(id))
    }

    pub(super) fn left_out(self, inst: u32, e: &Elem) -> bool {
        e.dependency
            .and_then(|d| self.val(inst, d))
            .is_some_and(|v| matches!(v, Val::Null))
    }

    /// Resolve node `n` of element `ctx` (whose copy `ctx.rep` replaces `ctx.sub`).
    pub(super) fn resolve(self, ctx: ER, n: &'s Node) -> Resolved<'s, 'a> {
        let one = Resolved::One;
        match n {
            Node::Text(s) | Node::CData(s) => one(RN::Text(s)),
            Node::Sub { id, optional } => {
                let Some(&v) = self.val(ctx.inst, *id) else {
                    return Resolved::Empty;
                };
                let v = match v {
                    Val::Array(items) if ctx.rep > 0 && *id == ctx.sub => {
                        match items.item_at(ctx.at) {
                            // Empty strings leave the copy empty.
                            Some((v, _)) if v.is_text() && v.is_empty() => return Resolved::Empty,
                            Some((v, _)) => v,
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
                    Some((sub, items)) => Resolved::Many {
                        er: ER {
                            rep: 1,
                            sub,
                            at: 0,
                            ..er
                        },
                        count: items.count,
                        items,
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
    pub(super) fn expansion(self, inst: u32, e: &Elem) -> Option<(u16, Items<'a>)> {
        let mut found: Option<(u16, Items<'a>)> = None;
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
                found = Some((*id, *items));
            }
        }
        found
    }

    pub(super) fn nodes(self, ctx: ER, nodes: &'s [Node]) -> Nodes<'s, 'a> {
        Nodes {
            res: self,
            ctx,
            it: nodes.iter(),
            pending: Resolved::Empty,
        }
    }

    pub(super) fn children(self, er: ER) -> Nodes<'s, 'a> {
        self.nodes(er, &self.elem(er).children)
    }

    /// The attributes that keep a value after substitution: (name, index).
    pub(super) fn attrs(
        self,
        er: ER,
    ) -> impl Iterator<Item = (&'s str, usize)> + Clone + use<'s, 'a> {
        let e = self.elem(er);
        e.attrs
            .iter()
            .enumerate()
            .filter(move |(_, a)| self.nodes(er, &a.value).next().is_some())
            .map(|(i, a)| (a.name.as_ref(), i))
    }

    pub(super) fn attr_nodes(self, er: ER, i: usize) -> Nodes<'s, 'a> {
        self.nodes(er, &self.elem(er).attrs[i].value)
    }
}

/// The nodes of an element's content or of an attribute's value, after substitution.
#[derive(Clone)]
pub(super) struct Nodes<'s, 'a> {
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
