//! HTTP plumbing shared by every NGSI-LD route: content negotiation
//! (`application/json` + Link header, `application/ld+json` + `@context`),
//! request bodies, query parameters and answers.

use crate::NgsiState;
use crate::context::{CONTEXT_REL, Context};
use crate::error::{NgsiError, NgsiResult};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::BTreeMap;

/// The media type of an answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Media {
    /// `application/json`, context in a Link header.
    Json,
    /// `application/ld+json`, context in the body.
    LdJson,
    /// `application/geo+json`: entities as GeoJSON Features (context in a Link header).
    GeoJson,
}

/// Picks the answer's media type from `Accept` (406 when none fits).
pub fn accept(headers: &HeaderMap) -> NgsiResult<Media> {
    let Some(raw) = headers.get(header::ACCEPT) else {
        return Ok(Media::Json);
    };
    let raw = raw
        .to_str()
        .map_err(|_| NgsiError::NotAcceptable("the Accept header is not text".into()))?;
    let mut best: Option<(f32, Media)> = None;
    for part in raw.split(',') {
        let mut fields = part.split(';');
        let mt = fields
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        let q = fields
            .filter_map(|f| {
                f.trim()
                    .strip_prefix("q=")
                    .and_then(|v| v.parse::<f32>().ok())
            })
            .next()
            .unwrap_or(1.0);
        let m = match mt.as_str() {
            "application/ld+json" => Media::LdJson,
            "application/geo+json" => Media::GeoJson,
            "application/json" | "*/*" | "application/*" => Media::Json,
            _ => continue,
        };
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, m));
        }
    }
    best.map(|(_, m)| m).ok_or_else(|| {
        NgsiError::NotAcceptable(format!(
            "cannot answer in any of '{raw}'; this API answers application/json, application/ld+json or application/geo+json"
        ))
    })
}

/// Like [`accept`], for answers that are not entities: GeoJSON is only for
/// retrieving and querying entities, so asking for it alone is 406.
pub fn accept_json(headers: &HeaderMap) -> NgsiResult<Media> {
    match accept(headers)? {
        Media::GeoJson => Err(NgsiError::NotAcceptable(
            "application/geo+json is only for entities; this resource answers application/json or application/ld+json".into(),
        )),
        m => Ok(m),
    }
}

/// The context named by a Link header, if any (400 when several).
pub fn link_context(headers: &HeaderMap) -> NgsiResult<Option<String>> {
    let mut found = Vec::new();
    for v in headers.get_all(header::LINK) {
        let v = v
            .to_str()
            .map_err(|_| NgsiError::bad("Link", "is not text"))?;
        for link in v.split(',') {
            let link = link.trim();
            let Some(rest) = link.strip_prefix('<') else {
                continue;
            };
            let Some((url, params)) = rest.split_once('>') else {
                return Err(NgsiError::bad(
                    "Link",
                    format!("'{link}' is not <url>; rel=…"),
                ));
            };
            if params.contains(CONTEXT_REL) {
                found.push(url.to_string());
            }
        }
    }
    if found.len() > 1 {
        return Err(NgsiError::bad(
            "Link",
            "names more than one JSON-LD context",
        ));
    }
    Ok(found.pop())
}

/// The context of a request without a body (from the Link header).
pub async fn request_context(state: &NgsiState, headers: &HeaderMap) -> NgsiResult<Context> {
    let given = link_context(headers)?.map(Value::String);
    state.contexts.resolve(given).await
}

/// What a write request carried.
#[derive(Debug)]
pub struct Body {
    /// The JSON (with `@context` still in it for ld+json).
    pub json: Value,
    /// Whether the body is `application/ld+json`.
    pub ld: bool,
    /// The Link header's context (for `application/json`).
    pub link: Option<String>,
}

