//! The writer lock of an S3 store (see the parent module's doc): its body, taking it, and
//! its heartbeat.

use super::*;

/// What `writer.lock` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct LockBody {
    /// Unique per writer process and run.
    pub(super) writer: String,
    pub(super) host: String,
    pub(super) pid: u32,
    pub(super) acquired_unix: u64,
    pub(super) heartbeat_unix: u64,
    pub(super) ttl_secs: u64,
}

impl LockBody {
    pub(super) fn new(ttl: Duration) -> LockBody {
        let host = std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .or_else(|| std::env::var("COMPUTERNAME").ok())
            .unwrap_or_else(|| "unknown-host".into());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        LockBody {
            writer: format!("{host}:{}:{}", std::process::id(), now.as_nanos()),
            host,
            pid: std::process::id(),
            acquired_unix: now.as_secs(),
            heartbeat_unix: now.as_secs(),
            ttl_secs: ttl.as_secs().max(1),
        }
    }

    pub(super) fn payload(&self) -> PutPayload {
        PutPayload::from(serde_json::to_vec_pretty(self).unwrap_or_default())
    }

    pub(super) fn describe(&self) -> String {
        format!(
            "writer pid {} on {} (since unix time {}, last heartbeat {})",
            self.pid, self.host, self.acquired_unix, self.heartbeat_unix
        )
    }
}

/// The lock as its holder knows it.
#[derive(Debug)]
pub(super) struct Held {
    pub(super) body: LockBody,
    /// ETag of the holder's last write of the lock.
    pub(super) etag: String,
    /// Why the lock is no longer this writer's, once it is not.
    pub(super) lost: Option<String>,
}

pub(super) fn lock_ttl() -> Duration {
    let secs = std::env::var(LOCK_TTL_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|s| *s > 0)
        .unwrap_or(DEFAULT_LOCK_TTL_SECS)
        .min(MAX_LOCK_TTL_SECS);
    Duration::from_secs(secs)
}

/// Take the lock: create it, or wait until it is deleted or stale (see the module doc).
pub(super) async fn acquire(s3: &S3Store, ttl: Duration, progress: &dyn Progress) -> Result<Held> {
    let key = s3.location.key(WRITER_LOCK_FILE);
    let lock_url = s3.location.object_url(WRITER_LOCK_FILE);
    let body = LockBody::new(ttl);
    // The lock as last seen: its ETag, since when (this machine's clock), its holder's TTL.
    let mut seen: Option<(String, Instant, Duration)> = None;
    let mut told = false;
    loop {
        let created = s3
            .store
            .put_opts(&key, body.payload(), PutOptions::from(PutMode::Create))
            .await;
        match created {
            Ok(r) => return held(s3, body, r.e_tag),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(e) => return Err(s3.location.object_err("taking the writer lock", &e)),
        }
        let got = match s3.store.get(&key).await {
            Ok(g) => g,
            // Released meanwhile: try again at once.
            Err(object_store::Error::NotFound { .. }) => continue,
            Err(e) => return Err(s3.location.object_err("reading the writer lock", &e)),
        };
        let etag = got.meta.e_tag.clone().unwrap_or_default();
        let bytes = got
            .bytes()
            .await
            .map_err(|e| s3.location.object_err("reading the writer lock", &e))?;
        let holder: Option<LockBody> = serde_json::from_slice(&bytes).ok();
        // The holder's own time to live (it beats at a quarter of it), within sane bounds.
        let holder_ttl = holder.as_ref().map_or(ttl, |h| {
            Duration::from_secs(h.ttl_secs.clamp(1, MAX_LOCK_TTL_SECS))
        });
        let who = holder
            .as_ref()
            .map_or_else(|| "an unknown writer".to_string(), LockBody::describe);
        if !told {
            progress.warn(&format!(
                "{lock_url} is held by {who}: waiting for it (a lock without heartbeat for {}s \
                 is taken over)",
                holder_ttl.as_secs()
            ));
            told = true;
        }
        match &seen {
            Some((tag, since, _)) if *tag == etag => {
                if since.elapsed() >= holder_ttl && !etag.is_empty() {
                    let version = UpdateVersion {
                        e_tag: Some(etag.clone()),
                        version: None,
                    };
                    match s3
                        .store
                        .put_opts(
                            &key,
                            body.payload(),
                            PutOptions::from(PutMode::Update(version)),
                        )
                        .await
                    {
                        Ok(r) => {
                            progress.warn(&format!(
                                "took over {lock_url} from {who}: no heartbeat for {}s (that \
                                 writer crashed or hung; its uncommitted parts are removed)",
                                holder_ttl.as_secs()
                            ));
                            return held(s3, body, r.e_tag);
                        }
                        Err(object_store::Error::Precondition { .. }) => {
                            seen = None;
                        }
                        Err(e) => {
                            return Err(s3
                                .location
                                .object_err("taking over the stale writer lock", &e));
                        }
                    }
                }
            }
            _ => seen = Some((etag, Instant::now(), holder_ttl)),
        }
        tokio::time::sleep(POLL).await;
    }
}

pub(super) fn held(s3: &S3Store, body: LockBody, etag: Option<String>) -> Result<Held> {
    let etag = etag.filter(|e| !e.is_empty()).ok_or_else(|| {
        s3.location.err(
            "the S3 server returned no ETag for the writer lock; evtxsql needs conditional \
             writes (If-Match, If-None-Match) to share a store between writers",
        )
    })?;
    Ok(Held {
        body,
        etag,
        lost: None,
    })
}

/// Rewrite the lock if it is still this writer's (put conditional on the last ETag). A failed
/// condition marks it lost; other failures leave it as it was (the next beat tries again).
pub(super) async fn beat(s3: &S3Store, held: &mut Held) {
    if held.lost.is_some() {
        return;
    }
    held.body.heartbeat_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let version = UpdateVersion {
        e_tag: Some(held.etag.clone()),
        version: None,
    };
    let key = s3.location.key(WRITER_LOCK_FILE);
    match s3
        .store
        .put_opts(
            &key,
            held.body.payload(),
            PutOptions::from(PutMode::Update(version)),
        )
        .await
    {
        Ok(r) => match r.e_tag {
            Some(tag) if !tag.is_empty() => held.etag = tag,
            _ => held.lost = Some("the S3 server returned no ETag for the lock".into()),
        },
        Err(object_store::Error::Precondition { .. }) => {
            held.lost = Some(
                "another writer took it over (no heartbeat reached the store within the lock's \
                 time to live)"
                    .into(),
            );
        }
        Err(_) => {}
    }
}

pub(super) async fn beat_forever(
    s3: S3Store,
    held: Arc<tokio::sync::Mutex<Held>>,
    every: Duration,
) {
    let every = every.max(Duration::from_secs(1));
    loop {
        tokio::time::sleep(every).await;
        let mut h = held.lock().await;
        beat(&s3, &mut h).await;
        if h.lost.is_some() {
            return;
        }
    }
}
