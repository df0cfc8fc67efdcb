//! The embedded store: SQLite for relational data, panorama-tsdb for observations, in one data directory.
//!
//! ```text
//! <data dir>/panorama.lock   exclusive lock held while a store is open
//! <data dir>/panorama.db     SQLite (WAL, synchronous=FULL): everything but observations
//! <data dir>/obs/            panorama-tsdb: observations
//! ```
//!
//! Series ids are dense integers kept in SQLite and handed to the tsdb; an
//! in-memory catalog maps (entity, attribute) to its series so appending
//! observations runs no SQL.

mod accounts;
mod catalog;
mod codec;
mod entities;
mod error;
mod fold;
mod indicators;
mod ld;
mod ld_subscriptions;
mod observations;
mod ops;
mod reference;
mod refs;
mod schema;

pub use fold::fold;
pub use schema::schema_version;

use async_trait::async_trait;
use catalog::Catalog;
use error::sql_ctx;
use panorama_core::{
    AdminUnit, Agency, Domain, Entity, Indicator, IndicatorValue, IndicatorValueInput, Observation,
    Page, Source, Timestamp, User,
};
use panorama_store::{
    Appended, EntityQuery, GroupSeries, GroupedSeriesQuery, IndicatorValueQuery, LatestValue,
    SeriesData, SeriesQuery, SourceActivity, Store, StoreError, StoreHealth, StoreResult,
    UpsertCount,
};
use panorama_tsdb::Tsdb;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// Name of the lock file in the data dir.
pub const LOCK_FILE: &str = "panorama.lock";
/// Name of the SQLite database in the data dir.
pub const DB_FILE: &str = "panorama.db";
/// Name of the tsdb directory in the data dir.
pub const OBS_DIR: &str = "obs";

/// Settings of the embedded store.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// Most SQLite connections (readers run in parallel; writes are serialised).
    pub max_connections: u32,
    /// How long a statement waits for SQLite's write lock before the store
    /// reports itself overloaded.
    pub busy_timeout: Duration,
    /// Settings of the observation engine.
    pub tsdb: panorama_tsdb::Options,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        Self {
            max_connections: 4,
            busy_timeout: Duration::from_secs(5),
            tsdb: panorama_tsdb::Options::default(),
        }
    }
}

