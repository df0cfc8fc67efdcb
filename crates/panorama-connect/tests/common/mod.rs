//! A real Mosquitto for the tests: started on a free port with its own
//! config and persistence dir, so a test can kill and restart it.
#![allow(dead_code)]

use anyhow::{Context, Result, bail};
use panorama_connect::{ConnectionState, ConnectorStatus, Connectors};
use panorama_core::{Clock, Source, SourceKind, SystemClock};
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_store::{RawPoint, SeriesData, SeriesQuery, SharedStore};
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use serde_json::Value;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where the mosquitto binary is: `MOSQUITTO`, the PATH, or the usual
/// Debian location (sbin is often not on a user's PATH).
pub fn mosquitto_binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("MOSQUITTO") {
        return Some(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/usr/local/sbin".into()])
        .map(|d| d.join("mosquitto"))
        .find(|p| p.is_file())
}

/// The broker binary, or `None` after saying the test is skipped. Under
/// CI (`CI=true`) a missing broker fails the test instead.
pub fn mosquitto_or_skip() -> Option<PathBuf> {
    match mosquitto_binary() {
        Some(p) => Some(p),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!(
                "mosquitto is missing: install it (apt-get install mosquitto) or set MOSQUITTO to its path"
            )
        }
        None => {
            eprintln!("SKIPPED: mosquitto missing (install it or set MOSQUITTO)");
            None
        }
    }
}

/// A Mosquitto process of the test's own.
pub struct Broker {
    bin: PathBuf,
    pub port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

impl Broker {
    /// Starts a broker on a free port with persistence in a temp dir.
    pub async fn start(bin: PathBuf) -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let port = free_port()?;
        let mut b = Self {
            bin,
            port,
            dir,
            child: None,
        };
        b.launch().await?;
        Ok(b)
    }

