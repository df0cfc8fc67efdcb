//! Invariants of the demo data, without a store.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use chrono::{DateTime, TimeZone, Utc};
use geo::{Area, BooleanOps, MultiPolygon};
use panorama_core::geo::{area_contains, area_from_geojson};
use panorama_core::{AdminLevel, IndicatorStatus, Period, Value, seed_domains};
use panorama_demo::{DemoData, DemoOptions, PROVINCE, SUCCESSOR, build};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 0).unwrap()
}

fn demo() -> &'static DemoData {
    static DEMO: OnceLock<DemoData> = OnceLock::new();
    DEMO.get_or_init(|| build(&DemoOptions::new(now())).unwrap())
}

fn districts(d: &DemoData) -> Vec<(String, MultiPolygon<f64>)> {
    d.admin_units
        .iter()
        .filter(|u| u.level == AdminLevel::District)
        .map(|u| {
            (
                u.code.clone(),
                area_from_geojson(u.geometry.as_ref().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn the_province_its_nine_districts_and_their_successor() {
    let d = demo();
    let codes: BTreeSet<_> = d.admin_units.iter().map(|u| u.code.as_str()).collect();
    for c in [
        "VN", "74", "79", "718", "719", "720", "721", "722", "723", "724", "725", "726",
    ] {
        assert!(codes.contains(c), "missing {c}");
    }
    let merger = chrono::NaiveDate::from_ymd_opt(2025, 7, 1);
    for u in &d.admin_units {
        u.validate().unwrap();
        if u.level == AdminLevel::District || u.code == PROVINCE {
            assert_eq!(u.valid_to, merger, "{}", u.code);
            assert_eq!(u.successors, vec![SUCCESSOR.to_string()], "{}", u.code);
            assert!(u.geometry.is_some());
        }
        if u.level == AdminLevel::District {
            assert_eq!(u.parent.as_deref(), Some(PROVINCE));
        }
    }
    let hcmc = d.admin_units.iter().find(|u| u.code == SUCCESSOR).unwrap();
    assert_eq!(
        (hcmc.level, hcmc.valid_from, hcmc.parent.as_deref()),
        (AdminLevel::Province, merger, Some("VN"))
    );
    // Parents come before their children, so one upsert can take them all.
    let mut seen = BTreeSet::new();
    for u in &d.admin_units {
        if let Some(p) = &u.parent {
            assert!(
                seen.contains(p.as_str()),
                "{} before its parent {p}",
                u.code
            );
        }
        seen.insert(u.code.as_str());
    }
    // Vietnamese names keep their diacritics.
    assert!(
        d.admin_units
            .iter()
            .any(|u| u.name == "Thành phố Thủ Dầu Một")
    );
    assert!(d.admin_units.iter().any(|u| u.name == "Huyện Bắc Tân Uyên"));
}

#[test]
fn the_districts_tile_the_province() {
    let d = demo();
    let outline = area_from_geojson(
        d.admin_units
            .iter()
            .find(|u| u.code == PROVINCE)
            .unwrap()
            .geometry
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let cells = districts(d);
    assert_eq!(cells.len(), 9);
    let total: f64 = cells.iter().map(|(_, c)| c.unsigned_area()).sum();
    let outline_area = outline.unsigned_area();
    assert!(
        (total - outline_area).abs() / outline_area < 1e-4,
        "cells {total} vs outline {outline_area}"
    );
    // About 2,700 km² (the outline is Natural Earth's, a little coarse).
    let km2 = outline_area * 109.3 * 110.6;
    assert!((2_400.0..3_000.0).contains(&km2), "{km2} km²");
    let mut union = MultiPolygon::new(vec![]);
    for (i, (a, ca)) in cells.iter().enumerate() {
        assert!(ca.unsigned_area() > 0.0, "{a} is empty");
        for (b, cb) in &cells[i + 1..] {
            let overlap = ca.intersection(cb).unsigned_area();
            assert!(overlap < 1e-7, "{a} and {b} overlap by {overlap}");
        }
        union = union.union(ca);
    }
    let gap = outline.difference(&union).unsigned_area();
    assert!(
        gap / outline_area < 1e-4,
        "the cells leave {gap} of the outline uncovered"
    );
}

#[test]
fn every_district_has_sensors_and_cameras_inside_it() {
    let d = demo();
    let cells: BTreeMap<String, MultiPolygon<f64>> = districts(d).into_iter().collect();
    let mut sensors: BTreeMap<&str, usize> = BTreeMap::new();
    let mut cameras: BTreeMap<&str, usize> = BTreeMap::new();
    let mut types: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for e in &d.entities {
        let unit = e.admin_unit.as_deref().unwrap();
        let (lon, lat) = e.point().unwrap();
        assert!(
            e.location
                .as_ref()
                .is_some_and(|g| matches!(g.value, geojson::GeometryValue::Point { .. }))
        );
        assert!(
            area_contains(&cells[unit], lon, lat),
            "{} at {lon},{lat} is not in {unit}",
            e.id
        );
        match e.entity_type.as_str() {
            "Camera" => *cameras.entry(unit).or_default() += 1,
            "CitizenReportCounter" => {}
            _ => *sensors.entry(unit).or_default() += 1,
        }
        types
            .entry(unit)
            .or_default()
            .insert(e.entity_type.as_str());
    }
    for code in cells.keys() {
        let s = sensors.get(code.as_str()).copied().unwrap_or(0);
        let c = cameras.get(code.as_str()).copied().unwrap_or(0);
        assert!(s >= 60, "{code} has {s} sensors");
        assert!(c >= 5, "{code} has {c} cameras");
        // Every kind of thing is in every district.
        assert_eq!(
            types[code.as_str()].len(),
            11,
            "{code}: {:?}",
            types[code.as_str()]
        );
    }
    assert!(d.sensor_count() >= 2000);
    assert!(d.camera_count() >= 300);
    assert_eq!(sensors.values().sum::<usize>(), d.sensor_count());
    assert_eq!(cameras.values().sum::<usize>(), d.camera_count());
}

#[test]
fn entities_are_valid_smart_data_models() {
    let d = demo();
    let domains: BTreeSet<_> = d.domains.iter().map(|x| x.code.as_str()).collect();
    let units: BTreeSet<_> = d.admin_units.iter().map(|x| x.code.as_str()).collect();
    let sources: BTreeMap<_, _> = d
        .sources
        .iter()
        .map(|s| (s.source.id.as_str(), s))
        .collect();
    let mut ids = BTreeSet::new();
    for e in &d.entities {
        e.validate().unwrap();
        assert!(ids.insert(e.id.as_str()), "duplicate {}", e.id);
        assert!(
            e.id.starts_with(&format!("urn:ngsi-ld:{}:bd-", e.entity_type)),
            "{}",
            e.id
        );
        assert!(domains.contains(e.domain.as_str()));
        assert!(units.contains(e.admin_unit.as_deref().unwrap()));
        let src = sources[e.source.as_deref().unwrap()];
        assert_eq!(src.entity_type.as_deref(), Some(e.entity_type.as_str()));
        assert!(!e.attributes.is_empty());
        assert!(e.properties.contains_key("name_en"));
    }
    let has = |t: &str, a: &str| {
        d.entities
            .iter()
            .any(|e| e.entity_type == t && e.attributes.contains_key(a))
    };
    for (t, a) in [
        ("AirQualityObserved", "pm25"),
        ("AirQualityObserved", "aqi"),
        ("WaterObserved", "waterLevel"),
        ("FloodMonitoring", "currentLevel"),
        ("WaterQualityObserved", "turbidity"),
        ("TrafficFlowObserved", "intensity"),
        ("TrafficFlowObserved", "averageVehicleSpeed"),
        ("TrafficFlowObserved", "occupancy"),
        ("NoiseLevelObserved", "LAeq"),
        ("WeatherObserved", "temperature"),
        ("WeatherObserved", "relativeHumidity"),
        ("WeatherObserved", "precipitation"),
        ("Streetlight", "powerState"),
        ("Streetlight", "illuminanceLevel"),
        ("OffStreetParking", "availableSpotNumber"),
        ("Camera", "status"),
        ("CitizenReportCounter", "reportsLastHour"),
    ] {
        assert!(has(t, a), "no {t}.{a}");
    }
    let camera = d
        .entities
        .iter()
        .find(|e| e.entity_type == "Camera")
        .unwrap();
    assert!(
        camera.properties["streamURL"]
            .as_str()
            .unwrap()
            .starts_with("/demo/camera/")
    );
    // A counter of citizen reports per district, in the feedback domain.
    let counters: Vec<_> = d
        .entities
        .iter()
        .filter(|e| e.entity_type == "CitizenReportCounter")
        .collect();
    assert_eq!(counters.len(), 9);
    assert!(counters.iter().all(|e| e.domain == "public-feedback"));
    // Traffic counters line National Road 13.
    let ql13 = d
        .entities
        .iter()
        .filter(|e| e.properties.get("roadName").and_then(|v| v.as_str()) == Some("Quốc lộ 13"))
        .count();
    assert!(ql13 >= 80, "{ql13} counters on QL13");
}

#[test]
fn sources_agencies_and_users_are_valid() {
    let d = demo();
    let agencies: BTreeSet<_> = d.agencies.iter().map(|a| a.code.as_str()).collect();
    for a in &d.agencies {
        a.validate().unwrap();
    }
    assert!(d.agencies.len() >= 19);
    let mut tokens = BTreeSet::new();
    for s in &d.sources {
        s.source.validate().unwrap();
        assert!(agencies.contains(s.source.owner_agency.as_deref().unwrap()));
        assert!(tokens.insert(s.token.clone()), "tokens must be distinct");
        assert!(
            !format!("{s:?}").contains(&s.token),
            "tokens must not show in Debug"
        );
    }
    for u in &d.users {
        u.user.validate().unwrap();
        assert!(u.password.len() >= 8);
        if let Some(a) = &u.user.agency {
            assert!(agencies.contains(a.as_str()));
        }
    }
    let roles: BTreeSet<_> = d.users.iter().map(|u| u.user.role.as_str()).collect();
    for r in ["admin", "leader", "operator", "officer"] {
        assert!(roles.contains(r), "no {r}");
    }
}

#[test]
fn every_domain_has_indicators_with_targets_and_history() {
    let d = demo();
    assert!(
        d.indicators.len() >= 60,
        "{} indicators",
        d.indicators.len()
    );
    let codes: BTreeSet<_> = d.indicators.iter().map(|i| i.code.as_str()).collect();
    assert_eq!(
        codes.len(),
        d.indicators.len(),
        "indicator codes are unique"
    );
    let agencies: BTreeSet<_> = d.agencies.iter().map(|a| a.code.as_str()).collect();
    let mut periods: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    let units: BTreeSet<_> = d.admin_units.iter().map(|u| u.code.as_str()).collect();
    for (who, v) in &d.indicator_values {
        assert!(who.starts_with("user:"));
        assert!(
            d.users
                .iter()
                .any(|u| format!("user:{}", u.user.username) == *who),
            "{who}"
        );
        let p = v.validate().unwrap();
        let ind = d.indicators.iter().find(|i| i.code == v.indicator).unwrap();
        assert!(p.fits(ind.periodicity), "{} {}", v.indicator, v.period);
        assert!(units.contains(v.admin_unit.as_str()));
        assert!(
            p.start() < now().date_naive(),
            "{} {} is in the future",
            v.indicator,
            v.period
        );
        if v.admin_unit == PROVINCE {
            periods
                .entry(v.indicator.as_str())
                .or_default()
                .insert(v.period.as_str());
        }
    }
    for dom in seed_domains() {
        let inds: Vec<_> = d
            .indicators
            .iter()
            .filter(|i| i.domain == dom.code)
            .collect();
        assert!(
            inds.len() >= 2,
            "{} has {} indicators",
            dom.code,
            inds.len()
        );
        assert_eq!(
            inds.iter().filter(|i| i.headline).count(),
            1,
            "{} needs one headline",
            dom.code
        );
        for i in inds {
            i.validate().unwrap();
            assert!(agencies.contains(i.owner_agency.as_deref().unwrap()));
            let ps = &periods[i.code.as_str()];
            assert!(ps.len() >= 12, "{} has {} periods", i.code, ps.len());
            for p in ps {
                let y = Period::parse(p).unwrap().year();
                assert!(
                    i.targets.contains_key(&y),
                    "{} has no target for {y}",
                    i.code
                );
            }
            assert!(
                i.targets.contains_key(&2026),
                "{} has no plan for this year",
                i.code
            );
        }
    }
    // Some indicators are broken down by district.
    let by_district: BTreeSet<_> = d
        .indicator_values
        .iter()
        .filter(|(_, v)| v.admin_unit == "725")
        .map(|(_, v)| v.indicator.as_str())
        .collect();
    assert!(by_district.len() >= 10, "{by_district:?}");
}

#[test]
fn latest_values_are_green_amber_and_red() {
    let d = demo();
    let mut statuses: std::collections::HashMap<IndicatorStatus, usize> =
        std::collections::HashMap::new();
    for ind in &d.indicators {
        let (_, latest) = d
            .indicator_values
            .iter()
            .filter(|(_, v)| v.indicator == ind.code && v.admin_unit == PROVINCE)
            .max_by_key(|(_, v)| Period::parse(&v.period).unwrap())
            .unwrap();
        let s = ind.status(latest.value, Period::parse(&latest.period).unwrap().year());
        assert_ne!(s, IndicatorStatus::Unknown, "{}", ind.code);
        *statuses.entry(s).or_default() += 1;
    }
    for s in [
        IndicatorStatus::Green,
        IndicatorStatus::Amber,
        IndicatorStatus::Red,
    ] {
        assert!(statuses.get(&s).copied().unwrap_or(0) >= 8, "{statuses:?}");
    }
}

#[test]
fn public_figures_appear_with_notes() {
    let d = demo();
    let find = |code: &str, period: &str| {
        d.indicator_values
            .iter()
            .map(|(_, v)| v)
            .find(|v| v.indicator == code && v.period == period && v.admin_unit == PROVINCE)
            .unwrap()
    };
    let projects = find("fdi-projects", "2021");
    assert_eq!(projects.value, 4049.0);
    assert!(projects.note.as_deref().unwrap().contains("65 quốc gia"));
    assert_eq!(find("fdi-registered-capital", "2021").value, 39.55);
    assert_eq!(find("fdi-capital-year", "2021").value, 2.6);
    assert!(find("econ-urbanisation", "2022").value > 85.0);
    assert!(find("admin-dossiers-online", "2026-10").value >= 99.0);
}

#[test]
fn the_same_seed_gives_the_same_demo() {
    let a = build(&DemoOptions::new(now())).unwrap();
    assert_eq!(&a, demo());
    let other = build(&DemoOptions {
        seed: 7,
        ..DemoOptions::new(now())
    })
    .unwrap();
    assert_ne!(other.entities, a.entities);
    // Things, ids and tokens do not depend on `now`, so a rebuilt demo
    // matches the one stored earlier.
    let later = build(&DemoOptions::new(now() + chrono::Duration::days(40))).unwrap();
    assert_eq!(later.entities, a.entities);
    assert_eq!(
        later.tokens().collect::<Vec<_>>(),
        a.tokens().collect::<Vec<_>>()
    );
}

#[test]
fn sizes_follow_the_options() {
    let small = build(&DemoOptions {
        sensors: 200,
        cameras: 20,
        ..DemoOptions::new(now())
    })
    .unwrap();
    assert_eq!(small.sensor_count(), 200);
    assert_eq!(small.camera_count(), 20);
    // Every value kind the demo emits is JSON-representable.
    assert!(serde_json::to_string(&Value::Number(1.5)).is_ok());
}
