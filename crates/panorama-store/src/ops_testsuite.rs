//! The shared operations test suite: the behaviour every [`OpsStore`]
//! backend must show. A backend crate runs it with one line:
//!
//! ```ignore
//! panorama_store::ops_store_tests!(async { make_fresh_store().await });
//! ```
//!
//! where the expression yields a [`SharedStore`] (or a `(SharedStore,
//! guard)` pair) whose [`Store::as_ops`](crate::Store::as_ops) is `Some`.
//! Times are fixed; no test reads the clock.

// Test code: a failed expectation must fail the test, loudly and with context.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::testsuite::t;
use crate::{
    AlertAction, AlertQuery, AlertStatus, DeliveryAttempt, DeliveryOutcome, DeliveryQuery,
    DeliveryStatus, Incident, IncidentQuery, IncidentStatus, NewAlert, NewAttachment, NewDelivery,
    NewNotification, NewTimelineEntry, RuleRecord, Severity, SharedOpsStore, SharedStore,
    SopTemplate, StoreError, StoreResult,
};
use panorama_core::{AdminLevel, AdminUnit, Agency, Role, Timestamp, User};
use serde_json::json;
use std::collections::BTreeSet;

/// Expands to one `#[tokio::test]` per behaviour of the operations suite,
/// in a module `ops_store_suite`.
#[macro_export]
macro_rules! ops_store_tests {
    ($make:expr) => {
        $crate::ops_store_tests!(@each $make;
            rules_round_trip,
            one_unresolved_alert_per_rule_and_key,
            alert_steps_follow_the_lifecycle,
            alert_listing_filters_and_pages,
            deduplication_holds_under_concurrent_writers,
            incidents_round_trip_with_versions,
            incident_references_are_checked,
            incident_listing_and_due_checks,
            attachments_round_trip,
            sop_templates_round_trip,
            deliveries_queue_retry_and_log,
            notifications_per_user,
        );
    };
    (@each $make:expr; $($name:ident),+ $(,)?) => {
        mod ops_store_suite {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let fixture: $crate::testsuite::Fixture = ($make).await.into();
                    $crate::ops_testsuite::$name(fixture.store.clone()).await;
                    fixture.finish().await;
                }
            )+
        }
    };
}

fn t0() -> Timestamp {
    t("2024-05-01T00:00:00Z")
}

fn ops(store: &SharedStore) -> SharedOpsStore {
    store
        .clone()
        .as_ops()
        .expect("the backend keeps operations data (Store::as_ops)")
}

fn unit(code: &str, level: AdminLevel, parent: Option<&str>) -> AdminUnit {
    AdminUnit {
        code: code.into(),
        name: format!("Đơn vị {code}"),
        name_en: None,
        level,
        parent: parent.map(Into::into),
        geometry: None,
        valid_from: None,
        valid_to: None,
        successors: Vec::new(),
    }
}

/// Admin units 74 > 718, 724; agency so-tn-mt; users lan (operator) and minh (officer).
async fn seed(store: &SharedStore) {
    store
        .upsert_admin_units(&[
            unit("74", AdminLevel::Province, None),
            unit("718", AdminLevel::District, Some("74")),
            unit("724", AdminLevel::District, Some("74")),
        ])
        .await
        .unwrap();
    store
        .upsert_agencies(&[Agency {
            code: "so-tn-mt".into(),
            name: "Sở Tài nguyên và Môi trường".into(),
            name_en: "Department of Natural Resources and Environment".into(),
            admin_unit: Some("74".into()),
        }])
        .await
        .unwrap();
    for (name, role) in [("lan", Role::Operator), ("minh", Role::Officer)] {
        store
            .create_user(
                &User {
                    username: name.into(),
                    display_name: name.into(),
                    role,
                    agency: Some("so-tn-mt".into()),
                    created_at: t0(),
                },
                "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA",
            )
            .await
            .unwrap();
    }
}

