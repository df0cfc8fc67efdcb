//! Incidents: created from alerts (by a rule or an operator), by hand, or
//! from other sources; a status workflow, an SOP checklist per incident
//! type, SLA timers per severity with escalation, a timeline of every
//! action, linked alerts and attachments.
//!
//! The workflow:
//!
//! ```text
//! new ──► assigned ──► in_progress ──► resolved ──► closed
//!  │  └──────────────►─┘   ▲  │           │  ▲         │
//!  │                       │  └─► assigned│  │         │
//!  └──► resolved / closed  │              ▼  │         ▼
//!                          └──────────── reopened ◄────┘
//! ```
//!
//! `closed` straight from `new` or `assigned` (a false alarm) needs a comment.
//! SLA: handling must start (`in_progress`) within the severity's `respond`
//! time and the case be resolved within its `resolve` time, both counted
//! from creation or reopening. Each breach moves the incident one level up
//! the escalation ladder and notifies that level; the breached timer then
//! runs again for the next level, up to the top.

use crate::compile::UnitTree;
use crate::config::SlaTimes;
use crate::error::{OpsError, OpsResult};
use crate::model::{IncidentSpec, Rule};
use crate::notify::{Message, hex};
use crate::service::{Actor, Ops};
use panorama_core::error::check_code;
use panorama_core::{FieldError, Invalid, Page, Role, Timestamp};
use panorama_ingest::{Event, IncidentEvent};
use panorama_store::{
    Alert, Attachment, ChecklistItem, Incident, IncidentQuery, IncidentStatus, NewAttachment,
    NewTimelineEntry, Severity, TimelineEntry,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// Whether the workflow allows `from` → `to`.
pub fn can_move(from: IncidentStatus, to: IncidentStatus) -> bool {
    use IncidentStatus::*;
    matches!(
        (from, to),
        (New, Assigned | InProgress | Resolved | Closed)
            | (Assigned, Assigned | InProgress | Resolved | Closed)
            | (InProgress, Assigned | Resolved)
            | (Resolved, Closed | Reopened)
            | (Closed, Reopened)
            | (Reopened, Assigned | InProgress | Resolved)
    )
}

/// The statuses `from` may move to.
pub fn next_statuses(from: IncidentStatus) -> Vec<IncidentStatus> {
    IncidentStatus::ALL
        .into_iter()
        .filter(|to| can_move(from, *to))
        .collect()
}

/// Starts the SLA timers at `from`.
pub fn arm_sla(i: &mut Incident, sla: SlaTimes, from: Timestamp) {
    i.respond_by = Some(from + sla.respond.chrono());
    i.resolve_by = Some(from + sla.resolve.chrono());
    i.responded_at = None;
    i.next_check_at = i.respond_by;
}

/// Moves an incident to `to` at `now`, keeping its SLA timers right.
/// Refuses a move the workflow does not allow.
pub fn apply_status(
    i: &mut Incident,
    to: IncidentStatus,
    now: Timestamp,
    sla: SlaTimes,
) -> Result<(), String> {
    if !can_move(i.status, to) {
        return Err(format!(
            "an incident that is {} cannot become {}; it can become {}",
            i.status.as_str(),
            to.as_str(),
            next_statuses(i.status)
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    match to {
        IncidentStatus::InProgress => {
            if i.responded_at.is_none() {
                i.responded_at = Some(now);
                i.next_check_at = i.resolve_by;
            }
        }
        IncidentStatus::Resolved => {
            i.resolved_at = Some(now);
            i.next_check_at = None;
        }
        IncidentStatus::Closed => {
            i.closed_at = Some(now);
            i.next_check_at = None;
        }
        IncidentStatus::Reopened => {
            i.closed_at = None;
            i.resolved_at = None;
            arm_sla(i, sla, now);
        }
        IncidentStatus::New | IncidentStatus::Assigned => {}
    }
    i.status = to;
    i.updated_at = now;
    Ok(())
}

/// An escalation decided at `now` for an incident whose check is due.
#[derive(Debug, Clone, PartialEq)]
pub struct Escalation {
    /// The new level (1 = first rung).
    pub level: u32,
    /// `respond` or `resolve`: the timer that was breached.
    pub stage: &'static str,
    /// The deadline that was missed.
    pub deadline: Timestamp,
}

/// Escalates an incident whose SLA check is due at `now`: one level up
/// (at most `levels`), the breached timer re-armed for the next level.
/// None when nothing is due or the top is already reached.
pub fn escalate(
    i: &mut Incident,
    now: Timestamp,
    sla: SlaTimes,
    levels: u32,
) -> Option<Escalation> {
    let due = i.next_check_at?;
    if due > now || !i.status.is_active() {
        return None;
    }
    let (stage, window) = if i.responded_at.is_none() {
        ("respond", sla.respond)
    } else {
        ("resolve", sla.resolve)
    };
    if i.escalation_level >= levels {
        i.next_check_at = None;
        return None;
    }
    i.escalation_level += 1;
    let step = window.chrono().max(chrono::Duration::seconds(1));
    let mut next = due + step;
    // A long pause (server down) escalates once now, not once per missed period.
    if next <= now {
        let behind = (now - next).num_seconds() / step.num_seconds().max(1) + 1;
        next += step * i32::try_from(behind).unwrap_or(i32::MAX);
    }
    i.next_check_at = (i.escalation_level < levels).then_some(next);
    i.updated_at = now;
    Some(Escalation {
        level: i.escalation_level,
        stage,
        deadline: due,
    })
}

/// An incident to create.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewIncident {
    /// One line; by default the first linked alert's title.
    #[serde(default)]
    pub title: Option<String>,
    /// Incident type code (`flood`, `fire`, `traffic-jam`…); picks the SOP checklist.
    #[serde(rename = "type")]
    pub incident_type: String,
    /// By default the most severe linked alert's, else `medium`.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// What is known.
    #[serde(default)]
    pub description: Option<String>,
    /// Domain code (default: the first alert's).
    #[serde(default)]
    pub domain: Option<String>,
    /// Admin unit code (default: the first alert's).
    #[serde(default)]
    pub admin_unit: Option<String>,
    /// [longitude, latitude] (default: the first alert's).
    #[serde(default)]
    pub location: Option<[f64; 2]>,
    /// Agency to assign.
    #[serde(default)]
    pub agency: Option<String>,
    /// Person to assign (username).
    #[serde(default)]
    pub assignee: Option<String>,
    /// Alerts to link.
    #[serde(default)]
    pub alerts: Vec<i64>,
    /// `manual` (default), `alert`, `citizen_report`, `camera`…
    #[serde(default)]
    pub origin: Option<String>,
    /// The originating record's id.
    #[serde(default)]
    pub origin_ref: Option<String>,
}

/// Changes to an incident's fields; absent fields stay as they are.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentPatch {
    /// One line.
    #[serde(default)]
    pub title: Option<String>,
    /// Incident type code.
    #[serde(default, rename = "type")]
    pub incident_type: Option<String>,
    /// Severity.
    #[serde(default)]
    pub severity: Option<Severity>,
    /// What is known.
    #[serde(default)]
    pub description: Option<String>,
    /// Domain code.
    #[serde(default)]
    pub domain: Option<String>,
    /// Admin unit code.
    #[serde(default)]
    pub admin_unit: Option<String>,
    /// [longitude, latitude].
    #[serde(default)]
    pub location: Option<[f64; 2]>,
    /// Agency code; assigning a new incident moves it to `assigned`.
    #[serde(default)]
    pub agency: Option<String>,
    /// Username; `""` unassigns the person.
    #[serde(default)]
    pub assignee: Option<String>,
    /// The version the change is based on (409 if it changed meanwhile).
    #[serde(default)]
    pub version: Option<i64>,
}

/// A status change.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    /// The new status.
    pub status: IncidentStatus,
    /// Why (required to close a case nobody handled).
    #[serde(default)]
    pub comment: Option<String>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
}

/// Ticking (or unticking) a checklist step.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChecklistTick {
    /// Index of the step (0-based).
    pub step: usize,
    /// Done or not.
    pub done: bool,
    /// A remark for the timeline.
    #[serde(default)]
    pub comment: Option<String>,
    /// The version the change is based on.
    #[serde(default)]
    pub version: Option<i64>,
}

