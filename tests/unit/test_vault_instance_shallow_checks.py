"""Negative controls of the checks that were shallow (issue 18, Deliver 3): the AMI
policy, the instance type and architecture, MessageSpace access, and every field of the
health structure, degraded and recovered. Each verdict function is the pack's own."""

from __future__ import annotations

import time

from opsconsole.systems.vault_instances.checks import (
    SpaceAccess,
    ami_policy_outcome,
    architecture_outcome,
    degraded_outcome,
    health_fields_outcome,
    instance_type_outcome,
    recovered_outcome,
    space_closed_outcome,
    space_open_outcome,
)
from opsconsole.systems.vault_instances.config import AmiPolicy

IMAGE = {"ImageId": "ami-1", "OwnerId": "123456789012", "Architecture": "arm64",
         "Tags": [{"Key": "hardened", "Value": "cis-level-1"},
                  {"Key": "role", "Value": "vault-instance"}]}
POLICY = AmiPolicy(owners=["123456789012"], image_ids=["ami-1"],
                   required_tags={"hardened": "cis-level-1", "role": "*"})


# ---------------------------------------------------------------------- AMI policy

def test_ami_policy_passes_on_a_conforming_image_and_names_each_violation() -> None:
    assert ami_policy_outcome(POLICY, "ami-1", IMAGE)[0] == "pass"
    status, ev = ami_policy_outcome(POLICY, "ami-2", {**IMAGE, "ImageId": "ami-2"})
    assert status == "fail" and ev["violations"] == ["image ami-2 is not an allowed image id"]
    status, ev = ami_policy_outcome(POLICY, "ami-1", {**IMAGE, "OwnerId": "999"})
    assert status == "fail" and ev["violations"] == ["owner 999 is not an allowed owner"]
    status, ev = ami_policy_outcome(POLICY, "ami-1", {**IMAGE, "Tags": [
        {"Key": "hardened", "Value": "no"}]})
    assert status == "fail" and ev["violations"] == [
        "tag hardened is 'no', not 'cis-level-1'", "tag role missing"]
    # a name that merely says "hardened" is no longer enough
    named = {**IMAGE, "Name": "opsconsole-hardened-arm64", "Tags": []}
    assert ami_policy_outcome(POLICY, "ami-1", named)[0] == "fail"


def test_ami_policy_absent_or_image_unreadable_is_unknown() -> None:
    for policy in (None, AmiPolicy()):
        status, ev = ami_policy_outcome(policy, "ami-1", IMAGE)
        assert status == "unknown" and "declares no ami_policy" in ev["reason"]
    assert ami_policy_outcome(POLICY, "ami-1", None)[0] == "unknown"
    assert ami_policy_outcome(POLICY, "ami-9", None)[0] == "fail"  # the id alone is wrong


def test_owner_alias_matches_too() -> None:
    policy = AmiPolicy(owners=["amazon"])
    assert ami_policy_outcome(policy, "ami-1", {**IMAGE, "ImageOwnerAlias": "amazon"})[0] \
        == "pass"


# ------------------------------------------------------ instance type, architecture

def test_instance_type_is_checked_against_the_inventory() -> None:
    assert instance_type_outcome(["t4g.nano"], "t4g.nano")[0] == "pass"
    status, ev = instance_type_outcome(["t4g.nano"], "m5.large")
    assert status == "fail" and "m5.large" in ev["reason"]
    assert instance_type_outcome(None, "t4g.nano")[0] == "unknown"
    assert instance_type_outcome([], "t4g.nano")[0] == "unknown"


def test_architecture_of_the_image_and_the_instance() -> None:
    assert architecture_outcome("arm64", IMAGE, {"ImageId": "ami-1"})[0] == "pass"
    status, ev = architecture_outcome("arm64", {**IMAGE, "Architecture": "x86_64"}, {})
    assert status == "fail" and "image architecture is x86_64" in ev["reason"]
    status, ev = architecture_outcome("arm64", IMAGE, {"Architecture": "x86_64"})
    assert status == "fail" and "instance architecture is x86_64" in ev["reason"]
    assert architecture_outcome("arm64", None, {"ImageId": "ami-1"})[0] == "unknown"


# ------------------------------------------------------------------- MessageSpace

SPACE = "MessageSpace.alice.abcd"
CROSSED = SpaceAccess("alice", "accepted", to_local=3, from_local=2)


def test_message_space_open_needs_both_directions_and_no_refusal() -> None:
    assert space_open_outcome(SPACE, CROSSED)[0] == "pass"
    for broken, why in ((SpaceAccess("alice", "accepted", 0, 2), "from central"),
                        (SpaceAccess("alice", "accepted", 2, 0), "from the instance"),
                        (SpaceAccess("alice", "AuthorizationError: x"), "log in"),
                        (SpaceAccess("alice", "accepted", 1, 1, ("nats: Permissions "
                                                                 "Violation for Publish",)),
                         "refused")):
        status, ev = space_open_outcome(SPACE, broken)
        assert status == "fail" and why in ev["reason"], broken


def test_message_space_closed_fails_when_another_member_gets_across() -> None:
    refused = SpaceAccess("bob", "accepted", violations=("nats: Permissions Violation",))
    status, ev = space_closed_outcome(SPACE, CROSSED, refused)
    assert status == "pass" and ev["refused"] is True
    assert space_closed_outcome(SPACE, CROSSED, SpaceAccess("bob", "accepted"))[0] == "pass"
    for leak, what in ((SpaceAccess("bob", "accepted", to_local=1), "published into"),
                       (SpaceAccess("bob", "accepted", from_local=1), "received from")):
        status, ev = space_closed_outcome(SPACE, CROSSED, leak)
        assert status == "fail" and what in ev["reason"] and SPACE in ev["reason"]


