//! What a rule is: a condition over observations, indicators or freshness,
//! a scope, a severity, and what to do when it fires (alert, incident,
//! notifications). Parsing and validation name the offending field, so a
//! bad rule from the API or a rules file gets a clear error.

use crate::dur::Dur;
use panorama_core::entity::{check_entity_id, check_identifier};
use panorama_core::error::{check_code, check_name};
use panorama_core::{FieldError, Invalid};
use panorama_store::Severity;
use serde::{Deserialize, Serialize};

/// A rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// Stable code, e.g. `river-level-high`.
    pub id: String,
    /// Name shown on alerts, e.g. `Mực nước sông vượt báo động 1`.
    pub name: String,
    /// What the rule watches for and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Whether the rule is evaluated (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Severity of its alerts.
    pub severity: Severity,
    /// What the rule applies to; empty lists mean no restriction.
    #[serde(default)]
    pub scope: Scope,
    /// When it fires and clears.
    pub condition: Condition,
    /// Open an incident when an alert opens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub incident: Option<IncidentSpec>,
    /// Channel ids to notify when an alert opens or resolves.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<String>,
}

fn yes() -> bool {
    true
}

/// What a rule applies to. Lists are alternatives (any of); kinds are
/// combined (all of); an empty scope applies to everything.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    /// Domain codes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub domains: Vec<String>,
    /// Entity types.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entity_types: Vec<String>,
    /// Admin unit codes, descendants included.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub admin_units: Vec<String>,
    /// Explicit entity ids.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<String>,
}

/// Which status colour of an indicator fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Colour {
    /// Amber or red.
    Amber,
    /// Red only.
    Red,
}

/// What falls silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Silent {
    /// A source (feed) past its freshness contract.
    Source,
    /// An entity in scope that sent nothing for `max_silence`.
    Entity,
}

/// Aggregations over a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum WindowAgg {
    /// Mean.
    Avg,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
    /// Sum.
    Sum,
    /// Number of values.
    Count,
}

/// When a rule fires and clears. Numbers compare strictly: `above = 2.5`
/// fires on values greater than 2.5; `clear = 2.3` clears on values below
/// 2.3 (without `clear`, as soon as the value is no longer above). `for`
/// is how long the condition must hold (over consecutive observations)
/// before it fires; `clear_for` how long the clear condition must hold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Condition {
    /// The value of an attribute crosses a level.
    Threshold(ThresholdCond),
    /// The change of an attribute within a window (newest − oldest value).
    RateOfChange(ChangeCond),
    /// An aggregate of an attribute over a sliding window (`AQI 1-hour
    /// average > 150`).
    Aggregate(AggregateCond),
    /// A source or an entity falls silent.
    Freshness(FreshnessCond),
    /// An indicator's status colour against its plan target turns amber
    /// or red (it falls off its plan track) for an admin unit in scope.
    IndicatorStatus(StatusCond),
    /// An event inside a zone.
    InZone(ZoneCond),
    /// Many reports in an area within a time window.
    CountInArea(CountCond),
}

/// `threshold`: the value of an attribute crosses a level.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ThresholdCond {
    /// Numeric attribute.
    pub attribute: String,
    /// Fires above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Fires below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Hysteresis: clears only past this level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// Minimum duration before firing.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<Dur>,
    /// Minimum duration before clearing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_for: Option<Dur>,
}

/// `rate_of_change`: the change of an attribute within a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeCond {
    /// Numeric attribute.
    pub attribute: String,
    /// Window, e.g. `30m`.
    pub window: Dur,
    /// Fires when it rose by more than this within the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rise: Option<f64>,
    /// Fires when it fell by more than this within the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall: Option<f64>,
    /// Hysteresis: clears only when the change is less than this amount.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// Minimum duration before firing.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<Dur>,
    /// Minimum duration before clearing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_for: Option<Dur>,
}

