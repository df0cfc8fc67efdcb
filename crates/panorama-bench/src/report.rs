//! Results of one store and the Markdown report.

use crate::dataset::{Answers, Dataset, compare};
use crate::sys::Latency;
use std::fmt::Write;
use std::time::Duration;

/// The query names, in order.
pub const QUERIES: [&str; 5] = ["Q1", "Q2", "Q3", "Q4", "Q5"];

/// Targets of issue 7 for Panorama's p50 latencies.
pub const TARGETS_MS: [f64; 5] = [50.0, 1.0, 5.0, 20.0, 10.0];

/// What one store did.
#[derive(Debug, Clone, Default)]
pub struct StoreReport {
    /// Store name and version.
    pub name: String,
    /// How it was set up and loaded (durability, sessions, schema).
    pub notes: Vec<String>,
    /// Observations loaded.
    pub rows: u64,
    /// Seconds from the first send to the last acknowledgement (and flush, for stores that need one).
    pub ingest_secs: f64,
    /// Retries after the store said it was busy.
    pub retries: u64,
    /// Peak resident memory, bytes.
    pub peak_rss: u64,
    /// CPU seconds the store's processes used while ingesting.
    pub cpu_secs: f64,
    /// Bytes on disk of the observations once compacted.
    pub disk_bytes: u64,
    /// What `disk_bytes` covers.
    pub disk_what: String,
    /// Of `disk_bytes`, the observations alone (when the store keeps them apart).
    pub obs_bytes: Option<u64>,
    /// Latencies of Q1–Q5 (empty when not run).
    pub latency: [Latency; 5],
    /// The answers of the checked run.
    pub answers: Answers,
    /// Differences from the expected answers.
    pub mismatches: Vec<String>,
}

impl StoreReport {
    /// Ingest rate.
    pub fn rows_per_sec(&self) -> f64 {
        if self.ingest_secs > 0.0 {
            self.rows as f64 / self.ingest_secs
        } else {
            0.0
        }
    }

    /// Bytes on disk per observation.
    pub fn bytes_per_obs(&self) -> f64 {
        self.disk_bytes as f64 / self.rows.max(1) as f64
    }

    /// Checks the answers against the dataset's.
    pub fn check(&mut self, expected: &Answers) {
        self.mismatches = compare(expected, &self.answers);
    }
}

fn ms(d: Option<Duration>) -> String {
    match d {
        None => "–".into(),
        Some(d) => {
            let ms = d.as_secs_f64() * 1e3;
            if ms >= 1000.0 {
                format!("{:.2} s", ms / 1e3)
            } else if ms >= 10.0 {
                format!("{ms:.0} ms")
            } else {
                format!("{ms:.2} ms")
            }
        }
    }
}

fn rate(r: f64) -> String {
    let r = r.round() as u64;
    let s = r.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mib(b: u64) -> String {
    format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0))
}

/// Everything about the run, for the report.
#[derive(Debug, Clone)]
pub struct RunInfo {
    /// UTC date and time of the run.
    pub date: String,
    /// CPU model and count.
    pub machine: String,
    /// Load average before and after.
    pub load: (String, String),
    /// The command line.
    pub command: String,
    /// Batch size, HTTP clients.
    pub batch: usize,
    /// Concurrent writers.
    pub clients: usize,
    /// Timed runs per query.
    pub runs: usize,
}

