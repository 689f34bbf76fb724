"""The ``[ssh]`` section: hosts, their checks, the jump host and forwards."""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)

from ...config_fields import (
    ConfigPath,
    Model,
    Name,
    check_host,
)

# --- SSH host checks: one model per ``kind``; the remote commands live in checks.py.
# Every value below ends up in a remote shell command (always through shlex.quote), so the
# validators are deliberately narrow: a mistake is reported here, naming the key, not on the host.


def _check_remote_path(value: str) -> str:
    if not value.startswith("/"):
        raise ValueError("must be an absolute path on the host")
    if len(value) > 4096 or re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("must not contain control characters (and be at most 4096 chars)")
    return value


def _check_pattern(value: str) -> str:
    if not 1 <= len(value) <= 256 or re.search(r"[\x00-\x1f\x7f]", value):
        raise ValueError("must be 1-256 characters without control characters")
    return value


def _check_unit(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9@_.:\\-]{0,255}", value):
        raise ValueError("must be a systemd unit name (letters, digits, '@', '_', '.', ':', "
                         "'\\', '-'; not starting with a symbol)")
    return value


def _check_package(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9+._:-]{0,127}", value):
        raise ValueError("must be a package name (letters, digits, '+', '.', '_', ':', '-')")
    return value


def _check_version(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9.+~^:_-]{0,63}", value):
        raise ValueError("must be a package version such as 2.10 or 1:5.2-1")
    return value


def _check_mode(value: object) -> object:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"0?[0-7]{3}|[0-7]{4}", value):
        raise ValueError('must be an octal mode string such as "0600" (quoted)')
    return value.zfill(4)


Percent = Annotated[float, Field(ge=0, le=100, strict=True)]
RemotePath = Annotated[str, AfterValidator(_check_remote_path)]


class _SshCheck(Model):
    #: seconds for this check on the host (default: the timeout given to check_hosts)
    timeout: float | None = Field(default=None, gt=0, le=600, strict=True)


class ServiceCheck(_SshCheck):
    """``systemctl is-active``; where systemd is not running, a process check instead."""

    kind: Literal["service"]
    name: Annotated[str, AfterValidator(_check_unit)]
    #: pgrep pattern (process names) used without systemd; default ``^<name>$``
    process: Annotated[str, AfterValidator(_check_pattern)] | None = None


class ProcessCheck(_SshCheck):
    """At least one process matches ``pattern`` (pgrep ERE; ``full``: the whole command line)."""

    kind: Literal["process"]
    pattern: Annotated[str, AfterValidator(_check_pattern)]
    full: StrictBool = False


class PortCheck(_SshCheck):
    """Something listens on TCP ``port`` (any address, IPv4 or IPv6)."""

    kind: Literal["port"]
    port: StrictInt = Field(ge=1, le=65535)


class FileCheck(_SshCheck):
    """``path`` exists (symlinks followed); with ``mode``, its permission bits equal it."""

    kind: Literal["file"]
    path: RemotePath
    mode: str | None = None  # normalised to 4 digits, e.g. "0600"

    @field_validator("mode", mode="before")
    @classmethod
    def _mode(cls, value: object) -> object:
        return _check_mode(value)


class DiskCheck(_SshCheck):
    """Free space of the filesystem holding ``path``, as df's available/(used+available)."""

    kind: Literal["disk"]
    path: RemotePath = "/"
    min_free_percent: Percent
    warn_free_percent: Percent | None = None  # warn (not fail) below this

    @model_validator(mode="after")
    def _order(self) -> DiskCheck:
        if self.warn_free_percent is not None and self.warn_free_percent < self.min_free_percent:
            raise ValueError("warn_free_percent must be >= min_free_percent")
        return self


class MemoryCheck(_SshCheck):
    """MemAvailable / MemTotal from /proc/meminfo."""

    kind: Literal["memory"]
    min_available_percent: Percent
    warn_available_percent: Percent | None = None  # warn (not fail) below this

    @model_validator(mode="after")
    def _order(self) -> MemoryCheck:
        if (self.warn_available_percent is not None
                and self.warn_available_percent < self.min_available_percent):
            raise ValueError("warn_available_percent must be >= min_available_percent")
        return self


