//! What an event looks like: its provider, channel, System constants and payload fields.
//!
//! A schema becomes one BinXML template per chunk (and per computer name, which Windows keeps
//! as literal text in the template, like the provider and channel).

use std::borrow::Cow;
use std::sync::Arc;

use super::value::{FileTime, Guid, Sid, Value, ValueType};
use crate::SamplesError;

/// Where the payload fields go.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Payload {
    /// `<EventData><Data Name="X">…</Data>…</EventData>`.
    EventData,
    /// `<UserData><{element} xmlns="{xmlns}"><X>…</X>…</{element}></UserData>`.
    UserData {
        /// The wrapper element's name (SMBServer uses `EventData`).
        element: Cow<'static, str>,
        /// The wrapper element's namespace.
        xmlns: Cow<'static, str>,
    },
}

/// One payload field: its name and the type of its substitution.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Field {
    /// The `Data/@Name` (EventData) or the element name (UserData).
    pub name: Cow<'static, str>,
    /// The value type; values of an event must have it (or be null).
    pub ty: ValueType,
}

/// The constant part of an event kind.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EventSchema {
    /// `System/Provider/@Name`.
    pub provider: Cow<'static, str>,
    /// `System/Provider/@Guid`, if the provider has one.
    pub provider_guid: Option<Guid>,
    /// `System/Provider/@EventSourceName` (classic providers such as Service Control Manager).
    pub event_source_name: Option<Cow<'static, str>>,
    /// `System/Channel`.
    pub channel: Cow<'static, str>,
    /// `System/EventID`.
    pub event_id: u16,
    /// `System/EventID/@Qualifiers`, for classic events.
    pub qualifiers: Option<u16>,
    /// `System/Version`.
    pub version: u8,
    /// `System/Level`.
    pub level: u8,
    /// `System/Task`.
    pub task: u16,
    /// `System/Opcode`.
    pub opcode: u8,
    /// `System/Keywords`.
    pub keywords: u64,
    /// The payload element shape.
    pub payload: Payload,
    /// The payload fields, in order.
    pub fields: Vec<Field>,
}

impl EventSchema {
    /// A 64-bit fingerprint of everything that shapes the template (FNV-1a; stable across runs).
    pub fn template_fingerprint(&self) -> u64 {
        let mut h = Fnv::new();
        h.str(&self.provider);
        h.str(
            &self
                .provider_guid
                .map(|g| g.to_string())
                .unwrap_or_default(),
        );
        h.str(self.event_source_name.as_deref().unwrap_or(""));
        h.str(&self.channel);
        match &self.payload {
            Payload::EventData => h.str("EventData"),
            Payload::UserData { element, xmlns } => {
                h.str("UserData");
                h.str(element);
                h.str(xmlns);
            }
        }
        for f in &self.fields {
            h.str(&f.name);
            h.bytes(&[f.ty.code()]);
        }
        h.finish()
    }

    /// The position of a field by name.
    pub fn field_index(&self, name: &str) -> Option<usize> {
        self.fields.iter().position(|f| f.name == name)
    }
}

/// A small FNV-1a hasher, used where a hash must not change between Rust versions.
pub(crate) struct Fnv(u64);

impl Fnv {
    pub(crate) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
        self.bytes(&[0xff]);
    }
    pub(crate) fn finish(&self) -> u64 {
        self.0
    }
}

/// One event to write. The writer assigns `EventRecordID`.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// The event's kind.
    pub schema: Arc<EventSchema>,
    /// `System/Computer`.
    pub computer: Arc<str>,
    /// `System/TimeCreated/@SystemTime`.
    pub time: FileTime,
    /// `System/Execution/@ProcessID`.
    pub process_id: u32,
    /// `System/Execution/@ThreadID`.
    pub thread_id: u32,
    /// `System/Correlation/@ActivityID`.
    pub activity_id: Option<Guid>,
    /// `System/Security/@UserID`.
    pub user_id: Option<Sid>,
    /// The payload values, one per schema field.
    pub values: Vec<Value>,
}

impl Event {
    /// Check that the values match the schema's fields in number and type.
    pub fn validate(&self) -> Result<(), SamplesError> {
        let problem = |problem: String| SamplesError::SchemaMismatch {
            event_id: self.schema.event_id,
            provider: self.schema.provider.to_string(),
            problem,
        };
        if self.values.len() != self.schema.fields.len() {
            return Err(problem(format!(
                "{} values for {} fields",
                self.values.len(),
                self.schema.fields.len()
            )));
        }
        for (f, v) in self.schema.fields.iter().zip(&self.values) {
            if let Some(t) = v.value_type()
                && t != f.ty
            {
                return Err(problem(format!(
                    "field {} is {:?}, value is {:?}",
                    f.name, f.ty, t
                )));
            }
        }
        Ok(())
    }

    /// The value of a payload field by name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.schema
            .field_index(name)
            .and_then(|i| self.values.get(i))
    }

    /// The string value of a payload field (`None` if absent or not a string).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        match self.get(name) {
            Some(Value::String(s)) => Some(s),
            _ => None,
        }
    }
}
