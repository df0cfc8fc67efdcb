//! Incidents, their timeline and attachments. Writes are compare-and-set
//! on the incident's version, so an SLA escalation and an operator's change
//! never overwrite each other silently.

use super::alerts::{add_step, unknown_alert};
use super::{check_text, cursor, limit, page, severity_from};
use crate::SqliteStore;
use crate::codec::{json, json_from, opt_ts_from, parsed, ts, ts_from};
use crate::error::sql_ctx;
use crate::reference::check;
use crate::refs::{Ref, Refs};
use panorama_core::error::{check_code, check_name};
use panorama_core::{FieldError, Page, Timestamp};
use panorama_store::{
    AlertAction, Attachment, Incident, IncidentQuery, IncidentStatus, NewAttachment,
    NewTimelineEntry, StoreError, StoreResult, TimelineEntry,
};
use sqlx::SqliteConnection;
use std::collections::HashMap;
use std::path::PathBuf;

/// Directory of attachment contents in the data dir.
pub(crate) const ATTACHMENTS_DIR: &str = "attachments";
/// Largest attachment the store accepts (the service sets a lower limit).
const MAX_ATTACHMENT_BYTES: usize = 256 * 1024 * 1024;

const INCIDENT_COLUMNS: &str = "SELECT id, title, type, severity, status, description, domain,
    admin_unit, lon, lat, agency, assignee, origin, origin_ref, created_at, created_by,
    updated_at, respond_by, resolve_by, responded_at, resolved_at, closed_at, escalation_level,
    next_check_at, checklist, version FROM incidents";

#[derive(sqlx::FromRow)]
struct IncidentRow {
    id: i64,
    title: String,
    #[sqlx(rename = "type")]
    incident_type: String,
    severity: i64,
    status: String,
    description: Option<String>,
    domain: Option<String>,
    admin_unit: Option<String>,
    lon: Option<f64>,
    lat: Option<f64>,
    agency: Option<String>,
    assignee: Option<String>,
    origin: String,
    origin_ref: Option<String>,
    created_at: i64,
    created_by: String,
    updated_at: i64,
    respond_by: Option<i64>,
    resolve_by: Option<i64>,
    responded_at: Option<i64>,
    resolved_at: Option<i64>,
    closed_at: Option<i64>,
    escalation_level: i64,
    next_check_at: Option<i64>,
    checklist: String,
    version: i64,
}

impl IncidentRow {
    fn into_incident(self, alerts: Vec<i64>) -> StoreResult<Incident> {
        Ok(Incident {
            id: self.id,
            severity: severity_from(self.severity)?,
            status: parsed("incident status", &self.status, IncidentStatus::parse)?,
            location: self.lon.zip(self.lat).map(|(x, y)| [x, y]),
            created_at: ts_from(self.created_at)?,
            updated_at: ts_from(self.updated_at)?,
            respond_by: opt_ts_from(self.respond_by)?,
            resolve_by: opt_ts_from(self.resolve_by)?,
            responded_at: opt_ts_from(self.responded_at)?,
            resolved_at: opt_ts_from(self.resolved_at)?,
            closed_at: opt_ts_from(self.closed_at)?,
            next_check_at: opt_ts_from(self.next_check_at)?,
            escalation_level: u32::try_from(self.escalation_level).unwrap_or(0),
            checklist: json_from("incident checklist", &self.checklist)?,
            title: self.title,
            incident_type: self.incident_type,
            description: self.description,
            domain: self.domain,
            admin_unit: self.admin_unit,
            agency: self.agency,
            assignee: self.assignee,
            origin: self.origin,
            origin_ref: self.origin_ref,
            created_by: self.created_by,
            alerts,
            version: self.version,
        })
    }
}

fn not_found(id: i64) -> StoreError {
    StoreError::NotFound {
        what: "incident",
        key: id.to_string(),
    }
}

async fn read_incident(conn: &mut SqliteConnection, id: i64) -> StoreResult<Option<Incident>> {
    let row: Option<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "{INCIDENT_COLUMNS} WHERE id = ?"
    )))
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .map_err(sql_ctx("reading an incident"))?;
    let Some(row) = row else {
        return Ok(None);
    };
    let alerts: Vec<i64> =
        sqlx::query_scalar("SELECT id FROM alerts WHERE incident = ? ORDER BY id")
            .bind(id)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql_ctx("reading linked alerts"))?;
    row.into_incident(alerts).map(Some)
}

