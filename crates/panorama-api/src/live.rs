//! Live updates over WebSocket (`/api/v1/live`) and SSE (`/api/v1/live/sse`).
//!
//! A client subscribes with filters; every committed batch is matched
//! against them and the matching items are sent at once. Publishing never
//! waits for a client: a client that falls more than the bus capacity behind
//! gets a `lagged` message (refetch `/api/v1/latest` to resync), and one that
//! keeps lagging or stops reading is disconnected.

use crate::AppState;
use crate::auth::UserAuth;
use crate::error::{ApiError, Problem};
use crate::routes::Q;
use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures::stream::Stream;
use panorama_ingest::Event;
use panorama_store::SharedStore;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::error::RecvError;

/// What a subscription asks for. Lists are alternatives (any of), kinds are
/// combined (all of); an empty subscription receives everything.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
pub struct Filter {
    /// Domain codes.
    #[serde(default)]
    pub domains: Vec<String>,
    /// Entity types (observations only).
    #[serde(default)]
    pub types: Vec<String>,
    /// Entity ids (observations only).
    #[serde(default)]
    pub entities: Vec<String>,
    /// Admin unit codes, descendants included.
    #[serde(default)]
    pub admin_units: Vec<String>,
    /// Indicator codes (indicator values only).
    #[serde(default)]
    pub indicators: Vec<String>,
    /// Only these kinds of message (any of [`MESSAGE_KINDS`]); all when empty.
    /// An alert feed asks for `["alerts"]` and is spared every observation.
    #[serde(default)]
    pub messages: Vec<String>,
}

/// The kinds of message a subscription can ask for.
pub const MESSAGE_KINDS: [&str; 5] = [
    "observations",
    "indicator_values",
    "entities_changed",
    "alerts",
    "incidents",
];

/// A filter with admin units expanded to their descendants.
#[derive(Debug, Clone, Default)]
struct Matcher {
    domains: HashSet<String>,
    types: HashSet<String>,
    entities: HashSet<String>,
    units: Option<HashSet<String>>,
    indicators: HashSet<String>,
    messages: HashSet<&'static str>,
}

impl Matcher {
    async fn new(f: Filter, store: &SharedStore) -> Result<Self, ApiError> {
        let mut messages = HashSet::new();
        for m in &f.messages {
            let Some(k) = MESSAGE_KINDS.iter().find(|k| **k == m) else {
                return Err(ApiError::BadParam(
                    "messages".into(),
                    format!("unknown kind '{m}'; one of {}", MESSAGE_KINDS.join(", ")),
                ));
            };
            messages.insert(*k);
        }
        let units = if f.admin_units.is_empty() {
            None
        } else {
            let all = store.admin_units().await?;
            let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
            for u in &all {
                if let Some(p) = &u.parent {
                    children.entry(p.as_str()).or_default().push(&u.code);
                }
            }
            let mut set = HashSet::new();
            let mut stack: Vec<&str> = f.admin_units.iter().map(String::as_str).collect();
            while let Some(c) = stack.pop() {
                if set.insert(c.to_string())
                    && let Some(k) = children.get(c)
                {
                    stack.extend(k);
                }
            }
            Some(set)
        };
        Ok(Self {
            domains: f.domains.into_iter().collect(),
            types: f.types.into_iter().collect(),
            entities: f.entities.into_iter().collect(),
            units,
            indicators: f.indicators.into_iter().collect(),
            messages,
        })
    }

    /// Whether the subscription takes messages of this kind at all.
    fn wants(&self, kind: &str) -> bool {
        self.messages.is_empty() || self.messages.contains(kind)
    }

    fn unit_ok(&self, unit: Option<&str>) -> bool {
        match (&self.units, unit) {
            (None, _) => true,
            (Some(s), Some(u)) => s.contains(u),
            (Some(_), None) => false,
        }
    }

    fn observation(&self, m: &panorama_store::SeriesMeta) -> bool {
        self.wants("observations")
            && self.indicators.is_empty()
            && (self.domains.is_empty() || self.domains.contains(&*m.domain))
            && (self.types.is_empty() || self.types.contains(&*m.entity_type))
            && (self.entities.is_empty() || self.entities.contains(&*m.entity))
            && self.unit_ok(m.admin_unit.as_deref())
    }

