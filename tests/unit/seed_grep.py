"""The grep behind the seed-only tests: where a module's string literals (docstrings left
out) name an endpoint or knob that is not the seed's."""

from __future__ import annotations

import ast
import re
from pathlib import Path


def string_literals(path: Path) -> list[tuple[int, str]]:
    """Every string literal of the module (f-string parts too), docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = {id(node.body[0].value) for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef |
                          ast.AsyncFunctionDef)
            and node.body and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)}
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs]


def literal_uses(path: Path, root: Path, pattern: re.Pattern[str]) -> list[str]:
    """``file:line: match`` for every match of ``pattern`` in the module's literals."""
    return [f"{path.relative_to(root)}:{line}: {m.group(0)}"
            for line, text in string_literals(path) for m in pattern.finditer(text)]
