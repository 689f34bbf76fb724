"""The ``[sessions]`` section: the email-to-preview stack (its router URL)."""

from __future__ import annotations

from ...config_fields import HttpUrl
from ...targets.tls import TlsClient


class SessionsTarget(TlsClient):
    """The email-to-preview sessions stack: its router (ALB) URL, for the `sessions` pack."""

    base_url: HttpUrl


