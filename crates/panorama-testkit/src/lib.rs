//! A real Panorama server on an ephemeral port with a temporary data dir,
//! for integration tests that drive it over HTTP and WebSocket.

use anyhow::{Context, Result};
use futures::{SinkExt, StreamExt};
use panorama_core::{Clock, SystemClock};
use panorama_store::SharedStore;
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The rule engine crate, for [`TestOptions::rules`].
pub use panorama_rules;

/// Limits for a test server.
#[derive(Debug, Clone, Default)]
pub struct TestOptions {
    /// API limits.
    pub api: panorama_api::ApiConfig,
    /// Ingest limits.
    pub ingest: panorama_ingest::IngestOptions,
    /// Rule engine settings (channels, SLA, rules directory).
    pub rules: panorama_rules::RulesConfig,
}

/// A running server and the means to talk to it.
#[derive(Debug)]
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// The data dir (deleted when the server is dropped, unless kept).
    pub dir: Arc<tempfile::TempDir>,
    /// An HTTP client.
    pub http: reqwest::Client,
    /// The store the server runs on.
    pub store: SharedStore,
    opts: TestOptions,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a server on a fresh data dir.
    pub async fn start() -> Result<Self> {
        Self::start_with(TestOptions::default()).await
    }

    /// Starts a server on a fresh data dir with the given limits.
    pub async fn start_with(opts: TestOptions) -> Result<Self> {
        let dir = Arc::new(tempfile::tempdir()?);
        Self::start_in(dir, opts).await
    }

    async fn start_in(dir: Arc<tempfile::TempDir>, opts: TestOptions) -> Result<Self> {
        let store: SharedStore =
            Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).await?);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let (stop, stopped) = oneshot::channel::<()>();
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let task = tokio::spawn(panorama_api::serve_with_rules(
            listener,
            store.clone(),
            clock,
            opts.api.clone(),
            opts.ingest.clone(),
            opts.rules.clone(),
            async move {
                let _ = stopped.await;
            },
        ));
        Ok(Self {
            base,
            dir,
            http: reqwest::Client::new(),
            store,
            opts,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The data dir.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully and closes its store.
    pub async fn stop(&mut self) -> Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await??;
        }
        self.store.close().await?;
        Ok(())
    }

    /// Stops the server and starts a new one on the same data dir.
    pub async fn restart(mut self) -> Result<Self> {
        self.stop().await?;
        let dir = self.dir.clone();
        let opts = self.opts.clone();
        Self::start_in(dir, opts).await
    }

    /// Creates an admin user directly in the store and signs in; returns the session token.
    pub async fn admin(&self) -> Result<String> {
        self.user("admin", panorama_core::Role::Admin).await
    }

    /// Creates a user with `role` and signs in; returns the session token.
    pub async fn user(&self, name: &str, role: panorama_core::Role) -> Result<String> {
        let new = panorama_api::provision::NewUser {
            username: name.into(),
            display_name: None,
            role: Some(role),
            agency: None,
            password: "correct horse battery".into(),
        };
        panorama_api::provision::create_user(self.store.as_ref(), new, SystemClock.now())
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let r = self
            .http
            .post(self.url("/api/v1/auth/login"))
            .json(&json!({"username": name, "password": "correct horse battery"}))
            .send()
            .await?;
        anyhow::ensure!(r.status() == 200, "login failed: {}", r.text().await?);
        let v: Value = r.json().await?;
        v["token"]
            .as_str()
            .map(String::from)
            .context("no token in login answer")
    }

    /// Registers a source directly in the store; returns its write token.
    pub async fn source(&self, id: &str) -> Result<String> {
        let new = panorama_api::provision::NewSource {
            id: id.into(),
            name: format!("Test source {id}"),
            kind: None,
            owner_agency: None,
            domain: None,
            expected_interval_secs: Some(60),
            connector: None,
        };
        let (_, token) =
            panorama_api::provision::create_source(self.store.as_ref(), new, SystemClock.now())
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        Ok(token)
    }

    /// GET with a bearer token; returns status and JSON (or text as a JSON string).
    pub async fn get(&self, path: &str, token: &str) -> Result<(u16, Value)> {
        let r = self
            .http
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await?;
        answer(r).await
    }

    /// POST JSON with a bearer token.
    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .json(body)
            .send()
            .await?;
        answer(r).await
    }

    /// POST raw bytes with a content type and bearer token.
    pub async fn post_raw(
        &self,
        path: &str,
        token: &str,
        content_type: &str,
        body: impl Into<reqwest::Body>,
    ) -> Result<(u16, Value)> {
        let r = self
            .http
            .post(self.url(path))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await?;
        answer(r).await
    }

    /// Seeds a small province: country VN, province 74 with districts 718
    /// and 724, and three air-quality sensors. Returns the source token used.
    pub async fn seed(&self, admin: &str) -> Result<String> {
        let square = |x: f64, y: f64| json!({"type": "Polygon", "coordinates": [[[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1], [x, y]]]});
        let units = json!([
            {"code": "VN", "name": "Việt Nam", "level": "country"},
            {"code": "74", "name": "Bình Dương", "level": "province", "parent": "VN", "geometry": square(106.6, 10.9)},
            {"code": "718", "name": "Thủ Dầu Một", "level": "district", "parent": "74", "geometry": square(106.6, 10.95)},
            {"code": "724", "name": "Dĩ An", "level": "district", "parent": "74", "geometry": square(106.7, 10.9)}
        ]);
        let (s, b) = self.post("/api/v1/admin-units", admin, &units).await?;
        anyhow::ensure!(s == 204, "seeding admin units: {s} {b}");
        let token = self.source("seed").await?;
        let sensor = |n: u32, unit: &str, lon: f64, lat: f64, name: &str| {
            json!({"id": format!("urn:ngsi-ld:AirQualityObserved:t-{n}"), "type": "AirQualityObserved", "name": name,
                "domain": "environment", "admin_unit": unit, "location": {"type": "Point", "coordinates": [lon, lat]},
                "attributes": {"pm25": {"type": "number", "unit": "µg/m3"}, "status": {"type": "text"}, "online": {"type": "boolean"}, "raw": {"type": "json"}}})
        };
        let entities = json!([
            sensor(1, "718", 106.65, 10.99, "Trạm Phú Cường"),
            sensor(2, "718", 106.66, 11.0, "Trạm Chánh Nghĩa"),
            sensor(3, "724", 106.75, 10.95, "Trạm Dĩ An")
        ]);
        let (s, b) = self.post("/api/v1/entities", &token, &entities).await?;
        anyhow::ensure!(s == 200, "seeding entities: {s} {b}");
        Ok(token)
    }

    /// Opens a WebSocket to `/api/v1/live` with a session token.
    pub async fn live(&self, session: &str) -> Result<LiveClient> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let url = format!("{}/api/v1/live", self.base.replacen("http", "ws", 1));
        let mut req = url.into_client_request()?;
        req.headers_mut()
            .insert("authorization", format!("Bearer {session}").parse()?);
        let (ws, _) = tokio_tungstenite::connect_async(req).await?;
        let mut c = LiveClient { ws };
        let hello = c.next(Duration::from_secs(5)).await?;
        anyhow::ensure!(hello["type"] == "hello", "expected hello, got {hello}");
        Ok(c)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