fn invalid_fields<T: std::fmt::Debug>(r: StoreResult<T>) -> Vec<String> {
    match r {
        Err(StoreError::Invalid(inv)) => inv.0.into_iter().map(|e| e.field).collect(),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

fn conflict<T: std::fmt::Debug>(r: StoreResult<T>) -> String {
    match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("expected Conflict, got {other:?}"),
    }
}

fn rule(id: &str, at: Timestamp) -> RuleRecord {
    RuleRecord {
        id: id.into(),
        definition: json!({"id": id, "name": "Mực nước cao", "severity": "high"}),
        enabled: true,
        origin: "api".into(),
        version: 0,
        updated_at: at,
        updated_by: "user:lan".into(),
    }
}

fn new_alert(rule: &str, key: &str, at: &str) -> NewAlert {
    NewAlert {
        rule: rule.into(),
        key: key.into(),
        severity: Severity::High,
        title: "Mực nước sông Sài Gòn vượt 2,5 m".into(),
        domain: Some("water".into()),
        admin_unit: Some("718".into()),
        entity: Some(format!("urn:ngsi-ld:WaterObserved:{key}")),
        entity_type: Some("WaterObserved".into()),
        attribute: Some("waterLevel".into()),
        source: None,
        indicator: None,
        location: Some([106.65, 10.98]),
        value: Some(2.6),
        data: json!({"above": 2.5, "values": [2.6]}),
        fired_at: t(at),
        at: t(at),
    }
}

fn incident(title: &str) -> Incident {
    Incident {
        id: 0,
        title: title.into(),
        incident_type: "flood".into(),
        severity: Severity::High,
        status: IncidentStatus::New,
        description: Some("Nước dâng cao tại cầu Ông Cộ".into()),
        domain: Some("water".into()),
        admin_unit: Some("718".into()),
        location: Some([106.65, 10.98]),
        agency: None,
        assignee: None,
        origin: "manual".into(),
        origin_ref: None,
        created_at: t0(),
        created_by: "user:lan".into(),
        updated_at: t0(),
        respond_by: Some(t("2024-05-01T00:15:00Z")),
        resolve_by: Some(t("2024-05-01T04:00:00Z")),
        responded_at: None,
        resolved_at: None,
        closed_at: None,
        escalation_level: 0,
        next_check_at: Some(t("2024-05-01T00:15:00Z")),
        checklist: vec![crate::ChecklistItem {
            step: "Cảnh báo người dân".into(),
            done: false,
            done_by: None,
            done_at: None,
        }],
        alerts: Vec::new(),
        version: 0,
    }
}

fn entry(kind: &str, by: &str, at: Timestamp) -> NewTimelineEntry {
    NewTimelineEntry {
        at,
        by: by.into(),
        kind: kind.into(),
        text: Some(format!("{kind} by {by}")),
        data: json!({}),
    }
}

// --- rules ------------------------------------------------------------------

/// Rules come back as written, versions count changes, deletion is reported.
pub async fn rules_round_trip(store: SharedStore) {
    let ops = ops(&store);
    let a = ops.put_rule(&rule("water-high", t0())).await.unwrap();
    assert_eq!(a.version, 1);
    let mut changed = rule("water-high", t("2024-05-02T00:00:00Z"));
    changed.enabled = false;
    let b = ops.put_rule(&changed).await.unwrap();
    assert_eq!(b.version, 2);
    ops.put_rule(&rule("aqi-bad", t0())).await.unwrap();
    let all = ops.rules().await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["aqi-bad", "water-high"]
    );
    assert_eq!(ops.rule("water-high").await.unwrap(), Some(b));
    assert!(ops.delete_rule("aqi-bad").await.unwrap());
    assert!(!ops.delete_rule("aqi-bad").await.unwrap());
    assert_eq!(ops.rule("aqi-bad").await.unwrap(), None);
    let mut bad = rule("has space", t0());
    bad.definition = json!([1]);
    assert_eq!(
        invalid_fields(ops.put_rule(&bad).await),
        ["id", "definition"]
    );
}

// --- alerts -----------------------------------------------------------------

