//! From a message (topic + payload) to observations: pure functions shared by
//! every connector that receives JSON (MQTT messages, polled HTTP records).
//!
//! Three formats:
//! - `smart_data_models`: a Smart Data Models key-values object (or an array
//!   of them) with `id`, `type` and attributes; every number, text or
//!   boolean attribute becomes an observation at `dateObserved`.
//! - `sensor_community`: the Sensor.Community (luftdaten) JSON of a device
//!   (`esp8266id` and `sensordatavalues`) or of its data API (`sensor.id`,
//!   `timestamp`, `location`).
//! - `json`: a topic pattern (`bd/aq/{entity}/{attribute}`, with `+` and
//!   `#`) and JSON paths (`$.data.pm25`) saying where the entity, attribute,
//!   time and value are.
//!
//! `auto` (the default) tells the first two apart by their shape. Each
//! error names the field it is about and why it was refused.

use chrono::{DateTime, NaiveDateTime, Utc};
use panorama_core::entity::{check_entity_id, check_identifier};
use panorama_core::observation::check_time;
use panorama_core::{FieldError, Invalid, Observation, Timestamp, Value};
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// How the messages of a source become observations.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(tag = "format", rename_all = "snake_case", deny_unknown_fields)]
pub enum Mapping {
    /// Smart Data Models key-values, or Sensor.Community, told apart by shape.
    #[default]
    Auto,
    /// Smart Data Models key-values (`id`, `type`, attributes).
    SmartDataModels,
    /// Sensor.Community (luftdaten) JSON.
    SensorCommunity {
        /// Entity ids are this prefix followed by the sensor id
        /// (default `urn:ngsi-ld:AirQualitySensor:sc-`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        entity_prefix: Option<String>,
    },
    /// Topic segments and JSON paths.
    Json(JsonMapping),
}

/// Where entity, attribute, time and value are in a topic and a JSON payload.
///
/// Templates (`entity`, `attribute`) put text together from topic captures
/// (`{name}`) and payload fields (`{$.path}`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonMapping {
    /// Topic pattern: `/`-separated segments, `{name}` captures one segment,
    /// `+` matches one, `#` (last) matches the rest. A message whose topic
    /// does not match is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    /// Entity id template, e.g. `urn:ngsi-ld:AirQualitySensor:{entity}`.
    pub entity: String,
    /// Attribute name template, for one observation per message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attribute: Option<String>,
    /// JSON path of the value, with `attribute` (default `$`: the payload).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// Attribute name → JSON path of its value, for several observations
    /// per message (instead of `attribute` and `value`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<BTreeMap<String, String>>,
    /// JSON path of the time (RFC 3339 text, or seconds since 1970); the
    /// receive time when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<String>,
    /// `s` (default) or `ms`, when the time is a number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_unit: Option<TimeUnit>,
}

/// The unit of a numeric time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub enum TimeUnit {
    /// Seconds since 1970.
    #[serde(rename = "s")]
    Seconds,
    /// Milliseconds since 1970.
    #[serde(rename = "ms")]
    Millis,
}

/// What a message says about the entity it observes, so a connector may
/// create it when it is not yet known.
#[derive(Debug, Clone, PartialEq)]
pub struct EntityHint {
    /// Entity id.
    pub id: String,
    /// Entity type (from the payload, or the URN's type segment).
    pub entity_type: String,
    /// A display name, when the payload has one.
    pub name: Option<String>,
    /// GeoJSON location, when the payload has one.
    pub location: Option<geojson::Geometry>,
}

/// What one message maps to.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Mapped {
    /// Observations, validated in shape (not yet against the store).
    pub observations: Vec<Observation>,
    /// The entities observed, one per entity id.
    pub entities: Vec<EntityHint>,
}

/// The payload and where it came from.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    /// MQTT topic (or URL path for polled sources).
    pub topic: &'a str,
    /// Raw payload.
    pub payload: &'a [u8],
    /// When it was received: the time of observations that carry none.
    pub received: Timestamp,
}

impl Mapping {
    /// Checks the mapping's patterns, templates and paths.
    pub fn validate(&self) -> Result<(), Invalid> {
        match self {
            Self::Auto | Self::SmartDataModels => Ok(()),
            Self::SensorCommunity { entity_prefix } => match entity_prefix {
                Some(p) => {
                    check_entity_id("entity_prefix", &format!("{p}x")).map_err(Invalid::from)
                }
                None => Ok(()),
            },
            Self::Json(m) => m.validate(),
        }
    }

    /// Maps one message. Refuses it whole (naming each bad field) when any
    /// part cannot be mapped: half a message is never stored.
    pub fn map(&self, msg: Message<'_>) -> Result<Mapped, Invalid> {
        let payload = parse_payload(msg.payload)?;
        self.map_json(msg.topic, &payload, msg.received)
    }

    /// Maps one already parsed record (a polled source's array element or
    /// CSV row); `topic` is matched by a `json` mapping's topic pattern.
    pub fn map_json(
        &self,
        topic: &str,
        payload: &Json,
        received: Timestamp,
    ) -> Result<Mapped, Invalid> {
        match self {
            Self::Auto => {
                if is_sensor_community(payload) {
                    sensor_community(payload, None, received)
                } else {
                    smart_data_models(payload, received)
                }
            }
            Self::SmartDataModels => smart_data_models(payload, received),
            Self::SensorCommunity { entity_prefix } => {
                sensor_community(payload, entity_prefix.as_deref(), received)
            }
            Self::Json(m) => m.map(topic, payload, received),
        }
    }
}

/// Largest payload mapped; larger messages are refused, not parsed.
pub const MAX_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;

