"""EC2 fault kinds: stop or terminate an instance the inventory's tag filter selects;
and ``aws.throttle`` (:mod:`.throttle`)."""

from __future__ import annotations

from ...errors import UserError
from ...faults.kinds import FaultContext, FaultKind, FaultParams, StrictHealSpec
from ...targets.aws import aws_session
from .throttle import AwsThrottle


# ----------------------------------------------------------------------------- ec2
class InstanceHeal(StrictHealSpec):
    instance: str


class TerminateParams(FaultParams):
    confirm: bool = False  # irreversible: the operator says so


class Ec2Kind(FaultKind):
    """EC2 faults act only on instances the inventory's tag filter selects."""

    live_targets = True
    Heal = InstanceHeal

    def targets(self, ctx):
        return []  # discovered at inject time (a live EC2 query), see _check_target

    def state_targets(self, ctx, state):
        instances = getattr(state, "slices", {}).get("vault_instances")
        return sorted(instances.instances) if instances is not None else []

    async def _client(self, ctx: FaultContext):
        aws = ctx.inventory.aws
        if aws is None:
            raise UserError(f"{self.id}: the inventory has no [aws] target", exit_code=2)
        session = aws_session(aws, ctx.aws_credentials)
        return session.client("ec2", endpoint_url=aws.endpoint_url)

    async def _check_target(self, ec2, ctx: FaultContext, target: str) -> None:
        aws = ctx.inventory.aws
        assert aws is not None
        found = await ec2.describe_instances(Filters=[
            {"Name": f"tag:{aws.instance_tag_key}", "Values": [aws.instance_tag_value]}])
        ids = {i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]}
        if target not in ids:
            raise UserError(f"{self.id}: {target} is not a vault instance in the inventory "
                            f"(tag {aws.instance_tag_key}={aws.instance_tag_value})",
                            exit_code=1)


class Ec2Stop(Ec2Kind):
    id = "ec2.stop"
    title = "stop a vault instance's EC2 host (healed by starting it)"
    destructive = True

    async def prepare(self, ctx, target, params):
        async with await self._client(ctx) as ec2:
            await self._check_target(ec2, ctx, target)
        return {"instance": target}

    async def inject(self, ctx, target, params, heal):
        async with await self._client(ctx) as ec2:
            await ec2.stop_instances(InstanceIds=[target])

    async def heal(self, ctx, spec):
        async with await self._client(ctx) as ec2:
            await ec2.start_instances(InstanceIds=[spec["instance"]])
        return f"started {spec['instance']}"


class Ec2Terminate(Ec2Kind):
    id = "ec2.terminate"
    title = "terminate a vault instance's EC2 host (irreversible; needs confirm=true)"
    destructive = True
    one_shot = True
    Params = TerminateParams
    confirmed_params = {"confirm": True}

    async def prepare(self, ctx, target, params):
        if params.get("confirm") is not True:
            raise UserError(f"{self.id} is irreversible: pass confirm=true", exit_code=1)
        async with await self._client(ctx) as ec2:
            await self._check_target(ec2, ctx, target)
        return {"instance": target}

    async def inject(self, ctx, target, params, heal):
        async with await self._client(ctx) as ec2:
            await ec2.terminate_instances(InstanceIds=[target])


KINDS: tuple[FaultKind, ...] = (Ec2Stop(), Ec2Terminate(), AwsThrottle())
