//! The rule engine: one task that subscribes to the event bus, evaluates
//! every rule whose scope matches each committed observation or indicator
//! value (never polling observations), and evaluates time-based conditions
//! (silence, quiet zones, expiring windows, source freshness, SLA timers)
//! on a tick that reads the injected clock.
//!
//! Rules are indexed by attribute and then by their most selective scope
//! key (entity, entity type, admin unit, domain), so the cost per
//! observation is the number of rules that could match it, not the number
//! of rules.

use crate::compile::{Compiled, Kind, UnitTree, compile, numeric, point_of_value, value_equals};
use crate::dur::Dur;
use crate::error::OpsResult;
use crate::eval::{
    Calm, CountState, Edge, SeriesEval, SharedSeries, SilenceState, StatusState, Transition,
    TriggerState, ZoneState,
};
use crate::model::Rule;
use crate::service::{Ops, Subject};
use panorama_core::{Entity, Indicator, Period};
use panorama_ingest::{Event, IndicatorUpdate, ObservationBatch};
use panorama_store::{AlertQuery, AlertStatus, EntityQuery, SeriesData, SeriesMeta, SeriesQuery};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, mpsc, oneshot};

/// A fast hasher for the engine's maps (FxHash's mixing). Keys are series
/// numbers and ids from the catalog, not free input, so flooding is not a
/// concern; speed per observation is.
#[derive(Debug, Default, Clone, Copy)]
struct Fx(u64);

impl Fx {
    fn add(&mut self, w: u64) {
        self.0 = (self.0.rotate_left(5) ^ w).wrapping_mul(0x517c_c1b7_2722_0a95);
    }
}

impl std::hash::Hasher for Fx {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(c);
            self.add(u64::from_le_bytes(b));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut b = [0u8; 8];
            b[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(b) ^ ((rest.len() as u64) << 56));
        }
    }

    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }

    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type FastMap<K, V> = HashMap<K, V, std::hash::BuildHasherDefault<Fx>>;

/// The rules that match one series, found once per series: each
/// observation then costs one lookup, one late check and window update per
/// window length, and a pass over contiguous trigger states.
struct SeriesEntry {
    meta: Arc<SeriesMeta>,
    /// Newest time and window, shared by the series conditions with the
    /// same window length whose states started together.
    shared: Vec<SharedSeries>,
    /// Series conditions, window conditions first, then from `plain_from`
    /// conditions on the value itself; evaluators are in `Engine::evals`.
    evals: Vec<RuleState>,
    plain_from: usize,
    /// Values that move none of the plain conditions (all at rest and no
    /// level passed): those are not stepped.
    calm: Calm,
    /// Silence, zone and count rules.
    others: Vec<usize>,
}

/// Steps series conditions with the value `v` at `t`; `fresh[k]` says
/// whether `shared[k]` took it as its newest. With `calm`, computes what
/// the conditions let pass after the step.
#[allow(clippy::too_many_arguments)]
#[inline]
fn step_all(
    rules: &mut [RuleState],
    shared: &[SharedSeries],
    fresh: &[bool],
    evals: &[Option<SeriesEval>],
    m: &SeriesMeta,
    t: i64,
    v: f64,
    acts: &mut Vec<Act>,
    mut calm: Option<&mut Calm>,
) {
    for r in rules {
        let k = r.shared as usize;
        let (Some(sh), Some(Some(eval))) = (shared.get(k), evals.get(r.slot as usize)) else {
            continue;
        };
        if fresh.get(k).copied().unwrap_or(false)
            && let Some(tr) = eval.step_shared(sh, &mut r.trigger, t, v)
        {
            acts.push(series_act(r.slot as usize, m, tr));
        }
        if let Some(c) = calm.as_deref_mut() {
            c.add(eval, &r.trigger);
        }
    }
}

/// One series condition over one series.
#[derive(Debug, Clone, Copy)]
struct RuleState {
    slot: u32,
    /// Index in `SeriesEntry::shared`.
    shared: u32,
    trigger: TriggerState,
}

/// The states of a series' conditions kept across a reload: the shared
/// parts, and (index in them, trigger) by new slot.
#[derive(Default)]
struct Carry {
    shared: Vec<SharedSeries>,
    triggers: HashMap<usize, (u32, TriggerState)>,
}

/// What the service asks of the engine.
pub(crate) enum Command {
    /// Rules changed: load them again.
    Reload,
    /// Evaluate time-based conditions now, then answer.
    Tick(oneshot::Sender<()>),
    /// Answer once every event published so far is processed.
    Sync(oneshot::Sender<()>),
}

/// An entity followed by a silence or zone rule.
#[derive(Debug, Clone)]
struct Track {
    silence: SilenceState,
    zone: ZoneState,
    ctx: Ctx,
}

/// Where an observation comes from.
#[derive(Debug, Clone)]
struct Ctx {
    entity: Arc<str>,
    entity_type: Arc<str>,
    domain: Arc<str>,
    admin_unit: Option<Arc<str>>,
    attribute: Arc<str>,
}

