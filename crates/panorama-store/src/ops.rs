//! The operations contract: rules, alerts, incidents with their timeline,
//! checklist and attachments, SOP templates, notification deliveries and
//! in-console notifications. A second trait beside [`crate::Store`], so a
//! backend can grow it independently; `ops_testsuite` holds the behaviour
//! every backend must show.
//!
//! The store keeps records and enforces what must hold under concurrency
//! (one unresolved alert per rule and key, allowed alert steps, incident
//! versions); the workflow itself (which incident transitions are allowed,
//! SLA deadlines, escalation) lives in `panorama-rules`.

use crate::StoreResult;
use async_trait::async_trait;
use panorama_core::{Page, Timestamp};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// How urgent an alert or incident is, from least to most.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Worth knowing.
    Low,
    /// Needs attention this shift.
    Medium,
    /// Needs action now.
    High,
    /// Lives or property at risk.
    Critical,
}

impl Severity {
    /// Every severity, least urgent first.
    pub const ALL: [Severity; 4] = [Self::Low, Self::Medium, Self::High, Self::Critical];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Critical => "critical",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "low" => Self::Low,
            "medium" => Self::Medium,
            "high" => Self::High,
            "critical" => Self::Critical,
            _ => return None,
        })
    }

    /// A number that sorts like the severity (1 = low … 4 = critical).
    pub fn rank(self) -> i64 {
        match self {
            Self::Low => 1,
            Self::Medium => 2,
            Self::High => 3,
            Self::Critical => 4,
        }
    }

    /// The severity of a rank.
    pub fn from_rank(r: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.rank() == r)
    }
}

// --- rules ------------------------------------------------------------------

/// A stored rule. The store keeps the definition as a document; its meaning
/// (kinds, conditions, scopes) belongs to `panorama-rules`, which validates
/// it before storing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct RuleRecord {
    /// Stable code, e.g. `river-level-high`.
    pub id: String,
    /// The rule document.
    #[schema(value_type = Object)]
    pub definition: serde_json::Value,
    /// Whether the rule is evaluated.
    pub enabled: bool,
    /// `api`, or `file:<name>` for rules loaded from a rules file.
    pub origin: String,
    /// 1 when created, then +1 per change (set by the store).
    pub version: i64,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// Who changed it last (`user:<name>`, `file:<name>`).
    pub updated_by: String,
}

// --- alerts -----------------------------------------------------------------

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    /// The condition fired and nobody has taken it yet.
    Open,
    /// An operator has seen it.
    Acknowledged,
    /// Over: the condition cleared, or someone resolved it by hand.
    Resolved,
}

impl AlertStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            _ => return None,
        })
    }
}

/// What fired: everything the store needs to open (or repeat) an alert.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// Rule id.
    pub rule: String,
    /// What the alert is about within the rule (a series, a source, an
    /// area…); at most one unresolved alert exists per rule and key.
    pub key: String,
    /// Severity.
    pub severity: Severity,
    /// One line for the feed.
    pub title: String,
    /// Domain code.
    pub domain: Option<String>,
    /// Admin unit code.
    pub admin_unit: Option<String>,
    /// Entity id.
    pub entity: Option<String>,
    /// Entity type.
    pub entity_type: Option<String>,
    /// Attribute name.
    pub attribute: Option<String>,
    /// Source id.
    pub source: Option<String>,
    /// Indicator code.
    pub indicator: Option<String>,
    /// Point (longitude, latitude).
    pub location: Option<[f64; 2]>,
    /// The value that fired it.
    pub value: Option<f64>,
    /// The data that fired it (values, bounds, window, chart link).
    pub data: serde_json::Value,
    /// When the condition was met (time of the data).
    pub fired_at: chrono::DateTime<chrono::Utc>,
    /// When the engine saw it (processing time).
    pub at: chrono::DateTime<chrono::Utc>,
}

