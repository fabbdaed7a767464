//! The bytes of files held in memory, in buffers used again from file to file.
//!
//! A file's buffer is shared by its chunks (each a slice of it) until the last group of them
//! is converted; then it goes back to the pool for a later file. Reading into memory the
//! kernel has already handed out saves it zeroing fresh pages for every file (which cost as
//! much as the hashing once files were read ahead). The pool keeps a bounded number of bytes.

use std::io::Read;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// A file's bytes; back to its pool (if any) when the last chunk sharing it is done.
pub struct FileBytes {
    bytes: Vec<u8>,
    home: Option<Arc<BufferPool>>,
}

impl From<Vec<u8>> for FileBytes {
    /// Bytes of no pool.
    fn from(bytes: Vec<u8>) -> Self {
        FileBytes { bytes, home: None }
    }
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.bytes
    }
}

impl Drop for FileBytes {
    fn drop(&mut self) {
        if let Some(pool) = self.home.take() {
            pool.give_back(std::mem::take(&mut self.bytes));
        }
    }
}

/// Free buffers, at most [`BufferPool::max_bytes`] of capacity in all.
pub struct BufferPool {
    free: Mutex<Vec<Vec<u8>>>,
    max_bytes: usize,
}

impl BufferPool {
    pub fn new(max_bytes: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            free: Mutex::new(Vec::new()),
            max_bytes,
        })
    }

    /// Read the file at `path` (about `size` bytes) into a buffer of the pool.
    pub fn read(self: &Arc<Self>, path: &Path, size: u64) -> std::io::Result<FileBytes> {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let mut bytes = self.take(size);
        let mut file = std::fs::File::open(path)?;
        bytes.reserve(size);
        file.read_to_end(&mut bytes)?;
        Ok(FileBytes {
            bytes,
            home: Some(self.clone()),
        })
    }

    /// The smallest free buffer that holds `size` bytes, else the largest, else a new one;
    /// empty.
    fn take(&self, size: usize) -> Vec<u8> {
        let Ok(mut free) = self.free.lock() else {
            return Vec::new();
        };
        let fits = (0..free.len())
            .filter(|&i| free[i].capacity() >= size)
            .min_by_key(|&i| free[i].capacity());
        let pick = fits.or_else(|| (0..free.len()).max_by_key(|&i| free[i].capacity()));
        match pick {
            Some(i) => {
                let mut b = free.swap_remove(i);
                b.clear();
                b
            }
            None => Vec::new(),
        }
    }

    fn give_back(&self, bytes: Vec<u8>) {
        let Ok(mut free) = self.free.lock() else {
            return;
        };
        let kept: usize = free.iter().map(Vec::capacity).sum();
        if kept + bytes.capacity() <= self.max_bytes {
            free.push(bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn buffers_come_back_and_hold_each_file_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, vec![7u8; 3000]).unwrap();
        std::fs::write(&b, vec![9u8; 1000]).unwrap();
        let pool = BufferPool::new(1 << 20);
        let first = pool.read(&a, 3000).unwrap();
        assert_eq!(&first[..], &[7u8; 3000][..]);
        let at = first.as_ptr();
        drop(first);
        // The shorter file reuses the longer one's buffer and sees only its own bytes.
        let second = pool.read(&b, 1000).unwrap();
        assert_eq!(second.as_ptr(), at);
        assert_eq!(&second[..], &[9u8; 1000][..]);
        // A file whose size changed since it was listed is read whole.
        let third = pool.read(&a, 10).unwrap();
        assert_eq!(third.len(), 3000);
        // Nothing past the bound is kept.
        let small = BufferPool::new(100);
        drop(small.read(&a, 3000).unwrap());
        assert!(small.free.lock().unwrap().is_empty());
    }
}
