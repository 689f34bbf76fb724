"""`opsconsole completion bash|zsh|fish`: a completion script generated from the parser.

shtab turns the argparse tree into each shell's script (sub-commands, flags, choices).
Before that, :func:`annotate` marks which arguments take files or directories and gives
``run``'s ``ID|PACK`` the scenario ids and pack names as its choices (on the parser made
for the script only: ``run`` still accepts whatever ``resolve`` does).
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

SHELLS = ("bash", "zsh", "fish")


def _parsers(parser: argparse.ArgumentParser) -> Iterable[argparse.ArgumentParser]:
    """The parser and every sub-command's parser below it, each once."""
    seen: set[int] = set()
    todo = [parser]
    while todo:
        p = todo.pop()
        if id(p) in seen:
            continue
        seen.add(id(p))
        yield p
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                todo.extend(action.choices.values())


def annotate(parser: argparse.ArgumentParser, selectors: list[str]) -> None:
    """File and directory completion for path arguments; ``selectors`` for ``ID|PACK``."""
    import shtab

    for p in _parsers(parser):
        for action in p._actions:
            if action.dest == "selector":
                action.choices = selectors
            elif action.metavar == "DIR":
                action.complete = shtab.DIRECTORY  # type: ignore[attr-defined]
            elif action.type is Path:
                action.complete = shtab.FILE  # type: ignore[attr-defined]


def completion_script(parser: argparse.ArgumentParser, shell: str,
                      selectors: list[str]) -> str:
    """The completion script of ``parser`` for ``shell`` (one of :data:`SHELLS`)."""
    import shtab

    annotate(parser, selectors)
    return shtab.complete(parser, shell)
