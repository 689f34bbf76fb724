"""The `vault-instance` pack: the provisioning contract, the relay and the Vault Manager.

Every check is one JUnit testcase. The pack needs only the inventory's ``[provisioner]``
(base URL, member tokens, admin token, control key, member NATS passwords), ``[[nats]]``
and ``[aws]``, so it runs against a real deployment as well as the lab's reference
service; each scenario provisions its own instance and terminates it at the end.
Operator steps go through the provisioner's admin API (``/admin/instances`` for an
instance's local NATS endpoints, ``/admin/accounts/<member>`` to grant or revoke a NATS
account). Stopping a central node uses the lab, or ``ssh.service-stop`` on an SSH host
named like the node with ``faults = true``. Where a deployment offers none of these, the
checks that need them report ``unknown`` with the reason instead of passing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
import uuid
from typing import Any

import aiohttp
import nats
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ...sut.vault_manager import control_message
from ..checks import nats_roundtrip
from ..engine import Abort, Check, Outcome, Run, Scenario, outcome

NO_ACCOUNT = "dave"


class InstanceApi:
    """The provisioning API as one member sees it (bearer token)."""

    def __init__(self, run: Run) -> None:
        target = run.inventory.provisioner
        if target is None or target.member_tokens is None:
            raise Abort("the inventory has no [provisioner] with member_tokens")
        self.run = run
        self.target = target
        self.base = str(target.base_url).rstrip("/")
        self.tokens = json.loads(target.member_tokens.resolve())
        self.member = target.member
        self.central = {n.name: n.client_url for c in run.inventory.nats for n in c.nodes}
        self.monitors = {n.name: n.monitor_url for c in run.inventory.nats for n in c.nodes}

    async def call(self, method: str, path: str, member: str | None = None,
                   token: str | None = None) -> tuple[int, dict[str, Any]]:
        token = token if token is not None else self.tokens[member or self.member]
        async with self.run.http.request(method, self.base + path,
                                         headers={"Authorization": f"Bearer {token}"},
                                         timeout=aiohttp.ClientTimeout(total=30)) as r:
            return r.status, await r.json(content_type=None)

    async def ready_instance(self) -> dict[str, Any]:
        """Provision and initialise an instance (waiting out the pending phase)."""
        status, prov = await self.call("POST", "/vault/provision?pending_s=1")
        if status != 202:
            raise Abort(f"provision returned {status}: {prov}")
        await self.run.wait_until("EC2 running", self._running, 30)
        status, init = await self.call("POST", "/vault/initialize")
        if status != 200:
            raise Abort(f"initialize returned {status}: {init}")
        return {**prov, **init}

    async def _running(self) -> bool:
        return (await self.call("GET", "/vault/status"))[1].get("status") == "running"

    async def admin(self, method: str, path: str,
                    body: dict[str, Any] | None = None) -> tuple[int, Any]:
        if self.target.admin_token is None:
            return 0, {"error": "the inventory's [provisioner] has no admin_token"}
        async with self.run.http.request(
                method, self.base + path, json=body,
                headers={"Authorization": f"Bearer {self.target.admin_token.resolve()}"},
                timeout=aiohttp.ClientTimeout(total=30)) as r:
            return r.status, await r.json(content_type=None)

    async def set_account(self, active: bool) -> str | None:
        """Grant or revoke this member's NATS account; the reason when that is impossible."""
        status, body = await self.admin("POST", f"/admin/accounts/{self.member}",
                                        {"active": active})
        if status == 200:
            return None
        return body.get("error") if isinstance(body, dict) and body.get("error") else \
            f"POST /admin/accounts/{self.member} returned {status}"

    async def endpoints(self) -> dict[str, str]:
        """The member's instance local NATS client and monitoring URLs (operator view)."""
        status, rows = await self.admin("GET", "/admin/instances")
        if status != 200:
            raise Abort(f"GET /admin/instances returned {status}: {rows}")
        row = next((r for r in rows if r.get("member") == self.member
                    and r.get("local_nats_url")), None)
        if row is None:
            raise Abort(f"/admin/instances shows no local NATS endpoint for {self.member}")
        return {"client": row["local_nats_url"], "monitor": row.get("local_monitor_url", "")}

    def nats_password(self) -> str | None:
        ref = self.target.member_nats_passwords
        return json.loads(ref.resolve()).get(self.member) if ref is not None else None

    async def cleanup(self) -> None:
        """Terminate whatever this member has and give the NATS account back."""
        await self.call("POST", "/vault/terminate")
        await self.set_account(True)

    async def hub_of(self, member: str) -> str | None:
        """The central node the member's instance leaf is attached to (a dead node is
        simply not it)."""
        for name, url in self.monitors.items():
            try:
                async with self.run.http.get(f"{url}/leafz",
                                             timeout=aiohttp.ClientTimeout(total=2)) as r:
                    links = (await r.json()).get("leafs", [])
            except (aiohttp.ClientError, TimeoutError, ValueError):
                continue
            if any(link.get("name") == f"vault-{member}" for link in links):
                return name
        return None

    async def connect(self, node: str | None = None) -> nats.NATS:
        url = self.central[node] if node else next(iter(self.central.values()))
        return await nats.connect(url, inbox_prefix=f"_INBOX_{self.member}",
                                  max_reconnect_attempts=-1, reconnect_time_wait=0.2)

    async def listen(self) -> tuple[nats.NATS, list[dict[str, Any]]]:
        """A central connection collecting every forApp answer the manager publishes."""
        nc = await self.connect()
        answers: list[dict[str, Any]] = []

        async def on_app(msg) -> None:
            answers.append(json.loads(msg.data))

        await nc.subscribe(f"OwnerSpace.{self.member}.forApp", cb=on_app)
        return nc, answers

    async def request(self, nc: nats.NATS, event: dict[str, Any],
                      timeout: float = 2.0) -> dict[str, Any]:
        reply = await nc.request(f"OwnerSpace.{self.member}.forVault",
                                 json.dumps(event).encode(), timeout=timeout)
        return json.loads(reply.data)

    def signed(self, command: str, key: Ed25519PrivateKey | None = None) -> bytes:
        if key is None:
            if self.target.control_key is None:
                raise Abort("the inventory's [provisioner] has no control_key")
            key = serialization.load_pem_private_key(
                self.target.control_key.resolve().encode(), password=None)
        nonce, ts = uuid.uuid4().hex, time.time()
        sig = key.sign(control_message(command, nonce, ts, self.member))  # type: ignore[union-attr]
        return json.dumps({"command": command, "nonce": nonce, "ts": ts,
                           "key_id": self.target.control_key_id,
                           "signature": base64.b64encode(sig).decode()}).encode()


