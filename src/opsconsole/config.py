"""TOML config -> validated, typed inventory, assembled from the registered systems.

Each system (:mod:`opsconsole.core.system`) owns its top-level keys and their models; this
module adds the keys every inventory has (``name``, ``lab``, ``read_only``), builds the
``Inventory`` model from all of them and does the loading. Every user mistake becomes a
one-line problem ``<file>: <dotted.key.path>: <message>`` and :func:`load_config` reports
all of them at once. Problem lines never echo input values, because any value might be a
secret pasted in the wrong place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    create_model,
    field_validator,
)

from .config_env import env_targets_set, fill_from_env, nats_from_env, vault_from_env
from .config_fields import (
    SECRET_WORDS,
    ConfigError,
    ConfigPath,
    Model,
    Region,
    SecretRef,
    check_leaf_user,
)
from .core import system as registry

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - python < 3.11
    import tomli as tomllib  # type: ignore[no-redef]

DEFAULT_CONFIG: Path = Path(__file__).resolve().parents[2] / "config" / "lab.toml"
_TOP = "(top level)"

LeafUser = Annotated[str, AfterValidator(check_leaf_user)]


class LabSpec(Model):
    nats_nodes: StrictInt = Field(default=3, ge=1, le=7)
    leaf_users: list[LeafUser] = ["u1", "u2"]
    vault_nodes: StrictInt = Field(default=3, ge=1, le=7)
    state_dir: ConfigPath | None = None
    aws_region: Region = "us-east-1"
    moto_seed: StrictInt = 42
    # Members who may own a vault instance (each gets a NATS account in the lab).
    members: list[LeafUser] = ["alice", "bob", "carol"]
    # OpenBao nodes in their own network namespaces (real partitions): needs root.
    vault_netns: Literal["auto", "on", "off"] = "auto"
    # The email-to-preview sessions stack: edit containers at most, idle shutdown.
    sessions_capacity: StrictInt = Field(default=4, ge=1, le=32)
    sessions_idle_timeout_s: float = Field(default=20.0, gt=0, le=3600)
    # The vault-instance reference's time scale (the lab's own, stated in the evidence):
    # EC2's modelled pending phase, and the seed's 120 s provisioning limit compressed.
    provision_pending_s: float = Field(default=1.0, gt=0, le=120)
    provision_timeout_s: float = Field(default=5.0, gt=0, le=120)
    # Secured like production: TLS from a lab CA on NATS and OpenBao, every client logs in.
    tls: StrictBool = True

    @field_validator("leaf_users")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("leaf user names must be unique")
        return value



class InventoryBase(Model):
    """The keys every inventory has; the systems' keys are added by :func:`inventory_model`."""

    name: str = Field(min_length=1)
    source: Path | None = None
    lab: LabSpec | None = None
    read_only: StrictBool = False

    def __getattr__(self, key: str) -> Any:
        # A key no loaded system owns (e.g. a plugin that was removed) reads as absent.
        if key.startswith("_"):
            raise AttributeError(key)
        try:
            return super().__getattr__(key)  # type: ignore[misc]
        except AttributeError:
            raise AttributeError(f"inventory has no key {key!r} (no loaded system owns it)"
                                 ) from None


_MODELS: dict[tuple[tuple[str, str], ...], type[InventoryBase]] = {}


@functools.cache
def inventory_model() -> type[InventoryBase]:
    """The ``Inventory`` model: the base keys plus every registered system's sections.

    The same systems give the same class, also after the registry is reloaded (a test that
    installs and removes a plugin), so inventories built before stay instances of it.
    """
    fields: dict[str, Any] = {}
    owners: list[tuple[str, str]] = []
    for system in registry.systems():
        for key, section in system.config_sections().items():
            fields[key] = (section.annotation, section.default)
            owners.append((system.name, key))
    signature = tuple(owners)
    if signature not in _MODELS:
        _MODELS[signature] = create_model("Inventory", __base__=InventoryBase, **fields)
    return _MODELS[signature]


registry.on_reset(inventory_model.cache_clear)


def sections() -> dict[str, registry.ConfigSection]:
    """Every registered config section by key, in system order."""
    return {k: s for system in registry.systems() for k, s in system.config_sections().items()}


def __getattr__(name: str) -> Any:
    if name == "Inventory":  # assembled on first use, once every system is registered
        return inventory_model()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if TYPE_CHECKING:
    Inventory = InventoryBase


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
        key = parts[i]
        if isinstance(key, str) and _is_secret_key(key) and parts[i + 1] in ("env", "file"):
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


