//! `/jsonldContexts`: contexts this server hosts (posted by clients) or has
//! cached (fetched for requests), listed, served and deleted. The core
//! context is listed and served but never deleted.

use crate::NgsiState;
use crate::context::{CORE_CONTEXT_URL, DEFAULT_VOCAB, Entry, HOSTED_PATH, Kind, NGSI_LD, is_core};
use crate::error::{NgsiError, NgsiResult};
use crate::http::{no_content, params};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

/// The `/jsonldContexts` routes.
pub fn routes() -> Router<NgsiState> {
    Router::new()
        .route("/jsonldContexts", post(add).get(list))
        .route("/jsonldContexts/{id}", get(serve).delete(remove))
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn flag(p: &std::collections::BTreeMap<String, String>, key: &str) -> NgsiResult<Option<bool>> {
    match p.get(key).map(String::as_str) {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(v) => Err(NgsiError::bad(key, format!("'{v}' is not true or false"))),
    }
}

/// The core context's own entry (listed, never stored).
fn core_details() -> Value {
    json!({
        "URL": CORE_CONTEXT_URL,
        "localId": "core",
        "kind": "Cached",
        "createdAt": "1970-01-01T00:00:00Z",
    })
}

/// The built-in core terms as a document (what this server knows of the
/// core context: the terms that name attributes, and the vocabulary).
fn core_document() -> Value {
    let mut defs = serde_json::Map::new();
    defs.insert("ngsi-ld".into(), json!(NGSI_LD));
    defs.insert("@vocab".into(), json!(DEFAULT_VOCAB));
    for t in [
        "location",
        "observationSpace",
        "operationSpace",
        "createdAt",
        "modifiedAt",
        "observedAt",
        "unitCode",
        "datasetId",
    ] {
        defs.insert(t.into(), json!(format!("ngsi-ld:{t}")));
    }
    json!({"@context": defs})
}

fn details(e: &Entry) -> Value {
    let mut v = json!({
        "URL": e.url,
        "localId": e.local_id,
        "kind": e.kind.as_str(),
        "createdAt": crate::time_text(e.created),
        "numberOfHits": e.hits,
    });
    if let (Some(t), Some(o)) = (e.last_usage, v.as_object_mut()) {
        o.insert("lastUsage".into(), json!(crate::time_text(t)));
    }
    v
}

async fn add(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
    bytes: Bytes,
) -> NgsiResult<Response> {
    params(rq.as_deref(), &[])?;
    let _w = s.write(&headers).await?;
    let invalid = |field: &str, detail: String| NgsiError::InvalidRequest {
        detail: format!("{field}: {detail}"),
        field: Some(field.to_string()),
    };
    let doc: Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid("body", format!("is not valid JSON: {e}")))?;
    match doc.get("@context") {
        Some(Value::Object(_)) => {}
        Some(Value::Array(items)) if items.iter().all(|i| i.is_string() || i.is_object()) => {}
        Some(_) => {
            return Err(invalid(
                "@context",
                "must be an object or an array of URLs and objects".into(),
            ));
        }
        None => {
            return Err(invalid(
                "@context",
                "is required: post {\"@context\": …}".into(),
            ));
        }
    }
    // The posted context must itself resolve (its URLs reachable).
    s.contexts.resolve(doc.get("@context").cloned()).await?;
    let id = s
        .contexts
        .host(doc)
        .ok_or_else(|| NgsiError::Internal("the context registry is unavailable".into()))?;
    let mut resp = StatusCode::CREATED.into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("{HOSTED_PATH}{id}")) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    Ok(resp)
}

async fn list(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    s.read(&headers).await?;
    let p = params(rq.as_deref(), &["details", "kind"])?;
    let with_details = flag(&p, "details")?.unwrap_or(false);
    let kind = match p.get("kind").map(String::as_str) {
        None => None,
        Some("Hosted") => Some("Hosted"),
        Some("Cached") => Some("Cached"),
        Some("ImplicitlyCreated") => Some("ImplicitlyCreated"),
        Some(k) => {
            return Err(NgsiError::bad(
                "kind",
                format!("'{k}' is not Hosted, Cached or ImplicitlyCreated"),
            ));
        }
    };
    let mut items: Vec<Value> = Vec::new();
    if kind.is_none_or(|k| k == "Cached") {
        items.push(if with_details {
            core_details()
        } else {
            json!(CORE_CONTEXT_URL)
        });
    }
    for e in s.contexts.entries() {
        if kind.is_some_and(|k| k != e.kind.as_str()) {
            continue;
        }
        items.push(if with_details {
            details(&e)
        } else {
            json!(e.url)
        });
    }
    Ok(json_response(StatusCode::OK, &Value::Array(items)))
}

async fn serve(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    s.read(&headers).await?;
    let p = params(rq.as_deref(), &["details"])?;
    let with_details = flag(&p, "details")?.unwrap_or(false);
    if is_core(&id) || id == "core" {
        let body = if with_details {
            core_details()
        } else {
            core_document()
        };
        return Ok(json_response(StatusCode::OK, &body));
    }
    let e = s
        .contexts
        .entry(&id)
        .ok_or_else(|| NgsiError::ResourceNotFound(format!("no @context '{id}' is kept here")))?;
    let body = if with_details {
        details(&e)
    } else {
        (*e.doc).clone()
    };
    Ok(json_response(StatusCode::OK, &body))
}

async fn remove(
    State(s): State<NgsiState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    RawQuery(rq): RawQuery,
) -> NgsiResult<Response> {
    let p = params(rq.as_deref(), &["reload"])?;
    let reload = flag(&p, "reload")?.unwrap_or(false);
    let _w = s.write(&headers).await?;
    if is_core(&id) || id == "core" {
        if reload {
            // Built in: there is nothing to download again.
            return Ok(no_content());
        }
        return Err(NgsiError::bad(
            "contextId",
            "the core @context cannot be deleted",
        ));
    }
    let Some(e) = s.contexts.entry(&id) else {
        if reload {
            return Err(NgsiError::bad(
                "reload",
                format!("no @context '{id}' is kept here to reload"),
            ));
        }
        return Err(NgsiError::ResourceNotFound(format!(
            "no @context '{id}' is kept here"
        )));
    };
    if reload && e.kind != Kind::Cached {
        return Err(NgsiError::bad(
            "reload",
            "only cached @contexts can be reloaded",
        ));
    }
    s.contexts.forget(&e);
    if reload {
        s.contexts.reload(&e.url).await?;
    }
    Ok(no_content())
}
