"""The lab as an Inventory: the same typed targets a real deployment's config yields."""

from __future__ import annotations

from ..config import Inventory, SecretRef
from ..systems.aws.config import AwsTarget
from ..systems.nats.config import LeafNode, NatsCluster, NatsNode
from ..systems.previews.config import SessionsTarget
from ..systems.vault.config import VaultCluster, VaultNode
from ..systems.vault_instances.config import ProvisionerTarget
from .nats_topology import CLUSTER_NAME
from .supervisor import (
    DUMMY_AWS_KEY,
    LAB_SCRAPE_INTERVAL_S,
    MEMBER_PASSWORDS_FILE,
    NO_ACCOUNT_MEMBER,
    Lab,
)
from .vault_topology import ROOT_TOKEN_FILE


def lab_inventory(lab: Lab, base: Inventory) -> Inventory:
    """Fill ``base`` (a config with ``[lab]``) with the running lab's targets."""
    topo = lab.topology()
    if topo is None:
        return base
    return base.model_copy(update={
        "nats": [NatsCluster(name=CLUSTER_NAME, nodes=[
            NatsNode(name=n.name, client_url=n.client_url, monitor_url=n.monitor_url)
            for n in topo.central])],
        "leaves": [LeafNode(name=lf.name, user=lf.user, client_url=lf.client_url,
                            monitor_url=lf.monitor_url) for lf in topo.leaves],
        "vault": VaultCluster(nodes=[VaultNode(name=v.name, api_addr=v.api_addr)
                                     for v in topo.vault],
                              token=SecretRef(file=lab.dir.secrets / ROOT_TOKEN_FILE),
                              scrape_interval=LAB_SCRAPE_INTERVAL_S,
                              expected_policies=["root"]),
        "aws": AwsTarget(region=lab.spec.aws_region, endpoint_url=topo.moto_url),
        "provisioner": ProvisionerTarget(
            base_url=topo.provisioner_url,
            admin_token=SecretRef(file=lab.dir.secrets / "provisioning-admin-token"),
            member_tokens=SecretRef(file=lab.dir.secrets / "provisioning-tokens.json"),
            member_nats_passwords=SecretRef(file=lab.dir.secrets / MEMBER_PASSWORDS_FILE),
            control_key=SecretRef(file=lab.dir.secrets / "control-key.pem"),
            member=lab.spec.members[0], no_account_member=NO_ACCOUNT_MEMBER),
        "sessions": SessionsTarget(base_url=topo.sessions_url),
    })


def lab_aws_credentials() -> dict[str, str]:
    """moto accepts any key pair; these are placeholders, not credentials."""
    return {"aws_access_key_id": DUMMY_AWS_KEY, "aws_secret_access_key": DUMMY_AWS_KEY}
