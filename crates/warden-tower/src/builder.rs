//! The usual stack in one line.

use std::{fmt, sync::Arc, time::Duration};

use tower_layer::Layer;
use warden_core::{ClaimMapper, KindSet, OperationKind, Policy, SharedPolicy, policy::DenyAll};

use crate::{
    AuthenticateLayer, ClassifyLayer,
    authorize::Authorizer,
    classify::{Classify, PeerAddrFn},
    guard::Guard,
    map::{HttpOperationMap, OperationMap},
    rejection::Respond,
};

/// Entry point of the one-line builder.
///
/// ```
/// use warden_core::{identity::StaticTokenMapper, policy::AllowAll};
/// use warden_tower::{Warden, map::OperationMap};
///
/// let layer = Warden::builder(OperationMap::default())
///     .authenticate(StaticTokenMapper::new())
///     .query(AllowAll::new())
///     .build()
///     .unwrap();
/// // Use it with `tonic::transport::Server::builder().layer(layer)` or `Router::layer(layer)`.
/// # let _ = layer;
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Warden;

impl Warden {
    /// Starts a stack that classifies gRPC calls with `map`.
    pub fn builder(map: OperationMap) -> WardenBuilder {
        WardenBuilder {
            classify: ClassifyLayer::new(map),
            authenticate: None,
            authorizers: Vec::new(),
            otherwise: None,
            timeout: None,
            shadow: false,
        }
    }
}

/// Why a stack could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// No claim mapper was given.
    #[error(
        "no claim mapper: call `authenticate` with one (StaticTokenMapper allows anonymous callers if asked)"
    )]
    NoClaimMapper,
}

/// Assembles classify → authenticate → authorize (per kind, then `otherwise`, deny by default)
/// → require-decision; see [`WardenLayer`].
#[must_use]
pub struct WardenBuilder {
    classify: ClassifyLayer,
    authenticate: Option<AuthenticateLayer>,
    authorizers: Vec<Authorizer>,
    otherwise: Option<SharedPolicy>,
    timeout: Option<Duration>,
    shadow: bool,
}

impl fmt::Debug for WardenBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WardenBuilder")
            .field("classify", &self.classify)
            .field("authenticate", &self.authenticate)
            .field("authorizers", &self.authorizers)
            .finish_non_exhaustive()
    }
}

impl WardenBuilder {
    /// Also classifies plain HTTP routes.
    pub fn http_routes(mut self, map: HttpOperationMap) -> Self {
        self.classify = self.classify.http_routes(map);
        self
    }

    /// How long a call may take to deliver its first message (default 30 s); see
    /// [`ClassifyLayer::first_message_timeout`].
    pub fn first_message_timeout(mut self, timeout: Option<std::time::Duration>) -> Self {
        self.classify = self.classify.first_message_timeout(timeout);
        self
    }

    /// The largest request message Warden reads (default 4 MiB).
    pub fn max_message_size(mut self, bytes: usize) -> Self {
        self.classify = self.classify.max_message_size(bytes);
        self
    }

    /// How refusals are answered.
    pub fn responder(mut self, responder: impl Respond) -> Self {
        self.classify = self.classify.responder(responder);
        self
    }

    /// Where to find the peer address in request extensions.
    pub fn peer_addr_from(mut self, f: PeerAddrFn) -> Self {
        self.classify = self.classify.peer_addr_from(f);
        self
    }

    /// Authenticates callers with `mapper`.
    pub fn authenticate(self, mapper: impl ClaimMapper) -> Self {
        self.authenticate_with(AuthenticateLayer::new(mapper))
    }

    /// Authenticates callers with a configured layer.
    pub fn authenticate_with(mut self, layer: AuthenticateLayer) -> Self {
        self.authenticate = Some(layer);
        self
    }

    fn guard(mut self, label: &'static str, kinds: KindSet, policy: impl Policy) -> Self {
        self.authorizers
            .push(Authorizer::new(label, kinds, Arc::new(policy)));
        self
    }

