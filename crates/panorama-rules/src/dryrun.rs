//! Dry-runs: what a rule would have fired over the last days, replayed
//! from stored history through the same evaluators the engine runs.

use crate::compile::{Kind, ScopeMatch, UnitTree, compile, numeric, point_of_value, value_equals};
use crate::error::{OpsError, OpsResult};
use crate::eval::{
    CountState, Edge, SeriesState, SilenceState, StatusState, Transition, ZoneState,
};
use crate::model::Rule;
use crate::service::{Ops, ms_to_ts};
use chrono::{DateTime, Utc};
use panorama_core::{Entity, Invalid, Period, Timestamp, Value};
use panorama_store::{EntityQuery, IndicatorValueQuery, SeriesData, SeriesQuery};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// Most entities a dry-run replays.
pub const MAX_ENTITIES: usize = 1000;
/// Most values read per series.
pub const MAX_POINTS: usize = 200_000;

/// One alert the rule would have raised.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DryAlert {
    /// What it is about within the rule (as an alert's `key`).
    pub key: String,
    /// Entity id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity: Option<String>,
    /// Attribute.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// When it would have fired (time of the data).
    pub fired_at: DateTime<Utc>,
    /// The value (or metric) that fired it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    /// When it would have cleared; absent while it would still be open.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cleared_at: Option<DateTime<Utc>>,
    /// Events counted while it was open (zone rules).
    pub occurrences: u64,
    /// Link to the series chart around it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
}

/// The outcome of a dry-run.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DryRun {
    /// Rule id.
    pub rule: String,
    /// Start of the replayed history.
    pub from: DateTime<Utc>,
    /// End (now).
    pub to: DateTime<Utc>,
    /// Series (or indicator values, sources) replayed.
    pub subjects: usize,
    /// Values replayed.
    pub values: usize,
    /// The alerts it would have raised, in firing order.
    pub alerts: Vec<DryAlert>,
    /// Whether the scope held more than could be replayed.
    pub truncated: bool,
    /// What the replay could not show.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

#[derive(Default)]
struct Episodes {
    list: Vec<DryAlert>,
    open: HashMap<String, usize>,
}

impl Episodes {
    fn push(
        &mut self,
        key: &str,
        entity: Option<&str>,
        attribute: Option<&str>,
        tr: Transition,
        chart: Option<String>,
    ) {
        match tr.edge {
            Edge::Fire => {
                self.open.insert(key.to_string(), self.list.len());
                self.list.push(DryAlert {
                    key: key.to_string(),
                    entity: entity.map(String::from),
                    attribute: attribute.map(String::from),
                    fired_at: ms_to_ts(tr.at_ms),
                    value: tr.value,
                    cleared_at: None,
                    occurrences: 1,
                    chart,
                });
            }
            Edge::Repeat => {
                if let Some(&i) = self.open.get(key) {
                    self.list[i].occurrences += 1;
                }
            }
            Edge::Clear => {
                if let Some(i) = self.open.remove(key) {
                    self.list[i].cleared_at = Some(ms_to_ts(tr.at_ms));
                }
            }
        }
    }
}

