"""Faults: kinds, the durable ledger, and the manager that injects and always heals."""

from .kinds import REGISTRY, FaultContext, FaultKind
from .ledger import FaultLedger, FaultRecord, user_state_dir
from .manager import FaultManager

__all__ = ["REGISTRY", "FaultContext", "FaultKind", "FaultLedger", "FaultManager",
           "FaultRecord", "user_state_dir"]
