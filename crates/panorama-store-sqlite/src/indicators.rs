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

        let mut out = Vec::with_capacity(values.len());
        for (v, period) in values.iter().zip(periods.iter().flatten()) {
            let label = period.to_string();
            let revision: i64 = sqlx::query_scalar(
                "SELECT COALESCE(MAX(revision), 0) + 1 FROM indicator_values
                 WHERE indicator = ? AND period = ? AND admin_unit = ?",
            )
            .bind(&v.indicator)
            .bind(&label)
            .bind(&v.admin_unit)
            .fetch_one(&mut *w.tx)
            .await
            .map_err(sql_ctx("reading indicator values"))?;
            let status = v.status.unwrap_or(if revision == 1 {
                ValueStatus::Provisional
            } else {
                ValueStatus::Revised
            });
            sqlx::query(
                "INSERT INTO indicator_values (indicator, period, period_start, admin_unit, revision, value, status,
                   submitted_by, submitted_at, note)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&v.indicator)
            .bind(&label)
            .bind(day(period.start()))
            .bind(&v.admin_unit)
            .bind(revision)
            .bind(v.value)
            .bind(status.as_str())
            .bind(submitted_by)
            .bind(ts(at))
            .bind(&v.note)
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("writing an indicator value"))?;
            out.push(IndicatorValue {
                indicator: v.indicator.clone(),
                period: label,
                admin_unit: v.admin_unit.clone(),
                value: v.value,
                status,
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
