"""Issue 17: the lab is secured like production. Every endpoint is on TLS from the lab CA,
no client gets in without credentials, the console's login is least-privilege, OpenBao
speaks TLS 1.3 only, and the CA key is private. Each check has its control: the same
observation made the way that must work (with the login, on TLS 1.3, an allowed subject)."""

from __future__ import annotations

import json
import socket
import ssl
import stat

import nats
import pytest

from opsconsole.lab import Lab
from opsconsole.lab.pki import CA_KEY, SERVER_KEY

from ..helpers import async_wait_until


def test_lab_status_shows_tls_on_every_endpoint(lab_status: dict) -> None:
    rows = [*lab_status["nats"], *lab_status["leaves"]]
    assert rows and all(r["tls"] == "TLS (lab CA)" and r["healthy"] for r in rows), rows
    assert all(r["client_url"].startswith("tls://") and r["monitor_url"].startswith("https://")
               for r in rows)
    assert all(v["tls"] == "TLS (lab CA) 1.3+" and v["api_addr"].startswith("https://")
               for v in lab_status["vault"]), lab_status["vault"]


def _info(port: int) -> dict:
    """The INFO line a NATS server sends before any TLS (what a plaintext client sees)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        line = sock.makefile("rb").readline().decode()
    assert line.startswith("INFO ")
    return json.loads(line[5:])


def test_nats_requires_tls_and_auth_on_every_client_port(lab: Lab) -> None:
    topo = lab.topology()
    for node in [*topo.central, *topo.leaves]:
        info = _info(node.client)
        assert info["tls_required"] is True and info["auth_required"] is True, node.name


async def _connect(url: str, **kw):
    errors: list[Exception] = []

    async def on_error(exc: Exception) -> None:
        errors.append(exc)

    try:
        return await nats.connect(url, allow_reconnect=False, max_reconnect_attempts=0,
                                  connect_timeout=3, error_cb=on_error, **kw), errors
    except Exception as exc:  # the refusal itself: what the test asserts on
        return None, [*errors, exc]


async def test_no_login_is_refused_and_the_console_login_is_accepted(lab: Lab) -> None:
    topo = lab.topology()
    ctx = ssl.create_default_context(cafile=str(lab.ca_cert))
    for node in [topo.central[0], topo.leaves[0]]:
        nc, errors = await _connect(node.client_url, tls=ctx)
        assert nc is None
        assert any("authorization violation" in str(e).lower() for e in errors), errors
        nc, errors = await _connect(node.client_url, **lab.nats_connect_options())
        assert nc is not None, errors  # the control: the same server, with the login
        await nc.close()


async def test_the_console_login_is_least_privilege(lab: Lab) -> None:
    nc, errors = await _connect(lab.topology().central[0].client_url,
                                **lab.nats_connect_options())
    assert nc is not None, errors
    try:
        await nc.publish("OwnerSpace.u1.allowed", b"x")  # the control: allowed, no error
        await nc.flush()
        await nc.publish("$SYS.REQ.SERVER.PING", b"x")
        await nc.publish("not.for.the.console", b"x")
        await nc.flush()
        await async_wait_until(lambda: len(errors) >= 2, 10, "two permission violations")
        text = " ".join(str(e) for e in errors).lower()
        assert "permissions violation" in text and "not.for.the.console" in text
        assert "ownerspace.u1.allowed" not in text
    finally:
        await nc.close()


def _handshake(host: str, port: int, ctx: ssl.SSLContext) -> str:
    with socket.create_connection((host, port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname=host) as tls:
        return tls.version() or ""


def test_openbao_speaks_tls13_only(lab: Lab) -> None:
    node = lab.topology().vault[0]
    modern = ssl.create_default_context(cafile=str(lab.ca_cert))
    assert _handshake(node.host, node.api, modern) == "TLSv1.3"  # the control
    old = ssl.create_default_context(cafile=str(lab.ca_cert))
    old.maximum_version = ssl.TLSVersion.TLSv1_2
    with pytest.raises(ssl.SSLError):
        _handshake(node.host, node.api, old)
    untrusted = ssl.create_default_context()  # the system store: the lab CA is not in it
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(node.host, node.api, untrusted)


def test_the_lab_ca_and_server_keys_are_private(lab: Lab) -> None:
    for name in (CA_KEY, SERVER_KEY):
        mode = stat.S_IMODE((lab.dir.secrets / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    assert lab.ca_cert is not None and "BEGIN CERTIFICATE" in lab.ca_cert.read_text()
    assert CA_KEY not in [p.name for p in lab.ca_cert.parent.iterdir()]  # not beside ca.pem


async def test_a_wrong_password_shows_the_node_unreachable_with_the_cause(lab: Lab,
                                                                          tmp_path) -> None:
    """The console's own probe, with the lab's targets but a wrong password: the cause."""
    import aiohttp

    from opsconsole.config import SecretRef
    from opsconsole.systems.nats.health import node_health
    from opsconsole.systems.nats.probe import NatsNodeProbe
    from opsconsole.targets.http import reason

    topo = lab.topology()
    (tmp_path / "pw").write_text("wrong")
    cluster = lab.nats_cluster(topo).model_copy(update={"password": SecretRef(
        file=tmp_path / "pw")})
    async with aiohttp.ClientSession() as http:
        probe = NatsNodeProbe(http, cluster.nodes[0], 3, cluster)
        try:
            await probe.sample()
        except Exception as exc:  # what the probe loop turns into the node's row
            [event] = probe.unreachable(reason(exc))
        else:
            pytest.fail("a wrong password was accepted")
        finally:
            await probe.close()
    assert node_health(event).health == ("unreachable: authorization violation (wrong or "
                                         "refused credentials)")