class InstanceScenario(Scenario):
    needs_lab = False  # the provisioner, NATS and AWS from the inventory are enough

    async def rollback(self, run: Run) -> None:
        await InstanceApi(run).cleanup()


class Provision(InstanceScenario):
    id = "vault-instance.provision"
    title = "provision: auth, one per member, security group, arm64 AMI, tags, limits"

    async def method(self, run: Run) -> None:
        api = InstanceApi(run)
        s, _body = await api.call("POST", "/vault/provision", token="wrong-token")
        await run.record("provision: unauthenticated request rejected",
                     outcome(s == 401, status=s))
        s, prov = await api.call("POST", "/vault/provision?pending_s=1")
        await run.record("provision: authenticated member provisioned",
                     outcome(s == 202, status=s))
        await run.record("provision: returns instance_id and status", outcome(
            bool(prov.get("instance_id")) and prov.get("status") in
            ("provisioning", "running"), instance_id=prov.get("instance_id"),
            status=prov.get("status")))
        s2, _dup = await api.call("POST", "/vault/provision")
        await run.record("provision: duplicate rejected", outcome(s2 == 409, status=s2))
        ec2 = await _describe(run, prov["instance_id"])
        groups = [g["GroupId"] for g in ec2["instance"].get("SecurityGroups", [])]
        await run.record("provision: unique security group", outcome(
            groups == [prov.get("security_group")] and ec2["sg_users"] == 1, groups=groups))
        await run.record("provision: ARM64 hardened AMI", outcome(
            ec2["image"]["Architecture"] == "arm64" and "hardened" in ec2["image"]["Name"],
            arch=ec2["image"]["Architecture"], ami=ec2["image"]["Name"]))
        tags = {t["Key"]: t["Value"] for t in ec2["instance"].get("Tags", [])}
        await run.record("provision: correct tags", outcome(
            tags.get("owner") == api.member and tags.get("role") == "vault-instance"
            and "env" in tags, tags=tags))
        s3, no_acct = await api.call("POST", "/vault/provision",
                                     member=api.target.no_account_member or NO_ACCOUNT)
        await run.record("provision: needs a NATS account", outcome(
            s3 == 403 and "NATS account" in no_acct.get("error", ""), status=s3))
        await api.cleanup()
        _s4, _slow = await api.call("POST", "/vault/provision?pending_s=30&timeout_s=1")

        async def failed() -> bool:
            return (await api.call("GET", "/vault/status"))[1].get("status") == "failed"

        took = await run.wait_until("a slow provision to time out", failed, 15)
        _, st = await api.call("GET", "/vault/status")
        await run.record("provision: exceeding the time limit fails", outcome(
            st.get("status") == "failed" and "exceeded" in st.get("error", ""),
            error=st.get("error"), waited_s=round(took, 2),
            note="lab compresses the 120 s contract limit to timeout_s=1"))