/// An incident with its timeline and attachments.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct IncidentDetail {
    /// The incident.
    #[serde(flatten)]
    pub incident: Incident,
    /// Statuses it can move to now.
    pub next_statuses: Vec<IncidentStatus>,
    /// Every action and comment, oldest first.
    pub timeline: Vec<TimelineEntry>,
    /// Attached files.
    pub attachments: Vec<Attachment>,
}

fn entry(
    at: Timestamp,
    by: &str,
    kind: &str,
    text: Option<String>,
    data: serde_json::Value,
) -> NewTimelineEntry {
    NewTimelineEntry {
        at,
        by: by.into(),
        kind: kind.into(),
        text,
        data,
    }
}

fn not_found(id: i64) -> OpsError {
    OpsError::NotFound(format!("incident {id} does not exist"))
}

/// What a file's first bytes say it is, for the types that have a signature.
fn sniff(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if bytes.starts_with(b"%PDF-") {
        Some("application/pdf")
    } else {
        None
    }
}

impl Ops {
    fn sla(&self, s: Severity) -> SlaTimes {
        self.inner.config.sla.of(s)
    }

    fn levels(&self) -> u32 {
        u32::try_from(self.inner.config.escalation.len()).unwrap_or(u32::MAX)
    }

    fn publish_incident(&self, change: &'static str, incident: Incident) {
        self.inner
            .bus
            .publish(Event::Incident(Arc::new(IncidentEvent {
                change,
                incident,
            })));
    }