fn parse_payload(bytes: &[u8]) -> Result<Json, Invalid> {
    if bytes.len() > MAX_PAYLOAD_BYTES {
        return Err(Invalid::one(
            "payload",
            format!(
                "is {} bytes, more than the 4 MiB a message may carry",
                bytes.len()
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Invalid::one("payload", "is empty"));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Invalid::one("payload", format!("is not UTF-8 ({e})")))?;
    serde_json::from_str(text).map_err(|e| Invalid::one("payload", format!("is not JSON ({e})")))
}

/// Parses a time: RFC 3339, or (as Smart Data Models examples often have)
/// a date-time without offset, read as UTC.
fn parse_time(field: &str, s: &str, now: Timestamp) -> Result<Timestamp, FieldError> {
    let t = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(|t| t.and_utc())
            .ok_or_else(|| {
                FieldError::new(
                    field,
                    format!("'{}' is not an RFC 3339 time", truncate(s, 64)),
                )
            })?,
    };
    check_time(field, t, now)?;
    Ok(t)
}

fn time_from_number(
    field: &str,
    n: f64,
    unit: TimeUnit,
    now: Timestamp,
) -> Result<Timestamp, FieldError> {
    let ms = match unit {
        TimeUnit::Seconds => n * 1000.0,
        TimeUnit::Millis => n,
    };
    if !ms.is_finite() || ms.abs() > 8.0e15 {
        return Err(FieldError::new(field, "is not a plausible time"));
    }
    #[allow(clippy::cast_possible_truncation)]
    let t = DateTime::from_timestamp_millis(ms.round() as i64)
        .ok_or_else(|| FieldError::new(field, "is not a plausible time"))?;
    check_time(field, t, now)?;
    Ok(t)
}

fn value_of(field: &str, v: &Json) -> Result<Value, FieldError> {
    Value::from_json(field, v.clone())
}

/// The type segment of `urn:ngsi-ld:<Type>:<id>`, when it is an identifier.
fn type_of_urn(id: &str) -> Option<String> {
    let mut parts = id.splitn(4, ':');
    let (_, _, ty) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?;
    check_identifier("", ty).ok().map(|()| ty.to_string())
}

/// Keys of a Smart Data Models entity that describe it rather than observe it.
const SDM_METADATA: &[&str] = &[
    "@context",
    "id",
    "type",
    "name",
    "alternateName",
    "description",
    "location",
    "address",
    "areaServed",
    "dataProvider",
    "source",
    "seeAlso",
    "owner",
    "dateCreated",
    "dateModified",
    "dateObserved",
    "dateObservedFrom",
    "dateObservedTo",
    "observationDateTime",
];

/// Where Smart Data Models put the time of an observation, in order of preference.
const SDM_TIME_KEYS: &[&str] = &["dateObserved", "observationDateTime", "dateModified"];

/// Maps Smart Data Models key-values: one object, or an array of them.
pub fn smart_data_models(payload: &Json, received: Timestamp) -> Result<Mapped, Invalid> {
    match payload {
        Json::Object(_) => sdm_entity(payload, received),
        Json::Array(items) if !items.is_empty() => {
            let mut out = Mapped::default();
            let mut errs = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match sdm_entity(item, received) {
                    Ok(m) => merge(&mut out, m),
                    Err(e) => errs.extend(e.under(&format!("[{i}]")).0),
                }
            }
            if errs.is_empty() {
                Ok(out)
            } else {
                Err(Invalid(errs))
            }
        }
        Json::Array(_) => Err(Invalid::one("payload", "is an empty array")),
        _ => Err(Invalid::one(
            "payload",
            "must be a Smart Data Models object with id and type",
        )),
    }
}

fn merge(into: &mut Mapped, m: Mapped) {
    into.observations.extend(m.observations);
    for e in m.entities {
        if !into.entities.iter().any(|x| x.id == e.id) {
            into.entities.push(e);
        }
    }
}

fn sdm_entity(v: &Json, received: Timestamp) -> Result<Mapped, Invalid> {
    let Some(obj) = v.as_object() else {
        return Err(Invalid::one("", "must be a JSON object"));
    };
    let mut errs = Vec::new();
    let ty = match obj.get("type") {
        Some(Json::String(t)) => match check_identifier("type", t) {
            Ok(()) => Some(t.clone()),
            Err(e) => {
                errs.push(e);
                None
            }
        },
        Some(_) => {
            errs.push(FieldError::new("type", "must be a string"));
            None
        }
        None => {
            errs.push(FieldError::new("type", "is required"));
            None
        }
    };
    let id = match obj.get("id") {
        Some(Json::String(s)) if s.starts_with("urn:") => match check_entity_id("id", s) {
            Ok(()) => Some(s.clone()),
            Err(e) => {
                errs.push(e);
                None
            }
        },
        // Plain ids (as in NGSI v2) become NGSI-LD URNs of the entity's type.
        Some(Json::String(s)) if !s.is_empty() => ty.as_ref().and_then(|t| {
            let urn = format!("urn:ngsi-ld:{t}:{s}");
            match check_entity_id("id", &urn) {
                Ok(()) => Some(urn),
                Err(e) => {
                    errs.push(e);
                    None
                }
            }
        }),
        Some(Json::String(_)) => {
            errs.push(FieldError::new("id", "must not be empty"));
            None
        }
        Some(_) => {
            errs.push(FieldError::new("id", "must be a string"));
            None
        }
        None => {
            errs.push(FieldError::new("id", "is required"));
            None
        }
    };
    let time = match SDM_TIME_KEYS
        .iter()
        .find_map(|k| obj.get(*k).map(|t| (*k, t)))
    {
        None => Some(received),
        Some((k, Json::String(s))) => match parse_time(k, s, received) {
            Ok(t) => Some(t),
            Err(e) => {
                errs.push(e);
                None
            }
        },
        Some((k, _)) => {
            errs.push(FieldError::new(k, "must be an RFC 3339 time string"));
            None
        }
    };
    let mut values = Vec::new();
    for (key, val) in obj {
        if SDM_METADATA.contains(&key.as_str()) || key.starts_with("ref") {
            continue;
        }
        // Objects and arrays are structure (addresses, lists), not readings.
        if !matches!(val, Json::Number(_) | Json::String(_) | Json::Bool(_)) {
            continue;
        }
        if let Err(e) = check_identifier(key, key) {
            errs.push(e);
            continue;
        }
        match value_of(key, val) {
            Ok(v) => values.push((key.clone(), v)),
            Err(e) => errs.push(e),
        }
    }
    if values.is_empty() && errs.is_empty() {
        errs.push(FieldError::new(
            "",
            "has no number, text or boolean attribute to observe",
        ));
    }
    let (Some(id), Some(ty), Some(time), true) = (id, ty, time, errs.is_empty()) else {
        return Err(Invalid(errs));
    };
    let observations = values
        .into_iter()
        .map(|(attribute, value)| Observation {
            entity: id.clone(),
            attribute,
            time,
            value,
        })
        .collect();
    let location = obj
        .get("location")
        .and_then(|l| serde_json::from_value::<geojson::Geometry>(l.clone()).ok())
        .filter(|g| panorama_core::geo::check_geometry(g).is_ok());
    Ok(Mapped {
        observations,
        entities: vec![EntityHint {
            id,
            entity_type: ty,
            name: obj.get("name").and_then(Json::as_str).map(String::from),
            location,
        }],
    })
}

/// Whether a payload looks like Sensor.Community JSON.
fn is_sensor_community(v: &Json) -> bool {
    v.get("sensordatavalues").is_some()
}

