//! Observations: validated against the in-memory catalog, stored in panorama-tsdb.

use crate::SqliteStore;
use crate::entities::{MAX_PAGE, decode_cursor, encode_cursor, entity_boxes, in_area};
use crate::error::corrupt;
use crate::reference::item;
use chrono::{DateTime, Utc};
use panorama_core::Page;
use panorama_core::series::Acc;
use panorama_core::{AdminLevel, Agg, FieldError, Invalid, Observation, Value, ValueType};
use panorama_store::{
    Appended, BucketPoint, EntityQuery, GroupSeries, GroupedSeriesQuery, LatestValue, RawPoint,
    SeriesData, SeriesMeta, SeriesQuery, StoreError, StoreResult,
};
use panorama_tsdb::{Point, TsValue, TsdbError};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// Maps a tsdb failure met while doing `context`.
pub(crate) fn tsdb_err(context: &str, e: TsdbError) -> StoreError {
    match e {
        TsdbError::Busy => StoreError::Overloaded {
            retry_after_secs: 1,
        },
        e => StoreError::Backend(format!("{context}: {e}")),
    }
}

/// The tsdb form of a value of the right type.
fn to_ts_value(v: &Value) -> Result<TsValue, &'static str> {
    Ok(match v {
        Value::Number(n) if n.is_finite() => TsValue::Number(*n),
        Value::Number(_) => return Err("must be a finite number"),
        Value::Boolean(b) => TsValue::Bool(*b),
        Value::Text(s) => TsValue::Text(s.clone()),
        Value::Json(j) => TsValue::Json(j.to_string()),
    })
}

fn from_ts_value(v: TsValue) -> StoreResult<Value> {
    Ok(match v {
        TsValue::Number(n) => Value::Number(n),
        TsValue::Bool(b) => Value::Boolean(b),
        TsValue::Text(s) => Value::Text(s),
        TsValue::Json(s) => {
            Value::Json(serde_json::from_str(&s).map_err(|e| corrupt("JSON observation", e))?)
        }
    })
}

fn time(ms: i64) -> StoreResult<DateTime<Utc>> {
    DateTime::<Utc>::from_timestamp_millis(ms).ok_or_else(|| corrupt("observation time", ms))
}

fn bucket_points(rows: Vec<(i64, Acc)>, agg: Agg) -> StoreResult<Vec<BucketPoint>> {
    rows.into_iter()
        .filter_map(|(t, acc)| acc.get(agg).map(|v| (t, v, acc.count)))
        .map(|(t, value, count)| {
            Ok(BucketPoint {
                time: time(t)?,
                value,
                count,
            })
        })
        .collect()
}

/// The code of the unit at `level` among `unit` and its ancestors.
fn ancestor_at(
    tree: &HashMap<String, (AdminLevel, Option<String>)>,
    unit: &str,
    level: AdminLevel,
) -> Option<String> {
    let mut at = Some(unit);
    // Bounded, in case the stored hierarchy was damaged into a cycle.
    for _ in 0..=tree.len() {
        let code = at?;
        let (l, parent) = tree.get(code)?;
        if *l == level {
            return Some(code.to_string());
        }
        at = parent.as_deref();
    }
    None
}

impl SqliteStore {
    pub(crate) async fn append_observations_impl(
        &self,
        obs: Vec<Observation>,
    ) -> StoreResult<Appended> {
        let mut points = Vec::with_capacity(obs.len());
        let mut series: Vec<Arc<SeriesMeta>> = Vec::with_capacity(obs.len());
        let mut errs = Vec::new();
        {
            let cat = self.catalog();
            for (i, o) in obs.iter().enumerate() {
                let Some(attrs) = cat.entity(&o.entity) else {
                    errs.push(FieldError::new(
                        format!("[{i}].entity"),
                        format!("unknown entity '{}'", o.entity),
                    ));
                    continue;
                };
                let Some(meta) = attrs.get(o.attribute.as_str()) else {
                    errs.push(FieldError::new(
                        format!("[{i}].attribute"),
                        format!("entity {} has no attribute {}", o.entity, o.attribute),
                    ));
                    continue;
                };
                if let Err(e) = o.value.check_type("value", meta.value_type) {
                    errs.push(e.under(&item(i)));
                    continue;
                }
                let ts = o.time.timestamp_millis();
                if ts < 0 {
                    errs.push(FieldError::new(
                        format!("[{i}].time"),
                        "must not be before 1970-01-01T00:00:00Z",
                    ));
                }
                match to_ts_value(&o.value) {
                    Ok(value) => points.push(Point {
                        series: meta.series,
                        ts,
                        value,
                    }),
                    Err(reason) => errs.push(FieldError::new(format!("[{i}].value"), reason)),
                }
                series.push(meta.clone());
            }
        }
        if !errs.is_empty() {
            return Err(StoreError::Invalid(Invalid(errs)));
        }
        if !points.is_empty() {
            self.tsdb()?
                .append(points)
                .await
                .map_err(|e| tsdb_err("appending observations", e))?;
        }
        Ok(Appended {
            observations: obs,
            series,
        })
    }

