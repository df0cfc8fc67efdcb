//! The NGSI-LD entity model: parsing requests into the stored form,
//! rendering the stored form for a client, and the projection between
//! NGSI-LD and Panorama's catalogue (entities, observations).
//!
//! Stored form (an [`Doc`]): `id`, `type` (array of expanded IRIs),
//! optional `scope`, `createdAt`/`modifiedAt`, and every attribute under its
//! expanded IRI as an array of instances. Inside an instance the NGSI-LD
//! keywords (`type`, `value`, `object`, `observedAt`, `unitCode`,
//! `datasetId`, …) keep their names; sub-attributes use expanded IRIs.

use crate::context::{Context, DEFAULT_VOCAB, NGSI_LD};
use crate::error::{NgsiError, NgsiResult};
use panorama_core::entity::{check_entity_id, check_identifier};
use panorama_core::{AttributeSpec, Entity, Observation, Timestamp, Value as PValue, ValueType};
use panorama_store::LatestValue;
use serde_json::{Map, Value, json};
use std::collections::BTreeSet;

/// An entity in stored form.
pub type Doc = Map<String, Value>;

/// Keys of an attribute instance that are NGSI-LD keywords, not sub-attributes.
const INSTANCE_KEYWORDS: &[&str] = &[
    "type",
    "value",
    "object",
    "languageMap",
    "valueList",
    "objectList",
    "json",
    "vocab",
    "observedAt",
    "unitCode",
    "datasetId",
    "createdAt",
    "modifiedAt",
    "instanceId",
    "objectType",
    "lang",
];

/// Entity-level keys that are not attributes.
const ENTITY_KEYWORDS: &[&str] = &["id", "type", "scope", "createdAt", "modifiedAt", "@context"];

/// Attribute types this server keeps.
const ATTRIBUTE_TYPES: &[&str] = &[
    "Property",
    "Relationship",
    "GeoProperty",
    "LanguageProperty",
    "ListProperty",
    "ListRelationship",
    "JsonProperty",
    "VocabProperty",
];

/// The IRI of the core `location` attribute.
pub fn location_iri() -> String {
    format!("{NGSI_LD}location")
}

/// Checks an attribute or type name as NGSI-LD restricts it.
pub fn check_term(field: &str, term: &str) -> NgsiResult<()> {
    if term.is_empty() {
        return Err(NgsiError::bad(field, "must not be empty"));
    }
    if term.chars().any(|c| {
        c.is_whitespace()
            || c.is_control()
            || matches!(c, '<' | '>' | '"' | '\'' | '=' | ';' | '(' | ')')
    }) {
        return Err(NgsiError::bad(
            field,
            format!("'{term}' contains a character not allowed in an NGSI-LD name"),
        ));
    }
    Ok(())
}

/// Checks an entity id (a URN, as Panorama's catalogue requires).
pub fn check_id(field: &str, id: &str) -> NgsiResult<()> {
    check_entity_id(field, id).map_err(|e| NgsiError::bad(e.field, e.reason))
}

fn check_time_text(field: &str, v: &Value) -> NgsiResult<Timestamp> {
    let s = v
        .as_str()
        .ok_or_else(|| NgsiError::bad(field, "must be a date-time string"))?;
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.to_utc())
        .map_err(|e| NgsiError::bad(field, format!("'{s}' is not an RFC 3339 date-time ({e})")))
}

/// How a request's attributes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Full attributes (create, append, replace).
    Full,
    /// A fragment merged into an existing instance (partial update, merge).
    Partial,
}

/// Parses the types of an entity (`type`: string or array), expanded.
pub fn parse_types(v: Option<&Value>, ctx: &Context) -> NgsiResult<Vec<String>> {
    let list: Vec<&Value> = match v {
        None => return Err(NgsiError::bad("type", "is required")),
        Some(Value::Array(a)) if !a.is_empty() => a.iter().collect(),
        Some(v @ Value::String(_)) => vec![v],
        Some(_) => {
            return Err(NgsiError::bad(
                "type",
                "must be a name or a non-empty array of names",
            ));
        }
    };
    let mut out = Vec::new();
    for (i, t) in list.into_iter().enumerate() {
        let s = t
            .as_str()
            .ok_or_else(|| NgsiError::bad(format!("type[{i}]"), "must be a string"))?;
        check_term("type", s)?;
        if matches!(s, "type" | "id" | "value" | "object" | "@context") {
            return Err(NgsiError::bad(
                "type",
                format!("'{s}' is an NGSI-LD keyword, not a type"),
            ));
        }
        let iri = ctx.expand(s);
        if !out.contains(&iri) {
            out.push(iri);
        }
    }
    Ok(out)
}

