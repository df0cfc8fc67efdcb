//! Notifications of subscriptions: a listener on Panorama's event bus
//! (observations committed through any path, entity writes) matches each
//! changed entity against the installed subscriptions and queues HTTP
//! notifications; a sender POSTs them with retries. Ingest never waits:
//! the bus never blocks its publisher, and the delivery queue is bounded,
//! what does not fit is dropped and counted.

use crate::context::DEFAULT_VOCAB;
use crate::http::Media;
use crate::model::{self, Render};
use crate::subscriptions::{self, Format, Sub};
use crate::{NgsiState, entities};
use panorama_core::Timestamp;
use panorama_ingest::Event;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};

/// Most notifications waiting to be sent.
const QUEUE: usize = 1024;
/// Most notifications being sent at once.
const IN_FLIGHT: usize = 16;
/// Attempts per notification (the first and the retries).
const ATTEMPTS: u32 = 4;
/// Wait before the first retry; doubled for each later one.
const BACKOFF: Duration = Duration::from_millis(200);
/// Events arriving this soon after one are sent in the same notification
/// (an NGSI-LD write commits its entity, then its observations).
const COALESCE: Duration = Duration::from_millis(40);

/// What has happened to a subscription's notifications.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Status {
    /// Notifications sent (attempted).
    pub times_sent: u64,
    /// When the last one was sent.
    pub last_notification: Option<Timestamp>,
    /// When one was last delivered.
    pub last_success: Option<Timestamp>,
    /// When one last failed (after its retries).
    pub last_failure: Option<Timestamp>,
    /// Whether the last delivery succeeded.
    pub ok: Option<bool>,
}

#[derive(Debug)]
struct Entry {
    sub: Sub,
    status: Status,
    last_fired: Option<Timestamp>,
    /// A digest of each entity as last notified, so that one write seen
    /// twice on the bus (entity, then observations) is notified once.
    sent: BTreeMap<String, u64>,
}

fn digest(v: &Value) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    v.to_string().hash(&mut h);
    h.finish()
}

#[derive(Debug)]
struct Delivery {
    sub_id: String,
    uri: String,
    headers: Vec<(String, String)>,
    body: Value,
}

/// The installed subscriptions and the delivery queue.
#[derive(Debug)]
pub struct Notifier {
    subs: Mutex<BTreeMap<String, Entry>>,
    tx: mpsc::Sender<Delivery>,
    rx: Mutex<Option<mpsc::Receiver<Delivery>>>,
    dropped: AtomicU64,
    seq: AtomicU64,
    started: AtomicBool,
    client: reqwest::Client,
}

impl Default for Notifier {
    fn default() -> Self {
        Self::new()
    }
}

