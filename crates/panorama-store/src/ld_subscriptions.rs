//! NGSI-LD subscriptions: one JSON document per subscription, kept as the
//! API validated it (attribute names expanded), so they survive a restart.

use crate::StoreResult;
use async_trait::async_trait;
use panorama_core::Timestamp;
use std::sync::Arc;

/// One stored subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct LdSubscription {
    /// Subscription id (URI).
    pub id: String,
    /// The subscription document.
    pub doc: serde_json::Value,
    /// When it was created.
    pub created_at: Timestamp,
    /// When it was last changed.
    pub modified_at: Timestamp,
}

/// Storage of NGSI-LD subscriptions.
#[async_trait]
pub trait LdSubscriptionStore: Send + Sync + std::fmt::Debug + 'static {
    /// One subscription.
    async fn ld_subscription(&self, id: &str) -> StoreResult<Option<LdSubscription>>;
    /// Every subscription, ordered by id.
    async fn ld_subscriptions(&self) -> StoreResult<Vec<LdSubscription>>;
    /// Creates or replaces a subscription.
    async fn put_ld_subscription(&self, sub: &LdSubscription) -> StoreResult<()>;
    /// Deletes a subscription; `false` when there was none.
    async fn delete_ld_subscription(&self, id: &str) -> StoreResult<bool>;
}

/// A shared NGSI-LD subscription store.
pub type SharedLdSubscriptionStore = Arc<dyn LdSubscriptionStore>;