/// `aggregate`: an aggregate over a sliding window that ends at the
/// newest observation and holds the values of the last `window` (the
/// start excluded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AggregateCond {
    /// Numeric attribute.
    pub attribute: String,
    /// Aggregation.
    pub agg: WindowAgg,
    /// Window, e.g. `1h`.
    pub window: Dur,
    /// Fires above this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub above: Option<f64>,
    /// Fires below this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below: Option<f64>,
    /// Hysteresis: clears only past this level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear: Option<f64>,
    /// Values the window must hold before the aggregate counts (default 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_count: Option<u32>,
    /// Minimum duration before firing.
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub hold: Option<Dur>,
    /// Minimum duration before clearing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_for: Option<Dur>,
}

/// `freshness`: a source or an entity falls silent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshnessCond {
    /// `source`: sources past their contract (`expected_interval_secs`);
    /// `entity`: entities in scope silent for `max_silence`.
    pub of: Silent,
    /// Source ids (`of = "source"`); all sources when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    /// Only this attribute counts as a sign of life (`of = "entity"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// Longest silence allowed (`of = "entity"`; required there).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_silence: Option<Dur>,
    /// Extra time beyond a source's contract before firing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grace: Option<Dur>,
}

/// `indicator_status`: an indicator's status colour turns amber or red.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusCond {
    /// Indicator codes; every indicator of the scope's domains when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub indicators: Vec<String>,
    /// `red`, or `amber` (amber or red).
    pub at_least: Colour,
}

/// `in_zone`: an observation of `attribute` (equal to `equals` when given)
/// from an entity located inside the zone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneCond {
    /// Attribute that carries the event.
    pub attribute: String,
    /// A GeoJSON Polygon or MultiPolygon.
    #[schema(value_type = Object)]
    pub zone: geojson::Geometry,
    /// Only values equal to this count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub equals: Option<serde_json::Value>,
    /// The alert resolves after this long without a new event (default 1h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clear_after: Option<Dur>,
}

/// `count_in_area`: observations of `attribute` (equal to `equals` when
/// given) from entities in the area (and scope), counted over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountCond {
    /// Attribute that carries a report.
    pub attribute: String,
    /// A GeoJSON Polygon or MultiPolygon; the scope alone when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub area: Option<geojson::Geometry>,
    /// Only values equal to this count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub equals: Option<serde_json::Value>,
    /// Window, e.g. `1h`.
    pub window: Dur,
    /// Fires when the window holds at least this many reports; clears below.
    pub at_least: u32,
}

impl Condition {
    /// Explains why `v` is not a condition, naming the field.
    fn diagnose(v: serde_json::Value) -> Invalid {
        let serde_json::Value::Object(mut m) = v else {
            return Invalid::one("", "must be a table/object with a 'kind'");
        };
        let kind = m.remove("kind");
        let inner = serde_json::Value::Object(m);
        let r = match kind.as_ref().and_then(|k| k.as_str()) {
            Some("threshold") => parse_value::<ThresholdCond>(inner).map(|_| ()),
            Some("rate_of_change") => parse_value::<ChangeCond>(inner).map(|_| ()),
            Some("aggregate") => parse_value::<AggregateCond>(inner).map(|_| ()),
            Some("freshness") => parse_value::<FreshnessCond>(inner).map(|_| ()),
            Some("indicator_status") => parse_value::<StatusCond>(inner).map(|_| ()),
            Some("in_zone") => parse_value::<ZoneCond>(inner).map(|_| ()),
            Some("count_in_area") => parse_value::<CountCond>(inner).map(|_| ()),
            _ => Err(Invalid::one(
                "kind",
                "must be one of threshold, rate_of_change, aggregate, freshness, indicator_status, in_zone, count_in_area",
            )),
        };
        r.err()
            .unwrap_or_else(|| Invalid::one("", "is not a valid condition"))
    }

    /// The snake_case kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Threshold(_) => "threshold",
            Self::RateOfChange(_) => "rate_of_change",
            Self::Aggregate(_) => "aggregate",
            Self::Freshness(_) => "freshness",
            Self::IndicatorStatus(_) => "indicator_status",
            Self::InZone(_) => "in_zone",
            Self::CountInArea(_) => "count_in_area",
        }
    }

    /// The attribute the condition reads, for conditions over observations.
    pub fn attribute(&self) -> Option<&str> {
        match self {
            Self::Threshold(c) => Some(&c.attribute),
            Self::RateOfChange(c) => Some(&c.attribute),
            Self::Aggregate(c) => Some(&c.attribute),
            Self::InZone(c) => Some(&c.attribute),
            Self::CountInArea(c) => Some(&c.attribute),
            Self::Freshness(c) => c.attribute.as_deref(),
            Self::IndicatorStatus(_) => None,
        }
    }
}