    /// An alert or incident: domains and units as for observations; types,
    /// entities and indicators only when the subscription names them.
    fn ops_item(
        &self,
        kind: &str,
        domain: Option<&str>,
        unit: Option<&str>,
        entity_type: Option<&str>,
        entity: Option<&str>,
        indicator: Option<&str>,
    ) -> bool {
        let any = |set: &HashSet<String>, v: Option<&str>| {
            set.is_empty() || v.is_some_and(|v| set.contains(v))
        };
        self.wants(kind)
            && any(&self.domains, domain)
            && self.unit_ok(unit)
            && any(&self.types, entity_type)
            && any(&self.entities, entity)
            && any(&self.indicators, indicator)
    }

    fn indicator(&self, u: &panorama_ingest::IndicatorUpdate) -> bool {
        self.wants("indicator_values")
            && self.types.is_empty()
            && self.entities.is_empty()
            && (self.domains.is_empty() || self.domains.contains(&u.domain))
            && (self.indicators.is_empty() || self.indicators.contains(&u.value.indicator))
            && self.unit_ok(Some(&u.value.admin_unit))
    }
}

/// An observation as sent to live clients.
#[derive(Debug, Serialize)]
struct LiveObservation<'a> {
    entity: &'a str,
    attribute: &'a str,
    time: &'a chrono::DateTime<chrono::Utc>,
    value: &'a panorama_core::Value,
    entity_type: &'a str,
    domain: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    admin_unit: Option<&'a str>,
}

/// Renders the part of `event` that any of `subs` wants, as one JSON message.
fn render(event: &Event, subs: &HashMap<String, Matcher>) -> Option<String> {
    if subs.is_empty() {
        return None;
    }
    match event {
        Event::Observations(b) => {
            let mut ids: HashSet<&str> = HashSet::new();
            let items: Vec<LiveObservation> = b
                .observations
                .iter()
                .zip(&b.series)
                .filter(|(_, m)| {
                    let mut hit = false;
                    for (id, s) in subs {
                        if s.observation(m) {
                            ids.insert(id);
                            hit = true;
                        }
                    }
                    hit
                })
                .map(|(o, m)| LiveObservation {
                    entity: &o.entity,
                    attribute: &o.attribute,
                    time: &o.time,
                    value: &o.value,
                    entity_type: &m.entity_type,
                    domain: &m.domain,
                    admin_unit: m.admin_unit.as_deref(),
                })
                .collect();
            (!items.is_empty()).then(|| {
                serde_json::json!({"type": "observations", "subscriptions": ids, "items": items}).to_string()
            })
        }
        Event::IndicatorValues(v) => {
            let mut ids: HashSet<&str> = HashSet::new();
            let items: Vec<serde_json::Value> = v
                .iter()
                .filter(|u| {
                    let mut hit = false;
                    for (id, s) in subs {
                        if s.indicator(u) {
                            ids.insert(id);
                            hit = true;
                        }
                    }
                    hit
                })
                .map(|u| {
                    let mut j = serde_json::to_value(&u.value).unwrap_or_default();
                    j["domain"] = serde_json::Value::String(u.domain.clone());
                    j
                })
                .collect();
            (!items.is_empty()).then(|| {
                serde_json::json!({"type": "indicator_values", "subscriptions": ids, "items": items}).to_string()
            })
        }
        Event::EntitiesChanged(ids) => {
            subs.values().any(|s| s.wants("entities_changed")).then(|| {
                serde_json::json!({"type": "entities_changed", "entities": &**ids}).to_string()
            })
        }
        Event::Alert(e) => {
            let a = &e.alert;
            let ids: Vec<&str> = subs
                .iter()
                .filter(|(_, s)| {
                    s.ops_item(
                        "alerts",
                        a.domain.as_deref(),
                        a.admin_unit.as_deref(),
                        a.entity_type.as_deref(),
                        a.entity.as_deref(),
                        a.indicator.as_deref(),
                    )
                })
                .map(|(id, _)| id.as_str())
                .collect();
            (!ids.is_empty()).then(|| {
                serde_json::json!({"type": "alerts", "subscriptions": ids, "change": e.change, "items": [a]}).to_string()
            })
        }
        Event::Incident(e) => {
            let i = &e.incident;
            let ids: Vec<&str> = subs
                .iter()
                .filter(|(_, s)| {
                    s.ops_item(
                        "incidents",
                        i.domain.as_deref(),
                        i.admin_unit.as_deref(),
                        None,
                        None,
                        None,
                    )
                })
                .map(|(id, _)| id.as_str())
                .collect();
            (!ids.is_empty()).then(|| {
                serde_json::json!({"type": "incidents", "subscriptions": ids, "change": e.change, "items": [i]}).to_string()
            })
        }
    }
}

