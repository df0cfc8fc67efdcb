//! Imports a generated indicator-values CSV (1,000,000 rows by default, or
//! the number given as the first argument) into a fresh embedded store,
//! then imports it again (every row unchanged), and prints rows per second.
//!
//! `cargo bench -p panorama-import --bench import [-- ROWS]`

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use bytes::Bytes;
use panorama_core::{
    AdminLevel, AdminUnit, Clock, Computation, Direction, Indicator, Periodicity, SystemClock,
    Thresholds,
};
use panorama_import::{FileFormat, ImportKind, ImportOptions, Outcome, Progress};
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_store::SharedStore;
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use std::fmt::Write;
use std::sync::Arc;
use std::time::Instant;

const INDICATORS: usize = 10;
const UNITS: usize = 100;

fn unit(code: String, level: AdminLevel, parent: Option<&str>) -> AdminUnit {
    AdminUnit {
        name: format!("Đơn vị {code}"),
        code,
        name_en: None,
        level,
        parent: parent.map(str::to_string),
        geometry: None,
        valid_from: None,
        valid_to: None,
        successors: Vec::new(),
    }
}

fn csv(rows: usize) -> String {
    let days = rows.div_ceil(INDICATORS * UNITS);
    let start = chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
    let mut out = String::with_capacity(rows * 48);
    out.push_str("indicator,period,admin_unit,value,status\n");
    let mut n = 0;
    'all: for d in 0..days {
        let day = start + chrono::Days::new(d as u64);
        let label = day.format("%Y-%m-%d").to_string();
        for i in 0..INDICATORS {
            for u in 0..UNITS {
                if n == rows {
                    break 'all;
                }
                let v = ((n * 7919) % 100_000) as f64 / 100.0;
                writeln!(out, "daily-{i},{label},c{u:03},{v},provisional").unwrap();
                n += 1;
            }
        }
    }
    out
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let mut units = vec![unit("74".into(), AdminLevel::Province, None)];
    units.extend((0..UNITS).map(|u| unit(format!("c{u:03}"), AdminLevel::Commune, Some("74"))));
    store.upsert_admin_units(&units).await.unwrap();
    let indicators: Vec<Indicator> = (0..INDICATORS)
        .map(|i| Indicator {
            code: format!("daily-{i}"),
            name: format!("Chỉ tiêu {i}"),
            name_en: format!("Indicator {i}"),
            domain: "economy".into(),
            unit: "tỷ đồng".into(),
            periodicity: Periodicity::Daily,
            direction: Direction::HigherIsBetter,
            targets: Default::default(),
            thresholds: Thresholds::default(),
            owner_agency: None,
            computation: Computation::Submitted,
            source: None,
            headline: false,
        })
        .collect();
    store.upsert_indicators(&indicators).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let ingest = Ingest::new(
        store.clone(),
        EventBus::new(1024),
        clock.clone(),
        IngestOptions::default(),
    );
    let t = Instant::now();
    let data = Bytes::from(csv(rows));
    println!(
        "generated {rows} rows ({:.1} MB) in {:.2} s",
        data.len() as f64 / 1e6,
        t.elapsed().as_secs_f64()
    );
    let opts = ImportOptions::new(ImportKind::IndicatorValues, FileFormat::Csv, "user:bench");
    for pass in ["first import", "re-import (unchanged)"] {
        let t = Instant::now();
        let report = panorama_import::import(
            &ingest,
            clock.clone(),
            data.clone(),
            &opts,
            Arc::new(Progress::default()),
        )
        .await
        .unwrap();
        let s = t.elapsed().as_secs_f64();
        assert_eq!(report.outcome, Outcome::Written, "{:?}", report.errors);
        assert_eq!(report.rows, rows as u64);
        println!(
            "{pass}: {rows} rows in {s:.2} s = {:.0} rows/s (written {}, unchanged {})",
            rows as f64 / s,
            report.written,
            report.unchanged
        );
    }
    store.close().await.unwrap();
}
