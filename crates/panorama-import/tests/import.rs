//! Imports against a real embedded store: every kind of bad row, valid
//! files landing in the store, accept_valid, dry runs and idempotent
//! re-imports, for CSV and XLSX. Fixtures are generated here.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use bytes::Bytes;
use panorama_core::{
    AdminLevel, AdminUnit, Clock, Computation, Direction, Indicator, ManualClock, Periodicity,
    Thresholds, ValueStatus,
};
use panorama_import::{FileFormat, ImportKind, ImportOptions, ImportReport, Outcome, Progress};
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_store::{IndicatorValueQuery, SharedStore};
use panorama_store_sqlite::{SqliteOptions, SqliteStore};
use rust_xlsxwriter::{ExcelDateTime, Format, Formula, Workbook};
use std::sync::Arc;

struct Env {
    _dir: tempfile::TempDir,
    store: SharedStore,
    ingest: Ingest,
    clock: Arc<dyn Clock>,
}

fn square(x: f64, y: f64) -> geojson::Geometry {
    serde_json::from_value(serde_json::json!({"type": "Polygon", "coordinates":
        [[[x, y], [x + 0.1, y], [x + 0.1, y + 0.1], [x, y + 0.1], [x, y]]]}))
    .unwrap()
}

fn unit(
    code: &str,
    level: AdminLevel,
    parent: Option<&str>,
    geometry: Option<geojson::Geometry>,
) -> AdminUnit {
    AdminUnit {
        code: code.into(),
        name: format!("Unit {code}"),
        name_en: None,
        level,
        parent: parent.map(str::to_string),
        geometry,
        valid_from: None,
        valid_to: None,
        successors: Vec::new(),
    }
}

fn indicator(code: &str, periodicity: Periodicity) -> Indicator {
    Indicator {
        code: code.into(),
        name: format!("Chỉ tiêu {code}"),
        name_en: format!("Indicator {code}"),
        domain: "education".into(),
        unit: "%".into(),
        periodicity,
        direction: Direction::HigherIsBetter,
        targets: Default::default(),
        thresholds: Thresholds::default(),
        owner_agency: None,
        computation: Computation::Submitted,
        source: None,
        headline: false,
    }
}

async fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store: SharedStore = Arc::new(
        SqliteStore::open(dir.path(), SqliteOptions::default())
            .await
            .unwrap(),
    );
    let mut district = unit(
        "718",
        AdminLevel::District,
        Some("74"),
        Some(square(106.6, 10.95)),
    );
    district.valid_to = chrono::NaiveDate::from_ymd_opt(2025, 7, 1);
    district.successors = vec!["74".into()];
    store
        .upsert_admin_units(&[
            unit("VN", AdminLevel::Country, None, None),
            unit(
                "74",
                AdminLevel::Province,
                Some("VN"),
                Some(square(106.6, 10.9)),
            ),
            district,
            unit("724", AdminLevel::District, Some("74"), None),
        ])
        .await
        .unwrap();
    store
        .upsert_indicators(&[
            indicator("enrolment", Periodicity::Monthly),
            indicator("schools", Periodicity::Yearly),
            indicator("attendance", Periodicity::Daily),
        ])
        .await
        .unwrap();
    let clock: Arc<dyn Clock> = Arc::new(ManualClock::new(
        chrono::DateTime::parse_from_rfc3339("2025-01-15T03:00:00Z")
            .unwrap()
            .into(),
    ));
    let ingest = Ingest::new(
        store.clone(),
        EventBus::new(64),
        clock.clone(),
        IngestOptions::default(),
    );
    Env {
        _dir: dir,
        store,
        ingest,
        clock,
    }
}

