//! Entities, their declared attributes (series) and entity queries.

use crate::SqliteStore;
use crate::codec::{json, json_from, opt_ts_from, ts};
use crate::error::sql_ctx;
use crate::fold::fold;
use crate::reference::{check, item};
use crate::refs::{Ref, Refs};
use panorama_core::geo::{BBox, area_contains};
use panorama_core::{AttributeSpec, Entity, FieldError, Page, Timestamp, ValueType};
use panorama_store::{EntityQuery, SeriesMeta, StoreError, StoreResult, UpsertCount};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

/// Largest page of entities.
pub(crate) const MAX_PAGE: usize = 1000;

/// The columns of a full entity, `e` being the entities table.
const ENTITY_COLUMNS: &str =
    "e.id, e.type AS entity_type, e.name, e.domain, e.admin_unit, e.location, e.properties,
    e.source, e.updated_at, e.lon, e.lat,
    (SELECT json_group_object(s.attribute, json_object('type', s.value_type, 'unit', s.unit))
       FROM series s WHERE s.entity = e.id AND s.declared = 1) AS attributes";

#[derive(sqlx::FromRow)]
struct EntityRow {
    id: String,
    entity_type: String,
    name: String,
    domain: String,
    admin_unit: Option<String>,
    location: Option<String>,
    properties: String,
    source: Option<String>,
    updated_at: Option<i64>,
    lon: Option<f64>,
    lat: Option<f64>,
    attributes: Option<String>,
}

impl EntityRow {
    fn into_entity(self) -> StoreResult<Entity> {
        Ok(Entity {
            location: self
                .location
                .as_deref()
                .map(|l| json_from("entity location", l))
                .transpose()?,
            properties: json_from("entity properties", &self.properties)?,
            attributes: match self.attributes.as_deref() {
                Some(a) => json_from::<BTreeMap<String, AttributeSpec>>("entity attributes", a)?,
                None => BTreeMap::new(),
            },
            updated_at: opt_ts_from(self.updated_at)?,
            id: self.id,
            entity_type: self.entity_type,
            name: self.name,
            domain: self.domain,
            admin_unit: self.admin_unit,
            source: self.source,
        })
    }
}

/// An entity matched by a filter, with what grouping needs.
#[derive(sqlx::FromRow)]
pub(crate) struct EntityKey {
    pub(crate) id: String,
    pub(crate) admin_unit: Option<String>,
    lon: Option<f64>,
    lat: Option<f64>,
}

/// A series already stored or allocated earlier in the batch.
#[derive(Debug, Clone, Copy)]
struct KnownSeries {
    series: Option<u32>,
    value_type: ValueType,
}

