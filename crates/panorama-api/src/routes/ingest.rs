//! The write routes: observations, entities, indicator values. Every batch
//! is all or nothing: one bad item refuses the request with a problem+json
//! listing every bad item as `[i].field`, and nothing is stored.

use crate::AppState;
use crate::auth::SourceAuth;
use crate::body::{self, Format};
use crate::error::{ApiError, ApiResult, Problem};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use panorama_core::{Entity, IndicatorValue, IndicatorValueInput, Invalid};
use panorama_store::UpsertCount;
use serde::Serialize;

/// What was stored.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Accepted {
    /// Number of observations made durable.
    pub accepted: usize,
}

/// Appends observations. Body: a JSON array of `{entity, attribute, time,
/// value}` (`application/json`) or one per line (`application/x-ndjson`).
/// Answered only once the observations are durable. All or nothing.
/// Under overload: 503 with Retry-After; retry the same request.
#[utoipa::path(post, path = "/api/v1/observations", tag = "ingest",
    request_body(content = Vec<panorama_core::observation::ObservationInput>, content_type = "application/json"),
    security(("source_token" = [])),
    responses((status = 200, body = Accepted), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem),
        (status = 503, body = Problem)))]
pub async fn post_observations(
    State(st): State<AppState>,
    SourceAuth(src): SourceAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<Accepted>> {
    let fmt = body::format(&headers, &[Format::Json, Format::Ndjson])?;
    let bytes = body::read(&headers, b, st.config.max_body_bytes).await?;
    let obs = body::observations(&bytes, fmt, st.clock.now(), st.config.max_items)?;
    let accepted = st.ingest.observations(&src.id, obs).await?;
    Ok(Json(Accepted { accepted }))
}

fn explain_entity(v: &serde_json::Value, e: serde_json::Error) -> Invalid {
    if !v.is_object() {
        return Invalid::one("", "must be a JSON object");
    }
    let msg = e.to_string();
    let field = super::auth::field_of(&msg);
    Invalid::one(field, msg)
}

/// Creates or replaces entities: one object or an array. All or nothing.
#[utoipa::path(post, path = "/api/v1/entities", tag = "ingest",
    request_body(content = Vec<Entity>, content_type = "application/json"),
    security(("source_token" = [])),
    responses((status = 200, body = UpsertCount), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn post_entities(
    State(st): State<AppState>,
    SourceAuth(src): SourceAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<UpsertCount>> {
    body::format(&headers, &[Format::Json])?;
    let bytes = body::read(&headers, b, st.config.max_body_bytes).await?;
    let entities: Vec<Entity> = body::json_items(&bytes, explain_entity)?;
    if entities.len() > st.config.max_items {
        return Err(ApiError::TooManyItems(format!(
            "at most {} entities per request",
            st.config.max_items
        )));
    }
    let mut errs = Vec::new();
    for (i, e) in entities.iter().enumerate() {
        if let Err(inv) = e.validate() {
            errs.extend(inv.under(&format!("[{i}]")).0);
        }
    }
    if !errs.is_empty() {
        return Err(Invalid(errs).into());
    }
    Ok(Json(st.ingest.entities(&src.id, entities).await?))
}

/// Submits indicator values for periods and admin units: one object or an
/// array. A value for a period and unit that already has one becomes a new
/// revision; history is kept. All or nothing.
#[utoipa::path(post, path = "/api/v1/indicator-values", tag = "ingest",
    request_body(content = Vec<IndicatorValueInput>, content_type = "application/json"),
    security(("source_token" = [])),
    responses((status = 200, body = Vec<IndicatorValue>), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn post_indicator_values(
    State(st): State<AppState>,
    SourceAuth(src): SourceAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<Vec<IndicatorValue>>> {
    body::format(&headers, &[Format::Json])?;
    let bytes = body::read(&headers, b, st.config.max_body_bytes).await?;
    let values: Vec<IndicatorValueInput> = body::json_items(&bytes, explain_entity)?;
    if values.len() > st.config.max_items {
        return Err(ApiError::TooManyItems(format!(
            "at most {} values per request",
            st.config.max_items
        )));
    }
    Ok(Json(
        st.ingest
            .indicator_values(&format!("source:{}", src.id), values)
            .await?,
    ))
}
