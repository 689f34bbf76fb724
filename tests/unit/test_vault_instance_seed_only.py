"""The vault-instance pack speaks seed 000 only: no non-seed endpoint of the lab's reference,
no query knob and no leaf name of the reference outside the optional-capability module;
every provisioner path it calls is one of the contract's five."""

from __future__ import annotations

import re
from pathlib import Path

from opsconsole.targets.contract import Contract

from .seed_grep import literal_uses

SYSTEM = Path(__file__).resolve().parents[2] / "src" / "opsconsole" / "systems" / \
    "vault_instances"
#: the reference's private protocol (docs/contracts/provisioner.md, reference-only)
NON_SEED = ("/vault/status", "/vault/start", "/admin/", "pending_s", "timeout_s=")
CAPABILITIES = SYSTEM / "capabilities.py"
#: the probe feeds the console's live instances pane from the reference's operator view
#: (not a check)
EXEMPT = {CAPABILITIES, SYSTEM / "probe.py"}


PATTERN = re.compile("|".join(map(re.escape, NON_SEED)))


def _uses(path: Path, root: Path = SYSTEM) -> list[str]:
    return literal_uses(path, root, PATTERN)


def test_no_non_seed_endpoint_outside_the_capabilities_module() -> None:
    found = [u for path in sorted(SYSTEM.rglob("*.py")) if path not in EXEMPT
             for u in _uses(path)]
    assert not found, found


def test_the_grep_finds_a_non_seed_endpoint(tmp_path: Path) -> None:
    """Negative control: a pack that calls the reference's private API is caught."""
    bad = tmp_path / "offender.py"
    bad.write_text('"""doc /vault/status"""\nA = f"{1}/admin/instances"\n'
                   'B = "/vault/provision?pending_s=1"\nOK = "/vault/health"\n')
    assert sorted(_uses(bad, tmp_path)) == ["offender.py:2: /admin/", "offender.py:3: pending_s"]


def test_no_leaf_name_of_the_reference_and_no_error_text_matched() -> None:
    """The leaf is named by the instance's own server INFO, not ``vault-<member>``; the
    provisioner's verdicts read statuses, never its error strings."""
    pack = (SYSTEM / "packs" / "vault_instance.py").read_text()
    assert "find_hub(self.run.http, self.monitors, name" in pack
    assert not re.search(r'"(NATS account|exceeded)" in', pack)


def test_every_provisioner_path_the_pack_uses_is_in_the_contract() -> None:
    contract = Contract.load("vault-instance")
    declared = {p for _, p in contract.operations()}
    pack = (SYSTEM / "packs" / "vault_instance.py").read_text()
    used = set(re.findall(r'"(/vault/[^"]*)"', pack))
    assert used and used <= declared, used - declared
    assert len(declared) == 5
