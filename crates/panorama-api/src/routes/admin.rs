//! Administration: sources, users and reference data (admin role).

use crate::AppState;
use crate::auth::UserAuth;
use crate::body;
use crate::error::{ApiResult, Problem};
use crate::provision::{self, NewSource, NewUser};
use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use panorama_core::{AdminUnit, Agency, Freshness, Indicator, Invalid, Role, Source, User};
use serde::Serialize;
use serde::de::DeserializeOwned;

async fn items<T: DeserializeOwned>(
    st: &AppState,
    headers: &HeaderMap,
    b: Body,
) -> ApiResult<Vec<T>> {
    body::format(headers, &[body::Format::Json])?;
    let bytes = body::read(headers, b, st.config.max_body_bytes).await?;
    body::json_items(&bytes, |v, e| {
        if v.is_object() {
            Invalid::one(super::auth::field_of(&e.to_string()), e.to_string())
        } else {
            Invalid::one("", "must be a JSON object")
        }
    })
}

fn check_all<T>(items: &[T], validate: impl Fn(&T) -> Result<(), Invalid>) -> ApiResult<()> {
    let errs: Vec<_> = items
        .iter()
        .enumerate()
        .filter_map(|(i, x)| validate(x).err().map(|e| e.under(&format!("[{i}]")).0))
        .flatten()
        .collect();
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Invalid(errs).into())
    }
}

/// A source with its freshness.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SourceView {
    /// The source.
    #[serde(flatten)]
    pub source: Source,
    /// Whether it honours its contract now.
    pub freshness: Freshness,
    /// For sources Panorama connects to (MQTT): the connection now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connection: Option<panorama_connect::ConnectorStatus>,
    /// For polled sources: how the last polls went.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<panorama_connect::PollStatus>,
}

/// The source as shown: its connector's secrets hidden.
fn shown(mut s: Source) -> Source {
    s.connector = s.connector.as_ref().map(panorama_connect::config::redact);
    s
}

/// Every source with its counts, last error, freshness against its
/// contract and, for MQTT sources, the state of the connection; for
/// polled sources, the state of the polls.
#[utoipa::path(get, path = "/api/v1/sources", tag = "sources",
    responses((status = 200, body = Vec<SourceView>), (status = 401, body = Problem)))]
pub async fn list_sources(
    State(st): State<AppState>,
    _u: UserAuth,
) -> ApiResult<Json<Vec<SourceView>>> {
    st.ingest.flush_activity().await?;
    let now = st.clock.now();
    Ok(Json(
        st.store()
            .sources()
            .await?
            .into_iter()
            .map(|s| SourceView {
                freshness: s.freshness(now),
                connection: st.connectors.as_ref().and_then(|c| c.status(&s.id)),
                poll: st.connectors.as_ref().and_then(|c| c.poll_status(&s.id)),
                source: shown(s),
            })
            .collect(),
    ))
}

/// A new source and its token.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CreatedSource {
    /// The source.
    pub source: Source,
    /// Bearer token for writes; shown only now.
    pub token: String,
}

/// Registers a source and returns its bearer token (admin).
#[utoipa::path(post, path = "/api/v1/sources", tag = "sources", request_body = NewSource,
    responses((status = 201, body = CreatedSource), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_source(
    State(st): State<AppState>,
    u: UserAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<(StatusCode, Json<CreatedSource>)> {
    u.require(&[Role::Admin])?;
    let mut new: Vec<NewSource> = items(&st, &headers, b).await?;
    let (Some(new), true) = (new.pop(), new.is_empty()) else {
        return Err(Invalid::one("", "send exactly one source object").into());
    };
    let (source, token) =
        provision::create_source(st.store().as_ref(), new, st.clock.now()).await?;
    if let Some(c) = &st.connectors {
        c.start(&source)?;
    }
    let source = shown(source);
    Ok((StatusCode::CREATED, Json(CreatedSource { source, token })))
}

/// Every user (admin).
#[utoipa::path(get, path = "/api/v1/users", tag = "users",
    responses((status = 200, body = Vec<User>), (status = 403, body = Problem)))]
pub async fn list_users(State(st): State<AppState>, u: UserAuth) -> ApiResult<Json<Vec<User>>> {
    u.require(&[Role::Admin])?;
    Ok(Json(st.store().users().await?))
}

/// Creates a local user (admin).
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser,
    responses((status = 201, body = User), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_user(
    State(st): State<AppState>,
    u: UserAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<(StatusCode, Json<User>)> {
    u.require(&[Role::Admin])?;
    let mut new: Vec<NewUser> = items(&st, &headers, b).await?;
    let (Some(new), true) = (new.pop(), new.is_empty()) else {
        return Err(Invalid::one("", "send exactly one user object").into());
    };
    Ok((
        StatusCode::CREATED,
        Json(provision::create_user(st.store().as_ref(), new, st.clock.now()).await?),
    ))
}

/// Creates or replaces admin units: one object or an array (admin). All or nothing.
#[utoipa::path(post, path = "/api/v1/admin-units", tag = "reference", request_body = Vec<AdminUnit>,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_admin_units(
    State(st): State<AppState>,
    u: UserAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<StatusCode> {
    u.require(&[Role::Admin])?;
    let units: Vec<AdminUnit> = items(&st, &headers, b).await?;
    check_all(&units, AdminUnit::validate)?;
    st.store().upsert_admin_units(&units).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates or replaces agencies: one object or an array (admin). All or nothing.
#[utoipa::path(post, path = "/api/v1/agencies", tag = "reference", request_body = Vec<Agency>,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_agencies(
    State(st): State<AppState>,
    u: UserAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<StatusCode> {
    u.require(&[Role::Admin])?;
    let agencies: Vec<Agency> = items(&st, &headers, b).await?;
    check_all(&agencies, Agency::validate)?;
    st.store().upsert_agencies(&agencies).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Creates or replaces indicator definitions: one object or an array (admin). All or nothing.
#[utoipa::path(post, path = "/api/v1/indicators", tag = "indicators", request_body = Vec<Indicator>,
    responses((status = 204), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_indicators(
    State(st): State<AppState>,
    u: UserAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<StatusCode> {
    u.require(&[Role::Admin])?;
    let inds: Vec<Indicator> = items(&st, &headers, b).await?;
    check_all(&inds, Indicator::validate)?;
    st.store().upsert_indicators(&inds).await?;
    Ok(StatusCode::NO_CONTENT)
}
