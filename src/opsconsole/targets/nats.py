"""The one way opsconsole opens a NATS connection: credentials and TLS from the inventory and
natscli's conventions.

:class:`NatsClientAuth` holds the keys a cluster or leaf may carry (password, token, nkey
seed file, ``.creds`` file, TLS, a natscli ``context``); :func:`connect` resolves them and
calls ``nats.connect`` with them. Every probe, canary, check, pack, load worker and fault
goes through here, so a secured deployment is met with its credentials everywhere.

natscli contexts are JSON files ``$XDG_CONFIG_HOME/nats/context/<name>.json`` (keys ``url``,
``user``, ``password``, ``token``, ``creds``, ``nkey``, ``cert``, ``key``, ``ca``); the
one used is named by the inventory's ``context`` key or ``$NATS_CONTEXT``.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator

from ..config_env import NatsContext, read_context
from ..config_fields import ConfigError, ConfigPath, SecretRef, fold_refs, remember_secret
from .tls import TlsClient


class _EofNoise(logging.Filter):
    """asyncio warns "returning true from eof_received() has no effect when using ssl" for
    every TLS connection nats-py closes (its protocol returns True there): harmless, and
    on the operator's terminal it drowns real messages."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("returning true from eof_received()")


logging.getLogger("asyncio").addFilter(_EofNoise())

#: What nats-py raises when a server cannot be reached or refuses us.
NATS_CONNECT_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, ssl.SSLError)


class NatsClientAuth(TlsClient):
    """The credential and TLS keys of a NATS target; subclasses add the login ``user``."""

    password: SecretRef | None = None
    token: SecretRef | None = None
    nkey_file: ConfigPath | None = None
    credentials_file: ConfigPath | None = None
    #: a natscli context by name (its url/credentials/TLS fill what is not written here)
    context: str | None = Field(default=None, min_length=1, max_length=128)

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, data: Any) -> Any:
        return fold_refs(data, "password", "token")

    @field_validator("context")
    @classmethod
    def _context_name(cls, value: str | None) -> str | None:
        if value is not None and ("/" in value or value.startswith(".")):
            raise ValueError("must be a natscli context name, not a path")
        return value

    @model_validator(mode="after")
    def _one_method(self) -> NatsClientAuth:
        methods = [k for k, v in (("password", self.password), ("token", self.token),
                                  ("nkey_file", self.nkey_file),
                                  ("credentials_file", self.credentials_file)) if v is not None]
        if len(methods) > 1:
            raise ValueError("give one of " + ", ".join(methods) + ", not several")
        if self.password is not None and self.login_user is None:
            raise ValueError("password_env/password_file needs the user key")
        if self.credentials_file is not None and self.login_user is not None:
            raise ValueError("use either credentials_file or user/password, not both")
        return self

    @property
    def login_user(self) -> str | None:
        """The user name sent with the password (subclasses name the key)."""
        return None

    def describe_auth(self) -> str:
        """How this target authenticates, secret-free (for ``lab status`` and ``info``)."""
        if self.credentials_file is not None:
            return "creds"
        if self.nkey_file is not None:
            return "nkey"
        if self.token is not None:
            return "token"
        if self.password is not None:
            return "password"
        if self.context is not None:
            return f"context {self.context}"
        return "none"


class NatsCredentials(NatsClientAuth):
    """Credentials on their own (``user`` is the login): what a caller hands to a worker
    process (:meth:`of` + ``model_dump``), or builds for a server the inventory does not
    describe (e.g. a vault instance's own leaf)."""

    user: str | None = None

    @property
    def login_user(self) -> str | None:
        return self.user

    @classmethod
    def of(cls, auth: NatsClientAuth) -> NatsCredentials:
        fields = {k: getattr(auth, k) for k in NatsClientAuth.model_fields}
        return cls.model_construct(**fields, user=auth.login_user)

    def dump(self) -> dict[str, Any]:
        """JSON-safe keys (paths as strings, secrets by reference) for another process."""
        out = self.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        for key in ("password", "token"):
            ref = out.pop(key, None)
            for kind, value in (ref or {}).items():
                out[f"{key}_{kind}"] = value
        return out


@dataclass(frozen=True)
class NatsEndpoint:
    """A server URL with the credentials and TLS to use there; ``where`` names it in errors
    (e.g. ``nats central/n1``)."""

    url: str
    auth: NatsClientAuth | None = None
    where: str = "nats"

    async def connect(self, **options: Any) -> Any:
        return await connect(self.auth, self.url, self.where, **options)

    def ssl(self) -> ssl.SSLContext | None:
        """The TLS context for this server (``None``: plain)."""
        if self.auth is None:
            return ssl.create_default_context() if self.url.startswith("tls:") else None
        ctx = read_context(self.auth.context, self.where) if self.auth.context else None
        return _tls(self.auth, ctx, self.url, self.where)  # no secret is read for this


def as_endpoint(value: NatsEndpoint | str) -> NatsEndpoint:
    """An endpoint as given, or a bare URL (no credentials: an open server)."""
    return value if isinstance(value, NatsEndpoint) else NatsEndpoint(value)


class NatsConnectError(ConnectionError):
    """A NATS server could not be reached or refused us: ``cause`` in a few words."""

    def __init__(self, where: str, url: str, cause: str) -> None:
        super().__init__(f"{where} ({url}): {cause}")
        self.where, self.url, self.cause = where, url, cause


