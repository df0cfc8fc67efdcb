//! Incidents (the board, the workflow, checklist, timeline, linked alerts,
//! attachments) and SOP templates.

use super::Q;
use super::rules::{actor, id, json, ops};
use crate::AppState;
use crate::auth::UserAuth;
use crate::body;
use crate::error::{ApiError, ApiResult, Problem};
use crate::params;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use panorama_rules::{
    ChecklistTick, IncidentDetail, IncidentPatch, NewIncident, SopInput, StatusChange,
};
use panorama_store::{
    Attachment, Incident, IncidentQuery, IncidentStatus, Severity, SopTemplate, TimelineEntry,
};
use serde::{Deserialize, Serialize};

/// Filter of the incident board.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncidentParams {
    /// Comma-separated statuses: new, assigned, in_progress, resolved, closed, reopened.
    pub status: Option<String>,
    /// Least severity: low, medium, high, critical.
    pub severity: Option<String>,
    /// Incident type code.
    #[serde(rename = "type")]
    pub incident_type: Option<String>,
    /// Assigned agency code.
    pub agency: Option<String>,
    /// Assigned person (username).
    pub assignee: Option<String>,
    /// Domain code.
    pub domain: Option<String>,
    /// Admin unit code; includes its descendants.
    pub admin_unit: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// One page of incidents, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct IncidentPage {
    /// Incidents of this page.
    pub items: Vec<Incident>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The incident board: filters by status, severity, type, agency, person,
