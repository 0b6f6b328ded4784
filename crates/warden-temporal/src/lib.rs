//! Warden's Temporal preset: an [`OperationMap`] for Temporal's
//! `temporal.api.workflowservice.v1.WorkflowService` and
//! `temporal.api.operatorservice.v1.OperatorService`, built on the prost types of the published
//! `temporalio-protos` crate.
//!
//! Every method is classified:
//!
//! | kind | methods |
//! | --- | --- |
//! | Execute | start workflow; signal-with-start (also Signal); update-with-start (`ExecuteMultiOperation`, also Update); standalone activity and Nexus operation starts |
//! | Signal | signal |
//! | Query | query |
//! | Update | update, poll-update, workflow options, pause/unpause, activity options/pause/reset |
//! | Cancel | request-cancel (workflows, activities, Nexus operations) |
//! | Terminate | terminate, reset, delete |
//! | Read | describe, history, list, count, scan, search attributes, cluster and system info |
//! | Worker | poll and respond (workflow, activity, query, Nexus tasks), heartbeats, sticky queues |
//! | Admin | namespaces, schedules, batch operations, worker versioning and deployments, workflow rules, task queue and worker config, the operator service |
//!
//! Namespace, workflow id, run id, workflow type, task queue, and the signal name, query type
//! or update name are extracted. Payloads with `json/plain` encoding become the arguments,
//! as a JSON array (a rule reads the first argument's `amount` at `/0/amount`). Calls with
//! payloads in any other encoding carry opaque arguments, which no allow-rule predicate
//! accepts.
//!
//! [`TemporalResponder`] answers denials as Temporal's frontend does (`Request unauthorized.`
//! with a `PermissionDeniedFailure` detail), so SDKs and the CLI report a permission error.
//!
//! With the `client` feature, [`client::Guardrail`] runs the same policies inside a
//! `temporalio-client` process, so a denied call never leaves it.
//!
//! Each method's scope and access (namespace or cluster; read-only, write or admin) come from
//! `warden_policy::roles::MethodTable::temporal()`, as Temporal's own frontend defines them.

#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "passport")]
pub mod passport;
mod responder;

pub use responder::{TemporalResponder, UNAUTHORIZED};
use temporalio_protos::temporal::api::{
    common::v1::{Payload, Payloads, WorkflowExecution},
    operatorservice::v1 as op_svc,
    workflowservice::v1 as wf,
};
use warden_core::{Args, Operation, OperationKind};
use warden_tower::map::{OperationMap, OperationMapBuilder};

/// Temporal's workflow service.
pub const WORKFLOW_SERVICE: &str = "temporal.api.workflowservice.v1.WorkflowService";
/// Temporal's operator service.
pub const OPERATOR_SERVICE: &str = "temporal.api.operatorservice.v1.OperatorService";

/// The encoding whose payloads Warden decodes into arguments.
const JSON_PLAIN: &[u8] = b"json/plain";

/// The arguments of `payloads`: a JSON array when every payload is `json/plain`, opaque
/// otherwise, none when there are none.
pub fn payload_args(payloads: Option<&Payloads>) -> Args {
    let Some(payloads) = payloads.filter(|p| !p.payloads.is_empty()) else {
        return Args::none();
    };
    let mut values = Vec::with_capacity(payloads.payloads.len());
    for payload in &payloads.payloads {
        match json(payload) {
            Some(value) => values.push(value),
            None => return Args::opaque(),
        }
    }
    Args::from_value(serde_json::Value::Array(values))
}

fn json(payload: &Payload) -> Option<serde_json::Value> {
    if payload.metadata.get("encoding").map(Vec::as_slice) != Some(JSON_PLAIN) {
        return None;
    }
    serde_json::from_slice(&payload.data).ok()
}

/// The arguments of one payload.
fn single_payload_args(payload: Option<&Payload>) -> Args {
    match payload {
        None => Args::none(),
        Some(payload) => match json(payload) {
            Some(value) => Args::from_value(serde_json::Value::Array(vec![value])),
            None => Args::opaque(),
        },
    }
}