/// While an alert is unresolved, firing again repeats it; once resolved,
/// the next firing opens a new one.
pub async fn one_unresolved_alert_per_rule_and_key(store: SharedStore) {
    let ops = ops(&store);
    let (a, created) = ops
        .open_alert(&new_alert("water-high", "g1", "2024-05-01T00:10:00Z"))
        .await
        .unwrap();
    assert!(created);
    assert_eq!((a.status, a.occurrences), (AlertStatus::Open, 1));
    assert_eq!(a.location, Some([106.65, 10.98]));
    assert_eq!(a.data["above"], 2.5);
    let mut again = new_alert("water-high", "g1", "2024-05-01T00:20:00Z");
    again.value = Some(2.9);
    let (b, created) = ops.open_alert(&again).await.unwrap();
    assert!(!created);
    assert_eq!(b.id, a.id);
    assert_eq!(b.occurrences, 2);
    assert_eq!((b.value, b.last_value), (Some(2.6), Some(2.9)));
    assert_eq!(b.last_seen_at, t("2024-05-01T00:20:00Z"));
    assert_eq!(b.fired_at, t("2024-05-01T00:10:00Z"));

    let (other, created) = ops
        .open_alert(&new_alert("water-high", "g2", "2024-05-01T00:20:00Z"))
        .await
        .unwrap();
    assert!(created && other.id != a.id);

    let at = t("2024-05-01T01:00:00Z");
    let r = ops
        .resolve_alert_by_key("water-high", "g1", "rule:water-high", at, Some("cleared"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.status, AlertStatus::Resolved);
    assert_eq!(r.resolved_by.as_deref(), Some("rule:water-high"));
    assert_eq!(r.resolved_at, Some(at));
    assert!(
        ops.resolve_alert_by_key("water-high", "g1", "rule:water-high", at, None)
            .await
            .unwrap()
            .is_none(),
        "nothing left to resolve"
    );
    let (c, created) = ops
        .open_alert(&new_alert("water-high", "g1", "2024-05-01T02:00:00Z"))
        .await
        .unwrap();
    assert!(created && c.id != a.id, "a new episode is a new alert");
    let steps = ops.alert_steps(a.id).await.unwrap();
    assert_eq!(
        steps.iter().map(|s| s.action).collect::<Vec<_>>(),
        [AlertAction::Opened, AlertAction::Resolved]
    );
    assert_eq!(steps[0].by, "rule:water-high");
}

/// Acknowledge only from open; resolve from open or acknowledged; every
/// step records who and when.
pub async fn alert_steps_follow_the_lifecycle(store: SharedStore) {
    let ops = ops(&store);
    let (a, _) = ops
        .open_alert(&new_alert("r", "k", "2024-05-01T00:00:00Z"))
        .await
        .unwrap();
    let t1 = t("2024-05-01T00:05:00Z");
    let acked = ops
        .alert_step(a.id, AlertAction::Acknowledged, "user:lan", t1, None)
        .await
        .unwrap();
    assert_eq!(acked.status, AlertStatus::Acknowledged);
    assert_eq!(
        (acked.acknowledged_by.as_deref(), acked.acknowledged_at),
        (Some("user:lan"), Some(t1))
    );
    let m = conflict(
        ops.alert_step(a.id, AlertAction::Acknowledged, "user:lan", t1, None)
            .await,
    );
    assert!(m.contains("acknowledged"), "{m}");
    let t2 = t("2024-05-01T00:06:00Z");
    ops.alert_step(
        a.id,
        AlertAction::Commented,
        "user:minh",
        t2,
        Some("Đã cử người"),
    )
    .await
    .unwrap();
    assert_eq!(
        invalid_fields(
            ops.alert_step(a.id, AlertAction::Commented, "user:minh", t2, Some("  "))
                .await
        ),
        ["comment"]
    );
    let t3 = t("2024-05-01T00:30:00Z");
    let done = ops
        .alert_step(
            a.id,
            AlertAction::Resolved,
            "user:lan",
            t3,
            Some("Nước đã rút"),
        )
        .await
        .unwrap();
    assert_eq!(done.status, AlertStatus::Resolved);
    assert_eq!(done.resolution.as_deref(), Some("Nước đã rút"));
    conflict(
        ops.alert_step(a.id, AlertAction::Resolved, "user:lan", t3, None)
            .await,
    );
    conflict(
        ops.alert_step(a.id, AlertAction::Acknowledged, "user:lan", t3, None)
            .await,
    );
    let steps = ops.alert_steps(a.id).await.unwrap();
    let brief: Vec<(AlertAction, &str, Timestamp)> = steps
        .iter()
        .map(|s| (s.action, s.by.as_str(), s.at))
        .collect();
    assert_eq!(
        brief,
        [
            (AlertAction::Opened, "rule:r", t0()),
            (AlertAction::Acknowledged, "user:lan", t1),
            (AlertAction::Commented, "user:minh", t2),
            (AlertAction::Resolved, "user:lan", t3),
        ]
    );
    let r = ops
        .alert_step(999_999, AlertAction::Acknowledged, "user:lan", t3, None)
        .await;
    assert!(
        matches!(r, Err(StoreError::NotFound { what: "alert", .. })),
        "{r:?}"
    );
    // Resolving straight from open is allowed too.
    let (b, _) = ops
        .open_alert(&new_alert("r", "k2", "2024-05-01T00:00:00Z"))
        .await
        .unwrap();
    assert_eq!(
        ops.alert_step(b.id, AlertAction::Resolved, "user:lan", t3, None)
            .await
            .unwrap()
            .status,
        AlertStatus::Resolved
    );
}

/// Listings filter by status, severity, rule, domain, unit, entity and time,
/// newest first, and pages walk every alert once.
pub async fn alert_listing_filters_and_pages(store: SharedStore) {
    let ops = ops(&store);
    for i in 0..7 {
        let mut a = new_alert(
            if i % 2 == 0 { "even" } else { "odd" },
            &format!("k{i}"),
            &format!("2024-05-01T0{i}:00:00Z"),
        );
        a.severity = Severity::ALL[i % 4];
        a.admin_unit = Some(if i < 4 { "718" } else { "724" }.into());
        a.domain = Some(if i == 6 { "environment" } else { "water" }.into());
        ops.open_alert(&a).await.unwrap();
    }
    let q = |f: fn(&mut AlertQuery)| {
        let mut q = AlertQuery {
            limit: 100,
            ..AlertQuery::default()
        };
        f(&mut q);
        q
    };
    let keys = |p: panorama_core::Page<crate::Alert>| -> Vec<String> {
        p.items.into_iter().map(|a| a.key).collect()
    };
    let all = keys(ops.alerts(&q(|_| {})).await.unwrap());
    assert_eq!(all, ["k6", "k5", "k4", "k3", "k2", "k1", "k0"]);
    assert_eq!(
        keys(
            ops.alerts(&q(|q| q.rule = Some("odd".into())))
                .await
                .unwrap()
        ),
        ["k5", "k3", "k1"]
    );
    assert_eq!(
        keys(
            ops.alerts(&q(|q| q.min_severity = Some(Severity::High)))
                .await
                .unwrap()
        ),
        ["k6", "k3", "k2"]
    );
    assert_eq!(
        keys(
            ops.alerts(&q(|q| q.admin_units = vec!["724".into()]))
                .await
                .unwrap()
        ),
        ["k6", "k5", "k4"]
    );
    assert_eq!(
        keys(
            ops.alerts(&q(|q| q.domain = Some("environment".into())))
                .await
                .unwrap()
        ),
        ["k6"]
    );
    assert_eq!(
        keys(
            ops.alerts(&q(
                |q| q.entity = Some("urn:ngsi-ld:WaterObserved:k2".into())
            ))
            .await
            .unwrap()
        ),
        ["k2"]
    );
    assert_eq!(
        keys(
            ops.alerts(&q(|q| q.since = Some(t("2024-05-01T05:00:00Z"))))
                .await
                .unwrap()
        ),
        ["k6", "k5"]
    );
    ops.resolve_alert_by_key("even", "k2", "user:lan", t0(), None)
        .await
        .unwrap();
    assert_eq!(
        keys(
            ops.alerts(&q(|q| q.status = vec![AlertStatus::Resolved]))
                .await
                .unwrap()
        ),
        ["k2"]
    );
    assert_eq!(
        ops.alerts(&q(
            |q| q.status = vec![AlertStatus::Open, AlertStatus::Acknowledged]
        ))
        .await
        .unwrap()
        .items
        .len(),
        6
    );
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = ops
            .alerts(&AlertQuery {
                limit: 3,
                cursor: cursor.clone(),
                ..AlertQuery::default()
            })
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|a| a.key));
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(
        invalid_fields(ops.alerts(&q(|q| q.cursor = Some("nope".into()))).await),
        ["cursor"]
    );
}

