"""Field types and the strict base model every inventory section is built from.

Systems import these to declare their config models (``systems/<name>/config.py``);
:mod:`opsconsole.config` assembles the inventory from them. Problem messages never echo
input values, because any value might be a secret pasted in the wrong place.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from .errors import UserError

# Key names (or ``_<word>`` suffixes) that must only ever appear as ``<key>_env`` / ``<key>_file``.
SECRET_WORDS = frozenset(
    {
        "token", "password", "secret", "secret_key", "secret_access_key", "access_key_id",
        "private_key", "unseal_key", "recovery_key", "root_token", "passphrase",
    }
)  # fmt: skip


class ConfigError(UserError):
    """A config (or a secret it references) is unusable; ``problems`` holds one line each.

    A user error of its own: a command given such an inventory could not run (exit 2)."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("\n".join(problems), exit_code=2)
        self.problems: list[str] = list(problems)


# --------------------------------------------------------------------------- field types


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    """Expand ``~`` and anchor relative paths at the config file's directory."""
    value = value.expanduser()
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        value = Path(os.path.normpath(Path(base) / value))
    return value


def _check_name(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value):
        raise ValueError("must be 1-64 letters, digits, '.', '_' or '-' (not starting with one)")
    return value


def check_host(value: str) -> str:
    if not value or re.search(r"[\s/@]", value):
        raise ValueError("must be a bare host name or address (user and port go in their own keys)")
    return value


def _url(*schemes: str) -> AfterValidator:
    wanted = " or ".join(f"{s}://" for s in schemes)

    def check(value: str) -> str:
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise ValueError("not a valid URL (bad host or port)") from None
        if parts.scheme not in schemes:
            raise ValueError(f"must be a {wanted} URL")
        if not parts.hostname:
            raise ValueError("URL has no host")
        if port == 0:
            raise ValueError("URL port must be 1-65535")
        if parts.username is not None or parts.password is not None:
            raise ValueError("credentials in URLs are refused; use user and <name>_env/_file")
        return value

    return AfterValidator(check)


def _check_region(value: str) -> str:
    if not re.fullmatch(r"[a-z]{2}(-[a-z]+)+-\d+", value):
        raise ValueError("must be an AWS region such as us-east-1")
    return value


def check_leaf_user(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", value):
        raise ValueError("must match ^[a-z][a-z0-9_-]{0,31}$")
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
Name = Annotated[str, AfterValidator(_check_name)]
Region = Annotated[str, AfterValidator(_check_region)]
NatsUrl = Annotated[str, _url("nats", "tls")]
HttpUrl = Annotated[str, _url("http", "https")]


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def fold_refs(data: Any, *names: str) -> Any:
    """Map the file spelling ``<name>_env`` / ``<name>_file`` onto a ``SecretRef`` field."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for name in names:
        ref = {k: data.pop(f"{name}_{k}") for k in ("env", "file") if f"{name}_{k}" in data}
        if ref:
            data[name] = ref
    return data


# --------------------------------------------------------------------------- secrets seen

_RESOLVED: set[str] = set()


def remember_secret(value: str) -> None:
    """Note a secret value read at run time, so every report and log can redact it.

    A JSON object or array (e.g. ``{member: token}``) is remembered leaf by leaf as well,
    since a leak would quote one value, not the document."""
    value = value.strip()
    if not value:
        return
    _RESOLVED.add(value)
    if value[:1] in "{[":
        try:
            doc = json.loads(value)
        except ValueError:
            return
        stack = [doc]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
            elif isinstance(node, str) and node.strip():
                _RESOLVED.add(node.strip())


def resolved_secrets() -> frozenset[str]:
    """Every secret value this process has read so far (for the redactor)."""
    return frozenset(_RESOLVED)


# --------------------------------------------------------------------------- models


class SecretRef(Model):
    """A secret by reference only: the value is read from env/file at use time, never stored."""

    env: str | None = None
    file: ConfigPath | None = None
    _origin: str = PrivateAttr(default="secret")  # "<file>: <key path>" once loaded from a file

    @field_validator("env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
            raise ValueError("must be an environment variable name")
        return value

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        if (self.env is None) == (self.file is None):
            raise ValueError("give exactly one of env or file")
        return self

    def resolve(self) -> str:
        """Read the secret now; a missing or empty source raises :class:`ConfigError`."""
        if self.env is not None:
            value = os.environ.get(self.env, "")
            if not value.strip():
                raise ConfigError(
                    [f"{self._origin}: environment variable {self.env} is not set or empty"]
                )
            remember_secret(value)
            return value
        assert self.file is not None
        try:
            value = self.file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not readable UTF-8 text"
            raise ConfigError(
                [f"{self._origin}: cannot read secret file {self.file}: {reason}"]
            ) from None
        if not value:
            raise ConfigError([f"{self._origin}: secret file {self.file} is empty"])
        remember_secret(value)
        return value

    def __str__(self) -> str:
        return f"${self.env}" if self.env is not None else f"file:{self.file}"

    def __repr__(self) -> str:
        if self.env is not None:
            return f"SecretRef(env={self.env!r})"
        return f"SecretRef(file={str(self.file)!r})"

    def __eq__(self, other: object) -> bool:  # ignore _origin: same reference, same secret
        if not isinstance(other, SecretRef):
            return NotImplemented
        return (self.env, self.file) == (other.env, other.file)



