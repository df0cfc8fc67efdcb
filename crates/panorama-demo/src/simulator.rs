//! The simulator: keeps the demo alive by posting observations to the
//! public ingest API (`POST {base}/api/v1/observations`) with each source's
//! bearer token, exactly as a real feed would. It follows the same value
//! functions and events as the history, so the live data continues it; a
//! feed going silent simply stops posting. It never hammers the server:
//! one request at a time, and on 429/503 it waits at least as long as
//! `Retry-After` says, backing off further if the server stays busy.

use crate::DemoData;
use crate::events::{EventParams, events_between};
use crate::noise::{hash2, str_hash};
use crate::signal::{MinuteCtx, number, text};
use crate::things::{AttrDef, Kind, Things};
use chrono::{DateTime, SecondsFormat};
use panorama_core::{Clock, ValueType};
use serde::Serialize;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Most observations in one request.
const MAX_BATCH: usize = 1_000;
/// Most requests kept for retry while the server is unreachable or busy.
const MAX_PENDING: usize = 200;
/// Attempts at one request before it is dropped.
const MAX_ATTEMPTS: u32 = 5;
/// Cameras report their status this often.
const CAMERA_INTERVAL_MS: i64 = 5 * 60_000;
/// Secondary attributes are reported about this often.
const SECONDARY_INTERVAL_MS: i64 = 15 * 60_000;
/// Longest wait between two looks at the clock.
const TICK: Duration = Duration::from_millis(1_000);
/// Longest back-off.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How long a stop waits for the answer to the request in flight.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// How much the simulator does.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SimulatorOptions {
    /// How many sensors report (all when `None`); they are spread over every
    /// kind and district. Cameras and citizen-report counters always report.
    pub sensors: Option<usize>,
    /// Observations per second the sensors should produce together (`None`:
    /// each sensor reports its main attributes once a minute, like the
    /// history). The reporting interval stays between 1 s and 1 h.
    pub rate_per_sec: Option<f64>,
}

/// What the simulator did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SimulatorStats {
    /// Requests sent.
    pub requests: u64,
    /// Observations the server accepted.
    pub accepted: u64,
    /// Answers 429 or 503 (each followed by a pause).
    pub throttled: u64,
    /// Requests refused with another 4xx (logged and dropped).
    pub rejected: u64,
    /// Requests that failed (network error or 5xx) at least once.
    pub failures: u64,
    /// Requests given up on.
    pub dropped: u64,
    /// Observations not sent because their feed was silent.
    pub silenced: u64,
}

/// One thing that reports, and how often.
#[derive(Debug, Clone)]
struct Reporter {
    model: usize,
    interval_ms: i64,
    /// Every how many reports the secondary attributes come along.
    secondary_every: u64,
    reports: u64,
}

/// A request waiting to be sent (again).
#[derive(Debug)]
struct Request {
    source: usize,
    body: Vec<u8>,
    items: u64,
    attempts: u32,
}

/// The live feed of a demo.
#[derive(Debug)]
pub struct Simulator {
    url: String,
    client: reqwest::Client,
    things: Arc<Things>,
    ids: Vec<String>,
    sources: Vec<(String, String)>,
    params: EventParams,
    reporters: Vec<Reporter>,
    seed: u64,
}

#[derive(Serialize)]
struct Item<'a> {
    entity: &'a str,
    attribute: &'a str,
    time: &'a str,
    value: serde_json::Value,
}

enum Outcome {
    Accepted(u64),
    Throttled(Duration),
    Rejected,
    Failed,
}

