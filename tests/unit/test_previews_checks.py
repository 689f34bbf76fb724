"""The verdicts of the previews pack's AWS and fault checks, each with the situation that fails."""

from __future__ import annotations

from opsconsole.systems.previews.packs.sessions import (
    ecs_task_outcome,
    network_cut_outcome,
    orphans_of,
    session_item_outcome,
    throttled_outcome,
)


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


def test_the_session_item_must_be_active_the_users_and_not_expired() -> None:
    item = {"status": "active", "user_id": "u1", "expires_at": 2000.0}
    assert session_item_outcome("s-1", "u1", item, now=1000.0)[0] == "pass"
    # negative controls: another status, another user, a TTL in the past, no TTL
    for broken in ({**item, "status": "expired"}, {**item, "user_id": "u2"},
                   {**item, "expires_at": 999.0}, {"status": "active", "user_id": "u1"}):
        assert session_item_outcome("s-1", "u1", broken, now=1000.0)[0] == "fail", broken


def test_ecs_must_run_the_task_the_session_names() -> None:
    counts = {"edit": {"running": 1, "desired": 1}}
    tasks = {"arn:t1": {"lastStatus": "RUNNING"}}
    assert ecs_task_outcome("s-1", {"task_arn": "arn:t1"}, counts, tasks)[0] == "pass"
    # negative controls: another task runs, nothing is desired, the item names no task
    assert ecs_task_outcome("s-1", {"task_arn": "arn:t2"}, counts, tasks)[0] == "fail"
    idle = {"edit": {"running": 0, "desired": 0}}
    assert ecs_task_outcome("s-1", {"task_arn": "arn:t1"}, idle, tasks)[0] == "fail"
    status, evidence = ecs_task_outcome("s-1", {}, counts, tasks)
    assert status == "unknown" and "no task_arn" in evidence["reason"]


def test_orphans_are_live_sessions_and_their_still_running_tasks() -> None:
    ended = {"s-1": {"status": "expired", "task_arn": "arn:t1"}}
    assert orphans_of(ended, running={}) == {"sessions": [], "tasks": []}
    # negative controls: an item left active, a task ECS still runs after the end
    assert orphans_of({"s-1": {"status": "active"}}, {})["sessions"] == ["s-1"]
    assert orphans_of(ended, running={"arn:t1": {}})["tasks"] == ["arn:t1"]
