//! Alerts (the feed and the lifecycle), in-console notifications and the
//! notification delivery log.

use super::Q;
use super::rules::{actor, id, json, json_or_default, ops};
use crate::AppState;
use crate::auth::UserAuth;
use crate::error::{ApiError, ApiResult, Problem};
use crate::params;
use axum::Json;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use panorama_rules::AlertDetail;
use panorama_store::{
    Alert, AlertQuery, AlertStatus, Delivery, DeliveryAttempt, DeliveryQuery, DeliveryStatus,
    Notification, Severity,
};
use serde::{Deserialize, Serialize};

/// Filter of the alert feed.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertParams {
    /// Comma-separated statuses: open, acknowledged, resolved (default all).
    pub status: Option<String>,
    /// Least severity: low, medium, high, critical.
    pub severity: Option<String>,
    /// Rule id.
    pub rule: Option<String>,
    /// Domain code.
    pub domain: Option<String>,
    /// Admin unit code; includes its descendants.
    pub admin_unit: Option<String>,
    /// Entity id.
    pub entity: Option<String>,
    /// Only alerts opened at or after this RFC 3339 time.
    pub since: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// One page of alerts, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertPage {
    /// Alerts of this page.
    pub items: Vec<Alert>,
    /// Pass as `cursor` for the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

fn severity(v: Option<&str>) -> ApiResult<Option<Severity>> {
    v.map(|s| {
        Severity::parse(s).ok_or_else(|| {
            ApiError::BadParam(
                "severity".into(),
                "must be low, medium, high or critical".into(),
            )
        })
    })
    .transpose()
}

/// The alert feed: filters by status, severity, rule, domain, admin unit,
/// entity and time; newest first, in pages.
#[utoipa::path(get, path = "/api/v1/alerts", tag = "alerts", params(AlertParams),
    responses((status = 200, body = AlertPage), (status = 400, body = Problem), (status = 401, body = Problem)))]
pub async fn list_alerts(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<AlertParams>,
) -> ApiResult<Json<AlertPage>> {
    let ops = ops(&st)?;
    let status = crate::params::parsed_list(
        "status",
        &p.status,
        AlertStatus::parse,
        "open, acknowledged or resolved",
    )?;
    let q = AlertQuery {
        status,
        min_severity: severity(p.severity.as_deref())?,
        rule: p.rule,
        domain: p.domain,
        admin_units: p.admin_unit.into_iter().collect(),
        entity: p.entity,
        since: p
            .since
            .as_deref()
            .map(|s| params::time("since", s))
            .transpose()?,
        cursor: p.cursor,
        limit: params::limit(p.limit)?,
    };
    let page = ops.alerts(q).await?;
    Ok(Json(AlertPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// One alert with who did what and when.
#[utoipa::path(get, path = "/api/v1/alerts/{id}", tag = "alerts", params(("id" = i64, Path, description = "Alert id")),
    responses((status = 200, body = AlertDetail), (status = 404, body = Problem)))]
pub async fn get_alert(
    State(st): State<AppState>,
    _u: UserAuth,
    Path(aid): Path<String>,
) -> ApiResult<Json<AlertDetail>> {
    Ok(Json(ops(&st)?.alert(id("id", &aid)?).await?))
}

/// An optional comment.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    /// Words for the record.
    #[serde(default)]
    pub comment: Option<String>,
}

/// Text of a comment.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    /// The comment.
    pub text: String,
}

/// Acknowledges an open alert (admin, operator, officer).
#[utoipa::path(post, path = "/api/v1/alerts/{id}/acknowledge", tag = "alerts", params(("id" = i64, Path, description = "Alert id")),
    request_body = CommentBody,
    responses((status = 200, body = AlertDetail), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem)))]
