//! The shared store test suite: the behaviour every backend must show, as
//! async functions taking a fresh, empty [`SharedStore`].
//!
//! A backend crate runs all of them with one line in a test file:
//!
//! ```ignore
//! panorama_store::store_tests!(async { make_fresh_store().await });
//! ```
//!
//! where the expression yields a [`SharedStore`], or a `(SharedStore, guard)`
//! pair whose guard (a temporary directory, a container…) lives until the
//! test ends. The macro expands to one `#[tokio::test]` per behaviour, so the
//! caller needs `tokio` as a dev-dependency.
//!
//! A fresh store may already hold the seed domains; the suite declares
//! whatever it needs and never assumes an exact list of domains. Times are
//! fixed; no test reads the clock.

// Test code: a failed expectation must fail the test, loudly and with context.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::{
    EntityQuery, GroupedSeriesQuery, IndicatorValueQuery, SeriesData, SeriesQuery, SharedStore,
    SourceActivity, StoreError, StoreResult, UpsertCount,
};
use panorama_core::geo::{BBox, area_from_geojson};
use panorama_core::{
    AdminLevel, AdminUnit, Agency, Agg, AttributeSpec, Bucket, Computation, Direction, Domain,
    Entity, Indicator, IndicatorValue, IndicatorValueInput, Observation, Periodicity, Role, Source,
    SourceKind, Thresholds, Timestamp, User, Value, ValueStatus, ValueType,
};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// A store under test and whatever must live as long as it.
pub struct Fixture {
    /// The store.
    pub store: SharedStore,
    guard: Box<dyn std::any::Any + Send>,
}

impl From<SharedStore> for Fixture {
    fn from(store: SharedStore) -> Self {
        Self {
            store,
            guard: Box::new(()),
        }
    }
}

impl<G: Send + 'static> From<(SharedStore, G)> for Fixture {
    fn from((store, guard): (SharedStore, G)) -> Self {
        Self {
            store,
            guard: Box::new(guard),
        }
    }
}

impl Fixture {
    /// Closes the store, then drops the guard.
    pub async fn finish(self) {
        self.store.close().await.expect("the store closes cleanly");
        drop(self.guard);
    }
}

/// Expands to one `#[tokio::test]` per behaviour of the suite, in a module
/// `store_suite`, each on a fresh store made by the given expression (a
/// future yielding a [`SharedStore`](crate::SharedStore) or a
/// `(SharedStore, guard)` pair).
#[macro_export]
macro_rules! store_tests {
    ($make:expr) => {
        $crate::store_tests!(@each $make;
            admin_units_round_trip,
            admin_unit_batches_are_all_or_nothing,
            domains_round_trip,
            agencies_round_trip,
            entities_round_trip,
            entity_batches_are_all_or_nothing,
            attributes_keep_their_type,
            observations_round_trip,
            observation_batches_are_all_or_nothing,
            out_of_order_and_duplicate_timestamps,
            raw_series_ranges_and_limits,
            bucketed_series_per_minute,
            day_buckets_start_at_vietnamese_midnight,
            unknown_series_are_not_found,
            grouped_series_by_unit_district_and_province,
            entity_filters,
            cursor_pagination_walks_every_entity_once,
            latest_matching_pages_like_entities_then_latest,
            indicators_round_trip,
            indicator_values_keep_every_revision,
            indicator_value_batches_are_all_or_nothing,
            sources_round_trip_and_activity,
            source_connectors_round_trip,
            users_round_trip,
            sessions_expire,
            concurrent_writers_neither_fail_nor_share_series,
            health_counts,
        );
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        mod store_suite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture: $crate::testsuite::Fixture = ($make).await.into();
                    $crate::testsuite::$name(fixture.store.clone()).await;
                    fixture.finish().await;
                }
            )+
        }
    };
}

// --- fixtures -------------------------------------------------------------

/// A fixed instant.
pub fn t(rfc3339: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .expect("a valid RFC 3339 time")
        .to_utc()
}

/// The instant every fixture is written at.
fn t0() -> Timestamp {
    t("2024-05-01T00:00:00Z")
}

/// A GeoJSON geometry from JSON (its type is inferred where it is used).
macro_rules! geometry {
    ($($json:tt)+) => {
        serde_json::from_value(json!($($json)+)).expect("valid GeoJSON")
    };
}

fn polygon(ring: &[(f64, f64)]) -> geo::MultiPolygon<f64> {
    let coords: Vec<[f64; 2]> = ring.iter().map(|&(x, y)| [x, y]).collect();
    area_from_geojson(&geometry!({"type": "Polygon", "coordinates": [coords]}))
        .expect("a valid polygon")
}

fn unit(code: &str, name: &str, level: AdminLevel, parent: Option<&str>) -> AdminUnit {
    AdminUnit {
        code: code.into(),
        name: name.into(),
        name_en: None,
        level,
        parent: parent.map(Into::into),
        geometry: None,
        valid_from: None,
        valid_to: None,
        successors: Vec::new(),
    }
}

/// Binh Duong (74) with two districts and two communes, and Ho Chi Minh City (79) with one district.
fn admin_units() -> Vec<AdminUnit> {
    let mut bd = unit("74", "Tỉnh Bình Dương", AdminLevel::Province, None);
    bd.name_en = Some("Binh Duong Province".into());
    bd.geometry = Some(geometry!({
        "type": "Polygon",
        "coordinates": [[[106.3, 10.8], [107.0, 10.8], [107.0, 11.5], [106.3, 11.5], [106.3, 10.8]]]
    }));
    bd.valid_to = Some(chrono::NaiveDate::from_ymd_opt(2025, 7, 1).expect("date"));
    bd.successors = vec!["79".into()];
    vec![
        bd,
        unit("79", "Thành phố Hồ Chí Minh", AdminLevel::Province, None),
        unit(
            "718",
            "Thành phố Thủ Dầu Một",
            AdminLevel::District,
            Some("74"),
        ),
        unit("724", "Thành phố Dĩ An", AdminLevel::District, Some("74")),
        unit("760", "Quận 1", AdminLevel::District, Some("79")),
        unit(
            "25747",
            "Phường Phú Cường",
            AdminLevel::Commune,
            Some("718"),
        ),
        unit(
            "25750",
            "Phường Hiệp Thành",
            AdminLevel::Commune,
            Some("718"),
        ),
    ]
}

fn domain(code: &str, name: &str, name_en: &str, sort: i32) -> Domain {
    Domain {
        code: code.into(),
        name: name.into(),
        name_en: name_en.into(),
        icon: "leaf".into(),
        sort,
    }
}

fn agency() -> Agency {
    Agency {
        code: "so-tnmt".into(),
        name: "Sở Tài nguyên và Môi trường".into(),
        name_en: "Department of Natural Resources and Environment".into(),
        admin_unit: Some("74".into()),
    }
}

/// Admin units, the domains the suite uses and one agency.
async fn seed_reference(store: &SharedStore) {
    store
        .upsert_admin_units(&admin_units())
        .await
        .expect("admin units");
    store
        .upsert_domains(&[
            domain("environment", "Môi trường", "Environment", 10),
            domain("water", "Tài nguyên nước", "Water resources", 11),
            domain("traffic", "Giao thông", "Traffic", 8),
            domain("urban", "Đô thị", "Urban development", 19),
        ])
        .await
        .expect("domains");
    store.upsert_agencies(&[agency()]).await.expect("agencies");
}

fn urn(kind: &str, id: &str) -> String {
    format!("urn:ngsi-ld:{kind}:{id}")
}

fn spec(value_type: ValueType, unit: Option<&str>) -> AttributeSpec {
    AttributeSpec {
        value_type,
        unit: unit.map(Into::into),
    }
}

fn entity(
    kind: &str,
    id: &str,
    name: &str,
    domain: &str,
    unit: Option<&str>,
    at: Option<(f64, f64)>,
) -> Entity {
    Entity {
        id: urn(kind, id),
        entity_type: kind.into(),
        name: name.into(),
        domain: domain.into(),
        admin_unit: unit.map(Into::into),
        location: at.map(|(lon, lat)| geometry!({"type": "Point", "coordinates": [lon, lat]})),
        attributes: BTreeMap::new(),
        properties: serde_json::Map::new(),
        source: None,
        updated_at: None,
    }
}

fn aq(id: &str, name: &str, unit: &str, lon: f64, lat: f64) -> Entity {
    let mut e = entity(
        "AirQualitySensor",
        id,
        name,
        "environment",
        Some(unit),
        Some((lon, lat)),
    );
    e.attributes
        .insert("pm25".into(), spec(ValueType::Number, Some("µg/m3")));
    e
}

