//! Stores in S3 or an S3-compatible object store: `s3://bucket/prefix`.
//!
//! The layout under the prefix is the local store's ([`crate::store`]): `evtxsql-store.json`,
//! `events/seg-N.parquet`, `files/seg-N.parquet` (the commit mark), `files/seg-N.replaces`,
//! and `writer.lock`. Readers ([`S3Store::listing`]) list `events/` and `files/` and see
//! exactly the committed segments, as local readers do.
//!
//! A writer ([`S3Writer`]) keeps the local writer: it takes the lock, removes the leftovers of
//! crashed writers, copies the committed manifest parts into a local staging store (so that
//! files already stored are skipped and new segment numbers follow the committed ones), and
//! writes segments there. Each committed segment is then uploaded in the local store's order:
//! events part first, then its `.replaces` list, then its manifest part, the commit mark, put
//! with a create-only condition (`If-None-Match: *`) so that no segment number is ever
//! committed twice.
//!
//! # The writer lock
//!
//! `writer.lock` is taken with a create-only put: of several writers exactly one creates it,
//! the others wait (polling it). It holds the writer's id, host, pid, times and its `ttl_secs`.
//! The holder rewrites it every `ttl/4` (a heartbeat: a put conditional on the ETag it last
//! wrote, `If-Match`), and once more before it uploads each segment, and deletes it at the end.
//! A waiter that sees the same ETag for `ttl` seconds on its own clock (no clock comparison
//! between machines) takes the lock over with a put conditional on that ETag: if the holder
//! beat in between, the put fails and the waiter waits on. A holder whose conditional put fails
//! has lost the lock and stops before committing anything more. So a crashed writer blocks the
//! store for `ttl` seconds (default 120, `EVTXSQL_S3_LOCK_TTL`), and its uncommitted parts are
//! removed by the next writer. Only a holder paused for longer than `ttl` between its last
//! beat and a commit could commit beside a new holder; the create-only commit mark still keeps
//! them from committing the same segment.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures::TryStreamExt;
use object_store::aws::{AmazonS3Builder, AmazonS3ConfigKey};
use object_store::path::Path as ObjectPath;
use object_store::{
    ClientConfigKey, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, RetryConfig,
    UpdateVersion, WriteMultipart,
};
use serde::{Deserialize, Serialize};

use crate::error::{IngestError, Result};
use crate::ingest::Progress;
use crate::store::{
    self, EVENTS_DIR, FILES_DIR, MARKER_FILE, REPLACES_SUFFIX, Store, TMP_DIR, WRITER_LOCK_FILE,
};

mod lock;
mod writer;

pub use writer::S3Writer;

/// The URL scheme of stores in S3.
pub const SCHEME: &str = "s3://";
/// Seconds without a heartbeat after which a writer lock is stale (see the module doc).
pub const DEFAULT_LOCK_TTL_SECS: u64 = 120;
/// The longest time to live a waiting writer honours (a lock saying more is taken as this).
const MAX_LOCK_TTL_SECS: u64 = 24 * 3600;
/// Environment variable that overrides [`DEFAULT_LOCK_TTL_SECS`].
pub const LOCK_TTL_ENV: &str = "EVTXSQL_S3_LOCK_TTL";
/// Parts up to this size are uploaded in one put; larger ones in parts.
const SINGLE_PUT_BYTES: u64 = 32 << 20;
/// How often a waiting writer looks at the lock.
const POLL: Duration = Duration::from_millis(400);

/// `s3://bucket/prefix`, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Location {
    bucket: String,
    /// Without leading or trailing `/`; may be empty (the bucket's root).
    prefix: String,
}