fn target(op: Operation, namespace: String, execution: Option<WorkflowExecution>) -> Operation {
    let op = op.with_namespace(namespace);
    match execution {
        Some(execution) => op
            .with_instance(execution.workflow_id)
            .with_run(execution.run_id),
        None => op,
    }
}

fn path(service: &str, method: &str) -> String {
    format!("/{service}/{method}")
}

/// Methods whose requests name only a namespace.
macro_rules! namespaced {
    ($b:ident, $service:expr, $module:ident, [$(($method:literal, $kind:ident, $req:ident)),* $(,)?]) => {
        $(
            $b = $b.typed(&path($service, $method), OperationKind::$kind, |m: $module::$req, op| {
                op.with_namespace(m.namespace)
            });
        )*
    };
}

/// Methods whose requests name a workflow execution in a field called `$field`.
macro_rules! on_execution {
    ($b:ident, [$(($method:literal, $kind:ident, $req:ident, $field:ident)),* $(,)?]) => {
        $(
            $b = $b.typed(&path(WORKFLOW_SERVICE, $method), OperationKind::$kind, |m: wf::$req, op| {
                target(op, m.namespace, m.$field)
            });
        )*
    };
}

/// Methods whose requests name a workflow id and run id directly.
macro_rules! on_workflow_id {
    ($b:ident, [$(($method:literal, $kind:ident, $req:ident)),* $(,)?]) => {
        $(
            $b = $b.typed(&path(WORKFLOW_SERVICE, $method), OperationKind::$kind, |m: wf::$req, op| {
                op.with_namespace(m.namespace).with_instance(m.workflow_id).with_run(m.run_id)
            });
        )*
    };
}

/// Methods whose requests name a task queue (a `TaskQueue` message).
macro_rules! on_task_queue {
    ($b:ident, [$(($method:literal, $kind:ident, $req:ident)),* $(,)?]) => {
        $(
            $b = $b.typed(&path(WORKFLOW_SERVICE, $method), OperationKind::$kind, |m: wf::$req, op| {
                op.with_namespace(m.namespace)
                    .with_task_queue(m.task_queue.map(|q| q.name).unwrap_or_default())
            });
        )*
    };
}

/// Methods on a standalone activity or Nexus operation, named by `$id`.
macro_rules! on_standalone {
    ($b:ident, [$(($method:literal, $kind:ident, $req:ident, $id:ident)),* $(,)?]) => {
        $(
            $b = $b.typed(&path(WORKFLOW_SERVICE, $method), OperationKind::$kind, |m: wf::$req, op| {
                op.with_namespace(m.namespace).with_instance(m.$id).with_run(m.run_id)
            });
        )*
    };
}

/// The Temporal preset; see the [crate docs](crate).
pub fn operation_map() -> OperationMap {
    match builder().build() {
        Ok(map) => map,
        // The paths are constants checked by this crate's tests.
        Err(error) => unreachable!("the Temporal preset is well-formed: {error}"),
    }
}

/// The descriptors (a `FileDescriptorSet`, protobuf-encoded) of Temporal's API as
/// `temporalio-protos` compiled it: every message the preset classifies, for tools that
/// turn JSON into those messages (`warden check`) or inspect them by reflection.
pub fn descriptor_set() -> &'static [u8] {
    // Set by this crate's build script from `temporalio-protos`' `links` metadata.
    include_bytes!(env!("TEMPORAL_DESCRIPTOR_SET_PATH"))
}

/// The preset as a builder, to add your own services before building.
pub fn builder() -> OperationMapBuilder {
    let mut b = OperationMap::builder();
    b = workflows(b);
    b = workers(b);
    b = reads(b);
    b = admin(b);
    operator(b)
}

