//! Indicator definitions and their submitted values, every revision kept.

use crate::SqliteStore;
use crate::codec::{day, enum_from, enum_name, json, json_from, parsed, ts, ts_from};
use crate::error::sql_ctx;
use crate::reference::{check, item};
use crate::refs::{Ref, Refs};
use panorama_core::{
    FieldError, Indicator, IndicatorValue, IndicatorValueInput, Period, Periodicity, Timestamp,
    ValueStatus,
};
use panorama_store::{IndicatorValueQuery, StoreResult};
use sqlx::{QueryBuilder, Sqlite};
use std::collections::HashMap;

const INDICATOR_COLUMNS: &str =
    "SELECT code, name, name_en, domain, unit, periodicity, direction, targets, thresholds,
    owner_agency, computation, source, headline FROM indicators";

/// Values per INSERT statement. Each row's revision subquery opens a
/// cursor that SQLite revisits on every insert of the statement, so a long
/// statement costs quadratic time; 64 keeps that small while saving 63
/// round trips in 64.
const VALUES_PER_STATEMENT: usize = 64;

const VALUE_COLUMNS: &str =
    "SELECT v.indicator, v.period, v.admin_unit, v.value, v.status, v.revision,
    v.submitted_by, v.submitted_at, v.note FROM indicator_values v";

#[derive(sqlx::FromRow)]
struct IndicatorRow {
    code: String,
    name: String,
    name_en: String,
    domain: String,
    unit: String,
    periodicity: String,
    direction: String,
    targets: String,
    thresholds: String,
    owner_agency: Option<String>,
    computation: String,
    source: Option<String>,
    headline: bool,
}

impl IndicatorRow {
    fn into_indicator(self) -> StoreResult<Indicator> {
        Ok(Indicator {
            periodicity: parsed("periodicity", &self.periodicity, Periodicity::parse)?,
            direction: enum_from("direction", &self.direction)?,
            targets: json_from("targets", &self.targets)?,
            thresholds: json_from("thresholds", &self.thresholds)?,
            computation: json_from("computation", &self.computation)?,
            code: self.code,
            name: self.name,
            name_en: self.name_en,
            domain: self.domain,
            unit: self.unit,
            owner_agency: self.owner_agency,
            source: self.source,
            headline: self.headline,
        })
    }
}

#[derive(sqlx::FromRow)]
struct ValueRow {
    indicator: String,
    period: String,
    admin_unit: String,
    value: f64,
    status: String,
    revision: i64,
    submitted_by: String,
    submitted_at: i64,
    note: Option<String>,
}

impl ValueRow {
    fn into_value(self) -> StoreResult<IndicatorValue> {
        Ok(IndicatorValue {
            status: parsed("value status", &self.status, ValueStatus::parse)?,
            revision: u32::try_from(self.revision)
                .map_err(|e| crate::error::corrupt("revision", e))?,
            submitted_at: ts_from(self.submitted_at)?,
            indicator: self.indicator,
            period: self.period,
            admin_unit: self.admin_unit,
            value: self.value,
            submitted_by: self.submitted_by,
            note: self.note,
        })
    }
}

