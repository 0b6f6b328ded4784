//! `warden pdp`: the decision point as a server — the gRPC `warden.pdp.v1.DecisionService`
//! and the AuthZEN evaluation endpoints on one listener, behind the same Warden stack as
//! every other door: callers authenticate with the identity mappers and the policies decide
//! who may ask (every decision call is a `read`).
//!
//! ```toml
//! [listen]
//! address = "127.0.0.1:8181"                # optional [listen.tls], as for the proxy
//!
//! [[identity.mappers]]                      # who may ask
//! type = "api_key"
//! keys = { "gateway-key-change-me" = { subject = "gateway", privileges = ["pdp.ask"] } }
//!
//! [policies.askers]
//! type = "privileges"
//! requirements = [{ kinds = ["read"], privileges = ["pdp.ask"] }]
//!
//! [authorize]
//! default = ["askers"]
//!
//! [decisions]
//! model = "attributes.toml"                 # definitions and subject mappings
//! reload_seconds = 2                        # hot reload, calls in flight keep their model
//! records = "entities.json"                 # entities by id (optional)
//! # [decisions.tokens]                      # entities by token: identity mappers (optional)
//!
//! [limits]                                  # warden_pdp::Limits; every one optional
//! max_entities = 500
//!
//! [metrics]
//! address = "127.0.0.1:9191"
//! ```

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    time::Duration,
};

use http::Method;
use serde::Deserialize;
use tower_layer::Layer;
use warden_core::{KindSet, OperationKind};
use warden_identity::IdentityConfig;
use warden_pdp::{DecisionPoint, DecisionService, Limits, ModelHandle, StandardResolver};
use warden_policy::config::{PoliciesConfig, PolicySpec};
use warden_tower::{
    WardenLayer,
    map::{HttpOperationMap, HttpRoute, OperationMap},
};

use crate::{
    Listening, ProxyError,
    config::{ConfigError, ListenConfig, LogConfig, MetricsConfig},
    invalid, listen,
};

/// Everything `warden pdp` needs, from one TOML file; see the [module docs](self).
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PdpConfig {
    /// Where callers connect.
    pub listen: ListenConfig,
    /// How callers prove who they are.
    pub identity: IdentityConfig,
    /// Named policies deciding who may ask.
    #[serde(default)]
    pub policies: BTreeMap<String, PolicySpec>,
    /// Operation kind (`read`, or `default`) → the policies that must all allow.
    #[serde(default)]
    pub authorize: BTreeMap<String, Vec<String>>,
    /// The model and the entity resolvers.
    pub decisions: DecisionsConfig,
    /// How much one call may ask.
    #[serde(default)]
    pub limits: Limits,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: Option<MetricsConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
}

/// The attribute model and how entities are resolved.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecisionsConfig {
    /// The model file (TOML, or JSON by its `.json` name), relative to the config file.
    pub model: PathBuf,
    /// Poll the model file every this many seconds and reload it when it changes.
    #[serde(default)]
    pub reload_seconds: Option<u64>,
    /// Entities by id: a JSON object of id → representation.
    #[serde(default)]
    pub records: Option<PathBuf>,
    /// Entities by token: the identity mappers that verify them (as `[identity]`).
    #[serde(default)]
    pub tokens: Option<IdentityConfig>,
}

impl PdpConfig {
    /// Reads and parses `path`; relative paths inside it are relative to its directory.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::new(path, e))?;
        toml::from_str(&text).map_err(|e| ConfigError::new(path, e))
    }
}

/// The decision point's service path prefix.
const SERVICE: &str = "/warden.pdp.v1.DecisionService/";

/// The methods and routes callers may ask, all `read`.
fn maps() -> Result<(OperationMap, HttpOperationMap), ProxyError> {
    let mut grpc = OperationMap::builder();
    for method in [
        "GetDecision",
        "GetDecisionMultiResource",
        "GetDecisionMultiEntity",
        "GetDecisionBulk",
        "GetEntitlements",
    ] {
        grpc = grpc.method(&format!("{SERVICE}{method}"), OperationKind::Read);
    }
    let grpc = grpc.build().map_err(|e| ProxyError::Config(e.into()))?;
    let http = HttpOperationMap::builder()
        .route(
            Method::POST,
            warden_pdp::authzen::EVALUATION_PATH,
            HttpRoute::new(OperationKind::Read),
        )
        .route(
            Method::POST,
            warden_pdp::authzen::EVALUATIONS_PATH,
            HttpRoute::new(OperationKind::Read),
        )
        .build()
        .map_err(|e| ProxyError::Config(e.into()))?;
    Ok((grpc, http))
}

/// The decision point that `config` describes, without a listener: what `warden pdp` serves.
pub async fn decision_point(config: &PdpConfig, base: &Path) -> Result<DecisionPoint, ProxyError> {
    let decisions = &config.decisions;
    let model = ModelHandle::load(base.join(&decisions.model))
        .map_err(|e| invalid("decisions.model", e.to_string()))?;
    if let Some(seconds) = decisions.reload_seconds {
        model.watch(Duration::from_secs(seconds.max(1)));
    }
    let mut resolver = StandardResolver::new();
    if let Some(records) = &decisions.records {
        resolver = resolver
            .records_file(&base.join(records))
            .map_err(|e| invalid("decisions.records", e))?;
    }
    if let Some(tokens) = &decisions.tokens {
        let mapper = tokens
            .clone()
            .rebased(base)
            .build()
            .await
            .map_err(|e| invalid("decisions.tokens", e.to_string()))?;
        resolver = resolver.tokens(mapper);
    }
    Ok(DecisionPoint::new(model, resolver).with_limits(config.limits))
}

/// Builds everything `config` names (relative paths from `base`), binds the listeners and
/// starts serving the decision point. Every config and start-up error surfaces here.
pub async fn start(config: PdpConfig, base: &Path) -> Result<Listening, ProxyError> {
    let point = decision_point(&config, base).await?;
    let policies = PoliciesConfig {
        policies: config.policies.clone(),
        authorize: config.authorize.clone(),
    }
    .build(base, None)
    .map_err(|e| ProxyError::Config(e.into()))?;
    let (grpc, http) = maps()?;
    let mut builder = WardenLayer::builder(grpc)
        .http_routes(http)
        .peer_from(warden_identity::tonic::peer)
        .authenticate_with(crate::authenticate(&config.identity, base).await?);
    for (kind, policy) in policies.kinds() {
        builder = builder.kinds(KindSet::one(kind), std::sync::Arc::clone(policy));
    }
    let warden = builder.build().map_err(|e| ProxyError::Config(e.into()))?;

    let decisions = tonic::service::Routes::new(DecisionService::new(point.clone()).into_server())
        .into_axum_router()
        .merge(warden_pdp::authzen::router(point));
    let (reporter, health) = tonic_health::server::health_reporter();
    for service in ["", "warden.pdp.v1.DecisionService"] {
        reporter
            .set_service_status(service, tonic_health::ServingStatus::Serving)
            .await;
    }
    // Health answers without credentials; every decision call passes the Warden stack.
    let routes = tonic::service::Routes::new(health)
        .into_axum_router()
        .fallback_service(warden.layer(decisions));
    let listening = listen(
        routes,
        &config.listen,
        config.metrics.as_ref(),
        base,
        reporter,
    )
    .await?;
    tracing::info!(address = %listening.address, metrics = ?listening.metrics_address, "warden pdp listening");
    Ok(listening)
}
