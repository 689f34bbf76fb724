"""Reference provisioning service for vault instances (the lab's system under test).

Contract (bearer token per member):
  POST /vault/provision   → {instance_id, status, region, availability_zone, private_ip?,
                             estimated_ready_at}; one per member (409), own security group,
                             arm64 AMI, tags; needs an active NATS account (403).
  POST /vault/initialize  → {status, local_nats_status, central_nats_status,
                             owner_space_id, message_space_id}; 409 if EC2 is not ready.
  GET  /vault/health      → {status, uptime_seconds, local_nats, central_nats,
                             vault_manager, last_event_at}; 404 when none provisioned.
  POST /vault/stop        → graceful: manager drains and flushes, leaf disconnects, EC2 stops,
                             state kept; POST /vault/start brings it back.
  POST /vault/terminate   → EC2 terminated, security group deleted, NATS account revoked;
                             idempotent.
Reference-only (not the seed's; off with ``--contract-only``, see provisioner.md):
  GET  /vault/status, POST /vault/start (restart a stopped instance),
  GET  /admin/instances          → every instance: status, health, local NATS endpoints.
  POST /admin/accounts/<member>  {"active": bool} → grant or revoke the NATS account.
An initialised instance's EC2 tags name its local NATS (``opsconsole:local-nats-url``,
``opsconsole:local-monitor-url``), as a deployment would publish where it listens.

The lab's time scale is this service's own config, not a request knob: ``--pending-s``
(EC2's modelled pending phase), ``--timeout-s`` (the provisioning limit, 120 s by the
seed) and ``--slow-member`` (a member whose provisioning stalls past the limit; a
background reaper fails it and terminates its EC2 instance). ``--wrong-type`` is a test
double: ``/vault/health`` answers ``uptime_seconds`` as a string.

EC2 goes through aioboto3 (moto in the lab: instances are ``running`` at once, so
the ``pending`` phase is modelled here for ``pending_s``). Each initialised
instance runs a real leaf nats-server (the instance's local NATS, a leaf of
central with the member's credentials) and a real Vault Manager process.

What the service is given (by the lab launcher, as flags; it imports nothing of the
console): its state dir, the token files, the NATS account table (a JSON file
``{member: {"password", "active"}}`` it reads on every request), the account command (a
long-running helper it starts once and sends one JSON line per grant or revoke,
``{"member", "active"}`` -> ``{"ok"[, "error"]}``), central's leafnode listeners, the
AWS endpoint and region, the nats-server binary and the Vault Managers' authorised keys.
The contract is written down in docs/contracts/provisioner.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import os
import signal
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aioboto3
import aiohttp
import psutil
from aiohttp import web

from ._procs import free_ports, spawn, stop_processes, write_private

PROVISION_TIMEOUT_S = 120.0
AWS_KEY = "testing"  # moto accepts any key; this is not a credential
AMI_NAME = "opsconsole-hardened-arm64"
AMI_TAGS = {"hardened": "cis-level-1", "role": "vault-instance"}
INSTANCE_TYPE = "t4g.nano"
Handler = Callable[["Provisioner", web.Request], Awaitable[web.Response]]


@dataclass
class Instance:
    member: str
    instance_id: str
    security_group: str
    status: str  # provisioning | running | failed | initialized | stopped | terminated
    created_at: float
    ready_at: float
    timeout_s: float = PROVISION_TIMEOUT_S
    availability_zone: str = ""
    private_ip: str = ""
    owner_space_id: str = ""
    message_space_id: str = ""
    leaf_client: int = 0
    leaf_monitor: int = 0
    manager_port: int = 0
    pids: dict[str, int] = field(default_factory=dict)
    error: str = ""
    initialized_at: float | None = None
    cleaned: bool = False  # a failed instance's EC2 resources are gone


def _serialised(handler: Handler) -> Handler:
    """One lifecycle change at a time per member: stopping or starting an instance's
    processes awaits, so a second request could otherwise act on a half-changed vault."""
    @functools.wraps(handler)
    async def wrapped(self: Provisioner, request: web.Request) -> web.Response:
        async with self.busy(self.member(request)):
            return await handler(self, request)

    return wrapped


@dataclass(frozen=True)
class Settings:
    """What the launcher gives the service (its command-line flags)."""

    state_dir: Path
    tokens_file: Path  # {member: bearer token}
    admin_token_file: Path
    accounts_file: Path  # {member: {"password": str, "active": bool}}
    accounts_command: list[str]  # the account helper: one JSON line per change
    hubs: list[str]  # host:port of every central leafnode listener
    aws_endpoint: str
    region: str
    nats_server: str
    authorized_keys: Path  # the Vault Managers' control keys
    pending_s: float = 2.0
    hub_ca: Path | None = None  # the hubs' CA: the leaf links go over TLS
    timeout_s: float = PROVISION_TIMEOUT_S
    slow_members: tuple[str, ...] = ()
    contract_only: bool = False
    wrong_type: bool = False


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        return None


class AccountHelper:
    """The launcher's account command, started once and kept for the service's life:
    one request line ``{"member", "active"}`` on its stdin, one reply line
    ``{"ok": bool, "error"?}`` on its stdout; it exits when its stdin closes."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.proc: asyncio.subprocess.Process | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            self.proc = await asyncio.create_subprocess_exec(
                *self.argv, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)

    async def set(self, member: str, active: bool) -> None:
        """Grant or revoke; raises ``RuntimeError`` with the helper's one-line reason."""
        async with self._lock:  # one request in flight: replies come back in order
            await self.start()
            proc = self.proc
            assert proc is not None and proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps({"member": member, "active": active}).encode() + b"\n")
            with contextlib.suppress(ConnectionError):
                await proc.stdin.drain()
            line = await proc.stdout.readline()
        if not line:
            raise RuntimeError("the account command exited without answering")
        try:
            reply = json.loads(line)
        except ValueError:
            raise RuntimeError(f"the account command answered {line[:80]!r}") from None
        if reply.get("ok") is not True:
            raise RuntimeError(str(reply.get("error") or "the account command refused"))

    async def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.returncode is not None:
            return
        assert proc.stdin is not None
        proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            proc.kill()
            await proc.wait()


