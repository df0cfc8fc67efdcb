//! The simulator speaks the public ingest API: bearer tokens of the right
//! source, observations of declared attributes, values that continue the
//! history, and it backs off when told to. Checked against a stand-in
//! ingest endpoint (the real server has its own end-to-end test).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use panorama_core::{Clock, SystemClock, Value};
use panorama_demo::{DemoData, DemoOptions, Simulator, SimulatorOptions, backfill, build};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug)]
struct Received {
    source: String,
    at: Instant,
    at_utc: DateTime<Utc>,
    items: Vec<serde_json::Value>,
    status: u16,
}

#[derive(Clone)]
struct Fake {
    tokens: Arc<HashMap<String, String>>,
    log: Arc<Mutex<Vec<Received>>>,
    /// Answer 429 with `Retry-After: 2` to this request (1-based).
    busy_on: usize,
}

async fn ingest(
    State(f): State<Fake>,
    headers: HeaderMap,
    Json(items): Json<Vec<serde_json::Value>>,
) -> Response {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let Some(source) = f.tokens.get(token).cloned() else {
        return (StatusCode::UNAUTHORIZED, "unknown token").into_response();
    };
    assert_eq!(
        headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("application/json")
    );
    let mut log = f.log.lock().unwrap();
    let n = log.len() + 1;
    let status = if n == f.busy_on { 429 } else { 200 };
    let count = items.len();
    log.push(Received {
        source,
        at: Instant::now(),
        at_utc: SystemClock.now(),
        items,
        status,
    });
    if status == 429 {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "2")],
            "busy",
        )
            .into_response();
    }
    Json(serde_json::json!({ "accepted": count })).into_response()
}

async fn serve(data: &DemoData, busy_on: usize) -> (String, Arc<Mutex<Vec<Received>>>) {
    let fake = Fake {
        tokens: Arc::new(
            data.sources
                .iter()
                .map(|s| (s.token.clone(), s.source.id.clone()))
                .collect(),
        ),
        log: Arc::default(),
        busy_on,
    };
    let log = fake.log.clone();
    let app = Router::new()
        .route("/api/v1/observations", post(ingest))
        .with_state(fake);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}"), log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_data_arrives_through_the_ingest_api_and_continues_the_history() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let opts = DemoOptions {
        sensors: 200,
        cameras: 20,
        backfill_days: 1,
        ..DemoOptions::new(clock.now())
    };
    let data = build(&opts).unwrap();
    let (url, log) = serve(&data, 3).await;
    let sim = Simulator::new(
        url,
        &data,
        &SimulatorOptions {
            sensors: Some(40),
            rate_per_sec: Some(500.0),
        },
    );
    assert_eq!(sim.reporters(), 40 + 9 + 20);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(sim.run(clock.clone(), stopped));
    tokio::time::sleep(Duration::from_millis(5_500)).await;
    stop.send(true).unwrap();
    let stats = tokio::time::timeout(Duration::from_secs(3), run)
        .await
        .expect("stops promptly")
        .unwrap();

    let log = log.lock().unwrap();
    assert!(log.len() >= 4, "{} requests", log.len());
    assert_eq!(stats.requests as usize, log.len());
    assert_eq!(stats.throttled, 1);
    let accepted: usize = log
        .iter()
        .filter(|r| r.status == 200)
        .map(|r| r.items.len())
        .sum();
    assert_eq!(stats.accepted as usize, accepted);
    assert!(accepted >= 100, "{accepted} observations");

    // Retry-After was honoured: nothing was sent for two seconds after the 429.
    let busy = log.iter().position(|r| r.status == 429).unwrap();
    let next = &log[busy + 1];
    assert!(next.at.duration_since(log[busy].at) >= Duration::from_millis(1_950));
    // …and the refused batch was sent again.
    assert_eq!(next.items, log[busy].items);

    let entities: HashMap<&str, _> = data.entities.iter().map(|e| (e.id.as_str(), e)).collect();
    let mut numbers: Vec<(String, String, DateTime<Utc>, f64)> = Vec::new();
    for r in log.iter() {
        assert!(!r.items.is_empty());
        for item in &r.items {
            let obj = item.as_object().unwrap();
            assert_eq!(obj.len(), 4, "{item}");
            let id = obj["entity"].as_str().unwrap();
            let e = entities[id];
            // Each feed posts only its own entities, with its own token.
            assert_eq!(e.source.as_deref(), Some(r.source.as_str()));
            let attr = obj["attribute"].as_str().unwrap();
            let spec = &e.attributes[attr];
            let value: Value = serde_json::from_value(obj["value"].clone()).unwrap();
            value.check_type("value", spec.value_type).unwrap();
            let time = DateTime::parse_from_rfc3339(obj["time"].as_str().unwrap())
                .unwrap()
                .with_timezone(&Utc);
            assert!(
                (r.at_utc - time).num_seconds().abs() <= 5,
                "{time} received at {}",
                r.at_utc
            );
            if let Value::Number(v) = value {
                numbers.push((id.to_string(), attr.to_string(), time, v));
            }
        }
    }

    // A live value equals what the history gives for that minute.
    let last = numbers.iter().map(|n| n.2).max().unwrap();
    let history_opts = DemoOptions {
        backfill_days: 1,
        now: last,
        ..opts.clone()
    };
    let history = backfill(&data, &history_opts);
    let mut past: HashMap<(String, String, i64), f64> = HashMap::new();
    for i in history.batches().saturating_sub(3)..history.batches() {
        for o in history.batch(i) {
            if let Value::Number(v) = o.value {
                past.insert((o.entity, o.attribute, o.time.timestamp() / 60), v);
            }
        }
    }
    let mut compared = 0;
    for (id, attr, t, v) in &numbers {
        if let Some(h) = past.get(&(id.clone(), attr.clone(), t.timestamp() / 60)) {
            assert_eq!(h, v, "{id} {attr} at {t}");
            compared += 1;
        }
    }
    assert!(compared >= 50, "only {compared} values compared");
}

#[tokio::test]
async fn an_unreachable_server_is_retried_with_back_off_not_hammered() {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let data = build(&DemoOptions {
        sensors: 50,
        cameras: 5,
        ..DemoOptions::new(clock.now() - ChronoDuration::hours(1))
    })
    .unwrap();
    // Nothing listens on this port (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let sim = Simulator::new(
        format!("http://127.0.0.1:{port}"),
        &data,
        &SimulatorOptions {
            sensors: None,
            rate_per_sec: Some(1000.0),
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let run = tokio::spawn(sim.run(clock, stopped));
    tokio::time::sleep(Duration::from_millis(4_000)).await;
    stop.send(true).unwrap();
    let stats = tokio::time::timeout(Duration::from_secs(3), run)
        .await
        .expect("stops promptly")
        .unwrap();
    // Back-off of 1 s, 2 s, …: a handful of attempts in four seconds.
    assert!(stats.failures >= 1 && stats.failures <= 4, "{stats:?}");
    assert_eq!(stats.accepted, 0);
}
