//! The store on disk: a directory of Parquet files (the same layout serves as objects under
//! `s3://bucket/prefix`, see [`crate::s3`]).
//!
//! ```text
//! <store>/evtxsql-store.json       format version and creator
//! <store>/events/seg-NNNNNN.parquet rows of the events table, one file per committed segment
//! <store>/files/seg-NNNNNN.parquet  manifest rows (the files table) of that segment: its commit mark
//! <store>/files/seg-NNNNNN.replaces segments that segment replaced (compaction), one per line
//! <store>/tmp/                      files being written; removed when a writer opens the store
//! ```
//!
//! A segment is committed when its `files/` part exists. Its events part is renamed into place
//! first, so an events part whose manifest part is missing is the leftover of a crash: readers
//! ignore it and the next writer deletes it. Ingest never rewrites old segments; compaction
//! writes a new segment that holds the rows and manifest rows of several old ones, and names
//! them in its `.replaces` list, written before its manifest part: from the moment the new
//! segment is committed the old ones are hidden from readers (and deleted by the compaction or
//! by the next writer), so a crash leaves either the old or the new segments visible.
//!
//! # Concurrent writers
//!
//! Writers take turns: each holds the store's writer lock for its whole run, and reads the
//! manifest (the sha256 of every stored file, the next file id and segment number) only once
//! it holds it. So a writer never commits a segment number, a file id or a file another writer
//! committed, and several `ingest`s started at once into one store neither lose nor double a
//! file. Readers never take the lock: they see the segments whose commit mark exists.
//!
//! - A directory: an exclusive `flock` on `writer.lock`, released by the kernel when the
//!   process ends, so a crashed writer leaves nothing to clear.
//! - `s3://bucket/prefix` ([`crate::s3`]): the same layout as objects. The lock is the object
//!   `writer.lock`, created with a create-only put (`If-None-Match: *`), kept alive by
//!   heartbeats (puts conditional on its ETag), deleted at the end, and taken over by a waiting
//!   writer when it has not changed for its time to live (a crashed writer); each commit mark is
//!   itself put create-only, so no segment is ever committed twice.

use std::fs;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{IngestError, Result};
use crate::schema::STORE_FORMAT_VERSION;

pub const MARKER_FILE: &str = "evtxsql-store.json";
pub const EVENTS_DIR: &str = "events";
pub const FILES_DIR: &str = "files";
pub const TMP_DIR: &str = "tmp";
/// The file writers (`ingest`, `compact`) lock for the length of their run, one at a time.
pub const WRITER_LOCK_FILE: &str = "writer.lock";

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    format: u32,
    created_by: String,
}

/// A store directory, opened and validated.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    /// The writer lock, held while a store opened for writing (or a clone of it) lives.
    writer: Option<std::sync::Arc<fs::File>>,
}

