//! Call passports in Temporal requests: the edge that authenticated a caller writes a signed
//! passport ([`warden_passport`]) into the Temporal `header` of each start, signal,
//! signal-with-start, query, update and update-with-start it allows, so the worker that runs
//! the handler can check who called and what for.
//!
//! [`PassportWriter::write`] takes the request message of such a call and returns it with
//! every entry under the passport's header key removed — a caller can never forge or replay
//! one through the edge — and a fresh passport added for each operation it carries (an
//! `ExecuteMultiOperation` gets one per operation). Only the header is touched: every other
//! byte of the message stays as it was, fields this build does not know included.
//!
//! | method | passport (`op.kind`, `op.name`, `op.input` over) | header |
//! |---|---|---|
//! | `StartWorkflowExecution` | `execute`, —, `input` | `header` |
//! | `SignalWorkflowExecution` | `signal`, `signal_name`, `input` | `header` |
//! | `SignalWithStartWorkflowExecution` | `signal` with `op.start`, `signal_name`, `signal_input` | `header` (the start and the signal share it) |
//! | `QueryWorkflow` | `query`, `query.query_type`, `query.query_args` | `query.header` |
//! | `UpdateWorkflowExecution` | `update`, `request.input.name`, `request.input.args` | `request.input.header` |
//! | `ExecuteMultiOperation` | each `start_workflow` and `update_workflow` as above | each operation's own |
//! | `StartBatchOperation`, `CreateSchedule`, `UpdateSchedule` | none: the caller's is only removed (a batch's signals and a schedule's starts are not calls the edge vouched for one by one; workers refuse them) | `signal_operation.header`, `schedule.action.start_workflow.header` |
//!
//! ```
//! use prost::Message;
//! use temporalio_protos::temporal::api::{common::v1::WorkflowExecution, workflowservice::v1::SignalWorkflowExecutionRequest};
//! use warden_core::Claims;
//! use warden_passport::{Binding, Issuer, SigningKey, TrustedKeys, Verifier};
//! use warden_temporal::passport::PassportWriter;
//!
//! let key = SigningKey::from_secret(&[7; 32], "edge-1").unwrap();
//! let trusted = TrustedKeys::new().with_signing_key(&key).unwrap();
//! let writer = PassportWriter::new(Issuer::new("warden-proxy", key));
//!
//! let signal = SignalWorkflowExecutionRequest {
//!     namespace: "orders".into(),
//!     workflow_execution: Some(WorkflowExecution { workflow_id: "order-1".into(), ..Default::default() }),
//!     signal_name: "approve".into(),
//!     ..Default::default()
//! };
//! let path = "/temporal.api.workflowservice.v1.WorkflowService/SignalWorkflowExecution";
//! let written = writer
//!     .write(path, &signal.encode_to_vec(), Some(&Claims::for_subject("ann")))
//!     .unwrap()
//!     .expect("signals carry a passport");
//!
//! let signal = SignalWorkflowExecutionRequest::decode(&written[..]).unwrap();
//! let header = signal.header.unwrap();
//! let passport = std::str::from_utf8(&header.fields["warden-passport"].data).unwrap();
//! let expected = Binding::new("orders", "order-1", warden_core::OperationKind::Signal).with_name("approve");
//! let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
//! let verified = Verifier::new(trusted, "warden-proxy").verify(passport, &expected, now).unwrap();
//! assert_eq!(verified.claims.subject.as_deref(), Some("ann"));
//! ```

mod wire;

use std::collections::HashMap;

use prost::Message;
use temporalio_protos::temporal::api::{
    common::v1::{Header, Payload, Payloads},
    workflowservice::v1::{
        QueryWorkflowRequest, SignalWithStartWorkflowExecutionRequest,
        SignalWorkflowExecutionRequest, StartWorkflowExecutionRequest,
        UpdateWorkflowExecutionRequest,
        execute_multi_operation_request::{Operation as MultiOperation, operation::Operation},
    },
};
use warden_core::{Claims, OperationKind};
use warden_passport::{Binding, IssueError, Issuer, PayloadView, input_digest};

