//! Asking the kernel to read the next files while the current ones are decoded.
//!
//! The dispatcher reads files one after another. A file not in the page cache stops it until
//! the disk has delivered, and the decoders run dry once the files read ahead are done. So the
//! dispatcher names the files after the one it is reading, up to [`PREFETCH_BYTES`] of them,
//! to the kernel (`posix_fadvise(WILLNEED)`, which starts their reads and returns): the disk
//! then works while the files before them are decoded. On systems without it, nothing is asked.

use std::path::Path;

use super::Input;

/// Bytes of files the kernel is asked to read ahead of the file being read (that file
/// included).
pub(super) const PREFETCH_BYTES: u64 = 64 << 20;

/// How far the files have been named to the kernel.
#[derive(Debug, Default)]
pub(super) struct Prefetch {
    /// The first file not named yet.
    next: usize,
}

impl Prefetch {
    /// Name the files from `current` on that fit in [`PREFETCH_BYTES`] and were not named yet.
    pub(super) fn advance(&mut self, inputs: &[Input], current: usize) {
        let sizes = |i: usize| inputs.get(i).map(|input| input.size);
        let (from, to) = self.due(sizes, current, PREFETCH_BYTES);
        for input in &inputs[from..to] {
            advise(&input.path, input.size.min(PREFETCH_BYTES));
        }
    }

    /// The files to name now, as a range of indices: from the first not named yet (or
    /// `current`) while the bytes from `current` on stay within `window`; `current` itself
    /// always, whatever its size.
    fn due(
        &mut self,
        size: impl Fn(usize) -> Option<u64>,
        current: usize,
        window: u64,
    ) -> (usize, usize) {
        let from = self.next.max(current);
        let mut bytes: u64 = (current..from)
            .filter_map(&size)
            .map(|s| s.min(window))
            .sum();
        let mut to = from;
        while let Some(s) = size(to) {
            let s = s.min(window);
            if to > current && bytes.saturating_add(s) > window {
                break;
            }
            bytes = bytes.saturating_add(s);
            to += 1;
        }
        self.next = self.next.max(to);
        (from, to)
    }
}

/// Ask the kernel to read the first `len` bytes of the file at `path` into its cache, without
/// waiting for them. A file that cannot be opened is left to the read that follows to report.
#[cfg(target_os = "linux")]
fn advise(path: &Path, len: u64) {
    use rustix::fs::{Advice, fadvise};
    if let (Ok(file), Some(len)) = (std::fs::File::open(path), std::num::NonZeroU64::new(len)) {
        let _ = fadvise(&file, 0, Some(len), Advice::WillNeed);
    }
}

#[cfg(not(target_os = "linux"))]
fn advise(_path: &Path, _len: u64) {}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each file is named once, in order, within the window from the file being read; a
    /// file larger than the window is named alone when its turn comes.
    #[test]
    fn files_are_named_once_within_the_window() {
        let sizes = [40u64, 30, 30, 200, 10, 10, 10];
        let size = |i: usize| sizes.get(i).copied();
        let mut p = Prefetch::default();
        // 40 + 30 + 30 = 100 fit, 200 does not.
        assert_eq!(p.due(size, 0, 100), (0, 3));
        // Nothing new fits while file 0 is still being read.
        assert_eq!(p.due(size, 0, 100), (3, 3));
        // From file 1: 30 + 30 named already, 200 (cut to the window) does not fit.
        assert_eq!(p.due(size, 1, 100), (3, 3));
        // From file 3: the large file alone.
        assert_eq!(p.due(size, 3, 100), (3, 4));
        // From file 4: the rest.
        assert_eq!(p.due(size, 4, 100), (4, 7));
        assert_eq!(p.due(size, 6, 100), (7, 7));
        // A reader that skipped ahead starts from where it is.
        let mut q = Prefetch::default();
        assert_eq!(q.due(size, 5, 100), (5, 7));
    }

    #[test]
    fn advising_a_missing_file_is_harmless() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        advise(&dir.path().join("missing.evtx"), 1 << 20);
        let present = dir.path().join("present.evtx");
        std::fs::write(&present, b"ElfFile\0").unwrap_or_else(|e| panic!("{e}"));
        advise(&present, 8);
        advise(&present, 0);
        assert_eq!(std::fs::read(&present).unwrap_or_default(), b"ElfFile\0");
    }
}
