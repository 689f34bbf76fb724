"""Host a group of mesh agents in this process, spread over NATS connections.

The scenarios of the `mesh` pack use it: each group connects to one NATS server, so
cutting that server's routes (the lab's fault proxy) is a real partition of the gossip
path; ``LinkFilter`` cuts inside the transport model what the network cannot, such as
a one-way (asymmetric) partition.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import nats

from .agent import MeshAgent, digests_agree
from .identity import AgentIdentity, Verifier
from .transport import LinkFilter, NatsTransport


class LocalMesh:
    """``connect_options``: extra ``nats.connect`` keywords (credentials, TLS) for every
    group's connection, as the tester's inventory gives them."""

    def __init__(self, run: str | None = None, link_filter: LinkFilter | None = None,
                 connect_options: dict[str, Any] | None = None) -> None:
        self.connect_options = dict(connect_options or {})
        self.run = run or uuid.uuid4().hex[:8]
        self.link_filter = link_filter or LinkFilter()
        self.conns: list[Any] = []
        self.transports: list[NatsTransport] = []
        self.agents: list[MeshAgent] = []
        self.latencies: list[float] = []

    async def add(self, url: str, n: int, identities: list[AgentIdentity] | None = None,
                  per_agent: list[dict[str, Any]] | None = None,
                  verifier: Verifier | None = None, **agent_kw: Any) -> list[MeshAgent]:
        """``n`` agents on one new connection to ``url``; started before returning.

        ``verifier``: the new transport's receive pipeline (default: a fresh ``Verifier``
        with the 5-minute replay cache and age window).
        """
        nc = await nats.connect(url, name=f"mesh-{self.run}", max_reconnect_attempts=-1,
                                reconnect_time_wait=0.2, **self.connect_options)
        transport = NatsTransport(nc, self.run, link_filter=self.link_filter, verifier=verifier)
        await transport.start()
        self.conns.append(nc)
        self.transports.append(transport)
        ids = identities or [AgentIdentity.generate() for _ in range(n)]
        extra = per_agent or [{} for _ in range(n)]
        group = [MeshAgent(ids[i], transport,
                           on_op=lambda _a, _op, lat: self.latencies.append(lat),
                           **{"ae_interval": 0.5, "presence_ttl": 30.0, **agent_kw, **extra[i]})
                 for i in range(n)]
        await asyncio.gather(*(a.start() for a in group))
        self.agents += group
        return group

    @staticmethod
    def converged(agents: list[MeshAgent], tasks: int | None = None) -> bool:
        if not digests_agree(agents):
            return False
        return tasks is None or len(agents[0].snapshot()) == tasks

    async def close(self) -> None:
        await asyncio.gather(*(a.stop() for a in self.agents if a.running),
                             return_exceptions=True)
        for transport in self.transports:
            await transport.close()
        for nc in self.conns:
            await nc.close()
