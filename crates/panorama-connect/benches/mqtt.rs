//! MQTT throughput against Mosquitto's own pass-through rate, in one run
//! on one broker (issue 6: the connector should reach at least 0.8× of it,
//! with persistence).
//!
//! (a) pass-through: a plain rumqttc subscriber (QoS 1, acknowledging at
//!     once) receives N messages from one publisher;
//! (b) connector: the Panorama MQTT connector receives the same N messages
//!     and makes every observation durable (fsync'ed) before acknowledging.
//!
//! `cargo bench -p panorama-connect --bench mqtt` (N from `BENCH_MESSAGES`,
//! default 50000; the broker from `MOSQUITTO` or the PATH).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use panorama_connect::Connectors;
use panorama_core::{Clock, Source, SourceKind, SystemClock};
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_store::SharedStore;
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::json;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn mosquitto() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOSQUITTO") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

const STATIONS: usize = 1000;

async fn publish_all(port: u16, prefix: &str, n: usize) -> Instant {
    let mut o = MqttOptions::new(format!("bench-pub-{prefix}"), "127.0.0.1", port);
    o.set_inflight(1000);
    o.set_keep_alive(Duration::from_secs(60));
    let (client, mut ev) = AsyncClient::new(o, 10_000);
    let started = Instant::now();
    let prefix = prefix.to_string();
    let pub_task = tokio::spawn(async move {
        for i in 0..n {
            let payload = format!("{{\"v\": {}.5}}", i % 97);
            client
                .publish(
                    format!("{prefix}/s{}", i % STATIONS),
                    QoS::AtLeastOnce,
                    false,
                    payload,
                )
                .await
                .unwrap();
        }
        client
    });
    let mut acked = 0;
    while acked < n {
        if let Event::Incoming(Packet::PubAck(_)) = ev.poll().await.unwrap() {
            acked += 1;
        }
    }
    let client = pub_task.await.unwrap();
    client.disconnect().await.ok();
    started
}

async fn pass_through(port: u16, n: usize) -> Duration {
    let mut o = MqttOptions::new("bench-sub", "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(60));
    let (client, mut ev) = AsyncClient::new(o, 10_000);
    client.subscribe("pass/#", QoS::AtLeastOnce).await.unwrap();
    loop {
        if let Event::Incoming(Packet::SubAck(_)) = ev.poll().await.unwrap() {
            break;
        }
    }
    let receiver = tokio::spawn(async move {
        let mut got = 0;
        while got < n {
            if let Event::Incoming(Packet::Publish(_)) = ev.poll().await.unwrap() {
                got += 1;
            }
        }
        Instant::now()
    });
    let started = publish_all(port, "pass", n).await;
    let done = receiver.await.unwrap();
    done - started
}

async fn connector(port: u16, n: usize, store: SharedStore) -> Duration {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let source = Source {
        id: "bench".into(),
        name: "Bench".into(),
        kind: SourceKind::Mqtt,
        owner_agency: None,
        domain: Some("environment".into()),
        expected_interval_secs: 60,
        created_at: clock.now(),
        last_seen_at: None,
        accepted: 0,
        rejected: 0,
        last_error: None,
        connector: Some(json!({
            "host": "127.0.0.1", "port": port,
            "topics": [{"filter": "conn/#", "qos": 1}],
            "mapping": {"format": "json", "topic": "conn/{station}",
                        "entity": "urn:ngsi-ld:AirQualitySensor:{station}",
                        "attribute": "pm25", "value": "$.v"}
        })),
    };
    store.create_source(&source, &[9u8; 32]).await.unwrap();
    let ingest = Ingest::new(
        store.clone(),
        EventBus::new(1024),
        clock.clone(),
        IngestOptions::default(),
    );
    let c = Connectors::new(ingest, clock);
    c.start(&source).unwrap();
    // Warm up: every station's entity exists before the clock starts.
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.status("bench").map(|s| s.state) != Some(panorama_connect::ConnectionState::Connected) {
        assert!(Instant::now() < deadline, "connector did not connect");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    publish_all(port, "conn", STATIONS).await;
    let base = STATIONS as u64;
    wait_appended(&store, base).await;

    let before = store.health().await.observations_appended;
    let started = publish_all(port, "conn", n).await;
    wait_appended(&store, before + n as u64).await;
    let took = started.elapsed();
    c.stop_all();
    took
}

async fn wait_appended(store: &SharedStore, n: u64) {
    let deadline = Instant::now() + Duration::from_secs(600);
    while store.health().await.observations_appended < n {
        assert!(
            Instant::now() < deadline,
            "connector did not store everything"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let Some(bin) = mosquitto() else {
        eprintln!("SKIPPED: mosquitto missing (install it or set MOSQUITTO)");
        return;
    };
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50_000);
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = dir.path().join("mosquitto.conf");
    std::fs::create_dir_all(dir.path().join("broker")).unwrap();
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {}/\nmax_inflight_messages 1000\nmax_queued_messages 1000000\n",
            dir.path().join("broker").display()
        ),
    )
    .unwrap();
    let mut broker = Command::new(bin)
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let store: SharedStore = Arc::new(
        SqliteStore::open(&dir.path().join("data"), SqliteOptions::default())
            .await
            .unwrap(),
    );

    let pass = pass_through(port, n).await;
    let conn = connector(port, n, store.clone()).await;
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    println!("messages: {n} (QoS 1, one observation each, {STATIONS} sensors)");
    println!(
        "mosquitto pass-through (rumqttc subscriber): {:>10.0} msg/s ({:.2} s)",
        rate(pass),
        pass.as_secs_f64()
    );
    println!(
        "panorama connector (durable, ack after commit): {:>7.0} msg/s ({:.2} s)",
        rate(conn),
        conn.as_secs_f64()
    );
    println!("ratio: {:.2}", rate(conn) / rate(pass));
    store.close().await.unwrap();
    let _ = broker.kill();
    let _ = broker.wait();
}
