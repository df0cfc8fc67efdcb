//! What the NGSI-LD test files share: a gate that lets one source token in.

use async_trait::async_trait;
use axum::http::HeaderMap;
use panorama_ngsild::{NgsiError, NgsiResult, Writer};

/// The only credential the test gate accepts, as an Authorization header.
pub const TOKEN: &str = "Bearer pns_test";

/// Reads and writes with [`TOKEN`] only, as the source `test`.
#[derive(Debug)]
pub struct TestGate;

#[async_trait]
impl panorama_ngsild::Gate for TestGate {
    async fn reader(&self, h: &HeaderMap) -> NgsiResult<()> {
        self.writer(h).await.map(|_| ())
    }
    async fn writer(&self, h: &HeaderMap) -> NgsiResult<Writer> {
        match h.get("authorization").and_then(|v| v.to_str().ok()) {
            Some(TOKEN) => Ok(Writer {
                source: "test".into(),
                domain: None,
            }),
            _ => Err(NgsiError::Unauthorized("a source token is needed".into())),
        }
    }
}
