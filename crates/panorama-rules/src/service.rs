//! The operations service: what the HTTP layer and the engine call. It
//! checks who may do what, validates references, writes through the
//! [`OpsStore`](panorama_store::OpsStore), publishes changes on the event
//! bus (so the console sees them live) and queues notifications.

use crate::compile::UnitTree;
use crate::config::RulesConfig;
use crate::engine::{Command, Engine};
use crate::error::{OpsError, OpsResult};
use crate::eval::Transition;
use crate::model::{Condition, Rule, RuleFile, SopInput, parse_rule_file, validate_sop};
use crate::notify::Message;
use chrono::{DateTime, Utc};
use panorama_core::{Clock, FieldError, Invalid, Page, Role, Timestamp, User};
use panorama_ingest::{AlertEvent, Event, EventBus};
use panorama_store::{
    Alert, AlertAction, AlertQuery, AlertStatus, AlertStep, Delivery, DeliveryAttempt,
    DeliveryQuery, NewAlert, Notification, RuleRecord, SharedOpsStore, SharedStore, SopTemplate,
};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use tokio::sync::{Notify, mpsc, oneshot};
use tokio::task::JoinHandle;

/// Who is acting: a signed-in user.
#[derive(Debug, Clone, PartialEq)]
pub struct Actor {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Agency.
    pub agency: Option<String>,
}

impl From<&User> for Actor {
    fn from(u: &User) -> Self {
        Self {
            name: u.username.clone(),
            role: u.role,
            agency: u.agency.clone(),
        }
    }
}

impl Actor {
    /// How the actor is written in records: `user:<name>`.
    pub fn tag(&self) -> String {
        format!("user:{}", self.name)
    }

    /// Refuses unless the actor has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> OpsResult<()> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(OpsError::Forbidden(format!(
                "this needs the role {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(" or ")
            )))
        }
    }
}

/// Roles that handle alerts.
pub const ALERT_ROLES: &[Role] = &[Role::Admin, Role::Operator, Role::Officer];

/// A stored rule with its bookkeeping.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RuleView {
    /// The rule.
    #[serde(flatten)]
    pub rule: Rule,
    /// 1 when created, +1 per change.
    pub version: i64,
    /// `api`, or `file:<name>` for a rule from a rules file (read-only here).
    pub origin: String,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: String,
}

impl RuleView {
    fn from_record(r: RuleRecord) -> OpsResult<Self> {
        let rule = Rule::from_json(r.definition.clone()).map_err(|e| {
            OpsError::Store(panorama_store::StoreError::Backend(format!(
                "stored rule '{}' cannot be read: {e}",
                r.id
            )))
        })?;
        Ok(Self {
            rule,
            version: r.version,
            origin: r.origin,
            updated_at: r.updated_at,
            updated_by: r.updated_by,
        })
    }
}

/// An alert with every step of its life.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AlertDetail {
    /// The alert.
    #[serde(flatten)]
    pub alert: Alert,
    /// Who did what, and when, oldest first.
    pub steps: Vec<AlertStep>,
}

/// What an alert is about (for its record and title).
#[derive(Debug, Clone, Default)]
pub(crate) struct Subject {
    pub label: Option<String>,
    pub domain: Option<String>,
    pub admin_unit: Option<String>,
    pub entity: Option<String>,
    pub entity_type: Option<String>,
    pub attribute: Option<String>,
    pub source: Option<String>,
    pub indicator: Option<String>,
    pub location: Option<[f64; 2]>,
}

/// The background tasks of the service; aborted when dropped.
#[derive(Debug)]
pub struct OpsTasks {
    handles: Vec<JoinHandle<()>>,
}

impl OpsTasks {
    /// Stops the engine and the delivery worker.
    pub fn abort(&self) {
        for h in &self.handles {
            h.abort();
        }
    }
}

impl Drop for OpsTasks {
    fn drop(&mut self) {
        self.abort();
    }
}

pub(crate) struct Inner {
    pub(crate) store: SharedStore,
    pub(crate) ops: SharedOpsStore,
    pub(crate) bus: EventBus,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) config: RulesConfig,
    pub(crate) engine: mpsc::Sender<Command>,
    pub(crate) http: reqwest::Client,
    /// One delivery pass at a time.
    pub(crate) delivering: tokio::sync::Mutex<()>,
    /// Wakes the delivery worker when something is queued.
    pub(crate) wake: Notify,
}

