//! The temporal API over a real embedded store: history read back from the
//! time series (compared with the series API), lastN, temporalValues,
//! aggregations computed by hand from the posted data, appends, and every
//! bad parameter with the field it names.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use panorama_core::{ManualClock, Observation, Value as PValue};
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_ngsild::{NgsiConfig, NgsiState};
use panorama_store::{SeriesData, SeriesQuery, SharedStore};
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

mod common;
use common::{TOKEN, TestGate};

struct Api {
    app: axum::Router,
    ingest: Ingest,
    store: SharedStore,
    _dir: tempfile::TempDir,
}

fn t(s: &str) -> panorama_core::Timestamp {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

const E: &str = "urn:ngsi-ld:AirQualitySensor:td1-020";

/// (time, value) posted as observations of `E`'s `pm25`.
const DATA: &[(&str, f64)] = &[
    ("2026-03-01T00:10:00Z", 10.0),
    ("2026-03-01T00:20:00Z", 20.0),
    ("2026-03-01T00:50:00Z", 20.0),
    ("2026-03-01T01:05:00Z", 5.0),
    ("2026-03-01T01:40:00Z", 7.0),
    ("2026-03-01T02:30:00Z", 40.0),
];

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(t("2026-03-01T08:00:00Z")));
    let ingest = Ingest::new(
        store.clone(),
        EventBus::new(64),
        clock.clone(),
        IngestOptions::default(),
    );
    let state = NgsiState::new(
        ingest.clone(),
        clock,
        Arc::new(TestGate),
        NgsiConfig::default(),
    );
    let a = Api {
        app: panorama_ngsild::router(state),
        ingest,
        store,
        _dir: dir,
    };
    let r = a
        .call(
            "POST",
            "/entities",
            Some(&json!({
                "id": E, "type": "AirQualitySensor",
                "pm25": {"type": "Property", "value": 1.0, "observedAt": "2026-02-28T00:00:00Z"},
                "owner": {"type": "Relationship", "object": "urn:ngsi-ld:Agency:env"}
            })),
        )
        .await;
    assert_eq!(r.0, StatusCode::CREATED, "{:?}", r.1);
    let obs = DATA
        .iter()
        .map(|(time, v)| Observation {
            entity: E.into(),
            attribute: "pm25".into(),
            time: t(time),
            value: PValue::Number(*v),
        })
        .collect();
    a.ingest.observations("test", obs).await.unwrap();
    a
}

