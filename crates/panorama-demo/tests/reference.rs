//! Checks the demo's district cells against the real district boundaries.
//! Those boundaries are reference material (GPL) kept outside the
//! repository in `../shared/data`; the product never reads them. The test
//! is skipped where they are absent (set `PANORAMA_SHARED_DATA` to their
//! folder to run it elsewhere).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may fail loudly

use chrono::{TimeZone, Utc};
use geo::{Area, BooleanOps, Contains, MultiPolygon, Point};
use panorama_core::AdminLevel;
use panorama_core::geo::area_from_geojson;
use panorama_demo::{DemoOptions, PROVINCE, build};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn shared_data() -> Option<PathBuf> {
    let dir = std::env::var_os("PANORAMA_SHARED_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"));
    dir.join("geo/binh_duong_districts_dvhcvn.geojson")
        .exists()
        .then_some(dir)
}

fn real_districts(dir: &std::path::Path) -> BTreeMap<String, MultiPolygon<f64>> {
    let text =
        std::fs::read_to_string(dir.join("geo/binh_duong_districts_dvhcvn.geojson")).unwrap();
    let fc: geojson::FeatureCollection = text.parse().unwrap();
    fc.features
        .into_iter()
        .map(|f| {
            let code = f.properties.as_ref().unwrap()["code"]
                .as_str()
                .unwrap()
                .to_string();
            (
                code,
                area_from_geojson(f.geometry.as_ref().unwrap()).unwrap(),
            )
        })
        .collect()
}

#[test]
fn district_cells_overlap_the_real_districts() {
    let Some(dir) = shared_data() else {
        eprintln!("reference district boundaries not found; skipping");
        return;
    };
    let real = real_districts(&dir);
    let demo = build(&DemoOptions::new(
        Utc.with_ymd_and_hms(2026, 11, 22, 0, 0, 0).unwrap(),
    ))
    .unwrap();
    let outline = area_from_geojson(
        demo.admin_units
            .iter()
            .find(|u| u.code == PROVINCE)
            .unwrap()
            .geometry
            .as_ref()
            .unwrap(),
    )
    .unwrap();
    let mut agree = 0.0;
    for u in demo
        .admin_units
        .iter()
        .filter(|u| u.level == AdminLevel::District)
    {
        let cell = area_from_geojson(u.geometry.as_ref().unwrap()).unwrap();
        let truth = real[&u.code].intersection(&outline);
        let inter = cell.intersection(&truth).unsigned_area();
        let of_cell = inter / cell.unsigned_area();
        let of_real = inter / truth.unsigned_area();
        eprintln!(
            "{} {}: {:.0}% of the cell is in the district, {:.0}% of the district in the cell",
            u.code,
            u.name,
            of_cell * 100.0,
            of_real * 100.0
        );
        assert!(
            of_cell >= 0.55,
            "{}: only {of_cell:.2} of the cell lies in the real district",
            u.code
        );
        assert!(
            of_real >= 0.7,
            "{}: the cell covers only {of_real:.2} of the real district",
            u.code
        );
        agree += inter;
    }
    let share = agree / outline.unsigned_area();
    eprintln!(
        "{:.0}% of the province is in the right district",
        share * 100.0
    );
    assert!(share >= 0.8, "{share}");
}

#[test]
fn town_centres_and_industrial_parks_are_where_they_should_be() {
    let Some(dir) = shared_data() else {
        eprintln!("reference district boundaries not found; skipping");
        return;
    };
    let real = real_districts(&dir);
    // (district, lon, lat) of places the demo clusters things around.
    for (code, lon, lat) in [
        ("718", 106.652, 10.980), // Thủ Dầu Một centre
        ("725", 106.700, 10.905), // Lái Thiêu
        ("724", 106.768, 10.905), // Dĩ An centre
        ("721", 106.593, 11.155), // Mỹ Phước
        ("725", 106.712, 10.928), // VSIP I
        ("721", 106.600, 11.130), // KCN Mỹ Phước
        ("724", 106.757, 10.893), // KCN Sóng Thần
        ("719", 106.640, 11.255), // KCN Bàu Bàng
    ] {
        assert!(
            real[code].contains(&Point::new(lon, lat)),
            "{lon},{lat} is not in {code}"
        );
    }
}
