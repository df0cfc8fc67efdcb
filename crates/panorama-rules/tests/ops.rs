//! The operations engine end to end on the embedded store: observations go
//! through the real ingest pipeline and event bus; time is a ManualClock.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use panorama_core::{
    AdminLevel, AdminUnit, AttributeSpec, Clock, Entity, ManualClock, Observation, Role, Source,
    SourceKind, Timestamp, User, Value, ValueType,
};
use panorama_ingest::{Event, EventBus, Ingest, IngestOptions};
use panorama_rules::{Actor, Channel, Dur, Ops, OpsError, OpsTasks, RulesConfig, Secret};
use panorama_store::{
    Alert, AlertAction, AlertQuery, AlertStatus, DeliveryQuery, DeliveryStatus, IncidentQuery,
    IncidentStatus, SharedStore, SopTemplate,
};
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value as Json, json};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

const G1: &str = "urn:ngsi-ld:WaterObserved:g1";
const G2: &str = "urn:ngsi-ld:WaterObserved:g2";
const G3: &str = "urn:ngsi-ld:WaterObserved:g3";
const A1: &str = "urn:ngsi-ld:AirQualityObserved:a1";
const C1: &str = "urn:ngsi-ld:Camera:c1";
const C2: &str = "urn:ngsi-ld:Camera:c2";

