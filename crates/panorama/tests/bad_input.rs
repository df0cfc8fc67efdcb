//! Every class of bad input gets the right 4xx with a problem+json naming
//! the field, and the store is unchanged.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use panorama_testkit::{TestOptions, TestServer};
use serde_json::{Value, json};

const E1: &str = "urn:ngsi-ld:AirQualityObserved:t-1";

async fn pm25_count(srv: &TestServer, session: &str) -> usize {
    let (_, s) = srv
        .get(&format!("/api/v1/series?entity={E1}&attribute=pm25&from=2023-01-01T00:00:00Z&to=2025-01-01T00:00:00Z"), session)
        .await
        .unwrap();
    s["points"]
        .as_array()
        .map(Vec::len)
        .expect("a series answer")
}

fn assert_problem(status: u16, body: &Value, want_status: u16, code: &str, field: Option<&str>) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], want_status, "{body}");
    assert!(
        body["type"]
            .as_str()
            .is_some_and(|t| t.starts_with("https://")),
        "{body}"
    );
    assert!(
        body["detail"].as_str().is_some_and(|d| !d.is_empty()),
        "{body}"
    );
    if let Some(f) = field {
        assert_eq!(body["field"], f, "{body}");
    }
}

#[tokio::test]
async fn bad_observations_are_refused_whole_and_change_nothing() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let good =
        json!({"entity": E1, "attribute": "pm25", "time": "2024-05-01T00:00:00Z", "value": 1});
    assert_eq!(
        srv.post("/api/v1/observations", &token, &json!([good]))
            .await?
            .0,
        200
    );
    let before = pm25_count(&srv, &admin).await;
    assert_eq!(before, 1);

    let cases: Vec<(&str, Value, &str)> = vec![
        (
            "wrong type of entity",
            json!({"entity": 5, "attribute": "pm25", "value": 1}),
            "[1].entity",
        ),
        (
            "missing value",
            json!({"entity": E1, "attribute": "pm25"}),
            "[1].value",
        ),
        (
            "unknown field",
            json!({"entity": E1, "attribute": "pm25", "value": 1, "unit": "x"}),
            "[1].unit",
        ),
        ("not an object", json!(42), "[1]"),
        (
            "unknown entity",
            json!({"entity": "urn:ngsi-ld:AirQualityObserved:nope", "attribute": "pm25", "value": 1}),
            "[1].entity",
        ),
        (
            "entity id is not a URN",
            json!({"entity": "sensor-1", "attribute": "pm25", "value": 1}),
            "[1].entity",
        ),
        (
            "unknown attribute",
            json!({"entity": E1, "attribute": "pm10", "value": 1}),
            "[1].attribute",
        ),
        (
            "text for a number",
            json!({"entity": E1, "attribute": "pm25", "value": "NaN"}),
            "[1].value",
        ),
        (
            "number for a boolean",
            json!({"entity": E1, "attribute": "online", "value": 1}),
            "[1].value",
        ),
        (
            "null value",
            json!({"entity": E1, "attribute": "pm25", "value": null}),
            "[1].value",
        ),
        (
            "impossible date",
            json!({"entity": E1, "attribute": "pm25", "time": "2024-02-30T00:00:00Z", "value": 1}),
            "[1].time",
        ),
        (
            "time without offset",
            json!({"entity": E1, "attribute": "pm25", "time": "2024-05-01T00:00:00", "value": 1}),
            "[1].time",
        ),
        (
            "before 1970",
            json!({"entity": E1, "attribute": "pm25", "time": "1969-07-20T20:17:00Z", "value": 1}),
            "[1].time",
        ),
        (
            "far future",
            json!({"entity": E1, "attribute": "pm25", "time": "2999-01-01T00:00:00Z", "value": 1}),
            "[1].time",
        ),
    ];
    for (what, bad, field) in cases {
        let later_good =
            json!({"entity": E1, "attribute": "pm25", "time": "2024-05-01T00:05:00Z", "value": 2});
        let (s, p) = srv
            .post("/api/v1/observations", &token, &json!([later_good, bad]))
            .await?;
        assert_problem(s, &p, 422, "invalid_input", Some(field));
        assert_eq!(
            pm25_count(&srv, &admin).await,
            before,
            "{what}: the good item of a refused batch must not be stored"
        );
    }

    // Every bad item is listed, not just the first.
    let (s, p) = srv
        .post(
            "/api/v1/observations",
            &token,
            &json!([
                {"entity": E1, "attribute": "pm25", "value": "x"},
                {"entity": E1, "attribute": "nope", "value": 1}
            ]),
        )
        .await?;
    assert_eq!(s, 422);
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, vec!["[0].value", "[1].attribute"]);

    // Bodies that are not JSON at all, or carry NaN / Infinity / huge numbers.
    for body in [
        "[{",
        "[{\"entity\": \"a\", \"value\": NaN}]",
        "[{\"value\": Infinity}]",
        "[{\"value\": 1e999}]",
        "",
        "null",
    ] {
        let (s, p) = srv
            .post_raw(
                "/api/v1/observations",
                &token,
                "application/json",
                body.to_string(),
            )
            .await?;
        assert!(s == 400 || s == 422, "{body:?} → {s} {p}");
        assert!(
            p["code"] == "malformed_body" || p["code"] == "invalid_input",
            "{body:?} → {p}"
        );
    }
    let (s, p) = srv
        .post_raw(
            "/api/v1/observations",
            &token,
            "application/x-ndjson",
            format!(
                "{}\nnot json\n",
                json!({"entity": E1, "attribute": "pm25", "value": 3})
            ),
        )
        .await?;
    assert_problem(s, &p, 400, "malformed_body", Some("[1]"));
    assert_eq!(pm25_count(&srv, &admin).await, before);
    Ok(())
}