/// The incident a rule opens with its alerts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    /// Incident type code; picks the SOP checklist.
    #[serde(rename = "type")]
    pub incident_type: String,
    /// Agency to assign.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agency: Option<String>,
    /// Severity, when not the rule's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub severity: Option<Severity>,
    /// Link to an active incident of the same type and admin unit rather
    /// than opening a new one (default true).
    #[serde(default = "yes")]
    pub group: bool,
}

/// Longest window or duration a rule may use.
pub const MAX_WINDOW_SECS: i64 = 7 * 86_400;
/// Most items in one scope list.
pub const MAX_SCOPE_ITEMS: usize = 1000;

fn finite(errs: &mut Vec<FieldError>, field: &str, v: Option<f64>) {
    if let Some(x) = v
        && !x.is_finite()
    {
        errs.push(FieldError::new(field, "must be a finite number"));
    }
}

fn window(errs: &mut Vec<FieldError>, field: &str, d: Option<Dur>, min: i64) {
    if let Some(d) = d
        && !(min..=MAX_WINDOW_SECS).contains(&d.secs())
    {
        errs.push(FieldError::new(
            field,
            format!("must be between {} and {}", Dur(min), Dur(MAX_WINDOW_SECS)),
        ));
    }
}

/// Checks `above`/`below`/`clear`: exactly one direction, and the clear
/// level on the safe side of the firing level.
fn levels(
    errs: &mut Vec<FieldError>,
    (above_name, above): (&str, Option<f64>),
    (below_name, below): (&str, Option<f64>),
    clear: Option<f64>,
    signed: bool,
) {
    finite(errs, &format!("condition.{above_name}"), above);
    finite(errs, &format!("condition.{below_name}"), below);
    finite(errs, "condition.clear", clear);
    match (above, below) {
        (None, None) => errs.push(FieldError::new(
            format!("condition.{above_name}"),
            format!("give one of '{above_name}' or '{below_name}'"),
        )),
        (Some(_), Some(_)) => errs.push(FieldError::new(
            format!("condition.{below_name}"),
            format!("give only one of '{above_name}' or '{below_name}'"),
        )),
        (Some(a), None) => {
            if let Some(c) = clear
                && c > a
            {
                errs.push(FieldError::new(
                    "condition.clear",
                    format!("must be at or below '{above_name}' ({a}) so the alert can clear"),
                ));
            }
        }
        (None, Some(b)) => {
            if signed {
                // `fall` is a positive amount; its clear level is one too.
                if let Some(c) = clear
                    && c > b
                {
                    errs.push(FieldError::new(
                        "condition.clear",
                        format!("must be at or below '{below_name}' ({b}) so the alert can clear"),
                    ));
                }
            } else if let Some(c) = clear
                && c < b
            {
                errs.push(FieldError::new(
                    "condition.clear",
                    format!("must be at or above '{below_name}' ({b}) so the alert can clear"),
                ));
            }
        }
    }
}

fn area(errs: &mut Vec<FieldError>, field: &str, g: &geojson::Geometry) {
    if let Err(e) = panorama_core::geo::area_from_geojson(g) {
        errs.push(FieldError::new(field, e));
    }
}

fn event_value(errs: &mut Vec<FieldError>, v: &Option<serde_json::Value>) {
    if let Some(serde_json::Value::Null) = v {
        errs.push(FieldError::new(
            "condition.equals",
            "must not be null; leave it out to count every value",
        ));
    }
}

