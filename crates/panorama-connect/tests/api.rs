//! MQTT sources through the real server: declared with `POST /api/v1/sources`
//! (checked field by field), connected by the server, readable over HTTP
//! with their status.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use panorama_testkit::TestServer;
use rumqttc::QoS;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

fn fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| e["field"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// Bad connector documents are refused with the field that is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_sources_are_checked_field_by_field() {
    let server = TestServer::start().await.unwrap();
    let admin = server.admin().await.unwrap();
    let base =
        json!({"id": "aq-mqtt", "name": "Trạm không khí", "kind": "mqtt", "domain": "environment"});
    let with = |connector: Value| {
        let mut b = base.clone();
        b["connector"] = connector;
        b
    };
    let cases = [
        (base.clone(), vec!["connector"]),
        (
            with(json!({"topics": [{"filter": "a/#"}]})),
            vec!["connector"],
        ),
        (
            with(json!({"host": "h", "topics": [{"filter": "a/#", "qos": 3}]})),
            vec!["connector.topics[0].qos"],
        ),
        (
            with(json!({"host": "h", "topics": [{"filter": "a/#", "qos": "one"}]})),
            vec!["connector.topics[0].qos"],
        ),
        (
            with(json!({"host": "h", "topics": [{"filter": "a/#/b"}]})),
            vec!["connector.topics[0].filter"],
        ),
        (
            with(json!({"host": "h", "topics": []})),
            vec!["connector.topics"],
        ),
        (
            with(json!({"host": "h", "topics": [{"filter": "a"}], "colour": 1})),
            vec!["connector.colour"],
        ),
        (
            with(
                json!({"host": "h", "topics": [{"filter": "a"}], "mapping": {"format": "json", "entity": "urn:x:{id}", "attribute": "a"}}),
            ),
            vec!["connector.mapping.entity"],
        ),
        (
            with(json!({"host": "", "port": 0, "topics": [{"filter": "a"}]})),
            vec!["connector.host", "connector.port"],
        ),
    ];
    for (body, want) in cases {
        let (status, problem) = server.post("/api/v1/sources", &admin, &body).await.unwrap();
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(fields(&problem), want, "{body}: {problem}");
    }
    let (status, problem) = server
        .post(
            "/api/v1/sources",
            &admin,
            &json!({"id": "push", "name": "Push", "connector": {"host": "h", "topics": [{"filter": "a"}]}}),
        )
        .await
        .unwrap();
    assert_eq!(
        (status, fields(&problem)),
        (422, vec!["connector".to_string()])
    );
}