impl Simulator {
    /// A simulator posting to the server at `base_url` (e.g.
    /// `http://127.0.0.1:8080`) for the demo `data`.
    pub fn new(base_url: String, data: &DemoData, opts: &SimulatorOptions) -> Self {
        let things = data.things.clone();
        let sensors: Vec<usize> = things
            .models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind != Kind::Camera && m.kind != Kind::Reports)
            .map(|(i, _)| i)
            .collect();
        let chosen: Vec<usize> = match opts.sensors {
            Some(n) if n < sensors.len() => (0..n)
                .filter_map(|i| sensors.get(i * sensors.len() / n.max(1)).copied())
                .collect(),
            _ => sensors,
        };
        let others = things
            .models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.kind == Kind::Reports)
            .map(|(i, _)| i);
        let minute_reporters: Vec<usize> = chosen.into_iter().chain(others).collect();
        let series: usize = minute_reporters
            .iter()
            .filter_map(|i| things.models.get(*i))
            .map(|m| m.kind.attrs().iter().filter(|a| a.main).count())
            .sum();
        let interval_ms = match opts.rate_per_sec {
            Some(r) if r > 0.0 && r.is_finite() => {
                ((series as f64 / r) * 1000.0).clamp(1_000.0, 3_600_000.0) as i64
            }
            _ => 60_000,
        };
        let every = |interval: i64| {
            u64::try_from((SECONDARY_INTERVAL_MS / interval.max(1)).max(1)).unwrap_or(1)
        };
        let mut reporters: Vec<Reporter> = minute_reporters
            .into_iter()
            .map(|model| Reporter {
                model,
                interval_ms,
                secondary_every: every(interval_ms),
                reports: 0,
            })
            .collect();
        reporters.extend(
            things
                .models
                .iter()
                .enumerate()
                .filter(|(_, m)| m.kind == Kind::Camera)
                .map(|(model, _)| Reporter {
                    model,
                    interval_ms: CAMERA_INTERVAL_MS,
                    secondary_every: 1,
                    reports: 0,
                }),
        );
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent("panorama-demo-simulator")
            .build()
            .unwrap_or_default();
        Self {
            url: format!("{}/api/v1/observations", base_url.trim_end_matches('/')),
            client,
            things,
            ids: data.entities.iter().map(|e| e.id.clone()).collect(),
            sources: data
                .sources
                .iter()
                .map(|s| (s.source.id.clone(), s.token.clone()))
                .collect(),
            params: EventParams::new(data.seed, data.things.silencable.clone()),
            reporters,
            seed: data.seed,
        }
    }

    /// How many things report.
    pub fn reporters(&self) -> usize {
        self.reporters.len()
    }

    /// Runs until `shutdown` turns true (or its sender is dropped), then
    /// returns what it did.
    pub async fn run(
        mut self,
        clock: Arc<dyn Clock>,
        mut shutdown: watch::Receiver<bool>,
    ) -> SimulatorStats {
        let mut stats = SimulatorStats::default();
        let mut queue: BinaryHeap<Reverse<(i64, usize)>> = BinaryHeap::new();
        let start = clock.now().timestamp_millis();
        for (r, rep) in self.reporters.iter().enumerate() {
            // A feed reports all its things at once, like a gateway; feeds
            // are spread over the interval, the same way every run.
            let source = self.things.models.get(rep.model).map_or(0, |m| m.source);
            let phase = (hash2(self.seed ^ str_hash("phase"), source as u64)
                % rep.interval_ms.max(1) as u64) as i64;
            let mut due = start - start.rem_euclid(rep.interval_ms) + phase;
            if due < start {
                due += rep.interval_ms;
            }
            queue.push(Reverse((due, r)));
        }
        let mut pending: VecDeque<Request> = VecDeque::new();
        let mut paused_until = i64::MIN;
        let mut backoff = Duration::from_secs(1);
        let mut ctx = MinuteCtx::default();
        let mut ctx_minute = i64::MIN;
        loop {
            if *shutdown.borrow() {
                break;
            }
            let now = clock.now().timestamp_millis();
            if now < paused_until {
                let wait =
                    Duration::from_millis(u64::try_from(paused_until - now).unwrap_or(0)).min(TICK);
                if sleep_or_stop(wait, &mut shutdown).await {
                    break;
                }
                continue;
            }

            // What is due now, grouped by source.
            let mut by_source: BTreeMap<usize, Vec<u8>> = BTreeMap::new();
            let mut counts: BTreeMap<usize, u64> = BTreeMap::new();
            let mut first: BTreeMap<usize, bool> = BTreeMap::new();
            while let Some(Reverse((due, r))) = queue.peek().copied() {
                if due > now {
                    break;
                }
                queue.pop();
                let Some(rep) = self.reporters.get_mut(r) else {
                    continue;
                };
                let minute = due.div_euclid(60_000);
                if minute != ctx_minute {
                    let events = events_between(&self.params, minute, minute + 1);
                    ctx.set(minute, &events);
                    ctx_minute = minute;
                }
                let secondary = rep.reports.is_multiple_of(rep.secondary_every);
                rep.reports += 1;
                let interval = rep.interval_ms;
                let mut next = due + interval;
                if next <= now - 5 * interval {
                    // Far behind (the server was away): skip to the present.
                    next = now - now.rem_euclid(interval) + due.rem_euclid(interval) + interval;
                }
                queue.push(Reverse((next, r)));
                let Some(model) = self.things.models.get(rep.model) else {
                    continue;
                };
                let Some(id) = self.ids.get(rep.model) else {
                    continue;
                };
                let attrs: Vec<&AttrDef> = model
                    .kind
                    .attrs()
                    .iter()
                    .filter(|a| a.main || secondary)
                    .collect();
                if ctx.is_silenced(model.source) {
                    stats.silenced += attrs.len() as u64;
                    continue;
                }
                let Some(t) = DateTime::from_timestamp_millis(due) else {
                    continue;
                };
                let time = t.to_rfc3339_opts(SecondsFormat::Millis, true);
                let body = by_source.entry(model.source).or_default();
                for a in attrs {
                    let value = match a.ty {
                        ValueType::Text => serde_json::Value::from(text(model, a.attr, &ctx)),
                        _ => serde_json::Value::from(number(model, a.attr, &ctx)),
                    };
                    let item = Item {
                        entity: id,
                        attribute: a.name,
                        time: &time,
                        value,
                    };
                    let is_first = first.entry(model.source).or_insert(true);
                    body.push(if *is_first { b'[' } else { b',' });
                    *is_first = false;
                    if serde_json::to_writer(&mut *body, &item).is_err() {
                        continue;
                    }
                    *counts.entry(model.source).or_insert(0) += 1;
                    if counts.get(&model.source).copied().unwrap_or(0) >= MAX_BATCH as u64 {
                        body.push(b']');
                        let items = counts.remove(&model.source).unwrap_or(0);
                        first.remove(&model.source);
                        pending.push_back(Request {
                            source: model.source,
                            body: std::mem::take(body),
                            items,
                            attempts: 0,
                        });
                    }
                }
            }
            for (source, mut body) in by_source {
                if body.is_empty() {
                    continue;
                }
                body.push(b']');
                let items = counts.get(&source).copied().unwrap_or(0);
                pending.push_back(Request {
                    source,
                    body,
                    items,
                    attempts: 0,
                });
            }
            while pending.len() > MAX_PENDING {
                pending.pop_front();
                stats.dropped += 1;
            }

            // Send, one request at a time, oldest first.
            while let Some(mut req) = pending.pop_front() {
                let Some((source_id, token)) = self.sources.get(req.source) else {
                    continue;
                };
                stats.requests += 1;
                req.attempts += 1;
                let send = post(&self.client, &self.url, token, req.body.clone());
                tokio::pin!(send);
                let mut stopping = false;
                let outcome = tokio::select! {
                    o = &mut send => o,
                    _ = shutdown.changed() => {
                        // Stopping: the request in flight may already be
                        // stored; wait briefly for its answer so the counts
                        // say what the server did.
                        stopping = true;
                        match tokio::time::timeout(STOP_GRACE, &mut send).await {
                            Ok(o) => o,
                            Err(_) => return stats,
                        }
                    }
                };
                match outcome {
                    Outcome::Accepted(n) => {
                        stats.accepted += n;
                        backoff = Duration::from_secs(1);
                    }
                    Outcome::Throttled(retry_after) => {
                        stats.throttled += 1;
                        let wait = retry_after.max(backoff);
                        tracing::info!(source = %source_id, wait_secs = wait.as_secs_f64(), "the server is busy; pausing the simulator");
                        paused_until = clock.now().timestamp_millis()
                            + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 2);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        pending.push_front(req);
                        break;
                    }
                    Outcome::Rejected => {
                        stats.rejected += 1;
                    }
                    Outcome::Failed => {
                        stats.failures += 1;
                        paused_until = clock.now().timestamp_millis()
                            + i64::try_from(backoff.as_millis()).unwrap_or(0);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        if req.attempts < MAX_ATTEMPTS {
                            pending.push_front(req);
                        } else {
                            tracing::warn!(source = %source_id, items = req.items, "giving up on a batch of observations");
                            stats.dropped += 1;
                        }
                        break;
                    }
                }
                if stopping {
                    return stats;
                }
            }

            let now = clock.now().timestamp_millis();
            let next_due = queue.peek().map_or(now + 1_000, |Reverse((due, _))| *due);
            let wait = Duration::from_millis(u64::try_from((next_due - now).max(20)).unwrap_or(20))
                .min(TICK);
            if sleep_or_stop(wait, &mut shutdown).await {
                break;
            }
        }
        stats
    }
}

