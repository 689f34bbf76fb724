"""The import contracts of pyproject.toml hold, and breaking one fails `make test`.

`make test` and `make lint` run ``lint-imports``; here import-linter runs in process (its
``lint_imports`` entry point, the one the command calls) on the real tree, then on a copy of
the tree with one offending module added, read through grimp's package-finder port so the
copy stands in for the installed packages. No process is started.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from grimp.application.config import settings as grimp_settings
from grimp.application.ports.filesystem import AbstractFileSystem
from grimp.application.ports.packagefinder import AbstractPackageFinder
from importlinter import configuration
from importlinter.application.use_cases import lint_imports

import opsconsole
import opsconsole_lab

configuration.configure()  # import-linter's adapters, as its command sets them up

PYPROJECT = Path(opsconsole.__file__).resolve().parents[2] / "pyproject.toml"
PACKAGES = {"opsconsole": Path(opsconsole.__file__).parent,
            "opsconsole_lab": Path(opsconsole_lab.__file__).parent}


class CopiedTree(AbstractPackageFinder):
    """Finds the root packages in ``root`` instead of on ``sys.path``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def determine_package_directories(self, package_name: str,
                                      file_system: AbstractFileSystem) -> set[str]:
        return {str(self.root / package_name)}


@contextlib.contextmanager
def packages_found_in(root: Path) -> Iterator[None]:
    previous = grimp_settings.PACKAGE_FINDER
    grimp_settings.configure(PACKAGE_FINDER=CopiedTree(root))
    try:
        yield
    finally:
        grimp_settings.configure(PACKAGE_FINDER=previous)


def lint(capsys: pytest.CaptureFixture[str]) -> tuple[bool, str]:
    """(contracts kept, the report with its line wrapping undone)."""
    capsys.readouterr()
    kept = lint_imports(config_filename=str(PYPROJECT), cache_dir=None, no_logo=True)
    return kept, " ".join(capsys.readouterr().out.split())


def test_the_tree_keeps_every_contract(capsys: pytest.CaptureFixture[str]) -> None:
    kept, report = lint(capsys)
    assert kept, report
    assert " 0 broken" in report and "BROKEN" not in report


VIOLATIONS = [
    pytest.param("opsconsole/systems/vault_instances/_offender.py",
                 "from opsconsole_lab.vault_manager import control_message\n",
                 "opsconsole does not import opsconsole_lab",
                 "opsconsole.systems.vault_instances._offender -> opsconsole_lab.vault_manager",
                 id="console-imports-a-reference-encoder"),
    pytest.param("opsconsole/targets/_offender.py",
                 "def client():\n    from opsconsole_lab.sessions import client\n"
                 "    return client\n",
                 "opsconsole does not import opsconsole_lab",
                 "opsconsole.targets._offender -> opsconsole_lab.sessions",
                 id="console-imports-a-reference-lazily"),
    pytest.param("opsconsole_lab/_offender.py", "from opsconsole.lab import Lab\n",
                 "opsconsole_lab does not import opsconsole",
                 "opsconsole_lab._offender -> opsconsole.lab",
                 id="reference-imports-the-launcher"),
    pytest.param("opsconsole/report/_offender.py", "import textual.app\n",
                 "textual is imported only under opsconsole.tui",
                 "opsconsole.report._offender -> textual", id="textual-outside-tui"),
    pytest.param("opsconsole/systems/aws/_offender.py",
                 "from opsconsole.systems.vault.client import VaultApi\n",
                 "systems do not import each other",
                 "opsconsole.systems.aws._offender -> opsconsole.systems.vault.client",
                 id="a-system-imports-another-systems-internals"),
    pytest.param("opsconsole/scenarios/_offender.py",
                 "from opsconsole.systems.vault.client import VaultApi\n",
                 "layers: core, config, engine, systems",
                 "opsconsole.scenarios._offender -> opsconsole.systems.vault.client",
                 id="the-engine-imports-a-system"),
]


@pytest.mark.parametrize(("path", "source", "contract", "offence"), VIOLATIONS)
def test_an_offending_module_breaks_its_contract(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str],
                                                 path: str, source: str, contract: str,
                                                 offence: str) -> None:
    for name, where in PACKAGES.items():
        shutil.copytree(where, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tmp_path / path).write_text(source)
    with packages_found_in(tmp_path):
        kept, report = lint(capsys)
    assert not kept, report
    assert f"{contract}" in report and offence in report, report
    assert " 1 broken" in report, report  # only the contract this module breaks
