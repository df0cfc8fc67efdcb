//! Opening a data directory, and the background threads: the writer
//! (group commit into the WAL, then the memtable), the flusher (frozen
//! memtable generations into parts, then WAL segments away) and the merger
//! (see `merge`). The writer owns the other two and stops them last.
//!
//! Invariants, which together make every crash point safe:
//! - a request is answered only after its WAL record is written (and
//!   fdatasynced when `sync`) and applied to the memtable;
//! - a flush rotates the WAL first, so the frozen generation holds exactly
//!   the segments up to the one it closed (`covers_wal`);
//! - flushes complete strictly in order, so a part with `covers_wal = n`
//!   means every segment `<= n` is in parts; replay skips those segments and
//!   deletes them, whether or not the flusher got to it;
//! - a part is installed and its frozen generation dropped under the write
//!   side of `gate`; readers take their memtable + parts snapshot under its
//!   read side, so they see each point exactly once.

use crate::codec::ValsRef;
use crate::fsutil::{io_err, sync_dir, write_atomic};
use crate::memtable::{ApplyScratch, Frozen, Memtable, SHARDS, SeriesBuf, read, series_id, write};
use crate::merge;
use crate::part::{PARTS_DIR, Part, PartWriter, list_parts};
use crate::wal::{self, AppendError, WAL_DIR, WalWriter};
use crate::{MAX_SERIES, Options, Point, TsValue, TsdbError};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, RwLock, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// The data-directory format this build writes and reads (the `VERSION` file).
pub(crate) const FORMAT_VERSION: u32 = 1;
const VERSION_FILE: &str = "VERSION";
const LOCK_FILE: &str = "LOCK";
/// Frozen generations allowed to wait for the flusher before the writer waits too.
const MAX_PENDING_FLUSHES: usize = 2;

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn wait<'a, T>(cv: &Condvar, g: MutexGuard<'a, T>) -> MutexGuard<'a, T> {
    cv.wait(g).unwrap_or_else(|e| e.into_inner())
}

/// One waiting append.
pub(crate) struct Request {
    pub points: Vec<Point>,
    pub done: oneshot::Sender<Result<(), TsdbError>>,
}

/// Whether the writer takes new requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Open,
    /// `close`: finish queued requests, flush, stop.
    Closing,
    /// Drop: finish queued requests, stop without flushing (the WAL has it all).
    Aborting,
}

pub(crate) struct Queue {
    pub reqs: Vec<Request>,
    pub mode: Mode,
    pub waiters: Vec<oneshot::Sender<Result<(), TsdbError>>>,
    pub finished: Option<Result<(), TsdbError>>,
}

#[derive(Debug, Default)]
pub(crate) struct FlushState {
    pub pending: usize,
    /// The flusher gave up (only while stopping): later generations stay in the WAL.
    pub failed: Option<String>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub points_appended: AtomicU64,
    /// Written by the writer thread only.
    pub active_points: AtomicU64,
    pub frozen_points: AtomicU64,
    pub wal_bytes: AtomicU64,
}

/// State shared by the handle, the writer and the flusher.
pub(crate) struct Shared {
    pub opts: Options,
    pub wal_dir: PathBuf,
    pub parts_dir: PathBuf,
    pub mem: Memtable,
    pub gate: RwLock<()>,
    pub parts: RwLock<Arc<Vec<Arc<Part>>>>,
    pub queue: Mutex<Queue>,
    pub queue_cv: Condvar,
    pub flush: Mutex<FlushState>,
    pub flush_cv: Condvar,
    pub next_id: AtomicU64,
    /// Set when the writer stops: background work gives up.
    pub stopping: AtomicBool,
    pub counters: Counters,
    pub last_error: Mutex<Option<String>>,
}

impl Shared {
    pub(crate) fn record_error(&self, what: &str, e: &TsdbError) {
        tracing::error!(error = %e, "{what}");
        *lock(&self.last_error) = Some(format!("{what}: {e}"));
    }

    fn mode(&self) -> Mode {
        lock(&self.queue).mode
    }

    pub(crate) fn parts_snapshot(&self) -> Arc<Vec<Arc<Part>>> {
        read(&self.parts).clone()
    }
}

/// What `open` hands to the `Tsdb` handle.
pub(crate) struct Opened {
    pub shared: Arc<Shared>,
    pub writer: JoinHandle<()>,
    pub lock_file: File,
}