def _readable(path: Path, where: str, key: str) -> Path:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        cause = getattr(exc, "strerror", None) or "not readable text"
        raise ConfigError([f"{where}: cannot read {key} {path}: {cause}"]) from None
    for line in text.splitlines():  # the seed and JWT of a .creds/.nk file are secrets
        line = line.strip()
        if line and not line.startswith(("-", "*")):
            remember_secret(line)
    return path


def _creds(path: Path, where: str, key: str) -> Path:
    """A ``.creds`` file that is readable, holds a user JWT and a seed, and has not expired
    (the server would only say "Authorization Violation")."""
    _readable(path, where, key)
    text = path.read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines()]
    try:
        token = lines[lines.index("-----BEGIN NATS USER JWT-----") + 1]
        body = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, IndexError):
        raise ConfigError([f"{where}: {key} {path}: not a NATS .creds file (no user JWT)"]
                          ) from None
    if "-----BEGIN USER NKEY SEED-----" not in lines:
        raise ConfigError([f"{where}: {key} {path}: not a NATS .creds file (no seed)"])
    expires = claims.get("exp") if isinstance(claims, dict) else None
    if isinstance(expires, int | float) and expires <= time.time():
        when = datetime.fromtimestamp(expires, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        raise ConfigError([f"{where}: {key} {path}: the user JWT expired at {when}"])
    return path


def connect_options(auth: NatsClientAuth, url: str, where: str) -> dict[str, Any]:
    """The ``nats.connect`` keyword arguments for ``auth`` at ``url`` (``where`` names the
    target in errors, e.g. ``nats[0]``). Secrets are read now; nothing is cached."""
    opts: dict[str, Any] = {}
    ctx = read_context(auth.context, where) if auth.context else None
    user = auth.login_user or (ctx.get("user") if ctx else None)
    if auth.password is not None:
        opts.update(user=user, password=auth.password.resolve())
    elif auth.token is not None:
        opts["token"] = auth.token.resolve()
    elif auth.nkey_file is not None:
        opts["nkeys_seed"] = str(_readable(auth.nkey_file, where, "nkey_file"))
    elif auth.credentials_file is not None:
        opts["user_credentials"] = str(_creds(auth.credentials_file, where, "credentials_file"))
    elif ctx is not None:
        if ctx.get("creds"):
            opts["user_credentials"] = str(_creds(Path(ctx.get("creds") or "").expanduser(),
                                                  where, f"context {ctx.name}: creds"))
        elif ctx.get("nkey"):
            opts["nkeys_seed"] = str(_readable(Path(ctx.get("nkey") or "").expanduser(),
                                               where, f"context {ctx.name}: nkey"))
        elif ctx.get("token"):
            opts["token"] = ctx.get("token")
        elif user:
            opts.update(user=user, password=ctx.get("password") or "")
    tls = _tls(auth, ctx, url, where)
    if tls is not None:
        opts["tls"] = tls
        host = urlsplit(url).hostname
        if host:
            opts["tls_hostname"] = host
    return opts


def _tls(auth: NatsClientAuth, ctx: NatsContext | None, url: str,
         where: str) -> ssl.SSLContext | None:
    if ctx is not None and not auth.tls_configured and (ctx.get("ca") or ctx.get("cert")):
        merged = TlsClient(ca_cert=_path(ctx.get("ca")), client_cert=_path(ctx.get("cert")),
                           client_key=_path(ctx.get("key")))
        return merged.ssl_context(f"{where} (context {ctx.name})")
    if auth.tls_configured or urlsplit(url).scheme == "tls":
        return auth.ssl_context(where)
    return None


def _path(value: str | None) -> Path | None:
    return Path(value).expanduser() if value else None




async def connect(auth: NatsClientAuth | None, url: str, where: str, **options: Any) -> Any:
    """``nats.connect(url)`` with ``auth``'s credentials and TLS; ``options`` are nats-py's.

    A first connection that fails raises :class:`NatsConnectError` with the real cause
    (nats-py reports it to ``error_cb`` and raises only "no servers available")."""
    import nats

    seen: list[BaseException] = []
    connected = False
    user_cb = options.pop("error_cb", None)

    async def on_error(exc: Exception) -> None:
        if not connected:  # the causes of a first connect that fails
            seen.append(exc)
        if user_cb is not None:
            await user_cb(exc)

    opts = connect_options(auth, url, where) if auth is not None else {}
    try:
        nc = await nats.connect(url, error_cb=on_error, **opts, **options)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        raise NatsConnectError(where, url, connect_reason(exc, seen)) from exc
    connected = True
    return nc


def connect_reason(exc: BaseException, seen: list[BaseException] | None = None) -> str:
    """Why a NATS connection failed, in a few words and without secrets (``seen``: what
    nats-py reported to ``error_cb`` on the way: the real causes)."""
    from .tls import tls_reason

    if isinstance(exc, NatsConnectError):
        return exc.cause
    for err in [*(seen or []), exc]:
        tls = tls_reason(err)
        if tls:
            return tls
    for err in [*(seen or []), exc]:
        low = str(err).lower()
        if "authorization violation" in low:
            return "authorization violation (wrong or refused credentials)"
        if "expired" in low:
            return "credentials expired"
    if seen:
        exc = seen[-1]
    text = str(exc).strip().strip("'\"")
    low = text.lower()
    if "authorization violation" in low:
        return "authorization violation (wrong or refused credentials)"
    if "expired" in low:
        return "credentials expired"
    if isinstance(exc, TimeoutError):
        return "timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, OSError):
        return exc.strerror or type(exc).__name__
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]
