"""A real Python worker with Warden's interceptor, driven through `warden proxy` and straight
at the Temporal server. Run by crates/warden-cli/tests/python_worker.rs, which starts the dev
server and the proxy and passes their addresses, tokens and the proxy's passport key in the
environment. Prints one line per check and `N passed, 0 failed` at the end; exits 1 on the
first failure."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os
import sys
import time
import traceback
import urllib.request
import uuid
from datetime import timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from temporalio import activity, workflow
from temporalio.api.common.v1 import Header, Payload, Payloads, WorkflowExecution
from temporalio.api.workflowservice.v1 import SignalWorkflowExecutionRequest
from temporalio.client import Client, WorkflowFailureError, WorkflowQueryFailedError, WorkflowUpdateFailedError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError
from temporalio.service import RPCError
from temporalio.worker import Replayer, Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

from warden_worker import Call, PassportVerifier, PolicyVersions, WardenInterceptor, sandbox_restrictions

CHARGES: list[int] = []


@activity.defn(name="charge")
async def charge(amount: int) -> int:
    CHARGES.append(amount)
    return amount


@workflow.defn(name="PyGuardedOrder")
class PyGuardedOrder:
    def __init__(self) -> None:
        self.events: list[str] = []
        self.approved = False
        self.closed = False

    @workflow.run
    async def run(self, amount: int) -> str:
        self.events.append("run")
        try:
            charged = await workflow.execute_activity(
                charge,
                amount,
                start_to_close_timeout=timedelta(seconds=10),
                retry_policy=RetryPolicy(maximum_attempts=3),
            )
            self.events.append(f"charged:{charged}")
        except ActivityError:
            self.events.append("charge-refused")
        await workflow.wait_condition(lambda: self.closed)
        if self.approved:
            # An approval changes the commands: a replay deciding it differently would not
            # match the history.
            await workflow.sleep(timedelta(milliseconds=1))
            return "approved"
        return "closed"

    @workflow.signal(name="add")
    def add(self, amount: int) -> None:
        self.events.append(f"add:{amount}")

    @workflow.signal(name="approve")
    def approve(self, note: str) -> None:
        self.approved = True
        self.events.append("approve")

    @workflow.signal(name="close")
    def close(self, reason: str) -> None:
        self.closed = True

    @workflow.query(name="events")
    def events(self) -> list[str]:
        return list(self.events)

    @workflow.update(name="discount")
    def discount(self, amount: int) -> int:
        self.events.append(f"discount:{amount}")
        return amount

    @discount.validator
    def validate_discount(self, amount: int) -> None:
        pass

    @workflow.update(name="note")
    def note(self, text: str) -> str:
        self.events.append(f"note:{text}")
        return text


def approvals(everyone: bool):
    def policy(call: Call) -> bool | str:
        if call.name == "approve" and not everyone and "admin" not in call.roles("orders"):
            return "only an admin of orders approves"
        return True

    return policy


def billing(call: Call) -> bool | str:
    return True if "admin" in call.roles("orders") else "only admins are charged"


passed = 0


def check(condition: bool, what: str) -> None:
    global passed
    if not condition:
        print(f"FAILED: {what}", flush=True)
        print(f"{passed} passed, 1 failed", flush=True)
        sys.exit(1)
    passed += 1
    print(f"ok: {what}", flush=True)


async def eventually(probe, limit: float = 30.0):
    deadline = time.monotonic() + limit
    while True:
        value = await probe()
        if value or time.monotonic() > deadline:
            return value
        await asyncio.sleep(0.1)


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def ed25519_from_pem(pem: bytes) -> Ed25519PrivateKey:
    """The proxy's Ed25519 key; rcgen writes PKCS#8 v2, which `cryptography` refuses, so the
    seed is read from the DER (`04 22 04 20` and 32 bytes)."""
    body = b"".join(line for line in pem.splitlines() if not line.startswith(b"-----"))
    der = base64.b64decode(body)
    at = der.index(bytes([0x04, 0x22, 0x04, 0x20])) + 4
    return Ed25519PrivateKey.from_private_bytes(der[at : at + 32])


def sign(key, kid: str, claims: dict) -> str:
    return jwt.encode(claims, key, algorithm="EdDSA", headers={"kid": kid, "typ": "warden-passport+jwt"})


class Reasons(logging.Handler):
    """Collects the reasons of Warden's audit records."""

    def __init__(self) -> None:
        super().__init__()
        self.reasons: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.reasons.append(getattr(record, "reason", ""))


