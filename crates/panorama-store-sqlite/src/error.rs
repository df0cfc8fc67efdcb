//! Turning sqlx and I/O failures into [`StoreError`]s that say what was being done.

use panorama_store::StoreError;

/// SQLite's primary result codes for "someone else holds the lock".
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// Maps an sqlx error met while doing `context`.
pub(crate) fn sql(context: &str, e: sqlx::Error) -> StoreError {
    if let Some(db) = e.as_database_error()
        && let Some(code) = db.code().and_then(|c| c.parse::<i64>().ok())
        && matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)
    {
        return StoreError::Overloaded {
            retry_after_secs: 1,
        };
    }
    match e {
        sqlx::Error::PoolTimedOut => StoreError::Overloaded {
            retry_after_secs: 1,
        },
        sqlx::Error::PoolClosed => StoreError::Backend(format!("{context}: the store is closed")),
        e => StoreError::Backend(format!("{context}: {e}")),
    }
}

/// A closure mapping an sqlx error met while doing `context`.
pub(crate) fn sql_ctx(context: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| sql(context, e)
}

/// Whether the error is a UNIQUE or PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .is_some_and(|d| d.is_unique_violation())
}

/// A stored value that cannot be read back (a damaged or hand-edited database).
pub(crate) fn corrupt(what: &str, detail: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(format!("stored {what} cannot be read: {detail}"))
}
