"""The NATS sections of the inventory: ``[[nats]]`` clusters and ``[[leaves]]``."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ...config_fields import (
    ConfigPath,
    HttpUrl,
    Model,
    Name,
    NatsUrl,
    SecretRef,
    fold_refs,
)


class NatsNode(Model):
    name: Name
    client_url: NatsUrl
    monitor_url: HttpUrl


class NatsCluster(Model):
    name: Name
    nodes: list[NatsNode] = Field(min_length=1)
    user: str | None = None
    password: SecretRef | None = None
    credentials_file: ConfigPath | None = None

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, data: Any) -> Any:
        return fold_refs(data, "password")

    @model_validator(mode="after")
    def _auth(self) -> NatsCluster:
        if self.password is not None and self.user is None:
            raise ValueError("password_env/password_file needs user")
        if self.credentials_file is not None and self.user is not None:
            raise ValueError("use either credentials_file or user/password, not both")
        return self


class LeafNode(Model):
    name: Name
    user: str = Field(min_length=1)
    client_url: NatsUrl
    monitor_url: HttpUrl
    hub: str | None = None

