//! [`RemotePolicy`]: a Warden policy that asks a decision point over gRPC.
//!
//! Each call is sent as one `GetDecision`: the caller's claims as the entity (their
//! [`representation`]), an action (the operation kind, or a fixed
//! name), and a resource whose attribute values are built from templates over the operation
//! (`https://temporal.io/attr/namespace/value/{namespace}`). The question goes through
//! tower's timeout (default 200 ms, covering every attempt), a retry of failed attempts that
//! never reached an answer (decisions are reads, so asking again is safe), and a concurrency
//! limit. A timeout, an error or an unreachable point is a policy error, which Warden answers
//! with `UNAVAILABLE`: nothing undecided gets through. Wrap it in Warden's decision cache
//! (`type = "cached"` in a config) to keep answers for a TTL.

use std::{borrow::Cow, sync::Arc, time::Duration};

use serde::Deserialize;
use tonic::{
    Code, Status,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};
use tower::{
    ServiceBuilder, ServiceExt, retry, timeout::error::Elapsed, util::BoxCloneSyncService,
};
use warden_core::{
    Answer, AuthzRequest, Decision, Obligation, Operation, Policy,
    policy::{Evaluation, PolicyError},
};

use crate::{
    entity::representation,
    proto::{
        self, Entity, GetDecisionRequest, Resource, decision_service_client::DecisionServiceClient,
    },
    service::json_struct,
};

/// How a [`RemotePolicy`] reaches its decision point and what it asks.
///
/// ```toml
/// [policies.pdp]
/// type = "remote"
/// endpoint = "http://127.0.0.1:8181"
/// timeout_ms = 200            # every attempt included
/// retries = 1                 # more attempts when one never reached an answer
/// concurrency = 64            # questions in flight at once
/// action = "access"           # default: the operation kind (`signal`, `query`, ...)
/// resource = ["https://temporal.io/attr/namespace/value/{namespace}",
///             "https://temporal.io/attr/workflow_type/value/{workflow_type}"]
/// token_file = "pdp-token"    # presented as `authorization: Bearer …` (optional)
/// ```
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// The decision point's gRPC address (`http://host:port`).
    pub endpoint: String,
    /// The whole question's deadline, retries included (default 200 ms).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Further attempts after one that failed without an answer (default 1).
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Questions in flight at once; more wait (default 64).
    #[serde(default = "default_concurrency")]
    pub concurrency: usize,
    /// The action asked; default: the operation kind's name.
    #[serde(default)]
    pub action: Option<String>,
    /// The resource's attribute value templates. Placeholders: `{kind}`, `{service}`,
    /// `{method}`, `{namespace}`, `{instance}`, `{workflow_type}`, `{task_queue}`, `{name}`.
    /// A value whose placeholder the call does not have is left out.
    pub resource: Vec<String>,
    /// A file holding the bearer token this policy presents to the decision point (which
    /// authenticates whoever asks); relative to the config file.
    #[serde(default)]
    pub token_file: Option<std::path::PathBuf>,
}

fn default_timeout_ms() -> u64 {
    200
}

fn default_retries() -> u32 {
    1
}

fn default_concurrency() -> usize {
    64
}

/// A template cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RemoteError {
    /// The endpoint is not a URI.
    #[error("endpoint `{0}`: {1}")]
    Endpoint(String, String),
    /// A resource template names an unknown placeholder or is unbalanced.
    #[error("resource[{index}] `{template}`: {reason}")]
    Template {
        /// Which template.
        index: usize,
        /// The template.
        template: String,
        /// What is wrong.
        reason: String,
    },
    /// The token file cannot be read or is not a header value.
    #[error("token_file `{0}`: {1}")]
    Token(String, String),
    /// No resource template: nothing would be asked about.
    #[error("resource: at least one attribute value template is needed")]
    NoResource,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Kind,
    Service,
    Method,
    Namespace,
    Instance,
    WorkflowType,
    TaskQueue,
    Name,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Field),
}

#[derive(Debug, Clone)]
struct Template(Vec<Part>);

