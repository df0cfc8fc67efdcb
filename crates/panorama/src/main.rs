//! `panorama`: the Intelligent Operations Center server and its admin verbs.
//! This binary only wires the crates together.

mod config;
mod demo;
mod import;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use config::Config;
use panorama_api::provision::{self, NewSource, NewUser};
use panorama_core::{Clock, Role, SourceKind, SystemClock};
use panorama_store::SharedStore;
use panorama_store_sqlite::SqliteStore;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

/// Panorama — the open Intelligent Operations Center (Trung tâm giám sát, điều hành thông minh).
///
/// Configuration is read from defaults, then panorama.toml (or --config),
/// then PANORAMA_* environment variables (PANORAMA_DATA_DIR, PANORAMA_LISTEN,
/// PANORAMA_API__MAX_ITEMS…), then flags.
#[derive(Debug, Parser)]
#[command(name = "panorama", version, about, long_about)]
struct Cli {
    /// Configuration file (TOML); default ./panorama.toml when present.
    #[arg(long, global = true, env = "PANORAMA_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    verb: Verb,
}

/// Where the data lives and where to listen.
#[derive(Debug, Args, Clone, Default)]
struct ServeArgs {
    /// Data directory (one per server; created if missing).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Address to listen on, e.g. 127.0.0.1:8080 or 0.0.0.0:8080.
    #[arg(long)]
    listen: Option<SocketAddr>,
}

