//! The storage contract: everything Panorama keeps goes through [`Store`], so
//! the embedded store (SQLite + panorama-tsdb) and later PostgreSQL are
//! interchangeable. [`testsuite`] holds the behaviour every backend must show.

mod error;
mod ld;
pub mod ld_subscriptions;
pub mod ld_testsuite;
mod ops;
pub mod ops_testsuite;
mod query;
pub mod testsuite;

pub use error::{StoreError, StoreResult};
pub use ld::*;
pub use ld_subscriptions::*;
pub use ops::*;
pub use query::*;

use async_trait::async_trait;
use panorama_core::{
    AdminUnit, Agency, Domain, Entity, Indicator, IndicatorValue, IndicatorValueInput, Observation,
    Page, Source, Timestamp, User,
};
use std::sync::Arc;

/// Storage for every Panorama concept. Writes return only once durable.
#[async_trait]
pub trait Store: Send + Sync + std::fmt::Debug + 'static {
    // --- reference data -------------------------------------------------

    /// Creates or replaces admin units (all or nothing). Parents must exist
    /// in the store or earlier in the same batch.
    async fn upsert_admin_units(&self, units: &[AdminUnit]) -> StoreResult<()>;
    /// Every admin unit, ordered by code.
    async fn admin_units(&self) -> StoreResult<Vec<AdminUnit>>;
    /// Creates or replaces domains.
    async fn upsert_domains(&self, domains: &[Domain]) -> StoreResult<()>;
    /// Every domain, in overview order.
    async fn domains(&self) -> StoreResult<Vec<Domain>>;
    /// Creates or replaces agencies.
    async fn upsert_agencies(&self, agencies: &[Agency]) -> StoreResult<()>;
    /// Every agency, ordered by code.
    async fn agencies(&self) -> StoreResult<Vec<Agency>>;

    // --- entities -------------------------------------------------------

    /// Creates or replaces entities (all or nothing): domain and admin unit
    /// must exist; an attribute that already has a series keeps its type.
    /// Returns how many were created (the rest were updated).
    async fn upsert_entities(&self, entities: &[Entity], at: Timestamp)
    -> StoreResult<UpsertCount>;
    /// One entity.
    async fn entity(&self, id: &str) -> StoreResult<Option<Entity>>;
    /// Entities matching a filter, one page at a time, ordered by id.
    async fn query_entities(&self, q: &EntityQuery) -> StoreResult<Page<Entity>>;

    // --- observations ---------------------------------------------------

    /// Appends observations (all or nothing): every item's entity must exist
    /// and declare the attribute with the value's type. Returns once the
    /// observations are durable, with the series each one belongs to.
    async fn append_observations(&self, obs: Vec<Observation>) -> StoreResult<Appended>;
    /// Latest value of each attribute of the given entities.
    async fn latest(&self, entities: &[String]) -> StoreResult<Vec<LatestValue>>;
    /// Latest value of each attribute of the entities matching a filter,
    /// one page of entities at a time: the entities of
    /// [`Store::query_entities`] for the same query, and its `next_cursor`.
    async fn latest_matching(&self, q: &EntityQuery) -> StoreResult<Page<LatestValue>> {
        let page = self.query_entities(q).await?;
        let ids: Vec<String> = page.items.into_iter().map(|e| e.id).collect();
        let items = self.latest(&ids).await?;
        Ok(Page {
            items,
            next_cursor: page.next_cursor,
        })
    }
    /// One series, raw or bucketed.
    async fn series(&self, q: &SeriesQuery) -> StoreResult<SeriesData>;
    /// One attribute across the entities matching a filter, bucketed and
    /// grouped by admin unit.
    async fn grouped_series(&self, q: &GroupedSeriesQuery) -> StoreResult<Vec<GroupSeries>>;

    // --- indicators -----------------------------------------------------

    /// Creates or replaces indicator definitions (all or nothing).
    async fn upsert_indicators(&self, indicators: &[Indicator]) -> StoreResult<()>;
    /// Indicators, optionally of one domain, ordered by domain then code.
    async fn indicators(&self, domain: Option<&str>) -> StoreResult<Vec<Indicator>>;
    /// One indicator.
    async fn indicator(&self, code: &str) -> StoreResult<Option<Indicator>>;
    /// Records submitted values (all or nothing). A value for a period and
    /// admin unit that already has one is a new revision; history is kept.
    async fn submit_indicator_values(
        &self,
        values: &[IndicatorValueInput],
        submitted_by: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<IndicatorValue>>;
    /// The current revision of the values matching a filter.
    async fn indicator_values(&self, q: &IndicatorValueQuery) -> StoreResult<Vec<IndicatorValue>>;
    /// Every revision of one value, oldest first.
    async fn indicator_value_history(
        &self,
        indicator: &str,
        period: &str,
        admin_unit: &str,
    ) -> StoreResult<Vec<IndicatorValue>>;

    // --- sources --------------------------------------------------------

    /// Registers a source with the SHA-256 of its bearer token.
    async fn create_source(&self, source: &Source, token_sha256: &[u8; 32]) -> StoreResult<()>;
    /// The source a token belongs to.
    async fn source_by_token(&self, token_sha256: &[u8; 32]) -> StoreResult<Option<Source>>;
    /// Every source, ordered by id.
    async fn sources(&self) -> StoreResult<Vec<Source>>;
    /// Adds to a source's accepted/rejected counts and moves its last-seen time.
    async fn record_source_activity(&self, id: &str, activity: &SourceActivity) -> StoreResult<()>;

    // --- users and sessions ---------------------------------------------

    /// Creates a user with an argon2 PHC password hash.
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()>;
    /// A user and their password hash.
    async fn user_with_hash(&self, username: &str) -> StoreResult<Option<(User, String)>>;
    /// Every user, ordered by name.
    async fn users(&self) -> StoreResult<Vec<User>>;
    /// Starts a session identified by the SHA-256 of its cookie.
    async fn create_session(
        &self,
        token_sha256: &[u8; 32],
        username: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()>;
    /// The user of a session still valid at `now`.
    async fn session_user(
        &self,
        token_sha256: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<User>>;
    /// Ends a session.
    async fn delete_session(&self, token_sha256: &[u8; 32]) -> StoreResult<()>;

    // --- operations -----------------------------------------------------

    /// Counts and problems, for the health endpoint.
    async fn health(&self) -> StoreHealth;
    /// Flushes buffers and stops background work; the store may not be used after.
    async fn close(&self) -> StoreResult<()>;

    /// The same backend as an [`OpsStore`], when it keeps operations data
    /// (rules, alerts, incidents); `None` otherwise.
    fn as_ops(self: Arc<Self>) -> Option<SharedOpsStore> {
        None
    }

    /// The same backend as an [`LdStore`], when it keeps NGSI-LD documents;
    /// `None` otherwise.
    fn as_ld(self: Arc<Self>) -> Option<SharedLdStore> {
        None
    }

    /// The same backend as an [`LdSubscriptionStore`], when it keeps
    /// NGSI-LD subscriptions; `None` otherwise.
    fn as_ld_subscriptions(self: Arc<Self>) -> Option<SharedLdSubscriptionStore> {
        None
    }
}

/// A shared store.
pub type SharedStore = Arc<dyn Store>;
