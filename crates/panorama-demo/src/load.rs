//! Writing the demo into a store, through the [`Store`] trait only.

use crate::{Backfill, DemoData, DemoOptions};
use argon2::{Argon2, PasswordHasher};
use panorama_store::{SharedStore, SourceActivity, StoreError};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// Entities per upsert.
const ENTITY_CHUNK: usize = 1_000;
/// Indicator values per submission.
const VALUE_CHUNK: usize = 2_000;
/// Batches generated ahead of the store.
const AHEAD: usize = 4;
/// Retries of one batch when the store says it is busy.
const MAX_RETRIES: u32 = 20;

/// The SHA-256 of a bearer token, as the store keeps it.
pub fn token_sha256(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// An argon2id PHC string for a password.
pub(crate) fn hash_password(password: &str) -> Result<String, StoreError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| StoreError::Backend(format!("hashing a demo password failed: {e}")))
}

/// What [`load`] wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Loaded {
    /// Entities created or updated.
    pub entities: usize,
    /// Indicator values submitted.
    pub indicator_values: usize,
    /// Observations appended.
    pub observations: u64,
}

/// Writes the whole demo into `store`: admin units, domains, agencies,
/// indicators and their history, entities, users (argon2 hashes), sources
/// (SHA-256 of their tokens), then the backfill, and finally marks every
/// source as seen at `opts.now`. Meant for an empty data dir. `progress`
/// receives short human-readable steps.
pub async fn load(
    store: &SharedStore,
    data: &DemoData,
    opts: &DemoOptions,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<Loaded, StoreError> {
    let mut loaded = Loaded::default();
    progress(&format!("admin units: {}", data.admin_units.len()));
    store.upsert_admin_units(&data.admin_units).await?;
    progress(&format!(
        "domains: {}, agencies: {}",
        data.domains.len(),
        data.agencies.len()
    ));
    store.upsert_domains(&data.domains).await?;
    store.upsert_agencies(&data.agencies).await?;
    progress(&format!("indicators: {}", data.indicators.len()));
    store.upsert_indicators(&data.indicators).await?;

    let mut by_submitter: BTreeMap<&str, Vec<panorama_core::IndicatorValueInput>> = BTreeMap::new();
    for (who, v) in &data.indicator_values {
        by_submitter
            .entry(who.as_str())
            .or_default()
            .push(v.clone());
    }
    for (who, values) in &by_submitter {
        for chunk in values.chunks(VALUE_CHUNK) {
            store.submit_indicator_values(chunk, who, opts.now).await?;
            loaded.indicator_values += chunk.len();
        }
    }
    progress(&format!("indicator values: {}", loaded.indicator_values));

    for chunk in data.entities.chunks(ENTITY_CHUNK) {
        let n = store.upsert_entities(chunk, opts.now).await?;
        loaded.entities += n.created + n.updated;
    }
    progress(&format!(
        "entities: {} ({} sensors, {} cameras)",
        loaded.entities,
        data.sensor_count(),
        data.camera_count()
    ));

    let passwords: Vec<String> = data.users.iter().map(|u| u.password.clone()).collect();
    let hashes = tokio::task::spawn_blocking(move || {
        passwords
            .iter()
            .map(|p| hash_password(p))
            .collect::<Result<Vec<_>, _>>()
    })
    .await
    .map_err(|e| StoreError::Backend(format!("hashing demo passwords: {e}")))??;
    for (u, hash) in data.users.iter().zip(&hashes) {
        store.create_user(&u.user, hash).await?;
    }
    progress(&format!("users: {}", data.users.len()));

    for s in &data.sources {
        store
            .create_source(&s.source, &token_sha256(&s.token))
            .await?;
    }
    progress(&format!("sources: {}", data.sources.len()));

    let backfill = crate::backfill(data, opts);
    loaded.observations = append_history(store, &backfill, progress).await?;

    let counts = backfill.count_by_source();
    for (s, accepted) in data.sources.iter().zip(counts) {
        let activity = SourceActivity {
            at: Some(opts.now),
            accepted,
            rejected: 0,
            last_error: None,
        };
        store
            .record_source_activity(&s.source.id, &activity)
            .await?;
    }
    progress("demo loaded");
    Ok(loaded)
}

/// Appends the backfill, generating batches on a blocking thread a few
/// ahead of the store, and retrying a batch the store is too busy for.
async fn append_history(
    store: &SharedStore,
    backfill: &Backfill,
    progress: &(dyn Fn(&str) + Send + Sync),
) -> Result<u64, StoreError> {
    let total_batches = backfill.batches();
    let expected = backfill.observation_count();
    progress(&format!(
        "history: {expected} observations in {total_batches} batches"
    ));
    let (tx, mut rx) =
        tokio::sync::mpsc::channel::<(usize, Vec<panorama_core::Observation>)>(AHEAD);
    let producer = backfill.clone();
    let generator = tokio::task::spawn_blocking(move || {
        for (i, batch) in producer.enumerate() {
            if tx.blocking_send((i, batch)).is_err() {
                break;
            }
        }
    });
    let mut appended = 0u64;
    let mut next_report = 0usize;
    while let Some((i, batch)) = rx.recv().await {
        let mut pending = Some(batch);
        let mut tries = 0;
        loop {
            let obs = match pending.take() {
                Some(b) => b,
                None => backfill.batch(i),
            };
            let n = obs.len() as u64;
            match store.append_observations(obs).await {
                Ok(_) => {
                    appended += n;
                    break;
                }
                Err(StoreError::Overloaded { retry_after_secs }) if tries < MAX_RETRIES => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_secs(retry_after_secs.clamp(1, 30))).await;
                }
                Err(e) => {
                    drop(rx);
                    let _ = generator.await;
                    return Err(e);
                }
            }
        }
        if i >= next_report || i + 1 == total_batches {
            let pct = (i + 1) * 100 / total_batches.max(1);
            progress(&format!("history: {pct}% ({appended} observations)"));
            next_report = i + total_batches / 10 + 1;
        }
    }
    let _ = generator.await;
    Ok(appended)
}
