//! The writer of an S3 store: the local writer's segments, staged and uploaded under the lock.

use super::lock::*;
use super::*;

/// A writer of an S3 store: holds its lock, stages segments locally and uploads them.
pub struct S3Writer {
    s3: S3Store,
    runtime: tokio::runtime::Runtime,
    held: Arc<tokio::sync::Mutex<Held>>,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
    staging: Store,
    // Dropped after `staging` (which holds a lock file in it).
    _staging_dir: tempfile::TempDir,
    released: bool,
}

impl std::fmt::Debug for S3Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Writer")
            .field("store", &self.s3.location.url())
            .field("staging", &self.staging.root())
            .finish()
    }
}

impl S3Writer {
    /// Take the store's writer lock (waiting for other writers, see the module doc), create
    /// the store if there is none, remove the leftovers of crashed writers, and stage the
    /// committed manifest parts in a local store.
    pub fn open(location: &S3Location, progress: &dyn Progress) -> Result<S3Writer> {
        let s3 = S3Store::connect(location)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .map_err(|e| location.err(format!("cannot start the S3 client runtime: {e}")))?;
        let staging_dir = tempfile::Builder::new()
            .prefix("evtxsql-s3-staging-")
            .tempdir()
            .map_err(|e| IngestError::io(std::env::temp_dir(), e))?;
        let staging = Store::create_or_open(staging_dir.path())?;
        let ttl = lock_ttl();
        let held = runtime.block_on(async {
            // Refuse a prefix that holds something else before waiting for a lock there.
            if s3.marker().await?.is_none() {
                check_not_foreign(&s3).await?;
            }
            acquire(&s3, ttl, progress).await
        })?;
        let held = Arc::new(tokio::sync::Mutex::new(held));
        let mut writer = S3Writer {
            s3,
            runtime,
            held,
            heartbeat: None,
            staging,
            _staging_dir: staging_dir,
            released: false,
        };
        writer.heartbeat = Some(writer.runtime.spawn(beat_forever(
            writer.s3.clone(),
            writer.held.clone(),
            ttl / 4,
        )));
        writer.runtime.block_on(writer.prepare())?;
        Ok(writer)
    }

    /// The local store segments are written to before they are uploaded.
    pub fn staging(&self) -> &Store {
        &self.staging
    }

    /// Under the lock: the marker, leftovers removed, manifest parts staged.
    async fn prepare(&self) -> Result<()> {
        let s3 = &self.s3;
        match s3.marker().await? {
            Some(text) => store::check_marker(&text, &PathBuf::from(s3.location.url()))?,
            None => {
                check_not_foreign(s3).await?;
                let text = store::new_marker(&PathBuf::from(s3.location.url()))?;
                let key = s3.location.key(MARKER_FILE);
                match s3
                    .store
                    .put_opts(
                        &key,
                        PutPayload::from(text.into_bytes()),
                        PutOptions::from(PutMode::Create),
                    )
                    .await
                {
                    Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => {}
                    Err(e) => {
                        return Err(s3
                            .location
                            .object_err(&format!("creating the store ({MARKER_FILE})"), &e));
                    }
                }
            }
        }
        let listing = s3.listing().await?;
        // Leftovers of crashed writers: events parts of segments never committed, parts of
        // replaced segments, `.replaces` lists of segments never committed.
        for (&seg, _) in listing.events.iter() {
            if listing.segments.binary_search(&seg).is_err() {
                s3.delete(&format!("{EVENTS_DIR}/{}", store::segment_file_name(seg)))
                    .await?;
            }
        }
        for &seg in &listing.replaced {
            s3.delete(&format!("{FILES_DIR}/{}", store::segment_file_name(seg)))
                .await?;
        }
        for &seg in &listing.replaces {
            if !listing.files.contains_key(&seg) {
                s3.delete(&format!("{FILES_DIR}/seg-{seg:06}{REPLACES_SUFFIX}"))
                    .await?;
            }
        }
        for &seg in &listing.segments {
            let name = store::segment_file_name(seg);
            let key = s3.location.key(&format!("{FILES_DIR}/{name}"));
            let doing = format!("reading {}", s3.part_url(FILES_DIR, seg));
            let bytes = s3
                .store
                .get(&key)
                .await
                .map_err(|e| s3.location.object_err(&doing, &e))?
                .bytes()
                .await
                .map_err(|e| s3.location.object_err(&doing, &e))?;
            let dest = self.staging.files_part(seg);
            std::fs::write(&dest, &bytes).map_err(|e| IngestError::io(&dest, e))?;
        }
        Ok(())
    }

