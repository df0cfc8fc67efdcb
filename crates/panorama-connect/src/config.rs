//! The `connector` document of a source: what Panorama needs to connect to
//! it. Checked when the source is created, with errors that name the field
//! (`connector.topics[0].qos`).

use crate::mapping::{JsonPath, Mapping, check_topic_filter};
use panorama_core::{FieldError, Invalid, SourceKind};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// An MQTT source: broker, subscriptions, credentials and mapping.
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// Broker host name or address.
    pub host: String,
    /// Broker port (default 1883, or 8883 with TLS).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// MQTT client id (default `panorama-<source id>`). It names the
    /// broker's persistent session: keep it stable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Password (never shown back by the API).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// TLS to the broker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsOptions>,
    /// Subscriptions (at least one).
    pub topics: Vec<TopicConfig>,
    /// How payloads become observations (default `auto`: Smart Data Models
    /// key-values or Sensor.Community).
    #[serde(default)]
    pub mapping: Mapping,
    /// Create entities (and declare attributes) the messages name but the
    /// store does not know yet, in the source's domain (default true).
    #[serde(default = "yes")]
    pub create_entities: bool,
    /// Keep-alive in seconds (default 30).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive_secs: Option<u64>,
    /// Most messages written together (default 1000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_batch: Option<usize>,
}

fn yes() -> bool {
    true
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("host", &self.host)
            .field("port", &self.port())
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| REDACTED))
            .field("tls", &self.tls)
            .field("topics", &self.topics)
            .field("mapping", &self.mapping)
            .field("create_entities", &self.create_entities)
            .finish_non_exhaustive()
    }
}

/// What a password is shown as.
pub const REDACTED: &str = "********";

/// One subscription.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopicConfig {
    /// Topic filter, with `+` and `#` wildcards.
    pub filter: String,
    /// 0 (at most once), 1 (at least once; default) or 2.
    #[serde(default = "one")]
    pub qos: u8,
}

fn one() -> u8 {
    1
}

/// TLS settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// PEM file of the certificate authorities to trust for the broker.
    pub ca_file: String,
}

impl MqttConfig {
    /// The broker port, defaulted by transport.
    pub fn port(&self) -> u16 {
        self.port
            .unwrap_or(if self.tls.is_some() { 8883 } else { 1883 })
    }

    /// Checks every field; errors name the field under `connector`.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errs = Vec::new();
        if self.host.trim().is_empty() {
            errs.push(FieldError::new("host", "must not be empty"));
        } else if self.host.len() > 253 || self.host.contains(['/', ' ']) {
            errs.push(FieldError::new("host", "must be a host name or address"));
        }
        if self.port == Some(0) {
            errs.push(FieldError::new("port", "must be between 1 and 65535"));
        }
        if let Some(id) = &self.client_id
            && (id.is_empty() || id.len() > 128)
        {
            errs.push(FieldError::new(
                "client_id",
                "must be between 1 and 128 characters",
            ));
        }
        if self.password.is_some() && self.username.is_none() {
            errs.push(FieldError::new("username", "is required with a password"));
        }
        if let Some(t) = &self.tls
            && t.ca_file.trim().is_empty()
        {
            errs.push(FieldError::new("tls.ca_file", "must not be empty"));
        }
        if self.topics.is_empty() {
            errs.push(FieldError::new("topics", "must list at least one topic"));
        }
        for (i, t) in self.topics.iter().enumerate() {
            if let Err(e) = check_topic_filter(&t.filter) {
                errs.push(FieldError::new(format!("topics[{i}].filter"), e));
            }
            if t.qos > 2 {
                errs.push(FieldError::new(
                    format!("topics[{i}].qos"),
                    "must be 0, 1 or 2",
                ));
            }
        }
        if let Err(e) = self.mapping.validate() {
            errs.extend(e.under("mapping").0);
        }
        if let Some(k) = self.keep_alive_secs
            && !(5..=3600).contains(&k)
        {
            errs.push(FieldError::new(
                "keep_alive_secs",
                "must be between 5 and 3600",
            ));
        }
        if let Some(b) = self.max_batch
            && !(1..=100_000).contains(&b)
        {
            errs.push(FieldError::new("max_batch", "must be between 1 and 100000"));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }
}