impl S3Location {
    /// `Some` for an `s3://` URL, `None` for a local path; an error for a malformed `s3://` URL
    /// or another URL scheme.
    pub fn parse(text: &str) -> Result<Option<S3Location>> {
        let bad = |message: String| IngestError::Remote {
            url: text.to_string(),
            message,
        };
        let Some(rest) = text.strip_prefix(SCHEME) else {
            if let Some((scheme, _)) = text.split_once("://")
                && !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
            {
                return Err(bad(format!(
                    "unsupported store URL scheme `{scheme}://`: a store is a directory or \
                     s3://bucket/prefix"
                )));
            }
            return Ok(None);
        };
        if rest.contains(['?', '#']) || rest.chars().any(char::is_control) {
            return Err(bad(
                "not a store URL: expected s3://bucket/prefix (no query, fragment or control \
                 characters)"
                    .into(),
            ));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let bucket_ok = (3..=63).contains(&bucket.len())
            && bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '.' || c == '-')
            && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
            && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !bucket_ok {
            return Err(bad(format!(
                "`{bucket}` is not a valid S3 bucket name (3 to 63 lower-case letters, digits, \
                 dots and hyphens): expected s3://bucket/prefix"
            )));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty()
            && prefix
                .split('/')
                .any(|p| p.is_empty() || p == "." || p == "..")
        {
            return Err(bad(format!(
                "the prefix `{prefix}` has an empty, `.` or `..` part: expected s3://bucket/prefix"
            )));
        }
        Ok(Some(S3Location {
            bucket: bucket.to_string(),
            prefix: prefix.to_string(),
        }))
    }

    /// [`S3Location::parse`] of a path argument (`None` for a path that is not UTF-8).
    pub fn of_path(path: &FsPath) -> Result<Option<S3Location>> {
        match path.to_str() {
            Some(text) => S3Location::parse(text),
            None => Ok(None),
        }
    }

    /// True when `path` names an S3 store (a well-formed one or not).
    pub fn is_url(path: &FsPath) -> bool {
        path.to_str().is_some_and(|t| t.contains("://"))
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://bucket/prefix`.
    pub fn url(&self) -> String {
        if self.prefix.is_empty() {
            format!("{SCHEME}{}", self.bucket)
        } else {
            format!("{SCHEME}{}/{}", self.bucket, self.prefix)
        }
    }

    /// `s3://bucket`, the object store a session registers for this store.
    pub fn bucket_url(&self) -> String {
        format!("{SCHEME}{}", self.bucket)
    }

    /// The object key of `rel` (`events/seg-000001.parquet`) under the prefix.
    fn key(&self, rel: &str) -> ObjectPath {
        if self.prefix.is_empty() {
            ObjectPath::from(rel)
        } else {
            ObjectPath::from(format!("{}/{rel}", self.prefix))
        }
    }

    /// `s3://bucket/prefix/rel`.
    pub fn object_url(&self, rel: &str) -> String {
        format!("{}/{rel}", self.url())
    }

    fn err(&self, message: impl Into<String>) -> IngestError {
        IngestError::Remote {
            url: self.url(),
            message: message.into(),
        }
    }

    /// An object store error, said in the user's terms (missing bucket, unreachable endpoint,
    /// refused credentials) where it is one of those.
    fn object_err(&self, doing: &str, e: &object_store::Error) -> IngestError {
        self.err(format!("{doing}: {}", explain(&self.bucket, e)))
    }
}

/// The text of an object store error and its causes, with the usual causes named first.
fn explain(bucket: &str, e: &object_store::Error) -> String {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let t = s.to_string();
        if !chain.contains(&t) {
            chain.push_str(": ");
            chain.push_str(&t);
        }
        source = s.source();
    }
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .unwrap_or_else(|_| "AWS S3".to_string());
    if chain.contains("URL scheme is not allowed") {
        format!("the endpoint {endpoint} is plain http: set AWS_ALLOW_HTTP=true to use it")
    } else if chain.contains("NoSuchBucket") {
        format!("the bucket `{bucket}` does not exist at {endpoint}")
    } else if chain.contains("InvalidAccessKeyId")
        || chain.contains("SignatureDoesNotMatch")
        || chain.contains("AccessDenied")
        || matches!(
            e,
            object_store::Error::PermissionDenied { .. }
                | object_store::Error::Unauthenticated { .. }
        )
    {
        format!(
            "access denied at {endpoint}: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
             ({chain})"
        )
    } else if chain.contains("error sending request")
        || chain.contains("Connection refused")
        || chain.contains("connect")
        || chain.contains("timed out")
        || chain.contains("dns error")
    {
        format!("cannot reach the S3 endpoint {endpoint} ({chain})")
    } else {
        chain
    }
}

/// A store in S3: the object store and where the store lies in it.
#[derive(Debug, Clone)]
pub struct S3Store {
    location: S3Location,
    store: Arc<dyn ObjectStore>,
}

/// The committed segments of an S3 store, from one listing of `events/` and `files/`.
#[derive(Debug, Clone, Default)]
pub struct Listing {
    /// Committed segments without those a committed segment replaced, ascending.
    pub segments: Vec<u32>,
    /// Every events part present (committed or not) and its size.
    pub events: BTreeMap<u32, u64>,
    /// Every manifest part present and its size.
    pub files: BTreeMap<u32, u64>,
    /// Every `.replaces` list present.
    pub replaces: Vec<u32>,
    /// Segments replaced by committed segments.
    pub replaced: Vec<u32>,
}

impl Listing {
    /// The committed segments that have an events part (a segment of failed files has none).
    pub fn event_segments(&self) -> Vec<u32> {
        self.segments
            .iter()
            .copied()
            .filter(|s| self.events.contains_key(s))
            .collect()
    }