/// Parses one attribute (object or array of instances) into stored form.
pub fn parse_attribute(
    name: &str,
    v: &Value,
    ctx: &Context,
    mode: Mode,
    now: Timestamp,
) -> NgsiResult<Vec<Value>> {
    let items: Vec<&Value> = match v {
        Value::Array(a) if !a.is_empty() => a.iter().collect(),
        Value::Array(_) => return Err(NgsiError::bad(name, "must not be an empty array")),
        other => vec![other],
    };
    let mut out = Vec::new();
    let mut datasets = BTreeSet::new();
    for item in items {
        let inst = parse_instance(name, item, ctx, mode, now)?;
        let ds = inst
            .get("datasetId")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        if !datasets.insert(ds.clone()) {
            return Err(NgsiError::bad(
                name,
                if ds.is_empty() {
                    "has more than one instance without datasetId".to_string()
                } else {
                    format!("has more than one instance with datasetId '{ds}'")
                },
            ));
        }
        out.push(Value::Object(inst));
    }
    Ok(out)
}

fn parse_instance(
    name: &str,
    v: &Value,
    ctx: &Context,
    mode: Mode,
    now: Timestamp,
) -> NgsiResult<Doc> {
    let Value::Object(obj) = v else {
        return Err(NgsiError::bad(
            name,
            "must be an object with a type (Property, Relationship, GeoProperty…) or an array of them",
        ));
    };
    let ty = match obj.get("type") {
        Some(Value::String(t)) if ATTRIBUTE_TYPES.contains(&t.as_str()) => Some(t.clone()),
        Some(Value::String(t)) => {
            return Err(NgsiError::bad(
                format!("{name}.type"),
                format!(
                    "'{t}' is not an attribute type (Property, Relationship, GeoProperty, LanguageProperty…)"
                ),
            ));
        }
        Some(_) => return Err(NgsiError::bad(format!("{name}.type"), "must be a string")),
        None if obj.contains_key("value") => Some("Property".to_string()),
        None if obj.contains_key("object") => Some("Relationship".to_string()),
        None if obj.contains_key("languageMap") => Some("LanguageProperty".to_string()),
        None if mode == Mode::Partial => None,
        None => return Err(NgsiError::bad(format!("{name}.type"), "is required")),
    };
    let mut out = Doc::new();
    if let Some(t) = &ty {
        out.insert("type".into(), json!(t));
    }
    // `urn:ngsi-ld:null` asks for deletion; the caller removes it.
    let nulled = ["value", "object"]
        .iter()
        .any(|k| obj.get(*k).and_then(Value::as_str) == Some("urn:ngsi-ld:null"))
        || obj
            .get("languageMap")
            .and_then(|m| m.get("@none"))
            .and_then(Value::as_str)
            == Some("urn:ngsi-ld:null");
    if nulled {
        for (k, v) in obj {
            out.insert(k.clone(), v.clone());
        }
        return Ok(out);
    }
    match ty.as_deref() {
        Some("Property") => match obj.get("value") {
            None | Some(Value::Null) if mode == Mode::Full => {
                return Err(NgsiError::bad(
                    format!("{name}.value"),
                    "is required and must not be null",
                ));
            }
            _ => {}
        },
        Some("GeoProperty") => match obj.get("value") {
            Some(g) => {
                check_geojson(&format!("{name}.value"), g)?;
            }
            None if mode == Mode::Full => {
                return Err(NgsiError::bad(format!("{name}.value"), "is required"));
            }
            None => {}
        },
        Some("Relationship") => match obj.get("object") {
            Some(Value::String(o)) => check_uri(&format!("{name}.object"), o)?,
            Some(Value::Array(a)) if !a.is_empty() => {
                for (i, o) in a.iter().enumerate() {
                    match o.as_str() {
                        Some(s) => check_uri(&format!("{name}.object[{i}]"), s)?,
                        None => {
                            return Err(NgsiError::bad(
                                format!("{name}.object[{i}]"),
                                "must be a URI",
                            ));
                        }
                    }
                }
            }
            None if mode == Mode::Partial => {}
            _ => {
                return Err(NgsiError::bad(
                    format!("{name}.object"),
                    "is required and must be a URI",
                ));
            }
        },
        Some("LanguageProperty") => match obj.get("languageMap") {
            Some(Value::Object(m)) if m.values().all(|v| v.is_string() || v.is_array()) => {}
            None if mode == Mode::Partial => {}
            _ => {
                return Err(NgsiError::bad(
                    format!("{name}.languageMap"),
                    "is required and must map language tags to strings",
                ));
            }
        },
        _ => {}
    }
    for (k, val) in obj {
        match k.as_str() {
            "type" => {}
            "observedAt" => {
                check_time_text(&format!("{name}.observedAt"), val)?;
                out.insert(k.clone(), val.clone());
            }
            "unitCode" => {
                if !val.is_string() {
                    return Err(NgsiError::bad(
                        format!("{name}.unitCode"),
                        "must be a string",
                    ));
                }
                out.insert(k.clone(), val.clone());
            }
            "datasetId" => match val.as_str() {
                Some(s) => {
                    check_uri(&format!("{name}.datasetId"), s)?;
                    out.insert(k.clone(), val.clone());
                }
                None => return Err(NgsiError::bad(format!("{name}.datasetId"), "must be a URI")),
            },
            // System attributes are set by the server, not by clients.
            "createdAt" | "modifiedAt" | "instanceId" => {}
            "value" if val.is_null() && mode == Mode::Full => {
                return Err(NgsiError::bad(format!("{name}.value"), "must not be null"));
            }
            k if INSTANCE_KEYWORDS.contains(&k) => {
                out.insert(k.to_string(), val.clone());
            }
            sub => {
                check_term(&format!("{name}.{sub}"), sub)?;
                let parsed = parse_attribute(&format!("{name}.{sub}"), val, ctx, mode, now)?;
                out.insert(ctx.expand(sub), Value::Array(parsed));
            }
        }
    }
    Ok(out)
}

