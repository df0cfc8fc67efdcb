//! The poll connector: an HTTP(S) endpoint fetched on a schedule.
//!
//! One task per source. Each poll sends a GET (conditional on the ETag and
//! Last-Modified of the last document it took in full), reads at most
//! [`MAX_DOCUMENT_BYTES`], finds the records (a JSON array at a path, or
//! the rows of a CSV), maps each one with [`Mapping`] (or into indicator
//! values) and writes what is new through [`Ingest`]. What counts as new:
//! for observations, a time later than the newest one stored for its series
//! (so re-polling the same document writes nothing); for indicator values,
//! a figure that differs from the current revision.
//!
//! The schedule runs on tokio time; every time it records comes from the
//! injected [`Clock`]. A failed poll waits the interval, then twice as long
//! each time, up to `max_backoff_secs`; a success goes back to the interval.

use crate::config::{IndicatorMapping, Part, PollConfig, PollFormat, redact_url};
use crate::entities::{Policy, Record, Resolver};
use crate::mapping::{EntityHint, JsonPath, Mapped, Mapping, truncate};
use panorama_core::{
    Clock, FieldError, IndicatorValueInput, Invalid, Observation, Timestamp, Value,
};
use panorama_ingest::{Ingest, IngestError};
use panorama_store::{IndicatorValueQuery, StoreError};
use serde::Serialize;
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Largest document read; a larger one fails the poll.
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024 * 1024;

/// Longest sample of a refused record kept in the status.
const SAMPLE_CHARS: usize = 300;

/// Observations written in one call.
const WRITE_BATCH: usize = 10_000;

/// How a polled source is doing, as a duty operator reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PollState {
    /// Not polled yet.
    Waiting,
    /// The last poll succeeded (new data, nothing new, or a 304).
    Ok,
    /// The last poll failed: no answer, an error status, a timeout, a body
    /// that is not JSON or CSV, or the store refused to take it yet.
    Failing,
    /// The document no longer matches the mapping at all: the array or a
    /// column the mapping needs is gone, or no record maps any more.
    FormatChanged,
}

/// The live state of one polled source.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PollStatus {
    /// The URL polled (password and secret-looking query values hidden).
    pub url: String,
    /// State after the last poll.
    pub state: PollState,
    /// Since when the source is in this state.
    pub since: chrono::DateTime<chrono::Utc>,
    /// When the last poll started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_poll_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When a poll last succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_success_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When the next poll is due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_poll_at: Option<chrono::DateTime<chrono::Utc>>,
    /// HTTP status of the last answer (none when there was no answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_http_status: Option<u16>,
    /// Polls that failed in a row (0 after a success).
    pub consecutive_failures: u32,
    /// Why the last poll failed, in plain words (cleared by a success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// Format of the last document (`json` or `csv`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<PollFormat>,
    /// Polls since the connector started.
    pub polls: u64,
    /// Whether the last poll was answered 304 Not Modified.
    pub last_not_modified: bool,
    /// Records of the last poll written to the store.
    pub last_accepted: u64,
    /// Records of the last poll refused.
    pub last_rejected: u64,
    /// Records of the last poll already in the store, so not written again.
    pub last_skipped: u64,
    /// Records written since the connector started.
    pub accepted: u64,
    /// Records refused since the connector started.
    pub rejected: u64,
    /// The most recent refused record, with the reason (kept until a poll
    /// refuses none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected_sample: Option<String>,
}

impl PollStatus {
    pub(crate) fn new(url: &str, now: Timestamp) -> Self {
        Self {
            url: redact_url(url),
            state: PollState::Waiting,
            since: now,
            last_poll_at: None,
            last_success_at: None,
            next_poll_at: None,
            last_http_status: None,
            consecutive_failures: 0,
            last_error: None,
            format: None,
            polls: 0,
            last_not_modified: false,
            last_accepted: 0,
            last_rejected: 0,
            last_skipped: 0,
            accepted: 0,
            rejected: 0,
            rejected_sample: None,
        }
    }
}

pub(crate) type PollCell = Arc<Mutex<PollStatus>>;

fn update(cell: &PollCell, f: impl FnOnce(&mut PollStatus)) {
    if let Ok(mut s) = cell.lock() {
        f(&mut s);
    }
}