/// The Markdown report: setup, table, ratios, checks, notes.
pub fn markdown(
    ds: &Dataset,
    info: &RunInfo,
    stores: &[StoreReport],
    skipped: &[String],
) -> String {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "- date: {}\n- machine: {}\n- load average (1, 5, 15 min): {} before, {} after\n- command: `{}`\n- dataset: {} sensors × {} minutes = {} observations, time order, batches of {}, {} concurrent writers; {} timed runs per query after one checked run\n",
        info.date,
        info.machine,
        info.load.0,
        info.load.1,
        info.command,
        ds.sensors.len(),
        ds.minutes,
        rate(ds.len() as f64),
        rate(info.batch as f64),
        info.clients,
        info.runs
    );
    let _ = writeln!(
        s,
        "| store | ingest rows/s | CPU µs/obs | peak RSS | bytes/obs | Q1 p50 / p99 | Q2 p50 / p99 | Q3 p50 / p99 | Q4 p50 / p99 | Q5 p50 / p99 | answers |"
    );
    let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|");
    for r in stores {
        let mut row = format!(
            "| {} | {} | {:.2} | {} | {:.2} |",
            r.name,
            rate(r.rows_per_sec()),
            r.cpu_secs * 1e6 / r.rows.max(1) as f64,
            mib(r.peak_rss),
            r.bytes_per_obs()
        );
        for l in &r.latency {
            let n = if l.runs.is_empty() || l.runs.len() == info.runs {
                String::new()
            } else {
                format!(" (n={})", l.runs.len())
            };
            let _ = write!(row, " {} / {}{} |", ms(l.p50()), ms(l.p99()), n);
        }
        let check = if r.mismatches.is_empty() {
            "match".to_string()
        } else {
            format!("**{} differ**", r.mismatches.len())
        };
        let _ = writeln!(s, "{row} {check} |");
    }
    if let Some(p) = stores.first() {
        let _ = writeln!(
            s,
            "\nRatios {} ÷ peer (ingest: above 1 = Panorama faster; RSS, bytes and latency: below 1 = Panorama smaller or faster):\n",
            p.name
        );
        let _ = writeln!(
            s,
            "| peer | ingest | peak RSS | bytes/obs | Q1 | Q2 | Q3 | Q4 | Q5 |"
        );
        let _ = writeln!(s, "|---|---:|---:|---:|---:|---:|---:|---:|---:|");
        for r in stores.iter().skip(1) {
            let div = |a: f64, b: f64| {
                if b > 0.0 && a > 0.0 {
                    format!("{:.3}", a / b)
                } else {
                    "–".into()
                }
            };
            let mut row = format!(
                "| {} | {} | {} | {} |",
                r.name,
                div(p.rows_per_sec(), r.rows_per_sec()),
                div(p.peak_rss as f64, r.peak_rss as f64),
                div(p.bytes_per_obs(), r.bytes_per_obs())
            );
            for (a, b) in p.latency.iter().zip(&r.latency) {
                let v = match (a.p50(), b.p50()) {
                    (Some(a), Some(b)) => div(a.as_secs_f64(), b.as_secs_f64()),
                    _ => "–".into(),
                };
                let _ = write!(row, " {v} |");
            }
            let _ = writeln!(s, "{row}");
        }
        let _ = writeln!(s, "\nPanorama against the issue's targets:\n");
        let ok = |b: bool| if b { "met" } else { "**missed**" };
        let _ = writeln!(
            s,
            "- ingest ≥ 1,000,000 obs/s durable over HTTP: {} rows/s — {}",
            rate(p.rows_per_sec()),
            ok(p.rows_per_sec() >= 1e6)
        );
        for r in stores.iter().skip(1) {
            if r.name.starts_with("PostgreSQL") {
                let _ = writeln!(
                    s,
                    "- ingest ≥ 5 × PostgreSQL COPY: {:.1} × — {}",
                    p.rows_per_sec() / r.rows_per_sec().max(1.0),
                    ok(p.rows_per_sec() >= 5.0 * r.rows_per_sec())
                );
            }
            if r.name.starts_with("VictoriaMetrics") {
                let _ = writeln!(
                    s,
                    "- ingest ≥ VictoriaMetrics in the same run: {:.2} × — {}",
                    p.rows_per_sec() / r.rows_per_sec().max(1.0),
                    ok(p.rows_per_sec() >= r.rows_per_sec())
                );
            }
        }
        for (i, (l, t)) in p.latency.iter().zip(TARGETS_MS).enumerate() {
            if let Some(d) = l.p50() {
                let name = QUERIES.get(i).copied().unwrap_or("?");
                let _ = writeln!(
                    s,
                    "- {name} p50 ≤ {t} ms: {} — {}",
                    ms(Some(d)),
                    ok(d.as_secs_f64() * 1e3 <= t)
                );
            }
        }
        let obs = p.obs_bytes.unwrap_or(p.disk_bytes) as f64 / p.rows.max(1) as f64;
        let _ = writeln!(
            s,
            "- storage ≤ 1 byte/observation once compacted: {obs:.3} for the observations, {:.3} with the catalogue of entities — {}",
            p.bytes_per_obs(),
            ok(obs <= 1.0)
        );
        let _ = writeln!(
            s,
            "- peak RSS under 1 GiB while ingesting: {} — {}",
            mib(p.peak_rss),
            ok(p.peak_rss < 1 << 30)
        );
    }
    let _ = writeln!(
        s,
        "\nHow each store was set up and what its figures cover:\n"
    );
    for r in stores {
        let _ = writeln!(
            s,
            "- **{}**: {} Disk: {}. Busy retries during ingest: {}.",
            r.name,
            r.notes.join(" "),
            r.disk_what,
            r.retries
        );
        for m in &r.mismatches {
            let _ = writeln!(s, "  - answer differs: {m}");
        }
    }
    for k in skipped {
        let _ = writeln!(s, "- **SKIPPED** {k}");
    }
    s
}
