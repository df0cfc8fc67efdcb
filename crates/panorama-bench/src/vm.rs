//! VictoriaMetrics (Debian's `victoria-metrics`), fed Influx line protocol
//! over `/write`, queried with MetricsQL.

use crate::Opts;
use crate::dataset::{Answers, DISTRICTS, Dataset, Q5_DISTRICT, decimal, to_tenths};
use crate::http::{Target, get, post_all};
use crate::report::StoreReport;
use crate::sys::{self, RssSampler, dir_bytes, time_runs, wait_http};
use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const BIN: &str = "victoria-metrics";

fn version() -> String {
    // Debian's build prints an empty version; the package knows it.
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Version}", "victoria-metrics"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "1.79".into())
}

fn start(dir: &Path, port: u16, log: &Path) -> Result<Child> {
    let log = std::fs::File::create(log)?;
    Command::new(BIN)
        .arg(format!("-storageDataPath={}", dir.display()))
        .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
        .args([
            "-retentionPeriod=100y",
            "-search.disableCache",
            "-loggerLevel=ERROR",
        ])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {BIN} (run scripts/bench-peers.sh)"))
}

/// Line protocol: measurement `air`, tags sensor and district, field pm25, time in ns.
pub fn lines(ds: &Dataset, batch: usize, ns: bool) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut cur = String::with_capacity(batch * 64);
    let mut n = 0;
    for m in 0..ds.minutes {
        let t = ds.time(m).to_string();
        for s in &ds.sensors {
            cur.push_str("air,sensor=bd-");
            cur.push_str(&format!(
                "{:05},district={} pm25=",
                s.index,
                s.district_code()
            ));
            decimal(ds.tenths(s, m), &mut cur);
            cur.push(' ');
            cur.push_str(&t);
            if ns {
                cur.push_str("000000000");
            }
            cur.push('\n');
            n += 1;
            if n == batch {
                out.push(Bytes::from(std::mem::replace(
                    &mut cur,
                    String::with_capacity(batch * 64),
                )));
                n = 0;
            }
        }
    }
    if n > 0 {
        out.push(Bytes::from(cur));
    }
    out
}

fn sensor_of(metric: &Value) -> Result<u32> {
    let s = metric["sensor"].as_str().context("no sensor label")?;
    s.trim_start_matches("bd-")
        .parse()
        .with_context(|| format!("sensor label {s}"))
}

fn num(v: &Value) -> f64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .or_else(|| v.as_f64())
        .unwrap_or(f64::NAN)
}

/// Runs the VictoriaMetrics part.
pub async fn run(ds: &Dataset, opts: &Opts, work: PathBuf) -> Result<StoreReport> {
    let dir = work.join("data");
    let log = work.join("vm.log");
    let http = reqwest::Client::new();
    let port = sys::free_port()?;
    let mut child = start(&dir, port, &log)?;
    let base = format!("http://127.0.0.1:{port}");
    wait_http(&http, &format!("{base}/health"), Duration::from_secs(60)).await?;
    let bodies = Arc::new(lines(ds, opts.batch, true));
    let sampler = RssSampler::start(child.id());
    let target = Target {
        url: format!("{base}/write"),
        content_type: "text/plain",
        auth: None,
    };
    let t = Instant::now();
    let (_, retries) = post_all(&http, &target, bodies.clone(), opts.clients).await?;
    get(&http, &format!("{base}/internal/force_flush"), &[], None).await?;
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
    sys::stop(&mut child, "-INT", Duration::from_secs(120))?;
    let disk = dir_bytes(&dir);
    let mut child = start(&dir, port, &log)?;
    wait_http(&http, &format!("{base}/health"), Duration::from_secs(60)).await?;
    let sampler = RssSampler::start(child.id());
    let result = queries(&http, &base, ds, opts).await;
    let peak_q = sampler.finish();
    sys::stop(&mut child, "-INT", Duration::from_secs(120))?;
    let (answers, latency) = result?;
    Ok(StoreReport {
        name: format!("VictoriaMetrics {}", short_version()),
        notes: vec![
            format!("Debian's `victoria-metrics` {} with -search.disableCache, -retentionPeriod=100y; Influx line protocol POSTed to /write by {} clients, then /internal/force_flush (counted in the ingest time). VictoriaMetrics answers /write before its data is on disk (it flushes about every second), so its rate is not a durable-ack rate.", version(), opts.clients),
            "Queries with MetricsQL after a graceful stop and restart: Q1 `avg(air_pm25)` step 1m, Q2 `air_pm25{sensor=…}`, Q3 `last_over_time(air_pm25[1d])`, Q4 `avg by (district) (avg_over_time(air_pm25[1h] offset 1m))` step 1h, Q5 Q3 with `{district=\"722\"}`: the district is a label, there is no polygon test.".into(),
            format!("Peak RSS while ingesting ({} MiB while querying).", peak_q >> 20),
        ],
        rows: ds.len(),
        ingest_secs: took.as_secs_f64(),
        retries,
        peak_rss: peak,
        cpu_secs: cpu,
        disk_bytes: disk,
        disk_what: "the storage data path after a graceful stop".into(),
        obs_bytes: None,
        latency,
        answers,
        mismatches: Vec::new(),
    })
}

