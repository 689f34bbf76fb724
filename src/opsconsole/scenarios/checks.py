"""What every system's checks share; the checks themselves live with their system
(``systems/<name>/checks.py``): on the live probe state (what the console shows) and on
the system itself (real messages, real writes)."""

from __future__ import annotations

import time
from typing import Any

from ..core.verdict import FAIL, PASS
from ..targets.contract import Contract

FRESH_S = 5.0  # a sample older than this says nothing about "now"


def fresh(ts: float) -> bool:
    """Whether a sample taken at ``ts`` (wall clock) still says something about now."""
    return time.time() - ts < FRESH_S


def contract_outcome(contract: Contract, method: str, path: str, status: int, body: Any,
                     **evidence: Any) -> tuple[str, dict[str, Any]]:
    """Pass when ``body`` is what ``contract`` declares for ``METHOD path`` answering
    ``status``; fail naming every wrong field's path (``$.a.b: 'x' is not of type
    'integer'``). The check computes its verdict from the response itself."""
    found = contract.violations(method, path, status, body)
    where = {"contract": contract.name, "operation": f"{method.upper()} {path}",
             "status": status}
    if found:
        return FAIL, {**where, "violations": [str(v) for v in found[:10]], **evidence}
    return PASS, {**where, **evidence}
