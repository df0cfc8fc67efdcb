//! `panorama demo`: build (or reuse) the Binh Duong demo data dir, serve it,
//! and keep data flowing through the public ingest API with the simulator.

use crate::config::Config;
use anyhow::Context;
use panorama_core::Clock;
use panorama_demo::{DemoOptions, Simulator, SimulatorOptions};
use panorama_store::SharedStore;
use serde::{Deserialize, Serialize};
use sha2::Digest;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

/// What the demo was built with, kept in the data dir so a rerun rebuilds
/// the same entities and tokens without loading anything.
#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    /// False while the demo is being built: an interrupted build is redone with --fresh.
    complete: bool,
    /// Mixed into the sources' tokens so they cannot be guessed from the seed.
    token_secret: String,
    seed: u64,
    sensors: usize,
    cameras: usize,
    built_at: chrono::DateTime<chrono::Utc>,
}

/// The marker file of a complete demo data dir.
pub const MARKER: &str = "demo.toml";

/// Options of the demo verb.
#[derive(Debug, Clone)]
pub struct DemoArgs {
    /// Rebuild from scratch.
    pub fresh: bool,
    /// Sensors the simulator drives (all when absent).
    pub sensors: Option<usize>,
    /// Observations per second the simulator produces.
    pub rate: Option<f64>,
    /// Run no simulator (static data only).
    pub no_simulator: bool,
    /// Days of history for a new demo.
    pub backfill_days: u32,
}

fn read_marker(dir: &Path) -> anyhow::Result<Option<Marker>> {
    let p = dir.join(MARKER);
    if !p.exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&p).with_context(|| format!("cannot read {}", p.display()))?;
    Ok(Some(toml::from_str(&text).with_context(|| {
        format!("{} is damaged; rerun with --fresh", p.display())
    })?))
}

/// A source's token: unguessable without the data dir's secret, and stable
/// across runs so the stored hashes keep matching.
fn source_token(secret: &str, source: &str) -> String {
    let mut h = sha2::Sha256::new();
    h.update(secret.as_bytes());
    h.update(b"|");
    h.update(source.as_bytes());
    let hex: String = h.finalize().iter().map(|b| format!("{b:02x}")).collect();
    format!("{}{hex}", panorama_api::auth::SOURCE_TOKEN_PREFIX)
}

fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir)
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

/// Runs the demo until Ctrl-C.
pub async fn run(cfg: &Config, args: DemoArgs, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let dir = cfg.data_dir.clone();
    let started = Instant::now();
    if args.fresh && dir.exists() {
        // Only ever delete what the demo made.
        anyhow::ensure!(
            dir.join(MARKER).exists() || is_empty_dir(&dir),
            "{} is not a demo data dir; refusing to delete it (choose another --data-dir)",
            dir.display()
        );
        std::fs::remove_dir_all(&dir)
            .with_context(|| format!("cannot remove {}", dir.display()))?;
    }
    let marker = if dir.exists() {
        read_marker(&dir)?
    } else {
        None
    };
    match &marker {
        Some(m) if !m.complete => anyhow::bail!(
            "the demo in {} was not completely built (interrupted?); run `panorama demo --fresh`",
            dir.display()
        ),
        None if dir.exists() && !is_empty_dir(&dir) => anyhow::bail!(
            "{} holds data that is not a demo; choose another --data-dir",
            dir.display()
        ),
        _ => {}
    }
    let now = clock.now();
    let mut opts = DemoOptions::new(now);
    opts.backfill_days = args.backfill_days;
    if let Some(m) = &marker {
        opts.seed = m.seed;
        opts.sensors = m.sensors;
        opts.cameras = m.cameras;
    }
    let mut data = panorama_demo::build(&opts).map_err(|e| anyhow::anyhow!("{e}"))?;
    // Mark the dir as the demo's before anything else is written in it.
    let mut building = None;
    let secret = match &marker {
        Some(m) => m.token_secret.clone(),
        None => {
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let m = Marker {
                complete: false,
                token_secret: panorama_api::auth::new_token(""),
                seed: opts.seed,
                sensors: opts.sensors,
                cameras: opts.cameras,
                built_at: now,
            };
            std::fs::write(dir.join(MARKER), toml::to_string(&m)?)?;
            let secret = m.token_secret.clone();
            building = Some(m);
            secret
        }
    };
    for s in &mut data.sources {
        s.token = source_token(&secret, &s.source.id);
    }
    let store: SharedStore = Arc::new(
        panorama_store_sqlite::SqliteStore::open(&dir, cfg.store())
            .await
            .with_context(|| format!("cannot open the demo data dir {}", dir.display()))?,
    );
    if let Some(mut m) = building {
        eprintln!(
            "Building the Binh Duong demo in {} (once; later runs reuse it)…",
            dir.display()
        );
        let progress = |m: &str| eprintln!("  {m}");
        let loaded = panorama_demo::load(&store, &data, &opts, &progress).await?;
        if let Some(ops) = store.clone().as_ops() {
            panorama_rules::demo::install(ops.as_ref(), now).await?;
            eprintln!(
                "  rules and SOP templates for floods, air quality, traffic jams and silent feeds installed"
            );
        }
        m.complete = true;
        std::fs::write(dir.join(MARKER), toml::to_string(&m)?)?;
        eprintln!(
            "  done: {} entities, {} indicator values, {} observations",
            loaded.entities, loaded.indicator_values, loaded.observations
        );
    }
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let simulator = (!args.no_simulator).then(|| {
        let sim = Simulator::new(
            format!("http://{addr}"),
            &data,
            &SimulatorOptions {
                sensors: args.sensors,
                rate_per_sec: args.rate,
            },
        );
        eprintln!(
            "Simulator: {} things report through the ingest API.",
            sim.reporters()
        );
        tokio::spawn(sim.run(clock.clone(), stop_rx))
    });
    println!(
        "Panorama demo is ready in {:.1} s: http://{addr}/",
        started.elapsed().as_secs_f64()
    );
    let is_officer = |u: &&panorama_demo::DemoUser| u.user.role == panorama_core::Role::Officer;
    for u in data.users.iter().filter(|u| !is_officer(u)) {
        println!(
            "  login {:<16} password {:<20} ({})",
            u.user.username,
            u.password,
            u.user.role.as_str()
        );
    }
    let officers: Vec<_> = data.users.iter().filter(is_officer).collect();
    if let Some(first) = officers.first() {
        println!(
            "  and {} agency officers: login officer.<agency> (e.g. {}), password {}",
            officers.len(),
            first.user.username,
            first.password
        );
    }
    println!("{}", panorama_demo::SUCCESSION_NOTE);
    let result = panorama_api::serve_with_rules(
        listener,
        store.clone(),
        clock,
        cfg.api(),
        cfg.ingest(),
        cfg.rules.clone(),
        crate::shutdown_signal(),
    )
    .await;
    let _ = stop_tx.send(true);
    if let Some(s) = simulator
        && let Ok(stats) = s.await
    {
        tracing::info!(?stats, "simulator stopped");
    }
    store.close().await?;
    result.context("the HTTP server failed")
}
