"""Reference Vault Manager: the service on each vault instance that answers app events.

Protocol (on the instance's local NATS, relayed to and from central):

- ``OwnerSpace.<user>.forVault``: ``{"id": str, "type": str, "payload": {...}}``.
  Types: ``ping``, ``echo``, ``kv.put`` ``{key, value}``, ``kv.get`` ``{key}``, ``stats``.
- ``OwnerSpace.<user>.forApp``: one response per event, ``{"id", "type", "ok", "result" |
  "error", "at"}``; malformed events get ``ok: false`` with the reason (never a crash).
  A request (event with a reply subject) also gets the response as its reply.
- ``OwnerSpace.<user>.control``: ``{"command": "shutdown"|"backup", "nonce", "ts",
  "key_id", "signature"}``; the Ed25519 signature covers the canonical JSON of
  ``{command, nonce, ts, user}``; only keys in the authorised-keys file count, the
  timestamp must be within 60 s and a nonce is accepted once.
- ``GET /health`` on the monitoring port: status, uptime, handler and NATS metrics.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import signal
import ssl
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nats
import psutil
from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

MAX_EVENT_BYTES = 64 * 1024
MAX_ID = 128
CONTROL_SKEW_S = 60.0


class Rejected(Exception):
    """The event is answered with ``ok: false`` and this reason."""


def canonical(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def control_message(command: str, nonce: str, ts: float, user: str) -> bytes:
    """The bytes a control command's signature covers."""
    return canonical({"command": command, "nonce": nonce, "ts": ts, "user": user})


@dataclass
class HandlerStats:
    count: int = 0
    errors: int = 0
    durations_ms: deque[float] = field(default_factory=lambda: deque(maxlen=1000))

    def as_json(self) -> dict[str, Any]:
        d = sorted(self.durations_ms)
        return {"count": self.count, "errors": self.errors,
                "p50_ms": round(statistics.median(d), 3) if d else None,
                "max_ms": round(d[-1], 3) if d else None}


class TokenBucket:
    def __init__(self, rate: float, burst: float) -> None:
        self.rate, self.burst = rate, burst
        self.tokens, self.at = burst, time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