/// A polled HTTP(S) endpoint: where, how often, and how its JSON or CSV
/// becomes observations or indicator values.
#[derive(Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PollConfig {
    /// `http://` or `https://` URL fetched with GET.
    pub url: String,
    /// Seconds between polls (default 300, at least 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval_secs: Option<u64>,
    /// Seconds a poll may take, connection to last byte (default 30, 1 to 600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Longest wait between polls while the endpoint keeps failing; the
    /// wait doubles from the interval up to it (default 10 × the interval,
    /// at most one hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff_secs: Option<u64>,
    /// `json` or `csv`; by default told from the response's Content-Type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<PollFormat>,
    /// Request headers, e.g. `Authorization` (secret-looking ones are
    /// never shown back by the API).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers: BTreeMap<String, String>,
    /// JSON path of the array of records (default `$`: the document is the
    /// array, or a single record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// CSV field delimiter (default `,`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delimiter: Option<String>,
    /// How each record becomes observations (default `auto`: Smart Data
    /// Models / NGSI key-values or Sensor.Community). A CSV row is a record
    /// whose keys are the column names: `$.level` is column `level`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<Mapping>,
    /// Instead of `mapping`: each record is an indicator value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator_values: Option<IndicatorMapping>,
    /// Create entities the records name but the store does not know yet,
    /// in the source's domain (default true).
    #[serde(default = "yes")]
    pub create_entities: bool,
}

/// The format of a polled document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PollFormat {
    /// JSON.
    Json,
    /// CSV with a header row.
    Csv,
}

impl PollFormat {
    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
        }
    }
}

/// Where the parts of an indicator value are in a record. Each is a JSON
/// path (`$.period`; for CSV `$.column`) or, when it does not start with
/// `$`, a constant (`"indicator": "cpi"`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IndicatorMapping {
    /// Indicator code, or the path to it.
    pub indicator: String,
    /// Period label (`2024`, `2024-Q2`, `2024-05`, `2024-05-31`), or the path to it.
    pub period: String,
    /// Admin unit code, or the path to it.
    pub admin_unit: String,
    /// Path to the figure.
    pub value: String,
}

/// Headers whose values are shown as [`REDACTED`].
pub fn is_secret_header(name: &str) -> bool {
    let n = name.to_ascii_lowercase();
    matches!(
        n.as_str(),
        "authorization" | "proxy-authorization" | "cookie"
    ) || ["token", "key", "secret", "password", "auth"]
        .iter()
        .any(|w| n.contains(w))
}

impl std::fmt::Debug for PollConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: BTreeMap<&str, &str> = self
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if is_secret_header(k) {
                    REDACTED
                } else {
                    v.as_str()
                };
                (k.as_str(), v)
            })
            .collect();
        f.debug_struct("PollConfig")
            .field("url", &redact_url(&self.url))
            .field("interval_secs", &self.interval_secs)
            .field("timeout_secs", &self.timeout_secs)
            .field("format", &self.format)
            .field("headers", &headers)
            .field("records", &self.records)
            .field("mapping", &self.mapping)
            .field("indicator_values", &self.indicator_values)
            .finish_non_exhaustive()
    }
}

/// Smallest and default poll interval, in seconds.
pub const MIN_INTERVAL_SECS: u64 = 5;
const DEFAULT_INTERVAL_SECS: u64 = 300;
const DEFAULT_TIMEOUT_SECS: u64 = 30;

/// A value of an [`IndicatorMapping`] field: a constant or a path.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Part {
    Const(String),
    Path(JsonPath),
}

impl Part {
    pub(crate) fn parse(s: &str) -> Result<Self, String> {
        if s.starts_with('$') {
            JsonPath::parse(s).map(Self::Path)
        } else if s.trim().is_empty() {
            Err("must not be empty".into())
        } else {
            Ok(Self::Const(s.to_string()))
        }
    }
}

impl PollConfig {
    /// Seconds between polls.
    pub fn interval_secs(&self) -> u64 {
        self.interval_secs.unwrap_or(DEFAULT_INTERVAL_SECS)
    }