def _cross_check(raw: dict[str, Any]) -> Iterator[tuple[Loc, str]]:
    """Checks spanning several tables, done on the raw dict so they run despite schema errors."""
    secs = sections()
    supplied = [s.label or k for k, s in secs.items() if s.lab_supplied and k in raw]
    if "lab" in raw and supplied:
        yield (("lab",), "the embedded lab supplies nats/leaves/vault/aws; remove "
               + ", ".join(supplied))
    targets = [(k, s) for k, s in secs.items() if s.is_target]
    if "lab" not in raw and not any(_present(s, raw.get(k)) for k, s in targets if k in raw):
        labels = ", ".join(s.label or k for k, s in targets)
        yield (), f"define at least one of {labels} (or [lab])"
    for system in registry.systems():
        yield from system.cross_check(raw)


def _present(section: registry.ConfigSection, value: Any) -> bool:
    test = section.is_target
    return bool(test(value)) if callable(test) else value is not None


def names_in(items: Any, *sub: str) -> Iterator[tuple[Loc, str]]:
    """(loc, name) for each ``name`` in a raw list of tables (or their ``sub`` lists)."""
    for i, item in enumerate(items if isinstance(items, list) else []):
        if not isinstance(item, dict):
            continue
        if sub:
            for loc, name in names_in(item.get(sub[0]), *sub[1:]):
                yield (i, sub[0], *loc), name
        elif isinstance(item.get("name"), str):
            yield (i,), item["name"]


def duplicates(what: str, named: Iterator[tuple[Loc, str]]) -> Iterator[tuple[Loc, str]]:
    """A problem for each repeated name (systems use it in their ``cross_check``)."""
    seen: set[str] = set()
    for loc, name in named:
        if name in seen:
            yield (*loc, "name"), f"duplicate {what} name {name!r}"
        seen.add(name)


def _secret_refs(node: Any, loc: Loc) -> Iterator[tuple[Loc, SecretRef]]:
    """Every SecretRef in a validated model, with its key path."""
    if isinstance(node, SecretRef):
        yield loc, node
    elif isinstance(node, BaseModel):
        for key in type(node).model_fields:
            yield from _secret_refs(getattr(node, key), (*loc, key))
    elif isinstance(node, list | tuple):
        for i, item in enumerate(node):
            yield from _secret_refs(item, (*loc, i))
    elif isinstance(node, dict):
        for key, item in node.items():
            yield from _secret_refs(item, (*loc, str(key)))


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



def load_config(path: str | Path) -> InventoryBase:
    """Load and validate ``path``; raise :class:`ConfigError` listing every problem found."""
    label, path = str(path), Path(path)
    raw = _read(path, label)
    found: list[tuple[Loc, str]] = []
    _scan_secrets(raw, (), found)
    try:  # no [vault] / [[nats]] (and no [lab]): the vault CLI's and natscli's environment
        fill_from_env(raw)
    except ConfigError as exc:
        found += [((), p) for p in exc.problems]
    if "source" in raw:
        found.append((("source",), "unknown key"))
    data = {**raw, "source": path.absolute()}
    inv: InventoryBase | None = None
    try:
        inv = inventory_model().model_validate(data, context={"base_dir": path.absolute().parent})
    except ValidationError as exc:
        found += _pydantic_problems(exc)
    found += _cross_check(raw)
    if found or inv is None:
        raise ConfigError(list(dict.fromkeys(f"{label}: {_fmt(loc)}: {msg}" for loc, msg in found)))
    for loc, ref in _secret_refs(inv, ()):
        ref._origin = f"{label}: {_fmt(loc)}_{'env' if ref.env is not None else 'file'}"
    return inv


def env_inventory() -> InventoryBase:
    """An inventory from the environment alone (``VAULT_ADDR``..., ``NATS_URL``...), for
    when no inventory file is found; problems are one line each, naming the variable."""
    raw: dict[str, Any] = {"name": "environment"}
    vault, nats = vault_from_env(), nats_from_env()
    if vault is not None:
        raw["vault"] = vault
    if nats is not None:
        raw["nats"] = nats
    try:
        return inventory_model().model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([f"environment: {_fmt(loc)}: {msg}"
                           for loc, msg in _pydantic_problems(exc)]) from None


def check_config(path: str | Path) -> list[str]:
    """The one-line problems of ``path`` (``[]`` when valid); never raises for user errors."""
    try:
        load_config(path)
    except ConfigError as exc:
        return exc.problems
    return []


__all__: list[str] = [
    "DEFAULT_CONFIG",
    "ConfigError",
    "InventoryBase",
    "LabSpec",
    "SecretRef",
    "check_config",
    "env_inventory",
    "env_targets_set",
    "inventory_model",
    "load_config",
]