async def _describe(run: Run, instance_id: str) -> dict[str, Any]:
    import aioboto3

    aws = run.inventory.aws
    if aws is None:
        raise Abort("the inventory has no [aws] target to check EC2 with")
    session = aioboto3.Session(profile_name=aws.profile, region_name=aws.region,
                               **(run.session.aws_credentials or {}))
    async with session.client("ec2", endpoint_url=aws.endpoint_url) as ec2:
        inst = (await ec2.describe_instances(InstanceIds=[instance_id]))[
            "Reservations"][0]["Instances"][0]
        image = (await ec2.describe_images(ImageIds=[inst["ImageId"]]))["Images"][0]
        groups = {g["GroupId"] for g in (await ec2.describe_security_groups())[
            "SecurityGroups"]}
        sg_users = 0
        for g in inst.get("SecurityGroups", []):
            found = await ec2.describe_instances(Filters=[
                {"Name": "instance.group-id", "Values": [g["GroupId"]]}])
            sg_users = sum(len(r["Instances"]) for r in found["Reservations"])
    return {"instance": inst, "image": image, "groups": groups, "sg_users": sg_users}


class Initialize(InstanceScenario):
    id = "vault-instance.initialize"
    title = "initialize: namespaces, local NATS, central link, credentials, clean failure"

    async def method(self, run: Run) -> None:
        api = InstanceApi(run)
        s, _ = await api.call("POST", "/vault/provision?pending_s=3")
        s, early = await api.call("POST", "/vault/initialize")
        await run.record("initialize: fails gracefully if EC2 is not ready", outcome(
            s == 409 and early.get("status") == "failed", status=s, error=early.get("error")))
        await run.wait_until("EC2 running", api._running, 30)
        await run.record("initialize: only after EC2 running", outcome(True, waited=True))
        s, init = await api.call("POST", "/vault/initialize")
        await run.record("initialize: status returned", outcome(
            s == 200 and init.get("status") == "initialized", status=s))
        await run.record("initialize: OwnerSpace assigned", outcome(
            init.get("owner_space_id") == f"OwnerSpace.{api.member}",
            owner_space_id=init.get("owner_space_id")))
        await run.record("initialize: MessageSpace assigned", outcome(
            str(init.get("message_space_id", "")).startswith(f"MessageSpace.{api.member}."),
            message_space_id=init.get("message_space_id")))
        await run.record("initialize: local NATS started", outcome(
            init.get("local_nats_status") == "running"))
        await run.record("initialize: central connected", outcome(
            init.get("central_nats_status") == "connected"))
        hub = await api.hub_of(api.member)
        await run.record("initialize: credentials installed (central accepts the leaf)",
                     outcome(hub is not None, hub=hub))