    /// Upload the segment the staging store just committed: events part, `.replaces` list,
    /// then the manifest part (create-only), after confirming the lock is still this
    /// writer's. The local events part is removed once uploaded.
    pub fn push(&self, segment: u32) -> Result<()> {
        self.runtime.block_on(async {
            self.confirm().await?;
            let name = store::segment_file_name(segment);
            let events = self.staging.events_part(segment);
            if events.exists() {
                self.s3
                    .upload(&events, &format!("{EVENTS_DIR}/{name}"), true)
                    .await?;
            }
            let replaces = self.staging.replaces_part(segment);
            if replaces.exists() {
                self.s3
                    .upload(
                        &replaces,
                        &format!("{FILES_DIR}/seg-{segment:06}{REPLACES_SUFFIX}"),
                        false,
                    )
                    .await?;
            }
            self.s3
                .upload(
                    &self.staging.files_part(segment),
                    &format!("{FILES_DIR}/{name}"),
                    true,
                )
                .await?;
            if events.exists() {
                std::fs::remove_file(&events).map_err(|e| IngestError::io(&events, e))?;
            }
            Ok(())
        })
    }

    /// A heartbeat now, failing when the lock is no longer this writer's.
    async fn confirm(&self) -> Result<()> {
        let mut held = self.held.lock().await;
        beat(&self.s3, &mut held).await;
        match &held.lost {
            Some(why) => Err(self.s3.location.err(format!(
                "lost the writer lock {}: {why}; nothing more was committed, run the ingest again",
                self.s3.location.object_url(WRITER_LOCK_FILE)
            ))),
            None => Ok(()),
        }
    }

    /// The store's committed segments after this writer's, then the lock released.
    pub fn finish(mut self) -> Result<Listing> {
        let listing = self.runtime.block_on(self.s3.listing());
        self.release();
        listing
    }

    fn release(&mut self) {
        if self.released {
            return;
        }
        self.released = true;
        if let Some(h) = self.heartbeat.take() {
            h.abort();
        }
        let s3 = self.s3.clone();
        let held = self.held.clone();
        let _ = self.runtime.block_on(async move {
            let held = held.lock().await;
            if held.lost.is_none() {
                s3.delete(WRITER_LOCK_FILE).await
            } else {
                Ok(())
            }
        });
    }
}

impl Drop for S3Writer {
    fn drop(&mut self) {
        self.release();
    }
}

/// A prefix without a marker that holds objects other than a store's own parts is not a
/// store, and is not made one.
async fn check_not_foreign(s3: &S3Store) -> Result<()> {
    let prefix = if s3.location.prefix.is_empty() {
        None
    } else {
        Some(ObjectPath::from(s3.location.prefix.as_str()))
    };
    let listed = s3
        .store
        .list_with_delimiter(prefix.as_ref())
        .await
        .map_err(|e| s3.location.object_err("listing the store", &e))?;
    let own = |name: Option<&str>| {
        // The marker too: another writer may have created the store since it was looked for.
        name.is_some_and(|n| {
            [
                MARKER_FILE,
                WRITER_LOCK_FILE,
                EVENTS_DIR,
                FILES_DIR,
                TMP_DIR,
            ]
            .contains(&n)
        })
    };
    let foreign = listed.objects.iter().any(|o| !own(o.location.filename()))
        || listed.common_prefixes.iter().any(|p| !own(p.filename()));
    if foreign {
        return Err(IngestError::NotAStore {
            path: PathBuf::from(s3.location.url()),
            marker: MARKER_FILE,
        });
    }
    Ok(())
}
