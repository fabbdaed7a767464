//! A row group cut at piece boundaries: which part of its cost goes to which piece, and the
//! rows of each part.
//!
//! A row group is the scan's unit of work unless a piece carries a selection of its rows. On
//! the 10.5 M-event store one row group holds 131 072 rows: a filter that keeps three or four
//! of them left one partition decoding the last one alone while the other had finished. Cut at
//! the boundaries between pieces, each part of a row group is read by one piece, which skips
//! the other parts' rows: whole pages of them by their headers, without decompressing them;
//! a part costs a fetch of the column chunks it reads and, at its ends, the pages it shares
//! with its neighbours.

use datafusion::datasource::physical_plan::parquet::RowGroupAccess;
use parquet::arrow::arrow_reader::{RowSelection, RowSelector};

/// No part of a row group is cut off with fewer selected rows than this (two of DataFusion's
/// batches): below it, what a part costs to open outweighs what it shares.
pub(super) const LEAST_PART_ROWS: usize = 16_384;
/// The same where the rows are those that pass the filter's conditions on a key column
/// ([`super::exact`]): each is decoded whole, payload and all, so far fewer make a part worth
/// its opening.
pub(super) const LEAST_EXACT_PART_ROWS: usize = 1_024;

/// The offsets into a row group's cost `cost` (which starts at `before` of all the pieces'
/// cost `total`, cut into `count` pieces) at which it is cut: the piece boundaries that fall
/// inside it, leaving no part cheaper than a quarter of a piece.
pub(super) fn cuts(before: u64, cost: u64, total: u64, count: u64) -> Vec<u64> {
    let count = count.max(1);
    let least = (total / count / 4).max(1);
    let mut found = Vec::new();
    let mut last = 0u64;
    for k in 1..count {
        let boundary = u128::from(total) * u128::from(k) / u128::from(count);
        let Ok(boundary) = u64::try_from(boundary) else {
            continue;
        };
        if boundary <= before || boundary >= before.saturating_add(cost) {
            continue;
        }
        let at = boundary - before;
        if at - last >= least && cost - at >= least {
            found.push(at);
            last = at;
        }
    }
    found
}

/// How many rows `rows` (a row group's access, of `num_rows` rows) selects.
pub(super) fn selected(rows: &RowGroupAccess, num_rows: usize) -> usize {
    match rows {
        RowGroupAccess::Skip => 0,
        RowGroupAccess::Scan => num_rows,
        RowGroupAccess::Selection(selection) => selection.row_count(),
    }
}

/// The part of `rows` (a row group's access, of `num_rows` rows) made of the selected rows
/// whose rank among the selected is in `from..to`, as an access of the whole row group (every
/// other row skipped).
pub(super) fn part_of(
    rows: &RowGroupAccess,
    num_rows: usize,
    from: usize,
    to: usize,
) -> RowGroupAccess {
    let whole = [RowSelector::select(num_rows)];
    let selectors: Vec<RowSelector> = match rows {
        RowGroupAccess::Skip => return RowGroupAccess::Skip,
        RowGroupAccess::Scan => whole.to_vec(),
        RowGroupAccess::Selection(selection) => selection.iter().copied().collect(),
    };
    if from == 0 && to >= selected(rows, num_rows) {
        return rows.clone();
    }
    let mut part = Vec::with_capacity(selectors.len() + 2);
    let mut rank = 0usize;
    for selector in selectors {
        if selector.skip {
            part.push(selector);
            continue;
        }
        let start = rank;
        let end = rank + selector.row_count;
        rank = end;
        let a = from.clamp(start, end);
        let b = to.clamp(a, end);
        part.push(RowSelector::skip(a - start));
        part.push(RowSelector::select(b - a));
        part.push(RowSelector::skip(end - b));
    }
    RowGroupAccess::Selection(RowSelection::from(part))
}

