//! Durable ingest throughput with 0 and with 10,000 rules, in one run.
//!
//! `cargo bench -p panorama-rules --bench ingest_with_rules`
//! (`-- --obs 1000000 --rounds 3` to change the load; `--engine-only` to
//! measure only the rule engine alone, e.g. under callgrind).
//!
//! 5,000 air-quality sensors in 9 districts; the rules are a province's
//! likely mix: 9,000 per-sensor thresholds, 900 per-district thresholds and
//! hourly averages, 100 province-wide rules by type and domain (about 100
//! rules match each observation). Writers post batches of 1,000
//! observations through the real pipeline (`Ingest`: durable append, then
//! the event bus); the rule engine runs on the bus as in the server. Each
//! round measures (a) durable ingest: until every write was acknowledged,
//! and (b) end to end: until the engine has evaluated every observation.
//! Rounds alternate between the two data dirs; medians are reported.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use panorama_core::{
    AdminLevel, AdminUnit, AttributeSpec, Entity, ManualClock, Observation, Value, ValueType,
};
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_rules::{Dur, Ops, RulesConfig};
use panorama_store::{RuleRecord, SharedStore};
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::json;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SENSORS: usize = 5_000;
const DISTRICTS: usize = 9;
const BATCH: usize = 1_000;
const WRITERS: usize = 4;

fn t0() -> panorama_core::Timestamp {
    chrono::DateTime::parse_from_rfc3339("2024-05-01T00:00:00Z")
        .unwrap()
        .to_utc()
}

fn sensor(i: usize) -> String {
    format!("urn:ngsi-ld:AirQualityObserved:b{i:05}")
}

/// A small deterministic generator (the bench needs no real randomness).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

async fn open(dir: &Path) -> SharedStore {
    Arc::new(
        SqliteStore::open(dir, SqliteOptions::default())
            .await
            .unwrap(),
    )
}

async fn seed(store: &SharedStore) {
    let mut units = vec![AdminUnit {
        code: "74".into(),
        name: "Bình Dương".into(),
        name_en: None,
        level: AdminLevel::Province,
        parent: None,
        geometry: None,
        valid_from: None,
        valid_to: None,
        successors: Vec::new(),
    }];
    for d in 0..DISTRICTS {
        units.push(AdminUnit {
            code: format!("7{d:02}"),
            name: format!("Huyện {d}"),
            parent: Some("74".into()),
            level: AdminLevel::District,
            ..units[0].clone()
        });
    }
    store.upsert_admin_units(&units).await.unwrap();
    let spec = |unit: &str| AttributeSpec {
        value_type: ValueType::Number,
        unit: Some(unit.into()),
    };
    let entities: Vec<Entity> = (0..SENSORS)
        .map(|i| Entity {
            id: sensor(i),
            entity_type: "AirQualityObserved".into(),
            name: format!("Trạm {i}"),
            domain: "environment".into(),
            admin_unit: Some(format!("7{:02}", i % DISTRICTS)),
            location: None,
            attributes: [
                ("pm25".to_string(), spec("µg/m3")),
                ("aqi".to_string(), spec("")),
            ]
            .into_iter()
            .collect(),
            properties: serde_json::Map::new(),
            source: None,
            updated_at: None,
        })
        .collect();
    store.upsert_entities(&entities, t0()).await.unwrap();
}

/// How rules are spread: per sensor, per district, province-wide.
#[derive(Debug, Clone, Copy)]
struct Mix {
    per_district: usize,
    province: usize,
}

impl Mix {
    /// A province's likely rules: mostly per sensor, a few per district and
    /// province-wide (about 11 rules match each observation).
    const REALISTIC: Mix = Mix {
        per_district: 10,
        province: 10,
    };
    /// A stress case: 100 rules per district and 100 province-wide (about
    /// 100 rules match each observation).
    const HEAVY: Mix = Mix {
        per_district: 100,
        province: 100,
    };
}

