//! The decisions: one engine for every shape of question.

use std::{borrow::Cow, sync::Arc};

use foldhash::{HashMap, HashMapExt};
use serde::Deserialize;

use crate::{
    entity::{EntityInput, EntityRef, EntityResolver, ResolveError, Resolved},
    model::{Entitlements, Model, ModelHandle, Rule, ValueId},
};

/// How much one call may ask; every limit is checked before anything is resolved.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Resources in one multi-resource request (default 1,000).
    pub max_resources: usize,
    /// Entities in one multi-entity request (default 500).
    pub max_entities: usize,
    /// Resources in one multi-entity request (default 20).
    pub max_entity_resources: usize,
    /// Requests in one bulk call (default 200).
    pub max_bulk_requests: usize,
    /// Attribute values on one resource (default 64, the most this engine takes).
    pub max_resource_values: usize,
    /// Entities in one entitlements request (default 500).
    pub max_entitlement_entities: usize,
    /// Evaluations in one AuthZEN batch (default 1,000).
    pub max_evaluations: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_resources: 1000,
            max_entities: 500,
            max_entity_resources: 20,
            max_bulk_requests: 200,
            max_resource_values: 64,
            max_entitlement_entities: 500,
            max_evaluations: 1000,
        }
    }
}

/// Why a call was not decided at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PdpError {
    /// The request breaks a limit or is malformed; `INVALID_ARGUMENT`, naming the field path.
    #[error("{field}: {message}")]
    InvalidArgument {
        /// The field path (`entities`, `requests[3].resources`).
        field: String,
        /// What is wrong.
        message: String,
    },
    /// The entity resolver as a whole failed; `UNAVAILABLE`.
    #[error(transparent)]
    Unavailable(#[from] ResolveError),
}

impl PdpError {
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            field: field.into(),
            message: message.into(),
        }
    }

    fn too_many(field: impl Into<String>, count: usize, max: usize) -> Self {
        Self::invalid(field, format!("{count} given, at most {max}"))
    }
}

pub(crate) fn check_limit(
    field: impl FnOnce() -> String,
    count: usize,
    max: usize,
) -> Result<(), PdpError> {
    if count > max {
        Err(PdpError::too_many(field(), count, max))
    } else {
        Ok(())
    }
}

/// A resource in a request: the id its decision carries and the attribute value FQNs it holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ResourceInput {
    /// Echoed in the decision.
    pub ephemeral_id: Arc<str>,
    /// Value FQNs (`https://<namespace>/attr/<name>/value/<value>`).
    pub attribute_values: Vec<Arc<str>>,
}

impl ResourceInput {
    /// A resource holding `values`.
    pub fn new<V: Into<Arc<str>>>(
        ephemeral_id: impl Into<Arc<str>>,
        values: impl IntoIterator<Item = V>,
    ) -> Self {
        Self {
            ephemeral_id: ephemeral_id.into(),
            attribute_values: values.into_iter().map(Into::into).collect(),
        }
    }
}

/// One multi-resource question: an entity, an action, resources.
#[derive(Clone, Debug, PartialEq)]
pub struct MultiResourceRequest {
    /// Who.
    pub entity: EntityInput,
    /// Which action (`read`, `decrypt`), case-insensitive.
    pub action: String,
    /// On what.
    pub resources: Vec<ResourceInput>,
}

/// The resources of a call, looked up and grouped by definition once.
#[derive(Debug)]
pub(crate) struct Resources {
    model: Arc<Model>,
    prepared: Vec<Prepared>,
    plan: Option<Plan>,
}

/// The call's resources compiled against the values they name, each value a bit: an entity
/// is then summarised once (which of these values it holds the action on; the highest value
/// it holds in each hierarchy) and each resource checked with a few word operations. Made
/// when the resources name at most 64 distinct values, as nearly every call does; otherwise
/// resources are checked against the entitlements directly.
#[derive(Debug)]
struct Plan {
    /// The distinct values named, sorted; value `values[i]` is bit `i`.
    values: Vec<ValueId>,
    /// Model definition → its slot among the hierarchies named (`u8::MAX`: none).
    hierarchy_slot: Vec<u8>,
    slots: usize,
    /// Per resource, per group (in the resource's order), the test.
    tests: Vec<Vec<Test>>,
}

