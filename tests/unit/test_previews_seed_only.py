"""The previews pack speaks seed 001 only: no non-seed endpoint of the lab's reference
outside the optional-capability module, and every endpoint it calls is in the contract."""

from __future__ import annotations

import re
from pathlib import Path

from opsconsole.targets.contract import Contract

from .seed_grep import literal_uses

PREVIEWS = Path(__file__).resolve().parents[2] / "src" / "opsconsole" / "systems" / "previews"
#: the reference's private protocol (docs/contracts/sessions.md, "Control API")
NON_SEED = ("/api/email", "/api/messages", "/api/scale", "/api/status", "/api/orphans",
            "/api/workspaces", "/api/sessions", "/api/info", "/api/events", "/api/cost",
            "/internal/")
CAPABILITIES = PREVIEWS / "capabilities.py"
#: the probe feeds the console's live pane from the lab's status API (not a check)
EXEMPT = {CAPABILITIES, PREVIEWS / "probe.py"}


PATTERN = re.compile("(?<!/hermes)(" + "|".join(map(re.escape, NON_SEED)) + ")")


def _uses(path: Path, root: Path = PREVIEWS) -> list[str]:
    return literal_uses(path, root, PATTERN)


def test_no_non_seed_endpoint_outside_the_capabilities_module() -> None:
    found = [u for path in sorted(PREVIEWS.rglob("*.py")) if path not in EXEMPT
             for u in _uses(path)]
    assert not found, found


def test_the_grep_finds_a_non_seed_endpoint(tmp_path: Path) -> None:
    """Negative control: a pack that calls the reference's private API is caught."""
    bad = tmp_path / "offender.py"
    bad.write_text('"""doc /api/status"""\nURL = f"{1}/api/email"\nOK = "/hermes/api/sessions"\n')
    assert _uses(bad, tmp_path) == ["offender.py:2: /api/email"]


def test_no_local_signal_or_process_kill_in_the_pack() -> None:
    """Container failure is a fault kind the target supports, never os.kill of a pid."""
    for path in sorted(PREVIEWS.rglob("*.py")):
        text = path.read_text()
        assert not re.search(r"\bos\.kill\b|\bsignal\.SIG", text), path


def test_every_router_path_the_client_uses_is_in_the_contract() -> None:
    contract = Contract.load("previews")
    declared = {p for _, p in contract.operations()}
    client = (PREVIEWS / "client.py").read_text() + (PREVIEWS / "packs" / "sessions.py"
                                                     ).read_text()
    used = set(re.findall(r'"(/(?:api|hermes|session|ws)[^"]*)"', client))
    templates = {re.sub(r"\{[^}]+\}", "{id}", u.split("?")[0]).replace("{id}/{id}",
                                                                       "{id}/{path}")
                 for u in used}
    assert templates <= declared, templates - declared
    assert {"POST", "GET"} == {m for m, _ in contract.operations()}
