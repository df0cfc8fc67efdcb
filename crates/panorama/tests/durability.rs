//! Durability of the real binary: kill -9 during sustained ingest loses
//! nothing that was acknowledged; a restart keeps everything; two servers
//! cannot share a data dir.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use serde_json::{Value, json};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_panorama");
const ENTITY: &str = "urn:ngsi-ld:WaterObserved:kill-1";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn cli(dir: &Path, args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("PANORAMA_PASSWORD", "correct horse battery")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "panorama {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn serve(dir: &Path, port: u16) -> Child {
    Command::new(BIN)
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

async fn wait_ready(http: &reqwest::Client, base: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if let Ok(r) = http.get(format!("{base}/api/v1/health")).send().await
            && r.status().is_success()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("server at {base} did not become ready");
}

async fn login(http: &reqwest::Client, base: &str) -> String {
    let r: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"username": "admin", "password": "correct horse battery"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    r["token"].as_str().unwrap().to_string()
}

/// Every stored minute up to `last`, read in windows of 50,000 minutes.
async fn stored_minutes(http: &reqwest::Client, base: &str, session: &str, last: i64) -> Vec<i64> {
    let mut out = Vec::new();
    for start in (0..=last).step_by(50_000) {
        let (from, to) = (minute(start), minute(start + 50_000));
        let r: Value = http
            .get(format!(
                "{base}/api/v1/series?entity={ENTITY}&attribute=waterLevel&from={}&to={}&limit=100000",
                from.replace('+', "%2B"),
                to.replace('+', "%2B")
            ))
            .bearer_auth(session)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        out.extend(
            r["points"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["value"].as_f64().unwrap() as i64),
        );
    }
    out
}

fn minute(i: i64) -> String {
    chrono::DateTime::from_timestamp(1_577_836_800 + i * 60, 0)
        .unwrap()
        .to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_during_sustained_ingest_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let token = cli(
        dir.path(),
        &["source", "add", "--id", "gauges", "--name", "Flood gauges"],
    );
    cli(
        dir.path(),
        &["user", "add", "--username", "admin", "--role", "admin"],
    );
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let http = reqwest::Client::new();
    let mut child = serve(dir.path(), port);
    wait_ready(&http, &base).await;
    let entity = json!({"id": ENTITY, "type": "WaterObserved", "name": "Cầu Ông Cộ", "domain": "water",
        "attributes": {"waterLevel": {"type": "number", "unit": "cm"}}});
    let r = http
        .post(format!("{base}/api/v1/entities"))
        .bearer_auth(&token)
        .json(&entity)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Four writers post batches of 250 distinct minutes (the value is the
    // minute number) as fast as they can; each remembers what was acked.
    let stop = Arc::new(AtomicBool::new(false));
    let mut writers = Vec::new();
    for w in 0..4i64 {
        let (http, base, token, stop) = (http.clone(), base.clone(), token.clone(), stop.clone());
        writers.push(tokio::spawn(async move {
            let mut acked: Vec<i64> = Vec::new();
            let mut batch_no = 0i64;
            while !stop.load(Ordering::Relaxed) {
                let first = (batch_no * 4 + w) * 250;
                let items: Vec<Value> = (first..first + 250)
                    .map(|m| json!({"entity": ENTITY, "attribute": "waterLevel", "time": minute(m), "value": m}))
                    .collect();
                batch_no += 1;
                match http.post(format!("{base}/api/v1/observations")).bearer_auth(&token).json(&items).send().await {
                    Ok(r) if r.status() == 200 => acked.extend(first..first + 250),
                    Ok(r) if r.status() == 503 => tokio::time::sleep(Duration::from_millis(10)).await,
                    Ok(r) => panic!("unexpected {}", r.status()),
                    Err(_) => break, // the server died mid-request: not acknowledged
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    stop.store(true, Ordering::Relaxed);
    let mut acked: Vec<i64> = Vec::new();
    for w in writers {
        acked.extend(w.await.unwrap());
    }
    assert!(
        acked.len() >= 1000,
        "the writers should have been acknowledged a few times before the kill"
    );

    let mut child = serve(dir.path(), port);
    wait_ready(&http, &base).await;
    let session = login(&http, &base).await;
    let last = acked.iter().copied().max().unwrap_or(0);
    let stored: std::collections::HashSet<i64> = stored_minutes(&http, &base, &session, last)
        .await
        .into_iter()
        .collect();
    let lost: Vec<&i64> = acked.iter().filter(|m| !stored.contains(m)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged observations lost, e.g. {:?}",
        lost.len(),
        &lost[..lost.len().min(5)]
    );
    child.kill().unwrap();
    child.wait().unwrap();
}

#[tokio::test]
async fn two_servers_cannot_open_the_same_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let http = reqwest::Client::new();
    let mut first = serve(dir.path(), port);
    wait_ready(&http, &format!("http://127.0.0.1:{port}")).await;
    let second = serve(dir.path(), free_port()).wait_with_output().unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another Panorama process"), "{err}");
    // The admin verbs are refused too while the server runs.
    let out = Command::new(BIN)
        .args(["user", "list", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    first.kill().unwrap();
    first.wait().unwrap();
}

#[tokio::test]
async fn a_graceful_restart_keeps_everything() -> anyhow::Result<()> {
    let srv = panorama_testkit::TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let e1 = "urn:ngsi-ld:AirQualityObserved:t-1";
    srv.post("/api/v1/observations", &token, &json!([
        {"entity": e1, "attribute": "pm25", "time": "2024-05-01T00:00:00Z", "value": 12.5},
        {"entity": e1, "attribute": "status", "time": "2024-05-01T00:00:00Z", "value": "ổn định"}
    ])).await?;
    let ind = json!({"code": "aqi", "name": "Chỉ số AQI", "name_en": "AQI", "domain": "environment", "unit": "", "periodicity": "daily", "direction": "lower_is_better"});
    srv.post("/api/v1/indicators", &admin, &ind).await?;
    srv.post(
        "/api/v1/indicator-values",
        &token,
        &json!({"indicator": "aqi", "period": "2024-05-01", "admin_unit": "74", "value": 61}),
    )
    .await?;
    srv.post(
        "/api/v1/indicator-values",
        &token,
        &json!({"indicator": "aqi", "period": "2024-05-01", "admin_unit": "74", "value": 58}),
    )
    .await?;
    let paths = [
        "/api/v1/entities",
        "/api/v1/admin-units",
        "/api/v1/domains",
        "/api/v1/indicators",
        "/api/v1/indicators/aqi/history?period=2024-05-01&admin_unit=74",
        "/api/v1/entities/urn:ngsi-ld:AirQualityObserved:t-1/latest",
        "/api/v1/series?entity=urn:ngsi-ld:AirQualityObserved:t-1&attribute=pm25&from=2024-04-01T00:00:00Z&to=2024-06-01T00:00:00Z",
    ];
    let mut before = Vec::new();
    for p in paths {
        before.push(srv.get(p, &admin).await?.1);
    }
    let (_, sources_before) = srv.get("/api/v1/sources", &admin).await?;
    let srv = srv.restart().await?;
    // Sessions survive a restart, and so does everything else.
    for (p, b) in paths.iter().zip(&before) {
        let (s, after) = srv.get(p, &admin).await?;
        assert_eq!(s, 200, "{p}");
        assert_eq!(&after, b, "{p} changed across a restart");
    }
    let (_, sources_after) = srv.get("/api/v1/sources", &admin).await?;
    assert_eq!(sources_after[0]["accepted"], sources_before[0]["accepted"]);
    assert_eq!(
        srv.post(
            "/api/v1/observations",
            &token,
            &json!([{"entity": e1, "attribute": "pm25", "value": 1}])
        )
        .await?
        .0,
        200
    );
    Ok(())
}