class Health(InstanceScenario):
    id = "vault-instance.health"
    title = "health: fields, manager metrics, unhealthy with details, needs a vault"

    async def method(self, run: Run) -> None:
        api = InstanceApi(run)
        s, _none = await api.call("GET", "/vault/health")
        await run.record("health: requires a provisioned vault",
                     outcome(s in (404, 409), status=s))
        await api.ready_instance()
        s, h = await api.call("GET", "/vault/health")
        await run.record("health: healthy when running",
                     outcome(s == 200 and h.get("status") == "healthy", status=s))
        await run.record("health: local NATS status", outcome(
            h.get("local_nats", {}).get("status") == "running", local=h.get("local_nats")))
        await run.record("health: central NATS status", outcome(
            h.get("central_nats", {}).get("status") == "connected",
            central=h.get("central_nats")))
        vm = h.get("vault_manager", {})
        await run.record("health: vault manager status",
                     outcome(vm.get("status") == "healthy", status=vm.get("status")))
        await run.record("health: memory and CPU reported", outcome(
            (vm.get("memory_mb") or 0) > 0 and vm.get("cpu_percent") is not None,
            memory_mb=vm.get("memory_mb"), cpu_percent=vm.get("cpu_percent")))
        nc = await api.connect()
        try:
            await api.request(nc, {"id": "stop-it", "type": "ping"}, timeout=5)
            await nc.publish(f"OwnerSpace.{api.member}.control", api.signed("shutdown"))
            await nc.flush()
        finally:
            await nc.close()

        async def reports_unhealthy() -> bool:
            st, body = await api.call("GET", "/vault/health")
            return st != 200 and bool(body.get("details"))

        await run.wait_until("health to report the stopped manager", reports_unhealthy, 15)
        s, bad = await api.call("GET", "/vault/health")
        await run.record("health: unhealthy with details on failure", outcome(
            s == 503 and bad.get("status") in ("degraded", "unhealthy")
            and bool(bad.get("details")), status=bad.get("status"),
            details=bad.get("details")))


class Stop(InstanceScenario):
    id = "vault-instance.stop"
    title = "stop: graceful, flushes pending events, disconnects, keeps state"

    async def method(self, run: Run) -> None:
        api = InstanceApi(run)
        await api.ready_instance()
        nc, answers = await api.listen()
        try:
            await api.request(nc, {"id": "warm", "type": "ping"}, timeout=5)
            ids = [f"pending-{i}" for i in range(20)]
            for i, eid in enumerate(ids):
                await nc.publish(f"OwnerSpace.{api.member}.forVault", json.dumps(
                    {"id": eid, "type": "kv.put", "payload": {"key": f"k{i}", "value": i}}
                ).encode())
            await nc.flush()
            s, stopped = await api.call("POST", "/vault/stop")
            await run.record("stop: graceful", outcome(
                s == 200 and stopped.get("status") == "stopped", status=s))
            with contextlib.suppress(Abort):  # drained answers are still crossing the relay
                await run.wait_until("answers to the pending events", lambda: set(ids) <= {
                    a.get("id") for a in answers}, 5)
            answered = {a.get("id") for a in answers}
            await run.record("stop: flushes pending events", outcome(
                set(ids) <= answered, sent=len(ids), answered=len(set(ids) & answered)))
            hub = await api.hub_of(api.member)
            await run.record("stop: disconnects from central", outcome(hub is None, hub=hub))
            s, _started = await api.call("POST", "/vault/start")

            async def has_state() -> bool:
                try:
                    r = await api.request(nc, {"id": "after", "type": "kv.get",
                                               "payload": {"key": "k19"}}, timeout=0.5)
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    return False
                return r.get("result", {}).get("value") == 19

            await run.check(Check("stop: state preserved for restart",
                                  lambda _: _bool(has_state, restarted=s == 200), within=20))
        finally:
            await nc.close()


