//! PostgreSQL 15 in a private cluster under the work dir (initdb/pg_ctl,
//! 127.0.0.1, a free port — never the system cluster), loaded with COPY
//! into a table with a btree index on (sensor, time).

use crate::Opts;
use crate::dataset::{Answers, Dataset, Q5_DISTRICT, decimal, district_rect};
use crate::report::StoreReport;
use crate::sys::{self, RssSampler, time_runs};
use anyhow::{Context, Result, bail};
use bytes::Bytes;
use futures::SinkExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;
use tokio_postgres::{Client, NoTls};

const BIN_DIR: &str = "/usr/lib/postgresql/15/bin";
/// Settings beyond the defaults: a buffer pool and WAL size for a bulk load.
const SETTINGS: &str = "-c shared_buffers=256MB -c max_wal_size=4GB";

fn is_root() -> bool {
    sys::run(Command::new("id").arg("-u"))
        .map(|s| s.trim() == "0")
        .unwrap_or(false)
}

/// A PostgreSQL command, as the `postgres` user when we are root (initdb refuses root).
fn pg_cmd(tool: &str) -> Command {
    let bin = format!("{BIN_DIR}/{tool}");
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", &bin]);
        c
    } else {
        Command::new(bin)
    }
}

fn pg_ctl(data: &Path, log: &Path, port: u16, sock: &Path, action: &str) -> Result<()> {
    let opts = format!(
        "-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} {SETTINGS}",
        sock.display()
    );
    let mut c = pg_cmd("pg_ctl");
    c.arg("-D")
        .arg(data)
        .arg("-l")
        .arg(log)
        .args(["-w", "-t", "300"]);
    match action {
        "start" => c.args(["-o", &opts, "start"]),
        _ => c.args(["-m", "fast", "stop"]),
    };
    sys::run(&mut c).map(drop)
}

fn postmaster_pid(data: &Path) -> Result<u32> {
    let s = std::fs::read_to_string(data.join("postmaster.pid"))?;
    s.lines()
        .next()
        .and_then(|l| l.trim().parse().ok())
        .context("postmaster.pid has no pid")
}

async fn connect(port: u16) -> Result<Client> {
    let (client, conn) = tokio_postgres::connect(
        &format!("host=127.0.0.1 port={port} user=bench dbname=postgres"),
        NoTls,
    )
    .await?;
    tokio::spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("  postgres connection: {e}");
        }
    });
    client.batch_execute("SET TimeZone = 'UTC'").await?;
    Ok(client)
}

