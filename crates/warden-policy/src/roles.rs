//! The role policy: Temporal's default authorizer, over a method table you can extend.
//!
//! - The health check and `GetSystemInfo` are open (configurable).
//! - An anonymous caller is denied.
//! - Each method has a scope (namespace or cluster) and a required access (read-only, write,
//!   admin). Unknown methods are denied.
//! - The caller's role is the system role for cluster methods (and calls without a
//!   namespace), and `system | namespace role` for namespace methods; namespaces compare
//!   exactly (case-sensitive).
//! - Allowed when that role *as a number* is at least the required one: reader (2) for
//!   read-only, writer (4) for write, admin (8) otherwise. So a worker alone (1) reads nothing,
//!   and a writer (4) also reads — as in Temporal.

use std::{collections::HashMap, fmt};

use serde::Deserialize;
use warden_core::{Answer, AuthzRequest, Decision, Evaluation, Policy, Roles};

/// Whether a method acts on one namespace or the whole cluster.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// One namespace: the call's namespace role counts.
    Namespace,
    /// The whole cluster: only the system role counts.
    Cluster,
}

/// The access a method needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Access {
    /// Reads: needs reader (2).
    ReadOnly,
    /// Writes: needs writer (4).
    Write,
    /// Administers: needs admin (8).
    Admin,
}

impl Access {
    /// The least role, as a number, that grants this access.
    pub const fn required(self) -> Roles {
        match self {
            Self::ReadOnly => Roles::READER,
            Self::Write => Roles::WRITER,
            Self::Admin => Roles::ADMIN,
        }
    }
}

/// A method's scope and required access.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MethodAccess {
    /// Namespace or cluster.
    pub scope: Scope,
    /// What it needs.
    pub access: Access,
}

type Methods = HashMap<Box<str>, MethodAccess, foldhash::fast::RandomState>;

/// Scope and access per `service`/`method`, per-service defaults, and open methods.
#[derive(Clone, Default)]
pub struct MethodTable {
    services: HashMap<Box<str>, Service, foldhash::fast::RandomState>,
}

#[derive(Clone, Default)]
struct Service {
    methods: Methods,
    default: Option<MethodAccess>,
    open: Vec<Box<str>>,
}

impl fmt::Debug for MethodTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.services.iter().map(|(s, v)| (s, v.methods.len())))
            .finish()
    }
}

/// The gRPC health service, open in every table.
pub const HEALTH_SERVICE: &str = "grpc.health.v1.Health";
/// Temporal's workflow service.
pub const WORKFLOW_SERVICE: &str = "temporal.api.workflowservice.v1.WorkflowService";
/// Temporal's operator service.
pub const OPERATOR_SERVICE: &str = "temporal.api.operatorservice.v1.OperatorService";
/// Temporal's admin service (every method cluster-scoped, admin).
pub const ADMIN_SERVICE: &str = "temporal.server.api.adminservice.v1.AdminService";

impl MethodTable {
    /// A table with only the gRPC health check (`Check`, `Watch`) open.
    pub fn new() -> Self {
        Self::default()
            .open(HEALTH_SERVICE, "Check")
            .open(HEALTH_SERVICE, "Watch")
    }

    /// Temporal's own table: WorkflowService and OperatorService method by method, the
    /// AdminService as cluster admin, the health check and `GetSystemInfo` open.
    pub fn temporal() -> Self {
        use Access::{Admin, ReadOnly};
        use Scope::{Cluster, Namespace};
        let mut table = Self::new().open(WORKFLOW_SERVICE, "GetSystemInfo");
        for (method, scope, access) in TEMPORAL_WORKFLOW_SERVICE {
            table = table.method(WORKFLOW_SERVICE, method, *scope, *access);
        }
        for (method, scope, access) in [
            ("AddSearchAttributes", Namespace, Admin),
            ("RemoveSearchAttributes", Namespace, Admin),
            ("ListSearchAttributes", Namespace, ReadOnly),
            ("DeleteNamespace", Namespace, Admin),
            ("AddOrUpdateRemoteCluster", Cluster, Admin),
            ("RemoveRemoteCluster", Cluster, Admin),
            ("ListClusters", Cluster, Admin),
            ("GetNexusEndpoint", Cluster, Admin),
            ("CreateNexusEndpoint", Cluster, Admin),
            ("UpdateNexusEndpoint", Cluster, Admin),
            ("DeleteNexusEndpoint", Cluster, Admin),
            ("ListNexusEndpoints", Cluster, Admin),
        ] {
            table = table.method(OPERATOR_SERVICE, method, scope, access);
        }
        table.service_default(ADMIN_SERVICE, Cluster, Admin)
    }