/// Four air-quality sensors (three in Binh Duong, one in HCMC), a water-level
/// gauge and a camera without location or unit.
fn entities() -> Vec<Entity> {
    let mut td1 = aq(
        "aq-td1",
        "Trạm quan trắc Thủ Dầu Một",
        "25747",
        106.65,
        10.98,
    );
    td1.attributes
        .insert("status".into(), spec(ValueType::Text, None));
    td1.attributes
        .insert("online".into(), spec(ValueType::Boolean, None));
    td1.attributes
        .insert("raw".into(), spec(ValueType::Json, None));
    td1.properties
        .insert("address".into(), json!("Đường Văn Công Khai, Phú Cường"));
    td1.properties.insert("height_m".into(), json!(3.5));
    td1.source = Some("aq-network".into());
    let mut wl = entity(
        "WaterLevelSensor",
        "wl-td1",
        "Trạm đo mực nước sông Sài Gòn",
        "water",
        Some("718"),
        Some((106.64, 10.97)),
    );
    wl.attributes
        .insert("level".into(), spec(ValueType::Number, Some("m")));
    let mut cam = entity(
        "Camera",
        "cam-001",
        "Camera ngã tư Đồng Đen",
        "traffic",
        None,
        None,
    );
    cam.properties
        .insert("stream".into(), json!("rtsp://camera.invalid/001"));
    vec![
        td1,
        aq("aq-td2", "Trạm Hiệp Thành", "25750", 106.67, 11.00),
        aq("aq-da1", "Trạm Dĩ An", "724", 106.76, 10.90),
        aq("aq-q1", "Trạm Quận 1", "760", 106.70, 10.77),
        wl,
        cam,
    ]
}

async fn seed_entities(store: &SharedStore) {
    seed_reference(store).await;
    store
        .upsert_entities(&entities(), t0())
        .await
        .expect("entities");
}

fn obs(id: &str, attribute: &str, time: &str, value: Value) -> Observation {
    Observation {
        entity: urn("AirQualitySensor", id),
        attribute: attribute.into(),
        time: t(time),
        value,
    }
}

fn num(id: &str, time: &str, v: f64) -> Observation {
    obs(id, "pm25", time, Value::Number(v))
}

