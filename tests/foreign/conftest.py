"""A deployment opsconsole did not make: NATS and OpenBao configured by hand, as an operator
would, with TLS from a private CA (made with the ``openssl`` CLI), password users and Shamir
unseal keys. Nothing here uses the lab's code (only the binaries the lab extra installs), so
the tests meet the console with a stranger's conventions. Secrets sit in 0600 files and the
inventory names them only by reference.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from opsconsole.lab.binaries import bao, nats_server
from opsconsole.lab.ports import free_ports, listening

from ..helpers import wait_until


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@dataclass(frozen=True)
class Pki:
    """A private CA and one server certificate for 127.0.0.1/localhost; ``other_ca``
    signed nothing here (a client that trusts only it must refuse our servers)."""

    dir: Path
    ca: Path
    cert: Path
    key: Path
    other_ca: Path


def make_pki(root: Path) -> Pki:
    root.mkdir(parents=True, exist_ok=True)
    days = "30"
    for name in ("ca", "other-ca"):
        _openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                 "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", days,
                 "-subj", f"/CN=foreign {name}", cwd=root)
    (root / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                                  "extendedKeyUsage=serverAuth,clientAuth\n")
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost", cwd=root)
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-out", "server.pem", "-days", days, "-extfile", "san.ext",
             cwd=root)
    for key in root.glob("*.key"):
        key.chmod(0o600)
    return Pki(root, root / "ca.pem", root / "server.pem", root / "server.key",
               root / "other-ca.pem")


def secret_file(path: Path, value: str) -> Path:
    path.write_text(value + "\n")
    path.chmod(0o600)
    return path


class Procs:
    """Processes this tier started; all stopped at the end, whatever happened."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, argv: list[str], log: Path) -> subprocess.Popen[bytes]:
        fh = log.open("wb")
        proc = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path, what: str) -> None:
    wait_until(lambda: listening(port) or proc.poll() is not None, 20, what)
    if proc.poll() is not None:
        pytest.fail(f"{what}: exited: {log.read_text()[-800:]}")


# ----------------------------------------------------------------------------- NATS


@dataclass
class ForeignNats:
    """Three central nodes (TLS clients, TLS routes, https monitoring) and one leaf."""

    dir: Path
    nodes: list[dict[str, int]]
    leaf: dict[str, int]
    console_password: Path  # the password file the inventory references
    leaf_user: str = "tenant"
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def client_url(self, i: int) -> str:
        return f"tls://127.0.0.1:{self.nodes[i]['client']}"


def _leaf_linked(monitor_port: int) -> bool:
    """A leaf server's /leafz lists a link to a hub."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{monitor_port}/leafz", timeout=2) as r:
            return bool(json.load(r)["leafs"])
    except (OSError, ValueError, KeyError):
        return False


def _tls_block(pki: Pki, verify: bool = False) -> str:
    return (f'tls {{ cert_file: "{pki.cert}", key_file: "{pki.key}", ca_file: "{pki.ca}"'
            f'{", verify: true" if verify else ""}, timeout: 2 }}')


def start_nats(root: Path, pki: Pki, procs: Procs) -> ForeignNats:
    root.mkdir(parents=True, exist_ok=True)
    console_pw, tenant_pw = secrets.token_urlsafe(18), secrets.token_urlsafe(18)
    ports = free_ports(4 * 3 + 2)
    nodes = [dict(zip(("client", "monitor", "route", "leaf"), ports[i * 4:i * 4 + 4],
                      strict=True)) for i in range(3)]
    leaf = {"client": ports[12], "monitor": ports[13]}
    routes = ", ".join(f'"nats-route://127.0.0.1:{n["route"]}"' for n in nodes)
    for i, node in enumerate(nodes):
        conf = root / f"n{i + 1}.conf"
        conf.write_text(f"""
