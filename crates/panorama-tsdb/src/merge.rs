//! Background merging of parts, so that reads touch few of them however
//! often the memtable is flushed (at 1 M points/s a flush comes every few
//! seconds).
//!
//! Size-tiered: a part's tier is ⌊log4(size / 1 MiB)⌋; the oldest run of
//! [`FANOUT`] parts that are neighbours in priority order and share a tier
//! is merged into one, so parts grow ×4 a tier and there are about
//! `3 × tiers` of them. Past [`MAX_PARTS`] the cheapest run of neighbours is
//! merged whatever the tiers. Only neighbours are merged, so the merged part
//! takes their place in priority order (its `max_seq` is theirs) and
//! "newest wins" still holds.
//!
//! Crash safety: the merged part is written, fsynced and renamed like a
//! flushed one, then installed, then its inputs are deleted. Inputs left
//! behind by a crash hold generations a wider part holds too; open deletes
//! them.

use crate::codec::{Decoded, ValsRef, decode_block};
use crate::engine::{Shared, install};
use crate::fsutil::{io_err, sync_dir};
use crate::part::{Part, PartWriter};
use crate::query::{BlockRef, Run, merge_runs, read_blocks};
use crate::{TsValue, TsdbError};
use std::sync::atomic::Ordering;
use std::sync::{Arc, mpsc};

/// Parts merged at once.
pub(crate) const FANOUT: usize = 4;
/// Above this many parts, neighbours are merged whatever their sizes.
const MAX_PARTS: usize = 24;

fn tier(p: &Part) -> u32 {
    let mib = (p.size >> 20).max(1);
    (63 - mib.leading_zeros()) / 2
}

/// The parts to merge next, if any (`parts` in priority order).
pub(crate) fn pick(parts: &[Arc<Part>]) -> Option<&[Arc<Part>]> {
    let same_tier = parts.windows(FANOUT).find(|w| {
        w.iter()
            .all(|p| Some(tier(p)) == w.first().map(|f| tier(f)))
    });
    if same_tier.is_some() {
        return same_tier;
    }
    if parts.len() > MAX_PARTS {
        return parts
            .windows(FANOUT)
            .min_by_key(|w| w.iter().map(|p| p.size).sum::<u64>());
    }
    None
}

/// The merge thread: after each wake-up (a flush, or open), merges while there is something to merge.
pub(crate) fn merger(shared: Arc<Shared>, wake: mpsc::Receiver<()>) {
    while wake.recv().is_ok() {
        while wake.try_recv().is_ok() {}
        loop {
            if shared.stopping.load(Ordering::Relaxed) {
                return;
            }
            let parts = shared.parts_snapshot();
            let Some(inputs) = pick(&parts) else { break };
            match merge(&shared, inputs) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    // Tried again after the next flush.
                    shared.record_error("merging parts", &e);
                    break;
                }
            }
        }
    }
}

/// Merges `inputs` (neighbours in priority order) into one part; false if stopped on the way.
fn merge(shared: &Shared, inputs: &[Arc<Part>]) -> Result<bool, TsdbError> {
    let min_seq = inputs.iter().map(|p| p.min_seq).min().unwrap_or(0);
    let max_seq = inputs.iter().map(|p| p.max_seq).max().unwrap_or(0);
    let covers_wal = inputs.iter().map(|p| p.covers_wal).max().unwrap_or(0);
    let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
    let mut series: Vec<u32> = inputs.iter().flat_map(|p| p.series_ids()).collect();
    series.sort_unstable();
    series.dedup();
    let mut w = PartWriter::create(&shared.parts_dir, id, min_seq, max_seq, covers_wal)?;
    let mut d = Decoded::default();
    let mut refs: Vec<BlockRef> = Vec::new();
    let (mut ts, mut nums, mut any) = (Vec::new(), Vec::new(), Vec::new());
    for s in series {
        if shared.stopping.load(Ordering::Relaxed) {
            w.abandon();
            return Ok(false);
        }
        refs.clear();
        for (k, p) in inputs.iter().enumerate() {
            refs.extend(p.blocks(s).iter().map(|b| (k, *b)));
        }
        let mut num_runs: Vec<Run<f64>> = Vec::new();
        let mut any_runs: Vec<Run<TsValue>> = Vec::new();
        read_blocks(inputs, &mut refs, |k, _, bytes| {
            decode_block(bytes, &mut d)?;
            let prio = inputs.get(k).map_or(0, |p| p.max_seq);
            if any_runs.is_empty() && d.is_numeric() {
                num_runs.push((
                    prio,
                    d.ts.iter().copied().zip(d.nums.iter().copied()).collect(),
                ));
            } else {
                for (p, run) in num_runs.drain(..) {
                    any_runs.push((
                        p,
                        run.into_iter()
                            .map(|(t, x)| (t, TsValue::Number(x)))
                            .collect(),
                    ));
                }
                any_runs.push((
                    prio,
                    (0..d.ts.len())
                        .filter_map(|i| Some((*d.ts.get(i)?, d.value(i)?)))
                        .collect(),
                ));
            }
            Ok(())
        })?;
        ts.clear();
        if any_runs.is_empty() {
            nums.clear();
            for (t, x) in merge_runs(num_runs, usize::MAX) {
                ts.push(t);
                nums.push(x);
            }
            w.add_series(s, &ts, ValsRef::Num(&nums))?;
        } else {
            any.clear();
            for (t, x) in merge_runs(any_runs, usize::MAX) {
                ts.push(t);
                any.push(x);
            }
            w.add_series(s, &ts, ValsRef::Any(&any))?;
        }
    }
    let part = w.finish()?;
    tracing::debug!(
        part = part.id,
        inputs = inputs.len(),
        points = part.points,
        bytes = part.size,
        "merged parts"
    );
    let ids: Vec<u64> = inputs.iter().map(|p| p.id).collect();
    install(shared, part, &ids, None);
    for p in inputs {
        std::fs::remove_file(p.path())
            .map_err(io_err(format!("deleting merged {}", p.path().display())))?;
    }
    sync_dir(&shared.parts_dir)?;
    Ok(true)
}
