"""The lab as an Inventory: the same typed targets a real deployment's config yields."""

from __future__ import annotations

from typing import Any

from ..config import Inventory, SecretRef
from ..systems.aws.config import AwsTarget
from ..systems.previews.config import PreviewsTarget
from ..systems.vault_instances.config import AmiPolicy, ProvisionerTarget
from .supervisor import (
    DUMMY_AWS_KEY,
    LAB_PREVIEWS_PREFIX,
    LAB_SCRAPE_INTERVAL_S,
    MEMBER_PASSWORDS_FILE,
    NO_ACCOUNT_MEMBER,
    SLOW_MEMBER,
    Lab,
)
from .vault_topology import ROOT_TOKEN_FILE

#: the lab's AMI policy: moto's account owns the image the reference provisioner makes
#: (a copy of an arm64 base) and tags it so; the console checks the instance's image
LAB_AMI_POLICY = AmiPolicy(owners=["123456789012"],
                           required_tags={"hardened": "cis-level-1", "role": "vault-instance"})


def lab_inventory(lab: Lab, base: Inventory) -> Inventory:
    """Fill ``base`` (a config with ``[lab]``) with the running lab's targets."""
    topo = lab.topology()
    if topo is None:
        return base
    return base.model_copy(update={
        "nats": [lab.nats_cluster(topo)],
        "leaves": [lab.leaf_node(lf) for lf in topo.leaves],
        "vault": lab.vault_cluster(topo, scrape_interval=LAB_SCRAPE_INTERVAL_S,
                                   expected_policies=["root"]).model_copy(
            update={"token": SecretRef(file=lab.dir.secrets / ROOT_TOKEN_FILE)}),
        "aws": AwsTarget(region=lab.spec.aws_region, endpoint_url=topo.aws_url,
                         fault_proxy_url=topo.http_proxy_url),
        "provisioner": ProvisionerTarget(
            base_url=topo.provisioner_url,
            admin_token=SecretRef(file=lab.dir.secrets / "provisioning-admin-token"),
            member_tokens=SecretRef(file=lab.dir.secrets / "provisioning-tokens.json"),
            member_nats_passwords=SecretRef(file=lab.dir.secrets / MEMBER_PASSWORDS_FILE),
            control_key=SecretRef(file=lab.dir.secrets / "control-key.pem"),
            member=lab.spec.members[0], no_account_member=NO_ACCOUNT_MEMBER,
            ami_policy=LAB_AMI_POLICY, instance_types=["t4g.nano", "t4g.micro"],
            **lab_provisioner_capabilities(lab, topo.provisioner_url)),
        "previews": lab_previews(lab, topo.sessions_url),
    })


def lab_provisioner_capabilities(lab: Lab, base_url: str) -> dict[str, Any]:
    """The optional capabilities the lab's reference provisioner has (none of them in
    seed 000): local NATS from the instance's EC2 tags, the account driver, restart, a
    slow member and the lab's time scale."""
    return {"local_nats_url": "{tag:opsconsole:local-nats-url}",
            "local_monitor_url": "{tag:opsconsole:local-monitor-url}",
            "accounts_url": f"{base_url}/admin/accounts/{{member}}",
            "restart_path": "/vault/start",
            "slow_member": SLOW_MEMBER if SLOW_MEMBER in lab.spec.members else None,
            "provision_timeout_s": lab.spec.provision_timeout_s}


def lab_previews(lab: Lab, base_url: str) -> PreviewsTarget:
    """The lab's previews stack: the reference's resource names (it is started with
    ``--prefix LAB_PREVIEWS_PREFIX``) and every optional capability it has."""
    prefix = LAB_PREVIEWS_PREFIX
    workspaces = lab.dir.root / "sessions" / "workspaces"
    return PreviewsTarget(
        base_url=base_url, cluster=prefix, services=["edit"], table=f"{prefix}-sessions",
        queue=f"{prefix}-intake", dashboard=f"{prefix}-previews",
        metrics_namespace="OpsConsole/Sessions", capacity=lab.spec.sessions_capacity,
        git_log_command=["git", "-C", f"{workspaces}/{{user}}", "log", "--format=%s"],
        usage_url=f"{base_url}/api/status")


def lab_aws_credentials() -> dict[str, str]:
    """moto accepts any key pair; these are placeholders, not credentials."""
    return {"aws_access_key_id": DUMMY_AWS_KEY, "aws_secret_access_key": DUMMY_AWS_KEY}
