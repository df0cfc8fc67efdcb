//! Admission control and the write path.

use crate::bus::{Event, EventBus, IndicatorUpdate, ObservationBatch};
use panorama_core::{Clock, Entity, IndicatorValue, IndicatorValueInput, Observation};
use panorama_store::{SharedStore, SourceActivity, StoreError, UpsertCount};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Limits of the pipeline.
#[derive(Debug, Clone)]
pub struct IngestOptions {
    /// Observations admitted but not yet committed, across all requests.
    /// Past it, writers are told to retry later (never silently dropped).
    pub max_in_flight: usize,
    /// Seconds a refused writer is told to wait.
    pub retry_after_secs: u64,
}

impl Default for IngestOptions {
    fn default() -> Self {
        Self {
            max_in_flight: 2_000_000,
            retry_after_secs: 1,
        }
    }
}

/// Why a write was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// Too much is in flight; retry after the given seconds.
    #[error(
        "ingest is at capacity ({in_flight} observations in flight); retry in {retry_after_secs} s"
    )]
    Overloaded {
        /// Observations in flight when refused.
        in_flight: usize,
        /// Suggested wait.
        retry_after_secs: u64,
    },
    /// A single request larger than the whole admission budget.
    #[error("a single request may carry at most {max} observations, got {got}")]
    TooLarge {
        /// Most allowed.
        max: usize,
        /// Received.
        got: usize,
    },
    /// The store refused the write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The write path shared by every adapter.
#[derive(Debug, Clone)]
pub struct Ingest {
    store: SharedStore,
    bus: EventBus,
    clock: Arc<dyn Clock>,
    admission: Arc<Semaphore>,
    opts: IngestOptions,
    activity: Arc<Mutex<HashMap<String, SourceActivity>>>,
}

impl Ingest {
    /// A pipeline writing to `store` and publishing on `bus`.
    pub fn new(
        store: SharedStore,
        bus: EventBus,
        clock: Arc<dyn Clock>,
        opts: IngestOptions,
    ) -> Self {
        Self {
            store,
            bus,
            clock,
            admission: Arc::new(Semaphore::new(opts.max_in_flight)),
            opts,
            activity: Arc::default(),
        }
    }

    /// The bus this pipeline publishes on.
    pub fn bus(&self) -> &EventBus {
        &self.bus
    }

    /// The store this pipeline writes to.
    pub fn store(&self) -> &SharedStore {
        &self.store
    }

    /// Observations admitted and not yet committed.
    pub fn in_flight(&self) -> usize {
        self.opts.max_in_flight - self.admission.available_permits()
    }

    /// Appends observations for `source`; returns once they are durable and
    /// published. All or nothing: one bad item refuses the whole request.
    pub async fn observations(
        &self,
        source: &str,
        obs: Vec<Observation>,
    ) -> Result<usize, IngestError> {
        let n = obs.len();
        if n == 0 {
            return Ok(0);
        }
        if n > self.opts.max_in_flight {
            return Err(IngestError::TooLarge {
                max: self.opts.max_in_flight,
                got: n,
            });
        }
        let permits = u32::try_from(n).unwrap_or(u32::MAX);
        let Ok(_permit) = self.admission.try_acquire_many(permits) else {
            metrics::counter!("panorama_ingest_refused_total", "reason" => "overloaded")
                .increment(n as u64);
            return Err(IngestError::Overloaded {
                in_flight: self.in_flight(),
                retry_after_secs: self.opts.retry_after_secs,
            });
        };
        metrics::gauge!("panorama_ingest_queue_depth").set(self.in_flight() as f64);
        let started = Instant::now();
        let result = self.store.append_observations(obs).await;
        metrics::histogram!("panorama_ingest_batch_seconds")
            .record(started.elapsed().as_secs_f64());
        match result {
            Ok(appended) => {
                metrics::counter!("panorama_observations_ingested_total").increment(n as u64);
                self.note(source, n as u64, 0, None);
                self.bus
                    .publish(Event::Observations(Arc::new(ObservationBatch {
                        observations: appended.observations,
                        series: appended.series,
                    })));
                Ok(n)
            }
            Err(e) => {
                if let StoreError::Invalid(_) = &e {
                    metrics::counter!("panorama_ingest_refused_total", "reason" => "invalid")
                        .increment(n as u64);
                    self.note(source, 0, n as u64, Some(e.to_string()));
                }
                Err(e.into())
            }
        }
    }