fn validate(i: &Incident) -> Vec<FieldError> {
    let mut errs = Vec::new();
    errs.extend(check_name("title", &i.title).err());
    errs.extend(check_code("type", &i.incident_type).err());
    check_text(&mut errs, "description", i.description.as_deref());
    for (field, v) in [
        ("domain", &i.domain),
        ("admin_unit", &i.admin_unit),
        ("agency", &i.agency),
    ] {
        if let Some(v) = v {
            errs.extend(check_code(field, v).err());
        }
    }
    if let Some([lon, lat]) = i.location
        && (!(-180.0..=180.0).contains(&lon) || !(-90.0..=90.0).contains(&lat))
    {
        errs.push(FieldError::new(
            "location",
            "must be [longitude, latitude] within -180..180 / -90..90",
        ));
    }
    if i.origin.is_empty() || i.origin.len() > 64 {
        errs.push(FieldError::new("origin", "must be 1–64 characters"));
    }
    if i.checklist.len() > 100 {
        errs.push(FieldError::new("checklist", "at most 100 steps"));
    }
    for (n, c) in i.checklist.iter().enumerate() {
        errs.extend(check_name(&format!("checklist[{n}].step"), &c.step).err());
    }
    if i.alerts.len() > 1000 {
        errs.push(FieldError::new("alerts", "at most 1000 linked alerts"));
    }
    errs
}