impl Template {
    fn parse(index: usize, text: &str) -> Result<Self, RemoteError> {
        let bad = |reason: &str| RemoteError::Template {
            index,
            template: text.to_owned(),
            reason: reason.to_owned(),
        };
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_owned()));
            }
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| bad("`{` without `}`"))?
                + open;
            let field = match &rest[open + 1..close] {
                "kind" => Field::Kind,
                "service" => Field::Service,
                "method" => Field::Method,
                "namespace" => Field::Namespace,
                "instance" => Field::Instance,
                "workflow_type" => Field::WorkflowType,
                "task_queue" => Field::TaskQueue,
                "name" => Field::Name,
                _ => {
                    return Err(bad(
                        "unknown placeholder (known: kind, service, method, namespace, instance, workflow_type, task_queue, name)",
                    ));
                }
            };
            parts.push(Part::Field(field));
            rest = &rest[close + 1..];
        }
        if rest.contains('}') {
            return Err(bad("`}` without `{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        Ok(Self(parts))
    }

    /// The value for `operation`, or `None` when it lacks a field the template names.
    fn fill(&self, operation: &Operation) -> Option<String> {
        let mut out = String::new();
        for part in &self.0 {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Field(field) => out.push_str(match field {
                    Field::Kind => operation.kind.as_str(),
                    Field::Service => &operation.service,
                    Field::Method => &operation.method,
                    Field::Namespace => operation.namespace.as_deref()?,
                    Field::Instance => operation.instance_id.as_deref()?,
                    Field::WorkflowType => operation.workflow_type.as_deref()?,
                    Field::TaskQueue => operation.task_queue.as_deref()?,
                    Field::Name => operation.name.as_deref()?,
                }),
            }
        }
        Some(out)
    }
}

type Ask = BoxCloneSyncService<GetDecisionRequest, proto::GetDecisionResponse, tower::BoxError>;

/// Asks a decision point; see the [module docs](self).
#[derive(Clone)]
pub struct RemotePolicy {
    name: Arc<str>,
    ask: Ask,
    action: Option<Arc<str>>,
    resource: Arc<[Template]>,
    timeout: Duration,
}

impl std::fmt::Debug for RemotePolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemotePolicy")
            .field("name", &self.name)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Retries an attempt that ended without an answer from the decision point.
#[derive(Clone, Copy, Debug)]
struct Attempts(u32);

