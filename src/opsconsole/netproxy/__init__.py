"""The lab's TCP fault proxy (its own process) and a client for its control API."""

from .client import ProxyClient
from .proxy import LinkFault

__all__ = ["LinkFault", "ProxyClient"]