/// An MQTT source created over the API is connected at once, its data
/// lands and reads back over HTTP, and its status shows the connection,
/// counts and errors, with the password hidden; after a restart the
/// server connects it again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_mqtt_source_declared_over_the_api_feeds_the_store() {
    let Some(bin) = mosquitto_or_skip() else {
        return;
    };
    let broker = Broker::start(bin).await.unwrap();
    let server = TestServer::start().await.unwrap();
    let admin = server.admin().await.unwrap();
    let body = json!({
        "id": "aq-mqtt", "name": "Trạm không khí", "kind": "mqtt", "domain": "environment",
        "expected_interval_secs": 60,
        "connector": {"host": "127.0.0.1", "port": broker.port, "username": "panorama", "password": "s3cret",
                      "topics": [{"filter": "bd/aq/#", "qos": 1}]}
    });
    let (status, created) = server.post("/api/v1/sources", &admin, &body).await.unwrap();
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["source"]["connector"]["password"], "********");

    let connected = wait_source(&server, &admin, "aq-mqtt", |s| {
        s["connection"]["state"] == "connected"
    })
    .await;
    assert_eq!(
        connected["connection"]["broker"],
        format!("127.0.0.1:{}", broker.port)
    );
    assert_eq!(connected["connector"]["password"], "********");
    tokio::time::sleep(Duration::from_millis(300)).await;

    let sdm = json!({"id": "urn:ngsi-ld:AirQualityObserved:da1", "type": "AirQualityObserved", "pm25": 35.5});
    publish(broker.port, "bd/aq/da1", sdm.to_string(), QoS::AtLeastOnce)
        .await
        .unwrap();
    publish(broker.port, "bd/aq/da1", "{\"id\": ", QoS::AtLeastOnce)
        .await
        .unwrap();

    let s = wait_source(&server, &admin, "aq-mqtt", |s| {
        s["accepted"].as_u64() >= Some(1) && s["rejected"].as_u64() == Some(1)
    })
    .await;
    assert!(s["last_seen_at"].is_string(), "{s}");
    assert_eq!(s["freshness"]["late"], false);
    assert!(
        s["last_error"]
            .as_str()
            .unwrap()
            .contains("payload: is not JSON"),
        "{s}"
    );
    assert_eq!(s["connection"]["messages"], 2);
    assert_eq!(s["connection"]["rejected_messages"], 1);
    assert!(s["connection"]["last_message_at"].is_string());

    let (status, series) = server
        .get(
            "/api/v1/series?entity=urn:ngsi-ld:AirQualityObserved:da1&attribute=pm25",
            &admin,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["points"][0]["value"], 35.5);

    // The server restarts: it connects the source again from the store.
    let server = server.restart().await.unwrap();
    let admin = server.admin_session().await;
    wait_source(&server, &admin, "aq-mqtt", |s| {
        s["connection"]["state"] == "connected"
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sdm = json!({"id": "urn:ngsi-ld:AirQualityObserved:da1", "type": "AirQualityObserved", "pm25": 36.0});
    publish(broker.port, "bd/aq/da1", sdm.to_string(), QoS::AtLeastOnce)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, series) = server
            .get(
                "/api/v1/series?entity=urn:ngsi-ld:AirQualityObserved:da1&attribute=pm25",
                &admin,
            )
            .await
            .unwrap();
        if series["points"].as_array().map(Vec::len) == Some(2) {
            assert_eq!(series["points"][1]["value"], 36.0);
            break;
        }
        assert!(Instant::now() < deadline, "{series}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

trait AdminSession {
    async fn admin_session(&self) -> String;
}

impl AdminSession for TestServer {
    /// Signs in the admin made before a restart.
    async fn admin_session(&self) -> String {
        let r = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": "admin", "password": "correct horse battery"}))
            .send()
            .await
            .unwrap();
        let v: Value = r.json().await.unwrap();
        v["token"].as_str().unwrap().to_string()
    }
}

async fn wait_source(
    server: &TestServer,
    token: &str,
    id: &str,
    f: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, list) = server.get("/api/v1/sources", token).await.unwrap();
        assert_eq!(status, 200, "{list}");
        let s = list
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .unwrap();
        if f(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "source never got there: {s}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Bad poll connector documents are refused with the field and the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poll_sources_are_checked_field_by_field() {
    let server = TestServer::start().await.unwrap();
    let admin = server.admin().await.unwrap();
    let base = json!({"id": "cpi-poll", "name": "CPI", "kind": "poll", "domain": "economy"});
    let with = |connector: Value| {
        let mut b = base.clone();
        b["connector"] = connector;
        b
    };
    let url = "https://agency.example/api/cpi";
    let cases = [
        (
            base.clone(),
            vec!["connector"],
            "is required for a poll source",
        ),
        (
            with(json!({"interval_secs": 60})),
            vec!["connector"],
            "missing field `url`",
        ),
        (
            with(json!({"url": "ftp://agency.example/x"})),
            vec!["connector.url"],
            "http:// or https://",
        ),
        (
            with(json!({"url": "not a url"})),
            vec!["connector.url"],
            "is not a URL",
        ),
        (
            with(json!({"url": url, "interval_secs": 1})),
            vec!["connector.interval_secs"],
            "between 5 and",
        ),
        (
            with(json!({"url": url, "interval_secs": "often"})),
            vec!["connector.interval_secs"],
            "invalid type",
        ),
        (
            with(json!({"url": url, "timeout_secs": 0})),
            vec!["connector.timeout_secs"],
            "between 1 and 600",
        ),
        (
            with(json!({"url": url, "format": "xml"})),
            vec!["connector.format"],
            "unknown variant",
        ),
        (
            with(json!({"url": url, "headers": {"Bad Header": "x"}})),
            vec!["connector.headers.Bad Header"],
            "not a valid header name",
        ),
        (
            with(json!({"url": url, "headers": {"X-Note": "line\nbreak"}})),
            vec!["connector.headers.X-Note"],
            "visible ASCII",
        ),
        (
            with(json!({"url": url, "records": "data.items"})),
            vec!["connector.records"],
            "must start with '$'",
        ),
        (
            with(json!({"url": url, "format": "csv", "records": "$.x"})),
            vec!["connector.records"],
            "is for JSON",
        ),
        (
            with(json!({"url": url, "delimiter": ";;"})),
            vec!["connector.delimiter"],
            "one ASCII character",
        ),
        (
            with(
                json!({"url": url, "mapping": {"format": "json", "entity": "urn:x:{$.id", "attribute": "a"}}),
            ),
            vec!["connector.mapping.entity"],
            "unclosed",
        ),
        (
            with(
                json!({"url": url, "mapping": {"format": "json", "topic": "a/{id}", "entity": "urn:x:{id}", "attribute": "a"}}),
            ),
            vec!["connector.mapping.topic"],
            "no meaning for a polled source",
        ),
        (
            with(json!({"url": url, "mapping": {"format": "auto"},
                        "indicator_values": {"indicator": "cpi", "period": "$.p", "admin_unit": "74", "value": "$.v"}})),
            vec!["connector.indicator_values"],
            "not both",
        ),
        (
            with(
                json!({"url": url, "indicator_values": {"indicator": "", "period": "$.p", "admin_unit": "74", "value": "42"}}),
            ),
            vec![
                "connector.indicator_values.indicator",
                "connector.indicator_values.value",
            ],
            "must not be empty",
        ),
        (
            with(
                json!({"url": url, "indicator_values": {"indicator": "cpi", "period": "$.p", "admin_unit": "74"}}),
            ),
            vec!["connector.indicator_values"],
            "missing field `value`",
        ),
        (
            with(json!({"url": url, "colour": 1})),
            vec!["connector.colour"],
            "unknown field",
        ),
    ];
    for (body, want, reason) in cases {
        let (status, problem) = server.post("/api/v1/sources", &admin, &body).await.unwrap();
        assert_eq!(status, 422, "{body}: {problem}");
        assert_eq!(fields(&problem), want, "{body}: {problem}");
        let first = problem["errors"][0]["reason"].as_str().unwrap_or_default();
        assert!(
            first.contains(reason),
            "{body}: {first} should say {reason}"
        );
    }
}

/// A poll source declared over the API is polled at once; its status shows
/// under `poll` with the Authorization header and URL secrets hidden.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_source_declared_over_the_api_shows_its_status() {
    let doc = json!([{"id": "urn:ngsi-ld:WaterObserved:bc1", "type": "WaterObserved",
                      "dateObserved": "2024-05-01T10:00:00Z", "waterLevel": 2.25}]);
    let ep = Endpoint::start(Answer::json(doc)).await.unwrap();
    let server = TestServer::start().await.unwrap();
    let admin = server.admin().await.unwrap();
    let body = json!({
        "id": "water-portal", "name": "Cổng dữ liệu Sở TN&MT", "kind": "poll", "domain": "water",
        "connector": {"url": format!("{}?api_key=k3y&lang=vi", ep.url), "interval_secs": 60,
                      "headers": {"Authorization": "Bearer agency-secret", "Accept-Language": "vi"}}
    });
    let (status, created) = server.post("/api/v1/sources", &admin, &body).await.unwrap();
    assert_eq!(status, 201, "{created}");
    let shown = &created["source"]["connector"];
    assert_eq!(shown["headers"]["Authorization"], "********");
    assert_eq!(shown["headers"]["Accept-Language"], "vi");
    assert!(
        !shown.to_string().contains("k3y") && !shown.to_string().contains("agency-secret"),
        "{shown}"
    );

    let s = wait_source(&server, &admin, "water-portal", |s| {
        s["poll"]["state"] == "ok"
    })
    .await;
    let poll = &s["poll"];
    assert_eq!(poll["last_http_status"], 200, "{poll}");
    assert_eq!(poll["last_accepted"], 1, "{poll}");
    assert_eq!(poll["consecutive_failures"], 0);
    assert_eq!(poll["format"], "json");
    assert!(poll["next_poll_at"].is_string() && poll["last_success_at"].is_string());
    assert!(!poll["url"].as_str().unwrap().contains("k3y"), "{poll}");
    assert!(!s.to_string().contains("agency-secret"), "{s}");
    assert!(
        s.get("connection").is_none(),
        "a poll source has no MQTT connection: {s}"
    );
    assert_eq!(
        ep.seen()[0].authorization.as_deref(),
        Some("Bearer agency-secret")
    );

    let (status, series) = server
        .get(
            "/api/v1/series?entity=urn:ngsi-ld:WaterObserved:bc1&attribute=waterLevel&from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z",
            &admin,
        )
        .await
        .unwrap();
    assert_eq!(status, 200, "{series}");
    assert_eq!(series["points"][0]["value"], 2.25);
}
