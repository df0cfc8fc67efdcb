//! The in-memory state: per series the latest value and the recent points
//! not yet in a part, split over [`SHARDS`] locks so that readers of one
//! series rarely wait for the writer.
//!
//! Each series' points are kept sorted by time with one value per time (a
//! later write to the same time replaces the earlier), so reads need no
//! sorting. Writes in time order append; an out-of-order write is appended
//! and the series re-sorted once at the end of its write group.
//!
//! When a flush starts, the writer moves each shard's points into a frozen
//! generation ([`Frozen`]) that stays readable until its part is installed.

use crate::{Point, TsValue};
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

/// Number of shards; series `s` lives in shard `s % SHARDS` at `s / SHARDS`.
pub(crate) const SHARDS: usize = 64;

pub(crate) fn locate(series: u32) -> (usize, usize) {
    (series as usize % SHARDS, series as usize / SHARDS)
}

pub(crate) fn series_id(shard: usize, local: usize) -> u32 {
    (local * SHARDS + shard) as u32
}

pub(crate) fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(l: &RwLock<T>) -> RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

/// The points of one series, sorted by time, one per time.
#[derive(Debug, Clone)]
pub(crate) enum SeriesBuf {
    /// Only numbers so far (16 bytes a point).
    Num(Vec<(i64, f64)>),
    /// Anything.
    Any(Vec<(i64, TsValue)>),
}

impl Default for SeriesBuf {
    fn default() -> Self {
        Self::Num(Vec::new())
    }
}

/// Appends keeping order where it is cheap; returns (points added, re-sort needed).
fn push<V>(v: &mut Vec<(i64, V)>, ts: i64, val: V) -> (usize, bool) {
    match v.last_mut() {
        Some(last) if last.0 == ts => {
            last.1 = val;
            (0, false)
        }
        Some(last) if last.0 > ts => {
            v.push((ts, val));
            (1, true)
        }
        _ => {
            v.push((ts, val));
            (1, false)
        }
    }
}

/// Sorts by time keeping, for equal times, the value written last; returns
/// how many were dropped. `v[..sorted]` is already sorted with one value per
/// time, so only the part from where the later points belong is re-sorted:
/// a few late points cost little however long the series is.
fn sort_dedup<V>(v: &mut Vec<(i64, V)>, sorted: usize) -> usize {
    let sorted = sorted.min(v.len());
    let (head, tail) = v.split_at(sorted);
    let Some(min_tail) = tail.iter().map(|e| e.0).min() else {
        return 0;
    };
    // Everything before `lo` is older than every later point: untouched.
    // Late points are usually only a little late, so search back from the
    // end (galloping) rather than bisect the whole series, which would touch
    // cold memory.
    let mut step = 1;
    let mut hi = head.len();
    while hi > 0 {
        let probe = hi.saturating_sub(step);
        if head.get(probe).is_some_and(|e| e.0 < min_tail) {
            break;
        }
        hi = probe;
        step *= 2;
    }
    let from = hi.saturating_sub(step);
    let lo = from
        + head
            .get(from..hi)
            .unwrap_or_default()
            .partition_point(|e| e.0 < min_tail);
    let before = v.len();
    let Some(region) = v.get_mut(lo..) else {
        return 0;
    };
    region.sort_by_key(|e| e.0); // stable: equal times stay in write order
    // In-place dedup of the region, keeping the last written of equal times.
    let mut w = 0;
    for r in 0..region.len() {
        let dup = w > 0 && region.get(w - 1).map(|e| e.0) == region.get(r).map(|e| e.0);
        if dup {
            region.swap(w - 1, r);
        } else {
            region.swap(w, r);
            w += 1;
        }
    }
    v.truncate(lo + w);
    before - v.len()
}

fn bounds<V>(v: &[(i64, V)], from: i64, to: i64) -> (usize, usize) {
    (
        v.partition_point(|e| e.0 < from),
        v.partition_point(|e| e.0 < to),
    )
}

