"""Fault kinds on the real lab: each injects what it says and heals from its record."""

from __future__ import annotations

import aiohttp
import pytest

from opsconsole.config import Inventory, LabSpec
from opsconsole.errors import UserError
from opsconsole.faults.ledger import FaultLedger
from opsconsole.lab import Lab
from opsconsole.netproxy import ProxyClient
from opsconsole.session import ConsoleSession

from ..helpers import async_wait_until


@pytest.fixture
async def session(lab: Lab, tmp_path):
    s = ConsoleSession(Inventory(name="lab", lab=LabSpec()), lab_state_dir=str(lab.dir.root),
                       start_lab=False, probes=False, ledger=FaultLedger(tmp_path / "l.jsonl"))
    await s.start()
    yield s
    await s.stop()


async def _sealed(http: aiohttp.ClientSession, addr: str, lab: Lab) -> bool | None:
    try:
        async with http.get(f"{addr}/v1/sys/health?standbyok=true", ssl=lab.ssl_context(),
                            timeout=aiohttp.ClientTimeout(total=2)) as r:
            return (await r.json(content_type=None)).get("sealed")
    except (aiohttp.ClientError, TimeoutError):
        return None


async def test_vault_seal_then_heal_unseals(lab: Lab, session: ConsoleSession) -> None:
    node = next(v for v in lab.topology().vault
                if lab.process(v.name) and v.api_addr != lab.env()["VAULT_ADDR"])
    rec = await session.faults.inject("vault.seal", node.name)
    assert await _sealed(session.http, node.api_addr, lab) is True
    assert await session.faults.heal(rec)
    await async_wait_until(lambda: _unsealed(session.http, node.api_addr, lab), 30,
                           f"{node.name} to unseal after restart")


async def _unsealed(http, addr, lab: Lab) -> bool:
    return await _sealed(http, addr, lab) is False


async def test_process_restart_gives_a_new_pid(lab: Lab, session: ConsoleSession) -> None:
    before = lab.process("leaf-u2").pid
    await session.faults.inject("process.restart", "leaf-u2")
    assert lab.process("leaf-u2").pid != before
    assert session.faults.ledger.open_records() == []  # one-shot: nothing left to heal


async def test_link_latency_is_set_and_cleared_on_the_proxy(lab: Lab,
                                                            session: ConsoleSession) -> None:
    proxy = ProxyClient(session.http, lab.topology().proxy_url)
    rec = await session.faults.inject("link.latency", "nats-1~nats-2", {"latency_ms": 50})
    faulted = {link["name"]: link["fault"] for link in await proxy.links() if link["fault"]}
    assert set(faulted) == {"route.nats-1.nats-2", "route.nats-2.nats-1"}
    assert all(f["latency_ms"] == 50 for f in faulted.values())
    await session.faults.heal(rec)
    assert not [link for link in await proxy.links() if link["fault"]]


async def test_ec2_faults_only_touch_tagged_instances(session: ConsoleSession) -> None:
    with pytest.raises(UserError, match="not a vault instance"):
        await session.faults.inject("ec2.stop", "i-0000000000000000")
    with pytest.raises(UserError, match="irreversible"):
        await session.faults.inject("ec2.terminate", "i-0000000000000000")
    assert session.faults.ledger.open_records() == []
