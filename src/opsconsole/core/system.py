"""The plugin API: one :class:`System` object per system under test, and the registry.

A system (NATS, Vault, AWS, a mesh, …, or a third-party plugin) is everything opsconsole
knows about one kind of target: its inventory section, the probes that sample it, the
reducer slice that keeps its latest picture, its fault kinds and its scenario packs. It is
published under the entry-point group ``opsconsole.systems``; the built-ins are declared in
``pyproject.toml`` exactly as a plugin would be, so the inventory, the state, the probes,
the fault kinds, the scenario catalogue, the palette and ``scenarios list`` are all
assembled here and no hand-kept list exists anywhere else.

A plugin that cannot be loaded is reported in one line naming its distribution
(:func:`problems`) and skipped; the console still starts. See ``docs/PLUGINS.md``.
"""

from __future__ import annotations

from abc import ABC
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    import aiohttp

    from ..config import Inventory
    from ..faults.kinds import FaultKind
    from ..probes.base import Probe
    from ..scenarios.engine import Scenario
    from .events import Event
    from .state import State

GROUP = "opsconsole.systems"

Loc = tuple[str | int, ...]


@dataclass(frozen=True)
class ConfigSection:
    """One top-level inventory key a system owns.

    ``annotation`` is the pydantic type of the value (``VaultCluster | None``,
    ``list[NatsCluster]``); ``default`` applies when the key is absent. ``label`` is how
    messages spell it (``[vault]``, ``[[nats]]``); ``is_target`` says whether defining it
    counts as "something to test" (an inventory with no target is refused), and
    ``lab_supplied`` whether the embedded lab fills it (so ``[lab]`` excludes it).
    """

    annotation: Any
    default: Any = None
    label: str = ""
    is_target: bool = True
    lab_supplied: bool = False


@dataclass
class ProbeContext:
    """What a system's probes may use: the inventory and the console's shared clients."""

    inventory: Inventory
    http: aiohttp.ClientSession
    aws_credentials: dict[str, str] | None = None
    #: run traffic-generating probes too (relay canaries): on by default on the lab
    canaries: bool = False


@dataclass
class Slice:
    """A system's part of the reducer's state (``state.<name>``); subclass it.

    ``handlers`` maps an event type to a function ``(slice, state, event)`` that updates the
    slice (and may add timeline notes through ``state.note``); the reducer calls exactly
    one handler per event type, so two systems cannot both claim one event type.
    """

    handlers: ClassVar[Mapping[type[Event], Callable[[Any, State, Any], None]]] = {}



def unreachable(reason: str) -> str:
    """The health word of a node that did not answer: ``unreachable: <cause>`` (the
    probe's reason, which may already start with "unreachable")."""
    cause = reason.removeprefix("unreachable").lstrip(": ").strip()
    return f"unreachable: {cause}" if cause else "unreachable"

@dataclass(frozen=True)
class Health:
    """One answer to "is it healthy, what is its role?" for one node of a system.

    The console's panes, the CLI (``vault health``) and ``lab status`` all show this
    answer; nobody re-derives it from raw samples.
    """

    name: str
    healthy: bool
    health: str  # a word for the operator: healthy, unreachable, SEALED, …
    role: str = "—"  # leader, standby, … ("—" when unknown)
    detail: dict[str, str] = field(default_factory=dict)