impl Ctx {
    fn of(m: &SeriesMeta) -> Self {
        Self {
            entity: m.entity.clone(),
            entity_type: m.entity_type.clone(),
            domain: m.domain.clone(),
            admin_unit: m.admin_unit.clone(),
            attribute: m.attribute.clone(),
        }
    }
}

/// One rule and its state.
struct Slot {
    c: Compiled,
    tracks: HashMap<Arc<str>, Track>,
    count: CountState,
    status: HashMap<String, StatusState>,
    sources: HashMap<String, bool>,
    /// Keys with an unresolved alert when the rule was loaded.
    preload: HashSet<String>,
}

impl Slot {
    fn new(c: Compiled) -> Self {
        Self {
            c,
            tracks: HashMap::new(),
            count: CountState::default(),
            status: HashMap::new(),
            sources: HashMap::new(),
            preload: HashSet::new(),
        }
    }
}

/// Candidate rules for one attribute, each rule under its most selective key.
#[derive(Default)]
struct Buckets {
    entity: FastMap<String, Vec<usize>>,
    etype: FastMap<String, Vec<usize>>,
    unit: FastMap<String, Vec<usize>>,
    domain: FastMap<String, Vec<usize>>,
    any: Vec<usize>,
}

impl Buckets {
    fn add(&mut self, i: usize, c: &Compiled) {
        let s = &c.scope;
        let put = |m: &mut FastMap<String, Vec<usize>>, keys: &mut dyn Iterator<Item = &String>| {
            for k in keys {
                m.entry(k.clone()).or_default().push(i);
            }
        };
        if !s.entities.is_empty() {
            put(&mut self.entity, &mut s.entities.iter());
        } else if !s.types.is_empty() {
            put(&mut self.etype, &mut s.types.iter());
        } else if let Some(units) = &s.units {
            put(&mut self.unit, &mut units.iter());
        } else if !s.domains.is_empty() {
            put(&mut self.domain, &mut s.domains.iter());
        } else {
            self.any.push(i);
        }
    }

    fn candidates<'a>(&'a self, m: &SeriesMeta, out: &mut Vec<usize>) {
        let get = |map: &'a FastMap<String, Vec<usize>>, k: &str| map.get(k).map(Vec::as_slice);
        for list in [
            get(&self.entity, &m.entity),
            get(&self.etype, &m.entity_type),
            m.admin_unit.as_deref().and_then(|u| get(&self.unit, u)),
            get(&self.domain, &m.domain),
            Some(self.any.as_slice()),
        ]
        .into_iter()
        .flatten()
        {
            out.extend_from_slice(list);
        }
    }
}

/// A state change to act on.
struct Act {
    slot: usize,
    key: String,
    tr: Transition,
    subject: Subject,
    /// Series to show in the alert's data.
    series: Option<(String, String)>,
}

pub(crate) struct Engine {
    ops: Ops,
    slots: Vec<Slot>,
    /// attribute → buckets; "" holds rules that take any attribute.
    index: FastMap<String, Buckets>,
    /// Series number → index in `entries`.
    series: FastMap<u32, u32>,
    /// The matching rules and their states, per series seen.
    entries: Vec<SeriesEntry>,
    /// The evaluator of each series rule, by slot (dense, shared by all
    /// series, so hot rules stay in cache).
    evals: Vec<Option<SeriesEval>>,
    status_rules: Vec<usize>,
    source_rules: Vec<usize>,
    timed: Vec<usize>,
    points: HashMap<Arc<str>, Option<(f64, f64)>>,
    names: HashMap<Arc<str>, String>,
    indicators: HashMap<String, Indicator>,
    ticks: u64,
    /// Scratch: which shared states took the current value as newest.
    fresh: Vec<bool>,
    /// Scratch: the entry of each observation of a batch.
    at: Vec<u32>,
}

fn key_of(entity: &str, attribute: &str) -> String {
    format!("{entity}|{attribute}")
}

impl Engine {
    pub(crate) async fn new(ops: Ops) -> OpsResult<Self> {
        let mut e = Self {
            ops,
            slots: Vec::new(),
            index: FastMap::default(),
            series: FastMap::default(),
            entries: Vec::new(),
            evals: Vec::new(),
            status_rules: Vec::new(),
            source_rules: Vec::new(),
            timed: Vec::new(),
            points: HashMap::new(),
            names: HashMap::new(),
            indicators: HashMap::new(),
            ticks: 0,
            fresh: Vec::new(),
            at: Vec::new(),
        };
        e.reload().await?;
        Ok(e)
    }