class PackageCheck(_SshCheck):
    """Installed per dpkg-query (or rpm), optionally at least ``min_version``."""

    kind: Literal["package"]
    name: Annotated[str, AfterValidator(_check_package)]
    min_version: Annotated[str, AfterValidator(_check_version)] | None = None


_CHECK_KINDS: dict[str, type[_SshCheck]] = {
    "service": ServiceCheck, "process": ProcessCheck, "port": PortCheck, "file": FileCheck,
    "disk": DiskCheck, "memory": MemoryCheck, "package": PackageCheck,
}  # fmt: skip


def _dispatch_check(value: Any, handler: Any, info: ValidationInfo) -> Any:
    """Pick the model by ``kind`` ourselves: pydantic's own tagged-union errors would echo the
    input and put the tag into the key path (``checks[0].port.port``)."""
    if isinstance(value, _SshCheck):
        return value
    if not isinstance(value, dict):
        raise ValueError("must be a table")
    kind = value.get("kind")
    model = _CHECK_KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        raise ValueError("kind must be one of " + ", ".join(_CHECK_KINDS))
    return model.model_validate(value, context=info.context)


SshCheck = Annotated[
    ServiceCheck | ProcessCheck | PortCheck | FileCheck | DiskCheck | MemoryCheck | PackageCheck,
    Field(discriminator="kind"),
    WrapValidator(_dispatch_check),
]


class SshHost(Model):
    name: Name
    host: Annotated[str, AfterValidator(check_host)]
    #: unset: ~/.ssh/config's Port for the host, else 22 (asyncssh decides, as ssh does)
    port: StrictInt | None = Field(default=None, ge=1, le=65535)
    user: str | None = None
    tunnel: str | None = None
    faults: StrictBool = False
    known_hosts: ConfigPath | None = None
    identity_file: ConfigPath | None = None  # else ~/.ssh/config, the agent, ~/.ssh/id_*
    host_key: str | None = Field(
        default=None, pattern=r"^[a-z0-9@.-]+\s+AAAA[A-Za-z0-9+/]+=*(\s+\S.*)?$"
    )
    #: run over one connection by ``systems.ssh.checks.check_hosts``
    checks: list[SshCheck] = []


class SshForward(Model):
    """Local port forward: 127.0.0.1:``local_port`` -> ``remote_host:remote_port`` as seen
    from ``host`` (an ssh host or the jump host); ``local_port`` 0 picks a free port."""

    name: Name
    host: Name
    remote_host: Annotated[str, AfterValidator(check_host)]
    remote_port: StrictInt = Field(ge=1, le=65535)
    local_port: StrictInt = Field(default=0, ge=0, le=65535)


class SshConfig(Model):
    jump_host: SshHost | None = None
    hosts: list[SshHost] = []
    config_file: ConfigPath | None = None
    forwards: list[SshForward] = []

    @model_validator(mode="after")
    def _forwards(self) -> SshConfig:
        known = {h.name for h in self.hosts}
        if self.jump_host is not None:
            known.add(self.jump_host.name)
        problems: list[str] = []
        names: set[str] = set()
        ports: set[int] = set()
        for i, fwd in enumerate(self.forwards):
            if fwd.host not in known:
                problems.append(f"forwards[{i}].host: {fwd.host!r} is not a defined ssh host "
                                "or the jump host")
            if fwd.name in names:
                problems.append(f"forwards[{i}].name: duplicate forward name {fwd.name!r}")
            if fwd.local_port and fwd.local_port in ports:
                problems.append(f"forwards[{i}].local_port: {fwd.local_port} is used twice")
            names.add(fwd.name)
            ports.add(fwd.local_port)
        if problems:
            raise ValueError("; ".join(problems))
        return self