/// An alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Alert {
    /// Id, assigned by the store.
    pub id: i64,
    /// Rule id.
    pub rule: String,
    /// What the alert is about within the rule.
    pub key: String,
    /// Severity.
    pub severity: Severity,
    /// Lifecycle status.
    pub status: AlertStatus,
    /// One line for the feed.
    pub title: String,
    /// Domain code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Admin unit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_unit: Option<String>,
    /// Entity id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Entity type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// Attribute name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Source id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Indicator code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indicator: Option<String>,
    /// Point as [longitude, latitude].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<[f64; 2]>,
    /// The value that fired it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// The latest value seen while the condition lasted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_value: Option<f64>,
    /// The data that fired it (values, bounds, window, `chart` link).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// When the condition was met (time of the data).
    pub fired_at: chrono::DateTime<chrono::Utc>,
    /// When the alert was opened.
    pub opened_at: chrono::DateTime<chrono::Utc>,
    /// When the condition was last seen holding.
    pub last_seen_at: chrono::DateTime<chrono::Utc>,
    /// How many times the condition fired while this alert was unresolved.
    pub occurrences: u64,
    /// When it was acknowledged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Who acknowledged it (`user:<name>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged_by: Option<String>,
    /// When it was resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Who resolved it (`user:<name>`, or `rule:<id>` when the condition cleared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_by: Option<String>,
    /// The comment given when resolving.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolution: Option<String>,
    /// Incident the alert is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<i64>,
}

/// A step in an alert's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertAction {
    /// The rule fired.
    Opened,
    /// Taken by an operator (open → acknowledged).
    Acknowledged,
    /// Over (open or acknowledged → resolved).
    Resolved,
    /// A remark, in any status.
    Commented,
    /// Linked to an incident.
    Linked,
}

impl AlertAction {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Opened => "opened",
            Self::Acknowledged => "acknowledged",
            Self::Resolved => "resolved",
            Self::Commented => "commented",
            Self::Linked => "linked",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "opened" => Self::Opened,
            "acknowledged" => Self::Acknowledged,
            "resolved" => Self::Resolved,
            "commented" => Self::Commented,
            "linked" => Self::Linked,
            _ => return None,
        })
    }
}

/// Who did what to an alert, and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AlertStep {
    /// Alert id.
    pub alert: i64,
    /// What happened.
    pub action: AlertAction,
    /// Who (`user:<name>`, `rule:<id>`, `system`).
    pub by: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// The comment given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
}

/// Filter for alert listings, newest first. Every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    /// Only these statuses (any of); all when empty.
    pub status: Vec<AlertStatus>,
    /// Only at least this severe.
    pub min_severity: Option<Severity>,
    /// Only of this rule.
    pub rule: Option<String>,
    /// Only of this domain.
    pub domain: Option<String>,
    /// Only in these admin units (any of; the caller expands descendants).
    pub admin_units: Vec<String>,
    /// Only about this entity.
    pub entity: Option<String>,
    /// Only opened at or after.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Start after this cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: usize,
}

// --- incidents --------------------------------------------------------------

/// Where an incident is in its workflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IncidentStatus {
    /// Reported, nobody assigned.
    New,
    /// An agency (and maybe a person) is assigned.
    Assigned,
    /// Being handled.
    InProgress,
    /// Handled; awaiting confirmation.
    Resolved,
    /// Confirmed over.
    Closed,
    /// Opened again after being resolved or closed.
    Reopened,
}

impl IncidentStatus {
    /// Every status, in workflow order.
    pub const ALL: [IncidentStatus; 6] = [
        Self::New,
        Self::Assigned,
        Self::InProgress,
        Self::Resolved,
        Self::Closed,
        Self::Reopened,
    ];

    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "new",
            Self::Assigned => "assigned",
            Self::InProgress => "in_progress",
            Self::Resolved => "resolved",
            Self::Closed => "closed",
            Self::Reopened => "reopened",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Whether the incident still needs handling.
    pub fn is_active(self) -> bool {
        !matches!(self, Self::Resolved | Self::Closed)
    }
}

