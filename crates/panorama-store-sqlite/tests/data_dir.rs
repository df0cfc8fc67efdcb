//! Behaviour of the embedded store's data dir: the lock, restarts, schema
//! migrations, and durability when the process dies without closing.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::{DateTime, Utc};
use panorama_core::{
    AdminLevel, AdminUnit, AttributeSpec, Computation, Direction, Domain, Entity, Indicator,
    IndicatorValueInput, Observation, Periodicity, Role, Source, SourceKind, Thresholds, User,
    Value, ValueType,
};
use panorama_store::{
    EntityQuery, IndicatorValueQuery, SeriesData, SeriesQuery, SourceActivity, Store, StoreError,
};
use panorama_store_sqlite::{DB_FILE, SqliteOptions, SqliteStore, schema_version};
use serde_json::json;
use sqlx::migrate::Migrator;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::io::BufRead;
use std::path::Path;

/// The same migrations the store embeds, to build "older Panorama" data dirs.
static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

fn t(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().to_utc()
}

async fn open(dir: &Path) -> SqliteStore {
    SqliteStore::open(dir, SqliteOptions::default())
        .await
        .expect("the store opens")
}

fn sensor(id: &str, unit: &str) -> Entity {
    Entity {
        id: format!("urn:ngsi-ld:AirQualitySensor:{id}"),
        entity_type: "AirQualitySensor".into(),
        name: format!("Trạm quan trắc {id}"),
        domain: "environment".into(),
        admin_unit: Some(unit.into()),
        location: Some(
            serde_json::from_value(json!({"type": "Point", "coordinates": [106.65, 10.98]}))
                .unwrap(),
        ),
        attributes: [(
            "pm25".to_string(),
            AttributeSpec {
                value_type: ValueType::Number,
                unit: Some("µg/m3".into()),
            },
        )]
        .into_iter()
        .collect(),
        properties: serde_json::Map::new(),
        source: None,
        updated_at: None,
    }
}

fn pm25(id: &str, time: DateTime<Utc>, v: f64) -> Observation {
    Observation {
        entity: format!("urn:ngsi-ld:AirQualitySensor:{id}"),
        attribute: "pm25".into(),
        time,
        value: Value::Number(v),
    }
}

fn series_q(id: &str, attribute: &str) -> SeriesQuery {
    SeriesQuery {
        entity: format!("urn:ngsi-ld:AirQualitySensor:{id}"),
        attribute: attribute.into(),
        from: t("2024-01-01T00:00:00Z"),
        to: t("2025-01-01T00:00:00Z"),
        bucket: None,
        limit: 1_000_000,
    }
}

fn raw_len(d: SeriesData) -> usize {
    match d {
        SeriesData::Raw(p) => p.len(),
        SeriesData::Buckets(_) => panic!("expected raw points"),
    }
}

fn indicator() -> Indicator {
    Indicator {
        code: "aqi-good-days-rate".into(),
        name: "Tỷ lệ ngày có chất lượng không khí tốt".into(),
        name_en: "Share of days with good air quality".into(),
        domain: "environment".into(),
        unit: "%".into(),
        periodicity: Periodicity::Monthly,
        direction: Direction::HigherIsBetter,
        targets: [(2024, 80.0)].into_iter().collect(),
        thresholds: Thresholds::default(),
        owner_agency: None,
        computation: Computation::Submitted,
        source: None,
        headline: true,
    }
}

fn value(period: &str, v: f64) -> IndicatorValueInput {
    IndicatorValueInput {
        indicator: "aqi-good-days-rate".into(),
        period: period.into(),
        admin_unit: "74".into(),
        value: v,
        status: None,
        note: None,
    }
}

/// Admin units, an entity and an indicator: what every scenario starts from.
async fn seed(store: &SqliteStore) {
    let unit = |code: &str, name: &str, level, parent: Option<&str>| AdminUnit {
        code: code.into(),
        name: name.into(),
        name_en: None,
        level,
        parent: parent.map(Into::into),
        geometry: None,
        valid_from: None,
        valid_to: None,
        successors: Vec::new(),
    };
    store
        .upsert_admin_units(&[
            unit("74", "Tỉnh Bình Dương", AdminLevel::Province, None),
            unit(
                "718",
                "Thành phố Thủ Dầu Một",
                AdminLevel::District,
                Some("74"),
            ),
        ])
        .await
        .unwrap();
    store
        .upsert_entities(&[sensor("td1", "718")], t("2024-05-01T00:00:00Z"))
        .await
        .unwrap();
    store.upsert_indicators(&[indicator()]).await.unwrap();
}

