"""Fault kinds of the previews stack: ``ecs.stop-task`` stops one edit-container task with
ECS ``StopTask`` — the same call on real AWS and on the lab's moto (where the reference
stack runs one task per container and notices its task stopped).

An action, not a condition: the service is expected to replace the task (the scenario
measures it), so there is nothing to heal afterwards (``one_shot``); the ledger still
records it. Only a RUNNING task of one of ``[previews] services`` in ``[previews] cluster``
is accepted.
"""

from __future__ import annotations

from ...errors import UserError
from ...faults.kinds import FaultContext, FaultKind, StrictHealSpec
from .aws import Missing, PreviewsAws
from .config import previews_of


class TaskSpec(StrictHealSpec):
    cluster: str
    task: str


class EcsStopTask(FaultKind):
    id = "ecs.stop-task"
    title = "stop an edit container's ECS task (StopTask; the service must replace it)"
    destructive = True
    one_shot = True
    live_targets = True
    Heal = TaskSpec

    def targets(self, ctx: FaultContext) -> list[str]:
        return []  # task ARNs are found live (list_tasks), checked by prepare

    def _aws(self, ctx: FaultContext) -> PreviewsAws:
        target = previews_of(ctx.inventory)
        if target is None or not target.cluster or not target.services:
            raise UserError(f"{self.id}: the inventory has no [previews] cluster and services",
                            exit_code=2)
        return PreviewsAws(target, ctx.inventory.aws, ctx.aws_credentials)

    async def prepare(self, ctx, target, params):
        async with self._aws(ctx) as aws:
            try:
                running = await aws.running_tasks()
            except Missing as exc:
                raise UserError(f"{self.id}: {exc}", exit_code=2) from None
        if target not in running:
            raise UserError(f"{self.id}: {target} is not a running task of the [previews] "
                            "services", exit_code=1)
        assert aws.target.cluster is not None
        return {"cluster": aws.target.cluster, "task": target}

    async def inject(self, ctx, target, params, heal):
        async with self._aws(ctx) as aws:
            await aws.stop_task(heal["task"], "opsconsole fault ecs.stop-task")


KINDS: tuple[FaultKind, ...] = (EcsStopTask(),)
