//! The NGSI-LD router over a real embedded store: every endpoint, and every
//! class of bad request with the problem type and field it must name.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use http_body_util::BodyExt;
use panorama_core::{AttributeSpec, Entity, ManualClock, Observation, Value as PValue, ValueType};
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_ngsild::{NgsiConfig, NgsiState};
use panorama_store::SharedStore;
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tower::ServiceExt;

mod common;
use common::{TOKEN, TestGate};

const LD: &str = "application/ld+json";
const JSON: &str = "application/json";

struct Api {
    app: axum::Router,
    store: SharedStore,
    ingest: Ingest,
    _dir: tempfile::TempDir,
}

fn now() -> panorama_core::Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-03-01T08:00:00Z")
        .unwrap()
        .to_utc()
}

async fn api_with(config: NgsiConfig) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let clock = Arc::new(ManualClock::new(now()));
    let ingest = Ingest::new(
        store.clone(),
        EventBus::new(64),
        clock.clone(),
        IngestOptions::default(),
    );
    let state = NgsiState::new(ingest.clone(), clock, Arc::new(TestGate), config);
    Api {
        app: panorama_ngsild::router(state),
        store,
        ingest,
        _dir: dir,
    }
}

async fn api() -> Api {
    api_with(NgsiConfig::default()).await
}

struct Resp {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Api {
    async fn call(
        &self,
        method: &str,
        uri: &str,
        ct: Option<&str>,
        body: Option<&str>,
        extra: &[(&str, &str)],
    ) -> Resp {
        let mut req = Request::builder().method(method).uri(uri);
        req = req.header("authorization", TOKEN);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        let req = req
            .body(Body::from(body.unwrap_or("").to_string()))
            .unwrap();
        let resp = self.app.clone().oneshot(req).await.unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        Resp {
            status,
            headers,
            body,
        }
    }
    async fn get(&self, uri: &str) -> Resp {
        self.call("GET", uri, None, None, &[]).await
    }
    async fn post(&self, uri: &str, body: &Value) -> Resp {
        self.call("POST", uri, Some(JSON), Some(&body.to_string()), &[])
            .await
    }
    async fn patch(&self, uri: &str, body: &Value) -> Resp {
        self.call("PATCH", uri, Some(JSON), Some(&body.to_string()), &[])
            .await
    }
}

fn problem(r: &Resp, status: u16, kind: &str) {
    assert_eq!(r.status.as_u16(), status, "{:?}", r.body);
    assert_eq!(
        r.body["type"],
        format!("https://uri.etsi.org/ngsi-ld/errors/{kind}"),
        "{:?}",
        r.body
    );
    assert!(r.body["title"].is_string());
}

fn building(id: &str) -> Value {
    json!({
        "id": id,
        "type": "Building",
        "name": {"type": "Property", "value": "Tòa nhà A"},
        "height": {"type": "Property", "value": 42.5, "unitCode": "MTR", "observedAt": "2026-03-01T07:00:00Z",
                   "accuracy": {"type": "Property", "value": 0.5}},
        "open": {"type": "Property", "value": true},
        "owner": [{"type": "Relationship", "object": "urn:ngsi-ld:Person:1", "datasetId": "urn:ngsi-ld:Dataset:a"},
                  {"type": "Relationship", "object": "urn:ngsi-ld:Person:2"}],
        "label": {"type": "LanguageProperty", "languageMap": {"vi": "Cầu", "en": "Bridge"}},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.65, 10.98]}}
    })
}

