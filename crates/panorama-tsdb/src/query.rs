//! Reads: a consistent snapshot of memtable and parts is taken under the
//! read side of the install gate, then part blocks are read (coalesced into
//! few positional reads) and decoded outside it.
//!
//! Every source (a part block, a frozen generation, the active memtable) is
//! sorted with one value per time. When a series' sources do not overlap in
//! time (the usual case: successive flushes hold successive hours) they are
//! simply concatenated; otherwise they are merged, and for a time present in
//! several the newest source wins (active > frozen by generation > parts by
//! `max_seq`).

use crate::codec::{Decoded, decode_block};
use crate::engine::Shared;
use crate::memtable::{SeriesBuf, read};
use crate::part::{BlockMeta, Part};
use crate::rollup;
use crate::{MAX_SERIES, TsValue, TsdbError};
use panorama_core::Bucket;
use panorama_core::series::Acc;
use std::collections::BTreeMap;
use std::sync::Arc;

const PRIO_FROZEN: u64 = 1 << 62;
const PRIO_ACTIVE: u64 = u64::MAX;
/// Blocks closer than this in a file are read with one call.
const READ_GAP: u64 = 64 << 10;
const READ_SPAN: u64 = 4 << 20;
/// Bucket queries over this many series use two threads.
const PARALLEL_SERIES: usize = 256;
/// Bucket counts up to this use a dense vector.
const DENSE_BUCKETS: i128 = 200_000;
/// Bucket queries clamp times to about ±36 million years so bucket arithmetic cannot overflow.
const TIME_BOUND: i64 = 1 << 60;

/// A sorted run of (time, value) with its priority.
pub(crate) type Run<V> = (u64, Vec<(i64, V)>);
/// A series whose sources overlap in time: the memtable points inside the
/// overlap window, its blocks, and the window (inclusive).
type MergeWork = (Vec<Run<Option<f64>>>, Vec<BlockRef>, (i64, i64));
/// A block of the part at this index in a snapshot.
pub(crate) type BlockRef = (usize, BlockMeta);

fn overlaps(b: &BlockMeta, from: i64, to: i64) -> bool {
    b.max_ts >= from && b.min_ts < to
}

/// Reads the given blocks, coalescing neighbours, and hands each one's bytes to `f`.
pub(crate) fn read_blocks(
    parts: &[Arc<Part>],
    refs: &mut [BlockRef],
    mut f: impl FnMut(usize, &BlockMeta, &[u8]) -> Result<(), TsdbError>,
) -> Result<(), TsdbError> {
    refs.sort_unstable_by_key(|(p, b)| (*p, b.offset));
    let mut buf = Vec::new();
    let mut i = 0;
    while let Some(&(pi, first)) = refs.get(i) {
        let start = first.offset;
        let mut end = start + u64::from(first.len);
        let mut j = i + 1;
        while let Some(&(pj, b)) = refs.get(j) {
            let b_end = b.offset + u64::from(b.len);
            if pj != pi || b.offset > end + READ_GAP || b_end - start > READ_SPAN {
                break;
            }
            end = end.max(b_end);
            j += 1;
        }
        let part = parts
            .get(pi)
            .ok_or_else(|| TsdbError::Corrupt("block of an unknown part".into()))?;
        buf.resize((end - start) as usize, 0);
        part.read(start, &mut buf)?;
        for (pi, b) in refs.get(i..j).unwrap_or_default() {
            let s = (b.offset - start) as usize;
            let bytes = buf
                .get(s..s + b.len as usize)
                .ok_or_else(|| TsdbError::Corrupt("block outside its read".into()))?;
            f(*pi, b, bytes)?;
        }
        i = j;
    }
    Ok(())
}