/// What the connector needs from its surroundings.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub source: String,
    pub domain: Option<String>,
    pub ingest: Ingest,
    pub clock: Arc<dyn Clock>,
    pub status: PollCell,
    /// How long one configured second lasts (one second, except in tests).
    pub unit: Duration,
}

/// Why a poll failed.
#[derive(Debug)]
enum Failure {
    /// No usable answer.
    Failing(String),
    /// The answer no longer fits the mapping.
    FormatChanged(String),
}

/// What a successful poll did.
#[derive(Debug, Default)]
struct Outcome {
    not_modified: bool,
    format: Option<PollFormat>,
    accepted: u64,
    rejected: u64,
    skipped: u64,
    sample: Option<String>,
}

/// Runs the connector of one source until the returned task is aborted.
pub(crate) fn spawn(cfg: PollConfig, env: Env) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = match reqwest::Client::builder()
            .user_agent(concat!("Panorama/", env!("CARGO_PKG_VERSION")))
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                let now = env.clock.now();
                update(&env.status, |s| {
                    s.state = PollState::Failing;
                    s.since = now;
                    s.last_error = Some(format!("cannot make an HTTP client: {e}"));
                });
                return;
            }
        };
        let mut poller = Poller {
            cfg,
            env,
            client,
            etag: None,
            last_modified: None,
            last_http: None,
            newest: HashMap::new(),
            seeded: HashSet::new(),
            resolver: Resolver::default(),
            current: HashMap::new(),
            seeded_indicators: HashSet::new(),
        };
        poller.run().await;
    })
}

struct Poller {
    cfg: PollConfig,
    env: Env,
    client: reqwest::Client,
    etag: Option<String>,
    last_modified: Option<String>,
    /// HTTP status of the answer to the poll under way.
    last_http: Option<u16>,
    /// Newest time stored per series (entity, attribute).
    newest: HashMap<(String, String), Timestamp>,
    /// Entities whose newest times were read from the store.
    seeded: HashSet<String>,
    /// Entities known to exist, with their attributes.
    resolver: Resolver,
    /// Current indicator figures by (indicator, period, admin unit).
    current: HashMap<(String, String, String), f64>,
    /// Indicators whose current values were read from the store.
    seeded_indicators: HashSet<String>,
}

impl Poller {
    async fn run(&mut self) {
        let interval = self.cfg.interval_secs();
        let max_backoff = self.cfg.max_backoff_secs();
        loop {
            let started = self.env.clock.now();
            self.last_http = None;
            let result = self.poll_once().await;
            let http = self.last_http;
            let now = self.env.clock.now();
            let failures = match self.env.status.lock() {
                Ok(s) => s.consecutive_failures,
                Err(_) => 0,
            };
            let failures = if result.is_ok() { 0 } else { failures + 1 };
            let wait_secs = if failures == 0 {
                interval
            } else {
                interval
                    .saturating_mul(1u64 << (failures - 1).min(20))
                    .min(max_backoff)
            };
            let wait = self
                .env
                .unit
                .saturating_mul(u32::try_from(wait_secs).unwrap_or(u32::MAX));
            let next = now + chrono::Duration::from_std(wait).unwrap_or_default();
            match result {
                Ok(o) => {
                    if o.rejected > 0 {
                        let n = o.rejected;
                        self.env.ingest.reject(
                            &self.env.source,
                            n,
                            o.sample.clone().unwrap_or_default(),
                        );
                    }
                    update(&self.env.status, |s| {
                        if s.state != PollState::Ok {
                            s.since = now;
                        }
                        s.state = PollState::Ok;
                        s.last_http_status = http;
                        s.last_poll_at = Some(started);
                        s.last_success_at = Some(now);
                        s.next_poll_at = Some(next);
                        s.consecutive_failures = 0;
                        s.last_error = None;
                        s.polls += 1;
                        s.last_not_modified = o.not_modified;
                        if o.format.is_some() {
                            s.format = o.format;
                        }
                        s.last_accepted = o.accepted;
                        s.last_rejected = o.rejected;
                        s.last_skipped = o.skipped;
                        s.accepted += o.accepted;
                        s.rejected += o.rejected;
                        if !o.not_modified {
                            s.rejected_sample = o.sample;
                        }
                    });
                }
                Err(f) => {
                    let (state, msg) = match f {
                        Failure::Failing(m) => (PollState::Failing, m),
                        Failure::FormatChanged(m) => (PollState::FormatChanged, m),
                    };
                    tracing::warn!(source = %self.env.source, error = %msg, retry_in_ms = wait.as_millis() as u64, "poll failed");
                    metrics::counter!("panorama_poll_failures_total").increment(1);
                    update(&self.env.status, |s| {
                        if s.state != state {
                            s.since = now;
                        }
                        s.state = state;
                        s.last_http_status = http;
                        s.last_poll_at = Some(started);
                        s.next_poll_at = Some(next);
                        s.consecutive_failures = failures;
                        s.last_error = Some(msg);
                        s.polls += 1;
                        s.last_not_modified = false;
                        s.last_accepted = 0;
                        s.last_rejected = 0;
                        s.last_skipped = 0;
                    });
                }
            }
            metrics::counter!("panorama_polls_total").increment(1);
            tokio::time::sleep(wait).await;
        }
    }

