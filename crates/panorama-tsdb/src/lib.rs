//! Panorama's embedded time-series engine: observations are stored
//! durably and read back fast, in one data directory with no other process.
//!
//! # How it works
//!
//! - [`Tsdb::append`] hands points to one writer thread over a bounded
//!   queue (full: [`TsdbError::Busy`]). The writer drains every waiting
//!   request, writes them as one WAL record, fdatasyncs once (group commit),
//!   applies them to the in-memory state and only then answers them all.
//!   The hot path does no index maintenance: an append to a file and
//!   appends to per-series vectors.
//! - In memory: the latest value of every series, and the points not yet in
//!   a part, per series, sorted by time with one value per time.
//! - When more than `memtable_max_points` are held (and on close), the
//!   writer rotates the WAL and freezes the memtable; a flush thread writes
//!   it as an immutable, compressed part file and then deletes the WAL
//!   segments it covers. A merge thread merges neighbouring parts of
//!   similar size (see `merge`).
//! - Reads merge memtable and parts; for a time written more than once the
//!   later write wins (an idempotent re-import). Bucket queries at whole
//!   hours read a block's hourly rollup instead of its points when every
//!   hour it touches is inside the range.
//!
//! # Layout of the data directory
//!
//! ```text
//! VERSION            the directory format version ("1"); a newer one is refused
//! LOCK               held (flock) while open
//! wal/<seq>.wal      WAL segments, see `wal`
//! parts/<id>.part    immutable parts, see `part`; blocks are encoded as in `codec`
//! ```
//!
//! # Not yet done
//!
//! - No retention: nothing is ever deleted.
//! - Part indexes are held in memory whole (about 40 bytes a block), and
//!   the latest value of every series too (about 40 bytes a series).
//! - Out-of-order appends re-sort the tail of the series' memtable vector
//!   from where the late points belong, once per group: cheap for a few
//!   late points, costly for a bulk import in reverse time order.
//! - Rollups are hourly, per part block, in memory only (see `rollup`):
//!   built on the first whole-hour bucket query after a flush or restart,
//!   at most 64 MiB. Minute buckets, blocks cut by the range and the
//!   memtable still decode or scan every point (about 40 ms for 7.2 M
//!   points on two cores).
//! - `range` decodes every block overlapping the range even when `limit`
//!   would stop early.

mod codec;
mod engine;
mod fsutil;
mod memtable;
mod merge;
mod part;
mod query;
mod rollup;
mod wal;

#[cfg(test)]
mod tests;

use engine::{Mode, Request, Shared, lock};
use panorama_core::Bucket;
use panorama_core::series::Acc;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Series ids must be below this (2^24): ids are dense, and per-series
/// state is a vector indexed by id.
pub const MAX_SERIES: u32 = 1 << 24;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// fdatasync before acknowledging (default true; false only for tests/benches that say so).
    pub sync: bool,
    /// Max append requests waiting for the writer; when full, append returns [`TsdbError::Busy`].
    pub queue_capacity: usize,
    /// Flush in-memory data to a part when more points than this are held.
    pub memtable_max_points: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            sync: true,
            queue_capacity: 1024,
            memtable_max_points: 4_000_000,
        }
    }
}

/// One observed value.
#[derive(Debug, Clone, PartialEq)]
pub enum TsValue {
    /// A number.
    Number(f64),
    /// A boolean.
    Bool(bool),
    /// Text.
    Text(String),
    /// Serialized JSON text.
    Json(String),
}

/// A value of one series at one time.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Series id, dense, assigned by the caller.
    pub series: u32,
    /// Milliseconds since the epoch, UTC.
    pub ts: i64,
    /// The value.
    pub value: TsValue,
}

/// What can go wrong.
#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    /// The write queue is full; retry later.
    #[error("the time-series write queue is full")]
    Busy,
    /// An I/O error, with what was being done.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Stored data is damaged.
    #[error("corrupt time-series data: {0}")]
    Corrupt(String),
    /// The directory was written by a newer version.
    #[error("time-series format version {found} is newer than the supported {supported}")]
    TooNew {
        /// Version found on disk.
        found: u32,
        /// Newest version this build reads.
        supported: u32,
    },
    /// The engine is closed (or its writer stopped).
    #[error("the time-series engine is closed")]
    Closed,
    /// Another `Tsdb` (in this process or another) has the directory open.
    #[error("the time-series directory {0} is in use by another process")]
    Locked(String),
    /// The request cannot be stored as given.
    #[error("invalid time-series request: {0}")]
    Invalid(String),
}

impl TsdbError {
    /// A copy, for answering several waiters with one failure.
    fn duplicate(&self) -> TsdbError {
        match self {
            Self::Busy => Self::Busy,
            Self::Io { context, source } => Self::Io {
                context: context.clone(),
                source: std::io::Error::new(source.kind(), source.to_string()),
            },
            Self::Corrupt(s) => Self::Corrupt(s.clone()),
            Self::TooNew { found, supported } => Self::TooNew {
                found: *found,
                supported: *supported,
            },
            Self::Closed => Self::Closed,
            Self::Locked(s) => Self::Locked(s.clone()),
            Self::Invalid(s) => Self::Invalid(s.clone()),
        }
    }
}

