//! The gRPC door: `warden.pdp.v1.DecisionService` over the [`DecisionPoint`].

use std::sync::Arc;

use prost_types::value::Kind;
use serde_json::{Map, Number, Value};
use tonic::{Request, Response, Status};

use crate::{
    decide::{
        DecisionPoint, Decisions, MultiResourceRequest, PdpError, ResourceInput, check_limit,
    },
    entity::{EntityInput, EntityRef},
    proto::{self, decision_service_server::DecisionServiceServer},
};

/// The tonic service; serve it with `DecisionService::new(point).into_server()`.
#[derive(Clone, Debug)]
pub struct DecisionService {
    point: DecisionPoint,
}

impl DecisionService {
    /// A service answering from `point`.
    pub fn new(point: DecisionPoint) -> Self {
        Self { point }
    }

    /// The tonic server for it.
    pub fn into_server(self) -> DecisionServiceServer<Self> {
        DecisionServiceServer::new(self)
    }
}

impl From<PdpError> for Status {
    fn from(error: PdpError) -> Self {
        match error {
            PdpError::InvalidArgument { .. } => Status::invalid_argument(error.to_string()),
            PdpError::Unavailable(_) => Status::unavailable(error.to_string()),
        }
    }
}

/// A proto entity as the library's, naming `field` when it says nothing.
pub(crate) fn entity(field: &str, entity: Option<proto::Entity>) -> Result<EntityInput, PdpError> {
    let entity = entity.ok_or_else(|| PdpError::invalid(field, "missing"))?;
    let kind = match entity.kind {
        Some(proto::entity::Kind::Token(token)) => {
            EntityRef::Token(warden_core::Secret::new(token))
        }
        Some(proto::entity::Kind::Id(id)) => EntityRef::Id(id.into()),
        Some(proto::entity::Kind::Claims(claims)) => {
            EntityRef::Claims(Arc::new(struct_json(claims)))
        }
        None => return Err(PdpError::invalid(field, "names no token, id or claims")),
    };
    Ok(EntityInput {
        ephemeral_id: entity.ephemeral_id.into(),
        entity: kind,
    })
}

/// The `entities` field as the library's, at most `max` of them; the limit is checked before
/// any conversion, so an oversized request costs no more than its decoding.
fn entity_list(entities: Vec<proto::Entity>, max: usize) -> Result<Vec<EntityInput>, PdpError> {
    check_limit(|| "entities".to_owned(), entities.len(), max)?;
    entities
        .into_iter()
        .enumerate()
        .map(|(i, e)| entity(&format!("entities[{i}]"), Some(e)))
        .collect()
}

fn resources(resources: Vec<proto::Resource>) -> Vec<ResourceInput> {
    resources
        .into_iter()
        .map(|r| ResourceInput {
            ephemeral_id: r.ephemeral_id.into(),
            attribute_values: r.attribute_values.into_iter().map(Into::into).collect(),
        })
        .collect()
}

/// `google.protobuf.Struct` as JSON.
pub(crate) fn struct_json(value: prost_types::Struct) -> Value {
    Value::Object(
        value
            .fields
            .into_iter()
            .map(|(k, v)| (k, value_json(v)))
            .collect::<Map<_, _>>(),
    )
}

fn value_json(value: prost_types::Value) -> Value {
    match value.kind {
        None | Some(Kind::NullValue(_)) => Value::Null,
        Some(Kind::BoolValue(b)) => Value::Bool(b),
        Some(Kind::NumberValue(n)) => {
            // Whole numbers keep their integer spelling, so `7` matches the condition value "7".
            if n.fract() == 0.0 && n.abs() < 9.0e15 {
                Value::Number(Number::from(n as i64))
            } else {
                Number::from_f64(n).map_or(Value::Null, Value::Number)
            }
        }
        Some(Kind::StringValue(s)) => Value::String(s),
        Some(Kind::ListValue(list)) => {
            Value::Array(list.values.into_iter().map(value_json).collect())
        }
        Some(Kind::StructValue(s)) => struct_json(s),
    }
}

/// JSON as `google.protobuf.Struct` (for clients that send claims).
pub fn json_struct(value: &Map<String, Value>) -> prost_types::Struct {
    prost_types::Struct {
        fields: value
            .iter()
            .map(|(k, v)| (k.clone(), json_value(v)))
            .collect(),
    }
}

