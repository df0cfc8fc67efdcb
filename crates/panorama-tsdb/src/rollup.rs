//! Hourly rollups of part blocks: for each hour a block touches, the count,
//! sum, min, max and last of its numeric values. Bucket queries at widths of
//! whole hours (1h … 1d) read them instead of decoding the block's points.
//!
//! Parts are immutable, so a block's rollup never goes stale. It is built
//! from the decoded block the first time a query needs it and kept in
//! memory with the part (not in the file, so the part format is unchanged);
//! after a restart the first coarse query over a range rebuilds them. The
//! memory they take is bounded by [`BUDGET`]; past it, blocks are decoded
//! as before.
//!
//! A rollup gives exactly what decoding gives: the hour's accumulator is
//! built point by point in time order, as `BucketAcc` builds a bucket's
//! share of one block, and then merged in. Only the order in which the
//! blocks of different series meet in a bucket may differ, which can change
//! the last bits of a sum over several series.

use crate::codec::Decoded;
use crate::query::acc_add;
use panorama_core::Bucket;
use panorama_core::series::Acc;

/// One hour in milliseconds.
pub(crate) const HOUR: i64 = 3_600_000;

/// Most bytes of rollups kept in memory over all parts (about 1.2 M
/// series-hours: ten days of 5,000 sensors).
pub(crate) const BUDGET: usize = 64 << 20;

/// A block's accumulators by hour start, ascending; hours without a number are absent.
pub(crate) type Rollup = Box<[(i64, Acc)]>;

/// Bytes one rollup entry takes.
pub(crate) const ENTRY_BYTES: usize = std::mem::size_of::<(i64, Acc)>();

/// Start of the hour holding `t` (UTC hours; Vietnamese time is a whole number of hours off).
pub(crate) fn hour_floor(t: i64) -> i64 {
    t.div_euclid(HOUR) * HOUR
}

/// Whether every bucket of `bucket` is a union of whole hours.
pub(crate) fn fits(bucket: Bucket) -> bool {
    bucket.millis() % HOUR == 0 && bucket.floor(0).rem_euclid(HOUR) == 0
}

/// Whether every hour a block over `[min_ts, max_ts]` touches lies in `[from, to)`.
pub(crate) fn covers(min_ts: i64, max_ts: i64, from: i64, to: i64) -> bool {
    hour_floor(min_ts) >= from && hour_floor(max_ts).saturating_add(HOUR) <= to
}

/// The rollup of a decoded block.
pub(crate) fn build(d: &Decoded) -> Rollup {
    let mut out: Vec<(i64, Acc)> = Vec::new();
    for (i, &t) in d.ts.iter().enumerate() {
        let Some(v) = d.number(i) else { continue };
        let h = hour_floor(t);
        match out.last_mut() {
            Some((last, a)) if *last == h => acc_add(a, t, v),
            _ => {
                let mut a = Acc::default();
                acc_add(&mut a, t, v);
                out.push((h, a));
            }
        }
    }
    out.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_whole_hour_buckets_aligned_on_hours_fit() {
        for (name, fit) in [
            ("1m", false),
            ("30m", false),
            ("1h", true),
            ("3h", true),
            ("1d", true),
        ] {
            let b = Bucket::parse(name).unwrap();
            assert_eq!(fits(b), fit, "{name}");
        }
    }

    #[test]
    fn a_block_is_covered_only_when_all_its_hours_are_in_range() {
        let h = HOUR;
        assert!(covers(h, 2 * h - 1, h, 2 * h));
        assert!(
            !covers(h + 1, 2 * h - 1, h + 1, 2 * h),
            "its first hour starts before from"
        );
        assert!(
            !covers(h, 2 * h, h, 2 * h),
            "its last point is in the next hour"
        );
        assert!(covers(-h, -1, -h, 0));
        assert!(
            !covers(i64::MAX - 5, i64::MAX, 0, i64::MAX - 1),
            "no overflow at the end of time"
        );
    }
}