impl retry::Policy<GetDecisionRequest, proto::GetDecisionResponse, Status> for Attempts {
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _: &mut GetDecisionRequest,
        result: &mut Result<proto::GetDecisionResponse, Status>,
    ) -> Option<Self::Future> {
        match result {
            // Unreachable, reset, refused: the point never answered. Any other status is its
            // answer, and asking again would only repeat it.
            Err(status) if status.code() == Code::Unavailable && self.0 > 0 => {
                self.0 -= 1;
                Some(std::future::ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &GetDecisionRequest) -> Option<GetDecisionRequest> {
        Some(request.clone())
    }
}

impl RemotePolicy {
    /// A policy named `name` asking the decision point `config` describes. The connection is
    /// made on first use (and remade after failures), so this needs no running point; it must
    /// be called inside a Tokio runtime.
    pub fn new(name: impl Into<Arc<str>>, config: &RemoteConfig) -> Result<Self, RemoteError> {
        let endpoint = Channel::from_shared(config.endpoint.clone())
            .map_err(|e| RemoteError::Endpoint(config.endpoint.clone(), e.to_string()))?
            .connect_timeout(Duration::from_millis(config.timeout_ms.max(1)))
            .tcp_nodelay(true);
        Self::with_channel(name, config, endpoint.connect_lazy())
    }

    /// As [`RemotePolicy::new`], over a channel you built (TLS, a custom connector).
    pub fn with_channel(
        name: impl Into<Arc<str>>,
        config: &RemoteConfig,
        channel: Channel,
    ) -> Result<Self, RemoteError> {
        if config.resource.is_empty() {
            return Err(RemoteError::NoResource);
        }
        let resource = config
            .resource
            .iter()
            .enumerate()
            .map(|(i, t)| Template::parse(i, t))
            .collect::<Result<Vec<_>, _>>()?;
        let token = match &config.token_file {
            Some(path) => {
                let bad = |e: &dyn std::fmt::Display| {
                    RemoteError::Token(path.display().to_string(), e.to_string())
                };
                let token = std::fs::read_to_string(path).map_err(|e| bad(&e))?;
                let value: MetadataValue<Ascii> = format!("Bearer {}", token.trim())
                    .parse()
                    .map_err(|e| bad(&e))?;
                Some(value)
            }
            None => None,
        };
        let client = DecisionServiceClient::new(channel);
        let call = tower::service_fn(move |request: GetDecisionRequest| {
            let mut client = client.clone();
            let mut request = tonic::Request::new(request);
            if let Some(token) = &token {
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
            }
            async move {
                client
                    .get_decision(request)
                    .await
                    .map(tonic::Response::into_inner)
            }
        });
        let timeout = Duration::from_millis(config.timeout_ms.max(1));
        let ask = ServiceBuilder::new()
            .timeout(timeout)
            .retry(Attempts(config.retries))
            .concurrency_limit(config.concurrency.max(1))
            .service(call);
        Ok(Self {
            name: name.into(),
            ask: BoxCloneSyncService::new(ask),
            action: config.action.as_deref().map(Arc::from),
            resource: resource.into(),
            timeout,
        })
    }

    fn question(&self, request: &AuthzRequest) -> GetDecisionRequest {
        let operation = &request.operation;
        let entity = match representation(&request.subject) {
            serde_json::Value::Object(map) => json_struct(&map),
            _ => prost_types::Struct::default(),
        };
        GetDecisionRequest {
            entity: Some(Entity {
                ephemeral_id: request.subject.subject.clone().unwrap_or_default(),
                kind: Some(proto::entity::Kind::Claims(entity)),
            }),
            action: self
                .action
                .as_deref()
                .unwrap_or(operation.kind.as_str())
                .to_owned(),
            resource: Some(Resource {
                ephemeral_id: format!("{}/{}", operation.service, operation.method),
                attribute_values: self
                    .resource
                    .iter()
                    .filter_map(|t| t.fill(operation))
                    .collect(),
            }),
        }
    }
}

/// The decision point's answer as a Warden decision.
fn decision(name: &Arc<str>, answer: proto::GetDecisionResponse) -> Result<Decision, PolicyError> {
    let answer = answer
        .decision
        .ok_or_else(|| PolicyError::new("the decision point answered no decision"))?;
    let decision = match proto::Decision::try_from(answer.decision) {
        Ok(proto::Decision::Permit) => Decision::allow(Arc::clone(name)),
        Ok(proto::Decision::Deny) => {
            let reason: Cow<'static, str> = if !answer.reason.is_empty() {
                answer.reason.into()
            } else if !answer.failed_definitions.is_empty() {
                format!(
                    "not entitled under {}",
                    answer.failed_definitions.join(", ")
                )
                .into()
            } else {
                "denied by the decision point".into()
            };
            Decision::deny(Arc::clone(name), reason)
        }
        _ => {
            return Err(PolicyError::new(format!(
                "the decision point answered an unknown decision ({})",
                answer.decision
            )));
        }
    };
    Ok(answer
        .required_obligations
        .into_iter()
        .fold(decision, |decision, id| {
            decision.with_obligation(Obligation {
                id: id.into(),
                value: serde_json::Value::Null,
            })
        }))
}

fn failure(timeout: Duration, error: &tower::BoxError) -> PolicyError {
    if error.is::<Elapsed>() {
        PolicyError::timed_out(timeout)
    } else if let Some(status) = error.downcast_ref::<Status>() {
        PolicyError::unavailable(format!(
            "decision point: {:?}: {}",
            status.code(),
            status.message()
        ))
    } else {
        PolicyError::unavailable(format!("decision point: {error}"))
    }
}

impl Policy for RemotePolicy {
    /// The decision reads only the claims and the operation.
    fn reads_metadata(&self) -> bool {
        false
    }

    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        let question = self.question(request);
        let ask = self.ask.clone();
        let name = Arc::clone(&self.name);
        let timeout = self.timeout;
        Answer::pending(async move {
            match ask.oneshot(question).await {
                Ok(answer) => decision(&name, answer),
                Err(error) => Err(failure(timeout, &error)),
            }
        })
    }
}