fn check_uri(field: &str, s: &str) -> NgsiResult<()> {
    let ok = s.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
    }) && !s.chars().any(|c| c.is_whitespace() || c.is_control());
    if ok {
        Ok(())
    } else {
        Err(NgsiError::bad(field, format!("'{s}' is not a URI")))
    }
}

/// Checks a GeoJSON geometry value and returns it parsed.
pub fn check_geojson(field: &str, v: &Value) -> NgsiResult<geojson::Geometry> {
    let g: geojson::Geometry = serde_json::from_value(v.clone())
        .map_err(|e| NgsiError::bad(field, format!("is not a GeoJSON geometry ({e})")))?;
    panorama_core::geo::check_geometry(&g).map_err(|e| NgsiError::bad(field, e))?;
    Ok(g)
}

/// Parses a whole entity (create, replace, batch items) into stored form.
/// `@context` must already have been taken out of `body`.
pub fn parse_entity(body: &Value, ctx: &Context, now: Timestamp) -> NgsiResult<Doc> {
    let Value::Object(obj) = body else {
        return Err(NgsiError::bad("", "an entity must be a JSON object"));
    };
    let id = match obj.get("id") {
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(NgsiError::bad("id", "must be a string")),
        None => return Err(NgsiError::bad("id", "is required")),
    };
    check_id("id", &id)?;
    let types = parse_types(obj.get("type"), ctx)?;
    let mut doc = Doc::new();
    doc.insert("id".into(), json!(id));
    doc.insert("type".into(), json!(types));
    if let Some(scope) = obj.get("scope") {
        doc.insert("scope".into(), scope.clone());
    }
    for (k, v) in obj {
        if ENTITY_KEYWORDS.contains(&k.as_str()) {
            continue;
        }
        check_term(k, k)?;
        let attr = parse_attribute(k, v, ctx, Mode::Full, now)?;
        doc.insert(ctx.expand(k), Value::Array(attr));
    }
    Ok(doc)
}

/// Parses a fragment of attributes (append, update, merge). `id` and `type`
/// may be present (and must then match when `expect_id` is given).
pub fn parse_fragment(body: &Value, ctx: &Context, mode: Mode, now: Timestamp) -> NgsiResult<Doc> {
    let Value::Object(obj) = body else {
        return Err(NgsiError::bad(
            "",
            "the body must be a JSON object of attributes",
        ));
    };
    let mut doc = Doc::new();
    for (k, v) in obj {
        if ENTITY_KEYWORDS.contains(&k.as_str()) {
            continue;
        }
        check_term(k, k)?;
        let attr = parse_attribute(k, v, ctx, mode, now)?;
        doc.insert(ctx.expand(k), Value::Array(attr));
    }
    Ok(doc)
}

