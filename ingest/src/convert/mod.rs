//! One record's rendered JSON → one row of the events schema. This is the only place that knows
//! the JSON shape; a faster record source (e.g. a direct BinXML walk) can replace the JSON
//! rendering by feeding [`EventsBuilder`] the same way.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{
    ArrayRef, StringBuilder, TimestampMicrosecondBuilder, UInt8Builder, UInt16Builder,
    UInt32Builder, UInt64Builder,
};
use arrow::record_batch::RecordBatch;
use serde_json::value::RawValue;

use crate::json::{Doc, EventJson, Fields, parse_system_time, scalar_text};
use crate::mapping::{self, Promoted, Transform};
use crate::schema::events_schema;

mod columns;
use columns::{DictColumn, PromotedBuilder, Value, append_text};

pub use crate::error::ConvertError;

/// One record as typed System values and its payload, for [`EventsBuilder::push_view`].
pub struct RecordView<'a> {
    pub record_id: u64,
    /// TimeCreated, or the record header's time when it has none (µs since the epoch).
    pub time: Option<i64>,
    pub event_id: Option<u64>,
    pub qualifiers: Option<u64>,
    pub provider: Option<&'a str>,
    pub provider_guid: Option<&'a str>,
    pub channel: Option<&'a str>,
    pub computer: Option<&'a str>,
    pub level: Option<u64>,
    pub opcode: Option<u64>,
    pub version: Option<u64>,
    pub task: Option<u64>,
    pub keywords: Option<u64>,
    pub process_id: Option<u64>,
    pub thread_id: Option<u64>,
    pub user_sid: Option<&'a str>,
    pub activity_id: Option<&'a str>,
    /// The `data` column: a JSON object.
    pub data: &'a str,
    /// The payload's fields by name, for the promoted columns.
    pub fields: &'a dyn PayloadFields,
}

/// The payload's top-level fields by name.
pub trait PayloadFields {
    /// Append the text of field `name` (a string unescaped, a number as written) to `out`;
    /// false when there is no such field or it is not a scalar.
    fn field_text(&self, name: &str, out: &mut String) -> bool;
}