impl Env {
    async fn run(
        &self,
        kind: ImportKind,
        format: FileFormat,
        data: impl Into<Vec<u8>>,
        f: impl FnOnce(&mut ImportOptions),
    ) -> ImportReport {
        let mut opts = ImportOptions::new(kind, format, "user:officer");
        opts.batch_size = 3;
        f(&mut opts);
        panorama_import::import(
            &self.ingest,
            self.clock.clone(),
            Bytes::from(data.into()),
            &opts,
            Arc::new(Progress::default()),
        )
        .await
        .unwrap()
    }

    async fn values(
        &self,
        kind: ImportKind,
        data: &str,
        f: impl FnOnce(&mut ImportOptions),
    ) -> ImportReport {
        self.run(kind, FileFormat::Csv, data, f).await
    }

    async fn stored(&self) -> Vec<(String, String, String, f64)> {
        self.store
            .indicator_values(&IndicatorValueQuery::default())
            .await
            .unwrap()
            .into_iter()
            .map(|v| (v.indicator, v.period, v.admin_unit, v.value))
            .collect()
    }
}

const VALID: &str = "\u{feff}Mã chỉ tiêu,Kỳ báo cáo,Địa bàn,Giá trị (%),Trạng thái,Ghi chú\n\
enrolment,2024-05,718,97.5,sơ bộ,\n\
enrolment,2024-06,718,98,,\n\
enrolment,2024-05,724,91.25,final,Số liệu Sở GD&ĐT\n\
schools,2024,74,412,chính thức,\"có dấu phẩy, và\nxuống dòng\"\n";

#[tokio::test]
async fn a_valid_csv_with_vietnamese_headers_lands_in_the_store() {
    let e = env().await;
    let r = e.values(ImportKind::IndicatorValues, VALID, |_| {}).await;
    assert_eq!(r.outcome, Outcome::Written, "{r:?}");
    assert_eq!(
        (r.rows, r.valid, r.invalid, r.written, r.unchanged),
        (4, 4, 0, 4, 0)
    );
    let mut stored = e.stored().await;
    stored.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        stored,
        vec![
            ("enrolment".into(), "2024-05".into(), "718".into(), 97.5),
            ("enrolment".into(), "2024-05".into(), "724".into(), 91.25),
            ("enrolment".into(), "2024-06".into(), "718".into(), 98.0),
            ("schools".into(), "2024".into(), "74".into(), 412.0),
        ]
    );
    let h = e
        .store
        .indicator_value_history("schools", "2024", "74")
        .await
        .unwrap();
    assert_eq!(h[0].status, ValueStatus::Final);
    assert_eq!(h[0].note.as_deref(), Some("có dấu phẩy, và\nxuống dòng"));
    assert_eq!(h[0].submitted_by, "user:officer");
}

#[tokio::test]
async fn re_importing_the_same_file_creates_no_new_revisions() {
    let e = env().await;
    e.values(ImportKind::IndicatorValues, VALID, |_| {}).await;
    let again = e.values(ImportKind::IndicatorValues, VALID, |_| {}).await;
    assert_eq!(again.outcome, Outcome::Written);
    assert_eq!(
        (again.valid, again.written, again.unchanged),
        (4, 0, 4),
        "{again:?}"
    );
    let h = e
        .store
        .indicator_value_history("enrolment", "2024-05", "718")
        .await
        .unwrap();
    assert_eq!(h.len(), 1, "no new revision for an unchanged value");
    // One changed figure is one new revision; the rest stay unchanged.
    let changed = VALID.replace("97.5", "97.75");
    let r = e
        .values(ImportKind::IndicatorValues, &changed, |_| {})
        .await;
    assert_eq!((r.written, r.unchanged), (1, 3), "{r:?}");
    let h = e
        .store
        .indicator_value_history("enrolment", "2024-05", "718")
        .await
        .unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[1].value, 97.75);
    assert_eq!(h[1].status, ValueStatus::Provisional, "the file says sơ bộ");
}

