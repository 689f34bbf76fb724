"""NATS checks shared by the packs that touch the cluster and its leaf relays."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from ...scenarios.checks import fresh
from ...scenarios.engine import Check, Outcome, Run
from ...targets.nats import NatsEndpoint, as_endpoint


def nats_cluster_healthy(within: float = 15.0) -> Check:
    async def fn(run: Run) -> Outcome:
        views = run.state.nats.nodes
        expected = [n.name for c in run.inventory.nats for n in c.nodes]
        evidence: dict[str, Any] = {n: (f"routes={views[n].sample.routes}" if n in views
                                        and views[n].sample.reachable else
                                        (views[n].sample.reason if n in views else "no sample"))
                                    for n in expected}
        if any(n not in views or not fresh(views[n].sample.ts) for n in expected):
            return "unknown", evidence
        ok = all(views[n].sample.reachable and views[n].sample.healthy for n in expected)
        return ("pass" if ok else "fail"), evidence

    return Check("nats cluster healthy, full routes", fn, within)


def leaves_connected(within: float = 15.0) -> Check:
    async def fn(run: Run) -> Outcome:
        leaves = run.state.nats.leaves
        expected = [lf.name for lf in run.inventory.leaves]
        evidence = {n: (leaves[n].sample.hub or "no hub") if n in leaves else "no sample"
                    for n in expected}
        if any(n not in leaves or not fresh(leaves[n].sample.ts) for n in expected):
            return "unknown", evidence
        ok = all(leaves[n].sample.healthy and leaves[n].sample.hub for n in expected)
        return ("pass" if ok else "fail"), evidence

    return Check("every leaf connected to a hub", fn, within)



async def nats_roundtrip(pub: NatsEndpoint | str, sub: NatsEndpoint | str, subject: str,
                         timeout: float = 5.0,
                         sub_inbox: str | None = None) -> tuple[bool, float]:
    """Publish on one server until a subscriber on another gets it; (ok, seconds)."""
    got = asyncio.Event()
    sub_nc = await as_endpoint(sub).connect(connect_timeout=2, max_reconnect_attempts=1,
                                            **({"inbox_prefix": sub_inbox} if sub_inbox else {}))
    try:
        pub_nc = await as_endpoint(pub).connect(connect_timeout=2, max_reconnect_attempts=1)
    except BaseException:
        await sub_nc.close()
        raise
    started = time.monotonic()
    try:
        async def on_msg(_msg) -> None:
            got.set()

        await sub_nc.subscribe(subject, cb=on_msg)
        await sub_nc.flush()
        while time.monotonic() - started < timeout:
            await pub_nc.publish(subject, b"steady")
            await pub_nc.flush()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.2):  # not wait_for: it can swallow a cancel
                    await got.wait()
            if got.is_set():
                return True, time.monotonic() - started
        return False, time.monotonic() - started
    finally:
        await sub_nc.close()
        await pub_nc.close()


def message_crosses_relay(within: float = 15.0) -> Check:
    """A message published on central reaches every user's leaf, and back."""

    async def fn(run: Run) -> Outcome:
        central = [ep for c in run.inventory.nats for ep in c.endpoints()]
        evidence: dict[str, Any] = {}
        ok_all = True
        for leaf in run.inventory.leaves:
            ok_in, t_in = await nats_roundtrip(central[0], leaf.endpoint(),
                                               f"OwnerSpace.{leaf.user}.steady.in")
            ok_out, t_out = await nats_roundtrip(leaf.endpoint(), central[-1],
                                                 f"OwnerSpace.{leaf.user}.steady.out")
            evidence[leaf.name] = {"central_to_local_s": round(t_in, 3) if ok_in else None,
                                   "local_to_central_s": round(t_out, 3) if ok_out else None}
            ok_all = ok_all and ok_in and ok_out
        return ("pass" if ok_all else "fail"), evidence

    return Check("messages cross central ⇄ every leaf", fn, within)

