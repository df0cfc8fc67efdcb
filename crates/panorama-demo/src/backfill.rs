//! The history: one-minute values of every sensor's main attributes (and
//! hourly camera statuses) over the last days, generated batch by batch so
//! the caller never holds the tens of millions of observations at once.

use crate::DemoData;
use crate::events::{EventKind, EventParams, events_between};
use crate::signal::{MinuteCtx, reports_in_history, value};
use crate::things::{Attr, Things};
use chrono::DateTime;
use panorama_core::{Observation, Timestamp};
use std::sync::Arc;

/// About this many observations per batch.
const BATCH_TARGET: usize = 10_000;

/// The backfill of a demo: an iterator of time-ordered batches, each
/// covering a few whole minutes. Any batch can also be regenerated on its
/// own with [`Backfill::batch`] (to retry a write).
#[derive(Debug, Clone)]
pub struct Backfill {
    things: Arc<Things>,
    ids: Arc<[String]>,
    mains: Arc<[Vec<(Attr, &'static str)>]>,
    params: EventParams,
    sources: usize,
    first: i64,
    minutes: i64,
    per_batch: i64,
    next: usize,
}

impl Backfill {
    pub(crate) fn new(data: &DemoData, now: Timestamp, days: u32) -> Self {
        let last = now.timestamp().div_euclid(60);
        let minutes = i64::from(days) * 1440;
        let mains: Vec<Vec<(Attr, &'static str)>> = data
            .things
            .models
            .iter()
            .map(|m| {
                m.kind
                    .attrs()
                    .iter()
                    .filter(|a| a.main)
                    .map(|a| (a.attr, a.name))
                    .collect()
            })
            .collect();
        let per_minute: usize = data
            .things
            .models
            .iter()
            .zip(&mains)
            .filter(|(m, _)| m.kind.every_minute())
            .map(|(_, a)| a.len())
            .sum();
        let per_batch = i64::try_from((BATCH_TARGET / per_minute.max(1)).max(1)).unwrap_or(1);
        Self {
            things: data.things.clone(),
            ids: data.entities.iter().map(|e| e.id.clone()).collect(),
            mains: mains.into(),
            params: EventParams::new(data.seed, data.things.silencable.clone()),
            sources: data.sources.len(),
            first: last - minutes + 1,
            minutes,
            per_batch,
            next: 0,
        }
    }

    /// Number of batches.
    pub fn batches(&self) -> usize {
        usize::try_from((self.minutes + self.per_batch - 1) / self.per_batch.max(1)).unwrap_or(0)
    }

    /// The first and the last minute of the history.
    pub fn range(&self) -> (Timestamp, Timestamp) {
        let t = |m: i64| DateTime::from_timestamp(m * 60, 0).unwrap_or_default();
        (t(self.first), t(self.first + self.minutes - 1))
    }

    /// The observations of batch `i` (empty past the end), in time order.
    pub fn batch(&self, i: usize) -> Vec<Observation> {
        let Ok(i) = i64::try_from(i) else {
            return Vec::new();
        };
        let from = self.first + i * self.per_batch;
        let to = (from + self.per_batch).min(self.first + self.minutes);
        if from >= to {
            return Vec::new();
        }
        let events = events_between(&self.params, from, to);
        let mut out = Vec::with_capacity(BATCH_TARGET + BATCH_TARGET / 4);
        let mut ctx = MinuteCtx::default();
        for m in from..to {
            let Some(time) = DateTime::from_timestamp(m * 60, 0) else {
                continue;
            };
            ctx.set(m, &events);
            for ((model, attrs), id) in self
                .things
                .models
                .iter()
                .zip(self.mains.iter())
                .zip(self.ids.iter())
            {
                if !reports_in_history(model.kind, m) || ctx.is_silenced(model.source) {
                    continue;
                }
                for (attr, name) in attrs {
                    out.push(Observation {
                        entity: id.clone(),
                        attribute: (*name).to_string(),
                        time,
                        value: value(model, *attr, &ctx),
                    });
                }
            }
        }
        out
    }

    /// How many observations each source's history holds, by index into
    /// `DemoData::sources` (computed without generating them).
    pub fn count_by_source(&self) -> Vec<u64> {
        let mut series = vec![0u64; self.sources];
        let mut counts = vec![0u64; self.sources];
        let last = self.first + self.minutes;
        let hours = (self.first..last).filter(|m| m.rem_euclid(60) == 0).count() as u64;
        for (model, attrs) in self.things.models.iter().zip(self.mains.iter()) {
            let n = attrs.len() as u64;
            if let (Some(s), Some(c)) = (series.get_mut(model.source), counts.get_mut(model.source))
            {
                if model.kind.every_minute() {
                    *s += n;
                    *c += n * self.minutes as u64;
                } else {
                    *c += n * hours;
                }
            }
        }
        // Silences remove every minute-series of their source; overlapping
        // silences of one source count once.
        let mut silent: Vec<(usize, i64, i64)> = events_between(&self.params, self.first, last)
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::Silence { source } => Some((
                    source,
                    e.start.max(self.first),
                    (e.start + e.duration).min(last),
                )),
                _ => None,
            })
            .filter(|(_, a, b)| a < b)
            .collect();
        silent.sort_unstable();
        let mut covered: Option<(usize, i64)> = None;
        for (source, a, b) in silent {
            let start = match covered {
                Some((s, end)) if s == source => a.max(end),
                _ => a,
            };
            if b > start
                && let (Some(c), Some(n)) = (counts.get_mut(source), series.get(source))
            {
                *c = c.saturating_sub(n * (b - start) as u64);
            }
            let end = match covered {
                Some((s, end)) if s == source => end.max(b),
                _ => b,
            };
            covered = Some((source, end));
        }
        counts
    }

    /// How many observations the whole history holds.
    pub fn observation_count(&self) -> u64 {
        self.count_by_source().iter().sum()
    }
}

impl Iterator for Backfill {
    type Item = Vec<Observation>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.next >= self.batches() {
            return None;
        }
        let b = self.batch(self.next);
        self.next += 1;
        Some(b)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let n = self.batches().saturating_sub(self.next);
        (n, Some(n))
    }
}

impl ExactSizeIterator for Backfill {}