/// Cursors are the hex of the last id returned: opaque, URL-safe, and
/// checkable.
pub(crate) fn encode_cursor(id: &str) -> String {
    id.bytes().map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn decode_cursor(c: &str) -> StoreResult<String> {
    let bad = || {
        StoreError::Invalid(
            FieldError::new("cursor", "is not a cursor from a previous page").into(),
        )
    };
    if c.is_empty() || !c.len().is_multiple_of(2) || c.len() > 1024 || !c.is_ascii() {
        return Err(bad());
    }
    let bytes = (0..c.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&c[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| bad())?;
    String::from_utf8(bytes).map_err(|_| bad())
}

/// The boxes that pre-select candidates of a query (in SQL, or in the catalog).
pub(crate) fn entity_boxes(q: &EntityQuery) -> Vec<BBox> {
    q.bbox
        .into_iter()
        .chain(q.within.as_ref().and_then(BBox::of))
        .collect()
}

/// Adds the WHERE conditions of `q` (all but the exact area test).
fn push_filters(qb: &mut QueryBuilder<Sqlite>, q: &EntityQuery, after: Option<&str>) {
    qb.push(" WHERE 1 = 1");
    if !q.ids.is_empty() {
        qb.push(" AND e.id IN (");
        let mut sep = qb.separated(", ");
        for id in &q.ids {
            sep.push_bind(id.clone());
        }
        qb.push(")");
    }
    if !q.types.is_empty() {
        qb.push(" AND e.type IN (");
        let mut sep = qb.separated(", ");
        for t in &q.types {
            sep.push_bind(t.clone());
        }
        qb.push(")");
    }
    if let Some(d) = &q.domain {
        qb.push(" AND e.domain = ").push_bind(d.clone());
    }
    if let Some(u) = &q.admin_unit {
        qb.push(
            " AND e.admin_unit IN (WITH RECURSIVE sub (code) AS (SELECT ",
        )
        .push_bind(u.clone())
        .push(" UNION SELECT a.code FROM admin_units a JOIN sub ON a.parent = sub.code) SELECT code FROM sub)");
    }
    for b in entity_boxes(q) {
        qb.push(" AND e.lon BETWEEN ")
            .push_bind(b.west)
            .push(" AND ")
            .push_bind(b.east)
            .push(" AND e.lat BETWEEN ")
            .push_bind(b.south)
            .push(" AND ")
            .push_bind(b.north);
    }
    if let Some(t) = q.text.as_deref().map(fold).filter(|t| !t.is_empty()) {
        qb.push(" AND instr(e.search_text, ")
            .push_bind(t)
            .push(") > 0");
    }
    if let Some(a) = after {
        qb.push(" AND e.id > ").push_bind(a.to_string());
    }
}

/// Whether an entity's point passes the exact area test of `q`.
pub(crate) fn in_area(q: &EntityQuery, lon: Option<f64>, lat: Option<f64>) -> bool {
    match (&q.within, lon, lat) {
        (None, _, _) => true,
        (Some(area), Some(lon), Some(lat)) => area_contains(area, lon, lat),
        _ => false,
    }
}

impl SqliteStore {
    pub(crate) async fn upsert_entities_impl(
        &self,
        entities: &[Entity],
        at: Timestamp,
    ) -> StoreResult<UpsertCount> {
        let mut errs = Vec::new();
        for (i, e) in entities.iter().enumerate() {
            if let Err(e) = e.validate() {
                errs.extend(e.under(&item(i)).0);
            }
        }
        if entities.is_empty() {
            return Ok(UpsertCount {
                created: 0,
                updated: 0,
            });
        }
        // Shape and reference errors are reported together.
        let mut w = self.begin_write().await?;
        let conn: &mut SqliteConnection = &mut w.tx;
        let mut refs = Refs::default();
        let mut known: HashMap<String, HashMap<String, KnownSeries>> = HashMap::new();
        for (i, e) in entities.iter().enumerate() {
            if !refs.exists(conn, Ref::Domain, &e.domain).await? {
                errs.push(FieldError::new(
                    format!("[{i}].domain"),
                    Ref::Domain.unknown(&e.domain),
                ));
            }
            if let Some(u) = &e.admin_unit
                && !refs.exists(conn, Ref::AdminUnit, u).await?
            {
                errs.push(FieldError::new(
                    format!("[{i}].admin_unit"),
                    Ref::AdminUnit.unknown(u),
                ));
            }
            if !known.contains_key(&e.id) {
                let stored = stored_series(conn, &e.id).await?;
                known.insert(e.id.clone(), stored);
            }
            let Some(series) = known.get_mut(&e.id) else {
                continue;
            };
            for (name, spec) in &e.attributes {
                match series.get(name) {
                    Some(k) if k.value_type != spec.value_type => errs.push(FieldError::new(
                        format!("[{i}].attributes.{name}"),
                        format!(
                            "already holds {} values and cannot become {}; an attribute keeps its type, declare a new one instead",
                            k.value_type.as_str(),
                            spec.value_type.as_str()
                        ),
                    )),
                    Some(_) => {}
                    None => {
                        series.insert(name.clone(), KnownSeries { series: None, value_type: spec.value_type });
                    }
                }
            }
        }
        check(errs)?;

        let mut next: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(series) + 1, 0) FROM series")
            .fetch_one(&mut *conn)
            .await
            .map_err(sql_ctx("allocating series ids"))?;
        let mut created = 0;
        let mut existing: HashMap<&str, bool> = HashMap::new();
        let mut catalog_updates = Vec::with_capacity(entities.len());
        for e in entities {
            let exists = match existing.get(e.id.as_str()) {
                Some(&x) => x,
                None => sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM entities WHERE id = ?)")
                    .bind(&e.id)
                    .fetch_one(&mut *conn)
                    .await
                    .map_err(sql_ctx("reading an entity"))?,
            };
            if !exists {
                created += 1;
            }
            existing.insert(&e.id, true);

            let point = e.point();
            let location = e
                .location
                .as_ref()
                .map(|l| json("location", l))
                .transpose()?;
            sqlx::query(
                "INSERT INTO entities (id, type, name, search_text, domain, admin_unit, lon, lat, location, properties,
                   source, updated_at)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET type = excluded.type, name = excluded.name,
                   search_text = excluded.search_text, domain = excluded.domain, admin_unit = excluded.admin_unit,
                   lon = excluded.lon, lat = excluded.lat, location = excluded.location,
                   properties = excluded.properties, source = excluded.source, updated_at = excluded.updated_at",
            )
            .bind(&e.id)
            .bind(&e.entity_type)
            .bind(&e.name)
            .bind(format!("{} {}", fold(&e.name), fold(&e.id)))
            .bind(&e.domain)
            .bind(&e.admin_unit)
            .bind(point.map(|p| p.0))
            .bind(point.map(|p| p.1))
            .bind(location)
            .bind(json("properties", &e.properties)?)
            .bind(&e.source)
            .bind(ts(at))
            .execute(&mut *conn)
            .await
            .map_err(sql_ctx("writing an entity"))?;
            sqlx::query("UPDATE series SET declared = 0 WHERE entity = ?")
                .bind(&e.id)
                .execute(&mut *conn)
                .await
                .map_err(sql_ctx("writing entity attributes"))?;

            let entity: Arc<str> = Arc::from(e.id.as_str());
            let entity_type: Arc<str> = Arc::from(e.entity_type.as_str());
            let domain: Arc<str> = Arc::from(e.domain.as_str());
            let admin_unit: Option<Arc<str>> = e.admin_unit.as_deref().map(Arc::from);
            let mut metas = Vec::with_capacity(e.attributes.len());
            let series = known.entry(e.id.clone()).or_default();
            for (name, spec) in &e.attributes {
                let k = series.entry(name.clone()).or_insert(KnownSeries {
                    series: None,
                    value_type: spec.value_type,
                });
                let id = match k.series {
                    Some(id) => {
                        sqlx::query("UPDATE series SET unit = ?, declared = 1 WHERE series = ?")
                            .bind(&spec.unit)
                            .bind(id)
                            .execute(&mut *conn)
                            .await
                            .map_err(sql_ctx("writing entity attributes"))?;
                        id
                    }
                    None => {
                        let id = u32::try_from(next)
                            .ok()
                            .filter(|id| *id < panorama_tsdb::MAX_SERIES)
                            .ok_or_else(|| {
                                StoreError::Backend(format!(
                                    "all {} series ids are in use; no new attribute can be declared",
                                    panorama_tsdb::MAX_SERIES
                                ))
                            })?;
                        next += 1;
                        sqlx::query(
                            "INSERT INTO series (series, entity, attribute, value_type, unit, declared)
                             VALUES (?, ?, ?, ?, ?, 1)",
                        )
                        .bind(id)
                        .bind(&e.id)
                        .bind(name)
                        .bind(spec.value_type.as_str())
                        .bind(&spec.unit)
                        .execute(&mut *conn)
                        .await
                        .map_err(sql_ctx("writing entity attributes"))?;
                        k.series = Some(id);
                        id
                    }
                };
                metas.push(SeriesMeta {
                    series: id,
                    entity: entity.clone(),
                    attribute: Arc::from(name.as_str()),
                    entity_type: entity_type.clone(),
                    domain: domain.clone(),
                    admin_unit: admin_unit.clone(),
                    value_type: spec.value_type,
                });
            }
            let info = crate::catalog::EntityInfo {
                entity_type,
                domain,
                admin_unit,
                point,
                attrs: BTreeMap::new(),
            };
            catalog_updates.push((entity, info, metas));
        }
        w.commit().await?;
        let mut cat = self.catalog_mut();
        for (entity, info, metas) in catalog_updates {
            cat.put(entity, info, metas);
        }
        Ok(UpsertCount {
            created,
            updated: entities.len() - created,
        })
    }

    pub(crate) async fn entity_impl(&self, id: &str) -> StoreResult<Option<Entity>> {
        let mut qb = QueryBuilder::<Sqlite>::new("SELECT ");
        qb.push(ENTITY_COLUMNS)
            .push(" FROM entities e WHERE e.id = ")
            .push_bind(id.to_string());
        let row: Option<EntityRow> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_ctx("reading an entity"))?;
        row.map(EntityRow::into_entity).transpose()
    }

    pub(crate) async fn query_entities_impl(&self, q: &EntityQuery) -> StoreResult<Page<Entity>> {
        let limit = q.limit.clamp(1, MAX_PAGE);
        let mut after = q.cursor.as_deref().map(decode_cursor).transpose()?;
        // Without an area every candidate matches, so one query of limit + 1
        // rows tells whether there is a next page; with one, scan on in
        // batches until enough candidates pass the exact test.
        let batch = if q.within.is_some() {
            (limit + 1).max(256)
        } else {
            limit + 1
        };
        let mut items: Vec<Entity> = Vec::with_capacity(limit + 1);
        'scan: loop {
            let mut qb = QueryBuilder::<Sqlite>::new("SELECT ");
            qb.push(ENTITY_COLUMNS).push(" FROM entities e");
            push_filters(&mut qb, q, after.as_deref());
            qb.push(" ORDER BY e.id LIMIT ")
                .push_bind(i64::try_from(batch).unwrap_or(i64::MAX));
            let rows: Vec<EntityRow> = qb
                .build_query_as()
                .fetch_all(&self.pool)
                .await
                .map_err(sql_ctx("querying entities"))?;
            let n = rows.len();
            for r in rows {
                after = Some(r.id.clone());
                if in_area(q, r.lon, r.lat) {
                    items.push(r.into_entity()?);
                    if items.len() > limit {
                        break 'scan;
                    }
                }
            }
            if n < batch {
                break;
            }
        }
        let next_cursor = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|e| encode_cursor(&e.id))
        } else {
            None
        };
        Ok(Page { items, next_cursor })
    }

    /// Every entity matching the filter (cursor and limit ignored), by id.
    pub(crate) async fn matching_entities(&self, q: &EntityQuery) -> StoreResult<Vec<EntityKey>> {
        let mut qb =
            QueryBuilder::<Sqlite>::new("SELECT e.id, e.admin_unit, e.lon, e.lat FROM entities e");
        push_filters(&mut qb, q, None);
        qb.push(" ORDER BY e.id");
        let rows: Vec<EntityKey> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("querying entities"))?;
        Ok(rows
            .into_iter()
            .filter(|r| in_area(q, r.lon, r.lat))
            .collect())
    }
}

/// The series ever declared for an entity, by attribute.
async fn stored_series(
    conn: &mut SqliteConnection,
    entity: &str,
) -> StoreResult<HashMap<String, KnownSeries>> {
    let rows: Vec<(String, i64, String)> =
        sqlx::query_as("SELECT attribute, series, value_type FROM series WHERE entity = ?")
            .bind(entity)
            .fetch_all(&mut *conn)
            .await
            .map_err(sql_ctx("reading entity attributes"))?;
    rows.into_iter()
        .map(|(attr, series, vt)| {
            Ok((
                attr,
                KnownSeries {
                    series: Some(
                        u32::try_from(series).map_err(|e| crate::error::corrupt("series id", e))?,
                    ),
                    value_type: crate::codec::parsed("value type", &vt, ValueType::parse)?,
                },
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let id = "urn:ngsi-ld:AirQualitySensor:td1-007";
        assert_eq!(decode_cursor(&encode_cursor(id)).ok().as_deref(), Some(id));
        for bad in ["", "abc", "zz", "ff", "not a cursor"] {
            assert!(
                matches!(decode_cursor(bad), Err(StoreError::Invalid(_))),
                "{bad}"
            );
        }
    }
}
