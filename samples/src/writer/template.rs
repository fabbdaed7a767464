//! The BinXML template definition of an event schema: the `<Event>` element tree, with the
//! constant text (provider, channel, computer, field names) written in and the variable parts
//! as optional substitutions, the way Windows' event log service lays its templates out.

use super::names::NameTable;
use super::schema::{EventSchema, Payload};
use super::value::{ValueType, push_utf16};

/// Token bytes (MS-EVEN6 2.2.3.1).
mod tok {
    pub const EOF: u8 = 0x00;
    pub const OPEN_START: u8 = 0x01;
    pub const OPEN_START_ATTRS: u8 = 0x41;
    pub const CLOSE_START: u8 = 0x02;
    pub const CLOSE_EMPTY: u8 = 0x03;
    pub const END_ELEMENT: u8 = 0x04;
    pub const VALUE: u8 = 0x05;
    pub const ATTRIBUTE: u8 = 0x06;
    pub const ATTRIBUTE_MORE: u8 = 0x46;
    pub const OPTIONAL_SUBSTITUTION: u8 = 0x0e;
    pub const FRAGMENT_HEADER: u8 = 0x0f;
}

/// The number of System substitutions before the payload's (indices 0..14).
pub(crate) const SYSTEM_SUBSTITUTIONS: usize = 14;

/// System substitution indices, in Windows' order.
pub(crate) mod sub {
    pub const LEVEL: u16 = 0;
    pub const OPCODE: u16 = 1;
    pub const TASK: u16 = 2;
    pub const EVENT_ID: u16 = 3;
    pub const QUALIFIERS: u16 = 4;
    pub const KEYWORDS: u16 = 5;
    pub const TIME_CREATED: u16 = 6;
    pub const ACTIVITY_ID: u16 = 7;
    pub const PROCESS_ID: u16 = 8;
    pub const THREAD_ID: u16 = 9;
    pub const RECORD_ID: u16 = 10;
    pub const VERSION: u16 = 11;
    pub const USER_ID: u16 = 12;
    pub const RELATED_ACTIVITY_ID: u16 = 13;
}

const EVENT_XMLNS: &str = "http://schemas.microsoft.com/win/2004/08/events/event";

/// An element whose sizes are filled in when it is closed.
struct Open {
    size_pos: usize,
    attrs_pos: Option<usize>,
}

/// Writes template tokens at the end of a chunk buffer.
struct Encoder<'a> {
    buf: &'a mut Vec<u8>,
    names: &'a mut NameTable,
}

impl Encoder<'_> {
    fn open(&mut self, name: &str, has_attrs: bool) -> Open {
        self.buf.push(if has_attrs {
            tok::OPEN_START_ATTRS
        } else {
            tok::OPEN_START
        });
        self.buf.extend_from_slice(&0xffffu16.to_le_bytes());
        let size_pos = self.buf.len();
        self.buf.extend_from_slice(&[0; 4]);
        self.names.write_ref(self.buf, name);
        let attrs_pos = has_attrs.then(|| {
            let p = self.buf.len();
            self.buf.extend_from_slice(&[0; 4]);
            p
        });
        Open {
            size_pos,
            attrs_pos,
        }
    }

    fn attr(&mut self, name: &str, more: bool) {
        self.buf.push(if more {
            tok::ATTRIBUTE_MORE
        } else {
            tok::ATTRIBUTE
        });
        self.names.write_ref(self.buf, name);
    }

    fn text(&mut self, text: &str) {
        self.buf.push(tok::VALUE);
        self.buf.push(ValueType::String.code());
        // Template text is ours (names, channels, GUIDs): far below 65535 units.
        let units = text.encode_utf16().count().min(usize::from(u16::MAX)) as u16;
        self.buf.extend_from_slice(&units.to_le_bytes());
        push_utf16(self.buf, text);
    }

    fn subst(&mut self, index: u16, ty: ValueType) {
        self.buf.push(tok::OPTIONAL_SUBSTITUTION);
        self.buf.extend_from_slice(&index.to_le_bytes());
        self.buf.push(ty.code());
    }

    fn fill_attrs(&mut self, o: &Open) {
        if let Some(p) = o.attrs_pos {
            let size = (self.buf.len() - p - 4) as u32;
            self.buf[p..p + 4].copy_from_slice(&size.to_le_bytes());
        }
    }

    fn fill_size(&mut self, o: &Open) {
        let size = (self.buf.len() - o.size_pos - 4) as u32;
        self.buf[o.size_pos..o.size_pos + 4].copy_from_slice(&size.to_le_bytes());
    }

    fn close_start(&mut self, o: &Open) {
        self.fill_attrs(o);
        self.buf.push(tok::CLOSE_START);
    }

    fn close_empty(&mut self, o: Open) {
        self.fill_attrs(&o);
        self.buf.push(tok::CLOSE_EMPTY);
        self.fill_size(&o);
    }

    fn end(&mut self, o: Open) {
        self.buf.push(tok::END_ELEMENT);
        self.fill_size(&o);
    }

    /// `<name>%index</name>`.
    fn subst_element(&mut self, name: &str, index: u16, ty: ValueType) {
        let o = self.open(name, false);
        self.close_start(&o);
        self.subst(index, ty);
        self.end(o);
    }

    /// `<name>text</name>`.
    fn text_element(&mut self, name: &str, text: &str) {
        let o = self.open(name, false);
        self.close_start(&o);
        self.text(text);
        self.end(o);
    }
}

