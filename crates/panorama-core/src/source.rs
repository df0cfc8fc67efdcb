//! Sources (feeds): where data comes from, who owns it, and how often it must
//! report. A late feed is itself something to alert on.

use crate::Timestamp;
use crate::error::{FieldError, Invalid, check_code, check_name};
use serde::{Deserialize, Serialize};

/// How a source delivers data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// Pushes over the HTTP ingest API.
    HttpPush,
    /// Publishes to an MQTT broker.
    Mqtt,
    /// An NGSI-LD broker or client.
    NgsiLd,
    /// A URL Panorama polls.
    Poll,
    /// Uploaded files.
    File,
}

impl SourceKind {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HttpPush => "http_push",
            Self::Mqtt => "mqtt",
            Self::NgsiLd => "ngsi_ld",
            Self::Poll => "poll",
            Self::File => "file",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "http_push" => Self::HttpPush,
            "mqtt" => Self::Mqtt,
            "ngsi_ld" => Self::NgsiLd,
            "poll" => Self::Poll,
            "file" => Self::File,
            _ => return None,
        })
    }
}

/// A data source and its freshness contract.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Source {
    /// Stable code, e.g. `aq-network`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// How it delivers.
    pub kind: SourceKind,
    /// Owning agency code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner_agency: Option<String>,
    /// Domain code the source mainly feeds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Freshness contract: the source must report at least this often.
    pub expected_interval_secs: u64,
    /// When the source was registered.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When the source last delivered accepted data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Items accepted from this source since it was registered.
    #[serde(default)]
    pub accepted: u64,
    /// Items refused from this source since it was registered.
    #[serde(default)]
    pub rejected: u64,
    /// The last reason an item from this source was refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
    /// How Panorama connects to a source it pulls from (for `mqtt`: broker,
    /// topics, credentials, mapping); checked by `panorama-connect`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub connector: Option<serde_json::Value>,
}

impl Source {
    /// Checks id, name and contract.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errs = Vec::new();
        errs.extend(check_code("id", &self.id).err());
        errs.extend(check_name("name", &self.name).err());
        if let Some(a) = &self.owner_agency {
            errs.extend(check_code("owner_agency", a).err());
        }
        if let Some(d) = &self.domain {
            errs.extend(check_code("domain", d).err());
        }
        if self.expected_interval_secs == 0 || self.expected_interval_secs > 366 * 86_400 {
            errs.push(FieldError::new(
                "expected_interval_secs",
                "must be between 1 second and 366 days",
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }

    /// Whether the source honours its contract at `now`.
    pub fn freshness(&self, now: Timestamp) -> Freshness {
        let age = self.last_seen_at.map(|t| (now - t).num_seconds().max(0));
        let limit = i64::try_from(self.expected_interval_secs).unwrap_or(i64::MAX);
        let late = match age {
            Some(a) => a > limit,
            // A source that never reported is late once a full interval has
            // passed since it was registered.
            None => (now - self.created_at).num_seconds() > limit,
        };
        Freshness {
            source: self.id.clone(),
            last_seen_at: self.last_seen_at,
            age_secs: age,
            expected_interval_secs: self.expected_interval_secs,
            late,
        }
    }
}

/// A source's freshness at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Freshness {
    /// Source id.
    pub source: String,
    /// Last accepted delivery.
    pub last_seen_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Seconds since the last delivery.
    pub age_secs: Option<i64>,
    /// The contract.
    pub expected_interval_secs: u64,
    /// Whether the source is past its contract.
    pub late: bool,
}
