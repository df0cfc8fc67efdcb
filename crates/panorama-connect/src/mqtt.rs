//! The MQTT connector: a client of the site's broker per MQTT source.
//!
//! Two tasks per source. The *poller* drives the rumqttc event loop
//! (connect, keep-alive, reconnect with back-off, resubscribe) and hands
//! every PUBLISH to the *worker* through a bounded channel. The worker
//! takes whatever has arrived (a batch), maps it, writes it through
//! [`Ingest`] and only then acknowledges the QoS 1/2 messages, so a message
//! is acknowledged to the broker only once it is durable. The session is
//! persistent (`clean_session = false`): what was received but not
//! acknowledged when Panorama died is delivered again.
//!
//! The worker never waits on rumqttc's request channel (acks go with
//! `try_ack`, and those that do not fit are retried), so the poller, which
//! empties that channel, and the worker can never wait on each other.

use crate::config::{MqttConfig, TlsOptions};
use crate::entities::{Policy, Record, Resolver};
use crate::mapping::{Mapped, Message, sample};
use panorama_core::{Clock, Invalid, Observation, Timestamp};
use panorama_ingest::{Ingest, IngestError};
use panorama_store::StoreError;
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, Publish, QoS, SubscribeFilter};
use serde::Serialize;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// The connection to the broker, as a duty operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConnectionState {
    /// Connecting for the first time.
    Connecting,
    /// Connected and subscribed.
    Connected,
    /// The connection failed or dropped; trying again after a back-off.
    Reconnecting,
    /// The connector cannot run as configured (e.g. an unreadable CA file).
    Failed,
}

/// The live state of one connector.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ConnectorStatus {
    /// `mqtt`.
    pub protocol: String,
    /// `host:port` of the broker.
    pub broker: String,
    /// Connection state.
    pub state: ConnectionState,
    /// Since when the connection is in this state.
    pub since: chrono::DateTime<chrono::Utc>,
    /// The last connection or write problem (cleared on reconnect).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Messages received since the connector started.
    pub messages: u64,
    /// Messages refused since the connector started (malformed, unmappable).
    pub rejected_messages: u64,
    /// When the last message arrived.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_message_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Shared, updated by the connector's tasks and read by the API.
pub(crate) type StatusCell = Arc<Mutex<ConnectorStatus>>;

fn update(cell: &StatusCell, f: impl FnOnce(&mut ConnectorStatus)) {
    if let Ok(mut s) = cell.lock() {
        f(&mut s);
    }
}

impl ConnectorStatus {
    pub(crate) fn new(broker: String, now: Timestamp) -> Self {
        Self {
            protocol: "mqtt".into(),
            broker,
            state: ConnectionState::Connecting,
            since: now,
            last_error: None,
            messages: 0,
            rejected_messages: 0,
            last_message_at: None,
        }
    }
}

/// Grows the wait between tries from `min` to `max`, doubling.
#[derive(Debug)]
struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }
    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.max);
        d
    }
    fn reset(&mut self) {
        self.next = self.min;
    }
}

/// The largest packet MQTT can carry (its remaining-length limit).
const MAX_MQTT_PACKET: usize = 268_435_455;

/// Longest payload sample kept in logs and errors.
const SAMPLE_BYTES: usize = 160;

/// One received message.
struct Received {
    publish: Publish,
    at: Timestamp,
}

/// What the connector needs from its surroundings.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub source: String,
    /// Domain given to entities the connector creates; none: it creates none.
    pub domain: Option<String>,
    pub ingest: Ingest,
    pub clock: Arc<dyn Clock>,
    pub status: StatusCell,
}

fn qos(q: u8) -> QoS {
    match q {
        0 => QoS::AtMostOnce,
        2 => QoS::ExactlyOnce,
        _ => QoS::AtLeastOnce,
    }
}

