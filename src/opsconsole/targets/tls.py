"""TLS client settings shared by every protocol: the config keys and the SSL context.

One model (:class:`TlsClient`) gives every target the same keys (``ca_cert``, ``ca_path``,
``client_cert``, ``client_key``, ``tls_skip_verify``); :func:`ssl_context` turns them into an
:class:`ssl.SSLContext` once per distinct setting. A file that cannot be loaded is a
:class:`~opsconsole.config_fields.ConfigError` naming the key and the cause, in one line.
"""

from __future__ import annotations

import functools
import ssl
from pathlib import Path

from pydantic import StrictBool, model_validator

from ..config_fields import ConfigError, ConfigPath, Model


class TlsClient(Model):
    """The TLS keys of a target (all optional: the system's trust store by default)."""

    ca_cert: ConfigPath | None = None
    ca_path: ConfigPath | None = None
    client_cert: ConfigPath | None = None
    client_key: ConfigPath | None = None
    tls_skip_verify: StrictBool = False

    @model_validator(mode="after")
    def _pair(self) -> TlsClient:
        if (self.client_cert is None) != (self.client_key is None):
            raise ValueError("client_cert and client_key go together")
        return self

    @property
    def tls_configured(self) -> bool:
        return any((self.ca_cert, self.ca_path, self.client_cert, self.tls_skip_verify))

    def ssl_context(self, where: str) -> ssl.SSLContext:
        """The context for this target (``where`` names it in errors, e.g. ``vault``)."""
        files = (self.ca_cert, self.client_cert, self.client_key)
        return _context(where, self.ca_cert, self.ca_path, self.client_cert, self.client_key,
                        self.tls_skip_verify, tuple(_mtime(f) for f in files))


def tls_reason(exc: BaseException) -> str | None:
    """A short cause for a TLS failure (``None`` when ``exc`` is not one)."""
    for err in _chain(exc):
        if isinstance(err, ssl.SSLCertVerificationError):
            why = getattr(err, "verify_message", None) or getattr(
                getattr(err, "certificate_error", None), "verify_message", None)
            return f"TLS certificate not trusted ({why or 'verification failed'})"
        if isinstance(err, ssl.SSLError):
            return f"TLS error ({getattr(err, 'reason', None) or type(err).__name__})"
    return None


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = getattr(cur, "certificate_error", None) or getattr(cur, "os_error", None) \
            or cur.__cause__ or cur.__context__
    return seen


def _mtime(path: Path | None) -> float:
    try:
        return path.stat().st_mtime if path is not None else 0.0
    except OSError:
        return -1.0


@functools.lru_cache(maxsize=64)
def _context(where: str, ca_cert: Path | None, ca_path: Path | None, client_cert: Path | None,
             client_key: Path | None, skip_verify: bool,
             _mtimes: tuple[float, ...]) -> ssl.SSLContext:
    """Built once per setting and file version (a CA rewritten in place is reloaded)."""
    def fail(key: str, path: Path, exc: Exception) -> ConfigError:
        cause = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
        return ConfigError([f"{where}: cannot load {key} {path}: {cause}"])

    ctx = ssl.create_default_context()
    for key, path in (("ca_cert", ca_cert), ("ca_path", ca_path)):
        if path is None:
            continue
        try:
            if key == "ca_cert":
                ctx.load_verify_locations(cafile=str(path))
            elif not path.is_dir():
                raise NotADirectoryError(20, "not a directory")
            else:
                ctx.load_verify_locations(capath=str(path))
        except (OSError, ssl.SSLError) as exc:
            raise fail(key, path, exc) from None
    if client_cert is not None and client_key is not None:
        try:
            ctx.load_cert_chain(str(client_cert), str(client_key))
        except (OSError, ssl.SSLError) as exc:
            raise fail("client_cert", client_cert, exc) from None
    if skip_verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def clear_cache() -> None:
    """Forget built contexts (a test that rewrites a CA file in place)."""
    _context.cache_clear()
