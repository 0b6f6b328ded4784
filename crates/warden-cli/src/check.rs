//! `warden check`: evaluate one request against a policy config and explain the decision.
//!
//! With a policy config (`[policies.*]` and `[authorize]` only), the request names the
//! operation by hand (kind, targets, arguments) and the caller's claims. With a proxy config,
//! the call is given as the proxy would receive it and runs through the proxy's own stack
//! (see `explain`).

use std::{
    collections::{BTreeMap, BTreeSet},
    path::Path,
    sync::Arc,
};

use serde::Deserialize;
use serde_json::{Map, Value};
use warden_core::{
    AuthzRequest, Claims, Decision, Effect, KindSet, Operation, OperationKind, Roles, Text,
    instances::{InstanceKey, InstanceStore, MemoryInstanceStore, SharedInstanceStore},
};
use warden_policy::config::PoliciesConfig;
use warden_tower::{Code, Engine};

/// The config file `warden check` reads: named policies and which decide each kind.
pub(crate) type CheckConfig = PoliciesConfig;

/// The request to check (JSON).
///
/// ```json
/// {
///   "subject": { "sub": "alice", "namespaces": { "orders": "writer" }, "privileges": ["orders.approve"] },
///   "method": "/temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution",
///   "kind": "signal", "namespace": "orders", "instance": "order-1", "name": "approve",
///   "args": { "amount": 250 },
///   "instance_state": { "initiator": "alice", "participants": ["bob"] }
/// }
/// ```
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CheckRequest {
    /// Who calls; absent: an anonymous caller.
    #[serde(default)]
    pub(crate) subject: Option<Subject>,
    /// `/package.Service/Method`.
    pub(crate) method: String,
    /// The operation kind (`execute`, `signal`, `query`, …).
    pub(crate) kind: Option<String>,
    /// Further kinds the call also performs (`["signal"]` for signal-with-start).
    #[serde(default)]
    pub(crate) also: Vec<String>,
    /// The namespace.
    #[serde(default)]
    pub(crate) namespace: Option<String>,
    /// The instance (workflow id).
    #[serde(default)]
    pub(crate) instance: Option<String>,
    /// The run id.
    #[serde(default)]
    pub(crate) run: Option<String>,
    /// The workflow type.
    #[serde(default)]
    pub(crate) workflow_type: Option<String>,
    /// The task queue.
    #[serde(default)]
    pub(crate) task_queue: Option<String>,
    /// The operation name (signal name, query type, update name).
    #[serde(default)]
    pub(crate) name: Option<String>,
    /// The decoded arguments.
    #[serde(default)]
    pub(crate) args: Option<Value>,
    /// What the instance store knows of the instance, for instance-level policies.
    #[serde(default)]
    pub(crate) instance_state: Option<InstanceState>,
}

/// The caller's claims.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Subject {
    /// The subject id.
    pub(crate) sub: String,
    /// The system role(s), `|`-joined.
    #[serde(default)]
    pub(crate) system: Option<String>,
    /// Roles per namespace.
    #[serde(default)]
    pub(crate) namespaces: BTreeMap<String, String>,
    /// Privileges.
    #[serde(default)]
    pub(crate) privileges: BTreeSet<String>,
    /// Groups.
    #[serde(default)]
    pub(crate) groups: BTreeSet<String>,
    /// Attributes.
    #[serde(default)]
    pub(crate) attributes: Map<String, Value>,
}

/// The instance's recorded initiator and participants.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct InstanceState {
    /// Who started it.
    #[serde(default)]
    pub(crate) initiator: Option<String>,
    /// Who takes part.
    #[serde(default)]
    pub(crate) participants: Vec<String>,
}

fn roles(spec: &str) -> Result<Roles, String> {
    Roles::parse(spec).map_err(|e| e.to_string())
}

fn kind(name: &str) -> Result<OperationKind, String> {
    name.parse()
        .map_err(|_| format!("unknown operation kind `{name}`"))
}

impl CheckRequest {
    fn claims(&self) -> Result<Claims, String> {
        let Some(subject) = &self.subject else {
            return Ok(Claims::anonymous());
        };
        let mut claims = Claims::for_subject(&subject.sub);
        if let Some(system) = &subject.system {
            claims.system = roles(system)?;
        }
        for (namespace, spec) in &subject.namespaces {
            claims.namespaces.insert(namespace.clone(), roles(spec)?);
        }
        claims.privileges = subject.privileges.clone();
        claims.groups = subject.groups.clone();
        claims.attributes = subject.attributes.clone();
        Ok(claims)
    }

