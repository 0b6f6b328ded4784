//! Tower layers that decide, before any handler runs, whether a gRPC or HTTP call may do what
//! its message asks.
//!
//! A call flows through four steps, each its own layer passing its result on in one request
//! extension, the [`Call`] (read it with [`CallExt`]):
//!
//! 1. [`ClassifyLayer`] — method path and request message → `Arc<Operation>` (which kind,
//!    which namespace, instance, signal/query/update name, which arguments).
//! 2. [`AuthenticateLayer`] — bearer token, API key, peer certificate → `Arc<Claims>`.
//! 3. [`ExecuteLayer`], [`SignalLayer`], [`QueryLayer`], [`UpdateLayer`], [`CancelLayer`],
//!    [`ReadLayer`], [`WorkerLayer`], [`AdminLayer`], [`AuthorizeLayer`] — each asks its own
//!    policy; an allowed call carries the [`Decision`](warden_core::Decision).
//! 4. [`RequireDecisionLayer`] — denies whatever no layer decided.
//!
//! [`WardenLayer::builder`] assembles the usual stack in one layer. Every door — that layer,
//! the separate layers, `warden proxy`, `warden check`, and in-process callers such as a
//! worker's dispatch ([`InProcess`]) — decides through one [`Engine`].
//!
//! Refusals are responses, not errors: trailers-only gRPC statuses (`PERMISSION_DENIED`,
//! `UNAUTHENTICATED`, `INVALID_ARGUMENT`, `RESOURCE_EXHAUSTED`, `UNIMPLEMENTED`,
//! `UNAVAILABLE`) or JSON HTTP errors, changeable with a [`Respond`](rejection::Respond).
//!
//! ```
//! use warden_core::{
//!     AuthzRequest, Claims, Decision, OperationKind, Roles,
//!     identity::StaticTokenMapper, policy::policy_fn,
//! };
//! use warden_tower::{WardenLayer, map::OperationMap};
//!
//! let map = OperationMap::builder()
//!     .method("/shop.Orders/Get", OperationKind::Query)
//!     .build()
//!     .unwrap();
//! // Temporal's meaning: a reader, a writer or an admin of the namespace may query.
//! let readers = policy_fn("readers", |r: &AuthzRequest| {
//!     if r.subject.role_in(r.operation.namespace.as_deref()).at_least(Roles::READER) {
//!         Decision::allow("readers")
//!     } else {
//!         Decision::deny("readers", "readers only")
//!     }
//! });
//! let layer = WardenLayer::builder(map)
//!     .authenticate(StaticTokenMapper::new().with_token("t", Claims::for_subject("ann")))
//!     .query(readers)
//!     .build()
//!     .unwrap();
//! // `tonic::transport::Server::builder().layer(layer)` or `axum::Router::layer(layer)`;
//! // `WardenLayer` shows a call sent through it.
//! # drop(layer);
//! ```

pub mod authenticate;
pub mod authorize;
mod body;
mod builder;
pub mod call;
pub mod classify;
pub mod engine;
pub mod future;
mod grpc;
pub mod map;
pub mod message;
pub mod record;
pub mod rejection;
mod telemetry;

pub use authenticate::AuthenticateLayer;
pub use authorize::{
    AdminLayer, AuthorizeLayer, CancelLayer, ExecuteLayer, QueryLayer, ReadLayer,
    RequireDecisionLayer, SignalLayer, UpdateLayer, WorkerLayer,
};
pub use body::ResponseBody;
pub use builder::{BuildError, Warden, WardenBuilder, WardenLayer};
pub use call::{Call, CallExt, InProcess};
pub use classify::{ClassifiedBody, ClassifyLayer, Peer, PeerAddr, PeerCertificates, Transport};
pub use engine::{Engine, Verdict};
pub use rejection::{Code, Rejection};