#[derive(Debug, Clone, Copy)]
enum Test {
    /// Every bit held.
    All(u64),
    /// One bit held.
    Any(u64),
    /// The hierarchy's best held value (smallest id) at or above `highest`.
    AtMost { slot: u8, highest: ValueId },
}

impl Plan {
    fn new(model: &Model, prepared: &[Prepared]) -> Option<Self> {
        let mut values: Vec<ValueId> = prepared
            .iter()
            .flat_map(|p| {
                p.groups
                    .iter()
                    .flat_map(|(_, values)| values.iter().copied())
            })
            .collect();
        values.sort_unstable();
        values.dedup();
        if values.len() > 64 {
            return None;
        }
        let mut hierarchy_slot = vec![u8::MAX; model.definitions.len()];
        let mut slots = 0usize;
        let bit = |value: &ValueId| 1u64 << values.binary_search(value).unwrap_or(0);
        let mut tests = Vec::with_capacity(prepared.len());
        for resource in prepared {
            let mut each = Vec::with_capacity(resource.groups.len());
            for (definition, group) in &resource.groups {
                let mask = group.iter().map(bit).fold(0, |mask, b| mask | b);
                each.push(match model.definitions[*definition as usize].rule {
                    Rule::AllOf => Test::All(mask),
                    Rule::AnyOf => Test::Any(mask),
                    Rule::Hierarchy => {
                        let slot = &mut hierarchy_slot[*definition as usize];
                        if *slot == u8::MAX {
                            *slot = u8::try_from(slots).ok().filter(|s| *s < u8::MAX)?;
                            slots += 1;
                        }
                        Test::AtMost {
                            slot: *slot,
                            highest: group.iter().copied().min().unwrap_or(ValueId::MAX),
                        }
                    }
                });
            }
            tests.push(each);
        }
        Some(Self {
            values,
            hierarchy_slot,
            slots,
            tests,
        })
    }
}

#[derive(Debug)]
struct Prepared {
    ephemeral_id: Arc<str>,
    /// (definition, the resource's values of it), in first-seen order.
    groups: Vec<(u32, Vec<ValueId>)>,
    /// The first value FQN the model does not know: the resource is denied.
    unknown: Option<Arc<str>>,
}

impl Resources {
    fn prepare(model: Arc<Model>, inputs: &[ResourceInput]) -> Self {
        let prepared: Vec<Prepared> = inputs
            .iter()
            .map(|input| {
                let mut groups: Vec<(u32, Vec<ValueId>)> = Vec::new();
                let mut unknown = None;
                for fqn in &input.attribute_values {
                    let Some(value) = model.value_id(fqn) else {
                        unknown.get_or_insert_with(|| Arc::clone(fqn));
                        continue;
                    };
                    let definition = model.values[value as usize].definition;
                    match groups.iter_mut().find(|(d, _)| *d == definition) {
                        Some((_, values)) => {
                            if !values.contains(&value) {
                                values.push(value);
                            }
                        }
                        None => groups.push((definition, vec![value])),
                    }
                }
                Prepared {
                    ephemeral_id: Arc::clone(&input.ephemeral_id),
                    groups,
                    unknown,
                }
            })
            .collect();
        let plan = Plan::new(&model, &prepared);
        Self {
            model,
            prepared,
            plan,
        }
    }

    /// The entity's bits for the plan's values and its best value per hierarchy (in `best`).
    fn summarize(
        &self,
        plan: &Plan,
        entitlements: &Entitlements,
        bit: u64,
        best: &mut Vec<ValueId>,
    ) -> u64 {
        best.clear();
        best.resize(plan.slots, ValueId::MAX);
        let mut held = 0u64;
        for &(value, actions) in &entitlements.grants {
            if actions & bit == 0 {
                continue;
            }
            if let Ok(at) = plan.values.binary_search(&value) {
                held |= 1u64 << at;
            }
            let definition = self.model.values[value as usize].definition;
            let slot = plan.hierarchy_slot[definition as usize];
            if slot != u8::MAX {
                let best = &mut best[slot as usize];
                *best = (*best).min(value);
            }
        }
        held
    }