/// Names of the attributes of a stored entity.
pub fn attribute_names(doc: &Doc) -> impl Iterator<Item = &String> {
    doc.keys()
        .filter(|k| !ENTITY_KEYWORDS.contains(&k.as_str()))
}

/// The expanded types of a stored entity.
pub fn types_of(doc: &Doc) -> Vec<String> {
    match doc.get("type") {
        Some(Value::Array(a)) => a
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Some(Value::String(s)) => vec![s.clone()],
        _ => Vec::new(),
    }
}

/// Sets created/modified times on the new instances of `attrs` (those
/// without `createdAt` take `now`; every one gets `modifiedAt = now`).
pub fn stamp(instances: &mut [Value], created: Option<&Value>, now: Timestamp) {
    let now_s = json!(crate::time_text(now));
    for inst in instances {
        if let Value::Object(o) = inst {
            o.insert(
                "createdAt".into(),
                created.cloned().unwrap_or_else(|| now_s.clone()),
            );
            o.insert("modifiedAt".into(), now_s.clone());
        }
    }
}

/// What a client asked for in a rendering.
#[derive(Debug, Clone, Default)]
pub struct Render {
    /// `options=keyValues` / `format=simplified`.
    pub key_values: bool,
    /// `options=sysAttrs`.
    pub sys_attrs: bool,
    /// Only these attributes (expanded), when given.
    pub attrs: Option<BTreeSet<String>>,
    /// `pick`: only these members (expanded; `id`/`type` as such).
    pub pick: Option<BTreeSet<String>>,
    /// `omit`: without these members.
    pub omit: Option<BTreeSet<String>>,
    /// `lang`: LanguageProperties as one Property in this language.
    pub lang: Option<String>,
}

/// Renders a stored entity for a client, compacted against `ctx`.
pub fn render(doc: &Doc, ctx: &Context, r: &Render) -> Value {
    let keep = |name: &str| {
        r.pick.as_ref().is_none_or(|p| p.contains(name))
            && r.omit.as_ref().is_none_or(|o| !o.contains(name))
    };
    let mut out = Map::new();
    if keep("id")
        && let Some(id) = doc.get("id")
    {
        out.insert("id".into(), id.clone());
    }
    if keep("type") {
        let types: Vec<String> = types_of(doc).iter().map(|t| ctx.compact(t)).collect();
        out.insert(
            "type".into(),
            if types.len() == 1 {
                json!(types[0])
            } else {
                json!(types)
            },
        );
    }
    if let Some(s) = doc.get("scope") {
        out.insert("scope".into(), s.clone());
    }
    if r.sys_attrs {
        for k in ["createdAt", "modifiedAt"] {
            if let Some(v) = doc.get(k) {
                out.insert(k.into(), v.clone());
            }
        }
    }
    for name in attribute_names(doc) {
        if r.attrs.as_ref().is_some_and(|a| !a.contains(name)) || !keep(name) {
            continue;
        }
        let Some(Value::Array(instances)) = doc.get(name) else {
            continue;
        };
        let rendered: Vec<Value> = instances
            .iter()
            .map(|i| render_instance(i, ctx, r))
            .collect();
        let v = if rendered.len() == 1 {
            rendered.into_iter().next().unwrap_or(Value::Null)
        } else {
            Value::Array(rendered)
        };
        out.insert(ctx.compact(name), v);
    }
    Value::Object(out)
}

