"""Optional capabilities of a vault-instance deployment: what seed 000 does not define,
each declared in ``[provisioner]`` and each with its own mechanism. Absent, a check that
needs one reports ``unknown`` with :class:`Unavailable`'s reason, never ``fail``.

- ``local_nats_url`` / ``local_monitor_url``: the instance's local NATS, a template over
  the instance's EC2 description (``describe_instances``: ``{private_ip}``,
  ``{public_ip}``, ``{instance_id}``, ``{tag:KEY}``), so it needs ``[aws]`` too.
- ``accounts_url``: the account driver, an HTTP admin endpoint that grants or revokes a
  member's NATS account (``POST {"active": bool}`` with ``admin_token``).
- ``restart_path``: a ``POST`` that starts a stopped instance again.
- ``slow_member``: a member whose provisioning the deployment is set to stall past the
  time limit (``provision_timeout_s``); the lab's reference is started so
  (``--slow-member``), and its limit is the lab's own time scale, stated in the evidence
  only when it is in effect.

This is the only module of the vault-instance system that may talk to anything but the
seed's five endpoints (docs/contracts/vault-instance.openapi.yaml), AWS and NATS; a unit
test greps for that.
"""

from __future__ import annotations

import re
from typing import Any

import aiohttp

from .config import ProvisionerTarget

#: the seed's provisioning time limit
SEED_PROVISION_TIMEOUT_S = 120.0
_FIELD = re.compile(r"\{(tag:[^{}]+|private_ip|public_ip|instance_id)\}")


class Unavailable(LookupError):
    """The inventory does not declare the capability (or it cannot be had here); the
    message is the reason."""


def fill(template: str, instance: dict[str, Any]) -> str:
    """``template`` with the instance's EC2 fields; a field EC2 does not give raises
    :class:`Unavailable` naming it."""
    tags = {t.get("Key"): t.get("Value") for t in instance.get("Tags", [])}
    fields = {"private_ip": instance.get("PrivateIpAddress"),
              "public_ip": instance.get("PublicIpAddress"),
              "instance_id": instance.get("InstanceId")}

    def one(m: re.Match[str]) -> str:
        key = m.group(1)
        value = tags.get(key[4:]) if key.startswith("tag:") else fields.get(key)
        if not value:
            raise Unavailable(f"instance {instance.get('InstanceId')} has no {key} in EC2 "
                              f"for the template {template!r}")
        return str(value)

    return _FIELD.sub(one, template)


def local_endpoints(target: ProvisionerTarget, instance: dict[str, Any] | None
                    ) -> dict[str, str]:
    """The instance's local NATS client URL (and monitoring URL, "" when not declared)."""
    if not target.local_nats_url:
        raise Unavailable("the inventory declares no [provisioner] local_nats_url (where an "
                          "instance's local NATS listens, from its EC2 tags or address)")
    if instance is None:
        raise Unavailable("the inventory has no [aws] to read the instance's EC2 "
                          "description for [provisioner] local_nats_url")
    monitor = fill(target.local_monitor_url, instance) if target.local_monitor_url else ""
    return {"client": fill(target.local_nats_url, instance), "monitor": monitor}


async def set_account(target: ProvisionerTarget, http: aiohttp.ClientSession, ssl: Any,
                      member: str, active: bool) -> None:
    """Grant or revoke the member's NATS account through the declared account driver;
    :class:`Unavailable` when none is declared, ``RuntimeError`` when it refuses."""
    if not target.accounts_url:
        raise Unavailable("the inventory declares no [provisioner] accounts_url (an account "
                          "driver to grant or revoke a member's NATS account)")
    if target.admin_token is None:
        raise Unavailable("[provisioner] accounts_url needs the admin_token")
    url = target.accounts_url.replace("{member}", member)
    async with http.post(url, json={"active": active}, ssl=ssl,
                         headers={"Authorization": f"Bearer {target.admin_token.resolve()}"},
                         timeout=aiohttp.ClientTimeout(total=30)) as r:
        if r.status != 200:
            raise RuntimeError(f"[provisioner] accounts_url answered HTTP {r.status} for "
                               f"{member} (active={active})")


async def restart(target: ProvisionerTarget, http: aiohttp.ClientSession, ssl: Any,
                  token: str) -> int:
    """Start the member's stopped instance again; the HTTP status."""
    if not target.restart_path:
        raise Unavailable("the inventory declares no [provisioner] restart_path (the seed "
                          "defines no way to start a stopped instance)")
    url = str(target.base_url).rstrip("/") + target.restart_path
    async with http.post(url, ssl=ssl, headers={"Authorization": f"Bearer {token}"},
                         timeout=aiohttp.ClientTimeout(total=60)) as r:
        return r.status


def slow_member(target: ProvisionerTarget, tokens: dict[str, str]) -> str:
    """The member whose provisioning stalls past the limit (it must have a token)."""
    if not target.slow_member:
        raise Unavailable("the inventory declares no [provisioner] slow_member (a member "
                          "whose provisioning the deployment stalls past the time limit): "
                          "the limit cannot be exceeded on purpose")
    if target.slow_member not in tokens:
        raise Unavailable(f"[provisioner] slow_member {target.slow_member!r} has no entry in "
                          "member_tokens")
    return target.slow_member


def time_scale(target: ProvisionerTarget, on_lab: bool) -> dict[str, str]:
    """Evidence of the lab's time scale, only when it is in effect."""
    limit = target.provision_timeout_s
    if not on_lab or limit == SEED_PROVISION_TIMEOUT_S:
        return {}
    return {"time_scale": f"the lab's own config: the seed's {SEED_PROVISION_TIMEOUT_S:g} s "
                          f"provisioning limit is {limit:g} s here "
                          "([provisioner] provision_timeout_s)"}