/// One step of an incident's SOP checklist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChecklistItem {
    /// What to do, e.g. `Cảnh báo người dân`.
    pub step: String,
    /// Whether it is done.
    pub done: bool,
    /// Who ticked it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_by: Option<String>,
    /// When it was ticked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An incident: a case to handle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Incident {
    /// Id, assigned by the store.
    pub id: i64,
    /// One line, e.g. `Ngập sâu đường Yersin`.
    pub title: String,
    /// Incident type code (`flood`, `air-pollution`, `traffic-jam`…); picks the SOP template.
    #[serde(rename = "type")]
    pub incident_type: String,
    /// Severity; picks the SLA.
    pub severity: Severity,
    /// Workflow status.
    pub status: IncidentStatus,
    /// What is known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Domain code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Admin unit code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_unit: Option<String>,
    /// Point as [longitude, latitude].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<[f64; 2]>,
    /// Assigned agency code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Assigned person (username).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
    /// Where it came from: `alert`, `manual`, `citizen_report`, `camera`…
    pub origin: String,
    /// The originating record (alert id, report id…).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin_ref: Option<String>,
    /// When it was created.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// Who created it (`user:<name>`, `rule:<id>`).
    pub created_by: String,
    /// When it last changed.
    pub updated_at: chrono::DateTime<chrono::Utc>,
    /// SLA: handling must start by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub respond_by: Option<chrono::DateTime<chrono::Utc>>,
    /// SLA: it must be resolved by then.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolve_by: Option<chrono::DateTime<chrono::Utc>>,
    /// When handling started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was (last) resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was closed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_at: Option<chrono::DateTime<chrono::Utc>>,
    /// 0, then 1, 2… each time an SLA was breached and the case went up a level.
    pub escalation_level: u32,
    /// When the next SLA check is due (none once resolved).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_check_at: Option<chrono::DateTime<chrono::Utc>>,
    /// SOP checklist.
    pub checklist: Vec<ChecklistItem>,
    /// Linked alert ids.
    pub alerts: Vec<i64>,
    /// Optimistic concurrency: 1 when created, +1 per change (set by the store).
    pub version: i64,
}

/// An entry of an incident's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    /// Id, assigned by the store.
    pub id: i64,
    /// Incident id.
    pub incident: i64,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who (`user:<name>`, `rule:<id>`, `system`).
    pub by: String,
    /// What kind of entry: `created`, `status`, `assigned`, `comment`,
    /// `checklist`, `alert_linked`, `attachment`, `escalated`, `updated`.
    pub kind: String,
    /// Words for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Details (old and new values…).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// A timeline entry to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewTimelineEntry {
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Who.
    pub by: String,
    /// Kind of entry.
    pub kind: String,
    /// Words for people.
    pub text: Option<String>,
    /// Details.
    pub data: serde_json::Value,
}

/// Filter for incident listings, newest first. Every given criterion must hold.
#[derive(Debug, Clone, Default)]
pub struct IncidentQuery {
    /// Only these statuses (any of); all when empty.
    pub status: Vec<IncidentStatus>,
    /// Only at least this severe.
    pub min_severity: Option<Severity>,
    /// Only of this type.
    pub incident_type: Option<String>,
    /// Only assigned to this agency.
    pub agency: Option<String>,
    /// Only assigned to this person.
    pub assignee: Option<String>,
    /// Only of this domain.
    pub domain: Option<String>,
    /// Only in these admin units (any of; the caller expands descendants).
    pub admin_units: Vec<String>,
    /// Start after this cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: usize,
}

/// Metadata of a file attached to an incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Attachment {
    /// Id, assigned by the store.
    pub id: i64,
    /// Incident id.
    pub incident: i64,
    /// File name as uploaded.
    pub filename: String,
    /// Media type, e.g. `image/jpeg`.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Who uploaded it.
    pub uploaded_by: String,
    /// When.
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
}

/// A file to attach.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttachment {
    /// File name.
    pub filename: String,
    /// Media type.
    pub content_type: String,
    /// SHA-256 of the content, hex.
    pub sha256: String,
    /// Who.
    pub uploaded_by: String,
    /// When.
    pub uploaded_at: chrono::DateTime<chrono::Utc>,
}

/// The SOP (standard operating procedure) of an incident type: the
/// checklist every new incident of that type starts with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct SopTemplate {
    /// Incident type code, e.g. `flood`.
    pub incident_type: String,
    /// Name, e.g. `Quy trình ứng phó ngập lụt`.
    pub name: String,
    /// Steps in order.
    pub steps: Vec<String>,
}

// --- notifications ----------------------------------------------------------

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its (next) attempt.
    Pending,
    /// Accepted by the receiver.
    Delivered,
    /// Given up after the last attempt.
    Failed,
}

impl DeliveryStatus {
    /// The snake_case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Failed => "failed",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "pending" => Self::Pending,
            "delivered" => Self::Delivered,
            "failed" => Self::Failed,
            _ => return None,
        })
    }
}