/// Sleeps; true if the simulator must stop.
async fn sleep_or_stop(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(d) => *shutdown.borrow(),
        changed = shutdown.changed() => changed.is_err() || *shutdown.borrow(),
    }
}

/// Seconds to wait from a `Retry-After` header (delay-seconds; an HTTP date
/// or nothing counts as five seconds).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Duration {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map_or(Duration::from_secs(5), |s| {
            Duration::from_secs(s.clamp(1, 3600))
        })
}

async fn post(client: &reqwest::Client, url: &str, token: &str, body: Vec<u8>) -> Outcome {
    let sent = client
        .post(url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await;
    let resp = match sent {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(error = %e, "cannot reach the ingest API");
            return Outcome::Failed;
        }
    };
    let status = resp.status();
    if status.is_success() {
        let accepted = resp
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v.get("accepted").and_then(|a| a.as_u64()));
        return Outcome::Accepted(accepted.unwrap_or(0));
    }
    if status.as_u16() == 429 || status.as_u16() == 503 {
        return Outcome::Throttled(retry_after(resp.headers()));
    }
    let text = resp.text().await.unwrap_or_default();
    let text: String = text.chars().take(500).collect();
    if status.is_client_error() {
        tracing::warn!(status = status.as_u16(), problem = %text, "the ingest API refused a batch");
        Outcome::Rejected
    } else {
        tracing::warn!(status = status.as_u16(), problem = %text, "the ingest API failed");
        Outcome::Failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), Duration::from_secs(5));
        h.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("7"),
        );
        assert_eq!(retry_after(&h), Duration::from_secs(7));
        h.insert(
            reqwest::header::RETRY_AFTER,
            reqwest::header::HeaderValue::from_static("0"),
        );
        assert_eq!(retry_after(&h), Duration::from_secs(1));
    }
}
