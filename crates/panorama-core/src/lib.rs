//! Panorama's domain model: the concepts of DESIGN.md as plain types with
//! their validation rules. This crate does no I/O and needs no async runtime,
//! so every backend, adapter and engine agrees on one meaning of each concept.

pub mod admin;
pub mod agency;
pub mod clock;
pub mod domain;
pub mod entity;
pub mod error;
pub mod geo;
pub mod indicator;
pub mod observation;
pub mod page;
pub mod series;
pub mod source;
pub mod user;
pub mod value;

pub use admin::{AdminLevel, AdminUnit};
pub use agency::Agency;
pub use clock::{Clock, ManualClock, SystemClock};
pub use domain::{Domain, seed_domains};
pub use entity::{AttributeSpec, Entity, EntityId};
pub use error::{FieldError, Invalid};
pub use indicator::{
    Computation, Direction, Indicator, IndicatorStatus, IndicatorValue, IndicatorValueInput,
    Period, Periodicity, Thresholds, ValueStatus,
};
pub use observation::Observation;
pub use page::{Cursor, Page};
pub use series::{Agg, Bucket};
pub use source::{Freshness, Source, SourceKind};
pub use user::{Role, User};
pub use value::{Value, ValueType};

/// Times are UTC instants; they are shown in Asia/Ho_Chi_Minh by the UI.
pub type Timestamp = chrono::DateTime<chrono::Utc>;
