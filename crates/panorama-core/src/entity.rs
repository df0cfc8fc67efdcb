//! Entities: things with identity (sensor, camera, hospital, bus stop…),
//! typed, located and attributed. Ids are URNs compatible with NGSI-LD.

use crate::error::{FieldError, Invalid, check_code, check_name};
use crate::value::ValueType;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A validated entity id: a URN such as `urn:ngsi-ld:AirQualitySensor:td1-007`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct EntityId(String);

impl EntityId {
    /// Parses and validates an entity id.
    pub fn parse(field: &str, s: &str) -> Result<Self, FieldError> {
        check_entity_id(field, s)?;
        Ok(Self(s.to_string()))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for EntityId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Checks that `s` is a URN (`urn:<nid>:<nss>`), as NGSI-LD requires of ids.
pub fn check_entity_id(field: &str, s: &str) -> Result<(), FieldError> {
    if s.len() > 256 {
        return Err(FieldError::new(field, "must be at most 256 characters"));
    }
    let rest = s.strip_prefix("urn:").ok_or_else(|| {
        FieldError::new(
            field,
            "must be a URN starting with 'urn:', e.g. urn:ngsi-ld:AirQualitySensor:td1-007",
        )
    })?;
    let (nid, nss) = rest
        .split_once(':')
        .ok_or_else(|| FieldError::new(field, "must have the form urn:<namespace>:<name>"))?;
    if nid.is_empty()
        || nss.is_empty()
        || !nid.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return Err(FieldError::new(
            field,
            "must have the form urn:<namespace>:<name>",
        ));
    }
    // Ids are almost always ASCII: check bytes, and chars only when needed.
    let bad_ascii = |b: u8| {
        b <= b' '
            || b == 0x7f
            || matches!(
                b,
                b'<' | b'>' | b'"' | b'{' | b'}' | b'|' | b'\\' | b'^' | b'`'
            )
    };
    let bad = if s.is_ascii() {
        s.bytes().any(bad_ascii)
    } else {
        s.chars().any(|c| {
            c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`')
        })
    };
    if bad {
        return Err(FieldError::new(
            field,
            "must not contain spaces or characters not allowed in a URI",
        ));
    }
    Ok(())
}

/// Checks an entity type or attribute name: a letter, then letters, digits or `_`.
pub fn check_identifier(field: &str, s: &str) -> Result<(), FieldError> {
    let mut chars = s.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    if !ok_first || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') || s.len() > 64 {
        return Err(FieldError::new(
            field,
            "must start with a letter and contain only letters, digits and '_' (at most 64)",
        ));
    }
    Ok(())
}

/// What an entity declares about one of its observed attributes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AttributeSpec {
    /// Type of the attribute's values.
    #[serde(rename = "type")]
    pub value_type: ValueType,
    /// Unit of measure (UCUM or common symbol), e.g. `µg/m3`, `m`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
}

/// A thing with identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Entity {
    /// URN id, e.g. `urn:ngsi-ld:AirQualityObserved:td1-007`.
    pub id: String,
    /// Entity type, e.g. `AirQualityObserved` (Smart Data Models names).
    #[serde(rename = "type")]
    pub entity_type: String,
    /// Display name (Vietnamese).
    pub name: String,
    /// Domain code.
    pub domain: String,
    /// Admin unit code the entity lies in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin_unit: Option<String>,
    /// Location as GeoJSON (usually a Point), WGS 84.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub location: Option<geojson::Geometry>,
    /// Observed attributes and their types.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeSpec>,
    /// Static properties (address, stream URL, capacity…).
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    #[schema(value_type = Object)]
    pub properties: serde_json::Map<String, serde_json::Value>,
    /// Source that last wrote the entity (set by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// When the entity was last changed (set by the server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Most attributes one entity may declare.
pub const MAX_ATTRIBUTES: usize = 256;

impl Entity {
    /// Checks id, type, names, domain, admin unit, location and attributes.
    /// References (domain, admin unit) are checked for existence by the store.
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut errs = Vec::new();
        errs.extend(check_entity_id("id", &self.id).err());
        errs.extend(check_identifier("type", &self.entity_type).err());
        errs.extend(check_name("name", &self.name).err());
        errs.extend(check_code("domain", &self.domain).err());
        if let Some(a) = &self.admin_unit {
            errs.extend(check_code("admin_unit", a).err());
        }
        if let Some(loc) = &self.location
            && let Err(e) = crate::geo::check_geometry(loc)
        {
            errs.push(FieldError::new("location", e));
        }
        if self.attributes.len() > MAX_ATTRIBUTES {
            errs.push(FieldError::new(
                "attributes",
                format!("at most {MAX_ATTRIBUTES} attributes"),
            ));
        }
        for (name, spec) in &self.attributes {
            errs.extend(check_identifier(&format!("attributes.{name}"), name).err());
            if let Some(u) = &spec.unit
                && u.len() > 32
            {
                errs.push(FieldError::new(
                    format!("attributes.{name}.unit"),
                    "must be at most 32 characters",
                ));
            }
        }
        if serde_json::Value::Object(self.properties.clone())
            .to_string()
            .len()
            > 64 * 1024
        {
            errs.push(FieldError::new(
                "properties",
                "must be at most 64 KiB of JSON",
            ));
        }
        if errs.is_empty() {
            Ok(())
        } else {
            Err(Invalid(errs))
        }
    }

    /// A point standing for the entity's location (the point itself, or the
    /// centroid of a line or area), as (longitude, latitude).
    pub fn point(&self) -> Option<(f64, f64)> {
        self.location
            .as_ref()
            .and_then(crate::geo::representative_point)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urn_ids() {
        assert!(check_entity_id("id", "urn:ngsi-ld:AirQualitySensor:td1-007").is_ok());
        assert!(check_entity_id("id", "sensor-1").is_err());
        assert!(check_entity_id("id", "urn:ngsi-ld:").is_err());
        assert!(check_entity_id("id", "urn:ngsi-ld:A B").is_err());
    }

    #[test]
    fn ascii_and_unicode_ids_refuse_the_same_characters() {
        for c in (0u8..0x80)
            .map(char::from)
            .chain(['\u{85}', '\u{a0}', '\u{2028}', 'é', '\u{9f}'])
        {
            let id = format!("urn:ngsi-ld:X{c}1");
            let by_chars = c.is_whitespace()
                || c.is_control()
                || matches!(c, '<' | '>' | '"' | '{' | '}' | '|' | '\\' | '^' | '`');
            assert_eq!(check_entity_id("id", &id).is_err(), by_chars, "{:?}", c);
        }
    }

    #[test]
    fn identifiers() {
        assert!(check_identifier("a", "pm25").is_ok());
        assert!(check_identifier("a", "2x").is_err());
        assert!(check_identifier("a", "").is_err());
    }
}