impl Notifier {
    /// A notifier with no subscription, not yet listening.
    pub fn new() -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        Self {
            subs: Mutex::new(BTreeMap::new()),
            tx,
            rx: Mutex::new(Some(rx)),
            dropped: AtomicU64::new(0),
            seq: AtomicU64::new(0),
            started: AtomicBool::new(false),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Entry>> {
        match self.subs.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// A fresh URN of `kind` (time and a sequence number).
    pub fn new_id(&self, kind: &str, now: Timestamp) -> String {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        format!("urn:ngsi-ld:{kind}:{:x}-{n}", now.timestamp_millis())
    }

    /// Notifications dropped because the queue was full or the listener
    /// fell behind the bus.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// The notification status of a subscription.
    pub fn status(&self, id: &str) -> Status {
        self.lock()
            .get(id)
            .map(|e| e.status.clone())
            .unwrap_or_default()
    }

    /// Installs a new subscription. What matching entities look like now is
    /// remembered, so that a change committed before the subscription but
    /// seen on the bus after it is not notified; nothing is sent now (the
    /// first notification is the first change, or the first interval).
    pub async fn install(&self, state: &NgsiState, sub: Sub) {
        let seen: BTreeMap<String, u64> = match entities::load_all(state).await {
            Ok(docs) => docs
                .iter()
                .filter(|d| sub.selects(d))
                .map(|d| {
                    let v = view(&sub, d);
                    (id_of(&v).to_string(), digest(&v))
                })
                .collect(),
            Err(e) => {
                tracing::warn!(subscription = %sub.id, error = %e, "current entities not read");
                BTreeMap::new()
            }
        };
        let id = sub.id.clone();
        self.replace(sub);
        if let Some(e) = self.lock().get_mut(&id) {
            e.sent = seen;
        }
    }

    /// Installs or replaces a subscription, keeping its status.
    pub fn replace(&self, sub: Sub) {
        let mut subs = self.lock();
        match subs.get_mut(&sub.id) {
            Some(e) => e.sub = sub,
            None => {
                subs.insert(
                    sub.id.clone(),
                    Entry {
                        sub,
                        status: Status::default(),
                        last_fired: None,
                        sent: BTreeMap::new(),
                    },
                );
            }
        }
    }

    /// Removes a subscription.
    pub fn forget(&self, id: &str) {
        self.lock().remove(id);
    }

    fn build(&self, sub: &Sub, data: Vec<Value>, now: Timestamp) -> Delivery {
        let mut body = json!({
            "id": self.new_id("Notification", now),
            "type": "Notification",
            "subscriptionId": sub.id,
            "notifiedAt": crate::time_text(now),
            "data": data,
        });
        let mut headers = sub.receiver_info.clone();
        // Notifications are JSON or JSON-LD only (the subscription parser
        // accepts nothing else).
        if sub.accept == Media::LdJson {
            if let Some(o) = body.as_object_mut() {
                o.insert("@context".into(), sub.ctx.body_value());
            }
            headers.push(("content-type".into(), "application/ld+json".into()));
        } else {
            headers.push(("content-type".into(), "application/json".into()));
            headers.push(("link".into(), sub.ctx.link()));
        }
        Delivery {
            sub_id: sub.id.clone(),
            uri: sub.uri.clone(),
            headers,
            body,
        }
    }

    fn enqueue(&self, d: Delivery, now: Timestamp) {
        let id = d.sub_id.clone();
        match self.tx.try_send(d) {
            Ok(()) => {
                if let Some(e) = self.lock().get_mut(&id) {
                    e.status.times_sent += 1;
                    e.status.last_notification = Some(now);
                }
            }
            Err(_) => {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(subscription = %id, "notification queue full; notification dropped");
            }
        }
    }

    /// Matches changed entities against every subscription and queues the
    /// notifications. `changed` maps an entity id to the attributes that
    /// changed (expanded), `None` when unknown.
    async fn dispatch(
        &self,
        state: &NgsiState,
        changed: BTreeMap<String, Option<BTreeSet<String>>>,
    ) {
        if self.lock().is_empty() {
            return;
        }
        let mut docs = Vec::new();
        for (id, attrs) in changed {
            match entities::load(state, &id).await {
                Ok(Some(l)) => docs.push((l.doc, attrs)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(entity = %id, error = %e, "not matched against subscriptions")
                }
            }
        }
        let now = state.clock.now();
        let mut out = Vec::new();
        {
            let mut subs = self.lock();
            for e in subs.values_mut() {
                if e.sub.status(now) != "active" || e.sub.time_interval.is_some() {
                    continue;
                }
                let data: Vec<Value> = docs
                    .iter()
                    .filter(|(d, attrs)| e.sub.watches(attrs.as_ref()) && e.sub.selects(d))
                    .map(|(d, _)| view(&e.sub, d))
                    .filter(|v| e.sent.get(id_of(v)) != Some(&digest(v)))
                    .collect();
                if data.is_empty() {
                    continue;
                }
                if let (Some(t), Some(last)) = (e.sub.throttling, e.last_fired)
                    && ((now - last).num_milliseconds() as f64) < t * 1000.0
                {
                    continue;
                }
                {
                    e.last_fired = Some(now);
                    remember(&mut e.sent, &data);
                    out.push(self.build(&e.sub, data, now));
                }
            }
        }
        for d in out {
            self.enqueue(d, now);
        }
    }

    /// Sends the periodic subscriptions that are due at the clock's now.
    pub async fn tick(&self, state: &NgsiState) {
        let now = state.clock.now();
        let any = self.lock().values().any(|e| due(e, now));
        if !any {
            return;
        }
        let docs = match entities::load_all(state).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %e, "periodic notifications skipped");
                return;
            }
        };
        let mut out = Vec::new();
        {
            let mut subs = self.lock();
            for e in subs.values_mut() {
                if !due(e, now) {
                    continue;
                }
                e.last_fired = Some(now);
                let data: Vec<Value> = docs
                    .iter()
                    .filter(|d| e.sub.selects(d))
                    .map(|d| view(&e.sub, d))
                    .collect();
                if !data.is_empty() {
                    out.push(self.build(&e.sub, data, now));
                }
            }
        }
        for d in out {
            self.enqueue(d, now);
        }
    }

    fn record(&self, id: &str, ok: bool, now: Timestamp) {
        if let Some(e) = self.lock().get_mut(id) {
            e.status.ok = Some(ok);
            if ok {
                e.status.last_success = Some(now);
            } else {
                e.status.last_failure = Some(now);
            }
        }
    }
}