#[tokio::test]
async fn credentials_content_types_and_sizes() -> anyhow::Result<()> {
    let srv = TestServer::start_with(TestOptions {
        api: panorama_api::ApiConfig {
            max_body_bytes: 4096,
            max_items: 10,
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let one = json!([{"entity": E1, "attribute": "pm25", "value": 1}]);

    let r = srv
        .http
        .post(srv.url("/api/v1/observations"))
        .json(&one)
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert!(r.headers().contains_key("www-authenticate"));
    let (s, p) = srv
        .post("/api/v1/observations", "pns_not-a-real-token", &one)
        .await?;
    assert_problem(s, &p, 401, "unauthorized", None);
    let (s, p) = srv.post("/api/v1/observations", &admin, &one).await?;
    assert_problem(s, &p, 401, "unauthorized", None);
    let (s, p) = srv.get("/api/v1/entities", &token).await?;
    assert_problem(s, &p, 401, "unauthorized", None);
    let (s, p) = srv.get("/api/v1/entities", "").await?;
    assert_problem(s, &p, 401, "unauthorized", None);

    let (s, p) = srv
        .post_raw("/api/v1/observations", &token, "text/csv", "a,b\n")
        .await?;
    assert_problem(s, &p, 415, "unsupported_media_type", None);
    let r = srv
        .http
        .post(srv.url("/api/v1/observations"))
        .bearer_auth(&token)
        .body(one.to_string())
        .send()
        .await?;
    assert_eq!(r.status(), 415, "a body without Content-Type");
    let (s, p) = srv
        .post_raw("/api/v1/entities", &token, "application/x-ndjson", "{}\n")
        .await?;
    assert_problem(s, &p, 415, "unsupported_media_type", None);

    let big: Vec<Value> = (0..200)
        .map(|i| json!({"entity": E1, "attribute": "pm25", "value": i}))
        .collect();
    let (s, p) = srv
        .post("/api/v1/observations", &token, &json!(big))
        .await?;
    assert_problem(s, &p, 413, "payload_too_large", None);
    let eleven: Vec<Value> = (0..11)
        .map(|i| json!({"entity": E1, "attribute": "pm25", "value": i}))
        .collect();
    let (s, p) = srv
        .post("/api/v1/observations", &token, &json!(eleven))
        .await?;
    assert_problem(s, &p, 413, "too_many_items", None);
    // A chunked body without Content-Length is cut off at the limit too.
    let chunks = futures::stream::iter((0..10).map(|_| Ok::<_, std::io::Error>(vec![b' '; 1000])));
    let r = srv
        .http
        .post(srv.url("/api/v1/observations"))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await?;
    assert_eq!(r.status(), 413);

    let (_, latest) = srv
        .get(&format!("/api/v1/entities/{E1}/latest"), &admin)
        .await?;
    assert_eq!(latest, json!([]), "nothing refused was stored");

    // A viewer may read but not administer.
    let viewer = srv.user("viewer", panorama_core::Role::Viewer).await?;
    let (s, p) = srv
        .post("/api/v1/sources", &viewer, &json!({"id": "x", "name": "x"}))
        .await?;
    assert_problem(s, &p, 403, "forbidden", None);
    Ok(())
}

#[tokio::test]
async fn bad_entities_and_indicator_values_name_the_field() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let base = json!({"id": "urn:ngsi-ld:NoiseLevelObserved:n1", "type": "NoiseLevelObserved", "name": "Ồn ngã sáu", "domain": "environment", "admin_unit": "718", "attributes": {"LAeq": {"type": "number"}}});
    let with = |k: &str, v: Value| {
        let mut e = base.clone();
        e[k] = v;
        e
    };
    let cases = vec![
        (with("id", json!("n1")), "[0].id"),
        (with("type", json!("2bad")), "[0].type"),
        (with("name", json!("")), "[0].name"),
        (with("domain", json!("nowhere")), "[0].domain"),
        (with("admin_unit", json!("999")), "[0].admin_unit"),
        (
            with(
                "location",
                json!({"type": "Point", "coordinates": [200.0, 10.0]}),
            ),
            "[0].location",
        ),
        (
            with("attributes", json!({"LAeq": {"type": "decibel"}})),
            "[0].attributes",
        ),
        (with("name", json!(12)), "[0].name"),
    ];
    for (e, field) in cases {
        let (s, p) = srv.post("/api/v1/entities", &token, &json!([e])).await?;
        assert_eq!(s, 422, "{e} → {p}");
        assert!(
            p["field"].as_str().unwrap().starts_with(field),
            "{e}: wanted {field}, got {p}"
        );
    }
    let (_, list) = srv
        .get("/api/v1/entities?type=NoiseLevelObserved", &admin)
        .await?;
    assert_eq!(list["items"], json!([]), "no refused entity was stored");
    // An attribute keeps its type once declared.
    let retype = json!({"id": E1, "type": "AirQualityObserved", "name": "x", "domain": "environment", "attributes": {"pm25": {"type": "text"}}});
    let (s, p) = srv.post("/api/v1/entities", &token, &retype).await?;
    assert_eq!(
        (s, p["field"].as_str()),
        (422, Some("[0].attributes.pm25")),
        "{p}"
    );

    let ind = json!({"code": "cpi", "name": "Chỉ số giá tiêu dùng", "name_en": "CPI", "domain": "prices", "unit": "%",
        "periodicity": "monthly", "direction": "lower_is_better", "targets": {"2024": 104.0}});
    assert_eq!(srv.post("/api/v1/indicators", &admin, &ind).await?.0, 204);
    let v = |k: &str, val: Value| {
        let mut x =
            json!({"indicator": "cpi", "period": "2024-05", "admin_unit": "74", "value": 103.1});
        x[k] = val;
        x
    };
    for (bad, field) in [
        (v("indicator", json!("nope")), "[0].indicator"),
        (v("period", json!("2024-13")), "[0].period"),
        (v("period", json!("2024-Q2")), "[0].period"),
        (v("admin_unit", json!("000")), "[0].admin_unit"),
        (v("value", json!("high")), "[0].value"),
        (v("status", json!("maybe")), "[0].status"),
    ] {
        let (s, p) = srv
            .post(
                "/api/v1/indicator-values",
                &token,
                &json!([v("value", json!(100.0)), bad]),
            )
            .await?;
        let field = field.replacen("[0]", "[1]", 1);
        assert_eq!(s, 422, "{p}");
        assert_eq!(p["field"], field, "{p}");
    }
    let (_, vals) = srv.get("/api/v1/indicators/cpi/values", &admin).await?;
    assert_eq!(vals, json!([]), "no value of a refused batch was stored");
    let (s, p) = srv.post("/api/v1/indicators", &admin, &json!({"code": "x", "name": "x", "name_en": "x", "domain": "prices", "unit": "%", "periodicity": "weekly", "direction": "higher_is_better"})).await?;
    assert_eq!(
        (s, p["field"].as_str()),
        (422, Some("[0].periodicity")),
        "{p}"
    );
    Ok(())
}

#[tokio::test]
async fn bad_query_parameters_name_the_parameter() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    srv.seed(&admin).await?;
    for (path, param) in [
        ("/api/v1/entities?bbox=1,2,3", "bbox"),
        ("/api/v1/entities?limit=0", "limit"),
        ("/api/v1/entities?limit=ten", "limit"),
        ("/api/v1/entities?limit=1001", "limit"),
        ("/api/v1/latest?limit=0", "limit"),
        ("/api/v1/latest?limit=10001", "limit"),
        ("/api/v1/entities?cursor=%%%", "cursor"),
        ("/api/v1/entities?within=%7B%7D", "within"),
        (
            "/api/v1/series?entity=urn:ngsi-ld:AirQualityObserved:t-1&attribute=pm25&bucket=2m",
            "bucket",
        ),
        (
            "/api/v1/series?entity=urn:ngsi-ld:AirQualityObserved:t-1&attribute=pm25&agg=median&bucket=1h",
            "agg",
        ),
        (
            "/api/v1/series?entity=urn:ngsi-ld:AirQualityObserved:t-1&attribute=pm25&from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z",
            "from",
        ),
        (
            "/api/v1/series?entity=urn:ngsi-ld:AirQualityObserved:t-1&attribute=pm25&from=yesterday",
            "from",
        ),
        ("/api/v1/series?attribute=pm25", "entity"),
        (
            "/api/v1/series/grouped?attribute=pm25&level=galaxy",
            "level",
        ),
        ("/api/v1/admin-units?level=galaxy", "level"),
        ("/api/v1/indicator-values?from=May", "from"),
    ] {
        let (s, p) = srv.get(path, &admin).await?;
        assert!(s == 400 || s == 422, "{path} → {s} {p}");
        assert_eq!(p["field"], param, "{path} → {p}");
    }
    let (s, p) = srv
        .get(
            "/api/v1/series?entity=urn:ngsi-ld:AirQualityObserved:t-9&attribute=pm25",
            &admin,
        )
        .await?;
    assert_problem(s, &p, 404, "not_found", None);
    let (s, p) = srv
        .get("/api/v1/entities/urn:ngsi-ld:X:none", &admin)
        .await?;
    assert_problem(s, &p, 404, "not_found", None);
    let (s, p) = srv.get("/api/v1/nowhere", &admin).await?;
    assert_problem(s, &p, 404, "not_found", None);
    Ok(())
}

#[tokio::test]
async fn overload_is_answered_503_with_retry_after_and_nothing_acknowledged_is_lost()
-> anyhow::Result<()> {
    let srv = TestServer::start_with(TestOptions {
        ingest: panorama_ingest::IngestOptions {
            max_in_flight: 100,
            retry_after_secs: 2,
        },
        ..Default::default()
    })
    .await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let mut acked = 0usize;
    let mut refused = 0usize;
    let mut minute = 0i64;
    for _round in 0..20 {
        let mut reqs = Vec::new();
        for _ in 0..16 {
            let batch: Vec<Value> = (0..60)
                .map(|_| {
                    minute += 1;
                    let t =
                        chrono::DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap();
                    json!({"entity": E1, "attribute": "pm25", "time": t.to_rfc3339(), "value": 1})
                })
                .collect();
            let req = srv
                .http
                .post(srv.url("/api/v1/observations"))
                .bearer_auth(&token)
                .json(&batch)
                .send();
            reqs.push(req);
        }
        for r in futures::future::join_all(reqs).await {
            let r = r?;
            match r.status().as_u16() {
                200 => acked += 60,
                503 => {
                    refused += 1;
                    assert_eq!(r.headers()["retry-after"], "2");
                    let p: Value = r.json().await?;
                    assert_eq!(p["code"], "overloaded");
                }
                s => panic!("unexpected status {s}"),
            }
        }
        if refused > 0 {
            break;
        }
    }
    assert!(
        refused > 0,
        "16 concurrent requests of 60 against a budget of 100 must overflow"
    );
    assert_eq!(
        pm25_count(&srv, &admin).await,
        acked,
        "exactly the acknowledged observations are stored"
    );
    Ok(())
}