    /// Decides every resource for one entity, in order, into `out`; whether all are permitted.
    fn decide_all(
        &self,
        entitlements: &Entitlements,
        bit: u64,
        best: &mut Vec<ValueId>,
        out: &mut Vec<Verdict>,
    ) -> bool {
        let start = out.len();
        match &self.plan {
            None => out.extend((0..self.len()).map(|index| self.check(index, entitlements, bit))),
            Some(plan) => self.decide_planned(plan, entitlements, bit, best, out),
        }
        out[start..].iter().all(|v| v.permitted)
    }

    fn decide_planned(
        &self,
        plan: &Plan,
        entitlements: &Entitlements,
        bit: u64,
        best: &mut Vec<ValueId>,
        out: &mut Vec<Verdict>,
    ) {
        let held = self.summarize(plan, entitlements, bit, best);
        out.extend(
            self.prepared
                .iter()
                .zip(&plan.tests)
                .map(|(resource, tests)| {
                    if resource.unknown.is_some() || resource.groups.is_empty() {
                        return Verdict::UNKNOWN;
                    }
                    Verdict::of(tests.iter().map(|test| match *test {
                        Test::All(mask) => held & mask == mask,
                        Test::Any(mask) => held & mask != 0,
                        Test::AtMost { slot, highest } => best[slot as usize] <= highest,
                    }))
                }),
        );
    }

    /// How many resources.
    pub(crate) fn len(&self) -> usize {
        self.prepared.len()
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.prepared.is_empty()
    }

    /// Decides one resource for an entity's entitlements: allocation-free.
    #[inline]
    fn check(&self, index: usize, entitlements: &Entitlements, bit: u64) -> Verdict {
        let resource = &self.prepared[index];
        // An unknown value, or no value at all: nothing says who may, so no one may.
        if resource.unknown.is_some() || resource.groups.is_empty() {
            return Verdict::UNKNOWN;
        }
        if bit == 0 {
            // No mapping grants the action at all; every definition fails.
            let failed = if resource.groups.len() >= 64 {
                u64::MAX
            } else {
                (1u64 << resource.groups.len()) - 1
            };
            return Verdict {
                permitted: false,
                failed,
                unknown: false,
            };
        }
        Verdict::of(resource.groups.iter().map(|(definition, values)| {
            let definition = &self.model.definitions[*definition as usize];
            match definition.rule {
                Rule::AllOf => values.iter().all(|v| entitlements.get(*v) & bit != 0),
                Rule::AnyOf => values.iter().any(|v| entitlements.get(*v) & bit != 0),
                Rule::Hierarchy => {
                    // Values are numbered highest first: the smallest id is the highest.
                    let highest = values.iter().copied().min().unwrap_or(definition.first);
                    entitlements.any_in(definition.first, highest, bit)
                }
            }
        }))
    }
}

/// The bit of a resource's definition at `position` in [`Verdict::failed`]; definitions past
/// the 64th share the last bit.
#[inline]
fn definition_bit(position: usize) -> u64 {
    1u64 << position.min(63)
}

/// The outcome of one (entity, resource) pair, kept compact: which of the resource's
/// definitions failed, as bits in the order the resource first names them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Verdict {
    permitted: bool,
    failed: u64,
    unknown: bool,
}

impl Verdict {
    /// The verdict on a resource whose definitions, in order, passed or failed as `passes`
    /// says.
    #[inline]
    fn of(passes: impl Iterator<Item = bool>) -> Self {
        let failed = passes
            .enumerate()
            .filter(|(_, pass)| !pass)
            .fold(0, |failed, (position, _)| failed | definition_bit(position));
        Self {
            permitted: failed == 0,
            failed,
            unknown: false,
        }
    }

    const UNKNOWN: Self = Self {
        permitted: false,
        failed: 0,
        unknown: true,
    };
    const UNRESOLVED: Self = Self {
        permitted: false,
        failed: 0,
        unknown: false,
    };
}

