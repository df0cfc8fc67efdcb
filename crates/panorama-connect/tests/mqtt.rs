//! The MQTT connector against a real Mosquitto: mapping into the store,
//! acknowledgement only after durable commit, reconnection, bad payloads.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

mod common;

use common::*;
use panorama_connect::{ConnectionState, Connectors};
use panorama_core::Value as V;
use panorama_ingest::IngestOptions;
use rumqttc::QoS;
use serde_json::json;
use std::time::Duration;

fn connector(port: u16, filter: &str, mapping: serde_json::Value) -> serde_json::Value {
    json!({
        "host": "127.0.0.1",
        "port": port,
        "topics": [{"filter": filter, "qos": 1}],
        "mapping": mapping,
    })
}

const SDM: &str = r#"{
  "id": "urn:ngsi-ld:AirQualityObserved:td1-007",
  "type": "AirQualityObserved",
  "name": "Trạm Thủ Dầu Một 7",
  "dateObserved": "2024-05-01T10:00:00+07:00",
  "location": {"type": "Point", "coordinates": [106.65, 10.98]},
  "address": {"addressLocality": "Thủ Dầu Một"},
  "pm25": 41.5,
  "no2": 22,
  "airQualityLevel": "moderate",
  "refDevice": "urn:ngsi-ld:Device:td1-007"
}"#;

const SENSOR_COMMUNITY: &str = r#"{
  "esp8266id": "15072310",
  "software_version": "NRZ-2020-133",
  "sensordatavalues": [
    {"value_type": "SDS_P1", "value": "57.30"},
    {"value_type": "SDS_P2", "value": "18.40"},
    {"value_type": "BME280_temperature", "value": "31.2"},
    {"value_type": "samples", "value": "880000"}
  ]
}"#;

/// Both built-in formats land with no mapping configured, and a topic +
/// JSON path mapping puts entity and attribute from the topic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payloads_map_to_observations_in_the_store() {
    let Some(bin) = mosquitto_or_skip() else {
        return;
    };
    let broker = Broker::start(bin).await.unwrap();
    let p = Panorama::open().await.unwrap();
    let connectors = Connectors::new(p.ingest(IngestOptions::default()), p.clock.clone());
    let auto = p
        .mqtt_source(
            "aq-mqtt",
            json!({"host": "127.0.0.1", "port": broker.port, "topics": [{"filter": "bd/aq/#"}]}),
        )
        .await
        .unwrap();
    let water = p
        .mqtt_source(
            "water-mqtt",
            connector(
                broker.port,
                "bd/water/+/+",
                json!({
                    "format": "json",
                    "topic": "bd/water/{station}/{attribute}",
                    "entity": "urn:ngsi-ld:WaterObserved:{station}",
                    "attribute": "{attribute}",
                    "value": "$.v",
                    "time": "$.t",
                    "time_unit": "ms"
                }),
            ),
        )
        .await
        .unwrap();
    assert!(connectors.start(&auto).unwrap());
    assert!(connectors.start(&water).unwrap());
    wait_connected(&connectors, "aq-mqtt").await.unwrap();
    wait_connected(&connectors, "water-mqtt").await.unwrap();

    publish(broker.port, "bd/aq/sdm", SDM, QoS::AtLeastOnce)
        .await
        .unwrap();
    publish(broker.port, "bd/aq/sc", SENSOR_COMMUNITY, QoS::AtLeastOnce)
        .await
        .unwrap();
    publish(
        broker.port,
        "bd/water/cau-ong-co/waterLevel",
        r#"{"v": 1.42, "t": 1714550400000}"#,
        QoS::AtLeastOnce,
    )
    .await
    .unwrap();

    let sdm = "urn:ngsi-ld:AirQualityObserved:td1-007";
    let pm25 = p.wait_points(sdm, "pm25", 1).await.unwrap();
    assert_eq!(pm25[0].value, V::Number(41.5));
    assert_eq!(pm25[0].time.to_rfc3339(), "2024-05-01T03:00:00+00:00");
    assert_eq!(
        p.wait_points(sdm, "no2", 1).await.unwrap()[0].value,
        V::Number(22.0)
    );
    assert_eq!(
        p.wait_points(sdm, "airQualityLevel", 1).await.unwrap()[0].value,
        V::Text("moderate".into())
    );
    let e = p.store.entity(sdm).await.unwrap().unwrap();
    assert_eq!(e.entity_type, "AirQualityObserved");
    assert_eq!(e.name, "Trạm Thủ Dầu Một 7");
    assert_eq!(e.domain, "environment");
    assert_eq!(e.point(), Some((106.65, 10.98)));
    let attrs: Vec<&str> = e.attributes.keys().map(String::as_str).collect();
    assert_eq!(attrs, ["airQualityLevel", "no2", "pm25"]);

    let sc = "urn:ngsi-ld:AirQualitySensor:sc-15072310";
    assert_eq!(
        p.wait_points(sc, "pm10", 1).await.unwrap()[0].value,
        V::Number(57.3)
    );
    assert_eq!(
        p.wait_points(sc, "pm25", 1).await.unwrap()[0].value,
        V::Number(18.4)
    );
    assert_eq!(
        p.wait_points(sc, "temperature", 1).await.unwrap()[0].value,
        V::Number(31.2)
    );
    assert!(p.points(sc, "samples").await.is_empty());

    let w = p
        .wait_points("urn:ngsi-ld:WaterObserved:cau-ong-co", "waterLevel", 1)
        .await
        .unwrap();
    assert_eq!(w[0].value, V::Number(1.42));
    assert_eq!(w[0].time.to_rfc3339(), "2024-05-01T08:00:00+00:00");

    // The status: counts, last message, connection.
    let st = connectors.status("aq-mqtt").unwrap();
    assert_eq!(st.state, ConnectionState::Connected);
    assert_eq!((st.messages, st.rejected_messages), (2, 0));
    assert!(st.last_message_at.is_some());
    connectors.stop_all();
}

