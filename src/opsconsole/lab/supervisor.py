"""The embedded lab: start, inspect and stop a real NATS + OpenBao + moto topology.

Everything listens on 127.0.0.1 on ports chosen free at first start. The state
dir records ports and pids durably *before* the lab is used, and every child
carries a marker in its environment, so `lab down` (or the next `lab up`) can
always find and stop what a killed console left behind.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import secrets
import shutil
import signal
import ssl
import sys
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import psutil
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..config import LabSpec, SecretRef
from ..errors import UserError
from ..systems.nats.config import LeafNode, NatsCluster, NatsNode
from ..systems.nats.events import LeafSampled, NatsNodeSampled
from ..systems.nats.health import leaf_health
from ..systems.nats.health import node_health as nats_node_health
from ..systems.nats.probe import LeafProbe, NatsNodeProbe
from ..systems.vault.alerts import prometheus_files
from ..systems.vault.client import VaultApi
from ..systems.vault.config import VaultCluster, VaultNode
from ..systems.vault.events import VaultNodeSampled
from ..systems.vault.health import node_health
from ..systems.vault.probe import VaultClusterProbe
from ..targets.http import NETWORK_ERRORS, reason
from . import binaries, netns, procs
from . import pki as lab_pki
from .aws_seed import ensure_instances
from .nats_topology import (
    CLUSTER_NAME,
    CONSOLE_USER,
    CentralNode,
    LeafServer,
    TlsFiles,
    central_config,
    leaf_config,
)
from .netns import NetnsPlan
from .ports import ensure_free, free_ports, wait_closed
from .state import STATE_LOCK, LabState, ProcRecord, StateDir, resolve_state_dir
from .vault_bootstrap import (
    enable_kv,
    health,
    initialise,
    join,
    raft_servers,
    tune_autopilot,
    wait_for,
)
from .vault_topology import (
    RECOVERY_KEY_FILE,
    ROOT_TOKEN_FILE,
    SEAL_KEY_FILE,
    VaultNodeSpec,
    node_config,
)

PORT_ROLES = {
    "netproxy": ("control",),
    "httpproxy": ("control", "aws", "forward"),  # the HTTP fault proxy (netproxy/http.py)
    "nats": ("client", "monitor", "route", "leaf"),
    "leaf": ("client", "monitor"),
    "vault": ("api", "cluster"),
    "moto": ("http",),
    "provisioner": ("http",),
    "sessions": ("http",),
}
LAB_SCRAPE_INTERVAL_S = 2.0  # console metrics scrapes and the lab's prometheus.yml
MEMBER_PASSWORDS_FILE = "nats-member-passwords.json"  # {member: password}, for the pack
#: {member: {"password", "active"}}: the reference provisioner's account table (read-only to
#: it; it changes accounts through the helper of .accounts)
MEMBER_ACCOUNTS_FILE = "nats-member-accounts.json"
NO_ACCOUNT_MEMBER = "dave"  # has a provisioning API token but no NATS account
#: a member whose provisioning the reference stalls past the limit (when it is a member)
SLOW_MEMBER = "carol"
CONSOLE_PASSWORD_FILE = "nats-console.password"  # the console's own NATS login
DUMMY_AWS_KEY = "testing"  # moto accepts any key; these are not credentials
#: the previews stack's AWS name prefix (cluster; -sessions table; -intake queue)
LAB_PREVIEWS_PREFIX = "opsconsole-sessions"


@dataclass(frozen=True)
class Topology:
    """Node names and ports of one lab, derived from the spec and the recorded ports."""

    central: list[CentralNode]
    leaves: list[LeafServer]
    vault: list[VaultNodeSpec]
    moto_port: int
    proxy_control: int
    links: dict[str, int]  # fault-proxy link name -> its listen port
    provisioner_port: int
    sessions_port: int

    netns: NetnsPlan | None = None
    #: the HTTP fault proxy: every AWS client's endpoint (→ moto), the previews router's
    #: way to its containers, and its control API
    http_proxy: dict[str, int] | None = None

    @classmethod
    def plan(cls, spec: LabSpec, ports: dict[str, dict[str, int]],
             netns_plan: NetnsPlan | None = None, tls: bool = False) -> Topology:
        central = [CentralNode(n, **ports[n], tls=tls) for n in node_names(spec, "nats")]
        leaves = [LeafServer(f"leaf-{u}", u, **ports[f"leaf-{u}"], tls=tls)
                  for u in spec.leaf_users]
        if netns_plan is not None:  # each node has its own address: fixed ports
            vault = [VaultNodeSpec(n, netns.API_PORT, netns.CLUSTER_PORT,
                                   host=netns_plan.address(n), tls=tls)
                     for n in node_names(spec, "vault")]
        else:
            vault = [VaultNodeSpec(n, **ports[n], tls=tls) for n in node_names(spec, "vault")]
        proxy = dict(ports["netproxy"])
        control = proxy.pop("control")
        return cls(central, leaves, vault, ports["moto"]["http"], control, proxy,
                   ports["provisioner"]["http"], ports["sessions"]["http"], netns_plan,
                   http_proxy=dict(ports["httpproxy"]))

    @property
    def moto_url(self) -> str:
        return f"http://127.0.0.1:{self.moto_port}"

    @property
    def aws_url(self) -> str:
        """The AWS endpoint every lab client uses: the HTTP fault proxy in front of moto."""
        assert self.http_proxy is not None
        return f"http://127.0.0.1:{self.http_proxy['aws']}"

    @property
    def http_proxy_url(self) -> str:
        """The HTTP fault proxy's control API (aws.throttle, previews.router-cut)."""
        assert self.http_proxy is not None
        return f"http://127.0.0.1:{self.http_proxy['control']}"

    @property
    def forward_proxy_url(self) -> str:
        assert self.http_proxy is not None
        return f"http://127.0.0.1:{self.http_proxy['forward']}"

    @property
    def provisioner_url(self) -> str:
        return f"http://127.0.0.1:{self.provisioner_port}"

    @property
    def sessions_url(self) -> str:
        return f"http://127.0.0.1:{self.sessions_port}"

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_control}"

    def link_specs(self) -> list[dict[str, object]]:
        """What the fault proxy listens on and where each link leads."""
        upstream = {n.name: n.route for n in self.central}
        hubs = {n.name: n.leaf for n in self.central}
        specs = []
        for name, listen in self.links.items():
            kind, _src, dst = name.split(".")
            port = upstream[dst] if kind == "route" else hubs[dst]
            specs.append({"name": name, "listen": listen, "upstream_port": port})
        return specs


