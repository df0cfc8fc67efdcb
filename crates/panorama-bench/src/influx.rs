//! InfluxDB 1.x (Debian's `influxdb`), fed line protocol over `/write`,
//! queried with InfluxQL.

use crate::Opts;
use crate::dataset::{Answers, DISTRICTS, Dataset, Q5_DISTRICT, to_tenths};
use crate::http::{Target, get, post_all};
use crate::report::StoreReport;
use crate::sys::{self, RssSampler, dir_bytes, time_runs, wait_http};
use crate::vm::lines;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = "influxd";

fn version() -> String {
    Command::new(BIN)
        .arg("version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

fn start(work: &Path, port: u16, rpc: u16) -> Result<Child> {
    let d = |n: &str| work.join(n).display().to_string();
    let config = format!(
        r#"reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{meta}"
[data]
  dir = "{data}"
  wal-dir = "{wal}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{port}"
  log-enabled = false
[continuous_queries]
  enabled = false
"#,
        meta = d("meta"),
        data = d("data"),
        wal = d("wal"),
    );
    let conf = work.join("influxdb.conf");
    std::fs::write(&conf, config)?;
    let log = std::fs::File::create(work.join("influxd.log"))?;
    Command::new(BIN)
        .arg("-config")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {BIN} (run scripts/bench-peers.sh)"))
}

/// Runs the InfluxDB part.
pub async fn run(ds: &Dataset, opts: &Opts, work: PathBuf) -> Result<StoreReport> {
    let http = reqwest::Client::new();
    let (port, rpc) = (sys::free_port()?, sys::free_port()?);
    let mut child = start(&work, port, rpc)?;
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&http, &format!("{base}/ping"), Duration::from_secs(60)).await?;
    let r = http
        .post(format!("{base}/query"))
        .form(&[("q", "CREATE DATABASE bench")])
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("CREATE DATABASE: {}", r.text().await?);
    }
    let bodies = Arc::new(lines(ds, opts.batch, false));
    let sampler = RssSampler::start(child.id());
    let target = Target {
        url: format!("{base}/write?db=bench&precision=s"),
        content_type: "text/plain",
        auth: None,
    };
    let t = Instant::now();
    let (_, retries) = post_all(&http, &target, bodies.clone(), opts.clients).await?;
    let took = t.elapsed();
    drop(bodies);
    let cpu = sampler.cpu();
    let peak = sampler.finish();
    eprintln!(
        "  ingest: {:.2} s, {:.0} rows/s, peak RSS {} MiB",
        took.as_secs_f64(),
        ds.len() as f64 / took.as_secs_f64(),
        peak >> 20
    );
    sys::stop(&mut child, "-TERM", Duration::from_secs(300))?;
    let disk = dir_bytes(&work.join("data")) + dir_bytes(&work.join("wal"));
    let mut child = start(&work, port, rpc)?;
    wait_http(&http, &format!("{base}/ping"), Duration::from_secs(300)).await?;
    let sampler = RssSampler::start(child.id());
    let result = queries(&http, &base, ds, opts).await;
    let peak_q = sampler.finish();
    sys::stop(&mut child, "-TERM", Duration::from_secs(300))?;
    let (answers, latency) = result?;
    Ok(StoreReport {
        name: format!("InfluxDB {}", short_version()),
        notes: vec![
            format!("`{}` with its default TSM engine (WAL fsync'ed before /write answers); line protocol POSTed by {} clients, precision s.", version(), opts.clients),
            "InfluxQL after a graceful stop and restart: Q1 `mean(pm25) GROUP BY time(1m)`, Q2 one sensor's raw values, Q3 `last(pm25) GROUP BY sensor`, Q4 `mean(pm25) GROUP BY time(1h), district`, Q5 Q3 `WHERE district='722'` (a tag: no polygon test).".into(),
            format!("Peak RSS while ingesting ({} MiB while querying).", peak_q >> 20),
        ],
        rows: ds.len(),
        ingest_secs: took.as_secs_f64(),
        retries,
        peak_rss: peak,
        cpu_secs: cpu,
        disk_bytes: disk,
        disk_what: "data and WAL dirs after a graceful stop".into(),
        obs_bytes: None,
        latency,
        answers,
        mismatches: Vec::new(),
    })
}

