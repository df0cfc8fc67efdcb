//! NGSI-LD subscriptions, one row per subscription.

use crate::SqliteStore;
use crate::codec::{ts, ts_from};
use crate::error::sql_ctx;
use async_trait::async_trait;
use panorama_store::{LdSubscription, LdSubscriptionStore, StoreError, StoreResult};

#[derive(sqlx::FromRow)]
struct SubRow {
    id: String,
    doc: String,
    created_at: i64,
    modified_at: i64,
}

impl SubRow {
    fn into_subscription(self) -> StoreResult<LdSubscription> {
        let doc = serde_json::from_str(&self.doc).map_err(|e| {
            StoreError::Backend(format!("NGSI-LD subscription '{}' is broken: {e}", self.id))
        })?;
        Ok(LdSubscription {
            created_at: ts_from(self.created_at)?,
            modified_at: ts_from(self.modified_at)?,
            id: self.id,
            doc,
        })
    }
}

#[async_trait]
impl LdSubscriptionStore for SqliteStore {
    async fn ld_subscription(&self, id: &str) -> StoreResult<Option<LdSubscription>> {
        let row: Option<SubRow> = sqlx::query_as(
            "SELECT id, doc, created_at, modified_at FROM ngsild_subscriptions WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_ctx("reading an NGSI-LD subscription"))?;
        row.map(SubRow::into_subscription).transpose()
    }

    async fn ld_subscriptions(&self) -> StoreResult<Vec<LdSubscription>> {
        let rows: Vec<SubRow> = sqlx::query_as(
            "SELECT id, doc, created_at, modified_at FROM ngsild_subscriptions ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("listing NGSI-LD subscriptions"))?;
        rows.into_iter().map(SubRow::into_subscription).collect()
    }

    async fn put_ld_subscription(&self, sub: &LdSubscription) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO ngsild_subscriptions (id, doc, created_at, modified_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (id) DO UPDATE SET doc = excluded.doc,
             created_at = excluded.created_at, modified_at = excluded.modified_at",
        )
        .bind(&sub.id)
        .bind(sub.doc.to_string())
        .bind(ts(sub.created_at))
        .bind(ts(sub.modified_at))
        .execute(&mut *w.tx)
        .await
        .map_err(sql_ctx("writing an NGSI-LD subscription"))?;
        w.commit().await
    }

    async fn delete_ld_subscription(&self, id: &str) -> StoreResult<bool> {
        let mut w = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM ngsild_subscriptions WHERE id = ?")
            .bind(id)
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("deleting an NGSI-LD subscription"))?;
        w.commit().await?;
        Ok(done.rows_affected() > 0)
    }
}
