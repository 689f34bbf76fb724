"""Detection: time from a `kill -9` to the console's state showing it.

A headless ``ConsoleSession`` (the console's probes, bus and state reducer, no TUI,
read-only) runs on the bench lab. Each run kills, alternately first, the active OpenBao
node and one central NATS node (rotating), then restarts it and waits until the whole lab
is healthy again. Times are taken from the kill to the first state change, observed on the
console's own bus (exact, no polling):

- Vault: the old leader shown unreachable; a different leader shown (OpenBao's own
  election dominates that one, so a direct 20 ms poll of every node measures the
  election itself as the reference);
- NATS: the killed node shown unreachable.

A direct 20 ms poll also records when each kill was observable at all (ground truth).
Goals (issue 10): ≤ 1 s (Vault) and ≤ 2 s (NATS).

    .venv/bin/python bench/detection.py [--runs 3] [--state-dir .opsconsole/bench-lab]
        [--out bench/results/detection.json]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from benchlib import BENCH, BENCH_LAB, Figure, bench_lab, median, rotate, write_result

from opsconsole.config import DEFAULT_CONFIG, load_config
from opsconsole.core.events import Event
from opsconsole.session import ConsoleSession

TIMEOUT_S = 20.0
POLL_S = 0.02


class Watch:
    """First time (monotonic) each predicate on the console state became true; checked
    on every event the console's bus publishes, right after the state reducer."""

    def __init__(self, session: ConsoleSession,
                 predicates: dict[str, Callable[[], bool]]) -> None:
        self.predicates = predicates
        self.seen: dict[str, float] = {}
        self.done = asyncio.Event()
        self._unsubscribe = session.bus.subscribe(self._check)

    def _check(self, _event: Event) -> None:
        now = time.monotonic()
        for name, pred in self.predicates.items():
            if name not in self.seen and pred():
                self.seen[name] = now
        if len(self.seen) == len(self.predicates):
            self.done.set()

    def close(self) -> None:
        self._unsubscribe()


