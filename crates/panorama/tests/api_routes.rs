//! Round trips through every route of the API, against a real server.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use panorama_testkit::TestServer;
use serde_json::{Value, json};

const E1: &str = "urn:ngsi-ld:AirQualityObserved:t-1";

#[tokio::test]
async fn a_newcomer_creates_data_and_reads_it_back() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;

    // Observations of every value type, JSON array then NDJSON.
    let obs = json!([
        {"entity": E1, "attribute": "pm25", "time": "2024-05-01T00:00:00Z", "value": 10.0},
        {"entity": E1, "attribute": "pm25", "time": "2024-05-01T00:01:00+07:00", "value": 20},
        {"entity": E1, "attribute": "status", "time": "2024-05-01T00:00:00Z", "value": "ok"},
        {"entity": E1, "attribute": "online", "time": "2024-05-01T00:00:00Z", "value": true},
        {"entity": E1, "attribute": "raw", "time": "2024-05-01T00:00:00Z", "value": {"pm1": 3}}
    ]);
    let (s, b) = srv.post("/api/v1/observations", &token, &obs).await?;
    assert_eq!((s, &b["accepted"]), (200, &json!(5)), "{b}");
    let nd = format!(
        "{}\n{}\n",
        json!({"entity": E1, "attribute": "pm25", "time": "2024-05-01T00:02:00Z", "value": 30}),
        json!({"entity": "urn:ngsi-ld:AirQualityObserved:t-3", "attribute": "pm25", "time": "2024-05-01T00:02:00Z", "value": 50})
    );
    let (s, b) = srv
        .post_raw("/api/v1/observations", &token, "application/x-ndjson", nd)
        .await?;
    assert_eq!((s, &b["accepted"]), (200, &json!(2)), "{b}");

    // Latest state.
    let (s, latest) = srv
        .get(&format!("/api/v1/entities/{E1}/latest"), &admin)
        .await?;
    assert_eq!(s, 200);
    let find = |attr: &str| {
        latest
            .as_array()
            .unwrap()
            .iter()
            .find(|l| l["attribute"] == attr)
            .cloned()
            .unwrap()
    };
    assert_eq!(find("pm25")["value"], json!(30.0));
    assert_eq!(find("status")["value"], json!("ok"));
    assert_eq!(find("online")["value"], json!(true));
    assert_eq!(find("raw")["value"], json!({"pm1": 3}));
    let (_, page) = srv.get("/api/v1/latest?admin_unit=724", &admin).await?;
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["value"], json!(50.0));
    // A wall asks for every latest value in one page: up to 10,000 entities.
    let (s, all) = srv.get("/api/v1/latest?limit=10000", &admin).await?;
    assert_eq!(s, 200, "{all}");
    assert!(all["next_cursor"].is_null(), "{all}");
    let (_, paged) = srv.get("/api/v1/latest?limit=1", &admin).await?;
    assert!(
        paged["next_cursor"].is_string(),
        "more than one entity: {paged}"
    );

    // Raw and bucketed series.
    let q = format!(
        "/api/v1/series?entity={E1}&attribute=pm25&from=2024-04-30T00:00:00Z&to=2024-05-02T00:00:00Z"
    );
    let (s, raw) = srv.get(&q, &admin).await?;
    assert_eq!(s, 200, "{raw}");
    let vals: Vec<f64> = raw["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    // 00:01+07:00 is 17:01Z the day before: first in time order.
    assert_eq!(vals, vec![20.0, 10.0, 30.0]);
    let (_, day) = srv.get(&format!("{q}&bucket=1d&agg=max"), &admin).await?;
    let days: Vec<(String, f64)> = day["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["time"].as_str().unwrap().to_string(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    // Day buckets start at Vietnamese midnight (17:00Z); all three fall on 1 May local.
    assert_eq!(days, vec![("2024-04-30T17:00:00Z".to_string(), 30.0)]);

    // Grouped by district.
    let (s, g) = srv
        .get("/api/v1/series/grouped?attribute=pm25&type=AirQualityObserved&from=2024-05-01T00:00:00Z&to=2024-05-01T01:00:00Z&bucket=1h&agg=avg", &admin)
        .await?;
    assert_eq!(s, 200, "{g}");
    let by_unit: Vec<(String, f64)> = g
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["admin_unit"].as_str().unwrap().to_string(),
                x["points"][0]["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert!(by_unit.contains(&("718".to_string(), 20.0)), "{g}");
    assert!(by_unit.contains(&("724".to_string(), 50.0)), "{g}");
    let (_, g) = srv
        .get("/api/v1/series/grouped?attribute=pm25&level=province&from=2024-05-01T00:00:00Z&to=2024-05-01T01:00:00Z&bucket=1h", &admin)
        .await?;
    assert_eq!(g[0]["admin_unit"], "74");
    // The average of every value in the province: (10 + 30 + 50) / 3.
    assert_eq!(g[0]["points"][0]["value"].as_f64(), Some(30.0));
    Ok(())
}

#[tokio::test]
async fn entity_listing_filters_and_pages() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    srv.seed(&admin).await?;
    let ids = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, all) = srv.get("/api/v1/entities", &admin).await?;
    assert_eq!(ids(&all).len(), 3);
    let (_, d) = srv.get("/api/v1/entities?admin_unit=718", &admin).await?;
    assert_eq!(ids(&d).len(), 2);
    let (_, p) = srv
        .get(
            "/api/v1/entities?admin_unit=74&type=AirQualityObserved&domain=environment",
            &admin,
        )
        .await?;
    assert_eq!(ids(&p).len(), 3, "a province includes its districts");
    let (_, b) = srv
        .get("/api/v1/entities?bbox=106.74,10.94,106.76,10.96", &admin)
        .await?;
    assert_eq!(ids(&b), vec!["urn:ngsi-ld:AirQualityObserved:t-3"]);
    let poly = json!({"type": "Polygon", "coordinates": [[[106.6, 10.98], [106.7, 10.98], [106.7, 11.05], [106.6, 11.05], [106.6, 10.98]]]});
    let (_, w) = srv
        .get(
            &format!("/api/v1/entities?within={}", urlencode(&poly.to_string())),
            &admin,
        )
        .await?;
    assert_eq!(ids(&w).len(), 2, "{w}");
    let (_, t) = srv.get("/api/v1/entities?q=chanh%20nghia", &admin).await?;
    assert_eq!(
        ids(&t),
        vec!["urn:ngsi-ld:AirQualityObserved:t-2"],
        "accents are ignored"
    );
    // Pages of one walk every entity exactly once.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/entities?limit=1&cursor={}", urlencode(c)),
            None => "/api/v1/entities?limit=1".to_string(),
        };
        let (s, page) = srv.get(&path, &admin).await?;
        assert_eq!(s, 200, "{page}");
        seen.extend(ids(&page));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, ids(&all));
    // GeoJSON.
    let r = srv
        .http
        .get(srv.url("/api/v1/entities?format=geojson"))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(r.headers()["content-type"], "application/geo+json");
    let fc: Value = r.json().await?;
    assert_eq!(fc["type"], "FeatureCollection");
    assert_eq!(fc["features"][0]["geometry"]["type"], "Point");
    let (s, one) = srv
        .get(
            "/api/v1/entities/urn:ngsi-ld:AirQualityObserved:t-1",
            &admin,
        )
        .await?;
    assert_eq!((s, one["name"].as_str()), (200, Some("Trạm Phú Cường")));
    Ok(())
}

