//! The HTTP API: REST under `/api/v1`, the live WebSocket and SSE streams,
//! Prometheus metrics and the OpenAPI document. Handlers are thin: they
//! authenticate, parse, call the ingest pipeline or the store, and render.

pub mod auth;
pub mod body;
pub mod error;
pub mod live;
pub mod ngsild;
mod openapi;
mod params;
pub mod provision;
mod routes;
mod server;

use axum::Router;
use metrics_exporter_prometheus::PrometheusHandle;
use panorama_core::Clock;
use panorama_ingest::Ingest;
use panorama_store::SharedStore;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

pub use error::{ApiError, ApiResult, Problem};
pub use server::{metrics_handle, serve, serve_with_rules};

/// Limits and switches of the HTTP layer.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Most items (observations, entities, values) in one request.
    pub max_items: usize,
    /// How long a session lasts, in hours.
    pub session_hours: i64,
    /// Mark the session cookie `Secure` (behind HTTPS).
    pub secure_cookies: bool,
    /// Live events a WebSocket client may fall behind before it is told it
    /// missed updates; repeated lag disconnects it.
    pub live_buffer: usize,
    /// The NGSI-LD API (`/ngsi-ld/v1`).
    pub ngsild: panorama_ngsild::NgsiConfig,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 32 * 1024 * 1024,
            max_items: 100_000,
            session_hours: 12,
            secure_cookies: false,
            live_buffer: 1024,
            ngsild: panorama_ngsild::NgsiConfig::default(),
        }
    }
}

/// What every handler can reach.
#[derive(Debug, Clone)]
pub struct AppState {
    /// The write path.
    pub ingest: Ingest,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Limits.
    pub config: Arc<ApiConfig>,
    /// Renders `/metrics`.
    pub metrics: Option<PrometheusHandle>,
    /// Connected live clients.
    pub live_clients: Arc<AtomicUsize>,
    /// Rules, alerts, incidents and notifications; None when the store
    /// keeps no operations data.
    pub ops: Option<panorama_rules::Ops>,
    /// File import jobs (in memory).
    pub imports: panorama_import::Jobs,
    /// Connectors of the sources Panorama pulls from (MQTT); None when
    /// the server runs none.
    pub connectors: Option<panorama_connect::Connectors>,
}

impl AppState {
    /// State for a server over `ingest`.
    pub fn new(
        ingest: Ingest,
        clock: Arc<dyn Clock>,
        config: ApiConfig,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        Self {
            ingest,
            clock,
            config: Arc::new(config),
            metrics,
            live_clients: Arc::default(),
            ops: None,
            imports: panorama_import::Jobs::default(),
            connectors: None,
        }
    }

    /// The store.
    pub fn store(&self) -> &SharedStore {
        self.ingest.store()
    }
}

/// The OpenAPI document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::api_router().split_for_parts().1
}

/// The whole API as an axum router, and its OpenAPI document (built from
/// the same route table, so they cannot disagree).
pub fn router(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, api) = routes::api_router().split_for_parts();
    let spec = api.clone();
    let ngsi = panorama_ngsild::router(ngsild::state(&state));
    let router = router
        .merge(routes::meta::extra_routes(spec.clone()))
        // NGSI-LD beside /api/v1, over the same pipeline and store.
        .nest_service("/ngsi-ld/v1", ngsi)
        // The web console: index.html for its client routes and the embedded
        // assets; unknown /api paths still reach `not_found` below.
        .merge(panorama_web::router())
        .fallback(routes::meta::not_found)
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(state);
    (router, spec)
}
