"""The console's clients and the lab's references, held to the same page of docs/contracts/.

opsconsole writes its clients from the contract and never imports the references; only
tests see both sides. Each test pins the documented bytes or numbers with literal vectors
(so both sides cannot drift together) and then checks the two independent implementations
agree, or that the reference accepts what the console produced.
"""

from __future__ import annotations

import base64
import json
import math
import time
from pathlib import Path

import blake3
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from opsconsole.systems.mesh import wire as mesh_wire
from opsconsole.systems.previews import cost as sessions_cost
from opsconsole.systems.vault_instances.packs.vault_instance import control_signed_bytes
from opsconsole_lab.mesh import AgentIdentity, Rejected, SignedMessage
from opsconsole_lab.mesh.crdt import END, Op
from opsconsole_lab.sessions import pricing as reference_pricing
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


# ---- sessions: the cost of a run (sessions.md, "Usage counters and cost") ---------------

UNIT_USAGE = {"fargate_billed_seconds": 3600, "task_vcpu": 1, "task_memory_gb": 2,
              "dynamodb_read_units": 1e6, "dynamodb_write_units": 1e6, "sqs_requests": 1e6,
              "ses_emails": 1000, "cloudwatch_requests": 1000}


def test_console_cost_is_the_documented_formula_at_the_dated_prices() -> None:
    prices = sessions_cost.load_prices()
    assert prices.region == "us-east-1" and prices.as_of == "2026-11-21"
    est = sessions_cost.estimate_cost(UNIT_USAGE, prices)
    # config/pricing.toml of 2026-11-21: one unit of everything costs its list price
    assert est["lines"] == {"fargate_vcpu": 0.04048, "fargate_memory": 0.00889,
                            "dynamodb_reads": 0.125, "dynamodb_writes": 0.625, "sqs": 0.4,
                            "ses": 0.1, "cloudwatch": 0.01}
    assert est["total_usd"] == pytest.approx(1.30937)
    assert {k: est[k] for k in ("currency", "prices_as_of", "region", "vcpu_hours",
                                "gb_hours")} == {
        "currency": "USD", "prices_as_of": "2026-11-21", "region": "us-east-1",
        "vcpu_hours": 1.0, "gb_hours": 2.0}
    task_only = sessions_cost.estimate_cost({"fargate_task_seconds": 7200}, prices)
    assert task_only["vcpu_hours"] == 0.5 and task_only["gb_hours"] == 1.0  # 0.25 vCPU, 0.5 GB
    assert sessions_cost.estimate_cost({}, prices)["total_usd"] == 0


counters = st.floats(min_value=0, max_value=1e9, allow_nan=False)


@given(usage=st.fixed_dictionaries({}, optional={
    "fargate_billed_seconds": counters, "fargate_task_seconds": counters,
    "task_vcpu": st.sampled_from([0.25, 0.5, 1, 2]), "task_memory_gb": st.sampled_from([0.5, 1, 4]),
    "dynamodb_read_units": counters, "dynamodb_write_units": counters,
    "sqs_requests": counters, "ses_emails": counters, "cloudwatch_requests": counters}))
def test_console_and_reference_estimate_the_same_cost(usage: dict[str, float]) -> None:
    ours = sessions_cost.estimate_cost(usage)
    theirs = reference_pricing.estimate_cost(usage)
    assert ours["lines"].keys() == theirs["lines"].keys()
    for line, value in ours["lines"].items():
        assert math.isclose(value, theirs["lines"][line], rel_tol=1e-9, abs_tol=1e-8), line
    assert math.isclose(ours["total_usd"], theirs["total_usd"], rel_tol=1e-9, abs_tol=1e-7)


def test_console_price_table_errors_name_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[meta]\nas_of = 2026-01-01\nregion = "us-east-1"\n')
    with pytest.raises(ValueError, match=r"p\.toml: missing key \[fargate\] vcpu_hour"):
        sessions_cost.load_prices(bad)


# ---- mesh: the signed envelope and the gossiped add op (mesh.md) ------------------------


def test_envelope_layout_is_the_documented_one() -> None:
    key, agent = bytes(range(32)), "ab" * 32
    body = mesh_wire.signed_bytes("op", key, agent, 1, b"{}")
    assert body == (b"MSH1\x02op" + key + bytes.fromhex(agent)
                    + b"\x00\x00\x00\x00\x00\x00\x00\x01" + b"\x00\x00\x00\x02" + b"{}")
    env = mesh_wire.parse(body + b"\x07" * 64)
    assert (env.kind, env.public_key, env.agent_id, env.timestamp_ns, env.payload) == \
        ("op", key, agent, 1, b"{}")
    assert env.signed == body and env.message_id == blake3.blake3(body).digest()
    for broken in (body, body + b"\x07" * 65, b"MSH2" + body[4:] + b"\x07" * 64, b"MSH1"):
        with pytest.raises(mesh_wire.Malformed):
            mesh_wire.parse(broken)


@given(kind=st.text(min_size=1, max_size=8), payload=st.binary(max_size=200),
       ts=st.integers(min_value=0, max_value=2**64 - 1))
def test_console_reads_what_a_reference_agent_signs(kind: str, payload: bytes,
                                                    ts: int) -> None:
    agent = AgentIdentity.from_seed(b"contract")
    data = agent.sign(kind, payload, timestamp_ns=ts)
    ours, theirs = mesh_wire.parse(data), SignedMessage.parse(data)
    assert (ours.kind, ours.public_key, ours.agent_id, ours.timestamp_ns, ours.payload,
            ours.signature) == (theirs.kind, theirs.public_key, theirs.agent_id,
                                theirs.timestamp_ns, theirs.payload, theirs.signature)
    assert ours.agent_id == mesh_wire.agent_id_of(ours.public_key) == agent.agent_id
    assert ours.message_id == theirs.message_id


def test_reference_verifies_the_console_envelopes() -> None:
    signer = mesh_wire.Signer()
    own = mesh_wire.agent_id_of(signer.public_key)
    SignedMessage.parse(signer.envelope("op", own, 5, b"x")).verify_signature()  # genuine
    victim = AgentIdentity.from_seed(b"victim")
    claimed = SignedMessage.parse(signer.envelope("op", victim.agent_id, 5, b"x"))
    with pytest.raises(Rejected) as info:
        claimed.verify_signature()
    assert info.value.reason == "key_substitution"


def test_forged_add_op_payload_is_an_add_the_reference_would_apply() -> None:
    payload = mesh_wire.add_op_payload(7, 1_700_000_000_000_000, "forged-x", "x")
    op = Op.from_json(json.loads(payload), author="a" * 64)
    assert op == Op("add", "a" * 64, 7, 1_700_000_000_000_000, "forged-x", 7, END,
                    fields=(("title", "x"),))
