//! Read routes over entities and observations.

use super::Q;
use crate::AppState;
use crate::auth::UserAuth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::params::{self, EntityFilter};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use panorama_core::{AdminLevel, Agg, Bucket, Entity};
use panorama_store::{GroupSeries, GroupedSeriesQuery, LatestValue, SeriesData, SeriesQuery};
use serde::{Deserialize, Serialize};

/// One page of entities.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EntityPage {
    /// Entities of this page, ordered by id.
    pub items: Vec<Entity>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Paging and format of entity listings.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
    /// `geojson` for a FeatureCollection.
    pub format: Option<String>,
}

/// Lists entities matching every given filter, in pages.
#[utoipa::path(get, path = "/api/v1/entities", tag = "entities", params(EntityFilter, PageParams),
    responses((status = 200, body = EntityPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 422, body = Problem)))]
pub async fn list_entities(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(filter): Q<EntityFilter>,
    Q(page): Q<PageParams>,
) -> ApiResult<Response> {
    let q = filter.query(page.cursor, params::limit(page.limit)?)?;
    let p = st.store().query_entities(&q).await?;
    match page.format.as_deref() {
        None | Some("json") => Ok(Json(EntityPage {
            items: p.items,
            next_cursor: p.next_cursor,
        })
        .into_response()),
        Some("geojson") => {
            let features: Vec<serde_json::Value> = p
                .items
                .into_iter()
                .map(|mut e| {
                    let geometry = e.location.take();
                    serde_json::json!({"type": "Feature", "id": e.id, "geometry": geometry, "properties": e})
                })
                .collect();
            let fc = serde_json::json!({"type": "FeatureCollection", "features": features, "next_cursor": p.next_cursor});
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

/// One entity.
#[utoipa::path(get, path = "/api/v1/entities/{id}", tag = "entities",
    params(("id" = String, Path, description = "Entity id (URN)")),
    responses((status = 200, body = Entity), (status = 404, body = Problem)))]
pub async fn get_entity(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Entity>> {
    st.store()
        .entity(&id)
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("entity '{id}' does not exist")))
}

/// Latest value of every attribute of one entity.
#[utoipa::path(get, path = "/api/v1/entities/{id}/latest", tag = "entities",
    params(("id" = String, Path, description = "Entity id (URN)")),
    responses((status = 200, body = Vec<LatestValue>), (status = 404, body = Problem)))]
pub async fn entity_latest(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<LatestValue>>> {
    if st.store().entity(&id).await?.is_none() {
        return Err(ApiError::NotFound(format!("entity '{id}' does not exist")));
    }
    Ok(Json(st.store().latest(&[id]).await?))
}

/// Latest values of a page of entities.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LatestPage {
    /// Latest value of each attribute of each entity of the page.
    pub items: Vec<LatestValue>,
    /// Pass as `cursor` for the next page of entities.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// Most entities in one page of `/api/v1/latest`. Higher than for entity
/// listings: a wall or map wants every latest value at once, and they are
/// answered from memory (about 100 bytes of JSON each).
pub const MAX_LATEST_PAGE: usize = 10_000;

/// Paging of latest values.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LatestPageParams {
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Entities per page, 1–10000 (default 100).
    pub limit: Option<usize>,
}

/// Latest state of the entities matching a filter (paged by entity).
#[utoipa::path(get, path = "/api/v1/latest", tag = "observations", params(EntityFilter, LatestPageParams),
    responses((status = 200, body = LatestPage), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn latest(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(filter): Q<EntityFilter>,
    Q(page): Q<LatestPageParams>,
) -> ApiResult<Json<LatestPage>> {
    let q = filter.query(
        page.cursor,
        params::limit_up_to(page.limit, MAX_LATEST_PAGE)?,
    )?;
    let p = st.store().latest_matching(&q).await?;
    Ok(Json(LatestPage {
        items: p.items,
        next_cursor: p.next_cursor,
    }))
}

/// Series parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// Entity id.
    pub entity: String,
    /// Attribute name.
    pub attribute: String,
    /// Start (RFC 3339), inclusive; default `to` − 24 h.
    pub from: Option<String>,
    /// End (RFC 3339), exclusive; default now.
    pub to: Option<String>,
    /// Bucket width: 1m, 5m, 10m, 15m, 30m, 1h, 3h, 6h, 12h, 1d (aligned to Vietnamese time). Raw values when absent.
    pub bucket: Option<String>,
    /// Aggregation per bucket: avg (default), min, max, sum, count, last.
    pub agg: Option<String>,
    /// Most raw points (default 10,000, at most 100,000).
    pub limit: Option<usize>,
}