/// A message from a WebSocket client.
#[derive(Debug, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
enum ClientMsg {
    Subscribe {
        id: String,
        #[serde(flatten)]
        filter: Filter,
    },
    Unsubscribe {
        id: String,
    },
    Ping,
}

/// Live updates over WebSocket. Send `{"op":"subscribe","id":"s1","domains":["environment"]}`
/// (also `types`, `entities`, `admin_units`, `indicators`), `{"op":"unsubscribe","id":"s1"}`,
/// `{"op":"ping"}`. Receive `observations`, `indicator_values`, `entities_changed`,
/// `alerts` and `incidents` (with `change`: opened, acknowledged, resolved, created,
/// status, escalated…), `lagged` (you missed updates: refetch /api/v1/latest) and
/// `error` messages.
#[utoipa::path(get, path = "/api/v1/live", tag = "live",
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 401, body = Problem)))]
pub async fn websocket(State(st): State<AppState>, _u: UserAuth, ws: WebSocketUpgrade) -> Response {
    ws.on_upgrade(move |socket| client(st, socket))
        .into_response()
}

/// Lags tolerated within [`LAG_WINDOW`] before a client is dropped.
const MAX_LAGS: usize = 3;
const LAG_WINDOW: Duration = Duration::from_secs(60);
/// A client that takes longer than this to accept a message is dropped.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

