"""The ``[vault]`` section: one Vault/OpenBao cluster."""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, model_validator

from ...config_fields import (
    ConfigPath,
    HttpUrl,
    Model,
    Name,
    SecretRef,
    fold_refs,
)


class VaultNode(Model):
    name: Name
    api_addr: HttpUrl


class VaultCluster(Model):
    name: Name = "vault"
    nodes: list[VaultNode] = Field(min_length=1)
    token: SecretRef | None = None
    ca_cert: ConfigPath | None = None
    tls_skip_verify: StrictBool = False
    #: seconds between metrics scrapes (the alert rules are evaluated after each)
    scrape_interval: float = Field(5.0, gt=0, le=300)
    #: policies the token must carry (`opsconsole smoke` checks them)
    expected_policies: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, data: Any) -> Any:
        return fold_refs(data, "token")