/// Append the template definition's data (fragment header, `<Event>` tree, end of stream) for
/// `schema` on `computer` to `buf`.
pub(crate) fn write_template_data(
    buf: &mut Vec<u8>,
    names: &mut NameTable,
    schema: &EventSchema,
    computer: &str,
) {
    let mut e = Encoder { buf, names };
    e.buf.extend_from_slice(&[tok::FRAGMENT_HEADER, 1, 1, 0]);
    let event = e.open("Event", true);
    e.attr("xmlns", false);
    e.text(EVENT_XMLNS);
    e.close_start(&event);

    let system = e.open("System", false);
    e.close_start(&system);

    let provider = e.open("Provider", true);
    e.attr(
        "Name",
        schema.provider_guid.is_some() || schema.event_source_name.is_some(),
    );
    e.text(&schema.provider);
    if let Some(guid) = schema.provider_guid {
        e.attr("Guid", schema.event_source_name.is_some());
        e.text(&guid.to_string());
    }
    if let Some(source) = &schema.event_source_name {
        e.attr("EventSourceName", false);
        e.text(source);
    }
    e.close_empty(provider);

    let event_id = e.open("EventID", true);
    e.attr("Qualifiers", false);
    e.subst(sub::QUALIFIERS, ValueType::UInt16);
    e.close_start(&event_id);
    e.subst(sub::EVENT_ID, ValueType::UInt16);
    e.end(event_id);

    e.subst_element("Version", sub::VERSION, ValueType::UInt8);
    e.subst_element("Level", sub::LEVEL, ValueType::UInt8);
    e.subst_element("Task", sub::TASK, ValueType::UInt16);
    e.subst_element("Opcode", sub::OPCODE, ValueType::UInt8);
    e.subst_element("Keywords", sub::KEYWORDS, ValueType::HexInt64);

    let time = e.open("TimeCreated", true);
    e.attr("SystemTime", false);
    e.subst(sub::TIME_CREATED, ValueType::FileTime);
    e.close_empty(time);

    e.subst_element("EventRecordID", sub::RECORD_ID, ValueType::UInt64);

    let correlation = e.open("Correlation", true);
    e.attr("ActivityID", true);
    e.subst(sub::ACTIVITY_ID, ValueType::Guid);
    e.attr("RelatedActivityID", false);
    e.subst(sub::RELATED_ACTIVITY_ID, ValueType::Guid);
    e.close_empty(correlation);

    let execution = e.open("Execution", true);
    e.attr("ProcessID", true);
    e.subst(sub::PROCESS_ID, ValueType::UInt32);
    e.attr("ThreadID", false);
    e.subst(sub::THREAD_ID, ValueType::UInt32);
    e.close_empty(execution);

    e.text_element("Channel", &schema.channel);
    e.text_element("Computer", computer);

    let security = e.open("Security", true);
    e.attr("UserID", false);
    e.subst(sub::USER_ID, ValueType::Sid);
    e.close_empty(security);

    e.end(system);

    let first = SYSTEM_SUBSTITUTIONS as u16;
    match &schema.payload {
        Payload::EventData => {
            let data = e.open("EventData", false);
            e.close_start(&data);
            for (i, f) in schema.fields.iter().enumerate() {
                let d = e.open("Data", true);
                e.attr("Name", false);
                e.text(&f.name);
                e.close_start(&d);
                e.subst(first + i as u16, f.ty);
                e.end(d);
            }
            e.end(data);
        }
        Payload::UserData { element, xmlns } => {
            let user = e.open("UserData", false);
            e.close_start(&user);
            let wrapper = e.open(element, true);
            e.attr("xmlns", false);
            e.text(xmlns);
            e.close_start(&wrapper);
            for (i, f) in schema.fields.iter().enumerate() {
                e.subst_element(&f.name, first + i as u16, f.ty);
            }
            e.end(wrapper);
            e.end(user);
        }
    }

    e.end(event);
    e.buf.push(tok::EOF);
}
