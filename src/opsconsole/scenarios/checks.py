"""What every system's checks share; the checks themselves live with their system
(``systems/<name>/checks.py``): on the live probe state (what the console shows) and on
the system itself (real messages, real writes)."""

from __future__ import annotations

import json
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


def json_or_text(text: str) -> Any:
    """A response body as JSON, or ``{"text": …}`` when it is not JSON (the contract
    check then names it, instead of the client crashing on it)."""
    try:
        return json.loads(text)
    except ValueError:
        return {"text": text[:200]}


class ContractLog:
    """Every answer a client got, validated against ``contract`` as it arrives; what did
    not conform is kept (operation, status, the wrong fields' paths) for the scenario's
    "every answer conforms" check (:meth:`outcome`)."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.responses = 0
        self.violations: list[tuple[str, int, list[str]]] = []

    def check(self, method: str, template: str, status: int, body: Any) -> None:
        self.responses += 1
        found = self.contract.violations(method, template, status, body)
        if found:
            self.violations.append((f"{method} {template}", status, [str(v) for v in found]))

    def outcome(self) -> tuple[str, dict[str, Any]]:
        return (FAIL if self.violations else PASS), {
            "contract": self.contract.name, "responses": self.responses,
            "violations": [f"{op} → {status}: {'; '.join(v)}"
                           for op, status, v in self.violations[:10]]}