/// The 10,000 rules, levels high enough that they fire rarely, and the
/// mean number of rules matching one observation.
fn rules(mix: Mix) -> (Vec<serde_json::Value>, f64) {
    let mut rng = Lcg(7);
    let mut out = Vec::new();
    let attr_of = |i: usize| if i.is_multiple_of(2) { "pm25" } else { "aqi" };
    let districts = mix.per_district * DISTRICTS;
    let per_sensor = 10_000 - districts - mix.province;
    // Series matched by each rule, summed: the mean fan-out per observation
    // (observations are spread evenly over sensors and both attributes).
    let mut matched = 0usize;
    for i in 0..per_sensor {
        let condition = if i % 10 < 8 {
            json!({"kind": "threshold", "attribute": attr_of(i), "above": 400 + rng.below(100), "clear": 350, "for": "10m"})
        } else {
            json!({"kind": "aggregate", "attribute": attr_of(i), "agg": "avg", "window": "1h", "above": 450, "min_count": 5})
        };
        out.push(json!({
            "id": format!("s{i}"), "name": format!("Ngưỡng trạm {i}"), "severity": "medium",
            "scope": {"entities": [sensor(rng.below(SENSORS))]}, "condition": condition
        }));
        matched += 1;
    }
    for i in 0..districts {
        let unit = format!("7{:02}", i % DISTRICTS);
        let condition = if (i / DISTRICTS).is_multiple_of(3) {
            json!({"kind": "aggregate", "attribute": attr_of(i / DISTRICTS), "agg": "avg", "window": "1h", "above": 450, "min_count": 5})
        } else {
            json!({"kind": "threshold", "attribute": attr_of(i / DISTRICTS), "above": 480, "clear": 300})
        };
        out.push(json!({
            "id": format!("d{i}"), "name": format!("Quận {unit} luật {i}"), "severity": "low",
            "scope": {"admin_units": [unit]}, "condition": condition
        }));
        matched += SENSORS / DISTRICTS;
    }
    for i in 0..mix.province {
        let scope = if i % 2 == 0 {
            json!({"entity_types": ["AirQualityObserved"]})
        } else {
            json!({"domains": ["environment"]})
        };
        let condition = if i % 4 == 0 {
            json!({"kind": "rate_of_change", "attribute": attr_of(i / 2), "window": "30m", "rise": 300})
        } else {
            json!({"kind": "threshold", "attribute": attr_of(i / 2), "above": 490 + (i % 10), "for": "5m"})
        };
        out.push(json!({
            "id": format!("p{i}"), "name": format!("Toàn tỉnh {i}"), "severity": "high",
            "scope": scope, "condition": condition
        }));
        matched += SENSORS;
    }
    (out, matched as f64 / (SENSORS * 2) as f64)
}

async fn store_rules(store: &SharedStore, mix: Mix) {
    let ops = store.clone().as_ops().unwrap();
    for r in rules(mix).0 {
        let rule = panorama_rules::Rule::from_json(r).unwrap();
        ops.put_rule(&RuleRecord {
            id: rule.id.clone(),
            definition: rule.to_json(),
            enabled: true,
            origin: "bench".into(),
            version: 0,
            updated_at: t0(),
            updated_by: "bench".into(),
        })
        .await
        .unwrap();
    }
}