impl Rule {
    /// Checks everything that needs no store: codes, names, levels,
    /// durations, geometry. References (domains, units, indicators,
    /// channels) are checked by the service.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errs = Vec::new();
        errs.extend(check_code("id", &self.id).err());
        errs.extend(check_name("name", &self.name).err());
        if let Some(d) = &self.description
            && d.chars().count() > 2000
        {
            errs.push(FieldError::new(
                "description",
                "must be at most 2000 characters",
            ));
        }
        let s = &self.scope;
        for (name, list) in [
            ("domains", &s.domains),
            ("entity_types", &s.entity_types),
            ("admin_units", &s.admin_units),
            ("entities", &s.entities),
        ] {
            if list.len() > MAX_SCOPE_ITEMS {
                errs.push(FieldError::new(
                    format!("scope.{name}"),
                    format!("at most {MAX_SCOPE_ITEMS} items"),
                ));
            }
            for (i, v) in list.iter().enumerate() {
                let field = format!("scope.{name}[{i}]");
                let r = match name {
                    "entity_types" => check_identifier(&field, v),
                    "entities" => check_entity_id(&field, v),
                    _ => check_code(&field, v),
                };
                errs.extend(r.err());
            }
        }
        self.validate_condition(&mut errs);
        if let Some(inc) = &self.incident {
            errs.extend(check_code("incident.type", &inc.incident_type).err());
            if let Some(a) = &inc.agency {
                errs.extend(check_code("incident.agency", a).err());
            }
        }
        for (i, c) in self.notify.iter().enumerate() {
            errs.extend(check_code(&format!("notify[{i}]"), c).err());
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }

    fn validate_condition(&self, errs: &mut Vec<FieldError>) {
        if let Some(a) = self.condition.attribute() {
            errs.extend(check_identifier("condition.attribute", a).err());
        }
        match &self.condition {
            Condition::Threshold(ThresholdCond {
                above,
                below,
                clear,
                hold,
                clear_for,
                ..
            }) => {
                levels(errs, ("above", *above), ("below", *below), *clear, false);
                window(errs, "condition.for", *hold, 0);
                window(errs, "condition.clear_for", *clear_for, 0);
            }
            Condition::RateOfChange(ChangeCond {
                window: w,
                rise,
                fall,
                clear,
                hold,
                clear_for,
                ..
            }) => {
                levels(errs, ("rise", *rise), ("fall", *fall), *clear, true);
                for (f, v) in [("condition.rise", rise), ("condition.fall", fall)] {
                    if v.is_some_and(|x| x <= 0.0) {
                        errs.push(FieldError::new(f, "must be a positive amount of change"));
                    }
                }
                window(errs, "condition.window", Some(*w), 1);
                window(errs, "condition.for", *hold, 0);
                window(errs, "condition.clear_for", *clear_for, 0);
            }
            Condition::Aggregate(AggregateCond {
                window: w,
                above,
                below,
                clear,
                min_count,
                hold,
                clear_for,
                ..
            }) => {
                levels(errs, ("above", *above), ("below", *below), *clear, false);
                window(errs, "condition.window", Some(*w), 1);
                window(errs, "condition.for", *hold, 0);
                window(errs, "condition.clear_for", *clear_for, 0);
                if min_count.is_some_and(|n| n == 0 || n > 100_000) {
                    errs.push(FieldError::new(
                        "condition.min_count",
                        "must be between 1 and 100000",
                    ));
                }
            }
            Condition::Freshness(FreshnessCond {
                of,
                sources,
                attribute,
                max_silence,
                grace,
            }) => {
                match of {
                    Silent::Source => {
                        if attribute.is_some() {
                            errs.push(FieldError::new(
                                "condition.attribute",
                                "applies to of = \"entity\" only",
                            ));
                        }
                        if max_silence.is_some() {
                            errs.push(FieldError::new(
                                "condition.max_silence",
                                "applies to of = \"entity\" only; a source's silence is judged by its own contract (use 'grace' to allow more)",
                            ));
                        }
                    }
                    Silent::Entity => {
                        if !sources.is_empty() {
                            errs.push(FieldError::new(
                                "condition.sources",
                                "applies to of = \"source\" only",
                            ));
                        }
                        if max_silence.is_none() {
                            errs.push(FieldError::new(
                                "condition.max_silence",
                                "is required for of = \"entity\", e.g. \"15m\"",
                            ));
                        }
                        window(errs, "condition.max_silence", *max_silence, 1);
                    }
                }
                for (i, s) in sources.iter().enumerate() {
                    errs.extend(check_code(&format!("condition.sources[{i}]"), s).err());
                }
                window(errs, "condition.grace", *grace, 0);
            }
            Condition::IndicatorStatus(StatusCond { indicators, .. }) => {
                for (i, s) in indicators.iter().enumerate() {
                    errs.extend(check_code(&format!("condition.indicators[{i}]"), s).err());
                }
            }
            Condition::InZone(ZoneCond {
                zone,
                equals,
                clear_after,
                ..
            }) => {
                area(errs, "condition.zone", zone);
                event_value(errs, equals);
                window(errs, "condition.clear_after", *clear_after, 1);
            }
            Condition::CountInArea(CountCond {
                area: a,
                equals,
                window: w,
                at_least,
                ..
            }) => {
                if let Some(g) = a {
                    area(errs, "condition.area", g);
                }
                event_value(errs, equals);
                window(errs, "condition.window", Some(*w), 1);
                if *at_least == 0 {
                    errs.push(FieldError::new("condition.at_least", "must be at least 1"));
                }
            }
        }
    }