    /// Bytes of the committed Parquet parts.
    pub fn size_bytes(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| {
                self.events.get(s).copied().unwrap_or(0) + self.files.get(s).copied().unwrap_or(0)
            })
            .sum()
    }
}

impl S3Store {
    /// The object store for `location`, configured from the standard AWS environment
    /// variables (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`,
    /// `AWS_REGION`/`AWS_DEFAULT_REGION`, `AWS_ENDPOINT_URL`, `AWS_ALLOW_HTTP`, ...). Does not
    /// contact it. Requests give up after a bounded time (5 s to connect, 3 retries within 30 s).
    pub fn connect(location: &S3Location) -> Result<S3Store> {
        let store =
            object_store_for_bucket(location.bucket()).map_err(|message| location.err(message))?;
        Ok(S3Store {
            location: location.clone(),
            store,
        })
    }

    /// Connect and check that a store is there (its marker, of a format this evtxsql reads).
    pub async fn open(location: &S3Location) -> Result<S3Store> {
        let s3 = S3Store::connect(location)?;
        match s3.marker().await? {
            Some(text) => store::check_marker(&text, &PathBuf::from(location.url()))?,
            None => {
                return Err(IngestError::NotAStore {
                    path: PathBuf::from(location.url()),
                    marker: MARKER_FILE,
                });
            }
        }
        Ok(s3)
    }

    pub fn location(&self) -> &S3Location {
        &self.location
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.store.clone()
    }

    /// `s3://bucket/prefix/<dir>/seg-N.parquet`.
    pub fn part_url(&self, dir: &str, segment: u32) -> String {
        self.location
            .object_url(&format!("{dir}/{}", store::segment_file_name(segment)))
    }

    async fn marker(&self) -> Result<Option<String>> {
        self.get_text(MARKER_FILE).await
    }

    /// The text of the object at `rel`, `None` when there is none.
    async fn get_text(&self, rel: &str) -> Result<Option<String>> {
        let key = self.location.key(rel);
        let doing = || format!("reading {}", self.location.object_url(rel));
        let got = match self.store.get(&key).await {
            Ok(g) => g,
            Err(object_store::Error::NotFound { source, .. })
                if !source.to_string().contains("NoSuchBucket") =>
            {
                return Ok(None);
            }
            Err(e) => return Err(self.location.object_err(&doing(), &e)),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| self.location.object_err(&doing(), &e))?;
        String::from_utf8(bytes.to_vec()).map(Some).map_err(|e| {
            self.location
                .err(format!("{}: not UTF-8 text: {e}", doing()))
        })
    }

    /// Names and sizes of the objects directly under `dir/`.
    async fn list_dir(&self, dir: &str) -> Result<Vec<(String, u64)>> {
        let key = self.location.key(dir);
        let metas: Vec<_> = self
            .store
            .list(Some(&key))
            .try_collect()
            .await
            .map_err(|e| {
                self.location
                    .object_err(&format!("listing {}/", self.location.object_url(dir)), &e)
            })?;
        Ok(metas
            .into_iter()
            .filter_map(|m| {
                let name = m.location.filename()?.to_string();
                Some((name, m.size))
            })
            .collect())
    }

    /// List `files/` and `events/` and read the `.replaces` lists of committed segments.
    ///
    /// `files/` is listed first: a writer uploads a segment's events part before its manifest
    /// part, so every committed segment seen in that listing has its events part in the later
    /// one (listings in S3 are strongly consistent), and a reader never takes a segment's
    /// manifest rows without its events.
    pub async fn listing(&self) -> Result<Listing> {
        let mut l = Listing::default();
        for (name, size) in self.list_dir(FILES_DIR).await? {
            if let Some(n) = store::segment_number(&name, ".parquet") {
                l.files.insert(n, size);
            } else if let Some(n) = store::segment_number(&name, REPLACES_SUFFIX) {
                l.replaces.push(n);
            }
        }
        for (name, size) in self.list_dir(EVENTS_DIR).await? {
            if let Some(n) = store::segment_number(&name, ".parquet") {
                l.events.insert(n, size);
            }
        }
        l.replaces.sort_unstable();
        for &seg in &l.replaces {
            if !l.files.contains_key(&seg) {
                continue;
            }
            let rel = format!("{FILES_DIR}/seg-{seg:06}{REPLACES_SUFFIX}");
            let text = self.get_text(&rel).await?.unwrap_or_default();
            l.replaced.extend(store::parse_replaces(
                &text,
                &PathBuf::from(self.location.object_url(&rel)),
            )?);
        }
        l.replaced.sort_unstable();
        l.replaced.dedup();
        l.segments = l
            .files
            .keys()
            .copied()
            .filter(|s| l.replaced.binary_search(s).is_err())
            .collect();
        Ok(l)
    }