/// One round: `n` observations from `WRITERS` writers; returns (durable
/// ingest seconds, end-to-end seconds, alerts opened).
async fn round(dir: &Path, n: usize, round: usize) -> (f64, f64, usize) {
    let store = open(dir).await;
    let clock: Arc<ManualClock> = Arc::new(ManualClock::new(t0()));
    // Room for every batch of the round, so the engine never lags (a lag
    // would skip evaluations and flatter the figure).
    let bus = EventBus::new(n / BATCH + 16);
    let ingest = Ingest::new(
        store.clone(),
        bus.clone(),
        clock.clone(),
        IngestOptions::default(),
    );
    let config = RulesConfig {
        tick: Dur(3600),
        delivery_poll: Dur(3600),
        ..RulesConfig::default()
    };
    let (ops, tasks) = Ops::start(store.clone(), bus, clock.clone(), config)
        .await
        .unwrap();
    let per_writer = n / WRITERS;
    let started = Instant::now();
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let ingest = ingest.clone();
        writers.push(tokio::spawn(async move {
            let mut rng = Lcg(1_000 + w as u64 + round as u64 * 100);
            let mut sent = 0;
            // Each round writes a later day, so series only move forward.
            let base = t0() + chrono::Duration::days(round as i64);
            let mut seq = 0i64;
            while sent < per_writer {
                let mut batch = Vec::with_capacity(BATCH);
                for _ in 0..BATCH {
                    let s = rng.below(SENSORS);
                    let attr = if rng.next().is_multiple_of(2) {
                        "pm25"
                    } else {
                        "aqi"
                    };
                    seq += 1;
                    batch.push(Observation {
                        entity: sensor(s),
                        attribute: attr.into(),
                        time: base + chrono::Duration::milliseconds(seq * 10 + w as i64),
                        value: Value::Number(20.0 + (rng.next() % 200) as f64),
                    });
                }
                sent += batch.len();
                ingest.observations("bench", batch).await.unwrap();
            }
            sent
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    let ingested = started.elapsed().as_secs_f64();
    ops.sync().await;
    let end_to_end = started.elapsed().as_secs_f64();
    let alerts = ops
        .alerts(panorama_store::AlertQuery {
            limit: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .len();
    drop(tasks);
    store.close().await.unwrap();
    (ingested, end_to_end, alerts)
}

/// The engine alone: batches with real series metadata are published on
/// the bus (no store writes) and timed until evaluated. Returns obs/s.
async fn engine_alone(dir: &Path, n: usize) -> f64 {
    let store = open(dir).await;
    let clock: Arc<ManualClock> = Arc::new(ManualClock::new(t0()));
    let bus = EventBus::new(n / BATCH + 16);
    let config = RulesConfig {
        tick: Dur(3600),
        delivery_poll: Dur(3600),
        ..RulesConfig::default()
    };
    let (ops, tasks) = Ops::start(store.clone(), bus.clone(), clock, config)
        .await
        .unwrap();
    // One observation per series, to learn every series' metadata.
    let base = t0() + chrono::Duration::days(100);
    let probe: Vec<Observation> = (0..SENSORS)
        .flat_map(|s| {
            ["pm25", "aqi"].map(|a| Observation {
                entity: sensor(s),
                attribute: a.into(),
                time: base,
                value: Value::Number(1.0),
            })
        })
        .collect();
    let appended = store.append_observations(probe).await.unwrap();
    let metas = appended.series;
    let mut rng = Lcg(99);
    let mut batches = Vec::new();
    let mut seq = 0i64;
    for _ in 0..n / BATCH {
        let mut observations = Vec::with_capacity(BATCH);
        let mut series = Vec::with_capacity(BATCH);
        for _ in 0..BATCH {
            let m = metas[rng.below(metas.len())].clone();
            seq += 1;
            observations.push(Observation {
                entity: m.entity.to_string(),
                attribute: m.attribute.to_string(),
                time: base + chrono::Duration::milliseconds(seq),
                value: Value::Number(20.0 + (rng.next() % 200) as f64),
            });
            series.push(m);
        }
        batches.push(panorama_ingest::Event::Observations(Arc::new(
            panorama_ingest::ObservationBatch {
                observations,
                series,
            },
        )));
    }
    ops.sync().await;
    let started = Instant::now();
    for b in batches {
        bus.publish(b);
    }
    ops.sync().await;
    let secs = started.elapsed().as_secs_f64();
    drop(tasks);
    store.close().await.unwrap();
    n as f64 / secs
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let mut obs = 1_000_000usize;
    let mut rounds = 3usize;
    let mut mix = Mix::REALISTIC;
    let engine_only = std::env::args().any(|a| a == "--engine-only");
    let args: Vec<String> = std::env::args().collect();
    for w in args.windows(2) {
        match w[0].as_str() {
            "--obs" => obs = w[1].parse().expect("--obs N"),
            "--rounds" => rounds = w[1].parse().expect("--rounds N"),
            "--mix" => {
                mix = match w[1].as_str() {
                    "heavy" => Mix::HEAVY,
                    _ => Mix::REALISTIC,
                }
            }
            _ => {}
        }
    }
    let fan_out = rules(mix).1;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let base = tempfile::tempdir().unwrap();
        let (d0, d10k) = (base.path().join("none"), base.path().join("rules"));
        let setup = Instant::now();
        for (d, with_rules) in [(&d0, false), (&d10k, true)] {
            let store = open(d).await;
            seed(&store).await;
            if with_rules {
                store_rules(&store, mix).await;
            }
            store.close().await.unwrap();
        }
        eprintln!(
            "setup: {SENSORS} sensors, 10,000 rules stored in {:.1} s",
            setup.elapsed().as_secs_f64()
        );
        if engine_only {
            let alone = engine_alone(&d10k, obs).await;
            println!("rules: 10,000 ({mix:?}); rules matching one observation: {fan_out:.1} on average");
            println!(
                "the rule engine alone (no ingest running): {alone:>10.0} obs/s evaluated ({:.2} µs per observation)",
                1e6 / alone
            );
            return;
        }
        let mut none = (Vec::new(), Vec::new());
        let mut with = (Vec::new(), Vec::new());
        for r in 0..rounds {
            let (i0, e0, _) = round(&d0, obs, r).await;
            let (i1, e1, alerts) = round(&d10k, obs, r).await;
            eprintln!(
                "round {r}: 0 rules {:.0} obs/s (end to end {:.0}); 10,000 rules {:.0} obs/s (end to end {:.0}, {alerts} alerts open)",
                obs as f64 / i0,
                obs as f64 / e0,
                obs as f64 / i1,
                obs as f64 / e1
            );
            none.0.push(i0);
            none.1.push(e0);
            with.0.push(i1);
            with.1.push(e1);
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let (i0, e0, i1, e1) = (
            median(none.0),
            median(none.1),
            median(with.0),
            median(with.1),
        );
        println!("observations per round: {obs}, batches of {BATCH}, {WRITERS} writers, {rounds} rounds (medians)");
        println!("rules: 10,000 ({mix:?}); rules matching one observation: {fan_out:.1} on average");
        println!(
            "durable ingest, 0 rules:       {:>10.0} obs/s",
            obs as f64 / i0
        );
        println!(
            "durable ingest, 10,000 rules:  {:>10.0} obs/s  ({:.1} % of 0 rules)",
            obs as f64 / i1,
            100.0 * i0 / i1
        );
        println!(
            "end to end (rules evaluated), 0 rules:      {:>10.0} obs/s",
            obs as f64 / e0
        );
        println!(
            "end to end (rules evaluated), 10,000 rules: {:>10.0} obs/s  ({:.1} % of 0 rules)",
            obs as f64 / e1,
            100.0 * e0 / e1
        );
        let alone = engine_alone(&d10k, obs).await;
        println!(
            "the rule engine alone (no ingest running): {alone:>10.0} obs/s evaluated ({:.2} µs per observation)",
            1e6 / alone
        );
    });
}