    /// Authorizes start/create calls with `policy`.
    pub fn execute(self, policy: impl Policy) -> Self {
        self.guard("execute", KindSet::one(OperationKind::Execute), policy)
    }

    /// Authorizes signals with `policy`.
    pub fn signal(self, policy: impl Policy) -> Self {
        self.guard("signal", KindSet::one(OperationKind::Signal), policy)
    }

    /// Authorizes queries with `policy`.
    pub fn query(self, policy: impl Policy) -> Self {
        self.guard("query", KindSet::one(OperationKind::Query), policy)
    }

    /// Authorizes updates with `policy`.
    pub fn update(self, policy: impl Policy) -> Self {
        self.guard("update", KindSet::one(OperationKind::Update), policy)
    }

    /// Authorizes cancel and terminate calls with `policy`.
    pub fn cancel(self, policy: impl Policy) -> Self {
        let kinds = KindSet::one(OperationKind::Cancel).with(OperationKind::Terminate);
        self.guard("cancel", kinds, policy)
    }

    /// Authorizes reads with `policy`.
    pub fn read(self, policy: impl Policy) -> Self {
        self.guard("read", KindSet::one(OperationKind::Read), policy)
    }

    /// Authorizes worker calls with `policy`.
    pub fn worker(self, policy: impl Policy) -> Self {
        self.guard("worker", KindSet::one(OperationKind::Worker), policy)
    }

    /// Authorizes administration with `policy`.
    pub fn admin(self, policy: impl Policy) -> Self {
        self.guard("admin", KindSet::one(OperationKind::Admin), policy)
    }

    /// Authorizes calls of any kind in `kinds` with `policy` (in addition to the per-kind
    /// policies: every policy that applies must allow).
    pub fn kinds(self, kinds: KindSet, policy: impl Policy) -> Self {
        self.guard("authorize", kinds, policy)
    }

    /// Decides calls no other policy decided (default: deny all).
    pub fn otherwise(mut self, policy: impl Policy) -> Self {
        self.otherwise = Some(Arc::new(policy));
        self
    }

    /// How long any policy may take (default 5 s).
    pub fn policy_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Shadow (dry-run) mode for every policy: decisions are logged, calls go through.
    pub fn shadow(mut self) -> Self {
        self.shadow = true;
        self
    }

    /// Builds the layer.
    pub fn build(self) -> Result<WardenLayer, BuildError> {
        let authenticate = self.authenticate.ok_or(BuildError::NoClaimMapper)?;
        let mut authorizers = self.authorizers;
        let otherwise = self.otherwise.unwrap_or_else(|| {
            Arc::new(DenyAll::with_reason(
                "otherwise",
                "no policy covers this operation",
            ))
        });
        authorizers.push(Authorizer::fallback(otherwise));
        for authorizer in &mut authorizers {
            if let Some(timeout) = self.timeout {
                authorizer.set_timeout(timeout);
            }
            authorizer.set_shadow(self.shadow);
        }
        Ok(WardenLayer {
            classify: self.classify,
            guard: Arc::new(Guard {
                authenticate: authenticate.config(),
                authorizers: authorizers.into(),
            }),
        })
    }
}

/// The assembled stack: [`Classify`] that also authenticates, authorizes per kind and requires
/// a decision — the same as [`ClassifyLayer`], [`AuthenticateLayer`], the authorization layers
/// and [`RequireDecisionLayer`](crate::RequireDecisionLayer) stacked, in one service with one
/// response future and one body wrapper.
#[derive(Clone, Debug)]
#[must_use]
pub struct WardenLayer {
    classify: ClassifyLayer,
    guard: Arc<Guard>,
}

/// The service the assembled stack produces around `S`.
pub type WardenService<S> = Classify<S>;

impl<S> Layer<S> for WardenLayer {
    type Service = WardenService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.classify.layer_guarded(inner, Arc::clone(&self.guard))
    }
}