    async fn delete(&self, rel: &str) -> Result<()> {
        match self.store.delete(&self.location.key(rel)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self
                .location
                .object_err(&format!("deleting {}", self.location.object_url(rel)), &e)),
        }
    }

    /// Upload the local file `from` to `rel`; `create_only`: fail if it exists (files that
    /// large are uploaded in parts, which overwrite).
    async fn upload(&self, from: &FsPath, rel: &str, create_only: bool) -> Result<()> {
        let key = self.location.key(rel);
        let doing = || format!("uploading {}", self.location.object_url(rel));
        let io = |e| IngestError::io(from, e);
        let size = std::fs::metadata(from).map_err(io)?.len();
        if size <= SINGLE_PUT_BYTES {
            let bytes = std::fs::read(from).map_err(io)?;
            let mode = if create_only {
                PutMode::Create
            } else {
                PutMode::Overwrite
            };
            return match self
                .store
                .put_opts(&key, PutPayload::from(bytes), PutOptions::from(mode))
                .await
            {
                Ok(_) => Ok(()),
                Err(object_store::Error::AlreadyExists { .. }) => Err(self.location.err(format!(
                    "{}: another writer already committed {rel} (the writer lock was lost); \
                     run the ingest again",
                    doing()
                ))),
                Err(e) => Err(self.location.object_err(&doing(), &e)),
            };
        }
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|e| self.location.object_err(&doing(), &e))?;
        let mut write = WriteMultipart::new(upload);
        let mut file = std::fs::File::open(from).map_err(io)?;
        let mut buf = vec![0u8; 8 << 20];
        loop {
            let n = file.read(&mut buf).map_err(io)?;
            if n == 0 {
                break;
            }
            write
                .wait_for_capacity(4)
                .await
                .map_err(|e| self.location.object_err(&doing(), &e))?;
            write.write(&buf[..n]);
        }
        write
            .finish()
            .await
            .map_err(|e| self.location.object_err(&doing(), &e))?;
        Ok(())
    }
}

/// An S3 object store for `bucket` from the AWS environment variables, with bounded waits.
/// The error says what is missing.
pub fn object_store_for_bucket(bucket: &str) -> std::result::Result<Arc<dyn ObjectStore>, String> {
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    let has_keys = set("AWS_ACCESS_KEY_ID");
    let other_source = set("AWS_WEB_IDENTITY_TOKEN_FILE")
        || set("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")
        || set("AWS_CONTAINER_CREDENTIALS_FULL_URI")
        || std::env::var("AWS_SKIP_SIGNATURE").is_ok_and(|v| v == "true" || v == "1");
    if !has_keys && !other_source {
        return Err(
            "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY \
                    (with AWS_REGION; for an S3-compatible server also AWS_ENDPOINT_URL, and \
                    AWS_ALLOW_HTTP=true for http://)"
                .into(),
        );
    }
    if has_keys && !set("AWS_SECRET_ACCESS_KEY") {
        return Err("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not".into());
    }
    let mut builder = AmazonS3Builder::from_env()
        .with_bucket_name(bucket)
        .with_retry(RetryConfig {
            max_retries: 3,
            retry_timeout: Duration::from_secs(30),
            ..RetryConfig::default()
        });
    if !set("AWS_CONNECT_TIMEOUT") {
        builder = builder.with_config(
            AmazonS3ConfigKey::Client(ClientConfigKey::ConnectTimeout),
            "5s",
        );
    }
    let store = builder
        .build()
        .map_err(|e| format!("cannot configure S3 access: {e}"))?;
    Ok(Arc::new(store))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let parse = |t: &str| S3Location::parse(t).expect("parses").expect("an s3 URL");
        let l = parse("s3://bucket/a/b/");
        assert_eq!(l.url(), "s3://bucket/a/b");
        assert_eq!(l.key("events/x").as_ref(), "a/b/events/x");
        assert_eq!(l.bucket_url(), "s3://bucket");
        let root = parse("s3://bucket");
        assert_eq!(root.key("files/x").as_ref(), "files/x");
        assert!(matches!(S3Location::parse("case42.store"), Ok(None)));
        assert!(matches!(S3Location::parse("/abs/dir"), Ok(None)));
        for bad in [
            "s3://",
            "s3://B/x",
            "s3://ab/x",
            "s3:///x",
            "s3://bucket/a//b",
            "s3://bucket/../x",
            "s3://bucket/x?y=1",
            "gs://bucket/x",
            "http://host/x",
        ] {
            let e = S3Location::parse(bad).expect_err(bad);
            assert!(e.to_string().starts_with(bad), "{bad}: {e}");
        }
    }
}