/// A row group of `cost`, starting at `before` of `total` cut into `count` pieces, with
/// `rows` of its `num_rows` rows to read: its parts, each with the piece it belongs to (the
/// one its middle falls in), its cost and its rows; no part with fewer than `least` rows. Not
/// cut unless `cut` (a file read from a remote store would be fetched once a part).
pub(super) fn parts(
    (before, cost): (u64, u64),
    total: u64,
    count: usize,
    (rows, num_rows): (&RowGroupAccess, usize),
    least: usize,
    cut: bool,
) -> Vec<(usize, u64, RowGroupAccess)> {
    let count64 = u64::try_from(count).unwrap_or(u64::MAX).max(1);
    let piece_of = |middle: u64| {
        let piece = u128::from(middle) * u128::from(count64) / u128::from(total.max(1));
        usize::try_from(piece)
            .unwrap_or(usize::MAX)
            .min(count.max(1) - 1)
    };
    let selected = selected(rows, num_rows);
    let offsets = if cut && selected >= 2 * least {
        cuts(before, cost, total, count64)
    } else {
        Vec::new()
    };
    if offsets.is_empty() {
        return vec![(piece_of(before + cost / 2), cost, rows.clone())];
    }
    let rank = |offset: u64| {
        let rank = u128::from(offset) * selected as u128 / u128::from(cost.max(1));
        usize::try_from(rank).unwrap_or(selected).min(selected)
    };
    // Cuts that would leave a part with too few rows are not made.
    let mut bounds = vec![0u64];
    for at in offsets {
        let last = bounds.last().copied().unwrap_or(0);
        if rank(at) - rank(last) >= least && selected - rank(at) >= least {
            bounds.push(at);
        }
    }
    bounds.push(cost);
    bounds
        .windows(2)
        .map(|pair| {
            let (lo, hi) = (pair[0], pair[1]);
            let rows = part_of(rows, num_rows, rank(lo), rank(hi));
            (piece_of(before + lo + (hi - lo) / 2), hi - lo, rows)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ranges(rows: &RowGroupAccess) -> Vec<(bool, usize)> {
        match rows {
            RowGroupAccess::Selection(s) => s.iter().map(|s| (s.skip, s.row_count)).collect(),
            RowGroupAccess::Scan => vec![(false, usize::MAX)],
            RowGroupAccess::Skip => vec![(true, usize::MAX)],
        }
    }

    /// Cuts fall on the boundaries between pieces inside the row group, none leaving a part
    /// cheaper than a quarter of a piece.
    #[test]
    fn row_groups_are_cut_at_the_boundaries_between_pieces() {
        // 4 pieces of 100: a row group from 50 to 250 crosses 100 and 200.
        assert_eq!(cuts(50, 200, 400, 4), vec![50, 150]);
        // One from 90 to 190: 100 is 10 in, a tenth of a piece: not cut.
        assert_eq!(cuts(90, 100, 400, 4), Vec::<u64>::new());
        // Inside one piece, or ending on a boundary: not cut.
        assert_eq!(cuts(110, 80, 400, 4), Vec::<u64>::new());
        assert_eq!(cuts(0, 100, 400, 4), Vec::<u64>::new());
        // The whole of the cost in one row group: cut into the pieces.
        assert_eq!(cuts(0, 400, 400, 4), vec![100, 200, 300]);
        assert_eq!(cuts(0, 0, 0, 0), Vec::<u64>::new());
    }

    /// A part is the selected rows of a rank range, every other row skipped, covering the row
    /// group; the parts of a selection add up to it.
    #[test]
    fn parts_keep_the_selected_rows_in_order() {
        let scan = RowGroupAccess::Scan;
        assert_eq!(
            ranges(&part_of(&scan, 100, 10, 40)),
            vec![(true, 10), (false, 30), (true, 60)]
        );
        assert_eq!(part_of(&scan, 100, 0, 100), scan);
        let selection = RowGroupAccess::Selection(RowSelection::from(vec![
            RowSelector::skip(10),
            RowSelector::select(20),
            RowSelector::skip(30),
            RowSelector::select(40),
        ]));
        // Selected ranks 15..30: 5 of the first run, 10 of the second.
        assert_eq!(
            ranges(&part_of(&selection, 100, 15, 30)),
            vec![(true, 25), (false, 5), (true, 30), (false, 10), (true, 30)]
        );
        assert_eq!(
            part_of(&RowGroupAccess::Skip, 100, 0, 10),
            RowGroupAccess::Skip
        );
        assert_eq!(selected(&selection, 100), 60);
    }

    /// A row group of 131 072 rows that is all the cost is cut into the pieces, each part with
    /// its share of the rows and the cost; a small one is not cut.
    #[test]
    fn parts_share_rows_and_cost() {
        // A row group read whole, of `rows` rows and cost 4000, cut into four pieces.
        let whole = |rows, cut| {
            parts(
                (0, 4000),
                4000,
                4,
                (&RowGroupAccess::Scan, rows),
                LEAST_PART_ROWS,
                cut,
            )
        };
        let found = whole(131_072, true);
        let pieces: Vec<usize> = found.iter().map(|p| p.0).collect();
        assert_eq!(pieces, vec![0, 1, 2, 3]);
        assert!(found.iter().all(|p| p.1 == 1000));
        let mut rows = 0;
        for (_, _, part) in &found {
            let r = ranges(part);
            let selected: usize = r.iter().filter(|s| !s.0).map(|s| s.1).sum();
            assert_eq!(selected, 32_768, "{r:?}");
            assert_eq!(r.iter().map(|s| s.1).sum::<usize>(), 131_072);
            rows += selected;
        }
        assert_eq!(rows, 131_072);
        // Fewer rows than two least parts: whole.
        let rows = 2 * LEAST_PART_ROWS - 1;
        let small = whole(rows, true);
        assert_eq!(small, vec![(2, 4000, RowGroupAccess::Scan)]);
        // Enough for two parts only: one cut, at the middle boundary.
        let rows = 2 * LEAST_PART_ROWS + 100;
        let two = whole(rows, true);
        let two: Vec<(usize, u64)> = two.iter().map(|p| (p.0, p.1)).collect();
        assert_eq!(two, vec![(1, 2000), (3, 2000)]);
        // Not to be cut (a remote file): whole.
        let remote = whole(131_072, false);
        assert_eq!(remote, vec![(2, 4000, RowGroupAccess::Scan)]);
    }
}