#[tokio::test]
async fn reference_data_and_sources() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    srv.seed(&admin).await?;
    let (_, domains) = srv.get("/api/v1/domains", &admin).await?;
    let domains = domains.as_array().unwrap();
    assert!(domains.len() >= 20, "the domains of DESIGN.md are seeded");
    assert!(
        domains
            .iter()
            .any(|d| d["name"] == "Y tế" && d["name_en"] == "Health")
    );
    let (s, b) = srv.post("/api/v1/agencies", &admin, &json!([{"code": "so-y-te", "name": "Sở Y tế", "name_en": "Department of Health", "admin_unit": "74"}])).await?;
    assert_eq!(s, 204, "{b}");
    let (_, ag) = srv.get("/api/v1/agencies", &admin).await?;
    assert_eq!(ag[0]["name"], "Sở Y tế");
    let (_, units) = srv
        .get("/api/v1/admin-units?level=district&geometry=false", &admin)
        .await?;
    assert_eq!(units.as_array().unwrap().len(), 2);
    assert!(units[0].get("geometry").is_none());
    let (_, u) = srv.get("/api/v1/admin-units/718", &admin).await?;
    assert_eq!(u["parent"], "74");
    let r = srv
        .http
        .get(srv.url("/api/v1/admin-units?format=geojson"))
        .bearer_auth(&admin)
        .send()
        .await?;
    let fc: Value = r.json().await?;
    assert_eq!(fc["features"].as_array().unwrap().len(), 4);

    // Sources: create through the API, write with the token, see the activity.
    let (s, created) = srv
        .post(
            "/api/v1/sources",
            &admin,
            &json!({"id": "water", "name": "Trạm thủy văn", "expected_interval_secs": 600}),
        )
        .await?;
    assert_eq!(s, 201, "{created}");
    let token = created["token"].as_str().unwrap().to_string();
    let e = json!({"id": "urn:ngsi-ld:WaterObserved:w1", "type": "WaterObserved", "name": "Cầu Ông Cộ", "domain": "water", "admin_unit": "718", "attributes": {"waterLevel": {"type": "number", "unit": "m"}}});
    assert_eq!(srv.post("/api/v1/entities", &token, &e).await?.0, 200);
    let (s, _) = srv.post("/api/v1/observations", &token, &json!([{"entity": "urn:ngsi-ld:WaterObserved:w1", "attribute": "waterLevel", "value": 1.2}])).await?;
    assert_eq!(s, 200);
    let (s, _) = srv.post("/api/v1/observations", &token, &json!([{"entity": "urn:ngsi-ld:WaterObserved:w1", "attribute": "waterLevel", "value": "high"}])).await?;
    assert_eq!(s, 422);
    let (_, sources) = srv.get("/api/v1/sources", &admin).await?;
    let w = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "water")
        .unwrap()
        .clone();
    assert_eq!(w["accepted"], 2, "one entity and one observation: {w}");
    assert_eq!(w["rejected"], 1);
    assert!(
        w["last_error"]
            .as_str()
            .unwrap()
            .contains("expected a number")
    );
    assert_eq!(w["freshness"]["late"], false);
    assert!(w["last_seen_at"].is_string());
    // A source that never reported is not yet late: its contract just started.
    let seed = sources
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "seed")
        .unwrap()
        .clone();
    assert_eq!(seed["freshness"]["late"], false);

    // Users.
    let (s, u) = srv.post("/api/v1/users", &admin, &json!({"username": "trucban", "role": "operator", "password": "ca-truc-24-7", "display_name": "Trực ban"})).await?;
    assert_eq!(s, 201, "{u}");
    let (_, users) = srv.get("/api/v1/users", &admin).await?;
    assert_eq!(users.as_array().unwrap().len(), 2);
    let (s, u) = srv
        .post(
            "/api/v1/users",
            &admin,
            &json!({"username": "trucban", "password": "another-one"}),
        )
        .await?;
    assert_eq!((s, u["code"].as_str()), (409, Some("conflict")));
    Ok(())
}