fn render_instance(inst: &Value, ctx: &Context, r: &Render) -> Value {
    let Value::Object(o) = inst else {
        return inst.clone();
    };
    if let (Some(lang), Some("LanguageProperty")) = (&r.lang, o.get("type").and_then(Value::as_str))
        && let Some(Value::Object(map)) = o.get("languageMap")
    {
        let (tag, v) = map
            .get_key_value(lang.as_str())
            .or_else(|| map.get_key_value("@none"))
            .or_else(|| map.iter().next())
            .map(|(k, v)| (k.clone(), v.clone()))
            .unwrap_or_default();
        if r.key_values {
            return v;
        }
        let mut out = Map::new();
        out.insert("type".into(), json!("Property"));
        out.insert("value".into(), v);
        out.insert("lang".into(), json!(tag));
        for (k, val) in o {
            if matches!(k.as_str(), "observedAt" | "datasetId")
                || (r.sys_attrs && matches!(k.as_str(), "createdAt" | "modifiedAt"))
            {
                out.insert(k.clone(), val.clone());
            }
        }
        return Value::Object(out);
    }
    if r.key_values {
        let ty = o.get("type").and_then(Value::as_str).unwrap_or("Property");
        let key = match ty {
            "Relationship" => "object",
            "LanguageProperty" => "languageMap",
            "ListProperty" => "valueList",
            "ListRelationship" => "objectList",
            "JsonProperty" => "json",
            "VocabProperty" => "vocab",
            _ => "value",
        };
        let v = o.get(key).cloned().unwrap_or(Value::Null);
        return if ty == "LanguageProperty" {
            json!({ "languageMap": v })
        } else {
            v
        };
    }
    let mut out = Map::new();
    for (k, v) in o {
        match k.as_str() {
            "createdAt" | "modifiedAt" if !r.sys_attrs => {}
            k if INSTANCE_KEYWORDS.contains(&k) => {
                out.insert(k.to_string(), v.clone());
            }
            sub => {
                let rendered: Vec<Value> = match v {
                    Value::Array(a) => a.iter().map(|i| render_instance(i, ctx, r)).collect(),
                    other => vec![render_instance(other, ctx, r)],
                };
                let v = if rendered.len() == 1 {
                    rendered.into_iter().next().unwrap_or(Value::Null)
                } else {
                    Value::Array(rendered)
                };
                out.insert(ctx.compact(sub), v);
            }
        }
    }
    Value::Object(out)
}

/// The short name Panorama uses for an expanded type or attribute IRI:
/// the default-vocabulary term, or the IRI's last segment, made into an
/// identifier (letters, digits, `_`).
pub fn short_name(iri: &str) -> Option<String> {
    let tail = iri
        .strip_prefix(DEFAULT_VOCAB)
        .or_else(|| iri.strip_prefix(NGSI_LD))
        .unwrap_or_else(|| iri.rsplit(['/', '#', ':']).next().unwrap_or(iri));
    let s: String = tail
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect();
    check_identifier("name", &s).ok().map(|_| s)
}

/// Smart Data Models types (and a few common FIWARE ones) → Panorama domain.
const TYPE_DOMAINS: &[(&str, &str)] = &[
    ("AirQualityObserved", "environment"),
    ("AirQualitySensor", "environment"),
    ("NoiseLevelObserved", "environment"),
    ("WeatherObserved", "environment"),
    ("WaterQualityObserved", "water"),
    ("WaterObserved", "water"),
    ("FloodMonitoring", "disaster"),
    ("TrafficFlowObserved", "traffic"),
    ("ParkingSpot", "traffic"),
    ("OffStreetParking", "traffic"),
    ("OnStreetParking", "traffic"),
    ("Vehicle", "traffic"),
    ("RoadSegment", "traffic"),
    ("BikeHireDockingStation", "traffic"),
    ("Streetlight", "energy"),
    ("EnergyConsumption", "energy"),
    ("ElectricalMeasurement", "energy"),
    ("Building", "urban"),
    ("PointOfInterest", "tourism-culture"),
    ("Museum", "tourism-culture"),
    ("AgriParcel", "agriculture"),
    ("AgriCrop", "agriculture"),
    ("SoilMeasurement", "agriculture"),
    ("Hospital", "health"),
    ("School", "education"),
    ("Camera", "public-order"),
];

/// The Panorama domain an NGSI-LD type belongs to, when known.
pub fn domain_of_type(short_type: &str) -> Option<&'static str> {
    TYPE_DOMAINS
        .iter()
        .find(|(t, _)| *t == short_type)
        .map(|(_, d)| *d)
}

/// A Panorama observation value for an NGSI-LD Property value.
fn observable(v: &Value) -> Option<PValue> {
    match v {
        Value::Number(n) => n.as_f64().filter(|f| f.is_finite()).map(PValue::Number),
        Value::Bool(b) => Some(PValue::Boolean(*b)),
        Value::String(s) if s.len() <= panorama_core::value::MAX_TEXT_BYTES => {
            Some(PValue::Text(s.clone()))
        }
        _ => None,
    }
}