/// A data directory for the admin verbs.
#[derive(Debug, Args, Clone, Default)]
struct DirArgs {
    /// Data directory (the server using it must be stopped).
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Verb {
    /// Serve the IOC: the REST API, live stream and metrics over one data dir.
    Serve(ServeArgs),
    /// Run the demo IOC of Binh Duong province: builds the demo data dir once
    /// (reused later), serves it, and simulates live feeds through the ingest API.
    Demo {
        #[command(flatten)]
        serve: ServeArgs,
        /// Delete the demo data dir and build it again.
        #[arg(long)]
        fresh: bool,
        /// Number of sensors the simulator drives (default: all).
        #[arg(long)]
        sensors: Option<usize>,
        /// Observations per second the simulator produces (default: each sensor once a minute).
        #[arg(long)]
        rate: Option<f64>,
        /// Serve the demo data without the simulator.
        #[arg(long)]
        no_simulator: bool,
        /// Days of one-minute history to build (1–7) for a new demo.
        #[arg(long, default_value_t = 7, value_parser = clap::value_parser!(u32).range(1..=7))]
        backfill_days: u32,
    },
    /// Manage data sources (feeds) and their write tokens.
    #[command(subcommand)]
    Source(SourceVerb),
    /// Manage local users of the console.
    #[command(subcommand)]
    User(UserVerb),
    /// Import an agency file (CSV or XLSX) of indicator values or entities.
    /// Every row is checked first; nothing is written unless the file is
    /// valid (or --accept-valid). While a server runs, POST the file to
    /// /api/v1/imports instead.
    Import {
        #[command(flatten)]
        args: import::ImportArgs,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// Check a data dir: open it (migrating if needed) and print its health.
    Check(DirArgs),
    /// Print the effective configuration (defaults, file, environment, flags) as TOML.
    Config(ServeArgs),
}

#[derive(Debug, Subcommand)]
enum SourceVerb {
    /// Register a source and print its bearer token (shown only once).
    Add {
        /// Stable id, e.g. aq-network.
        #[arg(long)]
        id: String,
        /// Display name.
        #[arg(long)]
        name: String,
        /// How it delivers: http_push, mqtt, ngsi_ld, poll, file.
        #[arg(long, default_value = "http_push", value_parser = parse_kind)]
        kind: SourceKind,
        /// Owning agency code.
        #[arg(long)]
        owner_agency: Option<String>,
        /// Domain it mainly feeds.
        #[arg(long)]
        domain: Option<String>,
        /// Freshness contract: it must deliver at least every N seconds.
        #[arg(long, default_value_t = 300)]
        expected_interval_secs: u64,
        /// How Panorama connects to it, as JSON; required for mqtt, e.g.
        /// '{"host": "127.0.0.1", "topics": [{"filter": "bd/aq/#", "qos": 1}]}'.
        #[arg(long, value_parser = parse_json)]
        connector: Option<serde_json::Value>,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// List sources with their freshness.
    List(DirArgs),
}

#[derive(Debug, Subcommand)]
enum UserVerb {
    /// Create a local user. The password comes from PANORAMA_PASSWORD or the first line of standard input.
    Add {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Name shown in the console.
        #[arg(long)]
        display_name: Option<String>,
        /// admin, leader, operator, officer or viewer.
        #[arg(long, default_value = "viewer", value_parser = parse_role)]
        role: Role,
        /// Agency code.
        #[arg(long)]
        agency: Option<String>,
        #[command(flatten)]
        dir: DirArgs,
    },
    /// List users.
    List(DirArgs),
}

fn parse_kind(s: &str) -> Result<SourceKind, String> {
    SourceKind::parse(s).ok_or_else(|| "must be http_push, mqtt, ngsi_ld, poll or file".into())
}

fn parse_json(s: &str) -> Result<serde_json::Value, String> {
    serde_json::from_str(s).map_err(|e| format!("is not JSON: {e}"))
}

fn parse_role(s: &str) -> Result<Role, String> {
    Role::parse(s).ok_or_else(|| "must be admin, leader, operator, officer or viewer".into())
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn init_logs(cfg: &Config) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(&cfg.log));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn open(cfg: &Config) -> anyhow::Result<SharedStore> {
    let store = SqliteStore::open(&cfg.data_dir, cfg.store())
        .await
        .with_context(|| format!("cannot open the data dir {}", cfg.data_dir.display()))?;
    Ok(Arc::new(store))
}

fn with_serve_args(mut cfg: Config, a: &ServeArgs) -> Config {
    if let Some(d) = &a.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    cfg
}

fn with_dir(mut cfg: Config, dir: &DirArgs) -> Config {
    if let Some(d) = &dir.data_dir {
        cfg.data_dir = d.clone();
    }
    cfg
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let cfg = Config::load(cli.config.as_deref())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    match cli.verb {
        Verb::Serve(a) => {
            let cfg = with_serve_args(cfg, &a);
            init_logs(&cfg);
            serve(&cfg, clock).await
        }
        Verb::Source(SourceVerb::Add {
            id,
            name,
            kind,
            owner_agency,
            domain,
            expected_interval_secs,
            connector,
            dir,
        }) => {
            let cfg = with_dir(cfg, &dir);
            let store = open(&cfg).await?;
            let new = NewSource {
                id,
                name,
                kind: Some(kind),
                owner_agency,
                domain,
                expected_interval_secs: Some(expected_interval_secs),
                connector,
            };
            let result = provision::create_source(store.as_ref(), new, clock.now()).await;
            store.close().await?;
            let (source, token) = result.map_err(|e| anyhow::anyhow!("{}", problem_text(&e)))?;
            eprintln!(
                "Source '{}' registered. Its write token (shown only now):",
                source.id
            );
            println!("{token}");
            Ok(())
        }
        Verb::Source(SourceVerb::List(dir)) => {
            let cfg = with_dir(cfg, &dir);
            let store = open(&cfg).await?;
            let now = clock.now();
            for s in store.sources().await? {
                let f = s.freshness(now);
                println!(
                    "{}\t{}\t{}\taccepted={}\trejected={}\t{}",
                    s.id,
                    s.kind.as_str(),
                    s.name,
                    s.accepted,
                    s.rejected,
                    if f.late { "LATE" } else { "fresh" }
                );
            }
            store.close().await?;
            Ok(())
        }
        Verb::User(UserVerb::Add {
            username,
            display_name,
            role,
            agency,
            dir,
        }) => {
            let cfg = with_dir(cfg, &dir);
            let password = read_password()?;
            let store = open(&cfg).await?;
            let new = NewUser {
                username,
                display_name,
                role: Some(role),
                agency,
                password,
            };
            let result = provision::create_user(store.as_ref(), new, clock.now()).await;
            store.close().await?;
            let user = result.map_err(|e| anyhow::anyhow!("{}", problem_text(&e)))?;
            println!("User '{}' ({}) created.", user.username, user.role.as_str());
            Ok(())
        }
        Verb::User(UserVerb::List(dir)) => {
            let cfg = with_dir(cfg, &dir);
            let store = open(&cfg).await?;
            for u in store.users().await? {
                println!("{}\t{}\t{}", u.username, u.role.as_str(), u.display_name);
            }
            store.close().await?;
            Ok(())
        }
        Verb::Import { args, dir } => {
            let cfg = with_dir(cfg, &dir);
            let store = open(&cfg).await?;
            let result = import::run(store.clone(), clock, &args).await;
            store.close().await?;
            result
        }
        Verb::Check(dir) => {
            let cfg = with_dir(cfg, &dir);
            let store = open(&cfg).await?;
            let h = store.health().await;
            store.close().await?;
            println!("{}", serde_json::to_string_pretty(&h)?);
            anyhow::ensure!(h.problems.is_empty(), "the data dir has problems");
            Ok(())
        }
        Verb::Demo {
            serve,
            fresh,
            sensors,
            rate,
            no_simulator,
            backfill_days,
        } => {
            let mut cfg = cfg;
            if serve.data_dir.is_none() && std::env::var_os("PANORAMA_DATA_DIR").is_none() {
                cfg.data_dir = PathBuf::from("panorama-demo");
            }
            let cfg = with_serve_args(cfg, &serve);
            init_logs(&cfg);
            demo::run(
                &cfg,
                demo::DemoArgs {
                    fresh,
                    sensors,
                    rate,
                    no_simulator,
                    backfill_days,
                },
                clock,
            )
            .await
        }
        Verb::Config(a) => {
            print!("{}", toml::to_string_pretty(&with_serve_args(cfg, &a))?);
            Ok(())
        }
    }
}

fn problem_text(e: &panorama_api::ApiError) -> String {
    let p = e.problem();
    if p.errors.is_empty() {
        p.detail
    } else {
        p.errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.reason))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

fn read_password() -> anyhow::Result<String> {
    if let Ok(p) = std::env::var("PANORAMA_PASSWORD") {
        return Ok(p);
    }
    eprintln!("Password (then Enter):");
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .context("cannot read the password from standard input")?;
    Ok(line.trim_end_matches(['\r', '\n']).to_string())
}

async fn serve(cfg: &Config, clock: Arc<dyn Clock>) -> anyhow::Result<()> {
    let store = open(cfg).await?;
    let listener = tokio::net::TcpListener::bind(cfg.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cfg.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, data_dir = %cfg.data_dir.display(), "Panorama is serving");
    eprintln!(
        "Panorama is serving on http://{addr} (data dir {})",
        cfg.data_dir.display()
    );
    let result = panorama_api::serve_with_rules(
        listener,
        store.clone(),
        clock,
        cfg.api(),
        cfg.ingest(),
        cfg.rules.clone(),
        shutdown_signal(),
    )
    .await;
    store.close().await?;
    result.context("the HTTP server failed")
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}
