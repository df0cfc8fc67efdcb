//! The demo province: Binh Duong as it was before 2025, with its nine
//! districts, every domain's agencies and indicators, thousands of sensors
//! and hundreds of cameras with a week of one-minute history, and a
//! simulator that keeps data flowing through the public ingest API.
//!
//! * [`build`] makes the whole demo as plain data, deterministically from a
//!   seed (the things, their ids and the source tokens do not depend on
//!   `now`, so a rebuilt demo matches a stored one);
//! * [`backfill`] generates the history in time-ordered batches;
//! * [`load`] writes everything through the [`panorama_store::Store`] trait;
//! * [`Simulator`] posts live observations to `POST /api/v1/observations`.
//!
//! Values are a pure function of (thing, attribute, minute) and the events
//! under way (rain, an air-quality spike, a silent feed, a jam on National
//! Road 13, a burst of citizen reports), which are themselves a function of
//! the seed and the time; the live feed therefore continues the history.

mod backfill;
mod catalog;
mod events;
mod geography;
mod indicators;
mod load;
mod noise;
mod signal;
mod simulator;
mod things;

pub use backfill::Backfill;
pub use catalog::{
    ADMIN_PASSWORD, COUNTRY, LEADER_PASSWORD, OFFICER_PASSWORD, OPERATOR_PASSWORD, PROVINCE,
    SUCCESSOR,
};
pub use load::{Loaded, load, token_sha256};
pub use simulator::{Simulator, SimulatorOptions, SimulatorStats};

use chrono::{Duration, NaiveDate};
use panorama_core::{
    AdminUnit, Agency, Domain, Entity, Indicator, IndicatorValueInput, Source, Timestamp, User,
};
use std::sync::Arc;

/// The seed used when none is given.
pub const DEFAULT_SEED: u64 = 74;

/// What happened to the demo province on 1 July 2025, for the verb to print.
pub const SUCCESSION_NOTE: &str = "Binh Duong is shown as it was before 2025 (province 74 and its nine districts). \
Since 1 July 2025 its area belongs to Ho Chi Minh City (79) and the district level no longer exists; \
the demo's units end on that day with 79 as their successor. \
/ Bình Dương được thể hiện như trước năm 2025; từ ngày 1/7/2025 địa bàn thuộc Thành phố Hồ Chí Minh.";

/// Something in the demo's own data is broken (a bug, not an input error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DemoError {
    /// The embedded data could not be read.
    Data(String),
}

impl std::fmt::Display for DemoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Data(m) => write!(f, "demo data: {m}"),
        }
    }
}

impl std::error::Error for DemoError {}

/// How big a demo to make, and when "now" is.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Seed of every random choice; the same seed gives the same demo.
    pub seed: u64,
    /// Number of sensors (cameras and the nine citizen-report counters come on top).
    pub sensors: usize,
    /// Number of cameras.
    pub cameras: usize,
    /// Days of one-minute history to backfill, ending at `now`.
    pub backfill_days: u32,
    /// The current time: indicator history ends the period before it, the
    /// backfill ends at it.
    pub now: Timestamp,
}

impl DemoOptions {
    /// The default demo (seed 74, 2,000 sensors, 300 cameras, 7 days of history) at `now`.
    pub fn new(now: Timestamp) -> Self {
        Self {
            seed: DEFAULT_SEED,
            sensors: 2000,
            cameras: 300,
            backfill_days: 7,
            now,
        }
    }
}

/// A source (feed) of the demo with its bearer token.
#[derive(Clone, PartialEq)]
pub struct DemoSource {
    /// The source, as registered in the store.
    pub source: Source,
    /// The entity type it feeds.
    pub entity_type: Option<String>,
    /// Its bearer token (derived from the seed; store only its SHA-256).
    pub token: String,
}

impl std::fmt::Debug for DemoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoSource")
            .field("source", &self.source)
            .field("entity_type", &self.entity_type)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// A demo user and the well-known demo password.
#[derive(Clone, PartialEq)]
pub struct DemoUser {
    /// The user.
    pub user: User,
    /// The password (printed by `panorama demo`; store only its argon2 hash).
    pub password: String,
}

impl std::fmt::Debug for DemoUser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DemoUser")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Everything the demo consists of.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoData {
    /// The seed it was built from.
    pub seed: u64,
    /// Viet Nam, Binh Duong (74) and its nine districts, Ho Chi Minh City (79); parents first.
    pub admin_units: Vec<AdminUnit>,
    /// Every domain ([`panorama_core::seed_domains`]).
    pub domains: Vec<Domain>,
    /// The province's agencies.
    pub agencies: Vec<Agency>,
    /// Indicator definitions with plan targets.
    pub indicators: Vec<Indicator>,
    /// Indicator history: who submitted it (`user:<name>`) and the value.
    pub indicator_values: Vec<(String, IndicatorValueInput)>,
    /// Sources with their tokens.
    pub sources: Vec<DemoSource>,
    /// Sensors, cameras and citizen-report counters.
    pub entities: Vec<Entity>,
    /// Users with their passwords.
    pub users: Vec<DemoUser>,
    /// Value models, aligned with `entities`.
    pub(crate) things: Arc<things::Things>,
}

impl DemoData {
    /// The bearer token of each source, by source id.
    pub fn tokens(&self) -> impl Iterator<Item = (&str, &str)> {
        self.sources
            .iter()
            .map(|s| (s.source.id.as_str(), s.token.as_str()))
    }

    /// How many sensors (not cameras or report counters) the demo has.
    pub fn sensor_count(&self) -> usize {
        self.things
            .models
            .iter()
            .filter(|m| m.kind != things::Kind::Camera && m.kind != things::Kind::Reports)
            .count()
    }

    /// How many cameras the demo has.
    pub fn camera_count(&self) -> usize {
        self.things
            .models
            .iter()
            .filter(|m| m.kind == things::Kind::Camera)
            .count()
    }
}

/// The local (Asia/Ho_Chi_Minh) date of an instant.
pub(crate) fn local_date(t: Timestamp) -> NaiveDate {
    (t + Duration::minutes(events::LOCAL_OFFSET_MIN)).date_naive()
}

/// Builds the demo. Deterministic: the same options give the same data.
pub fn build(opts: &DemoOptions) -> Result<DemoData, DemoError> {
    let geo = geography::Geography::new()?;
    let admin_units = catalog::admin_units(&geo);
    let placed = things::place_things(
        &geo,
        opts.seed,
        opts.sensors,
        opts.cameras,
        opts.now - Duration::days(i64::from(opts.backfill_days)),
    );
    let cat = indicators::catalogue(opts.seed, local_date(opts.now));
    Ok(DemoData {
        seed: opts.seed,
        admin_units,
        domains: panorama_core::seed_domains(),
        agencies: catalog::agencies(),
        indicators: cat.indicators,
        indicator_values: cat.values,
        sources: placed.sources,
        entities: placed.entities,
        users: catalog::users(opts.now),
        things: Arc::new(placed.things),
    })
}

/// The one-minute history of every sensor's main attributes (and hourly
/// camera statuses) over `opts.backfill_days` ending at `opts.now`, in
/// time-ordered batches of about 10,000 observations.
pub fn backfill(data: &DemoData, opts: &DemoOptions) -> Backfill {
    Backfill::new(data, opts.now, opts.backfill_days)
}