    /// Parses a rule from JSON, naming the offending field on failure.
    pub fn from_json(v: serde_json::Value) -> Result<Rule, Invalid> {
        let condition = v.get("condition").cloned();
        let rule: Rule = match parse_value(v) {
            Ok(r) => r,
            Err(e) => {
                // Serde buffers a tagged enum before choosing the variant,
                // which loses the path inside it; find the field again.
                return Err(match (e.0.first(), condition) {
                    (Some(fe), Some(c)) if fe.field == "condition" => {
                        Condition::diagnose(c).under("condition")
                    }
                    _ => e,
                });
            }
        };
        rule.validate()?;
        Ok(rule)
    }

    /// The rule as a JSON document (as stored).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }
}

/// Deserialises `v` as `T`, turning serde's error into a field error with
/// the JSON path (and the missing or unknown field's name appended).
pub fn parse_value<T: serde::de::DeserializeOwned>(v: serde_json::Value) -> Result<T, Invalid> {
    serde_path_to_error::deserialize::<_, T>(v).map_err(|e| {
        let mut path = e.path().to_string();
        if path == "." {
            path.clear();
        }
        let msg = e.into_inner().to_string();
        // serde names a missing or unknown field in backquotes; point at it.
        let named = msg.split('`').nth(1).unwrap_or("");
        let already = path == named || path.ends_with(&format!(".{named}"));
        let field = if (msg.starts_with("missing field") || msg.starts_with("unknown field"))
            && !named.is_empty()
            && !already
        {
            if path.is_empty() {
                named.to_string()
            } else {
                format!("{path}.{named}")
            }
        } else {
            path
        };
        Invalid::one(field, msg)
    })
}

/// The contents of a rules file: rules and SOP templates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RuleFile {
    /// The `[[rule]]` tables.
    pub rules: Vec<Rule>,
    /// The `[[sop]]` tables.
    pub sops: Vec<panorama_store::SopTemplate>,
}

/// Checks an SOP template.
pub fn validate_sop(sop: &panorama_store::SopTemplate) -> Result<(), Invalid> {
    let mut errs = Vec::new();
    errs.extend(check_code("incident_type", &sop.incident_type).err());
    errs.extend(check_name("name", &sop.name).err());
    if sop.steps.is_empty() || sop.steps.len() > 100 {
        errs.push(FieldError::new("steps", "must list 1 to 100 steps"));
    }
    for (i, s) in sop.steps.iter().enumerate() {
        errs.extend(check_name(&format!("steps[{i}]"), s).err());
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(Invalid(errs))
    }
}