/// A QoS 1 message received but not yet durable when Panorama dies is not
/// acknowledged: the broker delivers it again to the restarted connector,
/// and it lands once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos1_is_acknowledged_only_after_durable_commit() {
    let Some(bin) = mosquitto_or_skip() else {
        return;
    };
    let broker = Broker::start(bin).await.unwrap();
    let p = Panorama::open().await.unwrap();
    let src = p
        .mqtt_source(
            "aq",
            connector(
                broker.port,
                "bd/aq/#",
                json!({"format": "smart_data_models"}),
            ),
        )
        .await
        .unwrap();

    // A pipeline that cannot commit anything: every write is refused as
    // "try again later", as when the store is stuck.
    let stuck = p.ingest(IngestOptions {
        max_in_flight: 0,
        retry_after_secs: 1,
    });
    let first = Connectors::new(stuck, p.clock.clone());
    first.start(&src).unwrap();
    wait_connected(&first, "aq").await.unwrap();
    publish(broker.port, "bd/aq/sdm", SDM, QoS::AtLeastOnce)
        .await
        .unwrap();
    let st = wait_status(&first, "aq", "failing to store", |s| {
        s.messages == 1
            && s.last_error
                .as_deref()
                .is_some_and(|e| e.contains("cannot store"))
    })
    .await
    .unwrap();
    assert!(
        st.last_error.unwrap().contains("observations"),
        "names the cause"
    );
    let sdm = "urn:ngsi-ld:AirQualityObserved:td1-007";
    assert!(p.points(sdm, "pm25").await.is_empty());

    // Panorama dies between receipt and commit.
    first.stop_all();
    drop(first);
    tokio::time::sleep(Duration::from_millis(200)).await;

    let second = Connectors::new(p.ingest(IngestOptions::default()), p.clock.clone());
    second.start(&src).unwrap();
    let points = p.wait_points(sdm, "pm25", 1).await.unwrap();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0].value, V::Number(41.5));
    // Acknowledged now: nothing comes again, and nothing lands twice.
    tokio::time::sleep(Duration::from_millis(500)).await;
    second.stop_all();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let third = Connectors::new(p.ingest(IngestOptions::default()), p.clock.clone());
    third.start(&src).unwrap();
    wait_connected(&third, "aq").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        third.status("aq").unwrap().messages,
        0,
        "no redelivery after the ack"
    );
    assert_eq!(p.points(sdm, "pm25").await.len(), 1);
    third.stop_all();
}

