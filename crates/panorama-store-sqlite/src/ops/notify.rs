//! Notification deliveries (a durable queue with an attempt log) and
//! in-console notifications.

use super::{check_text, cursor, limit, page, severity_from};
use crate::SqliteStore;
use crate::codec::{json, json_from, opt_ts_from, parsed, ts, ts_from};
use crate::error::sql_ctx;
use crate::reference::{check, item};
use crate::refs::{Ref, Refs};
use panorama_core::error::check_name;
use panorama_core::{FieldError, Page, Timestamp};
use panorama_store::{
    Delivery, DeliveryAttempt, DeliveryOutcome, DeliveryQuery, DeliveryStatus, NewDelivery,
    NewNotification, Notification, StoreError, StoreResult,
};

const DELIVERY_COLUMNS: &str = "SELECT id, channel, kind, target, event, payload, status,
    attempts, next_attempt_at, created_at, delivered_at, last_error FROM deliveries";

type DeliveryRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    i64,
    Option<i64>,
    i64,
    Option<i64>,
    Option<String>,
);

type AttemptRow = (i64, i64, bool, Option<i64>, Option<String>, i64);

fn delivery_from(r: DeliveryRow) -> StoreResult<Delivery> {
    let (
        id,
        channel,
        kind,
        target,
        event,
        payload,
        status,
        attempts,
        next,
        created,
        delivered,
        err,
    ) = r;
    Ok(Delivery {
        id,
        channel,
        kind,
        target,
        event,
        payload: json_from("delivery payload", &payload)?,
        status: parsed("delivery status", &status, DeliveryStatus::parse)?,
        attempts: u32::try_from(attempts).unwrap_or(0),
        next_attempt_at: opt_ts_from(next)?,
        created_at: ts_from(created)?,
        delivered_at: opt_ts_from(delivered)?,
        last_error: err,
    })
}

type NotificationRow = (
    i64,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
);

fn notification_from(r: NotificationRow) -> StoreResult<Notification> {
    let (id, user, at, event, title, body, link, severity, read_at) = r;
    Ok(Notification {
        id,
        user,
        at: ts_from(at)?,
        event,
        title,
        body,
        link,
        severity: severity.map(severity_from).transpose()?,
        read_at: opt_ts_from(read_at)?,
    })
}