    /// Loads the enabled rules, keeping the state of rules whose version did
    /// not change, and marks keys with unresolved alerts as firing.
    async fn reload(&mut self) -> OpsResult<()> {
        let inner = &self.ops.inner;
        let tree = UnitTree::new(&inner.store.admin_units().await?);
        let old_ids: Vec<(String, i64)> = self
            .slots
            .iter()
            .map(|s| (s.c.rule.id.clone(), s.c.version))
            .collect();
        let mut old: HashMap<String, Slot> = self
            .slots
            .drain(..)
            .map(|s| (s.c.rule.id.clone(), s))
            .collect();
        let mut slots = Vec::new();
        for r in inner.ops.rules().await? {
            if !r.enabled {
                continue;
            }
            let rule = match Rule::from_json(r.definition.clone()) {
                Ok(rule) => rule,
                Err(e) => {
                    tracing::warn!(rule = %r.id, error = %e, "stored rule skipped");
                    continue;
                }
            };
            match old.remove(&r.id) {
                Some(s) if s.c.version == r.version => slots.push(s),
                _ => match compile(rule, r.version, &tree) {
                    Ok(c) => slots.push(Slot::new(c)),
                    Err(e) => tracing::warn!(rule = %r.id, error = %e, "rule skipped"),
                },
            }
        }
        // Unresolved alerts: the condition held when the server stopped.
        let mut cursor = None;
        let mut unresolved: HashMap<String, Vec<panorama_store::Alert>> = HashMap::new();
        loop {
            let page = inner
                .ops
                .alerts(&AlertQuery {
                    status: vec![AlertStatus::Open, AlertStatus::Acknowledged],
                    cursor,
                    limit: 1000,
                    ..AlertQuery::default()
                })
                .await?;
            for a in page.items {
                unresolved.entry(a.rule.clone()).or_default().push(a);
            }
            match page.next_cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        for s in &mut slots {
            let alerts = unresolved.remove(&s.c.rule.id).unwrap_or_default();
            s.preload = alerts.iter().map(|a| a.key.clone()).collect();
            match &s.c.kind {
                Kind::SourceSilence { .. } => {
                    for k in &s.preload {
                        if let Some(src) = k.strip_prefix("source:") {
                            s.sources.entry(src.to_string()).or_insert(true);
                        }
                    }
                }
                Kind::Status { .. } => {
                    for k in &s.preload {
                        s.status.entry(k.clone()).or_insert(StatusState {
                            period: None,
                            firing: true,
                        });
                    }
                }
                Kind::Count { .. } if s.preload.contains("area") => s.count.firing = true,
                _ => {}
            }
            for a in &alerts {
                if let (Kind::Zone { .. }, Some(e)) = (&s.c.kind, &a.entity) {
                    let t = s
                        .tracks
                        .entry(Arc::from(e.as_str()))
                        .or_insert_with(|| Track {
                            silence: SilenceState::default(),
                            zone: ZoneState::default(),
                            ctx: Ctx {
                                entity: Arc::from(e.as_str()),
                                entity_type: Arc::from(a.entity_type.as_deref().unwrap_or("")),
                                domain: Arc::from(a.domain.as_deref().unwrap_or("")),
                                admin_unit: a.admin_unit.as_deref().map(Arc::from),
                                attribute: Arc::from(a.attribute.as_deref().unwrap_or("")),
                            },
                        });
                    if !t.zone.firing {
                        t.zone.firing = true;
                        t.zone.last_ms = Some(a.last_seen_at.timestamp_millis());
                    }
                }
            }
        }
        self.slots = slots;
        self.index.clear();
        self.status_rules.clear();
        self.source_rules.clear();
        self.timed.clear();
        for (i, s) in self.slots.iter().enumerate() {
            match &s.c.kind {
                Kind::Status { .. } => self.status_rules.push(i),
                Kind::SourceSilence { .. } => self.source_rules.push(i),
                kind => {
                    let attr = s.c.attribute.clone().unwrap_or_default();
                    self.index.entry(attr).or_default().add(i, &s.c);
                    if matches!(
                        kind,
                        Kind::EntitySilence { .. } | Kind::Zone { .. } | Kind::Count { .. }
                    ) {
                        self.timed.push(i);
                    }
                }
            }
        }
        // Series seen before: find their rules again, keeping the state of
        // rules that did not change.
        let new_pos: HashMap<(String, i64), usize> = self
            .slots
            .iter()
            .enumerate()
            .map(|(i, s)| ((s.c.rule.id.clone(), s.c.version), i))
            .collect();
        self.evals = self
            .slots
            .iter()
            .map(|s| match &s.c.kind {
                Kind::Series(e) => Some(*e),
                _ => None,
            })
            .collect();
        let entries = std::mem::take(&mut self.entries);
        for e in entries {
            let triggers = e
                .evals
                .iter()
                .filter_map(|r| {
                    old_ids
                        .get(r.slot as usize)
                        .and_then(|id| new_pos.get(id))
                        .map(|ni| (*ni, (r.shared, r.trigger)))
                })
                .collect();
            let carry = Carry {
                shared: e.shared,
                triggers,
            };
            let fresh = build_entry(&self.index, &self.slots, e.meta, carry);
            self.entries.push(fresh);
        }
        for i in self.timed.clone() {
            if matches!(self.slots[i].c.kind, Kind::EntitySilence { .. })
                && self.slots[i].tracks.is_empty()
            {
                self.follow_entities(i).await?;
            }
        }
        self.refresh_indicators().await?;
        metrics::gauge!("panorama_rules_loaded").set(self.slots.len() as f64);
        Ok(())
    }

    /// Starts following the silence of every entity in a rule's scope,
    /// from its latest value (so one that never speaks again is noticed).
    async fn follow_entities(&mut self, i: usize) -> OpsResult<()> {
        let store = self.ops.inner.store.clone();
        let (scope, attribute, preload) = {
            let s = &self.slots[i];
            (s.c.scope.clone(), s.c.attribute.clone(), s.preload.clone())
        };
        let domains: Vec<Option<String>> = if scope.domains.is_empty() {
            vec![None]
        } else {
            scope.domains.iter().cloned().map(Some).collect()
        };
        let mut found: Vec<Entity> = Vec::new();
        for d in domains {
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
                found.extend(page.items.into_iter().filter(|e| {
                    scope.entity(&e.id, &e.entity_type, &e.domain, e.admin_unit.as_deref())
                        && attribute
                            .as_ref()
                            .is_none_or(|a| e.attributes.contains_key(a))
                }));
                match page.next_cursor {
                    Some(c) if found.len() < 100_000 => cursor = Some(c),
                    _ => break,
                }
            }
        }
        let mut last: HashMap<String, i64> = HashMap::new();
        for chunk in found.chunks(1000) {
            let ids: Vec<String> = chunk.iter().map(|e| e.id.clone()).collect();
            for l in store.latest(&ids).await? {
                if attribute.as_ref().is_some_and(|a| a != &l.attribute) {
                    continue;
                }
                let t = l.time.timestamp_millis();
                let e = last.entry(l.entity).or_insert(t);
                *e = (*e).max(t);
            }
        }
        let slot = &mut self.slots[i];
        for e in found {
            let id: Arc<str> = Arc::from(e.id.as_str());
            let firing = preload.contains(&e.id);
            slot.tracks.insert(
                id.clone(),
                Track {
                    silence: SilenceState {
                        last_ms: last.get(&e.id).copied(),
                        firing,
                    },
                    zone: ZoneState::default(),
                    ctx: Ctx {
                        entity: id,
                        entity_type: Arc::from(e.entity_type.as_str()),
                        domain: Arc::from(e.domain.as_str()),
                        admin_unit: e.admin_unit.as_deref().map(Arc::from),
                        attribute: Arc::from(attribute.as_deref().unwrap_or("")),
                    },
                },
            );
        }
        Ok(())
    }