    /// Sets the scope and access of `service`/`method`.
    #[must_use]
    pub fn method(mut self, service: &str, method: &str, scope: Scope, access: Access) -> Self {
        self.services
            .entry(service.into())
            .or_default()
            .methods
            .insert(method.into(), MethodAccess { scope, access });
        self
    }

    /// Sets the scope and access of every method of `service` not listed by name.
    #[must_use]
    pub fn service_default(mut self, service: &str, scope: Scope, access: Access) -> Self {
        self.services.entry(service.into()).or_default().default =
            Some(MethodAccess { scope, access });
        self
    }

    /// Opens `service`/`method` to everyone, anonymous callers included.
    #[must_use]
    pub fn open(mut self, service: &str, method: &str) -> Self {
        self.services
            .entry(service.into())
            .or_default()
            .open
            .push(method.into());
        self
    }

    /// What `service`/`method` needs: `None` for open methods, `Some(None)` for unknown ones.
    pub fn lookup(&self, service: &str, method: &str) -> Option<Option<MethodAccess>> {
        let Some(entry) = self.services.get(service) else {
            return Some(None);
        };
        if entry.open.iter().any(|m| &**m == method) {
            return None;
        }
        Some(entry.methods.get(method).copied().or(entry.default))
    }

    /// Adds the entries of a config table: `"package.Service/Method" = { scope, access }`.
    pub fn extend_from(
        mut self,
        entries: &HashMap<String, MethodAccess>,
    ) -> Result<Self, MethodPathError> {
        for (path, access) in entries {
            let (service, method) = path
                .split_once('/')
                .filter(|(s, m)| !s.is_empty() && !m.is_empty() && !m.contains('/'))
                .ok_or_else(|| MethodPathError { path: path.clone() })?;
            self = if method == "*" {
                self.service_default(service, access.scope, access.access)
            } else {
                self.method(service, method, access.scope, access.access)
            };
        }
        Ok(self)
    }
}

/// A role table entry whose key is not `package.Service/Method` (or `package.Service/*`).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{path}` is not `package.Service/Method`")]
pub struct MethodPathError {
    /// The key as written.
    pub path: String,
}

