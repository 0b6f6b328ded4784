use std::{fmt, future::poll_fn};

use tower_service::Service;

use super::{Evaluation, Policy, PolicyError};
use crate::{Answer, AuthzRequest, BoxError, Decision};

/// Any `tower::Service<AuthzRequest, Response = Decision>` as a policy: a remote decision point
/// behind tower's timeout and retry, a cache, a load-shedder.
///
/// Each evaluation clones the service, waits for it to be ready and calls the ready clone,
/// following the tower contract. Errors of the service become [`PolicyError`]s (a denial).
#[derive(Clone)]
pub struct ServicePolicy<S> {
    service: S,
}

impl<S> ServicePolicy<S> {
    /// Wraps `service`.
    pub fn new(service: S) -> Self {
        Self { service }
    }
}

impl<S> fmt::Debug for ServicePolicy<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServicePolicy")
    }
}

impl<S> Policy for ServicePolicy<S>
where
    S: Service<AuthzRequest, Response = Decision> + Clone + Send + Sync + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
{
    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        let mut service = self.service.clone();
        let request = request.clone();
        Answer::pending(async move {
            let failed = |error: S::Error| {
                let error: BoxError = error.into();
                PolicyError::unavailable(error.to_string())
            };
            poll_fn(|cx| service.poll_ready(cx)).await.map_err(failed)?;
            service.call(request).await.map_err(failed)
        })
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::service_fn;

    use super::*;
    use crate::{Claims, Effect, Operation, OperationKind};

    #[tokio::test]
    async fn a_tower_service_decides_and_its_errors_are_policy_errors() {
        let decider = ServicePolicy::new(service_fn(|request: AuthzRequest| async move {
            Ok::<_, Infallible>(if request.subject.subject.as_deref() == Some("ann") {
                Decision::allow("pdp")
            } else {
                Decision::deny("pdp", "not ann")
            })
        }));
        let ask = |who: &str| {
            AuthzRequest::new(
                Claims::for_subject(who),
                Operation::new(OperationKind::Query, "s", "m"),
            )
        };
        assert_eq!(
            decider.evaluate(&ask("ann")).await.unwrap().effect(),
            Effect::Allow
        );
        assert_eq!(
            decider.evaluate(&ask("bob")).await.unwrap().effect(),
            Effect::Deny
        );

        let broken = ServicePolicy::new(service_fn(|_: AuthzRequest| async {
            Err::<Decision, _>(std::io::Error::other("connection refused"))
        }));
        let error = broken.evaluate(&ask("ann")).await.unwrap_err();
        assert_eq!(error.kind(), crate::PolicyErrorKind::Unavailable);
        assert_eq!(error.message(), "connection refused");
    }
}