    fn operation(&self) -> Result<Operation, String> {
        let (service, method) = split_method(&self.method)?;
        let kind_name = self.kind.as_deref().ok_or(
            "the request needs a `kind` (a policy config has no service map to classify the method with; a proxy config does)",
        )?;
        let mut op = Operation::new(kind(kind_name)?, service, method);
        for also in &self.also {
            op = op.also(kind(also)?);
        }
        op.namespace = self.namespace.as_deref().map(Text::new);
        op.instance_id = self.instance.as_deref().map(Text::new);
        op.run_id = self.run.as_deref().map(Text::new);
        op.workflow_type = self.workflow_type.as_deref().map(Text::new);
        op.task_queue = self.task_queue.as_deref().map(Text::new);
        op.name = self.name.as_deref().map(Text::new);
        if let Some(args) = &self.args {
            op = op.with_args(args.clone());
        }
        Ok(op)
    }
}

/// The outcome of a check.
#[derive(Debug)]
pub(crate) struct Outcome {
    /// The final decision.
    pub(crate) decision: Decision,
    /// The gRPC status a refused call gets.
    pub(crate) code: Option<Code>,
    /// Each configured policy's own decision (or error), in order.
    pub(crate) policies: Vec<(String, Result<Decision, String>)>,
    /// The kind that selected the policies.
    pub(crate) kind: OperationKind,
    /// The message a refused call gets, exactly as the proxy sends it (proxy configs).
    pub(crate) message: Option<String>,
    /// The operation the call was classified as (proxy configs).
    pub(crate) operation: Option<Arc<Operation>>,
    /// Who the mappers said the caller is (proxy configs).
    pub(crate) subject: Option<String>,
}

/// A config file's parse error, located.
pub(crate) fn toml_error(path: &Path, error: &toml::de::Error) -> String {
    format!("{}: {}", path.display(), error.to_string().trim_end())
}

/// The service and method of a `/package.Service/Method` path.
pub(crate) fn split_method(path: &str) -> Result<(&str, &str), String> {
    path.strip_prefix('/')
        .and_then(|p| p.split_once('/'))
        .filter(|(s, m)| !s.is_empty() && !m.is_empty())
        .ok_or_else(|| format!("method `{path}` is not `/package.Service/Method`"))
}

