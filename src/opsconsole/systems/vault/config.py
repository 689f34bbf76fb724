"""The ``[vault]`` section: one Vault/OpenBao cluster."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ...config_fields import (
    HttpUrl,
    Model,
    Name,
    SecretRef,
    fold_refs,
)
from ...targets.tls import TlsClient


class VaultNode(Model):
    name: Name
    api_addr: HttpUrl


class VaultCluster(TlsClient):
    """A Vault/OpenBao cluster; token, TLS and namespace apply to every node."""

    name: Name = "vault"
    nodes: list[VaultNode] = Field(min_length=1)
    token: SecretRef | None = None
    namespace: str | None = Field(default=None, min_length=1, max_length=256)
    #: seconds between metrics scrapes (the alert rules are evaluated after each)
    scrape_interval: float = Field(5.0, gt=0, le=300)
    #: policies the token must carry (`opsconsole smoke` checks them)
    expected_policies: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, data: Any) -> Any:
        return fold_refs(data, "token")