/// The default entity id prefix of Sensor.Community devices.
pub const SENSOR_COMMUNITY_PREFIX: &str = "urn:ngsi-ld:AirQualitySensor:sc-";

/// Sensor.Community value types and the attribute names they land in.
/// Other types keep their name without the sensor model prefix
/// (`BME280_pressure` → `pressure`).
const SC_NAMES: &[(&str, &str)] = &[("P0", "pm1"), ("P1", "pm10"), ("P2", "pm25")];

/// Device diagnostics in the firmware's payload, not observations of air.
const SC_DIAGNOSTICS: &[&str] = &["samples", "min_micro", "max_micro", "interval", "signal"];

fn sc_attribute(value_type: &str) -> String {
    // `SDS_P1`, `BME280_temperature`: the part before `_` names the sensor model.
    let base = match value_type.split_once('_') {
        Some((model, rest))
            if !rest.is_empty()
                && model
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()) =>
        {
            rest
        }
        _ => value_type,
    };
    SC_NAMES
        .iter()
        .find(|(k, _)| *k == base)
        .map_or_else(|| base.to_string(), |(_, v)| (*v).to_string())
}

/// Maps Sensor.Community JSON: a device's push (`esp8266id`,
/// `sensordatavalues`) or a record of the data API (`sensor.id`,
/// `timestamp`, `location`, `sensordatavalues`); or an array of records.
pub fn sensor_community(
    payload: &Json,
    prefix: Option<&str>,
    received: Timestamp,
) -> Result<Mapped, Invalid> {
    match payload {
        Json::Array(items) if !items.is_empty() => {
            let mut out = Mapped::default();
            let mut errs = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match sc_record(item, prefix, received) {
                    Ok(m) => merge(&mut out, m),
                    Err(e) => errs.extend(e.under(&format!("[{i}]")).0),
                }
            }
            if errs.is_empty() {
                Ok(out)
            } else {
                Err(Invalid(errs))
            }
        }
        _ => sc_record(payload, prefix, received),
    }
}

fn id_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) if !s.is_empty() => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn sc_record(v: &Json, prefix: Option<&str>, received: Timestamp) -> Result<Mapped, Invalid> {
    let Some(obj) = v.as_object() else {
        return Err(Invalid::one(
            "payload",
            "must be a Sensor.Community object with sensordatavalues",
        ));
    };
    let mut errs = Vec::new();
    let sensor = match (obj.get("esp8266id"), v.pointer("/sensor/id")) {
        (Some(x), _) => id_text(x).or_else(|| {
            errs.push(FieldError::new(
                "esp8266id",
                "must be a non-empty string or a number",
            ));
            None
        }),
        (None, Some(x)) => id_text(x).or_else(|| {
            errs.push(FieldError::new(
                "sensor.id",
                "must be a non-empty string or a number",
            ));
            None
        }),
        (None, None) => {
            errs.push(FieldError::new(
                "esp8266id",
                "is required (or sensor.id): it names the sensor",
            ));
            None
        }
    };
    let id = sensor.and_then(|s| {
        let id = format!("{}{s}", prefix.unwrap_or(SENSOR_COMMUNITY_PREFIX));
        check_entity_id("esp8266id", &id)
            .map_err(|e| errs.push(e))
            .ok()
            .map(|()| id)
    });
    let time = match obj.get("timestamp") {
        None | Some(Json::Null) => Some(received),
        Some(Json::String(s)) => parse_time("timestamp", s, received)
            .map_err(|e| errs.push(e))
            .ok(),
        Some(_) => {
            errs.push(FieldError::new("timestamp", "must be a time string"));
            None
        }
    };
    let mut values: Vec<(String, Value)> = Vec::new();
    match obj.get("sensordatavalues") {
        Some(Json::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                let field = format!("sensordatavalues[{i}]");
                let Some(ty) = item.get("value_type").and_then(Json::as_str) else {
                    errs.push(FieldError::new(
                        format!("{field}.value_type"),
                        "is required and must be a string",
                    ));
                    continue;
                };
                if SC_DIAGNOSTICS.contains(&ty) {
                    continue;
                }
                let attr = sc_attribute(ty);
                if let Err(e) = check_identifier(&format!("{field}.value_type"), &attr) {
                    errs.push(e);
                    continue;
                }
                // The firmware sends numbers as text ("57.30").
                let value = match item.get("value") {
                    Some(Json::String(s)) => match s.trim().parse::<f64>() {
                        Ok(n) if n.is_finite() => Value::Number(n),
                        _ => {
                            errs.push(FieldError::new(
                                format!("{field}.value"),
                                format!("'{}' is not a number", truncate(s, 32)),
                            ));
                            continue;
                        }
                    },
                    Some(x @ Json::Number(_)) => match value_of(&format!("{field}.value"), x) {
                        Ok(v) => v,
                        Err(e) => {
                            errs.push(e);
                            continue;
                        }
                    },
                    Some(_) => {
                        errs.push(FieldError::new(
                            format!("{field}.value"),
                            "must be a number or a numeric string",
                        ));
                        continue;
                    }
                    None => {
                        errs.push(FieldError::new(format!("{field}.value"), "is required"));
                        continue;
                    }
                };
                if values.iter().any(|(a, _)| *a == attr) {
                    errs.push(FieldError::new(
                        format!("{field}.value_type"),
                        format!("'{attr}' appears twice"),
                    ));
                    continue;
                }
                values.push((attr, value));
            }
        }
        Some(_) => errs.push(FieldError::new("sensordatavalues", "must be an array")),
        None => errs.push(FieldError::new("sensordatavalues", "is required")),
    }
    if values.is_empty() && errs.is_empty() {
        errs.push(FieldError::new(
            "sensordatavalues",
            "has no value to observe",
        ));
    }
    let (Some(id), Some(time), true) = (id, time, errs.is_empty()) else {
        return Err(Invalid(errs));
    };
    let location = sc_location(obj.get("location"));
    Ok(Mapped {
        observations: values
            .into_iter()
            .map(|(attribute, value)| Observation {
                entity: id.clone(),
                attribute,
                time,
                value,
            })
            .collect(),
        entities: vec![EntityHint {
            entity_type: type_of_urn(&id).unwrap_or_else(|| "AirQualitySensor".into()),
            id,
            name: None,
            location,
        }],
    })
}

