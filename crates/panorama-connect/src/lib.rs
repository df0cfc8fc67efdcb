//! Connectors that feed Panorama's ingest pipeline from sources it pulls
//! from: MQTT now (a client of the site's broker), polled endpoints later.
//! Every connector writes through [`panorama_ingest::Ingest`], so it gets
//! the durability, back-pressure, source activity and live updates of the
//! HTTP API.

pub mod config;
pub mod mapping;
mod mqtt;

pub use config::{Connector, MqttConfig, TlsOptions, TopicConfig};
pub use mapping::Mapping;
pub use mqtt::{ConnectionState, ConnectorStatus};

use panorama_core::{Clock, Invalid, Source};
use panorama_ingest::Ingest;
use panorama_store::StoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A running connector; stopped when dropped.
struct Running {
    status: mqtt::StatusCell,
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
        }
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
        let Connector::Mqtt(cfg) = connector;
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
        // Stop the old one first: two clients with one client id would
        // take the broker session from each other.
        self.stop(&source.id);
        let task = mqtt::spawn(cfg, env);
        if let Ok(mut m) = self.running.lock() {
            m.insert(source.id.clone(), Running { status, task });
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

    /// The live state of a source's connector.
    pub fn status(&self, id: &str) -> Option<ConnectorStatus> {
        let m = self.running.lock().ok()?;
        let cell = m.get(id)?.status.lock().ok()?;
        Some(cell.clone())
    }
}
