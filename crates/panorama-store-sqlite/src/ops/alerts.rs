//! Alerts and their steps. One unresolved alert per rule and key is
//! enforced by a partial unique index, so deduplication survives restarts.

use super::{check_text, cursor, limit, page, severity_from};
use crate::SqliteStore;
use crate::codec::{count_from, json, json_from, opt_ts_from, parsed, ts, ts_from};
use crate::error::sql_ctx;
use crate::reference::check;
use panorama_core::error::check_name;
use panorama_core::{FieldError, Invalid, Page, Timestamp};
use panorama_store::{
    Alert, AlertAction, AlertQuery, AlertStatus, AlertStep, NewAlert, StoreError, StoreResult,
};
use sqlx::SqliteConnection;

pub(crate) const ALERT_COLUMNS: &str = "SELECT id, rule, key, severity, status, title, domain,
    admin_unit, entity, entity_type, attribute, source, indicator, lon, lat, value, last_value,
    data, fired_at, opened_at, last_seen_at, occurrences, acknowledged_at, acknowledged_by,
    resolved_at, resolved_by, resolution, incident FROM alerts";

#[derive(sqlx::FromRow)]
pub(crate) struct AlertRow {
    id: i64,
    rule: String,
    key: String,
    severity: i64,
    status: String,
    title: String,
    domain: Option<String>,
    admin_unit: Option<String>,
    entity: Option<String>,
    entity_type: Option<String>,
    attribute: Option<String>,
    source: Option<String>,
    indicator: Option<String>,
    lon: Option<f64>,
    lat: Option<f64>,
    value: Option<f64>,
    last_value: Option<f64>,
    data: String,
    fired_at: i64,
    opened_at: i64,
    last_seen_at: i64,
    occurrences: i64,
    acknowledged_at: Option<i64>,
    acknowledged_by: Option<String>,
    resolved_at: Option<i64>,
    resolved_by: Option<String>,
    resolution: Option<String>,
    incident: Option<i64>,
}

impl AlertRow {
    pub(crate) fn into_alert(self) -> StoreResult<Alert> {
        Ok(Alert {
            id: self.id,
            severity: severity_from(self.severity)?,
            status: parsed("alert status", &self.status, AlertStatus::parse)?,
            location: self.lon.zip(self.lat).map(|(x, y)| [x, y]),
            data: json_from("alert data", &self.data)?,
            fired_at: ts_from(self.fired_at)?,
            opened_at: ts_from(self.opened_at)?,
            last_seen_at: ts_from(self.last_seen_at)?,
            occurrences: count_from(self.occurrences),
            acknowledged_at: opt_ts_from(self.acknowledged_at)?,
            resolved_at: opt_ts_from(self.resolved_at)?,
            rule: self.rule,
            key: self.key,
            title: self.title,
            domain: self.domain,
            admin_unit: self.admin_unit,
            entity: self.entity,
            entity_type: self.entity_type,
            attribute: self.attribute,
            source: self.source,
            indicator: self.indicator,
            value: self.value,
            last_value: self.last_value,
            acknowledged_by: self.acknowledged_by,
            resolved_by: self.resolved_by,
            resolution: self.resolution,
            incident: self.incident,
        })
    }
}

pub(crate) async fn read_alert(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<Alert>> {
    let row: Option<AlertRow> =
        sqlx::query_as(sqlx::AssertSqlSafe(format!("{ALERT_COLUMNS} WHERE id = ?")))
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .map_err(sql_ctx("reading an alert"))?;
    row.map(AlertRow::into_alert).transpose()
}

pub(crate) async fn add_step(
    conn: &mut SqliteConnection,
    alert: i64,
    action: AlertAction,
    by: &str,
    at: Timestamp,
    comment: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO alert_steps (alert, action, actor, at, comment) VALUES (?, ?, ?, ?, ?)",
    )
    .bind(alert)
    .bind(action.as_str())
    .bind(by)
    .bind(ts(at))
    .bind(comment)
    .execute(&mut *conn)
    .await
    .map_err(sql_ctx("writing an alert step"))?;
    Ok(())
}

fn check_actor(errs: &mut Vec<FieldError>, by: &str) {
    if by.is_empty() || by.len() > 200 {
        errs.push(FieldError::new("by", "must be 1–200 characters"));
    }
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound {
        what: "alert",
        key: id.to_string(),
    }
}