/// Reads a JSON body: 415 for other media types, `InvalidRequest` when it
/// is not JSON, `BadRequestData` for misplaced or missing `@context`.
pub fn body(headers: &HeaderMap, bytes: &[u8], merge_patch: bool) -> NgsiResult<Body> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let ld = match ct.as_deref() {
        Some("application/json") => false,
        Some("application/merge-patch+json") if merge_patch => false,
        Some("application/ld+json") => true,
        Some(other) => {
            return Err(NgsiError::UnsupportedMediaType(format!(
                "Content-Type '{other}' is not accepted; send application/json or application/ld+json{}",
                if merge_patch {
                    " (or application/merge-patch+json)"
                } else {
                    ""
                }
            )));
        }
        None => {
            return Err(NgsiError::UnsupportedMediaType(
                "Content-Type is missing; send application/json or application/ld+json".into(),
            ));
        }
    };
    let json: Value = serde_json::from_slice(bytes).map_err(|e| NgsiError::InvalidRequest {
        detail: format!("the body is not valid JSON: {e}"),
        field: None,
    })?;
    let link = link_context(headers)?;
    if ld && link.is_some() {
        // Two contexts for one body: which one applies would be a guess.
        return Err(NgsiError::bad(
            "Link",
            "must not name a JSON-LD context with Content-Type application/ld+json (the context is the body's @context)",
        ));
    }
    let check = |v: &Value, at: &str| -> NgsiResult<()> {
        let has = v.get("@context").is_some();
        if ld && !has {
            return Err(NgsiError::bad(
                format!("{at}@context"),
                "is required with Content-Type application/ld+json",
            ));
        }
        if !ld && has {
            return Err(NgsiError::bad(
                format!("{at}@context"),
                "must not be in the body with Content-Type application/json; use a Link header or application/ld+json",
            ));
        }
        Ok(())
    };
    // Batch items are checked one by one (each fails on its own).
    if json.is_object() {
        check(&json, "")?;
    }
    Ok(Body { json, ld, link })
}

/// Resolves the context of one JSON object of a body and removes its `@context`.
pub async fn take_context(state: &NgsiState, b: &Body, v: &mut Value) -> NgsiResult<Context> {
    let has = v.get("@context").is_some();
    if b.ld && !has {
        return Err(NgsiError::bad(
            "@context",
            "is required with Content-Type application/ld+json",
        ));
    }
    if !b.ld && has {
        return Err(NgsiError::bad(
            "@context",
            "must not be in the body with Content-Type application/json",
        ));
    }
    let given = if b.ld {
        v.as_object_mut().and_then(|o| o.remove("@context"))
    } else {
        b.link.clone().map(Value::String)
    };
    state.contexts.resolve(given).await
}

/// Query parameters, refusing any this route does not know (InvalidRequest).
pub fn params(raw: Option<&str>, allowed: &[&str]) -> NgsiResult<BTreeMap<String, String>> {
    let pairs: Vec<(String, String)> = match raw {
        Some(r) if !r.is_empty() => serde_urlencoded_pairs(r)?,
        _ => Vec::new(),
    };
    let mut out = BTreeMap::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            return Err(NgsiError::InvalidRequest {
                detail: format!("query parameter '{k}' is not known here"),
                field: Some(k),
            });
        }
        out.insert(k, v);
    }
    Ok(out)
}

fn serde_urlencoded_pairs(raw: &str) -> NgsiResult<Vec<(String, String)>> {
    let mut out = Vec::new();
    for part in raw.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        out.push((decode(k)?, decode(v)?));
    }
    Ok(out)
}

fn decode(s: &str) -> NgsiResult<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                    }
                    None => {
                        return Err(NgsiError::bad(
                            "",
                            format!("'{s}' has a bad percent-escape"),
                        ));
                    }
                }
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| NgsiError::bad("", format!("'{s}' is not UTF-8 once decoded")))
}

/// `options` (and `format`) of a request.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// keyValues / simplified.
    pub key_values: bool,
    /// sysAttrs.
    pub sys_attrs: bool,
    /// noOverwrite (append).
    pub no_overwrite: bool,
    /// update (batch upsert).
    pub update: bool,
    /// replace (batch upsert).
    pub replace: bool,
}