/// Starts listening (once per notifier): loads the stored subscriptions,
/// follows the bus and sends notifications. Does nothing outside a Tokio
/// runtime.
pub fn start(state: &NgsiState) {
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return;
    };
    let n = state.notifier.clone();
    if n.started.swap(true, Ordering::SeqCst) {
        return;
    }
    let Some(mut rx) = n.rx.lock().ok().and_then(|mut g| g.take()) else {
        return;
    };
    let mut bus = state.ingest.bus().subscribe();
    let s = state.clone();
    rt.spawn(async move {
        load_stored(&s).await;
        loop {
            let first = match bus.recv().await {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(k)) => {
                    s.notifier.dropped.fetch_add(k, Ordering::Relaxed);
                    tracing::warn!(missed = k, "subscriptions fell behind the event bus");
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let mut changed = BTreeMap::new();
            collect(&first, &mut changed);
            tokio::time::sleep(COALESCE).await;
            while let Ok(e) = bus.try_recv() {
                collect(&e, &mut changed);
            }
            if !changed.is_empty() {
                s.notifier.dispatch(&s, changed).await;
            }
        }
    });
    let s = state.clone();
    rt.spawn(async move {
        // Periodic subscriptions: checked every second against the clock.
        let mut every = tokio::time::interval(Duration::from_secs(1));
        loop {
            every.tick().await;
            s.notifier.tick(&s).await;
        }
    });
    let s = state.clone();
    rt.spawn(async move {
        let gate = Arc::new(Semaphore::new(IN_FLIGHT));
        while let Some(d) = rx.recv().await {
            let Ok(permit) = gate.clone().acquire_owned().await else {
                return;
            };
            let s = s.clone();
            tokio::spawn(async move {
                let ok = send(&s.notifier.client, &d).await;
                s.notifier.record(&d.sub_id, ok, s.clock.now());
                drop(permit);
            });
        }
    });
}

async fn load_stored(s: &NgsiState) {
    let Some(store) = s.store().clone().as_ld_subscriptions() else {
        return;
    };
    let all = match store.ld_subscriptions().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "stored subscriptions not loaded");
            return;
        }
    };
    for stored in all {
        match subscriptions::revive(s, &stored).await {
            Ok((_, _, sub)) => {
                if s.notifier.lock().contains_key(&sub.id) {
                    continue;
                }
                s.notifier.replace(sub);
            }
            Err(e) => {
                tracing::warn!(subscription = %stored.id, error = %e, "stored subscription not loaded")
            }
        }
    }
}

/// Whether a periodic subscription is due at `now`.
fn due(e: &Entry, now: Timestamp) -> bool {
    match e.sub.time_interval {
        Some(t) if e.sub.status(now) == "active" => e
            .last_fired
            .is_none_or(|last| ((now - last).num_milliseconds() as f64) >= t * 1000.0),
        _ => false,
    }
}

/// An entity as a subscription notifies it.
fn view(sub: &Sub, doc: &model::Doc) -> Value {
    let r = Render {
        key_values: sub.format == Format::KeyValues,
        attrs: sub.attrs.clone(),
        ..Render::default()
    };
    model::render(doc, &sub.ctx, &r)
}

fn id_of(d: &Value) -> &str {
    d.get("id").and_then(Value::as_str).unwrap_or_default()
}

fn remember(sent: &mut BTreeMap<String, u64>, data: &[Value]) {
    for d in data {
        sent.insert(id_of(d).to_string(), digest(d));
    }
}

fn collect(e: &Event, changed: &mut BTreeMap<String, Option<BTreeSet<String>>>) {
    match e {
        Event::Observations(b) => {
            for o in &b.observations {
                let slot = changed
                    .entry(o.entity.clone())
                    .or_insert_with(|| Some(BTreeSet::new()));
                if let Some(set) = slot {
                    set.insert(format!("{DEFAULT_VOCAB}{}", o.attribute));
                }
            }
        }
        Event::EntitiesChanged(ids) => {
            for id in ids.iter() {
                changed.insert(id.clone(), None);
            }
        }
        _ => {}
    }
}

async fn send(client: &reqwest::Client, d: &Delivery) -> bool {
    let mut wait = BACKOFF;
    for attempt in 1..=ATTEMPTS {
        let mut req = client.post(&d.uri).body(d.body.to_string());
        for (k, v) in &d.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        match req.send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) => {
                tracing::warn!(subscription = %d.sub_id, status = %r.status(), attempt, "notification refused")
            }
            Err(e) => {
                tracing::warn!(subscription = %d.sub_id, error = %e, attempt, "notification not delivered")
            }
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(wait).await;
            wait *= 2;
        }
    }
    false
}
