//! SQLite (WAL mode, synchronous=FULL, index on (sensor, time)), loaded and
//! queried by a worker process of this bench so that its memory is
//! measured apart from the bench's own.

use crate::Opts;
use crate::dataset::{Answers, Dataset, Q5_DISTRICT, district_rect, to_tenths};
use crate::report::StoreReport;
use crate::sys::{self, Latency, RssSampler, time_runs};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::{Connection, SqliteConnection};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Rows per INSERT statement.
const ROWS_PER_INSERT: usize = 100;

/// Runs the SQLite part in a worker process.
pub async fn run(ds: &Dataset, opts: &Opts, work: PathBuf) -> Result<StoreReport> {
    let db = work.join("bench.db");
    let exe = std::env::current_exe()?;
    let child = Command::new(exe)
        .args([
            "--sensors",
            &opts.sensors.to_string(),
            "--minutes",
            &opts.minutes.to_string(),
            "--batch",
            &opts.batch.to_string(),
            "--runs",
            &opts.runs.to_string(),
            "--query-budget-secs",
            &opts.query_budget_secs.to_string(),
            "sqlite-worker",
            "--db",
        ])
        .arg(&db)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let sampler = RssSampler::start(child.id());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await??;
    let peak = sampler.finish();
    if !out.status.success() {
        bail!("the SQLite worker failed ({})", out.status);
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("the SQLite worker's report")?;
    let mut a = Answers::default();
    let pairs = |k: &str| -> Vec<(i64, f64)> {
        v["answers"][k]
            .as_array()
            .map(|x| {
                x.iter()
                    .map(|p| {
                        (
                            p[0].as_i64().unwrap_or(0),
                            p[1].as_f64().unwrap_or(f64::NAN),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    a.q1 = pairs("q1");
    a.q2 = pairs("q2")
        .into_iter()
        .map(|(t, v)| (t, to_tenths(v)))
        .collect();
    a.q3 = pairs("q3")
        .into_iter()
        .map(|(s, v)| (s as u32, to_tenths(v)))
        .collect();
    a.q5 = pairs("q5")
        .into_iter()
        .map(|(s, v)| (s as u32, to_tenths(v)))
        .collect();
    if let Some(x) = v["answers"]["q4"].as_array() {
        for p in x {
            a.q4.insert(
                (
                    p[0].as_u64().unwrap_or(0) as u32,
                    p[1].as_i64().unwrap_or(0),
                ),
                p[2].as_f64().unwrap_or(f64::NAN),
            );
        }
    }
    let mut latency: [Latency; 5] = Default::default();
    for (i, l) in latency.iter_mut().enumerate() {
        l.runs = v["latency_ns"][i]
            .as_array()
            .map(|x| {
                x.iter()
                    .filter_map(|n| n.as_u64())
                    .map(Duration::from_nanos)
                    .collect()
            })
            .unwrap_or_default();
    }
    let version = v["version"].as_str().unwrap_or("3").to_string();
    Ok(StoreReport {
        name: format!("SQLite {version}"),
        notes: vec![
            format!("WAL mode, synchronous=FULL (durable at commit), through sqlx in a worker process; table obs(sensor, t, v) with an index on (sensor, t) created before the load and sensors(id, district, lon, lat); one transaction per batch of {} rows, {ROWS_PER_INSERT}-row INSERT statements, one writer (SQLite has one).", opts.batch),
            "SQL after closing and reopening: Q1 `avg(v) GROUP BY t/60`, Q2 one sensor by the index, Q3 a correlated `ORDER BY t DESC LIMIT 1` per sensor, Q4 join to sensors `GROUP BY district, t/3600`, Q5 Q3 for sensors inside the district's box (the districts are rectangles, so the box is the polygon).".into(),
            "Peak RSS of the worker process over load and queries.".into(),
        ],
        rows: ds.len(),
        ingest_secs: v["ingest_secs"].as_f64().unwrap_or(0.0),
        retries: 0,
        peak_rss: peak,
        cpu_secs: v["ingest_cpu_secs"].as_f64().unwrap_or(0.0),
        disk_bytes: v["disk_bytes"].as_u64().unwrap_or(0),
        disk_what: "the database file after a WAL checkpoint (sensors table included)".into(),
        obs_bytes: None,
        latency,
        answers: a,
        mismatches: Vec::new(),
    })
}

async fn open(db: &Path) -> Result<SqliteConnection> {
    let o = SqliteConnectOptions::new()
        .filename(db)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full);
    Ok(SqliteConnection::connect_with(&o).await?)
}

/// The worker: load, reopen, query; prints a JSON report on stdout.
pub async fn worker(ds: &Dataset, opts: &Opts, db: &Path) -> Result<()> {
    let mut c = open(db).await?;
    sqlx::raw_sql(
        "CREATE TABLE sensors (id INTEGER PRIMARY KEY, district INTEGER NOT NULL, lon REAL NOT NULL, lat REAL NOT NULL);
         CREATE TABLE obs (sensor INTEGER NOT NULL, t INTEGER NOT NULL, v REAL NOT NULL);
         CREATE INDEX obs_sensor_t ON obs (sensor, t);",
    )
    .execute(&mut c)
    .await?;
    let mut tx = c.begin().await?;
    for s in &ds.sensors {
        sqlx::query("INSERT INTO sensors VALUES (?, ?, ?, ?)")
            .bind(i64::from(s.index))
            .bind(i64::from(s.district_code()))
            .bind(s.lon)
            .bind(s.lat)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let version: String = sqlx::query_scalar("SELECT sqlite_version()")
        .fetch_one(&mut c)
        .await?;

    let mut insert = String::from("INSERT INTO obs (sensor, t, v) VALUES ");
    for i in 0..ROWS_PER_INSERT {
        insert.push_str(if i == 0 { "(?, ?, ?)" } else { ", (?, ?, ?)" });
    }
    let started = Instant::now();
    let cpu0 = sys::tree_cpu(std::process::id());
    let mut rows: Vec<(i64, i64, f64)> = Vec::with_capacity(opts.batch);
    let total = ds.len() as usize;
    let mut done = 0usize;
    for m in 0..ds.minutes {
        for s in &ds.sensors {
            rows.push((
                i64::from(s.index),
                ds.time(m),
                ds.tenths(s, m) as f64 / 10.0,
            ));
            done += 1;
            if rows.len() == opts.batch || done == total {
                let mut tx = c.begin().await?;
                for chunk in rows.chunks(ROWS_PER_INSERT) {
                    if chunk.len() == ROWS_PER_INSERT {
                        let mut q = sqlx::query(sqlx::AssertSqlSafe(insert.clone()));
                        for (s, t, v) in chunk {
                            q = q.bind(*s).bind(*t).bind(*v);
                        }
                        q.execute(&mut *tx).await?;
                    } else {
                        for (s, t, v) in chunk {
                            sqlx::query("INSERT INTO obs (sensor, t, v) VALUES (?, ?, ?)")
                                .bind(*s)
                                .bind(*t)
                                .bind(*v)
                                .execute(&mut *tx)
                                .await?;
                        }
                    }
                }
                tx.commit().await?;
                rows.clear();
            }
        }
    }
    let ingest_secs = started.elapsed().as_secs_f64();
    let ingest_cpu_secs = sys::tree_cpu(std::process::id()) - cpu0;
    eprintln!(
        "  ingest: {ingest_secs:.2} s, {:.0} rows/s",
        total as f64 / ingest_secs
    );
    sqlx::raw_sql("ANALYZE; PRAGMA wal_checkpoint(TRUNCATE);")
        .execute(&mut c)
        .await?;
    c.close().await?;
    let disk = sys::dir_bytes(db.parent().unwrap_or(db));

    let c = open(db).await?;
    let plan = opts.plan();
    let (t0, end) = (ds.time(0), ds.end());
    let q1 =
        "SELECT t / 60 * 60 AS m, avg(v) FROM obs WHERE t >= ? AND t < ? GROUP BY m ORDER BY m";
    let q2 = "SELECT t, v FROM obs WHERE sensor = ? AND t >= ? AND t < ? ORDER BY t";
    let latest = "SELECT s.id, (SELECT v FROM obs WHERE obs.sensor = s.id ORDER BY t DESC LIMIT 1) AS v FROM sensors s";
    let q3 = format!("{latest} ORDER BY s.id");
    let q4 = "SELECT s.district, o.t / 3600 * 3600 AS h, avg(o.v) FROM obs o JOIN sensors s ON s.id = o.sensor
              WHERE o.t >= ? AND o.t < ? GROUP BY 1, 2 ORDER BY 1, 2";
    let (w, s, e, n) = district_rect(Q5_DISTRICT);
    let q5 = format!(
        "{latest} WHERE s.lon BETWEEN {w} AND {e} AND s.lat BETWEEN {s} AND {n} ORDER BY s.id"
    );
    let cell = tokio::sync::Mutex::new(c);

    let r1: Vec<(i64, f64)> = sqlx::query_as(q1)
        .bind(t0)
        .bind(end)
        .fetch_all(&mut *cell.lock().await)
        .await?;
    let l1 = time_runs(plan, |_| async {
        let mut c = cell.lock().await;
        sqlx::query(q1)
            .bind(t0)
            .bind(end)
            .fetch_all(&mut *c)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    let sensor = |run: usize| i64::from(ds.q2_sensor(run));
    let r2: Vec<(i64, f64)> = sqlx::query_as(q2)
        .bind(sensor(0))
        .bind(t0)
        .bind(end)
        .fetch_all(&mut *cell.lock().await)
        .await?;
    let l2 = time_runs(plan, |run| {
        let cell = &cell;
        async move {
            let mut c = cell.lock().await;
            sqlx::query(q2)
                .bind(sensor(run))
                .bind(t0)
                .bind(end)
                .fetch_all(&mut *c)
                .await
                .map(drop)
                .map_err(Into::into)
        }
    })
    .await?;
    let r3: Vec<(i64, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(q3.clone()))
        .fetch_all(&mut *cell.lock().await)
        .await?;
    let l3 = time_runs(plan, |_| async {
        let mut c = cell.lock().await;
        sqlx::query(sqlx::AssertSqlSafe(q3.clone()))
            .fetch_all(&mut *c)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    let r4: Vec<(i64, i64, f64)> = sqlx::query_as(q4)
        .bind(t0)
        .bind(end)
        .fetch_all(&mut *cell.lock().await)
        .await?;
    let l4 = time_runs(plan, |_| async {
        let mut c = cell.lock().await;
        sqlx::query(q4)
            .bind(t0)
            .bind(end)
            .fetch_all(&mut *c)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    let r5: Vec<(i64, f64)> = sqlx::query_as(sqlx::AssertSqlSafe(q5.clone()))
        .fetch_all(&mut *cell.lock().await)
        .await?;
    let l5 = time_runs(plan, |_| async {
        let mut c = cell.lock().await;
        sqlx::query(sqlx::AssertSqlSafe(q5.clone()))
            .fetch_all(&mut *c)
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    let ns = |l: &Latency| {
        l.runs
            .iter()
            .map(|d| d.as_nanos() as u64)
            .collect::<Vec<_>>()
    };
    let report = json!({
        "version": version,
        "ingest_secs": ingest_secs,
        "ingest_cpu_secs": ingest_cpu_secs,
        "disk_bytes": disk,
        "latency_ns": [ns(&l1), ns(&l2), ns(&l3), ns(&l4), ns(&l5)],
        "answers": {"q1": r1, "q2": r2, "q3": r3, "q4": r4, "q5": r5},
    });
    println!("{report}");
    Ok(())
}
