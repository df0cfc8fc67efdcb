//! Reading request bodies: content type, size limit, and JSON or NDJSON
//! parsing that names the offending item and field.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::{HeaderMap, header};
use bytes::Bytes;
use panorama_core::observation::ObservationInput;
use panorama_core::{FieldError, Invalid, Observation, Timestamp};
use serde::de::DeserializeOwned;

/// Body formats a route accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `application/json`.
    Json,
    /// `application/x-ndjson`: one JSON document per line.
    Ndjson,
}

/// The format named by the Content-Type header, if it is one of `allowed`.
pub fn format(headers: &HeaderMap, allowed: &[Format]) -> Result<Format, ApiError> {
    let expected = if allowed.contains(&Format::Ndjson) {
        "application/json or application/x-ndjson"
    } else {
        "application/json"
    };
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .ok_or(ApiError::UnsupportedMediaType { expected })?;
    let f = match ct.as_str() {
        "application/json" => Format::Json,
        "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Format::Ndjson,
        _ => return Err(ApiError::UnsupportedMediaType { expected }),
    };
    if allowed.contains(&f) {
        Ok(f)
    } else {
        Err(ApiError::UnsupportedMediaType { expected })
    }
}

/// Reads the whole body, refusing more than `limit` bytes.
pub async fn read(headers: &HeaderMap, body: Body, limit: usize) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    axum::body::to_bytes(body, limit).await.map_err(|e| {
        let too_large = std::error::Error::source(&e)
            .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
            || e.to_string().contains("length limit");
        if too_large {
            ApiError::PayloadTooLarge { limit }
        } else {
            ApiError::MalformedBody {
                detail: format!("could not read the body: {e}"),
                field: None,
            }
        }
    })
}

fn malformed(e: &serde_json::Error, field: Option<String>) -> ApiError {
    ApiError::MalformedBody {
        detail: format!("the body is not valid JSON: {e}"),
        field,
    }
}

/// The items of a JSON body that is one object or an array of objects,
/// each deserialised as `T`; every item that does not fit is reported.
pub fn json_items<T: DeserializeOwned>(
    bytes: &[u8],
    explain: impl Fn(&serde_json::Value, serde_json::Error) -> Invalid,
) -> Result<Vec<T>, ApiError> {
    // Fast path: the whole body is well-formed.
    if let Ok(items) = serde_json::from_slice::<Vec<T>>(bytes) {
        return Ok(items);
    }
    let v: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| malformed(&e, None))?;
    let items = match v {
        serde_json::Value::Array(a) => a,
        o @ serde_json::Value::Object(_) => vec![o],
        _ => return Err(Invalid::one("", "must be a JSON object or an array of objects").into()),
    };
    collect(items.into_iter().enumerate(), explain)
}

/// The items of an NDJSON body; `[i]` in errors is the 0-based line number.
pub fn ndjson_items<T: DeserializeOwned>(
    bytes: &[u8],
    explain: impl Fn(&serde_json::Value, serde_json::Error) -> Invalid,
) -> Result<Vec<T>, ApiError> {
    let mut values = Vec::new();
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<serde_json::Value>(line) {
            Ok(v) => values.push((i, v)),
            Err(e) => {
                return Err(ApiError::MalformedBody {
                    detail: format!("line {} is not valid JSON: {e}", i + 1),
                    field: Some(format!("[{i}]")),
                });
            }
        }
    }
    collect(values.into_iter(), explain)
}

