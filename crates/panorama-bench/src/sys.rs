//! Processes, memory, disk and timing helpers shared by every store.

use anyhow::{Context, Result, bail};
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// A field of /proc/<pid>/status in kB (VmHWM, RssAnon…), as bytes.
fn status_kb(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        .map(|kb| kb * 1024)
}

/// Peak resident set of one process (VmHWM).
pub fn vm_hwm(pid: u32) -> u64 {
    status_kb(pid, "VmHWM").unwrap_or(0)
}

/// `pid` and all its descendants.
fn tree(pid: u32) -> Vec<u32> {
    let mut parent = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for e in rd.flatten() {
            let Some(p) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
                continue;
            };
            let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
                continue;
            };
            // The command may hold spaces and parentheses: fields follow the last ')'.
            let ppid = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<u32>().ok());
            if let Some(pp) = ppid {
                parent.push((p, pp));
            }
        }
    }
    let mut out = vec![pid];
    let mut i = 0;
    while let Some(&cur) = out.get(i) {
        out.extend(parent.iter().filter(|(_, pp)| *pp == cur).map(|(p, _)| *p));
        i += 1;
    }
    out
}

/// Resident memory of a process tree now: private memory of every process
/// plus the largest shared/file-backed part of any one (so a shared buffer
/// pool mapped by many PostgreSQL backends counts once).
pub fn tree_rss(pid: u32) -> u64 {
    let mut anon = 0;
    let mut shared = 0;
    for p in tree(pid) {
        anon += status_kb(p, "RssAnon").unwrap_or(0);
        let s = status_kb(p, "RssFile").unwrap_or(0) + status_kb(p, "RssShmem").unwrap_or(0);
        shared = shared.max(s);
    }
    anon + shared
}

/// CPU seconds used so far by a process tree (user + system, with reaped children).
pub fn tree_cpu(pid: u32) -> f64 {
    let mut ticks = 0u64;
    for (i, p) in tree(pid).into_iter().enumerate() {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        // After the command: state is field 3; utime 14, stime 15, cutime 16, cstime 17.
        let f: Vec<u64> = rest
            .split_whitespace()
            .skip(11)
            .take(4)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let own = f.iter().take(2).sum::<u64>();
        // Children reaped by the root count too (PostgreSQL backends that ended).
        let reaped = if i == 0 {
            f.iter().skip(2).sum::<u64>()
        } else {
            0
        };
        ticks += own + reaped;
    }
    // USER_HZ is 100 on Linux.
    ticks as f64 / 100.0
}

/// Samples [`tree_rss`] of a process every 100 ms and keeps the peak.
#[derive(Debug)]
pub struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
    pid: u32,
    cpu0: f64,
}

impl RssSampler {
    /// Starts sampling `pid`'s tree.
    pub fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        let handle = std::thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(tree_rss(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Self {
            peak,
            stop,
            handle: Some(handle),
            pid,
            cpu0: tree_cpu(pid),
        }
    }

    /// The peak so far: the sampled tree peak or the main process's VmHWM, whichever is larger.
    pub fn peak(&self) -> u64 {
        self.peak
            .load(Ordering::Relaxed)
            .max(tree_rss(self.pid))
            .max(vm_hwm(self.pid))
    }

    /// CPU seconds the tree used since sampling started.
    pub fn cpu(&self) -> f64 {
        tree_cpu(self.pid) - self.cpu0
    }

    /// Stops sampling and returns the peak.
    pub fn finish(mut self) -> u64 {
        let peak = self.peak();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        peak
    }
}

/// Bytes of every file under `dir`.
pub fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let Ok(m) = e.metadata() else { continue };
            if m.is_dir() {
                stack.push(e.path());
            } else {
                total += m.len();
            }
        }
    }
    total
}

/// Sends SIGTERM (or `sig`) to a child and waits up to `within` for it to exit.
pub fn stop(child: &mut Child, sig: &str, within: Duration) -> Result<()> {
    let pid = child.id().to_string();
    let _ = Command::new("kill").args([sig, &pid]).status();
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                eprintln!("  note: process {pid} exited with {status} after {sig}");
            }
            return Ok(());
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            bail!("process {pid} did not stop within {within:?} after {sig}; killed");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Waits until `url` answers (any HTTP status below 500), for at most `within`.
pub async fn wait_http(http: &reqwest::Client, url: &str, within: Duration) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        if let Ok(r) = http.get(url).send().await
            && r.status().as_u16() < 500
        {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("{url} did not answer within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The load averages (1, 5, 15 minutes).
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "?".into())
}

/// Runs a command to completion, failing with its output when it fails.
pub fn run(cmd: &mut Command) -> Result<String> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Latencies of repeated runs of a query.
#[derive(Debug, Clone, Default)]
pub struct Latency {
    /// Every run, sorted.
    pub runs: Vec<Duration>,
}

impl Latency {
    fn pct(&self, p: f64) -> Option<Duration> {
        if self.runs.is_empty() {
            return None;
        }
        // Nearest rank.
        let rank = ((p * self.runs.len() as f64).ceil() as usize).clamp(1, self.runs.len());
        self.runs.get(rank - 1).copied()
    }

    /// Median.
    pub fn p50(&self) -> Option<Duration> {
        self.pct(0.5)
    }

    /// 99th percentile (with 20 runs: the slowest).
    pub fn p99(&self) -> Option<Duration> {
        self.pct(0.99)
    }
}

/// How many times each query runs, and the time after which a slow query stops early.
#[derive(Debug, Clone, Copy)]
pub struct RunPlan {
    /// Timed runs (after one untimed run whose answer is checked).
    pub runs: usize,
    /// Stop repeating a query once its runs took this long (at least 3 runs).
    pub budget: Duration,
}

/// Times `runs` calls of `f` (run index given), stopping early past the budget.
pub async fn time_runs<F, Fut>(plan: RunPlan, mut f: F) -> Result<Latency>
where
    F: FnMut(usize) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let mut lat = Latency::default();
    let started = Instant::now();
    for i in 0..plan.runs {
        let t = Instant::now();
        f(i + 1).await?;
        lat.runs.push(t.elapsed());
        if i + 1 >= 3 && started.elapsed() > plan.budget {
            break;
        }
    }
    lat.runs.sort();
    Ok(lat)
}