async def _bool(cond, **evidence: Any) -> Outcome:
    return outcome(await cond(), **evidence)


class Terminate(InstanceScenario):
    id = "vault-instance.terminate"
    title = "terminate: EC2 gone, security group removed, NATS credentials revoked"

    async def method(self, run: Run) -> None:
        api = InstanceApi(run)
        ready = await api.ready_instance()
        s, term = await api.call("POST", "/vault/terminate")
        await run.record("terminate: status terminated", outcome(
            s == 200 and term.get("status") == "terminated", status=s))
        ec2 = await _describe(run, ready["instance_id"])
        await run.record("terminate: EC2 terminated", outcome(
            ec2["instance"]["State"]["Name"] == "terminated",
            state=ec2["instance"]["State"]["Name"]))
        await run.record("terminate: security group removed", outcome(
            ready["security_group"] not in ec2["groups"], group=ready["security_group"]))
        password = api.nats_password()
        if password is None:
            await run.record("terminate: NATS credentials revoked", (
                "unknown", {"reason": "the inventory's [provisioner] has no "
                                      "member_nats_passwords to try the credentials with"}))
        else:
            url = next(iter(api.central.values())).replace(
                "nats://", f"nats://{api.member}:{password}@")
            try:
                nc = await nats.connect(url, allow_reconnect=False, connect_timeout=2,
                                        max_reconnect_attempts=0)
                await nc.close()
                revoked = False
            except Exception:
                revoked = True
            await run.record("terminate: NATS credentials revoked", outcome(revoked))
        s2, again = await api.call("POST", "/vault/terminate")
        await run.record("terminate: idempotent", outcome(
            s2 == 200 and again.get("status") == "terminated", status=s2))


class Lifecycle(InstanceScenario):
    id = "vault-instance.lifecycle"
    title = "lifecycle: end to end, restart, recovery from a failed initialize, concurrency"

    async def method(self, run: Run) -> None:
        api = InstanceApi(run)
        steps: dict[str, int] = {}
        s, _ = await api.call("POST", "/vault/provision?pending_s=1")
        steps["provision"] = s
        await run.wait_until("EC2 running", api._running, 30)
        why = await api.set_account(False)  # initialize now fails for a real reason
        if why is None:
            s, failed = await api.call("POST", "/vault/initialize")
            why = await api.set_account(True)
        s2, _recovered = await api.call("POST", "/vault/initialize")
        if why is not None:
            await run.record("lifecycle: recovery from initialization failure",
                             ("unknown", {"reason": f"cannot revoke the NATS account: {why}"}))
        else:
            await run.record("lifecycle: recovery from initialization failure", outcome(
                s == 403 and s2 == 200, first=s, first_error=failed.get("error"), retry=s2))
        steps["initialize"] = s2
        results = await asyncio.gather(*(api.call("GET", "/vault/health") for _ in range(10)))
        await run.record("lifecycle: concurrent health checks", outcome(
            all(r[0] == 200 and r[1].get("status") == "healthy" for r in results),
            statuses=[r[0] for r in results]))
        steps["health"] = results[0][0]
        steps["stop"] = (await api.call("POST", "/vault/stop"))[0]
        s3, _restarted = await api.call("POST", "/vault/start")
        s4, h = await api.call("GET", "/vault/health")
        await run.record("lifecycle: restart after stop", outcome(
            s3 == 200 and s4 == 200 and h.get("status") == "healthy", start=s3, health=s4))
        steps["terminate"] = (await api.call("POST", "/vault/terminate"))[0]
        await run.record("lifecycle: provision → initialize → health → stop → terminate",
                     outcome(steps == {"provision": 202, "initialize": 200, "health": 200,
                                       "stop": 200, "terminate": 200}, steps=steps))


