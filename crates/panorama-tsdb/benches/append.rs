//! Ingest and query figures for a day of one-minute sensor data: 5,000
//! series × 1,440 minutes = 7.2 M points, appended in batches of 10,000 with
//! fdatasync on, then bytes per point on disk and query timings.
//!
//! Run with `cargo bench -p panorama-tsdb`. The data directory is a fresh
//! temporary directory under `PANORAMA_BENCH_DIR` if set, else the system
//! temporary directory (it must be a real disk for fdatasync to mean anything).

// A bench binary: failing loudly on a broken setup is what it should do.
#![allow(clippy::expect_used, clippy::panic)]

use panorama_core::Bucket;
use panorama_tsdb::{Options, Point, TsValue, Tsdb, TsdbError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const SERIES: u32 = 5_000;
const MINUTES: i64 = 1_440;
const BATCH: usize = 10_000;
/// 2024-05-01T00:00:00+07:00.
const T0: i64 = 1_714_496_400_000;

/// A small seeded generator, so every run stores the same data.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Time-ordered batches: each minute, every series reports one reading with
/// one decimal (a daily cycle plus noise), like a temperature or AQI sensor.
fn batches() -> Vec<Vec<Point>> {
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let params: Vec<(f64, f64, f64)> = (0..SERIES)
        .map(|_| {
            (
                10.0 + 30.0 * rng.unit(),
                1.0 + 5.0 * rng.unit(),
                std::f64::consts::TAU * rng.unit(),
            )
        })
        .collect();
    let mut out = Vec::new();
    let mut cur = Vec::with_capacity(BATCH);
    for m in 0..MINUTES {
        let phase = std::f64::consts::TAU * m as f64 / MINUTES as f64;
        for (s, (base, amp, shift)) in params.iter().enumerate() {
            let v = base + amp * (phase + shift).sin() + 0.3 * (rng.unit() - 0.5);
            cur.push(Point {
                series: s as u32,
                ts: T0 + m * 60_000,
                value: TsValue::Number((v * 10.0).round() / 10.0),
            });
            if cur.len() == BATCH {
                out.push(std::mem::replace(&mut cur, Vec::with_capacity(BATCH)));
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn tempdir() -> tempfile::TempDir {
    match std::env::var_os("PANORAMA_BENCH_DIR") {
        Some(d) => tempfile::tempdir_in(d).expect("bench dir"),
        None => tempfile::tempdir().expect("temp dir"),
    }
}

/// Appends every batch with `in_flight` concurrent callers; returns the seconds taken and Busy answers seen.
fn ingest(rt: &tokio::runtime::Runtime, db: &Arc<Tsdb>, in_flight: usize) -> (f64, u64) {
    // Reversed, so that popping hands batches out in time order.
    let queue = Arc::new(Mutex::new(batches().into_iter().rev().collect::<Vec<_>>()));
    let start = Instant::now();
    let busy: u64 = rt.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..in_flight {
            let (db, queue) = (db.clone(), queue.clone());
            tasks.push(tokio::spawn(async move {
                let mut busy = 0;
                loop {
                    let Some(batch) = queue.lock().expect("queue").pop() else {
                        break;
                    };
                    loop {
                        match db.append(batch.clone()).await {
                            Ok(()) => break,
                            Err(TsdbError::Busy) => {
                                busy += 1;
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                            Err(e) => panic!("append failed: {e}"),
                        }
                    }
                }
                busy
            }));
        }
        let mut busy = 0;
        for t in tasks {
            busy += t.await.expect("task");
        }
        busy
    });
    (start.elapsed().as_secs_f64(), busy)
}

fn time<T>(f: impl FnMut() -> T, runs: usize) -> (Duration, Duration) {
    let mut f = f;
    let mut v: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    v.sort();
    (v[0], v[v.len() / 2])
}

fn queries(db: &Tsdb, label: &str) {
    let day = (T0, T0 + MINUTES * 60_000);
    let minute = Bucket::parse("1m").expect("bucket");
    let all: Vec<u32> = (0..SERIES).collect();
    let n = db.range(17, day.0, day.1, usize::MAX).expect("range").len();
    assert_eq!(n, MINUTES as usize);
    let mut s = 0u32;
    let (rmin, rmed) = time(
        || {
            s = (s + 7919) % SERIES;
            db.range(s, day.0, day.1, usize::MAX).expect("range")
        },
        200,
    );
    let b = db.buckets(&all, day.0, day.1, minute).expect("buckets");
    assert_eq!(b.len(), MINUTES as usize);
    assert_eq!(
        b.iter().map(|(_, a)| a.count).sum::<u64>(),
        u64::from(SERIES) * MINUTES as u64
    );
    let (bmin, bmed) = time(
        || db.buckets(&all, day.0, day.1, minute).expect("buckets"),
        7,
    );
    let hour = Bucket::parse("1h").expect("bucket");
    let (hmin, hmed) = time(
        || {
            db.buckets(&all[..100], day.0, day.1, hour)
                .expect("buckets")
        },
        20,
    );
    let (lmin, lmed) = time(|| all.iter().filter_map(|s| db.latest(*s)).count(), 20);
    println!("  queries ({label}):");
    println!("    range, one series, 24 h (1,440 points):        min {rmin:?}, median {rmed:?}");
    println!("    buckets 1m, all 5,000 series, 24 h:            min {bmin:?}, median {bmed:?}");
    println!("    buckets 1h, 100 series, 24 h:                  min {hmin:?}, median {hmed:?}");
    println!("    latest of all 5,000 series:                    min {lmin:?}, median {lmed:?}");
}

fn main() {
    // `cargo bench` passes `--bench`; this binary takes no options.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let total = u64::from(SERIES) * MINUTES as u64;
    println!(
        "panorama-tsdb: {SERIES} series × {MINUTES} minutes = {total} points, batches of {BATCH}, sync on"
    );

    for in_flight in [1, 4] {
        let dir = tempdir();
        let db = Arc::new(Tsdb::open(dir.path(), Options::default()).expect("open"));
        let (secs, busy) = ingest(&rt, &db, in_flight);
        let st = db.stats();
        assert_eq!(st.points_appended, total);
        println!(
            "\nappend, {in_flight} batch(es) in flight: {:.2} s, {:.0} points/s durable ({busy} Busy retries)",
            secs,
            total as f64 / secs
        );
        println!(
            "  after ingest: {} points in memory, {} part(s), WAL {:.1} MB",
            st.memtable_points,
            st.parts,
            st.wal_bytes as f64 / 1e6
        );
        if in_flight == 1 {
            continue;
        }
        queries(&db, "memtable + parts, right after ingest");
        let t = Instant::now();
        rt.block_on(db.close()).expect("close");
        let st = db.stats();
        println!("  close (flush to parts): {:?}", t.elapsed());
        println!(
            "  on disk after flush: {} bytes in {} part(s) = {:.3} bytes/point (WAL {} bytes)",
            st.disk_bytes,
            st.parts,
            st.disk_bytes as f64 / total as f64,
            st.wal_bytes
        );
        queries(&db, "all in parts, after close");
        drop(db);
        let t = Instant::now();
        let db = Tsdb::open(dir.path(), Options::default()).expect("reopen");
        println!("  reopen (load part indexes): {:?}", t.elapsed());
        queries(&db, "after reopen (page cache warm)");
    }
}
