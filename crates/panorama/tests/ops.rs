//! Rules, alerts and incidents over the real HTTP API and live stream:
//! an incident's whole lifecycle, and bad rule definitions answered with
//! problem+json naming the field.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use panorama_core::Role;
use panorama_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;

const GAUGE: &str = "urn:ngsi-ld:WaterObserved:cau-ong-co";

/// Polls `path` until `ok` holds for its answer.
async fn eventually(
    srv: &TestServer,
    path: &str,
    token: &str,
    ok: impl Fn(&Value) -> bool,
) -> Value {
    for _ in 0..100 {
        let (s, v) = srv.get(path, token).await.unwrap();
        assert_eq!(s, 200, "{v}");
        if ok(&v) {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{path} never satisfied the condition");
}

async fn send(
    srv: &TestServer,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut r = srv.http.request(method, srv.url(path)).bearer_auth(token);
    if let Some(b) = body {
        r = r.json(&b);
    }
    let r = r.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

async fn gauge(srv: &TestServer, token: &str) {
    let (s, b) = srv
        .post(
            "/api/v1/entities",
            token,
            &json!({"id": GAUGE, "type": "WaterObserved", "name": "Cầu Ông Cộ", "domain": "water",
                "admin_unit": "718", "location": {"type": "Point", "coordinates": [106.66, 10.98]},
                "attributes": {"waterLevel": {"type": "number", "unit": "m"}}}),
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{b}");
}

fn rule() -> Value {
    json!({
        "id": "river-high", "name": "Mực nước sông vượt báo động", "severity": "high",
        "scope": {"domains": ["water"]},
        "condition": {"kind": "threshold", "attribute": "waterLevel", "above": 2.5, "clear": 2.3}
    })
}

#[tokio::test]
async fn an_incident_goes_through_its_whole_lifecycle() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    gauge(&srv, &token).await;
    let (s, b) = srv
        .post(
            "/api/v1/agencies",
            &admin,
            &json!({"code": "so-tn-mt", "name": "Sở TN&MT", "name_en": "DONRE", "admin_unit": "74"}),
        )
        .await?;
    assert_eq!(s, 204, "{b}");
    let lan = srv.user("lan", Role::Operator).await?;
    let minh = {
        let new = json!({"username": "minh", "password": "correct horse battery", "role": "officer", "agency": "so-tn-mt"});
        let (s, b) = srv.post("/api/v1/users", &admin, &new).await?;
        assert_eq!(s, 201, "{b}");
        let r = srv
            .http
            .post(srv.url("/api/v1/auth/login"))
            .json(&json!({"username": "minh", "password": "correct horse battery"}))
            .send()
            .await?;
        r.json::<Value>().await?["token"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let viewer = srv.user("khach", Role::Viewer).await?;

    // The SOP of floods, and the rule.
    let (s, b) = send(&srv, reqwest::Method::PUT, "/api/v1/sops/flood", &admin,
        Some(json!({"name": "Quy trình ứng phó ngập", "steps": ["Cảnh báo người dân", "Điều động máy bơm", "Chặn đường ngập", "Báo cáo"]}))).await;
    assert_eq!(s, 200, "{b}");
    let (s, b) = srv.post("/api/v1/rules", &admin, &rule()).await?;
    assert_eq!(
        (s, &b["version"], &b["origin"]),
        (201, &json!(1), &json!("api")),
        "{b}"
    );

    let mut ws = srv.live(&lan).await?;
    ws.send(json!({"op": "subscribe", "id": "d", "admin_units": ["718"]}))
        .await?;
    ws.next_of("subscribed", Duration::from_secs(2)).await?;

    // The river rises: an alert opens, live.
    let (s, _) = srv
        .post(
            "/api/v1/observations",
            &token,
            &json!([{"entity": GAUGE, "attribute": "waterLevel", "value": 3.1}]),
        )
        .await?;
    assert_eq!(s, 200);
    let m = ws.next_of("alerts", Duration::from_secs(5)).await?;
    assert_eq!(
        (m["change"].as_str(), m["items"][0]["entity"].as_str()),
        (Some("opened"), Some(GAUGE))
    );
    let feed = eventually(
        &srv,
        "/api/v1/alerts?status=open,acknowledged&admin_unit=74",
        &lan,
        |v| v["items"].as_array().is_some_and(|a| a.len() == 1),
    )
    .await;
    let alert = feed["items"][0].clone();
    let aid = alert["id"].as_i64().unwrap();
    assert_eq!(alert["severity"], "high");
    assert_eq!(alert["value"], 3.1);
    assert!(
        alert["data"]["chart"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/series?")
    );

    let (s, b) = srv
        .post(
            &format!("/api/v1/alerts/{aid}/acknowledge"),
            &viewer,
            &json!({}),
        )
        .await?;
    assert_eq!((s, b["code"].as_str()), (403, Some("forbidden")));
    let (s, b) = srv
        .post(
            &format!("/api/v1/alerts/{aid}/acknowledge"),
            &lan,
            &json!({"comment": "Đang xem camera"}),
        )
        .await?;
    assert_eq!(
        (s, b["status"].as_str(), b["acknowledged_by"].as_str()),
        (200, Some("acknowledged"), Some("user:lan")),
        "{b}"
    );
    let (s, b) = srv
        .post(
            &format!("/api/v1/alerts/{aid}/acknowledge"),
            &lan,
            &json!({}),
        )
        .await?;
    assert_eq!((s, b["code"].as_str()), (409, Some("conflict")));

    // An operator opens an incident from the alert: title, place and
    // severity come from the alert; the checklist from the SOP.
    let (s, inc) = srv
        .post(
            "/api/v1/incidents",
            &lan,
            &json!({"type": "flood", "alerts": [aid]}),
        )
        .await?;
    assert_eq!(s, 201, "{inc}");
    let iid = inc["id"].as_i64().unwrap();
    assert_eq!(
        (
            inc["status"].as_str(),
            inc["severity"].as_str(),
            inc["admin_unit"].as_str()
        ),
        (Some("new"), Some("high"), Some("718"))
    );
    assert_eq!(inc["alerts"], json!([aid]));
    assert_eq!(inc["checklist"].as_array().unwrap().len(), 4);
    assert!(inc["respond_by"].is_string() && inc["resolve_by"].is_string());
    let m = ws.next_of("incidents", Duration::from_secs(5)).await?;
    assert_eq!(
        (m["change"].as_str(), m["items"][0]["id"].as_i64()),
        (Some("created"), Some(iid))
    );
    let (s, _) = srv
        .post(
            "/api/v1/incidents",
            &viewer,
            &json!({"type": "flood", "title": "x"}),
        )
        .await?;
    assert_eq!(s, 403);

    // Assign an agency and a person: the incident becomes assigned.
    let path = format!("/api/v1/incidents/{iid}");
    let (s, b) = send(
        &srv,
        reqwest::Method::PATCH,
        &path,
        &lan,
        Some(json!({"agency": "so-tn-mt", "assignee": "minh", "version": 1})),
    )
    .await;
    assert_eq!(
        (s, b["status"].as_str(), b["version"].as_i64()),
        (200, Some("assigned"), Some(2)),
        "{b}"
    );
    let (s, b) = send(
        &srv,
        reqwest::Method::PATCH,
        &path,
        &lan,
        Some(json!({"title": "stale", "version": 1})),
    )
    .await;
    assert_eq!(
        (s, b["code"].as_str()),
        (409, Some("conflict")),
        "a stale edit is refused"
    );
    let (s, b) = send(
        &srv,
        reqwest::Method::PATCH,
        &path,
        &lan,
        Some(json!({"assignee": "nobody"})),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (422, Some("assignee")), "{b}");

    // The officer of the agency takes it.
    let (s, b) = srv
        .post(
            &format!("{path}/status"),
            &minh,
            &json!({"status": "in_progress"}),
        )
        .await?;
    assert_eq!((s, b["status"].as_str()), (200, Some("in_progress")), "{b}");
    assert!(b["responded_at"].is_string());
    let (s, b) = srv
        .post(
            &format!("{path}/checklist"),
            &minh,
            &json!({"step": 0, "done": true, "comment": "Đã phát loa"}),
        )
        .await?;
    assert_eq!(
        (
            s,
            &b["checklist"][0]["done"],
            b["checklist"][0]["done_by"].as_str()
        ),
        (200, &json!(true), Some("user:minh")),
        "{b}"
    );
    let (s, b) = srv
        .post(
            &format!("{path}/checklist"),
            &minh,
            &json!({"step": 9, "done": true}),
        )
        .await?;
    assert_eq!((s, b["field"].as_str()), (422, Some("step")));
    let (s, _) = srv
        .post(
            &format!("{path}/comments"),
            &minh,
            &json!({"text": "Hai máy bơm đã đến"}),
        )
        .await?;
    assert_eq!(s, 200);

    // A photo from the field; refused types and sizes name the problem.
    let png = [b"\x89PNG\r\n\x1a\n".as_slice(), &[0u8; 64]].concat();
    let (s, att) = srv
        .post_raw(
            &format!("{path}/attachments?filename=hien-truong.png"),
            &minh,
            "image/png",
            png.clone(),
        )
        .await?;
    assert_eq!(s, 201, "{att}");
    assert_eq!(
        (att["size"].as_u64(), att["content_type"].as_str()),
        (Some(72), Some("image/png"))
    );
    let (s, b) = srv
        .post_raw(
            &format!("{path}/attachments?filename=x.html"),
            &minh,
            "text/html",
            "<script>",
        )
        .await?;
    assert_eq!(
        (s, b["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    let (s, b) = srv
        .post_raw(
            &format!("{path}/attachments?filename=fake.png"),
            &minh,
            "image/png",
            "not a png",
        )
        .await?;
    assert_eq!((s, b["field"].as_str()), (422, Some("content")));
    let (s, b) = srv
        .post_raw(
            &format!("{path}/attachments"),
            &minh,
            "image/png",
            png.clone(),
        )
        .await?;
    assert_eq!((s, b["field"].as_str()), (400, Some("filename")));
    let r = srv
        .http
        .get(srv.url(&format!("{path}/attachments/{}", att["id"])))
        .bearer_auth(&lan)
        .send()
        .await?;
    assert_eq!(r.headers()["content-type"], "image/png");
    assert!(
        r.headers()["content-disposition"]
            .to_str()?
            .contains("hien-truong.png")
    );
    assert_eq!(r.bytes().await?.to_vec(), png);

    // The workflow refuses what it does not allow, then runs to the end and back.
    let (s, b) = srv
        .post(
            &format!("{path}/status"),
            &minh,
            &json!({"status": "closed"}),
        )
        .await?;
    assert_eq!((s, b["code"].as_str()), (409, Some("conflict")), "{b}");
    assert!(b["detail"].as_str().unwrap().contains("resolved"), "{b}");
    for status in ["resolved", "closed", "reopened"] {
        let (s, b) = srv
            .post(
                &format!("{path}/status"),
                &lan,
                &json!({"status": status, "comment": "ok"}),
            )
            .await?;
        assert_eq!((s, b["status"].as_str()), (200, Some(status)), "{b}");
    }
    let (s, b) = srv
        .post(
            &format!("{path}/status"),
            &lan,
            &json!({"status": "flying"}),
        )
        .await?;
    assert_eq!((s, b["field"].as_str()), (422, Some("status")), "{b}");

    let (s, detail) = srv.get(&path, &lan).await?;
    assert_eq!(s, 200);
    let kinds: Vec<&str> = detail["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    for k in [
        "created",
        "alert_linked",
        "assigned",
        "status",
        "checklist",
        "comment",
        "attachment",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    assert!(
        detail["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["by"].is_string() && e["at"].is_string())
    );
    assert_eq!(
        detail["next_statuses"],
        json!(["assigned", "in_progress", "resolved"])
    );
    assert_eq!(detail["attachments"].as_array().unwrap().len(), 1);
    let (_, board) = srv
        .get(
            "/api/v1/incidents?status=reopened&admin_unit=74&type=flood",
            &lan,
        )
        .await?;
    assert_eq!(board["items"][0]["id"].as_i64(), Some(iid));

    // The alert is resolved by hand with a comment; every step says who and when.
    let (s, b) = srv
        .post(&format!("/api/v1/alerts/{aid}/resolve"), &lan, &json!({}))
        .await?;
    assert_eq!((s, b["field"].as_str()), (422, Some("comment")));
    let (s, b) = srv
        .post(
            &format!("/api/v1/alerts/{aid}/resolve"),
            &lan,
            &json!({"comment": "Nước đã rút"}),
        )
        .await?;
    assert_eq!((s, b["status"].as_str()), (200, Some("resolved")), "{b}");
    let steps: Vec<&str> = b["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["action"].as_str().unwrap())
        .collect();
    assert_eq!(steps, ["opened", "acknowledged", "linked", "resolved"]);
    assert_eq!(b["incident"].as_i64(), Some(iid));

    // Notifications in the console: operators heard of the new incident,
    // the assignee of the assignment.
    let (_, n) = srv.get("/api/v1/notifications?unread=true", &lan).await?;
    assert!(
        n["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["event"] == "incident.created"),
        "{n}"
    );
    let (_, n) = srv.get("/api/v1/notifications", &minh).await?;
    assert!(
        n["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["event"] == "incident.assigned"),
        "{n}"
    );
    let (s, b) = srv
        .post("/api/v1/notifications/read", &minh, &json!({}))
        .await?;
    assert_eq!(s, 200, "{b}");
    let (_, n) = srv.get("/api/v1/notifications?unread=true", &minh).await?;
    assert!(n["items"].as_array().unwrap().is_empty());
    let (s, _) = srv.get("/api/v1/deliveries", &lan).await?;
    assert_eq!(s, 403, "the delivery log is for admins");
    Ok(())
}

#[tokio::test]
async fn bad_rule_definitions_get_problem_json_naming_the_field() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    srv.seed(&admin).await?;
    let with = |path: &[&str], v: Value| {
        let mut r = rule();
        let mut at = &mut r;
        for p in &path[..path.len() - 1] {
            at = &mut at[*p];
        }
        at[path[path.len() - 1]] = v;
        r
    };
    let cases = [
        (with(&["condition", "clear"], json!(2.8)), "condition.clear"),
        (
            with(&["condition", "kind"], json!("thresold")),
            "condition.kind",
        ),
        (
            with(&["condition", "for"], json!("ten minutes")),
            "condition.for",
        ),
        (
            with(&["condition", "window"], json!("1h")),
            "condition.window",
        ),
        (with(&["severity"], json!("urgent")), "severity"),
        (with(&["id"], json!("có dấu")), "id"),
        (
            with(&["scope", "domains"], json!(["nope"])),
            "scope.domains[0]",
        ),
        (
            with(&["scope", "admin_units"], json!(["999"])),
            "scope.admin_units[0]",
        ),
        (with(&["notify"], json!(["pager"])), "notify[0]"),
        (
            json!({"id": "x", "name": "X", "severity": "low"}),
            "condition",
        ),
    ];
    for (body, field) in cases {
        let (s, b) = srv.post("/api/v1/rules", &admin, &body).await?;
        assert_eq!(s, 422, "{body} → {b}");
        assert_eq!(b["code"], "invalid_input");
        assert_eq!(b["field"], field, "{b}");
        assert!(b["type"].as_str().unwrap().starts_with("https://"));
    }
    let (s, b) = srv
        .post_raw("/api/v1/rules", &admin, "application/json", "{\"id\": ")
        .await?;
    assert_eq!((s, b["code"].as_str()), (400, Some("malformed_body")));
    let lan = srv.user("lan", Role::Operator).await?;
    let (s, _) = srv.post("/api/v1/rules", &lan, &rule()).await?;
    assert_eq!(s, 403);
    assert_eq!(srv.post("/api/v1/rules", &admin, &rule()).await?.0, 201);
    let (s, b) = srv.post("/api/v1/rules", &admin, &rule()).await?;
    assert_eq!((s, b["code"].as_str()), (409, Some("conflict")));
    let (s, _) = srv.get("/api/v1/rules/nope", &admin).await?;
    assert_eq!(s, 404);
    let (s, b) = send(
        &srv,
        reqwest::Method::PUT,
        "/api/v1/rules/other",
        &admin,
        Some(rule()),
    )
    .await;
    assert_eq!((s, b["field"].as_str()), (422, Some("id")));
    let mut changed = rule();
    changed["condition"]["above"] = json!(3.0);
    let (s, b) = send(
        &srv,
        reqwest::Method::PUT,
        "/api/v1/rules/river-high",
        &admin,
        Some(changed),
    )
    .await;
    assert_eq!((s, b["version"].as_i64()), (200, Some(2)), "{b}");
    let (_, list) = srv.get("/api/v1/rules", &lan).await?;
    assert_eq!(list.as_array().unwrap().len(), 1);

    // Dry-runs: of a rule in the body and of a stored one.
    let (s, b) = srv
        .post("/api/v1/rules/dry-run?days=2", &lan, &rule())
        .await?;
    assert_eq!(s, 200, "{b}");
    assert_eq!(b["alerts"], json!([]));
    let (s, b) = srv
        .post("/api/v1/rules/dry-run?days=0", &lan, &rule())
        .await?;
    assert_eq!((s, b["field"].as_str()), (422, Some("days")));
    let (s, b) = srv
        .post(
            "/api/v1/rules/dry-run",
            &lan,
            &with(&["condition", "clear"], json!(9)),
        )
        .await?;
    assert_eq!((s, b["field"].as_str()), (422, Some("condition.clear")));
    let (s, _) = srv
        .post("/api/v1/rules/river-high/dry-run?days=1", &lan, &json!({}))
        .await?;
    assert_eq!(s, 200);
    let (s, _) = send(
        &srv,
        reqwest::Method::DELETE,
        "/api/v1/rules/river-high",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 204);
    let (s, _) = send(
        &srv,
        reqwest::Method::DELETE,
        "/api/v1/rules/river-high",
        &admin,
        None,
    )
    .await;
    assert_eq!(s, 404);
    let (s, b) = srv.get("/api/v1/alerts?status=sleeping", &lan).await?;
    assert_eq!((s, b["field"].as_str()), (400, Some("status")));
    let (s, b) = srv.get("/api/v1/alerts/abc", &lan).await?;
    assert_eq!((s, b["field"].as_str()), (400, Some("id")));
    let (s, _) = srv.get("/api/v1/incidents/12345", &lan).await?;
    assert_eq!(s, 404);
    Ok(())
}

#[tokio::test]
async fn alerts_survive_a_restart_without_duplicates() -> anyhow::Result<()> {
    let srv = TestServer::start().await?;
    let admin = srv.admin().await?;
    let token = srv.seed(&admin).await?;
    gauge(&srv, &token).await;
    assert_eq!(srv.post("/api/v1/rules", &admin, &rule()).await?.0, 201);
    let level = |v: f64| json!([{"entity": GAUGE, "attribute": "waterLevel", "value": v}]);
    srv.post("/api/v1/observations", &token, &level(3.0))
        .await?;
    eventually(&srv, "/api/v1/alerts", &admin, |v| {
        v["items"].as_array().is_some_and(|a| a.len() == 1)
    })
    .await;
    let srv = srv.restart().await?;
    // The session survives (it is stored); the same token still writes.
    srv.post("/api/v1/observations", &token, &level(3.2))
        .await?;
    srv.post("/api/v1/observations", &token, &level(2.0))
        .await?;
    let v = eventually(&srv, "/api/v1/alerts", &admin, |v| {
        v["items"][0]["status"] == "resolved"
    })
    .await;
    assert_eq!(v["items"].as_array().unwrap().len(), 1, "{v}");
    assert_eq!(v["items"][0]["occurrences"], 1);
    Ok(())
}