async def first_true(probe: Callable[[], Any], timeout: float = TIMEOUT_S) -> float | None:
    """Poll ``probe`` (async, truthy when the condition holds) every 20 ms; the time
    (monotonic) it first held, or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await probe():
            return time.monotonic()
        await asyncio.sleep(POLL_S)
    return None


async def refused(http: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with http.get(url) as r:
            await r.read()
            return False
    except (aiohttp.ClientError, TimeoutError):
        return True


async def is_active(http: aiohttp.ClientSession, addr: str) -> bool:
    try:
        async with http.get(f"{addr}/v1/sys/health") as r:
            body = await r.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False
    return body.get("standby") is False and not body.get("sealed")


def healthy(session: ConsoleSession, lab: Any) -> bool:
    st = session.state
    topo = lab.topology()
    return (st.vault.leader is not None
            and all(n.name in st.vault.nodes and st.vault.nodes[n.name].reachable
                    and st.vault.nodes[n.name].sealed is False and st.vault.nodes[n.name].voter
                    and st.vault.nodes[n.name].autopilot_healthy is True for n in topo.vault)
            and all(n.name in st.nats.nodes and st.nats.nodes[n.name].sample.healthy
                    for n in topo.central))


async def wait_healthy(session: ConsoleSession, lab: Any, timeout: float = 60.0) -> float:
    """Wait until the console shows every node healthy (Vault: autopilot healthy too, so
    the next kill finds a caught-up quorum); return the seconds waited."""
    t0 = time.monotonic()
    while not healthy(session, lab):
        if time.monotonic() - t0 > timeout:
            raise RuntimeError(f"the lab did not come back healthy within {timeout:g} s")
        await asyncio.sleep(0.1)
    return time.monotonic() - t0


async def kill_vault_leader(session: ConsoleSession, lab: Any,
                            http: aiohttp.ClientSession) -> dict[str, Any]:
    st = session.state
    old = st.vault.leader
    assert old is not None
    nodes = {n.name: n.api_addr for n in lab.topology().vault}
    watch = Watch(session, {
        "down": lambda: not st.vault.nodes[old].reachable,
        "new_leader": lambda: st.vault.leader not in (None, old)})
    t0 = time.monotonic()
    os.kill(lab.dir.load().procs[old].pid, signal.SIGKILL)

    async def any_new_active() -> bool:
        flags = await asyncio.gather(*(is_active(http, a) for n, a in nodes.items() if n != old))
        return any(flags)

    truth_down, truth_new = await asyncio.gather(
        first_true(lambda: refused(http, f"{nodes[old]}/v1/sys/health")),
        first_true(any_new_active))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(watch.done.wait(), TIMEOUT_S)
    watch.close()
    await lab.start_node(old)
    recover = await wait_healthy(session, lab)

    def since(t: float | None) -> float | None:
        return None if t is None else t - t0

    return {"kind": "vault", "node": old, "down_s": since(watch.seen.get("down")),
            "new_leader_s": since(watch.seen.get("new_leader")),
            "new_leader": st.vault.last_leader, "truth_down_s": since(truth_down),
            "truth_new_leader_s": since(truth_new), "restart_to_healthy_s": recover}


async def kill_nats(session: ConsoleSession, lab: Any, http: aiohttp.ClientSession,
                    k: int) -> dict[str, Any]:
    node = lab.topology().central[k % len(lab.topology().central)]
    view = session.state.nats.nodes[node.name]
    watch = Watch(session, {"down": lambda: not view.sample.reachable})
    t0 = time.monotonic()
    os.kill(lab.dir.load().procs[node.name].pid, signal.SIGKILL)
    truth = await first_true(lambda: refused(http, f"{node.monitor_url}/healthz"))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(watch.done.wait(), TIMEOUT_S)
    watch.close()
    await lab.start_node(node.name)
    recover = await wait_healthy(session, lab)
    down = watch.seen.get("down")
    return {"kind": "nats", "node": node.name, "down_s": None if down is None else down - t0,
            "truth_down_s": None if truth is None else truth - t0,
            "restart_to_healthy_s": recover}


async def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--state-dir", default=str(BENCH_LAB))
    ap.add_argument("--out", type=Path, default=BENCH / "results" / "detection.json")
    args = ap.parse_args()
    lab = await bench_lab(args.state_dir)
    session = ConsoleSession(load_config(DEFAULT_CONFIG), lab_state_dir=args.state_dir,
                             start_lab=False, read_only=True, canaries=False)
    await session.start()
    rows: list[dict[str, Any]] = []
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=0.5)) as http:
            await wait_healthy(session, lab)
            for run in range(args.runs):
                for kind in rotate(["vault", "nats"], run):
                    if kind == "vault":
                        row = await kill_vault_leader(session, lab, http)
                    else:
                        row = await kill_nats(session, lab, http, run)
                    rows.append({"run": run, **row})
                    print(f"run {run}: " + ", ".join(
                        f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in row.items()), file=sys.stderr, flush=True)
    finally:
        await session.stop()

    def of(kind: str, key: str) -> list[float]:
        return [r[key] for r in rows if r["kind"] == kind and r[key] is not None]

    def truth(kind: str) -> str:
        t = median(of(kind, "truth_down_s"))
        return "" if t is None else f"observable by a direct 20 ms poll after {t:.3f} s (median)"

    misses = {k: sum(r[key] is None for r in rows if r["kind"] == k.split(":")[0])
              for k, key in (("vault", "down_s"), ("vault:new", "new_leader_s"),
                             ("nats", "down_s"))}
    figs = [
        Figure("Detection: Vault leader `kill -9` → console state shows it down", "s",
               of("vault", "down_s"), [1.0], "goal", "≤ 1 s", ("value<=", 1.0),
               note=truth("vault") + "; Vault probe every 0.5 s"),
        Figure("Detection: Vault leader `kill -9` → console state shows the new leader", "s",
               of("vault", "new_leader_s"), of("vault", "truth_new_leader_s"),
               "OpenBao's election (direct 20 ms poll)", "≤ election + 1 s", ("lag<=", 1.0)),
        Figure("Detection: NATS node `kill -9` → console state shows it unreachable", "s",
               of("nats", "down_s"), [2.0], "goal", "≤ 2 s", ("value<=", 2.0),
               note=truth("nats") + "; NATS probe every 1 s"),
    ]
    for fig, key in zip(figs, misses, strict=True):
        if misses[key]:
            fig.met = False
            fig.note += f"; {misses[key]} run(s) not detected within {TIMEOUT_S:g} s"
    write_result(args.out, "detection", {"runs": args.runs}, figs, rows)


if __name__ == "__main__":
    asyncio.run(main())
