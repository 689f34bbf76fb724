"""Previews: the email → SES → SQS → worker → DynamoDB → ECS → preview URL product (its
inventory key is ``[previews]``, ``[sessions]`` accepted as the old name; the pack keeps the
name ``sessions``; "session" in opsconsole otherwise means the console session)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ...core.system import ConfigSection, Health, ProbeContext, System
from . import events  # noqa: F401 - registers the stack's event kind
from .config import PreviewsTarget, previews_of

if TYPE_CHECKING:
    from ...core.state import State
    from ...faults.kinds import FaultKind
    from ...probes.base import Probe
    from ...scenarios.engine import Scenario
    from .state import PreviewsSlice


class PreviewsSystem(System):
    name = "previews"
    title = "Email-to-preview stack"
    order = 50

    def config_sections(self) -> Mapping[str, ConfigSection]:
        return {"previews": ConfigSection(PreviewsTarget | None, None, "[previews]",
                                          is_target=False),
                "sessions": ConfigSection(PreviewsTarget | None, None,
                                          "[sessions] (old name of [previews])",
                                          is_target=False)}

    def fault_kinds(self) -> Sequence[FaultKind]:
        from .faults import KINDS

        return KINDS

    def state_slice(self) -> PreviewsSlice:
        from .state import PreviewsSlice

        return PreviewsSlice()

    def probes(self, ctx: ProbeContext) -> Sequence[Probe]:
        from .probe import SessionsProbe

        target = previews_of(ctx.inventory)
        return (SessionsProbe(ctx.http, target),) if target is not None else ()

    def packs(self) -> Mapping[str, Sequence[type[Scenario]]]:
        from .packs.sessions import SCENARIOS

        return {"sessions": SCENARIOS}

    def health(self, state: State) -> list[Health]:
        from .health import stack_health

        sample = state.previews.sample
        return [stack_health(sample)] if sample is not None else []


SYSTEM = PreviewsSystem()
