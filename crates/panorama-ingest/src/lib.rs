//! The ingest pipeline: bounded admission, durable append through the store,
//! then publication on the event bus. Every adapter (HTTP, MQTT, NGSI-LD,
//! polling, file import) goes through [`Ingest`], so all get the same
//! durability, back-pressure and live updates.

mod bus;
mod pipeline;

pub use bus::{AlertEvent, Event, EventBus, IncidentEvent, IndicatorUpdate, ObservationBatch};
pub use pipeline::{Ingest, IngestError, IngestOptions};
