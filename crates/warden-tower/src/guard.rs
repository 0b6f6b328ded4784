//! The authenticate → authorize → require-decision step of the one-line builder.
//!
//! It decides exactly as [`AuthenticateLayer`](crate::AuthenticateLayer), the authorization
//! layers and [`RequireDecisionLayer`](crate::RequireDecisionLayer) stacked, but runs inside the
//! classify service of a [`WardenLayer`](crate::WardenLayer): a call decided at once goes from
//! its first message to the inner service with no layer, future or body wrapper in between,
//! and its [`Call`] extension is inserted once, complete.

use std::{fmt, sync::Arc};

use http::{Extensions, HeaderMap};
use warden_core::{Answer, AuthzRequest, Claims, Decision};

use crate::{
    authenticate::{self, rejection as auth_rejection},
    authorize::{Authorizer, check_all},
    call::Call,
    classify::stream::{StreamChecks, no_layer_decides},
    rejection::{Code, Rejection},
};

/// What a call that passed proved: who called, and the decision that let it through.
pub(crate) type Admitted = (Arc<Claims>, Decision);

/// Authentication and the authorizers of a [`WardenLayer`](crate::WardenLayer).
pub(crate) struct Guard {
    pub(crate) authenticate: Arc<authenticate::Config>,
    pub(crate) authorizers: Arc<[Authorizer]>,
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("authorizers", &self.authorizers)
            .finish_non_exhaustive()
    }
}

impl Guard {
    /// Authenticates the caller of the classified `call` and runs every authorizer that
    /// applies: the claims and decision now (the usual case), a future of them, or the refusal.
    pub(crate) fn check(
        &self,
        headers: &HeaderMap,
        extensions: &Extensions,
        call: &Call,
    ) -> Answer<Result<Admitted, Rejection>> {
        let Some(operation) = call.operation() else {
            return Answer::Ready(Err(Rejection::new(
                Code::Internal,
                "warden misconfigured: no operation in the request",
            )));
        };
        let info = match self
            .authenticate
            .auth_info(headers, extensions, call.context.peer_addr)
        {
            Ok(info) => info,
            Err(error) => return Answer::Ready(Err(auth_rejection(&error))),
        };
        match self.authenticate.map(&info) {
            Answer::Ready(Ok(claims)) => decide(
                &self.authorizers,
                call.checks.as_ref(),
                AuthzRequest::new(claims, Arc::clone(operation)).with_context(call.context.clone()),
            ),
            Answer::Ready(Err(rejection)) => Answer::Ready(Err(rejection)),
            Answer::Pending(mapping) => {
                let authorizers = Arc::clone(&self.authorizers);
                let operation = Arc::clone(operation);
                let context = call.context.clone();
                let checks = call.checks.clone();
                Answer::pending(async move {
                    let authz = AuthzRequest::new(mapping.await?, operation).with_context(context);
                    decide(&authorizers, checks.as_ref(), authz).await
                })
            }
        }
    }
}

/// Runs every authorizer that applies over `authz`; some must decide and none may deny. A
/// client stream's later messages are registered to face the same authorizers.
fn decide(
    authorizers: &Arc<[Authorizer]>,
    checks: Option<&Arc<StreamChecks>>,
    authz: AuthzRequest,
) -> Answer<Result<Admitted, Rejection>> {
    if let Some(checks) = checks {
        checks.register(Arc::clone(authorizers), Arc::clone(&authz.subject));
    }
    let kind = authz.operation.kind;
    match check_all(authorizers, &authz, false) {
        Answer::Ready(result) => Answer::Ready(admitted(authz.subject, result, kind)),
        Answer::Pending(check) => {
            Answer::pending(async move { admitted(authz.subject, check.await, kind) })
        }
    }
}

fn admitted(
    claims: Arc<Claims>,
    result: Result<Option<Decision>, Rejection>,
    kind: warden_core::OperationKind,
) -> Result<Admitted, Rejection> {
    match result? {
        Some(decision) => Ok((claims, decision)),
        None => Err(no_layer_decides(kind)),
    }
}
