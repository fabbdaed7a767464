//! The shape of one record as the `evtx` crate renders it to compact JSON, read with borrowed
//! serde types (no `serde_json::Value` per record). Every field is optional and accepts the odd
//! shapes damaged or ETW-converted logs produce: a missing element is a null, never an error.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::value::RawValue;

/// The `Event` element: `System` parsed, every other child kept raw in document order.
pub struct EventJson<'a> {
    pub system: System<'a>,
    pub others: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// Top level: `{"Event": {...}}`.
pub struct Doc<'a>(pub EventJson<'a>);

impl<'de: 'a, 'a> Deserialize<'de> for Doc<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Doc<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object with an Event member")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut event = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "Event" && event.is_none() {
                        event = Some(map.next_value::<EventJson<'a>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Doc(event.unwrap_or(EventJson {
                    system: System::default(),
                    others: Vec::new(),
                })))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for EventJson<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = EventJson<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an Event object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut system = None;
                let mut others = Vec::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "System" && system.is_none() {
                        system = Some(map.next_value::<Option<System<'a>>>()?.unwrap_or_default());
                    } else if key == "#attributes" {
                        map.next_value::<IgnoredAny>()?;
                    } else {
                        others.push((key, map.next_value::<&'a RawValue>()?));
                    }
                }
                Ok(EventJson {
                    system: system.unwrap_or_default(),
                    others,
                })
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// `System`: the typed header of every event.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct System<'a> {
    #[serde(rename = "Provider", borrow)]
    pub provider: Option<Attrs<ProviderAttrs<'a>>>,
    #[serde(rename = "EventID")]
    pub event_id: EventId,
    #[serde(rename = "Version")]
    pub version: Num,
    #[serde(rename = "Level")]
    pub level: Num,
    #[serde(rename = "Task")]
    pub task: Num,
    #[serde(rename = "Opcode")]
    pub opcode: Num,
    #[serde(rename = "Keywords")]
    pub keywords: Num,
    #[serde(rename = "TimeCreated", borrow)]
    pub time_created: Option<Attrs<TimeAttrs<'a>>>,
    #[serde(rename = "EventRecordID")]
    pub event_record_id: Num,
    #[serde(rename = "Correlation", borrow)]
    pub correlation: Option<Attrs<CorrelationAttrs<'a>>>,
    #[serde(rename = "Execution")]
    pub execution: Option<Attrs<ExecutionAttrs>>,
    #[serde(rename = "Channel", borrow)]
    pub channel: Option<Text<'a>>,
    #[serde(rename = "Computer", borrow)]
    pub computer: Option<Text<'a>>,
    #[serde(rename = "Security", borrow)]
    pub security: Option<Attrs<SecurityAttrs<'a>>>,
}

/// An element whose interesting part is its attributes.
#[derive(Default, Deserialize)]
#[serde(default)]
pub struct Attrs<T: Default> {
    #[serde(rename = "#attributes")]
    pub attributes: Option<T>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ProviderAttrs<'a> {
    #[serde(rename = "Name", borrow)]
    pub name: Option<Text<'a>>,
    #[serde(rename = "Guid", borrow)]
    pub guid: Option<Text<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct TimeAttrs<'a> {
    #[serde(rename = "SystemTime", borrow)]
    pub system_time: Option<Text<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct CorrelationAttrs<'a> {
    #[serde(rename = "ActivityID", borrow)]
    pub activity_id: Option<Text<'a>>,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct ExecutionAttrs {
    #[serde(rename = "ProcessID")]
    pub process_id: Num,
    #[serde(rename = "ThreadID")]
    pub thread_id: Num,
}

#[derive(Default, Deserialize)]
#[serde(default)]
pub struct SecurityAttrs<'a> {
    #[serde(rename = "UserID", borrow)]
    pub user_id: Option<Text<'a>>,
}

/// A text value; numbers and booleans are kept as their JSON text.
pub struct Text<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_string())))
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                // `{"#attributes": ..., "#text": "..."}`: the text content.
                let mut text = None;
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "#text" && text.is_none() {
                        text = map.next_value::<Option<Text<'a>>>()?;
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(text.unwrap_or(Text(Cow::Borrowed(""))))
            }
            fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<Self::Value, S::Error> {
                let first = seq.next_element::<Option<Text<'a>>>()?.flatten();
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(first.unwrap_or(Text(Cow::Borrowed(""))))
            }
        }
        d.deserialize_any(V(std::marker::PhantomData))
    }
}

/// A number as the evtx renderer writes it: a JSON number, a decimal or `0x` hex string, or an
/// element with `#text`. Anything else is None.
#[derive(Default, Clone, Copy)]
pub struct Num(pub Option<u64>);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let id = d.deserialize_any(NumVisitor)?;
        Ok(Num(id.value))
    }
}

/// `EventID`: a number, or `{"#attributes": {"Qualifiers": q}, "#text": id}`.
#[derive(Default, Clone, Copy)]
pub struct EventId {
    pub value: Option<u64>,
    pub qualifiers: Option<u64>,
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumVisitor)
    }
}

struct NumVisitor;

