//! Subscriptions (ETSI GS CIM 009 §5.8, §5.11): create, retrieve, query,
//! update, delete. A subscription is stored as the client wrote it (terms
//! compacted, with the context it was written against) and parsed into a
//! [`Sub`] that the notifier (`notify.rs`) matches entity changes against.

use crate::context::Context;
use crate::error::{NgsiError, NgsiResult};
use crate::http::{self, answer, no_content, params};
use crate::{NgsiState, geoq, model, q};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use panorama_core::Timestamp;
use panorama_store::{LdSubscription, SharedLdSubscriptionStore};
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// The subscription routes, to be merged into the NGSI-LD router.
pub fn routes() -> Router<NgsiState> {
    Router::new()
        .route("/subscriptions", post(create).get(list))
        .route(
            "/subscriptions/{id}",
            get(retrieve).patch(update).delete(remove),
        )
}

/// One entity selector of a subscription.
#[derive(Debug, Clone)]
pub struct Selector {
    /// Exact id.
    pub id: Option<String>,
    /// Id pattern.
    pub id_pattern: Option<regex::Regex>,
    /// Type (expanded).
    pub entity_type: String,
}

/// The format of notified entities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Full attributes.
    Normalized,
    /// Values only.
    KeyValues,
}

/// A parsed, validated subscription.
#[derive(Debug, Clone)]
pub struct Sub {
    /// Id.
    pub id: String,
    /// The context its terms are written against.
    pub ctx: Context,
    /// Entity selectors (empty: any entity).
    pub entities: Vec<Selector>,
    /// Watched attributes (expanded); any attribute when absent.
    pub watched: Option<BTreeSet<String>>,
    /// Query.
    pub q: Option<q::Query>,
    /// Geo-query.
    pub geo: Option<geoq::GeoQuery>,
    /// Notified attributes (expanded); all when absent.
    pub attrs: Option<BTreeSet<String>>,
    /// Entity format.
    pub format: Format,
    /// Endpoint URI.
    pub uri: String,
    /// Media type of notifications.
    pub accept: http::Media,
    /// Extra headers sent with each notification.
    pub receiver_info: Vec<(String, String)>,
    /// Least seconds between two notifications.
    pub throttling: Option<f64>,
    /// Seconds between periodic notifications (not change-driven then).
    pub time_interval: Option<f64>,
    /// When it stops notifying.
    pub expires_at: Option<Timestamp>,
    /// Whether the client paused it.
    pub active: bool,
}

impl Sub {
    /// `active`, `paused` or `expired` at `now`.
    pub fn status(&self, now: Timestamp) -> &'static str {
        if self.expires_at.is_some_and(|e| e <= now) {
            "expired"
        } else if self.active {
            "active"
        } else {
            "paused"
        }
    }

    /// Whether the entity `doc` is one this subscription is about.
    pub fn selects(&self, doc: &model::Doc) -> bool {
        let id = doc.get("id").and_then(Value::as_str).unwrap_or_default();
        let types = model::types_of(doc);
        let selected = self.entities.is_empty()
            || self.entities.iter().any(|s| {
                types.contains(&s.entity_type)
                    && s.id.as_ref().is_none_or(|i| i == id)
                    && s.id_pattern.as_ref().is_none_or(|r| r.is_match(id))
            });
        if !selected {
            return false;
        }
        if let Some(qq) = &self.q
            && !q::matches(qq, doc, &self.ctx)
        {
            return false;
        }
        if let Some(g) = &self.geo {
            let geom = doc
                .get(&self.ctx.expand(&g.property))
                .and_then(|v| v.get(0))
                .and_then(|i| i.get("value"))
                .and_then(|v| serde_json::from_value::<geojson::Geometry>(v.clone()).ok())
                .and_then(|g| geo::Geometry::<f64>::try_from(g).ok());
            if !geom.is_some_and(|geom| geoq::holds(g, &geom)) {
                return false;
            }
        }
        true
    }

    /// Whether a change of `changed` (expanded names; `None`: unknown, any)
    /// concerns the watched attributes.
    pub fn watches(&self, changed: Option<&BTreeSet<String>>) -> bool {
        match (&self.watched, changed) {
            (None, _) | (_, None) => true,
            (Some(w), Some(c)) => w.iter().any(|a| {
                c.contains(a)
                    || model::short_name(a).is_some_and(|s| {
                        c.iter()
                            .any(|x| model::short_name(x).as_deref() == Some(&s))
                    })
            }),
        }
    }
}