async def main() -> None:
    env = os.environ
    reasons = Reasons()
    logging.getLogger("warden.audit").addHandler(reasons)
    proxy, server = env["WARDEN_PROXY"], env["WARDEN_SERVER"]
    with urllib.request.urlopen(f"http://{proxy}/.well-known/jwks.json") as response:
        jwks = json.load(response)
    verifier = PassportVerifier(jwks, issuers=["warden-proxy"], leeway=30)
    queue = f"py-guarded-{uuid.uuid4()}"

    def client(target: str, token: str | None) -> "asyncio.Future[Client]":
        metadata = {"authorization": f"Bearer {token}"} if token else {}
        return Client.connect(target, namespace="orders", rpc_metadata=metadata)

    worker_client = await client(proxy, env["WARDEN_TOKEN_WORKER"])
    alice = await client(proxy, env["WARDEN_TOKEN_ALICE"])
    bob = await client(proxy, env["WARDEN_TOKEN_BOB"])
    direct = await client(server, None)
    interceptor = WardenInterceptor(verifier, policy=approvals(False), activity_policy=billing)
    runner = SandboxedWorkflowRunner(restrictions=sandbox_restrictions())

    async def events(id: str) -> list[str]:
        return await alice.get_workflow_handle(id).query("events")

    async def events_with(id: str, wanted: str) -> list[str]:
        seen: list[str] = []

        async def probe():
            nonlocal seen
            seen = await events(id)
            return wanted in seen

        found = await eventually(probe)
        check(found, f"`{wanted}` shows in {id}'s events: {seen}")
        return seen

    async with Worker(
        worker_client,
        task_queue=queue,
        workflows=[PyGuardedOrder],
        activities=[charge],
        interceptors=[interceptor],
        workflow_runner=runner,
    ):
        # Starts through the proxy run; activities run on the starter's behalf.
        id = f"py-guarded-{uuid.uuid4()}"
        handle = await alice.start_workflow(PyGuardedOrder.run, 10, id=id, task_queue=queue)
        await events_with(id, "charged:10")
        check(CHARGES == [10], "alice's charge ran")
        bobs = f"py-guarded-bob-{uuid.uuid4()}"
        await bob.start_workflow(PyGuardedOrder.run, 20, id=bobs, task_queue=queue)
        await events_with(bobs, "charge-refused")
        check(CHARGES == [10], "the activity never ran for bob, who may not be charged")

        # Signals.
        await handle.signal("add", 5)
        await bob.get_workflow_handle(id).signal("approve", "bob")
        await direct.get_workflow_handle(id).signal("add", 100)

        # Forged, tampered, misbound, untrusted and expired passports, straight to the server.
        key = ed25519_from_pem(open(env["WARDEN_PASSPORT_KEY"], "rb").read())
        rogue = Ed25519PrivateKey.generate()
        now = int(time.time())

        def claims(wid: str = id, name: str = "add", iat: int = now, sub: str = "alice") -> dict:
            return {
                "iss": "warden-proxy", "sub": sub, "iat": iat, "exp": iat + 60,
                "op": {"ns": "orders", "wid": wid, "kind": "signal", "name": name},
                "cl": {"ns": {"orders": "admin"}},
            }

        valid_bob = sign(key, "edge-1", claims(sub="bob")).split(".")
        payload = json.loads(base64.urlsafe_b64decode(valid_bob[1] + "=="))
        payload["sub"] = "alice"
        tampered = ".".join([valid_bob[0], b64(json.dumps(payload).encode()), valid_bob[2]])
        refused = {
            201: sign(rogue, "edge-1", claims()),  # forged: right kid, wrong key
            202: sign(rogue, "rogue", claims()),  # untrusted key
            203: tampered,
            204: sign(key, "edge-1", claims(wid="another-order")),
            205: sign(key, "edge-1", claims(name="approve")),
            206: sign(key, "edge-1", claims(iat=now - 3600)),
        }

        async def raw_signal(target: Client, amount: int, passport: str) -> None:
            await target.workflow_service.signal_workflow_execution(
                SignalWorkflowExecutionRequest(
                    namespace="orders",
                    workflow_execution=WorkflowExecution(workflow_id=id),
                    signal_name="add",
                    input=Payloads(payloads=[Payload(metadata={"encoding": b"json/plain"}, data=str(amount).encode())]),
                    identity="raw",
                    request_id=str(uuid.uuid4()),
                    header=Header(fields={"warden-passport": Payload(metadata={"encoding": b"binary/plain"}, data=passport.encode())}),
                )
            )

        for amount, passport in refused.items():
            await raw_signal(direct, amount, passport)
        # A forged passport sent through the proxy is replaced by the proxy's own.
        await raw_signal(alice, 7, refused[201])
        seen = await events_with(id, "add:7")
        check("add:5" in seen, "alice's signal ran")
        for event in ["approve", "add:100", *[f"add:{n}" for n in refused]]:
            check(event not in seen, f"`{event}` never reached its handler")
        # Each refusal's audit record says which check failed.
        for reason in [
            "only an admin of orders approves",
            "no passport",
            "does not verify (forged or tampered)",
            "untrusted key `rogue`",
            "workflow id is `another-order`",
            "name is `approve`",
            "expired at",
        ]:
            check(any(reason in r for r in reasons.reasons), f"an audit record says `{reason}`")

        # Queries: straight to the server, refused by the worker.
        try:
            await direct.get_workflow_handle(id).query("events")
            check(False, "a direct query is refused")
        except WorkflowQueryFailedError as error:
            check("no passport" in str(error), f"a direct query is refused: {error}")

        # Updates: with a validator, rejected; without, accepted then failed.
        check(await handle.execute_update("discount", 3) == 3, "alice's update with a validator ran")
        try:
            await direct.get_workflow_handle(id).execute_update("discount", 4)
            check(False, "a direct update with a validator is rejected")
        except WorkflowUpdateFailedError as error:
            check("no passport" in str(error.cause), f"a direct update with a validator is rejected: {error.cause}")
        check(await handle.execute_update("note", "by-alice") == "by-alice", "alice's update without a validator ran")
        try:
            await direct.get_workflow_handle(id).execute_update("note", "direct")
            check(False, "a direct update without a validator fails")
        except WorkflowUpdateFailedError as error:
            check("no passport" in str(error.cause), f"a direct update without a validator fails: {error.cause}")
        seen = await events(id)
        check("discount:3" in seen and "note:by-alice" in seen, f"allowed updates ran: {seen}")
        check("discount:4" not in seen and "note:direct" not in seen, f"refused updates never ran: {seen}")

        # A start straight to the server fails before workflow code runs.
        never = await direct.start_workflow(PyGuardedOrder.run, 30, id=f"py-direct-{uuid.uuid4()}", task_queue=queue)
        try:
            await never.result()
            check(False, "a direct start fails")
        except WorkflowFailureError as error:
            cause = error.cause
            check(
                getattr(cause, "type", None) == "PermissionDenied" and getattr(cause, "non_retryable", False),
                f"a direct start fails with a non-retryable PermissionDenied: {cause}",
            )

        # The rejected update never entered history; the one without a validator did.
        accepted = [
            event.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
            for event in (await handle.fetch_history()).events
            if event.HasField("workflow_execution_update_accepted_event_attributes")
        ]
        check(accepted == ["discount", "note", "note"], f"updates accepted into history: {accepted}")

        await handle.signal("close", "done")
        check(await handle.result() == "closed", "bob's approval was dropped: the run ends `closed`")

    # Replay the history after a key rotation and a policy change.
    history = await alice.get_workflow_handle(id).fetch_history()
    rotated_at = int(time.time()) + 1
    new_key = jwt.PyJWK.from_dict(
        json.loads(jwt.algorithms.OKPAlgorithm.to_jwk(Ed25519PrivateKey.generate().public_key())) | {"kid": "edge-2"},
        algorithm="EdDSA",
    )
    rotated_jwks = {"keys": jwks["keys"] + [new_key._jwk_data]}
    rotated = PassportVerifier(rotated_jwks, issuers=["warden-proxy"], leeway=30, retired={"edge-1": rotated_at})

    async def replay(verifier: PassportVerifier, policy) -> bool:
        replayer = Replayer(
            workflows=[PyGuardedOrder],
            namespace="orders",
            interceptors=[WardenInterceptor(verifier, policy=policy, activity_policy=billing)],
            workflow_runner=runner,
        )
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        return result.replay_failure is None

    check(
        await replay(rotated, PolicyVersions([(0, approvals(False)), (rotated_at + 1, approvals(True))])),
        "the history replays after the keys rotated and a new policy version took effect",
    )
    check(
        not await replay(rotated, approvals(True)),
        "a policy edited in place changes the replay",
    )
    only_new = PassportVerifier({"keys": [new_key._jwk_data]}, issuers=["warden-proxy"])
    check(not await replay(only_new, approvals(False)), "passports of a removed key are refused on replay too")
    print(f"{passed} passed, 0 failed", flush=True)


if __name__ == "__main__":
    try:
        asyncio.run(main())
        code = 0
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    # The SDK's core threads can outlive the event loop and abort the interpreter's teardown
    # (`PyGILState_Release` at finalization, temporalio/sdk-python#300), turning a run whose
    # checks all passed into a crash. Every result has been printed; skip the teardown.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