const BAD: &str = "indicator,period,admin_unit,value,status\n\
enrolment,2024-05,718,97.5,\n\
enrolment,2024-06,718,abc,\n\
nosuch,2024-06,718,1,\n\
enrolment,2024-06,999,1,\n\
enrolment,2024,724,1,\n\
enrolment,2024-13,724,1,\n\
\n\
enrolment,2024-07,718,1,maybe\n\
enrolment,2024-08,724,1,,extra\n\
enrolment,2024-09,724,1,\n\
enrolment,2024-09,724,2,\n\
enrolment,2025-08,718,1,\n\
enrolment,2024-10,724,\"1,5\",\n\
,,,,\n\
schools,2023,74,400,\n";

#[tokio::test]
async fn every_bad_row_is_reported_with_row_column_and_reason_and_nothing_is_written() {
    let e = env().await;
    let r = e.values(ImportKind::IndicatorValues, BAD, |_| {}).await;
    assert_eq!(r.outcome, Outcome::Refused);
    assert_eq!(r.written, 0);
    assert!(e.stored().await.is_empty(), "nothing is written");
    let at = |row: u64| -> Vec<String> {
        r.errors
            .iter()
            .filter(|e| e.row == Some(row))
            .map(|e| format!("{}: {}", e.column.clone().unwrap_or_default(), e.reason))
            .collect()
    };
    assert!(at(2).is_empty(), "{:?}", r.errors);
    assert!(
        at(3)[0].starts_with("value: 'abc' is not a number"),
        "{:?}",
        at(3)
    );
    assert_eq!(at(4), vec!["indicator: unknown indicator 'nosuch'"]);
    assert_eq!(at(5), vec!["admin_unit: unknown admin unit '999'"]);
    assert!(
        at(6)[0].contains("does not fit the monthly indicator"),
        "{:?}",
        at(6)
    );
    assert!(at(7)[0].contains("is not a period"), "{:?}", at(7));
    // Row 8 is empty: skipped, not an error.
    assert!(at(8).is_empty(), "{:?}", r.errors);
    assert!(at(9)[0].contains("unknown status 'maybe'"), "{:?}", at(9));
    assert!(at(10)[0].contains("header only 5 columns"), "{:?}", at(10));
    assert_eq!(
        r.errors
            .iter()
            .find(|e| e.row == Some(10))
            .unwrap()
            .cell
            .as_deref(),
        Some("F10")
    );
    assert!(at(11)[0].contains("duplicate: a later row"), "{:?}", at(11));
    assert!(at(12)[0].contains("duplicate: row 11"), "{:?}", at(12));
    assert!(
        at(13)[0].contains("did not exist in 2025-08"),
        "{:?}",
        at(13)
    );
    assert!(at(14)[0].contains("'1,5' is not a number"), "{:?}", at(14));
    assert!(at(15).is_empty() && at(16).is_empty());
    assert_eq!(r.empty_rows, 2);
    assert_eq!((r.rows, r.valid, r.invalid), (13, 2, 11), "{r:?}");
    let cell = r.errors.iter().find(|e| e.row == Some(3)).unwrap();
    assert_eq!(cell.cell.as_deref(), Some("D3"));
}

#[tokio::test]
async fn accept_valid_writes_only_the_good_rows_and_dry_run_writes_nothing() {
    let e = env().await;
    let dry = e
        .values(ImportKind::IndicatorValues, BAD, |o| {
            o.accept_valid = true;
            o.dry_run = true;
        })
        .await;
    assert_eq!(dry.outcome, Outcome::DryRun);
    assert_eq!(dry.written, 0);
    assert!(e.stored().await.is_empty());
    let r = e
        .values(ImportKind::IndicatorValues, BAD, |o| o.accept_valid = true)
        .await;
    assert_eq!(r.outcome, Outcome::Written);
    assert_eq!((r.valid, r.invalid, r.written), (2, 11, 2));
    let mut stored = e.stored().await;
    stored.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        stored,
        vec![
            ("enrolment".into(), "2024-05".into(), "718".into(), 97.5),
            ("schools".into(), "2023".into(), "74".into(), 400.0),
        ]
    );
}

