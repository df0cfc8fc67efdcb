//! Observations: a time-stamped value of one attribute of one entity.

use crate::Timestamp;
use crate::entity::{check_entity_id, check_identifier};
use crate::error::{FieldError, Invalid};
use crate::value::Value;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One observation, validated.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Observation {
    /// Entity id (URN).
    pub entity: String,
    /// Attribute name, declared on the entity.
    pub attribute: String,
    /// When the value was observed (RFC 3339).
    pub time: chrono::DateTime<chrono::Utc>,
    /// The value.
    pub value: Value,
}

/// An observation as it arrives, before validation.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationInput {
    /// Entity id (URN).
    pub entity: String,
    /// Attribute name.
    pub attribute: String,
    /// RFC 3339 time with offset; the server's receive time when absent.
    #[serde(default)]
    pub time: Option<String>,
    /// Number, text, boolean or JSON object/array.
    #[schema(value_type = Object)]
    pub value: serde_json::Value,
}

/// Observations may be up to this far in the future (clock skew of devices).
pub const MAX_FUTURE_SECS: i64 = 24 * 3600;

/// Parses an RFC 3339 time and checks it is plausible for an observation:
/// not before 1970 and not more than a day ahead of `now`.
pub fn parse_time(field: &str, s: &str, now: Timestamp) -> Result<Timestamp, FieldError> {
    let t = DateTime::parse_from_rfc3339(s)
        .map_err(|e| {
            FieldError::new(
                field,
                format!("'{s}' is not an RFC 3339 time with offset ({e})"),
            )
        })?
        .with_timezone(&Utc);
    check_time(field, t, now)?;
    Ok(t)
}

/// Checks that a time is plausible for an observation.
pub fn check_time(field: &str, t: Timestamp, now: Timestamp) -> Result<(), FieldError> {
    if t.timestamp() < 0 {
        return Err(FieldError::new(
            field,
            "must not be before 1970-01-01T00:00:00Z",
        ));
    }
    if (t - now).num_seconds() > MAX_FUTURE_SECS {
        return Err(FieldError::new(
            field,
            "must not be more than 24 hours in the future",
        ));
    }
    Ok(())
}

impl ObservationInput {
    /// Validates the shape of the observation (not yet that the entity and
    /// attribute exist: the store knows those).
    pub fn validate(self, now: Timestamp) -> Result<Observation, Invalid> {
        let mut errs = Vec::new();
        errs.extend(check_entity_id("entity", &self.entity).err());
        errs.extend(check_identifier("attribute", &self.attribute).err());
        let time = match &self.time {
            None => Some(now),
            Some(s) => match parse_time("time", s, now) {
                Ok(t) => Some(t),
                Err(e) => {
                    errs.push(e);
                    None
                }
            },
        };
        let value = match Value::from_json("value", self.value) {
            Ok(v) => Some(v),
            Err(e) => {
                errs.push(e);
                None
            }
        };
        match (time, value) {
            (Some(time), Some(value)) if errs.is_empty() => Ok(Observation {
                entity: self.entity,
                attribute: self.attribute,
                time,
                value,
            }),
            _ => Err(Invalid(errs)),
        }
    }

    /// Explains why a JSON item is not an observation at all (wrong field
    /// types, missing or unknown fields), naming each field.
    pub fn explain(v: &serde_json::Value) -> Invalid {
        let Some(obj) = v.as_object() else {
            return Invalid::one(
                "",
                "must be a JSON object with entity, attribute, time and value",
            );
        };
        let mut errs = Vec::new();
        for key in ["entity", "attribute", "value"] {
            if !obj.contains_key(key) {
                errs.push(FieldError::new(key, "is required"));
            }
        }
        for key in ["entity", "attribute", "time"] {
            if let Some(x) = obj.get(key)
                && !x.is_string()
                && !(key == "time" && x.is_null())
            {
                errs.push(FieldError::new(key, "must be a string"));
            }
        }
        for key in obj.keys() {
            if !matches!(key.as_str(), "entity" | "attribute" | "time" | "value") {
                errs.push(FieldError::new(
                    key.clone(),
                    "is not a field of an observation",
                ));
            }
        }
        if errs.is_empty() {
            errs.push(FieldError::new("", "is not a valid observation"));
        }
        Invalid(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn now() -> Timestamp {
        Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
    }

    fn input(v: serde_json::Value) -> ObservationInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn valid_and_defaults() {
        let o = input(json!({"entity":"urn:ngsi-ld:X:1","attribute":"pm25","value":3}))
            .validate(now())
            .unwrap();
        assert_eq!(o.time, now());
        assert_eq!(o.value, Value::Number(3.0));
    }

    #[test]
    fn impossible_times() {
        for t in [
            "2024-02-30T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "2024-05-03T00:00:00Z",
            "yesterday",
            "2024-05-01T00:00:00",
        ] {
            let e =
                input(json!({"entity":"urn:ngsi-ld:X:1","attribute":"pm25","time":t,"value":3}))
                    .validate(now())
                    .unwrap_err();
            assert_eq!(e.0[0].field, "time", "{t}");
        }
    }

    #[test]
    fn explains_wrong_shapes() {
        let e = ObservationInput::explain(&json!({"entity": 5, "value": 1, "extra": true}));
        let fields: Vec<_> = e.0.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"attribute"));
        assert!(fields.contains(&"entity"));
        assert!(fields.contains(&"extra"));
    }
}
