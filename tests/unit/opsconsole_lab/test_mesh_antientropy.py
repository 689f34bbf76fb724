"""Anti-entropy deltas: chunking, and the context is adopted only when every chunk arrived."""

from __future__ import annotations

import json

from opsconsole_lab.mesh import AgentIdentity, MeshAgent, NatsTransport, TaskList
from opsconsole_lab.mesh.crdt import DotContext, pieces, split_state


def _source(n: int) -> TaskList:
    src = TaskList("f0" * 32)
    for i in range(n):
        task = src.add({"title": f"task {i}", "notes": "x" * 40}).task
        if i % 3 == 0:
            src.claim(task)
    return src


def _chunks(src: TaskList, peer: DotContext, max_bytes: int) -> list[dict]:
    delta = src.delta_for(peer)
    assert delta is not None
    ctx = delta.pop("ctx")
    parts = list(split_state(delta, max_bytes))
    bodies = [{"id": 1, "i": i, "n": len(parts), "state": part} for i, part in enumerate(parts)]
    bodies[-1]["ctx"] = ctx
    return bodies


def _agent() -> MeshAgent:
    # never started: the handlers under test do not send anything
    return MeshAgent(AgentIdentity.from_seed(b"ae-receiver"), NatsTransport(None, "unit"))


def test_split_state_respects_the_size_bound_and_keeps_every_piece() -> None:
    src = _source(60)
    state = src.state()
    parts = list(split_state(state, 1024))
    assert len(parts) > 5
    assert sum(pieces(p) for p in parts) == pieces(state)
    assert all(len(json.dumps(p, separators=(",", ":"))) <= 1024 + 200 for p in parts)


def test_chunked_delta_converges_when_all_chunks_arrive() -> None:
    src, agent = _source(40), _agent()
    bodies = _chunks(src, agent.tasks.seen, 2048)
    assert len(bodies) > 1
    for body in bodies:
        agent._on_delta(src.replica_id, body)
    assert agent.tasks.digest() == src.digest()
    assert agent.tasks.seen == src.seen


def test_lost_chunk_keeps_pieces_but_not_the_context_until_repaired() -> None:
    src, agent = _source(40), _agent()
    bodies = _chunks(src, agent.tasks.seen, 2048)
    for body in bodies[:1] + bodies[2:]:  # chunk 1 lost
        agent._on_delta(src.replica_id, body)
    assert len(agent.tasks.seen) == 0  # context not adopted: the peer will resend
    assert agent.tasks.digest() != src.digest()
    for body in _chunks(src, agent.tasks.seen, 2048):  # next round
        agent._on_delta(src.replica_id, body)
    assert agent.tasks.digest() == src.digest()


def test_delta_for_is_none_when_the_peer_has_everything() -> None:
    src = _source(5)
    replica = src.copy()
    assert src.delta_for(replica.seen) is None
    replica.add({"title": "new"})
    delta = src.copy().delta_for(DotContext())
    assert delta is not None and pieces(delta) == pieces(src.state())
    only_new = replica.delta_for(src.seen)
    assert only_new is not None and pieces(only_new) == 3  # tag, position node, title