impl SqliteStore {
    pub(crate) async fn upsert_indicators_impl(&self, indicators: &[Indicator]) -> StoreResult<()> {
        let mut errs = Vec::new();
        for (i, ind) in indicators.iter().enumerate() {
            if let Err(e) = ind.validate() {
                errs.extend(e.under(&item(i)).0);
            }
        }
        let mut w = self.begin_write().await?;
        let mut refs = Refs::default();
        for (i, ind) in indicators.iter().enumerate() {
            if !refs.exists(&mut w.tx, Ref::Domain, &ind.domain).await? {
                errs.push(FieldError::new(
                    format!("[{i}].domain"),
                    Ref::Domain.unknown(&ind.domain),
                ));
            }
            if let Some(a) = &ind.owner_agency
                && !refs.exists(&mut w.tx, Ref::Agency, a).await?
            {
                errs.push(FieldError::new(
                    format!("[{i}].owner_agency"),
                    Ref::Agency.unknown(a),
                ));
            }
        }
        check(errs)?;
        for ind in indicators {
            sqlx::query(
                "INSERT INTO indicators (code, name, name_en, domain, unit, periodicity, direction, targets, thresholds,
                   owner_agency, computation, source, headline)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (code) DO UPDATE SET name = excluded.name, name_en = excluded.name_en,
                   domain = excluded.domain, unit = excluded.unit, periodicity = excluded.periodicity,
                   direction = excluded.direction, targets = excluded.targets, thresholds = excluded.thresholds,
                   owner_agency = excluded.owner_agency, computation = excluded.computation,
                   source = excluded.source, headline = excluded.headline",
            )
            .bind(&ind.code)
            .bind(&ind.name)
            .bind(&ind.name_en)
            .bind(&ind.domain)
            .bind(&ind.unit)
            .bind(ind.periodicity.as_str())
            .bind(enum_name("direction", &ind.direction)?)
            .bind(json("targets", &ind.targets)?)
            .bind(json("thresholds", &ind.thresholds)?)
            .bind(&ind.owner_agency)
            .bind(json("computation", &ind.computation)?)
            .bind(&ind.source)
            .bind(ind.headline)
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("writing an indicator"))?;
        }
        w.commit().await
    }

    pub(crate) async fn indicators_impl(
        &self,
        domain: Option<&str>,
    ) -> StoreResult<Vec<Indicator>> {
        let mut qb = QueryBuilder::<Sqlite>::new(INDICATOR_COLUMNS);
        if let Some(d) = domain {
            qb.push(" WHERE domain = ").push_bind(d.to_string());
        }
        qb.push(" ORDER BY domain, code");
        let rows: Vec<IndicatorRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading indicators"))?;
        rows.into_iter().map(IndicatorRow::into_indicator).collect()
    }

    pub(crate) async fn indicator_impl(&self, code: &str) -> StoreResult<Option<Indicator>> {
        let mut qb = QueryBuilder::<Sqlite>::new(INDICATOR_COLUMNS);
        qb.push(" WHERE code = ").push_bind(code.to_string());
        let row: Option<IndicatorRow> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_ctx("reading an indicator"))?;
        row.map(IndicatorRow::into_indicator).transpose()
    }

    pub(crate) async fn submit_indicator_values_impl(
        &self,
        values: &[IndicatorValueInput],
        submitted_by: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<IndicatorValue>> {
        let mut errs = Vec::new();
        let mut periods = Vec::with_capacity(values.len());
        for (i, v) in values.iter().enumerate() {
            match v.validate() {
                Ok(p) => periods.push(Some(p)),
                Err(e) => {
                    errs.extend(e.under(&item(i)).0);
                    periods.push(None);
                }
            }
        }
        if values.is_empty() {
            return Ok(Vec::new());
        }

        // Shape and reference errors are reported together.
        let mut w = self.begin_write().await?;
        let mut refs = Refs::default();
        let mut periodicity: HashMap<&str, Option<Periodicity>> = HashMap::new();
        for (i, (v, period)) in values.iter().zip(&periods).enumerate() {
            let p = match periodicity.get(v.indicator.as_str()) {
                Some(p) => *p,
                None => {
                    let p: Option<String> =
                        sqlx::query_scalar("SELECT periodicity FROM indicators WHERE code = ?")
                            .bind(&v.indicator)
                            .fetch_optional(&mut *w.tx)
                            .await
                            .map_err(sql_ctx("reading an indicator"))?;
                    let p = p
                        .map(|p| parsed("periodicity", &p, Periodicity::parse))
                        .transpose()?;
                    periodicity.insert(&v.indicator, p);
                    p
                }
            };
            match p {
                None => errs.push(FieldError::new(
                    format!("[{i}].indicator"),
                    Ref::Indicator.unknown(&v.indicator),
                )),
                Some(p) if period.is_some_and(|period| !period.fits(p)) => {
                    errs.push(FieldError::new(
                        format!("[{i}].period"),
                        format!(
                            "'{}' does not fit the {} indicator {}; give a period like {}",
                            v.period,
                            p.as_str(),
                            v.indicator,
                            p.example()
                        ),
                    ))
                }
                Some(_) => {}
            }
            if !refs
                .exists(&mut w.tx, Ref::AdminUnit, &v.admin_unit)
                .await?
            {
                errs.push(FieldError::new(
                    format!("[{i}].admin_unit"),
                    Ref::AdminUnit.unknown(&v.admin_unit),
                ));
            }
        }
        check(errs)?;

        // Many rows per statement, each row's revision (and default status)
        // computed by SQLite from the rows already stored, including earlier
        // rows of the same statement: one round trip per chunk instead of
        // two per value, which is what makes million-row imports fast.
        let labels: Vec<String> = periods.iter().flatten().map(Period::to_string).collect();
        // Revision and status of each stored row, by "indicator\0period\0unit".
        let mut revisions: HashMap<String, Vec<(i64, String)>> =
            HashMap::with_capacity(values.len());
        let key = |buf: &mut String, i: &str, p: &str, u: &str| {
            buf.clear();
            buf.push_str(i);
            buf.push('\0');
            buf.push_str(p);
            buf.push('\0');
            buf.push_str(u);
        };
        let rows: Vec<(&IndicatorValueInput, &Period, &str)> = values
            .iter()
            .zip(periods.iter().flatten())
            .zip(&labels)
            .map(|((v, p), l)| (v, p, l.as_str()))
            .collect();
        // A statement sees the table as it was before the statement, so a
        // key given twice goes into separate statements (revisions 1, 2…).
        let mut bounds = Vec::new();
        let mut start = 0;
        let mut in_chunk = std::collections::HashSet::new();
        for (i, (v, _, l)) in rows.iter().enumerate() {
            let k = (v.indicator.as_str(), *l, v.admin_unit.as_str());
            if i - start == VALUES_PER_STATEMENT || !in_chunk.insert(k) {
                bounds.push(start..i);
                start = i;
                in_chunk.clear();
                in_chunk.insert(k);
            }
        }
        bounds.push(start..rows.len());
        for range in bounds {
            let chunk = &rows[range];
            if chunk.is_empty() {
                continue;
            }
            let mut qb = QueryBuilder::<Sqlite>::new(
                "INSERT INTO indicator_values (indicator, period, period_start, admin_unit, revision, value, status,
                   submitted_by, submitted_at, note) ",
            );
            qb.push_values(chunk, |mut b, (v, period, label)| {
                let prior = |qb: &mut sqlx::query_builder::Separated<'_, Sqlite, &'static str>| {
                    qb.push_unseparated(
                        "(SELECT MAX(w.revision) FROM indicator_values w WHERE w.indicator = ",
                    )
                    .push_bind_unseparated(v.indicator.clone())
                    .push_unseparated(" AND w.period = ")
                    .push_bind_unseparated(label.to_string())
                    .push_unseparated(" AND w.admin_unit = ")
                    .push_bind_unseparated(v.admin_unit.clone())
                    .push_unseparated(")");
                };
                b.push_bind(v.indicator.clone())
                    .push_bind(label.to_string())
                    .push_bind(day(period.start()))
                    .push_bind(v.admin_unit.clone());
                b.push("COALESCE(");
                prior(&mut b);
                b.push_unseparated(", 0) + 1");
                b.push_bind(v.value);
                match v.status {
                    Some(st) => {
                        b.push_bind(st.as_str());
                    }
                    None => {
                        b.push("CASE WHEN ");
                        prior(&mut b);
                        b.push_unseparated(" IS NULL THEN 'provisional' ELSE 'revised' END");
                    }
                }
                b.push_bind(submitted_by.to_string())
                    .push_bind(ts(at))
                    .push_bind(v.note.clone());
            });
            qb.push(" RETURNING indicator, period, admin_unit, revision, status");
            let stored: Vec<(String, String, String, i64, String)> = qb
                .build_query_as()
                .fetch_all(&mut *w.tx)
                .await
                .map_err(sql_ctx("writing indicator values"))?;
            // RETURNING order is unspecified: match rows by key.
            for (i, p, u, rev, st) in stored {
                let mut k = String::new();
                key(&mut k, &i, &p, &u);
                revisions.entry(k).or_default().push((rev, st));
            }
        }
        let mut out = Vec::with_capacity(values.len());
        let mut k = String::new();
        for (v, _, label) in &rows {
            key(&mut k, &v.indicator, label, &v.admin_unit);
            // The same key twice in one batch: revisions in submission order.
            let (revision, status) = match revisions.get_mut(k.as_str()) {
                Some(list) if !list.is_empty() => {
                    let min = list
                        .iter()
                        .enumerate()
                        .min_by_key(|(_, (r, _))| *r)
                        .map_or(0, |(i, _)| i);
                    list.swap_remove(min)
                }
                _ => {
                    return Err(crate::error::corrupt(
                        "revision",
                        "a written value was not returned",
                    ));
                }
            };
            out.push(IndicatorValue {
                indicator: v.indicator.clone(),
                period: label.to_string(),
                admin_unit: v.admin_unit.clone(),
                value: v.value,
                status: parsed("value status", &status, ValueStatus::parse)?,
                revision: u32::try_from(revision).unwrap_or(u32::MAX),
                submitted_by: submitted_by.to_string(),
                submitted_at: at,
                note: v.note.clone(),
            });
        }
        w.commit().await?;
        Ok(out)
    }

    pub(crate) async fn indicator_values_impl(
        &self,
        q: &IndicatorValueQuery,
    ) -> StoreResult<Vec<IndicatorValue>> {
        let mut qb = QueryBuilder::<Sqlite>::new(VALUE_COLUMNS);
        qb.push(
            " WHERE v.revision = (SELECT MAX(w.revision) FROM indicator_values w
                WHERE w.indicator = v.indicator AND w.period = v.period AND w.admin_unit = v.admin_unit)",
        );
        if let Some(i) = &q.indicator {
            qb.push(" AND v.indicator = ").push_bind(i.clone());
        }
        if let Some(d) = &q.domain {
            qb.push(" AND v.indicator IN (SELECT code FROM indicators WHERE domain = ")
                .push_bind(d.clone())
                .push(")");
        }
        if let Some(u) = &q.admin_unit {
            qb.push(" AND v.admin_unit = ").push_bind(u.clone());
        }
        if let Some(f) = q.from {
            qb.push(" AND v.period_start >= ").push_bind(day(f));
        }
        if let Some(t) = q.to {
            qb.push(" AND v.period_start < ").push_bind(day(t));
        }
        qb.push(" ORDER BY v.indicator, v.admin_unit, v.period_start, v.period");
        let rows: Vec<ValueRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading indicator values"))?;
        rows.into_iter().map(ValueRow::into_value).collect()
    }

    pub(crate) async fn indicator_value_history_impl(
        &self,
        indicator: &str,
        period: &str,
        admin_unit: &str,
    ) -> StoreResult<Vec<IndicatorValue>> {
        // Labels are stored in canonical form.
        let label = Period::parse(period).map_or_else(|_| period.to_string(), |p| p.to_string());
        let mut qb = QueryBuilder::<Sqlite>::new(VALUE_COLUMNS);
        qb.push(" WHERE v.indicator = ")
            .push_bind(indicator.to_string())
            .push(" AND v.period = ")
            .push_bind(label)
            .push(" AND v.admin_unit = ")
            .push_bind(admin_unit.to_string())
            .push(" ORDER BY v.revision");
        let rows: Vec<ValueRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading indicator values"))?;
        rows.into_iter().map(ValueRow::into_value).collect()
    }
}