/// The catalogue entity and observations an NGSI-LD write becomes.
#[derive(Debug, Clone)]
pub struct Projection {
    /// The entity to upsert.
    pub entity: Entity,
    /// Observations of the attributes the request touched.
    pub observations: Vec<Observation>,
}

/// Projects a stored entity onto Panorama's catalogue: the entity (type,
/// name, location, observed attributes) and observations for the
/// attributes in `touched` (expanded names).
pub fn to_panorama(
    doc: &Doc,
    existing: Option<&Entity>,
    default_domain: &str,
    touched: &BTreeSet<String>,
    now: Timestamp,
) -> NgsiResult<Projection> {
    let id = doc
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let types = types_of(doc);
    let entity_type = types
        .first()
        .and_then(|t| short_name(t))
        .unwrap_or_else(|| "Thing".to_string());
    let domain = existing
        .map(|e| e.domain.clone())
        .or_else(|| domain_of_type(&entity_type).map(String::from))
        .unwrap_or_else(|| default_domain.to_string());
    let single = |name: &str| -> Option<&Map<String, Value>> {
        match doc.get(name) {
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(Value::as_object)
                .find(|o| !o.contains_key("datasetId")),
            _ => None,
        }
    };
    let name = single(&format!("{DEFAULT_VOCAB}name"))
        .and_then(|o| o.get("value"))
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(|s| s.chars().take(300).collect())
        .or_else(|| existing.map(|e| e.name.clone()))
        .unwrap_or_else(|| id.clone());
    let location = single(&location_iri())
        .and_then(|o| o.get("value"))
        .and_then(|g| serde_json::from_value::<geojson::Geometry>(g.clone()).ok())
        .filter(|g| panorama_core::geo::check_geometry(g).is_ok());
    let mut attributes = existing.map(|e| e.attributes.clone()).unwrap_or_default();
    let mut observations = Vec::new();
    for iri in attribute_names(doc) {
        let Some(short) = short_name(iri) else {
            continue;
        };
        if short == "name" || *iri == location_iri() {
            continue;
        }
        let Some(inst) = single(iri) else { continue };
        if inst.get("type").and_then(Value::as_str) != Some("Property") {
            continue;
        }
        let Some(value) = inst.get("value").and_then(observable) else {
            continue;
        };
        let vt = value.value_type();
        match attributes.get(&short) {
            Some(spec) if spec.value_type != vt => continue,
            Some(_) => {}
            None => {
                if attributes.len() >= panorama_core::entity::MAX_ATTRIBUTES {
                    continue;
                }
                attributes.insert(
                    short.clone(),
                    AttributeSpec {
                        value_type: vt,
                        unit: inst
                            .get("unitCode")
                            .and_then(Value::as_str)
                            .map(|u| u.chars().take(32).collect()),
                    },
                );
            }
        }
        if touched.contains(iri) {
            let time = match inst.get("observedAt") {
                Some(t) => check_time_text(&format!("{}.observedAt", short), t)?,
                None => now,
            };
            panorama_core::observation::check_time(&format!("{short}.observedAt"), time, now)
                .map_err(|e| NgsiError::bad(e.field, e.reason))?;
            observations.push(Observation {
                entity: id.clone(),
                attribute: short,
                time,
                value,
            });
        }
    }
    let entity = Entity {
        id: id.clone(),
        entity_type,
        name,
        domain,
        admin_unit: existing.and_then(|e| e.admin_unit.clone()),
        location: location.or_else(|| existing.and_then(|e| e.location.clone())),
        attributes,
        properties: existing.map(|e| e.properties.clone()).unwrap_or_default(),
        source: None,
        updated_at: None,
    };
    Ok(Projection {
        entity,
        observations,
    })
}

