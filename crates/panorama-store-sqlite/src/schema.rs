//! Versioned migrations, and refusing a data dir written by a newer Panorama.

use crate::error::sql_ctx;
use panorama_store::{StoreError, StoreResult};
use sqlx::SqlitePool;
use sqlx::migrate::Migrator;
use std::path::Path;

/// The migrations in `migrations/`, embedded at build time.
pub(crate) static MIGRATOR: Migrator = sqlx::migrate!("./migrations");

/// The newest schema version this build knows.
pub fn schema_version() -> i64 {
    MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
}

/// Brings the database up to [`schema_version`]. Refuses, writing nothing,
/// a database that records a newer version, and a new database beside
/// existing observations (their series ids would point at the wrong series).
pub(crate) async fn migrate(pool: &SqlitePool, dir: &Path) -> StoreResult<()> {
    let found = recorded_version(pool).await?;
    let supported = schema_version();
    match found {
        Some(found) if found > supported => {
            return Err(StoreError::TooNew {
                path: dir.display().to_string(),
                found,
                supported,
            });
        }
        None if has_observations(&dir.join(crate::OBS_DIR)) => {
            return Err(StoreError::Backend(format!(
                "{} holds observations but {} is new or empty, so their series ids would be wrong; \
                 restore the database from a backup or move the obs directory away",
                dir.join(crate::OBS_DIR).display(),
                dir.join(crate::DB_FILE).display()
            )));
        }
        _ => {}
    }
    MIGRATOR.run(pool).await.map_err(|e| {
        StoreError::Backend(format!(
            "migrating the database in {} to schema version {supported}: {e}",
            dir.display()
        ))
    })?;
    if found != Some(supported) {
        tracing::info!(from = ?found, to = supported, dir = %dir.display(), "migrated the store schema");
    }
    Ok(())
}

/// Whether the tsdb directory exists and holds anything.
fn has_observations(obs: &Path) -> bool {
    std::fs::read_dir(obs).is_ok_and(|mut d| d.next().is_some())
}

/// The highest migration version recorded in the database, if any.
async fn recorded_version(pool: &SqlitePool) -> StoreResult<Option<i64>> {
    let has_table: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await
    .map_err(sql_ctx("reading the schema version"))?;
    if !has_table {
        return Ok(None);
    }
    sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations")
        .fetch_one(pool)
        .await
        .map_err(sql_ctx("reading the schema version"))
}