fn check_version(dir: &Path, wal_dir: &Path, parts_dir: &Path) -> Result<(), TsdbError> {
    let path = dir.join(VERSION_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let found: u32 = s.trim().parse().map_err(|_| {
                TsdbError::Corrupt(format!("{} does not hold a version number", path.display()))
            })?;
            if found > FORMAT_VERSION {
                return Err(TsdbError::TooNew {
                    found,
                    supported: FORMAT_VERSION,
                });
            }
            if found == 0 {
                return Err(TsdbError::Corrupt(format!(
                    "{} holds version 0",
                    path.display()
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let has_data =
                !wal::list_segments(wal_dir)?.is_empty() || !list_parts(parts_dir)?.is_empty();
            if has_data {
                return Err(TsdbError::Corrupt(format!(
                    "{} is missing but data is present",
                    path.display()
                )));
            }
            write_atomic(&path, format!("{FORMAT_VERSION}\n").as_bytes())
        }
        Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
    }
}

pub(crate) fn open(dir: &Path, opts: Options) -> Result<Opened, TsdbError> {
    let wal_dir = dir.join(WAL_DIR);
    let parts_dir = dir.join(PARTS_DIR);
    for d in [&wal_dir, &parts_dir] {
        std::fs::create_dir_all(d).map_err(io_err(format!("creating {}", d.display())))?;
    }
    let lock_path = dir.join(LOCK_FILE);
    let lock_file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(io_err(format!("opening {}", lock_path.display())))?;
    match lock_file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            return Err(TsdbError::Locked(dir.display().to_string()));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(io_err(format!("locking {}", lock_path.display()))(e));
        }
    }
    check_version(dir, &wal_dir, &parts_dir)?;

    let mem = Memtable::new();
    let mut parts = Vec::new();
    for (id, path) in list_parts(&parts_dir)? {
        parts.push(Part::open(&path, id)?);
    }
    parts.sort_by_key(|(p, _)| (p.max_seq, p.id));
    // A merge that was interrupted after its output was installed leaves
    // its inputs behind: any part whose generations another part holds too.
    let mut keep = Vec::with_capacity(parts.len());
    for (i, (p, _)) in parts.iter().enumerate() {
        let superseded = parts.iter().enumerate().any(|(j, (q, _))| {
            j != i
                && q.min_seq <= p.min_seq
                && p.max_seq <= q.max_seq
                && (q.max_seq - q.min_seq > p.max_seq - p.min_seq)
        });
        if superseded {
            std::fs::remove_file(p.path())
                .map_err(io_err(format!("deleting {}", p.path().display())))?;
        } else {
            keep.push(i);
        }
    }
    let mut installed = Vec::with_capacity(keep.len());
    let mut covered = 0;
    let mut next_id = 1;
    for (i, (p, lasts)) in parts.into_iter().enumerate() {
        if !keep.contains(&i) {
            continue;
        }
        for (series, ts, value) in lasts {
            if series < MAX_SERIES {
                let (l, local) = mem.shard(series);
                write(l).offer_latest(local, ts, &value);
            }
        }
        covered = covered.max(p.covers_wal);
        next_id = next_id.max(p.id + 1).max(p.max_seq + 1);
        installed.push(Arc::new(p));
    }

    let mut scratch = ApplyScratch::default();
    let mut active: i64 = 0;
    let mut wal_bytes = 0;
    let mut last: Option<(u64, wal::Scan)> = None;
    let mut max_seq = covered;
    let segments = wal::list_segments(&wal_dir)?;
    let count = segments.len();
    for (n, (seq, path)) in segments.into_iter().enumerate() {
        max_seq = max_seq.max(seq);
        if seq <= covered {
            std::fs::remove_file(&path).map_err(io_err(format!("deleting {}", path.display())))?;
            continue;
        }
        let mut bad_series = None;
        let scan = wal::replay(&path, |points| {
            if let Some(p) = points.iter().find(|p| p.series >= MAX_SERIES) {
                bad_series = Some(p.series);
                return;
            }
            active += mem.apply(points, &mut scratch);
        })?;
        if let Some(s) = bad_series {
            return Err(TsdbError::Corrupt(format!(
                "{} holds series id {s}",
                path.display()
            )));
        }
        if scan.good_len < scan.file_len && n + 1 < count {
            return Err(TsdbError::Corrupt(format!(
                "{} is damaged at offset {} and later segments follow",
                path.display(),
                scan.good_len
            )));
        }
        wal_bytes += scan.good_len;
        last = Some((seq, scan));
    }
    sync_dir(&wal_dir)?;
    let wal = match last {
        Some((seq, scan)) => {
            // A segment cut short inside its header is started afresh.
            wal_bytes += wal::HEADER_LEN.saturating_sub(scan.good_len);
            WalWriter::reopen(&wal_dir, seq, &scan)?
        }
        None => {
            wal_bytes += wal::HEADER_LEN;
            WalWriter::create(&wal_dir, max_seq + 1)?
        }
    };

    let counters = Counters::default();
    counters
        .active_points
        .store(active.max(0) as u64, Ordering::Relaxed);
    counters.wal_bytes.store(wal_bytes, Ordering::Relaxed);
    let shared = Arc::new(Shared {
        opts,
        wal_dir,
        parts_dir,
        mem,
        gate: RwLock::new(()),
        parts: RwLock::new(Arc::new(installed)),
        queue: Mutex::new(Queue {
            reqs: Vec::new(),
            mode: Mode::Open,
            waiters: Vec::new(),
            finished: None,
        }),
        queue_cv: Condvar::new(),
        flush: Mutex::new(FlushState::default()),
        flush_cv: Condvar::new(),
        next_id: AtomicU64::new(next_id),
        stopping: AtomicBool::new(false),
        counters,
        last_error: Mutex::new(None),
    });

    let (wake, wake_rx) = mpsc::channel();
    let _ = wake.send(()); // look for merges left to do
    let ms = shared.clone();
    let merger = std::thread::Builder::new()
        .name("tsdb-merge".into())
        .spawn(move || merge::merger(ms, wake_rx))
        .map_err(io_err("starting the merge thread"))?;
    let (jobs, rx) = mpsc::channel();
    let fs = shared.clone();
    let flusher = std::thread::Builder::new()
        .name("tsdb-flush".into())
        .spawn(move || flusher(fs, rx, wake))
        .map_err(io_err("starting the flush thread"))?;
    let w = Writer {
        shared: shared.clone(),
        wal,
        jobs: Some(jobs),
        flusher: Some(flusher),
        merger: Some(merger),
        record: Vec::new(),
        scratch,
        failed: None,
    };
    let writer = std::thread::Builder::new()
        .name("tsdb-writer".into())
        .spawn(move || w.run())
        .map_err(io_err("starting the writer thread"))?;
    Ok(Opened {
        shared,
        writer,
        lock_file,
    })
}

struct FlushJob {
    gen_: u64,
    covers_wal: u64,
    frozen: Vec<Arc<Frozen>>,
    points: u64,
}

struct Writer {
    shared: Arc<Shared>,
    wal: WalWriter,
    jobs: Option<mpsc::Sender<FlushJob>>,
    flusher: Option<JoinHandle<()>>,
    merger: Option<JoinHandle<()>>,
    record: Vec<u8>,
    scratch: ApplyScratch,
    /// Set once the WAL is in an unknown state; every later append fails.
    failed: Option<String>,
}

impl Writer {
    fn run(mut self) {
        // Replay may have filled the memtable. Errors are recorded in stats and retried later.
        let _ = self.maybe_freeze(false);
        let mut batch = Vec::new();
        let mode = loop {
            let mode = {
                let mut q = lock(&self.shared.queue);
                while q.reqs.is_empty() && q.mode == Mode::Open {
                    q = wait(&self.shared.queue_cv, q);
                }
                std::mem::swap(&mut q.reqs, &mut batch);
                q.mode
            };
            if batch.is_empty() {
                break mode;
            }
            self.group(&mut batch);
        };
        let mut result = if mode == Mode::Closing {
            self.final_flush()
        } else {
            Ok(())
        };
        self.shared.stopping.store(true, Ordering::Relaxed);
        drop(self.jobs.take());
        for h in [self.flusher.take(), self.merger.take()]
            .into_iter()
            .flatten()
        {
            if h.join().is_err() && result.is_ok() {
                result = Err(TsdbError::Corrupt("a background thread panicked".into()));
            }
        }
        let mut q = lock(&self.shared.queue);
        for w in q.waiters.drain(..) {
            let _ = w.send(dup_result(&result));
        }
        q.finished = Some(result);
    }

    /// Writes one group commit: one WAL record, one fdatasync, then apply and answer.
    fn group(&mut self, batch: &mut Vec<Request>) {
        if let Some(msg) = &self.failed {
            for r in batch.drain(..) {
                let _ = r.done.send(Err(wal_failed(msg)));
            }
            return;
        }
        let count: usize = batch.iter().map(|r| r.points.len()).sum();
        let encoded = wal::encode_record(
            batch.iter().flat_map(|r| r.points.iter()),
            count,
            &mut self.record,
        );
        let written = encoded.and_then(|()| {
            self.wal
                .append(&self.record, self.shared.opts.sync)
                .map_err(|AppendError { error, poisoned }| {
                    self.shared
                        .record_error("appending to the write-ahead log", &error);
                    if poisoned {
                        self.failed = Some(error.to_string());
                    }
                    error
                })
        });
        if let Err(e) = written {
            for r in batch.drain(..) {
                let _ = r.done.send(Err(e.duplicate()));
            }
            return;
        }
        self.shared
            .counters
            .wal_bytes
            .fetch_add(self.record.len() as u64, Ordering::Relaxed);
        if self.record.capacity() > 64 << 20 {
            self.record = Vec::new();
        }
        let mut dones = Vec::with_capacity(batch.len());
        let points = if batch.len() == 1 {
            batch.pop().map(|r| {
                dones.push(r.done);
                r.points
            })
        } else {
            None
        };
        let points = points.unwrap_or_else(|| {
            let mut all = Vec::with_capacity(count);
            for r in batch.drain(..) {
                all.extend(r.points);
                dones.push(r.done);
            }
            all
        });
        let delta = self.shared.mem.apply(points, &mut self.scratch);
        let c = &self.shared.counters;
        let active = c.active_points.load(Ordering::Relaxed) as i64 + delta;
        c.active_points
            .store(active.max(0) as u64, Ordering::Relaxed);
        c.points_appended.fetch_add(count as u64, Ordering::Relaxed);
        for d in dones {
            let _ = d.send(Ok(()));
        }
        // Errors are recorded in stats; the next group tries again.
        let _ = self.maybe_freeze(false);
    }

    fn wal_limit(&self) -> u64 {
        (self.shared.opts.memtable_max_points as u64)
            .saturating_mul(32)
            .max(64 << 20)
    }

    /// Starts a flush when the memtable (or the WAL behind it) is over its
    /// limit, or when `force`d; Err only when a forced flush could not start.
    fn maybe_freeze(&mut self, force: bool) -> Result<(), TsdbError> {
        let active = self.shared.counters.active_points.load(Ordering::Relaxed);
        if active == 0 {
            return Ok(());
        }
        if !force
            && active <= self.shared.opts.memtable_max_points as u64
            && self.wal.since_rotate() <= self.wal_limit()
        {
            return Ok(());
        }
        {
            let mut f = lock(&self.shared.flush);
            while f.pending >= MAX_PENDING_FLUSHES && f.failed.is_none() {
                f = wait(&self.shared.flush_cv, f);
            }
            if let Some(msg) = &f.failed {
                return Err(TsdbError::Io {
                    context: "flushing to a part".into(),
                    source: std::io::Error::other(msg.clone()),
                });
            }
        }
        let covers_wal = match self.wal.rotate() {
            Ok(s) => s,
            Err(e) => {
                self.shared.record_error("rotating the write-ahead log", &e);
                return Err(e);
            }
        };
        let c = &self.shared.counters;
        c.wal_bytes.fetch_add(wal::HEADER_LEN, Ordering::Relaxed);
        let gen_ = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let (frozen, points) = self.shared.mem.freeze(gen_);
        c.active_points.store(0, Ordering::Relaxed);
        c.frozen_points.fetch_add(points as u64, Ordering::Relaxed);
        lock(&self.shared.flush).pending += 1;
        let job = FlushJob {
            gen_,
            covers_wal,
            frozen,
            points: points as u64,
        };
        if let Some(tx) = &self.jobs
            && tx.send(job).is_ok()
        {
            return Ok(());
        }
        lock(&self.shared.flush).pending -= 1;
        let e = TsdbError::Corrupt("the flush thread is gone".into());
        self.shared.record_error("starting a flush", &e);
        Err(e)
    }

    fn final_flush(&mut self) -> Result<(), TsdbError> {
        self.maybe_freeze(true)?;
        let mut f = lock(&self.shared.flush);
        while f.pending > 0 {
            f = wait(&self.shared.flush_cv, f);
        }
        match &f.failed {
            Some(msg) => Err(TsdbError::Io {
                context: "flushing to a part".into(),
                source: std::io::Error::other(msg.clone()),
            }),
            None => Ok(()),
        }
    }
}

fn wal_failed(msg: &str) -> TsdbError {
    TsdbError::Io {
        context: "the write-ahead log failed earlier; reopen the database to recover".into(),
        source: std::io::Error::other(msg.to_string()),
    }
}

fn dup_result(r: &Result<(), TsdbError>) -> Result<(), TsdbError> {
    match r {
        Ok(()) => Ok(()),
        Err(e) => Err(e.duplicate()),
    }
}

fn flusher(shared: Arc<Shared>, jobs: mpsc::Receiver<FlushJob>, merges: mpsc::Sender<()>) {
    let mut gave_up = false;
    for job in jobs {
        let mut delay = Duration::from_millis(100);
        while !gave_up {
            match flush_job(&shared, &job) {
                Ok(()) => break,
                Err(e) => {
                    shared.record_error("flushing to a part", &e);
                    if shared.mode() != Mode::Open {
                        // Later generations must not be installed past this
                        // one: the WAL keeps them all for the next open.
                        gave_up = true;
                        lock(&shared.flush).failed = Some(e.to_string());
                        shared.flush_cv.notify_all();
                    } else {
                        std::thread::sleep(delay);
                        delay = (delay * 2).min(Duration::from_secs(5));
                    }
                }
            }
        }
        drop(job);
        lock(&shared.flush).pending -= 1;
        shared.flush_cv.notify_all();
        let _ = merges.send(());
    }
}

fn flush_job(shared: &Shared, job: &FlushJob) -> Result<(), TsdbError> {
    let mut w = PartWriter::create(
        &shared.parts_dir,
        job.gen_,
        job.gen_,
        job.gen_,
        job.covers_wal,
    )?;
    let max_local = job.frozen.iter().map(|f| f.series.len()).max().unwrap_or(0);
    let (mut ts, mut nums, mut any) = (Vec::new(), Vec::new(), Vec::new());
    for local in 0..max_local {
        for (shard, f) in job.frozen.iter().enumerate().take(SHARDS) {
            let Some(buf) = f.series.get(local) else {
                continue;
            };
            if buf.is_empty() {
                continue;
            }
            ts.clear();
            let series = series_id(shard, local);
            match buf {
                SeriesBuf::Num(v) => {
                    nums.clear();
                    for &(t, x) in v {
                        ts.push(t);
                        nums.push(x);
                    }
                    w.add_series(series, &ts, ValsRef::Num(&nums))?;
                }
                SeriesBuf::Any(v) => {
                    any.clear();
                    for (t, x) in v {
                        ts.push(*t);
                        any.push(x.clone());
                    }
                    w.add_series(series, &ts, ValsRef::Any(&any))?;
                }
            }
        }
    }
    let part = w.finish()?;
    tracing::debug!(
        part = part.id,
        points = part.points,
        bytes = part.size,
        "flushed the memtable to a part"
    );
    install(shared, part, &[], Some(job.gen_));
    shared
        .counters
        .frozen_points
        .fetch_sub(job.points, Ordering::Relaxed);
    match wal::remove_upto(&shared.wal_dir, job.covers_wal) {
        Ok(freed) => {
            let _ =
                shared
                    .counters
                    .wal_bytes
                    .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |b| {
                        Some(b.saturating_sub(freed))
                    });
        }
        // Harmless: the next flush (or open) deletes them.
        Err(e) => shared.record_error("deleting flushed write-ahead log segments", &e),
    }
    Ok(())
}

/// Publishes `part` (dropping parts `replaced` and frozen generation `forget`) atomically for readers.
pub(crate) fn install(shared: &Shared, part: Part, replaced: &[u64], forget: Option<u64>) {
    let _gate = write(&shared.gate);
    let mut parts: Vec<Arc<Part>> = shared
        .parts_snapshot()
        .iter()
        .filter(|p| !replaced.contains(&p.id))
        .cloned()
        .collect();
    parts.push(Arc::new(part));
    parts.sort_by_key(|p| (p.max_seq, p.id));
    *write(&shared.parts) = Arc::new(parts);
    if let Some(g) = forget {
        shared.mem.forget(g);
    }
}

/// Used by `Tsdb::latest`'s callers through the handle; kept here so the
/// handle stays a thin wrapper.
pub(crate) fn latest(shared: &Shared, series: u32) -> Option<(i64, TsValue)> {
    if series >= MAX_SERIES {
        return None;
    }
    shared.mem.latest(series)
}
