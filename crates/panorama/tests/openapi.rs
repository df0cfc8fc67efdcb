//! The OpenAPI document matches the real routes and the committed copy.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use panorama_testkit::TestServer;
use serde_json::Value;

#[tokio::test]
async fn every_documented_operation_reaches_a_real_handler() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let r = srv.http.get(srv.url("/api/v1/openapi.json")).send().await?;
    assert_eq!(r.status(), 200);
    let doc: Value = r.json().await?;
    assert_eq!(
        doc["openapi"].as_str().map(|v| v.starts_with("3.1")),
        Some(true)
    );
    let paths = doc["paths"].as_object().unwrap();
    assert!(paths.len() >= 20, "only {} paths documented", paths.len());
    let mut checked = 0;
    for (path, ops) in paths {
        let concrete = path
            .replace("{id}", "urn:ngsi-ld:X:1")
            .replace("{code}", "74");
        for method in ops.as_object().unwrap().keys() {
            let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes())?;
            let r = srv.http.request(m, srv.url(&concrete)).send().await?;
            let status = r.status().as_u16();
            let body = r.text().await?;
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !body.contains("no route for"),
                "{method} {path} is documented but not routed"
            );
            // Without credentials, everything but health answers 401.
            if path != "/api/v1/health" && path != "/api/v1/auth/login" {
                assert_eq!(
                    status, 401,
                    "{method} {path} must require credentials: {body}"
                );
            }
            checked += 1;
        }
    }
    assert!(checked >= 25);
    Ok(())
}

#[test]
fn the_committed_openapi_document_is_current() {
    let generated = panorama_api::openapi().to_pretty_json().unwrap() + "\n";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
    if std::env::var_os("PANORAMA_UPDATE_OPENAPI").is_some() {
        std::fs::write(path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is out of date; regenerate it with PANORAMA_UPDATE_OPENAPI=1 cargo test -p panorama --test openapi"
    );
}