/// An NGSI-LD view of a catalogue entity (created through `/api/v1` or a
/// connector): type, name, location as GeoProperty, static properties and
/// the latest value of each attribute with observedAt and unitCode.
pub fn from_panorama(e: &Entity, latest: &[LatestValue]) -> Doc {
    let mut doc = Doc::new();
    doc.insert("id".into(), json!(e.id));
    doc.insert(
        "type".into(),
        json!([format!("{DEFAULT_VOCAB}{}", e.entity_type)]),
    );
    if let Some(t) = e.updated_at {
        let s = crate::time_text(t);
        doc.insert("createdAt".into(), json!(s));
        doc.insert("modifiedAt".into(), json!(s));
    }
    doc.insert(
        format!("{DEFAULT_VOCAB}name"),
        json!([{"type": "Property", "value": e.name}]),
    );
    if let Some(loc) = &e.location
        && let Ok(v) = serde_json::to_value(loc)
    {
        doc.insert(location_iri(), json!([{"type": "GeoProperty", "value": v}]));
    }
    for (k, v) in &e.properties {
        if v.is_null() {
            continue;
        }
        doc.entry(format!("{DEFAULT_VOCAB}{k}"))
            .or_insert_with(|| json!([{"type": "Property", "value": v}]));
    }
    for l in latest.iter().filter(|l| l.entity == e.id) {
        let mut inst = json!({
            "type": "Property",
            "value": serde_json::to_value(&l.value).unwrap_or(Value::Null),
            "observedAt": crate::time_text(l.time),
        });
        if let Some(unit) = e.attributes.get(&l.attribute).and_then(|s| s.unit.as_ref())
            && let Some(o) = inst.as_object_mut()
        {
            o.insert("unitCode".into(), json!(unit));
        }
        doc.insert(format!("{DEFAULT_VOCAB}{}", l.attribute), json!([inst]));
    }
    doc
}

/// Puts newer catalogue values (written by other adapters, e.g. MQTT) over
/// the stored document's single-instance Properties. Values no newer than
/// the instance's `observedAt` (or, without one, the document's last write,
/// `written`) are its own and change nothing.
pub fn overlay_latest(doc: &mut Doc, latest: &[LatestValue], written: Timestamp) {
    for l in latest {
        let key = format!("{DEFAULT_VOCAB}{}", l.attribute);
        let Some(Value::Array(instances)) = doc.get_mut(&key) else {
            continue;
        };
        let Some(Value::Object(inst)) = instances.iter_mut().find(|i| i.get("datasetId").is_none())
        else {
            continue;
        };
        if inst.get("type").and_then(Value::as_str) != Some("Property") {
            continue;
        }
        let observed = inst
            .get("observedAt")
            .and_then(Value::as_str)
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.to_utc());
        // An instance's own value was recorded at its observedAt, or at
        // the write when it has none.
        let newest_own = observed.unwrap_or(written);
        if l.time > newest_own {
            inst.insert(
                "value".into(),
                serde_json::to_value(&l.value).unwrap_or(Value::Null),
            );
            inst.insert("observedAt".into(), json!(crate::time_text(l.time)));
        }
    }
}

/// The Panorama value type name of a stored attribute's first instance
/// (for `/attributes` details): its NGSI-LD attribute type.
pub fn attribute_type(instances: &Value) -> Option<String> {
    instances
        .as_array()?
        .iter()
        .filter_map(|i| i.get("type").and_then(Value::as_str))
        .next()
        .map(String::from)
}

/// Whether an observation type is one Panorama keeps as a series.
pub fn is_series_type(vt: ValueType) -> bool {
    !matches!(vt, ValueType::Json)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Timestamp {
        chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc()
    }

    #[test]
    fn only_values_newer_than_the_document_are_put_over_it() {
        let key = format!("{DEFAULT_VOCAB}speed");
        let mut doc = Doc::new();
        doc.insert(key.clone(), json!([{"type": "Property", "value": 56}]));
        let latest = |time: &str, v: f64| LatestValue {
            entity: "urn:ngsi-ld:V:1".into(),
            attribute: "speed".into(),
            time: t(time),
            value: PValue::Number(v),
        };
        let written = t("2026-01-01T00:00:00Z");
        overlay_latest(&mut doc, &[latest("2026-01-01T00:00:00Z", 56.0)], written);
        assert_eq!(doc[&key], json!([{"type": "Property", "value": 56}]));
        overlay_latest(&mut doc, &[latest("2026-01-01T00:00:01Z", 60.0)], written);
        assert_eq!(
            doc[&key],
            json!([{"type": "Property", "value": 60.0, "observedAt": "2026-01-01T00:00:01Z"}])
        );
    }

    #[test]
    fn short_names_are_identifiers() {
        assert_eq!(
            short_name(&format!("{DEFAULT_VOCAB}speed")).as_deref(),
            Some("speed")
        );
        assert_eq!(
            short_name("https://ontology.example/air-quality").as_deref(),
            Some("air_quality")
        );
        assert_eq!(short_name("https://ontology.example/2x"), None);
    }
}
