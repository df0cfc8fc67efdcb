//! Settings of the operations engine: where rule files live, notification
//! channels, the SMTP server, SLA times per severity, escalation levels and
//! attachment limits. One typed struct, meant to sit under `[rules]` in
//! `panorama.toml`; secrets never print in `Debug`.

use crate::dur::Dur;
use panorama_core::Role;
use panorama_store::Severity;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A secret (webhook key, SMTP password): shown as `***` in `Debug`.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_empty() { "\"\"" } else { "***" })
    }
}

/// Everything the operations engine can be told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RulesConfig {
    /// Directory of rule files (`*.toml`, see `rules.example.toml`).
    pub dir: Option<PathBuf>,
    /// How often time-based conditions (silence, quiet zones, SLA timers)
    /// are evaluated against the clock.
    pub tick: Dur,
    /// How often due notification deliveries are attempted.
    pub delivery_poll: Dur,
    /// Notification channels rules and escalation levels refer to by id.
    pub channels: Vec<Channel>,
    /// Channels told of every new incident.
    pub incident_notify: Vec<String>,
    /// The SMTP server e-mail channels send through.
    pub smtp: Option<SmtpConfig>,
    /// Webhook delivery: timeout, attempts and back-off.
    pub webhook: WebhookConfig,
    /// SLA times per severity.
    pub sla: SlaConfig,
    /// Escalation levels, lowest first: a breached SLA moves an incident
    /// up one level and notifies that level's channels.
    pub escalation: Vec<EscalationLevel>,
    /// Limits on incident attachments.
    pub attachments: AttachmentLimits,
    /// Longest history a dry-run may replay, in days.
    pub dry_run_max_days: u32,
}

/// A notification channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Channel {
    /// An HTTP POST of a JSON message signed with HMAC-SHA256.
    Webhook {
        /// Channel id.
        id: String,
        /// Receiver URL (http or https).
        url: String,
        /// Key of the `X-Panorama-Signature` HMAC.
        secret: Secret,
    },
    /// An e-mail through the configured SMTP server.
    Email {
        /// Channel id.
        id: String,
        /// Recipients.
        to: Vec<String>,
    },
    /// In-console notifications for users, by role and by name.
    Console {
        /// Channel id.
        id: String,
        /// Every user with one of these roles.
        #[serde(default)]
        roles: Vec<Role>,
        /// These users.
        #[serde(default)]
        users: Vec<String>,
    },
}

impl Channel {
    /// The channel's id.
    pub fn id(&self) -> &str {
        match self {
            Self::Webhook { id, .. } | Self::Email { id, .. } | Self::Console { id, .. } => id,
        }
    }
}

/// How e-mail reaches the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SmtpTls {
    /// Plain SMTP (a relay on a trusted network only).
    None,
    /// SMTP upgraded with STARTTLS (usually port 587).
    Starttls,
    /// SMTP over TLS from the start (usually port 465).
    Tls,
}

/// The SMTP server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpConfig {
    /// Host name.
    pub host: String,
    /// Port (default 587).
    #[serde(default = "smtp_port")]
    pub port: u16,
    /// Transport security (default `starttls`).
    #[serde(default = "starttls")]
    pub tls: SmtpTls,
    /// User name, when the server needs one.
    #[serde(default)]
    pub username: Option<String>,
    /// Password.
    #[serde(default)]
    pub password: Option<Secret>,
    /// Sender address, e.g. `IOC Bình Dương <ioc@binhduong.gov.vn>`.
    pub from: String,
    /// Longest wait for the server.
    #[serde(default = "ten_seconds")]
    pub timeout: Dur,
}

fn smtp_port() -> u16 {
    587
}

fn starttls() -> SmtpTls {
    SmtpTls::Starttls
}

fn ten_seconds() -> Dur {
    Dur(10)
}

/// Retries of webhook and e-mail deliveries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhookConfig {
    /// Longest wait for the receiver.
    pub timeout: Dur,
    /// Attempts before giving up.
    pub max_attempts: u32,
    /// Wait after the first failure; doubled after each further failure.
    pub backoff: Dur,
    /// Longest wait between attempts.
    pub max_backoff: Dur,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        Self {
            timeout: Dur(10),
            max_attempts: 8,
            backoff: Dur(5),
            max_backoff: Dur(3600),
        }
    }
}

