//! Existence checks for references (domain, admin unit, agency…) inside a
//! write transaction, remembered for the rest of the batch.

use crate::error::sql_ctx;
use panorama_store::StoreResult;
use sqlx::SqliteConnection;
use std::collections::HashMap;

/// A kind of thing another record refers to by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Ref {
    Domain,
    AdminUnit,
    Agency,
    Indicator,
    User,
}

impl Ref {
    fn sql(self) -> &'static str {
        match self {
            Ref::Domain => "SELECT EXISTS (SELECT 1 FROM domains WHERE code = ?)",
            Ref::AdminUnit => "SELECT EXISTS (SELECT 1 FROM admin_units WHERE code = ?)",
            Ref::Agency => "SELECT EXISTS (SELECT 1 FROM agencies WHERE code = ?)",
            Ref::Indicator => "SELECT EXISTS (SELECT 1 FROM indicators WHERE code = ?)",
            Ref::User => "SELECT EXISTS (SELECT 1 FROM users WHERE username = ?)",
        }
    }

    /// How the thing is named in messages.
    pub(crate) fn noun(self) -> &'static str {
        match self {
            Ref::Domain => "domain",
            Ref::AdminUnit => "admin unit",
            Ref::Agency => "agency",
            Ref::Indicator => "indicator",
            Ref::User => "user",
        }
    }

    /// The reason given when a reference is dangling.
    pub(crate) fn unknown(self, key: &str) -> String {
        format!("unknown {} '{key}'", self.noun())
    }
}

/// Answers "does it exist?" once per key and batch.
#[derive(Debug, Default)]
pub(crate) struct Refs {
    known: HashMap<(Ref, String), bool>,
}

impl Refs {
    /// Whether `key` exists in the store.
    pub(crate) async fn exists(
        &mut self,
        conn: &mut SqliteConnection,
        r: Ref,
        key: &str,
    ) -> StoreResult<bool> {
        let k = (r, key.to_string());
        if let Some(&e) = self.known.get(&k) {
            return Ok(e);
        }
        let e: bool = sqlx::query_scalar(r.sql())
            .bind(key)
            .fetch_one(&mut *conn)
            .await
            .map_err(sql_ctx("checking references"))?;
        self.known.insert(k, e);
        Ok(e)
    }
}
