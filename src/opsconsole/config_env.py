"""Targets from the ecosystem's own environment, as the vault CLI and natscli read it.

When an inventory has no ``[vault]`` (or no inventory file is found at all), ``VAULT_ADDR``
with ``VAULT_TOKEN`` / ``~/.vault-token``, ``VAULT_CACERT``, ``VAULT_CAPATH``,
``VAULT_CLIENT_CERT`` / ``VAULT_CLIENT_KEY``, ``VAULT_SKIP_VERIFY`` and ``VAULT_NAMESPACE``
describe the cluster; when it has no ``[[nats]]``, ``NATS_URL`` (comma-separated),
``NATS_CREDS``, ``NATS_USER`` + ``NATS_PASSWORD``, ``NATS_CA`` / ``NATS_CERT`` / ``NATS_KEY``
and ``NATS_CONTEXT`` do. Secrets stay references (``token_env = "VAULT_TOKEN"``). A value
that cannot be used is a one-line problem naming the variable.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .config_fields import ConfigError, remember_secret

VAULT_VARS = ("VAULT_ADDR", "BAO_ADDR")
NATS_VARS = ("NATS_URL", "NATS_CONTEXT")
_TRUE = {"1", "true", "yes", "on", "t"}


def _get(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return name, value
    return None


def _node_name(url: str, i: int) -> str:
    host = urlsplit(url).hostname or "node"
    name = "".join(c if c.isalnum() or c in "._-" else "-" for c in host)[:48]
    return f"{name}-{urlsplit(url).port}" if urlsplit(url).port else f"{name}-{i + 1}"


def _url(var: str, value: str, schemes: tuple[str, ...]) -> str:
    parts = urlsplit(value)
    try:
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        raise ConfigError([f"${var}: not a valid URL (bad port)"]) from None
    if parts.scheme not in schemes or not parts.hostname:
        wanted = " or ".join(f"{s}://" for s in schemes)
        raise ConfigError([f"${var}: must be a {wanted} URL"])
    if parts.username or parts.password:
        raise ConfigError([f"${var}: credentials in URLs are refused"])
    return value.rstrip("/")


def vault_from_env(env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """A raw ``[vault]`` table from the vault CLI's variables (``None``: none set)."""
    env = os.environ if env is None else env
    addr = _get(env, *VAULT_VARS)
    if addr is None:
        return None
    url = _url(addr[0], addr[1], ("http", "https"))
    section: dict[str, Any] = {"name": "vault", "nodes": [{"name": _node_name(url, 0),
                                                           "api_addr": url}]}
    token = _get(env, "VAULT_TOKEN", "BAO_TOKEN")
    if token is not None:
        section["token_env"] = token[0]
    elif (Path.home() / ".vault-token").is_file():
        section["token_file"] = str(Path.home() / ".vault-token")
    for var, key in (("VAULT_CACERT", "ca_cert"), ("VAULT_CAPATH", "ca_path"),
                     ("VAULT_CLIENT_CERT", "client_cert"), ("VAULT_CLIENT_KEY", "client_key"),
                     ("VAULT_NAMESPACE", "namespace")):
        found = _get(env, var, var.replace("VAULT_", "BAO_"))
        if found is not None:
            section[key] = found[1]
    skip = _get(env, "VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY")
    if skip is not None:
        section["tls_skip_verify"] = skip[1].lower() in _TRUE
    return section


def nats_from_env(env: Mapping[str, str] | None = None) -> list[dict[str, Any]] | None:
    """A raw ``[[nats]]`` list from natscli's variables (``None``: none set)."""
    env = os.environ if env is None else env
    found = _get(env, "NATS_URL")
    context = env.get("NATS_CONTEXT", "").strip() or None
    if found is None and context is None:
        return None
    if found is not None:
        urls = [_url("NATS_URL", u.strip(), ("nats", "tls")) for u in found[1].split(",")
                if u.strip()]
    else:
        url = read_context(context or "", "$NATS_CONTEXT").get("url")
        if not url:
            raise ConfigError([f"$NATS_CONTEXT: context {context!r} has no url"])
        urls = [_url("NATS_CONTEXT url", u.strip(), ("nats", "tls")) for u in url.split(",")]
    cluster: dict[str, Any] = {"name": "nats", "nodes": [
        {"name": _node_name(u, i), "client_url": u} for i, u in enumerate(urls)]}
    if context is not None:
        cluster["context"] = context
    if _get(env, "NATS_CREDS"):
        cluster["credentials_file"] = env["NATS_CREDS"].strip()
    elif _get(env, "NATS_NKEY"):
        cluster["nkey_file"] = env["NATS_NKEY"].strip()
    elif _get(env, "NATS_USER"):
        cluster["user"] = env["NATS_USER"].strip()
        if _get(env, "NATS_PASSWORD"):
            cluster["password_env"] = "NATS_PASSWORD"
    for var, key in (("NATS_CA", "ca_cert"), ("NATS_CERT", "client_cert"),
                     ("NATS_KEY", "client_key")):
        if _get(env, var):
            cluster[key] = env[var].strip()
    return [cluster]


def fill_from_env(raw: dict[str, Any], env: Mapping[str, str] | None = None) -> list[str]:
    """Add ``[vault]`` / ``[[nats]]`` from the environment to a raw inventory that has
    neither them nor ``[lab]``; the names of what was added (for ``info``)."""
    if "lab" in raw:
        return []
    added = []
    if "vault" not in raw and (vault := vault_from_env(env)) is not None:
        raw["vault"] = vault
        added.append("vault")
    if "nats" not in raw and (nats := nats_from_env(env)) is not None:
        raw["nats"] = nats
        added.append("nats")
    return added


def env_targets_set(env: Mapping[str, str] | None = None) -> bool:
    """Whether the environment names a Vault or NATS target (and not the lab's own
    ``lab env`` export, which sets ``OPSCONSOLE_LAB_DIR``: then the lab is meant)."""
    env = os.environ if env is None else env
    if env.get("OPSCONSOLE_LAB_DIR", "").strip():
        return False
    return _get(env, *VAULT_VARS, *NATS_VARS) is not None


# ------------------------------------------------------------------ natscli contexts


@dataclass(frozen=True)
class NatsContext:
    """A natscli context file, read (its secrets remembered for redaction)."""

    name: str
    path: Path
    data: dict[str, Any]

    def get(self, key: str) -> str | None:
        value = self.data.get(key)
        return value if isinstance(value, str) and value else None


def nats_config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "nats"




def read_context(name: str, where: str) -> NatsContext:
    path = nats_config_dir() / "context" / f"{name}.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError([f"{where}: natscli context {name!r} not found ({path})"]) from None
    except (OSError, ValueError) as exc:
        cause = getattr(exc, "strerror", None) or "not a JSON object"
        raise ConfigError([f"{where}: natscli context {name!r} unreadable ({path}): {cause}"]
                          ) from None
    if not isinstance(data, dict):
        raise ConfigError([f"{where}: natscli context {name!r} is not a JSON object ({path})"])
    for key in ("password", "token"):
        if isinstance(data.get(key), str):
            remember_secret(data[key])
    return NatsContext(name, path, data)


