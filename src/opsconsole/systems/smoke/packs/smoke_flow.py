"""The `smoke` pack, phases 5-7: control path, provisioning, the end-to-end workflow.

Both instance phases go through the vault-instance contract exactly as the
`vault-instance` pack does (:class:`InstanceApi`), each with its own instance, always
terminated at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import nats

from ....scenarios.engine import Abort, Run, outcome
from ...vault_instances.packs.vault_instance import PROVISIONS, InstanceApi, _describe
from .smoke import SmokePhase


def _no_provisioner(run: Run) -> bool:
    target = run.inventory.provisioner
    return target is None or target.member_tokens is None


class ControlPath(SmokePhase):
    id = "smoke.control"
    title = "control path: a command through NATS reaches a Vault Manager and is answered"
    mutates = PROVISIONS

    async def method(self, run: Run) -> None:
        name = "a forVault event through central NATS is answered by the Vault Manager"
        if _no_provisioner(run):
            await run.record(name, ("unknown", {"reason": "no [provisioner] with "
                                                               "member_tokens"}))
            return
        api = InstanceApi(run)
        await api.ready_instance()
        nc = await api.connect()
        try:
            event_id = uuid.uuid4().hex[:8]
            reply: dict = {}
            deadline = time.monotonic() + 15
            while not reply and time.monotonic() < deadline:  # the manager may still subscribe
                started = time.monotonic()
                with contextlib.suppress(nats.errors.TimeoutError,
                                         nats.errors.NoRespondersError):
                    reply = await api.request(nc, {"id": event_id, "type": "ping"}, timeout=2)
                if not reply:
                    await asyncio.sleep(0.2)
            if reply:
                run.metric("control_roundtrip_ms", 1000 * (time.monotonic() - started), "ms")
            await run.record(name, outcome(
                reply.get("ok") is True and reply.get("id", event_id) == event_id,
                member=api.member, answered=bool(reply), reply_keys=sorted(reply)))
        finally:
            await nc.close()

    async def rollback(self, run: Run) -> None:
        if not _no_provisioner(run):
            await InstanceApi(run).cleanup()


class Provisioning(SmokePhase):
    id = "smoke.provisioning"
    title = "provisioning: a vault instance provisioned and terminated end to end"
    mutates = PROVISIONS

    async def method(self, run: Run) -> None:
        if _no_provisioner(run):
            await run.record("vault instance provisioned, healthy and terminated",
                             ("unknown", {"reason": "no [provisioner] with member_tokens"}))
            return
        api = InstanceApi(run)
        started = time.monotonic()
        ready = await api.ready_instance()
        run.metric("provision_to_initialized_s", time.monotonic() - started, "s")
        await run.record("provisioned and initialized", outcome(
            ready.get("status") == "initialized" and bool(ready.get("instance_id")),
            instance_id=ready.get("instance_id"), region=ready.get("region")))
        status, health = await api.call("GET", "/vault/health")
        await run.record("instance reports healthy", outcome(
            status == 200 and health.get("status") == "healthy", status=status,
            health=health.get("status")))
        status, term = await api.call("POST", "/vault/terminate")
        if status != 200:
            raise Abort(f"terminate returned {status}: {term}")
        ec2 = await _describe(run, ready["instance_id"])
        state = ec2["instance"]["State"]["Name"]
        run.metric("provision_cycle_s", time.monotonic() - started, "s")
        await run.record("terminated: EC2 gone and status terminated", outcome(
            term.get("status") == "terminated" and state == "terminated", ec2_state=state))

    async def rollback(self, run: Run) -> None:
        if not _no_provisioner(run):
            await InstanceApi(run).cleanup()


class Workflow(SmokePhase):
    id = "smoke.workflow"
    title = "end-to-end workflow: one email-to-preview session, when that pack is present"
    mutates = ("activate a session: a session in DynamoDB, an edit container, a git commit",
               "end that session (DynamoDB status expired, StopTask)")

    async def method(self, run: Run) -> None:
        from ...previews.packs.sessions import smoke_session

        await smoke_session(run)


SCENARIOS_5_7 = [ControlPath, Provisioning, Workflow]
