//! Behaviour of the whole engine: a model check over random appends,
//! flushes and reopens, and the durability and back-pressure promises.

use super::*;
use crate::memtable::{read, write};
use panorama_core::series::Agg;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn num(series: u32, ts: i64, v: f64) -> Point {
    Point {
        series,
        ts,
        value: TsValue::Number(v),
    }
}

fn opts(sync: bool, memtable_max_points: usize) -> Options {
    Options {
        sync,
        queue_capacity: 1024,
        memtable_max_points,
    }
}

fn files(dir: &Path, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == ext))
        .collect();
    v.sort();
    v
}

fn all(db: &Tsdb, series: u32) -> Vec<(i64, TsValue)> {
    db.range(series, i64::MIN, i64::MAX, usize::MAX).unwrap()
}

/// The behaviour `Tsdb` must match: a map from (series, ts) to the last write.
#[derive(Default)]
struct Model(BTreeMap<(u32, i64), TsValue>);

impl Model {
    fn append(&mut self, points: &[Point]) {
        for p in points {
            self.0.insert((p.series, p.ts), p.value.clone());
        }
    }

    fn range(&self, s: u32, from: i64, to: i64, limit: usize) -> Vec<(i64, TsValue)> {
        if from >= to {
            return Vec::new();
        }
        self.0
            .range((s, from)..(s, to))
            .take(limit)
            .map(|((_, t), v)| (*t, v.clone()))
            .collect()
    }

    fn latest(&self, s: u32) -> Option<(i64, TsValue)> {
        self.0
            .range((s, i64::MIN)..=(s, i64::MAX))
            .next_back()
            .map(|((_, t), v)| (*t, v.clone()))
    }

    /// Buckets, plus for each whether its last value is unambiguous (one point at `last_t`).
    fn buckets(&self, series: &[u32], from: i64, to: i64, b: Bucket) -> Vec<(i64, Acc, bool)> {
        let mut out: BTreeMap<i64, (Acc, usize)> = BTreeMap::new();
        for ((s, t), v) in &self.0 {
            if let TsValue::Number(x) = v
                && series.contains(s)
                && *t >= from
                && *t < to
            {
                out.entry(b.floor(*t))
                    .or_insert((Acc::default(), 0))
                    .0
                    .add(*t, *x);
            }
        }
        for ((s, t), v) in &self.0 {
            if let (TsValue::Number(_), Some((acc, n))) = (v, out.get_mut(&b.floor(*t)))
                && series.contains(s)
                && *t == acc.last_t
            {
                *n += 1;
            }
        }
        out.into_iter().map(|(k, (a, n))| (k, a, n == 1)).collect()
    }
}

