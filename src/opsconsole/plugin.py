"""Everything a plugin needs, in one import (``docs/PLUGINS.md`` documents each name).

A plugin is a distribution with an entry point in the group ``opsconsole.systems`` that
names a :class:`System` instance (or class). The built-in systems use the same names.
"""

from __future__ import annotations

from .config_fields import ConfigPath, HttpUrl, Model, Name, NatsUrl, SecretRef
from .core.events import Event
from .core.state import State
from .core.system import ConfigSection, Health, ProbeContext, Slice, System
from .core.verdict import Verdict
from .errors import UserError
from .faults.kinds import FaultContext, FaultKind, FaultParams, HealSpec, NothingApplied
from .probes.base import Probe
from .scenarios.checks import fresh
from .scenarios.engine import (
    Abort,
    Check,
    Inconclusive,
    Outcome,
    Run,
    Scenario,
    ScenarioOptions,
    option,
    outcome,
)

__all__ = [
    "Abort",
    "Check",
    "ConfigPath",
    "ConfigSection",
    "Event",
    "FaultContext",
    "FaultKind",
    "FaultParams",
    "HealSpec",
    "Health",
    "HttpUrl",
    "Inconclusive",
    "Model",
    "Name",
    "NatsUrl",
    "NothingApplied",
    "Outcome",
    "Probe",
    "ProbeContext",
    "Run",
    "Scenario",
    "ScenarioOptions",
    "SecretRef",
    "Slice",
    "State",
    "System",
    "UserError",
    "Verdict",
    "fresh",
    "option",
    "outcome",
]