async fn client(st: AppState, mut socket: WebSocket) {
    st.live_clients.fetch_add(1, Ordering::Relaxed);
    metrics::gauge!("panorama_live_clients").set(st.live_clients.load(Ordering::Relaxed) as f64);
    let mut rx = st.ingest.bus().subscribe();
    let mut subs: HashMap<String, Matcher> = HashMap::new();
    let mut lags: Vec<Instant> = Vec::new();
    let hello =
        serde_json::json!({"type": "hello", "protocol": 1, "version": env!("CARGO_PKG_VERSION")});
    let mut ok = send(&mut socket, hello.to_string()).await;
    while ok {
        tokio::select! {
            msg = socket.recv() => {
                let Some(Ok(msg)) = msg else { break };
                let reply = match msg {
                    Message::Text(t) => handle(&st, &mut subs, t.as_str()).await,
                    Message::Binary(_) => Some(error_msg("invalid_message", "send JSON text messages", None)),
                    Message::Close(_) => break,
                    _ => None,
                };
                if let Some(r) = reply {
                    ok = send(&mut socket, r).await;
                }
            }
            ev = rx.recv() => match ev {
                Ok(ev) => {
                    if let Some(m) = render(&ev, &subs) {
                        ok = send(&mut socket, m).await;
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    metrics::counter!("panorama_live_lagged_total").increment(1);
                    let now = Instant::now();
                    lags.retain(|t| now.duration_since(*t) < LAG_WINDOW);
                    lags.push(now);
                    if lags.len() > MAX_LAGS {
                        let _ = socket.send(Message::Close(Some(CloseFrame {
                            code: 1008,
                            reason: "too slow: fell behind the live stream repeatedly".into(),
                        }))).await;
                        break;
                    }
                    let m = serde_json::json!({"type": "lagged", "missed_events": n,
                        "detail": "you missed updates; refetch /api/v1/latest to resync"});
                    ok = send(&mut socket, m.to_string()).await;
                }
                Err(RecvError::Closed) => break,
            }
        }
    }
    st.live_clients.fetch_sub(1, Ordering::Relaxed);
    metrics::gauge!("panorama_live_clients").set(st.live_clients.load(Ordering::Relaxed) as f64);
}

async fn send(socket: &mut WebSocket, text: String) -> bool {
    matches!(
        tokio::time::timeout(SEND_TIMEOUT, socket.send(Message::Text(text.into()))).await,
        Ok(Ok(()))
    )
}

fn error_msg(code: &str, detail: &str, field: Option<&str>) -> String {
    serde_json::json!({"type": "error", "code": code, "detail": detail, "field": field}).to_string()
}

async fn handle(st: &AppState, subs: &mut HashMap<String, Matcher>, text: &str) -> Option<String> {
    let msg: ClientMsg = match serde_json::from_str(text) {
        Ok(m) => m,
        Err(e) => {
            let field = crate::routes::auth::field_of(&e.to_string());
            return Some(error_msg(
                "invalid_message",
                &format!("{e}; expected {{\"op\":\"subscribe\"|\"unsubscribe\"|\"ping\", …}}"),
                (!field.is_empty()).then_some(field.as_str()),
            ));
        }
    };
    match msg {
        ClientMsg::Subscribe { id, filter } => {
            if id.is_empty() || id.len() > 64 {
                return Some(error_msg(
                    "invalid_message",
                    "id must be 1–64 characters",
                    Some("id"),
                ));
            }
            if subs.len() >= 100 && !subs.contains_key(&id) {
                return Some(error_msg(
                    "too_many_subscriptions",
                    "at most 100 subscriptions per connection",
                    Some("id"),
                ));
            }
            match Matcher::new(filter, st.store()).await {
                Ok(m) => {
                    subs.insert(id.clone(), m);
                    Some(serde_json::json!({"type": "subscribed", "id": id}).to_string())
                }
                Err(ApiError::BadParam(field, reason)) => Some(error_msg(
                    "invalid_message",
                    &format!("{field} {reason}"),
                    Some(&field),
                )),
                Err(e) => Some(error_msg("internal", &e.to_string(), None)),
            }
        }
        ClientMsg::Unsubscribe { id } => {
            let existed = subs.remove(&id).is_some();
            Some(if existed {
                serde_json::json!({"type": "unsubscribed", "id": id}).to_string()
            } else {
                error_msg("not_found", &format!("no subscription '{id}'"), Some("id"))
            })
        }
        ClientMsg::Ping => Some(r#"{"type":"pong"}"#.to_string()),
    }
}

/// SSE filter: comma-separated lists.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SseParams {
    /// Domain codes.
    pub domains: Option<String>,
    /// Entity types.
    pub types: Option<String>,
    /// Entity ids.
    pub entities: Option<String>,
    /// Admin unit codes (descendants included).
    pub admin_units: Option<String>,
    /// Indicator codes.
    pub indicators: Option<String>,
    /// Kinds of message: observations, indicator_values, entities_changed,
    /// alerts, incidents (all when absent).
    pub messages: Option<String>,
}

/// Live updates as Server-Sent Events, one subscription given by the query.
/// Events: `observations`, `indicator_values`, `entities_changed`, `alerts`,
/// `incidents`, `lagged`.
#[utoipa::path(get, path = "/api/v1/live/sse", tag = "live", params(SseParams),
    responses((status = 200, content_type = "text/event-stream", description = "Event stream"), (status = 401, body = Problem)))]
pub async fn sse(
    State(st): State<AppState>,
    _u: UserAuth,
    Q(p): Q<SseParams>,
) -> Result<Sse<impl Stream<Item = Result<SseEvent, std::convert::Infallible>>>, ApiError> {
    let filter = Filter {
        domains: crate::params::list(&p.domains),
        types: crate::params::list(&p.types),
        entities: crate::params::list(&p.entities),
        admin_units: crate::params::list(&p.admin_units),
        indicators: crate::params::list(&p.indicators),
        messages: crate::params::list(&p.messages),
    };
    let subs = HashMap::from([("sse".to_string(), Matcher::new(filter, st.store()).await?)]);
    let rx = st.ingest.bus().subscribe();
    let stream = futures::stream::unfold((rx, subs), |(mut rx, subs)| async move {
        loop {
            match rx.recv().await {
                Ok(ev) => {
                    if let Some(m) = render(&ev, &subs) {
                        let kind = match ev {
                            Event::Observations(_) => "observations",
                            Event::IndicatorValues(_) => "indicator_values",
                            Event::EntitiesChanged(_) => "entities_changed",
                            Event::Alert(_) => "alerts",
                            Event::Incident(_) => "incidents",
                        };
                        return Some((Ok(SseEvent::default().event(kind).data(m)), (rx, subs)));
                    }
                }
                Err(RecvError::Lagged(n)) => {
                    let m = serde_json::json!({"type": "lagged", "missed_events": n});
                    return Some((
                        Ok(SseEvent::default().event("lagged").data(m.to_string())),
                        (rx, subs),
                    ));
                }
                Err(RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
