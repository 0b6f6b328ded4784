//! An example workflow service for Warden's demo, tests and benchmarks.
//!
//! [`pb`] holds the generated protobuf and tonic code of `warden.example.v1.WorkflowService`
//! (start, signal, query, update, cancel, terminate, describe, list, a server-streaming watch
//! and a client-streaming signal batch). [`ExampleService`] is an in-memory implementation that
//! records every handler call in a [`CallLog`], so tests can prove a denied call never reached
//! a handler. [`operation_map`] is the Warden map for the service.

use std::{
    collections::BTreeMap,
    pin::Pin,
    sync::{Arc, Mutex, PoisonError},
};

use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};
use warden_core::{Operation, OperationKind};
use warden_tower::{
    CallExt,
    map::{Fields, OperationMap, json_args},
};

/// Generated protobuf messages and tonic client and server.
#[allow(
    missing_docs,
    unreachable_pub,
    clippy::all,
    clippy::unwrap_used,
    clippy::expect_used
)]
pub mod pb {
    tonic::include_proto!("warden.example.v1");
}

pub mod http_probe;
pub mod issuer;
pub mod policies;
pub mod redis_server;
pub mod temporal_server;

use pb::{workflow_service_server::WorkflowService, *};

/// The encoded `FileDescriptorSet` of the example protos, for run-time (reflect) maps.
pub const FILE_DESCRIPTOR_SET: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/descriptor.bin"));

/// The fully qualified service name.
pub const SERVICE: &str = "warden.example.v1.WorkflowService";

/// The method path of `method` on the example service.
pub fn path(method: &str) -> String {
    format!("/{SERVICE}/{method}")
}

/// Where the targets sit in the example's requests that name a workflow execution
/// (`namespace = 1`, `execution = 2 { workflow_id = 1, run_id = 2 }`).
fn on_execution() -> Fields {
    Fields::new().namespace(&[1]).instance(&[2, 1]).run(&[2, 2])
}

/// The operation map of the example service: every method classified, with namespace,
/// workflow id, run id, workflow type, task queue, operation name and JSON arguments (parsed
/// only when a policy reads them), read straight from each request's encoding by field number
/// (see `proto/warden/example/v1/workflow.proto`).
pub fn operation_map() -> OperationMap {
    use OperationKind::*;
    // signal_name = 3, input = 4
    let signal = || on_execution().name(&[3]).json_args(&[4]);
    let result = OperationMap::builder()
        .fields(
            &path("StartWorkflow"),
            Execute,
            // namespace = 1, workflow_id = 2, workflow_type = 3, task_queue = 4, input = 5
            Fields::new()
                .namespace(&[1])
                .instance(&[2])
                .workflow_type(&[3])
                .task_queue(&[4])
                .json_args(&[5]),
        )
        .fields(&path("SignalWorkflow"), Signal, signal())
        // query_type = 3, args = 4
        .fields(
            &path("QueryWorkflow"),
            Query,
            on_execution().name(&[3]).json_args(&[4]),
        )
        // update_name = 3, input = 4
        .fields(
            &path("UpdateWorkflow"),
            Update,
            on_execution().name(&[3]).json_args(&[4]),
        )
        .fields(&path("CancelWorkflow"), Cancel, on_execution())
        .fields(&path("TerminateWorkflow"), Terminate, on_execution())
        .fields(&path("DescribeWorkflow"), Read, on_execution())
        .fields(&path("ListWorkflows"), Read, Fields::new().namespace(&[1]))
        .fields(&path("WatchWorkflow"), Read, on_execution())
        .fields_client_streaming(&path("SignalWorkflowBatch"), Signal, signal())
        .fields_client_streaming(&path("SignalWorkflowStream"), Signal, signal())
        .build();
    match result {
        Ok(map) => map,
        Err(error) => unreachable!("the example map is well formed: {error}"),
    }
}

