"""The Temporal worker interceptors."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

import temporalio.activity
import temporalio.api.common.v1
import temporalio.workflow
from temporalio.exceptions import ApplicationError
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    ExecuteWorkflowInput,
    HandleQueryInput,
    HandleSignalInput,
    HandleUpdateInput,
    Interceptor,
    StartActivityInput,
    WorkflowInboundInterceptor,
    WorkflowInterceptorClassInput,
    WorkflowOutboundInterceptor,
)
from temporalio.worker.workflow_sandbox import SandboxRestrictions

from ._passport import HEADER_KEY, Binding, Passport, PassportVerifier, Refusal, passport_in

PERMISSION_DENIED = "PermissionDenied"

audit = logging.getLogger("warden.audit")


@dataclass(frozen=True)
class Call:
    """What a policy decides: the job, and the caller the passport names."""

    kind: str  # "execute", "signal", "query", "update" or "activity"
    namespace: str
    workflow_id: str
    workflow_type: str
    name: str | None
    passport: Passport

    @property
    def subject(self) -> str | None:
        return self.passport.subject

    def roles(self, namespace: str) -> set[str]:
        """The caller's roles in ``namespace``, system-wide roles included."""
        claims = self.passport.claims
        spec = "|".join(filter(None, [claims.get("system"), (claims.get("ns") or {}).get(namespace)]))
        return set(filter(None, spec.split("|")))


# A policy answers True to allow; False, or a reason, to deny. Inside a workflow it must be a
# pure function of the call: no I/O, no clock, no state of its own.
Policy = Callable[[Call], Union[bool, str]]


def _allow(_: Call) -> bool:
    return True


class PolicyVersions:
    """Policies by the time (Unix seconds) they take effect; each event is decided by the
    version in force at its own time, so old histories replay as they first ran."""

    def __init__(self, versions: Sequence[tuple[int, Policy]]) -> None:
        self._versions = sorted(versions, key=lambda version: version[0])
        if len({since for since, _ in self._versions}) != len(self._versions):
            raise ValueError("two policy versions take effect at the same time")

    def at(self, now: int) -> Policy | None:
        current = None
        for since, policy in self._versions:
            if since <= now:
                current = policy
        return current


def sandbox_restrictions(
    base: SandboxRestrictions = SandboxRestrictions.default,
) -> SandboxRestrictions:
    """The workflow sandbox's restrictions with this package and PyJWT passed through: the
    interceptor runs inside the sandbox with the keys loaded outside it."""
    return base.with_passthrough_modules("warden_worker", "jwt", "cryptography")


class _Denied(Exception):
    pass


class WardenInterceptor(Interceptor):
    """Checks every inbound job's passport, then ``policy``, before its code runs."""

    def __init__(
        self,
        verifier: PassportVerifier,
        policy: Policy | PolicyVersions | None = None,
        activity_policy: Policy | None = None,
        header_key: str = HEADER_KEY,
    ) -> None:
        self.verifier = verifier
        self.policies = policy if isinstance(policy, PolicyVersions) else PolicyVersions([(0, policy or _allow)])
        # Without an activity policy every activity is refused, as in the Rust worker.
        self.activity_policy = activity_policy or (lambda _: "no activity policy is configured")
        self.header_key = header_key

    def judge(
        self,
        kind: str,
        info: Any,
        name: str | None,
        headers: Mapping[str, temporalio.api.common.v1.Payload],
        now: int | None,
        policy: Policy | None,
        replaying: bool = False,
    ) -> Passport:
        """Verifies and decides one job; raises ``_Denied`` with the reason."""
        namespace = getattr(info, "namespace", None) or getattr(info, "workflow_namespace", "")
        workflow_type = getattr(info, "workflow_type", "") or ""
        # An activity runs on the start's passport, which names no activity.
        if kind == "activity":
            binding = Binding(namespace, info.workflow_id or "", "execute")
        else:
            binding = Binding(namespace, info.workflow_id or "", kind, name)
        try:
            passport = self.verifier.verify(passport_in(headers, self.header_key), binding, now)
            if policy is None:
                raise Refusal("no policy version is in force")
            verdict = policy(Call(kind, namespace, binding.workflow_id, workflow_type, name, passport))
            if verdict is not True:
                raise Refusal(verdict if isinstance(verdict, str) else "the policy denies it")
            return passport
        except Refusal as refusal:
            audit.warning(
                "refused before the handler",
                extra={
                    "door": "worker",
                    "outcome": "deny",
                    "kind": kind,
                    "job_name": name or "",
                    "namespace": namespace,
                    "workflow_id": binding.workflow_id,
                    "replaying": replaying,
                    "reason": str(refusal),
                },
            )
            raise _Denied(f"permission denied: {refusal}") from None

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _ActivityInbound(next, self)

    def workflow_interceptor_class(
        self, input: WorkflowInterceptorClassInput
    ) -> type[WorkflowInboundInterceptor]:
        guard = self

        class Inbound(_WorkflowInbound):
            _guard = guard

        return Inbound