fn check_against(db: &Tsdb, model: &Model, series: u32, base: i64) -> Result<(), TestCaseError> {
    for s in 0..series {
        prop_assert_eq!(db.latest(s), model.latest(s), "latest of {}", s);
        prop_assert_eq!(
            all(db, s),
            model.range(s, i64::MIN, i64::MAX, usize::MAX),
            "all of {}",
            s
        );
        for (from, to, limit) in [
            (base + 100_000, base + 700_000, usize::MAX),
            (base, base + 2_000_000, 7),
            (base + 5, base + 5, 3),
        ] {
            prop_assert_eq!(
                db.range(s, from, to, limit)?,
                model.range(s, from, to, limit),
                "range of {}",
                s
            );
        }
    }
    let ids: Vec<u32> = (0..series).collect();
    for (b, from, to) in [
        ("1m", base - 60_000, base + 2_000_000),
        ("5m", base + 130_000, base + 900_001),
        ("1d", i64::MIN, i64::MAX),
        // Whole-hour buckets: blocks of parts wholly inside the range are read
        // from their hourly rollups (built at the first such query, reused by
        // the next check), the rest decoded; both must give the model's answer.
        ("1h", i64::MIN, i64::MAX),
        (
            "3h",
            base.div_euclid(3_600_000) * 3_600_000,
            base + 7_200_000,
        ),
        ("1h", base + 130_000, base + 3_600_000),
    ] {
        let b = Bucket::parse(b).unwrap();
        for set in [&ids[..], &ids[..1], &ids[1..]] {
            let got = db.buckets(set, from, to, b)?;
            let want = model.buckets(set, from, to, b);
            prop_assert_eq!(got.len(), want.len(), "bucket count");
            for ((gk, ga), (wk, wa, unique)) in got.iter().zip(&want) {
                prop_assert_eq!(gk, wk);
                prop_assert_eq!(ga.count, wa.count);
                prop_assert_eq!(ga.sum, wa.sum); // values are small multiples of 1/4: sums are exact
                prop_assert_eq!(ga.min, wa.min);
                prop_assert_eq!(ga.max, wa.max);
                prop_assert_eq!(ga.last_t, wa.last_t);
                if *unique {
                    prop_assert_eq!(ga.last, wa.last);
                }
                prop_assert_eq!(ga.get(Agg::Avg), wa.get(Agg::Avg));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone)]
enum Op {
    Append(Vec<(u32, i64, TsValue)>),
    /// Close (flushing everything into parts) and open again.
    CloseReopen,
    /// Drop without closing (the WAL is replayed) and open again.
    CrashReopen,
}

fn value() -> impl Strategy<Value = TsValue> {
    prop_oneof![
        8 => (-4000i32..4000).prop_map(|q| TsValue::Number(f64::from(q) / 4.0)),
        1 => any::<bool>().prop_map(TsValue::Bool),
        1 => "[a-zé ]{0,6}".prop_map(TsValue::Text),
        1 => "\\{\"a\":[0-9]{1,3}\\}".prop_map(TsValue::Json),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => prop::collection::vec((0u32..4, 0i64..40, value()), 1..25).prop_map(Op::Append),
        1 => Just(Op::CloseReopen),
        1 => Just(Op::CrashReopen),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn reads_match_a_model_through_flushes_and_reopens(
        ops in prop::collection::vec(op(), 1..14),
        base in prop_oneof![Just(-600_000i64), Just(1_700_000_000_000i64)],
        max_points in 1usize..30,
    ) {
        let rt = rt();
        let dir = tempfile::tempdir().unwrap();
        let o = opts(false, max_points); // no fdatasync: this test is about read results
        let mut db = Tsdb::open(dir.path(), o.clone()).unwrap();
        let mut model = Model::default();
        for op in ops {
            match op {
                Op::Append(raw) => {
                    // Minutes apart, with a few milliseconds of jitter, out of order and repeated.
                    let points: Vec<Point> = raw
                        .into_iter()
                        .map(|(s, k, value)| Point { series: s, ts: base + k * 57_000 + (k % 3), value })
                        .collect();
                    rt.block_on(db.append(points.clone())).unwrap();
                    model.append(&points);
                }
                Op::CloseReopen => {
                    rt.block_on(db.close()).unwrap();
                    check_against(&db, &model, 4, base)?;
                    prop_assert_eq!(db.stats().memtable_points, 0);
                    drop(db);
                    db = Tsdb::open(dir.path(), o.clone()).unwrap();
                }
                Op::CrashReopen => {
                    drop(db);
                    db = Tsdb::open(dir.path(), o.clone()).unwrap();
                }
            }
            check_against(&db, &model, 4, base)?;
        }
        rt.block_on(db.close()).unwrap();
        check_against(&db, &model, 4, base)?;
        drop(db);
        let db = Tsdb::open(dir.path(), o).unwrap();
        check_against(&db, &model, 4, base)?;
        prop_assert!(db.stats().last_error.is_none());
    }
}

#[test]
fn acknowledged_appends_survive_a_drop_without_close() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    for i in 0..10 {
        rt.block_on(db.append(vec![num(1, i * 1000, i as f64), num(2, i, -(i as f64))]))
            .unwrap();
    }
    let st = db.stats();
    assert_eq!(
        (st.points_appended, st.memtable_points, st.parts),
        (20, 20, 0)
    );
    drop(db);
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert_eq!(
        all(&db, 1),
        (0..10)
            .map(|i| (i * 1000, TsValue::Number(i as f64)))
            .collect::<Vec<_>>()
    );
    assert_eq!(db.latest(2), Some((9, TsValue::Number(-9.0))));
    let st = db.stats();
    assert_eq!(
        (st.points_appended, st.memtable_points, st.parts),
        (0, 20, 0)
    );
    let on_disk: u64 = files(&dir.path().join("wal"), "wal")
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert_eq!(st.wal_bytes, on_disk);
}

fn segment(dir: &Path) -> PathBuf {
    let segs = files(&dir.join("wal"), "wal");
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs[0].clone()
}

#[test]
fn a_torn_last_record_is_dropped_and_nothing_else() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    for i in 0..3 {
        rt.block_on(db.append(vec![num(0, i, i as f64)])).unwrap();
    }
    drop(db);
    let seg = segment(dir.path());
    let len = std::fs::metadata(&seg).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 3)
        .unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert_eq!(
        all(&db, 0),
        vec![(0, TsValue::Number(0.0)), (1, TsValue::Number(1.0))]
    );
    // Appends after the cut are found again after the next crash.
    rt.block_on(db.append(vec![num(0, 7, 7.0)])).unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert_eq!(all(&db, 0).len(), 3);
    assert_eq!(db.latest(0), Some((7, TsValue::Number(7.0))));
}