impl SqliteStore {
    pub(crate) async fn open_alert_impl(&self, a: &NewAlert) -> StoreResult<(Alert, bool)> {
        let mut errs = Vec::new();
        errs.extend(check_name("title", &a.title).err());
        if a.rule.is_empty() || a.key.is_empty() || a.key.len() > 1000 {
            errs.push(FieldError::new(
                "key",
                "rule and key must be given (key at most 1000 bytes)",
            ));
        }
        if a.value.is_some_and(|v| !v.is_finite()) {
            errs.push(FieldError::new("value", "must be a finite number"));
        }
        check(errs)?;
        let data = json("alert data", &a.data)?;
        let mut w = self.begin_write().await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM alerts WHERE rule = ? AND key = ? AND status <> 'resolved'",
        )
        .bind(&a.rule)
        .bind(&a.key)
        .fetch_optional(&mut *w.tx)
        .await
        .map_err(sql_ctx("reading alerts"))?;
        let (id, created) = match existing {
            Some(id) => {
                sqlx::query(
                    "UPDATE alerts SET occurrences = occurrences + 1,
                       last_value = COALESCE(?, last_value),
                       last_seen_at = MAX(last_seen_at, ?) WHERE id = ?",
                )
                .bind(a.value)
                .bind(ts(a.fired_at))
                .bind(id)
                .execute(&mut *w.tx)
                .await
                .map_err(sql_ctx("repeating an alert"))?;
                (id, false)
            }
            None => {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO alerts (rule, key, severity, status, title, domain, admin_unit,
                       entity, entity_type, attribute, source, indicator, lon, lat, value,
                       last_value, data, fired_at, opened_at, last_seen_at, occurrences)
                     VALUES (?, ?, ?, 'open', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                     RETURNING id",
                )
                .bind(&a.rule)
                .bind(&a.key)
                .bind(a.severity.rank())
                .bind(&a.title)
                .bind(&a.domain)
                .bind(&a.admin_unit)
                .bind(&a.entity)
                .bind(&a.entity_type)
                .bind(&a.attribute)
                .bind(&a.source)
                .bind(&a.indicator)
                .bind(a.location.map(|p| p[0]))
                .bind(a.location.map(|p| p[1]))
                .bind(a.value)
                .bind(a.value)
                .bind(&data)
                .bind(ts(a.fired_at))
                .bind(ts(a.at))
                .bind(ts(a.fired_at))
                .fetch_one(&mut *w.tx)
                .await
                .map_err(sql_ctx("opening an alert"))?;
                add_step(
                    &mut w.tx,
                    id,
                    AlertAction::Opened,
                    &format!("rule:{}", a.rule),
                    a.at,
                    None,
                )
                .await?;
                (id, true)
            }
        };
        let alert = read_alert(&mut w.tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        w.commit().await?;
        Ok((alert, created))
    }

