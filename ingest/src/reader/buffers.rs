//! The bytes of files held in memory, in buffers used again from file to file.
//!
//! A file's buffer is shared by its chunks (each a slice of it) until the last group of them
//! is converted; then it goes back to the pool for a later file. Reading into memory the
//! kernel has already handed out saves it zeroing fresh pages for every file (which cost as
//! much as the hashing once files were read ahead).
//!
//! The pool also bounds the memory of files in memory: the buffers in use and those kept free
//! together stay within its budget, except that one file is always let in (a file larger than
//! the budget is then the only one in memory; the reader sends files over the budget to disk
//! instead, see `MAX_BUFFERED_FILE`). So peak memory does not grow with the size of the files
//! read.

use std::io::Read;
use std::ops::Deref;
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// Bytes read before [`BufferPool::read_seeing`] hands them on: well within a core's cache.
pub const SEEN_PIECE: u64 = 256 << 10;

/// What [`BufferPool::read_seeing`] hands each piece to.
pub type Seen<'a> = dyn FnMut(&[u8]) + 'a;

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

/// Buffers of files: the ones in use and the free ones, at most [`BufferPool::budget`] bytes
/// of capacity together (and always room for one file).
pub struct BufferPool {
    state: Mutex<State>,
    freed: Condvar,
    budget: usize,
}

#[derive(Default)]
struct State {
    free: Vec<Vec<u8>>,
    /// Capacity of the buffers handed out and not yet given back.
    in_use: usize,
}

impl State {
    fn free_bytes(&self) -> usize {
        self.free.iter().map(Vec::capacity).sum()
    }
}