/// Parses `options` and `format`.
pub fn options(p: &BTreeMap<String, String>) -> NgsiResult<Options> {
    let mut o = Options::default();
    if let Some(raw) = p.get("options") {
        for opt in raw.split(',') {
            match opt {
                "keyValues" | "simplified" => o.key_values = true,
                "normalized" | "concise" => {}
                "sysAttrs" => o.sys_attrs = true,
                "noOverwrite" => o.no_overwrite = true,
                "update" => o.update = true,
                "replace" => o.replace = true,
                other => {
                    return Err(NgsiError::InvalidRequest {
                        detail: format!(
                            "options: '{other}' is not keyValues, sysAttrs, noOverwrite, update or replace"
                        ),
                        field: Some("options".into()),
                    });
                }
            }
        }
    }
    match p.get("format").map(String::as_str) {
        None | Some("normalized") | Some("concise") => {}
        Some("keyValues") | Some("simplified") => o.key_values = true,
        Some(other) => {
            return Err(NgsiError::InvalidRequest {
                detail: format!(
                    "format: '{other}' is not normalized, concise, simplified or keyValues"
                ),
                field: Some("format".into()),
            });
        }
    }
    Ok(o)
}

/// One rendered entity as a GeoJSON Feature, its geometry taken from the
/// GeoProperty `geometry_property` (compacted name).
pub fn feature(entity: &Value, geometry_property: &str) -> Value {
    let geometry = entity
        .get(geometry_property)
        .map(|g| match g.get("value") {
            Some(v) if g.get("type").is_some() => v.clone(),
            _ => g.clone(),
        })
        .unwrap_or(Value::Null);
    let mut properties = entity.as_object().cloned().unwrap_or_default();
    let id = properties.remove("id").unwrap_or(Value::Null);
    serde_json::json!({"id": id, "type": "Feature", "geometry": geometry, "properties": properties})
}

/// Entities as GeoJSON: a Feature, or a FeatureCollection for a list.
pub fn geojson(body: Value, geometry_property: &str) -> Value {
    match body {
        Value::Array(items) => serde_json::json!({
            "type": "FeatureCollection",
            "features": items.iter().map(|e| feature(e, geometry_property)).collect::<Vec<_>>(),
        }),
        one => feature(&one, geometry_property),
    }
}

/// An answer with a JSON body in the negotiated media type.
pub fn answer(status: StatusCode, media: Media, ctx: &Context, mut body: Value) -> Response {
    // A GeoJSON answer names its context once, at the top (the Feature or the
    // FeatureCollection), besides the Link header, so it can be read as JSON-LD.
    if media == Media::GeoJson
        && let Value::Object(o) = &mut body
    {
        o.insert("@context".into(), ctx.body_value());
    }
    if media == Media::LdJson {
        let c = ctx.body_value();
        match &mut body {
            Value::Object(o) => {
                o.insert("@context".into(), c);
            }
            Value::Array(items) => {
                for item in items {
                    if let Value::Object(o) = item {
                        o.insert("@context".into(), c.clone());
                    }
                }
            }
            _ => {}
        }
    }
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    match media {
        Media::LdJson => {
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/ld+json"),
            );
        }
        Media::Json | Media::GeoJson => {
            let ct = if media == Media::Json {
                "application/json"
            } else {
                "application/geo+json"
            };
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ct));
            if let Ok(v) = HeaderValue::from_str(&ctx.link()) {
                h.insert(header::LINK, v);
            }
        }
    }
    resp
}

/// Rewrites `/entities/` to `/entities` (keeping the query), so both forms reach one route.
pub async fn strip_trailing_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    if path.len() > 1 && path.ends_with('/') {
        let trimmed = path.trim_end_matches('/');
        let trimmed = if trimmed.is_empty() { "/" } else { trimmed };
        let pq = match req.uri().query() {
            Some(q) => format!("{trimmed}?{q}"),
            None => trimmed.to_string(),
        };
        let mut parts = req.uri().clone().into_parts();
        if let Ok(v) = pq.parse() {
            parts.path_and_query = Some(v);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// 204 No Content.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// Unknown NGSI-LD path.
pub async fn not_found() -> NgsiError {
    NgsiError::ResourceNotFound("no such NGSI-LD resource".into())
}
