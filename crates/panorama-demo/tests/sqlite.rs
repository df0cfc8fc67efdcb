//! `load` into the embedded store (SQLite + panorama-tsdb) in a temporary
//! data dir, and the demo read back through the `Store` trait.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use chrono::{TimeZone, Utc};
use panorama_core::AdminLevel;
use panorama_demo::{DemoOptions, backfill, build, load, token_sha256};
use panorama_store::{EntityQuery, IndicatorValueQuery, SharedStore};
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use std::sync::Arc;

async fn load_into_sqlite(
    opts: &DemoOptions,
) -> (tempfile::TempDir, SharedStore, u64, std::time::Duration) {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let data = build(opts).unwrap();
    let t = std::time::Instant::now();
    let loaded = load(&store, &data, opts, &|s: &str| eprintln!("{s}"))
        .await
        .unwrap();
    (dir, store, loaded.observations, t.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_loads_into_the_embedded_store() {
    let opts = DemoOptions {
        sensors: 200,
        cameras: 20,
        backfill_days: 1,
        ..DemoOptions::new(Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 0).unwrap())
    };
    let data = build(&opts).unwrap();
    let (_dir, store, observations, _) = load_into_sqlite(&opts).await;
    assert_eq!(observations, backfill(&data, &opts).observation_count());

    let units = store.admin_units().await.unwrap();
    assert_eq!(
        units
            .iter()
            .filter(|u| u.level == AdminLevel::District)
            .count(),
        9
    );
    assert_eq!(
        store.indicators(None).await.unwrap().len(),
        data.indicators.len()
    );
    let page = store
        .query_entities(&EntityQuery {
            admin_unit: Some("74".into()),
            limit: 1000,
            ..EntityQuery::default()
        })
        .await
        .unwrap();
    assert!(!page.items.is_empty());
    let values = store
        .indicator_values(&IndicatorValueQuery {
            indicator: Some("fdi-projects".into()),
            ..IndicatorValueQuery::default()
        })
        .await
        .unwrap();
    assert!(
        values
            .iter()
            .any(|v| v.period == "2021" && v.value == 4049.0)
    );
    let s = &data.sources[0];
    assert_eq!(
        store
            .source_by_token(&token_sha256(&s.token))
            .await
            .unwrap()
            .unwrap()
            .id,
        s.source.id
    );
    assert!(store.user_with_hash("admin").await.unwrap().is_some());
    let latest = store.latest(&[data.entities[0].id.clone()]).await.unwrap();
    assert!(!latest.is_empty());
    store.close().await.unwrap();
}

/// Run with `cargo test --release -p panorama-demo --test sqlite -- --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "loads the full demo; a timing, meaningful in release mode only"]
async fn the_full_demo_loads_in_under_a_minute() {
    let opts = DemoOptions::new(Utc.with_ymd_and_hms(2026, 11, 22, 3, 30, 0).unwrap());
    let (_dir, store, observations, took) = load_into_sqlite(&opts).await;
    eprintln!("loaded {observations} observations in {took:?}");
    store.close().await.unwrap();
}