    pub(crate) async fn alert_impl(&self, id: i64) -> StoreResult<Option<Alert>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(sql_ctx("reading an alert"))?;
        read_alert(&mut conn, id).await
    }

    pub(crate) async fn alerts_impl(&self, q: &AlertQuery) -> StoreResult<Page<Alert>> {
        let limit = limit(q.limit);
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(ALERT_COLUMNS);
        qb.push(" WHERE 1 = 1");
        if !q.status.is_empty() {
            qb.push(" AND status IN (");
            let mut sep = qb.separated(", ");
            for s in &q.status {
                sep.push_bind(s.as_str());
            }
            qb.push(")");
        }
        if let Some(s) = q.min_severity {
            qb.push(" AND severity >= ").push_bind(s.rank());
        }
        if let Some(r) = &q.rule {
            qb.push(" AND rule = ").push_bind(r.clone());
        }
        if let Some(d) = &q.domain {
            qb.push(" AND domain = ").push_bind(d.clone());
        }
        if !q.admin_units.is_empty() {
            qb.push(" AND admin_unit IN (");
            let mut sep = qb.separated(", ");
            for u in &q.admin_units {
                sep.push_bind(u.clone());
            }
            qb.push(")");
        }
        if let Some(e) = &q.entity {
            qb.push(" AND entity = ").push_bind(e.clone());
        }
        if let Some(t) = q.since {
            qb.push(" AND opened_at >= ").push_bind(ts(t));
        }
        if let Some(c) = cursor(q.cursor.as_deref())? {
            qb.push(" AND id < ").push_bind(c);
        }
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
        let rows: Vec<AlertRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading alerts"))?;
        let items = rows
            .into_iter()
            .map(AlertRow::into_alert)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(items, limit, |a| a.id))
    }

    pub(crate) async fn alert_step_impl(
        &self,
        id: i64,
        action: AlertAction,
        by: &str,
        at: Timestamp,
        comment: Option<&str>,
    ) -> StoreResult<Alert> {
        let mut errs = Vec::new();
        check_actor(&mut errs, by);
        check_text(&mut errs, "comment", comment);
        match action {
            AlertAction::Commented if comment.is_none_or(|c| c.trim().is_empty()) => {
                errs.push(FieldError::new("comment", "must not be empty"));
            }
            AlertAction::Opened | AlertAction::Linked => errs.push(FieldError::new(
                "action",
                "must be acknowledged, resolved or commented",
            )),
            _ => {}
        }
        check(errs)?;
        let mut w = self.begin_write().await?;
        let alert = read_alert(&mut w.tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        let refuse = |what: &str| {
            StoreError::Conflict(format!("alert {id} is {}; {what}", alert.status.as_str()))
        };
        match action {
            AlertAction::Acknowledged => {
                if alert.status != AlertStatus::Open {
                    return Err(refuse("only an open alert can be acknowledged"));
                }
                sqlx::query(
                    "UPDATE alerts SET status = 'acknowledged', acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
                )
                .bind(ts(at))
                .bind(by)
                .bind(id)
                .execute(&mut *w.tx)
                .await
                .map_err(sql_ctx("acknowledging an alert"))?;
            }
            AlertAction::Resolved => {
                if alert.status == AlertStatus::Resolved {
                    return Err(refuse("it cannot be resolved again"));
                }
                resolve(&mut w.tx, id, by, at, comment).await?;
            }
            _ => {}
        }
        add_step(&mut w.tx, id, action, by, at, comment).await?;
        let alert = read_alert(&mut w.tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        w.commit().await?;
        Ok(alert)
    }

    pub(crate) async fn resolve_alert_by_key_impl(
        &self,
        rule: &str,
        key: &str,
        by: &str,
        at: Timestamp,
        comment: Option<&str>,
    ) -> StoreResult<Option<Alert>> {
        let mut w = self.begin_write().await?;
        let id: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM alerts WHERE rule = ? AND key = ? AND status <> 'resolved'",
        )
        .bind(rule)
        .bind(key)
        .fetch_optional(&mut *w.tx)
        .await
        .map_err(sql_ctx("reading alerts"))?;
        let Some(id) = id else {
            return Ok(None);
        };
        resolve(&mut w.tx, id, by, at, comment).await?;
        add_step(&mut w.tx, id, AlertAction::Resolved, by, at, comment).await?;
        let alert = read_alert(&mut w.tx, id).await?;
        w.commit().await?;
        Ok(alert)
    }

    pub(crate) async fn alert_steps_impl(&self, id: i64) -> StoreResult<Vec<AlertStep>> {
        let rows: Vec<(String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT action, actor, at, comment FROM alert_steps WHERE alert = ? ORDER BY id",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading alert steps"))?;
        rows.into_iter()
            .map(|(action, by, at, comment)| {
                Ok(AlertStep {
                    alert: id,
                    action: parsed("alert action", &action, AlertAction::parse)?,
                    by,
                    at: ts_from(at)?,
                    comment,
                })
            })
            .collect()
    }
}

async fn resolve(
    conn: &mut SqliteConnection,
    id: i64,
    by: &str,
    at: Timestamp,
    comment: Option<&str>,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE alerts SET status = 'resolved', resolved_at = ?, resolved_by = ?, resolution = ? WHERE id = ?",
    )
    .bind(ts(at))
    .bind(by)
    .bind(comment)
    .bind(id)
    .execute(&mut *conn)
    .await
    .map_err(sql_ctx("resolving an alert"))?;
    Ok(())
}

/// An Invalid error for one alert id of a list.
pub(crate) fn unknown_alert(field: String, id: i64) -> Invalid {
    Invalid::one(field, format!("unknown alert {id}"))
}
