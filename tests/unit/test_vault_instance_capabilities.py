"""The vault-instance pack's optional capabilities and the time-limit verdict, each with the
situation that must fail (or be unknown) next to the one that passes."""

from __future__ import annotations

import pytest

from opsconsole.systems.vault_instances import capabilities
from opsconsole.systems.vault_instances.capabilities import Unavailable
from opsconsole.systems.vault_instances.checks import time_limit_outcome
from opsconsole.systems.vault_instances.config import ProvisionerTarget

INSTANCE = {"InstanceId": "i-1", "PrivateIpAddress": "10.0.0.7",
            "Tags": [{"Key": "opsconsole:local-nats-url", "Value": "nats://127.0.0.1:4301"}]}


def _target(**kw) -> ProvisionerTarget:
    return ProvisionerTarget(base_url="https://prov.example:8443", **kw)


def test_local_endpoints_come_from_the_instances_ec2_description() -> None:
    target = _target(local_nats_url="{tag:opsconsole:local-nats-url}",
                     local_monitor_url="http://{private_ip}:8222")
    assert capabilities.local_endpoints(target, INSTANCE) == {
        "client": "nats://127.0.0.1:4301", "monitor": "http://10.0.0.7:8222"}


def test_local_endpoints_are_unavailable_with_the_reason() -> None:
    with pytest.raises(Unavailable, match="declares no \\[provisioner\\] local_nats_url"):
        capabilities.local_endpoints(_target(), INSTANCE)
    with pytest.raises(Unavailable, match="no \\[aws\\]"):
        capabilities.local_endpoints(_target(local_nats_url="nats://{private_ip}:4222"), None)
    with pytest.raises(Unavailable, match="has no public_ip"):  # EC2 does not give it
        capabilities.local_endpoints(_target(local_nats_url="nats://{public_ip}:4222"),
                                     INSTANCE)


def test_the_slow_member_must_be_declared_and_have_a_token() -> None:
    with pytest.raises(Unavailable, match="slow_member"):
        capabilities.slow_member(_target(), {"alice": "t"})
    with pytest.raises(Unavailable, match="no entry in member_tokens"):
        capabilities.slow_member(_target(slow_member="carol"), {"alice": "t"})
    assert capabilities.slow_member(_target(slow_member="carol"), {"carol": "t"}) == "carol"


def test_the_time_scale_is_stated_only_when_in_effect() -> None:
    assert capabilities.time_scale(_target(), on_lab=True) == {}  # the seed's 120 s
    assert capabilities.time_scale(_target(provision_timeout_s=5), on_lab=False) == {}
    scale = capabilities.time_scale(_target(provision_timeout_s=5), on_lab=True)
    assert "120 s provisioning limit is 5 s here" in scale["time_scale"]


def test_the_time_limit_passes_only_for_a_failure_after_the_limit() -> None:
    ok = time_limit_outcome(5, "running", 409, "failed", "terminated", 409, "failed")
    assert ok[0] == "pass"
    # negative controls: gone at once, accepted, still running, answered not failed
    assert time_limit_outcome(5, "terminated", 409, "failed", "terminated", 409,
                              "failed")[0] == "fail"
    assert time_limit_outcome(5, "running", 200, "initialized", "terminated", 409,
                              "failed")[0] == "fail"
    still = time_limit_outcome(5, "running", 409, "failed", "running", 409, "failed")
    assert still[0] == "fail" and "still shows the instance running" in still[1]["reason"]
    assert time_limit_outcome(5, "running", 409, "failed", "terminated", 200,
                              "initialized")[0] == "fail"