fn workflows(mut b: OperationMapBuilder) -> OperationMapBuilder {
    use OperationKind::{Execute, Signal, Update};
    b = b.typed(
        &path(WORKFLOW_SERVICE, "StartWorkflowExecution"),
        Execute,
        |m: wf::StartWorkflowExecutionRequest, op| {
            let mut op = op
                .with_namespace(m.namespace)
                .with_instance(m.workflow_id)
                .with_workflow_type(m.workflow_type.map(|t| t.name).unwrap_or_default())
                .with_task_queue(m.task_queue.map(|q| q.name).unwrap_or_default());
            op.args = payload_args(m.input.as_ref());
            op
        },
    );
    b = b
        .typed(
            &path(WORKFLOW_SERVICE, "SignalWithStartWorkflowExecution"),
            Execute,
            |m: wf::SignalWithStartWorkflowExecutionRequest, op| {
                let mut op = op
                    .with_namespace(m.namespace)
                    .with_instance(m.workflow_id)
                    .with_workflow_type(m.workflow_type.map(|t| t.name).unwrap_or_default())
                    .with_task_queue(m.task_queue.map(|q| q.name).unwrap_or_default())
                    .with_name(m.signal_name);
                op.args = payload_args(m.signal_input.as_ref());
                op
            },
        )
        .also(Signal);
    b = b
        .typed(
            &path(WORKFLOW_SERVICE, "ExecuteMultiOperation"),
            Execute,
            |m: wf::ExecuteMultiOperationRequest, op| {
                use wf::execute_multi_operation_request::operation::Operation as Multi;
                let mut op = op.with_namespace(m.namespace);
                for part in m.operations {
                    match part.operation {
                        Some(Multi::StartWorkflow(start)) => {
                            op = op
                                .with_instance(start.workflow_id)
                                .with_workflow_type(
                                    start.workflow_type.map(|t| t.name).unwrap_or_default(),
                                )
                                .with_task_queue(
                                    start.task_queue.map(|q| q.name).unwrap_or_default(),
                                );
                        }
                        Some(Multi::UpdateWorkflow(update)) => {
                            let input = update.request.and_then(|r| r.input);
                            if let Some(input) = input {
                                op.args = payload_args(input.args.as_ref());
                                op = op.with_name(input.name);
                            }
                        }
                        None => {}
                    }
                }
                op
            },
        )
        .also(Update);
    b = b.typed(
        &path(WORKFLOW_SERVICE, "SignalWorkflowExecution"),
        Signal,
        |m: wf::SignalWorkflowExecutionRequest, op| {
            let mut op = target(op, m.namespace, m.workflow_execution).with_name(m.signal_name);
            op.args = payload_args(m.input.as_ref());
            op
        },
    );
    b = b.typed(
        &path(WORKFLOW_SERVICE, "QueryWorkflow"),
        OperationKind::Query,
        |m: wf::QueryWorkflowRequest, op| {
            let mut op = target(op, m.namespace, m.execution);
            if let Some(query) = m.query {
                op.args = payload_args(query.query_args.as_ref());
                op = op.with_name(query.query_type);
            }
            op
        },
    );
    b = b.typed(
        &path(WORKFLOW_SERVICE, "UpdateWorkflowExecution"),
        Update,
        |m: wf::UpdateWorkflowExecutionRequest, op| {
            let mut op = target(op, m.namespace, m.workflow_execution);
            if let Some(input) = m.request.and_then(|r| r.input) {
                op.args = payload_args(input.args.as_ref());
                op = op.with_name(input.name);
            }
            op
        },
    );
    b = b.typed(
        &path(WORKFLOW_SERVICE, "PollWorkflowExecutionUpdate"),
        Update,
        |m: wf::PollWorkflowExecutionUpdateRequest, op| {
            target(
                op,
                m.namespace,
                m.update_ref.and_then(|r| r.workflow_execution),
            )
        },
    );
    b = b.typed(
        &path(WORKFLOW_SERVICE, "StartActivityExecution"),
        Execute,
        |m: wf::StartActivityExecutionRequest, op| {
            let mut op = op
                .with_namespace(m.namespace)
                .with_instance(m.activity_id)
                .with_task_queue(m.task_queue.map(|q| q.name).unwrap_or_default());
            op.args = payload_args(m.input.as_ref());
            op
        },
    );
    b = b.typed(
        &path(WORKFLOW_SERVICE, "StartNexusOperationExecution"),
        Execute,
        |m: wf::StartNexusOperationExecutionRequest, op| {
            let mut op = op.with_namespace(m.namespace).with_instance(m.operation_id);
            op.args = single_payload_args(m.input.as_ref());
            op
        },
    );
    on_execution!(
        b,
        [
            (
                "RequestCancelWorkflowExecution",
                Cancel,
                RequestCancelWorkflowExecutionRequest,
                workflow_execution
            ),
            (
                "TerminateWorkflowExecution",
                Terminate,
                TerminateWorkflowExecutionRequest,
                workflow_execution
            ),
            (
                "ResetWorkflowExecution",
                Terminate,
                ResetWorkflowExecutionRequest,
                workflow_execution
            ),
            (
                "DeleteWorkflowExecution",
                Terminate,
                DeleteWorkflowExecutionRequest,
                workflow_execution
            ),
            (
                "UpdateWorkflowExecutionOptions",
                Update,
                UpdateWorkflowExecutionOptionsRequest,
                workflow_execution
            ),
            (
                "UpdateActivityOptions",
                Update,
                UpdateActivityOptionsRequest,
                execution
            ),
            ("PauseActivity", Update, PauseActivityRequest, execution),
            ("UnpauseActivity", Update, UnpauseActivityRequest, execution),
            ("ResetActivity", Update, ResetActivityRequest, execution),
        ]
    );
    on_workflow_id!(
        b,
        [
            (
                "PauseWorkflowExecution",
                Update,
                PauseWorkflowExecutionRequest
            ),
            (
                "UnpauseWorkflowExecution",
                Update,
                UnpauseWorkflowExecutionRequest
            ),
            (
                "UpdateActivityExecutionOptions",
                Update,
                UpdateActivityExecutionOptionsRequest
            ),
            (
                "PauseActivityExecution",
                Update,
                PauseActivityExecutionRequest
            ),
            (
                "UnpauseActivityExecution",
                Update,
                UnpauseActivityExecutionRequest
            ),
            (
                "ResetActivityExecution",
                Update,
                ResetActivityExecutionRequest
            ),
        ]
    );
    on_standalone!(
        b,
        [
            (
                "RequestCancelActivityExecution",
                Cancel,
                RequestCancelActivityExecutionRequest,
                activity_id
            ),
            (
                "TerminateActivityExecution",
                Terminate,
                TerminateActivityExecutionRequest,
                activity_id
            ),
            (
                "DeleteActivityExecution",
                Terminate,
                DeleteActivityExecutionRequest,
                activity_id
            ),
            (
                "RequestCancelNexusOperationExecution",
                Cancel,
                RequestCancelNexusOperationExecutionRequest,
                operation_id
            ),
            (
                "TerminateNexusOperationExecution",
                Terminate,
                TerminateNexusOperationExecutionRequest,
                operation_id
            ),
            (
                "DeleteNexusOperationExecution",
                Terminate,
                DeleteNexusOperationExecutionRequest,
                operation_id
            ),
        ]
    );
    b
}

