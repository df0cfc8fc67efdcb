//! Connectors that feed Panorama's ingest pipeline from sources it pulls
//! from: MQTT (a client of the site's broker) and polled HTTP(S) endpoints
//! (JSON or CSV on a schedule).
//! Every connector writes through [`panorama_ingest::Ingest`], so it gets
//! the durability, back-pressure, source activity and live updates of the
//! HTTP API.

pub mod config;
mod entities;
pub mod mapping;
mod mqtt;
mod poll;

pub use config::{
    Connector, IndicatorMapping, MqttConfig, PollConfig, PollFormat, TlsOptions, TopicConfig,
};
pub use mapping::Mapping;
pub use mqtt::{ConnectionState, ConnectorStatus};
pub use poll::{PollState, PollStatus};

use panorama_core::{Clock, Invalid, Source};
use panorama_ingest::Ingest;
use panorama_store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The live state a running connector shares with the API.
enum Cell {
    Mqtt(mqtt::StatusCell),
    Poll(poll::PollCell),
}

/// A running connector; stopped when dropped.
struct Running {
    status: Cell,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The connectors of a server, by source id. Clones share them; they stop
/// when the last clone is dropped.
#[derive(Clone)]
pub struct Connectors {
    ingest: Ingest,
    clock: Arc<dyn Clock>,
    running: Arc<Mutex<HashMap<String, Running>>>,
    poll_unit: Duration,
}

impl std::fmt::Debug for Connectors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<String> = self
            .running
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("Connectors").field("running", &ids).finish()
    }
}

impl Connectors {
    /// No connector yet; they will write through `ingest`.
    pub fn new(ingest: Ingest, clock: Arc<dyn Clock>) -> Self {
        Self {
            ingest,
            clock,
            running: Arc::default(),
            poll_unit: Duration::from_secs(1),
        }
    }

    /// Makes one second of a poll source's `interval_secs`, `timeout_secs`
    /// and `max_backoff_secs` last `unit` instead, for tests that cannot
    /// wait minutes. Applies to connectors started afterwards.
    pub fn with_poll_unit(mut self, unit: Duration) -> Self {
        self.poll_unit = unit;
        self
    }

    /// Starts a connector for every source that has one. A source whose
    /// stored connector is no longer valid is logged and skipped. Returns
    /// how many were started.
    pub async fn start_all(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for s in self.ingest.store().sources().await? {
            match self.start(&s) {
                Ok(true) => n += 1,
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(source = %s.id, error = %e, "connector not started");
                }
            }
        }
        Ok(n)
    }

    /// Starts (or restarts) the connector of `source`, if its kind has one.
    /// Returns whether one runs now.
    pub fn start(&self, source: &Source) -> Result<bool, Invalid> {
        let Some(connector) = config::parse(source.kind, source.connector.as_ref())? else {
            return Ok(false);
        };
        // Stop the old one first: two MQTT clients with one client id
        // would take the broker session from each other.
        self.stop(&source.id);
        let running = match connector {
            Connector::Mqtt(cfg) => {
                let status = Arc::new(Mutex::new(ConnectorStatus::new(
                    format!("{}:{}", cfg.host, cfg.port()),
                    self.clock.now(),
                )));
                let env = mqtt::Env {
                    source: source.id.clone(),
                    domain: source.domain.clone(),
                    ingest: self.ingest.clone(),
                    clock: self.clock.clone(),
                    status: status.clone(),
                };
                Running {
                    status: Cell::Mqtt(status),
                    task: mqtt::spawn(cfg, env),
                }
            }
            Connector::Poll(cfg) => {
                let status = Arc::new(Mutex::new(PollStatus::new(&cfg.url, self.clock.now())));
                let env = poll::Env {
                    source: source.id.clone(),
                    domain: source.domain.clone(),
                    ingest: self.ingest.clone(),
                    clock: self.clock.clone(),
                    status: status.clone(),
                    unit: self.poll_unit,
                };
                Running {
                    status: Cell::Poll(status),
                    task: poll::spawn(cfg, env),
                }
            }
        };
        if let Ok(mut m) = self.running.lock() {
            m.insert(source.id.clone(), running);
        }
        Ok(true)
    }

    /// Stops the connector of a source, if one runs.
    pub fn stop(&self, id: &str) {
        let old = self.running.lock().ok().and_then(|mut m| m.remove(id));
        drop(old);
    }

    /// Stops every connector.
    pub fn stop_all(&self) {
        let old: Vec<Running> = self
            .running
            .lock()
            .map(|mut m| m.drain().map(|(_, r)| r).collect())
            .unwrap_or_default();
        drop(old);
    }

    /// The live state of a source's MQTT connector.
    pub fn status(&self, id: &str) -> Option<ConnectorStatus> {
        let m = self.running.lock().ok()?;
        match &m.get(id)?.status {
            Cell::Mqtt(c) => c.lock().ok().map(|s| s.clone()),
            Cell::Poll(_) => None,
        }
    }

    /// The live state of a polled source.
    pub fn poll_status(&self, id: &str) -> Option<PollStatus> {
        let m = self.running.lock().ok()?;
        match &m.get(id)?.status {
            Cell::Poll(c) => c.lock().ok().map(|s| s.clone()),
            Cell::Mqtt(_) => None,
        }
    }
}