/// One resource's decision for one entity.
#[derive(Debug, Clone, Copy)]
pub struct ResourceDecision<'a> {
    resources: &'a Resources,
    index: usize,
    verdict: Verdict,
    unresolved: Option<&'a str>,
}

impl<'a> ResourceDecision<'a> {
    /// The resource's ephemeral id.
    pub fn ephemeral_id(&self) -> &'a str {
        &self.resources.prepared[self.index].ephemeral_id
    }

    /// Whether the entity may take the action on the resource.
    pub fn permitted(&self) -> bool {
        self.verdict.permitted
    }

    /// The obligations the resource's values carry, which whoever accesses it must fulfil.
    pub fn obligations(&self) -> impl Iterator<Item = &'a str> + 'a {
        let resources = self.resources;
        resources.prepared[self.index]
            .groups
            .iter()
            .flat_map(|(_, values)| values.iter())
            .flat_map(move |v| resources.model.values[*v as usize].obligations.iter())
            .map(|o| &**o)
    }

    /// The definitions whose rule the entity did not satisfy.
    pub fn failed_definitions(&self) -> impl Iterator<Item = &'a str> + 'a {
        let resources = self.resources;
        let failed = self.verdict.failed;
        resources.prepared[self.index]
            .groups
            .iter()
            .enumerate()
            .filter(move |(position, _)| failed & definition_bit(*position) != 0)
            .map(move |(_, (d, _))| &*resources.model.definitions[*d as usize].fqn)
    }

    /// Why the resource was denied when no definition says: an unknown value, an entity that
    /// did not resolve.
    pub fn reason(&self) -> Option<Cow<'a, str>> {
        if let Some(why) = self.unresolved {
            return Some(Cow::Owned(format!("entity not resolved: {why}")));
        }
        if self.verdict.unknown {
            return Some(
                match self.resources.prepared[self.index].unknown.as_deref() {
                    Some(fqn) => Cow::Owned(format!("unknown attribute value `{fqn}`")),
                    None => Cow::Borrowed("the resource carries no attribute values"),
                },
            );
        }
        None
    }
}

/// One entity's decisions on every resource of the call, in request order.
#[derive(Debug)]
pub struct EntityDecisions {
    /// The entity's ephemeral id.
    pub ephemeral_id: Arc<str>,
    /// Whether every resource is permitted.
    pub all_permitted: bool,
    /// Where its verdicts start in [`Decisions::verdicts`] (one per resource).
    start: usize,
    unresolved: Option<String>,
}

/// The answer to a multi-entity (or multi-resource) question.
#[derive(Debug)]
pub struct Decisions {
    resources: Resources,
    /// Per entity, in request order.
    pub entities: Vec<EntityDecisions>,
    /// Every entity's verdicts, one run of `resources.len()` per entity: one allocation per
    /// call, not one per entity.
    verdicts: Vec<Verdict>,
}

/// Counts `decisions`' verdicts under `call` (`warden_pdp_decisions_total`) and its entities
/// that did not resolve (`warden_pdp_unresolved_entities_total`).
fn record(call: &'static str, decisions: &[Decisions]) {
    let (mut permits, mut denies, mut unresolved) = (0u64, 0u64, 0u64);
    for answer in decisions {
        let permitted = answer.verdicts.iter().filter(|v| v.permitted).count() as u64;
        permits += permitted;
        denies += answer.verdicts.len() as u64 - permitted;
        unresolved += answer
            .entities
            .iter()
            .filter(|e| e.unresolved.is_some())
            .count() as u64;
    }
    metrics::counter!("warden_pdp_decisions_total", "call" => call, "decision" => "permit")
        .increment(permits);
    metrics::counter!("warden_pdp_decisions_total", "call" => call, "decision" => "deny")
        .increment(denies);
    if unresolved > 0 {
        metrics::counter!("warden_pdp_unresolved_entities_total", "call" => call)
            .increment(unresolved);
    }
}