fn t(s: &str) -> Timestamp {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

fn admin() -> Actor {
    Actor {
        name: "admin".into(),
        role: Role::Admin,
        agency: None,
    }
}

fn operator() -> Actor {
    Actor {
        name: "lan".into(),
        role: Role::Operator,
        agency: None,
    }
}

struct Env {
    dir: Arc<tempfile::TempDir>,
    clock: Arc<ManualClock>,
    store: SharedStore,
    ingest: Ingest,
    bus: EventBus,
    ops: Ops,
    tasks: Option<OpsTasks>,
}

fn quiet(mut c: RulesConfig) -> RulesConfig {
    // Tests tick and deliver by hand.
    c.tick = Dur(3600);
    c.delivery_poll = Dur(3600);
    c
}

async fn start_in(
    dir: Arc<tempfile::TempDir>,
    clock: Arc<ManualClock>,
    config: RulesConfig,
) -> Env {
    let store: SharedStore = Arc::new(
        SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let bus = EventBus::new(4096);
    let ingest = Ingest::new(
        store.clone(),
        bus.clone(),
        clock.clone(),
        IngestOptions::default(),
    );
    let (ops, tasks) = Ops::start(store.clone(), bus.clone(), clock.clone(), quiet(config))
        .await
        .unwrap();
    Env {
        dir,
        clock,
        store,
        ingest,
        bus,
        ops,
        tasks: Some(tasks),
    }
}

fn point(lon: f64, lat: f64) -> Option<geojson::Geometry> {
    serde_json::from_value(json!({"type": "Point", "coordinates": [lon, lat]})).unwrap()
}

fn entity(
    id: &str,
    domain: &str,
    unit: &str,
    at: (f64, f64),
    attrs: &[(&str, ValueType)],
) -> Entity {
    let kind = id.split(':').nth(2).unwrap();
    Entity {
        id: id.into(),
        entity_type: kind.into(),
        name: format!("Trạm {}", id.rsplit(':').next().unwrap()),
        domain: domain.into(),
        admin_unit: Some(unit.into()),
        location: point(at.0, at.1),
        attributes: attrs
            .iter()
            .map(|(n, vt)| {
                (
                    n.to_string(),
                    AttributeSpec {
                        value_type: *vt,
                        unit: None,
                    },
                )
            })
            .collect::<BTreeMap<_, _>>(),
        properties: serde_json::Map::new(),
        source: None,
        updated_at: None,
    }
}

async fn env(config: RulesConfig) -> Env {
    let dir = Arc::new(tempfile::tempdir().unwrap());
    let clock = Arc::new(ManualClock::new(t("2024-05-01T00:00:00Z")));
    let e = start_in(dir, clock, config).await;
    let unit = |code: &str, level, parent: Option<&str>| AdminUnit {
        code: code.into(),
        name: code.into(),
        name_en: None,
        level,
        parent: parent.map(Into::into),
        geometry: None,
        valid_from: None,
        valid_to: None,
        successors: Vec::new(),
    };
    e.store
        .upsert_admin_units(&[
            unit("74", AdminLevel::Province, None),
            unit("718", AdminLevel::District, Some("74")),
            unit("724", AdminLevel::District, Some("74")),
        ])
        .await
        .unwrap();
    e.store
        .upsert_agencies(&[panorama_core::Agency {
            code: "bch-pctt".into(),
            name: "Ban Chỉ huy PCTT".into(),
            name_en: "Disaster prevention command".into(),
            admin_unit: Some("74".into()),
        }])
        .await
        .unwrap();
    let n = ValueType::Number;
    e.store
        .upsert_entities(
            &[
                entity(G1, "water", "718", (106.65, 10.98), &[("waterLevel", n)]),
                entity(G2, "water", "718", (106.66, 10.99), &[("waterLevel", n)]),
                entity(G3, "water", "724", (106.75, 10.92), &[("waterLevel", n)]),
                entity(A1, "environment", "718", (106.65, 10.97), &[("aqi", n)]),
                entity(
                    C1,
                    "public-order",
                    "718",
                    (106.66, 10.98),
                    &[("event", ValueType::Text), ("status", ValueType::Text)],
                ),
                entity(
                    C2,
                    "public-order",
                    "724",
                    (106.75, 10.92),
                    &[("event", ValueType::Text), ("status", ValueType::Text)],
                ),
            ],
            t("2024-05-01T00:00:00Z"),
        )
        .await
        .unwrap();
    for (name, role) in [("lan", Role::Operator), ("hung", Role::Leader)] {
        e.store
            .create_user(
                &User {
                    username: name.into(),
                    display_name: name.into(),
                    role,
                    agency: None,
                    created_at: t("2024-05-01T00:00:00Z"),
                },
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            )
            .await
            .unwrap();
    }
    e
}

impl Env {
    async fn stop(mut self) -> (Arc<tempfile::TempDir>, Arc<ManualClock>) {
        drop(self.tasks.take());
        self.store.close().await.unwrap();
        (self.dir, self.clock)
    }

    async fn obs(&self, entity: &str, attribute: &str, time: &str, value: Value) {
        self.ingest
            .observations(
                "test",
                vec![Observation {
                    entity: entity.into(),
                    attribute: attribute.into(),
                    time: t(time),
                    value,
                }],
            )
            .await
            .unwrap();
        self.ops.sync().await;
    }

    async fn level(&self, entity: &str, time: &str, v: f64) {
        self.obs(entity, "waterLevel", time, Value::Number(v)).await;
    }

    async fn rule(&self, v: Json) {
        self.ops.create_rule(&admin(), v).await.unwrap();
        self.ops.sync().await;
    }

    async fn alerts(&self) -> Vec<Alert> {
        self.ops
            .alerts(AlertQuery {
                limit: 1000,
                ..AlertQuery::default()
            })
            .await
            .unwrap()
            .items
    }

    async fn at(&self, time: &str) {
        self.clock.set(t(time));
        self.ops.tick().await;
    }
}

fn water_rule() -> Json {
    json!({
        "id": "river-high", "name": "Mực nước sông vượt báo động", "severity": "high",
        "scope": {"domains": ["water"], "entity_types": ["WaterObserved"]},
        "condition": {"kind": "threshold", "attribute": "waterLevel", "above": 2.5, "clear": 2.3, "for": "10m"}
    })
}

#[tokio::test]
async fn a_threshold_alert_opens_once_and_resolves_when_the_level_clears() {
    let e = env(RulesConfig::default()).await;
    let mut live = e.bus.subscribe();
    e.rule(water_rule()).await;
    e.level(G1, "2024-05-01T00:00:00Z", 2.6).await;
    e.level(G1, "2024-05-01T00:05:00Z", 2.7).await;
    assert!(e.alerts().await.is_empty(), "not yet 10 minutes");
    e.clock.set(t("2024-05-01T00:10:30Z"));
    e.level(G1, "2024-05-01T00:10:00Z", 2.8).await;
    let a = e.alerts().await;
    assert_eq!(a.len(), 1);
    let a = &a[0];
    assert_eq!((a.status, a.value), (AlertStatus::Open, Some(2.8)));
    assert_eq!(a.fired_at, t("2024-05-01T00:10:00Z"));
    assert_eq!(a.opened_at, t("2024-05-01T00:10:30Z"));
    assert_eq!(a.entity.as_deref(), Some(G1));
    assert_eq!(a.admin_unit.as_deref(), Some("718"));
    assert_eq!(a.location, Some([106.65, 10.98]));
    assert!(a.title.contains("Trạm g1"), "{}", a.title);
    let values: Vec<f64> = a.data["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, [2.6, 2.7, 2.8], "the data that fired it");
    assert!(a.data["chart"].as_str().unwrap().starts_with(
        "/api/v1/series?entity=urn:ngsi-ld:WaterObserved:g1&attribute=waterLevel&from="
    ));

    // While the condition lasts: no new alert; inside the band: still open.
    e.level(G1, "2024-05-01T00:15:00Z", 2.9).await;
    e.level(G1, "2024-05-01T00:20:00Z", 2.4).await;
    e.level(G1, "2024-05-01T00:25:00Z", 2.3).await;
    let now = e.alerts().await;
    assert_eq!(now.len(), 1);
    assert_eq!((now[0].status, now[0].occurrences), (AlertStatus::Open, 1));
    // Another gauge is another alert.
    e.level(G2, "2024-05-01T00:25:00Z", 3.0).await;
    e.level(G2, "2024-05-01T00:36:00Z", 3.0).await;
    assert_eq!(e.alerts().await.len(), 2);

    e.clock.set(t("2024-05-01T00:31:00Z"));
    e.level(G1, "2024-05-01T00:30:00Z", 2.29).await;
    let all = e.alerts().await;
    let g1 = all
        .iter()
        .find(|a| a.entity.as_deref() == Some(G1))
        .unwrap();
    assert_eq!(g1.status, AlertStatus::Resolved);
    assert_eq!(g1.resolved_by.as_deref(), Some("rule:river-high"));
    assert_eq!(g1.resolved_at, Some(t("2024-05-01T00:31:00Z")));
    assert!(
        g1.resolution
            .as_deref()
            .unwrap()
            .contains("2024-05-01T00:30:00")
    );
    let steps = e.ops.alert(g1.id).await.unwrap().steps;
    assert_eq!(
        steps.iter().map(|s| s.action).collect::<Vec<_>>(),
        [AlertAction::Opened, AlertAction::Resolved]
    );

    // Every change went out on the bus for the live stream.
    let mut changes = Vec::new();
    while let Ok(ev) = live.try_recv() {
        if let Event::Alert(a) = ev {
            changes.push((a.change, a.alert.entity.clone().unwrap()));
        }
    }
    assert_eq!(
        changes,
        [
            ("opened", G1.to_string()),
            ("opened", G2.to_string()),
            ("resolved", G1.to_string())
        ]
    );
}

#[tokio::test]
async fn hand_steps_follow_the_lifecycle_and_need_the_right_role() {
    let e = env(RulesConfig::default()).await;
    let mut r = water_rule();
    r["condition"]["for"] = json!("0s");
    e.rule(r).await;
    e.level(G1, "2024-05-01T00:00:00Z", 3.0).await;
    let id = e.alerts().await[0].id;
    let viewer = Actor {
        name: "v".into(),
        role: Role::Viewer,
        agency: None,
    };
    assert!(matches!(
        e.ops.acknowledge(&viewer, id, None).await,
        Err(OpsError::Forbidden(_))
    ));
    e.clock.set(t("2024-05-01T00:02:00Z"));
    let d = e
        .ops
        .acknowledge(&operator(), id, Some("đang xem"))
        .await
        .unwrap();
    assert_eq!(d.alert.status, AlertStatus::Acknowledged);
    assert_eq!(d.alert.acknowledged_by.as_deref(), Some("user:lan"));
    assert_eq!(d.alert.acknowledged_at, Some(t("2024-05-01T00:02:00Z")));
    assert!(matches!(
        e.ops.acknowledge(&operator(), id, None).await,
        Err(OpsError::Conflict(_))
    ));
    assert!(matches!(
        e.ops.resolve(&operator(), id, " ").await,
        Err(OpsError::Invalid(_))
    ));
    let d = e
        .ops
        .resolve(&operator(), id, "Cảm biến lỗi")
        .await
        .unwrap();
    assert_eq!(d.alert.status, AlertStatus::Resolved);
    assert_eq!(d.steps.len(), 3);
    // The condition still holds: resolving by hand does not reopen it at
    // once; it opens again only after it cleared and fired again.
    e.level(G1, "2024-05-01T00:05:00Z", 3.1).await;
    assert_eq!(e.alerts().await.len(), 1);
    e.level(G1, "2024-05-01T00:06:00Z", 2.0).await;
    e.level(G1, "2024-05-01T00:07:00Z", 3.0).await;
    assert_eq!(e.alerts().await.len(), 2);
}

#[tokio::test]
async fn alerts_are_not_duplicated_across_restarts() {
    let e = env(RulesConfig::default()).await;
    e.rule(water_rule()).await;
    e.level(G1, "2024-05-01T00:00:00Z", 2.6).await;
    e.level(G1, "2024-05-01T00:10:00Z", 2.7).await;
    assert_eq!(e.alerts().await.len(), 1);
    let (dir, clock) = e.stop().await;

    let e = start_in(dir, clock, RulesConfig::default()).await;
    // Still above the level after the restart: the same alert, not a new one.
    e.level(G1, "2024-05-01T00:12:00Z", 2.8).await;
    e.level(G1, "2024-05-01T00:30:00Z", 2.9).await;
    let a = e.alerts().await;
    assert_eq!(a.len(), 1, "{a:?}");
    assert_eq!((a[0].status, a[0].occurrences), (AlertStatus::Open, 1));
    // And it clears as if nothing happened.
    e.level(G1, "2024-05-01T00:31:00Z", 2.0).await;
    assert_eq!(e.alerts().await[0].status, AlertStatus::Resolved);
    e.stop().await;
}

#[tokio::test]
async fn late_and_out_of_order_observations_do_not_flip_the_state() {
    let e = env(RulesConfig::default()).await;
    let mut r = water_rule();
    r["condition"]["for"] = json!("0s");
    e.rule(r).await;
    e.level(G1, "2024-05-01T01:00:00Z", 3.0).await;
    assert_eq!(e.alerts().await[0].status, AlertStatus::Open);
    // A value from before the newest one arrives late: ignored.
    e.level(G1, "2024-05-01T00:30:00Z", 1.0).await;
    assert_eq!(e.alerts().await[0].status, AlertStatus::Open);
    // One batch with values out of order: they are taken in batch order,
    // and the older one is late.
    e.ingest
        .observations(
            "test",
            vec![
                Observation {
                    entity: G1.into(),
                    attribute: "waterLevel".into(),
                    time: t("2024-05-01T01:10:00Z"),
                    value: Value::Number(2.0),
                },
                Observation {
                    entity: G1.into(),
                    attribute: "waterLevel".into(),
                    time: t("2024-05-01T01:05:00Z"),
                    value: Value::Number(3.5),
                },
            ],
        )
        .await
        .unwrap();
    e.ops.sync().await;
    let a = e.alerts().await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].status, AlertStatus::Resolved);
}

#[tokio::test]
async fn the_hourly_average_fires_and_clears() {
    let e = env(RulesConfig::default()).await;
    e.rule(json!({
        "id": "aqi-bad", "name": "AQI trung bình 1 giờ xấu", "severity": "medium",
        "scope": {"entity_types": ["AirQualityObserved"]},
        "condition": {"kind": "aggregate", "attribute": "aqi", "agg": "avg", "window": "1h", "above": 150, "clear": 140, "min_count": 2}
    }))
    .await;
    let aqi = |time: &'static str, v: f64| e.obs(A1, "aqi", time, Value::Number(v));
    aqi("2024-05-01T00:00:00Z", 300.0).await;
    assert!(
        e.alerts().await.is_empty(),
        "one value is not enough (min_count 2)"
    );
    aqi("2024-05-01T00:20:00Z", 100.0).await; // avg 200
    let a = e.alerts().await;
    assert_eq!((a.len(), a[0].value), (1, Some(200.0)));
    aqi("2024-05-01T00:40:00Z", 50.0).await; // avg 150: in the band
    assert_eq!(e.alerts().await[0].status, AlertStatus::Open);
    aqi("2024-05-01T01:00:00Z", 100.0).await; // the 300 left: (100+50+100)/3
    assert_eq!(e.alerts().await[0].status, AlertStatus::Resolved);
}

#[tokio::test]
async fn sources_and_entities_falling_silent_fire_on_the_clock() {
    let e = env(RulesConfig::default()).await;
    e.store
        .create_source(
            &Source {
                id: "river-gauges".into(),
                name: "Trạm đo mực nước".into(),
                kind: SourceKind::HttpPush,
                owner_agency: None,
                domain: Some("water".into()),
                expected_interval_secs: 300,
                created_at: t("2024-05-01T00:00:00Z"),
                last_seen_at: None,
                accepted: 0,
                rejected: 0,
                last_error: None,
                connector: None,
            },
            &[7u8; 32],
        )
        .await
        .unwrap();
    // C2 spoke before the rule existed; C1 never did.
    e.obs(
        C2,
        "status",
        "2024-05-01T00:00:00Z",
        Value::Text("ok".into()),
    )
    .await;
    e.rule(json!({
        "id": "feed-silent", "name": "Nguồn dữ liệu ngừng gửi", "severity": "medium",
        "condition": {"kind": "freshness", "of": "source", "grace": "1m"}
    }))
    .await;
    e.rule(json!({
        "id": "camera-silent", "name": "Camera mất tín hiệu", "severity": "low",
        "scope": {"entity_types": ["Camera"]},
        "condition": {"kind": "freshness", "of": "entity", "attribute": "status", "max_silence": "30m"}
    }))
    .await;
    e.at("2024-05-01T00:06:00Z").await;
    assert!(e.alerts().await.is_empty(), "5 minutes + 1 minute of grace");
    e.at("2024-05-01T00:06:01Z").await;
    let a = e.alerts().await;
    assert_eq!(a.len(), 1);
    assert_eq!(
        (a[0].rule.as_str(), a[0].source.as_deref()),
        ("feed-silent", Some("river-gauges"))
    );
    e.at("2024-05-01T00:30:00Z").await;
    assert_eq!(e.alerts().await.len(), 1, "exactly 30 minutes is not late");
    e.at("2024-05-01T00:30:01Z").await;
    let cams: Vec<Alert> = e
        .alerts()
        .await
        .into_iter()
        .filter(|a| a.rule == "camera-silent")
        .collect();
    assert_eq!(cams.len(), 1, "C1 never spoke: no judgement");
    assert_eq!(cams[0].entity.as_deref(), Some(C2));
    // Data comes back: both clear.
    e.store
        .record_source_activity(
            "river-gauges",
            &panorama_store::SourceActivity {
                at: Some(t("2024-05-01T00:31:00Z")),
                accepted: 1,
                rejected: 0,
                last_error: None,
            },
        )
        .await
        .unwrap();
    e.clock.set(t("2024-05-01T00:31:00Z"));
    e.obs(
        C2,
        "status",
        "2024-05-01T00:31:00Z",
        Value::Text("ok".into()),
    )
    .await;
    e.ops.tick().await;
    assert!(
        e.alerts()
            .await
            .iter()
            .all(|a| a.status == AlertStatus::Resolved)
    );
}

#[tokio::test]
async fn an_indicator_turning_red_fires_and_back_to_green_clears() {
    let e = env(RulesConfig::default()).await;
    let ind: panorama_core::Indicator = serde_json::from_value(json!({
        "code": "hospital-beds", "name": "Giường bệnh / vạn dân", "name_en": "Hospital beds",
        "domain": "health", "unit": "giường", "periodicity": "monthly", "direction": "higher_is_better",
        "targets": {"2024": 30.0}
    }))
    .unwrap();
    e.store.upsert_indicators(&[ind]).await.unwrap();
    e.rule(json!({
        "id": "health-red", "name": "Chỉ tiêu y tế không đạt", "severity": "medium",
        "scope": {"domains": ["health"], "admin_units": ["74"]},
        "condition": {"kind": "indicator_status", "at_least": "red"}
    }))
    .await;
    let submit = |period: &'static str, unit: &'static str, v: f64| {
        let ingest = e.ingest.clone();
        async move {
            ingest
                .indicator_values(
                    "user:lan",
                    vec![panorama_core::IndicatorValueInput {
                        indicator: "hospital-beds".into(),
                        period: period.into(),
                        admin_unit: unit.into(),
                        value: v,
                        status: None,
                        note: None,
                    }],
                )
                .await
                .unwrap();
        }
    };
    submit("2024-04", "74", 28.0).await; // amber (93 %): not red
    e.ops.sync().await;
    assert!(e.alerts().await.is_empty());
    submit("2024-05", "74", 20.0).await; // red
    e.ops.sync().await;
    let a = e.alerts().await;
    assert_eq!(a.len(), 1);
    assert_eq!(a[0].indicator.as_deref(), Some("hospital-beds"));
    assert_eq!(a[0].key, "hospital-beds|74");
    // A revision of an older period changes nothing; the next month back on plan clears.
    submit("2024-04", "74", 10.0).await;
    e.ops.sync().await;
    assert_eq!(e.alerts().await.len(), 1);
    submit("2024-06", "74", 31.0).await;
    e.ops.sync().await;
    assert_eq!(e.alerts().await[0].status, AlertStatus::Resolved);
}

#[tokio::test]
async fn events_in_a_zone_and_report_counts_in_an_area() {
    let e = env(RulesConfig::default()).await;
    e.rule(json!({
        "id": "flooding-downtown", "name": "Camera thấy ngập ở trung tâm", "severity": "high",
        "scope": {"entity_types": ["Camera"]},
        "condition": {"kind": "in_zone", "attribute": "event", "equals": "flooding", "clear_after": "30m",
            "zone": {"type": "Polygon", "coordinates": [[[106.64, 10.96], [106.68, 10.96], [106.68, 11.0], [106.64, 11.0], [106.64, 10.96]]]}}
    }))
    .await;
    let ev = |cam: &'static str, time: &'static str, what: &'static str| {
        e.obs(cam, "event", time, Value::Text(what.into()))
    };
    ev(C2, "2024-05-01T00:00:00Z", "flooding").await; // outside the zone
    ev(C1, "2024-05-01T00:00:00Z", "fire").await; // another event
    assert!(e.alerts().await.is_empty());
    ev(C1, "2024-05-01T00:01:00Z", "flooding").await;
    ev(C1, "2024-05-01T00:10:00Z", "flooding").await;
    let a = e.alerts().await;
    assert_eq!((a.len(), a[0].occurrences), (1, 2));
    assert_eq!(a[0].location, Some([106.66, 10.98]));
    e.at("2024-05-01T00:39:59Z").await;
    assert_eq!(e.alerts().await[0].status, AlertStatus::Open);
    e.at("2024-05-01T00:40:00Z").await;
    assert_eq!(e.alerts().await[0].status, AlertStatus::Resolved);

    // Reports: 3 camera events of any kind in district 718 within an hour.
    e.rule(json!({
        "id": "busy-718", "name": "Nhiều sự kiện tại 718", "severity": "medium",
        "scope": {"admin_units": ["718"], "entity_types": ["Camera"]},
        "condition": {"kind": "count_in_area", "attribute": "event", "window": "1h", "at_least": 3}
    }))
    .await;
    ev(C1, "2024-05-01T01:00:00Z", "crowd").await;
    ev(C2, "2024-05-01T01:05:00Z", "crowd").await; // 724: not counted
    ev(C1, "2024-05-01T01:10:00Z", "crowd").await;
    assert!(e.alerts().await.iter().all(|a| a.rule != "busy-718"));
    ev(C1, "2024-05-01T01:20:00Z", "crowd").await;
    let busy = || async {
        e.alerts()
            .await
            .into_iter()
            .find(|a| a.rule == "busy-718")
            .unwrap()
    };
    assert_eq!(busy().await.status, AlertStatus::Open);
    assert_eq!(busy().await.admin_unit.as_deref(), Some("718"));
    e.at("2024-05-01T01:59:59Z").await;
    assert_eq!(busy().await.status, AlertStatus::Open);
    e.at("2024-05-01T02:00:00Z").await;
    assert_eq!(busy().await.status, AlertStatus::Resolved);
}

