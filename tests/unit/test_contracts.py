"""The console's clients and the lab's references, held to the same page of docs/contracts/.

opsconsole writes its clients from the contract and never imports the references; only
tests see both sides. Each test pins the documented bytes or numbers with literal vectors
(so both sides cannot drift together) and then checks the two independent implementations
agree, or that the reference accepts what the console produced.
"""

from __future__ import annotations

import base64
import json
import time
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.scenarios.packs.vault_instance import control_signed_bytes
from opsconsole_lab.vault_manager import VaultManager, control_message

# ---- Vault Manager: what a control signature covers (vault-manager.md) ------------------


def test_control_signature_covers_the_documented_json_text() -> None:
    assert control_signed_bytes("backup", "n1", 1767225600.5, "bob") == \
        b'{"command":"backup","nonce":"n1","ts":1767225600.5,"user":"bob"}'
    assert control_signed_bytes("shutdown", 'a"b', 1767225600, "\u00e9") == \
        b'{"command":"shutdown","nonce":"a\\"b","ts":1767225600.0,"user":"\\u00e9"}'


@given(command=st.text(max_size=12), nonce=st.text(max_size=40),
       ts=st.floats(allow_nan=False, allow_infinity=False), user=st.text(max_size=20))
def test_console_and_reference_sign_the_same_bytes(command: str, nonce: str, ts: float,
                                                   user: str) -> None:
    assert control_signed_bytes(command, nonce, ts, user) == \
        control_message(command, nonce, ts, user)


def test_reference_manager_accepts_a_command_the_console_signed(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    public = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    manager = VaultManager("bob", tmp_path, {"ops": public})

    def message(user: str, nonce: str) -> bytes:
        ts = float(int(time.time()))
        sig = key.sign(control_signed_bytes("backup", nonce, ts, user))
        return json.dumps({"command": "backup", "nonce": nonce, "ts": ts, "key_id": "ops",
                           "signature": base64.b64encode(sig).decode()}).encode()

    accepted, command = manager.handle_control(message("bob", "n1"))
    assert accepted["ok"] and command == "backup", accepted
    refused, command = manager.handle_control(message("alice", "n2"))  # signed for another
    assert not refused["ok"] and "signature" in refused["error"] and command is None
