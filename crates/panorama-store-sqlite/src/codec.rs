//! How values are written to and read from SQLite columns.

use crate::error::corrupt;
use chrono::{DateTime, NaiveDate, Utc};
use panorama_core::Timestamp;
use panorama_store::StoreResult;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Times are stored as microseconds since the epoch, so they sort and compare in SQL.
pub(crate) fn ts(t: Timestamp) -> i64 {
    t.timestamp_micros()
}

/// Reads a stored time.
pub(crate) fn ts_from(us: i64) -> StoreResult<Timestamp> {
    DateTime::<Utc>::from_timestamp_micros(us).ok_or_else(|| corrupt("time", us))
}

/// Reads an optional stored time.
pub(crate) fn opt_ts_from(us: Option<i64>) -> StoreResult<Option<Timestamp>> {
    us.map(ts_from).transpose()
}

/// Days are stored as `YYYY-MM-DD`, which sorts like the dates.
pub(crate) fn day(d: NaiveDate) -> String {
    d.format("%Y-%m-%d").to_string()
}

/// Reads a stored day.
pub(crate) fn day_from(s: &str) -> StoreResult<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| corrupt("date", format!("'{s}': {e}")))
}

/// Serialises a value as JSON text.
pub(crate) fn json<T: Serialize + ?Sized>(what: &str, v: &T) -> StoreResult<String> {
    serde_json::to_string(v)
        .map_err(|e| panorama_store::StoreError::Backend(format!("cannot encode {what}: {e}")))
}

/// Reads JSON text.
pub(crate) fn json_from<T: DeserializeOwned>(what: &str, s: &str) -> StoreResult<T> {
    serde_json::from_str(s).map_err(|e| corrupt(what, e))
}

/// The serde name of a unit-like enum variant (`higher_is_better`).
pub(crate) fn enum_name<T: Serialize>(what: &str, v: &T) -> StoreResult<String> {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => Ok(s),
        _ => Err(panorama_store::StoreError::Backend(format!(
            "cannot encode {what}"
        ))),
    }
}

/// Reads an enum stored by its serde name.
pub(crate) fn enum_from<T: DeserializeOwned>(what: &str, s: &str) -> StoreResult<T> {
    serde_json::from_value(serde_json::Value::String(s.to_string()))
        .map_err(|e| corrupt(what, format!("'{s}': {e}")))
}

/// Reads a stored enum with a parser.
pub(crate) fn parsed<T>(
    what: &str,
    s: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> StoreResult<T> {
    parse(s).ok_or_else(|| corrupt(what, format!("'{s}'")))
}

/// SQLite integers are signed; counters saturate rather than wrap.
pub(crate) fn count_to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Reads a stored counter.
pub(crate) fn count_from(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Reads column `i` of a row, reporting a type mismatch instead of panicking.
pub(crate) fn col<'r, T>(row: &'r sqlx::sqlite::SqliteRow, i: usize) -> StoreResult<T>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    use sqlx::Row;
    row.try_get(i).map_err(|e| corrupt("row", e))
}
