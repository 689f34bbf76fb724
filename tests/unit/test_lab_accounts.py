"""The lab's NATS account helper refuses what is not a change of a lab member's account."""

from __future__ import annotations

from pathlib import Path

import pytest

from opsconsole.config import LabSpec
from opsconsole.lab import Lab
from opsconsole.lab.accounts import apply


@pytest.mark.parametrize(("line", "error"), [
    ("not json", "a request is one line"),
    ('{"member": "bob"}', "a request is one line"),
    ('{"member": "bob", "active": "no"}', "a request is one line"),
    ('["bob", true]', "a request is one line"),
    ('{"member": "mallory", "active": false}', "no member 'mallory' in the lab"),
])
async def test_requests_that_change_no_member_account_are_refused(tmp_path: Path, line: str,
                                                                  error: str) -> None:
    lab = Lab(LabSpec(), state_dir=tmp_path)
    reply = await apply(lab, line)
    assert reply["ok"] is False and reply["error"].startswith(error), reply
    assert not (tmp_path / "nats" / "revoked.json").exists()  # nothing was changed
