//! The rows of a scan's batches: fewer than the session's where its rows are wide.

/// Most bytes (uncompressed, of the columns it decodes) that a scan's batch holds. The reader
/// decodes a string column into views of its decompressed pages, so a batch keeps those pages
/// alive until it is consumed: DataFusion's 8 192 rows of a 300-400 byte payload keep 2.5-3 MiB
/// of pages per partition besides the ones being decompressed, all of it fresh heap the first
/// time (a page fault and the kernel zeroing every 4 KiB). Batches of about 1 MiB instead: on
/// the 10.5 M-event store, the 5145 LIKE (306 bytes a row: 3 426 rows a batch) took 4.4-4.7 K
/// page faults instead of 5.1-5.2 K and 0.90-0.99x the CPU (three sets of 21-61 alternating
/// runs, on a machine whose speed moved by 1.5x that hour: the wall times within its noise),
/// the LIKE over every event 0.94-0.98x the CPU; batches of 512 KiB took fewer faults still
/// (4.0-4.2 K) but the LIKE over every event 1.01x the CPU (more batches).
pub(super) const SCAN_BATCH_BYTES: u64 = 1 << 20;

/// Fewest rows a scan's batch is cut to, however wide its rows.
const LEAST_SCAN_BATCH_ROWS: usize = 1024;

/// The rows of a scan's batches when `batch` rows (the session's batch size) of its columns,
/// `bytes` (uncompressed) for `rows` rows, would hold more than [`SCAN_BATCH_BYTES`]; None
/// when they would not.
pub(super) fn scan_batch_rows(bytes: u64, rows: u64, batch: usize) -> Option<usize> {
    if rows == 0 {
        return None;
    }
    let per_row = (bytes / rows).max(1);
    let fit = usize::try_from(SCAN_BATCH_BYTES / per_row).unwrap_or(usize::MAX);
    let fit = fit.max(LEAST_SCAN_BATCH_ROWS);
    (fit < batch).then_some(fit)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rows of a scan's batches: about 1 MiB of the columns it decodes, never fewer than
    /// 1 024, and the session's own when those are smaller.
    #[test]
    fn wide_rows_are_read_in_smaller_batches() {
        // 306 bytes a row (the 10.5 M-event store's 5145 LIKE): 1 MiB / 306.
        assert_eq!(scan_batch_rows(306 * 1000, 1000, 8192), Some(3426));
        // Narrow rows: the session's batches hold less than 1 MiB.
        assert_eq!(scan_batch_rows(64 * 1000, 1000, 8192), None);
        // Rows of 8 KiB: never fewer than 1 024 rows.
        assert_eq!(scan_batch_rows(8192 * 1000, 1000, 8192), Some(1024));
        // A session batch size smaller than what fits is kept.
        assert_eq!(scan_batch_rows(306 * 1000, 1000, 2048), None);
        assert_eq!(scan_batch_rows(0, 0, 8192), None);
    }
}
