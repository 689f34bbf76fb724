"""The reference Vault Manager in process: fuzzed events, signed control messages."""

from __future__ import annotations

import base64
import json
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from opsconsole_lab.vault_manager import VaultManager

from ...helpers import sign_control

json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() |
                           st.text(max_size=30),
                           lambda inner: st.lists(inner, max_size=4) |
                           st.dictionaries(st.text(max_size=10), inner, max_size=4),
                           max_leaves=20)
events = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"id": st.one_of(st.text(max_size=200), json_values),
                           "type": st.one_of(st.sampled_from(VaultManager.HANDLERS),
                                             st.text(max_size=20), json_values)},
                          optional={"payload": json_values}).map(
        lambda d: json.dumps(d).encode()))



@settings(max_examples=settings.default.max_examples * 3 // 2,
          suppress_health_check=[HealthCheck.too_slow])
@given(data=events)
def test_fuzzed_events_are_always_answered_or_rejected(tmp_path_factory, data: bytes) -> None:
    manager = VaultManager("u1", tmp_path_factory.mktemp("vm"), {}, rate=1e9, burst=1e9)
    response = manager.handle_event(data)
    assert set(response) >= {"id", "type", "ok", "at"}
    assert ("result" in response) == response["ok"] == ("error" not in response)
    json.dumps(response)  # always serialisable


def test_control_needs_an_authorised_fresh_unreplayed_signature(tmp_path) -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    pub = base64.b64encode(key.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode()
    manager = VaultManager("u1", tmp_path, {"ops": pub})
    ok, cmd = manager.handle_control(sign_control(key, "backup", "u1", nonce="n1"))
    assert ok["ok"] and cmd == "backup" and (tmp_path / "backup-1.json").exists()
    for data, why in ((sign_control(key, "backup", "u1", nonce="n1"), "replayed"),
                      (sign_control(other, "shutdown", "u1"), "signature"),
                      (sign_control(key, "shutdown", "u2"), "signature"),  # signed for another user
                      (sign_control(key, "shutdown", "u1", ts=time.time() - 600), "stale"),
                      (sign_control(key, "reboot", "u1"), "unknown command"),
                      (b"{}", "signature")):
        response, cmd = manager.handle_control(data)
        assert not response["ok"] and why in response["error"] and cmd is None, response


