"""Per-message CPU of a mesh worker's receive path, without NATS: the hot path in isolation.

Builds ``--agents`` agents (the share of one worker) on an in-process transport, has
``--authors`` remote identities sign ``--ops`` task-list updates like the scale harness
sends (90 % field updates of a bounded task set), then times ``MeshTransport.receive`` on
the raw bytes: parse, verify once, decode once, apply at every local agent. Prints one
JSON line: microseconds per message, split into verify+decode and fan-out apply.

    .venv/bin/python bench/mesh_receive.py --agents 50 --ops 4000
"""

from __future__ import annotations

import argparse
import json
import random
import time

from opsconsole_lab.mesh import AgentIdentity, MeshAgent
from opsconsole_lab.mesh.crdt import TaskList
from opsconsole_lab.mesh.identity import SignedMessage, Verifier
from opsconsole_lab.mesh.transport import MeshTransport, decode_body


class _Sink(MeshTransport):
    async def _publish(self, subject: str, data: bytes) -> None:  # never sends here
        pass


def _ops(authors: int, count: int, tasks: int) -> list[bytes]:
    rng = random.Random(7)
    ids = [AgentIdentity.from_seed(f"bench-author-{i}".encode()) for i in range(authors)]
    lists = [TaskList(a.agent_id) for a in ids]
    out: list[bytes] = []
    for i, tl in enumerate(lists):  # every author first (re-)adds a shared task id
        op = tl.add({"title": f"t{i}"}, task_id=f"task-{i % tasks}")
        out.append(ids[i].sign("op", json.dumps(op.to_json(with_author=False)).encode()))
    while len(out) < count:
        i = rng.randrange(authors)
        tl = lists[i]
        task = f"task-{rng.randrange(min(tasks, authors))}"
        op = tl.update(task, {f"f{rng.randrange(4)}": rng.random()})
        if op is None:
            continue
        out.append(ids[i].sign("op", json.dumps(op.to_json(with_author=False)).encode()))
    return out


def measure(agents: int = 50, authors: int = 50, ops: int = 4000,
            tasks: int = 32) -> dict[str, float]:
    """Microseconds per message: verify+decode once, then apply at ``agents`` replicas."""
    msgs = _ops(authors, ops, tasks)
    t0 = time.perf_counter()
    verifier = Verifier()
    for data in msgs:
        decode_body(verifier.verify(SignedMessage.parse(data)))
    verify_us = (time.perf_counter() - t0) / len(msgs) * 1e6
    transport = _Sink("bench")
    local = [MeshAgent(AgentIdentity.from_seed(f"bench-local-{i}".encode()), transport)
             for i in range(agents)]
    for agent in local:
        transport.attach(agent.agent_id, agent._on_delivery)
    t0 = time.perf_counter()
    for data in msgs:
        transport.receive("gossip", None, data)
    total_us = (time.perf_counter() - t0) / len(msgs) * 1e6
    assert len({a.digest() for a in local}) == 1, "replicas diverged"
    return {"agents": agents, "ops": len(msgs), "us_per_msg": round(total_us, 1),
            "verify_decode_us": round(verify_us, 1),
            "apply_us_per_agent": round((total_us - verify_us) / agents, 2)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--agents", type=int, default=50, help="local agents (one worker's share)")
    ap.add_argument("--authors", type=int, default=50, help="remote authors")
    ap.add_argument("--ops", type=int, default=4000)
    ap.add_argument("--tasks", type=int, default=32)
    args = ap.parse_args()
    print(json.dumps(measure(args.agents, args.authors, args.ops, args.tasks)))

if __name__ == "__main__":
    main()
