use std::{borrow::Cow, fmt, sync::Arc};

/// What a policy concluded.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Effect {
    /// The call may proceed.
    Allow,
    /// The call is refused.
    Deny,
    /// The policy has nothing to say about this call; enforcement treats it as a denial.
    NotApplicable,
}

impl Effect {
    /// The lowercase name used in logs and metrics labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Allow => "allow",
            Self::Deny => "deny",
            Self::NotApplicable => "not_applicable",
        }
    }
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something an allowed call must also do, as named by the policy (e.g. `audit`, `redact`).
#[derive(Clone, Debug, PartialEq)]
pub struct Obligation {
    /// What must be done.
    pub id: Cow<'static, str>,
    /// Its parameters.
    pub value: serde_json::Value,
}

/// A policy's answer: the effect, which policy or rule decided, why, and any obligations.
#[derive(Clone, Debug, PartialEq)]
pub struct Decision {
    effect: Effect,
    decider: Arc<str>,
    reason: Option<Cow<'static, str>>,
    obligations: Vec<Obligation>,
}

impl Decision {
    /// Allows the call; `decider` names the policy or rule that decided.
    pub fn allow(decider: impl Into<Arc<str>>) -> Self {
        Self::new(Effect::Allow, decider.into(), None)
    }

    /// Denies the call, saying why.
    pub fn deny(decider: impl Into<Arc<str>>, reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(Effect::Deny, decider.into(), Some(reason.into()))
    }

    /// Says the policy does not apply to this call.
    pub fn not_applicable(decider: impl Into<Arc<str>>) -> Self {
        Self::new(Effect::NotApplicable, decider.into(), None)
    }

    fn new(effect: Effect, decider: Arc<str>, reason: Option<Cow<'static, str>>) -> Self {
        Self {
            effect,
            decider,
            reason,
            obligations: Vec::new(),
        }
    }

    /// Adds an obligation.
    #[must_use]
    pub fn with_obligation(mut self, obligation: Obligation) -> Self {
        self.obligations.push(obligation);
        self
    }

    /// Sets or replaces the reason.
    #[must_use]
    pub fn with_reason(mut self, reason: impl Into<Cow<'static, str>>) -> Self {
        self.reason = Some(reason.into());
        self
    }

    /// The effect.
    pub fn effect(&self) -> Effect {
        self.effect
    }

    /// Whether the call may proceed.
    pub fn is_allowed(&self) -> bool {
        self.effect == Effect::Allow
    }

    /// The id of the policy or rule that decided.
    pub fn decider(&self) -> &str {
        &self.decider
    }

    /// Why, when the policy said.
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }

    /// What an allowed call must also do.
    pub fn obligations(&self) -> &[Obligation] {
        &self.obligations
    }

    pub(crate) fn extend_obligations(&mut self, more: Vec<Obligation>) {
        self.obligations.extend(more);
    }

    pub(crate) fn take_obligations(&mut self) -> Vec<Obligation> {
        std::mem::take(&mut self.obligations)
    }
}