/// Parses a rules file (TOML): `[[rule]]` tables as in the API, and
/// `[[sop]]` tables (`incident_type`, `name`, `steps`). Every error is
/// reported with its path, e.g. `rule[2].condition.above`.
pub fn parse_rule_file(text: &str) -> Result<RuleFile, Invalid> {
    let doc: toml::Table = toml::from_str(text).map_err(|e| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}")
            })
            .unwrap_or_default();
        Invalid::one(at, format!("not valid TOML: {}", e.message()))
    })?;
    let mut errs = Vec::new();
    let mut out = RuleFile::default();
    for key in doc.keys() {
        if key != "rule" && key != "sop" {
            errs.push(FieldError::new(
                key.clone(),
                "unknown table; a rules file holds [[rule]] and [[sop]] tables",
            ));
        }
    }
    let tables = |name: &str, errs: &mut Vec<FieldError>| -> Vec<serde_json::Value> {
        match doc.get(name) {
            None => Vec::new(),
            Some(toml::Value::Array(a)) => a
                .iter()
                .map(|t| serde_json::to_value(t).unwrap_or(serde_json::Value::Null))
                .collect(),
            Some(_) => {
                errs.push(FieldError::new(
                    name,
                    format!("must be an array of tables: [[{name}]]"),
                ));
                Vec::new()
            }
        }
    };
    for (i, v) in tables("rule", &mut errs).into_iter().enumerate() {
        match Rule::from_json(v) {
            Ok(r) => out.rules.push(r),
            Err(e) => errs.extend(e.under(&format!("rule[{i}]")).0),
        }
    }
    for (i, v) in tables("sop", &mut errs).into_iter().enumerate() {
        match parse_value::<SopInput>(v) {
            Ok(s) => {
                let sop = s.into_sop();
                match validate_sop(&sop) {
                    Ok(()) => out.sops.push(sop),
                    Err(e) => errs.extend(e.under(&format!("sop[{i}]")).0),
                }
            }
            Err(e) => errs.extend(e.under(&format!("sop[{i}]")).0),
        }
    }
    let mut seen = std::collections::HashSet::new();
    for (i, r) in out.rules.iter().enumerate() {
        if !seen.insert(r.id.as_str()) {
            errs.push(FieldError::new(
                format!("rule[{i}].id"),
                format!("rule '{}' is defined twice", r.id),
            ));
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(Invalid(errs))
    }
}

/// An SOP template as written.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SopInput {
    /// Incident type code.
    pub incident_type: String,
    /// Name.
    pub name: String,
    /// Steps in order.
    pub steps: Vec<String>,
}