/// The broker is killed and comes back: the connector reconnects (with
/// back-off), subscribes again and data flows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_resubscribes_after_the_broker_restarts() {
    let Some(bin) = mosquitto_or_skip() else {
        return;
    };
    let mut broker = Broker::start(bin).await.unwrap();
    let p = Panorama::open().await.unwrap();
    let src = p
        .mqtt_source(
            "water",
            connector(
                broker.port,
                "bd/water/#",
                json!({"format": "json", "topic": "bd/water/{station}", "entity": "urn:ngsi-ld:WaterObserved:{station}", "attribute": "waterLevel"}),
            ),
        )
        .await
        .unwrap();
    let c = Connectors::new(p.ingest(IngestOptions::default()), p.clock.clone());
    c.start(&src).unwrap();
    wait_connected(&c, "water").await.unwrap();
    publish(broker.port, "bd/water/g1", "1.0", QoS::AtLeastOnce)
        .await
        .unwrap();
    let e = "urn:ngsi-ld:WaterObserved:g1";
    p.wait_points(e, "waterLevel", 1).await.unwrap();

    broker.kill();
    let st = wait_status(&c, "water", "reconnecting", |s| {
        s.state == ConnectionState::Reconnecting && s.last_error.is_some()
    })
    .await
    .unwrap();
    assert!(!st.last_error.unwrap().is_empty());
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.restart().await.unwrap();
    wait_connected(&c, "water").await.unwrap();

    publish(broker.port, "bd/water/g1", "2.5", QoS::AtLeastOnce)
        .await
        .unwrap();
    let points = p.wait_points(e, "waterLevel", 2).await.unwrap();
    assert_eq!(points.last().unwrap().value, V::Number(2.5));
    c.stop_all();
}

/// Malformed messages are refused one by one, counted and named on the
/// source; the connector goes on and later good messages land.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_messages_are_counted_and_never_stop_the_connector() {
    let Some(bin) = mosquitto_or_skip() else {
        return;
    };
    let broker = Broker::start(bin).await.unwrap();
    let p = Panorama::open().await.unwrap();
    let src = p
        .mqtt_source("aq", json!({"host": "127.0.0.1", "port": broker.port, "topics": [{"filter": "bd/#", "qos": 1}]}))
        .await
        .unwrap();
    let ingest = p.ingest(IngestOptions::default());
    let c = Connectors::new(ingest.clone(), p.clock.clone());
    c.start(&src).unwrap();
    wait_connected(&c, "aq").await.unwrap();

    let bad_sc =
        r#"{"esp8266id": "77", "sensordatavalues": [{"value_type": "SDS_P1", "value": "lots"}]}"#;
    let msgs: Vec<(String, Vec<u8>)> = vec![
        ("bd/x".into(), b"not json at all".to_vec()),
        (
            "bd/x".into(),
            br#"{"type": "AirQualityObserved", "pm25": 3}"#.to_vec(),
        ),
        ("bd/x".into(), bad_sc.as_bytes().to_vec()),
        ("bd/x".into(), vec![0xff, 0xfe, 0x00]),
        ("bd/x".into(), SDM.as_bytes().to_vec()),
    ];
    publish_many(broker.port, &msgs, QoS::AtLeastOnce)
        .await
        .unwrap();
    let sdm = "urn:ngsi-ld:AirQualityObserved:td1-007";
    p.wait_points(sdm, "pm25", 1).await.unwrap();
    let st = wait_status(&c, "aq", "done", |s| s.messages == 5)
        .await
        .unwrap();
    assert_eq!(st.rejected_messages, 4);
    assert_eq!(st.state, ConnectionState::Connected);

    ingest.flush_activity().await.unwrap();
    let s = p.source("aq").await.unwrap();
    assert_eq!(s.rejected, 4);
    assert!(s.accepted >= 3, "{s:?}");
    assert!(s.last_seen_at.is_some());
    let err = s.last_error.unwrap();
    // The last refused message was the non-UTF-8 one; the others were
    // logged with their reasons as they came.
    assert!(err.contains("payload: is not UTF-8"), "{err}");

    // One more bad one after the good one: the error names the field.
    publish(broker.port, "bd/x", bad_sc, QoS::AtLeastOnce)
        .await
        .unwrap();
    wait_status(&c, "aq", "six", |s| s.rejected_messages == 5)
        .await
        .unwrap();
    ingest.flush_activity().await.unwrap();
    let err = p.source("aq").await.unwrap().last_error.unwrap();
    assert!(
        err.contains("sensordatavalues[0].value: 'lots' is not a number"),
        "{err}"
    );

    // And good data still flows.
    let again = SDM.replace("41.5", "43.0").replace("10:00:00", "10:05:00");
    publish(broker.port, "bd/x", again, QoS::AtLeastOnce)
        .await
        .unwrap();
    let pts = p.wait_points(sdm, "pm25", 2).await.unwrap();
    assert_eq!(pts[1].value, V::Number(43.0));
    c.stop_all();
}
