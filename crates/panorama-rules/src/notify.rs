//! Notifications: in-console (stored per user at once), webhook (an HTTP
//! POST signed with HMAC-SHA256) and e-mail (through the configured SMTP
//! server). Webhooks and e-mails go through a durable queue in the store
//! and are retried with exponential back-off; every attempt is logged.
//!
//! A webhook receiver checks `X-Panorama-Signature: sha256=<hex>`, the
//! HMAC-SHA256 with the channel's secret of `<X-Panorama-Timestamp>.<body>`
//! (see [`signature`]), and should refuse old timestamps.

use crate::config::{Channel, SmtpConfig, SmtpTls};
use crate::error::OpsResult;
use crate::service::Ops;
use hmac::{Hmac, Mac};
use panorama_store::{
    Alert, Delivery, DeliveryAttempt, DeliveryOutcome, Incident, NewDelivery, NewNotification,
    Severity,
};
use serde::Serialize;
use sha2::Sha256;
use std::time::Instant;

/// What a notification says.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Message {
    /// What happened, e.g. `alert.opened`.
    pub event: &'static str,
    /// One line.
    pub title: String,
    /// More words.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// API path of the subject.
    pub link: String,
    /// Severity of the subject.
    pub severity: Severity,
    /// The subject itself.
    pub data: serde_json::Value,
}

impl Message {
    /// About an alert.
    pub fn alert(event: &'static str, a: &Alert) -> Self {
        Self {
            event,
            title: a.title.clone(),
            body: a.resolution.clone(),
            link: format!("/api/v1/alerts/{}", a.id),
            severity: a.severity,
            data: serde_json::json!({ "alert": a }),
        }
    }

    /// About an incident.
    pub fn incident(event: &'static str, i: &Incident, body: Option<String>) -> Self {
        Self {
            event,
            title: format!("#{} {}", i.id, i.title),
            body,
            link: format!("/api/v1/incidents/{}", i.id),
            severity: i.severity,
            data: serde_json::json!({ "incident": i }),
        }
    }
}

type HmacSha256 = Hmac<Sha256>;

/// The signature of a webhook body: hex HMAC-SHA256 of `<timestamp>.<body>`.
pub fn signature(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return String::new();
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    hex(&mac.finalize().into_bytes())
}