type Promotions = Arc<Vec<(&'static str, Promoted, Transform)>>;
/// Mapping rows by provider name (None: no rows), for one event id.
type ProviderPromotions = Vec<(Box<str>, Option<Promotions>)>;

/// Builds `RecordBatch`es of the events schema, one record at a time.
pub struct EventsBuilder {
    file_id: UInt32Builder,
    record_id: UInt64Builder,
    time_created: TimestampMicrosecondBuilder,
    event_id: UInt32Builder,
    qualifiers: UInt16Builder,
    provider: DictColumn,
    provider_guid: DictColumn,
    channel: DictColumn,
    computer: DictColumn,
    level: UInt8Builder,
    opcode: UInt8Builder,
    version: UInt8Builder,
    task: UInt16Builder,
    keywords: UInt64Builder,
    process_id: UInt32Builder,
    thread_id: UInt32Builder,
    user_sid: StringBuilder,
    activity_id: StringBuilder,
    data: StringBuilder,
    promoted: Vec<PromotedBuilder>,
    /// Resolved mapping rows per (provider, event id).
    promotions: HashMap<(String, Option<u32>), Promotions>,
    /// Scratch: the promoted values of the current row, and their texts.
    row: Vec<Option<Value>>,
    row_text: String,
    /// Scratch: the rebuilt `data` JSON when the payload needs reshaping.
    data_buf: String,
    /// Resolved mapping rows for [`EventsBuilder::push_view`], by event id then provider.
    view_promotions: crate::FastMap<Option<u32>, ProviderPromotions>,
    len: usize,
}

impl EventsBuilder {
    pub fn with_capacity(cap: usize) -> Self {
        EventsBuilder {
            file_id: UInt32Builder::with_capacity(cap),
            record_id: UInt64Builder::with_capacity(cap),
            time_created: TimestampMicrosecondBuilder::with_capacity(cap).with_timezone("UTC"),
            event_id: UInt32Builder::with_capacity(cap),
            qualifiers: UInt16Builder::with_capacity(cap),
            provider: DictColumn::with_capacity(cap),
            provider_guid: DictColumn::with_capacity(cap),
            channel: DictColumn::with_capacity(cap),
            computer: DictColumn::with_capacity(cap),
            level: UInt8Builder::with_capacity(cap),
            opcode: UInt8Builder::with_capacity(cap),
            version: UInt8Builder::with_capacity(cap),
            task: UInt16Builder::with_capacity(cap),
            keywords: UInt64Builder::with_capacity(cap),
            process_id: UInt32Builder::with_capacity(cap),
            thread_id: UInt32Builder::with_capacity(cap),
            user_sid: StringBuilder::with_capacity(cap, cap * 16),
            activity_id: StringBuilder::with_capacity(cap, cap * 8),
            data: StringBuilder::with_capacity(cap, cap * 512),
            promoted: Promoted::ALL
                .iter()
                .map(|p| PromotedBuilder::new(*p, cap))
                .collect(),
            promotions: HashMap::new(),
            row: Promoted::ALL.iter().map(|_| None).collect(),
            row_text: String::new(),
            data_buf: String::new(),
            view_promotions: crate::FastMap::default(),
            len: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Append one record rendered by the evtx crate as compact JSON. `fallback_time` (the record
    /// header's timestamp, µs) is used when the record has no readable `TimeCreated`. Returns the
    /// row's event id and time. On error nothing is appended.
    pub fn push_json(
        &mut self,
        file_id: u32,
        record_id: u64,
        fallback_time: Option<i64>,
        json: &[u8],
    ) -> Result<(Option<u32>, Option<i64>), ConvertError> {
        let text = std::str::from_utf8(json).map_err(ConvertError::NotUtf8)?;
        let Doc(event) = serde_json::from_str::<Doc<'_>>(text)
            .map_err(|e| ConvertError::NotAnEvent(e.to_string()))?;
        Ok(self.push_event(file_id, record_id, fallback_time, &event))
    }

    /// Append one record given as typed System values and its `data` JSON (the path of our
    /// own BinXML decoder, [`crate::binxml`]). Returns the row's event id and time. The values
    /// are narrowed as [`EventsBuilder::push_json`] narrows the rendered ones.
    pub fn push_view(&mut self, file_id: u32, view: &RecordView<'_>) -> (Option<u32>, Option<i64>) {
        let event_id = view.event_id.and_then(|v| u32::try_from(v).ok());
        self.file_id.append_value(file_id);
        self.record_id.append_value(view.record_id);
        self.time_created.append_option(view.time);
        self.event_id.append_option(event_id);
        self.qualifiers
            .append_option(view.qualifiers.and_then(|q| u16::try_from(q).ok()));
        self.provider.append(view.provider);
        self.provider_guid.append(view.provider_guid);
        self.channel.append(view.channel);
        self.computer.append(view.computer);
        self.level
            .append_option(view.level.and_then(|v| u8::try_from(v).ok()));
        self.opcode
            .append_option(view.opcode.and_then(|v| u8::try_from(v).ok()));
        self.version
            .append_option(view.version.and_then(|v| u8::try_from(v).ok()));
        self.task
            .append_option(view.task.and_then(|v| u16::try_from(v).ok()));
        self.keywords.append_option(view.keywords);
        self.process_id
            .append_option(view.process_id.and_then(|v| u32::try_from(v).ok()));
        self.thread_id
            .append_option(view.thread_id.and_then(|v| u32::try_from(v).ok()));
        append_text(&mut self.user_sid, view.user_sid);
        append_text(&mut self.activity_id, view.activity_id);
        self.data.append_value(view.data);

        let promotions = match view.provider {
            Some(p) => self.view_promotions_for(p, event_id),
            None => None,
        };
        for slot in self.row.iter_mut() {
            *slot = None;
        }
        self.row_text.clear();
        if let Some(promotions) = promotions {
            let mut text = std::mem::take(&mut self.data_buf);
            for (field, column, transform) in promotions.iter() {
                text.clear();
                if view.fields.field_text(field, &mut text) {
                    apply(
                        &mut self.row,
                        &mut self.row_text,
                        *column,
                        *transform,
                        &text,
                    );
                }
            }
            self.data_buf = text;
        }
        for (builder, slot) in self.promoted.iter_mut().zip(self.row.iter()) {
            if let Some(v) = slot {
                builder.set(self.len, v, &self.row_text);
            }
        }
        self.len += 1;
        (event_id, view.time)
    }

    /// The mapping rows of (provider, event id), None when there are none; no allocation once
    /// the pair has been seen.
    fn view_promotions_for(&mut self, provider: &str, event_id: Option<u32>) -> Option<Promotions> {
        let seen = self.view_promotions.entry(event_id).or_default();
        if let Some((_, p)) = seen.iter().find(|(name, _)| &**name == provider) {
            return p.clone();
        }
        let p = mapping::promotions_for(provider, event_id);
        let p = (!p.is_empty()).then(|| Arc::new(p));
        seen.push((provider.into(), p.clone()));
        p
    }

    fn push_event(
        &mut self,
        file_id: u32,
        record_id: u64,
        fallback_time: Option<i64>,
        event: &EventJson<'_>,
    ) -> (Option<u32>, Option<i64>) {
        let s = &event.system;
        let provider_attrs = s.provider.as_ref().and_then(|p| p.attributes.as_ref());
        let provider = provider_attrs
            .and_then(|a| a.name.as_ref())
            .map(|t| t.0.as_ref());
        let event_id = s.event_id.value.and_then(|v| u32::try_from(v).ok());
        let time = s
            .time_created
            .as_ref()
            .and_then(|t| t.attributes.as_ref())
            .and_then(|a| a.system_time.as_ref())
            .and_then(|t| parse_system_time(&t.0))
            .or(fallback_time);

        self.file_id.append_value(file_id);
        self.record_id.append_value(record_id);
        self.time_created.append_option(time);
        self.event_id.append_option(event_id);
        self.qualifiers
            .append_option(s.event_id.qualifiers.and_then(|q| u16::try_from(q).ok()));
        self.provider.append(provider);
        self.provider_guid.append(
            provider_attrs
                .and_then(|a| a.guid.as_ref())
                .map(|t| t.0.as_ref()),
        );
        self.channel
            .append(s.channel.as_ref().map(|t| t.0.as_ref()));
        self.computer
            .append(s.computer.as_ref().map(|t| t.0.as_ref()));
        self.level
            .append_option(s.level.0.and_then(|v| u8::try_from(v).ok()));
        self.opcode
            .append_option(s.opcode.0.and_then(|v| u8::try_from(v).ok()));
        self.version
            .append_option(s.version.0.and_then(|v| u8::try_from(v).ok()));
        self.task
            .append_option(s.task.0.and_then(|v| u16::try_from(v).ok()));
        self.keywords.append_option(s.keywords.0);
        let exec = s.execution.as_ref().and_then(|e| e.attributes.as_ref());
        self.process_id.append_option(
            exec.and_then(|e| e.process_id.0)
                .and_then(|v| u32::try_from(v).ok()),
        );
        self.thread_id.append_option(
            exec.and_then(|e| e.thread_id.0)
                .and_then(|v| u32::try_from(v).ok()),
        );
        append_text(
            &mut self.user_sid,
            s.security
                .as_ref()
                .and_then(|x| x.attributes.as_ref())
                .and_then(|a| a.user_id.as_ref())
                .map(|t| t.0.as_ref()),
        );
        append_text(
            &mut self.activity_id,
            s.correlation
                .as_ref()
                .and_then(|x| x.attributes.as_ref())
                .and_then(|a| a.activity_id.as_ref())
                .map(|t| t.0.as_ref()),
        );

        let promotions = match provider {
            Some(p) => self.promotions_for(p, event_id),
            None => Arc::new(Vec::new()),
        };
        self.push_payload(&event.others, &promotions);
        self.len += 1;
        (event_id, time)
    }

    fn promotions_for(&mut self, provider: &str, event_id: Option<u32>) -> Promotions {
        if let Some(p) = self.promotions.get(&(provider.to_owned(), event_id)) {
            return p.clone();
        }
        let p = Arc::new(mapping::promotions_for(provider, event_id));
        self.promotions
            .insert((provider.to_owned(), event_id), p.clone());
        p
    }

    /// Write `data` and the promoted columns from the non-System children of `Event`.
    fn push_payload(
        &mut self,
        others: &[(Cow<'_, str>, &RawValue)],
        promotions: &[(&'static str, Promoted, Transform)],
    ) {
        // The payload object: EventData as it is, or UserData's single child element.
        let payload: Option<&RawValue> = match others {
            [] => None,
            [(k, v)] if k == "EventData" => Some(*v),
            [(k, v)] if k == "UserData" => user_data_child(v).or(Some(*v)),
            _ => None,
        };
        // Fast path: nothing to promote and nothing to reshape: the raw payload is `data`.
        if let Some(raw) = payload
            && promotions.is_empty()
            && raw.get().starts_with('{')
            && !raw.get().contains("\"#attributes\"")
        {
            self.data.append_value(raw.get());
            return;
        }
        let fields: Option<Fields<'_>> = payload
            .filter(|v| v.get().starts_with('{'))
            .and_then(|v| serde_json::from_str::<Fields<'_>>(v.get()).ok());

        // `data`: the payload object without XML namespace attributes; the raw text when it is
        // already that; everything but System when the event has another shape.
        match (&fields, payload) {
            (Some(f), Some(raw)) if !f.0.iter().any(|(k, _)| k == "#attributes") => {
                self.data.append_value(raw.get());
            }
            (Some(f), _) => {
                self.data_buf.clear();
                write_object(
                    &mut self.data_buf,
                    f.0.iter()
                        .filter(|(k, _)| k != "#attributes")
                        .map(|(k, v)| (k.as_ref(), *v)),
                );
                self.data.append_value(&self.data_buf);
            }
            (None, _) if others.is_empty() => self.data.append_value("{}"),
            (None, _) => {
                self.data_buf.clear();
                write_object(
                    &mut self.data_buf,
                    others.iter().map(|(k, v)| (k.as_ref(), *v)),
                );
                self.data.append_value(&self.data_buf);
            }
        }

        for slot in self.row.iter_mut() {
            *slot = None;
        }
        self.row_text.clear();
        if let Some(Fields(fields)) = &fields {
            for (field, column, transform) in promotions {
                let Some((_, raw)) = fields.iter().find(|(k, _)| k == field) else {
                    continue;
                };
                let Some(text) = scalar_text(raw) else {
                    continue;
                };
                apply(
                    &mut self.row,
                    &mut self.row_text,
                    *column,
                    *transform,
                    &text,
                );
            }
        }
        for (builder, slot) in self.promoted.iter_mut().zip(self.row.iter()) {
            if let Some(v) = slot {
                builder.set(self.len, v, &self.row_text);
            }
        }
    }

    /// Finish the rows appended so far into a batch; the builder is ready for more.
    pub fn finish(&mut self) -> Result<RecordBatch, arrow::error::ArrowError> {
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(self.file_id.finish()),
            Arc::new(self.record_id.finish()),
            Arc::new(self.time_created.finish()),
            Arc::new(self.event_id.finish()),
            Arc::new(self.qualifiers.finish()),
            self.provider.finish()?,
            self.provider_guid.finish()?,
            self.channel.finish()?,
            self.computer.finish()?,
            Arc::new(self.level.finish()),
            Arc::new(self.opcode.finish()),
            Arc::new(self.version.finish()),
            Arc::new(self.task.finish()),
            Arc::new(self.keywords.finish()),
            Arc::new(self.process_id.finish()),
            Arc::new(self.thread_id.finish()),
            Arc::new(self.user_sid.finish()),
            Arc::new(self.activity_id.finish()),
            Arc::new(self.data.finish()),
        ];
        let rows = self.len;
        columns.extend(self.promoted.iter_mut().map(|b| b.finish(rows)));
        self.len = 0;
        RecordBatch::try_new(events_schema(), columns)
    }
}

/// UserData holds one element (e.g. `EventData`, `EventXML`) whose children are the fields.
fn user_data_child(v: &RawValue) -> Option<&RawValue> {
    let Fields(children) = serde_json::from_str::<Fields<'_>>(v.get()).ok()?;
    let mut elements = children.iter().filter(|(k, _)| k != "#attributes");
    let (_, child) = elements.next()?;
    if elements.next().is_some() || !child.get().starts_with('{') {
        return None;
    }
    Some(*child)
}

fn write_object<'a>(out: &mut String, fields: impl Iterator<Item = (&'a str, &'a RawValue)>) {
    out.push('{');
    for (i, (k, v)) in fields.enumerate() {
        if i > 0 {
            out.push(',');
        }
        // Serializing a &str to JSON cannot fail.
        out.push_str(&serde_json::to_string(k).unwrap_or_else(|_| String::from("\"\"")));
        out.push(':');
        out.push_str(v.get());
    }
    out.push('}');
}

/// Put a promoted column's value of the row in `row`, its text (if any) at the end of `out`.
fn apply(
    row: &mut [Option<Value>],
    out: &mut String,
    column: Promoted,
    transform: Transform,
    text: &str,
) {
    /// The text `write` appends to `out` as the value of `column`; none when it writes none.
    fn put(
        row: &mut [Option<Value>],
        out: &mut String,
        column: Promoted,
        write: impl FnOnce(&mut String) -> bool,
    ) {
        let start = out.len();
        if write(out) {
            row[column.index()] = Some(Value::Text(start as u32, out.len() as u32));
        } else {
            out.truncate(start);
            row[column.index()] = None;
        }
    }
    match transform {
        Transform::Text => {
            let t = text.trim();
            if !t.is_empty() && t != "-" {
                put(row, out, column, |out| {
                    out.push_str(t);
                    true
                });
            }
        }
        Transform::HostName => put(row, out, column, |out| {
            mapping::normalize_host_into(text, out)
        }),
        Transform::Share => put(row, out, column, |out| {
            mapping::normalize_share_into(text, out)
        }),
        Transform::Ip => put(row, out, column, |out| {
            mapping::normalize_ip_into(text, out)
        }),
        Transform::Number => row[column.index()] = mapping::parse_number(text).map(Value::Num),
        Transform::SockAddr => {
            if let Some((ip, port)) = mapping::decode_sockaddr(text) {
                put(row, out, column, |out| {
                    use std::fmt::Write;
                    write!(out, "{ip}").is_ok()
                });
                if let Some(port_col) = mapping::port_column_for(column) {
                    row[port_col.index()] = Some(Value::Num(u64::from(port)));
                }
            }
        }
        Transform::NameOrIp => {
            // An address goes to the IP column as written here; a name to `column`.
            let start = out.len();
            if mapping::normalize_ip_into(text, out)
                && out[start..].parse::<std::net::IpAddr>().is_ok()
            {
                row[Promoted::ClientIp.index()] = Some(Value::Text(start as u32, out.len() as u32));
            } else {
                out.truncate(start);
                put(row, out, column, |out| {
                    mapping::normalize_host_into(text, out)
                });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{UInt16Type, UInt32Type};

    fn column<'a>(b: &'a RecordBatch, name: &str) -> &'a ArrayRef {
        b.column(b.schema().index_of(name).unwrap())
    }

    #[test]
    fn smbserver_userdata_is_flattened_and_promoted() {
        let j = r##"{"Event":{"System":{"Provider":{"#attributes":{"Name":"Microsoft-Windows-SMBServer","Guid":"{d48ce617-33a2-4bc3-a5c7-11aa4f29619e}"}},"EventID":551,"Channel":"Microsoft-Windows-SMBServer/Security","Computer":"FS1"},"UserData":{"EventData":{"#attributes":{"xmlns":"http://x"},"Status":"0xC000006D","ClientAddress":"02-00-F4-D5-0A-70-8C-8F","UserName":"guest","ClientName":"\\\\10.112.140.143"}}}}"##;
        let mut b = EventsBuilder::with_capacity(4);
        let (eid, _) = b.push_json(7, 42, Some(5), j.as_bytes()).unwrap();
        assert_eq!(eid, Some(551));
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 1);
        let data = column(&batch, "data")
            .as_string::<i32>()
            .value(0)
            .to_string();
        let v: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(v["ClientName"], "\\\\10.112.140.143");
        assert!(v.get("#attributes").is_none());
        assert_eq!(
            column(&batch, "client_ip").as_string::<i32>().value(0),
            "10.112.140.143"
        );
        assert_eq!(
            column(&batch, "client_port")
                .as_primitive::<UInt16Type>()
                .value(0),
            0xF4D5
        );
        assert_eq!(
            column(&batch, "client_name").as_string::<i32>().value(0),
            "10.112.140.143"
        );
        assert_eq!(
            column(&batch, "status")
                .as_primitive::<UInt32Type>()
                .value(0),
            0xC000_006D
        );
        assert_eq!(
            column(&batch, "user_name").as_string::<i32>().value(0),
            "guest"
        );
        // No TimeCreated: the fallback time is used.
        assert_eq!(
            column(&batch, "time_created")
                .as_primitive::<arrow::datatypes::TimestampMicrosecondType>()
                .value(0),
            5
        );
    }

    #[test]
    fn unmapped_events_keep_data_and_null_promotions() {
        let j = r##"{"Event":{"System":{"EventID":1},"EventData":{"Data":{"#text":["a","b"]}},"RenderingInfo":{"Message":"m"}}}"##;
        let mut b = EventsBuilder::with_capacity(1);
        b.push_json(1, 1, None, j.as_bytes()).unwrap();
        let batch = b.finish().unwrap();
        let data = column(&batch, "data").as_string::<i32>().value(0);
        assert!(
            data.contains("RenderingInfo") && data.contains("\"a\""),
            "{data}"
        );
        assert!(column(&batch, "user_name").is_null(0));
        assert!(column(&batch, "provider").is_null(0));
        assert!(b.push_json(1, 2, None, b"{not json").is_err());
        assert!(b.is_empty());
    }

    /// Rows in runs and out of them, with null names and promoted values in some rows only,
    /// over two batches of one builder: each row keeps its own names and values.
    #[test]
    fn names_and_promoted_values_stay_on_their_rows() {
        let row = |provider: Option<&str>, computer: &str, user: Option<&str>| {
            let provider = provider.map_or(String::new(), |p| {
                format!(r##""Provider":{{"#attributes":{{"Name":"{p}"}}}},"##)
            });
            let payload = user.map_or(r#""EventData":{"Other":"x"}"#.to_string(), |u| {
                format!(r#""EventData":{{"TargetUserName":"{u}","TargetDomainName":"D"}}"#)
            });
            format!(
                r#"{{"Event":{{"System":{{{provider}"EventID":4624,"Channel":"Security","Computer":"{computer}"}},{payload}}}}}"#
            )
        };
        let sec = Some("Microsoft-Windows-Security-Auditing");
        let rows = [
            (sec, "A", Some("alice")),
            (sec, "A", None),
            (None, "B", None),
            (sec, "B", Some("bob")),
            (Some("Other"), "A", Some("carol")),
            (sec, "A", None),
            (sec, "C", Some("dave")),
        ];
        let mut b = EventsBuilder::with_capacity(2);
        for batch_rows in [&rows[..], &rows[2..]] {
            for (i, (p, c, u)) in batch_rows.iter().enumerate() {
                b.push_json(1, i as u64, None, row(*p, c, *u).as_bytes())
                    .unwrap();
            }
            let batch = b.finish().unwrap();
            assert_eq!(batch.num_rows(), batch_rows.len());
            let text = |name: &str| {
                let c =
                    arrow::compute::cast(column(&batch, name), &arrow::datatypes::DataType::Utf8)
                        .unwrap();
                c.as_string::<i32>()
                    .iter()
                    .map(|v| v.map(str::to_string))
                    .collect::<Vec<_>>()
            };
            let (providers, computers, users) =
                (text("provider"), text("computer"), text("user_name"));
            for (i, (p, c, u)) in batch_rows.iter().enumerate() {
                assert_eq!(providers[i].as_deref(), *p, "row {i}");
                assert_eq!(computers[i].as_deref(), Some(*c), "row {i}");
                // Only the Security provider's 4624 promotes its user name.
                let want = if *p == sec { *u } else { None };
                assert_eq!(users[i].as_deref(), want, "row {i}");
            }
        }
    }
}
