//! Running the API: wiring the pipeline, the bus and the router onto a
//! listener, and the process-wide metrics recorder.

use crate::{ApiConfig, AppState, router};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use panorama_core::Clock;
use panorama_ingest::{EventBus, Ingest, IngestOptions};
use panorama_store::SharedStore;
use std::future::Future;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Installs the Prometheus recorder once per process and returns its handle.
pub fn metrics_handle() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Full("panorama_ingest_batch_seconds".into()),
                    &[
                        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                    ],
                )
                .ok()?;
            let recorder = builder.build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            describe();
            Some(handle)
        })
        .clone()
}

fn describe() {
    metrics::describe_counter!(
        "panorama_observations_ingested_total",
        "Observations made durable"
    );
    metrics::describe_counter!(
        "panorama_ingest_refused_total",
        "Observations refused, by reason"
    );
    metrics::describe_histogram!(
        "panorama_ingest_batch_seconds",
        metrics::Unit::Seconds,
        "Time to make one write request durable"
    );
    metrics::describe_gauge!(
        "panorama_ingest_queue_depth",
        "Observations admitted and not yet durable"
    );
    metrics::describe_gauge!(
        "panorama_live_clients",
        "Connected live (WebSocket) clients"
    );
    metrics::describe_counter!(
        "panorama_live_lagged_total",
        "Times a live client fell behind"
    );
    // Export the series from the start, so dashboards see zeros rather than gaps.
    metrics::counter!("panorama_observations_ingested_total").absolute(0);
    metrics::gauge!("panorama_ingest_queue_depth").set(0.0);
    metrics::gauge!("panorama_live_clients").set(0.0);
}

/// Serves the API on `listener` until `shutdown` completes, then drains
/// in-flight requests and records pending source activity. The rule engine
/// runs with the default [`RulesConfig`](panorama_rules::RulesConfig).
pub async fn serve(
    listener: tokio::net::TcpListener,
    store: SharedStore,
    clock: Arc<dyn Clock>,
    config: ApiConfig,
    ingest: IngestOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let rules = panorama_rules::RulesConfig::default();
    serve_with_rules(listener, store, clock, config, ingest, rules, shutdown).await
}

/// [`serve`] with the rule engine's settings (rules directory, channels,
/// SLA, escalation). A bad rules file or setting stops the server with a
/// message naming it.
pub async fn serve_with_rules(
    listener: tokio::net::TcpListener,
    store: SharedStore,
    clock: Arc<dyn Clock>,
    config: ApiConfig,
    ingest: IngestOptions,
    rules: panorama_rules::RulesConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    crate::ngsild::ensure_anonymous_source(&store, &config.ngsild, clock.as_ref())
        .await
        .map_err(|e| {
            std::io::Error::other(format!("cannot register the anonymous NGSI-LD source: {e}"))
        })?;
    let bus = EventBus::new(config.live_buffer);
    let ingest = Ingest::new(store.clone(), bus.clone(), clock.clone(), ingest);
    let flusher = ingest.spawn_activity_flusher(Duration::from_secs(1));
    let mut state = AppState::new(ingest.clone(), clock.clone(), config, metrics_handle());
    // The engine's tasks stop when `_ops_tasks` is dropped, at the end of serving.
    let mut _ops_tasks = None;
    if store.clone().as_ops().is_some() {
        let (ops, tasks) = panorama_rules::Ops::start(store, bus, clock.clone(), rules)
            .await
            .map_err(|e| std::io::Error::other(format!("cannot start the rule engine: {e}")))?;
        state.ops = Some(ops);
        _ops_tasks = Some(tasks);
    }
    // Connectors (MQTT) write through the same pipeline as the HTTP API.
    let connectors = panorama_connect::Connectors::new(ingest.clone(), clock.clone());
    match connectors.start_all().await {
        Ok(n) if n > 0 => tracing::info!(connectors = n, "connectors started"),
        Ok(_) => {}
        Err(e) => tracing::error!(error = %e, "cannot read sources to start their connectors"),
    }
    state.connectors = Some(connectors.clone());
    let (app, _) = router(state);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(shutdown)
        .await;
    connectors.stop_all();
    flusher.abort();
    if let Err(e) = ingest.flush_activity().await {
        tracing::warn!(error = %e, "could not record source activity at shutdown");
    }
    result
}
