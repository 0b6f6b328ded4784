//! Call passports: the caller an edge authenticated, carried to the worker that runs the
//! handler.
//!
//! A Temporal worker sees only the `identity` string a caller declares about itself. The edge
//! that authenticated the caller — `warden proxy`, or the client guardrail — signs a
//! **passport** for each call it allows and puts it in the call's Temporal header; an
//! interceptor in the worker verifies it before a handler runs. This crate is the format and
//! the two ends of it: [`Issuer`] signs, [`Verifier`] checks the signature, the lifetime and
//! that the passport was issued for exactly the operation the worker is about to run.
//!
//! # The format
//!
//! A passport is a compact JWS (RFC 7515) with a JSON payload, so any JWT library verifies it.
//! It travels as a Temporal `Payload` under the header key [`HEADER_KEY`] (`warden-passport`
//! unless configured otherwise), with metadata `encoding: binary/plain` and the compact
//! serialization's ASCII bytes as `data`.
//!
//! **Header**: `alg` is `EdDSA` (Ed25519, the default), `ES256` or `HS256`; `kid` names the
//! signing key (keys rotate: a worker trusts a set, by `kid`); `typ` is
//! `warden-passport+jwt`.
//!
//! **Payload**:
//!
//! | claim | meaning |
//! |---|---|
//! | `iss` | the issuer's name (a verifier accepts only the issuers it is told to) |
//! | `sub` | the caller's subject; absent for an anonymous caller |
//! | `iat`, `exp` | issued at, expires at: seconds since the Unix epoch (`exp` − `iat` is short, 60 s by default) |
//! | `op.ns` | the namespace |
//! | `op.wid` | the workflow id |
//! | `op.kind` | the operation kind: `execute`, `signal`, `query`, `update` (lowercase) |
//! | `op.name` | the signal name, query type or update name; absent for a start |
//! | `op.start` | `true` when the passport also admits starting the workflow: a signal-with-start has one header for its start and its signal, so its passport (kind `signal`) is accepted for the start too, by namespace and workflow id; absent otherwise |
//! | `op.input` | `sha256:` and the unpadded base64url SHA-256 of the call's input payloads (below); absent when the call has none or the issuer was told not to bind them |
//! | `cl.system` | the caller's system-wide roles, `|`-joined (`admin`, `writer|worker`); absent when none |
//! | `cl.ns` | roles per namespace, `{"orders": "writer"}`; absent when none |
//! | `cl.priv` | privileges (scopes), an array of strings; absent when none |
//! | `cl.groups` | groups, an array of strings; absent when none |
//! | `cl.attr` | other claim attributes, a JSON object; absent when none |
//!
//! Which of the caller's claims are forwarded is the issuer's choice ([`Forward`]); a worker
//! never sees more than it was given.
//!
//! **The input digest** binds the passport to the call's arguments as the worker receives them
//! (a worker's SDK decodes the payloads, and protobuf maps have no canonical order, so the
//! digest is over the payloads' contents, not their encoding). With `u32be(n)` the four
//! bytes of `n`, big-endian, SHA-256 is taken over:
//!
//! ```text
//! u32be(number of payloads)
//! for each payload, in order:
//!     u32be(number of metadata entries)
//!     for each metadata entry, sorted by key (bytewise):
//!         u32be(len(key)) key u32be(len(value)) value
//!     u32be(len(data)) data
//! ```
//!
//! [`input_digest`] computes it; a Go or TypeScript worker needs a dozen lines for the same.
//!
//! # Checks a verifier makes
//!
//! The signature, by a trusted key named by `kid`, with the algorithm that key is for (never
//! `none`, never an algorithm the key is not for); `typ`; `iss` among the trusted issuers;
//! `iat` ≤ now + leeway < `exp` + leeway, where *now* is given by the caller — a workflow
//! passes its own clock, never the wall clock, so replays decide the same; and the binding:
//! namespace, workflow id, kind and name exactly, the input digest when the verifier is given
//! one. Each failure is a [`Refusal`] that says which.
//!
//! # A verifier in another SDK
//!
//! A worker interceptor in Go, TypeScript or Java does what the Rust (`warden-worker`) and
//! Python (`python/warden_worker`, about 150 lines on PyJWT) interceptors do:
//!
//! 1. In each inbound start, signal, query and update, read the header entry under
//!    `warden-passport` (the payload's data, ASCII). None: refuse (`no passport`).
//! 2. Read the JWS header without verifying: `typ` must be `warden-passport+jwt`; look up
//!    `kid` among the trusted keys (a JWKS, as `warden proxy` serves it at its `jwks_path`);
//!    `alg` must be the one that key is for (`OKP` → `EdDSA`, `EC` P-256 → `ES256`, `oct` →
//!    `HS256`). Then verify the signature with that key and that algorithm only.
//! 3. `iss` must be a trusted issuer. With *now* the workflow's own time (Go
//!    `workflow.Now`, TypeScript `Date.now()` inside the workflow sandbox, which is
//!    deterministic), refuse `iat` > now + leeway and now ≥ `exp` + leeway. A retired key
//!    refuses passports with `iat` ≥ its retirement time.
//! 4. The binding: `op.ns` and `op.wid` equal the workflow's namespace and id; for a start,
//!    `op.kind` is `execute`, or `op.start` is `true` (signal-with-start); otherwise `op.kind`
//!    is `signal`, `query` or `update` and `op.name` the signal name, query type or update
//!    name. Compare `op.input` with [`input_digest`] of the raw payloads where the SDK shows
//!    them.
//! 5. Decide with the claims in `sub` and `cl`; refuse as the Rust crate `warden-worker`
//!    documents: fail the start non-retryably, drop the signal, fail the query, reject the
//!    update in its validator. Copy the start's passport into every activity's header, and
//!    check it there without its lifetime.
//!
//! A key rotated out is retired ([`TrustedKeys::retire`]), not dropped: what it signed before
//! its retirement still verifies, so recorded histories replay as they first ran.

mod digest;
mod keys;
mod passport;

pub use digest::{PayloadView, input_digest};
pub use keys::{KeyError, SigningKey, TrustedKeys, jwks};
pub use passport::{Binding, Forward, IssueError, Issuer, Passport, Refusal, Verifier};

/// The Temporal header key a passport travels under, unless configured otherwise.
pub const HEADER_KEY: &str = "warden-passport";

/// The JWS `typ` of a passport.
pub const TYPE: &str = "warden-passport+jwt";