/// Writers racing to open the same alert open exactly one.
pub async fn deduplication_holds_under_concurrent_writers(store: SharedStore) {
    let ops = ops(&store);
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let ops = ops.clone();
        tasks.push(tokio::spawn(async move {
            ops.open_alert(&new_alert("race", "k", "2024-05-01T00:00:00Z"))
                .await
                .unwrap()
        }));
    }
    let mut created = 0;
    let mut ids = BTreeSet::new();
    for t in tasks {
        let (a, c) = t.await.unwrap();
        created += usize::from(c);
        ids.insert(a.id);
    }
    assert_eq!((created, ids.len()), (1, 1));
    let a = ops.alert(*ids.first().unwrap()).await.unwrap().unwrap();
    assert_eq!(a.occurrences, 8);
}

// --- incidents --------------------------------------------------------------

/// An incident comes back as written with linked alerts and its timeline;
/// updates need the current version.
pub async fn incidents_round_trip_with_versions(store: SharedStore) {
    seed(&store).await;
    let ops = ops(&store);
    let (a1, _) = ops
        .open_alert(&new_alert("water-high", "g1", "2024-05-01T00:00:00Z"))
        .await
        .unwrap();
    let (a2, _) = ops
        .open_alert(&new_alert("water-high", "g2", "2024-05-01T00:00:00Z"))
        .await
        .unwrap();
    let mut new = incident("Ngập cầu Ông Cộ");
    new.alerts = vec![a1.id];
    new.agency = Some("so-tn-mt".into());
    let created = ops
        .create_incident(&new, &[entry("created", "user:lan", t0())])
        .await
        .unwrap();
    assert!(created.id > 0);
    assert_eq!(created.version, 1);
    assert_eq!(created.alerts, [a1.id]);
    assert_eq!(
        Incident {
            id: 0,
            version: 0,
            ..created.clone()
        },
        new
    );
    assert_eq!(
        ops.alert(a1.id).await.unwrap().unwrap().incident,
        Some(created.id)
    );
    assert_eq!(
        ops.alert_steps(a1.id).await.unwrap().last().unwrap().action,
        AlertAction::Linked
    );

    let t1 = t("2024-05-01T00:10:00Z");
    let mut changed = created.clone();
    changed.status = IncidentStatus::Assigned;
    changed.assignee = Some("minh".into());
    changed.updated_at = t1;
    changed.alerts.push(a2.id);
    changed.checklist[0].done = true;
    changed.checklist[0].done_by = Some("user:minh".into());
    let updated = ops
        .update_incident(
            &changed,
            created.version,
            &[entry("assigned", "user:lan", t1)],
        )
        .await
        .unwrap();
    assert_eq!(updated.version, 2);
    assert_eq!(updated.alerts, [a1.id, a2.id]);
    assert_eq!(updated.status, IncidentStatus::Assigned);
    assert!(updated.checklist[0].done);
    assert_eq!(
        ops.incident(created.id).await.unwrap(),
        Some(updated.clone())
    );

    let m = conflict(
        ops.update_incident(&changed, created.version, &[entry("x", "user:lan", t1)])
            .await,
    );
    assert!(m.contains("version"), "{m}");
    let r = ops
        .update_incident(
            &Incident {
                id: 999_999,
                ..changed.clone()
            },
            1,
            &[],
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound { .. })), "{r:?}");

    let timeline = ops.timeline(created.id).await.unwrap();
    assert_eq!(
        timeline
            .iter()
            .map(|e| (e.kind.as_str(), e.by.as_str(), e.at))
            .collect::<Vec<_>>(),
        [("created", "user:lan", t0()), ("assigned", "user:lan", t1)]
    );
    assert!(timeline.iter().all(|e| e.incident == created.id));

    // An alert belongs to one incident at most.
    let mut other = incident("Khác");
    other.alerts = vec![a1.id];
    assert_eq!(
        invalid_fields(ops.create_incident(&other, &[]).await),
        ["alerts[0]"]
    );
    other.alerts = vec![123_456];
    assert_eq!(
        invalid_fields(ops.create_incident(&other, &[]).await),
        ["alerts[0]"]
    );
}

