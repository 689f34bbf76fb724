"""The ``[sessions]`` section: the email-to-preview stack (its router URL)."""

from __future__ import annotations

from ...config_fields import (
    HttpUrl,
    Model,
)


class SessionsTarget(Model):
    """The email-to-preview sessions stack: its router (ALB) URL, for the `sessions` pack."""

    base_url: HttpUrl


