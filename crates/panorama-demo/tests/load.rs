//! `load` writes a consistent demo through the `Store` trait: checked here
//! against a small in-memory store that refuses what a real one refuses
//! (unknown references, undeclared attributes, wrong value types).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use argon2::{Argon2, PasswordVerifier};
use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use panorama_core::{
    AdminUnit, Agency, Domain, Entity, Indicator, IndicatorValue, IndicatorValueInput, Invalid,
    Observation, Page, Period, Source, Timestamp, User,
};
use panorama_demo::{DemoOptions, backfill, build, load, token_sha256};
use panorama_store::{
    Appended, EntityQuery, GroupSeries, GroupedSeriesQuery, IndicatorValueQuery, LatestValue,
    SeriesData, SeriesQuery, SharedStore, SourceActivity, Store, StoreError, StoreHealth,
    StoreResult, UpsertCount,
};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::Mutex;

#[derive(Debug, Default)]
struct Mem {
    units: BTreeMap<String, AdminUnit>,
    domains: BTreeSet<String>,
    agencies: BTreeSet<String>,
    indicators: BTreeMap<String, Indicator>,
    values: usize,
    entities: BTreeMap<String, Entity>,
    observations: u64,
    appends: u64,
    sources: BTreeMap<String, (Source, [u8; 32])>,
    users: BTreeMap<String, (User, String)>,
}

#[derive(Debug, Default)]
struct MemStore {
    mem: Mutex<Mem>,
    /// Answer "busy" to this append (1-based), once.
    busy_on: Option<u64>,
}

fn invalid(field: &str, reason: String) -> StoreError {
    StoreError::Invalid(Invalid::one(field, reason))
}