fn short_version() -> String {
    version().split('+').next().unwrap_or("1.79").to_string()
}

async fn queries(
    http: &reqwest::Client,
    base: &str,
    ds: &Dataset,
    opts: &Opts,
) -> Result<(Answers, [sys::Latency; 5])> {
    let plan = opts.plan();
    let range = format!("{base}/api/v1/query_range");
    let instant = format!("{base}/api/v1/query");
    let (t0, end) = (ds.time(0), ds.end());
    let q1 = || {
        vec![
            ("query", "avg(air_pm25)".to_string()),
            ("start", t0.to_string()),
            ("end", (end - 60).to_string()),
            ("step", "60".to_string()),
        ]
    };
    let q2 = |run: usize| {
        vec![
            (
                "query",
                format!("air_pm25{{sensor=\"bd-{:05}\"}}", ds.q2_sensor(run)),
            ),
            ("start", t0.to_string()),
            ("end", (end - 60).to_string()),
            ("step", "60".to_string()),
        ]
    };
    let q3 = || {
        vec![
            ("query", "last_over_time(air_pm25[1d])".to_string()),
            ("time", end.to_string()),
        ]
    };
    let q4 = || {
        vec![
            (
                "query",
                "avg by (district) (avg_over_time(air_pm25[1h] offset 1m))".to_string(),
            ),
            ("start", (t0 + 3600).to_string()),
            ("end", end.to_string()),
            ("step", "3600".to_string()),
        ]
    };
    let district = DISTRICTS.get(Q5_DISTRICT).copied().unwrap_or(722);
    let q5 = || {
        vec![
            (
                "query",
                format!("last_over_time(air_pm25{{district=\"{district}\"}}[1d])"),
            ),
            ("time", end.to_string()),
        ]
    };
    let mut a = Answers::default();
    let result = |b: &[u8]| -> Result<Vec<Value>> {
        let v: Value = serde_json::from_slice(b)?;
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    };

    let r = result(&get(http, &range, &q1(), None).await?)?;
    if let Some(s) = r.first() {
        for p in s["values"].as_array().context("Q1 values")? {
            a.q1.push((p[0].as_i64().unwrap_or(0), num(&p[1])));
        }
    }
    let l1 = time_runs(plan, |_| async {
        get(http, &range, &q1(), None).await.map(drop)
    })
    .await?;

    let r = result(&get(http, &range, &q2(0), None).await?)?;
    if let Some(s) = r.first() {
        for p in s["values"].as_array().context("Q2 values")? {
            a.q2.push((p[0].as_i64().unwrap_or(0), to_tenths(num(&p[1]))));
        }
    }
    let l2 = time_runs(plan, |run| {
        let q = q2(run);
        let range = &range;
        async move { get(http, range, &q, None).await.map(drop) }
    })
    .await?;

    let latest = |r: Vec<Value>| -> Result<Vec<(u32, i64)>> {
        let mut out = r
            .iter()
            .map(|s| Ok((sensor_of(&s["metric"])?, to_tenths(num(&s["value"][1])))))
            .collect::<Result<Vec<_>>>()?;
        out.sort_unstable();
        Ok(out)
    };
    a.q3 = latest(result(&get(http, &instant, &q3(), None).await?)?)?;
    let l3 = time_runs(plan, |_| async {
        get(http, &instant, &q3(), None).await.map(drop)
    })
    .await?;

    for s in result(&get(http, &range, &q4(), None).await?)? {
        let d: u32 = s["metric"]["district"]
            .as_str()
            .and_then(|d| d.parse().ok())
            .context("Q4 district")?;
        for p in s["values"].as_array().context("Q4 values")? {
            a.q4.insert((d, p[0].as_i64().unwrap_or(0) - 3600), num(&p[1]));
        }
    }
    let l4 = time_runs(plan, |_| async {
        get(http, &range, &q4(), None).await.map(drop)
    })
    .await?;

    a.q5 = latest(result(&get(http, &instant, &q5(), None).await?)?)?;
    let l5 = time_runs(plan, |_| async {
        get(http, &instant, &q5(), None).await.map(drop)
    })
    .await?;
    Ok((a, [l1, l2, l3, l4, l5]))
}