class System(ABC):
    """Everything opsconsole knows about one kind of system; register one instance.

    Every method has a default that contributes nothing, so a plugin overrides only what it
    has. Methods are called after every entry point is loaded, never at import time.
    """

    #: the entry-point name and the ``state.<name>`` attribute of its slice
    name: ClassVar[str]
    title: ClassVar[str] = ""
    #: where the system sorts among the others (config messages, packs, probes)
    order: ClassVar[int] = 100

    def config_sections(self) -> Mapping[str, ConfigSection]:
        """The inventory keys this system owns.

        Returns:
            ``{key: ConfigSection}``; keys must be unique across systems.
        """
        return {}

    def cross_check(self, raw: Mapping[str, Any]) -> Iterator[tuple[Loc, str]]:
        """Checks that span several keys, run on the raw TOML dict (even when the schema
        failed elsewhere, so every problem is reported at once).

        Args:
            raw: the parsed TOML file, secrets already removed.
        Returns:
            ``(key path, message)`` pairs, one per problem; no values echoed.
        """
        return iter(())

    def state_slice(self) -> Slice | None:
        """A fresh slice of the reducer's state for this system, or None."""
        return None

    def probes(self, ctx: ProbeContext) -> Sequence[Probe]:
        """The probes that sample this system's targets in ``ctx.inventory``.

        Args:
            ctx: the inventory and the shared HTTP session.
        Returns:
            probes to run (possibly none when the inventory has no such target).
        Raises:
            UserError: a section is unusable (one line naming the key).
        """
        return ()

    def fault_kinds(self) -> Sequence[FaultKind]:
        """The fault kinds this system offers (ids must be unique across systems)."""
        return ()

    def packs(self) -> Mapping[str, Sequence[type[Scenario]]]:
        """Scenario packs: ``{pack name: [Scenario classes]}``.

        Two systems may add scenarios to one pack (``lab-faults`` gets NATS and Vault
        scenarios); scenario ids (``pack.name``) must be unique.
        """
        return {}

    def health(self, state: State) -> list[Health]:
        """Per-node health and role from the reducer's state (the only place they are
        decided for this system)."""
        return []


@dataclass(frozen=True)
class LoadProblem:
    """A plugin that could not be loaded: shown in one line, never fatal."""

    distribution: str
    entry_point: str
    reason: str

    def __str__(self) -> str:
        return f"plugin {self.distribution} ({self.entry_point}): {self.reason}"


@dataclass
class Registry:
    systems: dict[str, System]
    problems: list[LoadProblem]
    distributions: dict[str, str] = field(default_factory=dict)  # entry point -> dist


def _distribution(ep: EntryPoint) -> str:
    dist = getattr(ep, "dist", None)
    return getattr(dist, "name", None) or ep.value.split(":")[0].split(".")[0]


def _load(ep: EntryPoint) -> System:
    obj = ep.load()
    if isinstance(obj, type) and issubclass(obj, System):
        obj = obj()
    if not isinstance(obj, System):
        raise TypeError(f"{ep.value} is not an opsconsole System (got {type(obj).__name__})")
    if getattr(obj, "name", None) != ep.name:
        raise ValueError(f"its System.name {getattr(obj, 'name', None)!r} is not the "
                         f"entry-point name {ep.name!r}")
    return obj


_REGISTRY: Registry | None = None
_loading = False


def registry() -> Registry:
    """Load every ``opsconsole.systems`` entry point once (built-ins first, by name).

    Phase one imports the systems' modules (which must not use the registry); phase two,
    with the registry already visible, checks the contributions of each (packs and fault
    kinds import their modules, which may use the inventory model) and drops a plugin that
    clashes with one loaded before it.
    """
    global _REGISTRY, _loading
    if _REGISTRY is not None:
        return _REGISTRY
    if _loading:  # a system's __init__ used the registry while being imported
        raise RuntimeError("the systems registry was used while plugins were being imported "
                           "(import Inventory and friends under TYPE_CHECKING only)")
    _loading = True
    try:
        reg = _import_all()
    finally:
        _loading = False
    _REGISTRY = reg
    _check_contributions(reg)
    return reg