server_name: "f{i + 1}"
listen: "127.0.0.1:{node['client']}"
https: "127.0.0.1:{node['monitor']}"
{_tls_block(pki)}
authorization {{
  users: [
    {{ user: "console", password: "{console_pw}" }}
    {{ user: "tenant", password: "{tenant_pw}",
       permissions: {{ publish: ["OwnerSpace.tenant.>", "_INBOX_tenant.>"],
                      subscribe: ["OwnerSpace.tenant.>", "_INBOX_tenant.>"] }} }}
  ]
}}
cluster {{
  name: "foreign"
  listen: "127.0.0.1:{node['route']}"
  routes: [{routes}]
  {_tls_block(pki, verify=True)}
}}
leafnodes {{
  listen: "127.0.0.1:{node['leaf']}"
  {_tls_block(pki)}
}}
""")
        conf.chmod(0o600)
        procs.start([nats_server(), "-c", str(conf)], root / f"n{i + 1}.log")
    hubs = ", ".join(f'"tls://tenant:{tenant_pw}@127.0.0.1:{n["leaf"]}"' for n in nodes)
    leaf_conf = root / "leaf.conf"
    leaf_conf.write_text(f"""
server_name: "f-leaf"
listen: "127.0.0.1:{leaf['client']}"
http: "127.0.0.1:{leaf['monitor']}"
leafnodes {{
  reconnect: "200ms"
  remotes: [ {{ urls: [{hubs}], tls: {{ ca_file: "{pki.ca}" }} }} ]
}}
""")
    leaf_conf.chmod(0o600)
    leaf_proc = procs.start([nats_server(), "-c", str(leaf_conf)], root / "leaf.log")
    found = ForeignNats(root, nodes, leaf, secret_file(root / "console.password", console_pw),
                        procs=procs.procs[-4:])
    for i, node in enumerate(nodes):
        _wait_listening(node["client"], procs.procs[-4 + i], root / f"n{i + 1}.log",
                        f"foreign nats f{i + 1}")
    _wait_listening(leaf["client"], leaf_proc, root / "leaf.log", "foreign leaf")
    ctx = ssl.create_default_context(cafile=str(pki.ca))

    def formed() -> bool:
        try:
            for node in nodes:
                with urllib.request.urlopen(f"https://127.0.0.1:{node['monitor']}/routez",
                                            context=ctx, timeout=2) as r:
                    if len({x["remote_name"] for x in json.load(r)["routes"]}) < 2:
                        return False
        except (OSError, ValueError, KeyError):
            return False
        return _leaf_linked(leaf["monitor"])

    wait_until(formed, 30, "foreign NATS routes and the leaf link")
    return found


@dataclass
class ForeignJwtNats:
    """One hub in operator (JWT) mode, TLS on clients and leafnodes, and a leaf server that
    logs in to it with a ``.creds`` file; the console's own ``.creds``, and an expired one."""

    hub: dict[str, int]
    leaf: dict[str, int]
    console_creds: Path
    expired_creds: Path

    @property
    def client_url(self) -> str:
        return f"tls://127.0.0.1:{self.hub['client']}"


def start_jwt_nats(root: Path, pki: Pki, procs: Procs) -> ForeignJwtNats:
    from .nsc import operator

    root.mkdir(parents=True, exist_ok=True)
    op = operator()
    ports = free_ports(5)
    hub = {"client": ports[0], "monitor": ports[1], "leaf": ports[2]}
    leaf = {"client": ports[3], "monitor": ports[4]}
    conf = root / "hub.conf"
    conf.write_text(f"""
server_name: "j1"
listen: "127.0.0.1:{hub['client']}"
https: "127.0.0.1:{hub['monitor']}"
{_tls_block(pki)}
operator: "{op.jwt}"
resolver: MEMORY
resolver_preload: {{ {op.account_public}: "{op.account_jwt}" }}
leafnodes {{
  listen: "127.0.0.1:{hub['leaf']}"
  {_tls_block(pki)}
}}
""")
    hub_proc = procs.start([nats_server(), "-c", str(conf)], root / "hub.log")
    leaf_creds = op.user_creds(root / "leaf.creds", "leaf")
    leaf_conf = root / "leaf.conf"
    leaf_conf.write_text(f"""
server_name: "j-leaf"
listen: "127.0.0.1:{leaf['client']}"
http: "127.0.0.1:{leaf['monitor']}"
leafnodes {{
  reconnect: "200ms"
  remotes: [ {{ urls: ["tls://127.0.0.1:{hub['leaf']}"], credentials: "{leaf_creds}",
               tls: {{ ca_file: "{pki.ca}" }} }} ]
}}
""")
    leaf_proc = procs.start([nats_server(), "-c", str(leaf_conf)], root / "leaf.log")
    _wait_listening(hub["client"], hub_proc, root / "hub.log", "foreign JWT hub")
    _wait_listening(leaf["client"], leaf_proc, root / "leaf.log", "foreign JWT leaf")

    wait_until(lambda: _leaf_linked(leaf["monitor"]), 30, "the JWT leaf's link to its hub")
    return ForeignJwtNats(hub, leaf, op.user_creds(root / "console.creds", "console"),
                          op.user_creds(root / "expired.creds", "late",
                                        expires=int(time.time()) - 3600))