    /// Creates or replaces entities for `source` (all or nothing).
    pub async fn entities(
        &self,
        source: &str,
        mut entities: Vec<Entity>,
    ) -> Result<UpsertCount, IngestError> {
        for e in &mut entities {
            e.source = Some(source.to_string());
        }
        let ids: Vec<String> = entities.iter().map(|e| e.id.clone()).collect();
        match self
            .store
            .upsert_entities(&entities, self.clock.now())
            .await
        {
            Ok(c) => {
                self.note(source, ids.len() as u64, 0, None);
                self.bus.publish(Event::EntitiesChanged(Arc::new(ids)));
                Ok(c)
            }
            Err(e) => {
                if let StoreError::Invalid(_) = &e {
                    self.note(source, 0, ids.len() as u64, Some(e.to_string()));
                }
                Err(e.into())
            }
        }
    }

    /// Records indicator values submitted by `submitted_by` (`source:<id>`
    /// or `user:<name>`), all or nothing; a resubmission is a new revision.
    pub async fn indicator_values(
        &self,
        submitted_by: &str,
        values: Vec<IndicatorValueInput>,
    ) -> Result<Vec<IndicatorValue>, IngestError> {
        let source = submitted_by.strip_prefix("source:");
        let n = values.len() as u64;
        let stored = match self
            .store
            .submit_indicator_values(&values, submitted_by, self.clock.now())
            .await
        {
            Ok(v) => v,
            Err(e) => {
                if let (Some(s), StoreError::Invalid(_)) = (source, &e) {
                    self.note(s, 0, n, Some(e.to_string()));
                }
                return Err(e.into());
            }
        };
        if let Some(s) = source {
            self.note(s, n, 0, None);
        }
        let mut domains: HashMap<String, String> = HashMap::new();
        for v in &stored {
            if !domains.contains_key(&v.indicator)
                && let Ok(Some(ind)) = self.store.indicator(&v.indicator).await
            {
                domains.insert(v.indicator.clone(), ind.domain);
            }
        }
        let updates = stored
            .iter()
            .map(|v| IndicatorUpdate {
                domain: domains.get(&v.indicator).cloned().unwrap_or_default(),
                value: v.clone(),
            })
            .collect();
        self.bus.publish(Event::IndicatorValues(Arc::new(updates)));
        Ok(stored)
    }

    /// Counts items an adapter refused before they reached the store (a
    /// malformed MQTT message, say), so the source's status shows them.
    pub fn reject(&self, source: &str, items: u64, error: String) {
        metrics::counter!("panorama_ingest_refused_total", "reason" => "invalid").increment(items);
        self.note(source, 0, items, Some(error));
    }

    /// Notes what a source delivered; written to the store by [`Self::flush_activity`].
    fn note(&self, source: &str, accepted: u64, rejected: u64, error: Option<String>) {
        let now = self.clock.now();
        if let Ok(mut m) = self.activity.lock() {
            let a = m.entry(source.to_string()).or_default();
            a.accepted += accepted;
            a.rejected += rejected;
            if accepted > 0 {
                a.at = Some(now);
            }
            if error.is_some() {
                a.last_error = error;
            }
        }
    }

    /// Writes the source activity noted since the last flush. Kept off the
    /// request path so a busy feed costs one store write per second, not
    /// one per request.
    pub async fn flush_activity(&self) -> Result<(), StoreError> {
        let pending: Vec<(String, SourceActivity)> = match self.activity.lock() {
            Ok(mut m) => m.drain().collect(),
            Err(_) => Vec::new(),
        };
        for (id, a) in pending {
            self.store.record_source_activity(&id, &a).await?;
        }
        Ok(())
    }

    /// Flushes source activity every `period` until the returned task is aborted.
    pub fn spawn_activity_flusher(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        let me = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(period);
            loop {
                tick.tick().await;
                if let Err(e) = me.flush_activity().await {
                    tracing::warn!(error = %e, "could not record source activity");
                }
            }
        })
    }
}
