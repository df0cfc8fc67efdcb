//! A rule turned into what the engine runs: a scope matcher with admin
//! units expanded to their descendants, and an evaluator per kind.

use crate::eval::{Metric, SeriesEval, Trigger};
use crate::model::{Colour, Condition, Rule, Scope, Silent};
use panorama_core::{AdminUnit, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Admin units by parent, to expand a unit to its descendants.
#[derive(Debug, Clone, Default)]
pub struct UnitTree {
    children: HashMap<String, Vec<String>>,
}

impl UnitTree {
    /// The tree of `units`.
    pub fn new(units: &[AdminUnit]) -> Self {
        let mut children: HashMap<String, Vec<String>> = HashMap::new();
        for u in units {
            if let Some(p) = &u.parent {
                children.entry(p.clone()).or_default().push(u.code.clone());
            }
        }
        Self { children }
    }

    /// The given units and all their descendants.
    pub fn expand(&self, codes: &[String]) -> HashSet<String> {
        let mut out = HashSet::new();
        let mut stack: Vec<&str> = codes.iter().map(String::as_str).collect();
        while let Some(c) = stack.pop() {
            if out.insert(c.to_string())
                && let Some(k) = self.children.get(c)
            {
                stack.extend(k.iter().map(String::as_str));
            }
        }
        out
    }
}

/// A scope, ready to match.
#[derive(Debug, Clone, Default)]
pub struct ScopeMatch {
    /// Domains (any of); all when empty.
    pub domains: HashSet<String>,
    /// Entity types (any of); all when empty.
    pub types: HashSet<String>,
    /// Admin units with descendants; all when None.
    pub units: Option<HashSet<String>>,
    /// Entities (any of); all when empty.
    pub entities: HashSet<String>,
}

impl ScopeMatch {
    /// The matcher of a scope.
    pub fn new(s: &Scope, tree: &UnitTree) -> Self {
        Self {
            domains: s.domains.iter().cloned().collect(),
            types: s.entity_types.iter().cloned().collect(),
            units: (!s.admin_units.is_empty()).then(|| tree.expand(&s.admin_units)),
            entities: s.entities.iter().cloned().collect(),
        }
    }

    /// Whether an admin unit is in scope.
    pub fn unit(&self, unit: Option<&str>) -> bool {
        match (&self.units, unit) {
            (None, _) => true,
            (Some(s), Some(u)) => s.contains(u),
            (Some(_), None) => false,
        }
    }

    /// Whether a domain is in scope.
    pub fn domain(&self, d: Option<&str>) -> bool {
        self.domains.is_empty() || d.is_some_and(|d| self.domains.contains(d))
    }

    /// Whether an entity is in scope.
    pub fn entity(
        &self,
        entity: &str,
        entity_type: &str,
        domain: &str,
        unit: Option<&str>,
    ) -> bool {
        (self.entities.is_empty() || self.entities.contains(entity))
            && (self.types.is_empty() || self.types.contains(entity_type))
            && self.domain(Some(domain))
            && self.unit(unit)
    }
}

/// What the engine runs for one rule.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A condition over each numeric series in scope.
    Series(SeriesEval),
    /// Silence of each entity in scope.
    EntitySilence {
        /// Longest silence, ms.
        max_ms: i64,
    },
    /// Sources past their contract.
    SourceSilence {
        /// Only these sources (all when empty).
        sources: HashSet<String>,
        /// Extra seconds beyond the contract.
        grace_secs: i64,
    },
    /// Indicator status colours.
    Status {
        /// Only these indicators (all of the scope's domains when empty).
        indicators: HashSet<String>,
        /// Red only (else amber or red).
        red_only: bool,
    },
    /// Events inside a zone.
    Zone {
        /// The zone.
        area: geo::MultiPolygon<f64>,
        /// Only values equal to this.
        equals: Option<serde_json::Value>,
        /// Quiet time that clears.
        quiet_ms: i64,
    },
    /// Reports counted in an area.
    Count {
        /// The area (the scope alone when None).
        area: Option<geo::MultiPolygon<f64>>,
        /// Only values equal to this.
        equals: Option<serde_json::Value>,
        /// Window, ms.
        window_ms: i64,
        /// Fires at this count.
        at_least: u32,
    },
}

/// A rule ready to run.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The rule.
    pub rule: Arc<Rule>,
    /// Its stored version.
    pub version: i64,
    /// Its scope.
    pub scope: ScopeMatch,
    /// Its evaluator.
    pub kind: Kind,
    /// The attribute it reads (None: any attribute, or none).
    pub attribute: Option<String>,
}

fn trigger(
    above: Option<f64>,
    below: Option<f64>,
    clear: Option<f64>,
    hold: Option<crate::Dur>,
    clear_for: Option<crate::Dur>,
) -> Trigger {
    Trigger {
        above: above.is_some(),
        level: above.or(below).unwrap_or(0.0),
        clear,
        hold_ms: hold.map_or(0, |d| d.millis()),
        clear_hold_ms: clear_for.map_or(0, |d| d.millis()),
    }
}

fn area(g: &geojson::Geometry) -> Result<geo::MultiPolygon<f64>, String> {
    panorama_core::geo::area_from_geojson(g)
}