/// Members a client may write in a subscription.
const MEMBERS: &[&str] = &[
    "id",
    "type",
    "subscriptionName",
    "name",
    "description",
    "entities",
    "watchedAttributes",
    "notificationTrigger",
    "timeInterval",
    "q",
    "geoQ",
    "csf",
    "scopeQ",
    "lang",
    "isActive",
    "notification",
    "expiresAt",
    "throttling",
    "temporalQ",
    "jsonldContext",
    "status",
];

fn text<'a>(v: &'a Value, field: &str) -> NgsiResult<&'a str> {
    v.as_str()
        .ok_or_else(|| NgsiError::bad(field, "must be a string"))
}

fn names(v: &Value, field: &str, ctx: &Context) -> NgsiResult<BTreeSet<String>> {
    let items = v
        .as_array()
        .ok_or_else(|| NgsiError::bad(field, "must be an array of attribute names"))?;
    if items.is_empty() {
        return Err(NgsiError::bad(field, "must not be empty"));
    }
    let mut out = BTreeSet::new();
    for (i, item) in items.iter().enumerate() {
        let f = format!("{field}[{i}]");
        let n = text(item, &f)?;
        model::check_term(&f, n)?;
        out.insert(ctx.expand(n));
    }
    Ok(out)
}

fn time(v: &Value, field: &str) -> NgsiResult<Timestamp> {
    let s = text(v, field)?;
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| NgsiError::bad(field, format!("'{s}' is not an RFC 3339 date-time: {e}")))
}