#[test]
fn garbage_after_the_last_record_is_cut_off_and_later_appends_are_kept() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    rt.block_on(db.append(vec![num(0, 1, 1.0), num(0, 2, 2.0)]))
        .unwrap();
    drop(db);
    let seg = segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let good = bytes.len();
    bytes.extend_from_slice(&[0x10, 0, 0, 0, 0xde, 0xad, 0xbe, 0xef, 1, 2, 3]);
    bytes.extend_from_slice(&[0; 64]);
    std::fs::write(&seg, &bytes).unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert_eq!(std::fs::metadata(&seg).unwrap().len(), good as u64);
    assert_eq!(all(&db, 0).len(), 2);
    rt.block_on(db.append(vec![num(0, 3, 3.0)])).unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert_eq!(
        all(&db, 0).iter().map(|p| p.0).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
}

#[test]
fn damage_before_later_segments_is_reported_not_skipped() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    rt.block_on(db.append(vec![num(0, 1, 1.0)])).unwrap();
    drop(db);
    let seg = segment(dir.path());
    let mut bytes = std::fs::read(&seg).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&seg, &bytes).unwrap();
    // A later segment means the damaged record was followed by acknowledged ones.
    let next = seg.with_file_name(format!("{:020}.wal", 99));
    std::fs::write(&next, b"PTSW\x01\x00\x00\x00").unwrap();
    assert!(matches!(
        Tsdb::open(dir.path(), Options::default()),
        Err(TsdbError::Corrupt(_))
    ));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let p = e.unwrap().path();
        std::fs::copy(&p, to.join(p.file_name().unwrap())).unwrap();
    }
}

#[test]
fn wal_segments_left_behind_by_a_flush_do_not_duplicate_or_override() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let wal = dir.path().join("wal");
    // Session 1: v1 at (5, 100), durable in the WAL only.
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    rt.block_on(db.append(vec![num(5, 100, 1.0), num(5, 200, 2.0)]))
        .unwrap();
    drop(db);
    copy_dir(&wal, &saved.path().join("1"));
    // Session 2: flushed into a part on close, which deletes the WAL segment.
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    rt.block_on(db.close()).unwrap();
    assert_eq!(db.stats().parts, 1);
    drop(db);
    // Session 3: v2 replaces v1, then flushed into a second part.
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    rt.block_on(db.append(vec![num(5, 100, 9.0)])).unwrap();
    rt.block_on(db.close()).unwrap();
    drop(db);
    // Crash between part rename and WAL deletion: the old segments reappear.
    copy_dir(&saved.path().join("1"), &wal);
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert_eq!(
        all(&db, 5),
        vec![(100, TsValue::Number(9.0)), (200, TsValue::Number(2.0))]
    );
    assert_eq!(db.latest(5), Some((200, TsValue::Number(2.0))));
    let b = db
        .buckets(&[5], 0, 1000, Bucket::parse("1m").unwrap())
        .unwrap();
    assert_eq!((b.len(), b[0].1.count, b[0].1.sum), (1, 2, 11.0));
    let st = db.stats();
    assert_eq!((st.parts, st.memtable_points), (2, 0));
    assert_eq!(
        files(&wal, "wal").len(),
        1,
        "covered segments are deleted at open"
    );
}

#[test]
fn a_part_cut_short_before_its_rename_is_ignored() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    rt.block_on(db.append(vec![num(0, 1, 1.0)])).unwrap();
    drop(db);
    let tmp = dir.path().join("parts").join(format!("{:020}.part.tmp", 1));
    std::fs::write(&tmp, b"PTSP\x01 half a part").unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert!(!tmp.exists());
    assert_eq!(all(&db, 0), vec![(1, TsValue::Number(1.0))]);
    rt.block_on(db.close()).unwrap();
    assert_eq!(db.stats().parts, 1);
}