#[async_trait]
impl Store for MemStore {
    async fn upsert_admin_units(&self, units: &[AdminUnit]) -> StoreResult<()> {
        let mut m = self.mem.lock().unwrap();
        for u in units {
            u.validate()?;
            if let Some(p) = &u.parent
                && !m.units.contains_key(p)
            {
                return Err(StoreError::NotFound {
                    what: "admin unit",
                    key: p.clone(),
                });
            }
            m.units.insert(u.code.clone(), u.clone());
        }
        Ok(())
    }
    async fn admin_units(&self) -> StoreResult<Vec<AdminUnit>> {
        Ok(self.mem.lock().unwrap().units.values().cloned().collect())
    }
    async fn upsert_domains(&self, domains: &[Domain]) -> StoreResult<()> {
        self.mem
            .lock()
            .unwrap()
            .domains
            .extend(domains.iter().map(|d| d.code.clone()));
        Ok(())
    }
    async fn domains(&self) -> StoreResult<Vec<Domain>> {
        Ok(vec![])
    }
    async fn upsert_agencies(&self, agencies: &[Agency]) -> StoreResult<()> {
        let mut m = self.mem.lock().unwrap();
        for a in agencies {
            a.validate()?;
            m.agencies.insert(a.code.clone());
        }
        Ok(())
    }
    async fn agencies(&self) -> StoreResult<Vec<Agency>> {
        Ok(vec![])
    }
    async fn upsert_entities(
        &self,
        entities: &[Entity],
        _at: Timestamp,
    ) -> StoreResult<UpsertCount> {
        let mut m = self.mem.lock().unwrap();
        let mut created = 0;
        for e in entities {
            e.validate()?;
            if !m.domains.contains(&e.domain) {
                return Err(StoreError::NotFound {
                    what: "domain",
                    key: e.domain.clone(),
                });
            }
            let unit = e.admin_unit.clone().unwrap_or_default();
            if !m.units.contains_key(&unit) {
                return Err(StoreError::NotFound {
                    what: "admin unit",
                    key: unit,
                });
            }
            if m.entities.insert(e.id.clone(), e.clone()).is_none() {
                created += 1;
            }
        }
        Ok(UpsertCount {
            created,
            updated: entities.len() - created,
        })
    }
    async fn entity(&self, id: &str) -> StoreResult<Option<Entity>> {
        Ok(self.mem.lock().unwrap().entities.get(id).cloned())
    }
    async fn query_entities(&self, _q: &EntityQuery) -> StoreResult<Page<Entity>> {
        Ok(Page {
            items: vec![],
            next_cursor: None,
        })
    }
    async fn append_observations(&self, obs: Vec<Observation>) -> StoreResult<Appended> {
        let mut m = self.mem.lock().unwrap();
        m.appends += 1;
        if self.busy_on == Some(m.appends) {
            return Err(StoreError::Overloaded {
                retry_after_secs: 1,
            });
        }
        let mut last = None;
        for (i, o) in obs.iter().enumerate() {
            let e = m
                .entities
                .get(&o.entity)
                .ok_or_else(|| StoreError::NotFound {
                    what: "entity",
                    key: o.entity.clone(),
                })?;
            let spec = e.attributes.get(&o.attribute).ok_or_else(|| {
                invalid("attribute", format!("{} has no {}", o.entity, o.attribute))
            })?;
            o.value
                .check_type(&format!("[{i}].value"), spec.value_type)
                .map_err(|e| StoreError::Invalid(e.into()))?;
            assert!(last.is_none_or(|t| t <= o.time), "time order");
            last = Some(o.time);
        }
        m.observations += obs.len() as u64;
        Ok(Appended {
            observations: vec![],
            series: vec![],
        })
    }
    async fn latest(&self, _entities: &[String]) -> StoreResult<Vec<LatestValue>> {
        Ok(vec![])
    }
    async fn series(&self, _q: &SeriesQuery) -> StoreResult<SeriesData> {
        Ok(SeriesData::Raw(vec![]))
    }
    async fn grouped_series(&self, _q: &GroupedSeriesQuery) -> StoreResult<Vec<GroupSeries>> {
        Ok(vec![])
    }
    async fn upsert_indicators(&self, indicators: &[Indicator]) -> StoreResult<()> {
        let mut m = self.mem.lock().unwrap();
        for i in indicators {
            i.validate()?;
            if !m.domains.contains(&i.domain) {
                return Err(StoreError::NotFound {
                    what: "domain",
                    key: i.domain.clone(),
                });
            }
            m.indicators.insert(i.code.clone(), i.clone());
        }
        Ok(())
    }
    async fn indicators(&self, _domain: Option<&str>) -> StoreResult<Vec<Indicator>> {
        Ok(vec![])
    }
    async fn indicator(&self, code: &str) -> StoreResult<Option<Indicator>> {
        Ok(self.mem.lock().unwrap().indicators.get(code).cloned())
    }
    async fn submit_indicator_values(
        &self,
        values: &[IndicatorValueInput],
        submitted_by: &str,
        _at: Timestamp,
    ) -> StoreResult<Vec<IndicatorValue>> {
        let mut m = self.mem.lock().unwrap();
        assert!(submitted_by.starts_with("user:"));
        for v in values {
            let p: Period = v.validate()?;
            let ind = m
                .indicators
                .get(&v.indicator)
                .ok_or_else(|| StoreError::NotFound {
                    what: "indicator",
                    key: v.indicator.clone(),
                })?;
            if !p.fits(ind.periodicity) {
                return Err(invalid(
                    "period",
                    format!("{} does not fit {}", v.period, v.indicator),
                ));
            }
            if !m.units.contains_key(&v.admin_unit) {
                return Err(StoreError::NotFound {
                    what: "admin unit",
                    key: v.admin_unit.clone(),
                });
            }
        }
        m.values += values.len();
        Ok(vec![])
    }
    async fn indicator_values(&self, _q: &IndicatorValueQuery) -> StoreResult<Vec<IndicatorValue>> {
        Ok(vec![])
    }
    async fn indicator_value_history(
        &self,
        _i: &str,
        _p: &str,
        _a: &str,
    ) -> StoreResult<Vec<IndicatorValue>> {
        Ok(vec![])
    }
    async fn create_source(&self, source: &Source, token_sha256: &[u8; 32]) -> StoreResult<()> {
        source.validate()?;
        let mut m = self.mem.lock().unwrap();
        if m.sources.contains_key(&source.id) {
            return Err(StoreError::Conflict(format!("source {} exists", source.id)));
        }
        m.sources
            .insert(source.id.clone(), (source.clone(), *token_sha256));
        Ok(())
    }
    async fn source_by_token(&self, token_sha256: &[u8; 32]) -> StoreResult<Option<Source>> {
        Ok(self
            .mem
            .lock()
            .unwrap()
            .sources
            .values()
            .find(|(_, h)| h == token_sha256)
            .map(|(s, _)| s.clone()))
    }
    async fn sources(&self) -> StoreResult<Vec<Source>> {
        Ok(self
            .mem
            .lock()
            .unwrap()
            .sources
            .values()
            .map(|(s, _)| s.clone())
            .collect())
    }
    async fn record_source_activity(&self, id: &str, a: &SourceActivity) -> StoreResult<()> {
        let mut m = self.mem.lock().unwrap();
        let (s, _) = m.sources.get_mut(id).ok_or_else(|| StoreError::NotFound {
            what: "source",
            key: id.into(),
        })?;
        s.accepted += a.accepted;
        s.rejected += a.rejected;
        s.last_seen_at = a.at.or(s.last_seen_at);
        Ok(())
    }
    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        user.validate()?;
        let mut m = self.mem.lock().unwrap();
        if m.users
            .insert(user.username.clone(), (user.clone(), password_hash.into()))
            .is_some()
        {
            return Err(StoreError::Conflict(format!(
                "user {} exists",
                user.username
            )));
        }
        Ok(())
    }
    async fn user_with_hash(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        Ok(self.mem.lock().unwrap().users.get(username).cloned())
    }
    async fn users(&self) -> StoreResult<Vec<User>> {
        Ok(vec![])
    }
    async fn create_session(&self, _t: &[u8; 32], _u: &str, _e: Timestamp) -> StoreResult<()> {
        Ok(())
    }
    async fn session_user(&self, _t: &[u8; 32], _now: Timestamp) -> StoreResult<Option<User>> {
        Ok(None)
    }
    async fn delete_session(&self, _t: &[u8; 32]) -> StoreResult<()> {
        Ok(())
    }
    async fn health(&self) -> StoreHealth {
        StoreHealth::default()
    }
    async fn close(&self) -> StoreResult<()> {
        Ok(())
    }
}

