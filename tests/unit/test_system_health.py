"""Each system answers "healthy? role?" once, from its probe samples; the pane, the CLI
and `lab status` show that answer. Here: the rules, each with its failing side."""

from __future__ import annotations

from opsconsole.core import system as registry
from opsconsole.core.state import State
from opsconsole.systems.nats.events import LeafSampled, NatsNodeSampled
from opsconsole.systems.nats.health import central_healthy, leaf_health, leaf_healthy, node_health
from opsconsole.systems.previews.events import SessionsSampled
from opsconsole.systems.previews.health import stack_health
from opsconsole.systems.vault_instances.events import InstanceSampled
from opsconsole.systems.vault_instances.health import instance_health


def test_a_central_node_needs_healthz_and_a_route_to_every_other_node() -> None:
    assert central_healthy(True, 2, 3)
    assert not central_healthy(True, 1, 3)  # a route missing
    assert not central_healthy(False, 2, 3)  # /healthz not ok
    leader = node_health(NatsNodeSampled(name="n1", reachable=True, healthy=True,
                                         js_meta_leader="n1"))
    assert (leader.healthy, leader.health, leader.role) == (True, "healthy", "JS leader")
    down = node_health(NatsNodeSampled(name="n2", reachable=False, healthy=False))
    assert (down.healthy, down.health, down.role) == (False, "unreachable", "—")
    degraded = node_health(NatsNodeSampled(name="n3", reachable=True, healthy=False))
    assert (degraded.healthy, degraded.health, degraded.role) == (False, "degraded", "member")


def test_a_leaf_needs_healthz_and_a_hub() -> None:
    assert leaf_healthy(True, 1) and not leaf_healthy(True, 0) and not leaf_healthy(False, 1)
    ok = leaf_health(LeafSampled(name="leaf-u1", user="u1", reachable=True, healthy=True,
                                 hub="nats-2"))
    assert (ok.healthy, ok.role) == (True, "leaf of nats-2")


def _instance(**kw) -> InstanceSampled:
    base = {"instance_id": "i-1", "owner": "bob", "state": "running",
            "local_nats": "running", "central_link": "→nats-1", "manager": "healthy"}
    return InstanceSampled(**{**base, **kw})


def test_an_instance_is_healthy_only_when_every_part_is() -> None:
    assert instance_health(_instance()).healthy
    assert instance_health(_instance(state="stopped")).health == "stopped"
    assert instance_health(_instance(manager="unhealthy")).health == "manager unhealthy"
    assert instance_health(_instance(central_link="down")).health == "no central link"
    unknown = instance_health(_instance(local_nats="—", central_link="—"))
    assert (unknown.healthy, unknown.health) == (False, "unknown")
    leaf = LeafSampled(name="leaf-bob", user="bob", reachable=False)
    from_leaf = instance_health(_instance(local_nats="—", central_link="—"), leaf)
    assert (from_leaf.healthy, from_leaf.health) == (False, "NATS down")
    assert from_leaf.detail == {"nats": "down", "link": "down", "manager": "healthy"}


def test_the_sessions_stack_is_unhealthy_over_capacity_or_unreachable() -> None:
    ok = stack_health(SessionsSampled(reachable=True, running=2, max_capacity=4,
                                      sessions={"active": 2}))
    assert ok.healthy and ok.detail == {"sessions": "2 active", "containers": "2/4"}
    over = stack_health(SessionsSampled(reachable=True, running=5, max_capacity=4))
    assert (over.healthy, over.health) == (False, "over capacity (5/4)")
    assert stack_health(SessionsSampled(reachable=False)).health == "unreachable"


def test_the_systems_answer_from_the_state_the_probes_fed() -> None:
    state = State()
    for ev in (NatsNodeSampled(name="n1", reachable=True, healthy=True),
               LeafSampled(name="leaf-bob", user="bob", reachable=True, healthy=True,
                           hub="n1"),
               _instance(local_nats="—", central_link="—"),
               SessionsSampled(reachable=True, running=1, max_capacity=4)):
        state.apply(ev)
    answers = {s.name: {h.name: (h.healthy, h.health) for h in s.health(state)}
               for s in registry.systems()}
    assert answers["nats"] == {"n1": (True, "healthy"), "leaf-bob": (True, "healthy")}
    assert answers["vault_instances"] == {"i-1": (True, "healthy")}  # its leaf answered
    assert answers["previews"] == {"sessions": (True, "healthy")}
