"""The `vault-instance` pack: the provisioning contract, the relay and the Vault Manager.

Every check is one JUnit testcase. The pack speaks only seed 000's five endpoints
(docs/contracts/vault-instance.openapi.yaml; every answer is validated against it and
each scenario ends with a contract-conformance check), EC2 through ``[aws]`` and NATS
through ``[[nats]]``; each scenario provisions its own instance and terminates it at
the end. What the seed does not define is an optional capability declared in
``[provisioner]`` (:mod:`..capabilities`: the instance's local NATS from its EC2
description, an account driver, restart, a slow member for the time limit); stopping a
central node uses the lab, or ``ssh.service-stop`` on an SSH host named like the node
with ``faults = true``. Where a deployment offers none of these, the checks that need
them report ``unknown`` with the reason instead of passing.

Every verdict comes from an observation; the observations that need care (where a leaf
is attached and what could not be read, a NATS login and the kind of refusal, the
account central binds a leaf to, the relay's loss bound over the measured hub-switch
window) live in :mod:`.vault_instance_checks`, where the negative-control tests drive
them with the broken situation.
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import time
import uuid
from typing import Any

import aiohttp
import nats
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ....scenarios.checks import ContractLog, json_or_text
from ....scenarios.engine import (
    OK_STATUSES,
    Abort,
    Check,
    Inconclusive,
    Outcome,
    Run,
    Scenario,
    outcome,
)
from ....targets.aws import aws_session
from ....targets.contract import Contract
from ....targets.http import ssl_for
from ....targets.nats import as_endpoint
from ...nats.checks import nats_roundtrip
from .. import capabilities
from ..capabilities import Unavailable
from ..checks import (
    AFTER_MIN_S,
    LOSS_BOUND,
    TAIL_S,
    HubLookup,
    InstanceState,
    Login,
    OutageWindow,
    SpaceAccess,
    ami_policy_outcome,
    answer_outcome,
    architecture_outcome,
    attached_outcome,
    degraded_outcome,
    detached_outcome,
    find_hub,
    health_fields_outcome,
    instance_type_outcome,
    member_binding,
    moved_outcome,
    only_after_running_outcome,
    recovered_outcome,
    relay_loss_outcome,
    revocation_outcome,
    space_access,
    space_closed_outcome,
    space_open_outcome,
    time_limit_outcome,
    try_login,
)

NO_ACCOUNT = "dave"
#: the lab's fault-proxy links of every instance leaf (``nats.leaf-disconnect`` target)
LAB_INSTANCE_LINKS = "vault-instances"
RELAY_RATE = 20.0  # canary messages per second and direction in the relay scenario
RELAY_LOSS_CHECK = f"relay: messages during reconnection bounded ({LOSS_BOUND})"
RELAY_CHECKS = ("relay: central → local", "relay: local → central",
                "relay: central disconnection handled (leaf moves hub)",
                "relay: automatic reconnect after a network fault", RELAY_LOSS_CHECK)


def control_signed_bytes(command: str, nonce: str, ts: float, user: str) -> bytes:
    """What a Vault Manager control signature covers, as docs/contracts/vault-manager.md
    writes it (not the reference's encoder): the JSON text
    ``{"command":…,"nonce":…,"ts":…,"user":…}`` with keys in that order, no whitespace,
    ASCII-escaped strings and ``ts`` as the shortest round-trip double."""
    def text(value: str) -> str:
        return json.dumps(value, ensure_ascii=True)

    return (f'{{"command":{text(command)},"nonce":{text(nonce)},"ts":{float(ts)!r},'
            f'"user":{text(user)}}}').encode()


def _epoch(value: Any) -> float | None:
    """``estimated_ready_at`` as epoch seconds (the seed allows a number or ISO 8601)."""
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return None
    return None


class InstanceApi:
    """The provisioning API as one member sees it (bearer token): the seed's five
    endpoints, every answer validated against the contract."""

    def __init__(self, run: Run) -> None:
        target = run.inventory.provisioner
        if target is None or target.member_tokens is None:
            raise Abort("the inventory has no [provisioner] with member_tokens")
        self.run = run
        self.target = target
        self.base = str(target.base_url).rstrip("/")
        self.ssl = ssl_for(target, self.base, "provisioner")
        self.tokens = json.loads(target.member_tokens.resolve())
        self.member = target.member
        self.central = {n.name: c.endpoint(n) for c in run.inventory.nats for n in c.nodes}
        self.cluster = run.inventory.nats[0] if run.inventory.nats else None
        self.monitors = {n.name: n.monitor_url for c in run.inventory.nats for n in c.nodes}
        self.log = ContractLog(Contract.load("vault-instance"))
        self.instance_id = ""
        self._leaf_name = ""

    async def call(self, method: str, path: str, member: str | None = None,
                   token: str | None = None) -> tuple[int, dict[str, Any]]:
        """A member request to one of the seed's endpoints, its answer validated; anything
        but a GET changes the target (refused read-only)."""
        if method != "GET":
            self.run.mutate(f"{method} {path} as {member or self.member}", self.base)
        token = token if token is not None else self.tokens[member or self.member]
        async with self.run.http.request(method, self.base + path, ssl=self.ssl,
                                         headers={"Authorization": f"Bearer {token}"},
                                         timeout=aiohttp.ClientTimeout(total=30)) as r:
            status, body = r.status, json_or_text(await r.text())
        self.log.check(method, path, status, body)
        return status, body if isinstance(body, dict) else {"body": body}

    async def provision(self, member: str | None = None) -> tuple[int, dict[str, Any]]:
        s, prov = await self.call("POST", "/vault/provision", member=member)
        if (member or self.member) == self.member and prov.get("instance_id"):
            self.instance_id = str(prov["instance_id"])
        return s, prov

    async def initialize_when_ready(self, member: str | None = None
                                    ) -> tuple[int, dict[str, Any]]:
        """``POST /vault/initialize`` until it stops answering 409 (the seed: it fails
        gracefully while EC2 is not ready), within the provisioning limit."""
        last: list[tuple[int, dict[str, Any]]] = []

        async def answered() -> bool:
            last[:] = [await self.call("POST", "/vault/initialize", member=member)]
            return last[0][0] != 409

        await self.run.wait_until("the instance ready to initialize", answered,
                                  self.target.provision_timeout_s + 10, 0.25)
        return last[0]

    async def ready_instance(self) -> dict[str, Any]:
        """Provision and initialise an instance (waiting out the pending phase)."""
        status, prov = await self.provision()
        if status == 403 and not self.target.accounts_url:
            raise Inconclusive(
                f"provision answered 403 for {self.member}: its NATS account is revoked "
                "(an earlier terminate revokes it) and the inventory declares no [provisioner] "
                "accounts_url to grant it again")
        if status != 202:
            raise Abort(f"provision returned {status}: {prov}")
        status, init = await self.initialize_when_ready()
        if status != 200:
            raise Abort(f"initialize returned {status}: {init}")
        return {**prov, **init}

    async def set_account(self, active: bool) -> str | None:
        """Grant or revoke this member's NATS account (the account driver); the reason
        when that is impossible."""
        self.run.mutate(f"{'grant' if active else 'revoke'} {self.member}'s NATS account",
                        "[provisioner] accounts_url")
        try:
            await capabilities.set_account(self.target, self.run.http, self.ssl, self.member,
                                           active)
        except (Unavailable, RuntimeError) as exc:
            return str(exc)
        except (aiohttp.ClientError, TimeoutError) as exc:
            return f"[provisioner] accounts_url: {type(exc).__name__}: {exc}"[:200]
        return None

    async def ec2_instance(self, instance_id: str | None = None) -> dict[str, Any] | None:
        """The instance's EC2 description (None without [aws] in the inventory)."""
        if self.run.inventory.aws is None or not (instance_id or self.instance_id):
            return None
        async with _ec2(self.run) as ec2:
            found = await ec2.describe_instances(InstanceIds=[instance_id or self.instance_id])
        return found["Reservations"][0]["Instances"][0]

    async def try_endpoints(self) -> dict[str, str] | str:
        """:meth:`endpoints` (the optional capability ``local_nats_url``), or why they
        cannot be had."""
        try:
            return capabilities.local_endpoints(self.target, await self.ec2_instance())
        except Unavailable as exc:
            return str(exc)

    def nats_password(self) -> str | None:
        ref = self.target.member_nats_passwords
        return json.loads(ref.resolve()).get(self.member) if ref is not None else None

    async def cleanup(self) -> None:
        """Terminate whatever this member has and give the NATS account back (when the
        inventory declares an account driver)."""
        await self.call("POST", "/vault/terminate")
        if self.target.accounts_url:
            await self.set_account(True)

    async def leaf_name(self) -> str:
        """The instance's local NATS server name, as central's ``/leafz`` lists its link
        (from the local server's own INFO); :class:`Unavailable` without its endpoint."""
        if not self._leaf_name:
            local = await self.try_endpoints()
            if isinstance(local, str):
                raise Unavailable(local)
            try:
                nc = await as_endpoint(local["client"]).connect(
                    connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1)
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                raise Unavailable(f"the instance's local NATS {local['client']} does not "
                                  f"answer: {type(exc).__name__}: {exc}"[:200]) from None
            try:
                # nats-py keeps the server's INFO; its server_name is the leaf's name
                self._leaf_name = str(nc._server_info.get("server_name") or "")
            finally:
                await nc.close()
            if not self._leaf_name:
                raise Unavailable("the instance's local NATS gives no server_name in its INFO")
        return self._leaf_name

    async def hub_lookup(self) -> HubLookup | str:
        """Where the member's instance leaf is attached, and which nodes went unread; the
        reason when the instance's leaf cannot be named."""
        try:
            name = await self.leaf_name()
        except Unavailable as exc:
            return f"cannot name the instance's leaf link: {exc}"
        return await find_hub(self.run.http, self.monitors, name, tls=self.cluster)

    async def state(self, prov: dict[str, Any], at: float | None = None) -> InstanceState:
        """The instance at ``at`` (now by default) as the provision answer's
        ``estimated_ready_at`` (the seed's word for when it is ready) and, when the
        inventory has [aws], EC2 show it."""
        ready_at = _epoch(prov.get("estimated_ready_at"))
        status = None
        if ready_at is not None:
            status = "provisioning" if (at or time.time()) < ready_at else "running"
        ec2 = await self.ec2_instance(str(prov.get("instance_id") or ""))
        return InstanceState(status, ec2["State"]["Name"] if ec2 else None)

    async def logins(self, password: str) -> list[Login]:
        """Log in to every central node with the member's NATS credentials."""
        return list(await asyncio.gather(*(try_login(name, ep, self.member, password)
                                           for name, ep in self.central.items())))

    async def connect(self, node: str | None = None) -> nats.NATS:
        ep = self.central[node] if node else next(iter(self.central.values()))
        return await ep.connect(inbox_prefix=f"_INBOX_{self.member}",
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
        """A signed control command for the member's Vault Manager (it acts on it)."""
        self.run.mutate(f"send the control command {command!r}",
                        f"OwnerSpace.{self.member}.control")
        if key is None:
            if self.target.control_key is None:
                raise Abort("the inventory's [provisioner] has no control_key")
            key = serialization.load_pem_private_key(
                self.target.control_key.resolve().encode(), password=None)
        nonce, ts = uuid.uuid4().hex, time.time()
        sig = key.sign(control_signed_bytes(command, nonce, ts, self.member))  # type: ignore[union-attr]
        return json.dumps({"command": command, "nonce": nonce, "ts": ts,
                           "key_id": self.target.control_key_id,
                           "signature": base64.b64encode(sig).decode()}).encode()


#: what every scenario of the pack changes: each provisions its own instance, and
#: terminates it (and gives the member's NATS account back) in its rollback
PROVISIONS = ("provision an EC2 instance and its security group (POST /vault/provision)",
              "initialize it: local NATS, central link, credentials (POST /vault/initialize)",
              "terminate it and re-grant the member's NATS account (rollback)")


CONFORMS = "every provisioner answer conforms to the vault-instance contract"


class InstanceScenario(Scenario):
    needs_lab = False  # the provisioner, NATS and AWS from the inventory are enough
    mutates = PROVISIONS

    async def method(self, run: Run) -> None:
        api = InstanceApi(run)
        try:
            await self.steps(run, api)
        finally:
            await run.record(f"{self.id.split('.')[1]}: {CONFORMS}", api.log.outcome())

    async def steps(self, run: Run, api: InstanceApi) -> None:
        raise NotImplementedError

    async def rollback(self, run: Run) -> None:
        await InstanceApi(run).cleanup()


class Provision(InstanceScenario):
    id = "vault-instance.provision"
    title = "provision: auth, one per member, security group, AMI policy, type, tags"
    mutates = (PROVISIONS[0], "provision past the time limit (a failed instance)",
               PROVISIONS[2])

    async def steps(self, run: Run, api: InstanceApi) -> None:
        s, _body = await api.call("POST", "/vault/provision", token="wrong-token")
        await run.record("provision: unauthenticated request rejected",
                     outcome(s == 401, status=s))
        s, prov = await api.provision()
        await run.record("provision: authenticated member provisioned",
                     outcome(s == 202, status=s))
        await run.record("provision: returns instance_id and status", outcome(
            bool(prov.get("instance_id")) and prov.get("status") in
            ("provisioning", "running"), instance_id=prov.get("instance_id"),
            status=prov.get("status")))
        s2, _dup = await api.provision()
        await run.record("provision: duplicate rejected", outcome(s2 == 409, status=s2))
        ec2 = await _describe(run, prov["instance_id"])
        groups = [g["GroupId"] for g in ec2["instance"].get("SecurityGroups", [])]
        await run.record("provision: unique security group", outcome(
            groups == [prov.get("security_group")] and ec2["sg_users"] == 1, groups=groups))
        instance, image = ec2["instance"], ec2["image"]
        await run.record("provision: AMI policy (owner, image id, tags)", ami_policy_outcome(
            api.target.ami_policy, instance.get("ImageId", ""), image))
        await run.record("provision: instance type allowed", instance_type_outcome(
            api.target.instance_types, instance.get("InstanceType")))
        await run.record("provision: architecture", architecture_outcome(
            api.target.architecture, image, instance))
        tags = {t["Key"]: t["Value"] for t in ec2["instance"].get("Tags", [])}
        await run.record("provision: correct tags", outcome(
            tags.get("owner") == api.member and tags.get("role") == "vault-instance"
            and bool(tags.get("env")), tags=tags))
        s3, no_acct = await api.provision(api.target.no_account_member or NO_ACCOUNT)
        await run.record("provision: needs a NATS account", outcome(
            s3 == 403, status=s3, error=no_acct.get("error")))
        await api.cleanup()
        await _time_limit_check(run, api)


TIME_LIMIT = "provision: exceeding the time limit fails (and leaves no instance running)"


async def _time_limit_check(run: Run, api: InstanceApi) -> None:
    """The slow member's provisioning never gets ready: once the limit has passed,
    initialize answers ``failed`` and EC2 shows the instance terminated; right after the
    provision it was not (the positive control: the failure comes from the limit)."""
    try:
        slow = capabilities.slow_member(api.target, api.tokens)
        if run.inventory.aws is None:
            raise Unavailable("the inventory has no [aws] to see the failed instance in EC2")
    except Unavailable as exc:
        await run.record(TIME_LIMIT, ("unknown", {"reason": str(exc)}))
        return
    limit = api.target.provision_timeout_s
    scale = capabilities.time_scale(api.target, run.session.lab is not None)
    s, prov = await api.provision(slow)
    started = time.time()
    if s != 202 or not prov.get("instance_id"):
        await run.record(TIME_LIMIT, outcome(False, reason=f"provisioning {slow} answered "
                                             f"{s}", status=s, **scale))
        return
    instance_id = str(prov["instance_id"])
    before = await api.ec2_instance(instance_id)
    s_before, init_before = await api.call("POST", "/vault/initialize", member=slow)
    await run.wait_until("the provisioning limit to pass", lambda: time.time() > started + limit,
                         limit + 1, 0.25)

    async def failed(_: Run) -> Outcome:
        now = await api.ec2_instance(instance_id)
        si, init = await api.call("POST", "/vault/initialize", member=slow)
        return time_limit_outcome(
            limit, (before or {}).get("State", {}).get("Name"), s_before,
            init_before.get("status"), (now or {}).get("State", {}).get("Name"), si,
            init.get("status"), **scale)

    await run.check(Check(TIME_LIMIT, failed, within=30))


def _ec2(run: Run):
    aws = run.inventory.aws
    if aws is None:
        raise Abort("the inventory has no [aws] target to check EC2 with")
    session = aws_session(aws, run.session.aws_credentials)
    return session.client("ec2", endpoint_url=aws.endpoint_url)


async def _describe(run: Run, instance_id: str) -> dict[str, Any]:
    async with _ec2(run) as ec2:
        inst = (await ec2.describe_instances(InstanceIds=[instance_id]))[
            "Reservations"][0]["Instances"][0]
        try:  # the instance's actual image; None when EC2 no longer shows it
            images = (await ec2.describe_images(ImageIds=[inst["ImageId"]]))["Images"]
        except ClientError as exc:
            if not exc.response.get("Error", {}).get("Code", "").startswith("InvalidAMIID"):
                raise
            images = []
        image = images[0] if images else None
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

    async def steps(self, run: Run, api: InstanceApi) -> None:
        s, prov = await api.provision()
        if s != 202:
            raise Abort(f"provision returned {s}: {prov}")
        asked_at = time.time()  # the refusal's moment, not the later EC2 read's
        s_early, early = await api.call("POST", "/vault/initialize")
        after_early = await api.state(prov, at=asked_at)
        await run.record("initialize: fails gracefully if EC2 is not ready", outcome(
            s_early == 409 and early.get("status") == "failed", status=s_early,
            error=early.get("error"), instance=after_early.as_json()))
        accepted: dict[str, Any] = {}

        async def only_after_running(_: Run) -> Outcome:
            """Initialize again (it refuses while EC2 is not ready) until accepted; the
            state at acceptance is the accepted answer's and EC2's."""
            if "http" not in accepted:
                http, body = await api.call("POST", "/vault/initialize")
                if http != 409:
                    accepted["http"], accepted["body"] = http, body
                    now = await api.state(prov)
                    accepted["state"] = InstanceState("running" if http == 200 else now.status,
                                                      now.ec2)
            return only_after_running_outcome(
                s_early, after_early, accepted.get("state", InstanceState("provisioning")),
                accepted.get("http"))

        await run.check(Check("initialize: only after EC2 running", only_after_running,
                              within=api.target.provision_timeout_s + 10))
        if "http" not in accepted:
            raise Abort("the instance never reached running: nothing more to initialize")
        s, init = accepted["http"], accepted["body"]
        await run.record("initialize: status returned", outcome(
            s == 200 and init.get("status") == "initialized", status=s))
        await run.record("initialize: OwnerSpace assigned", outcome(
            init.get("owner_space_id") == f"OwnerSpace.{api.member}",
            owner_space_id=init.get("owner_space_id")))
        await run.record("initialize: MessageSpace assigned", outcome(
            str(init.get("message_space_id", "")).startswith(f"MessageSpace.{api.member}."),
            message_space_id=init.get("message_space_id")))
        local = await api.try_endpoints()
        await run.record("initialize: local NATS started", await _local_nats_outcome(
            init.get("local_nats_status"), local))
        await _message_space_checks(run, api, str(init.get("message_space_id", "")), local)

        async def central_connected(_: Run) -> Outcome:
            """Reported connected, and a central node does list the leaf."""
            found = await api.hub_lookup()
            if isinstance(found, str):
                return "unknown", {"reported": init.get("central_nats_status"),
                                   "reason": found}
            status, where = attached_outcome(found)
            if status not in OK_STATUSES:
                return status, where
            return outcome(init.get("central_nats_status") == "connected",
                           reported=init.get("central_nats_status"), **where)

        await run.check(Check("initialize: central connected", central_connected, within=10))

        async def credentials_installed(_: Run) -> Outcome:
            found = await api.hub_lookup()
            if isinstance(found, str):
                return "unknown", {"reason": found}
            status, where = attached_outcome(found)
            if status not in OK_STATUSES or found.hub is None:
                return status, where
            if isinstance(local, str):
                return "unknown", {"reason": f"cannot reach the instance's local NATS to see "
                                             f"which account central binds it to: {local}",
                                   **where}
            status, binding = await member_binding(api.central[found.hub], local["client"],
                                                   api.member)
            return status, {**where, **binding}

        await run.check(Check("initialize: credentials installed (central accepts the leaf "
                              "as the member)", credentials_installed, within=10))


SPACE_OPEN = "initialize: MessageSpace open to the member (a message crosses both ways)"
SPACE_CLOSED = "initialize: MessageSpace closed to another member"


async def _message_space_checks(run: Run, api: InstanceApi, space: str,
                                local: dict[str, str] | str) -> None:
    """The member publishes and subscribes under ``<message_space_id>.>`` at central and
    the messages cross to and from the instance's local NATS; another member, logged in
    with its own credentials, gets nothing across (refused or not delivered)."""
    ref = api.target.member_nats_passwords
    passwords: dict[str, str] = json.loads(ref.resolve()) if ref is not None else {}
    why = ("initialize returned no MessageSpace id" if not space.startswith("MessageSpace.")
           else "the inventory's [provisioner] has no member_nats_passwords to log in with"
           if api.member not in passwords else
           f"cannot reach the instance's local NATS: {local}" if isinstance(local, str)
           else "")
    if why or isinstance(local, str):
        for name in (SPACE_OPEN, SPACE_CLOSED):
            await run.record(name, ("unknown", {"message_space_id": space, "reason": why}))
        return
    central = next(iter(api.central.values()))
    member = await space_access(central, local["client"], space, api.member,
                                passwords[api.member])
    await run.record(SPACE_OPEN, space_open_outcome(space, member))
    other: SpaceAccess | None = None
    for name in sorted(m for m in passwords if m != api.member):
        other = await space_access(central, local["client"], space, name, passwords[name],
                                   timeout=3.0)
        if other.login == "accepted":
            break
    await run.record(SPACE_CLOSED, space_closed_outcome(
        space, member, other, no_other="member_nats_passwords names no other member"))


async def _local_nats_outcome(reported: Any, local: dict[str, str] | str) -> Outcome:
    """The provisioner reports the local NATS running, and it does answer a client."""
    if isinstance(local, str):
        return "unknown", {"reported": reported,
                           "reason": f"cannot reach the instance's local NATS: {local}"}
    error = ""
    try:
        nc = await as_endpoint(local["client"]).connect(
            connect_timeout=2, allow_reconnect=False, max_reconnect_attempts=1,
            reconnect_time_wait=0.1)
        try:
            await nc.flush(timeout=2)
        finally:
            await nc.close()
    except (nats.errors.Error, OSError) as exc:
        error = f"{type(exc).__name__}: {exc}"
    return outcome(reported == "running" and not error, reported=reported,
                   answers=not error, **({"error": error} if error else {}))


class Health(InstanceScenario):
    id = "vault-instance.health"
    title = "health: fields, degraded on a cut central link, unhealthy with details"
    mutates = (*PROVISIONS, "cut the instance's central link (fault), then heal it",
               "shut the Vault Manager down (signed control command)")

    async def steps(self, run: Run, api: InstanceApi) -> None:
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
        memory, cpu = vm.get("memory_mb"), vm.get("cpu_percent")
        await run.record("health: memory and CPU reported", outcome(
            isinstance(memory, int | float) and 0 < memory < 1 << 20
            and isinstance(cpu, int | float) and cpu >= 0, memory_mb=memory, cpu_percent=cpu))
        nc = await api.connect()
        try:
            sent_at = time.time()  # an event, so that last_event_at has something to show
            await api.request(nc, {"id": "fields", "type": "ping"}, timeout=5)

            async def fields(_: Run) -> Outcome:  # uptime has whole seconds: re-read
                _st, again = await api.call("GET", "/vault/health")
                return health_fields_outcome(h, again, sent_at, time.time())

            await run.check(Check("health: every field typed and plausible", fields,
                                  within=10))
            await _degraded_checks(run, api)
            await api.request(nc, {"id": "stop-it", "type": "ping"}, timeout=5)
            await nc.publish(f"OwnerSpace.{api.member}.control", api.signed("shutdown"))
            await nc.flush()
        finally:
            await nc.close()

        async def reports_unhealthy(_: Run) -> Outcome:
            """Unhealthy, and the details name what was broken: the Vault Manager."""
            st, bad = await api.call("GET", "/vault/health")
            details = bad.get("details") or []
            manager = (bad.get("vault_manager") or {}).get("status")
            return outcome(st == 503 and bad.get("status") in ("degraded", "unhealthy")
                           and manager not in (None, "healthy") and bool(details),
                           http=st, status=bad.get("status"), vault_manager=manager,
                           details=details)

        await run.check(Check("health: unhealthy with details on failure", reports_unhealthy,
                              within=15))


DEGRADED = "health: degraded while the central link is cut"
RECOVERED = "health: healthy again after the link heals"


def _central_link_fault(run: Run) -> tuple[str, str] | str:
    """How to cut the instance's central link here: (fault kind, target), or why not."""
    lab = run.session.lab
    topo = lab.topology() if lab is not None else None
    if topo is None:
        return ("no way to cut the instance's central link: not the lab (the seed defines "
                "no such fault on a deployment)")
    if not any(LAB_INSTANCE_LINKS in name.split(".")[1:] for name in topo.links):
        return (f"the lab has no fault-proxy link {LAB_INSTANCE_LINKS} (started before it "
                "existed): the instances' central link cannot be cut")
    return "nats.leaf-disconnect", LAB_INSTANCE_LINKS


async def _degraded_checks(run: Run, api: InstanceApi) -> None:
    """Cut the instance's central link (local NATS and manager keep running): health is
    ``degraded``; heal it: ``healthy`` again."""
    cut = _central_link_fault(run)
    if isinstance(cut, str):
        for name in (DEGRADED, RECOVERED):
            await run.record(name, ("unknown", {"reason": cut}))
        return

    async def read(verdict) -> Outcome:
        status, body = await api.call("GET", "/vault/health")
        return verdict(status, body)

    fault = await run.inject(*cut)
    await run.check(Check(DEGRADED, lambda _: read(degraded_outcome), within=20))
    await run.heal(fault)
    await run.check(Check(RECOVERED, lambda _: read(recovered_outcome), within=20))


class Stop(InstanceScenario):
    id = "vault-instance.stop"
    title = "stop: graceful, flushes pending events, disconnects, keeps state"
    mutates = (*PROVISIONS, "write 20 kv.put events to the Vault Manager",
               "stop the instance (POST /vault/stop) and start it again ([provisioner] "
               "restart_path)")

    async def steps(self, run: Run, api: InstanceApi) -> None:
        await api.ready_instance()
        nc, answers = await api.listen()
        try:
            await api.request(nc, {"id": "warm", "type": "ping"}, timeout=5)
            ids = [f"pending-{i}" for i in range(20)]
            run.mutate("write 20 kv.put events", f"OwnerSpace.{api.member}.forVault")
            for i, eid in enumerate(ids):
                await nc.publish(f"OwnerSpace.{api.member}.forVault", json.dumps(
                    {"id": eid, "type": "kv.put", "payload": {"key": f"k{i}", "value": i}}
                ).encode())
            await nc.flush()
            attached = await api.hub_lookup()  # the positive control of the disconnect
            s, stopped = await api.call("POST", "/vault/stop")
            await run.record("stop: graceful", outcome(
                s == 200 and stopped.get("status") == "stopped", status=s))

            async def flushed(_: Run) -> Outcome:  # drained answers may still be crossing
                done = {a.get("id") for a in answers if a.get("ok") is True
                        and a.get("type") == "kv.put"}
                return outcome(set(ids) <= done, sent=len(ids), answered_ok=len(set(ids) & done),
                               missing=sorted(set(ids) - done)[:5])

            await run.check(Check("stop: flushes pending events", flushed, within=5))

            async def disconnected(_: Run) -> Outcome:
                if isinstance(attached, str):
                    return "unknown", {"reason": attached}
                now = await api.hub_lookup()
                if isinstance(now, str):
                    return "unknown", {"reason": now}
                return detached_outcome(attached, now)

            await run.check(Check("stop: disconnects from central", disconnected, within=10))
            try:
                s = await capabilities.restart(api.target, run.http, api.ssl,
                                               api.tokens[api.member])
            except Unavailable as exc:
                await run.record("stop: state preserved for restart",
                                 ("unknown", {"reason": str(exc)}))
                return

            async def has_state() -> bool:
                try:
                    r = await api.request(nc, {"id": "after", "type": "kv.get",
                                               "payload": {"key": "k19"}}, timeout=0.5)
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError):
                    return False
                return r.get("result", {}).get("value") == 19

            await run.check(Check("stop: state preserved for restart",
                                  lambda _: _bool(has_state, s == 200, restart_http=s),
                                  within=20))
        finally:
            await nc.close()


async def _bool(cond, also: bool = True, **evidence: Any) -> Outcome:
    """The outcome of an async condition (and ``also``), with evidence."""
    return outcome(also and await cond(), **evidence)


class Terminate(InstanceScenario):
    id = "vault-instance.terminate"
    title = "terminate: EC2 gone, security group removed, NATS credentials revoked"
    mutates = (*PROVISIONS, "terminate it: EC2, security group, NATS credentials")

    async def steps(self, run: Run, api: InstanceApi) -> None:
        ready = await api.ready_instance()
        password = api.nats_password()
        # Positive controls, before terminate: the credentials work, the group exists.
        before = await api.logins(password) if password is not None else []
        groups_before = (await _describe(run, ready["instance_id"]))["groups"]
        s, term = await api.call("POST", "/vault/terminate")
        await run.record("terminate: status terminated", outcome(
            s == 200 and term.get("status") == "terminated", status=s))
        ec2 = await _describe(run, ready["instance_id"])
        await run.record("terminate: EC2 terminated", outcome(
            ec2["instance"]["State"]["Name"] == "terminated",
            state=ec2["instance"]["State"]["Name"]))
        group = ready["security_group"]
        if group not in groups_before:
            await run.record("terminate: security group removed", (
                "unknown", {"group": group, "reason": "the instance's security group was not "
                                                      "listed before terminate either"}))
        else:
            await run.record("terminate: security group removed", outcome(
                group not in ec2["groups"], group=group, listed_before=True))
        if password is None:
            await run.record("terminate: NATS credentials revoked", (
                "unknown", {"reason": "the inventory's [provisioner] has no "
                                      "member_nats_passwords to try the credentials with"}))
        else:
            async def revoked(_: Run) -> Outcome:  # central reloads its auth asynchronously
                return revocation_outcome(before, await api.logins(password))

            control_ok = all(x.result == "accepted" for x in before)
            await run.check(Check("terminate: NATS credentials revoked", revoked,
                                  within=10 if control_ok else 0))
        s2, again = await api.call("POST", "/vault/terminate")
        await run.record("terminate: idempotent", outcome(
            s2 == 200 and again.get("status") == "terminated", status=s2))


class Lifecycle(InstanceScenario):
    id = "vault-instance.lifecycle"
    title = "lifecycle: end to end, restart, recovery from a failed initialize, concurrency"
    mutates = (*PROVISIONS, "revoke and re-grant the member's NATS account",
               "stop, start ([provisioner] restart_path) and terminate the instance")

    async def steps(self, run: Run, api: InstanceApi) -> None:
        steps: dict[str, int] = {}
        s, _ = await api.provision()
        steps["provision"] = s
        why = await api.set_account(False)  # initialize now fails for a real reason
        if why is None:
            s, failed = await api.initialize_when_ready()
            why = await api.set_account(True)
        s2, _recovered = await api.initialize_when_ready()
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
        try:
            s3 = await capabilities.restart(api.target, run.http, api.ssl,
                                            api.tokens[api.member])
        except Unavailable as exc:
            await run.record("lifecycle: restart after stop", ("unknown", {"reason": str(exc)}))
        else:
            s4, h = await api.call("GET", "/vault/health")
            await run.record("lifecycle: restart after stop", outcome(
                s3 == 200 and s4 == 200 and h.get("status") == "healthy", start=s3,
                health=s4))
        steps["terminate"] = (await api.call("POST", "/vault/terminate"))[0]
        await run.record("lifecycle: provision → initialize → health → stop → terminate",
                     outcome(steps == {"provision": 202, "initialize": 200, "health": 200,
                                       "stop": 200, "terminate": 200}, steps=steps))


class Relay(InstanceScenario):
    id = "vault-instance.relay"
    title = "relay: both ways, hub loss handled, reconnect, loss bounded by the switch window"
    mutates = (*PROVISIONS, "stop the central NATS node the leaf is attached to (fault)")

    async def steps(self, run: Run, api: InstanceApi) -> None:
        from ...nats.canary import GRACE_S, RelayCanary

        await api.ready_instance()
        local = await api.try_endpoints()
        if isinstance(local, str):
            for name in RELAY_CHECKS:
                await run.record(name, ("unknown", {"reason": local}))
            return
        leaf_url = local["client"]
        start = await api.hub_lookup()
        hub = start.hub if isinstance(start, HubLookup) else None
        other = next(n for n in api.central if n != hub)
        ok_in, t_in = await nats_roundtrip(api.central[other], leaf_url,
                                           f"OwnerSpace.{api.member}.relay.in", timeout=10)
        await run.record("relay: central → local", outcome(ok_in, seconds=round(t_in, 3)))
        ok_out, t_out = await nats_roundtrip(leaf_url, api.central[other],
                                             f"OwnerSpace.{api.member}.relay.out", timeout=10)
        await run.record("relay: local → central", outcome(ok_out, seconds=round(t_out, 3)))
        canary = RelayCanary(run.session.bus, f"vault-{api.member}", api.member,
                             api.central[other], leaf_url, rate=RELAY_RATE, keep_fates=True)
        await canary.start()
        probe = _probe_instance_leaf(run, api, local)  # the relay pane shows it live
        window: OutageWindow | None = None
        no_window = ""
        try:
            await run.wait_until("canary traffic crossing both ways before the fault", lambda: all(
                t.delivered >= RELAY_RATE for t in canary.paths.values()), 20)
            kill = _central_stop_fault(run, hub) if hub is not None else (
                "cannot tell which central node to stop: " + (
                    start if isinstance(start, str) else attached_outcome(start)[1]["reason"]))
            if isinstance(kill, str):
                no_window = kill
                for name in ("relay: central disconnection handled (leaf moves hub)",
                             "relay: automatic reconnect after a network fault"):
                    await run.record(name, ("unknown", {"reason": kill}))
            else:
                assert hub is not None
                started = time.time()  # before the fault: the window's start
                fault = await run.inject(kill[0], hub, **kill[1])
                seen: list[tuple[float, str]] = []

                async def moved(_: Run) -> Outcome:
                    lookup = await api.hub_lookup()
                    if isinstance(lookup, str):  # not after a start that named the leaf
                        return "unknown", {"reason": lookup}
                    result = moved_outcome(lookup, hub)
                    seen.append((lookup.at, result[0]))
                    return result

                await run.check(Check("relay: central disconnection handled (leaf moves hub)",
                                      moved, within=30))
                window = OutageWindow(started, seen[-1][0], seen[-1][1] in OK_STATUSES)
                run.metric("reconnect_seconds", window.seconds)
                await run.heal(fault)
                ok_again, _ = await nats_roundtrip(api.central[other], leaf_url,
                                                   f"OwnerSpace.{api.member}.relay.again",
                                                   timeout=15)
                await run.record("relay: automatic reconnect after a network fault",
                                 outcome(ok_again))
                after = window.end + TAIL_S + AFTER_MIN_S + 0.5
                await run.wait_until("a second of canary traffic after the window",
                                     lambda: time.time() > after, after - time.time() + 5)
            await canary.stop_publishing()
            await run.wait_until("every canary message to arrive or time out",
                                 lambda: not canary.in_flight(), GRACE_S + 5)
        finally:
            await canary.stop()
            if probe is not None and run.session.runner is not None:
                await run.session.runner.remove(probe)
        for path, t in canary.paths.items():
            t.settle(time.time() + GRACE_S)  # nothing is in flight any more: settle all
            run.metric(f"relay_{path}_lost", t.lost)
            run.metric(f"relay_{path}_duplicated", t.duplicated)
        await run.record(RELAY_LOSS_CHECK, relay_loss_outcome(
            canary.paths, RELAY_RATE, window, no_window_reason=no_window))


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
    from ...nats.config import LeafNode
    from ...nats.probe import LeafProbe

    if run.session.runner is None or run.session.http is None or not local["monitor"]:
        return None
    leaf = LeafNode(name=f"vault-{api.member}", user=api.member, client_url=local["client"],
                    monitor_url=local["monitor"])
    return run.session.runner.add(LeafProbe(run.session.http, leaf))


class Manager(InstanceScenario):
    id = "vault-instance.manager"
    title = "Vault Manager: events, malformed input, rate limit, signed control, health"
    mutates = (*PROVISIONS, "send signed control commands (backup, shutdown)")

    async def steps(self, run: Run, api: InstanceApi) -> None:
        await api.ready_instance()
        nc, answers = await api.listen()
        try:
            async def ping(_: Run | None = None) -> Outcome:
                """The reply to a ping request is the ping's successful answer."""
                try:
                    reply = await api.request(nc, {"id": "p", "type": "ping"}, 0.5)
                except (nats.errors.TimeoutError, nats.errors.NoRespondersError) as exc:
                    return outcome(False, reason=f"no reply: {type(exc).__name__}")
                return answer_outcome([reply], "p", "ping", {"pong": True})

            await run.check(Check("manager: forVault processed", ping, within=15))

            async def published(_: Run) -> Outcome:
                return answer_outcome(answers, "p", "ping", {"pong": True})

            await run.check(Check("manager: forApp published", published, within=5))
            await nc.publish(f"OwnerSpace.{api.member}.forVault", b"{not json")

            async def malformed_answered(_: Run) -> Outcome:
                errors = [a for a in answers if a.get("ok") is False
                          and "malformed" in str(a.get("error", ""))]
                if not errors:
                    return outcome(False, reason="no error answer to the malformed event",
                                   answers=len(answers))
                status, alive = await ping()
                return status, {"error": errors[0].get("error"), "still_answering": alive}

            await run.check(Check("manager: malformed events answered with an error, no crash",
                                  malformed_answered, within=5))
            burst = [f"burst-{i}" for i in range(200)]
            for eid in burst:
                await nc.publish(f"OwnerSpace.{api.member}.forVault",
                                 json.dumps({"id": eid, "type": "echo"}).encode())
            await nc.flush()

            def burst_answers() -> dict[str, dict[str, Any]]:
                return {a["id"]: a for a in answers if a.get("id") in set(burst)}

            async def limited(_: Run) -> Outcome:
                got = burst_answers()
                refused = sum(1 for a in got.values() if a.get("error") == "rate limited")
                served = sum(1 for a in got.values() if a.get("ok") is True)
                return outcome(len(got) == len(burst) and refused > 0 and served > 0,
                               burst=len(burst), answered=len(got), rate_limited=refused,
                               served=served)

            await run.check(Check("manager: rate limit enforced", limited, within=10))
            forged = api.signed("backup", Ed25519PrivateKey.generate())
            bad = json.loads((await nc.request(f"OwnerSpace.{api.member}.control", forged,
                                               timeout=5)).data)
            await run.record("manager: unauthorised command rejected", outcome(
                not bad["ok"] and "unauthorised" in bad.get("error", ""),
                error=bad.get("error")))
            backup = json.loads((await nc.request(f"OwnerSpace.{api.member}.control",
                                                  api.signed("backup"), timeout=5)).data)
            await run.record("manager: control accepted", outcome(
                backup["ok"] is True and backup.get("type") == "control.backup",
                type=backup.get("type")))
            result = backup.get("result") or {}
            await run.record("manager: backup processed", outcome(
                backup["ok"] is True and result.get("command") == "backup"
                and bool(result.get("backup")) and isinstance(result.get("keys"), int),
                result=result))
            s, h = await api.call("GET", "/vault/health")
            vm = h.get("vault_manager", {})
            await run.record("manager: health reported", outcome(
                s == 200 and vm.get("status") == "healthy", status=vm.get("status")))
            echo = vm.get("handlers", {}).get("echo", {})
            got = burst_answers()
            refused = sum(1 for a in got.values() if a.get("error") == "rate limited")
            # every echo of the burst is counted, the rate-limited ones as errors
            await run.record("manager: handler metrics present", outcome(
                echo.get("count") == len(burst) and echo.get("errors") == refused,
                echo=echo, expected={"count": len(burst), "errors": refused}))
            stats = vm.get("nats", {})
            await run.record("manager: NATS metrics present", outcome(
                isinstance(stats.get("in_msgs"), int) and stats["in_msgs"] >= len(burst)
                and isinstance(stats.get("reconnects"), int) and stats["reconnects"] >= 0,
                nats=stats, events_sent_at_least=len(burst)))
            down = json.loads((await nc.request(f"OwnerSpace.{api.member}.control",
                                                api.signed("shutdown"), timeout=5)).data)

            async def manager_gone() -> bool:
                _, body = await api.call("GET", "/vault/health")
                return body.get("vault_manager", {}).get("status") == "down"

            await run.check(Check("manager: shutdown processed",
                                  lambda _: _bool(manager_gone, down.get("ok") is True,
                                                  accepted=down.get("ok")),
                                  within=15))
        finally:
            await nc.close()


SCENARIOS: list[type[Scenario]] = [Provision, Initialize, Health, Stop, Terminate, Lifecycle,
                                   Relay, Manager]
