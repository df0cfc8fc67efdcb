//! The NGSI-LD API (ETSI GS CIM 009, `/ngsi-ld/v1`) over Panorama's store:
//! an NGSI-LD write is a Panorama write (entities through the store,
//! Property values as observations through `Ingest`), and entities created
//! through `/api/v1` are readable here. What Panorama's model lacks is kept
//! in the NGSI-LD document table (`LdStore`).
//!
//! Seams for later parts (subscriptions, temporal API): [`router`] merges
//! one sub-router per area, and [`entities::load`] / [`model::render`] give
//! any module the NGSI-LD view of an entity.

pub mod context;
pub mod entities;
pub mod error;
pub mod geoq;
pub mod http;
pub mod jsonld_contexts;
pub mod model;
pub mod q;

pub mod notify;
pub mod subscriptions;
pub mod temporal;

use async_trait::async_trait;
use axum::Router;
use axum::http::HeaderMap;
use panorama_core::{Clock, Timestamp};
use panorama_ingest::Ingest;
use panorama_store::{SharedLdStore, SharedStore};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use context::{Context, Contexts};
pub use error::{NgsiError, NgsiResult};

/// Who may use NGSI-LD without credentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Anonymous {
    /// Everyone needs credentials (the default).
    #[default]
    Off,
    /// Reads need none; writes need a source token.
    Read,
    /// Neither reads nor writes need credentials; anonymous writes are
    /// recorded as the `anonymous_source`.
    ReadWrite,
}

/// Settings of the NGSI-LD API (`[ngsild]` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NgsiConfig {
    /// Access without credentials.
    pub anonymous: Anonymous,
    /// Source that anonymous writes are recorded as (created when missing).
    pub anonymous_source: String,
    /// Domain of new entities whose type has no known domain.
    pub default_domain: String,
    /// Directory of JSON-LD context files, laid out as `<host>/<path>` of
    /// the URL they stand for; read before any fetch.
    pub context_dir: Option<PathBuf>,
    /// Seconds to wait for a remote context.
    pub context_timeout_secs: u64,
    /// Most fetched contexts kept in memory.
    pub context_cache: usize,
    /// Most entities one query page may return.
    pub max_limit: usize,
}

impl Default for NgsiConfig {
    fn default() -> Self {
        Self {
            anonymous: Anonymous::Off,
            anonymous_source: "ngsi-ld-anonymous".into(),
            default_domain: "urban".into(),
            context_dir: None,
            context_timeout_secs: 5,
            context_cache: 256,
            max_limit: 1000,
        }
    }
}

/// A writer: the source a write is recorded as.
#[derive(Debug, Clone)]
pub struct Writer {
    /// Source id.
    pub source: String,
    /// The source's domain, for new entities of unknown type.
    pub domain: Option<String>,
}

/// Authentication, provided by the HTTP layer that mounts this API (so the
/// same tokens and sessions as `/api/v1` apply).
#[async_trait]
pub trait Gate: Send + Sync + std::fmt::Debug + 'static {
    /// Allows a read (session or source token), or says why not.
    async fn reader(&self, headers: &HeaderMap) -> NgsiResult<()>;
    /// Allows a write (source token), or says why not.
    async fn writer(&self, headers: &HeaderMap) -> NgsiResult<Writer>;
}

/// What every NGSI-LD handler can reach.
#[derive(Debug, Clone)]
pub struct NgsiState {
    /// The write path (and through it the store and the bus).
    pub ingest: Ingest,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Credentials.
    pub gate: Arc<dyn Gate>,
    /// Context resolution and cache.
    pub contexts: Arc<Contexts>,
    /// Settings.
    pub config: Arc<NgsiConfig>,
    /// Most bytes in a request body.
    pub max_body_bytes: usize,
    /// Subscriptions and their notifications.
    pub notifier: Arc<notify::Notifier>,
}

impl NgsiState {
    /// State over `ingest` with `gate` for credentials.
    pub fn new(
        ingest: Ingest,
        clock: Arc<dyn Clock>,
        gate: Arc<dyn Gate>,
        config: NgsiConfig,
    ) -> Self {
        let contexts = Contexts::new(
            config.context_dir.clone(),
            Duration::from_secs(config.context_timeout_secs.max(1)),
            config.context_cache,
            clock.clone(),
        );
        Self {
            ingest,
            clock,
            gate,
            contexts: Arc::new(contexts),
            config: Arc::new(config),
            max_body_bytes: 32 * 1024 * 1024,
            notifier: Arc::new(notify::Notifier::new()),
        }
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        self.ingest.store()
    }

    /// The NGSI-LD document store.
    pub fn ld(&self) -> NgsiResult<SharedLdStore> {
        self.store().clone().as_ld().ok_or_else(|| {
            NgsiError::OperationNotSupported("this store keeps no NGSI-LD documents".into())
        })
    }

    /// Allows a read.
    pub async fn read(&self, headers: &HeaderMap) -> NgsiResult<()> {
        if self.config.anonymous != Anonymous::Off
            && !headers.contains_key(axum::http::header::AUTHORIZATION)
            && !headers.contains_key(axum::http::header::COOKIE)
        {
            return Ok(());
        }
        self.gate.reader(headers).await
    }

    /// Allows a write and says who writes.
    pub async fn write(&self, headers: &HeaderMap) -> NgsiResult<Writer> {
        if self.config.anonymous == Anonymous::ReadWrite
            && !headers.contains_key(axum::http::header::AUTHORIZATION)
        {
            return Ok(Writer {
                source: self.config.anonymous_source.clone(),
                domain: None,
            });
        }
        self.gate.writer(headers).await
    }
}

/// RFC 3339 text of a time, in UTC with a `Z`.
pub fn time_text(t: Timestamp) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// The NGSI-LD API, to be mounted at `/ngsi-ld/v1`. Inside a Tokio
/// runtime it also starts the subscription notifier.
pub fn router(state: NgsiState) -> Router {
    notify::start(&state);
    let inner = Router::new()
        .merge(entities::routes())
        .merge(jsonld_contexts::routes())
        .merge(subscriptions::routes())
        .merge(temporal::routes())
        .fallback(http::not_found)
        .with_state(state);
    // Clients write collection paths with a trailing slash (`/entities/`):
    // the same resource. The outer layer runs before the inner routing.
    Router::new()
        .fallback_service(inner)
        .layer(axum::middleware::map_request(http::strip_trailing_slash))
}
