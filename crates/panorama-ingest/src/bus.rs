//! The event bus: committed changes, fanned out to the live hub and (later)
//! the rule engine. Publishing never waits for a slow subscriber: a
//! subscriber that falls behind by more than the bus capacity is told how
//! many events it missed.

use panorama_core::{IndicatorValue, Observation};
use panorama_store::{Alert, Incident, SeriesMeta};
use std::sync::Arc;
use tokio::sync::broadcast;

/// Observations that were committed together.
#[derive(Debug)]
pub struct ObservationBatch {
    /// The observations.
    pub observations: Vec<Observation>,
    /// `series[i]` describes the series of `observations[i]`.
    pub series: Vec<Arc<SeriesMeta>>,
}

/// An indicator value that was committed, with the indicator's domain.
#[derive(Debug)]
pub struct IndicatorUpdate {
    /// Domain of the indicator.
    pub domain: String,
    /// The new revision.
    pub value: IndicatorValue,
}

/// An alert that changed, and how.
#[derive(Debug)]
pub struct AlertEvent {
    /// `opened`, `repeated`, `acknowledged`, `resolved`, `commented` or `linked`.
    pub change: &'static str,
    /// The alert as it is now.
    pub alert: Alert,
}

/// An incident that changed, and how.
#[derive(Debug)]
pub struct IncidentEvent {
    /// `created`, `updated`, `status`, `assigned`, `comment`, `checklist`,
    /// `attachment`, `alert_linked` or `escalated`.
    pub change: &'static str,
    /// The incident as it is now.
    pub incident: Incident,
}

/// Something that was committed.
#[derive(Debug, Clone)]
pub enum Event {
    /// New observations.
    Observations(Arc<ObservationBatch>),
    /// New indicator values.
    IndicatorValues(Arc<Vec<IndicatorUpdate>>),
    /// Entities were created or changed.
    EntitiesChanged(Arc<Vec<String>>),
    /// An alert was opened or moved along its lifecycle.
    Alert(Arc<AlertEvent>),
    /// An incident was created or changed.
    Incident(Arc<IncidentEvent>),
}

/// A bounded broadcast channel of committed events.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Event>,
}

impl EventBus {
    /// A bus that keeps up to `capacity` events for slow subscribers.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// Publishes an event; never blocks.
    pub fn publish(&self, e: Event) {
        // No subscriber is not an error: nobody is watching.
        let _ = self.tx.send(e);
    }

    /// A new subscription, receiving events published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.tx.subscribe()
    }
}
