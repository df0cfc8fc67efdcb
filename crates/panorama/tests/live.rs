//! The live stream: subscribe by domain, type, entity, admin unit or
//! indicator, and receive committed updates within 100 ms.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use panorama_testkit::TestServer;
use serde_json::json;
use std::time::{Duration, Instant};

const E1: &str = "urn:ngsi-ld:AirQualityObserved:t-1";
const E3: &str = "urn:ngsi-ld:AirQualityObserved:t-3";

#[tokio::test]
async fn subscribers_get_matching_updates_promptly() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let mut ws = srv.live(&admin).await?;
    ws.send(json!({"op": "subscribe", "id": "district", "admin_units": ["718"]}))
        .await?;
    assert_eq!(
        ws.next(Duration::from_secs(2)).await?,
        json!({"type": "subscribed", "id": "district"})
    );

    for _ in 0..5 {
        let started = Instant::now();
        let (s, _) = srv
            .post(
                "/api/v1/observations",
                &token,
                &json!([{"entity": E1, "attribute": "pm25", "value": 42}]),
            )
            .await?;
        assert_eq!(s, 200);
        let m = ws.next_of("observations", Duration::from_secs(2)).await?;
        // A sanity bound only: the 100 ms target is measured by the benchmark
        // (timed assertions flake on a shared CI machine).
        let elapsed = started.elapsed();
        assert!(
            elapsed < Duration::from_secs(1),
            "live update took {elapsed:?}"
        );
        assert_eq!(m["items"][0]["entity"], E1);
        assert_eq!(m["items"][0]["value"], 42.0);
        assert_eq!(m["items"][0]["domain"], "environment");
        assert_eq!(m["items"][0]["admin_unit"], "718");
        assert_eq!(m["subscriptions"], json!(["district"]));
    }
    // An entity in another district is not sent.
    srv.post(
        "/api/v1/observations",
        &token,
        &json!([{"entity": E3, "attribute": "pm25", "value": 1}]),
    )
    .await?;
    assert!(
        ws.quiet_for(Duration::from_millis(300)).await,
        "an update outside the subscription was sent"
    );

    // Unsubscribe stops the flow; a province subscription includes its districts.
    ws.send(json!({"op": "unsubscribe", "id": "district"}))
        .await?;
    assert_eq!(
        ws.next(Duration::from_secs(2)).await?["type"],
        "unsubscribed"
    );
    srv.post(
        "/api/v1/observations",
        &token,
        &json!([{"entity": E1, "attribute": "pm25", "value": 2}]),
    )
    .await?;
    assert!(ws.quiet_for(Duration::from_millis(300)).await);
    ws.send(json!({"op": "subscribe", "id": "p", "admin_units": ["74"], "types": ["AirQualityObserved"]})).await?;
    ws.next_of("subscribed", Duration::from_secs(2)).await?;
    srv.post(
        "/api/v1/observations",
        &token,
        &json!([{"entity": E3, "attribute": "pm25", "value": 3}]),
    )
    .await?;
    assert_eq!(
        ws.next_of("observations", Duration::from_secs(2)).await?["items"][0]["entity"],
        E3
    );
    Ok(())
}

#[tokio::test]
async fn filters_by_entity_type_domain_and_indicator() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let mut ws = srv.live(&admin).await?;
    ws.send(json!({"op": "subscribe", "id": "e", "entities": [E3]}))
        .await?;
    ws.send(json!({"op": "subscribe", "id": "w", "domains": ["water"]}))
        .await?;
    ws.send(json!({"op": "subscribe", "id": "i", "indicators": ["cpi"]}))
        .await?;
    for _ in 0..3 {
        ws.next_of("subscribed", Duration::from_secs(2)).await?;
    }
    // A batch with items for several entities: only the matching one is sent.
    srv.post(
        "/api/v1/observations",
        &token,
        &json!([
            {"entity": E1, "attribute": "pm25", "value": 1},
            {"entity": E3, "attribute": "pm25", "value": 3}
        ]),
    )
    .await?;
    let m = ws.next_of("observations", Duration::from_secs(2)).await?;
    assert_eq!(m["items"].as_array().unwrap().len(), 1);
    assert_eq!(m["items"][0]["entity"], E3);
    assert_eq!(m["subscriptions"], json!(["e"]));

    let ind = json!({"code": "cpi", "name": "CPI", "name_en": "CPI", "domain": "prices", "unit": "%", "periodicity": "monthly", "direction": "lower_is_better"});
    assert_eq!(srv.post("/api/v1/indicators", &admin, &ind).await?.0, 204);
    srv.post(
        "/api/v1/indicator-values",
        &token,
        &json!({"indicator": "cpi", "period": "2024-05", "admin_unit": "74", "value": 103.2}),
    )
    .await?;
    let m = ws
        .next_of("indicator_values", Duration::from_secs(2))
        .await?;
    assert_eq!(m["items"][0]["indicator"], "cpi");
    assert_eq!(m["items"][0]["domain"], "prices");
    assert_eq!(m["items"][0]["value"], 103.2);
    Ok(())
}