#[tokio::test]
async fn a_new_data_dir_has_the_layout_schema_and_seed_domains() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    for name in ["panorama.lock", "panorama.db", "obs"] {
        assert!(dir.path().join(name).exists(), "{name}");
    }
    let domains = store.domains().await.unwrap();
    assert_eq!(domains, panorama_core::seed_domains());
    // Seeding happens once: a domain the operator removed or renamed stays so.
    let renamed = Domain {
        name: "Y tế – sức khỏe".into(),
        ..domains[0].clone()
    };
    store
        .upsert_domains(std::slice::from_ref(&renamed))
        .await
        .unwrap();
    store.close().await.unwrap();
    let store = open(dir.path()).await;
    assert_eq!(store.domains().await.unwrap()[0], renamed);
    store.close().await.unwrap();

    let pool = connect(dir.path()).await;
    assert_eq!(
        recorded_versions(&pool).await,
        (1..=schema_version()).collect::<Vec<_>>()
    );
    let mode: String = sqlx::query_scalar("PRAGMA journal_mode")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(mode, "wal");
    pool.close().await;
}

#[tokio::test]
async fn a_second_open_of_the_same_dir_is_refused_until_the_first_closes() {
    let dir = tempfile::tempdir().unwrap();
    let first = open(dir.path()).await;
    match SqliteStore::open(dir.path(), SqliteOptions::default()).await {
        Err(StoreError::Locked(path)) => assert_eq!(path, dir.path().display().to_string()),
        other => panic!("expected Locked, got {other:?}"),
    }
    // The refused open changed nothing: the first store works on.
    seed(&first).await;
    first.close().await.unwrap();

    let second = open(dir.path()).await;
    assert!(
        second
            .entity("urn:ngsi-ld:AirQualitySensor:td1")
            .await
            .unwrap()
            .is_some()
    );
    // Dropping without close releases the dir too.
    drop(second);
    let third = open(dir.path()).await;
    third.close().await.unwrap();
}