impl Decisions {
    /// Whether every entity may access every resource.
    pub fn all_permitted(&self) -> bool {
        self.entities.iter().all(|e| e.all_permitted)
    }

    /// The decisions of `entity`, in resource order.
    pub fn decisions<'a>(
        &'a self,
        entity: &'a EntityDecisions,
    ) -> impl ExactSizeIterator<Item = ResourceDecision<'a>> + 'a {
        let run = entity.start..entity.start + self.resources.len();
        // An entity of another answer gets no decisions rather than someone else's.
        self.verdicts
            .get(run)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(move |(index, verdict)| ResourceDecision {
                resources: &self.resources,
                index,
                verdict: *verdict,
                unresolved: entity.unresolved.as_deref(),
            })
    }

    /// Each entity with its decisions.
    pub fn iter(
        &self,
    ) -> impl Iterator<
        Item = (
            &EntityDecisions,
            impl ExactSizeIterator<Item = ResourceDecision<'_>>,
        ),
    > {
        self.entities.iter().map(|e| (e, self.decisions(e)))
    }
}

/// One entity's entitlements: (value FQN, actions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityEntitlements {
    /// The entity's ephemeral id.
    pub ephemeral_id: Arc<str>,
    /// What it may do, by value.
    pub entitlements: Vec<(Arc<str>, Vec<Arc<str>>)>,
    /// Why it could not be resolved (then it has none).
    pub error: Option<String>,
}

/// The decision point: a model, an entity resolver and limits. Cheap to clone; every door
/// (the library, the gRPC service, AuthZEN, `RemotePolicy`'s server) decides through it.
#[derive(Clone)]
pub struct DecisionPoint {
    model: ModelHandle,
    resolver: Arc<dyn EntityResolver>,
    limits: Limits,
}