impl<'de> Visitor<'de> for NumVisitor {
    type Value = EventId;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number")
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<EventId, E> {
        Ok(EventId {
            value: Some(v),
            qualifiers: None,
        })
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<EventId, E> {
        Ok(EventId {
            value: u64::try_from(v).ok(),
            qualifiers: None,
        })
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<EventId, E> {
        Ok(EventId::default())
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<EventId, E> {
        Ok(EventId::default())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<EventId, E> {
        Ok(EventId {
            value: crate::mapping::parse_number(v),
            qualifiers: None,
        })
    }
    fn visit_unit<E: de::Error>(self) -> Result<EventId, E> {
        Ok(EventId::default())
    }
    fn visit_none<E: de::Error>(self) -> Result<EventId, E> {
        Ok(EventId::default())
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<EventId, D::Error> {
        d.deserialize_any(NumVisitor)
    }
    fn visit_seq<S: de::SeqAccess<'de>>(self, mut seq: S) -> Result<EventId, S::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(EventId::default())
    }
    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<EventId, M::Error> {
        let mut out = EventId::default();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            match key.as_ref() {
                "#text" => out.value = map.next_value::<EventId>()?.value,
                "#attributes" => {
                    let attrs: QualifierAttrs = map.next_value()?;
                    out.qualifiers = attrs.qualifiers.0;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(out)
    }
}

#[derive(Default, Deserialize)]
#[serde(default)]
struct QualifierAttrs {
    #[serde(rename = "Qualifiers")]
    qualifiers: Num,
}

/// The fields of a payload object, in document order, values raw.
pub struct Fields<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Fields<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Fields<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    out.push((key, map.next_value::<&'a RawValue>()?));
                }
                Ok(Fields(out))
            }
        }
        d.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The text of a raw JSON scalar: strings unescaped, numbers and booleans as written; null,
/// objects and arrays give None.
pub fn scalar_text(raw: &RawValue) -> Option<Cow<'_, str>> {
    let s = raw.get();
    match s.as_bytes().first()? {
        b'"' => serde_json::from_str::<Cow<'_, str>>(s).ok(),
        b'n' | b'{' | b'[' => None,
        _ => Some(Cow::Borrowed(s)),
    }
}

/// Parse `2024-11-14T16:15:55.6879013Z` (and without fraction) to microseconds since the epoch.
pub fn parse_system_time(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || (b[10] != b'T' && b[10] != b' ') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let mut v = 0i64;
        for &c in b.get(r)? {
            if !c.is_ascii_digit() {
                return None;
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (h, mi, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || sec > 60 {
        return None;
    }
    let mut micros = 0i64;
    let mut i = 19;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let mut digits = 0;
        while let Some(c) = b.get(i).filter(|c| c.is_ascii_digit()) {
            if digits < 6 {
                micros = micros * 10 + i64::from(c - b'0');
                digits += 1;
            }
            i += 1;
        }
        for _ in digits..6 {
            micros *= 10;
        }
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (mo + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(((days * 86_400 + h * 3600 + mi * 60 + sec) * 1_000_000) + micros)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn system_time() {
        assert_eq!(parse_system_time("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_system_time("2024-11-14T16:15:55.6879013Z"),
            Some(1_731_600_955_687_901)
        );
        assert_eq!(
            parse_system_time("2000-02-29T00:00:01.5Z"),
            Some(951_782_401_500_000)
        );
        assert_eq!(parse_system_time("garbage"), None);
        assert_eq!(parse_system_time("2024-13-14T16:15:55Z"), None);
    }

    #[test]
    fn record_shapes() {
        let j = r##"{"Event":{"#attributes":{"xmlns":"x"},"System":{"Provider":{"#attributes":{"Name":"P","Guid":"{G}"}},"EventID":{"#attributes":{"Qualifiers":16384},"#text":7036},"Version":0,"Level":4,"Task":0,"Opcode":0,"Keywords":"0x8080000000000000","TimeCreated":{"#attributes":{"SystemTime":"2016-07-08T18:12:51.681640Z"}},"EventRecordID":1,"Correlation":null,"Execution":{"#attributes":{"ProcessID":460,"ThreadID":1848}},"Channel":"System","Computer":"WIN-\"X\"","Security":null},"EventData":{"param1":"a","param2":3}}}"##;
        let Doc(ev) = serde_json::from_str(j).unwrap();
        let s = &ev.system;
        assert_eq!(s.event_id.value, Some(7036));
        assert_eq!(s.event_id.qualifiers, Some(16384));
        assert_eq!(s.keywords.0, Some(0x8080_0000_0000_0000));
        assert_eq!(s.computer.as_ref().unwrap().0, "WIN-\"X\"");
        assert_eq!(
            s.execution
                .as_ref()
                .unwrap()
                .attributes
                .as_ref()
                .unwrap()
                .process_id
                .0,
            Some(460)
        );
        assert!(s.security.is_none());
        assert_eq!(ev.others.len(), 1);
        assert_eq!(ev.others[0].0, "EventData");
        let Fields(f) = serde_json::from_str(ev.others[0].1.get()).unwrap();
        assert_eq!(scalar_text(f[0].1).unwrap(), "a");
        assert_eq!(scalar_text(f[1].1).unwrap(), "3");
        // No System at all, odd values: no error.
        let Doc(ev) = serde_json::from_str(r##"{"Event":{"EventData":null}}"##).unwrap();
        assert!(ev.system.event_id.value.is_none());
        let Doc(ev) =
            serde_json::from_str(r##"{"Event":{"System":{"EventID":"x","Level":[1]}}}"##).unwrap();
        assert!(ev.system.event_id.value.is_none());
    }
}