#[tokio::test]
async fn load_writes_everything_through_the_store() {
    let opts = DemoOptions {
        sensors: 200,
        cameras: 20,
        backfill_days: 1,
        ..DemoOptions::new(Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 0).unwrap())
    };
    let data = build(&opts).unwrap();
    let mem = Arc::new(MemStore {
        busy_on: Some(3),
        ..MemStore::default()
    });
    let store: SharedStore = mem.clone();
    let steps = Mutex::new(Vec::new());
    let loaded = load(&store, &data, &opts, &|s: &str| {
        steps.lock().unwrap().push(s.to_string())
    })
    .await
    .unwrap();

    let expected = backfill(&data, &opts).observation_count();
    assert_eq!(loaded.observations, expected);
    assert_eq!(loaded.entities, data.entities.len());
    assert_eq!(loaded.indicator_values, data.indicator_values.len());
    let steps = steps.into_inner().unwrap();
    assert!(steps.iter().any(|s| s.contains("100%")), "{steps:?}");

    let m = mem.mem.lock().unwrap();
    assert_eq!(
        m.observations, expected,
        "a batch refused as busy is retried"
    );
    assert_eq!(m.units.len(), data.admin_units.len());
    assert_eq!(m.entities.len(), data.entities.len());
    assert_eq!(m.values, data.indicator_values.len());
    assert_eq!(m.indicators.len(), data.indicators.len());
    // Sources: hashed tokens, and seen at `now` with their history counted.
    let mut total = 0;
    for s in &data.sources {
        let (stored, hash) = &m.sources[&s.source.id];
        assert_eq!(*hash, token_sha256(&s.token));
        assert_eq!(stored.last_seen_at, Some(opts.now));
        assert!(!stored.freshness(opts.now).late);
        total += stored.accepted;
    }
    assert_eq!(total, expected);
    // Users: argon2 hashes of the demo passwords.
    for u in &data.users {
        let (_, hash) = &m.users[&u.user.username];
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        Argon2::default()
            .verify_password(u.password.as_bytes(), hash.as_str())
            .unwrap();
    }
}