impl std::fmt::Debug for DecisionPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecisionPoint")
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl DecisionPoint {
    /// A decision point over `model`, resolving entities with `resolver`, with default limits.
    pub fn new(model: ModelHandle, resolver: impl EntityResolver) -> Self {
        Self {
            model,
            resolver: Arc::new(resolver),
            limits: Limits::default(),
        }
    }

    /// Replaces the limits.
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The current model.
    pub fn model(&self) -> Arc<Model> {
        self.model.current()
    }

    fn check_resources(&self, field: &str, resources: &[ResourceInput]) -> Result<(), PdpError> {
        if resources.is_empty() {
            return Err(PdpError::invalid(field, "at least one resource is needed"));
        }
        for (i, resource) in resources.iter().enumerate() {
            check_limit(
                || format!("{field}[{i}].attribute_values"),
                resource.attribute_values.len(),
                self.limits.max_resource_values,
            )?;
        }
        Ok(())
    }

    /// Resolves distinct entities once each: the answer for `entities[i]` is at `slots[i]`.
    async fn resolve(
        &self,
        entities: &[&EntityRef],
    ) -> Result<(Vec<Resolved>, Vec<usize>), PdpError> {
        let mut distinct: Vec<EntityRef> = Vec::with_capacity(entities.len());
        let mut seen: HashMap<&EntityRef, usize> = HashMap::with_capacity(entities.len());
        let mut slots = Vec::with_capacity(entities.len());
        for entity in entities {
            let slot = *seen.entry(entity).or_insert_with(|| {
                distinct.push((*entity).clone());
                distinct.len() - 1
            });
            slots.push(slot);
        }
        let resolved = self
            .resolver
            .resolve(&distinct)
            .await
            .inspect_err(|error| {
                metrics::counter!("warden_pdp_resolver_failures_total").increment(1);
                tracing::warn!(%error, "entity resolver failed; the call is refused");
            })?;
        if resolved.len() != distinct.len() {
            return Err(PdpError::Unavailable(ResolveError(format!(
                "the resolver answered {} entities for {}",
                resolved.len(),
                distinct.len()
            ))));
        }
        Ok((resolved, slots))
    }

    /// One entity, one action, one resource.
    pub async fn decide(
        &self,
        entity: &EntityInput,
        action: &str,
        resource: &ResourceInput,
    ) -> Result<Decisions, PdpError> {
        self.decide_multi_resource(entity, action, std::slice::from_ref(resource))
            .await
    }

    /// One entity, one action, up to [`Limits::max_resources`] resources.
    pub async fn decide_multi_resource(
        &self,
        entity: &EntityInput,
        action: &str,
        resources: &[ResourceInput],
    ) -> Result<Decisions, PdpError> {
        check_limit(
            || "resources".to_owned(),
            resources.len(),
            self.limits.max_resources,
        )?;
        let decisions = self
            .decide_many(std::slice::from_ref(entity), action, resources)
            .await?;
        record("multi_resource", std::slice::from_ref(&decisions));
        Ok(decisions)
    }

    /// Up to [`Limits::max_entities`] entities, one action, up to
    /// [`Limits::max_entity_resources`] resources: each entity resolved and its entitlements
    /// computed once, then checked against every resource.
    pub async fn decide_multi_entity(
        &self,
        entities: &[EntityInput],
        action: &str,
        resources: &[ResourceInput],
    ) -> Result<Decisions, PdpError> {
        check_limit(
            || "entities".to_owned(),
            entities.len(),
            self.limits.max_entities,
        )?;
        check_limit(
            || "resources".to_owned(),
            resources.len(),
            self.limits.max_entity_resources,
        )?;
        let decisions = self.decide_many(entities, action, resources).await?;
        record("multi_entity", std::slice::from_ref(&decisions));
        Ok(decisions)
    }

    async fn decide_many(
        &self,
        entities: &[EntityInput],
        action: &str,
        resources: &[ResourceInput],
    ) -> Result<Decisions, PdpError> {
        if entities.is_empty() {
            return Err(PdpError::invalid(
                "entities",
                "at least one entity is needed",
            ));
        }
        self.check_resources("resources", resources)?;
        if action.is_empty() {
            return Err(PdpError::invalid("action", "must name an action"));
        }
        let refs: Vec<&EntityRef> = entities.iter().map(|e| &e.entity).collect();
        let (resolved, slots) = self.resolve(&refs).await?;
        let model = self.model.current();
        let bit = model.action_id(action).map_or(0, |id| 1u64 << id);
        let resources = Resources::prepare(Arc::clone(&model), resources);
        let (entities, verdicts) = evaluate(&model, &resources, bit, entities, &resolved, &slots);
        Ok(Decisions {
            resources,
            entities,
            verdicts,
        })
    }

    /// Up to [`Limits::max_bulk_requests`] multi-resource requests; an entity named by several
    /// is resolved once and its entitlements computed once.
    pub async fn decide_bulk(
        &self,
        requests: &[MultiResourceRequest],
    ) -> Result<Vec<Decisions>, PdpError> {
        check_limit(
            || "requests".to_owned(),
            requests.len(),
            self.limits.max_bulk_requests,
        )?;
        for (i, request) in requests.iter().enumerate() {
            check_limit(
                || format!("requests[{i}].resources"),
                request.resources.len(),
                self.limits.max_resources,
            )?;
            self.check_resources(&format!("requests[{i}].resources"), &request.resources)?;
            if request.action.is_empty() {
                return Err(PdpError::invalid(
                    format!("requests[{i}].action"),
                    "must name an action",
                ));
            }
        }
        let refs: Vec<&EntityRef> = requests.iter().map(|r| &r.entity.entity).collect();
        let (resolved, slots) = self.resolve(&refs).await?;
        let model = self.model.current();
        let entitlements = entitle(&model, &resolved);
        let mut best = Vec::new();
        let answers: Vec<Decisions> = requests
            .iter()
            .zip(&slots)
            .map(|(request, &slot)| {
                let bit = model.action_id(&request.action).map_or(0, |id| 1u64 << id);
                let resources = Resources::prepare(Arc::clone(&model), &request.resources);
                let mut verdicts = Vec::with_capacity(resources.len());
                let decided = match (&entitlements[slot], &resolved[slot]) {
                    (Some(entitlements), _) => decide_entity(
                        &resources,
                        entitlements,
                        bit,
                        &request.entity,
                        &mut best,
                        &mut verdicts,
                    ),
                    (None, resolved) => {
                        unresolved(&resources, &request.entity, resolved, &mut verdicts)
                    }
                };
                Decisions {
                    resources,
                    entities: vec![decided],
                    verdicts,
                }
            })
            .collect();
        record("bulk", &answers);
        Ok(answers)
    }

    /// What each entity may do, by value (with the lower values a hierarchy implies when
    /// `comprehensive`).
    pub async fn entitlements(
        &self,
        entities: &[EntityInput],
        comprehensive: bool,
    ) -> Result<Vec<EntityEntitlements>, PdpError> {
        check_limit(
            || "entities".to_owned(),
            entities.len(),
            self.limits.max_entitlement_entities,
        )?;
        let refs: Vec<&EntityRef> = entities.iter().map(|e| &e.entity).collect();
        let (resolved, slots) = self.resolve(&refs).await?;
        let model = self.model.current();
        Ok(entities
            .iter()
            .zip(&slots)
            .map(|(entity, &slot)| match &resolved[slot] {
                Ok(rep) => EntityEntitlements {
                    ephemeral_id: Arc::clone(&entity.ephemeral_id),
                    entitlements: model.describe(&model.entitlements(rep), comprehensive),
                    error: None,
                },
                Err(why) => EntityEntitlements {
                    ephemeral_id: Arc::clone(&entity.ephemeral_id),
                    entitlements: Vec::new(),
                    error: Some(why.clone()),
                },
            })
            .collect())
    }
}

