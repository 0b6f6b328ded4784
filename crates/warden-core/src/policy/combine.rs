use std::{fmt, sync::Arc};

use super::{Evaluation, Policy, PolicyError, SharedPolicy};
use crate::{Answer, AuthzRequest, Decision, Effect};

/// How a combinator folds its children's decisions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    DenyOverrides,
    PermitOverrides,
    FirstApplicable,
}

/// The running state of one combination: children are asked in order and the first decisive
/// answer ends it.
struct Fold {
    mode: Mode,
    id: Arc<str>,
    held: Option<Decision>,
}

impl Fold {
    fn new(mode: Mode, id: Arc<str>) -> Self {
        Self {
            mode,
            id,
            held: None,
        }
    }

    /// Takes one child's decision; returns the final decision once it is known.
    fn step(&mut self, mut decision: Decision) -> Option<Decision> {
        match (self.mode, decision.effect()) {
            (_, Effect::NotApplicable) => None,
            (Mode::DenyOverrides, Effect::Deny)
            | (Mode::PermitOverrides, Effect::Allow)
            | (Mode::FirstApplicable, _) => Some(decision),
            (Mode::DenyOverrides, Effect::Allow) => {
                // Keep the first allow; collect every allowing child's obligations.
                match &mut self.held {
                    Some(held) => held.extend_obligations(decision.take_obligations()),
                    None => self.held = Some(decision),
                }
                None
            }
            (Mode::PermitOverrides, Effect::Deny) => {
                self.held.get_or_insert(decision);
                None
            }
        }
    }

    fn finish(self) -> Decision {
        self.held
            .unwrap_or_else(|| Decision::not_applicable(self.id))
    }
}

/// Evaluates children in order; stays synchronous until a child answers `Pending`.
fn evaluate(
    mode: Mode,
    id: &Arc<str>,
    children: &Arc<[SharedPolicy]>,
    request: &AuthzRequest,
) -> Evaluation {
    let mut fold = Fold::new(mode, Arc::clone(id));
    for (index, child) in children.iter().enumerate() {
        match child.evaluate(request) {
            Answer::Ready(Ok(decision)) => {
                if let Some(done) = fold.step(decision) {
                    return Answer::Ready(Ok(done));
                }
            }
            Answer::Ready(Err(error)) => return Answer::Ready(Err(error)),
            Answer::Pending(first) => {
                let children = Arc::clone(children);
                let request = request.clone();
                return Answer::pending(async move {
                    if let Some(done) = fold.step(first.await?) {
                        return Ok(done);
                    }
                    for child in &children[index + 1..] {
                        if let Some(done) = fold.step(child.evaluate(&request).await?) {
                            return Ok(done);
                        }
                    }
                    Ok::<_, PolicyError>(fold.finish())
                });
            }
        }
    }
    Answer::Ready(Ok(fold.finish()))
}

macro_rules! combinator {
    ($(#[$doc:meta])* $name:ident, $mode:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name {
            id: Arc<str>,
            children: Arc<[SharedPolicy]>,
        }

        impl $name {
            /// Combines `children`, asked in order; `id` names the combination.
            pub fn new(id: impl Into<Arc<str>>, children: Vec<SharedPolicy>) -> Self {
                Self {
                    id: id.into(),
                    children: children.into(),
                }
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("id", &self.id)
                    .field("children", &self.children.len())
                    .finish()
            }
        }

        impl Policy for $name {
            fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
                evaluate($mode, &self.id, &self.children, request)
            }

            fn reads_metadata(&self) -> bool {
                self.children.iter().any(|child| child.reads_metadata())
            }

            fn deterministic(&self) -> bool {
                self.children.iter().all(|child| child.deterministic())
            }
        }
    };
}

combinator!(
    /// Deny overrides: any child's deny denies; otherwise any allow allows (with the
    /// obligations of every allowing child); children that do not apply are passed over, and
    /// with none applicable the result is not-applicable (which enforcement denies). An error
    /// of any child is an error.
    AllOf,
    Mode::DenyOverrides
);

combinator!(
    /// Permit overrides: the first allow allows; otherwise the first deny denies; with none
    /// applicable the result is not-applicable. An error of a child asked is an error.
    AnyOf,
    Mode::PermitOverrides
);

combinator!(
    /// The first child that applies decides.
    FirstApplicable,
    Mode::FirstApplicable
);

/// Shadow (dry-run) mode for one policy: it is evaluated, and what it would have decided is
/// reported, but the call goes through.
///
/// The answer is always an allow whose decider is `shadow/<the policy's decider>` and whose
/// reason says what the policy would have done (`shadowed: would deny: …`), so the audit event
/// shows it was shadowed. Errors are reported the same way (`shadowed: would fail: …`). Inside
/// an [`AllOf`] the other policies still decide.
#[derive(Clone)]
pub struct Shadow {
    inner: SharedPolicy,
}

impl Shadow {
    /// Shadows `policy`.
    pub fn new(policy: impl Policy) -> Self {
        Self {
            inner: Arc::new(policy),
        }
    }

    fn report(result: Result<Decision, PolicyError>) -> Decision {
        match result {
            Ok(decision) => {
                let would = match decision.effect() {
                    Effect::Allow => "allow",
                    Effect::Deny => "deny",
                    Effect::NotApplicable => "not apply",
                };
                let reason = match decision.reason() {
                    Some(reason) => format!("shadowed: would {would}: {reason}"),
                    None => format!("shadowed: would {would}"),
                };
                Decision::allow(format!("shadow/{}", decision.decider())).with_reason(reason)
            }
            Err(error) => {
                Decision::allow("shadow").with_reason(format!("shadowed: would fail: {error}"))
            }
        }
    }
}

