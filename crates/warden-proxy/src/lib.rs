//! `warden proxy`: Warden in front of an unmodified gRPC upstream — Temporal's frontend above
//! all, including a hosted Temporal where no server-side authorizer can be plugged in.
//!
//! Each call is classified with the Temporal preset (every WorkflowService and
//! OperatorService method, with namespace, workflow id, names and `json/plain` arguments),
//! authenticated by the configured mappers, authorized by the policies configured for its
//! operation kind, and only then forwarded over HTTP/2 — streaming both ways, metadata passed
//! through, the upstream's responses and trailers returned untouched. Denials are answered
//! the way Temporal answers them (`PERMISSION_DENIED`, `Request unauthorized.` and a
//! `PermissionDeniedFailure` detail), so SDKs and the CLI report a permission error.
//!
//! ```toml
//! [listen]
//! address = "127.0.0.1:7233"
//!
//! [upstream]
//! address = "http://127.0.0.1:7234"          # or https://…, with ca_file / client_cert
//!
//! [[identity.mappers]]
//! type = "jwt"
//! issuers = ["https://id.example.com/"]
//! keys = [{ type = "jwks", url = "https://id.example.com/.well-known/jwks.json" }]
//!
//! [instances]
//! type = "memory"                           # or "redis", shared by replicas
//!
//! [policies.roles]
//! type = "roles"                            # Temporal's default authorizer
//!
//! [policies.owner]
//! type = "initiator"
//!
//! [authorize]
//! default = ["roles"]
//! signal = ["roles", "owner"]
//! terminate = ["roles", "owner"]
//!
//! [metrics]
//! address = "127.0.0.1:9090"                # GET /metrics, Prometheus text format
//!
//! [log]
//! format = "json"
//! ```
//!
//! Any other gRPC service can be guarded as well. `[service]` takes a descriptor set and
//! `[[service.method]]` entries that give each method's kind and the field paths of its
//! targets (see [`config::ServiceConfig`]); `preset = "none"` drops the Temporal preset.
//!
//! The proxy answers the standard gRPC health service (`grpc.health.v1.Health`) itself,
//! without authentication: `SERVING` while it runs, `NOT_SERVING` once shutdown begins. On
//! shutdown it stops accepting, lets calls in flight finish for `listen.drain_seconds`, then
//! closes. Paths in the file are relative to the file.
//!
//! `[listen]` also bounds what callers can hold: `max_connections` (10,000; more wait to be
//! accepted), `max_concurrent_streams` per connection (256), `max_header_list_bytes` (16 KiB)
//! and `max_pending_reset_streams` (20, against HTTP/2 rapid reset); `[limits]` bounds message
//! size, the first message's arrival and policy time. See `SECURITY.md`.

pub mod config;
mod limits;
mod passport;
pub mod pdp;
mod telemetry;
mod upstream;

use std::{
    convert::Infallible,
    net::SocketAddr,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use http::Request;
use tokio::{sync::watch, task::JoinHandle};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig, server::TcpIncoming};
use tower_layer::Layer;
use tower_service::Service;
use warden_core::{
    KindSet,
    instances::{MemoryInstanceStore, SharedInstanceStore},
};
use warden_policy::config::BuiltPolicies;
use warden_tower::{
    AuthenticateLayer, WardenLayer,
    classify::PeerFn,
    map::{OperationMap, ReflectConfig},
    record::RecordInitiatorLayer,
};

pub use config::ProxyConfig;
pub use telemetry::init_logging;
pub use upstream::ForwardBody;

use crate::config::{InstancesConfig, ListenTlsConfig, Preset, ServiceConfig};

/// Why the proxy could not start or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyError {
    /// The config is wrong; the error says where.
    #[error("config: {0}")]
    Config(#[from] ProxyConfigError),
    /// Something the config names could not be had (a port, a store).
    #[error("start: {0}")]
    Start(String),
    /// The server failed while running.
    #[error("serve: {0}")]
    Serve(String),
}