#[tokio::test]
async fn a_dry_run_shows_what_a_rule_would_have_fired() {
    let e = env(RulesConfig::default()).await;
    e.clock.set(t("2024-05-03T12:00:00Z"));
    // Two days of history for G1 with one episode above 2.5 for 20 minutes.
    let mut obs = Vec::new();
    let mut at = t("2024-05-01T00:00:00Z");
    while at < t("2024-05-03T00:00:00Z") {
        let high = at >= t("2024-05-02T10:00:00Z") && at < t("2024-05-02T10:25:00Z");
        obs.push(Observation {
            entity: G1.into(),
            attribute: "waterLevel".into(),
            time: at,
            value: Value::Number(if high { 2.8 } else { 1.5 }),
        });
        at += chrono::Duration::minutes(5);
    }
    e.ingest.observations("test", obs).await.unwrap();
    let run = e.ops.dry_run_json(water_rule(), 3).await.unwrap();
    assert_eq!(run.alerts.len(), 1, "{run:?}");
    let a = &run.alerts[0];
    assert_eq!(a.entity.as_deref(), Some(G1));
    assert_eq!(
        a.fired_at,
        t("2024-05-02T10:10:00Z"),
        "10 minutes after 10:00"
    );
    assert_eq!(a.cleared_at, Some(t("2024-05-02T10:25:00Z")));
    assert!(a.chart.as_deref().unwrap().contains("waterLevel"));
    assert_eq!(run.subjects, 3, "the three gauges in scope");
    assert!(e.alerts().await.is_empty(), "a dry-run opens nothing");
    // One day back (from noon on the 2nd) does not reach the episode.
    assert!(
        e.ops
            .dry_run_json(water_rule(), 1)
            .await
            .unwrap()
            .alerts
            .is_empty()
    );
    let err = e.ops.dry_run_json(water_rule(), 400).await.unwrap_err();
    assert!(matches!(err, OpsError::Invalid(i) if i.0[0].field == "days"));
    // A stored rule too.
    e.rule(water_rule()).await;
    assert_eq!(
        e.ops
            .dry_run_stored("river-high", 3)
            .await
            .unwrap()
            .alerts
            .len(),
        1
    );
}