#[tokio::test]
async fn a_restart_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    seed(&store).await;
    store
        .append_observations(vec![
            pm25("td1", t("2024-05-01T00:00:00Z"), 10.0),
            pm25("td1", t("2024-05-01T00:01:00Z"), 11.0),
        ])
        .await
        .unwrap();
    store
        .submit_indicator_values(
            &[value("2024-05", 75.0)],
            "user:lan",
            t("2024-06-01T00:00:00Z"),
        )
        .await
        .unwrap();
    store
        .submit_indicator_values(
            &[value("2024-05", 76.0)],
            "user:lan",
            t("2024-06-02T00:00:00Z"),
        )
        .await
        .unwrap();
    let source = Source {
        id: "aq-network".into(),
        name: "Mạng quan trắc".into(),
        kind: SourceKind::HttpPush,
        owner_agency: None,
        domain: Some("environment".into()),
        expected_interval_secs: 60,
        created_at: t("2024-05-01T00:00:00Z"),
        last_seen_at: None,
        accepted: 0,
        rejected: 0,
        last_error: None,
        connector: None,
    };
    store.create_source(&source, &[5; 32]).await.unwrap();
    let activity = SourceActivity {
        at: Some(t("2024-05-01T00:01:00Z")),
        accepted: 2,
        rejected: 1,
        last_error: Some("bad".into()),
    };
    store
        .record_source_activity("aq-network", &activity)
        .await
        .unwrap();
    let user = User {
        username: "lan".into(),
        display_name: "Nguyễn Thị Lan".into(),
        role: Role::Officer,
        agency: None,
        created_at: t("2024-05-01T00:00:00Z"),
    };
    store.create_user(&user, "$argon2id$hash").await.unwrap();
    store
        .create_session(&[6; 32], "lan", t("2024-05-02T00:00:00Z"))
        .await
        .unwrap();

    let all = EntityQuery {
        limit: 100,
        ..EntityQuery::default()
    };
    let values = IndicatorValueQuery::default();
    let before = (
        store.admin_units().await.unwrap(),
        store.domains().await.unwrap(),
        store.query_entities(&all).await.unwrap(),
        store
            .latest(&["urn:ngsi-ld:AirQualitySensor:td1".into()])
            .await
            .unwrap(),
        store.series(&series_q("td1", "pm25")).await.unwrap(),
        store.indicators(None).await.unwrap(),
        store.indicator_values(&values).await.unwrap(),
        store
            .indicator_value_history("aqi-good-days-rate", "2024-05", "74")
            .await
            .unwrap(),
        store.sources().await.unwrap(),
        store.user_with_hash("lan").await.unwrap(),
        store
            .session_user(&[6; 32], t("2024-05-01T12:00:00Z"))
            .await
            .unwrap(),
    );
    store.close().await.unwrap();

    let store = open(dir.path()).await;
    let after = (
        store.admin_units().await.unwrap(),
        store.domains().await.unwrap(),
        store.query_entities(&all).await.unwrap(),
        store
            .latest(&["urn:ngsi-ld:AirQualitySensor:td1".into()])
            .await
            .unwrap(),
        store.series(&series_q("td1", "pm25")).await.unwrap(),
        store.indicators(None).await.unwrap(),
        store.indicator_values(&values).await.unwrap(),
        store
            .indicator_value_history("aqi-good-days-rate", "2024-05", "74")
            .await
            .unwrap(),
        store.sources().await.unwrap(),
        store.user_with_hash("lan").await.unwrap(),
        store
            .session_user(&[6; 32], t("2024-05-01T12:00:00Z"))
            .await
            .unwrap(),
    );
    assert_eq!(before, after);
    assert_eq!(after.7.len(), 2);
    assert_eq!(after.8[0].accepted, 2);

    // The catalog is back: appends need no re-declaration, and a new
    // attribute gets a series of its own.
    let appended = store
        .append_observations(vec![pm25("td1", t("2024-05-01T00:02:00Z"), 12.0)])
        .await
        .unwrap();
    let pm25_series = appended.series[0].series;
    let mut e = sensor("td1", "718");
    e.attributes.insert(
        "no2".into(),
        AttributeSpec {
            value_type: ValueType::Number,
            unit: None,
        },
    );
    store
        .upsert_entities(&[e], t("2024-05-02T00:00:00Z"))
        .await
        .unwrap();
    let no2 = Observation {
        attribute: "no2".into(),
        ..pm25("td1", t("2024-05-01T00:02:00Z"), 40.0)
    };
    let appended = store.append_observations(vec![no2]).await.unwrap();
    assert_ne!(appended.series[0].series, pm25_series);
    assert_eq!(
        raw_len(store.series(&series_q("td1", "pm25")).await.unwrap()),
        3
    );
    assert_eq!(
        raw_len(store.series(&series_q("td1", "no2")).await.unwrap()),
        1
    );
    let h = store.health().await;
    assert_eq!((h.entities, h.series), (1, 2));
    assert!(h.disk_bytes.unwrap_or(0) > 0);
    store.close().await.unwrap();
}

#[tokio::test]
async fn dropping_the_store_without_close_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    seed(&store).await;
    for i in 0..50 {
        let time = t("2024-05-01T00:00:00Z") + chrono::Duration::seconds(i);
        store
            .append_observations(vec![pm25("td1", time, i as f64)])
            .await
            .unwrap();
    }
    store
        .submit_indicator_values(
            &[value("2024-05", 75.0)],
            "user:lan",
            t("2024-06-01T00:00:00Z"),
        )
        .await
        .unwrap();
    drop(store);

    let store = open(dir.path()).await;
    assert_eq!(
        raw_len(store.series(&series_q("td1", "pm25")).await.unwrap()),
        50
    );
    assert_eq!(
        store
            .indicator_values(&IndicatorValueQuery::default())
            .await
            .unwrap()
            .len(),
        1
    );
    store.close().await.unwrap();
}

const KILL_CHILD_DIR: &str = "PANORAMA_TEST_KILL_CHILD_DIR";

