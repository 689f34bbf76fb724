"""`make screenshots`: run the real console on the real lab and save SVGs.

A little real relay traffic (central ⇄ leaf, loopback only, bounded in time)
runs meanwhile so the NATS relay flow pane shows live rates, not zeros.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time
from pathlib import Path

from ..config import DEFAULT_CONFIG, load_config
from ..session import ConsoleSession
from .app import OpsConsoleApp

SHOTS = [("console-160x48.svg", (160, 48), []), ("console-80x24.svg", (80, 24), ["2"]),
         ("event-log.svg", (160, 48), ["e"]), ("help.svg", (160, 48), ["question_mark"])]


async def relay_traffic(session: ConsoleSession, seconds: float, rate: float = 200) -> None:
    """Publish both ways across each leaf link at ``rate`` msg/s for ``seconds``."""
    inv = session.inventory
    if session.lab is not None:
        from ..lab.inventory import lab_inventory

        inv = lab_inventory(session.lab, inv)
    cluster = inv.nats[0]
    central = await cluster.endpoint(cluster.nodes[0]).connect()
    leaves = [(leaf.user, await leaf.endpoint().connect()) for leaf in inv.leaves]
    try:
        for user, nc in leaves:
            await nc.subscribe(f"OwnerSpace.{user}.forVault")
        await central.subscribe("OwnerSpace.*.forApp")
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for user, nc in leaves:
                await central.publish(f"OwnerSpace.{user}.forVault", b"shot")
                await nc.publish(f"OwnerSpace.{user}.forApp", b"shot")
            await asyncio.sleep(1 / rate)
    finally:
        for _, nc in leaves:
            await nc.close()
        await central.close()


def _missing(session: ConsoleSession) -> list[str]:
    """What the panes do not show yet (an empty pane is not a screenshot of the console)."""
    st = session.state
    leaves = st.nats.leaves
    return [what for what, ok in (
        ("3 NATS nodes", len(st.nats.nodes) == 3), ("3 Vault nodes", len(st.vault.nodes) == 3),
        ("Vault leader", bool(st.vault.leader)),
        ("vault instances", bool(st.vault_instances.instances)),
        ("relay rates", bool(leaves) and all(len(v.to_local.rate.points) >= 8
                                             for v in leaves.values()))) if not ok]


async def take(out: Path, state_dir: str | None) -> list[Path]:
    written = []
    for name, size, keys in SHOTS:
        session = ConsoleSession(load_config(DEFAULT_CONFIG), lab_state_dir=state_dir)
        app = OpsConsoleApp(session)
        async with app.run_test(size=size) as pilot:
            traffic = asyncio.create_task(relay_traffic(session, 12))
            deadline = time.monotonic() + 90  # the console may start the lab first
            while missing := _missing(session):  # wait for every pane to have real data
                if time.monotonic() > deadline:
                    traffic.cancel()
                    raise SystemExit(f"screenshots: no {name} written: after 90 s the "
                                     f"console still shows no {', no '.join(missing)}")
                await pilot.pause(0.25)
            for key in keys:
                await pilot.press(key)
            await pilot.pause(0.6)
            path = out / name
            app.save_screenshot(str(path.name), str(out))
            written.append(path)
            traffic.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await traffic
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("screenshots"))
    parser.add_argument("--state-dir", default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in asyncio.run(take(args.out, args.state_dir)):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