/// Checks a webhook signature header value (`sha256=<hex>`) in constant time.
pub fn verify(secret: &[u8], timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(hex_sig) = header.strip_prefix("sha256=") else {
        return false;
    };
    let Some(given) = unhex(hex_sig) else {
        return false;
    };
    let Ok(mut mac) = HmacSha256::new_from_slice(secret) else {
        return false;
    };
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Why an attempt failed, and the receiver's code if it answered.
struct Failure {
    code: Option<u16>,
    error: String,
}

impl Ops {
    /// Notifies `channels` (unknown ones are logged and skipped): console
    /// notifications are stored at once, webhooks and e-mails queued.
    pub(crate) async fn notify(&self, channels: &[String], msg: Message) {
        if let Err(e) = self.try_notify(channels, &msg).await {
            tracing::warn!(error = %e, event = msg.event, "could not queue notifications");
        }
    }

    async fn try_notify(&self, channels: &[String], msg: &Message) -> OpsResult<()> {
        let now = self.now();
        let mut console: Vec<NewNotification> = Vec::new();
        let mut queued: Vec<NewDelivery> = Vec::new();
        let mut users = None;
        let payload = serde_json::to_value(msg).unwrap_or_default();
        let mut done = std::collections::HashSet::new();
        for id in channels {
            if !done.insert(id.as_str()) {
                continue;
            }
            let Some(ch) = self.inner.config.channel(id) else {
                tracing::warn!(channel = %id, "notification to an unknown channel skipped");
                continue;
            };
            match ch {
                Channel::Console {
                    roles,
                    users: names,
                    ..
                } => {
                    if users.is_none() {
                        users = Some(self.inner.store.users().await?);
                    }
                    for u in users.iter().flatten() {
                        if (roles.contains(&u.role) || names.contains(&u.username))
                            && !console.iter().any(|n| n.user == u.username)
                        {
                            console.push(NewNotification {
                                user: u.username.clone(),
                                at: now,
                                event: msg.event.into(),
                                title: msg.title.clone(),
                                body: msg.body.clone(),
                                link: Some(msg.link.clone()),
                                severity: Some(msg.severity),
                            });
                        }
                    }
                }
                Channel::Webhook { id, url, .. } => queued.push(NewDelivery {
                    channel: id,
                    kind: "webhook".into(),
                    target: url,
                    event: msg.event.into(),
                    payload: payload.clone(),
                    at: now,
                }),
                Channel::Email { id, to, .. } => queued.push(NewDelivery {
                    channel: id,
                    kind: "email".into(),
                    target: to.join(", "),
                    event: msg.event.into(),
                    payload: payload.clone(),
                    at: now,
                }),
            }
        }
        if !console.is_empty() {
            self.inner.ops.add_notifications(&console).await?;
        }
        if !queued.is_empty() {
            self.inner.ops.enqueue_deliveries(&queued).await?;
            self.inner.wake.notify_one();
        }
        Ok(())
    }

    /// Runs due deliveries every `delivery_poll`, and at once when woken.
    pub(crate) async fn delivery_worker(self) {
        let poll = std::time::Duration::from_millis(
            self.inner
                .config
                .delivery_poll
                .millis()
                .max(10)
                .unsigned_abs(),
        );
        loop {
            tokio::select! {
                _ = tokio::time::sleep(poll) => {}
                _ = self.inner.wake.notified() => {}
            }
            if let Err(e) = self.deliver_due().await {
                tracing::warn!(error = %e, "delivering notifications failed");
            }
        }
    }

    /// Attempts every delivery due now; returns how many were attempted.
    pub async fn deliver_due(&self) -> OpsResult<usize> {
        let _one_pass = self.inner.delivering.lock().await;
        let due = self.inner.ops.due_deliveries(self.now(), 100).await?;
        let n = due.len();
        for d in due {
            self.attempt(d).await?;
        }
        Ok(n)
    }

    async fn attempt(&self, d: Delivery) -> OpsResult<()> {
        let at = self.now();
        let started = Instant::now();
        let result = match self.inner.config.channel(&d.channel) {
            Some(Channel::Webhook { url, secret, .. }) => {
                self.send_webhook(&d, &url, secret.0.as_bytes()).await
            }
            Some(Channel::Email { to, .. }) => match &self.inner.config.smtp {
                Some(smtp) => send_email(smtp, &to, &d).await,
                None => Err(Failure {
                    code: None,
                    error: "no SMTP server is configured".into(),
                }),
            },
            _ => Err(Failure {
                code: None,
                error: format!("channel '{}' is no longer configured", d.channel),
            }),
        };
        let attempt = d.attempts + 1;
        let wc = &self.inner.config.webhook;
        let (ok, code, error, outcome) = match result {
            Ok(code) => (true, code, None, DeliveryOutcome::Delivered),
            Err(f) => {
                let outcome = if attempt >= wc.max_attempts {
                    DeliveryOutcome::Failed
                } else {
                    DeliveryOutcome::Retry(at + wc.backoff_after(attempt).chrono())
                };
                (false, f.code, Some(f.error), outcome)
            }
        };
        metrics::counter!("panorama_notifications_attempts_total", "kind" => d.kind.clone(), "ok" => ok.to_string())
            .increment(1);
        if let Some(e) = &error {
            tracing::info!(delivery = d.id, channel = %d.channel, attempt, error = %e, "notification attempt failed");
        }
        self.inner
            .ops
            .record_attempt(
                &DeliveryAttempt {
                    delivery: d.id,
                    attempt,
                    at,
                    ok,
                    code,
                    error,
                    duration_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
                },
                outcome,
            )
            .await?;
        Ok(())
    }

    async fn send_webhook(
        &self,
        d: &Delivery,
        url: &str,
        secret: &[u8],
    ) -> Result<Option<u16>, Failure> {
        let body = serde_json::to_vec(&d.payload).map_err(|e| Failure {
            code: None,
            error: e.to_string(),
        })?;
        let ts = self.now().timestamp();
        let sig = signature(secret, ts, &body);
        let r = self
            .inner
            .http
            .post(url)
            .header("content-type", "application/json")
            .header(
                "user-agent",
                concat!("Panorama/", env!("CARGO_PKG_VERSION")),
            )
            .header("x-panorama-event", &d.event)
            .header("x-panorama-delivery", d.id.to_string())
            .header("x-panorama-timestamp", ts.to_string())
            .header("x-panorama-signature", format!("sha256={sig}"))
            .body(body)
            .send()
            .await
            .map_err(|e| Failure {
                code: None,
                error: format!("request failed: {e}"),
            })?;
        let status = r.status();
        if status.is_success() {
            Ok(Some(status.as_u16()))
        } else {
            Err(Failure {
                code: Some(status.as_u16()),
                error: format!("the receiver answered HTTP {status}"),
            })
        }
    }
}

async fn send_email(
    smtp: &SmtpConfig,
    to: &[String],
    d: &Delivery,
) -> Result<Option<u16>, Failure> {
    use lettre::{AsyncSmtpTransport, AsyncTransport, Message as Mail, Tokio1Executor};
    let fail = |error: String| Failure { code: None, error };
    let from: lettre::message::Mailbox = smtp
        .from
        .parse()
        .map_err(|e| fail(format!("bad sender address: {e}")))?;
    let mut b = Mail::builder().from(from);
    for addr in to {
        b = b.to(addr
            .parse()
            .map_err(|e| fail(format!("bad recipient {addr}: {e}")))?);
    }
    let p = &d.payload;
    let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("");
    let severity = s("severity");
    let subject = format!("[Panorama] [{severity}] {}", s("title"));
    let mut text = format!("{}\n\n", s("title"));
    if !s("body").is_empty() {
        text.push_str(s("body"));
        text.push_str("\n\n");
    }
    text.push_str(&format!(
        "Event: {}\nSeverity: {severity}\nLink: {}\n",
        d.event,
        s("link")
    ));
    let mail = b
        .subject(subject)
        .header(lettre::message::header::ContentType::TEXT_PLAIN)
        .body(text)
        .map_err(|e| fail(format!("cannot build the message: {e}")))?;
    let builder = match smtp.tls {
        SmtpTls::None => {
            AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(smtp.host.as_str())
        }
        SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&smtp.host)
            .map_err(|e| fail(format!("SMTP setup: {e}")))?,
        SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&smtp.host)
            .map_err(|e| fail(format!("SMTP setup: {e}")))?,
    };
    let mut builder = builder
        .port(smtp.port)
        .timeout(Some(std::time::Duration::from_secs(
            smtp.timeout.secs().max(1).unsigned_abs(),
        )));
    if let (Some(u), Some(pw)) = (&smtp.username, &smtp.password) {
        builder = builder.credentials(lettre::transport::smtp::authentication::Credentials::new(
            u.clone(),
            pw.0.clone(),
        ));
    }
    let transport = builder.build();
    match transport.send(mail).await {
        Ok(resp) => Ok(resp.code().to_string().parse().ok()),
        Err(e) => Err(Failure {
            code: e.status().and_then(|c| c.to_string().parse().ok()),
            error: format!("SMTP: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_verify_and_detect_tampering() {
        let body = br#"{"event":"alert.opened"}"#;
        let sig = signature(b"0123456789abcdef", 1_714_521_600, body);
        assert_eq!(sig.len(), 64);
        let header = format!("sha256={sig}");
        assert!(verify(b"0123456789abcdef", 1_714_521_600, body, &header));
        assert!(!verify(b"0123456789abcdef", 1_714_521_601, body, &header));
        assert!(!verify(b"another-secret-key", 1_714_521_600, body, &header));
        assert!(!verify(b"0123456789abcdef", 1_714_521_600, b"{}", &header));
        assert!(!verify(b"0123456789abcdef", 1_714_521_600, body, &sig));
    }

    #[test]
    fn hmac_matches_the_rfc_4231_vector() {
        // RFC 4231 test case 2, with our "<timestamp>." prefix folded into the data.
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
