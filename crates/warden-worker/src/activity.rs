//! The activity interceptor: an activity runs on behalf of the caller who started its
//! workflow, and only when the activity policy allows.

use std::sync::Arc;

use temporalio_sdk::{
    activities::ActivityError,
    interceptors::{ActivityInboundInterceptor, ExecuteActivityInput, ExecuteActivityOutput, Next},
};
use warden_core::{Answer, AuthzRequest, OperationKind};
use warden_passport::{Binding, Refusal};
use warden_temporal::passport::passport_in;

use crate::{
    guard::{Denial, Shared},
    workflow::failure,
};

/// Checks each activity before it runs; see the [crate docs](crate#activities).
#[derive(Clone, Debug)]
pub struct ActivityGuard {
    shared: Arc<Shared>,
}

impl ActivityGuard {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }

    async fn check(&self, input: &ExecuteActivityInput) -> Result<(), Denial> {
        let info = input.activity_info();
        let workflow_id = info.workflow_id.as_deref().unwrap_or("");
        let token =
            passport_in(input.headers(), &self.shared.header_key).ok_or(Refusal::Missing)?;
        let expected = Binding::new(info.namespace.as_str(), workflow_id, OperationKind::Execute);
        let passport = self.shared.verifier.verify_issued(token, &expected)?;
        let operation = Shared::activity_operation(
            &info.namespace,
            workflow_id,
            info.workflow_type.as_deref().unwrap_or(""),
            &info.activity_type,
        );
        let request = AuthzRequest::new(passport.claims, operation);
        let decided = match self.shared.activity.authorize(&request) {
            Answer::Ready(result) => result,
            Answer::Pending(pending) => pending.await,
        };
        decided
            .map(|_| ())
            .map_err(|rejection| Denial::refused(&rejection))
    }
}

impl ActivityInboundInterceptor for ActivityGuard {
    fn execute_activity<'a>(
        &'a self,
        input: ExecuteActivityInput,
        next: Next<'a, ExecuteActivityInput, ExecuteActivityOutput<'a>>,
    ) -> ExecuteActivityOutput<'a> {
        Box::pin(async move {
            match self.check(&input).await {
                Ok(()) => next.run(input).await,
                Err(denial) => {
                    let info = input.activity_info();
                    tracing::warn!(
                        target: "warden::audit",
                        door = "worker",
                        outcome = "deny",
                        kind = "activity",
                        name = %info.activity_type,
                        namespace = %info.namespace,
                        workflow_id = info.workflow_id.as_deref().unwrap_or(""),
                        reason = %denial,
                        "refused before the activity",
                    );
                    Err(ActivityError::Application(Box::new(failure(&denial))))
                }
            }
        })
    }
}