async fn add_entries(
    conn: &mut SqliteConnection,
    incident: i64,
    entries: &[NewTimelineEntry],
) -> StoreResult<()> {
    for e in entries {
        sqlx::query(
            "INSERT INTO incident_timeline (incident, at, actor, kind, text, data) VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(incident)
        .bind(ts(e.at))
        .bind(&e.by)
        .bind(&e.kind)
        .bind(&e.text)
        .bind(json("timeline data", &e.data)?)
        .execute(&mut *conn)
        .await
        .map_err(sql_ctx("writing the incident timeline"))?;
    }
    Ok(())
}

fn check_entries(errs: &mut Vec<FieldError>, entries: &[NewTimelineEntry]) {
    for (n, e) in entries.iter().enumerate() {
        if e.kind.is_empty() || e.kind.len() > 64 || e.by.is_empty() || e.by.len() > 200 {
            errs.push(FieldError::new(
                format!("timeline[{n}]"),
                "kind (1–64) and by (1–200) must be given",
            ));
        }
        check_text(errs, &format!("timeline[{n}].text"), e.text.as_deref());
    }
}

impl SqliteStore {
    /// Creates (`expected` None) or updates an incident, appending timeline
    /// entries and linking newly listed alerts, in one transaction.
    pub(crate) async fn write_incident(
        &self,
        i: &Incident,
        expected: Option<i64>,
        entries: &[NewTimelineEntry],
    ) -> StoreResult<Incident> {
        let mut errs = validate(i);
        check_entries(&mut errs, entries);
        check(errs)?;
        let mut w = self.begin_write().await?;
        if let Some(v) = expected {
            let stored: Option<i64> =
                sqlx::query_scalar("SELECT version FROM incidents WHERE id = ?")
                    .bind(i.id)
                    .fetch_optional(&mut *w.tx)
                    .await
                    .map_err(sql_ctx("reading an incident"))?;
            match stored {
                None => return Err(not_found(i.id)),
                Some(s) if s != v => {
                    return Err(StoreError::Conflict(format!(
                        "incident {} was changed meanwhile (version {s}, expected {v}); reload it and try again",
                        i.id
                    )));
                }
                Some(_) => {}
            }
        }
        let mut refs = Refs::default();
        let mut errs = Vec::new();
        for (field, r, v) in [
            ("domain", Ref::Domain, &i.domain),
            ("admin_unit", Ref::AdminUnit, &i.admin_unit),
            ("agency", Ref::Agency, &i.agency),
            ("assignee", Ref::User, &i.assignee),
        ] {
            if let Some(v) = v
                && !refs.exists(&mut w.tx, r, v).await?
            {
                errs.push(FieldError::new(field, r.unknown(v)));
            }
        }
        // Alerts to link: they must exist and not belong to another incident.
        let mut link = Vec::new();
        for (n, a) in i.alerts.iter().enumerate() {
            let found: Option<Option<i64>> =
                sqlx::query_scalar("SELECT incident FROM alerts WHERE id = ?")
                    .bind(a)
                    .fetch_optional(&mut *w.tx)
                    .await
                    .map_err(sql_ctx("reading alerts"))?;
            match found {
                None => errs.extend(unknown_alert(format!("alerts[{n}]"), *a).0),
                Some(None) => link.push(*a),
                Some(Some(other)) if Some(other) == expected.map(|_| i.id) => {}
                Some(Some(other)) => errs.push(FieldError::new(
                    format!("alerts[{n}]"),
                    format!("alert {a} is already linked to incident {other}"),
                )),
            }
        }
        check(errs)?;
        let checklist = json("incident checklist", &i.checklist)?;
        let id = match expected {
            None => {
                let q = sqlx::query_scalar(
                    "INSERT INTO incidents (title, type, severity, status, description, domain,
                       admin_unit, lon, lat, agency, assignee, origin, origin_ref, created_at,
                       created_by, updated_at, respond_by, resolve_by, responded_at, resolved_at,
                       closed_at, escalation_level, next_check_at, checklist, version)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)
                     RETURNING id",
                );
                bind_incident(q, i, &checklist)
                    .fetch_one(&mut *w.tx)
                    .await
                    .map_err(sql_ctx("writing an incident"))?
            }
            Some(_) => {
                let q = sqlx::query_scalar(
                    "UPDATE incidents SET title = ?, type = ?, severity = ?, status = ?,
                       description = ?, domain = ?, admin_unit = ?, lon = ?, lat = ?, agency = ?,
                       assignee = ?, origin = ?, origin_ref = ?, created_at = ?, created_by = ?,
                       updated_at = ?, respond_by = ?, resolve_by = ?, responded_at = ?,
                       resolved_at = ?, closed_at = ?, escalation_level = ?, next_check_at = ?,
                       checklist = ?, version = version + 1
                     WHERE id = ? RETURNING id",
                );
                bind_incident(q, i, &checklist)
                    .bind(i.id)
                    .fetch_one(&mut *w.tx)
                    .await
                    .map_err(sql_ctx("writing an incident"))?
            }
        };
        for a in &link {
            sqlx::query("UPDATE alerts SET incident = ? WHERE id = ?")
                .bind(id)
                .bind(a)
                .execute(&mut *w.tx)
                .await
                .map_err(sql_ctx("linking an alert"))?;
            let by = entries
                .first()
                .map(|e| e.by.as_str())
                .unwrap_or(i.created_by.as_str());
            add_step(
                &mut w.tx,
                *a,
                AlertAction::Linked,
                by,
                i.updated_at,
                Some(&format!("incident {id}")),
            )
            .await?;
        }
        add_entries(&mut w.tx, id, entries).await?;
        let out = read_incident(&mut w.tx, id)
            .await?
            .ok_or_else(|| not_found(id))?;
        w.commit().await?;
        Ok(out)
    }

    pub(crate) async fn incident_impl(&self, id: i64) -> StoreResult<Option<Incident>> {
        let mut conn = self
            .pool
            .acquire()
            .await
            .map_err(sql_ctx("reading an incident"))?;
        read_incident(&mut conn, id).await
    }

    async fn with_alerts(&self, rows: Vec<IncidentRow>) -> StoreResult<Vec<Incident>> {
        let mut links: HashMap<i64, Vec<i64>> = HashMap::new();
        if !rows.is_empty() {
            let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                "SELECT incident, id FROM alerts WHERE incident IN (",
            );
            let mut sep = qb.separated(", ");
            for r in &rows {
                sep.push_bind(r.id);
            }
            qb.push(") ORDER BY id");
            let pairs: Vec<(i64, i64)> = qb
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(sql_ctx("reading linked alerts"))?;
            for (inc, a) in pairs {
                links.entry(inc).or_default().push(a);
            }
        }
        rows.into_iter()
            .map(|r| {
                let alerts = links.remove(&r.id).unwrap_or_default();
                r.into_incident(alerts)
            })
            .collect()
    }

    pub(crate) async fn incidents_impl(&self, q: &IncidentQuery) -> StoreResult<Page<Incident>> {
        let limit = limit(q.limit);
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(INCIDENT_COLUMNS);
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
        for (col, v) in [
            (" AND type = ", &q.incident_type),
            (" AND agency = ", &q.agency),
            (" AND assignee = ", &q.assignee),
            (" AND domain = ", &q.domain),
        ] {
            if let Some(v) = v {
                qb.push(col).push_bind(v.clone());
            }
        }
        if !q.admin_units.is_empty() {
            qb.push(" AND admin_unit IN (");
            let mut sep = qb.separated(", ");
            for u in &q.admin_units {
                sep.push_bind(u.clone());
            }
            qb.push(")");
        }
        if let Some(c) = cursor(q.cursor.as_deref())? {
            qb.push(" AND id < ").push_bind(c);
        }
        qb.push(" ORDER BY id DESC LIMIT ")
            .push_bind(i64::try_from(limit + 1).unwrap_or(i64::MAX));
        let rows: Vec<IncidentRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading incidents"))?;
        Ok(page(self.with_alerts(rows).await?, limit, |i| i.id))
    }

    pub(crate) async fn incidents_due_impl(
        &self,
        now: Timestamp,
        limit: usize,
    ) -> StoreResult<Vec<Incident>> {
        let rows: Vec<IncidentRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "{INCIDENT_COLUMNS} WHERE next_check_at IS NOT NULL AND next_check_at <= ?
               AND status NOT IN ('resolved', 'closed') ORDER BY next_check_at, id LIMIT ?"
        )))
        .bind(ts(now))
        .bind(i64::try_from(limit.clamp(1, 10_000)).unwrap_or(1))
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading due incidents"))?;
        self.with_alerts(rows).await
    }

    pub(crate) async fn timeline_impl(&self, incident: i64) -> StoreResult<Vec<TimelineEntry>> {
        let rows: Vec<(i64, i64, String, String, Option<String>, String)> = sqlx::query_as(
            "SELECT id, at, actor, kind, text, data FROM incident_timeline WHERE incident = ? ORDER BY id",
        )
        .bind(incident)
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading the incident timeline"))?;
        rows.into_iter()
            .map(|(id, at, by, kind, text, data)| {
                Ok(TimelineEntry {
                    id,
                    incident,
                    at: ts_from(at)?,
                    by,
                    kind,
                    text,
                    data: json_from("timeline data", &data)?,
                })
            })
            .collect()
    }

    fn attachment_path(&self, incident: i64, id: i64) -> PathBuf {
        self.dir
            .join(ATTACHMENTS_DIR)
            .join(incident.to_string())
            .join(id.to_string())
    }

    pub(crate) async fn add_attachment_impl(
        &self,
        incident: i64,
        meta: &NewAttachment,
        content: &[u8],
        entry: &NewTimelineEntry,
    ) -> StoreResult<Attachment> {
        let mut errs = Vec::new();
        if meta.filename.trim().is_empty()
            || meta.filename.chars().count() > 255
            || meta.filename.contains(['/', '\\', '\0'])
        {
            errs.push(FieldError::new(
                "filename",
                "must be 1–255 characters without / or \\",
            ));
        }
        if meta.content_type.is_empty() || meta.content_type.len() > 127 {
            errs.push(FieldError::new("content_type", "must be 1–127 characters"));
        }
        if meta.sha256.len() != 64 || !meta.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            errs.push(FieldError::new("sha256", "must be 64 hexadecimal digits"));
        }
        if content.is_empty() || content.len() > MAX_ATTACHMENT_BYTES {
            errs.push(FieldError::new(
                "content",
                "must be between 1 byte and 256 MiB",
            ));
        }
        check_entries(&mut errs, std::slice::from_ref(entry));
        check(errs)?;
        let mut w = self.begin_write().await?;
        let exists: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM incidents WHERE id = ?)")
                .bind(incident)
                .fetch_one(&mut *w.tx)
                .await
                .map_err(sql_ctx("reading an incident"))?;
        if !exists {
            return Err(not_found(incident));
        }
        let size = i64::try_from(content.len()).unwrap_or(i64::MAX);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO attachments (incident, filename, content_type, size, sha256, uploaded_by, uploaded_at)
             VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id",
        )
        .bind(incident)
        .bind(&meta.filename)
        .bind(&meta.content_type)
        .bind(size)
        .bind(meta.sha256.to_ascii_lowercase())
        .bind(&meta.uploaded_by)
        .bind(ts(meta.uploaded_at))
        .fetch_one(&mut *w.tx)
        .await
        .map_err(sql_ctx("writing an attachment"))?;
        let mut entry = entry.clone();
        if let serde_json::Value::Object(m) = &mut entry.data {
            m.insert("attachment".into(), serde_json::json!(id));
        }
        add_entries(&mut w.tx, incident, &[entry]).await?;
        // The content is durable before the row that points at it commits;
        // a crash in between leaves an unreferenced file, never a dangling row.
        let path = self.attachment_path(incident, id);
        let bytes = content.to_vec();
        tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
            .await
            .map_err(|e| StoreError::Backend(format!("writing an attachment: {e}")))?
            .map_err(|e| StoreError::Backend(format!("writing an attachment: {e}")))?;
        w.commit().await?;
        Ok(Attachment {
            id,
            incident,
            filename: meta.filename.clone(),
            content_type: meta.content_type.clone(),
            size: content.len() as u64,
            sha256: meta.sha256.to_ascii_lowercase(),
            uploaded_by: meta.uploaded_by.clone(),
            uploaded_at: meta.uploaded_at,
        })
    }

    async fn attachment_rows(
        &self,
        incident: i64,
        id: Option<i64>,
    ) -> StoreResult<Vec<Attachment>> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "SELECT id, filename, content_type, size, sha256, uploaded_by, uploaded_at
             FROM attachments WHERE incident = ",
        );
        qb.push_bind(incident);
        if let Some(id) = id {
            qb.push(" AND id = ").push_bind(id);
        }
        qb.push(" ORDER BY id");
        let rows: Vec<(i64, String, String, i64, String, String, i64)> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading attachments"))?;
        rows.into_iter()
            .map(
                |(id, filename, content_type, size, sha256, uploaded_by, at)| {
                    Ok(Attachment {
                        id,
                        incident,
                        filename,
                        content_type,
                        size: u64::try_from(size).unwrap_or(0),
                        sha256,
                        uploaded_by,
                        uploaded_at: ts_from(at)?,
                    })
                },
            )
            .collect()
    }

    pub(crate) async fn attachments_impl(&self, incident: i64) -> StoreResult<Vec<Attachment>> {
        self.attachment_rows(incident, None).await
    }

    pub(crate) async fn attachment_impl(
        &self,
        incident: i64,
        id: i64,
    ) -> StoreResult<Option<(Attachment, Vec<u8>)>> {
        let Some(meta) = self.attachment_rows(incident, Some(id)).await?.pop() else {
            return Ok(None);
        };
        let path = self.attachment_path(incident, id);
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(&path))
            .await
            .map_err(|e| StoreError::Backend(format!("reading an attachment: {e}")))?
            .map_err(|e| {
                StoreError::Backend(format!(
                    "the content of attachment {id} of incident {incident} cannot be read: {e}"
                ))
            })?;
        Ok(Some((meta, bytes)))
    }
}