#[test]
fn flushes_move_points_to_parts_and_delete_the_wal_they_cover() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts(true, 100)).unwrap();
    for i in 0..10 {
        let batch = (0..50)
            .map(|s| num(s, i * 60_000, f64::from(s) + i as f64))
            .collect();
        rt.block_on(db.append(batch)).unwrap();
    }
    // 500 points with a limit of 100 start several flushes (and merges); wait for them to land.
    let on_disk = |sub: &str, ext: &str| -> u64 {
        files(&dir.path().join(sub), ext)
            .iter()
            .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
            .sum()
    };
    let settled = || {
        let st = db.stats();
        st.memtable_points <= 100
            && st.parts >= 1
            && st.disk_bytes == on_disk("parts", "part")
            && st.wal_bytes == on_disk("wal", "wal")
            && files(&dir.path().join("wal"), "wal").len() == 1
    };
    wait_until("flushes to settle", settled);
    assert_eq!(all(&db, 7).len(), 10);
    rt.block_on(db.close()).unwrap();
    let st = db.stats();
    assert_eq!(st.memtable_points, 0);
    assert_eq!(st.points_appended, 500);
    // Every background thread has stopped: the counters must match the files exactly.
    assert_eq!(st.disk_bytes, on_disk("parts", "part"));
    assert_eq!(st.wal_bytes, on_disk("wal", "wal"));
    assert_eq!(
        all(&db, 49).last(),
        Some(&(9 * 60_000, TsValue::Number(58.0)))
    );
}

#[test]
fn a_full_queue_answers_busy_at_once() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        Tsdb::open(
            dir.path(),
            Options {
                queue_capacity: 1,
                ..opts(false, 1000)
            },
        )
        .unwrap(),
    );
    // Hold the writer inside its first group: it applies to shard 0 after writing the WAL.
    let shard = read(&db.shared.mem.shards[0]);
    let first = rt.spawn({
        let db = db.clone();
        async move { db.append(vec![num(0, 1, 1.0)]).await }
    });
    while !lock(&db.shared.queue).reqs.is_empty() || db.stats().wal_bytes < 20 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = rt.spawn({
        let db = db.clone();
        async move { db.append(vec![num(0, 2, 2.0)]).await }
    });
    while lock(&db.shared.queue).reqs.is_empty() {
        std::thread::sleep(Duration::from_millis(1));
    }
    assert!(matches!(
        rt.block_on(db.append(vec![num(0, 3, 3.0)])),
        Err(TsdbError::Busy)
    ));
    drop(shard);
    rt.block_on(first).unwrap().unwrap();
    rt.block_on(second).unwrap().unwrap();
    assert_eq!(all(&db, 0).len(), 2);
}

#[test]
fn concurrent_appends_share_one_wal_record() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(Tsdb::open(dir.path(), Options::default()).unwrap());
    let shard = write(&db.shared.mem.shards[1]);
    let mut tasks = vec![rt.spawn({
        let db = db.clone();
        async move { db.append(vec![num(1, 0, 0.0)]).await }
    })];
    while !lock(&db.shared.queue).reqs.is_empty() || db.stats().wal_bytes < 20 {
        std::thread::sleep(Duration::from_millis(1));
    }
    for i in 1..=10 {
        let db = db.clone();
        tasks.push(rt.spawn(async move { db.append(vec![num(1, i, i as f64)]).await }));
    }
    while lock(&db.shared.queue).reqs.len() < 10 {
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(shard);
    for t in tasks {
        rt.block_on(t).unwrap().unwrap();
    }
    assert_eq!(all(&db, 1).len(), 11);
    let mut records = 0;
    wal::replay(&segment(dir.path()), |_| records += 1).unwrap();
    assert_eq!(
        records, 2,
        "one record for the first append, one for the ten queued behind it"
    );
}

#[test]
fn appends_after_close_are_refused_and_reads_still_work() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    rt.block_on(db.append(vec![num(3, 10, 1.5)])).unwrap();
    rt.block_on(db.close()).unwrap();
    assert!(matches!(
        rt.block_on(db.append(vec![num(3, 11, 1.0)])),
        Err(TsdbError::Closed)
    ));
    assert!(matches!(
        rt.block_on(db.append(vec![])),
        Err(TsdbError::Closed)
    ));
    rt.block_on(db.close()).unwrap();
    assert_eq!(all(&db, 3), vec![(10, TsValue::Number(1.5))]);
    assert_eq!(db.latest(3), Some((10, TsValue::Number(1.5))));
}

#[test]
fn a_newer_format_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(Tsdb::open(dir.path(), Options::default()).unwrap());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("VERSION")).unwrap(),
        "1\n"
    );
    std::fs::write(dir.path().join("VERSION"), "2\n").unwrap();
    match Tsdb::open(dir.path(), Options::default()) {
        Err(TsdbError::TooNew {
            found: 2,
            supported: 1,
        }) => {}
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[test]
fn a_directory_cannot_be_opened_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        Tsdb::open(dir.path(), Options::default()),
        Err(TsdbError::Locked(_))
    ));
    drop(db);
    Tsdb::open(dir.path(), Options::default()).unwrap();
}