pub async fn acknowledge(
    State(st): State<AppState>,
    u: UserAuth,
    Path(aid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<AlertDetail>> {
    let ops = ops(&st)?;
    let aid = id("id", &aid)?;
    let c: CommentBody = json_or_default(&headers, b).await?;
    Ok(Json(
        ops.acknowledge(&actor(&u), aid, c.comment.as_deref())
            .await?,
    ))
}

/// Resolves an alert by hand, with a comment saying why.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/resolve", tag = "alerts", params(("id" = i64, Path, description = "Alert id")),
    request_body = CommentBody,
    responses((status = 200, body = AlertDetail), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn resolve(
    State(st): State<AppState>,
    u: UserAuth,
    Path(aid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<AlertDetail>> {
    let ops = ops(&st)?;
    let aid = id("id", &aid)?;
    let c: CommentBody = json(&headers, b).await?;
    Ok(Json(
        ops.resolve(&actor(&u), aid, c.comment.as_deref().unwrap_or(""))
            .await?,
    ))
}

/// Adds a comment to an alert.
#[utoipa::path(post, path = "/api/v1/alerts/{id}/comments", tag = "alerts", params(("id" = i64, Path, description = "Alert id")),
    request_body = TextBody,
    responses((status = 200, body = AlertDetail), (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn comment(
    State(st): State<AppState>,
    u: UserAuth,
    Path(aid): Path<String>,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<AlertDetail>> {
    let ops = ops(&st)?;
    let aid = id("id", &aid)?;
    let t: TextBody = json(&headers, b).await?;
    Ok(Json(ops.comment_alert(&actor(&u), aid, &t.text).await?))
}

/// Which notifications.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct NotificationParams {
    /// Only unread ones.
    pub unread: Option<bool>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// One page of notifications, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct NotificationPage {
    /// Notifications of this page.
    pub items: Vec<Notification>,
    /// Pass as `cursor` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The signed-in user's in-console notifications.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "alerts", params(NotificationParams),
    responses((status = 200, body = NotificationPage), (status = 401, body = Problem)))]
pub async fn notifications(
    State(st): State<AppState>,
    u: UserAuth,
    Q(p): Q<NotificationParams>,
) -> ApiResult<Json<NotificationPage>> {
    let page = ops(&st)?
        .notifications(
            &actor(&u),
            p.unread.unwrap_or(false),
            p.cursor.as_deref(),
            params::limit(p.limit)?,
        )
        .await?;
    Ok(Json(NotificationPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// Which notifications to mark read.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadBody {
    /// Notification ids; all of the user's when absent.
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
}

/// How many changed.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Marked {
    /// Notifications marked read.
    pub marked: u64,
}

/// Marks the signed-in user's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/read", tag = "alerts", request_body = ReadBody,
    responses((status = 200, body = Marked), (status = 401, body = Problem)))]
pub async fn mark_read(
    State(st): State<AppState>,
    u: UserAuth,
    headers: HeaderMap,
    b: Body,
) -> ApiResult<Json<Marked>> {
    let ops = ops(&st)?;
    let r: ReadBody = json_or_default(&headers, b).await?;
    let marked = ops.mark_read(&actor(&u), r.ids.as_deref()).await?;
    Ok(Json(Marked { marked }))
}

/// Filter of the delivery log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveryParams {
    /// pending, delivered or failed.
    pub status: Option<String>,
    /// Channel id.
    pub channel: Option<String>,
    /// From a previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–1000 (default 100).
    pub limit: Option<usize>,
}

/// One page of deliveries, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryPage {
    /// Deliveries of this page.
    pub items: Vec<Delivery>,
    /// Pass as `cursor` for the next page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// The notification delivery log: webhooks and e-mails with their status (admin).
#[utoipa::path(get, path = "/api/v1/deliveries", tag = "alerts", params(DeliveryParams),
    responses((status = 200, body = DeliveryPage), (status = 403, body = Problem)))]
pub async fn deliveries(
    State(st): State<AppState>,
    u: UserAuth,
    Q(p): Q<DeliveryParams>,
) -> ApiResult<Json<DeliveryPage>> {
    let status = p
        .status
        .as_deref()
        .map(|s| {
            DeliveryStatus::parse(s).ok_or_else(|| {
                ApiError::BadParam(
                    "status".into(),
                    "must be pending, delivered or failed".into(),
                )
            })
        })
        .transpose()?;
    let page = ops(&st)?
        .deliveries(
            &actor(&u),
            &DeliveryQuery {
                status,
                channel: p.channel,
                cursor: p.cursor,
                limit: params::limit(p.limit)?,
            },
        )
        .await?;
    Ok(Json(DeliveryPage {
        items: page.items,
        next_cursor: page.next_cursor,
    }))
}

/// A delivery with every attempt.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeliveryDetail {
    /// The delivery.
    #[serde(flatten)]
    pub delivery: Delivery,
    /// Attempts, oldest first.
    pub attempts: Vec<DeliveryAttempt>,
}

/// One delivery with its attempts (admin).
#[utoipa::path(get, path = "/api/v1/deliveries/{id}", tag = "alerts", params(("id" = i64, Path, description = "Delivery id")),
    responses((status = 200, body = DeliveryDetail), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn delivery(
    State(st): State<AppState>,
    u: UserAuth,
    Path(did): Path<String>,
) -> ApiResult<Json<DeliveryDetail>> {
    let (delivery, attempts) = ops(&st)?.delivery(&actor(&u), id("id", &did)?).await?;
    Ok(Json(DeliveryDetail { delivery, attempts }))
}