    /// Whether the actor may change this incident: administrators and
    /// operators always, officers for their agency's incidents.
    fn may_edit(actor: &Actor, i: &Incident) -> OpsResult<()> {
        match actor.role {
            Role::Admin | Role::Operator => Ok(()),
            Role::Officer if actor.agency.is_some() && actor.agency == i.agency => Ok(()),
            Role::Officer => Err(OpsError::Forbidden(
                "officers may change only incidents assigned to their agency".into(),
            )),
            _ => Err(OpsError::Forbidden(
                "this needs the role admin, operator or officer".into(),
            )),
        }
    }

    async fn load(&self, id: i64, version: Option<i64>) -> OpsResult<Incident> {
        let i = self
            .inner
            .ops
            .incident(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        if let Some(v) = version
            && v != i.version
        {
            return Err(OpsError::Conflict(format!(
                "incident {id} was changed meanwhile (version {}, you had {v}); reload it and try again",
                i.version
            )));
        }
        Ok(i)
    }

    async fn save(
        &self,
        i: &Incident,
        version: i64,
        entries: &[NewTimelineEntry],
        change: &'static str,
    ) -> OpsResult<Incident> {
        let saved = self.inner.ops.update_incident(i, version, entries).await?;
        self.publish_incident(change, saved.clone());
        Ok(saved)
    }

    /// Incidents matching a filter; `admin_units` are expanded to descendants.
    pub async fn incidents(&self, mut q: IncidentQuery) -> OpsResult<Page<Incident>> {
        if !q.admin_units.is_empty() {
            let tree = UnitTree::new(&self.inner.store.admin_units().await?);
            q.admin_units = tree.expand(&q.admin_units).into_iter().collect();
        }
        Ok(self.inner.ops.incidents(&q).await?)
    }

    /// One incident with its timeline and attachments.
    pub async fn incident(&self, id: i64) -> OpsResult<IncidentDetail> {
        let incident = self
            .inner
            .ops
            .incident(id)
            .await?
            .ok_or_else(|| not_found(id))?;
        Ok(IncidentDetail {
            next_statuses: next_statuses(incident.status),
            timeline: self.inner.ops.timeline(id).await?,
            attachments: self.inner.ops.attachments(id).await?,
            incident,
        })
    }

    async fn checklist(&self, incident_type: &str) -> OpsResult<Vec<ChecklistItem>> {
        Ok(self
            .inner
            .ops
            .sop(incident_type)
            .await?
            .map(|s| {
                s.steps
                    .into_iter()
                    .map(|step| ChecklistItem {
                        step,
                        done: false,
                        done_by: None,
                        done_at: None,
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn create(&self, mut i: Incident, by: &str, note: Option<String>) -> OpsResult<Incident> {
        let now = self.now();
        i.checklist = self.checklist(&i.incident_type).await?;
        let sla = self.sla(i.severity);
        arm_sla(&mut i, sla, now);
        let mut entries = vec![entry(
            now,
            by,
            "created",
            note,
            serde_json::json!({"status": i.status, "severity": i.severity, "origin": i.origin}),
        )];
        if !i.alerts.is_empty() {
            entries.push(entry(
                now,
                by,
                "alert_linked",
                None,
                serde_json::json!({"alerts": i.alerts}),
            ));
        }
        let created = self.inner.ops.create_incident(&i, &entries).await?;
        for a in &created.alerts {
            if let Some(alert) = self.inner.ops.alert(*a).await? {
                self.publish_alert("linked", alert);
            }
        }
        self.publish_incident("created", created.clone());
        self.notify(
            &self.inner.config.incident_notify,
            Message::incident("incident.created", &created, created.description.clone()),
        )
        .await;
        if let Some(user) = &created.assignee {
            self.notify_user(user, Message::incident("incident.assigned", &created, None))
                .await;
        }
        Ok(created)
    }

    async fn notify_user(&self, user: &str, msg: Message) {
        let n = panorama_store::NewNotification {
            user: user.into(),
            at: self.now(),
            event: msg.event.into(),
            title: msg.title,
            body: msg.body,
            link: Some(msg.link),
            severity: Some(msg.severity),
        };
        if let Err(e) = self.inner.ops.add_notifications(&[n]).await {
            tracing::warn!(error = %e, "could not notify the assignee");
        }
    }

    /// Creates an incident by hand or from alerts (admin, operator, officer).
    pub async fn create_incident(&self, actor: &Actor, n: NewIncident) -> OpsResult<Incident> {
        actor.require(&[Role::Admin, Role::Operator, Role::Officer])?;
        let mut errs = Vec::new();
        errs.extend(check_code("type", &n.incident_type).err());
        let mut alerts: Vec<Alert> = Vec::new();
        for (k, id) in n.alerts.iter().enumerate() {
            match self.inner.ops.alert(*id).await? {
                Some(a) => alerts.push(a),
                None => errs.push(FieldError::new(
                    format!("alerts[{k}]"),
                    format!("unknown alert {id}"),
                )),
            }
        }
        let first = alerts.first();
        let title = n
            .title
            .clone()
            .or_else(|| first.map(|a| a.title.clone()))
            .unwrap_or_default();
        if title.trim().is_empty() {
            errs.push(FieldError::new(
                "title",
                "is required when no alert is linked",
            ));
        }
        if let Some(o) = &n.origin {
            errs.extend(check_code("origin", o).err());
        }
        if !errs.is_empty() {
            return Err(Invalid(errs).into());
        }
        let severity = n
            .severity
            .or_else(|| alerts.iter().map(|a| a.severity).max())
            .unwrap_or(Severity::Medium);
        let now = self.now();
        let assigned = n.agency.is_some() || n.assignee.is_some();
        let i = Incident {
            id: 0,
            title,
            incident_type: n.incident_type,
            severity,
            status: if assigned {
                IncidentStatus::Assigned
            } else {
                IncidentStatus::New
            },
            description: n.description,
            domain: n.domain.or_else(|| first.and_then(|a| a.domain.clone())),
            admin_unit: n
                .admin_unit
                .or_else(|| first.and_then(|a| a.admin_unit.clone())),
            location: n.location.or_else(|| first.and_then(|a| a.location)),
            agency: n.agency,
            assignee: n.assignee,
            origin: n
                .origin
                .unwrap_or_else(|| if alerts.is_empty() { "manual" } else { "alert" }.into()),
            origin_ref: n.origin_ref,
            created_at: now,
            created_by: actor.tag(),
            updated_at: now,
            respond_by: None,
            resolve_by: None,
            responded_at: None,
            resolved_at: None,
            closed_at: None,
            escalation_level: 0,
            next_check_at: None,
            checklist: Vec::new(),
            alerts: n.alerts,
            version: 0,
        };
        self.create(i, &actor.tag(), None).await
    }

    /// Opens (or joins) the incident a rule asks for with a new alert.
    pub(crate) async fn incident_for_alert(
        &self,
        rule: &Rule,
        spec: &IncidentSpec,
        alert: &Alert,
    ) -> OpsResult<()> {
        let by = format!("rule:{}", rule.id);
        let now = self.now();
        if spec.group
            && let Some(unit) = &alert.admin_unit
        {
            let active = self
                .inner
                .ops
                .incidents(&IncidentQuery {
                    status: vec![
                        IncidentStatus::New,
                        IncidentStatus::Assigned,
                        IncidentStatus::InProgress,
                        IncidentStatus::Reopened,
                    ],
                    incident_type: Some(spec.incident_type.clone()),
                    admin_units: vec![unit.clone()],
                    limit: 1,
                    ..IncidentQuery::default()
                })
                .await?;
            if let Some(mut i) = active.items.into_iter().next() {
                let version = i.version;
                i.alerts.push(alert.id);
                i.updated_at = now;
                let e = entry(
                    now,
                    &by,
                    "alert_linked",
                    Some(alert.title.clone()),
                    serde_json::json!({"alerts": [alert.id]}),
                );
                self.save(&i, version, &[e], "alert_linked").await?;
                if let Some(a) = self.inner.ops.alert(alert.id).await? {
                    self.publish_alert("linked", a);
                }
                return Ok(());
            }
        }
        let i = Incident {
            id: 0,
            title: alert.title.clone(),
            incident_type: spec.incident_type.clone(),
            severity: spec.severity.unwrap_or(rule.severity),
            status: if spec.agency.is_some() {
                IncidentStatus::Assigned
            } else {
                IncidentStatus::New
            },
            description: rule.description.clone(),
            domain: alert.domain.clone(),
            admin_unit: alert.admin_unit.clone(),
            location: alert.location,
            agency: spec.agency.clone(),
            assignee: None,
            origin: "alert".into(),
            origin_ref: Some(alert.id.to_string()),
            created_at: now,
            created_by: by.clone(),
            updated_at: now,
            respond_by: None,
            resolve_by: None,
            responded_at: None,
            resolved_at: None,
            closed_at: None,
            escalation_level: 0,
            next_check_at: None,
            checklist: Vec::new(),
            alerts: vec![alert.id],
            version: 0,
        };
        self.create(i, &by, Some(format!("opened by rule {}", rule.id)))
            .await?;
        Ok(())
    }

    /// Changes an incident's fields, recording each change on the timeline.
    pub async fn update_incident(
        &self,
        actor: &Actor,
        id: i64,
        p: IncidentPatch,
    ) -> OpsResult<Incident> {
        let mut i = self.load(id, p.version).await?;
        Self::may_edit(actor, &i)?;
        let version = i.version;
        let now = self.now();
        let by = actor.tag();
        let mut entries = Vec::new();
        let mut changed = serde_json::Map::new();
        macro_rules! set {
            ($field:ident, $name:literal) => {
                if let Some(v) = p.$field
                    && Some(&v) != Some(&i.$field)
                {
                    changed.insert(
                        $name.into(),
                        serde_json::json!({"from": i.$field, "to": v}),
                    );
                    i.$field = v;
                }
            };
        }
        set!(title, "title");
        set!(incident_type, "type");
        set!(severity, "severity");
        for (name, new, old) in [
            ("description", p.description, &mut i.description),
            ("domain", p.domain, &mut i.domain),
            ("admin_unit", p.admin_unit, &mut i.admin_unit),
        ] {
            if let Some(v) = new
                && Some(&v) != old.as_ref()
            {
                changed.insert(name.into(), serde_json::json!({"from": old, "to": v}));
                *old = Some(v);
            }
        }
        if let Some(l) = p.location
            && Some(l) != i.location
        {
            changed.insert(
                "location".into(),
                serde_json::json!({"from": i.location, "to": l}),
            );
            i.location = Some(l);
        }
        let mut assigned = false;
        if let Some(a) = p.agency
            && Some(&a) != i.agency.as_ref()
        {
            entries.push(entry(
                now,
                &by,
                "assigned",
                Some(format!("agency {a}")),
                serde_json::json!({"agency": {"from": i.agency, "to": a}}),
            ));
            i.agency = Some(a);
            assigned = true;
        }
        let mut new_assignee = None;
        if let Some(u) = p.assignee {
            let u = (!u.is_empty()).then_some(u);
            if u != i.assignee {
                entries.push(entry(
                    now,
                    &by,
                    "assigned",
                    Some(match &u {
                        Some(u) => format!("assigned to {u}"),
                        None => "unassigned".into(),
                    }),
                    serde_json::json!({"assignee": {"from": i.assignee, "to": u}}),
                ));
                assigned |= u.is_some();
                new_assignee.clone_from(&u);
                i.assignee = u;
            }
        }
        if !changed.is_empty() {
            entries.insert(
                0,
                entry(
                    now,
                    &by,
                    "updated",
                    None,
                    serde_json::Value::Object(changed),
                ),
            );
        }
        if entries.is_empty() {
            return Ok(i);
        }
        if assigned && matches!(i.status, IncidentStatus::New | IncidentStatus::Reopened) {
            let from = i.status;
            let sla = self.sla(i.severity);
            apply_status(&mut i, IncidentStatus::Assigned, now, sla)
                .map_err(|e| Invalid::one("status", e))?;
            entries.push(entry(
                now,
                &by,
                "status",
                None,
                serde_json::json!({"from": from, "to": i.status}),
            ));
        }
        i.updated_at = now;
        let saved = self.save(&i, version, &entries, "updated").await?;
        if let Some(u) = new_assignee {
            self.notify_user(&u, Message::incident("incident.assigned", &saved, None))
                .await;
        }
        Ok(saved)
    }

    /// Moves an incident along its workflow.
    pub async fn set_status(&self, actor: &Actor, id: i64, c: StatusChange) -> OpsResult<Incident> {
        let mut i = self.load(id, c.version).await?;
        Self::may_edit(actor, &i)?;
        let comment = c.comment.filter(|s| !s.trim().is_empty());
        if c.status == IncidentStatus::Closed
            && matches!(i.status, IncidentStatus::New | IncidentStatus::Assigned)
            && comment.is_none()
        {
            return Err(Invalid::one(
                "comment",
                "closing an incident nobody handled needs a comment (e.g. a false alarm)",
            )
            .into());
        }
        let version = i.version;
        let from = i.status;
        let now = self.now();
        let sla = self.sla(i.severity);
        apply_status(&mut i, c.status, now, sla).map_err(OpsError::Conflict)?;
        let e = entry(
            now,
            &actor.tag(),
            "status",
            comment,
            serde_json::json!({"from": from, "to": c.status}),
        );
        let saved = self.save(&i, version, &[e], "status").await?;
        if matches!(
            c.status,
            IncidentStatus::Resolved | IncidentStatus::Reopened
        ) {
            let event = if c.status == IncidentStatus::Resolved {
                "incident.resolved"
            } else {
                "incident.reopened"
            };
            self.notify(
                &self.inner.config.incident_notify,
                Message::incident(event, &saved, None),
            )
            .await;
        }
        Ok(saved)
    }

    /// Adds a comment to the timeline (any signed-in user but viewers).
    pub async fn comment_incident(
        &self,
        actor: &Actor,
        id: i64,
        text: &str,
    ) -> OpsResult<Incident> {
        actor.require(&[Role::Admin, Role::Operator, Role::Officer, Role::Leader])?;
        if text.trim().is_empty() {
            return Err(Invalid::one("text", "must not be empty").into());
        }
        let i = self.load(id, None).await?;
        let e = entry(
            self.now(),
            &actor.tag(),
            "comment",
            Some(text.into()),
            serde_json::json!({}),
        );
        let mut same = i.clone();
        same.updated_at = self.now();
        self.save(&same, i.version, &[e], "comment").await
    }

    /// Ticks or unticks a checklist step.
    pub async fn tick_checklist(
        &self,
        actor: &Actor,
        id: i64,
        t: ChecklistTick,
    ) -> OpsResult<Incident> {
        let mut i = self.load(id, t.version).await?;
        Self::may_edit(actor, &i)?;
        let version = i.version;
        let now = self.now();
        let n = i.checklist.len();
        let Some(item) = i.checklist.get_mut(t.step) else {
            return Err(Invalid::one(
                "step",
                format!("the checklist has {n} steps (0 to {})", n.saturating_sub(1)),
            )
            .into());
        };
        item.done = t.done;
        item.done_by = t.done.then(|| actor.tag());
        item.done_at = t.done.then_some(now);
        let label = item.step.clone();
        i.updated_at = now;
        let e = entry(
            now,
            &actor.tag(),
            "checklist",
            Some(match &t.comment {
                Some(c) => format!("{label}: {c}"),
                None => label,
            }),
            serde_json::json!({"step": t.step, "done": t.done}),
        );
        self.save(&i, version, &[e], "checklist").await
    }

    /// Links alerts to an incident.
    pub async fn link_alerts(&self, actor: &Actor, id: i64, alerts: &[i64]) -> OpsResult<Incident> {
        let mut i = self.load(id, None).await?;
        Self::may_edit(actor, &i)?;
        let version = i.version;
        let new: Vec<i64> = alerts
            .iter()
            .copied()
            .filter(|a| !i.alerts.contains(a))
            .collect();
        if new.is_empty() {
            return Ok(i);
        }
        i.alerts.extend(&new);
        i.updated_at = self.now();
        let e = entry(
            self.now(),
            &actor.tag(),
            "alert_linked",
            None,
            serde_json::json!({"alerts": new}),
        );
        let saved = self.save(&i, version, &[e], "alert_linked").await?;
        for a in new {
            if let Some(alert) = self.inner.ops.alert(a).await? {
                self.publish_alert("linked", alert);
            }
        }
        Ok(saved)
    }

    /// Attaches a file (photo, document) within the configured size and
    /// type limits; images and PDFs must look like what they claim to be.
    pub async fn add_attachment(
        &self,
        actor: &Actor,
        id: i64,
        filename: &str,
        content_type: &str,
        content: &[u8],
    ) -> OpsResult<Attachment> {
        let i = self.load(id, None).await?;
        if actor.role != Role::Leader {
            Self::may_edit(actor, &i)?;
        }
        let limits = &self.inner.config.attachments;
        if content.len() as u64 > limits.max_bytes {
            return Err(OpsError::TooLarge {
                limit: limits.max_bytes,
            });
        }
        if content.is_empty() {
            return Err(Invalid::one("content", "the file is empty").into());
        }
        let ct = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if !limits.types.iter().any(|t| t == &ct) {
            return Err(OpsError::UnsupportedType(format!(
                "files of type '{ct}' are not accepted; send one of {}",
                limits.types.join(", ")
            )));
        }
        let sniffed = sniff(content);
        if let Some(real) = sniffed
            && real != ct
        {
            return Err(
                Invalid::one("content_type", format!("the file is a {real}, not {ct}")).into(),
            );
        }
        if sniffed.is_none() && (ct.starts_with("image/") || ct == "application/pdf") {
            return Err(
                Invalid::one("content", format!("the file does not look like {ct}")).into(),
            );
        }
        let sha = hex(&Sha256::digest(content));
        let now = self.now();
        let meta = NewAttachment {
            filename: filename.into(),
            content_type: ct,
            sha256: sha,
            uploaded_by: actor.tag(),
            uploaded_at: now,
        };
        let e = entry(
            now,
            &actor.tag(),
            "attachment",
            Some(filename.into()),
            serde_json::json!({"filename": filename, "size": content.len()}),
        );
        let a = self
            .inner
            .ops
            .add_attachment(id, &meta, content, &e)
            .await?;
        if let Some(i) = self.inner.ops.incident(id).await? {
            self.publish_incident("attachment", i);
        }
        Ok(a)
    }

    /// One attachment with its content.
    pub async fn attachment(&self, id: i64, attachment: i64) -> OpsResult<(Attachment, Vec<u8>)> {
        self.inner
            .ops
            .attachment(id, attachment)
            .await?
            .ok_or_else(|| {
                OpsError::NotFound(format!("incident {id} has no attachment {attachment}"))
            })
    }

    /// Escalates every incident whose SLA check is due at `now`.
    pub(crate) async fn sla_tick(&self, now: Timestamp) -> OpsResult<usize> {
        let due = self.inner.ops.incidents_due(now, 100).await?;
        let mut n = 0;
        for mut i in due {
            let version = i.version;
            let sla = self.sla(i.severity);
            let Some(esc) = escalate(&mut i, now, sla, self.levels()) else {
                // At the top already: stop checking.
                if i.next_check_at.is_none() {
                    let _ = self.inner.ops.update_incident(&i, version, &[]).await;
                }
                continue;
            };
            let level = self
                .inner
                .config
                .escalation
                .get(usize::try_from(esc.level.saturating_sub(1)).unwrap_or(0))
                .cloned();
            let name = level.as_ref().map(|l| l.name.clone()).unwrap_or_default();
            let text = format!(
                "SLA breached: {} by {}; escalated to level {} ({name})",
                if esc.stage == "respond" {
                    "handling did not start"
                } else {
                    "not resolved"
                },
                esc.deadline.to_rfc3339(),
                esc.level
            );
            let e = entry(
                now,
                "system",
                "escalated",
                Some(text.clone()),
                serde_json::json!({"level": esc.level, "stage": esc.stage, "deadline": esc.deadline, "name": name}),
            );
            match self.save(&i, version, &[e], "escalated").await {
                Ok(saved) => {
                    n += 1;
                    metrics::counter!("panorama_incident_escalations_total").increment(1);
                    if let Some(l) = level {
                        self.notify(
                            &l.notify,
                            Message::incident("incident.escalated", &saved, Some(text)),
                        )
                        .await;
                    }
                }
                // Someone changed it meanwhile: the next tick looks again.
                Err(OpsError::Conflict(_)) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dur::Dur;

    fn t(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    fn fresh() -> Incident {
        Incident {
            id: 1,
            title: "x".into(),
            incident_type: "flood".into(),
            severity: Severity::Critical,
            status: IncidentStatus::New,
            description: None,
            domain: None,
            admin_unit: None,
            location: None,
            agency: None,
            assignee: None,
            origin: "manual".into(),
            origin_ref: None,
            created_at: t("2024-05-01T00:00:00Z"),
            created_by: "user:lan".into(),
            updated_at: t("2024-05-01T00:00:00Z"),
            respond_by: None,
            resolve_by: None,
            responded_at: None,
            resolved_at: None,
            closed_at: None,
            escalation_level: 0,
            next_check_at: None,
            checklist: Vec::new(),
            alerts: Vec::new(),
            version: 1,
        }
    }

    const SLA: SlaTimes = SlaTimes {
        respond: Dur(15 * 60),
        resolve: Dur(4 * 3600),
    };

    #[test]
    fn the_workflow_allows_what_it_documents() {
        use IncidentStatus::*;
        assert!(can_move(New, Assigned));
        assert!(can_move(Resolved, Reopened));
        assert!(can_move(Closed, Reopened));
        assert!(!can_move(Closed, InProgress));
        assert!(!can_move(New, Reopened));
        assert!(!can_move(Resolved, InProgress));
        assert_eq!(next_statuses(Closed), [Reopened]);
    }

    #[test]
    fn escalation_climbs_one_level_per_breach_up_to_the_top() {
        let mut i = fresh();
        arm_sla(&mut i, SLA, t("2024-05-01T00:00:00Z"));
        assert_eq!(i.next_check_at, Some(t("2024-05-01T00:15:00Z")));
        assert_eq!(escalate(&mut i, t("2024-05-01T00:14:59Z"), SLA, 3), None);
        let e = escalate(&mut i, t("2024-05-01T00:15:00Z"), SLA, 3).unwrap();
        assert_eq!((e.level, e.stage), (1, "respond"));
        assert_eq!(i.next_check_at, Some(t("2024-05-01T00:30:00Z")));
        // Handling starts: the resolve timer takes over.
        apply_status(
            &mut i,
            IncidentStatus::InProgress,
            t("2024-05-01T00:20:00Z"),
            SLA,
        )
        .unwrap();
        assert_eq!(i.next_check_at, Some(t("2024-05-01T04:00:00Z")));
        assert_eq!(escalate(&mut i, t("2024-05-01T03:59:00Z"), SLA, 3), None);
        let e = escalate(&mut i, t("2024-05-01T04:00:00Z"), SLA, 3).unwrap();
        assert_eq!((e.level, e.stage), (2, "resolve"));
        // A late tick (server down) escalates once, to the next level.
        let e = escalate(&mut i, t("2024-05-02T00:00:00Z"), SLA, 3).unwrap();
        assert_eq!(e.level, 3);
        assert_eq!(i.next_check_at, None, "the top level is reached");
        apply_status(
            &mut i,
            IncidentStatus::Resolved,
            t("2024-05-02T01:00:00Z"),
            SLA,
        )
        .unwrap();
        apply_status(
            &mut i,
            IncidentStatus::Reopened,
            t("2024-05-03T00:00:00Z"),
            SLA,
        )
        .unwrap();
        assert_eq!(i.next_check_at, Some(t("2024-05-03T00:15:00Z")));
        assert!(
            apply_status(
                &mut i,
                IncidentStatus::Closed,
                t("2024-05-03T00:00:00Z"),
                SLA
            )
            .is_err()
        );
    }

    #[test]
    fn files_are_sniffed() {
        assert_eq!(sniff(b"\xff\xd8\xff\xe0rest"), Some("image/jpeg"));
        assert_eq!(sniff(b"%PDF-1.7"), Some("application/pdf"));
        assert_eq!(sniff(b"hello"), None);
    }
}