use crate::WORKFLOW_SERVICE;

/// The encoding of the header payload that carries a passport.
pub const PASSPORT_ENCODING: &[u8] = b"binary/plain";

/// Why a request could not be given its passport.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WriteError {
    /// The message is not the request its method takes.
    #[error("the {method} request cannot be read: {reason}")]
    Malformed {
        /// The method.
        method: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The passport could not be signed.
    #[error(transparent)]
    Issue(#[from] IssueError),
}

/// The methods whose requests carry a passport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    /// A request with one operation and one header.
    Single(Single),
    /// `ExecuteMultiOperation`: one header per operation.
    MultiOperation,
    /// A request whose header reaches workers later, for calls the edge cannot vouch for
    /// one by one (a batch signal, a schedule's starts): the caller's passport is removed
    /// and none is written, so a captured one cannot be replayed through it.
    StripOnly(&'static str, &'static [u64]),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Single {
    Start,
    Signal,
    SignalWithStart,
    Query,
    Update,
}

// Field paths from the request to its `Header.fields` map.
const START_HEADER: &[u64] = &[16, 1];
const SIGNAL_HEADER: &[u64] = &[8, 1];
const SIGNAL_WITH_START_HEADER: &[u64] = &[19, 1];
const QUERY_HEADER: &[u64] = &[3, 3, 1];
const UPDATE_HEADER: &[u64] = &[5, 2, 1, 1];
// `StartBatchOperationRequest.signal_operation.header`.
const BATCH_SIGNAL_HEADER: &[u64] = &[11, 3, 1];
// `schedule.action.start_workflow.header` of `CreateScheduleRequest`/`UpdateScheduleRequest`.
const SCHEDULE_START_HEADER: &[u64] = &[3, 2, 1, 13, 1];
// `ExecuteMultiOperationRequest.operations` and, inside one, its start and update.
const OPERATIONS: u64 = 2;
const OPERATION_START: u64 = 1;
const OPERATION_UPDATE: u64 = 2;

impl Method {
    fn of(path: &str) -> Option<Self> {
        let rpc = path
            .strip_prefix('/')?
            .strip_prefix(WORKFLOW_SERVICE)?
            .strip_prefix('/')?;
        Some(match rpc {
            "StartWorkflowExecution" => Self::Single(Single::Start),
            "SignalWorkflowExecution" => Self::Single(Single::Signal),
            "SignalWithStartWorkflowExecution" => Self::Single(Single::SignalWithStart),
            "QueryWorkflow" => Self::Single(Single::Query),
            "UpdateWorkflowExecution" => Self::Single(Single::Update),
            "ExecuteMultiOperation" => Self::MultiOperation,
            "StartBatchOperation" => Self::StripOnly("StartBatchOperation", BATCH_SIGNAL_HEADER),
            "CreateSchedule" => Self::StripOnly("CreateSchedule", SCHEDULE_START_HEADER),
            "UpdateSchedule" => Self::StripOnly("UpdateSchedule", SCHEDULE_START_HEADER),
            _ => return None,
        })
    }
}

impl Single {
    fn name(self) -> &'static str {
        match self {
            Self::Start => "StartWorkflowExecution",
            Self::Signal => "SignalWorkflowExecution",
            Self::SignalWithStart => "SignalWithStartWorkflowExecution",
            Self::Query => "QueryWorkflow",
            Self::Update => "UpdateWorkflowExecution",
        }
    }
}

fn malformed(method: &'static str) -> impl Fn(String) -> WriteError {
    move |reason| WriteError::Malformed { method, reason }
}

/// Writes passports into Temporal requests; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct PassportWriter {
    issuer: Issuer,
    header_key: String,
    bind_input: bool,
}

impl PassportWriter {
    /// Writes passports signed by `issuer` under the header key
    /// [`warden_passport::HEADER_KEY`], bound to the calls' input.
    pub fn new(issuer: Issuer) -> Self {
        Self {
            issuer,
            header_key: warden_passport::HEADER_KEY.to_owned(),
            bind_input: true,
        }
    }