/// The data API's `location: {latitude, longitude}` (numbers as text).
fn sc_location(v: Option<&Json>) -> Option<geojson::Geometry> {
    let num = |k: &str| -> Option<f64> {
        match v?.get(k)? {
            Json::String(s) => s.trim().parse().ok(),
            Json::Number(n) => n.as_f64(),
            _ => None,
        }
    };
    let (lat, lon) = (num("latitude")?, num("longitude")?);
    let g: geojson::Geometry = serde_json::from_value(serde_json::json!({
        "type": "Point",
        "coordinates": [lon, lat]
    }))
    .ok()?;
    panorama_core::geo::check_geometry(&g).ok().map(|_| g)
}

// --- topic patterns -------------------------------------------------------

/// One segment of a topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `+`
    Any,
    /// `{name}`
    Capture(String),
    /// `#`, last
    Rest,
}

/// A parsed topic pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPattern(Vec<Segment>);

impl TopicPattern {
    /// Parses `bd/aq/{entity}/{attribute}`, `bd/+/#` and the like.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.is_empty() {
            return Err("must not be empty".into());
        }
        let parts: Vec<&str> = s.split('/').collect();
        let mut segs = Vec::with_capacity(parts.len());
        for (i, p) in parts.iter().enumerate() {
            let seg = match *p {
                "+" => Segment::Any,
                "#" if i + 1 == parts.len() => Segment::Rest,
                "#" => return Err("'#' may only be the last segment".into()),
                p if p.starts_with('{') && p.ends_with('}') && p.len() > 2 => {
                    let name = &p[1..p.len() - 1];
                    if check_identifier("", name).is_err() {
                        return Err(format!(
                            "'{{{name}}}': a capture name is a letter, then letters, digits or '_'"
                        ));
                    }
                    if segs.contains(&Segment::Capture(name.to_string())) {
                        return Err(format!("'{{{name}}}' is captured twice"));
                    }
                    Segment::Capture(name.to_string())
                }
                p if p.contains(['+', '#', '{', '}']) => {
                    return Err(format!(
                        "segment '{p}': '+', '#' and '{{name}}' must stand alone in a segment"
                    ));
                }
                p => Segment::Literal(p.to_string()),
            };
            segs.push(seg);
        }
        Ok(Self(segs))
    }

    /// The names captured by the pattern.
    pub fn captures(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|s| match s {
            Segment::Capture(n) => Some(n.as_str()),
            _ => None,
        })
    }

    /// Matches a topic; returns the captured segments by name.
    pub fn matches<'t>(&self, topic: &'t str) -> Option<BTreeMap<&str, &'t str>> {
        let mut caps = BTreeMap::new();
        let mut parts = topic.split('/');
        for seg in &self.0 {
            match seg {
                Segment::Rest => return Some(caps),
                Segment::Literal(l) => {
                    if parts.next()? != l {
                        return None;
                    }
                }
                Segment::Any => {
                    parts.next()?;
                }
                Segment::Capture(n) => {
                    let p = parts.next()?;
                    if p.is_empty() {
                        return None;
                    }
                    caps.insert(n.as_str(), p);
                }
            }
        }
        parts.next().is_none().then_some(caps)
    }
}

/// Checks an MQTT subscription filter (`+` and `#` wildcards).
pub fn check_topic_filter(s: &str) -> Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    if s.len() > 65_535 {
        return Err("is longer than MQTT allows".into());
    }
    let parts: Vec<&str> = s.split('/').collect();
    for (i, p) in parts.iter().enumerate() {
        if *p == "#" && i + 1 != parts.len() {
            return Err("'#' may only be the last level".into());
        }
        if p.len() > 1 && p.contains(['+', '#']) {
            return Err(format!(
                "level '{p}': '+' and '#' must stand alone in a level"
            ));
        }
    }
    Ok(())
}

// --- JSON paths -----------------------------------------------------------

/// One step of a JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

/// A JSON path: `$`, `$.a.b`, `$.a[0]`, `$['a key']`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<Step>);

impl JsonPath {
    /// Parses a path.
    pub fn parse(s: &str) -> Result<Self, String> {
        let rest = s
            .strip_prefix('$')
            .ok_or_else(|| format!("'{s}' must start with '$'"))?;
        let mut steps = Vec::new();
        let mut chars = rest.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '.' => {
                    let mut key = String::new();
                    while let Some(&(_, c)) = chars.peek() {
                        if c == '.' || c == '[' {
                            break;
                        }
                        key.push(c);
                        chars.next();
                    }
                    if key.is_empty() {
                        return Err(format!("'{s}': empty key after '.' at {}", i + 1));
                    }
                    steps.push(Step::Key(key));
                }
                '[' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    let quoted = matches!(chars.peek(), Some((_, '\'' | '"')));
                    let quote = if quoted {
                        chars.next().map(|(_, q)| q)
                    } else {
                        None
                    };
                    for (_, c) in chars.by_ref() {
                        if let Some(q) = quote {
                            if c == q {
                                closed = true;
                                break;
                            }
                        } else if c == ']' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return Err(format!("'{s}': unclosed '['"));
                    }
                    if quote.is_some() {
                        if chars.next().map(|(_, c)| c) != Some(']') {
                            return Err(format!("'{s}': expected ']' after the quoted key"));
                        }
                        steps.push(Step::Key(inner));
                    } else {
                        let n = inner
                            .trim()
                            .parse::<usize>()
                            .map_err(|_| format!("'{s}': '[{inner}]' is not an array index"))?;
                        steps.push(Step::Index(n));
                    }
                }
                c => return Err(format!("'{s}': unexpected '{c}' at {}", i + 1)),
            }
        }
        Ok(Self(steps))
    }

    /// The key of the first step, when it is a key.
    pub fn first_key(&self) -> Option<&str> {
        match self.0.first() {
            Some(Step::Key(k)) => Some(k),
            _ => None,
        }
    }

    /// The value at this path, if any.
    pub fn get<'v>(&self, v: &'v Json) -> Option<&'v Json> {
        self.0.iter().try_fold(v, |v, step| match step {
            Step::Key(k) => v.get(k.as_str()),
            Step::Index(i) => v.get(*i),
        })
    }
}

impl std::fmt::Display for JsonPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("$")?;
        for s in &self.0 {
            match s {
                Step::Key(k) if k.chars().all(|c| c.is_alphanumeric() || c == '_') => {
                    write!(f, ".{k}")?;
                }
                Step::Key(k) => write!(f, "['{k}']")?,
                Step::Index(i) => write!(f, "[{i}]")?,
            }
        }
        Ok(())
    }
}

// --- templates ------------------------------------------------------------

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Capture(String),
    Path(JsonPath),
}

/// Text built from topic captures and payload fields:
/// `urn:ngsi-ld:AirQualitySensor:{entity}`, `{$.id}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(Vec<Piece>);

