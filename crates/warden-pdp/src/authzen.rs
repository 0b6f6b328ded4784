//! The OpenID AuthZEN Authorization API's access evaluation endpoints, on the same
//! [`DecisionPoint`]:
//!
//! - `POST /access/v1/evaluation`: `{subject, action, resource, context}` →
//!   `{decision, context}`;
//! - `POST /access/v1/evaluations`: `evaluations: [...]` with top-level defaults for subject,
//!   action, resource and context, and `options.evaluations_semantic` (`execute_all`,
//!   `deny_on_first_deny`, `permit_on_first_permit`) → `{evaluations: [{decision, context}]}`.
//!
//! How AuthZEN's shapes map onto the attribute model:
//!
//! - `subject: {type, id, properties}` — without properties, the entity `id` the resolver
//!   looks up; with properties, those claims as the caller asserts them, plus `id` and `type`
//!   (only callers the decision point trusts may ask at all);
//! - `action: {name}` — the action;
//! - `resource: {type, id, properties: {attribute_values: [FQN, ...]}}` — the resource;
//! - the answer's `context` says why a denial was made (`reason`, `failed_definitions`) and
//!   carries the resource's `obligations`.
//!
//! A malformed body or a broken limit is answered `400` with `{"error", "reason"}`; a resolver
//! that is down, `503`. Who may ask (`401`, `403`) is decided in front of this router, by the
//! same Warden layers as every other call (`warden pdp` does).

