//! The fused authenticate → authorize → require-decision service of the one-line builder.
//!
//! It behaves exactly as [`AuthenticateLayer`](crate::AuthenticateLayer), the authorization
//! layers and [`RequireDecisionLayer`](crate::RequireDecisionLayer) stacked, but as one service
//! with one response future: a server pays for one step instead of three.

use std::{
    fmt,
    sync::Arc,
    task::{Context, Poll},
};

use http::{Request, Response};
use tower_service::Service;
use warden_core::{Answer, AuthzRequest, Claims, Decision};

use crate::{
    authenticate::{self, rejection as auth_rejection},
    authorize::{Authorizer, check_all},
    body::ResponseBody,
    call::Call,
    classify::stream::{StreamChecks, no_layer_decides},
    gate::{Admit, Gate},
    rejection::{Code, Rejection},
};

/// The service between [`Classify`](crate::classify::Classify) and the inner service in a
/// [`WardenLayer`](crate::WardenLayer).
#[derive(Clone)]
pub struct Guard<S> {
    pub(crate) inner: S,
    pub(crate) authenticate: Arc<authenticate::Config>,
    pub(crate) authorizers: Arc<[Authorizer]>,
}

impl<S> fmt::Debug for Guard<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard")
            .field("authorizers", &self.authorizers)
            .finish_non_exhaustive()
    }
}

type Admitted = (Arc<Claims>, Decision);

impl<S, B, ResB> Service<Request<B>> for Guard<S>
where
    S: Service<Request<B>, Response = Response<ResB>> + Clone,
{
    type Response = Response<ResponseBody<ResB>>;
    type Error = S::Error;
    type Future = Gate<S, B, Admitted>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        let call = request.extensions().get::<Call>();
        let Some(operation) = call.and_then(Call::operation) else {
            let rejection = Rejection::new(
                Code::Internal,
                "warden misconfigured: no operation in the request",
            );
            return Gate::refused(&request, &rejection);
        };
        let info = match self
            .authenticate
            .auth_info(request.headers(), request.extensions())
        {
            Ok(info) => info,
            Err(error) => return Gate::refused(&request, &auth_rejection(&error)),
        };
        let answer = match self.authenticate.map(&info) {
            // The usual case: claims and decision known now, nothing kept for later.
            Answer::Ready(Ok(claims)) => decide(
                &self.authorizers,
                call.and_then(|c| c.checks.as_ref()),
                AuthzRequest::new(claims, Arc::clone(operation))
                    .with_context(call.map(|c| c.context.clone()).unwrap_or_default()),
            ),
            Answer::Ready(Err(rejection)) => return Gate::refused(&request, &rejection),
            Answer::Pending(mapping) => {
                let authorizers = Arc::clone(&self.authorizers);
                let operation = Arc::clone(operation);
                let context = call.map(|c| c.context.clone()).unwrap_or_default();
                let checks = call.and_then(|c| c.checks.clone());
                Answer::pending(async move {
                    let authz = AuthzRequest::new(mapping.await?, operation).with_context(context);
                    decide(&authorizers, checks.as_ref(), authz).await
                })
            }
        };
        match answer {
            Answer::Ready(Ok(admitted)) => {
                admitted.admit(request.extensions_mut());
                // Decided synchronously: the ready inner service is called directly.
                Gate::calling(self.inner.call(request))
            }
            Answer::Ready(Err(rejection)) => Gate::refused(&request, &rejection),
            Answer::Pending(check) => {
                Gate::deferred(&mut self.inner, request, Answer::Pending(check))
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