impl SeriesBuf {
    pub(crate) fn len(&self) -> usize {
        match self {
            Self::Num(v) => v.len(),
            Self::Any(v) => v.len(),
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn push(&mut self, ts: i64, value: TsValue) -> (usize, bool) {
        match (&mut *self, value) {
            (Self::Num(v), TsValue::Number(x)) => push(v, ts, x),
            (Self::Any(v), value) => push(v, ts, value),
            (Self::Num(v), value) => {
                let mut any: Vec<(i64, TsValue)> =
                    v.drain(..).map(|(t, x)| (t, TsValue::Number(x))).collect();
                let r = push(&mut any, ts, value);
                *self = Self::Any(any);
                r
            }
        }
    }

    fn sort_dedup(&mut self, sorted: usize) -> usize {
        match self {
            Self::Num(v) => sort_dedup(v, sorted),
            Self::Any(v) => sort_dedup(v, sorted),
        }
    }

    /// The index range of times in `[from, to)`.
    pub(crate) fn bounds(&self, from: i64, to: i64) -> (usize, usize) {
        match self {
            Self::Num(v) => bounds(v, from, to),
            Self::Any(v) => bounds(v, from, to),
        }
    }

    pub(crate) fn ts(&self, i: usize) -> Option<i64> {
        match self {
            Self::Num(v) => v.get(i).map(|e| e.0),
            Self::Any(v) => v.get(i).map(|e| e.0),
        }
    }
}

/// One flush generation of one shard, read-only.
#[derive(Debug)]
pub(crate) struct Frozen {
    pub gen_: u64,
    pub series: Vec<SeriesBuf>,
}

/// One shard of the in-memory state.
#[derive(Debug, Default)]
pub(crate) struct Shard {
    /// Points since the last flush started, by local series index.
    pub active: Vec<SeriesBuf>,
    /// Generations being flushed, oldest first.
    pub frozen: Vec<Arc<Frozen>>,
    /// Latest value by local series index.
    pub latest: Vec<Option<(i64, TsValue)>>,
    /// Points in `active`.
    pub points: usize,
    /// Series that took an out-of-order point in this group, with how many
    /// of their points were sorted before it.
    dirty: Vec<(usize, usize)>,
}

impl Shard {
    /// Records `value` as latest if it is not older than the current one.
    pub(crate) fn offer_latest(&mut self, local: usize, ts: i64, value: &TsValue) {
        if self.latest.len() <= local {
            self.latest.resize(local + 1, None);
        }
        if let Some(slot) = self.latest.get_mut(local)
            && slot.as_ref().is_none_or(|(t, _)| ts >= *t)
        {
            *slot = Some((ts, value.clone()));
        }
    }

    fn insert(&mut self, local: usize, ts: i64, value: TsValue) {
        self.offer_latest(local, ts, &value);
        if self.active.len() <= local {
            self.active.resize_with(local + 1, SeriesBuf::default);
        }
        if let Some(buf) = self.active.get_mut(local) {
            let sorted = buf.len();
            let (added, unsorted) = buf.push(ts, value);
            self.points += added;
            if unsorted {
                self.dirty.push((local, sorted));
            }
        }
    }

    fn settle(&mut self) {
        if self.dirty.is_empty() {
            return;
        }
        // The first entry of a series has the smallest sorted prefix.
        self.dirty.sort_unstable();
        self.dirty.dedup_by_key(|d| d.0);
        for &(local, sorted) in &self.dirty {
            if let Some(buf) = self.active.get_mut(local) {
                self.points -= buf.sort_dedup(sorted);
            }
        }
        self.dirty.clear();
    }
}

/// All shards.
#[derive(Debug)]
pub(crate) struct Memtable {
    pub shards: Vec<RwLock<Shard>>,
}

/// Reusable buffers for [`Memtable::apply`].
#[derive(Debug, Default)]
pub(crate) struct ApplyScratch {
    order: Vec<u32>,
}

impl Memtable {
    pub(crate) fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
        }
    }

    pub(crate) fn shard(&self, series: u32) -> (&RwLock<Shard>, usize) {
        let (s, local) = locate(series);
        // SHARDS shards always exist; `s < SHARDS` by construction.
        (&self.shards[s], local)
    }