#[tokio::test]
async fn files_that_cannot_be_read_are_refused_with_a_clear_reason() {
    let e = env().await;
    // Windows-1258: "Hà Nội" is not UTF-8.
    let mut latin = b"indicator,period,admin_unit,value,note\nenrolment,2024-05,718,1,H".to_vec();
    latin.extend_from_slice(&[0xE0, b' ', b'N', 0xF4, 0xF2, b'i', b'\n']);
    let r = e
        .run(ImportKind::IndicatorValues, FileFormat::Csv, latin, |_| {})
        .await;
    assert_eq!(r.outcome, Outcome::Refused);
    assert!(r.errors[0].reason.contains("not UTF-8"), "{:?}", r.errors);
    assert!(r.errors[0].reason.contains("CSV UTF-8"));
    assert_eq!(r.errors[0].row, Some(2));

    let r = e
        .values(
            ImportKind::IndicatorValues,
            "indicator;period;value\nenrolment;2024-05;1\n",
            |o| o.accept_valid = true,
        )
        .await;
    assert_eq!(
        r.outcome,
        Outcome::Refused,
        "accept_valid does not override a missing column"
    );
    assert!(
        r.errors[0]
            .reason
            .contains("required column 'admin_unit' is missing"),
        "{:?}",
        r.errors
    );
    assert_eq!(r.errors[0].row, Some(1));

    let r = e.values(ImportKind::IndicatorValues, "", |_| {}).await;
    assert!(r.errors[0].reason.contains("empty"), "{:?}", r.errors);

    // A semicolon-separated file with decimal commas (Vietnamese-locale Excel) and UTF-16.
    let semi = "chỉ tiêu;kỳ;địa bàn;giá trị\nenrolment;2024-05;718;97,5\n";
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(semi.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let r = e
        .run(ImportKind::IndicatorValues, FileFormat::Csv, utf16, |_| {})
        .await;
    assert_eq!(r.outcome, Outcome::Written, "{r:?}");
    assert_eq!(e.stored().await[0].3, 97.5);

    let xlsx_as_csv = e
        .run(
            ImportKind::IndicatorValues,
            FileFormat::Csv,
            xlsx(|_| {}),
            |_| {},
        )
        .await;
    assert!(xlsx_as_csv.errors[0].reason.contains("XLSX"));
}

fn xlsx(fill: impl FnOnce(&mut rust_xlsxwriter::Worksheet)) -> Vec<u8> {
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    fill(ws);
    wb.save_to_buffer().unwrap()
}

#[tokio::test]
async fn xlsx_with_numbers_dates_and_formulas_is_imported_and_formulas_are_reported() {
    let e = env().await;
    let month = Format::new().set_num_format("yyyy-mm");
    let data = xlsx(|ws| {
        for (c, h) in ["Chỉ tiêu", "Kỳ", "Địa bàn", "Giá trị"].iter().enumerate() {
            ws.write_string(0, c as u16, *h).unwrap();
        }
        ws.write_string(1, 0, "enrolment").unwrap();
        ws.write_datetime_with_format(1, 1, ExcelDateTime::from_ymd(2024, 5, 1).unwrap(), &month)
            .unwrap();
        ws.write_number(1, 2, 718).unwrap();
        ws.write_number(1, 3, 97.5).unwrap();
        ws.write_string(2, 0, "schools").unwrap();
        ws.write_number(2, 1, 2024).unwrap();
        ws.write_string(2, 2, "74").unwrap();
        ws.write_formula(2, 3, Formula::new("=400+12").set_result("412"))
            .unwrap();
    });
    let r = e
        .run(
            ImportKind::IndicatorValues,
            FileFormat::Xlsx,
            data.clone(),
            |_| {},
        )
        .await;
    assert_eq!(r.outcome, Outcome::Written, "{r:?}");
    assert_eq!(r.written, 2);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("formulas") && w.contains("D3 (=400+12)")),
        "{:?}",
        r.warnings
    );
    let mut stored = e.stored().await;
    stored.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        stored[0],
        ("enrolment".into(), "2024-05".into(), "718".into(), 97.5)
    );
    assert_eq!(
        stored[1],
        ("schools".into(), "2024".into(), "74".into(), 412.0)
    );
    let again = e
        .run(ImportKind::IndicatorValues, FileFormat::Xlsx, data, |_| {})
        .await;
    assert_eq!((again.written, again.unchanged), (0, 2));
}