def test_message_space_closed_without_controls_is_unknown() -> None:
    status, ev = space_closed_outcome(SPACE, CROSSED, None, "no other member")
    assert status == "unknown" and ev["reason"] == "no other member"
    status, ev = space_closed_outcome(SPACE, CROSSED, SpaceAccess("bob", "Authorization"))
    assert status == "unknown" and "could not log in" in ev["reason"]
    # the member's own exchange did not cross: "bob got nothing" proves nothing
    status, ev = space_closed_outcome(SPACE, SpaceAccess("alice", "accepted"),
                                      SpaceAccess("bob", "accepted"))
    assert status == "unknown" and "positive control" in ev["reason"]


# ------------------------------------------------------------------------ health

NOW = time.time()


def _health(uptime: float = 3, **over) -> dict:
    body = {"status": "healthy", "uptime_seconds": uptime,
            "local_nats": {"status": "running", "connections": 1},
            "central_nats": {"status": "connected", "latency_ms": 0.4},
            "vault_manager": {"status": "healthy", "memory_mb": 40.5, "cpu_percent": 1.5},
            "last_event_at": NOW - 0.5}
    body.update(over)
    return body


def test_health_fields_pass_on_plausible_reads() -> None:
    assert health_fields_outcome(_health(3), _health(4), NOW - 1, NOW)[0] == "pass"
    iso = _health(4, last_event_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(NOW)))
    assert health_fields_outcome(_health(3), iso, NOW - 1, NOW)[0] == "pass"
    future = _health(4, last_event_at="2100-01-01T00:00:00Z")
    assert health_fields_outcome(_health(3), future, NOW - 1, NOW)[0] == "fail"


def test_health_fields_name_each_wrong_field() -> None:
    cases = {
        "uptime_seconds did not increase": (_health(3), _health(3)),
        "second.uptime_seconds is '4'": (_health(3), _health("4")),
        "first.uptime_seconds is -1": (_health(-1), _health(4)),
        "second.local_nats.connections is 0": (_health(3), _health(4, local_nats={
            "status": "running", "connections": 0})),
        "second.local_nats.connections is True": (_health(3), _health(4, local_nats={
            "status": "running", "connections": True})),
        "second.central_nats.latency_ms is None": (_health(3), _health(4, central_nats={
            "status": "connected", "latency_ms": None})),
        "second.central_nats.latency_ms is 9000": (_health(3), _health(4, central_nats={
            "status": "connected", "latency_ms": 9000})),
        "last_event_at is None": (_health(3), _health(4, last_event_at=None)),
        "last_event_at is 'yesterday'": (_health(3), _health(4, last_event_at="yesterday")),
        "is not between the event sent": (_health(3), _health(4, last_event_at=NOW - 60)),
        "second.vault_manager.memory_mb is 0": (_health(3), _health(4, vault_manager={
            "status": "healthy", "memory_mb": 0, "cpu_percent": 1})),
        "second.vault_manager.cpu_percent is -1": (_health(3), _health(4, vault_manager={
            "status": "healthy", "memory_mb": 10, "cpu_percent": -1})),
    }
    for text, (first, second) in cases.items():
        status, ev = health_fields_outcome(first, second, NOW - 1, NOW)
        assert status == "fail", text
        assert any(text in w for w in ev["wrong"]), (text, ev["wrong"])


DEGRADED = {"status": "degraded", "uptime_seconds": 9,
            "local_nats": {"status": "running", "connections": 1},
            "central_nats": {"status": "disconnected", "latency_ms": None},
            "vault_manager": {"status": "healthy"}, "details": ["central NATS disconnected"]}


def test_degraded_needs_the_central_link_down_and_the_rest_up() -> None:
    assert degraded_outcome(503, DEGRADED)[0] == "pass"
    assert degraded_outcome(503, {**DEGRADED, "central_nats": {"status": "disconnected"}})[0] \
        == "pass"  # latency absent when disconnected
    broken = {
        "not 503": (200, DEGRADED),
        "not 'degraded'": (503, {**DEGRADED, "status": "unhealthy"}),
        "while the link is cut": (503, {**DEGRADED, "central_nats": {
            "status": "connected", "latency_ms": None}}),
        "while disconnected": (503, {**DEGRADED, "central_nats": {
            "status": "disconnected", "latency_ms": 0.3}}),
        "local_nats.status": (503, {**DEGRADED, "local_nats": {"status": "stopped"}}),
        "vault_manager.status": (503, {**DEGRADED, "vault_manager": {"status": "down"}}),
        "details do not name": (503, {**DEGRADED, "details": ["something"]}),
    }
    for text, (http, body) in broken.items():
        status, ev = degraded_outcome(http, body)
        assert status == "fail" and any(text in w for w in ev["wrong"]), text
    # a healthy answer while the link should be cut is a failure, not a pass
    assert degraded_outcome(200, _health())[0] == "fail"


def test_recovered_needs_healthy_and_connected() -> None:
    assert recovered_outcome(200, _health())[0] == "pass"
    assert recovered_outcome(503, DEGRADED)[0] == "fail"
    assert recovered_outcome(200, _health(central_nats={"status": "connected"}))[0] == "fail"
