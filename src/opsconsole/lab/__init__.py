"""The embedded lab: a real NATS, OpenBao and moto topology on 127.0.0.1."""

from .state import resolve_state_dir
from .supervisor import Lab, Topology

__all__ = ["Lab", "Topology", "resolve_state_dir"]
