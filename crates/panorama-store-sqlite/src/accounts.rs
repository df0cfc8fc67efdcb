//! Sources (feeds), users and sessions.

use crate::SqliteStore;
use crate::codec::{count_from, count_to_db, opt_ts_from, parsed, ts, ts_from};
use crate::error::{is_unique_violation, sql, sql_ctx};
use crate::reference::check;
use crate::refs::{Ref, Refs};
use panorama_core::error::check_code;
use panorama_core::{FieldError, Role, Source, SourceKind, Timestamp, User};
use panorama_store::{SourceActivity, StoreError, StoreResult};

const SOURCE_COLUMNS: &str =
    "SELECT id, name, kind, owner_agency, domain, expected_interval_secs, created_at,
    last_seen_at, accepted, rejected, last_error, connector FROM sources";

/// Longest last-error message kept for a source.
const MAX_ERROR_CHARS: usize = 1000;

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: String,
    name: String,
    kind: String,
    owner_agency: Option<String>,
    domain: Option<String>,
    expected_interval_secs: i64,
    created_at: i64,
    last_seen_at: Option<i64>,
    accepted: i64,
    rejected: i64,
    last_error: Option<String>,
    connector: Option<String>,
}

impl SourceRow {
    fn into_source(self) -> StoreResult<Source> {
        let connector = match &self.connector {
            Some(c) => Some(serde_json::from_str(c).map_err(|e| {
                StoreError::Backend(format!("source '{}' has a broken connector: {e}", self.id))
            })?),
            None => None,
        };
        Ok(Source {
            kind: parsed("source kind", &self.kind, SourceKind::parse)?,
            expected_interval_secs: count_from(self.expected_interval_secs),
            created_at: ts_from(self.created_at)?,
            last_seen_at: opt_ts_from(self.last_seen_at)?,
            accepted: count_from(self.accepted),
            rejected: count_from(self.rejected),
            id: self.id,
            name: self.name,
            owner_agency: self.owner_agency,
            domain: self.domain,
            last_error: self.last_error,
            connector,
        })
    }
}

#[derive(sqlx::FromRow)]
struct UserRow {
    username: String,
    display_name: String,
    role: String,
    agency: Option<String>,
    created_at: i64,
}

#[derive(sqlx::FromRow)]
struct SessionRow {
    expires_at: i64,
    #[sqlx(flatten)]
    user: UserRow,
}

/// A session as kept in memory by [`SessionCache`].
#[derive(Debug, Clone)]
struct CachedSession {
    user: User,
    expires_at: Timestamp,
}

impl CachedSession {
    fn valid_at(&self, now: Timestamp) -> Option<User> {
        (self.expires_at > now).then(|| self.user.clone())
    }
}

/// Sessions looked up since open, by token hash; at most [`MAX_CACHED_SESSIONS`].
#[derive(Debug, Default)]
pub(crate) struct SessionCache {
    inner: std::sync::Mutex<CacheInner>,
}

#[derive(Debug, Default)]
struct CacheInner {
    map: std::collections::HashMap<[u8; 32], CachedSession>,
    /// Counts session deletions, so a lookup that read SQLite before a
    /// logout finished does not put the ended session back.
    deletions: u64,
}

/// Sessions kept in memory at most; past it, expired ones are dropped, and
/// if that is not enough, all (they are read again from SQLite when used).
const MAX_CACHED_SESSIONS: usize = 10_000;

impl SessionCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The cached session, or the deletion count to hand to [`Self::insert`].
    fn get(&self, token_sha256: &[u8; 32]) -> Result<CachedSession, u64> {
        let inner = self.lock();
        inner.map.get(token_sha256).cloned().ok_or(inner.deletions)
    }

    fn insert(&self, token_sha256: [u8; 32], session: CachedSession, seen: u64, now: Timestamp) {
        let mut inner = self.lock();
        if inner.deletions != seen {
            return;
        }
        if inner.map.len() >= MAX_CACHED_SESSIONS {
            inner.map.retain(|_, s| s.expires_at > now);
            if inner.map.len() >= MAX_CACHED_SESSIONS {
                inner.map.clear();
            }
        }
        inner.map.insert(token_sha256, session);
    }

    fn remove(&self, token_sha256: &[u8; 32]) {
        let mut inner = self.lock();
        inner.deletions += 1;
        inner.map.remove(token_sha256);
    }
}

impl UserRow {
    fn into_user(self) -> StoreResult<User> {
        Ok(User {
            role: parsed("role", &self.role, Role::parse)?,
            created_at: ts_from(self.created_at)?,
            username: self.username,
            display_name: self.display_name,
            agency: self.agency,
        })
    }
}

