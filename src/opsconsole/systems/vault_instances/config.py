"""The ``[provisioner]`` section: the vault-instance provisioning API."""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from ...config_fields import (
    HttpUrl,
    Model,
    SecretRef,
    fold_refs,
)
from ...targets.tls import TlsClient


class AmiPolicy(Model):
    """``[provisioner.ami_policy]``: what the image an instance actually runs must be.

    Each rule that is set is checked on the instance's image (``describe_images`` of its
    ``ImageId``); a ``required_tags`` value of ``"*"`` only requires the tag to exist.
    """

    owners: list[str] = []  # allowed image owner account ids (or aliases such as "amazon")
    image_ids: list[str] = []  # allowed AMI ids
    required_tags: dict[str, str] = {}  # tag key -> value ("*": any value)

    def rules(self) -> bool:
        return bool(self.owners or self.image_ids or self.required_tags)


class ProvisionerTarget(TlsClient):
    """The vault-instance provisioning API: the `vault-instance` pack and instance health."""

    base_url: HttpUrl
    admin_token: SecretRef | None = None  # lists every instance's health
    member_tokens: SecretRef | None = None  # a JSON object {member: bearer token}
    # a JSON object {member: NATS password}: lets the pack prove terminate revoked them
    member_nats_passwords: SecretRef | None = None
    control_key: SecretRef | None = None  # PEM Ed25519 key the Vault Managers authorise
    control_key_id: str = "lab-operator"
    member: str = "alice"  # the member the pack acts as
    no_account_member: str | None = None  # has a token but no NATS account (negative check)
    ami_policy: AmiPolicy | None = None  # none: the AMI policy check is unknown
    instance_types: list[str] | None = None  # allowed EC2 instance types; none: unknown
    architecture: str = "arm64"  # the seed's hardened ARM64 image
    provision_timeout_s: float = Field(default=120.0, gt=0)  # the seed's provisioning limit
    # Optional capabilities (what seed 000 does not define; each absent one makes the checks
    # that need it `unknown` with the reason; systems/vault_instances/capabilities.py):
    # the instance's local NATS client / monitoring URL, a template over its EC2 description:
    # {private_ip}, {public_ip}, {instance_id}, {tag:KEY}
    local_nats_url: str | None = None
    local_monitor_url: str | None = None
    # the account driver: an HTTP admin endpoint (POST {"active": bool}, admin_token) that
    # grants or revokes a member's NATS account; {member} is replaced
    accounts_url: str | None = None
    restart_path: str | None = None  # POST path that starts a stopped instance again
    # a member whose provisioning this deployment is set to stall past the time limit
    slow_member: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _refs(cls, data: Any) -> Any:
        return fold_refs(data, "admin_token", "member_tokens", "control_key",
                          "member_nats_passwords")