/// Merges sorted runs into one sorted run with one value per time, the
/// highest priority winning; at most `limit` values, oldest first.
pub(crate) fn merge_runs<V>(mut runs: Vec<Run<V>>, limit: usize) -> Vec<(i64, V)> {
    runs.retain(|(_, r)| !r.is_empty());
    runs.sort_by_key(|(_, r)| r.first().map_or(i64::MIN, |e| e.0));
    let disjoint = runs
        .windows(2)
        .all(|w| match (w[0].1.last(), w[1].1.first()) {
            (Some(a), Some(b)) => a.0 < b.0,
            _ => true,
        });
    let mut out = Vec::new();
    if disjoint {
        for (_, r) in runs {
            let take = limit - out.len();
            out.extend(r.into_iter().take(take));
            if out.len() >= limit {
                break;
            }
        }
        return out;
    }
    // Overlapping runs (a flush boundary crossed by late points, or a
    // re-import): a k-way merge, taking at each time the value of the
    // highest priority (the later run on a tie). Runs are few, so the heads
    // are scanned rather than kept in a heap.
    type Head<V> = (u64, std::iter::Peekable<std::vec::IntoIter<(i64, V)>>);
    let mut heads: Vec<Head<V>> = runs
        .into_iter()
        .map(|(p, r)| (p, r.into_iter().peekable()))
        .collect();
    while out.len() < limit {
        let Some(t) = heads
            .iter_mut()
            .filter_map(|(_, it)| it.peek().map(|e| e.0))
            .min()
        else {
            break;
        };
        let mut best: Option<(u64, V)> = None;
        for (p, it) in &mut heads {
            if it.peek().is_some_and(|e| e.0 == t)
                && let Some((_, v)) = it.next()
                && best.as_ref().is_none_or(|(bp, _)| *p >= *bp)
            {
                best = Some((*p, v));
            }
        }
        if let Some((_, v)) = best {
            out.push((t, v));
        }
    }
    out
}

fn copy_range(buf: &SeriesBuf, from: i64, to: i64) -> Vec<(i64, TsValue)> {
    let (lo, hi) = buf.bounds(from, to);
    match buf {
        SeriesBuf::Num(v) => v
            .get(lo..hi)
            .unwrap_or_default()
            .iter()
            .map(|&(t, x)| (t, TsValue::Number(x)))
            .collect(),
        SeriesBuf::Any(v) => v.get(lo..hi).unwrap_or_default().to_vec(),
    }
}

fn copy_numbers(buf: &SeriesBuf, lo: usize, hi: usize) -> Vec<(i64, Option<f64>)> {
    match buf {
        SeriesBuf::Num(v) => v
            .get(lo..hi)
            .unwrap_or_default()
            .iter()
            .map(|&(t, x)| (t, Some(x)))
            .collect(),
        SeriesBuf::Any(v) => v
            .get(lo..hi)
            .unwrap_or_default()
            .iter()
            .map(|(t, x)| {
                (
                    *t,
                    if let TsValue::Number(n) = x {
                        Some(*n)
                    } else {
                        None
                    },
                )
            })
            .collect(),
    }
}