#[tokio::test]
async fn bad_xlsx_rows_and_empty_sheets_are_reported() {
    let e = env().await;
    let data = xlsx(|ws| {
        // The table starts at B3: row numbers are the sheet's own.
        for (c, h) in ["indicator", "period", "admin_unit", "value"]
            .iter()
            .enumerate()
        {
            ws.write_string(2, 1 + c as u16, *h).unwrap();
        }
        ws.write_string(3, 1, "enrolment").unwrap();
        ws.write_string(3, 2, "2024-05").unwrap();
        ws.write_string(3, 3, "718").unwrap();
        ws.write_string(3, 4, "nhiều").unwrap();
        ws.write_string(4, 1, "enrolment").unwrap();
        ws.write_string(4, 2, "2024-06").unwrap();
        ws.write_string(4, 3, "718").unwrap();
        ws.write_formula(4, 4, Formula::new("=1/0").set_result("#DIV/0!"))
            .unwrap();
        ws.write_string(5, 1, "enrolment").unwrap();
        ws.write_string(5, 2, "2024-07").unwrap();
        ws.write_string(5, 3, "718").unwrap();
        ws.write_boolean(5, 4, true).unwrap();
        // A formula never calculated (as some generators write them).
        ws.set_formula_result_default("");
        ws.write_string(6, 1, "enrolment").unwrap();
        ws.write_string(6, 2, "2024-08").unwrap();
        ws.write_string(6, 3, "718").unwrap();
        ws.write_formula(6, 4, Formula::new("=E4*2")).unwrap();
    });
    let r = e
        .run(ImportKind::IndicatorValues, FileFormat::Xlsx, data, |_| {})
        .await;
    assert_eq!(r.outcome, Outcome::Refused, "{r:?}");
    assert_eq!((r.rows, r.invalid), (4, 4), "{r:?}");
    let e4 = r.errors.iter().find(|e| e.row == Some(4)).unwrap();
    assert_eq!(e4.cell.as_deref(), Some("E4"));
    assert!(e4.reason.contains("'nhiều' is not a number"));
    let e5 = r.errors.iter().find(|e| e.row == Some(5)).unwrap();
    assert!(e5.reason.contains("#DIV/0!"), "{e5:?}");
    let e6 = r.errors.iter().find(|e| e.row == Some(6)).unwrap();
    assert!(e6.reason.contains("expected a number"), "{e6:?}");
    let e7 = r.errors.iter().find(|e| e.row == Some(7)).unwrap();
    assert!(e7.reason.contains("=E4*2 has no saved result"), "{e7:?}");

    let empty = e
        .run(
            ImportKind::IndicatorValues,
            FileFormat::Xlsx,
            xlsx(|_| {}),
            |_| {},
        )
        .await;
    assert_eq!(empty.outcome, Outcome::Refused);
    assert!(
        empty.errors[0].reason.contains("is empty"),
        "{:?}",
        empty.errors
    );
    let garbage = e
        .run(
            ImportKind::IndicatorValues,
            FileFormat::Xlsx,
            b"not a zip".to_vec(),
            |_| {},
        )
        .await;
    assert!(
        garbage.errors[0].reason.contains("not a readable XLSX"),
        "{:?}",
        garbage.errors
    );
}

