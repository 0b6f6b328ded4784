//! Warden's transport-free authorization model.
//!
//! Everything here knows nothing of HTTP: an [`Operation`] says what a call does, [`Claims`]
//! say who makes it, a [`Policy`] turns an [`AuthzRequest`] into a [`Decision`], and a
//! [`ClaimMapper`] turns [`AuthInfo`] (a bearer token, an API key, a peer certificate) into
//! `Claims`. The tower layers in `warden-tower` feed these from gRPC and HTTP requests; the same
//! types serve a worker's in-process signal, query or update dispatch.
//!
//! ```
//! use warden_core::{
//!     AuthzRequest, Claims, Decision, Effect, Operation, OperationKind, Policy, Roles,
//!     policy::{AllOf, policy_fn},
//! };
//!
//! // Readers may query; only writers of the namespace may signal.
//! let policy = policy_fn("signals-need-writer", |request: &AuthzRequest| {
//!     let role = request.subject.role_in(request.operation.namespace.as_deref());
//!     match request.operation.kind {
//!         OperationKind::Query if role.at_least(Roles::READER) => Decision::allow("signals-need-writer"),
//!         OperationKind::Signal if role.at_least(Roles::WRITER) => Decision::allow("signals-need-writer"),
//!         _ => Decision::deny("signals-need-writer", "writers only"),
//!     }
//! });
//!
//! let reader = Claims::for_subject("ann").with_namespace_role("orders", Roles::READER);
//! let signal = Operation::new(OperationKind::Signal, "shop.Orders", "Signal").with_namespace("orders");
//! let decision = policy.evaluate(&AuthzRequest::new(reader, signal)).now().unwrap().unwrap();
//! assert_eq!(decision.effect(), Effect::Deny);
//! ```

mod answer;
mod args;
mod claims;
mod decision;
pub mod identity;
pub mod instances;
mod operation;
pub mod policy;
mod request;
#[cfg(feature = "watch")]
pub mod watch;

pub use answer::{Answer, AnswerFuture, BoxFuture};
pub use args::{Args, ArgsDecoder, SharedArgsDecoder};
pub use claims::{Claims, Roles, UnknownRole};
pub use decision::{Decision, Effect, Obligation};
pub use identity::{AuthError, AuthInfo, ClaimMapper, Secret};
pub use operation::{KindSet, Operation, OperationKind, ParseKindError, Text};
pub use policy::{Evaluation, Policy, PolicyError, PolicyErrorKind, SharedPolicy};
pub use request::{AuthzRequest, Metadata, Peer, Protocol, RequestContext, Transport};

/// The boxed error type used where any error may come back, as in tower.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