fn sop() -> SopTemplate {
    SopTemplate {
        incident_type: "flood".into(),
        name: "Quy trình ứng phó ngập".into(),
        steps: vec![
            "Cảnh báo người dân".into(),
            "Điều động máy bơm".into(),
            "Chặn đường".into(),
            "Báo cáo".into(),
        ],
    }
}

#[tokio::test]
async fn a_rule_opens_an_incident_whose_sla_escalates_on_time() {
    let e = env(RulesConfig::default()).await;
    e.ops
        .put_sop(
            &admin(),
            "flood",
            panorama_rules::SopInput {
                incident_type: "flood".into(),
                name: sop().name,
                steps: sop().steps,
            },
        )
        .await
        .unwrap();
    let mut r = water_rule();
    r["severity"] = json!("critical");
    r["condition"]["for"] = json!("0s");
    r["incident"] = json!({"type": "flood", "agency": "bch-pctt"});
    e.rule(r).await;
    e.level(G1, "2024-05-01T00:00:00Z", 3.0).await;
    let page = e
        .ops
        .incidents(IncidentQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 1);
    let i = &page.items[0];
    assert_eq!(i.status, IncidentStatus::Assigned);
    assert_eq!(i.agency.as_deref(), Some("bch-pctt"));
    assert_eq!(i.checklist.len(), 4);
    assert_eq!(i.checklist[0].step, "Cảnh báo người dân");
    assert_eq!(i.alerts, [e.alerts().await[0].id]);
    assert_eq!(i.respond_by, Some(t("2024-05-01T00:15:00Z")));
    assert_eq!(i.resolve_by, Some(t("2024-05-01T04:00:00Z")));
    assert_eq!(i.created_by, "rule:river-high");
    let id = i.id;
    // A second gauge of the same district joins the same incident.
    e.level(G2, "2024-05-01T00:01:00Z", 3.0).await;
    let i = e.ops.incident(id).await.unwrap().incident;
    assert_eq!(i.alerts.len(), 2);
    // A gauge in another district opens its own.
    e.level(G3, "2024-05-01T00:01:00Z", 3.0).await;
    assert_eq!(
        e.ops
            .incidents(IncidentQuery {
                limit: 10,
                ..Default::default()
            })
            .await
            .unwrap()
            .items
            .len(),
        2
    );

    let level = |e: &Env| {
        let ops = e.ops.clone();
        async move { ops.incident(id).await.unwrap().incident.escalation_level }
    };
    e.at("2024-05-01T00:14:59Z").await;
    assert_eq!(level(&e).await, 0);
    e.at("2024-05-01T00:15:00Z").await;
    assert_eq!(level(&e).await, 1, "critical: respond within 15 minutes");
    // Level 1 (console: operators and admins) was told.
    let n = e
        .ops
        .notifications(&operator(), true, None, 50)
        .await
        .unwrap();
    assert!(
        n.items.iter().any(|n| n.event == "incident.escalated"
            && n.link.as_deref() == Some(&format!("/api/v1/incidents/{id}") as &str)),
        "{n:?}"
    );
    e.at("2024-05-01T00:29:59Z").await;
    assert_eq!(level(&e).await, 1);
    e.at("2024-05-01T00:30:00Z").await;
    assert_eq!(level(&e).await, 2, "still not handled 15 minutes later");
    let leader = Actor {
        name: "hung".into(),
        role: Role::Leader,
        agency: None,
    };
    let n = e.ops.notifications(&leader, true, None, 50).await.unwrap();
    let link = format!("/api/v1/incidents/{id}");
    assert_eq!(
        n.items
            .iter()
            .filter(|n| n.event == "incident.escalated" && n.link.as_deref() == Some(&link))
            .count(),
        1,
        "leaders from level 2"
    );
    // Handling starts: the resolve timer (4 h from creation) takes over.
    e.clock.set(t("2024-05-01T00:40:00Z"));
    e.ops
        .set_status(
            &operator(),
            id,
            panorama_rules::StatusChange {
                status: IncidentStatus::InProgress,
                comment: None,
                version: None,
            },
        )
        .await
        .unwrap();
    e.at("2024-05-01T03:59:59Z").await;
    assert_eq!(level(&e).await, 2);
    e.at("2024-05-01T04:00:00Z").await;
    assert_eq!(level(&e).await, 3);
    e.at("2024-05-02T00:00:00Z").await;
    assert_eq!(level(&e).await, 3, "three levels configured");
    let timeline = e.ops.incident(id).await.unwrap().timeline;
    let escalations: Vec<String> = timeline
        .iter()
        .filter(|x| x.kind == "escalated")
        .map(|x| {
            format!(
                "{} {}",
                x.at.format("%H:%M"),
                x.data["stage"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(
        escalations,
        ["00:15 respond", "00:30 respond", "04:00 resolve"]
    );
}

/// Requests a test receiver got: headers and body.
type Received = Arc<Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A local webhook receiver answering with the given statuses in turn.
async fn receiver(statuses: Vec<u16>) -> (String, Received) {
    use axum::routing::post;
    let got: Received = Arc::default();
    let queue = Arc::new(Mutex::new(statuses));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let g = g.clone();
                let q = queue.clone();
                async move {
                    g.lock().unwrap().push((headers, body.to_vec()));
                    let mut q = q.lock().unwrap();
                    let s = if q.is_empty() { 200 } else { q.remove(0) };
                    axum::http::StatusCode::from_u16(s).unwrap()
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn wait_for<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if f().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    panic!("timed out waiting for {what}");
}

const SECRET: &str = "0123456789abcdef-secret";

#[tokio::test]
async fn webhooks_are_signed_retried_with_back_off_and_logged() {
    let (url, got) = receiver(vec![503, 500, 200]).await;
    let config = RulesConfig {
        channels: vec![
            Channel::Webhook {
                id: "hook".into(),
                url,
                secret: Secret(SECRET.into()),
            },
            Channel::Webhook {
                id: "dead".into(),
                // Nothing listens on port 9 (discard) on the loopback.
                url: "http://127.0.0.1:9/hook".into(),
                secret: Secret(SECRET.into()),
            },
        ],
        ..RulesConfig::default()
    };
    let mut config = config;
    config.webhook.max_attempts = 3;
    let e = env(config).await;
    let mut r = water_rule();
    r["condition"]["for"] = json!("0s");
    r["notify"] = json!(["hook", "dead"]);
    e.rule(r).await;
    e.level(G1, "2024-05-01T00:00:00Z", 3.0).await;
    let log = |status: Option<DeliveryStatus>| {
        let ops = e.ops.clone();
        async move {
            ops.deliveries(
                &admin(),
                &DeliveryQuery {
                    status,
                    limit: 100,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items
        }
    };
    assert_eq!(log(None).await.len(), 2);
    // The first attempt runs at once (the worker is woken).
    let first = || async { got.lock().unwrap().len() == 1 };
    wait_for("the first attempt", first).await;
    wait_for("the attempts to be logged", || async {
        log(None).await.iter().all(|d| d.attempts == 1)
    })
    .await;
    let hook = log(None)
        .await
        .into_iter()
        .find(|d| d.channel == "hook")
        .unwrap();
    assert_eq!(hook.status, DeliveryStatus::Pending);
    assert_eq!(
        hook.next_attempt_at,
        Some(t("2024-05-01T00:00:05Z")),
        "5 s after the first failure"
    );
    // Not due before its time.
    e.clock.set(t("2024-05-01T00:00:04Z"));
    assert_eq!(e.ops.deliver_due().await.unwrap(), 0);
    e.clock.set(t("2024-05-01T00:00:05Z"));
    assert_eq!(e.ops.deliver_due().await.unwrap(), 2);
    let hook = log(None)
        .await
        .into_iter()
        .find(|d| d.channel == "hook")
        .unwrap();
    assert_eq!(
        hook.next_attempt_at,
        Some(t("2024-05-01T00:00:15Z")),
        "then 10 s"
    );
    e.clock.set(t("2024-05-01T00:00:15Z"));
    e.ops.deliver_due().await.unwrap();
    let all = log(None).await;
    let hook = all.iter().find(|d| d.channel == "hook").unwrap();
    let dead = all.iter().find(|d| d.channel == "dead").unwrap();
    assert_eq!((hook.status, hook.attempts), (DeliveryStatus::Delivered, 3));
    assert_eq!((dead.status, dead.attempts), (DeliveryStatus::Failed, 3));
    assert!(
        dead.last_error
            .as_deref()
            .unwrap()
            .contains("request failed")
    );
    let (_, attempts) = e.ops.delivery(&admin(), hook.id).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.ok, a.code))
            .collect::<Vec<_>>(),
        [
            (1, false, Some(503)),
            (2, false, Some(500)),
            (3, true, Some(200))
        ]
    );

    // Every request was signed; the signature covers timestamp and body.
    let got = got.lock().unwrap();
    assert_eq!(got.len(), 3);
    for (headers, body) in got.iter() {
        let h = |k: &str| headers.get(k).unwrap().to_str().unwrap().to_string();
        let ts: i64 = h("x-panorama-timestamp").parse().unwrap();
        assert!(panorama_rules::notify::verify(
            SECRET.as_bytes(),
            ts,
            body,
            &h("x-panorama-signature")
        ));
        assert!(!panorama_rules::notify::verify(
            b"wrong-secret-0123",
            ts,
            body,
            &h("x-panorama-signature")
        ));
        assert_eq!(h("x-panorama-event"), "alert.opened");
        assert_eq!(h("x-panorama-delivery"), hook.id.to_string());
        let msg: Json = serde_json::from_slice(body).unwrap();
        assert_eq!(msg["event"], "alert.opened");
        assert_eq!(msg["data"]["alert"]["entity"], G1);
        assert_eq!(
            msg["link"],
            format!("/api/v1/alerts/{}", msg["data"]["alert"]["id"])
        );
    }
}

/// A minimal SMTP server that accepts one message and keeps its text.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let g = got.clone();
    tokio::spawn(async move {
        loop {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let g = g.clone();
            tokio::spawn(async move {
                let (r, mut w) = sock.into_split();
                let mut lines = BufReader::new(r).lines();
                w.write_all(b"220 test ESMTP\r\n").await.unwrap();
                let mut data = None::<String>;
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(d) = &mut data {
                        if line == "." {
                            g.lock().unwrap().push(std::mem::take(d));
                            data = None;
                            w.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        } else {
                            d.push_str(&line);
                            d.push('\n');
                        }
                        continue;
                    }
                    let cmd = line.to_ascii_uppercase();
                    let reply: &[u8] = if cmd.starts_with("EHLO") {
                        b"250-test\r\n250 8BITMIME\r\n"
                    } else if cmd.starts_with("DATA") {
                        data = Some(String::new());
                        b"354 go ahead\r\n"
                    } else if cmd.starts_with("QUIT") {
                        w.write_all(b"221 bye\r\n").await.unwrap();
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    w.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, got)
}

#[tokio::test]
async fn e_mail_goes_through_the_configured_smtp_server() {
    let (port, got) = smtp_server().await;
    let config = RulesConfig {
        smtp: Some(panorama_rules::SmtpConfig {
            host: "127.0.0.1".into(),
            port,
            tls: panorama_rules::SmtpTls::None,
            username: None,
            password: None,
            from: "IOC Bình Dương <ioc@example.org>".into(),
            timeout: Dur(5),
        }),
        channels: vec![Channel::Email {
            id: "duty-mail".into(),
            to: vec!["truc-ban@example.org".into()],
        }],
        ..RulesConfig::default()
    };
    let e = env(config).await;
    let mut r = water_rule();
    r["condition"]["for"] = json!("0s");
    r["notify"] = json!(["duty-mail"]);
    e.rule(r).await;
    e.level(G1, "2024-05-01T00:00:00Z", 3.0).await;
    wait_for("the e-mail", || async { !got.lock().unwrap().is_empty() }).await;
    wait_for("the log", || async {
        e.ops
            .deliveries(
                &admin(),
                &DeliveryQuery {
                    status: Some(DeliveryStatus::Delivered),
                    limit: 10,
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .items
            .len()
            == 1
    })
    .await;
    let mail = got.lock().unwrap()[0].clone();
    assert!(mail.contains("To: truc-ban@example.org"), "{mail}");
    assert!(mail.contains("Subject: "), "{mail}");
    assert!(mail.contains("alert.opened"), "{mail}");
    let d = &e
        .ops
        .deliveries(
            &admin(),
            &DeliveryQuery {
                limit: 10,
                ..Default::default()
            },
        )
        .await
        .unwrap()
        .items[0];
    let (_, attempts) = e.ops.delivery(&admin(), d.id).await.unwrap();
    assert_eq!(attempts[0].code, Some(250));
}

#[tokio::test]
async fn rules_from_files_load_and_are_read_only_through_the_api() {
    let rules_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        rules_dir.path().join("flood.toml"),
        r#"
[[rule]]
id = "river-high"
name = "Mực nước cao"
severity = "high"
scope = { domains = ["water"] }
condition = { kind = "threshold", attribute = "waterLevel", above = 2.5 }

[[sop]]
incident_type = "flood"
name = "Ngập"
steps = ["Cảnh báo", "Bơm"]
"#,
    )
    .unwrap();
    let config = RulesConfig {
        dir: Some(rules_dir.path().to_path_buf()),
        ..RulesConfig::default()
    };
    // The data dir needs the domain before the file can refer to it; the
    // seed domains include "water".
    let e = env(config.clone()).await;
    let r = e.ops.rule("river-high").await.unwrap();
    assert_eq!(r.origin, "file:flood.toml");
    assert_eq!(e.ops.sops().await.unwrap().len(), 1);
    let err = e
        .ops
        .replace_rule(&admin(), "river-high", water_rule())
        .await
        .unwrap_err();
    assert!(
        matches!(&err, OpsError::Conflict(m) if m.contains("flood.toml")),
        "{err:?}"
    );
    assert!(matches!(
        e.ops.delete_rule(&admin(), "river-high").await,
        Err(OpsError::Conflict(_))
    ));
    e.level(G1, "2024-05-01T00:00:00Z", 3.0).await;
    assert_eq!(e.alerts().await.len(), 1, "file rules run");
    let (dir, clock) = e.stop().await;

    // A bad file stops the start with the file and field named.
    std::fs::write(
        rules_dir.path().join("bad.toml"),
        "[[rule]]\nid = \"x\"\nname = \"X\"\nseverity = \"high\"\ncondition = { kind = \"threshold\", attribute = \"a\", above = 1, clear = 9 }\n",
    )
    .unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let err = Ops::start(
        store.clone(),
        EventBus::new(16),
        clock.clone(),
        quiet(config.clone()),
    )
    .await
    .unwrap_err();
    match err {
        OpsError::Invalid(i) => assert_eq!(i.0[0].field, "bad.toml.rule[0].condition.clear"),
        other => panic!("{other:?}"),
    }
    store.close().await.unwrap();
    // Removing a rule from its file deletes it (and resolves its alerts).
    std::fs::remove_file(rules_dir.path().join("bad.toml")).unwrap();
    std::fs::write(rules_dir.path().join("flood.toml"), "").unwrap();
    let e = start_in(dir, clock, config).await;
    assert!(matches!(
        e.ops.rule("river-high").await,
        Err(OpsError::NotFound(_))
    ));
    assert_eq!(e.alerts().await[0].status, AlertStatus::Resolved);
    e.stop().await;
}

#[tokio::test]
async fn rule_references_are_checked_and_named() {
    let e = env(RulesConfig::default()).await;
    let mut r = water_rule();
    r["scope"]["domains"] = json!(["water", "nope"]);
    r["scope"]["admin_units"] = json!(["999"]);
    r["notify"] = json!(["no-such-channel"]);
    r["incident"] = json!({"type": "flood", "agency": "so-nope"});
    let err = e.ops.create_rule(&admin(), r).await.unwrap_err();
    let OpsError::Invalid(i) = err else { panic!() };
    let mut fields: Vec<String> = i.0.into_iter().map(|f| f.field).collect();
    fields.sort();
    assert_eq!(
        fields,
        [
            "incident.agency",
            "notify[0]",
            "scope.admin_units[0]",
            "scope.domains[1]"
        ]
    );
    assert!(matches!(
        e.ops.create_rule(&operator(), water_rule()).await,
        Err(OpsError::Forbidden(_))
    ));
    e.rule(water_rule()).await;
    assert!(matches!(
        e.ops.create_rule(&admin(), water_rule()).await,
        Err(OpsError::Conflict(_))
    ));
    // Disabling a rule resolves its open alerts.
    let mut r = water_rule();
    r["condition"]["for"] = json!("0s");
    e.ops
        .replace_rule(&admin(), "river-high", r.clone())
        .await
        .unwrap();
    e.ops.sync().await;
    e.level(G1, "2024-05-01T00:00:00Z", 3.0).await;
    assert_eq!(e.alerts().await[0].status, AlertStatus::Open);
    r["enabled"] = json!(false);
    let v = e.ops.replace_rule(&admin(), "river-high", r).await.unwrap();
    assert_eq!(v.version, 3);
    assert_eq!(e.alerts().await[0].status, AlertStatus::Resolved);
    let _ = e.clock.now();
}

#[tokio::test]
async fn another_rule_changing_keeps_the_state_of_the_others() {
    let e = env(RulesConfig::default()).await;
    e.rule(water_rule()).await;
    e.level(G1, "2024-05-01T00:00:00Z", 2.6).await;
    // A new rule reloads the engine; the pending 10 minutes of G1 survive.
    e.rule(json!({
        "id": "aqi-bad", "name": "AQI xấu", "severity": "low",
        "condition": {"kind": "threshold", "attribute": "aqi", "above": 200}
    }))
    .await;
    e.level(G1, "2024-05-01T00:10:00Z", 2.7).await;
    assert_eq!(e.alerts().await.len(), 1);
    // Changing the rule itself starts it afresh: the open alert stays open
    // (its condition is taken as still holding) and clears as usual.
    let mut changed = water_rule();
    changed["condition"]["above"] = json!(2.55);
    e.ops
        .replace_rule(&admin(), "river-high", changed)
        .await
        .unwrap();
    e.ops.sync().await;
    e.level(G1, "2024-05-01T00:11:00Z", 2.6).await;
    assert_eq!(e.alerts().await.len(), 1);
    e.level(G1, "2024-05-01T00:12:00Z", 2.0).await;
    assert_eq!(e.alerts().await[0].status, AlertStatus::Resolved);
}

#[tokio::test]
async fn a_rule_added_later_averages_only_what_came_after_it() {
    // Window rules of one series share their window while their states
    // started together; a rule added later must start with its own.
    let e = env(RulesConfig::default()).await;
    let avg = |id: &str, min_count: u32| {
        json!({
            "id": id, "name": id, "severity": "medium",
            "scope": {"entity_types": ["AirQualityObserved"]},
            "condition": {"kind": "aggregate", "attribute": "aqi", "agg": "avg", "window": "1h", "above": 150, "min_count": min_count}
        })
    };
    e.rule(avg("aqi-1", 1)).await;
    let aqi = |time: &'static str, v: f64| e.obs(A1, "aqi", time, Value::Number(v));
    aqi("2024-05-01T00:00:00Z", 200.0).await;
    aqi("2024-05-01T00:10:00Z", 200.0).await;
    let by_rule = |a: &[Alert], rule: &str| a.iter().filter(|x| x.rule == rule).count();
    assert_eq!(by_rule(&e.alerts().await, "aqi-1"), 1);
    e.rule(avg("aqi-3", 3)).await;
    aqi("2024-05-01T00:20:00Z", 200.0).await;
    assert_eq!(
        by_rule(&e.alerts().await, "aqi-3"),
        0,
        "aqi-3 has seen one value, not the three aqi-1 holds"
    );
    // A value older than the newest (00:20) is late for both rules: it
    // fills their windows (aqi-3 now holds two values) but moves no state.
    aqi("2024-05-01T00:15:00Z", 200.0).await;
    assert_eq!(by_rule(&e.alerts().await, "aqi-3"), 0);
    aqi("2024-05-01T00:30:00Z", 200.0).await;
    let a = e.alerts().await;
    let opened: Vec<_> = a.iter().filter(|x| x.rule == "aqi-3").collect();
    assert_eq!(opened.len(), 1, "three values since aqi-3 was added: {a:?}");
    assert_eq!(opened[0].fired_at, t("2024-05-01T00:30:00Z"));
    assert_eq!(
        by_rule(&a, "aqi-1"),
        1,
        "aqi-1 stays open, not opened twice"
    );
}