/// COPY text rows, `batch` per COPY.
fn copy_batches(ds: &Dataset, batch: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    let mut cur = String::with_capacity(batch * 36);
    let mut n = 0;
    for m in 0..ds.minutes {
        let t = chrono::DateTime::from_timestamp(ds.time(m), 0)
            .map(|d| d.format("%Y-%m-%d %H:%M:%S+00").to_string())
            .unwrap_or_default();
        for s in &ds.sensors {
            cur.push_str(&s.index.to_string());
            cur.push('\t');
            cur.push_str(&t);
            cur.push('\t');
            decimal(ds.tenths(s, m), &mut cur);
            cur.push('\n');
            n += 1;
            if n == batch {
                out.push(Bytes::from(std::mem::replace(
                    &mut cur,
                    String::with_capacity(batch * 36),
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

/// Runs the PostgreSQL part.
pub async fn run(ds: &Dataset, opts: &Opts, work: PathBuf) -> Result<StoreReport> {
    if !Path::new(BIN_DIR).join("initdb").exists() {
        bail!("{BIN_DIR}/initdb is missing (run scripts/bench-peers.sh)");
    }
    // The postgres user must reach the cluster dir when we run as root.
    if let Some(parent) = work.parent() {
        std::fs::set_permissions(parent, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o755))?;
    if is_root() {
        sys::run(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&work),
        )?;
    }
    let data = work.join("data");
    let log = work.join("postgres.log");
    sys::run(pg_cmd("initdb").arg("-D").arg(&data).args([
        "-U",
        "bench",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-sync",
    ]))?;
    let port = sys::free_port()?;
    pg_ctl(&data, &log, port, &work, "start")?;
    let result = load_and_query(ds, opts, &data, &log, port, &work).await;
    let _ = pg_ctl(&data, &log, port, &work, "stop");
    result
}

async fn load_and_query(
    ds: &Dataset,
    opts: &Opts,
    data: &Path,
    log: &Path,
    port: u16,
    work: &Path,
) -> Result<StoreReport> {
    let version = {
        let c = connect(port).await?;
        c.batch_execute(
            "CREATE TABLE sensors (id int PRIMARY KEY, district int NOT NULL, lon float8 NOT NULL, lat float8 NOT NULL);
             CREATE TABLE obs (sensor int NOT NULL, t timestamptz NOT NULL, v float8 NOT NULL);
             CREATE INDEX obs_sensor_t ON obs (sensor, t);",
        )
        .await?;
        let mut rows = String::new();
        for s in &ds.sensors {
            rows.push_str(&format!(
                "{}\t{}\t{}\t{}\n",
                s.index,
                s.district_code(),
                s.lon,
                s.lat
            ));
        }
        let sink = c.copy_in("COPY sensors FROM STDIN").await?;
        futures::pin_mut!(sink);
        sink.send(Bytes::from(rows)).await?;
        sink.as_mut().finish().await?;
        c.batch_execute("ANALYZE sensors").await?;
        let v: String = c.query_one("SHOW server_version", &[]).await?.get(0);
        v
    };

    let batches = Arc::new(copy_batches(ds, opts.batch));
    let sampler = RssSampler::start(postmaster_pid(data)?);
    let next = Arc::new(AtomicUsize::new(0));
    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..opts.pg_sessions.max(1) {
        let (batches, next) = (batches.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let c = connect(port).await?;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(b) = batches.get(i) else {
                    return Ok::<(), anyhow::Error>(());
                };
                // One COPY per batch, each its own transaction: answered after commit (fsync).
                let sink = c.copy_in("COPY obs (sensor, t, v) FROM STDIN").await?;
                futures::pin_mut!(sink);
                sink.send(b.clone()).await?;
                sink.as_mut().finish().await?;
            }
        }));
    }
    for task in tasks {
        task.await??;
    }
    let took = t.elapsed();
    drop(batches);
    let cpu = sampler.cpu();
    let peak = sampler.finish();
    eprintln!(
        "  ingest: {:.2} s, {:.0} rows/s, peak RSS {} MiB",
        took.as_secs_f64(),
        ds.len() as f64 / took.as_secs_f64(),
        peak >> 20
    );
    let disk: i64 = {
        let c = connect(port).await?;
        c.batch_execute("VACUUM ANALYZE obs").await?;
        c.batch_execute("CHECKPOINT").await?;
        c.query_one("SELECT pg_total_relation_size('obs')", &[])
            .await?
            .get(0)
    };
    pg_ctl(data, log, port, work, "stop")?;
    pg_ctl(data, log, port, work, "start")?;
    let sampler = RssSampler::start(postmaster_pid(data)?);
    let result = queries(ds, opts, port).await;
    let peak_q = sampler.finish();
    let (answers, latency) = result?;
    Ok(StoreReport {
        name: format!("PostgreSQL {}", version.split_whitespace().next().unwrap_or("15")),
        notes: vec![
            format!("a private cluster (initdb, pg_ctl, 127.0.0.1) with `{SETTINGS}`, fsync and synchronous_commit on; table obs(sensor int, t timestamptz, v float8) with a btree index on (sensor, t) created before the load, and sensors(id, district, lon, lat); {} COPY sessions, one COPY (one transaction) per batch.", opts.pg_sessions),
            "SQL after VACUUM ANALYZE and a restart: Q1 `avg(v) GROUP BY date_trunc('minute', t)`, Q2 one sensor by the index, Q3 a LATERAL `ORDER BY t DESC LIMIT 1` per sensor, Q4 join to sensors `GROUP BY district, date_trunc('hour', t)`, Q5 Q3 for sensors whose point lies in the district `polygon` (built-in geometric types, no PostGIS).".into(),
            format!("Peak RSS: private memory of the postmaster and its backends plus the shared buffers once, sampled while loading ({} MiB while querying).", peak_q >> 20),
        ],
        rows: ds.len(),
        ingest_secs: took.as_secs_f64(),
        retries: 0,
        peak_rss: peak,
        cpu_secs: cpu,
        disk_bytes: u64::try_from(disk).unwrap_or(0),
        disk_what: "pg_total_relation_size('obs') (heap and index) after VACUUM; WAL not counted".into(),
        obs_bytes: None,
        latency,
        answers,
        mismatches: Vec::new(),
    })
}

async fn queries(ds: &Dataset, opts: &Opts, port: u16) -> Result<(Answers, [sys::Latency; 5])> {
    let plan = opts.plan();
    let c = connect(port).await?;
    let (t0, end) = (ds.time(0) as f64, ds.end() as f64);
    let q1 = c
        .prepare(
            "SELECT extract(epoch FROM date_trunc('minute', t))::bigint AS m, avg(v)
             FROM obs WHERE t >= to_timestamp($1::float8) AND t < to_timestamp($2::float8)
             GROUP BY 1 ORDER BY 1",
        )
        .await?;
    let q2 = c
        .prepare(
            "SELECT extract(epoch FROM t)::bigint, v FROM obs
             WHERE sensor = $1 AND t >= to_timestamp($2::float8) AND t < to_timestamp($3::float8) ORDER BY t",
        )
        .await?;
    let latest = "SELECT s.id, o.v FROM sensors s
         CROSS JOIN LATERAL (SELECT v FROM obs WHERE obs.sensor = s.id ORDER BY t DESC LIMIT 1) o";
    let q3 = c.prepare(&format!("{latest} ORDER BY s.id")).await?;
    let q4 = c
        .prepare(
            "SELECT s.district, extract(epoch FROM date_trunc('hour', o.t))::bigint AS h, avg(o.v)
             FROM obs o JOIN sensors s ON s.id = o.sensor
             WHERE o.t >= to_timestamp($1::float8) AND o.t < to_timestamp($2::float8)
             GROUP BY 1, 2 ORDER BY 1, 2",
        )
        .await?;
    let (w, s, e, n) = district_rect(Q5_DISTRICT);
    let poly = format!("(({w},{s}),({e},{s}),({e},{n}),({w},{n}))");
    let q5 = c
        .prepare(&format!(
            "{latest} WHERE polygon '{poly}' @> point(s.lon, s.lat) ORDER BY s.id"
        ))
        .await?;

    let mut a = Answers::default();
    for r in c.query(&q1, &[&t0, &end]).await? {
        a.q1.push((r.get(0), r.get(1)));
    }
    let l1 = time_runs(plan, |_| async {
        c.query(&q1, &[&t0, &end])
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    let sensor = |run: usize| ds.q2_sensor(run) as i32;
    for r in c.query(&q2, &[&sensor(0), &t0, &end]).await? {
        let v: f64 = r.get(1);
        a.q2.push((r.get(0), crate::dataset::to_tenths(v)));
    }
    let l2 = time_runs(plan, |run| {
        let (c, q2) = (&c, &q2);
        async move {
            c.query(q2, &[&sensor(run), &t0, &end])
                .await
                .map(drop)
                .map_err(Into::into)
        }
    })
    .await?;
    let latest = |rows: Vec<tokio_postgres::Row>| -> Vec<(u32, i64)> {
        rows.iter()
            .map(|r| {
                let id: i32 = r.get(0);
                let v: f64 = r.get(1);
                (id as u32, crate::dataset::to_tenths(v))
            })
            .collect()
    };
    a.q3 = latest(c.query(&q3, &[]).await?);
    let l3 = time_runs(plan, |_| async {
        c.query(&q3, &[]).await.map(drop).map_err(Into::into)
    })
    .await?;
    for r in c.query(&q4, &[&t0, &end]).await? {
        let d: i32 = r.get(0);
        a.q4.insert((d as u32, r.get(1)), r.get(2));
    }
    let l4 = time_runs(plan, |_| async {
        c.query(&q4, &[&t0, &end])
            .await
            .map(drop)
            .map_err(Into::into)
    })
    .await?;
    a.q5 = latest(c.query(&q5, &[]).await?);
    let l5 = time_runs(plan, |_| async {
        c.query(&q5, &[]).await.map(drop).map_err(Into::into)
    })
    .await?;
    Ok((a, [l1, l2, l3, l4, l5]))
}