impl Store {
    /// Open an existing store for reading. Errors if `root` is not a store or was made by a newer
    /// version of evtxsql.
    pub fn open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        local_only(&root)?;
        let marker_path = root.join(MARKER_FILE);
        let text = match fs::read_to_string(&marker_path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(IngestError::NotAStore {
                    path: root,
                    marker: MARKER_FILE,
                });
            }
            Err(e) => return Err(IngestError::io(marker_path, e)),
        };
        check_marker(&text, &root)?;
        Ok(Store { root, writer: None })
    }

    /// Open a store for writing, creating it if `root` does not exist or is an empty directory.
    /// Leftovers of an interrupted ingest (temporary files, uncommitted events parts) are removed.
    ///
    /// Writers take turns: this waits for the store's writer lock (an exclusive lock on
    /// [`WRITER_LOCK_FILE`], released when the process ends or the last clone of the returned
    /// store is dropped), so several `ingest` or `compact` processes started at once run one
    /// after the other, each reading the manifest its predecessors committed. Readers never
    /// wait.
    pub fn create_or_open(root: impl AsRef<Path>) -> Result<Store> {
        let root = root.as_ref().to_path_buf();
        local_only(&root)?;
        // A directory that is not a store: something in it other than a store's own parts. A
        // store another writer is creating (its lock taken, its folders made, no marker yet) is
        // not refused: this writer waits for the lock and then finds the marker.
        let foreign = |root: &Path| {
            // The marker counts too: another writer may rename it into place between the check
            // for it and the listing.
            let store_part = |e: &fs::DirEntry| {
                [
                    MARKER_FILE,
                    WRITER_LOCK_FILE,
                    EVENTS_DIR,
                    FILES_DIR,
                    TMP_DIR,
                ]
                .iter()
                .any(|n| e.file_name() == *n)
            };
            root.exists()
                && !root.join(MARKER_FILE).exists()
                && !fs::read_dir(root)
                    .map(|d| d.filter_map(|e| e.ok()).all(|e| store_part(&e)))
                    .unwrap_or(false)
        };
        let not_a_store = |root: &Path| IngestError::NotAStore {
            path: root.to_path_buf(),
            marker: MARKER_FILE,
        };
        if foreign(&root) {
            return Err(not_a_store(&root));
        }
        fs::create_dir_all(&root).map_err(|e| IngestError::io(&root, e))?;
        let lock_path = root.join(WRITER_LOCK_FILE);
        let lock = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| IngestError::io(&lock_path, e))?;
        lock.lock().map_err(|e| IngestError::io(&lock_path, e))?;
        // Another writer may have created the store (or the folder filled) while this one waited.
        if foreign(&root) {
            return Err(not_a_store(&root));
        }
        if !root.join(MARKER_FILE).exists() {
            for d in [EVENTS_DIR, FILES_DIR, TMP_DIR] {
                fs::create_dir_all(root.join(d)).map_err(|e| IngestError::io(root.join(d), e))?;
            }
            let text = new_marker(&root)?;
            // Written aside and renamed: a reader never sees half a marker.
            let tmp = root.join(TMP_DIR).join(MARKER_FILE);
            fs::write(&tmp, text).map_err(|e| IngestError::io(&tmp, e))?;
            let path = root.join(MARKER_FILE);
            fs::rename(&tmp, &path).map_err(|e| IngestError::io(path, e))?;
        }
        let mut store = Store::open(&root)?;
        store.writer = Some(std::sync::Arc::new(lock));
        store.clean_leftovers()?;
        Ok(store)
    }

    /// Raise the store's format marker to `format` (when lower), so that older versions of
    /// evtxsql, which do not know what the new format adds, refuse the store.
    pub fn require_format(&self, format: u32) -> Result<()> {
        let path = self.root.join(MARKER_FILE);
        let text = fs::read_to_string(&path).map_err(|e| IngestError::io(&path, e))?;
        let marker: Marker = serde_json::from_str(&text).map_err(|e| IngestError::BadStore {
            path: path.clone(),
            message: e.to_string(),
        })?;
        if marker.format >= format {
            return Ok(());
        }
        let raised = Marker {
            format,
            created_by: marker.created_by,
        };
        let text = serde_json::to_string_pretty(&raised).map_err(|e| IngestError::BadStore {
            path: path.clone(),
            message: e.to_string(),
        })?;
        let tmp = self.tmp_dir().join(MARKER_FILE);
        fs::write(&tmp, text).map_err(|e| IngestError::io(&tmp, e))?;
        fs::rename(&tmp, &path).map_err(|e| IngestError::io(&path, e))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn events_dir(&self) -> PathBuf {
        self.root.join(EVENTS_DIR)
    }

    pub fn files_dir(&self) -> PathBuf {
        self.root.join(FILES_DIR)
    }

    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join(TMP_DIR)
    }

    /// Numbers of the committed segments, ascending (without those a committed segment
    /// replaced).
    pub fn segments(&self) -> Result<Vec<u32>> {
        let mut out = list_segments(&self.files_dir())?;
        out.sort_unstable();
        let replaced = self.replaced(&out)?;
        out.retain(|s| !replaced.contains(s));
        Ok(out)
    }

    /// Segments replaced by the committed ones among `committed`.
    fn replaced(&self, committed: &[u32]) -> Result<Vec<u32>> {
        let mut replaced = Vec::new();
        for seg in list_files(&self.files_dir(), REPLACES_SUFFIX)? {
            if committed.binary_search(&seg).is_err() {
                continue;
            }
            let path = self.replaces_part(seg);
            let text = fs::read_to_string(&path).map_err(|e| IngestError::io(&path, e))?;
            replaced.extend(parse_replaces(&text, &path)?);
        }
        replaced.sort_unstable();
        replaced.dedup();
        Ok(replaced)
    }

    /// Path of the list of segments a segment replaced.
    pub fn replaces_part(&self, segment: u32) -> PathBuf {
        self.files_dir()
            .join(format!("seg-{segment:06}{REPLACES_SUFFIX}"))
    }

    /// Record (durably, before `segment` is committed) that `segment` replaces `old`.
    pub fn write_replaces(&self, segment: u32, old: &[u32]) -> Result<()> {
        let tmp = self
            .tmp_dir()
            .join(format!("seg-{segment:06}{REPLACES_SUFFIX}"));
        let text: String = old.iter().map(|s| format!("{s}\n")).collect();
        {
            use std::io::Write;
            let mut f = fs::File::create(&tmp).map_err(|e| IngestError::io(&tmp, e))?;
            f.write_all(text.as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| IngestError::io(&tmp, e))?;
        }
        let dest = self.replaces_part(segment);
        fs::rename(&tmp, &dest).map_err(|e| IngestError::io(&dest, e))
    }

    /// Delete the parts of segments that committed segments replaced, and `.replaces` lists of
    /// segments that were never committed. The lists of committed segments stay: they keep
    /// hiding the old numbers from a reader that listed the directory before the deletion.
    pub fn remove_replaced(&self) -> Result<()> {
        let mut all = list_segments(&self.files_dir())?;
        all.sort_unstable();
        for seg in self.replaced(&all)? {
            for p in [self.events_part(seg), self.files_part(seg)] {
                match fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => return Err(IngestError::io(&p, e)),
                }
            }
        }
        for seg in list_files(&self.files_dir(), REPLACES_SUFFIX)? {
            if all.binary_search(&seg).is_err() {
                let p = self.replaces_part(seg);
                fs::remove_file(&p).map_err(|e| IngestError::io(&p, e))?;
            }
        }
        Ok(())
    }

    /// Path of a segment's events part.
    pub fn events_part(&self, segment: u32) -> PathBuf {
        self.events_dir().join(segment_file_name(segment))
    }

    /// Path of a segment's manifest part.
    pub fn files_part(&self, segment: u32) -> PathBuf {
        self.files_dir().join(segment_file_name(segment))
    }

    /// The events parts of committed segments (segments without events have none).
    pub fn committed_event_parts(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .segments()?
            .into_iter()
            .map(|s| self.events_part(s))
            .filter(|p| p.exists())
            .collect())
    }

    /// The manifest parts of committed segments.
    pub fn manifest_parts(&self) -> Result<Vec<PathBuf>> {
        Ok(self
            .segments()?
            .into_iter()
            .map(|s| self.files_part(s))
            .collect())
    }

    /// Total size in bytes of the committed Parquet files.
    pub fn size_bytes(&self) -> Result<u64> {
        let mut total = 0;
        for p in self
            .committed_event_parts()?
            .into_iter()
            .chain(self.manifest_parts()?)
        {
            total += fs::metadata(&p).map_err(|e| IngestError::io(&p, e))?.len();
        }
        Ok(total)
    }

    fn clean_leftovers(&self) -> Result<()> {
        let tmp = self.tmp_dir();
        if tmp.exists() {
            for entry in fs::read_dir(&tmp).map_err(|e| IngestError::io(&tmp, e))? {
                let entry = entry.map_err(|e| IngestError::io(&tmp, e))?;
                let p = entry.path();
                fs::remove_file(&p).map_err(|e| IngestError::io(&p, e))?;
            }
        } else {
            fs::create_dir_all(&tmp).map_err(|e| IngestError::io(&tmp, e))?;
        }
        let committed = self.segments()?;
        for seg in list_segments(&self.events_dir())? {
            if !committed.contains(&seg) {
                let p = self.events_part(seg);
                fs::remove_file(&p).map_err(|e| IngestError::io(&p, e))?;
            }
        }
        self.remove_replaced()
    }
}