/// What is wrong with a proxy config, by the section at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProxyConfigError {
    /// The file is not a proxy config: TOML syntax, an unknown key, a wrong type.
    #[error(transparent)]
    File(#[from] config::ConfigError),
    /// `[identity]`: a mapper cannot be built.
    #[error(transparent)]
    Identity(#[from] warden_identity::IdentityConfigError),
    /// `[policies]` or `[authorize]`.
    #[error(transparent)]
    Policies(#[from] warden_policy::config::PoliciesError),
    /// `[service]`: the operation map cannot be built.
    #[error("service: {0}")]
    Service(#[from] warden_tower::map::MapError),
    /// The Warden stack refuses the combination of settings.
    #[error("{0}")]
    Stack(#[from] warden_tower::BuildError),
    /// `[instances]`: the store's URL.
    #[error(transparent)]
    Instances(#[from] warden_redis::ConnectError),
    /// A file the config names cannot be read.
    #[error("{key}: {}: {source}", path.display())]
    Read {
        /// The setting that names it (`upstream.ca_file`).
        key: String,
        /// The file, as resolved.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A setting that cannot work.
    #[error("{key}: {reason}")]
    Invalid {
        /// The setting (`upstream.address`, `log.level`).
        key: String,
        /// What is wrong, with the offending value.
        reason: String,
    },
}

/// The refusal of the setting `key`.
pub(crate) fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ProxyError {
    ProxyError::Config(ProxyConfigError::Invalid {
        key: key.into(),
        reason: reason.into(),
    })
}

/// A running proxy; see the [crate docs](crate).
#[derive(Debug)]
pub struct Proxy {
    listening: Listening,
}

/// A listener serving routes until shut down: a started [`Proxy`] (by [`From`]) or decision
/// point ([`pdp::start`]), for code that runs either (`warden proxy`, `warden pdp`).
#[derive(Debug)]
pub struct Listening {
    address: SocketAddr,
    metrics_address: Option<SocketAddr>,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<Result<(), ProxyError>>,
}

impl Proxy {
    /// Builds everything `config` names (relative paths from `base`), binds the listeners and
    /// starts serving. Every config and start-up error surfaces here, before any call is
    /// accepted.
    pub async fn start(config: ProxyConfig, base: &Path) -> Result<Self, ProxyError> {
        let store = instance_store(config.instances.as_ref()).await?;
        let warden = Stack::build(&config, base, store.as_ref(), warden_identity::tonic::peer)
            .await?
            .layer;

        let passports = config
            .passport
            .as_ref()
            .map(|passport| {
                passport::Passports::build(passport, base, config.limits.max_message_bytes)
            })
            .transpose()?
            .map(Arc::new);
        let forwarder =
            upstream::Forwarder::new(&config.upstream, base)?.with_passports(passports.clone());
        let record = match (&store, &config.instances) {
            (Some(store), Some(instances)) if instances.record_initiator() => {
                Some(RecordInitiatorLayer::new(Arc::clone(store)))
            }
            _ => None,
        };
        let proxied = warden.layer(Recording::new(record, forwarder));

        let (reporter, health) = tonic_health::server::health_reporter();
        reporter
            .set_service_status("", tonic_health::ServingStatus::Serving)
            .await;
        let mut routes = tonic::service::Routes::new(health).into_axum_router();
        if let (Some(passports), Some(path)) = (
            &passports,
            config
                .passport
                .as_ref()
                .and_then(|p| p.jwks_path.as_deref()),
        ) {
            // Workers fetch the public key here; it is public, so no credential is asked.
            let json = passports.jwks_json();
            routes = routes.route(
                path,
                axum::routing::get(move || {
                    let json = json.clone();
                    async move { passport::jwks_response(&json) }
                }),
            );
        }
        let routes = routes.fallback_service(proxied);

        let listening = listen(
            routes,
            &config.listen,
            config.metrics.as_ref(),
            base,
            reporter,
        )
        .await?;
        tracing::info!(address = %listening.address, upstream = %config.upstream.address, metrics = ?listening.metrics_address, "warden proxy listening");
        Ok(Self { listening })
    }

    /// The address the proxy listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.listening.local_addr()
    }

    /// The address of the Prometheus endpoint, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.listening.metrics_addr()
    }

    /// Begins a graceful shutdown (see [`Proxy::wait`]).
    pub fn shutdown(&self) {
        self.listening.shutdown();
    }

    /// Waits until the proxy stops: after [`Proxy::shutdown`] and the drain, or on a server
    /// error.
    pub async fn wait(self) -> Result<(), ProxyError> {
        self.listening.wait().await
    }
}

impl From<Proxy> for Listening {
    fn from(proxy: Proxy) -> Self {
        proxy.listening
    }
}

impl Listening {
    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The address of the Prometheus endpoint, when configured.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_address
    }

    /// Begins a graceful shutdown: stop accepting, drain, then stop.
    pub fn shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    /// Waits until it stops: after [`Listening::shutdown`] and the drain, or on a server
    /// error.
    pub async fn wait(self) -> Result<(), ProxyError> {
        match self.task.await {
            Ok(result) => result,
            Err(e) => Err(ProxyError::Serve(e.to_string())),
        }
    }
}

/// Binds `listen` (and the metrics endpoint) and serves `routes` until shut down: TLS when
/// configured, HTTP/1.1 accepted beside HTTP/2, the health status set to not serving when the
/// drain begins, and the connections left after the drain time cut.
pub(crate) async fn listen(
    routes: axum::Router,
    listen: &config::ListenConfig,
    metrics: Option<&config::MetricsConfig>,
    base: &Path,
    reporter: tonic_health::server::HealthReporter,
) -> Result<Listening, ProxyError> {
    let mut server = Server::builder()
        // HTTP/1.1 callers get Warden's clear refusal instead of a dropped connection.
        .accept_http1(true)
        .tcp_nodelay(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .max_concurrent_streams(listen.max_concurrent_streams)
        .http2_max_header_list_size(listen.max_header_list_bytes)
        .http2_max_pending_accept_reset_streams(Some(listen.max_pending_reset_streams));
    if let Some(tls) = &listen.tls {
        server = server
            .tls_config(server_tls(tls, base)?)
            .map_err(|e| invalid("listen.tls", format!("{e}")))?;
    }
    let listener = tokio::net::TcpListener::bind(listen.address)
        .await
        .map_err(|e| ProxyError::Start(format!("listen.address {}: {e}", listen.address)))?;
    let address = listener
        .local_addr()
        .map_err(|e| ProxyError::Start(format!("listen.address: {e}")))?;

    let (shutdown, signal) = watch::channel(false);
    let metrics_address = match metrics {
        Some(metrics) => {
            let handle = telemetry::install_recorder()?;
            let listener = telemetry::bind(metrics.address).await?;
            let bound = listener
                .local_addr()
                .map_err(|e| ProxyError::Start(format!("metrics.address: {e}")))?;
            tokio::spawn(telemetry::serve_metrics(
                listener,
                handle,
                stopped(signal.clone()),
            ));
            Some(bound)
        }
        None => None,
    };

    let drain = Duration::from_secs(listen.drain_seconds);
    let incoming = limits::limit_connections(
        TcpIncoming::from(listener).with_nodelay(Some(true)),
        listen.max_connections,
    );
    let task = tokio::spawn(async move {
        let mut signal = signal;
        let begin_shutdown = {
            let signal = signal.clone();
            let reporter = reporter.clone();
            async move {
                stopped(signal).await;
                reporter
                    .set_service_status("", tonic_health::ServingStatus::NotServing)
                    .await;
                tracing::info!("shutting down: no new connections; draining calls in flight");
            }
        };
        let serve = server
            .add_routes(routes.into())
            .serve_with_incoming_shutdown(incoming, begin_shutdown);
        tokio::pin!(serve);
        // Graceful shutdown waits for every connection; a long poll may hold one for a
        // minute, so after `drain` the rest are cut.
        let served = tokio::select! {
            served = &mut serve => served,
            () = async {
                stopped_ref(&mut signal).await;
                tokio::time::sleep(drain).await;
            } => {
                tracing::warn!(?drain, "drain time over; closing the remaining connections");
                Ok(())
            }
        };
        served.map_err(|e| ProxyError::Serve(e.to_string()))
    });
    Ok(Listening {
        address,
        metrics_address,
        shutdown,
        task,
    })
}

async fn stopped(mut signal: watch::Receiver<bool>) {
    stopped_ref(&mut signal).await;
}

async fn stopped_ref(signal: &mut watch::Receiver<bool>) {
    // A dropped sender (the `Proxy` handle gone) also stops the proxy.
    let _ = signal.wait_for(|stop| *stop).await;
}

/// The Warden stack a proxy config describes — its operation map, identity mappers, limits
/// and the policies per operation kind — without the listener and the upstream. `warden
/// check` runs a call through it to explain exactly what the proxy would decide.
#[derive(Debug)]
#[non_exhaustive]
pub struct Stack {
    /// The layer the proxy puts in front of the upstream.
    pub layer: WardenLayer,
    /// How calls are classified.
    pub map: OperationMap,
    /// The policies, by name and by kind.
    pub policies: BuiltPolicies,
}

impl Stack {
    /// Builds the stack `config` describes (relative paths from `base`), with `store` as the
    /// instance store and `peer` telling where the transport keeps the peer's details.
    pub async fn build(
        config: &ProxyConfig,
        base: &Path,
        store: Option<&SharedInstanceStore>,
        peer: PeerFn,
    ) -> Result<Self, ProxyError> {
        let policies = config
            .policies_config()
            .build(base, store)
            .map_err(|e| ProxyError::Config(e.into()))?;
        let authenticate = authenticate(&config.identity, base).await?;

        let limits = &config.limits;
        let map = operation_map(&config.service, base)?;
        let mut builder = WardenLayer::builder(map.clone());
        if config.service.preset == Preset::Temporal {
            builder = builder.responder(warden_temporal::TemporalResponder);
        }
        let mut builder = builder
            .peer_from(peer)
            .authenticate_with(authenticate)
            .max_message_size(limits.max_message_bytes)
            .first_message_timeout(Duration::from_secs(limits.first_message_seconds))
            .policy_timeout(Duration::from_millis(limits.policy_timeout_ms));
        for (kind, policy) in policies.kinds() {
            builder = builder.kinds(KindSet::one(kind), Arc::clone(policy));
        }
        if config.shadow {
            builder = builder.shadow();
        }
        let layer = builder.build().map_err(|e| ProxyError::Config(e.into()))?;
        Ok(Self {
            layer,
            map,
            policies,
        })
    }
}

/// The authentication layer `identity` describes (relative paths from `base`).
pub(crate) async fn authenticate(
    identity: &warden_identity::IdentityConfig,
    base: &Path,
) -> Result<AuthenticateLayer, ProxyError> {
    let mut authenticate = AuthenticateLayer::new(
        identity
            .clone()
            .rebased(base)
            .build()
            .await
            .map_err(|e| ProxyError::Config(e.into()))?,
    )
    .anonymous(identity.anonymous);
    if let Some(header) = &identity.api_key_header {
        let header = http::HeaderName::try_from(header.as_str())
            .map_err(|e| invalid("identity.api_key_header", format!("`{header}`: {e}")))?;
        authenticate = authenticate.api_key_header_name(header);
    }
    Ok(authenticate)
}

/// The operation map `service` describes.
fn operation_map(service: &ServiceConfig, base: &Path) -> Result<OperationMap, ProxyError> {
    let builder = match service.preset {
        Preset::Temporal => warden_temporal::builder(),
        Preset::None => OperationMap::builder(),
    };
    let builder = match (&service.descriptor_set, service.methods.is_empty()) {
        (Some(path), _) => {
            let path = base.join(path);
            let bytes = std::fs::read(&path).map_err(|source| {
                ProxyError::Config(ProxyConfigError::Read {
                    key: "service.descriptor_set".to_owned(),
                    path: path.clone(),
                    source,
                })
            })?;
            let methods = ReflectConfig {
                methods: service.methods.clone(),
            };
            methods
                .add_to(builder, &bytes)
                .map_err(|e| ProxyError::Config(e.into()))?
        }
        (None, true) => builder,
        (None, false) => {
            return Err(invalid(
                "service.method",
                "needs service.descriptor_set, the descriptors of its services",
            ));
        }
    };
    builder.build().map_err(|e| ProxyError::Config(e.into()))
}

async fn instance_store(
    config: Option<&InstancesConfig>,
) -> Result<Option<SharedInstanceStore>, ProxyError> {
    Ok(match config {
        None => None,
        Some(InstancesConfig::Memory { .. }) => Some(Arc::new(MemoryInstanceStore::new())),
        Some(InstancesConfig::Redis {
            url,
            prefix,
            timeout_ms,
            ..
        }) => {
            // Started even while Redis is down, so a restart of Redis never keeps the proxy
            // from coming up: calls that need the store are refused `UNAVAILABLE` until it
            // answers, and calls that do not are served meanwhile.
            let store = warden_redis::RedisInstanceStore::lazy(
                url,
                prefix,
                Duration::from_millis(*timeout_ms),
            )
            .map_err(|error| ProxyError::Config(error.into()))?;
            if let Err(error) = store.ping().await {
                tracing::warn!(
                    %error,
                    "the instance store does not answer yet; calls that need it are refused \
                     UNAVAILABLE until it does"
                );
            }
            Some(Arc::new(store))
        }
    })
}

fn read_pem(base: &Path, path: &PathBuf, what: &str) -> Result<Vec<u8>, ProxyError> {
    let path = base.join(path);
    std::fs::read(&path).map_err(|source| {
        ProxyError::Config(ProxyConfigError::Read {
            key: format!("listen.tls.{what}"),
            path: path.clone(),
            source,
        })
    })
}

fn server_tls(tls: &ListenTlsConfig, base: &Path) -> Result<ServerTlsConfig, ProxyError> {
    let identity = Identity::from_pem(
        read_pem(base, &tls.cert, "cert")?,
        read_pem(base, &tls.key, "key")?,
    );
    let mut config = ServerTlsConfig::new().identity(identity);
    if let Some(ca) = &tls.client_ca {
        config = config
            .client_ca_root(Certificate::from_pem(read_pem(base, ca, "client_ca")?))
            .client_auth_optional(tls.client_auth_optional);
    } else if tls.client_auth_optional {
        return Err(invalid(
            "listen.tls.client_auth_optional",
            "needs client_ca",
        ));
    }
    Ok(config)
}

/// The forwarder, behind the initiator recorder when an instance store records starts.
#[derive(Clone, Debug)]
enum Recording<S> {
    Plain(S),
    Recorded(warden_tower::record::RecordInitiator<S>),
}

impl<S: Clone> Recording<S> {
    fn new(layer: Option<RecordInitiatorLayer>, inner: S) -> Self {
        match layer {
            Some(layer) => Self::Recorded(layer.layer(inner)),
            None => Self::Plain(inner),
        }
    }
}

impl<S, B> Service<Request<B>> for Recording<S>
where
    S: Service<Request<B>, Response = http::Response<ForwardBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<
        http_body_util::Either<ForwardBody, warden_tower::record::RecordBody<ForwardBody>>,
    >;
    type Error = Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        match self {
            Self::Plain(inner) => inner.poll_ready(cx),
            Self::Recorded(inner) => inner.poll_ready(cx),
        }
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        use http_body_util::Either;
        match self {
            Self::Plain(inner) => {
                let future = inner.call(request);
                Box::pin(async move { Ok(future.await?.map(Either::Left)) })
            }
            Self::Recorded(inner) => {
                let future = inner.call(request);
                Box::pin(async move { Ok(future.await?.map(Either::Right)) })
            }
        }
    }
}