impl SqliteStore {
    pub(crate) async fn enqueue_deliveries_impl(
        &self,
        ds: &[NewDelivery],
    ) -> StoreResult<Vec<Delivery>> {
        let mut errs = Vec::new();
        for (i, d) in ds.iter().enumerate() {
            for (field, v) in [
                ("channel", &d.channel),
                ("kind", &d.kind),
                ("event", &d.event),
            ] {
                if v.is_empty() || v.len() > 200 {
                    errs.push(FieldError::new(
                        format!("{}.{field}", item(i)),
                        "must be 1–200 characters",
                    ));
                }
            }
            if d.target.len() > 2000 {
                errs.push(FieldError::new(
                    format!("{}.target", item(i)),
                    "must be at most 2000 characters",
                ));
            }
        }
        check(errs)?;
        if ds.is_empty() {
            return Ok(Vec::new());
        }
        let mut w = self.begin_write().await?;
        let mut ids = Vec::with_capacity(ds.len());
        for d in ds {
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO deliveries (channel, kind, target, event, payload, status, attempts,
                   next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?) RETURNING id",
            )
            .bind(&d.channel)
            .bind(&d.kind)
            .bind(&d.target)
            .bind(&d.event)
            .bind(json("delivery payload", &d.payload)?)
            .bind(ts(d.at))
            .bind(ts(d.at))
            .fetch_one(&mut *w.tx)
            .await
            .map_err(sql_ctx("queueing a delivery"))?;
            ids.push(id);
        }
        w.commit().await?;
        Ok(ds
            .iter()
            .zip(ids)
            .map(|(d, id)| Delivery {
                id,
                channel: d.channel.clone(),
                kind: d.kind.clone(),
                target: d.target.clone(),
                event: d.event.clone(),
                payload: d.payload.clone(),
                status: DeliveryStatus::Pending,
                attempts: 0,
                next_attempt_at: Some(d.at),
                created_at: d.at,
                delivered_at: None,
                last_error: None,
            })
            .collect())
    }

    pub(crate) async fn due_deliveries_impl(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Delivery>> {
        let rows: Vec<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{DELIVERY_COLUMNS} WHERE status = 'pending' AND next_attempt_at <= ?
             ORDER BY next_attempt_at, id LIMIT ?"
        )))
        .bind(ts(now))
        .bind(i64::try_from(limit.clamp(1, 10_000)).unwrap_or(1))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading due deliveries"))?;
        rows.into_iter().map(delivery_from).collect()
    }

    async fn read_delivery(
        conn: &mut sqlx::SqliteConnection,
        id: i64,
    ) -> StoreResult<Option<Delivery>> {
        let row: Option<DeliveryRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{DELIVERY_COLUMNS} WHERE id = ?"
        )))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .map_err(sql_ctx("reading a delivery"))?;
        row.map(delivery_from).transpose()
    }

    pub(crate) async fn record_attempt_impl(
        &self,
        a: &DeliveryAttempt,
        outcome: DeliveryOutcome,
    ) -> StoreResult<Delivery> {
        let error: Option<String> = a.error.as_deref().map(|e| e.chars().take(2000).collect());
        let mut w = self.begin_write().await?;
        let Some(d) = Self::read_delivery(&mut w.tx, a.delivery).await? else {
            return Err(StoreError::NotFound {
                what: "delivery",
                key: a.delivery.to_string(),
            });
        };
        if d.status != DeliveryStatus::Pending {
            return Err(StoreError::Conflict(format!(
                "delivery {} is already {}",
                d.id,
                d.status.as_str()
            )));
        }
        sqlx::query(
            "INSERT INTO delivery_attempts (delivery, attempt, at, ok, code, error, duration_ms)
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(a.delivery)
        .bind(i64::from(a.attempt))
        .bind(ts(a.at))
        .bind(a.ok)
        .bind(a.code.map(i64::from))
        .bind(&error)
        .bind(i64::try_from(a.duration_ms).unwrap_or(i64::MAX))
        .execute(&mut *w.tx)
        .await
        .map_err(|e| {
            if crate::error::is_unique_violation(&e) {
                StoreError::Conflict(format!(
                    "attempt {} of delivery {} is already logged",
                    a.attempt, a.delivery
                ))
            } else {
                crate::error::sql("logging a delivery attempt", e)
            }
        })?;
        let (status, next, delivered) = match outcome {
            DeliveryOutcome::Delivered => (DeliveryStatus::Delivered, None, Some(ts(a.at))),
            DeliveryOutcome::Retry(at) => (DeliveryStatus::Pending, Some(ts(at)), None),
            DeliveryOutcome::Failed => (DeliveryStatus::Failed, None, None),
        };
        sqlx::query(
            "UPDATE deliveries SET status = ?, attempts = attempts + 1, next_attempt_at = ?,
               delivered_at = ?, last_error = COALESCE(?, last_error) WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(next)
        .bind(delivered)
        .bind(if a.ok { None } else { error })
        .bind(a.delivery)
        .execute(&mut *w.tx)
        .await
        .map_err(sql_ctx("updating a delivery"))?;
        let d = Self::read_delivery(&mut w.tx, a.delivery)
            .await?
            .ok_or_else(|| StoreError::Backend("a delivery vanished".into()))?;
        w.commit().await?;
        Ok(d)
    }

    pub(crate) async fn deliveries_impl(&self, q: &DeliveryQuery) -> StoreResult<Page<Delivery>> {
        let limit = limit(q.limit);
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(DELIVERY_COLUMNS);
        qb.push(" WHERE 1 = 1");
        if let Some(s) = q.status {
            qb.push(" AND status = ").push_bind(s.as_str());
        }
        if let Some(c) = &q.channel {
            qb.push(" AND channel = ").push_bind(c.clone());
        }
        if let Some(c) = cursor(q.cursor.as_deref())? {
            qb.push(" AND id < ").push_bind(c);
        }
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
        let rows: Vec<DeliveryRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading deliveries"))?;
        let items = rows
            .into_iter()
            .map(delivery_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(items, limit, |d| d.id))
    }

    pub(crate) async fn delivery_attempts_impl(
        &self,
        delivery: i64,
    ) -> StoreResult<Vec<DeliveryAttempt>> {
        let rows: Vec<AttemptRow> = sqlx::query_as(
            "SELECT attempt, at, ok, code, error, duration_ms FROM delivery_attempts
             WHERE delivery = ? ORDER BY attempt",
        )
        .bind(delivery)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading delivery attempts"))?;
        rows.into_iter()
            .map(|(attempt, at, ok, code, error, ms)| {
                Ok(DeliveryAttempt {
                    delivery,
                    attempt: u32::try_from(attempt).unwrap_or(0),
                    at: ts_from(at)?,
                    ok,
                    code: code.and_then(|c| u16::try_from(c).ok()),
                    error,
                    duration_ms: u64::try_from(ms).unwrap_or(0),
                })
            })
            .collect()
    }

    pub(crate) async fn add_notifications_impl(&self, ns: &[NewNotification]) -> StoreResult<()> {
        let mut errs = Vec::new();
        for (i, n) in ns.iter().enumerate() {
            errs.extend(
                check_name("title", &n.title)
                    .err()
                    .map(|e| e.under(&item(i))),
            );
            let mut e = Vec::new();
            check_text(&mut e, "body", n.body.as_deref());
            errs.extend(e.into_iter().map(|e| e.under(&item(i))));
        }
        check(errs)?;
        if ns.is_empty() {
            return Ok(());
        }
        let mut w = self.begin_write().await?;
        let mut refs = Refs::default();
        let mut errs = Vec::new();
        for (i, n) in ns.iter().enumerate() {
            if !refs.exists(&mut w.tx, Ref::User, &n.user).await? {
                errs.push(FieldError::new(
                    format!("{}.user", item(i)),
                    Ref::User.unknown(&n.user),
                ));
            }
        }
        check(errs)?;
        for n in ns {
            sqlx::query(
                "INSERT INTO notifications (username, at, event, title, body, link, severity)
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&n.user)
            .bind(ts(n.at))
            .bind(&n.event)
            .bind(&n.title)
            .bind(&n.body)
            .bind(&n.link)
            .bind(n.severity.map(|s| s.rank()))
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("writing a notification"))?;
        }
        w.commit().await
    }

    pub(crate) async fn notifications_impl(
        &self,
        user: &str,
        unread_only: bool,
        cur: Option<&str>,
        limit_n: usize,
    ) -> StoreResult<Page<Notification>> {
        let limit = limit(limit_n);
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT id, username, at, event, title, body, link, severity, read_at
             FROM notifications WHERE username = ",
        );
        qb.push_bind(user.to_string());
        if unread_only {
            qb.push(" AND read_at IS NULL");
        }
        if let Some(c) = cursor(cur)? {
            qb.push(" AND id < ").push_bind(c);
        }
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
        let rows: Vec<NotificationRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading notifications"))?;
        let items = rows
            .into_iter()
            .map(notification_from)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(page(items, limit, |n| n.id))
    }

    pub(crate) async fn mark_notifications_read_impl(
        &self,
        user: &str,
        ids: Option<&[i64]>,
        at: Timestamp,
    ) -> StoreResult<u64> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new("UPDATE notifications SET read_at = ");
        qb.push_bind(ts(at))
            .push(" WHERE read_at IS NULL AND username = ")
            .push_bind(user.to_string());
        if let Some(ids) = ids {
            if ids.is_empty() {
                return Ok(0);
            }
            qb.push(" AND id IN (");
            let mut sep = qb.separated(", ");
            for id in ids {
                sep.push_bind(*id);
            }
            qb.push(")");
        }
        let mut w = self.begin_write().await?;
        let n = qb
            .build()
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("marking notifications read"))?
            .rows_affected();
        w.commit().await?;
        Ok(n)
    }
}