/// Counters for monitoring.
#[derive(Debug, Clone, Default)]
pub struct TsdbStats {
    /// Points appended since open.
    pub points_appended: u64,
    /// Points held in memory.
    pub memtable_points: u64,
    /// Immutable part files.
    pub parts: u64,
    /// Bytes in part files.
    pub disk_bytes: u64,
    /// Bytes in WAL segments.
    pub wal_bytes: u64,
    /// The last background error, if any.
    pub last_error: Option<String>,
}

/// The engine. Send + Sync; share it with `Arc`. Dropping it without
/// [`Tsdb::close`] is safe (the WAL holds everything acknowledged) but
/// leaves the replay to the next open.
pub struct Tsdb {
    shared: Arc<Shared>,
    writer: Mutex<Option<JoinHandle<()>>>,
    _lock: std::fs::File,
}

impl std::fmt::Debug for Tsdb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tsdb")
            .field("stats", &self.stats())
            .finish()
    }
}

impl Tsdb {
    /// Opens (creating if needed) the engine in `dir`: checks the format
    /// version, loads part indexes, replays the WAL (dropping a torn tail,
    /// which was never acknowledged) and starts the writer.
    pub fn open(dir: &Path, opts: Options) -> Result<Tsdb, TsdbError> {
        let opened = engine::open(dir, opts)?;
        Ok(Tsdb {
            shared: opened.shared,
            writer: Mutex::new(Some(opened.writer)),
            _lock: opened.lock_file,
        })
    }

    /// Appends points; returns once they are durable (WAL written, and
    /// fdatasynced when `sync`) and visible to reads. Concurrent callers
    /// share one fdatasync. A point for a (series, ts) already stored
    /// replaces it.
    pub async fn append(&self, points: Vec<Point>) -> Result<(), TsdbError> {
        if let Some(p) = points.iter().find(|p| p.series >= MAX_SERIES) {
            return Err(TsdbError::Invalid(format!(
                "series id {} is not below {MAX_SERIES}",
                p.series
            )));
        }
        let rx = {
            let mut q = lock(&self.shared.queue);
            if q.mode != Mode::Open {
                return Err(TsdbError::Closed);
            }
            if points.is_empty() {
                return Ok(());
            }
            if q.reqs.len() >= self.shared.opts.queue_capacity.max(1) {
                return Err(TsdbError::Busy);
            }
            let (done, rx) = oneshot::channel();
            q.reqs.push(Request { points, done });
            rx
        };
        self.shared.queue_cv.notify_one();
        rx.await.unwrap_or(Err(TsdbError::Closed))
    }

    /// The value with the greatest ts (ties: the last written).
    pub fn latest(&self, series: u32) -> Option<(i64, TsValue)> {
        engine::latest(&self.shared, series)
    }

    /// Values in `[from, to)`, oldest first, one per ts, at most `limit`.
    pub fn range(
        &self,
        series: u32,
        from: i64,
        to: i64,
        limit: usize,
    ) -> Result<Vec<(i64, TsValue)>, TsdbError> {
        self.shared.range(series, from, to, limit)
    }

    /// Numeric values of all given series in `[from, to)`, merged into one
    /// accumulator per bucket start (`bucket.floor(ts)`), sorted, empty
    /// buckets omitted; other values are ignored. Times are clamped to
    /// ±2^60 ms.
    pub fn buckets(
        &self,
        series: &[u32],
        from: i64,
        to: i64,
        bucket: Bucket,
    ) -> Result<Vec<(i64, Acc)>, TsdbError> {
        self.shared.buckets(series, from, to, bucket)
    }

    /// Counters.
    pub fn stats(&self) -> TsdbStats {
        let c = &self.shared.counters;
        let parts = memtable::read(&self.shared.parts).clone();
        TsdbStats {
            points_appended: c.points_appended.load(Ordering::Relaxed),
            memtable_points: c.active_points.load(Ordering::Relaxed)
                + c.frozen_points.load(Ordering::Relaxed),
            parts: parts.len() as u64,
            disk_bytes: parts.iter().map(|p| p.size).sum(),
            wal_bytes: c.wal_bytes.load(Ordering::Relaxed),
            last_error: lock(&self.shared.last_error).clone(),
        }
    }

    /// Finishes queued appends, flushes everything to parts and stops the
    /// writer; later appends get [`TsdbError::Closed`]. Reads keep working.
    pub async fn close(&self) -> Result<(), TsdbError> {
        let rx = {
            let mut q = lock(&self.shared.queue);
            if let Some(r) = &q.finished {
                return r.as_ref().map(|_| ()).map_err(TsdbError::duplicate);
            }
            if q.mode == Mode::Open {
                q.mode = Mode::Closing;
            }
            let (tx, rx) = oneshot::channel();
            q.waiters.push(tx);
            rx
        };
        self.shared.queue_cv.notify_all();
        let result = rx.await.unwrap_or(Err(TsdbError::Closed));
        if let Some(h) = lock(&self.writer).take() {
            // The writer has answered; it is only returning.
            let _ = h.join();
        }
        result
    }
}

impl Drop for Tsdb {
    fn drop(&mut self) {
        {
            let mut q = lock(&self.shared.queue);
            if q.mode == Mode::Open {
                q.mode = Mode::Aborting;
            }
        }
        self.shared.queue_cv.notify_all();
        if let Some(h) = lock(&self.writer).take() {
            let _ = h.join();
        }
    }
}