fn workers(mut b: OperationMapBuilder) -> OperationMapBuilder {
    use OperationKind::Worker;
    on_task_queue!(
        b,
        [
            (
                "PollWorkflowTaskQueue",
                Worker,
                PollWorkflowTaskQueueRequest
            ),
            (
                "PollActivityTaskQueue",
                Worker,
                PollActivityTaskQueueRequest
            ),
            ("PollNexusTaskQueue", Worker, PollNexusTaskQueueRequest),
        ]
    );
    b = b.typed(
        &path(WORKFLOW_SERVICE, "ShutdownWorker"),
        Worker,
        |m: wf::ShutdownWorkerRequest, op| {
            op.with_namespace(m.namespace).with_task_queue(m.task_queue)
        },
    );
    on_execution!(
        b,
        [(
            "ResetStickyTaskQueue",
            Worker,
            ResetStickyTaskQueueRequest,
            execution
        )]
    );
    on_workflow_id!(
        b,
        [
            (
                "RecordActivityTaskHeartbeatById",
                Worker,
                RecordActivityTaskHeartbeatByIdRequest
            ),
            (
                "RespondActivityTaskCompletedById",
                Worker,
                RespondActivityTaskCompletedByIdRequest
            ),
            (
                "RespondActivityTaskFailedById",
                Worker,
                RespondActivityTaskFailedByIdRequest
            ),
            (
                "RespondActivityTaskCanceledById",
                Worker,
                RespondActivityTaskCanceledByIdRequest
            ),
        ]
    );
    namespaced!(
        b,
        WORKFLOW_SERVICE,
        wf,
        [
            (
                "RespondWorkflowTaskCompleted",
                Worker,
                RespondWorkflowTaskCompletedRequest
            ),
            (
                "RespondWorkflowTaskFailed",
                Worker,
                RespondWorkflowTaskFailedRequest
            ),
            (
                "RecordActivityTaskHeartbeat",
                Worker,
                RecordActivityTaskHeartbeatRequest
            ),
            (
                "RespondActivityTaskCompleted",
                Worker,
                RespondActivityTaskCompletedRequest
            ),
            (
                "RespondActivityTaskFailed",
                Worker,
                RespondActivityTaskFailedRequest
            ),
            (
                "RespondActivityTaskCanceled",
                Worker,
                RespondActivityTaskCanceledRequest
            ),
            (
                "RespondQueryTaskCompleted",
                Worker,
                RespondQueryTaskCompletedRequest
            ),
            (
                "RespondNexusTaskCompleted",
                Worker,
                RespondNexusTaskCompletedRequest
            ),
            (
                "RespondNexusTaskFailed",
                Worker,
                RespondNexusTaskFailedRequest
            ),
            (
                "RecordWorkerHeartbeat",
                Worker,
                RecordWorkerHeartbeatRequest
            ),
            ("FetchWorkerConfig", Worker, FetchWorkerConfigRequest),
        ]
    );
    b
}