fn mqtt_options(source: &str, cfg: &MqttConfig) -> Result<MqttOptions, String> {
    let client_id = cfg
        .client_id
        .clone()
        .unwrap_or_else(|| format!("panorama-{source}"));
    let mut o = MqttOptions::new(client_id, cfg.host.clone(), cfg.port());
    o.set_keep_alive(Duration::from_secs(
        cfg.keep_alive_secs.unwrap_or(30).max(5),
    ));
    // A persistent session: the broker keeps the subscriptions and what was
    // sent but not acknowledged while Panorama was away.
    o.set_clean_session(false);
    o.set_manual_acks(true);
    // Accept any size MQTT allows: a message refused by the client would
    // drop the connection and come back forever; the mapping refuses what
    // is too large instead.
    o.set_max_packet_size(MAX_MQTT_PACKET, 64 * 1024);
    if let (Some(u), p) = (&cfg.username, &cfg.password) {
        o.set_credentials(u.clone(), p.clone().unwrap_or_default());
    }
    if let Some(tls) = &cfg.tls {
        o.set_transport(rumqttc::Transport::tls_with_config(tls_config(tls)?));
    }
    Ok(o)
}

fn tls_config(tls: &TlsOptions) -> Result<rumqttc::TlsConfiguration, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&tls.ca_file)
        .map_err(|e| format!("cannot read the CA file {}: {e}", tls.ca_file))?;
    for cert in certs {
        let cert = cert.map_err(|e| format!("the CA file {} is not PEM: {e}", tls.ca_file))?;
        roots
            .add(cert)
            .map_err(|e| format!("a certificate in {} is not usable: {e}", tls.ca_file))?;
    }
    if roots.is_empty() {
        return Err(format!("the CA file {} holds no certificate", tls.ca_file));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(rumqttc::TlsConfiguration::Rustls(Arc::new(config)))
}

/// Runs the connector of one source until the returned task is aborted.
pub(crate) fn spawn(cfg: MqttConfig, env: Env) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let opts = match mqtt_options(&env.source, &cfg) {
            Ok(o) => o,
            Err(e) => {
                tracing::error!(source = %env.source, error = %e, "MQTT connector cannot start");
                let now = env.clock.now();
                update(&env.status, |s| {
                    s.state = ConnectionState::Failed;
                    s.since = now;
                    s.last_error = Some(e);
                });
                return;
            }
        };
        let (client, eventloop) = AsyncClient::new(opts, 4096);
        let (tx, rx) = mpsc::channel(4096);
        let worker = Worker {
            cfg: cfg.clone(),
            env: env.clone(),
            client: client.clone(),
            resolver: Resolver::default(),
            owed: VecDeque::new(),
        };
        let worker = tokio::spawn(worker.run(rx));
        poll(cfg, env, client, eventloop, tx).await;
        worker.abort();
    })
}