    fn timeout(&self) -> Duration {
        self.env
            .unit
            .saturating_mul(u32::try_from(self.cfg.timeout_secs()).unwrap_or(u32::MAX))
    }

    fn timed_out(&self) -> Failure {
        Failure::Failing(format!(
            "timed out after {} s (connector.timeout_secs)",
            self.cfg.timeout_secs()
        ))
    }

    async fn poll_once(&mut self) -> Result<Outcome, Failure> {
        let timeout = self.timeout();
        match tokio::time::timeout(timeout, self.fetch()).await {
            Ok(Ok(None)) => Ok(Outcome {
                not_modified: true,
                ..Outcome::default()
            }),
            Ok(Ok(Some(doc))) => self.take(doc).await,
            Ok(Err(f)) => Err(f),
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Fetches the document; `None` on 304 Not Modified.
    async fn fetch(&mut self) -> Result<Option<Document>, Failure> {
        let mut req = self.client.get(&self.cfg.url);
        for (k, v) in &self.cfg.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let accept = match self.cfg.format {
            Some(PollFormat::Json) => "application/json",
            Some(PollFormat::Csv) => "text/csv",
            None => "application/json, text/csv;q=0.9, */*;q=0.1",
        };
        if !self
            .cfg
            .headers
            .keys()
            .any(|k| k.eq_ignore_ascii_case("accept"))
        {
            req = req.header(reqwest::header::ACCEPT, accept);
        }
        if let Some(e) = &self.etag {
            req = req.header(reqwest::header::IF_NONE_MATCH, e.as_str());
        }
        if let Some(m) = &self.last_modified {
            req = req.header(reqwest::header::IF_MODIFIED_SINCE, m.as_str());
        }
        let mut resp = req.send().await.map_err(|e| self.request_error(&e))?;
        let status = resp.status();
        self.last_http = Some(status.as_u16());
        if status == reqwest::StatusCode::NOT_MODIFIED {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(Failure::Failing(format!(
                "the endpoint answered {}{}",
                status.as_u16(),
                status
                    .canonical_reason()
                    .map(|r| format!(" {r}"))
                    .unwrap_or_default()
            )));
        }
        let header = |name: reqwest::header::HeaderName| {
            resp.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let content_type = header(reqwest::header::CONTENT_TYPE);
        let etag = header(reqwest::header::ETAG);
        let last_modified = header(reqwest::header::LAST_MODIFIED);
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_DOCUMENT_BYTES as u64)
        {
            return Err(too_large());
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|e| self.request_error(&e))? {
            if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Some(Document {
            body,
            content_type,
            etag,
            last_modified,
        }))
    }

    fn request_error(&self, e: &reqwest::Error) -> Failure {
        if e.is_timeout() {
            return self.timed_out();
        }
        let mut why = String::new();
        let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
        while let Some(s) = src {
            why = s.to_string();
            src = s.source();
        }
        let what = if e.is_connect() {
            "cannot connect to the endpoint"
        } else if e.is_body() || e.is_decode() {
            "the answer broke off"
        } else {
            "the request failed"
        };
        if why.is_empty() {
            Failure::Failing(what.to_string())
        } else {
            Failure::Failing(format!("{what}: {why}"))
        }
    }

    /// Maps and writes a fetched document.
    async fn take(&mut self, doc: Document) -> Result<Outcome, Failure> {
        let format = self.format_of(&doc)?;
        let now = self.env.clock.now();
        let (records, csv) = match format {
            PollFormat::Json => (self.json_records(&doc.body)?, false),
            PollFormat::Csv => (self.csv_records(&doc.body)?, true),
        };
        let mut out = match &self.cfg.indicator_values {
            Some(iv) => {
                let iv = iv.clone();
                self.take_indicator_values(&iv, &records).await?
            }
            None => {
                let mapping = self.cfg.observation_mapping().unwrap_or_default();
                self.take_observations(&mapping, &records, csv, now).await?
            }
        };
        out.format = Some(format);
        // Only a document taken in full may be answered 304 next time.
        self.etag = doc.etag;
        self.last_modified = doc.last_modified;
        Ok(out)
    }

    fn format_of(&self, doc: &Document) -> Result<PollFormat, Failure> {
        let ct = doc
            .content_type
            .as_deref()
            .unwrap_or_default()
            .to_ascii_lowercase();
        let mime = ct.split(';').next().unwrap_or_default().trim().to_string();
        if mime == "text/html" || mime == "application/xhtml+xml" {
            let expected = self.cfg.format.map_or("JSON or CSV", |f| match f {
                PollFormat::Json => "JSON",
                PollFormat::Csv => "CSV",
            });
            return Err(Failure::Failing(format!(
                "the endpoint answered an HTML page ({mime}), not {expected}"
            )));
        }
        if let Some(f) = self.cfg.format {
            return Ok(f);
        }
        if mime.contains("json") {
            Ok(PollFormat::Json)
        } else if mime.contains("csv") {
            Ok(PollFormat::Csv)
        } else {
            match doc.body.iter().find(|b| !b.is_ascii_whitespace()) {
                Some(b'{' | b'[') => Ok(PollFormat::Json),
                _ => Err(Failure::Failing(format!(
                    "cannot tell JSON from CSV: the endpoint says Content-Type '{}'; set connector.format",
                    if mime.is_empty() { "(none)" } else { &mime }
                ))),
            }
        }
    }

    fn json_records(&self, body: &[u8]) -> Result<Vec<Json>, Failure> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        let doc: Json = serde_json::from_slice(body).map_err(|e| {
            Failure::Failing(format!(
                "the answer is not JSON ({e}); it starts with: {}",
                truncate(&String::from_utf8_lossy(&body[..body.len().min(80)]), 80)
            ))
        })?;
        match self.cfg.records.as_deref() {
            None | Some("$") => Ok(match doc {
                Json::Array(items) => items,
                other => vec![other],
            }),
            Some(path) => {
                let p = JsonPath::parse(path).map_err(Failure::Failing)?;
                match p.get(&doc) {
                    Some(Json::Array(items)) => Ok(items.clone()),
                    Some(other) => Err(Failure::FormatChanged(format!(
                        "the JSON has {} at {path}, not an array of records",
                        kind_of(other)
                    ))),
                    None => Err(Failure::FormatChanged(format!(
                        "the JSON no longer has the array at {path}"
                    ))),
                }
            }
        }
    }

    /// The columns the mapping reads.
    fn needed_columns(&self) -> Vec<String> {
        match (&self.cfg.indicator_values, self.cfg.observation_mapping()) {
            (Some(iv), _) => {
                let mut out: Vec<String> = Vec::new();
                for s in [&iv.indicator, &iv.period, &iv.admin_unit, &iv.value] {
                    if let Ok(Part::Path(p)) = Part::parse(s)
                        && let Some(k) = p.first_key()
                        && !out.iter().any(|x| x == k)
                    {
                        out.push(k.to_string());
                    }
                }
                out
            }
            (None, Some(Mapping::Json(m))) => m.keys(),
            (None, _) => Vec::new(),
        }
    }

    fn csv_records(&self, body: &[u8]) -> Result<Vec<Json>, Failure> {
        let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
        if std::str::from_utf8(body).is_err() {
            return Err(Failure::Failing("the CSV is not UTF-8 text".to_string()));
        }
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(self.cfg.delimiter())
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(body);
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| Failure::Failing(format!("the CSV cannot be read: {e}")))?
            .iter()
            .map(str::to_string)
            .collect();
        let missing: Vec<String> = self
            .needed_columns()
            .into_iter()
            .filter(|c| !headers.iter().any(|h| h == c))
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|c| format!("'{c}'"))
                .collect::<Vec<_>>()
                .join(", ");
            let noun = if missing.len() == 1 {
                "column"
            } else {
                "columns"
            };
            let verb = if missing.len() == 1 { "is" } else { "are" };
            return Err(Failure::FormatChanged(format!(
                "{noun} {list} {verb} missing (the CSV has: {})",
                truncate(&headers.join(", "), 200)
            )));
        }
        let mut out = Vec::new();
        for row in reader.records() {
            let row = row.map_err(|e| Failure::Failing(format!("the CSV cannot be read: {e}")))?;
            let obj: serde_json::Map<String, Json> = headers
                .iter()
                .zip(row.iter())
                .filter(|(_, cell)| !cell.is_empty())
                .map(|(h, cell)| (h.clone(), Json::String(cell.to_string())))
                .collect();
            out.push(Json::Object(obj));
        }
        Ok(out)
    }

    async fn take_observations(
        &mut self,
        mapping: &Mapping,
        records: &[Json],
        csv: bool,
        now: Timestamp,
    ) -> Result<Outcome, Failure> {
        let mut out = Outcome::default();
        let mut mapped: Vec<(usize, Mapped)> = Vec::new();
        let mut first_error: Option<String> = None;
        for (i, rec) in records.iter().enumerate() {
            match mapping.map_json("", rec, now) {
                Ok(mut m) => {
                    if csv {
                        m.observations.iter_mut().for_each(coerce_cell);
                    }
                    mapped.push((i, m));
                }
                Err(e) => {
                    let why = reasons(&e);
                    first_error.get_or_insert_with(|| why.clone());
                    out.rejected += 1;
                    out.sample = Some(sample_of(i, rec, &why));
                }
            }
        }
        if !records.is_empty() && mapped.is_empty() {
            return Err(Failure::FormatChanged(format!(
                "no record matches the mapping any more ({} records; the first: {})",
                records.len(),
                first_error.unwrap_or_default()
            )));
        }
        self.seed_newest(&mapped).await?;
        // Keep only what is newer than the store has, and mark the rest.
        let mut items: Vec<(usize, Vec<Observation>, Vec<EntityHint>)> = Vec::new();
        for (i, m) in mapped {
            let fresh: Vec<Observation> = m
                .observations
                .into_iter()
                .filter(|o| {
                    self.newest
                        .get(&(o.entity.clone(), o.attribute.clone()))
                        .is_none_or(|t| o.time > *t)
                })
                .collect();
            if fresh.is_empty() {
                out.skipped += 1;
            } else {
                items.push((i, fresh, m.entities));
            }
        }
        let refused = self.resolve_entities(&mut items).await?;
        for (i, why) in refused {
            out.rejected += 1;
            out.sample = Some(sample_of(i, &records[i], &why));
        }
        let (accepted, refused) = self.write_observations(items).await?;
        out.accepted = accepted;
        for (i, why) in refused {
            out.rejected += 1;
            out.sample = Some(sample_of(i, &records[i], &why));
        }
        Ok(out)
    }

    /// Reads the newest stored times of entities not seen yet.
    async fn seed_newest(&mut self, mapped: &[(usize, Mapped)]) -> Result<(), Failure> {
        let ids: Vec<String> = mapped
            .iter()
            .flat_map(|(_, m)| m.observations.iter().map(|o| o.entity.clone()))
            .filter(|e| !self.seeded.contains(e))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if ids.is_empty() {
            return Ok(());
        }
        let store = self.env.ingest.store().clone();
        let latest = match store.latest(&ids).await {
            Ok(l) => l,
            // Some are new: they have nothing stored. Ask one by one.
            Err(StoreError::NotFound { .. }) => {
                let mut all = Vec::new();
                for id in &ids {
                    match store.latest(std::slice::from_ref(id)).await {
                        Ok(l) => all.extend(l),
                        Err(StoreError::NotFound { .. }) => {}
                        Err(e) => return Err(store_failure(&IngestError::Store(e))),
                    }
                }
                all
            }
            Err(e) => return Err(store_failure(&IngestError::Store(e))),
        };
        for l in latest {
            let t = self.newest.entry((l.entity, l.attribute)).or_insert(l.time);
            if l.time > *t {
                *t = l.time;
            }
        }
        self.seeded.extend(ids);
        Ok(())
    }

    /// Checks that every observed entity exists and declares the attribute
    /// with the value's type; creates or extends entities when allowed.
    /// Returns the records refused (dropped from `items`) with the reason.
    async fn resolve_entities(
        &mut self,
        items: &mut Vec<(usize, Vec<Observation>, Vec<EntityHint>)>,
    ) -> Result<Vec<(usize, String)>, Failure> {
        let policy = Policy {
            source: self.env.source.clone(),
            domain: self.env.domain.clone(),
            create: self.cfg.create_entities,
        };
        let records: Vec<Record<'_>> = items
            .iter()
            .map(|(_, obs, hints)| Record {
                observations: obs,
                hints,
            })
            .collect();
        let verdicts = self
            .resolver
            .resolve(&self.env.ingest, &policy, &records)
            .await
            .map_err(|e| store_failure(&e))?;
        drop(records);
        let mut refused = Vec::new();
        let mut keep = Vec::with_capacity(items.len());
        for (item, verdict) in items.drain(..).zip(verdicts) {
            match verdict {
                Some(why) => refused.push((item.0, reasons(&why))),
                None => keep.push(item),
            }
        }
        *items = keep;
        Ok(refused)
    }

    /// Writes the observations of the records; one call per batch, record
    /// by record when the store refuses a batch. Returns how many records
    /// were written and those refused.
    async fn write_observations(
        &mut self,
        items: Vec<(usize, Vec<Observation>, Vec<EntityHint>)>,
    ) -> Result<(u64, Vec<(usize, String)>), Failure> {
        let mut accepted = 0;
        let mut refused = Vec::new();
        let mut batch: Vec<(usize, Vec<Observation>)> = Vec::new();
        let mut size = 0;
        let mut iter = items.into_iter().peekable();
        while let Some((i, obs, _)) = iter.next() {
            size += obs.len();
            batch.push((i, obs));
            if size < WRITE_BATCH && iter.peek().is_some() {
                continue;
            }
            let all: Vec<Observation> = batch.iter().flat_map(|(_, o)| o.clone()).collect();
            match self.env.ingest.observations(&self.env.source, all).await {
                Ok(_) => {
                    for (_, obs) in &batch {
                        self.note_written(obs);
                    }
                    accepted += batch.len() as u64;
                }
                Err(IngestError::Store(StoreError::Invalid(_) | StoreError::NotFound { .. })) => {
                    self.resolver.forget();
                    for (i, obs) in &batch {
                        match self
                            .env
                            .ingest
                            .observations(&self.env.source, obs.clone())
                            .await
                        {
                            Ok(_) => {
                                self.note_written(obs);
                                accepted += 1;
                            }
                            Err(IngestError::Store(StoreError::Invalid(inv))) => {
                                refused.push((*i, reasons(&inv)));
                            }
                            Err(IngestError::Store(e @ StoreError::NotFound { .. })) => {
                                refused.push((*i, e.to_string()));
                            }
                            Err(e) => return Err(store_failure(&e)),
                        }
                    }
                }
                Err(e) => return Err(store_failure(&e)),
            }
            batch.clear();
            size = 0;
        }
        Ok((accepted, refused))
    }

    fn note_written(&mut self, obs: &[Observation]) {
        for o in obs {
            let t = self
                .newest
                .entry((o.entity.clone(), o.attribute.clone()))
                .or_insert(o.time);
            if o.time > *t {
                *t = o.time;
            }
        }
    }

    async fn take_indicator_values(
        &mut self,
        iv: &IndicatorMapping,
        records: &[Json],
    ) -> Result<Outcome, Failure> {
        let mut out = Outcome::default();
        let mut values: Vec<(usize, IndicatorValueInput)> = Vec::new();
        let mut first_error: Option<String> = None;
        for (i, rec) in records.iter().enumerate() {
            match indicator_value(iv, rec) {
                Ok(v) => values.push((i, v)),
                Err(e) => {
                    let why = reasons(&e);
                    first_error.get_or_insert_with(|| why.clone());
                    out.rejected += 1;
                    out.sample = Some(sample_of(i, rec, &why));
                }
            }
        }
        if !records.is_empty() && values.is_empty() {
            return Err(Failure::FormatChanged(format!(
                "no record matches the mapping any more ({} records; the first: {})",
                records.len(),
                first_error.unwrap_or_default()
            )));
        }
        let store = self.env.ingest.store().clone();
        let codes: HashSet<String> = values
            .iter()
            .map(|(_, v)| v.indicator.clone())
            .filter(|c| !self.seeded_indicators.contains(c))
            .collect();
        for code in codes {
            let q = IndicatorValueQuery {
                indicator: Some(code.clone()),
                ..IndicatorValueQuery::default()
            };
            let current = store
                .indicator_values(&q)
                .await
                .map_err(|e| store_failure(&IngestError::Store(e)))?;
            for v in current {
                self.current
                    .insert((v.indicator, v.period, v.admin_unit), v.value);
            }
            self.seeded_indicators.insert(code);
        }
        let key =
            |v: &IndicatorValueInput| (v.indicator.clone(), v.period.clone(), v.admin_unit.clone());
        let fresh: Vec<(usize, IndicatorValueInput)> = values
            .into_iter()
            .filter(|(_, v)| {
                let same = self.current.get(&key(v)) == Some(&v.value);
                if same {
                    out.skipped += 1;
                }
                !same
            })
            .collect();
        if fresh.is_empty() {
            return Ok(out);
        }
        let by = format!("source:{}", self.env.source);
        let all: Vec<IndicatorValueInput> = fresh.iter().map(|(_, v)| v.clone()).collect();
        match self.env.ingest.indicator_values(&by, all).await {
            Ok(stored) => {
                out.accepted += stored.len() as u64;
                for v in stored {
                    self.current
                        .insert((v.indicator, v.period, v.admin_unit), v.value);
                }
            }
            Err(IngestError::Store(StoreError::Invalid(_) | StoreError::NotFound { .. })) => {
                for (i, v) in fresh {
                    match self.env.ingest.indicator_values(&by, vec![v]).await {
                        Ok(stored) => {
                            out.accepted += 1;
                            for v in stored {
                                self.current
                                    .insert((v.indicator, v.period, v.admin_unit), v.value);
                            }
                        }
                        Err(IngestError::Store(StoreError::Invalid(inv))) => {
                            out.rejected += 1;
                            out.sample = Some(sample_of(i, &records[i], &reasons(&inv)));
                        }
                        Err(IngestError::Store(e @ StoreError::NotFound { .. })) => {
                            out.rejected += 1;
                            out.sample = Some(sample_of(i, &records[i], &e.to_string()));
                        }
                        Err(e) => return Err(store_failure(&e)),
                    }
                }
            }
            Err(e) => return Err(store_failure(&e)),
        }
        Ok(out)
    }
}