/// The fields named by an Invalid error; fails the test on anything else.
fn invalid_fields<T: std::fmt::Debug>(r: StoreResult<T>) -> Vec<String> {
    match r {
        Err(StoreError::Invalid(inv)) => inv.0.into_iter().map(|e| e.field).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// The reason given for `field` by an Invalid error.
fn reason_for<T: std::fmt::Debug>(r: StoreResult<T>, field: &str) -> String {
    match r {
        Err(StoreError::Invalid(inv)) => inv
            .0
            .into_iter()
            .find(|e| e.field == field)
            .map(|e| e.reason)
            .unwrap_or_else(|| panic!("no error for {field}")),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn all() -> EntityQuery {
    EntityQuery {
        limit: 1000,
        ..EntityQuery::default()
    }
}

async fn ids(store: &SharedStore, q: EntityQuery) -> Vec<String> {
    let page = store.query_entities(&q).await.expect("query entities");
    page.items.into_iter().map(|e| e.id).collect()
}

fn short(ids: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = ids
        .iter()
        .map(|i| {
            let kind = match &i[..2] {
                "aq" => "AirQualitySensor",
                "wl" => "WaterLevelSensor",
                "ca" => "Camera",
                _ => "Bench",
            };
            urn(kind, i)
        })
        .collect();
    v.sort();
    v
}

fn raw(data: SeriesData) -> Vec<(Timestamp, Value)> {
    match data {
        SeriesData::Raw(points) => points.into_iter().map(|p| (p.time, p.value)).collect(),
        other => panic!("expected raw points, got {other:?}"),
    }
}

fn buckets(data: SeriesData) -> Vec<(Timestamp, f64, u64)> {
    match data {
        SeriesData::Buckets(points) => points
            .into_iter()
            .map(|p| (p.time, p.value, p.count))
            .collect(),
        other => panic!("expected buckets, got {other:?}"),
    }
}

fn series_q(id: &str, attribute: &str, from: &str, to: &str) -> SeriesQuery {
    SeriesQuery {
        entity: urn("AirQualitySensor", id),
        attribute: attribute.into(),
        from: t(from),
        to: t(to),
        bucket: None,
        limit: 10_000,
    }
}

fn bucket(s: &str) -> Bucket {
    Bucket::parse(s).expect("a bucket width")
}

// --- reference data -------------------------------------------------------

/// Admin units come back as written, ordered by code, and an upsert replaces.
pub async fn admin_units_round_trip(store: SharedStore) {
    let units = admin_units();
    store.upsert_admin_units(&units).await.unwrap();
    let mut expected = units.clone();
    expected.sort_by(|a, b| a.code.cmp(&b.code));
    assert_eq!(store.admin_units().await.unwrap(), expected);

    // Replace: new name, successors and validity; the rest untouched.
    let mut td = unit("718", "Thủ Dầu Một (cũ)", AdminLevel::District, Some("74"));
    td.valid_from = Some(chrono::NaiveDate::from_ymd_opt(2012, 1, 1).unwrap());
    td.valid_to = Some(chrono::NaiveDate::from_ymd_opt(2025, 7, 1).unwrap());
    td.successors = vec!["25747".into(), "25750".into()];
    store
        .upsert_admin_units(std::slice::from_ref(&td))
        .await
        .unwrap();
    let stored = store.admin_units().await.unwrap();
    assert_eq!(stored.len(), units.len());
    assert_eq!(stored.iter().find(|u| u.code == "718"), Some(&td));

    // Children may come after their parent in the same batch.
    store
        .upsert_admin_units(&[
            unit("80", "Tỉnh Long An", AdminLevel::Province, None),
            unit("794", "Thành phố Tân An", AdminLevel::District, Some("80")),
        ])
        .await
        .unwrap();
    assert_eq!(store.admin_units().await.unwrap().len(), units.len() + 2);
}

/// A bad admin unit (invalid, unknown parent, a cycle) refuses the whole batch.
pub async fn admin_unit_batches_are_all_or_nothing(store: SharedStore) {
    store.upsert_admin_units(&admin_units()).await.unwrap();
    let before = store.admin_units().await.unwrap();

    let batch = [
        unit("81", "Tỉnh Mới", AdminLevel::Province, None),
        unit("", "Không mã", AdminLevel::District, Some("74")),
        unit("999", "Huyện lạc", AdminLevel::District, Some("nowhere")),
    ];
    let fields = invalid_fields(store.upsert_admin_units(&batch).await);
    assert!(fields.contains(&"[1].code".to_string()), "{fields:?}");
    assert_eq!(store.admin_units().await.unwrap(), before);
    let fields = invalid_fields(store.upsert_admin_units(&batch[2..]).await);
    assert_eq!(fields, ["[0].parent"]);

    // A parent later in the batch does not count.
    let fields = invalid_fields(
        store
            .upsert_admin_units(&[
                unit("795", "Huyện Đức Hòa", AdminLevel::District, Some("82")),
                unit("82", "Tỉnh Mới", AdminLevel::Province, None),
            ])
            .await,
    );
    assert_eq!(fields, ["[0].parent"]);

    // 74 under its own grandchild would make a cycle.
    let fields = invalid_fields(
        store
            .upsert_admin_units(&[unit(
                "74",
                "Tỉnh Bình Dương",
                AdminLevel::Province,
                Some("25747"),
            )])
            .await,
    );
    assert_eq!(fields, ["[0].parent"]);
    assert_eq!(store.admin_units().await.unwrap(), before);
}

/// Domains come back in overview order and an upsert replaces.
pub async fn domains_round_trip(store: SharedStore) {
    let a = domain("zz-first", "Đầu tiên", "First", -2);
    let b = domain("zz-second", "Thứ hai", "Second", -1);
    store.upsert_domains(&[b.clone(), a.clone()]).await.unwrap();
    let got = store.domains().await.unwrap();
    assert_eq!(&got[..2], &[a.clone(), b.clone()], "ordered by sort");
    let sorts: Vec<i32> = got.iter().map(|d| d.sort).collect();
    assert!(sorts.windows(2).all(|w| w[0] <= w[1]), "{sorts:?}");

    let renamed = Domain {
        name: "Thứ hai (mới)".into(),
        icon: "star".into(),
        sort: -3,
        ..b
    };
    store
        .upsert_domains(std::slice::from_ref(&renamed))
        .await
        .unwrap();
    let got = store.domains().await.unwrap();
    assert_eq!(&got[..2], &[renamed, a]);

    let fields = invalid_fields(
        store
            .upsert_domains(&[domain("bad code", "X", "X", 0)])
            .await,
    );
    assert_eq!(fields, ["[0].code"]);
}

/// Agencies come back by code; their admin unit must exist.
pub async fn agencies_round_trip(store: SharedStore) {
    store.upsert_admin_units(&admin_units()).await.unwrap();
    let a = agency();
    let b = Agency {
        code: "cong-an".into(),
        name: "Công an tỉnh".into(),
        name_en: "Provincial Police".into(),
        admin_unit: None,
    };
    store
        .upsert_agencies(&[a.clone(), b.clone()])
        .await
        .unwrap();
    assert_eq!(store.agencies().await.unwrap(), [b.clone(), a.clone()]);

    let moved = Agency {
        admin_unit: Some("79".into()),
        ..a.clone()
    };
    store
        .upsert_agencies(std::slice::from_ref(&moved))
        .await
        .unwrap();
    assert_eq!(store.agencies().await.unwrap(), [b.clone(), moved.clone()]);

    let lost = Agency {
        code: "so-moi".into(),
        admin_unit: Some("999".into()),
        ..a
    };
    let fields = invalid_fields(store.upsert_agencies(&[b.clone(), lost]).await);
    assert_eq!(fields, ["[1].admin_unit"]);
    assert_eq!(store.agencies().await.unwrap(), [b, moved]);
}

// --- entities -------------------------------------------------------------

/// Entities come back as written (with the write time), and an upsert
/// replaces them and counts what it created.
pub async fn entities_round_trip(store: SharedStore) {
    seed_reference(&store).await;
    let all_entities = entities();
    let count = store.upsert_entities(&all_entities, t0()).await.unwrap();
    assert_eq!(
        count,
        UpsertCount {
            created: 6,
            updated: 0
        }
    );

    for e in &all_entities {
        let got = store.entity(&e.id).await.unwrap().expect("stored");
        let expected = Entity {
            updated_at: Some(t0()),
            ..e.clone()
        };
        assert_eq!(got, expected);
    }
    assert_eq!(
        store
            .entity(&urn("AirQualitySensor", "missing"))
            .await
            .unwrap(),
        None
    );

    // Replace one (new name, unit, location, fewer attributes) and add one.
    let mut td1 = all_entities[0].clone();
    td1.name = "Trạm Phú Cường".into();
    td1.admin_unit = Some("718".into());
    td1.location = Some(geometry!({"type": "Point", "coordinates": [106.66, 10.99]}));
    td1.attributes.remove("raw");
    td1.attributes
        .insert("pm25".into(), spec(ValueType::Number, Some("ug/m3")));
    td1.properties.clear();
    let extra = aq("aq-td3", "Trạm Chánh Nghĩa", "718", 106.66, 10.97);
    let later = t("2024-05-02T08:00:00+07:00");
    let count = store
        .upsert_entities(&[td1.clone(), extra.clone()], later)
        .await
        .unwrap();
    assert_eq!(
        count,
        UpsertCount {
            created: 1,
            updated: 1
        }
    );
    let got = store.entity(&td1.id).await.unwrap().unwrap();
    assert_eq!(
        got,
        Entity {
            updated_at: Some(later),
            ..td1
        }
    );
    assert_eq!(
        got.attributes.keys().collect::<Vec<_>>(),
        ["online", "pm25", "status"]
    );
    assert_eq!(store.query_entities(&all()).await.unwrap().items.len(), 7);
}

/// One bad entity refuses the batch, naming each bad item; nothing is written.
pub async fn entity_batches_are_all_or_nothing(store: SharedStore) {
    seed_reference(&store).await;
    let good = aq("aq-new", "Trạm mới", "718", 106.6, 11.0);
    let mut lost_domain = aq("aq-x1", "Trạm X1", "718", 106.6, 11.0);
    lost_domain.domain = "nope".into();
    let lost_unit = aq("aq-x2", "Trạm X2", "999", 106.6, 11.0);
    let mut bad_id = aq("aq-x3", "Trạm X3", "718", 106.6, 11.0);
    bad_id.id = "sensor-3".into();
    let mut bad_attr = aq("aq-x4", "Trạm X4", "718", 106.6, 11.0);
    bad_attr
        .attributes
        .insert("2bad".into(), spec(ValueType::Number, None));

    let r = store
        .upsert_entities(
            &[good.clone(), lost_domain, lost_unit, bad_id, bad_attr],
            t0(),
        )
        .await;
    let fields: BTreeSet<String> = invalid_fields(r).into_iter().collect();
    let expected: BTreeSet<String> = [
        "[1].domain",
        "[2].admin_unit",
        "[3].id",
        "[4].attributes.2bad",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(fields, expected);
    assert_eq!(store.entity(&good.id).await.unwrap(), None);
    assert!(store.query_entities(&all()).await.unwrap().items.is_empty());
    let r = store
        .append_observations(vec![num("aq-new", "2024-05-01T00:00:00Z", 1.0)])
        .await;
    assert_eq!(invalid_fields(r), ["[0].entity"]);
}

/// An attribute keeps its value type, even after being dropped and declared again.
pub async fn attributes_keep_their_type(store: SharedStore) {
    seed_entities(&store).await;
    let mut td1 = entities()[0].clone();
    td1.attributes
        .insert("pm25".into(), spec(ValueType::Text, None));
    let r = store.upsert_entities(&[td1], t0()).await;
    let reason = reason_for(r, "[0].attributes.pm25");
    assert!(reason.contains("number"), "{reason}");

    // Drop pm25 from aq-td2: it can no longer be observed, and its history stays.
    store
        .append_observations(vec![num("aq-td2", "2024-05-01T00:00:00Z", 7.0)])
        .await
        .unwrap();
    let mut td2 = entities()[1].clone();
    td2.attributes.clear();
    store
        .upsert_entities(std::slice::from_ref(&td2), t0())
        .await
        .unwrap();
    assert!(
        store
            .entity(&td2.id)
            .await
            .unwrap()
            .unwrap()
            .attributes
            .is_empty()
    );
    let r = store
        .append_observations(vec![num("aq-td2", "2024-05-01T00:01:00Z", 8.0)])
        .await;
    assert_eq!(invalid_fields(r), ["[0].attribute"]);

    // Declaring it again with another type is refused; with its type, the history is back.
    td2.attributes
        .insert("pm25".into(), spec(ValueType::Boolean, None));
    let r = store
        .upsert_entities(std::slice::from_ref(&td2), t0())
        .await;
    assert_eq!(invalid_fields(r), ["[0].attributes.pm25"]);
    td2.attributes
        .insert("pm25".into(), spec(ValueType::Number, Some("µg/m3")));
    store.upsert_entities(&[td2], t0()).await.unwrap();
    let got = raw(store
        .series(&series_q(
            "aq-td2",
            "pm25",
            "2024-01-01T00:00:00Z",
            "2025-01-01T00:00:00Z",
        ))
        .await
        .unwrap());
    assert_eq!(got, [(t("2024-05-01T00:00:00Z"), Value::Number(7.0))]);
}

// --- observations ---------------------------------------------------------

/// Observations of every value type are appended, tagged with their series,
/// and come back as the latest values.
pub async fn observations_round_trip(store: SharedStore) {
    seed_entities(&store).await;
    let batch = vec![
        num("aq-td1", "2024-05-01T00:00:00Z", 12.5),
        obs(
            "aq-td1",
            "status",
            "2024-05-01T00:00:00Z",
            Value::Text("Tốt".into()),
        ),
        obs(
            "aq-td1",
            "online",
            "2024-05-01T00:00:00Z",
            Value::Boolean(true),
        ),
        obs(
            "aq-td1",
            "raw",
            "2024-05-01T00:00:00Z",
            Value::Json(json!({"pm10": 20, "co": [1, 2]})),
        ),
        num("aq-td1", "2024-05-01T00:05:00Z", 13.0),
        num("aq-q1", "2024-05-01T00:00:00Z", 40.0),
    ];
    let appended = store.append_observations(batch.clone()).await.unwrap();
    assert_eq!(appended.observations, batch);
    assert_eq!(appended.series.len(), batch.len());
    let m = &appended.series[0];
    assert_eq!(&*m.entity, urn("AirQualitySensor", "aq-td1"));
    assert_eq!(&*m.attribute, "pm25");
    assert_eq!(&*m.entity_type, "AirQualitySensor");
    assert_eq!(&*m.domain, "environment");
    assert_eq!(m.admin_unit.as_deref(), Some("25747"));
    assert_eq!(m.value_type, ValueType::Number);
    assert_eq!(
        appended.series[4].series, m.series,
        "same attribute, same series"
    );
    let distinct: BTreeSet<u32> = appended.series[..4].iter().map(|s| s.series).collect();
    assert_eq!(distinct.len(), 4, "one series per attribute");
    assert_ne!(appended.series[5].series, m.series);
    assert_eq!(appended.series[5].admin_unit.as_deref(), Some("760"));

    let latest = store
        .latest(&[
            urn("AirQualitySensor", "aq-td1"),
            urn("AirQualitySensor", "aq-da1"),
        ])
        .await
        .unwrap();
    let got: BTreeMap<(String, String), (Timestamp, Value)> = latest
        .into_iter()
        .map(|l| ((l.entity, l.attribute), (l.time, l.value)))
        .collect();
    let id = urn("AirQualitySensor", "aq-td1");
    let expected: BTreeMap<(String, String), (Timestamp, Value)> = [
        ("pm25", "2024-05-01T00:05:00Z", Value::Number(13.0)),
        ("status", "2024-05-01T00:00:00Z", Value::Text("Tốt".into())),
        ("online", "2024-05-01T00:00:00Z", Value::Boolean(true)),
        (
            "raw",
            "2024-05-01T00:00:00Z",
            Value::Json(json!({"pm10": 20, "co": [1, 2]})),
        ),
    ]
    .into_iter()
    .map(|(a, time, v)| ((id.clone(), a.to_string()), (t(time), v)))
    .collect();
    assert_eq!(
        got, expected,
        "aq-da1 has no observation, so no latest value"
    );

    let got = raw(store
        .series(&series_q(
            "aq-td1",
            "raw",
            "2024-05-01T00:00:00Z",
            "2024-05-02T00:00:00Z",
        ))
        .await
        .unwrap());
    assert_eq!(
        got,
        [(
            t("2024-05-01T00:00:00Z"),
            Value::Json(json!({"pm10": 20, "co": [1, 2]}))
        )]
    );
    assert!(
        store
            .append_observations(Vec::new())
            .await
            .unwrap()
            .observations
            .is_empty()
    );
}

/// Unknown entity, undeclared attribute, wrong value type: every bad item is
/// named, and nothing of the batch is written.
pub async fn observation_batches_are_all_or_nothing(store: SharedStore) {
    seed_entities(&store).await;
    let batch = vec![
        num("aq-td1", "2024-05-01T00:00:00Z", 1.0),
        num("aq-nope", "2024-05-01T00:00:00Z", 1.0),
        obs("aq-td1", "no2", "2024-05-01T00:00:00Z", Value::Number(1.0)),
        obs(
            "aq-td1",
            "pm25",
            "2024-05-01T00:00:00Z",
            Value::Text("high".into()),
        ),
        obs(
            "aq-td1",
            "online",
            "2024-05-01T00:00:00Z",
            Value::Number(1.0),
        ),
        num("aq-td2", "2024-05-01T00:00:00Z", 2.0),
    ];
    let r = store.append_observations(batch.clone()).await;
    assert_eq!(
        invalid_fields(r),
        ["[1].entity", "[2].attribute", "[3].value", "[4].value"]
    );
    let r = store.append_observations(batch.clone()).await;
    assert!(reason_for(r, "[2].attribute").contains("no2"));
    let r = store.append_observations(batch).await;
    assert_eq!(
        reason_for(r, "[3].value"),
        "expected a number value, got text"
    );

    let latest = store
        .latest(&[
            urn("AirQualitySensor", "aq-td1"),
            urn("AirQualitySensor", "aq-td2"),
        ])
        .await
        .unwrap();
    assert!(latest.is_empty(), "nothing written: {latest:?}");
    let got = raw(store
        .series(&series_q(
            "aq-td1",
            "pm25",
            "2024-01-01T00:00:00Z",
            "2025-01-01T00:00:00Z",
        ))
        .await
        .unwrap());
    assert!(got.is_empty());
    assert_eq!(store.health().await.observations_appended, 0);
}

/// Late observations are read back in time order; a second value at the same
/// time replaces the first.
pub async fn out_of_order_and_duplicate_timestamps(store: SharedStore) {
    seed_entities(&store).await;
    store
        .append_observations(vec![
            num("aq-td1", "2024-05-01T00:03:00Z", 3.0),
            num("aq-td1", "2024-05-01T00:01:00Z", 1.0),
        ])
        .await
        .unwrap();
    store
        .append_observations(vec![num("aq-td1", "2024-05-01T00:02:00Z", 2.0)])
        .await
        .unwrap();
    store
        .append_observations(vec![num("aq-td1", "2024-04-30T23:00:00Z", 0.0)])
        .await
        .unwrap();
    let latest = store
        .latest(&[urn("AirQualitySensor", "aq-td1")])
        .await
        .unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!(
        (latest[0].time, &latest[0].value),
        (t("2024-05-01T00:03:00Z"), &Value::Number(3.0)),
        "latest by time"
    );

    let q = series_q(
        "aq-td1",
        "pm25",
        "2024-04-30T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    let got = raw(store.series(&q).await.unwrap());
    let times: Vec<Timestamp> = got.iter().map(|p| p.0).collect();
    assert_eq!(
        times,
        [
            t("2024-04-30T23:00:00Z"),
            t("2024-05-01T00:01:00Z"),
            t("2024-05-01T00:02:00Z"),
            t("2024-05-01T00:03:00Z")
        ]
    );

    // Same time again: the later write replaces the earlier one, so a
    // delivery retried by a device or broker is not counted twice.
    store
        .append_observations(vec![num("aq-td1", "2024-05-01T00:03:00Z", 33.0)])
        .await
        .unwrap();
    let latest = store
        .latest(&[urn("AirQualitySensor", "aq-td1")])
        .await
        .unwrap();
    assert_eq!(
        (latest[0].time, &latest[0].value),
        (t("2024-05-01T00:03:00Z"), &Value::Number(33.0))
    );
    let got = raw(store.series(&q).await.unwrap());
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(
        got.last(),
        Some(&(t("2024-05-01T00:03:00Z"), Value::Number(33.0)))
    );
    let mut q1 = q.clone();
    q1.bucket = Some((bucket("1m"), Agg::Sum));
    let b = buckets(store.series(&q1).await.unwrap());
    assert_eq!(b.last(), Some(&(t("2024-05-01T00:03:00Z"), 33.0, 1)));

    // The same time twice in one batch: the later item wins.
    store
        .append_observations(vec![
            num("aq-td1", "2024-05-01T00:02:00Z", 20.0),
            num("aq-td1", "2024-05-01T00:02:00Z", 22.0),
        ])
        .await
        .unwrap();
    let got = raw(store.series(&q).await.unwrap());
    assert_eq!(got.len(), 4, "{got:?}");
    assert_eq!(got[2], (t("2024-05-01T00:02:00Z"), Value::Number(22.0)));
}

/// Raw series: `from` inclusive, `to` exclusive, and the limit keeps the oldest.
pub async fn raw_series_ranges_and_limits(store: SharedStore) {
    seed_entities(&store).await;
    let batch: Vec<Observation> = (0..5)
        .map(|i| num("aq-td1", &format!("2024-05-01T00:0{i}:00Z"), f64::from(i)))
        .collect();
    store.append_observations(batch).await.unwrap();
    let mut q = series_q(
        "aq-td1",
        "pm25",
        "2024-05-01T00:01:00Z",
        "2024-05-01T00:04:00Z",
    );
    let got = raw(store.series(&q).await.unwrap());
    assert_eq!(
        got,
        [
            (t("2024-05-01T00:01:00Z"), Value::Number(1.0)),
            (t("2024-05-01T00:02:00Z"), Value::Number(2.0)),
            (t("2024-05-01T00:03:00Z"), Value::Number(3.0)),
        ]
    );
    q.limit = 2;
    let got = raw(store.series(&q).await.unwrap());
    assert_eq!(
        got.iter().map(|p| p.0).collect::<Vec<_>>(),
        [t("2024-05-01T00:01:00Z"), t("2024-05-01T00:02:00Z")]
    );
    let empty = series_q(
        "aq-td1",
        "pm25",
        "2024-06-01T00:00:00Z",
        "2024-07-01T00:00:00Z",
    );
    assert!(raw(store.series(&empty).await.unwrap()).is_empty());
    // Other series are not mixed in.
    let other = series_q(
        "aq-td2",
        "pm25",
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    assert!(raw(store.series(&other).await.unwrap()).is_empty());
}

/// One-minute buckets with every aggregation; empty buckets are left out and
/// `last` means latest in time, not last written.
pub async fn bucketed_series_per_minute(store: SharedStore) {
    seed_entities(&store).await;
    store
        .append_observations(vec![
            num("aq-td1", "2024-05-01T00:00:50Z", 3.0),
            num("aq-td1", "2024-05-01T00:00:10Z", 1.0),
            num("aq-td1", "2024-05-01T00:03:00Z", 7.0),
            num("aq-td1", "2024-05-01T00:01:30Z", 5.0),
            num("aq-td1", "2024-05-01T00:04:00Z", 100.0),
        ])
        .await
        .unwrap();
    let mut q = series_q(
        "aq-td1",
        "pm25",
        "2024-05-01T00:00:00Z",
        "2024-05-01T00:04:00Z",
    );
    let m0 = t("2024-05-01T00:00:00Z");
    let m1 = t("2024-05-01T00:01:00Z");
    let m3 = t("2024-05-01T00:03:00Z");
    for (agg, first) in [
        (Agg::Avg, 2.0),
        (Agg::Min, 1.0),
        (Agg::Max, 3.0),
        (Agg::Sum, 4.0),
        (Agg::Count, 2.0),
        (Agg::Last, 3.0),
    ] {
        q.bucket = Some((bucket("1m"), agg));
        let got = buckets(store.series(&q).await.unwrap());
        let single = |v: f64| if agg == Agg::Count { 1.0 } else { v };
        assert_eq!(
            got,
            [(m0, first, 2), (m1, single(5.0), 1), (m3, single(7.0), 1)],
            "{agg:?}"
        );
    }
    q.bucket = Some((bucket("1h"), Agg::Max));
    assert_eq!(buckets(store.series(&q).await.unwrap()), [(m0, 7.0, 4)]);

    // Text cannot be aggregated.
    let mut tq = series_q(
        "aq-td1",
        "status",
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    tq.bucket = Some((bucket("1m"), Agg::Avg));
    assert!(matches!(
        store.series(&tq).await,
        Err(StoreError::Invalid(_))
    ));
}

/// Day buckets run from midnight to midnight in Vietnam (17:00 UTC).
pub async fn day_buckets_start_at_vietnamese_midnight(store: SharedStore) {
    seed_entities(&store).await;
    store
        .append_observations(vec![
            num("aq-td2", "2024-05-01T23:59:00+07:00", 1.0),
            num("aq-td2", "2024-05-02T00:01:00+07:00", 2.0),
            num("aq-td2", "2024-05-02T10:00:00+07:00", 4.0),
            num("aq-td2", "2024-05-03T23:59:59+07:00", 10.0),
        ])
        .await
        .unwrap();
    let mut q = series_q(
        "aq-td2",
        "pm25",
        "2024-04-30T17:00:00Z",
        "2024-05-03T17:00:00Z",
    );
    q.bucket = Some((bucket("1d"), Agg::Avg));
    let got = buckets(store.series(&q).await.unwrap());
    assert_eq!(
        got,
        [
            (t("2024-04-30T17:00:00Z"), 1.0, 1),
            (t("2024-05-01T17:00:00Z"), 3.0, 2),
            (t("2024-05-02T17:00:00Z"), 10.0, 1),
        ]
    );
    q.bucket = Some((bucket("1d"), Agg::Sum));
    let sums: Vec<f64> = buckets(store.series(&q).await.unwrap())
        .into_iter()
        .map(|b| b.1)
        .collect();
    assert_eq!(sums, [1.0, 6.0, 10.0]);
}

/// Reading a series or latest values of something that does not exist is NotFound.
pub async fn unknown_series_are_not_found(store: SharedStore) {
    seed_entities(&store).await;
    let q = series_q(
        "aq-nope",
        "pm25",
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    assert!(matches!(
        store.series(&q).await,
        Err(StoreError::NotFound { what: "entity", .. })
    ));
    let q = series_q(
        "aq-td1",
        "no2",
        "2024-05-01T00:00:00Z",
        "2024-05-02T00:00:00Z",
    );
    assert!(matches!(
        store.series(&q).await,
        Err(StoreError::NotFound {
            what: "attribute",
            ..
        })
    ));
    let r = store.latest(&[urn("AirQualitySensor", "aq-nope")]).await;
    assert!(
        matches!(r, Err(StoreError::NotFound { what: "entity", .. })),
        "{r:?}"
    );
    assert!(store.latest(&[]).await.unwrap().is_empty());
}

/// Grouped series: by each entity's own unit, by district and by province ancestor.
pub async fn grouped_series_by_unit_district_and_province(store: SharedStore) {
    seed_entities(&store).await;
    store
        .append_observations(vec![
            num("aq-td1", "2024-05-01T01:10:00Z", 10.0),
            num("aq-td1", "2024-05-01T01:20:00Z", 12.0),
            num("aq-td2", "2024-05-01T01:10:00Z", 20.0),
            num("aq-da1", "2024-05-01T01:10:00Z", 30.0),
            num("aq-q1", "2024-05-01T01:10:00Z", 40.0),
            num("aq-q1", "2024-05-01T03:10:00Z", 44.0),
        ])
        .await
        .unwrap();
    let h1 = t("2024-05-01T01:00:00Z");
    let h3 = t("2024-05-01T03:00:00Z");
    let mut q = GroupedSeriesQuery {
        filter: EntityQuery {
            types: vec!["AirQualitySensor".into()],
            ..EntityQuery::default()
        },
        attribute: "pm25".into(),
        from: t("2024-05-01T00:00:00Z"),
        to: t("2024-05-02T00:00:00Z"),
        bucket: bucket("1h"),
        agg: Agg::Avg,
        level: None,
    };
    type Summary = Vec<(Option<String>, usize, Vec<(Timestamp, f64, u64)>)>;
    let summary = |groups: Vec<crate::GroupSeries>| -> Summary {
        groups
            .into_iter()
            .map(|g| {
                (
                    g.admin_unit,
                    g.entities,
                    g.points
                        .into_iter()
                        .map(|p| (p.time, p.value, p.count))
                        .collect(),
                )
            })
            .collect()
    };
    let s = |c: &str| Some(c.to_string());

    let got = summary(store.grouped_series(&q).await.unwrap());
    assert_eq!(
        got,
        [
            (s("25747"), 1, vec![(h1, 11.0, 2)]),
            (s("25750"), 1, vec![(h1, 20.0, 1)]),
            (s("724"), 1, vec![(h1, 30.0, 1)]),
            (s("760"), 1, vec![(h1, 40.0, 1), (h3, 44.0, 1)]),
        ]
    );

    q.level = Some(AdminLevel::District);
    let got = summary(store.grouped_series(&q).await.unwrap());
    assert_eq!(
        got,
        [
            (s("718"), 2, vec![(h1, 14.0, 3)]),
            (s("724"), 1, vec![(h1, 30.0, 1)]),
            (s("760"), 1, vec![(h1, 40.0, 1), (h3, 44.0, 1)]),
        ]
    );

    q.level = Some(AdminLevel::Province);
    q.agg = Agg::Max;
    let got = summary(store.grouped_series(&q).await.unwrap());
    assert_eq!(
        got,
        [
            (s("74"), 3, vec![(h1, 30.0, 4)]),
            (s("79"), 1, vec![(h1, 40.0, 1), (h3, 44.0, 1)])
        ]
    );

    // The filter applies first: only Binh Duong, by district.
    q.filter.admin_unit = Some("74".into());
    q.level = Some(AdminLevel::District);
    q.agg = Agg::Count;
    let got = summary(store.grouped_series(&q).await.unwrap());
    assert_eq!(
        got,
        [
            (s("718"), 2, vec![(h1, 3.0, 3)]),
            (s("724"), 1, vec![(h1, 1.0, 1)])
        ]
    );

    // An attribute nobody has gives no groups.
    q.attribute = "no2".into();
    assert!(store.grouped_series(&q).await.unwrap().is_empty());
}

/// Latest values by filter are those of the same page of entities,
/// whatever the filter, and pages walk the same way.
pub async fn latest_matching_pages_like_entities_then_latest(store: SharedStore) {
    seed_entities(&store).await;
    store
        .append_observations(vec![
            num("aq-td1", "2024-05-01T00:00:00Z", 12.5),
            num("aq-td1", "2024-05-01T00:05:00Z", 13.0),
            num("aq-td2", "2024-05-01T00:01:00Z", 7.0),
            num("aq-q1", "2024-05-01T00:00:00Z", 40.0),
            obs(
                "aq-td1",
                "status",
                "2024-05-01T00:02:00Z",
                Value::Text("Tốt".into()),
            ),
        ])
        .await
        .unwrap();
    let mut filters: Vec<EntityQuery> = Vec::new();
    let mut push = |f: &dyn Fn(&mut EntityQuery)| {
        let mut q = all();
        f(&mut q);
        filters.push(q);
    };
    push(&|_| {});
    push(&|q| q.types = vec!["AirQualitySensor".into()]);
    push(&|q| q.domain = Some("water".into()));
    push(&|q| q.admin_unit = Some("74".into()));
    push(&|q| q.admin_unit = Some("999".into()));
    push(&|q| {
        q.ids = vec![
            urn("AirQualitySensor", "aq-q1"),
            urn("AirQualitySensor", "aq-td1"),
        ]
    });
    push(&|q| {
        q.bbox = Some(BBox {
            west: 106.6,
            south: 10.95,
            east: 106.7,
            north: 11.05,
        })
    });
    push(&|q| {
        q.within = Some(polygon(&[
            (106.60, 10.95),
            (106.70, 10.95),
            (106.60, 11.05),
            (106.60, 10.95),
        ]))
    });
    push(&|q| q.text = Some("td".into()));
    for base in filters {
        for limit in [1, 2, 100] {
            let mut q = base.clone();
            q.limit = limit;
            let mut pages = 0;
            loop {
                let want = store.query_entities(&q).await.unwrap();
                let ids: Vec<String> = want.items.iter().map(|e| e.id.clone()).collect();
                let want_latest = store.latest(&ids).await.unwrap();
                let got = store.latest_matching(&q).await.unwrap();
                assert_eq!(got.items, want_latest, "{q:?}");
                assert_eq!(got.next_cursor, want.next_cursor, "{q:?}");
                pages += 1;
                assert!(pages < 20, "pages never end: {q:?}");
                match got.next_cursor {
                    Some(c) => q.cursor = Some(c),
                    None => break,
                }
            }
        }
    }
}

/// Every entity filter, alone and combined.
pub async fn entity_filters(store: SharedStore) {
    seed_entities(&store).await;
    let q = |f: fn(&mut EntityQuery)| {
        let mut q = all();
        f(&mut q);
        q
    };
    assert_eq!(ids(&store, all()).await.len(), 6);
    assert_eq!(
        ids(&store, q(|q| q.types = vec!["AirQualitySensor".into()])).await,
        short(&["aq-td1", "aq-td2", "aq-da1", "aq-q1"])
    );
    assert_eq!(
        ids(
            &store,
            q(|q| q.types = vec!["Camera".into(), "WaterLevelSensor".into()])
        )
        .await,
        short(&["cam-001", "wl-td1"])
    );
    assert_eq!(
        ids(&store, q(|q| q.domain = Some("water".into()))).await,
        short(&["wl-td1"])
    );
    assert_eq!(
        ids(
            &store,
            q(|q| q.ids = vec![
                urn("AirQualitySensor", "aq-q1"),
                urn("AirQualitySensor", "aq-td1")
            ])
        )
        .await,
        short(&["aq-q1", "aq-td1"])
    );

    // Admin units include their descendants.
    assert_eq!(
        ids(&store, q(|q| q.admin_unit = Some("74".into()))).await,
        short(&["aq-td1", "aq-td2", "aq-da1", "wl-td1"])
    );
    assert_eq!(
        ids(&store, q(|q| q.admin_unit = Some("718".into()))).await,
        short(&["aq-td1", "aq-td2", "wl-td1"])
    );
    assert_eq!(
        ids(&store, q(|q| q.admin_unit = Some("25747".into()))).await,
        short(&["aq-td1"])
    );
    assert_eq!(
        ids(&store, q(|q| q.admin_unit = Some("79".into()))).await,
        short(&["aq-q1"])
    );
    assert!(
        ids(&store, q(|q| q.admin_unit = Some("999".into())))
            .await
            .is_empty()
    );

    // Box and area, on the entity's point.
    let bbox = |q: &mut EntityQuery| {
        q.bbox = Some(BBox {
            west: 106.6,
            south: 10.95,
            east: 106.7,
            north: 11.05,
        })
    };
    assert_eq!(
        ids(&store, q(bbox)).await,
        short(&["aq-td1", "aq-td2", "wl-td1"])
    );
    // A triangle whose bounding box holds aq-td2, which lies outside it.
    let mut within = all();
    within.within = Some(polygon(&[
        (106.60, 10.95),
        (106.70, 10.95),
        (106.60, 11.05),
        (106.60, 10.95),
    ]));
    assert_eq!(
        ids(&store, within.clone()).await,
        short(&["aq-td1", "wl-td1"])
    );
    within.types = vec!["AirQualitySensor".into()];
    assert_eq!(ids(&store, within).await, short(&["aq-td1"]));

    // Text, ignoring case and Vietnamese diacritics, in names and ids.
    assert_eq!(
        ids(&store, q(|q| q.text = Some("thu dau mot".into()))).await,
        short(&["aq-td1"])
    );
    assert_eq!(
        ids(&store, q(|q| q.text = Some("THỦ DẦU MỘT".into()))).await,
        short(&["aq-td1"])
    );
    assert_eq!(
        ids(&store, q(|q| q.text = Some("DI AN".into()))).await,
        short(&["aq-da1"])
    );
    assert_eq!(
        ids(&store, q(|q| q.text = Some("do muc nuoc".into()))).await,
        short(&["wl-td1"])
    );
    assert_eq!(
        ids(&store, q(|q| q.text = Some("Đồng Đen".into()))).await,
        short(&["cam-001"])
    );
    assert_eq!(
        ids(&store, q(|q| q.text = Some("aq-q1".into()))).await,
        short(&["aq-q1"])
    );
    assert!(
        ids(&store, q(|q| q.text = Some("hà nội".into())))
            .await
            .is_empty()
    );

    // Everything at once.
    let mut combined = all();
    combined.types = vec!["AirQualitySensor".into()];
    combined.domain = Some("environment".into());
    combined.admin_unit = Some("74".into());
    combined.text = Some("tram".into());
    combined.bbox = Some(BBox {
        west: 106.0,
        south: 10.0,
        east: 106.7,
        north: 12.0,
    });
    assert_eq!(ids(&store, combined).await, short(&["aq-td1", "aq-td2"]));
}

/// Following `next_cursor` visits every matching entity exactly once, in id order.
pub async fn cursor_pagination_walks_every_entity_once(store: SharedStore) {
    seed_entities(&store).await;
    let benches: Vec<Entity> = (0..25)
        .map(|i| {
            let lon = 106.60 + f64::from(i) * 0.01;
            entity(
                "Bench",
                &format!("b-{i:02}"),
                &format!("Ghế đá số {i}"),
                "urban",
                Some("718"),
                Some((lon, 11.0)),
            )
        })
        .collect();
    store.upsert_entities(&benches, t0()).await.unwrap();

    let walk = |base: EntityQuery| {
        let store = store.clone();
        async move {
            let mut seen = Vec::new();
            let mut cursor = None;
            let mut pages = 0;
            loop {
                let page = store
                    .query_entities(&EntityQuery {
                        cursor: cursor.clone(),
                        ..base.clone()
                    })
                    .await
                    .unwrap();
                assert!(page.items.len() <= base.limit.max(1));
                pages += 1;
                seen.extend(page.items.into_iter().map(|e| e.id));
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
                assert!(pages < 100, "pagination does not end");
            }
            (seen, pages)
        }
    };

    let (seen, pages) = walk(EntityQuery {
        limit: 7,
        ..EntityQuery::default()
    })
    .await;
    let mut expected: Vec<String> = benches
        .iter()
        .map(|e| e.id.clone())
        .chain(entities().into_iter().map(|e| e.id))
        .collect();
    expected.sort();
    assert_eq!(seen, expected, "every entity once, by id");
    assert_eq!(pages, 5);

    // With a filter and an area (exact test after the query), pages stay full.
    let area = polygon(&[
        (106.595, 10.99),
        (106.745, 10.99),
        (106.745, 11.01),
        (106.595, 11.01),
        (106.595, 10.99),
    ]);
    let (seen, pages) = walk(EntityQuery {
        types: vec!["Bench".into()],
        within: Some(area),
        limit: 4,
        ..EntityQuery::default()
    })
    .await;
    let expected: Vec<String> = (0..15)
        .map(|i| urn("Bench", &format!("b-{i:02}")))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 4);

    // An exact fit ends without an empty page.
    let (seen, pages) = walk(EntityQuery {
        types: vec!["Bench".into()],
        limit: 25,
        ..EntityQuery::default()
    })
    .await;
    assert_eq!((seen.len(), pages), (25, 1));

    let r = store
        .query_entities(&EntityQuery {
            cursor: Some("not a cursor!".into()),
            limit: 5,
            ..EntityQuery::default()
        })
        .await;
    assert_eq!(invalid_fields(r), ["cursor"]);
}

// --- indicators -----------------------------------------------------------

fn indicator_aqi() -> Indicator {
    Indicator {
        code: "aqi-good-days-rate".into(),
        name: "Tỷ lệ ngày có chất lượng không khí tốt".into(),
        name_en: "Share of days with good air quality".into(),
        domain: "environment".into(),
        unit: "%".into(),
        periodicity: Periodicity::Monthly,
        direction: Direction::HigherIsBetter,
        targets: [(2024, 80.0), (2025, 85.0)].into_iter().collect(),
        thresholds: Thresholds::TargetRatio {
            green: 1.0,
            amber: 0.9,
        },
        owner_agency: Some("so-tnmt".into()),
        computation: Computation::Submitted,
        source: Some("Sở TN&MT, báo cáo tháng".into()),
        headline: true,
    }
}

fn indicator_pm25() -> Indicator {
    Indicator {
        code: "pm25-daily-avg".into(),
        name: "PM2.5 trung bình ngày".into(),
        name_en: "Daily mean PM2.5".into(),
        domain: "environment".into(),
        unit: "µg/m3".into(),
        periodicity: Periodicity::Daily,
        direction: Direction::LowerIsBetter,
        targets: BTreeMap::new(),
        thresholds: Thresholds::Absolute {
            green: 25.0,
            amber: 50.0,
        },
        owner_agency: None,
        computation: Computation::FromSeries {
            entity_type: "AirQualitySensor".into(),
            attribute: "pm25".into(),
            agg: Agg::Avg,
        },
        source: None,
        headline: false,
    }
}

fn indicator_accidents() -> Indicator {
    Indicator {
        code: "traffic-accidents".into(),
        name: "Số vụ tai nạn giao thông".into(),
        name_en: "Traffic accidents".into(),
        domain: "traffic".into(),
        unit: "vụ".into(),
        periodicity: Periodicity::Quarterly,
        direction: Direction::LowerIsBetter,
        targets: [(2024, 120.0)].into_iter().collect(),
        thresholds: Thresholds::default(),
        owner_agency: None,
        computation: Computation::FromIndicators {
            expression: "accidents-road + accidents-river".into(),
        },
        source: None,
        headline: false,
    }
}

/// Indicators come back as written, by domain then code; references must exist.
pub async fn indicators_round_trip(store: SharedStore) {
    seed_reference(&store).await;
    let all = [indicator_accidents(), indicator_pm25(), indicator_aqi()];
    store.upsert_indicators(&all).await.unwrap();
    assert_eq!(
        store.indicators(None).await.unwrap(),
        [indicator_aqi(), indicator_pm25(), indicator_accidents()]
    );
    assert_eq!(
        store.indicators(Some("traffic")).await.unwrap(),
        [indicator_accidents()]
    );
    assert!(
        store
            .indicators(Some("health-none"))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.indicator("pm25-daily-avg").await.unwrap(),
        Some(indicator_pm25())
    );
    assert_eq!(store.indicator("nope").await.unwrap(), None);

    let mut changed = indicator_aqi();
    changed.targets.insert(2026, 90.0);
    changed.headline = false;
    changed.owner_agency = None;
    store
        .upsert_indicators(std::slice::from_ref(&changed))
        .await
        .unwrap();
    assert_eq!(store.indicator(&changed.code).await.unwrap(), Some(changed));

    let mut lost = indicator_pm25();
    lost.code = "new-one".into();
    lost.domain = "nope".into();
    let mut orphan = indicator_pm25();
    orphan.code = "new-two".into();
    orphan.owner_agency = Some("so-nope".into());
    let mut bad = indicator_pm25();
    bad.code = "new-three".into();
    bad.thresholds = Thresholds::Absolute {
        green: 50.0,
        amber: 25.0,
    };
    let r = store
        .upsert_indicators(&[indicator_pm25(), lost, orphan, bad])
        .await;
    let fields: BTreeSet<String> = invalid_fields(r).into_iter().collect();
    let expected: BTreeSet<String> = ["[1].domain", "[2].owner_agency", "[3].thresholds"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(fields, expected);
    assert_eq!(store.indicators(None).await.unwrap().len(), 3);
}

fn value_in(indicator: &str, period: &str, unit: &str, value: f64) -> IndicatorValueInput {
    IndicatorValueInput {
        indicator: indicator.into(),
        period: period.into(),
        admin_unit: unit.into(),
        value,
        status: None,
        note: None,
    }
}

/// A resubmission is a new revision; the current value is the highest
/// revision; history keeps all, oldest first.
pub async fn indicator_values_keep_every_revision(store: SharedStore) {
    seed_reference(&store).await;
    store
        .upsert_indicators(&[indicator_aqi(), indicator_pm25(), indicator_accidents()])
        .await
        .unwrap();
    let aqi = "aqi-good-days-rate";
    let by = "user:lan.nguyen";
    let (t1, t2) = (t("2024-06-03T02:00:00Z"), t("2024-06-20T02:00:00Z"));

    let mut first = value_in(aqi, "2024-05", "74", 75.0);
    first.note = Some("Số liệu sơ bộ".into());
    let stored = store
        .submit_indicator_values(
            &[
                value_in(aqi, "2024-04", "74", 70.0),
                first,
                value_in(aqi, "2024-05", "718", 80.0),
            ],
            by,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    assert!(
        stored
            .iter()
            .all(|v| v.revision == 1 && v.status == ValueStatus::Provisional)
    );
    assert!(
        stored
            .iter()
            .all(|v| v.submitted_by == by && v.submitted_at == t0())
    );
    assert_eq!(stored[1].note.as_deref(), Some("Số liệu sơ bộ"));

    let second = store
        .submit_indicator_values(&[value_in(aqi, "2024-05", "74", 76.0)], by, t1)
        .await
        .unwrap();
    assert_eq!(
        (second[0].revision, second[0].status),
        (2, ValueStatus::Revised)
    );
    let mut fin = value_in(aqi, "2024-05", "74", 77.0);
    fin.status = Some(ValueStatus::Final);
    let third = store
        .submit_indicator_values(&[fin], "source:so-tnmt", t2)
        .await
        .unwrap();
    assert_eq!(
        (third[0].revision, third[0].status),
        (3, ValueStatus::Final)
    );

    let current = store
        .indicator_values(&IndicatorValueQuery {
            indicator: Some(aqi.into()),
            ..IndicatorValueQuery::default()
        })
        .await
        .unwrap();
    let brief: Vec<(&str, &str, f64, u32)> = current
        .iter()
        .map(|v| {
            (
                v.admin_unit.as_str(),
                v.period.as_str(),
                v.value,
                v.revision,
            )
        })
        .collect();
    assert_eq!(
        brief,
        [
            ("718", "2024-05", 80.0, 1),
            ("74", "2024-04", 70.0, 1),
            ("74", "2024-05", 77.0, 3)
        ]
    );
    assert_eq!(current[2], third[0]);

    let history = store
        .indicator_value_history(aqi, "2024-05", "74")
        .await
        .unwrap();
    let brief: Vec<(u32, f64, ValueStatus, Timestamp)> = history
        .iter()
        .map(|v| (v.revision, v.value, v.status, v.submitted_at))
        .collect();
    assert_eq!(
        brief,
        [
            (1, 75.0, ValueStatus::Provisional, t0()),
            (2, 76.0, ValueStatus::Revised, t1),
            (3, 77.0, ValueStatus::Final, t2),
        ]
    );
    assert_eq!(history[0], stored[1]);
    assert_eq!(history[2].submitted_by, "source:so-tnmt");
    assert!(
        store
            .indicator_value_history(aqi, "2024-06", "74")
            .await
            .unwrap()
            .is_empty()
    );

    // Two values for one period in one batch are two revisions.
    let pm = "pm25-daily-avg";
    let both = store
        .submit_indicator_values(
            &[
                value_in(pm, "2024-05-31", "74", 30.0),
                value_in(pm, "2024-05-31", "74", 31.0),
            ],
            by,
            t0(),
        )
        .await
        .unwrap();
    assert_eq!(both.iter().map(|v| v.revision).collect::<Vec<_>>(), [1, 2]);
    store
        .submit_indicator_values(
            &[value_in("traffic-accidents", "2024-Q2", "74", 101.0)],
            by,
            t0(),
        )
        .await
        .unwrap();

    // Filters.
    let q = |f: fn(&mut IndicatorValueQuery)| {
        let mut q = IndicatorValueQuery::default();
        f(&mut q);
        q
    };
    let count = |vs: Vec<IndicatorValue>| vs.len();
    assert_eq!(count(store.indicator_values(&q(|_| {})).await.unwrap()), 5);
    assert_eq!(
        count(
            store
                .indicator_values(&q(|q| q.domain = Some("environment".into())))
                .await
                .unwrap()
        ),
        4
    );
    assert_eq!(
        count(
            store
                .indicator_values(&q(|q| q.domain = Some("traffic".into())))
                .await
                .unwrap()
        ),
        1
    );
    assert_eq!(
        count(
            store
                .indicator_values(&q(|q| q.admin_unit = Some("718".into())))
                .await
                .unwrap()
        ),
        1
    );
    let from_may = |q: &mut IndicatorValueQuery| {
        q.indicator = Some("aqi-good-days-rate".into());
        q.from = chrono::NaiveDate::from_ymd_opt(2024, 5, 1);
    };
    assert_eq!(
        count(store.indicator_values(&q(from_may)).await.unwrap()),
        2
    );
    let before_may = |q: &mut IndicatorValueQuery| {
        q.indicator = Some("aqi-good-days-rate".into());
        q.to = chrono::NaiveDate::from_ymd_opt(2024, 5, 1);
    };
    let got = store.indicator_values(&q(before_may)).await.unwrap();
    assert_eq!(
        got.iter().map(|v| v.period.as_str()).collect::<Vec<_>>(),
        ["2024-04"]
    );
    let q2 = |q: &mut IndicatorValueQuery| {
        q.from = chrono::NaiveDate::from_ymd_opt(2024, 4, 1);
        q.to = chrono::NaiveDate::from_ymd_opt(2024, 4, 2);
    };
    let got = store.indicator_values(&q(q2)).await.unwrap();
    // The quarter 2024-Q2 and the month 2024-04 both start on 1 April.
    let mut periods: Vec<&str> = got.iter().map(|v| v.period.as_str()).collect();
    periods.sort();
    assert_eq!(periods, ["2024-04", "2024-Q2"]);
}

/// One bad value refuses the batch, naming each bad item; nothing is written.
pub async fn indicator_value_batches_are_all_or_nothing(store: SharedStore) {
    seed_reference(&store).await;
    store.upsert_indicators(&[indicator_aqi()]).await.unwrap();
    let aqi = "aqi-good-days-rate";
    let batch = [
        value_in(aqi, "2024-06", "74", 71.0),
        value_in(aqi, "2024", "74", 71.0),
        value_in("nope", "2024-06", "74", 71.0),
        value_in(aqi, "2024-06", "999", 71.0),
        value_in(aqi, "2024-06", "74", f64::NAN),
        value_in(aqi, "June 2024", "74", 1.0),
    ];
    let r = store.submit_indicator_values(&batch, "user:x", t0()).await;
    let fields: BTreeSet<String> = invalid_fields(r).into_iter().collect();
    let expected: BTreeSet<String> = [
        "[1].period",
        "[2].indicator",
        "[3].admin_unit",
        "[4].value",
        "[5].period",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(fields, expected);
    let r = store
        .submit_indicator_values(&batch[..2], "user:x", t0())
        .await;
    let reason = reason_for(r, "[1].period");
    assert!(
        reason.contains("2024-05"),
        "the reason shows a monthly period: {reason}"
    );
    assert!(
        store
            .indicator_values(&IndicatorValueQuery::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .indicator_value_history(aqi, "2024-06", "74")
            .await
            .unwrap()
            .is_empty()
    );
}

// --- sources, users, sessions -----------------------------------------------

fn source(id: &str) -> Source {
    Source {
        id: id.into(),
        name: "Mạng quan trắc không khí".into(),
        kind: SourceKind::HttpPush,
        owner_agency: Some("so-tnmt".into()),
        domain: Some("environment".into()),
        expected_interval_secs: 300,
        created_at: t0(),
        last_seen_at: None,
        accepted: 0,
        rejected: 0,
        last_error: None,
        connector: None,
    }
}

/// Sources come back by token and by id; ids and tokens are unique; activity
/// adds up and the last-seen time moves only forward, with accepted data.
pub async fn sources_round_trip_and_activity(store: SharedStore) {
    seed_reference(&store).await;
    let (tok_a, tok_b, tok_c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let a = source("aq-network");
    let b = Source {
        kind: SourceKind::Mqtt,
        owner_agency: None,
        domain: None,
        ..source("a-mqtt")
    };
    store.create_source(&a, &tok_a).await.unwrap();
    store.create_source(&b, &tok_b).await.unwrap();
    assert_eq!(store.sources().await.unwrap(), [b.clone(), a.clone()]);
    assert_eq!(
        store.source_by_token(&tok_a).await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.source_by_token(&tok_c).await.unwrap(), None);

    let r = store.create_source(&a, &tok_c).await;
    assert!(
        matches!(&r, Err(StoreError::Conflict(m)) if m.contains("aq-network")),
        "{r:?}"
    );
    let r = store.create_source(&source("other"), &tok_a).await;
    assert!(matches!(r, Err(StoreError::Conflict(_))), "{r:?}");
    let r = store
        .create_source(
            &Source {
                owner_agency: Some("so-nope".into()),
                ..source("other")
            },
            &tok_c,
        )
        .await;
    assert_eq!(invalid_fields(r), ["owner_agency"]);
    let r = store
        .create_source(
            &Source {
                expected_interval_secs: 0,
                ..source("other")
            },
            &tok_c,
        )
        .await;
    assert_eq!(invalid_fields(r), ["expected_interval_secs"]);
    assert_eq!(store.sources().await.unwrap().len(), 2);

    let (t1, t2) = (t("2024-05-01T01:00:00Z"), t("2024-05-01T02:00:00Z"));
    let act = |at, accepted, rejected, err: Option<&str>| SourceActivity {
        at: Some(at),
        accepted,
        rejected,
        last_error: err.map(Into::into),
    };
    store
        .record_source_activity(
            &a.id,
            &act(
                t1,
                10,
                2,
                Some("[3].value: expected a number value, got text"),
            ),
        )
        .await
        .unwrap();
    // A late report of an earlier request does not move last-seen back.
    store
        .record_source_activity(&a.id, &act(t0(), 5, 0, None))
        .await
        .unwrap();
    // Only refused items: counted, but the source was not seen delivering data.
    store
        .record_source_activity(&a.id, &act(t2, 0, 1, None))
        .await
        .unwrap();
    let got = store.source_by_token(&tok_a).await.unwrap().unwrap();
    assert_eq!((got.accepted, got.rejected), (15, 3));
    assert_eq!(got.last_seen_at, Some(t1));
    assert_eq!(
        got.last_error.as_deref(),
        Some("[3].value: expected a number value, got text")
    );
    store
        .record_source_activity(&a.id, &act(t2, 1, 0, Some("[0].entity: unknown entity")))
        .await
        .unwrap();
    let got = store
        .sources()
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.id == a.id)
        .unwrap();
    assert_eq!((got.accepted, got.last_seen_at), (16, Some(t2)));
    assert_eq!(
        got.last_error.as_deref(),
        Some("[0].entity: unknown entity")
    );
    let untouched = store.source_by_token(&tok_b).await.unwrap().unwrap();
    assert_eq!(untouched, b);

    let r = store
        .record_source_activity("nope", &act(t1, 1, 0, None))
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound { what: "source", .. })),
        "{r:?}"
    );
}

/// A source's connector document (broker, topics, mapping) comes back as
/// it was stored, by token and in the list; sources without one have none.
pub async fn source_connectors_round_trip(store: SharedStore) {
    seed_reference(&store).await;
    let connector = json!({
        "type": "mqtt",
        "host": "127.0.0.1",
        "port": 1883,
        "topics": [{"filter": "bd/aq/+/+", "qos": 1}],
        "mapping": {"format": "smart_data_models"},
        "note": "Trạm quan trắc không khí"
    });
    let with = Source {
        kind: SourceKind::Mqtt,
        connector: Some(connector.clone()),
        ..source("aq-mqtt")
    };
    let without = source("aq-push");
    store.create_source(&with, &[7u8; 32]).await.unwrap();
    store.create_source(&without, &[8u8; 32]).await.unwrap();
    let got = store.source_by_token(&[7u8; 32]).await.unwrap().unwrap();
    assert_eq!(got.connector, Some(connector));
    assert_eq!(got, with);
    assert_eq!(store.sources().await.unwrap(), [with, without]);
}

fn user(username: &str, role: Role) -> User {
    User {
        username: username.into(),
        display_name: "Nguyễn Thị Lan".into(),
        role,
        agency: Some("so-tnmt".into()),
        created_at: t0(),
    }
}

const HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA";

/// Users come back with their hash and in name order; names are unique.
pub async fn users_round_trip(store: SharedStore) {
    seed_reference(&store).await;
    let lan = user("lan.nguyen", Role::Officer);
    let admin = User {
        agency: None,
        display_name: "Quản trị".into(),
        ..user("admin", Role::Admin)
    };
    store.create_user(&lan, HASH).await.unwrap();
    store.create_user(&admin, "$argon2id$other").await.unwrap();
    assert_eq!(
        store.user_with_hash("lan.nguyen").await.unwrap(),
        Some((lan.clone(), HASH.to_string()))
    );
    assert_eq!(store.user_with_hash("nobody").await.unwrap(), None);
    assert_eq!(store.users().await.unwrap(), [admin, lan.clone()]);

    let r = store
        .create_user(
            &User {
                role: Role::Viewer,
                ..lan.clone()
            },
            HASH,
        )
        .await;
    assert!(
        matches!(&r, Err(StoreError::Conflict(m)) if m.contains("lan.nguyen")),
        "{r:?}"
    );
    let r = store
        .create_user(
            &User {
                agency: Some("so-nope".into()),
                ..user("minh", Role::Officer)
            },
            HASH,
        )
        .await;
    assert_eq!(invalid_fields(r), ["agency"]);
    let r = store
        .create_user(&user("has space", Role::Viewer), HASH)
        .await;
    assert_eq!(invalid_fields(r), ["username"]);
    assert_eq!(store.users().await.unwrap().len(), 2);
}

/// A session finds its user until it expires (at `now`, never the clock), and not after deletion.
pub async fn sessions_expire(store: SharedStore) {
    seed_reference(&store).await;
    let lan = user("lan.nguyen", Role::Officer);
    store.create_user(&lan, HASH).await.unwrap();
    let (tok, other) = ([7u8; 32], [8u8; 32]);
    let expires = t("2024-05-01T12:00:00Z");
    store
        .create_session(&tok, "lan.nguyen", expires)
        .await
        .unwrap();
    store
        .create_session(&other, "lan.nguyen", t("2024-05-02T12:00:00Z"))
        .await
        .unwrap();

    assert_eq!(
        store
            .session_user(&tok, t("2024-05-01T11:59:59Z"))
            .await
            .unwrap(),
        Some(lan.clone())
    );
    assert_eq!(
        store.session_user(&tok, expires).await.unwrap(),
        None,
        "expired at its expiry time"
    );
    assert_eq!(
        store
            .session_user(&tok, t("2024-05-03T00:00:00Z"))
            .await
            .unwrap(),
        None
    );
    assert_eq!(store.session_user(&[9u8; 32], t0()).await.unwrap(), None);

    // Looked up (a backend may now hold it in memory), then ended: refused at once.
    assert_eq!(
        store.session_user(&other, t0()).await.unwrap(),
        Some(lan.clone())
    );
    store.delete_session(&other).await.unwrap();
    assert_eq!(store.session_user(&other, t0()).await.unwrap(), None);
    store.delete_session(&other).await.unwrap();
    assert_eq!(
        store.session_user(&tok, t0()).await.unwrap(),
        Some(lan),
        "other sessions live on"
    );

    assert!(
        store
            .create_session(&[10u8; 32], "nobody", expires)
            .await
            .is_err()
    );
}

// --- operations -----------------------------------------------------------

/// Writers running at once all succeed, and no series id is handed out twice.
pub async fn concurrent_writers_neither_fail_nor_share_series(store: SharedStore) {
    seed_reference(&store).await;
    let mut tasks = Vec::new();
    for w in 0..8i32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let batch: Vec<Entity> = (0..5)
                .map(|i| aq(&format!("c{w}-{i}"), "Trạm đồng thời", "718", 106.6, 11.0))
                .collect();
            store.upsert_entities(&batch, t0()).await.unwrap();
            let obs = (0..5i32)
                .map(|i| {
                    num(
                        &format!("c{w}-{i}"),
                        "2024-05-01T00:00:00Z",
                        f64::from(w * 10 + i),
                    )
                })
                .collect();
            let appended = store.append_observations(obs).await.unwrap();
            appended
                .series
                .iter()
                .map(|m| m.series)
                .collect::<Vec<u32>>()
        }));
    }
    let mut series = BTreeSet::new();
    for task in tasks {
        for s in task.await.expect("the writer task ends") {
            assert!(series.insert(s), "series {s} handed out twice");
        }
    }
    assert_eq!(series.len(), 40);
    assert_eq!(store.query_entities(&all()).await.unwrap().items.len(), 40);
    let latest = store
        .latest(&[urn("AirQualitySensor", "c7-4")])
        .await
        .unwrap();
    assert_eq!(latest[0].value, Value::Number(74.0));
    assert_eq!(store.health().await.observations_appended, 40);
}

/// Health counts entities, series and appended observations, and reports no problem.
pub async fn health_counts(store: SharedStore) {
    let h = store.health().await;
    assert!(!h.backend.is_empty());
    assert_eq!((h.entities, h.series, h.observations_appended), (0, 0, 0));
    assert!(h.problems.is_empty(), "{:?}", h.problems);

    seed_entities(&store).await;
    store
        .append_observations(vec![
            num("aq-td1", "2024-05-01T00:00:00Z", 1.0),
            num("aq-td1", "2024-05-01T00:01:00Z", 2.0),
            num("aq-q1", "2024-05-01T00:00:00Z", 3.0),
        ])
        .await
        .unwrap();
    let h = store.health().await;
    // aq-td1 declares 4 attributes, three other sensors 1 each, the gauge 1, the camera none.
    assert_eq!((h.entities, h.series, h.observations_appended), (6, 8, 3));
    assert!(h.problems.is_empty(), "{:?}", h.problems);
    if let Some(bytes) = h.disk_bytes {
        assert!(bytes > 0);
    }
}