class VaultManager:
    HANDLERS = ("ping", "echo", "kv.put", "kv.get", "stats")

    def __init__(self, user: str, state_dir: Path, authorized_keys: dict[str, str],
                 rate: float = 100.0, burst: float = 50.0) -> None:
        self.user = user
        self.state_dir = state_dir
        self.keys = authorized_keys
        self.bucket = TokenBucket(rate, burst)
        self.kv: dict[str, Any] = self._load()
        self.stats: dict[str, HandlerStats] = {h: HandlerStats() for h in self.HANDLERS}
        self.rejected = 0
        self.rate_limited = 0
        self.control_accepted = 0
        self.control_rejected = 0
        self.nonces: dict[str, float] = {}
        self.started = time.time()
        self.last_event_at: float | None = None
        self.nc: nats.NATS | None = None
        self.stop = asyncio.Event()
        self.backups = 0

    # ------------------------------------------------------------- state
    @property
    def state_file(self) -> Path:
        return self.state_dir / "kv.json"

    def _load(self) -> dict[str, Any]:
        try:
            return json.loads(self.state_file.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            return {}

    def flush(self, path: Path | None = None) -> Path:
        path = path or self.state_file
        self.state_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.kv, sort_keys=True))
        os.replace(tmp, path)
        return path

    # ------------------------------------------------------------ events
    def subjects(self) -> tuple[str, str, str]:
        base = f"OwnerSpace.{self.user}"
        return f"{base}.forVault", f"{base}.forApp", f"{base}.control"

    def handle_event(self, data: bytes) -> dict[str, Any]:
        """Turn any bytes into exactly one response (never raises)."""
        event_id: Any = None
        etype: Any = None
        started = time.perf_counter()
        try:
            if len(data) > MAX_EVENT_BYTES:
                raise Rejected(f"event larger than {MAX_EVENT_BYTES} bytes")
            try:
                event = json.loads(data)
            except (json.JSONDecodeError, UnicodeDecodeError):
                raise Rejected("malformed: not JSON") from None
            if not isinstance(event, dict):
                raise Rejected("malformed: event must be a JSON object")
            event_id, etype = event.get("id"), event.get("type")
            if not isinstance(event_id, str) or not 0 < len(event_id) <= MAX_ID:
                event_id = None
                raise Rejected(f"malformed: id must be a string of 1..{MAX_ID} characters")
            if not isinstance(etype, str):
                etype = None
                raise Rejected("malformed: type must be a string")
            if etype not in self.HANDLERS:
                raise Rejected(f"unknown type {etype[:40]!r}")
            if not self.bucket.take():
                self.rate_limited += 1
                raise Rejected("rate limited")
            payload = event.get("payload", {})
            if not isinstance(payload, dict):
                raise Rejected("malformed: payload must be an object")
            result = self._dispatch(etype, payload)
            self._record(etype, started, ok=True)
            return self._response(event_id, etype, True, result=result)
        except Rejected as exc:
            self.rejected += 1
            etype = etype if isinstance(etype, str) else None  # echo only what is valid
            if etype in self.stats:
                self._record(etype, started, ok=False)
            return self._response(event_id, etype, False, error=str(exc))
        except Exception as exc:  # a handler bug is answered, not fatal
            self.rejected += 1
            return self._response(None, None, False,
                                  error=f"internal error: {type(exc).__name__}")

    def _dispatch(self, etype: str, payload: dict[str, Any]) -> Any:
        self.last_event_at = time.time()
        if etype == "ping":
            return {"pong": True}
        if etype == "echo":
            return payload
        if etype == "kv.put":
            key = payload.get("key")
            if not isinstance(key, str) or not key:
                raise Rejected("kv.put: key must be a non-empty string")
            self.kv[key] = payload.get("value")
            return {"stored": key}
        if etype == "kv.get":
            key = payload.get("key")
            if not isinstance(key, str) or key not in self.kv:
                raise Rejected("kv.get: no such key")
            return {"key": key, "value": self.kv[key]}
        return {"handlers": {k: v.as_json() for k, v in self.stats.items()}}

    def _record(self, etype: str, started: float, ok: bool) -> None:
        stats = self.stats[etype]
        stats.count += 1
        stats.errors += 0 if ok else 1
        stats.durations_ms.append((time.perf_counter() - started) * 1000)

    def _response(self, event_id: Any, etype: Any, ok: bool, **body: Any) -> dict[str, Any]:
        return {"id": event_id, "type": etype, "ok": ok, "at": time.time(), **body}

    # ----------------------------------------------------------- control
    def handle_control(self, data: bytes) -> tuple[dict[str, Any], str | None]:
        """Verify a signed command; (response, accepted command or None)."""
        try:
            msg = json.loads(data)
            command, nonce, ts = msg["command"], msg["nonce"], float(msg["ts"])
            key_id, signature = msg["key_id"], msg["signature"]
            if command not in ("shutdown", "backup"):
                raise Rejected(f"unknown command {str(command)[:40]!r}")
            if key_id not in self.keys:
                raise Rejected("unauthorised: unknown key")
            pub = Ed25519PublicKey.from_public_bytes(base64.b64decode(self.keys[key_id]))
            pub.verify(base64.b64decode(signature), control_message(command, nonce, ts,
                                                                    self.user))
            if abs(time.time() - ts) > CONTROL_SKEW_S:
                raise Rejected("unauthorised: stale timestamp")
            if nonce in self.nonces:
                raise Rejected("unauthorised: replayed nonce")
            self.nonces[nonce] = ts
        except Rejected as exc:
            self.control_rejected += 1
            return self._response(_nonce(data), "control", False, error=str(exc)), None
        except (InvalidSignature, ValueError, KeyError, TypeError, json.JSONDecodeError):
            self.control_rejected += 1
            return self._response(_nonce(data), "control", False,
                                  error="unauthorised: bad or missing signature"), None
        self.control_accepted += 1
        result: dict[str, Any] = {"command": command}
        if command == "backup":
            self.backups += 1
            path = self.flush(self.state_dir / f"backup-{self.backups}.json")
            result["backup"] = path.name
            result["keys"] = len(self.kv)
        return self._response(nonce, f"control.{command}", True, result=result), command

    # -------------------------------------------------------------- health
    def health(self) -> dict[str, Any]:
        nc = self.nc
        connected = bool(nc and nc.is_connected)
        proc = psutil.Process()
        stats = dict(nc.stats) if nc else {}
        return {
            "status": "healthy" if connected else "unhealthy",
            "user": self.user,
            "uptime_seconds": round(time.time() - self.started, 1),
            "handlers_loaded": len(self.HANDLERS),
            "handlers": {k: v.as_json() for k, v in self.stats.items()},
            "rejected": self.rejected, "rate_limited": self.rate_limited,
            "control": {"accepted": self.control_accepted, "rejected": self.control_rejected},
            "nats": {"connected": connected, "reconnects": stats.get("reconnects", 0),
                     "in_msgs": stats.get("in_msgs", 0), "out_msgs": stats.get("out_msgs", 0),
                     "pending_bytes": nc.pending_data_size if nc else 0},
            "memory_mb": round(proc.memory_info().rss / 2**20, 1),
            "cpu_percent": proc.cpu_percent(interval=None),
            "last_event_at": self.last_event_at,
        }


