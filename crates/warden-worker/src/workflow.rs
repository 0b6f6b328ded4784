//! The workflow interceptor: starts, signals, queries and updates judged before their code.

use std::{cell::RefCell, collections::HashMap, sync::Arc};

use temporalio_common::protos::temporal::api::common::v1::Payload;
use temporalio_sdk::{
    ApplicationFailure, WorkflowTermination,
    workflow_interceptors::{
        CancellableWorkflowOutboundFuture, ExecuteWorkflowInput, ExecuteWorkflowResult,
        HandleQueryInput, HandleQueryResult, HandleSignalInput, HandleSignalResult,
        HandleUpdateInput, HandleUpdateResult, ScheduleActivityInput, ScheduleActivityResult,
        SyncWorkflowInterceptorContext, ValidateUpdateInput, ValidateUpdateResult,
        WorkflowInterceptor, WorkflowInterceptorConstructor, WorkflowInterceptorContext,
        WorkflowInterceptorFuture, WorkflowNext,
    },
};
use warden_core::OperationKind;

use crate::{
    PERMISSION_DENIED,
    guard::{Denial, Job, Shared},
};

pub(crate) fn constructor(shared: Arc<Shared>) -> WorkflowInterceptorConstructor {
    WorkflowInterceptorConstructor::new(move |_| Guard {
        shared: Arc::clone(&shared),
        start: RefCell::new(None),
    })
}

/// One per workflow instance, rebuilt with it on replay.
struct Guard {
    shared: Arc<Shared>,
    /// The passport the run was started with, handed on to its activities.
    start: RefCell<Option<Payload>>,
}

/// A refusal, as the error workflow code and callers see.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(crate) struct PermissionDenied(pub(crate) String);

impl PermissionDenied {
    fn boxed(denial: &Denial) -> Box<dyn std::error::Error + Send + Sync> {
        Box::new(Self(denial.message()))
    }
}

/// A non-retryable `PermissionDenied` application failure.
pub(crate) fn failure(denial: &Denial) -> ApplicationFailure {
    ApplicationFailure::builder(PermissionDenied::boxed(denial))
        .type_name(PERMISSION_DENIED.to_owned())
        .non_retryable(true)
        .build()
}

macro_rules! job {
    ($ctx:expr) => {
        Job {
            namespace: $ctx.namespace(),
            workflow_id: $ctx.workflow_id(),
            workflow_type: $ctx.workflow_type(),
            time: $ctx.workflow_time(),
            replaying: $ctx.is_replaying_history_events(),
        }
    };
}

impl Guard {
    /// Judges a job whose refusal is an error to its caller: `permission denied: …`.
    fn admit(
        &self,
        job: &Job<'_>,
        kind: OperationKind,
        name: &str,
        headers: &HashMap<String, Payload>,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        self.shared
            .judge(job, kind, Some(name), headers)
            .map(drop)
            .map_err(|denial| PermissionDenied::boxed(&denial))
    }
}

impl WorkflowInterceptor for Guard {
    fn execute<'a>(
        &'a self,
        ctx: WorkflowInterceptorContext,
        input: ExecuteWorkflowInput,
        next: WorkflowNext<
            'a,
            ExecuteWorkflowInput,
            WorkflowInterceptorFuture<'a, ExecuteWorkflowResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, ExecuteWorkflowResult> {
        match self
            .shared
            .judge(&job!(ctx), OperationKind::Execute, None, input.headers())
        {
            Ok(_) => {
                *self.start.borrow_mut() = input.headers().get(&self.shared.header_key).cloned();
                next.run(input)
            }
            Err(denial) => {
                let failure = failure(&denial);
                WorkflowInterceptorFuture::new(async move {
                    Err(WorkflowTermination::failed_application(failure))
                })
            }
        }
    }

    fn handle_signal<'a>(
        &'a self,
        ctx: WorkflowInterceptorContext,
        input: HandleSignalInput,
        next: WorkflowNext<
            'a,
            HandleSignalInput,
            WorkflowInterceptorFuture<'a, HandleSignalResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, HandleSignalResult> {
        let admitted = self.admit(
            &job!(ctx),
            OperationKind::Signal,
            input.name(),
            input.headers(),
        );
        match admitted {
            Ok(()) => next.run(input),
            // Already in history: dropped before its handler, the same way on every replay.
            Err(_) => WorkflowInterceptorFuture::new(async { Ok(()) }),
        }
    }

    fn handle_query(
        &self,
        ctx: SyncWorkflowInterceptorContext,
        input: HandleQueryInput,
        next: WorkflowNext<'_, HandleQueryInput, HandleQueryResult>,
    ) -> HandleQueryResult {
        self.admit(
            &job!(ctx),
            OperationKind::Query,
            input.name(),
            input.headers(),
        )?;
        next.run(input)
    }

    fn validate_update(
        &self,
        ctx: SyncWorkflowInterceptorContext,
        input: ValidateUpdateInput,
        next: WorkflowNext<'_, ValidateUpdateInput, ValidateUpdateResult>,
    ) -> ValidateUpdateResult {
        self.admit(
            &job!(ctx),
            OperationKind::Update,
            input.name(),
            input.headers(),
        )?;
        next.run(input)
    }

    fn handle_update<'a>(
        &'a self,
        ctx: WorkflowInterceptorContext,
        input: HandleUpdateInput,
        next: WorkflowNext<
            'a,
            HandleUpdateInput,
            WorkflowInterceptorFuture<'a, HandleUpdateResult>,
        >,
    ) -> WorkflowInterceptorFuture<'a, HandleUpdateResult> {
        // Updates without a validator are only seen here; the others are judged again, the
        // same way, which also holds on replay, where validators do not run.
        match self.admit(
            &job!(ctx),
            OperationKind::Update,
            input.name(),
            input.headers(),
        ) {
            Ok(()) => next.run(input),
            Err(error) => WorkflowInterceptorFuture::new(async move { Err(error.into()) }),
        }
    }

    fn schedule_activity(
        &self,
        _ctx: WorkflowInterceptorContext,
        mut input: ScheduleActivityInput,
        next: WorkflowNext<
            'static,
            ScheduleActivityInput,
            CancellableWorkflowOutboundFuture<ScheduleActivityResult>,
        >,
    ) -> CancellableWorkflowOutboundFuture<ScheduleActivityResult> {
        if let Some(passport) = self.start.borrow().clone() {
            input
                .headers_mut()
                .insert(self.shared.header_key.clone(), passport);
        }
        next.run(input)
    }
}