    /// The header key passports travel under (default `warden-passport`).
    #[must_use]
    pub fn header_key(mut self, key: impl Into<String>) -> Self {
        self.header_key = key.into();
        self
    }

    /// Whether passports carry the digest of the call's input payloads (default yes).
    #[must_use]
    pub fn bind_input(mut self, bind: bool) -> Self {
        self.bind_input = bind;
        self
    }

    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// Whether calls to the gRPC method `path` (`/package.Service/Method`) carry a passport.
    pub fn covers(path: &str) -> bool {
        Method::of(path).is_some()
    }

    /// The request `message` of a call to `path`, with every caller-sent passport removed
    /// and, when `claims` is given (the call was allowed), a fresh passport for each
    /// operation. `None` when calls to `path` carry no passport: forward `message` as it is.
    pub fn write(
        &self,
        path: &str,
        message: &[u8],
        claims: Option<&Claims>,
    ) -> Result<Option<Vec<u8>>, WriteError> {
        let method = match Method::of(path) {
            None => return Ok(None),
            Some(Method::MultiOperation) => {
                return self.write_operations(message, claims).map(Some);
            }
            Some(Method::StripOnly(method, path)) => {
                return wire::remove_map_entry(message, path, &self.header_key)
                    .map(Some)
                    .map_err(|e| malformed(method)(e.to_string()));
            }
            Some(Method::Single(method)) => method,
        };
        let malformed = malformed(method.name());
        let (binding, path) = self
            .binding(method, message)
            .map_err(|e| malformed(e.to_string()))?;
        let stripped = wire::remove_map_entry(message, path, &self.header_key)
            .map_err(|e| malformed(e.to_string()))?;
        let Some(claims) = claims else {
            return Ok(Some(stripped));
        };
        let entry = self.entry(claims, &binding)?;
        // The header's map field is the last number of the path; the entry goes there.
        Ok(Some(append(stripped, &path[..path.len() - 1], entry)))
    }

    /// What a single-operation request's passport is bound to, and where its header is.
    fn binding(
        &self,
        method: Single,
        message: &[u8],
    ) -> Result<(Binding, &'static [u64]), prost::DecodeError> {
        Ok(match method {
            Single::Start => {
                let start = StartWorkflowExecutionRequest::decode(message)?;
                (self.start_binding(&start), START_HEADER)
            }
            Single::Signal => {
                let signal = SignalWorkflowExecutionRequest::decode(message)?;
                let workflow_id = signal
                    .workflow_execution
                    .as_ref()
                    .map_or("", |e| e.workflow_id.as_str());
                let binding = Binding::new(signal.namespace, workflow_id, OperationKind::Signal)
                    .with_name(signal.signal_name);
                (self.bound(binding, signal.input.as_ref()), SIGNAL_HEADER)
            }
            Single::SignalWithStart => {
                let request = SignalWithStartWorkflowExecutionRequest::decode(message)?;
                let binding = Binding::new(
                    request.namespace,
                    request.workflow_id,
                    OperationKind::Signal,
                )
                .with_name(request.signal_name)
                .with_start();
                (
                    self.bound(binding, request.signal_input.as_ref()),
                    SIGNAL_WITH_START_HEADER,
                )
            }
            Single::Query => {
                let request = QueryWorkflowRequest::decode(message)?;
                let workflow_id = request
                    .execution
                    .as_ref()
                    .map_or("", |e| e.workflow_id.as_str());
                let query = request.query.unwrap_or_default();
                let binding = Binding::new(request.namespace, workflow_id, OperationKind::Query)
                    .with_name(query.query_type);
                (self.bound(binding, query.query_args.as_ref()), QUERY_HEADER)
            }
            Single::Update => {
                let update = UpdateWorkflowExecutionRequest::decode(message)?;
                (self.update_binding(&update), UPDATE_HEADER)
            }
        })
    }

