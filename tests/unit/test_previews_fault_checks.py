"""The verdicts of failure-recovery's fault checks, each with the situation that fails."""

from __future__ import annotations

from opsconsole.systems.previews.packs.sessions import network_cut_outcome, throttled_outcome


def _counts(throttled: int, passed: int, get_item: int = 0) -> dict:
    return {"throttled": throttled, "passed": passed, "upstream_errors": 0,
            "throttled_by_operation": {"GetItem": get_item}}


def test_the_burst_counts_as_throttled_only_when_the_proxy_throttled_calls() -> None:
    status, evidence = throttled_outcome(_counts(5, 100, 5), _counts(35, 170, 30), 0.3)
    assert status == "pass" and evidence["throttled"] == 30
    assert evidence["by_operation"] == {"GetItem": 25} and evidence["passed"] == 70
    # negative control: the throttle was set but nothing was throttled during the burst
    assert throttled_outcome(_counts(5, 100), _counts(5, 170), 0.3)[0] == "fail"


def test_the_network_cut_passes_only_for_a_real_cut_and_a_recovery() -> None:
    assert network_cut_outcome(200, 502, 0.004) == (
        "pass", {"before": 200, "during_cut": 502, "recovered_s": 0.004})
    assert network_cut_outcome(200, 0, 1.2)[0] == "pass"  # dropped: no answer at all
    # negative controls: the cut cut nothing, the route never came back, no control
    assert network_cut_outcome(200, 200, 0.004)[0] == "fail"
    assert network_cut_outcome(200, 502, None)[0] == "fail"
    assert network_cut_outcome(502, 502, 0.004)[0] == "fail"