/// domain and admin unit; newest first, in pages.
#[utoipa::path(get, path = "/api/v1/incidents", tag = "incidents", params(IncidentParams),
    responses((status = 200, body = IncidentPage), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn list_incidents(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<IncidentParams>,
) -> ApiResult<Json<IncidentPage>> {
    let ops = ops(&st)?;
    let status = crate::params::parsed_list(
        "status",
        &p.status,
        IncidentStatus::parse,
        "new, assigned, in_progress, resolved, closed or reopened",
    )?;
    let min_severity = p
        .severity
        .as_deref()
        .map(|s| {
            Severity::parse(s).ok_or_else(|| {
                ApiError::BadParam(
                    "severity".into(),
                    "must be low, medium, high or critical".into(),
                )
            })
        })
        .transpose()?;
    let page = ops
        .incidents(IncidentQuery {
            status,
            min_severity,
            incident_type: p.incident_type,
            agency: p.agency,
            assignee: p.assignee,
            domain: p.domain,
            admin_units: p.admin_unit.into_iter().collect(),
            cursor: p.cursor,
            limit: params::limit(p.limit)?,
        })
        .await?;
    Ok(Json(IncidentPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Creates an incident by hand or from alerts (`alerts`: their title,
/// place and severity are the defaults); admin, operator, officer.
#[utoipa::path(post, path = "/api/v1/incidents", tag = "incidents", request_body = NewIncident,
    responses((status = 201, body = Incident), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn create_incident(
    State(st): State<AppState>,
    u: UserAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<(StatusCode, Json<Incident>)> {
    let ops = ops(&st)?;
    let n: NewIncident = json(&headers, b).await?;
    Ok((
        StatusCode::CREATED,
        Json(ops.create_incident(&actor(&u), n).await?),
    ))
}

/// One incident with its timeline, attachments and the statuses it can move to.
#[utoipa::path(get, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, body = IncidentDetail), (status = 404, body = Problem)))]
pub async fn get_incident(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(iid): Path<String>,
) -> ApiResult<Json<IncidentDetail>> {
    Ok(Json(ops(&st)?.incident(id("id", &iid)?).await?))
}

/// Changes fields (title, type, severity, place, agency, person); each
/// change goes on the timeline. Send `version` to refuse stale edits (409).
#[utoipa::path(patch, path = "/api/v1/incidents/{id}", tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    request_body = IncidentPatch,
    responses((status = 200, body = Incident), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn patch_incident(
    State(st): State<AppState>,
    u: UserAuth,
    Path(iid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<Incident>> {
    let ops = ops(&st)?;
    let iid = id("id", &iid)?;
    let p: IncidentPatch = json(&headers, b).await?;
    Ok(Json(ops.update_incident(&actor(&u), iid, p).await?))
}

/// Moves an incident along the workflow (new → assigned → in_progress →
/// resolved → closed, reopened); 409 for a move the workflow forbids.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/status", tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    request_body = StatusChange,
    responses((status = 200, body = Incident), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn set_status(
    State(st): State<AppState>,
    u: UserAuth,
    Path(iid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<Incident>> {
    let ops = ops(&st)?;
    let iid = id("id", &iid)?;
    let c: StatusChange = json(&headers, b).await?;
    Ok(Json(ops.set_status(&actor(&u), iid, c).await?))
}

/// Text of a comment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentComment {
    /// The comment.
    pub text: String,
}

/// Adds a comment to the timeline.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/comments", tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    request_body = IncidentComment,
    responses((status = 200, body = Incident), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn comment(
    State(st): State<AppState>,
    u: UserAuth,
    Path(iid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<Incident>> {
    let ops = ops(&st)?;
    let iid = id("id", &iid)?;
    let c: IncidentComment = json(&headers, b).await?;
    Ok(Json(ops.comment_incident(&actor(&u), iid, &c.text).await?))
}

/// Ticks or unticks a step of the SOP checklist.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/checklist", tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    request_body = ChecklistTick,
    responses((status = 200, body = Incident), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn checklist(
    State(st): State<AppState>,
    u: UserAuth,
    Path(iid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<Incident>> {
    let ops = ops(&st)?;
    let iid = id("id", &iid)?;
    let t: ChecklistTick = json(&headers, b).await?;
    Ok(Json(ops.tick_checklist(&actor(&u), iid, t).await?))
}

/// Alerts to link.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkAlerts {
    /// Alert ids.
    pub alerts: Vec<i64>,
}

/// Links alerts to an incident.
#[utoipa::path(post, path = "/api/v1/incidents/{id}/alerts", tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    request_body = LinkAlerts,
    responses((status = 200, body = Incident), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn link_alerts(
    State(st): State<AppState>,
    u: UserAuth,
    Path(iid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<Incident>> {
    let ops = ops(&st)?;
    let iid = id("id", &iid)?;
    let l: LinkAlerts = json(&headers, b).await?;
    Ok(Json(ops.link_alerts(&actor(&u), iid, &l.alerts).await?))
}

/// The timeline of an incident, oldest first.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/timeline", tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, body = Vec<TimelineEntry>), (status = 404, body = Problem)))]
pub async fn timeline(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(iid): Path<String>,
) -> ApiResult<Json<Vec<TimelineEntry>>> {
    Ok(Json(ops(&st)?.incident(id("id", &iid)?).await?.timeline))
}

/// The attachments of an incident.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/attachments", tag = "incidents", params(("id" = i64, Path, description = "Incident id")),
    responses((status = 200, body = Vec<Attachment>), (status = 404, body = Problem)))]
pub async fn list_attachments(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(iid): Path<String>,
) -> ApiResult<Json<Vec<Attachment>>> {
    Ok(Json(ops(&st)?.incident(id("id", &iid)?).await?.attachments))
}

/// Name of an uploaded file.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadParams {
    /// File name, e.g. `hien-truong.jpg`.
    pub filename: String,
}

/// Attaches a file: the body is the file, `Content-Type` its media type
/// (photos, PDF, text, office documents; size and types are limited by
/// the `rules.attachments` settings).
#[utoipa::path(post, path = "/api/v1/incidents/{id}/attachments", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id"), UploadParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The file"),
    responses((status = 201, body = Attachment), (status = 403, body = Problem), (status = 404, body = Problem),
        (status = 413, body = Problem), (status = 415, body = Problem), (status = 422, body = Problem)))]
pub async fn upload(
    State(st): State<AppState>,
    u: UserAuth,
    Path(iid): Path<String>,
    Q(p): Q<UploadParams>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<(StatusCode, Json<Attachment>)> {
    let ops = ops(&st)?;
    let iid = id("id", &iid)?;
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let limit = usize::try_from(ops.config().attachments.max_bytes).unwrap_or(usize::MAX);
    let bytes = body::read(&headers, b, limit).await?;
    Ok((
        StatusCode::CREATED,
        Json(
            ops.add_attachment(&actor(&u), iid, &p.filename, &ct, &bytes)
                .await?,
        ),
    ))
}

/// Downloads an attachment.
#[utoipa::path(get, path = "/api/v1/incidents/{id}/attachments/{attachment}", tag = "incidents",
    params(("id" = i64, Path, description = "Incident id"), ("attachment" = i64, Path, description = "Attachment id")),
    responses((status = 200, description = "The file", content_type = "application/octet-stream"), (status = 404, body = Problem)))]
pub async fn download(
    State(st): State<AppState>,
    _u: UserAuth,
    Path((iid, aid)): Path<(String, String)>,
) -> ApiResult<Response> {
    let (a, bytes) = ops(&st)?
        .attachment(id("id", &iid)?, id("attachment", &aid)?)
        .await?;
    let mut resp = bytes.into_response();
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&a.content_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let encoded: String = a
        .filename
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect();
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// Every SOP template (the checklist of each incident type).
#[utoipa::path(get, path = "/api/v1/sops", tag = "incidents",
    responses((status = 200, body = Vec<SopTemplate>), (status = 401, body = Problem)))]
pub async fn list_sops(
    State(st): State<AppState>,
    _u: UserAuth,
) -> ApiResult<Json<Vec<SopTemplate>>> {
    Ok(Json(ops(&st)?.sops().await?))
}

/// Creates or replaces the SOP template of an incident type (admin).
#[utoipa::path(put, path = "/api/v1/sops/{code}", tag = "incidents", params(("code" = String, Path, description = "Incident type code")),
    request_body = SopInput,
    responses((status = 200, body = SopTemplate), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn put_sop(
    State(st): State<AppState>,
    u: UserAuth,
    Path(code): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<SopTemplate>> {
    let ops = ops(&st)?;
    let mut v: serde_json::Value = json(&headers, b).await?;
    if let serde_json::Value::Object(m) = &mut v {
        m.entry("incident_type")
            .or_insert_with(|| serde_json::Value::String(code.clone()));
    }
    let input: SopInput = panorama_rules::model::parse_value(v)?;
    Ok(Json(ops.put_sop(&actor(&u), &code, input).await?))
}

/// Deletes the SOP template of an incident type (admin).
#[utoipa::path(delete, path = "/api/v1/sops/{code}", tag = "incidents", params(("code" = String, Path, description = "Incident type code")),
    responses((status = 204), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delete_sop(
    State(st): State<AppState>,
    u: UserAuth,
    Path(code): Path<String>,
) -> ApiResult<StatusCode> {
    ops(&st)?.delete_sop(&actor(&u), &code).await?;
    Ok(StatusCode::NO_CONTENT)
}