type IncidentQueryScalar<'q> =
    sqlx::query::QueryScalar<'q, sqlx::Sqlite, i64, sqlx::sqlite::SqliteArguments>;

fn bind_incident<'q>(
    q: IncidentQueryScalar<'q>,
    i: &'q Incident,
    checklist: &'q str,
) -> IncidentQueryScalar<'q> {
    q.bind(&i.title)
        .bind(&i.incident_type)
        .bind(i.severity.rank())
        .bind(i.status.as_str())
        .bind(&i.description)
        .bind(&i.domain)
        .bind(&i.admin_unit)
        .bind(i.location.map(|p| p[0]))
        .bind(i.location.map(|p| p[1]))
        .bind(&i.agency)
        .bind(&i.assignee)
        .bind(&i.origin)
        .bind(&i.origin_ref)
        .bind(ts(i.created_at))
        .bind(&i.created_by)
        .bind(ts(i.updated_at))
        .bind(i.respond_by.map(ts))
        .bind(i.resolve_by.map(ts))
        .bind(i.responded_at.map(ts))
        .bind(i.resolved_at.map(ts))
        .bind(i.closed_at.map(ts))
        .bind(i64::from(i.escalation_level))
        .bind(i.next_check_at.map(ts))
        .bind(checklist)
}

/// Writes a file and its directory entry to disk before returning.
fn write_durably(path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let dir = path
        .parent()
        .ok_or_else(|| std::io::Error::other("an attachment path has no directory"))?;
    std::fs::create_dir_all(dir)?;
    let mut f = std::fs::File::create(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::File::open(dir)?.sync_all()?;
    Ok(())
}