impl Shared {
    pub(crate) fn range(
        &self,
        series: u32,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(i64, TsValue)>, TsdbError> {
        if from >= to || limit == 0 || series >= MAX_SERIES {
            return Ok(Vec::new());
        }
        let mut runs: Vec<Run<TsValue>> = Vec::new();
        let parts = {
            let _gate = read(&self.gate);
            let (lock, local) = self.mem.shard(series);
            let shard = read(lock);
            for f in &shard.frozen {
                if let Some(buf) = f.series.get(local) {
                    runs.push((PRIO_FROZEN + f.gen_, copy_range(buf, from, to)));
                }
            }
            if let Some(buf) = shard.active.get(local) {
                runs.push((PRIO_ACTIVE, copy_range(buf, from, to)));
            }
            read(&self.parts).clone()
        };
        let mut refs: Vec<BlockRef> = Vec::new();
        for (pi, p) in parts.iter().enumerate() {
            refs.extend(
                p.blocks(series)
                    .iter()
                    .filter(|b| overlaps(b, from, to))
                    .map(|b| (pi, *b)),
            );
        }
        let mut d = Decoded::default();
        read_blocks(&parts, &mut refs, |pi, _, bytes| {
            decode_block(bytes, &mut d)?;
            let lo = d.ts.partition_point(|t| *t < from);
            let hi = d.ts.partition_point(|t| *t < to);
            let prio = parts.get(pi).map_or(0, |p| p.max_seq);
            let run = (lo..hi)
                .filter_map(|i| Some((*d.ts.get(i)?, d.value(i)?)))
                .collect();
            runs.push((prio, run));
            Ok(())
        })?;
        Ok(merge_runs(runs, limit))
    }

    pub(crate) fn buckets(
        &self,
        series: &[u32],
        from: i64,
        to: i64,
        bucket: Bucket,
    ) -> Result<Vec<(i64, Acc)>, TsdbError> {
        let (from, to) = (
            from.clamp(-TIME_BOUND, TIME_BOUND),
            to.clamp(-TIME_BOUND, TIME_BOUND),
        );
        if from >= to {
            return Ok(Vec::new());
        }
        let mut ids: Vec<u32> = series.iter().copied().filter(|s| *s < MAX_SERIES).collect();
        ids.sort_unstable();
        ids.dedup();
        if ids.len() < PARALLEL_SERIES {
            return Ok(self.accumulate(&ids, from, to, bucket)?.finish());
        }
        // Large queries use a second thread for half the series.
        let (a, b) = ids.split_at(ids.len() / 2);
        let (ra, rb) = std::thread::scope(|scope| {
            let other = std::thread::Builder::new()
                .name("tsdb-query".into())
                .spawn_scoped(scope, || self.accumulate(b, from, to, bucket));
            let ra = self.accumulate(a, from, to, bucket);
            let rb = match other {
                Ok(h) => h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)),
                Err(_) => self.accumulate(b, from, to, bucket), // no thread to be had: do it here
            };
            (ra, rb)
        });
        let mut acc = ra?;
        acc.absorb(rb?);
        Ok(acc.finish())
    }

    /// Accumulates the numeric values of `ids` (sorted, distinct) in `[from, to)`.
    fn accumulate(
        &self,
        ids: &[u32],
        from: i64,
        to: i64,
        bucket: Bucket,
    ) -> Result<BucketAcc, TsdbError> {
        let mut acc = BucketAcc::new(bucket, from, to);
        let mut direct: Vec<BlockRef> = Vec::new();
        let mut merges: Vec<MergeWork> = Vec::new();
        let parts = {
            let _gate = read(&self.gate);
            let parts = read(&self.parts).clone();
            let mut blocks: Vec<BlockRef> = Vec::new();
            let mut spans: Vec<(i64, i64)> = Vec::new();
            for &s in ids {
                blocks.clear();
                spans.clear();
                for (pi, p) in parts.iter().enumerate() {
                    for b in p.blocks(s).iter().filter(|b| overlaps(b, from, to)) {
                        blocks.push((pi, *b));
                        spans.push((b.min_ts.max(from), b.max_ts.min(to - 1)));
                    }
                }
                let (lock, local) = self.mem.shard(s);
                let shard = read(lock);
                let mut mem: Vec<(u64, &SeriesBuf, usize, usize)> = Vec::new();
                let frozen = shard
                    .frozen
                    .iter()
                    .filter_map(|f| Some((PRIO_FROZEN + f.gen_, f.series.get(local)?)));
                let active = shard.active.get(local).map(|b| (PRIO_ACTIVE, b));
                for (prio, buf) in frozen.chain(active) {
                    let (lo, hi) = buf.bounds(from, to);
                    if let (Some(a), Some(b)) = (buf.ts(lo), buf.ts(hi.wrapping_sub(1)))
                        && lo < hi
                    {
                        mem.push((prio, buf, lo, hi));
                        spans.push((a, b));
                    }
                }
                spans.sort_unstable();
                if spans.windows(2).all(|w| w[0].1 < w[1].0) {
                    for &(_, buf, lo, hi) in &mem {
                        acc.add_buf(buf, lo, hi);
                    }
                    direct.extend_from_slice(&blocks);
                } else {
                    // Sources overlap only where a flush boundary was crossed
                    // by late points (or data was re-imported): merge inside
                    // the window holding every overlap, add the rest directly.
                    let window = overlap_window(&spans);
                    let (ws, we) = window;
                    let mut runs = Vec::with_capacity(mem.len());
                    for &(prio, buf, lo, hi) in &mem {
                        let (a, b) = buf.bounds(ws, we.saturating_add(1));
                        let (a, b) = (a.clamp(lo, hi), b.clamp(lo, hi));
                        acc.add_buf(buf, lo, a);
                        acc.add_buf(buf, b, hi);
                        runs.push((prio, copy_numbers(buf, a, b)));
                    }
                    merges.push((runs, blocks.clone(), window));
                }
            }
            parts
        };
        // Blocks wholly inside the range, at buckets of whole hours, are
        // read from their hourly rollups (built here the first time).
        let hourly = rollup::fits(bucket);
        let may_cache =
            hourly && parts.iter().map(|p| p.rollup_bytes()).sum::<usize>() < rollup::BUDGET;
        if hourly {
            direct.retain(|(pi, b)| {
                if !rollup::covers(b.min_ts, b.max_ts, from, to) {
                    return true;
                }
                match parts.get(*pi).and_then(|p| p.rollup(b)) {
                    Some(r) => {
                        acc.add_rollup(r);
                        false
                    }
                    None => true,
                }
            });
        }
        let mut d = Decoded::default();
        read_blocks(&parts, &mut direct, |pi, b, bytes| {
            decode_block(bytes, &mut d)?;
            let cached = (may_cache && rollup::covers(b.min_ts, b.max_ts, from, to))
                .then(|| parts.get(pi)?.set_rollup(b, &d))
                .flatten();
            match cached {
                Some(r) => acc.add_rollup(r),
                None => acc.add_decoded(&d, from, to),
            }
            Ok(())
        })?;
        for (mut runs, mut blocks, (ws, we)) in merges {
            read_blocks(&parts, &mut blocks, |pi, _, bytes| {
                decode_block(bytes, &mut d)?;
                // Spans are clamped to [from, to), so `ws >= from` and `we < to`.
                acc.add_decoded(&d, from, ws);
                acc.add_decoded(&d, we.saturating_add(1), to);
                let lo = d.ts.partition_point(|t| *t < ws);
                let hi = d.ts.partition_point(|t| *t <= we);
                let run = (lo..hi)
                    .filter_map(|i| Some((*d.ts.get(i)?, d.number(i))))
                    .collect();
                runs.push((parts.get(pi).map_or(0, |p| p.max_seq), run));
                Ok(())
            })?;
            acc.add_sorted(
                merge_runs(runs, usize::MAX)
                    .into_iter()
                    .filter_map(|(t, v)| Some((t, v?))),
            );
        }
        Ok(acc)
    }
}

