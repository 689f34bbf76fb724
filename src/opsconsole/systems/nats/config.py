"""The NATS sections of the inventory: ``[[nats]]`` clusters and ``[[leaves]]``."""

from __future__ import annotations

from pydantic import Field

from ...config_fields import (
    HttpUrl,
    Model,
    Name,
    NatsUrl,
)
from ...targets.nats import NatsClientAuth, NatsEndpoint


class NatsNode(Model):
    name: Name
    client_url: NatsUrl
    #: the monitoring port (http or https): routes, leaf links, counters; without it the
    #: console sees the node through its client connection only
    monitor_url: HttpUrl | None = None


class NatsCluster(NatsClientAuth):
    """A NATS cluster; its credentials and TLS apply to every node's client URL (and the CA
    to https monitoring)."""

    name: Name
    nodes: list[NatsNode] = Field(min_length=1)
    user: str | None = None

    @property
    def login_user(self) -> str | None:
        return self.user

    def endpoint(self, node: NatsNode) -> NatsEndpoint:
        return NatsEndpoint(node.client_url, self, f"nats {self.name}/{node.name}")

    def endpoints(self) -> list[NatsEndpoint]:
        return [self.endpoint(n) for n in self.nodes]


class LeafNode(NatsClientAuth):
    """A leaf server. ``user`` is the account it relays for (``OwnerSpace.<user>.>``);
    ``auth_user`` (with ``password_env``/``_file``) is how a client logs in to it."""

    name: Name
    user: str = Field(min_length=1)
    client_url: NatsUrl
    monitor_url: HttpUrl
    hub: str | None = None
    auth_user: str | None = None

    @property
    def login_user(self) -> str | None:
        return self.auth_user

    def endpoint(self) -> NatsEndpoint:
        return NatsEndpoint(self.client_url, self, f"leaf {self.name}")