fn reads(mut b: OperationMapBuilder) -> OperationMapBuilder {
    on_execution!(
        b,
        [
            (
                "GetWorkflowExecutionHistory",
                Read,
                GetWorkflowExecutionHistoryRequest,
                execution
            ),
            (
                "GetWorkflowExecutionHistoryReverse",
                Read,
                GetWorkflowExecutionHistoryReverseRequest,
                execution
            ),
            (
                "DescribeWorkflowExecution",
                Read,
                DescribeWorkflowExecutionRequest,
                execution
            ),
            (
                "PollWorkflowExecutionTimeSkipping",
                Read,
                PollWorkflowExecutionTimeSkippingRequest,
                workflow_execution
            ),
        ]
    );
    on_standalone!(
        b,
        [
            (
                "DescribeActivityExecution",
                Read,
                DescribeActivityExecutionRequest,
                activity_id
            ),
            (
                "PollActivityExecution",
                Read,
                PollActivityExecutionRequest,
                activity_id
            ),
            (
                "DescribeNexusOperationExecution",
                Read,
                DescribeNexusOperationExecutionRequest,
                operation_id
            ),
            (
                "PollNexusOperationExecution",
                Read,
                PollNexusOperationExecutionRequest,
                operation_id
            ),
        ]
    );
    on_task_queue!(
        b,
        [
            ("DescribeTaskQueue", Read, DescribeTaskQueueRequest),
            (
                "ListTaskQueuePartitions",
                Read,
                ListTaskQueuePartitionsRequest
            ),
        ]
    );
    // Cluster-wide reads: no namespace in the request.
    for method in [
        "ListNamespaces",
        "GetSearchAttributes",
        "GetClusterInfo",
        "GetSystemInfo",
    ] {
        b = b.method(&path(WORKFLOW_SERVICE, method), OperationKind::Read);
    }
    namespaced!(
        b,
        WORKFLOW_SERVICE,
        wf,
        [
            ("DescribeNamespace", Read, DescribeNamespaceRequest),
            (
                "ListOpenWorkflowExecutions",
                Read,
                ListOpenWorkflowExecutionsRequest
            ),
            (
                "ListClosedWorkflowExecutions",
                Read,
                ListClosedWorkflowExecutionsRequest
            ),
            (
                "ListWorkflowExecutions",
                Read,
                ListWorkflowExecutionsRequest
            ),
            (
                "ListArchivedWorkflowExecutions",
                Read,
                ListArchivedWorkflowExecutionsRequest
            ),
            (
                "ScanWorkflowExecutions",
                Read,
                ScanWorkflowExecutionsRequest
            ),
            (
                "CountWorkflowExecutions",
                Read,
                CountWorkflowExecutionsRequest
            ),
            ("DescribeSchedule", Read, DescribeScheduleRequest),
            (
                "ListScheduleMatchingTimes",
                Read,
                ListScheduleMatchingTimesRequest
            ),
            ("ListSchedules", Read, ListSchedulesRequest),
            ("CountSchedules", Read, CountSchedulesRequest),
            (
                "GetWorkerBuildIdCompatibility",
                Read,
                GetWorkerBuildIdCompatibilityRequest
            ),
            (
                "GetWorkerVersioningRules",
                Read,
                GetWorkerVersioningRulesRequest
            ),
            (
                "GetWorkerTaskReachability",
                Read,
                GetWorkerTaskReachabilityRequest
            ),
            (
                "DescribeBatchOperation",
                Read,
                DescribeBatchOperationRequest
            ),
            ("ListBatchOperations", Read, ListBatchOperationsRequest),
            ("DescribeDeployment", Read, DescribeDeploymentRequest),
            ("ListDeployments", Read, ListDeploymentsRequest),
            (
                "GetDeploymentReachability",
                Read,
                GetDeploymentReachabilityRequest
            ),
            ("GetCurrentDeployment", Read, GetCurrentDeploymentRequest),
            (
                "DescribeWorkerDeploymentVersion",
                Read,
                DescribeWorkerDeploymentVersionRequest
            ),
            (
                "DescribeWorkerDeployment",
                Read,
                DescribeWorkerDeploymentRequest
            ),
            ("ListWorkerDeployments", Read, ListWorkerDeploymentsRequest),
            (
                "ValidateWorkerDeploymentVersionComputeConfig",
                Read,
                ValidateWorkerDeploymentVersionComputeConfigRequest
            ),
            ("DescribeWorkflowRule", Read, DescribeWorkflowRuleRequest),
            ("ListWorkflowRules", Read, ListWorkflowRulesRequest),
            ("ListWorkers", Read, ListWorkersRequest),
            ("CountWorkers", Read, CountWorkersRequest),
            ("DescribeWorker", Read, DescribeWorkerRequest),
            (
                "ListActivityExecutions",
                Read,
                ListActivityExecutionsRequest
            ),
            (
                "CountActivityExecutions",
                Read,
                CountActivityExecutionsRequest
            ),
            (
                "ListNexusOperationExecutions",
                Read,
                ListNexusOperationExecutionsRequest
            ),
            (
                "CountNexusOperationExecutions",
                Read,
                CountNexusOperationExecutionsRequest
            ),
        ]
    );
    b
}

