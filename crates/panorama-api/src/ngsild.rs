//! Mounting the NGSI-LD API: its state from [`AppState`], and the same
//! credentials as `/api/v1` (source tokens write; sessions or source
//! tokens read).

use crate::AppState;
use crate::auth::{
    SESSION_COOKIE, SESSION_TOKEN_PREFIX, SOURCE_TOKEN_PREFIX, bearer_in, cookie_in, token_hash,
};
use async_trait::async_trait;
use axum::http::HeaderMap;
use panorama_core::{Clock, Source, SourceKind};
use panorama_ngsild::{Anonymous, Gate, NgsiError, NgsiResult, NgsiState, Writer};
use panorama_store::SharedStore;
use std::sync::Arc;

/// Credentials for NGSI-LD, checked against the store like `/api/v1`'s.
#[derive(Debug)]
pub struct ApiGate {
    store: SharedStore,
    clock: Arc<dyn Clock>,
}

impl ApiGate {
    async fn source(&self, token: &str) -> NgsiResult<Option<Source>> {
        Ok(self.store.source_by_token(&token_hash(token)).await?)
    }
}

#[async_trait]
impl Gate for ApiGate {
    async fn reader(&self, headers: &HeaderMap) -> NgsiResult<()> {
        let bearer = bearer_in(headers);
        if let Some(t) = bearer.filter(|t| t.starts_with(SOURCE_TOKEN_PREFIX)) {
            return match self.source(t).await? {
                Some(_) => Ok(()),
                None => Err(NgsiError::Unauthorized(
                    "the source token is not valid".into(),
                )),
            };
        }
        let session = cookie_in(headers, SESSION_COOKIE)
            .or_else(|| bearer.filter(|t| t.starts_with(SESSION_TOKEN_PREFIX)));
        let Some(token) = session else {
            return Err(NgsiError::Unauthorized(
                "reads need a session (sign in) or 'Authorization: Bearer <source token>'".into(),
            ));
        };
        match self
            .store
            .session_user(&token_hash(token), self.clock.now())
            .await?
        {
            Some(_) => Ok(()),
            None => Err(NgsiError::Unauthorized(
                "the session has expired or is not valid; sign in again".into(),
            )),
        }
    }

    async fn writer(&self, headers: &HeaderMap) -> NgsiResult<Writer> {
        let Some(token) = bearer_in(headers) else {
            return Err(NgsiError::Unauthorized(
                "writes need 'Authorization: Bearer <source token>' (create one with `panorama source add`)".into(),
            ));
        };
        if !token.starts_with(SOURCE_TOKEN_PREFIX) {
            return Err(NgsiError::Unauthorized(
                "the bearer token is not a source token".into(),
            ));
        }
        match self.source(token).await? {
            Some(s) => Ok(Writer {
                source: s.id,
                domain: s.domain,
            }),
            None => Err(NgsiError::Unauthorized(
                "the source token is not valid".into(),
            )),
        }
    }
}

/// The NGSI-LD state over the same pipeline, store and clock.
pub fn state(app: &AppState) -> NgsiState {
    let gate = Arc::new(ApiGate {
        store: app.store().clone(),
        clock: app.clock.clone(),
    });
    let mut s = NgsiState::new(
        app.ingest.clone(),
        app.clock.clone(),
        gate,
        app.config.ngsild.clone(),
    );
    s.max_body_bytes = app.config.max_body_bytes;
    s
}

/// Registers the source anonymous NGSI-LD writes are recorded as, when
/// anonymous writing is on and the source does not exist yet. Its token is
/// random and never shown: nobody can write as it with credentials.
pub async fn ensure_anonymous_source(
    store: &SharedStore,
    config: &panorama_ngsild::NgsiConfig,
    clock: &dyn Clock,
) -> Result<(), String> {
    if config.anonymous != Anonymous::ReadWrite {
        return Ok(());
    }
    let sources = store.sources().await.map_err(|e| e.to_string())?;
    if sources.iter().any(|s| s.id == config.anonymous_source) {
        return Ok(());
    }
    let source = Source {
        id: config.anonymous_source.clone(),
        name: "NGSI-LD (anonymous)".into(),
        kind: SourceKind::NgsiLd,
        owner_agency: None,
        domain: None,
        expected_interval_secs: 86_400,
        created_at: clock.now(),
        last_seen_at: None,
        accepted: 0,
        rejected: 0,
        last_error: None,
        connector: None,
    };
    let token = crate::auth::new_token(SOURCE_TOKEN_PREFIX);
    store
        .create_source(&source, &token_hash(&token))
        .await
        .map_err(|e| e.to_string())
}