/// Runs as a child process (see below): seeds the store, then appends one
/// observation at a time, printing each acknowledgement, until killed.
fn kill_child(dir: &Path) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = open(dir).await;
        seed(&store).await;
        store
            .submit_indicator_values(
                &[value("2024-05", 75.0)],
                "user:lan",
                t("2024-06-01T00:00:00Z"),
            )
            .await
            .unwrap();
        println!("seeded");
        for i in 0..20_000i64 {
            let time = t("2024-05-01T00:00:00Z") + chrono::Duration::seconds(i);
            store
                .append_observations(vec![pm25("td1", time, i as f64)])
                .await
                .unwrap();
            println!("acked {i}");
        }
        // Wait to be killed rather than close.
        tokio::time::sleep(std::time::Duration::from_secs(120)).await;
    });
}

/// The process is killed (SIGKILL) while appending: everything it
/// acknowledged is there after reopening, and the dir is not left locked.
#[test]
fn a_killed_process_loses_nothing_acknowledged() {
    if let Some(dir) = std::env::var_os(KILL_CHILD_DIR) {
        kill_child(Path::new(&dir));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "a_killed_process_loses_nothing_acknowledged",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(KILL_CHILD_DIR, dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut seeded = false;
    let mut last_acked: Option<i64> = None;
    for line in std::io::BufReader::new(stdout).lines() {
        let line = line.unwrap();
        // The harness may print "test … … " before the first line.
        if line.ends_with("seeded") {
            seeded = true;
        } else if let Some(n) = line.strip_prefix("acked ") {
            last_acked = Some(n.parse().unwrap());
            if last_acked >= Some(200) {
                break;
            }
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(seeded, "the child did not seed its store");
    let acked = last_acked.expect("the child acknowledged appends") + 1;

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = open(dir.path()).await;
        assert!(
            store
                .entity("urn:ngsi-ld:AirQualitySensor:td1")
                .await
                .unwrap()
                .is_some()
        );
        assert_eq!(
            store
                .indicator_values(&IndicatorValueQuery::default())
                .await
                .unwrap()
                .len(),
            1
        );
        let n = raw_len(store.series(&series_q("td1", "pm25")).await.unwrap());
        assert!(
            n >= usize::try_from(acked).unwrap(),
            "{n} points stored, {acked} acknowledged"
        );
        store.close().await.unwrap();
    });
}

// --- migrations --------------------------------------------------------------

async fn connect(dir: &Path) -> SqlitePool {
    let opts = SqliteConnectOptions::new()
        .filename(dir.join(DB_FILE))
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .foreign_keys(true);
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(opts)
        .await
        .unwrap()
}

async fn recorded_versions(pool: &SqlitePool) -> Vec<i64> {
    sqlx::query_scalar("SELECT version FROM _sqlx_migrations ORDER BY version")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_data_dir_of_an_older_panorama_is_migrated() {
    assert!(
        schema_version() >= 2,
        "this test needs at least two migrations"
    );
    let dir = tempfile::tempdir().unwrap();

    // "Panorama at schema version 1": only the first migration, and some data.
    let pool = connect(dir.path()).await;
    let v1 = Migrator::with_migrations(MIGRATIONS.iter().take(1).cloned().collect());
    v1.run(&pool).await.unwrap();
    for sql in [
        "INSERT INTO domains (code, name, name_en, icon, sort) VALUES ('environment', 'Môi trường', 'Environment', 'leaf', 0)",
        "INSERT INTO admin_units (code, name, level) VALUES ('74', 'Tỉnh Bình Dương', 'province')",
        "INSERT INTO entities (id, type, name, search_text, domain, admin_unit, lon, lat, location, properties, updated_at)
         VALUES ('urn:ngsi-ld:AirQualitySensor:old', 'AirQualitySensor', 'Trạm cũ', 'tram cu', 'environment', '74',
                 106.6, 11.0, '{\"type\":\"Point\",\"coordinates\":[106.6,11.0]}', '{}', 0)",
        "INSERT INTO series (series, entity, attribute, value_type, unit) VALUES (0, 'urn:ngsi-ld:AirQualitySensor:old', 'pm25', 'number', 'µg/m3')",
    ] {
        sqlx::query(sql).execute(&pool).await.unwrap();
    }
    assert_eq!(recorded_versions(&pool).await, [1]);
    pool.close().await;

    let store = open(dir.path()).await;
    let old = store
        .entity("urn:ngsi-ld:AirQualitySensor:old")
        .await
        .unwrap()
        .expect("old data kept");
    assert_eq!(old.name, "Trạm cũ");
    assert_eq!(old.attributes["pm25"].unit.as_deref(), Some("µg/m3"));
    // Old entities are observable at once (the catalog is loaded from the migrated db).
    store
        .append_observations(vec![pm25("old", t("2024-05-01T00:00:00Z"), 1.0)])
        .await
        .unwrap();
    // An existing dir is not re-seeded.
    assert_eq!(store.domains().await.unwrap().len(), 1);
    store.close().await.unwrap();

    let pool = connect(dir.path()).await;
    assert_eq!(
        recorded_versions(&pool).await,
        (1..=schema_version()).collect::<Vec<_>>()
    );
    let index: Option<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'entities_by_point'",
    )
    .fetch_optional(&pool)
    .await
    .unwrap();
    assert_eq!(
        index.as_deref(),
        Some("entities_by_point"),
        "migration 2 applied"
    );
    pool.close().await;
}

/// Everything that says what the database holds, to show it did not change.
async fn snapshot(dir: &Path) -> (Vec<String>, Vec<(i64, String)>, Vec<String>) {
    let pool = connect(dir).await;
    let schema: Vec<String> =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY name")
            .fetch_all(&pool)
            .await
            .unwrap();
    let migrations =
        sqlx::query("SELECT version, description FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap()
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
    let entities: Vec<String> = sqlx::query_scalar("SELECT id FROM entities ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    (schema, migrations, entities)
}

#[tokio::test]
async fn a_data_dir_of_a_newer_panorama_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    seed(&store).await;
    store.close().await.unwrap();

    // A newer Panorama added migration 9999 (and a table of its own).
    let pool = connect(dir.path()).await;
    sqlx::query("CREATE TABLE future_things (id INTEGER PRIMARY KEY)")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
         VALUES (9999, 'future things', TRUE, x'00', 0)",
    )
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
    let before = snapshot(dir.path()).await;
    let db_before = std::fs::read(dir.path().join(DB_FILE)).unwrap();

    let err = SqliteStore::open(dir.path(), SqliteOptions::default())
        .await
        .expect_err("a newer dir is refused");
    match &err {
        StoreError::TooNew {
            found,
            supported,
            path,
        } => {
            assert_eq!((*found, *supported), (9999, schema_version()));
            assert_eq!(path, &dir.path().display().to_string());
        }
        other => panic!("expected TooNew, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("9999") && msg.contains("upgrade Panorama"),
        "{msg}"
    );
    assert_eq!(
        std::fs::read(dir.path().join(DB_FILE)).unwrap(),
        db_before,
        "the database file is unchanged"
    );
    assert_eq!(snapshot(dir.path()).await, before);

    // The refusal released the dir.
    let pool = connect(dir.path()).await;
    sqlx::query("DELETE FROM _sqlx_migrations WHERE version = 9999")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;
    let store = open(dir.path()).await;
    store.close().await.unwrap();
}

#[tokio::test]
async fn observations_without_their_database_are_not_reused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    seed(&store).await;
    store
        .append_observations(vec![pm25("td1", t("2024-05-01T00:00:00Z"), 1.0)])
        .await
        .unwrap();
    store.close().await.unwrap();
    drop(store);

    // The database is lost, the observations are not: series 0 of a new
    // database would be another entity's, so the store refuses to open.
    for name in [DB_FILE, "panorama.db-wal", "panorama.db-shm"] {
        let _ = std::fs::remove_file(dir.path().join(name));
    }
    match SqliteStore::open(dir.path(), SqliteOptions::default()).await {
        Err(StoreError::Backend(msg)) => {
            assert!(msg.contains("obs") && msg.contains("backup"), "{msg}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    match SqliteStore::open(dir.path(), SqliteOptions::default()).await {
        Err(StoreError::Backend(_)) => {}
        other => panic!("a second attempt is refused too, got {other:?}"),
    }
}