impl WebhookConfig {
    /// The wait after failed attempt number `attempt` (1 for the first).
    pub fn backoff_after(&self, attempt: u32) -> Dur {
        let factor = 1i64
            .checked_shl(attempt.saturating_sub(1).min(40))
            .unwrap_or(i64::MAX);
        Dur(self
            .backoff
            .secs()
            .saturating_mul(factor)
            .min(self.max_backoff.secs()))
    }
}

/// How soon an incident must be taken and resolved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlaTimes {
    /// From creation (or reopening) to `in_progress`.
    pub respond: Dur,
    /// From creation (or reopening) to `resolved`.
    pub resolve: Dur,
}

/// SLA times per severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SlaConfig {
    /// Low.
    pub low: SlaTimes,
    /// Medium.
    pub medium: SlaTimes,
    /// High.
    pub high: SlaTimes,
    /// Critical.
    pub critical: SlaTimes,
}

impl Default for SlaConfig {
    fn default() -> Self {
        let t = |respond: i64, resolve: i64| SlaTimes {
            respond: Dur::minutes(respond),
            resolve: Dur::minutes(resolve),
        };
        Self {
            low: t(8 * 60, 72 * 60),
            medium: t(2 * 60, 24 * 60),
            high: t(30, 8 * 60),
            critical: t(15, 4 * 60),
        }
    }
}

impl SlaConfig {
    /// The times of a severity.
    pub fn of(&self, s: Severity) -> SlaTimes {
        match s {
            Severity::Low => self.low,
            Severity::Medium => self.medium,
            Severity::High => self.high,
            Severity::Critical => self.critical,
        }
    }
}

/// One rung of the escalation ladder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationLevel {
    /// Who this level is, e.g. `Lãnh đạo Sở`.
    pub name: String,
    /// Channels to notify when an incident reaches this level.
    pub notify: Vec<String>,
}

/// Limits on incident attachments.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttachmentLimits {
    /// Largest file, in bytes.
    pub max_bytes: u64,
    /// Media types accepted.
    pub types: Vec<String>,
}

impl Default for AttachmentLimits {
    fn default() -> Self {
        Self {
            max_bytes: 10 * 1024 * 1024,
            types: [
                "image/jpeg",
                "image/png",
                "image/webp",
                "application/pdf",
                "text/plain",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "application/vnd.oasis.opendocument.text",
            ]
            .into_iter()
            .map(String::from)
            .collect(),
        }
    }
}

/// The built-in console channel: duty operators and administrators.
pub const CONSOLE: &str = "console";
/// The built-in console channel for leaders.
pub const LEADERS: &str = "leaders";

impl Default for RulesConfig {
    fn default() -> Self {
        Self {
            dir: None,
            tick: Dur(5),
            delivery_poll: Dur(1),
            channels: Vec::new(),
            incident_notify: vec![CONSOLE.into()],
            smtp: None,
            webhook: WebhookConfig::default(),
            sla: SlaConfig::default(),
            escalation: vec![
                EscalationLevel {
                    name: "Trưởng ca trực".into(),
                    notify: vec![CONSOLE.into()],
                },
                EscalationLevel {
                    name: "Lãnh đạo Sở, ngành".into(),
                    notify: vec![CONSOLE.into(), LEADERS.into()],
                },
                EscalationLevel {
                    name: "Lãnh đạo UBND tỉnh".into(),
                    notify: vec![LEADERS.into()],
                },
            ],
            attachments: AttachmentLimits::default(),
            dry_run_max_days: 31,
        }
    }
}

impl RulesConfig {
    /// A channel by id; `console` and `leaders` exist unless redefined.
    pub fn channel(&self, id: &str) -> Option<Channel> {
        if let Some(c) = self.channels.iter().find(|c| c.id() == id) {
            return Some(c.clone());
        }
        match id {
            CONSOLE => Some(Channel::Console {
                id: CONSOLE.into(),
                roles: vec![Role::Operator, Role::Admin],
                users: Vec::new(),
            }),
            LEADERS => Some(Channel::Console {
                id: LEADERS.into(),
                roles: vec![Role::Leader],
                users: Vec::new(),
            }),
            _ => None,
        }
    }