    /// Each operation of an `ExecuteMultiOperation` gets its own passport, in its own header.
    fn write_operations(
        &self,
        message: &[u8],
        claims: Option<&Claims>,
    ) -> Result<Vec<u8>, WriteError> {
        let malformed = malformed("ExecuteMultiOperation");
        let mut out = Vec::with_capacity(message.len() + 512);
        for field in wire::fields(message) {
            let field = field.map_err(|e| malformed(e.to_string()))?;
            let Some(content) = field.content.filter(|_| field.number == OPERATIONS) else {
                out.extend_from_slice(field.raw);
                continue;
            };
            let operation =
                MultiOperation::decode(content).map_err(|e| malformed(e.to_string()))?;
            let (binding, path) = match &operation.operation {
                Some(Operation::StartWorkflow(start)) => (
                    self.start_binding(start),
                    [&[OPERATION_START][..], START_HEADER].concat(),
                ),
                Some(Operation::UpdateWorkflow(update)) => (
                    self.update_binding(update),
                    [&[OPERATION_UPDATE][..], UPDATE_HEADER].concat(),
                ),
                None => {
                    out.extend_from_slice(field.raw);
                    continue;
                }
            };
            let mut edited = wire::remove_map_entry(content, &path, &self.header_key)
                .map_err(|e| malformed(e.to_string()))?;
            if let Some(claims) = claims {
                let entry = self.entry(claims, &binding)?;
                edited = append(edited, &path[..path.len() - 1], entry);
            }
            if edited == content {
                out.extend_from_slice(field.raw);
            } else {
                wire::put_len(&mut out, OPERATIONS, &edited);
            }
        }
        Ok(out)
    }

    fn start_binding(&self, start: &StartWorkflowExecutionRequest) -> Binding {
        let binding = Binding::new(
            start.namespace.as_str(),
            start.workflow_id.as_str(),
            OperationKind::Execute,
        );
        self.bound(binding, start.input.as_ref())
    }

    fn update_binding(&self, update: &UpdateWorkflowExecutionRequest) -> Binding {
        let workflow_id = update
            .workflow_execution
            .as_ref()
            .map_or("", |e| e.workflow_id.as_str());
        let input = update.request.as_ref().and_then(|r| r.input.as_ref());
        let name = input.map_or("", |i| i.name.as_str());
        let binding = Binding::new(
            update.namespace.as_str(),
            workflow_id,
            OperationKind::Update,
        )
        .with_name(name);
        self.bound(binding, input.and_then(|i| i.args.as_ref()))
    }

    fn bound(&self, binding: Binding, input: Option<&Payloads>) -> Binding {
        match input.filter(|p| self.bind_input && !p.payloads.is_empty()) {
            Some(payloads) => binding.with_input(payloads_digest(&payloads.payloads)),
            None => binding,
        }
    }

    /// One `Header.fields` entry holding a fresh passport.
    fn entry(&self, claims: &Claims, binding: &Binding) -> Result<Vec<u8>, WriteError> {
        let token = self.issuer.issue(claims, binding)?;
        let header = Header {
            fields: HashMap::from([(
                self.header_key.clone(),
                Payload {
                    metadata: HashMap::from([("encoding".to_owned(), PASSPORT_ENCODING.to_vec())]),
                    data: token.into_bytes(),
                    ..Default::default()
                },
            )]),
        };
        Ok(header.encode_to_vec())
    }
}

/// `message` with `header` (an encoded `Header`) appended at `path`: a parser merges it into
/// the header already there.
fn append(mut message: Vec<u8>, path: &[u64], header: Vec<u8>) -> Vec<u8> {
    message.extend_from_slice(&wire::nest(path, header));
    message
}

/// The input digest of Temporal payloads, as a worker computes it from the same payloads.
pub fn payloads_digest(payloads: &[Payload]) -> String {
    input_digest(payloads.iter().map(|payload| {
        PayloadView {
            metadata: payload
                .metadata
                .iter()
                .map(|(key, value)| (key.as_bytes(), value.as_slice())),
            data: &payload.data,
        }
    }))
}

/// The passport in a Temporal header under `key`, if there is one: the payload's data as
/// text.
pub fn passport_in<'a>(fields: &'a HashMap<String, Payload>, key: &str) -> Option<&'a str> {
    fields
        .get(key)
        .and_then(|payload| std::str::from_utf8(&payload.data).ok())
}
