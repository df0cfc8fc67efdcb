//! The operations store: rules, alerts, incidents, SOPs, notifications.

mod alerts;
mod incidents;
mod notify;
mod rules;

use crate::SqliteStore;
use async_trait::async_trait;
use panorama_core::{FieldError, Invalid, Page, Timestamp};
use panorama_store::{
    Alert, AlertAction, AlertQuery, Attachment, Delivery, DeliveryAttempt, DeliveryOutcome,
    DeliveryQuery, Incident, IncidentQuery, NewAlert, NewAttachment, NewDelivery, NewNotification,
    NewTimelineEntry, Notification, OpsStore, RuleRecord, Severity, SopTemplate, StoreError,
    StoreResult, TimelineEntry,
};

/// Longest comment or free text kept.
pub(crate) const MAX_TEXT_CHARS: usize = 10_000;

/// Reads a listing cursor (the id of the last item of the previous page).
pub(crate) fn cursor(c: Option<&str>) -> StoreResult<Option<i64>> {
    c.map(|c| {
        c.parse::<i64>().map_err(|_| {
            StoreError::Invalid(Invalid::one(
                "cursor",
                "is not a cursor from this listing; pass next_cursor as given",
            ))
        })
    })
    .transpose()
}

/// A page from `limit + 1` rows fetched newest first.
pub(crate) fn page<T>(mut items: Vec<T>, limit: usize, id: impl Fn(&T) -> i64) -> Page<T> {
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|x| id(x).to_string())
    } else {
        None
    };
    Page { items, next_cursor }
}

/// A page size between 1 and 1000 (the store's own bound).
pub(crate) fn limit(n: usize) -> usize {
    n.clamp(1, 1000)
}

/// Reads a stored severity rank.
pub(crate) fn severity_from(r: i64) -> StoreResult<Severity> {
    Severity::from_rank(r).ok_or_else(|| crate::error::corrupt("severity", r))
}

/// Checks a free text's length.
pub(crate) fn check_text(errs: &mut Vec<FieldError>, field: &str, s: Option<&str>) {
    if let Some(s) = s
        && s.chars().count() > MAX_TEXT_CHARS
    {
        errs.push(FieldError::new(
            field,
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
}

#[async_trait]
impl OpsStore for SqliteStore {
    async fn put_rule(&self, rule: &RuleRecord) -> StoreResult<RuleRecord> {
        self.put_rule_impl(rule).await
    }
    async fn rule(&self, id: &str) -> StoreResult<Option<RuleRecord>> {
        self.rule_impl(id).await
    }
    async fn rules(&self) -> StoreResult<Vec<RuleRecord>> {
        self.rules_impl().await
    }
    async fn delete_rule(&self, id: &str) -> StoreResult<bool> {
        self.delete_rule_impl(id).await
    }

    async fn open_alert(&self, alert: &NewAlert) -> StoreResult<(Alert, bool)> {
        self.open_alert_impl(alert).await
    }
    async fn alert(&self, id: i64) -> StoreResult<Option<Alert>> {
        self.alert_impl(id).await
    }
    async fn alerts(&self, q: &AlertQuery) -> StoreResult<Page<Alert>> {
        self.alerts_impl(q).await
    }
    async fn alert_step(
        &self,
        id: i64,
        action: AlertAction,
        by: &str,
        at: Timestamp,
        comment: Option<&str>,
    ) -> StoreResult<Alert> {
        self.alert_step_impl(id, action, by, at, comment).await
    }
    async fn resolve_alert_by_key(
        &self,
        rule: &str,
        key: &str,
        by: &str,
        at: Timestamp,
        comment: Option<&str>,
    ) -> StoreResult<Option<Alert>> {
        self.resolve_alert_by_key_impl(rule, key, by, at, comment)
            .await
    }
    async fn alert_steps(&self, id: i64) -> StoreResult<Vec<panorama_store::AlertStep>> {
        self.alert_steps_impl(id).await
    }

    async fn create_incident(
        &self,
        incident: &Incident,
        timeline: &[NewTimelineEntry],
    ) -> StoreResult<Incident> {
        self.write_incident(incident, None, timeline).await
    }
    async fn update_incident(
        &self,
        incident: &Incident,
        expected_version: i64,
        timeline: &[NewTimelineEntry],
    ) -> StoreResult<Incident> {
        self.write_incident(incident, Some(expected_version), timeline)
            .await
    }
    async fn incident(&self, id: i64) -> StoreResult<Option<Incident>> {
        self.incident_impl(id).await
    }
    async fn incidents(&self, q: &IncidentQuery) -> StoreResult<Page<Incident>> {
        self.incidents_impl(q).await
    }
    async fn incidents_due(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Incident>> {
        self.incidents_due_impl(now, limit).await
    }
    async fn timeline(&self, incident: i64) -> StoreResult<Vec<TimelineEntry>> {
        self.timeline_impl(incident).await
    }

    async fn add_attachment(
        &self,
        incident: i64,
        meta: &NewAttachment,
        content: &[u8],
        entry: &NewTimelineEntry,
    ) -> StoreResult<Attachment> {
        self.add_attachment_impl(incident, meta, content, entry)
            .await
    }
    async fn attachments(&self, incident: i64) -> StoreResult<Vec<Attachment>> {
        self.attachments_impl(incident).await
    }
    async fn attachment(
        &self,
        incident: i64,
        id: i64,
    ) -> StoreResult<Option<(Attachment, Vec<u8>)>> {
        self.attachment_impl(incident, id).await
    }

    async fn put_sops(&self, sops: &[SopTemplate]) -> StoreResult<()> {
        self.put_sops_impl(sops).await
    }
    async fn sops(&self) -> StoreResult<Vec<SopTemplate>> {
        self.sops_impl(None).await
    }
    async fn sop(&self, incident_type: &str) -> StoreResult<Option<SopTemplate>> {
        Ok(self.sops_impl(Some(incident_type)).await?.pop())
    }
    async fn delete_sop(&self, incident_type: &str) -> StoreResult<bool> {
        self.delete_sop_impl(incident_type).await
    }

    async fn enqueue_deliveries(&self, d: &[NewDelivery]) -> StoreResult<Vec<Delivery>> {
        self.enqueue_deliveries_impl(d).await
    }
    async fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<Delivery>> {
        self.due_deliveries_impl(now, limit).await
    }
    async fn record_attempt(
        &self,
        attempt: &DeliveryAttempt,
        outcome: DeliveryOutcome,
    ) -> StoreResult<Delivery> {
        self.record_attempt_impl(attempt, outcome).await
    }
    async fn deliveries(&self, q: &DeliveryQuery) -> StoreResult<Page<Delivery>> {
        self.deliveries_impl(q).await
    }
    async fn delivery_attempts(&self, delivery: i64) -> StoreResult<Vec<DeliveryAttempt>> {
        self.delivery_attempts_impl(delivery).await
    }
    async fn add_notifications(&self, n: &[NewNotification]) -> StoreResult<()> {
        self.add_notifications_impl(n).await
    }
    async fn notifications(
        &self,
        user: &str,
        unread_only: bool,
        cursor: Option<&str>,
        limit: usize,
    ) -> StoreResult<Page<Notification>> {
        self.notifications_impl(user, unread_only, cursor, limit)
            .await
    }
    async fn mark_notifications_read(
        &self,
        user: &str,
        ids: Option<&[i64]>,
        at: Timestamp,
    ) -> StoreResult<u64> {
        self.mark_notifications_read_impl(user, ids, at).await
    }
}