/// The same map as [`operation_map`], built the slower way: each request decoded whole by
/// prost, then read by typed closures. Tests check the two agree; benchmarks compare them.
pub fn typed_operation_map() -> OperationMap {
    use OperationKind::*;
    fn target(op: Operation, namespace: String, execution: Option<WorkflowExecution>) -> Operation {
        let execution = execution.unwrap_or_default();
        op.with_namespace(namespace)
            .with_instance(execution.workflow_id)
            .with_run(execution.run_id)
    }
    fn signal(m: SignalWorkflowRequest, op: Operation) -> Operation {
        target(op, m.namespace, m.execution)
            .with_name(m.signal_name)
            .with_json_args(m.input)
    }
    let result = OperationMap::builder()
        .typed(
            &path("StartWorkflow"),
            Execute,
            |m: StartWorkflowRequest, op| {
                op.with_namespace(m.namespace)
                    .with_instance(m.workflow_id)
                    .with_workflow_type(m.workflow_type)
                    .with_task_queue(m.task_queue)
                    .with_json_args(m.input)
            },
        )
        .typed(&path("SignalWorkflow"), Signal, signal)
        .typed(
            &path("QueryWorkflow"),
            Query,
            |m: QueryWorkflowRequest, op| {
                target(op, m.namespace, m.execution)
                    .with_name(m.query_type)
                    .with_json_args(m.args)
            },
        )
        .typed(
            &path("UpdateWorkflow"),
            Update,
            |m: UpdateWorkflowRequest, op| {
                target(op, m.namespace, m.execution)
                    .with_name(m.update_name)
                    .with_json_args(m.input)
            },
        )
        .typed(
            &path("CancelWorkflow"),
            Cancel,
            |m: CancelWorkflowRequest, op| target(op, m.namespace, m.execution),
        )
        .typed(
            &path("TerminateWorkflow"),
            Terminate,
            |m: TerminateWorkflowRequest, op| target(op, m.namespace, m.execution),
        )
        .typed(
            &path("DescribeWorkflow"),
            Read,
            |m: DescribeWorkflowRequest, op| target(op, m.namespace, m.execution),
        )
        .typed(
            &path("ListWorkflows"),
            Read,
            |m: ListWorkflowsRequest, op| op.with_namespace(m.namespace),
        )
        .typed(
            &path("WatchWorkflow"),
            Read,
            |m: WatchWorkflowRequest, op| target(op, m.namespace, m.execution),
        )
        .typed_client_streaming(&path("SignalWorkflowBatch"), Signal, signal)
        .typed_client_streaming(&path("SignalWorkflowStream"), Signal, signal)
        .build();
    match result {
        Ok(map) => map,
        Err(error) => unreachable!("the example map is well formed: {error}"),
    }
}

/// Every handler call, as `"<Method> by <subject>"`, in order.
#[derive(Clone, Debug, Default)]
pub struct CallLog {
    calls: Arc<Mutex<Vec<String>>>,
    off: bool,
    /// Only count calls (`len`), keeping no text: for load tests, whose memory must not grow
    /// with the number of calls.
    counted: Option<Arc<std::sync::atomic::AtomicUsize>>,
}