#[test]
fn series_ids_beyond_the_limit_are_invalid() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert!(matches!(
        rt.block_on(db.append(vec![num(MAX_SERIES, 0, 0.0)])),
        Err(TsdbError::Invalid(_))
    ));
    assert_eq!(db.latest(u32::MAX), None);
    assert!(db.range(u32::MAX, 0, 10, 10).unwrap().is_empty());
}

#[test]
fn text_values_survive_flush_and_latest_takes_the_last_write_at_a_tie() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    rt.block_on(db.append(vec![
        Point {
            series: 9,
            ts: 5,
            value: TsValue::Json("{\"a\":1}".into()),
        },
        Point {
            series: 9,
            ts: 5,
            value: TsValue::Text("wins".into()),
        },
        Point {
            series: 9,
            ts: 3,
            value: TsValue::Bool(true),
        },
    ]))
    .unwrap();
    rt.block_on(db.close()).unwrap();
    drop(db);
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert_eq!(db.latest(9), Some((5, TsValue::Text("wins".into()))));
    assert_eq!(
        all(&db, 9),
        vec![(3, TsValue::Bool(true)), (5, TsValue::Text("wins".into()))]
    );
    assert!(
        db.buckets(&[9], 0, 10, Bucket::parse("1m").unwrap())
            .unwrap()
            .is_empty()
    );
}

fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn many_small_flushes_are_merged_into_few_parts() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let db = Tsdb::open(dir.path(), opts(false, 10)).unwrap();
    let mut model = Model::default();
    for i in 0..60i64 {
        // Every batch rewrites one earlier time too, so merges must pick the newest value.
        let mut batch: Vec<Point> = (0..12)
            .map(|s| num(s, i * 60_000, (i * 100 + i64::from(s)) as f64))
            .collect();
        batch.push(num(0, (i / 2) * 60_000, -(i as f64)));
        rt.block_on(db.append(batch.clone())).unwrap();
        model.append(&batch);
    }
    wait_until("merges", || {
        db.stats().memtable_points <= 10 && db.stats().parts <= 3
    });
    let parts_dir = dir.path().join("parts");
    assert_eq!(files(&parts_dir, "part").len() as u64, db.stats().parts);
    for s in 0..12 {
        assert_eq!(all(&db, s), model.range(s, i64::MIN, i64::MAX, usize::MAX));
    }
    rt.block_on(db.close()).unwrap();
    assert!(db.stats().last_error.is_none(), "{:?}", db.stats());
}

#[test]
fn inputs_left_behind_by_an_interrupted_merge_are_removed_at_open() {
    let rt = rt();
    let dir = tempfile::tempdir().unwrap();
    let saved = tempfile::tempdir().unwrap();
    let parts_dir = dir.path().join("parts");
    let mut model = Model::default();
    // Four sessions, each closed: four flushed parts, too few to merge until the fourth.
    for i in 0..4i64 {
        let db = Tsdb::open(dir.path(), Options::default()).unwrap();
        let batch = vec![num(1, i * 1000, i as f64), num(1, 0, 10.0 + i as f64)];
        rt.block_on(db.append(batch.clone())).unwrap();
        model.append(&batch);
        if i == 3 {
            // Keep three of the four inputs of the merge this close triggers.
            copy_dir(&parts_dir, saved.path());
        }
        rt.block_on(db.close()).unwrap();
    }
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    wait_until("the merge", || db.stats().parts == 1);
    drop(db);
    // A crash after the merged part was installed but before its inputs were deleted.
    copy_dir(saved.path(), &parts_dir);
    assert_eq!(files(&parts_dir, "part").len(), 4);
    let db = Tsdb::open(dir.path(), Options::default()).unwrap();
    assert_eq!(files(&parts_dir, "part").len(), 1);
    assert_eq!(all(&db, 1), model.range(1, i64::MIN, i64::MAX, usize::MAX));
    assert_eq!(db.latest(1), Some((3000, TsValue::Number(3.0))));
    let b = db
        .buckets(&[1], 0, 10_000, Bucket::parse("1m").unwrap())
        .unwrap();
    assert_eq!((b[0].1.count, b[0].1.sum), (4, 13.0 + 1.0 + 2.0 + 3.0));
}
