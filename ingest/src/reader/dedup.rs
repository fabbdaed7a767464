//! Telling the inputs of a one-run store apart without hashing every file whole
//! ([`FileKey::Blake3`]: `scan` without `--store`, where the key only drops duplicates among
//! the inputs and is recorded nowhere).
//!
//! Two files of different sizes, or whose first [`QUICK_BYTES`] differ, cannot have the same
//! content; among real logs that tells almost every pair apart (the first 68 KiB are the file
//! header, with its record counters and checksum, and the first chunk, with the host's name
//! and the first records' times). So each file first gets a quick key of its size and those
//! bytes. Only a file whose quick key an earlier input of the run shares is hashed whole, and
//! so is each such earlier input (read again from disk, once, if it was not hashed yet): the
//! same content then gets the earlier input's key, so the admission drops it as a duplicate;
//! other content gets a key of its own. As exact as hashing every file, and most files are
//! never hashed whole (on 1 GB of real logs, BLAKE3 of every file was ~7 % of a scan's CPU).

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::manifest::FileKey;

/// The bytes a quick key covers: the 4 KiB file header and the first 64 KiB chunk.
pub(super) const QUICK_BYTES: usize = 4096 + 65_536;

/// The quick key of a file of `size` bytes whose first bytes are `head` (at most
/// [`QUICK_BYTES`] of them are read).
pub(super) fn quick_key(size: u64, head: &[u8]) -> String {
    let mut h = blake3::Hasher::new();
    h.update(&size.to_le_bytes());
    h.update(&head[..head.len().min(QUICK_BYTES)]);
    format!("q{}", h.finalize().to_hex())
}

/// The quick key of the file at `path`, read from disk.
pub(super) fn quick_key_of_file(path: &Path, size: u64) -> std::io::Result<String> {
    let mut head = Vec::with_capacity(QUICK_BYTES);
    std::fs::File::open(path)?
        .take(QUICK_BYTES as u64)
        .read_to_end(&mut head)?;
    Ok(quick_key(size, &head))
}

/// An input handed to the admission under a quick key that it shares.
struct Earlier {
    path: PathBuf,
    /// Its whole hash, once computed (`Err`: it could not be read again).
    whole: Option<Result<String, String>>,
    /// The key the admission saw for it.
    key: String,
}

/// The quick keys of the run so far, and the inputs under each.
#[derive(Default)]
pub(super) struct Staged {
    seen: HashMap<String, Vec<Earlier>>,
}

impl Staged {
    /// The key to hand the admission for the file at `path` of quick key `quick`: the quick
    /// key when no earlier input has it; otherwise (with `whole`, its whole BLAKE3, computed
    /// only then) the key of an earlier input of the same content, or a key of its own.
    pub(super) fn key(
        &mut self,
        quick: String,
        path: &Path,
        whole: impl FnOnce() -> Result<String, String>,
    ) -> Result<String, String> {
        let Some(earlier) = self.seen.get_mut(&quick) else {
            self.seen.insert(
                quick.clone(),
                vec![Earlier {
                    path: path.to_path_buf(),
                    whole: None,
                    key: quick.clone(),
                }],
            );
            return Ok(quick);
        };
        let mine = whole()?;
        for e in earlier.iter_mut() {
            let theirs = e.whole.get_or_insert_with(|| {
                FileKey::Blake3
                    .of_file(&e.path)
                    .map_err(|err| err.to_string())
            });
            // An earlier input that cannot be read again is taken as different: both are
            // then read, so nothing is lost.
            if theirs.as_deref() == Ok(mine.as_str()) {
                return Ok(e.key.clone());
            }
        }
        let key = format!("w{mine}");
        earlier.push(Earlier {
            path: path.to_path_buf(),
            whole: Some(Ok(mine)),
            key: key.clone(),
        });
        Ok(key)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// Files that share size and first bytes but differ later get keys of their own; a copy
    /// gets the key of the first input of its content (whichever stage told it); nothing is
    /// hashed whole until two inputs share a quick key.
    #[test]
    fn same_content_same_key_and_only_collisions_hashed_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut base = vec![7u8; QUICK_BYTES + 5000];
        let write = |name: &str, bytes: &[u8]| {
            let p = dir.path().join(name);
            std::fs::write(&p, bytes).unwrap();
            p
        };
        let a = write("a", &base);
        base[QUICK_BYTES + 10] = 8; // differs after the quick bytes
        let b = write("b", &base);
        let a_copy = write("a-copy", &std::fs::read(&a).unwrap());
        base[100] = 9; // differs within them
        let c = write("c", &base);
        let short = write("short", &base[..QUICK_BYTES + 4999]);

        let mut staged = Staged::default();
        let mut hashed = Vec::new();
        let mut key = |p: &Path| {
            let bytes = std::fs::read(p).unwrap();
            let quick = quick_key(bytes.len() as u64, &bytes);
            assert_eq!(quick, quick_key_of_file(p, bytes.len() as u64).unwrap());
            staged
                .key(quick, p, || {
                    hashed.push(p.to_path_buf());
                    Ok(FileKey::Blake3.of_bytes(&bytes))
                })
                .unwrap()
        };
        let ka = key(&a);
        let kc = key(&c);
        let ks = key(&short);
        assert!(ka.starts_with('q') && kc.starts_with('q') && ks.starts_with('q'));
        assert_eq!([ka != kc, ka != ks, kc != ks], [true; 3]);
        let kb = key(&b);
        assert!(kb.starts_with('w') && kb != ka, "b differs from a: {kb}");
        assert_eq!(key(&a_copy), ka, "a copy of a is a's duplicate");
        assert_eq!(key(&b), kb, "b again is b's duplicate");
        assert_eq!(
            hashed,
            vec![b.clone(), a_copy, b],
            "hashed whole: the collisions only"
        );
    }

    #[test]
    fn an_earlier_input_gone_from_disk_is_taken_as_different() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let bytes = vec![1u8; 100];
        std::fs::write(&a, &bytes).unwrap();
        let mut staged = Staged::default();
        let quick = quick_key(100, &bytes);
        let ka = staged.key(quick.clone(), &a, || unreachable!()).unwrap();
        std::fs::remove_file(&a).unwrap();
        let whole = FileKey::Blake3.of_bytes(&bytes);
        let kb = staged
            .key(quick, &dir.path().join("b"), || Ok(whole))
            .unwrap();
        assert_ne!(ka, kb);
    }
}
