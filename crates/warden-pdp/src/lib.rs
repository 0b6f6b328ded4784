//! Warden's decision point: which of these entities may take this action on which of these
//! resources — for one entity and a thousand resources, or five hundred entities and twenty
//! resources, in one call.
//!
//! The model is the attribute-based one OpenTDF uses:
//!
//! - **Attribute definitions** in namespaces, each with values named by FQNs
//!   (`https://<namespace>/attr/<name>/value/<value>`, compared ASCII-case-insensitively) and a
//!   rule: *all-of* (the entity must be entitled to every value of the definition the resource
//!   carries), *any-of* (to at least one), *hierarchy* (values ordered highest first; the
//!   entity must be entitled to the resource's highest value or one above it).
//! - **Resources** carry value FQNs; they are grouped by definition and every definition must
//!   pass. An unknown value denies that resource, not the call.
//! - **Entitlements** come from **subject mappings**: condition groups (joined by AND; each
//!   group's conditions by AND or OR) over the entity's representation, with flattened JSON
//!   selectors (`.groups[]`, `.attributes.department`) and the operators IN, NOT_IN and
//!   IN_CONTAINS, granting actions on values.
//! - **Obligations** on values are returned with each decision on a resource carrying them.
//!
//! Entities are resolved in one batch per call through an [`EntityResolver`] (tokens through
//! an identity mapper, ids from records, or claims as given); each distinct entity's
//! entitlements are computed once and checked against every resource, and the resources are
//! looked up and grouped once per call.
//!
//! ```
//! use warden_pdp::{DecisionPoint, EntityInput, Model, ModelHandle, ResourceInput, StandardResolver};
//! use serde_json::json;
//!
//! let model = Model::parse(r#"
//!     [[attributes]]
//!     namespace = "example.com"
//!     name = "classification"
//!     rule = "hierarchy"
//!     values = ["secret", "public"]
//!
//!     [[subject_mappings]]
//!     attribute_value = "https://example.com/attr/classification/value/secret"
//!     actions = ["read"]
//!     condition_groups = [{ conditions = [{ selector = ".groups[]", operator = "in", values = ["analysts"] }] }]
//! "#, false, "model.toml").unwrap();
//! let point = DecisionPoint::new(ModelHandle::new(model), StandardResolver::new());
//! let entities = vec![
//!     EntityInput::claims("ann", json!({"groups": ["analysts"]})),
//!     EntityInput::claims("bob", json!({"groups": ["sales"]})),
//! ];
//! let public = ResourceInput::new("memo", ["https://example.com/attr/classification/value/public"]);
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let decisions = point.decide_multi_entity(&entities, "read", &[public]).await.unwrap();
//! let permitted: Vec<bool> = decisions.entities.iter().map(|e| e.all_permitted).collect();
//! assert_eq!(permitted, [true, false]);
//! # });
//! ```

mod decide;
mod entity;
mod model;
pub mod proto;
mod service;

#[cfg(feature = "authzen")]
pub mod authzen;
#[cfg(feature = "remote")]
pub mod remote;

pub use decide::{
    DecisionPoint, Decisions, EntityDecisions, EntityEntitlements, Limits, MultiResourceRequest,
    PdpError, ResourceDecision, ResourceInput,
};
pub use entity::{
    EntityInput, EntityRef, EntityResolver, ResolveError, ResolveFuture, Resolved,
    StandardResolver, representation,
};
pub use model::{
    AttributeConfig, BoolOp, ConditionConfig, ConditionGroupConfig, Entitlements, MAX_ACTIONS,
    Model, ModelConfig, ModelError, ModelHandle, Operator, Problem, Rule, SubjectMappingConfig,
};
pub use service::{DecisionService, json_struct};