fn json_value(value: &Value) -> prost_types::Value {
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(*b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s.clone()),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.iter().map(json_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(json_struct(map)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Each entity's decisions as proto messages.
fn entity_results(decisions: &Decisions) -> Vec<proto::EntityDecisions> {
    decisions
        .iter()
        .map(|(entity, each)| proto::EntityDecisions {
            ephemeral_id: entity.ephemeral_id.to_string(),
            all_permitted: entity.all_permitted,
            decisions: each.map(|d| resource_decision(&d)).collect(),
        })
        .collect()
}

fn resource_decision(decision: &crate::ResourceDecision<'_>) -> proto::ResourceDecision {
    proto::ResourceDecision {
        ephemeral_id: decision.ephemeral_id().to_owned(),
        decision: if decision.permitted() {
            proto::Decision::Permit
        } else {
            proto::Decision::Deny
        } as i32,
        required_obligations: decision.obligations().map(str::to_owned).collect(),
        failed_definitions: decision.failed_definitions().map(str::to_owned).collect(),
        reason: decision
            .reason()
            .map(|r| r.into_owned())
            .unwrap_or_default(),
    }
}

fn multi_resource_response(decisions: &Decisions) -> proto::GetDecisionMultiResourceResponse {
    let mut results = entity_results(decisions);
    let result = results.pop().unwrap_or_default();
    proto::GetDecisionMultiResourceResponse {
        entity_ephemeral_id: result.ephemeral_id,
        all_permitted: result.all_permitted,
        decisions: result.decisions,
    }
}

#[tonic::async_trait]
impl proto::decision_service_server::DecisionService for DecisionService {
    async fn get_decision(
        &self,
        request: Request<proto::GetDecisionRequest>,
    ) -> Result<Response<proto::GetDecisionResponse>, Status> {
        let request = request.into_inner();
        let entity = entity("entity", request.entity)?;
        let resource = request
            .resource
            .ok_or_else(|| PdpError::invalid("resource", "missing"))?;
        let mut resource = resources(vec![resource]);
        let decisions = self
            .point
            .decide(&entity, &request.action, &resource.remove(0))
            .await?;
        let decision = multi_resource_response(&decisions).decisions.pop();
        Ok(Response::new(proto::GetDecisionResponse { decision }))
    }

    async fn get_decision_multi_resource(
        &self,
        request: Request<proto::GetDecisionMultiResourceRequest>,
    ) -> Result<Response<proto::GetDecisionMultiResourceResponse>, Status> {
        let request = request.into_inner();
        let entity = entity("entity", request.entity)?;
        let decisions = self
            .point
            .decide_multi_resource(&entity, &request.action, &resources(request.resources))
            .await?;
        Ok(Response::new(multi_resource_response(&decisions)))
    }

    async fn get_decision_multi_entity(
        &self,
        request: Request<proto::GetDecisionMultiEntityRequest>,
    ) -> Result<Response<proto::GetDecisionMultiEntityResponse>, Status> {
        let request = request.into_inner();
        let entities = entity_list(request.entities, self.point.limits().max_entities)?;
        let decisions = self
            .point
            .decide_multi_entity(&entities, &request.action, &resources(request.resources))
            .await?;
        Ok(Response::new(proto::GetDecisionMultiEntityResponse {
            all_permitted: decisions.all_permitted(),
            results: entity_results(&decisions),
        }))
    }

    async fn get_decision_bulk(
        &self,
        request: Request<proto::GetDecisionBulkRequest>,
    ) -> Result<Response<proto::GetDecisionBulkResponse>, Status> {
        let request = request.into_inner();
        let limits = self.point.limits();
        check_limit(
            || "requests".to_owned(),
            request.requests.len(),
            limits.max_bulk_requests,
        )?;
        let requests = request
            .requests
            .into_iter()
            .enumerate()
            .map(|(i, r)| {
                Ok(MultiResourceRequest {
                    entity: entity(&format!("requests[{i}].entity"), r.entity)?,
                    action: r.action,
                    resources: resources(r.resources),
                })
            })
            .collect::<Result<Vec<_>, PdpError>>()?;
        let answers = self.point.decide_bulk(&requests).await?;
        Ok(Response::new(proto::GetDecisionBulkResponse {
            responses: answers.iter().map(multi_resource_response).collect(),
        }))
    }

    async fn get_entitlements(
        &self,
        request: Request<proto::GetEntitlementsRequest>,
    ) -> Result<Response<proto::GetEntitlementsResponse>, Status> {
        let request = request.into_inner();
        let entities = entity_list(
            request.entities,
            self.point.limits().max_entitlement_entities,
        )?;
        let answers = self
            .point
            .entitlements(&entities, request.with_comprehensive_hierarchy)
            .await?;
        Ok(Response::new(proto::GetEntitlementsResponse {
            entitlements: answers
                .into_iter()
                .map(|e| proto::EntityEntitlements {
                    ephemeral_id: e.ephemeral_id.to_string(),
                    entitlements: e
                        .entitlements
                        .into_iter()
                        .map(|(value, actions)| proto::ValueActions {
                            attribute_value: value.to_string(),
                            actions: actions.iter().map(|a| a.to_string()).collect(),
                        })
                        .collect(),
                    error: e.error.unwrap_or_default(),
                })
                .collect(),
        }))
    }
}