/// Temporal's WorkflowService: each method's scope and access, as its frontend declares them
/// (`common/api/metadata.go` of the Temporal server).
const TEMPORAL_WORKFLOW_SERVICE: &[(&str, Scope, Access)] = {
    use Access::{Admin, ReadOnly, Write};
    use Scope::{Cluster, Namespace};
    &[
        ("RegisterNamespace", Namespace, Admin),
        ("DescribeNamespace", Namespace, ReadOnly),
        ("ListNamespaces", Cluster, ReadOnly),
        ("UpdateNamespace", Namespace, Admin),
        ("DeprecateNamespace", Namespace, Admin),
        ("StartWorkflowExecution", Namespace, Write),
        ("GetWorkflowExecutionHistory", Namespace, ReadOnly),
        ("GetWorkflowExecutionHistoryReverse", Namespace, ReadOnly),
        ("PollWorkflowTaskQueue", Namespace, Write),
        ("RespondWorkflowTaskCompleted", Namespace, Write),
        ("RespondWorkflowTaskFailed", Namespace, Write),
        ("PollActivityTaskQueue", Namespace, Write),
        ("RecordActivityTaskHeartbeat", Namespace, Write),
        ("RecordActivityTaskHeartbeatById", Namespace, Write),
        ("RespondActivityTaskCompleted", Namespace, Write),
        ("RespondActivityTaskCompletedById", Namespace, Write),
        ("RespondActivityTaskFailed", Namespace, Write),
        ("RespondActivityTaskFailedById", Namespace, Write),
        ("RespondActivityTaskCanceled", Namespace, Write),
        ("RespondActivityTaskCanceledById", Namespace, Write),
        ("CountActivityExecutions", Namespace, ReadOnly),
        ("CountNexusOperationExecutions", Namespace, ReadOnly),
        ("DeleteActivityExecution", Namespace, Write),
        ("DeleteNexusOperationExecution", Namespace, Write),
        ("DescribeActivityExecution", Namespace, ReadOnly),
        ("DescribeNexusOperationExecution", Namespace, ReadOnly),
        ("PollActivityExecution", Namespace, ReadOnly),
        ("PollNexusOperationExecution", Namespace, ReadOnly),
        ("ListActivityExecutions", Namespace, ReadOnly),
        ("ListNexusOperationExecutions", Namespace, ReadOnly),
        ("RequestCancelActivityExecution", Namespace, Write),
        ("RequestCancelNexusOperationExecution", Namespace, Write),
        ("StartActivityExecution", Namespace, Write),
        ("StartNexusOperationExecution", Namespace, Write),
        ("TerminateActivityExecution", Namespace, Write),
        ("TerminateNexusOperationExecution", Namespace, Write),
        ("PollNexusTaskQueue", Namespace, Write),
        ("RespondNexusTaskCompleted", Namespace, Write),
        ("RespondNexusTaskFailed", Namespace, Write),
        ("RequestCancelWorkflowExecution", Namespace, Write),
        ("SignalWorkflowExecution", Namespace, Write),
        ("SignalWithStartWorkflowExecution", Namespace, Write),
        ("ResetWorkflowExecution", Namespace, Write),
        ("TerminateWorkflowExecution", Namespace, Write),
        ("DeleteWorkflowExecution", Namespace, Write),
        ("ListOpenWorkflowExecutions", Namespace, ReadOnly),
        ("ListClosedWorkflowExecutions", Namespace, ReadOnly),
        ("ListWorkflowExecutions", Namespace, ReadOnly),
        ("ListArchivedWorkflowExecutions", Namespace, ReadOnly),
        ("ScanWorkflowExecutions", Namespace, ReadOnly),
        ("CountWorkflowExecutions", Namespace, ReadOnly),
        ("GetSearchAttributes", Cluster, ReadOnly),
        ("RespondQueryTaskCompleted", Namespace, Write),
        ("ResetStickyTaskQueue", Namespace, Write),
        ("ShutdownWorker", Namespace, Write),
        ("ExecuteMultiOperation", Namespace, Write),
        ("QueryWorkflow", Namespace, ReadOnly),
        ("DescribeWorkflowExecution", Namespace, ReadOnly),
        ("DescribeTaskQueue", Namespace, ReadOnly),
        ("GetClusterInfo", Cluster, ReadOnly),
        ("GetSystemInfo", Cluster, ReadOnly),
        ("ListTaskQueuePartitions", Namespace, ReadOnly),
        ("CreateSchedule", Namespace, Write),
        ("DescribeSchedule", Namespace, ReadOnly),
        ("UpdateSchedule", Namespace, Write),
        ("PatchSchedule", Namespace, Write),
        ("ListScheduleMatchingTimes", Namespace, ReadOnly),
        ("DeleteSchedule", Namespace, Write),
        ("ListSchedules", Namespace, ReadOnly),
        ("CountSchedules", Namespace, ReadOnly),
        ("UpdateWorkerBuildIdCompatibility", Namespace, Write),
        ("GetWorkerBuildIdCompatibility", Namespace, ReadOnly),
        ("UpdateWorkerVersioningRules", Namespace, Write),
        ("GetWorkerVersioningRules", Namespace, ReadOnly),
        ("GetWorkerTaskReachability", Namespace, ReadOnly),
        ("UpdateWorkflowExecution", Namespace, Write),
        ("PollWorkflowExecutionUpdate", Namespace, ReadOnly),
        ("StartBatchOperation", Namespace, Write),
        ("StopBatchOperation", Namespace, Write),
        ("DescribeBatchOperation", Namespace, ReadOnly),
        ("ListBatchOperations", Namespace, ReadOnly),
        ("UpdateActivityOptions", Namespace, Write),
        ("PauseActivity", Namespace, Write),
        ("UnpauseActivity", Namespace, Write),
        ("ResetActivity", Namespace, Write),
        ("UpdateActivityExecutionOptions", Namespace, Write),
        ("PauseActivityExecution", Namespace, Write),
        ("UnpauseActivityExecution", Namespace, Write),
        ("ResetActivityExecution", Namespace, Write),
        ("UpdateWorkflowExecutionOptions", Namespace, Write),
        ("DescribeDeployment", Namespace, ReadOnly),
        ("ListDeployments", Namespace, ReadOnly),
        ("GetDeploymentReachability", Namespace, ReadOnly),
        ("GetCurrentDeployment", Namespace, ReadOnly),
        ("SetCurrentDeployment", Namespace, Write),
        ("DescribeWorkerDeploymentVersion", Namespace, ReadOnly),
        ("DescribeWorkerDeployment", Namespace, ReadOnly),
        ("SetWorkerDeploymentCurrentVersion", Namespace, Write),
        ("SetWorkerDeploymentRampingVersion", Namespace, Write),
        ("SetWorkerDeploymentManager", Namespace, Write),
        ("CreateWorkerDeployment", Namespace, Write),
        ("DeleteWorkerDeployment", Namespace, Write),
        ("CreateWorkerDeploymentVersion", Namespace, Write),
        (
            "UpdateWorkerDeploymentVersionComputeConfig",
            Namespace,
            Write,
        ),
        (
            "ValidateWorkerDeploymentVersionComputeConfig",
            Namespace,
            ReadOnly,
        ),
        ("DeleteWorkerDeploymentVersion", Namespace, Write),
        ("UpdateWorkerDeploymentVersionMetadata", Namespace, Write),
        ("ListWorkerDeployments", Namespace, ReadOnly),
        ("CreateWorkflowRule", Namespace, Write),
        ("DescribeWorkflowRule", Namespace, ReadOnly),
        ("DeleteWorkflowRule", Namespace, Write),
        ("ListWorkflowRules", Namespace, ReadOnly),
        ("TriggerWorkflowRule", Namespace, Write),
        ("RecordWorkerHeartbeat", Namespace, Write),
        ("ListWorkers", Namespace, ReadOnly),
        ("CountWorkers", Namespace, ReadOnly),
        ("DescribeWorker", Namespace, ReadOnly),
        ("UpdateTaskQueueConfig", Namespace, Write),
        ("FetchWorkerConfig", Namespace, ReadOnly),
        ("UpdateWorkerConfig", Namespace, Write),
        ("PauseWorkflowExecution", Namespace, Write),
        ("UnpauseWorkflowExecution", Namespace, Write),
    ]
};

