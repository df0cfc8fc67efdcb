//! Admin units, domains and agencies.

use crate::SqliteStore;
use crate::codec::{day, day_from, json, json_from, parsed};
use crate::error::sql_ctx;
use crate::refs::{Ref, Refs};
use panorama_core::error::{check_code, check_name};
use panorama_core::{AdminLevel, AdminUnit, Agency, Domain, FieldError, Invalid};
use panorama_store::{StoreError, StoreResult};
use std::collections::{HashMap, HashSet};

#[derive(sqlx::FromRow)]
struct AdminUnitRow {
    code: String,
    name: String,
    name_en: Option<String>,
    level: String,
    parent: Option<String>,
    geometry: Option<String>,
    valid_from: Option<String>,
    valid_to: Option<String>,
}

#[derive(sqlx::FromRow)]
struct DomainRow {
    code: String,
    name: String,
    name_en: String,
    icon: String,
    sort: i64,
}

#[derive(sqlx::FromRow)]
struct AgencyRow {
    code: String,
    name: String,
    name_en: String,
    admin_unit: Option<String>,
}

/// Fails with every field error found, if any.
pub(crate) fn check(errs: Vec<FieldError>) -> StoreResult<()> {
    if errs.is_empty() {
        Ok(())
    } else {
        Err(StoreError::Invalid(Invalid(errs)))
    }
}

/// The JSON-path prefix of batch item `i`.
pub(crate) fn item(i: usize) -> String {
    format!("[{i}]")
}

impl SqliteStore {
    pub(crate) async fn upsert_admin_units_impl(&self, units: &[AdminUnit]) -> StoreResult<()> {
        let mut errs: Vec<FieldError> = Vec::new();
        for (i, u) in units.iter().enumerate() {
            if let Err(e) = u.validate() {
                errs.extend(e.under(&item(i)).0);
            }
        }
        if units.is_empty() {
            return Ok(());
        }
        // Shape and reference errors are reported together.
        let mut w = self.begin_write().await?;
        let conn = &mut *w.tx;

        // Parents: in the store or earlier in the batch, and no cycles.
        let stored: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT code, parent FROM admin_units")
                .fetch_all(&mut *conn)
                .await
                .map_err(sql_ctx("reading admin units"))?;
        let mut parents: HashMap<String, Option<String>> = stored.into_iter().collect();
        let mut seen: HashSet<&str> = HashSet::new();
        for (i, u) in units.iter().enumerate() {
            if let Some(p) = &u.parent
                && !parents.contains_key(p.as_str())
                && !seen.contains(p.as_str())
            {
                errs.push(FieldError::new(
                    format!("[{i}].parent"),
                    Ref::AdminUnit.unknown(p),
                ));
            }
            seen.insert(&u.code);
        }
        check(errs)?;
        for u in units {
            parents.insert(u.code.clone(), u.parent.clone());
        }
        let mut errs = Vec::new();
        for (i, u) in units.iter().enumerate() {
            let mut at = u.parent.as_deref();
            let mut steps = 0;
            while let Some(p) = at {
                if p == u.code || steps > parents.len() {
                    errs.push(FieldError::new(
                        format!("[{i}].parent"),
                        format!("'{}' would be its own ancestor", u.code),
                    ));
                    break;
                }
                at = parents.get(p).and_then(|x| x.as_deref());
                steps += 1;
            }
        }
        check(errs)?;

        for u in units {
            let geometry = u
                .geometry
                .as_ref()
                .map(|g| json("geometry", g))
                .transpose()?;
            sqlx::query(
                "INSERT INTO admin_units (code, name, name_en, level, parent, geometry, valid_from, valid_to)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, name_en = excluded.name_en,
                   level = excluded.level, parent = excluded.parent, geometry = excluded.geometry,
                   valid_from = excluded.valid_from, valid_to = excluded.valid_to",
            )
            .bind(&u.code)
            .bind(&u.name)
            .bind(&u.name_en)
            .bind(u.level.as_str())
            .bind(&u.parent)
            .bind(geometry)
            .bind(u.valid_from.map(day))
            .bind(u.valid_to.map(day))
            .execute(&mut *conn)
            .await
            .map_err(sql_ctx("writing an admin unit"))?;
            sqlx::query("DELETE FROM admin_unit_successors WHERE unit = ?")
                .bind(&u.code)
                .execute(&mut *conn)
                .await
                .map_err(sql_ctx("writing admin unit successors"))?;
            for (pos, s) in u.successors.iter().enumerate() {
                sqlx::query("INSERT INTO admin_unit_successors (unit, position, successor) VALUES (?, ?, ?)")
                    .bind(&u.code)
                    .bind(i64::try_from(pos).unwrap_or(i64::MAX))
                    .bind(s)
                    .execute(&mut *conn)
                    .await
                    .map_err(sql_ctx("writing admin unit successors"))?;
            }
        }
        w.commit().await
    }

