//! Rules and SOP templates: documents validated by the rules crate.

use crate::SqliteStore;
use crate::codec::{json, json_from, ts, ts_from};
use crate::error::sql_ctx;
use crate::reference::{check, item};
use panorama_core::FieldError;
use panorama_core::error::{check_code, check_name};
use panorama_store::{RuleRecord, SopTemplate, StoreResult};

type RuleRow = (String, String, bool, String, i64, i64, String);

fn rule_from(r: RuleRow) -> StoreResult<RuleRecord> {
    let (id, definition, enabled, origin, version, updated_at, updated_by) = r;
    Ok(RuleRecord {
        definition: json_from("rule definition", &definition)?,
        updated_at: ts_from(updated_at)?,
        id,
        enabled,
        origin,
        version,
        updated_by,
    })
}

const RULE_COLUMNS: &str =
    "SELECT id, definition, enabled, origin, version, updated_at, updated_by FROM rules";

impl SqliteStore {
    pub(crate) async fn put_rule_impl(&self, r: &RuleRecord) -> StoreResult<RuleRecord> {
        let mut errs = Vec::new();
        errs.extend(check_code("id", &r.id).err());
        if !r.definition.is_object() {
            errs.push(FieldError::new("definition", "must be a JSON object"));
        }
        if r.origin.is_empty() || r.origin.len() > 300 {
            errs.push(FieldError::new("origin", "must be 1–300 characters"));
        }
        check(errs)?;
        let definition = json("rule definition", &r.definition)?;
        let mut w = self.begin_write().await?;
        let version: Option<i64> = sqlx::query_scalar("SELECT version FROM rules WHERE id = ?")
            .bind(&r.id)
            .fetch_optional(&mut *w.tx)
            .await
            .map_err(sql_ctx("reading a rule"))?;
        let version = version.unwrap_or(0) + 1;
        sqlx::query(
            "INSERT INTO rules (id, definition, enabled, origin, version, updated_at, updated_by)
             VALUES (?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET definition = excluded.definition,
               enabled = excluded.enabled, origin = excluded.origin, version = excluded.version,
               updated_at = excluded.updated_at, updated_by = excluded.updated_by",
        )
        .bind(&r.id)
        .bind(&definition)
        .bind(r.enabled)
        .bind(&r.origin)
        .bind(version)
        .bind(ts(r.updated_at))
        .bind(&r.updated_by)
        .execute(&mut *w.tx)
        .await
        .map_err(sql_ctx("writing a rule"))?;
        w.commit().await?;
        Ok(RuleRecord {
            version,
            ..r.clone()
        })
    }

    pub(crate) async fn rule_impl(&self, id: &str) -> StoreResult<Option<RuleRecord>> {
        let row: Option<RuleRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{RULE_COLUMNS} WHERE id = ?")))
                .bind(id)
                .fetch_optional(&self.pool)
                .await
                .map_err(sql_ctx("reading a rule"))?;
        row.map(rule_from).transpose()
    }

    pub(crate) async fn rules_impl(&self) -> StoreResult<Vec<RuleRecord>> {
        let rows: Vec<RuleRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("{RULE_COLUMNS} ORDER BY id")))
                .fetch_all(&self.pool)
                .await
                .map_err(sql_ctx("reading rules"))?;
        rows.into_iter().map(rule_from).collect()
    }

    pub(crate) async fn delete_rule_impl(&self, id: &str) -> StoreResult<bool> {
        let mut w = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM rules WHERE id = ?")
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("deleting a rule"))?
            .rows_affected();
        w.commit().await?;
        Ok(n > 0)
    }

    pub(crate) async fn put_sops_impl(&self, sops: &[SopTemplate]) -> StoreResult<()> {
        let mut errs = Vec::new();
        for (i, s) in sops.iter().enumerate() {
            let mut e = Vec::new();
            e.extend(check_code("incident_type", &s.incident_type).err());
            e.extend(check_name("name", &s.name).err());
            if s.steps.is_empty() || s.steps.len() > 100 {
                e.push(FieldError::new("steps", "must list 1 to 100 steps"));
            }
            for (j, step) in s.steps.iter().enumerate() {
                e.extend(check_name(&format!("steps[{j}]"), step).err());
            }
            errs.extend(e.into_iter().map(|e| e.under(&item(i))));
        }
        check(errs)?;
        if sops.is_empty() {
            return Ok(());
        }
        let mut w = self.begin_write().await?;
        for s in sops {
            sqlx::query(
                "INSERT INTO sop_templates (incident_type, name, steps) VALUES (?, ?, ?)
                 ON CONFLICT (incident_type) DO UPDATE SET name = excluded.name, steps = excluded.steps",
            )
            .bind(&s.incident_type)
            .bind(&s.name)
            .bind(json("SOP steps", &s.steps)?)
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("writing an SOP template"))?;
        }
        w.commit().await
    }

    pub(crate) async fn sops_impl(&self, one: Option<&str>) -> StoreResult<Vec<SopTemplate>> {
        let rows: Vec<(String, String, String)> =
            match one {
                Some(t) => sqlx::query_as(
                    "SELECT incident_type, name, steps FROM sop_templates WHERE incident_type = ?",
                )
                .bind(t)
                .fetch_all(&self.pool)
                .await,
                None => sqlx::query_as(
                    "SELECT incident_type, name, steps FROM sop_templates ORDER BY incident_type",
                )
                .fetch_all(&self.pool)
                .await,
            }
            .map_err(sql_ctx("reading SOP templates"))?;
        rows.into_iter()
            .map(|(incident_type, name, steps)| {
                Ok(SopTemplate {
                    steps: json_from("SOP steps", &steps)?,
                    incident_type,
                    name,
                })
            })
            .collect()
    }

    pub(crate) async fn delete_sop_impl(&self, incident_type: &str) -> StoreResult<bool> {
        let mut w = self.begin_write().await?;
        let n = sqlx::query("DELETE FROM sop_templates WHERE incident_type = ?")
            .bind(incident_type)
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("deleting an SOP template"))?
            .rows_affected();
        w.commit().await?;
        Ok(n > 0)
    }
}