class Relay(InstanceScenario):
    id = "vault-instance.relay"
    title = "relay: both ways, hub loss handled, reconnect, buffered messages measured"

    async def method(self, run: Run) -> None:
        from ...load.canary import GRACE_S, RelayCanary

        api = InstanceApi(run)
        await api.ready_instance()
        local = await api.endpoints()
        leaf_url = local["client"]
        hub = await api.hub_of(api.member)
        other = next(n for n in api.central if n != hub)
        ok_in, t_in = await nats_roundtrip(api.central[other], leaf_url,
                                           f"OwnerSpace.{api.member}.relay.in", timeout=10)
        await run.record("relay: central → local", outcome(ok_in, seconds=round(t_in, 3)))
        ok_out, t_out = await nats_roundtrip(leaf_url, api.central[other],
                                             f"OwnerSpace.{api.member}.relay.out", timeout=10)
        await run.record("relay: local → central", outcome(ok_out, seconds=round(t_out, 3)))
        canary = RelayCanary(run.session.bus, f"vault-{api.member}", api.member, api.central[other],
                             leaf_url, rate=20)
        await canary.start()
        probe = _probe_instance_leaf(run, api, local)  # the relay pane shows it live
        try:
            await asyncio.sleep(2)
            started = time.monotonic()
            kill = _central_stop_fault(run, hub)
            if isinstance(kill, str):
                for name in ("relay: central disconnection handled (leaf moves hub)",
                             "relay: automatic reconnect after a network fault"):
                    await run.record(name, ("unknown", {"reason": kill}))
            else:
                fault = await run.inject(kill[0], hub, **kill[1])

                async def moved() -> bool:
                    return (await api.hub_of(api.member)) not in (None, hub)

                await run.check(Check("relay: central disconnection handled (leaf moves hub)",
                                      lambda _: _bool(moved, killed=hub), within=30))
                run.metric("reconnect_seconds", time.monotonic() - started)
                await run.heal(fault)
                ok_again, _ = await nats_roundtrip(api.central[other], leaf_url,
                                                   f"OwnerSpace.{api.member}.relay.again",
                                                   timeout=15)
                await run.record("relay: automatic reconnect after a network fault",
                                 outcome(ok_again))
            await asyncio.sleep(GRACE_S + 1.5)  # let every canary message settle
        finally:
            await canary.stop()
            if probe is not None and run.session.runner is not None:
                await run.session.runner.remove(probe)
        evidence: dict[str, Any] = {}
        for path, t in canary.paths.items():
            t.settle(time.time() + GRACE_S)
            evidence[path] = {"sent": t.sent, "delivered": t.delivered, "lost": t.lost,
                              "duplicated": t.duplicated, "reordered": t.reordered}
            run.metric(f"relay_{path}_lost", t.lost)
            run.metric(f"relay_{path}_duplicated", t.duplicated)
        await run.record("relay: messages during reconnection measured (sent, delivered, "
                          "lost, duplicated per direction)",
                     outcome(all(v["sent"] > 0 and v["delivered"] > 0
                                 for v in evidence.values()), **evidence))


def _central_stop_fault(run: Run, node: str | None) -> tuple[str, dict[str, Any]] | str:
    """How to stop a central NATS node here: (fault kind, params), or why it cannot be."""
    if node is None:
        return "the instance's leaf is attached to no central node"
    if run.session.lab is not None:
        return "process.kill", {}
    if any(h.name == node and h.faults for h in run.inventory.ssh.hosts):
        return "ssh.service-stop", {"service": "nats-server"}
    return (f"no way to stop central node {node}: not the lab, and no [[ssh.hosts]] "
            f"named {node} with faults = true")