#[tokio::test]
async fn indicators_values_revisions_and_status() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    let ind = json!({"code": "dossiers-online", "name": "Tỷ lệ hồ sơ trực tuyến", "name_en": "Dossiers handled online",
        "domain": "admin-procedures", "unit": "%", "periodicity": "monthly", "direction": "higher_is_better",
        "targets": {"2024": 99.0}, "thresholds": {"kind": "target_ratio", "green": 1.0, "amber": 0.95}, "headline": true});
    let (s, b) = srv.post("/api/v1/indicators", &admin, &ind).await?;
    assert_eq!(s, 204, "{b}");
    let (s, v) = srv.post("/api/v1/indicator-values", &token, &json!([
        {"indicator": "dossiers-online", "period": "2024-04", "admin_unit": "74", "value": 97.0},
        {"indicator": "dossiers-online", "period": "2024-05", "admin_unit": "74", "value": 90.0}
    ])).await?;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v[0]["revision"], 1);
    assert_eq!(v[0]["status"], "provisional");
    assert_eq!(v[0]["submitted_by"], "source:seed");
    // A resubmission is a revision; history is kept.
    let (_, v) = srv.post("/api/v1/indicator-values", &token, &json!({"indicator": "dossiers-online", "period": "2024-05", "admin_unit": "74", "value": 99.2})).await?;
    assert_eq!(
        (v[0]["revision"].as_u64(), v[0]["status"].as_str()),
        (Some(2), Some("revised"))
    );
    let (_, h) = srv
        .get(
            "/api/v1/indicators/dossiers-online/history?period=2024-05&admin_unit=74",
            &admin,
        )
        .await?;
    let hist: Vec<f64> = h
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["value"].as_f64().unwrap())
        .collect();
    assert_eq!(hist, vec![90.0, 99.2]);
    let (_, vals) = srv
        .get(
            "/api/v1/indicators/dossiers-online/values?admin_unit=74&from=2024-01",
            &admin,
        )
        .await?;
    let colours: Vec<(&str, &str)> = vals
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["period"].as_str().unwrap(),
                x["status_colour"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(colours, vec![("2024-04", "amber"), ("2024-05", "green")]);
    assert_eq!(vals[0]["target"], 99.0);
    let (_, list) = srv
        .get("/api/v1/indicators?domain=admin-procedures", &admin)
        .await?;
    assert_eq!(list[0]["latest"]["value"], 99.2);
    assert_eq!(list[0]["latest"]["status_colour"], "green");
    assert_eq!(list[0]["trend"], json!([97.0, 99.2]));
    let (_, one) = srv
        .get("/api/v1/indicators/dossiers-online", &admin)
        .await?;
    assert_eq!(one["targets"]["2024"], 99.0);
    let (_, across) = srv
        .get(
            "/api/v1/indicator-values?domain=admin-procedures&to=2024-05",
            &admin,
        )
        .await?;
    assert_eq!(across.as_array().unwrap().len(), 1);
    // A period of the wrong shape names the field.
    let (s, p) = srv.post("/api/v1/indicator-values", &token, &json!({"indicator": "dossiers-online", "period": "2024", "admin_unit": "74", "value": 1})).await?;
    assert_eq!((s, p["field"].as_str()), (422, Some("[0].period")), "{p}");
    Ok(())
}