fn bucket_agg(bucket: Option<&str>, agg: Option<&str>) -> Result<Option<(Bucket, Agg)>, ApiError> {
    let agg = agg
        .map(|a| {
            Agg::parse(a).ok_or_else(|| {
                ApiError::BadParam(
                    "agg".into(),
                    "must be avg, min, max, sum, count or last".into(),
                )
            })
        })
        .transpose()?;
    match bucket {
        None if agg.is_some() => Err(ApiError::BadParam(
            "bucket".into(),
            "is required with agg".into(),
        )),
        None => Ok(None),
        Some(b) => {
            let b = Bucket::parse(b).map_err(|e| ApiError::BadParam("bucket".into(), e))?;
            Ok(Some((b, agg.unwrap_or(Agg::Avg))))
        }
    }
}

/// Series data: raw points or buckets.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeriesResponse {
    /// Entity id.
    pub entity: String,
    /// Attribute.
    pub attribute: String,
    /// Bucket width, when bucketed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bucket: Option<String>,
    /// Aggregation, when bucketed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agg: Option<Agg>,
    /// `{time, value}` raw points, or `{time, value, count}` buckets, in time order.
    #[schema(value_type = Vec<Object>)]
    pub points: SeriesData,
}

/// One attribute of one entity over a time window.
#[utoipa::path(get, path = "/api/v1/series", tag = "observations", params(SeriesParams),
    responses((status = 200, body = SeriesResponse), (status = 400, body = Problem), (status = 404, body = Problem)))]
pub async fn series(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<SeriesParams>,
) -> ApiResult<Json<SeriesResponse>> {
    let (from, to) = params::window(p.from.as_deref(), p.to.as_deref(), st.clock.now(), 3660)?;
    let bucket = bucket_agg(p.bucket.as_deref(), p.agg.as_deref())?;
    let limit = match p.limit {
        None => 10_000,
        Some(n) if (1..=100_000).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::BadParam(
                "limit".into(),
                "must be between 1 and 100000".into(),
            ));
        }
    };
    let points = st
        .store()
        .series(&SeriesQuery {
            entity: p.entity.clone(),
            attribute: p.attribute.clone(),
            from,
            to,
            bucket,
            limit,
        })
        .await?;
    Ok(Json(SeriesResponse {
        entity: p.entity,
        attribute: p.attribute,
        bucket: p.bucket,
        agg: bucket.map(|(_, a)| a),
        points,
    }))
}

/// Grouped series parameters.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct GroupedParams {
    /// Attribute name (numeric).
    pub attribute: String,
    /// Start (RFC 3339), inclusive; default `to` − 24 h.
    pub from: Option<String>,
    /// End (RFC 3339), exclusive; default now.
    pub to: Option<String>,
    /// Bucket width (default 1h).
    pub bucket: Option<String>,
    /// Aggregation (default avg).
    pub agg: Option<String>,
    /// Group by the ancestor at this level (`district`, `province`) instead of each entity's own unit.
    pub level: Option<String>,
}

/// One attribute across the entities matching a filter, bucketed and grouped by admin unit.
#[utoipa::path(get, path = "/api/v1/series/grouped", tag = "observations", params(GroupedParams, EntityFilter),
    responses((status = 200, body = Vec<GroupSeries>), (status = 400, body = Problem)))]
pub async fn grouped_series(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<GroupedParams>,
    Q(filter): Q<EntityFilter>,
) -> ApiResult<Json<Vec<GroupSeries>>> {
    let (from, to) = params::window(p.from.as_deref(), p.to.as_deref(), st.clock.now(), 3660)?;
    let (bucket, agg) = bucket_agg(Some(p.bucket.as_deref().unwrap_or("1h")), p.agg.as_deref())?
        .ok_or_else(|| ApiError::BadParam("bucket".into(), "is required".into()))?;
    let level = p
        .level
        .as_deref()
        .map(|l| {
            AdminLevel::parse(l).ok_or_else(|| {
                ApiError::BadParam(
                    "level".into(),
                    "must be country, province, district or commune".into(),
                )
            })
        })
        .transpose()?;
    let q = GroupedSeriesQuery {
        filter: filter.query(None, usize::MAX)?,
        attribute: p.attribute,
        from,
        to,
        bucket,
        agg,
        level,
    };
    Ok(Json(st.store().grouped_series(&q).await?))
}
