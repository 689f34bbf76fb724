"""What the systems' lab-only faults and checks may ask of the embedded lab.

Systems never import :mod:`opsconsole.lab` (it launches them, and imports their clients to
wait for them): they receive a :class:`LabControl` (``FaultContext.lab``, ``Run.lab``) or
attach to one by its state directory through the registry (the lab registers itself as the
system named ``lab``), which is how a fresh process heals a crashed run's lab faults.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import psutil


@runtime_checkable
class LabControl(Protocol):
    """The embedded lab, as the systems see it."""

    #: the lab's state directory (``.root``: its path; ``.load()``: its recorded state)
    dir: Any
    #: the environment marker every lab process carries
    marker: str
    #: the :class:`~opsconsole.config.LabSpec` it was built from
    spec: Any

    def process(self, name: str) -> Any | None:
        """The live process record (``pid``, ``create_time``) of a node, or None."""

    def topology(self) -> Any | None:
        """Nodes, links (``links``, ``proxy_url``), the HTTP fault proxy
        (``http_proxy_url``, ``aws_url``) and namespaces (``netns``), or None."""

    async def start_node(self, name: str) -> Any:
        """Start a stopped node; returns its process record."""

    async def restart_node(self, name: str, grace: float = 5.0) -> Any:
        """SIGTERM a node, then start it again; returns its new process record."""

    async def set_vault_link(self, node: str, up: bool) -> None:
        """Take a Vault node's namespace link down or up (a real partition; root)."""

    def root_token(self) -> str | None:
        """The lab's Vault root token (for a client inside a namespace)."""

    @property
    def audit_log(self) -> Path:
        """The lab Vault's audit log file."""

    def binary(self, name: str) -> str:
        """The path of a lab binary (``bao``, ``nats-server``, ``moto_server``); raises
        :class:`~opsconsole.errors.UserError` naming what is missing."""

    def marked_processes(self) -> list[psutil.Process]:
        """Every live process this lab started."""


def attach(state_dir: str | os.PathLike[str]) -> LabControl:
    """The lab living in ``state_dir`` (heal specs name it), through the registry."""
    from ..core.system import registry
    from ..errors import UserError

    lab_system = registry().systems.get("lab")
    attach_fn = getattr(lab_system, "attach", None)
    if attach_fn is None:
        raise UserError(f"cannot reach the lab in {state_dir}: the lab system is not loaded")
    return attach_fn(state_dir)


def live(spec: dict[str, Any]) -> LabControl | None:
    """The lab a heal spec names, or None when it has been stopped (nothing to heal)."""
    lab = attach(spec["lab_dir"])
    return lab if lab.dir.load().phase == "up" else None