impl Template {
    /// Parses a template.
    pub fn parse(s: &str) -> Result<Self, String> {
        let mut pieces = Vec::new();
        let mut rest = s;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("'{s}': unclosed '{{'"))?;
            let inner = &after[..close];
            if inner.starts_with('$') {
                pieces.push(Piece::Path(JsonPath::parse(inner)?));
            } else if check_identifier("", inner).is_ok() {
                pieces.push(Piece::Capture(inner.to_string()));
            } else {
                return Err(format!(
                    "'{s}': '{{{inner}}}' is neither a topic capture nor a JSON path"
                ));
            }
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("'{s}': '}}' without '{{'"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_string()));
        }
        if pieces.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self(pieces))
    }

    fn captures(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            Piece::Capture(c) => Some(c.as_str()),
            _ => None,
        })
    }

    /// Fills the template; the error says which piece is missing.
    fn render(&self, caps: &BTreeMap<&str, &str>, payload: &Json) -> Result<String, String> {
        let mut out = String::new();
        for p in &self.0 {
            match p {
                Piece::Text(t) => out.push_str(t),
                Piece::Capture(c) => out.push_str(
                    caps.get(c.as_str())
                        .ok_or_else(|| format!("the topic has no '{{{c}}}'"))?,
                ),
                Piece::Path(path) => match path.get(payload) {
                    Some(Json::String(s)) => out.push_str(s),
                    Some(Json::Number(n)) => out.push_str(&n.to_string()),
                    Some(_) => return Err(format!("{path} must be a string or a number")),
                    None => return Err(format!("{path} is missing from the payload")),
                },
            }
        }
        Ok(out)
    }
}

// --- the `json` mapping ---------------------------------------------------

/// A [`JsonMapping`] with its patterns parsed.
struct Compiled {
    topic: Option<TopicPattern>,
    entity: Template,
    values: Vec<(Template, JsonPath)>,
    time: Option<JsonPath>,
}

impl JsonMapping {
    fn compile(&self) -> Result<Compiled, Invalid> {
        let mut errs = Vec::new();
        let mut topic_failed = false;
        let topic = match self.topic.as_deref().map(TopicPattern::parse).transpose() {
            Ok(t) => t,
            Err(e) => {
                errs.push(FieldError::new("topic", e));
                topic_failed = true;
                None
            }
        };
        let pattern = topic.as_ref();
        let template = |errs: &mut Vec<FieldError>, field: &str, s: &str| match Template::parse(s) {
            Ok(t) => {
                for c in t.captures() {
                    let known = pattern.is_some_and(|p| p.captures().any(|x| x == c));
                    if !known && !topic_failed {
                        errs.push(FieldError::new(
                            field,
                            format!("'{{{c}}}' is not captured by the topic pattern"),
                        ));
                    }
                }
                Some(t)
            }
            Err(e) => {
                errs.push(FieldError::new(field, e));
                None
            }
        };
        let entity = template(&mut errs, "entity", &self.entity);
        let mut values = Vec::new();
        match (&self.attribute, &self.values) {
            (Some(a), None) => {
                let attr = template(&mut errs, "attribute", a);
                let path = self.value.as_deref().unwrap_or("$");
                match JsonPath::parse(path) {
                    Ok(p) => values.extend(attr.map(|a| (a, p))),
                    Err(e) => errs.push(FieldError::new("value", e)),
                }
            }
            (None, Some(map)) if !map.is_empty() => {
                if self.value.is_some() {
                    errs.push(FieldError::new(
                        "value",
                        "goes with attribute; with values, each attribute names its path",
                    ));
                }
                for (name, path) in map {
                    let field = format!("values.{name}");
                    let attr = template(&mut errs, &field, name);
                    match JsonPath::parse(path) {
                        Ok(p) => values.extend(attr.map(|a| (a, p))),
                        Err(e) => errs.push(FieldError::new(field, e)),
                    }
                }
            }
            (None, Some(_)) => errs.push(FieldError::new("values", "must not be empty")),
            (Some(_), Some(_)) => errs.push(FieldError::new(
                "attribute",
                "give either attribute (with value) or values, not both",
            )),
            (None, None) => errs.push(FieldError::new(
                "attribute",
                "is required (or values: attribute name → JSON path)",
            )),
        }
        let time = match self.time.as_deref().map(JsonPath::parse).transpose() {
            Ok(t) => t,
            Err(e) => {
                errs.push(FieldError::new("time", e));
                None
            }
        };
        match (entity, errs.is_empty()) {
            (Some(entity), true) => Ok(Compiled {
                topic,
                entity,
                values,
                time,
            }),
            _ => Err(Invalid(errs)),
        }
    }

    /// Checks patterns, templates and paths.
    pub fn validate(&self) -> Result<(), Invalid> {
        self.compile().map(|_| ())
    }

    /// The top-level keys the mapping reads from a payload (for a CSV
    /// source: the columns it needs), in mapping order, without repeats.
    pub fn keys(&self) -> Vec<String> {
        let Ok(c) = self.compile() else {
            return Vec::new();
        };
        let mut paths: Vec<&JsonPath> = c
            .entity
            .0
            .iter()
            .filter_map(|p| match p {
                Piece::Path(p) => Some(p),
                _ => None,
            })
            .collect();
        for (t, p) in &c.values {
            paths.extend(t.0.iter().filter_map(|p| match p {
                Piece::Path(p) => Some(p),
                _ => None,
            }));
            paths.push(p);
        }
        paths.extend(c.time.as_ref());
        let mut out: Vec<String> = Vec::new();
        for p in paths {
            if let Some(k) = p.first_key()
                && !out.iter().any(|x| x == k)
            {
                out.push(k.to_string());
            }
        }
        out
    }