def _permission_denied(denied: _Denied) -> ApplicationError:
    return ApplicationError(str(denied), type=PERMISSION_DENIED, non_retryable=True)


class _WorkflowInbound(WorkflowInboundInterceptor):
    _guard: WardenInterceptor
    _start: temporalio.api.common.v1.Payload | None = None

    def init(self, outbound: WorkflowOutboundInterceptor) -> None:
        super().init(_WorkflowOutbound(outbound, self))

    def _judge(self, kind: str, name: str | None, headers: Mapping[str, Any]) -> Passport:
        now = int(temporalio.workflow.now().timestamp())
        return self._guard.judge(
            kind,
            temporalio.workflow.info(),
            name,
            headers,
            now,
            self._guard.policies.at(now),
            temporalio.workflow.unsafe.is_replaying(),
        )

    async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
        try:
            self._judge("execute", None, input.headers)
        except _Denied as denied:
            raise _permission_denied(denied) from None
        self._start = input.headers.get(self._guard.header_key)
        return await super().execute_workflow(input)

    async def handle_signal(self, input: HandleSignalInput) -> None:
        try:
            self._judge("signal", input.signal, input.headers)
        except _Denied:
            # Already in history: dropped before its handler, the same way on every replay.
            return
        await super().handle_signal(input)

    async def handle_query(self, input: HandleQueryInput) -> Any:
        try:
            self._judge("query", input.query, input.headers)
        except _Denied as denied:
            raise _permission_denied(denied) from None
        return await super().handle_query(input)

    def handle_update_validator(self, input: HandleUpdateInput) -> None:
        try:
            self._judge("update", input.update, input.headers)
        except _Denied as denied:
            raise _permission_denied(denied) from None
        super().handle_update_validator(input)

    async def handle_update_handler(self, input: HandleUpdateInput) -> Any:
        # Updates without a validator are only seen here; the others are judged again, the
        # same way, which also holds on replay, where validators do not run.
        try:
            self._judge("update", input.update, input.headers)
        except _Denied as denied:
            raise _permission_denied(denied) from None
        return await super().handle_update_handler(input)


class _WorkflowOutbound(WorkflowOutboundInterceptor):
    def __init__(self, next: WorkflowOutboundInterceptor, inbound: _WorkflowInbound) -> None:
        super().__init__(next)
        self._inbound = inbound

    def start_activity(self, input: StartActivityInput) -> temporalio.workflow.ActivityHandle[Any]:
        start = self._inbound._start
        if start is not None:
            input.headers = {**input.headers, self._inbound._guard.header_key: start}
        return super().start_activity(input)


class _ActivityInbound(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, guard: WardenInterceptor) -> None:
        super().__init__(next)
        self._guard = guard

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        info = temporalio.activity.info()
        try:
            # On behalf of whoever started the workflow; not its lifetime, as an activity
            # may run long after the start.
            self._guard.judge(
                "activity", info, info.activity_type, input.headers, None, self._guard.activity_policy
            )
        except _Denied as denied:
            raise _permission_denied(denied) from None
        return await super().execute_activity(input)
