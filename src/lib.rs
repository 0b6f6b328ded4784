//! Warden: authorization for gRPC and HTTP services that business code cannot forget.
//!
//! Tower layers decode what a call asks for — which method, which namespace and workflow
//! instance, which signal, query or update, with which arguments — ask a pluggable policy, and
//! answer denied calls before any handler runs. This crate re-exports the transport-free model
//! ([`core`], from `warden-core`) and the tower layers ([`tower`], from `warden-tower`).
//!
//! ```
//! use warden::core::{identity::StaticTokenMapper, policy::AllowAll};
//! use warden::tower::{WardenLayer, map::OperationMap};
//!
//! let layer = WardenLayer::builder(OperationMap::default())
//!     .authenticate(StaticTokenMapper::new())
//!     .query(AllowAll::new())
//!     .build()
//!     .unwrap();
//! # let _ = layer;
//! ```

pub use warden_core as core;
/// Claim mappers: JWT with JWKS, mTLS peers and API keys.
pub use warden_identity as identity;
/// Built-in policies: Temporal roles, privileges, the rules file.
pub use warden_policy as policy;
/// The Redis instance store.
#[cfg(feature = "redis")]
pub use warden_redis as redis;
/// The Temporal preset: every WorkflowService and OperatorService method classified.
#[cfg(feature = "temporal")]
pub use warden_temporal as temporal;
pub use warden_tower as tower;

/// The README's examples, compiled as doc tests so the README never lies.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