/// Entities in a scope that declare `attribute` (any when None).
async fn entities_in(
    ops: &Ops,
    scope: &ScopeMatch,
    attribute: Option<&str>,
) -> OpsResult<(Vec<Entity>, bool)> {
    let store = &ops.inner.store;
    let domains: Vec<Option<String>> = if scope.domains.is_empty() {
        vec![None]
    } else {
        scope.domains.iter().cloned().map(Some).collect()
    };
    let mut out = Vec::new();
    let mut truncated = false;
    'outer: for d in domains {
        let mut cursor = None;
        loop {
            let page = store
                .query_entities(&EntityQuery {
                    ids: scope.entities.iter().cloned().collect(),
                    types: scope.types.iter().cloned().collect(),
                    domain: d.clone(),
                    cursor,
                    limit: 1000,
                    ..EntityQuery::default()
                })
                .await?;
            for e in page.items {
                if scope.entity(&e.id, &e.entity_type, &e.domain, e.admin_unit.as_deref())
                    && attribute.is_none_or(|a| e.attributes.contains_key(a))
                {
                    if out.len() >= MAX_ENTITIES {
                        truncated = true;
                        break 'outer;
                    }
                    out.push(e);
                }
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
    }
    Ok((out, truncated))
}

async fn raw(
    ops: &Ops,
    entity: &str,
    attribute: &str,
    from: Timestamp,
    to: Timestamp,
) -> OpsResult<Vec<(i64, Value)>> {
    let q = SeriesQuery {
        entity: entity.into(),
        attribute: attribute.into(),
        from,
        to,
        bucket: None,
        limit: MAX_POINTS,
    };
    Ok(match ops.inner.store.series(&q).await {
        Ok(SeriesData::Raw(p)) => p
            .into_iter()
            .map(|p| (p.time.timestamp_millis(), p.value))
            .collect(),
        Ok(SeriesData::Buckets(_)) => Vec::new(),
        Err(panorama_store::StoreError::NotFound { .. }) => Vec::new(),
        Err(e) => return Err(e.into()),
    })
}

impl Ops {
    /// Replays the last `days` of history through `rule` (not stored).
    pub async fn dry_run(&self, rule: Rule, days: u32) -> OpsResult<DryRun> {
        let max = self.inner.config.dry_run_max_days;
        if days == 0 || days > max {
            return Err(Invalid::one("days", format!("must be between 1 and {max}")).into());
        }
        self.check_references(&rule).await?;
        let to = self.now();
        let from = to - chrono::Duration::days(i64::from(days));
        let tree = UnitTree::new(&self.inner.store.admin_units().await?);
        let c = compile(rule, 0, &tree).map_err(|e| Invalid::one("condition", e))?;
        let attr = c.attribute.clone();
        let mut ep = Episodes::default();
        let mut run = DryRun {
            rule: c.rule.id.clone(),
            from,
            to,
            subjects: 0,
            values: 0,
            alerts: Vec::new(),
            truncated: false,
            notes: Vec::new(),
        };
        let now_ms = to.timestamp_millis();
        match &c.kind {
            Kind::Series(eval) => {
                let attr = attr.unwrap_or_default();
                let (entities, truncated) = entities_in(self, &c.scope, Some(&attr)).await?;
                run.truncated = truncated;
                for e in entities {
                    let points = raw(self, &e.id, &attr, from, to).await?;
                    run.subjects += 1;
                    run.values += points.len();
                    run.truncated |= points.len() >= MAX_POINTS;
                    let mut st = SeriesState::default();
                    let key = format!("{}|{attr}", e.id);
                    for (t, v) in points {
                        let Some(x) = v.as_f64() else { continue };
                        if let Some(tr) = eval.observe(&mut st, t, x).transition {
                            let around = ms_to_ts(tr.at_ms);
                            let chart = crate::engine::chart_link(
                                &e.id,
                                &attr,
                                around - chrono::Duration::hours(6),
                                around + chrono::Duration::hours(6),
                            );
                            ep.push(&key, Some(&e.id), Some(&attr), tr, Some(chart));
                        }
                    }
                }
            }
            Kind::EntitySilence { max_ms } => {
                let (entities, truncated) = entities_in(self, &c.scope, attr.as_deref()).await?;
                run.truncated = truncated;
                for e in entities {
                    let attrs: Vec<String> = match &attr {
                        Some(a) => vec![a.clone()],
                        None => e.attributes.keys().cloned().collect(),
                    };
                    let mut times = Vec::new();
                    for a in &attrs {
                        times.extend(
                            raw(self, &e.id, a, from, to)
                                .await?
                                .into_iter()
                                .map(|p| p.0),
                        );
                    }
                    times.sort_unstable();
                    run.subjects += 1;
                    run.values += times.len();
                    let mut st = SilenceState::default();
                    for t in times {
                        if let Some(last) = st.last_ms
                            && t - last > *max_ms
                            && let Some(tr) = st.tick(last + max_ms + 1, *max_ms)
                        {
                            ep.push(&e.id, Some(&e.id), attr.as_deref(), tr, None);
                        }
                        if let Some(tr) = st.seen(t) {
                            ep.push(&e.id, Some(&e.id), attr.as_deref(), tr, None);
                        }
                    }
                    if let Some(tr) = st.tick(now_ms, *max_ms) {
                        ep.push(&e.id, Some(&e.id), attr.as_deref(), tr, None);
                    }
                }
            }
            Kind::Zone {
                area,
                equals,
                quiet_ms,
            } => {
                let attr = attr.unwrap_or_default();
                let (entities, truncated) = entities_in(self, &c.scope, Some(&attr)).await?;
                run.truncated = truncated;
                for e in entities {
                    let points = raw(self, &e.id, &attr, from, to).await?;
                    run.subjects += 1;
                    run.values += points.len();
                    let mut st = ZoneState::default();
                    for (t, v) in points {
                        if equals.as_ref().is_some_and(|w| !value_equals(&v, w)) {
                            continue;
                        }
                        let p = point_of_value(&v).or_else(|| e.point());
                        if !p.is_some_and(|(x, y)| panorama_core::geo::area_contains(area, x, y)) {
                            continue;
                        }
                        if let Some(last) = st.last_ms
                            && let Some(tr) = st.tick((last + quiet_ms).min(t), *quiet_ms)
                        {
                            ep.push(&e.id, Some(&e.id), Some(&attr), tr, None);
                        }
                        if let Some(tr) = st.event(t, numeric(&v)) {
                            ep.push(&e.id, Some(&e.id), Some(&attr), tr, None);
                        }
                    }
                    if let Some(tr) = st.tick(now_ms, *quiet_ms) {
                        ep.push(&e.id, Some(&e.id), Some(&attr), tr, None);
                    }
                }
            }
            Kind::Count {
                area,
                equals,
                window_ms,
                at_least,
            } => {
                let attr = attr.unwrap_or_default();
                let (entities, truncated) = entities_in(self, &c.scope, Some(&attr)).await?;
                run.truncated = truncated;
                let mut events = Vec::new();
                for e in entities {
                    let points = raw(self, &e.id, &attr, from, to).await?;
                    run.subjects += 1;
                    run.values += points.len();
                    for (t, v) in points {
                        if equals.as_ref().is_some_and(|w| !value_equals(&v, w)) {
                            continue;
                        }
                        if let Some(area) = area {
                            let p = point_of_value(&v).or_else(|| e.point());
                            if !p
                                .is_some_and(|(x, y)| panorama_core::geo::area_contains(area, x, y))
                            {
                                continue;
                            }
                        }
                        events.push(t);
                    }
                }
                events.sort_unstable();
                let mut st = CountState::default();
                for t in events {
                    while let Some(exp) = st.next_expiry(*window_ms).filter(|x| *x <= t) {
                        if let Some(tr) = st.tick(exp, *window_ms, *at_least) {
                            ep.push("area", None, Some(&attr), tr, None);
                        }
                    }
                    if let Some(tr) = st.event(t, *window_ms, *at_least) {
                        ep.push("area", None, Some(&attr), tr, None);
                    }
                }
                while let Some(exp) = st.next_expiry(*window_ms).filter(|x| *x <= now_ms) {
                    if let Some(tr) = st.tick(exp, *window_ms, *at_least) {
                        ep.push("area", None, Some(&attr), tr, None);
                    }
                }
            }
            Kind::Status {
                indicators,
                red_only,
            } => {
                let defs: HashMap<String, panorama_core::Indicator> = self
                    .inner
                    .store
                    .indicators(None)
                    .await?
                    .into_iter()
                    .map(|i| (i.code.clone(), i))
                    .collect();
                let values = self
                    .inner
                    .store
                    .indicator_values(&IndicatorValueQuery {
                        from: Some(from.date_naive()),
                        ..IndicatorValueQuery::default()
                    })
                    .await?;
                let mut by_key: BTreeMap<String, Vec<(i64, panorama_core::IndicatorValue)>> =
                    BTreeMap::new();
                for v in values {
                    let Some(ind) = defs.get(&v.indicator) else {
                        continue;
                    };
                    let chosen = (indicators.is_empty() || indicators.contains(&v.indicator))
                        && c.scope.domain(Some(&ind.domain))
                        && c.scope.unit(Some(&v.admin_unit));
                    let Ok(p) = Period::parse(&v.period) else {
                        continue;
                    };
                    if chosen {
                        let day = p
                            .start()
                            .signed_duration_since(chrono::NaiveDate::default());
                        by_key
                            .entry(format!("{}|{}", v.indicator, v.admin_unit))
                            .or_default()
                            .push((day.num_days(), v));
                    }
                }
                run.subjects = by_key.len();
                for (key, mut vals) in by_key {
                    vals.sort_by_key(|(d, _)| *d);
                    run.values += vals.len();
                    let mut st = StatusState::default();
                    for (day, v) in vals {
                        let Some(ind) = defs.get(&v.indicator) else {
                            continue;
                        };
                        use panorama_core::IndicatorStatus as S;
                        let s = ind.status(
                            v.value,
                            Period::parse(&v.period).map(|p| p.year()).unwrap_or(0),
                        );
                        let breach = if *red_only {
                            s == S::Red
                        } else {
                            matches!(s, S::Red | S::Amber)
                        };
                        // History is replayed at the periods' starts.
                        let at = chrono::NaiveDate::default()
                            .checked_add_signed(chrono::Duration::days(day))
                            .and_then(|d| d.and_hms_opt(0, 0, 0))
                            .map(|d| d.and_utc().timestamp_millis())
                            .unwrap_or(0);
                        if let Some(tr) = st.observe(day, breach, at, v.value) {
                            ep.push(&key, None, None, tr, None);
                        }
                    }
                }
                run.notes.push(
                    "indicator values are replayed in period order at their current revision"
                        .into(),
                );
            }
            Kind::SourceSilence {
                sources,
                grace_secs,
            } => {
                for s in self.inner.store.sources().await? {
                    if (!sources.is_empty() && !sources.contains(&s.id))
                        || !c.scope.domain(s.domain.as_deref())
                    {
                        continue;
                    }
                    run.subjects += 1;
                    let since = s.last_seen_at.unwrap_or(s.created_at);
                    let limit = i64::try_from(s.expected_interval_secs)
                        .unwrap_or(i64::MAX)
                        .saturating_add(*grace_secs);
                    if (to - since).num_seconds() > limit {
                        let fired = since + chrono::Duration::seconds(limit.saturating_add(1));
                        ep.push(
                            &format!("source:{}", s.id),
                            None,
                            None,
                            Transition {
                                edge: Edge::Fire,
                                at_ms: fired.timestamp_millis(),
                                value: Some((to - since).num_seconds() as f64),
                            },
                            None,
                        );
                    }
                }
                run.notes.push(
                    "a source's past deliveries are not kept, only its last one: the dry-run shows the sources that are late now"
                        .into(),
                );
            }
        }
        run.alerts = ep.list;
        run.alerts.sort_by_key(|a| a.fired_at);
        Ok(run)
    }

    /// Replays the last `days` through a stored rule.
    pub async fn dry_run_stored(&self, id: &str, days: u32) -> OpsResult<DryRun> {
        let r = self.rule(id).await?;
        self.dry_run(r.rule, days).await
    }

    /// Replays the last `days` through a rule given as JSON.
    pub async fn dry_run_json(&self, v: serde_json::Value, days: u32) -> OpsResult<DryRun> {
        let rule = Rule::from_json(v).map_err(OpsError::from)?;
        self.dry_run(rule, days).await
    }
}
