//! Observation values: number, text, boolean or JSON.

use crate::error::FieldError;
use serde::{Deserialize, Serialize};

/// The type of the values of one attribute; fixed when the attribute is declared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// A finite 64-bit float.
    Number,
    /// UTF-8 text.
    Text,
    /// true or false.
    Boolean,
    /// Any JSON document (object or array).
    Json,
}

impl ValueType {
    /// The lower-case name used in the API and the store.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Number => "number",
            Self::Text => "text",
            Self::Boolean => "boolean",
            Self::Json => "json",
        }
    }

    /// Parses the lower-case name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "number" => Self::Number,
            "text" => Self::Text,
            "boolean" => Self::Boolean,
            "json" => Self::Json,
            _ => return None,
        })
    }
}

/// One observed value.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum Value {
    /// A finite number.
    Number(f64),
    /// Text.
    Text(String),
    /// A boolean.
    Boolean(bool),
    /// A JSON object or array.
    #[schema(value_type = Object)]
    Json(serde_json::Value),
}

/// Text values longer than this are refused (they belong in attachments).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;

impl Value {
    /// The type of this value.
    pub fn value_type(&self) -> ValueType {
        match self {
            Self::Number(_) => ValueType::Number,
            Self::Text(_) => ValueType::Text,
            Self::Boolean(_) => ValueType::Boolean,
            Self::Json(_) => ValueType::Json,
        }
    }

    /// The number, if this is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Self::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// Interprets a JSON value as an observation value, refusing null, NaN and
    /// Infinity (JSON cannot carry those; strings like "NaN" are text, and a
    /// text value for a number attribute is caught by the type check).
    pub fn from_json(field: &str, v: serde_json::Value) -> Result<Self, FieldError> {
        match v {
            serde_json::Value::Null => Err(FieldError::new(field, "must not be null")),
            serde_json::Value::Bool(b) => Ok(Self::Boolean(b)),
            serde_json::Value::Number(n) => match n.as_f64() {
                Some(f) if f.is_finite() => Ok(Self::Number(f)),
                _ => Err(FieldError::new(field, "must be a finite number")),
            },
            serde_json::Value::String(s) => {
                if s.len() > MAX_TEXT_BYTES {
                    Err(FieldError::new(field, "text is longer than 64 KiB"))
                } else {
                    Ok(Self::Text(s))
                }
            }
            v @ (serde_json::Value::Array(_) | serde_json::Value::Object(_)) => {
                if v.to_string().len() > MAX_TEXT_BYTES {
                    Err(FieldError::new(field, "JSON value is longer than 64 KiB"))
                } else {
                    Ok(Self::Json(v))
                }
            }
        }
    }

    /// Checks that this value fits an attribute of type `expected`.
    pub fn check_type(&self, field: &str, expected: ValueType) -> Result<(), FieldError> {
        let got = self.value_type();
        if got == expected {
            Ok(())
        } else {
            Err(FieldError::new(
                field,
                format!(
                    "expected a {} value, got {}",
                    expected.as_str(),
                    got.as_str()
                ),
            ))
        }
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Value::from_json("value", v).map_err(|e| serde::de::Error::custom(e.reason))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn null_and_numbers_and_text() {
        assert!(Value::from_json("v", json!(null)).is_err());
        assert_eq!(Value::from_json("v", json!(1.5)), Ok(Value::Number(1.5)));
        assert_eq!(
            Value::from_json("v", json!("NaN")),
            Ok(Value::Text("NaN".into()))
        );
        assert!(
            Value::Text("x".into())
                .check_type("v", ValueType::Number)
                .is_err()
        );
    }
}