fn collect<T: DeserializeOwned>(
    items: impl Iterator<Item = (usize, serde_json::Value)>,
    explain: impl Fn(&serde_json::Value, serde_json::Error) -> Invalid,
) -> Result<Vec<T>, ApiError> {
    let mut out = Vec::new();
    let mut errs = Vec::new();
    for (i, v) in items {
        match serde_path_to_error::deserialize::<_, T>(&v) {
            Ok(t) => out.push(t),
            Err(e) => {
                let path = e.path().to_string();
                let inner = e.into_inner();
                let inv = if path == "." || path.is_empty() {
                    explain(&v, inner)
                } else {
                    Invalid::one(path, inner.to_string())
                };
                errs.extend(inv.under(&format!("[{i}]")).0);
            }
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(Invalid(errs).into())
    }
}

/// A generic explanation: serde's message, on the item.
pub fn explain_generic(_: &serde_json::Value, e: serde_json::Error) -> Invalid {
    Invalid::one("", e.to_string())
}

/// Parses and validates observations (JSON array/object or NDJSON).
pub fn observations(
    bytes: &[u8],
    format: Format,
    now: Timestamp,
    max_items: usize,
) -> Result<Vec<Observation>, ApiError> {
    if format == Format::Json
        && let Some(obs) = fast::observations(bytes, now, max_items)
    {
        return Ok(obs);
    }
    let explain = |v: &serde_json::Value, _e: serde_json::Error| ObservationInput::explain(v);
    let inputs: Vec<ObservationInput> = match format {
        Format::Json => json_items(bytes, explain)?,
        Format::Ndjson => ndjson_items(bytes, explain)?,
    };
    if inputs.len() > max_items {
        return Err(ApiError::TooManyItems(format!(
            "a request may carry at most {max_items} observations, got {}; split it",
            inputs.len()
        )));
    }
    // In NDJSON, `[i]` is the line number (blank lines count, as in parse errors).
    let lines: Vec<usize> = match format {
        Format::Json => Vec::new(),
        Format::Ndjson => bytes
            .split(|b| *b == b'\n')
            .enumerate()
            .filter(|(_, line)| !line.iter().all(u8::is_ascii_whitespace))
            .map(|(i, _)| i)
            .collect(),
    };
    let mut out = Vec::with_capacity(inputs.len());
    let mut errs: Vec<FieldError> = Vec::new();
    for (i, input) in inputs.into_iter().enumerate() {
        match input.validate(now) {
            Ok(o) => out.push(o),
            Err(inv) => {
                let at = lines.get(i).copied().unwrap_or(i);
                errs.extend(inv.under(&format!("[{at}]")).0)
            }
        }
    }
    if errs.is_empty() {
        Ok(out)
    } else {
        Err(Invalid(errs).into())
    }
}

/// The fast path for the common request: a JSON array of valid
/// observations. It borrows strings from the body instead of allocating,
/// reads values without building a `serde_json::Value`, and parses each
/// distinct time once (a feed sends many sensors for the same instant). It
/// accepts a body only when the general path would accept it with the same
/// result; anything else (an object, a bad item, too many items) returns
/// `None` and goes through the general path, which names every problem.
mod fast {
    use panorama_core::entity::{check_entity_id, check_identifier};
    use panorama_core::observation::parse_time;
    use panorama_core::value::MAX_TEXT_BYTES;
    use panorama_core::{Observation, Timestamp, Value};
    use serde::Deserialize;
    use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
    use std::borrow::Cow;

    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Input<'a> {
        #[serde(borrow)]
        entity: Cow<'a, str>,
        #[serde(borrow)]
        attribute: Cow<'a, str>,
        #[serde(default, borrow)]
        time: Option<Cow<'a, str>>,
        value: Raw,
    }

    /// A value as JSON gave it; arrays and objects are kept as JSON.
    enum Raw {
        Null,
        Bool(bool),
        Number(f64),
        Text(String),
        Json(serde_json::Value),
    }

    impl<'de> Deserialize<'de> for Raw {
        fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
            d.deserialize_any(RawVisitor)
        }
    }

    struct RawVisitor;

    impl<'de> Visitor<'de> for RawVisitor {
        type Value = Raw;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Raw, E> {
            Ok(Raw::Null)
        }
        fn visit_none<E: de::Error>(self) -> Result<Raw, E> {
            Ok(Raw::Null)
        }
        fn visit_bool<E: de::Error>(self, b: bool) -> Result<Raw, E> {
            Ok(Raw::Bool(b))
        }
        // The same conversions as `serde_json::Number::as_f64`.
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<Raw, E> {
            Ok(Raw::Number(v as f64))
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<Raw, E> {
            Ok(Raw::Number(v as f64))
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<Raw, E> {
            Ok(Raw::Number(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Raw, E> {
            Ok(Raw::Text(v.to_string()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Raw, E> {
            Ok(Raw::Text(v))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Raw, A::Error> {
            serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))
                .map(Raw::Json)
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Raw, A::Error> {
            serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))
                .map(Raw::Json)
        }
    }

    /// The value as `Value::from_json` would make it; None where it would refuse it.
    fn value(raw: Raw) -> Option<Value> {
        match raw {
            Raw::Null => None,
            Raw::Bool(b) => Some(Value::Boolean(b)),
            Raw::Number(f) => f.is_finite().then_some(Value::Number(f)),
            Raw::Text(s) => (s.len() <= MAX_TEXT_BYTES).then_some(Value::Text(s)),
            Raw::Json(j) => Value::from_json("value", j).ok(),
        }
    }

    pub(super) fn observations(
        bytes: &[u8],
        now: Timestamp,
        max_items: usize,
    ) -> Option<Vec<Observation>> {
        let inputs: Vec<Input<'_>> = serde_json::from_slice(bytes).ok()?;
        if inputs.len() > max_items {
            return None;
        }
        let mut out = Vec::with_capacity(inputs.len());
        let mut last_time: Option<(Cow<'_, str>, Timestamp)> = None;
        for i in inputs {
            check_entity_id("entity", &i.entity).ok()?;
            check_identifier("attribute", &i.attribute).ok()?;
            let time = match i.time {
                None => now,
                Some(s) => match &last_time {
                    Some((prev, t)) if *prev == s => *t,
                    _ => {
                        let t = parse_time("time", &s, now).ok()?;
                        last_time = Some((s, t));
                        t
                    }
                },
            };
            out.push(Observation {
                entity: i.entity.into_owned(),
                attribute: i.attribute.into_owned(),
                time,
                value: value(i.value)?,
            });
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> Timestamp {
        chrono::Utc.with_ymd_and_hms(2024, 5, 1, 0, 0, 0).unwrap()
    }

    #[test]
    fn ndjson_names_the_line() {
        let body = b"{\"entity\":\"urn:ngsi-ld:X:1\",\"attribute\":\"a\",\"value\":1}\n\n{\"entity\":\"urn:ngsi-ld:X:1\",\"attribute\":\"a\",\"value\":null}\n";
        let e = observations(body, Format::Ndjson, now(), 10).unwrap_err();
        let p = e.problem();
        assert_eq!(p.field.as_deref(), Some("[2].value"));
    }

    #[test]
    fn the_fast_path_gives_what_the_general_path_gives_and_defers_what_it_refuses() {
        let body = br#"[{"entity":"urn:ngsi-ld:X:1","attribute":"a","time":"2024-04-30T17:00:00Z","value":1},
            {"entity":"urn:ngsi-ld:X:2","attribute":"a","time":"2024-04-30T17:00:00Z","value":-2.5},
            {"entity":"urn:ngsi-ld:X:\u0033","attribute":"b","time":"2024-05-01T00:00:00+07:00","value":true},
            {"entity":"urn:ngsi-ld:X:4","attribute":"c","time":null,"value":"T\u1ed1t"},
            {"attribute":"d","value":{"pm10":[1,2]},"entity":"urn:ngsi-ld:X:5"},
            {"entity":"urn:ngsi-ld:X:6","attribute":"e","value":18446744073709551615}]"#;
        let general: Vec<Observation> = json_items::<ObservationInput>(body, explain_generic)
            .unwrap()
            .into_iter()
            .map(|i| i.validate(now()).unwrap())
            .collect();
        assert_eq!(fast::observations(body, now(), 10), Some(general));
        for refused in [
            &br#"{"entity":"urn:ngsi-ld:X:1","attribute":"a","value":1}"#[..],
            br#"[{"entity":"urn:ngsi-ld:X:1","attribute":"a","value":null}]"#,
            br#"[{"entity":"x","attribute":"a","value":1}]"#,
            br#"[{"entity":"urn:ngsi-ld:X:1","attribute":"a","value":1,"extra":1}]"#,
            br#"[{"entity":"urn:ngsi-ld:X:1","attribute":"a","time":"2099-01-01T00:00:00Z","value":1}]"#,
        ] {
            assert_eq!(fast::observations(refused, now(), 10), None);
        }
        assert_eq!(fast::observations(body, now(), 5), None, "too many items");
    }

    #[test]
    fn wrong_types_name_the_field() {
        let body = br#"[{"entity":"urn:ngsi-ld:X:1","attribute":"a","value":1},{"entity":7,"attribute":"a","value":1}]"#;
        let e = observations(body, Format::Json, now(), 10).unwrap_err();
        assert_eq!(e.problem().field.as_deref(), Some("[1].entity"));
    }

    #[test]
    fn malformed_json_is_400() {
        let e = observations(b"[{", Format::Json, now(), 10).unwrap_err();
        assert_eq!(e.problem().status, 400);
    }
}