/// The smallest window (inclusive) holding every time covered by two or more
/// of the spans (sorted by start); outside it each time has one source.
fn overlap_window(spans: &[(i64, i64)]) -> (i64, i64) {
    let mut reach = i64::MIN;
    let mut window: Option<(i64, i64)> = None;
    for &(a, b) in spans {
        if a <= reach {
            let end = b.min(reach);
            window = Some(match window {
                Some((ws, we)) => (ws.min(a), we.max(end)),
                None => (a, end),
            });
        }
        reach = reach.max(b);
    }
    window.unwrap_or((i64::MIN, i64::MAX))
}

/// Accumulators by bucket start. Points arrive in time order per run, so
/// the next point is almost always in the current bucket or the one after:
/// that case costs a comparison, not a division.
struct BucketAcc {
    bucket: Bucket,
    width: i64,
    origin: i64,
    /// One accumulator per bucket of `[from, to)` when there are few enough.
    dense: Vec<Acc>,
    sparse: BTreeMap<i64, Acc>,
    use_dense: bool,
    cur: Acc,
    cur_idx: usize,
    cur_start: i64,
    cur_end: i64,
}

impl BucketAcc {
    fn new(bucket: Bucket, from: i64, to: i64) -> Self {
        let width = bucket.millis().max(1);
        let origin = bucket.floor(from);
        let n = (i128::from(bucket.floor(to - 1)) - i128::from(origin)) / i128::from(width) + 1;
        let use_dense = n <= DENSE_BUCKETS;
        let dense = if use_dense {
            vec![Acc::default(); n.max(0) as usize]
        } else {
            Vec::new()
        };
        Self {
            bucket,
            width,
            origin,
            dense,
            sparse: BTreeMap::new(),
            use_dense,
            cur: Acc::default(),
            cur_idx: 0,
            // Dense: the first bucket. Sparse: no bucket yet (every time is outside it).
            cur_start: if use_dense { origin } else { i64::MAX },
            cur_end: i64::MIN,
        }
    }