#[tokio::test]
async fn a_subscription_can_take_some_kinds_of_message_only() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let mut ws = srv.live(&admin).await?;
    ws.send(json!({"op": "subscribe", "id": "bad", "messages": ["alerts", "weather"]}))
        .await?;
    let e = ws.next(Duration::from_secs(2)).await?;
    assert_eq!(
        (e["code"].as_str(), e["field"].as_str()),
        (Some("invalid_message"), Some("messages")),
        "{e}"
    );
    assert!(e["detail"].as_str().unwrap().contains("'weather'"), "{e}");
    ws.send(json!({"op": "subscribe", "id": "ind", "messages": ["indicator_values"]}))
        .await?;
    ws.next_of("subscribed", Duration::from_secs(2)).await?;
    // An observation first, then an indicator value: only the value comes.
    srv.post(
        "/api/v1/observations",
        &token,
        &json!([{"entity": E1, "attribute": "pm25", "value": 1}]),
    )
    .await?;
    let ind = json!({"code": "cpi", "name": "CPI", "name_en": "CPI", "domain": "prices", "unit": "%", "periodicity": "monthly", "direction": "lower_is_better"});
    assert_eq!(srv.post("/api/v1/indicators", &admin, &ind).await?.0, 204);
    srv.post(
        "/api/v1/indicator-values",
        &token,
        &json!({"indicator": "cpi", "period": "2024-05", "admin_unit": "74", "value": 103.2}),
    )
    .await?;
    let m = ws.next(Duration::from_secs(2)).await?;
    assert_eq!(m["type"], "indicator_values", "{m}");
    assert_eq!(m["subscriptions"], json!(["ind"]));
    // The same filter over SSE names the parameter when it is wrong.
    let r = srv
        .http
        .get(srv.url("/api/v1/live/sse?messages=alerts,nope"))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(r.status(), 400);
    assert!(r.text().await?.contains("messages"));
    Ok(())
}

#[tokio::test]
async fn bad_messages_get_errors_and_the_connection_survives() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    srv.seed(&admin).await?;
    let mut ws = srv.live(&admin).await?;
    ws.send(json!({"op": "dance"})).await?;
    let e = ws.next(Duration::from_secs(2)).await?;
    assert_eq!(
        (e["type"].as_str(), e["code"].as_str()),
        (Some("error"), Some("invalid_message")),
        "{e}"
    );
    ws.send(json!({"op": "subscribe", "id": ""})).await?;
    assert_eq!(ws.next(Duration::from_secs(2)).await?["field"], "id");
    ws.send(json!({"op": "unsubscribe", "id": "never"})).await?;
    assert_eq!(ws.next(Duration::from_secs(2)).await?["code"], "not_found");
    ws.send(json!({"op": "ping"})).await?;
    assert_eq!(
        ws.next(Duration::from_secs(2)).await?,
        json!({"type": "pong"})
    );
    // The live stream needs a session.
    let r = srv.http.get(srv.url("/api/v1/live")).send().await?;
    assert_eq!(r.status(), 401);
    let (_, h) = srv.get("/api/v1/health", "").await?;
    assert_eq!(h["live_clients"], 1);
    Ok(())
}

#[tokio::test]
async fn a_client_that_does_not_read_is_told_it_lagged_and_never_slows_ingest() -> anyhow::Result<()>
{
    let srv = panorama_testkit::TestServer::start_with(panorama_testkit::TestOptions {
        api: panorama_api::ApiConfig {
            live_buffer: 4,
            ..Default::default()
        },
        ..Default::default()
    })
    .await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let mut ws = srv.live(&admin).await?;
    ws.send(json!({"op": "subscribe", "id": "all"})).await?;
    ws.next_of("subscribed", Duration::from_secs(2)).await?;
    // 200 batches while the client reads nothing: ingest must not wait for it.
    let started = Instant::now();
    for i in 0..200 {
        let big = "x".repeat(60_000);
        let (s, _) = srv
            .post(
                "/api/v1/observations",
                &token,
                &json!([{"entity": E1, "attribute": "status", "value": format!("{i}{big}")}]),
            )
            .await?;
        assert_eq!(s, 200);
    }
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "ingest was slowed by a stalled client"
    );
    // Reading now, the client is told it missed updates (or was dropped for lagging repeatedly).
    let mut told = false;
    for _ in 0..400 {
        match ws.next(Duration::from_secs(2)).await {
            Ok(m) if m["type"] == "lagged" => {
                assert!(m["missed_events"].as_u64().unwrap() > 0);
                told = true;
                break;
            }
            Ok(_) => continue,
            Err(_) => break,
        }
    }
    assert!(told, "a lagging client must be told it missed updates");
    Ok(())
}

#[tokio::test]
async fn server_sent_events_carry_the_same_updates() -> anyhow::Result<()> {
    use futures::StreamExt;
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let r = srv
        .http
        .get(srv.url("/api/v1/live/sse?entities=urn:ngsi-ld:AirQualityObserved:t-1"))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()?
            .starts_with("text/event-stream")
    );
    let mut stream = r.bytes_stream();
    srv.post(
        "/api/v1/observations",
        &token,
        &json!([{"entity": E1, "attribute": "pm25", "value": 7}]),
    )
    .await?;
    let mut text = String::new();
    while !text.contains("\n\n") {
        let chunk = tokio::time::timeout(Duration::from_secs(2), stream.next())
            .await?
            .unwrap()?;
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(text.contains("event: observations"), "{text}");
    assert!(text.contains(E1), "{text}");
    Ok(())
}
