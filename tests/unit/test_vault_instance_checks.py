"""The `vault-instance` checks' verdict functions, driven with the broken situation.

The functions are the ones the pack calls (``vault_instance_checks``); the numbers
follow lab measurements (20 msg/s canaries, a hub switch seen after ~0.25 s, 2-3
messages lost per direction).
"""

from __future__ import annotations

from opsconsole.systems.nats.canary import GRACE_S, PathTracker
from opsconsole.systems.vault_instances.checks import (
    LEAD_S,
    TAIL_S,
    InstanceState,
    OutageWindow,
    answer_outcome,
    only_after_running_outcome,
    relay_loss_outcome,
)

PING = {"id": "p", "type": "ping", "ok": True, "result": {"pong": True}, "at": 1.0}


# ------------------------------------------------------------ manager: forApp published

def test_forapp_copy_must_exist_and_be_the_successful_ping() -> None:
    assert answer_outcome([PING], "p", "ping", {"pong": True})[0] == "pass"
    assert answer_outcome([], "p", "ping")[0] == "fail"  # never published
    other = {**PING, "id": "q"}
    status, evidence = answer_outcome([other], "p", "ping")
    assert status == "fail" and "no answer with id 'p'" in evidence["reason"]
    for broken in ({**PING, "ok": False, "error": "boom"}, {**PING, "type": "echo"},
                   {**PING, "ok": "true"}, {**PING, "result": {"pong": False}}):
        status, evidence = answer_outcome([broken], "p", "ping", {"pong": True})
        assert status == "fail", broken
        assert evidence["first"] == broken and "not a successful ping" in evidence["reason"]
    assert answer_outcome(["not a dict", None], "p", "ping")[0] == "fail"


# --------------------------------------------------- initialize: only after EC2 running

PROVISIONING = InstanceState("provisioning", "running")  # moto runs at once; the provisioner
RUNNING = InstanceState("running", "running")  # models the pending phase


def test_only_after_running_passes_on_refusal_then_acceptance() -> None:
    status, evidence = only_after_running_outcome(409, PROVISIONING, RUNNING, 200)
    assert status == "pass", evidence


def test_initialize_accepted_before_running_fails() -> None:
    status, evidence = only_after_running_outcome(200, PROVISIONING, RUNNING, 200)
    assert status == "fail" and "accepted (HTTP 200) while the instance was provisioning" \
        in evidence["reason"]


def test_only_after_running_fails_until_running_and_on_a_refused_initialize() -> None:
    assert only_after_running_outcome(409, PROVISIONING, PROVISIONING, None)[0] == "fail"
    pending_ec2 = InstanceState("running", "pending")
    status, evidence = only_after_running_outcome(409, PROVISIONING, pending_ec2, None)
    assert status == "fail" and "not running yet" in evidence["reason"]
    status, evidence = only_after_running_outcome(409, PROVISIONING, RUNNING, 500)
    assert status == "fail" and "HTTP 500 although running" in evidence["reason"]


def test_no_refusal_observed_when_already_running() -> None:
    status, evidence = only_after_running_outcome(200, RUNNING, RUNNING, 200)
    assert status == "unknown" and "already running" in evidence["reason"]


# ---------------------------------------------- relay: loss bounded by the switch window

RATE = 20.0
T0 = 1_000.0  # the fault


def _tracker(lost_at: list[float], seconds: float = 6.0, start: float = T0 - 2.0) -> PathTracker:
    """Canary traffic at RATE from ``start``; the messages sent at ``lost_at`` never arrive."""
    t = PathTracker(fates=[])
    n = int(seconds * RATE)
    for seq in range(n):
        at = start + seq / RATE
        t.on_sent(seq, at)
        if not any(abs(at - x) < 1e-9 for x in lost_at):
            t.on_received(seq, at, at + 0.002)
    t.settle(start + seconds + GRACE_S + 1)
    return t


WINDOW = OutageWindow(T0, T0 + 0.25)  # as measured on the lab


def test_loss_inside_the_window_passes_with_the_bound_in_the_evidence() -> None:
    paths = {"c2l": _tracker([T0 + 0.05, T0 + 0.10]), "l2c": _tracker([T0 + 0.05])}
    status, evidence = relay_loss_outcome(paths, RATE, WINDOW)
    assert status == "pass", evidence
    assert evidence["max_lost"] == int(RATE * (0.25 + LEAD_S + TAIL_S)) + 2
    assert evidence["c2l"]["lost_in_window"] == 2 and evidence["c2l"]["lost_at_s"] == [
        0.05, 0.1]
    assert "rate * (reconnect window + 1.5 s) + 2" in evidence["bound"]


def test_loss_after_the_window_fails() -> None:
    """A message sent once the leaf is back (past the tail) and lost: not a switch loss."""
    late = T0 + 0.25 + TAIL_S + 0.5
    paths = {"c2l": _tracker([late]), "l2c": _tracker([])}
    status, evidence = relay_loss_outcome(paths, RATE, WINDOW)
    assert status == "fail" and evidence["c2l"]["lost_outside_window"] == 1
    assert "c2l: 1 lost outside the window" in evidence["reason"]


def test_loss_before_the_fault_fails() -> None:
    paths = {"c2l": _tracker([]), "l2c": _tracker([T0 - LEAD_S - 0.5])}
    assert relay_loss_outcome(paths, RATE, WINDOW)[0] == "fail"


def test_loss_above_the_bound_fails() -> None:
    """Everything in the window lost, on a window the tracker's own count exceeds: a
    publisher bursting past its rate (here: 40 msg/s declared as 20) breaks the bound."""
    t = PathTracker(fates=[])
    for seq in range(200):  # 40 msg/s from T0 - 2 s
        at = T0 - 2.0 + seq / 40
        t.on_sent(seq, at)
        if not (T0 - LEAD_S <= at <= WINDOW.end + TAIL_S):
            t.on_received(seq, at, at + 0.002)
    t.settle(T0 + 10 + GRACE_S)
    status, evidence = relay_loss_outcome({"c2l": t}, RATE, WINDOW)
    assert status == "fail", evidence
    assert evidence["c2l"]["lost_in_window"] > evidence["max_lost"]


def test_loss_needs_traffic_before_and_after_the_window() -> None:
    no_after = {"c2l": _tracker([], seconds=2.5)}  # stops 0.5 s after the fault
    status, evidence = relay_loss_outcome(no_after, RATE, WINDOW)
    assert status == "unknown" and "sent after the window" in evidence["reason"]
    no_before = {"c2l": _tracker([], start=T0 - 0.2)}
    status, evidence = relay_loss_outcome(no_before, RATE, WINDOW)
    assert status == "unknown" and "positive control" in evidence["reason"]


def test_unsettled_or_untracked_messages_are_not_judged() -> None:
    t = PathTracker(fates=[])
    t.on_sent(0, T0)
    assert relay_loss_outcome({"c2l": t}, RATE, WINDOW)[0] == "unknown"
    plain = PathTracker()  # fates not kept
    assert relay_loss_outcome({"c2l": plain}, RATE, WINDOW)[0] == "unknown"
    assert relay_loss_outcome({}, RATE, WINDOW)[0] == "unknown"


def test_without_a_hub_switch_loss_fails_and_no_loss_is_unknown() -> None:
    status, evidence = relay_loss_outcome({"c2l": _tracker([T0])}, RATE, None, "no way")
    assert status == "fail" and "lost with no hub switch" in evidence["reason"]
    status, evidence = relay_loss_outcome({"c2l": _tracker([])}, RATE, None, "no way")
    assert status == "unknown" and "no way" in evidence["reason"]