/// Parses and validates a subscription body (without `@context`).
pub fn parse(body: &Value, ctx: &Context, id: &str) -> NgsiResult<Sub> {
    let o = body
        .as_object()
        .ok_or_else(|| NgsiError::bad("", "a subscription must be a JSON object"))?;
    for k in o.keys() {
        if !MEMBERS.contains(&k.as_str()) {
            return Err(NgsiError::bad(
                k.as_str(),
                "is not a member of a subscription",
            ));
        }
    }
    match o.get("type") {
        Some(Value::String(t)) if t == "Subscription" => {}
        Some(_) => return Err(NgsiError::bad("type", "must be \"Subscription\"")),
        None => return Err(NgsiError::bad("type", "is required (\"Subscription\")")),
    }
    let mut entities = Vec::new();
    if let Some(v) = o.get("entities") {
        let items = v
            .as_array()
            .ok_or_else(|| NgsiError::bad("entities", "must be an array"))?;
        if items.is_empty() {
            return Err(NgsiError::bad("entities", "must not be empty"));
        }
        for (i, e) in items.iter().enumerate() {
            let at = |m: &str| format!("entities[{i}].{m}");
            let e = e
                .as_object()
                .ok_or_else(|| NgsiError::bad(format!("entities[{i}]"), "must be an object"))?;
            let ty = e
                .get("type")
                .ok_or_else(|| NgsiError::bad(at("type"), "is required"))?;
            let ty = text(ty, &at("type"))?;
            model::check_term(&at("type"), ty)?;
            let sid = match e.get("id") {
                Some(v) => {
                    let s = text(v, &at("id"))?;
                    model::check_id(&at("id"), s)?;
                    Some(s.to_string())
                }
                None => None,
            };
            let id_pattern = match e.get("idPattern") {
                Some(v) => Some(regex::Regex::new(text(v, &at("idPattern"))?).map_err(|e| {
                    NgsiError::bad(at("idPattern"), format!("is not a valid pattern: {e}"))
                })?),
                None => None,
            };
            entities.push(Selector {
                id: sid,
                id_pattern,
                entity_type: ctx.expand(ty),
            });
        }
    }
    let watched = match o.get("watchedAttributes") {
        Some(v) => Some(names(v, "watchedAttributes", ctx)?),
        None => None,
    };
    if entities.is_empty() && watched.is_none() {
        return Err(NgsiError::bad(
            "entities",
            "a subscription needs entities or watchedAttributes",
        ));
    }
    let time_interval = match o.get("timeInterval") {
        None => None,
        Some(v) => {
            if watched.is_some() {
                return Err(NgsiError::bad(
                    "timeInterval",
                    "cannot be given with watchedAttributes",
                ));
            }
            if o.contains_key("throttling") {
                return Err(NgsiError::bad(
                    "timeInterval",
                    "cannot be given with throttling",
                ));
            }
            match v.as_f64() {
                Some(t) if t > 0.0 => Some(t),
                _ => {
                    return Err(NgsiError::bad(
                        "timeInterval",
                        "must be a positive number of seconds",
                    ));
                }
            }
        }
    };
    let q = match o.get("q") {
        Some(v) => Some(q::parse(text(v, "q")?).map_err(|e| NgsiError::bad("q", e))?),
        None => None,
    };
    let geo = match o.get("geoQ") {
        Some(v) => Some(parse_geoq(v)?),
        None => None,
    };
    let active = match o.get("isActive") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(NgsiError::bad("isActive", "must be true or false")),
    };
    let throttling = match o.get("throttling") {
        None => None,
        Some(v) => match v.as_f64() {
            Some(t) if t > 0.0 => Some(t),
            _ => {
                return Err(NgsiError::bad(
                    "throttling",
                    "must be a positive number of seconds",
                ));
            }
        },
    };
    let expires_at = match o.get("expiresAt") {
        Some(v) => Some(time(v, "expiresAt")?),
        None => None,
    };
    let n = o
        .get("notification")
        .ok_or_else(|| NgsiError::bad("notification", "is required"))?
        .as_object()
        .ok_or_else(|| NgsiError::bad("notification", "must be an object"))?;
    let attrs = match n.get("attributes") {
        Some(v) => Some(names(v, "notification.attributes", ctx)?),
        None => None,
    };
    let format = match n
        .get("format")
        .map(|v| text(v, "notification.format"))
        .transpose()?
    {
        None | Some("normalized") | Some("concise") => Format::Normalized,
        Some("keyValues") | Some("simplified") => Format::KeyValues,
        Some(other) => {
            return Err(NgsiError::bad(
                "notification.format",
                format!("'{other}' is not normalized, concise, keyValues or simplified"),
            ));
        }
    };
    let ep = n
        .get("endpoint")
        .ok_or_else(|| NgsiError::bad("notification.endpoint", "is required"))?
        .as_object()
        .ok_or_else(|| NgsiError::bad("notification.endpoint", "must be an object"))?;
    let uri = text(
        ep.get("uri")
            .ok_or_else(|| NgsiError::bad("notification.endpoint.uri", "is required"))?,
        "notification.endpoint.uri",
    )?;
    let parsed = reqwest::Url::parse(uri).map_err(|e| {
        NgsiError::bad(
            "notification.endpoint.uri",
            format!("'{uri}' is not an absolute URI: {e}"),
        )
    })?;
    match parsed.scheme() {
        "http" | "https" => {}
        "mqtt" | "mqtts" => {
            return Err(NgsiError::OperationNotSupported(
                "notification.endpoint.uri: MQTT endpoints are not supported; use http or https"
                    .into(),
            ));
        }
        other => {
            return Err(NgsiError::bad(
                "notification.endpoint.uri",
                format!("scheme '{other}' is not http or https"),
            ));
        }
    }
    let accept = match ep
        .get("accept")
        .map(|v| text(v, "notification.endpoint.accept"))
        .transpose()?
    {
        None | Some("application/json") => http::Media::Json,
        Some("application/ld+json") => http::Media::LdJson,
        Some(other) => {
            return Err(NgsiError::bad(
                "notification.endpoint.accept",
                format!("'{other}' is not application/json or application/ld+json"),
            ));
        }
    };
    let mut receiver_info = Vec::new();
    if let Some(v) = ep.get("receiverInfo") {
        let items = v.as_array().ok_or_else(|| {
            NgsiError::bad("notification.endpoint.receiverInfo", "must be an array")
        })?;
        for (i, kv) in items.iter().enumerate() {
            let f = format!("notification.endpoint.receiverInfo[{i}]");
            let key = kv
                .get("key")
                .ok_or_else(|| NgsiError::bad(format!("{f}.key"), "is required"))
                .and_then(|k| text(k, &format!("{f}.key")))?;
            let value = kv
                .get("value")
                .ok_or_else(|| NgsiError::bad(format!("{f}.value"), "is required"))
                .and_then(|k| text(k, &format!("{f}.value")))?;
            if axum::http::HeaderName::from_bytes(key.as_bytes()).is_err()
                || HeaderValue::from_str(value).is_err()
            {
                return Err(NgsiError::bad(f, "is not a valid HTTP header"));
            }
            receiver_info.push((key.to_string(), value.to_string()));
        }
    }
    Ok(Sub {
        id: id.to_string(),
        ctx: ctx.clone(),
        entities,
        watched,
        q,
        geo,
        attrs,
        format,
        uri: uri.to_string(),
        accept,
        receiver_info,
        throttling,
        time_interval,
        expires_at,
        active,
    })
}

