//! Subscriptions over a real embedded store, with a local HTTP receiver
//! that records every notification: CRUD, bad documents, notifications on
//! NGSI-LD writes and on observations, watched attributes, q, throttling,
//! expiry with a controllable clock, failed deliveries.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use panorama_core::{ManualClock, Observation, Value as PValue};
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_ngsild::{NgsiConfig, NgsiState};
use panorama_store::SharedStore;
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tower::ServiceExt;

mod common;
use common::{TOKEN, TestGate};

const JSON: &str = "application/json";

struct Api {
    app: axum::Router,
    ingest: Ingest,
    clock: Arc<ManualClock>,
    _store: SharedStore,
    _dir: tempfile::TempDir,
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

fn t0() -> panorama_core::Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z")
        .unwrap()
        .to_utc()
}

async fn api() -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(t0()));
    let ingest = Ingest::new(
        store.clone(),
        EventBus::new(64),
        clock.clone(),
        IngestOptions::default(),
    );
    let state = NgsiState::new(
        ingest.clone(),
        clock.clone(),
        Arc::new(TestGate),
        NgsiConfig::default(),
    );
    Api {
        app: panorama_ngsild::router(state),
        ingest,
        clock,
        _store: store,
        _dir: dir,
    }
}

impl Api {
    async fn call(&self, method: &str, uri: &str, body: Option<&Value>) -> Resp {
        let mut req = Request::builder()
            .method(method)
            .uri(uri)
            .header("authorization", TOKEN);
        if body.is_some() {
            req = req.header("content-type", JSON);
        }
        let req = req
            .body(Body::from(body.map(|b| b.to_string()).unwrap_or_default()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap()
        };
        Resp {
            status,
            headers,
            body,
        }
    }
}

/// A notification as the receiver saw it.
#[derive(Debug)]
struct Got {
    headers: HeaderMap,
    body: Value,
}

/// A local HTTP endpoint recording notifications; answers 500 to the
/// first `fail` requests.
struct Receiver {
    url: String,
    rx: mpsc::UnboundedReceiver<Got>,
    hits: Arc<AtomicUsize>,
}

async fn receiver(fail: usize) -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let hits = Arc::new(AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().route(
        "/notify",
        axum::routing::post(move |headers: HeaderMap, body: String| {
            let tx = tx.clone();
            let h = h.clone();
            async move {
                let n = h.fetch_add(1, Ordering::SeqCst);
                if n < fail {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                tx.send(Got {
                    headers,
                    body: serde_json::from_str(&body).unwrap(),
                })
                .unwrap();
                StatusCode::NO_CONTENT
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver {
        url: format!("http://{addr}/notify"),
        rx,
        hits,
    }
}

impl Receiver {
    #[track_caller]
    fn next(&mut self) -> impl std::future::Future<Output = Got> + '_ {
        let at = std::panic::Location::caller();
        async move {
            tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
                .await
                .unwrap_or_else(|_| panic!("no notification within 10 s (awaited at {at})"))
                .unwrap()
        }
    }
    async fn quiet(&mut self) {
        let r = tokio::time::timeout(Duration::from_millis(600), self.rx.recv()).await;
        assert!(r.is_err(), "unexpected notification: {r:?}");
    }
}

fn sensor(id: &str, temperature: f64) -> Value {
    json!({
        "id": id,
        "type": "AirQualitySensor",
        "temperature": {"type": "Property", "value": temperature},
        "humidity": {"type": "Property", "value": 60},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.65, 10.98]}}
    })
}

fn subscription(url: &str) -> Value {
    json!({
        "type": "Subscription",
        "entities": [{"type": "AirQualitySensor"}],
        "watchedAttributes": ["temperature"],
        "notification": {
            "endpoint": {"uri": url, "accept": "application/json",
                         "receiverInfo": [{"key": "X-Tenant", "value": "binh-duong"}]}
        }
    })
}

async fn subscribe(a: &Api, body: &Value) -> String {
    let r = a.call("POST", "/subscriptions", Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let loc = r.headers["location"].to_str().unwrap();
    loc.strip_prefix("/ngsi-ld/v1/subscriptions/")
        .unwrap()
        .to_string()
}

async fn set_temperature(a: &Api, id: &str, v: f64) {
    let r = a
        .call(
            "PATCH",
            &format!("/entities/{id}/attrs"),
            Some(&json!({"temperature": {"type": "Property", "value": v}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_retrieve_query_update_delete() {
    let a = api().await;
    let mut body = subscription("http://127.0.0.1:9/notify");
    body["id"] = json!("urn:ngsi-ld:Subscription:s1");
    body["q"] = json!("temperature>30");
    let id = subscribe(&a, &body).await;
    assert_eq!(id, "urn:ngsi-ld:Subscription:s1");
    // The same id again is a conflict.
    let r = a.call("POST", "/subscriptions", Some(&body)).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(
        r.body["type"],
        "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"
    );
    let generated = subscribe(&a, &subscription("http://127.0.0.1:9/n")).await;
    assert!(generated.starts_with("urn:ngsi-ld:Subscription:"));

    let r = a.call("GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["id"], id);
    assert_eq!(r.body["type"], "Subscription");
    assert_eq!(r.body["status"], "active");
    assert!(r.body.get("isActive").is_none(), "no defaults added");
    assert_eq!(r.body["q"], "temperature>30");
    assert_eq!(r.body["watchedAttributes"], json!(["temperature"]));
    assert_eq!(r.body["notification"]["timesSent"], 0);
    assert!(r.body["notification"].get("format").is_none());
    assert_eq!(
        r.body["notification"]["endpoint"]["receiverInfo"][0]["key"],
        "X-Tenant"
    );

    let r = a
        .call("GET", "/subscriptions?count=true&limit=1", None)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["ngsild-results-count"], "2");
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = a.call("GET", "/subscriptions?offset=1", None).await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    let r = a.call("GET", "/subscriptions?limit=x", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "limit");

    let r = a
        .call(
            "PATCH",
            &format!("/subscriptions/{id}"),
            Some(&json!({"isActive": false, "q": "temperature>35"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = a.call("GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(r.body["status"], "paused");
    assert_eq!(r.body["q"], "temperature>35");
    // A bad fragment is refused and changes nothing.
    let r = a
        .call(
            "PATCH",
            &format!("/subscriptions/{id}"),
            Some(&json!({"throttling": -1})),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.body["field"], "throttling");
    let r = a.call("GET", &format!("/subscriptions/{id}"), None).await;
    assert!(r.body.get("throttling").is_none());

    let r = a
        .call("DELETE", &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = a.call("GET", &format!("/subscriptions/{id}"), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(
        r.body["type"],
        "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    );
    let r = a
        .call("DELETE", &format!("/subscriptions/{id}"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = a
        .call(
            "PATCH",
            &format!("/subscriptions/{id}"),
            Some(&json!({"q": "a>1"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_subscriptions_name_the_field() {
    let a = api().await;
    let good = subscription("http://127.0.0.1:9/n");
    let with = |path: &[&str], v: Value| {
        let mut b = good.clone();
        let mut at = &mut b;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        b
    };
    let without = |k: &str| {
        let mut b = good.clone();
        b.as_object_mut().unwrap().remove(k);
        b
    };
    let mut no_entities = without("entities");
    no_entities
        .as_object_mut()
        .unwrap()
        .remove("watchedAttributes");
    let cases: Vec<(Value, &str)> = vec![
        (without("type"), "type"),
        (with(&["type"], json!("Entity")), "type"),
        (without("notification"), "notification"),
        (no_entities, "entities"),
        (with(&["entities"], json!([])), "entities"),
        (
            with(&["entities"], json!([{"id": "urn:ngsi-ld:X:1"}])),
            "entities[0].type",
        ),
        (
            with(&["entities"], json!([{"type": "T", "idPattern": "("}])),
            "entities[0].idPattern",
        ),
        (
            with(&["entities"], json!([{"type": "T", "id": "not a uri"}])),
            "entities[0].id",
        ),
        (with(&["watchedAttributes"], json!([])), "watchedAttributes"),
        (
            with(&["watchedAttributes"], json!("temperature")),
            "watchedAttributes",
        ),
        (with(&["q"], json!("((temperature>1")), "q"),
        (
            with(
                &["geoQ"],
                json!({"georel": "near;maxDistance==10", "geometry": "Point"}),
            ),
            "geoQ.coordinates",
        ),
        (
            with(
                &["geoQ"],
                json!({"georel": "sideways", "geometry": "Point", "coordinates": [1, 2]}),
            ),
            "geoQ.georel",
        ),
        (with(&["throttling"], json!(0)), "throttling"),
        (with(&["throttling"], json!("fast")), "throttling"),
        (with(&["expiresAt"], json!("tomorrow")), "expiresAt"),
        (
            with(&["expiresAt"], json!("2020-01-01T00:00:00Z")),
            "expiresAt",
        ),
        (with(&["isActive"], json!("yes")), "isActive"),
        (
            with(&["notification", "endpoint"], json!({})),
            "notification.endpoint.uri",
        ),
        (
            with(&["notification", "endpoint", "uri"], json!("not a uri")),
            "notification.endpoint.uri",
        ),
        (
            with(&["notification", "endpoint", "uri"], json!("ftp://x/y")),
            "notification.endpoint.uri",
        ),
        (
            with(&["notification", "endpoint", "accept"], json!("text/plain")),
            "notification.endpoint.accept",
        ),
        (
            with(&["notification", "format"], json!("xml")),
            "notification.format",
        ),
        (
            with(&["notification", "attributes"], json!([])),
            "notification.attributes",
        ),
        (
            with(
                &["notification", "endpoint", "receiverInfo"],
                json!([{"key": "X-A"}]),
            ),
            "notification.endpoint.receiverInfo[0].value",
        ),
        (with(&["colour"], json!("red")), "colour"),
        (with(&["timeInterval"], json!(10)), "timeInterval"),
        (
            {
                let mut b = without("watchedAttributes");
                b["timeInterval"] = json!(0);
                b
            },
            "timeInterval",
        ),
        (
            {
                let mut b = without("watchedAttributes");
                b["timeInterval"] = json!(5);
                b["throttling"] = json!(5);
                b
            },
            "timeInterval",
        ),
    ];
    for (body, field) in cases {
        let r = a.call("POST", "/subscriptions", Some(&body)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {:?}", r.body);
        assert_eq!(
            r.body["type"], "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
            "{body}"
        );
        assert_eq!(r.body["field"], field, "{body}: {:?}", r.body);
    }
    // Valid NGSI-LD that this server does not do.
    let mqtt = with(
        &["notification", "endpoint", "uri"],
        json!("mqtt://broker/topic"),
    );
    let r = a.call("POST", "/subscriptions", Some(&mqtt)).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    // Not JSON at all.
    let req = Request::builder()
        .method("POST")
        .uri("/subscriptions")
        .header("authorization", TOKEN)
        .header("content-type", JSON)
        .body(Body::from("{"))
        .unwrap();
    let resp = a.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    // Nothing was stored by any of them.
    let r = a.call("GET", "/subscriptions?count=true", None).await;
    assert_eq!(r.headers["ngsild-results-count"], "0");
    // Without credentials.
    let req = Request::builder()
        .method("POST")
        .uri("/subscriptions")
        .header("content-type", JSON)
        .body(Body::from(good.to_string()))
        .unwrap();
    let resp = a.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notifies_on_ngsi_ld_writes_and_observations() {
    let a = api().await;
    let mut rx = receiver(0).await;
    let e = "urn:ngsi-ld:AirQualitySensor:td1-007";
    let r = a.call("POST", "/entities", Some(&sensor(e, 25.0))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let other = "urn:ngsi-ld:AirQualitySensor:td1-008";
    let r = a
        .call("POST", "/entities", Some(&sensor(other, 10.0)))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    let mut body = subscription(&rx.url);
    body["q"] = json!("temperature>20");
    body["notification"]["attributes"] = json!(["temperature"]);
    let sid = subscribe(&a, &body).await;

    // No initial notification: the first one is the first change.
    rx.quiet().await;

    // An NGSI-LD PATCH of the watched attribute.
    set_temperature(&a, e, 30.5).await;
    let got = rx.next().await;
    assert_eq!(got.body["type"], "Notification");
    assert_eq!(got.body["subscriptionId"], sid);
    assert_eq!(got.body["notifiedAt"], "2026-03-01T08:00:00Z");
    assert!(
        got.body["id"]
            .as_str()
            .unwrap()
            .starts_with("urn:ngsi-ld:Notification:")
    );
    let data = got.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{data:?}");
    assert_eq!(data[0]["id"], e);
    assert_eq!(data[0]["type"], "AirQualitySensor");
    assert_eq!(data[0]["temperature"]["value"], 30.5);
    assert!(
        data[0].get("humidity").is_none(),
        "only notification.attributes"
    );
    assert_eq!(got.headers["x-tenant"], "binh-duong");
    assert_eq!(got.headers["content-type"], JSON);
    assert!(
        got.headers["link"]
            .to_str()
            .unwrap()
            .contains("ngsi-ld-core-context")
    );

    // A change that q does not let through (td1-008 stays below 20).
    set_temperature(&a, other, 15.0).await;
    rx.quiet().await;
    // A change of an attribute that is not watched.
    let r = a
        .call(
            "PATCH",
            &format!("/entities/{e}/attrs"),
            Some(&json!({"humidity": {"type": "Property", "value": 70}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    rx.quiet().await;

    // An observation committed through the ingest pipeline (as /api/v1 and
    // MQTT do) is a change of the entity's Property.
    a.ingest
        .observations(
            "test",
            vec![Observation {
                entity: e.into(),
                attribute: "temperature".into(),
                time: t0() + chrono::Duration::seconds(1),
                value: PValue::Number(33.0),
            }],
        )
        .await
        .unwrap();
    let got = rx.next().await;
    assert_eq!(got.body["data"][0]["temperature"]["value"], 33.0);

    let r = a.call("GET", &format!("/subscriptions/{sid}"), None).await;
    assert_eq!(r.body["notification"]["timesSent"], 2, "{:?}", r.body);
    assert_eq!(r.body["notification"]["status"], "ok");
    assert_eq!(
        r.body["notification"]["lastSuccess"],
        "2026-03-01T08:00:00Z"
    );
    assert!(r.body["notification"].get("lastFailure").is_none());

    // keyValues.
    let mut kv = subscription(&rx.url);
    kv["entities"] = json!([{"type": "AirQualitySensor", "id": other}]);
    kv["notification"]["format"] = json!("keyValues");
    kv["notification"]["endpoint"]["accept"] = json!("application/ld+json");
    subscribe(&a, &kv).await;
    set_temperature(&a, other, 15.5).await;
    let got = rx.next().await;
    assert_eq!(got.body["data"][0]["id"], other);
    assert_eq!(got.body["data"][0]["temperature"], 15.5);
    assert_eq!(got.headers["content-type"], "application/ld+json");
    assert!(got.headers.get("link").is_none());
    assert!(
        got.body["@context"]
            .to_string()
            .contains("ngsi-ld-core-context"),
        "{:?}",
        got.body
    );
    assert_eq!(got.body["data"][0]["humidity"], 60);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_and_expiry_follow_the_clock() {
    let a = api().await;
    let mut rx = receiver(0).await;
    let e = "urn:ngsi-ld:AirQualitySensor:td1-009";
    let r = a.call("POST", "/entities", Some(&sensor(e, 25.0))).await;
    assert_eq!(r.status, StatusCode::CREATED);
    let mut body = subscription(&rx.url);
    body["throttling"] = json!(60);
    body["expiresAt"] = json!("2026-03-01T08:05:00Z");
    let sid = subscribe(&a, &body).await;
    set_temperature(&a, e, 25.5).await;
    rx.next().await;

    set_temperature(&a, e, 26.0).await;
    rx.quiet().await; // within 60 s of the last one
    a.clock.advance(chrono::Duration::seconds(61));
    set_temperature(&a, e, 27.0).await;
    let got = rx.next().await;
    assert_eq!(got.body["data"][0]["temperature"]["value"], 27.0);
    assert_eq!(got.body["notifiedAt"], "2026-03-01T08:01:01Z");

    a.clock.advance(chrono::Duration::minutes(5));
    let r = a.call("GET", &format!("/subscriptions/{sid}"), None).await;
    assert_eq!(r.body["status"], "expired");
    set_temperature(&a, e, 28.0).await;
    rx.quiet().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_deliveries_are_retried_then_reported() {
    let a = api().await;
    // Fails twice, then accepts: the retries deliver it.
    let mut rx = receiver(2).await;
    let e = "urn:ngsi-ld:AirQualitySensor:td1-010";
    a.call("POST", "/entities", Some(&sensor(e, 25.0))).await;
    let sid = subscribe(&a, &subscription(&rx.url)).await;
    set_temperature(&a, e, 26.0).await;
    let got = rx.next().await;
    assert_eq!(got.body["subscriptionId"], sid);
    assert_eq!(rx.hits.load(Ordering::SeqCst), 3);
    // The status is recorded once the receiver's answer is back: wait for it.
    let mut seen = Value::Null;
    for _ in 0..100 {
        let r = a.call("GET", &format!("/subscriptions/{sid}"), None).await;
        seen = r.body["notification"].clone();
        if seen.get("status").is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(seen["status"], "ok", "{seen:?}");

    // An endpoint that never answers well: reported as failed.
    let dead = receiver(usize::MAX).await;
    let mut body = subscription(&dead.url);
    body["entities"] = json!([{"type": "AirQualitySensor", "id": e}]);
    let sid = subscribe(&a, &body).await;
    set_temperature(&a, e, 27.0).await;
    // Four tries with back-off take over a second; allow for a loaded machine.
    for _ in 0..200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let r = a.call("GET", &format!("/subscriptions/{sid}"), None).await;
        seen = r.body["notification"].clone();
        if seen.get("status").is_some() {
            break;
        }
    }
    assert_eq!(seen["status"], "failed", "{seen:?}");
    assert_eq!(seen["lastFailure"], "2026-03-01T08:00:00Z");
    assert_eq!(
        dead.hits.load(Ordering::SeqCst),
        4,
        "one try and three retries"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_subscriptions_notify_every_interval_of_the_clock() {
    let a = api().await;
    let mut rx = receiver(0).await;
    let e = "urn:ngsi-ld:AirQualitySensor:td1-011";
    a.call("POST", "/entities", Some(&sensor(e, 25.0))).await;
    let mut body = subscription(&rx.url);
    body.as_object_mut().unwrap().remove("watchedAttributes");
    body["timeInterval"] = json!(30);
    let sid = subscribe(&a, &body).await;
    let r = a.call("GET", &format!("/subscriptions/{sid}"), None).await;
    assert_eq!(r.body["timeInterval"], 30);
    // Due at once (never sent), then only once the clock has moved 30 s.
    let got = rx.next().await;
    assert_eq!(got.body["data"][0]["temperature"]["value"], 25.0);
    // A change does not trigger a periodic subscription.
    set_temperature(&a, e, 26.0).await;
    rx.quiet().await;
    a.clock.advance(chrono::Duration::seconds(30));
    let got = rx.next().await;
    assert_eq!(got.body["notifiedAt"], "2026-03-01T08:00:30Z");
    assert_eq!(got.body["data"][0]["temperature"]["value"], 26.0);
    rx.quiet().await;
}