#[tokio::test]
async fn create_retrieve_delete_round_trip() {
    let a = api().await;
    let id = "urn:ngsi-ld:Building:b1";
    let r = a.post("/entities", &building(id)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.headers["location"],
        "/ngsi-ld/v1/entities/urn:ngsi-ld:Building:b1"
    );

    let r = a.get(&format!("/entities/{id}")).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.headers["content-type"], JSON);
    assert!(
        r.headers["link"]
            .to_str()
            .unwrap()
            .contains("ngsi-ld-core-context")
    );
    let mut want = building(id);
    // Stored exactly as given (system times are only shown with sysAttrs).
    assert_eq!(r.body, want);

    // ld+json puts the context in the body.
    let r = a
        .call(
            "GET",
            &format!("/entities/{id}"),
            None,
            None,
            &[("accept", LD)],
        )
        .await;
    assert_eq!(r.headers["content-type"], LD);
    want["@context"] = json!(panorama_ngsild::context::CORE_CONTEXT_URL);
    assert_eq!(r.body, want);

    let r = a
        .call(
            "GET",
            &format!("/entities/{id}?attrs=height,location"),
            None,
            None,
            &[("accept", "application/geo+json")],
        )
        .await;
    assert_eq!(r.headers["content-type"], "application/geo+json");
    assert_eq!(r.body["type"], "Feature");
    assert_eq!(r.body["id"], id);
    assert_eq!(
        r.body["geometry"],
        json!({"type": "Point", "coordinates": [106.65, 10.98]})
    );
    assert_eq!(r.body["properties"]["height"]["value"], 42.5);
    let r = a
        .call(
            "GET",
            "/entities?type=Building",
            None,
            None,
            &[("accept", "application/geo+json")],
        )
        .await;
    assert_eq!(r.body["type"], "FeatureCollection");
    assert_eq!(r.body["features"][0]["id"], id);

    let r = a.get(&format!("/entities/{id}?options=sysAttrs")).await;
    assert_eq!(r.body["createdAt"], "2026-03-01T08:00:00Z");
    assert_eq!(r.body["height"]["modifiedAt"], "2026-03-01T08:00:00Z");

    // A trailing slash names the same resource.
    assert_eq!(
        a.get(&format!("/entities/{id}/")).await.status,
        StatusCode::OK
    );
    assert_eq!(
        a.get("/entities/?type=Building")
            .await
            .body
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let r = a.get(&format!("/entities/{id}?lang=en")).await;
    assert_eq!(
        r.body["label"],
        json!({"type": "Property", "value": "Bridge", "lang": "en"})
    );
    problem(
        &a.get(&format!("/entities/{id}?attrs=nothing")).await,
        404,
        "ResourceNotFound",
    );
    problem(
        &a.get(&format!("/entities/{id}?attrs=height&pick=id")).await,
        400,
        "BadRequestData",
    );
    problem(
        &a.get(&format!("/entities/{id}?format=fancy")).await,
        400,
        "InvalidRequest",
    );

    let r = a.get(&format!("/entities/{id}?options=keyValues")).await;
    assert_eq!(r.body["height"], 42.5);
    assert_eq!(
        r.body["owner"],
        json!(["urn:ngsi-ld:Person:1", "urn:ngsi-ld:Person:2"])
    );

    // The same write landed in Panorama's catalogue and observations.
    let e = a
        .store
        .entity(id)
        .await
        .unwrap()
        .expect("a catalogue entity");
    assert_eq!(e.entity_type, "Building");
    assert_eq!(e.domain, "urban");
    assert_eq!(e.name, "Tòa nhà A");
    assert_eq!(
        e.attributes["height"],
        AttributeSpec {
            value_type: ValueType::Number,
            unit: Some("MTR".into())
        }
    );
    let latest = a.store.latest(&[id.to_string()]).await.unwrap();
    let h = latest
        .iter()
        .find(|l| l.attribute == "height")
        .expect("height observed");
    assert_eq!(h.value, PValue::Number(42.5));
    assert_eq!(h.time.to_rfc3339(), "2026-03-01T07:00:00+00:00");

    let r = a.post("/entities", &building(id)).await;
    problem(&r, 409, "AlreadyExists");

    let r = a
        .call("DELETE", &format!("/entities/{id}"), None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    problem(
        &a.get(&format!("/entities/{id}")).await,
        404,
        "ResourceNotFound",
    );
    problem(
        &a.call("DELETE", &format!("/entities/{id}"), None, None, &[])
            .await,
        404,
        "ResourceNotFound",
    );
    // It can be created again.
    assert_eq!(
        a.post("/entities", &building(id)).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn bad_requests_name_the_problem_and_field() {
    let a = api().await;
    let r = a
        .call("POST", "/entities", Some(JSON), Some("{\"id\": "), &[])
        .await;
    problem(&r, 400, "InvalidRequest");
    let r = a
        .post("/entities", &json!({"id": "not a urn", "type": "Building"}))
        .await;
    problem(&r, 400, "BadRequestData");
    assert_eq!(r.body["field"], "id");
    let r = a.post("/entities", &json!({"id": "urn:ngsi-ld:B:1"})).await;
    assert_eq!(r.body["field"], "type");
    let r = a
        .post(
            "/entities",
            &json!({"id": "urn:ngsi-ld:B:1", "type": "type"}),
        )
        .await;
    assert_eq!(r.body["field"], "type");
    let r = a
        .post(
            "/entities",
            &json!({"id": "urn:ngsi-ld:B:1", "type": "B", "h": 5}),
        )
        .await;
    problem(&r, 400, "BadRequestData");
    assert_eq!(r.body["field"], "h");
    let r = a
        .post(
            "/entities",
            &json!({"id": "urn:ngsi-ld:B:1", "type": "B", "h": {"type": "Property"}}),
        )
        .await;
    assert_eq!(r.body["field"], "h.value");
    let r = a.post("/entities", &json!({"id": "urn:ngsi-ld:B:1", "type": "B", "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [500, 1]}}})).await;
    assert_eq!(r.body["field"], "location.value");
    let r = a.post("/entities", &json!({"id": "urn:ngsi-ld:B:1", "type": "B", "r": {"type": "Relationship", "object": "no uri"}})).await;
    assert_eq!(r.body["field"], "r.object");
    let r = a.post("/entities", &json!({"id": "urn:ngsi-ld:B:1", "type": "B", "h": {"type": "Property", "value": 1, "observedAt": "yesterday"}})).await;
    assert_eq!(r.body["field"], "h.observedAt");
    let r = a.post("/entities", &json!({"id": "urn:ngsi-ld:B:1", "type": "B", "h": {"type": "Property", "value": 1, "observedAt": "2030-01-01T00:00:00Z"}})).await;
    problem(&r, 400, "BadRequestData");
    // Nothing of a refused write was kept.
    problem(
        &a.get("/entities/urn:ngsi-ld:B:1").await,
        404,
        "ResourceNotFound",
    );

    let r = a
        .call("POST", "/entities", Some("text/plain"), Some("{}"), &[])
        .await;
    problem(&r, 415, "UnsupportedMediaType");
    let r = a.call("POST", "/entities", None, Some("{}"), &[]).await;
    problem(&r, 415, "UnsupportedMediaType");
    let r = a
        .call(
            "GET",
            "/entities/urn:ngsi-ld:B:1",
            None,
            None,
            &[("accept", "text/html")],
        )
        .await;
    problem(&r, 406, "NotAcceptable");
    let body = json!({"id": "urn:ngsi-ld:B:1", "type": "B", "@context": []}).to_string();
    let r = a
        .call("POST", "/entities", Some(JSON), Some(&body), &[])
        .await;
    assert_eq!(r.body["field"], "@context");
    let body = json!({"id": "urn:ngsi-ld:B:1", "type": "B"}).to_string();
    let r = a
        .call("POST", "/entities", Some(LD), Some(&body), &[])
        .await;
    assert_eq!(r.body["field"], "@context");
    let r = a.get("/entities?type=B&bogus=1").await;
    problem(&r, 400, "InvalidRequest");
    assert_eq!(r.body["field"], "bogus");
    let r = a.get("/entities/not-a-urn").await;
    assert_eq!(r.body["field"], "id");
    let r = a.get("/entities?q=height%3E").await;
    problem(&r, 400, "BadRequestData");
    assert_eq!(r.body["field"], "q");
    let r = a
        .get("/entities?georel=near&geometry=Point&coordinates=%5B1,2%5D")
        .await;
    assert_eq!(r.body["field"], "georel");
    let r = a
        .get("/entities?georel=within&geometry=Circle&coordinates=%5B1,2%5D")
        .await;
    assert_eq!(r.body["field"], "geometry");
    let r = a.get("/entities?georel=within&geometry=Polygon").await;
    assert_eq!(r.body["field"], "coordinates");
    let r = a.get("/entities").await;
    problem(&r, 400, "BadRequestData");
    let r = a.get("/entities?type=B&limit=5000").await;
    assert_eq!(r.body["field"], "limit");
    let r = a.get("/entities?type=B&options=fancy").await;
    assert_eq!(r.body["field"], "options");
    problem(&a.get("/nothing-here").await, 404, "ResourceNotFound");

    // No credentials: 401, with anonymous access off by default.
    let req = Request::builder()
        .uri("/entities?type=B")
        .body(Body::empty())
        .unwrap();
    let resp = a.app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn anonymous_access_follows_the_config() {
    let a = api_with(NgsiConfig {
        anonymous: panorama_ngsild::Anonymous::Read,
        ..NgsiConfig::default()
    })
    .await;
    let get = Request::builder()
        .uri("/entities?type=B")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        a.app.clone().oneshot(get).await.unwrap().status(),
        StatusCode::OK
    );
    let post = Request::builder()
        .method("POST")
        .uri("/entities")
        .header("content-type", JSON)
        .body(Body::from(building("urn:ngsi-ld:Building:x").to_string()))
        .unwrap();
    assert_eq!(
        a.app.clone().oneshot(post).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
}

async fn context_server(hits: Arc<AtomicUsize>) -> String {
    use axum::routing::get;
    let app = axum::Router::new()
        .route(
            "/ctx.jsonld",
            get(move || {
                let hits = hits.clone();
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    axum::Json(json!({"@context": {"Building": "https://ontology.example/Building", "height": "https://ontology.example/height"}}))
                }
            }),
        )
        .route("/slow.jsonld", get(|| async {
            tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            "{}"
        }));
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn user_contexts_are_fetched_cached_and_refused_when_unavailable() {
    let a = api_with(NgsiConfig {
        context_timeout_secs: 1,
        ..NgsiConfig::default()
    })
    .await;
    let hits = Arc::new(AtomicUsize::new(0));
    let base = context_server(hits.clone()).await;
    let ctx = format!("{base}/ctx.jsonld");
    let mut e = building("urn:ngsi-ld:Building:c1");
    e["@context"] = json!([ctx, panorama_ngsild::context::CORE_CONTEXT_URL]);
    let r = a
        .call("POST", "/entities", Some(LD), Some(&e.to_string()), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // Read with the same context: short names come back; with the core
    // context alone, the full IRIs.
    let link = format!(
        "<{ctx}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\""
    );
    let r = a
        .call(
            "GET",
            "/entities/urn:ngsi-ld:Building:c1",
            None,
            None,
            &[("link", &link)],
        )
        .await;
    assert_eq!(r.body["type"], "Building");
    assert_eq!(r.body["height"]["value"], 42.5);
    assert_eq!(r.headers["link"].to_str().unwrap(), link);
    let r = a.get("/entities/urn:ngsi-ld:Building:c1").await;
    assert_eq!(r.body["type"], "https://ontology.example/Building");
    assert_eq!(r.body["https://ontology.example/height"]["value"], 42.5);
    let r = a
        .call(
            "GET",
            "/entities?type=Building",
            None,
            None,
            &[("link", &link)],
        )
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(
        hits.load(Ordering::SeqCst),
        1,
        "the context is fetched once, then cached"
    );

    for url in [
        format!("{base}/missing.jsonld"),
        format!("{base}/slow.jsonld"),
        "http://127.0.0.1:9/none.jsonld".to_string(),
    ] {
        let mut e = building("urn:ngsi-ld:Building:c2");
        e["@context"] = json!(url);
        let r = a
            .call("POST", "/entities", Some(LD), Some(&e.to_string()), &[])
            .await;
        problem(&r, 503, "LdContextNotAvailable");
        assert!(
            r.body["detail"].as_str().unwrap().contains(&url),
            "{:?}",
            r.body
        );
    }
    problem(
        &a.get("/entities/urn:ngsi-ld:Building:c2").await,
        404,
        "ResourceNotFound",
    );
}

#[tokio::test]
async fn attributes_append_update_partial_replace_delete() {
    let a = api().await;
    let id = "urn:ngsi-ld:Building:a1";
    a.post("/entities", &building(id)).await;
    let base = format!("/entities/{id}/attrs");

    let r = a
        .post(&base, &json!({"floors": {"type": "Property", "value": 7}}))
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = a.post(&format!("{base}?options=noOverwrite"), &json!({"floors": {"type": "Property", "value": 8}, "colour": {"type": "Property", "value": "red"}})).await;
    // noOverwrite keeps the existing attribute as asked: not a failure.
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        a.get(&format!("/entities/{id}")).await.body["colour"]["value"],
        "red"
    );
    assert_eq!(
        a.get(&format!("/entities/{id}")).await.body["floors"]["value"],
        7
    );

    let r = a.patch(&base, &json!({"floors": {"type": "Property", "value": 9}, "ghost": {"type": "Property", "value": 1}})).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["notUpdated"][0]["attributeName"], "ghost");
    let e = a.get(&format!("/entities/{id}")).await.body;
    assert_eq!(e["floors"]["value"], 9);
    assert!(e.get("ghost").is_none());
    // urn:ngsi-ld:null deletes, whatever the attribute type.
    let r = a.patch(&base, &json!({"location": {"type": "GeoProperty", "value": "urn:ngsi-ld:null"}, "label": {"type": "LanguageProperty", "languageMap": {"@none": "urn:ngsi-ld:null"}}})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let e = a.get(&format!("/entities/{id}")).await.body;
    assert!(
        e.get("location").is_none() && e.get("label").is_none(),
        "{e}"
    );
    problem(
        &a.get(&format!("/entities/{id}?options=fancy")).await,
        400,
        "InvalidRequest",
    );

    let r = a
        .call(
            "PATCH",
            &format!("{base}/height"),
            Some("application/merge-patch+json"),
            Some(r#"{"value": 50}"#),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let e = a.get(&format!("/entities/{id}")).await.body;
    assert_eq!(e["height"]["value"], 50);
    assert_eq!(
        e["height"]["unitCode"], "MTR",
        "a partial update keeps what it does not name"
    );
    assert_eq!(e["height"]["accuracy"]["value"], 0.5);
    problem(
        &a.patch(&format!("{base}/ghost"), &json!({"value": 1}))
            .await,
        404,
        "ResourceNotFound",
    );
    let r = a
        .patch(
            &format!("{base}/height"),
            &json!({"type": "Weird", "value": 1}),
        )
        .await;
    assert_eq!(r.body["field"], "height.type");

    let r = a
        .call(
            "PUT",
            &format!("{base}/height"),
            Some(JSON),
            Some(r#"{"type": "Property", "value": 60}"#),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let e = a.get(&format!("/entities/{id}")).await.body;
    assert_eq!(e["height"], json!({"type": "Property", "value": 60}));
    let latest = a.store.latest(&[id.to_string()]).await.unwrap();
    assert_eq!(
        latest
            .iter()
            .find(|l| l.attribute == "height")
            .unwrap()
            .value,
        PValue::Number(60.0)
    );

    let r = a
        .call(
            "DELETE",
            &format!("{base}/owner?datasetId=urn:ngsi-ld:Dataset:a"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(
        a.get(&format!("/entities/{id}")).await.body["owner"]["object"],
        "urn:ngsi-ld:Person:2"
    );
    let r = a
        .call("DELETE", &format!("{base}/colour"), None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        a.get(&format!("/entities/{id}"))
            .await
            .body
            .get("colour")
            .is_none()
    );
    problem(
        &a.call("DELETE", &format!("{base}/colour"), None, None, &[])
            .await,
        404,
        "ResourceNotFound",
    );
    problem(
        &a.post(
            "/entities/urn:ngsi-ld:Building:none/attrs",
            &json!({"x": {"type": "Property", "value": 1}}),
        )
        .await,
        404,
        "ResourceNotFound",
    );
}

#[tokio::test]
async fn queries_filter_page_and_count() {
    let a = api().await;
    for (i, (lon, h)) in [(106.65, 10.0), (106.66, 20.0), (107.5, 30.0)]
        .into_iter()
        .enumerate()
    {
        let mut e = building(&format!("urn:ngsi-ld:Building:q{i}"));
        e["height"]["value"] = json!(h);
        e["location"]["value"]["coordinates"] = json!([lon, 10.98]);
        assert_eq!(a.post("/entities", &e).await.status, StatusCode::CREATED);
    }
    a.post("/entities", &json!({"id": "urn:ngsi-ld:Park:p1", "type": "Park", "area": {"type": "Property", "value": 3}})).await;
    let ids = |r: &Resp| -> Vec<String> {
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };

    assert_eq!(ids(&a.get("/entities?type=Building").await).len(), 3);
    assert_eq!(ids(&a.get("/entities?type=Park,Building").await).len(), 4);
    assert_eq!(
        ids(&a.get("/entities?type=Building&q=height%3E15").await),
        ["urn:ngsi-ld:Building:q1", "urn:ngsi-ld:Building:q2"]
    );
    assert_eq!(
        ids(&a
            .get("/entities?type=Building&q=height%3C15%7Cheight%3E25")
            .await),
        ["urn:ngsi-ld:Building:q0", "urn:ngsi-ld:Building:q2"]
    );
    assert_eq!(
        ids(&a.get("/entities?idPattern=.*q%5B12%5D").await),
        ["urn:ngsi-ld:Building:q1", "urn:ngsi-ld:Building:q2"]
    );
    assert_eq!(
        ids(&a
            .get("/entities?id=urn:ngsi-ld:Park:p1,urn:ngsi-ld:Building:q0")
            .await),
        ["urn:ngsi-ld:Building:q0", "urn:ngsi-ld:Park:p1"]
    );
    assert_eq!(
        ids(&a.get("/entities?attrs=area").await),
        ["urn:ngsi-ld:Park:p1"]
    );
    let near = "/entities?type=Building&georel=near%3BmaxDistance%3D%3D3000&geometry=Point&coordinates=%5B106.65,10.98%5D";
    assert_eq!(
        ids(&a.get(near).await),
        ["urn:ngsi-ld:Building:q0", "urn:ngsi-ld:Building:q1"]
    );
    let within = "/entities?georel=within&geometry=Polygon&coordinates=%5B%5B%5B107,10%5D,%5B108,10%5D,%5B108,11%5D,%5B107,11%5D,%5B107,10%5D%5D%5D";
    assert_eq!(ids(&a.get(within).await), ["urn:ngsi-ld:Building:q2"]);

    let r = a
        .get("/entities?type=Building&limit=2&offset=1&count=true")
        .await;
    assert_eq!(
        ids(&r),
        ["urn:ngsi-ld:Building:q1", "urn:ngsi-ld:Building:q2"]
    );
    assert_eq!(r.headers["ngsild-results-count"], "3");
    let r = a.get("/entities?type=Building&orderBy=height;desc").await;
    assert_eq!(
        ids(&r),
        [
            "urn:ngsi-ld:Building:q2",
            "urn:ngsi-ld:Building:q1",
            "urn:ngsi-ld:Building:q0"
        ]
    );
    let r = a
        .get("/entities?type=Building,Park&orderBy=type;desc,height")
        .await;
    assert_eq!(
        ids(&r),
        [
            "urn:ngsi-ld:Park:p1",
            "urn:ngsi-ld:Building:q0",
            "urn:ngsi-ld:Building:q1",
            "urn:ngsi-ld:Building:q2"
        ]
    );
    assert_eq!(
        a.get("/entities?type=Building&orderBy=height;up")
            .await
            .body["field"],
        "orderBy"
    );
    let r = a.get("/entities?type=Building&limit=0&count=true").await;
    assert_eq!(r.body, json!([]));
    assert_eq!(r.headers["ngsild-results-count"], "3");

    let r = a
        .get("/entities?id=urn:ngsi-ld:Building:q0&attrs=height&options=keyValues")
        .await;
    assert_eq!(
        r.body,
        json!([{"id": "urn:ngsi-ld:Building:q0", "type": "Building", "height": 10.0}])
    );
    let r = a
        .get("/entities?id=urn:ngsi-ld:Building:q0&pick=id,open")
        .await;
    assert_eq!(
        r.body,
        json!([{"id": "urn:ngsi-ld:Building:q0", "open": {"type": "Property", "value": true}}])
    );
    let r = a
        .get("/entities?id=urn:ngsi-ld:Park:p1&omit=type,area")
        .await;
    assert_eq!(r.body, json!([{"id": "urn:ngsi-ld:Park:p1"}]));

    let r = a
        .post(
            "/entityOperations/query?count=true",
            &json!({"type": "Query", "entities": [{"type": "Building"}], "q": "height>15"}),
        )
        .await;
    assert_eq!(
        ids(&r),
        ["urn:ngsi-ld:Building:q1", "urn:ngsi-ld:Building:q2"]
    );
    assert_eq!(r.headers["ngsild-results-count"], "2");
    let r = a.post("/entityOperations/query", &json!({"type": "Query", "geoQ": {"georel": "within", "geometry": "Polygon", "coordinates": [[[107,10],[108,10],[108,11],[107,11],[107,10]]]}})).await;
    assert_eq!(ids(&r), ["urn:ngsi-ld:Building:q2"]);
    assert_eq!(
        a.post("/entityOperations/query", &json!({"type": "Nope"}))
            .await
            .body["field"],
        "type"
    );

    let r = a.get("/types").await;
    assert_eq!(r.body["type"], "EntityTypeList");
    assert_eq!(r.body["typeList"], json!(["Building", "Park"]));
    let r = a.get("/types/Building").await;
    assert_eq!(r.body["entityCount"], 3);
    assert!(
        r.body["attributeDetails"]
            .as_array()
            .unwrap()
            .iter()
            .any(
                |d| d["attributeName"] == "owner" && d["attributeTypes"] == json!(["Relationship"])
            )
    );
    problem(&a.get("/types/Nope").await, 404, "ResourceNotFound");
    let r = a.get("/attributes").await;
    assert!(
        r.body["attributeList"]
            .as_array()
            .unwrap()
            .contains(&json!("area"))
    );
    let r = a.get("/attributes/height").await;
    assert_eq!(r.body["attributeCount"], 3);
    assert_eq!(r.body["typeNames"], json!(["Building"]));
    let r = a.get("/types?details=true").await;
    assert_eq!(r.body[1]["typeName"], "Park");

    // Purge: attributes first (drop / keep), then whole entities.
    problem(
        &a.call("DELETE", "/entities", None, None, &[]).await,
        400,
        "BadRequestData",
    );
    problem(
        &a.call(
            "DELETE",
            "/entities?type=Building&keep=name&drop=open",
            None,
            None,
            &[],
        )
        .await,
        400,
        "BadRequestData",
    );
    let r = a
        .call(
            "DELETE",
            "/entities?type=Building&drop=open",
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        a.get("/entities/urn:ngsi-ld:Building:q0")
            .await
            .body
            .get("open")
            .is_none()
    );
    assert!(
        a.get("/entities/urn:ngsi-ld:Building:q0")
            .await
            .body
            .get("height")
            .is_some()
    );
    a.call(
        "DELETE",
        "/entities?type=Building&keep=height",
        None,
        None,
        &[],
    )
    .await;
    let e = a.get("/entities/urn:ngsi-ld:Building:q1").await.body;
    assert_eq!(
        e.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["height", "id", "type"]
    );
    let r = a
        .call("DELETE", "/entities?type=Building", None, None, &[])
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(a.get("/entities?type=Building").await.body, json!([]));
    assert_eq!(
        ids(&a.get("/entities?type=Park").await),
        ["urn:ngsi-ld:Park:p1"]
    );
}

#[tokio::test]
async fn batch_operations_report_each_entity() {
    let a = api().await;
    let r = a
        .post(
            "/entityOperations/create",
            &json!([
                building("urn:ngsi-ld:Building:x1"),
                building("urn:ngsi-ld:Building:x2")
            ]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!(["urn:ngsi-ld:Building:x1", "urn:ngsi-ld:Building:x2"])
    );
    let r = a.post("/entityOperations/create", &json!([building("urn:ngsi-ld:Building:x1"), building("urn:ngsi-ld:Building:x3"), {"id": "bad", "type": "B"}])).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["success"], json!(["urn:ngsi-ld:Building:x3"]));
    assert_eq!(r.body["errors"][0]["entityId"], "urn:ngsi-ld:Building:x1");
    assert_eq!(
        r.body["errors"][0]["error"]["type"],
        "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists"
    );
    assert_eq!(r.body["errors"][1]["error"]["field"], "id");

    let mut changed = building("urn:ngsi-ld:Building:x1");
    changed["height"] = json!({"type": "Property", "value": 1});
    changed.as_object_mut().unwrap().remove("open");
    let r = a
        .post(
            "/entityOperations/upsert",
            &json!([changed, building("urn:ngsi-ld:Building:x4")]),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.body, json!(["urn:ngsi-ld:Building:x4"]));
    let e = a.get("/entities/urn:ngsi-ld:Building:x1").await.body;
    assert_eq!(e["height"]["value"], 1);
    assert!(e.get("open").is_none(), "upsert replaces by default");
    let r = a.post("/entityOperations/upsert?options=update", &json!([{"id": "urn:ngsi-ld:Building:x1", "type": "Building", "open": {"type": "Property", "value": false}}])).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let e = a.get("/entities/urn:ngsi-ld:Building:x1").await.body;
    assert_eq!(
        (e["height"]["value"].clone(), e["open"]["value"].clone()),
        (json!(1), json!(false))
    );

    let r = a.post("/entityOperations/update", &json!([{"id": "urn:ngsi-ld:Building:x2", "floors": {"type": "Property", "value": 3}}, {"id": "urn:ngsi-ld:Building:none", "floors": {"type": "Property", "value": 3}}])).await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(
        r.body["errors"][0]["error"]["type"],
        "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    );
    assert_eq!(
        a.get("/entities/urn:ngsi-ld:Building:x2").await.body["floors"]["value"],
        3
    );

    let r = a.post("/entityOperations/merge", &json!([{"id": "urn:ngsi-ld:Building:x2", "height": {"value": 99}, "open": "urn:ngsi-ld:null"}])).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let e = a.get("/entities/urn:ngsi-ld:Building:x2").await.body;
    assert_eq!(e["height"]["value"], 99);
    assert_eq!(e["height"]["unitCode"], "MTR");
    assert!(e.get("open").is_none());

    let r = a
        .post(
            "/entityOperations/delete",
            &json!(["urn:ngsi-ld:Building:x1", "urn:ngsi-ld:Building:none"]),
        )
        .await;
    assert_eq!(r.status, StatusCode::MULTI_STATUS);
    assert_eq!(r.body["success"], json!(["urn:ngsi-ld:Building:x1"]));
    problem(
        &a.get("/entities/urn:ngsi-ld:Building:x1").await,
        404,
        "ResourceNotFound",
    );
    let r = a
        .post("/entityOperations/delete", &json!({"not": "an array"}))
        .await;
    problem(&r, 400, "BadRequestData");
}

#[tokio::test]
async fn linked_entities_join_inline_and_flat() {
    let a = api().await;
    a.post("/entities", &json!({"id": "urn:ngsi-ld:City:hcm", "type": "City", "name": {"type": "Property", "value": "TP HCM"}})).await;
    a.post(
        "/entities",
        &json!({"id": "urn:ngsi-ld:Building:j1", "type": "Building",
        "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:hcm"}}),
    )
    .await;
    let r = a.get("/entities/urn:ngsi-ld:Building:j1?join=inline").await;
    assert_eq!(
        r.body["locatedAt"]["entity"],
        json!({"id": "urn:ngsi-ld:City:hcm", "type": "City", "name": {"type": "Property", "value": "TP HCM"}})
    );
    let r = a
        .get("/entities/urn:ngsi-ld:Building:j1?join=inline&options=keyValues")
        .await;
    assert_eq!(
        r.body["locatedAt"],
        json!({"id": "urn:ngsi-ld:City:hcm", "type": "City", "name": "TP HCM"})
    );
    let r = a
        .get("/entities/urn:ngsi-ld:Building:j1?join=flat&joinLevel=1")
        .await;
    assert_eq!(r.body.as_array().unwrap().len(), 2);
    assert_eq!(r.body[1]["id"], "urn:ngsi-ld:City:hcm");
    let r = a.get("/entities?type=Building&join=flat").await;
    assert_eq!(
        r.body
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].clone())
            .collect::<Vec<_>>(),
        [
            json!("urn:ngsi-ld:Building:j1"),
            json!("urn:ngsi-ld:City:hcm")
        ]
    );
    assert_eq!(
        a.get("/entities?type=Building&join=deep").await.body["field"],
        "join"
    );
    assert_eq!(
        a.get("/entities?type=Building&join=flat&joinLevel=0")
            .await
            .body["field"],
        "joinLevel"
    );
}

#[tokio::test]
async fn merge_and_replace_entity() {
    let a = api().await;
    let id = "urn:ngsi-ld:Building:m1";
    a.post("/entities", &building(id)).await;
    let r = a.patch(&format!("/entities/{id}"), &json!({"owner": {"type": "Relationship", "object": "urn:ngsi-ld:null", "datasetId": "urn:ngsi-ld:Dataset:a"}})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        a.get(&format!("/entities/{id}")).await.body["owner"],
        json!({"type": "Relationship", "object": "urn:ngsi-ld:Person:2"})
    );
    let r = a.patch(&format!("/entities/{id}"), &json!({"height": {"value": 7}, "floors": {"type": "Property", "value": 2}, "label": "urn:ngsi-ld:null", "owner": {"type": "Relationship", "object": "urn:ngsi-ld:null"}})).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let e = a.get(&format!("/entities/{id}")).await.body;
    assert_eq!(e["height"]["value"], 7);
    assert_eq!(e["height"]["accuracy"]["value"], 0.5);
    assert_eq!(e["floors"]["value"], 2);
    assert!(e.get("label").is_none());
    assert!(e.get("owner").is_none());
    problem(
        &a.patch(
            "/entities/urn:ngsi-ld:Building:none",
            &json!({"x": {"value": 1}}),
        )
        .await,
        404,
        "ResourceNotFound",
    );

    let body =
        json!({"type": "Building", "open": {"type": "Property", "value": false}}).to_string();
    let r = a
        .call(
            "PUT",
            &format!("/entities/{id}"),
            Some(JSON),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let e = a.get(&format!("/entities/{id}")).await.body;
    assert_eq!(
        e,
        json!({"id": id, "type": "Building", "open": {"type": "Property", "value": false}})
    );
    let body = json!({"id": "urn:ngsi-ld:Building:other", "type": "Building"}).to_string();
    let r = a
        .call(
            "PUT",
            &format!("/entities/{id}"),
            Some(JSON),
            Some(&body),
            &[],
        )
        .await;
    assert_eq!(r.body["field"], "id");
}

#[tokio::test]
async fn catalogue_entities_are_readable_as_ngsi_ld() {
    let a = api().await;
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert(
        "pm25".to_string(),
        AttributeSpec {
            value_type: ValueType::Number,
            unit: Some("µg/m3".into()),
        },
    );
    let e = Entity {
        id: "urn:ngsi-ld:AirQualityObserved:td1".into(),
        entity_type: "AirQualityObserved".into(),
        name: "Trạm Thủ Dầu Một".into(),
        domain: "environment".into(),
        admin_unit: None,
        location: Some(
            serde_json::from_value(json!({"type": "Point", "coordinates": [106.65, 10.98]}))
                .unwrap(),
        ),
        attributes,
        properties: serde_json::Map::new(),
        source: None,
        updated_at: None,
    };
    a.ingest.entities("test", vec![e]).await.unwrap();
    a.ingest
        .observations(
            "test",
            vec![Observation {
                entity: "urn:ngsi-ld:AirQualityObserved:td1".into(),
                attribute: "pm25".into(),
                time: now(),
                value: PValue::Number(35.5),
            }],
        )
        .await
        .unwrap();
    let r = a.get("/entities/urn:ngsi-ld:AirQualityObserved:td1").await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["type"], "AirQualityObserved");
    assert_eq!(r.body["name"]["value"], "Trạm Thủ Dầu Một");
    assert_eq!(
        r.body["location"],
        json!({"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.65, 10.98]}})
    );
    assert_eq!(
        r.body["pm25"],
        json!({"type": "Property", "value": 35.5, "observedAt": "2026-03-01T08:00:00Z", "unitCode": "µg/m3"})
    );
    let r = a.get("/entities?type=AirQualityObserved&q=pm25%3E30").await;
    assert_eq!(r.body.as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn hosted_contexts_are_added_listed_served_used_and_deleted() {
    let a = api().await;
    let ctx = json!({"@context": {"Building": "https://ontology.example/Building"}});
    let r = a.post("/jsonldContexts", &ctx).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let loc = r.headers["location"].to_str().unwrap().to_string();
    assert!(loc.starts_with("/ngsi-ld/v1/jsonldContexts/"));
    let local = loc.rsplit('/').next().unwrap().to_string();

    let r = a.get("/jsonldContexts").await;
    let list = r.body.as_array().unwrap();
    assert!(list.contains(&json!(panorama_ngsild::context::CORE_CONTEXT_URL)));
    assert!(list.contains(&json!(loc)));
    let r = a.get("/jsonldContexts?details=true&kind=Hosted").await;
    assert_eq!(r.body[0]["localId"], local);
    assert_eq!(r.body[0]["kind"], "Hosted");
    assert_eq!(r.body[0]["createdAt"], "2026-03-01T08:00:00Z");
    assert_eq!(a.get(&format!("/jsonldContexts/{local}")).await.body, ctx);

    // A request may name the hosted context by its URL: it is not fetched.
    let mut e = building("urn:ngsi-ld:Building:h1");
    e["@context"] = json!(format!("http://broker.invalid{loc}"));
    let r = a
        .call("POST", "/entities", Some(LD), Some(&e.to_string()), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        a.get("/entities/urn:ngsi-ld:Building:h1").await.body["type"],
        "https://ontology.example/Building"
    );
    let mut e = building("urn:ngsi-ld:Building:h2");
    e["@context"] = json!(local.clone());
    let r = a
        .call("POST", "/entities", Some(LD), Some(&e.to_string()), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        a.get(&format!("/jsonldContexts/{local}?details=true"))
            .await
            .body["numberOfHits"],
        2
    );

    problem(
        &a.post("/jsonldContexts", &json!({"no": "context"})).await,
        400,
        "InvalidRequest",
    );
    problem(
        &a.call("POST", "/jsonldContexts", Some(JSON), Some("{"), &[])
            .await,
        400,
        "InvalidRequest",
    );
    problem(
        &a.get("/jsonldContexts?kind=Other").await,
        400,
        "BadRequestData",
    );
    problem(
        &a.get("/jsonldContexts/unknown").await,
        404,
        "ResourceNotFound",
    );
    problem(
        &a.call("DELETE", "/jsonldContexts/unknown", None, None, &[])
            .await,
        404,
        "ResourceNotFound",
    );
    problem(
        &a.call(
            "DELETE",
            "/jsonldContexts/unknown?reload=true",
            None,
            None,
            &[],
        )
        .await,
        400,
        "BadRequestData",
    );
    problem(
        &a.call(
            "DELETE",
            &format!("/jsonldContexts/{local}?reload=true"),
            None,
            None,
            &[],
        )
        .await,
        400,
        "BadRequestData",
    );
    let core = "https%3A%2F%2Furi.etsi.org%2Fngsi-ld%2Fv1%2Fngsi-ld-core-context-v1.6.jsonld";
    problem(
        &a.call(
            "DELETE",
            &format!("/jsonldContexts/{core}"),
            None,
            None,
            &[],
        )
        .await,
        400,
        "BadRequestData",
    );
    assert_eq!(
        a.get(&format!("/jsonldContexts/{core}?details=true"))
            .await
            .body["kind"],
        "Cached"
    );

    let r = a
        .call(
            "DELETE",
            &format!("/jsonldContexts/{local}"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    problem(
        &a.get(&format!("/jsonldContexts/{local}")).await,
        404,
        "ResourceNotFound",
    );
}

#[tokio::test]
async fn fetched_contexts_are_listed_as_cached_and_can_be_deleted() {
    let a = api().await;
    let hits = Arc::new(AtomicUsize::new(0));
    let base = context_server(hits.clone()).await;
    let url = format!("{base}/ctx.jsonld");
    let mut e = building("urn:ngsi-ld:Building:k1");
    e["@context"] = json!(url);
    assert_eq!(
        a.call("POST", "/entities", Some(LD), Some(&e.to_string()), &[])
            .await
            .status,
        StatusCode::CREATED
    );
    let r = a.get("/jsonldContexts?kind=Cached").await;
    assert!(
        r.body.as_array().unwrap().contains(&json!(url)),
        "{:?}",
        r.body
    );
    let quoted = url.replace(':', "%3A").replace('/', "%2F");
    let r = a
        .call(
            "DELETE",
            &format!("/jsonldContexts/{quoted}?reload=true"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(hits.load(Ordering::SeqCst), 2, "reload fetched it again");
    let r = a
        .call(
            "DELETE",
            &format!("/jsonldContexts/{quoted}"),
            None,
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(
        !a.get("/jsonldContexts")
            .await
            .body
            .as_array()
            .unwrap()
            .contains(&json!(url))
    );
}

fn ids_of(r: &Resp) -> Vec<String> {
    let mut v: Vec<String> = r
        .body
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {:?}", r.body))
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn geojson_answers_carry_their_context_once_at_the_top() {
    let a = api().await;
    let id = "urn:ngsi-ld:Building:g1";
    assert_eq!(
        a.post("/entities", &building(id)).await.status,
        StatusCode::CREATED
    );
    let geo = [("accept", "application/geo+json")];
    let core = json!(panorama_ngsild::context::CORE_CONTEXT_URL);

    let r = a
        .call("GET", &format!("/entities/{id}"), None, None, &geo)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["type"], "Feature");
    assert_eq!(r.body["@context"], core);
    assert!(r.body["properties"].get("@context").is_none());

    let r = a
        .call("GET", "/entities?type=Building", None, None, &geo)
        .await;
    assert_eq!(r.body["type"], "FeatureCollection");
    assert_eq!(r.body["@context"], core);
    let features = r.body["features"].as_array().unwrap();
    assert_eq!(features.len(), 1);
    assert!(features[0].get("@context").is_none(), "{:?}", features[0]);

    // Plain JSON answers keep the context in the Link header only.
    let r = a.get(&format!("/entities/{id}")).await;
    assert!(r.body.get("@context").is_none());
}

#[tokio::test]
async fn type_selection_knows_and_or_and_parentheses() {
    let a = api().await;
    for (n, types) in [
        ("b", json!("Building")),
        ("bt", json!(["Building", "TouristDestination"])),
        ("p", json!("Parking")),
        ("bp", json!(["Building", "Parking"])),
    ] {
        let e = json!({"id": format!("urn:ngsi-ld:X:{n}"), "type": types});
        assert_eq!(
            a.post("/entities", &e).await.status,
            StatusCode::CREATED,
            "{n}"
        );
    }
    let q = |t: &str| {
        format!(
            "/entities?type={}",
            t.replace(';', "%3B").replace('|', "%7C")
        )
    };
    assert_eq!(
        ids_of(&a.get(&q("(Building;TouristDestination)")).await),
        ["urn:ngsi-ld:X:bt"]
    );
    assert_eq!(
        ids_of(&a.get(&q("Building;Parking")).await),
        ["urn:ngsi-ld:X:bp"]
    );
    assert_eq!(
        ids_of(&a.get(&q("(Building;Parking),TouristDestination")).await),
        ["urn:ngsi-ld:X:bp", "urn:ngsi-ld:X:bt"]
    );
    assert_eq!(
        ids_of(&a.get(&q("Parking|TouristDestination")).await),
        ["urn:ngsi-ld:X:bp", "urn:ngsi-ld:X:bt", "urn:ngsi-ld:X:p"]
    );
    assert_eq!(
        ids_of(&a.get(&q("Building;(Parking|TouristDestination)")).await),
        ["urn:ngsi-ld:X:bp", "urn:ngsi-ld:X:bt"]
    );
    for bad in ["(Building;Parking", "Building;", "Building)", "()"] {
        let r = a.get(&q(bad)).await;
        problem(&r, 400, "BadRequestData");
        assert_eq!(r.body["field"], "type", "{bad}: {:?}", r.body);
    }
}

#[tokio::test]
async fn queries_refuse_bad_patterns_and_core_names_as_attrs() {
    let a = api().await;
    a.post("/entities", &building("urn:ngsi-ld:Building:v1"))
        .await;
    for bad in ["invalid_entity_id_pattern**", "a+*", "(unclosed"] {
        let r = a
            .get(&format!(
                "/entities?type=Building&idPattern={}",
                bad.replace('+', "%2B")
            ))
            .await;
        problem(&r, 400, "BadRequestData");
        assert_eq!(r.body["field"], "idPattern", "{bad}: {:?}", r.body);
    }
    // Lazy quantifiers and escaped stars stay valid.
    for good in [".*?v1", "urn\\*?.*", "[*+]*.*"] {
        let r = a
            .get(&format!(
                "/entities?type=Building&idPattern={}",
                good.replace('+', "%2B").replace('\\', "%5C")
            ))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{good}: {:?}", r.body);
    }
    let r = a.get("/entities?type=Building&idPattern=.*v1%24").await;
    assert_eq!(ids_of(&r), ["urn:ngsi-ld:Building:v1"]);

    let r = a.get("/entities?attrs=id,type").await;
    problem(&r, 400, "BadRequestData");
    assert_eq!(r.body["field"], "attrs");
    let r = a.get("/entities?attrs=height,type").await;
    assert_eq!(r.body["field"], "attrs");
    assert_eq!(ids_of(&a.get("/entities?attrs=height").await).len(), 1);
}

#[tokio::test]
async fn updates_add_types_without_repeating_them() {
    let a = api().await;
    let id = "urn:ngsi-ld:Building:t1";
    a.post("/entities", &building(id)).await;
    let r = a
        .patch(
            &format!("/entities/{id}/attrs"),
            &json!({"type": "Vehicle"}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        a.get(&format!("/entities/{id}")).await.body["type"],
        json!(["Building", "Vehicle"])
    );
    let r = a
        .patch(
            &format!("/entities/{id}/attrs"),
            &json!({"type": ["Vehicle", "Car", "Building"]}),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        a.get(&format!("/entities/{id}")).await.body["type"],
        json!(["Building", "Vehicle", "Car"])
    );
    // A bad type is refused and changes nothing.
    let r = a
        .patch(
            &format!("/entities/{id}/attrs"),
            &json!({"type": ["Ok", 5]}),
        )
        .await;
    problem(&r, 400, "BadRequestData");
    assert!(
        r.body["field"].as_str().unwrap().starts_with("type"),
        "{:?}",
        r.body
    );
    assert_eq!(
        a.get(&format!("/entities/{id}")).await.body["type"],
        json!(["Building", "Vehicle", "Car"])
    );

    // Batch update appends types the same way.
    let id2 = "urn:ngsi-ld:Building:t2";
    a.post("/entities", &building(id2)).await;
    let r = a
        .post(
            "/entityOperations/update",
            &json!([{"id": id2, "type": "Vehicle", "open": {"type": "Property", "value": false}}]),
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let e = a.get(&format!("/entities/{id2}")).await.body;
    assert_eq!(e["type"], json!(["Building", "Vehicle"]));
    assert_eq!(e["open"]["value"], false);
}

#[tokio::test]
async fn ld_json_body_with_a_link_context_is_refused() {
    let a = api().await;
    let mut e = building("urn:ngsi-ld:Building:l1");
    e["@context"] = json!(panorama_ngsild::context::CORE_CONTEXT_URL);
    let link = format!(
        "<{}>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"",
        panorama_ngsild::context::CORE_CONTEXT_URL
    );
    for uri in ["/entities", "/entityOperations/create"] {
        let body = if uri == "/entities" {
            e.clone()
        } else {
            json!([e.clone()])
        };
        let r = a
            .call(
                "POST",
                uri,
                Some(LD),
                Some(&body.to_string()),
                &[("link", &link)],
            )
            .await;
        problem(&r, 400, "BadRequestData");
        assert_eq!(r.body["field"], "Link", "{uri}");
    }
    // Nothing was created; without the Link header the same body is fine.
    assert_eq!(
        a.get("/entities/urn:ngsi-ld:Building:l1").await.status,
        StatusCode::NOT_FOUND
    );
    let r = a
        .call("POST", "/entities", Some(LD), Some(&e.to_string()), &[])
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
}

#[tokio::test]
async fn missing_ids_non_object_bodies_and_bad_batch_fragments_are_client_errors() {
    let a = api().await;
    a.post("/entities", &building("urn:ngsi-ld:Building:m1"))
        .await;
    // PUT / PATCH without an entity id name the missing id (not 405).
    for (method, uri) in [
        ("PUT", "/entities"),
        ("PATCH", "/entities/"),
        ("PUT", "/entities/"),
    ] {
        let r = a
            .call(
                method,
                uri,
                Some(JSON),
                Some(&building("urn:ngsi-ld:Building:m1").to_string()),
                &[],
            )
            .await;
        problem(&r, 400, "BadRequestData");
        assert_eq!(r.body["field"], "id", "{method} {uri}");
    }
    // A list where one entity is expected is not a valid request.
    let r = a.call("POST", "/entities", Some(LD), Some("[]"), &[]).await;
    problem(&r, 400, "InvalidRequest");
    let r = a
        .call("POST", "/entities", Some(JSON), Some("[]"), &[])
        .await;
    problem(&r, 400, "InvalidRequest");
    let r = a
        .call(
            "PATCH",
            "/entities/urn:ngsi-ld:Building:m1/attrs",
            Some(JSON),
            Some("[1]"),
            &[],
        )
        .await;
    problem(&r, 400, "InvalidRequest");

    // Batch update: a bad fragment is BadRequestData even for an unknown
    // entity; the good one beside it is still applied.
    let r = a
        .post(
            "/entityOperations/update",
            &json!([
                {"id": "urn:ngsi-ld:Building:nobody", "type": "Building",
                 "name": {"type": "Property", "value": null}},
                {"id": "urn:ngsi-ld:Building:m1", "open": {"type": "Property", "value": false}}
            ]),
        )
        .await;
    assert_eq!(r.status.as_u16(), 207, "{:?}", r.body);
    assert_eq!(r.body["success"], json!(["urn:ngsi-ld:Building:m1"]));
    assert_eq!(
        r.body["errors"][0]["entityId"],
        "urn:ngsi-ld:Building:nobody"
    );
    assert_eq!(
        r.body["errors"][0]["error"]["type"],
        "https://uri.etsi.org/ngsi-ld/errors/BadRequestData"
    );
    assert_eq!(
        a.get("/entities/urn:ngsi-ld:Building:m1").await.body["open"]["value"],
        false
    );
    // An unknown entity with a good fragment is still ResourceNotFound.
    let r = a
        .post(
            "/entityOperations/update",
            &json!([{"id": "urn:ngsi-ld:Building:nobody", "open": {"type": "Property", "value": true}}]),
        )
        .await;
    assert_eq!(
        r.body["errors"][0]["error"]["type"],
        "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound"
    );
}

#[tokio::test]
async fn pick_and_omit_projections_are_parsed_strictly() {
    let a = api().await;
    let id = "urn:ngsi-ld:Building:pk1";
    a.post("/entities", &building(id)).await;
    for bad in [
        "id,owner%7Bname",
        "id,owner%7B%7Bname%7D",
        "id,,name",
        "id,owner%7B,name%7D",
        "id,owner%7B%7D",
        ",name",
        "name,",
        "name%7D",
        "%7Bname%7D",
        "owner%7Bname%7Dopen",
        "id%3Bname",
    ] {
        for key in ["pick", "omit"] {
            let r = a.get(&format!("/entities/{id}?{key}={bad}")).await;
            problem(&r, 400, "BadRequestData");
            assert_eq!(r.body["field"], key, "{key}={bad}: {:?}", r.body);
            let r = a.get(&format!("/entities?type=Building&{key}={bad}")).await;
            assert_eq!(r.status, StatusCode::BAD_REQUEST, "query {key}={bad}");
        }
    }
    // Well-formed projections, nested ones included, still work.
    let r = a.get(&format!("/entities/{id}?pick=id,name")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"id": id, "name": {"type": "Property", "value": "Tòa nhà A"}})
    );
    let r = a
        .get(&format!("/entities/{id}?pick=id,owner%7Bname,type%7D"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(
        r.body.get("owner").is_some() && r.body.get("name").is_none(),
        "{:?}",
        r.body
    );
    let r = a
        .get(&format!("/entities/{id}?omit=owner%7Bname%7D,label"))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert!(r.body.get("owner").is_none() && r.body.get("label").is_none());
    assert!(r.body.get("name").is_some());
}

#[tokio::test]
async fn temporal_and_subscription_routes_refuse_geojson_and_unknown_parameters() {
    let a = api().await;
    a.post("/entities", &building("urn:ngsi-ld:Building:tg1"))
        .await;
    let geo = [("accept", "application/geo+json")];
    for uri in [
        "/temporal/entities?type=Building&timerel=after&timeAt=2026-03-01T00:00:00Z",
        "/temporal/entities/urn:ngsi-ld:Building:tg1",
        "/subscriptions",
        "/subscriptions/urn:ngsi-ld:Subscription:none",
    ] {
        let r = a.call("GET", uri, None, None, &geo).await;
        problem(&r, 406, "NotAcceptable");
    }
    // JSON is still answered on the same routes.
    let r = a
        .call(
            "GET",
            "/temporal/entities/urn:ngsi-ld:Building:tg1",
            None,
            None,
            &[("accept", JSON)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    // Creating with an unknown query parameter is InvalidRequest, and creates nothing.
    let e = json!({"id": "urn:ngsi-ld:Building:tg2", "type": "Building",
                   "height": [{"type": "Property", "value": 1.0, "observedAt": "2026-03-01T06:00:00Z"}]});
    let r = a
        .call(
            "POST",
            "/temporal/entities?colour=red",
            Some(JSON),
            Some(&e.to_string()),
            &[],
        )
        .await;
    problem(&r, 400, "InvalidRequest");
    assert_eq!(
        a.get("/entities/urn:ngsi-ld:Building:tg2").await.status,
        StatusCode::NOT_FOUND
    );
    let sub = json!({"type": "Subscription", "entities": [{"type": "Building"}],
                     "notification": {"endpoint": {"uri": "http://127.0.0.1:9/notify"}}});
    let r = a
        .call(
            "POST",
            "/subscriptions?colour=red",
            Some(JSON),
            Some(&sub.to_string()),
            &[],
        )
        .await;
    problem(&r, 400, "InvalidRequest");
    let r = a.get("/subscriptions").await;
    assert_eq!(r.body, json!([]), "{:?}", r.body);
}

#[tokio::test]
async fn retrieve_with_a_projection_that_leaves_nothing_is_not_found() {
    let a = api().await;
    let id = "urn:ngsi-ld:Building:pn1";
    a.post("/entities", &building(id)).await;
    let r = a.get(&format!("/entities/{id}?pick=unknown")).await;
    problem(&r, 404, "ResourceNotFound");
    let r = a
        .get(&format!(
            "/entities/{id}?omit=id,type,name,height,open,owner,label,location"
        ))
        .await;
    problem(&r, 404, "ResourceNotFound");
    // Leaving one member is an answer.
    let r = a
        .get(&format!(
            "/entities/{id}?omit=type,name,height,open,owner,label,location"
        ))
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body, json!({"id": id}));
    let r = a.get(&format!("/entities/{id}?pick=unknown,open")).await;
    assert_eq!(r.body, json!({"open": {"type": "Property", "value": true}}));
}