async fn poll(
    cfg: MqttConfig,
    env: Env,
    client: AsyncClient,
    mut eventloop: rumqttc::EventLoop,
    tx: mpsc::Sender<Received>,
) {
    let filters: Vec<SubscribeFilter> = cfg
        .topics
        .iter()
        .map(|t| SubscribeFilter::new(t.filter.clone(), qos(t.qos)))
        .collect();
    let mut backoff = Backoff::new(Duration::from_millis(250), Duration::from_secs(30));
    let mut ever_connected = false;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                ever_connected = true;
                backoff.reset();
                update(&env.status, |s| s.last_error = None);
                tracing::info!(source = %env.source, session_present = ack.session_present, "MQTT connected");
                // A resumed session keeps its subscriptions; subscribing
                // again is harmless and covers a broker that lost them.
                if client.try_subscribe_many(filters.clone()).is_err() {
                    let c = client.clone();
                    let f = filters.clone();
                    tokio::spawn(async move { c.subscribe_many(f).await });
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                let now = env.clock.now();
                update(&env.status, |s| {
                    if s.state != ConnectionState::Connected {
                        s.since = now;
                    }
                    s.state = ConnectionState::Connected;
                });
                let refused: Vec<&str> = ack
                    .return_codes
                    .iter()
                    .zip(&cfg.topics)
                    .filter(|(c, _)| matches!(c, rumqttc::SubscribeReasonCode::Failure))
                    .map(|(_, t)| t.filter.as_str())
                    .collect();
                if !refused.is_empty() {
                    let e = format!(
                        "the broker refused the subscription to {}",
                        refused.join(", ")
                    );
                    tracing::warn!(source = %env.source, error = %e, "MQTT subscription refused");
                    update(&env.status, |s| s.last_error = Some(e));
                }
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                metrics::counter!("panorama_mqtt_messages_total").increment(1);
                let at = env.clock.now();
                update(&env.status, |s| {
                    s.messages += 1;
                    s.last_message_at = Some(at);
                });
                // Waits when the worker is behind: back-pressure to the broker.
                if tx.send(Received { publish, at }).await.is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(e) => {
                let wait = backoff.next();
                let now = env.clock.now();
                let msg = e.to_string();
                tracing::warn!(source = %env.source, error = %msg, retry_in_ms = wait.as_millis() as u64, "MQTT connection problem");
                let state = if ever_connected {
                    ConnectionState::Reconnecting
                } else {
                    ConnectionState::Connecting
                };
                update(&env.status, |s| {
                    if s.state != state {
                        s.since = now;
                    }
                    s.state = state;
                    s.last_error = Some(msg);
                });
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Maps, writes and acknowledges batches of messages.
struct Worker {
    cfg: MqttConfig,
    env: Env,
    client: AsyncClient,
    /// Entities known to exist, with their attributes.
    resolver: Resolver,
    /// Messages made durable (or refused for good) whose acknowledgement did
    /// not fit into the client's request channel yet.
    owed: VecDeque<Publish>,
}

/// A message on its way through a batch.
struct Item {
    publish: Publish,
    mapped: Option<Mapped>,
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Received>) {
        let max_batch = self.cfg.max_batch.unwrap_or(1000).max(1);
        loop {
            let first = if self.owed.is_empty() {
                rx.recv().await
            } else {
                match tokio::time::timeout(Duration::from_millis(5), rx.recv()).await {
                    Ok(m) => m,
                    Err(_) => {
                        self.flush_acks();
                        continue;
                    }
                }
            };
            let Some(first) = first else { return };
            let mut batch = vec![first];
            while batch.len() < max_batch {
                match rx.try_recv() {
                    Ok(m) => batch.push(m),
                    Err(_) => break,
                }
            }
            self.process(batch).await;
            self.flush_acks();
        }
    }

    fn flush_acks(&mut self) {
        while let Some(p) = self.owed.front() {
            match self.client.try_ack(p) {
                Ok(()) => {
                    self.owed.pop_front();
                }
                Err(rumqttc::ClientError::TryRequest(_)) => break,
                // The event loop is gone: the connector is stopping.
                Err(_) => {
                    self.owed.clear();
                    break;
                }
            }
        }
    }

    fn reject(&self, publish: &Publish, why: &Invalid) {
        let error = format!(
            "topic '{}': {why}",
            crate::mapping::truncate(&publish.topic, 128)
        );
        tracing::warn!(
            source = %self.env.source,
            topic = %publish.topic,
            error = %why,
            sample = %sample(&publish.payload, SAMPLE_BYTES),
            "MQTT message refused"
        );
        metrics::counter!("panorama_mqtt_rejected_total").increment(1);
        update(&self.env.status, |s| s.rejected_messages += 1);
        self.env.ingest.reject(
            &self.env.source,
            1,
            format!(
                "{error} (payload: {})",
                sample(&publish.payload, SAMPLE_BYTES)
            ),
        );
    }

    async fn process(&mut self, batch: Vec<Received>) {
        let mut items: Vec<Item> = batch
            .into_iter()
            .map(|r| {
                let msg = Message {
                    topic: &r.publish.topic,
                    payload: &r.publish.payload,
                    received: r.at,
                };
                let mapped = self.cfg.mapping.map(msg);
                match mapped {
                    Ok(m) => Item {
                        publish: r.publish,
                        mapped: Some(m),
                    },
                    Err(e) => {
                        self.reject(&r.publish, &e);
                        Item {
                            publish: r.publish,
                            mapped: None,
                        }
                    }
                }
            })
            .collect();
        let mut backoff = Backoff::new(Duration::from_millis(100), Duration::from_secs(10));
        let mut failed = false;
        loop {
            match self.commit(&mut items).await {
                Ok(()) => {
                    if failed {
                        update(&self.env.status, |s| s.last_error = None);
                    }
                    break;
                }
                Err(e) => {
                    // Not durable: nothing is acknowledged, and the same
                    // batch is tried again (the broker would redeliver it
                    // anyway if Panorama stopped now).
                    let wait = backoff.next();
                    let msg = format!("cannot store messages yet: {e}");
                    tracing::warn!(source = %self.env.source, error = %msg, retry_in_ms = wait.as_millis() as u64, "MQTT batch not stored");
                    update(&self.env.status, |s| s.last_error = Some(msg));
                    failed = true;
                    tokio::time::sleep(wait).await;
                }
            }
        }
        self.owed.extend(items.into_iter().map(|i| i.publish));
    }

    /// Makes the mapped messages durable. Messages that cannot be stored
    /// for good (unknown entity, wrong type) are refused and dropped from
    /// `items`' mapped set; the error is only for failures worth retrying.
    async fn commit(&mut self, items: &mut [Item]) -> Result<(), IngestError> {
        self.resolve_entities(items).await?;
        let obs: Vec<Observation> = items
            .iter()
            .filter_map(|i| i.mapped.as_ref())
            .flat_map(|m| m.observations.iter().cloned())
            .collect();
        if obs.is_empty() {
            return Ok(());
        }
        match self.env.ingest.observations(&self.env.source, obs).await {
            Ok(_) => Ok(()),
            Err(IngestError::Store(StoreError::Invalid(_) | StoreError::NotFound { .. })) => {
                // Something changed under us (an entity was edited): store
                // message by message so one bad message costs only itself.
                for item in items.iter_mut() {
                    let Some(m) = &item.mapped else { continue };
                    match self
                        .env
                        .ingest
                        .observations(&self.env.source, m.observations.clone())
                        .await
                    {
                        Ok(_) => {}
                        Err(IngestError::Store(StoreError::Invalid(inv))) => {
                            self.resolver.forget();
                            self.reject(&item.publish, &inv);
                            item.mapped = None;
                        }
                        Err(IngestError::Store(e @ StoreError::NotFound { .. })) => {
                            self.resolver.forget();
                            self.reject(&item.publish, &Invalid::one("", e.to_string()));
                            item.mapped = None;
                        }
                        Err(e) => return Err(e),
                    }
                    // Stored: never write it twice if a later one fails.
                    item.mapped = None;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// Checks that every observed entity exists and declares the attribute
    /// with the value's type; creates or extends entities when allowed.
    /// Refused messages lose their mapping.
    async fn resolve_entities(&mut self, items: &mut [Item]) -> Result<(), IngestError> {
        let policy = Policy {
            source: self.env.source.clone(),
            domain: self.env.domain.clone(),
            create: self.cfg.create_entities,
        };
        let verdicts = {
            let records: Vec<Record<'_>> = items
                .iter()
                .filter_map(|i| i.mapped.as_ref())
                .map(|m| Record {
                    observations: &m.observations,
                    hints: &m.entities,
                })
                .collect();
            self.resolver
                .resolve(&self.env.ingest, &policy, &records)
                .await?
        };
        let mut verdicts = verdicts.into_iter();
        for item in items.iter_mut() {
            if item.mapped.is_none() {
                continue;
            }
            if let Some(Some(why)) = verdicts.next() {
                self.reject(&item.publish, &why);
                item.mapped = None;
            }
        }
        Ok(())
    }
}