fn decide_entity(
    resources: &Resources,
    entitlements: &Entitlements,
    bit: u64,
    entity: &EntityInput,
    best: &mut Vec<ValueId>,
    verdicts: &mut Vec<Verdict>,
) -> EntityDecisions {
    let start = verdicts.len();
    let all_permitted = resources.decide_all(entitlements, bit, best, verdicts);
    EntityDecisions {
        ephemeral_id: Arc::clone(&entity.ephemeral_id),
        all_permitted,
        start,
        unresolved: None,
    }
}

fn unresolved(
    resources: &Resources,
    entity: &EntityInput,
    resolved: &Resolved,
    verdicts: &mut Vec<Verdict>,
) -> EntityDecisions {
    let start = verdicts.len();
    verdicts.extend(std::iter::repeat_n(Verdict::UNRESOLVED, resources.len()));
    EntityDecisions {
        ephemeral_id: Arc::clone(&entity.ephemeral_id),
        all_permitted: resources.is_empty(),
        start,
        unresolved: Some(resolved.as_ref().err().cloned().unwrap_or_default()),
    }
}

/// Each resolved entity's entitlements (`None` for one that did not resolve), one scratch
/// buffer for all. One thread: splitting 500 entities over this machine's second core cost
/// more than it saved when measured (BENCHMARKS.md, [7/10]), so a call runs on the task that
/// took it.
fn entitle(model: &Model, resolved: &[Resolved]) -> Vec<Option<Entitlements>> {
    let mut met = Vec::new();
    resolved
        .iter()
        .map(|r| {
            r.as_ref()
                .ok()
                .map(|rep| model.entitlements_with(rep, &mut met))
        })
        .collect()
}

/// Entitlements once per distinct entity, then every resource for each entity in order.
fn evaluate(
    model: &Model,
    resources: &Resources,
    bit: u64,
    entities: &[EntityInput],
    resolved: &[Resolved],
    slots: &[usize],
) -> (Vec<EntityDecisions>, Vec<Verdict>) {
    let entitlements = entitle(model, resolved);
    let mut best = Vec::new();
    let mut verdicts = Vec::with_capacity(entities.len() * resources.len());
    let decided = entities
        .iter()
        .zip(slots)
        .map(|(entity, &slot)| match &entitlements[slot] {
            Some(entitlements) => decide_entity(
                resources,
                entitlements,
                bit,
                entity,
                &mut best,
                &mut verdicts,
            ),
            None => unresolved(resources, entity, &resolved[slot], &mut verdicts),
        })
        .collect();
    (decided, verdicts)
}
