//! The `connector` document of a source: what Panorama needs to connect to
//! it. Checked when the source is created, with errors that name the field
//! (`connector.topics[0].qos`).

use crate::mapping::{Mapping, check_topic_filter};
use panorama_core::{FieldError, Invalid, SourceKind};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;

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

/// A source's connector, parsed.
#[derive(Debug, Clone, PartialEq)]
pub enum Connector {
    /// An MQTT client.
    Mqtt(MqttConfig),
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
            let cfg: MqttConfig = serde_path_to_error::deserialize(doc).map_err(|e| {
                let path = e.path().to_string();
                let field = if path == "." || path.is_empty() {
                    "connector".to_string()
                } else {
                    format!("connector.{path}")
                };
                Invalid::one(field, e.into_inner().to_string())
            })?;
            cfg.validate().map_err(|e| e.under("connector"))?;
            Ok(Some(Connector::Mqtt(cfg)))
        }
        (_, None) => Ok(None),
        (k, Some(_)) => Err(Invalid::one(
            "connector",
            format!(
                "only mqtt sources take a connector, not {} sources",
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
    doc
}