impl BufferPool {
    pub fn new(budget: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            state: Mutex::new(State::default()),
            freed: Condvar::new(),
            budget,
        })
    }

    /// The budget: also the largest file read into memory (see `MAX_BUFFERED_FILE`).
    pub fn budget(&self) -> u64 {
        self.budget as u64
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while the lock was held left plain numbers and buffers: still consistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether a file of `size` bytes can be read now without going over the budget (always
    /// when no buffer is in use).
    pub fn has_room(&self, size: u64) -> bool {
        let st = self.state();
        fits(&st, size, self.budget)
    }

    /// Wait until a file of `size` bytes fits (see [`Self::has_room`]). Only call this when
    /// every buffer in use will be given back without the caller's help.
    pub fn wait_for_room(&self, size: u64) {
        let mut st = self.state();
        while !fits(&st, size, self.budget) {
            st = self.freed.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Read the file at `path` (about `size` bytes) into a buffer of the pool.
    pub fn read(self: &Arc<Self>, path: &Path, size: u64) -> std::io::Result<FileBytes> {
        self.read_seeing(path, size, None)
    }

    /// [`Self::read`], handing `see` each piece of the file as soon as it is read (in order,
    /// [`SEEN_PIECE`] bytes at a time): the piece is then still in this core's cache.
    pub fn read_seeing(
        self: &Arc<Self>,
        path: &Path,
        size: u64,
        mut see: Option<&mut Seen<'_>>,
    ) -> std::io::Result<FileBytes> {
        let size = usize::try_from(size).unwrap_or(usize::MAX);
        let mut bytes = self.take(size);
        let before = bytes.capacity();
        let mut file = std::fs::File::open(path);
        let read = match file.as_mut() {
            Ok(f) => {
                bytes.reserve(size);
                match see.as_mut() {
                    None => f.read_to_end(&mut bytes).map(|_| ()),
                    Some(see) => loop {
                        let from = bytes.len();
                        match f.by_ref().take(SEEN_PIECE).read_to_end(&mut bytes) {
                            Ok(0) => break Ok(()),
                            Ok(_) => see(&bytes[from..]),
                            Err(e) => break Err(e),
                        }
                    },
                }
            }
            Err(_) => Ok(()),
        };
        // Count what the read allocated beyond the buffer taken.
        self.state().in_use += bytes.capacity() - before;
        let out = FileBytes {
            bytes,
            home: Some(self.clone()),
        };
        file?;
        read?;
        Ok(out)
    }

    /// The smallest free buffer that holds `size` bytes, else the largest, else a new one;
    /// empty, and counted as in use. Free buffers that would leave no room for `size` are
    /// dropped.
    fn take(&self, size: usize) -> Vec<u8> {
        let mut st = self.state();
        let fits = (0..st.free.len())
            .filter(|&i| st.free[i].capacity() >= size)
            .min_by_key(|&i| st.free[i].capacity());
        let pick = fits.or_else(|| (0..st.free.len()).max_by_key(|&i| st.free[i].capacity()));
        let mut b = match pick {
            Some(i) => st.free.swap_remove(i),
            None => Vec::new(),
        };
        b.clear();
        st.in_use += b.capacity();
        let grow = size.saturating_sub(b.capacity());
        while !st.free.is_empty() && st.in_use + st.free_bytes() + grow > self.budget {
            st.free.pop();
        }
        b
    }

    fn give_back(&self, bytes: Vec<u8>) {
        let mut st = self.state();
        st.in_use = st.in_use.saturating_sub(bytes.capacity());
        if st.in_use + st.free_bytes() + bytes.capacity() <= self.budget {
            st.free.push(bytes);
        }
        drop(st);
        self.freed.notify_all();
    }
}

fn fits(st: &State, size: u64, budget: usize) -> bool {
    let size = usize::try_from(size).unwrap_or(usize::MAX);
    st.in_use == 0 || st.in_use.saturating_add(size) <= budget
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
        assert!(small.state().free.is_empty());
        assert_eq!(small.state().in_use, 0);
    }

    /// A file read piece by piece: the pieces, in order, are the file's bytes, none longer
    /// than `SEEN_PIECE`; the buffer holds the whole file, as `read` gives it.
    #[test]
    fn pieces_seen_while_reading_are_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        let piece = usize::try_from(SEEN_PIECE).unwrap();
        let bytes: Vec<u8> = (0..2 * piece + piece / 2 + 7)
            .map(|i| (i % 251) as u8)
            .collect();
        std::fs::write(&a, &bytes).unwrap();
        let pool = BufferPool::new(1 << 20);
        let mut seen: Vec<Vec<u8>> = Vec::new();
        let mut see = |p: &[u8]| seen.push(p.to_vec());
        // The size listed may be stale: the file is still read whole.
        let read = pool.read_seeing(&a, 10, Some(&mut see)).unwrap();
        assert_eq!(&read[..], &bytes[..]);
        assert_eq!(seen.concat(), bytes);
        assert!(seen.len() >= 3, "{} pieces", seen.len());
        assert!(seen.iter().all(|p| !p.is_empty() && p.len() <= piece));
        let mut none = |_: &[u8]| panic!("an empty file has no piece");
        let e = dir.path().join("empty");
        std::fs::write(&e, b"").unwrap();
        assert!(pool.read_seeing(&e, 0, Some(&mut none)).unwrap().is_empty());
    }

    /// Buffers in use count against the budget; one file always fits; a buffer given back
    /// makes room for the next, and wakes a reader waiting for it.
    #[test]
    fn the_budget_bounds_files_in_memory() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a");
        std::fs::write(&a, vec![1u8; 6000]).unwrap();
        let pool = BufferPool::new(10_000);
        assert!(pool.has_room(50_000), "one file always fits");
        let first = pool.read(&a, 6000).unwrap();
        assert!(pool.has_room(4000));
        assert!(!pool.has_room(6000));
        let waiter = {
            let pool = pool.clone();
            std::thread::spawn(move || {
                pool.wait_for_room(6000);
                pool.read(&a, 6000).unwrap().len()
            })
        };
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert!(!waiter.is_finished(), "read past the budget");
        drop(first);
        assert_eq!(waiter.join().unwrap(), 6000);
        // Given back and kept: in use again only once read.
        assert_eq!(pool.state().in_use, 0);
        assert!(pool.state().free_bytes() >= 6000);
    }
}
