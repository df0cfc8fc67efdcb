//! `panorama-bench`: issue 7's benchmark. One deterministic day of sensor
//! data (by default 5,000 sensors × 1,440 minutes = 7.2 M observations) is
//! posted in time order to a real Panorama server over HTTP, then loaded in
//! the same run into the stores a user would otherwise pick
//! (VictoriaMetrics, InfluxDB 1.x, PostgreSQL, SQLite); every store
//! answers the same five queries, the answers are checked against the data
//! and each other, and a Markdown table is printed.
//!
//! `scripts/bench.sh` builds everything and runs it; `scripts/bench-peers.sh`
//! installs the peers from Debian's packages.

mod dataset;
mod http;
mod influx;
mod panorama;
mod pg;
mod report;
mod sqlite;
mod sys;
mod vm;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};
use dataset::Dataset;
use report::{RunInfo, StoreReport};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Issue 7's ingest and query benchmark.
#[derive(Debug, Parser)]
#[command(name = "panorama-bench")]
pub struct Opts {
    /// Sensors (entities), each with one numeric attribute.
    #[arg(long, default_value_t = 5000)]
    sensors: u32,
    /// One-minute timestamps per sensor.
    #[arg(long, default_value_t = 1440)]
    minutes: u32,
    /// Observations per write request (or COPY, or transaction).
    #[arg(long, default_value_t = 10_000)]
    batch: usize,
    /// Concurrent writers (keep-alive HTTP connections) for the HTTP stores.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// Concurrent COPY sessions for PostgreSQL.
    #[arg(long, default_value_t = 2)]
    pg_sessions: usize,
    /// Timed runs of each query (after one checked run).
    #[arg(long, default_value_t = 20)]
    runs: usize,
    /// A query stops repeating once its runs took this many seconds (it runs at least 3 times).
    #[arg(long, default_value_t = 30)]
    query_budget_secs: u64,
    /// Stores to run, comma-separated: panorama, victoriametrics, influxdb, postgresql, sqlite; or all.
    #[arg(long, default_value = "all")]
    stores: String,
    /// The panorama binary (default: `panorama` next to this executable).
    #[arg(long)]
    panorama_bin: Option<PathBuf>,
    /// Where temporary data dirs go (default: the system temporary directory). Must be a real disk.
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Keep the temporary data dirs.
    #[arg(long)]
    keep: bool,
    /// Also write the Markdown report to this file.
    #[arg(long)]
    markdown: Option<PathBuf>,
    #[command(subcommand)]
    worker: Option<Worker>,
}

/// Internal: the SQLite load runs in its own process, so its memory is its own.
#[derive(Debug, Subcommand)]
enum Worker {
    #[command(hide = true)]
    SqliteWorker {
        /// The database file.
        #[arg(long)]
        db: PathBuf,
    },
}

impl Opts {
    fn panorama_bin(&self) -> Result<PathBuf> {
        let p = match &self.panorama_bin {
            Some(p) => p.clone(),
            None => std::env::current_exe()?
                .parent()
                .context("the bench executable has no directory")?
                .join("panorama"),
        };
        if !p.exists() {
            bail!(
                "{} does not exist: build it with `cargo build --release -p panorama` or pass --panorama-bin",
                p.display()
            );
        }
        Ok(p)
    }

    fn plan(&self) -> sys::RunPlan {
        sys::RunPlan {
            runs: self.runs.max(1),
            budget: Duration::from_secs(self.query_budget_secs),
        }
    }

    fn wants(&self, store: &str) -> bool {
        self.stores == "all" || self.stores.split(',').any(|s| s.trim() == store)
    }
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|x| x.1.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map_or(String::new(), |kb| {
            format!(", {} GiB RAM", kb / (1024 * 1024))
        });
    format!("{cores} cores ({model}){mem}, Linux")
}

fn main() -> Result<()> {
    let opts = Opts::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    if let Some(Worker::SqliteWorker { db }) = &opts.worker {
        let ds = Dataset::new(opts.sensors, opts.minutes);
        return rt.block_on(sqlite::worker(&ds, &opts, db));
    }
    rt.block_on(bench(&opts))
}

