"""Textual lives under tui/ only: the core, probes, lab and CLI import without it."""

from __future__ import annotations

import ast
from pathlib import Path

import opsconsole

SRC = Path(opsconsole.__file__).resolve().parent


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


def test_textual_is_imported_only_under_tui() -> None:
    offenders = [str(p.relative_to(SRC)) for p in sorted(SRC.rglob("*.py"))
                 if "tui" not in p.relative_to(SRC).parts and "textual" in _imports(p)]
    assert offenders == []