/// A notification to deliver through a channel.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    /// Channel id (from the configuration).
    pub channel: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// Where it goes (URL, addresses), for the log.
    pub target: String,
    /// What happened, e.g. `alert.opened`, `incident.escalated`.
    pub event: String,
    /// The message.
    pub payload: serde_json::Value,
    /// When it was queued (first attempt due then).
    pub at: chrono::DateTime<chrono::Utc>,
}

/// A queued or finished delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Delivery {
    /// Id, assigned by the store.
    pub id: i64,
    /// Channel id.
    pub channel: String,
    /// `webhook` or `email`.
    pub kind: String,
    /// Where it goes.
    pub target: String,
    /// What happened.
    pub event: String,
    /// The message.
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Status.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When the next attempt is due (pending only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it was queued.
    pub created_at: chrono::DateTime<chrono::Utc>,
    /// When it was delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delivered_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Why the last attempt failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// One attempt at a delivery.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DeliveryAttempt {
    /// Delivery id.
    pub delivery: i64,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// When it started.
    pub at: chrono::DateTime<chrono::Utc>,
    /// Whether the receiver accepted it.
    pub ok: bool,
    /// HTTP status (webhooks) or SMTP reply code (e-mail).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// How long it took, in milliseconds.
    pub duration_ms: u64,
}

/// What to do with a delivery after an attempt.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DeliveryOutcome {
    /// Done.
    Delivered,
    /// Try again at the given time.
    Retry(Timestamp),
    /// Give up.
    Failed,
}

/// Filter for the delivery log, newest first.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    /// Only this status.
    pub status: Option<DeliveryStatus>,
    /// Only this channel.
    pub channel: Option<String>,
    /// Start after this cursor.
    pub cursor: Option<String>,
    /// Page size.
    pub limit: usize,
}

/// An in-console notification for one user.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notification {
    /// Id, assigned by the store.
    pub id: i64,
    /// Recipient username.
    pub user: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// What happened, e.g. `alert.opened`.
    pub event: String,
    /// One line.
    pub title: String,
    /// More words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    /// API path of the subject, e.g. `/api/v1/alerts/12`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Severity of the subject.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// When the user read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// An in-console notification to store.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// Recipient username.
    pub user: String,
    /// When.
    pub at: chrono::DateTime<chrono::Utc>,
    /// What happened.
    pub event: String,
    /// One line.
    pub title: String,
    /// More words.
    pub body: Option<String>,
    /// API path of the subject.
    pub link: Option<String>,
    /// Severity of the subject.
    pub severity: Option<Severity>,
}

