"""Last line of defence: known secret values are replaced before anything is written."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from ..config_fields import ConfigError, SecretRef, remember_secret, resolved_secrets
from ..core.results import ScenarioResult

REDACTED = "[redacted]"


#: Shorter values would redact innocent text; real secrets are long random strings.
MIN_SECRET_LEN = 8
#: Inventory keys naming a file whose contents are secret (a seed, a JWT, a private key).
SECRET_FILE_KEYS = ("credentials_file", "nkey_file", "client_key", "identity_file")


class Redactor:
    """Replaces known secret values: the ones given, plus every secret this process has
    resolved so far (:func:`~opsconsole.config_fields.resolved_secrets`), also those read
    after the redactor was made."""

    def __init__(self, secrets: list[str] | None = None, live: bool = True) -> None:
        self._given = {s.strip() for s in (secrets or []) if s.strip()}
        self._live = live
        self._seen = -1
        self.secrets: list[str] = []
        self._refresh()

    def _refresh(self) -> None:
        live = resolved_secrets() if self._live else frozenset()
        if len(live) == self._seen:
            return
        self._seen = len(live)
        self.secrets = sorted({s for s in self._given | live if len(s) >= MIN_SECRET_LEN},
                              key=len, reverse=True)

    @classmethod
    def for_session(cls, session: Any) -> Redactor:
        """Every secret the session's inventory references, read now (an unreadable one
        cannot leak), and the lab's secret files (its tokens, passwords, keys, CA key)."""
        values: list[str] = []
        lab = getattr(session, "lab", None)
        if lab is not None and lab.dir.secrets.is_dir():
            for f in lab.dir.secrets.rglob("*"):
                values += _lines(_read(f)) if f.is_file() else []
        inventory = session.resolved_inventory
        for ref in secret_refs(inventory):
            with contextlib.suppress(ConfigError):
                ref.resolve()  # remembered by resolve() itself
        for path in secret_files(inventory):
            values += _lines(_read(path))
        for value in values:
            remember_secret(value)
        return cls(values)

    def text(self, value: str) -> str:
        self._refresh()
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def obj(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.obj(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.obj(v) for v in value]
        return value

    def results(self, results: list[ScenarioResult]) -> list[ScenarioResult]:
        """``results`` with every known secret replaced, for anything shown or written."""
        return [ScenarioResult.from_json(d) for d in self.obj([r.as_json() for r in results])]


class RedactingFilter(logging.Filter):
    """Rewrites every log record through a redactor before any handler formats it."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = self.redactor.text(message)
        if clean != message:
            record.msg, record.args = clean, None
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            text = self.redactor.text(str(exc))
            if text != str(exc):  # the traceback would quote it: keep only the clean line
                record.msg = f"{record.msg} ({type(exc).__name__}: {text})"
                record.exc_info, record.exc_text = None, None
        return True


def install_log_redaction(redactor: Redactor) -> None:
    """Every handler of the root logger, and Python's last-resort one (used while there is
    none), redacts; call it again after adding handlers (``logging.basicConfig``)."""
    root = logging.getLogger()
    flt = RedactingFilter(redactor)
    for handler in [*root.handlers, logging.lastResort]:
        if handler is not None and not any(isinstance(f, RedactingFilter)
                                           for f in handler.filters):
            handler.addFilter(flt)


def secret_refs(node: Any) -> list[SecretRef]:
    """Every :class:`SecretRef` in a validated model (an inventory or a section)."""
    out: list[SecretRef] = []
    _walk(node, lambda key, value: out.append(value) if isinstance(value, SecretRef) else None)
    return out


def secret_files(node: Any) -> list[Path]:
    """Every path under a key in :data:`SECRET_FILE_KEYS` in a validated model."""
    out: list[Path] = []
    _walk(node, lambda key, value: out.append(value)
          if key in SECRET_FILE_KEYS and isinstance(value, Path) else None)
    return out


def _walk(node: Any, visit: Any, key: str = "") -> None:
    visit(key, node)
    if isinstance(node, BaseModel) and not isinstance(node, SecretRef):
        for name in type(node).model_fields:
            _walk(getattr(node, name), visit, name)
    elif isinstance(node, list | tuple):
        for item in node:
            _walk(item, visit, key)


def _lines(text: str) -> list[str]:
    """A secret file's value and, for multi-line files (creds, PEM keys), each line."""
    lines = [ln.strip() for ln in text.splitlines()]
    return [text, *(ln for ln in lines if ln and not ln.startswith("-"))]


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
        return data.decode().strip() if data.isascii() else ""
    except OSError:
        return ""
