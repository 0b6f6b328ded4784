//! Warden inside a Temporal worker: before a workflow, signal, query, update or activity
//! handler runs, the call's passport is verified and the policies decide.
//!
//! A worker sees only the `identity` string a caller declares. The edge that authenticated
//! the caller — `warden proxy`, or the client guardrail — writes a signed passport
//! ([`warden_passport`]) into the Temporal header of each call it allows.
//! [`WorkerGuard`] gives the Rust SDK (`temporalio-sdk` 1.1) a workflow interceptor and an
//! activity interceptor that check it: the passport must be signed by a trusted key, issued
//! for exactly this call (namespace, workflow id, kind, name) and valid at the workflow's own
//! time; then the policies of the call's kind decide, with the claims the passport carries,
//! through the same engine (`warden_tower::Engine`) every other door uses. Workflow code
//! registers no authorization logic.
//!
//! ```
//! use temporalio_sdk::WorkerOptions;
//! use warden_core::policy::AllowAll;
//! use warden_passport::{SigningKey, TrustedKeys, Verifier};
//! use warden_policy::roles::RolePolicy;
//! use warden_worker::WorkerGuard;
//!
//! # let key = SigningKey::from_secret(&[7; 32], "edge-1").unwrap();
//! let trusted = TrustedKeys::new().with_signing_key(&key).unwrap();
//! let guard = WorkerGuard::builder(Verifier::new(trusted, "warden-proxy"))
//!     .policy_for_all(RolePolicy::temporal())
//!     .activity(AllowAll::new())
//!     .build()
//!     .unwrap();
//! let options = WorkerOptions::new("orders")
//!     .workflow_interceptor(guard.workflow_interceptor())
//!     .activity_inbound_interceptor(guard.activity_interceptor());
//! # let _ = options;
//! ```
//!
//! # What a refusal does
//!
//! | job | refused how | in history |
//! |---|---|---|
//! | workflow start | the run fails at once with a non-retryable `PermissionDenied` application failure; the workflow's `run` never starts (an `#[init]` constructor has already run: the SDK gives its hook no way to fail) | the failure |
//! | signal | dropped before its handler, with an audit event | the signal event, as always (it was there before the worker saw it) |
//! | query | an error to the caller | nothing |
//! | update with a validator | rejected in validation | nothing: a rejected update never enters history |
//! | update without a validator | the SDK runs validators only for updates that declare one, so the check runs in the handler hook: the update is accepted, then completes with a `PermissionDenied` failure; the handler never runs | the acceptance and the failed outcome |
//! | activity | fails with a non-retryable `PermissionDenied` application failure; the activity function never runs | the failure |
//!
//! Declare a validator on every update (one that accepts everything will do) to keep refused
//! updates out of history.
//!
//! Only calls an edge vouched for carry a passport. A workflow started by a schedule, by a
//! parent as its child, by continue-as-new or by a batch signal has none, and is refused as
//! above: run such workflows on a task queue whose worker does not register this guard, or
//! let the parent's passport travel (as activities' do) in a later version.
//!
//! # Deterministic on replay
//!
//! Workflow-side checks are pure functions of the history: no I/O, no blocking, no wall
//! clock. Keys and policies are loaded before the worker starts; policies must be
//! [deterministic](warden_core::Policy::deterministic) (a policy that waits on I/O, reads a
//! store or a clock, is refused by [`WorkerGuardBuilder::build`]); *now* is the workflow's own
//! time, which replays with the history. Two things change over a worker's life, and both
//! are chosen by the event's time, so a replay decides with what was in force when the event
//! first ran:
//!
//! - **keys**: a rotated-out key is retired ([`TrustedKeys::retire`](warden_passport::TrustedKeys::retire)), never removed; it still verifies what it
//!   signed before its retirement. Removing a key refuses, on replay too, every history event
//!   it signed: do so only for a key that was compromised;
//! - **policies**: a new policy version is added with the time it takes effect
//!   ([`WorkerGuardBuilder::version_since`]); each event is decided by the version in force at
//!   its time, and earlier versions stay. Editing a version in place changes how old histories
//!   replay.
//!
//! Trusting only the recorded passport on replay would not do: a signal first dropped by the
//! policy must be dropped again, and nothing in history records that it was.
//!
//! # Which time
//!
//! A signal or update is checked at the time of the workflow task that delivers it, which is
//! later than when the proxy issued its passport by the queueing and the worker's backlog.
//! The verifier's leeway ([`Verifier::leeway`](warden_passport::Verifier::leeway)) is how
//! much of that is tolerated; a worker that may fall minutes behind needs minutes of leeway.
//!
//! # Cost
//!
//! Verifying a passport is one Ed25519 signature check, about 50 µs on the machine of
//! `BENCHMARKS.md`. A workflow's jobs are checked again whenever its history replays (after an
//! eviction or a restart), so give the verifier a cache
//! ([`Verifier::cache`](warden_passport::Verifier::cache)): a passport whose signature
//! verified once is then checked in under a microsecond, every check but the signature run
//! again.
//!
//! # Activities
//!
//! The passport that started the workflow travels to its activities: the workflow
//! interceptor copies it into the header of every activity it schedules, and the activity
//! interceptor verifies it (signature, namespace, workflow id; not its lifetime, as an
//! activity may run long after the start) and asks the [`activity`](WorkerGuardBuilder::activity)
//! policy, on behalf of the caller who started the workflow, with an [`Operation`] of kind
//! `execute` on service [`ACTIVITY_SERVICE`], method and name the activity type. Activity
//! checks may wait on I/O: they run outside the workflow.
//!
//! # Inputs
//!
//! The SDK's interceptors see decoded inputs only, never the payloads as they were on the
//! wire, so this interceptor does not check a passport's input digest (`op.input`), and an
//! [`Operation`]'s arguments are opaque to the policies here (rules that test arguments
//! belong at the edge, which sees them).
//!
//! [`Operation`]: warden_core::Operation

mod activity;
mod guard;
mod workflow;

pub use activity::ActivityGuard;
pub use guard::{GuardError, WorkerGuard, WorkerGuardBuilder};

/// The service name of the [`Operation`](warden_core::Operation) an activity is authorized
/// as; its method and name are the activity type.
pub const ACTIVITY_SERVICE: &str = "temporal.worker.Activity";

/// The application failure type of every refusal.
pub const PERMISSION_DENIED: &str = "PermissionDenied";
