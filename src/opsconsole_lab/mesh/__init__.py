"""Reference mesh agents: signed gossip of a task-list CRDT, presence and rendezvous.

Modules: ``identity`` (keys, envelopes, replay cache), ``crdt`` (the task list),
``rendezvous`` (shards, coordinators), ``presence`` (beacons, friend-of-friend),
``transport`` (NATS transport hosting many agents, partition filter), ``agent``.
"""

from .agent import AgentStats, LookupResult, MeshAgent, digests_agree
from .crdt import END, HEAD, DotContext, Op, TaskList
from .identity import (
    AgentIdentity,
    KeyRegistry,
    Rejected,
    ReplayCache,
    SignedMessage,
    Verifier,
    agent_id_of,
)
from .presence import FoafResult, PresenceView, foaf_query
from .rendezvous import RendezvousDirectory, coordinators_for, rank_coordinators, shard_of
from .transport import (
    Cut,
    Delivery,
    LinkFilter,
    MeshTransport,
    NatsTransport,
    Subjects,
    server_has_seen,
)

__all__ = [
    "END",
    "HEAD",
    "AgentIdentity",
    "AgentStats",
    "Cut",
    "Delivery",
    "DotContext",
    "FoafResult",
    "KeyRegistry",
    "LinkFilter",
    "LookupResult",
    "MeshAgent",
    "MeshTransport",
    "NatsTransport",
    "Op",
    "PresenceView",
    "Rejected",
    "RendezvousDirectory",
    "ReplayCache",
    "SignedMessage",
    "Subjects",
    "TaskList",
    "Verifier",
    "agent_id_of",
    "coordinators_for",
    "digests_agree",
    "foaf_query",
    "rank_coordinators",
    "server_has_seen",
    "shard_of",
]
