"""No check in the scenario code records a pass it did not observe.

A literal pass (``outcome(True, ...)``, a ``("pass", ...)`` tuple, ``return "pass", ...``)
cannot fail, whatever the target does; every verdict must be computed from something
the check saw. Conditional expressions (``"pass" if ok else "fail"``) are observations.
"""

from __future__ import annotations

import ast
from pathlib import Path

import opsconsole.scenarios
import opsconsole.systems

SRC = Path(opsconsole.scenarios.__file__).resolve().parents[1]
SYSTEMS = Path(opsconsole.systems.__file__).resolve().parent


def scenario_code() -> list[Path]:
    """The engine's scenario code, every system's packs and its scenario checks. The SSH
    host checks (systems/ssh/checks.py) are a library of remote probes whose verdicts
    come from branches on what the host answered; they have their own negative tests."""
    files = sorted((SRC / "scenarios").rglob("*.py"))
    files += sorted(SYSTEMS.glob("*/packs/*.py"))
    files += [p for p in sorted(SYSTEMS.glob("*/checks.py")) if p.parent.name != "ssh"]
    return files


def literal_passes(source: str, filename: str = "<src>") -> list[str]:
    """``file:line: code`` of every literal pass in ``source``."""
    found: list[tuple[int, str]] = []
    tree = ast.parse(source, filename)
    for node in ast.walk(tree):
        bad = False
        if isinstance(node, ast.Call) and _name(node.func) == "outcome" and node.args:
            first = node.args[0]  # a constant truthy first argument: pass, whatever
            bad = isinstance(first, ast.Constant) and bool(first.value)
        elif isinstance(node, ast.Tuple) and node.elts:
            first = node.elts[0]
            bad = isinstance(first, ast.Constant) and first.value == "pass"
        if bad:
            found.append((node.lineno, f"{filename}:{node.lineno}: "
                                       f"{ast.get_source_segment(source, node)}"))
    return [text for _, text in sorted(found)]


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    return func.attr if isinstance(func, ast.Attribute) else ""


def test_the_detector_finds_each_form() -> None:
    sample = '''
async def method(run):
    await run.record("a", outcome(True, waited=True))
    await run.record("b", ("pass", {"note": "nothing to do"}))
    return "pass", {}
    await run.record("c", outcome(ok, x=1))
    await run.record("d", outcome(False, error="it broke"))
    return ("pass" if ok else "fail"), {}
'''
    assert [f.split(":")[1] for f in literal_passes(sample)] == ["3", "4", "5"]


def test_no_check_in_the_packs_records_a_literal_pass() -> None:
    found = []
    for path in scenario_code():
        found += literal_passes(path.read_text(), str(path.relative_to(SRC)))
    assert found == [], "literal passes:\n" + "\n".join(found)
