"""Last line of defence: known secret values are replaced before anything is written."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from ..core.results import ScenarioResult

REDACTED = "[redacted]"


class Redactor:
    def __init__(self, secrets: list[str] | None = None) -> None:
        # Short values would redact innocent text; lab secrets are long random strings.
        self.secrets = sorted({s for s in (secrets or []) if len(s) >= 8}, key=len, reverse=True)

    @classmethod
    def for_session(cls, session: Any) -> Redactor:
        values: list[str] = []
        lab = getattr(session, "lab", None)
        if lab is not None and lab.dir.secrets.is_dir():
            for f in lab.dir.secrets.iterdir():
                values.append(_read(f))
        vault = session.resolved_inventory.vault
        if vault is not None and vault.token is not None:
            with contextlib.suppress(Exception):  # an unresolvable token cannot leak
                values.append(vault.token.resolve())
        return cls([v for v in values if v])

    def text(self, value: str) -> str:
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


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
        return data.decode().strip() if data.isascii() else ""
    except OSError:
        return ""