/// The embedded store over one data directory.
pub struct SqliteStore {
    dir: PathBuf,
    pool: SqlitePool,
    /// The observation engine; None once closed. Taken out on close so its
    /// own lock is released even while this store value lives on.
    tsdb: RwLock<Option<Arc<Tsdb>>>,
    catalog: RwLock<Catalog>,
    /// Serialises write transactions, so a transaction that reads before it
    /// writes never meets SQLITE_BUSY and the catalog follows commit order.
    write: tokio::sync::Mutex<()>,
    /// The locked `panorama.lock`; None once closed.
    lock: Mutex<Option<File>>,
    /// Sessions already looked up, so requests do not query SQLite each time.
    sessions: accounts::SessionCache,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens the store in `data_dir`, creating and migrating it as needed.
    ///
    /// Fails with [`StoreError::Locked`] if another store has the dir open,
    /// and with [`StoreError::TooNew`] (changing nothing) if a newer Panorama
    /// wrote it. A data dir without domains is seeded with
    /// [`panorama_core::seed_domains`].
    pub async fn open(data_dir: &Path, opts: SqliteOptions) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::Backend(format!(
                "cannot create the data dir {}: {e}",
                data_dir.display()
            ))
        })?;
        let lock = lock_dir(data_dir)?;
        let connect = SqliteConnectOptions::new()
            .filename(data_dir.join(DB_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(opts.busy_timeout);
        let pool = SqlitePoolOptions::new()
            .max_connections(opts.max_connections.max(1))
            .connect_with(connect)
            .await
            .map_err(|e| {
                StoreError::Backend(format!(
                    "cannot open {}: {e}",
                    data_dir.join(DB_FILE).display()
                ))
            })?;
        match Self::open_with(data_dir, opts, pool.clone(), lock).await {
            Ok(store) => Ok(store),
            Err(e) => {
                pool.close().await;
                Err(e)
            }
        }
    }

    async fn open_with(
        dir: &Path,
        opts: SqliteOptions,
        pool: SqlitePool,
        lock: File,
    ) -> StoreResult<SqliteStore> {
        schema::migrate(&pool, dir).await?;
        let obs = dir.join(OBS_DIR);
        let tsdb = tokio::task::spawn_blocking(move || Tsdb::open(&obs, opts.tsdb))
            .await
            .map_err(|e| StoreError::Backend(format!("opening the observation store: {e}")))?
            .map_err(|e| match e {
                panorama_tsdb::TsdbError::TooNew { found, supported } => StoreError::TooNew {
                    path: dir.join(OBS_DIR).display().to_string(),
                    found: i64::from(found),
                    supported: i64::from(supported),
                },
                e => StoreError::Backend(format!(
                    "opening the observation store in {}: {e}",
                    dir.join(OBS_DIR).display()
                )),
            })?;
        let catalog = match Catalog::load(&pool).await {
            Ok(c) => c,
            Err(e) => {
                let _ = tsdb.close().await;
                return Err(e);
            }
        };
        let store = SqliteStore {
            dir: dir.to_path_buf(),
            pool,
            tsdb: RwLock::new(Some(Arc::new(tsdb))),
            catalog: RwLock::new(catalog),
            write: tokio::sync::Mutex::new(()),
            lock: Mutex::new(Some(lock)),
            sessions: accounts::SessionCache::default(),
        };
        if let Err(e) = store.seed().await {
            let _ = store.close().await;
            return Err(e);
        }
        Ok(store)
    }

    /// Gives a new data dir the domains every IOC monitors. Keyed on an
    /// empty table rather than on "just created", so a crash right after
    /// creating the schema still seeds on the next open.
    async fn seed(&self) -> StoreResult<()> {
        let domains: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM domains")
            .fetch_one(&self.pool)
            .await
            .map_err(sql_ctx("reading domains"))?;
        if domains == 0 {
            self.upsert_domains(&panorama_core::seed_domains()).await?;
        }
        Ok(())
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.dir
    }

    /// Reads the catalog, surviving a poisoned lock (the catalog is replaced
    /// whole per entity, so it is never half-updated).
    fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn catalog_mut(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The observation engine, unless the store is closed.
    fn tsdb(&self) -> StoreResult<Arc<Tsdb>> {
        self.tsdb
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
            .ok_or_else(|| StoreError::Backend("the store is closed".into()))
    }

    /// Starts a write transaction, holding the store's write lock until it ends.
    async fn begin_write(&self) -> StoreResult<WriteTx<'_>> {
        let guard = self.write.lock().await;
        let tx = self
            .pool
            .begin_with("BEGIN IMMEDIATE")
            .await
            .map_err(sql_ctx("starting a transaction"))?;
        Ok(WriteTx { tx, _guard: guard })
    }

    async fn health_now(&self) -> StoreHealth {
        let mut problems = Vec::new();
        let count = |sql: &'static str| async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(&self.pool)
                .await
        };
        let entities = match count("SELECT COUNT(*) FROM entities").await {
            Ok(n) => codec::count_from(n),
            Err(e) => {
                problems.push(format!("cannot read the database: {e}"));
                0
            }
        };
        let series = count("SELECT COUNT(*) FROM series")
            .await
            .map(codec::count_from)
            .unwrap_or(0);
        let stats = match self.tsdb() {
            Ok(tsdb) => tsdb.stats(),
            Err(e) => {
                problems.push(e.to_string());
                panorama_tsdb::TsdbStats::default()
            }
        };
        if let Some(e) = stats.last_error {
            problems.push(format!("observation store: {e}"));
        }
        let dir = self.dir.clone();
        let disk_bytes = tokio::task::spawn_blocking(move || dir_size(&dir))
            .await
            .ok()
            .flatten();
        StoreHealth {
            backend: "sqlite".into(),
            entities,
            series,
            observations_appended: stats.points_appended,
            disk_bytes,
            problems,
        }
    }

    async fn close_now(&self) -> StoreResult<()> {
        let tsdb = self
            .tsdb
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        let tsdb = match tsdb {
            Some(tsdb) => tsdb
                .close()
                .await
                .map_err(|e| StoreError::Backend(format!("closing the observation store: {e}"))),
            None => Ok(()),
        };
        self.pool.close().await;
        // Dropping the file releases the lock, so the dir can be opened again.
        drop(
            self.lock
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .take(),
        );
        tsdb
    }
}

/// A write transaction and the store's write lock.
struct WriteTx<'a> {
    tx: sqlx::Transaction<'static, sqlx::Sqlite>,
    _guard: tokio::sync::MutexGuard<'a, ()>,
}

impl WriteTx<'_> {
    async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.map_err(sql_ctx("committing"))
    }
}

/// Takes the exclusive lock on `<dir>/panorama.lock`.
fn lock_dir(dir: &Path) -> StoreResult<File> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(StoreError::Locked(dir.display().to_string()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Backend(format!(
            "cannot lock {}: {e}",
            path.display()
        ))),
    }
}

/// Bytes of every file under `dir`; None if it cannot be read.
fn dir_size(dir: &Path) -> Option<u64> {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()? {
            let entry = entry.ok()?;
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                stack.push(entry.path());
            } else {
                total += meta.len();
            }
        }
    }
    Some(total)
}

