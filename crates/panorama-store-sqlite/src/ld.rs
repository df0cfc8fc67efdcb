//! NGSI-LD documents, one row per entity (a NULL doc is a tombstone).

use crate::SqliteStore;
use crate::codec::{ts, ts_from};
use crate::error::sql_ctx;
use async_trait::async_trait;
use panorama_store::{LdDocument, LdStore, StoreError, StoreResult};

#[derive(sqlx::FromRow)]
struct LdRow {
    id: String,
    doc: Option<String>,
    created_at: i64,
    modified_at: i64,
}

impl LdRow {
    fn into_document(self) -> StoreResult<LdDocument> {
        let doc = match &self.doc {
            Some(d) => Some(serde_json::from_str(d).map_err(|e| {
                StoreError::Backend(format!("NGSI-LD document '{}' is broken: {e}", self.id))
            })?),
            None => None,
        };
        Ok(LdDocument {
            created_at: ts_from(self.created_at)?,
            modified_at: ts_from(self.modified_at)?,
            id: self.id,
            doc,
        })
    }
}

#[async_trait]
impl LdStore for SqliteStore {
    async fn ld_document(&self, id: &str) -> StoreResult<Option<LdDocument>> {
        let row: Option<LdRow> = sqlx::query_as(
            "SELECT id, doc, created_at, modified_at FROM ngsild_entities WHERE id = ?",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await
        .map_err(sql_ctx("reading an NGSI-LD document"))?;
        row.map(LdRow::into_document).transpose()
    }

    async fn ld_documents(&self) -> StoreResult<Vec<LdDocument>> {
        let rows: Vec<LdRow> = sqlx::query_as(
            "SELECT id, doc, created_at, modified_at FROM ngsild_entities ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(sql_ctx("listing NGSI-LD documents"))?;
        rows.into_iter().map(LdRow::into_document).collect()
    }

    async fn put_ld_documents(&self, docs: &[LdDocument]) -> StoreResult<()> {
        let mut w = self.begin_write().await?;
        for d in docs {
            sqlx::query(
                "INSERT INTO ngsild_entities (id, doc, created_at, modified_at) VALUES (?, ?, ?, ?)
                 ON CONFLICT (id) DO UPDATE SET doc = excluded.doc,
                 created_at = excluded.created_at, modified_at = excluded.modified_at",
            )
            .bind(&d.id)
            .bind(d.doc.as_ref().map(|v| v.to_string()))
            .bind(ts(d.created_at))
            .bind(ts(d.modified_at))
            .execute(&mut *w.tx)
            .await
            .map_err(sql_ctx("writing an NGSI-LD document"))?;
        }
        w.commit().await
    }
}
