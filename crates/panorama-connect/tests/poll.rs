//! The poll connector against a real local HTTP server whose answers the
//! tests change while it runs: JSON and CSV into observations and indicator
//! values, conditional requests, failures, format changes and recovery.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use panorama_connect::{Connectors, PollFormat, PollState};
use panorama_core::{
    AdminLevel, AdminUnit, Computation, Direction, Indicator, Periodicity, Thresholds, Value as V,
};
use panorama_ingest::{Event, IngestOptions};
use serde_json::{Value, json};
use std::time::Duration;

/// One configured second lasts this long in these tests.
const UNIT: Duration = Duration::from_millis(20);

fn connectors(p: &Panorama) -> Connectors {
    Connectors::new(p.ingest(IngestOptions::default()), p.clock.clone()).with_poll_unit(UNIT)
}

/// A connector polling `url` every 100 ms (5 units), giving up a poll
/// after 1 s, backing off to at most 200 ms.
fn poll(url: &str, rest: Value) -> Value {
    let mut c = json!({"url": url, "interval_secs": 5, "timeout_secs": 50, "max_backoff_secs": 10});
    for (k, v) in rest.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn water_mapping() -> Value {
    json!({
        "format": "json",
        "entity": "urn:ngsi-ld:WaterObserved:{$.station}",
        "values": {"waterLevel": "$.level"},
        "time": "$.time",
    })
}

fn items(records: Value) -> Value {
    json!({"data": {"items": records}, "generated": "2024-05-01T10:05:00Z"})
}

const TD1: &str = "urn:ngsi-ld:WaterObserved:td1";
const DA1: &str = "urn:ngsi-ld:WaterObserved:da1";

/// JSON records at a path land as observations with their own times; a
/// re-poll of the same document writes nothing; a newer record is added;
/// a bad record is refused alone, counted and shown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_records_become_observations_once() {
    let p = Panorama::open().await.unwrap();
    let doc = items(json!([
        {"station": "td1", "level": 1.5, "time": "2024-05-01T10:00:00Z"},
        {"station": "da1", "level": 0.75, "time": "2024-05-01T10:00:00Z"},
    ]));
    let ep = Endpoint::start(Answer::json(doc)).await.unwrap();
    let ingest = p.ingest(IngestOptions::default());
    let mut live = ingest.bus().subscribe();
    let c = Connectors::new(ingest.clone(), p.clock.clone()).with_poll_unit(UNIT);
    let s = p
        .poll_source(
            "water-poll",
            poll(
                &ep.url,
                json!({"records": "$.data.items", "mapping": water_mapping()}),
            ),
        )
        .await
        .unwrap();
    assert!(c.start(&s).unwrap());
    let st = wait_poll(&c, "water-poll", "ok", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!((st.last_accepted, st.last_rejected), (2, 0), "{st:?}");
    assert_eq!(st.format, Some(PollFormat::Json));
    assert_eq!(st.last_http_status, Some(200));
    assert!(st.last_success_at.is_some() && st.next_poll_at > st.last_poll_at);
    let td1 = p.points(TD1, "waterLevel").await;
    assert_eq!(td1.len(), 1);
    assert_eq!(td1[0].value, V::Number(1.5));
    assert_eq!(td1[0].time.to_rfc3339(), "2024-05-01T10:00:00+00:00");
    // What was stored was published live, as the console receives it.
    let published = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Ok(Event::Observations(b)) = live.recv().await {
                return b;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(published.observations.len(), 2);
    assert_eq!(&*published.series[0].domain, "water");
    // The connector created the entities in the source's domain.
    let e = p.store.entity(DA1).await.unwrap().unwrap();
    assert_eq!(
        (e.entity_type.as_str(), e.domain.as_str()),
        ("WaterObserved", "water")
    );

    // Polled again and again: the same document writes nothing.
    let polls = st.polls;
    let st = wait_poll(&c, "water-poll", "re-polled", |s| s.polls >= polls + 3)
        .await
        .unwrap();
    assert_eq!(
        (st.last_accepted, st.last_skipped, st.accepted),
        (0, 2, 2),
        "{st:?}"
    );
    assert_eq!(p.points(TD1, "waterLevel").await.len(), 1);

    // A newer reading for td1 and a broken record for da1.
    ep.set(|a| {
        a.body = items(json!([
            {"station": "td1", "level": 1.5, "time": "2024-05-01T10:00:00Z"},
            {"station": "td1", "level": 1.62, "time": "2024-05-01T10:10:00Z"},
            {"station": "da1", "level": null, "time": "2024-05-01T10:10:00Z"},
        ]))
        .to_string();
    });
    let st = wait_poll(&c, "water-poll", "taking the new document", |s| {
        s.last_rejected == 1
    })
    .await
    .unwrap();
    assert_eq!(
        st.state,
        PollState::Ok,
        "a few bad records are not a format change"
    );
    assert_eq!((st.last_accepted, st.last_skipped), (1, 1), "{st:?}");
    let sample = st.rejected_sample.unwrap();
    assert!(
        sample.contains("record 2") && sample.contains("$.level: must not be null"),
        "{sample}"
    );
    assert!(sample.contains("\"station\":\"da1\""), "{sample}");
    let td1 = p.wait_points(TD1, "waterLevel", 2).await.unwrap();
    assert_eq!(td1[1].value, V::Number(1.62));
    assert_eq!(p.points(DA1, "waterLevel").await.len(), 1);

    // The source's own counts and last error, as the API shows them.
    ingest.flush_activity().await.unwrap();
    let source = p.source("water-poll").await.unwrap();
    assert_eq!(source.rejected, 1);
    assert!(source.accepted >= 3, "{source:?}");
    assert!(
        source
            .last_error
            .unwrap()
            .contains("$.level: must not be null"),
        "the source's last error names the field"
    );
}

/// Smart Data Models / NGSI key-values records need no mapping at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smart_data_models_records_map_out_of_the_box() {
    let p = Panorama::open().await.unwrap();
    let doc = json!([
        {"id": "urn:ngsi-ld:WaterQualityObserved:bd-01", "type": "WaterQualityObserved",
         "dateObserved": "2024-05-01T09:00:00+07:00", "pH": 7.2, "turbidity": 3.1},
        {"id": "urn:ngsi-ld:WaterQualityObserved:bd-02", "type": "WaterQualityObserved",
         "dateObserved": "2024-05-01T09:00:00+07:00", "pH": 6.9},
    ]);
    let ep = Endpoint::start(Answer::json(doc)).await.unwrap();
    let c = connectors(&p);
    let s = p.poll_source("wq", poll(&ep.url, json!({}))).await.unwrap();
    c.start(&s).unwrap();
    let st = wait_poll(&c, "wq", "ok", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!(st.last_accepted, 2, "{st:?}");
    let ph = p
        .points("urn:ngsi-ld:WaterQualityObserved:bd-01", "pH")
        .await;
    assert_eq!(ph.len(), 1);
    assert_eq!(ph[0].value, V::Number(7.2));
    assert_eq!(ph[0].time.to_rfc3339(), "2024-05-01T02:00:00+00:00");
    assert_eq!(
        p.points("urn:ngsi-ld:WaterQualityObserved:bd-01", "turbidity")
            .await
            .len(),
        1
    );
}

/// CSV told apart by its Content-Type: rows become observations; a dropped
/// column is a format change that names the column; polling goes on and
/// the source recovers when the column is back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_rows_become_observations_and_a_dropped_column_is_reported() {
    let p = Panorama::open().await.unwrap();
    let csv = "station,level,time\ntd1,1.50,2024-05-01T10:00:00Z\nda1,0.75,2024-05-01T10:00:00Z\n";
    let ep = Endpoint::start(Answer::csv(csv)).await.unwrap();
    let c = connectors(&p);
    let mapping = json!({
        "format": "json",
        "entity": "urn:ngsi-ld:WaterObserved:{$.station}",
        "attribute": "waterLevel", "value": "$.level", "time": "$.time",
    });
    let s = p
        .poll_source("csv-poll", poll(&ep.url, json!({"mapping": mapping})))
        .await
        .unwrap();
    c.start(&s).unwrap();
    let st = wait_poll(&c, "csv-poll", "ok", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!(
        (st.format, st.last_accepted),
        (Some(PollFormat::Csv), 2),
        "{st:?}"
    );
    let td1 = p.points(TD1, "waterLevel").await;
    assert_eq!(td1[0].value, V::Number(1.5), "a numeric cell is a number");

    ep.set(|a| a.body = "station,time\ntd1,2024-05-01T10:10:00Z\n".into());
    let st = wait_poll(&c, "csv-poll", "format_changed", |s| {
        s.state == PollState::FormatChanged
    })
    .await
    .unwrap();
    let err = st.last_error.clone().unwrap();
    assert!(err.contains("column 'level' is missing"), "{err}");
    assert!(err.contains("station, time"), "{err}");
    let polls = st.polls;
    wait_poll(&c, "csv-poll", "still polling", |s| s.polls >= polls + 2)
        .await
        .unwrap();

    ep.set(|a| {
        a.body =
            "station,level,time\ntd1,1.62,2024-05-01T10:10:00Z\nda1,,2024-05-01T10:10:00Z\n".into();
    });
    let st = wait_poll(&c, "csv-poll", "recovered", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!(st.consecutive_failures, 0);
    assert!(st.last_error.is_none());
    assert_eq!((st.last_accepted, st.last_rejected), (1, 1), "{st:?}");
    let sample = st.rejected_sample.unwrap();
    assert!(
        sample.contains("$.level: is missing"),
        "an empty cell is a missing value: {sample}"
    );
    let td1 = p.wait_points(TD1, "waterLevel", 2).await.unwrap();
    assert_eq!(td1[1].value, V::Number(1.62));
}

async fn seed_indicator(p: &Panorama) {
    p.store
        .upsert_admin_units(&[AdminUnit {
            code: "74".into(),
            name: "Bình Dương".into(),
            name_en: None,
            level: AdminLevel::Province,
            parent: None,
            geometry: None,
            valid_from: None,
            valid_to: None,
            successors: Vec::new(),
        }])
        .await
        .unwrap();
    p.store
        .upsert_indicators(&[Indicator {
            code: "cpi".into(),
            name: "Chỉ số giá tiêu dùng".into(),
            name_en: "Consumer price index".into(),
            domain: "economy".into(),
            unit: "%".into(),
            periodicity: Periodicity::Monthly,
            direction: Direction::LowerIsBetter,
            targets: Default::default(),
            thresholds: Thresholds::Absolute {
                green: 104.0,
                amber: 106.0,
            },
            owner_agency: None,
            computation: Computation::Submitted,
            source: None,
            headline: false,
        }])
        .await
        .unwrap();
}

async fn revisions(p: &Panorama, period: &str) -> Vec<f64> {
    p.store
        .indicator_value_history("cpi", period, "74")
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.value)
        .collect()
}

/// JSON and CSV records become indicator values; an unchanged figure makes
/// no new revision; a changed one does; an unknown admin unit is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_become_indicator_values_without_repeated_revisions() {
    let p = Panorama::open().await.unwrap();
    seed_indicator(&p).await;
    let c = connectors(&p);

    let doc = json!({"rows": [
        {"code": "cpi", "month": "2024-04", "unit": "74", "value": 103.2},
        {"code": "cpi", "month": "2024-05", "unit": "74", "value": "103,9"},
    ]});
    let json_ep = Endpoint::start(Answer::json(doc)).await.unwrap();
    let iv = json!({"indicator": "$.code", "period": "$.month", "admin_unit": "$.unit", "value": "$.value"});
    let s = p
        .poll_source(
            "cpi-json",
            poll(
                &json_ep.url,
                json!({"records": "$.rows", "indicator_values": iv}),
            ),
        )
        .await
        .unwrap();
    c.start(&s).unwrap();
    let st = wait_poll(&c, "cpi-json", "ok", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!(st.last_accepted, 2, "{st:?}");
    let polls = st.polls;
    let st = wait_poll(&c, "cpi-json", "re-polled", |s| s.polls >= polls + 3)
        .await
        .unwrap();
    assert_eq!((st.last_accepted, st.last_skipped), (0, 2), "{st:?}");
    assert_eq!(revisions(&p, "2024-05").await, [103.9]);
    c.stop("cpi-json");

    // A CSV of the same indicator, with a constant code and a revision.
    let csv = "thang;don_vi;gia_tri\n2024-05;74;104.1\n2024-06;79;101.0\n";
    let csv_ep = Endpoint::start(Answer::csv(csv)).await.unwrap();
    let iv = json!({"indicator": "cpi", "period": "$.thang", "admin_unit": "$.don_vi", "value": "$.gia_tri"});
    let s = p
        .poll_source(
            "cpi-csv",
            poll(
                &csv_ep.url,
                json!({"format": "csv", "delimiter": ";", "indicator_values": iv}),
            ),
        )
        .await
        .unwrap();
    c.start(&s).unwrap();
    let st = wait_poll(&c, "cpi-csv", "ok", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!((st.last_accepted, st.last_rejected), (1, 1), "{st:?}");
    assert!(
        st.rejected_sample.unwrap().contains("79"),
        "the unknown unit is shown"
    );
    let polls = st.polls;
    wait_poll(&c, "cpi-csv", "re-polled", |s| s.polls >= polls + 2)
        .await
        .unwrap();
    assert_eq!(revisions(&p, "2024-05").await, [103.9, 104.1]);

    // The CSV loses its value column.
    csv_ep.set(|a| a.body = "thang;don_vi\n2024-05;74\n".into());
    let st = wait_poll(&c, "cpi-csv", "format_changed", |s| {
        s.state == PollState::FormatChanged
    })
    .await
    .unwrap();
    assert!(
        st.last_error
            .unwrap()
            .contains("column 'gia_tri' is missing"),
        "names the column"
    );
}

/// ETag and Last-Modified are sent back; a 304 is a successful poll with
/// nothing new, and nothing is written twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etag_and_last_modified_make_conditional_requests() {
    let p = Panorama::open().await.unwrap();
    let doc = items(json!([{"station": "td1", "level": 1.5, "time": "2024-05-01T10:00:00Z"}]));
    let mut a = Answer::json(doc);
    a.etag = Some("\"v1\"".into());
    let ep = Endpoint::start(a).await.unwrap();
    let c = connectors(&p);
    let s = p
        .poll_source(
            "etag",
            poll(
                &ep.url,
                json!({"records": "$.data.items", "mapping": water_mapping(),
                       "headers": {"Authorization": "Bearer agency-secret"}}),
            ),
        )
        .await
        .unwrap();
    c.start(&s).unwrap();
    let st = wait_poll(&c, "etag", "answered 304", |s| s.last_not_modified)
        .await
        .unwrap();
    assert_eq!(
        (st.state, st.last_http_status, st.last_accepted),
        (PollState::Ok, Some(304), 0)
    );
    let seen = ep.seen();
    assert_eq!(seen[0].if_none_match, None, "the first request is plain");
    assert_eq!(seen[1].if_none_match.as_deref(), Some("\"v1\""));
    assert!(seen[1].not_modified);
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("Bearer agency-secret")
    );
    assert_eq!(p.points(TD1, "waterLevel").await.len(), 1);

    // Now the endpoint uses Last-Modified only, with a new document.
    let lm = "Wed, 01 May 2024 03:10:00 GMT";
    ep.set(|a| {
        a.etag = None;
        a.last_modified = Some(lm.into());
        a.body = items(json!([{"station": "td1", "level": 1.7, "time": "2024-05-01T10:10:00Z"}]))
            .to_string();
    });
    let n = ep.seen().len();
    wait_poll(&c, "etag", "answered 304 again", |_| {
        ep.seen()[n..]
            .iter()
            .any(|s| s.if_modified_since.as_deref() == Some(lm) && s.not_modified)
    })
    .await
    .unwrap();
    let td1 = p.points(TD1, "waterLevel").await;
    assert_eq!(td1.len(), 2, "{td1:?}");
    assert_eq!(td1[1].value, V::Number(1.7));
}

/// 500, a timeout, an HTML page and a changed JSON shape each show a
/// status that says what is wrong; the connector backs off, keeps polling
/// and recovers when the endpoint is fixed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_reported_and_the_connector_recovers() {
    let p = Panorama::open().await.unwrap();
    let good = items(json!([{"station": "td1", "level": 1.5, "time": "2024-05-01T10:00:00Z"}]));
    let ep = Endpoint::start(Answer::json(good.clone())).await.unwrap();
    let c = connectors(&p);
    let s = p
        .poll_source(
            "flaky",
            poll(
                &ep.url,
                json!({"records": "$.data.items", "mapping": water_mapping(), "timeout_secs": 10}),
            ),
        )
        .await
        .unwrap();
    c.start(&s).unwrap();
    wait_poll(&c, "flaky", "ok", |s| s.state == PollState::Ok)
        .await
        .unwrap();

    let recover = |ep: &Endpoint| {
        ep.set(|a| {
            *a = Answer::json(good.clone());
        })
    };
    let expect_failure = async |state: PollState, words: &str, http: Option<u16>| {
        let st = wait_poll(&c, "flaky", "failing", |s| {
            s.state == state && s.consecutive_failures >= 3
        })
        .await
        .unwrap();
        let err = st.last_error.clone().unwrap();
        assert!(err.contains(words), "{err} should say {words}");
        assert_eq!(st.last_http_status, http, "{st:?}");
        st
    };

    // 500, with the back-off growing to its cap (100 ms, 200 ms, 200 ms…).
    ep.set(|a| a.status = 500);
    let st = expect_failure(PollState::Failing, "the endpoint answered 500", Some(500)).await;
    let gap = (st.next_poll_at.unwrap() - st.last_poll_at.unwrap())
        .to_std()
        .unwrap();
    assert!(gap >= UNIT * 10, "backed off to the cap: {gap:?}");
    let st = wait_poll(&c, "flaky", "failing longer", |s| {
        s.consecutive_failures >= 6
    })
    .await
    .unwrap();
    let gap = (st.next_poll_at.unwrap() - st.last_poll_at.unwrap())
        .to_std()
        .unwrap();
    assert!(gap < UNIT * 40, "the back-off is capped: {gap:?}");
    recover(&ep);
    let st = wait_poll(&c, "flaky", "recovered", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!(st.consecutive_failures, 0);
    assert!(st.last_error.is_none());
    let gap = (st.next_poll_at.unwrap() - st.last_success_at.unwrap())
        .to_std()
        .unwrap();
    assert!(gap <= UNIT * 6, "back to the interval: {gap:?}");

    // Slower than the timeout (10 units = 200 ms).
    ep.set(|a| a.delay = Duration::from_secs(2));
    expect_failure(PollState::Failing, "timed out after 10 s", None).await;
    recover(&ep);
    wait_poll(&c, "flaky", "recovered", |s| s.state == PollState::Ok)
        .await
        .unwrap();

    // An HTML page (a portal's maintenance page, say).
    ep.set(|a| {
        a.content_type = "text/html; charset=utf-8".into();
        a.body = "<html><body>Bảo trì hệ thống</body></html>".into();
    });
    expect_failure(PollState::Failing, "an HTML page (text/html)", Some(200)).await;
    recover(&ep);
    wait_poll(&c, "flaky", "recovered", |s| s.state == PollState::Ok)
        .await
        .unwrap();

    // Broken JSON.
    ep.set(|a| a.body = "{\"data\": [".into());
    expect_failure(PollState::Failing, "the answer is not JSON", Some(200)).await;
    recover(&ep);
    wait_poll(&c, "flaky", "recovered", |s| s.state == PollState::Ok)
        .await
        .unwrap();

    // The agency reshapes its JSON.
    ep.set(|a| {
        a.body = json!({"results": [{"station": "td1", "level": 1.9}]}).to_string();
    });
    expect_failure(
        PollState::FormatChanged,
        "the JSON no longer has the array at $.data.items",
        Some(200),
    )
    .await;
    // Records that are all unmappable are a format change too.
    ep.set(|a| {
        a.body = items(json!([{"id": "td1", "reading": 1.9}, {"id": "da1", "reading": 0.7}]))
            .to_string();
    });
    let st = wait_poll(&c, "flaky", "no record maps", |s| {
        s.last_error
            .as_deref()
            .is_some_and(|e| e.contains("no record matches the mapping"))
    })
    .await
    .unwrap();
    assert_eq!(st.state, PollState::FormatChanged);
    ep.set(|a| {
        a.body = items(json!([{"station": "td1", "level": 1.8, "time": "2024-05-01T10:20:00Z"}]))
            .to_string();
    });
    wait_poll(&c, "flaky", "recovered", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    let td1 = p.wait_points(TD1, "waterLevel", 2).await.unwrap();
    assert_eq!(
        td1.len(),
        2,
        "nothing duplicated across the failures: {td1:?}"
    );
    assert_eq!(td1[1].value, V::Number(1.8));
}

/// A refused endpoint (nothing listens) says it cannot connect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endpoint_that_is_down_is_reported() {
    let p = Panorama::open().await.unwrap();
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let c = connectors(&p);
    let s = p
        .poll_source(
            "down",
            poll(&format!("http://127.0.0.1:{port}/feed"), json!({})),
        )
        .await
        .unwrap();
    c.start(&s).unwrap();
    let st = wait_poll(&c, "down", "failing", |s| s.state == PollState::Failing)
        .await
        .unwrap();
    assert!(
        st.last_error
            .unwrap()
            .contains("cannot connect to the endpoint"),
        "plain words"
    );
    assert_eq!(st.last_http_status, None);
}

/// After a restart the connector knows from the store what it already
/// wrote: the same document writes nothing again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_connector_does_not_write_the_same_records_again() {
    let p = Panorama::open().await.unwrap();
    let doc = items(json!([
        {"station": "td1", "level": 1.5, "time": "2024-05-01T10:00:00Z"},
        {"station": "da1", "level": 0.75, "time": "2024-05-01T10:00:00Z"},
    ]));
    let ep = Endpoint::start(Answer::json(doc)).await.unwrap();
    let connector = poll(
        &ep.url,
        json!({"records": "$.data.items", "mapping": water_mapping()}),
    );
    let s = p.poll_source("water-poll", connector).await.unwrap();
    let c = connectors(&p);
    c.start(&s).unwrap();
    let st = wait_poll(&c, "water-poll", "ok", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!(st.last_accepted, 2);
    drop(c);

    let c = connectors(&p);
    assert_eq!(c.start_all().await.unwrap(), 1);
    let st = wait_poll(&c, "water-poll", "ok", |s| s.state == PollState::Ok)
        .await
        .unwrap();
    assert_eq!((st.last_accepted, st.last_skipped), (0, 2), "{st:?}");
    assert_eq!(p.points(TD1, "waterLevel").await.len(), 1);
}

/// Without `format`, a body that is neither JSON nor labelled CSV is not
/// guessed at: the status says to set the format.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unlabelled_body_asks_for_the_format() {
    let p = Panorama::open().await.unwrap();
    let mut a = Answer::csv("station,level\ntd1,1.5\n");
    a.content_type = "application/octet-stream".into();
    let ep = Endpoint::start(a).await.unwrap();
    let c = connectors(&p);
    let s = p
        .poll_source("blob", poll(&ep.url, json!({})))
        .await
        .unwrap();
    c.start(&s).unwrap();
    let st = wait_poll(&c, "blob", "failing", |s| s.state == PollState::Failing)
        .await
        .unwrap();
    let err = st.last_error.unwrap();
    assert!(
        err.contains("application/octet-stream") && err.contains("set connector.format"),
        "{err}"
    );
}