    /// Seconds a poll may take.
    pub fn timeout_secs(&self) -> u64 {
        self.timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS)
    }

    /// Longest wait between failing polls, in seconds.
    pub fn max_backoff_secs(&self) -> u64 {
        self.max_backoff_secs
            .unwrap_or_else(|| (self.interval_secs() * 10).min(3600))
            .max(self.interval_secs())
    }

    /// The observation mapping (default `auto`), unless this source polls
    /// indicator values.
    pub fn observation_mapping(&self) -> Option<Mapping> {
        match (&self.mapping, &self.indicator_values) {
            (_, Some(_)) => None,
            (Some(m), None) => Some(m.clone()),
            (None, None) => Some(Mapping::Auto),
        }
    }

    /// The CSV delimiter byte.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
            .as_deref()
            .and_then(|d| d.as_bytes().first().copied())
            .unwrap_or(b',')
    }

    /// Checks every field; errors name the field under `connector`.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errs = Vec::new();
        match reqwest::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
            Ok(u) => errs.push(FieldError::new(
                "url",
                format!(
                    "must be an http:// or https:// URL with a host, not {}:",
                    u.scheme()
                ),
            )),
            Err(e) => errs.push(FieldError::new("url", format!("is not a URL ({e})"))),
        }
        if let Some(i) = self.interval_secs
            && !(MIN_INTERVAL_SECS..=7 * 86_400).contains(&i)
        {
            errs.push(FieldError::new(
                "interval_secs",
                format!("must be between {MIN_INTERVAL_SECS} and 604800 (a week)"),
            ));
        }
        if let Some(t) = self.timeout_secs
            && !(1..=600).contains(&t)
        {
            errs.push(FieldError::new("timeout_secs", "must be between 1 and 600"));
        }
        if let Some(b) = self.max_backoff_secs
            && !(1..=86_400).contains(&b)
        {
            errs.push(FieldError::new(
                "max_backoff_secs",
                "must be between 1 and 86400",
            ));
        }
        for (k, v) in &self.headers {
            if reqwest::header::HeaderName::from_bytes(k.as_bytes()).is_err() {
                errs.push(FieldError::new(
                    format!("headers.{k}"),
                    "is not a valid header name",
                ));
            } else if reqwest::header::HeaderValue::from_str(v).is_err() {
                errs.push(FieldError::new(
                    format!("headers.{k}"),
                    "must be visible ASCII text",
                ));
            }
        }
        if let Some(r) = &self.records {
            if self.format == Some(PollFormat::Csv) {
                errs.push(FieldError::new(
                    "records",
                    "is for JSON; a CSV row is a record",
                ));
            } else if let Err(e) = JsonPath::parse(r) {
                errs.push(FieldError::new("records", e));
            }
        }
        if let Some(d) = &self.delimiter
            && (d.len() != 1 || !d.is_ascii() || d == "\"" || d == "\n")
        {
            errs.push(FieldError::new(
                "delimiter",
                "must be one ASCII character such as , ; or a tab",
            ));
        }
        match (&self.mapping, &self.indicator_values) {
            (Some(_), Some(_)) => errs.push(FieldError::new(
                "indicator_values",
                "give either mapping (observations) or indicator_values, not both",
            )),
            (Some(m), None) => {
                if let Err(e) = m.validate() {
                    errs.extend(e.under("mapping").0);
                }
                if let Mapping::Json(j) = m
                    && j.topic.is_some()
                {
                    errs.push(FieldError::new(
                        "mapping.topic",
                        "has no meaning for a polled source (there is no topic)",
                    ));
                }
            }
            (None, Some(iv)) => {
                for (field, s) in [
                    ("indicator", &iv.indicator),
                    ("period", &iv.period),
                    ("admin_unit", &iv.admin_unit),
                    ("value", &iv.value),
                ] {
                    match Part::parse(s) {
                        Ok(Part::Const(_)) if field == "value" => errs.push(FieldError::new(
                            "indicator_values.value",
                            "must be a JSON path such as $.value",
                        )),
                        Ok(_) => {}
                        Err(e) => {
                            errs.push(FieldError::new(format!("indicator_values.{field}"), e));
                        }
                    }
                }
            }
            (None, None) => {}
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }
}