#[tokio::test]
async fn health_metrics_and_session_lifecycle() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let (s, h) = srv.get("/api/v1/health", "").await?;
    assert_eq!((s, h["status"].as_str()), (200, Some("ok")), "{h}");
    let token = srv.seed(&admin).await?;
    let (s, _) = srv
        .post(
            "/api/v1/observations",
            &token,
            &json!([{"entity": E1, "attribute": "pm25", "value": 1}]),
        )
        .await?;
    assert_eq!(s, 200);
    let text = srv
        .http
        .get(srv.url("/metrics"))
        .send()
        .await?
        .text()
        .await?;
    for name in [
        "panorama_observations_ingested_total",
        "panorama_ingest_batch_seconds_bucket",
        "panorama_ingest_queue_depth",
        "panorama_live_clients",
    ] {
        assert!(text.contains(name), "{name} missing from /metrics");
    }
    let (_, me) = srv.get("/api/v1/auth/me", &admin).await?;
    assert_eq!(me["username"], "admin");
    // The cookie works as well as the bearer form.
    let r = srv
        .http
        .get(srv.url("/api/v1/auth/me"))
        .header("cookie", format!("panorama_session={admin}"))
        .send()
        .await?;
    assert_eq!(r.status(), 200);
    let r = srv
        .http
        .post(srv.url("/api/v1/auth/logout"))
        .bearer_auth(&admin)
        .send()
        .await?;
    assert_eq!(r.status(), 204);
    let (s, p) = srv.get("/api/v1/auth/me", &admin).await?;
    assert_eq!((s, p["code"].as_str()), (401, Some("unauthorized")));
    let (s, p) = srv
        .post(
            "/api/v1/auth/login",
            "",
            &json!({"username": "admin", "password": "nope-nope"}),
        )
        .await?;
    assert_eq!((s, p["code"].as_str()), (401, Some("unauthorized")));
    Ok(())
}

#[tokio::test]
async fn a_late_source_makes_health_degraded() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let new = panorama_api::provision::NewSource {
        id: "silent".into(),
        name: "Silent feed".into(),
        kind: None,
        owner_agency: None,
        domain: None,
        expected_interval_secs: Some(60),
        connector: None,
    };
    let long_ago = chrono::Utc::now() - chrono::Duration::hours(2);
    panorama_api::provision::create_source(srv.store.as_ref(), new, long_ago)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let (s, h) = srv.get("/api/v1/health", "").await?;
    assert_eq!((s, h["status"].as_str()), (200, Some("degraded")), "{h}");
    assert_eq!(h["late_sources"], json!(["silent"]));
    assert!(h["problems"][0].as_str().unwrap().contains("silent"));
    Ok(())
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
