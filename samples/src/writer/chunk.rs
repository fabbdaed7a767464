//! One 64 KiB chunk being filled: its header, string and template tables, and records.

use std::collections::HashMap;
use std::sync::Arc;

use super::names::NameTable;
use super::schema::{Event, Fnv};
use super::template::{SYSTEM_SUBSTITUTIONS, sub, write_template_data};
use super::value::Value;
use crate::SamplesError;

/// The size of a chunk on disk.
pub const CHUNK_SIZE: usize = 0x10000;
/// The size of a chunk header, including the string and template tables.
pub const CHUNK_HEADER_SIZE: usize = 512;
const RECORD_MAGIC: [u8; 4] = [0x2a, 0x2a, 0x00, 0x00];

/// A template defined in this chunk.
#[derive(Debug)]
struct Defined {
    offset: u32,
    fingerprint: u64,
    computer: Arc<str>,
}

/// The outcome of trying to add a record.
pub(crate) enum Added {
    /// The record is in the chunk.
    Yes,
    /// The chunk is too full; nothing was changed.
    Full,
}

/// A chunk under construction. The buffer holds the whole chunk from offset 0.
#[derive(Debug)]
pub(crate) struct Chunk {
    buf: Vec<u8>,
    names: NameTable,
    template_buckets: [u32; 32],
    templates: HashMap<u64, Defined>,
    first_record_id: u64,
    last_record_id: u64,
    last_record_offset: u32,
    records: u32,
}

impl Chunk {
    pub(crate) fn new() -> Chunk {
        let mut buf = Vec::with_capacity(CHUNK_SIZE * 2);
        buf.resize(CHUNK_HEADER_SIZE, 0);
        Chunk {
            buf,
            names: NameTable::new(),
            template_buckets: [0; 32],
            templates: HashMap::new(),
            first_record_id: 0,
            last_record_id: 0,
            last_record_offset: 0,
            records: 0,
        }
    }

    /// Records in the chunk.
    pub(crate) fn records(&self) -> u32 {
        self.records
    }

    /// Empty the chunk for reuse, keeping its allocations.
    pub(crate) fn reset(&mut self) {
        self.buf.clear();
        self.buf.resize(CHUNK_HEADER_SIZE, 0);
        self.names.clear();
        self.template_buckets = [0; 32];
        self.templates.clear();
        self.first_record_id = 0;
        self.last_record_id = 0;
        self.last_record_offset = 0;
        self.records = 0;
    }

    /// Add `event` as record `record_id`. `Ok(Added::Full)` when it does not fit (the chunk is
    /// unchanged); an error when a value cannot be encoded (the chunk is unchanged too).
    pub(crate) fn add(&mut self, event: &Event, record_id: u64) -> Result<Added, SamplesError> {
        let start = self.buf.len();
        let saved_buckets = self.template_buckets;
        let result = self.encode(event, record_id);
        match result {
            Ok(new_template) if self.buf.len() <= CHUNK_SIZE => {
                self.names.commit();
                if let Some((key, defined)) = new_template {
                    self.templates.insert(key, defined);
                }
                if self.records == 0 {
                    self.first_record_id = record_id;
                }
                self.last_record_id = record_id;
                self.last_record_offset = start as u32;
                self.records += 1;
                Ok(Added::Yes)
            }
            other => {
                self.buf.truncate(start);
                self.names.rollback();
                self.template_buckets = saved_buckets;
                other.map(|_| Added::Full)
            }
        }
    }