impl SqliteStore {
    pub(crate) async fn create_source_impl(
        &self,
        s: &Source,
        token_sha256: &[u8; 32],
    ) -> StoreResult<()> {
        s.validate()?;
        let mut w = self.begin_write().await?;
        let mut refs = Refs::default();
        let mut errs = Vec::new();
        if let Some(a) = &s.owner_agency
            && !refs.exists(&mut w.tx, Ref::Agency, a).await?
        {
            errs.push(FieldError::new("owner_agency", Ref::Agency.unknown(a)));
        }
        if let Some(d) = &s.domain
            && !refs.exists(&mut w.tx, Ref::Domain, d).await?
        {
            errs.push(FieldError::new("domain", Ref::Domain.unknown(d)));
        }
        check(errs)?;
        let taken: Option<String> =
            sqlx::query_scalar("SELECT id FROM sources WHERE id = ? OR token_sha256 = ?")
                .bind(&s.id)
                .bind(&token_sha256[..])
                .fetch_optional(&mut *w.tx)
                .await
                .map_err(sql_ctx("reading sources"))?;
        match taken {
            Some(id) if id == s.id => {
                return Err(StoreError::Conflict(format!(
                    "source '{}' already exists",
                    s.id
                )));
            }
            Some(_) => {
                return Err(StoreError::Conflict(
                    "another source already uses this token".into(),
                ));
            }
            None => {}
        }
        sqlx::query(
            "INSERT INTO sources (id, name, kind, owner_agency, domain, expected_interval_secs, token_sha256,
               created_at, last_seen_at, accepted, rejected, last_error, connector)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&s.id)
        .bind(&s.name)
        .bind(s.kind.as_str())
        .bind(&s.owner_agency)
        .bind(&s.domain)
        .bind(count_to_db(s.expected_interval_secs))
        .bind(&token_sha256[..])
        .bind(ts(s.created_at))
        .bind(s.last_seen_at.map(ts))
        .bind(count_to_db(s.accepted))
        .bind(count_to_db(s.rejected))
        .bind(&s.last_error)
        .bind(s.connector.as_ref().map(|c| c.to_string()))
        .execute(&mut *w.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("source '{}' already exists", s.id))
            } else {
                sql("writing a source", e)
            }
        })?;
        w.commit().await
    }

    pub(crate) async fn source_by_token_impl(
        &self,
        token_sha256: &[u8; 32],
    ) -> StoreResult<Option<Source>> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(SOURCE_COLUMNS);
        qb.push(" WHERE token_sha256 = ")
            .push_bind(token_sha256.to_vec());
        let row: Option<SourceRow> = qb
            .build_query_as()
            .fetch_optional(&self.pool)
            .await
            .map_err(sql_ctx("reading a source"))?;
        row.map(SourceRow::into_source).transpose()
    }

    pub(crate) async fn sources_impl(&self) -> StoreResult<Vec<Source>> {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(SOURCE_COLUMNS);
        qb.push(" ORDER BY id");
        let rows: Vec<SourceRow> = qb
            .build_query_as()
            .fetch_all(&self.pool)
            .await
            .map_err(sql_ctx("reading sources"))?;
        rows.into_iter().map(SourceRow::into_source).collect()
    }

    pub(crate) async fn record_source_activity_impl(
        &self,
        id: &str,
        a: &SourceActivity,
    ) -> StoreResult<()> {
        let last_error = a
            .last_error
            .as_deref()
            .map(|e| e.chars().take(MAX_ERROR_CHARS).collect::<String>());
        // The last-seen time moves only with accepted data, and never back.
        let seen = if a.accepted > 0 { a.at.map(ts) } else { None };
        let updated = sqlx::query(
            "UPDATE sources SET accepted = accepted + ?, rejected = rejected + ?,
               last_seen_at = CASE WHEN ?3 IS NULL THEN last_seen_at
                                   WHEN last_seen_at IS NULL OR last_seen_at < ?3 THEN ?3
                                   ELSE last_seen_at END,
               last_error = COALESCE(?4, last_error)
             WHERE id = ?5",
        )
        .bind(count_to_db(a.accepted))
        .bind(count_to_db(a.rejected))
        .bind(seen)
        .bind(last_error)
        .bind(id)
        .execute(&self.pool)
        .await
        .map_err(sql_ctx("recording source activity"))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound {
                what: "source",
                key: id.to_string(),
            });
        }
        Ok(())
    }

    pub(crate) async fn create_user_impl(&self, u: &User, password_hash: &str) -> StoreResult<()> {
        u.validate()?;
        let mut errs = Vec::new();
        if let Some(a) = &u.agency {
            errs.extend(check_code("agency", a).err());
        }
        if password_hash.is_empty() || !password_hash.starts_with('$') {
            errs.push(FieldError::new(
                "password_hash",
                "must be a PHC string such as $argon2id$…",
            ));
        }
        check(errs)?;
        let mut w = self.begin_write().await?;
        let mut refs = Refs::default();
        if let Some(a) = &u.agency
            && !refs.exists(&mut w.tx, Ref::Agency, a).await?
        {
            return Err(StoreError::Invalid(
                FieldError::new("agency", Ref::Agency.unknown(a)).into(),
            ));
        }
        sqlx::query(
            "INSERT INTO users (username, display_name, role, agency, created_at, password_hash)
             VALUES (?, ?, ?, ?, ?, ?)",
        )
        .bind(&u.username)
        .bind(&u.display_name)
        .bind(u.role.as_str())
        .bind(&u.agency)
        .bind(ts(u.created_at))
        .bind(password_hash)
        .execute(&mut *w.tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!("user '{}' already exists", u.username))
            } else {
                sql("writing a user", e)
            }
        })?;
        w.commit().await
    }

    pub(crate) async fn user_with_hash_impl(
        &self,
        username: &str,
    ) -> StoreResult<Option<(User, String)>> {
        let row: Option<(String, String, String, Option<String>, i64, String)> = sqlx::query_as(
            "SELECT username, display_name, role, agency, created_at, password_hash FROM users WHERE username = ?",
        )
        .bind(username)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_ctx("reading a user"))?;
        row.map(|(username, display_name, role, agency, created_at, hash)| {
            Ok((
                UserRow {
                    username,
                    display_name,
                    role,
                    agency,
                    created_at,
                }
                .into_user()?,
                hash,
            ))
        })
        .transpose()
    }

    pub(crate) async fn users_impl(&self) -> StoreResult<Vec<User>> {
        let rows: Vec<UserRow> = sqlx::query_as(
            "SELECT username, display_name, role, agency, created_at FROM users ORDER BY username",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("reading users"))?;
        rows.into_iter().map(UserRow::into_user).collect()
    }

    pub(crate) async fn create_session_impl(
        &self,
        token_sha256: &[u8; 32],
        username: &str,
        expires_at: Timestamp,
    ) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        let mut refs = Refs::default();
        if !refs.exists(&mut w.tx, Ref::User, username).await? {
            return Err(StoreError::NotFound {
                what: "user",
                key: username.to_string(),
            });
        }
        sqlx::query("INSERT INTO sessions (token_sha256, username, expires_at) VALUES (?, ?, ?)")
            .bind(&token_sha256[..])
            .bind(username)
            .bind(ts(expires_at))
            .execute(&mut *w.tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("a session with this token already exists".into())
                } else {
                    sql("writing a session", e)
                }
            })?;
        w.commit().await
    }

    pub(crate) async fn session_user_impl(
        &self,
        token_sha256: &[u8; 32],
        now: Timestamp,
    ) -> StoreResult<Option<User>> {
        // Every authenticated request asks this, so sessions found once are
        // kept in memory with their expiry. This store is the only writer of
        // its data dir (the lock file), sessions change only through it, and
        // users are never edited or removed, so the copy cannot go stale.
        let seen = match self.sessions.get(token_sha256) {
            Ok(found) => return Ok(found.valid_at(now)),
            Err(seen) => seen,
        };
        let row: Option<(i64, UserRow)> = sqlx::query_as::<_, SessionRow>(
            "SELECT s.expires_at, u.username, u.display_name, u.role, u.agency, u.created_at
             FROM sessions s JOIN users u ON u.username = s.username
             WHERE s.token_sha256 = ?",
        )
        .bind(&token_sha256[..])
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_ctx("reading a session"))?
        .map(|r| (r.expires_at, r.user));
        let Some((expires_at, row)) = row else {
            return Ok(None);
        };
        let session = CachedSession {
            user: row.into_user()?,
            expires_at: ts_from(expires_at)?,
        };
        let answer = session.valid_at(now);
        self.sessions.insert(*token_sha256, session, seen, now);
        Ok(answer)
    }

    pub(crate) async fn delete_session_impl(&self, token_sha256: &[u8; 32]) -> StoreResult<()> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = ?")
            .bind(&token_sha256[..])
            .execute(&self.pool)
            .await
            .map_err(sql_ctx("deleting a session"))?;
        self.sessions.remove(token_sha256);
        Ok(())
    }
}