    pub(crate) fn latest_impl(&self, entities: &[String]) -> StoreResult<Vec<LatestValue>> {
        let tsdb = self.tsdb()?;
        let cat = self.catalog();
        let mut out = Vec::new();
        for id in entities {
            let attrs = cat.entity(id).ok_or_else(|| StoreError::NotFound {
                what: "entity",
                key: id.clone(),
            })?;
            for (name, meta) in attrs {
                if let Some((t, v)) = tsdb.latest(meta.series) {
                    out.push(LatestValue {
                        entity: id.clone(),
                        attribute: name.to_string(),
                        time: time(t)?,
                        value: from_ts_value(v)?,
                    });
                }
            }
        }
        Ok(out)
    }

    /// Latest values of a page of the entities matching `q`, from memory:
    /// the catalog knows every entity's type, domain, unit and point, and
    /// the tsdb every series' latest value, so a dashboard's "latest of every
    /// sensor" runs no SQL. Text search lives in SQL, so it goes the general way.
    pub(crate) async fn latest_matching_impl(
        &self,
        q: &EntityQuery,
    ) -> StoreResult<Page<LatestValue>> {
        if q.text.is_some() {
            let page = self.query_entities_impl(q).await?;
            let ids: Vec<String> = page.items.into_iter().map(|e| e.id).collect();
            return Ok(Page {
                items: self.latest_impl(&ids)?,
                next_cursor: page.next_cursor,
            });
        }
        let limit = q.limit.clamp(1, MAX_PAGE);
        let after = q.cursor.as_deref().map(decode_cursor).transpose()?;
        let units = match &q.admin_unit {
            Some(u) => Some(self.unit_and_descendants(u).await?),
            None => None,
        };
        let ids: Option<HashSet<&str>> =
            (!q.ids.is_empty()).then(|| q.ids.iter().map(String::as_str).collect());
        let boxes = entity_boxes(q);
        let tsdb = self.tsdb()?;
        let cat = self.catalog();
        let mut page = Vec::with_capacity(limit.min(1024));
        let mut more = false;
        for (id, e) in cat.after(after.as_deref()) {
            let point = e.point;
            let matches = ids.as_ref().is_none_or(|s| s.contains(&**id))
                && (q.types.is_empty() || q.types.iter().any(|t| **t == *e.entity_type))
                && q.domain.as_deref().is_none_or(|d| d == &*e.domain)
                && units
                    .as_ref()
                    .is_none_or(|u| e.admin_unit.as_deref().is_some_and(|a| u.contains(a)))
                && boxes.iter().all(|b| {
                    point.is_some_and(|(lon, lat)| {
                        lon >= b.west && lon <= b.east && lat >= b.south && lat <= b.north
                    })
                })
                && in_area(q, point.map(|p| p.0), point.map(|p| p.1));
            if !matches {
                continue;
            }
            if page.len() == limit {
                more = true;
                break;
            }
            page.push((id, e));
        }
        let next_cursor = if more {
            page.last().map(|(id, _)| encode_cursor(id))
        } else {
            None
        };
        let mut items = Vec::with_capacity(page.len());
        for (id, e) in page {
            for (name, meta) in &e.attrs {
                if let Some((t, v)) = tsdb.latest(meta.series) {
                    items.push(LatestValue {
                        entity: id.to_string(),
                        attribute: name.to_string(),
                        time: time(t)?,
                        value: from_ts_value(v)?,
                    });
                }
            }
        }
        Ok(Page { items, next_cursor })
    }

    /// `unit` and every unit below it.
    async fn unit_and_descendants(&self, unit: &str) -> StoreResult<HashSet<String>> {
        let tree = self.admin_tree().await?;
        let mut out: HashSet<String> = HashSet::from([unit.to_string()]);
        // Bounded, in case the stored hierarchy was damaged into a cycle.
        for _ in 0..=tree.len() {
            let before = out.len();
            for (code, (_, parent)) in &tree {
                if parent.as_ref().is_some_and(|p| out.contains(p)) {
                    out.insert(code.clone());
                }
            }
            if out.len() == before {
                break;
            }
        }
        Ok(out)
    }

