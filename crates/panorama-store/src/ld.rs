//! The NGSI-LD document store: what Panorama's entity model cannot hold
//! (relationships, sub-properties, datasetId, several types, language
//! properties, attributes exactly as given) is kept beside the catalogue,
//! one JSON document per entity, so it survives a round trip.

use crate::StoreResult;
use async_trait::async_trait;
use panorama_core::Timestamp;
use std::sync::Arc;

/// One entity's NGSI-LD document (attribute names expanded to IRIs).
#[derive(Debug, Clone, PartialEq)]
pub struct LdDocument {
    /// Entity id (URN).
    pub id: String,
    /// The document; `None` for an entity deleted through NGSI-LD (a
    /// tombstone: the catalogue entity and its history are kept, but
    /// NGSI-LD no longer shows it).
    pub doc: Option<serde_json::Value>,
    /// When the entity was first created through NGSI-LD.
    pub created_at: Timestamp,
    /// When it was last changed (or deleted).
    pub modified_at: Timestamp,
}

/// Storage of NGSI-LD documents.
#[async_trait]
pub trait LdStore: Send + Sync + std::fmt::Debug + 'static {
    /// One document or tombstone.
    async fn ld_document(&self, id: &str) -> StoreResult<Option<LdDocument>>;
    /// Every document and tombstone, ordered by id.
    async fn ld_documents(&self) -> StoreResult<Vec<LdDocument>>;
    /// Creates or replaces documents (all or nothing).
    async fn put_ld_documents(&self, docs: &[LdDocument]) -> StoreResult<()>;
}

/// A shared NGSI-LD document store.
pub type SharedLdStore = Arc<dyn LdStore>;