async fn answer(r: reqwest::Response) -> Result<(u16, Value)> {
    let status = r.status().as_u16();
    let text = r.text().await?;
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Ok((status, v))
}

/// A WebSocket client of the live stream.
#[derive(Debug)]
pub struct LiveClient {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl LiveClient {
    /// Sends a JSON message.
    pub async fn send(&mut self, v: Value) -> Result<()> {
        self.ws
            .send(tokio_tungstenite::tungstenite::Message::Text(
                v.to_string().into(),
            ))
            .await?;
        Ok(())
    }

    /// The next JSON message, waiting at most `within`.
    pub async fn next(&mut self, within: Duration) -> Result<Value> {
        loop {
            let msg = tokio::time::timeout(within, self.ws.next())
                .await
                .context("no live message in time")?
                .context("the live stream closed")??;
            if let tokio_tungstenite::tungstenite::Message::Text(t) = msg {
                return Ok(serde_json::from_str(t.as_str())?);
            }
        }
    }

    /// Waits for a message of `kind`, skipping others.
    pub async fn next_of(&mut self, kind: &str, within: Duration) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            let m = self.next(left).await?;
            if m["type"] == kind {
                return Ok(m);
            }
        }
    }

    /// Whether a message arrives within `within`.
    pub async fn quiet_for(&mut self, within: Duration) -> bool {
        self.next(within).await.is_err()
    }
}

/// The path of a fresh temporary directory that outlives the returned guard.
pub fn temp_dir() -> Result<(tempfile::TempDir, PathBuf)> {
    let d = tempfile::tempdir()?;
    let p = d.path().to_path_buf();
    Ok((d, p))
}