/// Compiles a validated rule.
pub fn compile(rule: Rule, version: i64, tree: &UnitTree) -> Result<Compiled, String> {
    let scope = ScopeMatch::new(&rule.scope, tree);
    let attribute = rule.condition.attribute().map(String::from);
    let kind = match &rule.condition {
        Condition::Threshold(c) => Kind::Series(SeriesEval {
            metric: Metric::Value,
            trigger: trigger(c.above, c.below, c.clear, c.hold, c.clear_for),
        }),
        Condition::RateOfChange(c) => Kind::Series(SeriesEval {
            metric: Metric::Change {
                window_ms: c.window.millis(),
                rise: c.rise.is_some(),
            },
            // A fall is measured as a positive drop, so both fire "above".
            trigger: trigger(c.rise.or(c.fall), None, c.clear, c.hold, c.clear_for),
        }),
        Condition::Aggregate(c) => Kind::Series(SeriesEval {
            metric: Metric::Aggregate {
                agg: c.agg,
                window_ms: c.window.millis(),
                min_count: c.min_count.unwrap_or(1),
            },
            trigger: trigger(c.above, c.below, c.clear, c.hold, c.clear_for),
        }),
        Condition::Freshness(c) => match c.of {
            Silent::Source => Kind::SourceSilence {
                sources: c.sources.iter().cloned().collect(),
                grace_secs: c.grace.map_or(0, |g| g.secs()),
            },
            Silent::Entity => Kind::EntitySilence {
                max_ms: c.max_silence.map_or(0, |d| d.millis()),
            },
        },
        Condition::IndicatorStatus(c) => Kind::Status {
            indicators: c.indicators.iter().cloned().collect(),
            red_only: c.at_least == Colour::Red,
        },
        Condition::InZone(c) => Kind::Zone {
            area: area(&c.zone)?,
            equals: c.equals.clone(),
            quiet_ms: c.clear_after.map_or(3_600_000, |d| d.millis()),
        },
        Condition::CountInArea(c) => Kind::Count {
            area: c.area.as_ref().map(area).transpose()?,
            equals: c.equals.clone(),
            window_ms: c.window.millis(),
            at_least: c.at_least,
        },
    };
    Ok(Compiled {
        rule: Arc::new(rule),
        version,
        scope,
        kind,
        attribute,
    })
}

/// Whether an observed value equals a rule's `equals`.
pub fn value_equals(v: &Value, want: &serde_json::Value) -> bool {
    match (v, want) {
        (Value::Number(n), serde_json::Value::Number(w)) => w.as_f64() == Some(*n),
        (Value::Text(s), serde_json::Value::String(w)) => s == w,
        (Value::Boolean(b), serde_json::Value::Bool(w)) => b == w,
        (Value::Json(j), w) => j == w,
        _ => false,
    }
}

/// A point carried by an event value: a GeoJSON Point, or an object with a
/// `location` that is one.
pub fn point_of_value(v: &Value) -> Option<(f64, f64)> {
    let Value::Json(j) = v else {
        return None;
    };
    let g = if j.get("type").and_then(|t| t.as_str()) == Some("Point") {
        j
    } else {
        j.get("location")?
    };
    let c = g.get("coordinates")?.as_array()?;
    let (x, y) = (c.first()?.as_f64()?, c.get(1)?.as_f64()?);
    ((-180.0..=180.0).contains(&x) && (-90.0..=90.0).contains(&y)).then_some((x, y))
}

/// A number standing for an event value in alerts (numbers and booleans).
pub fn numeric(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => Some(*n),
        Value::Boolean(b) => Some(f64::from(u8::from(*b))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scopes_expand_units_and_combine_kinds() {
        let unit = |code: &str, parent: Option<&str>| AdminUnit {
            code: code.into(),
            name: code.into(),
            name_en: None,
            level: panorama_core::AdminLevel::District,
            parent: parent.map(Into::into),
            geometry: None,
            valid_from: None,
            valid_to: None,
            successors: Vec::new(),
        };
        let tree = UnitTree::new(&[
            unit("74", None),
            unit("718", Some("74")),
            unit("25747", Some("718")),
            unit("724", Some("74")),
        ]);
        let s = ScopeMatch::new(
            &Scope {
                domains: vec!["water".into()],
                admin_units: vec!["718".into()],
                ..Scope::default()
            },
            &tree,
        );
        assert!(s.entity("urn:x:1", "WaterObserved", "water", Some("25747")));
        assert!(!s.entity("urn:x:1", "WaterObserved", "water", Some("724")));
        assert!(!s.entity("urn:x:1", "WaterObserved", "environment", Some("718")));
        assert!(!s.entity("urn:x:1", "WaterObserved", "water", None));
    }

    #[test]
    fn event_values_match_and_carry_points() {
        assert!(value_equals(
            &Value::Text("flooding".into()),
            &json!("flooding")
        ));
        assert!(!value_equals(
            &Value::Text("fire".into()),
            &json!("flooding")
        ));
        assert!(value_equals(&Value::Number(3.0), &json!(3)));
        assert!(value_equals(&Value::Boolean(true), &json!(true)));
        let p = Value::Json(
            json!({"kind": "pothole", "location": {"type": "Point", "coordinates": [106.6, 10.9]}}),
        );
        assert_eq!(point_of_value(&p), Some((106.6, 10.9)));
        assert_eq!(point_of_value(&Value::Number(1.0)), None);
    }
}