#[async_trait]
impl Store for SqliteStore {
    async fn upsert_admin_units(&self, units: &[AdminUnit]) -> StoreResult<()> {
        self.upsert_admin_units_impl(units).await
    }
    async fn admin_units(&self) -> StoreResult<Vec<AdminUnit>> {
        self.admin_units_impl().await
    }
    async fn upsert_domains(&self, domains: &[Domain]) -> StoreResult<()> {
        self.upsert_domains_impl(domains).await
    }
    async fn domains(&self) -> StoreResult<Vec<Domain>> {
        self.domains_impl().await
    }
    async fn upsert_agencies(&self, agencies: &[Agency]) -> StoreResult<()> {
        self.upsert_agencies_impl(agencies).await
    }
    async fn agencies(&self) -> StoreResult<Vec<Agency>> {
        self.agencies_impl().await
    }

    async fn upsert_entities(
        &self,
        entities: &[Entity],
        at: Timestamp,
    ) -> StoreResult<UpsertCount> {
        self.upsert_entities_impl(entities, at).await
    }
    async fn entity(&self, id: &str) -> StoreResult<Option<Entity>> {
        self.entity_impl(id).await
    }
    async fn query_entities(&self, q: &EntityQuery) -> StoreResult<Page<Entity>> {
        self.query_entities_impl(q).await
    }

    async fn append_observations(&self, obs: Vec<Observation>) -> StoreResult<Appended> {
        self.append_observations_impl(obs).await
    }
    async fn latest(&self, entities: &[String]) -> StoreResult<Vec<LatestValue>> {
        self.latest_impl(entities)
    }
    async fn latest_matching(&self, q: &EntityQuery) -> StoreResult<Page<LatestValue>> {
        self.latest_matching_impl(q).await
    }
    async fn series(&self, q: &SeriesQuery) -> StoreResult<SeriesData> {
        self.series_impl(q).await
    }
    async fn grouped_series(&self, q: &GroupedSeriesQuery) -> StoreResult<Vec<GroupSeries>> {
        self.grouped_series_impl(q).await
    }

    async fn upsert_indicators(&self, indicators: &[Indicator]) -> StoreResult<()> {
        self.upsert_indicators_impl(indicators).await
    }
    async fn indicators(&self, domain: Option<&str>) -> StoreResult<Vec<Indicator>> {
        self.indicators_impl(domain).await
    }
    async fn indicator(&self, code: &str) -> StoreResult<Option<Indicator>> {
        self.indicator_impl(code).await
    }
    async fn submit_indicator_values(
        &self,
        values: &[IndicatorValueInput],
        submitted_by: &str,
        at: Timestamp,
    ) -> StoreResult<Vec<IndicatorValue>> {
        self.submit_indicator_values_impl(values, submitted_by, at)
            .await
    }
    async fn indicator_values(&self, q: &IndicatorValueQuery) -> StoreResult<Vec<IndicatorValue>> {
        self.indicator_values_impl(q).await
    }
    async fn indicator_value_history(
        &self,
        indicator: &str,
        period: &str,
        admin_unit: &str,
    ) -> StoreResult<Vec<IndicatorValue>> {
        self.indicator_value_history_impl(indicator, period, admin_unit)
            .await
    }

    async fn create_source(&self, source: &Source, token_sha256: &[u8; 32]) -> StoreResult<()> {
        self.create_source_impl(source, token_sha256).await
    }
    async fn source_by_token(&self, token_sha256: &[u8; 32]) -> StoreResult<Option<Source>> {
        self.source_by_token_impl(token_sha256).await
    }
    async fn sources(&self) -> StoreResult<Vec<Source>> {
        self.sources_impl().await
    }
    async fn record_source_activity(&self, id: &str, activity: &SourceActivity) -> StoreResult<()> {
        self.record_source_activity_impl(id, activity).await
    }

    async fn create_user(&self, user: &User, password_hash: &str) -> StoreResult<()> {
        self.create_user_impl(user, password_hash).await
    }
    async fn user_with_hash(&self, username: &str) -> StoreResult<Option<(User, String)>> {
        self.user_with_hash_impl(username).await
    }
    async fn users(&self) -> StoreResult<Vec<User>> {
        self.users_impl().await
    }
    async fn create_session(
        &self,
        token_sha256: &[u8; 32],
        username: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        self.create_session_impl(token_sha256, username, expires_at)
            .await
    }
    async fn session_user(
        &self,
        token_sha256: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        self.session_user_impl(token_sha256, now).await
    }
    async fn delete_session(&self, token_sha256: &[u8; 32]) -> StoreResult<()> {
        self.delete_session_impl(token_sha256).await
    }

    async fn health(&self) -> StoreHealth {
        self.health_now().await
    }
    async fn close(&self) -> StoreResult<()> {
        self.close_now().await
    }
    fn as_ops(self: Arc<Self>) -> Option<panorama_store::SharedOpsStore> {
        Some(self)
    }
    fn as_ld(self: Arc<Self>) -> Option<panorama_store::SharedLdStore> {
        Some(self)
    }
    fn as_ld_subscriptions(self: Arc<Self>) -> Option<panorama_store::SharedLdSubscriptionStore> {
        Some(self)
    }
}