    /// The series of one attribute, or NotFound naming what is missing.
    fn lookup(&self, entity: &str, attribute: &str) -> StoreResult<Arc<SeriesMeta>> {
        let cat = self.catalog();
        let attrs = cat.entity(entity).ok_or_else(|| StoreError::NotFound {
            what: "entity",
            key: entity.to_string(),
        })?;
        attrs
            .get(attribute)
            .cloned()
            .ok_or_else(|| StoreError::NotFound {
                what: "attribute",
                key: format!("{entity}/{attribute}"),
            })
    }

    pub(crate) async fn series_impl(&self, q: &SeriesQuery) -> StoreResult<SeriesData> {
        let meta = self.lookup(&q.entity, &q.attribute)?;
        let (from, to) = (q.from.timestamp_millis(), q.to.timestamp_millis());
        let tsdb = self.tsdb()?;
        match q.bucket {
            None => {
                let limit = q.limit;
                let rows =
                    tokio::task::spawn_blocking(move || tsdb.range(meta.series, from, to, limit))
                        .await
                        .map_err(|e| StoreError::Backend(format!("reading a series: {e}")))?
                        .map_err(|e| tsdb_err("reading a series", e))?;
                let points = rows
                    .into_iter()
                    .map(|(t, v)| {
                        Ok(RawPoint {
                            time: time(t)?,
                            value: from_ts_value(v)?,
                        })
                    })
                    .collect::<StoreResult<_>>()?;
                Ok(SeriesData::Raw(points))
            }
            Some((bucket, agg)) => {
                if meta.value_type != ValueType::Number {
                    return Err(StoreError::Invalid(Invalid::one(
                        "bucket",
                        format!(
                            "only number attributes can be aggregated; {} of {} holds {} values",
                            q.attribute,
                            q.entity,
                            meta.value_type.as_str()
                        ),
                    )));
                }
                let rows = tokio::task::spawn_blocking(move || {
                    tsdb.buckets(&[meta.series], from, to, bucket)
                })
                .await
                .map_err(|e| StoreError::Backend(format!("reading a series: {e}")))?
                .map_err(|e| tsdb_err("reading a series", e))?;
                Ok(SeriesData::Buckets(bucket_points(rows, agg)?))
            }
        }
    }

    pub(crate) async fn grouped_series_impl(
        &self,
        q: &GroupedSeriesQuery,
    ) -> StoreResult<Vec<GroupSeries>> {
        let keys = self.matching_entities(&q.filter).await?;
        let tree = match q.level {
            Some(_) => self.admin_tree().await?,
            None => HashMap::new(),
        };
        let mut groups: BTreeMap<Option<String>, Vec<u32>> = BTreeMap::new();
        {
            let cat = self.catalog();
            for k in &keys {
                let Some(meta) = cat.series(&k.id, &q.attribute) else {
                    continue;
                };
                if meta.value_type != ValueType::Number {
                    continue;
                }
                let group = match (q.level, &k.admin_unit) {
                    (None, unit) => unit.clone(),
                    (Some(level), Some(unit)) => ancestor_at(&tree, unit, level),
                    (Some(_), None) => None,
                };
                groups.entry(group).or_default().push(meta.series);
            }
        }
        let (from, to, bucket) = (q.from.timestamp_millis(), q.to.timestamp_millis(), q.bucket);
        let tsdb = self.tsdb()?;
        let results = tokio::task::spawn_blocking(move || {
            groups
                .into_iter()
                .map(|(unit, series)| {
                    Ok((unit, series.len(), tsdb.buckets(&series, from, to, bucket)?))
                })
                .collect::<Result<Vec<_>, TsdbError>>()
        })
        .await
        .map_err(|e| StoreError::Backend(format!("reading grouped series: {e}")))?
        .map_err(|e| tsdb_err("reading grouped series", e))?;
        let mut out = Vec::with_capacity(results.len());
        for (admin_unit, entities, rows) in results {
            out.push(GroupSeries {
                admin_unit,
                entities,
                points: bucket_points(rows, q.agg)?,
            });
        }
        // Units in code order, entities without a unit last.
        out.sort_by(|a, b| match (&a.admin_unit, &b.admin_unit) {
            (Some(x), Some(y)) => x.cmp(y),
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (None, None) => std::cmp::Ordering::Equal,
        });
        Ok(out)
    }
}