# -------------------------------------------------------------------------- OpenBao


@dataclass
class ForeignBao:
    dir: Path
    api_ports: list[int]
    token_file: Path
    unseal_keys: list[str]

    def addr(self, i: int) -> str:
        return f"https://127.0.0.1:{self.api_ports[i]}"


def _call(ctx: ssl.SSLContext, method: str, url: str, body: dict | None = None,
          token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"X-Vault-Token": token} if token else {})
    try:
        with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
            text = r.read().decode()
            return r.status, json.loads(text) if text.strip() else {}
    except urllib.error.HTTPError as exc:
        text = exc.read().decode()
        return exc.code, json.loads(text) if text.strip().startswith("{") else {}


def start_bao(root: Path, pki: Pki, procs: Procs) -> ForeignBao:
    root.mkdir(parents=True, exist_ok=True)
    ports = free_ports(6)
    api, cluster = ports[:3], ports[3:]
    for i in range(3):
        data = root / f"raft{i + 1}"
        data.mkdir(exist_ok=True)
        conf = root / f"b{i + 1}.hcl"
        conf.write_text(f"""
ui = false
log_level = "warn"
api_addr = "https://127.0.0.1:{api[i]}"
cluster_addr = "https://127.0.0.1:{cluster[i]}"
storage "raft" {{
  path = "{data}"
  node_id = "b{i + 1}"
  performance_multiplier = 1
  autopilot_reconcile_interval = "1s"
  autopilot_update_interval = "1s"
}}
listener "tcp" {{
  address = "127.0.0.1:{api[i]}"
  cluster_address = "127.0.0.1:{cluster[i]}"
  tls_cert_file = "{pki.cert}"
  tls_key_file = "{pki.key}"
  tls_min_version = "tls13"
}}
""")
        procs.start([bao(), "server", f"-config={conf}"], root / f"b{i + 1}.log")
    for i in range(3):
        _wait_listening(api[i], procs.procs[-3 + i], root / f"b{i + 1}.log",
                        f"foreign bao b{i + 1}")
    ctx = ssl.create_default_context(cafile=str(pki.ca))
    base = [f"https://127.0.0.1:{p}" for p in api]
    status, init = _call(ctx, "PUT", f"{base[0]}/v1/sys/init",
                         {"secret_shares": 3, "secret_threshold": 2})
    assert status == 200, init
    keys, token = init["keys"], init["root_token"]

    def unseal(i: int) -> None:
        for key in keys[:2]:
            _call(ctx, "PUT", f"{base[i]}/v1/sys/unseal", {"key": key})

    def unsealed(i: int) -> bool:
        status, body = _call(ctx, "GET", f"{base[i]}/v1/sys/seal-status")
        return status == 200 and body.get("sealed") is False

    unseal(0)
    wait_until(lambda: unsealed(0), 30, "b1 unsealed")
    wait_until(lambda: _call(ctx, "GET", f"{base[0]}/v1/sys/health")[0] == 200, 30,
               "b1 active")
    _call(ctx, "POST", f"{base[0]}/v1/sys/storage/raft/autopilot/configuration",
          {"server_stabilization_time": "2s"}, token)
    ca_pem = pki.ca.read_text()
    for i in (1, 2):
        def joined(i: int = i) -> bool:
            status, body = _call(ctx, "POST", f"{base[i]}/v1/sys/storage/raft/join",
                                 {"leader_api_addr": base[0], "leader_ca_cert": ca_pem})
            return status == 200 and bool(body.get("joined"))

        wait_until(joined, 30, f"b{i + 1} joined")

        def unsealed_after_join(i: int = i) -> bool:
            unseal(i)
            return unsealed(i)

        wait_until(unsealed_after_join, 30, f"b{i + 1} unsealed")

    def voters() -> bool:
        status, body = _call(ctx, "GET", f"{base[0]}/v1/sys/storage/raft/configuration",
                             token=token)
        servers = body.get("data", {}).get("config", {}).get("servers", [])
        return status == 200 and sum(bool(s.get("voter")) for s in servers) == 3

    wait_until(voters, 45, "three OpenBao voters")
    status, _ = _call(ctx, "POST", f"{base[0]}/v1/sys/mounts/secret",
                      {"type": "kv", "options": {"version": "2"}}, token)
    assert status in (200, 204)
    return ForeignBao(root, api, secret_file(root / "root.token", token), keys)