    /// Moves the sparse accumulator into its map entry.
    fn settle(&mut self) {
        if self.cur.count > 0 {
            self.sparse
                .entry(self.cur_start)
                .or_default()
                .merge(&self.cur);
            self.cur = Acc::default();
        }
    }

    /// Adds points; cheapest when they come in time order.
    #[inline]
    fn add_sorted(&mut self, points: impl Iterator<Item = (i64, f64)>) {
        let (width, origin, bucket) = (self.width, self.origin, self.bucket);
        let (mut idx, mut start) = (self.cur_idx, self.cur_start);
        if self.use_dense {
            // `start` is always a real bucket start here (it begins at `origin`),
            // and every t is in [from, to), so the offsets below cannot wrap.
            // Points of one bucket are summed in `cur` (registers), which is
            // folded into the bucket's slot when the bucket changes.
            let w = width as u64;
            let dense = &mut self.dense[..];
            let mut cur = Acc::default();
            for (t, v) in points {
                let off = t.wrapping_sub(start) as u64;
                if off >= w {
                    if let Some(a) = dense.get_mut(idx) {
                        acc_merge(a, &cur);
                    }
                    cur = Acc::default();
                    if off < 2 * w {
                        idx += 1;
                        start += width;
                    } else {
                        idx = ((bucket.floor(t) - origin) / width) as usize;
                        start = origin + idx as i64 * width;
                    }
                }
                acc_add(&mut cur, t, v);
            }
            if let Some(a) = dense.get_mut(idx) {
                acc_merge(a, &cur);
            }
        } else {
            let mut end = self.cur_end;
            for (t, v) in points {
                if t < start || t >= end {
                    if self.cur.count > 0 {
                        self.sparse.entry(start).or_default().merge(&self.cur);
                        self.cur = Acc::default();
                    }
                    start = bucket.floor(t);
                    end = start.saturating_add(width);
                }
                acc_add(&mut self.cur, t, v);
            }
            self.cur_end = end;
        }
        (self.cur_idx, self.cur_start) = (idx, start);
    }

    /// Adds a block's hourly accumulators; every hour must lie in `[from, to)`
    /// and the bucket must be whole hours ([`rollup::fits`]).
    fn add_rollup(&mut self, r: &[(i64, Acc)]) {
        for (h, a) in r {
            let start = self.bucket.floor(*h);
            if self.use_dense {
                let idx = ((start - self.origin) / self.width) as usize;
                if let Some(slot) = self.dense.get_mut(idx) {
                    acc_merge(slot, a);
                }
            } else {
                self.sparse.entry(start).or_default().merge(a);
            }
        }
    }

    fn add_buf(&mut self, buf: &SeriesBuf, lo: usize, hi: usize) {
        match buf {
            SeriesBuf::Num(v) => self.add_sorted(v.get(lo..hi).unwrap_or_default().iter().copied()),
            SeriesBuf::Any(v) => {
                self.add_sorted(v.get(lo..hi).unwrap_or_default().iter().filter_map(
                    |(t, x)| match x {
                        TsValue::Number(x) => Some((*t, *x)),
                        _ => None,
                    },
                ))
            }
        }
    }