    /// Checks channel references, URLs and limits; names the offending key.
    pub fn validate(&self) -> Result<(), panorama_core::Invalid> {
        use panorama_core::FieldError;
        let mut errs = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for (i, c) in self.channels.iter().enumerate() {
            if !ids.insert(c.id()) {
                errs.push(FieldError::new(
                    format!("channels[{i}].id"),
                    format!("channel '{}' is defined twice", c.id()),
                ));
            }
            errs.extend(
                panorama_core::error::check_code(&format!("channels[{i}].id"), c.id()).err(),
            );
            match c {
                Channel::Webhook { url, secret, .. } => {
                    if reqwest::Url::parse(url)
                        .map(|u| !matches!(u.scheme(), "http" | "https"))
                        .unwrap_or(true)
                    {
                        errs.push(FieldError::new(
                            format!("channels[{i}].url"),
                            "must be an http:// or https:// URL",
                        ));
                    }
                    if secret.0.len() < 16 {
                        errs.push(FieldError::new(
                            format!("channels[{i}].secret"),
                            "must be at least 16 characters",
                        ));
                    }
                }
                Channel::Email { to, .. } => {
                    if self.smtp.is_none() {
                        errs.push(FieldError::new(
                            format!("channels[{i}]"),
                            "an e-mail channel needs [rules.smtp]",
                        ));
                    }
                    if to.is_empty() || to.iter().any(|a| a.parse::<lettre::Address>().is_err()) {
                        errs.push(FieldError::new(
                            format!("channels[{i}].to"),
                            "must list valid e-mail addresses",
                        ));
                    }
                }
                Channel::Console { .. } => {}
            }
        }
        let known = |id: &str| self.channel(id).is_some();
        for (i, c) in self.incident_notify.iter().enumerate() {
            if !known(c) {
                errs.push(FieldError::new(
                    format!("incident_notify[{i}]"),
                    format!("unknown channel '{c}'"),
                ));
            }
        }
        for (i, l) in self.escalation.iter().enumerate() {
            for (j, c) in l.notify.iter().enumerate() {
                if !known(c) {
                    errs.push(FieldError::new(
                        format!("escalation[{i}].notify[{j}]"),
                        format!("unknown channel '{c}'"),
                    ));
                }
            }
        }
        if let Some(s) = &self.smtp
            && s.from.parse::<lettre::message::Mailbox>().is_err()
        {
            errs.push(FieldError::new(
                "smtp.from",
                "must be an address such as IOC <ioc@example.org>",
            ));
        }
        if self.webhook.max_attempts == 0 {
            errs.push(FieldError::new(
                "webhook.max_attempts",
                "must be at least 1",
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(panorama_core::Invalid(errs))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_round_trip_through_toml() {
        let text = toml::to_string_pretty(&RulesConfig::default()).unwrap();
        let back: RulesConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, RulesConfig::default(), "{text}");
        RulesConfig::default().validate().unwrap();
    }

    #[test]
    fn back_off_doubles_up_to_the_cap() {
        let w = WebhookConfig::default();
        let waits: Vec<i64> = (1..=12).map(|a| w.backoff_after(a).secs()).collect();
        assert_eq!(
            waits,
            [5, 10, 20, 40, 80, 160, 320, 640, 1280, 2560, 3600, 3600]
        );
    }

    #[test]
    fn secrets_do_not_print() {
        let c = Channel::Webhook {
            id: "w".into(),
            url: "https://example.org/hook".into(),
            secret: Secret("super-secret-value".into()),
        };
        assert!(!format!("{c:?}").contains("super-secret"));
    }

    #[test]
    fn configs_parse_from_toml_and_name_bad_keys() {
        let text = r#"
tick = "2s"
incident_notify = ["console", "duty-hook"]

[[channels]]
kind = "webhook"
id = "duty-hook"
url = "https://ops.example.org/panorama"
secret = "0123456789abcdef0123"

[[channels]]
kind = "console"
id = "water-team"
roles = ["operator"]
users = ["lan"]

[sla.critical]
respond = "10m"
resolve = "2h"
"#;
        let c: RulesConfig = toml::from_str(text).unwrap();
        c.validate().unwrap();
        assert_eq!(c.sla.critical.respond, Dur(600));
        assert_eq!(c.sla.high, SlaConfig::default().high);
        assert!(c.channel("water-team").is_some());
        assert!(c.channel(CONSOLE).is_some());
        let bad = RulesConfig {
            incident_notify: vec!["nope".into()],
            channels: vec![Channel::Webhook {
                id: "w".into(),
                url: "ftp://x".into(),
                secret: Secret("short".into()),
            }],
            ..RulesConfig::default()
        };
        let fields: Vec<String> = bad
            .validate()
            .unwrap_err()
            .0
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "channels[0].url",
                "channels[0].secret",
                "incident_notify[0]"
            ]
        );
    }
}