def _probe_instance_leaf(run: Run, api: InstanceApi,
                         local: dict[str, str]) -> asyncio.Task[None] | None:
    from ...config import LeafNode
    from ...probes.nats import LeafProbe

    if run.session.runner is None or run.session.http is None or not local["monitor"]:
        return None
    leaf = LeafNode(name=f"vault-{api.member}", user=api.member, client_url=local["client"],
                    monitor_url=local["monitor"])
    return run.session.runner.add(LeafProbe(run.session.http, leaf))


class Manager(InstanceScenario):
    id = "vault-instance.manager"
    title = "Vault Manager: events, malformed input, rate limit, signed control, health"

    async def method(self, run: Run) -> None:
        api = InstanceApi(run)
        await api.ready_instance()
        nc, answers = await api.listen()
        try:
            async def ping() -> bool:
                try:
                    return (await api.request(nc, {"id": "p", "type": "ping"}, 0.5))["ok"]
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    return False

            await run.check(Check("manager: forVault processed",
                                  lambda _: _bool(ping), within=15))
            await run.wait_until("the ping's forApp copy", lambda: any(
                a.get("id") == "p" for a in answers), 5)
            await run.record("manager: forApp published", outcome(True, answers=len(answers)))
            await nc.publish(f"OwnerSpace.{api.member}.forVault", b"{not json")
            await run.wait_until("an answer to the malformed event", lambda: any(
                not a["ok"] and "malformed" in a.get("error", "") for a in answers), 5)
            await run.record("manager: malformed events answered with an error, no crash",
                         outcome(await ping()))
            for i in range(200):
                await nc.publish(f"OwnerSpace.{api.member}.forVault",
                                 json.dumps({"id": f"burst-{i}", "type": "echo"}).encode())
            await nc.flush()
            await run.wait_until("burst answers", lambda: sum(
                1 for a in answers if str(a.get("id", "")).startswith("burst-")) >= 200, 10)
            limited = sum(1 for a in answers if a.get("error") == "rate limited")
            await run.record("manager: rate limit enforced", outcome(
                limited > 0, burst=200, rate_limited=limited))
            forged = api.signed("backup", Ed25519PrivateKey.generate())
            bad = json.loads((await nc.request(f"OwnerSpace.{api.member}.control", forged,
                                               timeout=5)).data)
            await run.record("manager: unauthorised command rejected", outcome(
                not bad["ok"] and "unauthorised" in bad.get("error", ""),
                error=bad.get("error")))
            backup = json.loads((await nc.request(f"OwnerSpace.{api.member}.control",
                                                  api.signed("backup"), timeout=5)).data)
            await run.record("manager: control accepted",
                         outcome(backup["ok"], type=backup.get("type")))
            await run.record("manager: backup processed", outcome(
                backup["ok"] and bool(backup.get("result", {}).get("backup")),
                result=backup.get("result")))
            s, h = await api.call("GET", "/vault/health")
            vm = h.get("vault_manager", {})
            await run.record("manager: health reported", outcome(
                s == 200 and vm.get("status") == "healthy", status=vm.get("status")))
            await run.record("manager: handler metrics present", outcome(
                vm.get("handlers", {}).get("echo", {}).get("count", 0) >= 1,
                echo=vm.get("handlers", {}).get("echo")))
            await run.record("manager: NATS metrics present", outcome(
                vm.get("nats", {}).get("in_msgs", 0) > 0 and "reconnects" in vm.get("nats", {}),
                nats=vm.get("nats")))
            down = json.loads((await nc.request(f"OwnerSpace.{api.member}.control",
                                                api.signed("shutdown"), timeout=5)).data)

            async def manager_gone() -> bool:
                _, body = await api.call("GET", "/vault/health")
                return body.get("vault_manager", {}).get("status") == "down"

            await run.check(Check("manager: shutdown processed",
                                  lambda _: _bool(manager_gone, accepted=down["ok"]),
                                  within=15))
        finally:
            await nc.close()


SCENARIOS: list[type[Scenario]] = [Provision, Initialize, Health, Stop, Terminate, Lifecycle,
                                   Relay, Manager]
