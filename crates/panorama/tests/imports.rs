//! File imports end to end: the API (job, progress, report, auth, errors)
//! on a real server, and the `panorama import` verb on a data dir.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::disallowed_methods
)]

use panorama_testkit::TestServer;
use serde_json::{Value, json};
use std::time::Duration;

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

async fn with_indicator(srv: &TestServer) -> (String, String) {
    let admin = srv.admin().await.unwrap();
    let token = srv.seed(&admin).await.unwrap();
    let ind = json!({"code": "dossiers-online", "name": "Tỷ lệ hồ sơ trực tuyến", "name_en": "Dossiers handled online",
        "domain": "admin-procedures", "unit": "%", "periodicity": "monthly", "direction": "higher_is_better"});
    let (s, b) = srv.post("/api/v1/indicators", &admin, &ind).await.unwrap();
    assert_eq!(s, 204, "{b}");
    (admin, token)
}

/// Polls a job until it is no longer running.
async fn finished(srv: &TestServer, token: &str, job: &Value) -> Value {
    let id = job["id"].as_str().unwrap();
    for _ in 0..200 {
        let (s, j) = srv
            .get(&format!("/api/v1/imports/{id}"), token)
            .await
            .unwrap();
        assert_eq!(s, 200, "{j}");
        if j["status"] != "running" {
            return j;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the import did not finish");
}

const CSV: &str = "chỉ tiêu,kỳ,địa bàn,giá trị\n\
dossiers-online,2024-04,74,97\n\
dossiers-online,2024-05,74,98.5\n\
dossiers-online,2024-05,718,96\n";

#[tokio::test]
async fn an_imported_csv_is_a_job_whose_values_land_in_the_store_once() {
    let srv = TestServer::start().await.unwrap();
    let (admin, token) = with_indicator(&srv).await;
    let (s, job) = srv
        .post_raw(
            "/api/v1/imports?kind=indicator_values",
            &token,
            "text/csv",
            CSV,
        )
        .await
        .unwrap();
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["submitted_by"], "source:seed");
    let done = finished(&srv, &token, &job).await;
    assert_eq!(done["status"], "done", "{done}");
    let r = &done["report"];
    assert_eq!(r["outcome"], "written", "{r}");
    assert_eq!(
        (r["rows"].as_u64(), r["written"].as_u64()),
        (Some(3), Some(3))
    );
    assert_eq!(done["progress"]["written"], 3);
    let (s, v) = srv
        .get(
            "/api/v1/indicators/dossiers-online/values?admin_unit=74",
            &admin,
        )
        .await
        .unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v.as_array().unwrap().len(), 2, "{v}");

    // Again: nothing new, no new revision.
    let (_, job) = srv
        .post_raw(
            "/api/v1/imports?kind=indicator_values",
            &token,
            "text/csv",
            CSV,
        )
        .await
        .unwrap();
    let r = finished(&srv, &token, &job).await["report"].clone();
    assert_eq!(
        (r["written"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{r}"
    );
    let (_, h) = srv
        .get(
            "/api/v1/indicators/dossiers-online/history?period=2024-05&admin_unit=74",
            &admin,
        )
        .await
        .unwrap();
    assert_eq!(h.as_array().map(Vec::len), Some(1), "{h}");

    // An admin sees every job; the list shows both.
    let (s, list) = srv.get("/api/v1/imports", &admin).await.unwrap();
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn a_file_with_bad_rows_is_refused_with_its_report_unless_valid_rows_are_accepted() {
    let srv = TestServer::start().await.unwrap();
    let (admin, _) = with_indicator(&srv).await;
    let officer = srv
        .user("officer", panorama_core::Role::Officer)
        .await
        .unwrap();
    let bad = "indicator,period,admin_unit,value\n\
dossiers-online,2024-04,74,97\n\
dossiers-online,2024,74,1\n\
dossiers-online,2024-06,nowhere,x\n";
    let (s, job) = srv
        .post_raw(
            "/api/v1/imports?kind=indicator_values",
            &officer,
            "text/csv",
            bad,
        )
        .await
        .unwrap();
    assert_eq!(s, 202, "{job}");
    let r = finished(&srv, &officer, &job).await["report"].clone();
    assert_eq!(r["outcome"], "refused", "{r}");
    assert_eq!(r["invalid"], 2);
    let errors = r["errors"].as_array().unwrap();
    assert_eq!(errors[0]["row"], 3);
    assert_eq!(errors[0]["column"], "period");
    assert_eq!(errors[0]["cell"], "B3");
    assert!(
        errors
            .iter()
            .any(|e| e["row"] == 4 && e["column"] == "value")
    );
    let (_, v) = srv
        .get("/api/v1/indicators/dossiers-online/values", &admin)
        .await
        .unwrap();
    assert_eq!(v.as_array().map(Vec::len), Some(0), "nothing written: {v}");

    let (_, job) = srv
        .post_raw(
            "/api/v1/imports?kind=indicator_values&accept_valid=true",
            &officer,
            "text/csv",
            bad,
        )
        .await
        .unwrap();
    let r = finished(&srv, &officer, &job).await["report"].clone();
    assert_eq!(
        (r["outcome"].as_str(), r["written"].as_u64()),
        (Some("written"), Some(1)),
        "{r}"
    );
    let (_, v) = srv
        .get("/api/v1/indicators/dossiers-online/values", &admin)
        .await
        .unwrap();
    assert_eq!(v[0]["submitted_by"], "user:officer");
}

#[tokio::test]
async fn imports_need_a_writer_and_say_what_is_wrong_with_the_request() {
    let srv = TestServer::start().await.unwrap();
    let (admin, token) = with_indicator(&srv).await;
    let viewer = srv
        .user("viewer", panorama_core::Role::Viewer)
        .await
        .unwrap();
    let url = "/api/v1/imports?kind=indicator_values";
    let (s, p) = srv.post_raw(url, "nope", "text/csv", CSV).await.unwrap();
    assert_eq!((s, p["code"].as_str()), (401, Some("unauthorized")), "{p}");
    let (s, p) = srv.post_raw(url, &viewer, "text/csv", CSV).await.unwrap();
    assert_eq!((s, p["code"].as_str()), (403, Some("forbidden")), "{p}");
    let (s, p) = srv
        .post_raw("/api/v1/imports?kind=people", &token, "text/csv", CSV)
        .await
        .unwrap();
    assert_eq!((s, p["field"].as_str()), (400, Some("kind")), "{p}");
    let (s, p) = srv
        .post_raw(url, &token, "application/json", CSV)
        .await
        .unwrap();
    assert_eq!(s, 415, "{p}");
    let (s, p) = srv.post_raw(url, &token, "text/csv", "").await.unwrap();
    assert_eq!(s, 400, "{p}");
    let (s, _) = srv.get("/api/v1/imports/nope", &admin).await.unwrap();
    assert_eq!(s, 404);

    // Another writer cannot see a source's job.
    let (_, job) = srv
        .post_raw(url, &token, XLSX, b"PK\x03\x04junk".to_vec())
        .await
        .unwrap();
    let id = job["id"].as_str().unwrap();
    let officer = srv
        .user("officer", panorama_core::Role::Officer)
        .await
        .unwrap();
    let (s, _) = srv
        .get(&format!("/api/v1/imports/{id}"), &officer)
        .await
        .unwrap();
    assert_eq!(s, 404);
    let r = finished(&srv, &token, &job).await["report"].clone();
    assert!(
        r["errors"][0]["reason"].as_str().unwrap().contains("XLSX"),
        "{r}"
    );
}

#[tokio::test]
async fn a_job_keeps_the_file_name_it_was_given_and_refuses_a_bad_one() {
    let srv = TestServer::start().await.unwrap();
    let (admin, token) = with_indicator(&srv).await;
    let (s, job) = srv
        .post_raw(
            "/api/v1/imports?kind=indicator_values&filename=Chi%20ti%C3%AAu%20T5.csv",
            &token,
            "text/csv",
            CSV,
        )
        .await
        .unwrap();
    assert_eq!(s, 202, "{job}");
    assert_eq!(job["file_name"], "Chi tiêu T5.csv");
    let done = finished(&srv, &token, &job).await;
    assert_eq!(done["file_name"], "Chi tiêu T5.csv");
    let (_, list) = srv.get("/api/v1/imports", &admin).await.unwrap();
    assert_eq!(list[0]["file_name"], "Chi tiêu T5.csv", "{list}");

    // Without a name the field is absent; a blank one counts as none.
    let (_, job) = srv
        .post_raw(
            "/api/v1/imports?kind=indicator_values&filename=%20",
            &token,
            "text/csv",
            CSV,
        )
        .await
        .unwrap();
    assert!(job.get("file_name").is_none(), "{job}");
    finished(&srv, &token, &job).await;

    let long = "a".repeat(256);
    for (name, why) in [
        (long.as_str(), "at most 255"),
        ("bad%0Aname.csv", "control characters"),
    ] {
        let (s, p) = srv
            .post_raw(
                &format!("/api/v1/imports?kind=indicator_values&filename={name}"),
                &token,
                "text/csv",
                CSV,
            )
            .await
            .unwrap();
        assert_eq!((s, p["field"].as_str()), (400, Some("filename")), "{p}");
        assert!(p["detail"].as_str().unwrap().contains(why), "{p}");
    }
    // Nothing was started by the refused requests.
    let (_, list) = srv.get("/api/v1/imports", &admin).await.unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
}

const BIN: &str = env!("CARGO_BIN_EXE_panorama");

fn cli(args: &[&str], dir: &std::path::Path) -> (bool, String, String) {
    let out = std::process::Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .env_remove("PANORAMA_DATA_DIR")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[tokio::test]
async fn the_import_verb_reports_bad_rows_and_imports_a_valid_file_into_a_data_dir() {
    let mut srv = TestServer::start().await.unwrap();
    with_indicator(&srv).await;
    let dir = srv.path().to_path_buf();
    let work = tempfile::tempdir().unwrap();
    let good = work.path().join("good.csv");
    let bad = work.path().join("bad.csv");
    std::fs::write(&good, CSV).unwrap();
    std::fs::write(
        &bad,
        "indicator,period,admin_unit,value\ndossiers-online,2024-04,74,lots\n",
    )
    .unwrap();
    let data_dir = dir.to_str().unwrap();

    // While the server holds the data dir, the verb is refused.
    let (ok, _, err) = cli(
        &[
            "import",
            "--kind",
            "indicator-values",
            good.to_str().unwrap(),
            "--data-dir",
            data_dir,
        ],
        work.path(),
    );
    assert!(!ok && err.contains("in use"), "{err}");
    srv.stop().await.unwrap();

    let (ok, out, err) = cli(
        &[
            "import",
            "--kind",
            "indicator-values",
            bad.to_str().unwrap(),
            "--data-dir",
            data_dir,
        ],
        work.path(),
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("REFUSED") && out.contains("row 2, D2 (value): 'lots' is not a number"),
        "{out}"
    );
    assert!(err.contains("nothing was written"), "{err}");

    let (ok, out, err) = cli(
        &[
            "import",
            "--kind",
            "indicator-values",
            good.to_str().unwrap(),
            "--dry-run",
            "--data-dir",
            data_dir,
        ],
        work.path(),
    );
    assert!(
        ok && out.contains("dry run") && out.contains("0 written"),
        "{out}{err}"
    );
    let (ok, out, err) = cli(
        &[
            "import",
            "--kind",
            "indicator-values",
            good.to_str().unwrap(),
            "--data-dir",
            data_dir,
        ],
        work.path(),
    );
    assert!(ok && out.contains("3 written"), "{out}{err}");
    let (ok, out, _) = cli(
        &[
            "import",
            "--kind",
            "indicator-values",
            good.to_str().unwrap(),
            "--json",
            "--data-dir",
            data_dir,
        ],
        work.path(),
    );
    assert!(ok);
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["written"].as_u64(), r["unchanged"].as_u64()),
        (Some(0), Some(3)),
        "{r}"
    );
}
