"""The ``[previews]`` section (``[sessions]`` is accepted as its old name): the
email-to-preview stack's router and the names of its AWS resources.

The seed's interface is the router (``base_url``, docs/contracts/previews.openapi.yaml);
the pack reads the rest from AWS itself through ``[aws]``: ``cluster`` and ``services``
(ECS), ``table`` (the DynamoDB sessions table), ``queue`` (SQS), ``dashboard`` (CloudWatch).
The remaining keys are optional capabilities: absent, the checks that need them report
``unknown`` with the reason.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ...config_fields import HttpUrl
from ...targets.tls import TlsClient


class PreviewsTarget(TlsClient):
    """The email-to-preview stack: its router (ALB) URL and its AWS resources."""

    base_url: HttpUrl
    cluster: str | None = None  # ECS cluster of the edit containers
    services: list[str] = Field(default_factory=list)  # ECS service names (edit containers)
    table: str | None = None  # DynamoDB sessions table (key session_id; status, expires_at)
    queue: str | None = None  # SQS intake queue: a name or a queue URL
    dashboard: str | None = None  # CloudWatch dashboard name (the monitoring scenario's)
    # ---- optional capabilities
    metrics_namespace: str | None = None  # CloudWatch namespace the stack publishes to
    capacity: int | None = Field(default=None, ge=1)  # most edit containers at once
    #: exec hook: argv printing a user's workspace git history, one subject a line, newest
    #: first; ``{user}`` is replaced (e.g. ``["ssh", "host", "git -C /ws/{user} log
    #: --format=%s"]``)
    git_log_command: list[str] | None = None
    #: a URL answering ``{"usage": {…}}`` with the stack's usage counters (the cost check)
    usage_url: HttpUrl | None = None


#: the old name (``[sessions]``) of the same section
SessionsTarget = PreviewsTarget


def previews_of(inventory: Any) -> PreviewsTarget | None:
    """The inventory's ``[previews]``, else its ``[sessions]`` (the old name)."""
    return getattr(inventory, "previews", None) or getattr(inventory, "sessions", None)