const ENTITIES: &str = "mã,loại,tên,lĩnh vực,địa bàn,kinh độ,vĩ độ,thuộc tính,địa chỉ\n\
tdm-01,School,Trường THPT Thủ Dầu Một,education,718,106.65,10.98,pupils:number,Phú Cường\n\
tdm-02,School,Trường THCS Chánh Nghĩa,education,718,,,,\n\
da-01,School,Trường Dĩ An,education,724,,,,\n";

#[tokio::test]
async fn entities_are_placed_by_coordinates_or_admin_unit_and_re_imports_change_nothing() {
    let e = env().await;
    let r = e.values(ImportKind::Entities, ENTITIES, |_| {}).await;
    assert_eq!(r.outcome, Outcome::Written, "{r:?}");
    assert_eq!(r.written, 3);
    assert!(
        r.warnings.iter().any(|w| w.contains("1 entities")),
        "{:?}",
        r.warnings
    );
    let one = e
        .store
        .entity("urn:ngsi-ld:School:tdm-01")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.point(), Some((106.65, 10.98)));
    assert_eq!(one.properties["địa chỉ"], "Phú Cường");
    assert!(one.attributes.contains_key("pupils"));
    let two = e
        .store
        .entity("urn:ngsi-ld:School:tdm-02")
        .await
        .unwrap()
        .unwrap();
    let (x, y) = two.point().unwrap();
    assert!(
        (x - 106.65).abs() < 1e-9 && (y - 11.0).abs() < 1e-9,
        "centroid of 718: {x},{y}"
    );
    let again = e.values(ImportKind::Entities, ENTITIES, |_| {}).await;
    assert_eq!((again.written, again.unchanged), (0, 3), "{again:?}");
}

#[tokio::test]
async fn bad_entity_rows_are_reported() {
    let e = env().await;
    let bad = "id,code,type,name,domain,admin_unit,lon,lat\n\
,a1,School,Một,nosuch,718,106.6,10.9\n\
,a2,School,Hai,education,718,10.9,106.6\n\
,a3,School,Ba,education,718,abc,10.9\n\
,a4,School,Bốn,education,,,\n\
not-a-urn,,School,Năm,education,718,,\n\
,a6,2School,Sáu,education,718,,\n\
,a7,School,Bảy,education,718,106.6,\n\
,a8,School,Tám,education,718,,\n\
,a8,School,Tám bis,education,718,,\n";
    let r = e.values(ImportKind::Entities, bad, |_| {}).await;
    assert_eq!(r.outcome, Outcome::Refused);
    let reason = |row: u64| {
        r.errors
            .iter()
            .filter(|e| e.row == Some(row))
            .map(|e| e.reason.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    assert!(
        reason(2).contains("unknown domain 'nosuch'"),
        "{}",
        reason(2)
    );
    assert!(reason(3).contains("look swapped"), "{}", reason(3));
    assert!(reason(4).contains("'abc' is not a number"), "{}", reason(4));
    assert!(
        reason(5).contains("give lon and lat, or an admin unit"),
        "{}",
        reason(5)
    );
    assert!(reason(6).contains("URN"), "{}", reason(6));
    assert!(
        reason(7).contains("must start with a letter"),
        "{}",
        reason(7)
    );
    assert!(reason(8).contains("lat is missing"), "{}", reason(8));
    assert!(reason(9).contains("duplicate"), "{}", reason(9));
    assert!(reason(10).contains("duplicate: row 9"), "{}", reason(10));
    assert_eq!((r.rows, r.valid, r.invalid), (9, 0, 9));
    let no_id = e
        .values(
            ImportKind::Entities,
            "type,name,domain\nSchool,X,education\n",
            |_| {},
        )
        .await;
    assert!(
        no_id.errors[0].reason.contains("'id' column"),
        "{:?}",
        no_id.errors
    );
}
