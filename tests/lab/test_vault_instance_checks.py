"""Negative controls of the `vault-instance` pack's checks, against real nats-servers.

Each test breaks the thing a check observes and calls the check's own function
(``systems/vault_instances/checks.py``, which the pack calls too): the check must
fail, or be ``unknown`` where it cannot observe, never pass. Private servers: a hub with
authorization (a member scoped to ``OwnerSpace.<member>``, credential-less clients bound
to ``admin`` like the lab's central) and leaves named like vault instances.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from opsconsole.core.bus import EventBus
from opsconsole.lab import Lab
from opsconsole.lab.binaries import nats_server
from opsconsole.lab.ports import free_ports, listening
from opsconsole.netproxy.client import ProxyClient
from opsconsole.systems.nats.canary import GRACE_S, RelayCanary
from opsconsole.systems.vault_instances.checks import (
    LEAD_S,
    TAIL_S,
    OutageWindow,
    attached_outcome,
    detached_outcome,
    find_hub,
    member_binding,
    moved_outcome,
    relay_loss_outcome,
    revocation_outcome,
    try_login,
)

from ..helpers import async_wait_until, lab_endpoints, wait_until

MEMBER = "bob"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    conf: Path
    client: int
    monitor: int | None = None
    leaf: int | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client}"

    @property
    def monitor_url(self) -> str:
        return f"http://127.0.0.1:{self.monitor}"

    def reload(self, conf: str) -> None:
        self.conf.write_text(conf)
        os.kill(self.proc.pid, signal.SIGHUP)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def _start(path: Path, conf: str, client: int) -> subprocess.Popen[bytes]:
    path.write_text(conf)
    proc = subprocess.Popen([nats_server(), "-c", str(path)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    wait_until(lambda: listening(client) or proc.poll() is not None, 15,
               f"nats-server {path.name} to listen")
    if proc.poll() is not None:
        assert proc.stderr is not None
        pytest.fail(f"nats-server exited: {proc.stderr.read().decode()[-500:]}")
    return proc


def _auth_conf(client: int, password: str, member: bool = True, extra: str = "") -> str:
    users = ['{ user: "admin", password: "admin-pw" }']
    if member:
        users.append(f'{{ user: "{MEMBER}", password: {json.dumps(password)}, permissions: {{'
                     f' publish: {{ allow: ["OwnerSpace.{MEMBER}.>"] }},'
                     f' subscribe: {{ allow: ["OwnerSpace.{MEMBER}.>"] }} }} }}')
    return (f'listen: "127.0.0.1:{client}"\n{extra}'
            f'authorization {{ users: [ {", ".join(users)} ] }}\nno_auth_user: "admin"\n')


@pytest.fixture
def auth_server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """A private nats-server with authorization and the member's user (its password)."""
    password = secrets.token_urlsafe(12)
    [client] = free_ports(1)
    server = Server(_start(tmp_path / "auth.conf", _auth_conf(client, password), client),
                    tmp_path / "auth.conf", client)
    try:
        yield server, password
    finally:
        server.stop()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[Server, str]]:
    """The same user on a server that requires TLS (a self-signed certificate): a login
    fails there for a reason other than authorization."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    password = secrets.token_urlsafe(12)
    [client] = free_ports(1)
    tls = f'tls {{ cert_file: "{tmp_path / "cert.pem"}", key_file: "{tmp_path / "key.pem"}" }}\n'
    server = Server(_start(tmp_path / "tls.conf", _auth_conf(client, password, extra=tls),
                           client), tmp_path / "tls.conf", client)
    try:
        yield server, password
    finally:
        server.stop()


@dataclass
class Topology:
    hub: Server
    member_leaf: Server  # presents the member's credentials: vault-bob
    anon_leaf: Server  # presents none (central binds it to admin): vault-anon
    dead_monitor: str  # a monitoring URL nothing listens on


@pytest.fixture
def leaf_topology(tmp_path: Path) -> Iterator[Topology]:
    password = secrets.token_urlsafe(12)
    client, monitor, leafport, dead = free_ports(4)
    hub_conf = _auth_conf(client, password, extra=f'http: "127.0.0.1:{monitor}"\n'
                          f'leafnodes {{ listen: "127.0.0.1:{leafport}" }}\n')
    hub = Server(_start(tmp_path / "hub.conf", hub_conf, client), tmp_path / "hub.conf",
                 client, monitor, leafport)
    leaves: list[Server] = []
    try:
        for name, creds in (("vault-bob", f"{MEMBER}:{password}@"), ("vault-anon", "")):
            lc, lm = free_ports(2)
            conf = (f'server_name: "{name}"\nlisten: "127.0.0.1:{lc}"\n'
                    f'http: "127.0.0.1:{lm}"\nleafnodes {{ reconnect: "100ms", remotes: '
                    f'[ {{ urls: ["nats-leaf://{creds}127.0.0.1:{leafport}"] }} ] }}\n')
            path = tmp_path / f"{name}.conf"
            leaves.append(Server(_start(path, conf, lc), path, lc, lm))
        yield Topology(hub, leaves[0], leaves[1], f"http://127.0.0.1:{dead}")
    finally:
        for server in (*leaves, hub):
            server.stop()


async def _lookup(http: aiohttp.ClientSession, monitors: dict[str, str], leaf: str):
    return await find_hub(http, monitors, leaf, timeout=1.0)


# ------------------------------------------------------ terminate: credentials revoked


async def test_revocation_fails_while_the_credentials_still_work(auth_server) -> None:
    server, password = auth_server
    before = [await try_login("n1", server.url, MEMBER, password)]
    after = [await try_login("n1", server.url, MEMBER, password)]  # "terminate" revoked nothing
    status, evidence = revocation_outcome(before, after)
    assert [x.result for x in before + after] == ["accepted", "accepted"]
    assert status == "fail" and "still accepted" in evidence["reason"]

    # the healthy situation on the same server: the user is removed, central reloads
    server.reload(_auth_conf(server.client, password, member=False))
    revoked = await async_wait_until(
        lambda: _login_result(server.url, password, "authorization"), 10,
        "the reload to refuse the member")
    status, evidence = revocation_outcome(before, [revoked])
    assert status == "pass", evidence
    assert "Authorization Violation" in evidence["after"]["n1"]["error"]
    assert password not in json.dumps(evidence)


async def _login_result(url: str, password: str, wanted: str):
    login = await try_login("n1", url, MEMBER, password)
    return login if login.result == wanted else None


async def test_revocation_is_not_shown_by_an_unreachable_server(auth_server) -> None:
    server, password = auth_server
    before = [await try_login("n1", server.url, MEMBER, password)]
    [refused_port] = free_ports(1)
    after = [await try_login("n1", f"nats://127.0.0.1:{refused_port}", MEMBER, password)]
    assert after[0].result == "unreachable" and "ConnectionRefused" in after[0].error
    status, evidence = revocation_outcome(before, after)
    assert status == "unknown" and "unreachable" in evidence["reason"]

    # and without the positive control (refused before terminate) nothing is concluded
    status, evidence = revocation_outcome(after, after)
    assert status == "unknown" and "positive control" in evidence["reason"]


async def test_revocation_needs_an_authorization_error_not_any_error(auth_server,
                                                                     tls_server) -> None:
    server, password = auth_server
    tls, tls_password = tls_server
    before = [await try_login("n1", server.url, MEMBER, password)]
    after = [await try_login("n1", tls.url, MEMBER, tls_password)]  # the node now wants TLS
    assert after[0].result == "tls", after
    status, evidence = revocation_outcome(before, after)
    assert status == "fail" and "another reason than authorization" in evidence["reason"]
    assert tls_password not in json.dumps(evidence)


# ---------------------------------------------- hub lookup: stop disconnects, moves hub


async def test_disconnect_is_unknown_when_a_monitor_cannot_be_read(leaf_topology) -> None:
    top = leaf_topology
    async with aiohttp.ClientSession() as http:
        monitors = {"hub": top.hub.monitor_url}
        before = await async_wait_until(lambda: _found(http, monitors, "vault-bob"), 10,
                                        "the hub to list vault-bob")
        assert attached_outcome(before)[0] == "pass"
        top.member_leaf.stop()
        await async_wait_until(lambda: _gone(http, monitors, "vault-bob"), 10,
                               "the hub to drop vault-bob")
        # the leaf is gone from the hub read, but one central node cannot be read
        after = await _lookup(http, {**monitors, "hub-2": top.dead_monitor}, "vault-bob")
        status, evidence = detached_outcome(before, after)
        assert status == "unknown", evidence
        assert "hub-2" in evidence["reason"] and "could not be read" in evidence["reason"]
        # every node read and none lists it: now the disconnect is an observation
        assert detached_outcome(before, await _lookup(http, monitors, "vault-bob"))[0] == "pass"


async def test_disconnect_fails_while_the_leaf_is_still_attached(leaf_topology) -> None:
    top = leaf_topology
    async with aiohttp.ClientSession() as http:
        monitors = {"hub": top.hub.monitor_url}
        before = await async_wait_until(lambda: _found(http, monitors, "vault-bob"), 10,
                                        "the hub to list vault-bob")
        status, evidence = detached_outcome(before, await _lookup(http, monitors, "vault-bob"))
        assert status == "fail" and "still attached to hub" in evidence["reason"]


async def test_disconnect_needs_the_positive_control(leaf_topology) -> None:
    """A lookup that could not see the leaf before the stop cannot tell a disconnect."""
    top = leaf_topology
    async with aiohttp.ClientSession() as http:
        blind = await _lookup(http, {"hub": top.dead_monitor}, "vault-bob")
        assert blind.unread and not blind.hubs
        assert attached_outcome(blind)[0] == "unknown"
        status, evidence = detached_outcome(blind, blind)
        assert status == "unknown" and "positive control" in evidence["reason"]


async def test_leaf_moves_hub_fails_while_on_the_old_hub(leaf_topology) -> None:
    top = leaf_topology
    async with aiohttp.ClientSession() as http:
        monitors = {"hub": top.hub.monitor_url}
        lookup = await async_wait_until(lambda: _found(http, monitors, "vault-bob"), 10,
                                        "the hub to list vault-bob")
        status, evidence = moved_outcome(lookup, "hub")
        assert status == "fail" and "still attached to hub" in evidence["reason"]
        # the old hub gone and the only other node unreadable: cannot tell
        gone = await _lookup(http, {"hub": top.dead_monitor, "hub-2": top.dead_monitor},
                             "vault-bob")
        status, evidence = moved_outcome(gone, "hub")
        assert status == "unknown" and "hub-2" in evidence["reason"]


async def _found(http, monitors, leaf):
    lookup = await _lookup(http, monitors, leaf)
    return lookup if lookup.hubs else None


async def _gone(http, monitors, leaf):
    lookup = await _lookup(http, monitors, leaf)
    return lookup if not lookup.hubs and not lookup.unread else None


# ------------------------------------------ initialize: credentials installed (binding)


async def test_leaf_without_the_member_credentials_is_not_bound_to_the_member(
        leaf_topology) -> None:
    """Central binds a credential-less leaf to its default user: attached, yet not the
    member's credentials. The binding check sees it; the member's own leaf passes."""
    top = leaf_topology
    async with aiohttp.ClientSession() as http:
        monitors = {"hub": top.hub.monitor_url}
        for leaf in ("vault-bob", "vault-anon"):
            await async_wait_until(lambda leaf=leaf: _found(http, monitors, leaf), 10,
                                   f"the hub to list {leaf}")
    status, evidence = await member_binding(top.hub.url, top.anon_leaf.url, MEMBER)
    assert status == "fail" and "not bound to the member" in evidence["reason"], evidence
    status, evidence = await member_binding(top.hub.url, top.member_leaf.url, MEMBER)
    assert status == "pass", evidence
    assert evidence["inside_crossed"] > 0 and evidence["outside_crossed"] == 0


# ----------------------------------------- relay: loss bounded by the reconnect window


async def test_relay_loss_beyond_the_window_fails(lab: Lab, lab_status: dict) -> None:
    """Cut a real leaf from every hub for longer than a hub switch takes: the loss check,
    given the short window a quick switch measures, fails (loss outside the window)."""
    leaf = lab_status["leaves"][1]
    topo = lab.topology()
    assert topo is not None
    links = [n for n in topo.links if n.startswith(f"leaf.{leaf['name']}.")]
    rate = 20.0
    central, leaves = lab_endpoints(lab)
    canary = RelayCanary(EventBus(), leaf["name"], leaf["user"], central[0],
                         leaves[leaf["name"]], rate=rate, keep_fates=True)
    await canary.start()
    try:
        await async_wait_until(lambda: all(t.delivered >= rate for t in canary.paths.values()),
                               20, "canary traffic both ways")
        async with aiohttp.ClientSession() as http:
            proxy = ProxyClient(http, topo.proxy_url)
            cut_at = time.time()
            try:
                for name in links:
                    await proxy.set_fault(name, cut=True)
                # cut until each direction has lost (unseen, sent after the cut) more than
                # the whole bound a quick switch would allow
                declared = OutageWindow(cut_at, cut_at + 0.2)
                limit = rate * (declared.seconds + LEAD_S + TAIL_S) + 2
                await async_wait_until(lambda: all(
                    sum(1 for seq, at in t.sent_at.items() if at > cut_at and seq not in t.seen)
                    > limit for t in canary.paths.values()), 30, "loss beyond the bound")
            finally:
                for name in links:
                    await proxy.clear(name)
        healed = {p: t.delivered for p, t in canary.paths.items()}
        await async_wait_until(lambda: all(t.delivered > healed[p] + rate
                                           for p, t in canary.paths.items()), 30,
                               "traffic crossing again after the cut")
        await canary.stop_publishing()
        await async_wait_until(lambda: not canary.in_flight(), GRACE_S + 5,
                               "every message to arrive or time out")
    finally:
        await canary.stop()
    for t in canary.paths.values():
        t.settle(time.time() + GRACE_S)
    status, evidence = relay_loss_outcome(canary.paths, rate, declared)
    assert status == "fail", evidence
    for path in ("c2l", "l2c"):
        assert evidence[path]["lost_outside_window"] > 0, evidence
    assert "outside the window" in evidence["reason"]