class Provisioner:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pending_s = settings.pending_s
        self.dir = settings.state_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.state_file = self.dir / "instances.json"
        self.instances: dict[str, Instance] = self._load()
        self._busy: dict[str, asyncio.Lock] = {}
        tokens = json.loads(_read(settings.tokens_file) or "{}")
        self.members_by_token = {token: member for member, token in tokens.items()}
        self.admin_token = _read(settings.admin_token_file)
        self.accounts = AccountHelper(settings.accounts_command)
        self.region = settings.region
        self.aws = aioboto3.Session(aws_access_key_id=AWS_KEY,
                                    aws_secret_access_key=AWS_KEY, region_name=self.region)

    # ------------------------------------------------------- NATS accounts
    def account_table(self) -> dict[str, dict[str, Any]]:
        """Every member with a NATS account, active or revoked (read fresh: an operator
        or the lab may change it at any time)."""
        try:
            table = json.loads(_read(self.settings.accounts_file) or "{}")
        except ValueError:
            return {}
        return table if isinstance(table, dict) else {}

    def member_password(self, member: str) -> str | None:
        """The member's NATS password while its account is active, else None."""
        entry = self.account_table().get(member)
        if not isinstance(entry, dict) or entry.get("active") is not True:
            return None
        password = entry.get("password")
        return password if isinstance(password, str) and password else None

    # ----------------------------------------------------------------- state
    def _load(self) -> dict[str, Instance]:
        try:
            return {m: Instance(**d) for m, d in json.loads(self.state_file.read_text()).items()}
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def save(self) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps({m: asdict(i) for m, i in self.instances.items()}, indent=1))
        os.replace(tmp, self.state_file)

    def ec2(self):
        return self.aws.client("ec2", endpoint_url=self.settings.aws_endpoint)

    def refresh(self, inst: Instance) -> None:
        """Model EC2's pending phase (moto is running at once) and the time limit."""
        now = time.time()
        if inst.status == "provisioning":
            if now >= inst.ready_at:
                inst.status = "running"
            elif now - inst.created_at > inst.timeout_s:
                inst.status = "failed"
                inst.error = f"provisioning exceeded {inst.timeout_s:g} s"
            self.save()

    async def reap(self, every: float = 0.5) -> None:
        """Fail what exceeded the time limit and clean it up: its EC2 instance is
        terminated and its security group deleted (nothing is left running)."""
        while True:
            await asyncio.sleep(every)
            for inst in list(self.instances.values()):
                self.refresh(inst)
                if inst.status != "failed" or inst.cleaned:
                    continue
                try:
                    async with self.ec2() as ec2:
                        await ec2.terminate_instances(InstanceIds=[inst.instance_id])
                        with contextlib.suppress(Exception):  # moto keeps the ENI briefly
                            await ec2.delete_security_group(GroupId=inst.security_group)
                except Exception as exc:  # tried again on the next round
                    print(f"reaper: {inst.instance_id}: {exc}", file=sys.stderr)
                    continue
                inst.cleaned = True
                self.save()

    # ------------------------------------------------------------- handlers
    def member(self, request: web.Request) -> str:
        auth = request.headers.get("Authorization", "")
        member = self.members_by_token.get(auth.removeprefix("Bearer ").strip())
        if not auth.startswith("Bearer ") or member is None:
            raise web.HTTPUnauthorized(text=json.dumps({"error": "invalid or missing token"}),
                                       content_type="application/json")
        return member

    def busy(self, member: str) -> asyncio.Lock:
        return self._busy.setdefault(member, asyncio.Lock())

    def current(self, member: str) -> Instance:
        inst = self.instances.get(member)
        if inst is None or inst.status == "terminated":
            raise web.HTTPNotFound(text=json.dumps({"error": "no vault provisioned"}),
                                   content_type="application/json")
        self.refresh(inst)
        return inst

    @_serialised
    async def provision(self, request: web.Request) -> web.Response:
        member = self.member(request)
        existing = self.instances.get(member)
        if existing is not None:
            self.refresh(existing)
        if existing is not None and existing.status not in ("terminated", "failed"):
            return web.json_response({"error": "this member already has a vault",
                                      "instance_id": existing.instance_id}, status=409)
        if self.member_password(member) is None:
            return web.json_response({"status": "failed",
                                      "error": "no active NATS account for this member"},
                                     status=403)
        # the lab's time scale: this service's own config (a slow member never gets ready)
        limit = self.settings.timeout_s
        pending = limit + 3600 if member in self.settings.slow_members else self.pending_s
        async with self.ec2() as ec2:
            ami = await self._hardened_ami(ec2)
            sg = await ec2.create_security_group(
                GroupName=f"vault-{member}-{uuid.uuid4().hex[:8]}",
                Description=f"vault instance of {member}")
            tags = [{"Key": "role", "Value": "vault-instance"}, {"Key": "owner", "Value": member},
                    {"Key": "env", "Value": "lab"}, {"Key": "Name", "Value": f"vault-{member}"},
                    {"Key": "managed-by", "Value": "opsconsole-provisioner"}]
            run = await ec2.run_instances(
                ImageId=ami, InstanceType=INSTANCE_TYPE, MinCount=1, MaxCount=1,
                SecurityGroupIds=[sg["GroupId"]],
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        raw = run["Instances"][0]
        now = time.time()
        inst = Instance(member, raw["InstanceId"], sg["GroupId"], "provisioning", now,
                        now + pending, limit,
                        raw.get("Placement", {}).get("AvailabilityZone", ""),
                        raw.get("PrivateIpAddress", ""))
        self.instances[member] = inst
        self.save()
        return web.json_response(self._summary(inst), status=202)

    async def _hardened_ami(self, ec2) -> str:
        images = await ec2.describe_images(Filters=[{"Name": "name", "Values": [AMI_NAME]}])
        if images["Images"]:
            return images["Images"][0]["ImageId"]
        base = await ec2.describe_images(Filters=[{"Name": "architecture",
                                                   "Values": ["arm64"]}])
        copy = await ec2.copy_image(Name=AMI_NAME, SourceImageId=base["Images"][0]["ImageId"],
                                    SourceRegion=self.region,
                                    Description="hardened arm64 base for vault instances")
        # what the lab's AMI policy requires of the image (the console checks the tags)
        await ec2.create_tags(Resources=[copy["ImageId"]], Tags=[
            {"Key": k, "Value": v} for k, v in AMI_TAGS.items()])
        return copy["ImageId"]

    def _summary(self, inst: Instance) -> dict[str, Any]:
        return {"instance_id": inst.instance_id, "status": inst.status, "region": self.region,
                "availability_zone": inst.availability_zone, "private_ip": inst.private_ip,
                "estimated_ready_at": inst.ready_at, "security_group": inst.security_group,
                **({"error": inst.error} if inst.error else {})}

    async def status(self, request: web.Request) -> web.Response:
        return web.json_response(self._summary(self.current(self.member(request))))

    @_serialised
    async def initialize(self, request: web.Request) -> web.Response:
        inst = self.current(self.member(request))
        if inst.status in ("initialized", "stopped"):
            return web.json_response({"error": f"vault is {inst.status}"}, status=409)
        if inst.status != "running":
            return web.json_response({"status": "failed", "error":
                                      f"EC2 instance not ready (status {inst.status})"},
                                     status=409)
        password = self.member_password(inst.member)
        if password is None:
            return web.json_response({"status": "failed",
                                      "error": "no active NATS account"}, status=403)
        inst.owner_space_id = f"OwnerSpace.{inst.member}"
        inst.message_space_id = f"MessageSpace.{inst.member}.{uuid.uuid4().hex[:8]}"
        inst.leaf_client, inst.leaf_monitor, inst.manager_port = free_ports(3)
        try:
            await self._start_processes(inst, password)
        except Exception as exc:  # nothing half-done: stop what started, stay "running"
            await self._stop_processes(inst)
            inst.owner_space_id = inst.message_space_id = ""
            self.save()
            return web.json_response({"status": "failed", "error": str(exc)}, status=500)
        inst.status, inst.initialized_at = "initialized", time.time()
        self.save()
        await self._tag_endpoints(inst)
        return web.json_response({"status": "initialized", "local_nats_status": "running",
                                  "central_nats_status": "connected",
                                  "owner_space_id": inst.owner_space_id,
                                  "message_space_id": inst.message_space_id})

    async def _tag_endpoints(self, inst: Instance) -> None:
        """Where the instance's local NATS listens, in its EC2 tags."""
        async with self.ec2() as ec2:
            await ec2.create_tags(Resources=[inst.instance_id], Tags=[
                {"Key": "opsconsole:local-nats-url",
                 "Value": f"nats://127.0.0.1:{inst.leaf_client}"},
                {"Key": "opsconsole:local-monitor-url",
                 "Value": f"http://127.0.0.1:{inst.leaf_monitor}"}])

    def _instance_dir(self, inst: Instance) -> Path:
        return self.dir / inst.instance_id

    async def _start_processes(self, inst: Instance, password: str) -> None:
        d = self._instance_dir(inst)
        urls = ", ".join(json.dumps(f"nats-leaf://{inst.member}:{password}@{hub}")
                         for hub in self.settings.hubs)
        tls = (f", tls: {{ ca_file: {json.dumps(str(self.settings.hub_ca))} }}"
               if self.settings.hub_ca else "")
        conf = (f'server_name: "vault-{inst.member}"\nlisten: "127.0.0.1:{inst.leaf_client}"\n'
                f'http: "127.0.0.1:{inst.leaf_monitor}"\nping_interval: "2s"\nping_max: 2\n'
                f'leafnodes {{\n  reconnect: "100ms"\n  remotes: [ {{ urls: [{urls}]{tls} }} ]'
                '\n}\n')
        write_private(d / "nats.conf", conf)  # credentials installed, 0600
        # detached children, spawned off the loop: Popen blocks until the child has exec'd
        leaf = await asyncio.to_thread(
            spawn, [self.settings.nats_server, "-c", str(d / "nats.conf")], d / "nats.log")
        manager = await asyncio.to_thread(
            spawn,
            [sys.executable, "-m", "opsconsole_lab.vault_manager",
             "--nats", f"nats://127.0.0.1:{inst.leaf_client}", "--user", inst.member,
             "--monitor-port", str(inst.manager_port), "--state-dir", str(d / "manager"),
             "--authorized-keys", str(self.settings.authorized_keys)],
            d / "manager.log")
        inst.pids = {"nats": leaf, "manager": manager}
        self.save()
        deadline = time.monotonic() + 20
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                health = await self._probe(http, inst)
                if health["central"] == "connected" and health["manager"].get("status") == \
                        "healthy":
                    return
                await asyncio.sleep(0.1)
        raise RuntimeError("local NATS or Vault Manager did not come up within 20 s")

    async def _probe(self, http: aiohttp.ClientSession, inst: Instance) -> dict[str, Any]:
        out: dict[str, Any] = {"local": "stopped", "connections": 0, "central": "disconnected",
                               "rtt_ms": None, "manager": {}}
        timeout = aiohttp.ClientTimeout(total=1)
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
            async with http.get(f"http://127.0.0.1:{inst.leaf_monitor}/varz",
                                timeout=timeout) as r:
                out["connections"] = (await r.json()).get("connections", 0)
                out["local"] = "running"
            async with http.get(f"http://127.0.0.1:{inst.leaf_monitor}/leafz",
                                timeout=timeout) as r:
                links = (await r.json()).get("leafs", [])
                if links:
                    out["central"] = "connected"
                    out["hub"] = links[0].get("name", "")
                    out["rtt_ms"] = _rtt_ms(links[0].get("rtt", ""))
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, ValueError):
            async with http.get(f"http://127.0.0.1:{inst.manager_port}/health",
                                timeout=timeout) as r:
                out["manager"] = await r.json()
        return out

    async def health(self, request: web.Request) -> web.Response:
        inst = self.current(self.member(request))
        if inst.status not in ("initialized", "stopped"):
            return web.json_response({"status": "unhealthy", "error":
                                      f"vault not initialized (status {inst.status})"},
                                     status=409)
        async with aiohttp.ClientSession() as http:
            p = await self._probe(http, inst)
        manager = p["manager"]
        problems = [what for what, bad in (
            ("local NATS not running", p["local"] != "running"),
            ("central NATS disconnected", p["central"] != "connected"),
            ("vault manager not healthy", manager.get("status") != "healthy")) if bad]
        status = "healthy" if not problems else (
            "unhealthy" if p["local"] != "running" or not manager else "degraded")
        uptime: Any = round(time.time() - (inst.initialized_at or time.time()))
        body = {"status": status,
                "uptime_seconds": str(uptime) if self.settings.wrong_type else uptime,
                "local_nats": {"status": p["local"], "connections": p["connections"]},
                "central_nats": {"status": p["central"], "latency_ms": p["rtt_ms"]},
                "vault_manager": {"status": manager.get("status", "down"),
                                  "memory_mb": manager.get("memory_mb"),
                                  "cpu_percent": manager.get("cpu_percent"),
                                  "handlers_loaded": manager.get("handlers_loaded", 0),
                                  "handlers": manager.get("handlers", {}),
                                  "nats": manager.get("nats", {})},
                "last_event_at": manager.get("last_event_at")}
        if problems:
            body["details"] = problems
        return web.json_response(body, status=200 if status == "healthy" else 503)

    async def _stop_processes(self, inst: Instance) -> None:
        running = []
        for pid in inst.pids.values():
            with contextlib.suppress(psutil.Error):
                running.append(psutil.Process(pid))
        # Manager first (SIGTERM: drain in-flight events, flush state), then its NATS.
        await stop_processes(running[1:], grace=10)
        await stop_processes(running[:1], grace=5)
        inst.pids = {}

    @_serialised
    async def stop(self, request: web.Request) -> web.Response:
        inst = self.current(self.member(request))
        if inst.status != "initialized":
            return web.json_response({"error": f"cannot stop a vault that is {inst.status}"},
                                     status=409)
        await self._stop_processes(inst)
        async with self.ec2() as ec2:
            await ec2.stop_instances(InstanceIds=[inst.instance_id])
        inst.status = "stopped"
        self.save()
        return web.json_response({"status": "stopped", "state_preserved": True,
                                  "instance_id": inst.instance_id})

    @_serialised
    async def start(self, request: web.Request) -> web.Response:
        inst = self.current(self.member(request))
        if inst.status != "stopped":
            return web.json_response({"error": f"cannot start a vault that is {inst.status}"},
                                     status=409)
        password = self.member_password(inst.member)
        if password is None:
            return web.json_response({"error": "no active NATS account"}, status=403)
        async with self.ec2() as ec2:
            await ec2.start_instances(InstanceIds=[inst.instance_id])
        inst.leaf_client, inst.leaf_monitor, inst.manager_port = free_ports(3)
        await self._start_processes(inst, password)
        inst.status = "initialized"
        self.save()
        await self._tag_endpoints(inst)
        return web.json_response({"status": "initialized", "restarted": True})

    def _admin(self, request: web.Request) -> bool:
        auth = request.headers.get("Authorization", "")
        return bool(self.admin_token) and auth == f"Bearer {self.admin_token}"

    async def admin_account(self, request: web.Request) -> web.Response:
        """Grant (``{"active": true}``) or revoke a member's NATS account (admin token)."""
        if not self._admin(request):
            return web.json_response({"error": "admin token required"}, status=401)
        member = request.match_info["member"]
        if member not in self.account_table():
            return web.json_response({"error": f"no member {member!r}"}, status=404)
        try:
            active = (await request.json())["active"]
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": 'body must be {"active": true|false}'},
                                     status=400)
        if not isinstance(active, bool):
            return web.json_response({"error": '"active" must be true or false'}, status=400)
        try:
            await self.accounts.set(member, active)
        except RuntimeError as exc:
            return web.json_response({"error": f"account change failed: {exc}"}, status=500)
        return web.json_response({"member": member, "active": active})

    async def admin_instances(self, request: web.Request) -> web.Response:
        """Operator view: every instance with its own health and endpoints (admin token)."""
        if not self._admin(request):
            return web.json_response({"error": "admin token required"}, status=401)
        rows = []
        async with aiohttp.ClientSession() as http:
            for inst in list(self.instances.values()):
                self.refresh(inst)
                row = {"member": inst.member, "instance_id": inst.instance_id,
                       "status": inst.status}
                if inst.status in ("initialized", "stopped"):
                    row["local_nats_url"] = f"nats://127.0.0.1:{inst.leaf_client}"
                    row["local_monitor_url"] = f"http://127.0.0.1:{inst.leaf_monitor}"
                    p = await self._probe(http, inst)
                    row |= {"local_nats": p["local"], "central_nats": p["central"],
                            "hub": p.get("hub", ""),
                            "manager": p["manager"].get("status", "down"),
                            "last_event_at": p["manager"].get("last_event_at")}
                rows.append(row)
        return web.json_response(rows)

    @_serialised
    async def terminate(self, request: web.Request) -> web.Response:
        member = self.member(request)
        inst = self.instances.get(member)
        if inst is None:
            return web.json_response({"error": "no vault provisioned"}, status=404)
        if inst.status != "terminated":
            await self._stop_processes(inst)
            async with self.ec2() as ec2:
                await ec2.terminate_instances(InstanceIds=[inst.instance_id])
                with contextlib.suppress(Exception):  # moto keeps the ENI briefly
                    await ec2.delete_security_group(GroupId=inst.security_group)
            try:
                await self.accounts.set(member, False)
            except RuntimeError as exc:
                return web.json_response({"status": "failed", "error":
                                          f"NATS account not revoked: {exc}"}, status=500)
            inst.status = "terminated"
            self.save()
        return web.json_response({"status": "terminated", "instance_id": inst.instance_id,
                                  "security_group_deleted": True,
                                  "nats_credentials_revoked": True})


