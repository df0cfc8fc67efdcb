//! `panorama demo` end to end: the real binary builds the Binh Duong demo,
//! serves it, and its simulator's data arrives through the ingest API and
//! shows up live. A second run reuses the data dir.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_panorama");

struct Demo {
    child: Child,
    lines: Vec<String>,
    base: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(dir: &std::path::Path, extra: &[&str]) -> Demo {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(BIN)
        .args([
            "demo",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(dir)
        .args(extra)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let tx2 = tx.clone();
    std::thread::spawn(move || {
        for l in stdout.lines().map_while(Result::ok) {
            let _ = tx.send(l);
        }
    });
    std::thread::spawn(move || {
        for l in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx2.send(l);
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(600);
    while !lines.iter().any(|l: &String| {
        l.contains("SUCCESSION") || l.contains("Hồ Chí Minh") || l.contains("Ho Chi Minh")
    }) {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("the demo did not become ready: {lines:#?}"),
        }
    }
    Demo {
        child,
        lines,
        base: format!("http://127.0.0.1:{port}"),
    }
}

fn password_of(lines: &[String], user: &str) -> String {
    let l = lines
        .iter()
        .find(|l| l.trim_start().starts_with(&format!("login {user} ")))
        .unwrap_or_else(|| panic!("no login line for {user}: {lines:#?}"));
    let after = l.split("password").nth(1).unwrap();
    after.split_whitespace().next().unwrap().to_string()
}

async fn get(http: &reqwest::Client, base: &str, session: &str, path: &str) -> Value {
    let r = http
        .get(format!("{base}{path}"))
        .bearer_auth(session)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_is_a_living_province_and_reuses_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let demo_dir = dir.path().join("demo");
    let demo = start(&demo_dir, &["--backfill-days", "1", "--rate", "300"]);
    assert!(
        demo.lines.iter().any(|l| l.contains("Building")),
        "a new demo is built: {:#?}",
        demo.lines
    );
    let http = reqwest::Client::new();
    let password = password_of(&demo.lines, "admin");
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", demo.base))
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = login["token"]
        .as_str()
        .expect("the printed login works")
        .to_string();
    let (base, s) = (demo.base.as_str(), session.as_str());

    // Geography: the province, its nine districts, and its successor.
    let units = get(&http, base, s, "/api/v1/admin-units?geometry=false").await;
    let units = units.as_array().unwrap();
    let districts: Vec<&Value> = units
        .iter()
        .filter(|u| u["level"] == "district" && u["parent"] == "74")
        .collect();
    assert_eq!(districts.len(), 9);
    let p74 = units.iter().find(|u| u["code"] == "74").unwrap();
    assert_eq!(p74["successors"], json!(["79"]));
    assert_eq!(p74["valid_to"], "2025-07-01");

    // Every domain has indicators with targets and history.
    let domains = get(&http, base, s, "/api/v1/domains").await;
    let indicators = get(&http, base, s, "/api/v1/indicators").await;
    let indicators = indicators.as_array().unwrap();
    assert!(indicators.len() >= 60);
    let mut colours = HashSet::new();
    for d in domains.as_array().unwrap() {
        let of: Vec<&Value> = indicators
            .iter()
            .filter(|i| i["domain"] == d["code"])
            .collect();
        assert!(
            of.len() >= 2,
            "domain {} has {} indicators",
            d["code"],
            of.len()
        );
        for i in of {
            assert!(
                !i["targets"].as_object().unwrap().is_empty(),
                "{} has no targets",
                i["code"]
            );
            assert!(
                i["trend"].as_array().unwrap().len() >= 2,
                "{} has no history",
                i["code"]
            );
            colours.insert(
                i["latest"]["status_colour"]
                    .as_str()
                    .unwrap_or("none")
                    .to_string(),
            );
        }
    }
    for c in ["green", "amber", "red"] {
        assert!(colours.contains(c), "no indicator is {c}");
    }

    // Rules and SOPs come with the demo, so its events become alerts and incidents.
    let rules = get(&http, base, s, "/api/v1/rules").await;
    assert!(rules.as_array().is_some_and(|r| r.len() >= 5), "{rules}");
    let sops = get(&http, base, s, "/api/v1/sops").await;
    assert!(
        sops.as_array()
            .is_some_and(|r| r.iter().any(|x| x["incident_type"] == "flood")),
        "{sops}"
    );

    // Sensors and cameras in every district.
    let mut per_district: HashMap<String, (usize, usize)> = HashMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/entities?limit=1000&cursor={c}"),
            None => "/api/v1/entities?limit=1000".into(),
        };
        let page = get(&http, base, s, &path).await;
        for e in page["items"].as_array().unwrap() {
            let entry = per_district
                .entry(e["admin_unit"].as_str().unwrap_or("").to_string())
                .or_default();
            if e["type"] == "Camera" {
                entry.1 += 1;
            } else {
                entry.0 += 1;
            }
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let sensors: usize = per_district.values().map(|v| v.0).sum();
    let cameras: usize = per_district.values().map(|v| v.1).sum();
    assert!(
        sensors >= 2000 && cameras >= 300,
        "{sensors} sensors, {cameras} cameras"
    );
    for d in &districts {
        let (s_, c) = per_district
            .get(d["code"].as_str().unwrap())
            .copied()
            .unwrap_or_default();
        assert!(
            s_ > 0 && c > 0,
            "district {} has {s_} sensors and {c} cameras",
            d["code"]
        );
    }

    // The simulator's data arrives through the ingest API and shows up live.
    let ws_url = format!("{}/api/v1/live", base.replacen("http", "ws", 1));
    let mut req =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(ws_url)
            .unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {s}").parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.unwrap();
    ws.send(tokio_tungstenite::tungstenite::Message::Text(
        json!({"op": "subscribe", "id": "all"}).to_string().into(),
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut live_items = 0;
    while live_items == 0 && Instant::now() < deadline {
        if let Ok(Some(Ok(tokio_tungstenite::tungstenite::Message::Text(t)))) =
            tokio::time::timeout(Duration::from_secs(5), ws.next()).await
        {
            let m: Value = serde_json::from_str(t.as_str()).unwrap();
            if m["type"] == "observations" {
                live_items += m["items"].as_array().unwrap().len();
            }
        }
    }
    assert!(
        live_items > 0,
        "no simulated observation arrived live within two minutes"
    );
    let sources = get(&http, base, s, "/api/v1/sources").await;
    let sources = sources.as_array().unwrap();
    assert!(sources.len() >= 20);
    assert!(
        sources.iter().all(|x| x["rejected"] == 0),
        "the simulator's data is all accepted"
    );
    drop(demo);

    // A second run reuses the data dir instead of rebuilding it.
    let again = start(&demo_dir, &["--no-simulator"]);
    assert!(
        !again.lines.iter().any(|l| l.contains("Building")),
        "{:#?}",
        again.lines
    );
    assert!(again.lines.iter().any(|l| l.contains("ready in")));
}
