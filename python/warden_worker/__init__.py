"""Warden inside a Temporal Python worker.

`warden proxy` (or a Warden client guardrail) writes a signed *call passport* into the
Temporal header of each start, signal, query and update it allows. This package verifies it
with PyJWT before any workflow, signal, query, update or activity code runs, checks that it
was issued for exactly this call, and asks an optional policy. The passport format is
specified in the Rust crate ``warden-passport``; this is the same check as the Rust worker's
``warden-worker``.

    from warden_worker import PassportVerifier, WardenInterceptor, sandbox_restrictions

    verifier = PassportVerifier(jwks, issuers=["warden-proxy"], leeway=30)
    worker = Worker(
        client,
        task_queue="orders",
        workflows=[Order],
        activities=[charge],
        interceptors=[WardenInterceptor(verifier, policy=my_policy)],
        workflow_runner=SandboxedWorkflowRunner(restrictions=sandbox_restrictions()),
    )

Refusals, per job:

- workflow start: the run fails with a non-retryable ``PermissionDenied`` application error
  before the workflow's ``run`` method;
- signal: dropped before its handler, with an audit log record (``warden.audit``);
- query: an error to the caller;
- update: rejected in its validator when it declares one, so it never enters history;
  otherwise accepted and then failed with ``PermissionDenied``, its handler never running
  (the SDK runs the validator hook only for updates that declare a validator);
- activity: the start passport travels in the activity's header; the activity fails with a
  non-retryable ``PermissionDenied`` unless the passport verifies (its lifetime excepted)
  and the activity policy allows.

Checks inside the workflow are deterministic: *now* is ``workflow.now()``, keys are retired
(``retired={kid: unix_seconds}``) rather than removed, and the policy is a pure function of
the call (pass policy versions by the time they take effect to change it without changing
how old histories replay).

Interceptors see decoded arguments, not the payloads as they were on the wire, so the
passport's input digest is not checked here.
"""

from ._passport import Binding, Passport, PassportVerifier, Refusal, HEADER_KEY
from ._interceptor import (
    Call,
    PERMISSION_DENIED,
    PolicyVersions,
    WardenInterceptor,
    sandbox_restrictions,
)

__all__ = [
    "Binding",
    "Call",
    "HEADER_KEY",
    "PERMISSION_DENIED",
    "Passport",
    "PassportVerifier",
    "PolicyVersions",
    "Refusal",
    "WardenInterceptor",
    "sandbox_restrictions",
]
