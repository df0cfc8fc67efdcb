//! The in-memory catalog of entities: for each, what filters need (type,
//! domain, admin unit, point) and its declared series, so appending
//! observations runs no SQL and dashboards' latest-value reads need none
//! either. Loaded at open, replaced per entity on upsert.

use crate::codec::{col, parsed};
use crate::error::sql_ctx;
use panorama_core::ValueType;
use panorama_store::{SeriesMeta, StoreResult};
use sqlx::SqlitePool;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

/// What the catalog keeps of one entity.
#[derive(Debug, Default)]
pub(crate) struct EntityInfo {
    pub(crate) entity_type: Arc<str>,
    pub(crate) domain: Arc<str>,
    pub(crate) admin_unit: Option<Arc<str>>,
    /// The representative point (lon, lat), as stored for area filters.
    pub(crate) point: Option<(f64, f64)>,
    /// Declared series by attribute name.
    pub(crate) attrs: BTreeMap<Arc<str>, Arc<SeriesMeta>>,
}

/// Every entity and its declared series.
#[derive(Debug, Default)]
pub(crate) struct Catalog {
    entities: HashMap<Arc<str>, EntityInfo>,
    /// The ids in order, for paging without SQL.
    ids: BTreeSet<Arc<str>>,
}

impl Catalog {
    /// Reads every entity and its declared series.
    pub(crate) async fn load(pool: &SqlitePool) -> StoreResult<Self> {
        let rows = sqlx::query(
            "SELECT s.series, e.id, s.attribute, s.value_type, e.type, e.domain, e.admin_unit, e.lon, e.lat
             FROM entities e LEFT JOIN series s ON s.entity = e.id AND s.declared = 1",
        )
        .fetch_all(pool)
        .await
        .map_err(sql_ctx("loading the series catalog"))?;
        let mut cat = Self::default();
        for r in rows {
            let entity: Arc<str> = Arc::from(col::<&str>(&r, 1)?.to_string());
            if !cat.entities.contains_key(&entity) {
                let point = match (col::<Option<f64>>(&r, 7)?, col::<Option<f64>>(&r, 8)?) {
                    (Some(lon), Some(lat)) => Some((lon, lat)),
                    _ => None,
                };
                let info = EntityInfo {
                    entity_type: Arc::from(col::<&str>(&r, 4)?.to_string()),
                    domain: Arc::from(col::<&str>(&r, 5)?.to_string()),
                    admin_unit: col::<Option<&str>>(&r, 6)?.map(|s| Arc::from(s.to_string())),
                    point,
                    attrs: BTreeMap::new(),
                };
                cat.ids.insert(entity.clone());
                cat.entities.insert(entity.clone(), info);
            }
            let Some(info) = cat.entities.get_mut(&entity) else {
                continue;
            };
            let Some(series) = col::<Option<i64>>(&r, 0)? else {
                continue;
            };
            let attribute: Arc<str> = Arc::from(col::<&str>(&r, 2)?.to_string());
            let meta = SeriesMeta {
                series: u32::try_from(series).map_err(|e| crate::error::corrupt("series id", e))?,
                entity: entity.clone(),
                attribute: attribute.clone(),
                value_type: parsed("value type", col(&r, 3)?, ValueType::parse)?,
                entity_type: info.entity_type.clone(),
                domain: info.domain.clone(),
                admin_unit: info.admin_unit.clone(),
            };
            info.attrs.insert(attribute, Arc::new(meta));
        }
        Ok(cat)
    }

    /// The declared series of an entity, by attribute name; None for an unknown entity.
    pub(crate) fn entity(&self, entity: &str) -> Option<&BTreeMap<Arc<str>, Arc<SeriesMeta>>> {
        self.entities.get(entity).map(|e| &e.attrs)
    }

    /// Entity ids after `after` (all when None), in order, with what is known of each.
    pub(crate) fn after<'a>(
        &'a self,
        after: Option<&str>,
    ) -> impl Iterator<Item = (&'a Arc<str>, &'a EntityInfo)> + 'a {
        use std::ops::Bound;
        let start: Bound<&str> = match after {
            Some(a) => Bound::Excluded(a),
            None => Bound::Unbounded,
        };
        self.ids
            .range::<str, _>((start, Bound::Unbounded))
            .filter_map(|id| Some((id, self.entities.get(id)?)))
    }

    /// The series of one attribute.
    pub(crate) fn series(&self, entity: &str, attribute: &str) -> Option<&Arc<SeriesMeta>> {
        self.entities
            .get(entity)
            .and_then(|a| a.attrs.get(attribute))
    }

    /// Replaces what is known of one entity.
    pub(crate) fn put(&mut self, entity: Arc<str>, mut info: EntityInfo, series: Vec<SeriesMeta>) {
        info.attrs = series
            .into_iter()
            .map(|m| (m.attribute.clone(), Arc::new(m)))
            .collect();
        self.ids.insert(entity.clone());
        self.entities.insert(entity, info);
    }
}