/// Unknown agencies, people, units and domains are refused, naming the field.
pub async fn incident_references_are_checked(store: SharedStore) {
    seed(&store).await;
    let ops = ops(&store);
    let mut bad = incident("Sai tham chiếu");
    bad.agency = Some("so-nope".into());
    bad.assignee = Some("nobody".into());
    bad.admin_unit = Some("999".into());
    bad.domain = Some("nope".into());
    let mut fields = invalid_fields(ops.create_incident(&bad, &[]).await);
    fields.sort();
    assert_eq!(fields, ["admin_unit", "agency", "assignee", "domain"]);
    let mut shape = incident("");
    shape.incident_type = "has space".into();
    shape.location = Some([200.0, 0.0]);
    let mut fields = invalid_fields(ops.create_incident(&shape, &[]).await);
    fields.sort();
    assert_eq!(fields, ["location", "title", "type"]);
    assert!(
        ops.incidents(&IncidentQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .is_empty()
    );
}

/// Listings filter and page; due checks list active incidents whose next
/// check is due, earliest first.
pub async fn incident_listing_and_due_checks(store: SharedStore) {
    seed(&store).await;
    let ops = ops(&store);
    let mut ids = Vec::new();
    for i in 0..5 {
        let mut x = incident(&format!("Sự cố {i}"));
        x.severity = Severity::ALL[i % 4];
        x.admin_unit = Some(if i < 3 { "718" } else { "724" }.into());
        x.incident_type = if i == 4 { "fire" } else { "flood" }.into();
        x.next_check_at = Some(t(&format!("2024-05-01T0{}:00:00Z", 5 - i)));
        if i == 1 {
            x.status = IncidentStatus::Resolved;
        }
        if i == 2 {
            x.agency = Some("so-tn-mt".into());
            x.assignee = Some("minh".into());
        }
        ids.push(ops.create_incident(&x, &[]).await.unwrap().id);
    }
    let list = |q: IncidentQuery| {
        let ops = ops.clone();
        async move {
            ops.incidents(&IncidentQuery { limit: 100, ..q })
                .await
                .unwrap()
                .items
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    let newest_first: Vec<i64> = ids.iter().rev().copied().collect();
    assert_eq!(list(IncidentQuery::default()).await, newest_first);
    assert_eq!(
        list(IncidentQuery {
            status: vec![IncidentStatus::Resolved],
            ..Default::default()
        })
        .await,
        [ids[1]]
    );
    assert_eq!(
        list(IncidentQuery {
            incident_type: Some("fire".into()),
            ..Default::default()
        })
        .await,
        [ids[4]]
    );
    assert_eq!(
        list(IncidentQuery {
            admin_units: vec!["724".into()],
            ..Default::default()
        })
        .await,
        [ids[4], ids[3]]
    );
    assert_eq!(
        list(IncidentQuery {
            assignee: Some("minh".into()),
            agency: Some("so-tn-mt".into()),
            ..Default::default()
        })
        .await,
        [ids[2]]
    );
    assert_eq!(
        list(IncidentQuery {
            min_severity: Some(Severity::High),
            ..Default::default()
        })
        .await,
        [ids[3], ids[2]]
    );
    let page = ops
        .incidents(&IncidentQuery {
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    let rest = ops
        .incidents(&IncidentQuery {
            limit: 10,
            cursor: page.next_cursor,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 3);

    // Checks at 01:00 (i=4), 02:00 (i=3), 03:00 (i=2), 04:00 (i=1, resolved), 05:00 (i=0).
    let due = |at: &str| {
        let ops = ops.clone();
        let at = t(at);
        async move {
            ops.incidents_due(at, 100)
                .await
                .unwrap()
                .into_iter()
                .map(|i| i.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(due("2024-05-01T00:59:59Z").await, Vec::<i64>::new());
    assert_eq!(due("2024-05-01T02:00:00Z").await, [ids[4], ids[3]]);
    assert_eq!(
        due("2024-05-01T09:00:00Z").await,
        [ids[4], ids[3], ids[2], ids[0]],
        "a resolved incident has no SLA check"
    );
}

/// Attachments keep their content and metadata and appear on the timeline.
pub async fn attachments_round_trip(store: SharedStore) {
    seed(&store).await;
    let ops = ops(&store);
    let inc = ops.create_incident(&incident("Có ảnh"), &[]).await.unwrap();
    let content = b"\xff\xd8\xff\xe0 not really a jpeg".to_vec();
    let meta = NewAttachment {
        filename: "ảnh hiện trường.jpg".into(),
        content_type: "image/jpeg".into(),
        sha256: "a".repeat(64),
        uploaded_by: "user:lan".into(),
        uploaded_at: t0(),
    };
    let a = ops
        .add_attachment(
            inc.id,
            &meta,
            &content,
            &entry("attachment", "user:lan", t0()),
        )
        .await
        .unwrap();
    assert_eq!((a.size, a.incident), (content.len() as u64, inc.id));
    let b = ops
        .add_attachment(
            inc.id,
            &meta,
            b"%PDF-1.4",
            &entry("attachment", "user:lan", t0()),
        )
        .await
        .unwrap();
    assert!(b.id != a.id);
    assert_eq!(ops.attachments(inc.id).await.unwrap(), [a.clone(), b]);
    let (got, bytes) = ops.attachment(inc.id, a.id).await.unwrap().unwrap();
    assert_eq!((got, bytes), (a.clone(), content.clone()));
    assert_eq!(ops.attachment(inc.id + 1, a.id).await.unwrap(), None);
    let timeline = ops.timeline(inc.id).await.unwrap();
    assert_eq!(timeline.len(), 2);
    assert_eq!(timeline[0].data["attachment"], a.id);

    let r = ops
        .add_attachment(
            999_999,
            &meta,
            &content,
            &entry("attachment", "user:lan", t0()),
        )
        .await;
    assert!(matches!(r, Err(StoreError::NotFound { .. })), "{r:?}");
    let bad = NewAttachment {
        filename: "../../etc/passwd".into(),
        sha256: "xyz".into(),
        ..meta
    };
    let mut fields = invalid_fields(
        ops.add_attachment(inc.id, &bad, &[], &entry("attachment", "user:lan", t0()))
            .await,
    );
    fields.sort();
    assert_eq!(fields, ["content", "filename", "sha256"]);
}

/// SOP templates round-trip, replace and delete.
pub async fn sop_templates_round_trip(store: SharedStore) {
    let ops = ops(&store);
    let flood = SopTemplate {
        incident_type: "flood".into(),
        name: "Quy trình ứng phó ngập".into(),
        steps: vec![
            "Cảnh báo người dân".into(),
            "Điều động máy bơm".into(),
            "Chặn đường".into(),
            "Báo cáo".into(),
        ],
    };
    let fire = SopTemplate {
        incident_type: "fire".into(),
        name: "Cháy".into(),
        steps: vec!["Gọi 114".into()],
    };
    ops.put_sops(&[flood.clone(), fire.clone()]).await.unwrap();
    assert_eq!(ops.sops().await.unwrap(), [fire.clone(), flood.clone()]);
    let shorter = SopTemplate {
        steps: vec!["Báo cáo".into()],
        ..flood.clone()
    };
    ops.put_sops(std::slice::from_ref(&shorter)).await.unwrap();
    assert_eq!(ops.sop("flood").await.unwrap(), Some(shorter));
    assert!(ops.delete_sop("fire").await.unwrap());
    assert!(!ops.delete_sop("fire").await.unwrap());
    assert_eq!(ops.sop("fire").await.unwrap(), None);
    let bad = SopTemplate {
        steps: vec![],
        ..fire
    };
    assert_eq!(
        invalid_fields(ops.put_sops(&[flood, bad]).await),
        ["[1].steps"]
    );
}

// --- notifications ----------------------------------------------------------

/// Deliveries are due when queued, wait for their retry time after a failed
/// attempt, and log every attempt.
pub async fn deliveries_queue_retry_and_log(store: SharedStore) {
    let ops = ops(&store);
    let d = ops
        .enqueue_deliveries(&[NewDelivery {
            channel: "duty-webhook".into(),
            kind: "webhook".into(),
            target: "http://127.0.0.1:9/hook".into(),
            event: "alert.opened".into(),
            payload: json!({"alert": {"id": 1}}),
            at: t0(),
        }])
        .await
        .unwrap()
        .remove(0);
    assert_eq!((d.status, d.attempts), (DeliveryStatus::Pending, 0));
    assert_eq!(
        ops.due_deliveries(t0(), 10).await.unwrap(),
        std::slice::from_ref(&d)
    );

    let retry_at = t("2024-05-01T00:00:10Z");
    let after = ops
        .record_attempt(
            &DeliveryAttempt {
                delivery: d.id,
                attempt: 1,
                at: t0(),
                ok: false,
                code: Some(503),
                error: Some("HTTP 503".into()),
                duration_ms: 12,
            },
            DeliveryOutcome::Retry(retry_at),
        )
        .await
        .unwrap();
    assert_eq!(after.attempts, 1);
    assert_eq!(after.next_attempt_at, Some(retry_at));
    assert_eq!(after.last_error.as_deref(), Some("HTTP 503"));
    assert!(
        ops.due_deliveries(t("2024-05-01T00:00:09Z"), 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(ops.due_deliveries(retry_at, 10).await.unwrap().len(), 1);
    let done = ops
        .record_attempt(
            &DeliveryAttempt {
                delivery: d.id,
                attempt: 2,
                at: retry_at,
                ok: true,
                code: Some(200),
                error: None,
                duration_ms: 5,
            },
            DeliveryOutcome::Delivered,
        )
        .await
        .unwrap();
    assert_eq!(done.status, DeliveryStatus::Delivered);
    assert_eq!(done.delivered_at, Some(retry_at));
    assert!(ops.due_deliveries(retry_at, 10).await.unwrap().is_empty());
    let attempts = ops.delivery_attempts(d.id).await.unwrap();
    assert_eq!(
        attempts
            .iter()
            .map(|a| (a.attempt, a.ok, a.code))
            .collect::<Vec<_>>(),
        [(1, false, Some(503)), (2, true, Some(200))]
    );
    conflict(
        ops.record_attempt(
            &DeliveryAttempt {
                attempt: 3,
                ..attempts[1].clone()
            },
            DeliveryOutcome::Delivered,
        )
        .await,
    );
    let log = ops
        .deliveries(&DeliveryQuery {
            status: Some(DeliveryStatus::Delivered),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(log.items, [done]);
    assert!(
        ops.deliveries(&DeliveryQuery {
            status: Some(DeliveryStatus::Failed),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap()
        .items
        .is_empty()
    );
}

/// In-console notifications belong to one user; read marks stick.
pub async fn notifications_per_user(store: SharedStore) {
    seed(&store).await;
    let ops = ops(&store);
    let n = |user: &str, title: &str| NewNotification {
        user: user.into(),
        at: t0(),
        event: "alert.opened".into(),
        title: title.into(),
        body: None,
        link: Some("/api/v1/alerts/1".into()),
        severity: Some(Severity::High),
    };
    ops.add_notifications(&[n("lan", "một"), n("lan", "hai"), n("minh", "ba")])
        .await
        .unwrap();
    assert_eq!(
        invalid_fields(
            ops.add_notifications(&[n("lan", "x"), n("nobody", "y")])
                .await
        ),
        ["[1].user"]
    );
    let lan = ops.notifications("lan", false, None, 10).await.unwrap();
    assert_eq!(
        lan.items
            .iter()
            .map(|n| n.title.as_str())
            .collect::<Vec<_>>(),
        ["hai", "một"]
    );
    let first = lan.items[1].id;
    let t1 = t("2024-05-01T01:00:00Z");
    assert_eq!(
        ops.mark_notifications_read("lan", Some(&[first]), t1)
            .await
            .unwrap(),
        1
    );
    // Another user's notification cannot be marked.
    let minh = ops.notifications("minh", true, None, 10).await.unwrap();
    assert_eq!(
        ops.mark_notifications_read("lan", Some(&[minh.items[0].id]), t1)
            .await
            .unwrap(),
        0
    );
    let unread = ops.notifications("lan", true, None, 10).await.unwrap();
    assert_eq!(unread.items.len(), 1);
    assert_eq!(
        ops.mark_notifications_read("lan", None, t1).await.unwrap(),
        1
    );
    assert!(
        ops.notifications("lan", true, None, 10)
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let all = ops.notifications("lan", false, None, 1).await.unwrap();
    assert_eq!(all.items.len(), 1);
    assert!(all.next_cursor.is_some());
    assert_eq!(all.items[0].read_at, Some(t1));
}