impl Api {
    async fn call(&self, method: &str, uri: &str, body: Option<&Value>) -> (StatusCode, Value) {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", TOKEN);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        let req = req
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        (status, body)
    }
    async fn get(&self, uri: &str) -> Value {
        let (s, b) = self.call("GET", uri, None).await;
        assert_eq!(s, StatusCode::OK, "{uri}: {b:?}");
        b
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_matches_the_series_api() {
    let a = api().await;
    let from = "2026-03-01T00:15:00Z";
    let to = "2026-03-01T02:00:00Z";
    let b = a
        .get(&format!(
            "/temporal/entities/{E}?timerel=between&timeAt={from}&endTimeAt={to}"
        ))
        .await;
    assert_eq!(b["id"], E);
    assert_eq!(b["type"], "AirQualitySensor");
    let got: Vec<(String, f64)> = b["pm25"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            assert_eq!(i["type"], "Property");
            (
                i["observedAt"].as_str().unwrap().to_string(),
                i["value"].as_f64().unwrap(),
            )
        })
        .collect();
    let SeriesData::Raw(raw) = a
        .store
        .series(&SeriesQuery {
            entity: E.into(),
            attribute: "pm25".into(),
            from: t(from),
            to: t(to),
            bucket: None,
            limit: 1000,
        })
        .await
        .unwrap()
    else {
        panic!("raw points expected")
    };
    let want: Vec<(String, f64)> = raw
        .iter()
        .map(|p| {
            let PValue::Number(n) = p.value else { panic!() };
            (panorama_ngsild::time_text(p.time), n)
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(
        got,
        vec![
            ("2026-03-01T00:20:00Z".to_string(), 20.0),
            ("2026-03-01T00:50:00Z".to_string(), 20.0),
            ("2026-03-01T01:05:00Z".to_string(), 5.0),
            ("2026-03-01T01:40:00Z".to_string(), 7.0),
        ]
    );

    // before / after; the value given at creation is history too.
    let b = a
        .get(&format!(
            "/temporal/entities/{E}?timerel=before&timeAt=2026-03-01T00:15:00Z"
        ))
        .await;
    let vals: Vec<f64> = b["pm25"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(vals, vec![1.0, 10.0]);
    let b = a
        .get(&format!(
            "/temporal/entities/{E}?timerel=after&timeAt=2026-03-01T01:40:00Z"
        ))
        .await;
    let vals: Vec<f64> = b["pm25"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(vals, vec![40.0], "after is strictly after timeAt");

    // lastN keeps the newest.
    let b = a.get(&format!("/temporal/entities/{E}?lastN=2")).await;
    let vals: Vec<f64> = b["pm25"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(vals, vec![7.0, 40.0]);

    // temporalValues.
    let b = a
        .get(&format!(
            "/temporal/entities/{E}?options=temporalValues&timerel=after&timeAt=2026-03-01T01:00:00Z"
        ))
        .await;
    assert_eq!(
        b["pm25"],
        json!({"type": "Property", "values": [
            [5.0, "2026-03-01T01:05:00Z"], [7.0, "2026-03-01T01:40:00Z"], [40.0, "2026-03-01T02:30:00Z"]
        ]})
    );

    // The temporal query finds it by type, with a count.
    let (s, b) = a
        .call(
            "GET",
            "/temporal/entities?type=AirQualitySensor&timerel=after&timeAt=2026-03-01T02:00:00Z&attrs=pm25",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{b:?}");
    assert_eq!(b.as_array().unwrap().len(), 1);
    assert_eq!(b[0]["pm25"][0]["value"], 40.0);
    let b = a
        .get("/temporal/entities?type=Building&timerel=after&timeAt=2026-03-01T02:00:00Z")
        .await;
    assert_eq!(b, json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregations_per_period_are_computed_from_the_data() {
    let a = api().await;
    let b = a
        .get(&format!(
            "/temporal/entities/{E}?options=aggregatedValues\
             &aggrMethods=totalCount,distinctCount,sum,avg,min,max,stddev,sumsq\
             &aggrPeriodDuration=PT1H&timerel=between\
             &timeAt=2026-03-01T00:00:00Z&endTimeAt=2026-03-01T03:00:00Z"
        ))
        .await;
    let p = &b["pm25"];
    assert_eq!(p["type"], "Property");
    // Hour 0: 10, 20, 20. Hour 1: 5, 7. Hour 2: 40.
    let hours = [
        (
            "2026-03-01T00:00:00Z",
            "2026-03-01T01:00:00Z",
            vec![10.0, 20.0, 20.0],
        ),
        (
            "2026-03-01T01:00:00Z",
            "2026-03-01T02:00:00Z",
            vec![5.0, 7.0],
        ),
        ("2026-03-01T02:00:00Z", "2026-03-01T03:00:00Z", vec![40.0]),
    ];
    for (i, (s, e, v)) in hours.iter().enumerate() {
        let n = v.len() as f64;
        let sum: f64 = v.iter().sum();
        let mean = sum / n;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
        let mut distinct = v.clone();
        distinct.dedup();
        let check = |m: &str, want: f64| {
            let got = &p[m][i];
            assert_eq!(got[1], *s, "{m}");
            assert_eq!(got[2], *e, "{m}");
            let g = got[0].as_f64().unwrap();
            assert!((g - want).abs() < 1e-9, "{m} hour {i}: {g} != {want}");
        };
        check("totalCount", n);
        check("distinctCount", distinct.len() as f64);
        check("sum", sum);
        check("avg", mean);
        check("min", v.iter().copied().fold(f64::INFINITY, f64::min));
        check("max", v.iter().copied().fold(f64::NEG_INFINITY, f64::max));
        check("stddev", sd);
        check("sumsq", v.iter().map(|x| x * x).sum());
    }
    assert_eq!(p["sum"].as_array().unwrap().len(), 3);

    // Without a period: one aggregate over the whole range.
    let b = a
        .get(&format!(
            "/temporal/entities/{E}?options=aggregatedValues&aggrMethods=sum,totalCount\
             &timerel=between&timeAt=2026-03-01T00:00:00Z&endTimeAt=2026-03-01T03:00:00Z"
        ))
        .await;
    assert_eq!(
        b["pm25"]["sum"],
        json!([[102.0, "2026-03-01T00:00:00Z", "2026-03-01T03:00:00Z"]])
    );
    assert_eq!(b["pm25"]["totalCount"][0][0], 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appended_instances_become_history() {
    let a = api().await;
    let (s, b) = a
        .call(
            "POST",
            &format!("/temporal/entities/{E}/attrs"),
            Some(&json!({"pm25": [
                {"type": "Property", "value": 50.0, "observedAt": "2026-03-01T05:00:00Z"},
                {"type": "Property", "value": 55.0, "observedAt": "2026-03-01T05:30:00Z"}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b:?}");
    let (s, b) = a
        .call(
            "POST",
            "/temporal/entities",
            Some(&json!({"id": E, "type": "AirQualitySensor", "pm25": [
                {"type": "Property", "value": 60.0, "observedAt": "2026-03-01T06:00:00Z"}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b:?}");
    let b = a
        .get(&format!(
            "/temporal/entities/{E}?timerel=after&timeAt=2026-03-01T04:00:00Z"
        ))
        .await;
    let vals: Vec<f64> = b["pm25"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    assert_eq!(vals, vec![50.0, 55.0, 60.0]);
    // The plain entity shows the newest value.
    let (_, b) = a.call("GET", &format!("/entities/{E}"), None).await;
    assert_eq!(b["pm25"]["value"], 60.0);

    // A new entity from its temporal representation: created with the
    // newest instance, the older ones are its history.
    let n = "urn:ngsi-ld:AirQualitySensor:td1-021";
    let (s, b) = a
        .call(
            "POST",
            "/temporal/entities",
            Some(&json!({"id": n, "type": "AirQualitySensor", "pm25": [
                {"type": "Property", "value": 3.0, "observedAt": "2026-03-01T07:00:00Z"},
                {"type": "Property", "value": 2.0, "observedAt": "2026-03-01T06:00:00Z"}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b:?}");
    let b = a.get(&format!("/temporal/entities/{n}")).await;
    let vals: Vec<(f64, String)> = b["pm25"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["value"].as_f64().unwrap(),
                i["observedAt"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        vals,
        vec![
            (2.0, "2026-03-01T06:00:00Z".to_string()),
            (3.0, "2026-03-01T07:00:00Z".to_string())
        ]
    );
    let (_, b) = a.call("GET", &format!("/entities/{n}"), None).await;
    assert_eq!(b["pm25"]["value"], 3.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_temporal_requests_name_the_field() {
    let a = api().await;
    let base = format!("/temporal/entities/{E}");
    let cases = [
        ("?timerel=between&timeAt=2026-03-01T00:00:00Z", "endTimeAt"),
        (
            "?timerel=between&timeAt=2026-03-01T02:00:00Z&endTimeAt=2026-03-01T01:00:00Z",
            "endTimeAt",
        ),
        ("?timerel=sideways&timeAt=2026-03-01T00:00:00Z", "timerel"),
        ("?timerel=after", "timeAt"),
        ("?timerel=after&timeAt=yesterday", "timeAt"),
        ("?timeAt=2026-03-01T00:00:00Z", "timerel"),
        ("?lastN=0", "lastN"),
        ("?lastN=many", "lastN"),
        ("?options=aggregatedValues", "aggrMethods"),
        (
            "?options=aggregatedValues&aggrMethods=median",
            "aggrMethods",
        ),
        (
            "?options=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=P1M",
            "aggrPeriodDuration",
        ),
        (
            "?options=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=1h",
            "aggrPeriodDuration",
        ),
        (
            "?options=aggregatedValues&aggrMethods=sum&aggrPeriodDuration=PT",
            "aggrPeriodDuration",
        ),
        ("?aggrMethods=sum", "aggrMethods"),
        ("?options=fancy", "options"),
        ("?timeproperty=seenAt", "timeproperty"),
        ("?attrs=bad%20name", "attrs"),
    ];
    for (q, field) in cases {
        let (s, b) = a.call("GET", &format!("{base}{q}"), None).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{q}: {b:?}");
        assert_eq!(b["field"], field, "{q}: {b:?}");
    }
    let (s, b) = a.call("GET", &format!("{base}?colour=red"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b:?}");
    assert_eq!(b["field"], "colour");
    let (s, _) = a
        .call("GET", &format!("{base}?timeproperty=modifiedAt"), None)
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, b) = a
        .call("GET", "/temporal/entities?type=AirQualitySensor", None)
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["field"], "timerel");
    let (s, b) = a
        .call(
            "GET",
            "/temporal/entities?timerel=after&timeAt=2026-03-01T00:00:00Z",
            None,
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["field"], "type");
    let (s, b) = a
        .call("GET", "/temporal/entities/urn:ngsi-ld:X:none", None)
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{b:?}");
    let (s, _) = a.call("DELETE", &base, None).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);

    // Appends.
    let post = |body: Value| {
        let a = &a;
        let uri = format!("{base}/attrs");
        async move { a.call("POST", &uri, Some(&body)).await }
    };
    let (s, b) = post(json!({"pm25": [{"type": "Property", "value": 1.0}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_eq!(b["field"], "pm25[0].observedAt");
    let (s, b) =
        post(json!({"pm25": [{"type": "Property", "value": 1.0, "observedAt": "noon"}]})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b:?}");
    let (s, b) = post(json!({"noise": [{"type": "Property", "value": 1.0, "observedAt": "2026-03-01T06:00:00Z"}]})).await;
    // An attribute the entity lacks is added to it, not refused.
    assert_eq!(s, StatusCode::NO_CONTENT, "{b:?}");
    let (_, e) = a.call("GET", &format!("/entities/{E}"), None).await;
    assert_eq!(e["noise"]["value"], 1.0, "{e:?}");
    let (s, _) = post(json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = a
        .call(
            "POST",
            "/temporal/entities/urn:ngsi-ld:X:none/attrs",
            Some(&json!({"pm25": [{"type": "Property", "value": 1.0, "observedAt": "2026-03-01T06:00:00Z"}]})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    // None of the refused appends left a value behind.
    let b = a
        .get(&format!("{base}?timerel=after&timeAt=2026-03-01T03:00:00Z"))
        .await;
    assert!(b.get("pm25").is_none(), "{b:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn temporal_writes_add_attributes_the_entity_lacks() {
    let a = api().await;
    let n = "urn:ngsi-ld:AirQualitySensor:td-new-attr";
    let (s, b) = a
        .call(
            "POST",
            "/temporal/entities",
            Some(&json!({"id": n, "type": "AirQualitySensor", "pm25": [
                {"type": "Property", "value": 3.0, "observedAt": "2026-03-01T07:00:00Z"}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{b:?}");
    // A second temporal create with an attribute the entity does not have:
    // the attribute is added (newest value) and its instances are history.
    let (s, b) = a
        .call(
            "POST",
            "/temporal/entities",
            Some(&json!({"id": n, "type": "AirQualitySensor", "no2": [
                {"type": "Property", "value": 20.0, "observedAt": "2026-03-01T06:00:00Z"},
                {"type": "Property", "value": 21.0, "observedAt": "2026-03-01T07:00:00Z"},
                {"type": "Property", "value": 19.0, "observedAt": "2026-03-01T05:00:00Z"}
            ]})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b:?}");
    let (_, e) = a.call("GET", &format!("/entities/{n}"), None).await;
    assert_eq!(e["no2"]["value"], 21.0, "{e:?}");
    assert_eq!(e["pm25"]["value"], 3.0);
    let b = a.get(&format!("/temporal/entities/{n}")).await;
    let vals: Vec<f64> = b["no2"]
        .as_array()
        .unwrap_or_else(|| panic!("{b:?}"))
        .iter()
        .map(|i| i["value"].as_f64().unwrap())
        .collect();
    // Each instance once, oldest first (the newest is not written twice).
    assert_eq!(vals, vec![19.0, 20.0, 21.0]);

    // Appending to the temporal attributes works the same way.
    let (s, b) = a
        .call(
            "POST",
            &format!("/temporal/entities/{n}/attrs"),
            Some(&json!({"o3": {"type": "Property", "value": 7.0, "observedAt": "2026-03-01T07:30:00Z"}})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{b:?}");
    let b = a.get(&format!("/temporal/entities/{n}?attrs=o3")).await;
    assert_eq!(b["o3"].as_array().map(Vec::len), Some(1), "{b:?}");

    // A bad instance still fails and adds nothing.
    let (s, b) = a
        .call(
            "POST",
            &format!("/temporal/entities/{n}/attrs"),
            Some(&json!({"so2": {"type": "Property", "value": 1.0}})),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{b:?}");
    let (_, e) = a.call("GET", &format!("/entities/{n}"), None).await;
    assert!(e.get("so2").is_none(), "{e:?}");
}