def node_names(spec: LabSpec, kind: str) -> list[str]:
    if kind == "nats":
        return [f"nats-{i + 1}" for i in range(spec.nats_nodes)]
    if kind == "leaf":
        return [f"leaf-{u}" for u in spec.leaf_users]
    if kind == "vault":
        return [f"vault-{i + 1}" for i in range(spec.vault_nodes)]
    return [kind]  # netproxy, moto, provisioner, sessions: one each


#: the fault-proxy links of the provisioner's instance leaves (one per hub): cutting
#: ``nats.leaf-disconnect vault-instances`` cuts every instance's central link
INSTANCES_LINK = "vault-instances"


def link_names(spec: LabSpec) -> list[str]:
    """Links that faults can cut: every route (per direction of dialling) and every
    leaf→hub link. ``route.nats-1.nats-2`` is the route nats-1 dials to reach nats-2."""
    central = node_names(spec, "nats")
    routes = [f"route.{a}.{b}" for a in central for b in central if a != b]
    leaves = [f"leaf.{leaf}.{hub}" for leaf in node_names(spec, "leaf") for hub in central]
    instances = [f"leaf.{INSTANCES_LINK}.{hub}" for hub in central]
    return routes + leaves + instances


def allocate_ports(spec: LabSpec) -> dict[str, dict[str, int]]:
    wanted = [(name, kind) for kind in PORT_ROLES for name in node_names(spec, kind)]
    links = link_names(spec)
    pool = iter(free_ports(sum(len(PORT_ROLES[k]) for _, k in wanted) + len(links)))
    ports = {name: {role: next(pool) for role in PORT_ROLES[kind]} for name, kind in wanted}
    ports["netproxy"].update({link: next(pool) for link in links})
    return ports