/// `url` with any password and secret-looking query values hidden.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return url.to_string();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some(REDACTED));
    }
    let secret = u.query_pairs().any(|(k, _)| is_secret_header(&k));
    if secret {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_header(&k) {
                    REDACTED.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

/// A source's connector, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Connector {
    /// An MQTT client.
    Mqtt(MqttConfig),
    /// A polled HTTP(S) endpoint.
    Poll(PollConfig),
}

fn from_doc<T: serde::de::DeserializeOwned>(doc: &Json) -> Result<T, Invalid> {
    serde_path_to_error::deserialize(doc).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." || path.is_empty() {
            "connector".to_string()
        } else {
            format!("connector.{path}")
        };
        Invalid::one(field, e.into_inner().to_string())
    })
}

/// Parses and checks the connector document of a source of `kind`. Errors
/// name fields under `connector` (`connector.topics[0].qos`).
pub fn parse(kind: SourceKind, doc: Option<&Json>) -> Result<Option<Connector>, Invalid> {
    match (kind, doc) {
        (SourceKind::Mqtt, None) => Err(Invalid::one(
            "connector",
            "is required for an mqtt source: broker host and topics",
        )),
        (SourceKind::Mqtt, Some(doc)) => {
            let cfg: MqttConfig = from_doc(doc)?;
            cfg.validate().map_err(|e| e.under("connector"))?;
            Ok(Some(Connector::Mqtt(cfg)))
        }
        (SourceKind::Poll, None) => Err(Invalid::one(
            "connector",
            "is required for a poll source: at least the url",
        )),
        (SourceKind::Poll, Some(doc)) => {
            let cfg: PollConfig = from_doc(doc)?;
            cfg.validate().map_err(|e| e.under("connector"))?;
            Ok(Some(Connector::Poll(cfg)))
        }
        (_, None) => Ok(None),
        (k, Some(_)) => Err(Invalid::one(
            "connector",
            format!(
                "only mqtt and poll sources take a connector, not {} sources",
                k.as_str()
            ),
        )),
    }
}

/// The connector document with its secrets hidden, for showing.
pub fn redact(doc: &Json) -> Json {
    let mut doc = doc.clone();
    if let Some(p) = doc.get_mut("password")
        && !p.is_null()
    {
        *p = Json::String(REDACTED.into());
    }
    if let Some(Json::Object(h)) = doc.get_mut("headers") {
        for (k, v) in h.iter_mut() {
            if is_secret_header(k) && !v.is_null() {
                *v = Json::String(REDACTED.into());
            }
        }
    }
    if let Some(Json::String(u)) = doc.get_mut("url") {
        *u = redact_url(u);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_in_a_poll_connector_are_hidden_when_shown() {
        let doc = json!({
            "url": "https://user:pw@agency.example/api?token=abc&lang=vi",
            "headers": {"Authorization": "Bearer abc", "X-Api-Key": "abc", "Accept-Language": "vi"},
        });
        let shown = redact(&doc);
        assert!(!shown.to_string().contains("abc"), "{shown}");
        assert!(!shown.to_string().contains(":pw@"), "{shown}");
        assert_eq!(shown["headers"]["Accept-Language"], "vi");
        assert!(
            shown["url"].as_str().unwrap().contains("lang=vi"),
            "{shown}"
        );
        let cfg: PollConfig = serde_json::from_value(doc).unwrap();
        let debug = format!("{cfg:?}");
        assert!(!debug.contains("abc") && !debug.contains(":pw@"), "{debug}");
    }

    #[test]
    fn poll_defaults_and_back_off_cap() {
        let cfg: PollConfig = serde_json::from_value(json!({"url": "http://h/x"})).unwrap();
        assert_eq!((cfg.interval_secs(), cfg.timeout_secs()), (300, 30));
        assert_eq!(cfg.max_backoff_secs(), 3000);
        assert_eq!(cfg.observation_mapping(), Some(Mapping::Auto));
        let cfg: PollConfig = serde_json::from_value(
            json!({"url": "http://h/x", "interval_secs": 60, "max_backoff_secs": 10}),
        )
        .unwrap();
        assert_eq!(
            cfg.max_backoff_secs(),
            60,
            "never shorter than the interval"
        );
    }
}