fn admin(mut b: OperationMapBuilder) -> OperationMapBuilder {
    on_execution!(
        b,
        [(
            "TriggerWorkflowRule",
            Admin,
            TriggerWorkflowRuleRequest,
            execution
        )]
    );
    namespaced!(
        b,
        WORKFLOW_SERVICE,
        wf,
        [
            ("RegisterNamespace", Admin, RegisterNamespaceRequest),
            ("UpdateNamespace", Admin, UpdateNamespaceRequest),
            ("DeprecateNamespace", Admin, DeprecateNamespaceRequest),
            ("CreateSchedule", Admin, CreateScheduleRequest),
            ("UpdateSchedule", Admin, UpdateScheduleRequest),
            ("PatchSchedule", Admin, PatchScheduleRequest),
            ("DeleteSchedule", Admin, DeleteScheduleRequest),
            (
                "UpdateWorkerBuildIdCompatibility",
                Admin,
                UpdateWorkerBuildIdCompatibilityRequest
            ),
            (
                "UpdateWorkerVersioningRules",
                Admin,
                UpdateWorkerVersioningRulesRequest
            ),
            ("StartBatchOperation", Admin, StartBatchOperationRequest),
            ("StopBatchOperation", Admin, StopBatchOperationRequest),
            ("SetCurrentDeployment", Admin, SetCurrentDeploymentRequest),
            (
                "SetWorkerDeploymentCurrentVersion",
                Admin,
                SetWorkerDeploymentCurrentVersionRequest
            ),
            (
                "SetWorkerDeploymentRampingVersion",
                Admin,
                SetWorkerDeploymentRampingVersionRequest
            ),
            (
                "SetWorkerDeploymentManager",
                Admin,
                SetWorkerDeploymentManagerRequest
            ),
            (
                "CreateWorkerDeployment",
                Admin,
                CreateWorkerDeploymentRequest
            ),
            (
                "DeleteWorkerDeployment",
                Admin,
                DeleteWorkerDeploymentRequest
            ),
            (
                "CreateWorkerDeploymentVersion",
                Admin,
                CreateWorkerDeploymentVersionRequest
            ),
            (
                "DeleteWorkerDeploymentVersion",
                Admin,
                DeleteWorkerDeploymentVersionRequest
            ),
            (
                "UpdateWorkerDeploymentVersionComputeConfig",
                Admin,
                UpdateWorkerDeploymentVersionComputeConfigRequest
            ),
            (
                "UpdateWorkerDeploymentVersionMetadata",
                Admin,
                UpdateWorkerDeploymentVersionMetadataRequest
            ),
            ("CreateWorkflowRule", Admin, CreateWorkflowRuleRequest),
            ("DeleteWorkflowRule", Admin, DeleteWorkflowRuleRequest),
            ("UpdateTaskQueueConfig", Admin, UpdateTaskQueueConfigRequest),
            ("UpdateWorkerConfig", Admin, UpdateWorkerConfigRequest),
        ]
    );
    b
}

fn operator(mut b: OperationMapBuilder) -> OperationMapBuilder {
    namespaced!(
        b,
        OPERATOR_SERVICE,
        op_svc,
        [
            ("AddSearchAttributes", Admin, AddSearchAttributesRequest),
            (
                "RemoveSearchAttributes",
                Admin,
                RemoveSearchAttributesRequest
            ),
            ("ListSearchAttributes", Read, ListSearchAttributesRequest),
            ("DeleteNamespace", Admin, DeleteNamespaceRequest),
        ]
    );
    for (method, kind) in [
        ("AddOrUpdateRemoteCluster", OperationKind::Admin),
        ("RemoveRemoteCluster", OperationKind::Admin),
        ("ListClusters", OperationKind::Read),
        ("GetNexusEndpoint", OperationKind::Read),
        ("CreateNexusEndpoint", OperationKind::Admin),
        ("UpdateNexusEndpoint", OperationKind::Admin),
        ("DeleteNexusEndpoint", OperationKind::Admin),
        ("ListNexusEndpoints", OperationKind::Read),
    ] {
        b = b.method(&path(OPERATOR_SERVICE, method), kind);
    }
    b
}
