"""The load generator as a child process, driven over stdin/stdout JSON lines.

Why a process: in the console's process the generator shares the interpreter with
probes, canaries, the journal and the UI; measured on the lab at 500 req/s, that raised
the corrected p99 from ≈ 5 ms to ≈ 35 ms while the service time stayed ≈ 8 ms — latency
the cluster never caused. A child process sends on time, and its own CPU cost can be
measured separately (``cpu_s`` in every result).

The generator knows no system: the parent names the target class to load
(``"module:Class"``, e.g. ``opsconsole.systems.vault.kv_load:VaultKvLoad``; an async
context manager with ``seed``, ``op(kind, i) -> bool`` and ``cleanup``).

Protocol (one JSON object per line): the parent sends ``{"op": "setup", "target", "addr",
"token", "users"}`` (the token travels on the pipe, never in argv or logs), then any
number of ``{"op": "load", "rate", "duration", "mix", "drain"}``, then
``{"op": "cleanup"}``. The child answers each with ``{"type": "ok"}`` /
``{"type": "result", …}`` (``{"type": "progress", …}`` lines once a second while loading)
or ``{"type": "error", "message"}``. EOF on stdin ends the child.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import Callable
from typing import Any

from . import eventloop
from .histogram import Latency
from .openloop import LoadProgress, LoadResult, LoadSpec, OpenLoop, OpStats


# ---------------------------------------------------------------- child side
def _emit(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def _child() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    kv: Any = None
    try:
        while line := await reader.readline():
            cmd = json.loads(line)
            try:
                if cmd["op"] == "setup":
                    kv = _target(cmd["target"])(cmd["addr"], cmd["token"],
                                                users=int(cmd["users"]),
                                                **cmd.get("options", {}))
                    await kv.__aenter__()
                    await kv.seed()
                    _emit({"type": "ok"})
                elif cmd["op"] == "load" and kv is not None:
                    _emit(await _load(kv, cmd))
                elif cmd["op"] == "cleanup" and kv is not None:
                    await kv.cleanup()
                    _emit({"type": "ok"})
                else:
                    _emit({"type": "error", "message": f"unexpected command {cmd['op']!r}"})
            except Exception as exc:  # reported to the parent, which turns it into a check
                _emit({"type": "error", "message": f"{type(exc).__name__}: {exc}"})
    finally:
        if kv is not None:
            await kv.__aexit__(None, None, None)


def _target(spec: str) -> Any:
    """The load target class named ``module:Class``."""
    import importlib

    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


async def _load(kv: Any, cmd: dict[str, Any]) -> dict[str, Any]:
    spec = LoadSpec(rate=float(cmd["rate"]), duration_s=float(cmd["duration"]),
                    users=kv.users, mix=tuple((k, float(w)) for k, w in cmd["mix"]),
                    drain_s=float(cmd.get("drain", 10.0)))

    def progress(p: LoadProgress) -> None:
        _emit({"type": "progress", "elapsed_s": p.elapsed_s, "offered_rps": p.offered_rps,
               "throughput_rps": p.throughput_rps, "completed": p.completed,
               "errors": p.errors, "corrected": p.corrected.encode()})

    cpu0 = time.process_time()
    res = await OpenLoop(spec, kv.op, on_progress=progress).run()
    return {"type": "result", "elapsed_s": res.elapsed_s, "ok": res.ok, "errors": res.errors,
            "unsent": res.unsent, "corrected": res.corrected.encode(),
            "service": res.service.encode(), "cpu_s": time.process_time() - cpu0,
            "per_op": {k: {"ok": s.ok, "errors": s.errors, "corrected": s.corrected.encode(),
                           "service": s.service.encode()} for k, s in res.per_op.items()}}


# --------------------------------------------------------------- parent side
def _latency(encoded: str) -> Latency:
    lat = Latency()
    lat.add_encoded(encoded)
    return lat


class LoadWorker:
    """Parent handle on one generator child process."""

    def __init__(self) -> None:
        self.proc: asyncio.subprocess.Process | None = None
        self.last_cpu_s = 0.0
        self.addr = ""

    async def start(self, target: str, addr: str, token: str, users: int,
                    **options: Any) -> None:
        """Start the child and set up ``target`` (``module:Class``) against ``addr``;
        ``options`` (JSON values) go to the target's constructor."""
        self.addr = addr
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "opsconsole.load.worker", stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, limit=2**24)
        await self._call({"op": "setup", "target": target, "addr": addr, "token": token,
                          "users": users, "options": options})

    async def load(self, spec: LoadSpec,
                   on_progress: Callable[[LoadProgress], Any] | None = None) -> LoadResult:
        reply = await self._call({"op": "load", "rate": spec.rate, "duration": spec.duration_s,
                                  "mix": [list(m) for m in spec.mix], "drain": spec.drain_s},
                                 on_progress)
        self.last_cpu_s = float(reply["cpu_s"])
        per_op = {k: OpStats(_latency(v["corrected"]), _latency(v["service"]), v["ok"],
                             v["errors"]) for k, v in reply["per_op"].items()}
        return LoadResult(spec, reply["elapsed_s"], reply["ok"], reply["errors"],
                          reply["unsent"], _latency(reply["corrected"]),
                          _latency(reply["service"]), per_op)

    async def cleanup(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            await self._call({"op": "cleanup"})

    def kill(self) -> None:
        if self.proc is not None and self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.kill()

    async def close(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin is not None:
            proc.stdin.close()
        try:
            await asyncio.wait_for(proc.wait(), 10)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await proc.wait()

    async def _call(self, cmd: dict[str, Any],
                    on_progress: Callable[[LoadProgress], Any] | None = None) -> dict[str, Any]:
        proc = self.proc
        assert proc is not None and proc.stdin is not None and proc.stdout is not None
        proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await proc.stdin.drain()
        while True:
            line = await proc.stdout.readline()
            if not line:
                err = (await proc.stderr.read()).decode(errors="replace").strip() \
                    if proc.stderr else ""
                raise RuntimeError("load worker exited" + (f": {err.splitlines()[-1]}"
                                                           if err else ""))
            msg = json.loads(line)
            if msg["type"] == "progress":
                if on_progress is not None:
                    on_progress(LoadProgress(
                        elapsed_s=msg["elapsed_s"], offered_rps=msg["offered_rps"],
                        throughput_rps=msg["throughput_rps"], completed=msg["completed"],
                        errors=msg["errors"], corrected=_latency(msg["corrected"])))
                continue
            if msg["type"] == "error":
                raise RuntimeError(msg["message"])
            return msg


if __name__ == "__main__":
    eventloop.run(_child())