    pub(crate) async fn admin_units_impl(&self) -> StoreResult<Vec<AdminUnit>> {
        let rows: Vec<AdminUnitRow> = sqlx::query_as(
            "SELECT code, name, name_en, level, parent, geometry, valid_from, valid_to FROM admin_units ORDER BY code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading admin units"))?;
        let succ: Vec<(String, String)> = sqlx::query_as(
            "SELECT unit, successor FROM admin_unit_successors ORDER BY unit, position",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading admin unit successors"))?;
        let mut successors: HashMap<String, Vec<String>> = HashMap::new();
        for (unit, s) in succ {
            successors.entry(unit).or_default().push(s);
        }
        rows.into_iter()
            .map(|r| {
                Ok(AdminUnit {
                    level: parsed("admin level", &r.level, AdminLevel::parse)?,
                    geometry: r
                        .geometry
                        .as_deref()
                        .map(|g| json_from("geometry", g))
                        .transpose()?,
                    valid_from: r.valid_from.as_deref().map(day_from).transpose()?,
                    valid_to: r.valid_to.as_deref().map(day_from).transpose()?,
                    successors: successors.remove(&r.code).unwrap_or_default(),
                    code: r.code,
                    name: r.name,
                    name_en: r.name_en,
                    parent: r.parent,
                })
            })
            .collect()
    }

    /// Code, level and parent of every admin unit, for walking up the hierarchy.
    pub(crate) async fn admin_tree(
        &self,
    ) -> StoreResult<HashMap<String, (AdminLevel, Option<String>)>> {
        let rows: Vec<(String, String, Option<String>)> =
            sqlx::query_as("SELECT code, level, parent FROM admin_units")
                .fetch_all(&self.pool)
                .await
                .map_err(sql_ctx("reading admin units"))?;
        rows.into_iter()
            .map(|(code, level, parent)| {
                Ok((
                    code,
                    (parsed("admin level", &level, AdminLevel::parse)?, parent),
                ))
            })
            .collect()
    }

    pub(crate) async fn upsert_domains_impl(&self, domains: &[Domain]) -> StoreResult<()> {
        let mut errs = Vec::new();
        for (i, d) in domains.iter().enumerate() {
            let p = item(i);
            errs.extend(check_code("code", &d.code).err().map(|e| e.under(&p)));
            errs.extend(check_name("name", &d.name).err().map(|e| e.under(&p)));
            errs.extend(check_name("name_en", &d.name_en).err().map(|e| e.under(&p)));
            if d.icon.len() > 64 {
                errs.push(FieldError::new(
                    format!("{p}.icon"),
                    "must be at most 64 characters",
                ));
            }
        }
        check(errs)?;
        let mut w = self.begin_write().await?;
        for d in domains {
            sqlx::query(
                "INSERT INTO domains (code, name, name_en, icon, sort) VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, name_en = excluded.name_en,
                   icon = excluded.icon, sort = excluded.sort",
            )
            .bind(&d.code)
            .bind(&d.name)
            .bind(&d.name_en)
            .bind(&d.icon)
            .bind(d.sort)
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("writing a domain"))?;
        }
        w.commit().await
    }

    pub(crate) async fn domains_impl(&self) -> StoreResult<Vec<Domain>> {
        let rows: Vec<DomainRow> = sqlx::query_as(
            "SELECT code, name, name_en, icon, sort FROM domains ORDER BY sort, code",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading domains"))?;
        Ok(rows
            .into_iter()
            .map(|r| Domain {
                code: r.code,
                name: r.name,
                name_en: r.name_en,
                icon: r.icon,
                sort: i32::try_from(r.sort).unwrap_or(i32::MAX),
            })
            .collect())
    }

    pub(crate) async fn upsert_agencies_impl(&self, agencies: &[Agency]) -> StoreResult<()> {
        let mut errs = Vec::new();
        for (i, a) in agencies.iter().enumerate() {
            if let Err(e) = a.validate() {
                errs.extend(e.under(&item(i)).0);
            }
            if let Some(u) = &a.admin_unit {
                errs.extend(check_code("admin_unit", u).err().map(|e| e.under(&item(i))));
            }
        }
        let mut w = self.begin_write().await?;
        let mut refs = Refs::default();
        for (i, a) in agencies.iter().enumerate() {
            if let Some(u) = &a.admin_unit
                && !refs.exists(&mut w.tx, Ref::AdminUnit, u).await?
            {
                errs.push(FieldError::new(
                    format!("[{i}].admin_unit"),
                    Ref::AdminUnit.unknown(u),
                ));
            }
        }
        check(errs)?;
        for a in agencies {
            sqlx::query(
                "INSERT INTO agencies (code, name, name_en, admin_unit) VALUES (?, ?, ?, ?)
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, name_en = excluded.name_en,
                   admin_unit = excluded.admin_unit",
            )
            .bind(&a.code)
            .bind(&a.name)
            .bind(&a.name_en)
            .bind(&a.admin_unit)
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("writing an agency"))?;
        }
        w.commit().await
    }

    pub(crate) async fn agencies_impl(&self) -> StoreResult<Vec<Agency>> {
        let rows: Vec<AgencyRow> =
            sqlx::query_as("SELECT code, name, name_en, admin_unit FROM agencies ORDER BY code")
                .fetch_all(&self.pool)
                .await
                .map_err(sql_ctx("reading agencies"))?;
        Ok(rows
            .into_iter()
            .map(|r| Agency {
                code: r.code,
                name: r.name,
                name_en: r.name_en,
                admin_unit: r.admin_unit,
            })
            .collect())
    }
}
