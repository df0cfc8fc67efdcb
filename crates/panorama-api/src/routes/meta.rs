//! Health, metrics, OpenAPI and reference data (domains, agencies, admin units).

use super::Q;
use crate::AppState;
use crate::auth::UserAuth;
use crate::error::{ApiError, ApiResult, Problem};
use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use panorama_core::{AdminUnit, Agency, Domain};
use panorama_store::StoreHealth;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

/// What the health endpoint reports.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `degraded` (data late) or `failing` (the server cannot store data).
    pub status: String,
    /// What is wrong, in words; empty when all is well.
    pub problems: Vec<String>,
    /// Panorama version.
    pub version: String,
    /// The store's counts and problems.
    pub store: StoreHealth,
    /// Sources past their freshness contract.
    pub late_sources: Vec<String>,
    /// Observations admitted and not yet committed.
    pub ingest_in_flight: usize,
    /// Connected live clients.
    pub live_clients: usize,
}

/// Says whether the server works and, if not, what is wrong. 503 when it
/// cannot store data; 200 otherwise (late sources make it `degraded`).
#[utoipa::path(get, path = "/api/v1/health", tag = "meta",
    responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(st): State<AppState>) -> Response {
    let store = st.store().health().await;
    let now = st.clock.now();
    let late_sources: Vec<String> = match st.store().sources().await {
        Ok(s) => s
            .iter()
            .filter(|s| s.freshness(now).late)
            .map(|s| s.id.clone())
            .collect(),
        Err(_) => Vec::new(),
    };
    let mut problems = store.problems.clone();
    let failing = !problems.is_empty();
    if !late_sources.is_empty() {
        problems.push(format!(
            "{} source(s) are late: {}",
            late_sources.len(),
            late_sources.join(", ")
        ));
    }
    let status = if failing {
        "failing"
    } else if problems.is_empty() {
        "ok"
    } else {
        "degraded"
    };
    let body = Health {
        status: status.into(),
        problems,
        version: env!("CARGO_PKG_VERSION").into(),
        store,
        late_sources,
        ingest_in_flight: st.ingest.in_flight(),
        live_clients: st.live_clients.load(Ordering::Relaxed),
    };
    let code = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, Json(body)).into_response()
}

/// The domains, in overview order.
#[utoipa::path(get, path = "/api/v1/domains", tag = "reference",
    responses((status = 200, body = Vec<Domain>), (status = 401, body = Problem)))]
pub async fn domains(State(st): State<AppState>, _u: UserAuth) -> ApiResult<Json<Vec<Domain>>> {
    Ok(Json(st.store().domains().await?))
}

/// The agencies.
#[utoipa::path(get, path = "/api/v1/agencies", tag = "reference",
    responses((status = 200, body = Vec<Agency>), (status = 401, body = Problem)))]
pub async fn agencies(State(st): State<AppState>, _u: UserAuth) -> ApiResult<Json<Vec<Agency>>> {
    Ok(Json(st.store().agencies().await?))
}

/// Options of the admin unit listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AdminUnitParams {
    /// `geojson` for a FeatureCollection; a JSON list otherwise.
    pub format: Option<String>,
    /// `false` to leave out boundaries.
    pub geometry: Option<bool>,
    /// Only units of this level.
    pub level: Option<String>,
}

/// Admin units, as a list or a GeoJSON FeatureCollection.
#[utoipa::path(get, path = "/api/v1/admin-units", tag = "reference", params(AdminUnitParams),
    responses((status = 200, body = Vec<AdminUnit>), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn admin_units(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<AdminUnitParams>,
) -> ApiResult<Response> {
    let mut units = st.store().admin_units().await?;
    if let Some(l) = &p.level {
        let level = panorama_core::AdminLevel::parse(l).ok_or_else(|| {
            ApiError::BadParam(
                "level".into(),
                "must be country, province, district or commune".into(),
            )
        })?;
        units.retain(|u| u.level == level);
    }
    if p.geometry == Some(false) {
        for u in &mut units {
            u.geometry = None;
        }
    }
    match p.format.as_deref() {
        None | Some("json") => Ok(Json(units).into_response()),
        Some("geojson") => {
            let features: Vec<serde_json::Value> = units
                .into_iter()
                .map(|mut u| {
                    let geometry = u.geometry.take();
                    serde_json::json!({"type": "Feature", "id": u.code, "geometry": geometry, "properties": u})
                })
                .collect();
            let fc = serde_json::json!({"type": "FeatureCollection", "features": features});
            Ok((
                [(header::CONTENT_TYPE, "application/geo+json")],
                fc.to_string(),
            )
                .into_response())
        }
        Some(_) => Err(ApiError::BadParam(
            "format".into(),
            "must be json or geojson".into(),
        )),
    }
}

/// One admin unit.
#[utoipa::path(get, path = "/api/v1/admin-units/{code}", tag = "reference",
    params(("code" = String, Path, description = "Admin unit code")),
    responses((status = 200, body = AdminUnit), (status = 404, body = Problem)))]
pub async fn admin_unit(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(code): Path<String>,
) -> ApiResult<Json<AdminUnit>> {
    st.store()
        .admin_units()
        .await?
        .into_iter()
        .find(|u| u.code == code)
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("admin unit '{code}' does not exist")))
}

/// Routes outside the OpenAPI document: the document itself and metrics.
pub fn extra_routes(spec: utoipa::openapi::OpenApi) -> Router<AppState> {
    let json = spec.to_pretty_json().unwrap_or_default();
    Router::new()
        .route(
            "/api/v1/openapi.json",
            get(move || {
                let json = json.clone();
                async move { ([(header::CONTENT_TYPE, "application/json")], json) }
            }),
        )
        .route("/metrics", get(metrics))
}

async fn metrics(State(st): State<AppState>) -> Response {
    metrics::gauge!("panorama_ingest_queue_depth").set(st.ingest.in_flight() as f64);
    metrics::gauge!("panorama_live_clients").set(st.live_clients.load(Ordering::Relaxed) as f64);
    match &st.metrics {
        Some(h) => (
            [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
            h.render(),
        )
            .into_response(),
        None => ApiError::NotFound("metrics are not enabled on this server".into()).into_response(),
    }
}

/// Problem+json for unknown routes.
pub async fn not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound(format!(
        "no route for {}; see /api/v1/openapi.json",
        uri.path()
    ))
}
