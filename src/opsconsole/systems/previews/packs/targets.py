"""What every previews scenario resolves first: the inventory's ``[previews]`` and the
pack's own AWS clients for it."""

from __future__ import annotations

from ....scenarios.engine import Abort, Run
from ..aws import PreviewsAws
from ..config import PreviewsTarget, previews_of


def previews_target(run: Run) -> PreviewsTarget:
    target = previews_of(run.inventory)
    if target is None:
        raise Abort("the inventory has no [previews] base_url")
    return target


def previews_aws(run: Run) -> PreviewsAws:
    """The pack's AWS clients for the stack (they count their own calls)."""
    return PreviewsAws(previews_target(run), run.inventory.aws, run.session.aws_credentials)
