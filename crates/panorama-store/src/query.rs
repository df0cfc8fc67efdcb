//! Query and result types of the store contract.

use panorama_core::geo::BBox;
use panorama_core::{Agg, Bucket, Observation, Timestamp, Value, ValueType};
use serde::Serialize;
use std::sync::Arc;

/// How many entities were created by an upsert (the rest were updated).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct UpsertCount {
    /// New entities.
    pub created: usize,
    /// Replaced entities.
    pub updated: usize,
}

/// Filter for entity listings. Every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct EntityQuery {
    /// Only these ids.
    pub ids: Vec<String>,
    /// Only these types.
    pub types: Vec<String>,
    /// Only this domain.
    pub domain: Option<String>,
    /// Only entities in this admin unit or its descendants.
    pub admin_unit: Option<String>,
    /// Only entities whose point lies in the box.
    pub bbox: Option<BBox>,
    /// Only entities whose point lies in the area.
    pub within: Option<geo::MultiPolygon<f64>>,
    /// Case- and accent-insensitive search in names and ids.
    pub text: Option<String>,
    /// Start after this cursor (from a previous page).
    pub cursor: Option<String>,
    /// Page size.
    pub limit: usize,
}

/// The series of one attribute of one entity, and the entity's context
/// (used to route live updates without a lookup).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesMeta {
    /// Store-wide series number.
    pub series: u32,
    /// Entity id.
    pub entity: Arc<str>,
    /// Attribute name.
    pub attribute: Arc<str>,
    /// Entity type.
    pub entity_type: Arc<str>,
    /// Domain code.
    pub domain: Arc<str>,
    /// Admin unit code.
    pub admin_unit: Option<Arc<str>>,
    /// Type of values.
    pub value_type: ValueType,
}

/// Observations that were made durable, each with its series.
#[derive(Debug, Clone)]
pub struct Appended {
    /// The observations, in the order given.
    pub observations: Vec<Observation>,
    /// `series[i]` is the series of `observations[i]`.
    pub series: Vec<Arc<SeriesMeta>>,
}

/// Latest value of one attribute of one entity.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LatestValue {
    /// Entity id.
    pub entity: String,
    /// Attribute name.
    pub attribute: String,
    /// When it was observed.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The value.
    pub value: Value,
}

/// One series over a time range.
#[derive(Debug, Clone)]
pub struct SeriesQuery {
    /// Entity id.
    pub entity: String,
    /// Attribute name.
    pub attribute: String,
    /// Start, inclusive.
    pub from: Timestamp,
    /// End, exclusive.
    pub to: Timestamp,
    /// Bucket width and aggregation; raw values when absent.
    pub bucket: Option<(Bucket, Agg)>,
    /// Most raw points returned (the newest are dropped past it).
    pub limit: usize,
}

/// Points of a series.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum SeriesData {
    /// Raw values in time order.
    Raw(Vec<RawPoint>),
    /// One aggregate per non-empty bucket, in time order.
    Buckets(Vec<BucketPoint>),
}

/// A raw value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RawPoint {
    /// When.
    pub time: chrono::DateTime<chrono::Utc>,
    /// Value.
    pub value: Value,
}

/// An aggregate over one bucket.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct BucketPoint {
    /// Start of the bucket.
    pub time: chrono::DateTime<chrono::Utc>,
    /// The aggregate.
    pub value: f64,
    /// Number of raw values in the bucket.
    pub count: u64,
}

/// One attribute across many entities, grouped by admin unit.
#[derive(Debug, Clone)]
pub struct GroupedSeriesQuery {
    /// Which entities (cursor and limit are ignored).
    pub filter: EntityQuery,
    /// Attribute name (numeric).
    pub attribute: String,
    /// Start, inclusive.
    pub from: Timestamp,
    /// End, exclusive.
    pub to: Timestamp,
    /// Bucket width.
    pub bucket: Bucket,
    /// Aggregation over all values of the group's entities in a bucket.
    pub agg: Agg,
    /// Group by the ancestor at this level (e.g. district) instead of the
    /// entity's own admin unit.
    pub level: Option<panorama_core::AdminLevel>,
}

/// The buckets of one admin unit.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct GroupSeries {
    /// Admin unit code (`null` for entities without one).
    pub admin_unit: Option<String>,
    /// Number of entities in the group that have the attribute.
    pub entities: usize,
    /// Buckets in time order.
    pub points: Vec<BucketPoint>,
}

/// Filter for indicator values. Every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct IndicatorValueQuery {
    /// Only this indicator.
    pub indicator: Option<String>,
    /// Only indicators of this domain.
    pub domain: Option<String>,
    /// Only this admin unit.
    pub admin_unit: Option<String>,
    /// Only periods starting on or after this day.
    pub from: Option<chrono::NaiveDate>,
    /// Only periods starting before this day.
    pub to: Option<chrono::NaiveDate>,
}

/// What a source delivered in one request.
#[derive(Debug, Clone, Default)]
pub struct SourceActivity {
    /// When.
    pub at: Option<Timestamp>,
    /// Items accepted.
    pub accepted: u64,
    /// Items refused.
    pub rejected: u64,
    /// Why the last item was refused.
    pub last_error: Option<String>,
}

/// Counts and problems of a store.
#[derive(Debug, Clone, Default, Serialize, utoipa::ToSchema)]
pub struct StoreHealth {
    /// Backend name.
    pub backend: String,
    /// Number of entities.
    pub entities: u64,
    /// Number of series.
    pub series: u64,
    /// Observations appended since the store opened.
    pub observations_appended: u64,
    /// Bytes of the data dir on disk (when known).
    pub disk_bytes: Option<u64>,
    /// What is wrong; empty when healthy.
    pub problems: Vec<String>,
}
