//! The Arrow schemas of the two tables in a store: `events` (one row per event record) and `files`
//! (one row per ingested input file). Both are the contract between ingest, query and rules.

use std::sync::{Arc, LazyLock};

use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};

/// Version of the store layout and schemas. A store written by a newer version is refused.
/// 2: a segment may replace others (`files/seg-N.replaces`, written by compaction).
pub const STORE_FORMAT_VERSION: u32 = 2;

fn utc_micros() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn dict_utf8() -> DataType {
    DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8))
}

/// Columns of the `events` table, in order. The promoted columns (after `data`) are filled from
/// the mapping table in [`crate::mapping`].
pub mod col {
    pub const FILE_ID: &str = "file_id";
    pub const RECORD_ID: &str = "record_id";
    pub const TIME_CREATED: &str = "time_created";
    pub const EVENT_ID: &str = "event_id";
    pub const QUALIFIERS: &str = "qualifiers";
    pub const PROVIDER: &str = "provider";
    pub const PROVIDER_GUID: &str = "provider_guid";
    pub const CHANNEL: &str = "channel";
    pub const COMPUTER: &str = "computer";
    pub const LEVEL: &str = "level";
    pub const OPCODE: &str = "opcode";
    pub const VERSION: &str = "version";
    pub const TASK: &str = "task";
    pub const KEYWORDS: &str = "keywords";
    pub const PROCESS_ID: &str = "process_id";
    pub const THREAD_ID: &str = "thread_id";
    pub const USER_SID: &str = "user_sid";
    pub const ACTIVITY_ID: &str = "activity_id";
    pub const DATA: &str = "data";
}

static EVENTS: LazyLock<SchemaRef> = LazyLock::new(|| {
    let mut fields = vec![
        Field::new(col::FILE_ID, DataType::UInt32, false),
        Field::new(col::RECORD_ID, DataType::UInt64, false),
        Field::new(col::TIME_CREATED, utc_micros(), true),
        Field::new(col::EVENT_ID, DataType::UInt32, true),
        Field::new(col::QUALIFIERS, DataType::UInt16, true),
        Field::new(col::PROVIDER, dict_utf8(), true),
        Field::new(col::PROVIDER_GUID, dict_utf8(), true),
        Field::new(col::CHANNEL, dict_utf8(), true),
        Field::new(col::COMPUTER, dict_utf8(), true),
        Field::new(col::LEVEL, DataType::UInt8, true),
        Field::new(col::OPCODE, DataType::UInt8, true),
        Field::new(col::VERSION, DataType::UInt8, true),
        Field::new(col::TASK, DataType::UInt16, true),
        Field::new(col::KEYWORDS, DataType::UInt64, true),
        Field::new(col::PROCESS_ID, DataType::UInt32, true),
        Field::new(col::THREAD_ID, DataType::UInt32, true),
        Field::new(col::USER_SID, DataType::Utf8, true),
        Field::new(col::ACTIVITY_ID, DataType::Utf8, true),
        Field::new(col::DATA, DataType::Utf8, true),
    ];
    fields.extend(
        crate::mapping::Promoted::ALL
            .iter()
            .map(|p| Field::new(p.column(), p.data_type(), true)),
    );
    Arc::new(Schema::new(fields))
});

/// The schema of the `events` table.
pub fn events_schema() -> SchemaRef {
    EVENTS.clone()
}

/// Columns of the `files` table.
pub mod files_col {
    pub const FILE_ID: &str = "file_id";
    pub const PATH: &str = "path";
    pub const SIZE: &str = "size";
    pub const SHA256: &str = "sha256";
    pub const COMPUTERS: &str = "computers";
    pub const CHANNELS: &str = "channels";
    pub const FIRST_TIME: &str = "first_time";
    pub const LAST_TIME: &str = "last_time";
    pub const RECORDS: &str = "records";
    pub const FAILED_RECORDS: &str = "failed_records";
    pub const STATUS: &str = "status";
    pub const ERROR: &str = "error";
    pub const INGESTED_AT: &str = "ingested_at";
    pub const SEGMENT: &str = "segment";
}

static FILES: LazyLock<SchemaRef> = LazyLock::new(|| {
    use files_col::*;
    Arc::new(Schema::new(vec![
        Field::new(FILE_ID, DataType::UInt32, false),
        Field::new(PATH, DataType::Utf8, false),
        Field::new(SIZE, DataType::UInt64, false),
        Field::new(SHA256, DataType::Utf8, false),
        Field::new(COMPUTERS, DataType::Utf8, true),
        Field::new(CHANNELS, DataType::Utf8, true),
        Field::new(FIRST_TIME, utc_micros(), true),
        Field::new(LAST_TIME, utc_micros(), true),
        Field::new(RECORDS, DataType::UInt64, false),
        Field::new(FAILED_RECORDS, DataType::UInt64, false),
        Field::new(STATUS, DataType::Utf8, false),
        Field::new(ERROR, DataType::Utf8, true),
        Field::new(INGESTED_AT, utc_micros(), false),
        Field::new(SEGMENT, DataType::UInt32, false),
    ]))
});

/// The schema of the `files` table (the store's manifest).
pub fn files_schema() -> SchemaRef {
    FILES.clone()
}
