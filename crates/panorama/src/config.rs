//! The server's configuration: one typed struct, layered as defaults →
//! `panorama.toml` → `PANORAMA_*` environment variables → command-line flags.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Everything that can be configured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding all of the server's data.
    pub data_dir: PathBuf,
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Log filter, e.g. `info` or `panorama=debug,info`.
    pub log: String,
    /// HTTP limits.
    pub api: ApiSection,
    /// Ingest pipeline limits.
    pub ingest: IngestSection,
    /// Storage engine settings.
    pub store: StoreSection,
    /// Rules, alerts, incidents and notifications.
    pub rules: panorama_rules::RulesConfig,
    /// The NGSI-LD API.
    pub ngsild: panorama_ngsild::NgsiConfig,
}

/// `[api]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiSection {
    /// Largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Most items in one write request.
    pub max_items: usize,
    /// Session lifetime in hours.
    pub session_hours: i64,
    /// Mark cookies Secure (set when served over HTTPS).
    pub secure_cookies: bool,
    /// Live events a client may fall behind before it is told it missed some.
    pub live_buffer: usize,
}

/// `[ingest]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Observations admitted but not yet durable, across all writers; past
    /// it, writers get 503 with Retry-After.
    pub max_in_flight: usize,
    /// Seconds a refused writer is told to wait.
    pub retry_after_secs: u64,
}

/// `[store]`
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSection {
    /// Append requests waiting for the observation log writer.
    pub queue_capacity: usize,
    /// Observations kept in memory before they are written to a compressed part.
    pub memtable_max_points: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("panorama-data"),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            log: "info".into(),
            api: ApiSection::default(),
            ingest: IngestSection::default(),
            store: StoreSection::default(),
            rules: panorama_rules::RulesConfig::default(),
            ngsild: panorama_ngsild::NgsiConfig::default(),
        }
    }
}

impl Default for ApiSection {
    fn default() -> Self {
        let d = panorama_api::ApiConfig::default();
        Self {
            max_body_bytes: d.max_body_bytes,
            max_items: d.max_items,
            session_hours: d.session_hours,
            secure_cookies: d.secure_cookies,
            live_buffer: d.live_buffer,
        }
    }
}

impl Default for IngestSection {
    fn default() -> Self {
        let d = panorama_ingest::IngestOptions::default();
        Self {
            max_in_flight: d.max_in_flight,
            retry_after_secs: d.retry_after_secs,
        }
    }
}

impl Default for StoreSection {
    fn default() -> Self {
        let d = panorama_tsdb_options_default();
        Self {
            queue_capacity: d.0,
            memtable_max_points: d.1,
        }
    }
}

fn panorama_tsdb_options_default() -> (usize, usize) {
    let o = panorama_store_sqlite::SqliteOptions::default().tsdb;
    (o.queue_capacity, o.memtable_max_points)
}

impl Config {
    /// Loads defaults, then `file` (or `./panorama.toml` when it exists),
    /// then `PANORAMA_*` variables (`PANORAMA_API__MAX_ITEMS` for nested keys).
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        use figment::Figment;
        use figment::providers::{Env, Format, Serialized, Toml};
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) => {
                anyhow::ensure!(f.exists(), "config file {} does not exist", f.display());
                fig = fig.merge(Toml::file(f));
            }
            None => fig = fig.merge(Toml::file("panorama.toml")),
        }
        // Only variables naming a configuration key are configuration; others
        // (PANORAMA_PASSWORD for `user add`, tools' own PANORAMA_* variables)
        // are not, and must not make the server refuse to start.
        let env = Env::prefixed("PANORAMA_")
            .filter(|k| {
                let k = k.as_str().to_ascii_lowercase();
                matches!(k.as_str(), "data_dir" | "listen" | "log")
                    || ["api__", "ingest__", "store__", "rules__", "ngsild__"]
                        .iter()
                        .any(|p| k.starts_with(p))
            })
            .split("__");
        fig = fig.merge(env);
        fig.extract()
            .map_err(|e| anyhow::anyhow!("invalid configuration: {e}"))
    }

    /// The API's limits.
    pub fn api(&self) -> panorama_api::ApiConfig {
        panorama_api::ApiConfig {
            max_body_bytes: self.api.max_body_bytes,
            max_items: self.api.max_items,
            session_hours: self.api.session_hours,
            secure_cookies: self.api.secure_cookies,
            live_buffer: self.api.live_buffer,
            ngsild: self.ngsild.clone(),
        }
    }

    /// The store's options.
    pub fn store(&self) -> panorama_store_sqlite::SqliteOptions {
        let mut o = panorama_store_sqlite::SqliteOptions::default();
        o.tsdb.queue_capacity = self.store.queue_capacity;
        o.tsdb.memtable_max_points = self.store.memtable_max_points;
        o
    }

    /// The ingest pipeline's limits.
    pub fn ingest(&self) -> panorama_ingest::IngestOptions {
        panorama_ingest::IngestOptions {
            max_in_flight: self.ingest.max_in_flight,
            retry_after_secs: self.ingest.retry_after_secs,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_example_config_parses_and_matches_the_defaults() {
        let text = include_str!("../../../panorama.example.toml");
        let parsed: Config = toml::from_str(text).expect("example config parses");
        assert_eq!(
            parsed,
            Config::default(),
            "panorama.example.toml documents the defaults"
        );
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<Config>("listne = \"0.0.0.0:1\"").unwrap_err();
        assert!(e.to_string().contains("listne"));
    }
}
