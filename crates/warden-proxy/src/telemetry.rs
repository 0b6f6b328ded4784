//! The proxy's own metrics, the Prometheus endpoint, and logging.

use std::{net::SocketAddr, time::Duration};

use metrics::{Key, Level, Metadata};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::{EnvFilter, fmt, prelude::*};

use crate::{
    ProxyError,
    config::{LogConfig, LogFormat},
    invalid,
};

const IN_FLIGHT: &str = "warden_proxy_in_flight";
const UPSTREAM_ERRORS: &str = "warden_proxy_upstream_errors_total";

// Every forwarded call moves the gauge twice: its key is built at compile time, as Warden's
// decision metrics are, so that hashes nothing per call.
static IN_FLIGHT_KEY: Key = Key::from_static_name(IN_FLIGHT);
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

fn in_flight_gauge() -> metrics::Gauge {
    metrics::with_recorder(|recorder| recorder.register_gauge(&IN_FLIGHT_KEY, &METADATA))
}

/// One forwarded call, counted in `warden_proxy_in_flight` until dropped — which also happens
/// when a caller disconnects mid-call, so the gauge shows leaks.
pub(crate) struct InFlight(());

impl InFlight {
    pub(crate) fn start() -> Self {
        in_flight_gauge().increment(1.0);
        Self(())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        in_flight_gauge().decrement(1.0);
    }
}

/// Counts a call the upstream could not take.
pub(crate) fn upstream_error(reason: &'static str) {
    metrics::counter!(UPSTREAM_ERRORS, "reason" => reason).increment(1);
}

/// Installs the process-wide Prometheus recorder. Decision latencies get buckets from 10 µs
/// to 5 s: Warden's decisions take microseconds, remote policies milliseconds.
pub(crate) fn install_recorder() -> Result<PrometheusHandle, ProxyError> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(
            Matcher::Suffix("_seconds".to_owned()),
            &[
                0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005,
                0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
            ],
        )
        .map_err(|e| ProxyError::Start(format!("metrics: {e}")))?
        .install_recorder()
        .map_err(|e| ProxyError::Start(format!("metrics: {e}")))?;
    metrics::describe_counter!(
        "warden_decisions_total",
        "Authorization decisions by operation kind and outcome"
    );
    metrics::describe_histogram!(
        "warden_decision_duration_seconds",
        metrics::Unit::Seconds,
        "Time to authorize a call, by operation kind"
    );
    metrics::describe_counter!(
        "warden_authentication_failures_total",
        "Calls refused because their credentials did not authenticate"
    );
    metrics::describe_gauge!(IN_FLIGHT, "Calls being forwarded to the upstream");
    metrics::describe_counter!(
        "warden_pdp_decisions_total",
        "Decision point verdicts (one per entity and resource), by call and outcome"
    );
    metrics::describe_counter!(
        "warden_pdp_unresolved_entities_total",
        "Entities the decision point could not resolve, whose resources were denied"
    );
    metrics::describe_counter!(
        "warden_pdp_resolver_failures_total",
        "Decision point calls refused because the entity resolver failed"
    );
    metrics::describe_counter!(
        UPSTREAM_ERRORS,
        "Calls the upstream could not take, by reason (connect, request)"
    );
    // Registered up front so the endpoint shows them before the first call.
    in_flight_gauge().set(0.0);
    Ok(handle)
}

/// Serves `GET /metrics` on `listener` until `shutdown` resolves; histograms are compacted
/// every few seconds meanwhile.
pub(crate) async fn serve_metrics(
    listener: tokio::net::TcpListener,
    handle: PrometheusHandle,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let upkeep = handle.clone();
    let upkeep = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(5));
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    let router = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4; charset=utf-8",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    let served = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await;
    upkeep.abort();
    served
}

/// Binds the metrics listener, so a taken port fails at start-up.
pub(crate) async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, ProxyError> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| ProxyError::Start(format!("metrics.address {address}: {e}")))
}

/// Sets up logging as `config` says: text or JSON lines on standard error, filtered by
/// `RUST_LOG` when set, else by `config.level`.
pub fn init_logging(config: &LogConfig) -> Result<(), ProxyError> {
    let filter = match std::env::var("RUST_LOG") {
        Ok(value) if !value.is_empty() => EnvFilter::try_new(&value)
            .map_err(|e| invalid("RUST_LOG", format!("`{value}`: {e}")))?,
        _ => EnvFilter::try_new(&config.level)
            .map_err(|e| invalid("log.level", format!("`{}`: {e}", config.level)))?,
    };
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match config.format {
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Text => registry
            .with(fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    installed.map_err(|e| ProxyError::Start(format!("logging: {e}")))
}