    async fn launch(&mut self) -> Result<()> {
        let conf = self.dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location {dir}/\nmax_inflight_messages 1000\nmax_queued_messages 100000\n",
                port = self.port,
                dir = self.dir.path().display()
            ),
        )?;
        let child = Command::new(&self.bin)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", self.bin.display()))?;
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("mosquitto did not listen on {} in 10 s", self.port);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    /// Kills the broker at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the broker again on the same port and persistence dir.
    pub async fn restart(&mut self) -> Result<()> {
        self.kill();
        self.launch().await
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Publishes one message and waits for the broker to take it (PUBACK for QoS 1).
pub async fn publish(port: u16, topic: &str, payload: impl Into<Vec<u8>>, qos: QoS) -> Result<()> {
    publish_many(port, &[(topic.to_string(), payload.into())], qos).await
}

/// Publishes messages in order and waits until the broker took them all.
pub async fn publish_many(port: u16, msgs: &[(String, Vec<u8>)], qos: QoS) -> Result<()> {
    let id = format!("test-pub-{}", uuid_like());
    let mut o = MqttOptions::new(id, "127.0.0.1", port);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_max_packet_size(1024 * 1024, 1024 * 1024);
    let (client, mut ev) = AsyncClient::new(o, msgs.len() + 10);
    for (t, p) in msgs {
        client.publish(t.clone(), qos, false, p.clone()).await?;
    }
    let mut acked = 0;
    let mut sent = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while (qos == QoS::AtMostOnce && sent < msgs.len())
        || (qos != QoS::AtMostOnce && acked < msgs.len())
    {
        let e = tokio::time::timeout_at(deadline, ev.poll())
            .await
            .context("publishing timed out")??;
        match e {
            Event::Incoming(Packet::PubAck(_) | Packet::PubComp(_)) => acked += 1,
            Event::Outgoing(rumqttc::Outgoing::Publish(_)) => sent += 1,
            _ => {}
        }
    }
    client.disconnect().await?;
    // Let the disconnect go out.
    let _ = tokio::time::timeout(Duration::from_millis(200), ev.poll()).await;
    Ok(())
}

fn uuid_like() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A store in a temp dir and the pipeline over it.
pub struct Panorama {
    pub dir: tempfile::TempDir,
    pub store: SharedStore,
    pub clock: Arc<dyn Clock>,
}

impl Panorama {
    pub async fn open() -> Result<Self> {
        let dir = tempfile::tempdir()?;
        let store: SharedStore =
            Arc::new(SqliteStore::open(dir.path(), SqliteOptions::default()).await?);
        Ok(Self {
            dir,
            store,
            clock: Arc::new(SystemClock),
        })
    }

    pub fn ingest(&self, opts: IngestOptions) -> Ingest {
        Ingest::new(
            self.store.clone(),
            EventBus::new(1024),
            self.clock.clone(),
            opts,
        )
    }

    /// Registers an MQTT source in the environment domain.
    pub async fn mqtt_source(&self, id: &str, connector: Value) -> Result<Source> {
        self.add_source(id, SourceKind::Mqtt, "environment", connector)
            .await
    }

    /// Registers a source of `kind` in `domain`.
    pub async fn add_source(
        &self,
        id: &str,
        kind: SourceKind,
        domain: &str,
        connector: Value,
    ) -> Result<Source> {
        let s = Source {
            id: id.into(),
            name: format!("{} {id}", kind.as_str()),
            kind,
            owner_agency: None,
            domain: Some(domain.into()),
            expected_interval_secs: 300,
            created_at: self.clock.now(),
            last_seen_at: None,
            accepted: 0,
            rejected: 0,
            last_error: None,
            connector: Some(connector),
        };
        let mut token = [0u8; 32];
        for (i, b) in id.bytes().enumerate() {
            token[i % 32] ^= b;
        }
        token[31] = token[31].wrapping_add(1);
        self.store.create_source(&s, &token).await?;
        Ok(s)
    }

    pub async fn source(&self, id: &str) -> Result<Source> {
        self.store
            .sources()
            .await?
            .into_iter()
            .find(|s| s.id == id)
            .context("no such source")
    }

    /// Raw points of a series (empty when it does not exist yet).
    pub async fn points(&self, entity: &str, attribute: &str) -> Vec<RawPoint> {
        let q = SeriesQuery {
            entity: entity.into(),
            attribute: attribute.into(),
            from: chrono::DateTime::from_timestamp(0, 0).unwrap_or_default(),
            to: self.clock.now() + chrono::Duration::days(2),
            bucket: None,
            limit: 10_000,
        };
        match self.store.series(&q).await {
            Ok(SeriesData::Raw(p)) => p,
            _ => Vec::new(),
        }
    }

    /// Waits until the series has at least `n` points.
    pub async fn wait_points(
        &self,
        entity: &str,
        attribute: &str,
        n: usize,
    ) -> Result<Vec<RawPoint>> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let p = self.points(entity, attribute).await;
            if p.len() >= n {
                return Ok(p);
            }
            if Instant::now() > deadline {
                bail!(
                    "{entity}/{attribute}: {} points after 20 s, expected {n}",
                    p.len()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until the connector's status satisfies `f`.
pub async fn wait_status(
    c: &Connectors,
    id: &str,
    what: &str,
    f: impl Fn(&ConnectorStatus) -> bool,
) -> Result<ConnectorStatus> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.status(id);
        if let Some(s) = &s
            && f(s)
        {
            return Ok(s.clone());
        }
        if Instant::now() > deadline {
            bail!("{id}: not {what} after 20 s: {s:?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits until the connector is connected (and so subscribed soon after).
pub async fn wait_connected(c: &Connectors, id: &str) -> Result<ConnectorStatus> {
    let s = wait_status(c, id, "connected", |s| {
        s.state == ConnectionState::Connected
    })
    .await?;
    // Connected means the broker acknowledged the subscriptions.
    tokio::time::sleep(Duration::from_millis(50)).await;
    Ok(s)
}

/// What the test HTTP endpoint answers; the test changes it while the
/// connector polls.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub body: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    /// Waits this long before answering.
    pub delay: Duration,
}

impl Answer {
    pub fn json(body: Value) -> Self {
        Self {
            status: 200,
            content_type: "application/json".into(),
            body: body.to_string(),
            etag: None,
            last_modified: None,
            delay: Duration::ZERO,
        }
    }

    pub fn csv(body: &str) -> Self {
        Self {
            content_type: "text/csv; charset=utf-8".into(),
            body: body.into(),
            ..Self::json(Value::Null)
        }
    }
}

/// One request the endpoint saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub if_none_match: Option<String>,
    pub if_modified_since: Option<String>,
    pub authorization: Option<String>,
    /// Whether it was answered 304.
    pub not_modified: bool,
}

/// A real HTTP server on an ephemeral port.
pub struct Endpoint {
    pub url: String,
    answer: Arc<std::sync::Mutex<Answer>>,
    seen: Arc<std::sync::Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Endpoint {
    pub async fn start(answer: Answer) -> Result<Self> {
        use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
        use axum::response::IntoResponse;
        let answer = Arc::new(std::sync::Mutex::new(answer));
        let seen: Arc<std::sync::Mutex<Vec<Seen>>> = Arc::default();
        let (a, s) = (answer.clone(), seen.clone());
        let handler = move |headers: HeaderMap| {
            let a = a.lock().unwrap().clone();
            let s = s.clone();
            async move {
                tokio::time::sleep(a.delay).await;
                let get = |n: header::HeaderName| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_string)
                };
                let inm = get(header::IF_NONE_MATCH);
                let ims = get(header::IF_MODIFIED_SINCE);
                let not_modified = (a.etag.is_some() && inm == a.etag)
                    || (a.last_modified.is_some() && ims == a.last_modified);
                s.lock().unwrap().push(Seen {
                    if_none_match: inm,
                    if_modified_since: ims,
                    authorization: get(header::AUTHORIZATION),
                    not_modified,
                });
                let mut h = HeaderMap::new();
                if let Some(e) = &a.etag {
                    h.insert(header::ETAG, HeaderValue::from_str(e).unwrap());
                }
                if let Some(m) = &a.last_modified {
                    h.insert(header::LAST_MODIFIED, HeaderValue::from_str(m).unwrap());
                }
                if not_modified {
                    return (StatusCode::NOT_MODIFIED, h).into_response();
                }
                h.insert(
                    header::CONTENT_TYPE,
                    HeaderValue::from_str(&a.content_type).unwrap(),
                );
                (StatusCode::from_u16(a.status).unwrap(), h, a.body).into_response()
            }
        };
        let app = axum::Router::new().route("/feed", axum::routing::get(handler));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/feed", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url,
            answer,
            seen,
            task,
        })
    }

    /// Changes what the endpoint answers from now on.
    pub fn set(&self, f: impl FnOnce(&mut Answer)) {
        f(&mut self.answer.lock().unwrap());
    }

    /// The requests seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Panorama {
    /// Registers a poll source in the water domain.
    pub async fn poll_source(&self, id: &str, connector: Value) -> Result<Source> {
        self.add_source(id, SourceKind::Poll, "water", connector)
            .await
    }
}

/// Waits until the polled source's status satisfies `f`.
pub async fn wait_poll(
    c: &Connectors,
    id: &str,
    what: &str,
    f: impl Fn(&panorama_connect::PollStatus) -> bool,
) -> Result<panorama_connect::PollStatus> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let s = c.poll_status(id);
        if let Some(s) = &s
            && f(s)
        {
            return Ok(s.clone());
        }
        if Instant::now() > deadline {
            bail!("{id}: not {what} after 20 s: {s:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