# ------------------------------------------------------------------------ fixtures


@dataclass
class Foreign:
    root: Path
    pki: Pki
    nats: ForeignNats
    jwt: ForeignJwtNats
    bao: ForeignBao
    inventory: Path
    jwt_inventory: Path
    env: dict[str, str]


def write_jwt_inventory(path: Path, pki: Pki, jwt: ForeignJwtNats,
                        creds: Path | None = None, ca: Path | None = None) -> Path:
    path.write_text(f"""name = "foreign-jwt"

[[nats]]
name = "foreign-jwt"
credentials_file = "{creds or jwt.console_creds}"
ca_cert = "{ca or pki.ca}"
[[nats.nodes]]
name = "j1"
client_url = "{jwt.client_url}"
monitor_url = "https://127.0.0.1:{jwt.hub['monitor']}"

[[leaves]]
name = "j-leaf"
user = "leaf"
client_url = "nats://127.0.0.1:{jwt.leaf['client']}"
monitor_url = "http://127.0.0.1:{jwt.leaf['monitor']}"
""")
    return path


def write_inventory(path: Path, pki: Pki, nats: ForeignNats, bao: ForeignBao,
                    ca: Path | None = None, password_file: Path | None = None) -> Path:
    ca = ca or pki.ca
    password_file = password_file or nats.console_password
    nodes = "\n".join(f"""[[nats.nodes]]
name = "f{i + 1}"
client_url = "{nats.client_url(i)}"
monitor_url = "https://127.0.0.1:{n['monitor']}"
""" for i, n in enumerate(nats.nodes))
    vault_nodes = "\n".join(f"""[[vault.nodes]]
name = "b{i + 1}"
api_addr = "{bao.addr(i)}"
""" for i in range(3))
    path.write_text(f"""name = "foreign"

[[nats]]
name = "foreign"
user = "console"
password_file = "{password_file}"
ca_cert = "{ca}"
{nodes}
[[leaves]]
name = "f-leaf"
user = "{nats.leaf_user}"
client_url = "nats://127.0.0.1:{nats.leaf['client']}"
monitor_url = "http://127.0.0.1:{nats.leaf['monitor']}"

[vault]
name = "foreign-bao"
token_file = "{bao.token_file}"
ca_cert = "{ca}"
expected_policies = ["root"]
scrape_interval = 1.0
{vault_nodes}""")
    return path


@pytest.fixture(scope="session")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Foreign]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make the foreign deployment's CA (make venv "
                    "installs it)")
    root = tmp_path_factory.mktemp("foreign")
    procs = Procs()
    started = time.monotonic()
    try:
        pki = make_pki(root / "pki")
        nats = start_nats(root / "nats", pki, procs)
        jwt = start_jwt_nats(root / "jwt", pki, procs)
        bao_ = start_bao(root / "bao", pki, procs)
        inv = write_inventory(root / "foreign.toml", pki, nats, bao_)
        jwt_inv = write_jwt_inventory(root / "foreign-jwt.toml", pki, jwt)
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("VAULT_", "NATS_", "OPSCONSOLE_CONFIG"))}
        print(f"foreign deployment up in {time.monotonic() - started:.1f} s")
        env["HOME"] = str(root / "home")  # no ~/.vault-token, no natscli contexts of ours
        env["XDG_CONFIG_HOME"] = str(root / "home" / ".config")
        yield Foreign(root, pki, nats, jwt, bao_, inv, jwt_inv, env)
    finally:
        procs.stop()