/// A URL (`s3://...`) given where a store directory is needed: an error that says which
/// commands take one, instead of a directory named `s3:`.
fn local_only(root: &Path) -> Result<()> {
    if crate::s3::S3Location::is_url(root) {
        return Err(IngestError::Remote {
            url: root.display().to_string(),
            message: "this needs a store directory: s3:// stores work with ingest, query, \
                      stats, report, shell and scan --store (compact them as a local copy)"
                .into(),
        });
    }
    Ok(())
}

/// Check a store's marker text: a marker, of a format this evtxsql reads. `root` names the
/// store in errors (a directory, or an `s3://` URL).
pub(crate) fn check_marker(text: &str, root: &Path) -> Result<()> {
    let marker: Marker = serde_json::from_str(text).map_err(|e| IngestError::BadStore {
        path: root.join(MARKER_FILE),
        message: e.to_string(),
    })?;
    if marker.format > STORE_FORMAT_VERSION {
        return Err(IngestError::NewerStore {
            path: root.to_path_buf(),
            found: marker.format,
            supported: STORE_FORMAT_VERSION,
        });
    }
    Ok(())
}

/// The marker of a new store.
pub(crate) fn new_marker(root: &Path) -> Result<String> {
    let marker = Marker {
        format: STORE_FORMAT_VERSION,
        created_by: format!("evtxsql {}", env!("CARGO_PKG_VERSION")),
    };
    serde_json::to_string_pretty(&marker).map_err(|e| IngestError::BadStore {
        path: root.to_path_buf(),
        message: e.to_string(),
    })
}

/// The segment numbers of a `.replaces` list (`path` names it in errors).
pub(crate) fn parse_replaces(text: &str, path: &Path) -> Result<Vec<u32>> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            line.parse::<u32>().map_err(|e| IngestError::BadStore {
                path: path.to_path_buf(),
                message: format!("not a segment number: {line:?} ({e})"),
            })
        })
        .collect()
}

/// `seg-NNNNNN` + `suffix` → NNNNNN.
pub(crate) fn segment_number(name: &str, suffix: &str) -> Option<u32> {
    name.strip_prefix("seg-")
        .and_then(|r| r.strip_suffix(suffix))
        .and_then(|n| n.parse::<u32>().ok())
}

/// `seg-000042.parquet`.
pub fn segment_file_name(segment: u32) -> String {
    format!("seg-{segment:06}.parquet")
}

pub(crate) const REPLACES_SUFFIX: &str = ".replaces";

fn list_segments(dir: &Path) -> Result<Vec<u32>> {
    list_files(dir, ".parquet")
}

/// Numbers of the `seg-NNNNNN<suffix>` files in `dir`.
fn list_files(dir: &Path, suffix: &str) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(IngestError::io(dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| IngestError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(n) = segment_number(name, suffix) {
            out.push(n);
        }
    }
    Ok(out)
}