/// Storage for operations: rules, alerts, incidents, SOPs, notifications.
/// Writes return only once durable.
#[async_trait]
pub trait OpsStore: Send + Sync + std::fmt::Debug + 'static {
    // --- rules ----------------------------------------------------------

    /// Creates or replaces a rule; the stored version is the previous one + 1.
    async fn put_rule(&self, rule: &RuleRecord) -> StoreResult<RuleRecord>;
    /// One rule.
    async fn rule(&self, id: &str) -> StoreResult<Option<RuleRecord>>;
    /// Every rule, ordered by id.
    async fn rules(&self) -> StoreResult<Vec<RuleRecord>>;
    /// Deletes a rule (its alerts stay); false if there was none.
    async fn delete_rule(&self, id: &str) -> StoreResult<bool>;

    // --- alerts ---------------------------------------------------------

    /// Opens an alert, unless one for the same rule and key is unresolved:
    /// then that one is repeated (occurrences + 1, last value and time
    /// moved) and returned with `false`.
    async fn open_alert(&self, alert: &NewAlert) -> StoreResult<(Alert, bool)>;
    /// One alert.
    async fn alert(&self, id: i64) -> StoreResult<Option<Alert>>;
    /// Alerts matching a filter, newest first, one page at a time.
    async fn alerts(&self, q: &AlertQuery) -> StoreResult<Page<Alert>>;
    /// Records a step: `Acknowledged` (from open only), `Resolved` (from
    /// open or acknowledged), `Commented` (any status). A step the status
    /// does not allow is a [`crate::StoreError::Conflict`].
    async fn alert_step(
        &self,
        id: i64,
        action: AlertAction,
        by: &str,
        at: Timestamp,
        comment: Option<&str>,
    ) -> StoreResult<Alert>;
    /// Resolves the unresolved alert of a rule and key, if there is one.
    async fn resolve_alert_by_key(
        &self,
        rule: &str,
        key: &str,
        by: &str,
        at: Timestamp,
        comment: Option<&str>,
    ) -> StoreResult<Option<Alert>>;
    /// Every step of an alert, oldest first.
    async fn alert_steps(&self, id: i64) -> StoreResult<Vec<AlertStep>>;

    // --- incidents ------------------------------------------------------

    /// Creates an incident (id and version are assigned) with its first
    /// timeline entries, linking the alerts it lists.
    async fn create_incident(
        &self,
        incident: &Incident,
        timeline: &[NewTimelineEntry],
    ) -> StoreResult<Incident>;
    /// Replaces an incident if its stored version is `expected_version`
    /// (else [`crate::StoreError::Conflict`]), appends the timeline entries
    /// and links newly listed alerts.
    async fn update_incident(
        &self,
        incident: &Incident,
        expected_version: i64,
        timeline: &[NewTimelineEntry],
    ) -> StoreResult<Incident>;
    /// One incident.
    async fn incident(&self, id: i64) -> StoreResult<Option<Incident>>;
    /// Incidents matching a filter, newest first, one page at a time.
    async fn incidents(&self, q: &IncidentQuery) -> StoreResult<Page<Incident>>;
    /// Active incidents whose next SLA check is due at `now`, earliest first.
    async fn incidents_due(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Incident>>;
    /// An incident's timeline, oldest first.
    async fn timeline(&self, incident: i64) -> StoreResult<Vec<TimelineEntry>>;

    // --- attachments ----------------------------------------------------

    /// Stores a file for an incident (content first, then its metadata and
    /// the timeline entry, so no metadata points at a missing file).
    async fn add_attachment(
        &self,
        incident: i64,
        meta: &NewAttachment,
        content: &[u8],
        entry: &NewTimelineEntry,
    ) -> StoreResult<Attachment>;
    /// The attachments of an incident, oldest first.
    async fn attachments(&self, incident: i64) -> StoreResult<Vec<Attachment>>;
    /// One attachment of an incident with its content.
    async fn attachment(
        &self,
        incident: i64,
        id: i64,
    ) -> StoreResult<Option<(Attachment, Vec<u8>)>>;

    // --- SOP templates --------------------------------------------------

    /// Creates or replaces SOP templates (all or nothing).
    async fn put_sops(&self, sops: &[SopTemplate]) -> StoreResult<()>;
    /// Every SOP template, ordered by incident type.
    async fn sops(&self) -> StoreResult<Vec<SopTemplate>>;
    /// The SOP template of an incident type.
    async fn sop(&self, incident_type: &str) -> StoreResult<Option<SopTemplate>>;
    /// Deletes a template; false if there was none.
    async fn delete_sop(&self, incident_type: &str) -> StoreResult<bool>;

    // --- notifications --------------------------------------------------

    /// Queues deliveries, due at once.
    async fn enqueue_deliveries(&self, d: &[NewDelivery]) -> StoreResult<Vec<Delivery>>;
    /// Pending deliveries due at `now`, earliest first.
    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Delivery>>;
    /// Logs an attempt and moves the delivery on.
    async fn record_attempt(
        &self,
        attempt: &DeliveryAttempt,
        outcome: DeliveryOutcome,
    ) -> StoreResult<Delivery>;
    /// The delivery log, newest first.
    async fn deliveries(&self, q: &DeliveryQuery) -> StoreResult<Page<Delivery>>;
    /// Every attempt of a delivery, oldest first.
    async fn delivery_attempts(&self, delivery: i64) -> StoreResult<Vec<DeliveryAttempt>>;
    /// Stores in-console notifications.
    async fn add_notifications(&self, n: &[NewNotification]) -> StoreResult<()>;
    /// A user's notifications, newest first.
    async fn notifications(
        &self,
        user: &str,
        unread_only: bool,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Notification>>;
    /// Marks a user's notifications read (the given ids, or all when
    /// `None`); returns how many changed.
    async fn mark_notifications_read(
        &self,
        user: &str,
        ids: Option<&[i64]>,
        at: Timestamp,
    ) -> StoreResult<u64>;
}

/// A shared operations store.
pub type SharedOpsStore = Arc<dyn OpsStore>;