    /// Encode the record at the end of the buffer; returns the template it defined, if any.
    fn encode(
        &mut self,
        event: &Event,
        record_id: u64,
    ) -> Result<Option<(u64, Defined)>, SamplesError> {
        event.validate()?;
        let schema = &*event.schema;
        let fingerprint = schema.template_fingerprint();
        let mut h = Fnv::new();
        h.bytes(&fingerprint.to_le_bytes());
        h.str(&event.computer);
        let key = h.finish();

        let start = self.buf.len();
        self.buf.extend_from_slice(&RECORD_MAGIC);
        self.buf.extend_from_slice(&[0; 4]);
        self.buf.extend_from_slice(&record_id.to_le_bytes());
        self.buf.extend_from_slice(&event.time.0.to_le_bytes());
        self.buf.extend_from_slice(&[0x0f, 1, 1, 0, 0x0c, 1]);

        let known = self
            .templates
            .get(&key)
            .filter(|d| d.fingerprint == fingerprint && *d.computer == *event.computer)
            .map(|d| d.offset);
        let guid = template_guid(key);
        let template_id = u32::from_le_bytes([guid[0], guid[1], guid[2], guid[3]]);
        self.buf.extend_from_slice(&template_id.to_le_bytes());
        let mut defined = None;
        match known {
            Some(offset) => self.buf.extend_from_slice(&offset.to_le_bytes()),
            None => {
                let offset = (self.buf.len() + 4) as u32;
                self.buf.extend_from_slice(&offset.to_le_bytes());
                let bucket = (template_id % 32) as usize;
                self.buf
                    .extend_from_slice(&self.template_buckets[bucket].to_le_bytes());
                self.template_buckets[bucket] = offset;
                self.buf.extend_from_slice(&guid);
                let size_pos = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                write_template_data(&mut self.buf, &mut self.names, schema, &event.computer);
                let size = (self.buf.len() - size_pos - 4) as u32;
                self.buf[size_pos..size_pos + 4].copy_from_slice(&size.to_le_bytes());
                defined = Some((
                    key,
                    Defined {
                        offset,
                        fingerprint,
                        computer: Arc::clone(&event.computer),
                    },
                ));
            }
        }

        let count = SYSTEM_SUBSTITUTIONS + event.values.len();
        self.buf.extend_from_slice(&(count as u32).to_le_bytes());
        let descriptors = self.buf.len();
        self.buf.resize(descriptors + 4 * count, 0);
        for i in 0..count {
            let (written, code) = if i < SYSTEM_SUBSTITUTIONS {
                let v = system_value(event, i as u16, record_id);
                (v.encode(&mut self.buf), v.type_code())
            } else {
                let v = &event.values[i - SYSTEM_SUBSTITUTIONS];
                (v.encode(&mut self.buf), v.type_code())
            };
            let size = u16::try_from(written).map_err(|_| SamplesError::ValueTooLarge {
                field: schema.fields[i - SYSTEM_SUBSTITUTIONS.min(i)]
                    .name
                    .to_string(),
                event_id: schema.event_id,
                size: written,
            })?;
            let d = descriptors + 4 * i;
            self.buf[d..d + 2].copy_from_slice(&size.to_le_bytes());
            self.buf[d + 2] = code;
        }

        // End of the record's BinXML stream.
        self.buf.push(0x00);
        let size = (self.buf.len() + 4 - start) as u32;
        self.buf.extend_from_slice(&size.to_le_bytes());
        self.buf[start + 4..start + 8].copy_from_slice(&size.to_le_bytes());
        if self.buf.len() - start > CHUNK_SIZE - CHUNK_HEADER_SIZE {
            return Err(SamplesError::RecordTooLarge {
                record_id,
                event_id: schema.event_id,
                provider: schema.provider.to_string(),
                size: self.buf.len() - start,
            });
        }
        Ok(defined)
    }

    /// Fill in the header (numbers, tables, CRC32s), zero the free space, and return the
    /// finished 64 KiB chunk.
    pub(crate) fn finish(&mut self) -> &[u8] {
        let free = self.buf.len() as u32;
        self.buf.resize(CHUNK_SIZE, 0);
        let h = &mut self.buf[..CHUNK_HEADER_SIZE];
        h[..8].copy_from_slice(b"ElfChnk\0");
        h[8..16].copy_from_slice(&self.first_record_id.to_le_bytes());
        h[16..24].copy_from_slice(&self.last_record_id.to_le_bytes());
        h[24..32].copy_from_slice(&self.first_record_id.to_le_bytes());
        h[32..40].copy_from_slice(&self.last_record_id.to_le_bytes());
        h[40..44].copy_from_slice(&128u32.to_le_bytes());
        h[44..48].copy_from_slice(&self.last_record_offset.to_le_bytes());
        h[48..52].copy_from_slice(&free.to_le_bytes());
        for (i, b) in self.names.buckets.iter().enumerate() {
            h[128 + 4 * i..132 + 4 * i].copy_from_slice(&b.to_le_bytes());
        }
        for (i, b) in self.template_buckets.iter().enumerate() {
            h[384 + 4 * i..388 + 4 * i].copy_from_slice(&b.to_le_bytes());
        }
        let events_crc = crc32fast::hash(&self.buf[CHUNK_HEADER_SIZE..free as usize]);
        self.buf[52..56].copy_from_slice(&events_crc.to_le_bytes());
        let mut hasher = crc32fast::Hasher::new();
        hasher.update(&self.buf[..120]);
        hasher.update(&self.buf[128..CHUNK_HEADER_SIZE]);
        let header_crc = hasher.finalize();
        self.buf[124..128].copy_from_slice(&header_crc.to_le_bytes());
        &self.buf
    }
}

/// A template GUID derived from the template key (stable across runs).
fn template_guid(key: u64) -> [u8; 16] {
    let mut h = Fnv::new();
    h.bytes(&key.to_le_bytes());
    let mut out = [0u8; 16];
    out[..8].copy_from_slice(&key.to_le_bytes());
    out[8..].copy_from_slice(&h.finish().to_le_bytes());
    out
}

/// The System substitution `index` of `event`.
fn system_value(event: &Event, index: u16, record_id: u64) -> Value {
    let s = &event.schema;
    match index {
        sub::LEVEL => Value::UInt8(s.level),
        sub::OPCODE => Value::UInt8(s.opcode),
        sub::TASK => Value::UInt16(s.task),
        sub::EVENT_ID => Value::UInt16(s.event_id),
        sub::QUALIFIERS => s.qualifiers.map_or(Value::Null, Value::UInt16),
        sub::KEYWORDS => Value::HexInt64(s.keywords),
        sub::TIME_CREATED => Value::FileTime(event.time),
        sub::ACTIVITY_ID => event.activity_id.map_or(Value::Null, Value::Guid),
        sub::PROCESS_ID => Value::UInt32(event.process_id),
        sub::THREAD_ID => Value::UInt32(event.thread_id),
        sub::RECORD_ID => Value::UInt64(record_id),
        sub::VERSION => Value::UInt8(s.version),
        sub::USER_ID => event.user_id.map_or(Value::Null, Value::Sid),
        _ => Value::Null,
    }
}