/// A fetched document.
struct Document {
    body: Vec<u8>,
    content_type: Option<String>,
    etag: Option<String>,
    last_modified: Option<String>,
}

fn too_large() -> Failure {
    Failure::Failing(format!(
        "the answer is larger than {} MiB",
        MAX_DOCUMENT_BYTES / (1024 * 1024)
    ))
}

fn store_failure(e: &IngestError) -> Failure {
    Failure::Failing(format!("cannot store the records yet: {e}"))
}

fn kind_of(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// The field errors in plain words: `field: reason; …`.
fn reasons(e: &Invalid) -> String {
    e.0.iter()
        .map(|f| {
            if f.field.is_empty() {
                f.reason.clone()
            } else {
                format!("{}: {}", f.field, f.reason)
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

fn sample_of(i: usize, rec: &Json, why: &str) -> String {
    format!(
        "record {i}: {why} (record: {})",
        truncate(&rec.to_string(), SAMPLE_CHARS)
    )
}

/// A CSV cell is text; a cell that reads as a number or a boolean is one.
fn coerce_cell(o: &mut Observation) {
    if let Value::Text(t) = &o.value {
        if let Ok(n) = t.parse::<f64>()
            && n.is_finite()
        {
            o.value = Value::Number(n);
        } else if t.eq_ignore_ascii_case("true") {
            o.value = Value::Boolean(true);
        } else if t.eq_ignore_ascii_case("false") {
            o.value = Value::Boolean(false);
        }
    }
}

/// One record as an indicator value.
fn indicator_value(iv: &IndicatorMapping, rec: &Json) -> Result<IndicatorValueInput, Invalid> {
    let mut errs: Vec<FieldError> = Vec::new();
    let mut text = |field: &str, spec: &str| -> Option<String> {
        match Part::parse(spec) {
            Ok(Part::Const(c)) => Some(c),
            Ok(Part::Path(p)) => match p.get(rec) {
                Some(Json::String(s)) if !s.trim().is_empty() => Some(s.trim().to_string()),
                Some(Json::Number(n)) => Some(n.to_string()),
                Some(Json::Null) | None => {
                    errs.push(FieldError::new(field, format!("{p} is missing")));
                    None
                }
                Some(Json::String(_)) => {
                    errs.push(FieldError::new(field, format!("{p} is empty")));
                    None
                }
                Some(_) => {
                    errs.push(FieldError::new(
                        field,
                        format!("{p} must be text or a number"),
                    ));
                    None
                }
            },
            Err(e) => {
                errs.push(FieldError::new(field, e));
                None
            }
        }
    };
    let indicator = text("indicator", &iv.indicator);
    let period = text("period", &iv.period);
    let admin_unit = text("admin_unit", &iv.admin_unit);
    let raw = text("value", &iv.value);
    let value = raw.and_then(|r| match r.replace(',', ".").parse::<f64>() {
        Ok(v) if v.is_finite() => Some(v),
        _ => {
            errs.push(FieldError::new(
                "value",
                format!("'{}' is not a number", truncate(&r, 40)),
            ));
            None
        }
    });
    let (Some(indicator), Some(period), Some(admin_unit), Some(value), true) =
        (indicator, period, admin_unit, value, errs.is_empty())
    else {
        return Err(Invalid(errs));
    };
    let v = IndicatorValueInput {
        indicator,
        period,
        admin_unit,
        value,
        status: None,
        note: None,
    };
    v.validate()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn iv() -> IndicatorMapping {
        IndicatorMapping {
            indicator: "cpi".into(),
            period: "$.period".into(),
            admin_unit: "$.unit".into(),
            value: "$.value".into(),
        }
    }

    #[test]
    fn a_record_becomes_an_indicator_value_with_constants_and_paths() {
        let v = indicator_value(
            &iv(),
            &json!({"period": "2024-05", "unit": "74", "value": "101,5"}),
        )
        .unwrap();
        assert_eq!(
            (
                v.indicator.as_str(),
                v.period.as_str(),
                v.admin_unit.as_str(),
                v.value
            ),
            ("cpi", "2024-05", "74", 101.5)
        );
    }

    #[test]
    fn a_bad_indicator_record_names_every_bad_part() {
        let e = indicator_value(&iv(), &json!({"period": "", "value": "n/a"})).unwrap_err();
        let fields: Vec<&str> = e.0.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["period", "admin_unit", "value"], "{e}");
        assert!(e.0[2].reason.contains("'n/a' is not a number"), "{e}");
        let e = indicator_value(
            &iv(),
            &json!({"period": "2024-13", "unit": "74", "value": 1}),
        )
        .unwrap_err();
        assert_eq!(e.0[0].field, "period", "{e}");
    }

    #[test]
    fn csv_cells_that_read_as_numbers_or_booleans_become_them() {
        let mut o = Observation {
            entity: "urn:x:a".into(),
            attribute: "a".into(),
            time: chrono::DateTime::UNIX_EPOCH,
            value: Value::Text("1.25".into()),
        };
        coerce_cell(&mut o);
        assert_eq!(o.value, Value::Number(1.25));
        o.value = Value::Text("TRUE".into());
        coerce_cell(&mut o);
        assert_eq!(o.value, Value::Boolean(true));
        o.value = Value::Text("high".into());
        coerce_cell(&mut o);
        assert_eq!(o.value, Value::Text("high".into()));
    }
}