def _rtt_ms(text: str) -> float | None:
    """NATS durations like '312µs' or '1.2ms'."""
    for unit, factor in (("µs", 0.001), ("us", 0.001), ("ms", 1.0), ("s", 1000.0)):
        if text.endswith(unit):
            with contextlib.suppress(ValueError):
                return round(float(text[: -len(unit)]) * factor, 3)
    return None


def make_app(prov: Provisioner) -> web.Application:
    app = web.Application()
    app.router.add_get("/healthz", lambda _: web.json_response({"status": "ok"}))
    app.router.add_post("/vault/provision", prov.provision)
    app.router.add_post("/vault/initialize", prov.initialize)
    app.router.add_get("/vault/health", prov.health)
    app.router.add_post("/vault/stop", prov.stop)
    app.router.add_post("/vault/terminate", prov.terminate)
    if not prov.settings.contract_only:  # reference-only: see provisioner.md
        app.router.add_get("/vault/status", prov.status)
        app.router.add_post("/vault/start", prov.start)
        app.router.add_get("/admin/instances", prov.admin_instances)
        app.router.add_post("/admin/accounts/{member}", prov.admin_account)
    return app


async def serve(settings: Settings, port: int) -> None:
    prov = Provisioner(settings)
    await prov.accounts.start()  # its start-up runs while this service starts
    reaper = asyncio.create_task(prov.reap(), name="provisioning-reaper")
    runner = web.AppRunner(make_app(prov), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    reaper.cancel()
    await runner.cleanup()
    await prov.accounts.close()


def _argv(text: str) -> list[str]:
    argv = json.loads(text)
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise argparse.ArgumentTypeError("a JSON array of strings")
    return argv


def parse_args(argv: list[str] | None = None) -> tuple[Settings, int]:
    parser = argparse.ArgumentParser(prog="python -m opsconsole_lab.provisioning")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--tokens-file", type=Path, required=True)
    parser.add_argument("--admin-token-file", type=Path, required=True)
    parser.add_argument("--accounts-file", type=Path, required=True)
    parser.add_argument("--accounts-command", type=_argv, required=True,
                        help="JSON argv of the account helper")
    parser.add_argument("--hub", action="append", required=True, dest="hubs",
                        help="host:port of a central leafnode listener (repeat)")
    parser.add_argument("--aws-endpoint", required=True)
    parser.add_argument("--region", required=True)
    parser.add_argument("--nats-server", required=True)
    parser.add_argument("--authorized-keys", type=Path, required=True)
    parser.add_argument("--hub-ca", type=Path, default=None,
                        help="CA of the hubs' leafnode listeners (their links then use TLS)")
    parser.add_argument("--pending-s", type=float, default=2.0,
                        help="EC2's modelled pending phase, seconds")
    parser.add_argument("--timeout-s", type=float, default=PROVISION_TIMEOUT_S,
                        help="the provisioning time limit, seconds (the seed: 120)")
    parser.add_argument("--slow-member", action="append", default=[], dest="slow_members",
                        help="a member whose provisioning stalls past the limit (repeat)")
    parser.add_argument("--contract-only", action="store_true",
                        help="serve only the seed's five endpoints "
                             "(docs/contracts/vault-instance.openapi.yaml)")
    parser.add_argument("--wrong-type", action="store_true",
                        help="test double: /vault/health's uptime_seconds as a string")
    args = parser.parse_args(argv)
    settings = Settings(args.state_dir, args.tokens_file, args.admin_token_file,
                        args.accounts_file, args.accounts_command, args.hubs,
                        args.aws_endpoint, args.region, args.nats_server, args.authorized_keys,
                        pending_s=args.pending_s, hub_ca=args.hub_ca, timeout_s=args.timeout_s,
                        slow_members=tuple(args.slow_members),
                        contract_only=args.contract_only, wrong_type=args.wrong_type)
    return settings, args.port


def main() -> None:
    settings, port = parse_args()
    asyncio.run(serve(settings, port))


if __name__ == "__main__":
    main()