    async fn refresh_indicators(&mut self) -> OpsResult<()> {
        if self.status_rules.is_empty() {
            return Ok(());
        }
        self.indicators = self
            .ops
            .inner
            .store
            .indicators(None)
            .await?
            .into_iter()
            .map(|i| (i.code.clone(), i))
            .collect();
        Ok(())
    }

    pub(crate) async fn run(
        mut self,
        mut commands: mpsc::Receiver<Command>,
        mut events: broadcast::Receiver<Event>,
        tick: Dur,
    ) {
        let period = std::time::Duration::from_millis(tick.millis().max(10).unsigned_abs());
        let mut ticker = tokio::time::interval(period);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                ev = events.recv() => match ev {
                    Ok(ev) => self.handle(&ev).await,
                    Err(RecvError::Lagged(n)) => {
                        metrics::counter!("panorama_rules_lagged_events_total").increment(n);
                        tracing::warn!(missed = n, "the rule engine fell behind the event bus; missed events were not evaluated");
                    }
                    Err(RecvError::Closed) => return,
                },
                c = commands.recv() => match c {
                    None => return,
                    Some(Command::Reload) => {
                        // Rules created one after another reload once.
                        let mut later = Vec::new();
                        while let Ok(c) = commands.try_recv() {
                            if !matches!(c, Command::Reload) {
                                later.push(c);
                            }
                        }
                        if let Err(e) = self.reload().await {
                            tracing::warn!(error = %e, "reloading rules failed");
                        }
                        for c in later {
                            self.drain(&mut events).await;
                            match c {
                                Command::Tick(done) => {
                                    self.tick().await;
                                    let _ = done.send(());
                                }
                                Command::Sync(done) => {
                                    let _ = done.send(());
                                }
                                Command::Reload => {}
                            }
                        }
                    }
                    Some(Command::Tick(done)) => {
                        self.drain(&mut events).await;
                        self.tick().await;
                        let _ = done.send(());
                    }
                    Some(Command::Sync(done)) => {
                        self.drain(&mut events).await;
                        let _ = done.send(());
                    }
                },
                _ = ticker.tick() => self.tick().await,
            }
        }
    }

    /// Processes what is already on the bus.
    async fn drain(&mut self, events: &mut broadcast::Receiver<Event>) {
        loop {
            match events.try_recv() {
                Ok(ev) => self.handle(&ev).await,
                Err(TryRecvError::Lagged(n)) => {
                    metrics::counter!("panorama_rules_lagged_events_total").increment(n);
                }
                Err(_) => return,
            }
        }
    }

    async fn handle(&mut self, ev: &Event) {
        let acts = match ev {
            Event::Observations(b) => self.observations(b).await,
            Event::IndicatorValues(v) => self.indicator_values(v),
            Event::EntitiesChanged(ids) => {
                for id in ids.iter() {
                    self.points.remove(id.as_str());
                    self.names.remove(id.as_str());
                }
                Vec::new()
            }
            Event::Alert(_) | Event::Incident(_) => Vec::new(),
        };
        self.act(acts).await;
    }

    async fn point(&mut self, entity: &Arc<str>) -> Option<(f64, f64)> {
        if let Some(p) = self.points.get(entity) {
            return *p;
        }
        let e = self.ops.inner.store.entity(entity).await.ok().flatten();
        let p = e.as_ref().and_then(Entity::point);
        if let Some(e) = e {
            self.names.insert(entity.clone(), e.name);
        }
        self.points.insert(entity.clone(), p);
        p
    }

    async fn observations(&mut self, b: &ObservationBatch) -> Vec<Act> {
        let mut acts = Vec::new();
        let mut others: Vec<usize> = Vec::new();
        // First the entry of every observation, in a pass whose iterations
        // do not depend on each other, so the memory reads of many
        // observations overlap; the touch of each entry's states brings
        // them in for the evaluation pass.
        let mut at = std::mem::take(&mut self.at);
        at.clear();
        let mut touched = 0i64;
        for m in &b.series {
            let n = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
            let k = *self.series.entry(m.series).or_insert(n);
            if k == n {
                let e = build_entry(&self.index, &self.slots, m.clone(), Carry::default());
                self.entries.push(e);
            } else if let Some(e) = self.entries.get(k as usize) {
                touched ^= e.evals.first().map_or(0, |r| r.trigger.since);
            }
            at.push(k);
        }
        std::hint::black_box(touched);
        for ((o, m), &k) in b.observations.iter().zip(&b.series).zip(&at) {
            let t = o.time.timestamp_millis();
            let Engine {
                entries,
                index,
                slots,
                evals,
                fresh,
                ..
            } = self;
            let Some(entry) = entries.get_mut(k as usize) else {
                continue;
            };
            if !Arc::ptr_eq(&entry.meta, m) && *entry.meta != **m {
                // The entity moved (type, domain, unit): find its rules again.
                *entry = build_entry(index, slots, m.clone(), Carry::default());
            }
            if let Some(v) = o.value.as_f64() {
                // The late check and the window, once per window length.
                fresh.clear();
                fresh.extend(entry.shared.iter_mut().map(|sh| sh.push(t, v)));
                let from = entry.plain_from.min(entry.evals.len());
                let (windowed, plain) = entry.evals.split_at_mut(from);
                step_all(
                    windowed,
                    &entry.shared,
                    fresh,
                    evals,
                    m,
                    t,
                    v,
                    &mut acts,
                    None,
                );
                if !entry.calm.holds(v) {
                    let mut calm = Calm::start();
                    let c = Some(&mut calm);
                    step_all(plain, &entry.shared, fresh, evals, m, t, v, &mut acts, c);
                    entry.calm = calm;
                }
            }
            if entry.others.is_empty() {
                continue;
            }
            others.clear();
            others.extend_from_slice(&entry.others);
            for &i in &others {
                match &self.slots[i].c.kind {
                    Kind::EntitySilence { .. } => {
                        let s = &mut self.slots[i];
                        let track = s.tracks.entry(m.entity.clone()).or_insert_with(|| Track {
                            silence: SilenceState::default(),
                            zone: ZoneState::default(),
                            ctx: Ctx::of(m),
                        });
                        if let Some(tr) = track.silence.seen(t) {
                            acts.push(track_act(i, &track.ctx, tr));
                        }
                    }
                    Kind::Zone { equals, .. } => {
                        if equals.as_ref().is_some_and(|w| !value_equals(&o.value, w)) {
                            continue;
                        }
                        let p = match point_of_value(&o.value) {
                            Some(p) => Some(p),
                            None => self.point(&m.entity).await,
                        };
                        let s = &mut self.slots[i];
                        let Kind::Zone { area, .. } = &s.c.kind else {
                            continue;
                        };
                        if !p.is_some_and(|(x, y)| panorama_core::geo::area_contains(area, x, y)) {
                            continue;
                        }
                        let track = s.tracks.entry(m.entity.clone()).or_insert_with(|| Track {
                            silence: SilenceState::default(),
                            zone: ZoneState::default(),
                            ctx: Ctx::of(m),
                        });
                        if let Some(tr) = track.zone.event(t, numeric(&o.value)) {
                            let mut a = track_act(i, &track.ctx, tr);
                            a.subject.location = p.map(|(x, y)| [x, y]);
                            acts.push(a);
                        }
                    }
                    Kind::Count { equals, area, .. } => {
                        if equals.as_ref().is_some_and(|w| !value_equals(&o.value, w)) {
                            continue;
                        }
                        if area.is_some() {
                            let p = match point_of_value(&o.value) {
                                Some(p) => Some(p),
                                None => self.point(&m.entity).await,
                            };
                            let s = &self.slots[i];
                            let Kind::Count {
                                area: Some(area), ..
                            } = &s.c.kind
                            else {
                                continue;
                            };
                            if !p
                                .is_some_and(|(x, y)| panorama_core::geo::area_contains(area, x, y))
                            {
                                continue;
                            }
                        }
                        let s = &mut self.slots[i];
                        let Kind::Count {
                            window_ms,
                            at_least,
                            ..
                        } = s.c.kind
                        else {
                            continue;
                        };
                        if let Some(tr) = s.count.event(t, window_ms, at_least) {
                            acts.push(count_act(i, &s.c.rule, tr));
                        }
                    }
                    Kind::Series(_) | Kind::SourceSilence { .. } | Kind::Status { .. } => {}
                }
            }
        }
        self.at = at;
        acts
    }

    fn indicator_values(&mut self, updates: &[IndicatorUpdate]) -> Vec<Act> {
        let mut acts = Vec::new();
        for u in updates {
            let v = &u.value;
            let Some(ind) = self.indicators.get(&v.indicator) else {
                continue;
            };
            let Ok(period) = Period::parse(&v.period) else {
                continue;
            };
            let status = ind.status(v.value, period.year());
            let day = period
                .start()
                .signed_duration_since(chrono::NaiveDate::default());
            for &i in &self.status_rules {
                let s = &mut self.slots[i];
                let Kind::Status {
                    indicators,
                    red_only,
                } = &s.c.kind
                else {
                    continue;
                };
                let chosen = if indicators.is_empty() {
                    s.c.scope.domain(Some(&u.domain))
                } else {
                    indicators.contains(&v.indicator) && s.c.scope.domain(Some(&u.domain))
                };
                if !chosen || !s.c.scope.unit(Some(&v.admin_unit)) {
                    continue;
                }
                use panorama_core::IndicatorStatus as S;
                let breach = if *red_only {
                    status == S::Red
                } else {
                    matches!(status, S::Red | S::Amber)
                };
                let key = format!("{}|{}", v.indicator, v.admin_unit);
                let st = s.status.entry(key.clone()).or_default();
                if let Some(tr) = st.observe(
                    day.num_days(),
                    breach,
                    v.submitted_at.timestamp_millis(),
                    v.value,
                ) {
                    acts.push(Act {
                        slot: i,
                        key,
                        tr,
                        subject: Subject {
                            label: Some(format!("{} · {} · {}", ind.name, v.admin_unit, v.period)),
                            domain: Some(u.domain.clone()),
                            admin_unit: Some(v.admin_unit.clone()),
                            indicator: Some(v.indicator.clone()),
                            ..Subject::default()
                        },
                        series: None,
                    });
                }
            }
        }
        acts
    }

    async fn tick(&mut self) {
        let now = self.ops.now();
        let now_ms = now.timestamp_millis();
        self.ticks += 1;
        let mut acts = Vec::new();
        for &i in &self.timed {
            let s = &mut self.slots[i];
            match s.c.kind {
                Kind::EntitySilence { max_ms } => {
                    for track in s.tracks.values_mut() {
                        if let Some(tr) = track.silence.tick(now_ms, max_ms) {
                            acts.push(track_act(i, &track.ctx, tr));
                        }
                    }
                }
                Kind::Zone { quiet_ms, .. } => {
                    for track in s.tracks.values_mut() {
                        if let Some(tr) = track.zone.tick(now_ms, quiet_ms) {
                            acts.push(track_act(i, &track.ctx, tr));
                        }
                    }
                }
                Kind::Count {
                    window_ms,
                    at_least,
                    ..
                } => {
                    if let Some(tr) = s.count.tick(now_ms, window_ms, at_least) {
                        acts.push(count_act(i, &s.c.rule, tr));
                    }
                }
                _ => {}
            }
        }
        if !self.source_rules.is_empty() {
            match self.ops.inner.store.sources().await {
                Ok(sources) => {
                    for &i in &self.source_rules {
                        let s = &mut self.slots[i];
                        let Kind::SourceSilence {
                            sources: only,
                            grace_secs,
                        } = &s.c.kind
                        else {
                            continue;
                        };
                        for src in &sources {
                            if (!only.is_empty() && !only.contains(&src.id))
                                || !s.c.scope.domain(src.domain.as_deref())
                            {
                                continue;
                            }
                            let since = src.last_seen_at.unwrap_or(src.created_at);
                            let limit = i64::try_from(src.expected_interval_secs)
                                .unwrap_or(i64::MAX)
                                .saturating_add(*grace_secs);
                            let late = (now - since).num_seconds() > limit;
                            let firing = s.sources.entry(src.id.clone()).or_insert(false);
                            let edge = match (*firing, late) {
                                (false, true) => Edge::Fire,
                                (true, false) => Edge::Clear,
                                _ => continue,
                            };
                            *firing = late;
                            acts.push(Act {
                                slot: i,
                                key: format!("source:{}", src.id),
                                tr: Transition {
                                    edge,
                                    at_ms: now_ms,
                                    value: Some((now - since).num_seconds() as f64),
                                },
                                subject: Subject {
                                    label: Some(src.name.clone()),
                                    domain: src.domain.clone(),
                                    source: Some(src.id.clone()),
                                    ..Subject::default()
                                },
                                series: None,
                            });
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "cannot read sources for freshness rules"),
            }
        }
        self.act(acts).await;
        if self.ticks.is_multiple_of(12)
            && let Err(e) = self.refresh_indicators().await
        {
            tracing::warn!(error = %e, "cannot refresh indicators");
        }
        if let Err(e) = self.ops.sla_tick(now).await {
            tracing::warn!(error = %e, "SLA check failed");
        }
    }

    async fn act(&mut self, acts: Vec<Act>) {
        for mut a in acts {
            let rule = self.slots[a.slot].c.rule.clone();
            let r = match a.tr.edge {
                Edge::Fire | Edge::Repeat => {
                    if let Some(e) = a.subject.entity.clone() {
                        let id: Arc<str> = Arc::from(e.as_str());
                        let p = self.point(&id).await;
                        if a.subject.location.is_none() {
                            a.subject.location = p.map(|(x, y)| [x, y]);
                        }
                        a.subject.label = self.names.get(&id).cloned().or(a.subject.label);
                    }
                    let data = self.data(&rule, &a).await;
                    self.ops.fired(&rule, &a.key, a.subject, &a.tr, data).await
                }
                Edge::Clear => self.ops.cleared(&rule, &a.key, &a.tr).await,
            };
            if let Err(e) = r {
                tracing::warn!(rule = %rule.id, key = %a.key, error = %e, "could not record an alert change");
            }
        }
    }

    /// What fired an alert: the condition, the metric, the recent values of
    /// the series and a link to its chart.
    async fn data(&self, rule: &Rule, a: &Act) -> serde_json::Value {
        let mut data = serde_json::json!({
            "condition": rule.condition,
            "value": a.tr.value,
            "at": crate::service::ms_to_ts(a.tr.at_ms),
        });
        if let Some((entity, attribute)) = &a.series {
            let to = crate::service::ms_to_ts(a.tr.at_ms) + chrono::Duration::milliseconds(1);
            let span = condition_span(rule).max(chrono::Duration::hours(1));
            let from = to - span;
            let q = SeriesQuery {
                entity: entity.clone(),
                attribute: attribute.clone(),
                from,
                to,
                bucket: None,
                limit: 10_000,
            };
            if let Ok(SeriesData::Raw(points)) = self.ops.inner.store.series(&q).await {
                let tail: Vec<_> = points.iter().rev().take(200).rev().collect();
                data["values"] = serde_json::json!(tail);
            }
            data["chart"] =
                serde_json::Value::String(chart_link(entity, attribute, from, to + span));
        }
        data
    }
}

/// Finds the rules that match a series: candidates from the index, then
/// the full scope check. States in `carry` are kept; new series conditions
/// share a fresh state per window length, and start firing when an alert
/// of theirs was left unresolved.
fn build_entry(
    index: &FastMap<String, Buckets>,
    slots: &[Slot],
    meta: Arc<SeriesMeta>,
    carry: Carry,
) -> SeriesEntry {
    let mut cands = Vec::with_capacity(16);
    for attr in [meta.attribute.as_ref(), ""] {
        if let Some(bk) = index.get(attr) {
            bk.candidates(&meta, &mut cands);
        }
    }
    cands.sort_unstable();
    cands.dedup();
    let carried = !carry.shared.is_empty();
    let Carry {
        mut shared,
        mut triggers,
    } = carry;
    // Fresh shared states by window length, created on first use.
    let mut started: Vec<(Option<i64>, u32)> = Vec::new();
    let mut evals = Vec::with_capacity(cands.len());
    let mut others = Vec::new();
    for i in cands {
        let s = &slots[i];
        if !s.c.scope.entity(
            &meta.entity,
            &meta.entity_type,
            &meta.domain,
            meta.admin_unit.as_deref(),
        ) {
            continue;
        }
        match &s.c.kind {
            Kind::Series(eval) => {
                let slot = u32::try_from(i).unwrap_or(u32::MAX);
                let w = eval.window_ms();
                let kept = triggers.remove(&i).filter(|(k, _)| {
                    shared
                        .get(*k as usize)
                        .is_some_and(|sh| sh.window_ms() == w)
                });
                let (k, trigger) = match kept {
                    Some(kt) => kt,
                    None => {
                        let k = match started.iter().find(|(sw, _)| *sw == w) {
                            Some((_, k)) => *k,
                            None => {
                                let k = u32::try_from(shared.len()).unwrap_or(u32::MAX);
                                shared.push(SharedSeries::new(w));
                                started.push((w, k));
                                k
                            }
                        };
                        let trigger = if !s.preload.is_empty()
                            && s.preload.contains(&key_of(&meta.entity, &meta.attribute))
                        {
                            TriggerState::firing()
                        } else {
                            TriggerState::default()
                        };
                        (k, trigger)
                    }
                };
                evals.push(RuleState {
                    slot,
                    shared: k,
                    trigger,
                });
            }
            Kind::EntitySilence { .. } | Kind::Zone { .. } | Kind::Count { .. } => others.push(i),
            Kind::SourceSilence { .. } | Kind::Status { .. } => {}
        }
    }
    // Window conditions first; the order of evaluation within a value
    // does not matter (each condition has its own key).
    evals.sort_by_key(|r| {
        slots
            .get(r.slot as usize)
            .is_some_and(|s| matches!(&s.c.kind, Kind::Series(e) if e.window_ms().is_none()))
    });
    let plain_from = evals.partition_point(|r| {
        !slots
            .get(r.slot as usize)
            .is_some_and(|s| matches!(&s.c.kind, Kind::Series(e) if e.window_ms().is_none()))
    });
    if !carried {
        return SeriesEntry {
            meta,
            shared,
            evals,
            plain_from,
            calm: Calm::default(),
            others,
        };
    }
    // Drop the shared states no condition uses any more.
    let mut remap = vec![u32::MAX; shared.len()];
    let mut kept = Vec::new();
    for r in &mut evals {
        let old = r.shared as usize;
        if let Some(slot) = remap.get_mut(old) {
            if *slot == u32::MAX {
                *slot = u32::try_from(kept.len()).unwrap_or(u32::MAX);
                kept.push(old);
            }
            r.shared = *slot;
        }
    }
    let mut olds: Vec<Option<SharedSeries>> = shared.into_iter().map(Some).collect();
    let shared = kept
        .into_iter()
        .filter_map(|o| olds.get_mut(o).and_then(Option::take))
        .collect();
    SeriesEntry {
        meta,
        shared,
        evals,
        plain_from,
        calm: Calm::default(),
        others,
    }
}

/// How far back a condition looks (window or duration).
fn condition_span(rule: &Rule) -> chrono::Duration {
    use crate::model::Condition as C;
    let d = match &rule.condition {
        C::Threshold(c) => c.hold.unwrap_or_default(),
        C::RateOfChange(c) => c.window.max(c.hold.unwrap_or_default()),
        C::Aggregate(c) => c.window.max(c.hold.unwrap_or_default()),
        _ => Dur(0),
    };
    d.chrono()
}

/// The API path of a series chart around an alert.
pub(crate) fn chart_link(
    entity: &str,
    attribute: &str,
    from: panorama_core::Timestamp,
    to: panorama_core::Timestamp,
) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b':' => {
                    char::from(b).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    let t = |x: panorama_core::Timestamp| x.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    format!(
        "/api/v1/series?entity={}&attribute={}&from={}&to={}",
        enc(entity),
        enc(attribute),
        t(from),
        t(to)
    )
}

fn series_act(i: usize, m: &SeriesMeta, tr: Transition) -> Act {
    Act {
        slot: i,
        key: key_of(&m.entity, &m.attribute),
        tr,
        subject: Subject {
            domain: Some(m.domain.to_string()),
            admin_unit: m.admin_unit.as_deref().map(String::from),
            entity: Some(m.entity.to_string()),
            entity_type: Some(m.entity_type.to_string()),
            attribute: Some(m.attribute.to_string()),
            ..Subject::default()
        },
        series: Some((m.entity.to_string(), m.attribute.to_string())),
    }
}

fn track_act(i: usize, c: &Ctx, tr: Transition) -> Act {
    Act {
        slot: i,
        key: c.entity.to_string(),
        tr,
        subject: Subject {
            domain: Some(c.domain.to_string()),
            admin_unit: c.admin_unit.as_deref().map(String::from),
            entity: Some(c.entity.to_string()),
            entity_type: Some(c.entity_type.to_string()),
            attribute: (!c.attribute.is_empty()).then(|| c.attribute.to_string()),
            ..Subject::default()
        },
        series: None,
    }
}

fn count_act(i: usize, rule: &Rule, tr: Transition) -> Act {
    Act {
        slot: i,
        key: "area".into(),
        tr,
        subject: Subject {
            domain: rule.scope.domains.first().cloned(),
            admin_unit: (rule.scope.admin_units.len() == 1)
                .then(|| rule.scope.admin_units[0].clone()),
            attribute: rule.condition.attribute().map(String::from),
            ..Subject::default()
        },
        series: None,
    }
}
