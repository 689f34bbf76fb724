"""TOML config -> validated, typed :class:`Inventory`.

Every user mistake becomes a one-line problem ``<file>: <dotted.key.path>: <message>`` and
:func:`load_config` reports all of them at once. Problem lines never echo input values,
because any value might be a secret pasted in the wrong place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    WrapValidator,
    field_validator,
    model_validator,
)

from .errors import UserError

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_CONFIG: Path = Path(__file__).resolve().parents[2] / "config" / "lab.toml"

# Key names (or ``_<word>`` suffixes) that must only ever appear as ``<key>_env`` / ``<key>_file``.
SECRET_WORDS = frozenset(
    {
        "token", "password", "secret", "secret_key", "secret_access_key", "access_key_id",
        "private_key", "unseal_key", "recovery_key", "root_token", "passphrase",
    }
)  # fmt: skip
_SECRET_FIELDS = frozenset({"password", "token"})  # SecretRef fields of the models below
_TOP = "(top level)"


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


def _check_host(value: str) -> str:
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


def _check_leaf_user(value: str) -> str:
    if not re.fullmatch(r"[a-z][a-z0-9_-]{0,31}", value):
        raise ValueError("must match ^[a-z][a-z0-9_-]{0,31}$")
    return value


ConfigPath = Annotated[Path, AfterValidator(_resolve_path)]
Name = Annotated[str, AfterValidator(_check_name)]
Region = Annotated[str, AfterValidator(_check_region)]
NatsUrl = Annotated[str, _url("nats", "tls")]
HttpUrl = Annotated[str, _url("http", "https")]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _fold_refs(data: Any, *names: str) -> Any:
    """Map the file spelling ``<name>_env`` / ``<name>_file`` onto a ``SecretRef`` field."""
    if not isinstance(data, dict):
        return data
    data = dict(data)
    for name in names:
        ref = {k: data.pop(f"{name}_{k}") for k in ("env", "file") if f"{name}_{k}" in data}
        if ref:
            data[name] = ref
    return data


# --------------------------------------------------------------------------- models


class SecretRef(_Model):
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


class NatsNode(_Model):
    name: Name
    client_url: NatsUrl
    monitor_url: HttpUrl


class NatsCluster(_Model):
    name: Name
    nodes: list[NatsNode] = Field(min_length=1)
    user: str | None = None
    password: SecretRef | None = None
    credentials_file: ConfigPath | None = None

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, data: Any) -> Any:
        return _fold_refs(data, "password")

    @model_validator(mode="after")
    def _auth(self) -> NatsCluster:
        if self.password is not None and self.user is None:
            raise ValueError("password_env/password_file needs user")
        if self.credentials_file is not None and self.user is not None:
            raise ValueError("use either credentials_file or user/password, not both")
        return self


class LeafNode(_Model):
    name: Name
    user: str = Field(min_length=1)
    client_url: NatsUrl
    monitor_url: HttpUrl
    hub: str | None = None


class VaultNode(_Model):
    name: Name
    api_addr: HttpUrl


class VaultCluster(_Model):
    name: Name = "vault"
    nodes: list[VaultNode] = Field(min_length=1)
    token: SecretRef | None = None
    ca_cert: ConfigPath | None = None
    tls_skip_verify: StrictBool = False
    #: seconds between metrics scrapes (the alert rules are evaluated after each)
    scrape_interval: float = Field(5.0, gt=0, le=300)
    #: policies the token must carry (`opsconsole smoke` checks them)
    expected_policies: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, data: Any) -> Any:
        return _fold_refs(data, "token")


class AwsTarget(_Model):
    region: Region
    profile: str | None = None
    endpoint_url: HttpUrl | None = None
    instance_tag_key: str = Field(default="role", min_length=1)
    instance_tag_value: str = "vault-instance"


class ProvisionerTarget(_Model):
    """The vault-instance provisioning API: the `vault-instance` pack and instance health."""

    base_url: HttpUrl
    admin_token: SecretRef | None = None  # lists every instance's health
    member_tokens: SecretRef | None = None  # a JSON object {member: bearer token}
    # a JSON object {member: NATS password}: lets the pack prove terminate revoked them
    member_nats_passwords: SecretRef | None = None
    control_key: SecretRef | None = None  # PEM Ed25519 key the Vault Managers authorise
    control_key_id: str = "lab-operator"
    member: str = "alice"  # the member the pack acts as
    no_account_member: str | None = None  # has a token but no NATS account (negative check)

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, data: Any) -> Any:
        return _fold_refs(data, "admin_token", "member_tokens", "control_key",
                          "member_nats_passwords")


# --- SSH host checks: one model per ``kind``; the remote commands live in targets/ssh_checks.py.
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


class _SshCheck(_Model):
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


class SshHost(_Model):
    name: Name
    host: Annotated[str, AfterValidator(_check_host)]
    port: StrictInt = Field(default=22, ge=1, le=65535)
    user: str | None = None
    tunnel: str | None = None
    faults: StrictBool = False
    known_hosts: ConfigPath | None = None
    identity_file: ConfigPath | None = None  # else ~/.ssh/config, the agent, ~/.ssh/id_*
    host_key: str | None = Field(
        default=None, pattern=r"^[a-z0-9@.-]+\s+AAAA[A-Za-z0-9+/]+=*(\s+\S.*)?$"
    )
    #: run over one connection by ``targets.ssh_checks.check_hosts``
    checks: list[SshCheck] = []


class SshForward(_Model):
    """Local port forward: 127.0.0.1:``local_port`` -> ``remote_host:remote_port`` as seen
    from ``host`` (an ssh host or the jump host); ``local_port`` 0 picks a free port."""

    name: Name
    host: Name
    remote_host: Annotated[str, AfterValidator(_check_host)]
    remote_port: StrictInt = Field(ge=1, le=65535)
    local_port: StrictInt = Field(default=0, ge=0, le=65535)


class SshConfig(_Model):
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


class LabSpec(_Model):
    nats_nodes: StrictInt = Field(default=3, ge=1, le=7)
    leaf_users: list[Annotated[str, AfterValidator(_check_leaf_user)]] = ["u1", "u2"]
    vault_nodes: StrictInt = Field(default=3, ge=1, le=7)
    state_dir: ConfigPath | None = None
    aws_region: Region = "us-east-1"
    moto_seed: StrictInt = 42
    # Members who may own a vault instance (each gets a NATS account in the lab).
    members: list[Annotated[str, AfterValidator(_check_leaf_user)]] = ["alice", "bob", "carol"]
    # OpenBao nodes in their own network namespaces (real partitions): needs root.
    vault_netns: Literal["auto", "on", "off"] = "auto"
    # The email-to-preview sessions stack: edit containers at most, idle shutdown.
    sessions_capacity: StrictInt = Field(default=4, ge=1, le=32)
    sessions_idle_timeout_s: float = Field(default=60.0, gt=0, le=3600)

    @field_validator("leaf_users")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("leaf user names must be unique")
        return value


class SessionsTarget(_Model):
    """The email-to-preview sessions stack: its router (ALB) URL, for the `sessions` pack."""

    base_url: HttpUrl


class Inventory(_Model):
    name: str = Field(min_length=1)
    source: Path | None = None
    lab: LabSpec | None = None
    nats: list[NatsCluster] = []
    leaves: list[LeafNode] = []
    vault: VaultCluster | None = None
    aws: AwsTarget | None = None
    provisioner: ProvisionerTarget | None = None
    sessions: SessionsTarget | None = None
    ssh: SshConfig = SshConfig()
    read_only: StrictBool = False


# --------------------------------------------------------------------------- loading

Loc = tuple[str | int, ...]


def _fmt(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            key = part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"'
            out += f".{key}" if out else key
    return out or _TOP


def _is_secret_key(key: str) -> bool:
    k = key.lower()
    if k.endswith(("_env", "_file")):
        return False
    return any(k == w or k.endswith("_" + w) for w in SECRET_WORDS)


def _scan_secrets(node: Any, loc: Loc, out: list[tuple[Loc, str]]) -> None:
    """Drop inline secrets (and the second half of env+file pairs) in place, noting each."""
    if isinstance(node, list):
        for i, item in enumerate(node):
            _scan_secrets(item, (*loc, i), out)
        return
    if not isinstance(node, dict):
        return
    for key in list(node):
        if _is_secret_key(key):
            del node[key]
            out.append(
                ((*loc, key), f"inline secret refused; reference it with {key}_env or {key}_file")
            )
        elif key.endswith("_file") and _is_secret_key(key[:-5]) and f"{key[:-5]}_env" in node:
            del node[key]
            base = key[:-5]
            out.append(((*loc, base), f"give only one of {base}_env or {base}_file"))
        else:
            _scan_secrets(node[key], (*loc, key), out)


def _error_loc(loc: Loc) -> Loc:
    """Show SecretRef errors under the key the user wrote: vault.token.env -> vault.token_env."""
    parts = list(loc)
    for i in range(len(parts) - 1):
        if parts[i] in _SECRET_FIELDS and parts[i + 1] in ("env", "file"):
            return (*parts[:i], f"{parts[i]}_{parts[i + 1]}", *parts[i + 2 :])
    return tuple(parts)


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key missing",
    "model_type": "must be a table",
    "model_attributes_type": "must be a table",
    "list_type": "must be an array",
}


def _pydantic_problems(exc: ValidationError) -> Iterator[tuple[Loc, str]]:
    for err in exc.errors(include_url=False, include_input=False, include_context=False):
        msg = _MESSAGES.get(err["type"]) or err["msg"].removeprefix("Value error, ")
        if err["type"] == "string_pattern_mismatch" and err["loc"][-1:] == ("host_key",):
            msg = "must be an OpenSSH public key line, e.g. 'ssh-ed25519 AAAA...'"
        yield _error_loc(err["loc"]), msg


def _names(items: Any, *sub: str) -> Iterator[tuple[Loc, str]]:
    """(loc, name) for each ``name`` in a raw list of tables (or their ``sub`` lists)."""
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        if sub:
            for loc, name in _names(item.get(sub[0]), *sub[1:]):
                yield (i, sub[0], *loc), name
        elif isinstance(item.get("name"), str):
            yield (i,), item["name"]


def _cross_check(raw: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """Checks spanning several tables, done on the raw dict so they run despite schema errors."""
    sections = [
        f"[{k}]" if k in ("vault", "aws") else f"[[{k}]]"
        for k in ("nats", "leaves", "vault", "aws")
        if k in raw
    ]
    if "lab" in raw and sections:
        yield (
            ("lab",),
            ("the embedded lab supplies nats/leaves/vault/aws; remove " + ", ".join(sections)),
        )
    ssh = raw.get("ssh") if isinstance(raw.get("ssh"), dict) else {}
    if "lab" not in raw and not {"nats", "vault", "aws"} & raw.keys() and not ssh.get("hosts"):
        yield (), "define at least one of [[nats]], [vault], [aws], [[ssh.hosts]] (or [lab])"

    vault = raw.get("vault") if isinstance(raw.get("vault"), dict) else {}
    jump = ssh.get("jump_host") if isinstance(ssh.get("jump_host"), dict) else {}
    hosts = [(("ssh", "jump_host"), jump)] if jump else []
    hosts += [
        (("ssh", "hosts", i), h)
        for i, h in enumerate(ssh.get("hosts") or [])
        if isinstance(h, dict)
    ]
    groups: list[tuple[str, list[tuple[Loc, str]]]] = [
        ("NATS node", [(("nats", *loc), n) for loc, n in _names(raw.get("nats"), "nodes")]),
        ("leaf", [(("leaves", *loc), n) for loc, n in _names(raw.get("leaves"))]),
        ("vault node", [(("vault", "nodes", *loc), n) for loc, n in _names(vault.get("nodes"))]),
        ("ssh host", [(loc, h["name"]) for loc, h in hosts if isinstance(h.get("name"), str)]),
    ]
    for what, named in groups:
        seen: set[str] = set()
        for loc, name in named:
            if name in seen:
                yield (*loc, "name"), f"duplicate {what} name {name!r}"
            seen.add(name)

    nats_nodes = {n for _, n in groups[0][1]}
    for i, leaf in enumerate(raw.get("leaves") or []):
        hub = leaf.get("hub") if isinstance(leaf, dict) else None
        if isinstance(hub, str) and hub not in nats_nodes:
            yield ("leaves", i, "hub"), f"hub {hub!r} is not a NATS node name"

    tunnels = {h["name"]: h.get("tunnel") for _, h in hosts if isinstance(h.get("name"), str)}
    for loc, host in hosts:
        tunnel = host.get("tunnel")
        if not isinstance(tunnel, str):
            continue
        if tunnel not in tunnels:
            yield (*loc, "tunnel"), f"tunnel {tunnel!r} is not a defined ssh host or the jump host"
            continue
        hop, seen_hops = tunnel, {host.get("name")}
        while isinstance(hop, str) and hop in tunnels and hop not in seen_hops:
            seen_hops.add(hop)
            hop = tunnels[hop]
        if hop in seen_hops:
            yield (*loc, "tunnel"), "tunnel chain loops back on itself"


def _read(path: Path, label: str) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except (OSError, ValueError) as exc:  # ValueError: e.g. a NUL byte in the path
        raise ConfigError(
            [f"{label}: cannot read: {getattr(exc, 'strerror', None) or exc}"]
        ) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError([f"{label}: cannot read: not UTF-8 text"]) from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        msg = str(exc)
        m = re.fullmatch(r"(.*) \(at line (\d+), column (\d+)\)", msg, re.DOTALL)
        if m:
            where, msg = f"line {m[2]}", f"{m[1]} (column {m[3]})"
        else:
            msg = msg.replace(" (at end of document)", " (at end of file)")
            where = f"line {max(1, len(text.splitlines()))}"
        raise ConfigError([f"{label}: {where}: {msg}"]) from None


def load_config(path: str | Path) -> Inventory:
    """Load and validate ``path``; raise :class:`ConfigError` listing every problem found."""
    label, path = str(path), Path(path)
    raw = _read(path, label)
    found: list[tuple[Loc, str]] = []
    _scan_secrets(raw, (), found)
    if "source" in raw:
        found.append((("source",), "unknown key"))
    data = {**raw, "source": path.absolute()}
    inv: Inventory | None = None
    try:
        inv = Inventory.model_validate(data, context={"base_dir": path.absolute().parent})
    except ValidationError as exc:
        found += _pydantic_problems(exc)
    found += _cross_check(raw)
    if found or inv is None:
        raise ConfigError(list(dict.fromkeys(f"{label}: {_fmt(loc)}: {msg}" for loc, msg in found)))
    refs = [(f"nats[{i}].password", c.password) for i, c in enumerate(inv.nats)]
    refs.append(("vault.token", inv.vault.token if inv.vault else None))
    for key, ref in refs:
        if ref is not None:
            ref._origin = f"{label}: {key}_{'env' if ref.env is not None else 'file'}"
    return inv


def check_config(path: str | Path) -> list[str]:
    """The one-line problems of ``path`` (``[]`` when valid); never raises for user errors."""
    try:
        load_config(path)
    except ConfigError as exc:
        return exc.problems
    return []


__all__: list[str] = [
    "DEFAULT_CONFIG",
    "AwsTarget",
    "ConfigError",
    "Inventory",
    "LabSpec",
    "LeafNode",
    "NatsCluster",
    "NatsNode",
    "SecretRef",
    "SshConfig",
    "SshHost",
    "VaultCluster",
    "VaultNode",
    "check_config",
    "load_config",
]