    fn map(&self, topic: &str, payload: &Json, received: Timestamp) -> Result<Mapped, Invalid> {
        let c = self.compile()?;
        let caps = match &c.topic {
            Some(p) => p.matches(topic).ok_or_else(|| {
                Invalid::one(
                    "topic",
                    format!(
                        "'{}' does not match the mapping's pattern '{}'",
                        truncate(topic, 128),
                        self.topic.as_deref().unwrap_or_default()
                    ),
                )
            })?,
            None => BTreeMap::new(),
        };
        let mut errs = Vec::new();
        let entity = match c.entity.render(&caps, payload) {
            Ok(id) => check_entity_id("entity", &id)
                .map_err(|e| errs.push(e))
                .ok()
                .map(|()| id),
            Err(e) => {
                errs.push(FieldError::new("entity", e));
                None
            }
        };
        let time = match &c.time {
            None => Some(received),
            Some(path) => {
                let field = path.to_string();
                match path.get(payload) {
                    Some(Json::String(s)) => parse_time(&field, s, received)
                        .map_err(|e| errs.push(e))
                        .ok(),
                    Some(Json::Number(n)) => time_from_number(
                        &field,
                        n.as_f64().unwrap_or(f64::NAN),
                        self.time_unit.unwrap_or(TimeUnit::Seconds),
                        received,
                    )
                    .map_err(|e| errs.push(e))
                    .ok(),
                    Some(_) => {
                        errs.push(FieldError::new(field, "must be a time string or a number"));
                        None
                    }
                    None => {
                        errs.push(FieldError::new(field, "is missing from the payload"));
                        None
                    }
                }
            }
        };
        let mut values = Vec::new();
        for (attr, path) in &c.values {
            let field = path.to_string();
            let name = match attr.render(&caps, payload) {
                Ok(a) => match check_identifier("attribute", &a) {
                    Ok(()) => a,
                    Err(e) => {
                        errs.push(FieldError::new(
                            "attribute",
                            format!("'{}' {}", truncate(&a, 64), e.reason),
                        ));
                        continue;
                    }
                },
                Err(e) => {
                    errs.push(FieldError::new("attribute", e));
                    continue;
                }
            };
            match path.get(payload) {
                Some(v) => match value_of(&field, v) {
                    Ok(v) => values.push((name, v)),
                    Err(e) => errs.push(e),
                },
                None => errs.push(FieldError::new(field, "is missing from the payload")),
            }
        }
        let (Some(entity), Some(time), true) = (entity, time, errs.is_empty()) else {
            return Err(Invalid(errs));
        };
        Ok(Mapped {
            observations: values
                .into_iter()
                .map(|(attribute, value)| Observation {
                    entity: entity.clone(),
                    attribute,
                    time,
                    value,
                })
                .collect(),
            entities: vec![EntityHint {
                entity_type: type_of_urn(&entity).unwrap_or_else(|| "Device".into()),
                id: entity,
                name: None,
                location: None,
            }],
        })
    }
}

