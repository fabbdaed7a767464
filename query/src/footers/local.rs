//! A local file's bytes read where the scan asks for them.
//!
//! Through `object_store`'s local file system, every read of a scan (a column chunk, the page
//! index) is handed to tokio's blocking pool and awaited: the partition that asked sits idle
//! while another thread copies the bytes out of the page cache, and on 2 cores that thread takes
//! a core from the other partition. A read of a file of the store is a copy out of the page
//! cache nearly always; done in place, the partition that needs the bytes copies them.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;

use bytes::Bytes;
use datafusion::datasource::physical_plan::parquet::ParquetFileMetrics;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use object_store::path::Path;
use parquet::errors::{ParquetError, Result};

/// An open local file of the store, read in place.
pub(super) struct LocalFile {
    file: File,
    /// The file's size when it was opened: a read past it is an error, not a short read.
    len: u64,
    /// The scan's metrics of the file: the bytes read, and what part of the file they are
    /// (as DataFusion's own reader counts them).
    metrics: ParquetFileMetrics,
}

impl LocalFile {
    /// The file at `location` of the local file system, if it opens and is `len` bytes long
    /// (the size the scan was planned with), read for `partition` of a scan with `metrics`.
    pub(super) fn open(
        location: &Path,
        len: u64,
        partition: usize,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Option<Self> {
        let path = object_store::local::LocalFileSystem::new()
            .path_to_filesystem(location)
            .ok()?;
        let file = File::open(path).ok()?;
        if file.metadata().ok()?.len() != len {
            return None;
        }
        let metrics = ParquetFileMetrics::new(partition, location.as_ref(), metrics);
        Some(LocalFile { file, len, metrics })
    }

    /// The bytes of each of `ranges`.
    pub(super) fn read_ranges(&mut self, ranges: Vec<Range<u64>>) -> Result<Vec<Bytes>> {
        ranges.into_iter().map(|range| self.read(range)).collect()
    }

    /// The bytes of `range`.
    pub(super) fn read(&mut self, range: Range<u64>) -> Result<Bytes> {
        if range.end > self.len || range.start > range.end {
            return Err(ParquetError::EOF(format!(
                "bytes {}..{} asked of a file of {} bytes",
                range.start, range.end, self.len
            )));
        }
        let len = range.end - range.start;
        let capacity = usize::try_from(len).map_err(|e| ParquetError::External(Box::new(e)))?;
        // Read into the spare capacity: no zeroing of a buffer about to be overwritten.
        let mut buffer = Vec::with_capacity(capacity);
        self.file
            .seek(SeekFrom::Start(range.start))
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        (&mut self.file)
            .take(len)
            .read_to_end(&mut buffer)
            .map_err(|e| ParquetError::External(Box::new(e)))?;
        if buffer.len() != capacity {
            return Err(ParquetError::EOF(format!(
                "the file ended {} bytes into bytes {}..{}",
                buffer.len(),
                range.start,
                range.end
            )));
        }
        self.metrics.bytes_scanned.add(capacity);
        Ok(Bytes::from(buffer))
    }
}

impl Drop for LocalFile {
    fn drop(&mut self) {
        let read = self.metrics.bytes_scanned.value();
        self.metrics.scan_efficiency_ratio.add_part(read);
        let len = usize::try_from(self.len).unwrap_or(usize::MAX);
        self.metrics.scan_efficiency_ratio.set_total(len);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// A read gives the bytes asked for and counts them; a read past the end is an error that
    /// says what was asked; a file of another size than planned is not opened (the scan then
    /// reads through `object_store`, which reports the change).
    #[test]
    fn reads_in_place_are_bounded_and_counted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f.parquet");
        let bytes: Vec<u8> = (0..100u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let location = Path::from_filesystem_path(&path).unwrap();
        let metrics = ExecutionPlanMetricsSet::new();
        assert!(LocalFile::open(&location, 99, 0, &metrics).is_none());
        let mut file = LocalFile::open(&location, 100, 0, &metrics).unwrap();
        assert_eq!(file.read(10..20).unwrap().as_ref(), &bytes[10..20]);
        let both = file.read_ranges(vec![0..2, 98..100]).unwrap();
        assert_eq!(both[0].as_ref(), &bytes[0..2]);
        assert_eq!(both[1].as_ref(), &bytes[98..100]);
        assert_eq!(file.metrics.bytes_scanned.value(), 14);
        let past = file.read(90..101).unwrap_err().to_string();
        assert!(
            past.contains("90..101") && past.contains("100 bytes"),
            "{past}"
        );
        // The file cut short after it was opened: an error, not a short buffer.
        std::fs::write(&path, &bytes[..50]).unwrap();
        let short = file.read(40..60).unwrap_err().to_string();
        assert!(short.contains("40..60"), "{short}");
    }
}