fn parse_geoq(v: &Value) -> NgsiResult<geoq::GeoQuery> {
    let o = v
        .as_object()
        .ok_or_else(|| NgsiError::bad("geoQ", "must be an object"))?;
    let get = |k: &str| {
        o.get(k)
            .ok_or_else(|| NgsiError::bad(format!("geoQ.{k}"), "is required"))
    };
    let rel = geoq::parse_georel(text(get("georel")?, "geoQ.georel")?)
        .map_err(|e| NgsiError::bad("geoQ.georel", e))?;
    let kind = text(get("geometry")?, "geoQ.geometry")?;
    let coords = match get("coordinates")? {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let geometry = geoq::parse_geometry(kind, &coords)
        .map_err(|(f, e)| NgsiError::bad(format!("geoQ.{f}"), e))?;
    let property = match o.get("geoproperty") {
        Some(p) => text(p, "geoQ.geoproperty")?.to_string(),
        None => "location".into(),
    };
    Ok(geoq::GeoQuery {
        rel,
        geometry,
        property,
    })
}

/// The stored form: the client's body and the context it was written in.
fn stored(body: &Value, ctx_value: &Value) -> Value {
    json!({"body": body, "context": ctx_value})
}

/// Reads a stored subscription back into its body, context and [`Sub`].
pub async fn revive(state: &NgsiState, s: &LdSubscription) -> NgsiResult<(Value, Context, Sub)> {
    let body = s.doc.get("body").cloned().unwrap_or(Value::Null);
    let given = s.doc.get("context").cloned().filter(|v| !v.is_null());
    let ctx = state.contexts.resolve(given).await?;
    let sub = parse(&body, &ctx, &s.id)?;
    Ok((body, ctx, sub))
}

fn subs(state: &NgsiState) -> NgsiResult<SharedLdSubscriptionStore> {
    state.store().clone().as_ld_subscriptions().ok_or_else(|| {
        NgsiError::OperationNotSupported("this store keeps no NGSI-LD subscriptions".into())
    })
}

fn context_value(b: &http::Body, v: &mut Value) -> Value {
    if b.ld {
        v.as_object_mut()
            .and_then(|o| o.remove("@context"))
            .unwrap_or(Value::Null)
    } else {
        b.link.clone().map(Value::String).unwrap_or(Value::Null)
    }
}

async fn create(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &[])?;
    s.write(&headers).await?;
    let b = http::body(&headers, &bytes, false)?;
    let mut body = b.json.clone();
    let cv = context_value(&b, &mut body);
    let ctx = s
        .contexts
        .resolve(Some(cv.clone()).filter(|v| !v.is_null()))
        .await?;
    let id = match body.get("id") {
        Some(v) => {
            let id = text(v, "id")?.to_string();
            model::check_id("id", &id)?;
            id
        }
        None => s.notifier.new_id("Subscription", s.clock.now()),
    };
    let sub = parse(&body, &ctx, &id)?;
    let now = s.clock.now();
    if sub.expires_at.is_some_and(|e| e <= now) {
        return Err(NgsiError::bad("expiresAt", "must be in the future"));
    }
    let store = subs(&s)?;
    if store.ld_subscription(&id).await?.is_some() {
        return Err(NgsiError::AlreadyExists(format!(
            "subscription '{id}' already exists"
        )));
    }
    if let Some(o) = body.as_object_mut() {
        o.remove("status");
        o.insert("id".into(), json!(id));
    }
    store
        .put_ld_subscription(&LdSubscription {
            id: id.clone(),
            doc: stored(&body, &cv),
            created_at: now,
            modified_at: now,
        })
        .await?;
    s.notifier.install(&s, sub).await;
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("/ngsi-ld/v1/subscriptions/{id}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

/// The client's view of a subscription: its body as written (no defaults
/// added) with id, type, status and the notification status fields.
pub fn view(state: &NgsiState, body: &Value, sub: &Sub) -> Value {
    let mut out = body.as_object().cloned().unwrap_or_default();
    out.insert("id".into(), json!(sub.id));
    out.insert("type".into(), json!("Subscription"));
    out.insert("status".into(), json!(sub.status(state.clock.now())));
    let st = state.notifier.status(&sub.id);
    let n = out
        .entry("notification")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Some(n) = n.as_object_mut() {
        n.insert("timesSent".into(), json!(st.times_sent));
        for (k, t) in [
            ("lastNotification", st.last_notification),
            ("lastSuccess", st.last_success),
            ("lastFailure", st.last_failure),
        ] {
            if let Some(t) = t {
                n.insert(k.into(), json!(crate::time_text(t)));
            }
        }
        if let Some(ok) = st.ok {
            n.insert("status".into(), json!(if ok { "ok" } else { "failed" }));
        }
    }
    Value::Object(out)
}

async fn retrieve(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = http::accept_json(&headers)?;
    s.read(&headers).await?;
    params(rq.as_deref(), &[])?;
    model::check_id("id", &id)?;
    let stored = subs(&s)?
        .ld_subscription(&id)
        .await?
        .ok_or_else(|| NgsiError::ResourceNotFound(format!("no subscription '{id}'")))?;
    let (body, ctx, sub) = revive(&s, &stored).await?;
    Ok(answer(StatusCode::OK, media, &ctx, view(&s, &body, &sub)))
}

async fn list(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let media = http::accept_json(&headers)?;
    s.read(&headers).await?;
    let p = params(rq.as_deref(), &["limit", "offset", "count"])?;
    let ctx = http::request_context(&s, &headers).await?;
    let num = |k: &str, d: usize| -> NgsiResult<usize> {
        p.get(k).map_or(Ok(d), |v| {
            v.parse::<usize>()
                .map_err(|_| NgsiError::bad(k, format!("'{v}' is not a non-negative integer")))
        })
    };
    let limit = num("limit", 20)?;
    let offset = num("offset", 0)?;
    if limit > s.config.max_limit {
        return Err(NgsiError::bad(
            "limit",
            format!("must be at most {}", s.config.max_limit),
        ));
    }
    let count = match p.get("count").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => {
            return Err(NgsiError::bad(
                "count",
                format!("'{v}' is not true or false"),
            ));
        }
    };
    let all = subs(&s)?.ld_subscriptions().await?;
    let total = all.len();
    let mut out = Vec::new();
    for stored in all.iter().skip(offset).take(limit) {
        let (body, _, sub) = revive(&s, stored).await?;
        out.push(view(&s, &body, &sub));
    }
    let mut resp = answer(StatusCode::OK, media, &ctx, Value::Array(out));
    if count && let Ok(v) = HeaderValue::from_str(&total.to_string()) {
        resp.headers_mut().insert("NGSILD-Results-Count", v);
    }
    Ok(resp)
}

async fn update(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    bytes: Bytes,
) -> NgsiResult<Response> {
    s.write(&headers).await?;
    model::check_id("id", &id)?;
    let b = http::body(&headers, &bytes, true)?;
    let mut patch = b.json.clone();
    let cv = context_value(&b, &mut patch);
    let store = subs(&s)?;
    let old = store
        .ld_subscription(&id)
        .await?
        .ok_or_else(|| NgsiError::ResourceNotFound(format!("no subscription '{id}'")))?;
    let po = patch
        .as_object()
        .ok_or_else(|| NgsiError::bad("", "a subscription fragment must be a JSON object"))?;
    if po.is_empty() {
        return Err(NgsiError::bad("", "the fragment changes nothing"));
    }
    if let Some(v) = po.get("id")
        && v.as_str() != Some(id.as_str())
    {
        return Err(NgsiError::bad("id", "cannot be changed"));
    }
    let mut body = old.doc.get("body").cloned().unwrap_or_else(|| json!({}));
    if let Some(o) = body.as_object_mut() {
        for (k, v) in po {
            if k == "notification"
                && let (Some(old_n), Some(new_n)) = (
                    o.get_mut("notification").and_then(Value::as_object_mut),
                    v.as_object(),
                )
            {
                for (nk, nv) in new_n {
                    old_n.insert(nk.clone(), nv.clone());
                }
                continue;
            }
            if v.is_null() {
                o.remove(k);
            } else {
                o.insert(k.clone(), v.clone());
            }
        }
    }
    let cv = if cv.is_null() {
        old.doc.get("context").cloned().unwrap_or(Value::Null)
    } else {
        cv
    };
    let ctx = s
        .contexts
        .resolve(Some(cv.clone()).filter(|v| !v.is_null()))
        .await?;
    let sub = parse(&body, &ctx, &id)?;
    let now = s.clock.now();
    store
        .put_ld_subscription(&LdSubscription {
            id: id.clone(),
            doc: stored(&body, &cv),
            created_at: old.created_at,
            modified_at: now,
        })
        .await?;
    s.notifier.replace(sub);
    Ok(no_content())
}

async fn remove(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> NgsiResult<Response> {
    s.write(&headers).await?;
    model::check_id("id", &id)?;
    if !subs(&s)?.delete_ld_subscription(&id).await? {
        return Err(NgsiError::ResourceNotFound(format!(
            "no subscription '{id}'"
        )));
    }
    s.notifier.forget(&id);
    Ok(no_content())
}
