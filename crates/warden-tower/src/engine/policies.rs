//! The policy table: which policies judge which kinds, each under a timeout and a panic guard,
//! every outcome audited and counted.

use std::{
    future::Future,
    panic::{AssertUnwindSafe, catch_unwind},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use pin_project_lite::pin_project;
use warden_core::{
    Answer, AuthzRequest, Decision, Effect, KindSet, Operation, PolicyError, SharedPolicy,
};

use crate::{
    rejection::{Code, Rejection},
    telemetry::{Outcome, record_decision},
};

use crate::classify::StreamCheck;

/// How long a policy may take before the call is denied `UNAVAILABLE`.
pub const DEFAULT_POLICY_TIMEOUT: Duration = Duration::from_secs(5);

/// One policy, the kinds it guards and how it is enforced.
#[derive(Clone)]
pub(crate) struct Authorizer {
    inner: Arc<AuthorizerInner>,
}

struct AuthorizerInner {
    layer: &'static str,
    kinds: KindSet,
    fallback: bool,
    policy: SharedPolicy,
    timeout: Duration,
    shadow: bool,
}

impl Authorizer {
    pub(crate) fn new(layer: &'static str, kinds: KindSet, policy: SharedPolicy) -> Self {
        Self {
            inner: Arc::new(AuthorizerInner {
                layer,
                kinds,
                fallback: false,
                policy,
                timeout: DEFAULT_POLICY_TIMEOUT,
                shadow: false,
            }),
        }
    }

    pub(crate) fn fallback(policy: SharedPolicy) -> Self {
        let mut this = Self::new("otherwise", KindSet::ALL, policy);
        this.edit(|inner| inner.fallback = true);
        this
    }

    fn edit(&mut self, f: impl FnOnce(&mut AuthorizerInner)) {
        match Arc::get_mut(&mut self.inner) {
            Some(inner) => f(inner),
            None => {
                let mut copy = AuthorizerInner {
                    layer: self.inner.layer,
                    kinds: self.inner.kinds,
                    fallback: self.inner.fallback,
                    policy: Arc::clone(&self.inner.policy),
                    timeout: self.inner.timeout,
                    shadow: self.inner.shadow,
                };
                f(&mut copy);
                self.inner = Arc::new(copy);
            }
        }
    }

    pub(crate) fn set_timeout(&mut self, timeout: Duration) {
        self.edit(|inner| inner.timeout = timeout);
    }

    pub(crate) fn set_shadow(&mut self, shadow: bool) {
        self.edit(|inner| inner.shadow = shadow);
    }

    /// Whether this authorizer judges `request`, given whether an earlier one already did.
    fn applies(&self, request: &AuthzRequest, decided: bool) -> bool {
        if self.inner.fallback {
            !decided
        } else {
            request.operation.is_any(self.inner.kinds)
        }
    }

    /// Evaluates the policy: panics, errors and timeouts become rejections; every outcome is
    /// logged and counted.
    fn evaluate(&self, request: &AuthzRequest) -> Answer<Result<Decision, Rejection>> {
        let started = Instant::now();
        let policy = &self.inner.policy;
        match catch_unwind(AssertUnwindSafe(|| policy.evaluate(request))) {
            Err(payload) => Answer::Ready(self.conclude(
                request,
                Err(PolicyError::panicked(&*payload)),
                started,
            )),
            Ok(Answer::Ready(result)) => Answer::Ready(self.conclude(request, result, started)),
            Ok(Answer::Pending(future)) => {
                let this = self.clone();
                let request = request.clone();
                let limit = self.inner.timeout;
                Answer::pending(async move {
                    let result =
                        match tokio::time::timeout(limit, CatchUnwind { inner: future }).await {
                            Ok(Ok(result)) => result,
                            Ok(Err(panic)) => Err(panic),
                            Err(_) => Err(PolicyError::timed_out(limit)),
                        };
                    this.conclude(&request, result, started)
                })
            }
        }
    }

    fn conclude(
        &self,
        request: &AuthzRequest,
        result: Result<Decision, PolicyError>,
        started: Instant,
    ) -> Result<Decision, Rejection> {
        let elapsed = started.elapsed();
        let outcome = match &result {
            Ok(decision) => match decision.effect() {
                Effect::Allow => Outcome::Allow,
                Effect::Deny => Outcome::Deny,
                Effect::NotApplicable => Outcome::NotApplicable,
            },
            Err(_) => Outcome::Error,
        };
        record_decision(request.operation.kind, outcome, elapsed.as_secs_f64());
        audit(
            request,
            self.inner.layer,
            &result,
            elapsed,
            self.inner.shadow,
        );

        let verdict = match result {
            Ok(decision) if decision.is_allowed() => Ok(decision),
            Ok(decision) if decision.effect() == Effect::NotApplicable => {
                let reason = format!(
                    "no policy applies to this {} operation",
                    request.operation.kind
                );
                Err(Rejection::denied(decision.with_reason(reason)))
            }
            Ok(decision) => Err(Rejection::denied(decision)),
            Err(error) => Err(policy_failure(&error)),
        };
        match verdict {
            Err(rejection) if self.inner.shadow => {
                Ok(rejection.decision().cloned().unwrap_or_else(|| {
                    Decision::deny(self.inner.layer, rejection.message().to_owned())
                }))
            }
            verdict => verdict,
        }
    }
}

fn policy_failure(error: &PolicyError) -> Rejection {
    // Every failure to decide is the truth of UNAVAILABLE: the call may succeed when the
    // policy can answer again.
    Rejection::new(
        Code::Unavailable,
        format!("authorization unavailable: {error}"),
    )
}

fn audit(
    request: &AuthzRequest,
    layer: &'static str,
    result: &Result<Decision, PolicyError>,
    elapsed: Duration,
    shadow: bool,
) {
    let op = &request.operation;
    // An error's reason names its class too (`policy panicked: …`): operators must tell a
    // bug from an outage. Formatted on this cold path only.
    let failure;
    let (decision, decider, reason) = match result {
        Ok(d) => (d.effect().as_str(), d.decider(), d.reason().unwrap_or("")),
        Err(e) => {
            failure = e.to_string();
            ("error", "", failure.as_str())
        }
    };
    tracing::info!(
        target: "warden::audit",
        subject = request.subject.subject.as_deref().unwrap_or("<anonymous>"),
        service = &*op.service,
        method = &*op.method,
        kind = op.kind.as_str(),
        namespace = op.namespace.as_deref().unwrap_or(""),
        instance = op.instance_id.as_deref().unwrap_or(""),
        name = op.name.as_deref().unwrap_or(""),
        message_index = request.context.message_index,
        layer,
        decision,
        decider,
        reason,
        shadow,
        latency_us = elapsed.as_micros() as u64,
        "authorization decision"
    );
}

/// The policies of one layer or engine, in order: every one that applies to a call must allow.
#[derive(Clone, Debug, Default)]
pub(crate) struct PolicyTable {
    authorizers: Arc<[Authorizer]>,
}

impl PolicyTable {
    pub(crate) fn new(authorizers: Vec<Authorizer>) -> Self {
        Self {
            authorizers: authorizers.into(),
        }
    }

    /// The same table with `f` applied to every authorizer.
    pub(crate) fn edit(&self, f: impl Fn(&mut Authorizer)) -> Self {
        let mut authorizers = self.authorizers.to_vec();
        authorizers.iter_mut().for_each(f);
        Self::new(authorizers)
    }

    /// Runs the table in order over `request`: each authorizer that applies must allow.
    /// Returns the last decision, or `None` when none applied (and none had before:
    /// `decided`). Synchronous while every policy is.
    /// Whether any policy that may decide `operation` reads the request metadata.
    pub(crate) fn reads_metadata(&self, operation: &Operation) -> bool {
        self.authorizers.iter().any(|authorizer| {
            let inner = &authorizer.inner;
            (inner.fallback || operation.is_any(inner.kinds)) && inner.policy.reads_metadata()
        })
    }

    pub(crate) fn check(
        &self,
        request: &AuthzRequest,
        mut decided: bool,
    ) -> Answer<Result<Option<Decision>, Rejection>> {
        let mut last = None;
        for (index, authorizer) in self.authorizers.iter().enumerate() {
            if !authorizer.applies(request, decided) {
                continue;
            }
            match authorizer.evaluate(request) {
                Answer::Ready(Ok(decision)) => {
                    decided = true;
                    last = Some(decision);
                }
                Answer::Ready(Err(rejection)) => return Answer::Ready(Err(rejection)),
                Answer::Pending(first) => {
                    let authorizers = Arc::clone(&self.authorizers);
                    let request = request.clone();
                    return Answer::pending(async move {
                        let mut last = Some(first.await?);
                        for authorizer in &authorizers[index + 1..] {
                            if authorizer.applies(&request, true) {
                                last = Some(authorizer.evaluate(&request).await?);
                            }
                        }
                        Ok(last)
                    });
                }
            }
        }
        Answer::Ready(Ok(last))
    }
}

impl StreamCheck for PolicyTable {
    fn check(&self, request: &AuthzRequest, decided: bool) -> Answer<Result<bool, Rejection>> {
        match PolicyTable::check(self, request, decided) {
            Answer::Ready(result) => Answer::Ready(result.map(|d| decided || d.is_some())),
            Answer::Pending(check) => {
                Answer::pending(async move { Ok(decided || check.await?.is_some()) })
            }
        }
    }
}

pin_project! {
    /// Turns a panic while polling into a policy error.
    struct CatchUnwind<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T> Future for CatchUnwind<F>
where
    F: Future<Output = Result<T, PolicyError>>,
{
    type Output = Result<Result<T, PolicyError>, PolicyError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let inner = self.project().inner;
        match catch_unwind(AssertUnwindSafe(|| inner.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Err(payload) => Poll::Ready(Err(PolicyError::panicked(&*payload))),
        }
    }
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer")
            .field("layer", &self.inner.layer)
            .field("kinds", &self.inner.kinds)
            .field("fallback", &self.inner.fallback)
            .field("timeout", &self.inner.timeout)
            .field("shadow", &self.inner.shadow)
            .finish()
    }
}