fn short_version() -> String {
    let v = version();
    v.split_whitespace()
        .find(|p| p.starts_with('v') || p.starts_with("1."))
        .map(|p| p.trim_start_matches('v').trim_end_matches(',').to_string())
        .unwrap_or_else(|| "1.6".into())
}

fn series(b: &[u8]) -> Result<Vec<Value>> {
    let v: Value = serde_json::from_slice(b)?;
    if let Some(e) = v["results"][0]["error"].as_str() {
        bail!("InfluxQL error: {e}");
    }
    Ok(v["results"][0]["series"]
        .as_array()
        .cloned()
        .unwrap_or_default())
}

async fn queries(
    http: &reqwest::Client,
    base: &str,
    ds: &Dataset,
    opts: &Opts,
) -> Result<(Answers, [sys::Latency; 5])> {
    let plan = opts.plan();
    let url = format!("{base}/query");
    let (t0, end) = (ds.time(0), ds.end());
    let window = format!("time >= {t0}s AND time < {end}s");
    let district = DISTRICTS.get(Q5_DISTRICT).copied().unwrap_or(722);
    let qs = [
        format!("SELECT mean(pm25) FROM air WHERE {window} GROUP BY time(1m)"),
        String::new(),
        "SELECT last(pm25) FROM air GROUP BY sensor".to_string(),
        format!("SELECT mean(pm25) FROM air WHERE {window} GROUP BY time(1h), district"),
        format!("SELECT last(pm25) FROM air WHERE district = '{district}' GROUP BY sensor"),
    ];
    let q2 = |run: usize| {
        format!(
            "SELECT pm25 FROM air WHERE sensor = 'bd-{:05}' AND {window}",
            ds.q2_sensor(run)
        )
    };
    let params = |q: String| {
        vec![
            ("db", "bench".to_string()),
            ("epoch", "s".to_string()),
            ("q", q),
        ]
    };
    let fetch = |q: String| {
        let url = &url;
        async move { get(http, url, &params(q), None).await }
    };
    let mut a = Answers::default();
    for s in series(&fetch(qs[0].clone()).await?)? {
        for p in s["values"].as_array().context("Q1 values")? {
            if !p[1].is_null() {
                a.q1.push((
                    p[0].as_i64().unwrap_or(0),
                    p[1].as_f64().unwrap_or(f64::NAN),
                ));
            }
        }
    }
    let l1 = time_runs(plan, |_| async { fetch(qs[0].clone()).await.map(drop) }).await?;
    for s in series(&fetch(q2(0)).await?)? {
        for p in s["values"].as_array().context("Q2 values")? {
            a.q2.push((
                p[0].as_i64().unwrap_or(0),
                to_tenths(p[1].as_f64().unwrap_or(f64::NAN)),
            ));
        }
    }
    let l2 = time_runs(plan, |run| async move { fetch(q2(run)).await.map(drop) }).await?;
    let latest = |v: Vec<Value>| -> Result<Vec<(u32, i64)>> {
        let mut out = Vec::new();
        for s in v {
            let sensor: u32 = s["tags"]["sensor"]
                .as_str()
                .and_then(|x| x.trim_start_matches("bd-").parse().ok())
                .context("sensor tag")?;
            out.push((
                sensor,
                to_tenths(s["values"][0][1].as_f64().unwrap_or(f64::NAN)),
            ));
        }
        out.sort_unstable();
        Ok(out)
    };
    a.q3 = latest(series(&fetch(qs[2].clone()).await?)?)?;
    let l3 = time_runs(plan, |_| async { fetch(qs[2].clone()).await.map(drop) }).await?;
    for s in series(&fetch(qs[3].clone()).await?)? {
        let d: u32 = s["tags"]["district"]
            .as_str()
            .and_then(|x| x.parse().ok())
            .context("district tag")?;
        for p in s["values"].as_array().context("Q4 values")? {
            if !p[1].is_null() {
                a.q4.insert(
                    (d, p[0].as_i64().unwrap_or(0)),
                    p[1].as_f64().unwrap_or(f64::NAN),
                );
            }
        }
    }
    let l4 = time_runs(plan, |_| async { fetch(qs[3].clone()).await.map(drop) }).await?;
    a.q5 = latest(series(&fetch(qs[4].clone()).await?)?)?;
    let l5 = time_runs(plan, |_| async { fetch(qs[4].clone()).await.map(drop) }).await?;
    Ok((a, [l1, l2, l3, l4, l5]))
}
