"""Where opsconsole looks for things: the inventory search path and `opsconsole info`.

The inventory is, in this order: ``--config FILE``; ``$OPSCONSOLE_CONFIG`` (set to a file
that does not exist is an error, never a silent fallback); ``$XDG_CONFIG_HOME/opsconsole/
config.toml`` when it exists; the built-in ``config/lab.toml`` (the embedded lab, or the
lab's defaults when installed without the source tree). ``opsconsole info`` shows that
path with the entry chosen and why, the state, ledger, key and lab directories, and the
versions of opsconsole, nats-server, bao and textual. It prints paths, never contents.
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import __version__
from .config import DEFAULT_CONFIG, ConfigError, env_targets_set, load_config
from .errors import UserError
from .settings import env_name, settings

ENV = env_name("config")  # OPSCONSOLE_CONFIG
#: how long `nats-server --version` / `bao version` may take before info gives up on it
VERSION_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Candidate:
    """One entry of the inventory search path."""

    source: str  # "--config", "$OPSCONSOLE_CONFIG", ...
    path: Path | None  # None: not given / not set
    exists: bool
    chosen: bool
    why: str

    def as_json(self) -> dict[str, Any]:
        return {**asdict(self), "path": None if self.path is None else str(self.path)}


@dataclass(frozen=True)
class ConfigSearch:
    """The search path, the file chosen (None: the lab's built-in defaults, no file) and
    the error that stops any command from loading an inventory."""

    candidates: list[Candidate] = field(default_factory=list)
    chosen: Path | None = None
    error: str | None = None
    #: no file found, but VAULT_ADDR / NATS_URL / NATS_CONTEXT name the targets
    from_environment: bool = False

    def path(self) -> Path | None:
        """The inventory file to load; the error as a one-line UserError (exit 2)."""
        if self.error:
            raise UserError(self.error, exit_code=2)
        return self.chosen


def config_search(flag: Path | None) -> ConfigSearch:
    """The inventory search path as it stands in this environment, first match wins."""
    s = settings()
    env = s.config.expanduser() if s.config is not None else None
    entries: list[tuple[str, Path | None]] = [
        ("--config", flag), (f"${ENV}", env),
        ("$XDG_CONFIG_HOME/opsconsole/config.toml", s.user_config_file),
        ("built-in default", DEFAULT_CONFIG)]
    from_env = env_targets_set()
    error = None
    if flag is not None:
        chosen, reason = 0, "given on the command line"
    elif env is not None:
        chosen, reason = 1, "set"
        if not env.exists():
            error = (f"environment variable {ENV}={env}: no such file (point it at an "
                     "inventory TOML, or unset it)")
            chosen = -1
    elif s.user_config_file.exists():
        chosen, reason = 2, "exists"
    elif from_env:
        chosen, reason = -2, "the vault/NATS environment"
    else:
        chosen, reason = 3, "nothing above applies"
        if not DEFAULT_CONFIG.exists():
            reason += "; not installed, so the embedded lab's built-in defaults"
    candidates = []
    env_why = ("chosen: VAULT_ADDR / NATS_URL / NATS_CONTEXT are set (as the vault CLI and "
               "natscli read them)" if chosen == -2 else
               "not consulted" if error or chosen in (0, 1, 2) else "not set")
    for i, (source, path) in enumerate(entries):
        if i == 3:
            candidates.append(Candidate("vault/NATS environment", None, from_env,
                                        chosen == -2, env_why))
        exists = path is not None and path.exists()
        if path is None:
            why = "not given" if i == 0 else "not set"
        elif i == chosen:
            why = f"chosen: {reason}" + ("" if exists or i == 3 else "; no such file")
        elif i == 1 and error:
            why = "set, but no such file: an error"
        elif error or (chosen >= 0 and i > chosen) or (chosen == -2 and i == 3):
            why = "not consulted"
        else:
            why = "no such file"
        candidates.append(Candidate(source, path, exists, i == chosen, why))
    picked = entries[chosen][1] if chosen >= 0 else None  # -1: the error, -2: environment
    if chosen == 3 and not DEFAULT_CONFIG.exists():
        picked = None
    return ConfigSearch(candidates, picked, error, from_environment=chosen == -2)


def config_path(flag: Path | None) -> Path | None:
    """The inventory file a command loads (None: the lab's built-in defaults)."""
    return config_search(flag).path()


# ------------------------------------------------------------------ versions
def binary_version(locate: Callable[[], str], *argv: str) -> dict[str, Any]:
    """``{"version", "path", "error"}`` of a server binary run with ``argv``; a missing
    binary, a crash or a hang is an ``error`` in words, never an exception."""
    try:
        path = locate()
    except UserError as exc:
        return {"version": None, "path": None, "error": f"not found: {exc}"}
    command = " ".join([Path(path).name, *argv])
    try:
        proc = subprocess.run([path, *argv], capture_output=True, text=True, check=False,
                              stdin=subprocess.DEVNULL, timeout=VERSION_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        error = f"`{command}` gave no answer within {VERSION_TIMEOUT_S:g} s"
        return {"version": None, "path": path, "error": error}
    except OSError as exc:
        return {"version": None, "path": path,
                "error": f"cannot run `{command}`: {exc.strerror or exc}"}
    lines = (proc.stdout.strip() or proc.stderr.strip()).splitlines()
    if proc.returncode != 0 or not lines:
        detail = f": {lines[0]}" if lines else ""
        return {"version": None, "path": path,
                "error": f"`{command}` exited {proc.returncode}{detail}"}
    found = re.search(r"\bv?(\d+\.\d+\.\d+[\w.+-]*)", lines[0])
    return {"version": found[1] if found else lines[0], "path": path, "error": None}


def package_version(name: str) -> dict[str, Any]:
    """``{"version", "error"}`` of an installed Python distribution (not imported)."""
    try:
        return {"version": importlib.metadata.version(name), "error": None}
    except importlib.metadata.PackageNotFoundError:
        return {"version": None, "error": f"not found: {name} is not installed"}


def versions() -> dict[str, dict[str, Any]]:
    """opsconsole's, the lab servers' and textual's versions."""
    from .lab import binaries

    return {"opsconsole": {"version": __version__, "error": None},
            "nats-server": binary_version(binaries.nats_server, "--version"),
            "bao": binary_version(binaries.bao, "version"),
            "textual": package_version("textual")}


# ---------------------------------------------------------------------- info
def _user_state() -> dict[str, Any]:
    """The user state dir, the fault ledger and the signing key, as the ledger and the
    signer compute them (the state dir is created, 0700, as any command does)."""
    from .faults.ledger import FaultLedger, user_state_dir
    from .report.signing import KEY_FILE

    try:
        state = user_state_dir()
        ledger = FaultLedger().path
    except OSError as exc:
        where = settings().user_state_dir
        return {"user_state_dir": str(where), "fault_ledger": None, "signing_key": None,
                "state_error": f"{where}: cannot create: {exc.strerror or exc}"}
    return {"user_state_dir": str(state), "fault_ledger": str(ledger),
            "signing_key": str(state / KEY_FILE), "state_error": None}


def _lab_dir(search: ConfigSearch, state_dir: str | None) -> tuple[str | None, list[str]]:
    """The lab state dir the chosen inventory gives (None without a [lab] section) and
    the inventory's problems."""
    from .config import LabSpec
    from .lab import Lab

    if search.error:
        return None, [search.error]
    try:
        if search.from_environment:
            from .config import env_inventory

            env_inventory()  # its problems, if any; an environment inventory has no lab
            return None, []
        spec = LabSpec() if search.chosen is None else load_config(search.chosen).lab
    except ConfigError as exc:
        return None, exc.problems
    return (None if spec is None else str(Lab(spec, state_dir=state_dir).dir.root)), []


def info_report(config: Path | None, state_dir: str | None) -> dict[str, Any]:
    """Everything `opsconsole info` shows; ``problems`` non-empty means exit 2."""
    search = config_search(config)
    lab_dir, problems = _lab_dir(search, state_dir)
    return {"config": {"chosen": None if search.chosen is None else str(search.chosen),
                       "builtin_defaults": (search.chosen is None and not search.error
                                            and not search.from_environment),
                       "from_environment": search.from_environment,
                       "search_path": [c.as_json() for c in search.candidates],
                       "problems": problems},
            **_user_state(), "lab_state_dir": lab_dir, "versions": versions()}


def render_info(report: dict[str, Any]) -> list[str]:
    """The human form of :func:`info_report`, one line each."""
    cfg = report["config"]
    lines = ["config search path (the first that applies wins):"]
    width = max(len(c["source"]) for c in cfg["search_path"])
    for c in cfg["search_path"]:
        where = f"{c['path']}: " if c["path"] else ""
        lines.append(f"  {'→' if c['chosen'] else ' '} {c['source']:<{width}}  {where}{c['why']}")
    chosen = cfg["chosen"] or ("the vault/NATS environment" if cfg.get("from_environment")
                               else "the embedded lab's built-in defaults"
                               if cfg["builtin_defaults"] else "none (see the problems)")
    lab = report["lab_state_dir"] or ("unknown (the config has problems)" if cfg["problems"]
                                      else "none (the config has no [lab] section)")
    rows = [("config", chosen), ("user state dir", report["user_state_dir"]),
            ("fault ledger", report["fault_ledger"] or report["state_error"]),
            ("signing key", report["signing_key"] or report["state_error"]),
            ("lab state dir", lab)]
    lines += [f"{name:<16}{value}" for name, value in rows]
    lines.append("versions:")
    for name, v in report["versions"].items():
        text = v["version"] or v["error"]
        if v["version"] and v.get("path"):
            text += f" ({v['path']})"
        lines.append(f"  {name:<13}{text}")
    return lines
