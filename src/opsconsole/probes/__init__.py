"""Health collectors per target kind. Each probe reschedules itself after it finishes
(never overlapping), carries a timeout and backs off on failure; a failure becomes
state (``unreachable: <reason>``), never a crash."""

from .base import Probe, ProbeRunner
from .factory import build_probes

__all__ = ["Probe", "ProbeRunner", "build_probes"]
