//! The history: shape, count, determinism, and that things happen in it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use chrono::{DateTime, Duration, TimeZone, Utc};
use panorama_core::{Entity, Value};
use panorama_demo::{DemoData, DemoOptions, backfill, build};
use std::collections::{BTreeMap, HashMap};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 27).unwrap()
}

fn small(days: u32) -> (DemoData, DemoOptions) {
    let opts = DemoOptions {
        sensors: 300,
        cameras: 30,
        backfill_days: days,
        ..DemoOptions::new(now())
    };
    (build(&opts).unwrap(), opts)
}

fn by_id(d: &DemoData) -> HashMap<&str, &Entity> {
    d.entities.iter().map(|e| (e.id.as_str(), e)).collect()
}

#[test]
fn one_day_has_the_expected_observations_of_declared_attributes() {
    let (d, opts) = small(1);
    let entities = by_id(&d);
    let b = backfill(&d, &opts);
    let expected = b.observation_count();
    let (first, last) = b.range();
    assert_eq!(last, Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 0).unwrap());
    assert_eq!(last - first, Duration::minutes(1439));
    let mut count = 0u64;
    let mut prev = first;
    let mut per_minute: BTreeMap<DateTime<Utc>, u64> = BTreeMap::new();
    for batch in b {
        assert!(
            !batch.is_empty() && batch.len() <= 12_000,
            "batch of {}",
            batch.len()
        );
        for o in &batch {
            let e = entities[o.entity.as_str()];
            let spec = e
                .attributes
                .get(&o.attribute)
                .unwrap_or_else(|| panic!("{} has no {}", o.entity, o.attribute));
            o.value.check_type("value", spec.value_type).unwrap();
            assert!(o.time >= prev, "batches are in time order");
            assert!(o.time >= first && o.time <= opts.now);
            if let Value::Number(n) = o.value {
                assert!(n.is_finite());
            }
            prev = o.time;
            *per_minute.entry(o.time).or_default() += 1;
        }
        count += batch.len() as u64;
    }
    assert_eq!(count, expected);
    assert_eq!(per_minute.len(), 1440, "every minute has data");
    // Main attributes of every sensor each minute, camera statuses each hour.
    let series: u64 = d
        .entities
        .iter()
        .filter(|e| e.entity_type != "Camera")
        .map(|e| match e.entity_type.as_str() {
            "AirQualityObserved" | "TrafficFlowObserved" | "WeatherObserved" => 2,
            _ => 1,
        })
        .sum();
    let full = series * 1440 + d.camera_count() as u64 * 24;
    assert!(
        count <= full && count * 100 >= full * 97,
        "{count} of {full}"
    );
}

#[test]
fn the_default_week_is_about_28_million_observations() {
    let opts = DemoOptions::new(now());
    let d = build(&opts).unwrap();
    let b = backfill(&d, &opts);
    let n = b.observation_count();
    assert!((20_000_000..30_000_000).contains(&n), "{n}");
    assert_eq!(b.batches(), 7 * 1440 / 3);
    // Every feed has history, and some went silent for a while.
    let per_source = b.count_by_source();
    assert!(per_source.iter().all(|c| *c > 0));
    let mut full: HashMap<&str, u64> = HashMap::new();
    for e in &d.entities {
        let per_minute = match e.entity_type.as_str() {
            "AirQualityObserved" | "TrafficFlowObserved" | "WeatherObserved" => 2,
            "Camera" => 0,
            _ => 1,
        };
        *full.entry(e.source.as_deref().unwrap()).or_default() += per_minute * 7 * 1440;
    }
    let silenced = d
        .sources
        .iter()
        .zip(&per_source)
        .filter(|(s, n)| full[s.source.id.as_str()] > 0 && **n < full[s.source.id.as_str()])
        .count();
    assert!(silenced >= 3, "{silenced} feeds went silent");
}

#[test]
fn the_same_seed_gives_the_same_history() {
    let (d, opts) = small(1);
    let a = backfill(&d, &opts);
    let b = backfill(&build(&opts).unwrap(), &opts);
    assert_eq!(a.batch(0), b.batch(0));
    assert_eq!(a.batch(a.batches() - 1), b.batch(b.batches() - 1));
    let other = DemoOptions {
        seed: 9,
        ..opts.clone()
    };
    assert_ne!(
        backfill(&build(&other).unwrap(), &other).batch(0),
        a.batch(0)
    );
    // A batch regenerated on its own equals the one iterated to.
    let mut it = backfill(&d, &opts);
    let _ = it.next();
    assert_eq!(it.next().unwrap(), a.batch(1));
}

#[test]
fn a_week_of_history_shows_rhythms_and_events() {
    let (d, opts) = small(7);
    let entities = by_id(&d);
    let b = backfill(&d, &opts);
    let expected = b.observation_count();
    let mut count = 0u64;
    let mut max: HashMap<(&str, &str), f64> = HashMap::new();
    let mut rush = (0.0, 0u32);
    let mut night = (0.0, 0u32);
    let mut offline = 0;
    for batch in b {
        count += batch.len() as u64;
        for o in &batch {
            let e = entities[o.entity.as_str()];
            match &o.value {
                Value::Number(v) => {
                    let k = (
                        e.entity_type.as_str(),
                        e.attributes.get_key_value(&o.attribute).unwrap().0.as_str(),
                    );
                    let m = max.entry(k).or_insert(f64::MIN);
                    *m = m.max(*v);
                    if o.attribute == "intensity" {
                        // Local hour (UTC+7).
                        let h = (o.time + Duration::hours(7)).format("%H%M").to_string();
                        if ("0700".."0800").contains(&h.as_str()) {
                            rush = (rush.0 + v, rush.1 + 1);
                        } else if ("0200".."0300").contains(&h.as_str()) {
                            night = (night.0 + v, night.1 + 1);
                        }
                    }
                }
                Value::Text(t) if t == "offline" => offline += 1,
                _ => {}
            }
        }
    }
    assert_eq!(count, expected);
    let get = |t: &str, a: &str| max.get(&(t, a)).copied().unwrap();
    eprintln!("{max:?}");
    // Rush hour is busier than the night.
    assert!(rush.0 / f64::from(rush.1) > 4.0 * night.0 / f64::from(night.1));
    // Rain, rising water and flooded streets happened during the week.
    assert!(get("WeatherObserved", "precipitation") > 10.0);
    assert!(get("FloodMonitoring", "currentLevel") > 0.05);
    // Air quality got unhealthy somewhere.
    assert!(get("AirQualityObserved", "aqi") > 150.0);
    // Cameras go offline now and then; lights switch on at night.
    assert!(offline > 0);
    assert_eq!(get("Streetlight", "illuminanceLevel"), 1.0);
}

/// Run with `cargo test --release -p panorama-demo --test backfill -- --ignored --nocapture`.
#[test]
#[ignore = "a timing, meaningful in release mode only"]
fn generating_the_default_demo_is_fast() {
    let opts = DemoOptions::new(now());
    let t = std::time::Instant::now();
    let d = build(&opts).unwrap();
    let built = t.elapsed();
    let t = std::time::Instant::now();
    let n: usize = backfill(&d, &opts).map(|b| b.len()).sum();
    let generated = t.elapsed();
    eprintln!(
        "build: {built:?} ({} entities, {} indicator values); backfill: {n} observations in {generated:?} ({:.1} M/s)",
        d.entities.len(),
        d.indicator_values.len(),
        n as f64 / generated.as_secs_f64() / 1e6
    );
}
