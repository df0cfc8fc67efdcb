//! The web console is served by the same binary as the API: client routes
//! get index.html, assets their content types and caching, and the API and
//! metrics keep their own answers.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use panorama_testkit::TestServer;

#[tokio::test]
async fn client_routes_get_the_console_and_api_paths_never_do() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    for path in [
        "/",
        "/wall",
        "/map",
        "/explorer",
        "/login",
        "/domains/health",
    ] {
        let r = srv.http.get(srv.url(path)).send().await?;
        assert_eq!(r.status(), 200, "{path}");
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string();
        assert!(ct.starts_with("text/html"), "{path}: {ct}");
        let body = r.text().await?;
        assert!(body.contains("<html"), "{path}");
    }
    let r = srv.http.get(srv.url("/api/v1/nowhere")).send().await?;
    assert_eq!(r.status(), 404);
    let ct = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    assert!(ct.contains("problem+json"), "{ct}");
    let r = srv.http.get(srv.url("/metrics")).send().await?;
    assert!(!r.text().await?.contains("<html"));
    Ok(())
}

#[tokio::test]
async fn assets_are_typed_cached_and_compressed() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let index = srv.http.get(srv.url("/")).send().await?.text().await?;
    // Built with PANORAMA_WEB_SKIP=1 and no UI: the notice has no scripts.
    let Some(src) = index
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
    else {
        return Ok(());
    };
    let r = srv
        .http
        .get(srv.url(src))
        .header("accept-encoding", "gzip")
        .send()
        .await?;
    assert_eq!(r.status(), 200, "{src}");
    let h = r.headers();
    assert_eq!(
        h.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(
        h.get("content-encoding").and_then(|v| v.to_str().ok()),
        Some("gzip")
    );
    assert!(
        h.get("cache-control")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .contains("immutable")
    );
    Ok(())
}