class Lab:
    """One embedded lab, identified by its state dir."""

    def __init__(self, spec: LabSpec | None = None,
                 state_dir: str | os.PathLike[str] | None = None) -> None:
        self.spec = spec or LabSpec()
        self.dir = StateDir(resolve_state_dir(state_dir or self.spec.state_dir))
        self.marker = str(self.dir.root)

    @classmethod
    def attach(cls, state_dir: str | os.PathLike[str]) -> Lab:
        """The lab living in ``state_dir``, with the spec it was built from."""
        state = StateDir(resolve_state_dir(state_dir)).load()
        spec = LabSpec.model_validate(state.spec) if state.spec else LabSpec()
        return cls(spec, state_dir=state_dir)

    def process(self, name: str) -> ProcRecord | None:
        """The live process record of one lab node, or None when it is not running."""
        rec = self.dir.load().procs.get(name)
        return rec if rec is not None and procs.is_alive(rec) else None

    # ---------------------------------------------------------------- paths
    def _node_dir(self, kind: str, name: str) -> Path:
        return self.dir.root / ("vault" if kind == "vault" else kind) / name

    @property
    def audit_log(self) -> Path:
        return self.dir.root / "vault" / "audit.log"

    def binary(self, name: str) -> str:
        """The path of a lab binary (``bao``, ``nats-server``, ``moto_server``)."""
        finders = {"bao": binaries.bao, "nats-server": binaries.nats_server,
                   "moto_server": lambda: " ".join(binaries.moto_server())}
        if name not in finders:
            raise UserError(f"the lab has no binary {name!r}")
        return finders[name]()

    def marked_processes(self) -> list[psutil.Process]:
        """Every live process this lab started (they carry its marker)."""
        return procs.find_marked(self.marker)

    # ------------------------------------------------------------- commands
    async def up(self, timeout: float = 60.0) -> dict[str, Any]:
        """Bring the lab up (idempotent); return its status once every node is healthy."""
        began = time.monotonic()
        async with self.dir.locked():
            state = self.dir.load()
            wanted = {n for kind in PORT_ROLES for n in node_names(self.spec, kind)}
            # a lab recorded by an older opsconsole (other nodes) is rebuilt, not patched
            fresh = state.phase != "up" or set(state.ports) != wanted
            if fresh:
                # Never resume a half-built lab: its vault may be initialised
                # with a token we never saved. Clean it and start from scratch.
                await self._stop_everything(state)
                binaries.nats_server(), binaries.bao(), binaries.moto_server()  # fail early
                state = await asyncio.to_thread(self._fresh_state)
            try:
                started = await self._bring_up(state, timeout)
            except BaseException:
                if fresh:  # nothing half-built is left behind: no process, no namespace
                    await self._stop_everything(self.dir.load(), grace=1.5)
                    failed = self.dir.load()
                    failed.phase, failed.procs = "down", {}
                    await asyncio.to_thread(self.dir.save, failed)
                raise
            if started or state.phase != "up":
                state.phase = "up"
                state.up_seconds = round(time.monotonic() - began, 2)
                await asyncio.to_thread(self.dir.save, state)
        return await self.status()

    async def _bring_up(self, state: LabState, timeout: float) -> list[str]:
        """Create what is missing and wait for health; return the nodes started."""
        topo = self._plan(state)
        cmds = self.commands(topo)  # resolves every binary before anything is created
        if topo.netns is not None:
            await asyncio.to_thread(netns.create, topo.netns)
        await asyncio.to_thread(self._write_configs, topo)
        started = await asyncio.to_thread(self._start_missing, state, topo, cmds)
        async with aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self.ssl_context())) as session:
            await asyncio.gather(
                self._wait_nats(session, topo, timeout),
                self._bring_up_vault(session, topo, timeout, state),
                self._bring_up_moto(session, topo, timeout, fresh="moto" in started),
                self._wait_http(session, f"{topo.http_proxy_url}/healthz",
                                "the HTTP fault proxy", timeout),
                self._wait_http(session, f"{topo.provisioner_url}/healthz",
                                "the provisioning service", timeout),
                self._wait_http(session, f"{topo.sessions_url}/api/health",
                                "the sessions stack (router)", timeout),
            )
        return started

    async def down(self) -> list[str]:
        """Stop every lab process (recorded or marked); return the names stopped."""
        async with self.dir.locked():
            state = self.dir.load()
            stopped = await self._stop_everything(state, grace=1.5)
            owners = {port: f"{node} {role}" for node, ports in state.ports.items()
                      for role, port in ports.items()}
            still = await wait_closed(list(owners), timeout=3.0)
            leftover = [f"{owners[p]} {p}" for p in still]
            state.phase = "down"
            state.procs = {}
            await asyncio.to_thread(self._clear_down, state)
            if leftover:
                raise UserError("lab down: still listening after stop: " + ", ".join(leftover),
                                exit_code=2)
        return stopped

    # ------------------------------------------------------ process control
    def _plan(self, state: LabState) -> Topology:
        plan = NetnsPlan.from_json(state.netns) if state.netns else None
        return Topology.plan(self.spec, state.ports, plan, tls=self.tls_on(state))

    def tls_on(self, state: LabState | None = None) -> bool:
        """Whether this lab runs secured: as it was started (recorded), else as specified."""
        state = state or self.dir.load()
        recorded = (state.spec or {}).get("tls") if state.ports else None
        return self.spec.tls if recorded is None else bool(recorded)

    def tls_files(self) -> TlsFiles:
        pki = lab_pki.paths(self.dir.root / "tls", self.dir.secrets)
        return TlsFiles(pki.ca_cert, pki.server_cert, pki.server_key)

    @property
    def ca_cert(self) -> Path | None:
        """The lab CA certificate clients trust (None: the lab runs without TLS)."""
        return self.tls_files().ca if self.tls_on() else None

    def ssl_context(self) -> ssl.SSLContext | bool:
        """For the lab's own https calls: the lab CA, or aiohttp's default when plain."""
        ca = self.ca_cert
        return ssl.create_default_context(cafile=str(ca)) if ca is not None else True

    def _use_netns(self) -> bool:
        reason = netns.unavailable_reason()
        if self.spec.vault_netns == "on" and reason:
            raise UserError(f"lab: vault_netns = \"on\" {reason}", exit_code=2)
        return self.spec.vault_netns != "off" and reason is None

    def _clear_down(self, state: LabState) -> None:
        """Record the lab as down (durably) and drop its secrets and node data."""
        self.dir.save(state)
        for sub in ("secrets", "vault", "nats"):
            shutil.rmtree(self.dir.root / sub, ignore_errors=True)

    def _lab_processes(self, state: LabState) -> dict[int, tuple[str, psutil.Process]]:
        """pid -> (name, process) of every live lab child, recorded or only marked."""
        found: dict[int, tuple[str, psutil.Process]] = {}
        for rec in state.procs.values():
            proc = procs.record_process(rec)
            if proc is not None:
                found[proc.pid] = (rec.name, proc)
        for proc in procs.find_marked(self.marker):
            found.setdefault(proc.pid, (f"pid {proc.pid}", proc))
        return found

    async def _stop_everything(self, state: LabState, grace: float = 3.0) -> list[str]:
        # finding marked children reads every process's environment: off the loop
        found = await asyncio.to_thread(self._lab_processes, state)
        await procs.stop_processes([p for _, p in found.values()], grace=grace)
        if state.netns:
            await asyncio.to_thread(netns.destroy, NetnsPlan.from_json(state.netns))
        return sorted(name for name, _ in found.values())

    def _fresh_state(self) -> LabState:
        for sub in ("secrets", "vault", "nats", "moto"):
            shutil.rmtree(self.dir.root / sub, ignore_errors=True)
        self.dir.ensure()
        state = LabState(lab_id=uuid.uuid4().hex[:12], phase="starting",
                         ports=allocate_ports(self.spec), started_at=time.time(),
                         spec=self.spec.model_dump(mode="json"))
        if self._use_netns():
            plan = NetnsPlan.for_lab(state.lab_id, node_names(self.spec, "vault"))
            state.netns = plan.to_json()  # recorded (and saved below) before creation
        for user in self.spec.leaf_users:
            self.dir.write_secret(f"nats-leaf-{user}.password", secrets.token_urlsafe(18))
        self.dir.write_secret("nats-admin.password", secrets.token_urlsafe(18))
        self.dir.write_secret(CONSOLE_PASSWORD_FILE, secrets.token_urlsafe(18))
        if self.spec.tls:
            addresses = ([NetnsPlan.from_json(state.netns).address(n)
                          for n in node_names(self.spec, "vault")] if state.netns else [])
            lab_pki.create(self.dir.root / "tls", self.dir.secrets, addresses,
                           self.dir.write_secret)
        for member in self.spec.members:
            self.dir.write_secret(f"nats-member-{member}.password", secrets.token_urlsafe(18))
        tokens = {m: secrets.token_urlsafe(24) for m in [*self.spec.members, NO_ACCOUNT_MEMBER]}
        self.dir.write_secret("provisioning-tokens.json", json.dumps(tokens))
        self.dir.write_secret("provisioning-admin-token", secrets.token_urlsafe(24))
        operator = Ed25519PrivateKey.generate()
        self.dir.write_secret("control-key.pem", operator.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        public = base64.b64encode(operator.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
        (self.dir.root / "control-keys.json").write_text(json.dumps({"lab-operator": public}))
        self.dir.write_secret(SEAL_KEY_FILE, os.urandom(32))
        self.dir.save(state)
        return state

    def _write_configs(self, topo: Topology) -> None:
        passwords = {u: self.dir.read_secret(f"nats-leaf-{u}.password") or ""
                     for u in self.spec.leaf_users}
        revoked = self.revoked_members()
        members = {m: self.dir.read_secret(f"nats-member-{m}.password") or ""
                   for m in self.spec.members}
        self.dir.write_secret(MEMBER_PASSWORDS_FILE, json.dumps(members))
        self.dir.replace_secret(MEMBER_ACCOUNTS_FILE, json.dumps(
            {m: {"password": pw, "active": m not in revoked} for m, pw in members.items()}))
        central_users = {**passwords, **{m: pw for m, pw in members.items()
                                         if m not in revoked}}
        admin = self.dir.read_secret("nats-admin.password") or ""
        console = self.dir.read_secret(CONSOLE_PASSWORD_FILE) or ""
        tls = self.tls_files() if topo.central and topo.central[0].tls else None
        inbox_users = sorted({*self.spec.leaf_users, *self.spec.members, NO_ACCOUNT_MEMBER})
        (self.dir.root / "netproxy").mkdir(exist_ok=True)
        (self.dir.root / "netproxy" / "links.json").write_text(
            json.dumps(topo.link_specs(), indent=1))
        for node in topo.central:
            d = self._node_dir("nats", node.name)
            routes = [topo.links[f"route.{node.name}.{peer.name}"]
                      for peer in topo.central if peer != node]
            text = central_config(node, routes, d / "jetstream", central_users, admin, tls,
                                  console, inbox_users, frozenset(self.spec.members))
            self.dir.write_private(d / "nats.conf", text)
        for leaf in topo.leaves:
            d = self._node_dir("nats", leaf.name)
            hubs = [topo.links[f"leaf.{leaf.name}.{hub.name}"] for hub in topo.central]
            self.dir.write_private(d / "nats.conf", leaf_config(leaf, hubs,
                                                                passwords[leaf.user], tls,
                                                                console))
        for vnode in topo.vault:
            d = self._node_dir("vault", vnode.name)
            (d / "raft").mkdir(parents=True, exist_ok=True)
            text = node_config(vnode, d / "raft", self.dir.secrets / SEAL_KEY_FILE,
                               self.audit_log, tls)
            self.dir.write_private(d / "bao.hcl", text)
        prometheus_files.write(self.dir.root / "prometheus",
                               [v.api_addr for v in topo.vault], LAB_SCRAPE_INTERVAL_S,
                               ca_file=tls.ca if tls is not None else None)

    def commands(self, topo: Topology) -> dict[str, tuple[str, list[str]]]:
        """name -> (kind, argv) for every lab process."""
        cmds: dict[str, tuple[str, list[str]]] = {}
        cmds["netproxy"] = ("netproxy", [
            sys.executable, "-m", "opsconsole.netproxy",
            "--links", str(self.dir.root / "netproxy" / "links.json"),
            "--control-port", str(topo.proxy_control)])
        cmds["httpproxy"] = ("netproxy", [
            sys.executable, "-m", "opsconsole.netproxy.http", "--upstream", topo.moto_url,
            *[arg for role in ("aws", "forward", "control")
              for arg in (f"--{role}-port", str((topo.http_proxy or {})[role]))]])
        nats_bin = binaries.nats_server()
        bao_bin = binaries.bao()
        for node in [*topo.central, *topo.leaves]:
            kind = "leaf" if isinstance(node, LeafServer) else "nats"
            conf = self._node_dir("nats", node.name) / "nats.conf"
            cmds[node.name] = (kind, [nats_bin, "-c", str(conf)])
        for vnode in topo.vault:
            conf = self._node_dir("vault", vnode.name) / "bao.hcl"
            prefix = netns.exec_prefix(topo.netns, vnode.name) if topo.netns else []
            cmds[vnode.name] = ("vault", [*prefix, bao_bin, "server", f"-config={conf}"])
        cmds["moto"] = ("moto", [*binaries.moto_server(), "-H", "127.0.0.1",
                                 "-p", str(topo.moto_port)])
        # The reference systems run as modules named here, given everything as flags: the
        # launcher is the only way from the console to opsconsole_lab (and back).
        secrets = self.dir.secrets
        # the instances' leaves reach central through the fault proxy (a lab recorded
        # before those links existed: directly)
        hub_ports = [topo.links.get(f"leaf.{INSTANCES_LINK}.{hub.name}", hub.leaf)
                     for hub in topo.central]
        cmds["provisioner"] = ("sut", [
            sys.executable, "-m", "opsconsole_lab.provisioning",
            "--port", str(topo.provisioner_port), "--state-dir", str(self.dir.root / "instances"),
            "--tokens-file", str(secrets / "provisioning-tokens.json"),
            "--admin-token-file", str(secrets / "provisioning-admin-token"),
            "--accounts-file", str(secrets / MEMBER_ACCOUNTS_FILE),
            "--accounts-command", json.dumps([sys.executable, "-m", "opsconsole.lab.accounts",
                                              "--lab-dir", str(self.dir.root)]),
            *[arg for port in hub_ports for arg in ("--hub", f"127.0.0.1:{port}")],
            *(["--hub-ca", str(self.tls_files().ca)] if self.tls_on() else []),
            "--aws-endpoint", topo.aws_url, "--region", self.spec.aws_region,
            "--nats-server", nats_bin,
            "--authorized-keys", str(self.dir.root / "control-keys.json"),
            "--pending-s", f"{self.spec.provision_pending_s:g}",
            "--timeout-s", f"{self.spec.provision_timeout_s:g}",
            *(["--slow-member", SLOW_MEMBER] if SLOW_MEMBER in self.spec.members else [])])
        cmds["sessions"] = ("sut", [
            sys.executable, "-m", "opsconsole_lab.sessions",
            "--state-dir", str(self.dir.root / "sessions"), "--aws-endpoint", topo.aws_url,
            "--region", self.spec.aws_region, "--port", str(topo.sessions_port),
            "--prefix", LAB_PREVIEWS_PREFIX, "--max-capacity", str(self.spec.sessions_capacity),
            "--idle-timeout", f"{self.spec.sessions_idle_timeout_s:g}", "--poll-wait", "1",
            "--reconcile-interval", "0.5", "--metrics-interval", "1",
            "--container-proxy", topo.forward_proxy_url])
        return cmds

    def _start_missing(self, state: LabState, topo: Topology,
                       cmds: dict[str, tuple[str, list[str]]]) -> list[str]:
        missing = [n for n in cmds if n not in state.procs or not procs.is_alive(state.procs[n])]
        ensure_free({f"{n} {role}": port for n in missing if not self._in_netns(topo, n)
                     for role, port in state.ports[n].items()})
        for name in missing:
            self._spawn(state, cmds, name)
        return missing

    def _spawn(self, state: LabState, cmds: dict[str, tuple[str, list[str]]],
               name: str) -> ProcRecord:
        """Start one node and record it, durable before anything else is started."""
        kind, argv = cmds[name]
        rec = procs.spawn(name, kind, argv, self._node_dir(kind, name) / f"{name}.log",
                          self.marker)
        with STATE_LOCK:  # joined OpenBao nodes are restarted from two threads at once
            state.procs[name] = rec
            self.dir.save(state)
        return rec

    async def restart_node(self, name: str, grace: float = 5.0) -> ProcRecord:
        """Stop one node gracefully (if running), then start it on its recorded ports."""
        rec = self.process(name)
        if rec is not None:
            with contextlib.suppress(psutil.NoSuchProcess):
                await procs.stop_processes([psutil.Process(rec.pid)], grace=grace)
        return await self.start_node(name)

    async def start_node(self, name: str) -> ProcRecord:
        """(Re)start one recorded lab node on its recorded ports (used by faults)."""
        async with self.dir.locked():
            return await asyncio.to_thread(self._start_node_locked, name)

    def _start_node_locked(self, name: str) -> ProcRecord:
        """start_node's work under the lock, in a thread: spawn and fsync off the loop.

        The child is detached (own session, no asyncio child watcher): it outlives
        the command, and the console, that started it."""
        state = self.dir.load()
        topo = self._plan(state)
        rec = state.procs.get(name)
        if rec is not None and procs.is_alive(rec):
            return rec
        if not self._in_netns(topo, name):
            ensure_free({f"{name} {r}": p for r, p in state.ports[name].items()})
        return self._spawn(state, self.commands(topo), name)

    # -------------------------------------------------------- health waits
    async def _wait_nats(self, session: aiohttp.ClientSession, topo: Topology,
                         timeout: float) -> None:
        cluster = self.nats_cluster(topo)

        async def ready() -> bool:
            central = await asyncio.gather(*(nats_node_status(session, cluster, n)
                                             for n in cluster.nodes))
            leaves = await asyncio.gather(*(leaf_status(session, self.leaf_node(lf))
                                            for lf in topo.leaves))
            return all(s["healthy"] for s in [*central, *leaves])

        await wait_for("NATS cluster and leaf nodes", ready, timeout)

    async def _bring_up_vault(self, session: aiohttp.ClientSession, topo: Topology,
                              timeout: float, state: LabState) -> None:
        first, rest = topo.vault[0], topo.vault[1:]

        async def answering() -> bool:
            return all([await health(session, n) for n in topo.vault])

        await wait_for("OpenBao nodes to listen", answering, timeout)
        token = self.dir.read_secret(ROOT_TOKEN_FILE)
        h = await health(session, first) or {}
        if not h.get("initialized"):
            token, recovery = await initialise(session, first)
            self.dir.write_secret(ROOT_TOKEN_FILE, token)
            self.dir.write_secret(RECOVERY_KEY_FILE, recovery)

            async def active() -> bool:
                return (await health(session, first) or {}).get("standby") is False

            await wait_for(f"{first.name} to become active", active, timeout)
            await tune_autopilot(session, first, token)
            ca = self.ca_cert
            await asyncio.gather(*(join(session, n, first, ca.read_text() if ca else None)
                                   for n in rest))
            await asyncio.gather(*(self._unseal_joined(session, state, topo, n, timeout)
                                   for n in rest))
        if not token:
            raise UserError("lab: OpenBao is initialised but the root token is missing from "
                            f"{self.dir.secrets}; run `opsconsole lab down` then `lab up`",
                            exit_code=2)

        async def cluster_ready() -> bool:
            hs = await asyncio.gather(*(health(session, n) for n in topo.vault))
            if not all(h and h.get("initialized") and not h.get("sealed") for h in hs):
                return False
            servers = await raft_servers(session, first, token)
            voters = [s for s in servers if s.get("voter")]
            return len(voters) == len(topo.vault) and sum(s.get("leader", False)
                                                          for s in servers) == 1

        await wait_for("OpenBao raft voters", cluster_ready, timeout)
        leader = await self._vault_leader(session, topo)
        await enable_kv(session, leader, token)

    async def _unseal_joined(self, session: aiohttp.ClientSession, state: LabState,
                             topo: Topology, node: VaultNodeSpec, timeout: float) -> None:
        """Restart a node that just joined once the leader's seal config reached it.

        OpenBao tries its auto-unseal when it starts and then only every 5 s (``runUnseal``
        in its server command), so a node that joined after starting sat sealed for up to
        5 s, half of `lab up`. Restarted with the replicated data on disk, it unseals at
        once, as any auto-unsealed node does after a reboot.
        """
        seal: dict[str, Any] = {}

        async def replicated() -> bool:
            status, seal_status = await VaultApi(session, node.api_addr).call(
                "GET", "sys/seal-status")
            seal.update(seal_status)
            return status == 200 and (not seal.get("sealed") or seal.get("t", 0) >= 1)

        await wait_for(f"{node.name} to receive the seal configuration", replicated, timeout)
        if not seal.get("sealed"):
            return  # unsealed by itself meanwhile
        proc = procs.record_process(state.procs[node.name])
        if proc is not None:
            await procs.stop_processes([proc], 5.0)
        await asyncio.to_thread(self._spawn, state, self.commands(topo), node.name)

    async def _vault_leader(self, session: aiohttp.ClientSession,
                            topo: Topology) -> VaultNodeSpec:
        for node in topo.vault:
            h = await health(session, node)
            if h and h.get("standby") is False and not h.get("sealed"):
                return node
        return topo.vault[0]

    async def _bring_up_moto(self, session: aiohttp.ClientSession, topo: Topology,
                             timeout: float, fresh: bool) -> None:
        async def ready() -> bool:
            async with session.get(f"{topo.moto_url}/moto-api/",
                                   timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200

        await wait_for("moto server", ready, timeout)
        if not fresh:
            return  # re-seeding a running moto would replay its random ids
        async with session.post(f"{topo.moto_url}/moto-api/seed?a={self.spec.moto_seed}") as r:
            if r.status != 200:
                raise UserError(f"lab: seeding moto failed: HTTP {r.status}", exit_code=2)
        await ensure_instances(topo.moto_url, self.spec.aws_region, list(self.spec.leaf_users),
                               DUMMY_AWS_KEY)

    @staticmethod
    async def _wait_http(session: aiohttp.ClientSession, url: str, what: str,
                         timeout: float) -> None:
        """Until ``url`` answers 200 (a reference service's health endpoint)."""
        async def ready() -> bool:
            async with session.get(url, timeout=aiohttp.ClientTimeout(total=2)) as r:
                return r.status == 200

        await wait_for(what, ready, timeout)

    # --------------------------------------------------------------- status
    @staticmethod
    def _in_netns(topo: Topology, name: str) -> bool:
        return topo.netns is not None and name in topo.netns.namespaces

    def topology(self) -> Topology | None:
        state = self.dir.load()
        if not state.ports:
            return None
        return self._plan(state)

    # ------------------------------------------------------ member accounts
    def revoked_members(self) -> set[str]:
        try:
            return set(json.loads((self.dir.root / "nats" / "revoked.json").read_text()))
        except (FileNotFoundError, json.JSONDecodeError):
            return set()

    def member_password(self, member: str) -> str | None:
        if member not in self.spec.members or member in self.revoked_members():
            return None
        return self.dir.read_secret(f"nats-member-{member}.password")

    async def set_member_account(self, member: str, active: bool) -> None:
        """Grant or revoke a member's NATS account: rewrite central auth and reload
        every central node (SIGHUP); a revoked member's connections drop at once."""
        async with self.dir.locked():
            await asyncio.to_thread(self._set_member_account_locked, member, active)

    def _set_member_account_locked(self, member: str, active: bool) -> None:
        revoked = self.revoked_members()
        revoked = revoked - {member} if active else revoked | {member}
        path = self.dir.root / "nats" / "revoked.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(sorted(revoked)))
        state = self.dir.load()
        self._write_configs(self._plan(state))
        for name in node_names(self.spec, "nats"):
            rec = state.procs.get(name)
            if rec is not None and procs.is_alive(rec):
                os.kill(rec.pid, signal.SIGHUP)

    async def set_vault_link(self, node: str, up: bool) -> None:
        """Partition one Vault node from everything (down) or reconnect it (up)."""
        topo = self.topology()
        if topo is None or topo.netns is None:
            why = netns.unavailable_reason() or "the lab was started with vault_netns = off"
            raise UserError(f"vault partition refused: the lab's Vault nodes are not in "
                            f"network namespaces ({why})", exit_code=2)
        if node not in topo.netns.namespaces:
            raise UserError(f"vault partition: no Vault node named {node}", exit_code=2)
        await asyncio.to_thread(netns.set_link, topo.netns, node, up)

    def root_token(self) -> str | None:
        return self.dir.read_secret(ROOT_TOKEN_FILE)

    # ------------------------------------------------------ the lab as typed targets
    def nats_cluster(self, topo: Topology) -> NatsCluster:
        """The central cluster as an inventory describes it: the console's own login and
        the lab CA when secured (the same model a real deployment's config yields)."""
        nodes = [NatsNode(name=n.name, client_url=n.client_url, monitor_url=n.monitor_url)
                 for n in topo.central]
        if not self.tls_on():
            return NatsCluster(name=CLUSTER_NAME, nodes=nodes)
        return NatsCluster(name=CLUSTER_NAME, nodes=nodes, user=CONSOLE_USER,
                           password=SecretRef(file=self.dir.secrets / CONSOLE_PASSWORD_FILE),
                           ca_cert=self.tls_files().ca)

    def leaf_node(self, leaf: LeafServer) -> LeafNode:
        if not self.tls_on():
            return LeafNode(name=leaf.name, user=leaf.user, client_url=leaf.client_url,
                            monitor_url=leaf.monitor_url)
        return LeafNode(name=leaf.name, user=leaf.user, client_url=leaf.client_url,
                        monitor_url=leaf.monitor_url, auth_user=CONSOLE_USER,
                        password=SecretRef(file=self.dir.secrets / CONSOLE_PASSWORD_FILE),
                        ca_cert=self.tls_files().ca)

    def vault_cluster(self, topo: Topology, **extra: Any) -> VaultCluster:
        token = self.dir.secrets / ROOT_TOKEN_FILE
        return VaultCluster(nodes=[VaultNode(name=v.name, api_addr=v.api_addr)
                                   for v in topo.vault],
                            token=SecretRef(file=token) if token.exists() else None,
                            ca_cert=self.ca_cert, **extra)

    def nats_connect_options(self) -> dict[str, Any]:
        """``nats.connect`` keywords for the console's login to the lab (tools and tests)."""
        from ..targets.nats import connect_options

        topo = self.topology()
        if topo is None:
            raise UserError("lab is not up: run `opsconsole lab up` first", exit_code=2)
        cluster = self.nats_cluster(topo)
        return connect_options(cluster, cluster.nodes[0].client_url, "lab nats")

    async def status(self) -> dict[str, Any]:
        """Live status; never contains a secret."""
        state = self.dir.load()
        topo = self.topology()
        out: dict[str, Any] = {
            "state_dir": str(self.dir.root),
            "phase": state.phase,
            "up_seconds": state.up_seconds,
            "pids": {n: (r.pid if procs.is_alive(r) else None) for n, r in state.procs.items()},
            "vault_netns": bool(state.netns),
            "nats": [], "leaves": [], "vault": [], "aws": None,
        }
        if topo is None:
            out["healthy"] = False
            return out
        cluster = self.nats_cluster(topo)
        async with aiohttp.ClientSession() as session:
            nats, leaves, vault, aws = await asyncio.gather(
                asyncio.gather(*(nats_node_status(session, cluster, n) for n in cluster.nodes)),
                asyncio.gather(*(leaf_status(session, self.leaf_node(lf))
                                 for lf in topo.leaves)),
                vault_status(session, self.vault_cluster(topo)),
                moto_status(session, topo.aws_url, self.spec.aws_region),
            )
        out.update(nats=list(nats), leaves=list(leaves), vault=vault, aws=aws)
        out["healthy"] = (all(n["healthy"] for n in [*nats, *leaves, *vault])
                          and aws["healthy"] and state.phase == "up")
        return out

    def env(self) -> dict[str, str]:
        """Environment for tools pointed at the lab. Includes the root token: only
        `lab env` prints it, on explicit request."""
        topo = self.topology()
        if topo is None or self.dir.load().phase != "up":
            raise UserError("lab is not up: run `opsconsole lab up` first", exit_code=2)
        token = self.root_token() or ""
        # The active node, not a fixed one: OpenBao standbys serve reads locally, so a
        # read right after a write through a standby can be stale.
        ca = self.ca_cert
        vault_addr = active_vault_addr(topo.vault, ca) or topo.vault[0].api_addr
        secured: dict[str, str] = {}
        if ca is not None:  # what natscli, the vault CLI and bao read
            secured = {"NATS_CA": str(ca), "NATS_USER": CONSOLE_USER,
                       "NATS_PASSWORD": self.dir.read_secret(CONSOLE_PASSWORD_FILE) or "",
                       "VAULT_CACERT": str(ca), "BAO_CACERT": str(ca)}
        return {
            "NATS_URL": ",".join(n.client_url for n in topo.central), **secured,
            "VAULT_ADDR": vault_addr, "BAO_ADDR": vault_addr,
            "VAULT_TOKEN": token, "BAO_TOKEN": token,
            "AWS_ENDPOINT_URL": topo.aws_url,
            "AWS_DEFAULT_REGION": self.spec.aws_region,
            "AWS_ACCESS_KEY_ID": DUMMY_AWS_KEY,
            "AWS_SECRET_ACCESS_KEY": DUMMY_AWS_KEY,
            "OPSCONSOLE_LAB_DIR": str(self.dir.root),
        }


# ----------------------------------------------------------------- probes used by status
def active_vault_addr(nodes: list[VaultNodeSpec], ca: Path | None = None) -> str | None:
    """The API address of the active (leader) node, by a quick synchronous health check."""
    context = ssl.create_default_context(cafile=str(ca)) if ca is not None else None
    for node in nodes:
        try:
            url = f"{node.api_addr}/v1/sys/health?standbyok=true"
            with urllib.request.urlopen(url, timeout=1, context=context) as resp:
                body = json.loads(resp.read() or b"{}")
        except (OSError, ValueError) as exc:
            body = _error_body(exc)
        if body.get("standby") is False and not body.get("sealed", True):
            return node.api_addr
    return None


def _error_body(exc: BaseException) -> dict[str, Any]:
    """sys/health answers non-200 codes (429 standby, 503 sealed) with a JSON body too."""
    if isinstance(exc, urllib.error.HTTPError):
        try:
            return json.loads(exc.read() or b"{}")
        except ValueError:
            return {}
    return {}


async def nats_node_status(session: aiohttp.ClientSession, cluster: NatsCluster,
                           node: NatsNode) -> dict[str, Any]:
    """A central node's row, read by the probe the console uses (a client login with the
    console's credentials, and monitoring) and judged by the same rule
    (:func:`opsconsole.systems.nats.health.node_health`)."""
    probe = NatsNodeProbe(session, node, len(cluster.nodes), cluster)
    row: dict[str, Any] = {"name": node.name, "client_url": node.client_url,
                           "monitor_url": node.monitor_url, "healthy": False, "routes": 0,
                           "tls": _tls_word(node.client_url, cluster)}
    try:
        [sample] = await probe.sample()
    except NETWORK_ERRORS as exc:
        row["error"] = f"unreachable: {reason(exc)}"
        return row
    finally:
        await probe.close()
    assert isinstance(sample, NatsNodeSampled)
    row["routes"], row["healthy"] = sample.routes, nats_node_health(sample).healthy
    return row


async def leaf_status(session: aiohttp.ClientSession, leaf: LeafNode) -> dict[str, Any]:
    """A leaf server's row, read and judged as the console does."""
    probe = LeafProbe(session, leaf)
    row: dict[str, Any] = {"name": leaf.name, "user": leaf.user, "client_url": leaf.client_url,
                           "monitor_url": leaf.monitor_url, "healthy": False, "hub": None,
                           "tls": _tls_word(leaf.client_url, leaf)}
    try:
        [sample] = await probe.sample()
    except NETWORK_ERRORS as exc:
        row["error"] = f"unreachable: {reason(exc)}"
        return row
    finally:
        await probe.close()
    assert isinstance(sample, LeafSampled)
    row["hub"], row["healthy"] = sample.hub or None, leaf_health(sample).healthy
    return row


def _tls_word(url: str, target: Any) -> str:
    """What ``lab status`` shows in its TLS column for an endpoint."""
    secured = url.startswith(("tls:", "https:"))
    return "TLS (lab CA)" if secured and getattr(target, "ca_cert", None) else \
        "TLS" if secured else "plain"


async def vault_status(session: aiohttp.ClientSession,
                       cluster: VaultCluster) -> list[dict[str, Any]]:
    """The lab's Vault rows, read by the same probe the console uses."""
    samples = await VaultClusterProbe(session, cluster, cluster.token).sample()
    rows = []
    for node, sample in zip(cluster.nodes, samples, strict=True):
        assert isinstance(sample, VaultNodeSampled)
        row: dict[str, Any] = {
            "name": node.name, "api_addr": node.api_addr, "sealed": sample.sealed,
            "leader": sample.leader, "voter": sample.voter,
            "healthy": node_health(sample).healthy,
            "tls": _tls_word(node.api_addr, cluster) + (" 1.3+" if node.api_addr.startswith(
                "https:") else "")}
        if not sample.reachable:
            row["error"] = node_health(sample).health
        rows.append(row)
    return rows


async def moto_status(session: aiohttp.ClientSession, url: str, region: str) -> dict[str, Any]:
    row: dict[str, Any] = {"endpoint_url": url, "region": region, "healthy": False}
    try:
        async with session.get(f"{url}/moto-api/", timeout=aiohttp.ClientTimeout(total=2)) as r:
            row["healthy"] = r.status == 200
    except NETWORK_ERRORS as exc:
        row["error"] = f"unreachable: {reason(exc)}"
    return row