    /// Applies points in order (later points win ties); returns the change in active points.
    pub(crate) fn apply(&self, mut points: Vec<Point>, scratch: &mut ApplyScratch) -> i64 {
        let mut starts = [0usize; SHARDS + 1];
        for p in &points {
            starts[locate(p.series).0 + 1] += 1;
        }
        for i in 0..SHARDS {
            starts[i + 1] += starts[i];
        }
        let mut fill = starts;
        scratch.order.clear();
        scratch.order.resize(points.len(), 0);
        for (i, p) in points.iter().enumerate() {
            let s = locate(p.series).0;
            if let Some(slot) = scratch.order.get_mut(fill[s]) {
                *slot = i as u32;
            }
            fill[s] += 1;
        }
        let mut delta = 0i64;
        for (s, lock) in self.shards.iter().enumerate() {
            let Some(idx) = scratch.order.get(starts[s]..starts[s + 1]) else {
                continue;
            };
            if idx.is_empty() {
                continue;
            }
            let mut shard = write(lock);
            let before = shard.points as i64;
            for &i in idx {
                if let Some(p) = points.get_mut(i as usize) {
                    let value = std::mem::replace(&mut p.value, TsValue::Bool(false));
                    shard.insert(locate(p.series).1, p.ts, value);
                }
            }
            shard.settle();
            delta += shard.points as i64 - before;
        }
        delta
    }

    /// Moves every shard's active points into generation `gen_`; returns the
    /// frozen shards (index = shard) and how many points they hold.
    pub(crate) fn freeze(&self, gen_: u64) -> (Vec<Arc<Frozen>>, usize) {
        let mut out = Vec::with_capacity(SHARDS);
        let mut total = 0;
        for lock in &self.shards {
            let mut shard = write(lock);
            let points = std::mem::take(&mut shard.points);
            let frozen = Arc::new(Frozen {
                gen_,
                series: std::mem::take(&mut shard.active),
            });
            shard.frozen.push(frozen.clone());
            total += points;
            out.push(frozen);
        }
        (out, total)
    }

    /// Drops generation `gen_` (its part is installed).
    pub(crate) fn forget(&self, gen_: u64) {
        for lock in &self.shards {
            write(lock).frozen.retain(|f| f.gen_ != gen_);
        }
    }

    pub(crate) fn latest(&self, series: u32) -> Option<(i64, TsValue)> {
        let (lock, local) = self.shard(series);
        read(lock).latest.get(local).cloned().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn groups_of_points_in_any_order_settle_like_a_map_with_the_last_write(
            groups in proptest::collection::vec(
                proptest::collection::vec((0i64..40, 0u32..1000), 0..30), 1..8)
        ) {
            let m = Memtable::new();
            let mut scratch = ApplyScratch::default();
            let mut model = std::collections::BTreeMap::new();
            for g in groups {
                let points = g
                    .iter()
                    .map(|&(ts, v)| Point { series: 5, ts, value: TsValue::Number(f64::from(v)) })
                    .collect();
                for &(ts, v) in &g {
                    model.insert(ts, f64::from(v));
                }
                m.apply(points, &mut scratch);
            }
            let shard = read(&m.shards[5]);
            let got: Vec<(i64, f64)> = match shard.active.first() {
                Some(SeriesBuf::Num(v)) => v.clone(),
                Some(SeriesBuf::Any(_)) => panic!("numbers only"),
                None => Vec::new(),
            };
            let want: Vec<(i64, f64)> = model.into_iter().collect();
            proptest::prop_assert_eq!(shard.points, want.len());
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn out_of_order_and_repeated_times_settle_sorted_with_the_last_write() {
        let m = Memtable::new();
        let mut scratch = ApplyScratch::default();
        let p = |ts, v: f64| Point {
            series: 3,
            ts,
            value: TsValue::Number(v),
        };
        let d = m.apply(
            vec![p(10, 1.0), p(5, 2.0), p(10, 3.0), p(7, 4.0), p(5, 5.0)],
            &mut scratch,
        );
        assert_eq!(d, 3);
        let shard = read(&m.shards[3]);
        match &shard.active[0] {
            SeriesBuf::Num(v) => assert_eq!(v, &vec![(5, 5.0), (7, 4.0), (10, 3.0)]),
            SeriesBuf::Any(_) => panic!("numbers only"),
        }
        assert_eq!(shard.points, 3);
        drop(shard);
        assert_eq!(m.latest(3), Some((10, TsValue::Number(3.0))));
    }
}
