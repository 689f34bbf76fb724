"""Register one EC2 record per leaf user in moto, so vault instances exist in the lab.

Until the reference provisioning service runs in the lab, each leaf server is
the local NATS of a vault instance; this gives it the EC2 record (arm64
t4g.nano, tagged) that a real deployment would have. Idempotent.
"""

from __future__ import annotations

ROLE_TAG = ("role", "vault-instance")


async def ensure_instances(endpoint_url: str, region: str, users: list[str],
                           key: str) -> list[str]:
    import aioboto3  # imported here: boto3 costs ~0.2 s at every CLI start otherwise

    session = aioboto3.Session(aws_access_key_id=key, aws_secret_access_key=key,
                               region_name=region)
    async with session.client("ec2", endpoint_url=endpoint_url) as ec2:
        existing = await ec2.describe_instances(Filters=[
            {"Name": f"tag:{ROLE_TAG[0]}", "Values": [ROLE_TAG[1]]},
            {"Name": "instance-state-name", "Values": ["pending", "running"]}])
        have = {t["Value"] for r in existing["Reservations"] for i in r["Instances"]
                for t in i.get("Tags", []) if t["Key"] == "owner"}
        images = await ec2.describe_images(
            Filters=[{"Name": "architecture", "Values": ["arm64"]}])
        ami = images["Images"][0]["ImageId"]
        created = []
        for user in users:
            if user in have:
                continue
            tags = [{"Key": ROLE_TAG[0], "Value": ROLE_TAG[1]}, {"Key": "owner", "Value": user},
                    {"Key": "env", "Value": "lab"}, {"Key": "Name", "Value": f"vault-{user}"}]
            run = await ec2.run_instances(
                ImageId=ami, InstanceType="t4g.nano", MinCount=1, MaxCount=1,
                TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
            created.append(run["Instances"][0]["InstanceId"])
        return created