    fn add_decoded(&mut self, d: &Decoded, from: i64, to: i64) {
        let lo = d.ts.partition_point(|t| *t < from);
        let hi = d.ts.partition_point(|t| *t < to);
        let ts = d.ts.get(lo..hi).unwrap_or_default();
        if d.is_numeric() {
            self.add_sorted(
                ts.iter()
                    .copied()
                    .zip(d.nums.get(lo..hi).unwrap_or_default().iter().copied()),
            );
        } else {
            self.add_sorted(
                ts.iter()
                    .zip(d.any.get(lo..hi).unwrap_or_default())
                    .filter_map(|(t, x)| match x {
                        TsValue::Number(x) => Some((*t, *x)),
                        _ => None,
                    }),
            );
        }
    }

    /// Folds in another accumulator made for the same bucket and range.
    fn absorb(&mut self, mut other: BucketAcc) {
        if self.use_dense {
            for (a, b) in self.dense.iter_mut().zip(&other.dense) {
                if b.count > 0 {
                    a.merge(b);
                }
            }
        } else {
            self.settle();
            other.settle();
            for (k, b) in other.sparse {
                self.sparse.entry(k).or_default().merge(&b);
            }
        }
    }

    fn finish(mut self) -> Vec<(i64, Acc)> {
        if !self.use_dense {
            self.settle();
        }
        if self.use_dense {
            let (origin, width) = (self.origin, self.width);
            self.dense
                .into_iter()
                .enumerate()
                .filter(|(_, a)| a.count > 0)
                .map(|(i, a)| (origin + i as i64 * width, a))
                .collect()
        } else {
            self.sparse.into_iter().collect()
        }
    }
}

/// [`Acc::add`], restated here so the hot loop inlines it (it lives in
/// another crate); `acc_add_is_acc_add` checks they agree.
#[inline(always)]
pub(crate) fn acc_add(a: &mut Acc, t: i64, v: f64) {
    a.count += 1;
    a.sum += v;
    // As f64::min/max (a NaN v leaves them alone; they never become NaN), in one instruction each.
    a.min = if v < a.min { v } else { a.min };
    a.max = if v > a.max { v } else { a.max };
    if t >= a.last_t {
        a.last_t = t;
        a.last = v;
    }
}

/// [`Acc::merge`], restated for the same reason; `acc_merge_is_acc_merge` checks.
#[inline(always)]
fn acc_merge(a: &mut Acc, o: &Acc) {
    a.count += o.count;
    a.sum += o.sum;
    a.min = if o.min < a.min { o.min } else { a.min };
    a.max = if o.max > a.max { o.max } else { a.max };
    if o.last_t >= a.last_t {
        a.last_t = o.last_t;
        a.last = o.last;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn acc_add_is_acc_add(points in prop::collection::vec((-5i64..5, prop_oneof![any::<f64>(), Just(f64::NAN)]), 0..20)) {
            let (mut a, mut b) = (Acc::default(), Acc::default());
            for (t, v) in points {
                a.add(t, v);
                acc_add(&mut b, t, v);
            }
            prop_assert_eq!(a.count, b.count);
            prop_assert_eq!(a.sum.to_bits(), b.sum.to_bits());
            prop_assert!(a.min == b.min && a.max == b.max, "{:?} {:?}", a, b); // 0.0 == -0.0: either may win
            prop_assert_eq!(a.last_t, b.last_t);
            prop_assert_eq!(a.last.to_bits(), b.last.to_bits());
        }

        #[test]
        fn acc_merge_is_acc_merge(parts in prop::collection::vec(prop::collection::vec((-5i64..5, prop_oneof![any::<f64>(), Just(f64::NAN)]), 0..5), 0..6)) {
            let (mut a, mut b) = (Acc::default(), Acc::default());
            for points in parts {
                let mut p = Acc::default();
                for (t, v) in points {
                    p.add(t, v);
                }
                a.merge(&p);
                acc_merge(&mut b, &p);
            }
            prop_assert_eq!(a.count, b.count);
            prop_assert_eq!(a.sum.to_bits(), b.sum.to_bits());
            prop_assert!(a.min == b.min && a.max == b.max, "{:?} {:?}", a, b);
            prop_assert_eq!(a.last_t, b.last_t);
            prop_assert_eq!(a.last.to_bits(), b.last.to_bits());
        }
    }
}