/// Records what `state` says about `operation`'s instance in `store`.
pub(crate) async fn record_state(
    store: &MemoryInstanceStore,
    operation: &Operation,
    state: &InstanceState,
) -> Result<(), String> {
    let Some(instance) = &operation.instance_id else {
        return Ok(());
    };
    let key = InstanceKey::new(
        operation.namespace.as_deref().unwrap_or_default(),
        instance.as_str(),
    );
    if let Some(initiator) = &state.initiator {
        store
            .record_initiator(&key, initiator)
            .await
            .map_err(|e| e.to_string())?;
    }
    for participant in &state.participants {
        store
            .add_participant(&key, participant)
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// Loads `config` (TOML) and evaluates `request` (JSON) against it.
pub(crate) fn check(config_path: &Path, config: &str, request: &str) -> Result<Outcome, String> {
    let config: CheckConfig = toml::from_str(config).map_err(|e| toml_error(config_path, &e))?;
    let request: CheckRequest =
        serde_json::from_str(request).map_err(|e| format!("the request: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let store = MemoryInstanceStore::new();
        let operation = request.operation()?;
        if let Some(state) = &request.instance_state {
            record_state(&store, &operation, state).await?;
        }
        let store: SharedInstanceStore = Arc::new(store);
        let base = config_path.parent().unwrap_or(Path::new("."));
        let built = config
            .build(base, Some(&store))
            .map_err(|e| e.to_string())?;
        let kind = operation.kind;
        let authz = AuthzRequest::new(request.claims()?, operation);
        let mut policies = Vec::new();
        if let Some((names, _)) = built.for_kind(kind) {
            for name in names {
                if let Some(policy) = built.named.get(name) {
                    let decision = policy.evaluate(&authz).await.map_err(|e| e.to_string());
                    policies.push((name.clone(), decision));
                }
            }
        }
        // The verdict comes from the engine `warden proxy` builds from the same file: the same
        // combination, fallback, timeouts and failure handling.
        let mut engine = Engine::builder();
        for (kind, policy) in built.kinds() {
            engine = engine.kinds(KindSet::one(kind), Arc::clone(policy));
        }
        let (decision, code) = match engine.build().authorize(&authz).await {
            Ok(decision) => (decision, None),
            Err(rejection) => {
                let decision = rejection
                    .decision()
                    .cloned()
                    .unwrap_or_else(|| Decision::deny("error", rejection.message().to_owned()));
                (decision, Some(rejection.code()))
            }
        };
        Ok(Outcome {
            decision,
            code,
            policies,
            kind,
            message: None,
            operation: None,
            subject: None,
        })
    })
}

fn describe(decision: &Decision) -> String {
    let effect = match decision.effect() {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
        Effect::NotApplicable => "not applicable",
    };
    match decision.reason() {
        Some(reason) => format!("{effect} by {} ({reason})", decision.decider()),
        None => format!("{effect} by {}", decision.decider()),
    }
}

impl Outcome {
    /// A readable explanation.
    pub(crate) fn render(&self) -> String {
        let verdict = if self.decision.is_allowed() {
            "ALLOW"
        } else {
            "DENY"
        };
        let mut out = format!("{verdict}: {}\n", describe(&self.decision));
        if let Some(code) = self.code {
            out.push_str(&format!("status: {}\n", code.as_str().to_uppercase()));
        }
        if let Some(message) = &self.message {
            out.push_str(&format!("message: {message}\n"));
        }
        if let Some(subject) = &self.subject {
            out.push_str(&format!("caller: {subject}\n"));
        }
        if let Some(op) = &self.operation {
            out.push_str(&format!("operation: {}\n", operation_line(op)));
        }
        out.push_str(&format!("policies for `{}`:\n", self.kind.as_str()));
        if self.policies.is_empty() {
            out.push_str("  (none)\n");
        }
        for (name, decision) in &self.policies {
            let line = match decision {
                Ok(decision) => describe(decision),
                Err(error) => format!("error: {error}"),
            };
            out.push_str(&format!("  {name}: {line}\n"));
        }
        out
    }

    /// The outcome as JSON.
    pub(crate) fn json(&self) -> Value {
        let one = |d: &Decision| {
            serde_json::json!({
                "effect": d.effect().as_str(),
                "decider": d.decider(),
                "reason": d.reason(),
            })
        };
        serde_json::json!({
            "allowed": self.decision.is_allowed(),
            "decision": one(&self.decision),
            "status": self.code.map(|c| c.as_str()),
            "message": self.message,
            "caller": self.subject,
            "operation": self.operation.as_deref().map(operation_json),
            "kind": self.kind.as_str(),
            "policies": self.policies.iter().map(|(name, d)| match d {
                Ok(d) => serde_json::json!({ "name": name, "decision": one(d) }),
                Err(e) => serde_json::json!({ "name": name, "error": e }),
            }).collect::<Vec<_>>(),
        })
    }
}

/// One line naming the operation and its targets.
fn operation_line(op: &Operation) -> String {
    let mut line = format!("{} {}/{}", op.kind.as_str(), op.service, op.method);
    let targets = [
        ("namespace", op.namespace.as_deref()),
        ("instance", op.instance_id.as_deref()),
        ("workflow_type", op.workflow_type.as_deref()),
        ("task_queue", op.task_queue.as_deref()),
        ("name", op.name.as_deref()),
    ];
    for (label, value) in targets {
        if let Some(value) = value {
            line.push_str(&format!(" {label}={value}"));
        }
    }
    if let Some(args) = op.args.get() {
        line.push_str(&format!(" args={args}"));
    }
    line
}

fn operation_json(op: &Operation) -> Value {
    serde_json::json!({
        "kind": op.kind.as_str(),
        "also": op.also.iter().map(|k| k.as_str()).collect::<Vec<_>>(),
        "service": &*op.service,
        "method": &*op.method,
        "namespace": op.namespace.as_deref(),
        "instance": op.instance_id.as_deref(),
        "workflow_type": op.workflow_type.as_deref(),
        "task_queue": op.task_queue.as_deref(),
        "name": op.name.as_deref(),
        "args": op.args.get(),
    })
}