impl CallLog {
    /// Records a handler call; returns the stamp that marks its response with the decider.
    fn record<T>(&self, method: &str, request: &Request<T>) -> Stamp {
        if self.off {
            return Stamp(None);
        }
        if let Some(count) = &self.counted {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            return Stamp(None);
        }
        // Who called and what let the call through, as Warden left them for handlers.
        let extensions = request.extensions();
        let subject = extensions
            .claims()
            .and_then(|c| c.subject.clone())
            .unwrap_or_else(|| "<unauthenticated>".to_owned());
        self.lock().push(format!("{method} by {subject}"));
        Stamp(extensions.decision().map(|d| d.decider().to_owned()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<String>> {
        self.calls.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The calls so far.
    pub fn calls(&self) -> Vec<String> {
        self.lock().clone()
    }

    /// Whether no handler ran.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// How many handler calls were recorded.
    pub fn len(&self) -> usize {
        match &self.counted {
            Some(count) => count.load(std::sync::atomic::Ordering::Relaxed),
            None => self.lock().len(),
        }
    }
}

/// The response metadata entry naming the policy that allowed the call.
pub const DECIDER_HEADER: &str = "x-warden-decider";

/// Marks a response with the decider of the call, read from the request extensions.
struct Stamp(Option<String>);

impl Stamp {
    fn reply<T>(self, message: T) -> Response<T> {
        let mut response = Response::new(message);
        if let Some(value) = self.0.and_then(|d| d.parse().ok()) {
            response.metadata_mut().insert(DECIDER_HEADER, value);
        }
        response
    }
}

#[derive(Debug, Clone)]
struct Workflow {
    workflow_type: String,
    run_id: String,
    status: &'static str,
    signals: u32,
    last_update: serde_json::Value,
}

type Key = (String, String);

/// An in-memory workflow service.
#[derive(Clone, Debug, Default)]
pub struct ExampleService {
    workflows: Arc<Mutex<BTreeMap<Key, Workflow>>>,
    log: CallLog,
}

impl ExampleService {
    /// A service with no workflows.
    pub fn new() -> Self {
        Self::default()
    }

    /// A service that neither logs calls nor stamps responses with the decider: for
    /// benchmarks, where the handler must do the same work behind every middleware.
    pub fn lean() -> Self {
        Self {
            log: CallLog {
                off: true,
                ..CallLog::default()
            },
            ..Self::default()
        }
    }

    /// A service whose log only counts calls (no text, no decider stamp): for load tests.
    pub fn counting() -> Self {
        Self {
            log: CallLog {
                counted: Some(Arc::default()),
                ..CallLog::default()
            },
            ..Self::default()
        }
    }

    /// The log of handler calls.
    pub fn log(&self) -> CallLog {
        self.log.clone()
    }

    /// A tonic server for the service that accepts gzip, deflate and zstd requests.
    pub fn into_server(self) -> pb::workflow_service_server::WorkflowServiceServer<Self> {
        use tonic::codec::CompressionEncoding::{Deflate, Gzip, Zstd};
        pb::workflow_service_server::WorkflowServiceServer::new(self)
            .accept_compressed(Gzip)
            .accept_compressed(Deflate)
            .accept_compressed(Zstd)
    }

    fn with_workflow<R>(
        &self,
        namespace: &str,
        execution: Option<&WorkflowExecution>,
        f: impl FnOnce(&mut Workflow) -> R,
    ) -> Result<R, Status> {
        let id = execution.map(|e| e.workflow_id.clone()).unwrap_or_default();
        let mut workflows = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let workflow = workflows
            .get_mut(&(namespace.to_owned(), id.clone()))
            .ok_or_else(|| Status::not_found(format!("workflow {namespace}/{id} not found")))?;
        Ok(f(workflow))
    }

    fn signal(&self, request: &SignalWorkflowRequest) -> Result<(), Status> {
        self.with_workflow(&request.namespace, request.execution.as_ref(), |w| {
            w.signals += 1
        })
    }

    fn describe(namespace_id: &Key, w: &Workflow) -> DescribeWorkflowResponse {
        DescribeWorkflowResponse {
            execution: Some(WorkflowExecution {
                workflow_id: namespace_id.1.clone(),
                run_id: w.run_id.clone(),
            }),
            workflow_type: w.workflow_type.clone(),
            status: w.status.to_owned(),
            signal_count: w.signals,
        }
    }
}

type EventStream = Pin<Box<dyn Stream<Item = Result<WorkflowEvent, Status>> + Send>>;

#[tonic::async_trait]
impl WorkflowService for ExampleService {
    async fn start_workflow(
        &self,
        request: Request<StartWorkflowRequest>,
    ) -> Result<Response<StartWorkflowResponse>, Status> {
        let stamp = self.log.record("StartWorkflow", &request);
        let m = request.into_inner();
        let mut workflows = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let key = (m.namespace, m.workflow_id);
        if workflows.contains_key(&key) {
            return Err(Status::already_exists(format!(
                "workflow {}/{} exists",
                key.0, key.1
            )));
        }
        let run_id = format!("run-{}", workflows.len() + 1);
        workflows.insert(
            key,
            Workflow {
                workflow_type: m.workflow_type,
                run_id: run_id.clone(),
                status: "running",
                signals: 0,
                last_update: serde_json::Value::Null,
            },
        );
        Ok(stamp.reply(StartWorkflowResponse { run_id }))
    }

    async fn signal_workflow(
        &self,
        request: Request<SignalWorkflowRequest>,
    ) -> Result<Response<SignalWorkflowResponse>, Status> {
        let stamp = self.log.record("SignalWorkflow", &request);
        self.signal(request.get_ref())?;
        Ok(stamp.reply(SignalWorkflowResponse {}))
    }

    async fn query_workflow(
        &self,
        request: Request<QueryWorkflowRequest>,
    ) -> Result<Response<QueryWorkflowResponse>, Status> {
        let stamp = self.log.record("QueryWorkflow", &request);
        let m = request.get_ref();
        let answer = self.with_workflow(&m.namespace, m.execution.as_ref(), |w| {
            serde_json::json!({ "status": w.status, "signals": w.signals, "last_update": w.last_update })
        })?;
        Ok(stamp.reply(QueryWorkflowResponse {
            result: answer.to_string().into_bytes(),
        }))
    }

    async fn update_workflow(
        &self,
        request: Request<UpdateWorkflowRequest>,
    ) -> Result<Response<UpdateWorkflowResponse>, Status> {
        let stamp = self.log.record("UpdateWorkflow", &request);
        let m = request.get_ref();
        let value = json_args(&m.input).unwrap_or(serde_json::Value::Null);
        self.with_workflow(&m.namespace, m.execution.as_ref(), |w| {
            w.last_update = value.clone()
        })?;
        Ok(stamp.reply(UpdateWorkflowResponse {
            result: value.to_string().into_bytes(),
        }))
    }

    async fn cancel_workflow(
        &self,
        request: Request<CancelWorkflowRequest>,
    ) -> Result<Response<CancelWorkflowResponse>, Status> {
        let stamp = self.log.record("CancelWorkflow", &request);
        let m = request.get_ref();
        self.with_workflow(&m.namespace, m.execution.as_ref(), |w| {
            w.status = "cancel_requested"
        })?;
        Ok(stamp.reply(CancelWorkflowResponse {}))
    }

    async fn terminate_workflow(
        &self,
        request: Request<TerminateWorkflowRequest>,
    ) -> Result<Response<TerminateWorkflowResponse>, Status> {
        let stamp = self.log.record("TerminateWorkflow", &request);
        let m = request.get_ref();
        self.with_workflow(&m.namespace, m.execution.as_ref(), |w| {
            w.status = "terminated"
        })?;
        Ok(stamp.reply(TerminateWorkflowResponse {}))
    }

    async fn describe_workflow(
        &self,
        request: Request<DescribeWorkflowRequest>,
    ) -> Result<Response<DescribeWorkflowResponse>, Status> {
        let stamp = self.log.record("DescribeWorkflow", &request);
        let m = request.get_ref();
        let id = m
            .execution
            .as_ref()
            .map(|e| e.workflow_id.clone())
            .unwrap_or_default();
        let key = (m.namespace.clone(), id);
        let described = self.with_workflow(&m.namespace, m.execution.as_ref(), |w| {
            Self::describe(&key, w)
        })?;
        Ok(stamp.reply(described))
    }

    async fn list_workflows(
        &self,
        request: Request<ListWorkflowsRequest>,
    ) -> Result<Response<ListWorkflowsResponse>, Status> {
        let stamp = self.log.record("ListWorkflows", &request);
        let namespace = &request.get_ref().namespace;
        let workflows = self
            .workflows
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let listed = workflows
            .iter()
            .filter(|(key, _)| &key.0 == namespace)
            .map(|(key, w)| Self::describe(key, w))
            .collect();
        Ok(stamp.reply(ListWorkflowsResponse { workflows: listed }))
    }

    type WatchWorkflowStream = EventStream;

    async fn watch_workflow(
        &self,
        request: Request<WatchWorkflowRequest>,
    ) -> Result<Response<Self::WatchWorkflowStream>, Status> {
        let stamp = self.log.record("WatchWorkflow", &request);
        let m = request.get_ref();
        let (status, signals) = self.with_workflow(&m.namespace, m.execution.as_ref(), |w| {
            (w.status, w.signals)
        })?;
        let events = [
            ("status", status.to_owned()),
            ("signals", signals.to_string()),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, (kind, detail))| {
            Ok(WorkflowEvent {
                sequence: i as u64 + 1,
                kind: kind.to_owned(),
                detail: detail.into_bytes(),
            })
        });
        Ok(stamp.reply(Box::pin(tokio_stream::iter(events))))
    }

    async fn signal_workflow_batch(
        &self,
        request: Request<Streaming<SignalWorkflowRequest>>,
    ) -> Result<Response<SignalWorkflowBatchResponse>, Status> {
        let stamp = self.log.record("SignalWorkflowBatch", &request);
        let mut stream = request.into_inner();
        let mut accepted = 0;
        while let Some(message) = stream.message().await? {
            self.signal(&message)?;
            accepted += 1;
        }
        Ok(stamp.reply(SignalWorkflowBatchResponse { accepted }))
    }

    type SignalWorkflowStreamStream = EventStream;

    async fn signal_workflow_stream(
        &self,
        request: Request<Streaming<SignalWorkflowRequest>>,
    ) -> Result<Response<Self::SignalWorkflowStreamStream>, Status> {
        use tokio_stream::StreamExt;
        let stamp = self.log.record("SignalWorkflowStream", &request);
        let service = self.clone();
        let mut sequence = 0;
        // Each signal is applied as it arrives and answered at once, so a test sees which
        // messages reached the handler before the stream ended.
        let events = request.into_inner().map(move |message| {
            let message = message?;
            service.signal(&message)?;
            sequence += 1;
            Ok(WorkflowEvent {
                sequence,
                kind: "signal".to_owned(),
                detail: message.signal_name.into_bytes(),
            })
        });
        Ok(stamp.reply(Box::pin(events)))
    }
}
