"""Per-node network namespaces for the lab's OpenBao nodes (root only).

A TCP proxy cannot split a Raft cluster (peers dial one advertised address), but a
node in its own namespace whose veth goes down is a real two-way partition. Each
Vault node gets a namespace with one veth into a lab-private bridge; the bridge
lives in the root namespace so the console reaches the nodes directly. Addresses
come from 10.231.<n>.0/24 and exist only inside namespaces this lab creates.

Every name is recorded in the state dir *before* it is created, so ``lab down``
(or the next ``lab up``) can delete whatever a crash left behind.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import asdict, dataclass

from ..errors import UserError

SUBNET_PREFIX = "10.231"
API_PORT = 8200
CLUSTER_PORT = 8201


@dataclass(frozen=True)
class NetnsPlan:
    bridge: str
    subnet: int
    namespaces: dict[str, str]  # vault node name -> namespace
    veths: dict[str, str]  # vault node name -> host-side veth

    @classmethod
    def for_lab(cls, lab_id: str, nodes: list[str]) -> NetnsPlan:
        short = lab_id[:8]
        return cls(bridge=f"ocb{short}", subnet=_free_subnet(lab_id),
                   namespaces={n: f"oc-{short}-{n}" for n in nodes},
                   veths={n: f"ocv{short}{i + 1}" for i, n in enumerate(nodes)})

    @classmethod
    def from_json(cls, data: dict) -> NetnsPlan:
        return cls(**data)

    def to_json(self) -> dict:
        return asdict(self)

    def address(self, node: str) -> str:
        index = list(self.namespaces).index(node)
        return f"{SUBNET_PREFIX}.{self.subnet}.{11 + index}"

    @property
    def gateway(self) -> str:
        return f"{SUBNET_PREFIX}.{self.subnet}.1"


def unavailable_reason() -> str | None:
    """Why namespaces cannot be used here, or None when they can."""
    if os.geteuid() != 0:
        return "needs root (network namespaces); run as root, as CI does"
    if shutil.which("ip") is None:
        return "needs iproute2's `ip` command (apt-get install iproute2)"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise UserError(f"lab: `ip {' '.join(args)}` failed: {proc.stderr.strip()}",
                        exit_code=2)
    return proc


def _free_subnet(lab_id: str) -> int:
    taken = _ip("-o", "-4", "addr", "show", check=False).stdout
    start = int(hashlib.sha256(lab_id.encode()).hexdigest(), 16) % 250 + 1
    for offset in range(250):
        n = (start + offset - 1) % 250 + 1
        if f" {SUBNET_PREFIX}.{n}." not in taken:
            return n
    raise UserError("lab: no free 10.231.x.0/24 subnet for the Vault namespaces", exit_code=2)


def _exists_ns(ns: str) -> bool:
    return ns in _ip("netns", "list", check=False).stdout.split()


def _exists_link(name: str) -> bool:
    return _ip("link", "show", name, check=False).returncode == 0


def create(plan: NetnsPlan) -> None:
    """Create (or complete) the bridge, namespaces and veths; idempotent."""
    if not _exists_link(plan.bridge):
        _ip("link", "add", plan.bridge, "type", "bridge")
        _ip("addr", "add", f"{plan.gateway}/24", "dev", plan.bridge)
    _ip("link", "set", plan.bridge, "up")
    for node, ns in plan.namespaces.items():
        veth = plan.veths[node]
        if not _exists_ns(ns):
            _ip("netns", "add", ns)
        if _exists_link(veth):
            continue  # never touch an existing link: it may be partitioned on purpose
        _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
        _ip("link", "set", veth, "master", plan.bridge)
        _ip("-n", ns, "addr", "add", f"{plan.address(node)}/24", "dev", "eth0")
        _ip("-n", ns, "link", "set", "lo", "up")
        _ip("-n", ns, "link", "set", "eth0", "up")
        _ip("link", "set", veth, "up")


def destroy(plan: NetnsPlan) -> None:
    """Delete everything the plan names; missing pieces are fine (crash leftovers)."""
    for node, ns in plan.namespaces.items():
        _ip("link", "del", plan.veths[node], check=False)
        _ip("netns", "del", ns, check=False)
    _ip("link", "del", plan.bridge, check=False)


def set_link(plan: NetnsPlan, node: str, up: bool) -> None:
    """Partition (down) or reconnect (up) one node: its only link, both directions."""
    _ip("link", "set", plan.veths[node], "up" if up else "down")


def link_is_up(plan: NetnsPlan, node: str) -> bool:
    out = _ip("-o", "link", "show", plan.veths[node], check=False).stdout
    return "state UP" in out or ",UP" in out.split(">")[0]


def exec_prefix(plan: NetnsPlan, node: str) -> list[str]:
    """argv prefix that runs a command inside the node's namespace (same pid)."""
    return ["ip", "netns", "exec", plan.namespaces[node]]