impl SopInput {
    /// The template.
    pub fn into_sop(self) -> panorama_store::SopTemplate {
        panorama_store::SopTemplate {
            incident_type: self.incident_type,
            name: self.name,
            steps: self.steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(e: Invalid) -> Vec<String> {
        e.0.into_iter().map(|e| e.field).collect()
    }

    fn water() -> serde_json::Value {
        json!({
            "id": "river-high", "name": "Mực nước cao", "severity": "high",
            "scope": {"domains": ["water"], "entity_types": ["WaterObserved"]},
            "condition": {"kind": "threshold", "attribute": "waterLevel", "above": 2.5, "clear": 2.3, "for": "10m"}
        })
    }

    #[test]
    fn a_good_rule_parses() {
        let r = Rule::from_json(water()).unwrap();
        assert!(r.enabled);
        match r.condition {
            Condition::Threshold(c) => {
                assert_eq!(c.hold, Some(Dur(600)));
                assert_eq!(c.clear, Some(2.3));
            }
            other => panic!("{other:?}"),
        }
        // Round trip through the stored form.
        let again = Rule::from_json(Rule::from_json(water()).unwrap().to_json()).unwrap();
        assert_eq!(again.id, "river-high");
    }

    #[test]
    fn bad_rules_name_the_field() {
        let with = |path: &[&str], v: serde_json::Value| {
            let mut r = water();
            let mut at = &mut r;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = v;
            r
        };
        let cases = [
            (with(&["condition", "clear"], json!(2.7)), "condition.clear"),
            (
                with(&["condition", "for"], json!("ten minutes")),
                "condition.for",
            ),
            (
                with(&["condition", "kind"], json!("thresold")),
                "condition.kind",
            ),
            (
                with(&["condition", "above"], json!("high")),
                "condition.above",
            ),
            (with(&["severity"], json!("urgent")), "severity"),
            (with(&["id"], json!("has space")), "id"),
            (
                with(&["scope", "entities"], json!(["sensor-1"])),
                "scope.entities[0]",
            ),
            (with(&["scope", "colour"], json!("red")), "scope.colour"),
            (with(&["condition", "for"], json!("30d")), "condition.for"),
        ];
        for (rule, field) in cases {
            let e = Rule::from_json(rule).unwrap_err();
            assert_eq!(fields(e.clone()), [field], "{e}");
        }
        let mut no_level = water();
        no_level["condition"]
            .as_object_mut()
            .unwrap()
            .remove("above");
        no_level["condition"]
            .as_object_mut()
            .unwrap()
            .remove("clear");
        assert_eq!(
            fields(Rule::from_json(no_level).unwrap_err()),
            ["condition.above"]
        );
        let mut missing = water();
        missing["condition"]
            .as_object_mut()
            .unwrap()
            .remove("attribute");
        assert_eq!(
            fields(Rule::from_json(missing).unwrap_err()),
            ["condition.attribute"]
        );
        let both = with(&["condition", "below"], json!(1.0));
        assert_eq!(
            fields(Rule::from_json(both).unwrap_err()),
            ["condition.below"]
        );
    }

    #[test]
    fn other_kinds_validate() {
        let ok = |c: serde_json::Value| {
            let mut r = water();
            r["condition"] = c;
            Rule::from_json(r)
        };
        assert!(ok(json!({"kind": "aggregate", "attribute": "aqi", "agg": "avg", "window": "1h", "above": 150})).is_ok());
        assert!(ok(json!({"kind": "rate_of_change", "attribute": "waterLevel", "window": "30m", "rise": 0.5})).is_ok());
        assert!(ok(json!({"kind": "freshness", "of": "source"})).is_ok());
        assert_eq!(
            fields(ok(json!({"kind": "freshness", "of": "entity"})).unwrap_err()),
            ["condition.max_silence"]
        );
        assert!(ok(json!({"kind": "indicator_status", "at_least": "red"})).is_ok());
        let zone = json!({"type": "Polygon", "coordinates": [[[106.6, 10.9], [106.7, 10.9], [106.7, 11.0], [106.6, 10.9]]]});
        assert!(
            ok(
                json!({"kind": "in_zone", "attribute": "event", "zone": zone, "equals": "flooding"})
            )
            .is_ok()
        );
        assert_eq!(
            fields(ok(json!({"kind": "in_zone", "attribute": "event", "zone": {"type": "Point", "coordinates": [1, 2]}})).unwrap_err()),
            ["condition.zone"]
        );
        assert_eq!(
            fields(ok(json!({"kind": "count_in_area", "attribute": "report", "window": "1h", "at_least": 0})).unwrap_err()),
            ["condition.at_least"]
        );
        assert_eq!(
            fields(
                ok(json!({"kind": "rate_of_change", "attribute": "x", "window": "0s", "rise": -1}))
                    .unwrap_err()
            ),
            ["condition.rise", "condition.window"]
        );
    }

    #[test]
    fn the_example_rules_file_parses() {
        let text = include_str!("../rules.example.toml");
        let f = parse_rule_file(text).unwrap();
        assert!(f.rules.len() >= 5, "{}", f.rules.len());
        assert!(!f.sops.is_empty());
        let kinds: std::collections::BTreeSet<&str> =
            f.rules.iter().map(|r| r.condition.kind()).collect();
        for k in [
            "threshold",
            "rate_of_change",
            "aggregate",
            "freshness",
            "indicator_status",
            "in_zone",
            "count_in_area",
        ] {
            assert!(kinds.contains(k), "the example shows a {k} rule");
        }
    }

    #[test]
    fn rule_file_errors_carry_the_path() {
        let text = r#"
[[rule]]
id = "a"
name = "A"
severity = "low"
condition = { kind = "threshold", attribute = "x", above = 1 }

[[rule]]
id = "a"
name = "B"
severity = "low"
condition = { kind = "threshold", attribute = "x", above = 1, clear = 5 }

[[sop]]
incident_type = "flood"
name = "Ngập"
steps = []
"#;
        let e = parse_rule_file(text).unwrap_err();
        assert_eq!(
            fields(e),
            ["rule[1].condition.clear", "sop[0].steps"],
            "the duplicate id is only reported once the rules themselves are valid"
        );
        let e = parse_rule_file("[[rule]]\nid = \n").unwrap_err();
        assert_eq!(fields(e), ["line 2"]);
        let e = parse_rule_file("[rules]\n").unwrap_err();
        assert_eq!(fields(e), ["rules"]);
    }
}