use axum::{
    Router,
    body::Bytes,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::{
    decide::{DecisionPoint, MultiResourceRequest, PdpError, ResourceDecision, ResourceInput},
    entity::EntityInput,
};

/// The evaluation path.
pub const EVALUATION_PATH: &str = "/access/v1/evaluation";
/// The batch evaluation path.
pub const EVALUATIONS_PATH: &str = "/access/v1/evaluations";

/// The two endpoints, answering from `point`.
pub fn router(point: DecisionPoint) -> Router {
    let batch = point.clone();
    Router::new()
        .route(
            EVALUATION_PATH,
            post(move |headers: HeaderMap, body: Bytes| {
                let point = point.clone();
                async move { respond(&headers, evaluation(&point, &body).await) }
            }),
        )
        .route(
            EVALUATIONS_PATH,
            post(move |headers: HeaderMap, body: Bytes| {
                let point = batch.clone();
                async move { respond(&headers, evaluations(&point, &body).await) }
            }),
        )
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Subject {
    #[serde(rename = "type", default)]
    kind: String,
    id: String,
    #[serde(default)]
    properties: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Action {
    name: String,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Resource {
    #[serde(rename = "type", default)]
    _kind: String,
    id: String,
    #[serde(default)]
    properties: Map<String, Value>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Evaluation {
    subject: Option<Subject>,
    action: Option<Action>,
    resource: Option<Resource>,
    #[serde(default, rename = "context")]
    _context: Option<Value>,
}

#[derive(Debug, Default, Deserialize)]
struct Batch {
    #[serde(flatten)]
    defaults: Evaluation,
    #[serde(default)]
    evaluations: Vec<Evaluation>,
    #[serde(default)]
    options: Options,
}

#[derive(Debug, Default, Deserialize)]
struct Options {
    #[serde(default)]
    evaluations_semantic: Semantic,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Semantic {
    #[default]
    ExecuteAll,
    DenyOnFirstDeny,
    PermitOnFirstPermit,
}

/// A request that cannot be decided, answered with its status.
#[derive(Debug)]
struct Refusal {
    status: StatusCode,
    error: &'static str,
    reason: String,
}

impl From<PdpError> for Refusal {
    fn from(error: PdpError) -> Self {
        match error {
            PdpError::InvalidArgument { .. } => Self::bad(error.to_string()),
            PdpError::Unavailable(_) => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                error: "unavailable",
                reason: error.to_string(),
            },
        }
    }
}

impl Refusal {
    fn bad(reason: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            error: "invalid_request",
            reason: reason.into(),
        }
    }
}

fn respond(headers: &HeaderMap, answer: Result<Value, Refusal>) -> Response {
    let (status, body) = match answer {
        Ok(body) => (StatusCode::OK, body),
        Err(refusal) => (
            refusal.status,
            json!({"error": refusal.error, "reason": refusal.reason}),
        ),
    };
    let mut response = (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body.to_string(),
    )
        .into_response();
    // AuthZEN asks that a request id be echoed, so callers can correlate.
    if let Some(id) = headers.get("x-request-id") {
        response.headers_mut().insert("x-request-id", id.clone());
    }
    response
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body).map_err(|e| Refusal::bad(format!("body: {e}")))
}

/// One evaluation, completed from `defaults`, as a bulk request.
fn request(
    at: &str,
    evaluation: Evaluation,
    defaults: &Evaluation,
) -> Result<MultiResourceRequest, Refusal> {
    let subject = evaluation
        .subject
        .or_else(|| defaults.subject.clone())
        .ok_or_else(|| Refusal::bad(format!("{at}subject: missing")))?;
    let action = evaluation
        .action
        .or_else(|| defaults.action.clone())
        .ok_or_else(|| Refusal::bad(format!("{at}action: missing")))?;
    let resource = evaluation
        .resource
        .or_else(|| defaults.resource.clone())
        .ok_or_else(|| Refusal::bad(format!("{at}resource: missing")))?;
    let entity = if subject.properties.is_empty() {
        EntityInput::id(subject.id.as_str(), subject.id.as_str())
    } else {
        let mut claims = subject.properties;
        claims.insert("id".into(), Value::String(subject.id.clone()));
        claims.insert("type".into(), Value::String(subject.kind));
        EntityInput::claims(subject.id.as_str(), Value::Object(claims))
    };
    let values = match resource.properties.get("attribute_values") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str().map(Into::into).ok_or_else(|| {
                    Refusal::bad(format!(
                        "{at}resource.properties.attribute_values[{i}]: not a string"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(Refusal::bad(format!(
                "{at}resource.properties.attribute_values: not an array of value FQNs"
            )));
        }
    };
    Ok(MultiResourceRequest {
        entity,
        action: action.name,
        resources: vec![ResourceInput {
            ephemeral_id: resource.id.into(),
            attribute_values: values,
        }],
    })
}

fn answer(decision: &ResourceDecision<'_>) -> Value {
    let mut context = Map::new();
    if let Some(reason) = decision.reason() {
        context.insert("reason".into(), Value::String(reason.into_owned()));
    }
    let failed: Vec<Value> = decision
        .failed_definitions()
        .map(|d| Value::String(d.to_owned()))
        .collect();
    if !failed.is_empty() {
        context.insert("failed_definitions".into(), Value::Array(failed));
    }
    let obligations: Vec<Value> = decision
        .obligations()
        .map(|o| Value::String(o.to_owned()))
        .collect();
    if !obligations.is_empty() {
        context.insert("obligations".into(), Value::Array(obligations));
    }
    if context.is_empty() {
        json!({"decision": decision.permitted()})
    } else {
        json!({"decision": decision.permitted(), "context": context})
    }
}

async fn decide(
    point: &DecisionPoint,
    requests: Vec<MultiResourceRequest>,
) -> Result<Vec<Value>, Refusal> {
    let mut answers = Vec::with_capacity(requests.len());
    let chunk = point.limits().max_bulk_requests.max(1);
    let mut requests = requests.into_iter().peekable();
    while requests.peek().is_some() {
        // Each chunk resolves its distinct subjects once.
        let batch: Vec<_> = requests.by_ref().take(chunk).collect();
        for decisions in point.decide_bulk(&batch).await? {
            let (_, mut each) = decisions
                .iter()
                .next()
                .ok_or_else(|| Refusal::bad("no decision"))?;
            let decision = each.next().ok_or_else(|| Refusal::bad("no decision"))?;
            answers.push(answer(&decision));
        }
    }
    Ok(answers)
}

async fn evaluation(point: &DecisionPoint, body: &[u8]) -> Result<Value, Refusal> {
    let evaluation: Evaluation = parse(body)?;
    let request = request("", evaluation, &Evaluation::default())?;
    let mut answers = decide(point, vec![request]).await?;
    answers.pop().ok_or_else(|| Refusal::bad("no decision"))
}

async fn evaluations(point: &DecisionPoint, body: &[u8]) -> Result<Value, Refusal> {
    let batch: Batch = parse(body)?;
    if batch.evaluations.is_empty() {
        // No list: the top level is one evaluation, answered as such.
        let request = request("", batch.defaults, &Evaluation::default())?;
        let mut answers = decide(point, vec![request]).await?;
        return answers.pop().ok_or_else(|| Refusal::bad("no decision"));
    }
    let max = point.limits().max_evaluations;
    if batch.evaluations.len() > max {
        return Err(Refusal::bad(format!(
            "evaluations: {} given, at most {max}",
            batch.evaluations.len()
        )));
    }
    let requests = batch
        .evaluations
        .into_iter()
        .enumerate()
        .map(|(i, e)| request(&format!("evaluations[{i}]."), e, &batch.defaults))
        .collect::<Result<Vec<_>, _>>()?;
    let mut answers = decide(point, requests).await?;
    let stop = match batch.options.evaluations_semantic {
        Semantic::ExecuteAll => None,
        Semantic::DenyOnFirstDeny => answers.iter().position(|a| a["decision"] == false),
        Semantic::PermitOnFirstPermit => answers.iter().position(|a| a["decision"] == true),
    };
    if let Some(at) = stop {
        answers.truncate(at + 1);
    }
    Ok(json!({"evaluations": answers}))
}