def _import_all() -> Registry:
    reg = Registry({}, [])
    eps = sorted(entry_points(group=GROUP), key=lambda ep: (
        not ep.value.startswith("opsconsole."), ep.name))
    for ep in eps:
        if ep.name in reg.systems:
            reg.problems.append(LoadProblem(_distribution(ep), ep.name,
                                            f"a system named {ep.name!r} is already loaded"))
            continue
        try:
            system = _load(ep)
            clash = _key_clash(system, reg)
        except Exception as exc:  # any failure of foreign code is reported, never fatal
            reg.problems.append(LoadProblem(_distribution(ep), ep.name, _why(exc)))
            continue
        if clash:
            reg.problems.append(LoadProblem(_distribution(ep), ep.name, clash))
            continue
        reg.systems[ep.name] = system
    reg.systems = dict(sorted(reg.systems.items(), key=lambda kv: (kv[1].order, kv[0])))
    reg.distributions = {ep.name: _distribution(ep) for ep in eps}
    return reg


def _why(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


def _key_clash(system: System, taken: Registry) -> str | None:
    keys = {k for s in taken.systems.values() for k in s.config_sections()}
    clash = keys & set(system.config_sections())
    if clash:
        return f"config key {sorted(clash)[0]!r} is already owned by another system"
    return None


def _check_contributions(reg: Registry) -> None:
    faults: set[str] = set()
    ids: set[str] = set()
    dropped = False
    for name, system in list(reg.systems.items()):
        try:
            kinds = {k.id for k in system.fault_kinds()}
            scenarios = {c.id for p in system.packs().values() for c in p}
            clash = (f"fault id {sorted(kinds & faults)[0]!r} is already registered"
                     if kinds & faults else
                     f"scenario id {sorted(scenarios & ids)[0]!r} is already registered"
                     if scenarios & ids else None)
        except Exception as exc:  # foreign code again: report, drop, go on
            clash = _why(exc)
        if clash:
            del reg.systems[name]
            reg.problems.append(LoadProblem(reg.distributions.get(name, name), name, clash))
            dropped = True
            continue
        faults |= kinds
        ids |= scenarios
    if dropped:  # caches filled while the dropped system was still listed
        for hook in _RESET_HOOKS:
            hook()


def systems() -> list[System]:
    """The loaded systems, in registration order."""
    return list(registry().systems.values())


def problems() -> list[LoadProblem]:
    """Plugins that could not be loaded (one line each)."""
    return list(registry().problems)


class AssembledDict(dict):  # type: ignore[type-arg]
    """A dict filled from the registered systems on first read and emptied on
    :func:`reset` (the fault kinds, the packs). Tests may ``monkeypatch.setitem`` it."""

    def __init__(self, fill: Callable[[AssembledDict], None]) -> None:
        super().__init__()
        self._fill_from, self._filled = fill, False
        on_reset(self.reset)

    def _fill(self) -> None:
        if not self._filled:
            self._filled = True
            self._fill_from(self)

    def reset(self) -> None:
        self.clear()
        self._filled = False

    def __getitem__(self, key: Any) -> Any:
        self._fill()
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        self._fill()
        return super().__contains__(key)

    def __iter__(self):  # type: ignore[no-untyped-def]
        self._fill()
        return super().__iter__()

    def __len__(self) -> int:
        self._fill()
        return super().__len__()

    def get(self, key: Any, default: Any = None) -> Any:
        self._fill()
        return super().get(key, default)

    def keys(self):  # type: ignore[no-untyped-def]
        self._fill()
        return super().keys()

    def values(self):  # type: ignore[no-untyped-def]
        self._fill()
        return super().values()

    def items(self):  # type: ignore[no-untyped-def]
        self._fill()
        return super().items()


def reset() -> None:
    """Forget the loaded systems (tests that install or remove a plugin call this)."""
    global _REGISTRY
    _REGISTRY = None
    for hook in _RESET_HOOKS:
        hook()


_RESET_HOOKS: list[Callable[[], None]] = []


def on_reset(hook: Callable[[], None]) -> Callable[[], None]:
    """Register a cache that must be dropped when the registry is reloaded."""
    _RESET_HOOKS.append(hook)
    return hook