/// The operations service. Cheap to clone.
#[derive(Clone)]
pub struct Ops {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Ops {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ops").finish_non_exhaustive()
    }
}

pub(crate) fn ms_to_ts(ms: i64) -> Timestamp {
    DateTime::<Utc>::from_timestamp_millis(ms).unwrap_or_default()
}

impl Ops {
    /// Starts the service over `store` (which must keep operations data):
    /// loads the rules directory, then runs the engine on `bus` and the
    /// delivery worker until the returned tasks are dropped.
    pub async fn start(
        store: SharedStore,
        bus: EventBus,
        clock: Arc<dyn Clock>,
        config: RulesConfig,
    ) -> OpsResult<(Ops, OpsTasks)> {
        let ops = store.clone().as_ops().ok_or_else(|| {
            OpsError::Conflict(
                "this store keeps no operations data (rules, alerts, incidents)".into(),
            )
        })?;
        config.validate().map_err(|e| e.under("rules"))?;
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(
                config.webhook.timeout.secs().max(1).unsigned_abs(),
            ))
            .build()
            .map_err(|e| OpsError::Store(panorama_store::StoreError::backend(e)))?;
        let (tx, rx) = mpsc::channel(64);
        let me = Ops {
            inner: Arc::new(Inner {
                store,
                ops,
                bus: bus.clone(),
                clock,
                config,
                engine: tx,
                http,
                delivering: tokio::sync::Mutex::new(()),
                wake: Notify::new(),
            }),
        };
        if let Some(dir) = me.inner.config.dir.clone() {
            me.load_dir(&dir).await?;
        }
        // Subscribe before the engine loads, so nothing committed meanwhile is missed.
        let events = bus.subscribe();
        let engine = Engine::new(me.clone()).await?;
        let tick = me.inner.config.tick;
        let handles = vec![
            tokio::spawn(engine.run(rx, events, tick)),
            tokio::spawn(me.clone().delivery_worker()),
        ];
        Ok((me, OpsTasks { handles }))
    }

    /// The configuration.
    pub fn config(&self) -> &RulesConfig {
        &self.inner.config
    }

    /// The current time of the service's clock.
    pub fn now(&self) -> Timestamp {
        self.inner.clock.now()
    }

    async fn command(&self, c: impl FnOnce(oneshot::Sender<()>) -> Command) {
        let (tx, rx) = oneshot::channel();
        if self.inner.engine.send(c(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Evaluates time-based conditions and SLA timers now (the engine also
    /// does it on its own every `tick`); returns when done.
    pub async fn tick(&self) {
        self.command(Command::Tick).await;
    }

    /// Returns once the engine has processed every event published on the
    /// bus before the call.
    pub async fn sync(&self) {
        self.command(Command::Sync).await;
    }

    fn reload(&self) {
        // A full queue already holds a reload or will reload soon after.
        let _ = self.inner.engine.try_send(Command::Reload);
    }

    pub(crate) fn publish_alert(&self, change: &'static str, alert: Alert) {
        self.inner
            .bus
            .publish(Event::Alert(Arc::new(AlertEvent { change, alert })));
    }

    // --- rules ----------------------------------------------------------

    /// Checks a rule's references: domains, admin units, indicators,
    /// sources, agencies and channels must exist.
    pub(crate) async fn check_references(&self, rule: &Rule) -> OpsResult<()> {
        let store = &self.inner.store;
        let mut errs = Vec::new();
        if !rule.scope.domains.is_empty() {
            let known: HashSet<String> =
                store.domains().await?.into_iter().map(|d| d.code).collect();
            for (i, d) in rule.scope.domains.iter().enumerate() {
                if !known.contains(d) {
                    errs.push(FieldError::new(
                        format!("scope.domains[{i}]"),
                        format!("unknown domain '{d}'"),
                    ));
                }
            }
        }
        if !rule.scope.admin_units.is_empty() {
            let known: HashSet<String> = store
                .admin_units()
                .await?
                .into_iter()
                .map(|u| u.code)
                .collect();
            for (i, u) in rule.scope.admin_units.iter().enumerate() {
                if !known.contains(u) {
                    errs.push(FieldError::new(
                        format!("scope.admin_units[{i}]"),
                        format!("unknown admin unit '{u}'"),
                    ));
                }
            }
        }
        match &rule.condition {
            Condition::IndicatorStatus(c) => {
                for (i, code) in c.indicators.iter().enumerate() {
                    if store.indicator(code).await?.is_none() {
                        errs.push(FieldError::new(
                            format!("condition.indicators[{i}]"),
                            format!("unknown indicator '{code}'"),
                        ));
                    }
                }
            }
            Condition::Freshness(c) if !c.sources.is_empty() => {
                let known: HashSet<String> =
                    store.sources().await?.into_iter().map(|s| s.id).collect();
                for (i, s) in c.sources.iter().enumerate() {
                    if !known.contains(s) {
                        errs.push(FieldError::new(
                            format!("condition.sources[{i}]"),
                            format!("unknown source '{s}'"),
                        ));
                    }
                }
            }
            _ => {}
        }
        if let Some(a) = rule.incident.as_ref().and_then(|i| i.agency.as_ref())
            && !store.agencies().await?.iter().any(|x| &x.code == a)
        {
            errs.push(FieldError::new(
                "incident.agency",
                format!("unknown agency '{a}'"),
            ));
        }
        for (i, c) in rule.notify.iter().enumerate() {
            if self.inner.config.channel(c).is_none() {
                errs.push(FieldError::new(
                    format!("notify[{i}]"),
                    format!(
                        "unknown channel '{c}'; channels are configured under [[rules.channels]]"
                    ),
                ));
            }
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs).into())
        }
    }

    /// Every rule, ordered by id.
    pub async fn rules(&self) -> OpsResult<Vec<RuleView>> {
        self.inner
            .ops
            .rules()
            .await?
            .into_iter()
            .map(RuleView::from_record)
            .collect()
    }

    /// One rule.
    pub async fn rule(&self, id: &str) -> OpsResult<RuleView> {
        let r = self
            .inner
            .ops
            .rule(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("rule '{id}' does not exist")))?;
        RuleView::from_record(r)
    }

    async fn store_rule(&self, rule: &Rule, origin: &str, by: &str) -> OpsResult<RuleView> {
        let rec = self
            .inner
            .ops
            .put_rule(&RuleRecord {
                id: rule.id.clone(),
                definition: rule.to_json(),
                enabled: rule.enabled,
                origin: origin.into(),
                version: 0,
                updated_at: self.now(),
                updated_by: by.into(),
            })
            .await?;
        if !rule.enabled {
            self.resolve_rule_alerts(&rule.id, by, "the rule was disabled")
                .await?;
        }
        self.reload();
        RuleView::from_record(rec)
    }

    fn check_editable(existing: &RuleRecord) -> OpsResult<()> {
        if let Some(file) = existing.origin.strip_prefix("file:") {
            return Err(OpsError::Conflict(format!(
                "rule '{}' is defined in the rules file {file}; edit the file and restart",
                existing.id
            )));
        }
        Ok(())
    }

    /// Creates a rule (admin).
    pub async fn create_rule(&self, actor: &Actor, v: serde_json::Value) -> OpsResult<RuleView> {
        actor.require(&[Role::Admin])?;
        let rule = Rule::from_json(v)?;
        self.check_references(&rule).await?;
        if self.inner.ops.rule(&rule.id).await?.is_some() {
            return Err(OpsError::Conflict(format!(
                "rule '{}' already exists; PUT /api/v1/rules/{} replaces it",
                rule.id, rule.id
            )));
        }
        self.store_rule(&rule, "api", &actor.tag()).await
    }

    /// Replaces (or creates) the rule `id` (admin).
    pub async fn replace_rule(
        &self,
        actor: &Actor,
        id: &str,
        mut v: serde_json::Value,
    ) -> OpsResult<RuleView> {
        actor.require(&[Role::Admin])?;
        if let serde_json::Value::Object(m) = &mut v {
            match m.get("id") {
                None => {
                    m.insert("id".into(), serde_json::Value::String(id.into()));
                }
                Some(serde_json::Value::String(s)) if s == id => {}
                Some(_) => {
                    return Err(
                        Invalid::one("id", format!("must be '{id}', as in the path")).into(),
                    );
                }
            }
        }
        let rule = Rule::from_json(v)?;
        self.check_references(&rule).await?;
        if let Some(existing) = self.inner.ops.rule(id).await? {
            Self::check_editable(&existing)?;
        }
        self.store_rule(&rule, "api", &actor.tag()).await
    }

    /// Deletes a rule (admin); its open alerts are resolved.
    pub async fn delete_rule(&self, actor: &Actor, id: &str) -> OpsResult<()> {
        actor.require(&[Role::Admin])?;
        let existing = self
            .inner
            .ops
            .rule(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("rule '{id}' does not exist")))?;
        Self::check_editable(&existing)?;
        self.inner.ops.delete_rule(id).await?;
        self.resolve_rule_alerts(id, &actor.tag(), "the rule was deleted")
            .await?;
        self.reload();
        Ok(())
    }

    async fn resolve_rule_alerts(&self, rule: &str, by: &str, why: &str) -> OpsResult<()> {
        loop {
            let page = self
                .inner
                .ops
                .alerts(&AlertQuery {
                    rule: Some(rule.into()),
                    status: vec![AlertStatus::Open, AlertStatus::Acknowledged],
                    limit: 1000,
                    ..AlertQuery::default()
                })
                .await?;
            if page.items.is_empty() {
                return Ok(());
            }
            for a in page.items {
                let done = self
                    .inner
                    .ops
                    .alert_step(a.id, AlertAction::Resolved, by, self.now(), Some(why))
                    .await?;
                self.publish_alert("resolved", done);
            }
        }
    }

    /// Loads every `*.toml` file of `dir`: rules (read-only through the API)
    /// and SOP templates. Rules from files that are gone are deleted.
    pub async fn load_dir(&self, dir: &std::path::Path) -> OpsResult<()> {
        let mut files: Vec<std::path::PathBuf> = match std::fs::read_dir(dir) {
            Ok(d) => d
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect(),
            Err(e) => {
                return Err(Invalid::one(
                    "rules.dir",
                    format!("cannot read the rules directory {}: {e}", dir.display()),
                )
                .into());
            }
        };
        files.sort();
        let mut loaded: Vec<(String, RuleFile)> = Vec::new();
        let mut errs = Vec::new();
        let mut seen: HashMap<String, String> = HashMap::new();
        for path in files {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Invalid::one(name.clone(), format!("cannot read {}: {e}", path.display()))
            })?;
            match parse_rule_file(&text) {
                Ok(f) => {
                    for r in &f.rules {
                        if let Some(other) = seen.insert(r.id.clone(), name.clone()) {
                            errs.push(FieldError::new(
                                name.clone(),
                                format!("rule '{}' is also defined in {other}", r.id),
                            ));
                        }
                    }
                    loaded.push((name, f));
                }
                Err(e) => errs.extend(e.under(&name).0),
            }
        }
        for (name, f) in &loaded {
            for (i, r) in f.rules.iter().enumerate() {
                if let Err(OpsError::Invalid(e)) = self.check_references(r).await {
                    errs.extend(e.under(&format!("{name}: rule[{i}]")).0);
                }
            }
        }
        if !errs.is_empty() {
            return Err(Invalid(errs).into());
        }
        let stored: HashMap<String, RuleRecord> = self
            .inner
            .ops
            .rules()
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        for (name, f) in &loaded {
            let origin = format!("file:{name}");
            for r in &f.rules {
                let unchanged = stored
                    .get(&r.id)
                    .is_some_and(|s| s.origin == origin && s.definition == r.to_json());
                if !unchanged {
                    self.store_rule(r, &origin, &origin).await?;
                }
            }
            if !f.sops.is_empty() {
                self.inner.ops.put_sops(&f.sops).await?;
            }
        }
        for (id, r) in stored {
            if r.origin.starts_with("file:") && !seen.contains_key(&id) {
                self.inner.ops.delete_rule(&id).await?;
                self.resolve_rule_alerts(&id, &r.origin, "the rule was removed from its file")
                    .await?;
            }
        }
        Ok(())
    }

    // --- alerts ---------------------------------------------------------

    /// Alerts matching a filter; `admin_units` are expanded to descendants.
    pub async fn alerts(&self, mut q: AlertQuery) -> OpsResult<Page<Alert>> {
        if !q.admin_units.is_empty() {
            let tree = UnitTree::new(&self.inner.store.admin_units().await?);
            q.admin_units = tree.expand(&q.admin_units).into_iter().collect();
        }
        Ok(self.inner.ops.alerts(&q).await?)
    }

    /// One alert with its steps.
    pub async fn alert(&self, id: i64) -> OpsResult<AlertDetail> {
        let alert = self
            .inner
            .ops
            .alert(id)
            .await?
            .ok_or_else(|| OpsError::NotFound(format!("alert {id} does not exist")))?;
        let steps = self.inner.ops.alert_steps(id).await?;
        Ok(AlertDetail { alert, steps })
    }

    async fn alert_step(
        &self,
        actor: &Actor,
        id: i64,
        action: AlertAction,
        comment: Option<&str>,
    ) -> OpsResult<AlertDetail> {
        actor.require(ALERT_ROLES)?;
        let alert = self
            .inner
            .ops
            .alert_step(id, action, &actor.tag(), self.now(), comment)
            .await?;
        self.publish_alert(action.as_str(), alert.clone());
        if action == AlertAction::Resolved {
            let rule = self.inner.ops.rule(&alert.rule).await?;
            let channels = rule
                .and_then(|r| Rule::from_json(r.definition).ok())
                .map(|r| r.notify)
                .unwrap_or_default();
            self.notify(&channels, Message::alert("alert.resolved", &alert))
                .await;
        }
        self.alert(id).await
    }

    /// Acknowledges an open alert.
    pub async fn acknowledge(
        &self,
        actor: &Actor,
        id: i64,
        comment: Option<&str>,
    ) -> OpsResult<AlertDetail> {
        self.alert_step(actor, id, AlertAction::Acknowledged, comment)
            .await
    }

    /// Resolves an alert by hand; a comment says why.
    pub async fn resolve(&self, actor: &Actor, id: i64, comment: &str) -> OpsResult<AlertDetail> {
        if comment.trim().is_empty() {
            return Err(Invalid::one("comment", "say why the alert is resolved").into());
        }
        self.alert_step(actor, id, AlertAction::Resolved, Some(comment))
            .await
    }

    /// Adds a comment to an alert.
    pub async fn comment_alert(
        &self,
        actor: &Actor,
        id: i64,
        text: &str,
    ) -> OpsResult<AlertDetail> {
        self.alert_step(actor, id, AlertAction::Commented, Some(text))
            .await
    }

    /// The engine saw a condition start (or an event repeat).
    pub(crate) async fn fired(
        &self,
        rule: &Rule,
        key: &str,
        subject: Subject,
        tr: &Transition,
        data: serde_json::Value,
    ) -> OpsResult<()> {
        let at = ms_to_ts(tr.at_ms);
        let what = subject
            .label
            .clone()
            .or_else(|| subject.entity.clone())
            .or_else(|| subject.source.clone())
            .or_else(|| subject.indicator.clone());
        let title = match (what, tr.value) {
            (Some(w), Some(v)) => format!("{}: {w} ({})", rule.name, fmt_num(v)),
            (Some(w), None) => format!("{}: {w}", rule.name),
            (None, Some(v)) => format!("{} ({})", rule.name, fmt_num(v)),
            (None, None) => rule.name.clone(),
        };
        let new = NewAlert {
            rule: rule.id.clone(),
            key: key.into(),
            severity: rule.severity,
            title: title.chars().take(300).collect(),
            domain: subject.domain,
            admin_unit: subject.admin_unit,
            entity: subject.entity,
            entity_type: subject.entity_type,
            attribute: subject.attribute,
            source: subject.source,
            indicator: subject.indicator,
            location: subject.location,
            value: tr.value,
            data,
            fired_at: at,
            at: self.now(),
        };
        let (alert, created) = self.inner.ops.open_alert(&new).await?;
        metrics::counter!("panorama_alerts_total", "change" => if created { "opened" } else { "repeated" })
            .increment(1);
        self.publish_alert(if created { "opened" } else { "repeated" }, alert.clone());
        if created {
            self.notify(&rule.notify, Message::alert("alert.opened", &alert))
                .await;
            if let Some(spec) = &rule.incident {
                self.incident_for_alert(rule, spec, &alert).await?;
            }
        }
        Ok(())
    }

    /// The engine saw a condition end.
    pub(crate) async fn cleared(&self, rule: &Rule, key: &str, tr: &Transition) -> OpsResult<()> {
        let comment = match tr.value {
            Some(v) => format!(
                "the condition cleared at {} ({})",
                ms_to_ts(tr.at_ms).to_rfc3339(),
                fmt_num(v)
            ),
            None => format!(
                "the condition cleared at {}",
                ms_to_ts(tr.at_ms).to_rfc3339()
            ),
        };
        let by = format!("rule:{}", rule.id);
        if let Some(alert) = self
            .inner
            .ops
            .resolve_alert_by_key(&rule.id, key, &by, self.now(), Some(&comment))
            .await?
        {
            metrics::counter!("panorama_alerts_total", "change" => "resolved").increment(1);
            self.publish_alert("resolved", alert.clone());
            self.notify(&rule.notify, Message::alert("alert.resolved", &alert))
                .await;
        }
        Ok(())
    }

    // --- SOP templates --------------------------------------------------

    /// Every SOP template.
    pub async fn sops(&self) -> OpsResult<Vec<SopTemplate>> {
        Ok(self.inner.ops.sops().await?)
    }

    /// Creates or replaces the SOP template of an incident type (admin).
    pub async fn put_sop(
        &self,
        actor: &Actor,
        incident_type: &str,
        input: SopInput,
    ) -> OpsResult<SopTemplate> {
        actor.require(&[Role::Admin])?;
        if input.incident_type != incident_type {
            return Err(Invalid::one(
                "incident_type",
                format!("must be '{incident_type}', as in the path"),
            )
            .into());
        }
        let sop = input.into_sop();
        validate_sop(&sop)?;
        self.inner.ops.put_sops(std::slice::from_ref(&sop)).await?;
        Ok(sop)
    }

    /// Deletes an SOP template (admin).
    pub async fn delete_sop(&self, actor: &Actor, incident_type: &str) -> OpsResult<()> {
        actor.require(&[Role::Admin])?;
        if self.inner.ops.delete_sop(incident_type).await? {
            Ok(())
        } else {
            Err(OpsError::NotFound(format!(
                "no SOP template for incident type '{incident_type}'"
            )))
        }
    }

    // --- notifications --------------------------------------------------

    /// The actor's in-console notifications, newest first.
    pub async fn notifications(
        &self,
        actor: &Actor,
        unread_only: bool,
        cursor: Option<&str>,
        limit: usize,
    ) -> OpsResult<Page<Notification>> {
        Ok(self
            .inner
            .ops
            .notifications(&actor.name, unread_only, cursor, limit)
            .await?)
    }

    /// Marks the actor's notifications read (all when `ids` is None).
    pub async fn mark_read(&self, actor: &Actor, ids: Option<&[i64]>) -> OpsResult<u64> {
        Ok(self
            .inner
            .ops
            .mark_notifications_read(&actor.name, ids, self.now())
            .await?)
    }

    /// The delivery log (admin).
    pub async fn deliveries(&self, actor: &Actor, q: &DeliveryQuery) -> OpsResult<Page<Delivery>> {
        actor.require(&[Role::Admin])?;
        Ok(self.inner.ops.deliveries(q).await?)
    }

    /// One delivery with its attempts (admin).
    pub async fn delivery(
        &self,
        actor: &Actor,
        id: i64,
    ) -> OpsResult<(Delivery, Vec<DeliveryAttempt>)> {
        actor.require(&[Role::Admin])?;
        let page = self
            .inner
            .ops
            .deliveries(&DeliveryQuery {
                cursor: Some((id + 1).to_string()),
                limit: 1,
                ..DeliveryQuery::default()
            })
            .await?;
        let d = page
            .items
            .into_iter()
            .find(|d| d.id == id)
            .ok_or_else(|| OpsError::NotFound(format!("delivery {id} does not exist")))?;
        let attempts = self.inner.ops.delivery_attempts(id).await?;
        Ok((d, attempts))
    }
}

/// A number as people read it: no trailing zeros.
pub(crate) fn fmt_num(v: f64) -> String {
    let s = format!("{v:.3}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}