def _nonce(data: bytes) -> Any:
    with contextlib.suppress(Exception):
        nonce = json.loads(data).get("nonce")
        return nonce if isinstance(nonce, str) and len(nonce) <= MAX_ID else None
    return None


async def serve(args: argparse.Namespace) -> None:
    keys = json.loads(Path(args.authorized_keys).read_text()) if args.authorized_keys else {}
    manager = VaultManager(args.user, Path(args.state_dir), keys, args.rate, args.burst)
    for_vault, for_app, control = manager.subjects()
    login: dict[str, Any] = {}
    if args.nats_ca:
        login["tls"] = ssl.create_default_context(cafile=args.nats_ca)
    if args.nats_login:
        user, password_file = args.nats_login.split(":", 1)
        login.update(user=user, password=Path(password_file).read_text().strip())
    nc = await nats.connect(args.nats, inbox_prefix=f"_INBOX_{args.user}",
                            max_reconnect_attempts=-1, reconnect_time_wait=0.2,
                            name=f"vault-manager-{args.user}", **login)
    manager.nc = nc

    async def on_event(msg) -> None:
        response = canonical(manager.handle_event(msg.data))
        await nc.publish(for_app, response)
        if msg.reply:
            await nc.publish(msg.reply, response)

    async def on_control(msg) -> None:
        response, command = manager.handle_control(msg.data)
        body = canonical(response)
        await nc.publish(for_app, body)
        if msg.reply:
            await nc.publish(msg.reply, body)
        if command == "shutdown":
            manager.stop.set()

    await nc.subscribe(for_vault, cb=on_event)
    await nc.subscribe(control, cb=on_control)
    app = web.Application()
    app.router.add_get("/health", lambda _: web.json_response(manager.health()))
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", args.monitor_port).start()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, manager.stop.set)
    await manager.stop.wait()
    # Graceful: stop taking events, answer what is in flight, keep state for restart.
    await nc.drain()
    manager.flush()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(prog="vault-manager", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nats", required=True, help="the instance's local NATS URL")
    parser.add_argument("--user", required=True)
    parser.add_argument("--nats-ca", default=None, help="CA file: the local NATS on TLS")
    parser.add_argument("--nats-login", default=None, metavar="USER:PASSWORD_FILE",
                        help="log in to the local NATS as USER with the password in the file")
    parser.add_argument("--monitor-port", type=int, required=True)
    parser.add_argument("--state-dir", required=True)
    parser.add_argument("--authorized-keys", default=None,
                        help="JSON {key_id: base64 Ed25519 public key}")
    parser.add_argument("--rate", type=float, default=100.0, help="events/s per user")
    parser.add_argument("--burst", type=float, default=50.0)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