/// Temporal's default authorizer; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct RolePolicy {
    table: MethodTable,
}

/// The decider id of [`RolePolicy`] decisions.
pub const ROLE_POLICY: &str = "roles";

/// The decider id, allocated once: every decision shares it instead of allocating its own.
fn decider() -> std::sync::Arc<str> {
    static ROLES: std::sync::LazyLock<std::sync::Arc<str>> =
        std::sync::LazyLock::new(|| std::sync::Arc::from(ROLE_POLICY));
    std::sync::Arc::clone(&ROLES)
}

impl RolePolicy {
    /// Decides over `table`.
    pub fn new(table: MethodTable) -> Self {
        Self { table }
    }

    /// Decides as Temporal's default authorizer does.
    pub fn temporal() -> Self {
        Self::new(MethodTable::temporal())
    }

    /// The decision for `request`.
    pub fn decide(&self, request: &AuthzRequest) -> Decision {
        let operation = &request.operation;
        let Some(needed) = self.table.lookup(&operation.service, &operation.method) else {
            return Decision::allow(decider()).with_reason("open method");
        };
        let claims = &request.subject;
        if claims.is_anonymous() {
            return Decision::deny(decider(), "no claims");
        }
        let Some(needed) = needed else {
            return Decision::deny(
                decider(),
                format!(
                    "{}/{} is not in the method table",
                    operation.service, operation.method
                ),
            );
        };
        let namespace = match needed.scope {
            Scope::Cluster => None,
            Scope::Namespace => operation.namespace.as_deref().filter(|n| !n.is_empty()),
        };
        let role = match namespace {
            None => claims.system,
            Some(namespace) => {
                claims.system
                    | claims
                        .namespaces
                        .get(namespace)
                        .copied()
                        .unwrap_or_default()
            }
        };
        let required = needed.access.required();
        if role.at_least(required) {
            return Decision::allow(decider());
        }
        // One allocation: the reason is formatted once, straight into its string.
        let reason = match namespace {
            Some(namespace) => {
                format!(
                    "needs the {required} role in namespace `{namespace}`; the caller has {role}"
                )
            }
            None => format!("needs the {required} role system-wide; the caller has {role}"),
        };
        Decision::deny(decider(), reason)
    }
}

impl Policy for RolePolicy {
    fn reads_metadata(&self) -> bool {
        false
    }

    fn deterministic(&self) -> bool {
        true
    }

    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        Answer::Ready(Ok(self.decide(request)))
    }
}
