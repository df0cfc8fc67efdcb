//! Rules (admin writes, everyone reads) and dry-runs; also the helpers the
//! operations routes share (the service, JSON bodies, ids, error mapping).

use super::Q;
use crate::AppState;
use crate::auth::UserAuth;
use crate::body;
use crate::error::{ApiError, ApiResult, Problem};
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use panorama_core::Invalid;
use panorama_rules::dryrun::DryRun;
use panorama_rules::{Actor, Ops, OpsError, Rule, RuleView};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// Largest JSON body of an operations request (rules with zones included).
const MAX_JSON: usize = 1024 * 1024;

impl From<OpsError> for ApiError {
    fn from(e: OpsError) -> Self {
        match e {
            OpsError::Invalid(i) => Self::Invalid(i),
            OpsError::NotFound(m) => Self::NotFound(m),
            OpsError::Conflict(m) => Self::Conflict(m),
            OpsError::Forbidden(m) => Self::Forbidden(m),
            OpsError::TooLarge { limit } => Self::PayloadTooLarge {
                limit: usize::try_from(limit).unwrap_or(usize::MAX),
            },
            OpsError::UnsupportedType(_) => Self::UnsupportedMediaType {
                expected: "an accepted attachment type (image/jpeg, image/png, image/webp, application/pdf, text/plain, office documents)",
            },
            OpsError::Store(s) => s.into(),
        }
    }
}

/// The operations service, or 503 when this server runs without one.
pub(crate) fn ops(st: &AppState) -> ApiResult<&Ops> {
    st.ops.as_ref().ok_or_else(|| ApiError::Overloaded {
        detail: "the rule engine is not running on this server".into(),
        retry_after_secs: 60,
    })
}

/// The acting user.
pub(crate) fn actor(u: &UserAuth) -> Actor {
    Actor::from(&u.0)
}

/// A numeric id from the path.
pub(crate) fn id(name: &str, v: &str) -> ApiResult<i64> {
    v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
        ApiError::BadParam(name.into(), format!("must be a positive number, not '{v}'"))
    })
}

/// Reads a JSON body as `T`, naming the offending field.
pub(crate) async fn json<T: DeserializeOwned>(headers: &HeaderMap, b: Body) -> ApiResult<T> {
    body::format(headers, &[body::Format::Json])?;
    let bytes = body::read(headers, b, MAX_JSON).await?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedBody {
            detail: format!("the body is not valid JSON: {e}"),
            field: None,
        })?;
    panorama_rules::model::parse_value(v).map_err(ApiError::Invalid)
}

/// Reads an optional JSON body: an empty body is `T::default()`.
pub(crate) async fn json_or_default<T: DeserializeOwned + Default>(
    headers: &HeaderMap,
    b: Body,
) -> ApiResult<T> {
    let bytes = body::read(headers, b, MAX_JSON).await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    body::format(headers, &[body::Format::Json])?;
    let v: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| ApiError::MalformedBody {
            detail: format!("the body is not valid JSON: {e}"),
            field: None,
        })?;
    panorama_rules::model::parse_value(v).map_err(ApiError::Invalid)
}

/// How far back a dry-run looks.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DryRunParams {
    /// Days of history to replay (default 7; at most `rules.dry_run_max_days`, 31 by default).
    pub days: Option<u32>,
}

/// Every rule, from the API and from rules files.
#[utoipa::path(get, path = "/api/v1/rules", tag = "rules",
    responses((status = 200, body = Vec<RuleView>), (status = 401, body = Problem)))]
pub async fn list_rules(
    State(st): State<AppState>,
    _u: UserAuth,
) -> ApiResult<Json<Vec<RuleView>>> {
    Ok(Json(ops(&st)?.rules().await?))
}

/// Creates a rule (admin). Bad definitions get a problem+json naming the field.
#[utoipa::path(post, path = "/api/v1/rules", tag = "rules", request_body = Rule,
    responses((status = 201, body = RuleView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn create_rule(
    State(st): State<AppState>,
    u: UserAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<(StatusCode, Json<RuleView>)> {
    let ops = ops(&st)?;
    let v: serde_json::Value = json(&headers, b).await?;
    Ok((
        StatusCode::CREATED,
        Json(ops.create_rule(&actor(&u), v).await?),
    ))
}

/// One rule.
#[utoipa::path(get, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = String, Path, description = "Rule id")),
    responses((status = 200, body = RuleView), (status = 404, body = Problem)))]
pub async fn get_rule(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(rid): Path<String>,
) -> ApiResult<Json<RuleView>> {
    Ok(Json(ops(&st)?.rule(&rid).await?))
}

/// Creates or replaces a rule (admin); rules from files are read-only (409).
#[utoipa::path(put, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = String, Path, description = "Rule id")), request_body = Rule,
    responses((status = 200, body = RuleView), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn put_rule(
    State(st): State<AppState>,
    u: UserAuth,
    Path(rid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<RuleView>> {
    let ops = ops(&st)?;
    let v: serde_json::Value = json(&headers, b).await?;
    Ok(Json(ops.replace_rule(&actor(&u), &rid, v).await?))
}

/// Deletes a rule (admin); its open alerts are resolved.
#[utoipa::path(delete, path = "/api/v1/rules/{id}", tag = "rules", params(("id" = String, Path, description = "Rule id")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn delete_rule(
    State(st): State<AppState>,
    u: UserAuth,
    Path(rid): Path<String>,
) -> ApiResult<StatusCode> {
    ops(&st)?.delete_rule(&actor(&u), &rid).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What a rule (given in the body, not stored) would have fired over the
/// last `days` of history.
#[utoipa::path(post, path = "/api/v1/rules/dry-run", tag = "rules", params(DryRunParams), request_body = Rule,
    responses((status = 200, body = DryRun), (status = 400, body = Problem), (status = 422, body = Problem)))]
pub async fn dry_run(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<DryRunParams>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<DryRun>> {
    let ops = ops(&st)?;
    let v: serde_json::Value = json(&headers, b).await?;
    if !v.is_object() {
        return Err(Invalid::one("", "must be a rule object").into());
    }
    Ok(Json(ops.dry_run_json(v, p.days.unwrap_or(7)).await?))
}

/// What a stored rule would have fired over the last `days` of history.
#[utoipa::path(post, path = "/api/v1/rules/{id}/dry-run", tag = "rules", params(("id" = String, Path, description = "Rule id"), DryRunParams),
    responses((status = 200, body = DryRun), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn dry_run_stored(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(rid): Path<String>,
    Q(p): Q<DryRunParams>,
) -> ApiResult<Json<DryRun>> {
    Ok(Json(
        ops(&st)?.dry_run_stored(&rid, p.days.unwrap_or(7)).await?,
    ))
}
