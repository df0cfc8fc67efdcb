//! NGSI-LD on the real server: a FIWARE-style client's write lands in the
//! same store (readable through /api/v1) and arrives on the live stream.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use panorama_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;

const ID: &str = "urn:ngsi-ld:AirQualityObserved:fiware-1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ngsi_ld_write_is_a_panorama_write() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.source("fiware").await?;
    let mut ws = srv.live(&admin).await?;
    ws.send(json!({"op": "subscribe", "id": "aq", "types": ["AirQualityObserved"]}))
        .await?;
    ws.next_of("subscribed", Duration::from_secs(2)).await?;

    let http = reqwest::Client::new();
    let entity = json!({
        "id": ID,
        "type": "AirQualityObserved",
        "name": {"type": "Property", "value": "Trạm Dĩ An"},
        "pm25": {"type": "Property", "value": 35, "unitCode": "GQ"},
        "refDevice": {"type": "Relationship", "object": "urn:ngsi-ld:Device:d1"},
        "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.77, 10.9]}},
        "@context": "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.6.jsonld"
    });
    // Without a source token the write is refused, as on /api/v1.
    let r = http
        .post(srv.url("/ngsi-ld/v1/entities"))
        .header("content-type", "application/ld+json")
        .body(entity.to_string())
        .send()
        .await?;
    assert_eq!(r.status(), 401);
    let r = http
        .post(srv.url("/ngsi-ld/v1/entities"))
        .bearer_auth(&token)
        .header("content-type", "application/ld+json")
        .body(entity.to_string())
        .send()
        .await?;
    assert_eq!(r.status(), 201, "{}", r.text().await?);

    // The value was durable and published before the 201.
    let m = ws.next_of("observations", Duration::from_secs(2)).await?;
    assert_eq!(m["items"][0]["entity"], ID);
    assert_eq!(m["items"][0]["attribute"], "pm25");
    assert_eq!(m["items"][0]["value"], 35.0);
    assert_eq!(m["items"][0]["domain"], "environment");

    let (s, e) = srv.get(&format!("/api/v1/entities/{ID}"), &admin).await?;
    assert_eq!(s, 200, "{e}");
    assert_eq!(e["type"], "AirQualityObserved");
    assert_eq!(e["name"], "Trạm Dĩ An");
    assert_eq!(e["domain"], "environment");
    assert_eq!(e["attributes"]["pm25"]["unit"], "GQ");

    // An update through NGSI-LD is a new observation, live too.
    let r = http
        .patch(srv.url(&format!("/ngsi-ld/v1/entities/{ID}/attrs/pm25")))
        .bearer_auth(&token)
        .header("content-type", "application/json")
        .body(json!({"value": 80}).to_string())
        .send()
        .await?;
    assert_eq!(r.status(), 204, "{}", r.text().await?);
    let m = ws.next_of("observations", Duration::from_secs(2)).await?;
    assert_eq!(m["items"][0]["value"], 80.0);

    // Reads with the console session; the relationship survived the round trip.
    let r = http
        .get(srv.url(&format!("/ngsi-ld/v1/entities/{ID}")))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let got: Value = r.json().await?;
    assert_eq!(got["pm25"]["value"], 80);
    assert_eq!(
        got["refDevice"],
        json!({"type": "Relationship", "object": "urn:ngsi-ld:Device:d1"})
    );

    // Entities written through /api/v1 are readable through NGSI-LD.
    let (s, _) = srv
        .post(
            "/api/v1/observations",
            &token,
            &json!([{"entity": ID, "attribute": "pm25", "value": 12}]),
        )
        .await?;
    assert_eq!(s, 200);
    let r = http
        .get(srv.url("/ngsi-ld/v1/entities?type=AirQualityObserved&q=pm25%3C20"))
        .bearer_auth(&admin)
        .send()
        .await?;
    let list: Value = r.json().await?;
    assert_eq!(list.as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(list[0]["pm25"]["value"], 12.0);
    Ok(())
}