impl fmt::Debug for Shadow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shadow").finish_non_exhaustive()
    }
}

impl Policy for Shadow {
    fn reads_metadata(&self) -> bool {
        self.inner.reads_metadata()
    }

    fn deterministic(&self) -> bool {
        self.inner.deterministic()
    }

    fn evaluate(&self, request: &AuthzRequest) -> Evaluation {
        match self.inner.evaluate(request) {
            Answer::Ready(result) => Answer::Ready(Ok(Self::report(result))),
            Answer::Pending(pending) => {
                Answer::pending(async move { Ok(Self::report(pending.await)) })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        Claims, Operation, OperationKind,
        policy::{AllowAll, DenyAll, async_policy_fn, policy_fn},
    };

    fn request() -> AuthzRequest {
        AuthzRequest::new(
            Claims::anonymous(),
            Operation::new(OperationKind::Signal, "s", "m"),
        )
    }

    fn na(id: &'static str) -> SharedPolicy {
        policy_fn(id, move |_: &AuthzRequest| Decision::not_applicable(id)).shared()
    }

    fn slow(decision: Decision) -> SharedPolicy {
        async_policy_fn("slow", move |_| {
            let decision = decision.clone();
            async move {
                tokio::task::yield_now().await;
                Ok(decision)
            }
        })
        .shared()
    }

    async fn decide(policy: &dyn Policy) -> Result<Decision, PolicyError> {
        policy.evaluate(&request()).await
    }

    #[tokio::test]
    async fn all_of_lets_one_deny_override_allows() {
        let policy = AllOf::new(
            "all",
            vec![AllowAll::new().shared(), DenyAll::new().shared()],
        );
        let decision = decide(&policy).await.unwrap();
        assert_eq!(decision.effect(), Effect::Deny);
        assert_eq!(decision.decider(), "deny-all");
    }

    #[tokio::test]
    async fn all_of_skips_not_applicable_children_and_is_not_applicable_when_all_are() {
        let policy = AllOf::new("all", vec![na("a"), AllowAll::new().shared()]);
        assert_eq!(decide(&policy).await.unwrap().effect(), Effect::Allow);
        let policy = AllOf::new("all", vec![na("a"), na("b")]);
        let decision = decide(&policy).await.unwrap();
        assert_eq!(decision.effect(), Effect::NotApplicable);
        assert_eq!(decision.decider(), "all");
    }

    #[tokio::test]
    async fn all_of_continues_after_a_pending_child_and_still_sees_a_later_deny() {
        let policy = AllOf::new(
            "all",
            vec![slow(Decision::allow("slow")), DenyAll::new().shared()],
        );
        assert!(policy.evaluate(&request()).now().is_none());
        assert_eq!(decide(&policy).await.unwrap().effect(), Effect::Deny);
    }

    #[tokio::test]
    async fn all_of_collects_obligations_of_every_allowing_child() {
        let with = |id: &'static str| {
            policy_fn(id, move |_: &AuthzRequest| {
                Decision::allow(id).with_obligation(crate::Obligation {
                    id: id.into(),
                    value: serde_json::Value::Null,
                })
            })
            .shared()
        };
        let policy = AllOf::new("all", vec![with("audit"), with("redact")]);
        let decision = decide(&policy).await.unwrap();
        let ids: Vec<_> = decision
            .obligations()
            .iter()
            .map(|o| o.id.as_ref())
            .collect();
        assert_eq!(ids, ["audit", "redact"]);
    }

    #[tokio::test]
    async fn any_of_lets_one_allow_override_denies() {
        let policy = AnyOf::new(
            "any",
            vec![DenyAll::new().shared(), slow(Decision::allow("slow"))],
        );
        let decision = decide(&policy).await.unwrap();
        assert_eq!(decision.effect(), Effect::Allow);
        assert_eq!(decision.decider(), "slow");
        let policy = AnyOf::new("any", vec![DenyAll::new().shared(), na("x")]);
        assert_eq!(decide(&policy).await.unwrap().effect(), Effect::Deny);
    }

    #[tokio::test]
    async fn first_applicable_takes_the_first_that_applies() {
        let policy = FirstApplicable::new(
            "first",
            vec![na("a"), DenyAll::new().shared(), AllowAll::new().shared()],
        );
        assert_eq!(decide(&policy).await.unwrap().effect(), Effect::Deny);
    }

    #[tokio::test]
    async fn a_child_error_is_an_error_not_a_pass() {
        let failing = async_policy_fn("boom", |_| async {
            Err(PolicyError::new("backend said no"))
        });
        let policy = AnyOf::new("any", vec![failing.shared(), AllowAll::new().shared()]);
        let error = decide(&policy).await.unwrap_err();
        assert_eq!(error.message(), "backend said no");
    }

    #[test]
    fn a_shadowed_policy_reports_what_it_would_do_and_lets_the_call_through() {
        let request = AuthzRequest::new(
            crate::Claims::anonymous(),
            crate::Operation::new(crate::OperationKind::Read, "s", "m"),
        );
        let shadowed = Shadow::new(DenyAll::new());
        let decision = shadowed.evaluate(&request).now().unwrap().unwrap();
        assert_eq!(decision.effect(), Effect::Allow);
        assert_eq!(decision.decider(), "shadow/deny-all");
        assert!(
            decision
                .reason()
                .unwrap()
                .starts_with("shadowed: would deny"),
            "{decision:?}"
        );
    }
}
