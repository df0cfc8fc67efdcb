//! How long a committed observation takes to reach a live client.
//!
//! A real server (durable store, fdatasync'ed log) on an ephemeral port, one
//! WebSocket client subscribed to one sensor, and a writer posting that
//! sensor's readings one at a time. For each reading two delays are taken:
//! from the start of the POST to the live message (what an operator sees
//! after a sensor reports), and from the POST's answer to the live message
//! (the live path alone: bus, filter, JSON, WebSocket). The same is then
//! measured while other writers post batches of 1,000 readings without
//! pause. Not a test: it prints figures for BENCHMARKS.md.
//!
//! `cargo bench -p panorama-testkit --bench live_latency -- [--samples N]`

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)]

use anyhow::{Context, Result, ensure};
use panorama_testkit::TestServer;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const WATCHED: &str = "urn:ngsi-ld:AirQualityObserved:t-1";
const OTHERS: [&str; 2] = [
    "urn:ngsi-ld:AirQualityObserved:t-2",
    "urn:ngsi-ld:AirQualityObserved:t-3",
];

#[tokio::main]
async fn main() -> Result<()> {
    let samples = std::env::args()
        .skip_while(|a| a != "--samples")
        .nth(1)
        .map(|v| v.parse::<usize>())
        .transpose()
        .context("--samples must be a number")?
        .unwrap_or(500);
    let srv = Arc::new(TestServer::start().await?);
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;

    println!("live delivery of one observation, {samples} samples each");
    println!(
        "| load | POST start → live message p50 / p99 / max | POST answer → live message p50 / p99 | background obs/s |"
    );
    println!("|---|---|---|--:|");
    let idle = measure(&srv, &admin, &token, samples).await?;
    println!("| idle | {} | {} | 0 |", idle.total, idle.after_ack);

    // Background writers: batches of 1,000 readings of other sensors, as fast
    // as the server takes them, delivered to nobody's subscription.
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let mut writers = Vec::new();
    for other in OTHERS {
        let (srv, token, stop, written) =
            (srv.clone(), token.clone(), stop.clone(), written.clone());
        writers.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let batch: Vec<_> = (0..1000)
                    .map(|i| json!({"entity": other, "attribute": "pm25", "value": (n + i) % 500}))
                    .collect();
                let (s, b) = srv
                    .post("/api/v1/observations", &token, &json!(batch))
                    .await?;
                ensure!(s == 200 || s == 503, "background write: {s} {b}");
                if s == 200 {
                    written.fetch_add(1000, Ordering::Relaxed);
                }
                n += 1000;
            }
            anyhow::Ok(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = Instant::now();
    let before = written.load(Ordering::Relaxed);
    let busy = measure(&srv, &admin, &token, samples).await?;
    let rate = (written.load(Ordering::Relaxed) - before) as f64 / started.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.await??;
    }
    println!(
        "| 2 writers, batches of 1,000 | {} | {} | {rate:.0} |",
        busy.total, busy.after_ack
    );
    Ok(())
}

struct Figures {
    total: String,
    after_ack: String,
}

async fn measure(srv: &TestServer, admin: &str, token: &str, samples: usize) -> Result<Figures> {
    let mut ws = srv.live(admin).await?;
    ws.send(
        json!({"op": "subscribe", "id": "w", "entities": [WATCHED], "messages": ["observations"]}),
    )
    .await?;
    ws.next_of("subscribed", Duration::from_secs(5)).await?;
    let mut total = Vec::with_capacity(samples);
    let mut after_ack = Vec::with_capacity(samples);
    for i in 0..samples {
        // A value no earlier sample used, so the message is unmistakable.
        let value = 1_000_000.0 + i as f64;
        let t0 = Instant::now();
        let (s, b) = srv
            .post(
                "/api/v1/observations",
                token,
                &json!([{"entity": WATCHED, "attribute": "pm25", "value": value}]),
            )
            .await?;
        ensure!(s == 200, "write: {s} {b}");
        let acked = Instant::now();
        loop {
            let m = ws.next_of("observations", Duration::from_secs(10)).await?;
            let items = m["items"].as_array().context("items")?;
            if items.iter().any(|o| o["value"].as_f64() == Some(value)) {
                break;
            }
        }
        let now = Instant::now();
        total.push(now - t0);
        after_ack.push(now - acked);
    }
    Ok(Figures {
        total: format!(
            "{} / {} / {}",
            ms(pct(&mut total, 0.5)),
            ms(pct(&mut total, 0.99)),
            ms(pct(&mut total, 1.0))
        ),
        after_ack: format!(
            "{} / {}",
            ms(pct(&mut after_ack, 0.5)),
            ms(pct(&mut after_ack, 0.99))
        ),
    })
}

fn pct(v: &mut [Duration], p: f64) -> Duration {
    v.sort_unstable();
    let i = ((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}
