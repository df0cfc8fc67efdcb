//! Panorama itself: the real `panorama` binary on a temporary data dir,
//! fed over its HTTP API exactly as a feed would be.

use crate::Opts;
use crate::dataset::{
    ATTRIBUTE, Answers, BOX, DISTRICTS, Dataset, ENTITY_TYPE, PROVINCE, Q5_DISTRICT, decimal,
    district_rect, ring, to_tenths,
};
use crate::http::{Target, get, post_all};
use crate::report::StoreReport;
use crate::sys::{self, RssSampler, RunPlan, dir_bytes, time_runs, wait_http};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "bench-password-7";

fn cli(bin: &Path, dir: &Path, args: &[&str]) -> Result<String> {
    let mut cmd = Command::new(bin);
    cmd.args(args)
        .arg("--data-dir")
        .arg(dir)
        .env("PANORAMA_PASSWORD", PASSWORD)
        .env("PANORAMA_LOG", "warn");
    sys::run(&mut cmd)
}

fn serve(bin: &Path, dir: &Path, port: u16, log: &Path) -> Result<Child> {
    let log = std::fs::File::create(log)?;
    Command::new(bin)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .env("PANORAMA_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", bin.display()))
}

/// RFC 3339 (UTC) of epoch seconds.
pub fn rfc3339(t: i64) -> String {
    chrono::DateTime::from_timestamp(t, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

fn parse_time(v: &Value) -> Result<i64> {
    let s = v.as_str().context("a time is not a string")?;
    Ok(chrono::DateTime::parse_from_rfc3339(s)?.timestamp())
}

/// The JSON bodies: observations in time order, `batch` per request.
pub fn bodies(ds: &Dataset, batch: usize) -> Vec<Bytes> {
    let ids: Vec<String> = ds
        .sensors
        .iter()
        .map(|s| Dataset::entity_id(s.index))
        .collect();
    let mut out = Vec::new();
    let mut cur = String::with_capacity(batch * 120);
    let mut n = 0;
    for m in 0..ds.minutes {
        let time = rfc3339(ds.time(m));
        for (s, id) in ds.sensors.iter().zip(&ids) {
            cur.push(if n == 0 { '[' } else { ',' });
            cur.push_str("{\"entity\":\"");
            cur.push_str(id);
            cur.push_str("\",\"attribute\":\"pm25\",\"time\":\"");
            cur.push_str(&time);
            cur.push_str("\",\"value\":");
            decimal(ds.tenths(s, m), &mut cur);
            cur.push('}');
            n += 1;
            if n == batch {
                cur.push(']');
                out.push(Bytes::from(std::mem::replace(
                    &mut cur,
                    String::with_capacity(batch * 120),
                )));
                n = 0;
            }
        }
    }
    if n > 0 {
        cur.push(']');
        out.push(Bytes::from(cur));
    }
    out
}

/// The province and its nine districts, as admin units.
fn admin_units() -> Value {
    let (w, s, e, n) = BOX;
    let mut units = vec![json!({
        "code": PROVINCE, "name": "Bình Dương", "level": "province",
        "geometry": {"type": "Polygon", "coordinates": [ring((w, s, e, n))]}
    })];
    for (d, code) in DISTRICTS.iter().enumerate() {
        units.push(json!({
            "code": code.to_string(), "name": format!("Huyện {code}"), "level": "district",
            "parent": PROVINCE,
            "geometry": {"type": "Polygon", "coordinates": [ring(district_rect(d))]}
        }));
    }
    Value::Array(units)
}

/// The polygon of the Q5 district as GeoJSON text.
pub fn q5_polygon() -> String {
    json!({"type": "Polygon", "coordinates": [ring(district_rect(Q5_DISTRICT))]}).to_string()
}

struct Server {
    child: Child,
    base: String,
}

async fn start(bin: &Path, dir: &Path, log: &Path, http: &reqwest::Client) -> Result<Server> {
    let port = sys::free_port()?;
    let child = serve(bin, dir, port, log)?;
    let base = format!("http://127.0.0.1:{port}");
    wait_http(
        http,
        &format!("{base}/api/v1/health"),
        Duration::from_secs(120),
    )
    .await
    .with_context(|| format!("Panorama did not start; see {}", log.display()))?;
    Ok(Server { child, base })
}

/// Runs the whole Panorama part: setup, ingest, restart, queries.
pub async fn run(ds: &Dataset, opts: &Opts, work: &Path) -> Result<StoreReport> {
    let bin = opts.panorama_bin()?;
    let dir: PathBuf = work.join("panorama-data");
    let log = work.join("panorama.log");
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(opts.clients * 2)
        .build()?;
    let token = cli(
        &bin,
        &dir,
        &["source", "add", "--id", "bench", "--name", "Bench feed"],
    )?
    .trim()
    .to_string();
    cli(
        &bin,
        &dir,
        &["user", "add", "--username", "bench", "--role", "admin"],
    )?;

    let mut server = start(&bin, &dir, &log, &http).await?;
    let login: Value = http
        .post(format!("{}/api/v1/auth/login", server.base))
        .json(&json!({"username": "bench", "password": PASSWORD}))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let session = format!(
        "Bearer {}",
        login["token"].as_str().context("no session token")?
    );
    let source = format!("Bearer {token}");
    let r = http
        .post(format!("{}/api/v1/admin-units", server.base))
        .header("authorization", &session)
        .json(&admin_units())
        .send()
        .await?;
    if !r.status().is_success() {
        bail!("admin units refused: {}", r.text().await?);
    }
    for chunk in ds.sensors.chunks(1000) {
        let entities: Vec<Value> = chunk
            .iter()
            .map(|s| {
                json!({
                    "id": Dataset::entity_id(s.index), "type": ENTITY_TYPE,
                    "name": format!("Trạm quan trắc {}", s.index), "domain": "environment",
                    "admin_unit": s.district_code().to_string(),
                    "location": {"type": "Point", "coordinates": [s.lon, s.lat]},
                    "attributes": {ATTRIBUTE: {"type": "number", "unit": "µg/m3"}}
                })
            })
            .collect();
        let r = http
            .post(format!("{}/api/v1/entities", server.base))
            .header("authorization", &source)
            .json(&entities)
            .send()
            .await?;
        if !r.status().is_success() {
            bail!("entities refused: {}", r.text().await?);
        }
    }

    let bodies = Arc::new(bodies(ds, opts.batch));
    let sampler = RssSampler::start(server.child.id());
    let target = Target {
        url: format!("{}/api/v1/observations", server.base),
        content_type: "application/json",
        auth: Some(source.clone()),
    };
    eprintln!(
        "  posting {} batches ({:.0} MB of JSON)…",
        bodies.len(),
        bodies.iter().map(|b| b.len()).sum::<usize>() as f64 / 1e6
    );
    let (took, retries) = post_all(&http, &target, bodies.clone(), opts.clients).await?;
    drop(bodies);
    let cpu = sampler.cpu();
    let peak_ingest = sampler.finish();
    eprintln!(
        "  ingest: {:.2} s, {:.0} obs/s, server CPU {:.2} s, peak RSS {} MiB",
        took.as_secs_f64(),
        ds.len() as f64 / took.as_secs_f64(),
        cpu,
        peak_ingest >> 20
    );
    let before = dir_bytes(&dir);

    sys::stop(&mut server.child, "-TERM", Duration::from_secs(300))?;
    let disk = dir_bytes(&dir);
    let obs = dir_bytes(&dir.join("obs"));
    eprintln!(
        "  after a graceful stop: data dir {disk} bytes ({obs} in obs/), {before} before the stop"
    );

    let mut server = start(&bin, &dir, &log, &http).await?;
    let q = Queries {
        http: &http,
        base: &server.base,
        auth: &session,
        ds,
    };
    let (answers, latency) = q.all(opts.plan()).await?;
    let peak_query = sys::vm_hwm(server.child.id());
    sys::stop(&mut server.child, "-TERM", Duration::from_secs(300))?;

    Ok(StoreReport {
        name: "Panorama".into(),
        notes: vec![
            format!(
                "the real `panorama serve` (release build) on a fresh data dir; observations POSTed as JSON arrays to /api/v1/observations with a source token, answered after the write-ahead log is fdatasync'ed (group commit)."
            ),
            format!(
                "Queries over HTTP with a session token, after a graceful stop and restart: Q1 /api/v1/series/grouped?level=province&bucket=1m, Q2 /api/v1/series (raw), Q3 /api/v1/latest?type={ENTITY_TYPE}&limit=10000, one page (answered from the in-memory catalogue and latest values), Q4 grouped level=district bucket=1h, Q5 /api/v1/latest?within=<district polygon>."
            ),
            format!(
                "Peak RSS while ingesting; {} MiB while answering queries after the restart.",
                peak_query >> 20
            ),
        ],
        rows: ds.len(),
        ingest_secs: took.as_secs_f64(),
        retries,
        peak_rss: peak_ingest,
        cpu_secs: cpu,
        disk_bytes: disk,
        disk_what: format!(
            "the whole data dir after a graceful stop (observations in obs/: {:.3} bytes/obs; the rest is the SQLite catalogue of 5,000 entities)",
            obs as f64 / ds.len().max(1) as f64
        ),
        obs_bytes: Some(obs),
        latency,
        answers,
        mismatches: Vec::new(),
    })
}

struct Queries<'a> {
    http: &'a reqwest::Client,
    base: &'a str,
    auth: &'a str,
    ds: &'a Dataset,
}

impl Queries<'_> {
    fn window(&self) -> [(&'static str, String); 2] {
        [
            ("from", rfc3339(self.ds.time(0))),
            ("to", rfc3339(self.ds.end())),
        ]
    }

    async fn grouped(&self, level: &str, bucket: &str) -> Result<Bytes> {
        let mut q = vec![
            ("attribute", ATTRIBUTE.to_string()),
            ("level", level.to_string()),
            ("bucket", bucket.to_string()),
            ("agg", "avg".to_string()),
        ];
        q.extend(self.window());
        get(
            self.http,
            &format!("{}/api/v1/series/grouped", self.base),
            &q,
            Some(self.auth),
        )
        .await
    }

    async fn series(&self, run: usize) -> Result<Bytes> {
        let mut q = vec![
            ("entity", Dataset::entity_id(self.ds.q2_sensor(run))),
            ("attribute", ATTRIBUTE.to_string()),
            ("limit", "100000".to_string()),
        ];
        q.extend(self.window());
        get(
            self.http,
            &format!("{}/api/v1/series", self.base),
            &q,
            Some(self.auth),
        )
        .await
    }

    /// Every page of /api/v1/latest for a filter.
    async fn latest(&self, filter: (&'static str, String)) -> Result<Vec<Bytes>> {
        let mut pages = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            // What a wall asks for: every latest value in one page (the API's maximum).
            let mut q = vec![filter.clone(), ("limit", "10000".to_string())];
            if let Some(c) = cursor.take() {
                q.push(("cursor", c));
            }
            let page = get(
                self.http,
                &format!("{}/api/v1/latest", self.base),
                &q,
                Some(self.auth),
            )
            .await?;
            cursor = next_cursor(&page);
            pages.push(page);
            if cursor.is_none() {
                return Ok(pages);
            }
        }
    }

    async fn all(&self, plan: RunPlan) -> Result<(Answers, [sys::Latency; 5])> {
        let mut a = Answers::default();
        // Q1: one province group.
        let v: Value = serde_json::from_slice(&self.grouped("province", "1m").await?)?;
        let group = v
            .as_array()
            .and_then(|g| g.iter().find(|g| g["admin_unit"] == PROVINCE))
            .context("Q1: no group for the province")?;
        for p in group["points"].as_array().context("Q1: no points")? {
            a.q1.push((
                parse_time(&p["time"])?,
                p["value"].as_f64().unwrap_or(f64::NAN),
            ));
        }
        let q1 = time_runs(plan, |_| async {
            self.grouped("province", "1m").await.map(drop)
        })
        .await?;

        let v: Value = serde_json::from_slice(&self.series(0).await?)?;
        for p in v["points"].as_array().context("Q2: no points")? {
            a.q2.push((
                parse_time(&p["time"])?,
                to_tenths(p["value"].as_f64().unwrap_or(f64::NAN)),
            ));
        }
        let q2 = time_runs(plan, |run| async move { self.series(run).await.map(drop) }).await?;

        let by_type = ("type", ENTITY_TYPE.to_string());
        a.q3 = latest_values(&self.latest(by_type.clone()).await?)?;
        let q3 = time_runs(plan, |_| {
            let f = by_type.clone();
            async move { self.latest(f).await.map(drop) }
        })
        .await?;

        let v: Value = serde_json::from_slice(&self.grouped("district", "1h").await?)?;
        for g in v.as_array().context("Q4: not an array")? {
            let Some(code) = g["admin_unit"].as_str().and_then(|c| c.parse::<u32>().ok()) else {
                continue;
            };
            for p in g["points"].as_array().context("Q4: no points")? {
                a.q4.insert(
                    (code, parse_time(&p["time"])?),
                    p["value"].as_f64().unwrap_or(f64::NAN),
                );
            }
        }
        let q4 = time_runs(plan, |_| async {
            self.grouped("district", "1h").await.map(drop)
        })
        .await?;

        let within = ("within", q5_polygon());
        a.q5 = latest_values(&self.latest(within.clone()).await?)?;
        let q5 = time_runs(plan, |_| {
            let f = within.clone();
            async move { self.latest(f).await.map(drop) }
        })
        .await?;
        Ok((a, [q1, q2, q3, q4, q5]))
    }
}

/// The `next_cursor` of a page, found without parsing the whole page.
fn next_cursor(page: &[u8]) -> Option<String> {
    let key = b"\"next_cursor\":\"";
    let at = page.windows(key.len()).rposition(|w| w == key)? + key.len();
    let rest = page.get(at..)?;
    let end = rest.iter().position(|b| *b == b'"')?;
    Some(String::from_utf8_lossy(rest.get(..end)?).into_owned())
}

fn latest_values(pages: &[Bytes]) -> Result<Vec<(u32, i64)>> {
    let mut out = Vec::new();
    for p in pages {
        let v: Value = serde_json::from_slice(p)?;
        for it in v["items"].as_array().context("latest: no items")? {
            if it["attribute"] != ATTRIBUTE {
                continue;
            }
            let id = it["entity"].as_str().unwrap_or_default();
            let idx = Dataset::index_of(id).with_context(|| format!("latest: entity {id}"))?;
            out.push((idx, to_tenths(it["value"].as_f64().unwrap_or(f64::NAN))));
        }
    }
    out.sort_unstable();
    Ok(out)
}