/// At most `max` bytes of `s`, cut at a character boundary, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// A printable sample of a payload for logs and errors: lossy UTF-8, cut to `max` bytes.
pub fn sample(payload: &[u8], max: usize) -> String {
    let cut = &payload[..payload.len().min(max + 4)];
    truncate(&String::from_utf8_lossy(cut), max)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
    }

    fn map(m: &Mapping, topic: &str, payload: &str) -> Result<Mapped, Invalid> {
        m.map(Message {
            topic,
            payload: payload.as_bytes(),
            received: now(),
        })
    }

    fn fields(e: &Invalid) -> Vec<&str> {
        e.0.iter().map(|f| f.field.as_str()).collect()
    }

    fn mapping(v: serde_json::Value) -> Mapping {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn smart_data_models_key_values_become_one_observation_per_attribute() {
        let m = map(
            &Mapping::Auto,
            "t",
            r#"{"id": "Madrid-28079004", "type": "AirQualityObserved",
                "dateObserved": "2016-03-15T11:00:00", "address": {"addressCountry": "ES"},
                "location": {"type": "Point", "coordinates": [-3.71, 40.42]},
                "temperature": 12.2, "airQualityLevel": "moderate", "reliable": true,
                "refPointOfInterest": "28079004-Pza", "source": "http://datos.madrid.es",
                "pollutants": [1, 2]}"#,
        )
        .unwrap();
        let id = "urn:ngsi-ld:AirQualityObserved:Madrid-28079004";
        let got: Vec<(&str, &str, &Value)> = m
            .observations
            .iter()
            .map(|o| (o.entity.as_str(), o.attribute.as_str(), &o.value))
            .collect();
        assert_eq!(
            got,
            [
                (id, "airQualityLevel", &Value::Text("moderate".into())),
                (id, "reliable", &Value::Boolean(true)),
                (id, "temperature", &Value::Number(12.2)),
            ]
        );
        let t = Utc.with_ymd_and_hms(2016, 3, 15, 11, 0, 0).unwrap();
        assert!(m.observations.iter().all(|o| o.time == t));
        assert_eq!(m.entities.len(), 1);
        assert_eq!(m.entities[0].entity_type, "AirQualityObserved");
        assert!(m.entities[0].location.is_some());
    }

    #[test]
    fn smart_data_models_time_defaults_to_receipt_and_arrays_are_batches() {
        let m = map(
            &Mapping::SmartDataModels,
            "t",
            r#"[{"id": "urn:ngsi-ld:FloodMonitoring:a", "type": "FloodMonitoring", "currentLevel": 0.98},
                {"id": "urn:ngsi-ld:FloodMonitoring:b", "type": "FloodMonitoring", "currentLevel": 1.5,
                 "observationDateTime": "2020-09-16T13:30:00+05:30"}]"#,
        )
        .unwrap();
        assert_eq!(m.observations.len(), 2);
        assert_eq!(m.observations[0].time, now());
        assert_eq!(
            m.observations[1].time,
            Utc.with_ymd_and_hms(2020, 9, 16, 8, 0, 0).unwrap()
        );
        assert_eq!(m.entities.len(), 2);
    }

    #[test]
    fn bad_smart_data_models_payloads_name_the_field() {
        let cases = [
            ("", vec!["payload"]),
            ("   ", vec!["payload"]),
            ("{not json", vec!["payload"]),
            ("42", vec!["payload"]),
            ("[]", vec!["payload"]),
            (r#"{"type": "X", "pm25": 1}"#, vec!["id"]),
            (r#"{"id": "a", "pm25": 1}"#, vec!["type"]),
            (r#"{"id": 5, "type": "X", "pm25": 1}"#, vec!["id"]),
            (
                r#"{"id": "a", "type": "bad type", "pm25": 1}"#,
                vec!["type"],
            ),
            (r#"{"id": "a", "type": "X"}"#, vec![""]),
            (r#"{"id": "a", "type": "X", "pm-25": 1}"#, vec!["pm-25"]),
            (
                r#"{"id": "a", "type": "X", "dateObserved": "yesterday", "pm25": 1}"#,
                vec!["dateObserved"],
            ),
            (
                r#"{"id": "a", "type": "X", "dateObserved": "2030-01-01T00:00:00Z", "pm25": 1}"#,
                vec!["dateObserved"],
            ),
            (
                r#"{"id": "a", "type": "X", "dateObserved": 5, "pm25": 1}"#,
                vec!["dateObserved"],
            ),
            (
                r#"[{"id": "a", "type": "X", "v": 1}, {"id": "b", "v": 2}]"#,
                vec!["[1].type"],
            ),
        ];
        for (payload, want) in cases {
            let e = map(&Mapping::SmartDataModels, "t", payload).unwrap_err();
            assert_eq!(fields(&e), want, "{payload}: {e}");
            assert!(e.0.iter().all(|f| !f.reason.is_empty()));
        }
        let e = map(
            &Mapping::Auto,
            "t",
            "{\"id\": \"a\", \"type\": \"X\", \"t\": 1e999}",
        );
        assert!(e.is_err());
    }

    #[test]
    fn non_utf8_payloads_are_refused() {
        let e = Mapping::Auto
            .map(Message {
                topic: "t",
                payload: &[0xff, 0xfe],
                received: now(),
            })
            .unwrap_err();
        assert_eq!(fields(&e), ["payload"]);
        assert!(e.0[0].reason.contains("UTF-8"));
        let big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
        let e = Mapping::Auto
            .map(Message {
                topic: "t",
                payload: &big,
                received: now(),
            })
            .unwrap_err();
        assert!(e.0[0].reason.contains("4 MiB"), "{e}");
    }

    #[test]
    fn sensor_community_device_push() {
        let m = map(
            &Mapping::Auto,
            "t",
            r#"{"esp8266id": "15072310", "software_version": "NRZ-2020-133",
                "sensordatavalues": [{"value_type": "SDS_P1", "value": "57.30"},
                {"value_type": "SDS_P2", "value": "18.40"}, {"value_type": "P0", "value": 3},
                {"value_type": "BME280_pressure", "value": "100500.2"},
                {"value_type": "signal", "value": "-71"}]}"#,
        )
        .unwrap();
        let got: Vec<(&str, f64)> = m
            .observations
            .iter()
            .map(|o| (o.attribute.as_str(), o.value.as_f64().unwrap()))
            .collect();
        assert_eq!(
            got,
            [
                ("pm10", 57.3),
                ("pm25", 18.4),
                ("pm1", 3.0),
                ("pressure", 100_500.2)
            ]
        );
        assert!(
            m.observations
                .iter()
                .all(|o| o.entity == "urn:ngsi-ld:AirQualitySensor:sc-15072310" && o.time == now())
        );
    }

    #[test]
    fn sensor_community_data_api_records_with_time_and_place() {
        let m = map(
            &Mapping::SensorCommunity {
                entity_prefix: Some("urn:ngsi-ld:Sensor:luft-".into()),
            },
            "t",
            r#"[{"id": 1, "timestamp": "2024-05-01 10:00:00", "sensor": {"id": 123, "sensor_type": {"name": "SDS011"}},
                 "location": {"latitude": "10.98", "longitude": "106.65"},
                 "sensordatavalues": [{"id": 9, "value": "12.5", "value_type": "P1"}]}]"#,
        )
        .unwrap();
        assert_eq!(m.observations[0].entity, "urn:ngsi-ld:Sensor:luft-123");
        assert_eq!(
            m.observations[0].time,
            Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap()
        );
        assert_eq!(m.entities[0].entity_type, "Sensor");
        assert!(m.entities[0].location.is_some());
    }

    #[test]
    fn bad_sensor_community_payloads_name_the_field() {
        let sc = Mapping::SensorCommunity {
            entity_prefix: None,
        };
        let cases = [
            (
                r#"{"sensordatavalues": [{"value_type": "P1", "value": "1"}]}"#,
                vec!["esp8266id"],
            ),
            (r#"{"esp8266id": "1"}"#, vec!["sensordatavalues"]),
            (
                r#"{"esp8266id": "1", "sensordatavalues": {}}"#,
                vec!["sensordatavalues"],
            ),
            (
                r#"{"esp8266id": "1", "sensordatavalues": []}"#,
                vec!["sensordatavalues"],
            ),
            (
                r#"{"esp8266id": "", "sensordatavalues": [{"value_type": "P1", "value": "1"}]}"#,
                vec!["esp8266id"],
            ),
            (
                r#"{"esp8266id": "1", "sensordatavalues": [{"value": "1"}]}"#,
                vec!["sensordatavalues[0].value_type"],
            ),
            (
                r#"{"esp8266id": "1", "sensordatavalues": [{"value_type": "P1", "value": "abc"}]}"#,
                vec!["sensordatavalues[0].value"],
            ),
            (
                r#"{"esp8266id": "1", "sensordatavalues": [{"value_type": "P1", "value": true}]}"#,
                vec!["sensordatavalues[0].value"],
            ),
            (
                r#"{"esp8266id": "1", "sensordatavalues": [{"value_type": "P1"}]}"#,
                vec!["sensordatavalues[0].value"],
            ),
            (
                r#"{"esp8266id": "1", "sensordatavalues": [{"value_type": "P 1", "value": "1"}]}"#,
                vec!["sensordatavalues[0].value_type"],
            ),
            (
                r#"{"esp8266id": "1", "sensordatavalues": [{"value_type": "P1", "value": "1"}, {"value_type": "SDS_P1", "value": "2"}]}"#,
                vec!["sensordatavalues[1].value_type"],
            ),
            (
                r#"{"esp8266id": "1", "timestamp": "soon", "sensordatavalues": [{"value_type": "P1", "value": "1"}]}"#,
                vec!["timestamp"],
            ),
            ("[1]", vec!["[0].payload"]),
        ];
        for (payload, want) in cases {
            let e = map(&sc, "t", payload).unwrap_err();
            assert_eq!(fields(&e), want, "{payload}: {e}");
        }
    }

    #[test]
    fn topic_segments_and_json_paths() {
        let m = mapping(json!({
            "format": "json",
            "topic": "bd/aq/{station}/{attribute}",
            "entity": "urn:ngsi-ld:AirQualitySensor:{station}",
            "attribute": "{attribute}",
            "value": "$.data.value",
            "time": "$.data['observed at']"
        }));
        m.validate().unwrap();
        let got = map(
            &m,
            "bd/aq/td1-007/pm25",
            r#"{"data": {"value": 12.5, "observed at": "2024-05-01T10:00:00Z"}}"#,
        )
        .unwrap();
        let o = &got.observations[0];
        assert_eq!(o.entity, "urn:ngsi-ld:AirQualitySensor:td1-007");
        assert_eq!(o.attribute, "pm25");
        assert_eq!(o.value, Value::Number(12.5));
        assert_eq!(o.time, Utc.with_ymd_and_hms(2024, 5, 1, 10, 0, 0).unwrap());
        assert_eq!(got.entities[0].entity_type, "AirQualitySensor");

        let e = map(&m, "bd/water/x/pm25", "{}").unwrap_err();
        assert_eq!(fields(&e), ["topic"]);
        let e = map(&m, "bd/aq/x/pm25", r#"{"data": {}}"#).unwrap_err();
        assert_eq!(fields(&e), ["$.data['observed at']", "$.data.value"]);
        let e = map(
            &m,
            "bd/aq/x/pm-25",
            r#"{"data": {"value": 1, "observed at": "2024-05-01T10:00:00Z"}}"#,
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["attribute"]);
        let e = map(
            &m,
            "bd/aq/x/pm25",
            r#"{"data": {"value": null, "observed at": "2024-05-01T10:00:00Z"}}"#,
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["$.data.value"]);
    }

    #[test]
    fn several_values_per_message_with_ids_from_the_payload() {
        let m = mapping(json!({
            "format": "json",
            "entity": "urn:ngsi-ld:WaterObserved:{$.station}",
            "values": {"waterLevel": "$.level", "flow": "$.readings[1]"},
            "time": "$.ts",
        }));
        let got = map(
            &m,
            "any/topic",
            r#"{"station": 42, "level": 1.5, "readings": [0, 7], "ts": 1714557600}"#,
        )
        .unwrap();
        let got: Vec<(&str, &str, f64)> = got
            .observations
            .iter()
            .map(|o| {
                (
                    o.entity.as_str(),
                    o.attribute.as_str(),
                    o.value.as_f64().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("urn:ngsi-ld:WaterObserved:42", "flow", 7.0),
                ("urn:ngsi-ld:WaterObserved:42", "waterLevel", 1.5)
            ]
        );
        let e = map(
            &m,
            "t",
            r#"{"level": 1, "readings": [0, 1], "ts": 1714557600}"#,
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["entity"]);
        assert!(e.0[0].reason.contains("$.station is missing"), "{e}");
        let e = map(
            &m,
            "t",
            r#"{"station": "a b", "level": 1, "readings": [0, 1], "ts": 1714557600}"#,
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["entity"]);
        let e = map(
            &m,
            "t",
            r#"{"station": "s", "level": 1, "readings": [0, 1], "ts": "x"}"#,
        )
        .unwrap_err();
        assert_eq!(fields(&e), ["$.ts"]);
    }

    #[test]
    fn bad_mappings_are_refused_with_their_field() {
        let cases = [
            (
                json!({"format": "json", "entity": "urn:x:{id}", "attribute": "a"}),
                vec!["entity"],
            ),
            (
                json!({"format": "json", "topic": "a/#/b", "entity": "urn:x:y", "attribute": "a"}),
                vec!["topic"],
            ),
            (
                json!({"format": "json", "topic": "a/{x}/{x}", "entity": "urn:x:{x}", "attribute": "a"}),
                vec!["topic"],
            ),
            (
                json!({"format": "json", "topic": "a/b+", "entity": "urn:x:y", "attribute": "a"}),
                vec!["topic"],
            ),
            (
                json!({"format": "json", "entity": "urn:x:y"}),
                vec!["attribute"],
            ),
            (
                json!({"format": "json", "entity": "urn:x:y", "attribute": "a", "values": {"b": "$"}}),
                vec!["attribute"],
            ),
            (
                json!({"format": "json", "entity": "urn:x:y", "values": {}}),
                vec!["values"],
            ),
            (
                json!({"format": "json", "entity": "urn:x:y", "attribute": "a", "value": "data"}),
                vec!["value"],
            ),
            (
                json!({"format": "json", "entity": "urn:x:y", "attribute": "a", "time": "$.a[x]"}),
                vec!["time"],
            ),
            (
                json!({"format": "json", "entity": "urn:x:{$.a", "attribute": "a"}),
                vec!["entity"],
            ),
            (
                json!({"format": "sensor_community", "entity_prefix": "sensor-"}),
                vec!["entity_prefix"],
            ),
        ];
        for (m, want) in cases {
            let m: Mapping =
                serde_json::from_value(m.clone()).unwrap_or_else(|e| panic!("{m}: {e}"));
            let e = m.validate().unwrap_err();
            assert_eq!(fields(&e), want, "{m:?}: {e}");
        }
        assert!(serde_json::from_value::<Mapping>(json!({"format": "xml"})).is_err());
        assert!(
            serde_json::from_value::<Mapping>(
                json!({"format": "json", "entity": "urn:x:y", "attribute": "a", "extra": 1})
            )
            .is_err()
        );
    }

    #[test]
    fn topic_patterns_match_like_mqtt_filters() {
        let p = TopicPattern::parse("bd/+/{id}/#").unwrap();
        let caps = p.matches("bd/aq/s1/x/y").unwrap();
        assert_eq!(caps.get("id"), Some(&"s1"));
        assert!(
            p.matches("bd/aq/s1").is_some(),
            "# matches the parent level too"
        );
        assert!(p.matches("bd/aq").is_none());
        assert!(p.matches("xx/aq/s1").is_none());
        let exact = TopicPattern::parse("a/{b}").unwrap();
        assert!(exact.matches("a/b/c").is_none());
        assert!(exact.matches("a/").is_none());
        assert!(check_topic_filter("bd/+/#").is_ok());
        assert!(check_topic_filter("#").is_ok());
        assert!(check_topic_filter("bd/#/x").is_err());
        assert!(check_topic_filter("bd/a+").is_err());
        assert!(check_topic_filter("").is_err());
    }

    #[test]
    fn json_paths() {
        let v = json!({"a": {"b c": [10, {"d": true}]}});
        let p = JsonPath::parse("$.a['b c'][1].d").unwrap();
        assert_eq!(p.get(&v), Some(&json!(true)));
        assert_eq!(p.to_string(), "$.a['b c'][1].d");
        assert_eq!(JsonPath::parse("$").unwrap().get(&v), Some(&v));
        assert_eq!(JsonPath::parse("$.a.x").unwrap().get(&v), None);
        for bad in ["a.b", "$.", "$..a", "$[", "$['a'", "$[x]", "$a"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn samples_are_cut_at_character_boundaries() {
        assert_eq!(truncate("Thủ Dầu Một", 4), "Th…");
        assert_eq!(truncate("Thủ Dầu Một", 5), "Thủ…");
        assert_eq!(sample(b"abc", 10), "abc");
        assert_eq!(sample(&[b'a'; 300], 5), "aaaaa…");
        assert_eq!(sample(&[0xff, b'a'], 10), "\u{fffd}a");
    }
}