async fn bench(opts: &Opts) -> Result<()> {
    let ds = Dataset::new(opts.sensors, opts.minutes);
    let work_root = match &opts.work_dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            tempfile::Builder::new()
                .prefix("panorama-bench-")
                .tempdir_in(d)?
        }
        None => tempfile::Builder::new()
            .prefix("panorama-bench-")
            .tempdir()?,
    };
    let work = work_root.path().to_path_buf();
    let load_before = sys::loadavg();
    // The report states when it ran: the one place the wall clock is the point.
    #[allow(clippy::disallowed_methods)]
    let started = chrono::Utc::now();
    eprintln!(
        "panorama-bench: {} sensors × {} minutes = {} observations; work dir {}",
        ds.sensors.len(),
        ds.minutes,
        ds.len(),
        work.display()
    );
    let expected = ds.expected();
    let mut stores: Vec<StoreReport> = Vec::new();
    let mut skipped: Vec<String> = Vec::new();

    type Job<'a> = (
        &'static str,
        &'static str,
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<StoreReport>> + 'a>>,
    );
    let sub = |name: &str| -> Result<PathBuf> {
        let d = work.join(name);
        std::fs::create_dir_all(&d)?;
        Ok(d)
    };
    let jobs: Vec<Job> = vec![
        (
            "panorama",
            "Panorama",
            Box::pin(panorama::run(&ds, opts, &work)),
        ),
        (
            "victoriametrics",
            "VictoriaMetrics",
            Box::pin(vm::run(&ds, opts, sub("vm")?)),
        ),
        (
            "postgresql",
            "PostgreSQL",
            Box::pin(pg::run(&ds, opts, sub("pg")?)),
        ),
        (
            "sqlite",
            "SQLite",
            Box::pin(sqlite::run(&ds, opts, sub("sqlite")?)),
        ),
        (
            "influxdb",
            "InfluxDB",
            Box::pin(influx::run(&ds, opts, sub("influx")?)),
        ),
    ];
    for (key, label, job) in jobs {
        if !opts.wants(key) {
            continue;
        }
        eprintln!("\n== {label} (load average {})", sys::loadavg());
        match job.await {
            Ok(mut r) => {
                r.check(&expected);
                if r.mismatches.is_empty() {
                    eprintln!("  answers match the data");
                } else {
                    for m in &r.mismatches {
                        eprintln!("  ANSWER DIFFERS: {m}");
                    }
                }
                stores.push(r);
            }
            Err(e) => {
                let msg = format!("{label}: {e:#}");
                eprintln!("\n!!!!! SKIPPED {msg}\n");
                skipped.push(msg);
            }
        }
    }
    // Every store against every other, not only against the data.
    for (i, a) in stores.iter().enumerate() {
        for b in stores.iter().skip(i + 1) {
            let d = dataset::compare(&b.answers, &a.answers);
            if !d.is_empty() {
                eprintln!("  {} and {} disagree: {}", a.name, b.name, d.join("; "));
            }
        }
    }
    let info = RunInfo {
        date: started.format("%Y-%m-%d %H:%M UTC").to_string(),
        machine: machine(),
        load: (load_before, sys::loadavg()),
        command: std::env::args()
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect::<Vec<_>>()
            .join(" "),
        batch: opts.batch,
        clients: opts.clients,
        runs: opts.runs,
    };
    let md = report::markdown(&ds, &info, &stores, &skipped);
    println!("{md}");
    if let Some(p) = &opts.markdown {
        std::fs::write(p, &md).with_context(|| format!("writing {}", p.display()))?;
    }
    if opts.keep {
        let kept = work_root.keep();
        eprintln!("kept {}", kept.display());
    }
    if stores.iter().any(|s| !s.mismatches.is_empty()) {
        bail!("some answers differ from the data");
    }
    Ok(())
}

/// A path as text, for command lines.
pub fn path_str(p: &Path) -> String {
    p.display().to_string()
}
